//! Write operations and how one request of them is applied inside a write transaction.

use std::collections::BTreeSet;

use base64::Engine as _;
use blake2::{Blake2b, Digest, digest::consts::U32};
use redb::{ReadableTable, Table, WriteTransaction};
use serde_json::{Map, Value};

use crate::error::{StorageError, WriteError};
use crate::ids::{EMPTY_COLLECTION, HILO_COLLECTION, IdRequest, key_of, truncate_for_message};
use crate::record::{
    AttachmentRecord, DocumentFlags, DocumentRecord, Etag, Tombstone, TombstoneKind,
    decode_collection, encode_collection, encode_tombstone,
};
use crate::tables::{
    ATTACHMENTS, BLOB_REFS, BLOBS, COLLECTIONS, DOCS, DOCS_BY_COLLECTION, DOCS_BY_ETAG, IDENTITIES,
    RECORDS, TOMBSTONES, TOMBSTONES_BY_COLLECTION,
};
use crate::time::Timestamp;

/// Metadata keys the server owns: whatever a client sends for them is replaced.
const SERVER_METADATA: &[&str] = &[
    "@id",
    "@change-vector",
    "@last-modified",
    "@flags",
    "@attachments",
    "@counters",
    "@timeseries",
    "@etag",
];

/// A document put, validated and serialized before it reaches the writer. Its serde form is for
/// handing a validated put on (to a replicated log): deserializing does not validate again.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PutDocument {
    id: IdRequest,
    collection: String,
    metadata: String,
    body: String,
    expected_change_vector: Option<String>,
    /// Leave the stored document alone when its body and metadata are already these.
    skip_if_unchanged: bool,
}

impl PutDocument {
    /// Validates a document as sent by a client: the id, `@metadata` (an object when present) and
    /// `@collection` (a string when present). Server-owned metadata is dropped.
    pub fn new(
        id: &str,
        mut document: Map<String, Value>,
        expected_change_vector: Option<String>,
    ) -> Result<PutDocument, WriteError> {
        let id_request = IdRequest::parse(id)?;
        let invalid = |reason: String| WriteError::InvalidDocument {
            id: truncate_for_message(id),
            reason,
        };
        let metadata = match document.shift_remove("@metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(it)) => it,
            Some(_) => return Err(invalid("`@metadata` must be an object".to_owned())),
        };
        let (collection, metadata) = validate_metadata(metadata).map_err(invalid)?;
        let body = serde_json::to_string(&document).map_err(|error| invalid(error.to_string()))?;
        Ok(PutDocument {
            id: id_request,
            collection,
            metadata,
            body,
            expected_change_vector,
            skip_if_unchanged: false,
        })
    }
    /// Validates a document given as JSON text, touching only its top-level fields and
    /// `@metadata`: nested values are copied as they are, not parsed into a tree.
    pub fn from_json(
        id: &str,
        document: &str,
        expected_change_vector: Option<String>,
    ) -> Result<PutDocument, WriteError> {
        let id_request = IdRequest::parse(id)?;
        let invalid = |reason: String| WriteError::InvalidDocument {
            id: truncate_for_message(id),
            reason,
        };
        let fields: TopLevelFields<'_> =
            serde_json::from_str(document).map_err(|error| invalid(error.to_string()))?;
        let mut body = String::with_capacity(document.len());
        body.push('{');
        let mut metadata = Map::new();
        for (key, value) in fields.0 {
            if key == "@metadata" {
                metadata = match serde_json::from_str::<Value>(value.get()) {
                    Ok(Value::Object(it)) => it,
                    Ok(Value::Null) => Map::new(),
                    Ok(_) => return Err(invalid("`@metadata` must be an object".to_owned())),
                    Err(error) => return Err(invalid(error.to_string())),
                };
                continue;
            }
            serde_json::from_str::<ValidJson>(value.get())
                .map_err(|error| invalid(format!("field `{key}`: {error}")))?;
            if body.len() > 1 {
                body.push(',');
            }
            crate::record::push_json_string(&mut body, &key);
            body.push(':');
            body.push_str(value.get());
        }
        body.push('}');
        let (collection, metadata) = validate_metadata(metadata).map_err(invalid)?;
        Ok(PutDocument {
            id: id_request,
            collection,
            metadata,
            body,
            expected_change_vector,
            skip_if_unchanged: false,
        })
    }

    /// Returns the put, changed so that it writes nothing when the stored document already has
    /// this body and metadata (bulk insert's `skipOverwriteIfUnchanged`): the document keeps its
    /// etag and change vector, and no change reaches the change feed.
    pub fn skipping_if_unchanged(self) -> PutDocument {
        PutDocument {
            skip_if_unchanged: true,
            ..self
        }
    }

    /// Returns the collection the document goes to.
    pub fn collection(&self) -> &str {
        &self.collection
    }
}

