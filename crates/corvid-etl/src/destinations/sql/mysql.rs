//! The MySQL/MariaDB writer: applies a batch in one transaction, rows sent with
//! `LOAD DATA LOCAL INFILE` where the server allows it, else with multi-row prepared `INSERT`s.
//!
//! One `mysql_async::Conn` is kept across batches; after a connection failure (or a statement
//! that outlived the client-side timeout) it is dropped, and the next call connects again. The
//! server rolls back whatever transaction a dropped connection had open.
//!
//! Right after connecting the writer reads `@@max_allowed_packet` (each `INSERT` sends less
//! than half of it), `@@sql_mode`, `VERSION()` and `@@local_infile`. Bad values must be errors
//! rather than silently truncated or zeroed data, which is strict mode: MariaDB (since 10.2.4)
//! and MySQL (since 5.7) default to `STRICT_TRANS_TABLES`, which covers InnoDB tables; the
//! writer adds `STRICT_ALL_TABLES` to the session's `sql_mode` when it is not there, so a server
//! configured without strict mode, or a non-transactional table, still fails on a bad value
//! instead of storing a mangled one.
//!
//! A batch is `START TRANSACTION`, the deletes (tables in reverse order, at most 1000 ids per
//! `DELETE … IN (…)`), the inserts (tables in order; each table's rows grouped by their exact
//! column list), then `COMMIT` or `ROLLBACK`. Each group of rows is sent one of two ways:
//!
//! - **`LOAD DATA LOCAL INFILE`**, one statement per group, its rows streamed as tab-separated
//!   text (the format `COPY` reads in PostgreSQL); binary values go through a user variable
//!   and `UNHEX`, a column of integers and booleans through `CAST(… AS SIGNED)` (`Field`),
//!   so every column type gets what a bound value gives it. This is the server's fastest bulk
//!   path. It is used when the server's
//!   `@@local_infile` is on and the connection string does not say `AllowLoadLocalInfile=false`.
//!   With `LOCAL`, the server turns what strict mode makes errors (a bad value, NULL into a NOT
//!   NULL column, a duplicate key) into warnings, as `IGNORE` does; so the session runs with
//!   `sql_notes = 0` (notes, such as rounding into a `DECIMAL`, are not problems for `INSERT`
//!   either) and any warning a load leaves is turned into the statement error `INSERT` would
//!   have given: its code, message, column and row, hence document. The transaction is then
//!   rolled back, as for any other error.
//! - **multi-row `INSERT … VALUES (…), (…)`** of at most 1000 rows and 60,000 placeholders.
//!   mysql_async caches prepared statements per connection, so chunks of equal shape are
//!   prepared once.
//!
//! Command timeout: on MariaDB the session's `max_statement_time` is set to it, so the server
//! aborts a statement that runs too long (including lock waits) and the error is reported as a
//! statement error; the client additionally gives up 2 s later, in case the server does not
//! answer. MySQL has no such setting for `INSERT`/`DELETE`, so there the client stops waiting
//! after the timeout and drops the connection (the server ends the statement and rolls back
//! when it notices the closed connection). `START TRANSACTION`/`COMMIT` are bounded the same
//! way; zero means no timeout, as in ADO.NET.

use std::future::Future;
use std::time::Duration;

use std::borrow::Cow;
use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, Value};

use crate::destinations::sql::batch::{
    SqlBatch, SqlLoadError, SqlRow, SqlSettings, SqlValue, Statement, StatementFault, TableBatch,
    push_tab_escaped, quote_identifier, quote_table, rendered_positional_ids,
};
use crate::destinations::sql::connection::{self, SqlProvider, SqlTarget};

/// Rows per multi-row `INSERT`.
const MAX_ROWS: usize = 1000;
/// Placeholders per statement (the protocol allows 65,535).
const MAX_PLACEHOLDERS: usize = 60_000;
/// Ids per `DELETE … IN (…)`.
const DELETE_CHUNK: usize = 1000;
/// `max_allowed_packet` assumed by [`plan`], which does not connect (MariaDB's default).
const DEFAULT_MAX_ALLOWED_PACKET: usize = 16 * 1024 * 1024;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How much longer than `max_statement_time` the client waits for MariaDB's answer.
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);
/// Bytes a bound value costs beyond its data (type, length prefix).
const VALUE_OVERHEAD: usize = 11;
/// `LOAD DATA` rows are sent in chunks of about this size.
const LOAD_CHUNK_BYTES: usize = 64 * 1024;
/// Server errors that mean `LOAD DATA LOCAL` is refused: MySQL's and MariaDB's "not allowed"
/// (1148), MySQL 8's "loading local data is disabled" (3948), MariaDB's (4166).
const LOAD_REFUSED: [u16; 3] = [1148, 3948, 4166];

/// Writes batches to one MySQL/MariaDB database; the connection is opened on first use.
pub struct MySqlWriter {
    target: SqlTarget,
    settings: SqlSettings,
    session: Option<Session>,
}

