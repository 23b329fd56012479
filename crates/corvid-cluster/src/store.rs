//! The cluster group's storage: the Raft log, the vote and the state machine (the cluster's
//! records) in one redb file, `<data>/cluster.redb`.
//!
//! Every write is durable before it returns (the log's append before its flush callback, the
//! vote before `save_vote` returns, an applied entry before `apply` returns), so a restarted
//! node resumes from exactly what it acknowledged. The cluster group carries little traffic
//! (membership and records), so one fsync per write costs nothing that matters.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{Arc, RwLock};

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, LogState, RaftLogReader, RaftSnapshotBuilder,
    RaftTypeConfig, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{Durability, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::types::{Applied, Command, NodeId, NodeInfo, TypeConfig};

/// Log index → the entry: MessagePack (written by this version), or JSON (a `{` first: written
/// by earlier versions, still read).
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// `vote`, `last_purged`, `applied`, `membership`, `snapshot` → JSON.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
/// The state machine: record key → JSON value.
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");

type StorageResult<T> = Result<T, StorageError<NodeId>>;

fn read_error(error: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read(AnyError::new(&error)).into()
}

fn write_error(error: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write(AnyError::new(&error)).into()
}

/// Runs redb work on the blocking pool: its commits fsync.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> StorageResult<T> + Send + 'static,
) -> StorageResult<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => Err(write_error(error)),
    }
}

fn meta_get<T: DeserializeOwned>(db: &redb::Database, key: &str) -> StorageResult<Option<T>> {
    let txn = db.begin_read().map_err(read_error)?;
    let table = txn.open_table(META).map_err(read_error)?;
    let Some(bytes) = table.get(key).map_err(read_error)? else {
        return Ok(None);
    };
    serde_json::from_slice(bytes.value())
        .map(Some)
        .map_err(read_error)
}

fn meta_put(
    table: &mut redb::Table<&str, &[u8]>,
    key: &str,
    value: &impl Serialize,
) -> StorageResult<()> {
    let bytes = serde_json::to_vec(value).map_err(write_error)?;
    table.insert(key, bytes.as_slice()).map_err(write_error)?;
    Ok(())
}

/// Writes one meta value in a transaction of its own (durable).
fn meta_write(db: &redb::Database, key: &str, value: &impl Serialize) -> StorageResult<()> {
    let txn = db.begin_write().map_err(write_error)?;
    meta_put(&mut txn.open_table(META).map_err(write_error)?, key, value)?;
    txn.commit().map_err(write_error)
}

pub(crate) fn decode_entry<T: DeserializeOwned>(bytes: &[u8]) -> StorageResult<T> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice(bytes).map_err(read_error);
    }
    crate::network::decode(bytes).map_err(read_error)
}

/// Opens (creating if needed) the cluster file of a data directory.
pub fn open_file(path: &Path) -> Result<Arc<redb::Database>, redb::Error> {
    let db = redb::Database::create(path)?;
    let txn = db.begin_write()?;
    txn.open_table(LOG)?;
    txn.open_table(META)?;
    txn.open_table(RECORDS)?;
    txn.commit()?;
    Ok(Arc::new(db))
}

/// The Raft log and vote. Clones share the file; openraft reads entries through a clone while
/// the original appends.
/// Generic over the group's type configuration, so a database group can keep its log in its
/// own file the same way.
pub struct LogStore<C = TypeConfig> {
    db: Arc<redb::Database>,
    _config: PhantomData<fn() -> C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            db: self.db.clone(),
            _config: PhantomData,
        }
    }
}

