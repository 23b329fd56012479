//! Consistent reads: a [`Snapshot`] sees one committed state of a database while writes go on.

use std::sync::Arc;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata};

use crate::error::{ReadError, StorageError};
use crate::ids::key_of;
use crate::record::{
    AttachmentInfo, AttachmentRecord, Document, DocumentRecord, Etag, Tombstone, decode_collection,
    decode_tombstone,
};
use crate::tables::{
    ATTACHMENTS, BLOBS, COLLECTIONS, DOCS, DOCS_BY_COLLECTION, DOCS_BY_ETAG, META, RECORDS,
    TOMBSTONES, TOMBSTONES_BY_COLLECTION,
};

/// A read-only view of one committed state of a database.
pub struct Snapshot {
    txn: ReadTransaction,
    db_id: Arc<str>,
    docs: ReadOnlyTable<&'static str, u64>,
    records: ReadOnlyTable<u64, &'static [u8]>,
}

/// A collection and how many documents it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionStats {
    pub name: String,
    pub count: u64,
}

impl Snapshot {
    pub(crate) fn new(txn: ReadTransaction, db_id: Arc<str>) -> Result<Snapshot, StorageError> {
        let docs = txn.open_table(DOCS)?;
        let records = txn.open_table(DOCS_BY_ETAG)?;
        Ok(Snapshot {
            txn,
            db_id,
            docs,
            records,
        })
    }

    /// Returns the etag of the last write this snapshot sees.
    pub fn last_etag(&self) -> Result<Etag, ReadError> {
        let meta = self.txn.open_table(META)?;
        let last = meta
            .get("last_etag")
            .map_err(StorageError::from)?
            .map(|it| decode_u64(it.value()))
            .transpose()?;
        Ok(last.unwrap_or(0))
    }

    /// Returns the change vector RavenDB would show for an etag of this database.
    pub fn change_vector(&self, etag: Etag) -> String {
        format!("A:{etag}-{}", self.db_id)
    }

    /// Loads a document by id (case-insensitive).
    pub fn get(&self, id: &str) -> Result<Option<Document>, ReadError> {
        let key = key_of(id);
        let Some(etag) = self.docs.get(key.as_str()).map_err(StorageError::from)? else {
            return Ok(None);
        };
        let record = self.record(etag.value())?;
        Ok(Some(self.to_document(record)?))
    }

    fn record(&self, etag: Etag) -> Result<DocumentRecord, ReadError> {
        match self.records.get(etag).map_err(StorageError::from)? {
            Some(it) => Ok(DocumentRecord::decode(it.value())?),
            None => Err(StorageError::Corrupted {
                table: "docs",
                reason: format!("index points at missing etag {etag}"),
            }
            .into()),
        }
    }

    /// Returns the documents whose id starts with `prefix` (case-insensitive), in id order,
    /// skipping `start` of them and returning at most `page_size`.
    pub fn starting_with(
        &self,
        prefix: &str,
        start: usize,
        page_size: usize,
    ) -> Result<Vec<Document>, ReadError> {
        let prefix_key = key_of(prefix);
        let mut found = Vec::new();
        let range = self
            .docs
            .range(prefix_key.as_str()..)
            .map_err(StorageError::from)?;
        for entry in range.skip(start) {
            let (key, etag) = entry.map_err(StorageError::from)?;
            if !key.value().starts_with(prefix_key.as_str()) || found.len() >= page_size {
                break;
            }
            let record = self.record(etag.value())?;
            found.push(self.to_document(record)?);
        }
        Ok(found)
    }

    /// Returns documents newest first (by etag), skipping `start` and returning at most
    /// `page_size`.
    pub fn latest_documents(
        &self,
        start: usize,
        page_size: usize,
    ) -> Result<Vec<Document>, ReadError> {
        let mut found = Vec::new();
        for entry in self
            .records
            .iter()
            .map_err(StorageError::from)?
            .rev()
            .skip(start)
        {
            if found.len() >= page_size {
                break;
            }
            let (_, value) = entry.map_err(StorageError::from)?;
            let record = DocumentRecord::decode(value.value())?;
            found.push(self.to_document(record)?);
        }
        Ok(found)
    }

    /// Returns the documents of one collection newest first (by etag), skipping `start` and
    /// returning at most `page_size`: the collection's own index is read, so a page costs what
    /// it skips and returns, whatever the size of the database.
    pub fn latest_in_collection(
        &self,
        collection: &str,
        start: usize,
        page_size: usize,
    ) -> Result<Vec<Document>, ReadError> {
        let table = self.txn.open_table(DOCS_BY_COLLECTION)?;
        let collection_key = key_of(collection);
        let range = table
            .range((collection_key.as_str(), 0)..=(collection_key.as_str(), u64::MAX))
            .map_err(StorageError::from)?;
        let mut found = Vec::new();
        for entry in range.rev().skip(start) {
            if found.len() >= page_size {
                break;
            }
            let (key, _) = entry.map_err(StorageError::from)?;
            let (_, etag) = key.value();
            let record = self.record(etag)?;
            found.push(self.to_document(record)?);
        }
        Ok(found)
    }

