//! `corvid-bench`: Corvid's benchmarks. Each prints throughput and the ratio to a baseline
//! measured in the same run (never a figure from another day or machine).
//!
//! `corvid-bench insert` starts `corvid serve` (the binary next to this one) on a fresh data
//! directory, inserts N documents of about 300 bytes through `bulk_docs` in batches, prints
//! docs/s and the server's memory, and, given `--baseline-url` (e.g. a RavenDB 4.1 from
//! `shared/tools/ravendb-ref`), runs the same load against that server and prints the ratio.
//!
//! `corvid-bench insert --bulk-insert` streams the documents through RavenDB's bulk insert
//! protocol instead, to both servers, in rounds (see [`bulk_insert_protocol`]).
//!
//! `corvid-bench etl` measures Raven ETL between two spawned `corvid serve`s; `corvid-bench
//! sql-etl --engine postgres|mariadb` measures SQL ETL into the machine's PostgreSQL or
//! MariaDB against the engine's bulk path and RavenDB's row-by-row algorithm (see
//! [`sql_etl`]). `corvid-bench queue --broker rabbitmq|nats|sqs|azure` measures Queue ETL
//! against the broker's raw publish rate (see [`queue`]). `corvid-bench cluster-insert` and
//! `etl-failover` measure a cluster of three (see [`cluster`]).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bulk_insert_protocol;
mod cluster;
mod olap;
mod query;
mod queue;
mod rss;
mod script;
mod sql_etl;

use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use corvid_client::{Client, ClientOptions, create_database, delete_database};

#[derive(Parser, Debug)]
#[command(
    name = "corvid-bench",
    about = "Corvid benchmarks, each against a same-run baseline"
)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Bulk inserts through `POST /bulk_docs`, or `--bulk-insert` through `POST /bulk_insert`.
    Insert(InsertArgs),
    /// Raven ETL from one Corvid to another: throughput, ratio to raw ingest, latency.
    Etl(EtlArgs),
    /// SQL ETL into PostgreSQL or MariaDB: ratio to the engine's bulk path and to RavenDB's
    /// row-by-row algorithm.
    SqlEtl(sql_etl::SqlEtlArgs),
    /// The script runtime alone: microseconds per document for the scripts of `etl` and
    /// `sql-etl`.
    Script(script::ScriptArgs),
    /// Queue ETL to RabbitMQ, NATS JetStream, Amazon SQS or Azure Queue Storage: ratio to the broker's raw publish rate, and
    /// update-to-consumer latency.
    Queue(queue::QueueArgs),
    /// A collection query with a `where` over many documents: first run and median.
    Query(query::QueryArgs),
    /// OLAP ETL to a local folder: one run's rows per second against DuckDB writing the same
    /// rows to Parquet, memory, and file sizes.
    Olap(olap::OlapArgs),
    /// Inserts into a database with replication factor 3 on three nodes against a single
    /// node in the same run: docs/s, the ratio, write latency p50/p99.
    ClusterInsert(cluster::ClusterInsertArgs),
    /// Raven ETL from a replicated database: the node running the task killed N times; the
    /// time until its successor delivers.
    EtlFailover(cluster::EtlFailoverArgs),
}

