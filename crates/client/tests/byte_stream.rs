//! Byte streams against an in-process standalone: verbatim writes in uneven pieces, seeks,
//! truncation, tail waits and sealing.

mod common;

use std::io::SeekFrom;

use common::admin::{bounded, config};
use common::Standalone;
use pravaha_client::byte::{ByteReader, ByteStreamError, ByteWriter};
use pravaha_client::controller::types::{ScopedStream, StreamConfiguration};
use pravaha_client::controller::ControllerClient;

/// Deterministic, position-dependent bytes, so that a misplaced range is noticed.
fn content(length: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..length)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

async fn byte_stream(standalone: &Standalone, name: &str) -> (ControllerClient, ScopedStream) {
    let controller = ControllerClient::new(config(&standalone.controller_uri())).unwrap();
    controller.create_scope("bytes").await.unwrap();
    let stream = ScopedStream::new("bytes", name);
    assert!(controller
        .create_stream(&stream, &StreamConfiguration::fixed(1))
        .await
        .unwrap());
    (controller, stream)
}

async fn read_fully(reader: &mut ByteReader, length: usize) -> Vec<u8> {
    let mut buffer = vec![0u8; length];
    reader.read_exact(&mut buffer).await.unwrap();
    buffer
}

#[tokio::test]
async fn uneven_writes_read_back_through_seeks() {
    bounded(async {
        let standalone = Standalone::start().await;
        let (controller, stream) = byte_stream(&standalone, "uneven").await;
        let data = content(3 * (1 << 20) + 12_345);

        let mut writer = ByteWriter::new(&controller, stream.clone()).await.unwrap();
        assert_eq!(writer.current_offset(), 0);
        let sizes = [1usize, 7, 4096, 65_537, 1 << 20, 3, 2 * (1 << 20) + 11];
        let mut written = 0;
        for size in sizes.iter().cycle() {
            if written == data.len() {
                break;
            }
            let end = (written + size).min(data.len());
            assert_eq!(
                writer.write(&data[written..end]).await.unwrap(),
                end - written
            );
            written = end;
        }
        writer.flush().await.unwrap();
        assert_eq!(writer.current_offset(), data.len() as i64);

        let mut reader = ByteReader::new(&controller, stream.clone()).await.unwrap();
        assert_eq!(reader.current_tail().await.unwrap(), data.len() as i64);
        assert_eq!(reader.current_head().await.unwrap(), 0);
        // Everything, in reads of odd sizes.
        let mut got = Vec::with_capacity(data.len());
        let mut buffer = vec![0u8; 77_777];
        while got.len() < data.len() {
            let count = reader.read(&mut buffer).await.unwrap();
            assert!(count > 0);
            got.extend_from_slice(&buffer[..count]);
        }
        assert!(got == data, "the stream's bytes differ from those written");

        // Seeks from the start, the current offset and the end.
        assert_eq!(
            reader.seek(SeekFrom::Start(1_000_003)).await.unwrap(),
            1_000_003
        );
        assert!(read_fully(&mut reader, 5000).await == data[1_000_003..1_005_003]);
        assert_eq!(
            reader.seek(SeekFrom::Current(-2500)).await.unwrap(),
            1_002_503
        );
        assert!(read_fully(&mut reader, 100).await == data[1_002_503..1_002_603]);
        assert_eq!(
            reader.seek(SeekFrom::Current(2_000_000)).await.unwrap(),
            3_002_603
        );
        assert!(read_fully(&mut reader, 1000).await == data[3_002_603..3_003_603]);
        let from_end = data.len() as u64 - 4321;
        assert_eq!(reader.seek(SeekFrom::End(-4321)).await.unwrap(), from_end);
        assert!(read_fully(&mut reader, 4321).await == data[from_end as usize..]);
        assert!(matches!(
            reader
                .seek(SeekFrom::Current(-(data.len() as i64) - 1))
                .await,
            Err(ByteStreamError::InvalidOffset { .. })
        ));

        // A second writer starts at the tail.
        let mut appender = ByteWriter::new(&controller, stream).await.unwrap();
        assert_eq!(appender.current_offset(), data.len() as i64);
        appender.write(b"tail").await.unwrap();
        appender.close().await.unwrap();
        assert_eq!(
            reader.seek(SeekFrom::End(-4)).await.unwrap(),
            from_end + 4321
        );
        assert_eq!(read_fully(&mut reader, 4).await, b"tail");
    })
    .await;
}

