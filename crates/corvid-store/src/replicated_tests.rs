//! A replicated database's writes go through its [`Replicator`] (never straight to the writer),
//! fail with `Unavailable` while none is attached (also after reopening the file), and a
//! group applied with marks records them in the same transaction.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::{
    ApplyDurability, PutDocument, Replicator, RequestPart, Storage, Timestamp, WriteCallback,
    WriteError, WriteOp, new_database_id,
};

fn put(id: &str) -> WriteOp {
    let serde_json::Value::Object(document) =
        json!({"N": 1, "@metadata": {"@collection": "Items"}})
    else {
        unreachable!("a JSON object literal")
    };
    WriteOp::Put(PutDocument::new(id, document, None).unwrap())
}

/// A replicator that applies each request itself through `apply_marked_async`, as a group's
/// state machine does, and remembers how many operations each request had.
struct Applying {
    database: Mutex<Option<Arc<crate::Database>>>,
    seen: Mutex<Vec<usize>>,
}

impl Replicator for Applying {
    fn replicate(&self, ops: Vec<WriteOp>, reply: WriteCallback) {
        self.seen.lock().unwrap().push(ops.len());
        let database = self.database.lock().unwrap().clone().unwrap();
        database.apply_marked_async(
            vec![ops],
            Timestamp(1),
            ApplyDurability::Deferred,
            vec![("applied".to_owned(), b"7".to_vec())],
            Box::new(move |mut outcomes| reply(outcomes.pop().unwrap())),
        );
    }

    fn confirm(&self, reply: Box<dyn FnOnce(bool) + Send>) {
        reply(self.database.lock().unwrap().is_some());
    }
}

fn confirmed(database: &crate::Database) -> bool {
    let (sender, receiver) = std::sync::mpsc::channel();
    database.confirm_async(Box::new(move |it| sender.send(it).unwrap()));
    receiver.recv().unwrap()
}

#[test]
fn writes_of_a_replicated_database_go_only_through_its_replicator() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let id = new_database_id();
    let database = storage.create_replicated_database("shop", &id).unwrap();
    assert!(database.is_replicated());
    assert!(!storage.create_database("plain").unwrap().is_replicated());

    assert!(!confirmed(&database), "no replicator: not confirmed");
    assert!(confirmed(&storage.database("plain").unwrap()));
    let refused = database.write(vec![put("items/1")]).unwrap_err();
    assert!(matches!(refused, WriteError::Unavailable(_)), "{refused}");
    assert!(!refused.is_request_error());
    assert_eq!(database.last_etag(), 0);

    let replicator = Arc::new(Applying {
        database: Mutex::new(Some(database.clone())),
        seen: Mutex::new(Vec::new()),
    });
    database.set_replicator(Some(replicator.clone()));
    assert!(confirmed(&database));
    let results = database
        .write(vec![put("items/1"), put("items/2")])
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(
        database.replication_mark("applied").unwrap(),
        Some(b"7".to_vec())
    );

    // A request in parts is collected whole, replicated as one, and answered per part.
    let (sender, parts) = std::sync::mpsc::channel();
    let (answer, answered) = std::sync::mpsc::channel();
    database.write_in_parts_async(
        parts,
        Box::new(move |outcome| answer.send(outcome).unwrap()),
    );
    sender.send(RequestPart::Ops(vec![put("items/3")])).unwrap();
    sender
        .send(RequestPart::Ops(vec![put("items/4"), put("items/5")]))
        .unwrap();
    sender.send(RequestPart::End).unwrap();
    let per_part = answered.recv().unwrap().unwrap();
    assert_eq!(per_part.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(*replicator.seen.lock().unwrap(), [2, 3]);
    assert_eq!(database.last_etag(), 5);

    // Detached: refused again, and still after reopening the file.
    database.set_replicator(None);
    replicator.database.lock().unwrap().take();
    assert!(matches!(
        database.write(vec![put("items/6")]),
        Err(WriteError::Unavailable(_))
    ));
    drop(database);
    storage.close();
    drop(storage);
    let storage = Storage::open(dir.path()).unwrap();
    let reopened = storage.database("shop").unwrap();
    assert!(reopened.is_replicated());
    assert_eq!(reopened.id(), id);
    assert!(matches!(
        reopened.write(vec![put("items/6")]),
        Err(WriteError::Unavailable(_))
    ));
    // Applied with marks only (a log entry that writes nothing): the marks are kept.
    let outcomes = reopened.apply_group(Vec::new(), Timestamp(2), ApplyDurability::Durable);
    assert!(outcomes.is_empty());
    let (sender, receiver) = std::sync::mpsc::channel();
    reopened.apply_marked_async(
        Vec::new(),
        Timestamp(2),
        ApplyDurability::Durable,
        vec![("applied".to_owned(), b"8".to_vec())],
        Box::new(move |outcomes| sender.send(outcomes).unwrap()),
    );
    assert!(receiver.recv().unwrap().is_empty());
    assert_eq!(
        reopened.replication_mark("applied").unwrap(),
        Some(b"8".to_vec())
    );
    assert_eq!(reopened.replication_mark("other").unwrap(), None);
    assert_eq!(reopened.last_etag(), 5);
}
