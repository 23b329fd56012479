//! "Test script": what a transformation would send for one document, without sending it
//! (`POST /admin/etl/raven/test`, `POST /admin/etl/sql/test`). Unlike RavenDB 4.1, `IsDelete`
//! really runs the delete path, behaviour functions included, as later RavenDB versions do.
//! The SQL test shows the statements Corvid runs (bulk ones), and with
//! `PerformRolledBackTransaction` runs them against the database and rolls back.

use corvid_client::Command;
use corvid_script::ScriptRuntime;
use corvid_store::{Database, Timestamp, Tombstone, TombstoneKind};

use crate::config::{
    ConnectionString, EtlConfiguration, EtlDestinationConfig, EtlType, SqlEtlConfig,
};
use crate::destinations::ValidatedDestination;
use crate::destinations::raven::encoder::{ItemOutcome, copy_item, transform_item};
use crate::destinations::sql::encoder::transform_sql_item;
use crate::destinations::sql::rows::BatchBuilder;
use crate::destinations::sql::{SqlWriter, Statement};
use crate::extract::Item;
use crate::manager::EtlError;
use crate::validate::{ConfigError, validate_etl, validate_transform};
use crate::worker::{SnapshotHost, TransformFailure};

/// What the transformation produced for the document.
#[derive(Debug, Clone, Default)]
pub struct ScriptTestResult {
    pub commands: Vec<Command>,
    pub transformation_errors: Vec<TransformFailure>,
    pub debug_output: Vec<String>,
}

/// Runs the configuration's only transformation on one document (or on its deletion).
pub fn test_raven_script(
    database: &Database,
    config: &EtlConfiguration,
    document_id: &str,
    is_delete: bool,
    script_options: corvid_script::ScriptOptions,
) -> Result<ScriptTestResult, EtlError> {
    let [transform] = config.transforms.as_slice() else {
        return Err(not_exactly_one_transformation());
    };
    let transform = validate_transform(transform)?;
    let snapshot = database
        .snapshot()
        .map_err(|it| EtlError::Storage(it.to_string()))?;
    let item = test_item(&snapshot, &transform, document_id, is_delete)?;
    let mut result = ScriptTestResult::default();
    let outcome = if transform.analysis.is_empty {
        copy_item(&snapshot, &item)
    } else {
        let mut runtime = ScriptRuntime::new(&transform.script, script_options).map_err(|it| {
            EtlError::Config(ConfigError::ScriptInvalid {
                transform: transform.name.clone(),
                message: it.to_string(),
            })
        })?;
        let mut host = SnapshotHost {
            snapshot: &snapshot,
        };
        transform_item(
            &snapshot,
            &transform,
            &mut runtime,
            &mut host,
            &item,
            &mut result.debug_output,
        )
    };
    match outcome {
        Ok(ItemOutcome::Commands(commands, _)) => result.commands = commands,
        Ok(ItemOutcome::Filtered) => {}
        Err(failure) => result.transformation_errors.push(failure),
    }
    Ok(result)
}

/// The document under test, or its deletion.
fn test_item(
    snapshot: &corvid_store::Snapshot,
    transform: &crate::validate::ValidatedTransform,
    document_id: &str,
    is_delete: bool,
) -> Result<Item, EtlError> {
    let Some(document) = snapshot
        .get(document_id)
        .map_err(|it| EtlError::Storage(it.to_string()))?
    else {
        return Err(EtlError::DocumentNotFound {
            id: document_id.to_owned(),
        });
    };
    if let Some(collections) = &transform.collections
        && !collections
            .iter()
            .any(|it| it.eq_ignore_ascii_case(&document.collection))
    {
        return Err(EtlError::DocumentNotInCollections {
            id: document.id,
            collection: document.collection,
        });
    }
    Ok(if is_delete {
        Item::Tombstone(Box::new(Tombstone {
            etag: document.etag,
            kind: TombstoneKind::Document,
            id: document.id.clone(),
            collection: document.collection.clone(),
            change_vector: document.change_vector.clone(),
            deleted_at: Timestamp::now(),
        }))
    } else {
        Item::Document(Box::new(document))
    })
}

