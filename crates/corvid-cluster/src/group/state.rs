//! A database group's state machine: the database itself. Each committed entry is applied
//! through the database's writer ([`Database::apply_marked_async`]) with the entry's log id
//! and the group's membership written in the same transaction, so a member that crashed
//! resumes after the last entry its file kept.
//!
//! Entries are applied with redb's non-durable commit: the group's log (fsynced before the
//! entry was acknowledged) is the durable copy. About once a second an entry is applied
//! durably, which makes every earlier one durable too and bounds what a restart replays.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corvid_store::{ApplyDurability, Database, Timestamp, WriteError};
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};

use super::types::{DbApplied, DbTypeConfig};
use crate::types::{NodeId, NodeInfo};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// How often an entry is applied durably (the others become durable with it).
const DURABLE_EVERY: Duration = Duration::from_secs(1);

const APPLIED_KEY: &str = "applied";
const MEMBERSHIP_KEY: &str = "membership";

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String);

fn failure(message: impl Into<String>) -> StorageError<NodeId> {
    StorageIOError::write(AnyError::new(&Failure(message.into()))).into()
}

/// The state machine of one database group on this member.
pub struct DbStateMachine {
    db: Arc<Database>,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, NodeInfo>,
    last_durable: Instant,
}

impl DbStateMachine {
    /// Reads the applied position and membership the database file kept.
    pub fn load(db: Arc<Database>) -> StorageResult<DbStateMachine> {
        let read = |key: &str| -> StorageResult<Option<Vec<u8>>> {
            db.replication_mark(key)
                .map_err(|error| failure(format!("cannot read `{key}`: {error}")))
        };
        let applied = match read(APPLIED_KEY)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|error| failure(format!("stored applied log id: {error}")))?,
            None => None,
        };
        let membership = match read(MEMBERSHIP_KEY)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|error| failure(format!("stored membership: {error}")))?,
            None => StoredMembership::default(),
        };
        Ok(DbStateMachine {
            db,
            applied,
            membership,
            last_durable: Instant::now(),
        })
    }

    fn marks(&self, membership_changed: bool) -> StorageResult<Vec<(String, Vec<u8>)>> {
        let encode = |error: serde_json::Error| failure(error.to_string());
        let mut marks = vec![(
            APPLIED_KEY.to_owned(),
            serde_json::to_vec(&self.applied).map_err(encode)?,
        )];
        if membership_changed {
            marks.push((
                MEMBERSHIP_KEY.to_owned(),
                serde_json::to_vec(&self.membership).map_err(encode)?,
            ));
        }
        Ok(marks)
    }
}

/// Database groups do not build snapshots yet: the log is kept whole, and a member that was
/// down catches up from it (docs/design/cluster.md §3.1).
pub struct NoSnapshots;

impl RaftSnapshotBuilder<DbTypeConfig> for NoSnapshots {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<DbTypeConfig>> {
        Err(failure(
            "database groups keep their whole log and build no snapshot",
        ))
    }
}

impl RaftStateMachine<DbTypeConfig> for DbStateMachine {
    type SnapshotBuilder = NoSnapshots;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeInfo>)> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<DbApplied>>
    where
        I: IntoIterator<Item = Entry<DbTypeConfig>> + Send,
        I::IntoIter: Send,
    {
        // Every entry is queued to the writer before the first answer is awaited, so the
        // writer applies a run of entries back to back.
        let mut waiting = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            self.applied = Some(entry.log_id);
            let (now, requests, membership_changed) = match entry.payload {
                EntryPayload::Normal(entry) => (entry.now, entry.requests, false),
                EntryPayload::Blank => (Timestamp(0), Vec::new(), false),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    (Timestamp(0), Vec::new(), true)
                }
            };
            let durability = if self.last_durable.elapsed() >= DURABLE_EVERY {
                self.last_durable = Instant::now();
                ApplyDurability::Durable
            } else {
                ApplyDurability::Deferred
            };
            let (sender, receiver) = tokio::sync::oneshot::channel();
            self.db.apply_marked_async(
                requests,
                now,
                durability,
                self.marks(membership_changed)?,
                Box::new(move |outcomes| {
                    let _ = sender.send(outcomes);
                }),
            );
            waiting.push((index, receiver));
        }
        let mut applied = Vec::with_capacity(waiting.len());
        for (index, receiver) in waiting {
            let outcomes = receiver
                .await
                .map_err(|_| failure(format!("database `{}` closed", self.db.name())))?;
            let mut answers = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                answers.push(match outcome {
                    Ok(results) => Ok(results),
                    Err(error) => Err(request_error(error)?),
                });
            }
            applied.push(DbApplied {
                index,
                outcomes: answers,
            });
        }
        Ok(applied)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        NoSnapshots
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Err(failure(
            "database groups do not receive snapshots yet: a member catches up from the log",
        ))
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<NodeId, NodeInfo>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        Err(failure(
            "database groups do not install snapshots yet: a member catches up from the log",
        ))
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<DbTypeConfig>>> {
        Ok(None)
    }
}

/// A request's own error, the same on every member; any other failure stops the state
/// machine (openraft then stops the group on this member rather than diverge).
fn request_error(error: WriteError) -> StorageResult<corvid_store::RequestError> {
    error
        .to_request_error()
        .ok_or_else(|| failure(format!("applying an entry failed: {error}")))
}
