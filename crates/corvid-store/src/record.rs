//! The values the store keeps, and their on-disk encoding.
//!
//! Every record starts with a format version byte. Strings are a little-endian `u32` length
//! followed by UTF-8 bytes; the last field of a document (its body) runs to the end of the record.
//! `docs/design/storage-format.md` describes each table and record.

use std::fmt::Write as _;

use crate::error::StorageError;
use crate::time::Timestamp;

/// A database-wide, strictly increasing write sequence number. Every document put, delete and
/// attachment change takes the next one.
pub type Etag = u64;

const RECORD_VERSION: u8 = 1;
/// Document records are at version 2 (version 1 had no creation etag; it reads as 0).
const DOCUMENT_RECORD_VERSION: u8 = 2;

/// Flags RavenDB shows in `@metadata.@flags`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DocumentFlags(pub u32);

impl DocumentFlags {
    pub const HAS_ATTACHMENTS: DocumentFlags = DocumentFlags(1);

    /// Returns true when every flag of `other` is set.
    pub fn contains(self, other: DocumentFlags) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Returns RavenDB's comma-separated rendering, or `None` when no flag is set.
    pub fn render(self) -> Option<&'static str> {
        if self.contains(DocumentFlags::HAS_ATTACHMENTS) {
            return Some("HasAttachments");
        }
        None
    }
}

/// What the store knows of one attachment of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    pub name: String,
    /// Base64 BLAKE2b-256 of the content, as RavenDB computes it; equal content is stored once.
    pub hash: String,
    pub content_type: String,
    pub size: u64,
    pub etag: Etag,
    pub change_vector: String,
}

/// A stored document, as read from a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The id as first written (case preserved).
    pub id: String,
    /// The collection name as first written.
    pub collection: String,
    pub etag: Etag,
    /// The etag of the first version of this document since it was last created: no earlier
    /// version of the current document exists. It is 0 when not known (a document stored by
    /// an older Corvid). ETL uses it to know a document is new since its last batch.
    pub created_etag: Etag,
    pub change_vector: String,
    pub last_modified: Timestamp,
    pub flags: DocumentFlags,
    /// The user's metadata (a JSON object, `@collection` included), without server-owned fields.
    pub metadata: String,
    /// The document's JSON object, without `@metadata`.
    pub body: String,
    /// Filled when the document has attachments.
    pub attachments: Vec<AttachmentInfo>,
}

impl Document {
    /// Writes the document as RavenDB returns it: the body with a `@metadata` object holding the
    /// user's metadata and the server-owned `@id`, `@change-vector`, `@last-modified`, `@flags`
    /// and `@attachments`.
    pub fn write_json(&self, out: &mut String) {
        self.write_json_with(out, true);
    }

    /// Returns the document as Raven ETL sends it (and RavenDB's ETL test shows it): the user's
    /// metadata and `@attachments`, without the fields the destination owns (`@id`,
    /// `@change-vector`, `@last-modified`, `@flags`).
    pub fn to_etl_json_string(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + self.metadata.len() + 64);
        self.write_json_with(&mut out, false);
        out
    }

    fn write_json_with(&self, out: &mut String, server_fields: bool) {
        let body_inner = inner_of_object(&self.body);
        let metadata_inner = inner_of_object(&self.metadata);
        out.push('{');
        out.push_str(body_inner);
        if !body_inner.trim().is_empty() {
            out.push(',');
        }
        out.push_str("\"@metadata\":{");
        out.push_str(metadata_inner);
        let mut separate = !metadata_inner.trim().is_empty();
        if server_fields {
            if separate {
                out.push(',');
            }
            push_json_field(out, "@id", &self.id);
            out.push(',');
            push_json_field(out, "@change-vector", &self.change_vector);
            out.push(',');
            push_json_field(out, "@last-modified", &self.last_modified.to_iso());
            if let Some(flags) = self.flags.render() {
                out.push(',');
                push_json_field(out, "@flags", flags);
            }
            separate = true;
        }
        if !self.attachments.is_empty() {
            if separate {
                out.push(',');
            }
            out.push_str("\"@attachments\":[");
            for (idx, attachment) in self.attachments.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                out.push('{');
                push_json_field(out, "Name", &attachment.name);
                out.push(',');
                push_json_field(out, "Hash", &attachment.hash);
                out.push(',');
                push_json_field(out, "ContentType", &attachment.content_type);
                let _ = write!(out, ",\"Size\":{}}}", attachment.size);
            }
            out.push(']');
        }
        out.push_str("}}");
    }

    /// Returns the document as RavenDB returns it (see [`Document::write_json`]).
    pub fn to_json_string(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + self.metadata.len() + 160);
        self.write_json(&mut out);
        out
    }
}

/// What a delete left behind, so ETL can propagate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub etag: Etag,
    pub kind: TombstoneKind,
    /// The deleted document's id (or the attachment's document id).
    pub id: String,
    pub collection: String,
    pub change_vector: String,
    pub deleted_at: Timestamp,
}

/// What was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TombstoneKind {
    Document,
    Attachment { name: String },
}

