//! The `pravaha` client commands end to end: the real binary against a real `pravaha
//! standalone`, asserting what it prints (tables and `--json`), its exit codes and messages,
//! and the state it leaves (through later commands and the pravaha-client library).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::Standalone;
use pravaha_client::controller::types::{RetentionPolicy, ScalingPolicy, ScopedStream};
use pravaha_client::group::ReaderGroup;
use pravaha_client::table::{KeyValueTable, KeyValueTableInfo, TableKey};
use pravaha_client::{ClientConfig, ControllerClient};
use serde_json::Value;

/// What one run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success and answers stdout.
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "failed; stderr: {}", self.stderr);
        self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    fn json(self) -> Value {
        let stdout = self.ok();
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }

    /// Asserts exit code `code` and an error on stderr containing `message`.
    fn fails(self, code: i32, message: &str) {
        assert_eq!(
            self.code, code,
            "stdout: {} stderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.starts_with("error: ") && self.stderr.contains(message),
            "stderr {:?} lacks {message:?}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
    }
}

/// Runs `pravaha ARGS --controller URI` with `stdin`.
fn pravaha_at(uri: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pravaha"))
        .args(args)
        .arg("--controller")
        .arg(uri)
        .env_remove("PRAVAHA_CONTROLLER_URI")
        .env_remove("PRAVAHA_CLIENT_CONFIG")
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pravaha");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let output = child.wait_with_output().expect("wait for pravaha");
    Run {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn uri(standalone: &Standalone) -> String {
    format!("tcp://{}", standalone.listeners.grpc)
}

fn pravaha(standalone: &Standalone, args: &[&str]) -> Run {
    pravaha_at(&uri(standalone), args, "")
}

fn pravaha_stdin(standalone: &Standalone, args: &[&str], stdin: &str) -> Run {
    pravaha_at(&uri(standalone), args, stdin)
}

/// Runs `future` with a library controller client for `standalone`.
fn with_controller<T>(
    standalone: &Standalone,
    future: impl AsyncFnOnce(ControllerClient) -> T,
) -> T {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = ClientConfig::builder()
            .controller_uri(uri(standalone))
            .build()
            .unwrap();
        future(ControllerClient::new(config).unwrap()).await
    })
}

