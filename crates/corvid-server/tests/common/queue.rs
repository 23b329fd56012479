//! Helpers shared by the Queue ETL tests (`etl_queue*.rs`): database `src`'s connection
//! strings, tasks, statistics and documents over HTTP.

use corvid_client::Client;
use serde_json::{Value, json};

use super::live::{Server, send};

pub async fn put_connection_string(server: &Server, connection: Value) -> (u16, Value) {
    send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        Some(connection),
    )
    .await
}

pub async fn put_task(server: &Server, config: Value) -> (u16, Value) {
    send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(config),
    )
    .await
}

pub fn order(total: u64) -> Value {
    json!({"Total": total, "@metadata": {"@collection": "Orders"}})
}

pub async fn statistics(server: &Server) -> Value {
    let (_, body) = send(
        "GET",
        &format!("{}/databases/src/etl/stats", server.url),
        None,
    )
    .await;
    body["Results"][0]["Stats"][0]["Statistics"].clone()
}

pub async fn task_info(server: &Server, task_id: u64) -> Value {
    let (_, task) = send(
        "GET",
        &format!(
            "{}/databases/src/task?key={task_id}&type=QueueEtl",
            server.url
        ),
        None,
    )
    .await;
    task
}

pub async fn change_vector(src: &Client, id: &str) -> String {
    let doc = src.get(id).await.unwrap().unwrap();
    doc["@metadata"]["@change-vector"]
        .as_str()
        .unwrap()
        .to_owned()
}
