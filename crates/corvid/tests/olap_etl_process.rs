//! OLAP ETL across a real `corvid` process: the server killed with SIGKILL at random points of
//! its runs — while batches are written to staged files, and while a run's files are being
//! published — and restarted on the same data directory each time. At the end DuckDB reads
//! exactly one row per document version written (none missing, none twice), every document's
//! last version is there, and no temporary file is visible to a reader of `*.parquet`.
//!
//! Without DuckDB (`scripts/services/duckdb.sh`) the test says `SKIPPED …` and passes; with
//! `CI` set it fails.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{options, send, start_with};
use corvid_client::{Client, Command as BatchCommand, create_database};
use serde_json::{Value, json};

async fn write_orders(client: &Client, range: std::ops::Range<usize>, version: u64) {
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(1000) {
        let commands: Vec<BatchCommand> = chunk
            .iter()
            .map(|idx| BatchCommand::Put {
                id: format!("orders/{idx}"),
                document: json!({"Version": version, "Bucket": idx % 40,
                                 "Customer": format!("customers/{}", idx % 97),
                                 "@metadata": {"@collection": "Orders"}}),
                change_vector: None,
            })
            .collect();
        client.bulk_docs(&commands).await.unwrap();
    }
}

fn duckdb_python() -> Option<PathBuf> {
    let python = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/corvid/duckdb-venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing (scripts/services/duckdb.sh installs it), and CI must not skip it",
        python.display()
    );
    eprintln!(
        "SKIPPED sigkill_mid_olap_runs: {} missing (run scripts/services/duckdb.sh)",
        python.display()
    );
    None
}

/// (id, version, copies) of every row under `table`.
fn rows(python: &Path, table: &Path) -> Vec<(String, u64, u64)> {
    let glob = format!("{}/**/*.parquet", table.display());
    let program = "import duckdb, json, sys\n\
        try:\n    rows = duckdb.connect().execute(\"SELECT _id, Version, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY ALL\", [sys.argv[1]]).fetchall()\n\
        except duckdb.IOException:\n    rows = []\n\
        print(json.dumps(rows))";
    let output = Command::new(python)
        .args(["-c", program, &glob])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<(String, u64, u64)> = serde_json::from_slice(&output.stdout).unwrap();
    rows
}

/// Every file under `root` whose name a reader of `*.parquet` would take.
fn visible_files(root: &Path) -> Vec<PathBuf> {
    let mut res = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|it| it == "parquet") {
                res.push(path);
            }
        }
    }
    res
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_olap_runs_publishes_every_row_exactly_once() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let started = Instant::now();
    let data_dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let olap_dir = lake.path().to_str().unwrap().to_owned();
    // Small batches: a run is many batches, so that a kill lands inside one.
    let args = ["--olap-dir", olap_dir.as_str(), "--etl-batch-items", "500"];
    let mut source = start_with(data_dir.path(), &args);
    create_database(&source.url, "src", &options())
        .await
        .unwrap();
    send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", source.url),
        json!({"Type": "Olap", "Name": "lake", "LocalSettings": {"FolderPath": "lake"}}),
    )
    .await;
    let task = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", source.url),
        json!({"EtlType": "Olap", "Name": "orders-lake", "ConnectionStringName": "lake",
               "RunFrequency": "0 0 1 1 *", "Disabled": true,
               "Transforms": [{"Name": "s", "Collections": ["Orders"], "Script":
                   "loadToOrders(partitionBy(['bucket', this.Bucket]), {Version: this.Version, Customer: this.Customer});"}]}),
    )
    .await;
    let task_id = task["TaskId"].as_u64().unwrap();
    let table = lake.path().join("lake/Orders");

    // Each round writes new documents and new versions of earlier ones while the task is
    // disabled, enables it (a run starts), and kills the process after a pause that grows
    // from round to round: early in the run, later, while publishing.
    let mut versions: HashMap<String, Vec<u64>> = HashMap::new();
    let rounds: [(std::ops::Range<usize>, std::ops::Range<usize>, u64); 4] = [
        (0..6_000, 0..0, 150),
        (6_000..12_000, 0..2_000, 600),
        (12_000..16_000, 1_000..3_000, 1_200),
        (16_000..20_000, 5_000..6_000, 2_000),
    ];
    for (round, (new, updated, pause_ms)) in rounds.into_iter().enumerate() {
        let client = Client::new(std::slice::from_ref(&source.url), "src", options()).unwrap();
        send(
            "POST",
            &format!(
                "{}/databases/src/admin/tasks/state?key={task_id}&type=OlapEtl&disable=true",
                source.url
            ),
            Value::Null,
        )
        .await;
        write_orders(&client, new.clone(), 1).await;
        for idx in new {
            versions.entry(format!("orders/{idx}")).or_default().push(1);
        }
        let version = 2 + round as u64;
        write_orders(&client, updated.clone(), version).await;
        for idx in updated {
            versions
                .entry(format!("orders/{idx}"))
                .or_default()
                .push(version);
        }
        send(
            "POST",
            &format!(
                "{}/databases/src/admin/tasks/state?key={task_id}&type=OlapEtl&disable=false",
                source.url
            ),
            Value::Null,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        source.child.kill().unwrap(); // SIGKILL
        source.child.wait().unwrap();
        let seen = rows(&python, &table);
        eprintln!(
            "round {round}: killed after {pause_ms} ms with {} rows published",
            seen.iter().map(|it| it.2).sum::<u64>()
        );
        drop(source);
        source = start_with(data_dir.path(), &args);
    }
    // The last start runs what is left.
    let expected: usize = versions.values().map(Vec::len).sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let progress = send(
            "GET",
            &format!("{}/databases/src/etl/progress", source.url),
            Value::Null,
        )
        .await;
        if progress["Results"][0]["ProcessesProgress"][0]["Completed"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the last run did not finish: {progress}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let published = rows(&python, &table);
    let mut by_id: HashMap<String, Vec<u64>> = HashMap::new();
    for (id, version, copies) in &published {
        assert_eq!(
            *copies, 1,
            "{id} version {version} published {copies} times"
        );
        by_id.entry(id.clone()).or_default().push(*version);
    }
    for (id, written) in &versions {
        let got = by_id
            .get_mut(id)
            .unwrap_or_else(|| panic!("{id} never published"));
        got.sort_unstable();
        // Every row is a version that was written, and the last one is there. A version
        // overwritten before any run read it is never exported (a run reads the documents
        // as they are), as RavenDB's OLAP ETL does.
        assert!(
            got.iter().all(|it| written.contains(it)),
            "{id}: {got:?} of {written:?}"
        );
        assert_eq!(got.last(), written.last(), "{id}: {got:?} of {written:?}");
    }
    assert_eq!(by_id.len(), versions.len(), "no unknown documents");
    for file in visible_files(lake.path()) {
        assert!(
            file.starts_with(&table) && !file.to_string_lossy().contains(".corvid-staging"),
            "{} is visible to readers",
            file.display()
        );
    }
    eprintln!(
        "{} rows for {} documents ({} versions written) in {:?}",
        published.len(),
        versions.len(),
        expected,
        started.elapsed()
    );
    drop(source);
}
