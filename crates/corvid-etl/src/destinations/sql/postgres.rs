//! The PostgreSQL writer: one transaction per batch over one kept `tokio-postgres`
//! connection; deletes as `DELETE … WHERE id = ANY($1)` (or inlined `IN (…)` lists), rows as
//! `COPY … FROM STDIN` in text format, so the server converts each value's text into whatever
//! the column's type is (every digit of a `numeric`, ISO dates into `timestamp[tz]`, JSON text
//! into `json`/`jsonb`, `\x…` into `bytea`).
//!
//! [`plan`] and [`PgWriter::write`] share [`operations`], so the statements shown by the test
//! endpoint are exactly those that run.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use serde_json::value::RawValue;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::{DbError, Severity, SqlState};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::destinations::sql::batch::{
    SqlBatch, SqlLoadError, SqlRow, SqlSettings, SqlValue, Statement, StatementFault,
    push_tab_escaped, quote_identifier, quote_table,
};
use crate::destinations::sql::connection::{self, SqlProvider, SqlTarget, TlsMode};
use crate::destinations::sql::tls;

/// The user when the connection string names none (Npgsql needs one; `postgres` is the usual).
const DEFAULT_USER: &str = "postgres";
/// Npgsql's default `Timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How much longer than the command timeout the client waits before it gives a statement up.
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);
/// Ids bound in one `= ANY($1)` array.
const ANY_DELETE_CHUNK: usize = 50_000;
/// Ids inlined in one `IN (…)` list.
const INLINE_DELETE_CHUNK: usize = 1_000;
/// COPY data is sent in chunks of about this size.
const COPY_CHUNK_BYTES: usize = 64 * 1024;
/// Passwords shorter than this are not scrubbed from messages (doing so would mangle them;
/// no message is known to contain the password anyway).
const MIN_SCRUBBED_PASSWORD: usize = 4;

/// A connection to one PostgreSQL destination, opened on first use and kept across batches.
pub struct PgWriter {
    target: SqlTarget,
    settings: SqlSettings,
    /// Boxed: a `Client` is large, and writers live in enums.
    client: Option<Box<Client>>,
}

impl PgWriter {
    /// No I/O: the connection is opened by the first `write` or `test_connection`.
    pub fn new(target: SqlTarget, settings: SqlSettings) -> PgWriter {
        PgWriter {
            target,
            settings,
            client: None,
        }
    }

    pub fn settings(&self) -> &SqlSettings {
        &self.settings
    }

    /// Applies a batch in one transaction: committed when `commit`, rolled back otherwise.
    /// On any failure the transaction is rolled back; after a connection-level failure the
    /// connection is dropped so the next call opens a new one.
    pub async fn write(&mut self, batch: &SqlBatch, commit: bool) -> Result<(), SqlLoadError> {
        let operations = operations(batch, &self.settings);
        let client = self.take_client().await?;
        match run(
            &client,
            &operations,
            batch,
            self.settings.command_timeout,
            commit,
        )
        .await
        {
            Ok(()) => {
                self.client = Some(client);
                Ok(())
            }
            Err(Failure::Statement(error)) => {
                // Leave the connection idle, not in a failed transaction; keep it only if
                // that worked.
                let limit =
                    client_limit(self.settings.command_timeout).unwrap_or(DEFAULT_CONNECT_TIMEOUT);
                let rollback = tokio::time::timeout(limit, client.batch_execute("ROLLBACK"));
                if !client.is_closed() && matches!(rollback.await, Ok(Ok(()))) {
                    self.client = Some(client);
                }
                Err(error)
            }
            // Dropping the client closes the connection, which rolls the transaction back.
            Err(Failure::Connection(message)) => Err(self.connection_error(message)),
        }
    }

    /// Connects (or reuses the connection), runs a query outside any transaction and returns
    /// whether it returned a row. A failure drops the connection.
    pub async fn query_returns_rows(&mut self, sql: &str) -> Result<bool, SqlLoadError> {
        let client = self.take_client().await?;
        // The extended protocol: exactly one statement, whatever `sql` holds.
        let limit = client_limit(self.settings.command_timeout).unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let Ok(answer) = tokio::time::timeout(limit, client.query(sql, &[])).await else {
            return Err(self.connection_error(format!(
                "no answer within {} s; the connection was closed",
                limit.as_secs_f64()
            )));
        };
        match answer {
            Ok(rows) => {
                self.client = Some(client);
                Ok(!rows.is_empty())
            }
            Err(error) => Err(self.connection_error(error_text(&error))),
        }
    }

