//! Validation of connection strings and ETL configurations into runtime types, with the
//! precise messages a user needs when saving a task (not later, when it runs).

use std::time::Duration;

use corvid_script::{ScriptAnalysis, ScriptError, analyze};

use crate::config::{
    ConnectionString, EtlConfiguration, EtlType, RavenConnectionString, SqlConnectionString,
};
use crate::destinations::sql::SqlSettings;
use crate::destinations::sql::connection::{self, SqlTarget};
use crate::destinations::sql::rows::SqlTable;

/// Why a connection string or an ETL configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("connection string `{name}`: {reason}")]
    InvalidConnectionString { name: String, reason: String },
    #[error("connection string `{name}` of type {expected:?} does not exist")]
    UnknownConnectionString { name: String, expected: EtlType },
    #[error("ETL task `{task}` must have at least one transformation")]
    NoTransforms { task: String },
    #[error("ETL task `{task}` has more than one transformation named `{transform}`")]
    DuplicateTransform { task: String, transform: String },
    #[error(
        "transformation `{transform}`: set either `Collections` or `ApplyToAllDocuments`, not both"
    )]
    CollectionsAndAllDocuments { transform: String },
    #[error(
        "transformation `{transform}`: `Collections` is empty and `ApplyToAllDocuments` is false; name the collections to process"
    )]
    NoCollections { transform: String },
    #[error(
        "transformation `{transform}`: script syntax error at line {line}, column {column}: {message}"
    )]
    ScriptSyntax {
        transform: String,
        line: u32,
        column: u32,
        message: String,
    },
    #[error("transformation `{transform}`: invalid script: {message}")]
    ScriptInvalid { transform: String, message: String },
    #[error(
        "transformation `{transform}`: `deleteDocumentsOf{collection}Behavior` refers to `{collection}`, which is not one of the transformation's collections"
    )]
    BehaviorForUnknownCollection {
        transform: String,
        collection: String,
    },
    #[error("SQL ETL task `{task}`: `SqlTables` must list at least one table")]
    NoSqlTables { task: String },
    #[error("SQL ETL task `{task}`: {reason}")]
    InvalidSqlTable { task: String, reason: String },
    #[error(
        "transformation `{transform}`: the script loads to `{table}`, which is not one of the task's `SqlTables`"
    )]
    UnknownSqlTable { transform: String, table: String },
    #[error("transformation `{transform}`: SQL ETL does not support {feature}")]
    NotSupportedBySql {
        transform: String,
        feature: &'static str,
    },
    #[error("{feature} is not supported yet")]
    Unsupported { feature: &'static str },
}

/// Where a Raven ETL task writes.
#[derive(Debug, Clone, PartialEq)]
pub struct RavenDestination {
    pub database: String,
    pub urls: Vec<String>,
    pub load_timeout: Duration,
}

/// Where a SQL ETL task writes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlDestination {
    pub target: SqlTarget,
    pub settings: SqlSettings,
    pub tables: Vec<SqlTable>,
}

/// Where an ETL task writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    Raven(RavenDestination),
    Sql(SqlDestination),
}

/// A transformation ready to run.
#[derive(Debug, Clone)]
pub struct ValidatedTransform {
    pub name: String,
    /// `None` for `ApplyToAllDocuments`.
    pub collections: Option<Vec<String>>,
    pub script: String,
    pub analysis: ScriptAnalysis,
    pub disabled: bool,
}

/// An ETL task ready to run.
#[derive(Debug, Clone)]
pub struct ValidatedEtl {
    pub config: EtlConfiguration,
    pub destination: Destination,
    pub transforms: Vec<ValidatedTransform>,
}

