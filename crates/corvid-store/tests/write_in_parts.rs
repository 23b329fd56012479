//! Write requests handed to the writer in parts (`Database::write_in_parts_async`): one
//! transaction per request however many parts, nothing written unless the request ends, and
//! merging with other requests as for whole ones.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};
use std::time::Duration;

use corvid_store::{Database, PutDocument, RequestPart, Storage, WriteError, WriteOp, WriteResult};
use serde_json::{Map, Value, json};

type Outcome = Result<Vec<WriteResult>, WriteError>;

fn put(id: &str, name: &str) -> WriteOp {
    WriteOp::Put(PutDocument::new(id, user(name), None).expect("valid document"))
}

fn put_expecting(id: &str, change_vector: &str) -> WriteOp {
    let expected = Some(change_vector.to_owned());
    WriteOp::Put(PutDocument::new(id, user("conditional"), expected).expect("valid document"))
}

fn user(name: &str) -> Map<String, Value> {
    match json!({"Name": name, "@metadata": {"@collection": "Users"}}) {
        Value::Object(it) => it,
        _ => unreachable!("a JSON object literal"),
    }
}

fn setup() -> (tempfile::TempDir, Storage, Arc<Database>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(dir.path()).expect("storage");
    let database = storage.create_database("Parts").expect("database");
    (dir, storage, database)
}

/// A database holding `users/0` at etag 1, for writes that expect another change vector.
fn setup_holding_users_0() -> (tempfile::TempDir, Storage, Arc<Database>) {
    let (dir, storage, database) = setup();
    database
        .write(vec![put("users/0", "zero")])
        .expect("written");
    (dir, storage, database)
}

fn exists(database: &Database, id: &str) -> bool {
    let snapshot = database.snapshot().expect("snapshot");
    snapshot.get(id).expect("read").is_some()
}

/// Queues a request in parts; returns its part sender (holding `bound` parts) and where its
/// outcome arrives.
fn in_parts(
    database: &Database,
    bound: usize,
) -> (std::sync::mpsc::SyncSender<RequestPart>, Receiver<Outcome>) {
    let (part_sender, part_receiver) = sync_channel(bound);
    let (outcome_sender, outcome_receiver) = channel();
    database.write_in_parts_async(
        part_receiver,
        Box::new(move |result| {
            // One list of results per part received; the tests look at them in order.
            let _ = outcome_sender.send(result.map(|parts| parts.concat()));
        }),
    );
    (part_sender, outcome_receiver)
}

fn whole(database: &Database, ops: Vec<WriteOp>) -> Receiver<Outcome> {
    let (outcome_sender, outcome_receiver) = channel();
    database.write_async(ops, reply_to(outcome_sender));
    outcome_receiver
}

fn reply_to(sender: Sender<Outcome>) -> corvid_store::WriteCallback {
    Box::new(move |result| {
        let _ = sender.send(result);
    })
}

fn wait(outcome: &Receiver<Outcome>) -> Outcome {
    outcome
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer answers")
}

fn put_ids(results: &[WriteResult]) -> Vec<String> {
    results
        .iter()
        .map(|it| match it {
            WriteResult::Put { id, .. } => id.clone(),
            other => panic!("not a put: {other:?}"),
        })
        .collect()
}

#[test]
fn the_parts_of_a_request_commit_together_once_it_ends() {
    let (_dir, _storage, database) = setup();
    let (parts, outcome) = in_parts(&database, 2);
    let last_etag_before = database.last_etag();
    parts
        .send(RequestPart::Ops(vec![
            put("users/1", "a"),
            put("users/2", "b"),
        ]))
        .expect("writer listens");
    parts
        .send(RequestPart::Ops(vec![put("users/3", "c")]))
        .expect("writer listens");
    // Applied or not, nothing is visible or answered before the end.
    assert!(
        outcome.recv_timeout(Duration::from_millis(200)).is_err(),
        "answered before the request ended"
    );
    assert!(!exists(&database, "users/1"));
    assert_eq!(database.last_etag(), last_etag_before);
    parts
        .send(RequestPart::Ops(vec![put("users/4", "d")]))
        .expect("writer listens");
    parts.send(RequestPart::End).expect("writer listens");
    let results = wait(&outcome).expect("committed");
    assert_eq!(
        put_ids(&results),
        ["users/1", "users/2", "users/3", "users/4"]
    );
    for id in ["users/1", "users/2", "users/3", "users/4"] {
        assert!(exists(&database, id), "{id} missing");
    }
    assert_eq!(database.last_etag(), last_etag_before + 4);
}

