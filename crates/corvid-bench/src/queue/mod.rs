//! `corvid-bench queue --broker rabbitmq|nats|sqs|azure`: Queue ETL end to end against the
//! machine's broker, and the broker's raw publish rate in the same run as the baseline.
//!
//! Each round, into a queue (RabbitMQ: a fanout exchange and its queue; NATS: a subject and
//! its stream; SQS, Azure: a queue) of its own:
//! - **raw**: a Rust producer publishes the messages the ETL would send (same body, same
//!   CloudEvents attributes: headers for RabbitMQ and NATS, the structured JSON for SQS and
//!   Azure) with the ETL's batching — batches of 8,192 (the ETL's `max_batch_items`),
//!   RabbitMQ on one confirm-mode channel per batch, NATS with `Nats-Msg-Id` and at most
//!   4,096 PubAcks pending (`stream.rs`), SQS by `SendMessageBatch` of 10 one after the
//!   other, Azure one `POST` per message, 32 at once (`http.rs`) — until a consumer counted
//!   every one;
//! - **etl**: `corvid serve` holds the documents (written before, not timed); a Queue ETL
//!   task is created and the clock runs until the consumer counted every message.
//!
//! The ratio is ETL docs/s ÷ raw messages/s, the median over `--rounds`. Then the latency:
//! one document updated at a time, timed until the consumer sees its message. SQS's and
//! Azure's consumer polls the queue's message count: every 200 ms while timing throughput
//! (on moto a poll costs about as much as a `SendMessageBatch`; polling more often slows
//! the publisher it times), every 5 ms for the latency.

mod http;
mod stream;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_nats::jetstream;
use tokio::sync::watch;

use crate::{
    BatchTimings, batches, busy_cpu_seconds, busy_since, document, memory_mib, post_json,
    spawn_corvid_with, sql_etl,
};

/// The ETL's batch size (`EtlOptions::max_batch_items`), used by the raw producer too.
const BATCH: usize = 8192;
/// The HTTP brokers' count is polled this often while throughput is timed (ms)...
const SLOW_POLL_MS: u64 = 200;
/// ...and this often for the latency.
const FAST_POLL_MS: u64 = 5;
/// The credentials and region the bench gives SQS (an emulator takes any).
const SQS_KEY: &str = "test";
const SQS_REGION: &str = "us-east-1";

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    Rabbitmq,
    Nats,
    /// Amazon SQS (moto, by default).
    Sqs,
    /// Azure Queue Storage (azurite, by default).
    Azure,
}

#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    /// The broker to publish to.
    #[arg(long, value_enum)]
    broker: BrokerKind,
    /// Number of source documents (and messages); default 100,000, and fewer for the
    /// emulators (Python, Node) that would take many minutes for 100,000: 1,000 for SQS
    /// (moto slows down as a queue fills: ~300 messages/s at first, under 20/s past a few
    /// thousand), 20,000 for Azure (azurite takes ~2,000/s).
    #[arg(long)]
    docs: Option<usize>,
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
    /// SQS endpoint (`ServiceUrl`; credentials `test`/`test`, region us-east-1).
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    sqs_url: String,
    /// Azure storage connection string.
    #[arg(long, default_value = "UseDevelopmentStorage=true")]
    azure_connection_string: String,
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

/// Document `idx`'s message in structured mode (SQS, Azure): the attributes, then
/// `datacontenttype` and `data`, as `QueueMessage::structured_json` writes them.
fn structured_json(idx: usize) -> String {
    let mut event = serde_json::Map::new();
    for (attribute, value) in attributes(idx) {
        event.insert(attribute.to_owned(), serde_json::Value::String(value));
    }
    let mut res = serde_json::Value::Object(event).to_string();
    res.pop();
    res.push_str(",\"datacontenttype\":\"application/json\",\"data\":");
    res.push_str(&String::from_utf8_lossy(&body(idx)));
    res.push('}');
    res
}

/// A connection to the broker; a queue is a RabbitMQ fanout exchange with its queue of the
/// same name, or a NATS subject with its stream of the same name.
enum Broker {
    RabbitMq(lapin::Connection),
    Nats(jetstream::Context),
    /// A queue is an SQS standard queue of the same name.
    Sqs(http::Sqs),
    /// A queue is an Azure storage queue of the same name.
    Azure(http::Azure),
}

