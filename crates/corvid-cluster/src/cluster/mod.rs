//! [`Cluster`]: this node's member of the cluster group — its openraft instance, the cluster's
//! records, and the operations behind RavenDB's cluster endpoints (add and remove a node,
//! the topology).
//!
//! A node starts as a cluster of one (itself, the leader), so a single `corvid serve` behaves
//! as before. Adding a node to a cluster makes that node drop its own cluster of one (it must
//! hold no databases and no other member), take the tag it is given, and wait to be sent the
//! cluster's log; the leader adds it as a learner, waits until it has caught up, then makes it
//! a voter through openraft's joint consensus.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::{ChangeMembers, Config, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ClusterError;
use crate::group::{DatabaseGroup, Groups};
use crate::network::{HttpNetwork, PeerStatus};
use crate::store::{self, LogStore, Records, StateMachine};
use crate::types::{Command, NodeId, NodeInfo, TypeConfig, node_id};

mod membership;

/// The name of the cluster's own Raft group in `/cluster/raft/{group}/…`.
pub const CLUSTER_GROUP: &str = "cluster";

/// The record holding the cluster's id (RavenDB's `TopologyId`).
pub const TOPOLOGY_ID_KEY: &str = "cluster/topology-id";

/// How long a write to the cluster waits for a majority before it is answered with an error.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

fn no_majority() -> ClusterError {
    ClusterError::NoLeader(format!(
        "a majority of the cluster's nodes did not acknowledge the change within {} s; it may still be applied once they are back",
        WRITE_TIMEOUT.as_secs()
    ))
}

/// How long a leader waits for a majority to confirm it before a membership change.
const QUORUM_TIMEOUT: Duration = Duration::from_secs(5);

/// How long adding a node waits for it to catch up with the log before giving up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(15);

/// Settings of this node.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The node tag given on the command line, if any; otherwise the stored one, or `A`.
    pub tag: Option<String>,
    /// The URL other nodes and clients reach this node at.
    pub url: String,
    /// The data directory (`cluster.redb` lives there).
    pub data_dir: PathBuf,
    /// The file of the key connection strings are sealed with: shared by every node of a
    /// cluster, so a node that joins is sent the leader's.
    pub secrets_key_file: Option<PathBuf>,
    /// Raft timing: heartbeat interval, and the election timeout's range (milliseconds).
    pub heartbeat_ms: u64,
    pub election_timeout_ms: (u64, u64),
}

impl ClusterOptions {
    pub fn new(tag: Option<String>, url: String, data_dir: &Path) -> ClusterOptions {
        ClusterOptions {
            tag,
            url,
            data_dir: data_dir.to_owned(),
            secrets_key_file: None,
            heartbeat_ms: 300,
            election_timeout_ms: (1500, 3000),
        }
    }
}

/// What a node says of itself at `GET /cluster/node-info`: enough for a leader to decide
/// whether it may join.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeReport {
    pub node_tag: String,
    pub topology_id: Option<String>,
    pub url: String,
    /// How many nodes its cluster has (itself included).
    pub cluster_size: usize,
    /// How many databases it holds.
    pub databases: usize,
    pub server_version: String,
}

/// The body of the join request a leader sends a node it adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub tag: String,
    pub url: String,
    pub topology_id: Option<String>,
    /// The cluster's secrets key (base64), which the joining node keeps from then on.
    #[serde(default)]
    pub secrets_key: Option<String>,
}

/// The body of the request a leader sends a node it removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaveRequest {
    pub topology_id: Option<String>,
}

/// The Raft instance and who this node is; replaced as a whole when the node joins a cluster.
struct Current {
    raft: Raft<TypeConfig>,
    me: NodeInfo,
    id: NodeId,
}

/// This node's part of the cluster.
pub struct Cluster {
    current: RwLock<Current>,
    db: Arc<redb::Database>,
    records: Arc<RwLock<Records>>,
    network: HttpNetwork,
    client: reqwest::Client,
    options: ClusterOptions,
    /// Serializes joins, additions and removals on this node.
    changes: tokio::sync::Mutex<()>,
    /// The database groups this node is a member of.
    groups: Groups,
}

