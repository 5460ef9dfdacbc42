//! The `pravaha` client commands end to end: the real binary against a real `pravaha
//! standalone`, asserting what it prints (tables and `--json`), its exit codes and messages,
//! and the state it leaves (through later commands and the pravaha-client library).

mod common;
#[path = "common/cli.rs"]
mod harness;

use std::process::Stdio;
use std::time::Duration;

use common::Standalone;
use harness::{
    command, controller, events, pravaha, pravaha_at, pravaha_stdin, runtime,
    standalone_with_scope, uri, with_controller,
};
use pravaha_client::controller::types::{RetentionPolicy, ScalingPolicy, ScopedStream};
use pravaha_client::group::ReaderGroup;
use pravaha_client::table::{KeyValueTable, KeyValueTableInfo, TableKey};
use serde_json::{json, Value};

#[test]
fn scopes_are_created_listed_and_deleted() {
    let standalone = Standalone::start();
    let created = pravaha(&standalone, &["scope", "create", "shop"]).ok();
    assert_eq!(created, "created scope shop\n");
    let again = pravaha(&standalone, &["scope", "create", "shop", "--json"]).json();
    assert_eq!(again, json!({"scope": "shop", "created": false}));
    pravaha(&standalone, &["scope", "create", "audit"]).ok();
    let table = pravaha(&standalone, &["scope", "list"]).ok();
    assert_eq!(table, "SCOPE\naudit\nshop\n");
    let listed = pravaha(&standalone, &["scope", "list", "--json"]).json();
    assert!(listed
        .as_array()
        .unwrap()
        .contains(&json!({"scope": "shop"})));

    let deleted = pravaha(&standalone, &["scope", "delete", "shop", "--json"]).json();
    assert_eq!(deleted, json!({"scope": "shop", "deleted": true}));
    pravaha(&standalone, &["scope", "delete", "shop"]).fails(3, "scope shop does not exist");
    let exists = with_controller(&standalone, async |c| c.scope_exists("shop").await.unwrap());
    assert!(!exists);
    assert_eq!(
        pravaha(&standalone, &["scope", "list"]).ok(),
        "SCOPE\naudit\n"
    );
}

