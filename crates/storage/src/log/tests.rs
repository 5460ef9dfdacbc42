use super::*;
use crate::sim::{SimDisk, TailFate};
use proptest::prelude::*;

fn config() -> LogConfig {
    LogConfig {
        max_file_bytes: 4096,
        ..LogConfig::default()
    }
}

fn open(disk: &SimDisk) -> Result<(DurableLog, Vec<LogRecord>), LogError> {
    DurableLog::open(Box::new(disk.clone()), config())
}

fn payloads(records: &[LogRecord]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.payload.to_vec()).collect()
}

fn record(n: u64) -> Bytes {
    Bytes::from(format!("record-{n}-").repeat(1 + (n % 7) as usize))
}

#[test]
fn records_survive_reopen_across_files() {
    let disk = SimDisk::new();
    let (mut log, recovered) = open(&disk).unwrap();
    assert!(recovered.is_empty());
    let mut written = Vec::new();
    for batch in 0..50u64 {
        let records: Vec<Bytes> = (0..3).map(|i| record(batch * 3 + i)).collect();
        written.extend(records.iter().map(|r| r.to_vec()));
        log.write(&records, false).unwrap();
    }
    assert!(log.file_count() > 1, "small files force rolling");
    let (reopened, recovered) = open(&disk).unwrap();
    assert_eq!(payloads(&recovered), written);
    assert_eq!(reopened.next_sequence(), 150);
    assert!(recovered
        .iter()
        .enumerate()
        .all(|(i, r)| r.sequence == i as u64));
}

#[test]
fn truncation_removes_whole_files_before_a_new_file() {
    let disk = SimDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    for n in 0..40 {
        log.write(&[record(n)], false).unwrap();
    }
    let checkpoint = log.next_sequence();
    log.write(&[Bytes::from_static(b"checkpoint")], true)
        .unwrap();
    log.write(&[record(99)], false).unwrap();
    let removed = log.truncate_before(checkpoint).unwrap();
    assert!(removed >= 1);
    assert_eq!(log.file_count(), 1);
    let (_, recovered) = open(&disk).unwrap();
    assert_eq!(recovered[0].sequence, checkpoint);
    assert_eq!(
        payloads(&recovered),
        vec![b"checkpoint".to_vec(), record(99).to_vec()]
    );
}

#[test]
fn torn_tail_is_cut_and_appending_resumes() {
    for fate in [
        TailFate::Lost,
        TailFate::Prefix { kept: 5 },
        TailFate::Prefix { kept: 40 },
        TailFate::PrefixThenZeros {
            kept: 33,
            zeros: 4096,
        },
    ] {
        let disk = SimDisk::new();
        let (mut log, _) = open(&disk).unwrap();
        log.write(&[record(1), record(2)], false).unwrap();
        // An unsynced frame: what a crash in the middle of a write leaves.
        let mut frame = Vec::new();
        encode_frame(&mut frame, 2, &[vec![7u8; 2000]]);
        let mut device: Box<dyn LogDevice> = Box::new(disk.clone());
        device.append(&file_name(0), &frame).unwrap();
        disk.crash(|_, _| fate);
        let (mut log, recovered) = open(&disk).unwrap();
        assert_eq!(
            payloads(&recovered),
            vec![record(1).to_vec(), record(2).to_vec()],
            "{fate:?}"
        );
        log.write(&[record(3)], false).unwrap();
        let (_, recovered) = open(&disk).unwrap();
        assert_eq!(recovered.len(), 3, "{fate:?}");
    }
}

#[test]
fn corruption_before_the_tail_names_file_and_offset() {
    let disk = SimDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    for n in 0..5 {
        log.write(&[record(n)], false).unwrap();
    }
    // Byte 40 is inside the first frame's payload of the only file.
    let (file, offset) = disk.flip_bit(40 * 8).unwrap();
    assert_eq!(offset, 40);
    match open(&disk) {
        Err(LogError::Corrupt {
            file: bad, offset, ..
        }) => {
            assert_eq!(bad, file);
            assert_eq!(offset, FILE_HEADER_LEN as u64);
        }
        other => panic!("expected corruption, got {:?}", other.map(|(_, r)| r.len())),
    }
}