    /// The kept client if it is still open, otherwise a new connection.
    async fn take_client(&mut self) -> Result<Box<Client>, SqlLoadError> {
        match self.client.take() {
            Some(client) if !client.is_closed() => Ok(client),
            _ => self.connect().await.map(Box::new),
        }
    }

    async fn connect(&self) -> Result<Client, SqlLoadError> {
        let target = &self.target;
        let mut config = Config::new();
        config
            .host(&target.host)
            .port(target.port)
            .dbname(&target.database)
            .user(
                target
                    .user
                    .as_deref()
                    .filter(|it| !it.is_empty())
                    .unwrap_or(DEFAULT_USER),
            )
            .ssl_mode(match target.tls {
                TlsMode::Disable => SslMode::Disable,
                TlsMode::Prefer => SslMode::Prefer,
                TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
            })
            .application_name("corvid")
            // Notice a peer that vanished within about two minutes instead of two hours.
            .keepalives_idle(Duration::from_secs(60))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(6);
        if let Some(password) = &target.password {
            config.password(password);
        }
        // `Timeout=0` means no limit, as in Npgsql.
        let timeout = target.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        if !timeout.is_zero() {
            config.connect_timeout(timeout);
        }
        let tls = tls::client_config(target.tls, target.root_certificate.as_deref())
            .map_err(|message| self.connection_error(message))?;
        let destination = target.to_string();
        let connected = match tls {
            None => open(&config, NoTls, timeout, destination).await,
            Some(tls) => open(&config, MakeRustlsConnect::new(tls), timeout, destination).await,
        };
        connected.map_err(|message| self.connection_error(message))
    }

    fn connection_error(&self, message: String) -> SqlLoadError {
        let message = match &self.target.password {
            Some(password) if password.len() >= MIN_SCRUBBED_PASSWORD => {
                message.replace(password.as_str(), "***")
            }
            _ => message,
        };
        SqlLoadError::Connection {
            destination: self.target.to_string(),
            message,
        }
    }
}

/// Connects with `tls` (bounded by `timeout`, also the start-up after the socket connects:
/// TLS and authentication; zero means no limit) and runs the connection on a task of its own.
async fn open<T>(
    config: &Config,
    tls: T,
    timeout: Duration,
    destination: String,
) -> Result<Client, String>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let connecting = config.connect(tls);
    let connected = if timeout.is_zero() {
        connecting.await
    } else {
        match tokio::time::timeout(timeout, connecting).await {
            Ok(result) => result,
            Err(_) => return Err(format!("timed out after {} s", timeout.as_secs_f64())),
        }
    };
    let (client, connection) = connected.map_err(|error| connect_error_text(config, &error))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%destination, "PostgreSQL connection ended: {error}");
        }
    });
    Ok(client)
}

/// The statements a batch runs, without connecting.
pub fn plan(batch: &SqlBatch, settings: &SqlSettings) -> Vec<Statement> {
    operations(batch, settings)
        .into_iter()
        .map(|operation| match operation {
            Operation::Delete {
                table,
                text,
                ids,
                parameterized,
                ..
            } => Statement {
                table: table.to_owned(),
                text,
                params: if parameterized {
                    let list = ids
                        .iter()
                        .map(|id| literal(id))
                        .collect::<Vec<_>>()
                        .join(", ");
                    vec![("$1".to_owned(), format!("ARRAY[{list}]"))]
                } else {
                    Vec::new()
                },
            },
            Operation::Copy {
                table,
                text,
                columns,
                rows,
            } => {
                let id_column = columns.first().copied().unwrap_or_default();
                let params = rows
                    .iter()
                    .flat_map(|row| row.rendered_params(id_column))
                    .collect();
                Statement {
                    table: table.to_owned(),
                    text,
                    params,
                }
            }
        })
        .collect()
}

