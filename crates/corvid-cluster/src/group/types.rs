//! The types a database group agrees on: an entry is a group of write requests with the
//! leader's time, and applying it answers each request.

use std::io::Cursor;

use corvid_store::{RequestError, Timestamp, WriteOp, WriteResult};
use serde::{Deserialize, Serialize};

use crate::types::{NodeId, NodeInfo};

/// One log entry of a database group: the requests the leader merged (each applied whole or
/// not at all, as the writer merges them on a single node) and the time every timestamp they
/// write carries, fixed by the leader so every member writes the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbEntry {
    pub now: Timestamp,
    pub requests: Vec<Vec<WriteOp>>,
}

/// The outcome of one request: its results, or the error of its own content (the same on
/// every member).
pub type RequestOutcome = Result<Vec<WriteResult>, RequestError>;

/// What applying an entry did: its log index and one outcome per request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DbApplied {
    pub index: u64,
    pub outcomes: Vec<RequestOutcome>,
}

openraft::declare_raft_types!(
    /// A database group's openraft types.
    pub DbTypeConfig:
        D = DbEntry,
        R = DbApplied,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<DbTypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
