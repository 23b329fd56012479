//! `corvid-bench`: Corvid's benchmarks. Each prints throughput and the ratio to a baseline
//! measured in the same run (never a figure from another day or machine).
//!
//! `corvid-bench insert` starts `corvid serve` (the binary next to this one) on a fresh data
//! directory, inserts N documents of about 300 bytes through `bulk_docs` in batches, prints
//! docs/s and the server's memory, and, given `--baseline-url` (e.g. a RavenDB 4.1 from
//! `shared/tools/ravendb-ref`), runs the same load against that server and prints the ratio.

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
    /// Bulk inserts through `POST /bulk_docs`.
    Insert(InsertArgs),
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Bench::Insert(args) => runtime.block_on(insert(args)),
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
fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|it| it.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

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
    let options = ClientOptions {
        request_timeout: Duration::from_secs(300),
        ..ClientOptions::default()
    };
    let database = format!("bench-insert-{}", std::process::id());
    let _ = delete_database(url, &database, &options).await;
    create_database(url, &database, &options).await?;
    let client = Client::new(&[url.to_owned()], &database, options.clone())?;
    // The timed loop posts with plain reqwest and reads the answer without parsing it, so the
    // figure measures the server rather than this client's JSON parsing.
    let http = reqwest::Client::builder().no_proxy().build()?;
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

#[allow(clippy::print_stdout)]
async fn insert(args: InsertArgs) -> anyhow::Result<()> {
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
    let corvid_rate = run_insert(&url, &bodies, args.docs, args.concurrency.max(1)).await?;
    println!("corvid   {url}: {corvid_rate:>10.0} docs/s");
    if let Some(server) = &spawned
        && let Some((rss, hwm)) = memory_mib(server.child.id())
    {
        println!("corvid memory: {rss:.0} MiB resident now, {hwm:.0} MiB peak");
    }
    if let Some(baseline) = &args.baseline_url {
        let baseline_rate =
            run_insert(baseline, &bodies, args.docs, args.concurrency.max(1)).await?;
        println!("baseline {baseline}: {baseline_rate:>10.0} docs/s");
        println!("ratio corvid/baseline: {:.2}x", corvid_rate / baseline_rate);
    }
    Ok(())
}
