//! `corvid-bench olap`: an OLAP ETL run of N orders (~300 bytes each) to a local folder, end
//! to end — from saving the task to the run's files published — against DuckDB writing the same
//! rows (the id and last-modified columns included) to Parquet, partitioned the same way, from
//! an in-memory table in the same run (`COPY … TO … (FORMAT parquet, PARTITION_BY …)`).
//! Reports the ratio of rates (median of rounds), the Corvid process's resident memory, and the
//! files' sizes against DuckDB's. DuckDB comes from `scripts/services/duckdb.sh`'s venv.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use corvid_client::{ClientOptions, create_database};

use crate::{memory_mib, post_json, rss, spawn_corvid_with};

#[derive(clap::Args, Debug)]
pub(crate) struct OlapArgs {
    /// Number of `Orders` documents.
    #[arg(long, default_value_t = 1_000_000)]
    docs: usize,
    /// Rounds of (DuckDB, Corvid), each Corvid round by a new task into a new folder; the
    /// ratio reported is the median of the rounds'.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The `corvid` binary to start (default: next to this executable).
    #[arg(long)]
    corvid_bin: Option<PathBuf>,
    /// The Python of a venv with `duckdb` (default: `~/.cache/corvid/duckdb-venv/bin/python`).
    #[arg(long)]
    duckdb_python: Option<PathBuf>,
    /// An argument for `corvid serve`, e.g. `--server-arg=--memory-budget-mib=128`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
}

const SCRIPT: &str = "loadToOrders(partitionBy(['year', this.Year], ['month', this.Month]), {Company: this.Company, Employee: this.Employee, OrderedAt: this.OrderedAt, ShipVia: this.ShipVia, Freight: this.Freight, Total: this.Total, Lines: this.Lines, City: this.ShipTo.City, Country: this.ShipTo.Country});";

/// An order of about 300 bytes of JSON.
fn order(idx: usize) -> serde_json::Value {
    serde_json::json!({
        "Company": format!("companies/{}-A", idx % 1000),
        "Employee": format!("employees/{}-A", idx % 9),
        "OrderedAt": format!("20{:02}-{:02}-{:02}T{:02}:{:02}:00.0000000Z", 20 + idx % 5, idx % 12 + 1, idx % 28 + 1, idx % 24, idx % 60),
        "ShipVia": format!("shippers/{}-A", idx % 3),
        // Whole cents, as prices are written: `x / 100.0 + 0.01` would make float artifacts
        // (`0.30000000000000004`) whose scale starts new parts of a file.
        "Freight": (idx % 10_000 + 1) as f64 / 100.0,
        "Total": (idx % 100_000 + 25) as f64 / 100.0,
        "Lines": idx % 7 + 1,
        "ShipTo": {"City": format!("City {}", idx % 113), "Country": format!("Country {}", idx % 21)},
        "Year": 2020 + idx % 5,
        "Month": idx % 12 + 1,
        "@metadata": {"@collection": "Orders"},
    })
}

fn default_python() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/corvid/duckdb-venv/bin/python")
}

/// Total size and number of the `.parquet` files under `root`.
fn parquet_files(root: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut count = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|it| it == "parquet") {
                bytes += entry.metadata().map_or(0, |it| it.len());
                count += 1;
            }
        }
    }
    (bytes, count)
}