struct Session {
    conn: Conn,
    /// Half of the server's `max_allowed_packet`: the most data one statement sends.
    statement_bytes: usize,
    /// How long the client waits for one statement.
    client_limit: Option<Duration>,
    /// Rows go in with `LOAD DATA LOCAL INFILE` (else with multi-row `INSERT`s).
    load_data: bool,
}

/// Why a batch failed, and whether the connection must be dropped.
struct Failure {
    error: SqlLoadError,
    broken: bool,
}

/// Why one statement failed.
enum ExecError {
    Driver(mysql_async::Error),
    TimedOut(Duration),
    /// A `LOAD DATA` that left a warning (the first one's code and message), or that stored
    /// fewer rows than it was sent (code 0).
    Warning {
        code: u16,
        message: String,
    },
}

impl MySqlWriter {
    pub fn new(target: SqlTarget, settings: SqlSettings) -> MySqlWriter {
        MySqlWriter {
            target,
            settings,
            session: None,
        }
    }

    pub fn settings(&self) -> &SqlSettings {
        &self.settings
    }

    /// Applies a batch in one transaction, committed when `commit`, rolled back otherwise.
    pub async fn write(&mut self, batch: &SqlBatch, commit: bool) -> Result<(), SqlLoadError> {
        // Taken out while in use: if this future is dropped mid-batch, so is the connection
        // (and with it the open transaction).
        let mut session = match self.session.take() {
            Some(it) => it,
            None => self.connect().await?,
        };
        let steps = steps(
            batch,
            &self.settings,
            session.statement_bytes,
            session.load_data,
        );
        let Err(failure) = self.transaction(&mut session, batch, &steps, commit).await else {
            self.session = Some(session);
            return Ok(());
        };
        if !failure.broken && session.conn.query_drop("ROLLBACK").await.is_ok() {
            self.session = Some(session);
        }
        Err(failure.error)
    }

    /// Connects (or reuses the connection), runs a query outside any transaction and returns
    /// whether it returned a row. A failure drops the connection.
    pub async fn query_returns_rows(&mut self, sql: &str) -> Result<bool, SqlLoadError> {
        let mut session = match self.session.take() {
            Some(it) => it,
            None => self.connect().await?,
        };
        let limit = self.connect_limit();
        // Prepared: one statement, whatever `sql` holds (the text protocol runs several).
        let query = session.conn.exec_first::<Value, _, _>(sql, Params::Empty);
        match tokio::time::timeout(limit, query).await {
            Ok(Ok(row)) => {
                self.session = Some(session);
                Ok(row.is_some())
            }
            Ok(Err(error)) => Err(self.connection_error(describe(&error))),
            Err(_) => Err(self.connection_error(no_answer(limit))),
        }
    }

    /// The statements [`write`](Self::write) runs for a batch: with `LOAD DATA` when the
    /// connection string allows it and, once connected, the server does too.
    pub fn plan(&self, batch: &SqlBatch) -> Vec<Statement> {
        let (statement_bytes, load_data) = match &self.session {
            Some(session) => (session.statement_bytes, session.load_data),
            None => (
                DEFAULT_MAX_ALLOWED_PACKET / 2,
                self.target.allow_load_local_infile,
            ),
        };
        statements(steps(batch, &self.settings, statement_bytes, load_data))
    }

    fn connect_limit(&self) -> Duration {
        self.target
            .connect_timeout
            .filter(|it| !it.is_zero())
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }

    /// Why connecting failed: a MySQL/MariaDB server's own error as it is; anything else as a
    /// generic message that echoes nothing the remote end sent.
    fn connect_error(&self, error: &mysql_async::Error) -> String {
        match error {
            mysql_async::Error::Server(_) => describe(error),
            other => connection::generic_connect_error(
                &self.target.host,
                self.target.port,
                match other {
                    mysql_async::Error::Io(mysql_async::IoError::Io(io)) => Some(io),
                    other => connection::io_cause(other),
                },
                "MySQL/MariaDB",
            ),
        }
    }

    fn connection_error(&self, message: String) -> SqlLoadError {
        SqlLoadError::Connection {
            destination: self.target.to_string(),
            message,
        }
    }

    async fn connect(&self) -> Result<Session, SqlLoadError> {
        let limit = self.connect_limit();
        match tokio::time::timeout(limit, self.open()).await {
            Ok(result) => result.map_err(|error| self.connection_error(self.connect_error(&error))),
            Err(_) => Err(self.connection_error(no_answer(limit))),
        }
    }

