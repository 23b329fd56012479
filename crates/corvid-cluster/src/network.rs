//! Raft's messages between nodes: MessagePack (named fields, so openraft's optional fields
//! read back; document bodies travel as bytes, not escaped again as JSON would) over HTTP,
//! `POST {url}/cluster/raft/{group}/{append|vote|snapshot}` on the other node's own listener
//! (the server's routes hand them to [`crate::Cluster`]). `group` names the Raft group (the
//! cluster's is `cluster`), so one node can hold several groups behind one route.
//!
//! A reply is the receiving node's `Result` as JSON, so an error raised there (a stale term, a
//! node shutting down) comes back as openraft's `RemoteError`; a node that cannot be reached is
//! `Unreachable`, which openraft backs off from.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RaftNetwork, RaftNetworkFactory, RaftTypeConfig};
use serde::{Serialize, de::DeserializeOwned};

use crate::types::{NodeId, NodeInfo};

/// The content type of Raft messages and of writes forwarded to a database group's leader.
pub const MESSAGE_TYPE: &str = "application/msgpack";

/// Encodes a message between nodes (MessagePack with field names).
pub fn encode(value: &impl Serialize) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(value)
}

/// Decodes a message between nodes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

/// The path prefix of the Raft routes.
pub const RAFT_PATH: &str = "/cluster/raft";

/// What this node last heard from a peer: RavenDB's per-node `Status` in the topology, and
/// how the leader tells a healthy node (it answered a heartbeat lately) from a lost one.
#[derive(Debug, Clone, Default)]
pub struct PeerStatus {
    /// When the last message was answered (monotonic, and as wall-clock time for display).
    pub last_reply: Option<(Instant, SystemTime)>,
    /// When the last message was sent.
    pub last_sent: Option<SystemTime>,
    /// Why the last message failed, if it did.
    pub error: Option<String>,
}

/// The peers' statuses, by node id.
pub type PeerStatuses = Arc<Mutex<BTreeMap<NodeId, PeerStatus>>>;

/// Makes a connection per peer of one Raft group; all share one HTTP client (and its
/// connection pool).
#[derive(Clone)]
pub struct HttpNetwork {
    client: reqwest::Client,
    statuses: PeerStatuses,
    group: Arc<str>,
}

impl HttpNetwork {
    pub fn new(client: reqwest::Client, group: &str) -> HttpNetwork {
        HttpNetwork {
            client,
            statuses: PeerStatuses::default(),
            group: group.into(),
        }
    }

    /// What this node last heard from each peer it sent messages to.
    pub fn statuses(&self) -> BTreeMap<NodeId, PeerStatus> {
        self.statuses
            .lock()
            .unwrap_or_else(|it| it.into_inner())
            .clone()
    }
}

impl<C> RaftNetworkFactory<C> for HttpNetwork
where
    C: RaftTypeConfig<NodeId = NodeId, Node = NodeInfo>,
{
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerConnection {
        PeerConnection {
            client: self.client.clone(),
            statuses: self.statuses.clone(),
            target,
            base: format!(
                "{}{RAFT_PATH}/{}",
                node.url.trim_end_matches('/'),
                self.group
            ),
        }
    }
}

/// The messages to one peer.
pub struct PeerConnection {
    client: reqwest::Client,
    statuses: PeerStatuses,
    target: NodeId,
    base: String,
}

/// A reply that was not the peer's answer (an HTTP error status or an unreadable body).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadReply(String);

impl PeerConnection {
    fn note(&self, outcome: Result<(), String>) {
        let mut statuses = self.statuses.lock().unwrap_or_else(|it| it.into_inner());
        let status = statuses.entry(self.target).or_default();
        status.last_sent = Some(SystemTime::now());
        match outcome {
            Ok(()) => {
                status.last_reply = Some((Instant::now(), SystemTime::now()));
                status.error = None;
            }
            Err(error) => status.error = Some(error),
        }
    }

    async fn call<Req, Resp, E>(
        &self,
        kind: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let outcome = self.send(kind, request, timeout).await;
        self.note(match &outcome {
            Ok(_) | Err(RPCError::RemoteError(_)) => Ok(()),
            Err(error) => Err(error.to_string()),
        });
        outcome
    }

    async fn send<Req, Resp, E>(
        &self,
        kind: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let url = format!("{}/{kind}", self.base);
        let body = encode(request).map_err(|error| {
            RPCError::Network(NetworkError::new(&BadReply(format!(
                "cannot encode a Raft message: {error}"
            ))))
        })?;
        let reply = self
            .client
            .post(&url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, MESSAGE_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|error| {
                if error.is_connect() || error.is_timeout() {
                    RPCError::Unreachable(Unreachable::new(&error))
                } else {
                    RPCError::Network(NetworkError::new(&error))
                }
            })?;
        let status = reply.status();
        let body = reply
            .bytes()
            .await
            .map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(RPCError::Network(NetworkError::new(&BadReply(format!(
                "{url} answered {status}: {}",
                text.chars().take(300).collect::<String>()
            )))));
        }
        let answer: Result<Resp, RaftError<NodeId, E>> =
            rmp_serde::from_slice(&body).map_err(|error| {
                RPCError::Network(NetworkError::new(&BadReply(format!(
                    "{url} answered something that is not a Raft reply: {error}"
                ))))
            })?;
        answer.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
    }
}

impl<C> RaftNetwork<C> for PeerConnection
where
    C: RaftTypeConfig<NodeId = NodeId, Node = NodeInfo>,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call("append", &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call("vote", &rpc, option.hard_ttl()).await
    }
}

/// Answers a Raft message of `kind` (`append`, `vote`, `snapshot`) for `raft`: the body is the
/// request as JSON, the answer this node's `Result` as JSON (the other side of
/// [`PeerConnection`]).
pub(crate) async fn answer<C>(
    raft: &openraft::Raft<C>,
    kind: &str,
    body: &[u8],
) -> Result<Vec<u8>, crate::error::ClusterError>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = NodeInfo>,
{
    use crate::error::ClusterError;
    fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClusterError> {
        rmp_serde::from_slice(body)
            .map_err(|error| ClusterError::BadRequest(format!("not a Raft message: {error}")))
    }
    let answer = match kind {
        "append" => encode(&raft.append_entries(parse(body)?).await),
        "vote" => encode(&raft.vote(parse(body)?).await),
        "snapshot" => encode(&raft.install_snapshot(parse(body)?).await),
        other => {
            return Err(ClusterError::NotFound(format!(
                "no Raft message is called `{other}`"
            )));
        }
    };
    answer.map_err(|error| ClusterError::Internal(format!("cannot encode a Raft reply: {error}")))
}

/// The leader a Raft instance knows of (its tag and URL), if any.
pub(crate) fn known_leader<C>(raft: &openraft::Raft<C>) -> Option<NodeInfo>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = NodeInfo>,
{
    let metrics = raft.metrics().borrow().clone();
    let leader = metrics.current_leader?;
    metrics
        .membership_config
        .membership()
        .get_node(&leader)
        .cloned()
}

/// Whether node `me` leads now, as its Raft instance sees it.
pub(crate) fn leads<C>(raft: &openraft::Raft<C>, me: NodeId) -> bool
where
    C: RaftTypeConfig<NodeId = NodeId, Node = NodeInfo>,
{
    let metrics = raft.metrics().borrow().clone();
    metrics.current_leader == Some(me) && metrics.state == openraft::ServerState::Leader
}