#[test]
fn a_complete_but_damaged_last_frame_is_corruption_not_a_torn_tail() {
    let disk = SimDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    log.write(&[record(1)], false).unwrap();
    log.write(&[record(2)], false).unwrap();
    let total_bits = disk.synced_bytes() * 8;
    disk.flip_bit(total_bits - 3).unwrap();
    assert!(matches!(open(&disk), Err(LogError::Corrupt { .. })));
}

#[test]
fn a_frame_read_back_as_zeros_from_an_unaligned_end_of_file_is_torn() {
    // The file's new length was persisted but not the appended frame: it reads back as zeros
    // from the old end of the file, and ends before the next sector boundary.
    let disk = SimDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    log.write(&[record(1)], false).unwrap();
    let mut frame = Vec::new();
    encode_frame(&mut frame, 1, &[vec![7u8; 40]]);
    assert!(disk.synced_bytes() + frame.len() as u64 <= 512);
    let mut device: Box<dyn LogDevice> = Box::new(disk.clone());
    device.append(&file_name(0), &frame).unwrap();
    disk.crash(|_, unsynced| TailFate::PrefixThenZeros {
        kept: 0,
        zeros: unsynced,
    });
    let (_, recovered) = open(&disk).unwrap();
    assert_eq!(payloads(&recovered), vec![record(1).to_vec()]);
}

#[test]
fn a_damaged_synced_frame_stays_corruption_when_a_torn_write_follows() {
    let disk = SimDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    log.write(&[record(1)], false).unwrap();
    // A flipped bit in the synced frame's payload...
    let payload = (FILE_HEADER_LEN + FRAME_HEADER_LEN) as u64;
    disk.flip_bit((payload + 2) * 8).unwrap();
    // ...then a crash leaves the next write as zero sectors after it. The zeros are not the
    // damaged frame's own: cutting it as a torn tail would lose an acknowledged record.
    let mut frame = Vec::new();
    encode_frame(&mut frame, 1, &[vec![7u8; 2000]]);
    let mut device: Box<dyn LogDevice> = Box::new(disk.clone());
    device.append(&file_name(0), &frame).unwrap();
    disk.crash(|_, unsynced| TailFate::PrefixThenZeros {
        kept: 0,
        zeros: unsynced,
    });
    assert!(matches!(open(&disk), Err(LogError::Corrupt { .. })));
}

#[test]
fn a_flipped_bit_in_a_last_frame_with_trailing_zeros_is_corruption() {
    // The last frame's payload ends in zeros that start at a sector boundary (legitimate
    // zeros look like a torn write's zero-filled last sector); a flipped bit elsewhere in it
    // must still be reported.
    let disk = SimDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    log.write(&[record(1)], false).unwrap();
    let used = usize::try_from(disk.synced_bytes()).unwrap() + FRAME_HEADER_LEN + 4;
    let mut last = vec![7u8; 512 - used % 512];
    last.extend_from_slice(&[0; 40]);
    log.write(&[Bytes::from(last)], false).unwrap();
    assert_eq!(disk.synced_bytes() % 512, 40);
    disk.flip_bit((disk.synced_bytes() - 100) * 8 + 3).unwrap();
    assert!(matches!(open(&disk), Err(LogError::Corrupt { .. })));
}

#[test]
fn a_frame_with_zero_filled_data_and_a_flipped_bit_is_corruption() {
    let disk = SimDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    log.write(&[Bytes::from(vec![0u8; 4096])], false).unwrap();
    disk.flip_bit(u64::try_from(FILE_HEADER_LEN + FRAME_HEADER_LEN + 4 + 100).unwrap() * 8)
        .unwrap();
    assert!(matches!(open(&disk), Err(LogError::Corrupt { .. })));
}