    async fn open(&self) -> Result<Session, mysql_async::Error> {
        let user = self
            .target
            .user
            .clone()
            .unwrap_or_else(|| "root".to_owned());
        let opts = OptsBuilder::default()
            .ip_or_hostname(self.target.host.clone())
            .tcp_port(self.target.port)
            .db_name(Some(self.target.database.clone()))
            .user(Some(user))
            .pass(self.target.password.clone())
            // Stay on the address given, never switch to the server's Unix socket.
            .prefer_socket(false);
        let mut conn = Conn::new(opts).await?;
        let server: Option<(u64, String, String, Value)> = conn
            .query_first("SELECT @@max_allowed_packet, @@sql_mode, VERSION(), @@local_infile")
            .await?;
        let (packet, mode, version, local_infile) =
            server.unwrap_or((0, String::new(), String::new(), Value::NULL));
        let packet = usize::try_from(packet)
            .ok()
            .filter(|it| *it > 0)
            .unwrap_or(DEFAULT_MAX_ALLOWED_PACKET);
        // See the module documentation: bad values must fail, on every kind of table.
        if !mode
            .split(',')
            .any(|it| it.trim().eq_ignore_ascii_case("STRICT_ALL_TABLES"))
        {
            let mode = if mode.trim().is_empty() {
                "STRICT_ALL_TABLES".to_owned()
            } else {
                format!("{mode},STRICT_ALL_TABLES")
            };
            conn.query_drop(format!("SET SESSION sql_mode = {}", mysql_string(&mode)))
                .await?;
        }
        // 1 on MySQL and MariaDB; `ON` on servers that answer with the setting's name.
        let local_infile = match &local_infile {
            Value::Int(it) => *it == 1,
            Value::UInt(it) => *it == 1,
            Value::Bytes(text) => matches!(text.as_slice(), b"1" | b"ON" | b"on"),
            _ => false,
        };
        let load_data = self.target.allow_load_local_infile && local_infile;
        if load_data {
            // See the module documentation: a load's warnings are its errors, notes are not.
            conn.query_drop("SET SESSION sql_notes = 0").await?;
        }
        let limit = statement_limit(&self.settings);
        let client_limit = match limit {
            Some(limit) if version.contains("MariaDB") => {
                conn.query_drop(format!(
                    "SET SESSION max_statement_time = {:.3}",
                    limit.as_secs_f64()
                ))
                .await?;
                Some(limit + TIMEOUT_GRACE)
            }
            other => other,
        };
        Ok(Session {
            conn,
            statement_bytes: packet / 2,
            client_limit,
            load_data,
        })
    }