fn config(options: &ClusterOptions) -> Result<Arc<Config>, ClusterError> {
    let config = Config {
        cluster_name: "corvid".to_owned(),
        heartbeat_interval: options.heartbeat_ms,
        election_timeout_min: options.election_timeout_ms.0,
        election_timeout_max: options.election_timeout_ms.1,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 1000,
        ..Config::default()
    };
    Ok(Arc::new(config.validate().map_err(|error| {
        ClusterError::Internal(format!("invalid Raft settings: {error}"))
    })?))
}

impl Cluster {
    /// Opens this node's cluster state (`<data>/cluster.redb`) and starts its Raft instance. A
    /// node with no state forms a cluster of one.
    pub async fn start(
        options: ClusterOptions,
        client: reqwest::Client,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let path = options.data_dir.join("cluster.redb");
        let db = store::open_file(&path).map_err(|error| {
            ClusterError::Internal(format!("cannot open {}: {error}", path.display()))
        })?;
        let stored = store::stored_node(&db)?;
        let tag = match (&options.tag, &stored) {
            (Some(given), Some(stored)) if given != &stored.tag => {
                return Err(ClusterError::BadRequest(format!(
                    "this data directory belongs to node `{}` of its cluster; start it with --node-tag {} (or without --node-tag)",
                    stored.tag, stored.tag
                )));
            }
            (Some(given), _) => given.clone(),
            (None, Some(stored)) => stored.tag.clone(),
            (None, None) => "A".to_owned(),
        };
        let id = node_id(&tag).map_err(|error| ClusterError::BadRequest(error.to_string()))?;
        let me = NodeInfo {
            tag,
            url: options.url.clone(),
        };
        store::save_node(&db, &me)?;
        let records = Arc::new(RwLock::new(Records::default()));
        let network = HttpNetwork::new(client.clone(), CLUSTER_GROUP);
        let raft = new_raft(&options, id, &db, &records, &network).await?;
        let cluster = Arc::new(Cluster {
            current: RwLock::new(Current {
                raft: raft.clone(),
                me: me.clone(),
                id,
            }),
            db,
            records,
            network,
            client,
            options,
            changes: tokio::sync::Mutex::new(()),
            groups: Groups::default(),
        });
        let initialized = raft
            .is_initialized()
            .await
            .map_err(ClusterError::from_fatal)?;
        if !initialized && stored.is_none() {
            let mut members = BTreeMap::new();
            members.insert(id, me.clone());
            if let Err(error) = raft.initialize(members).await {
                return Err(ClusterError::Internal(format!(
                    "cannot form a cluster of one: {error}"
                )));
            }
            tracing::info!(tag = %me.tag, url = %me.url, "formed a cluster of one");
        }
        if stored.is_none() || cluster_size(&raft.metrics().borrow(), id) == 1 {
            // Alone: it elects itself at once; answer as the leader from the first request on.
            let waited = raft
                .wait(Some(Duration::from_secs(5)))
                .current_leader(id, "a cluster of one elects itself")
                .await;
            if let Err(error) = waited {
                tracing::warn!(%error, "this node did not become the leader of its cluster of one");
            }
        }
        tokio::spawn(upkeep(cluster.clone()));
        Ok(cluster)
    }

    fn current(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(|it| it.into_inner())
    }

    /// This node's openraft instance.
    pub fn raft(&self) -> Raft<TypeConfig> {
        self.current().raft.clone()
    }

    /// This node's tag and URL.
    pub fn me(&self) -> NodeInfo {
        self.current().me.clone()
    }

    /// A record of the cluster state, as applied on this node.
    pub fn record(&self, key: &str) -> Option<Value> {
        let records = self.records.read().unwrap_or_else(|it| it.into_inner());
        records.get(key).cloned()
    }