pub(crate) fn push_json_field(out: &mut String, key: &str, value: &str) {
    push_json_string(out, key);
    out.push(':');
    push_json_string(out, value);
}

/// Appends `value` as a JSON string literal (quoted and escaped).
///
/// Runs of characters that need no escape are copied whole: only ASCII bytes are ever
/// escaped, so every split falls on a character boundary.
pub fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    let mut copied_up_to = 0;
    for (idx, byte) in value.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&value[copied_up_to..idx]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escaped);
        }
        copied_up_to = idx + 1;
    }
    out.push_str(&value[copied_up_to..]);
    out.push('"');
}

/// Returns what is between the braces of a compact JSON object text.
fn inner_of_object(object: &str) -> &str {
    let trimmed = object.trim();
    if trimmed.len() >= 2 && trimmed.starts_with('{') && trimmed.ends_with('}') {
        return &trimmed[1..trimmed.len() - 1];
    }
    ""
}

/// The parts of a document record that do not depend on the database (id, etag…).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DocumentRecord {
    pub etag: Etag,
    /// See [`Document::created_etag`].
    pub created_etag: Etag,
    pub last_modified: Timestamp,
    pub flags: DocumentFlags,
    pub id: String,
    pub collection: String,
    pub metadata: String,
    pub body: String,
}

impl DocumentRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            40 + self.id.len() + self.collection.len() + self.metadata.len() + self.body.len(),
        );
        out.push(DOCUMENT_RECORD_VERSION);
        out.extend_from_slice(&self.etag.to_le_bytes());
        out.extend_from_slice(&self.created_etag.to_le_bytes());
        out.extend_from_slice(&self.last_modified.0.to_le_bytes());
        out.extend_from_slice(&self.flags.0.to_le_bytes());
        put_str(&mut out, &self.id);
        put_str(&mut out, &self.collection);
        put_str(&mut out, &self.metadata);
        out.extend_from_slice(self.body.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<DocumentRecord, StorageError> {
        let (mut reader, version) =
            Reader::with_versions(bytes, "docs", 1..=DOCUMENT_RECORD_VERSION)?;
        Ok(DocumentRecord {
            etag: reader.u64()?,
            created_etag: if version >= 2 { reader.u64()? } else { 0 },
            last_modified: Timestamp(reader.u64()? as i64),
            flags: DocumentFlags(reader.u32()?),
            id: reader.string()?,
            collection: reader.string()?,
            metadata: reader.string()?,
            body: reader.rest()?,
        })
    }
}

pub(crate) fn encode_tombstone(tombstone: &Tombstone) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + tombstone.id.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&tombstone.etag.to_le_bytes());
    out.extend_from_slice(&tombstone.deleted_at.0.to_le_bytes());
    put_str(&mut out, &tombstone.id);
    put_str(&mut out, &tombstone.collection);
    put_str(&mut out, &tombstone.change_vector);
    match &tombstone.kind {
        TombstoneKind::Document => out.push(0),
        TombstoneKind::Attachment { name } => {
            out.push(1);
            put_str(&mut out, name);
        }
    }
    out
}

pub(crate) fn decode_tombstone(bytes: &[u8]) -> Result<Tombstone, StorageError> {
    let mut reader = Reader::new(bytes, "tombstones")?;
    let etag = reader.u64()?;
    let deleted_at = Timestamp(reader.u64()? as i64);
    let id = reader.string()?;
    let collection = reader.string()?;
    let change_vector = reader.string()?;
    let kind = match reader.u8()? {
        0 => TombstoneKind::Document,
        1 => TombstoneKind::Attachment {
            name: reader.string()?,
        },
        other => return Err(reader.corrupted(format!("unknown tombstone kind {other}"))),
    };
    Ok(Tombstone {
        etag,
        kind,
        id,
        collection,
        change_vector,
        deleted_at,
    })
}

/// An attachment as stored (the change vector is derived from the etag on read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttachmentRecord {
    pub etag: Etag,
    pub size: u64,
    pub name: String,
    pub hash: String,
    pub content_type: String,
}

impl AttachmentRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.name.len() + self.hash.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.etag.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        put_str(&mut out, &self.name);
        put_str(&mut out, &self.hash);
        put_str(&mut out, &self.content_type);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<AttachmentRecord, StorageError> {
        let mut reader = Reader::new(bytes, "attachments")?;
        Ok(AttachmentRecord {
            etag: reader.u64()?,
            size: reader.u64()?,
            name: reader.string()?,
            hash: reader.string()?,
            content_type: reader.string()?,
        })
    }
}

/// A collection's display name and document count.
pub(crate) fn encode_collection(name: &str, count: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(13 + name.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&count.to_le_bytes());
    put_str(&mut out, name);
    out
}

