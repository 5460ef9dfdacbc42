//! Reading the log back after a restart: torn tails are cut, corruption is reported.

use std::collections::VecDeque;

use bytes::Bytes;
use tracing::warn;

use super::frame::{decode_frame, FileHeader, FrameFault, FILE_HEADER_LEN};
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

enum FileEnd {
    Complete,
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
            let torn = is_last
                && (content.len() < FILE_HEADER_LEN || has_zero_sector(content, 0, content.len()));
            if torn {
                return Ok(FileEnd::TornAt(0));
            }
            return Err((0, format!("bad file header: {error}")));
        }
    };
    if header.first_sequence != first_sequence {
        return Err((0, "file header does not match the file name".into()));
    }
    let mut offset = FILE_HEADER_LEN;
    while offset < content.len() {
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
            Err(fault) => return classify_bad_frame(content, offset, fault, is_last),
        }
    }
    Ok(FileEnd::Complete)
}

/// Tells a torn tail from corruption. A frame is torn when it is the last thing in the last
/// file (no valid frame follows) and it is incomplete or has a zero-filled sector, which is what
/// a crash leaves of an unsynced write. Anything else that fails its checks is corruption.
fn classify_bad_frame(
    content: &[u8],
    offset: usize,
    fault: FrameFault,
    is_last: bool,
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
    let torn = fault == FrameFault::Incomplete || has_zero_sector(content, offset, content.len());
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

/// Whether `content[start..end]` covers a whole, file-aligned sector of zeros, or ends in a
/// zero-filled partial sector at the end of the file.
fn has_zero_sector(content: &[u8], start: usize, end: usize) -> bool {
    let first_sector = start.div_ceil(SECTOR_BYTES) * SECTOR_BYTES;
    let mut sector = first_sector;
    while sector < end {
        let sector_end = (sector + SECTOR_BYTES).min(end);
        let whole_or_tail = sector_end - sector == SECTOR_BYTES || sector_end == content.len();
        if whole_or_tail && content[sector..sector_end].iter().all(|&b| b == 0) {
            return true;
        }
        sector = sector_end;
    }
    false
}