/// One statement of a batch, with what running it and explaining its failures needs.
enum Operation<'a> {
    Delete {
        /// The table name as configured.
        table: &'a str,
        text: String,
        /// The document-id column, unquoted.
        id_column: &'a str,
        ids: &'a [String],
        /// `= ANY($1)` with `ids` bound as `text[]`; otherwise the ids are inlined in `text`.
        parameterized: bool,
    },
    Copy {
        table: &'a str,
        text: String,
        /// Unquoted column names, the document-id column first.
        columns: Vec<&'a str>,
        /// Line `n` of the COPY data is `rows[n - 1]`.
        rows: Vec<&'a SqlRow>,
    },
}

/// Deletes of every table in reverse batch order (children before parents), then the COPYs
/// of every table in batch order, one per distinct column list in order of first appearance.
fn operations<'a>(batch: &'a SqlBatch, settings: &SqlSettings) -> Vec<Operation<'a>> {
    let provider = SqlProvider::Postgres;
    let mut result = Vec::new();
    for table in batch.tables.iter().rev() {
        if table.insert_only || table.deletes.is_empty() {
            continue;
        }
        let name = quote_table(provider, &table.table, settings.quote_tables);
        let id_column = quote_identifier(provider, &table.document_id_column);
        let chunk = if settings.parameterize_deletes {
            ANY_DELETE_CHUNK
        } else {
            INLINE_DELETE_CHUNK
        };
        for ids in table.deletes.chunks(chunk) {
            let text = if settings.parameterize_deletes {
                format!("DELETE FROM {name} WHERE {id_column} = ANY($1)")
            } else {
                let list = ids
                    .iter()
                    .map(|id| literal(id))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("DELETE FROM {name} WHERE {id_column} IN ({list})")
            };
            result.push(Operation::Delete {
                table: &table.table,
                text,
                id_column: &table.document_id_column,
                ids,
                parameterized: settings.parameterize_deletes,
            });
        }
    }
    for table in &batch.tables {
        if table.rows.is_empty() {
            continue;
        }
        let name = quote_table(provider, &table.table, settings.quote_tables);
        for (names, rows) in table.row_groups() {
            let mut columns = Vec::with_capacity(names.len() + 1);
            columns.push(table.document_id_column.as_str());
            columns.extend(names);
            let list = columns
                .iter()
                .map(|column| quote_identifier(provider, column))
                .collect::<Vec<_>>()
                .join(", ");
            result.push(Operation::Copy {
                table: &table.table,
                text: format!("COPY {name} ({list}) FROM STDIN"),
                columns,
                rows,
            });
        }
    }
    result
}

/// A string literal: `'…'` with `'` doubled (as `render_value` shows text).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

enum Failure {
    /// A server error about a statement; the connection is usable after a ROLLBACK.
    Statement(SqlLoadError),
    /// The connection failed or broke; the message never holds the password.
    Connection(String),
}

