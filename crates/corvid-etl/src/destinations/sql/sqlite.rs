//! The SQLite writer: applies a batch to a SQLite file in one transaction.
//!
//! rusqlite is blocking, so each batch (and each connection test) runs on
//! `tokio::task::spawn_blocking`, with one `rusqlite::Connection` kept across batches behind a
//! mutex. The file is opened (and created when missing) on first use with `journal_mode=WAL`,
//! `busy_timeout` 5 s and `foreign_keys=ON`; a missing parent directory, a file that is not a
//! database or a broken disk is a [`SqlLoadError::Connection`], after which the connection is
//! dropped and opened again by the next call.
//!
//! A batch is `BEGIN IMMEDIATE` (the write lock is taken up front, waiting at most the busy
//! timeout), the deletes — reverse table order, `DELETE FROM t WHERE id IN (…)` with at most
//! 1000 ids per statement —, then one execution per row of a cached prepared
//! `INSERT INTO t (id, c1, …) VALUES (?, …)` (SQLite's fast path: a statement prepared once and
//! executed inside one transaction), then `COMMIT` or `ROLLBACK`.
//!
//! Command timeout: SQLite has no statement timeout of its own, and its progress handler needs
//! rusqlite's `hooks` feature, which Corvid does not build. When `command_timeout` is set, the
//! async side watches the running statement and calls `sqlite3_interrupt` once it has run
//! longer than the timeout; SQLite then fails the statement (and rolls the transaction back),
//! which is reported as a statement error saying it timed out. The watch ticks every 50 ms, so a
//! statement may overrun the timeout by that much. Waiting for another process's write lock is
//! bounded by `busy_timeout` (5 s, or the command timeout when that is shorter) instead.
//! `BEGIN`, `COMMIT` and `ROLLBACK` are not bounded by the command timeout.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, ErrorCode, InterruptHandle, OpenFlags, params_from_iter};
use tokio::task::JoinHandle;

use crate::destinations::sql::batch::{
    SqlBatch, SqlLoadError, SqlRow, SqlSettings, SqlValue, Statement, StatementFault, TableBatch,
    quote_identifier, quote_table, rendered_positional_ids,
};
use crate::destinations::sql::connection::{SqlProvider, SqlTarget};

/// Ids per `DELETE … IN (…)` statement.
const DELETE_CHUNK: usize = 1000;
/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the command-timeout watch looks at the running statement.
const WATCH_TICK: Duration = Duration::from_millis(50);
/// Prepared statements kept per connection (one per table and column list).
const STATEMENT_CACHE: usize = 256;

/// Writes batches to one SQLite file; the connection is opened on first use.
pub struct SqliteWriter {
    target: SqlTarget,
    settings: SqlSettings,
    shared: Arc<Shared>,
}

/// What the blocking task and the async side share.
#[derive(Default)]
struct Shared {
    connection: Mutex<Option<Connection>>,
    watch: Mutex<Watch>,
}

/// The command-timeout watch: the deadline of the running statement, and how to interrupt it.
#[derive(Default)]
struct Watch {
    deadline: Option<Instant>,
    interrupt: Option<InterruptHandle>,
    /// The watch interrupted the running statement.
    fired: bool,
}

impl SqliteWriter {
    pub fn new(target: SqlTarget, settings: SqlSettings) -> SqliteWriter {
        SqliteWriter {
            target,
            settings,
            shared: Arc::new(Shared::default()),
        }
    }

    pub fn settings(&self) -> &SqlSettings {
        &self.settings
    }

    /// Applies a batch in one transaction, committed when `commit`, rolled back otherwise.
    pub async fn write(&mut self, batch: &SqlBatch, commit: bool) -> Result<(), SqlLoadError> {
        // The blocking task needs its own copy ('static); cheap next to the disk writes.
        let batch = batch.clone();
        let shared = Arc::clone(&self.shared);
        let target = self.target.clone();
        let settings = self.settings.clone();
        let task = tokio::task::spawn_blocking(move || {
            write_blocking(&shared, &target, &settings, &batch, commit)
        });
        self.supervise(task).await
    }

