//! Database groups (docs/design/cluster.md §3): a replicated database is a Raft group of its
//! members, named `db-{key}` in `/cluster/raft/{group}/…`. Its log lives in
//! `<data>/raft/{key}.redb` (fsynced on every append), its state machine is the database
//! itself ([`state`]). A write is acknowledged once its entry is committed on a majority of
//! the members and applied on the member that received it.
//!
//! Writes reach the group through the database's [`Replicator`]: a batcher merges the
//! requests queued at the same time into one entry, as the writer merges them on a single
//! node. On the group's leader the entry is proposed at once (openraft keeps the order and
//! several entries in flight); on another member it is sent to the leader
//! (`POST /cluster/databases/{name}/write`), and answered once this member has applied it
//! too, so a client reads its own writes from the node it wrote to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use corvid_store::{Database, Replicator, Timestamp, WriteCallback, WriteError, WriteOp, key_of};
use openraft::error::ClientWriteError;
use openraft::{Config, Raft, SnapshotPolicy};
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;
use crate::network::HttpNetwork;
use crate::store::{self, LogStore};
use crate::types::{NodeId, NodeInfo, node_id};

mod state;
pub mod types;

use state::DbStateMachine;
use types::{DbApplied, DbEntry, DbTypeConfig, RequestOutcome};

/// The prefix of a database group's name in `/cluster/raft/{group}/…`.
pub const GROUP_PREFIX: &str = "db-";

/// How many requests, and operations, one entry merges at most (the writer's limits).
const MAX_ENTRY_REQUESTS: usize = 512;
const MAX_ENTRY_OPS: usize = 64 * 1024;

/// How long confirming this member's leadership (a heartbeat round to a majority) may take.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a write waits for a leader, and for its entry to be committed.
/// An election takes about 5 s after a leader dies (openraft's followers keep the old
/// leader's lease for the longest election timeout, 3 s, before they vote), so a write waits
/// longer than that.
const LEADER_WAIT: Duration = Duration::from_secs(8);
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The body of a write forwarded to the group's leader.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForwardedWrite {
    pub requests: Vec<Vec<WriteOp>>,
}

/// The leader's answer to a forwarded write.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForwardedAnswer {
    pub index: u64,
    pub outcomes: Vec<RequestOutcome>,
}

/// Where openraft answers a proposed entry.
type CommitReceiver = <<DbTypeConfig as openraft::RaftTypeConfig>::Responder as openraft::raft::responder::Responder<DbTypeConfig>>::Receiver;

struct Pending {
    ops: Vec<WriteOp>,
    reply: WriteCallback,
}

/// This node's member of one database group.
pub struct DatabaseGroup {
    name: String,
    raft: Raft<DbTypeConfig>,
    me: NodeId,
    database: Arc<Database>,
    client: reqwest::Client,
    log_path: PathBuf,
}

/// Sends a database's writes into its group; held by the database, so it holds only the
/// batcher's queue (the group holds the database).
struct GroupReplicator {
    queue: tokio::sync::mpsc::UnboundedSender<Pending>,
    name: String,
    group: std::sync::Weak<DatabaseGroup>,
    runtime: tokio::runtime::Handle,
}

impl Replicator for GroupReplicator {
    fn replicate(&self, ops: Vec<WriteOp>, reply: WriteCallback) {
        if let Err(lost) = self.queue.send(Pending { ops, reply }) {
            (lost.0.reply)(Err(WriteError::Unavailable(format!(
                "database `{}` left its database group on this node",
                self.name
            ))));
        }
    }

    fn confirm(&self, reply: Box<dyn FnOnce(bool) + Send>) {
        let Some(group) = self.group.upgrade() else {
            return reply(false);
        };
        self.runtime.spawn(async move {
            reply(group.is_leader() && group.confirm_leadership(CONFIRM_TIMEOUT).await);
        });
    }
}

fn group_config(
    heartbeat_ms: u64,
    election_timeout_ms: (u64, u64),
) -> Result<Arc<Config>, ClusterError> {
    let config = Config {
        cluster_name: "corvid-database".to_owned(),
        heartbeat_interval: heartbeat_ms,
        election_timeout_min: election_timeout_ms.0,
        election_timeout_max: election_timeout_ms.1,
        // The log is kept whole for now: a member that was down catches up from it.
        snapshot_policy: SnapshotPolicy::Never,
        ..Config::default()
    };
    Ok(Arc::new(config.validate().map_err(|error| {
        ClusterError::Internal(format!("invalid Raft settings: {error}"))
    })?))
}

/// The file holding a database group's log on this node.
pub fn log_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("raft").join(format!("{}.redb", key_of(name)))
}

