//! Queue ETL to Azure Queue Storage end to end: an in-process Corvid source, tasks defined
//! over HTTP, and Microsoft's emulator azurite at 127.0.0.1:10001 (the development account;
//! `scripts/services/azurite.sh` installs and starts it). Each test uses its own uniquely
//! named queues and deletes them at the end; the test of an unreachable account starts and
//! stops an azurite of its own on another port.
//!
//! Without azurite a test says `SKIPPED …` and passes; with `CI` set it fails.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../corvid-etl/tests/common/mod.rs"]
mod services;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use corvid_client::Client;
use corvid_etl::EtlOptions;
use corvid_etl::destinations::queue::AzureAccount;
use corvid_etl::destinations::queue::azure_account::{RequestToSign, http_date};
use serde_json::{Value, json};

use common::live::{
    Server, database, etl_options, eventually, eventually_within, send, start, start_with_options,
};
use common::queue::{change_vector, order, put_connection_string, put_task, statistics, task_info};

const AZURITE_ADDR: &str = "127.0.0.1:10001";
/// The emulator's well-known development account key.
const DEVELOPMENT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const PUBLIC_URL: &str = "http://corvid.test:8080";

/// The explicit form of the development account's connection string on `port`.
fn account_connection_string(port: u16, key: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1"
    )
}

fn azure_connection(connection_string: &str) -> Value {
    json!({"Type": "Queue", "Name": "storage", "BrokerType": "AzureQueueStorage",
           "AzureQueueStorageConnectionSettings": {"ConnectionString": connection_string,
                                                   "EntraId": null, "Passwordless": null}})
}

fn task(script: &str, queues: Value) -> Value {
    json!({
        "EtlType": "Queue", "Name": "orders-out", "ConnectionStringName": "storage",
        "BrokerType": "AzureQueueStorage", "Queues": queues,
        "Transforms": [{"Name": "script1", "Collections": ["Orders"], "Script": script}],
    })
}

/// A server whose public URL is [`PUBLIC_URL`], with database `src`.
async fn source() -> (Server, Client) {
    let server = start_with_options(EtlOptions {
        public_server_url: Some(PUBLIC_URL.to_owned()),
        ..etl_options()
    })
    .await;
    let src = database(&server, "src").await;
    (server, src)
}