/// Counts what arrives in one queue.
struct Counter {
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
    /// How often an HTTP broker's count is polled, in ms.
    poll_ms: Arc<AtomicU64>,
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Counter {
    /// Polls (an HTTP broker's count) every `ms` from now on.
    fn poll_every(&self, ms: u64) {
        self.poll_ms.store(ms, Ordering::Relaxed);
    }

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
            BrokerKind::Sqs => {
                Broker::Sqs(http::Sqs::new(&args.sqs_url, SQS_KEY, SQS_KEY, SQS_REGION)?)
            }
            BrokerKind::Azure => Broker::Azure(http::Azure::new(&args.azure_connection_string)?),
        })
    }

    /// Declares queue `name` as the ETL would and starts counting what arrives in it (the
    /// HTTP brokers: polling the queue's count every `SLOW_POLL_MS` until told otherwise).
    async fn queue(&self, name: &str) -> anyhow::Result<Counter> {
        let (sender, count) = watch::channel(0usize);
        let poll_ms = Arc::new(AtomicU64::new(SLOW_POLL_MS));
        let task = match self {
            Broker::RabbitMq(connection) => {
                stream::rabbitmq_queue(connection, name, sender).await?
            }
            Broker::Nats(context) => stream::nats_queue(context, name, sender).await?,
            Broker::Sqs(sqs) => sqs.queue(name, sender, poll_ms.clone()).await?,
            Broker::Azure(azure) => azure.queue(name, sender, poll_ms.clone()).await?,
        };
        Ok(Counter {
            count,
            task,
            poll_ms,
        })
    }

    /// Publishes the messages of documents `0..n_messages` to `name` as the ETL does.
    async fn publish_raw(&self, name: &str, n_messages: usize) -> anyhow::Result<()> {
        match self {
            Broker::RabbitMq(connection) => {
                stream::rabbitmq_publish(connection, name, n_messages).await
            }
            Broker::Nats(context) => stream::nats_publish(context, name, n_messages).await,
            // On a runtime worker, as the ETL's publisher is (the bench's own future runs on
            // the thread that blocks on it, woken from the workers for every answer).
            Broker::Sqs(sqs) => {
                let (sqs, name) = (sqs.clone(), name.to_owned());
                tokio::spawn(async move { sqs.publish(&name, n_messages).await }).await?
            }
            Broker::Azure(azure) => {
                let (azure, name) = (azure.clone(), name.to_owned());
                tokio::spawn(async move { azure.publish(&name, n_messages).await }).await?
            }
        }
    }

    async fn delete_queue(&self, name: &str) {
        match self {
            Broker::RabbitMq(connection) => stream::rabbitmq_delete(connection, name).await,
            Broker::Nats(context) => {
                let _ = context.delete_stream(name).await;
            }
            Broker::Sqs(sqs) => sqs.delete(name).await,
            Broker::Azure(azure) => azure.delete(name).await,
        }
    }
}

#[allow(clippy::print_stdout)]
pub async fn queue(args: QueueArgs) -> anyhow::Result<()> {
    let broker = Broker::connect(&args).await?;
    let source = spawn_corvid_with(args.corvid_bin.clone(), &args.server_args)?;
    let http = corvid_client::http_client_builder().build()?;
    let options = corvid_client::ClientOptions::default();
    let n_docs = args.docs.unwrap_or(match args.broker {
        BrokerKind::Rabbitmq | BrokerKind::Nats => 100_000,
        BrokerKind::Sqs => 1_000,
        BrokerKind::Azure => 20_000,
    });
    let (bodies, avg_doc_bytes) = batches(n_docs, 1000)?;
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
        BrokerKind::Sqs => (
            format!("Amazon SQS at {}", args.sqs_url),
            "AmazonSqs",
            serde_json::json!({"Type": "Queue", "Name": "broker", "BrokerType": "AmazonSqs",
                "AmazonSqsConnectionSettings": {
                    "Basic": {"AccessKey": SQS_KEY, "SecretKey": SQS_KEY, "RegionName": SQS_REGION},
                    "ServiceUrl": args.sqs_url}}),
        ),
        BrokerKind::Azure => (
            format!(
                "Azure Queue Storage at {}",
                match &broker {
                    Broker::Azure(azure) => azure.endpoint(),
                    _ => "?",
                }
            ),
            "AzureQueueStorage",
            serde_json::json!({"Type": "Queue", "Name": "broker", "BrokerType": "AzureQueueStorage",
                "AzureQueueStorageConnectionSettings": {"ConnectionString": args.azure_connection_string}}),
        ),
    };
    let message_bytes = match args.broker {
        BrokerKind::Rabbitmq | BrokerKind::Nats => body(n_docs / 2).len(),
        BrokerKind::Sqs => structured_json(n_docs / 2).len(),
        BrokerKind::Azure => structured_json(n_docs / 2).len().div_ceil(3) * 4,
    };
    println!(
        "queue: {broker_name}; {} source docs of ~{avg_doc_bytes} bytes in Users, script {:?}, messages of ~{message_bytes} bytes",
        n_docs,
        script("<queue>"),
    );
    // Azure's queue names are lower-case letters, digits and `-`.
    let prefix = match args.broker {
        BrokerKind::Rabbitmq | BrokerKind::Nats => format!("corvid_bench_{}", std::process::id()),
        BrokerKind::Sqs | BrokerKind::Azure => format!("corvid-bench-{}", std::process::id()),
    };
    let separator = if prefix.contains('_') { "_" } else { "-" };
    let mut ratios = Vec::new();
    let mut last: Option<(String, Counter)> = None;
    for round in 1..=args.rounds.max(1) {
        // Raw: the same messages, the same batching, from this process.
        let raw_queue = format!("{prefix}{separator}raw{round}");
        let mut raw_counter = broker.queue(&raw_queue).await?;
        let load = sql_etl::load_average();
        let busy_at_start = busy_cpu_seconds();
        let started = Instant::now();
        broker.publish_raw(&raw_queue, n_docs).await?;
        raw_counter
            .wait_for(n_docs, Duration::from_secs(600))
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
        let etl_queue = format!("{prefix}{separator}etl{round}");
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
            .wait_for(n_docs, Duration::from_secs(600))
            .await?;
        let etl_seconds = started.elapsed().as_secs_f64();
        let etl_busy = busy_since(busy_at_start);
        let raw_rate = n_docs as f64 / raw_seconds;
        let etl_rate = n_docs as f64 / etl_seconds;
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
                .delete_queue(&format!("{prefix}{separator}etl{previous_round}"))
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
    counter.poll_every(FAST_POLL_MS);
    let client = corvid_client::Client::new(std::slice::from_ref(&source.url), &db, options)?;
    let mut latencies = Vec::with_capacity(args.latency_updates);
    for update in 0..args.latency_updates {
        let idx = (update * 7919) % n_docs;
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
        .delete_queue(&format!("{prefix}{separator}etl{}", args.rounds.max(1)))
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