/// Checks a connection string on its own.
pub fn validate_connection_string(connection: &ConnectionString) -> Result<(), ConfigError> {
    if connection.name().trim().is_empty() {
        return Err(ConfigError::Empty {
            what: "the connection string `Name`",
        });
    }
    let invalid = |reason: String| ConfigError::InvalidConnectionString {
        name: connection.name().to_owned(),
        reason,
    };
    match connection {
        ConnectionString::Raven(raven) => {
            if raven.database.trim().is_empty() {
                return Err(invalid("`Database` must not be empty".to_owned()));
            }
            if raven.topology_discovery_urls.is_empty() {
                return Err(invalid(
                    "`TopologyDiscoveryUrls` must list at least one URL".to_owned(),
                ));
            }
            for url in &raven.topology_discovery_urls {
                let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
                if !scheme_ok || url.len() <= "http://".len() {
                    return Err(invalid(format!(
                        "`{url}` is not an http:// or https:// URL"
                    )));
                }
            }
            Ok(())
        }
        ConnectionString::Sql(sql) => {
            if sql.connection_string.trim().is_empty() {
                return Err(invalid("`ConnectionString` must not be empty".to_owned()));
            }
            connection::parse(&sql.factory_name, &sql.connection_string).map_err(invalid)?;
            Ok(())
        }
    }
}

/// Validates an ETL configuration against the database's connection strings, compiling and
/// analysing every script.
pub fn validate_etl(
    config: EtlConfiguration,
    connection_strings: &[ConnectionString],
) -> Result<ValidatedEtl, ConfigError> {
    if config.name.trim().is_empty() {
        return Err(ConfigError::Empty {
            what: "the ETL task `Name`",
        });
    }
    let Some(connection) = connection_strings.iter().find(|it| {
        it.kind() == config.etl_type
            && it
                .name()
                .eq_ignore_ascii_case(&config.connection_string_name)
    }) else {
        return Err(ConfigError::UnknownConnectionString {
            name: config.connection_string_name.clone(),
            expected: config.etl_type,
        });
    };
    let destination = match connection {
        ConnectionString::Raven(raven) => Destination::Raven(destination_of(raven, &config)),
        ConnectionString::Sql(sql) => Destination::Sql(sql_destination_of(sql, &config)?),
    };
    if config.transforms.is_empty() {
        return Err(ConfigError::NoTransforms {
            task: config.name.clone(),
        });
    }
    let mut transforms = Vec::with_capacity(config.transforms.len());
    for (idx, transform) in config.transforms.iter().enumerate() {
        if transform.name.trim().is_empty() {
            return Err(ConfigError::Empty {
                what: "a transformation `Name`",
            });
        }
        let duplicate = config.transforms[..idx]
            .iter()
            .any(|it| it.name.eq_ignore_ascii_case(&transform.name));
        if duplicate {
            return Err(ConfigError::DuplicateTransform {
                task: config.name.clone(),
                transform: transform.name.clone(),
            });
        }
        let validated = validate_transform(transform)?;
        if let Destination::Sql(sql) = &destination {
            check_sql_transform(&validated, &sql.tables)?;
        }
        transforms.push(validated);
    }
    Ok(ValidatedEtl {
        destination,
        transforms,
        config,
    })
}

fn destination_of(raven: &RavenConnectionString, config: &EtlConfiguration) -> RavenDestination {
    RavenDestination {
        database: raven.database.clone(),
        urls: raven
            .topology_discovery_urls
            .iter()
            .map(|it| it.trim_end_matches('/').to_owned())
            .collect(),
        load_timeout: Duration::from_secs(config.load_request_timeout_in_sec.unwrap_or(300)),
    }
}

