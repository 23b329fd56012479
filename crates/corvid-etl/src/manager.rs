//! The ETL manager (RavenDB's task supervisor): runs one process per enabled transformation
//! — started at server start, restarted when its configuration changes, stopped when
//! disabled or deleted. The configurations live in the task store (`task_store.rs`), the
//! tombstones are purged by the tombstone cleaner (`tombstone_cleaner.rs`). A configuration
//! is validated once, off the async runtime, before the supervisor's lock is taken; the
//! lock guards only the table of running processes (no I/O, no script analysis under it).
//! What it reports as a process's status is the status the process itself last recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use corvid_store::{Database, Subscription, Timestamp, WriteOp, WriteResult, key_of};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::{ConnectionString, EtlConfiguration, EtlType};
use crate::destinations::ValidatedDestination;
use crate::destinations::sql::connection::{self, SqlProvider};
use crate::options::{EtlOptions, SqlitePaths};
use crate::process::{ProcessContext, ProcessStats, progress_key, read_progress};
use crate::secrets::SecretsKey;
use crate::task_store::{
    self, NEXT_TASK_ID, configurations, connection_string_key, storage, task_key, write,
};
use crate::tombstone_cleaner::{TombstoneCleaner, purge_tombstones};
use crate::validate::{ConfigError, ValidatedEtl, validate_connection_string, validate_etl};

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
    _cleaner: Option<TombstoneCleaner>,
}