#[test]
fn scopes_and_streams_from_creation_to_deletion() {
    let standalone = Standalone::start();
    assert_eq!(
        pravaha(&standalone, &["scope", "create", "shop"]).ok(),
        "created scope shop\n"
    );
    let again = pravaha(&standalone, &["scope", "create", "shop", "--json"]).json();
    assert_eq!(
        again,
        serde_json::json!({"scope": "shop", "created": false})
    );
    pravaha(&standalone, &["scope", "create", "audit"]).ok();
    assert_eq!(
        pravaha(&standalone, &["scope", "list"]).ok(),
        "SCOPE\naudit\nshop\n"
    );
    let listed = pravaha(&standalone, &["scope", "list", "--json"]).json();
    assert!(listed
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"scope": "shop"})));

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
    assert_eq!(
        pravaha(&standalone, &["stream", "list", "shop"]).ok(),
        "STREAM\nshop/orders\nshop/returns\n"
    );
    let tagged = pravaha(
        &standalone,
        &["stream", "list", "shop", "--tag", "eu", "--json"],
    )
    .json();
    assert_eq!(
        tagged,
        serde_json::json!([{"scope": "shop", "stream": "orders"}])
    );

    let info = pravaha(&standalone, &["stream", "info", "shop/orders", "--json"]).json();
    assert_eq!(info["sealed"], false);
    assert_eq!(
        info["configuration"],
        serde_json::json!({
            "scaling": {"type": "fixed", "segments": 2},
            "retention": {"type": "size", "min_bytes": 10u64 << 20, "max_bytes": 1u64 << 30},
            "tags": ["sales", "eu"],
            "rollover_size_bytes": 0,
        })
    );
    let segments = info["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[0]["segment"], "0.#epoch.0");
    assert_eq!(
        (
            segments[0]["key_low"].as_f64(),
            segments[0]["key_high"].as_f64()
        ),
        (Some(0.0), Some(0.5))
    );
    assert_eq!(segments[1]["length"], 0);
    assert_eq!(
        info["head"],
        serde_json::json!({"0.#epoch.0": 0, "1.#epoch.0": 0})
    );
    assert_eq!(info["tail"], info["head"]);
    let table = pravaha(&standalone, &["stream", "info", "shop/orders"]).ok();
    assert!(table.contains("scaling    fixed, 2 segments\n"), "{table}");
    assert!(
        table.contains("retention  by size: at least 10MiB, at most 1GiB\n"),
        "{table}"
    );
    assert!(table.contains("tags       sales, eu\n"), "{table}");
    assert!(
        table.contains(
            "SEGMENT     KEY RANGE         START  LENGTH\n0.#epoch.0  [0.0000, 0.5000)  0      0\n"
        ),
        "{table}"
    );

    // Update: rate scaling and time retention; the controller keeps what was asked.
    let updated = pravaha(
        &standalone,
        &[
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
        ],
    )
    .json();
    assert_eq!(updated["updated"], true);
    let stream = ScopedStream::new("shop", "orders");
    let config = with_controller(&standalone, async |controller| {
        controller.get_stream_configuration(&stream).await.unwrap()
    });
    assert_eq!(
        config.scaling,
        ScalingPolicy::ByEventRate {
            target_events_per_second: 500,
            scale_factor: 2,
            min_segments: 2
        }
    );
    assert_eq!(
        config.retention,
        RetentionPolicy::Time {
            min: std::time::Duration::from_secs(7 * 86_400),
            max: None
        }
    );
    assert!(config.tags.is_empty());

    // Scale: merge both segments into one, then split the one named into three.
    let merged = pravaha(
        &standalone,
        &["stream", "scale", "shop/orders", "--into", "1", "--json"],
    )
    .json();
    assert_eq!(
        merged["sealed"],
        serde_json::json!(["0.#epoch.0", "1.#epoch.0"])
    );
    assert_eq!(merged["segments"][0]["segment"], "2.#epoch.1");
    let split = pravaha(
        &standalone,
        &[
            "stream",
            "scale",
            "shop/orders",
            "--segment",
            "2",
            "--ranges",
            "0-0.2,0.2-0.6,0.6-1",
        ],
    )
    .ok();
    assert!(split.starts_with("scaled stream shop/orders: sealed 1 segment(s)\nNEW SEGMENT  KEY RANGE\n3.#epoch.2   [0.0000, 0.2000)\n"), "{split}");
    let current = with_controller(&standalone, async |controller| {
        controller.get_current_segments(&stream).await.unwrap()
    });
    let ranges: Vec<(f64, f64)> = current
        .segments
        .iter()
        .map(|s| (s.range.low, s.range.high))
        .collect();
    assert_eq!(ranges, vec![(0.0, 0.2), (0.2, 0.6), (0.6, 1.0)]);
    pravaha(
        &standalone,
        &[
            "stream",
            "scale",
            "shop/orders",
            "--segment",
            "9",
            "--into",
            "2",
        ],
    )
    .fails(
        2,
        "segment 9.#epoch.0 is not a current segment of shop/orders",
    );

    // Truncate at the tail, after some events: the head moves there.
    pravaha_stdin(
        &standalone,
        &["write", "shop/orders", "--key", "k"],
        "one\ntwo\n",
    )
    .ok();
    let tail =
        pravaha(&standalone, &["stream", "info", "shop/orders", "--json"]).json()["tail"].clone();
    let truncated = pravaha(
        &standalone,
        &[
            "stream",
            "truncate",
            "shop/orders",
            &tail.to_string(),
            "--json",
        ],
    )
    .json();
    assert_eq!(truncated["truncated_at"], tail);
    let head =
        pravaha(&standalone, &["stream", "info", "shop/orders", "--json"]).json()["head"].clone();
    assert_eq!(head, tail);
    assert_eq!(pravaha(&standalone, &["read", "shop/orders"]).ok(), "");

    // Seal: writes are refused; delete: gone.
    assert_eq!(
        pravaha(&standalone, &["stream", "seal", "shop/orders"]).ok(),
        "sealed stream shop/orders\n"
    );
    pravaha_stdin(&standalone, &["write", "shop/orders"], "late\n")
        .fails(5, "shop/orders is sealed");
    let sealed = pravaha(&standalone, &["stream", "info", "shop/orders", "--json"]).json();
    assert_eq!(sealed["sealed"], true);
    assert_eq!(
        pravaha(&standalone, &["stream", "delete", "shop/orders"]).ok(),
        "deleted stream shop/orders\n"
    );
    // Delete seals first when needed.
    pravaha(&standalone, &["stream", "delete", "shop/returns", "--json"]).json();
    let exists = with_controller(&standalone, async |controller| {
        controller.stream_exists(&stream).await.unwrap()
    });
    assert!(!exists);
    pravaha(&standalone, &["stream", "delete", "shop/orders"])
        .fails(3, "stream shop/orders does not exist");
    assert_eq!(
        pravaha(&standalone, &["stream", "list", "shop"]).ok(),
        "STREAM\n"
    );
    assert_eq!(
        pravaha(&standalone, &["scope", "delete", "shop"]).ok(),
        "deleted scope shop\n"
    );
    pravaha(&standalone, &["scope", "delete", "shop"]).fails(3, "scope shop does not exist");
    assert_eq!(
        pravaha(&standalone, &["scope", "list"]).ok(),
        "SCOPE\naudit\n"
    );
}

