//! Patches: `PATCH /docs` (every `PatchStatus`, args, `put`/`del`/`load`, limits),
//! `PATCH` commands of `bulk_docs`, concurrency, and patch / delete by query as operations.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::{DB, TestApp, assert_error, encode, multipart_batch, put_command, user};

fn patch_uri(id: &str, options: &str) -> String {
    format!("/databases/{DB}/docs?id={}{options}", encode(id))
}

fn patch_body(script: &str, values: Value) -> Value {
    json!({"Patch": {"Script": script, "Values": values}, "PatchIfMissing": null})
}

fn patch_command(id: &str, script: &str, values: Value) -> Value {
    json!({"Type": "PATCH", "Id": id, "ChangeVector": null,
           "Patch": {"Script": script, "Values": values}})
}

async fn batch(app: &TestApp, commands: Value) -> common::Reply {
    app.send_json(
        "POST",
        &format!("/databases/{DB}/bulk_docs"),
        &json!({ "Commands": commands }),
    )
    .await
}

/// Polls `/operations/state` until the operation is no longer in progress.
async fn wait_for_operation(app: &TestApp, operation_id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reply = app
            .get(&format!(
                "/databases/{DB}/operations/state?id={operation_id}"
            ))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let state = reply.json();
        if state["Status"] != "InProgress" {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "operation still running: {state}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a patch or delete by query and returns its operation id.
async fn start_operation(app: &TestApp, method: &str, body: Value) -> u64 {
    let reply = app
        .send_json(method, &format!("/databases/{DB}/queries"), &body)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer["OperationNodeTag"], "A");
    answer["OperationId"].as_u64().unwrap()
}

#[tokio::test]
async fn a_patch_changes_the_document_with_args_and_answers_patched() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    let reply = app
        .send_json(
            "PATCH",
            &patch_uri("users/1", ""),
            &patch_body(
                "this.Age += args.val_0; this.Name = args.name; this.Tags = ['x'];",
                json!({"val_0": 2, "name": "Bob"}),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer["Status"], "Patched");
    assert_eq!(answer["ModifiedDocument"]["Age"], 32);
    assert_eq!(answer["Collection"], "Users");
    let stored = app.get_doc("users/1").await.unwrap();
    assert_eq!(stored["Age"], 32);
    assert_eq!(stored["Name"], "Bob");
    assert_eq!(stored["Tags"], json!(["x"]));
    assert_eq!(stored["@metadata"]["@collection"], "Users");
    assert_eq!(
        answer["ChangeVector"],
        stored["@metadata"]["@change-vector"]
    );
    assert_eq!(
        answer["ModifiedDocument"]["@metadata"]["@change-vector"],
        stored["@metadata"]["@change-vector"]
    );
}

#[tokio::test]
async fn every_patch_status() {
    let app = TestApp::new();
    let change_vector = app.put_doc("users/1", user("Ann", 30)).await;

    // NotModified: the script leaves the document as it was (numbers compared by value).
    let reply = app
        .send_json(
            "PATCH",
            &patch_uri("users/1", ""),
            &patch_body("this.Age = this.Age * 1.0;", json!({})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["Status"], "NotModified");
    assert_eq!(
        app.get_doc("users/1").await.unwrap()["@metadata"]["@change-vector"],
        change_vector.as_str()
    );

    // DocumentDoesNotExist: 404 with no body.
    let reply = app
        .send_json(
            "PATCH",
            &patch_uri("users/404", ""),
            &patch_body("this.A = 1;", json!({})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(app.get_doc("users/404").await.is_none());

    // Created by PatchIfMissing.
    let body = json!({
        "Patch": {"Script": "this.A = 1;", "Values": {}},
        "PatchIfMissing": {"Script": "this.A = args.a; this['@metadata'] = {'@collection': 'Users'};",
                           "Values": {"a": 5}},
    });
    let reply = app
        .send_json("PATCH", &patch_uri("users/2", ""), &body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json()["Status"], "Created");
    let created = app.get_doc("users/2").await.unwrap();
    assert_eq!(created["A"], 5);
    assert_eq!(created["@metadata"]["@collection"], "Users");

    // A stale change vector: 409, or 304 Skipped when asked to skip.
    let stale = "A:1-stale";
    let reply = app
        .send(
            "PATCH",
            &patch_uri("users/1", ""),
            patch_body("this.A = 1;", json!({})).to_string(),
            &[("If-Match", &format!("\"{stale}\""))],
        )
        .await;
    assert_error(
        &reply,
        StatusCode::CONFLICT,
        &patch_uri("users/1", ""),
        "ConcurrencyException",
    );
    let uri = patch_uri(
        "users/1",
        &format!("&changeVector={stale}&skipPatchIfChangeVectorMismatch=true"),
    );
    let reply = app
        .send_json("PATCH", &uri, &patch_body("this.A = 1;", json!({})))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    assert_eq!(app.get_doc("users/1").await.unwrap().get("A"), None);

    // The current change vector is accepted.
    let uri = patch_uri("users/1", &format!("&changeVector={change_vector}"));
    let reply = app
        .send_json("PATCH", &uri, &patch_body("this.A = 1;", json!({})))
        .await;
    assert_eq!(reply.json()["Status"], "Patched");
}

#[tokio::test]
async fn test_mode_writes_nothing_and_debug_shows_output_and_actions() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    app.put_doc("users/2", user("Cy", 40)).await;
    let before = app.db_state().await;
    let script = "var other = load('users/2'); output('friend', other.Name); \
                  put('logs/1', {Of: id(this)}); del('users/2'); this.Friend = other.Name;";
    let reply = app
        .send_json(
            "PATCH",
            &patch_uri("users/1", "&test=true&debug=true"),
            &patch_body(script, json!({})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer["Status"], "Patched");
    assert_eq!(answer["ModifiedDocument"]["Friend"], "Cy");
    assert_eq!(answer["OriginalDocument"]["Name"], "Ann");
    assert_eq!(answer["Debug"]["Info"], json!(["friend Cy"]));
    assert_eq!(
        answer["Debug"]["Actions"],
        json!({"DeleteDocument": ["users/2"],
               "PutDocument": [{"Id": "logs/1", "Data": {"Of": "users/1"}}],
               "LoadDocument": ["users/2"]})
    );
    assert_eq!(app.db_state().await, before);
    assert!(app.get_doc("logs/1").await.is_none());
}

#[tokio::test]
async fn put_and_del_in_a_script_commit_with_the_patch() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    app.put_doc("temp/1", json!({"X": 1})).await;
    let script = "put('logs/1', {Of: id(this), '@metadata': {'@collection': 'Logs'}}); \
                  this.Deleted = del('temp/1'); this.Loaded = load('logs/1').Of;";
    let reply = app
        .send_json(
            "PATCH",
            &patch_uri("users/1", ""),
            &patch_body(script, json!({})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let stored = app.get_doc("users/1").await.unwrap();
    assert_eq!(stored["Deleted"], true);
    // The script reads its own put.
    assert_eq!(stored["Loaded"], "users/1");
    let log = app.get_doc("logs/1").await.unwrap();
    assert_eq!(log["Of"], "users/1");
    assert_eq!(log["@metadata"]["@collection"], "Logs");
    assert!(app.get_doc("temp/1").await.is_none());

    // A script that fails after a put writes nothing.
    let before = app.db_state().await;
    let reply = app
        .send_json(
            "PATCH",
            &patch_uri("users/1", ""),
            &patch_body("put('logs/2', {}); throw new Error('no');", json!({})),
        )
        .await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        &patch_uri("users/1", ""),
        "JavaScriptException",
    );
    assert!(reply.json()["Message"].as_str().unwrap().contains("no"));
    assert_eq!(app.db_state().await, before);
}

#[tokio::test]
async fn endless_loops_and_memory_bombs_are_stopped_and_the_server_keeps_serving() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    let uri = patch_uri("users/1", "");
    for (script, expected) in [
        ("while (true) {}", "time budget"),
        (
            "var a = []; while (true) a.push(new Array(1e6).fill(1));",
            "memory limit",
        ),
        ("(function f() { return f() + 1; })();", "stack"),
    ] {
        let started = Instant::now();
        let reply = app
            .send_json("PATCH", &uri, &patch_body(script, json!({})))
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, "JavaScriptException");
        let message = reply.json()["Message"].as_str().unwrap().to_owned();
        assert!(
            message.to_lowercase().contains(expected),
            "{script}: {message}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{script}");
        let reply = app
            .send_json("PATCH", &uri, &patch_body("this.Age += 1;", json!({})))
            .await;
        assert_eq!(reply.json()["Status"], "Patched");
    }
    assert_eq!(app.get_doc("users/1").await.unwrap()["Age"], 33);
}

#[tokio::test]
async fn bad_patch_requests_are_400s() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    let uri = patch_uri("users/1", "");
    let reply = app
        .send_json("PATCH", &uri, &patch_body("this.A = ;", json!({})))
        .await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        &uri,
        "JavaScriptParseException",
    );
    for body in [
        json!({}),
        json!({"Patch": "this.A = 1"}),
        json!({"Patch": {"Values": {}}}),
        json!({"Patch": {"Script": "this.A = 1", "Values": []}}),
        json!({"Patch": {"Script": "this.A = 1"}, "PatchIfMissing": 5}),
    ] {
        let reply = app.send_json("PATCH", &uri, &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, "BadRequestException");
    }
    let no_id = format!("/databases/{DB}/docs");
    let reply = app
        .send_json("PATCH", &no_id, &patch_body("this.A = 1;", json!({})))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // A script that replaces the document with a non-object cannot be written.
    let reply = app
        .send_json(
            "PATCH",
            &uri,
            &patch_body("this['@metadata'] = 5; this.A = 1;", json!({})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
}

#[tokio::test]
async fn batch_patches_run_in_the_batch_transaction() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    // Python's session.increment script, a put and a patch of the new document, a patch of
    // a missing one, CreateIfMissing (add_or_patch) and ReturnDocument.
    let increment = "this.Age = this.Age ? this.Age + args.val_0 : args.val_0 ;";
    let reply = batch(
        &app,
        json!([
            patch_command("users/1", increment, json!({"val_0": 5})),
            put_command("users/2", user("Bob", 1)),
            patch_command("users/2", "this.Name += '!';", json!({})),
            patch_command("users/404", "this.A = 1;", json!({})),
            {"Type": "PATCH", "Id": "users/3", "ChangeVector": null,
             "Patch": {"Script": "this.Age += 1", "Values": {}},
             "CreateIfMissing": user("Cy", 7)},
            {"Type": "PATCH", "Id": "users/1", "ChangeVector": null, "ReturnDocument": true,
             "Patch": {"Script": "this.Seen = true;", "Values": {}}},
        ]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let results = reply.json()["Results"].clone();
    let statuses: Vec<&Value> = results.as_array().unwrap().iter().collect();
    assert_eq!(statuses[0]["Type"], "PATCH");
    assert_eq!(statuses[0]["PatchStatus"], "Patched");
    assert_eq!(statuses[0]["Id"], "users/1");
    assert!(statuses[0]["ChangeVector"].is_string());
    assert!(statuses[0]["LastModified"].is_string());
    assert_eq!(statuses[1]["Type"], "PUT");
    assert_eq!(statuses[2]["PatchStatus"], "Patched");
    assert_eq!(statuses[3]["PatchStatus"], "DocumentDoesNotExist");
    assert_eq!(statuses[3]["ChangeVector"], Value::Null);
    assert_eq!(statuses[4]["PatchStatus"], "Created");
    assert_eq!(statuses[5]["ModifiedDocument"]["Seen"], true);
    assert_eq!(statuses[5]["ModifiedDocument"]["Age"], 35);
    assert!(statuses[0].get("ModifiedDocument").is_none());

    assert_eq!(app.get_doc("users/1").await.unwrap()["Age"], 35);
    assert_eq!(app.get_doc("users/2").await.unwrap()["Name"], "Bob!");
    let created = app.get_doc("users/3").await.unwrap();
    assert_eq!(created["Age"], 7);
    assert_eq!(created["@metadata"]["@collection"], "Users");

    // A failing patch fails the whole batch: the put before it is not written.
    let before = app.db_state().await;
    let reply = batch(
        &app,
        json!([
            put_command("users/9", user("Dee", 1)),
            patch_command("users/1", "throw new Error('nope');", json!({})),
        ]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(app.db_state().await, before);

    // A stale change vector on a PATCH command is a conflict for the whole batch.
    let reply = batch(
        &app,
        json!([
            put_command("users/9", user("Dee", 1)),
            {"Type": "PATCH", "Id": "users/1", "ChangeVector": "A:1-stale",
             "Patch": {"Script": "this.A = 1", "Values": {}}},
        ]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text());
    assert_eq!(app.db_state().await, before);

    // A batch without patches whose documents merely contain the text is applied as usual.
    let reply = batch(
        &app,
        json!([
            put_command("notes/1", json!({"Type": "PATCH", "Other": "JsonPatch"})),
            {"Type": "DELETE", "Id": "users/3", "ChangeVector": null},
        ]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let results = reply.json()["Results"].clone();
    assert_eq!(results[0]["Type"], "PUT");
    assert_eq!(results[1]["Type"], "DELETE");
    assert_eq!(app.get_doc("notes/1").await.unwrap()["Type"], "PATCH");
    assert!(app.get_doc("users/3").await.is_none());
    let before = app.db_state().await;

    // A PATCH without `Patch`, or with a bad id, is refused before anything runs.
    for command in [
        json!({"Type": "PATCH", "Id": "users/1"}),
        json!({"Type": "PATCH", "Id": "", "Patch": {"Script": "", "Values": {}}}),
        json!({"Type": "PATCH", "Id": "users/1", "Patch": {"Script": "this.A = 1"},
               "CreateIfMissing": 5}),
    ] {
        let reply = batch(&app, json!([command])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    }
    assert_eq!(app.db_state().await, before);
}

#[tokio::test]
async fn a_multipart_batch_with_attachments_and_a_patch() {
    let app = TestApp::new();
    let commands = json!({"Commands": [
        put_command("users/1", user("Ann", 30)),
        {"Type": "AttachmentPUT", "Id": "users/1", "Name": "note.txt",
         "ContentType": "text/plain", "ChangeVector": null},
        patch_command("users/1", "this.Age += 1;", json!({})),
    ]});
    let (content_type, body) = multipart_batch(&commands, &[("note.txt", "text/plain", b"hi")]);
    let reply = app
        .send(
            "POST",
            &format!("/databases/{DB}/bulk_docs"),
            body,
            &[("Content-Type", &content_type)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let results = reply.json()["Results"].clone();
    assert_eq!(results[1]["Type"], "AttachmentPUT");
    assert_eq!(results[2]["PatchStatus"], "Patched");
    let stored = app.get_doc("users/1").await.unwrap();
    assert_eq!(stored["Age"], 31);
    let attachment = app
        .get(&format!(
            "/databases/{DB}/attachments?id=users%2F1&name=note.txt"
        ))
        .await;
    assert_eq!(attachment.status, StatusCode::OK);
    assert_eq!(&attachment.body[..], b"hi");
}

#[tokio::test]
async fn json_patch_commands_apply_rfc_6902_operations() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    let json_patch = |operations: Value| {
        json!({"Type": "JsonPatch", "Id": "users/1", "ChangeVector": null,
               "ReturnDocument": true, "JsonPatch": {"Operations": operations}})
    };
    let reply = batch(
        &app,
        json!([json_patch(json!([
            {"op": "add", "path": "/Name", "value": "Bob"},
            {"op": "add", "path": "/Tags", "value": ["a"]},
            {"op": "add", "path": "/Tags/-", "value": "b"},
            {"op": "remove", "path": "/Age"},
        ]))]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let item = reply.json()["Results"][0].clone();
    assert_eq!(item["Type"], "JsonPatch");
    assert_eq!(item["PatchStatus"], "Patched");
    assert_eq!(item["ModifiedDocument"]["Tags"], json!(["a", "b"]));
    let stored = app.get_doc("users/1").await.unwrap();
    assert_eq!(stored["Name"], "Bob");
    assert_eq!(stored.get("Age"), None);
    assert_eq!(stored["@metadata"]["@collection"], "Users");
    assert_eq!(item["ChangeVector"], stored["@metadata"]["@change-vector"]);

    // Nothing changes: NotModified; a failed `test` or a missing document fails the batch.
    let reply = batch(
        &app,
        json!([json_patch(
            json!([{"op": "replace", "path": "/Name", "value": "Bob"}])
        )]),
    )
    .await;
    assert_eq!(reply.json()["Results"][0]["PatchStatus"], "NotModified");
    let before = app.db_state().await;
    let reply = batch(
        &app,
        json!([
            put_command("users/9", user("Dee", 1)),
            json_patch(json!([{"op": "test", "path": "/Name", "value": "Ann"}])),
        ]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    let missing = json!({"Type": "JsonPatch", "Id": "users/404",
                         "JsonPatch": {"Operations": [{"op": "add", "path": "/A", "value": 1}]}});
    let reply = batch(&app, json!([missing])).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
    let reply = batch(&app, json!([{"Type": "JsonPatch", "Id": "users/1"}])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(app.db_state().await, before);
}

#[tokio::test]
async fn json_patch_operation_patches_one_document() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    let uri = format!("/databases/{DB}/json-patch?id=users%2F1");
    let body = json!({"Operations": [{"op": "replace", "path": "/Age", "value": 31}]});
    let reply = app.send_json("PATCH", &uri, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer["Status"], "Patched");
    assert_eq!(answer["ModifiedDocument"]["Age"], 31);
    assert_eq!(answer["Collection"], "Users");
    assert_eq!(app.get_doc("users/1").await.unwrap()["Age"], 31);
    let reply = app.send_json("PATCH", &uri, &body).await;
    assert_eq!(reply.json()["Status"], "NotModified");

    let missing = format!("/databases/{DB}/json-patch?id=users%2F404");
    let reply = app.send_json("PATCH", &missing, &body).await;
    assert_error(
        &reply,
        StatusCode::NOT_FOUND,
        &missing,
        "DocumentDoesNotExistException",
    );
    for bad in [
        json!({}),
        json!({"Operations": {}}),
        json!({"Operations": [{"op": "remove", "path": "/Nope"}]}),
    ] {
        let reply = app.send_json("PATCH", &uri, &bad).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, "BadRequestException");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_are_never_lost() {
    let app = TestApp::new();
    app.put_doc("counters/1", json!({"N": 0, "M": 0})).await;
    let n_requests = 40;
    let requests = (0..n_requests).map(|idx| {
        let app = &app;
        async move {
            let reply = if idx % 2 == 0 {
                app.send_json(
                    "PATCH",
                    &patch_uri("counters/1", ""),
                    &patch_body("this.N += args.by;", json!({"by": 1})),
                )
                .await
            } else {
                batch(
                    app,
                    json!([patch_command("counters/1", "this.M += 1;", json!({}))]),
                )
                .await
            };
            assert!(reply.status.is_success(), "{}", reply.text());
        }
    });
    futures_util::future::join_all(requests).await;
    let stored = app.get_doc("counters/1").await.unwrap();
    assert_eq!(stored["N"], n_requests / 2);
    assert_eq!(stored["M"], n_requests / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_between_the_read_and_the_write_is_not_lost() {
    let app = TestApp::new();
    app.put_doc("counters/1", json!({"N": 0})).await;
    // The script takes ~60 ms after reading the document; a put lands meanwhile.
    let slow = "var until = Date.now() + 60; while (Date.now() < until) {} this.N += 1;";
    let (uri, body) = (patch_uri("counters/1", ""), patch_body(slow, json!({})));
    let patch = app.send_json("PATCH", &uri, &body);
    let put = async {
        tokio::time::sleep(Duration::from_millis(15)).await;
        app.put_doc("counters/1", json!({"N": 100})).await
    };
    let (patched, put_change_vector) = tokio::join!(patch, put);
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    let stored = app.get_doc("counters/1").await.unwrap();
    if stored["@metadata"]["@change-vector"] == put_change_vector.as_str() {
        // The put came last: it replaced the document, as a put does.
        assert_eq!(stored["N"], 100);
    } else {
        // The patch came last: it must have been applied on top of the put.
        assert_eq!(stored["N"], 101, "the concurrent put was lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_by_query_over_5000_documents() {
    let app = TestApp::new();
    let commands: Vec<Value> = (0..5000)
        .map(|idx| {
            let group = if idx % 2 == 0 { "even" } else { "odd" };
            put_command(
                &format!("users/{idx}"),
                json!({"Idx": idx, "Group": group, "@metadata": {"@collection": "Users"}}),
            )
        })
        .collect();
    let reply = batch(&app, Value::Array(commands)).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    app.put_doc(
        "orders/1",
        json!({"Idx": -1, "@metadata": {"@collection": "Orders"}}),
    )
    .await;

    let operation_id = start_operation(
        &app,
        "PATCH",
        json!({"Query": {"Query": "from Users update { this.Idx = this.Idx * 2 + args.add; this.Tag = $tag; }",
                         "QueryParameters": {"add": 1, "tag": "patched"}}}),
    )
    .await;
    let state = wait_for_operation(&app, operation_id).await;
    assert_eq!(state["Status"], "Completed", "{state}");
    assert_eq!(state["Result"]["Total"], 5000);
    assert_eq!(
        state["Result"]["$type"],
        "Raven.Client.Documents.Operations.BulkOperationResult, Raven.Client"
    );
    for idx in [0, 1, 2500, 4999] {
        let doc = app.get_doc(&format!("users/{idx}")).await.unwrap();
        assert_eq!(doc["Idx"], idx * 2 + 1);
        assert_eq!(doc["Tag"], "patched");
    }
    let answer = app
        .query(json!({"Query": "from Users where Tag = 'patched'"}))
        .await;
    assert_eq!(answer["TotalResults"], 5000);
    assert_eq!(app.get_doc("orders/1").await.unwrap()["Idx"], -1);

    // With a filter and an alias.
    let operation_id = start_operation(
        &app,
        "PATCH",
        json!({"Query": {"Query": "from Users as u where u.Group = $g update { u.Odd = true; }",
                         "QueryParameters": {"g": "odd"}}}),
    )
    .await;
    let state = wait_for_operation(&app, operation_id).await;
    assert_eq!(state["Result"]["Total"], 2500, "{state}");
    assert_eq!(app.get_doc("users/1").await.unwrap()["Odd"], true);
    assert_eq!(app.get_doc("users/2").await.unwrap().get("Odd"), None);
}

#[tokio::test]
async fn delete_by_query_deletes_what_the_query_selects() {
    let app = TestApp::new();
    for idx in 0..30 {
        let name = if idx < 10 { "gone" } else { "kept" };
        app.put_doc(&format!("users/{idx}"), user(name, idx)).await;
    }
    app.put_doc(
        "orders/1",
        json!({"Name": "gone", "@metadata": {"@collection": "Orders"}}),
    )
    .await;
    let operation_id = start_operation(
        &app,
        "DELETE",
        json!({"Query": "from Users where Name = $name", "QueryParameters": {"name": "gone"}}),
    )
    .await;
    let state = wait_for_operation(&app, operation_id).await;
    assert_eq!(state["Status"], "Completed", "{state}");
    assert_eq!(state["Result"]["Total"], 10);
    assert!(app.get_doc("users/0").await.is_none());
    assert!(app.get_doc("users/10").await.is_some());
    assert!(app.get_doc("orders/1").await.is_some());
    assert_eq!(app.db_state().await.n_docs, 21);
}

#[tokio::test]
async fn operations_fail_cleanly() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    let uri = format!("/databases/{DB}/queries");
    for body in [
        // No update clause, a bad script, a bad query, a malformed body.
        json!({"Query": {"Query": "from Users", "QueryParameters": {}}}),
        json!({"Query": {"Query": "from Users update { this.A = ; }"}}),
        json!({"Query": {"Query": "from Users where A >> 1 update { this.A = 1; }"}}),
        json!({"Query": "from Users update { this.A = 1 }"}),
        json!({"Query": {"Query": 5}}),
    ] {
        let reply = app.send_json("PATCH", &uri, &body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text()
        );
        assert!(reply.json()["Message"].is_string());
    }
    let reply = app
        .send_json(
            "DELETE",
            &uri,
            &json!({"Query": "from Users update { this.A = 1 }"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // A script that loops on a document faults the operation with the error.
    let operation_id = start_operation(
        &app,
        "PATCH",
        json!({"Query": {"Query": "from Users update { while (true) {} }"}}),
    )
    .await;
    let state = wait_for_operation(&app, operation_id).await;
    assert_eq!(state["Status"], "Faulted", "{state}");
    assert!(
        state["Result"]["Message"]
            .as_str()
            .unwrap()
            .contains("time budget"),
        "{state}"
    );
    // The server still serves.
    assert_eq!(app.get_doc("users/1").await.unwrap()["Name"], "Ann");
    let reply = app
        .get(&format!("/databases/{DB}/operations/state?id=999999"))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_patch_by_query_stops_between_chunks() {
    let app = TestApp::new();
    let commands: Vec<Value> = (0..3000)
        .map(|idx| put_command(&format!("users/{idx}"), user("Ann", idx)))
        .collect();
    assert_eq!(
        batch(&app, Value::Array(commands)).await.status,
        StatusCode::CREATED
    );
    // About a millisecond per document: three chunks of about a second each.
    let script = "var until = Date.now() + 1; while (Date.now() < until) {} this.Seen = true;";
    let operation_id = start_operation(
        &app,
        "PATCH",
        json!({"Query": {"Query": format!("from Users update {{ {script} }}")}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = app
        .send(
            "POST",
            &format!("/databases/{DB}/operations/kill?id={operation_id}"),
            "",
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let state = wait_for_operation(&app, operation_id).await;
    assert_eq!(state["Status"], "Canceled", "{state}");
    // A chunk already handed to the writer commits whole; no chunk is planned after the kill.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = app
        .query(json!({"Query": "from Users where Seen = true"}))
        .await["TotalResults"]
        .as_u64()
        .unwrap();
    assert!(seen < 3000, "{seen} documents patched after the kill");
    assert_eq!(seen % 1000, 0, "chunks are applied whole: {seen}");
}