/// Runs the ETL of every database of a server.
pub struct EtlManager {
    options: EtlOptions,
    /// Loaded (or created) on first use from `options.secrets_key_file`; loaded again after
    /// [`EtlManager::reload_secrets_key`].
    secrets: Mutex<Option<Result<Option<Arc<SecretsKey>>, String>>>,
    databases: Mutex<HashMap<String, DatabaseEtl>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EtlManager {
    /// The key connection strings are sealed with, if the server has one.
    fn secrets(&self) -> Result<Option<Arc<SecretsKey>>, EtlError> {
        lock(&self.secrets)
            .get_or_insert_with(|| match &self.options.secrets_key_file {
                None => Ok(None),
                Some(path) => SecretsKey::load_or_create(path).map(|it| Some(Arc::new(it))),
            })
            .clone()
            .map_err(EtlError::Storage)
    }

    /// The file connection strings' secrets key is kept in, if any. The nodes of a cluster
    /// share one key (a node that joins gets the leader's), since the connection strings of a
    /// replicated database are sealed on one node and read on the others.
    pub fn secrets_key_file(&self) -> Option<&std::path::Path> {
        self.options.secrets_key_file.as_deref()
    }

    /// Makes sure the secrets key exists (creating its file if needed), so it can be shared.
    pub fn ensure_secrets_key(&self) -> Result<(), EtlError> {
        self.secrets().map(|_| ())
    }

    /// Forgets the loaded key: the file was replaced (a node joining a cluster takes its key).
    pub fn reload_secrets_key(&self) {
        lock(&self.secrets).take();
    }

    /// Where SQL ETL's SQLite files may be (for the test endpoints).
    pub fn sqlite_paths(&self) -> &SqlitePaths {
        &self.options.sqlite
    }

    pub fn new(options: EtlOptions) -> Arc<EtlManager> {
        Arc::new(EtlManager {
            options,
            secrets: Mutex::new(None),
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
        let cleaner =
            TombstoneCleaner::start(database.clone(), self.options.tombstone_cleanup_interval);
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
        let connection_strings = self.connection_strings(&database)?;
        for config in self.configurations(&database)? {
            match validate_etl(config, &connection_strings)
                .and_then(|it| confine_sqlite(it, &self.options.sqlite))
            {
                Ok(validated) => self.start_validated(&key, validated),
                Err(error) => tracing::error!(%error, "etl task cannot start"),
            }
        }
        Ok(())
    }

    /// Whether the processes of a database are started here ([`EtlManager::start_database`]).
    pub fn has_database(&self, name: &str) -> bool {
        lock(&self.databases).contains_key(&key_of(name))
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
        task_store::connection_strings(database, self.secrets()?.as_deref())
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
        mut connection: ConnectionString,
    ) -> Result<(), EtlError> {
        // A client that edits what GET showed sends the password back as `*****`.
        if let ConnectionString::Sql(sql) = &mut connection
            && let Some(ConnectionString::Sql(stored)) = self
                .connection_strings(database)?
                .into_iter()
                .find(|it| it.kind() == EtlType::Sql && it.name().eq_ignore_ascii_case(&sql.name))
        {
            sql.connection_string =
                connection::restore_password(sql, &stored).map_err(|reason| {
                    ConfigError::InvalidConnectionString {
                        name: sql.name.clone(),
                        reason,
                    }
                })?;
        }
        if let ConnectionString::Queue(queue) = &mut connection
            && let Some(ConnectionString::Queue(stored)) =
                self.connection_strings(database)?.into_iter().find(|it| {
                    it.kind() == EtlType::Queue && it.name().eq_ignore_ascii_case(&queue.name)
                })
        {
            queue.restore_secrets(&stored).map_err(|reason| {
                ConfigError::InvalidConnectionString {
                    name: queue.name.clone(),
                    reason,
                }
            })?;
        }
        if let ConnectionString::Olap(olap) = &mut connection
            && let Some(ConnectionString::Olap(stored)) = self
                .connection_strings(database)?
                .into_iter()
                .find(|it| it.kind() == EtlType::Olap && it.name().eq_ignore_ascii_case(&olap.name))
        {
            olap.restore_secrets(&stored).map_err(|reason| {
                ConfigError::InvalidConnectionString {
                    name: olap.name.clone(),
                    reason,
                }
            })?;
        }
        validate_connection_string(&connection)?;
        if let ConnectionString::Olap(olap) = &connection
            && let Some(local) = &olap.local_settings
        {
            self.options
                .olap
                .resolve(&local.folder_path)
                .map_err(|reason| ConfigError::InvalidConnectionString {
                    name: olap.name.clone(),
                    reason,
                })?;
        }
        if let ConnectionString::Sql(sql) = &connection
            && let Ok(target) = connection::parse(&sql.factory_name, &sql.connection_string)
            && target.provider == SqlProvider::Sqlite
        {
            self.options
                .sqlite
                .resolve(&target.database)
                .map_err(|reason| ConfigError::InvalidConnectionString {
                    name: sql.name.clone(),
                    reason,
                })?;
        }
        let key = connection_string_key(connection.kind(), connection.name());
        let mut value = serde_json::to_vec(&connection).map_err(storage)?;
        if let Some(secrets) = self.secrets()? {
            value = secrets.seal(&key, &value).map_err(EtlError::Storage)?;
        }
        write(
            database,
            vec![WriteOp::PutRecord {
                key,
                value: Some(value),
            }],
        )
        .await?;
        let users: Vec<EtlConfiguration> = self
            .configurations(database)?
            .into_iter()
            .filter(|it| {
                it.etl_type() == connection.kind()
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
        if let Some(task) = self.configurations(database)?.into_iter().find(|it| {
            it.etl_type() == kind && it.connection_string_name.eq_ignore_ascii_case(name)
        }) {
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
        let validated = validate_off_runtime(database, config, self).await?;
        if self
            .configurations(database)?
            .iter()
            .any(|it| it.name.eq_ignore_ascii_case(&validated.config.name))
        {
            return Err(EtlError::DuplicateTaskName {
                name: validated.config.name,
            });
        }
        self.store_new_task(database, validated, Vec::new()).await
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
        let validated = validate_off_runtime(database, config, self).await?;
        let config = &validated.config;
        if self
            .configurations(database)?
            .iter()
            .any(|it| it.task_id != task_id && it.name.eq_ignore_ascii_case(&config.name))
        {
            return Err(EtlError::DuplicateTaskName {
                name: config.name.clone(),
            });
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
        self.store_new_task(database, validated, ops).await
    }

    async fn store_new_task(
        &self,
        database: &Arc<Database>,
        mut validated: ValidatedEtl,
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
        validated.config.task_id = *task_id;
        let task_id = *task_id;
        ops.push(WriteOp::PutRecord {
            key: task_key(task_id),
            value: Some(serde_json::to_vec(&validated.config).map_err(storage)?),
        });
        write(database, ops).await?;
        self.start_validated(&key_of(database.name()), validated);
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
        self.start_stored_task(database, config).await
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

    /// Returns when the oldest change a transformation still has to process was written (a
    /// document's last modification or a tombstone's deletion), or `None` when it is caught
    /// up: how far behind the transformation is, in time.
    pub fn oldest_unprocessed(
        &self,
        database: &Database,
        task_name: &str,
        collections: Option<&[String]>,
        transform_name: &str,
    ) -> Result<Option<Timestamp>, EtlError> {
        let last = read_progress(database, &progress_key(task_name, transform_name));
        let snapshot = database.snapshot().map_err(storage)?;
        let sources: Vec<Option<&str>> = match collections {
            Some(names) => names.iter().map(|it| Some(it.as_str())).collect(),
            None => vec![None],
        };
        let mut oldest: Option<Timestamp> = None;
        for source in sources {
            // The first change after the progress in etag order is the oldest one.
            if let Some(doc) = snapshot
                .documents_after(source, last)
                .map_err(storage)?
                .next()
            {
                let at = doc.map_err(storage)?.last_modified;
                oldest = Some(oldest.map_or(at, |it| it.min(at)));
            }
            if let Some(tombstone) = snapshot
                .tombstones_after(source, last)
                .map_err(storage)?
                .next()
            {
                let at = tombstone.map_err(storage)?.deleted_at;
                oldest = Some(oldest.map_or(at, |it| it.min(at)));
            }
        }
        Ok(oldest)
    }

    /// Starts a stored task again: validated off the runtime (a stored configuration may no
    /// longer fit a changed connection string: it is logged and not started).
    async fn start_stored_task(
        &self,
        database: &Arc<Database>,
        config: EtlConfiguration,
    ) -> Result<(), EtlError> {
        let name = config.name.clone();
        match validate_off_runtime(database, config, self).await {
            Ok(validated) => self.start_validated(&key_of(database.name()), validated),
            Err(EtlError::Config(error)) => {
                tracing::error!(task = %name, %error, "etl task cannot start");
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// Starts the processes of a validated task. The manager's lock is held only to add
    /// them: no I/O and no script analysis under it.
    fn start_validated(&self, database_key: &str, validated: ValidatedEtl) {
        let mut databases = lock(&self.databases);
        let Some(entry) = databases.get_mut(database_key) else {
            return;
        };
        let config = &validated.config;
        for transform in validated.transforms {
            let disabled = config.disabled || transform.disabled;
            let stats = Arc::new(Mutex::new(ProcessStats::default()));
            let (stop, stop_receiver) = watch::channel(false);
            let mut process = RunningProcess {
                task_id: config.task_id,
                task_name: config.name.clone(),
                transform_name: transform.name.clone(),
                etl_type: config.etl_type(),
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
        self.start_stored_task(database, config).await
    }
}

/// Validates a configuration against the database's connection strings on a blocking
/// thread: reading the records and analysing the scripts stay off the async runtime.
async fn validate_off_runtime(
    database: &Arc<Database>,
    config: EtlConfiguration,
    manager: &EtlManager,
) -> Result<ValidatedEtl, EtlError> {
    let database = database.clone();
    let sqlite = manager.options.sqlite.clone();
    let secrets = manager.secrets()?;
    tokio::task::spawn_blocking(move || {
        let connection_strings = task_store::connection_strings(&database, secrets.as_deref())?;
        Ok(confine_sqlite(
            validate_etl(config, &connection_strings)?,
            &sqlite,
        )?)
    })
    .await
    .map_err(|error| EtlError::Storage(format!("the validation stopped: {error}")))?
}

/// Resolves a SQL ETL task's SQLite file in the SQLite directory; a file outside it is refused
/// (issue 18 finding 4).
pub(crate) fn confine_sqlite(
    mut validated: ValidatedEtl,
    sqlite: &SqlitePaths,
) -> Result<ValidatedEtl, ConfigError> {
    if let ValidatedDestination::Sql(destination) = &mut validated.destination
        && destination.target.provider == SqlProvider::Sqlite
    {
        let resolved = sqlite
            .resolve(&destination.target.database)
            .map_err(|reason| ConfigError::InvalidConnectionString {
                name: validated.config.connection_string_name.clone(),
                reason,
            })?;
        destination.target.database = resolved.to_string_lossy().into_owned();
    }
    Ok(validated)
}

fn stop_all(processes: &mut Vec<RunningProcess>) {
    for process in processes.drain(..) {
        let _ = process.stop.send(true);
        if let Some(handle) = process.handle {
            handle.abort();
        }
    }
}