/// The events of `read --json` output, one object per line.
fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn written_events_read_back_with_keys_in_order() {
    let standalone = Standalone::start();
    pravaha(&standalone, &["scope", "create", "app"]).ok();
    pravaha(
        &standalone,
        &["stream", "create", "app/events", "--segments", "4"],
    )
    .ok();

    let fixed = pravaha_stdin(
        &standalone,
        &["write", "app/events", "--key", "all"],
        "a1\na2\n\na3\n",
    )
    .ok();
    assert_eq!(fixed, "wrote 3 events (6 bytes) to app/events\n");
    // From a file, routed by a JSON field.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.jsonl");
    let mut lines = String::new();
    for i in 0..40 {
        lines.push_str(&format!("{{\"customer\":\"c{}\",\"seq\":{i}}}\n", i % 5));
    }
    std::fs::write(&file, &lines).unwrap();
    let summary = pravaha(
        &standalone,
        &[
            "write",
            "app/events",
            "--file",
            file.to_str().unwrap(),
            "--key-field",
            "customer",
            "--json",
        ],
    )
    .json();
    assert_eq!(
        summary,
        serde_json::json!({"stream": "app/events", "events": 40, "bytes": lines.len() - 40})
    );

    // Every line comes back once.
    let text = pravaha(&standalone, &["read", "app/events"]).ok();
    let mut read: Vec<&str> = text.lines().collect();
    let mut expected: Vec<&str> = lines.lines().chain(["a1", "a2", "a3"]).collect();
    read.sort_unstable();
    expected.sort_unstable();
    assert_eq!(read, expected);

    // Per key: one segment, the one the key routes to, in the order written.
    let read = events(&pravaha(&standalone, &["read", "app/events", "--json"]).ok());
    assert_eq!(read.len(), 43);
    let stream = ScopedStream::new("app", "events");
    let current = with_controller(&standalone, async |controller| {
        controller.get_current_segments(&stream).await.unwrap()
    });
    for customer in 0..5 {
        let key = format!("c{customer}");
        let mine: Vec<&Value> = read
            .iter()
            .filter(|e| {
                e["payload"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("\"{key}\""))
            })
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
                serde_json::from_str::<Value>(e["payload"].as_str().unwrap()).unwrap()["seq"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "{key}");
        assert_eq!(seqs.len(), 8);
    }
    let fixed_key: Vec<&Value> = read
        .iter()
        .filter(|e| e["payload"].as_str().unwrap().starts_with('a'))
        .collect();
    let payloads: Vec<&str> = fixed_key
        .iter()
        .map(|e| e["payload"].as_str().unwrap())
        .collect();
    assert_eq!(payloads, ["a1", "a2", "a3"]);
    // Offsets: records of 8-byte headers, one after the other.
    assert_eq!(
        (
            fixed_key[0]["offset"].as_i64(),
            fixed_key[0]["next_offset"].as_i64()
        ),
        (Some(0), Some(10))
    );
    assert_eq!(fixed_key[1]["offset"], 10);

    // From a cut: after the first "all" event, in its segment (the keys routed there follow,
    // in the order written); every other segment at its tail.
    let segment = fixed_key[0]["segment"].clone();
    let mut after_first: Vec<&Value> = read
        .iter()
        .filter(|e| e["segment"] == segment && e["offset"].as_i64().unwrap() >= 10)
        .collect();
    after_first.sort_by_key(|e| e["offset"].as_i64());
    let expected: String = after_first
        .iter()
        .map(|e| format!("{}\n", e["payload"].as_str().unwrap()))
        .collect();
    assert!(expected.starts_with("a2\na3\n"), "{expected}");
    let tail =
        pravaha(&standalone, &["stream", "info", "app/events", "--json"]).json()["tail"].clone();
    let mut cut = tail.as_object().unwrap().clone();
    cut.insert(
        fixed_key[0]["segment"].as_str().unwrap().to_owned(),
        fixed_key[0]["next_offset"].clone(),
    );
    let rest = pravaha(
        &standalone,
        &[
            "read",
            "app/events",
            "--from",
            &Value::Object(cut).to_string(),
        ],
    )
    .ok();
    assert_eq!(rest, expected);
    // Only the segments named are read.
    let as_list = format!("{}:10", segment.as_str().unwrap());
    assert_eq!(
        pravaha(&standalone, &["read", "app/events", "--from", &as_list]).ok(),
        expected
    );
    assert_eq!(
        pravaha(&standalone, &["read", "app/events", "--from", "tail"]).ok(),
        ""
    );
    assert_eq!(
        pravaha(&standalone, &["read", "app/events", "--max", "5"])
            .ok()
            .lines()
            .count(),
        5
    );

    // A JSON line without the field: refused, with the events before it written.
    pravaha_stdin(
        &standalone,
        &["write", "app/events", "--key-field", "customer"],
        "{\"customer\":\"c9\"}\n{\"x\":1}\n",
    )
    .fails(
        2,
        "line 2: no field \"customer\"; the 1 events before it were written",
    );
    assert_eq!(
        pravaha(&standalone, &["read", "app/events"])
            .ok()
            .lines()
            .count(),
        44
    );
}

