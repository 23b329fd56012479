//! Validation of connection strings and ETL configurations into runtime types, with the
//! precise messages a user needs when saving a task (not later, when it runs).

use corvid_script::{ScriptAnalysis, ScriptError, analyze};

use crate::config::{ConnectionString, EtlConfiguration, EtlType};
use crate::destinations::{ValidatedDestination, check_connection_string};

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
    /// RavenDB's message, word for word (its clients and users know it).
    #[error("No `loadTo<{noun}>()` method call found in '{transform}' script")]
    NoLoadTo {
        transform: String,
        noun: &'static str,
    },
    #[error("OLAP ETL task `{task}`: {reason}")]
    InvalidOlapEtl { task: String, reason: String },
    #[error("transformation `{transform}`: OLAP ETL does not support {feature}")]
    NotSupportedByOlap {
        transform: String,
        feature: &'static str,
    },
    #[error("Queue ETL task `{task}`: {reason}")]
    InvalidQueueEtl { task: String, reason: String },
    #[error("transformation `{transform}`: Queue ETL does not support {feature}")]
    NotSupportedByQueue {
        transform: String,
        feature: &'static str,
    },
    #[error("{what} {reason}")]
    InvalidName { what: &'static str, reason: String },
    #[error("{feature} is not supported yet")]
    Unsupported { feature: &'static str },
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
    pub destination: ValidatedDestination,
    pub transforms: Vec<ValidatedTransform>,
}

/// The longest task, transformation or connection string name, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// Names are shown in lists, logs, metrics labels and error messages: they must be visible
/// text of a sensible length.
fn check_name(what: &'static str, name: &str) -> Result<(), ConfigError> {
    let invalid = |reason: String| Err(ConfigError::InvalidName { what, reason });
    if name.trim().is_empty() {
        return Err(ConfigError::Empty { what });
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return invalid(format!("is longer than {MAX_NAME_CHARS} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|it| it.is_control() || corvid_store::is_invisible_format_char(*it))
    {
        return invalid(format!(
            "contains the invisible or control character U+{:04X}",
            u32::from(c)
        ));
    }
    Ok(())
}

/// Checks a connection string on its own.
pub fn validate_connection_string(connection: &ConnectionString) -> Result<(), ConfigError> {
    check_name("the connection string `Name`", connection.name())?;
    check_connection_string(connection).map_err(|reason| ConfigError::InvalidConnectionString {
        name: connection.name().to_owned(),
        reason,
    })
}

/// Validates an ETL configuration against the database's connection strings, compiling and
/// analysing every script.
pub fn validate_etl(
    config: EtlConfiguration,
    connection_strings: &[ConnectionString],
) -> Result<ValidatedEtl, ConfigError> {
    check_name("the ETL task `Name`", &config.name)?;
    let Some(connection) = connection_strings.iter().find(|it| {
        it.kind() == config.etl_type()
            && it
                .name()
                .eq_ignore_ascii_case(&config.connection_string_name)
    }) else {
        return Err(ConfigError::UnknownConnectionString {
            name: config.connection_string_name.clone(),
            expected: config.etl_type(),
        });
    };
    let destination = ValidatedDestination::build(connection, &config)?;
    if config.transforms.is_empty() {
        return Err(ConfigError::NoTransforms {
            task: config.name.clone(),
        });
    }
    let mut transforms = Vec::with_capacity(config.transforms.len());
    for (idx, transform) in config.transforms.iter().enumerate() {
        check_name("a transformation `Name`", &transform.name)?;
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
        if !validated.analysis.is_empty && !validated.analysis.has_load_to {
            return Err(ConfigError::NoLoadTo {
                transform: validated.name,
                noun: destination.load_target_noun(),
            });
        }
        destination.check_transform(&validated)?;
        transforms.push(validated);
    }
    Ok(ValidatedEtl {
        destination,
        transforms,
        config,
    })
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