#[test]
fn a_missing_middle_file_is_corruption() {
    let disk = SimDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    for n in 0..200 {
        log.write(&[record(n)], false).unwrap();
    }
    let names = disk.file_names();
    assert!(names.len() >= 3);
    let mut device: Box<dyn LogDevice> = Box::new(disk.clone());
    device.remove(&names[1]).unwrap();
    assert!(matches!(open(&disk), Err(LogError::Corrupt { .. })));
}

#[tokio::test]
async fn writer_group_commits_and_reports_durability_in_order() {
    let disk = SimDisk::new();
    let (log, _) = open(&disk).unwrap();
    let (writer, mut completions) = LogWriter::start(log);
    for sequence in 0..100u64 {
        writer
            .append(sequence, record(sequence), sequence == 50)
            .unwrap();
    }
    let mut durable = None;
    while durable != Some(99) {
        match completions.recv().await.unwrap() {
            LogCompletion::Durable(up_to) => {
                assert!(durable.is_none_or(|before| up_to > before));
                durable = Some(up_to);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    writer.truncate_before(50).unwrap();
    assert!(matches!(
        completions.recv().await.unwrap(),
        LogCompletion::Truncated { before: 50, .. }
    ));
    drop(writer);
    let (_, recovered) = open(&disk).unwrap();
    assert_eq!(recovered.first().map(|r| r.sequence), Some(50));
    assert_eq!(recovered.len(), 50);
}

#[tokio::test]
async fn writer_reports_device_failure() {
    let disk = SimDisk::new();
    let (log, _) = open(&disk).unwrap();
    let (writer, mut completions) = LogWriter::start(log);
    disk.fail_after(0);
    assert!(writer.failure().is_none());
    writer.append(0, record(0), false).unwrap();
    let LogCompletion::Failed(reported) = completions.recv().await.unwrap() else {
        panic!("a failure is reported");
    };
    // The writer has stopped: later requests are refused, and the failure that stopped it is
    // at hand for whoever they came from (its report may not have been read yet).
    assert!(completions.recv().await.is_none(), "the writer stopped");
    assert!(matches!(
        writer.append(1, record(1), false),
        Err(LogError::Closed)
    ));
    let kept = writer.failure().expect("the failure is kept");
    assert!(std::sync::Arc::ptr_eq(&kept, &reported));
    assert!(matches!(*kept, LogError::Io(_)), "{kept}");
}

#[test]
fn file_log_device_round_trip() {
    let directory = tempfile::tempdir().unwrap();
    let device = FileLogDevice::open(directory.path().join("log")).unwrap();
    let (mut log, _) = DurableLog::open(Box::new(device), config()).unwrap();
    log.write(&[record(1), record(2)], false).unwrap();
    drop(log);
    let device = FileLogDevice::open(directory.path().join("log")).unwrap();
    let (_, recovered) = DurableLog::open(Box::new(device), config()).unwrap();
    assert_eq!(
        payloads(&recovered),
        vec![record(1).to_vec(), record(2).to_vec()]
    );
}

proptest! {
    /// Random batches, random crashes with random tail fates: recovery returns exactly the
    /// synced records, in order, and the log keeps working afterwards.
    #[test]
    fn recovery_returns_exactly_what_was_synced(
        rounds in proptest::collection::vec(
            (proptest::collection::vec(0usize..600, 1..5), 0u8..4, 0usize..5000, any::<bool>()),
            1..12,
        ),
    ) {
        let disk = SimDisk::new();
        let mut expected: Vec<Vec<u8>> = Vec::new();
        for (sizes, fate, kept, new_file) in rounds {
            let (mut log, recovered) = open(&disk).unwrap();
            prop_assert_eq!(payloads(&recovered), expected.clone());
            let records: Vec<Bytes> = sizes.iter().map(|&s| Bytes::from(vec![u8::try_from(s % 251).unwrap() + 1; s])).collect();
            log.write(&records, new_file).unwrap();
            expected.extend(records.iter().map(|r| r.to_vec()));
            // Then an unsynced frame that the crash tears.
            let mut frame = Vec::new();
            encode_frame(&mut frame, log.next_sequence(), &[vec![9u8; 900]]);
            let last = file_name(log.files.back().unwrap().first_sequence);
            let mut device: Box<dyn LogDevice> = Box::new(disk.clone());
            device.append(&last, &frame).unwrap();
            let fate = match fate {
                0 => TailFate::Lost,
                1 => TailFate::Prefix { kept },
                2 => TailFate::PrefixThenZeros { kept: kept.min(frame.len() - 600), zeros: 4096 },
                _ => TailFate::Kept,
            };
            if matches!(fate, TailFate::Kept) || matches!(fate, TailFate::Prefix { kept } if kept >= frame.len()) {
                expected.push(vec![9u8; 900]);
            }
            disk.crash(|_, _| fate);
        }
        let (_, recovered) = open(&disk).unwrap();
        prop_assert_eq!(payloads(&recovered), expected);
    }
}

/// A file holding one synced frame (record 1), a torn frame after it (its tail zero-filled),
/// and zeros after that, under a file header of `version`.
fn torn_frame_then_zeros(version: u16) -> SimDisk {
    let disk = SimDisk::new();
    let mut content = Vec::new();
    FileHeader {
        first_sequence: 0,
        version,
    }
    .encode(&mut content);
    encode_frame(&mut content, 0, &[record(1)]);
    let torn_from = content.len();
    encode_frame(&mut content, 1, &[vec![7u8; 2000]]);
    content[torn_from + 1200..].fill(0);
    content.extend_from_slice(&[0; 4096]);
    let mut device: Box<dyn LogDevice> = Box::new(disk.clone());
    device.append(&file_name(0), &content).unwrap();
    device.sync(&file_name(0)).unwrap();
    disk
}

#[test]
fn a_torn_frame_followed_by_preallocated_zeros_is_cut_in_version_2_only() {
    let disk = torn_frame_then_zeros(2);
    let (mut log, recovered) = open(&disk).unwrap();
    assert_eq!(payloads(&recovered), vec![record(1).to_vec()]);
    let expected_length = FILE_HEADER_LEN + FRAME_HEADER_LEN + 4 + record(1).len();
    assert_eq!(log.size_bytes(), expected_length as u64);
    log.write(&[record(2)], false).unwrap();
    let (_, recovered) = open(&disk).unwrap();
    assert_eq!(
        payloads(&recovered),
        vec![record(1).to_vec(), record(2).to_vec()]
    );
    // Version 1 files are never preallocated: bytes after a bad frame mean damage.
    let disk = torn_frame_then_zeros(1);
    assert!(matches!(open(&disk), Err(LogError::Corrupt { .. })));
}

#[test]
fn zeros_after_the_last_frame_of_an_earlier_file_are_unused_space() {
    let disk = SimDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    log.write(&[record(1)], false).unwrap();
    let mut device: Box<dyn LogDevice> = Box::new(disk.clone());
    device.append(&file_name(0), &[0; 5000]).unwrap();
    device.sync(&file_name(0)).unwrap();
    log.write(&[record(2)], true).unwrap();
    let (reopened, recovered) = open(&disk).unwrap();
    assert_eq!(
        payloads(&recovered),
        vec![record(1).to_vec(), record(2).to_vec()]
    );
    assert_eq!(reopened.file_count(), 2);
    // Zeros that end the last file are released, and appending continues after the last frame.
    let (mut log, _) = open(&disk).unwrap();
    device.append(&file_name(1), &[0; 3000]).unwrap();
    device.sync(&file_name(1)).unwrap();
    drop(log);
    let (reopened, _) = open(&disk).unwrap();
    log = reopened;
    log.write(&[record(3)], false).unwrap();
    let (_, recovered) = open(&disk).unwrap();
    assert_eq!(recovered.len(), 3);
}

/// Preallocated files of this size (two `config()` files' worth).
const PREALLOCATED: u64 = 8192;

fn preallocating_device(path: &std::path::Path) -> FileLogDevice {
    FileLogDevice::open(path)
        .unwrap()
        .with_preallocation(PREALLOCATED)
}

#[test]
fn preallocated_file_log_device_recovers_and_keeps_appending() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log");
    let device = || preallocating_device(&path);
    let (mut log, _) = DurableLog::open(Box::new(device()), config()).unwrap();
    let mut written = Vec::new();
    for n in 0..60_u8 {
        let bytes = Bytes::from(vec![n + 1; 300]);
        log.write(std::slice::from_ref(&bytes), false).unwrap();
        written.push(bytes.to_vec());
        // Give the background thread time to write the spare before the next file starts.
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(log.file_count() >= 3);
    let on_disk: Vec<u64> = log
        .files
        .iter()
        .map(|file| std::fs::metadata(path.join(&file.name)).unwrap().len())
        .collect();
    assert!(
        on_disk.contains(&PREALLOCATED),
        "some file was preallocated: {on_disk:?}"
    );
    drop(log);
    let (mut log, recovered) = DurableLog::open(Box::new(device()), config()).unwrap();
    assert_eq!(payloads(&recovered), written);
    log.write(&[record(99)], false).unwrap();
    written.push(record(99).to_vec());
    drop(log);
    let (_, recovered) = DurableLog::open(Box::new(device()), config()).unwrap();
    assert_eq!(payloads(&recovered), written);
}

#[test]
fn removed_log_files_are_recycled_as_zero_filled_spares() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log");
    let device = || preallocating_device(&path);
    let (mut log, _) = DurableLog::open(Box::new(device()), config()).unwrap();
    let mut written = Vec::new();
    // A file's inode number and creation time: the file system may give a new file a freed
    // inode number, never an old creation time.
    let identity = |file: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(file).unwrap();
        (metadata.ino(), metadata.created().unwrap())
    };
    let mut removed_files = Vec::new();
    let mut sequence = 0;
    for n in 0..120_u8 {
        let bytes = Bytes::from(vec![n | 1; 300]);
        log.write(std::slice::from_ref(&bytes), false).unwrap();
        written.push(bytes.to_vec());
        sequence += 1;
        if n % 20 == 19 {
            // Keep the last 10 records: the files before them go (and the first one of them
            // becomes the spare).
            let before: Vec<String> = log.files.iter().map(|file| file.name.clone()).collect();
            let identities: Vec<_> = before
                .iter()
                .map(|name| identity(&path.join(name)))
                .collect();
            let removed = log.truncate_before(sequence - 10).unwrap();
            removed_files.extend_from_slice(&identities[..removed]);
            written.drain(..written.len() - 10);
        }
        // Give the background thread time to zero the spare before the next file starts.
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // The same file removed twice: it lived on as a later log file.
    let distinct: std::collections::HashSet<_> = removed_files.iter().collect();
    assert!(
        distinct.len() < removed_files.len(),
        "no removed file came back as a log file: {removed_files:?}"
    );
    drop(log);
    // Recycled files were zero-filled: recovery reads exactly what was kept, no stale frame.
    let (mut log, recovered) = DurableLog::open(Box::new(device()), config()).unwrap();
    let kept = written.len();
    assert_eq!(payloads(&recovered)[recovered.len() - kept..], written[..]);
    log.write(&[record(200)], false).unwrap();
    drop(log);
    let (_, recovered) = DurableLog::open(Box::new(device()), config()).unwrap();
    assert_eq!(payloads(&recovered).last().unwrap(), &record(200).to_vec());
}

#[test]
fn discarded_log_files_leave_at_once_and_are_unlinked_in_the_background() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log");
    let device = || FileLogDevice::open(&path).unwrap();
    let (mut log, _) = DurableLog::open(Box::new(device()), config()).unwrap();
    for n in 0..200 {
        log.write(&[record(n)], false).unwrap();
    }
    let files_before = log.file_count();
    assert!(files_before >= 3);
    let removed = log.truncate_before(190).unwrap();
    assert!(removed >= 2);
    // Gone from the log's names at once (renamed), whatever the background thread has done.
    let mut listed = device().list().unwrap();
    listed.sort();
    let kept: Vec<String> = log.files.iter().map(|file| file.name.clone()).collect();
    assert_eq!(listed, kept);
    drop(log);
    // Dropping the device waits for the unlinks: nothing discarded is left.
    let mut on_disk: Vec<String> = std::fs::read_dir(&path)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, kept);
    // A file discarded but not yet unlinked at a crash is removed when the device is opened,
    // and never read as log.
    std::fs::write(path.join("00000000000000000000.log.discarded"), b"stale").unwrap();
    let (_, recovered) = DurableLog::open(Box::new(device()), config()).unwrap();
    assert_eq!(
        recovered.first().map(|r| r.sequence),
        Some(log_first(&kept))
    );
    assert!(!path
        .join("00000000000000000000.log.discarded")
        .try_exists()
        .unwrap());
}

