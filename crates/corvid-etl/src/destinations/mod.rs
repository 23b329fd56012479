//! Destinations, one folder each with the same shape (`config.rs`, `encoder.rs`,
//! `loader.rs`, plus engine-specific files), and the one list of them: [`ValidatedDestination`].
//! Adding a destination is a new folder, one variant here, and one section in `docs/etl.md`.

pub mod olap;
pub mod queue;
pub mod raven;
pub mod sql;

use tokio::task::JoinHandle;

use crate::config::{ConnectionString, EtlConfiguration, EtlDestinationConfig};
use crate::process::ProcessContext;
use crate::validate::{ConfigError, ValidatedTransform};

pub use olap::OlapDestination;
pub use queue::QueueDestination;
pub use raven::RavenDestination;
pub use sql::SqlDestination;

/// Where an ETL task writes: one variant per destination.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidatedDestination {
    Raven(RavenDestination),
    Sql(SqlDestination),
    Queue(QueueDestination),
    Olap(OlapDestination),
}

impl ValidatedDestination {
    /// Builds the destination of a task from its connection string.
    pub(crate) fn build(
        connection: &ConnectionString,
        config: &EtlConfiguration,
    ) -> Result<ValidatedDestination, ConfigError> {
        Ok(match (connection, &config.destination) {
            (ConnectionString::Raven(raven), EtlDestinationConfig::Raven(task)) => {
                ValidatedDestination::Raven(RavenDestination::build(raven, task))
            }
            (ConnectionString::Sql(sql), EtlDestinationConfig::Sql(task)) => {
                ValidatedDestination::Sql(SqlDestination::build(sql, task, &config.name)?)
            }
            (ConnectionString::Queue(queue), EtlDestinationConfig::Queue(task)) => {
                ValidatedDestination::Queue(QueueDestination::build(queue, task, &config.name)?)
            }
            (ConnectionString::Olap(olap), EtlDestinationConfig::Olap(task)) => {
                ValidatedDestination::Olap(OlapDestination::build(olap, task, &config.name)?)
            }
            _ => {
                return Err(ConfigError::UnknownConnectionString {
                    name: connection.name().to_owned(),
                    expected: config.etl_type(),
                });
            }
        })
    }

    /// What the destination asks of a transformation's script beyond what every script must be.
    /// What `loadTo<…>` names in this destination, for RavenDB's "no `loadTo`" message.
    pub(crate) fn load_target_noun(&self) -> &'static str {
        match self {
            ValidatedDestination::Raven(_) => "CollectionName",
            ValidatedDestination::Sql(_) => "TableName",
            ValidatedDestination::Queue(_) => "QueueName",
            ValidatedDestination::Olap(_) => "TableName",
        }
    }

    pub(crate) fn check_transform(
        &self,
        transform: &ValidatedTransform,
    ) -> Result<(), ConfigError> {
        match self {
            ValidatedDestination::Raven(_) => Ok(()),
            ValidatedDestination::Sql(sql) => sql.check_transform(transform),
            ValidatedDestination::Queue(queue) => queue.check_transform(transform),
            ValidatedDestination::Olap(olap) => olap.check_transform(transform),
        }
    }

    /// Starts an ETL process of one transformation loading into this destination.
    pub(crate) fn spawn_process(&self, context: ProcessContext) -> JoinHandle<()> {
        match self {
            ValidatedDestination::Raven(it) => tokio::spawn(crate::process::run(
                context,
                std::sync::Arc::new(it.clone()),
            )),
            ValidatedDestination::Sql(it) => tokio::spawn(crate::process::run(
                context,
                std::sync::Arc::new(it.clone()),
            )),
            ValidatedDestination::Queue(it) => {
                let process = it.for_process(
                    context.database.clone(),
                    context.options.public_server_url.as_deref(),
                    &context.task_name,
                );
                tokio::spawn(crate::process::run(context, std::sync::Arc::new(process)))
            }
            ValidatedDestination::Olap(it) => {
                let process = it.for_process(context.database.name(), &context.transform);
                tokio::spawn(crate::process::run(context, std::sync::Arc::new(process)))
            }
        }
    }
}

/// Checks a connection string on its own; the reason is for the user.
pub(crate) fn check_connection_string(connection: &ConnectionString) -> Result<(), String> {
    match connection {
        ConnectionString::Raven(raven) => raven::config::check_connection_string(raven),
        ConnectionString::Sql(sql) => sql::config::check_connection_string(sql),
        ConnectionString::Queue(queue) => queue::config::check_connection_string(queue),
        ConnectionString::Olap(olap) => olap::config::check_connection_string(olap),
    }
}
