//! A real Corvid server on a loopback port, for tests that go through TCP: ETL processes
//! calling other servers, official clients, destinations that must be reachable by URL.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corvid_client::{Client, ClientOptions, create_database};
use corvid_etl::{EtlManager, EtlOptions};
use corvid_server::{AppState, ServerOptions};
use corvid_store::Storage;
use serde_json::Value;
use tokio::task::JoinHandle;

/// A Corvid server on a loopback port, stopped on drop.
pub struct Server {
    pub url: String,
    pub port: u16,
    pub etl: Arc<EtlManager>,
    task: JoinHandle<()>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.etl.stop_all();
        self.task.abort();
    }
}

/// ETL options for tests: a failed load is retried after 200 ms, at most 1 s apart; large
/// batches are split between 3 transform threads whatever the machine's cores.
pub fn etl_options() -> EtlOptions {
    EtlOptions {
        initial_fallback: Duration::from_millis(200),
        max_fallback: Duration::from_secs(1),
        transform_threads: 3,
        ..EtlOptions::default()
    }
}

/// Starts a server over `storage` on `port` (0: any free port); `dir` is kept alive with it.
pub async fn start_on(port: u16, storage: Arc<Storage>, dir: Option<tempfile::TempDir>) -> Server {
    start_with(port, storage, dir, etl_options()).await
}

/// Starts a server over a fresh data directory whose ETL processes run with `options`.
pub async fn start_with_options(options: EtlOptions) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open(dir.path()).unwrap());
    start_with(0, storage, Some(dir), options).await
}

pub async fn start_with(
    port: u16,
    storage: Arc<Storage>,
    dir: Option<tempfile::TempDir>,
    options: EtlOptions,
) -> Server {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let etl = EtlManager::new(options);
    let state = AppState::new(storage, etl.clone(), ServerOptions::default());
    let task = tokio::spawn(async move {
        corvid_server::serve(listener, state, std::future::pending())
            .await
            .unwrap();
    });
    Server {
        url: format!("http://127.0.0.1:{port}"),
        port,
        etl,
        task,
        _dir: dir,
    }
}

/// Starts a server over a fresh data directory.
pub async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open(dir.path()).unwrap());
    start_on(0, storage, Some(dir)).await
}

pub fn client_options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
        disable_topology_updates: true,
        tls: None,
    }
}

/// Creates a database on the server and returns a client for it.
pub async fn database(server: &Server, name: &str) -> Client {
    create_database(&server.url, name, &client_options())
        .await
        .unwrap();
    Client::new(std::slice::from_ref(&server.url), name, client_options()).unwrap()
}

/// One HTTP request; the answer's status and body (JSON, or the text as a JSON string).
pub async fn send(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let client = corvid_client::http_client_builder().build().unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Polls `check` until it holds (true) or `limit` passes (false).
pub async fn wait_for<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Waits until `check` holds, or fails with `what` after `limit`.
pub async fn eventually_within<F, Fut>(what: &str, limit: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    if !wait_for(limit, check).await {
        panic!("timed out waiting for {what}");
    }
}

/// [`eventually_within`] 20 s.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(20), check).await;
}

/// Enables or disables an ETL task (`type` is `RavenEtl` or `SqlEtl`), as the clients do.
pub async fn set_task_disabled(
    server: &Server,
    db: &str,
    task_id: u64,
    kind: &str,
    disabled: bool,
) {
    let (status, body) = send(
        "POST",
        &format!(
            "{}/databases/{db}/admin/tasks/state?key={task_id}&type={kind}&disable={disabled}",
            server.url
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Waits until the (first) ETL process of database `db` reports that it has caught up.
pub async fn wait_until_caught_up(server: &Server, db: &str) {
    eventually("the process caught up", || async {
        let (_, progress) = send(
            "GET",
            &format!("{}/databases/{db}/etl/progress", server.url),
            None,
        )
        .await;
        progress["Results"][0]["ProcessesProgress"][0]["Completed"] == true
    })
    .await;
}

/// Resets a transformation's progress (`RESET /admin/etl`): everything is sent again.
pub async fn reset_etl(server: &Server, db: &str, task: &str, transform: &str) {
    let (status, body) = send(
        "RESET",
        &format!(
            "{}/databases/{db}/admin/etl?configurationName={task}&transformationName={transform}",
            server.url
        ),
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
