//! `bulk_docs` batches large enough to reach the writer in several parts (the handler hands
//! over 128 commands at a time while it parses the rest): still one transaction, all or
//! nothing, whatever part the failure is in.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::{DB, TestApp, assert_error, put_command, user};

const N_COMMANDS: usize = 1000;

fn bulk_uri() -> String {
    format!("/databases/{DB}/bulk_docs")
}

fn many_puts() -> Vec<Value> {
    (0..N_COMMANDS)
        .map(|idx| put_command(&format!("users/{idx}"), user(&format!("User {idx}"), 30)))
        .collect()
}

#[tokio::test]
async fn a_batch_in_many_parts_commits_every_command_in_order() {
    let app = TestApp::new();
    let before = app.db_state().await;
    let reply = app
        .send_json("POST", &bulk_uri(), &json!({"Commands": many_puts()}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let results = reply.json()["Results"].as_array().expect("Results").clone();
    assert_eq!(results.len(), N_COMMANDS);
    for (idx, result) in results.iter().enumerate() {
        assert_eq!(result["@id"], json!(format!("users/{idx}")));
    }
    let after = app.db_state().await;
    assert_eq!(after.n_docs, before.n_docs + N_COMMANDS as u64);
    // One etag per document, all from one transaction.
    assert_eq!(after.last_etag, before.last_etag + N_COMMANDS as u64);
    assert_eq!(
        app.get_doc("users/999").await.expect("stored")["Name"],
        json!("User 999")
    );
}

#[tokio::test]
async fn an_invalid_command_in_a_late_part_writes_none_of_the_earlier_parts() {
    let app = TestApp::new();
    let before = app.db_state().await;
    for bad_command in [
        json!({"Type": "PUT", "Id": "users/bad", "Document": [1, 2]}),
        json!({"Type": "PUT", "Id": "", "Document": {"Name": "x"}}),
        json!({"Type": "Counters", "Id": "users/1"}),
        json!({"Type": "PUT", "Id": "users/bad", "Document": {"@metadata": {"@collection": 5}}}),
    ] {
        let mut commands = many_puts();
        commands.insert(900, bad_command.clone());
        let reply = app
            .send_json("POST", &bulk_uri(), &json!({"Commands": commands}))
            .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            &bulk_uri(),
            "BadRequestException",
        );
        assert!(
            reply.json()["Message"]
                .as_str()
                .is_some_and(|it| it.contains("900") || it.contains("users/bad")),
            "the message names the command: {}",
            reply.text()
        );
        assert_eq!(app.db_state().await, before, "after {bad_command}");
    }
    // Malformed JSON after the commands, found once every part was handed over.
    let mut body = json!({"Commands": many_puts()}).to_string();
    body.push_str(" trailing");
    let reply = app.send("POST", &bulk_uri(), body, &[]).await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        &bulk_uri(),
        "BadRequestException",
    );
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/0").await, None);
}

#[tokio::test]
async fn a_conflict_in_a_late_part_writes_none_of_the_earlier_parts() {
    let app = TestApp::new();
    app.put_doc("users/conflicted", user("Ann", 30)).await;
    let before = app.db_state().await;
    let mut commands = many_puts();
    commands.insert(
        950,
        json!({"Type": "PUT", "Id": "users/conflicted", "ChangeVector": "A:999-wrong",
               "Document": user("Bob", 31)}),
    );
    let reply = app
        .send_json("POST", &bulk_uri(), &json!({"Commands": commands}))
        .await;
    assert_error(
        &reply,
        StatusCode::CONFLICT,
        &bulk_uri(),
        "Raven.Client.Exceptions.ConcurrencyException",
    );
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/0").await, None);
    // The database goes on: the same batch without the conflict commits.
    let reply = app
        .send_json("POST", &bulk_uri(), &json!({"Commands": many_puts()}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}

#[tokio::test]
async fn concurrent_batches_in_parts_each_commit_or_fail_whole() {
    let app = std::sync::Arc::new(TestApp::new());
    app.put_doc("users/conflicted", user("Ann", 30)).await;
    let before = app.db_state().await;
    let mut tasks = Vec::new();
    for batch in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut commands: Vec<Value> = (0..300)
                .map(|idx| put_command(&format!("batch{batch}/{idx}"), user("x", 1)))
                .collect();
            if batch % 3 == 0 {
                commands.push(json!({"Type": "PUT", "Id": "users/conflicted",
                    "ChangeVector": "A:999-wrong", "Document": user("Bob", 31)}));
            }
            let reply = app
                .send_json("POST", &bulk_uri(), &json!({"Commands": commands}))
                .await;
            (batch, reply.status)
        }));
    }
    let mut n_committed = 0;
    for task in tasks {
        let (batch, status) = task.await.expect("task");
        if batch % 3 == 0 {
            assert_eq!(status, StatusCode::CONFLICT, "batch {batch}");
            assert_eq!(app.get_doc(&format!("batch{batch}/0")).await, None);
        } else {
            assert_eq!(status, StatusCode::CREATED, "batch {batch}");
            assert!(app.get_doc(&format!("batch{batch}/299")).await.is_some());
            n_committed += 1;
        }
    }
    let after = app.db_state().await;
    assert_eq!(after.n_docs, before.n_docs + n_committed * 300);
    assert_eq!(after.last_etag, before.last_etag + n_committed * 300);
}
