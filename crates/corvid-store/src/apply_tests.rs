//! Applying is deterministic: the same groups of requests, applied with the same times through
//! [`Database::apply_group`] to two databases created with the same id, give the same results
//! and byte-for-byte the same tables; and the results are those of the ordinary write path.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{Value, json};

use crate::tables::{
    ATTACHMENTS, BLOB_REFS, BLOBS, COLLECTIONS, DOCS, DOCS_BY_COLLECTION, DOCS_BY_ETAG, IDENTITIES,
    META, RECORDS, TOMBSTONES, TOMBSTONES_BY_COLLECTION,
};
use crate::{
    ApplyDurability, Database, PutDocument, RequestError, Storage, Timestamp, WriteError, WriteOp,
    WriteResult, new_database_id,
};

type Outcome = Result<Vec<WriteResult>, WriteError>;

/// 2026-01-01, in ticks; group `n` is applied one second later than group `n - 1`.
const FIRST_TICKS: i64 = 17_672_256_000_000_000;

/// A small deterministic random source (xorshift64*), so every run builds the same sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn put(id: &str, collection: &str, n: u64, expected: Option<String>) -> WriteOp {
    let document = json!({"N": n, "Tags": ["a", n], "@metadata": {"@collection": collection}});
    let Value::Object(document) = document else {
        unreachable!("a JSON object literal")
    };
    WriteOp::Put(PutDocument::new(id, document, expected).unwrap())
}

/// Builds the next group of requests; `reference` is the database the earlier groups were
/// applied to, read for change vectors so that conditional writes both succeed and fail.
fn next_group(
    rng: &mut Rng,
    reference: &Database,
    stale: &HashMap<String, String>,
) -> Vec<Vec<WriteOp>> {
    let snapshot = reference.snapshot().unwrap();
    let current_cv = |id: &str| snapshot.get(id).unwrap().map(|it| it.change_vector);
    let long_prefix = "x".repeat(crate::ids::MAX_ID_BYTES - 1);
    let contents: [&[u8]; 3] = [b"one", b"two", b"three"];
    let n_requests = 1 + rng.below(5);
    let mut group = Vec::new();
    for _ in 0..n_requests {
        let n_ops = 1 + rng.below(4);
        let mut request = Vec::new();
        for _ in 0..n_ops {
            let n = rng.below(12);
            let (prefix, collection) = match rng.below(3) {
                0 => ("orders", "Orders"),
                _ => ("users", "Users"),
            };
            let id = format!("{prefix}/{n}");
            let op = match rng.below(22) {
                0..=3 => put(&id, collection, rng.next() % 1000, None),
                4 => put(&format!("{prefix}/"), collection, n, None),
                5 => put(&format!("{prefix}|"), collection, n, None),
                // The document exists in another collection: refused.
                6 => put(&id, "Other", n, None),
                7 => put(&id, collection, n, current_cv(&id).or(Some(String::new()))),
                8 => put(
                    &id,
                    collection,
                    n,
                    Some(
                        stale
                            .get(&id)
                            .cloned()
                            .unwrap_or_else(|| "A:1-x".to_owned()),
                    ),
                ),
                // Generated ids past the length limit: refused when applied.
                9 => put(&format!("{long_prefix}|"), collection, n, None),
                10 => put(&format!("{long_prefix}/"), collection, n, None),
                11 | 12 => WriteOp::Delete {
                    expected_change_vector: match rng.below(3) {
                        0 => current_cv(&id),
                        1 => stale.get(&id).cloned(),
                        _ => None,
                    },
                    id,
                },
                13 => WriteOp::DeletePrefixed {
                    prefix: format!("{prefix}/1"),
                },
                14 | 15 => WriteOp::AttachmentPut {
                    document_id: id,
                    name: rng.pick(&["photo.png", "Notes.txt", ""]).to_owned(),
                    content_type: "application/octet-stream".to_owned(),
                    content: contents[rng.below(3) as usize].to_vec(),
                    expected_change_vector: None,
                },
                16 => WriteOp::AttachmentDelete {
                    document_id: id,
                    name: rng.pick(&["photo.png", "notes.TXT"]).to_owned(),
                    expected_change_vector: None,
                },
                17 => WriteOp::HiloNext {
                    tag: collection.to_owned(),
                    last_size: 32 << rng.below(4),
                    // Long enough ago for any clock: the range's size does not depend on now.
                    last_range_at: [None, Some(Timestamp(0))][rng.below(2) as usize],
                    separator: "/".to_owned(),
                },
                18 => WriteOp::HiloReturn {
                    tag: collection.to_owned(),
                    end: 32 * (1 + rng.below(4)),
                    last: 10,
                },
                19 => WriteOp::PutRecord {
                    key: format!("etl/task-{}", n % 3),
                    value: n.is_multiple_of(2).then(|| n.to_le_bytes().to_vec()),
                },
                20 => WriteOp::NextSequence {
                    key: format!("sequence/{}", n % 2),
                },
                _ => WriteOp::PurgeTombstones {
                    limits: vec![("users".to_owned(), rng.below(200))],
                    others: rng.below(200),
                    max: 1 + rng.below(5),
                },
            };
            request.push(op);
        }
        group.push(request);
    }
    group
}

