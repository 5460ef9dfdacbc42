//! Large events against an in-process standalone: a 1 GiB event written from a stream of
//! chunks between two small events, read back with a checksum and bounded memory, never
//! visible in part; a large event whose segment is sealed while it is written; chunks that do
//! not add up to the announced size.

mod common;
mod events_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use pravaha_client::controller::types::{KeyRange, ScopedSegment};
use pravaha_client::event::{EventWriterError, MAX_LARGE_EVENT_PAYLOAD};
use pravaha_client::segment::{ReaderConfig, SegmentReader};

use common::segments::locator;
use common::Standalone;
use events_common::{bounded, stream_on, stream_with};

const CHUNK: usize = 1 << 20;

/// The tests of this file run one at a time: the 1 GiB test measures the process's peak
/// resident memory, to which tests running beside it in the same process would add theirs.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Deterministic pseudo-random bytes (xorshift64), one chunk at a time.
struct Bytes64 {
    state: u64,
}

impl Bytes64 {
    fn new(seed: u64) -> Self {
        Self { state: seed | 1 }
    }

    fn chunk(&mut self, len: usize) -> Bytes {
        let mut out = BytesMut::with_capacity(len);
        while out.len() < len {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            let take = (len - out.len()).min(8);
            out.extend_from_slice(&x.to_le_bytes()[..take]);
        }
        out.freeze()
    }
}

/// Starts the process's peak resident memory (VmHWM) again from its current resident memory,
/// so that what earlier tests of the process held is not counted.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak resident memory");
}

/// The process's peak resident memory, in bytes (VmHWM).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

/// One event read back: its length, the CRC-32C of its payload, and the payload when small.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    len: u64,
    crc: u32,
    small: Option<Bytes>,
}

/// Reads `segment` from 0 to `end` in pieces of at most 1 MiB, parsing event records as they
/// stream by: nothing of an event is kept but its checksum (and small payloads).
async fn scan(segment: &ScopedSegment, address: std::net::SocketAddr, end: i64) -> Vec<Seen> {
    let mut reader = SegmentReader::new(
        locator(address),
        segment.qualified_name(),
        ReaderConfig::default(),
    );
    let mut events = Vec::new();
    let mut header = BytesMut::new();
    // (remaining, crc, small payload) of the event being read.
    let mut current: Option<(u64, u64, u32, BytesMut)> = None;
    let mut offset = 0i64;
    while offset < end {
        let want = usize::try_from(end - offset).unwrap().min(CHUNK);
        let read = bounded(reader.read(offset, want)).await.expect("a read");
        assert!(!read.data.is_empty(), "no data at {offset} below {end}");
        offset += read.data.len() as i64;
        let mut data = read.data;
        while !data.is_empty() {
            match &mut current {
                None => {
                    let take = (8 - header.len()).min(data.len());
                    header.extend_from_slice(&data.split_to(take));
                    if header.len() == 8 {
                        let mut h = header.split().freeze();
                        assert_eq!(h.get_i32(), 0, "an event record");
                        let len = u64::try_from(h.get_i32()).expect("a length");
                        current = Some((len, len, 0, BytesMut::new()));
                    }
                }
                Some((len, remaining, crc, small)) => {
                    let take = usize::try_from(*remaining).unwrap().min(data.len());
                    let part = data.split_to(take);
                    *crc = crc32c::crc32c_append(*crc, &part);
                    if *len <= 1024 {
                        small.extend_from_slice(&part);
                    }
                    *remaining -= take as u64;
                }
            }
            if let Some((len, 0, crc, small)) = &current {
                events.push(Seen {
                    len: *len,
                    crc: *crc,
                    small: (*len <= 1024).then(|| small.clone().freeze()),
                });
                current = None;
            }
        }
    }
    assert!(
        current.is_none() && header.is_empty(),
        "a record cut at {end}"
    );
    events
}

