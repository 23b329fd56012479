//! Integration tests of the store's public API.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use corvid_store::{
    Database, PutDocument, Storage, TombstoneKind, WriteError, WriteOp, WriteResult,
};
use serde_json::{Value, json};

fn put(id: &str, doc: Value) -> WriteOp {
    WriteOp::Put(PutDocument::new(id, doc.as_object().unwrap().clone(), None).unwrap())
}

fn put_cv(id: &str, doc: Value, cv: &str) -> WriteOp {
    WriteOp::Put(
        PutDocument::new(id, doc.as_object().unwrap().clone(), Some(cv.to_owned())).unwrap(),
    )
}

fn user(name: &str) -> Value {
    json!({"Name": name, "@metadata": {"@collection": "Users"}})
}

fn setup() -> (tempfile::TempDir, Storage, Arc<Database>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let db = storage.create_database("Shop").unwrap();
    (dir, storage, db)
}

fn json_of(db: &Database, id: &str) -> Option<Value> {
    let snapshot = db.snapshot().unwrap();
    snapshot
        .get(id)
        .unwrap()
        .map(|it| serde_json::from_str(&it.to_json_string()).unwrap())
}

#[test]
fn ids_are_case_insensitive_and_case_preserving() {
    let (_dir, _storage, db) = setup();
    db.write(vec![put("Users/ABC", user("Ann"))]).unwrap();
    let doc = json_of(&db, "users/abc").unwrap();
    assert_eq!(doc["@metadata"]["@id"], "Users/ABC");
    assert_eq!(doc["Name"], "Ann");
    db.write(vec![put("USERS/abc", user("Bob"))]).unwrap();
    let doc = json_of(&db, "users/ABC").unwrap();
    assert_eq!(doc["@metadata"]["@id"], "Users/ABC");
    assert_eq!(doc["Name"], "Bob");
    assert_eq!(
        db.snapshot()
            .unwrap()
            .count_documents(Some("users"))
            .unwrap(),
        1
    );
}

#[test]
fn a_collection_reads_and_counts_as_the_whole_feed_filtered() {
    // Runs of one collection, long and short gaps of another, updates and deletes: a
    // collection's feed is the database's feed filtered by collection, from any etag, and
    // its key-only counts agree.
    let (_dir, _storage, db) = setup();
    let order = |id: String| put(&id, json!({"@metadata": {"@collection": "Orders"}}));
    let mut n_orders = 0;
    for run in 0..6 {
        let n_users = [1, 40, 3, 100, 0, 33][run];
        db.write(
            (0..n_users)
                .map(|idx| put(&format!("users/{run}-{idx}"), user("u")))
                .collect(),
        )
        .unwrap();
        let n_new = [5, 1, 50, 2, 7, 1][run];
        db.write(
            (0..n_new)
                .map(|idx| order(format!("orders/{}", n_orders + idx)))
                .collect(),
        )
        .unwrap();
        n_orders += n_new;
        db.write(vec![
            order("orders/0".to_owned()),
            order(format!("orders/{}", run * 3)),
        ])
        .unwrap();
        db.write(vec![WriteOp::Delete {
            id: format!("users/{run}-0"),
            expected_change_vector: None,
        }])
        .unwrap();
    }
    let snapshot = db.snapshot().unwrap();
    let last = db.last_etag();
    for after in 0..=last + 1 {
        let all: Vec<_> = snapshot
            .documents_after(None, after)
            .unwrap()
            .map(|it| it.unwrap())
            .collect();
        assert_eq!(
            snapshot.count_documents_after(None, after).unwrap(),
            all.len() as u64,
            "after {after}"
        );
        for collection in ["Orders", "users", "Nope"] {
            let expected: Vec<_> = all
                .iter()
                .filter(|it| it.collection.eq_ignore_ascii_case(collection))
                .cloned()
                .collect();
            let found: Vec<_> = snapshot
                .documents_after(Some(collection), after)
                .unwrap()
                .map(|it| it.unwrap())
                .collect();
            assert_eq!(found, expected, "{collection} after {after}");
            assert_eq!(
                snapshot
                    .count_documents_after(Some(collection), after)
                    .unwrap(),
                expected.len() as u64,
                "{collection} after {after}"
            );
        }
    }
}