fn storage_with(id: &str) -> (tempfile::TempDir, Storage, Arc<Database>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let db = storage.create_database_with_id("Shop", id).unwrap();
    (dir, storage, db)
}

fn time_of(group_idx: usize) -> Timestamp {
    Timestamp(FIRST_TICKS + group_idx as i64 * 10_000_000)
}

/// Outcomes in a form that compares: errors by their serializable form (every one here is a
/// request's own).
fn comparable(outcomes: &[Outcome]) -> Vec<Result<Vec<WriteResult>, RequestError>> {
    outcomes
        .iter()
        .map(|outcome| match outcome {
            Ok(results) => Ok(results.clone()),
            Err(error) => Err(error.to_request_error().unwrap()),
        })
        .collect()
}

/// The results with the times of the writer left out.
fn without_times(
    outcomes: Vec<Result<Vec<WriteResult>, RequestError>>,
) -> Vec<Result<Vec<WriteResult>, RequestError>> {
    let clear = |mut result: WriteResult| {
        match &mut result {
            WriteResult::Put { last_modified, .. } => *last_modified = Timestamp(0),
            WriteResult::HiloNext { last_range_at, .. } => *last_range_at = Timestamp(0),
            _ => {}
        }
        result
    };
    outcomes
        .into_iter()
        .map(|outcome| outcome.map(|results| results.into_iter().map(clear).collect()))
        .collect()
}

/// Every entry of every table, as text.
fn tables_of(db: &Database) -> Vec<String> {
    fn dump<K: redb::Key + 'static, V: redb::Value + 'static>(
        txn: &ReadTransaction,
        definition: TableDefinition<K, V>,
        out: &mut Vec<String>,
    ) where
        for<'a> K::SelfType<'a>: Debug,
        for<'a> V::SelfType<'a>: Debug,
    {
        let table = txn.open_table(definition).unwrap();
        for entry in table.iter().unwrap() {
            let (key, value) = entry.unwrap();
            let name = redb::TableHandle::name(&definition);
            out.push(format!("{name}: {:?} => {:?}", key.value(), value.value()));
        }
    }
    let txn = db.redb().begin_read().unwrap();
    let mut out = Vec::new();
    dump(&txn, META, &mut out);
    dump(&txn, DOCS, &mut out);
    dump(&txn, DOCS_BY_ETAG, &mut out);
    dump(&txn, DOCS_BY_COLLECTION, &mut out);
    dump(&txn, TOMBSTONES, &mut out);
    dump(&txn, TOMBSTONES_BY_COLLECTION, &mut out);
    dump(&txn, COLLECTIONS, &mut out);
    dump(&txn, ATTACHMENTS, &mut out);
    dump(&txn, BLOBS, &mut out);
    dump(&txn, BLOB_REFS, &mut out);
    dump(&txn, IDENTITIES, &mut out);
    dump(&txn, RECORDS, &mut out);
    out
}

/// What the public API shows of a database, with or without the times.
fn contents_of(db: &Database, with_times: bool) -> String {
    let snapshot = db.snapshot().unwrap();
    let mut out = format!("last etag {}\n", snapshot.last_etag().unwrap());
    for document in snapshot.documents_after(None, 0).unwrap() {
        let mut document = document.unwrap();
        if !with_times {
            document.last_modified = Timestamp(0);
        }
        let attachments = snapshot.attachments_of(&document.id).unwrap();
        let contents: Vec<_> = attachments
            .iter()
            .map(|it| snapshot.attachment(&document.id, &it.name).unwrap())
            .collect();
        out.push_str(&format!("{document:?} {attachments:?} {contents:?}\n"));
    }
    for tombstone in snapshot.tombstones_after(None, 0).unwrap() {
        let mut tombstone = tombstone.unwrap();
        if !with_times {
            tombstone.deleted_at = Timestamp(0);
        }
        out.push_str(&format!("{tombstone:?}\n"));
    }
    out.push_str(&format!("{:?}\n", snapshot.collections().unwrap()));
    out.push_str(&format!(
        "{:?}\n",
        snapshot.records_with_prefix("").unwrap()
    ));
    out
}

