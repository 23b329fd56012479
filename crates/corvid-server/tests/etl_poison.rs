//! Raven ETL with documents the destination will never accept: each is left out and
//! reported with its id, and every later document still arrives (issue 14, "Poison items
//! must not stall a task").
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::{Value, json};

use common::live::{Server, database, eventually, send, start};

async fn add_connection_string(server: &Server) {
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        Some(json!({"Type": "Raven", "Name": "dst", "Database": "dst",
                    "TopologyDiscoveryUrls": [server.url]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn add_task(server: &Server, script: &str) -> u64 {
    let config = json!({
        "EtlType": "Raven", "Name": "people", "ConnectionStringName": "dst", "Disabled": false,
        "Transforms": [{"Name": "script1", "Collections": ["Users"], "ApplyToAllDocuments": false,
                        "Disabled": false, "Script": script}],
    });
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(config),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["TaskId"].as_u64().unwrap()
}

fn user(name: &str, extra: Value) -> Value {
    let mut doc = json!({"First": name, "@metadata": {"@collection": "Users"}});
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        doc.extend(extra.clone());
    }
    doc
}

async fn people(server: &Server) -> u64 {
    let (_, body) = send(
        "GET",
        &format!("{}/databases/dst/collections/stats", server.url),
        None,
    )
    .await;
    body["Collections"]["People"].as_u64().unwrap_or(0)
}

async fn statistics(server: &Server) -> Value {
    let (_, body) = send(
        "GET",
        &format!("{}/databases/src/etl/stats", server.url),
        None,
    )
    .await;
    body["Results"][0]["Stats"][0]["Statistics"].clone()
}

async fn connection_status(server: &Server, task_id: u64) -> Value {
    let (_, task) = send(
        "GET",
        &format!(
            "{}/databases/src/task?key={task_id}&type=RavenEtl",
            server.url
        ),
        None,
    )
    .await;
    task["TaskConnectionStatus"].clone()
}

/// Writes `users/1`, the poison document, `users/3` (one batch), starts the task, and checks
/// that the two good ones arrive, the poison one is reported under `where_reported` of the
/// statistics with its id, a later `users/4` arrives, and the task is Active.
async fn check_poison_is_skipped(script: &str, poison_id: &str, poison: Value, reported: &str) {
    let server = start().await;
    let src = database(&server, "src").await;
    let _dst = database(&server, "dst").await;
    add_connection_string(&server).await;
    src.put("users/1", &user("A", json!({})), None)
        .await
        .unwrap();
    src.put(poison_id, &poison, None).await.unwrap();
    src.put("users/3", &user("C", json!({})), None)
        .await
        .unwrap();
    let task_id = add_task(&server, script).await;
    eventually("the two good documents", || async {
        people(&server).await == 2
    })
    .await;
    src.put("users/4", &user("D", json!({})), None)
        .await
        .unwrap();
    eventually("the later document", || async {
        people(&server).await == 3
    })
    .await;
    let statistics = statistics(&server).await;
    let entries = statistics[reported].as_array().cloned().unwrap_or_default();
    assert!(
        entries.iter().any(|it| it["DocumentId"] == poison_id),
        "{poison_id} under {reported}: {statistics:#}"
    );
    assert_eq!(connection_status(&server, task_id).await, "Active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_too_long_at_the_destination_is_skipped_and_later_documents_arrive() {
    // 510 bytes at the source; with `/people/` added the destination refuses it.
    let poison_id = format!("users/{}", "x".repeat(504));
    let server_script = "loadToPeople({Name: this.First});";
    check_poison_is_skipped(
        server_script,
        &poison_id,
        user("Long", json!({})),
        "LastSkippedItems",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_name_the_destination_refuses_is_skipped() {
    // The target collection comes from the data; a control character is refused in an id.
    let script = "loadTo(this.Kind || 'People', {Name: this.First});";
    check_poison_is_skipped(
        script,
        "users/2",
        user("Bad", json!({"Kind": "Peo\u{1}ple"})),
        "LastSkippedItems",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_nested_deeper_than_the_destination_allows_is_skipped() {
    let script = "var nested = {}; \
        if (this.Deep) { for (var i = 0; i < 1000; i++) { nested = {Inner: nested}; } } \
        loadToPeople({Name: this.First, Nested: nested});";
    check_poison_is_skipped(
        script,
        "users/2",
        user("Deep", json!({"Deep": true})),
        "LastSkippedItems",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_is_down_keeps_progress_and_reports_reconnect() {
    // The destination database does not exist: configuration, not an item; nothing skipped.
    let server = start().await;
    let src = database(&server, "src").await;
    add_connection_string(&server).await;
    src.put("users/1", &user("A", json!({})), None)
        .await
        .unwrap();
    let task_id = add_task(&server, "loadToPeople({Name: this.First});").await;
    eventually("the load error to be classified", || async {
        statistics(&server).await["LastLoadErrorClass"] == "Configuration"
    })
    .await;
    assert_eq!(connection_status(&server, task_id).await, "Reconnect");
    let statistics = statistics(&server).await;
    assert_eq!(statistics["Load"]["SkippedItems"], 0, "{statistics:#}");
    let _dst = database(&server, "dst").await;
    eventually("the document once the database exists", || async {
        people(&server).await == 1
    })
    .await;
}
