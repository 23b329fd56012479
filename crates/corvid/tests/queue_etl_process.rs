//! Queue ETL across a real `corvid` process and the machine's brokers: the source killed with
//! SIGKILL at three points of a 20,000-document ETL (with updates of the same documents in
//! between) and restarted on the same data directory each time. At the end a consumer has
//! the last version of every document; per document (the partition key) the versions arrive
//! in order; RabbitMQ may repeat what was not acknowledged before a kill (at least once),
//! NATS JetStream repeats nothing (its de-duplication by `Nats-Msg-Id`, the event id).
//!
//! Without the broker a test says `SKIPPED …` and passes; with `CI` set it fails.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
#[path = "../../corvid-etl/tests/common/mod.rs"]
mod services;

use async_nats::jetstream;
use common::{options, send, start};
use corvid_client::{Client, Command as BatchCommand, create_database};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

const RABBITMQ_ADDR: &str = "127.0.0.1:5672";
const RABBITMQ_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const NATS_ADDR: &str = "127.0.0.1:4222";
const NATS_URL: &str = "nats://127.0.0.1:4222";
const N_DOCS: usize = 20_000;

/// What the consumer received, in order: (document id, version).
type Received = Arc<Mutex<Vec<(String, u64)>>>;

fn parse(payload: &[u8]) -> (String, u64) {
    let body: Value = serde_json::from_slice(payload).unwrap();
    (
        body["Id"].as_str().unwrap().to_owned(),
        body["Version"].as_u64().unwrap(),
    )
}

