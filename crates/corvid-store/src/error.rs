//! Errors, split by operation so callers match only what their operation can produce.

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
    InvalidId { id: String, reason: &'static str },
    /// The document body is not acceptable (e.g. `@metadata` of the wrong type).
    #[error("invalid document `{id}`: {reason}")]
    InvalidDocument { id: String, reason: String },
    /// The attachment name is not acceptable.
    #[error("invalid attachment name {name:?} on `{id}`: {reason}")]
    InvalidAttachmentName {
        id: String,
        name: String,
        reason: &'static str,
    },
    /// A request sent in parts ended without its `End`: its sender gave up (e.g. a later part
    /// was malformed), so none of it is written.
    #[error("the write request was abandoned before it was complete")]
    Abandoned,
    /// The database was deleted or closed while the request waited.
    #[error("database `{name}` is closed")]
    Closed { name: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl WriteError {
    /// Returns true when the error is about this request's content rather than the storage,
    /// so the other requests merged into the same transaction can still commit.
    pub(crate) fn is_request_error(&self) -> bool {
        !matches!(self, WriteError::Storage(_) | WriteError::Closed { .. })
    }
}

impl From<redb::StorageError> for WriteError {
    fn from(error: redb::StorageError) -> Self {
        WriteError::Storage(error.into())
    }
}
