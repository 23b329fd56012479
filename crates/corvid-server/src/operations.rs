//! Long-running operations, RavenDB's way: a request that starts one (patch or delete by query,
//! bulk insert) gets an operation id, the work runs on its own task, and the client polls
//! `GET /databases/{db}/operations/state?id=` until the status is `Completed`, `Faulted` or
//! `Canceled`. Ids are per server and never reused while it runs, as a client may take one with
//! `GET /operations/next-operation-id` before it starts the operation (bulk insert does).
//!
//! Finished states are kept for [`KEEP_FINISHED`] so a slow poller still sees the result, and at
//! most [`MAX_FINISHED`] of them at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::ApiError;

/// How long a finished operation's state stays readable.
pub(crate) const KEEP_FINISHED: Duration = Duration::from_secs(15 * 60);
/// The most finished states kept; the oldest go first.
pub(crate) const MAX_FINISHED: usize = 4096;

/// RavenDB's `OperationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperationStatus {
    InProgress,
    Completed,
    Faulted,
    Canceled,
}

impl OperationStatus {
    fn as_str(self) -> &'static str {
        match self {
            OperationStatus::InProgress => "InProgress",
            OperationStatus::Completed => "Completed",
            OperationStatus::Faulted => "Faulted",
            OperationStatus::Canceled => "Canceled",
        }
    }
}

struct Entry {
    database: String,
    status: OperationStatus,
    /// The `Result` of a finished operation (RavenDB's `IOperationResult` JSON).
    result: Option<Value>,
    /// The latest `Progress` of a running one.
    progress: Option<Value>,
    finished_at: Option<Instant>,
    abort: Option<tokio::task::AbortHandle>,
}

/// Every operation of the server, by id.
#[derive(Default)]
pub(crate) struct Operations {
    last_id: AtomicU64,
    entries: Mutex<HashMap<u64, Entry>>,
}

impl Operations {
    /// Returns a fresh operation id (`GET /operations/next-operation-id`).
    pub fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers operation `id` of `database` as running. A client-chosen id (bulk insert's
    /// `?id=`) that is already in use is refused.
    pub fn begin(&self, database: &str, id: u64) -> Result<(), ApiError> {
        let mut entries = self.lock();
        if entries.contains_key(&id) {
            return Err(ApiError::bad_request(format!(
                "operation {id} already exists; take a new id from /operations/next-operation-id"
            )));
        }
        // An id a client made up must not collide with one handed out later.
        self.last_id.fetch_max(id, Ordering::Relaxed);
        entries.insert(
            id,
            Entry {
                database: database.to_owned(),
                status: OperationStatus::InProgress,
                result: None,
                progress: None,
                finished_at: None,
                abort: None,
            },
        );
        Ok(())
    }

    /// Records the progress of a running operation (shown as `Progress`).
    pub fn progress(&self, id: u64, progress: Value) {
        if let Some(entry) = self.lock().get_mut(&id)
            && entry.status == OperationStatus::InProgress
        {
            entry.progress = Some(progress);
        }
    }

    /// Marks operation `id` completed with `result`.
    pub fn complete(&self, id: u64, result: Value) {
        self.finish(id, OperationStatus::Completed, result);
    }

    /// Marks operation `id` faulted; the result carries the error as RavenDB's
    /// `OperationExceptionResult`, which the clients raise.
    pub fn fail(&self, id: u64, error: &ApiError) {
        let result = json!({
            "$type": "Raven.Client.Documents.Operations.OperationExceptionResult, Raven.Client",
            "Type": error.type_name,
            "Message": error.message,
            "Error": format!("{}: {}", error.type_name, error.message),
            "StatusCode": error.status.as_u16(),
        });
        self.finish(id, OperationStatus::Faulted, result);
    }

    /// Runs `work` as operation `id` on its own task; its outcome becomes the state. The
    /// operation must have been registered with [`Operations::begin`].
    pub fn spawn<F>(self: &std::sync::Arc<Self>, id: u64, work: F)
    where
        F: Future<Output = Result<Value, ApiError>> + Send + 'static,
    {
        let operations = self.clone();
        let handle = tokio::spawn(async move {
            match work.await {
                Ok(result) => operations.complete(id, result),
                Err(error) => operations.fail(id, &error),
            }
        });
        if let Some(entry) = self.lock().get_mut(&id)
            && entry.status == OperationStatus::InProgress
        {
            entry.abort = Some(handle.abort_handle());
        }
    }

    /// Cancels a running operation (`POST /operations/kill`). Returns false for an unknown id.
    pub fn kill(&self, database: &str, id: u64) -> bool {
        let abort = {
            let mut entries = self.lock();
            let Some(entry) = entries.get_mut(&id).filter(|it| it.database == database) else {
                return false;
            };
            if entry.status != OperationStatus::InProgress {
                return true;
            }
            entry.status = OperationStatus::Canceled;
            entry.finished_at = Some(Instant::now());
            entry.result = None;
            entry.abort.take()
        };
        if let Some(abort) = abort {
            abort.abort();
        }
        true
    }

    /// The state JSON of operation `id` of `database` (`GET /operations/state?id=`), or `None`.
    pub fn state(&self, database: &str, id: u64) -> Option<Value> {
        let entries = self.lock();
        let entry = entries.get(&id).filter(|it| it.database == database)?;
        Some(json!({
            "Status": entry.status.as_str(),
            "Result": entry.result,
            "Progress": entry.progress,
        }))
    }

    /// The status of operation `id`, whatever its database.
    pub fn status(&self, id: u64) -> Option<OperationStatus> {
        self.lock().get(&id).map(|it| it.status)
    }

    fn finish(&self, id: u64, status: OperationStatus, result: Value) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(&id) {
            // A killed operation stays canceled whatever its task did after the kill.
            if entry.status == OperationStatus::InProgress {
                entry.status = status;
                entry.result = Some(result);
                entry.progress = None;
                entry.finished_at = Some(Instant::now());
                entry.abort = None;
            }
        }
        Self::forget_old(&mut entries);
    }

