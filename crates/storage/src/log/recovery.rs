//! Reading the log back after a restart: torn tails are cut, corruption is reported.

use std::collections::VecDeque;

use bytes::Bytes;
use tracing::{debug, warn};

use super::frame::{
    decode_frame, decode_frame_header, FileHeader, FrameFault, FILE_HEADER_LEN, FRAME_HEADER_LEN,
};
use super::{file_name, parse_file_name, LogDevice, LogError, LogFile, LogRecord};

/// A torn write leaves the tail of the last frame absent or zero-filled at this granularity.
const SECTOR_BYTES: usize = 512;

pub(super) struct Recovered {
    pub files: VecDeque<LogFile>,
    pub records: Vec<LogRecord>,
    pub next_sequence: u64,
}

pub(super) fn recover(device: &mut dyn LogDevice) -> Result<Recovered, LogError> {
    let mut names: Vec<(u64, String)> = Vec::new();
    for name in device.list()? {
        if let Some(first_sequence) = parse_file_name(&name) {
            names.push((first_sequence, name));
        } else {
            warn!(file = %name, "ignoring a file that is not a log file");
        }
    }
    names.sort();
    let mut recovered = Recovered {
        files: VecDeque::new(),
        records: Vec::new(),
        next_sequence: names.first().map_or(0, |(first, _)| *first),
    };
    let last_index = names.len().saturating_sub(1);
    for (index, (first_sequence, name)) in names.into_iter().enumerate() {
        let corrupt = |offset: u64, reason: String| LogError::Corrupt {
            file: name.clone(),
            offset,
            reason,
        };
        if first_sequence != recovered.next_sequence {
            return Err(corrupt(
                0,
                format!(
                    "file starts at sequence {first_sequence}, expected {} (a file is missing)",
                    recovered.next_sequence
                ),
            ));
        }
        let content = device.read_all(&name)?;
        let is_last = index == last_index;
        let length = match read_file(&content, first_sequence, is_last, &mut recovered) {
            Ok(FileEnd::Complete) => content.len() as u64,
            Ok(FileEnd::UnusedFrom(length)) => {
                // Preallocated space after the last frame. The last file is appended to again,
                // at its end, so release the space there; earlier files keep it until removed.
                if is_last {
                    debug!(file = %name, offset = length, "releasing the unused end of the last log file");
                    device.truncate(&name, length)?;
                }
                length
            }
            Ok(FileEnd::TornAt(length)) => {
                if length < FILE_HEADER_LEN as u64 {
                    warn!(file = %name, "removing a log file whose header was torn");
                    device.remove(&name)?;
                    continue;
                }
                warn!(file = %name, offset = length, cut = content.len() as u64 - length, "cutting a torn log tail");
                device.truncate(&name, length)?;
                length
            }
            Err((offset, reason)) => return Err(corrupt(offset, reason)),
        };
        recovered.files.push_back(LogFile {
            first_sequence,
            name: file_name(first_sequence),
            length,
        });
    }
    Ok(recovered)
}

#[derive(Debug)]
enum FileEnd {
    Complete,
    /// The file's frames end here; the rest is zeros (unused preallocated space, version 2).
    UnusedFrom(u64),
    /// The file is valid up to this length; the rest is a torn write.
    TornAt(u64),
}

fn read_file(
    content: &[u8],
    first_sequence: u64,
    is_last: bool,
    recovered: &mut Recovered,
) -> Result<FileEnd, (u64, String)> {
    let header = match FileHeader::decode(content) {
        Ok(header) => header,
        Err(error) => {
            // Only zeros over the header itself show a torn write: a zero sector further on
            // (a torn frame after synced ones) does not excuse a damaged header.
            let torn = is_last
                && (content.len() < FILE_HEADER_LEN || header_is_torn(content, 0, FILE_HEADER_LEN));
            if torn {
                return Ok(FileEnd::TornAt(0));
            }
            return Err((0, format!("bad file header: {error}")));
        }
    };
    if header.first_sequence != first_sequence {
        return Err((0, "file header does not match the file name".into()));
    }
    // In a file that may be preallocated, the zeros at its end are unused space: a frame
    // boundary inside them is where the file's content ends.
    let zero_tail_start = if header.may_be_preallocated() {
        content.len() - content.iter().rev().take_while(|&&byte| byte == 0).count()
    } else {
        content.len()
    };
    let mut offset = FILE_HEADER_LEN;
    while offset < content.len() {
        if offset >= zero_tail_start {
            return Ok(FileEnd::UnusedFrom(offset as u64));
        }
        match decode_frame(&content[offset..]) {
            Ok((frame, records)) => {
                if frame.first_sequence != recovered.next_sequence {
                    return Err((
                        offset as u64,
                        format!(
                            "frame starts at sequence {}, expected {}",
                            frame.first_sequence, recovered.next_sequence
                        ),
                    ));
                }
                for record in records {
                    recovered.records.push(LogRecord {
                        sequence: recovered.next_sequence,
                        payload: Bytes::copy_from_slice(record),
                    });
                    recovered.next_sequence += 1;
                }
                offset += super::frame::FRAME_HEADER_LEN + frame.payload_length as usize;
            }
            Err(fault) => {
                return classify_bad_frame(content, offset, fault, is_last, zero_tail_start)
            }
        }
    }
    Ok(FileEnd::Complete)
}