impl DatabaseGroup {
    /// Starts this node's member of `database`'s group. `members` are the group's nodes; the
    /// first of them creates the group (the others wait for its log).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start(
        database: Arc<Database>,
        me: &NodeInfo,
        members: &[NodeInfo],
        data_dir: &Path,
        client: reqwest::Client,
        heartbeat_ms: u64,
        election_timeout_ms: (u64, u64),
    ) -> Result<Arc<DatabaseGroup>, ClusterError> {
        let name = database.name().to_owned();
        let log_path = log_path(data_dir, &name);
        if let Some(folder) = log_path.parent() {
            std::fs::create_dir_all(folder).map_err(|error| {
                ClusterError::Internal(format!("cannot create {}: {error}", folder.display()))
            })?;
        }
        let file = store::open_file(&log_path).map_err(|error| {
            ClusterError::Internal(format!("cannot open {}: {error}", log_path.display()))
        })?;
        let id = node_id(&me.tag).map_err(|error| ClusterError::BadRequest(error.to_string()))?;
        let state_machine = DbStateMachine::load(database.clone())?;
        let network = HttpNetwork::new(client.clone(), &group_name(&name));
        let raft = Raft::new(
            id,
            group_config(heartbeat_ms, election_timeout_ms)?,
            network,
            LogStore::<DbTypeConfig>::new(file),
            state_machine,
        )
        .await
        .map_err(|error| ClusterError::Internal(format!("cannot start database group: {error}")))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(ClusterError::from_fatal)?;
        if !initialized && members.first().is_some_and(|it| it.tag == me.tag) {
            let mut nodes = BTreeMap::new();
            for member in members {
                let id = node_id(&member.tag)
                    .map_err(|error| ClusterError::BadRequest(error.to_string()))?;
                nodes.insert(id, member.clone());
            }
            if let Err(error) = raft.initialize(nodes).await {
                tracing::warn!(database = %name, %error, "cannot create the database group");
            }
        }
        let group = Arc::new(DatabaseGroup {
            name: name.clone(),
            raft,
            me: id,
            database: database.clone(),
            client,
            log_path,
        });
        let (queue, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(batch(Arc::downgrade(&group), receiver));
        database.set_replicator(Some(Arc::new(GroupReplicator {
            queue,
            name,
            group: Arc::downgrade(&group),
            runtime: tokio::runtime::Handle::current(),
        })));
        Ok(group)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn database(&self) -> &Arc<Database> {
        &self.database
    }

    /// Whether this member is the group's leader now.
    pub fn is_leader(&self) -> bool {
        crate::network::leads(&self.raft, self.me)
    }

    /// Whether this member leads the group with a majority behind it and has applied
    /// everything committed before (openraft's `ensure_linearizable`): a member restarted
    /// with an old vote, or cut off in a minority, is not confirmed.
    pub async fn confirm_leadership(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.raft.ensure_linearizable()).await,
            Ok(Ok(_))
        )
    }

    /// The group's leader, if this member knows one.
    pub fn leader(&self) -> Option<NodeInfo> {
        crate::network::known_leader(&self.raft)
    }

    /// Waits up to `timeout` for the group to have a leader this member knows.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<NodeInfo> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The group's current term (changes with every election).
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// The last log index applied on this member.
    pub fn applied_index(&self) -> u64 {
        self.raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |it| it.index)
    }

    /// Proposes an entry on the leader and waits until it is committed and applied here.
    async fn propose(&self, entry: DbEntry) -> Result<DbApplied, WriteError> {
        let receiver = self
            .raft
            .client_write_ff(entry)
            .await
            .map_err(|error| unavailable(&self.name, error))?;
        self.await_commit(receiver).await
    }

    async fn await_commit(&self, receiver: CommitReceiver) -> Result<DbApplied, WriteError> {
        match tokio::time::timeout(COMMIT_TIMEOUT, receiver).await {
            Ok(Ok(Ok(response))) => Ok(response.data),
            Ok(Ok(Err(ClientWriteError::ForwardToLeader(_)))) => {
                Err(WriteError::Unavailable(format!(
                    "this node stopped leading database `{}`'s group before the write was committed; it was not applied",
                    self.name
                )))
            }
            Ok(Ok(Err(error))) => Err(unavailable(&self.name, error)),
            Ok(Err(_)) => Err(WriteError::Unavailable(format!(
                "database `{}`'s group on this node stopped before the write was committed",
                self.name
            ))),
            Err(_) => Err(WriteError::Unavailable(format!(
                "a majority of database `{}`'s group did not acknowledge the write within {} s; it may still be applied once they are back",
                self.name,
                COMMIT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Answers a write another member forwarded: proposes it if this member leads the group.
    pub async fn forwarded(&self, write: ForwardedWrite) -> Result<ForwardedAnswer, WriteError> {
        if !self.is_leader() {
            return Err(WriteError::Unavailable(format!(
                "this node does not lead database `{}`'s group (any more)",
                self.name
            )));
        }
        let applied = self
            .propose(DbEntry {
                now: Timestamp::now(),
                requests: write.requests,
            })
            .await?;
        Ok(ForwardedAnswer {
            index: applied.index,
            outcomes: applied.outcomes,
        })
    }

    /// Commits an entry: proposed here if this member leads, otherwise sent to the leader and
    /// answered once it is applied here too.
    async fn commit(&self, requests: Vec<Vec<WriteOp>>) -> Result<Vec<RequestOutcome>, WriteError> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let leader = self.leader();
            match leader {
                Some(leader) if node_id(&leader.tag).ok() == Some(self.me) => {
                    let entry = DbEntry {
                        now: Timestamp::now(),
                        requests,
                    };
                    return self.propose(entry).await.map(|it| it.outcomes);
                }
                Some(leader) => match self.forward(&leader, &requests).await {
                    Ok(answer) => {
                        let waited = self
                            .raft
                            .wait(Some(COMMIT_TIMEOUT))
                            .applied_index_at_least(Some(answer.index), "the forwarded write")
                            .await;
                        if let Err(error) = waited {
                            tracing::debug!(database = %self.name, %error, "a forwarded write is not applied here yet");
                        }
                        return Ok(answer.outcomes);
                    }
                    // The write reached no leader: it was not applied, so it can go again.
                    Err(Forward::NotSent(error)) if tokio::time::Instant::now() < deadline => {
                        tracing::debug!(database = %self.name, %error, "retrying a forwarded write");
                    }
                    Err(Forward::NotSent(error)) | Err(Forward::Failed(error)) => {
                        return Err(error);
                    }
                },
                None if tokio::time::Instant::now() < deadline => {}
                None => {
                    return Err(WriteError::Unavailable(format!(
                        "database `{}`'s group has no leader: it is electing one, or a majority of its members cannot be reached",
                        self.name
                    )));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn forward(
        &self,
        leader: &NodeInfo,
        requests: &[Vec<WriteOp>],
    ) -> Result<ForwardedAnswer, Forward> {
        #[derive(Serialize)]
        struct Body<'a> {
            requests: &'a [Vec<WriteOp>],
        }
        let url = format!(
            "{}/cluster/databases/{}/write",
            leader.url.trim_end_matches('/'),
            self.name
        );
        let body = crate::network::encode(&Body { requests }).map_err(|error| {
            Forward::NotSent(WriteError::Unavailable(format!(
                "cannot encode a write for the leader: {error}"
            )))
        })?;
        let reply = self
            .client
            .post(&url)
            .timeout(COMMIT_TIMEOUT + Duration::from_secs(5))
            .header(reqwest::header::CONTENT_TYPE, crate::network::MESSAGE_TYPE)
            .body(body)
            .send()
            .await;
        let reply = match reply {
            Ok(it) => it,
            Err(error) if error.is_connect() => {
                return Err(Forward::NotSent(WriteError::Unavailable(format!(
                    "cannot reach database `{}`'s leader `{}` at {}: {error}",
                    self.name, leader.tag, leader.url
                ))));
            }
            Err(error) => {
                return Err(Forward::Failed(WriteError::Unavailable(format!(
                    "the write sent to database `{}`'s leader `{}` got no answer (it may still be applied): {error}",
                    self.name, leader.tag
                ))));
            }
        };
        if reply.status().is_success() {
            let bytes = reply.bytes().await.map_err(|error| {
                Forward::Failed(WriteError::Unavailable(format!(
                    "the answer of the leader `{}` to a forwarded write was cut short (it may be applied): {error}",
                    leader.tag
                )))
            })?;
            return crate::network::decode(&bytes).map_err(|error| {
                Forward::Failed(WriteError::Unavailable(format!(
                    "the leader `{}` answered a forwarded write with something else: {error}",
                    leader.tag
                )))
            });
        }
        match ClusterError::from_reply(reply).await {
            Ok(_) => Err(Forward::Failed(WriteError::Unavailable(
                "the leader's answer to a forwarded write was not a success".to_owned(),
            ))),
            // The leader refused before proposing (it no longer leads): safe to send again.
            Err(ClusterError::Remote {
                status: 503,
                message,
            }) if message.contains("does not lead") => {
                Err(Forward::NotSent(WriteError::Unavailable(message)))
            }
            Err(error) => Err(Forward::Failed(WriteError::Unavailable(error.to_string()))),
        }
    }

    /// Stops this member (the database is closed or leaves the group); writes fail until a
    /// member is started again.
    pub async fn shutdown(&self) {
        self.database.set_replicator(None);
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(database = %self.name, %error, "database group did not shut down cleanly");
        }
    }

    /// Stops this member and deletes its log (the database left this node).
    pub async fn remove(&self) {
        self.shutdown().await;
        if let Err(error) = std::fs::remove_file(&self.log_path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.log_path.display(), %error, "cannot delete a database group's log");
        }
    }

    /// Answers a Raft message for this group.
    pub(crate) async fn handle_rpc(
        &self,
        kind: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ClusterError> {
        crate::network::answer(&self.raft, kind, body).await
    }
}

enum Forward {
    /// The leader did not take the write: it may be sent again.
    NotSent(WriteError),
    /// The write may or may not have been applied.
    Failed(WriteError),
}

fn unavailable(name: &str, error: impl std::fmt::Display) -> WriteError {
    WriteError::Unavailable(format!(
        "database `{name}`'s group cannot take the write: {error}"
    ))
}

/// The name of a database's group in `/cluster/raft/{group}/…`.
pub fn group_name(name: &str) -> String {
    format!("{GROUP_PREFIX}{}", key_of(name))
}

/// Merges queued requests into entries and commits them, several in flight: an entry goes to
/// openraft (or the leader) as soon as it is formed, and its requests are answered when it is
/// committed.
async fn batch(
    group: std::sync::Weak<DatabaseGroup>,
    mut receiver: tokio::sync::mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = receiver.recv().await {
        let mut n_ops = first.ops.len();
        let mut pending = vec![first];
        while pending.len() < MAX_ENTRY_REQUESTS && n_ops < MAX_ENTRY_OPS {
            match receiver.try_recv() {
                Ok(next) => {
                    n_ops += next.ops.len();
                    pending.push(next);
                }
                Err(_) => break,
            }
        }
        let (requests, replies): (Vec<_>, Vec<_>) =
            pending.into_iter().map(|it| (it.ops, it.reply)).unzip();
        let Some(group) = group.upgrade() else {
            answer_all(
                replies,
                Err(WriteError::Unavailable("the database group stopped".into())),
            );
            return;
        };
        if group.is_leader() {
            // Proposed here, in queue order; answered when committed.
            let entry = DbEntry {
                now: Timestamp::now(),
                requests,
            };
            match group.raft.client_write_ff(entry).await {
                Ok(receiver) => {
                    tokio::spawn(async move {
                        let outcome = group.await_commit(receiver).await.map(|it| it.outcomes);
                        answer(replies, outcome);
                    });
                }
                Err(error) => answer_all(replies, Err(unavailable(&group.name, error))),
            }
        } else {
            tokio::spawn(async move {
                let outcome = group.commit(requests).await;
                answer(replies, outcome);
            });
        }
    }
}

fn answer(replies: Vec<WriteCallback>, outcome: Result<Vec<RequestOutcome>, WriteError>) {
    match outcome {
        Ok(outcomes) if outcomes.len() == replies.len() => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                reply(outcome.map_err(WriteError::from));
            }
        }
        Ok(outcomes) => {
            let error = WriteError::Unavailable(format!(
                "the database group answered {} requests of an entry of {}",
                outcomes.len(),
                replies.len()
            ));
            answer_all(replies, Err(error));
        }
        Err(error) => answer_all(replies, Err(error)),
    }
}

fn answer_all(replies: Vec<WriteCallback>, error: Result<(), WriteError>) {
    let Err(error) = error else { return };
    for reply in replies {
        reply(Err(clone_error(&error)));
    }
}

fn clone_error(error: &WriteError) -> WriteError {
    match error.to_request_error() {
        Some(it) => it.into(),
        None => WriteError::Unavailable(error.to_string()),
    }
}

/// The database groups this node is a member of, by database key.
#[derive(Default)]
pub struct Groups {
    groups: RwLock<BTreeMap<String, Arc<DatabaseGroup>>>,
}

impl Groups {
    pub fn get(&self, name: &str) -> Option<Arc<DatabaseGroup>> {
        self.groups
            .read()
            .unwrap_or_else(|it| it.into_inner())
            .get(&key_of(name))
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<DatabaseGroup>> {
        self.groups
            .read()
            .unwrap_or_else(|it| it.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn insert(&self, group: Arc<DatabaseGroup>) {
        self.groups
            .write()
            .unwrap_or_else(|it| it.into_inner())
            .insert(key_of(group.name()), group);
    }

    pub(crate) fn take(&self, name: &str) -> Option<Arc<DatabaseGroup>> {
        self.groups
            .write()
            .unwrap_or_else(|it| it.into_inner())
            .remove(&key_of(name))
    }

    /// The group a Raft message names (`db-{key}`).
    pub(crate) fn by_group_name(&self, group: &str) -> Option<Arc<DatabaseGroup>> {
        let key = group.strip_prefix(GROUP_PREFIX)?;
        self.groups
            .read()
            .unwrap_or_else(|it| it.into_inner())
            .get(key)
            .cloned()
    }
}
