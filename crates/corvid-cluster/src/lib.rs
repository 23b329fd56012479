//! Corvid's cluster (docs/design/cluster.md): nodes that agree, through openraft, on the
//! cluster's membership and records.
//!
//! [`Cluster`] is this node's member of the cluster group: its Raft log and state machine live
//! in `<data>/cluster.redb` ([`store`]), its messages go to the other nodes over HTTP
//! ([`network`]; the server's `/cluster/raft/…` routes hand the replies back in), and it
//! answers RavenDB's cluster endpoints (add and remove a node, the topology).
//!
//! **Invariant:** nothing here elects, orders or commits on its own: openraft does, and this
//! crate supplies its storage and transport.

mod cluster;
mod error;
pub mod group;
pub mod network;
pub use network::PeerStatus;
pub mod store;
mod types;

pub use cluster::{
    Cluster, ClusterOptions, JoinRequest, LeaveRequest, NodeReport, RelayedAnswer, RelayedRequest,
    TOPOLOGY_ID_KEY, Topology, TopologyNode,
};
pub use error::ClusterError;
pub use group::{DatabaseGroup, ForwardedAnswer, ForwardedWrite, log_path};
pub use openraft::ServerState;
pub use types::{Applied, Command, InvalidTag, NodeId, NodeInfo, TypeConfig, node_id};

#[cfg(test)]
mod store_tests;