/// One operation of a write request. A request applies all of its operations or none.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum WriteOp {
    Put(PutDocument),
    Delete {
        id: String,
        expected_change_vector: Option<String>,
    },
    /// Deletes every document whose id starts with the prefix (case-insensitive).
    DeletePrefixed {
        prefix: String,
    },
    AttachmentPut {
        document_id: String,
        name: String,
        content_type: String,
        content: Vec<u8>,
        expected_change_vector: Option<String>,
    },
    AttachmentDelete {
        document_id: String,
        name: String,
        expected_change_vector: Option<String>,
    },
    /// Reserves the next HiLo range for a tag (collection prefix).
    HiloNext {
        tag: String,
        last_size: u64,
        last_range_at: Option<Timestamp>,
        separator: String,
    },
    /// Gives back the unused end of a HiLo range if nobody took a range since.
    HiloReturn {
        tag: String,
        end: u64,
        last: u64,
    },
    /// Writes (`Some`) or removes (`None`) a database record (settings other crates own).
    PutRecord {
        key: String,
        value: Option<Vec<u8>>,
    },
    /// Increments a counter kept in the records and returns its new value (ids of tasks…).
    NextSequence {
        key: String,
    },
    /// Removes tombstones nothing needs any more (RavenDB's tombstone cleaner): those of a
    /// collection named in `limits` (lower-cased) at or below its etag, those of any other
    /// collection at or below `others`; at most `max` of them, oldest collection key first.
    PurgeTombstones {
        limits: Vec<(String, Etag)>,
        others: Etag,
        max: u64,
    },
}

/// What one operation did, in the order of the request's operations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WriteResult {
    Put {
        id: String,
        collection: String,
        etag: Etag,
        change_vector: String,
        last_modified: Timestamp,
    },
    Delete {
        id: String,
        deleted: bool,
        change_vector: Option<String>,
    },
    DeletePrefixed {
        prefix: String,
        deleted: u64,
    },
    AttachmentPut {
        document_id: String,
        name: String,
        hash: String,
        content_type: String,
        size: u64,
        change_vector: String,
        document_change_vector: String,
    },
    AttachmentDelete {
        document_id: String,
        name: String,
        document_change_vector: Option<String>,
    },
    HiloNext {
        prefix: String,
        low: u64,
        high: u64,
        last_size: u64,
        last_range_at: Timestamp,
    },
    HiloReturn,
    PutRecord,
    NextSequence(u64),
    /// `more`: the limit `max` stopped it; more tombstones may be purgeable.
    PurgeTombstones {
        purged: u64,
        more: bool,
    },
}

/// The open tables of one write transaction, and the etag counter of the transaction.
pub(crate) struct Applier<'txn> {
    db_id: &'txn str,
    /// The time of the transaction: every timestamp it writes (`@last-modified`, deletions,
    /// HiLo ranges) is this one, chosen by the writer, so applying is a function of the state
    /// and the requests.
    now: Timestamp,
    pub next_etag: Etag,
    pub touched_collections: BTreeSet<String>,
    pending_counts: std::collections::HashMap<String, (String, i64)>,
    /// Something outside the change feed was written (records, purged tombstones): the
    /// transaction must commit although it took no etag.
    pub wrote_records: bool,
    /// Ids generated in the current request for `prefix/` puts, by lower-cased prefix: later
    /// commands of the same request may name the document by its prefix (RavenDB does this
    /// for attachments of ETL documents loaded to another collection).
    generated_ids: std::collections::HashMap<String, String>,
    records: Table<'txn, &'static str, &'static [u8]>,
    docs: Table<'txn, &'static str, u64>,
    docs_by_etag: Table<'txn, u64, &'static [u8]>,
    docs_by_collection: Table<'txn, (&'static str, u64), ()>,
    tombstones: Table<'txn, u64, &'static [u8]>,
    tombstones_by_collection: Table<'txn, (&'static str, u64), ()>,
    collections: Table<'txn, &'static str, &'static [u8]>,
    attachments: Table<'txn, (&'static str, &'static str), &'static [u8]>,
    blobs: Table<'txn, &'static str, &'static [u8]>,
    blob_refs: Table<'txn, &'static str, u64>,
    identities: Table<'txn, &'static str, u64>,
}

