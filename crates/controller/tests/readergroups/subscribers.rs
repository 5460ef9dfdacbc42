//! Subscribers: groups with retention type MANUAL or AUTOMATIC, their names and the cuts they
//! publish.

use std::collections::BTreeMap;

use pravaha_types::segment_id;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_cuts_are_checked_and_only_move_forward() {
    within(async {
        let (cluster, mut client) = cluster_with(&[("a", 2)]).await;
        let (_, config) = create(&mut client, group("rg", MANUAL, &["a"])).await;
        let id = config.unwrap().reader_group_id;
        // A plain group is no subscriber, and one in another scope is named with its scope.
        create(&mut client, group("plain", NONE, &["a"])).await;
        cluster.controller.create_scope("sc2").await.unwrap();
        let remote = api::ReaderGroupConfiguration {
            scope: "sc2".into(),
            ..group("remote", MANUAL, &["a"])
        };
        assert_eq!(create(&mut client, remote).await.0, Create::Success as i32);
        assert_eq!(
            subscribers(&mut client, "a").await,
            (0, vec!["sc/rg".to_owned(), "sc2/remote".to_owned()])
        );
        assert_eq!(
            subscribers(&mut client, "missing").await.0,
            api::subscribers_response::Status::StreamNotFound as i32
        );

        let head = |offset| cut("sc", "a", &[(0, offset), (1, offset)]);
        let status = |c: &mut Client, subscriber: &str, id: &str, generation, stream_cut| {
            let mut c = c.clone();
            let (subscriber, id) = (subscriber.to_owned(), id.to_owned());
            async move { update_cut(&mut c, &subscriber, &id, generation, stream_cut).await }
        };
        let missing_stream = cut("sc", "missing", &[(0, 0)]);
        assert_eq!(
            status(&mut client, "sc/rg", &id, 0, missing_stream).await,
            Cut::StreamNotFound as i32
        );
        for (subscriber, group_id) in [
            ("sc/nope", id.as_str()),
            ("sc/plain", id.as_str()),
            ("sc/rg", "00000000-0000-0000-0000-000000000001"),
            ("rg", id.as_str()),
        ] {
            assert_eq!(
                status(&mut client, subscriber, group_id, 0, head(0)).await,
                Cut::SubscriberNotFound as i32,
                "{subscriber}"
            );
        }
        assert_eq!(
            status(&mut client, "sc/rg", &id, 3, head(0)).await,
            Cut::GenerationMismatch as i32
        );
        for invalid in [
            cut("sc", "a", &[(0, 5)]),
            cut("sc", "a", &[(0, 5), (9, 5)]),
            cut("sc", "a", &[(0, -1), (1, 0)]),
        ] {
            assert_eq!(
                status(&mut client, "sc/rg", &id, 0, invalid).await,
                Cut::StreamCutNotValid as i32
            );
        }

        // Forward only: same offsets again, then further, never back.
        assert_eq!(
            status(&mut client, "sc/rg", &id, 0, head(10)).await,
            Cut::Success as i32
        );
        assert_eq!(
            status(&mut client, "sc/rg", &id, 0, head(10)).await,
            Cut::Success as i32
        );
        assert_eq!(
            status(&mut client, "sc/rg", &id, 0, head(5)).await,
            Cut::StreamCutNotValid as i32
        );
        // After a scale splitting segment 0, a cut on its successors is further.
        cluster
            .controller
            .scale("sc", "a", &[0], &[(0.0, 0.25), (0.25, 0.5)])
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while cluster
            .controller
            .stream("sc", "a")
            .await
            .unwrap()
            .epochs
            .len()
            < 2
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the scale did not finish"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let (two, three) = (segment_id(1, 2), segment_id(1, 3));
        let successors = cut("sc", "a", &[(two, 0), (three, 0), (1, 10)]);
        assert_eq!(
            status(&mut client, "sc/rg", &id, 0, successors.clone()).await,
            Cut::Success as i32
        );
        assert_eq!(
            status(&mut client, "sc/rg", &id, 0, head(20)).await,
            Cut::StreamCutNotValid as i32
        );
        let expected: BTreeMap<i64, i64> = successors.cut.clone().into_iter().collect();
        let cuts = cluster.controller.subscriber_cuts("sc", "a").await.unwrap();
        assert_eq!(cuts[0].0, "sc/rg");
        assert_eq!(cuts[0].1, expected);
        assert!(cuts[1].1.is_empty(), "{cuts:?}");

        // A re-created stream has none of the old stream's subscribers.
        cluster.controller.seal_stream("sc", "a").await.unwrap();
        assert!(cluster.controller.delete_stream("sc", "a").await.unwrap());
        assert_eq!(
            subscribers(&mut client, "a").await.0,
            api::subscribers_response::Status::StreamNotFound as i32
        );
        let config = cluster
            .controller
            .stream("sc", "_RGrg")
            .await
            .unwrap()
            .config;
        assert!(cluster
            .controller
            .create_stream("sc", "a", config)
            .await
            .unwrap());
        assert_eq!(subscribers(&mut client, "a").await, (0, vec![]));
        assert_eq!(
            status(&mut client, "sc/rg", &id, 0, cut("sc", "a", &[(0, 0)])).await,
            Cut::SubscriberNotFound as i32
        );
        cluster.stop().await;
    })
    .await;
}
