//! Queue ETL to Amazon SQS end to end: an in-process Corvid source, tasks defined over HTTP,
//! and a real SQS emulator — moto at 127.0.0.1:4566 (`scripts/services/moto.sh`). Each test
//! uses its own uniquely named queues and deletes them at the end. The tests of credentials
//! and of an unreachable endpoint start moto instances of their own on free ports, from the
//! venv the script installs (`~/.cache/corvid/moto-venv`).
//!
//! Without moto a test says `SKIPPED …` and passes; with `CI` set it fails.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../corvid-etl/tests/common/mod.rs"]
mod services;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use corvid_client::Client;
use corvid_etl::EtlOptions;
use serde_json::{Value, json};

use common::live::{
    Server, database, etl_options, eventually, reset_etl, send, start, start_with_options,
};
use common::queue::{change_vector, order, put_connection_string, statistics, task_info};

const MOTO_ADDR: &str = "127.0.0.1:4566";
const MOTO_URL: &str = "http://127.0.0.1:4566";
const PUBLIC_URL: &str = "http://corvid.test:8080";

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

fn sqs_connection(service_url: &str, secret_key: &str) -> Value {
    json!({"Type": "Queue", "Name": "broker", "BrokerType": "AmazonSqs",
           "AmazonSqsConnectionSettings": {
               "Basic": {"AccessKey": "AKIDCORVIDTEST", "SecretKey": secret_key, "RegionName": "us-east-1"},
               "Passwordless": false, "UseEmulator": false, "ServiceUrl": service_url}})
}

fn task(script: &str, queues: Value, skip_declaration: bool) -> Value {
    json!({
        "EtlType": "Queue", "Name": "orders-out", "ConnectionStringName": "broker",
        "BrokerType": "AmazonSqs", "Queues": queues,
        "SkipAutomaticQueueDeclaration": skip_declaration,
        "Transforms": [{"Name": "script1", "Collections": ["Orders"], "Script": script}],
    })
}

/// Saves the task; returns its id.
async fn put_task(server: &Server, config: Value) -> u64 {
    let (status, reply) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(config),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    reply["TaskId"].as_u64().unwrap()
}

/// A message as received: its body parsed (a structured CloudEvent) and its system
/// attributes (`MessageGroupId`, `MessageDeduplicationId` on FIFO queues).
#[derive(Debug)]
struct Received {
    event: Value,
    attributes: Value,
}

/// An SQS endpoint as the tests speak to it: moto takes any signature by default, so the
/// requests carry a placeholder one.
struct Sqs {
    client: reqwest::Client,
    url: String,
    queues: Vec<String>,
}

impl Sqs {
    async fn connect(test: &str) -> Option<Sqs> {
        if !services::service_available("moto (SQS)", MOTO_ADDR, test) {
            return None;
        }
        Some(Sqs::at(MOTO_URL))
    }

    fn at(url: &str) -> Sqs {
        Sqs {
            client: corvid_client::http_client_builder().build().unwrap(),
            url: url.to_owned(),
            queues: Vec::new(),
        }
    }