    /// Iterates the documents of one collection (or of all, with `None`) whose etag is greater
    /// than `after`, in etag order.
    pub fn documents_after(
        &self,
        collection: Option<&str>,
        after: Etag,
    ) -> Result<DocumentIter<'_>, ReadError> {
        let keys = match collection {
            Some(collection) => {
                let table = self.txn.open_table(DOCS_BY_COLLECTION)?;
                let collection_key = key_of(collection);
                let range = table
                    .range(
                        (collection_key.as_str(), after.saturating_add(1))
                            ..=(collection_key.as_str(), u64::MAX),
                    )
                    .map_err(StorageError::from)?;
                KeyRange::Collection(range)
            }
            None => {
                let range = self
                    .records
                    .range(after.saturating_add(1)..)
                    .map_err(StorageError::from)?;
                KeyRange::All(range)
            }
        };
        Ok(DocumentIter {
            snapshot: self,
            keys,
            records: None,
        })
    }

    /// Iterates the tombstones of one collection (or of all) with etag greater than `after`,
    /// in etag order.
    pub fn tombstones_after(
        &self,
        collection: Option<&str>,
        after: Etag,
    ) -> Result<TombstoneIter, ReadError> {
        let tombstones = self.txn.open_table(TOMBSTONES)?;
        let etags = match collection {
            Some(collection) => {
                let table = self.txn.open_table(TOMBSTONES_BY_COLLECTION)?;
                let collection_key = key_of(collection);
                let range = table
                    .range(
                        (collection_key.as_str(), after.saturating_add(1))
                            ..=(collection_key.as_str(), u64::MAX),
                    )
                    .map_err(StorageError::from)?;
                TombstoneKeys::Collection(range)
            }
            None => TombstoneKeys::All(
                tombstones
                    .range(after.saturating_add(1)..)
                    .map_err(StorageError::from)?,
            ),
        };
        Ok(TombstoneIter { tombstones, etags })
    }

    /// Returns a database record (see [`crate::WriteOp::PutRecord`]).
    pub fn record_value(&self, key: &str) -> Result<Option<Vec<u8>>, ReadError> {
        let table = self.txn.open_table(RECORDS)?;
        let value = table.get(key).map_err(StorageError::from)?;
        Ok(value.map(|it| it.value().to_vec()))
    }

    /// Returns every database record whose key starts with `prefix`, by key.
    pub fn records_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, ReadError> {
        let table = self.txn.open_table(RECORDS)?;
        let mut found = Vec::new();
        for entry in table.range(prefix..).map_err(StorageError::from)? {
            let (key, value) = entry.map_err(StorageError::from)?;
            if !key.value().starts_with(prefix) {
                break;
            }
            found.push((key.value().to_owned(), value.value().to_vec()));
        }
        Ok(found)
    }

    /// Returns every collection with its document count, by name.
    pub fn collections(&self) -> Result<Vec<CollectionStats>, ReadError> {
        let table = self.txn.open_table(COLLECTIONS)?;
        let mut found = Vec::new();
        for entry in table.iter().map_err(StorageError::from)? {
            let (_, value) = entry.map_err(StorageError::from)?;
            let (name, count) = decode_collection(value.value())?;
            found.push(CollectionStats { name, count });
        }
        Ok(found)
    }

    /// Returns the number of documents in a collection, or in the database with `None`.
    pub fn count_documents(&self, collection: Option<&str>) -> Result<u64, ReadError> {
        let Some(collection) = collection else {
            return Ok(self.docs.len().map_err(StorageError::from)?);
        };
        let table = self.txn.open_table(COLLECTIONS)?;
        let key = key_of(collection);
        let Some(value) = table.get(key.as_str()).map_err(StorageError::from)? else {
            return Ok(0);
        };
        Ok(decode_collection(value.value())?.1)
    }

    /// Returns the number of tombstones in a collection, or in the database with `None`.
    pub fn count_tombstones(&self, collection: Option<&str>) -> Result<u64, ReadError> {
        self.count_tombstones_after(collection, 0)
    }

    /// Counts what [`Snapshot::documents_after`] would return, walking keys only: nothing
    /// is read or decoded (progress endpoints ask this of large backlogs, often and while the
    /// process works). The shorter side of `after` is walked: the documents up to it are
    /// counted and taken from the total when `after` is in the first half of the etags, so a
    /// process that has not moved yet (an OLAP run, until it is published) costs nothing.
    pub fn count_documents_after(
        &self,
        collection: Option<&str>,
        after: Etag,
    ) -> Result<u64, ReadError> {
        let total = self.count_documents(collection)?;
        if after == 0 {
            return Ok(total);
        }
        let count_up_to = after <= self.last_etag()? / 2;
        let Some(collection) = collection else {
            if count_up_to {
                let range = self.records.range(..=after).map_err(StorageError::from)?;
                return Ok(total.saturating_sub(range.count() as u64));
            }
            let range = self
                .records
                .range(after.saturating_add(1)..)
                .map_err(StorageError::from)?;
            return Ok(range.count() as u64);
        };
        let table = self.txn.open_table(DOCS_BY_COLLECTION)?;
        let key = key_of(collection);
        let range = if count_up_to {
            table.range((key.as_str(), 0)..=(key.as_str(), after))
        } else {
            table.range((key.as_str(), after.saturating_add(1))..=(key.as_str(), u64::MAX))
        }
        .map_err(StorageError::from)?;
        let counted = range.count() as u64;
        Ok(if count_up_to {
            total.saturating_sub(counted)
        } else {
            counted
        })
    }

    /// Counts what [`Snapshot::tombstones_after`] would return, walking keys only.
    pub fn count_tombstones_after(
        &self,
        collection: Option<&str>,
        after: Etag,
    ) -> Result<u64, ReadError> {
        let Some(collection) = collection else {
            let table = self.txn.open_table(TOMBSTONES)?;
            let range = table
                .range(after.saturating_add(1)..)
                .map_err(StorageError::from)?;
            return Ok(range.count() as u64);
        };
        let table = self.txn.open_table(TOMBSTONES_BY_COLLECTION)?;
        let key = key_of(collection);
        let range = table
            .range((key.as_str(), after.saturating_add(1))..=(key.as_str(), u64::MAX))
            .map_err(StorageError::from)?;
        Ok(range.count() as u64)
    }

    /// Returns an attachment's description and content.
    pub fn attachment(
        &self,
        document_id: &str,
        name: &str,
    ) -> Result<Option<(AttachmentInfo, Vec<u8>)>, ReadError> {
        let table = self.txn.open_table(ATTACHMENTS)?;
        let doc_key = key_of(document_id);
        let name_key = key_of(name);
        let Some(value) = table
            .get((doc_key.as_str(), name_key.as_str()))
            .map_err(StorageError::from)?
        else {
            return Ok(None);
        };
        let record = AttachmentRecord::decode(value.value())?;
        let blobs = self.txn.open_table(BLOBS)?;
        let Some(content) = blobs
            .get(record.hash.as_str())
            .map_err(StorageError::from)?
        else {
            return Err(StorageError::Corrupted {
                table: "blobs",
                reason: format!("missing content {} of attachment `{name}`", record.hash),
            }
            .into());
        };
        let content = content.value().to_vec();
        Ok(Some((self.attachment_info(record), content)))
    }

    fn attachment_info(&self, record: AttachmentRecord) -> AttachmentInfo {
        AttachmentInfo {
            change_vector: self.change_vector(record.etag),
            name: record.name,
            hash: record.hash,
            content_type: record.content_type,
            size: record.size,
            etag: record.etag,
        }
    }

    /// Returns the attachments of a document, by name.
    pub fn attachments_of(&self, document_id: &str) -> Result<Vec<AttachmentInfo>, ReadError> {
        let table = self.txn.open_table(ATTACHMENTS)?;
        let doc_key = key_of(document_id);
        let mut found = Vec::new();
        for entry in table
            .range((doc_key.as_str(), "")..)
            .map_err(StorageError::from)?
        {
            let (key, value) = entry.map_err(StorageError::from)?;
            if key.value().0 != doc_key {
                break;
            }
            found.push(self.attachment_info(AttachmentRecord::decode(value.value())?));
        }
        Ok(found)
    }

    fn to_document(&self, record: DocumentRecord) -> Result<Document, ReadError> {
        let attachments = if record
            .flags
            .contains(crate::record::DocumentFlags::HAS_ATTACHMENTS)
        {
            self.attachments_of(&record.id)?
        } else {
            Vec::new()
        };
        Ok(Document {
            change_vector: self.change_vector(record.etag),
            id: record.id,
            collection: record.collection,
            etag: record.etag,
            created_etag: record.created_etag,
            last_modified: record.last_modified,
            flags: record.flags,
            metadata: record.metadata,
            body: record.body,
            attachments,
        })
    }
}

