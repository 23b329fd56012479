//! SQL ETL's configuration: the connection string's checks, the validated destination (its
//! tables and settings), what SQL ETL asks of a script, and what SQL ETL supplies to the
//! generic engine.

use std::time::Duration;

use corvid_script::ScriptOptions;

use crate::config::{SqlConnectionString, SqlEtlConfig};
use crate::destination::{Destination, LoadError};
use crate::destinations::sql::batch::{DEFAULT_COMMAND_TIMEOUT, SqlBatch, SqlSettings};
use crate::destinations::sql::connection::{self, SqlTarget};
use crate::destinations::sql::encoder::SqlEncoder;
use crate::destinations::sql::identifier::check_unquoted_table;
use crate::destinations::sql::loader::SqlLoader;
use crate::destinations::sql::rows::{BatchBuilder, SqlTable};
use crate::destinations::sql::writer::SqlWriter;
use crate::validate::{ConfigError, ValidatedTransform};

/// Where a SQL ETL task writes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlDestination {
    pub target: SqlTarget,
    pub settings: SqlSettings,
    pub tables: Vec<SqlTable>,
}

/// Checks a SQL connection string on its own; the reason is for the user.
pub(crate) fn check_connection_string(sql: &SqlConnectionString) -> Result<(), String> {
    if sql.connection_string.trim().is_empty() {
        return Err("`ConnectionString` must not be empty".to_owned());
    }
    connection::parse(&sql.factory_name, &sql.connection_string).map(drop)
}

impl SqlDestination {
    pub(crate) fn build(
        sql: &SqlConnectionString,
        config: &SqlEtlConfig,
        task_name: &str,
    ) -> Result<SqlDestination, ConfigError> {
        let target =
            connection::parse(&sql.factory_name, &sql.connection_string).map_err(|reason| {
                ConfigError::InvalidConnectionString {
                    name: sql.name.clone(),
                    reason,
                }
            })?;
        let task = || task_name.to_owned();
        let configured = config.sql_tables.as_deref().unwrap_or_default();
        if configured.is_empty() {
            return Err(ConfigError::NoSqlTables { task: task() });
        }
        let quote_tables = config.quote_tables.unwrap_or(true);
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
            if !quote_tables {
                check_unquoted_table(target.provider, &table.table_name).map_err(invalid)?;
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
            quote_tables,
            parameterize_deletes: config.parameterize_deletes.unwrap_or(true),
            command_timeout: Some(
                config
                    .command_timeout
                    .map_or(DEFAULT_COMMAND_TIMEOUT, Duration::from_secs),
            ),
        };
        Ok(SqlDestination {
            target,
            settings,
            tables,
        })
    }

    /// What SQL ETL asks of a script beyond what every script must be.
    pub(crate) fn check_transform(
        &self,
        transform: &ValidatedTransform,
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
            if !self
                .tables
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
}

impl Destination for SqlDestination {
    type Batch = SqlBatch;
    type Encoder = SqlEncoder;
    type Loader = SqlLoader;

    /// A loaded object's members are taken as values (no JSON text and parse back).
    fn script_options(&self, base: &ScriptOptions) -> ScriptOptions {
        ScriptOptions {
            load_as_values: true,
            ..base.clone()
        }
    }

    fn new_encoder(&self) -> SqlEncoder {
        SqlEncoder {
            rows: BatchBuilder::new(&self.tables),
        }
    }

    fn new_loader(&self, _options: &crate::options::EtlOptions) -> Result<SqlLoader, LoadError> {
        Ok(SqlLoader {
            writer: SqlWriter::new(self.target.clone(), self.settings.clone()),
        })
    }

    fn identity(&self) -> String {
        format!("sql:{:?}:{}", self.target.provider, self.target)
    }
}
