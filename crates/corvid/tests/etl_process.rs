//! ETL across real `corvid` processes: the source killed with SIGKILL at several points of a
//! 20,000-document ETL, and a destination node killed mid-run with a second URL to fail over to.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

mod common;

use common::{options, send, start};
use corvid_client::{Client, Command as BatchCommand, create_database};
use serde_json::{Value, json};

async fn people_count(url: &str) -> u64 {
    let Ok(response) = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .get(format!("{url}/databases/dst/collections/stats"))
        .send()
        .await
    else {
        return 0;
    };
    let stats: Value = response.json().await.unwrap_or(Value::Null);
    stats["Collections"]["People"].as_u64().unwrap_or(0)
}

/// Every destination document, by source id: (destination id, document).
async fn people_by_source(url: &str) -> HashMap<String, Vec<Value>> {
    let body: Value = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .get(format!(
            "{url}/databases/dst/docs?startsWith=users%2F&pageSize=1000000"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut found: HashMap<String, Vec<Value>> = HashMap::new();
    for doc in body["Results"].as_array().unwrap() {
        let id = doc["@metadata"]["@id"].as_str().unwrap();
        let source = id.split("/people/").next().unwrap().to_owned();
        found.entry(source).or_default().push(doc.clone());
    }
    found
}

async fn insert_users(client: &Client, range: std::ops::Range<usize>, version: u64) {
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(1000) {
        let commands: Vec<BatchCommand> = chunk
            .iter()
            .map(|idx| BatchCommand::Put {
                id: format!("users/{idx}"),
                document: json!({"Name": format!("user {idx}"), "Version": version, "@metadata": {"@collection": "Users"}}),
                change_vector: None,
            })
            .collect();
        client.bulk_docs(&commands).await.unwrap();
    }
}

async fn define_etl(source_url: &str, destination_urls: &[&str]) {
    send(
        "PUT",
        &format!("{source_url}/databases/src/admin/connection-strings"),
        json!({"Type": "Raven", "Name": "dst", "Database": "dst", "TopologyDiscoveryUrls": destination_urls}),
    )
    .await;
    send(
        "PUT",
        &format!("{source_url}/databases/src/admin/etl"),
        json!({"EtlType": "Raven", "Name": "people", "ConnectionStringName": "dst", "Transforms": [
            {"Name": "s", "Collections": ["Users"], "Script": "loadToPeople({Name: this.Name, Version: this.Version});"}]}),
    )
    .await;
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_source_loses_and_duplicates_nothing() {
    let source_dir = tempfile::tempdir().unwrap();
    let destination_dir = tempfile::tempdir().unwrap();
    let destination = start(destination_dir.path());
    create_database(&destination.url, "dst", &options())
        .await
        .unwrap();
    let mut source = start(source_dir.path());
    create_database(&source.url, "src", &options())
        .await
        .unwrap();
    let client = Client::new(std::slice::from_ref(&source.url), "src", options()).unwrap();
    insert_users(&client, 0..20_000, 1).await;
    define_etl(&source.url, &[&destination.url]).await;

    // Kill the source at several points of the run; between restarts, update and delete some
    // documents so stale versions would show.
    let mut deleted = Vec::new();
    for (round, threshold) in [2_000u64, 7_000, 13_000].into_iter().enumerate() {
        wait_for(
            "progress before the kill",
            Duration::from_secs(120),
            async || people_count(&destination.url).await >= threshold,
        )
        .await;
        source.child.kill().unwrap(); // SIGKILL
        source.child.wait().unwrap();
        drop(source);
        source = start(source_dir.path());
        let client = Client::new(std::slice::from_ref(&source.url), "src", options()).unwrap();
        let start_idx = round * 3_000;
        insert_users(&client, start_idx..start_idx + 500, 2 + round as u64).await;
        let victim = format!("users/{}", 19_000 + round);
        client.delete(&victim, None).await.unwrap();
        deleted.push(victim);
    }
    let client = Client::new(std::slice::from_ref(&source.url), "src", options()).unwrap();
    wait_for(
        "the ETL to catch up",
        Duration::from_secs(180),
        async || {
            let body = send(
                "GET",
                &format!("{}/databases/src/etl/progress", source.url),
                Value::Null,
            )
            .await;
            body["Results"][0]["ProcessesProgress"][0]["Completed"] == true
                && people_count(&destination.url).await == 20_000 - deleted.len() as u64
        },
    )
    .await;

    let people = people_by_source(&destination.url).await;
    assert_eq!(
        people.len(),
        20_000 - deleted.len(),
        "one entry per live source document"
    );
    for idx in 0..20_000usize {
        let id = format!("users/{idx}");
        if deleted.contains(&id) {
            assert!(!people.contains_key(&id), "{id} was deleted at the source");
            continue;
        }
        let copies = people
            .get(&id)
            .unwrap_or_else(|| panic!("{id} is missing at the destination"));
        assert_eq!(copies.len(), 1, "{id} has {} copies", copies.len());
        let source_doc = client.get(&id).await.unwrap().unwrap();
        assert_eq!(copies[0]["Version"], source_doc["Version"], "{id} is stale");
        assert_eq!(copies[0]["Name"], format!("user {idx}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_second_destination_url_when_the_first_dies() {
    let first_dir = tempfile::tempdir().unwrap();
    let second_dir = tempfile::tempdir().unwrap();
    let source_dir = tempfile::tempdir().unwrap();
    let mut first = start(first_dir.path());
    let second = start(second_dir.path());
    for node in [&first, &second] {
        create_database(&node.url, "dst", &options()).await.unwrap();
    }
    let source = start(source_dir.path());
    create_database(&source.url, "src", &options())
        .await
        .unwrap();
    let client = Client::new(std::slice::from_ref(&source.url), "src", options()).unwrap();
    define_etl(&source.url, &[&first.url, &second.url]).await;
    insert_users(&client, 0..2_000, 1).await;
    // Wait for the acknowledgement too, not only the documents: a batch the first node
    // committed but could not answer before it died is (rightly) sent again to the second.
    wait_for(
        "the first node to receive and acknowledge the first documents",
        Duration::from_secs(60),
        async || {
            let progress = send(
                "GET",
                &format!("{}/databases/src/etl/progress", source.url),
                Value::Null,
            )
            .await;
            people_count(&first.url).await == 2_000
                && progress["Results"][0]["ProcessesProgress"][0]["Completed"] == true
        },
    )
    .await;
    let first_url = first.url.clone();
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    insert_users(&client, 2_000..5_000, 1).await;
    wait_for(
        "the rest to arrive through the second node",
        Duration::from_secs(60),
        async || people_count(&second.url).await == 3_000,
    )
    .await;
    let on_second = people_by_source(&second.url).await;
    for idx in 2_000..5_000 {
        assert!(
            on_second.contains_key(&format!("users/{idx}")),
            "users/{idx} missing on the second node"
        );
    }
    // The first node kept what it acknowledged before it died.
    drop(first);
    let first = start(first_dir.path());
    assert_ne!(first.url, "", "{first_url} restarted");
    assert_eq!(people_count(&first.url).await, 2_000);
}