    fn forget_old(entries: &mut HashMap<u64, Entry>) {
        let now = Instant::now();
        entries.retain(|_, it| {
            it.finished_at
                .is_none_or(|at| now.duration_since(at) < KEEP_FINISHED)
        });
        let n_finished = entries
            .values()
            .filter(|it| it.finished_at.is_some())
            .count();
        if n_finished > MAX_FINISHED {
            let mut finished: Vec<(Instant, u64)> = entries
                .iter()
                .filter_map(|(id, it)| it.finished_at.map(|at| (at, *id)))
                .collect();
            finished.sort_unstable();
            for (_, id) in finished.into_iter().take(n_finished - MAX_FINISHED) {
                entries.remove(&id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_after_a_client_chosen_one() {
        let operations = Operations::default();
        assert_eq!(operations.next_id(), 1);
        operations.begin("db", 10).expect("begin");
        assert_eq!(operations.next_id(), 11);
        assert!(operations.begin("db", 10).is_err());
    }

    #[test]
    fn state_follows_the_operation_and_is_per_database() {
        let operations = Operations::default();
        operations.begin("db", 1).expect("begin");
        assert_eq!(
            operations.state("db", 1).expect("state")["Status"],
            "InProgress"
        );
        assert!(operations.state("other", 1).is_none());
        operations.complete(1, json!({"Total": 3}));
        let state = operations.state("db", 1).expect("state");
        assert_eq!(state["Status"], "Completed");
        assert_eq!(state["Result"]["Total"], 3);
        // Finished stays finished.
        operations.fail(1, &ApiError::bad_request("late"));
        assert_eq!(
            operations.state("db", 1).expect("state")["Status"],
            "Completed"
        );
    }

    #[test]
    fn a_failure_carries_the_error() {
        let operations = Operations::default();
        operations.begin("db", 1).expect("begin");
        operations.fail(1, &ApiError::bad_request("bad script"));
        let state = operations.state("db", 1).expect("state");
        assert_eq!(state["Status"], "Faulted");
        assert_eq!(state["Result"]["Message"], "bad script");
    }

    #[tokio::test]
    async fn kill_cancels_a_running_operation() {
        let operations = std::sync::Arc::new(Operations::default());
        operations.begin("db", 1).expect("begin");
        operations.spawn(1, async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(json!({}))
        });
        assert!(operations.kill("db", 1));
        assert_eq!(operations.status(1), Some(OperationStatus::Canceled));
        assert!(!operations.kill("db", 2));
    }
}
