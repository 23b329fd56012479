//! `corvid-bench insert --bulk-insert`: RavenDB's bulk insert protocol, the same client code
//! against Corvid and a baseline server (RavenDB 4.1) in the same run.
//!
//! The stream is what the official clients send (`store.bulkInsert()` / `store.bulk_insert()`):
//! `GET /operations/next-operation-id`, then one `POST /bulk_insert?id=` whose body is
//! `[{"Id":…,"Type":"PUT","Document":{…}},…]`. The body is serialized before the clock starts,
//! so the figure measures the server, and sent as one request of known length; the server reads
//! it as it arrives either way. The insert is timed until the server answers (it answers once
//! everything is durable), then the collection is counted. While it runs, the server's resident
//! memory is sampled every 20 ms; `/proc/<pid>/status`'s `VmHWM` is reported too. Each round
//! starts a fresh Corvid and uses a fresh database on both servers; the load average is read
//! before each measurement, since the machine is shared.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use corvid_client::delete_database;

use crate::{InsertArgs, collection_count, document, fresh_database, memory_mib, spawn_corvid};

/// One measurement of one server.
struct Measurement {
    docs_per_second: f64,
    seconds: f64,
    /// The most resident memory sampled during the insert, MiB.
    peak_rss_mib: Option<f64>,
    /// `VmHWM` after the insert: the peak since the process started, MiB.
    high_water_mib: Option<f64>,
    load_average: String,
}

#[allow(clippy::print_stdout)]
pub(crate) async fn bulk_insert_bench(args: InsertArgs) -> anyhow::Result<()> {
    let (body, avg_doc_bytes) = stream_body(args.docs)?;
    println!(
        "bulk insert: {} docs of ~{avg_doc_bytes} bytes in one stream of {:.0} MiB, {} rounds",
        args.docs,
        body.len() as f64 / (1024.0 * 1024.0),
        args.rounds
    );
    let mut corvid_rounds = Vec::new();
    let mut baseline_rounds = Vec::new();
    for round in 1..=args.rounds.max(1) {
        let server = spawn_corvid(args.corvid_bin.clone())?;
        let corvid = measure(&server.url, Some(server.child.id()), &body, args.docs).await?;
        print_round(round, "corvid  ", &corvid);
        corvid_rounds.push(corvid);
        drop(server);
        if let Some(baseline) = &args.baseline_url {
            let measured = measure(baseline, args.baseline_pid, &body, args.docs).await?;
            print_round(round, "baseline", &measured);
            baseline_rounds.push(measured);
        }
    }
    let corvid_median = median(&corvid_rounds);
    println!("corvid   median: {corvid_median:>9.0} docs/s");
    if !baseline_rounds.is_empty() {
        let baseline_median = median(&baseline_rounds);
        println!("baseline median: {baseline_median:>9.0} docs/s");
        println!(
            "ratio corvid/baseline (medians): {:.2}x",
            corvid_median / baseline_median
        );
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_round(round: usize, name: &str, measured: &Measurement) {
    let mib = |it: Option<f64>| it.map_or_else(|| "?".to_owned(), |it| format!("{it:.0} MiB"));
    println!(
        "round {round}: {name} {:>9.0} docs/s ({:.2} s); peak RSS during the insert {}, VmHWM {}; load average {}",
        measured.docs_per_second,
        measured.seconds,
        mib(measured.peak_rss_mib),
        mib(measured.high_water_mib),
        measured.load_average
    );
}

fn median(rounds: &[Measurement]) -> f64 {
    let mut rates: Vec<f64> = rounds.iter().map(|it| it.docs_per_second).collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// The whole bulk insert body, and the average document size.
fn stream_body(n_docs: usize) -> anyhow::Result<(Bytes, usize)> {
    let mut body = Vec::with_capacity(n_docs * 360 + 2);
    let mut doc_bytes = 0;
    body.push(b'[');
    for idx in 0..n_docs {
        if idx > 0 {
            body.push(b',');
        }
        let document = serde_json::to_vec(&document(idx))?;
        doc_bytes += document.len();
        body.extend_from_slice(
            format!(r#"{{"Id":"users/{idx}","Type":"PUT","Document":"#).as_bytes(),
        );
        body.extend_from_slice(&document);
        body.push(b'}');
    }
    body.push(b']');
    Ok((Bytes::from(body), doc_bytes / n_docs.max(1)))
}

async fn measure(
    url: &str,
    pid: Option<u32>,
    body: &Bytes,
    n_docs: usize,
) -> anyhow::Result<Measurement> {
    let database = format!("bench-bulk-insert-{}", std::process::id());
    let options = fresh_database(url, &database, Duration::from_secs(1800)).await?;
    let http = corvid_client::http_client_builder()
        .timeout(Duration::from_secs(1800))
        .build()?;
    let next: serde_json::Value = http
        .get(format!(
            "{url}/databases/{database}/operations/next-operation-id"
        ))
        .send()
        .await?
        .json()
        .await?;
    let operation_id = next["Id"].as_u64().context("no operation Id")?;
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .map(|it| it.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();

    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = pid.map(|pid| {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak: Option<f64> = None;
            while sampling.load(Ordering::Relaxed) {
                if let Some((rss, _)) = memory_mib(pid) {
                    peak = Some(peak.map_or(rss, |it| it.max(rss)));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    });
    let started = Instant::now();
    let response = http
        .post(format!(
            "{url}/databases/{database}/bulk_insert?id={operation_id}&skipOverwriteIfUnchanged=false"
        ))
        .body(body.clone())
        .send()
        .await?;
    let status = response.status();
    let answer = response.bytes().await?;
    let seconds = started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let peak_rss_mib = match sampler {
        Some(it) => it.await?,
        None => None,
    };
    if !status.is_success() {
        bail!(
            "{url}: bulk_insert answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let stored = collection_count(&http, url, &database, "Users").await?;
    if stored != n_docs as u64 {
        bail!("{url}: {stored} Users after the bulk insert, expected {n_docs}");
    }
    let high_water_mib = pid.and_then(memory_mib).map(|(_, hwm)| hwm);
    delete_database(url, &database, &options).await?;
    Ok(Measurement {
        docs_per_second: n_docs as f64 / seconds,
        seconds,
        peak_rss_mib,
        high_water_mib,
        load_average,
    })
}
