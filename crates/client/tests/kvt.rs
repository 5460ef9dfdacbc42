//! Key-Value Tables against an in-process standalone: created through the controller, then
//! conditional updates, atomic updates of a key family, iteration across partitions, deletion.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::admin::{bounded, config};
use common::Standalone;
use pravaha_client::controller::{ControllerClient, ControllerError};
use pravaha_client::table::{
    KeyValueTable, KeyValueTableConfiguration, KeyValueTableInfo, TableError, TableKey,
    TableModification,
};

const PARTITIONS: u32 = 4;

/// A table of 4 partitions, 8-byte primary keys and 4-byte secondary keys.
async fn table(standalone: &Standalone, name: &str) -> (ControllerClient, KeyValueTable) {
    let controller = ControllerClient::new(config(&standalone.controller_uri())).unwrap();
    controller.create_scope("tables").await.unwrap();
    let info = KeyValueTableInfo::new("tables", name);
    let configuration = KeyValueTableConfiguration::new(PARTITIONS, 8, 4);
    assert!(controller
        .create_key_value_table(&info, &configuration)
        .await
        .unwrap());
    assert!(!controller
        .create_key_value_table(&info, &configuration)
        .await
        .unwrap());
    assert_eq!(
        controller
            .get_key_value_table_configuration(&info)
            .await
            .unwrap(),
        configuration
    );
    let table = KeyValueTable::open(&controller, info).await.unwrap();
    (controller, table)
}