async fn run(
    client: &Client,
    operations: &[Operation<'_>],
    batch: &SqlBatch,
    command_timeout: Option<Duration>,
    commit: bool,
) -> Result<(), Failure> {
    let limit = client_limit(command_timeout);
    bounded(limit, client.batch_execute("BEGIN"))
        .await?
        .map_err(|error| failure(&error, None, batch))?;
    if let Some(timeout) = command_timeout {
        let set = format!("SET LOCAL statement_timeout = {}", timeout_millis(timeout));
        bounded(limit, client.batch_execute(&set))
            .await?
            .map_err(|error| failure(&error, None, batch))?;
    }
    for operation in operations {
        match operation {
            Operation::Delete {
                text,
                ids,
                parameterized: true,
                ..
            } => {
                // `$1` is declared `text[]`, so a `varchar` id column compares through its
                // implicit cast to text, and a column of another type fails on the server.
                let ids: &(dyn ToSql + Sync) = ids;
                bounded(
                    limit,
                    client.execute_typed(text, &[(ids, Type::TEXT_ARRAY)]),
                )
                .await?
                .map_err(|error| failure(&error, Some(operation), batch))?;
            }
            Operation::Delete { text, .. } => {
                // The extended protocol runs exactly one statement, whatever the ids hold.
                bounded(limit, client.execute_typed(text, &[]))
                    .await?
                    .map_err(|error| failure(&error, Some(operation), batch))?;
            }
            Operation::Copy { text, rows, .. } => {
                bounded(limit, copy(client, text, rows))
                    .await?
                    .map_err(|error| failure(&error, Some(operation), batch))?;
            }
        }
    }
    bounded(
        limit,
        client.batch_execute(if commit { "COMMIT" } else { "ROLLBACK" }),
    )
    .await?
    .map_err(|error| failure(&error, None, batch))
}

/// How long the client waits for one statement: the command timeout plus a grace, so that the
/// server's `statement_timeout` normally ends a slow statement first (a statement error, the
/// connection kept) and this bound only catches a destination that stopped answering at all
/// (the connection is then dropped). `None` without a command timeout.
fn client_limit(command_timeout: Option<Duration>) -> Option<Duration> {
    command_timeout
        .filter(|it| !it.is_zero())
        .map(|it| it + TIMEOUT_GRACE)
}

/// Runs one step of a batch, giving up after `limit` as a connection failure.
async fn bounded<T>(
    limit: Option<Duration>,
    run: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<Result<T, tokio_postgres::Error>, Failure> {
    match limit {
        None => Ok(run.await),
        Some(limit) => tokio::time::timeout(limit, run).await.map_err(|_| {
            Failure::Connection(format!(
                "no answer within {} s (command timeout); the connection was closed",
                limit.as_secs_f64()
            ))
        }),
    }
}

/// `statement_timeout` in milliseconds: at least 1 for a non-zero timeout (0 disables it), at
/// most the server's maximum.
fn timeout_millis(timeout: Duration) -> u128 {
    if timeout.is_zero() {
        0
    } else {
        timeout.as_millis().clamp(1, i32::MAX as u128)
    }
}

/// Runs one `COPY … FROM STDIN`, sending the rows in text format in chunks of about
/// [`COPY_CHUNK_BYTES`].
async fn copy(client: &Client, text: &str, rows: &[&SqlRow]) -> Result<(), tokio_postgres::Error> {
    let sink = client.copy_in::<_, Bytes>(text).await?;
    let mut sink = std::pin::pin!(sink);
    let mut buffer = BytesMut::with_capacity(COPY_CHUNK_BYTES + 1024);
    for row in rows {
        encode_row(&mut buffer, row);
        if buffer.len() >= COPY_CHUNK_BYTES {
            sink.send(buffer.split().freeze()).await?;
        }
    }
    if !buffer.is_empty() {
        sink.send(buffer.split().freeze()).await?;
    }
    sink.as_mut().finish().await?;
    Ok(())
}

/// One line of COPY text data: the document id, then the row's values.
fn encode_row(buffer: &mut BytesMut, row: &SqlRow) {
    push_tab_escaped(buffer, row.document_id.as_bytes());
    for (_, value) in &row.columns {
        buffer.put_u8(b'\t');
        if let SqlValue::Int(it) = value {
            // Digits need no escaping; no String in between.
            let _ = write!(buffer, "{it}");
            continue;
        }
        match field_text(value) {
            Some(text) => push_tab_escaped(buffer, text.as_bytes()),
            None => buffer.put_slice(b"\\N"),
        }
    }
    buffer.put_u8(b'\n');
}

/// The text the server converts into the column's type; `None` is NULL.
fn field_text(value: &SqlValue) -> Option<Cow<'_, str>> {
    match value {
        SqlValue::Null => None,
        SqlValue::Bool(it) => Some(Cow::Borrowed(if *it { "t" } else { "f" })),
        SqlValue::Int(it) => Some(Cow::Owned(it.to_string())),
        SqlValue::Number(it) | SqlValue::Text(it) | SqlValue::DateTime(it) | SqlValue::Json(it) => {
            Some(Cow::Borrowed(it))
        }
        SqlValue::Binary(bytes) => Some(Cow::Owned(bytea_hex(bytes))),
        SqlValue::Typed {
            type_name, value, ..
        } => {
            if type_name.to_ascii_lowercase().contains("array")
                && let SqlValue::Json(json) = value.as_ref()
                && let Some(literal) = array_literal(json)
            {
                return Some(Cow::Owned(literal));
            }
            field_text(value)
        }
    }
}

/// `bytea` input in hex format: `\x0a1b…`.
fn bytea_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 + bytes.len() * 2);
    text.push_str("\\x");
    for byte in bytes {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    text
}

