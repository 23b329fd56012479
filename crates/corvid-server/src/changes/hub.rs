//! One broadcaster per watched database: a commit subscription that wakes a reader thread,
//! which reads the new changes from a snapshot and publishes them, in etag order, to every
//! connection of that database through a bounded broadcast channel.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use corvid_store::{Database, Document, Etag, ReadError, Subscription, Tombstone, TombstoneKind};
use tokio::sync::broadcast;

/// Limits of the Changes API.
#[derive(Debug, Clone)]
pub struct ChangesOptions {
    /// How many change batches a connection may fall behind before it is disconnected as a
    /// slow consumer.
    pub buffered_batches: usize,
    /// How long sending one frame to a client may take before the connection is dropped.
    pub send_timeout: Duration,
    /// The largest message a client may send, in bytes (commands are small).
    pub max_message_bytes: usize,
}

impl Default for ChangesOptions {
    fn default() -> Self {
        ChangesOptions {
            buffered_batches: 1024,
            send_timeout: Duration::from_secs(30),
            max_message_bytes: 64 * 1024,
        }
    }
}

/// How many changes the reader publishes in one batch at most, so a large commit (a bulk
/// insert) is read and sent in bounded pieces.
const MAX_CHANGES_PER_BATCH: usize = 512;

/// A document put or delete, rendered once for every connection.
#[derive(Debug)]
pub(crate) struct DocumentChangeEvent {
    /// The document id, lowercased (watches compare ids case-insensitively, as RavenDB does).
    pub id_key: String,
    /// The collection name, lowercased.
    pub collection_key: String,
    /// `{"Type":"DocumentChange","Value":{…}}`, RavenDB's message.
    pub message_json: String,
}

pub(crate) type ChangeBatch = Arc<[DocumentChangeEvent]>;

/// The broadcasters of the databases that have open changes connections.
pub(crate) struct ChangesHub {
    options: ChangesOptions,
    broadcasters: Mutex<HashMap<String, Weak<Broadcaster>>>,
}

impl ChangesHub {
    pub fn new(options: ChangesOptions) -> ChangesHub {
        ChangesHub {
            options,
            broadcasters: Mutex::default(),
        }
    }

    pub fn options(&self) -> &ChangesOptions {
        &self.options
    }

    /// Returns the broadcaster of `database`, starting one if none runs. The caller keeps it
    /// for as long as its connection is open; the last one dropped stops it.
    pub fn attach(&self, database: &Arc<Database>) -> Result<Arc<Broadcaster>, std::io::Error> {
        let mut broadcasters = lock(&self.broadcasters);
        broadcasters.retain(|_, it| it.strong_count() > 0);
        if let Some(existing) = broadcasters.get(database.name()).and_then(Weak::upgrade) {
            // A database deleted and created again under the same name is another database.
            if existing.is_for(database) {
                return Ok(existing);
            }
        }
        let broadcaster = Arc::new(Broadcaster::start(database, self.options.buffered_batches)?);
        broadcasters.insert(database.name().to_owned(), Arc::downgrade(&broadcaster));
        Ok(broadcaster)
    }

    /// How many databases have a broadcaster running (for tests of the idle cost).
    #[cfg(test)]
    pub fn n_broadcasters(&self) -> usize {
        lock(&self.broadcasters)
            .values()
            .filter(|it| it.strong_count() > 0)
            .count()
    }
}

/// Publishes one database's changes while connections watch it.
pub(crate) struct Broadcaster {
    database: Weak<Database>,
    sender: broadcast::Sender<ChangeBatch>,
    /// Dropping the subscription drops the reader's wake-up sender, which ends the reader
    /// thread at its next wait; it is not joined because the last connection drops the
    /// broadcaster on the async runtime, which must not block.
    _subscription: Subscription,
}