/// DuckDB writes the rows of `ndjson` (loaded first, not timed) to `out`; returns the seconds.
fn duckdb_round(python: &Path, ndjson: &Path, out: &Path) -> anyhow::Result<f64> {
    let program = r#"
import duckdb, sys, time
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("CREATE TABLE t AS SELECT _id, CAST(_lastModifiedTime AS TIMESTAMPTZ) AS _lastModifiedTime, Company, Employee, CAST(OrderedAt AS TIMESTAMPTZ) AS OrderedAt, ShipVia, CAST(Freight AS DECIMAL(38,2)) AS Freight, CAST(Total AS DECIMAL(38,2)) AS Total, Lines, City, Country, year, month FROM read_json(?, format = 'newline_delimited')", [sys.argv[1]])
started = time.perf_counter()
con.execute(f"COPY t TO '{sys.argv[2]}' (FORMAT parquet, PARTITION_BY (year, month), COMPRESSION snappy)")
print(time.perf_counter() - started)
"#;
    let output = Command::new(python)
        .args(["-c", program])
        .arg(ndjson)
        .arg(out)
        .output()
        .with_context(|| format!("failed to run {}", python.display()))?;
    if !output.status.success() {
        bail!("duckdb failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
}

#[allow(clippy::print_stdout)]
pub(crate) async fn olap(args: OlapArgs) -> anyhow::Result<()> {
    let python = args.duckdb_python.clone().unwrap_or_else(default_python);
    if !python.exists() {
        bail!(
            "{} is missing: run scripts/services/duckdb.sh",
            python.display()
        );
    }
    let work = tempfile::tempdir()?;
    let lake = work.path().join("lake");
    std::fs::create_dir_all(&lake)?;
    let mut server_args = vec!["--olap-dir".to_owned(), lake.display().to_string()];
    server_args.extend(args.server_args.iter().cloned());
    let server = spawn_corvid_with(args.corvid_bin.clone(), &server_args)?;
    let http = corvid_client::http_client_builder().build()?;
    create_database(&server.url, "src", &ClientOptions::default()).await?;

    // The documents, and the same rows for DuckDB.
    let ndjson = work.path().join("orders.ndjson");
    let mut rows = std::io::BufWriter::new(std::fs::File::create(&ndjson)?);
    let mut total_bytes = 0;
    let started = Instant::now();
    let now = "2026-12-05T12:00:00.0000000Z";
    for start in (0..args.docs).step_by(1000) {
        let mut commands = Vec::with_capacity(1000);
        for idx in start..(start + 1000).min(args.docs) {
            let doc = order(idx);
            total_bytes += serde_json::to_vec(&doc)?.len();
            let row = serde_json::json!({
                "_id": format!("orders/{idx}"), "_lastModifiedTime": now,
                "Company": doc["Company"], "Employee": doc["Employee"], "OrderedAt": doc["OrderedAt"],
                "ShipVia": doc["ShipVia"], "Freight": doc["Freight"], "Total": doc["Total"],
                "Lines": doc["Lines"], "City": doc["ShipTo"]["City"], "Country": doc["ShipTo"]["Country"],
                "year": doc["Year"], "month": doc["Month"],
            });
            writeln!(rows, "{row}")?;
            commands.push(serde_json::json!({"Id": format!("orders/{idx}"), "ChangeVector": null, "Type": "PUT", "Document": doc}));
        }
        let body = Bytes::from(serde_json::to_vec(
            &serde_json::json!({"Commands": commands}),
        )?);
        let response = http
            .post(format!("{}/databases/src/bulk_docs", server.url))
            .body(body)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("bulk_docs answered {}", response.status());
        }
    }
    rows.flush()?;
    drop(rows);
    println!(
        "olap: {} orders of ~{} bytes inserted in {:.1} s; script {SCRIPT:?}",
        args.docs,
        total_bytes / args.docs.max(1),
        started.elapsed().as_secs_f64()
    );
    post_json(
        &http,
        reqwest::Method::PUT,
        &format!("{}/databases/src/admin/connection-strings", server.url),
        &serde_json::json!({"Type": "Olap", "Name": "lake", "LocalSettings": {"FolderPath": "bench"}}),
    )
    .await?;

    let rss = rss::RssSampler::start(&[("corvid", server.child.id())], Duration::from_secs(1));
    let mut ratios = Vec::new();
    let mut sizes = (0, 0, 0, 0);
    for round in 0..args.rounds {
        let duck_out = work.path().join(format!("duckdb-{round}"));
        let duck_secs = duckdb_round(&python, &ndjson, &duck_out)?;
        let (duck_bytes, duck_files) = parquet_files(&duck_out);
        let _ = std::fs::remove_dir_all(&duck_out);

        let task = format!("bench-{round}");
        let started = Instant::now();
        post_json(
            &http,
            reqwest::Method::PUT,
            &format!("{}/databases/src/admin/etl", server.url),
            &serde_json::json!({"EtlType": "Olap", "Name": task, "ConnectionStringName": "lake",
                   "RunFrequency": "0 0 1 1 *",
                   "Transforms": [{"Name": "s", "Collections": ["Orders"], "Script": SCRIPT}]}),
        )
        .await?;
        loop {
            let progress = http
                .get(format!(
                    "{}/databases/src/etl/progress?name={task}",
                    server.url
                ))
                .send()
                .await?
                .json::<serde_json::Value>()
                .await?;
            let done = progress["Results"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|it| it["TaskName"] == task.as_str())
                .is_some_and(|it| it["ProcessesProgress"][0]["Completed"] == true);
            if done {
                break;
            }
            if started.elapsed() > Duration::from_secs(1800) {
                bail!("the OLAP run did not finish in 30 minutes");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let corvid_secs = started.elapsed().as_secs_f64();
        let (timings, _) = crate::BatchTimings::fetch(
            &http,
            &format!("{}/databases/src/etl/performance", server.url),
        )
        .await?;
        println!(
            "  corvid's last {} batches: extract+transform {:.0} ms, load (staging Parquet) {:.0} ms",
            timings.n_batches, timings.transform_ms, timings.load_ms
        );
        let (corvid_bytes, corvid_files) = parquet_files(&lake.join("bench"));
        let ratio = duck_secs / corvid_secs;
        println!(
            "round {}: corvid {:.0} rows/s ({corvid_secs:.2} s, {corvid_files} files, {:.1} MiB); duckdb {:.0} rows/s ({duck_secs:.2} s, {duck_files} files, {:.1} MiB); ratio corvid/duckdb {ratio:.2}",
            round + 1,
            args.docs as f64 / corvid_secs,
            corvid_bytes as f64 / 1048576.0,
            args.docs as f64 / duck_secs,
            duck_bytes as f64 / 1048576.0,
        );
        ratios.push(ratio);
        sizes = (corvid_bytes, corvid_files, duck_bytes, duck_files);
        // The next round writes a fresh folder.
        post_json(
            &http,
            reqwest::Method::DELETE,
            &format!(
                "{}/databases/src/admin/tasks?id={}&type=OlapEtl",
                server.url,
                task_id(&http, &server.url, &task).await?
            ),
            &serde_json::Value::Null,
        )
        .await?;
        let _ = std::fs::remove_dir_all(lake.join("bench"));
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "ratio corvid/duckdb (rows per second), median of {} rounds: {median:.2} (rounds: {})",
        ratios.len(),
        ratios
            .iter()
            .map(|it| format!("{it:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "file sizes: corvid {:.1} MiB in {} files, duckdb {:.1} MiB in {} files (corvid/duckdb {:.2})",
        sizes.0 as f64 / 1048576.0,
        sizes.1,
        sizes.2 as f64 / 1048576.0,
        sizes.3,
        sizes.0 as f64 / sizes.2.max(1) as f64
    );
    if let Some((rss_now, peak)) = memory_mib(server.child.id()) {
        println!("corvid memory: {rss_now:.0} MiB resident, {peak:.0} MiB peak");
    }
    rss.report(12);
    Ok(())
}

async fn task_id(http: &reqwest::Client, url: &str, task: &str) -> anyhow::Result<u64> {
    let tasks: serde_json::Value = http
        .get(format!("{url}/databases/src/tasks"))
        .send()
        .await?
        .json()
        .await?;
    tasks["OngoingTasksList"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|it| it["TaskName"] == task)
        .and_then(|it| it["TaskId"].as_u64())
        .context("the task is not listed")
}