fn sql_destination_of(
    sql: &SqlConnectionString,
    config: &EtlConfiguration,
) -> Result<SqlDestination, ConfigError> {
    let target =
        connection::parse(&sql.factory_name, &sql.connection_string).map_err(|reason| {
            ConfigError::InvalidConnectionString {
                name: sql.name.clone(),
                reason,
            }
        })?;
    let task = || config.name.clone();
    let configured = config.sql_tables.as_deref().unwrap_or_default();
    if configured.is_empty() {
        return Err(ConfigError::NoSqlTables { task: task() });
    }
    let mut tables: Vec<SqlTable> = Vec::with_capacity(configured.len());
    for table in configured {
        let invalid = |reason: String| ConfigError::InvalidSqlTable {
            task: task(),
            reason,
        };
        if table.table_name.trim().is_empty() {
            return Err(invalid("a table has an empty `TableName`".to_owned()));
        }
        if table.document_id_column.trim().is_empty() {
            return Err(invalid(format!(
                "table `{}` has an empty `DocumentIdColumn`",
                table.table_name
            )));
        }
        if tables
            .iter()
            .any(|it| it.table.eq_ignore_ascii_case(&table.table_name))
        {
            return Err(invalid(format!(
                "table `{}` is listed more than once",
                table.table_name
            )));
        }
        tables.push(SqlTable {
            table: table.table_name.clone(),
            document_id_column: table.document_id_column.clone(),
            insert_only: table.insert_only_mode,
        });
    }
    let settings = SqlSettings {
        quote_tables: config.quote_tables.unwrap_or(true),
        parameterize_deletes: config.parameterize_deletes.unwrap_or(true),
        command_timeout: config.command_timeout.map(Duration::from_secs),
    };
    Ok(SqlDestination {
        target,
        settings,
        tables,
    })
}

/// What SQL ETL asks of a script beyond what every script must be.
pub(crate) fn check_sql_transform(
    transform: &ValidatedTransform,
    tables: &[SqlTable],
) -> Result<(), ConfigError> {
    let not_supported = |feature: &'static str| ConfigError::NotSupportedBySql {
        transform: transform.name.clone(),
        feature,
    };
    let analysis = &transform.analysis;
    if analysis.is_empty {
        return Err(not_supported(
            "an empty script (name the tables and columns with `loadTo<Table>({...})`)",
        ));
    }
    if !analysis.delete_behaviors.is_empty() || analysis.has_generic_delete_behavior {
        return Err(not_supported(
            "delete behaviour functions (deletes always remove the document's rows)",
        ));
    }
    if analysis.uses_add_attachment {
        return Err(not_supported(
            "`addAttachment` (put `loadAttachment(name)` into a binary column instead)",
        ));
    }
    for target in &analysis.load_targets {
        if !tables
            .iter()
            .any(|it| it.table.eq_ignore_ascii_case(target))
        {
            return Err(ConfigError::UnknownSqlTable {
                transform: transform.name.clone(),
                table: target.clone(),
            });
        }
    }
    Ok(())
}

pub(crate) fn validate_transform(
    transform: &crate::config::Transformation,
) -> Result<ValidatedTransform, ConfigError> {
    let name = transform.name.clone();
    let collections: Vec<String> = transform
        .collections
        .iter()
        .filter(|it| !it.trim().is_empty())
        .cloned()
        .collect();
    let collections = match (collections.is_empty(), transform.apply_to_all_documents) {
        (false, true) => {
            return Err(ConfigError::CollectionsAndAllDocuments { transform: name });
        }
        (true, false) => return Err(ConfigError::NoCollections { transform: name }),
        (true, true) => None,
        (false, false) => Some(collections),
    };
    if transform
        .document_id_postfix
        .as_deref()
        .is_some_and(|it| !it.is_empty())
    {
        return Err(ConfigError::Unsupported {
            feature: "`DocumentIdPostfix`",
        });
    }
    let analysis = analyze(&transform.script).map_err(|error| match error {
        ScriptError::Syntax {
            line,
            column,
            message,
        } => ConfigError::ScriptSyntax {
            transform: name.clone(),
            line,
            column,
            message,
        },
        other => ConfigError::ScriptInvalid {
            transform: name.clone(),
            message: other.to_string(),
        },
    })?;
    if let Some(collections) = &collections {
        for behavior in &analysis.delete_behaviors {
            if !collections
                .iter()
                .any(|it| it.eq_ignore_ascii_case(behavior))
            {
                return Err(ConfigError::BehaviorForUnknownCollection {
                    transform: name,
                    collection: behavior.clone(),
                });
            }
        }
    }
    Ok(ValidatedTransform {
        name,
        collections,
        script: transform.script.clone(),
        analysis,
        disabled: transform.disabled,
    })
}
