//! `corvid-bench queue --broker rabbitmq|nats`: Queue ETL end to end against the machine's
//! broker, and the broker's raw publish rate in the same run as the baseline.
//!
//! Each round, into a queue (RabbitMQ: a fanout exchange and its queue; NATS: a subject and
//! its stream) of its own:
//! - **raw**: a Rust producer publishes the messages the ETL would send (same body, same
//!   CloudEvents headers) with the ETL's batching — batches of 8,192 (the ETL's
//!   `max_batch_items`), RabbitMQ on one confirm-mode channel per batch, NATS with
//!   `Nats-Msg-Id` and at most 4,096 PubAcks pending — until a consumer counted every one;
//! - **etl**: `corvid serve` holds the documents (written before, not timed); a Queue ETL
//!   task is created and the clock runs until the consumer counted every message.
//!
//! The ratio is ETL docs/s ÷ raw messages/s, the median over `--rounds`. Then the latency:
//! one document updated at a time, timed until the consumer sees its message.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_nats::jetstream;
use futures_util::StreamExt as _;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use tokio::sync::watch;

use crate::{
    BatchTimings, batches, busy_cpu_seconds, busy_since, document, memory_mib, post_json,
    spawn_corvid_with, sql_etl,
};

/// The ETL's batch size (`EtlOptions::max_batch_items`), used by the raw producer too.
const BATCH: usize = 8192;
/// The ETL's cap on PubAcks pending at once (NATS).
const MAX_ACKS_IN_FLIGHT: usize = 4096;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    Rabbitmq,
    Nats,
}

#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    /// The broker to publish to.
    #[arg(long, value_enum)]
    broker: BrokerKind,
    /// Number of source documents (and messages).
    #[arg(long, default_value_t = 100_000)]
    docs: usize,
    /// Rounds of (raw publish, then ETL), each into a queue of its own; the ratio reported is
    /// the median of the rounds' ratios.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Updates for the latency measurement (one every 20 ms).
    #[arg(long, default_value_t = 200)]
    latency_updates: usize,
    /// RabbitMQ's AMQP URI.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    rabbitmq_uri: String,
    /// NATS server URL.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The `corvid` binary to start (default: next to this executable).
    #[arg(long)]
    corvid_bin: Option<std::path::PathBuf>,
    /// An argument for `corvid serve`, e.g. `--server-arg=--memory-budget-mib=128`;
    /// repeatable.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
}

/// The ETL's transformation: `{Name, Age}` of each user.
fn script(queue: &str) -> String {
    format!("loadTo('{queue}', {{Name: this.FirstName + ' ' + this.LastName, Age: this.Age}});")
}

/// The message body the script makes of document `idx`.
fn body(idx: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "Name": format!("First{idx} Last{}", idx % 7919),
        "Age": 18 + idx % 60,
    }))
    .unwrap_or_default()
}

/// The CloudEvents attributes the ETL sends with document `idx`'s message.
fn attributes(idx: usize) -> Vec<(&'static str, String)> {
    vec![
        ("specversion", "1.0".to_owned()),
        ("id", format!("A:{}-bench0000000000000000000", idx + 1)),
        ("type", "ravendb.etl.put".to_owned()),
        ("source", "/src/orders-out".to_owned()),
        ("partitionkey", format!("users/{idx}")),
    ]
}

/// A connection to the broker; a queue is a RabbitMQ fanout exchange with its queue of the
/// same name, or a NATS subject with its stream of the same name.
enum Broker {
    RabbitMq(lapin::Connection),
    Nats(jetstream::Context),
}

