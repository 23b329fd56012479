//! The writer of a SQL ETL process: dispatches to the provider's writer.

use crate::destinations::sql::batch::{SqlBatch, SqlLoadError, SqlSettings, Statement};
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

    /// Connects (or reuses the connection) and runs a trivial query.
    pub async fn test_connection(&mut self) -> Result<(), SqlLoadError> {
        match self {
            SqlWriter::Postgres(it) => it.test_connection().await,
            SqlWriter::MySql(it) => it.test_connection().await,
            SqlWriter::Sqlite(it) => it.test_connection().await,
        }
    }
}

/// The statements a batch runs on a provider, without connecting.
pub fn plan(provider: SqlProvider, batch: &SqlBatch, settings: &SqlSettings) -> Vec<Statement> {
    match provider {
        SqlProvider::Postgres => postgres::plan(batch, settings),
        SqlProvider::MySql => mysql::plan(batch, settings),
        SqlProvider::Sqlite => sqlite::plan(batch, settings),
    }
}
