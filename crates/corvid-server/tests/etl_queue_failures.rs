//! Queue ETL when things go wrong, against the machine's real brokers — RabbitMQ at
//! 127.0.0.1:5672 (guest/guest) and NATS JetStream at 127.0.0.1:4222 — with a TCP proxy of
//! the test's own in front where a failure must be caused on purpose (the broker gone for
//! 30 s, its acknowledgements held back), and a `nats-server` of the test's own where the
//! broker needs a password.
//!
//! Without a broker a test says `SKIPPED …` and passes; with `CI` set it fails.
#![allow(clippy::unwrap_used)]

#[path = "common/broker_proxy.rs"]
mod broker_proxy;
mod common;
#[path = "../../corvid-etl/tests/common/mod.rs"]
mod services;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use corvid_client::Client;
use lapin::options::{BasicGetOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use serde_json::{Value, json};

use broker_proxy::{BrokerProxy, Protocol};
use common::live::{Server, database, eventually, eventually_within, send, start};
use common::queue::{order, task_info};

const RABBITMQ_ADDR: &str = "127.0.0.1:5672";
const RABBITMQ_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const NATS_ADDR: &str = "127.0.0.1:4222";
const NATS_URL: &str = "nats://127.0.0.1:4222";
const NATS_SERVER_BIN: &str = "/usr/sbin/nats-server";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broker {
    RabbitMq,
    Nats,
}

impl Broker {
    fn name(self) -> &'static str {
        match self {
            Broker::RabbitMq => "RabbitMq",
            Broker::Nats => "Nats",
        }
    }

    fn addr(self) -> &'static str {
        match self {
            Broker::RabbitMq => RABBITMQ_ADDR,
            Broker::Nats => NATS_ADDR,
        }
    }

    fn protocol(self) -> Protocol {
        match self {
            Broker::RabbitMq => Protocol::Amqp,
            Broker::Nats => Protocol::Nats,
        }
    }

    /// The connection string `broker` to this broker through a proxy on `port`.
    fn connection_through(self, port: u16) -> Value {
        match self {
            Broker::RabbitMq => {
                rabbit_connection(&format!("amqp://guest:guest@127.0.0.1:{port}/%2f"))
            }
            Broker::Nats => nats_connection(&format!("nats://127.0.0.1:{port}")),
        }
    }

    /// A consumer of a new uniquely named queue (RabbitMQ: exchange and queue; NATS:
    /// subject and stream), or `None` when the broker is not there.
    async fn consumer(self, test: &str) -> Option<Consumer> {
        if !services::service_available(self.name(), self.addr(), test) {
            return None;
        }
        let name = services::unique_name("q");
        Some(match self {
            Broker::RabbitMq => {
                let connection = lapin::Connection::connect(RABBITMQ_URI, Default::default())
                    .await
                    .unwrap();
                let channel = connection.create_channel().await.unwrap();
                // Declared as the task declares it, so that it holds messages at once.
                channel
                    .queue_declare(
                        name.as_str().into(),
                        lapin::options::QueueDeclareOptions {
                            durable: true,
                            ..Default::default()
                        },
                        Default::default(),
                    )
                    .await
                    .unwrap();
                Consumer::RabbitMq {
                    channel,
                    name,
                    received: Vec::new(),
                }
            }
            Broker::Nats => Consumer::Nats {
                context: jetstream::new(async_nats::connect(NATS_URL).await.unwrap()),
                name,
            },
        })
    }
}

/// What a test reads from the broker: the message bodies of its queue, in order.
enum Consumer {
    RabbitMq {
        channel: lapin::Channel,
        name: String,
        received: Vec<Value>,
    },
    Nats {
        context: jetstream::Context,
        name: String,
    },
}

impl Consumer {
    /// The exchange (RabbitMQ) or subject (NATS) the task loads to.
    fn name(&self) -> &str {
        match self {
            Consumer::RabbitMq { name, .. } | Consumer::Nats { name, .. } => name,
        }
    }

