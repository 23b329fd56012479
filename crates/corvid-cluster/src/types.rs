//! The types the cluster's Raft group agrees on: nodes (a tag and a URL), commands and their
//! outcome, and openraft's type configuration.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// openraft's id of a node: its tag read as a number ([`node_id`]), so every node derives the
/// same id from the same tag and a tag is never reused under another id.
pub type NodeId = u64;

/// A member of the cluster, as the membership configuration stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// RavenDB's node tag: one to four capital letters (`A`, `B`, …).
    pub tag: String,
    /// The URL other nodes and clients reach it at (`http://127.0.0.2:8080`).
    pub url: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.tag, self.url)
    }
}

/// A change to the cluster's records, agreed through the log and applied on every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Sets a record (`key` → JSON value).
    Put { key: String, value: Value },
    /// Removes a record; removing an absent one is a no-op.
    Delete { key: String },
}

/// What applying a command did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The log index the command was applied at: RavenDB's `RaftCommandIndex`.
    pub index: u64,
}

openraft::declare_raft_types!(
    /// The cluster group's openraft types.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The longest node tag RavenDB accepts.
pub const MAX_TAG_LEN: usize = 4;

/// Why a node tag is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid node tag `{tag}`: a node tag is one to four capital letters A-Z (such as `A` or `NODE`)"
)]
pub struct InvalidTag {
    pub tag: String,
}

/// Returns the openraft id of a node tag: the letters read as a base-27 number (`A` = 1,
/// `B` = 2, `AA` = 28), so ids are unique per tag and never 0.
pub fn node_id(tag: &str) -> Result<NodeId, InvalidTag> {
    let invalid = || InvalidTag {
        tag: tag.to_owned(),
    };
    if tag.is_empty() || tag.len() > MAX_TAG_LEN {
        return Err(invalid());
    }
    let mut id = 0u64;
    for byte in tag.bytes() {
        if !byte.is_ascii_uppercase() {
            return Err(invalid());
        }
        id = id * 27 + u64::from(byte - b'A' + 1);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_map_to_distinct_ids() {
        assert_eq!(node_id("A"), Ok(1));
        assert_eq!(node_id("B"), Ok(2));
        assert_eq!(node_id("Z"), Ok(26));
        assert_eq!(node_id("AA"), Ok(28));
        assert_ne!(node_id("BA"), node_id("AB"));
        assert_eq!(node_id("ZZZZ"), Ok(26 * (27 * 27 * 27 + 27 * 27 + 27 + 1)));
    }

    #[test]
    fn bad_tags_are_refused() {
        for tag in ["", "a", "A1", "ABCDE", "Ä", "A B", "../"] {
            assert!(node_id(tag).is_err(), "{tag:?} was accepted");
        }
    }
}