/// A PostgreSQL array literal (`{1,2.5,"a \"b\"",NULL,{3,4}}`) from a JSON array, numbers
/// as written; `None` when the text is not a JSON array.
fn array_literal(json: &str) -> Option<String> {
    let items: Vec<&RawValue> = serde_json::from_str(json).ok()?;
    let mut literal = String::from("{");
    for (at, item) in items.iter().enumerate() {
        if at > 0 {
            literal.push(',');
        }
        let raw = item.get().trim();
        match raw.as_bytes().first() {
            Some(b'[') => literal.push_str(&array_literal(raw)?),
            Some(b'"') => {
                push_array_string(&mut literal, &serde_json::from_str::<String>(raw).ok()?)
            }
            Some(b'n') => literal.push_str("NULL"),
            // An object goes in as its JSON text (a `json[]`/`jsonb[]` element).
            Some(b'{') => push_array_string(&mut literal, raw),
            // A number or `true`/`false`, as written.
            _ => literal.push_str(raw),
        }
    }
    literal.push('}');
    Some(literal)
}

fn push_array_string(literal: &mut String, text: &str) {
    literal.push('"');
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            literal.push('\\');
        }
        literal.push(ch);
    }
    literal.push('"');
}

/// How an error of `operation` (`None`: BEGIN, SET, COMMIT/ROLLBACK) is reported.
fn failure(
    error: &tokio_postgres::Error,
    operation: Option<&Operation<'_>>,
    batch: &SqlBatch,
) -> Failure {
    match error.as_db_error() {
        Some(db)
            if !matches!(
                db.parsed_severity(),
                Some(Severity::Fatal | Severity::Panic)
            ) =>
        {
            Failure::Statement(statement_error(db, operation, batch))
        }
        _ => Failure::Connection(error_text(error)),
    }
}

fn statement_error(
    db: &DbError,
    operation: Option<&Operation<'_>>,
    batch: &SqlBatch,
) -> SqlLoadError {
    let message = db_message(db);
    let fault = StatementFault::of_postgres(db.code().code());
    match operation {
        Some(Operation::Copy {
            table,
            columns,
            rows,
            ..
        }) => {
            let context = db.where_().and_then(|it| copy_context(it, columns));
            // A constraint on one column (`Key ("OrderId")=(orders/9) is not present in
            // table "Orders".`); a foreign key is checked after the last line, so when it is
            // on the document-id column its value is what names the document.
            let key = db.detail().and_then(|it| key_in_detail(it, columns));
            let column = db
                .column()
                .map(str::to_owned)
                .or_else(|| context.as_ref().and_then(|it| it.column.clone()))
                .or_else(|| undefined_column(db, columns))
                .or_else(|| key.as_ref().map(|(column, _)| (*column).to_owned()));
            // A timeout stops at whatever line the server was on; that row is not at fault.
            let document_id = match context {
                Some(CopyContext {
                    line: Some(line), ..
                }) if *db.code() != SqlState::QUERY_CANCELED => line
                    .checked_sub(1)
                    .and_then(|at| rows.get(at))
                    .map(|row| row.document_id.to_string()),
                _ => key
                    .filter(|(column, value)| {
                        columns.first() == Some(column)
                            && rows.iter().any(|row| &*row.document_id == *value)
                    })
                    .map(|(_, value)| value.to_owned()),
            };
            SqlLoadError::Statement {
                table: (*table).to_owned(),
                column,
                document_id,
                message,
                fault,
            }
        }
        Some(Operation::Delete {
            table, id_column, ..
        }) => SqlLoadError::Statement {
            table: (*table).to_owned(),
            column: db
                .column()
                .map(str::to_owned)
                .or_else(|| undefined_column(db, &[id_column])),
            document_id: None,
            message,
            fault,
        },
        None => SqlLoadError::Statement {
            table: configured_table(db, batch),
            column: db.column().map(str::to_owned),
            document_id: None,
            message,
            fault,
        },
    }
}