    async fn transaction(
        &self,
        session: &mut Session,
        batch: &SqlBatch,
        steps: &[Step<'_>],
        commit: bool,
    ) -> Result<(), Failure> {
        let limit = session.client_limit;
        let conn = &mut session.conn;
        bounded(limit, conn.query_drop("START TRANSACTION"))
            .await
            .map_err(|error| self.failure(error, None, batch))?;
        for step in steps {
            let result = match &step.kind {
                Kind::Delete { ids, bound: true } => {
                    let params = ids.iter().map(|id| text_value(id)).collect();
                    bounded(
                        limit,
                        conn.exec_drop(step.text.as_str(), Params::Positional(params)),
                    )
                    .await
                }
                Kind::Delete { bound: false, .. } => {
                    // Prepared, so the inlined ids can never make it more than one statement.
                    bounded(limit, conn.exec_drop(step.text.as_str(), Params::Empty)).await
                }
                Kind::Insert { rows } => {
                    let mut params = Vec::with_capacity(rows.len() * (step.width));
                    for row in rows {
                        params.push(text_value(&row.document_id));
                        params.extend(row.columns.iter().map(|(_, value)| mysql_value(value)));
                    }
                    bounded(
                        limit,
                        conn.exec_drop(step.text.as_str(), Params::Positional(params)),
                    )
                    .await
                }
                Kind::Load { rows, fields } => {
                    let result = load(conn, limit, &step.text, rows, fields).await;
                    if let Err(ExecError::Driver(mysql_async::Error::Server(server))) = &result
                        && LOAD_REFUSED.contains(&server.code)
                    {
                        // The next attempt sends `INSERT`s.
                        session.load_data = false;
                    }
                    result
                }
            };
            result.map_err(|error| self.failure(error, Some(step), batch))?;
        }
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        bounded(limit, conn.query_drop(end))
            .await
            .map_err(|error| self.failure(error, None, batch))
    }

    /// Classifies a failed statement; `step` is `None` for `START TRANSACTION`/`COMMIT`.
    fn failure(&self, error: ExecError, step: Option<&Step<'_>>, batch: &SqlBatch) -> Failure {
        let table = match step {
            Some(step) => step.table.table.clone(),
            None => batch
                .tables
                .iter()
                .map(|it| it.table.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        match error {
            ExecError::TimedOut(limit) => Failure {
                error: SqlLoadError::Statement {
                    table,
                    column: None,
                    document_id: step.and_then(|it| it.only_document()),
                    message: format!(
                        "no answer within {} s (command timeout); the connection was closed",
                        limit.as_secs_f64()
                    ),
                    fault: StatementFault::Transient,
                },
                broken: true,
            },
            ExecError::Driver(mysql_async::Error::Server(server))
                if !is_connection_code(server.code) =>
            {
                statement_failure(table, step, server.code, &server.message)
            }
            ExecError::Warning { code, message } => statement_failure(table, step, code, &message),
            ExecError::Driver(other) => Failure {
                error: self.connection_error(describe(&other)),
                broken: true,
            },
        }
    }
}

/// A server's error (or a load's warning) about a statement, with the column and document it
/// names where they can be told.
fn statement_failure(table: String, step: Option<&Step<'_>>, code: u16, message: &str) -> Failure {
    let column = server_column(message);
    let document_id = step.and_then(|step| step.failing_document(code, message, column.as_deref()));
    let message = if code == 0 {
        message.to_owned()
    } else {
        format!("{code}: {message}")
    };
    Failure {
        error: SqlLoadError::Statement {
            table,
            column,
            document_id,
            message,
            fault: StatementFault::of_mysql(code),
        },
        broken: false,
    }
}

/// Runs one `LOAD DATA LOCAL INFILE` of `rows` and fails on the first warning it left (see
/// the module documentation).
async fn load(
    conn: &mut Conn,
    limit: Option<Duration>,
    text: &str,
    rows: &[&SqlRow],
    fields: &[Field],
) -> Result<(), ExecError> {
    let chunks = tab_separated_rows(rows, fields);
    conn.set_infile_handler(async move {
        Ok(futures_util::stream::iter(chunks.into_iter().map(Ok)).boxed())
    });
    bounded(limit, conn.query_drop(text)).await?;
    let (warnings, stored) = (conn.get_warnings(), conn.affected_rows());
    if warnings > 0 {
        let first: Option<(String, u16, String)> =
            bounded(limit, conn.query_first("SHOW WARNINGS LIMIT 1")).await?;
        let (_, code, message) = first.unwrap_or_default();
        return Err(ExecError::Warning { code, message });
    }
    if stored != rows.len() as u64 {
        return Err(ExecError::Warning {
            code: 0,
            message: format!("LOAD DATA stored {stored} of {} rows", rows.len()),
        });
    }
    Ok(())
}

/// The rows of a `LOAD DATA` as tab-separated lines, in chunks of about [`LOAD_CHUNK_BYTES`]:
/// the document id, then each value as `fields` says.
fn tab_separated_rows(rows: &[&SqlRow], fields: &[Field]) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut buffer = BytesMut::with_capacity(LOAD_CHUNK_BYTES + 1024);
    for row in rows {
        push_tab_escaped(&mut buffer, row.document_id.as_bytes());
        for ((_, value), field) in row.columns.iter().zip(fields) {
            let hex = *field == Field::Hex;
            buffer.put_u8(b'\t');
            if let (SqlValue::Int(it), false) = (value, hex) {
                // Digits need no escaping; no String in between.
                let _ = write!(buffer, "{it}");
                continue;
            }
            match (field_bytes(value), hex) {
                (None, _) => buffer.put_slice(b"\\N"),
                (Some(bytes), true) => push_hex(&mut buffer, &bytes),
                (Some(bytes), false) => push_tab_escaped(&mut buffer, &bytes),
            }
        }
        buffer.put_u8(b'\n');
        if buffer.len() >= LOAD_CHUNK_BYTES {
            chunks.push(buffer.split().freeze());
        }
    }
    if !buffer.is_empty() {
        chunks.push(buffer.split().freeze());
    }
    chunks
}

fn push_hex(buffer: &mut BytesMut, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        buffer.put_u8(HEX[usize::from(byte >> 4)]);
        buffer.put_u8(HEX[usize::from(byte & 0x0f)]);
    }
}

/// Runs one statement, giving up after `limit`.
async fn bounded<T>(
    limit: Option<Duration>,
    run: impl Future<Output = mysql_async::Result<T>>,
) -> Result<T, ExecError> {
    match limit {
        None => run.await.map_err(ExecError::Driver),
        Some(limit) => match tokio::time::timeout(limit, run).await {
            Ok(result) => result.map_err(ExecError::Driver),
            Err(_) => Err(ExecError::TimedOut(limit)),
        },
    }
}

/// The statement timeout in effect; zero means none, as in ADO.NET.
fn statement_limit(settings: &SqlSettings) -> Option<Duration> {
    settings.command_timeout.filter(|it| !it.is_zero())
}

fn no_answer(limit: Duration) -> String {
    format!("no answer within {} s", limit.as_secs_f64())
}

/// A driver error as a message (never holds the password: the driver does not know how to
/// print it).
fn describe(error: &mysql_async::Error) -> String {
    match error {
        mysql_async::Error::Server(server) => format!("{}: {}", server.code, server.message),
        mysql_async::Error::Io(error) => error.to_string(),
        other => other.to_string(),
    }
}

/// Server errors that mean the connection is gone (shutdown, killed, aborted, idle timeout).
fn is_connection_code(code: u16) -> bool {
    matches!(code, 1053 | 1152 | 1927 | 4031)
}

/// The column a server error names: `Unknown column 'x' in 'field list'`, `… for column 'x'
/// at row 3`, `… for column `db`.`t`.`x` at row 2`, `Column 'x' cannot be null`,
/// `Field 'x' doesn't have a default value`. The last mention wins (a quoted value comes
/// before the column).
pub(crate) fn server_column(message: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    let mut consider = |position: usize, name: Option<String>| {
        if let Some(name) = name
            && best.as_ref().is_none_or(|(at, _)| position > *at)
        {
            best = Some((position, name));
        }
    };
    for marker in ["column '", "Column '", "Field '"] {
        if let Some(at) = message.rfind(marker) {
            let rest = &message[at + marker.len()..];
            consider(at, rest.find('\'').map(|end| rest[..end].to_owned()));
        }
    }
    if let Some(at) = message.rfind("column `") {
        consider(at, last_backtick_part(&message[at + "column ".len()..]));
    }
    best.map(|(_, name)| name)
}

/// The last part of `` `db`.`t`.`c` `` (doubled backticks inside a part stand for one).
fn last_backtick_part(text: &str) -> Option<String> {
    let mut chars = text.chars().peekable();
    let mut last = None;
    while chars.next_if_eq(&'`').is_some() {
        let mut part = String::new();
        loop {
            match chars.next()? {
                '`' if chars.next_if_eq(&'`').is_some() => part.push('`'),
                '`' => break,
                ch => part.push(ch),
            }
        }
        last = Some(part);
        if chars.next_if_eq(&'.').is_none() {
            break;
        }
    }
    last
}

/// The 1-based row of a multi-row statement an error names (`… at row 3`).
pub(crate) fn server_row(message: &str) -> Option<usize> {
    let at = message.rfind(" at row ")?;
    let digits: String = message[at + " at row ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|it| *it > 0)
}

/// A string as a MySQL literal: `'` and `\` doubled.
fn mysql_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

fn text_value(text: &str) -> Value {
    Value::Bytes(text.as_bytes().to_vec())
}

/// How a value is bound: numbers that are not i64 as their text (the server converts it
/// exactly into DECIMAL, and into DOUBLE or INT too), date-times as
/// `yyyy-MM-dd HH:mm:ss.ffffff`.
fn mysql_value(value: &SqlValue) -> Value {
    match value {
        SqlValue::Bool(it) => Value::Int(i64::from(*it)),
        SqlValue::Int(it) => Value::Int(*it),
        SqlValue::Typed { value, .. } => mysql_value(value),
        other => field_bytes(other).map_or(Value::NULL, |it| Value::Bytes(it.into_owned())),
    }
}

/// The bytes the server converts into the column's type, as [`mysql_value`] binds them and
/// `LOAD DATA` reads them; `None` is NULL.
fn field_bytes(value: &SqlValue) -> Option<Cow<'_, [u8]>> {
    Some(match value {
        SqlValue::Null => return None,
        SqlValue::Bool(it) => Cow::Borrowed(if *it { b"1" } else { b"0" }),
        SqlValue::Int(it) => Cow::Owned(it.to_string().into_bytes()),
        SqlValue::Number(text) | SqlValue::Text(text) | SqlValue::Json(text) => {
            Cow::Borrowed(text.as_bytes())
        }
        SqlValue::DateTime(text) => match mysql_datetime(text) {
            Some(it) => Cow::Owned(it.into_bytes()),
            None => Cow::Borrowed(text.as_bytes()),
        },
        SqlValue::Binary(bytes) => Cow::Borrowed(bytes.as_ref()),
        SqlValue::Typed { value, .. } => return field_bytes(value),
    })
}

/// A value `INSERT` binds as a number.
fn is_integer(value: &SqlValue) -> bool {
    match value {
        SqlValue::Int(_) | SqlValue::Bool(_) => true,
        SqlValue::Typed { value, .. } => is_integer(value),
        _ => false,
    }
}

fn is_binary(value: &SqlValue) -> bool {
    match value {
        SqlValue::Binary(_) => true,
        SqlValue::Typed { value, .. } => is_binary(value),
        _ => false,
    }
}

fn is_null(value: &SqlValue) -> bool {
    match value {
        SqlValue::Null => true,
        SqlValue::Typed { value, .. } => is_null(value),
        _ => false,
    }
}

/// About how many bytes a value adds to a statement.
fn value_bytes(value: &SqlValue) -> usize {
    VALUE_OVERHEAD
        + match value {
            SqlValue::Null => 0,
            SqlValue::Bool(_) | SqlValue::Int(_) => 8,
            SqlValue::Number(text)
            | SqlValue::Text(text)
            | SqlValue::DateTime(text)
            | SqlValue::Json(text) => text.len(),
            SqlValue::Binary(bytes) => bytes.len(),
            SqlValue::Typed { value, .. } => value_bytes(value),
        }
}

fn row_bytes(row: &SqlRow) -> usize {
    VALUE_OVERHEAD
        + row.document_id.len()
        + row
            .columns
            .iter()
            .map(|(_, value)| value_bytes(value))
            .sum::<usize>()
}

/// RavenDB's ISO-8601 date-time (`2024-01-02T03:04:05.1234567`, optionally with `Z` or an
/// offset) as MySQL's `yyyy-MM-dd HH:mm:ss.ffffff`: a value with an offset is converted to UTC,
/// fractional digits beyond 6 are truncated. `None` when the text is not such a date-time.
pub(crate) fn mysql_datetime(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let number = |from: usize, to: usize| -> Option<i64> {
        let part = bytes.get(from..to)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|(at, expected)| bytes.get(*at) != Some(expected))
        || !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut fraction = String::new();
    if let Some(after) = rest.strip_prefix('.') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        fraction = after[..digits.min(6)].to_owned();
        rest = &after[digits..];
    }
    while fraction.len() < 6 {
        fraction.push('0');
    }
    let offset_minutes = match rest.as_bytes() {
        [] => None,
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), ..] => {
            let offset = &rest[1..];
            let (hours, minutes) = match offset.len() {
                5 if offset.as_bytes()[2] == b':' => (offset.get(0..2)?, offset.get(3..5)?),
                4 => (offset.get(0..2)?, offset.get(2..4)?),
                2 => (offset.get(0..2)?, "00"),
                _ => return None,
            };
            if !hours
                .bytes()
                .chain(minutes.bytes())
                .all(|it| it.is_ascii_digit())
            {
                return None;
            }
            let total = hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?;
            Some(if *sign == b'-' { -total } else { total })
        }
        _ => return None,
    };
    let (year, month, day, hour, minute, second) = match offset_minutes {
        None | Some(0) => (year, month, day, hour, minute, second),
        Some(offset) => {
            let seconds =
                days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
                    - offset * 60;
            let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
            let time = seconds.rem_euclid(86_400);
            (year, month, day, time / 3600, time / 60 % 60, time % 60)
        }
    };
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{fraction}"
    ))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// One statement of a batch, as both `plan()` and `write()` see it.