#[test]
fn an_update_moves_the_document_to_a_new_etag() {
    let (_dir, _storage, db) = setup();
    db.write(vec![put("users/1", user("a")), put("users/2", user("b"))])
        .unwrap();
    db.write(vec![put("users/1", user("a2"))]).unwrap();
    let snapshot = db.snapshot().unwrap();
    let docs: Vec<_> = snapshot
        .documents_after(Some("Users"), 0)
        .unwrap()
        .map(|it| it.unwrap())
        .collect();
    let ids: Vec<_> = docs.iter().map(|it| it.id.as_str()).collect();
    assert_eq!(ids, ["users/2", "users/1"]);
    assert_eq!(docs[1].etag, 3);
    assert_eq!(docs[1].change_vector, format!("A:3-{}", db.id()));
    let after_2: Vec<_> = snapshot.documents_after(None, 2).unwrap().collect();
    assert_eq!(after_2.len(), 1);
    assert_eq!(db.last_etag(), 3);
    // The key-only counts agree with the iterators.
    for (collection, after) in [
        (Some("Users"), 0),
        (Some("users"), 2),
        (None, 0),
        (None, 2),
        (Some("Nope"), 0),
    ] {
        assert_eq!(
            snapshot.count_documents_after(collection, after).unwrap(),
            snapshot.documents_after(collection, after).unwrap().count() as u64,
            "{collection:?} after {after}"
        );
    }
    db.write(vec![WriteOp::Delete {
        id: "users/2".into(),
        expected_change_vector: None,
    }])
    .unwrap();
    let snapshot = db.snapshot().unwrap();
    for (collection, after) in [(Some("Users"), 0), (Some("Users"), 4), (None, 0), (None, 3)] {
        assert_eq!(
            snapshot.count_tombstones_after(collection, after).unwrap(),
            snapshot
                .tombstones_after(collection, after)
                .unwrap()
                .count() as u64,
            "{collection:?} after {after}"
        );
    }
    assert_eq!(snapshot.count_tombstones(Some("Users")).unwrap(), 1);
}

#[test]
fn a_delete_leaves_a_tombstone_and_updates_counts() {
    let (_dir, _storage, db) = setup();
    db.write(vec![
        put("users/1", user("a")),
        put("orders/1", json!({"@metadata": {"@collection": "Orders"}})),
    ])
    .unwrap();
    let results = db
        .write(vec![WriteOp::Delete {
            id: "USERS/1".into(),
            expected_change_vector: None,
        }])
        .unwrap();
    assert!(matches!(
        &results[0],
        WriteResult::Delete { deleted: true, .. }
    ));
    let snapshot = db.snapshot().unwrap();
    assert!(snapshot.get("users/1").unwrap().is_none());
    let tombstones: Vec<_> = snapshot
        .tombstones_after(Some("users"), 0)
        .unwrap()
        .map(|it| it.unwrap())
        .collect();
    assert_eq!(tombstones.len(), 1);
    assert_eq!(tombstones[0].id, "users/1");
    assert_eq!(tombstones[0].collection, "Users");
    assert_eq!(tombstones[0].etag, 3);
    assert_eq!(tombstones[0].kind, TombstoneKind::Document);
    let collections = snapshot.collections().unwrap();
    assert_eq!(collections.len(), 1);
    assert_eq!(collections[0].name, "Orders");
    // Deleting what does not exist is not an error and writes nothing.
    let results = db
        .write(vec![WriteOp::Delete {
            id: "users/404".into(),
            expected_change_vector: None,
        }])
        .unwrap();
    assert!(matches!(
        &results[0],
        WriteResult::Delete { deleted: false, .. }
    ));
    assert_eq!(db.last_etag(), 3);
}

#[test]
fn change_vector_mismatch_is_a_conflict_and_applies_nothing() {
    let (_dir, _storage, db) = setup();
    let results = db.write(vec![put("users/1", user("a"))]).unwrap();
    let WriteResult::Put { change_vector, .. } = &results[0] else {
        panic!("expected a put result");
    };
    let error = db
        .write(vec![
            put("users/2", user("b")),
            put_cv("users/1", user("x"), "A:999-nope"),
        ])
        .unwrap_err();
    assert!(matches!(error, WriteError::Concurrency { .. }), "{error}");
    assert!(
        json_of(&db, "users/2").is_none(),
        "failed request must apply nothing"
    );
    // The right change vector succeeds; "" means "must not exist".
    db.write(vec![put_cv("users/1", user("c"), change_vector)])
        .unwrap();
    assert!(db.write(vec![put_cv("users/1", user("d"), "")]).is_err());
    db.write(vec![put_cv("users/3", user("d"), "")]).unwrap();
    assert_eq!(json_of(&db, "users/1").unwrap()["Name"], "c");
}

