//! The rows and deletes of one SQL ETL batch, the settings that shape statements, how
//! statements are shown, and why a load failed. Shared by every SQL writer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::destinations::sql::connection::SqlProvider;
use crate::destinations::sql::identifier::is_unquoted_table;

/// One value bound to a column.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Bool(bool),
    /// A JSON number that is an integer within i64.
    Int(i64),
    /// Any other JSON number, as the JSON text wrote it (`19.99`, `1e+21`): bound as text so a
    /// `numeric`/`DECIMAL` column receives it without a detour through f64.
    Number(String),
    Text(String),
    /// A string that is an ISO-8601 date-time (RavenDB's format, with or without an offset),
    /// as written. Writers bind it where a timestamp column expects one (MySQL gets
    /// `yyyy-MM-dd HH:mm:ss.ffffff`).
    DateTime(String),
    /// A nested object or array, as JSON text.
    Json(String),
    /// An attachment's content (`loadAttachment`).
    Binary(Bytes),
    /// `{Type, Value, Size}` from a script (`varchar()`/`nvarchar()` build these). `type_name`
    /// is the provider type name as written (`AnsiString`, `Double`, `Array | Double`, …).
    Typed {
        type_name: String,
        value: Box<SqlValue>,
        size: Option<u32>,
    },
}

/// One row a script loaded. The document-id column is not in `columns`: writers put it
/// first, filled with `document_id`, whatever the script set.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlRow {
    /// Shared by the rows of one document.
    pub document_id: Arc<str>,
    /// Column names in the order the script wrote them; never the document-id column.
    /// Shared where the script names them the same way from row to row.
    pub columns: Vec<(Arc<str>, SqlValue)>,
}

impl SqlRow {
    /// The row's parameters as `/admin/etl/sql/test` shows them: the document-id column
    /// first, then the row's columns, values rendered with [`render_value`].
    pub fn rendered_params<'a>(
        &'a self,
        id_column: &'a str,
    ) -> impl Iterator<Item = (String, String)> + 'a {
        let id = render_value(&SqlValue::Text(self.document_id.to_string()));
        std::iter::once((id_column.to_owned(), id)).chain(
            self.columns
                .iter()
                .map(|(name, value)| (name.to_string(), render_value(value))),
        )
    }
}

/// Appends `text` escaped for the tab-separated text that PostgreSQL's `COPY … FROM STDIN`
/// and MySQL's `LOAD DATA` read by default: backslash, tab, newline, carriage return and NUL
/// as `\\`, `\t`, `\n`, `\r`, `\0` (a NUL is refused by PostgreSQL either way).
pub(crate) fn push_tab_escaped(buffer: &mut BytesMut, text: &[u8]) {
    let mut start = 0;
    for (at, byte) in text.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0 => b"\\0",
            _ => continue,
        };
        buffer.put_slice(&text[start..at]);
        buffer.put_slice(escape);
        start = at + 1;
    }
    buffer.put_slice(&text[start..]);
}

/// Bound delete ids as `/admin/etl/sql/test` shows them: keyed by 1-based position.
pub fn rendered_positional_ids(ids: &[String]) -> Vec<(String, String)> {
    ids.iter()
        .enumerate()
        .map(|(index, id)| {
            (
                (index + 1).to_string(),
                render_value(&SqlValue::Text(id.clone())),
            )
        })
        .collect()
}

/// What one batch does to one configured table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableBatch {
    /// The table name as configured (`Orders`, `sales.Orders`).
    pub table: String,
    pub document_id_column: String,
    pub insert_only: bool,
    /// Source ids whose rows are deleted first (each updated or deleted document of the
    /// batch; empty when `insert_only`).
    pub deletes: Vec<String>,
    /// Documents no version of which was ever sent (empty when `insert_only`): their rows
    /// can only exist if something else wrote them. Their deletes are left out where the
    /// process owns the table (it saw the table empty and has been its only writer since; see
    /// `process.rs`), and otherwise join `deletes` before the writers see the batch
    /// ([`SqlBatch::resolve_new_documents`]).
    pub new_documents: Vec<String>,
    pub rows: Vec<SqlRow>,
}

impl SqlRow {
    /// Returns true when both rows have the same column names in the same order.
    pub fn same_columns(&self, other: &SqlRow) -> bool {
        self.columns.len() == other.columns.len()
            && self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|((a, _), (b, _))| a == b)
    }
}

