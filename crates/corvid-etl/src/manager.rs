//! The ETL manager (RavenDB's task supervisor): keeps connection strings and ETL
//! configurations in each database's records, and runs one process per enabled
//! transformation — started at server start, restarted when its configuration changes,
//! stopped when disabled or deleted. What it reports as a process's status is the status
//! the process itself last recorded.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use corvid_store::{Database, Etag, Snapshot, Subscription, WriteOp, WriteResult, key_of};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::{ConnectionString, EtlConfiguration, EtlType};
use crate::process::{
    EtlOptions, ProcessContext, ProcessStats, StoredProgress, progress_key, read_progress,
};
use crate::validate::{ConfigError, validate_connection_string, validate_etl};

const CONNECTION_STRINGS: &str = "etl/connection-strings/";
const TASKS: &str = "etl/tasks/";
const NEXT_TASK_ID: &str = "etl/next-task-id";
/// Tombstones purged per write transaction, so that other writes wait little.
const PURGE_CHUNK: u64 = 10_000;

/// Why an ETL operation was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EtlError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("ETL task {task} does not exist")]
    TaskNotFound { task: String },
    #[error("an ETL task named `{name}` already exists")]
    DuplicateTaskName { name: String },
    #[error("connection string `{name}` does not exist")]
    ConnectionStringNotFound { name: String },
    #[error("connection string `{name}` is used by ETL task `{task}`")]
    ConnectionStringInUse { name: String, task: String },
    #[error("document `{id}` does not exist")]
    DocumentNotFound { id: String },
    #[error(
        "document `{id}` belongs to collection `{collection}`, which the transformation does not process"
    )]
    DocumentNotInCollections { id: String, collection: String },
    #[error("storage failed: {0}")]
    Storage(String),
}

/// A running (or stopped, errored) process as the manager sees it.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub task_id: u64,
    pub task_name: String,
    pub transform_name: String,
    pub etl_type: EtlType,
    pub disabled: bool,
    pub stats: ProcessStats,
}

/// A task with its configuration and its processes.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub config: EtlConfiguration,
    pub processes: Vec<ProcessInfo>,
}

struct RunningProcess {
    task_id: u64,
    task_name: String,
    transform_name: String,
    etl_type: EtlType,
    disabled: bool,
    stats: Arc<Mutex<ProcessStats>>,
    wake: Option<Arc<Notify>>,
    stop: watch::Sender<bool>,
    handle: Option<JoinHandle<()>>,
}

type Wakers = Arc<Mutex<Vec<(Option<Vec<String>>, Arc<Notify>)>>>;