pub(crate) fn decode_collection(bytes: &[u8]) -> Result<(String, u64), StorageError> {
    let mut reader = Reader::new(bytes, "collections")?;
    let count = reader.u64()?;
    Ok((reader.string()?, count))
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    table: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], table: &'static str) -> Result<Reader<'a>, StorageError> {
        Reader::with_versions(bytes, table, RECORD_VERSION..=RECORD_VERSION).map(|(it, _)| it)
    }

    /// A reader past the version byte, which must be in `versions`; returns the version too.
    fn with_versions(
        bytes: &'a [u8],
        table: &'static str,
        versions: std::ops::RangeInclusive<u8>,
    ) -> Result<(Reader<'a>, u8), StorageError> {
        let mut reader = Reader {
            bytes,
            pos: 0,
            table,
        };
        let version = reader.u8()?;
        if !versions.contains(&version) {
            return Err(reader.corrupted(format!("unknown record version {version}")));
        }
        Ok((reader, version))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        let end = self.pos.checked_add(n).filter(|it| *it <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.corrupted("record is truncated".to_owned()));
        };
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, StorageError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(buf))
    }

    fn u64(&mut self) -> Result<u64, StorageError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    fn string(&mut self) -> Result<String, StorageError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        self.utf8(bytes)
    }

    fn rest(&mut self) -> Result<String, StorageError> {
        let bytes = &self.bytes[self.pos..];
        self.pos = self.bytes.len();
        self.utf8(bytes)
    }

    fn utf8(&self, bytes: &[u8]) -> Result<String, StorageError> {
        match std::str::from_utf8(bytes) {
            Ok(it) => Ok(it.to_owned()),
            Err(_) => Err(self.corrupted("string is not UTF-8".to_owned())),
        }
    }

    fn corrupted(&self, reason: String) -> StorageError {
        StorageError::Corrupted {
            table: self.table,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_round_trip_through_a_json_parser() {
        for value in [
            "",
            "plain",
            "quote \" and backslash \\ at once",
            "\n\r\t\u{0}\u{1f}\u{7f}",
            "é ü 中文 🦀 mixed\"with\\escapes\n",
            "\"",
            "ends with \\",
        ] {
            let mut out = String::from("x");
            push_json_string(&mut out, value);
            let parsed: String = serde_json::from_str(&out[1..]).unwrap();
            assert_eq!(parsed, value);
        }
    }

    #[test]
    fn document_record_round_trips() {
        let record = DocumentRecord {
            etag: 42,
            created_etag: 40,
            last_modified: Timestamp(123),
            flags: DocumentFlags::HAS_ATTACHMENTS,
            id: "Users/1".into(),
            collection: "Users".into(),
            metadata: r#"{"@collection":"Users"}"#.into(),
            body: r#"{"Name":"Ann"}"#.into(),
        };
        assert_eq!(DocumentRecord::decode(&record.encode()).unwrap(), record);
        assert!(DocumentRecord::decode(&record.encode()[..10]).is_err());
    }

    #[test]
    fn version_1_document_records_read_with_an_unknown_creation() {
        let record = DocumentRecord {
            etag: 42,
            created_etag: 40,
            last_modified: Timestamp(123),
            flags: DocumentFlags::default(),
            id: "Users/1".into(),
            collection: "Users".into(),
            metadata: "{}".into(),
            body: "{}".into(),
        };
        let mut v1 = record.encode();
        v1.drain(9..17);
        v1[0] = 1;
        let decoded = DocumentRecord::decode(&v1).unwrap();
        assert_eq!(decoded.created_etag, 0);
        assert_eq!(decoded.etag, 42);
        assert_eq!(decoded.id, "Users/1");
        let mut v3 = record.encode();
        v3[0] = 3;
        assert!(DocumentRecord::decode(&v3).is_err());
    }

    #[test]
    fn tombstone_round_trips() {
        let tombstone = Tombstone {
            etag: 7,
            kind: TombstoneKind::Attachment {
                name: "photo.png".into(),
            },
            id: "users/1".into(),
            collection: "Users".into(),
            change_vector: "A:7-x".into(),
            deleted_at: Timestamp(5),
        };
        assert_eq!(
            decode_tombstone(&encode_tombstone(&tombstone)).unwrap(),
            tombstone
        );
    }

    #[test]
    fn writes_documents_with_server_metadata() {
        let doc = Document {
            id: "users/1".into(),
            collection: "Users".into(),
            etag: 1,
            created_etag: 1,
            change_vector: "A:1-abc".into(),
            last_modified: Timestamp(0),
            flags: DocumentFlags::default(),
            metadata: r#"{"@collection":"Users"}"#.into(),
            body: r#"{"Name":"A\"nn"}"#.into(),
            attachments: vec![],
        };
        let json: serde_json::Value = serde_json::from_str(&doc.to_json_string()).unwrap();
        assert_eq!(json["Name"], "A\"nn");
        assert_eq!(json["@metadata"]["@id"], "users/1");
        assert_eq!(json["@metadata"]["@collection"], "Users");
        assert_eq!(json["@metadata"]["@change-vector"], "A:1-abc");

        let empty = Document {
            body: "{}".into(),
            metadata: "{}".into(),
            ..doc
        };
        let json: serde_json::Value = serde_json::from_str(&empty.to_json_string()).unwrap();
        assert_eq!(json["@metadata"]["@id"], "users/1");
    }
}