#[test]
fn applying_the_same_groups_gives_the_same_results_and_contents() {
    let db_id = new_database_id();
    let (_dir_a, _storage_a, db_a) = storage_with(&db_id);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut groups: Vec<Vec<Vec<WriteOp>>> = Vec::new();
    let mut outcomes_a: Vec<Outcome> = Vec::new();
    // The change vector each put gave, and the one before it, for conditional writes that must
    // fail.
    let mut latest: HashMap<String, String> = HashMap::new();
    let mut stale: HashMap<String, String> = HashMap::new();
    for group_idx in 0..150 {
        let group = next_group(&mut rng, &db_a, &stale);
        // Half the groups are committed without an fsync: durability changes nothing else.
        let durability = match group_idx % 2 {
            0 => ApplyDurability::Deferred,
            _ => ApplyDurability::Durable,
        };
        let outcomes = db_a.apply_group(group.clone(), time_of(group_idx), durability);
        assert_eq!(outcomes.len(), group.len());
        for results in outcomes.iter().flatten() {
            for result in results {
                if let WriteResult::Put {
                    id, change_vector, ..
                } = result
                {
                    let key = crate::ids::key_of(id);
                    if let Some(previous) = latest.insert(key.clone(), change_vector.clone()) {
                        stale.insert(key, previous);
                    }
                }
            }
        }
        outcomes_a.extend(outcomes);
        groups.push(group);
    }

    // The sequence covers what it should.
    let n_failed = outcomes_a.iter().filter(|it| it.is_err()).count();
    let n_ok = outcomes_a.len() - n_failed;
    assert!(
        n_failed > 20 && n_ok > 200,
        "{n_failed} failed, {n_ok} applied"
    );
    let errors = |kind: fn(&WriteError) -> bool| {
        outcomes_a
            .iter()
            .filter(|it| it.as_ref().err().is_some_and(kind))
            .count()
    };
    assert!(errors(|it| matches!(it, WriteError::Concurrency { .. })) > 0);
    assert!(errors(|it| matches!(it, WriteError::InvalidId { .. })) > 0);
    assert!(errors(|it| matches!(it, WriteError::InvalidDocument { .. })) > 0);
    assert!(errors(|it| matches!(it, WriteError::DocumentMissing { .. })) > 0);
    assert!(errors(|it| matches!(it, WriteError::InvalidAttachmentName { .. })) > 0);
    let results: Vec<&WriteResult> = outcomes_a.iter().flatten().flatten().collect();
    let has = |kind: fn(&WriteResult) -> bool| results.iter().any(|it| kind(it));
    assert!(has(
        |it| matches!(it, WriteResult::Put { id, .. } if id.ends_with("-A"))
    ));
    assert!(has(|it| matches!(it, WriteResult::AttachmentPut { .. })));
    assert!(has(|it| matches!(
        it,
        WriteResult::AttachmentDelete {
            document_change_vector: Some(_),
            ..
        }
    )));
    assert!(has(|it| matches!(
        it,
        WriteResult::Delete { deleted: true, .. }
    )));
    assert!(has(|it| matches!(
        it,
        WriteResult::DeletePrefixed { deleted: 1.., .. }
    )));
    assert!(has(|it| matches!(
        it,
        WriteResult::PurgeTombstones { purged: 1.., .. }
    )));
    assert!(has(|it| matches!(it, WriteResult::HiloNext { .. })));

    // A second member gets the groups as a log would carry them: serialized.
    let (_dir_b, _storage_b, db_b) = storage_with(&db_id);
    let notices = Arc::new(AtomicU64::new(0));
    let subscription = db_b.subscribe({
        let notices = notices.clone();
        move |notice| notices.store(notice.last_etag, Ordering::SeqCst)
    });
    let encoded = serde_json::to_string(&groups).unwrap();
    let decoded: Vec<Vec<Vec<WriteOp>>> = serde_json::from_str(&encoded).unwrap();
    let mut outcomes_b = Vec::new();
    for (group_idx, group) in decoded.into_iter().enumerate() {
        outcomes_b.extend(db_b.apply_group(group, time_of(group_idx), ApplyDurability::Durable));
    }
    drop(subscription);
    assert_eq!(comparable(&outcomes_a), comparable(&outcomes_b));
    assert_eq!(contents_of(&db_a, true), contents_of(&db_b, true));
    assert_eq!(tables_of(&db_a), tables_of(&db_b));
    assert_eq!(db_a.last_etag(), db_b.last_etag());
    assert_eq!(notices.load(Ordering::SeqCst), db_b.last_etag());

    // The ordinary write path, one request at a time at the time of the clock, answers the same.
    let (_dir_c, _storage_c, db_c) = storage_with(&db_id);
    let outcomes_c: Vec<Outcome> = groups
        .into_iter()
        .flatten()
        .map(|request| db_c.write(request))
        .collect();
    assert_eq!(
        without_times(comparable(&outcomes_a)),
        without_times(comparable(&outcomes_c))
    );
    assert_eq!(contents_of(&db_a, false), contents_of(&db_c, false));

    // Results and request errors survive serialization.
    let outcomes = comparable(&outcomes_a);
    let encoded = serde_json::to_string(&outcomes).unwrap();
    let decoded: Vec<Result<Vec<WriteResult>, RequestError>> =
        serde_json::from_str(&encoded).unwrap();
    assert_eq!(decoded, outcomes);
    let back: Vec<Outcome> = decoded
        .into_iter()
        .map(|it| it.map_err(WriteError::from))
        .collect();
    assert_eq!(comparable(&back), outcomes);
}