#[test]
fn streams_are_created_with_their_policies_and_listed() {
    let standalone = standalone_with_scope("shop");
    let created = pravaha(
        &standalone,
        &[
            "stream",
            "create",
            "shop/orders",
            "--segments",
            "2",
            "--tag",
            "sales",
            "--tag",
            "eu",
            "--retention-size",
            "10MiB",
            "--retention-max-size",
            "1GiB",
        ],
    );
    assert_eq!(created.ok(), "created stream shop/orders\n");
    pravaha(&standalone, &["stream", "create", "shop/returns"]).ok();
    let table = pravaha(&standalone, &["stream", "list", "shop"]).ok();
    assert_eq!(table, "STREAM\nshop/orders\nshop/returns\n");
    let tagged = pravaha(
        &standalone,
        &["stream", "list", "shop", "--tag", "eu", "--json"],
    );
    assert_eq!(
        tagged.json(),
        json!([{"scope": "shop", "stream": "orders"}])
    );

    let info = pravaha(&standalone, &["stream", "info", "shop/orders", "--json"]).json();
    assert_eq!(info["sealed"], false);
    let configuration = json!({
        "scaling": {"type": "fixed", "segments": 2},
        "retention": {"type": "size", "min_bytes": 10u64 << 20, "max_bytes": 1u64 << 30},
        "tags": ["sales", "eu"],
        "rollover_size_bytes": 0,
    });
    assert_eq!(info["configuration"], configuration);
    let segments = info["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    let first = &segments[0];
    assert_eq!(
        (&first["segment"], &first["id"]),
        (&json!("0.#epoch.0"), &json!(0))
    );
    assert_eq!(
        (first["key_low"].as_f64(), first["key_high"].as_f64()),
        (Some(0.0), Some(0.5))
    );
    assert_eq!(
        (&segments[1]["start_offset"], &segments[1]["length"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(info["head"], json!({"0.#epoch.0": 0, "1.#epoch.0": 0}));
    assert_eq!(info["tail"], info["head"]);

    let table = pravaha(&standalone, &["stream", "info", "shop/orders"]).ok();
    for line in [
        "STREAM     shop/orders\n",
        "state      open\n",
        "scaling    fixed, 2 segments\n",
        "retention  by size: at least 10MiB, at most 1GiB\n",
        "tags       sales, eu\n",
        "head       0.#epoch.0:0,1.#epoch.0:0\n",
        "\nSEGMENT     KEY RANGE         START  LENGTH\n0.#epoch.0  [0.0000, 0.5000)  0      0\n",
    ] {
        assert!(table.contains(line), "{line:?} not in\n{table}");
    }
}

#[test]
fn stream_update_changes_only_what_is_given() {
    let standalone = standalone_with_scope("shop");
    let create = [
        "stream",
        "create",
        "shop/orders",
        "--tag",
        "a",
        "--retention-size",
        "1MiB",
    ];
    pravaha(&standalone, &create).ok();
    let update = [
        "stream",
        "update",
        "shop/orders",
        "--events-per-second",
        "500",
        "--min-segments",
        "2",
        "--retention-time",
        "7d",
        "--no-tags",
        "--json",
    ];
    let updated = pravaha(&standalone, &update).json();
    assert_eq!(updated["updated"], true);
    assert_eq!(
        updated["configuration"]["retention"],
        json!({"type": "time", "min_ms": 7 * 86_400_000u64, "max_ms": null})
    );
    let stream = ScopedStream::new("shop", "orders");
    let config = with_controller(&standalone, async |c| {
        c.get_stream_configuration(&stream).await.unwrap()
    });
    let scaling = ScalingPolicy::ByEventRate {
        target_events_per_second: 500,
        scale_factor: 2,
        min_segments: 2,
    };
    assert_eq!(config.scaling, scaling);
    let week = Duration::from_secs(7 * 86_400);
    assert_eq!(
        config.retention,
        RetentionPolicy::Time {
            min: week,
            max: None
        }
    );
    assert!(config.tags.is_empty());

    // Only the scale factor changes; the rate and minimum stay.
    let factor = ["stream", "update", "shop/orders", "--scale-factor", "3"];
    assert_eq!(
        pravaha(&standalone, &factor).ok(),
        "updated stream shop/orders\n"
    );
    let table = pravaha(&standalone, &["stream", "info", "shop/orders"]).ok();
    let expected = "by event rate: 500 events/s per segment, scale factor 3, at least 2 segments";
    assert!(table.contains(expected), "{table}");
    let same = pravaha(&standalone, &factor).ok();
    assert_eq!(same, "stream shop/orders: nothing to change\n");
}

#[test]
fn streams_scale_by_splitting_and_merging_segments() {
    let standalone = standalone_with_scope("shop");
    pravaha(
        &standalone,
        &["stream", "create", "shop/orders", "--segments", "2"],
    )
    .ok();
    let merge = ["stream", "scale", "shop/orders", "--into", "1", "--json"];
    let merged = pravaha(&standalone, &merge).json();
    assert_eq!(merged["sealed"], json!(["0.#epoch.0", "1.#epoch.0"]));
    assert_eq!(merged["segments"][0]["segment"], "2.#epoch.1");
    assert_eq!(merged["segments"][0]["key_high"], 1.0);
    let split = [
        "stream",
        "scale",
        "shop/orders",
        "--segment",
        "2",
        "--ranges",
        "0-0.2,0.2-0.6,0.6-1",
    ];
    let printed = pravaha(&standalone, &split).ok();
    let expected = "scaled stream shop/orders: sealed 1 segment(s)\nNEW SEGMENT  KEY RANGE\n\
                    3.#epoch.2   [0.0000, 0.2000)\n4.#epoch.2   [0.2000, 0.6000)\n\
                    5.#epoch.2   [0.6000, 1.0000)\n";
    assert_eq!(printed, expected);
    let stream = ScopedStream::new("shop", "orders");
    let current = with_controller(&standalone, async |c| {
        c.get_current_segments(&stream).await.unwrap()
    });
    let ranges: Vec<(f64, f64)> = current
        .segments
        .iter()
        .map(|s| (s.range.low, s.range.high))
        .collect();
    assert_eq!(ranges, vec![(0.0, 0.2), (0.2, 0.6), (0.6, 1.0)]);

    // Two neighbours merge; a segment that is not current is refused.
    let neighbours = [
        "stream",
        "scale",
        "shop/orders",
        "--segment",
        "4",
        "--segment",
        "5.#epoch.2",
        "--into",
        "1",
    ];
    pravaha(&standalone, &neighbours).ok();
    let info = pravaha(&standalone, &["stream", "info", "shop/orders", "--json"]).json();
    let names: Vec<&str> = info["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["segment"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["3.#epoch.2", "6.#epoch.3"]);
    let stale = [
        "stream",
        "scale",
        "shop/orders",
        "--segment",
        "2.#epoch.1",
        "--into",
        "2",
    ];
    pravaha(&standalone, &stale).fails(2, "segment 2.#epoch.1 is not a current segment");
}

#[test]
fn streams_truncate_seal_and_delete() {
    let standalone = standalone_with_scope("shop");
    pravaha(&standalone, &["stream", "create", "shop/orders"]).ok();
    pravaha(&standalone, &["stream", "create", "shop/returns"]).ok();
    pravaha_stdin(
        &standalone,
        &["write", "shop/orders", "--key", "k"],
        "one\ntwo\n",
    )
    .ok();

    // Truncated at the tail: the head moves there, nothing is left to read.
    let info = ["stream", "info", "shop/orders", "--json"];
    let tail = pravaha(&standalone, &info).json()["tail"].clone();
    assert_eq!(tail, json!({"0.#epoch.0": 22}));
    let truncate = ["stream", "truncate", "shop/orders", "0:11", "--json"];
    assert_eq!(
        pravaha(&standalone, &truncate).json()["truncated_at"],
        json!({"0.#epoch.0": 11})
    );
    assert_eq!(
        pravaha(&standalone, &info).json()["head"],
        json!({"0.#epoch.0": 11})
    );
    assert_eq!(pravaha(&standalone, &["read", "shop/orders"]).ok(), "two\n");

    let sealed = pravaha(&standalone, &["stream", "seal", "shop/orders"]).ok();
    assert_eq!(sealed, "sealed stream shop/orders\n");
    pravaha_stdin(&standalone, &["write", "shop/orders"], "late\n")
        .fails(5, "shop/orders is sealed");
    let info = pravaha(&standalone, &info).json();
    assert_eq!(
        (&info["sealed"], &info["segments"]),
        (&json!(true), &json!([]))
    );

    let deleted = pravaha(&standalone, &["stream", "delete", "shop/orders"]).ok();
    assert_eq!(deleted, "deleted stream shop/orders\n");
    // An open stream is sealed first.
    pravaha(&standalone, &["stream", "delete", "shop/returns", "--json"]).json();
    let returns = ScopedStream::new("shop", "returns");
    let exists = with_controller(&standalone, async |c| {
        c.stream_exists(&returns).await.unwrap()
    });
    assert!(!exists);
    pravaha(&standalone, &["stream", "delete", "shop/orders"])
        .fails(3, "stream shop/orders does not exist");
    assert_eq!(
        pravaha(&standalone, &["stream", "list", "shop"]).ok(),
        "STREAM\n"
    );
}

/// Writes 40 JSON lines for 5 customers into app/events (4 segments) from a file, after three
/// events with key "all"; answers the JSON lines.
fn write_orders(standalone: &Standalone) -> String {
    pravaha(
        standalone,
        &["stream", "create", "app/events", "--segments", "4"],
    )
    .ok();
    let fixed = ["write", "app/events", "--key", "all"];
    let summary = pravaha_stdin(standalone, &fixed, "a1\na2\n\na3\n").ok();
    assert_eq!(summary, "wrote 3 events (6 bytes) to app/events\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.jsonl");
    let lines: String = (0..40)
        .map(|i| format!("{{\"customer\":\"c{}\",\"seq\":{i}}}\n", i % 5))
        .collect();
    std::fs::write(&file, &lines).unwrap();
    let path = file.to_str().unwrap();
    let write = [
        "write",
        "app/events",
        "--file",
        path,
        "--key-field",
        "customer",
        "--json",
    ];
    let summary = pravaha(standalone, &write).json();
    let bytes = lines.len() - 40;
    assert_eq!(
        summary,
        json!({"stream": "app/events", "events": 40, "bytes": bytes})
    );
    lines
}

#[test]
fn written_events_read_back_by_key_in_order() {
    let standalone = standalone_with_scope("app");
    let lines = write_orders(&standalone);
    let text = pravaha(&standalone, &["read", "app/events"]).ok();
    let mut read: Vec<&str> = text.lines().collect();
    let mut expected: Vec<&str> = lines.lines().chain(["a1", "a2", "a3"]).collect();
    read.sort_unstable();
    expected.sort_unstable();
    assert_eq!(read, expected);

    // Per key: the segment the key routes to, in the order written.
    let read = events(&pravaha(&standalone, &["read", "app/events", "--json"]).ok());
    assert_eq!(read.len(), 43);
    let stream = ScopedStream::new("app", "events");
    let current = with_controller(&standalone, async |c| {
        c.get_current_segments(&stream).await.unwrap()
    });
    let payload = |event: &Value| event["payload"].as_str().unwrap().to_owned();
    for customer in 0..5 {
        let key = format!("c{customer}");
        let mine: Vec<&Value> = read
            .iter()
            .filter(|e| payload(e).contains(&format!("\"{key}\"")))
            .collect();
        let routed = current
            .segment_for_routing_key(&key)
            .unwrap()
            .segment
            .id
            .to_string();
        assert!(
            mine.iter().all(|e| e["segment"] == routed.as_str()),
            "{key}: {mine:?}"
        );
        let seqs: Vec<i64> = mine
            .iter()
            .map(|e| {
                serde_json::from_str::<Value>(&payload(e)).unwrap()["seq"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        let in_order: Vec<i64> = (0..8).map(|i| customer + 5 * i).collect();
        assert_eq!(seqs, in_order, "{key}");
    }
    let all: Vec<&Value> = read
        .iter()
        .filter(|e| payload(e).starts_with('a'))
        .collect();
    let payloads: Vec<String> = all.iter().map(|e| payload(e)).collect();
    assert_eq!(payloads, ["a1", "a2", "a3"]);
    // Records of an 8-byte header and the payload, one after the other.
    assert_eq!(
        (&all[0]["offset"], &all[0]["next_offset"]),
        (&json!(0), &json!(10))
    );
    assert_eq!(
        (&all[1]["offset"], &all[1]["next_offset"]),
        (&json!(10), &json!(20))
    );
}

#[test]
fn reads_start_at_a_stream_cut_or_the_tail_and_stop_at_max() {
    let standalone = standalone_with_scope("app");
    write_orders(&standalone);
    let read = events(&pravaha(&standalone, &["read", "app/events", "--json"]).ok());
    let first = read.iter().find(|e| e["payload"] == "a1").unwrap();
    let segment = first["segment"].as_str().unwrap();
    // After a1 in its segment: what follows there, in segment order.
    let mut after: Vec<&Value> = read
        .iter()
        .filter(|e| e["segment"] == segment && e["offset"].as_i64().unwrap() >= 10)
        .collect();
    after.sort_by_key(|e| e["offset"].as_i64());
    let expected: String = after
        .iter()
        .map(|e| format!("{}\n", e["payload"].as_str().unwrap()))
        .collect();
    assert!(expected.starts_with("a2\na3\n"), "{expected}");

    // As JSON with every other segment at its tail, and as a list naming just that segment.
    let info = pravaha(&standalone, &["stream", "info", "app/events", "--json"]).json();
    let mut cut = info["tail"].as_object().unwrap().clone();
    cut.insert(segment.to_owned(), first["next_offset"].clone());
    let from_json = [
        "read",
        "app/events",
        "--from",
        &Value::Object(cut).to_string(),
    ];
    assert_eq!(pravaha(&standalone, &from_json).ok(), expected);
    let listed = format!("{segment}:10");
    let from_list = ["read", "app/events", "--from", &listed];
    assert_eq!(pravaha(&standalone, &from_list).ok(), expected);

    assert_eq!(
        pravaha(&standalone, &["read", "app/events", "--from", "tail"]).ok(),
        ""
    );
    let five = pravaha(&standalone, &["read", "app/events", "--max", "5"]).ok();
    assert_eq!(five.lines().count(), 5);

    // A line without the key field: refused, the events before it written.
    let write = ["write", "app/events", "--key-field", "customer"];
    pravaha_stdin(&standalone, &write, "{\"customer\":\"c9\"}\n{\"x\":1}\n").fails(
        2,
        "line 2: no field \"customer\"; the 1 events before it were written",
    );
    let all = pravaha(&standalone, &["read", "app/events"]).ok();
    assert_eq!(all.lines().filter(|line| line.contains("c9")).count(), 1);
}

#[test]
fn payloads_need_not_be_text() {
    let standalone = standalone_with_scope("bin");
    pravaha(&standalone, &["stream", "create", "bin/raw"]).ok();
    let written = pravaha_stdin(&standalone, &["write", "bin/raw"], b"\xff\x00ok\r\ntext\n");
    assert_eq!(written.ok(), "wrote 2 events (8 bytes) to bin/raw\n");
    let read = events(&pravaha(&standalone, &["read", "bin/raw", "--json"]).ok());
    assert_eq!(read[0]["payload_base64"], "/wBvaw==");
    assert!(read[0].get("payload").is_none());
    assert_eq!(read[1]["payload"], "text");
}

#[test]
fn read_follows_new_events_across_a_scale() {
    let standalone = standalone_with_scope("live");
    pravaha(&standalone, &["stream", "create", "live/feed"]).ok();
    let follower = command(&["read", "live/feed", "--follow", "--max", "6"])
        .args(["--controller", &uri(&standalone)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    pravaha_stdin(
        &standalone,
        &["write", "live/feed", "--key", "k"],
        "1\n2\n3\n",
    )
    .ok();
    pravaha(
        &standalone,
        &["stream", "scale", "live/feed", "--into", "2"],
    )
    .ok();
    pravaha_stdin(
        &standalone,
        &["write", "live/feed", "--key", "k"],
        "4\n5\n6\n",
    )
    .ok();
    let output = follower.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // One key, in order across the scale: the successor is read after its predecessor.
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "1\n2\n3\n4\n5\n6\n"
    );

    // Without --follow, the read ends at the tail of when it started, successors included.
    assert_eq!(
        pravaha(&standalone, &["read", "live/feed"]).ok(),
        "1\n2\n3\n4\n5\n6\n"
    );
    // A sealed stream ends a followed read once everything is read.
    pravaha(&standalone, &["stream", "seal", "live/feed"]).ok();
    let followed = pravaha(&standalone, &["read", "live/feed", "--follow"]).ok();
    assert_eq!(followed, "1\n2\n3\n4\n5\n6\n");
}

/// rg/s with two segments and four events of two bytes, all routed to one segment, and group
/// rg/billing on it; answers the stream's total length.
fn stream_with_group(standalone: &Standalone) -> i64 {
    pravaha(standalone, &["stream", "create", "rg/s", "--segments", "2"]).ok();
    pravaha_stdin(standalone, &["write", "rg/s", "--key", "a"], "x1\nx2\nx3\n").ok();
    pravaha_stdin(standalone, &["write", "rg/s", "--key", "b"], "y1\n").ok();
    let create = ["rg", "create", "rg/billing", "--stream", "rg/s", "--json"];
    let created = pravaha(standalone, &create).json();
    assert_eq!(
        (&created["created"], &created["streams"]),
        (&json!(true), &json!(["rg/s"]))
    );
    let info = pravaha(standalone, &["stream", "info", "rg/s", "--json"]).json();
    let segments = info["segments"].as_array().unwrap();
    segments.iter().map(|s| s["length"].as_i64().unwrap()).sum()
}

#[test]
fn reader_groups_are_created_listed_and_deleted() {
    let standalone = standalone_with_scope("rg");
    stream_with_group(&standalone);
    let again = pravaha(
        &standalone,
        &["rg", "create", "rg/billing", "--stream", "rg/s"],
    )
    .ok();
    assert_eq!(again, "reader group rg/billing exists already (on rg/s)\n");
    let table = pravaha(&standalone, &["rg", "list", "rg"]).ok();
    assert_eq!(table, "GROUP       STREAMS\nrg/billing  rg/s\n");
    let listed = pravaha(&standalone, &["rg", "list", "rg", "--json"]).json();
    assert_eq!(
        listed,
        json!([{"scope": "rg", "group": "billing", "streams": ["rg/s"]}])
    );
    let record = with_controller(&standalone, async |c| {
        c.get_reader_group("rg", "billing").await.unwrap()
    });
    assert_eq!(record.starting_cuts[0].stream, ScopedStream::new("rg", "s"));

    let deleted = pravaha(&standalone, &["rg", "delete", "rg/billing"]).ok();
    assert_eq!(deleted, "deleted reader group rg/billing\n");
    pravaha(&standalone, &["rg", "info", "rg/billing"]).fails(
        3,
        "reader group rg/billing does not exist: create it with `pravaha rg create rg/billing \
         --stream rg/STREAM`",
    );
    pravaha(&standalone, &["rg", "delete", "rg/billing"]).fails(3, "does not exist");
    assert_eq!(
        pravaha(&standalone, &["rg", "list", "rg"]).ok(),
        "GROUP  STREAMS\n"
    );
    pravaha(
        &standalone,
        &["rg", "create", "rg/g2", "--stream", "rg/none"],
    )
    .fails(3, "stream rg/none does not exist");
}

#[test]
fn reader_group_info_shows_readers_positions_and_lag() {
    let standalone = standalone_with_scope("rg");
    let total = stream_with_group(&standalone);
    assert_eq!(
        total,
        4 * 10,
        "four events of 2 bytes, each with an 8-byte header"
    );
    let info = ["rg", "info", "rg/billing", "--json"];
    let before = pravaha(&standalone, &info).json();
    assert_eq!(
        (&before["lag_bytes"], &before["readers"]),
        (&json!(total), &json!([]))
    );
    let segments = before["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    let unread = |s: &Value| s["position"] == 0 && s["reader"].is_null();
    assert!(segments
        .iter()
        .all(|s| unread(s) && s["lag_bytes"] == s["length"]));
    let table = pravaha(&standalone, &["rg", "info", "rg/billing"]).ok();
    assert!(
        table.contains(&format!("lag      {total} bytes\n")),
        "{table}"
    );
    let header = "SEGMENT          READER  POSITION  LENGTH  LAG\nrg/s/0.#epoch.0  -";
    assert!(table.contains(header), "{table}");

    // A reader takes the segments and reads one event: it shows as their owner.
    let runtime = runtime();
    let (group, mut reader) = runtime.block_on(async {
        let controller = controller(&standalone);
        let group = ReaderGroup::open(&controller, "rg", "billing")
            .await
            .unwrap();
        let mut reader = group.create_reader("reader-1").await.unwrap();
        reader.next_event().await.unwrap().expect("an event");
        (group, reader)
    });
    let during = pravaha(&standalone, &info).json();
    assert_eq!(during["readers"][0]["reader"], "reader-1");
    assert_eq!(during["readers"][0]["segments"], 2);
    assert!(during["segments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["reader"] == "reader-1"));
    // The rest read and the reader closed: every segment's position is its length.
    runtime.block_on(async {
        for _ in 1..4 {
            reader.next_event().await.unwrap().expect("an event");
        }
        reader.close().await.unwrap();
        drop(group);
    });
    let after = pravaha(&standalone, &info).json();
    assert_eq!(
        (&after["lag_bytes"], &after["readers"]),
        (&json!(0), &json!([]))
    );
    let segments = after["segments"].as_array().unwrap();
    assert!(segments
        .iter()
        .all(|s| s["position"] == s["length"] && s["lag_bytes"] == 0));
}

#[test]
fn key_value_tables_are_created_listed_and_deleted() {
    let standalone = standalone_with_scope("kv");
    let create = [
        "kvt",
        "create",
        "kv/accounts",
        "--partitions",
        "2",
        "--key-length",
        "4",
    ];
    assert_eq!(
        pravaha(&standalone, &create).ok(),
        "created key-value table kv/accounts\n"
    );
    let again = pravaha(&standalone, &[&create[..], &["--json"]].concat()).json();
    assert_eq!(again, json!({"table": "kv/accounts", "created": false}));
    assert_eq!(
        pravaha(&standalone, &["kvt", "list", "kv"]).ok(),
        "TABLE\nkv/accounts\n"
    );
    let listed = pravaha(&standalone, &["kvt", "list", "kv", "--json"]).json();
    assert_eq!(listed, json!([{"scope": "kv", "table": "accounts"}]));
    pravaha(&standalone, &["kvt", "put", "kv/accounts", "k001", "v"]).ok();

    let deleted = pravaha(&standalone, &["kvt", "delete", "kv/accounts"]).ok();
    assert_eq!(deleted, "deleted key-value table kv/accounts\n");
    pravaha(&standalone, &["kvt", "get", "kv/accounts", "k001"])
        .fails(3, "key-value table kv/accounts does not exist");
    pravaha(&standalone, &["kvt", "delete", "kv/accounts"]).fails(3, "does not exist");
    assert_eq!(pravaha(&standalone, &["kvt", "list", "kv"]).ok(), "TABLE\n");
}

#[test]
fn key_value_puts_are_conditional_on_versions() {
    let standalone = standalone_with_scope("kv");
    let create = [
        "kvt",
        "create",
        "kv/t",
        "--key-length",
        "4",
        "--secondary-key-length",
        "3",
    ];
    pravaha(&standalone, &create).ok();
    let key = ["kv/t", "a001", "--secondary", "bal"];
    let kvt = |args: &[&str]| pravaha(&standalone, &[&["kvt"], args].concat());
    let first = kvt(&[&["put"], &key[..], &["100", "--json"]].concat()).json()["version"]
        .as_i64()
        .unwrap();
    let got = kvt(&[&["get"], &key[..], &["--json"]].concat()).json();
    let entry = json!({"table": "kv/t", "key": "a001", "secondary": "bal", "value": "100", "version": first});
    assert_eq!(got, entry);
    assert_eq!(kvt(&[&["get"], &key[..]].concat()).ok(), "100\n");

    // On the current version the put succeeds; on a stale one it conflicts, changing nothing.
    let (old, stale) = (
        first.to_string(),
        ["--version", &first.to_string()].map(String::from),
    );
    let stale: Vec<&str> = stale.iter().map(String::as_str).collect();
    let second: i64 = kvt(&[&["put"], &key[..], &["90", "--version", &old]].concat())
        .ok()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(second, first);
    kvt(&[&["put"], &key[..], &["0"], &stale[..]].concat()).fails(5, "the condition failed");
    kvt(&[&["put"], &key[..], &["0", "--if-absent"]].concat()).fails(5, "the condition failed");
    let table_key = TableKey::new(&b"a001"[..], &b"bal"[..]);
    let entry = with_controller(&standalone, async |c| {
        let table = KeyValueTable::open(&c, KeyValueTableInfo::new("kv", "t"))
            .await
            .unwrap();
        table.get(&table_key).await.unwrap().expect("present")
    });
    assert_eq!((&entry.value[..], entry.version.0), (&b"90"[..], second));

    kvt(&["put", "kv/t", "a1", "1", "--secondary", "bal"]).fails(
        2,
        "the key \"a1\" is 2 bytes long; table kv/t takes keys of exactly 4 bytes",
    );
    kvt(&[&["remove"], &key[..], &stale[..]].concat()).fails(5, "the condition failed");
    let current = second.to_string();
    let removed = kvt(&[&["remove"], &key[..], &["--version", &current]].concat()).ok();
    assert_eq!(removed, "removed\n");
    kvt(&[&["get"], &key[..]].concat())
        .fails(3, "key \"a001\" does not exist in key-value table kv/t");
}

#[test]
fn an_unreachable_controller_is_explained() {
    // Nothing listens on a port just released.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("tcp://{}", listener.local_addr().unwrap());
    drop(listener);
    let message = format!(
        "cannot reach the controller at {nowhere}: is `pravaha standalone` running? \
         (--controller / PRAVAHA_CONTROLLER_URI)"
    );
    pravaha_at(&nowhere, &["scope", "list"], "").fails(4, &message);
    pravaha_at(&nowhere, &["read", "s/x"], "").fails(4, &message);
    pravaha_at("bogus://127.0.0.1:1", &["scope", "list"], "").fails(
        2,
        "invalid controller URI \"bogus://127.0.0.1:1\": unknown scheme \"bogus\"",
    );
}

#[test]
fn missing_things_and_bad_names_are_explained() {
    let standalone = Standalone::start();
    pravaha(&standalone, &["stream", "create", "ghost/x"]).fails(
        3,
        "scope ghost does not exist: create it with `pravaha scope create ghost`",
    );
    pravaha(&standalone, &["scope", "create", "s"]).ok();
    let missing = "stream s/x does not exist: create it with `pravaha stream create s/x`";
    pravaha(&standalone, &["read", "s/x"]).fails(3, missing);
    pravaha_stdin(&standalone, &["write", "s/x"], "e\n").fails(3, missing);
    pravaha(&standalone, &["stream", "info", "s/x"]).fails(3, missing);
    pravaha(&standalone, &["stream", "create", "s/bad name"]).fails(
        2,
        "invalid name: stream name \"bad name\" may contain only letters, digits, '.' and '-'",
    );
    pravaha(&standalone, &["stream", "create", "s/_x"]).fails(2, "reserved for internal names");
    pravaha(&standalone, &["stream", "create", "orders"]).fails(
        2,
        "\"orders\" is not SCOPE/STREAM: name the scope too, e.g. examples/orders",
    );
    pravaha(&standalone, &["scope", "create", "a/b"]).fails(2, "invalid name: scope name");
    pravaha(&standalone, &["rg", "create", "s/g!", "--stream", "s/x"])
        .fails(2, "invalid name: reader group name \"g!\"");
    pravaha(&standalone, &["stream", "create", "s/x"]).ok();
    pravaha(&standalone, &["scope", "delete", "s"]).fails(5, "scope s is not empty");
}

#[test]
fn bad_input_is_explained() {
    let standalone = standalone_with_scope("s");
    pravaha(
        &standalone,
        &["stream", "create", "s/x", "--min-segments", "2"],
    )
    .fails(2, "--scale-factor and --min-segments apply to rate scaling");
    let bad_size = pravaha(
        &standalone,
        &["stream", "create", "s/x", "--retention-size", "ten"],
    );
    assert_eq!(bad_size.code, 2, "a usage error");
    assert!(
        bad_size
            .stderr
            .contains("\"ten\" is not a size such as 512MiB"),
        "{}",
        bad_size.stderr
    );
    pravaha(&standalone, &["stream", "create", "s/x"]).ok();
    pravaha(&standalone, &["read", "s/x", "--from", "0:-4"])
        .fails(2, "offset -4 of segment 0.#epoch.0 is negative");
    pravaha(&standalone, &["stream", "truncate", "s/x", "{nope"])
        .fails(2, "the stream cut is not a JSON object");
    pravaha_stdin(
        &standalone,
        &["write", "s/x", "--key-field", "id"],
        "not json\n",
    )
    .fails(2, "line 1: not a JSON object");
    pravaha(
        &standalone,
        &["write", "s/x", "--file", "/nonexistent/events"],
    )
    .fails(2, "cannot open /nonexistent/events");
    let info = pravaha(&standalone, &["stream", "info", "s/x", "--json"]).json();
    assert_eq!(
        info["tail"],
        json!({"0.#epoch.0": 0}),
        "nothing was written"
    );
}

#[test]
fn completion_scripts_cover_the_commands() {
    let bash = command(&["completions", "bash"]).output().unwrap();
    let script = String::from_utf8(bash.stdout).unwrap();
    assert!(bash.status.success());
    assert!(
        script.contains("_pravaha()") && script.contains("--if-absent"),
        "{script}"
    );
    let zsh = command(&["completions", "zsh"]).output().unwrap();
    assert!(String::from_utf8(zsh.stdout)
        .unwrap()
        .starts_with("#compdef pravaha"));
    let fish = command(&["completions", "fish"]).output().unwrap();
    assert!(String::from_utf8(fish.stdout)
        .unwrap()
        .contains("complete -c pravaha"));
}