fn small(payload: &'static [u8]) -> Seen {
    Seen {
        len: payload.len() as u64,
        crc: crc32c::crc32c(payload),
        small: Some(Bytes::from_static(payload)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_gib_event_streamed_in_chunks_is_read_back_whole_in_bounded_memory() {
    let _alone = ONE_AT_A_TIME.lock().await;
    reset_peak_rss();
    // The segment store runs in this process too: its read cache is kept to 64 MiB (its
    // default is 256 MiB per container) so that the peak measures the client's memory, not
    // the server's cache.
    let standalone = Standalone::start_configured(
        |store| store.container.cache_budget_bytes = 64 << 20,
        |_| {},
    )
    .await;
    let (standalone, factory, stream) = stream_on(standalone, 1, "large").await;
    let address = standalone.segment_store_addr();
    let segment = factory
        .controller()
        .get_current_segments(&stream)
        .await
        .unwrap()
        .segments[0]
        .segment
        .clone();
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();

    // Watches the routed segment's length while the large event is written: it may show the
    // small events and the whole large one, never a part of it.
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = tokio::spawn({
        let watching = watching.clone();
        let segment = segment.qualified_name();
        async move {
            let mut info = SegmentReader::new(locator(address), segment, ReaderConfig::default());
            let mut lengths = Vec::new();
            while watching.load(Ordering::Relaxed) {
                lengths.push(info.segment_info().await.expect("segment info").length);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            lengths
        }
    });

    // Not awaited: the large event must wait for it by itself.
    let before = bounded(writer.write_event(Some("k"), &b"before"[..]))
        .await
        .unwrap();

    let size = MAX_LARGE_EVENT_PAYLOAD;
    let checksum = Arc::new(Mutex::new(0u32));
    let chunks = futures::stream::unfold(
        (Bytes64::new(0x5eed), size, checksum.clone()),
        |(mut bytes, remaining, checksum)| async move {
            if remaining == 0 {
                return None;
            }
            let chunk = bytes.chunk(usize::try_from(remaining).unwrap().min(CHUNK));
            {
                let mut crc = checksum.lock().unwrap();
                *crc = crc32c::crc32c_append(*crc, &chunk);
            }
            let remaining = remaining - chunk.len() as u64;
            Some((Ok::<_, std::io::Error>(chunk), (bytes, remaining, checksum)))
        },
    );
    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(600),
        writer.write_large_event(Some("k"), size, chunks),
    )
    .await
    .expect("the large event was written in time")
    .expect("the large event was written");
    let written_in = started.elapsed();
    before.await.unwrap();
    let after = bounded(writer.write_event(Some("k"), &b"after"[..]))
        .await
        .unwrap();
    bounded(after).await.unwrap();
    bounded(writer.close()).await.unwrap();
    watching.store(false, Ordering::Relaxed);
    let lengths = bounded(watcher).await.unwrap();

    let first = 8 + 6;
    let second = first + 8 + i64::try_from(size).unwrap();
    let third = second + 8 + 5;
    assert!(
        lengths
            .iter()
            .all(|length| [0, first, second, third].contains(length)),
        "the segment showed part of the large event: {lengths:?}"
    );
    let while_writing = lengths.iter().filter(|length| **length == first).count();
    assert!(
        while_writing > 0,
        "the watcher saw the segment while the event was written"
    );

    let started_reading = Instant::now();
    let events = scan(&segment, address, third).await;
    let read_in = started_reading.elapsed();
    let expected_crc = *checksum.lock().unwrap();
    assert_eq!(
        events,
        vec![
            small(b"before"),
            Seen {
                len: size,
                crc: expected_crc,
                small: None
            },
            small(b"after"),
        ]
    );
    let peak = peak_rss();
    println!(
        "1 GiB event: written in {written_in:?}, read back in {read_in:?}, checksum {expected_crc:08x}, \
         {while_writing} length checks during the write; peak resident memory {} MiB",
        peak >> 20
    );
    assert!(
        peak < 512 << 20,
        "peak resident memory {} MiB is not under 512 MiB",
        peak >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_event_whose_segment_is_sealed_meanwhile_lands_whole_in_the_successor() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (standalone, factory, stream) = stream_with(1, "sealed-meanwhile").await;
    let address = standalone.segment_store_addr();
    let controller = factory.controller().clone();
    let old = controller
        .get_current_segments(&stream)
        .await
        .unwrap()
        .segments[0]
        .segment
        .clone();
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    // Not awaited: the large event waits for it.
    let first = bounded(writer.write_event(Some("k"), &b"first"[..]))
        .await
        .unwrap();

    let (chunks_in, chunks_out) = tokio::sync::mpsc::channel::<Bytes>(1);
    let chunks = futures::stream::unfold(chunks_out, |mut out| async move {
        out.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), out))
    });
    let size = 20u64 << 20;
    let mut generator = Bytes64::new(7);
    let mut crc = 0;
    let feed = async {
        for index in 0..20 {
            let chunk = generator.chunk(CHUNK);
            crc = crc32c::crc32c_append(crc, &chunk);
            chunks_in.send(chunk).await.unwrap();
            if index == 10 {
                // Seal the routed segment under the event being written: one successor.
                controller
                    .scale_stream(&stream, &[old.id], &[KeyRange::new(0.0, 1.0)])
                    .await
                    .unwrap();
            }
        }
        drop(chunks_in);
    };
    let (written, ()) =
        bounded(async { tokio::join!(writer.write_large_event(Some("k"), size, chunks), feed) })
            .await;
    written.expect("the large event moved to the successor");
    bounded(first).await.unwrap();
    bounded(writer.write_event(Some("k"), &b"last"[..]))
        .await
        .unwrap()
        .await
        .unwrap();
    bounded(writer.close()).await.unwrap();

    let current = controller.get_current_segments(&stream).await.unwrap();
    let successor = current.segments[0].segment.clone();
    assert_ne!(successor, old);
    let old_events = scan(&old, address, 8 + 5).await;
    assert_eq!(old_events, vec![small(b"first")]);
    let end = 8 + i64::try_from(size).unwrap() + 8 + 4;
    let events = scan(&successor, address, end).await;
    assert_eq!(
        events,
        vec![
            Seen {
                len: size,
                crc,
                small: None
            },
            small(b"last"),
        ]
    );
    let mut info = SegmentReader::new(
        locator(address),
        successor.qualified_name(),
        ReaderConfig::default(),
    );
    assert_eq!(info.segment_info().await.unwrap().length, end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chunks_that_miss_the_size_write_nothing_and_oversized_events_are_refused() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (standalone, factory, stream) = stream_with(1, "mismatch").await;
    let address = standalone.segment_store_addr();
    let segment = factory
        .controller()
        .get_current_segments(&stream)
        .await
        .unwrap()
        .segments[0]
        .segment
        .clone();
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let chunks = |count: usize| {
        let mut generator = Bytes64::new(3);
        futures::stream::iter(
            (0..count).map(move |_| Ok::<_, std::io::Error>(generator.chunk(CHUNK))),
        )
    };
    for (count, size) in [(9, 10u64 << 20), (11, 10 << 20), (2, 3 << 20), (3, 2 << 20)] {
        let error = bounded(writer.write_large_event(Some("k"), size, chunks(count)))
            .await
            .unwrap_err();
        assert!(
            matches!(error, EventWriterError::SizeMismatch { expected, .. } if expected == size),
            "{error}"
        );
    }
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from(vec![0; CHUNK])),
        Err(std::io::Error::other("disk gone")),
    ]);
    let error = bounded(writer.write_large_event(None, 10 << 20, failing))
        .await
        .unwrap_err();
    assert!(matches!(error, EventWriterError::Source(_)), "{error}");
    let error = bounded(writer.write_large_event(None, MAX_LARGE_EVENT_PAYLOAD + 1, chunks(0)))
        .await
        .unwrap_err();
    assert!(
        matches!(error, EventWriterError::EventTooLarge { .. }),
        "{error}"
    );
    // Small "large" events take the ordinary path.
    bounded(writer.write_large_event(Some("k"), 2 << 20, chunks(2)))
        .await
        .unwrap();
    bounded(writer.close()).await.unwrap();

    let mut generator = Bytes64::new(3);
    let mut crc = crc32c::crc32c(&generator.chunk(CHUNK));
    crc = crc32c::crc32c_append(crc, &generator.chunk(CHUNK));
    let end = 8 + (2 << 20);
    let mut info = SegmentReader::new(
        locator(address),
        segment.qualified_name(),
        ReaderConfig::default(),
    );
    assert_eq!(info.segment_info().await.unwrap().length, end);
    assert_eq!(
        scan(&segment, address, end).await,
        vec![Seen {
            len: 2 << 20,
            crc,
            small: None
        }]
    );
}
