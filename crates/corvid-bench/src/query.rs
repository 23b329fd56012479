//! `corvid-bench query`: a collection query with a `where` over N documents of about 300
//! bytes, on Corvid and on a baseline server (RavenDB 4.1) loaded with the same documents.
//!
//! Two queries: a selective one (`FirstName = $p0`, one match) and a broad one
//! (`Age = $p0`, 1/60 of the documents, first page of 25 plus the total). Each is timed on its
//! first run (Corvid builds its auto index then; RavenDB creates its auto index and answers
//! stale, so its first figure is until the first non-stale answer) and as the median of the
//! later runs. Paging uses the body's `PageSize`, which both servers read (RavenDB 4.1 has no
//! RQL `limit`).

use std::time::{Duration, Instant};

use corvid_client::{ClientOptions, create_database, delete_database};

use crate::{batches, bulk_insert, memory_mib, post_json, spawn_corvid};

#[derive(clap::Args, Debug)]
pub(crate) struct QueryArgs {
    /// Number of documents.
    #[arg(long, default_value_t = 1_000_000)]
    docs: usize,
    /// Documents per bulk_docs request while loading.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Timed runs after the first; the median is reported.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// The `corvid` binary to start (default: next to this executable).
    #[arg(long)]
    corvid_bin: Option<std::path::PathBuf>,
    /// A second server to run the same queries against (e.g. RavenDB 4.1).
    #[arg(long)]
    baseline_url: Option<String>,
}

/// One query's figures on one server, in milliseconds.
struct Timings {
    first_ms: f64,
    median_ms: f64,
    total_results: u64,
    index_name: String,
}

/// The queries: (label, RQL, parameter).
fn queries(n_docs: usize) -> [(&'static str, &'static str, serde_json::Value); 2] {
    [
        (
            "selective (1 match)",
            "from Users where FirstName = $p0",
            serde_json::json!(format!("First{}", n_docs / 2)),
        ),
        (
            "broad (1/60 match, page of 25)",
            "from Users where Age = $p0",
            serde_json::json!(42),
        ),
    ]
}

#[allow(clippy::print_stdout)]
pub(crate) async fn query(args: QueryArgs) -> anyhow::Result<()> {
    let (bodies, avg_doc_bytes) = batches(args.docs, args.batch.max(1))?;
    println!(
        "query: {} docs of ~{avg_doc_bytes} bytes, {} timed runs after the first",
        args.docs, args.runs
    );
    let server = spawn_corvid(args.corvid_bin.clone())?;
    let corvid = measure(&server.url, &bodies, &args).await?;
    if let Some((rss, hwm)) = memory_mib(server.child.id()) {
        println!("corvid memory: {rss:.0} MiB resident now, {hwm:.0} MiB peak");
    }
    let baseline = match &args.baseline_url {
        Some(url) => Some(measure(url, &bodies, &args).await?),
        None => None,
    };
    for (idx, (label, rql, _)) in queries(args.docs).iter().enumerate() {
        let ours = &corvid[idx];
        println!("{label}: {rql}");
        println!(
            "  corvid   first {:>9.1} ms, then median {:>8.2} ms  ({} results, {})",
            ours.first_ms, ours.median_ms, ours.total_results, ours.index_name
        );
        if let Some(baseline) = &baseline {
            let theirs = &baseline[idx];
            println!(
                "  baseline first {:>9.1} ms, then median {:>8.2} ms  ({} results, {})",
                theirs.first_ms, theirs.median_ms, theirs.total_results, theirs.index_name
            );
            println!(
                "  ratio baseline/corvid (median): {:.2}x",
                theirs.median_ms / ours.median_ms
            );
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn measure(
    url: &str,
    bodies: &[bytes::Bytes],
    args: &QueryArgs,
) -> anyhow::Result<Vec<Timings>> {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(600),
        ..ClientOptions::default()
    };
    let database = format!("bench-query-{}", std::process::id());
    let _ = delete_database(url, &database, &options).await;
    create_database(url, &database, &options).await?;
    let http = corvid_client::http_client_builder().build()?;
    let loading = Instant::now();
    bulk_insert(&http, url, &database, bodies).await?;
    println!(
        "{url}: loaded {} docs in {:.1} s",
        args.docs,
        loading.elapsed().as_secs_f64()
    );
    let endpoint = format!("{url}/databases/{database}/queries");
    let mut all = Vec::new();
    for (_, rql, parameter) in queries(args.docs) {
        let body = serde_json::json!({
            "Query": rql,
            "QueryParameters": {"p0": parameter},
            "PageSize": 25,
        });
        // The first answer that is not stale: Corvid's is the first; RavenDB builds its auto
        // index in the background and answers stale until it is done.
        let started = Instant::now();
        let mut answer = post_json(&http, reqwest::Method::POST, &endpoint, &body).await?;
        while answer["IsStale"] == true {
            tokio::time::sleep(Duration::from_millis(20)).await;
            answer = post_json(&http, reqwest::Method::POST, &endpoint, &body).await?;
        }
        let first_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut runs = Vec::with_capacity(args.runs);
        for _ in 0..args.runs.max(1) {
            let started = Instant::now();
            answer = post_json(&http, reqwest::Method::POST, &endpoint, &body).await?;
            runs.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        runs.sort_by(f64::total_cmp);
        all.push(Timings {
            first_ms,
            median_ms: runs[runs.len() / 2],
            total_results: answer["TotalResults"].as_u64().unwrap_or(0),
            index_name: answer["IndexName"].as_str().unwrap_or("").to_owned(),
        });
    }
    delete_database(url, &database, &options).await?;
    Ok(all)
}
