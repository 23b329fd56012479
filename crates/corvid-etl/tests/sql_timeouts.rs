//! Issue 18 finding 3: a SQL destination that stops answering fails the load within the
//! command (connect) timeout instead of stalling the task; once it answers again the batch is
//! delivered whole. Against the machine's PostgreSQL and MariaDB, through a TCP proxy the test
//! can freeze, and a listener that accepts and never answers.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corvid_etl::destinations::sql::connection;
use corvid_etl::destinations::sql::{
    DEFAULT_COMMAND_TIMEOUT, SqlBatch, SqlLoadError, SqlRow, SqlSettings, SqlValue, SqlWriter,
    TableBatch,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::NoTls;

const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// A TCP proxy to `upstream` that stops forwarding (both ways) while frozen.
struct FreezingProxy {
    port: u16,
    frozen: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FreezingProxy {
    async fn start(upstream: &'static str) -> FreezingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = frozen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, flag.clone()));
                tokio::spawn(pump(server_read, client_write, flag.clone()));
            }
        });
        FreezingProxy { port, frozen, task }
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, Ordering::SeqCst);
    }
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        // Frozen: what arrived is held, never sent (a destination that stopped answering).
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// A listener that accepts connections and never says anything.
async fn silent_listener() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, task)
}

fn batch(table: &str, id: &str) -> SqlBatch {
    SqlBatch {
        tables: vec![TableBatch {
            table: table.to_owned(),
            document_id_column: "id".to_owned(),
            insert_only: false,
            deletes: vec![id.to_owned()],
            new_documents: Vec::new(),
            rows: vec![SqlRow {
                document_id: Arc::from(id),
                columns: vec![(Arc::from("v"), SqlValue::Int(1))],
            }],
        }],
    }
}

fn one_second() -> SqlSettings {
    SqlSettings {
        command_timeout: Some(Duration::from_secs(1)),
        ..SqlSettings::default()
    }
}

#[test]
fn a_task_without_a_command_timeout_gets_the_default() {
    assert_eq!(DEFAULT_COMMAND_TIMEOUT, Duration::from_secs(30));
    assert_eq!(
        SqlSettings::default().command_timeout,
        Some(DEFAULT_COMMAND_TIMEOUT)
    );
}

#[tokio::test]
async fn a_frozen_postgres_fails_the_batch_within_the_command_timeout_then_gets_it() {
    if !common::service_available("PostgreSQL", common::POSTGRES_ADDR, "pg frozen") {
        return;
    }
    let (admin, connection) = tokio_postgres::connect(PG_ADMIN, NoTls).await.unwrap();
    tokio::spawn(connection);
    let schema = common::unique_name("frz");
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id text, v int)"
        ))
        .await
        .unwrap();
    let proxy = FreezingProxy::start("127.0.0.1:5432").await;
    let target = connection::parse(
        "Npgsql",
        &format!(
            "Host=127.0.0.1;Port={};Database=test;Username=postgres;SslMode=Disable",
            proxy.port
        ),
    )
    .unwrap();
    let mut writer = SqlWriter::new(target, one_second());
    let table = format!("{schema}.t");
    writer.write(&batch(&table, "a"), true).await.unwrap();
    proxy.freeze(true);
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        writer.write(&batch(&table, "b"), true),
    )
    .await;
    let elapsed = started.elapsed();
    proxy.freeze(false);
    let outcome = format!("{result:?}");
    // The retry, on a new connection, delivers the batch.
    let retried = writer.write(&batch(&table, "b"), true).await;
    let ids: Vec<String> = admin
        .query(&format!("SELECT id FROM {schema}.t ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    assert!(
        matches!(result, Ok(Err(SqlLoadError::Connection { .. }))),
        "{outcome}"
    );
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    assert!(outcome.contains("no answer within"), "{outcome}");
    retried.unwrap();
    assert_eq!(ids, ["a", "b"]);
}

#[tokio::test]
async fn a_postgres_lock_fails_the_batch_within_the_command_timeout_then_it_arrives() {
    if !common::service_available("PostgreSQL", common::POSTGRES_ADDR, "pg lock") {
        return;
    }
    let (admin, connection) = tokio_postgres::connect(PG_ADMIN, NoTls).await.unwrap();
    tokio::spawn(connection);
    let (locker, connection) = tokio_postgres::connect(PG_ADMIN, NoTls).await.unwrap();
    tokio::spawn(connection);
    let schema = common::unique_name("lck");
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id text, v int)"
        ))
        .await
        .unwrap();
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {schema}.t IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();
    let target = connection::parse("Npgsql", common::POSTGRES_CS).unwrap();
    let mut writer = SqlWriter::new(target, one_second());
    let table = format!("{schema}.t");
    let started = Instant::now();
    let locked = tokio::time::timeout(
        Duration::from_secs(20),
        writer.write(&batch(&table, "a"), true),
    )
    .await;
    let elapsed = started.elapsed();
    locker.batch_execute("COMMIT").await.unwrap();
    let retried = writer.write(&batch(&table, "a"), true).await;
    let n: i64 = admin
        .query_one(&format!("SELECT count(*) FROM {schema}.t"), &[])
        .await
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    let outcome = format!("{locked:?}");
    assert!(matches!(locked, Ok(Err(_))), "{outcome}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    retried.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn connecting_to_a_silent_server_fails_within_the_connect_timeout() {
    let (port, listener) = silent_listener().await;
    for (factory, text) in [
        (
            "Npgsql",
            format!("Host=127.0.0.1;Port={port};Database=test;Timeout=1"),
        ),
        (
            "MySqlConnector.MySqlConnectorFactory",
            format!("Server=127.0.0.1;Port={port};Database=test;Connect Timeout=1"),
        ),
    ] {
        let target = connection::parse(factory, &text).unwrap();
        let mut writer = SqlWriter::new(target, SqlSettings::default());
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(20), writer.test_connection()).await;
        let elapsed = started.elapsed();
        assert!(
            matches!(result, Ok(Err(SqlLoadError::Connection { .. }))),
            "{factory}: {result:?}"
        );
        assert!(elapsed < Duration::from_secs(4), "{factory}: {elapsed:?}");
    }
    listener.abort();
}

/// Issue 18 finding 4: a connection string pointing at another service (Redis) gets a generic
/// error that echoes nothing the service said.
#[tokio::test]
async fn errors_do_not_describe_other_services() {
    if !common::service_available("Redis", "127.0.0.1:6379", "redis banner") {
        return;
    }
    for (factory, text) in [
        ("Npgsql", "Host=127.0.0.1;Port=6379;Database=test;Timeout=3"),
        (
            "MySqlConnector.MySqlConnectorFactory",
            "Server=127.0.0.1;Port=6379;Database=test;Connect Timeout=3",
        ),
    ] {
        let target = connection::parse(factory, text).unwrap();
        let mut writer = SqlWriter::new(target, SqlSettings::default());
        let error = writer.test_connection().await.unwrap_err().to_string();
        let lower = error.to_lowercase();
        assert!(
            !lower.contains("-err") && !lower.contains("redis") && !lower.contains("protocol"),
            "{factory}: {error}"
        );
        assert!(error.contains("127.0.0.1:6379"), "{factory}: {error}");
    }
    // Nothing listens on port 1.
    let target = connection::parse("Npgsql", "Host=127.0.0.1;Port=1;Database=test").unwrap();
    let error = SqlWriter::new(target, SqlSettings::default())
        .test_connection()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("connection refused"), "{error}");
}