struct Step<'a> {
    table: &'a TableBatch,
    text: String,
    /// Placeholders per row.
    width: usize,
    kind: Kind<'a>,
}

enum Kind<'a> {
    /// `bound`: the ids are parameters; otherwise they are inlined in the text.
    Delete { ids: &'a [String], bound: bool },
    /// Rows with the same column list.
    Insert { rows: Vec<&'a SqlRow> },
    /// Rows with the same column list, line `n` of the data being `rows[n - 1]`; `fields[i]`
    /// says how the `i`-th column's values are read.
    Load {
        rows: Vec<&'a SqlRow>,
        fields: Vec<Field>,
    },
}

/// How `LOAD DATA` reads one column of a statement's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// Text the server converts into the column's type, as it does a bound string.
    Text,
    /// Hex digits through a variable and `UNHEX`: the column holds a binary value.
    Hex,
    /// Digits through a variable and `CAST(… AS SIGNED)`: every value is an integer or a
    /// boolean, which `INSERT` binds as a number; a `BIT`, `ENUM` or `SET` column reads a
    /// number differently from its text.
    Integer,
}

impl Field {
    /// How a column holding `values` is read.
    fn of<'a>(mut values: impl Iterator<Item = &'a SqlValue> + Clone) -> Field {
        if values.clone().any(is_binary) {
            Field::Hex
        } else if values.clone().any(is_integer) && values.all(|it| is_integer(it) || is_null(it)) {
            Field::Integer
        } else {
            Field::Text
        }
    }
}