#[derive(clap::Args, Debug)]
struct EtlArgs {
    /// Number of source documents.
    #[arg(long, default_value_t = 100_000)]
    docs: usize,
    /// Let only every other document through the script's filter.
    #[arg(long)]
    filter_half: bool,
    /// Updates for the latency measurement (one every 20 ms).
    #[arg(long, default_value_t = 200)]
    latency_updates: usize,
    /// Rounds of (raw ingest, then ETL), each into fresh databases by a new task; the ratio
    /// reported is the median of the rounds' ratios, so one noisy measurement does not decide.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The `corvid` binary to start (default: next to this executable).
    #[arg(long)]
    corvid_bin: Option<PathBuf>,
    /// An argument for both `corvid serve`s, e.g. `--server-arg=--memory-budget-mib=128`;
    /// repeatable.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct InsertArgs {
    /// Number of documents.
    #[arg(long, default_value_t = 100_000)]
    docs: usize,
    /// Documents per bulk_docs request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Benchmark an already running Corvid (or RavenDB) here instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// The `corvid` binary to start (default: next to this executable).
    #[arg(long)]
    corvid_bin: Option<PathBuf>,
    /// A second server to run the same load against, for the ratio (e.g. RavenDB 4.1).
    #[arg(long)]
    baseline_url: Option<String>,
    /// Insert through RavenDB's bulk insert protocol (`POST /bulk_insert`, one stream)
    /// instead of `bulk_docs` (see `bulk_insert_protocol.rs`).
    #[arg(long)]
    bulk_insert: bool,
    /// Rounds, each Corvid then the baseline; the medians are compared. With `--bulk-insert`
    /// each round starts a fresh Corvid; otherwise each round inserts into a fresh database.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// With `--bulk-insert`: the baseline server's process id, to report its memory.
    #[arg(long)]
    baseline_pid: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Bench::Insert(args) => runtime.block_on(insert(args)),
        Bench::Etl(args) => runtime.block_on(etl(args)),
        Bench::SqlEtl(args) => runtime.block_on(sql_etl::sql_etl(args)),
        Bench::Script(args) => script::script(args),
        Bench::Query(args) => runtime.block_on(query::query(args)),
        Bench::Queue(args) => runtime.block_on(queue::queue(args)),
        Bench::Olap(args) => runtime.block_on(olap::olap(args)),
        Bench::ClusterInsert(args) => runtime.block_on(cluster::cluster_insert(args)),
        Bench::EtlFailover(args) => runtime.block_on(cluster::etl_failover(args)),
    }
}

