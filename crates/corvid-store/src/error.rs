//! Errors, split by operation so callers match only what their operation can produce.

use std::borrow::Cow;

/// A failure of the storage engine underneath: I/O, corruption, or a broken invariant of the
/// file. Always loud; never "repaired" silently.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage i/o failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage engine failed: {0}")]
    Engine(#[source] Box<redb::Error>),
    #[error("corrupted record in table `{table}`: {reason}")]
    Corrupted { table: &'static str, reason: String },
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(error: $t) -> Self {
                StorageError::Engine(Box::new(error.into()))
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Errors of opening, creating or deleting a database.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("database `{name}` already exists")]
    AlreadyExists { name: String },
    #[error("database `{name}` does not exist")]
    NotFound { name: String },
    #[error("invalid database name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// A database id given by the caller ([`crate::Storage::create_database_with_id`]) is not
    /// one this store could have generated.
    #[error("invalid database id {id:?}: {reason}")]
    InvalidDatabaseId { id: String, reason: &'static str },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of a read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of a write request. A request that fails applies none of its operations.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The caller's change vector does not match the stored one (optimistic concurrency).
    #[error(
        "optimistic concurrency violation on `{id}`: expected change vector {expected:?}, actual {actual:?}"
    )]
    Concurrency {
        id: String,
        expected: String,
        actual: Option<String>,
    },
    /// An operation that needs an existing document (an attachment change) found none.
    #[error("document `{id}` does not exist")]
    DocumentMissing { id: String },
    /// The document id is not acceptable.
    #[error("invalid document id {id:?}: {reason}")]
    InvalidId {
        id: String,
        reason: Cow<'static, str>,
    },
    /// The document body is not acceptable (e.g. `@metadata` of the wrong type).
    #[error("invalid document `{id}`: {reason}")]
    InvalidDocument { id: String, reason: String },
    /// The attachment name is not acceptable.
    #[error("invalid attachment name {name:?} on `{id}`: {reason}")]
    InvalidAttachmentName {
        id: String,
        name: String,
        reason: Cow<'static, str>,
    },
    /// A request sent in parts ended without its `End`: its sender gave up (e.g. a later part
    /// was malformed), so none of it is written.
    #[error("the write request was abandoned before it was complete")]
    Abandoned,
    /// The database was deleted or closed while the request waited.
    #[error("database `{name}` is closed")]
    Closed { name: String },
    /// A replicated database could not commit the write on a majority of its group (no
    /// leader, a majority unreachable, or not connected to its group yet). The write may
    /// still be applied if its entry was proposed.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl WriteError {
    /// Returns true when the error is about this request's content rather than the storage,
    /// so the other requests merged into the same transaction can still commit.
    pub fn is_request_error(&self) -> bool {
        !matches!(
            self,
            WriteError::Storage(_) | WriteError::Closed { .. } | WriteError::Unavailable(_)
        )
    }

    /// Returns the serializable form of an error of a request's own content, or `None` for an
    /// error of the storage or of the database's state.
    pub fn to_request_error(&self) -> Option<RequestError> {
        let error = match self {
            WriteError::Concurrency {
                id,
                expected,
                actual,
            } => RequestError::Concurrency {
                id: id.clone(),
                expected: expected.clone(),
                actual: actual.clone(),
            },
            WriteError::DocumentMissing { id } => RequestError::DocumentMissing { id: id.clone() },
            WriteError::InvalidId { id, reason } => RequestError::InvalidId {
                id: id.clone(),
                reason: reason.to_string(),
            },
            WriteError::InvalidDocument { id, reason } => RequestError::InvalidDocument {
                id: id.clone(),
                reason: reason.clone(),
            },
            WriteError::InvalidAttachmentName { id, name, reason } => {
                RequestError::InvalidAttachmentName {
                    id: id.clone(),
                    name: name.clone(),
                    reason: reason.to_string(),
                }
            }
            WriteError::Abandoned
            | WriteError::Closed { .. }
            | WriteError::Storage(_)
            | WriteError::Unavailable(_) => {
                return None;
            }
        };
        Some(error)
    }
}

/// The serializable form of the [`WriteError`]s a request gets for its own content: every
/// member applying the same requests answers them with the same `RequestError`s, so one can be
/// sent to another node and turned back into the `WriteError` it was. Errors of the storage or
/// of the database's state (`Storage`, `Closed`, `Abandoned`) stay local and have no such form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RequestError {
    Concurrency {
        id: String,
        expected: String,
        actual: Option<String>,
    },
    DocumentMissing {
        id: String,
    },
    InvalidId {
        id: String,
        reason: String,
    },
    InvalidDocument {
        id: String,
        reason: String,
    },
    InvalidAttachmentName {
        id: String,
        name: String,
        reason: String,
    },
}

impl From<RequestError> for WriteError {
    fn from(error: RequestError) -> WriteError {
        match error {
            RequestError::Concurrency {
                id,
                expected,
                actual,
            } => WriteError::Concurrency {
                id,
                expected,
                actual,
            },
            RequestError::DocumentMissing { id } => WriteError::DocumentMissing { id },
            RequestError::InvalidId { id, reason } => WriteError::InvalidId {
                id,
                reason: reason.into(),
            },
            RequestError::InvalidDocument { id, reason } => {
                WriteError::InvalidDocument { id, reason }
            }
            RequestError::InvalidAttachmentName { id, name, reason } => {
                WriteError::InvalidAttachmentName {
                    id,
                    name,
                    reason: reason.into(),
                }
            }
        }
    }
}

impl From<redb::StorageError> for WriteError {
    fn from(error: redb::StorageError) -> Self {
        WriteError::Storage(error.into())
    }
}