impl TableBatch {
    /// The rows grouped by exact column list, groups and rows in first-appearance order (one
    /// `COPY` or multi-row `INSERT` per group). Rows usually share their shape, so each row is
    /// first compared with the previous one; only a change of shape looks the groups up.
    pub fn row_groups(&self) -> Vec<(Vec<&str>, Vec<&SqlRow>)> {
        let mut groups: Vec<(Vec<&str>, Vec<&SqlRow>)> = Vec::new();
        let mut index: HashMap<Vec<&str>, usize> = HashMap::new();
        let mut current: Option<usize> = None;
        for row in &self.rows {
            if let Some(at) = current {
                let group = &mut groups[at].1;
                if group[group.len() - 1].same_columns(row) {
                    group.push(row);
                    continue;
                }
            }
            let columns: Vec<&str> = row.columns.iter().map(|(name, _)| &**name).collect();
            let at = match index.get(&columns) {
                Some(&at) => {
                    groups[at].1.push(row);
                    at
                }
                None => {
                    index.insert(columns.clone(), groups.len());
                    groups.push((columns, vec![row]));
                    groups.len() - 1
                }
            };
            current = Some(at);
        }
        groups
    }
}

/// One batch for one SQL destination: every configured table, in `SqlTables` order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlBatch {
    pub tables: Vec<TableBatch>,
}

impl SqlBatch {
    pub fn is_empty(&self) -> bool {
        self.tables
            .iter()
            .all(|it| it.deletes.is_empty() && it.new_documents.is_empty() && it.rows.is_empty())
    }

    /// Decides the deletes of new documents: dropped for each table where `skip(table)`
    /// (the process owns it), moved into `deletes` for the others. Writers read `deletes` only.
    pub fn resolve_new_documents(&mut self, mut skip: impl FnMut(&TableBatch) -> bool) {
        for table in &mut self.tables {
            let new_documents = std::mem::take(&mut table.new_documents);
            if !skip(table) {
                table.deletes.extend(new_documents);
            }
        }
    }

    pub fn n_rows(&self) -> usize {
        self.tables.iter().map(|it| it.rows.len()).sum()
    }
}

/// The command timeout of a task whose `CommandTimeout` is null: that of the .NET providers
/// RavenDB uses (Npgsql, MySqlConnector: 30 s). RavenDB itself sets none, so its SQL ETL waits
/// as long as the provider does; without any limit a destination that stops answering would
/// stall the task while it reports `Active` (issue 18 finding 3).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of a SQL ETL task that shape statements.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlSettings {
    /// Quote each dot-separated part of table names (default true).
    pub quote_tables: bool,
    /// Bind deleted ids as parameters (default true); otherwise inline them, `'` doubled.
    pub parameterize_deletes: bool,
    /// Per-statement timeout (RavenDB's `CommandTimeout`); [`DEFAULT_COMMAND_TIMEOUT`] when
    /// the task sets none; zero or `None`: no limit.
    pub command_timeout: Option<Duration>,
}

impl Default for SqlSettings {
    fn default() -> Self {
        SqlSettings {
            quote_tables: true,
            parameterize_deletes: true,
            command_timeout: Some(DEFAULT_COMMAND_TIMEOUT),
        }
    }
}

/// A statement as `/admin/etl/sql/test` shows it: the text Corvid runs and its parameters,
/// rendered the way RavenDB renders them (`NULL`, strings quoted with `'` doubled, binary as
/// `<binary_data>`). A bulk statement lists the parameters of all its rows in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub table: String,
    pub text: String,
    pub params: Vec<(String, String)>,
}

/// Why loading a batch failed. Every kind keeps progress where it was; the batch is retried
/// after the back-off.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlLoadError {
    /// The database could not be reached, or the connection broke.
    #[error("cannot connect to {destination}: {message}")]
    Connection {
        destination: String,
        message: String,
    },
    /// A statement failed (missing table or column, constraint, type, timeout); the
    /// transaction was rolled back.
    #[error("{}", statement_message(table, column.as_deref(), document_id.as_deref(), message))]
    Statement {
        table: String,
        column: Option<String>,
        document_id: Option<String>,
        message: String,
        /// What the failure is about, from the database's error code.
        fault: StatementFault,
    },
}

/// What a failed statement is about, decided from the database's error code: the loader
/// leaves out an item the database refuses, and retries the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementFault {
    /// A value or row of one document (too long, a constraint, an invalid byte sequence).
    Item,
    /// The destination's schema or permissions (a missing table or column, access denied).
    Configuration,
    /// The database was busy or slow (a timeout, a deadlock, resources): retried as it is.
    Transient,
}

