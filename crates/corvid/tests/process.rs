//! Tests of the `corvid` process itself: durability across SIGKILL, graceful shutdown, and
//! command-line safety checks. Each test starts the real binary.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;

use common::{options, start, start_with};
use corvid_client::{Client, Command as BatchCommand, create_database};
use serde_json::json;

fn order(idx: usize) -> serde_json::Value {
    json!({"Number": idx, "Lines": [{"Product": "p1", "Qty": idx % 7}], "@metadata": {"@collection": "Orders"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    create_database(&server.url, "shop", &options())
        .await
        .unwrap();
    let client = Client::new(std::slice::from_ref(&server.url), "shop", options()).unwrap();

    // Four writers keep writing batches; every acknowledged batch is recorded. The server is
    // killed with SIGKILL while they are still writing.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let client = client.clone();
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut batch_idx = 0;
            while !stop.load(Ordering::Relaxed) {
                let first = (writer * 1_000_000) + batch_idx * 10;
                let commands: Vec<_> = (first..first + 10)
                    .map(|idx| BatchCommand::Put {
                        id: format!("orders/{idx}"),
                        document: order(idx),
                        change_vector: None,
                    })
                    .collect();
                if client.bulk_docs(&commands).await.is_err() {
                    break;
                }
                acknowledged.lock().unwrap().extend(first..first + 10);
                batch_idx += 1;
            }
        }));
    }
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if acknowledged.lock().unwrap().len() >= 2_000 {
            break;
        }
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    drop(server);

    let server = start(dir.path());
    let client = Client::new(std::slice::from_ref(&server.url), "shop", options()).unwrap();
    for chunk in acknowledged.chunks(500) {
        let ids: Vec<String> = chunk.iter().map(|idx| format!("orders/{idx}")).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let docs = client.get_many(&id_refs).await.unwrap();
        for (idx, doc) in chunk.iter().zip(docs) {
            let doc = doc.unwrap_or_else(|| panic!("acknowledged orders/{idx} is missing"));
            assert_eq!(doc["Number"], json!(idx));
        }
    }
    // The etag counter continues after the last durable write: a new write gets a new etag.
    let put = client.put("orders/after", &order(0), None).await.unwrap();
    let etag: u64 = put.change_vector[2..put.change_vector.find('-').unwrap()]
        .parse()
        .unwrap();
    assert!(etag as usize > acknowledged.len(), "etag {etag} was reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    create_database(&server.url, "shop", &options())
        .await
        .unwrap();
    let client = Client::new(std::slice::from_ref(&server.url), "shop", options()).unwrap();
    client.put("orders/1", &order(1), None).await.unwrap();
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "corvid exited with {status}");
    drop(server);
    let server = start(dir.path());
    let client = Client::new(std::slice::from_ref(&server.url), "shop", options()).unwrap();
    assert_eq!(client.get("orders/1").await.unwrap().unwrap()["Number"], 1);
}

#[test]
fn refuses_a_public_bind_without_unsecured() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_corvid"))
        .args(["serve", "--bind", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--unsecured"), "{stderr}");
}

#[test]
fn a_secured_server_may_bind_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let created = Command::new(env!("CARGO_BIN_EXE_corvid"))
        .args(["certificate", "create", "--name", "localhost", "--out"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    for file in [
        "ca.pem",
        "server.pem",
        "server.key",
        "admin.pem",
        "admin.key",
        "admin-with-key.pem",
    ] {
        assert!(certs.join(file).is_file(), "{file} missing");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_corvid"))
        .args(["serve", "--bind", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--certificate")
        .arg(certs.join("server.pem"))
        .arg("--certificate-key")
        .arg(certs.join("server.key"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("Corvid listening on https://0.0.0.0:"),
        "{line:?}"
    );
}

#[test]
fn refuses_impossible_etl_limits() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--etl-batch-items", "0"),
        ("--script-time-budget-ms", "0"),
        ("--etl-max-fallback-secs", "1"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_corvid"))
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args([flag, value])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag), "{flag}: {stderr}");
    }
}

/// The script budget set on the command line is the one ETL scripts run under: a script
/// that takes ~30 ms per document fails every document with a 5 ms budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_script_time_budget_comes_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), &["--script-time-budget-ms", "5"]);
    for name in ["src", "dst"] {
        create_database(&server.url, name, &options())
            .await
            .unwrap();
    }
    let client = Client::new(std::slice::from_ref(&server.url), "src", options()).unwrap();
    client
        .put(
            "users/1",
            &json!({"Name": "A", "@metadata": {"@collection": "Users"}}),
            None,
        )
        .await
        .unwrap();
    let http = corvid_client::http_client_builder().build().unwrap();
    let admin = format!("{}/databases/src/admin", server.url);
    let answer = http
        .put(format!("{admin}/connection-strings"))
        .body(json!({"Type": "Raven", "Name": "dst", "Database": "dst", "TopologyDiscoveryUrls": [server.url]}).to_string())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    let script =
        "var t = Date.now(); while (Date.now() - t < 30) {} loadToPeople({Name: this.Name});";
    let answer = http
        .put(format!("{admin}/etl"))
        .body(
            json!({"EtlType": "Raven", "Name": "slow", "ConnectionStringName": "dst",
                     "Transforms": [{"Name": "s", "Collections": ["Users"], "Script": script}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats: serde_json::Value = http
            .get(format!("{}/databases/src/etl/stats", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let errors = &stats["Results"][0]["Stats"][0]["Statistics"]["LastTransformationErrors"];
        if let Some(error) = errors[0]["Error"].as_str() {
            assert!(error.contains("time budget of 5ms"), "{error}");
            assert_eq!(errors[0]["DocumentId"], "users/1");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no transformation error: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