/// Counts what arrives in one queue.
struct Counter {
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Counter {
    fn now(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until `n` messages arrived in all.
    async fn wait_for(&mut self, n: usize, limit: Duration) -> anyhow::Result<()> {
        let arrived = tokio::time::timeout(limit, self.count.wait_for(|it| *it >= n))
            .await
            .map(|it| it.map(drop));
        match arrived {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => bail!("the consumer stopped after {} messages", self.now()),
            Err(_) => bail!(
                "{} of {n} messages arrived within {} s",
                self.now(),
                limit.as_secs()
            ),
        }
    }
}

impl Broker {
    async fn connect(args: &QueueArgs) -> anyhow::Result<Broker> {
        Ok(match args.broker {
            BrokerKind::Rabbitmq => Broker::RabbitMq(
                lapin::Connection::connect(&args.rabbitmq_uri, Default::default())
                    .await
                    .with_context(|| format!("RabbitMQ at {}", args.rabbitmq_uri))?,
            ),
            BrokerKind::Nats => Broker::Nats(jetstream::new(
                async_nats::connect(&args.nats_url)
                    .await
                    .with_context(|| format!("NATS at {}", args.nats_url))?,
            )),
        })
    }

    /// Declares queue `name` as the ETL would and starts counting what arrives in it.
    async fn queue(&self, name: &str) -> anyhow::Result<Counter> {
        let (sender, count) = watch::channel(0usize);
        let task = match self {
            Broker::RabbitMq(connection) => {
                let channel = connection.create_channel().await?;
                let durable = QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                };
                channel
                    .exchange_declare(
                        name.into(),
                        lapin::ExchangeKind::Fanout,
                        ExchangeDeclareOptions {
                            durable: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await?;
                channel
                    .queue_declare(name.into(), durable, FieldTable::default())
                    .await?;
                channel
                    .queue_bind(
                        name.into(),
                        name.into(),
                        "".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                let mut consumer = channel
                    .basic_consume(
                        name.into(),
                        "".into(),
                        BasicConsumeOptions {
                            no_ack: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await?;
                tokio::spawn(async move {
                    while let Some(Ok(_)) = consumer.next().await {
                        sender.send_modify(|it| *it += 1);
                    }
                })
            }
            Broker::Nats(context) => {
                let stream = context
                    .get_or_create_stream(jetstream::stream::Config {
                        name: name.to_owned(),
                        subjects: vec![name.to_owned()],
                        ..Default::default()
                    })
                    .await?;
                let consumer = stream
                    .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
                    .await?;
                let mut messages = consumer.messages().await?;
                tokio::spawn(async move {
                    while let Some(Ok(_)) = messages.next().await {
                        sender.send_modify(|it| *it += 1);
                    }
                })
            }
        };
        Ok(Counter { count, task })
    }

    /// Publishes the messages of documents `0..n_messages` to `name` as the ETL does, batch
    /// by batch.
    async fn publish_raw(&self, name: &str, n_messages: usize) -> anyhow::Result<()> {
        let indexes: Vec<usize> = (0..n_messages).collect();
        for batch in indexes.chunks(BATCH) {
            match self {
                Broker::RabbitMq(connection) => {
                    let channel = connection.create_channel().await?;
                    channel
                        .confirm_select(ConfirmSelectOptions::default())
                        .await?;
                    let mut confirms = Vec::with_capacity(batch.len());
                    for idx in batch {
                        let mut headers = FieldTable::default();
                        for (attribute, value) in attributes(*idx) {
                            headers.insert(
                                format!("cloudEvents:{attribute}").into(),
                                AMQPValue::LongString(LongString::from(value.into_bytes())),
                            );
                        }
                        let properties = lapin::BasicProperties::default()
                            .with_headers(headers)
                            .with_delivery_mode(2)
                            .with_content_type("application/json".into());
                        let confirm = channel
                            .basic_publish(
                                name.into(),
                                "".into(),
                                BasicPublishOptions {
                                    mandatory: true,
                                    ..Default::default()
                                },
                                &body(*idx),
                                properties,
                            )
                            .await?;
                        confirms.push(confirm);
                    }
                    for confirm in confirms {
                        if !confirm.await?.is_ack() {
                            bail!("RabbitMQ did not take a message");
                        }
                    }
                    let _ = channel.close(200, "bench: published".into()).await;
                }
                Broker::Nats(context) => {
                    let mut acks = std::collections::VecDeque::new();
                    for idx in batch {
                        if acks.len() >= MAX_ACKS_IN_FLIGHT
                            && let Some(ack) = acks.pop_front()
                        {
                            ack.await?;
                        }
                        let mut headers = async_nats::HeaderMap::new();
                        let attributes = attributes(*idx);
                        for (attribute, value) in &attributes {
                            headers.insert(format!("ce-{attribute}").as_str(), value.as_str());
                        }
                        headers.insert("Content-Type", "application/json");
                        let publish = jetstream::message::PublishMessage::build()
                            .headers(headers)
                            .message_id(attributes[1].1.as_str())
                            .payload(body(*idx).into());
                        acks.push_back(context.send_publish(name.to_owned(), publish).await?);
                    }
                    for ack in acks {
                        ack.await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn delete_queue(&self, name: &str) {
        match self {
            Broker::RabbitMq(connection) => {
                if let Ok(channel) = connection.create_channel().await {
                    let _ = channel.queue_delete(name.into(), Default::default()).await;
                    let _ = channel
                        .exchange_delete(name.into(), Default::default())
                        .await;
                }
            }
            Broker::Nats(context) => {
                let _ = context.delete_stream(name).await;
            }
        }
    }
}

#[allow(clippy::print_stdout)]
pub async fn queue(args: QueueArgs) -> anyhow::Result<()> {
    let broker = Broker::connect(&args).await?;
    let source = spawn_corvid_with(args.corvid_bin.clone(), &args.server_args)?;
    let http = corvid_client::http_client_builder().build()?;
    let options = corvid_client::ClientOptions::default();
    let (bodies, avg_doc_bytes) = batches(args.docs, 1000)?;
    let (broker_name, broker_type, connection) = match args.broker {
        BrokerKind::Rabbitmq => (
            format!("RabbitMQ at {}", args.rabbitmq_uri),
            "RabbitMq",
            serde_json::json!({"Type": "Queue", "Name": "broker", "BrokerType": "RabbitMq",
                               "RabbitMqConnectionSettings": {"ConnectionString": args.rabbitmq_uri}}),
        ),
        BrokerKind::Nats => (
            format!("NATS JetStream at {}", args.nats_url),
            "Nats",
            serde_json::json!({"Type": "Queue", "Name": "broker", "BrokerType": "Nats",
                               "NatsConnectionSettings": {"Servers": [args.nats_url]}}),
        ),
    };
    println!(
        "queue: {broker_name}; {} source docs of ~{avg_doc_bytes} bytes in Users, script {:?}, messages of ~{} bytes",
        args.docs,
        script("<queue>"),
        body(args.docs / 2).len()
    );
    let prefix = format!("corvid_bench_{}", std::process::id());
    let mut ratios = Vec::new();
    let mut last: Option<(String, Counter)> = None;
    for round in 1..=args.rounds.max(1) {
        // Raw: the same messages, the same batching, from this process.
        let raw_queue = format!("{prefix}_raw{round}");
        let mut raw_counter = broker.queue(&raw_queue).await?;
        let load = sql_etl::load_average();
        let busy_at_start = busy_cpu_seconds();
        let started = Instant::now();
        broker.publish_raw(&raw_queue, args.docs).await?;
        raw_counter
            .wait_for(args.docs, Duration::from_secs(600))
            .await?;
        let raw_seconds = started.elapsed().as_secs_f64();
        let raw_busy = busy_since(busy_at_start);
        drop(raw_counter);
        broker.delete_queue(&raw_queue).await;

        // ETL: the documents first, then the task, timed until the consumer has them all.
        let db = format!("src{round}");
        crate::fresh_database(&source.url, &db, Duration::from_secs(300)).await?;
        crate::bulk_insert(&http, &source.url, &db, &bodies).await?;
        post_json(
            &http,
            reqwest::Method::PUT,
            &format!("{}/databases/{db}/admin/connection-strings", source.url),
            &connection,
        )
        .await?;
        let etl_queue = format!("{prefix}_etl{round}");
        let mut etl_counter = broker.queue(&etl_queue).await?;
        let busy_at_start = busy_cpu_seconds();
        let started = Instant::now();
        post_json(
            &http,
            reqwest::Method::PUT,
            &format!("{}/databases/{db}/admin/etl", source.url),
            &serde_json::json!({"EtlType": "Queue", "Name": "users-out", "ConnectionStringName": "broker",
                "BrokerType": broker_type,
                "Transforms": [{"Name": "s", "Collections": ["Users"], "Script": script(&etl_queue)}]}),
        )
        .await?;
        etl_counter
            .wait_for(args.docs, Duration::from_secs(600))
            .await?;
        let etl_seconds = started.elapsed().as_secs_f64();
        let etl_busy = busy_since(busy_at_start);
        let raw_rate = args.docs as f64 / raw_seconds;
        let etl_rate = args.docs as f64 / etl_seconds;
        let ratio = etl_rate / raw_rate;
        ratios.push(ratio);
        // The consumer may count the last message a moment before the batch is recorded.
        let performance_url = format!(
            "{}/databases/{db}/etl/performance?name=users-out",
            source.url
        );
        let mut timings = BatchTimings::fetch(&http, &performance_url).await?.0;
        for _ in 0..20 {
            if timings.most_items > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            timings = BatchTimings::fetch(&http, &performance_url).await?.0;
        }
        let busy = |it: Option<f64>| it.map_or_else(|| "?".to_owned(), |it| format!("{it:.2}"));
        println!(
            "round {round}: etl {etl_rate:>7.0} docs/s end to end ({etl_seconds:.2} s); raw \
             {raw_rate:>7.0} msgs/s ({raw_seconds:.2} s); ratio etl/raw {ratio:.2}; {} batches \
             (largest {}): extract+transform {:.0} ms, load {:.0} ms; machine busy CPU-s: etl \
             {}, raw {}; load average {load}",
            timings.n_batches,
            timings.most_items,
            timings.transform_ms,
            timings.load_ms,
            busy(etl_busy),
            busy(raw_busy),
        );
        // The last round's task stays for the latency measurement.
        if let Some((previous, counter)) = last.replace((db.clone(), etl_counter)) {
            drop(counter);
            let _ = corvid_client::delete_database(&source.url, &previous, &options).await;
            let previous_round = round - 1;
            broker
                .delete_queue(&format!("{prefix}_etl{previous_round}"))
                .await;
        }
    }
    let rounds: Vec<String> = ratios.iter().map(|it| format!("{it:.2}")).collect();
    println!(
        "ratio etl/raw, median of {} rounds: {:.2} (rounds: {})",
        ratios.len(),
        sql_etl::median(&mut ratios),
        rounds.join(", ")
    );
    if let Some((rss, hwm)) = memory_mib(source.child.id()) {
        println!("source memory: {rss:.0} MiB resident, {hwm:.0} MiB peak");
    }

    // Latency: one update at a time, each awaited at the consumer.
    let (db, mut counter) = last.context("no round ran")?;
    let client = corvid_client::Client::new(std::slice::from_ref(&source.url), &db, options)?;
    let mut latencies = Vec::with_capacity(args.latency_updates);
    for update in 0..args.latency_updates {
        let idx = (update * 7919) % args.docs;
        let mut doc = document(idx);
        doc["Age"] = serde_json::json!(1000 + update);
        let expected = counter.now() + 1;
        let sent = Instant::now();
        client.put(&format!("users/{idx}"), &doc, None).await?;
        counter
            .wait_for(expected, Duration::from_secs(10))
            .await
            .with_context(|| format!("update {update}"))?;
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(counter);
    broker
        .delete_queue(&format!("{prefix}_etl{}", args.rounds.max(1)))
        .await;
    if latencies.is_empty() {
        return Ok(());
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "latency update→consumer over {} updates: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pick(0.50).as_secs_f64() * 1000.0,
        pick(0.99).as_secs_f64() * 1000.0,
        pick(1.0).as_secs_f64() * 1000.0,
    );
    Ok(())
}