struct DatabaseEtl {
    database: Arc<Database>,
    processes: Vec<RunningProcess>,
    wakers: Wakers,
    _subscription: Subscription,
    /// The periodic tombstone cleaner, ended with the entry.
    _cleaner: Option<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the ETL of every database of a server.
pub struct EtlManager {
    options: EtlOptions,
    databases: Mutex<HashMap<String, DatabaseEtl>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EtlManager {
    pub fn new(options: EtlOptions) -> Arc<EtlManager> {
        Arc::new(EtlManager {
            options,
            databases: Mutex::new(HashMap::new()),
        })
    }

    /// Starts the enabled processes of a database's tasks. Must run inside a tokio runtime.
    pub fn start_database(&self, database: Arc<Database>) -> Result<(), EtlError> {
        let wakers: Wakers = Arc::default();
        let subscriber_wakers = wakers.clone();
        let subscription = database.subscribe(move |notice| {
            for (collections, notify) in lock(&subscriber_wakers).iter() {
                let relevant = match collections {
                    None => true,
                    Some(names) => notice
                        .collections
                        .iter()
                        .any(|changed| names.iter().any(|it| it.eq_ignore_ascii_case(changed))),
                };
                if relevant {
                    notify.notify_one();
                }
            }
        });
        let key = key_of(database.name());
        let interval = self.options.tombstone_cleanup_interval;
        let cleaner = (!interval.is_zero()).then(|| {
            let database = database.clone();
            AbortOnDrop(tokio::spawn(async move {
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
            }))
        });
        let entry = DatabaseEtl {
            database: database.clone(),
            processes: Vec::new(),
            wakers,
            _subscription: subscription,
            _cleaner: cleaner,
        };
        if let Some(mut old) = lock(&self.databases).insert(key.clone(), entry) {
            stop_all(&mut old.processes);
        }
        for config in self.configurations(&database)? {
            self.start_task(&key, config)?;
        }
        Ok(())
    }

    /// Stops every process of a database (deleted or closing).
    pub fn stop_database(&self, name: &str) {
        if let Some(mut entry) = lock(&self.databases).remove(&key_of(name)) {
            stop_all(&mut entry.processes);
        }
    }

    /// Stops every process of every database.
    pub fn stop_all(&self) {
        for (_, mut entry) in lock(&self.databases).drain() {
            stop_all(&mut entry.processes);
        }
    }

    /// Returns the database's connection strings.
    pub fn connection_strings(
        &self,
        database: &Database,
    ) -> Result<Vec<ConnectionString>, EtlError> {
        let snapshot = database.snapshot().map_err(storage)?;
        let mut found = Vec::new();
        for (_, value) in snapshot
            .records_with_prefix(CONNECTION_STRINGS)
            .map_err(storage)?
        {
            found.push(serde_json::from_slice(&value).map_err(storage)?);
        }
        Ok(found)
    }

    /// Returns the database's ETL configurations, by task id.
    pub fn configurations(&self, database: &Database) -> Result<Vec<EtlConfiguration>, EtlError> {
        configurations(&database.snapshot().map_err(storage)?)
    }

    /// Removes the tombstones that every ETL transformation of the database has processed
    /// (what RavenDB's tombstone cleaner does; the manager also runs this every
    /// [`EtlOptions::tombstone_cleanup_interval`]). Returns how many went.
    pub async fn purge_tombstones(&self, database: &Arc<Database>) -> Result<u64, EtlError> {
        purge_tombstones(database).await
    }

    /// Adds or replaces a connection string; tasks using it restart with it.
    pub async fn put_connection_string(
        &self,
        database: &Arc<Database>,
        connection: ConnectionString,
    ) -> Result<(), EtlError> {
        validate_connection_string(&connection)?;
        let value = serde_json::to_vec(&connection).map_err(storage)?;
        write(
            database,
            vec![WriteOp::PutRecord {
                key: connection_string_key(connection.kind(), connection.name()),
                value: Some(value),
            }],
        )
        .await?;
        let users: Vec<EtlConfiguration> = self
            .configurations(database)?
            .into_iter()
            .filter(|it| {
                it.etl_type == connection.kind()
                    && it
                        .connection_string_name
                        .eq_ignore_ascii_case(connection.name())
            })
            .collect();
        for config in users {
            self.restart_task(database, config).await?;
        }
        Ok(())
    }

    /// Removes a connection string no task uses.
    pub async fn remove_connection_string(
        &self,
        database: &Arc<Database>,
        name: &str,
        kind: EtlType,
    ) -> Result<(), EtlError> {
        if let Some(task) = self
            .configurations(database)?
            .into_iter()
            .find(|it| it.etl_type == kind && it.connection_string_name.eq_ignore_ascii_case(name))
        {
            return Err(EtlError::ConnectionStringInUse {
                name: name.to_owned(),
                task: task.name,
            });
        }
        let exists = self
            .connection_strings(database)?
            .iter()
            .any(|it| it.kind() == kind && it.name().eq_ignore_ascii_case(name));
        if !exists {
            return Err(EtlError::ConnectionStringNotFound {
                name: name.to_owned(),
            });
        }
        write(
            database,
            vec![WriteOp::PutRecord {
                key: connection_string_key(kind, name),
                value: None,
            }],
        )
        .await?;
        Ok(())
    }

    /// Adds a task; returns its id.
    pub async fn add_etl(
        &self,
        database: &Arc<Database>,
        config: EtlConfiguration,
    ) -> Result<u64, EtlError> {
        validate_etl(config.clone(), &self.connection_strings(database)?)?;
        if self
            .configurations(database)?
            .iter()
            .any(|it| it.name.eq_ignore_ascii_case(&config.name))
        {
            return Err(EtlError::DuplicateTaskName { name: config.name });
        }
        self.store_new_task(database, config, Vec::new()).await
    }

    /// Replaces a task's configuration (RavenDB: delete and add, so the task id changes);
    /// progress is kept unless a transformation is named in `reset`.
    pub async fn update_etl(
        &self,
        database: &Arc<Database>,
        task_id: u64,
        config: EtlConfiguration,
        reset: &[String],
    ) -> Result<u64, EtlError> {
        let old = self.task_config(database, task_id)?;
        validate_etl(config.clone(), &self.connection_strings(database)?)?;
        if self
            .configurations(database)?
            .iter()
            .any(|it| it.task_id != task_id && it.name.eq_ignore_ascii_case(&config.name))
        {
            return Err(EtlError::DuplicateTaskName { name: config.name });
        }
        let mut ops = vec![WriteOp::PutRecord {
            key: task_key(task_id),
            value: None,
        }];
        for transform in reset {
            ops.push(WriteOp::PutRecord {
                key: progress_key(&config.name, transform),
                value: None,
            });
        }
        self.stop_task(database, old.task_id).await;
        self.store_new_task(database, config, ops).await
    }

    async fn store_new_task(
        &self,
        database: &Arc<Database>,
        mut config: EtlConfiguration,
        mut ops: Vec<WriteOp>,
    ) -> Result<u64, EtlError> {
        let results = write(
            database,
            vec![WriteOp::NextSequence {
                key: NEXT_TASK_ID.to_owned(),
            }],
        )
        .await?;
        let Some(WriteResult::NextSequence(task_id)) = results.first() else {
            return Err(EtlError::Storage("no task id was allocated".to_owned()));
        };
        config.task_id = *task_id;
        ops.push(WriteOp::PutRecord {
            key: task_key(config.task_id),
            value: Some(serde_json::to_vec(&config).map_err(storage)?),
        });
        write(database, ops).await?;
        let task_id = config.task_id;
        self.start_task(&key_of(database.name()), config)?;
        Ok(task_id)
    }

    /// Sends a transformation back to etag 0: everything is sent again.
    pub async fn reset_etl(
        &self,
        database: &Arc<Database>,
        task_name: &str,
        transform_name: &str,
    ) -> Result<(), EtlError> {
        let config = self.task_by_name(database, task_name)?;
        if !config
            .transforms
            .iter()
            .any(|it| it.name.eq_ignore_ascii_case(transform_name))
        {
            return Err(EtlError::TaskNotFound {
                task: format!("`{task_name}` transformation `{transform_name}`"),
            });
        }
        self.stop_task(database, config.task_id).await;
        write(
            database,
            vec![WriteOp::PutRecord {
                key: progress_key(&config.name, transform_name),
                value: None,
            }],
        )
        .await?;
        self.start_task(&key_of(database.name()), config)
    }

    /// Enables or disables a whole task.
    pub async fn set_disabled(
        &self,
        database: &Arc<Database>,
        task_id: u64,
        disabled: bool,
    ) -> Result<u64, EtlError> {
        let mut config = self.task_config(database, task_id)?;
        config.disabled = disabled;
        write(
            database,
            vec![WriteOp::PutRecord {
                key: task_key(task_id),
                value: Some(serde_json::to_vec(&config).map_err(storage)?),
            }],
        )
        .await?;
        self.restart_task(database, config).await?;
        Ok(task_id)
    }

    /// Deletes a task and its progress.
    pub async fn delete_task(
        &self,
        database: &Arc<Database>,
        task_id: u64,
    ) -> Result<(), EtlError> {
        let config = self.task_config(database, task_id)?;
        self.stop_task(database, task_id).await;
        let mut ops = vec![WriteOp::PutRecord {
            key: task_key(task_id),
            value: None,
        }];
        for transform in &config.transforms {
            ops.push(WriteOp::PutRecord {
                key: progress_key(&config.name, &transform.name),
                value: None,
            });
        }
        write(database, ops).await?;
        Ok(())
    }

    /// Returns a task by id.
    pub fn task_config(
        &self,
        database: &Database,
        task_id: u64,
    ) -> Result<EtlConfiguration, EtlError> {
        self.configurations(database)?
            .into_iter()
            .find(|it| it.task_id == task_id)
            .ok_or_else(|| EtlError::TaskNotFound {
                task: task_id.to_string(),
            })
    }

    /// Returns a task by name (case-insensitive).
    pub fn task_by_name(
        &self,
        database: &Database,
        name: &str,
    ) -> Result<EtlConfiguration, EtlError> {
        self.configurations(database)?
            .into_iter()
            .find(|it| it.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| EtlError::TaskNotFound {
                task: format!("`{name}`"),
            })
    }

    /// Returns every task of a database with its processes' state.
    pub fn tasks(&self, database: &Database) -> Result<Vec<TaskInfo>, EtlError> {
        let configs = self.configurations(database)?;
        let databases = lock(&self.databases);
        let running = databases.get(&key_of(database.name()));
        Ok(configs
            .into_iter()
            .map(|config| {
                let processes = running
                    .map(|entry| {
                        entry
                            .processes
                            .iter()
                            .filter(|it| it.task_id == config.task_id)
                            .map(|it| ProcessInfo {
                                task_id: it.task_id,
                                task_name: it.task_name.clone(),
                                transform_name: it.transform_name.clone(),
                                etl_type: it.etl_type,
                                disabled: it.disabled,
                                stats: lock(&it.stats).clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                TaskInfo { config, processes }
            })
            .collect())
    }

    /// Returns how many documents and tombstones a transformation still has to process.
    pub fn remaining(
        &self,
        database: &Database,
        task_name: &str,
        collections: Option<&[String]>,
        transform_name: &str,
    ) -> Result<(u64, u64, u64, u64), EtlError> {
        let last = read_progress(database, &progress_key(task_name, transform_name));
        let snapshot = database.snapshot().map_err(storage)?;
        let sources: Vec<Option<&str>> = match collections {
            Some(names) => names.iter().map(|it| Some(it.as_str())).collect(),
            None => vec![None],
        };
        let (mut docs_left, mut docs_total, mut tombstones_left, mut tombstones_total) =
            (0, 0, 0, 0);
        for source in sources {
            docs_total += snapshot.count_documents(source).map_err(storage)?;
            docs_left += snapshot
                .count_documents_after(source, last)
                .map_err(storage)?;
            tombstones_total += snapshot.count_tombstones(source).map_err(storage)?;
            tombstones_left += snapshot
                .count_tombstones_after(source, last)
                .map_err(storage)?;
        }
        Ok((docs_left, docs_total, tombstones_left, tombstones_total))
    }

    fn start_task(&self, database_key: &str, config: EtlConfiguration) -> Result<(), EtlError> {
        let mut databases = lock(&self.databases);
        let Some(entry) = databases.get_mut(database_key) else {
            return Ok(());
        };
        let connection_strings = self.connection_strings(&entry.database)?;
        let validated = match validate_etl(config.clone(), &connection_strings) {
            Ok(it) => it,
            Err(error) => {
                tracing::error!(task = %config.name, %error, "etl task cannot start");
                return Ok(());
            }
        };
        for transform in validated.transforms {
            let disabled = config.disabled || transform.disabled;
            let stats = Arc::new(Mutex::new(ProcessStats::default()));
            let (stop, stop_receiver) = watch::channel(false);
            let mut process = RunningProcess {
                task_id: config.task_id,
                task_name: config.name.clone(),
                transform_name: transform.name.clone(),
                etl_type: config.etl_type,
                disabled,
                stats: stats.clone(),
                wake: None,
                stop,
                handle: None,
            };
            if !disabled {
                let wake = Arc::new(Notify::new());
                lock(&entry.wakers).push((transform.collections.clone(), wake.clone()));
                process.wake = Some(wake.clone());
                let context = ProcessContext {
                    database: entry.database.clone(),
                    task_name: config.name.clone(),
                    transform,
                    options: self.options.clone(),
                    stats,
                    wake,
                    stop: stop_receiver,
                };
                process.handle = Some(validated.destination.spawn_process(context));
            }
            entry.processes.push(process);
        }
        Ok(())
    }

    /// Stops the processes of a task and returns once each has ended. A process aborted
    /// between a finished load and its progress write could otherwise submit that write
    /// after the caller's next one (a reset's, a delete's) and undo it; once the task has
    /// ended, anything it submitted is queued in the database's writer before what the
    /// caller writes next.
    async fn stop_task(&self, database: &Database, task_id: u64) {
        let stopping = {
            let mut databases = lock(&self.databases);
            let Some(entry) = databases.get_mut(&key_of(database.name())) else {
                return;
            };
            let (stopping, keep): (Vec<_>, Vec<_>) = entry
                .processes
                .drain(..)
                .partition(|it| it.task_id == task_id);
            entry.processes = keep;
            lock(&entry.wakers).retain(|(_, wake)| {
                !stopping.iter().any(|it| {
                    it.wake
                        .as_ref()
                        .is_some_and(|stopped| Arc::ptr_eq(stopped, wake))
                })
            });
            stopping
        };
        let mut handles = Vec::with_capacity(stopping.len());
        for process in stopping {
            let _ = process.stop.send(true);
            if let Some(handle) = process.handle {
                handle.abort();
                handles.push(handle);
            }
        }
        for handle in handles {
            // Cancelled, or it had finished: either way it writes nothing more.
            let _ = handle.await;
        }
    }

    async fn restart_task(
        &self,
        database: &Arc<Database>,
        config: EtlConfiguration,
    ) -> Result<(), EtlError> {
        self.stop_task(database, config.task_id).await;
        self.start_task(&key_of(database.name()), config)
    }
}

fn configurations(snapshot: &Snapshot) -> Result<Vec<EtlConfiguration>, EtlError> {
    let mut found = Vec::new();
    for (_, value) in snapshot.records_with_prefix(TASKS).map_err(storage)? {
        found.push(serde_json::from_slice(&value).map_err(storage)?);
    }
    Ok(found)
}

/// See [`EtlManager::purge_tombstones`].
async fn purge_tombstones(database: &Arc<Database>) -> Result<u64, EtlError> {
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

fn stop_all(processes: &mut Vec<RunningProcess>) {
    for process in processes.drain(..) {
        let _ = process.stop.send(true);
        if let Some(handle) = process.handle {
            handle.abort();
        }
    }
}

fn connection_string_key(kind: EtlType, name: &str) -> String {
    format!("{CONNECTION_STRINGS}{kind:?}/{}", name.to_lowercase())
}

fn task_key(task_id: u64) -> String {
    format!("{TASKS}{task_id:020}")
}

fn storage(error: impl std::fmt::Display) -> EtlError {
    EtlError::Storage(error.to_string())
}

async fn write(database: &Arc<Database>, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, EtlError> {
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
