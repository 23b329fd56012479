//! Cluster benchmarks (docs/design/cluster.md §9).
//!
//! `corvid-bench cluster-insert`: the `insert` load (`bulk_docs` batches) into a database with
//! replication factor 3 on a cluster of three `corvid serve`s, against the same load into a
//! single node in the same run, rounds alternating; docs/s, the ratio, and write latency
//! (per `bulk_docs` request, and per single-document `PUT` one at a time) at p50 and p99.
//!
//! `corvid-bench etl-failover`: a Raven ETL task from a replicated database to a fourth
//! Corvid while documents are written; the node running the task is killed (SIGKILL) `--kills`
//! times, and each time the wait until its successor delivers its first batch is measured.

use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::sql_etl::{load_average, median};

#[derive(clap::Args, Debug)]
pub(crate) struct ClusterInsertArgs {
    /// Number of documents per round.
    #[arg(long, default_value_t = 100_000)]
    docs: usize,
    /// Documents per bulk_docs request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Single-document PUTs, one at a time, for the latency of a small write.
    #[arg(long, default_value_t = 1000)]
    puts: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The `corvid` binary to start (default: next to this executable).
    #[arg(long)]
    corvid_bin: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct EtlFailoverArgs {
    /// How many times the node running the task is killed.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// The `corvid` binary to start (default: next to this executable).
    #[arg(long)]
    corvid_bin: Option<PathBuf>,
}

/// A node of the benchmark's cluster: a fixed port, so it returns at the same URL.
struct Node {
    tag: &'static str,
    port: u16,
    data_dir: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let mut child = Process::new(&self.binary)
            .args(["serve", "--bind", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--node-tag", self.tag, "--public-url", &self.url()])
            .env("RUST_LOG", "error,openraft=off")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("failed to start {}", self.binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        if !line.starts_with("Corvid listening on ") {
            bail!("unexpected first line from corvid: {line:?}");
        }
        self.child = Some(child);
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(it) => Ok(it),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("executable has no directory")?
            .join("corvid")),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = http.request(method, url).timeout(Duration::from_secs(120));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{url}: {status} {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Starts nodes A, B and C in `root` and forms a cluster of them.
async fn form_cluster(
    root: &std::path::Path,
    binary: &std::path::Path,
    http: &reqwest::Client,
) -> anyhow::Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for tag in ["A", "B", "C"] {
        let mut node = Node {
            tag,
            port: free_port()?,
            data_dir: root.join(tag),
            binary: binary.to_owned(),
            child: None,
        };
        node.start()?;
        nodes.push(node);
    }
    for node in &nodes[1..] {
        let url = format!(
            "{}/admin/cluster/node?url={}&tag={}",
            nodes[0].url(),
            node.url(),
            node.tag
        );
        call(http, reqwest::Method::PUT, &url, None).await?;
    }
    Ok(nodes)
}

/// The URL of the group's leader for `database`, as `node` lists it first.
async fn leader_url(http: &reqwest::Client, node: &str, database: &str) -> anyhow::Result<String> {
    let topology = call(
        http,
        reqwest::Method::GET,
        &format!("{node}/topology?name={database}"),
        None,
    )
    .await?;
    topology["Nodes"][0]["Url"]
        .as_str()
        .map(str::to_owned)
        .context("the topology lists no node")
}

/// Posts the batches (at most `concurrency` in flight); returns docs/s and each request's
/// latency in milliseconds.
async fn post_batches(
    http: &reqwest::Client,
    endpoint: &str,
    bodies: &[Bytes],
    n_docs: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(bodies.len());
    let mut in_flight = tokio::task::JoinSet::new();
    for body in bodies {
        if in_flight.len() >= concurrency
            && let Some(done) = in_flight.join_next().await
        {
            latencies.push(done??);
        }
        let request = http
            .post(endpoint)
            .header("Content-Type", "application/json")
            .body(body.clone());
        in_flight.spawn(async move {
            let sent = Instant::now();
            let response = request.send().await?;
            let status = response.status();
            let answer = response.bytes().await?;
            if !status.is_success() {
                bail!(
                    "bulk_docs answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                );
            }
            anyhow::Ok(sent.elapsed().as_secs_f64() * 1000.0)
        });
    }
    while let Some(done) = in_flight.join_next().await {
        latencies.push(done??);
    }
    Ok((n_docs as f64 / started.elapsed().as_secs_f64(), latencies))
}

/// Single-document PUTs one at a time; each one's latency in milliseconds.
async fn single_puts(http: &reqwest::Client, docs_url: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(n);
    for idx in 0..n {
        let sent = Instant::now();
        let response = http
            .put(format!("{docs_url}?id=single/{idx}"))
            .body(json!({"N": idx, "@metadata": {"@collection": "Singles"}}).to_string())
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("PUT answered {}", response.status());
        }
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let idx = ((values.len() as f64 * p).ceil() as usize).saturating_sub(1);
    values.get(idx).copied().unwrap_or(f64::NAN)
}

struct Measured {
    rate: f64,
    batch_latencies: Vec<f64>,
    put_latencies: Vec<f64>,
}

/// One round against `write_url` (the node writes are sent to): a fresh database created
/// through `admin_url` with `factor`, the batches, then the single puts.
async fn round(
    http: &reqwest::Client,
    admin_url: &str,
    factor: usize,
    database: &str,
    bodies: &[Bytes],
    args: &ClusterInsertArgs,
) -> anyhow::Result<Measured> {
    call(
        http,
        reqwest::Method::PUT,
        &format!("{admin_url}/admin/databases?name={database}&replicationFactor={factor}"),
        Some(json!({})),
    )
    .await?;
    let write_url = if factor > 1 {
        leader_url(http, admin_url, database).await?
    } else {
        admin_url.to_owned()
    };
    let endpoint = format!("{write_url}/databases/{database}/bulk_docs");
    let (rate, batch_latencies) =
        post_batches(http, &endpoint, bodies, args.docs, args.concurrency.max(1)).await?;
    let put_latencies = single_puts(
        http,
        &format!("{write_url}/databases/{database}/docs"),
        args.puts,
    )
    .await?;
    call(
        http,
        reqwest::Method::DELETE,
        &format!("{admin_url}/admin/databases?name={database}"),
        None,
    )
    .await?;
    Ok(Measured {
        rate,
        batch_latencies,
        put_latencies,
    })
}

#[allow(clippy::print_stdout)]
pub(crate) async fn cluster_insert(args: ClusterInsertArgs) -> anyhow::Result<()> {
    let binary = binary(args.corvid_bin.clone())?;
    let http = corvid_client::http_client_builder().build()?;
    let (bodies, avg_doc_bytes) = crate::batches(args.docs, args.batch.max(1))?;
    println!(
        "cluster-insert: {} docs of ~{avg_doc_bytes} bytes, batches of {}, concurrency {}; {} single puts",
        args.docs, args.batch, args.concurrency, args.puts
    );
    let root = tempfile::tempdir()?;
    let nodes = form_cluster(root.path(), &binary, &http).await?;
    let single = crate::spawn_corvid(Some(binary.clone()))?;
    let mut single_rates = Vec::new();
    let mut cluster_rates = Vec::new();
    let mut ratios = Vec::new();
    let mut latencies: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    for round_no in 1..=args.rounds.max(1) {
        let database = format!("bench-{round_no}");
        let load = load_average();
        let one = round(&http, &single.url, 1, &database, &bodies, &args).await?;
        let three = round(&http, &nodes[0].url(), 3, &database, &bodies, &args).await?;
        println!(
            "round {round_no}: single node {:>9.0} docs/s, 3 nodes (replication factor 3) {:>9.0} docs/s, ratio {:.2} (load average {load})",
            one.rate,
            three.rate,
            three.rate / one.rate
        );
        single_rates.push(one.rate);
        cluster_rates.push(three.rate);
        ratios.push(three.rate / one.rate);
        for (slot, measured) in latencies.iter_mut().zip([one, three]) {
            slot.0.extend(measured.batch_latencies);
            slot.1.extend(measured.put_latencies);
        }
    }
    println!(
        "median: single node {:.0} docs/s, 3 nodes {:.0} docs/s; ratio 3 nodes / single node, median of {} rounds: {:.2}",
        median(&mut single_rates),
        median(&mut cluster_rates),
        ratios.len(),
        median(&mut ratios)
    );
    for (name, (batches, puts)) in ["single node", "3 nodes"].iter().zip(latencies.iter_mut()) {
        println!(
            "{name}: bulk_docs of {} p50 {:.1} ms, p99 {:.1} ms; single PUT p50 {:.2} ms, p99 {:.2} ms",
            args.batch,
            percentile(batches, 0.5),
            percentile(batches, 0.99),
            percentile(puts, 0.5),
            percentile(puts, 0.99)
        );
    }
    drop(nodes);
    Ok(())
}

/// The destination's count of delivered documents.
async fn delivered(http: &reqwest::Client, destination: &str) -> u64 {
    let Ok(stats) = call(
        http,
        reqwest::Method::GET,
        &format!("{destination}/databases/dst/collections/stats"),
        None,
    )
    .await
    else {
        return 0;
    };
    stats["Collections"]["People"].as_u64().unwrap_or(0)
}

#[allow(clippy::print_stdout)]
pub(crate) async fn etl_failover(args: EtlFailoverArgs) -> anyhow::Result<()> {
    let binary = binary(args.corvid_bin.clone())?;
    let http = corvid_client::http_client_builder().build()?;
    let root = tempfile::tempdir()?;
    let mut nodes = form_cluster(root.path(), &binary, &http).await?;
    let destination = crate::spawn_corvid(Some(binary.clone()))?;
    call(
        &http,
        reqwest::Method::PUT,
        &format!("{}/admin/databases?name=dst", destination.url),
        Some(json!({})),
    )
    .await?;
    let a = nodes[0].url();
    call(
        &http,
        reqwest::Method::PUT,
        &format!("{a}/admin/databases?name=src&replicationFactor=3"),
        Some(json!({})),
    )
    .await?;
    call(
        &http,
        reqwest::Method::PUT,
        &format!("{a}/databases/src/admin/connection-strings"),
        Some(json!({"Type": "Raven", "Name": "dst", "Database": "dst", "TopologyDiscoveryUrls": [destination.url]})),
    )
    .await?;
    call(
        &http,
        reqwest::Method::PUT,
        &format!("{a}/databases/src/admin/etl"),
        Some(json!({"EtlType": "Raven", "Name": "people", "ConnectionStringName": "dst", "Transforms": [
            {"Name": "s", "Collections": ["Users"], "Script": "loadToPeople({Name: this.Name});"}]})),
    )
    .await?;
    // A writer puts a batch of 50 documents every 100 ms, through any node that answers.
    let urls: Vec<String> = nodes.iter().map(Node::url).collect();
    let writer_http = http.clone();
    let writer = tokio::spawn(async move {
        let mut next = 0usize;
        loop {
            let commands: Vec<Value> = (next..next + 50)
                .map(|idx| {
                    json!({"Id": format!("users/{idx}"), "ChangeVector": null, "Type": "PUT",
                    "Document": {"Name": idx, "@metadata": {"@collection": "Users"}}})
                })
                .collect();
            let body = json!({"Commands": commands});
            for url in &urls {
                let posted = call(
                    &writer_http,
                    reqwest::Method::POST,
                    &format!("{url}/databases/src/bulk_docs"),
                    Some(body.clone()),
                )
                .await;
                if posted.is_ok() {
                    next += 50;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut times = Vec::new();
    for kill in 1..=args.kills {
        tokio::time::sleep(Duration::from_secs(3)).await;
        // The node running the task: the group's leader as every live node lists it, and the
        // node `/tasks` names responsible.
        let mut running = None;
        for _ in 0..100 {
            let mut firsts = Vec::new();
            for node in nodes.iter().filter(|it| it.child.is_some()) {
                firsts.push(leader_url(&http, &node.url(), "src").await?);
            }
            let tasks = call(
                &http,
                reqwest::Method::GET,
                &format!("{}/databases/src/tasks", firsts[0]),
                None,
            )
            .await?;
            let responsible = tasks["OngoingTasksList"][0]["ResponsibleNode"]["NodeUrl"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if firsts.iter().all(|it| *it == firsts[0]) && responsible == firsts[0] {
                running = nodes.iter().position(|it| it.url() == firsts[0]);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let victim = running.context("the nodes do not agree on the node running the task")?;
        let killed = Instant::now();
        nodes[victim].kill();
        // A batch the killed node had sent may still land: counted from half a second on.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = delivered(&http, &destination.url).await;
        loop {
            if delivered(&http, &destination.url).await > before {
                break;
            }
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("kill {kill}: no batch delivered within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = killed.elapsed().as_secs_f64();
        println!(
            "kill {kill}: node {} killed; its successor delivered its first batch after {took:.2} s (load average {})",
            nodes[victim].tag,
            load_average()
        );
        times.push(took);
        nodes[victim].start()?;
    }
    writer.abort();
    let worst = times.iter().copied().fold(0.0, f64::max);
    println!(
        "etl failover over {} kills: median {:.2} s, worst {worst:.2} s",
        times.len(),
        median(&mut times)
    );
    Ok(())
}