#[test]
fn merged_requests_fail_independently() {
    let (_dir, _storage, db) = setup();
    db.write(vec![put("users/1", user("a"))]).unwrap();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let n_requests = 200;
    std::thread::scope(|scope| {
        for idx in 0..n_requests {
            let db = db.clone();
            let outcomes = outcomes.clone();
            scope.spawn(move || {
                let ops = if idx % 10 == 0 {
                    vec![
                        put(&format!("items/{idx}"), user("x")),
                        put_cv("users/1", user("bad"), "A:1-wrong"),
                    ]
                } else {
                    vec![put(&format!("items/{idx}"), user("x"))]
                };
                let res = db.write(ops);
                outcomes.lock().unwrap().push((idx, res.is_ok()));
            });
        }
    });
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(outcomes.len(), n_requests);
    for (idx, ok) in outcomes.iter() {
        assert_eq!(*ok, idx % 10 != 0, "request {idx}");
        assert_eq!(
            json_of(&db, &format!("items/{idx}")).is_some(),
            idx % 10 != 0
        );
    }
}

#[test]
fn attachments_are_stored_once_and_removed_with_the_last_reference() {
    let (_dir, _storage, db) = setup();
    db.write(vec![put("users/1", user("a")), put("users/2", user("b"))])
        .unwrap();
    let attach = |id: &str, name: &str, content: &[u8]| WriteOp::AttachmentPut {
        document_id: id.into(),
        name: name.into(),
        content_type: "text/plain".into(),
        content: content.to_vec(),
        expected_change_vector: None,
    };
    let results = db
        .write(vec![
            attach("users/1", "a.txt", b"same"),
            attach("users/2", "b.txt", b"same"),
        ])
        .unwrap();
    let (
        WriteResult::AttachmentPut { hash: h1, size, .. },
        WriteResult::AttachmentPut { hash: h2, .. },
    ) = (&results[0], &results[1])
    else {
        panic!("expected attachment results");
    };
    assert_eq!(h1, h2);
    assert_eq!(*size, 4);
    let doc = json_of(&db, "users/1").unwrap();
    assert_eq!(doc["@metadata"]["@flags"], "HasAttachments");
    assert_eq!(doc["@metadata"]["@attachments"][0]["Name"], "a.txt");
    assert_eq!(doc["@metadata"]["@attachments"][0]["Size"], 4);

    db.write(vec![WriteOp::Delete {
        id: "users/1".into(),
        expected_change_vector: None,
    }])
    .unwrap();
    let (_, content) = db
        .snapshot()
        .unwrap()
        .attachment("users/2", "B.TXT")
        .unwrap()
        .unwrap();
    assert_eq!(content, b"same");
    db.write(vec![WriteOp::AttachmentDelete {
        document_id: "users/2".into(),
        name: "b.txt".into(),
        expected_change_vector: None,
    }])
    .unwrap();
    let snapshot = db.snapshot().unwrap();
    assert!(snapshot.attachment("users/2", "b.txt").unwrap().is_none());
    let doc = json_of(&db, "users/2").unwrap();
    assert!(doc["@metadata"].get("@flags").is_none());
    let kinds: Vec<_> = snapshot
        .tombstones_after(None, 0)
        .unwrap()
        .map(|it| it.unwrap().kind)
        .collect();
    assert!(kinds.contains(&TombstoneKind::Attachment {
        name: "b.txt".into()
    }));
    // An attachment for a missing document is refused.
    let error = db.write(vec![attach("users/404", "x", b"x")]).unwrap_err();
    assert!(matches!(error, WriteError::DocumentMissing { .. }));
}