impl<C> LogStore<C> {
    pub fn new(db: Arc<redb::Database>) -> LogStore<C> {
        LogStore {
            db,
            _config: PhantomData,
        }
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Entry = Entry<C>>,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<C>>> {
        let db = self.db.clone();
        let start = range.start_bound().cloned();
        let end = range.end_bound().cloned();
        blocking(move || {
            let txn = db.begin_read().map_err(read_error)?;
            let table = txn.open_table(LOG).map_err(read_error)?;
            let mut entries = Vec::new();
            for item in table.range::<u64>((start, end)).map_err(read_error)? {
                let (_, bytes) = item.map_err(read_error)?;
                entries.push(decode_entry(bytes.value())?);
            }
            Ok(entries)
        })
        .await
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Entry = Entry<C>>,
{
    type LogReader = LogStore<C>;

    async fn get_log_state(&mut self) -> StorageResult<LogState<C>> {
        let db = self.db.clone();
        blocking(move || {
            let last_purged: Option<LogId<NodeId>> = meta_get(&db, "last_purged")?;
            let txn = db.begin_read().map_err(read_error)?;
            let table = txn.open_table(LOG).map_err(read_error)?;
            let last = match table.last().map_err(read_error)? {
                Some((_, bytes)) => {
                    let entry: Entry<C> = decode_entry(bytes.value())?;
                    Some(entry.log_id)
                }
                None => last_purged,
            };
            Ok(LogState {
                last_purged_log_id: last_purged,
                last_log_id: last,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        let vote = *vote;
        blocking(move || meta_write(&db, "vote", &vote)).await
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        let db = self.db.clone();
        blocking(move || meta_get(&db, "vote")).await
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<C>> + Send,
        I::IntoIter: Send,
    {
        let mut encoded = Vec::new();
        for entry in entries {
            encoded.push((
                entry.log_id.index,
                crate::network::encode(&entry).map_err(write_error)?,
            ));
        }
        let db = self.db.clone();
        let outcome = blocking(move || {
            let mut txn = db.begin_write().map_err(write_error)?;
            txn.set_durability(Durability::Immediate)
                .map_err(write_error)?;
            {
                let mut table = txn.open_table(LOG).map_err(write_error)?;
                for (index, bytes) in &encoded {
                    table
                        .insert(*index, bytes.as_slice())
                        .map_err(write_error)?;
                }
            }
            txn.commit().map_err(write_error)
        })
        .await;
        match &outcome {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(error) => callback.log_io_completed(Err(std::io::Error::other(error.to_string()))),
        }
        outcome
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write().map_err(write_error)?;
            {
                let mut table = txn.open_table(LOG).map_err(write_error)?;
                table
                    .retain_in(log_id.index.., |_, _| false)
                    .map_err(write_error)?;
            }
            txn.commit().map_err(write_error)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write().map_err(write_error)?;
            {
                meta_put(
                    &mut txn.open_table(META).map_err(write_error)?,
                    "last_purged",
                    &log_id,
                )?;
                let mut table = txn.open_table(LOG).map_err(write_error)?;
                table
                    .retain_in(..=log_id.index, |_, _| false)
                    .map_err(write_error)?;
            }
            txn.commit().map_err(write_error)
        })
        .await
    }
}

/// What the state machine holds, shared with readers: record key → JSON value.
pub type Records = BTreeMap<String, Value>;

/// A snapshot as stored and sent: its metadata and the records.
#[derive(Serialize, serde::Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, NodeInfo>,
    data: Vec<u8>,
}

/// The state machine: the cluster's records, persisted in the same file as the log.
pub struct StateMachine {
    db: Arc<redb::Database>,
    records: Arc<RwLock<Records>>,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, NodeInfo>,
    /// Makes snapshot ids unique when two are built at the same applied index.
    snapshot_count: u64,
}

impl StateMachine {
    /// Loads the state machine from the file; `records` is filled with what was applied and
    /// kept up to date as entries are applied.
    pub fn load(
        db: Arc<redb::Database>,
        records: Arc<RwLock<Records>>,
    ) -> Result<StateMachine, StorageError<NodeId>> {
        let applied: Option<LogId<NodeId>> = meta_get(&db, "applied")?;
        let membership = meta_get(&db, "membership")?.unwrap_or_default();
        let mut values = BTreeMap::new();
        {
            let txn = db.begin_read().map_err(read_error)?;
            let table = txn.open_table(RECORDS).map_err(read_error)?;
            for item in table.iter().map_err(read_error)? {
                let (key, value) = item.map_err(read_error)?;
                values.insert(
                    key.value().to_owned(),
                    serde_json::from_slice(value.value()).map_err(read_error)?,
                );
            }
        }
        *records.write().unwrap_or_else(|it| it.into_inner()) = values;
        Ok(StateMachine {
            db,
            records,
            applied,
            membership,
            snapshot_count: 0,
        })
    }

    fn encode_records(&self) -> StorageResult<Vec<u8>> {
        let records = self.records.read().unwrap_or_else(|it| it.into_inner());
        serde_json::to_vec(&*records).map_err(read_error)
    }
}

/// A snapshot builder needs its own handle; building reads the shared records.
pub struct SnapshotBuilder {
    db: Arc<redb::Database>,
    /// The records as JSON, or why they could not be encoded (reported by `build_snapshot`).
    data: StorageResult<Vec<u8>>,
    meta: SnapshotMeta<NodeId, NodeInfo>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let data = std::mem::replace(&mut self.data, Ok(Vec::new()))?;
        let stored = StoredSnapshot {
            meta: self.meta.clone(),
            data: data.clone(),
        };
        let db = self.db.clone();
        blocking(move || meta_write(&db, "snapshot", &stored)).await?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeInfo>)> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut outcomes = Vec::new();
        let mut changes: Vec<(String, Option<Value>)> = Vec::new();
        for entry in entries {
            self.applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(Command::Put { key, value }) => {
                    changes.push((key, Some(value)));
                }
                EntryPayload::Normal(Command::Delete { key }) => changes.push((key, None)),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                }
            }
            outcomes.push(Applied {
                index: entry.log_id.index,
            });
        }
        let db = self.db.clone();
        let applied = self.applied;
        let membership = self.membership.clone();
        let changes = blocking(move || {
            let txn = db.begin_write().map_err(write_error)?;
            {
                let mut records = txn.open_table(RECORDS).map_err(write_error)?;
                for (key, value) in &changes {
                    match value {
                        Some(value) => {
                            let bytes = serde_json::to_vec(value).map_err(write_error)?;
                            records
                                .insert(key.as_str(), bytes.as_slice())
                                .map_err(write_error)?;
                        }
                        None => {
                            records.remove(key.as_str()).map_err(write_error)?;
                        }
                    }
                }
                let mut meta = txn.open_table(META).map_err(write_error)?;
                meta_put(&mut meta, "applied", &applied)?;
                meta_put(&mut meta, "membership", &membership)?;
            }
            txn.commit().map_err(write_error)?;
            Ok(changes)
        })
        .await?;
        let mut records = self.records.write().unwrap_or_else(|it| it.into_inner());
        for (key, value) in changes {
            match value {
                Some(value) => records.insert(key, value),
                None => records.remove(&key),
            };
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_count += 1;
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                self.applied.map_or(0, |it| it.index),
                self.snapshot_count
            ),
        };
        SnapshotBuilder {
            db: self.db.clone(),
            data: self.encode_records(),
            meta,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let data = snapshot.into_inner();
        let values: BTreeMap<String, Value> = serde_json::from_slice(&data).map_err(read_error)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let db = self.db.clone();
        let encoded: Vec<(String, Vec<u8>)> = values
            .iter()
            .map(|(key, value)| Ok((key.clone(), serde_json::to_vec(value).map_err(write_error)?)))
            .collect::<StorageResult<_>>()?;
        let applied = meta.last_log_id;
        let membership = meta.last_membership.clone();
        blocking(move || {
            let txn = db.begin_write().map_err(write_error)?;
            {
                let mut records = txn.open_table(RECORDS).map_err(write_error)?;
                records.retain(|_, _| false).map_err(write_error)?;
                for (key, bytes) in &encoded {
                    records
                        .insert(key.as_str(), bytes.as_slice())
                        .map_err(write_error)?;
                }
                let mut meta_table = txn.open_table(META).map_err(write_error)?;
                meta_put(&mut meta_table, "applied", &applied)?;
                meta_put(&mut meta_table, "membership", &membership)?;
                meta_put(&mut meta_table, "snapshot", &stored)?;
            }
            txn.commit().map_err(write_error)
        })
        .await?;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        *self.records.write().unwrap_or_else(|it| it.into_inner()) = values;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let db = self.db.clone();
        let stored: Option<StoredSnapshot> = blocking(move || meta_get(&db, "snapshot")).await?;
        Ok(stored.map(|it| Snapshot {
            meta: it.meta,
            snapshot: Box::new(Cursor::new(it.data)),
        }))
    }
}

/// The node this file belongs to (its tag and URL), if it was ever started.
pub fn stored_node(db: &redb::Database) -> StorageResult<Option<NodeInfo>> {
    meta_get(db, "node")
}

/// Records this node's tag and URL.
pub fn save_node(db: &redb::Database, node: &NodeInfo) -> StorageResult<()> {
    meta_write(db, "node", node)
}

/// Empties the file (log, vote, records, snapshot) and records the node as `node`: a node
/// about to join a cluster drops its cluster of one. Its Raft instance must be shut down.
pub fn reset(db: &redb::Database, node: &NodeInfo) -> StorageResult<()> {
    let txn = db.begin_write().map_err(write_error)?;
    {
        txn.open_table(LOG)
            .map_err(write_error)?
            .retain(|_, _| false)
            .map_err(write_error)?;
        txn.open_table(RECORDS)
            .map_err(write_error)?
            .retain(|_, _| false)
            .map_err(write_error)?;
        let mut meta = txn.open_table(META).map_err(write_error)?;
        meta.retain(|_, _| false).map_err(write_error)?;
        meta_put(&mut meta, "node", node)?;
    }
    txn.commit().map_err(write_error)
}