    async fn call(&self, action: &str, request: Value) -> (u16, Value) {
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("AmazonSQS.{action}"))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDCORVIDTEST/20250101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(request.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A unique queue name (a FIFO one ending in `.fifo`), deleted by [`Sqs::clean_up`].
    fn queue_name(&mut self, tag: &str, fifo: bool) -> String {
        let mut name = services::unique_name(tag);
        if fifo {
            name.push_str(".fifo");
        }
        self.queues.push(name.clone());
        name
    }

    async fn queue_url(&self, name: &str) -> Option<String> {
        let (status, answer) = self.call("GetQueueUrl", json!({"QueueName": name})).await;
        (status == 200).then(|| answer["QueueUrl"].as_str().unwrap().to_owned())
    }

    /// Takes the messages waiting in `queue` (each hidden for 5 minutes once taken).
    async fn take(&self, queue: &str) -> Vec<Received> {
        let Some(url) = self.queue_url(queue).await else {
            return Vec::new();
        };
        let (status, answer) = self
            .call(
                "ReceiveMessage",
                json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 300,
                       "AttributeNames": ["All"], "MessageSystemAttributeNames": ["All"]}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        let messages = answer["Messages"].as_array().cloned().unwrap_or_default();
        messages
            .into_iter()
            .map(|it| Received {
                event: serde_json::from_str(it["Body"].as_str().unwrap()).unwrap(),
                attributes: it["Attributes"].clone(),
            })
            .collect()
    }

    /// Waits until `queue` gave `n` messages in all, and returns them.
    async fn receive(&self, queue: &str, n: usize) -> Vec<Received> {
        let mut received = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while received.len() < n && std::time::Instant::now() < deadline {
            received.extend(self.take(queue).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(received.len(), n, "messages in {queue}: {received:#?}");
        received
    }

    /// Asserts that nothing more arrives in `queue` for a while.
    async fn assert_no_more(&self, queue: &str) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let more = self.take(queue).await;
        assert!(more.is_empty(), "unexpected in {queue}: {more:#?}");
    }

    async fn clean_up(self) {
        for name in &self.queues {
            if let Some(url) = self.queue_url(name).await {
                self.call("DeleteQueue", json!({"QueueUrl": url})).await;
            }
        }
    }
}

/// A moto server of the test's own, on a free port; stopped when dropped.
struct OwnMoto {
    child: Option<Child>,
    port: u16,
}

impl OwnMoto {
    /// A free port and the venv's `moto_server`, not started yet; `None` (skipped, or a
    /// failure in CI) without the venv.
    fn prepare(test: &str) -> Option<OwnMoto> {
        let binary = moto_binary();
        if !binary.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {} is missing (scripts/services/moto.sh installs it), and CI must not skip it",
                binary.display()
            );
            eprintln!(
                "SKIPPED {test}: {} missing (run scripts/services/moto.sh)",
                binary.display()
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Some(OwnMoto { child: None, port })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it and waits until it answers.
    async fn start(&mut self) {
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        eventually("the test's own moto to answer", || async {
            tokio::net::TcpStream::connect(&addr).await.is_ok()
        })
        .await;
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn moto_binary() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/corvid/moto-venv/bin/moto_server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_standard_queue_receives_structured_cloudevents() {
    let Some(mut sqs) = Sqs::connect("sqs_standard").await else {
        return;
    };
    let queue = sqs.queue_name("orders", false);
    let (server, src) = source().await;
    src.put("orders/1", &order(10), None).await.unwrap();
    src.put("orders/2", &order(20), None).await.unwrap();
    let (status, reply) = put_connection_string(&server, sqs_connection(MOTO_URL, "s3cret")).await;
    assert_eq!(status, 200, "{reply}");
    // Written in capitals in the script: SQS queue names are lower-cased, as RavenDB does.
    let script = format!(
        "loadTo('{}', {{Id: id(this), Total: this.Total}}, this.Total === 20 ? {{Type: 'order.big', Subject: 'big'}} : {{}});",
        queue.to_uppercase()
    );
    let task_id = put_task(&server, task(&script, json!([]), false)).await;
    let mut received = sqs.receive(&queue, 2).await;
    received.sort_by_key(|it| it.event["data"]["Total"].as_u64());
    let first = &received[0].event;
    assert_eq!(first["specversion"], "1.0", "{first:#}");
    assert_eq!(first["type"], "ravendb.etl.put");
    assert_eq!(first["source"], format!("{PUBLIC_URL}/src/orders-out"));
    assert_eq!(first["partitionkey"], "orders/1");
    assert_eq!(first["id"], change_vector(&src, "orders/1").await);
    assert_eq!(first["datacontenttype"], "application/json");
    assert_eq!(first["data"], json!({"Id": "orders/1", "Total": 10}));
    let second = &received[1].event;
    assert_eq!(second["type"], "order.big");
    assert_eq!(second["subject"], "big");
    // A standard queue has no group or de-duplication id.
    assert!(received[0].attributes["MessageGroupId"].is_null());
    // The task list shows where it sends, without the secret.
    let info = task_info(&server, task_id).await;
    assert_eq!(info["BrokerType"], "AmazonSqs", "{info:#}");
    assert_eq!(info["Url"], MOTO_URL, "{info:#}");
    assert_eq!(info["TaskConnectionStatus"], "Active", "{info:#}");
    let (_, tasks) = send("GET", &format!("{}/databases/src/tasks", server.url), None).await;
    assert_eq!(tasks["OngoingTasksList"][0]["BrokerType"], "AmazonSqs");
    assert!(!tasks.to_string().contains("s3cret"));
    // The test endpoint shows the lower-cased queue.
    let (status, tested) = send(
        "POST",
        &format!("{}/databases/src/admin/etl/queue/test", server.url),
        Some(json!({"DocumentId": "orders/1", "IsDelete": false,
                    "Configuration": task(&script, json!([]), false)})),
    )
    .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["Summary"][0]["QueueName"], queue, "{tested:#}");
    drop(server);
    sqs.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_fifo_queue_groups_by_document_and_drops_a_batch_sent_again() {
    let Some(mut sqs) = Sqs::connect("sqs_fifo").await else {
        return;
    };
    let fifo = sqs.queue_name("orders", true);
    let standard = sqs.queue_name("audit", false);
    let (server, src) = source().await;
    put_connection_string(&server, sqs_connection(MOTO_URL, "s3cret")).await;
    for idx in 1..=3 {
        src.put(&format!("orders/{idx}"), &order(idx), None)
            .await
            .unwrap();
    }
    let script = format!(
        "loadTo('{fifo}', {{Total: this.Total}});\nloadTo('{standard}', {{Total: this.Total}});"
    );
    put_task(&server, task(&script, json!([]), false)).await;
    let mut received = sqs.receive(&fifo, 3).await;
    received.sort_by_key(|it| it.event["data"]["Total"].as_u64());
    for (idx, message) in received.iter().enumerate() {
        let id = format!("orders/{}", idx + 1);
        assert_eq!(message.attributes["MessageGroupId"], id, "{message:#?}");
        // The document loads to two queues: the de-duplication id is the event id and the load's position.
        assert_eq!(
            message.attributes["MessageDeduplicationId"],
            format!("{}/0", change_vector(&src, &id).await),
            "{message:#?}"
        );
        assert_eq!(message.event["id"], change_vector(&src, &id).await);
    }
    sqs.receive(&standard, 3).await;
    // Everything sent again (as after a crash before progress was stored): the FIFO queue
    // drops the copies within its 5-minute window; the standard queue delivers them again.
    reset_etl(&server, "src", "orders-out", "script1").await;
    let again = sqs.receive(&standard, 3).await;
    assert_eq!(again.len(), 3);
    sqs.assert_no_more(&fifo).await;
    drop(server);
    sqs.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_message_over_the_queue_limit_is_an_item_error_and_later_documents_arrive() {
    let Some(mut sqs) = Sqs::connect("sqs_oversized").await else {
        return;
    };
    let queue = sqs.queue_name("orders", false);
    // A queue that takes 1 KiB messages: the task reads the limit of each queue.
    let (status, answer) = sqs
        .call(
            "CreateQueue",
            json!({"QueueName": queue, "Attributes": {"MaximumMessageSize": "1024"}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (server, src) = source().await;
    put_connection_string(&server, sqs_connection(MOTO_URL, "s3cret")).await;
    src.put("orders/1", &order(10), None).await.unwrap();
    let big = json!({"Total": 20, "Big": true, "@metadata": {"@collection": "Orders"}});
    src.put("orders/2", &big, None).await.unwrap();
    src.put("orders/3", &order(30), None).await.unwrap();
    let script = format!(
        "loadTo('{queue}', this.Big ? {{Blob: 'x'.repeat(2000)}} : {{Total: this.Total}});"
    );
    put_task(&server, task(&script, json!([]), false)).await;
    let mut received = sqs.receive(&queue, 2).await;
    received.sort_by_key(|it| it.event["data"]["Total"].as_u64());
    assert_eq!(received[0].event["data"], json!({"Total": 10}));
    assert_eq!(received[1].event["data"], json!({"Total": 30}));
    eventually("orders/2 reported as skipped", || async {
        let skipped = statistics(&server).await["LastSkippedItems"].to_string();
        skipped.contains("orders/2") && skipped.contains("1024 bytes")
    })
    .await;
    src.put("orders/4", &order(40), None).await.unwrap();
    let later = sqs.receive(&queue, 1).await;
    assert_eq!(later[0].event["data"], json!({"Total": 40}));
    drop(server);
    sqs.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_missing_queue_with_declaration_skipped_is_a_configuration_error() {
    let Some(mut sqs) = Sqs::connect("sqs_missing_queue").await else {
        return;
    };
    let queue = sqs.queue_name("orders", false);
    let (server, src) = source().await;
    put_connection_string(&server, sqs_connection(MOTO_URL, "s3cret")).await;
    src.put("orders/1", &order(10), None).await.unwrap();
    let script = format!("loadTo('{queue}', {{Total: this.Total}});");
    let task_id = put_task(&server, task(&script, json!([]), true)).await;
    eventually("the task to report a configuration error", || async {
        task_info(&server, task_id).await["LoadErrorClass"] == "Configuration"
    })
    .await;
    let info = task_info(&server, task_id).await;
    let error = info["LoadError"].to_string();
    assert!(
        error.contains(&queue) && error.contains("SkipAutomaticQueueDeclaration"),
        "{info:#}"
    );
    assert_eq!(statistics(&server).await["LastProcessedEtag"], 0);
    // Once the queue exists, the retry delivers.
    sqs.call("CreateQueue", json!({"QueueName": queue})).await;
    let received = sqs.receive(&queue, 1).await;
    assert_eq!(received[0].event["data"], json!({"Total": 10}));
    drop(server);
    sqs.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_sends_deletes_when_asked_and_deletes_processed_documents() {
    let Some(mut sqs) = Sqs::connect("sqs_deletes").await else {
        return;
    };
    let queue = sqs.queue_name("orders", false);
    let (server, src) = source().await;
    put_connection_string(&server, sqs_connection(MOTO_URL, "s3cret")).await;
    let script = format!("loadTo('{queue}', {{Total: this.Total}});");
    let queues = json!([{"Name": queue, "DeleteProcessedDocuments": true, "SendDeletes": true}]);
    put_task(&server, task(&script, queues, false)).await;
    src.put("orders/1", &order(10), None).await.unwrap();
    // The document is sent, then deleted at the source (the outbox), and its delete goes
    // out as a `ravendb.etl.delete` event without data.
    let mut received = sqs.receive(&queue, 2).await;
    received.sort_by_key(|it| it.event["type"] == "ravendb.etl.delete");
    assert_eq!(received[0].event["type"], "ravendb.etl.put");
    assert_eq!(received[1].event["type"], "ravendb.etl.delete");
    assert_eq!(received[1].event["partitionkey"], "orders/1");
    assert!(received[1].event.get("data").is_none());
    assert!(src.get("orders/1").await.unwrap().is_none());
    drop(server);
    sqs.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_unreachable_keeps_progress_then_everything_arrives() {
    let Some(mut moto) = OwnMoto::prepare("sqs_unreachable") else {
        return;
    };
    let (server, src) = source().await;
    // Nothing listens there yet.
    put_connection_string(&server, sqs_connection(&moto.url(), "s3cret")).await;
    let script = "loadTo('orders', {Total: this.Total});";
    let task_id = put_task(&server, task(script, json!([]), false)).await;
    for idx in 1..=3 {
        src.put(&format!("orders/{idx}"), &order(idx), None)
            .await
            .unwrap();
    }
    eventually("the task to report Reconnect", || async {
        task_info(&server, task_id).await["TaskConnectionStatus"] == "Reconnect"
    })
    .await;
    let info = task_info(&server, task_id).await;
    assert_eq!(info["LoadErrorClass"], "Reconnect", "{info:#}");
    assert_eq!(statistics(&server).await["LastProcessedEtag"], 0);
    moto.start().await;
    let sqs = Sqs::at(&moto.url());
    let received = sqs.receive("orders", 3).await;
    assert_eq!(received.len(), 3);
    eventually("the task to be Active", || async {
        task_info(&server, task_id).await["TaskConnectionStatus"] == "Active"
    })
    .await;
    drop(server);
}

/// Sends an IAM action to a moto server as a form post (moto routes by the credential
/// scope; these run before it checks signatures).
async fn iam(client: &reqwest::Client, url: &str, form: &str) -> String {
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDCORVIDTEST/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(format!("{form}&Version=2010-05-08"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{form}: {text}");
    text
}

fn xml_field(xml: &str, field: &str) -> String {
    let start = xml.find(&format!("<{field}>")).unwrap() + field.len() + 2;
    let end = start + xml[start..].find('<').unwrap();
    xml[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_wrong_credentials_are_a_configuration_error_and_right_ones_deliver() {
    let Some(mut moto) = OwnMoto::prepare("sqs_credentials") else {
        return;
    };
    moto.start().await;
    let url = moto.url();
    let client = corvid_client::http_client_builder().build().unwrap();
    // moto checks signatures (against its IAM users) after the next 3 actions, which make
    // a user with a key allowed everything.
    let reset = client
        .post(format!("{url}/moto-api/reset-auth"))
        .body("3")
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success());
    iam(&client, &url, "Action=CreateUser&UserName=corvid").await;
    let key = iam(&client, &url, "Action=CreateAccessKey&UserName=corvid").await;
    let access_key = xml_field(&key, "AccessKeyId");
    let secret_key = xml_field(&key, "SecretAccessKey");
    let policy =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let form = format!(
        "Action=PutUserPolicy&UserName=corvid&PolicyName=all&PolicyDocument={}",
        policy
            .bytes()
            .map(|it| format!("%{it:02X}"))
            .collect::<String>()
    );
    iam(&client, &url, &form).await;
    let connection = |secret: &str| {
        let mut connection = sqs_connection(&url, secret);
        connection["AmazonSqsConnectionSettings"]["Basic"]["AccessKey"] = json!(access_key);
        connection
    };
    let (server, src) = source().await;
    let (status, reply) = put_connection_string(&server, connection("not-the-secret")).await;
    assert_eq!(status, 200, "{reply}");
    src.put("orders/1", &order(10), None).await.unwrap();
    let task_id = put_task(
        &server,
        task("loadTo('orders', {Total: this.Total});", json!([]), false),
    )
    .await;
    eventually("the task to report a configuration error", || async {
        task_info(&server, task_id).await["LoadErrorClass"] == "Configuration"
    })
    .await;
    let info = task_info(&server, task_id).await;
    assert!(
        info["LoadError"]
            .to_string()
            .contains("SignatureDoesNotMatch"),
        "{info:#}"
    );
    assert_eq!(statistics(&server).await["LastProcessedEtag"], 0);
    // With the right secret (moto verifies the signature as AWS does), the document goes.
    put_connection_string(&server, connection(&secret_key)).await;
    eventually("the document to be delivered", || async {
        statistics(&server).await["LastProcessedEtag"].as_u64() >= Some(1)
    })
    .await;
    let info = task_info(&server, task_id).await;
    assert_eq!(info["TaskConnectionStatus"], "Active", "{info:#}");
    // The connection string as shown (`*****`) and sent back keeps the secret: still delivers.
    let strings_url = format!("{}/databases/src/admin/connection-strings", server.url);
    let (_, strings) = send("GET", &strings_url, None).await;
    let mut shown = strings["QueueConnectionStrings"]["broker"].clone();
    assert_eq!(
        shown["AmazonSqsConnectionSettings"]["Basic"]["SecretKey"],
        "*****"
    );
    shown["Type"] = json!("Queue");
    let (status, reply) = put_connection_string(&server, shown).await;
    assert_eq!(status, 200, "{reply}");
    src.put("orders/2", &order(20), None).await.unwrap();
    eventually("the second document to be delivered", || async {
        statistics(&server).await["LastProcessedEtag"].as_u64() >= Some(2)
    })
    .await;
    let info = task_info(&server, task_id).await;
    assert_eq!(info["TaskConnectionStatus"], "Active", "{info:#}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_connection_strings_are_checked_when_saved_and_the_secret_never_shown() {
    let server = start().await;
    let _src = database(&server, "src").await;
    let cases = [
        (
            json!({}),
            "`AmazonSqsConnectionSettings.Basic` must be given",
        ),
        (
            json!({"Basic": {"AccessKey": "AK", "SecretKey": "s", "RegionName": ""}}),
            "`AmazonSqsConnectionSettings.Basic.RegionName` must not be empty",
        ),
        (
            json!({"Basic": {"AccessKey": "", "SecretKey": "s", "RegionName": "us-east-1"}}),
            "`AmazonSqsConnectionSettings.Basic.AccessKey` must not be empty",
        ),
        (json!({"Passwordless": true}), "is not supported yet"),
        (
            json!({"Basic": {"AccessKey": "AK", "SecretKey": "s", "RegionName": "us-east-1"},
                   "ServiceUrl": "localhost:4566"}),
            "`AmazonSqsConnectionSettings.ServiceUrl`",
        ),
    ];
    for (settings, expected) in cases {
        let (status, body) = put_connection_string(
            &server,
            json!({"Type": "Queue", "Name": "broker", "BrokerType": "AmazonSqs",
                   "AmazonSqsConnectionSettings": settings}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains(expected), "{expected}: {body}");
    }
    let (status, body) = put_connection_string(&server, sqs_connection(MOTO_URL, "hunter22")).await;
    assert_eq!(status, 200, "{body}");
    // A queue name SQS would refuse is refused when the task is saved.
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(task("loadTo('orders.eu', this);", json!([]), false)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("is not an SQS queue name"),
        "{body}"
    );
    // Queue names are lower-cased: `Orders` and `orders` are one queue.
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(task(
            "loadToOrders(this);",
            json!([{"Name": "Orders"}, {"Name": "orders"}]),
            false,
        )),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("more than once"), "{body}");
    // The secret is shown as `*****`; sent back so, the stored one is kept.
    let strings_url = format!("{}/databases/src/admin/connection-strings", server.url);
    let (_, strings) = send("GET", &strings_url, None).await;
    assert!(!strings.to_string().contains("hunter22"), "{strings}");
    let shown = strings["QueueConnectionStrings"]["broker"].clone();
    assert_eq!(
        shown["AmazonSqsConnectionSettings"]["Basic"]["SecretKey"], "*****",
        "{strings:#}"
    );
    assert_eq!(shown["AmazonSqsConnectionSettings"]["ServiceUrl"], MOTO_URL);
    let mut edited = shown.clone();
    edited["Type"] = json!("Queue");
    let (status, body) = put_connection_string(&server, edited.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (_, record) = send(
        "GET",
        &format!("{}/admin/databases?name=src", server.url),
        None,
    )
    .await;
    assert!(!record.to_string().contains("hunter22"));
    // Sent on to another endpoint, `*****` is refused: the secret goes only where it was given for.
    edited["AmazonSqsConnectionSettings"]["ServiceUrl"] = json!("http://elsewhere.test:4566");
    let (status, body) = put_connection_string(&server, edited).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("give the secret key again"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_use_emulator_sends_to_the_servers_emulator_url() {
    let Some(mut sqs) = Sqs::connect("sqs_emulator").await else {
        return;
    };
    let queue = sqs.queue_name("orders", false);
    let emulator = json!({"Type": "Queue", "Name": "broker", "BrokerType": "AmazonSqs",
                          "AmazonSqsConnectionSettings": {"Passwordless": false, "UseEmulator": true}});
    let script = format!("loadTo('{queue}', {{Total: this.Total}});");
    // A server without RAVEN_AMAZON_SQS_EMULATOR_URL: the task says what is missing.
    let (server, src) = source().await;
    let (status, reply) = put_connection_string(&server, emulator.clone()).await;
    assert_eq!(status, 200, "{reply}");
    src.put("orders/1", &order(10), None).await.unwrap();
    let task_id = put_task(&server, task(&script, json!([]), false)).await;
    eventually("the task to report a configuration error", || async {
        task_info(&server, task_id).await["LoadErrorClass"] == "Configuration"
    })
    .await;
    let info = task_info(&server, task_id).await;
    assert!(
        info["LoadError"]
            .to_string()
            .contains("RAVEN_AMAZON_SQS_EMULATOR_URL"),
        "{info:#}"
    );
    drop(server);
    // With it (the binary reads the variable into `EtlOptions::sqs_emulator_url`).
    let server = start_with_options(EtlOptions {
        sqs_emulator_url: Some(MOTO_URL.to_owned()),
        ..etl_options()
    })
    .await;
    let src = database(&server, "src").await;
    put_connection_string(&server, emulator).await;
    src.put("orders/1", &order(10), None).await.unwrap();
    put_task(&server, task(&script, json!([]), false)).await;
    let received = sqs.receive(&queue, 1).await;
    assert_eq!(received[0].event["data"], json!({"Total": 10}));
    drop(server);
    sqs.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_many_documents_go_in_batches_within_the_entry_and_size_limits() {
    let Some(mut sqs) = Sqs::connect("sqs_batches").await else {
        return;
    };
    let small = sqs.queue_name("small", false);
    let large = sqs.queue_name("large", false);
    // At most 1 KiB per message and per batch: about three of these messages per batch.
    let (status, answer) = sqs
        .call(
            "CreateQueue",
            json!({"QueueName": small, "Attributes": {"MaximumMessageSize": "1024"}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (server, src) = source().await;
    put_connection_string(&server, sqs_connection(MOTO_URL, "s3cret")).await;
    for idx in 1..=25 {
        src.put(&format!("orders/{idx}"), &order(idx), None)
            .await
            .unwrap();
    }
    let script = format!(
        "loadTo('{small}', {{Total: this.Total, Note: 'n'.repeat(150)}});\nloadTo('{large}', {{Total: this.Total}});"
    );
    put_task(&server, task(&script, json!([]), false)).await;
    for queue in [&small, &large] {
        let received = sqs.receive(queue, 25).await;
        let mut totals: Vec<u64> = received
            .iter()
            .map(|it| it.event["data"]["Total"].as_u64().unwrap())
            .collect();
        totals.sort_unstable();
        assert_eq!(totals, (1..=25).collect::<Vec<u64>>(), "{queue}");
    }
    drop(server);
    sqs.clean_up().await;
}