/// Tells a torn tail from corruption. A frame is torn when it is the last thing in the last
/// file (no valid frame follows) and it is incomplete or zero-filled where a crash leaves an
/// unsynced write zero-filled. Anything else that fails its checks is corruption. Only zeros
/// follow the last thing written in a preallocated (version 2) file, so there "ends the file"
/// means "is followed by zeros only" (`zero_tail_start`; the file's length for version 1).
///
/// The zeros must lie within the bad frame itself. A synced frame with a flipped bit, followed by
/// a torn write that left zeros, used to pass for torn: the synced frame was cut, acknowledged
/// records were silently lost, and when it was the only frame left (a fresh checkpoint) the
/// container came back empty.
fn classify_bad_frame(
    content: &[u8],
    offset: usize,
    fault: FrameFault,
    is_last: bool,
    zero_tail_start: usize,
) -> Result<FileEnd, (u64, String)> {
    let at = offset as u64;
    if let Some(later) = next_valid_frame(content, offset + 1) {
        return Err((
            at,
            format!("bad frame ({fault:?}) followed by a valid frame at {later}"),
        ));
    }
    if !is_last {
        return Err((
            at,
            format!("bad frame ({fault:?}) in a file that is not the last"),
        ));
    }
    let torn = match decode_frame_header(&content[offset..]) {
        // The header is intact, so the frame's extent is known: it must end the file (a torn
        // write is the last thing written) or be cut short, and its zeros must be its own.
        Ok(header) => {
            let end = offset + FRAME_HEADER_LEN + header.payload_length as usize;
            let ends_file = end == content.len() || (end < content.len() && end >= zero_tail_start);
            end > content.len()
                || (ends_file
                    && has_zero_sector(content, offset, end)
                    && !one_flipped_bit_explains(
                        &content[offset + FRAME_HEADER_LEN..end],
                        header.payload_crc,
                    ))
        }
        Err(FrameFault::Incomplete) => true,
        Err(_) => header_is_torn(content, offset, FRAME_HEADER_LEN),
    };
    if torn {
        Ok(FileEnd::TornAt(at))
    } else {
        Err((
            at,
            format!("last frame is complete but fails its checks ({fault:?})"),
        ))
    }
}

fn next_valid_frame(content: &[u8], from: usize) -> Option<usize> {
    let magic = super::frame::FRAME_MAGIC.to_le_bytes();
    (from..content.len().saturating_sub(3))
        .filter(|&at| content[at..at + 4] == magic)
        .find(|&at| decode_frame(&content[at..]).is_ok())
}

/// Whether flipping one bit of `payload` would give it the CRC32C `expected`. A complete frame
/// whose payload is one flipped bit away from its checksum was damaged, not torn, even when it
/// holds zeros that look like a torn write's (legitimate zeros: the last bytes of a record just
/// past a sector boundary, or appended zero-filled data). Treating such a frame as torn cut
/// acknowledged records silently.
///
/// CRCs are linear: flipping the bit `k` bits before the end of the message changes the CRC by
/// the CRC register state reached from the polynomial after `k` zero bits, so one pass over the
/// payload's bit positions tries them all. A torn payload matches by chance with probability
/// about `8 * len / 2^32`, and is then reported as corruption (never the other way around).
fn one_flipped_bit_explains(payload: &[u8], expected: u32) -> bool {
    const POLY: u32 = 0x82F6_3B78; // CRC-32C, reflected
    let syndrome = crc32c::crc32c(payload) ^ expected;
    let mut register = POLY;
    for _ in 0..payload.len() * 8 {
        if register == syndrome {
            return true;
        }
        register = if register & 1 == 1 {
            (register >> 1) ^ POLY
        } else {
            register >> 1
        };
    }
    false
}