#[test]
fn a_group_is_one_transaction_in_order_with_other_writes() {
    let (_dir, _storage, db) = storage_with(&new_database_id());
    db.write(vec![put("users/1", "Users", 1, None)]).unwrap();
    let now = Timestamp(FIRST_TICKS);
    let outcomes = db.apply_group(
        vec![
            vec![put("users/2", "Users", 2, None)],
            // Fails as a whole: its first put is not applied.
            vec![
                put("users/3", "Users", 3, None),
                put("users/1", "Users", 1, Some("A:7-nope".to_owned())),
            ],
            vec![
                put("people|", "Users", 4, None),
                put("users/1", "Users", 5, None),
            ],
        ],
        now,
        ApplyDurability::Durable,
    );
    assert_eq!(outcomes.len(), 3);
    let Ok(first) = &outcomes[0] else {
        panic!("{:?}", outcomes[0])
    };
    assert!(
        matches!(&first[0], WriteResult::Put { etag: 2, last_modified, .. } if *last_modified == now)
    );
    assert!(matches!(outcomes[1], Err(WriteError::Concurrency { .. })));
    let Ok(third) = &outcomes[2] else {
        panic!("{:?}", outcomes[2])
    };
    assert!(matches!(&third[0], WriteResult::Put { id, etag: 3, .. } if id == "people/1"));
    assert!(matches!(&third[1], WriteResult::Put { id, etag: 4, .. } if id == "users/1"));
    let snapshot = db.snapshot().unwrap();
    assert!(snapshot.get("users/3").unwrap().is_none());
    assert_eq!(snapshot.get("users/1").unwrap().unwrap().last_modified, now);

    db.close();
    let closed = db.apply_group(vec![vec![], vec![]], now, ApplyDurability::Durable);
    assert!(matches!(
        closed[..],
        [
            Err(WriteError::Closed { .. }),
            Err(WriteError::Closed { .. })
        ]
    ));
}

#[test]
fn a_given_database_id_is_checked_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    for bad in [
        "",
        "short",
        "ABCDEFGHIJKLMNOPQRSTU-",
        "ABCDEFGHIJKLMNOPQRSTUVW",
        "ABCDEFGHIJKLMNOPQRSTUé",
    ] {
        assert!(
            matches!(
                storage.create_database_with_id("Shop", bad),
                Err(crate::OpenError::InvalidDatabaseId { .. })
            ),
            "{bad}"
        );
    }
    let generated = new_database_id();
    crate::validate_database_id(&generated).unwrap();
    let db = storage
        .create_database_with_id("Shop", "ABCDEFGHIJKLMNOPQRSTUV")
        .unwrap();
    let results = db.write(vec![put("users/1", "Users", 1, None)]).unwrap();
    assert!(
        matches!(&results[0], WriteResult::Put { change_vector, .. } if change_vector == "A:1-ABCDEFGHIJKLMNOPQRSTUV")
    );
    drop(db);
    drop(storage);
    let storage = Storage::open(dir.path()).unwrap();
    assert_eq!(
        storage.database("shop").unwrap().id(),
        "ABCDEFGHIJKLMNOPQRSTUV"
    );
}