    /// Opens the file read-write **without creating it** and reads its schema (so a file that
    /// is not a database fails); keeps nothing open. A missing file is a clear error: testing
    /// a connection never leaves a file behind (issue 18 finding 4).
    pub async fn test_connection(&self) -> Result<(), SqlLoadError> {
        let target = self.target.clone();
        let destination = target.to_string();
        let task = tokio::task::spawn_blocking(move || {
            let path = target.sqlite_path();
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let connection = Connection::open_with_flags(&path, flags).map_err(|error| {
                if path.exists() {
                    connection_error(&target, &error)
                } else {
                    SqlLoadError::Connection {
                        destination: target.to_string(),
                        message:
                            "the SQLite file does not exist (testing a connection never creates it)"
                                .to_owned(),
                    }
                }
            })?;
            connection
                .query_row("SELECT count(*) FROM sqlite_master", [], |row| {
                    row.get::<_, i64>(0)
                })
                .map_err(|error| connection_error(&target, &error))?;
            Ok(())
        });
        task.await.unwrap_or_else(|error| {
            Err(SqlLoadError::Connection {
                destination,
                message: error.to_string(),
            })
        })
    }

    /// Opens (or reuses the connection), runs a query outside any transaction and returns
    /// whether it returned a row. A failure drops the connection.
    pub async fn query_returns_rows(&mut self, sql: &str) -> Result<bool, SqlLoadError> {
        let shared = Arc::clone(&self.shared);
        let target = self.target.clone();
        let settings = self.settings.clone();
        let sql = sql.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            let mut guard = lock_connection(&shared);
            let connection = match guard.as_mut() {
                Some(it) => it,
                None => guard.insert(open(&shared, &target, &settings)?),
            };
            let found = connection
                .prepare(&sql)
                .and_then(|mut statement| statement.query([])?.next().map(|it| it.is_some()));
            match found {
                Ok(found) => Ok(found),
                Err(error) => {
                    forget(&shared, &mut guard);
                    Err(connection_error(&target, &error))
                }
            }
        });
        self.supervise(task).await
    }

    /// Waits for the blocking task, interrupting statements that outlive the command timeout.
    async fn supervise<T>(
        &self,
        mut task: JoinHandle<Result<T, SqlLoadError>>,
    ) -> Result<T, SqlLoadError> {
        let joined = if statement_limit(&self.settings).is_some() {
            let mut ticks = tokio::time::interval(WATCH_TICK);
            loop {
                tokio::select! {
                    joined = &mut task => break joined,
                    _ = ticks.tick() => self.shared.check_deadline(),
                }
            }
        } else {
            task.await
        };
        joined.unwrap_or_else(|error| {
            Err(SqlLoadError::Connection {
                destination: self.target.to_string(),
                message: format!("the SQLite task failed: {error}"),
            })
        })
    }
}

impl Shared {
    /// Interrupts the running statement when it is past its deadline. The watch lock is held
    /// while interrupting, and the blocking side takes it when a statement ends, so the
    /// interrupt cannot hit the next statement.
    fn check_deadline(&self) {
        let mut watch = lock(&self.watch);
        if watch.fired || watch.deadline.is_none_or(|it| Instant::now() < it) {
            return;
        }
        if let Some(interrupt) = &watch.interrupt {
            interrupt.interrupt();
        }
        watch.fired = true;
    }
}

/// The statement timeout in effect; zero means none, as in ADO.NET.
fn statement_limit(settings: &SqlSettings) -> Option<Duration> {
    settings.command_timeout.filter(|it| !it.is_zero())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks the connection; after a panic mid-batch the connection may be inside a transaction,
/// so it is dropped.
fn lock_connection(shared: &Shared) -> MutexGuard<'_, Option<Connection>> {
    match shared.connection.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            forget(shared, &mut guard);
            guard
        }
    }
}

/// Drops the connection so the next call opens the file again.
fn forget(shared: &Shared, guard: &mut MutexGuard<'_, Option<Connection>>) {
    lock(&shared.watch).interrupt = None;
    **guard = None;
}