    /// The records whose keys start with `prefix`, as applied on this node.
    pub fn records(&self, prefix: &str) -> Vec<(String, Value)> {
        let records = self.records.read().unwrap_or_else(|it| it.into_inner());
        records
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// A node of the cluster by tag.
    pub fn node(&self, tag: &str) -> Option<NodeInfo> {
        let id = node_id(tag).ok()?;
        let metrics = self.raft().metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .cloned()
    }

    /// Sends a client's request on to another node (`path` with its query) as `me`, and
    /// returns that node's answer as it is: status, content type and body. The request carries
    /// `marker` as a header, so the node it reaches handles it itself.
    pub async fn relay(
        &self,
        to: &NodeInfo,
        marker: (&str, &str),
        request: RelayedRequest,
    ) -> Result<RelayedAnswer, ClusterError> {
        let url = format!("{}{}", to.url.trim_end_matches('/'), request.path);
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|error| ClusterError::BadRequest(error.to_string()))?;
        let mut outgoing = self
            .client
            .request(method, &url)
            .header(marker.0, marker.1)
            .timeout(Duration::from_secs(120))
            .body(request.body);
        if let Some(kind) = request.content_type {
            outgoing = outgoing.header(reqwest::header::CONTENT_TYPE, kind);
        }
        let unreachable = |error: reqwest::Error| {
            ClusterError::NoLeader(format!(
                "cannot reach node `{}` ({}): {error}",
                to.tag, to.url
            ))
        };
        let reply = outgoing.send().await.map_err(unreachable)?;
        let status = reply.status().as_u16();
        let content_type = reply
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|it| it.to_str().ok())
            .map(str::to_owned);
        let body = reply.bytes().await.map_err(unreachable)?.to_vec();
        Ok(RelayedAnswer {
            status,
            content_type,
            body,
        })
    }

    /// The database groups this node is a member of.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// Starts this node's member of a replicated database's group; `members` are the tags of
    /// the group's nodes, in the order of the database's record (the first creates the group).
    pub async fn start_group(
        &self,
        database: Arc<corvid_store::Database>,
        members: &[String],
    ) -> Result<Arc<DatabaseGroup>, ClusterError> {
        if let Some(group) = self.groups.get(database.name()) {
            return Ok(group);
        }
        let mut nodes = Vec::new();
        for tag in members {
            nodes.push(self.node(tag).ok_or_else(|| {
                ClusterError::NotFound(format!("the cluster has no node tagged `{tag}`"))
            })?);
        }
        let group = DatabaseGroup::start(
            database,
            &self.me(),
            &nodes,
            &self.options.data_dir,
            self.client.clone(),
            self.options.heartbeat_ms,
            self.options.election_timeout_ms,
        )
        .await?;
        self.groups.insert(group.clone());
        Ok(group)
    }

    /// Stops this node's member of a database's group; with `remove`, deletes its log too (the
    /// database left this node).
    pub async fn stop_group(&self, name: &str, remove: bool) {
        if let Some(group) = self.groups.take(name) {
            if remove {
                group.remove().await;
            } else {
                group.shutdown().await;
            }
        }
    }

    /// Proposes a command to the cluster from any node (forwarded to the leader) and waits
    /// until it is applied on this node; returns its log index.
    pub async fn propose(&self, command: Command) -> Result<u64, ClusterError> {
        let leader = self.wait_for_leader(Duration::from_secs(5)).await?;
        let index = if leader.tag == self.me().tag {
            self.write(command).await?
        } else {
            let body = serde_json::to_value(&command)
                .map_err(|error| ClusterError::Internal(error.to_string()))?;
            let answer = self
                .forward_json(
                    reqwest::Method::POST,
                    &leader,
                    "/cluster/command",
                    &[],
                    Some(&body),
                )
                .await?;
            answer
                .get("RaftCommandIndex")
                .and_then(Value::as_u64)
                .ok_or_else(|| {
                    ClusterError::Internal(format!(
                        "the leader answered a command without its index: {answer}"
                    ))
                })?
        };
        let waited = self
            .raft()
            .wait(Some(WRITE_TIMEOUT))
            .applied_index_at_least(Some(index), "a proposed command")
            .await;
        if waited.is_err() {
            return Err(ClusterError::NoLeader(format!(
                "the change was committed (index {index}) but this node has not applied it within {} s",
                WRITE_TIMEOUT.as_secs()
            )));
        }
        Ok(index)
    }

    /// Applies a command another node proposed (`POST /cluster/command`), on the leader.
    pub async fn command_from_peer(&self, command: Command) -> Result<u64, ClusterError> {
        if !self.is_leader() {
            return Err(ClusterError::NoLeader(
                "this node is not the cluster's leader (any more)".to_owned(),
            ));
        }
        self.write(command).await
    }

    /// The cluster's id, once the leader has written it.
    pub fn topology_id(&self) -> Option<String> {
        self.record(TOPOLOGY_ID_KEY)
            .and_then(|it| it.as_str().map(str::to_owned))
    }

    /// What this node reports to a leader deciding whether it may join.
    pub fn report(&self, databases: usize) -> NodeReport {
        let metrics = self.raft().metrics().borrow().clone();
        let me = self.me();
        let cluster_size = cluster_size(&metrics, self.current().id);
        NodeReport {
            node_tag: me.tag,
            topology_id: self.topology_id(),
            url: me.url,
            cluster_size,
            databases,
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// The leader's node, if this node knows one.
    pub fn leader(&self) -> Option<NodeInfo> {
        crate::network::known_leader(&self.raft())
    }

    /// Waits up to `timeout` for a leader to be known.
    async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeInfo, ClusterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader() {
                return Ok(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::NoLeader(
                    "the cluster has no leader: a majority of its nodes cannot be reached".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether this node is the leader now.
    pub fn is_leader(&self) -> bool {
        let current = self.current();
        crate::network::leads(&current.raft, current.id)
    }

    /// Proposes a command and waits until it is committed and applied here.
    pub async fn write(&self, command: Command) -> Result<u64, ClusterError> {
        let raft = self.raft();
        match tokio::time::timeout(WRITE_TIMEOUT, raft.client_write(command)).await {
            Ok(Ok(response)) => Ok(response.data.index),
            Ok(Err(error)) => Err(ClusterError::from_write(error)),
            Err(_) => Err(no_majority()),
        }
    }

    /// Checks, before a change that touches another node, that this leader still has a
    /// majority behind it, so a leader cut off in a minority refuses at once and changes
    /// nothing.
    async fn ensure_quorum(&self) -> Result<(), ClusterError> {
        match tokio::time::timeout(QUORUM_TIMEOUT, self.raft().ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(ClusterError::NoLeader(format!(
                "node `{}` cannot reach a majority of the cluster within {} s; no change was made",
                self.me().tag,
                QUORUM_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Changes the membership and waits until the change is committed; returns its log index.
    async fn change(&self, changes: ChangeMembers<NodeId, NodeInfo>) -> Result<u64, ClusterError> {
        let raft = self.raft();
        match tokio::time::timeout(WRITE_TIMEOUT, raft.change_membership(changes, false)).await {
            Ok(Ok(response)) => Ok(response.log_id.index),
            Ok(Err(error)) => Err(ClusterError::from_write(error)),
            Err(_) => Err(no_majority()),
        }
    }

    /// The members and their states, for `GET /cluster/topology`.
    pub fn topology(&self) -> Topology {
        let current = self.current();
        let metrics = current.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let leader = metrics
            .current_leader
            .and_then(|id| membership.get_node(&id).cloned());
        let statuses = self.network.statuses();
        let is_leader = metrics.state == ServerState::Leader;
        let nodes = membership
            .nodes()
            .map(|(id, node)| TopologyNode {
                node: node.clone(),
                voter: voters.contains(id),
                matched_index: metrics
                    .replication
                    .as_ref()
                    .and_then(|it| it.get(id).cloned().flatten())
                    .map(|it| it.index),
                status: (is_leader && *id != current.id)
                    .then(|| statuses.get(id).cloned().unwrap_or_default()),
            })
            .collect();
        Topology {
            me: current.me.clone(),
            state: metrics.state,
            term: metrics.current_term,
            leader,
            nodes,
            applied_index: metrics.last_applied.map_or(0, |it| it.index),
            last_log_index: metrics.last_log_index.unwrap_or(0),
            topology_id: self.topology_id(),
        }
    }

    /// Answers a Raft message from another node (`POST /cluster/raft/{kind}`): the body is the
    /// request as JSON, the answer this node's `Result` as JSON.
    pub async fn handle_rpc(
        &self,
        group: &str,
        kind: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ClusterError> {
        if group != CLUSTER_GROUP {
            return match self.groups.by_group_name(group) {
                Some(group) => group.handle_rpc(kind, body).await,
                None => Err(ClusterError::NotFound(format!(
                    "this node holds no Raft group `{group}`"
                ))),
            };
        }
        crate::network::answer(&self.raft(), kind, body).await
    }

    /// Stops the Raft instance (on server shutdown).
    pub async fn shutdown(&self) {
        for group in self.groups.all() {
            group.shutdown().await;
        }
        if let Err(error) = self.raft().shutdown().await {
            tracing::warn!(%error, "Raft did not shut down cleanly");
        }
    }
}

/// A client's request sent on to another node ([`Cluster::relay`]).
#[derive(Debug)]
pub struct RelayedRequest {
    pub method: String,
    /// The path and query.
    pub path: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// The other node's answer to a relayed request.
#[derive(Debug)]
pub struct RelayedAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// One node as `GET /cluster/topology` shows it.
#[derive(Debug, Clone)]
pub struct TopologyNode {
    pub node: NodeInfo,
    /// A voter (RavenDB's Member); otherwise a learner (RavenDB's Promotable).
    pub voter: bool,
    /// The last log index the leader knows it has (on the leader only).
    pub matched_index: Option<u64>,
    /// What this node last heard from it (`None` for this node itself).
    pub status: Option<PeerStatus>,
}

/// The cluster as this node sees it.
#[derive(Debug, Clone)]
pub struct Topology {
    pub me: NodeInfo,
    pub state: ServerState,
    pub term: u64,
    pub leader: Option<NodeInfo>,
    pub nodes: Vec<TopologyNode>,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub topology_id: Option<String>,
}

async fn new_raft(
    options: &ClusterOptions,
    id: NodeId,
    db: &Arc<redb::Database>,
    records: &Arc<RwLock<Records>>,
    network: &HttpNetwork,
) -> Result<Raft<TypeConfig>, ClusterError> {
    let state_machine = StateMachine::load(db.clone(), records.clone()).map_err(|error| {
        ClusterError::Internal(format!("cannot load the cluster state: {error}"))
    })?;
    Raft::new(
        id,
        config(options)?,
        network.clone(),
        LogStore::new(db.clone()),
        state_machine,
    )
    .await
    .map_err(|error| ClusterError::Internal(format!("cannot start Raft: {error}")))
}

/// Keeps the leader's own entries up to date: the cluster id, and this node's URL when it was
/// restarted on another address as the only member.
async fn upkeep(cluster: Arc<Cluster>) {
    let mut interval = tokio::time::interval(Duration::from_millis(500));
    loop {
        interval.tick().await;
        if std::sync::Arc::strong_count(&cluster) == 1 {
            return;
        }
        if !cluster.is_leader() {
            continue;
        }
        if cluster.topology_id().is_none() {
            let id = uuid::Uuid::new_v4().to_string();
            let command = Command::Put {
                key: TOPOLOGY_ID_KEY.to_owned(),
                value: Value::String(id),
            };
            if let Err(error) = cluster.write(command).await {
                tracing::debug!(%error, "cannot write the cluster id yet");
            }
        }
        let (me, id) = {
            let current = cluster.current();
            (current.me.clone(), current.id)
        };
        let metrics = cluster.raft().metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let alone = membership.nodes().count() == 1;
        if alone && membership.get_node(&id).is_some_and(|it| it.url != me.url) {
            let mut nodes = BTreeMap::new();
            nodes.insert(id, me.clone());
            match cluster
                .raft()
                .change_membership(ChangeMembers::SetNodes(nodes), true)
                .await
            {
                Ok(_) => tracing::info!(url = %me.url, "updated this node's URL in the cluster"),
                Err(error) => tracing::debug!(%error, "cannot update this node's URL yet"),
            }
        }
    }
}

/// How many nodes the cluster has as `me` sees it: 0 when `me` is no member (a node that
/// was removed, or is waiting for a leader's log).
fn cluster_size(metrics: &openraft::RaftMetrics<NodeId, NodeInfo>, me: NodeId) -> usize {
    let membership = metrics.membership_config.membership();
    if membership.get_node(&me).is_some() {
        membership.nodes().count()
    } else {
        0
    }
}