/// A queue name no other test run uses (Azure's rules: lowercase, digits, single hyphens).
fn unique_queue(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "corvid-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An azurite queue service, read and cleaned up with Shared Key requests of its own.
struct Azurite {
    client: reqwest::Client,
    account: AzureAccount,
    queues: Vec<String>,
}

impl Azurite {
    async fn connect(test: &str) -> Option<Azurite> {
        if !services::service_available("azurite", AZURITE_ADDR, test) {
            return None;
        }
        Some(Azurite::on_port(10001))
    }

    fn on_port(port: u16) -> Azurite {
        Azurite {
            client: corvid_client::http_client_builder().build().unwrap(),
            account: AzureAccount::parse(&account_connection_string(port, DEVELOPMENT_KEY))
                .unwrap(),
            queues: Vec::new(),
        }
    }

    /// A unique queue, deleted by [`Azurite::clean_up`] (not created).
    fn queue(&mut self, tag: &str) -> String {
        let name = unique_queue(tag);
        self.queues.push(name.clone());
        name
    }

    async fn request(&self, method: &str, resource: &str, query: &[(&str, &str)]) -> (u16, String) {
        let date = http_date(SystemTime::now());
        let path = format!("/devstoreaccount1{resource}");
        let authorization = self.account.authorization(&RequestToSign {
            method,
            path: &path,
            content_length: 0,
            content_type: "",
            ms_headers: &[("x-ms-date", &date), ("x-ms-version", "2021-12-02")],
            query,
        });
        let query_string: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let url = format!(
            "{}{resource}?{}",
            self.account.queue_endpoint,
            query_string.join("&")
        );
        let response = self
            .client
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .header("x-ms-date", date)
            .header("x-ms-version", "2021-12-02")
            .header("Authorization", authorization)
            .header("Content-Length", 0)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn create(&self, queue: &str) {
        let (status, body) = self.request("PUT", &format!("/{queue}"), &[]).await;
        assert_eq!(status, 201, "{body}");
    }

    async fn exists(&self, queue: &str) -> bool {
        let (status, _) = self
            .request("GET", &format!("/{queue}"), &[("comp", "metadata")])
            .await;
        status == 200
    }

    /// Takes (dequeues, hidden for 10 minutes) every visible message of `queue`, as the
    /// JSON their base64 text decodes to.
    async fn take(&self, queue: &str) -> Vec<Value> {
        let (status, body) = self
            .request(
                "GET",
                &format!("/{queue}/messages"),
                &[("numofmessages", "32"), ("visibilitytimeout", "600")],
            )
            .await;
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "{body}");
        body.split("<MessageText>")
            .skip(1)
            .map(|it| {
                let text = &it[..it.find("</MessageText>").unwrap()];
                let bytes = BASE64.decode(text).unwrap();
                serde_json::from_slice(&bytes).unwrap()
            })
            .collect()
    }

    /// Waits until `queue` gave `n` messages in all, and returns them.
    async fn receive(&self, queue: &str, n: usize) -> Vec<Value> {
        let mut received = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while received.len() < n && Instant::now() < deadline {
            received.extend(self.take(queue).await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(received.len(), n, "messages in {queue}: {received:#?}");
        received
    }

    async fn clean_up(self) {
        for queue in &self.queues {
            let _ = self.request("DELETE", &format!("/{queue}"), &[]).await;
        }
    }
}

/// An azurite of the test's own, on a port of its own, stopped when dropped.
struct OwnAzurite {
    child: Child,
    _workspace: tempfile::TempDir,
}

impl OwnAzurite {
    /// The port an own azurite may use: free now.
    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Starts azurite from `tests/services/azurite` (installed there by
    /// `scripts/services/azurite.sh`) and waits until it listens.
    fn start(port: u16) -> OwnAzurite {
        let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/services/azurite/node_modules/.bin/azurite-queue");
        let workspace = tempfile::tempdir().unwrap();
        let child = Command::new(&binary)
            .args(["--queueHost", "127.0.0.1", "--queuePort", &port.to_string()])
            .args(["--inMemoryPersistence", "--skipApiVersionCheck"])
            .args(["--disableTelemetry", "--silent"])
            .current_dir(workspace.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let own = OwnAzurite {
            child,
            _workspace: workspace,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "azurite did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        own
    }
}

impl Drop for OwnAzurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_receives_base64_structured_cloudevents_and_keeps_a_key_sent_back_redacted() {
    let Some(mut azurite) = Azurite::connect("azure_cloudevents").await else {
        return;
    };
    let queue = azurite.queue("orders");
    let (server, src) = source().await;
    let connection_string = account_connection_string(10001, DEVELOPMENT_KEY);
    let (status, body) = put_connection_string(&server, azure_connection(&connection_string)).await;
    assert_eq!(status, 200, "{body}");
    // The key never leaves the server; sent back as shown, the stored one is kept.
    let (_, strings) = send(
        "GET",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        None,
    )
    .await;
    let shown = strings["QueueConnectionStrings"]["storage"].clone();
    assert!(!strings.to_string().contains(DEVELOPMENT_KEY), "{strings}");
    assert_eq!(
        shown["AzureQueueStorageConnectionSettings"]["ConnectionString"],
        connection_string.replace(DEVELOPMENT_KEY, "*****")
    );
    let (status, body) = put_connection_string(&server, shown.clone()).await;
    assert_eq!(status, 200, "{body}");
    // Not to another endpoint, though.
    let mut elsewhere = shown.clone();
    elsewhere["AzureQueueStorageConnectionSettings"]["ConnectionString"] = json!(
        connection_string
            .replace(DEVELOPMENT_KEY, "*****")
            .replace("127.0.0.1:10001", "evil.test:10001")
    );
    let (status, body) = put_connection_string(&server, elsewhere).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("type the key again"), "{body}");

    src.put("orders/1", &order(10), None).await.unwrap();
    src.put("orders/2", &order(30), None).await.unwrap();
    src.put(
        "orders/3",
        &json!({"Total": 5, "Queue": "Not_Valid", "@metadata": {"@collection": "Orders"}}),
        None,
    )
    .await
    .unwrap();
    // The name in the script is lowercased, as RavenDB does.
    let script = format!(
        "var attributes = this.Total === 30 ? {{Type: 'order.big', Subject: 'big'}} : {{}};\n\
         loadTo(this.Queue || '{}', {{Id: id(this), Total: this.Total}}, attributes);",
        queue.to_uppercase()
    );
    let (status, reply) = put_task(&server, task(&script, json!([]))).await;
    assert_eq!(status, 200, "{reply}");
    let mut received = azurite.receive(&queue, 2).await;
    received.sort_by_key(|it| it["data"]["Total"].as_u64());
    let first = &received[0];
    assert_eq!(first["data"], json!({"Id": "orders/1", "Total": 10}));
    assert_eq!(first["specversion"], "1.0");
    assert_eq!(first["type"], "ravendb.etl.put");
    assert_eq!(first["source"], format!("{PUBLIC_URL}/src/orders-out"));
    assert_eq!(first["partitionkey"], "orders/1");
    assert_eq!(first["datacontenttype"], "application/json");
    assert_eq!(first["id"], change_vector(&src, "orders/1").await);
    assert_eq!(received[1]["type"], "order.big");
    assert_eq!(received[1]["subject"], "big");
    // A computed name that is no queue name fails its document only.
    eventually("orders/3's error", || async {
        let errors = statistics(&server).await["LastTransformationErrors"].to_string();
        errors.contains("orders/3") && errors.contains("not a valid Azure queue name")
    })
    .await;
    src.put("orders/4", &order(40), None).await.unwrap();
    let later = azurite.receive(&queue, 1).await;
    assert_eq!(later[0]["data"]["Id"], "orders/4");
    // The task list shows the account's queue endpoint, without the key.
    let (_, tasks) = send("GET", &format!("{}/databases/src/tasks", server.url), None).await;
    let listed = &tasks["OngoingTasksList"][0];
    assert_eq!(listed["BrokerType"], "AzureQueueStorage", "{tasks:#}");
    assert_eq!(listed["Url"], "http://127.0.0.1:10001/devstoreaccount1");
    drop(server);
    azurite.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_skips_a_message_over_64_kib_and_later_documents_arrive() {
    let Some(mut azurite) = Azurite::connect("azure_oversized").await else {
        return;
    };
    let queue = azurite.queue("big");
    let (server, src) = source().await;
    put_connection_string(&server, azure_connection("UseDevelopmentStorage=true")).await;
    src.put("orders/1", &order(10), None).await.unwrap();
    let big = json!({"Total": 20, "Big": true, "@metadata": {"@collection": "Orders"}});
    src.put("orders/2", &big, None).await.unwrap();
    src.put("orders/3", &order(30), None).await.unwrap();
    // 50,000 characters are over 64 KiB once base64-encoded.
    let script = format!(
        "loadTo('{queue}', this.Big ? {{Blob: 'x'.repeat(50000)}} : {{Total: this.Total}});"
    );
    let (status, reply) = put_task(&server, task(&script, json!([]))).await;
    assert_eq!(status, 200, "{reply}");
    let received = azurite.receive(&queue, 2).await;
    let totals: Vec<u64> = received
        .iter()
        .map(|it| it["data"]["Total"].as_u64().unwrap())
        .collect();
    assert_eq!(totals, vec![10, 30]);
    eventually("orders/2 reported as skipped", || async {
        let skipped = statistics(&server).await["LastSkippedItems"].to_string();
        skipped.contains("orders/2") && skipped.contains("65536")
    })
    .await;
    src.put("orders/4", &order(40), None).await.unwrap();
    let later = azurite.receive(&queue, 1).await;
    assert_eq!(later[0]["data"]["Total"], 40);
    drop(server);
    azurite.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_missing_queue_without_declaration_and_a_wrong_key_are_configuration_errors() {
    let Some(mut azurite) = Azurite::connect("azure_configuration").await else {
        return;
    };
    let queue = azurite.queue("missing");
    let (server, src) = source().await;
    put_connection_string(&server, azure_connection("UseDevelopmentStorage=true")).await;
    let mut config = task(
        &format!("loadTo('{queue}', {{Total: this.Total}});"),
        json!([]),
    );
    config["SkipAutomaticQueueDeclaration"] = json!(true);
    let (status, reply) = put_task(&server, config).await;
    assert_eq!(status, 200, "{reply}");
    let task_id = reply["TaskId"].as_u64().unwrap();
    src.put("orders/1", &order(10), None).await.unwrap();
    eventually("a configuration error", || async {
        task_info(&server, task_id).await["LoadErrorClass"] == "Configuration"
    })
    .await;
    let info = task_info(&server, task_id).await;
    let error = info["LoadError"].as_str().unwrap();
    assert!(
        error.contains("QueueNotFound") && error.contains("SkipAutomaticQueueDeclaration"),
        "{info:#}"
    );
    assert_eq!(statistics(&server).await["LastProcessedEtag"], 0);
    assert!(!azurite.exists(&queue).await);
    // Once the queue exists, the document arrives.
    azurite.create(&queue).await;
    let received = azurite.receive(&queue, 1).await;
    assert_eq!(received[0]["data"]["Total"], 10);

    // Another account key: Azure refuses to authenticate the requests.
    let wrong_key = BASE64.encode([7u8; 64]);
    let (status, body) = put_connection_string(
        &server,
        azure_connection(&account_connection_string(10001, &wrong_key)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    src.put("orders/2", &order(20), None).await.unwrap();
    eventually("an authentication error", || async {
        let info = task_info(&server, task_id).await;
        info["LoadErrorClass"] == "Configuration"
            && info["LoadError"]
                .as_str()
                .is_some_and(|it| it.contains("AuthenticationFailed"))
    })
    .await;
    let info = task_info(&server, task_id).await;
    assert!(
        info["LoadError"]
            .as_str()
            .unwrap()
            .contains("check `AccountName` and `AccountKey`"),
        "{info:#}"
    );
    assert!(!info.to_string().contains(&wrong_key), "{info:#}");
    drop(server);
    azurite.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_unreachable_keeps_progress_then_everything_arrives() {
    let Some(_shared) = Azurite::connect("azure_unreachable").await else {
        return;
    };
    let port = OwnAzurite::free_port();
    let mut azurite = Azurite::on_port(port);
    let queue = azurite.queue("later");
    let (server, src) = source().await;
    put_connection_string(
        &server,
        azure_connection(&account_connection_string(port, DEVELOPMENT_KEY)),
    )
    .await;
    let (status, reply) = put_task(
        &server,
        task(
            &format!("loadTo('{queue}', {{Total: this.Total}});"),
            json!([]),
        ),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let task_id = reply["TaskId"].as_u64().unwrap();
    for idx in 1..=3 {
        src.put(&format!("orders/{idx}"), &order(idx), None)
            .await
            .unwrap();
    }
    // Generous limits: a cold azurite start and the retry back-off on a loaded machine.
    let limit = Duration::from_secs(60);
    eventually_within("the task to report Reconnect", limit, || async {
        task_info(&server, task_id).await["LoadErrorClass"] == "Reconnect"
    })
    .await;
    assert_eq!(statistics(&server).await["LastProcessedEtag"], 0);
    // The account comes up: the retries deliver everything.
    let own = OwnAzurite::start(port);
    let received = azurite.receive(&queue, 3).await;
    let mut totals: Vec<u64> = received
        .iter()
        .map(|it| it["data"]["Total"].as_u64().unwrap())
        .collect();
    totals.sort_unstable();
    assert_eq!(totals, vec![1, 2, 3]);
    eventually_within("the progress to move", limit, || async {
        statistics(&server).await["LastProcessedEtag"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    })
    .await;
    drop(server);
    azurite.clean_up().await;
    drop(own);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sends_deletes_when_asked_and_deletes_processed_documents() {
    let Some(mut azurite) = Azurite::connect("azure_deletes").await else {
        return;
    };
    let queue = azurite.queue("outbox");
    let (server, src) = source().await;
    put_connection_string(&server, azure_connection("UseDevelopmentStorage=true")).await;
    let script = format!("loadTo('{queue}', {{Total: this.Total}});");
    // The queue's settings may name it in any case.
    let queues = json!([{"Name": queue.to_uppercase(), "DeleteProcessedDocuments": true, "SendDeletes": true}]);
    let (status, reply) = put_task(&server, task(&script, queues)).await;
    assert_eq!(status, 200, "{reply}");
    src.put("orders/1", &order(10), None).await.unwrap();
    // The document is published, then deleted at the source (the outbox), and its delete
    // goes out as a `ravendb.etl.delete` event without data.
    let received = azurite.receive(&queue, 2).await;
    assert_eq!(received[0]["type"], "ravendb.etl.put");
    assert_eq!(received[0]["data"]["Total"], 10);
    assert_eq!(received[1]["type"], "ravendb.etl.delete");
    assert_eq!(received[1]["partitionkey"], "orders/1");
    assert!(received[1].get("data").is_none(), "{:#}", received[1]);
    assert!(src.get("orders/1").await.unwrap().is_none());
    drop(server);
    azurite.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_keeps_the_order_of_a_documents_messages() {
    let Some(mut azurite) = Azurite::connect("azure_order").await else {
        return;
    };
    let queue = azurite.queue("order");
    let (server, src) = source().await;
    put_connection_string(&server, azure_connection("UseDevelopmentStorage=true")).await;
    let n_docs = 40;
    for idx in 0..n_docs {
        src.put(&format!("orders/{idx}"), &order(idx), None)
            .await
            .unwrap();
    }
    // Documents are sent concurrently, each document's messages one after the other.
    let script = format!(
        "loadTo('{queue}', {{Id: id(this), Seq: 1}});\n\
         loadTo('{queue}', {{Id: id(this), Seq: 2}});"
    );
    let (status, reply) = put_task(&server, task(&script, json!([]))).await;
    assert_eq!(status, 200, "{reply}");
    let received = azurite.receive(&queue, 2 * n_docs as usize).await;
    for idx in 0..n_docs {
        let id = format!("orders/{idx}");
        let seqs: Vec<u64> = received
            .iter()
            .filter(|it| it["data"]["Id"] == id.as_str())
            .map(|it| it["data"]["Seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, vec![1, 2], "{id}");
    }
    drop(server);
    azurite.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_tasks_are_validated_when_saved() {
    let server = start().await;
    let _src = database(&server, "src").await;
    let refused = |settings: Value| {
        json!({"Type": "Queue", "Name": "storage", "BrokerType": "AzureQueueStorage",
               "AzureQueueStorageConnectionSettings": settings})
    };
    for (settings, expected) in [
        (
            json!({"EntraId": {"StorageAccountName": "a", "TenantId": "t", "ClientId": "c", "ClientSecret": "s"}}),
            "`AzureQueueStorageConnectionSettings.EntraId` is not supported: Corvid connects to Azure Queue Storage with a `ConnectionString`",
        ),
        (
            json!({"Passwordless": {"StorageAccountName": "a"}}),
            "`AzureQueueStorageConnectionSettings.Passwordless` is not supported",
        ),
        (
            json!({"ConnectionString": "UseDevelopmentStorage=true", "Colour": "blue"}),
            "unknown setting `AzureQueueStorageConnectionSettings.Colour`",
        ),
        (
            json!({"ConnectionString": "AccountName=a;AccountKey=abcd;Colour=blue"}),
            "unknown connection string setting `Colour`",
        ),
        (
            json!({"ConnectionString": "AccountName=a"}),
            "`AccountKey` must be given",
        ),
        (
            json!({}),
            "`AzureQueueStorageConnectionSettings.ConnectionString` must be given",
        ),
    ] {
        let (status, body) = put_connection_string(&server, refused(settings)).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains(expected), "{expected}: {body}");
    }
    let (status, body) =
        put_connection_string(&server, azure_connection("UseDevelopmentStorage=true")).await;
    assert_eq!(status, 200, "{body}");
    // Queue names: in the script and in `Queues`.
    let (status, body) = put_task(&server, task("loadTo('orders_eu', this);", json!([]))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string()
            .contains("`orders_eu` is not a valid Azure queue name"),
        "{body}"
    );
    let (status, body) = put_task(
        &server,
        task("loadToOrders(this);", json!([{"Name": "a--b"}])),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("`a--b`"), "{body}");
    let (status, body) = put_task(&server, task("loadToOrders(this);", json!([]))).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_test_endpoint_shows_the_messages_with_their_attributes() {
    let server = start().await;
    let src = database(&server, "src").await;
    put_connection_string(&server, azure_connection("UseDevelopmentStorage=true")).await;
    src.put("orders/1", &order(10), None).await.unwrap();
    let script = "output('total', this.Total);\n\
                  loadToOrders({Total: this.Total}, {Type: 'order.created'});";
    let request = json!({"DocumentId": "orders/1", "IsDelete": false,
        "Configuration": task(script, json!([{"Name": "orders", "DeleteProcessedDocuments": true}]))});
    let url = format!("{}/databases/src/admin/etl/queue/test", server.url);
    let (status, body) = send("POST", &url, Some(request)).await;
    assert_eq!(status, 200, "{body}");
    let orders = &body["Summary"][0];
    assert_eq!(orders["QueueName"], "orders", "{body:#}");
    let first = &orders["Messages"][0];
    assert_eq!(first["Body"], json!({"Total": 10}));
    assert_eq!(first["Attributes"]["type"], "order.created");
    assert_eq!(first["Attributes"]["partitionkey"], "orders/1");
    assert_eq!(first["DeleteProcessedDocument"], true);
    assert_eq!(body["DebugOutput"], json!(["total 10"]));
}