fn open(
    shared: &Shared,
    target: &SqlTarget,
    settings: &SqlSettings,
) -> Result<Connection, SqlLoadError> {
    let failed = |error: rusqlite::Error| connection_error(target, &error);
    let connection = Connection::open(target.sqlite_path()).map_err(failed)?;
    let busy = statement_limit(settings).map_or(BUSY_TIMEOUT, |it| it.min(BUSY_TIMEOUT));
    connection.busy_timeout(busy).map_err(failed)?;
    // Reads the file: fails here when it is not a database.
    connection
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get::<_, String>(0))
        .map_err(failed)?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(failed)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    lock(&shared.watch).interrupt = Some(connection.get_interrupt_handle());
    Ok(connection)
}

/// Why a batch failed, and whether the connection must be dropped.
struct Failure {
    error: SqlLoadError,
    broken: bool,
}

fn write_blocking(
    shared: &Shared,
    target: &SqlTarget,
    settings: &SqlSettings,
    batch: &SqlBatch,
    commit: bool,
) -> Result<(), SqlLoadError> {
    let mut guard = lock_connection(shared);
    let connection = match guard.as_mut() {
        Some(it) => it,
        None => guard.insert(open(shared, target, settings)?),
    };
    let Err(failure) = transaction(connection, shared, target, settings, batch, commit) else {
        return Ok(());
    };
    // SQLite rolls back by itself after some failures (an interrupt, a full disk).
    let clean = !failure.broken
        && (connection.is_autocommit() || connection.execute_batch("ROLLBACK").is_ok());
    if !clean {
        forget(shared, &mut guard);
    }
    Err(failure.error)
}

fn transaction(
    connection: &Connection,
    shared: &Shared,
    target: &SqlTarget,
    settings: &SqlSettings,
    batch: &SqlBatch,
    commit: bool,
) -> Result<(), Failure> {
    let whole = || {
        batch
            .tables
            .iter()
            .map(|it| it.table.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    connection
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(|error| {
            // Not getting the write lock means the file is not usable now.
            let busy = matches!(
                error.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            );
            let broken = busy || is_connection_failure(&error);
            failure(target, &whole(), None, error, broken, None)
        })?;
    let limit = statement_limit(settings);
    for step in steps(batch, settings) {
        let table = &step.table.table;
        match &step.kind {
            Kind::Delete { ids, bound } => {
                timed(shared, limit, || {
                    if *bound {
                        let mut statement = connection.prepare_cached(&step.text)?;
                        statement.execute(params_from_iter(ids.iter()))
                    } else {
                        connection.execute(&step.text, [])
                    }
                })
                .map_err(|(error, timed_out)| {
                    let id = match ids {
                        [id] => Some(id.clone()),
                        _ => None,
                    };
                    let broken = is_connection_failure(&error);
                    failure(
                        target,
                        table,
                        id,
                        error,
                        broken,
                        timed_out.then_some(limit).flatten(),
                    )
                })?;
            }
            Kind::Insert { row } => {
                timed(shared, limit, || {
                    let mut statement = connection.prepare_cached(&step.text)?;
                    let id = ToSqlOutput::Borrowed(ValueRef::Text(row.document_id.as_bytes()));
                    let values = row.columns.iter().map(|(_, value)| sqlite_value(value));
                    statement.execute(params_from_iter(std::iter::once(id).chain(values)))
                })
                .map_err(|(error, timed_out)| {
                    let broken = is_connection_failure(&error);
                    let id = Some(row.document_id.to_string());
                    failure(
                        target,
                        table,
                        id,
                        error,
                        broken,
                        timed_out.then_some(limit).flatten(),
                    )
                })?;
            }
        }
    }
    connection
        .execute_batch(if commit { "COMMIT" } else { "ROLLBACK" })
        .map_err(|error| {
            let broken = is_connection_failure(&error);
            failure(target, &whole(), None, error, broken, None)
        })
}

/// Runs one statement under the command-timeout watch; the error says whether the watch
/// interrupted it.
fn timed<T>(
    shared: &Shared,
    limit: Option<Duration>,
    run: impl FnOnce() -> rusqlite::Result<T>,
) -> Result<T, (rusqlite::Error, bool)> {
    let Some(limit) = limit else {
        return run().map_err(|error| (error, false));
    };
    {
        let mut watch = lock(&shared.watch);
        watch.deadline = Some(Instant::now() + limit);
        watch.fired = false;
    }
    let result = run();
    let fired = {
        let mut watch = lock(&shared.watch);
        watch.deadline = None;
        std::mem::take(&mut watch.fired)
    };
    result.map_err(|error| {
        let interrupted = error.sqlite_error_code() == Some(ErrorCode::OperationInterrupted);
        (error, fired && interrupted)
    })
}

/// Errors that mean the file itself is unusable, not one statement.
fn is_connection_failure(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::CannotOpen
                | ErrorCode::NotADatabase
                | ErrorCode::SystemIoFailure
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::PermissionDenied
                | ErrorCode::ReadOnly
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::NoLargeFileSupport
        )
    )
}