/// What a SQL transformation would run for one document.
#[derive(Debug, Clone, Default)]
pub struct SqlTestResult {
    /// The statements, in the order they run, each naming its table.
    pub statements: Vec<Statement>,
    pub transformation_errors: Vec<TransformFailure>,
    pub debug_output: Vec<String>,
    /// Why the rolled-back transaction failed, when one was asked for.
    pub load_errors: Vec<String>,
}

/// A SQL test request, in RavenDB's terms.
#[derive(Debug, Clone)]
pub struct SqlTestRequest {
    pub document_id: String,
    pub is_delete: bool,
    /// Run the statements against the database inside a transaction that is rolled back.
    pub perform_rolled_back_transaction: bool,
    /// A connection string given inline; otherwise the configuration names a stored one.
    pub connection: Option<ConnectionString>,
    pub configuration: EtlConfiguration,
}

/// Runs the configuration's only transformation on one document (or on its deletion) and
/// shows, or runs and rolls back, the statements SQL ETL would run.
pub async fn test_sql_script(
    database: std::sync::Arc<Database>,
    stored_connection_strings: Vec<ConnectionString>,
    request: SqlTestRequest,
    script_options: corvid_script::ScriptOptions,
    sqlite: &crate::options::SqlitePaths,
) -> Result<SqlTestResult, EtlError> {
    let mut config = request.configuration;
    if config.etl_type() != EtlType::Sql {
        config.destination = EtlDestinationConfig::Sql(SqlEtlConfig::default());
    }
    if config.name.trim().is_empty() {
        config.name = "test".to_owned();
    }
    if config.transforms.len() != 1 {
        return Err(not_exactly_one_transformation());
    }
    let connection_strings = match request.connection {
        Some(inline) => {
            config.connection_string_name = inline.name().to_owned();
            vec![inline]
        }
        None => stored_connection_strings,
    };
    let validated =
        crate::manager::confine_sqlite(validate_etl(config, &connection_strings)?, sqlite)?;
    let (ValidatedDestination::Sql(destination), [transform]) =
        (validated.destination, validated.transforms.as_slice())
    else {
        return Err(not_exactly_one_transformation());
    };
    let transform = transform.clone();
    let tables = destination.tables.clone();
    let (document_id, is_delete) = (request.document_id, request.is_delete);
    // As the SQL ETL process runs it.
    let script_options = corvid_script::ScriptOptions {
        load_as_values: true,
        ..script_options
    };
    let (batch, mut result) = tokio::task::spawn_blocking(move || {
        let snapshot = database
            .snapshot()
            .map_err(|it| EtlError::Storage(it.to_string()))?;
        let item = test_item(&snapshot, &transform, &document_id, is_delete)?;
        let mut runtime = ScriptRuntime::new(&transform.script, script_options).map_err(|it| {
            EtlError::Config(ConfigError::ScriptInvalid {
                transform: transform.name.clone(),
                message: it.to_string(),
            })
        })?;
        let mut host = SnapshotHost {
            snapshot: &snapshot,
        };
        let mut rows = BatchBuilder::new(&tables);
        let mut result = SqlTestResult::default();
        if let Err(failure) = transform_sql_item(
            &snapshot,
            &mut runtime,
            &mut host,
            &item,
            // The test shows every delete, as RavenDB runs them: which ones a running
            // process may leave out depends on the destination at that time.
            false,
            &mut rows,
            &mut result.debug_output,
        ) {
            result.transformation_errors.push(failure);
        }
        Ok::<_, EtlError>((rows.finish(), result))
    })
    .await
    .map_err(|error| EtlError::Storage(format!("the script test failed: {error}")))??;
    let mut writer = SqlWriter::new(destination.target, destination.settings);
    if request.perform_rolled_back_transaction
        && result.transformation_errors.is_empty()
        && let Err(error) = writer.write(&batch, false).await
    {
        result.load_errors.push(error.to_string());
    }
    // After the write: the statements that ran, as the server allowed them.
    result.statements = writer.plan(&batch);
    Ok(result)
}

/// "Test connection" of a Raven destination: `url` answers as a RavenDB server and, when
/// `database` is given, holds it. The error never holds what another host's service sent.
pub async fn test_raven_connection(url: &str, database: Option<&str>) -> Result<(), String> {
    let options = corvid_client::ClientOptions {
        request_timeout: std::time::Duration::from_secs(10),
        ..corvid_client::ClientOptions::default()
    };
    corvid_client::test_connection(url, database, &options)
        .await
        .map_err(|it| it.to_string())
}