#[test]
fn server_generated_ids_and_identities() {
    let (_dir, _storage, db) = setup();
    let results = db
        .write(vec![
            put("people/", user("a")),
            put("people|", user("b")),
            put("people|", user("c")),
        ])
        .unwrap();
    let ids: Vec<_> = results
        .iter()
        .map(|it| match it {
            WriteResult::Put { id, .. } => id.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        ["people/0000000000000000001-A", "people/1", "people/2"]
    );
}

#[test]
fn delete_prefixed_removes_every_matching_document() {
    let (_dir, _storage, db) = setup();
    db.write(vec![
        put("users/1/people/1", user("a")),
        put("Users/1/People/2", user("b")),
        put("users/10/people/1", user("c")),
    ])
    .unwrap();
    let results = db
        .write(vec![WriteOp::DeletePrefixed {
            prefix: "users/1/people/".into(),
        }])
        .unwrap();
    assert_eq!(
        results[0],
        WriteResult::DeletePrefixed {
            prefix: "users/1/people/".into(),
            deleted: 2
        }
    );
    assert!(json_of(&db, "users/10/people/1").is_some());
}

#[test]
fn hilo_ranges_do_not_overlap() {
    let (_dir, _storage, db) = setup();
    let next = || {
        let results = db
            .write(vec![WriteOp::HiloNext {
                tag: "users".into(),
                last_size: 0,
                last_range_at: None,
                separator: "/".into(),
            }])
            .unwrap();
        match &results[0] {
            WriteResult::HiloNext {
                low, high, prefix, ..
            } => (*low, *high, prefix.clone()),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(next(), (1, 32, "users/".to_owned()));
    assert_eq!(next(), (33, 64, "users/".to_owned()));
    db.write(vec![WriteOp::HiloReturn {
        tag: "users".into(),
        end: 64,
        last: 40,
    }])
    .unwrap();
    assert_eq!(next().0, 41);
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let storage = Storage::open(dir.path()).unwrap();
        let db = storage.create_database("Shop").unwrap();
        db.write(vec![put("users/1", user("a"))]).unwrap();
        storage.close();
    }
    let storage = Storage::open(dir.path()).unwrap();
    let db = storage.database("shop").unwrap();
    assert_eq!(db.name(), "Shop");
    assert_eq!(db.last_etag(), 1);
    assert_eq!(json_of(&db, "users/1").unwrap()["Name"], "a");
    db.write(vec![put("users/2", user("b"))]).unwrap();
    assert_eq!(db.last_etag(), 2);
}

#[test]
fn snapshots_are_consistent_while_writes_go_on() {
    let (_dir, _storage, db) = setup();
    db.write(vec![put("users/1", user("a"))]).unwrap();
    let snapshot = db.snapshot().unwrap();
    db.write(vec![
        put("users/2", user("b")),
        WriteOp::Delete {
            id: "users/1".into(),
            expected_change_vector: None,
        },
    ])
    .unwrap();
    assert!(snapshot.get("users/1").unwrap().is_some());
    assert!(snapshot.get("users/2").unwrap().is_none());
    assert_eq!(snapshot.documents_after(None, 0).unwrap().count(), 1);
    assert_eq!(snapshot.last_etag().unwrap(), 1);
}

#[test]
fn subscribers_hear_every_commit_after_it_is_durable() {
    let (_dir, _storage, db) = setup();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    let subscription = db.subscribe(move |notice| sink.lock().unwrap().push(notice.clone()));
    db.write(vec![
        put("users/1", user("a")),
        put("orders/1", json!({"@metadata": {"@collection": "Orders"}})),
    ])
    .unwrap();
    {
        let heard = heard.lock().unwrap();
        assert_eq!(heard.len(), 1);
        assert_eq!(heard[0].last_etag, 2);
        assert_eq!(heard[0].collections, ["Orders", "Users"]);
    }
    drop(subscription);
    db.write(vec![put("users/2", user("b"))]).unwrap();
    assert_eq!(heard.lock().unwrap().len(), 1);
}

#[test]
fn databases_are_created_listed_and_deleted() {
    let (dir, storage, _db) = setup();
    assert!(
        storage.create_database("shop").is_err(),
        "names are case-insensitive"
    );
    assert!(storage.create_database("bad name").is_err());
    assert!(storage.create_database("").is_err());
    storage.create_database("other").unwrap();
    assert_eq!(storage.databases().len(), 2);
    storage.delete_database("SHOP").unwrap();
    assert!(storage.database("shop").is_none());
    assert!(storage.delete_database("shop").is_err());
    assert!(!dir.path().join("databases/shop.redb").exists());
    storage.create_database("Shop").unwrap();
}

#[test]
fn changing_a_documents_collection_is_refused() {
    let (_dir, _storage, db) = setup();
    db.write(vec![put("users/1", user("a"))]).unwrap();
    let error = db
        .write(vec![put(
            "users/1",
            json!({"@metadata": {"@collection": "Orders"}}),
        )])
        .unwrap_err();
    assert!(matches!(error, WriteError::InvalidDocument { .. }));
}

#[test]
fn records_are_durable_settings_that_do_not_touch_the_change_feed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let storage = Storage::open(dir.path()).unwrap();
        let db = storage.create_database("Shop").unwrap();
        let heard = Arc::new(Mutex::new(0));
        let sink = heard.clone();
        let _subscription = db.subscribe(move |_| *sink.lock().unwrap() += 1);
        let results = db
            .write(vec![
                WriteOp::PutRecord {
                    key: "etl/config/a".into(),
                    value: Some(b"{}".to_vec()),
                },
                WriteOp::PutRecord {
                    key: "etl/config/b".into(),
                    value: Some(b"[]".to_vec()),
                },
                WriteOp::PutRecord {
                    key: "other".into(),
                    value: Some(b"x".to_vec()),
                },
                WriteOp::NextSequence {
                    key: "etl/task-id".into(),
                },
                WriteOp::NextSequence {
                    key: "etl/task-id".into(),
                },
            ])
            .unwrap();
        assert_eq!(results[4], WriteResult::NextSequence(2));
        assert_eq!(db.last_etag(), 0, "records take no etag");
        assert_eq!(
            *heard.lock().unwrap(),
            0,
            "records are not news to subscribers"
        );
        db.write(vec![WriteOp::PutRecord {
            key: "etl/config/b".into(),
            value: None,
        }])
        .unwrap();
        storage.close();
    }
    let storage = Storage::open(dir.path()).unwrap();
    let snapshot = storage.database("shop").unwrap().snapshot().unwrap();
    let found = snapshot.records_with_prefix("etl/config/").unwrap();
    assert_eq!(found, vec![("etl/config/a".to_owned(), b"{}".to_vec())]);
    assert_eq!(snapshot.record_value("other").unwrap(), Some(b"x".to_vec()));
    assert_eq!(snapshot.record_value("missing").unwrap(), None);
}