fn failure(
    target: &SqlTarget,
    table: &str,
    document_id: Option<String>,
    error: rusqlite::Error,
    broken: bool,
    timed_out: Option<Duration>,
) -> Failure {
    if broken {
        return Failure {
            error: connection_error(target, &error),
            broken,
        };
    }
    let message = sqlite_message(&error);
    let error = match timed_out {
        Some(limit) => SqlLoadError::Statement {
            table: table.to_owned(),
            column: None,
            document_id,
            message: format!(
                "the statement timed out after {} s (command timeout) and was interrupted",
                limit.as_secs_f64()
            ),
            fault: StatementFault::Transient,
        },
        None => SqlLoadError::Statement {
            table: table.to_owned(),
            column: sqlite_column(&message),
            document_id,
            fault: sqlite_fault(&error),
            message,
        },
    };
    Failure { error, broken }
}

fn connection_error(target: &SqlTarget, error: &rusqlite::Error) -> SqlLoadError {
    SqlLoadError::Connection {
        destination: target.to_string(),
        message: sqlite_message(error),
    }
}

/// What a failed SQLite statement is about: a constraint, a value too big or of the wrong
/// type is about a row; a missing table or column (a generic error) about the schema; a
/// busy or locked database is retried.
fn sqlite_fault(error: &rusqlite::Error) -> StatementFault {
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch) => {
            StatementFault::Item
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StatementFault::Transient,
        Some(_) => StatementFault::Configuration,
        None => StatementFault::Transient,
    }
}

/// SQLite's own message (`no such table: t`), without rusqlite's wrapping.
fn sqlite_message(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        other => other.to_string(),
    }
}

/// The column a SQLite error names, without its table prefix.
fn sqlite_column(message: &str) -> Option<String> {
    let unqualified = |name: &str| {
        name.trim()
            .rsplit_once('.')
            .map_or(name.trim(), |(_, it)| it)
            .to_owned()
    };
    if let Some((_, column)) = message.split_once(" has no column named ") {
        return Some(column.trim().to_owned());
    }
    if let Some(column) = message.strip_prefix("no such column: ") {
        return Some(unqualified(column));
    }
    for prefix in ["NOT NULL constraint failed: ", "UNIQUE constraint failed: "] {
        if let Some(list) = message.strip_prefix(prefix) {
            let columns: Vec<String> = list.split(", ").map(unqualified).collect();
            return Some(columns.join(", "));
        }
    }
    // STRICT tables: `cannot store TEXT value in INTEGER column t.c`.
    if message.starts_with("cannot store ")
        && let Some((_, column)) = message.rsplit_once(" column ")
    {
        return Some(unqualified(column));
    }
    None
}

/// How a value is bound: JSON numbers that are not i64 become REAL (they are JS doubles, so
/// this is exact), text stays text.
fn sqlite_value(value: &SqlValue) -> ToSqlOutput<'_> {
    match value {
        SqlValue::Null => ToSqlOutput::Owned(Value::Null),
        SqlValue::Bool(it) => ToSqlOutput::Owned(Value::Integer(i64::from(*it))),
        SqlValue::Int(it) => ToSqlOutput::Owned(Value::Integer(*it)),
        SqlValue::Number(text) => match text.parse::<f64>() {
            Ok(number) if number.is_finite() => ToSqlOutput::Owned(Value::Real(number)),
            _ => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
        },
        SqlValue::Text(text) | SqlValue::DateTime(text) | SqlValue::Json(text) => {
            ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()))
        }
        SqlValue::Binary(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        SqlValue::Typed { value, .. } => sqlite_value(value),
    }
}