/// Connects to a SQL database with a connection string and runs a trivial query.
pub async fn test_sql_connection(
    connection: &crate::config::SqlConnectionString,
    sqlite: &crate::options::SqlitePaths,
) -> Result<(), String> {
    let mut target = crate::destinations::sql::connection::parse(
        &connection.factory_name,
        &connection.connection_string,
    )?;
    if target.provider == crate::destinations::sql::SqlProvider::Sqlite {
        target.database = sqlite
            .resolve(&target.database)?
            .to_string_lossy()
            .into_owned();
    }
    let mut writer = SqlWriter::new(target, crate::destinations::sql::SqlSettings::default());
    writer.test_connection().await.map_err(|it| it.to_string())
}

/// What a Queue transformation would publish for one document.
#[derive(Debug, Clone, Default)]
pub struct QueueTestResult {
    pub messages: Vec<crate::destinations::queue::QueueMessage>,
    pub transformation_errors: Vec<TransformFailure>,
    pub debug_output: Vec<String>,
}

/// Runs the configuration's only transformation on one document (or on its deletion) and
/// shows the messages Queue ETL would publish, with their CloudEvents attributes; nothing is
/// published. `server_url`: the server's public URL, for the default `source`.
pub fn test_queue_script(
    database: &Database,
    stored_connection_strings: &[ConnectionString],
    mut config: EtlConfiguration,
    request: (&str, bool),
    script_options: corvid_script::ScriptOptions,
    server_url: Option<&str>,
) -> Result<QueueTestResult, EtlError> {
    let (document_id, is_delete) = request;
    if config.name.trim().is_empty() {
        config.name = "test".to_owned();
    }
    if config.transforms.len() != 1 {
        return Err(not_exactly_one_transformation());
    }
    let task_name = config.name.clone();
    let validated = validate_etl(config, stored_connection_strings)?;
    let (ValidatedDestination::Queue(destination), [transform]) =
        (&validated.destination, validated.transforms.as_slice())
    else {
        return Err(ConfigError::Unsupported {
            feature: "testing a configuration that is not a Queue ETL one here",
        }
        .into());
    };
    let settings = destination.encode_settings(&crate::destinations::queue::config::event_source(
        server_url,
        database.name(),
        &task_name,
    ));
    let snapshot = database
        .snapshot()
        .map_err(|it| EtlError::Storage(it.to_string()))?;
    let item = test_item(&snapshot, transform, document_id, is_delete)?;
    let mut runtime = ScriptRuntime::new(&transform.script, script_options).map_err(|it| {
        EtlError::Config(ConfigError::ScriptInvalid {
            transform: transform.name.clone(),
            message: it.to_string(),
        })
    })?;
    let mut host = SnapshotHost {
        snapshot: &snapshot,
    };
    let mut result = QueueTestResult::default();
    if let Err(failure) = crate::destinations::queue::encoder::transform_queue_item(
        &settings,
        transform,
        &mut runtime,
        &mut host,
        &item,
        &mut result.messages,
        &mut result.debug_output,
    ) {
        result.transformation_errors.push(failure);
    }
    Ok(result)
}

fn not_exactly_one_transformation() -> EtlError {
    ConfigError::Unsupported {
        feature: "testing a configuration that does not have exactly one transformation",
    }
    .into()
}

/// What OLAP ETL would write for one document: per (table, partition), the file the rows go
/// to (its run part shown as `{run}`), the columns with their Parquet types, and the values.
#[derive(Debug, Clone, Default)]
pub struct OlapTestResult {
    pub partitions: Vec<OlapTestPartition>,
    pub transformation_errors: Vec<TransformFailure>,
    pub debug_output: Vec<String>,
}

/// The rows of one table and partition.
#[derive(Debug, Clone)]
pub struct OlapTestPartition {
    pub table: String,
    /// `year=2024/month=3`, escaped as written; empty for the table's root.
    pub partition: String,
    /// The file's name under the folder or bucket.
    pub file: String,
    /// (name, Parquet type, one JSON value per row).
    pub columns: Vec<(String, String, Vec<serde_json::Value>)>,
}