    /// Every message received so far, in order.
    async fn bodies(&mut self) -> Vec<Value> {
        match self {
            Consumer::RabbitMq {
                channel,
                name,
                received,
            } => {
                while let Some(message) = channel
                    .basic_get(name.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .unwrap()
                {
                    received.push(serde_json::from_slice(&message.delivery.data).unwrap());
                }
                received.clone()
            }
            Consumer::Nats { context, name } => {
                let Ok(mut stream) = context.get_stream(name.as_str()).await else {
                    return Vec::new();
                };
                let info = stream.info().await.unwrap();
                let (first, n_messages) = (info.state.first_sequence, info.state.messages);
                let mut bodies = Vec::new();
                for sequence in first..first + n_messages {
                    let message = stream.get_raw_message(sequence).await.unwrap();
                    bodies.push(serde_json::from_slice(&message.payload).unwrap());
                }
                bodies
            }
        }
    }

    /// Waits until `n` messages were received in all, and returns them.
    async fn receive(&mut self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let bodies = self.bodies().await;
            if bodies.len() >= n || Instant::now() > deadline {
                assert_eq!(bodies.len(), n, "messages in {}: {bodies:#?}", self.name());
                return bodies;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn clean_up(self) {
        match self {
            Consumer::RabbitMq { channel, name, .. } => {
                let _ = channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await;
                let _ = channel
                    .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
            Consumer::Nats { context, name } => {
                let _ = context.delete_stream(&name).await;
            }
        }
    }
}

fn rabbit_connection(uri: &str) -> Value {
    json!({"Type": "Queue", "Name": "broker", "BrokerType": "RabbitMq",
           "RabbitMqConnectionSettings": {"ConnectionString": uri}})
}

fn nats_connection(server: &str) -> Value {
    json!({"Type": "Queue", "Name": "broker", "BrokerType": "Nats",
           "NatsConnectionSettings": {"Servers": [server]}})
}

/// A server with database `src`, connection string `broker` and a task loading every
/// order's id and total to `queue` with `queues`' settings; the task's id.
async fn source_with_task(
    connection: Value,
    broker: Broker,
    script: &str,
    queues: Value,
) -> (Server, Client, u64) {
    source_with_task_config(
        connection,
        json!({
            "EtlType": "Queue", "Name": "orders-out", "ConnectionStringName": "broker",
            "BrokerType": broker.name(), "Queues": queues,
            "Transforms": [{"Name": "script1", "Collections": ["Orders"], "Script": script}],
        }),
    )
    .await
}

async fn source_with_task_config(connection: Value, task: Value) -> (Server, Client, u64) {
    let server = start().await;
    let src = database(&server, "src").await;
    let (status, reply) = send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        Some(connection),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(task),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let task_id = reply["TaskId"].as_u64().unwrap();
    (server, src, task_id)
}

fn load_script(queue: &str) -> String {
    format!("loadTo('{queue}', {{Id: id(this), Total: this.Total}});")
}

async fn last_processed_etag(server: &Server) -> u64 {
    let (_, body) = send(
        "GET",
        &format!("{}/databases/src/etl/stats", server.url),
        None,
    )
    .await;
    body["Results"][0]["Stats"][0]["Statistics"]["LastProcessedEtag"]
        .as_u64()
        .unwrap_or(0)
}

/// Waits until the task reports a load error of `class`, and returns its message.
async fn load_error_of_class(
    server: &Server,
    task_id: u64,
    class: &str,
    limit: Duration,
) -> String {
    let what = format!("the task to report a {class} error");
    eventually_within(&what, limit, || async {
        let info = task_info(server, task_id).await;
        info["TaskConnectionStatus"] == "Reconnect" && info["LoadErrorClass"] == class
    })
    .await;
    task_info(server, task_id).await["LoadError"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// `(Id, Total)` of each body.
fn versions(bodies: &[Value]) -> Vec<(String, u64)> {
    bodies
        .iter()
        .map(|it| {
            (
                it["Id"].as_str().unwrap().to_owned(),
                it["Total"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_down_for_30_s_keeps_progress_then_everything_arrives_in_order() {
    broker_down_for_30_s(Broker::RabbitMq, "rabbitmq_down_for_30_s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_30_s_keeps_progress_then_everything_arrives_in_order() {
    broker_down_for_30_s(Broker::Nats, "nats_down_for_30_s").await;
}

async fn broker_down_for_30_s(broker: Broker, test: &str) {
    let Some(mut consumer) = broker.consumer(test).await else {
        return;
    };
    let proxy = BrokerProxy::start(broker.addr(), broker.protocol()).await;
    let (server, src, task_id) = source_with_task(
        broker.connection_through(proxy.port),
        broker,
        &load_script(consumer.name()),
        json!([]),
    )
    .await;
    let mut expected = Vec::new();
    for idx in 1..=3 {
        src.put(&format!("orders/{idx}"), &order(idx), None)
            .await
            .unwrap();
        expected.push((format!("orders/{idx}"), idx));
    }
    consumer.receive(3).await;
    eventually("the progress to take in the first documents", || async {
        last_processed_etag(&server).await == 3
    })
    .await;

    proxy.set_down(true);
    let down_since = Instant::now();
    for idx in 4..=10 {
        src.put(&format!("orders/{idx}"), &order(idx), None)
            .await
            .unwrap();
        expected.push((format!("orders/{idx}"), idx));
    }
    // A later version of a document already sent.
    src.put("orders/2", &order(200), None).await.unwrap();
    expected.push(("orders/2".to_owned(), 200));
    let error = load_error_of_class(&server, task_id, "Reconnect", Duration::from_secs(45)).await;
    eprintln!("{test}: after {:?}: {error}", down_since.elapsed());
    assert_eq!(last_processed_etag(&server).await, 3);
    // The broker stays away for 30 s in all; the task keeps retrying, and nothing moves.
    if let Some(rest) = Duration::from_secs(30).checked_sub(down_since.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let info = task_info(&server, task_id).await;
    assert_eq!(info["TaskConnectionStatus"], "Reconnect", "{info:#}");
    assert_eq!(last_processed_etag(&server).await, 3);
    assert_eq!(consumer.bodies().await.len(), 3);

    proxy.set_down(false);
    let bodies = consumer.receive(expected.len()).await;
    assert_eq!(versions(&bodies), expected, "everything, once, in order");
    eventually("the task to be Active again", || async {
        task_info(&server, task_id).await["TaskConnectionStatus"] == "Active"
    })
    .await;
    assert_eq!(last_processed_etag(&server).await, 11);
    drop(server);
    consumer.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_keeps_a_processed_document_updated_before_the_broker_acknowledged() {
    updated_before_the_ack(Broker::RabbitMq, "rabbitmq_updated_before_the_ack").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_keeps_a_processed_document_updated_before_the_broker_acknowledged() {
    updated_before_the_ack(Broker::Nats, "nats_updated_before_the_ack").await;
}

/// DeleteProcessedDocuments deletes a published document only if it is still the version
/// that was published: one updated between the read and the broker's acknowledgement is
/// kept, and its new version goes out (then is deleted in turn).
async fn updated_before_the_ack(broker: Broker, test: &str) {
    let Some(mut consumer) = broker.consumer(test).await else {
        return;
    };
    let proxy = BrokerProxy::start(broker.addr(), broker.protocol()).await;
    let queues = json!([{"Name": consumer.name(), "DeleteProcessedDocuments": true}]);
    let (server, src, _) = source_with_task(
        broker.connection_through(proxy.port),
        broker,
        &load_script(consumer.name()),
        queues,
    )
    .await;
    // A first document all the way, so that the connection and declarations are done.
    src.put("orders/0", &order(0), None).await.unwrap();
    consumer.receive(1).await;
    eventually("orders/0 to be deleted once published", || async {
        src.get("orders/0").await.unwrap().is_none()
    })
    .await;

    proxy.hold_acks();
    src.put("orders/1", &order(1), None).await.unwrap();
    eventually("the acknowledgement of orders/1 to be held", || async {
        proxy.held_total() == 1
    })
    .await;
    // Read and published, not acknowledged yet: updated now.
    src.put("orders/1", &order(2), None).await.unwrap();
    proxy.release_acks(true);
    // The first batch is done once the next one (the new version) waits for its ack.
    eventually(
        "the acknowledgement of the new version to be held",
        || async { proxy.held_total() == 2 },
    )
    .await;
    let kept = src.get("orders/1").await.unwrap();
    assert_eq!(
        kept.as_ref().map(|it| it["Total"].clone()),
        Some(json!(2)),
        "the updated document is kept: {kept:?}"
    );
    proxy.release_acks(false);
    eventually("the new version to be deleted once published", || async {
        src.get("orders/1").await.unwrap().is_none()
    })
    .await;
    let bodies = consumer.receive(3).await;
    assert_eq!(
        versions(&bodies),
        [("orders/0", 0), ("orders/1", 1), ("orders/1", 2)]
            .map(|(id, total)| (id.to_owned(), total))
    );
    drop(server);
    consumer.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_missing_exchange_without_declaration_is_a_configuration_error() {
    let test = "rabbitmq_missing_exchange";
    if !services::service_available("RabbitMQ", RABBITMQ_ADDR, test) {
        return;
    }
    let exchange = services::unique_name("missing");
    let (server, src, task_id) = source_with_task_config(
        rabbit_connection(RABBITMQ_URI),
        skipping_declaration("RabbitMq", &exchange),
    )
    .await;
    src.put("orders/1", &order(1), None).await.unwrap();
    let error =
        load_error_of_class(&server, task_id, "Configuration", Duration::from_secs(20)).await;
    assert!(error.contains(&exchange), "{error}");
    assert_eq!(last_processed_etag(&server).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_missing_stream_without_declaration_is_a_configuration_error() {
    let test = "nats_missing_stream";
    if !services::service_available("NATS", NATS_ADDR, test) {
        return;
    }
    let subject = services::unique_name("missing");
    let (server, src, task_id) = source_with_task_config(
        nats_connection(NATS_URL),
        skipping_declaration("Nats", &subject),
    )
    .await;
    src.put("orders/1", &order(1), None).await.unwrap();
    let error =
        load_error_of_class(&server, task_id, "Configuration", Duration::from_secs(20)).await;
    assert!(
        error.contains("no JetStream stream takes this subject") && error.contains(&subject),
        "{error}"
    );
    assert_eq!(last_processed_etag(&server).await, 0);
}

fn skipping_declaration(broker: &str, queue: &str) -> Value {
    json!({
        "EtlType": "Queue", "Name": "orders-out", "ConnectionStringName": "broker",
        "BrokerType": broker, "SkipAutomaticQueueDeclaration": true,
        "Transforms": [{"Name": "script1", "Collections": ["Orders"], "Script": load_script(queue)}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_wrong_password_is_a_configuration_error() {
    let test = "rabbitmq_wrong_password";
    let Some(consumer) = Broker::RabbitMq.consumer(test).await else {
        return;
    };
    let (server, src, task_id) = source_with_task(
        rabbit_connection("amqp://guest:not-the-password@127.0.0.1:5672/%2f"),
        Broker::RabbitMq,
        &load_script(consumer.name()),
        json!([]),
    )
    .await;
    src.put("orders/1", &order(1), None).await.unwrap();
    let error =
        load_error_of_class(&server, task_id, "Configuration", Duration::from_secs(20)).await;
    assert!(!error.contains("not-the-password"), "{error}");
    assert_eq!(last_processed_etag(&server).await, 0);
    drop(server);
    consumer.clean_up().await;
}

/// A `nats-server` with JetStream and a user, on a free port; killed on drop.
struct NatsWithAuth {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl NatsWithAuth {
    fn start(test: &str) -> Option<NatsWithAuth> {
        if !std::path::Path::new(NATS_SERVER_BIN).exists() {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: {NATS_SERVER_BIN} is missing, and CI must not skip it");
            }
            eprintln!("SKIPPED {test}: {NATS_SERVER_BIN} is missing");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(NATS_SERVER_BIN)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["--user", "corvid", "--pass", "s3cret", "-js", "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = NatsWithAuth {
            child,
            port,
            _dir: dir,
        };
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }
}

impl Drop for NatsWithAuth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_wrong_credentials_are_a_configuration_error() {
    let Some(nats) = NatsWithAuth::start("nats_wrong_credentials") else {
        return;
    };
    let subject = services::unique_name("auth");
    let (server, src, task_id) = source_with_task(
        nats_connection(&format!("nats://corvid:wrong@127.0.0.1:{}", nats.port)),
        Broker::Nats,
        &load_script(&subject),
        json!([]),
    )
    .await;
    src.put("orders/1", &order(1), None).await.unwrap();
    let error =
        load_error_of_class(&server, task_id, "Configuration", Duration::from_secs(20)).await;
    assert!(
        !error.contains("wrong@"),
        "the password is not shown: {error}"
    );
    assert_eq!(last_processed_etag(&server).await, 0);
    // With the right password the same task delivers.
    let (status, reply) = send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        Some(nats_connection(&format!(
            "nats://corvid:s3cret@127.0.0.1:{}",
            nats.port
        ))),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let delivered = common::live::wait_for(Duration::from_secs(20), || async {
        last_processed_etag(&server).await == 1
    })
    .await;
    assert!(delivered, "{:#}", task_info(&server, task_id).await);
    drop(server);
    drop(nats);
}