enum KeyRange {
    /// A collection's index; the records are read by [`DocumentIter::records`].
    Collection(redb::Range<'static, (&'static str, u64), ()>),
    All(redb::Range<'static, u64, &'static [u8]>),
}

/// How far (in etags) the records cursor steps forward before a lookup from the root is
/// cheaper: a step costs a few comparisons within a leaf, a lookup a page read per level.
const MAX_CURSOR_STEPS: u64 = 32;

/// Documents in etag order; see [`Snapshot::documents_after`].
pub struct DocumentIter<'a> {
    snapshot: &'a Snapshot,
    keys: KeyRange,
    /// With a collection, a cursor over the records that follows its index: the records of
    /// one collection are usually close together in etag order (often all of the database's),
    /// so stepping the cursor forward costs far less than a lookup from the root per document.
    records: Option<redb::Range<'static, u64, &'static [u8]>>,
}

impl DocumentIter<'_> {
    /// The record at `etag`, read by the cursor `records` (moved forward, or opened at
    /// `etag` when it is behind by more than [`MAX_CURSOR_STEPS`] or not open).
    fn record_at(
        snapshot: &Snapshot,
        records: &mut Option<redb::Range<'static, u64, &'static [u8]>>,
        etag: Etag,
    ) -> Result<DocumentRecord, ReadError> {
        let mut steps = 0;
        loop {
            let cursor = match records {
                Some(cursor) if steps < MAX_CURSOR_STEPS => cursor,
                _ => records.insert(snapshot.records.range(etag..).map_err(StorageError::from)?),
            };
            let Some(entry) = cursor.next() else {
                break;
            };
            let (key, value) = entry.map_err(StorageError::from)?;
            let found = key.value();
            if found == etag {
                return Ok(DocumentRecord::decode(value.value())?);
            }
            if found > etag {
                break;
            }
            // Only how far the cursor is behind matters here, not how many records it passed:
            // etags between two of the collection's documents are mostly other documents.
            steps = if etag - found > MAX_CURSOR_STEPS {
                MAX_CURSOR_STEPS
            } else {
                steps + 1
            };
        }
        // The cursor is past the etag: the index points at a record that is not there.
        *records = None;
        Err(StorageError::Corrupted {
            table: "docs",
            reason: format!("index points at missing etag {etag}"),
        }
        .into())
    }
}

