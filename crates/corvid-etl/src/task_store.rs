//! The task store: connection strings, ETL configurations and task ids as records of each
//! database, read from a snapshot and written through the database's writer. It runs no
//! process and holds no lock; the supervisor (`manager.rs`) and the tombstone cleaner read
//! and write through it.

use std::sync::Arc;

use corvid_store::{Database, Snapshot, WriteOp, WriteResult};

use crate::config::{ConnectionString, EtlConfiguration, EtlType};
use crate::manager::EtlError;
use crate::secrets::SecretsKey;

const CONNECTION_STRINGS: &str = "etl/connection-strings/";
const TASKS: &str = "etl/tasks/";
pub(crate) const NEXT_TASK_ID: &str = "etl/next-task-id";

/// The database's connection strings.
/// Records sealed with `secrets` (see `secrets.rs`) are opened; plain ones read as they are.
pub(crate) fn connection_strings(
    database: &Database,
    secrets: Option<&SecretsKey>,
) -> Result<Vec<ConnectionString>, EtlError> {
    let snapshot = database.snapshot().map_err(storage)?;
    let mut found = Vec::new();
    for (key, value) in snapshot
        .records_with_prefix(CONNECTION_STRINGS)
        .map_err(storage)?
    {
        let plain = crate::secrets::open(secrets, &key, &value).map_err(storage)?;
        found.push(serde_json::from_slice(&plain).map_err(storage)?);
    }
    Ok(found)
}

/// The ETL configurations in a snapshot, by task id.
pub(crate) fn configurations(snapshot: &Snapshot) -> Result<Vec<EtlConfiguration>, EtlError> {
    let mut found = Vec::new();
    for (_, value) in snapshot.records_with_prefix(TASKS).map_err(storage)? {
        found.push(serde_json::from_slice(&value).map_err(storage)?);
    }
    Ok(found)
}

pub(crate) fn connection_string_key(kind: EtlType, name: &str) -> String {
    format!("{CONNECTION_STRINGS}{kind:?}/{}", name.to_lowercase())
}

pub(crate) fn task_key(task_id: u64) -> String {
    format!("{TASKS}{task_id:020}")
}

pub(crate) fn storage(error: impl std::fmt::Display) -> EtlError {
    EtlError::Storage(error.to_string())
}

pub(crate) async fn write(
    database: &Arc<Database>,
    ops: Vec<WriteOp>,
) -> Result<Vec<WriteResult>, EtlError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    database.write_async(
        ops,
        Box::new(move |result| {
            let _ = sender.send(result);
        }),
    );
    match receiver.await {
        Ok(Ok(it)) => Ok(it),
        Ok(Err(error)) => Err(storage(error)),
        Err(_) => Err(storage("the database closed")),
    }
}