/// The server's message, then its detail if any.
fn db_message(db: &DbError) -> String {
    match db.detail() {
        Some(detail) if !detail.trim().is_empty() => format!("{}. {}", db.message(), detail),
        _ => db.message().to_owned(),
    }
}

/// Why connecting failed: a PostgreSQL server's own error (authentication, unknown database)
/// or a local TLS failure as they are; anything else as a generic message that echoes nothing
/// the remote end sent.
fn connect_error_text(config: &Config, error: &tokio_postgres::Error) -> String {
    // A TLS failure is local (the handshake, the certificate checks): its text says why. The
    // `rustls::Error` may sit inside an `io::Error`, whose `source` skips it.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(it) = cause {
        let inner = it
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if it.is::<rustls::Error>() || inner.is_some_and(|it| it.is::<rustls::Error>()) {
            return error_text(error);
        }
        cause = it.source();
    }
    if error.as_db_error().is_some() {
        return error_text(error);
    }
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => String::new(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    connection::generic_connect_error(&host, port, connection::io_cause(error), "PostgreSQL")
}

/// An error's text; for a server error its message and detail, without the severity.
fn error_text(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return db_message(db);
    }
    // With the causes (a TLS failure says why only in its source).
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

struct CopyContext {
    /// 1-based line of the COPY data.
    line: Option<usize>,
    column: Option<String>,
}

/// Parses the server's COPY error context: `COPY Orders, line 3, column Total: "abc"`,
/// `COPY Orders, line 3, column Total: null input`, `COPY Orders, line 3: "…"` or
/// `COPY Orders, line 3` (one of the context lines; a trigger adds others).
fn copy_context(where_: &str, columns: &[&str]) -> Option<CopyContext> {
    where_.lines().find_map(|entry| {
        let rest = entry.strip_prefix("COPY ")?;
        let after = &rest[rest.find(", line ")? + ", line ".len()..];
        let digits = after
            .find(|it: char| !it.is_ascii_digit())
            .unwrap_or(after.len());
        let line = after[..digits].parse().ok();
        let column = after[digits..].strip_prefix(", column ").map(|rest| {
            // Prefer a known column the text starts with (a name may hold `: `).
            columns
                .iter()
                .filter(|column| {
                    rest.strip_prefix(**column)
                        .is_some_and(|it| it.is_empty() || it.starts_with(':'))
                })
                .max_by_key(|column| column.len())
                .map_or_else(
                    || rest.split_once(": ").map_or(rest, |(it, _)| it).to_owned(),
                    |column| (*column).to_owned(),
                )
        });
        Some(CopyContext { line, column })
    })
}

/// For `column "X" of relation "T" does not exist` (which has no column field), the column:
/// the longest known column the message names, or else the first quoted name.
fn undefined_column(db: &DbError, columns: &[&str]) -> Option<String> {
    if *db.code() != SqlState::UNDEFINED_COLUMN {
        return None;
    }
    let message = db.message();
    columns
        .iter()
        .filter(|column| message.contains(&format!("column \"{column}\"")))
        .max_by_key(|column| column.len())
        .map(|column| (*column).to_owned())
        .or_else(|| {
            let rest = &message[message.find("column \"")? + "column \"".len()..];
            Some(rest[..rest.find('"')?].to_owned())
        })
}

/// The column and value of a one-column key in a constraint violation's detail:
/// `Key (Id)=(a) already exists.`, `Key ("OrderId")=(orders/9) is not present in table "T".`
/// The column must be one of `columns`.
fn key_in_detail<'a>(detail: &'a str, columns: &[&'a str]) -> Option<(&'a str, &'a str)> {
    let rest = detail.strip_prefix("Key (")?;
    let (name, rest) = rest.split_once(")=(")?;
    let end = rest
        .find(") is not present in table ")
        .or_else(|| rest.rfind(") already exists"))
        .or_else(|| rest.rfind(") "))?;
    let unquoted = match name.strip_prefix('"').and_then(|it| it.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => name.to_owned(),
    };
    let column = columns.iter().find(|column| **column == unquoted)?;
    Some((column, &rest[..end]))
}