impl Iterator for DocumentIter<'_> {
    type Item = Result<Document, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = match &mut self.keys {
            KeyRange::Collection(keys) => match keys.next()? {
                Ok((key, _)) => Self::record_at(self.snapshot, &mut self.records, key.value().1),
                Err(error) => Err(StorageError::from(error).into()),
            },
            KeyRange::All(range) => match range.next()? {
                Ok((_, value)) => DocumentRecord::decode(value.value()).map_err(ReadError::from),
                Err(error) => Err(StorageError::from(error).into()),
            },
        };
        Some(record.and_then(|record| self.snapshot.to_document(record)))
    }
}

enum TombstoneKeys {
    Collection(redb::Range<'static, (&'static str, u64), ()>),
    All(redb::Range<'static, u64, &'static [u8]>),
}

/// Tombstones in etag order; see [`Snapshot::tombstones_after`].
pub struct TombstoneIter {
    tombstones: ReadOnlyTable<u64, &'static [u8]>,
    etags: TombstoneKeys,
}

impl Iterator for TombstoneIter {
    type Item = Result<Tombstone, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let decoded = match &mut self.etags {
            TombstoneKeys::All(range) => match range.next()? {
                Ok((_, value)) => decode_tombstone(value.value()),
                Err(error) => Err(error.into()),
            },
            TombstoneKeys::Collection(range) => match range.next()? {
                Ok((key, _)) => match self.tombstones.get(key.value().1) {
                    Ok(Some(value)) => decode_tombstone(value.value()),
                    Ok(None) => Err(StorageError::Corrupted {
                        table: "tombstones_by_collection",
                        reason: format!("index points at missing tombstone {}", key.value().1),
                    }),
                    Err(error) => Err(error.into()),
                },
                Err(error) => Err(error.into()),
            },
        };
        Some(decoded.map_err(ReadError::from))
    }
}

pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64, StorageError> {
    let Ok(array) = <[u8; 8]>::try_from(bytes) else {
        return Err(StorageError::Corrupted {
            table: "meta",
            reason: "expected an 8-byte integer".to_owned(),
        });
    };
    Ok(u64::from_le_bytes(array))
}

impl From<redb::StorageError> for ReadError {
    fn from(error: redb::StorageError) -> Self {
        ReadError::Storage(error.into())
    }
}

impl From<redb::TableError> for ReadError {
    fn from(error: redb::TableError) -> Self {
        ReadError::Storage(error.into())
    }
}