/// Writes `version` of `orders/{idx}` for every idx of `range`; returns once stored.
async fn write_orders(client: &Client, range: std::ops::Range<usize>, version: u64) {
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(1000) {
        let commands: Vec<BatchCommand> = chunk
            .iter()
            .map(|idx| BatchCommand::Put {
                id: format!("orders/{idx}"),
                document: json!({"Version": version, "Customer": format!("customers/{}", idx % 97),
                                 "@metadata": {"@collection": "Orders"}}),
                change_vector: None,
            })
            .collect();
        client.bulk_docs(&commands).await.unwrap();
    }
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broker {
    RabbitMq,
    Nats,
}

/// Starts consuming the queue (RabbitMQ) or stream (NATS) `name` into what it returns; the
/// consumer runs until the test ends.
async fn consume(broker: Broker, name: &str) -> Received {
    let received: Received = Arc::default();
    let sink = received.clone();
    match broker {
        Broker::RabbitMq => {
            let connection = lapin::Connection::connect(RABBITMQ_URI, Default::default())
                .await
                .unwrap();
            let channel = connection.create_channel().await.unwrap();
            // Declared as the task declares it, so that it holds messages at once.
            channel
                .queue_declare(
                    name.into(),
                    lapin::options::QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await
                .unwrap();
            let mut consumer = channel
                .basic_consume(
                    name.into(),
                    "".into(),
                    lapin::options::BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await
                .unwrap();
            tokio::spawn(async move {
                let _connection = connection;
                while let Some(Ok(delivery)) = consumer.next().await {
                    sink.lock().unwrap().push(parse(&delivery.data));
                }
            });
        }
        Broker::Nats => {
            let context = jetstream::new(async_nats::connect(NATS_URL).await.unwrap());
            // The stream the task would create, created first so that it can be consumed.
            let stream = context
                .get_or_create_stream(jetstream::stream::Config {
                    name: name.to_owned(),
                    subjects: vec![name.to_owned()],
                    ..Default::default()
                })
                .await
                .unwrap();
            let consumer = stream
                .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
                .await
                .unwrap();
            let mut messages = consumer.messages().await.unwrap();
            tokio::spawn(async move {
                while let Some(Ok(message)) = messages.next().await {
                    sink.lock().unwrap().push(parse(&message.payload));
                }
            });
        }
    }
    received
}

async fn clean_up(broker: Broker, name: &str) {
    match broker {
        Broker::RabbitMq => {
            let connection = lapin::Connection::connect(RABBITMQ_URI, Default::default())
                .await
                .unwrap();
            let channel = connection.create_channel().await.unwrap();
            let _ = channel.queue_delete(name.into(), Default::default()).await;
            let _ = channel
                .exchange_delete(name.into(), Default::default())
                .await;
        }
        Broker::Nats => {
            let context = jetstream::new(async_nats::connect(NATS_URL).await.unwrap());
            let _ = context.delete_stream(name).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_rabbitmq_etl_delivers_every_document_at_least_once_in_order() {
    let test = "sigkill_mid_rabbitmq_etl";
    if !services::service_available("RabbitMQ", RABBITMQ_ADDR, test) {
        return;
    }
    sigkill_mid_queue_etl(Broker::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_nats_etl_delivers_every_document_exactly_once_in_order() {
    let test = "sigkill_mid_nats_etl";
    if !services::service_available("NATS", NATS_ADDR, test) {
        return;
    }
    sigkill_mid_queue_etl(Broker::Nats).await;
}

async fn sigkill_mid_queue_etl(broker: Broker) {
    let started = Instant::now();
    let name = services::unique_name("kill");
    let received = consume(broker, &name).await;
    let n_received = || received.lock().unwrap().len();

    let data_dir = tempfile::tempdir().unwrap();
    let mut source = start(data_dir.path());
    create_database(&source.url, "src", &options())
        .await
        .unwrap();
    let connection = match broker {
        Broker::RabbitMq => json!({"Type": "Queue", "Name": "broker", "BrokerType": "RabbitMq",
                                   "RabbitMqConnectionSettings": {"ConnectionString": RABBITMQ_URI}}),
        Broker::Nats => json!({"Type": "Queue", "Name": "broker", "BrokerType": "Nats",
                               "NatsConnectionSettings": {"Servers": [NATS_URL]}}),
    };
    send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", source.url),
        connection,
    )
    .await;
    let broker_type = match broker {
        Broker::RabbitMq => "RabbitMq",
        Broker::Nats => "Nats",
    };
    let task = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", source.url),
        json!({"EtlType": "Queue", "Name": "orders-out", "ConnectionStringName": "broker",
               "BrokerType": broker_type, "Disabled": true,
               "Transforms": [{"Name": "s", "Collections": ["Orders"], "Script":
                   format!("loadTo('{name}', {{Id: id(this), Version: this.Version}});")}]}),
    )
    .await;
    let task_id = task["TaskId"].as_u64().unwrap();
    let set_disabled = async |url: &str, disabled: bool| {
        send(
            "POST",
            &format!(
                "{url}/databases/src/admin/tasks/state?key={task_id}&type=QueueEtl&disable={disabled}"
            ),
            Value::Null,
        )
        .await;
    };

    // Each round writes new documents and new versions of earlier ones while the task is
    // disabled, enables it, and kills the process once the consumer has seen `threshold`
    // messages: in the middle of the backlog, so that a batch is cut short.
    let mut last_version: HashMap<String, u64> = HashMap::new();
    let mut n_expected = 0;
    let rounds: [(std::ops::Range<usize>, std::ops::Range<usize>, usize); 3] = [
        (0..8_000, 0..0, 2_000),
        (8_000..14_000, 0..1_000, 9_000),
        (14_000..N_DOCS, 500..1_500, 17_000),
    ];
    for (round, (new, updated, threshold)) in rounds.into_iter().enumerate() {
        set_disabled(&source.url, true).await;
        let client = Client::new(std::slice::from_ref(&source.url), "src", options()).unwrap();
        n_expected += new.len() + updated.len();
        write_orders(&client, new.clone(), 1).await;
        for idx in new {
            last_version.insert(format!("orders/{idx}"), 1);
        }
        let version = 2 + round as u64;
        write_orders(&client, updated.clone(), version).await;
        for idx in updated {
            last_version.insert(format!("orders/{idx}"), version);
        }
        set_disabled(&source.url, false).await;
        wait_for(
            "progress before the kill",
            Duration::from_secs(60),
            async || n_received() >= threshold,
        )
        .await;
        source.child.kill().unwrap(); // SIGKILL
        source.child.wait().unwrap();
        let n_distinct = received
            .lock()
            .unwrap()
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        eprintln!("{broker:?}: killed with {n_distinct} of {n_expected} versions received");
        assert!(n_distinct < n_expected, "killed after the ETL caught up");
        drop(source);
        source = start(data_dir.path());
    }
    wait_for(
        "the ETL to catch up",
        Duration::from_secs(120),
        async || {
            let body = send(
                "GET",
                &format!("{}/databases/src/etl/progress", source.url),
                Value::Null,
            )
            .await;
            body["Results"][0]["ProcessesProgress"][0]["Completed"] == true
        },
    )
    .await;
    // What the last batch published reaches the consumer a moment later.
    let mut settled = n_received();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = n_received();
        if now == settled {
            break;
        }
        settled = now;
    }

    let received = received.lock().unwrap().clone();
    let mut by_id: HashMap<&str, Vec<u64>> = HashMap::new();
    for (id, version) in &received {
        by_id.entry(id.as_str()).or_default().push(*version);
    }
    for (id, last) in &last_version {
        let versions = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{id} never arrived"));
        assert_eq!(versions.last(), Some(last), "{id}: {versions:?}");
        match broker {
            // Repeats of what was not acknowledged before a kill, but never an older version
            // after a newer one.
            Broker::RabbitMq => assert!(
                versions.windows(2).all(|it| it[0] <= it[1]),
                "{id} out of order: {versions:?}"
            ),
            Broker::Nats => assert!(
                versions.windows(2).all(|it| it[0] < it[1]),
                "{id} repeated or out of order: {versions:?}"
            ),
        }
    }
    assert_eq!(by_id.len(), last_version.len(), "no unknown documents");
    let n_repeated = received.len()
        - by_id
            .values()
            .map(|it| {
                let mut distinct = it.clone();
                distinct.dedup();
                distinct.len()
            })
            .sum::<usize>();
    eprintln!(
        "{broker:?}: {} messages for {} documents, {n_repeated} repeated, in {:?}",
        received.len(),
        last_version.len(),
        started.elapsed()
    );
    drop(source);
    clean_up(broker, &name).await;
}