impl<'txn> Applier<'txn> {
    pub fn open(
        txn: &'txn WriteTransaction,
        db_id: &'txn str,
        last_etag: Etag,
        now: Timestamp,
    ) -> Result<Applier<'txn>, StorageError> {
        Ok(Applier {
            db_id,
            now,
            next_etag: last_etag,
            touched_collections: BTreeSet::new(),
            pending_counts: std::collections::HashMap::new(),
            wrote_records: false,
            generated_ids: std::collections::HashMap::new(),
            records: txn.open_table(RECORDS)?,
            docs: txn.open_table(DOCS)?,
            docs_by_etag: txn.open_table(DOCS_BY_ETAG)?,
            docs_by_collection: txn.open_table(DOCS_BY_COLLECTION)?,
            tombstones: txn.open_table(TOMBSTONES)?,
            tombstones_by_collection: txn.open_table(TOMBSTONES_BY_COLLECTION)?,
            collections: txn.open_table(COLLECTIONS)?,
            attachments: txn.open_table(ATTACHMENTS)?,
            blobs: txn.open_table(BLOBS)?,
            blob_refs: txn.open_table(BLOB_REFS)?,
            identities: txn.open_table(IDENTITIES)?,
        })
    }

    /// Starts a request; its operations follow through [`Applier::apply`], in one or more calls.
    pub fn begin_request(&mut self) {
        self.generated_ids.clear();
    }

    /// Applies operations of the request [`Applier::begin_request`] started. On error the caller
    /// must abort the transaction: some operations of the request may already be applied.
    pub fn apply(&mut self, ops: &[WriteOp]) -> Result<Vec<WriteResult>, WriteError> {
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let result = match op {
                WriteOp::Put(put) => self.put(put)?,
                WriteOp::Delete {
                    id,
                    expected_change_vector,
                } => self.delete(id, expected_change_vector.as_deref())?,
                WriteOp::DeletePrefixed { prefix } => self.delete_prefixed(prefix)?,
                WriteOp::AttachmentPut {
                    document_id,
                    name,
                    content_type,
                    content,
                    expected_change_vector,
                } => self.attachment_put(
                    document_id,
                    name,
                    content_type,
                    content,
                    expected_change_vector.as_deref(),
                )?,
                WriteOp::AttachmentDelete {
                    document_id,
                    name,
                    expected_change_vector,
                } => {
                    self.attachment_delete(document_id, name, expected_change_vector.as_deref())?
                }
                WriteOp::HiloNext {
                    tag,
                    last_size,
                    last_range_at,
                    separator,
                } => self.hilo_next(tag, *last_size, *last_range_at, separator)?,
                WriteOp::HiloReturn { tag, end, last } => self.hilo_return(tag, *end, *last)?,
                WriteOp::PutRecord { key, value } => {
                    match value {
                        Some(value) => self.records.insert(key.as_str(), value.as_slice())?,
                        None => self.records.remove(key.as_str())?,
                    };
                    self.wrote_records = true;
                    WriteResult::PutRecord
                }
                WriteOp::NextSequence { key } => {
                    let current = match self.records.get(key.as_str())? {
                        Some(it) => crate::snapshot::decode_u64(it.value())?,
                        None => 0,
                    };
                    let next = current + 1;
                    self.records
                        .insert(key.as_str(), next.to_le_bytes().as_slice())?;
                    self.wrote_records = true;
                    WriteResult::NextSequence(next)
                }
                WriteOp::PurgeTombstones {
                    limits,
                    others,
                    max,
                } => self.purge_tombstones(limits, *others, *max)?,
            };
            results.push(result);
        }
        Ok(results)
    }

    fn purge_tombstones(
        &mut self,
        limits: &[(String, Etag)],
        others: Etag,
        max: u64,
    ) -> Result<WriteResult, StorageError> {
        // (collection, etag) keys to remove, found first and removed after the scan.
        let mut found: Vec<(String, Etag)> = Vec::new();
        let mut more = false;
        let mut from: Option<String> = None;
        'collections: loop {
            // The next collection holding tombstones, after `from`.
            let next = match &from {
                None => self.tombstones_by_collection.first()?,
                Some(previous) => self
                    .tombstones_by_collection
                    .range((
                        std::ops::Bound::Excluded((previous.as_str(), u64::MAX)),
                        std::ops::Bound::Unbounded,
                    ))?
                    .next()
                    .transpose()?,
            };
            let Some((key, _)) = next else {
                break;
            };
            let collection = key.value().0.to_owned();
            drop(key);
            let limit = limits
                .iter()
                .find(|(name, _)| *name == collection)
                .map_or(others, |(_, limit)| *limit);
            if limit > 0 {
                for entry in self
                    .tombstones_by_collection
                    .range((collection.as_str(), 0)..=(collection.as_str(), limit))?
                {
                    if found.len() as u64 == max {
                        more = true;
                        break 'collections;
                    }
                    let (key, _) = entry?;
                    found.push((collection.clone(), key.value().1));
                }
            }
            from = Some(collection);
        }
        for (collection, etag) in &found {
            self.tombstones_by_collection
                .remove((collection.as_str(), *etag))?;
            self.tombstones.remove(*etag)?;
        }
        // Written, though not news to the change feed's subscribers.
        self.wrote_records |= !found.is_empty();
        Ok(WriteResult::PurgeTombstones {
            purged: found.len() as u64,
            more,
        })
    }

    fn take_etag(&mut self) -> Etag {
        self.next_etag += 1;
        self.next_etag
    }

    fn change_vector(&self, etag: Etag) -> String {
        format!("A:{etag}-{}", self.db_id)
    }

    fn read_doc(&self, key: &str) -> Result<Option<DocumentRecord>, StorageError> {
        let Some(etag) = self.docs.get(key)?.map(|it| it.value()) else {
            return Ok(None);
        };
        match self.docs_by_etag.get(etag)? {
            Some(it) => Ok(Some(DocumentRecord::decode(it.value())?)),
            None => Err(StorageError::Corrupted {
                table: "docs",
                reason: format!("`{key}` points at missing etag {etag}"),
            }),
        }
    }

    fn check_change_vector(
        &self,
        id: &str,
        expected: Option<&str>,
        actual: Option<Etag>,
    ) -> Result<(), WriteError> {
        let Some(expected) = expected else {
            return Ok(());
        };
        let actual = actual.map(|it| self.change_vector(it));
        let matches = match (&actual, expected.is_empty()) {
            (None, true) => true,
            (Some(actual), false) => actual == expected,
            _ => false,
        };
        if matches {
            return Ok(());
        }
        Err(WriteError::Concurrency {
            id: id.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }

    fn put(&mut self, put: &PutDocument) -> Result<WriteResult, WriteError> {
        if put.skip_if_unchanged
            && let IdRequest::Exact(id) = &put.id
            && let Some(existing) = self.read_doc(&key_of(id))?
            && existing.body == put.body
            && existing.metadata == put.metadata
            && key_of(&existing.collection) == key_of(&put.collection)
        {
            return Ok(WriteResult::Put {
                change_vector: self.change_vector(existing.etag),
                id: existing.id,
                collection: existing.collection,
                etag: existing.etag,
                last_modified: existing.last_modified,
            });
        }
        let (id, etag) = match &put.id {
            IdRequest::Exact(id) => (id.clone(), None),
            IdRequest::ServerGenerated { prefix } => {
                let etag = self.take_etag();
                let id = format!("{prefix}{etag:019}-A");
                self.generated_ids.insert(key_of(prefix), id.clone());
                (id, Some(etag))
            }
            IdRequest::Identity { prefix } => {
                let key = key_of(prefix);
                let next = self
                    .identities
                    .get(key.as_str())?
                    .map_or(0, |it| it.value())
                    + 1;
                self.identities.insert(key.as_str(), next)?;
                (format!("{prefix}{next}"), None)
            }
        };
        crate::ids::validate_id(&id)?;
        let record = self.write_document(
            &id,
            &put.collection,
            &put.metadata,
            &put.body,
            put.expected_change_vector.as_deref(),
            etag,
        )?;
        Ok(WriteResult::Put {
            change_vector: self.change_vector(record.etag),
            id: record.id,
            collection: record.collection,
            etag: record.etag,
            last_modified: record.last_modified,
        })
    }

    /// Writes a document at a new etag, replacing any earlier version.
    fn write_document(
        &mut self,
        id: &str,
        collection: &str,
        metadata: &str,
        body: &str,
        expected_change_vector: Option<&str>,
        preassigned_etag: Option<Etag>,
    ) -> Result<DocumentRecord, WriteError> {
        crate::ids::validate_id(id)?;
        let key = key_of(id);
        let existing = self.read_doc(&key)?;
        self.check_change_vector(
            id,
            expected_change_vector,
            existing.as_ref().map(|it| it.etag),
        )?;
        let etag = preassigned_etag.unwrap_or_else(|| self.take_etag());
        let (stored_id, flags) = match &existing {
            Some(old) => {
                if key_of(&old.collection) != key_of(collection) {
                    return Err(WriteError::InvalidDocument {
                        id: truncate_for_message(id),
                        reason: format!(
                            "changing the collection from `{}` to `{collection}` via an update is not supported; delete the document and create it again",
                            old.collection
                        ),
                    });
                }
                self.unindex_document(old)?;
                (old.id.clone(), old.flags)
            }
            None => {
                self.adjust_collection_count(collection, 1);
                (id.to_owned(), DocumentFlags::default())
            }
        };
        let record = DocumentRecord {
            etag,
            created_etag: existing.as_ref().map_or(etag, |it| it.created_etag),
            last_modified: self.now,
            flags,
            id: stored_id,
            collection: existing
                .map(|it| it.collection)
                .unwrap_or_else(|| collection.to_owned()),
            metadata: metadata.to_owned(),
            body: body.to_owned(),
        };
        self.index_document(&key, &record)?;
        Ok(record)
    }

    fn index_document(&mut self, key: &str, record: &DocumentRecord) -> Result<(), StorageError> {
        let collection_key = key_of(&record.collection);
        self.docs.insert(key, record.etag)?;
        self.docs_by_etag
            .insert(record.etag, record.encode().as_slice())?;
        self.docs_by_collection
            .insert((collection_key.as_str(), record.etag), ())?;
        if !self.touched_collections.contains(&record.collection) {
            self.touched_collections.insert(record.collection.clone());
        }
        Ok(())
    }

    fn unindex_document(&mut self, record: &DocumentRecord) -> Result<(), StorageError> {
        let collection_key = key_of(&record.collection);
        self.docs_by_etag.remove(record.etag)?;
        self.docs_by_collection
            .remove((collection_key.as_str(), record.etag))?;
        Ok(())
    }

    /// Records a change of a collection's document count; written once per transaction by
    /// [`Applier::finish`].
    fn adjust_collection_count(&mut self, collection: &str, delta: i64) {
        let key = key_of(collection);
        match self.pending_counts.get_mut(&key) {
            Some(pending) => pending.1 += delta,
            None => {
                self.pending_counts
                    .insert(key, (collection.to_owned(), delta));
            }
        }
    }

    /// Writes what was deferred to the end of the transaction (collection counts).
    pub fn finish(&mut self) -> Result<(), StorageError> {
        for (key, (name, delta)) in std::mem::take(&mut self.pending_counts) {
            if delta == 0 {
                continue;
            }
            let (name, count) = match self.collections.get(key.as_str())? {
                Some(it) => decode_collection(it.value())?,
                None => (name, 0),
            };
            let count = count.saturating_add_signed(delta);
            if count == 0 {
                self.collections.remove(key.as_str())?;
            } else {
                self.collections
                    .insert(key.as_str(), encode_collection(&name, count).as_slice())?;
            }
        }
        Ok(())
    }

    fn delete(&mut self, id: &str, expected: Option<&str>) -> Result<WriteResult, WriteError> {
        let key = key_of(id);
        let existing = self.read_doc(&key)?;
        let actual_etag = existing.as_ref().map(|it| it.etag);
        if existing.is_some() || expected.is_some_and(|it| !it.is_empty()) {
            self.check_change_vector(id, expected, actual_etag)?;
        }
        let Some(record) = existing else {
            return Ok(WriteResult::Delete {
                id: id.to_owned(),
                deleted: false,
                change_vector: None,
            });
        };
        let tombstone_etag = self.delete_document(&key, record)?;
        Ok(WriteResult::Delete {
            id: id.to_owned(),
            deleted: true,
            change_vector: Some(self.change_vector(tombstone_etag)),
        })
    }

    /// Removes a document and its attachments and writes its tombstone; returns the tombstone's
    /// etag.
    fn delete_document(&mut self, key: &str, record: DocumentRecord) -> Result<Etag, StorageError> {
        self.unindex_document(&record)?;
        self.docs.remove(key)?;
        for (name_key, attachment) in self.attachments_of(key)? {
            self.attachments.remove((key, name_key.as_str()))?;
            self.release_blob(&attachment.hash)?;
        }
        self.adjust_collection_count(&record.collection, -1);
        let etag = self.take_etag();
        self.write_tombstone(Tombstone {
            etag,
            kind: TombstoneKind::Document,
            id: record.id,
            change_vector: self.change_vector(etag),
            collection: record.collection,
            deleted_at: self.now,
        })?;
        Ok(etag)
    }

    fn write_tombstone(&mut self, tombstone: Tombstone) -> Result<(), StorageError> {
        let collection_key = key_of(&tombstone.collection);
        self.tombstones
            .insert(tombstone.etag, encode_tombstone(&tombstone).as_slice())?;
        self.tombstones_by_collection
            .insert((collection_key.as_str(), tombstone.etag), ())?;
        self.touched_collections.insert(tombstone.collection);
        Ok(())
    }

    fn delete_prefixed(&mut self, prefix: &str) -> Result<WriteResult, WriteError> {
        let prefix_key = key_of(prefix);
        let mut keys = Vec::new();
        for entry in self.docs.range(prefix_key.as_str()..)? {
            let (key, _) = entry.map_err(StorageError::from)?;
            if !key.value().starts_with(prefix_key.as_str()) {
                break;
            }
            keys.push(key.value().to_owned());
        }
        let mut deleted = 0;
        for key in keys {
            if let Some(record) = self.read_doc(&key)? {
                self.delete_document(&key, record)?;
                deleted += 1;
            }
        }
        Ok(WriteResult::DeletePrefixed {
            prefix: prefix.to_owned(),
            deleted,
        })
    }

    /// Maps `prefix/` to the id generated for it earlier in the same request.
    fn resolve_generated(&self, document_id: &str) -> String {
        if !document_id.ends_with('/') {
            return document_id.to_owned();
        }
        self.generated_ids
            .get(&key_of(document_id))
            .cloned()
            .unwrap_or_else(|| document_id.to_owned())
    }

    fn attachments_of(
        &self,
        doc_key: &str,
    ) -> Result<Vec<(String, AttachmentRecord)>, StorageError> {
        let mut found = Vec::new();
        for entry in self.attachments.range((doc_key, "")..)? {
            let (key, value) = entry?;
            let (entry_doc, entry_name) = key.value();
            if entry_doc != doc_key {
                break;
            }
            found.push((
                entry_name.to_owned(),
                AttachmentRecord::decode(value.value())?,
            ));
        }
        Ok(found)
    }

    fn retain_blob(&mut self, hash: &str, content: &[u8]) -> Result<(), StorageError> {
        let refs = self.blob_refs.get(hash)?.map_or(0, |it| it.value());
        if refs == 0 {
            self.blobs.insert(hash, content)?;
        }
        self.blob_refs.insert(hash, refs + 1)?;
        Ok(())
    }

    fn release_blob(&mut self, hash: &str) -> Result<(), StorageError> {
        let refs = self.blob_refs.get(hash)?.map_or(0, |it| it.value());
        if refs <= 1 {
            self.blob_refs.remove(hash)?;
            self.blobs.remove(hash)?;
        } else {
            self.blob_refs.insert(hash, refs - 1)?;
        }
        Ok(())
    }

    /// Moves a document to a new etag after one of its attachments changed, and recomputes
    /// its attachment flag. Returns the document's new change vector.
    fn touch_document(
        &mut self,
        key: &str,
        mut record: DocumentRecord,
    ) -> Result<String, StorageError> {
        self.unindex_document(&record)?;
        record.etag = self.take_etag();
        record.last_modified = self.now;
        record.flags = if self.attachments_of(key)?.is_empty() {
            DocumentFlags(record.flags.0 & !DocumentFlags::HAS_ATTACHMENTS.0)
        } else {
            DocumentFlags(record.flags.0 | DocumentFlags::HAS_ATTACHMENTS.0)
        };
        self.index_document(key, &record)?;
        Ok(self.change_vector(record.etag))
    }

    fn attachment_put(
        &mut self,
        document_id: &str,
        name: &str,
        content_type: &str,
        content: &[u8],
        expected: Option<&str>,
    ) -> Result<WriteResult, WriteError> {
        validate_attachment_name(document_id, name)?;
        let document_id = self.resolve_generated(document_id);
        let document_id = document_id.as_str();
        let doc_key = key_of(document_id);
        let Some(record) = self.read_doc(&doc_key)? else {
            return Err(WriteError::DocumentMissing {
                id: truncate_for_message(document_id),
            });
        };
        let name_key = key_of(name);
        let existing = match self
            .attachments
            .get((doc_key.as_str(), name_key.as_str()))?
        {
            Some(it) => Some(AttachmentRecord::decode(it.value())?),
            None => None,
        };
        self.check_change_vector(
            &format!("{document_id}/{name}"),
            expected,
            existing.as_ref().map(|it| it.etag),
        )?;
        // RavenDB's algorithm (BLAKE2b, 256 bits, base64), so `Hash` values agree between the
        // two systems and across ETL.
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Blake2b::<U32>::digest(content));
        self.retain_blob(&hash, content)?;
        if let Some(old) = &existing {
            self.release_blob(&old.hash)?;
        }
        let etag = self.take_etag();
        let attachment = AttachmentRecord {
            etag,
            size: content.len() as u64,
            name: name.to_owned(),
            hash: hash.clone(),
            content_type: content_type.to_owned(),
        };
        self.attachments.insert(
            (doc_key.as_str(), name_key.as_str()),
            attachment.encode().as_slice(),
        )?;
        let document_id = record.id.clone();
        let document_change_vector = self.touch_document(&doc_key, record)?;
        Ok(WriteResult::AttachmentPut {
            document_id,
            name: name.to_owned(),
            hash,
            content_type: content_type.to_owned(),
            size: attachment.size,
            change_vector: self.change_vector(etag),
            document_change_vector,
        })
    }

    fn attachment_delete(
        &mut self,
        document_id: &str,
        name: &str,
        expected: Option<&str>,
    ) -> Result<WriteResult, WriteError> {
        let doc_key = key_of(document_id);
        let name_key = key_of(name);
        let record = self.read_doc(&doc_key)?;
        let existing = match self
            .attachments
            .get((doc_key.as_str(), name_key.as_str()))?
        {
            Some(it) => Some(AttachmentRecord::decode(it.value())?),
            None => None,
        };
        if existing.is_some() || expected.is_some_and(|it| !it.is_empty()) {
            self.check_change_vector(
                &format!("{document_id}/{name}"),
                expected,
                existing.as_ref().map(|it| it.etag),
            )?;
        }
        let (Some(record), Some(attachment)) = (record, existing) else {
            return Ok(WriteResult::AttachmentDelete {
                document_id: document_id.to_owned(),
                name: name.to_owned(),
                document_change_vector: None,
            });
        };
        self.attachments
            .remove((doc_key.as_str(), name_key.as_str()))?;
        self.release_blob(&attachment.hash)?;
        let etag = self.take_etag();
        self.write_tombstone(Tombstone {
            etag,
            kind: TombstoneKind::Attachment {
                name: attachment.name.clone(),
            },
            id: record.id.clone(),
            collection: record.collection.clone(),
            change_vector: self.change_vector(etag),
            deleted_at: self.now,
        })?;
        let document_id = record.id.clone();
        let document_change_vector = self.touch_document(&doc_key, record)?;
        Ok(WriteResult::AttachmentDelete {
            document_id,
            name: attachment.name,
            document_change_vector: Some(document_change_vector),
        })
    }

    fn hilo_max(&self, doc_key: &str) -> Result<u64, StorageError> {
        let Some(record) = self.read_doc(doc_key)? else {
            return Ok(0);
        };
        let body: Value =
            serde_json::from_str(&record.body).map_err(|error| StorageError::Corrupted {
                table: "docs",
                reason: format!("hilo document `{}`: {error}", record.id),
            })?;
        Ok(body.get("Max").and_then(Value::as_u64).unwrap_or(0))
    }

    fn write_hilo_max(&mut self, id: &str, max: u64) -> Result<(), WriteError> {
        let metadata = format!(r#"{{"@collection":"{HILO_COLLECTION}"}}"#);
        let body = format!(r#"{{"Max":{max}}}"#);
        self.write_document(id, HILO_COLLECTION, &metadata, &body, None, None)?;
        Ok(())
    }

    fn hilo_next(
        &mut self,
        tag: &str,
        last_size: u64,
        last_range_at: Option<Timestamp>,
        separator: &str,
    ) -> Result<WriteResult, WriteError> {
        let id = hilo_document_id(tag);
        let max = self.hilo_max(&key_of(&id))?;
        let now = self.now;
        let capacity = hilo_capacity(last_size, last_range_at, now);
        self.write_hilo_max(&id, max + capacity)?;
        Ok(WriteResult::HiloNext {
            prefix: format!("{tag}{separator}"),
            low: max + 1,
            high: max + capacity,
            last_size: capacity,
            last_range_at: now,
        })
    }

    fn hilo_return(&mut self, tag: &str, end: u64, last: u64) -> Result<WriteResult, WriteError> {
        let id = hilo_document_id(tag);
        let max = self.hilo_max(&key_of(&id))?;
        // Only the holder of the newest range may give its unused end back.
        if max == end && last < end {
            self.write_hilo_max(&id, last)?;
        }
        Ok(WriteResult::HiloReturn)
    }
}

fn hilo_document_id(tag: &str) -> String {
    format!("Raven/Hilo/{tag}")
}

/// RavenDB's HiLo sizing: ranges grow while a client asks often and shrink when it asks rarely.
fn hilo_capacity(last_size: u64, last_range_at: Option<Timestamp>, now: Timestamp) -> u64 {
    const MIN: u64 = 32;
    const MAX: u64 = 1024 * 1024;
    let Some(last_range_at) = last_range_at else {
        return MIN;
    };
    let seconds = now.0.saturating_sub(last_range_at.0) / 10_000_000;
    let size = if seconds < 5 {
        last_size.saturating_mul(2)
    } else if seconds > 60 {
        last_size / 2
    } else {
        last_size
    };
    size.clamp(MIN, MAX)
}

fn validate_attachment_name(document_id: &str, name: &str) -> Result<(), WriteError> {
    let reason = if name.trim().is_empty() {
        "name is empty"
    } else if name.len() > crate::ids::MAX_ID_BYTES {
        "name is longer than 512 bytes"
    } else if name.chars().any(char::is_control) {
        "name contains a control character"
    } else {
        return Ok(());
    };
    Err(WriteError::InvalidAttachmentName {
        id: truncate_for_message(document_id),
        name: truncate_for_message(name),
        reason: reason.into(),
    })
}

/// Drops server-owned metadata and checks `@collection`; returns the collection and the
/// metadata as JSON text.
fn validate_metadata(mut metadata: Map<String, Value>) -> Result<(String, String), String> {
    for key in SERVER_METADATA {
        metadata.shift_remove(*key);
    }
    let collection = match metadata.get("@collection") {
        None | Some(Value::Null) => EMPTY_COLLECTION.to_owned(),
        Some(Value::String(it)) if it.trim().is_empty() => {
            return Err("`@collection` must not be empty".to_owned());
        }
        Some(Value::String(it)) if it.chars().any(char::is_control) => {
            return Err("`@collection` contains a control character".to_owned());
        }
        Some(Value::String(it)) => it.clone(),
        Some(_) => return Err("`@metadata.@collection` must be a string".to_owned()),
    };
    let text = serde_json::to_string(&metadata).map_err(|error| error.to_string())?;
    Ok((collection, text))
}

/// The top-level fields of a JSON object in document order, values left as raw JSON text.
struct TopLevelFields<'a>(Vec<(String, &'a serde_json::value::RawValue)>);