/// A `corvid serve` started for the benchmark; killed on drop.
struct SpawnedServer {
    child: Child,
    url: String,
    _data_dir: tempfile::TempDir,
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_corvid(binary: Option<PathBuf>) -> anyhow::Result<SpawnedServer> {
    spawn_corvid_with(binary, &[])
}

/// Starts `corvid serve` with `extra` arguments.
fn spawn_corvid_with(binary: Option<PathBuf>, extra: &[String]) -> anyhow::Result<SpawnedServer> {
    let binary = match binary {
        Some(it) => it,
        None => std::env::current_exe()?
            .parent()
            .context("executable has no directory")?
            .join("corvid"),
    };
    let data_dir = tempfile::tempdir()?;
    let mut child = Process::new(&binary)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("failed to start {}", binary.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    let Some(url) = line.trim().strip_prefix("Corvid listening on ") else {
        bail!("unexpected first line from corvid: {line:?}");
    };
    Ok(SpawnedServer {
        url: url.to_owned(),
        child,
        _data_dir: data_dir,
    })
}

/// Returns (VmRSS, VmHWM) of a process in MiB, from /proc.
/// The sums over the batches `/etl/performance` lists (the last 25 of the first process).
pub(crate) struct BatchTimings {
    pub transform_ms: f64,
    pub load_ms: f64,
    pub n_batches: usize,
    /// The largest batch, in extracted items.
    pub most_items: u64,
}

impl BatchTimings {
    /// Reads `/etl/performance` at `url`; returns the sums and the answer itself.
    pub(crate) async fn fetch(
        http: &reqwest::Client,
        url: &str,
    ) -> anyhow::Result<(BatchTimings, serde_json::Value)> {
        let performance: serde_json::Value = http.get(url).send().await?.json().await?;
        Ok((BatchTimings::of(&performance), performance))
    }

    fn of(performance: &serde_json::Value) -> BatchTimings {
        let mut timings = BatchTimings {
            transform_ms: 0.0,
            load_ms: 0.0,
            n_batches: 0,
            most_items: 0,
        };
        let batches = performance["Results"][0]["Stats"][0]["Performance"].as_array();
        for batch in batches.into_iter().flatten() {
            let operations = &batch["Details"]["Operations"];
            timings.transform_ms += operations[0]["DurationInMs"].as_f64().unwrap_or(0.0);
            timings.load_ms += operations[1]["DurationInMs"].as_f64().unwrap_or(0.0);
            timings.n_batches += 1;
            let items = batch["NumberOfExtractedItems"].as_u64().unwrap_or(0);
            timings.most_items = timings.most_items.max(items);
        }
        timings
    }
}

/// CPU-seconds the machine has spent busy since boot (all processes, all cores): `/proc/stat`.
pub(crate) fn busy_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map_while(|it| it.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …: idle and iowait are not busy.
    let busy: f64 = ticks
        .iter()
        .enumerate()
        .filter(|(idx, _)| *idx != 3 && *idx != 4)
        .map(|(_, it)| it)
        .sum();
    // USER_HZ is 100 on every Linux configuration this benchmark runs on.
    Some(busy / 100.0)
}

/// The busy CPU-seconds since `since`, a [`busy_cpu_seconds`] reading.
pub(crate) fn busy_since(since: Option<f64>) -> Option<f64> {
    Some(busy_cpu_seconds()? - since?)
}

fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|it| it.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The Raven ETL benchmark's transformation.
const PEOPLE_SCRIPT: &str =
    "loadToPeople({Name: this.FirstName + ' ' + this.LastName, Age: this.Age});";

/// A document of about 300 bytes of JSON.
fn document(idx: usize) -> serde_json::Value {
    serde_json::json!({
        "FirstName": format!("First{idx}"),
        "LastName": format!("Last{}", idx % 7919),
        "Email": format!("user{idx}@example.com"),
        "Age": 18 + idx % 60,
        "Active": !idx.is_multiple_of(3),
        "Company": format!("companies/{}-A", idx % 1000),
        "Address": {
            "Line1": format!("{} Harbour Street", idx % 500),
            "City": "Rotterdam",
            "PostalCode": format!("{:05}", idx % 99_999),
            "Country": "Netherlands",
        },
        "Tags": ["customer", "newsletter"],
        "@metadata": {"@collection": "Users"},
    })
}

/// Pre-serializes every batch, so the timed part is only the HTTP round trips.
fn batches(n_docs: usize, batch: usize) -> anyhow::Result<(Vec<Bytes>, usize)> {
    let mut bodies = Vec::new();
    let mut total_doc_bytes = 0;
    for start in (0..n_docs).step_by(batch) {
        let mut commands = Vec::with_capacity(batch);
        for idx in start..(start + batch).min(n_docs) {
            let doc = document(idx);
            total_doc_bytes += serde_json::to_vec(&doc)?.len();
            commands.push(serde_json::json!({
                "Id": format!("users/{idx}"),
                "ChangeVector": null,
                "Type": "PUT",
                "Document": doc,
            }));
        }
        bodies.push(Bytes::from(serde_json::to_vec(
            &serde_json::json!({"Commands": commands}),
        )?));
    }
    Ok((bodies, total_doc_bytes / n_docs.max(1)))
}

async fn run_insert(
    url: &str,
    bodies: &[Bytes],
    n_docs: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let database = format!("bench-insert-{}", std::process::id());
    let options = fresh_database(url, &database, Duration::from_secs(300)).await?;
    let client = Client::new(&[url.to_owned()], &database, options.clone())?;
    // The timed loop posts with plain reqwest and reads the answer without parsing it, so the
    // figure measures the server rather than this client's JSON parsing.
    let http = corvid_client::http_client_builder().build()?;
    let endpoint = format!("{url}/databases/{database}/bulk_docs");
    http.get(format!("{url}/databases/{database}/stats"))
        .send()
        .await?;
    let started = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    for body in bodies {
        if in_flight.len() >= concurrency
            && let Some(done) = in_flight.join_next().await
        {
            done??;
        }
        let request = http
            .post(&endpoint)
            .header("Content-Type", "application/json")
            .body(body.clone());
        in_flight.spawn(async move {
            let response = request.send().await?;
            let status = response.status();
            let answer = response.bytes().await?;
            if !status.is_success() {
                bail!(
                    "bulk_docs answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                );
            }
            anyhow::Ok(())
        });
    }

    while let Some(done) = in_flight.join_next().await {
        done??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stored = client.get("users/0").await?;
    if stored.is_none() {
        bail!("{url}: users/0 is missing after the insert");
    }
    delete_database(url, &database, &options).await?;
    Ok(n_docs as f64 / elapsed)
}

/// Creates database `name` at `url`, deleting an earlier one of that name first; returns the
/// client options for it, with `request_timeout`.
pub(crate) async fn fresh_database(
    url: &str,
    name: &str,
    request_timeout: Duration,
) -> anyhow::Result<ClientOptions> {
    let options = ClientOptions {
        request_timeout,
        ..ClientOptions::default()
    };
    let _ = delete_database(url, name, &options).await;
    create_database(url, name, &options).await?;
    Ok(options)
}

#[allow(clippy::print_stdout)]
async fn insert(args: InsertArgs) -> anyhow::Result<()> {
    if args.bulk_insert {
        return bulk_insert_protocol::bulk_insert_bench(args).await;
    }
    let (bodies, avg_doc_bytes) = batches(args.docs, args.batch.max(1))?;
    println!(
        "insert: {} docs of ~{avg_doc_bytes} bytes, batches of {}, concurrency {}",
        args.docs, args.batch, args.concurrency
    );
    let spawned = match &args.url {
        Some(_) => None,
        None => Some(spawn_corvid(args.corvid_bin.clone())?),
    };
    let url = match (&args.url, &spawned) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => server.url.clone(),
        (None, None) => bail!("no server to benchmark"),
    };
    // Rounds of Corvid then the baseline, each into a fresh database: on the shared VM one
    // measurement alone can be off by half, so the median of the rounds' ratios is reported.
    let mut corvid_rates = Vec::new();
    let mut baseline_rates = Vec::new();
    let mut ratios = Vec::new();
    for round in 1..=args.rounds.max(1) {
        let load = sql_etl::load_average();
        let corvid_rate = run_insert(&url, &bodies, args.docs, args.concurrency.max(1)).await?;
        println!("round {round}: corvid   {url}: {corvid_rate:>10.0} docs/s (load average {load})");
        corvid_rates.push(corvid_rate);
        if let Some(baseline) = &args.baseline_url {
            let load = sql_etl::load_average();
            let baseline_rate =
                run_insert(baseline, &bodies, args.docs, args.concurrency.max(1)).await?;
            println!(
                "round {round}: baseline {baseline}: {baseline_rate:>10.0} docs/s (load average {load}); ratio {:.2}x",
                corvid_rate / baseline_rate
            );
            baseline_rates.push(baseline_rate);
            ratios.push(corvid_rate / baseline_rate);
        }
    }
    if let Some(server) = &spawned
        && let Some((rss, hwm)) = memory_mib(server.child.id())
    {
        println!("corvid memory: {rss:.0} MiB resident now, {hwm:.0} MiB peak");
    }
    println!(
        "corvid median: {:.0} docs/s",
        sql_etl::median(&mut corvid_rates)
    );
    if !ratios.is_empty() {
        let rounds: Vec<String> = ratios.iter().map(|it| format!("{it:.2}x")).collect();
        println!(
            "baseline median: {:.0} docs/s",
            sql_etl::median(&mut baseline_rates)
        );
        println!(
            "ratio corvid/baseline, median of {} rounds: {:.2}x (rounds: {})",
            ratios.len(),
            sql_etl::median(&mut ratios),
            rounds.join(", ")
        );
    }
    Ok(())
}

async fn post_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let response = http
        .request(method, url)
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

async fn collection_count(
    http: &reqwest::Client,
    url: &str,
    db: &str,
    collection: &str,
) -> anyhow::Result<u64> {
    let stats: serde_json::Value = http
        .get(format!("{url}/databases/{db}/collections/stats"))
        .send()
        .await?
        .json()
        .await?;
    Ok(stats["Collections"][collection].as_u64().unwrap_or(0))
}

async fn bulk_insert(
    http: &reqwest::Client,
    url: &str,
    db: &str,
    bodies: &[Bytes],
) -> anyhow::Result<()> {
    for body in bodies {
        let response = http
            .post(format!("{url}/databases/{db}/bulk_docs"))
            .body(body.clone())
            .send()
            .await?;
        let status = response.status();
        let answer = response.bytes().await?;
        if !status.is_success() {
            bail!(
                "bulk_docs answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn etl(args: EtlArgs) -> anyhow::Result<()> {
    let source = spawn_corvid_with(args.corvid_bin.clone(), &args.server_args)?;
    let destination = spawn_corvid_with(args.corvid_bin.clone(), &args.server_args)?;
    let rss = rss::RssSampler::start(
        &[
            ("source", source.child.id()),
            ("destination", destination.child.id()),
        ],
        Duration::from_secs(1),
    );
    let http = corvid_client::http_client_builder().build()?;
    let options = ClientOptions::default();
    create_database(&source.url, "src", &options).await?;

    let (bodies, avg_doc_bytes) = batches(args.docs, 1000)?;
    bulk_insert(&http, &source.url, "src", &bodies).await?;
    let script = if args.filter_half {
        format!("if (this.Age % 2 == 0) {PEOPLE_SCRIPT}")
    } else {
        PEOPLE_SCRIPT.to_owned()
    };
    let expected = if args.filter_half {
        (0..args.docs)
            .filter(|idx| (18 + idx % 60) % 2 == 0)
            .count() as u64
    } else {
        args.docs as u64
    };
    println!(
        "etl: {} source docs of ~{avg_doc_bytes} bytes in Users, script {script:?}, {expected} expected at the destination",
        args.docs
    );

    // The same transformed documents, ingested raw into the destination server: the ceiling.
    let mut raw_bodies = Vec::new();
    for start in (0..args.docs).step_by(8192) {
        let mut commands = Vec::new();
        for idx in start..(start + 8192).min(args.docs) {
            let age = 18 + idx % 60;
            if args.filter_half && age % 2 != 0 {
                continue;
            }
            commands.push(serde_json::json!({"Id": format!("users/{idx}/people/"), "Type": "PUT", "ChangeVector": null,
                "Document": {"Name": format!("First{idx} Last{}", idx % 7919), "Age": age, "@metadata": {"@collection": "People"}}}));
        }
        raw_bodies.push(Bytes::from(serde_json::to_vec(
            &serde_json::json!({"Commands": commands}),
        )?));
    }
    let mut ratios = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds.max(1) {
        // The last round writes to `dst`, where the latency measurement below looks.
        let last = round + 1 == args.rounds.max(1);
        let (raw_db, dst_db) = if last {
            ("raw".to_owned(), "dst".to_owned())
        } else {
            (format!("raw{round}"), format!("dst{round}"))
        };
        create_database(&destination.url, &raw_db, &options).await?;
        create_database(&destination.url, &dst_db, &options).await?;
        let started = Instant::now();
        let busy_at_start = busy_cpu_seconds();
        bulk_insert(&http, &destination.url, &raw_db, &raw_bodies).await?;
        let raw_rate = expected as f64 / started.elapsed().as_secs_f64();
        let raw_busy = busy_since(busy_at_start);

        let connection_string = format!("dst-{round}");
        post_json(&http, reqwest::Method::PUT, &format!("{}/databases/src/admin/connection-strings", source.url),
            &serde_json::json!({"Type": "Raven", "Name": connection_string, "Database": dst_db, "TopologyDiscoveryUrls": [destination.url]})).await?;
        let started = Instant::now();
        let busy_at_start = busy_cpu_seconds();
        let created = post_json(
            &http,
            reqwest::Method::PUT,
            &format!("{}/databases/src/admin/etl", source.url),
            &serde_json::json!({"EtlType": "Raven", "Name": format!("people-{round}"), "ConnectionStringName": connection_string,
                "Transforms": [{"Name": "s", "Collections": ["Users"], "Script": script}]}),
        )
        .await?;
        loop {
            if collection_count(&http, &destination.url, &dst_db, "People").await? >= expected {
                break;
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("the destination did not receive every document within 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let etl_seconds = started.elapsed().as_secs_f64();
        let etl_busy = busy_since(busy_at_start);
        let busy = |it: Option<f64>| it.map_or_else(|| "?".to_owned(), |it| format!("{it:.2}"));
        let etl_rate = args.docs as f64 / etl_seconds;
        let ratio = (expected as f64 / etl_seconds) / raw_rate;
        ratios.push(ratio);
        let performance_url = format!(
            "{}/databases/src/etl/performance?name=people-{round}",
            source.url
        );
        let (
            BatchTimings {
                transform_ms,
                load_ms,
                n_batches,
                ..
            },
            _,
        ) = BatchTimings::fetch(&http, &performance_url).await?;
        println!(
            "round {}: etl {etl_rate:>7.0} source docs/s end to end ({etl_seconds:.2} s); raw \
             {raw_rate:>7.0} docs/s; ratio etl/raw {ratio:.2}; {n_batches} batches: \
             extract+transform {transform_ms:.0} ms, load {load_ms:.0} ms; machine busy CPU-s: \
             etl {}, raw {}",
            round + 1,
            busy(etl_busy),
            busy(raw_busy)
        );
        if !last {
            // The task is caught up; removing it keeps the next round's source to one task.
            let task_id = created["TaskId"]
                .as_u64()
                .context("no TaskId in the answer")?;
            let response = http
                .delete(format!(
                    "{}/databases/src/admin/tasks?id={task_id}&type=RavenEtl",
                    source.url
                ))
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("deleting task {task_id} answered {}", response.status());
            }
            // And the round's databases: the destination keeps two, as a real one would.
            delete_database(&destination.url, &raw_db, &options).await?;
            delete_database(&destination.url, &dst_db, &options).await?;
        }
    }
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "ratio etl/raw (per destination document), median of {} rounds: {:.2} (rounds: {})",
        sorted.len(),
        sorted[sorted.len() / 2],
        ratios
            .iter()
            .map(|it| format!("{it:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, server) in [("source", &source), ("destination", &destination)] {
        if let Some((rss, hwm)) = memory_mib(server.child.id()) {
            println!("{name} memory: {rss:.0} MiB resident, {hwm:.0} MiB peak");
        }
    }
    rss.report(12);

    // Latency: single updates under a light steady load, each awaited at the destination.
    let src = Client::new(std::slice::from_ref(&source.url), "src", options.clone())?;
    let mut latencies = Vec::with_capacity(args.latency_updates);
    for round in 0..args.latency_updates {
        let idx = (round * 7919) % args.docs;
        let id = format!("users/{idx}");
        let mut doc = document(idx);
        doc["Age"] = serde_json::json!(1000 + round * 2);
        let sent = Instant::now();
        src.put(&id, &doc, None).await?;
        let prefix = format!(
            "{}/databases/dst/docs?startsWith=users%2F{idx}%2Fpeople%2F",
            destination.url
        );
        loop {
            let found: serde_json::Value = http.get(&prefix).send().await?.json().await?;
            let arrived = found["Results"].as_array().is_some_and(|it| {
                it.iter()
                    .any(|doc| doc["Age"] == serde_json::json!(1000 + round * 2))
            });
            if arrived {
                break;
            }
            if sent.elapsed() > Duration::from_secs(10) {
                bail!("update {round} did not arrive within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "latency update→destination over {} updates: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pick(0.50).as_secs_f64() * 1000.0,
        pick(0.99).as_secs_f64() * 1000.0,
        pick(1.0).as_secs_f64() * 1000.0,
    );
    Ok(())
}