#[test]
fn an_attachment_can_name_a_document_generated_earlier_in_the_same_request() {
    let (_dir, _storage, db) = setup();
    let results = db
        .write(vec![
            put("users/1/people/", user("a")),
            WriteOp::AttachmentPut {
                document_id: "users/1/people/".into(),
                name: "photo.png".into(),
                content_type: "image/png".into(),
                content: b"png".to_vec(),
                expected_change_vector: None,
            },
        ])
        .unwrap();
    let WriteResult::Put { id, .. } = &results[0] else {
        panic!("expected a put");
    };
    let WriteResult::AttachmentPut { document_id, .. } = &results[1] else {
        panic!("expected an attachment put");
    };
    assert_eq!(document_id, id);
    assert!(
        db.snapshot()
            .unwrap()
            .attachment(id, "photo.png")
            .unwrap()
            .is_some()
    );
    // Without a put of that prefix in the same request it is still a missing document.
    let error = db
        .write(vec![WriteOp::AttachmentPut {
            document_id: "users/2/people/".into(),
            name: "x".into(),
            content_type: String::new(),
            content: vec![],
            expected_change_vector: None,
        }])
        .unwrap_err();
    assert!(matches!(error, WriteError::DocumentMissing { .. }));
}

#[test]
fn a_document_remembers_the_etag_it_was_created_at() {
    let (_dir, _storage, db) = setup();
    db.write(vec![put("users/1", user("a")), put("users/2", user("b"))])
        .unwrap();
    db.write(vec![put("Users/1", user("a2"))]).unwrap();
    db.write(vec![WriteOp::AttachmentPut {
        document_id: "users/1".into(),
        name: "a.txt".into(),
        content_type: "text/plain".into(),
        content: b"x".to_vec(),
        expected_change_vector: None,
    }])
    .unwrap();
    let doc = db.snapshot().unwrap().get("users/1").unwrap().unwrap();
    assert_eq!(doc.created_etag, 1, "updates keep it");
    assert!(doc.etag > 3);
    let doc = db.snapshot().unwrap().get("users/2").unwrap().unwrap();
    assert_eq!((doc.created_etag, doc.etag), (2, 2));

    db.write(vec![WriteOp::Delete {
        id: "users/2".into(),
        expected_change_vector: None,
    }])
    .unwrap();
    db.write(vec![put("users/2", user("b again"))]).unwrap();
    let snapshot = db.snapshot().unwrap();
    let doc = snapshot.get("users/2").unwrap().unwrap();
    assert_eq!(doc.created_etag, doc.etag, "created again after a delete");
    // The tombstone of the earlier document stays, below the new creation.
    let tombstones: Vec<_> = snapshot
        .tombstones_after(Some("Users"), 0)
        .unwrap()
        .map(|it| it.unwrap())
        .collect();
    assert!(
        tombstones
            .iter()
            .any(|it| it.id == "users/2" && it.etag < doc.created_etag)
    );
}

