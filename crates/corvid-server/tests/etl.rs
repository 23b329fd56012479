//! Raven ETL end to end: real servers on loopback ports, tasks defined over HTTP as a user
//! would, documents written at the source and awaited at the destination.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use corvid_client::{Client, Command};
use corvid_store::Storage;
use serde_json::{Value, json};

use common::live::{
    Server, database, etl_options, eventually, reset_etl, send, set_task_disabled, start, start_on,
    start_with_options, wait_until_caught_up,
};

async fn add_connection_string(server: &Server, db: &str, name: &str, urls: &[&str], target: &str) {
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/{db}/admin/connection-strings", server.url),
        Some(json!({"Type": "Raven", "Name": name, "Database": target, "TopologyDiscoveryUrls": urls})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn task(name: &str, collections: &[&str], script: &str) -> Value {
    json!({
        "EtlType": "Raven", "Name": name, "ConnectionStringName": "dst", "Disabled": false,
        "Transforms": [{"Name": "script1", "Collections": collections, "ApplyToAllDocuments": false,
                        "Disabled": false, "Script": script}],
    })
}

async fn add_task(server: &Server, db: &str, config: Value) -> u64 {
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/{db}/admin/etl", server.url),
        Some(config),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["TaskId"].as_u64().unwrap()
}

fn user(name: &str, age: u32) -> Value {
    json!({"First": name, "Last": "Smith", "Age": age, "@metadata": {"@collection": "Users"}})
}

async fn put(client: &Client, id: &str, doc: Value) {
    client.put(id, &doc, None).await.unwrap();
}

/// Writes `users/0` … `users/{n-1}`, first name `first`, age = index, in one request.
async fn put_users(client: &Client, n: u32, first: &str) {
    let commands: Vec<Command> = (0..n)
        .map(|idx| Command::Put {
            id: format!("users/{idx}"),
            document: user(first, idx),
            change_vector: None,
        })
        .collect();
    client.bulk_docs(&commands).await.unwrap();
}

async fn collection_count(server: &Server, db: &str, collection: &str) -> u64 {
    let (_, body) = send(
        "GET",
        &format!("{}/databases/{db}/collections/stats", server.url),
        None,
    )
    .await;
    body["Collections"][collection].as_u64().unwrap_or(0)
}

async fn docs_starting_with(server: &Server, db: &str, prefix: &str) -> Vec<Value> {
    let (_, body) = send(
        "GET",
        &format!(
            "{}/databases/{db}/docs?startsWith={}",
            server.url,
            prefix.replace('/', "%2F")
        ),
        None,
    )
    .await;
    body["Results"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_script_copies_documents_attachments_and_deletes() {
    let server = start().await;
    let src = database(&server, "src").await;
    let dst = database(&server, "dst").await;
    add_connection_string(&server, "src", "dst", &[&server.url], "dst").await;
    put(&src, "users/1", user("Ann", 30)).await;
    src.bulk_docs(&[Command::AttachmentPut {
        id: "users/1".into(),
        name: "photo.png".into(),
        content_type: "image/png".into(),
        bytes: bytes::Bytes::from_static(b"\x89PNG..."),
    }])
    .await
    .unwrap();
    add_task(&server, "src", task("copy", &["Users"], "")).await;

    eventually("users/1 at the destination with its attachment", || async {
        dst.get_attachment("users/1", "photo.png")
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let copied = dst.get("users/1").await.unwrap().unwrap();
    assert_eq!(copied["First"], "Ann");
    assert_eq!(copied["@metadata"]["@collection"], "Users");

    put(&src, "users/1", user("Ann", 31)).await;
    eventually("the update", || async {
        dst.get("users/1").await.unwrap().unwrap()["Age"] == 31
    })
    .await;
    src.delete_attachment("users/1", "photo.png").await.unwrap();
    eventually("the attachment delete", || async {
        dst.get_attachment("users/1", "photo.png")
            .await
            .unwrap()
            .is_none()
    })
    .await;
    src.delete("users/1", None).await.unwrap();
    eventually("the delete", || async {
        dst.get("users/1").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_collection_targets_get_prefixed_ids_replaced_on_update() {
    let server = start().await;
    let src = database(&server, "src").await;
    let _dst = database(&server, "dst").await;
    add_connection_string(&server, "src", "dst", &[&server.url], "dst").await;
    add_task(
        &server,
        "src",
        task(
            "people",
            &["Users"],
            "loadToPeople({Name: this.First + ' ' + this.Last, Age: this.Age});",
        ),
    )
    .await;
    put(&src, "users/1", user("Ann", 30)).await;
    put(&src, "users/2", user("Bob", 40)).await;
    eventually("two people", || async {
        collection_count(&server, "dst", "People").await == 2
    })
    .await;
    let people = docs_starting_with(&server, "dst", "users/1/people/").await;
    assert_eq!(people.len(), 1);
    assert_eq!(people[0]["Name"], "Ann Smith");
    assert_eq!(people[0]["@metadata"]["@collection"], "People");

    put(&src, "users/1", user("Ann", 31)).await;
    eventually("the new version replacing the old", || async {
        let people = docs_starting_with(&server, "dst", "users/1/people/").await;
        people.len() == 1 && people[0]["Age"] == 31
    })
    .await;
    src.delete("users/2", None).await.unwrap();
    eventually("the delete by prefix", || async {
        docs_starting_with(&server, "dst", "users/2/people/")
            .await
            .is_empty()
    })
    .await;
    assert_eq!(collection_count(&server, "dst", "People").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_behaviour_functions_and_script_errors() {
    let server = start().await;
    let src = database(&server, "src").await;
    let dst = database(&server, "dst").await;
    add_connection_string(&server, "src", "dst", &[&server.url], "dst").await;
    let script = "if (this.Age >= 18) { if (this.First == 'Boom') throw new Error('boom'); loadToUsers({Name: this.First}); }\n\
                  function deleteDocumentsOfUsersBehavior(docId, deleted) { return docId != 'users/keep'; }";
    add_task(&server, "src", task("adults", &["Users"], script)).await;
    put(&src, "users/kid", user("Kid", 10)).await;
    put(&src, "users/boom", user("Boom", 50)).await;
    put(&src, "users/keep", user("Keep", 50)).await;
    put(&src, "users/gone", user("Gone", 50)).await;
    eventually("the adults", || async {
        dst.get("users/keep").await.unwrap().is_some()
            && dst.get("users/gone").await.unwrap().is_some()
    })
    .await;
    assert!(
        dst.get("users/kid").await.unwrap().is_none(),
        "filtered out"
    );
    assert!(
        dst.get("users/boom").await.unwrap().is_none(),
        "script error skips the document"
    );
    assert_eq!(
        dst.get("users/keep").await.unwrap().unwrap()["Name"],
        "Keep"
    );

    let (_, stats) = send(
        "GET",
        &format!("{}/databases/src/etl/stats", server.url),
        None,
    )
    .await;
    let statistics = &stats["Results"][0]["Stats"][0]["Statistics"];
    assert_eq!(statistics["Transformation"]["Errors"], 1, "{stats}");
    assert_eq!(
        statistics["LastTransformationErrors"][0]["DocumentId"],
        "users/boom"
    );

    src.delete("users/keep", None).await.unwrap();
    src.delete("users/gone", None).await.unwrap();
    eventually("the propagated delete", || async {
        dst.get("users/gone").await.unwrap().is_none()
    })
    .await;
    assert!(
        dst.get("users/keep").await.unwrap().is_some(),
        "the behaviour function kept it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_destination_is_retried_until_everything_arrives() {
    // Reserve a port, then free it: the destination is down when the task starts.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let source = start().await;
    let src = database(&source, "src").await;
    let destination_url = format!("http://127.0.0.1:{port}");
    add_connection_string(&source, "src", "dst", &[&destination_url], "dst").await;
    for idx in 0..50 {
        put(&src, &format!("users/{idx}"), user("U", idx)).await;
    }
    let task_id = add_task(&source, "src", task("copy", &["Users"], "")).await;
    eventually("the task to report Reconnect", || async {
        let (_, task) = send(
            "GET",
            &format!(
                "{}/databases/src/task?key={task_id}&type=RavenEtl",
                source.url
            ),
            None,
        )
        .await;
        task["TaskConnectionStatus"] == "Reconnect"
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open(dir.path()).unwrap());
    let destination = start_on(port, storage, Some(dir)).await;
    assert_eq!(destination.port, port);
    let dst = database(&destination, "dst").await;
    eventually("all 50 documents", || async {
        collection_count(&destination, "dst", "Users").await == 50
    })
    .await;
    eventually("the task to report Active", || async {
        let (_, task) = send(
            "GET",
            &format!(
                "{}/databases/src/task?key={task_id}&type=RavenEtl",
                source.url
            ),
            None,
        )
        .await;
        task["TaskConnectionStatus"] == "Active"
    })
    .await;
    assert_eq!(dst.get("users/49").await.unwrap().unwrap()["Age"], 49);
}

/// Databases `src` and `dst`, a task `people` (`loadToPeople({Name: this.First})`) sending
/// through `url`, and users/0 … users/{n-1} arrived as people. Returns the source client.
async fn people_from_users(server: &Server, url: &str, n: u32) -> Client {
    let src = database(server, "src").await;
    let _dst = database(server, "dst").await;
    add_connection_string(server, "src", "dst", &[url], "dst").await;
    add_task(
        server,
        "src",
        task("people", &["Users"], "loadToPeople({Name: this.First});"),
    )
    .await;
    for idx in 0..n {
        put(&src, &format!("users/{idx}"), user("U", idx)).await;
    }
    eventually("the first people", || async {
        collection_count(server, "dst", "People").await == u64::from(n)
    })
    .await;
    src
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_survives_a_restart_and_reset_sends_everything_again() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open(dir.path()).unwrap());
    let server = start_on(0, storage.clone(), None).await;
    let src = people_from_users(&server, &server.url, 20).await;
    // The destination holds every document a moment before the process stores its progress.
    let progress_url = format!("{}/databases/src/etl/progress", server.url);
    eventually("the progress stored", || async {
        let (_, progress) = send("GET", &progress_url, None).await;
        progress["Results"][0]["ProcessesProgress"][0]["Completed"] == true
    })
    .await;
    let (_, progress) = send("GET", &progress_url, None).await;
    let process = &progress["Results"][0]["ProcessesProgress"][0];
    assert_eq!(process["Completed"], true, "{progress}");
    assert_eq!(process["NumberOfDocumentsToProcess"], 0);
    assert_eq!(process["TotalNumberOfDocuments"], 20);
    let port = server.port;
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Restarted on the same data: nothing is sent again (the destination ids would change if
    // it were, since other-collection ids are generated by the destination).
    let server = start_on(port, storage.clone(), Some(dir)).await;
    let before: Vec<Value> = docs_starting_with(&server, "dst", "users/").await;
    put(&src, "users/20", user("U", 20)).await;
    eventually("the new person", || async {
        collection_count(&server, "dst", "People").await == 21
    })
    .await;
    let after = docs_starting_with(&server, "dst", "users/").await;
    for doc in &before {
        let id = &doc["@metadata"]["@id"];
        assert!(
            after.iter().any(|it| &it["@metadata"]["@id"] == id),
            "{id} was sent again"
        );
    }

    reset_etl(&server, "src", "people", "script1").await;
    eventually("everything sent again under new ids", || async {
        let now = docs_starting_with(&server, "dst", "users/").await;
        now.len() == 21
            && !now
                .iter()
                .any(|it| it["@metadata"]["@id"] == before[0]["@metadata"]["@id"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_are_refused_with_their_reason() {
    let server = start().await;
    let _src = database(&server, "src").await;
    add_connection_string(&server, "src", "dst", &[&server.url], "dst").await;
    let url = format!("{}/databases/src/admin/etl", server.url);
    let cases = [
        (
            json!({"Name": "t", "ConnectionStringName": "nope", "Transforms": [{"Name": "a", "Collections": ["Users"], "Script": ""}]}),
            "connection string `nope`",
        ),
        (
            json!({"Name": "t", "ConnectionStringName": "dst", "Transforms": []}),
            "at least one transformation",
        ),
        (
            json!({"Name": "t", "ConnectionStringName": "dst", "Transforms": [
            {"Name": "a", "Collections": ["Users"], "Script": ""}, {"Name": "A", "Collections": ["Users"], "Script": ""}]}),
            "more than one transformation named",
        ),
        (
            json!({"Name": "t", "ConnectionStringName": "dst", "Transforms": [
            {"Name": "a", "Collections": ["Users"], "ApplyToAllDocuments": true, "Script": ""}]}),
            "not both",
        ),
        (
            json!({"Name": "t", "ConnectionStringName": "dst", "Transforms": [
            {"Name": "a", "Collections": [], "Script": ""}]}),
            "name the collections",
        ),
        (
            json!({"Name": "t", "ConnectionStringName": "dst", "Transforms": [
            {"Name": "a", "Collections": ["Users"], "Script": "loadToPeople({Name: this.Name};\nvar x = 1;"}]}),
            "line 1",
        ),
        (
            json!({"Name": "", "ConnectionStringName": "dst", "Transforms": [
            {"Name": "a", "Collections": ["Users"], "Script": ""}]}),
            "must not be empty",
        ),
        (
            json!({"Name": "t", "ConnectionStringName": "dst", "Transforms": [{"Name": "a", "Collections": ["Users"],
            "Script": "function deleteDocumentsOfOrdersBehavior(id) { return false; }"}]}),
            "not one of the transformation's collections",
        ),
        (
            json!({"Name": "t", "ConnectionStringName": "dst", "Transforms": [{"Name": "a", "Collections": ["Users"],
            "Script": "function deleteDocumentsOfUsersBehavior(id) { return false; }"}]}),
            "No `loadTo<CollectionName>()` method call found in 'a' script",
        ),
        (
            json!({"Name": "t", "ConnectionStringName": "dst", "Transforms": [{"Name": "a", "Collections": ["Users"],
            "Script": "this.Total = 10;"}]}),
            "No `loadTo<CollectionName>()` method call found in 'a' script",
        ),
        (
            json!({"Name": "t\u{0}x", "ConnectionStringName": "dst", "Transforms": [
            {"Name": "a", "Collections": ["Users"], "Script": ""}]}),
            "control character U+0000",
        ),
        (
            json!({"Name": "t".repeat(10_000), "ConnectionStringName": "dst", "Transforms": [
            {"Name": "a", "Collections": ["Users"], "Script": ""}]}),
            "longer than 256 characters",
        ),
        (
            json!({"Name": "t", "ConnectionStringName": "dst", "Transforms": [
            {"Name": "a\u{202E}b", "Collections": ["Users"], "Script": ""}]}),
            "U+202E",
        ),
    ];
    for (config, expected) in cases {
        let (status, body) = send("PUT", &url, Some(config.clone())).await;
        assert_eq!(status, 400, "{config} → {body}");
        let message = body["Message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{config}: {message:?} should mention {expected:?}"
        );
    }
    let (_, tasks) = send("GET", &format!("{}/databases/src/tasks", server.url), None).await;
    assert_eq!(tasks["OngoingTasksList"].as_array().unwrap().len(), 0);
    let (status, _) = send("PUT", &url, Some(json!([1, 2]))).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_listed_toggled_updated_and_deleted() {
    let server = start().await;
    let src = database(&server, "src").await;
    let dst = database(&server, "dst").await;
    add_connection_string(&server, "src", "dst", &[&server.url], "dst").await;
    let task_id = add_task(&server, "src", task("copy", &["Users"], "")).await;
    let info = |id: u64| {
        let url = format!("{}/databases/src/task?key={id}&type=RavenEtl", server.url);
        async move { send("GET", &url, None).await }
    };
    let (status, body) = info(task_id).await;
    assert_eq!(status, 200);
    assert_eq!(body["TaskName"], "copy");
    assert_eq!(body["TaskType"], "RavenEtl");
    assert_eq!(body["TaskState"], "Enabled");
    assert_eq!(body["DestinationDatabase"], "dst");

    let (status, body) = send(
        "POST",
        &format!(
            "{}/databases/src/admin/tasks/state?key={task_id}&type=RavenEtl&disable=true",
            server.url
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(info(task_id).await.1["TaskState"], "Disabled");
    put(&src, "users/1", user("Ann", 30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        dst.get("users/1").await.unwrap().is_none(),
        "a disabled task moves nothing"
    );
    send(
        "POST",
        &format!(
            "{}/databases/src/admin/tasks/state?key=0&type=RavenEtl&disable=false&taskName=copy",
            server.url
        ),
        None,
    )
    .await;
    eventually("the enabled task to catch up", || async {
        dst.get("users/1").await.unwrap().is_some()
    })
    .await;

    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl?id={task_id}", server.url),
        Some(task(
            "copy",
            &["Users"],
            "loadToUsers({Name: this.First + '!'});",
        )),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new_id = body["TaskId"].as_u64().unwrap();
    assert_ne!(
        new_id, task_id,
        "an update replaces the task, as in RavenDB"
    );
    put(&src, "users/2", user("Bob", 30)).await;
    eventually("the updated script", || async {
        dst.get("users/2")
            .await
            .unwrap()
            .is_some_and(|it| it["Name"] == "Bob!")
    })
    .await;

    let (status, _) = send(
        "DELETE",
        &format!(
            "{}/databases/src/admin/tasks?id={new_id}&type=RavenEtl",
            server.url
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(info(new_id).await.0, 404);
    put(&src, "users/3", user("Cy", 30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        dst.get("users/3").await.unwrap().is_none(),
        "a deleted task moves nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_endpoint_shows_the_commands_without_sending_them() {
    let server = start().await;
    let src = database(&server, "src").await;
    put(&src, "users/1", user("Ann", 30)).await;
    let config = json!({
        "Name": "t", "ConnectionStringName": "", "Transforms": [{"Name": "s", "Collections": ["Users"],
        "Script": "output('hello', this.First); loadToPeople({Name: this.First}); loadToUsers({Name: this.First});\n\
                   function deleteDocumentsOfUsersBehavior(id, deleted) { output('delete', id, deleted); return true; }"}],
    });
    let url = format!("{}/databases/src/admin/etl/raven/test", server.url);
    let (status, body) = send(
        "POST",
        &url,
        Some(json!({"DocumentId": "users/1", "IsDelete": false, "Configuration": config})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let commands = body["Commands"].as_array().unwrap();
    assert_eq!(commands.len(), 3, "{body}");
    assert_eq!(commands[0]["Type"], "DELETE");
    assert_eq!(commands[0]["IdPrefixed"], true);
    assert_eq!(commands[0]["Id"], "users/1/people/");
    assert_eq!(commands[1]["Type"], "PUT");
    assert_eq!(commands[1]["Id"], "users/1/people/");
    assert_eq!(
        commands[1]["Document"]["@metadata"]["@collection"],
        "People"
    );
    assert_eq!(commands[2]["Id"], "users/1");
    assert!(
        body["DebugOutput"]
            .as_array()
            .unwrap()
            .iter()
            .any(|it| it == "hello Ann"),
        "{body}"
    );

    let (status, body) = send(
        "POST",
        &url,
        Some(json!({"DocumentId": "users/1", "IsDelete": true, "Configuration": config})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let types: Vec<&str> = body["Commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["Type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["DELETE", "DELETE"], "{body}");
    assert!(
        src.get("users/1").await.unwrap().is_some(),
        "testing a delete deletes nothing"
    );

    let (status, _) = send(
        "POST",
        &url,
        Some(json!({"DocumentId": "users/404", "IsDelete": false, "Configuration": config})),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_attachments_reach_documents_loaded_to_another_collection() {
    let server = start().await;
    let src = database(&server, "src").await;
    let _dst = database(&server, "dst").await;
    add_connection_string(&server, "src", "dst", &[&server.url], "dst").await;
    put(&src, "users/1", user("Ann", 30)).await;
    src.put_attachment(
        "users/1",
        "photo.png",
        "image/png",
        bytes::Bytes::from_static(b"png"),
    )
    .await
    .unwrap();
    add_task(
        &server,
        "src",
        task("avatars", &["Users"], "loadToPeople({Name: this.First}).addAttachment('avatar.png', loadAttachment('photo.png'));"),
    )
    .await;
    eventually("the person with the avatar", || async {
        docs_starting_with(&server, "dst", "users/1/people/")
            .await
            .first()
            .is_some_and(|it| it["@metadata"]["@attachments"][0]["Name"] == "avatar.png")
    })
    .await;
    let (_, stats) = send(
        "GET",
        &format!("{}/databases/src/etl/stats", server.url),
        None,
    )
    .await;
    assert_eq!(
        stats["Results"][0]["Stats"][0]["Statistics"]["Load"]["Errors"], 0,
        "{stats}"
    );
}

/// A batch split between transform threads comes back whole and in order: every document
/// arrives once, filters and script errors count per document, later versions win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_batches_transformed_in_parallel_arrive_whole() {
    let source = start().await;
    let src = database(&source, "src").await;
    let dst = database(&source, "dst").await;
    add_connection_string(&source, "src", "dst", &[&source.url], "dst").await;
    put_users(&src, 3000, "U").await;
    // Ages 0..3000: odd ages are filtered, multiples of 100 throw.
    let script = "if (this.Age % 100 === 0) throw new Error('boom ' + this.Age);
                  if (this.Age % 2 === 1) return;
                  loadToPeople({Age: this.Age});";
    add_task(&source, "src", task("parallel", &["Users"], script)).await;
    let expected = (0..3000u32)
        .filter(|it| it % 2 == 0 && it % 100 != 0)
        .count() as u64;
    eventually("every even, non-throwing user", || async {
        collection_count(&source, "dst", "People").await == expected
    })
    .await;
    // The statistics follow the load's acknowledgement.
    let stats = || async {
        let (_, stats) = send(
            "GET",
            &format!("{}/databases/src/etl/stats", source.url),
            None,
        )
        .await;
        stats["Results"][0]["Stats"][0]["Statistics"].clone()
    };
    eventually("every user counted as extracted", || async {
        stats().await["Extracted"] == 3000
    })
    .await;
    assert_eq!(stats().await["Transformation"]["Errors"], 30);
    // One copy per user, with its own age: nothing mixed up between the threads' parts.
    for idx in [2u32, 998, 1502, 2998] {
        let people = docs_starting_with(&source, "dst", &format!("users/{idx}/people/")).await;
        assert_eq!(people.len(), 1, "users/{idx}");
        assert_eq!(people[0]["Age"], idx);
    }
    let _ = dst;
}

/// The commands of every successful batch so far, from `/etl/performance`.
async fn commands_sent(server: &Server, db: &str) -> u64 {
    let (_, body) = send(
        "GET",
        &format!("{}/databases/{db}/etl/performance", server.url),
        None,
    )
    .await;
    let batches = body["Results"][0]["Stats"][0]["Performance"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    batches
        .iter()
        .filter(|it| it["Successfully"] == true)
        .map(|it| it["NumberOfCommands"].as_u64().unwrap())
        .sum()
}

/// Waits until the source's successful batches sent `n` commands in all; shows the count on
/// a timeout.
async fn commands_become(server: &Server, n: u64) {
    let arrived = common::live::wait_for(Duration::from_secs(10), || async {
        commands_sent(server, "src").await == n
    })
    .await;
    assert!(
        arrived,
        "{} commands sent, expected {n}",
        commands_sent(server, "src").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_documents_skip_the_delete_by_prefix_where_the_destination_holds_nothing() {
    let server = start().await;
    let src = database(&server, "src").await;
    let _dst = database(&server, "dst").await;
    add_connection_string(&server, "src", "dst", &[&server.url], "dst").await;
    let task_id = add_task(
        &server,
        "src",
        task(
            "people",
            &["Users"],
            "loadToPeople({Name: this.First, Age: this.Age});",
        ),
    )
    .await;
    for idx in 0..10 {
        put(&src, &format!("users/{idx}"), user(&format!("U{idx}"), idx)).await;
    }
    eventually("ten people", || async {
        collection_count(&server, "dst", "People").await == 10
    })
    .await;
    // One PUT per new user, no delete-by-prefix: People was empty. (The statistics are
    // recorded just after the destination acknowledged.)
    commands_become(&server, 10).await;

    // An update needs its delete; its person is replaced, not added.
    put(&src, "users/1", user("changed", 99)).await;
    eventually("the update", || async {
        let people = docs_starting_with(&server, "dst", "users/1/people/").await;
        people.len() == 1 && people[0]["Name"] == "changed"
    })
    .await;
    commands_become(&server, 12).await;

    // Deleted and created again while the task is off: one batch holds the tombstone and the
    // new document, and the old person still goes.
    set_task_disabled(&server, "src", task_id, "RavenEtl", true).await;
    src.delete("users/2", None).await.unwrap();
    put(&src, "users/2", user("again", 2)).await;
    set_task_disabled(&server, "src", task_id, "RavenEtl", false).await;
    eventually("the new person of users/2", || async {
        let people = docs_starting_with(&server, "dst", "users/2/people/").await;
        people.len() == 1 && people[0]["Name"] == "again"
    })
    .await;
    assert_eq!(collection_count(&server, "dst", "People").await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_a_destination_already_holds_are_replaced_not_duplicated() {
    let server = start().await;
    let src = database(&server, "src").await;
    let dst = database(&server, "dst").await;
    add_connection_string(&server, "src", "dst", &[&server.url], "dst").await;
    // Left by an earlier task that was deleted: the new task cannot know these are its own.
    dst.bulk_docs(&[Command::Put {
        id: "users/1/people/0000000000000000001-A".to_owned(),
        document: json!({"Name": "stale", "@metadata": {"@collection": "People"}}),
        change_vector: None,
    }])
    .await
    .unwrap();
    for idx in 0..3 {
        put(&src, &format!("users/{idx}"), user(&format!("U{idx}"), idx)).await;
    }
    add_task(
        &server,
        "src",
        task("people", &["Users"], "loadToPeople({Name: this.First});"),
    )
    .await;
    eventually("the stale person replaced", || async {
        let people = docs_starting_with(&server, "dst", "users/1/people/").await;
        people.len() == 1 && people[0]["Name"] == "U1"
    })
    .await;
    eventually("three people", || async {
        collection_count(&server, "dst", "People").await == 3
    })
    .await;
    // A delete before each PUT.
    commands_become(&server, 6).await;
}

/// A TCP proxy to `target` that, while `swallow` is set, passes requests on and closes the
/// connection instead of passing the answer back: the destination applies a batch the source
/// never hears about.
struct SwallowingProxy {
    url: String,
    swallow: Arc<std::sync::atomic::AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl SwallowingProxy {
    async fn start(target: &str) -> SwallowingProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let swallow = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (target, flag) = (target.to_owned(), swallow.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (target, flag) = (target.clone(), flag.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = inbound.into_split();
                    let (mut server_read, mut server_write) = outbound.into_split();
                    let requests = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    });
                    let mut buffer = vec![0u8; 64 * 1024];
                    loop {
                        let n = match server_read.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if flag.load(std::sync::atomic::Ordering::SeqCst) {
                            break;
                        }
                        if client_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    requests.abort();
                });
            }
        });
        SwallowingProxy {
            url,
            swallow,
            accept,
        }
    }

    fn swallow(&self, on: bool) {
        self.swallow.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for SwallowingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn people_of(server: &Server, user: &str) -> usize {
    docs_starting_with(server, "dst", &format!("{user}/people/"))
        .await
        .len()
}

/// A batch the destination applied but never acknowledged is sent again with its deletes,
/// by the same process and after a restart: the new documents in it are not new any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_applied_but_not_acknowledged_is_not_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open(dir.path()).unwrap());
    let server = start_on(0, storage.clone(), None).await;
    let proxy = SwallowingProxy::start(server.url.trim_start_matches("http://")).await;
    // Three people arrived: People is owned.
    let src = people_from_users(&server, &proxy.url, 3).await;

    proxy.swallow(true);
    for idx in 10..13 {
        put(&src, &format!("users/{idx}"), user("new", idx)).await;
    }
    eventually("the unacknowledged batch applied", || async {
        collection_count(&server, "dst", "People").await >= 6
    })
    .await;
    // Retries every 200 ms to 1 s, each applied and unanswered.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for idx in 10..13 {
        assert_eq!(
            people_of(&server, &format!("users/{idx}")).await,
            1,
            "users/{idx}"
        );
    }

    // A restart while the batch is unacknowledged: the retry still deletes first.
    let port = server.port;
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let server = start_on(port, storage.clone(), Some(dir)).await;
    proxy.swallow(false);
    // The retry acknowledged.
    wait_until_caught_up(&server, "src").await;
    for idx in (0..3).chain(10..13) {
        assert_eq!(
            people_of(&server, &format!("users/{idx}")).await,
            1,
            "users/{idx}"
        );
    }
    assert_eq!(collection_count(&server, "dst", "People").await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_progress_and_performance_show_only_the_tasks_named() {
    let server = start().await;
    people_from_users(&server, &server.url, 3).await;
    add_task(
        &server,
        "src",
        task("names", &["Users"], "loadToNames({Name: this.First});"),
    )
    .await;
    for endpoint in ["stats", "progress", "performance"] {
        let url = format!("{}/databases/src/etl/{endpoint}", server.url);
        let (_, all) = send("GET", &url, None).await;
        let (_, named) = send("GET", &format!("{url}?name=NAMES"), None).await;
        let (_, both) = send("GET", &format!("{url}?name=names&name=people"), None).await;
        let names = |answer: &Value| -> Vec<String> {
            let mut names: Vec<String> = answer["Results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|it| it["TaskName"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&all), ["names", "people"], "{endpoint}: {all}");
        assert_eq!(names(&named), ["names"], "{endpoint}: {named}");
        assert_eq!(names(&both), ["names", "people"], "{endpoint}: {both}");
    }
}

/// An HTTP proxy to `target` that holds every `bulk_docs` request for a while (a request that
/// overlaps another for less) and records how many were under way at once.
struct CountingProxy {
    url: String,
    most_at_once: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// With `fail_overlapped`, the first request that another one overlapped is answered
    /// with an error instead of being passed on (the other one was passed on and applied).
    async fn start(target: &str, hold: Duration, fail_overlapped: bool) -> CountingProxy {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let under_way = Arc::new(AtomicUsize::new(0));
        let most_at_once = Arc::new(AtomicUsize::new(0));
        let (target, most) = (target.to_owned(), most_at_once.clone());
        let failed = Arc::new(AtomicBool::new(!fail_overlapped));
        let arrivals = Arc::new(AtomicUsize::new(0));
        let http = corvid_client::http_client_builder().build().unwrap();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (target, http, under_way, most, failed, arrivals) = (
                target.clone(),
                http.clone(),
                under_way.clone(),
                most.clone(),
                failed.clone(),
                arrivals.clone(),
            );
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let bulk = parts.uri.path().ends_with("/bulk_docs");
                if bulk {
                    let now = under_way.fetch_add(1, Ordering::SeqCst) + 1;
                    let arrived = arrivals.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // The first of two overlapping requests is held longer: the second is
                    // applied first.
                    let hold = if now == 1 { hold } else { hold / 6 };
                    tokio::time::sleep(hold).await;
                    // Another request arrived while this one was held.
                    if now == 1
                        && arrivals.load(Ordering::SeqCst) > arrived
                        && !failed.swap(true, Ordering::SeqCst)
                    {
                        under_way.fetch_sub(1, Ordering::SeqCst);
                        let error = json!({"Type": "Test", "Message": "refused by the proxy"});
                        return (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            axum::body::Bytes::from(error.to_string()),
                        );
                    }
                }
                let answer = http
                    .request(parts.method, format!("{target}{}", parts.uri))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = answer.status();
                let bytes = answer.bytes().await.unwrap();
                if bulk {
                    under_way.fetch_sub(1, Ordering::SeqCst);
                }
                (status, bytes)
            }
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        CountingProxy {
            url,
            most_at_once,
            task,
        }
    }

    fn most_at_once(&self) -> usize {
        self.most_at_once.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Small batches through a slow destination that applies overlapping requests out of order:
/// with two loads allowed, batches that only write overlap; documents updated again and again
/// while the ETL runs still end in their latest version, once each. With one load allowed,
/// loads never overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raven_loads_overlap_and_every_document_arrives_once_in_its_latest_version() {
    // Into another collection (updates come with deletes, which never overlap), and copied
    // as they are into the same collection (plain PUTs, which overlap unless they write the
    // same document).
    // New documents into People overlap; a few documents updated again and again keep the
    // copying process working through batches that hold versions of the same documents.
    let to_people = ("loadToPeople({First: this.First});", "People", 300, 10, 20);
    let copied = ("", "Users", 60, 20, 60);
    for (loads_in_flight, (script, collection, n, n_updated, rounds)) in
        [(2, to_people), (2, copied), (1, copied)]
    {
        let server = start_with_options(corvid_etl::EtlOptions {
            max_batch_items: 25,
            raven_loads_in_flight: loads_in_flight,
            ..etl_options()
        })
        .await;
        let proxy = CountingProxy::start(&server.url, Duration::from_millis(60), false).await;
        let src = database(&server, "src").await;
        database(&server, "dst").await;
        add_connection_string(&server, "src", "dst", &[&proxy.url], "dst").await;
        put_users(&src, n, "V0").await;
        add_task(&server, "src", task("people", &["Users"], script)).await;
        // Updates while batches are under way: a document is then often in two batches one
        // after the other.
        for round in 1..=rounds {
            put_users(&src, n_updated, &format!("V{round}")).await;
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        let latest = format!("V{rounds}");
        eventually("every person in its latest version", || async {
            let (_, body) = send(
                "GET",
                &format!(
                    "{}/databases/dst/docs?startsWith=users%2F&pageSize=1000",
                    server.url
                ),
                None,
            )
            .await;
            let people = body["Results"].as_array().cloned().unwrap_or_default();
            people.len() == n as usize
                && people.iter().all(|it| {
                    let idx: u32 = it["@metadata"]["@id"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("users/")
                        .split('/')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    it["First"]
                        == if idx < n_updated {
                            latest.as_str()
                        } else {
                            "V0"
                        }
                })
        })
        .await;
        assert_eq!(
            collection_count(&server, "dst", collection).await,
            u64::from(n)
        );
        if loads_in_flight == 2 {
            assert_eq!(proxy.most_at_once(), 2, "the loads never overlapped");
        } else {
            assert_eq!(proxy.most_at_once(), 1);
        }
    }
}

/// The first of two overlapping batches fails after the second was applied: both are sent
/// again, the second with its deletes, and every document is at the destination once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_and_the_one_sent_after_it_are_sent_again_without_duplicates() {
    let server = start_with_options(corvid_etl::EtlOptions {
        max_batch_items: 25,
        ..etl_options()
    })
    .await;
    let proxy = CountingProxy::start(&server.url, Duration::from_millis(60), true).await;
    let src = database(&server, "src").await;
    database(&server, "dst").await;
    add_connection_string(&server, "src", "dst", &[&proxy.url], "dst").await;
    let n: u32 = 300;
    put_users(&src, n, "U").await;
    add_task(
        &server,
        "src",
        task("people", &["Users"], "loadToPeople({First: this.First});"),
    )
    .await;
    eventually("every person", || async {
        collection_count(&server, "dst", "People").await >= u64::from(n)
    })
    .await;
    // Settled: the retried batches are all delivered, none twice.
    wait_until_caught_up(&server, "src").await;
    assert_eq!(proxy.most_at_once(), 2, "the loads never overlapped");
    let (_, stats) = send(
        "GET",
        &format!("{}/databases/src/etl/stats", server.url),
        None,
    )
    .await;
    let statistics = &stats["Results"][0]["Stats"][0]["Statistics"];
    assert!(
        statistics["LoadErrors"].as_u64().unwrap_or(0) >= 1
            || statistics["LastLoadError"].is_string(),
        "the refused batch was not reported: {statistics}"
    );
    assert_eq!(
        collection_count(&server, "dst", "People").await,
        u64::from(n)
    );
}

async fn tombstone_count(server: &Server, db: &str) -> u64 {
    let (_, stats) = send("GET", &format!("{}/databases/{db}/stats", server.url), None).await;
    stats["CountOfTombstones"].as_u64().unwrap()
}

/// A tombstone goes once every task that processes its collection has processed it (a
/// disabled task too: it resumes from its progress); deletes still arrive after purges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_are_purged_once_every_task_has_processed_them() {
    let server = start_with_options(corvid_etl::EtlOptions {
        tombstone_cleanup_interval: Duration::from_millis(50),
        ..etl_options()
    })
    .await;
    let src = database(&server, "src").await;
    let dst = database(&server, "dst").await;
    add_connection_string(&server, "src", "dst", &[&server.url], "dst").await;
    let order = json!({"Total": 1, "@metadata": {"@collection": "Orders"}});
    for it in 1..=3 {
        put(&src, &format!("users/{it}"), user("Ann", it)).await;
    }
    put(&src, "orders/1", order.clone()).await;
    put(&src, "orders/2", order.clone()).await;
    put(
        &src,
        "notes/1",
        json!({"@metadata": {"@collection": "Notes"}}),
    )
    .await;
    add_task(&server, "src", task("users", &["Users"], "")).await;
    let mut orders = task("orders", &["Orders"], "");
    orders["Disabled"] = json!(true);
    let orders_id = add_task(&server, "src", orders).await;
    eventually("the users copied", || async {
        collection_count(&server, "dst", "Users").await == 3
    })
    .await;
    for id in ["users/1", "users/2", "orders/1", "notes/1"] {
        src.delete(id, None).await.unwrap();
    }
    eventually("the deletes arrived", || async {
        collection_count(&server, "dst", "Users").await == 1
    })
    .await;
    // Notes: no task; Users: processed; Orders: the disabled task has not processed it.
    eventually("all tombstones but orders/1's purged", || async {
        tombstone_count(&server, "src").await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tombstone_count(&server, "src").await, 1);

    set_task_disabled(&server, "src", orders_id, "RavenEtl", false).await;
    eventually(
        "orders/2 copied and orders/1's tombstone purged",
        || async {
            dst.get("orders/2").await.unwrap().is_some()
                && tombstone_count(&server, "src").await == 0
        },
    )
    .await;
    assert!(dst.get("orders/1").await.unwrap().is_none());

    // A disabled task of all documents keeps every tombstone after its progress.
    let mut everything = task("everything", &[], "");
    everything["Disabled"] = json!(true);
    everything["Transforms"][0]["ApplyToAllDocuments"] = json!(true);
    add_task(&server, "src", everything).await;
    src.delete("users/3", None).await.unwrap();
    eventually("the delete after purges arrived", || async {
        dst.get("users/3").await.unwrap().is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tombstone_count(&server, "src").await, 1);
}