impl Broadcaster {
    fn start(database: &Arc<Database>, capacity: usize) -> Result<Broadcaster, std::io::Error> {
        let (sender, _) = broadcast::channel(capacity.max(1));
        // Capacity 1: a wake-up already pending covers every commit after it, so commits made
        // while the reader works cost the writer thread one failed `try_send`.
        let (wake_sender, wake_receiver) = sync_channel::<()>(1);
        let subscription = database.subscribe(move |_notice| {
            let _ = wake_sender.try_send(());
        });
        // Read after subscribing: a commit after this etag wakes the reader.
        let last_seen = database.last_etag();
        let reader = Reader {
            database: Arc::downgrade(database),
            sender: sender.clone(),
            last_seen,
        };
        std::thread::Builder::new()
            .name(format!("corvid-changes-{}", database.name()))
            .spawn(move || reader.run(&wake_receiver))?;
        Ok(Broadcaster {
            database: Arc::downgrade(database),
            sender,
            _subscription: subscription,
        })
    }

    fn is_for(&self, database: &Arc<Database>) -> bool {
        std::ptr::eq(self.database.as_ptr(), Arc::as_ptr(database))
    }

    /// A receiver of the batches published from now on.
    pub fn receiver(&self) -> broadcast::Receiver<ChangeBatch> {
        self.sender.subscribe()
    }
}

struct Reader {
    database: Weak<Database>,
    sender: broadcast::Sender<ChangeBatch>,
    last_seen: Etag,
}

impl Reader {
    fn run(mut self, wake_receiver: &Receiver<()>) {
        while wake_receiver.recv().is_ok() {
            let Some(database) = self.database.upgrade() else {
                return;
            };
            if let Err(error) = self.publish_new_changes(&database) {
                tracing::warn!(database = database.name(), %error, "failed to read changes");
            }
        }
    }

    /// Publishes the documents and tombstones after `last_seen`, merged in etag order.
    fn publish_new_changes(&mut self, database: &Database) -> Result<(), ReadError> {
        let snapshot = database.snapshot()?;
        let mut documents = snapshot.documents_after(None, self.last_seen)?;
        let mut tombstones = snapshot.tombstones_after(None, self.last_seen)?;
        let mut next_document = documents.next().transpose()?;
        let mut next_tombstone = tombstones.next().transpose()?;
        let mut batch = Vec::with_capacity(MAX_CHANGES_PER_BATCH);
        loop {
            let (etag, event) = match (next_document.take(), next_tombstone.take()) {
                (None, None) => break,
                (Some(document), Some(tombstone)) if tombstone.etag < document.etag => {
                    next_document = Some(document);
                    next_tombstone = tombstones.next().transpose()?;
                    (tombstone.etag, delete_event(&tombstone))
                }
                (None, Some(tombstone)) => {
                    next_tombstone = tombstones.next().transpose()?;
                    (tombstone.etag, delete_event(&tombstone))
                }
                (Some(document), tombstone) => {
                    next_tombstone = tombstone;
                    next_document = documents.next().transpose()?;
                    (document.etag, Some(put_event(&document)))
                }
            };
            self.last_seen = etag;
            batch.extend(event);
            if batch.len() >= MAX_CHANGES_PER_BATCH {
                self.publish(std::mem::take(&mut batch));
            }
        }
        if !batch.is_empty() {
            self.publish(batch);
        }
        Ok(())
    }

    fn publish(&self, batch: Vec<DocumentChangeEvent>) {
        // An error means no connection listens right now; the changes are not for anyone.
        let _ = self.sender.send(batch.into());
    }
}

fn put_event(document: &Document) -> DocumentChangeEvent {
    change_event(
        "Put",
        &document.id,
        &document.collection,
        &document.change_vector,
    )
}

/// Returns the change of a document's delete; an attachment's delete also moves its document to
/// a new etag, which is the change watchers see.
fn delete_event(tombstone: &Tombstone) -> Option<DocumentChangeEvent> {
    if let TombstoneKind::Attachment { .. } = tombstone.kind {
        return None;
    }
    Some(change_event(
        "Delete",
        &tombstone.id,
        &tombstone.collection,
        &tombstone.change_vector,
    ))
}

