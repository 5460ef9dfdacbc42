//! Stream routes: create, get, update, seal, delete, list filters, retention and scaling
//! events.

use super::*;
use pravaha_controller::model::{
    RetentionPolicy, RetentionType, ScaleType, ScalingPolicy, StreamState,
};
use pravaha_controller::{ControllerError, ScaleStatus};
use pravaha_segment_client::ClientError;

const MIB: i64 = 1_048_576;
const DAY_MS: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_created_and_updated() {
    within(async {
        let cluster = Cluster::start().await;
        cluster.controller.create_scope("sc").await.unwrap();
        let request = json!({
            "streamName": "st",
            "scalingPolicy": {"type": "FIXED_NUM_SEGMENTS", "minSegments": 3},
            "streamTags": ["red", "blue"],
            "timestampAggregationTimeout": 1000,
            "rolloverSizeBytes": 4096,
        });
        let expected = json!({
            "scopeName": "sc", "streamName": "st",
            "scalingPolicy": {"type": "FIXED_NUM_SEGMENTS", "targetRate": 0, "scaleFactor": 0,
                              "minSegments": 3},
            "retentionPolicy": null,
            "tags": ["red", "blue"],
            "timestampAggregationTimeout": 1000,
            "rolloverSizeBytes": 4096,
        });
        let path = "/v1/scopes/sc/streams/st";
        let created = call(
            &cluster,
            Method::POST,
            "/v1/scopes/sc/streams",
            Some(request),
        )
        .await;
        assert_eq!(created, (201, expected.clone()));
        let record = cluster.controller.stream("sc", "st").await.unwrap();
        assert_eq!(record.config.scaling, ScalingPolicy::fixed(3));
        assert_eq!(record.config.tags, vec!["red", "blue"]);
        assert_eq!(record.config.timestamp_aggregation_timeout_ms, 1000);
        assert_eq!(record.config.rollover_size_bytes, 4096);
        assert_eq!(record.current_segments().len(), 3);
        for n in 0..3 {
            assert!(!sealed(&cluster, &format!("sc/st/{n}.#epoch.0"))
                .await
                .unwrap());
        }
        assert_eq!(get(&cluster, path).await, (200, expected));

        let update = json!({
            "scalingPolicy": {"type": "BY_RATE_IN_EVENTS_PER_SEC", "targetRate": 100,
                              "scaleFactor": 2, "minSegments": 3},
            "streamTags": ["green"],
        });
        let (status, updated) = call(&cluster, Method::PUT, path, Some(update)).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(
            updated["scalingPolicy"]["type"],
            "BY_RATE_IN_EVENTS_PER_SEC"
        );
        assert_eq!(updated["tags"], json!(["green"]));
        let config = cluster.controller.stream("sc", "st").await.unwrap().config;
        assert_eq!(config.scaling.scale_type, ScaleType::ByRateInEventsPerSec);
        assert_eq!(
            (config.scaling.target_rate, config.scaling.scale_factor),
            (100, 2)
        );
        assert_eq!(config.tags, vec!["green"]);
        // PUT replaces the whole configuration: what it leaves out takes its default.
        assert_eq!(config.rollover_size_bytes, 0);
        assert_eq!(get(&cluster, path).await.1, updated);
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_sealed_then_deleted() {
    within(async {
        let cluster = Cluster::start().await;
        scope_with_stream(&cluster, "sc", "st", 3).await;
        let path = "/v1/scopes/sc/streams/st";
        assert_error(call(&cluster, Method::DELETE, path, None).await, 412);
        let seal = Some(json!({"streamState": "SEALED"}));
        let state = call(&cluster, Method::PUT, &format!("{path}/state"), seal).await;
        assert_eq!(state, (200, json!({"streamState": "SEALED"})));
        let record = cluster.controller.stream("sc", "st").await.unwrap();
        assert_eq!(record.state, StreamState::Sealed);
        assert!(record.current_segments().is_empty());
        for n in 0..3 {
            assert!(sealed(&cluster, &format!("sc/st/{n}.#epoch.0"))
                .await
                .unwrap());
        }
        // Sealing again is fine; changing a sealed stream's configuration is not.
        let seal = Some(json!({"streamState": "SEALED"}));
        assert_eq!(
            call(&cluster, Method::PUT, &format!("{path}/state"), seal)
                .await
                .0,
            200
        );
        assert_error(
            call(&cluster, Method::PUT, path, Some(json!({}))).await,
            412,
        );

        assert_eq!(
            call(&cluster, Method::DELETE, path, None).await,
            (204, Value::Null)
        );
        assert!(matches!(
            cluster.controller.stream("sc", "st").await,
            Err(ControllerError::StreamNotFound { .. })
        ));
        assert!(matches!(
            sealed(&cluster, "sc/st/0.#epoch.0").await,
            Err(ClientError::NoSuchSegment(_))
        ));
        assert_error(get(&cluster, path).await, 404);
        assert_error(call(&cluster, Method::DELETE, path, None).await, 404);
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_errors_have_pravegas_statuses() {
    within(async {
        let cluster = Cluster::start().await;
        scope_with_stream(&cluster, "sc", "st", 1).await;
        let create = |scope: &'static str, body: Value| {
            let cluster = &cluster;
            async move {
                let path = format!("/v1/scopes/{scope}/streams");
                call(cluster, Method::POST, &path, Some(body)).await
            }
        };
        assert_error(create("missing", json!({"streamName": "st"})).await, 404);
        assert_error(create("sc", json!({"streamName": "st"})).await, 409);
        for bad in ["bad name", "_internal", ""] {
            assert_error(create("sc", json!({"streamName": bad})).await, 400);
        }
        let bad_bodies = [
            json!({}),
            json!({"streamName": "x", "tags": ["t"]}),
            json!({"streamName": "x", "scalingPolicy": {"type": "FIXED_NUM_SEGMENTS", "minSegments": 0}}),
            json!({"streamName": "x", "scalingPolicy": {"type": "BY_RATE_IN_KBYTES_PER_SEC", "minSegments": 1}}),
            json!({"streamName": "x", "scalingPolicy": {"type": "SOMETIMES"}}),
            json!({"streamName": "x", "retentionPolicy": {"type": "LIMITED_SIZE_MB", "value": -1}}),
            json!({"streamName": "x", "retentionPolicy": {"type": "LIMITED_SIZE_MB", "value": 5, "maxValue": 1}}),
            json!({"streamName": "x", "streamTags": [""]}),
            json!({"streamName": "x", "rolloverSizeBytes": -1}),
            json!({"streamName": "x", "rolloverSizeBytes": "big"}),
        ];
        for body in bad_bodies {
            assert_error(create("sc", body).await, 400);
        }
        let malformed = http()
            .post(cluster.rest_url("/v1/scopes/sc/streams"))
            .body("not json");
        assert_error(answer(malformed).await, 400);
        assert!(matches!(
            cluster.controller.stream("sc", "x").await,
            Err(ControllerError::StreamNotFound { .. })
        ));

        let missing = "/v1/scopes/sc/streams/missing";
        assert_error(get(&cluster, missing).await, 404);
        assert_error(get(&cluster, "/v1/scopes/missing/streams/st").await, 404);
        assert_error(call(&cluster, Method::PUT, missing, Some(json!({}))).await, 404);
        let seal = json!({"streamState": "SEALED"});
        let state = format!("{missing}/state");
        assert_error(call(&cluster, Method::PUT, &state, Some(seal)).await, 404);
        let path = "/v1/scopes/sc/streams/st";
        let renamed = Some(json!({"streamName": "other"}));
        assert_error(call(&cluster, Method::PUT, path, renamed).await, 400);
        let bad_policy = Some(json!({"scalingPolicy": {"type": "FIXED_NUM_SEGMENTS", "minSegments": 0}}));
        assert_error(call(&cluster, Method::PUT, path, bad_policy).await, 400);
        for state in [json!({"streamState": "ACTIVE"}), json!({}), json!({"state": "SEALED"})] {
            let answer = call(&cluster, Method::PUT, &format!("{path}/state"), Some(state)).await;
            assert_error(answer, 400);
        }
        let record = cluster.controller.stream("sc", "st").await.unwrap();
        assert_eq!(record.state, StreamState::Active);
        assert_eq!(record.config, fixed(1));
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_lists_follow_the_filters_across_pages() {
    within(async {
        let cluster = Cluster::start_with(|config| config.page_size = 2).await;
        let controller = &cluster.controller;
        controller.create_scope("sc").await.unwrap();
        let tagged = |tags: &[&str]| StreamConfig {
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..fixed(1)
        };
        for (stream, tags) in [
            ("a", &[][..]),
            ("b", &["blue"][..]),
            ("c", &["blue", "red"][..]),
            ("d", &[][..]),
            ("_internal", &["blue"][..]),
            ("_other", &[][..]),
        ] {
            assert!(controller
                .create_stream("sc", stream, tagged(tags))
                .await
                .unwrap());
        }
        let list = |query: &'static str| {
            let cluster = &cluster;
            async move {
                let (status, body) = get(cluster, &format!("/v1/scopes/sc/streams{query}")).await;
                assert_eq!(status, 200, "{body}");
                names(&body, "streams", "streamName")
            }
        };
        assert_eq!(list("").await, set(&["a", "b", "c", "d"]));
        // User streams come with their mark streams, which are internal.
        assert_eq!(
            list("?filter_type=showInternalStreams").await,
            set(&[
                "_MARKa",
                "_MARKb",
                "_MARKc",
                "_MARKd",
                "_internal",
                "_other"
            ])
        );
        assert_eq!(
            list("?filter_type=tag&filter_value=blue").await,
            set(&["_internal", "b", "c"])
        );
        assert_eq!(list("?filter_type=tag&filter_value=red").await, set(&["c"]));
        assert_eq!(list("?filter_type=tag&filter_value=none").await, set(&[]));
        // Every entry is a whole StreamProperty.
        let (_, body) = get(
            &cluster,
            "/v1/scopes/sc/streams?filter_type=tag&filter_value=red",
        )
        .await;
        assert_eq!(body["streams"][0]["tags"], json!(["blue", "red"]));
        assert_eq!(body["streams"][0]["scalingPolicy"]["minSegments"], 1);

        assert_error(
            get(&cluster, "/v1/scopes/sc/streams?filter_type=tag").await,
            400,
        );
        assert_error(
            get(&cluster, "/v1/scopes/sc/streams?filter_type=all").await,
            400,
        );
        assert_error(get(&cluster, "/v1/scopes/missing/streams").await, 404);
        controller.create_scope("empty").await.unwrap();
        assert_eq!(
            get(&cluster, "/v1/scopes/empty/streams").await,
            (200, json!({"streams": []}))
        );
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_round_trips_in_days_and_mib() {
    within(async {
        let cluster = Cluster::start().await;
        cluster.controller.create_scope("sc").await.unwrap();
        let days =
            json!({"streamName": "st", "retentionPolicy": {"type": "LIMITED_DAYS", "value": 7}});
        let (status, created) =
            call(&cluster, Method::POST, "/v1/scopes/sc/streams", Some(days)).await;
        assert_eq!(status, 201, "{created}");
        let expected = json!({"type": "LIMITED_DAYS", "value": 7,
                              "timeBasedRetention": {"days": 7, "hours": 0, "minutes": 0}});
        assert_eq!(created["retentionPolicy"], expected);
        let retention = |cluster: &Cluster| {
            let controller = cluster.controller.clone();
            async move {
                controller
                    .stream("sc", "st")
                    .await
                    .unwrap()
                    .config
                    .retention
            }
        };
        assert_eq!(
            retention(&cluster).await,
            Some(RetentionPolicy {
                retention_type: RetentionType::Time,
                retention_param: 7 * DAY_MS,
                retention_max: i64::MAX,
            })
        );
        let path = "/v1/scopes/sc/streams/st";
        assert_eq!(get(&cluster, path).await.1["retentionPolicy"], expected);

        let detailed = json!({"retentionPolicy": {"type": "LIMITED_DAYS", "value": 0,
                               "timeBasedRetention": {"days": 1, "hours": 2, "minutes": 30}}});
        let (status, updated) = call(&cluster, Method::PUT, path, Some(detailed)).await;
        assert_eq!(status, 200, "{updated}");
        let param = retention(&cluster).await.unwrap().retention_param;
        assert_eq!(param, DAY_MS + 2 * 3_600_000 + 30 * 60_000);
        assert_eq!(
            get(&cluster, path).await.1["retentionPolicy"],
            json!({"type": "LIMITED_DAYS", "value": 0,
                   "timeBasedRetention": {"days": 1, "hours": 2, "minutes": 30}})
        );

        let size =
            json!({"retentionPolicy": {"type": "LIMITED_SIZE_MB", "value": 100, "maxValue": 200}});
        let (status, updated) = call(&cluster, Method::PUT, path, Some(size)).await;
        assert_eq!(status, 200, "{updated}");
        let expected = json!({"type": "LIMITED_SIZE_MB", "value": 100, "maxValue": 200});
        assert_eq!(updated["retentionPolicy"], expected);
        assert_eq!(
            retention(&cluster).await,
            Some(RetentionPolicy {
                retention_type: RetentionType::Size,
                retention_param: 100 * MIB,
                retention_max: 200 * MIB,
            })
        );
        assert_eq!(get(&cluster, path).await.1["retentionPolicy"], expected);
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_events_cover_the_window_and_its_reference() {
    within(async {
        let cluster = Cluster::start().await;
        scope_with_stream(&cluster, "sc", "st", 1).await;
        let controller = &cluster.controller;
        let started = controller.scale("sc", "st", &[0], &[(0.0, 0.5), (0.5, 1.0)]).await.unwrap();
        let mut status = ScaleStatus::InProgress;
        for _ in 0..300 {
            status = controller.check_scale("sc", "st", i32::try_from(started.epoch).unwrap()).await.unwrap();
            if status != ScaleStatus::InProgress {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(status, ScaleStatus::Success);
        let record = controller.stream("sc", "st").await.unwrap();
        let (created, scaled) = (record.epochs[0].created_ms, record.epochs[1].created_ms);

        let events = |from: i64, to: i64| {
            let cluster = &cluster;
            async move {
                let path = format!("/v1/scopes/sc/streams/st/scaling-events?from={from}&to={to}");
                let (status, body) = get(cluster, &path).await;
                assert_eq!(status, 200, "{body}");
                body["scalingEvents"].as_array().unwrap().clone()
            }
        };
        let all = events(0, scaled + 1000).await;
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(
            all[0],
            json!({"timestamp": created,
                   "segmentList": [{"number": 0, "startTime": created, "keyStart": 0.0, "keyEnd": 1.0}],
                   "splits": 0, "merges": 0})
        );
        assert_eq!(all[1]["timestamp"], scaled);
        assert_eq!((all[1]["splits"].clone(), all[1]["merges"].clone()), (json!(1), json!(0)));
        let numbers: Vec<_> = all[1]["segmentList"].as_array().unwrap().iter().map(|s| s["number"].clone()).collect();
        assert_eq!(numbers, vec![json!(1), json!(2)]);
        assert_eq!(all[1]["segmentList"][1]["keyStart"], 0.5);
        // After the last event, the answer is the event still in effect.
        let later = events(scaled + 1, scaled + 1000).await;
        assert_eq!(later, vec![all[1].clone()]);
        // Before the stream existed: nothing.
        assert!(events(0, created - 1).await.is_empty());

        let base = "/v1/scopes/sc/streams/st/scaling-events";
        for query in ["", "?from=0", "?to=5", "?from=-1&to=5", "?from=10&to=5", "?from=x&to=5"] {
            assert_error(get(&cluster, &format!("{base}{query}")).await, 400);
        }
        let missing = "/v1/scopes/sc/streams/missing/scaling-events?from=0&to=5";
        assert_error(get(&cluster, missing).await, 404);
        cluster.stop().await;
    })
    .await;
}