impl<'de> serde::Deserialize<'de> for TopLevelFields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> serde::de::Visitor<'de> for FieldsVisitor {
            type Value = TopLevelFields<'de>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) =
                    map.next_entry::<String, &'de serde_json::value::RawValue>()?
                {
                    fields.push(entry);
                }
                let mut seen = std::collections::HashSet::with_capacity(fields.len());
                for (key, _) in &fields {
                    if !seen.insert(key.as_str()) {
                        return Err(serde::de::Error::custom(format!("duplicate field `{key}`")));
                    }
                }
                Ok(TopLevelFields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// Accepts any JSON value that a tree parser would accept too: numbers in range, strings
/// without lone surrogates. Used to check raw field values without building a tree.
struct ValidJson;

impl<'de> serde::Deserialize<'de> for ValidJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValidVisitor;
        impl<'de> serde::de::Visitor<'de> for ValidVisitor {
            type Value = ValidJson;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<ValidJson, E> {
                Ok(ValidJson)
            }
            fn visit_i64<E>(self, _: i64) -> Result<ValidJson, E> {
                Ok(ValidJson)
            }
            fn visit_u64<E>(self, _: u64) -> Result<ValidJson, E> {
                Ok(ValidJson)
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<ValidJson, E> {
                if value.is_finite() {
                    return Ok(ValidJson);
                }
                Err(E::custom("number out of range"))
            }
            fn visit_str<E>(self, _: &str) -> Result<ValidJson, E> {
                Ok(ValidJson)
            }
            fn visit_unit<E>(self) -> Result<ValidJson, E> {
                Ok(ValidJson)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ValidJson, A::Error> {
                while seq.next_element::<ValidJson>()?.is_some() {}
                Ok(ValidJson)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ValidJson, A::Error> {
                while map.next_entry::<ValidKey, ValidJson>()?.is_some() {}
                Ok(ValidJson)
            }
        }
        deserializer.deserialize_any(ValidVisitor)
    }
}

/// An object key, decoded so its escapes are checked.
struct ValidKey;

impl<'de> serde::Deserialize<'de> for ValidKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = ValidKey;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("an object key")
            }
            fn visit_str<E>(self, _: &str) -> Result<ValidKey, E> {
                Ok(ValidKey)
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn put_document_strips_server_metadata() {
        let put = PutDocument::new(
            "users/1",
            doc(r#"{"Name":"Ann","@metadata":{"@collection":"Users","@id":"x","@change-vector":"y","Raven-Python-Type":"U"}}"#),
            None,
        )
        .unwrap();
        assert_eq!(put.collection(), "Users");
        assert_eq!(
            put.metadata,
            r#"{"@collection":"Users","Raven-Python-Type":"U"}"#
        );
        assert_eq!(put.body, r#"{"Name":"Ann"}"#);
    }

    #[test]
    fn from_json_keeps_nested_values_and_order() {
        let text = r#"{"Name":"Ann","@metadata":{"@collection":"Users","@id":"x"},"Address":{"City":"Oslo","Zip":[1,2]},"A\"b":null}"#;
        let put = PutDocument::from_json("users/1", text, None).unwrap();
        assert_eq!(put.collection(), "Users");
        assert_eq!(put.metadata, r#"{"@collection":"Users"}"#);
        assert_eq!(
            put.body,
            r#"{"Name":"Ann","Address":{"City":"Oslo","Zip":[1,2]},"A\"b":null}"#
        );
        let big = PutDocument::from_json("n", r#"{"Big":123456789012345678901234567890}"#, None);
        assert_eq!(
            big.unwrap().body,
            r#"{"Big":123456789012345678901234567890}"#
        );
        let same = PutDocument::new("users/1", serde_json::from_str(text).unwrap(), None).unwrap();
        assert_eq!(same.body, put.body);
        assert_eq!(same.metadata, put.metadata);
    }

    #[test]
    fn from_json_rejects_what_new_rejects() {
        for bad in [
            "[]",
            "\"x\"",
            "{",
            r#"{"@metadata":[]}"#,
            r#"{"@metadata":{"@collection":1}}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"n":1e400}"#,
            r#"{"n":[1,{"m":-1e999}]}"#,
            r#"{"s":"\ud800"}"#,
            r#"{"o":{"\udc00":1}}"#,
        ] {
            assert!(PutDocument::from_json("a", bad, None).is_err(), "{bad}");
        }
        assert!(PutDocument::from_json("", "{}", None).is_err());
    }

    #[test]
    fn put_document_rejects_bad_metadata() {
        assert!(PutDocument::new("a", doc(r#"{"@metadata":[]}"#), None).is_err());
        assert!(PutDocument::new("a", doc(r#"{"@metadata":"x"}"#), None).is_err());
        assert!(PutDocument::new("a", doc(r#"{"@metadata":{"@collection":5}}"#), None).is_err());
        assert!(PutDocument::new("a", doc(r#"{"@metadata":{"@collection":""}}"#), None).is_err());
        assert!(PutDocument::new("", doc("{}"), None).is_err());
        let put = PutDocument::new("a", doc("{}"), None).unwrap();
        assert_eq!(put.collection(), EMPTY_COLLECTION);
    }

    #[test]
    fn hilo_ranges_grow_when_asked_often_and_shrink_when_rarely() {
        let now = Timestamp(1_000_000_000_000);
        assert_eq!(hilo_capacity(0, None, now), 32);
        assert_eq!(hilo_capacity(32, Some(now), now), 64);
        assert_eq!(
            hilo_capacity(64, Some(Timestamp(now.0 - 30 * 10_000_000)), now),
            64
        );
        assert_eq!(
            hilo_capacity(256, Some(Timestamp(now.0 - 120 * 10_000_000)), now),
            128
        );
        assert_eq!(hilo_capacity(1 << 30, Some(now), now), 1024 * 1024);
    }
}