fn log_first(names: &[String]) -> u64 {
    super::parse_file_name(&names[0]).unwrap()
}

/// Names of the hidden files kept for reuse in a log directory, sorted.
fn recycled_files(path: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("recycled-"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_file_a_truncation_drops_is_kept_for_reuse_up_to_a_bound() {
    const MAX_RECYCLED_FILES: usize = 8;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log");
    let device = || preallocating_device(&path).with_recycling(MAX_RECYCLED_FILES);
    let (mut log, _) = DurableLog::open(Box::new(device()), config()).unwrap();
    let mut sequence = 0;
    while log.file_count() < 6 {
        log.write(&[record(sequence)], false).unwrap();
        sequence += 1;
    }
    // One truncation drops several files: all are kept (renamed, not unlinked), hidden from
    // the log's names.
    let removed = log.truncate_before(sequence - 1).unwrap();
    assert!(removed >= 4, "removed {removed}");
    assert_eq!(recycled_files(&path).len(), removed);
    let mut listed = device().list().unwrap();
    listed.sort();
    let kept: Vec<String> = log.files.iter().map(|file| file.name.clone()).collect();
    assert_eq!(listed, kept);
    // New files reuse them: the log grows without the pool growing.
    let pool = recycled_files(&path).len();
    for _ in 0..200 {
        log.write(&[record(sequence)], false).unwrap();
        sequence += 1;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(
        recycled_files(&path).len() < pool,
        "no recycled file was reused"
    );
    // Beyond the bound, dropped files are unlinked.
    while log.file_count() < MAX_RECYCLED_FILES + 4 {
        log.write(&[record(sequence)], false).unwrap();
        sequence += 1;
    }
    let removed = log.truncate_before(sequence - 1).unwrap();
    assert!(removed + recycled_files(&path).len() > MAX_RECYCLED_FILES);
    assert_eq!(recycled_files(&path).len(), MAX_RECYCLED_FILES);
    drop(log);
    // Reopened, the kept files are adopted (never read as log) and reused.
    let adopted = recycled_files(&path);
    assert!(!adopted.is_empty());
    let (mut log, recovered) = DurableLog::open(Box::new(device()), config()).unwrap();
    assert_eq!(
        payloads(&recovered).last().unwrap(),
        &record(sequence - 1).to_vec()
    );
    for _ in 0..100 {
        log.write(&[record(sequence)], false).unwrap();
        sequence += 1;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(recycled_files(&path).len() < adopted.len());
    drop(log);
    let (_, recovered) = DurableLog::open(Box::new(device()), config()).unwrap();
    assert_eq!(
        payloads(&recovered).last().unwrap(),
        &record(sequence - 1).to_vec()
    );
}
