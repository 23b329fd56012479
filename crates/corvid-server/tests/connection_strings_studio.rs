//! What the Studio's connection-strings page relies on: an SQL connection string edited from
//! what GET showed (`Password=*****`) keeps its stored password, but only for the same server;
//! and RavenDB's `POST /admin/test-connection?url=&database=` for Raven connection strings,
//! whose errors never carry what another host's service answered.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use corvid_etl::ConnectionString;
use corvid_store::Storage;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use common::live::{Server, database, send, start_on};

async fn start_with_storage() -> (Server, Arc<Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open(dir.path()).unwrap());
    let server = start_on(0, storage.clone(), Some(dir)).await;
    (server, storage)
}

async fn put_sql(server: &Server, name: &str, connection_string: &str) -> (u16, Value) {
    send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        Some(json!({"Type": "Sql", "Name": name, "FactoryName": "Npgsql",
                    "ConnectionString": connection_string})),
    )
    .await
}

/// The connection string as stored, password included.
fn stored(server: &Server, storage: &Storage, name: &str) -> String {
    let database = storage.database("src").unwrap();
    let found = server
        .etl
        .connection_strings(&database)
        .unwrap()
        .into_iter()
        .find_map(|it| match it {
            ConnectionString::Sql(sql) if sql.name == name => Some(sql.connection_string),
            _ => None,
        });
    found.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redacted_password_sent_back_keeps_the_stored_one() {
    let (server, storage) = start_with_storage().await;
    database(&server, "src").await;
    let (status, body) = put_sql(
        &server,
        "pg",
        "Host=db.internal;Database=shop;Username=etl;Password=s3cret;Timeout=5",
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // What the Studio shows, sent back unchanged.
    let (_, listed) = send(
        "GET",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        None,
    )
    .await;
    let shown = listed["SqlConnectionStrings"]["pg"]["ConnectionString"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        shown,
        "Host=db.internal;Database=shop;Username=etl;Password=*****;Timeout=5"
    );
    let (status, body) = put_sql(&server, "pg", &shown).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stored(&server, &storage, "pg"),
        "Host=db.internal;Database=shop;Username=etl;Password=s3cret;Timeout=5"
    );

    // Edited: another database on the same server keeps the password.
    let (status, body) = put_sql(&server, "pg", &shown.replace("shop", "reports")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stored(&server, &storage, "pg"),
        "Host=db.internal;Database=reports;Username=etl;Password=s3cret;Timeout=5"
    );

    // Another host: refused, nothing changes.
    let (status, body) =
        put_sql(&server, "pg", &shown.replace("db.internal", "evil.example")).await;
    assert_eq!(status, 400, "{body}");
    let message = body["Message"].as_str().unwrap();
    assert!(message.contains("type the password again"), "{message}");
    assert!(!body.to_string().contains("s3cret"), "{body}");
    assert!(stored(&server, &storage, "pg").contains("Database=reports"));

    // A new password replaces it.
    let (status, body) =
        put_sql(&server, "pg", "Host=db.internal;Database=shop;Password=n3w").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stored(&server, &storage, "pg"),
        "Host=db.internal;Database=shop;Password=n3w"
    );

    // A new connection string has nothing to restore: `*****` is its password.
    let (status, body) = put_sql(&server, "other", "Host=h;Database=d;Password=*****").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stored(&server, &storage, "other"),
        "Host=h;Database=d;Password=*****"
    );
}

async fn test_connection(server: &Server, url: &str, database: Option<&str>) -> Value {
    let mut query = format!("url={}", urlencode(url));
    if let Some(database) = database {
        query.push_str(&format!("&database={}", urlencode(database)));
    }
    let (status, body) = send(
        "POST",
        &format!("{}/admin/test-connection?{query}", server.url),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|it| match it {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (it as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A TCP service on a loopback port that answers every connection with `answer` and closes.
async fn fake_service(answer: &'static [u8]) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0_u8; 1024];
                let _ = stream.read(&mut buffer).await;
                let _ = stream.write_all(answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raven_connection_test_checks_the_server_and_the_database() {
    let (server, _storage) = start_with_storage().await;
    database(&server, "src").await;

    assert_eq!(
        test_connection(&server, &server.url, None).await,
        json!({"Success": true})
    );
    assert_eq!(
        test_connection(&server, &format!("{}/", server.url), Some("src")).await,
        json!({"Success": true})
    );
    let answer = test_connection(&server, &server.url, Some("nope")).await;
    assert_eq!(answer["Success"], false);
    assert_eq!(answer["HTTPSuccess"], false);
    assert_eq!(
        answer["Error"],
        format!(
            "database `nope` does not exist on 127.0.0.1:{}",
            server.port
        )
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let answer = test_connection(&server, &format!("http://127.0.0.1:{closed_port}"), None).await;
    assert_eq!(
        answer["Error"],
        format!("could not connect to 127.0.0.1:{closed_port}: connection refused")
    );

    let long = format!("http://{}.example", "a".repeat(5000));
    for bad in [
        "not a url",
        "javascript:alert(1)",
        "http://[::1",
        "http://a b",
        "http://127.0.0.1:99999",
        "http://h/?q=1",
        "file:///etc/passwd",
        long.as_str(),
    ] {
        let answer = test_connection(&server, bad, Some("x")).await;
        assert_eq!(answer["Success"], false, "{bad}: {answer}");
        assert!(answer["Error"].is_string(), "{bad}: {answer}");
    }
    let answer = test_connection(&server, "not a url", None).await;
    assert!(
        answer["Error"]
            .as_str()
            .unwrap()
            .starts_with("invalid url `not a url`"),
        "{answer}"
    );

    let (status, body) = send(
        "POST",
        &format!("{}/admin/test-connection", server.url),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raven_connection_test_never_shows_what_another_service_said() {
    let (server, _storage) = start_with_storage().await;
    let web = fake_service(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 33\r\nConnection: close\r\n\r\n{\"internal\":\"secret-web-banner\"}\n",
    )
    .await;
    let redis = fake_service(b"-ERR secret-redis-banner unknown command\r\n").await;
    let forbidden = fake_service(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 20\r\nConnection: close\r\n\r\nsecret-denied-banner",
    )
    .await;
    for (port, expected) in [
        (web, format!("127.0.0.1:{web} is not a RavenDB server")),
        (redis, format!("127.0.0.1:{redis} is not a RavenDB server")),
        (
            forbidden,
            format!(
                "127.0.0.1:{forbidden} refused access (status 403); a client certificate may be needed"
            ),
        ),
    ] {
        let answer = test_connection(&server, &format!("http://127.0.0.1:{port}"), Some("x")).await;
        assert_eq!(answer["Success"], false, "{answer}");
        assert_eq!(answer["Error"], expected, "{answer}");
        assert!(!answer.to_string().contains("secret"), "{answer}");
    }
}