fn key(family: usize, member: usize) -> TableKey {
    TableKey::new(
        Bytes::from(format!("fam{family:05}")),
        Bytes::from(format!("m{member:03}")),
    )
}

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[tokio::test]
async fn conditional_updates_and_removals() {
    bounded(async {
        let standalone = Standalone::start().await;
        let (controller, table) = table(&standalone, "conditions").await;
        let k = key(1, 1);
        assert_eq!(table.get(&k).await.unwrap(), None);

        let first = table.put_if_absent(&k, value("a")).await.unwrap();
        assert!(matches!(
            table.put_if_absent(&k, value("b")).await,
            Err(TableError::BadKeyVersion { .. })
        ));
        let entry = table.get(&k).await.unwrap().unwrap();
        assert_eq!(
            (entry.value, entry.version, entry.key),
            (value("a"), first, k.clone())
        );

        let second = table.replace(&k, value("c"), first).await.unwrap();
        assert!(second > first, "a version is the entry's offset");
        assert!(matches!(
            table.replace(&k, value("d"), first).await,
            Err(TableError::BadKeyVersion { .. })
        ));
        assert!(matches!(
            table.remove_if(&k, first).await,
            Err(TableError::BadKeyVersion { .. })
        ));
        assert_eq!(table.get(&k).await.unwrap().unwrap().value, value("c"));

        let third = table.put(&k, value("e")).await.unwrap();
        assert!(third > second);
        table.remove_if(&k, third).await.unwrap();
        assert_eq!(table.get(&k).await.unwrap(), None);
        assert!(table
            .replace(&k, value("f"), third)
            .await
            .unwrap_err()
            .is_conditional_failure());
        table.put(&k, value("g")).await.unwrap();
        table.remove(&k).await.unwrap();
        assert_eq!(table.get(&k).await.unwrap(), None);

        // Keys of the wrong length are refused before anything is sent.
        let short = TableKey::new(&b"fam1"[..], &b"m001"[..]);
        assert!(matches!(
            table.put(&short, value("x")).await,
            Err(TableError::InvalidKey { .. })
        ));

        // Deleting the table.
        let info = table.info().clone();
        assert_eq!(
            controller.list_key_value_tables("tables").await.unwrap(),
            std::slice::from_ref(&info)
        );
        assert!(controller.delete_key_value_table(&info).await.unwrap());
        assert!(!controller.delete_key_value_table(&info).await.unwrap());
        assert!(matches!(
            controller.get_key_value_table_configuration(&info).await,
            Err(ControllerError::NotFound { .. })
        ));
        assert!(matches!(
            KeyValueTable::open(&controller, info).await,
            Err(TableError::TableDoesNotExist { .. })
        ));
        assert!(matches!(
            table.get(&key(1, 1)).await,
            Err(TableError::TableDoesNotExist { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn atomic_updates_apply_all_or_nothing() {
    bounded(async {
        let standalone = Standalone::start().await;
        let (_controller, table) = table(&standalone, "atomic").await;
        let versions = table
            .update(vec![
                TableModification::Insert {
                    key: key(7, 1),
                    value: value("1"),
                },
                TableModification::Insert {
                    key: key(7, 2),
                    value: value("2"),
                },
                TableModification::Put {
                    key: key(7, 3),
                    value: value("3"),
                },
            ])
            .await
            .unwrap();
        assert_eq!(versions.len(), 3);

        // One stale condition: nothing is applied.
        let refused = table
            .update(vec![
                TableModification::Replace {
                    key: key(7, 1),
                    value: value("10"),
                    version: versions[0],
                },
                TableModification::Replace {
                    key: key(7, 2),
                    value: value("20"),
                    version: versions[0],
                },
                TableModification::Insert {
                    key: key(7, 4),
                    value: value("40"),
                },
            ])
            .await;
        assert!(refused.unwrap_err().is_conditional_failure());
        let found = table
            .get_all(&[key(7, 1), key(7, 2), key(7, 3), key(7, 4)])
            .await
            .unwrap();
        let values: Vec<Option<Bytes>> = found.into_iter().map(|e| e.map(|e| e.value)).collect();
        assert_eq!(
            values,
            [Some(value("1")), Some(value("2")), Some(value("3")), None]
        );

        // With every condition right, everything is applied.
        let applied = table
            .update(vec![
                TableModification::Replace {
                    key: key(7, 1),
                    value: value("10"),
                    version: versions[0],
                },
                TableModification::Replace {
                    key: key(7, 2),
                    value: value("20"),
                    version: versions[1],
                },
                TableModification::Insert {
                    key: key(7, 4),
                    value: value("40"),
                },
            ])
            .await
            .unwrap();
        assert_eq!(
            table.get(&key(7, 4)).await.unwrap().unwrap().version,
            applied[2]
        );

        // Removals: one stale version keeps every key.
        let stale = table
            .update(vec![
                TableModification::Remove {
                    key: key(7, 1),
                    version: Some(applied[0]),
                },
                TableModification::Remove {
                    key: key(7, 3),
                    version: Some(versions[0]),
                },
            ])
            .await;
        assert!(stale.unwrap_err().is_conditional_failure());
        assert!(table.get(&key(7, 1)).await.unwrap().is_some());
        table
            .update(vec![
                TableModification::Remove {
                    key: key(7, 1),
                    version: Some(applied[0]),
                },
                TableModification::Remove {
                    key: key(7, 3),
                    version: Some(versions[2]),
                },
            ])
            .await
            .unwrap();
        assert_eq!(table.get(&key(7, 1)).await.unwrap(), None);
        assert_eq!(table.get(&key(7, 3)).await.unwrap(), None);

        // Atomic updates stay within one key family and do not mix puts and removals.
        for invalid in [
            vec![
                TableModification::Put {
                    key: key(7, 1),
                    value: value("x"),
                },
                TableModification::Put {
                    key: key(8, 1),
                    value: value("x"),
                },
            ],
            vec![
                TableModification::Put {
                    key: key(7, 1),
                    value: value("x"),
                },
                TableModification::Remove {
                    key: key(7, 2),
                    version: None,
                },
            ],
            vec![
                TableModification::Put {
                    key: key(7, 1),
                    value: value("x"),
                },
                TableModification::Put {
                    key: key(7, 1),
                    value: value("y"),
                },
            ],
            Vec::new(),
        ] {
            assert!(matches!(
                table.update(invalid).await,
                Err(TableError::InvalidArgument { .. })
            ));
        }
    })
    .await;
}

#[tokio::test]
async fn iteration_returns_every_live_entry_once_across_partitions() {
    bounded(async {
        let standalone = Standalone::start().await;
        let (_controller, table) = table(&standalone, "iteration").await;
        let mut expected = BTreeMap::new();
        for family in 0..40 {
            for member in 0..3 {
                let k = key(family, member);
                let v = value(&format!("{family}-{member}"));
                table.put(&k, v.clone()).await.unwrap();
                expected.insert(k, v);
            }
        }
        // Some removed, some overwritten.
        for family in (0..40).step_by(5) {
            table.remove(&key(family, 0)).await.unwrap();
            expected.remove(&key(family, 0));
            table.put(&key(family, 1), value("new")).await.unwrap();
            expected.insert(key(family, 1), value("new"));
        }

        let mut seen = BTreeMap::new();
        let mut entries = table.entries(7);
        let mut pages = 0;
        let mut partitions = std::collections::BTreeSet::new();
        while let Some(page) = entries.next_page().await.unwrap() {
            pages += 1;
            assert!(!page.is_empty());
            partitions.insert(entries.position().partition);
            for entry in page {
                assert_eq!(
                    table.get(&entry.key).await.unwrap().unwrap().version,
                    entry.version
                );
                assert!(
                    seen.insert(entry.key.clone(), entry.value).is_none(),
                    "{:?} twice",
                    entry.key
                );
            }
        }
        assert_eq!(seen, expected);
        assert!(pages >= expected.len() / 7);
        assert_eq!(
            partitions.len(),
            PARTITIONS as usize,
            "keys spread over every partition"
        );

        // Keys, resumed half-way from a saved position.
        let mut keys = table.keys(5);
        let mut listed = Vec::new();
        for _ in 0..3 {
            listed.extend(keys.next_page().await.unwrap().unwrap());
        }
        let mut resumed = table.keys_from(keys.position(), 11);
        while let Some(page) = resumed.next_page().await.unwrap() {
            listed.extend(page);
        }
        let mut listed_keys: Vec<TableKey> = listed.into_iter().map(|(k, _)| k).collect();
        listed_keys.sort();
        let expected_keys: Vec<TableKey> = expected.keys().cloned().collect();
        assert_eq!(listed_keys, expected_keys);
    })
    .await;
}