impl StatementFault {
    /// From a PostgreSQL SQLSTATE: class 22 (data exception) and 23 (integrity constraint)
    /// are about a row; 28 (authorization), 3D/3F (catalog, schema), 42 (syntax or access
    /// rule: undefined table or column) and 0A (feature not supported) about the
    /// destination; everything else (57014 query canceled, 40 rollback, 53 resources) is
    /// retried.
    pub fn of_postgres(sqlstate: &str) -> StatementFault {
        match sqlstate.get(..2).unwrap_or_default() {
            "22" | "23" => StatementFault::Item,
            "28" | "3D" | "3F" | "42" | "0A" => StatementFault::Configuration,
            _ => StatementFault::Transient,
        }
    }

    /// From a MySQL/MariaDB error (or `LOAD DATA` warning) code.
    pub fn of_mysql(code: u16) -> StatementFault {
        match code {
            // Duplicate key, NULL into NOT NULL, data too long, out of range, truncated,
            // incorrect string or date value, foreign keys, check constraints, invalid JSON.
            1048 | 1062 | 1216 | 1217 | 1264 | 1265 | 1292 | 1366 | 1406 | 1451 | 1452 | 1586
            | 3140 | 3819 | 4025 => StatementFault::Item,
            // Access denied, unknown database, table or column, syntax.
            1044 | 1045 | 1049 | 1054 | 1064 | 1142 | 1143 | 1146 => StatementFault::Configuration,
            _ => StatementFault::Transient,
        }
    }
}

fn statement_message(
    table: &str,
    column: Option<&str>,
    document_id: Option<&str>,
    message: &str,
) -> String {
    let mut text = format!("table `{table}`");
    if let Some(column) = column {
        text.push_str(&format!(", column `{column}`"));
    }
    if let Some(id) = document_id {
        text.push_str(&format!(", document `{id}`"));
    }
    format!("{text}: {message}")
}

/// Renders a value as RavenDB's SQL test shows parameters.
pub fn render_value(value: &SqlValue) -> String {
    match value {
        SqlValue::Null => "NULL".to_owned(),
        SqlValue::Bool(it) => it.to_string(),
        SqlValue::Int(it) => it.to_string(),
        SqlValue::Number(it) => it.clone(),
        SqlValue::Text(it) | SqlValue::DateTime(it) | SqlValue::Json(it) => {
            format!("'{}'", it.replace('\'', "''"))
        }
        SqlValue::Binary(_) => "<binary_data>".to_owned(),
        SqlValue::Typed { value, .. } => render_value(value),
    }
}

/// Quotes a table name for a provider: each dot-separated part when `quote` (RavenDB's
/// `QuoteTables`), `"` for PostgreSQL and SQLite, `` ` `` for MySQL; a quote inside a part is
/// doubled. Unquoted, a name goes into SQL as written only when it is a plain identifier
/// ([`is_unquoted_table`]; saving a task refuses any other); otherwise it is quoted anyway,
/// so no configured name is ever SQL text.
pub fn quote_table(provider: SqlProvider, table: &str, quote: bool) -> String {
    if !quote && is_unquoted_table(provider, table) {
        return table.to_owned();
    }
    table
        .split('.')
        .map(|part| quote_identifier(provider, part))
        .collect::<Vec<_>>()
        .join(".")
}

/// Quotes one identifier (a column, or one part of a table name).
pub fn quote_identifier(provider: SqlProvider, name: &str) -> String {
    let quote = match provider {
        SqlProvider::MySql => '`',
        SqlProvider::Postgres | SqlProvider::Sqlite => '"',
    };
    let doubled = format!("{quote}{quote}");
    format!("{quote}{}{quote}", name.replace(quote, &doubled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_group_by_column_list_in_first_appearance_order() {
        let row = |id: &str, columns: &[&str]| SqlRow {
            document_id: Arc::from(id),
            columns: columns
                .iter()
                .map(|it| (Arc::from(*it), SqlValue::Null))
                .collect(),
        };
        let table = TableBatch {
            table: "T".into(),
            document_id_column: "Id".into(),
            insert_only: false,
            deletes: Vec::new(),
            new_documents: Vec::new(),
            rows: vec![
                row("1", &["A", "B"]),
                row("2", &["A", "B"]),
                row("3", &["B", "A"]),
                row("4", &["A", "B"]),
                row("5", &["A"]),
                row("6", &["B", "A"]),
            ],
        };
        let groups: Vec<(Vec<&str>, Vec<&str>)> = table
            .row_groups()
            .into_iter()
            .map(|(columns, rows)| (columns, rows.iter().map(|it| &*it.document_id).collect()))
            .collect();
        assert_eq!(
            groups,
            [
                (vec!["A", "B"], vec!["1", "2", "4"]),
                (vec!["B", "A"], vec!["3", "6"]),
                (vec!["A"], vec!["5"]),
            ]
        );
    }
}
