//! The official Rust client's protocol crate (`pravega-wire-protocol`, as used by `pravega-client`)
//! talking to this server: its connection set-up (Hello and version check), its encoders and its
//! decoders of our replies.

mod common;

use common::TestServer;
use pravega_client_config::connection_type::ConnectionType;
use pravega_client_shared::PravegaNodeUri;
use pravega_wire_protocol::client_connection::{read_wirecommand, write_wirecommand};
use pravega_wire_protocol::commands::{
    AppendBlockEndCommand, CreateSegmentCommand, CreateTableSegmentCommand,
    GetStreamSegmentInfoCommand, ReadSegmentCommand, ReadTableCommand, SealSegmentCommand,
    SetupAppendCommand, TableEntries, TableKey, TableValue, UpdateTableEntriesCommand,
    NULL_ATTRIBUTE_VALUE,
};
use pravega_wire_protocol::connection::Connection;
use pravega_wire_protocol::connection_factory::{ConnectionFactory, ConnectionFactoryConfig};
use pravega_wire_protocol::wire_commands::{Replies, Requests};

async fn call(connection: &mut dyn Connection, request: Requests) -> Replies {
    write_wirecommand(connection, &request).await.unwrap();
    tokio::time::timeout(common::TIMEOUT, read_wirecommand(connection))
        .await
        .expect("no reply in time")
        .unwrap()
}

fn event(payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(8 + payload.len());
    framed.extend_from_slice(&0i32.to_be_bytes());
    framed.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    framed.extend_from_slice(payload);
    framed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_protocol_crate_writes_reads_and_uses_tables() {
    let server = TestServer::start().await;
    let factory =
        <dyn ConnectionFactory>::create(ConnectionFactoryConfig::new(ConnectionType::Tokio));
    // establish_connection exchanges Hello and checks our version range, as the client does.
    let mut connection = factory
        .establish_connection(PravegaNodeUri::from(server.addr()))
        .await
        .expect("the official client accepts the server's Hello");
    let connection = connection.as_mut();
    let segment = "official/stream/0.#epoch.0".to_string();

    let reply = call(
        connection,
        Requests::CreateSegment(CreateSegmentCommand {
            request_id: 1,
            segment: segment.clone(),
            target_rate: 0,
            scale_type: 0,
            delegation_token: String::new(),
        }),
    )
    .await;
    assert!(
        matches!(reply, Replies::SegmentCreated(ref r) if r.request_id == 1),
        "{reply:?}"
    );

    let writer_id = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdefu128;
    match call(
        connection,
        Requests::SetupAppend(SetupAppendCommand {
            request_id: 2,
            writer_id,
            segment: segment.clone(),
            delegation_token: String::new(),
        }),
    )
    .await
    {
        Replies::AppendSetup(setup) => {
            assert_eq!(setup.writer_id, writer_id);
            assert_eq!(setup.last_event_number, NULL_ATTRIBUTE_VALUE);
        }
        other => panic!("{other:?}"),
    }
    let mut data = event(b"hello");
    data.extend(event(b"world"));
    match call(
        connection,
        Requests::AppendBlockEnd(AppendBlockEndCommand {
            writer_id,
            size_of_whole_events: data.len() as i32,
            data: data.clone(),
            num_event: 2,
            last_event_number: 2,
            request_id: 3,
        }),
    )
    .await
    {
        Replies::DataAppended(ack) => {
            assert_eq!(ack.event_number, 2);
            assert_eq!(ack.previous_event_number, NULL_ATTRIBUTE_VALUE);
            assert_eq!(ack.current_segment_write_offset, data.len() as i64);
        }
        other => panic!("{other:?}"),
    }
    match call(
        connection,
        Requests::ReadSegment(ReadSegmentCommand {
            segment: segment.clone(),
            offset: 0,
            suggested_length: 8 << 20,
            delegation_token: String::new(),
            request_id: 4,
        }),
    )
    .await
    {
        Replies::SegmentRead(read) => {
            assert_eq!(read.offset, 0);
            assert_eq!(read.data, data);
            assert!(read.at_tail);
        }
        other => panic!("{other:?}"),
    }
    let reply = call(
        connection,
        Requests::SealSegment(SealSegmentCommand {
            request_id: 5,
            segment: segment.clone(),
            delegation_token: String::new(),
        }),
    )
    .await;
    assert!(matches!(reply, Replies::SegmentSealed(_)), "{reply:?}");
    match call(
        connection,
        Requests::GetStreamSegmentInfo(GetStreamSegmentInfoCommand {
            request_id: 6,
            segment_name: segment.clone(),
            delegation_token: String::new(),
        }),
    )
    .await
    {
        Replies::StreamSegmentInfo(info) => {
            assert!(info.exists && info.is_sealed && !info.is_deleted);
            assert_eq!(info.write_offset, data.len() as i64);
            assert_eq!(info.start_offset, 0);
        }
        other => panic!("{other:?}"),
    }

    // A table, as the client's Table and reader groups use it.
    let table = "official/_rgtest_kvtable/0.#epoch.0".to_string();
    let reply = call(
        connection,
        Requests::CreateTableSegment(CreateTableSegmentCommand {
            request_id: 7,
            segment: table.clone(),
            delegation_token: String::new(),
        }),
    )
    .await;
    assert!(matches!(reply, Replies::SegmentCreated(_)), "{reply:?}");
    let versions = match call(
        connection,
        Requests::UpdateTableEntries(UpdateTableEntriesCommand {
            request_id: 8,
            segment: table.clone(),
            delegation_token: String::new(),
            table_entries: TableEntries {
                entries: vec![(
                    TableKey::new(b"key".to_vec(), TableKey::KEY_NOT_EXISTS),
                    TableValue::new(b"value".to_vec()),
                )],
            },
            table_segment_offset: -1,
        }),
    )
    .await
    {
        Replies::TableEntriesUpdated(updated) => updated.updated_versions,
        other => panic!("{other:?}"),
    };
    assert_eq!(versions.len(), 1);
    match call(
        connection,
        Requests::ReadTable(ReadTableCommand {
            request_id: 9,
            segment: table.clone(),
            delegation_token: String::new(),
            keys: vec![
                TableKey::new(b"key".to_vec(), TableKey::KEY_NO_VERSION),
                TableKey::new(b"absent".to_vec(), TableKey::KEY_NO_VERSION),
            ],
        }),
    )
    .await
    {
        Replies::TableRead(read) => {
            let entries = read.entries.entries;
            assert_eq!(entries.len(), 2);
            assert_eq!(entries[0].0.data, b"key");
            assert_eq!(entries[0].0.key_version, versions[0]);
            assert_eq!(entries[0].1.data, b"value");
            assert_eq!(entries[1].0.key_version, TableKey::KEY_NOT_EXISTS);
            assert!(entries[1].1.data.is_empty());
        }
        other => panic!("{other:?}"),
    }
    server.stop().await;
}