#[test]
fn read_follows_new_events_across_a_scale() {
    let standalone = Standalone::start();
    pravaha(&standalone, &["scope", "create", "live"]).ok();
    pravaha(&standalone, &["stream", "create", "live/feed"]).ok();
    let follower = Command::new(env!("CARGO_BIN_EXE_pravaha"))
        .args([
            "read",
            "live/feed",
            "--follow",
            "--max",
            "6",
            "--controller",
            &uri(&standalone),
        ])
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
    // One key: in order across the scale (the successor is read after its predecessor).
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "1\n2\n3\n4\n5\n6\n"
    );

    // Without --follow, the read ends at the tail taken when it starts, successors included.
    assert_eq!(
        pravaha(&standalone, &["read", "live/feed"]).ok(),
        "1\n2\n3\n4\n5\n6\n"
    );
    // A sealed stream ends a followed read once everything is read.
    pravaha(&standalone, &["stream", "seal", "live/feed"]).ok();
    assert_eq!(
        pravaha(&standalone, &["read", "live/feed", "--follow"])
            .ok()
            .lines()
            .count(),
        6
    );
}

#[test]
fn reader_group_info_shows_readers_positions_and_lag() {
    let standalone = Standalone::start();
    pravaha(&standalone, &["scope", "create", "rg"]).ok();
    pravaha(
        &standalone,
        &["stream", "create", "rg/s", "--segments", "2"],
    )
    .ok();
    pravaha_stdin(
        &standalone,
        &["write", "rg/s", "--key", "a"],
        "x1\nx2\nx3\n",
    )
    .ok();
    pravaha_stdin(&standalone, &["write", "rg/s", "--key", "b"], "y1\n").ok();
    let info = pravaha(&standalone, &["stream", "info", "rg/s", "--json"]).json();
    let total: i64 = info["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["length"].as_i64().unwrap())
        .sum();
    assert_eq!(
        total,
        4 * 10,
        "four events of 2 bytes, each with an 8-byte header"
    );

    let created = pravaha(
        &standalone,
        &["rg", "create", "rg/billing", "--stream", "rg/s", "--json"],
    )
    .json();
    assert_eq!(created["created"], true);
    assert_eq!(created["streams"], serde_json::json!(["rg/s"]));
    assert_eq!(
        pravaha(&standalone, &["rg", "list", "rg"]).ok(),
        "GROUP       STREAMS\nrg/billing  rg/s\n"
    );
    assert_eq!(
        pravaha(&standalone, &["rg", "list", "rg", "--json"]).json(),
        serde_json::json!([{"scope": "rg", "group": "billing", "streams": ["rg/s"]}])
    );

    let before = pravaha(&standalone, &["rg", "info", "rg/billing", "--json"]).json();
    assert_eq!(before["lag_bytes"], total);
    assert_eq!(before["readers"], serde_json::json!([]));
    let segments = before["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    assert!(segments
        .iter()
        .all(|s| s["position"] == 0 && s["reader"].is_null() && s["lag_bytes"] == s["length"]));
    let table = pravaha(&standalone, &["rg", "info", "rg/billing"]).ok();
    assert!(
        table.contains(&format!("lag      {total} bytes\n")),
        "{table}"
    );
    assert!(
        table.contains("SEGMENT          READER  POSITION  LENGTH  LAG\nrg/s/0.#epoch.0  -"),
        "{table}"
    );

    // A reader takes the segments and reads one event: it shows as their owner.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ClientConfig::builder()
        .controller_uri(uri(&standalone))
        .build()
        .unwrap();
    let (group, mut reader) = runtime.block_on(async {
        let controller = ControllerClient::new(config).unwrap();
        let group = ReaderGroup::open(&controller, "rg", "billing")
            .await
            .unwrap();
        let mut reader = group.create_reader("reader-1").await.unwrap();
        reader.next_event().await.unwrap().expect("an event");
        (group, reader)
    });
    let during = pravaha(&standalone, &["rg", "info", "rg/billing", "--json"]).json();
    assert_eq!(during["readers"][0]["reader"], "reader-1");
    assert_eq!(during["readers"][0]["segments"], 2);
    assert!(during["segments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["reader"] == "reader-1"));
    // Read the rest, then close: positions recorded at the end of every segment.
    runtime.block_on(async {
        for _ in 1..4 {
            reader.next_event().await.unwrap().expect("an event");
        }
        reader.close().await.unwrap();
        drop(group);
    });
    let after = pravaha(&standalone, &["rg", "info", "rg/billing", "--json"]).json();
    assert_eq!(after["lag_bytes"], 0);
    assert_eq!(after["readers"], serde_json::json!([]));
    assert!(after["segments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["position"] == s["length"]));

    assert_eq!(
        pravaha(&standalone, &["rg", "delete", "rg/billing"]).ok(),
        "deleted reader group rg/billing\n"
    );
    pravaha(&standalone, &["rg", "info", "rg/billing"])
        .fails(3, "reader group rg/billing does not exist: create it with `pravaha rg create rg/billing --stream rg/STREAM`");
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
fn key_value_tables_with_conditional_puts() {
    let standalone = Standalone::start();
    pravaha(&standalone, &["scope", "create", "kv"]).ok();
    let created = pravaha(
        &standalone,
        &[
            "kvt",
            "create",
            "kv/accounts",
            "--partitions",
            "2",
            "--key-length",
            "4",
            "--secondary-key-length",
            "3",
        ],
    )
    .ok();
    assert_eq!(created, "created key-value table kv/accounts\n");
    assert_eq!(
        pravaha(&standalone, &["kvt", "list", "kv"]).ok(),
        "TABLE\nkv/accounts\n"
    );
    assert_eq!(
        pravaha(&standalone, &["kvt", "list", "kv", "--json"]).json(),
        serde_json::json!([{"scope": "kv", "table": "accounts"}])
    );

    let put = pravaha(
        &standalone,
        &[
            "kvt",
            "put",
            "kv/accounts",
            "a001",
            "100",
            "--secondary",
            "bal",
            "--json",
        ],
    )
    .json();
    let first = put["version"].as_i64().unwrap();
    let got = pravaha(
        &standalone,
        &[
            "kvt",
            "get",
            "kv/accounts",
            "a001",
            "--secondary",
            "bal",
            "--json",
        ],
    )
    .json();
    assert_eq!(
        got,
        serde_json::json!({"table": "kv/accounts", "key": "a001", "secondary": "bal", "value": "100", "version": first})
    );
    assert_eq!(
        pravaha(
            &standalone,
            &["kvt", "get", "kv/accounts", "a001", "--secondary", "bal"]
        )
        .ok(),
        "100\n"
    );

    // A conditional put on the current version succeeds and moves the version on.
    let second: i64 = pravaha(
        &standalone,
        &[
            "kvt",
            "put",
            "kv/accounts",
            "a001",
            "90",
            "--secondary",
            "bal",
            "--version",
            &first.to_string(),
        ],
    )
    .ok()
    .trim()
    .parse()
    .unwrap();
    assert_ne!(second, first);
    // On a stale version, it conflicts and changes nothing.
    pravaha(
        &standalone,
        &[
            "kvt",
            "put",
            "kv/accounts",
            "a001",
            "0",
            "--secondary",
            "bal",
            "--version",
            &first.to_string(),
        ],
    )
    .fails(5, "the condition failed");
    pravaha(
        &standalone,
        &[
            "kvt",
            "put",
            "kv/accounts",
            "a001",
            "0",
            "--secondary",
            "bal",
            "--if-absent",
        ],
    )
    .fails(5, "the condition failed");
    let entry = with_controller(&standalone, async |controller| {
        let table = KeyValueTable::open(&controller, KeyValueTableInfo::new("kv", "accounts"))
            .await
            .unwrap();
        table
            .get(&TableKey::new(&b"a001"[..], &b"bal"[..]))
            .await
            .unwrap()
            .expect("present")
    });
    assert_eq!((&entry.value[..], entry.version.0), (&b"90"[..], second));
    pravaha(
        &standalone,
        &[
            "kvt",
            "put",
            "kv/accounts",
            "a002",
            "7",
            "--secondary",
            "bal",
            "--if-absent",
        ],
    )
    .ok();

    pravaha(
        &standalone,
        &["kvt", "put", "kv/accounts", "a1", "1", "--secondary", "bal"],
    )
    .fails(
        2,
        "the key \"a1\" is 2 bytes long; table kv/accounts takes keys of exactly 4 bytes",
    );
    pravaha(
        &standalone,
        &[
            "kvt",
            "remove",
            "kv/accounts",
            "a001",
            "--secondary",
            "bal",
            "--version",
            &first.to_string(),
        ],
    )
    .fails(5, "the condition failed");
    assert_eq!(
        pravaha(
            &standalone,
            &[
                "kvt",
                "remove",
                "kv/accounts",
                "a001",
                "--secondary",
                "bal",
                "--version",
                &second.to_string()
            ]
        )
        .ok(),
        "removed\n"
    );
    pravaha(
        &standalone,
        &["kvt", "get", "kv/accounts", "a001", "--secondary", "bal"],
    )
    .fails(
        3,
        "key \"a001\" does not exist in key-value table kv/accounts",
    );
    assert_eq!(
        pravaha(
            &standalone,
            &["kvt", "get", "kv/accounts", "a002", "--secondary", "bal"]
        )
        .ok(),
        "7\n"
    );

    assert_eq!(
        pravaha(&standalone, &["kvt", "delete", "kv/accounts"]).ok(),
        "deleted key-value table kv/accounts\n"
    );
    pravaha(
        &standalone,
        &["kvt", "get", "kv/accounts", "a002", "--secondary", "bal"],
    )
    .fails(3, "key-value table kv/accounts does not exist");
    assert_eq!(pravaha(&standalone, &["kvt", "list", "kv"]).ok(), "TABLE\n");
}

#[test]
fn errors_say_what_to_do() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("tcp://127.0.0.1:{port}");
    pravaha_at(&nowhere, &["scope", "list"], "").fails(
        4,
        &format!("cannot reach the controller at {nowhere}: is `pravaha standalone` running? (--controller / PRAVAHA_CONTROLLER_URI)"),
    );

    let standalone = Standalone::start();
    pravaha(&standalone, &["stream", "create", "ghost/x"]).fails(
        3,
        "scope ghost does not exist: create it with `pravaha scope create ghost`",
    );
    pravaha(&standalone, &["scope", "create", "s"]).ok();
    pravaha(&standalone, &["read", "s/x"]).fails(
        3,
        "stream s/x does not exist: create it with `pravaha stream create s/x`",
    );
    pravaha_stdin(&standalone, &["write", "s/x"], "e\n").fails(
        3,
        "stream s/x does not exist: create it with `pravaha stream create s/x`",
    );
    pravaha(&standalone, &["stream", "info", "s/x"]).fails(3, "`pravaha stream create s/x`");
    pravaha(&standalone, &["stream", "create", "s/bad name"]).fails(
        2,
        "invalid name: stream name \"bad name\" may contain only letters, digits, '.' and '-'",
    );
    pravaha(&standalone, &["stream", "create", "s/_internal"])
        .fails(2, "reserved for internal names");
    pravaha(&standalone, &["stream", "create", "orders"]).fails(
        2,
        "\"orders\" is not SCOPE/STREAM: name the scope too, e.g. examples/orders",
    );
    pravaha(&standalone, &["scope", "create", "no/slash"]).fails(2, "invalid name: scope name");
    pravaha(
        &standalone,
        &["stream", "create", "s/x", "--min-segments", "2"],
    )
    .fails(2, "--scale-factor and --min-segments apply to rate scaling");
    let bad_size = pravaha(
        &standalone,
        &["stream", "create", "s/x", "--retention-size", "ten"],
    );
    assert_eq!(bad_size.code, 2, "a bad size is a usage error");
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
    pravaha_stdin(&standalone, &["scope", "delete", "s"], "").fails(5, "scope s is not empty");

    // Completion scripts come from the same command definition.
    let bash = Command::new(env!("CARGO_BIN_EXE_pravaha"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = String::from_utf8(bash.stdout).unwrap();
    assert!(bash.status.success() && script.contains("_pravaha()") && script.contains("kvt"));
    let zsh = Command::new(env!("CARGO_BIN_EXE_pravaha"))
        .args(["completions", "zsh"])
        .output()
        .unwrap();
    assert!(String::from_utf8(zsh.stdout)
        .unwrap()
        .starts_with("#compdef pravaha"));
}