/// The configured name of the table a server error names (a deferred constraint failing at
/// COMMIT), else the server's name for it.
fn configured_table(db: &DbError, batch: &SqlBatch) -> String {
    let Some(name) = db.table() else {
        return "(transaction)".to_owned();
    };
    batch
        .tables
        .iter()
        .find(|table| {
            let last = table.table.rsplit('.').next().unwrap_or(&table.table);
            last.trim_matches('"').eq_ignore_ascii_case(name)
        })
        .map_or_else(|| name.to_owned(), |table| table.table.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn text(buffer: BytesMut) -> String {
        String::from_utf8(buffer.to_vec()).unwrap()
    }

    #[test]
    fn escapes_copy_text() {
        let mut buffer = BytesMut::new();
        push_tab_escaped(&mut buffer, "a\tb\nc\rd\\e'\"é".as_bytes());
        assert_eq!(text(buffer), "a\\tb\\nc\\rd\\\\e'\"é");
    }

    #[test]
    fn encodes_rows() {
        let row = SqlRow {
            document_id: Arc::from("orders/1-A"),
            columns: vec![
                (Arc::from("A"), SqlValue::Null),
                (Arc::from("B"), SqlValue::Bool(true)),
                (Arc::from("C"), SqlValue::Int(-5)),
                (
                    Arc::from("D"),
                    SqlValue::Binary(Bytes::from_static(&[0, 0x1b, 0xff])),
                ),
                (
                    Arc::from("E"),
                    SqlValue::Typed {
                        type_name: "Array | Double".to_owned(),
                        value: Box::new(SqlValue::Json("[1, 2.5e3, null]".to_owned())),
                        size: None,
                    },
                ),
            ],
        };
        let mut buffer = BytesMut::new();
        encode_row(&mut buffer, &row);
        assert_eq!(
            text(buffer),
            "orders/1-A\t\\N\tt\t-5\t\\\\x001bff\t{1,2.5e3,NULL}\n"
        );
    }

    #[test]
    fn builds_array_literals() {
        assert_eq!(array_literal("[]").as_deref(), Some("{}"));
        assert_eq!(
            array_literal(r#"[[1,2],[3,4]]"#).as_deref(),
            Some("{{1,2},{3,4}}")
        );
        assert_eq!(
            array_literal(r#"["a \"q\"", "b\\c", null, true, {"x": 1}]"#).as_deref(),
            Some(r#"{"a \"q\"","b\\c",NULL,true,"{\"x\": 1}"}"#)
        );
        assert_eq!(array_literal("{}"), None);
    }

    #[test]
    fn parses_copy_contexts() {
        let columns = ["Id", "Total", "A: B"];
        let context = copy_context("COPY Orders, line 3, column Total: \"abc\"", &columns).unwrap();
        assert_eq!(
            (context.line, context.column.as_deref()),
            (Some(3), Some("Total"))
        );
        let context =
            copy_context("COPY Orders, line 12, column A: B: null input", &columns).unwrap();
        assert_eq!(
            (context.line, context.column.as_deref()),
            (Some(12), Some("A: B"))
        );
        let context = copy_context(
            "PL/pgSQL function f() line 3 at RAISE\nCOPY Orders, line 2: \"x\"",
            &columns,
        )
        .unwrap();
        assert_eq!((context.line, context.column), (Some(2), None));
        let context = copy_context("COPY Orders, line 7, column Other: \"1\"", &columns).unwrap();
        assert_eq!(context.column.as_deref(), Some("Other"));
        assert!(copy_context("SQL statement \"SELECT 1\"", &columns).is_none());
    }

    #[test]
    fn parses_key_details() {
        let columns = ["OrderId", "Name"];
        assert_eq!(
            key_in_detail(
                "Key (OrderId)=(orders/9) is not present in table \"Orders\".",
                &columns
            ),
            Some(("OrderId", "orders/9"))
        );
        assert_eq!(
            key_in_detail("Key (\"Name\")=(a (b)) already exists.", &columns),
            Some(("Name", "a (b)"))
        );
        assert_eq!(
            key_in_detail("Key (\"Other\")=(x) already exists.", &columns),
            None
        );
        assert_eq!(
            key_in_detail("Key (a, b)=(1, 2) already exists.", &columns),
            None
        );
    }
}
