//! Corvid's ETL: ongoing tasks that push a filtered, transformed part of a database to
//! another system, continuously, resuming exactly where they stopped.
//!
//! - [`config`]: connection strings and ETL configurations in RavenDB's JSON shapes.
//! - [`validate`]: their validation into runtime types, scripts analysed at save time.
//! - [`EtlManager`]: keeps them in each database's records and runs one process per enabled
//!   transformation.
//! - A process (`process.rs`) loops: extract and transform on its script worker thread
//!   (`worker.rs`, reading one snapshot), load through the destination, and only then persist
//!   progress; when caught up it waits for a commit notification; when a load fails it keeps
//!   its progress and retries the same items after a back-off (5 s doubling to 900 s).
//!
//! - A destination (`destination.rs`, the seam; `destinations/<name>/`) supplies the
//!   encoder and the loader of its batches and classifies its load errors; the engine names
//!   none.
//!
//! Invariants: progress never moves past a change that was not delivered (or deliberately
//! filtered, or refused by the destination on its own and reported); a script error skips
//! only its document and is reported with the document id; nothing is skipped because a
//! destination was down. Delivery is at-least-once and every
//! load is idempotent (puts by id, delete-by-prefix before cross-collection puts).
//! This crate knows nothing about HTTP routes or status codes.

pub mod config;
mod destination;
pub mod destinations;
mod extract;
pub mod histogram;
mod manager;
mod options;
mod process;
mod script_budget;
mod secrets;
mod task_store;
mod test_script;
mod tombstone_cleaner;
pub mod validate;
mod worker;

pub use config::{
    AmazonSqsBasic, AmazonSqsConnectionSettings, AzureQueueStorageConnectionSettings,
    ConnectionString, EtlConfiguration, EtlDestinationConfig, EtlQueue, EtlType,
    NatsConnectionSettings, OlapConnectionString, OlapEtlConfig, OlapEtlTable, OlapLocalSettings,
    OlapS3Settings, QueueBrokerType, QueueConnectionString, QueueEtlConfig,
    RabbitMqConnectionSettings, RavenConnectionString, RavenEtlConfig, SqlConnectionString,
    SqlEtlConfig, SqlEtlTable, Transformation,
};
pub use corvid_script::ScriptOptions;
pub use destination::{LoadError, LoadErrorClass, SkippedItem};
pub use histogram::Histogram;
pub use manager::{EtlError, EtlManager, ProcessInfo, TaskInfo};
pub use options::{EtlOptions, OlapPaths, SqlitePaths};
pub use process::{BatchPerformance, ProcessStats, ProcessStatus, progress_key};
pub use script_budget::{MIN_GRANT_BYTES, ScriptMemoryBudget, ScriptMemoryGrant};
pub use secrets::SecretsKey;
pub use test_script::{
    OlapTestPartition, OlapTestResult, QueueTestResult, ScriptTestResult, SqlTestRequest,
    SqlTestResult, test_olap_script, test_queue_script, test_raven_connection, test_raven_script,
    test_sql_connection, test_sql_script,
};
pub use validate::ConfigError;
pub use worker::TransformFailure;