#[tokio::test]
async fn truncated_data_is_a_typed_error() {
    bounded(async {
        let standalone = Standalone::start().await;
        let (controller, stream) = byte_stream(&standalone, "truncated").await;
        let data = content(100_000);
        let mut writer = ByteWriter::new(&controller, stream.clone()).await.unwrap();
        writer.write(&data).await.unwrap();
        writer.flush().await.unwrap();
        writer.truncate_data_before(60_000).await.unwrap();
        assert_eq!(writer.current_head().await.unwrap(), 60_000);

        let mut reader = ByteReader::new(&controller, stream).await.unwrap();
        assert_eq!(reader.current_head().await.unwrap(), 60_000);
        let mut buffer = [0u8; 10];
        let error = reader.read(&mut buffer).await.unwrap_err();
        assert!(
            matches!(
                error,
                ByteStreamError::Truncated {
                    offset: 0,
                    head: 60_000,
                    ..
                }
            ),
            "{error:?}"
        );
        reader.seek(SeekFrom::Start(59_999)).await.unwrap();
        assert!(matches!(
            reader.read(&mut buffer).await,
            Err(ByteStreamError::Truncated { .. })
        ));
        reader.seek(SeekFrom::Start(60_000)).await.unwrap();
        assert!(read_fully(&mut reader, 40_000).await == data[60_000..]);
    })
    .await;
}

#[tokio::test]
async fn a_read_at_the_tail_waits_for_a_concurrent_writer() {
    bounded(async {
        let standalone = Standalone::start().await;
        let (controller, stream) = byte_stream(&standalone, "tail").await;
        let mut writer = ByteWriter::new(&controller, stream.clone()).await.unwrap();
        writer.write(b"first").await.unwrap();
        writer.flush().await.unwrap();

        let mut reader = ByteReader::new(&controller, stream.clone()).await.unwrap();
        assert_eq!(read_fully(&mut reader, 5).await, b"first");
        assert_eq!(reader.available(), 0);
        // The reader is at the tail; it waits until the writer appends.
        let waiting = tokio::spawn(async move {
            let mut buffer = [0u8; 64];
            let count = reader.read(&mut buffer).await.unwrap();
            (buffer[..count].to_vec(), reader)
        });
        tokio::task::yield_now().await;
        writer.write(b"second").await.unwrap();
        writer.flush().await.unwrap();
        let (got, mut reader) = waiting.await.unwrap();
        let mut all = got;
        while all.len() < 6 {
            let mut buffer = [0u8; 64];
            let count = reader.read(&mut buffer).await.unwrap();
            all.extend_from_slice(&buffer[..count]);
        }
        assert_eq!(all, b"second");

        // After a seal, reads end and writes are refused.
        writer.seal().await.unwrap();
        let mut buffer = [0u8; 8];
        assert_eq!(reader.read(&mut buffer).await.unwrap(), 0);
        assert!(matches!(
            writer.write(b"late").await,
            Err(ByteStreamError::Sealed { .. })
        ));
        // Another writer of the sealed segment learns it at its first flush.
        let mut other = ByteWriter::new(&controller, stream.clone()).await.unwrap();
        other.write(b"refused").await.unwrap();
        let refused = other.flush().await.unwrap_err();
        assert!(
            matches!(refused, ByteStreamError::Sealed { .. }),
            "{refused:?}"
        );

        // A stream sealed at the controller is still read from the start, to its end.
        controller.seal_stream(&stream).await.unwrap();
        let mut late_reader = ByteReader::new(&controller, stream.clone()).await.unwrap();
        assert_eq!(read_fully(&mut late_reader, 11).await, b"firstsecond");
        assert_eq!(late_reader.read(&mut buffer).await.unwrap(), 0);
        assert!(matches!(
            ByteWriter::new(&controller, stream).await,
            Err(ByteStreamError::Sealed { .. })
        ));
    })
    .await;
}