fn change_event(
    change_type: &str,
    id: &str,
    collection: &str,
    change_vector: &str,
) -> DocumentChangeEvent {
    let message = serde_json::json!({
        "Type": "DocumentChange",
        "Value": {
            "Type": change_type,
            "Id": id,
            "CollectionName": collection,
            "ChangeVector": change_vector,
        }
    });
    DocumentChangeEvent {
        id_key: id.to_lowercase(),
        collection_key: collection.to_lowercase(),
        message_json: message.to_string(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use corvid_store::{PutDocument, Storage, WriteOp};
    use serde_json::Value;

    use super::*;

    fn put(id: &str, collection: &str) -> WriteOp {
        let document = serde_json::json!({"@metadata": {"@collection": collection}});
        let Some(object) = document.as_object() else {
            panic!("an object");
        };
        WriteOp::Put(PutDocument::new(id, object.clone(), None).expect("valid put"))
    }

    fn delete(id: &str) -> WriteOp {
        WriteOp::Delete {
            id: id.to_owned(),
            expected_change_vector: None,
        }
    }

    /// Receives until `count` changes arrived; returns their messages' `Value`s.
    fn receive(receiver: &mut broadcast::Receiver<ChangeBatch>, count: usize) -> Vec<Value> {
        let mut values = Vec::new();
        while values.len() < count {
            let batch = receiver.blocking_recv().expect("a batch");
            for change in batch.iter() {
                let message: Value = serde_json::from_str(&change.message_json).expect("json");
                values.push(message["Value"].clone());
            }
        }
        values
    }

    #[test]
    fn a_broadcaster_runs_only_while_attached_and_publishes_in_etag_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path()).expect("storage");
        let database = storage.create_database("db").expect("database");
        // Writes made while nobody watches are nobody's changes.
        database
            .write(vec![put("users/0", "Users")])
            .expect("write");
        let hub = ChangesHub::new(ChangesOptions::default());
        assert_eq!(hub.n_broadcasters(), 0);

        let first = hub.attach(&database).expect("attach");
        let second = hub.attach(&database).expect("attach");
        assert!(Arc::ptr_eq(&first, &second), "one broadcaster per database");
        assert_eq!(hub.n_broadcasters(), 1);
        let mut receiver = first.receiver();
        database
            .write(vec![put("Users/1", "Users"), put("orders/1", "Orders")])
            .expect("write");
        database.write(vec![delete("users/1")]).expect("write");
        database
            .write(vec![put("orders/1", "Orders")])
            .expect("write");
        let values = receive(&mut receiver, 4);
        let summary: Vec<(&str, &str, &str)> = values
            .iter()
            .map(|it| {
                (
                    it["Type"].as_str().expect("type"),
                    it["Id"].as_str().expect("id"),
                    it["CollectionName"].as_str().expect("collection"),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("Put", "Users/1", "Users"),
                ("Put", "orders/1", "Orders"),
                ("Delete", "Users/1", "Users"),
                ("Put", "orders/1", "Orders"),
            ]
        );
        let snapshot = database.snapshot().expect("snapshot");
        assert_eq!(values[3]["ChangeVector"], snapshot.change_vector(5));

        drop(first);
        drop(second);
        assert_eq!(hub.n_broadcasters(), 0, "the last connection stops it");
    }

    #[test]
    fn a_database_created_again_under_the_same_name_gets_its_own_broadcaster() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path()).expect("storage");
        let old = storage.create_database("db").expect("database");
        let hub = ChangesHub::new(ChangesOptions::default());
        let old_broadcaster = hub.attach(&old).expect("attach");
        let other_dir = tempfile::tempdir().expect("temp dir");
        let other_storage = Storage::open(other_dir.path()).expect("storage");
        let new = other_storage.create_database("db").expect("database");
        let new_broadcaster = hub.attach(&new).expect("attach");
        assert!(!Arc::ptr_eq(&old_broadcaster, &new_broadcaster));
        let mut receiver = new_broadcaster.receiver();
        new.write(vec![put("users/1", "Users")]).expect("write");
        assert_eq!(receive(&mut receiver, 1)[0]["Id"], "users/1");
    }
}
