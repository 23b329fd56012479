//! Corvid's embedded document storage, on [redb](https://docs.rs/redb).
//!
//! A [`Storage`] is a data directory holding any number of databases, one redb file each.
//! A [`Database`] stores JSON documents under case-insensitive, case-preserving ids, grouped
//! into collections by `@metadata.@collection`. Every write takes the next value of the
//! database's **etag** counter, so the etag order of documents and tombstones is a durable
//! change feed: ETL reads it with [`Snapshot::documents_after`] and
//! [`Snapshot::tombstones_after`] and is woken by [`Database::subscribe`].
//!
//! Invariants:
//! - An update moves a document to a new etag; only the latest version is kept.
//! - A delete removes the document and its attachments and leaves a tombstone at a new etag.
//! - Writes queued at the same time are merged into one durable transaction; each request is
//!   answered only after that transaction is on disk, and a request that fails applies none of
//!   its operations.
//! - Readers see only committed, durable states (unless a caller of
//!   [`Database::apply_group`] asked for [`ApplyDurability::Deferred`]).
//! - Applying is deterministic: the writer reads the clock once per transaction, and
//!   [`Database::apply_group`] takes that time from its caller, so two databases created with the
//!   same id ([`Storage::create_database_with_id`]) that apply the same groups with the same times
//!   hold the same contents.
//! - A replicated database ([`Storage::create_replicated_database`]) is written only through its
//!   [`Replicator`] (its database group's log, which applies committed entries with
//!   [`Database::apply_marked_async`]); without one its writes fail with
//!   [`WriteError::Unavailable`].
//! - This crate does no network I/O, runs no scripts and does not depend on tokio.
//!
//! ```
//! use corvid_store::{PutDocument, Storage, WriteOp};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let storage = Storage::open(dir.path()).unwrap();
//! let db = storage.create_database("shop").unwrap();
//! let doc = serde_json::json!({"Name": "Ann", "@metadata": {"@collection": "Users"}});
//! let put = PutDocument::new("users/1", doc.as_object().unwrap().clone(), None).unwrap();
//! db.write(vec![WriteOp::Put(put)]).unwrap();
//!
//! let snapshot = db.snapshot().unwrap();
//! let loaded = snapshot.get("USERS/1").unwrap().unwrap();
//! assert_eq!(loaded.id, "users/1");
//! assert_eq!(loaded.collection, "Users");
//! let changed: Vec<_> = snapshot.documents_after(Some("users"), 0).unwrap().collect();
//! assert_eq!(changed.len(), 1);
//! ```

mod database;
mod error;
mod ids;
mod record;
mod snapshot;
mod storage;
mod system;
mod tables;
mod time;
mod write;

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod replicated_tests;

pub use database::{
    ApplyDurability, CommitNotice, Database, GroupCallback, PartsCallback, Replicator, RequestPart,
    Subscription, WriteCallback,
};
pub use error::{OpenError, ReadError, RequestError, StorageError, WriteError};
pub use ids::{
    EMPTY_COLLECTION, HILO_COLLECTION, IdRequest, MAX_ID_BYTES, is_invisible_format_char, key_of,
    validate_id,
};
pub use record::{
    AttachmentInfo, Document, DocumentFlags, Etag, Tombstone, TombstoneKind, push_json_string,
};
pub use snapshot::{CollectionStats, DocumentIter, Snapshot, TombstoneIter};
pub use storage::{
    MAX_DATABASE_NAME, Storage, StorageOptions, new_database_id, validate_database_id,
    validate_database_name,
};
pub use system::SystemStore;
pub use time::{Timestamp, UtcTime};
pub use write::{PutDocument, WriteOp, WriteResult};