impl Step<'_> {
    /// The document of a statement that touches only one.
    fn only_document(&self) -> Option<String> {
        match &self.kind {
            Kind::Delete { ids: [id], .. } => Some(id.clone()),
            Kind::Insert { rows } | Kind::Load { rows, .. } if rows.len() == 1 => {
                rows.first().map(|it| it.document_id.to_string())
            }
            _ => None,
        }
    }

    /// The document whose row failed: the row the server names, else the first row with
    /// NULL in a column that cannot be null, else the first row when every row lacks a
    /// column without default, else the only one.
    fn failing_document(&self, code: u16, message: &str, column: Option<&str>) -> Option<String> {
        let (Kind::Insert { rows } | Kind::Load { rows, .. }) = &self.kind else {
            return self.only_document();
        };
        if let Some(row) = server_row(message) {
            return rows.get(row - 1).map(|it| it.document_id.to_string());
        }
        let found = match (code, column) {
            // ER_BAD_NULL_ERROR: rows run in order, so the first NULL there is the one.
            (1048, Some(column)) => rows.iter().find(|row| {
                row.columns
                    .iter()
                    .any(|(name, value)| name.eq_ignore_ascii_case(column) && is_null(value))
            }),
            // ER_NO_DEFAULT_FOR_FIELD: every row of the group lacks the column.
            (1364, _) => rows.first(),
            _ => None,
        };
        found
            .map(|it| it.document_id.to_string())
            .or_else(|| self.only_document())
    }
}