/// Runs the configuration's only transformation on one document (or on its deletion) and
/// shows the rows OLAP ETL would write, and where; nothing is written.
pub fn test_olap_script(
    database: &Database,
    stored_connection_strings: &[ConnectionString],
    mut config: EtlConfiguration,
    request: (&str, bool),
    script_options: corvid_script::ScriptOptions,
) -> Result<OlapTestResult, EtlError> {
    use crate::destinations::olap::encoder::{Partition, PartitionCache, transform_olap_item};
    use crate::destinations::olap::parquet::describe_columns;
    let (document_id, is_delete) = request;
    if config.name.trim().is_empty() {
        config.name = "test".to_owned();
    }
    if config.transforms.len() != 1 {
        return Err(not_exactly_one_transformation());
    }
    let validated = validate_etl(config, stored_connection_strings)?;
    let (ValidatedDestination::Olap(destination), [transform]) =
        (&validated.destination, validated.transforms.as_slice())
    else {
        return Err(ConfigError::Unsupported {
            feature: "testing a configuration that is not an OLAP ETL one here",
        }
        .into());
    };
    let settings = destination.encode_settings(transform);
    let names = destination.file_names(database.name(), &transform.name);
    let snapshot = database
        .snapshot()
        .map_err(|it| EtlError::Storage(it.to_string()))?;
    let item = test_item(&snapshot, transform, document_id, is_delete)?;
    let options = destination.script_options(&script_options);
    let mut runtime = ScriptRuntime::new(&transform.script, options).map_err(|it| {
        EtlError::Config(ConfigError::ScriptInvalid {
            transform: transform.name.clone(),
            message: it.to_string(),
        })
    })?;
    let mut host = SnapshotHost {
        snapshot: &snapshot,
    };
    let mut result = OlapTestResult::default();
    let mut rows = Vec::new();
    if let Err(failure) = transform_olap_item(
        &settings,
        &mut PartitionCache::default(),
        &mut runtime,
        &mut host,
        &item,
        &mut rows,
        &mut result.debug_output,
    ) {
        result.transformation_errors.push(failure);
    }
    for (table, partition, row) in rows {
        let partition = match partition {
            Partition::Path(path) => path,
            Partition::Deletes => "(each partition name)=__HIVE_DEFAULT_PARTITION__".to_owned(),
        };
        let options = crate::destinations::olap::parquet::FileOptions {
            id_column: settings.id_column(&table).to_owned(),
            emit_deletes: settings.emit_deletes,
            max_row_group_rows: 1,
            max_buffered_bytes: 0,
        };
        let types = describe_columns(std::slice::from_ref(&row), &options).map_err(|it| {
            EtlError::Config(ConfigError::ScriptInvalid {
                transform: transform.name.clone(),
                message: it.to_string(),
            })
        })?;
        let mut values: Vec<serde_json::Value> = vec![
            serde_json::Value::String(row.document_id.clone()),
            serde_json::Value::String(row.last_modified.to_iso()),
        ];
        if settings.emit_deletes {
            values.push(serde_json::Value::Bool(row.deleted));
        }
        for (_, value) in &row.values {
            values.push(loaded_value_json(value));
        }
        let columns = types
            .into_iter()
            .zip(
                values
                    .into_iter()
                    .chain(std::iter::repeat(serde_json::Value::Null)),
            )
            .map(|((name, kind), value)| (name, kind, vec![value]))
            .collect();
        let file = names.key_of_run(&table, &partition, "{run}");
        match result
            .partitions
            .iter_mut()
            .find(|it| it.table == table && it.partition == partition)
        {
            Some(existing) => {
                let columns: Vec<(String, String, Vec<serde_json::Value>)> = columns;
                for (column, (_, _, added)) in existing.columns.iter_mut().zip(columns) {
                    column.2.extend(added);
                }
            }
            None => result.partitions.push(OlapTestPartition {
                table,
                partition,
                file,
                columns,
            }),
        }
    }
    Ok(result)
}

fn loaded_value_json(value: &corvid_script::LoadedValue) -> serde_json::Value {
    use corvid_script::LoadedValue;
    match value {
        LoadedValue::Null => serde_json::Value::Null,
        LoadedValue::Bool(it) => serde_json::Value::Bool(*it),
        LoadedValue::Int(it) => serde_json::Value::from(*it),
        LoadedValue::Number(text) | LoadedValue::Json(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.clone()))
        }
        LoadedValue::String(it) => serde_json::Value::String(it.clone()),
    }
}