/// Whether a header at `offset` (`length` bytes) that fails its checks was torn rather than
/// damaged: some of its bytes lie in a run of zeros that reaches the end of the file, fills a
/// whole file-aligned sector, or starts at the header and ends at a sector boundary. The last
/// case is a file system that persisted a file's new length but not the appended bytes: they
/// read back as zeros from the old end of the file, which need not be sector-aligned (a small
/// frame inside one sector used to be reported as corruption). An intact header with a flipped
/// bit has no such run: it begins with a magic number and is followed by non-empty records.
fn header_is_torn(content: &[u8], offset: usize, length: usize) -> bool {
    let header_end = (offset + length).min(content.len());
    let mut position = offset;
    while position < header_end {
        if content[position] != 0 {
            position += 1;
            continue;
        }
        let start = position;
        let end = content[start..]
            .iter()
            .position(|&b| b != 0)
            .map_or(content.len(), |run| start + run);
        let fills_sector = start.div_ceil(SECTOR_BYTES) * SECTOR_BYTES + SECTOR_BYTES <= end;
        let from_old_end = start == offset && end % SECTOR_BYTES == 0;
        if end == content.len() || fills_sector || from_old_end {
            return true;
        }
        position = end;
    }
    false
}

/// Whether `content[start..end]` covers a whole, file-aligned sector of zeros, or ends in a
/// zero-filled partial sector at the end of the file.
///
/// The frame's last sector counts when it is zero in the file as a whole, past the frame's end
/// too (preallocated space): a write cut at a page or sector boundary a few bytes before the
/// frame's end leaves such a sector. (A process killed during a buffered write is cut at a page
/// boundary: the crash test saw a frame whose last 79 bytes, from a page boundary, were zero.)
fn has_zero_sector(content: &[u8], start: usize, end: usize) -> bool {
    let first_sector = start.div_ceil(SECTOR_BYTES) * SECTOR_BYTES;
    let mut sector = first_sector;
    while sector < end {
        let sector_end = (sector + SECTOR_BYTES).min(content.len());
        if content[sector..sector_end].iter().all(|&b| b == 0) {
            return true;
        }
        sector = sector_end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::frame::encode_frame;

    /// A preallocated file: a header, `frames` frames of 3 records of 300 bytes each, zeros.
    fn preallocated_file(frames: u8) -> (Vec<u8>, Vec<usize>) {
        let mut content = Vec::new();
        FileHeader::new(0).encode(&mut content);
        let mut starts = Vec::new();
        for frame in 0..frames {
            starts.push(content.len());
            let records: Vec<Vec<u8>> = (0..3).map(|r| vec![frame * 3 + r + 1; 300]).collect();
            encode_frame(&mut content, u64::from(frame) * 3, &records);
        }
        content.resize(16384, 0);
        (content, starts)
    }

    fn recover_content(content: &[u8]) -> (Result<FileEnd, (u64, String)>, usize) {
        let mut recovered = Recovered {
            files: VecDeque::new(),
            records: Vec::new(),
            next_sequence: 0,
        };
        let end = read_file(content, 0, true, &mut recovered);
        (end, recovered.records.len())
    }

    #[test]
    fn a_last_frame_cut_a_few_bytes_before_its_end_at_a_sector_boundary_is_torn() {
        let (intact, starts) = preallocated_file(4);
        let last = starts[3];
        let last_end = last + FRAME_HEADER_LEN + 3 * 304;
        // Cut the write at the last sector boundary inside the frame: the frame's last bytes,
        // fewer than a sector, are zero, and so is the rest of that sector (unused space).
        let cut = last_end / SECTOR_BYTES * SECTOR_BYTES;
        assert!(cut > last && last_end - cut < SECTOR_BYTES);
        let mut torn = intact.clone();
        torn[cut..last_end].fill(0);
        let (end, records) = recover_content(&torn);
        assert!(
            matches!(end, Ok(FileEnd::TornAt(at)) if at == last as u64),
            "{end:?}"
        );
        assert_eq!(records, 9);
        // The same bytes zeroed in a frame that is not the last thing written: corruption.
        let middle = starts[2];
        let middle_end = middle + FRAME_HEADER_LEN + 3 * 304;
        let mut damaged = intact;
        let cut = middle_end / SECTOR_BYTES * SECTOR_BYTES;
        assert!(cut > middle);
        damaged[cut..middle_end].fill(0);
        let (end, _) = recover_content(&damaged);
        assert!(end.is_err(), "{end:?}");
    }

    #[test]
    fn every_single_flipped_bit_is_explained_and_a_zeroed_tail_is_not() {
        let payload: Vec<u8> = (0..300u32).map(|i| (i * 37 % 251) as u8).collect();
        let crc = crc32c::crc32c(&payload);
        for bit in 0..payload.len() * 8 {
            let mut damaged = payload.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(one_flipped_bit_explains(&damaged, crc), "bit {bit}");
        }
        assert!(
            !one_flipped_bit_explains(&payload, crc),
            "an intact payload"
        );
        for zeros in [1, 7, 64, 299] {
            let mut torn = payload.clone();
            let from = torn.len() - zeros;
            torn[from..].fill(0);
            assert!(!one_flipped_bit_explains(&torn, crc), "{zeros} zeros");
        }
    }
}
