//! What a cluster operation can fail with, in terms a server maps to status codes.

use openraft::error::{ClientWriteError, Fatal, RaftError};
use serde_json::Value;

use crate::types::{NodeId, NodeInfo};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The request is wrong (a bad tag or URL, a duplicate, removing the last node).
    #[error("{0}")]
    BadRequest(String),
    /// The node named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A node to add cannot be reached, or does not answer as a Corvid node.
    #[error("{0}")]
    Unreachable(String),
    /// No leader is known or reachable: no majority.
    #[error("{0}")]
    NoLeader(String),
    /// Another node refused or failed the operation; its status and message.
    #[error("{message}")]
    Remote { status: u16, message: String },
    #[error("{0}")]
    Internal(String),
}

impl ClusterError {
    pub(crate) fn from_fatal(error: Fatal<NodeId>) -> ClusterError {
        ClusterError::Internal(format!("the cluster's Raft instance stopped: {error}"))
    }

    pub(crate) fn from_write(
        error: RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>,
    ) -> ClusterError {
        match error {
            RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
                ClusterError::NoLeader(match forward.leader_node {
                    Some(leader) => format!(
                        "this node is no longer the cluster's leader; the leader is `{}` ({})",
                        leader.tag, leader.url
                    ),
                    None => "the cluster has no leader at the moment; try again".to_owned(),
                })
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(error)) => {
                ClusterError::BadRequest(format!("the membership change was refused: {error}"))
            }
            RaftError::Fatal(fatal) => ClusterError::from_fatal(fatal),
        }
    }

    /// Reads another node's answer: its JSON on success, its error (RavenDB's `{Message}`)
    /// otherwise.
    pub(crate) async fn from_reply(reply: reqwest::Response) -> Result<Value, ClusterError> {
        let status = reply.status();
        let body = reply.bytes().await.map_err(|error| {
            ClusterError::Unreachable(format!("the answer was cut short: {error}"))
        })?;
        let value: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            return Ok(value.unwrap_or(Value::Null));
        }
        let message = value
            .as_ref()
            .and_then(|it| it.get("Message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
        Err(ClusterError::Remote {
            status: status.as_u16(),
            message,
        })
    }
}

impl From<openraft::StorageError<NodeId>> for ClusterError {
    fn from(error: openraft::StorageError<NodeId>) -> ClusterError {
        ClusterError::Internal(format!("the cluster file failed: {error}"))
    }
}
