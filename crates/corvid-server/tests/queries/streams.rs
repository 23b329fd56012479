//! `/streams/queries` and `/streams/docs`: RavenDB 4.1's JSON shape and the JSON lines of
//! the 7.x clients.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{DB, TestApp, assert_error};
use crate::{INVALID_QUERY, app_with_users, ids};

#[tokio::test]
async fn streams_send_results_in_ravendbs_shape() {
    let app = app_with_users().await;
    let reply = app
        .send_json(
            "POST",
            &format!("/databases/{DB}/streams/queries"),
            &json!({"Query": "from Users where Age > $p order by Age as long", "QueryParameters": {"p": 6}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let answer = reply.json();
    assert_eq!(ids(&answer), ["users/1", "users/5"]);
    assert_eq!(answer["TotalResults"], 2);
    assert_eq!(answer["IsStale"], false);
    assert_eq!(answer["IndexName"], "Auto/Users/ByAge");

    let reply = app
        .get(&format!(
            "/databases/{DB}/streams/queries?query=from%20Users%20select%20Name%20limit%202"
        ))
        .await;
    let answer = reply.json();
    assert_eq!(answer["Results"].as_array().expect("results").len(), 2);
    assert_eq!(answer["Results"][0]["Name"], "Ann");
    assert_eq!(answer["Results"][0]["@metadata"]["@projection"], true);

    let reply = app
        .get(&format!(
            "/databases/{DB}/streams/docs?startsWith=users/&start=1&pageSize=2"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(ids(&reply.json()), ["users/2", "users/3"]);
    let reply = app.get(&format!("/databases/{DB}/streams/docs")).await;
    assert_eq!(ids(&reply.json()).len(), 6);
    let reply = app
        .get(&format!(
            "/databases/{DB}/streams/docs?startsWith=users/&matches=1|5&exclude=5"
        ))
        .await;
    assert_eq!(ids(&reply.json()), ["users/1"]);

    let bad = format!("/databases/{DB}/streams/queries?query=from%20Users%20where");
    assert_error(
        &app.get(&bad).await,
        StatusCode::BAD_REQUEST,
        &bad,
        INVALID_QUERY,
    );
}

/// A large stream arrives whole, in many chunks.
#[tokio::test]
async fn a_stream_larger_than_a_chunk_arrives_whole() {
    let app = TestApp::new();
    let mut commands = Vec::new();
    for idx in 0..3000 {
        commands.push(json!({"Id": format!("items/{idx}"), "Type": "PUT",
            "Document": {"N": idx, "Text": "x".repeat(100), "@metadata": {"@collection": "Items"}}}));
    }
    let reply = app
        .send_json(
            "POST",
            &format!("/databases/{DB}/bulk_docs"),
            &json!({"Commands": commands}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let reply = app
        .send_json(
            "POST",
            &format!("/databases/{DB}/streams/queries"),
            &json!({"Query": "from Items where N >= 10"}),
        )
        .await;
    let answer = reply.json();
    assert_eq!(answer["Results"].as_array().expect("results").len(), 2990);
    assert_eq!(answer["TotalResults"], 2990);
}

/// The 7.x clients ask for `format=jsonl`: a `Stats` line first for a query, then one
/// `Item` per line; `/streams/docs` sends one document per line.
#[tokio::test]
async fn jsonl_streams_are_what_the_7x_clients_parse() {
    let app = app_with_users().await;
    let reply = app
        .send_json(
            "POST",
            &format!("/databases/{DB}/streams/queries?format=jsonl"),
            &json!({"Query": "from Users where Age >= $p order by Age as long select Name", "QueryParameters": {"p": 30}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let lines: Vec<Value> = reply
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let stats = &lines[0]["Stats"];
    assert_eq!(stats["TotalResults"], 2);
    assert_eq!(stats["IsStale"], false);
    assert_eq!(stats["IndexName"], "Auto/Users/ByAge");
    assert!(stats["ResultEtag"].is_number() && stats["IndexTimestamp"].is_string());
    assert_eq!(lines[1]["Item"]["Name"], "Ann");
    assert_eq!(lines[2]["Item"]["@metadata"]["@id"], "users/5");

    let reply = app
        .get(&format!(
            "/databases/{DB}/streams/docs?startsWith=users/&startAfter=users/3&format=jsonl"
        ))
        .await;
    let ids: Vec<String> = reply
        .text()
        .lines()
        .map(|line| {
            let document: Value = serde_json::from_str(line).expect("a JSON line");
            document["@metadata"]["@id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["users/4", "users/5"]);
}
