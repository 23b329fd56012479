//! The redb tables of one database file. `docs/design/storage-format.md` describes them.

use redb::TableDefinition;

/// Database-level values: `db_id`, `name`, `last_etag`, `format_version`.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Lower-cased document id → the etag of its current version.
pub(crate) const DOCS: TableDefinition<&str, u64> = TableDefinition::new("docs");
/// Etag → [`crate::record::DocumentRecord`]: the documents themselves, in etag order, so the
/// change feed is one sequential scan and new versions are appended at the end.
pub(crate) const DOCS_BY_ETAG: TableDefinition<u64, &[u8]> = TableDefinition::new("docs_by_etag");
/// (lower-cased collection, etag) → nothing; the record is in [`DOCS_BY_ETAG`].
pub(crate) const DOCS_BY_COLLECTION: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("docs_by_collection");
/// Etag → tombstone record.
pub(crate) const TOMBSTONES: TableDefinition<u64, &[u8]> = TableDefinition::new("tombstones");
/// (lower-cased collection, etag) → nothing; the record is in [`TOMBSTONES`].
pub(crate) const TOMBSTONES_BY_COLLECTION: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("tombstones_by_collection");
/// Lower-cased collection → display name and document count.
pub(crate) const COLLECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("collections");
/// (lower-cased document id, lower-cased attachment name) → attachment record.
pub(crate) const ATTACHMENTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("attachments");
/// Content hash → content bytes, stored once however many attachments share it.
pub(crate) const BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("blobs");
/// Content hash → number of attachments referring to it.
pub(crate) const BLOB_REFS: TableDefinition<&str, u64> = TableDefinition::new("blob_refs");
/// Lower-cased identity prefix (`users/`) → last value handed out.
pub(crate) const IDENTITIES: TableDefinition<&str, u64> = TableDefinition::new("identities");

/// Database-level settings other crates own, as `key → bytes` (ETL configurations, connection
/// strings, ETL progress). Keys are namespaced by their owner (`etl/…`).
pub(crate) const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");

/// A replicated database's log position and membership, written with each entry applied
/// (`Database::apply_marked_async`); absent from databases that are not replicated.
pub(crate) const REPLICATION: TableDefinition<&str, &[u8]> = TableDefinition::new("replication");

/// The on-disk format this code writes and reads.
pub(crate) const FORMAT_VERSION: u64 = 1;