#[test]
fn a_request_whose_sender_hangs_up_before_the_end_writes_nothing() {
    let (_dir, _storage, database) = setup();
    let (parts, outcome) = in_parts(&database, 2);
    parts
        .send(RequestPart::Ops(vec![put("users/1", "a")]))
        .expect("writer listens");
    drop(parts);
    assert!(matches!(wait(&outcome), Err(WriteError::Abandoned)));
    assert!(!exists(&database, "users/1"));
    assert_eq!(database.last_etag(), 0);
    // The writer goes on with the next request.
    database.write(vec![put("users/2", "b")]).expect("written");
    assert!(exists(&database, "users/2"));
}

#[test]
fn a_failing_part_rolls_back_the_parts_before_it() {
    let (_dir, _storage, database) = setup_holding_users_0();
    let (parts, outcome) = in_parts(&database, 2);
    parts
        .send(RequestPart::Ops(vec![
            put("users/1", "a"),
            put("users/2", "b"),
        ]))
        .expect("writer listens");
    parts
        .send(RequestPart::Ops(vec![put_expecting(
            "users/0",
            "A:999-wrong",
        )]))
        .expect("writer listens");
    assert!(matches!(
        wait(&outcome),
        Err(WriteError::Concurrency { .. })
    ));
    // The writer stopped listening: the sender learns it from its next send.
    assert!(
        parts
            .send(RequestPart::Ops(vec![put("users/3", "c")]))
            .is_err()
    );
    for id in ["users/1", "users/2", "users/3"] {
        assert!(!exists(&database, id), "{id} was written");
    }
    assert_eq!(database.last_etag(), 1);
}

#[test]
fn a_request_in_parts_merges_with_whole_requests_and_survives_their_failures() {
    let (_dir, _storage, database) = setup_holding_users_0();
    // The first request keeps the writer waiting, so everything after it queues up and is
    // merged into the next group: a request in parts, good requests and a failing one.
    // A rendezvous channel: the send returns once the writer took the part, so the first
    // request's group is formed before the others are queued.
    let (first_parts, first_outcome) = in_parts(&database, 0);
    first_parts
        .send(RequestPart::Ops(vec![put("first/1", "f")]))
        .expect("writer listens");
    let (parts, outcome) = in_parts(&database, 2);
    let good_before = whole(&database, vec![put("good/1", "g")]);
    let failing = whole(
        &database,
        vec![put("bad/1", "x"), put_expecting("users/0", "A:999-wrong")],
    );
    let good_after = whole(&database, vec![put("good/2", "g")]);
    first_parts.send(RequestPart::End).expect("writer listens");
    wait(&first_outcome).expect("first committed");
    for idx in 0..10 {
        parts
            .send(RequestPart::Ops(vec![
                put(&format!("parts/{idx}a"), "p"),
                put(&format!("parts/{idx}b"), "p"),
            ]))
            .expect("writer listens");
    }
    parts.send(RequestPart::End).expect("writer listens");

    let results = wait(&outcome).expect("the request in parts committed");
    assert_eq!(results.len(), 20);
    assert!(matches!(
        wait(&failing),
        Err(WriteError::Concurrency { .. })
    ));
    wait(&good_before).expect("committed");
    wait(&good_after).expect("committed");
    for idx in 0..10 {
        assert!(exists(&database, &format!("parts/{idx}a")));
        assert!(exists(&database, &format!("parts/{idx}b")));
    }
    for id in ["first/1", "good/1", "good/2"] {
        assert!(exists(&database, id), "{id} missing");
    }
    assert!(!exists(&database, "bad/1"));
    // users/0, first/1, 20 parts, good/1, good/2: each took one etag, none more.
    assert_eq!(database.last_etag(), 24);
}
