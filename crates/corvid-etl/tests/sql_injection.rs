//! Issue 18 finding 1: with `QuoteTables: false`, a configured table name is never SQL text.
//! A name like `t LIMIT 1; DROP TABLE victim; --` must not drop `victim` through the
//! ownership probe, the batch statements or a direct query, on the machine's PostgreSQL and
//! MariaDB and on a SQLite file. Each test makes its own uniquely named schema (database) and
//! drops it.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use corvid_etl::destinations::sql::connection::{self, SqlProvider};
use corvid_etl::destinations::sql::{
    SqlBatch, SqlRow, SqlSettings, SqlValue, SqlWriter, TableBatch,
};
use mysql_async::prelude::Queryable;
use tokio_postgres::NoTls;

const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

fn settings() -> SqlSettings {
    SqlSettings {
        quote_tables: false,
        ..SqlSettings::default()
    }
}

fn batch(table: &str) -> SqlBatch {
    SqlBatch {
        tables: vec![TableBatch {
            table: table.to_owned(),
            document_id_column: "id".to_owned(),
            insert_only: false,
            deletes: vec!["orders/1".to_owned()],
            new_documents: Vec::new(),
            rows: vec![SqlRow {
                document_id: Arc::from("orders/1"),
                columns: vec![(Arc::from("v"), SqlValue::Int(1))],
            }],
        }],
    }
}

/// Every way a configured name reaches the database: the ownership probe, a batch, a query.
async fn attack(writer: &mut SqlWriter, evil: &str, victim: &str) {
    let _ = writer.table_has_rows(evil).await;
    let _ = writer.write(&batch(evil), true).await;
    // A probe's text runs as one statement: the second is refused, not run.
    let _ = writer
        .query_returns_rows(&format!("SELECT 1; DROP TABLE {victim}"))
        .await;
}

#[tokio::test]
async fn postgres_unquoted_names_never_run_as_sql() {
    if !common::service_available("PostgreSQL", common::POSTGRES_ADDR, "pg injection") {
        return;
    }
    let (admin, connection) = tokio_postgres::connect(PG_ADMIN, NoTls).await.unwrap();
    tokio::spawn(connection);
    let schema = common::unique_name("inj");
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id text, v int);
             CREATE TABLE {schema}.victim (x int)"
        ))
        .await
        .unwrap();
    let victim = format!("{schema}.victim");
    let evil = format!("{schema}.t LIMIT 1; DROP TABLE {victim}; --");
    let target = connection::parse("Npgsql", common::POSTGRES_CS).unwrap();
    let mut writer = SqlWriter::new(target, settings());
    attack(&mut writer, &evil, &victim).await;
    let exists = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'victim'",
            &[&schema],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    assert_eq!(exists, 1, "the victim table was dropped");
}

#[tokio::test]
async fn mariadb_unquoted_names_never_run_as_sql() {
    if !common::service_available("MariaDB", common::MARIADB_ADDR, "mariadb injection") {
        return;
    }
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(3306)
        .user(Some("root"))
        .db_name(Some("test"))
        .prefer_socket(false);
    let mut admin = mysql_async::Conn::new(opts).await.unwrap();
    let db = common::unique_name("inj");
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE TABLE {db}.t (id varchar(50), v int)"),
        format!("CREATE TABLE {db}.victim (x int)"),
    ] {
        admin.query_drop(sql).await.unwrap();
    }
    let victim = format!("{db}.victim");
    let evil = format!("{db}.t LIMIT 1; DROP TABLE {victim}; -- ");
    let target =
        connection::parse("MySqlConnector.MySqlConnectorFactory", common::MARIADB_CS).unwrap();
    let mut writer = SqlWriter::new(target, settings());
    attack(&mut writer, &evil, &victim).await;
    // Inlined delete ids cannot end the statement either.
    let mut inline = batch(&format!("{db}.t"));
    inline.tables[0].deletes = vec![format!("x'); DROP TABLE {victim}; -- ")];
    let mut writer = SqlWriter::new(
        connection::parse("MySqlConnector.MySqlConnectorFactory", common::MARIADB_CS).unwrap(),
        SqlSettings {
            parameterize_deletes: false,
            ..settings()
        },
    );
    let _ = writer.write(&inline, true).await;
    let exists: Option<i64> = admin
        .exec_first(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'victim'",
            (db.clone(),),
        )
        .await
        .unwrap();
    admin
        .query_drop(format!("DROP DATABASE {db}"))
        .await
        .unwrap();
    assert_eq!(exists, Some(1), "the victim table was dropped");
}

#[tokio::test]
async fn sqlite_unquoted_names_never_run_as_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inj.db");
    let admin = rusqlite::Connection::open(&path).unwrap();
    admin
        .execute_batch("CREATE TABLE t (id text, v int); CREATE TABLE victim (x int);")
        .unwrap();
    let target = connection::parse(
        "Microsoft.Data.Sqlite",
        &format!("Data Source={}", path.display()),
    )
    .unwrap();
    assert_eq!(target.provider, SqlProvider::Sqlite);
    let mut writer = SqlWriter::new(target, settings());
    attack(&mut writer, "t LIMIT 1; DROP TABLE victim; --", "victim").await;
    let exists: i64 = admin
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'victim'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(exists, 1, "the victim table was dropped");
}

/// Issue 18 finding 4: testing a SQLite connection never creates the file.
#[tokio::test]
async fn testing_a_sqlite_connection_never_creates_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    let target = connection::parse(
        "Microsoft.Data.Sqlite",
        &format!("Data Source={}", path.display()),
    )
    .unwrap();
    let error = SqlWriter::new(target.clone(), SqlSettings::default())
        .test_connection()
        .await
        .unwrap_err()
        .to_string();
    assert!(!path.exists(), "the test created {}", path.display());
    assert!(error.contains("does not exist"), "{error}");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x int)")
        .unwrap();
    SqlWriter::new(target, SqlSettings::default())
        .test_connection()
        .await
        .unwrap();
}