#[test]
fn tombstones_are_purged_per_collection_up_to_a_limit() {
    let (_dir, _storage, db) = setup();
    let order = || json!({"@metadata": {"@collection": "Orders"}});
    let mut puts = Vec::new();
    for it in 1..=4 {
        puts.push(put(&format!("users/{it}"), user("a")));
        puts.push(put(&format!("orders/{it}"), order()));
    }
    puts.push(put(
        "notes/1",
        json!({"@metadata": {"@collection": "Notes"}}),
    ));
    db.write(puts).unwrap();
    let delete = |id: String| WriteOp::Delete {
        id,
        expected_change_vector: None,
    };
    // Tombstones at etags 10..=17: users/1, orders/1, users/2, orders/2, … ; notes/1 at 18.
    for it in 1..=4 {
        db.write(vec![
            delete(format!("users/{it}")),
            delete(format!("orders/{it}")),
        ])
        .unwrap();
    }
    db.write(vec![delete("notes/1".to_owned())]).unwrap();
    let etags = |collection: Option<&str>| -> Vec<u64> {
        db.snapshot()
            .unwrap()
            .tombstones_after(collection, 0)
            .unwrap()
            .map(|it| it.unwrap().etag)
            .collect()
    };
    assert_eq!(etags(None), (10..=18).collect::<Vec<_>>());
    let purge = |limits: Vec<(&str, u64)>, others: u64, max: u64| {
        let results = db
            .write(vec![WriteOp::PurgeTombstones {
                limits: limits
                    .into_iter()
                    .map(|(name, etag)| (name.to_owned(), etag))
                    .collect(),
                others,
                max,
            }])
            .unwrap();
        match &results[0] {
            WriteResult::PurgeTombstones { purged, more } => (*purged, *more),
            other => panic!("{other:?}"),
        }
    };
    // Orders up to 13 (orders/1 at 11, orders/2 at 13); Users up to 12; Notes not at all.
    assert_eq!(
        purge(vec![("orders", 13), ("users", 12)], 0, 100),
        (4, false)
    );
    assert_eq!(etags(Some("Orders")), [15, 17]);
    assert_eq!(etags(Some("Users")), [14, 16]);
    assert_eq!(etags(Some("Notes")), [18]);
    // A limit of at most 2 at a time: stops and says there may be more.
    assert_eq!(purge(vec![], u64::MAX, 2), (2, true));
    assert_eq!(purge(vec![], u64::MAX, 2), (2, true));
    assert_eq!(purge(vec![], u64::MAX, 2), (1, false));
    assert!(etags(None).is_empty());
    assert_eq!(db.snapshot().unwrap().count_tombstones(None).unwrap(), 0);
    // Purging takes no etag and leaves documents alone.
    assert_eq!(db.last_etag(), 18);
    db.write(vec![put("users/9", user("b"))]).unwrap();
    assert_eq!(purge(vec![], u64::MAX, 100), (0, false));
    assert!(json_of(&db, "users/9").is_some());
}
