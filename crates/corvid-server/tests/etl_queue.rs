//! Queue ETL end to end: an in-process Corvid source, tasks defined over HTTP, and the
//! machine's real brokers — RabbitMQ at 127.0.0.1:5672 (guest/guest) and NATS JetStream at
//! 127.0.0.1:4222. Each test uses its own uniquely named exchanges, queues and streams and
//! deletes them at the end.
//!
//! Without a broker a test says `SKIPPED …` and passes; with `CI` set it fails.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../corvid-etl/tests/common/mod.rs"]
mod services;

use std::collections::BTreeMap;

use async_nats::jetstream;
use corvid_client::Client;
use corvid_etl::EtlOptions;
use lapin::options::{BasicGetOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::types::AMQPValue;
use serde_json::{Value, json};

use common::live::{
    Server, database, etl_options, eventually, reset_etl, send, start, start_with_options,
};
use common::queue::{change_vector, order, put_connection_string, put_task, statistics, task_info};

const RABBITMQ_ADDR: &str = "127.0.0.1:5672";
const RABBITMQ_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const NATS_ADDR: &str = "127.0.0.1:4222";
const NATS_URL: &str = "nats://127.0.0.1:4222";
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

fn rabbit_connection(uri: &str) -> Value {
    json!({"Type": "Queue", "Name": "broker", "BrokerType": "RabbitMq",
           "RabbitMqConnectionSettings": {"ConnectionString": uri}})
}

fn nats_connection(servers: &[&str]) -> Value {
    json!({"Type": "Queue", "Name": "broker", "BrokerType": "Nats",
           "NatsConnectionSettings": {"Servers": servers}})
}

fn task(broker: &str, script: &str, queues: Value) -> Value {
    json!({
        "EtlType": "Queue", "Name": "orders-out", "ConnectionStringName": "broker",
        "BrokerType": broker, "Queues": queues,
        "Transforms": [{"Name": "script1", "Collections": ["Orders"], "Script": script}],
    })
}

/// A message as a test reads it: its CloudEvents headers (prefix removed) and body.
#[derive(Debug)]
struct Received {
    attributes: BTreeMap<String, String>,
    content_type: Option<String>,
    body: String,
}

/// The machine's RabbitMQ, and what one test declared there.
struct Rabbit {
    channel: lapin::Channel,
    exchanges: Vec<String>,
}

impl Rabbit {
    async fn connect(test: &str) -> Option<Rabbit> {
        if !services::service_available("RabbitMQ", RABBITMQ_ADDR, test) {
            return None;
        }
        let connection = lapin::Connection::connect(RABBITMQ_URI, Default::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        Some(Rabbit {
            channel,
            exchanges: Vec::new(),
        })
    }

    /// A unique exchange name, deleted (with its queue) by [`Rabbit::clean_up`]. Its queue
    /// is declared here as the task declares it, so that the test can read it at once.
    async fn exchange(&mut self) -> String {
        let name = services::unique_name("ex");
        self.channel
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
        self.exchanges.push(name.clone());
        name
    }

    /// Takes every message waiting in `queue`.
    async fn take(&self, queue: &str) -> Vec<Received> {
        let mut received = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let delivery = message.delivery;
            let mut attributes = BTreeMap::new();
            if let Some(headers) = delivery.properties.headers() {
                for (name, value) in headers.inner() {
                    let Some(name) = name.as_str().strip_prefix("cloudEvents:") else {
                        continue;
                    };
                    if let AMQPValue::LongString(text) = value {
                        attributes.insert(
                            name.to_owned(),
                            String::from_utf8_lossy(text.as_bytes()).into_owned(),
                        );
                    }
                }
            }
            received.push(Received {
                attributes,
                content_type: delivery
                    .properties
                    .content_type()
                    .as_ref()
                    .map(|it| it.as_str().to_owned()),
                body: String::from_utf8(delivery.data).unwrap(),
            });
        }
        received
    }

    /// Waits until `queue` held `n` messages in all, and returns them.
    async fn receive(&self, queue: &str, n: usize) -> Vec<Received> {
        let mut received = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while received.len() < n && std::time::Instant::now() < deadline {
            received.extend(self.take(queue).await);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(received.len(), n, "messages in {queue}: {received:#?}");
        received
    }

    async fn clean_up(self) {
        for name in &self.exchanges {
            let _ = self
                .channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await;
            let _ = self
                .channel
                .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
}

fn body(received: &Received) -> Value {
    serde_json::from_str(&received.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_receives_documents_as_cloudevents_and_a_bad_attribute_fails_only_its_document() {
    let Some(mut rabbit) = Rabbit::connect("rabbitmq_cloudevents").await else {
        return;
    };
    let exchange = rabbit.exchange().await;
    let (server, src) = source().await;
    src.put("orders/1", &order(10), None).await.unwrap();
    src.put(
        "orders/2",
        &json!({"Total": 20, "Bad": true, "@metadata": {"@collection": "Orders"}}),
        None,
    )
    .await
    .unwrap();
    src.put("orders/3", &order(30), None).await.unwrap();
    let (status, body_json) = put_connection_string(&server, rabbit_connection(RABBITMQ_URI)).await;
    assert_eq!(status, 200, "{body_json}");
    let script = format!(
        "var attributes = this.Total === 30 ? {{Type: 'order.big', Subject: 'big', PartitionKey: 'p'}} : {{}};\n\
         if (this.Bad) attributes = {{Kind: 'x'}};\n\
         loadTo('{exchange}', {{Id: id(this), Total: this.Total}}, attributes);"
    );
    let (status, reply) = put_task(&server, task("RabbitMq", &script, json!([]))).await;
    assert_eq!(status, 200, "{reply}");
    let mut received = rabbit.receive(&exchange, 2).await;
    received.sort_by_key(|it| body(it)["Total"].as_u64());
    let first = &received[0];
    assert_eq!(body(first), json!({"Id": "orders/1", "Total": 10}));
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert_eq!(first.attributes["specversion"], "1.0");
    assert_eq!(first.attributes["type"], "ravendb.etl.put");
    assert_eq!(
        first.attributes["source"],
        format!("{PUBLIC_URL}/src/orders-out")
    );
    assert_eq!(first.attributes["partitionkey"], "orders/1");
    assert_eq!(
        first.attributes["id"],
        change_vector(&src, "orders/1").await
    );
    // The script's attributes override the defaults.
    let third = &received[1];
    assert_eq!(third.attributes["type"], "order.big");
    assert_eq!(third.attributes["subject"], "big");
    assert_eq!(third.attributes["partitionkey"], "p");
    // The unknown attribute is a transformation error for its document only.
    let statistics = statistics(&server).await;
    let errors = statistics["LastTransformationErrors"].to_string();
    assert!(
        errors.contains("orders/2") && errors.contains("Kind"),
        "{statistics:#}"
    );
    // A later document still arrives.
    src.put("orders/4", &order(40), None).await.unwrap();
    let later = rabbit.receive(&exchange, 1).await;
    assert_eq!(body(&later[0])["Id"], "orders/4");
    drop(server);
    rabbit.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_sends_deletes_when_asked_and_deletes_processed_documents() {
    let Some(mut rabbit) = Rabbit::connect("rabbitmq_deletes").await else {
        return;
    };
    let exchange = rabbit.exchange().await;
    let (server, src) = source().await;
    put_connection_string(&server, rabbit_connection(RABBITMQ_URI)).await;
    let script = format!("loadTo('{exchange}', {{Total: this.Total}});");
    let queues = json!([{"Name": exchange, "DeleteProcessedDocuments": true, "SendDeletes": true}]);
    let (status, reply) = put_task(&server, task("RabbitMq", &script, queues)).await;
    assert_eq!(status, 200, "{reply}");
    src.put("orders/1", &order(10), None).await.unwrap();
    // The document is published, then deleted at the source (the outbox), and its delete
    // goes out as a `ravendb.etl.delete` event without data.
    let received = rabbit.receive(&exchange, 2).await;
    assert_eq!(received[0].attributes["type"], "ravendb.etl.put");
    assert_eq!(received[1].attributes["type"], "ravendb.etl.delete");
    assert_eq!(received[1].attributes["partitionkey"], "orders/1");
    assert_eq!(received[1].body, "");
    assert!(src.get("orders/1").await.unwrap().is_none());
    drop(server);
    rabbit.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_unreachable_keeps_progress_then_everything_arrives() {
    let Some(mut rabbit) = Rabbit::connect("rabbitmq_unreachable").await else {
        return;
    };
    let exchange = rabbit.exchange().await;
    let (server, src) = source().await;
    // Nothing listens on port 1.
    put_connection_string(
        &server,
        rabbit_connection("amqp://guest:guest@127.0.0.1:1/%2f"),
    )
    .await;
    let script = format!("loadTo('{exchange}', {{Total: this.Total}});");
    let (status, reply) = put_task(&server, task("RabbitMq", &script, json!([]))).await;
    assert_eq!(status, 200, "{reply}");
    let task_id = reply["TaskId"].as_u64().unwrap();
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
    let statistics = statistics(&server).await;
    assert_eq!(statistics["LastProcessedEtag"], 0, "{statistics:#}");
    put_connection_string(&server, rabbit_connection(RABBITMQ_URI)).await;
    let received = rabbit.receive(&exchange, 3).await;
    assert_eq!(received.len(), 3);
    eventually("the task to be Active", || async {
        task_info(&server, task_id).await["TaskConnectionStatus"] == "Active"
    })
    .await;
    drop(server);
    rabbit.clean_up().await;
}

/// The machine's NATS JetStream.
async fn jetstream(test: &str) -> Option<jetstream::Context> {
    if !services::service_available("NATS", NATS_ADDR, test) {
        return None;
    }
    let client = async_nats::connect(NATS_URL).await.unwrap();
    Some(jetstream::new(client))
}

/// Every message of a stream, in order.
async fn stream_messages(context: &jetstream::Context, stream: &str) -> Vec<Received> {
    let mut stream = context.get_stream(stream).await.unwrap();
    let n_messages = stream.info().await.unwrap().state.messages;
    let first = stream.info().await.unwrap().state.first_sequence;
    let mut received = Vec::new();
    for sequence in first..first + n_messages {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let mut attributes = BTreeMap::new();
        for (name, values) in message.headers.iter() {
            if let Some(name) = name.to_string().strip_prefix("ce-") {
                attributes.insert(name.to_owned(), values[0].to_string());
            }
        }
        received.push(Received {
            attributes,
            content_type: message.headers.get("Content-Type").map(|it| it.to_string()),
            body: String::from_utf8(message.payload.to_vec()).unwrap(),
        });
    }
    received
}

async fn stream_count(context: &jetstream::Context, stream: &str) -> u64 {
    match context.get_stream(stream).await {
        Ok(mut stream) => stream.info().await.map_or(0, |it| it.state.messages),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_skips_an_oversized_message_and_does_not_store_a_batch_twice() {
    let Some(context) = jetstream("nats_dedup").await else {
        return;
    };
    let subject = services::unique_name("orders");
    let (server, src) = source().await;
    let (status, reply) = put_connection_string(&server, nats_connection(&[NATS_URL])).await;
    assert_eq!(status, 200, "{reply}");
    src.put("orders/1", &order(10), None).await.unwrap();
    // Over the server's max_payload (1 MiB by default).
    let big = json!({"Total": 20, "Big": true, "@metadata": {"@collection": "Orders"}});
    src.put("orders/2", &big, None).await.unwrap();
    src.put("orders/3", &order(30), None).await.unwrap();
    let script = format!(
        "loadTo('{subject}', this.Big ? {{Blob: 'x'.repeat(2 * 1024 * 1024)}} : {{Total: this.Total}}, {{Type: 'order'}});"
    );
    let (status, reply) = put_task(&server, task("Nats", &script, json!([]))).await;
    assert_eq!(status, 200, "{reply}");
    let arrived = common::live::wait_for(std::time::Duration::from_secs(20), || async {
        stream_count(&context, &subject).await == 2
    })
    .await;
    assert!(
        arrived,
        "two messages in the stream, not {}: {:#}",
        stream_count(&context, &subject).await,
        statistics(&server).await
    );
    // The messages are in the stream a moment before the process records the batch.
    eventually("orders/2 reported as skipped", || async {
        statistics(&server).await["LastSkippedItems"]
            .to_string()
            .contains("orders/2")
    })
    .await;
    src.put("orders/4", &order(40), None).await.unwrap();
    eventually("the later document", || async {
        stream_count(&context, &subject).await == 3
    })
    .await;
    let messages = stream_messages(&context, &subject).await;
    assert_eq!(body(&messages[0]), json!({"Total": 10}));
    assert_eq!(messages[0].attributes["type"], "order");
    assert_eq!(messages[0].attributes["partitionkey"], "orders/1");
    assert_eq!(
        messages[0].attributes["source"],
        format!("{PUBLIC_URL}/src/orders-out")
    );
    assert_eq!(
        messages[0].content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(
        messages[0].attributes["id"],
        change_vector(&src, "orders/1").await
    );
    // Everything sent again (as after a crash before progress was stored): JetStream keeps
    // one copy of each message.
    reset_etl(&server, "src", "orders-out", "script1").await;
    eventually("the task to catch up again", || async {
        let statistics = statistics(&server).await;
        statistics["LastProcessedEtag"].as_u64().unwrap_or(0) >= 4
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(stream_count(&context, &subject).await, 3);
    drop(server);
    context.delete_stream(&subject).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_sends_deletes_to_queues_that_ask_for_them() {
    let Some(context) = jetstream("nats_deletes").await else {
        return;
    };
    let subject = services::unique_name("orders");
    let (server, src) = source().await;
    put_connection_string(&server, nats_connection(&[NATS_URL])).await;
    let script = format!("loadTo('{subject}', {{Total: this.Total}});");
    let queues = json!([{"Name": subject, "SendDeletes": true}]);
    let (status, reply) = put_task(&server, task("Nats", &script, queues)).await;
    assert_eq!(status, 200, "{reply}");
    src.put("orders/1", &order(10), None).await.unwrap();
    eventually("the document", || async {
        stream_count(&context, &subject).await == 1
    })
    .await;
    src.delete("orders/1", None).await.unwrap();
    eventually("the delete", || async {
        stream_count(&context, &subject).await == 2
    })
    .await;
    let messages = stream_messages(&context, &subject).await;
    assert_eq!(messages[1].attributes["type"], "ravendb.etl.delete");
    assert_eq!(messages[1].attributes["partitionkey"], "orders/1");
    assert_eq!(messages[1].body, "");
    drop(server);
    context.delete_stream(&subject).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_tasks_are_validated_when_saved() {
    let server = start().await;
    let _src = database(&server, "src").await;
    let (status, body) = put_connection_string(
        &server,
        json!({"Type": "Queue", "Name": "k", "BrokerType": "Kafka",
               "KafkaConnectionSettings": {"BootstrapServers": "localhost:9092"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string()
            .contains("Kafka broker is not supported yet"),
        "{body}"
    );
    let (status, body) = put_connection_string(
        &server,
        json!({"Type": "Queue", "Name": "z", "BrokerType": "ZeroMq"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("unknown `BrokerType` `ZeroMq`"),
        "{body}"
    );
    let (status, body) = put_connection_string(
        &server,
        json!({"Type": "Queue", "Name": "r", "BrokerType": "RabbitMq",
               "RabbitMqConnectionSettings": {"ConnectionString": ""}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        put_connection_string(&server, rabbit_connection("amqp://guest:hunter22@h:5672/")).await;
    assert_eq!(status, 200, "{body}");
    // The task's broker type must be its connection string's.
    let (status, body) = put_task(&server, task("Nats", "loadToOrders(this);", json!([]))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("`BrokerType` is Nats"), "{body}");
    let (status, body) = put_task(&server, task("RabbitMq", "", json!([]))).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        put_task(&server, task("RabbitMq", "loadToOrders(this);", json!([]))).await;
    assert_eq!(status, 200, "{body}");
    // Passwords never leave the server; the record lists the task and the connection string.
    let (_, strings) = send(
        "GET",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        None,
    )
    .await;
    assert!(!strings.to_string().contains("hunter22"), "{strings}");
    assert_eq!(
        strings["QueueConnectionStrings"]["broker"]["RabbitMqConnectionSettings"]["ConnectionString"],
        "amqp://guest:*****@h:5672/"
    );
    let (_, record) = send(
        "GET",
        &format!("{}/admin/databases?name=src", server.url),
        None,
    )
    .await;
    assert_eq!(record["QueueEtls"][0]["Name"], "orders-out", "{record:#}");
    assert!(record["QueueConnectionStrings"]["broker"].is_object());
    assert!(!record.to_string().contains("hunter22"));
    let (_, tasks) = send("GET", &format!("{}/databases/src/tasks", server.url), None).await;
    let task = &tasks["OngoingTasksList"][0];
    assert_eq!(task["TaskType"], "QueueEtl", "{tasks:#}");
    assert_eq!(task["BrokerType"], "RabbitMq", "{tasks:#}");
    // Saved back as GET showed it, the password is the stored one; pointed elsewhere, it must
    // be typed again.
    let (status, body) =
        put_connection_string(&server, rabbit_connection("amqp://guest:*****@h:5672/")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        put_connection_string(&server, rabbit_connection("amqp://guest:*****@other:5672/")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("type the password again"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_endpoint_shows_the_messages_with_their_attributes() {
    let server = start().await;
    let src = database(&server, "src").await;
    put_connection_string(&server, rabbit_connection(RABBITMQ_URI)).await;
    src.put("orders/1", &order(10), None).await.unwrap();
    let script = "output('total', this.Total);\n\
                  loadToOrders({Total: this.Total}, 'eu', {Type: 'order.created'});\n\
                  loadTo('', {Id: id(this)}, 'audit');\n\
                  if (this.Total > 5) loadToOrders({}, {Kind: 1});";
    let request = |script: &str| {
        json!({"DocumentId": "orders/1", "IsDelete": false,
               "Configuration": task("RabbitMq", script, json!([{"Name": "Orders", "DeleteProcessedDocuments": true}]))})
    };
    let url = format!("{}/databases/src/admin/etl/queue/test", server.url);
    let (status, body) = send("POST", &url, Some(request(script))).await;
    assert_eq!(status, 200, "{body}");
    // The unknown attribute fails the document: nothing of it would be sent.
    assert_eq!(body["Summary"], json!([]), "{body:#}");
    assert!(
        body["TransformationErrors"][0]["Error"]
            .as_str()
            .unwrap()
            .contains("unknown CloudEvents attribute `Kind`"),
        "{body:#}"
    );
    assert_eq!(body["DebugOutput"], json!(["total 10"]));
    let script = script.replace("{Kind: 1}", "{Subject: 's'}");
    let (status, body) = send("POST", &url, Some(request(&script))).await;
    assert_eq!(status, 200, "{body}");
    let orders = &body["Summary"][0];
    assert_eq!(orders["QueueName"], "Orders", "{body:#}");
    let first = &orders["Messages"][0];
    assert_eq!(first["RoutingKey"], "eu");
    assert_eq!(first["Body"], json!({"Total": 10}));
    assert_eq!(first["Attributes"]["type"], "order.created");
    assert_eq!(first["Attributes"]["partitionkey"], "orders/1");
    assert_eq!(first["Attributes"]["datacontenttype"], "application/json");
    assert_eq!(first["DeleteProcessedDocument"], true);
    assert!(
        first["Attributes"]["source"]
            .as_str()
            .unwrap()
            .ends_with("/src/orders-out"),
        "{body:#}"
    );
    assert_eq!(orders["Messages"][1]["Attributes"]["subject"], "s");
    assert_eq!(body["Summary"][1]["QueueName"], "");
    assert_eq!(body["Summary"][1]["Messages"][0]["RoutingKey"], "audit");
    // A delete sends nothing unless asked for.
    let mut delete = request(&script);
    delete["IsDelete"] = json!(true);
    let (_, body) = send("POST", &url, Some(delete)).await;
    assert_eq!(body["Summary"], json!([]), "{body:#}");

    // A connection string not saved yet (the Studio's new one) is taken inline.
    let mut unsaved = request(&script);
    unsaved["Configuration"]["ConnectionStringName"] = json!("not-saved");
    let (status, body) = send("POST", &url, Some(unsaved.clone())).await;
    assert_eq!(status, 400, "{body:#}");
    assert!(
        body["Message"].as_str().unwrap().contains("not-saved"),
        "{body:#}"
    );
    let mut connection = rabbit_connection(RABBITMQ_URI);
    connection["Name"] = json!("not-saved");
    connection.as_object_mut().unwrap().remove("Type");
    unsaved["Connection"] = connection;
    let (status, body) = send("POST", &url, Some(unsaved.clone())).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["Summary"][0]["QueueName"], "Orders", "{body:#}");
    unsaved["Connection"] = json!({"Name": "not-saved", "BrokerType": "Carrier pigeon"});
    let (status, body) = send("POST", &url, Some(unsaved)).await;
    assert_eq!(status, 400, "{body:#}");
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("unknown `BrokerType` `Carrier pigeon`"),
        "{body:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_takes_a_batch_of_more_messages_than_acks_may_be_pending() {
    let Some(context) = jetstream("nats_big_batch").await else {
        return;
    };
    let subject = services::unique_name("orders");
    let (server, src) = source().await;
    put_connection_string(&server, nats_connection(&[NATS_URL])).await;
    // Written before the task exists, so that they go out as one batch of 6,000 messages:
    // more than async-nats lets wait for their acknowledgement at once (5,000).
    let ids: Vec<u64> = (0..6_000).collect();
    for chunk in ids.chunks(1_000) {
        let commands: Vec<corvid_client::Command> = chunk
            .iter()
            .map(|idx| corvid_client::Command::Put {
                id: format!("orders/{idx}"),
                document: order(*idx),
                change_vector: None,
            })
            .collect();
        src.bulk_docs(&commands).await.unwrap();
    }
    let script = format!("loadTo('{subject}', {{Total: this.Total}});");
    let (status, reply) = put_task(&server, task("Nats", &script, json!([]))).await;
    assert_eq!(status, 200, "{reply}");
    let arrived = common::live::wait_for(std::time::Duration::from_secs(60), || async {
        stream_count(&context, &subject).await == 6_000
    })
    .await;
    assert!(
        arrived,
        "6,000 messages in the stream, not {}: {:#}",
        stream_count(&context, &subject).await,
        statistics(&server).await
    );
    eventually("the progress to reach the last document", || async {
        statistics(&server).await["LastProcessedEtag"].as_u64() == Some(6_000)
    })
    .await;
    let messages = stream_messages(&context, &subject).await;
    let totals: Vec<u64> = messages
        .iter()
        .map(|it| body(it)["Total"].as_u64().unwrap())
        .collect();
    assert_eq!(totals, ids, "in the order they were written");
    drop(server);
    context.delete_stream(&subject).await.unwrap();
}