/// One statement of a batch, as both `plan()` and `write()` see it.
struct Step<'a> {
    table: &'a TableBatch,
    text: String,
    kind: Kind<'a>,
}

enum Kind<'a> {
    /// `bound`: the ids are parameters; otherwise they are inlined in the text.
    Delete {
        ids: &'a [String],
        bound: bool,
    },
    Insert {
        row: &'a SqlRow,
    },
}

/// The statements of a batch in execution order: deletes (tables in reverse order), then one
/// insert per row (tables in order).
fn steps<'a>(batch: &'a SqlBatch, settings: &SqlSettings) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    for table in batch.tables.iter().rev() {
        if table.insert_only || table.deletes.is_empty() {
            continue;
        }
        let name = quote_table(SqlProvider::Sqlite, &table.table, settings.quote_tables);
        let column = quote_identifier(SqlProvider::Sqlite, &table.document_id_column);
        for ids in table.deletes.chunks(DELETE_CHUNK) {
            let list = if settings.parameterize_deletes {
                vec!["?"; ids.len()].join(", ")
            } else {
                ids.iter()
                    .map(|id| format!("'{}'", id.replace('\'', "''")))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            steps.push(Step {
                table,
                text: format!("DELETE FROM {name} WHERE {column} IN ({list})"),
                kind: Kind::Delete {
                    ids,
                    bound: settings.parameterize_deletes,
                },
            });
        }
    }
    for table in &batch.tables {
        let mut previous: Option<(&SqlRow, String)> = None;
        for row in &table.rows {
            let text = match &previous {
                Some((last, text)) if last.same_columns(row) => text.clone(),
                _ => insert_text(table, row, settings),
            };
            previous = Some((row, text.clone()));
            steps.push(Step {
                table,
                text,
                kind: Kind::Insert { row },
            });
        }
    }
    steps
}

fn insert_text(table: &TableBatch, row: &SqlRow, settings: &SqlSettings) -> String {
    let name = quote_table(SqlProvider::Sqlite, &table.table, settings.quote_tables);
    let columns: Vec<String> = std::iter::once(table.document_id_column.as_str())
        .chain(row.columns.iter().map(|(name, _)| &**name))
        .map(|it| quote_identifier(SqlProvider::Sqlite, it))
        .collect();
    let placeholders = vec!["?"; columns.len()].join(", ");
    format!(
        "INSERT INTO {name} ({}) VALUES ({placeholders})",
        columns.join(", ")
    )
}

/// The statements `write()` runs for a batch: deletes keyed by 1-based placeholder position,
/// inserts (one per row) keyed by column name.
pub fn plan(batch: &SqlBatch, settings: &SqlSettings) -> Vec<Statement> {
    steps(batch, settings)
        .into_iter()
        .map(|step| {
            let params = match step.kind {
                Kind::Delete { bound: false, .. } => Vec::new(),
                Kind::Delete { ids, bound: true } => rendered_positional_ids(ids),
                Kind::Insert { row } => row
                    .rendered_params(&step.table.document_id_column)
                    .collect(),
            };
            Statement {
                table: step.table.table.clone(),
                text: step.text,
                params,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_column_of_sqlite_errors() {
        let cases = [
            ("table Orders has no column named Bogus", Some("Bogus")),
            ("NOT NULL constraint failed: Orders.Total", Some("Total")),
            ("UNIQUE constraint failed: t.a, t.b", Some("a, b")),
            ("no such column: Id", Some("Id")),
            (
                "cannot store TEXT value in INTEGER column t.Qty",
                Some("Qty"),
            ),
            ("no such table: Orders", None),
            ("FOREIGN KEY constraint failed", None),
        ];
        for (message, expected) in cases {
            assert_eq!(sqlite_column(message).as_deref(), expected, "{message}");
        }
    }
}