/// The statements of a batch in execution order, rows in `LOAD DATA` statements when
/// `load_data`, else in multi-row `INSERT`s whose data `statement_bytes` bounds.
fn steps<'a>(
    batch: &'a SqlBatch,
    settings: &SqlSettings,
    statement_bytes: usize,
    load_data: bool,
) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    for table in batch.tables.iter().rev() {
        if table.insert_only || table.deletes.is_empty() {
            continue;
        }
        let name = quote_table(SqlProvider::MySql, &table.table, settings.quote_tables);
        let column = quote_identifier(SqlProvider::MySql, &table.document_id_column);
        for ids in table.deletes.chunks(DELETE_CHUNK) {
            let list = if settings.parameterize_deletes {
                vec!["?"; ids.len()].join(", ")
            } else {
                ids.iter()
                    .map(|id| mysql_string(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            steps.push(Step {
                table,
                text: format!("DELETE FROM {name} WHERE {column} IN ({list})"),
                width: 1,
                kind: Kind::Delete {
                    ids,
                    bound: settings.parameterize_deletes,
                },
            });
        }
    }
    for table in &batch.tables {
        for (columns, rows) in table.row_groups() {
            if load_data {
                for rows in integer_partitions(rows, columns.len()) {
                    steps.push(load_step(table, &columns, rows, settings));
                }
                continue;
            }
            let width = columns.len() + 1;
            let max_rows = (MAX_PLACEHOLDERS / width).clamp(1, MAX_ROWS);
            let mut chunk: Vec<&SqlRow> = Vec::new();
            let mut bytes = 0;
            for row in rows {
                let size = row_bytes(row);
                if !chunk.is_empty() && (chunk.len() == max_rows || bytes + size > statement_bytes)
                {
                    let rows = std::mem::take(&mut chunk);
                    steps.push(insert_step(table, &columns, rows, settings));
                    bytes = 0;
                }
                chunk.push(row);
                bytes += size;
            }
            if !chunk.is_empty() {
                steps.push(insert_step(table, &columns, chunk, settings));
            }
        }
    }
    steps
}

fn insert_step<'a>(
    table: &'a TableBatch,
    columns: &[&str],
    rows: Vec<&'a SqlRow>,
    settings: &SqlSettings,
) -> Step<'a> {
    let name = quote_table(SqlProvider::MySql, &table.table, settings.quote_tables);
    let names: Vec<String> = std::iter::once(table.document_id_column.as_str())
        .chain(columns.iter().copied())
        .map(|it| quote_identifier(SqlProvider::MySql, it))
        .collect();
    let tuple = format!("({})", vec!["?"; names.len()].join(", "));
    let values = vec![tuple.as_str(); rows.len()].join(", ");
    Step {
        table,
        text: format!("INSERT INTO {name} ({}) VALUES {values}", names.join(", ")),
        width: names.len(),
        kind: Kind::Insert { rows },
    }
}

/// `LOAD DATA LOCAL INFILE` of rows with the same column list. The file name is only a
/// label: the rows come from the connection's handler, never from a file.
fn load_step<'a>(
    table: &'a TableBatch,
    columns: &[&str],
    rows: Vec<&'a SqlRow>,
    settings: &SqlSettings,
) -> Step<'a> {
    let name = quote_table(SqlProvider::MySql, &table.table, settings.quote_tables);
    let fields: Vec<Field> = (0..columns.len())
        .map(|at| Field::of(rows.iter().map(move |row| &row.columns[at].1)))
        .collect();
    let mut targets = vec![quote_identifier(
        SqlProvider::MySql,
        &table.document_id_column,
    )];
    let mut assignments = Vec::new();
    for (at, (column, field)) in columns.iter().zip(&fields).enumerate() {
        let column = quote_identifier(SqlProvider::MySql, column);
        let variable = format!("@corvid_{}", at + 1);
        match field {
            Field::Text => {
                targets.push(column);
                continue;
            }
            Field::Hex => assignments.push(format!("{column} = UNHEX({variable})")),
            Field::Integer => assignments.push(format!("{column} = CAST({variable} AS SIGNED)")),
        }
        targets.push(variable);
    }
    let mut text = format!(
        "LOAD DATA LOCAL INFILE 'corvid-rows' INTO TABLE {name} CHARACTER SET utf8mb4 ({})",
        targets.join(", ")
    );
    if !assignments.is_empty() {
        text.push_str(" SET ");
        text.push_str(&assignments.join(", "));
    }
    Step {
        table,
        text,
        width: targets.len(),
        kind: Kind::Load { rows, fields },
    }
}

