//! The tombstone cleaner: removes the tombstones every ETL transformation of a database has
//! processed (what RavenDB's tombstone cleaner does), periodically and on demand. It reads
//! the tasks and their progress from the task store and holds no lock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use corvid_store::{Database, Etag, WriteOp, WriteResult, key_of};
use tokio::task::JoinHandle;

use crate::manager::EtlError;
use crate::process::{StoredProgress, progress_key};
use crate::task_store::{configurations, storage, write};

/// Tombstones purged per write transaction, so that other writes wait little.
const PURGE_CHUNK: u64 = 10_000;

/// The periodic cleaner of one database, ended when dropped.
pub(crate) struct TombstoneCleaner(JoinHandle<()>);

impl Drop for TombstoneCleaner {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TombstoneCleaner {
    /// Starts cleaning `database` every `interval`; `None` when the interval is zero.
    pub(crate) fn start(database: Arc<Database>, interval: Duration) -> Option<TombstoneCleaner> {
        if interval.is_zero() {
            return None;
        }
        Some(TombstoneCleaner(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match purge_tombstones(&database).await {
                    Ok(0) => {}
                    Ok(purged) => {
                        tracing::debug!(database = database.name(), purged, "tombstones purged")
                    }
                    Err(error) => {
                        tracing::warn!(database = database.name(), %error, "tombstone cleanup failed")
                    }
                }
            }
        })))
    }
}

/// Removes the tombstones every transformation has processed; returns how many went.
pub(crate) async fn purge_tombstones(database: &Arc<Database>) -> Result<u64, EtlError> {
    let (limits, others) = tombstone_limits(database)?;
    let mut purged = 0;
    loop {
        let op = WriteOp::PurgeTombstones {
            limits: limits.clone(),
            others,
            max: PURGE_CHUNK,
        };
        match write(database, vec![op]).await?.first() {
            Some(WriteResult::PurgeTombstones { purged: n, more }) => {
                purged += n;
                if !more {
                    return Ok(purged);
                }
            }
            other => return Err(storage(format!("unexpected answer {other:?}"))),
        }
    }
}

/// Up to which etag the tombstones of each collection are no longer needed: the stored
/// progress of every transformation of every task that processes the collection — enabled
/// or not, since a disabled task resumes from its progress — and of every transformation of
/// all documents; for the other collections, of the latter only. Lower-cased collection
/// names, and the limit of every other collection.
fn tombstone_limits(database: &Database) -> Result<(Vec<(String, Etag)>, Etag), EtlError> {
    // Read first: a tombstone written after the snapshot is not purged in this round even
    // where no transformation would need it.
    let last_etag = database.last_etag();
    let snapshot = database.snapshot().map_err(storage)?;
    let mut all_documents = last_etag;
    let mut per_collection: BTreeMap<String, Etag> = BTreeMap::new();
    for config in configurations(&snapshot)? {
        for transform in &config.transforms {
            let progress = snapshot
                .record_value(&progress_key(&config.name, &transform.name))
                .map_err(storage)?
                .and_then(|it| serde_json::from_slice::<StoredProgress>(&it).ok())
                .unwrap_or_default()
                .last_processed_etag;
            if transform.apply_to_all_documents || transform.collections.is_empty() {
                all_documents = all_documents.min(progress);
                continue;
            }
            for collection in &transform.collections {
                let limit = per_collection.entry(key_of(collection)).or_insert(progress);
                *limit = (*limit).min(progress);
            }
        }
    }
    let limits = per_collection
        .into_iter()
        .map(|(collection, limit)| (collection, limit.min(all_documents)))
        .collect();
    Ok((limits, all_documents))
}
