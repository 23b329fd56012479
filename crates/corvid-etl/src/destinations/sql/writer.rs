//! The writer of a SQL ETL process: dispatches to the provider's writer.

use crate::destinations::sql::batch::{
    SqlBatch, SqlLoadError, SqlSettings, Statement, quote_table,
};
use crate::destinations::sql::connection::{SqlProvider, SqlTarget};
use crate::destinations::sql::{mysql, postgres, sqlite};

/// A connection to one SQL destination, opened on first use and kept across batches; after a
/// failure it is dropped and opened again on the next attempt.
pub enum SqlWriter {
    Postgres(postgres::PgWriter),
    MySql(mysql::MySqlWriter),
    Sqlite(sqlite::SqliteWriter),
}

impl SqlWriter {
    pub fn new(target: SqlTarget, settings: SqlSettings) -> SqlWriter {
        match target.provider {
            SqlProvider::Postgres => SqlWriter::Postgres(postgres::PgWriter::new(target, settings)),
            SqlProvider::MySql => SqlWriter::MySql(mysql::MySqlWriter::new(target, settings)),
            SqlProvider::Sqlite => SqlWriter::Sqlite(sqlite::SqliteWriter::new(target, settings)),
        }
    }

    /// Applies a batch in one transaction: committed when `commit`, rolled back otherwise
    /// (the test endpoint's `PerformRolledBackTransaction`). An empty batch opens nothing.
    pub async fn write(&mut self, batch: &SqlBatch, commit: bool) -> Result<(), SqlLoadError> {
        if batch.is_empty() {
            return Ok(());
        }
        match self {
            SqlWriter::Postgres(it) => it.write(batch, commit).await,
            SqlWriter::MySql(it) => it.write(batch, commit).await,
            SqlWriter::Sqlite(it) => it.write(batch, commit).await,
        }
    }

    /// The statements [`write`](Self::write) runs for a batch, without connecting. On MySQL,
    /// whether rows go in with `LOAD DATA` depends on the server, which is known once a
    /// `write` connected.
    pub fn plan(&self, batch: &SqlBatch) -> Vec<Statement> {
        match self {
            SqlWriter::Postgres(it) => postgres::plan(batch, it.settings()),
            SqlWriter::MySql(it) => it.plan(batch),
            SqlWriter::Sqlite(it) => sqlite::plan(batch, it.settings()),
        }
    }

    /// Connects (or reuses the connection) and runs a trivial query.
    /// A SQLite file is opened without being created.
    pub async fn test_connection(&mut self) -> Result<(), SqlLoadError> {
        if let SqlWriter::Sqlite(it) = self {
            return it.test_connection().await;
        }
        self.query_returns_rows("SELECT 1").await.map(drop)
    }

    /// Returns whether `table` holds any row (outside any transaction).
    pub async fn table_has_rows(&mut self, table: &str) -> Result<bool, SqlLoadError> {
        let (provider, quote) = match self {
            SqlWriter::Postgres(it) => (SqlProvider::Postgres, it.settings().quote_tables),
            SqlWriter::MySql(it) => (SqlProvider::MySql, it.settings().quote_tables),
            SqlWriter::Sqlite(it) => (SqlProvider::Sqlite, it.settings().quote_tables),
        };
        let sql = format!(
            "SELECT 1 FROM {} LIMIT 1",
            quote_table(provider, table, quote)
        );
        self.query_returns_rows(&sql).await
    }

    /// Runs `sql` as exactly one statement (prepared; a text of several is refused) outside
    /// any transaction and returns whether it returned a row.
    pub async fn query_returns_rows(&mut self, sql: &str) -> Result<bool, SqlLoadError> {
        match self {
            SqlWriter::Postgres(it) => it.query_returns_rows(sql).await,
            SqlWriter::MySql(it) => it.query_returns_rows(sql).await,
            SqlWriter::Sqlite(it) => it.query_returns_rows(sql).await,
        }
    }
}