/// Splits rows with the same column list so that no column holds integers in some rows and
/// other values in others (see [`Field::Integer`]); usually there is one part.
fn integer_partitions(rows: Vec<&SqlRow>, width: usize) -> Vec<Vec<&SqlRow>> {
    let mixed: Vec<usize> = (0..width)
        .filter(|&at| {
            let values = rows.iter().map(|row| &row.columns[at].1);
            values.clone().any(is_integer)
                && values.clone().any(|it| !is_integer(it) && !is_null(it))
                && !values.clone().any(is_binary)
        })
        .collect();
    if mixed.is_empty() {
        return vec![rows];
    }
    let mut parts: Vec<(Vec<bool>, Vec<&SqlRow>)> = Vec::new();
    for row in rows {
        let key: Vec<bool> = mixed
            .iter()
            .map(|&at| is_integer(&row.columns[at].1))
            .collect();
        match parts.iter_mut().find(|(it, _)| *it == key) {
            Some((_, part)) => part.push(row),
            None => parts.push((key, vec![row])),
        }
    }
    parts.into_iter().map(|(_, part)| part).collect()
}

/// The statements a batch runs (chunked for a 16 MiB `max_allowed_packet`; `write()` uses
/// the server's), rows in `LOAD DATA` statements when `load_data`, else in `INSERT`s: deletes
/// keyed by 1-based placeholder position, rows keyed by column name, every row's values in
/// order. [`MySqlWriter::plan`] knows whether the server allows `LOAD DATA`.
pub fn plan(batch: &SqlBatch, settings: &SqlSettings, load_data: bool) -> Vec<Statement> {
    statements(steps(
        batch,
        settings,
        DEFAULT_MAX_ALLOWED_PACKET / 2,
        load_data,
    ))
}

fn statements(steps: Vec<Step<'_>>) -> Vec<Statement> {
    steps
        .into_iter()
        .map(|step| {
            let params = match &step.kind {
                Kind::Delete { bound: false, .. } => Vec::new(),
                Kind::Delete { ids, bound: true } => rendered_positional_ids(ids),
                Kind::Insert { rows } | Kind::Load { rows, .. } => rows
                    .iter()
                    .flat_map(|row| row.rendered_params(&step.table.document_id_column))
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
    fn formats_date_times_for_mysql() {
        let cases = [
            (
                "2024-01-02T03:04:05.1234567Z",
                Some("2024-01-02 03:04:05.123456"),
            ),
            (
                "2024-01-02T03:04:05.1234567+02:00",
                Some("2024-01-02 01:04:05.123456"),
            ),
            (
                "2024-01-01T01:00:00.5+02:00",
                Some("2023-12-31 23:00:00.500000"),
            ),
            (
                "2024-02-28T23:30:00-01:00",
                Some("2024-02-29 00:30:00.000000"),
            ),
            (
                "2023-12-31T23:59:59.9999999-0030",
                Some("2024-01-01 00:29:59.999999"),
            ),
            ("2024-01-02T03:04:05", Some("2024-01-02 03:04:05.000000")),
            ("2024-01-02 03:04:05.12", Some("2024-01-02 03:04:05.120000")),
            ("2024-02-30T03:04:05", None),
            ("2024-01-02T03:04:05.", None),
            ("2024-01-02T03:04:05+2", None),
            ("2024-01-02", None),
            ("hello", None),
        ];
        for (text, expected) in cases {
            assert_eq!(mysql_datetime(text).as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000, -1, 0, 59, 365, 11_016, 19_723, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn reads_columns_and_rows_of_server_errors() {
        let cases = [
            (
                "Unknown column 'Bogus' in 'field list'",
                Some("Bogus"),
                None,
            ),
            (
                "Data too long for column 'Name' at row 3",
                Some("Name"),
                Some(3),
            ),
            (
                "Incorrect integer value: 'abc' for column `db`.`t`.`Qty` at row 2",
                Some("Qty"),
                Some(2),
            ),
            (
                "Incorrect integer value: 'column 'x'' for column 'c' at row 12",
                Some("c"),
                Some(12),
            ),
            ("Column 'Total' cannot be null", Some("Total"), None),
            (
                "Field 'Total' doesn't have a default value",
                Some("Total"),
                None,
            ),
            ("Table 'db.t' doesn't exist", None, None),
            ("Duplicate entry 'orders/1' for key 'PRIMARY'", None, None),
        ];
        for (message, column, row) in cases {
            assert_eq!(server_column(message).as_deref(), column, "{message}");
            assert_eq!(server_row(message), row, "{message}");
        }
    }
}
