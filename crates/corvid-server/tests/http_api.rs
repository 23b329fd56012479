//! The HTTP API's happy paths: the exact JSON shapes and headers RavenDB's official clients need.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::{DB, TestApp, assert_error, encode, multipart_batch, put_command, user};

const CONCURRENCY: &str = "Raven.Client.Exceptions.ConcurrencyException";

fn docs_uri(id: &str) -> String {
    format!("/databases/{DB}/docs?id={}", encode(id))
}

fn bulk_uri() -> String {
    format!("/databases/{DB}/bulk_docs")
}

/// Returns the keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Checks RavenDB's timestamp format: `2026-11-23T19:05:50.2788050Z`.
#[track_caller]
fn assert_raven_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    let bytes = text.as_bytes();
    assert_eq!(bytes.len(), 28, "{text}");
    for (idx, byte) in bytes.iter().enumerate() {
        let expected_ok = match idx {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            19 => *byte == b'.',
            27 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        };
        assert!(
            expected_ok,
            "unexpected {:?} at {idx} in {text}",
            *byte as char
        );
    }
}

/// Returns the ids of the documents in `Results`, in order.
fn result_ids(body: &Value) -> Vec<String> {
    body["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["@metadata"]["@id"].as_str().unwrap().to_owned())
        .collect()
}

/// Returns a `Users` app with Ann (30), bob (25), Cid (40) and Dan (25), in that etag order, and
/// one order.
async fn app_with_users() -> TestApp {
    let app = TestApp::new();
    for (idx, (name, age)) in [("Ann", 30), ("bob", 25), ("Cid", 40), ("Dan", 25)]
        .into_iter()
        .enumerate()
    {
        app.put_doc(&format!("users/{}", idx + 1), user(name, age))
            .await;
    }
    app.put_doc(
        "orders/1",
        json!({"Total": 5, "@metadata": {"@collection": "Orders"}}),
    )
    .await;
    app
}

#[tokio::test]
async fn put_answers_201_with_id_and_change_vector() {
    let app = TestApp::new();
    let reply = app
        .send_json("PUT", &docs_uri("users/1"), &user("Ann", 30))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let body = reply.json();
    assert_eq!(keys(&body), ["ChangeVector", "Id"]);
    assert_eq!(body["Id"], "users/1");
    assert!(!body["ChangeVector"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn get_returns_the_document_with_server_metadata() {
    let app = TestApp::new();
    let sent = json!({
        "Name": "Ann",
        "Age": 30,
        "Tags": ["a", "b"],
        "Address": {"City": "Oslo"},
        "@metadata": {
            "@collection": "Users",
            "Raven-Python-Type": "__main__.User",
            "@id": "stale/id",
            "@change-vector": "A:999-stale",
            "@last-modified": "2000-01-01T00:00:00.0000000Z",
        },
    });
    let change_vector = app.put_doc("Users/1-A", sent).await;
    let reply = app
        .get(&format!("/databases/{DB}/docs?&id=users%2F1-a"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.etag().is_some());
    let body = reply.json();
    assert_eq!(keys(&body), ["Includes", "Results"]);
    assert_eq!(body["Includes"], json!({}));
    let results = body["Results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let doc = &results[0];
    assert_eq!(doc["Name"], "Ann");
    assert_eq!(doc["Age"], 30);
    assert_eq!(doc["Tags"], json!(["a", "b"]));
    assert_eq!(doc["Address"], json!({"City": "Oslo"}));
    let metadata = &doc["@metadata"];
    assert_eq!(
        keys(metadata),
        [
            "@change-vector",
            "@collection",
            "@id",
            "@last-modified",
            "Raven-Python-Type"
        ]
    );
    assert_eq!(metadata["@id"], "Users/1-A");
    assert_eq!(metadata["@collection"], "Users");
    assert_eq!(metadata["Raven-Python-Type"], "__main__.User");
    assert_eq!(metadata["@change-vector"], change_vector.as_str());
    assert_raven_timestamp(&metadata["@last-modified"]);
    assert_ne!(metadata["@last-modified"], "2000-01-01T00:00:00.0000000Z");
}

#[tokio::test]
async fn ids_are_case_insensitive_and_keep_the_case_first_written() {
    let app = TestApp::new();
    app.put_doc("Users/1-A", user("Ann", 30)).await;
    let change_vector = app.put_doc("USERS/1-a", user("Ann", 31)).await;
    for id in ["users/1-a", "USERS/1-A", "Users/1-A"] {
        let doc = app.get_doc(id).await.unwrap();
        assert_eq!(doc["@metadata"]["@id"], "Users/1-A");
        assert_eq!(doc["@metadata"]["@change-vector"], change_vector.as_str());
        assert_eq!(doc["Age"], 31);
    }
    assert_eq!(app.db_state().await.n_docs, 1);
}

#[tokio::test]
async fn multi_id_get_puts_null_in_the_slot_of_a_missing_document() {
    let app = app_with_users().await;
    let reply = app
        .get(&format!(
            "/databases/{DB}/docs?&id=users%2F2&id=users%2F404&id=users%2F1"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    let results = body["Results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["@metadata"]["@id"], "users/2");
    assert_eq!(results[1], Value::Null);
    assert_eq!(results[2]["@metadata"]["@id"], "users/1");
}

#[tokio::test]
async fn single_missing_id_is_404() {
    let app = app_with_users().await;
    let reply = app.get(&docs_uri("users/404")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn get_docs_answers_304_until_the_document_changes() {
    let app = app_with_users().await;
    let uri = format!("/databases/{DB}/docs?&id=users%2F1&id=users%2F2");
    let first = app.get(&uri).await;
    assert_eq!(first.status, StatusCode::OK);
    let first_etag = first.header("ETag").unwrap().to_owned();
    let cached = app
        .send("GET", &uri, "", &[("If-None-Match", &first_etag)])
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.body.is_empty());

    app.put_doc("users/2", user("Bob", 26)).await;
    let changed = app
        .send("GET", &uri, "", &[("If-None-Match", &first_etag)])
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    let changed_etag = changed.header("ETag").unwrap().to_owned();
    assert_ne!(changed_etag, first_etag);
    assert_eq!(changed.json()["Results"][1]["Age"], 26);
    let cached = app
        .send("GET", &uri, "", &[("If-None-Match", &changed_etag)])
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn get_docs_etag_changes_when_a_missing_document_appears() {
    let app = app_with_users().await;
    let uri = format!("/databases/{DB}/docs?&id=users%2F1&id=users%2F9");
    let first = app.get(&uri).await;
    let first_etag = first.header("ETag").unwrap().to_owned();
    app.put_doc("users/9", user("Ivy", 9)).await;
    let reply = app
        .send("GET", &uri, "", &[("If-None-Match", &first_etag)])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["Results"][1]["Name"], "Ivy");
}

#[tokio::test]
async fn head_docs_answers_the_change_vector_as_etag_or_404() {
    let app = TestApp::new();
    let change_vector = app.put_doc("users/1", user("Ann", 30)).await;
    let reply = app.send("HEAD", &docs_uri("USERS/1"), "", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("ETag"),
        Some(format!("\"{change_vector}\"").as_str())
    );
    assert!(reply.body.is_empty());
    let reply = app.send("HEAD", &docs_uri("users/404"), "", &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.header("ETag").is_none());
}

#[tokio::test]
async fn post_docs_loads_the_ids_in_the_body() {
    let app = app_with_users().await;
    let uri = format!("/databases/{DB}/docs?&loadHash=0123abcd");
    let reply = app
        .send_json(
            "POST",
            &uri,
            &json!({"Ids": ["users/3", "users/404", "USERS/1"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    let results = body["Results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["Name"], "Cid");
    assert_eq!(results[1], Value::Null);
    assert_eq!(results[2]["@metadata"]["@id"], "users/1");
}

#[tokio::test]
async fn post_docs_with_no_ids_returns_no_results() {
    let app = app_with_users().await;
    let uri = format!("/databases/{DB}/docs");
    let reply = app.send_json("POST", &uri, &json!({"Ids": []})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["Results"], json!([]));
}

#[tokio::test]
async fn get_docs_starts_with_lists_by_prefix() {
    let app = app_with_users().await;
    let reply = app
        .get(&format!(
            "/databases/{DB}/docs?&startsWith=users%2F&start=1&pageSize=2"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(result_ids(&reply.json()), ["users/2", "users/3"]);
}

#[tokio::test]
async fn put_with_the_current_change_vector_succeeds() {
    let app = TestApp::new();
    let change_vector = app.put_doc("users/1", user("Ann", 30)).await;
    let reply = app
        .send(
            "PUT",
            &docs_uri("users/1"),
            user("Ann", 31).to_string(),
            &[("If-Match", &format!("\"{change_vector}\""))],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_ne!(reply.json()["ChangeVector"], change_vector.as_str());
    // `""` means "must not exist yet".
    let reply = app
        .send(
            "PUT",
            &docs_uri("users/2"),
            user("Bob", 1).to_string(),
            &[("If-Match", "\"\"")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}

#[tokio::test]
async fn delete_docs_answers_204_whether_or_not_the_document_existed() {
    let app = TestApp::new();
    let change_vector = app.put_doc("users/1", user("Ann", 30)).await;
    let reply = app
        .send(
            "DELETE",
            &docs_uri("users/1"),
            "",
            &[("If-Match", &format!("\"{change_vector}\""))],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get_doc("users/1").await, None);
    let reply = app.send("DELETE", &docs_uri("users/1"), "", &[]).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let state = app.db_state().await;
    assert_eq!((state.n_docs, state.n_tombstones), (0, 1));
}

#[tokio::test]
async fn bulk_docs_results_have_the_shapes_the_session_reads() {
    let app = TestApp::new();
    for id in ["users/1", "users/2", "temp/1", "temp/2", "tempest/1"] {
        app.put_doc(id, user("x", 1)).await;
    }
    let body = json!({"Commands": [
        put_command("users/3", user("Cid", 40)),
        {"Id": "users/1", "ChangeVector": null, "Type": "DELETE", "OriginalChangeVector": "A:1-x"},
        {"Id": "users/404", "ChangeVector": null, "Type": "DELETE"},
        {"Id": "temp/", "Type": "DELETE", "IdPrefixed": true},
    ]});
    let reply = app
        .send_json("POST", &format!("{}?", bulk_uri()), &body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let body = reply.json();
    assert_eq!(keys(&body), ["Results"]);
    let results = body["Results"].as_array().unwrap();
    assert_eq!(results.len(), 4);

    let put = &results[0];
    assert_eq!(put["Type"], "PUT");
    assert_eq!(put["@id"], "users/3");
    assert_eq!(put["@collection"], "Users");
    assert_raven_timestamp(&put["@last-modified"]);
    assert!(put.get("TransactionIndex").is_none());
    let stored = app.get_doc("users/3").await.unwrap();
    assert_eq!(stored["@metadata"]["@change-vector"], put["@change-vector"]);
    assert_eq!(stored["Name"], "Cid");

    let deleted = &results[1];
    assert_eq!(deleted["Type"], "DELETE");
    assert_eq!(deleted["Id"], "users/1");
    assert_eq!(deleted["Deleted"], true);
    assert!(deleted["ChangeVector"].is_string());
    let missing = &results[2];
    assert_eq!(missing["Type"], "DELETE");
    assert_eq!(missing["Id"], "users/404");
    assert_eq!(missing["Deleted"], false);
    let prefixed = &results[3];
    assert_eq!(prefixed["Type"], "DELETE");
    assert_eq!(prefixed["Id"], "temp/");
    assert_eq!(prefixed["Deleted"], true);

    assert_eq!(app.get_doc("users/1").await, None);
    assert_eq!(app.get_doc("temp/1").await, None);
    assert_eq!(app.get_doc("temp/2").await, None);
    assert!(app.get_doc("tempest/1").await.is_some());
    assert!(app.get_doc("users/2").await.is_some());
    assert_eq!(app.db_state().await.n_docs, 3);
}

#[tokio::test]
async fn bulk_docs_put_ignores_stale_server_metadata_sent_back_by_the_session() {
    let app = TestApp::new();
    let first = app.put_doc("users/1", user("Ann", 30)).await;
    let mut loaded = app.get_doc("users/1").await.unwrap();
    loaded["Age"] = json!(31);
    let body = json!({"Commands": [put_command("users/1", loaded)]});
    let reply = app.send_json("POST", &bulk_uri(), &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let new_change_vector = reply.json()["Results"][0]["@change-vector"].clone();
    assert_ne!(new_change_vector, first.as_str());
    let stored = app.get_doc("users/1").await.unwrap();
    assert_eq!(stored["Age"], 31);
    assert_eq!(stored["@metadata"]["@change-vector"], new_change_vector);
}

#[tokio::test]
async fn multipart_bulk_docs_stores_two_attachments() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    let binary: Vec<u8> = (0..=255u8).chain(b"\r\n--".iter().copied()).collect();
    let commands = json!({"Commands": [
        {"Id": "users/1", "Name": "note.txt", "ContentType": "text/plain", "ChangeVector": null,
         "Type": "AttachmentPUT", "RemoteParameters": null, "Hash": null},
        {"Id": "users/1", "Name": "photo.png", "ContentType": "image/png", "ChangeVector": null,
         "Type": "AttachmentPUT", "RemoteParameters": null, "Hash": null},
    ]});
    let (content_type, body) = multipart_batch(
        &commands,
        &[
            ("note.txt", "text/plain", b"hello"),
            ("photo.png", "image/png", &binary),
        ],
    );
    let reply = app
        .send(
            "POST",
            &bulk_uri(),
            body,
            &[("Content-Type", &content_type)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let body = reply.json();
    let results = body["Results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (result, (name, content_type, size)) in results.iter().zip([
        ("note.txt", "text/plain", 5),
        ("photo.png", "image/png", binary.len()),
    ]) {
        assert_eq!(
            keys(result),
            [
                "ChangeVector",
                "ContentType",
                "DocumentChangeVector",
                "Hash",
                "Id",
                "Name",
                "Size",
                "Type"
            ]
        );
        assert_eq!(result["Type"], "AttachmentPUT");
        assert_eq!(result["Id"], "users/1");
        assert_eq!(result["Name"], name);
        assert_eq!(result["ContentType"], content_type);
        assert_eq!(result["Size"], size);
        assert!(!result["Hash"].as_str().unwrap().is_empty());
        assert!(!result["ChangeVector"].as_str().unwrap().is_empty());
    }

    let uri = format!("/databases/{DB}/attachments?id=users%2F1&name=photo.png");
    let reply = app.get(&uri).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.as_ref(), binary.as_slice());
    assert_eq!(reply.header("Content-Type"), Some("image/png"));
    assert_eq!(reply.header("Attachment-Hash"), results[1]["Hash"].as_str());
    assert_eq!(
        reply.header("Attachment-Size"),
        Some(binary.len().to_string().as_str())
    );
    assert_eq!(reply.etag(), results[1]["ChangeVector"].as_str());
    let reply = app
        .get(&format!(
            "/databases/{DB}/attachments?id=users%2F1&name=note.txt"
        ))
        .await;
    assert_eq!(reply.body.as_ref(), b"hello");
    assert_eq!(reply.header("Content-Type"), Some("text/plain"));

    let doc = app.get_doc("users/1").await.unwrap();
    let metadata = &doc["@metadata"];
    assert_eq!(metadata["@flags"], "HasAttachments");
    assert_eq!(
        metadata["@change-vector"],
        results[1]["DocumentChangeVector"]
    );
    let attachments = metadata["@attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    let mut by_name: Vec<&Value> = attachments.iter().collect();
    by_name.sort_by_key(|it| it["Name"].as_str().unwrap().to_owned());
    for (attachment, result) in by_name.iter().zip(results) {
        assert_eq!(keys(attachment), ["ContentType", "Hash", "Name", "Size"]);
        assert_eq!(attachment["Name"], result["Name"]);
        assert_eq!(attachment["Hash"], result["Hash"]);
        assert_eq!(attachment["ContentType"], result["ContentType"]);
        assert_eq!(attachment["Size"], result["Size"]);
    }
}

#[tokio::test]
async fn attachment_put_get_head_and_delete_operations() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    let uri =
        format!("/databases/{DB}/attachments?id=users%2F1&name=a.txt&contentType=text%2Fplain");
    let reply = app.send("PUT", &uri, "hello", &[]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let put = reply.json();
    assert_eq!(
        keys(&put),
        [
            "ChangeVector",
            "ContentType",
            "DocumentId",
            "Hash",
            "Name",
            "Size"
        ]
    );
    assert_eq!(put["Name"], "a.txt");
    assert_eq!(put["ContentType"], "text/plain");
    assert_eq!(put["Size"], 5);
    assert_eq!(put["DocumentId"], "users/1");
    // What RavenDB 4.1 answers for the same five bytes (BLAKE2b-256, base64).
    assert_eq!(put["Hash"], "Mk3PAn3UowqTLEQfNlol6GsXPe+kuOWJSCU0cbgbcs8=");

    let get_uri = format!("/databases/{DB}/attachments?id=users%2F1&name=a.txt");
    let reply = app.send("HEAD", &get_uri, "", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.etag(), put["ChangeVector"].as_str());
    let reply = app.get(&get_uri).await;
    assert_eq!(reply.body.as_ref(), b"hello");
    assert_eq!(reply.header("Attachment-Hash"), put["Hash"].as_str());

    let reply = app.send("DELETE", &get_uri, "", &[]).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = app.send("HEAD", &get_uri, "", &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let doc = app.get_doc("users/1").await.unwrap();
    assert!(doc["@metadata"].get("@flags").is_none());
    assert!(doc["@metadata"].get("@attachments").is_none());
}

/// Checks `prefix` + 19 digits + `-A`, and returns the number.
#[track_caller]
fn generated_number(id: &str, prefix: &str) -> u64 {
    let digits = id
        .strip_prefix(prefix)
        .and_then(|it| it.strip_suffix("-A"))
        .unwrap_or_else(|| panic!("{id} is not {prefix}<19 digits>-A"));
    assert_eq!(digits.len(), 19, "{id}");
    assert!(digits.bytes().all(|it| it.is_ascii_digit()), "{id}");
    digits.parse().unwrap()
}

#[tokio::test]
async fn ids_ending_in_a_slash_are_generated_by_the_server() {
    let app = TestApp::new();
    let reply = app
        .send_json("PUT", &docs_uri("people/"), &json!({"Name": "Ann"}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let first = reply.json()["Id"].as_str().unwrap().to_owned();
    assert_eq!(first, "people/0000000000000000001-A");
    let body = json!({"Commands": [put_command("people/", json!({"Name": "Bob"}))]});
    let reply = app.send_json("POST", &bulk_uri(), &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let second = reply.json()["Results"][0]["@id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(generated_number(&second, "people/") > generated_number(&first, "people/"));
    assert_eq!(app.get_doc(&first).await.unwrap()["Name"], "Ann");
    assert_eq!(app.get_doc(&second).await.unwrap()["Name"], "Bob");
}

#[tokio::test]
async fn ids_ending_in_a_pipe_take_the_next_identity() {
    let app = TestApp::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let reply = app
            .send_json("PUT", &docs_uri("people|"), &json!({"Name": "x"}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        ids.push(reply.json()["Id"].as_str().unwrap().to_owned());
    }
    let body = json!({"Commands": [
        put_command("people|", json!({})),
        put_command("orders|", json!({})),
    ]});
    let reply = app.send_json("POST", &bulk_uri(), &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    for result in reply.json()["Results"].as_array().unwrap() {
        ids.push(result["@id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids, ["people/1", "people/2", "people/3", "orders/1"]);
    assert!(app.get_doc("people/2").await.is_some());
}

#[tokio::test]
async fn hilo_next_hands_out_ranges_that_do_not_overlap() {
    let app = TestApp::new();
    let first_uri = format!(
        "/databases/{DB}/hilo/next?tag=users&lastBatchSize=0&lastRangeAt=&identityPartsSeparator=/&lastMax=0"
    );
    let reply = app.get(&first_uri).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let first = reply.json();
    assert_eq!(
        keys(&first),
        [
            "High",
            "LastRangeAt",
            "LastSize",
            "Low",
            "Prefix",
            "ServerTag"
        ]
    );
    assert_eq!(first["Prefix"], "users/");
    assert_eq!(first["ServerTag"], "A");
    assert_eq!(first["Low"], 1);
    assert_eq!(first["High"], 32);
    assert_eq!(first["LastSize"], 32);
    assert_raven_timestamp(&first["LastRangeAt"]);

    let second_uri = format!(
        "/databases/{DB}/hilo/next?tag=users&lastBatchSize={}&lastRangeAt={}&identityPartsSeparator=/&lastMax={}",
        first["LastSize"],
        encode(first["LastRangeAt"].as_str().unwrap()),
        first["High"],
    );
    let second = app.get(&second_uri).await.json();
    let (low_1, high_1) = (
        first["Low"].as_u64().unwrap(),
        first["High"].as_u64().unwrap(),
    );
    let (low_2, high_2) = (
        second["Low"].as_u64().unwrap(),
        second["High"].as_u64().unwrap(),
    );
    assert!(low_1 <= high_1 && low_2 <= high_2);
    assert!(low_2 > high_1, "{first} then {second}");
    assert_eq!(second["LastSize"].as_u64().unwrap(), high_2 - low_2 + 1);

    let other_tag = app
        .get(&format!("/databases/{DB}/hilo/next?tag=orders"))
        .await
        .json();
    assert_eq!(other_tag["Prefix"], "orders/");
    assert_eq!(other_tag["Low"], 1);
    let reply = app
        .send(
            "PUT",
            &format!("/databases/{DB}/hilo/return?tag=users&end={high_2}&last={low_2}"),
            "",
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let third = app.get(&first_uri).await.json();
    assert!(third["Low"].as_u64().unwrap() > low_2);
}

#[tokio::test]
async fn collection_stats_count_documents_per_collection() {
    let app = app_with_users().await;
    app.put_doc("misc/1", json!({"Loose": true})).await;
    let reply = app.get(&format!("/databases/{DB}/collections/stats")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["CountOfDocuments"], 6);
    assert_eq!(
        body["Collections"],
        json!({"Users": 4, "Orders": 1, "@empty": 1})
    );
    let stats = app.get(&format!("/databases/{DB}/stats")).await.json();
    assert_eq!(stats["CountOfDocuments"], 6);
    assert_eq!(stats["LastDocEtag"], 6);
}

#[tokio::test]
async fn query_from_a_collection_reports_total_results() {
    let app = app_with_users().await;
    let body = app
        .query(json!({"Query": "from 'Users'", "QueryParameters": {}}))
        .await;
    assert_eq!(
        result_ids(&body),
        ["users/1", "users/2", "users/3", "users/4"]
    );
    assert_eq!(body["TotalResults"], 4);
    assert_eq!(body["LongTotalResults"], 4);
    assert_eq!(body["SkippedResults"], 0);
    assert_eq!(body["IsStale"], false);
    assert_eq!(body["IndexName"], "collection/Users");
    assert_eq!(body["NodeTag"], "A");
    assert_eq!(body["Includes"], json!({}));
    assert_raven_timestamp(&body["IndexTimestamp"]);
    assert_raven_timestamp(&body["LastQueryTime"]);
    assert!(body["ResultEtag"].is_number());
    for doc in body["Results"].as_array().unwrap() {
        assert!(doc["@metadata"]["@change-vector"].is_string());
        assert_eq!(doc["@metadata"]["@collection"], "Users");
    }
    let unquoted = app
        .query(json!({"Query": "from Users", "QueryParameters": {}}))
        .await;
    assert_eq!(unquoted["TotalResults"], 4);
}

#[tokio::test]
async fn query_pages_with_limit_parameters() {
    let app = app_with_users().await;
    let body = app
        .query(json!({
            "Query": "from 'Users' limit $p0, $p1",
            "PageSize": 2,
            "Start": 1,
            "QueryParameters": {"p0": 1, "p1": 2},
        }))
        .await;
    assert_eq!(result_ids(&body), ["users/2", "users/3"]);
    assert_eq!(body["TotalResults"], 4);
    // `.count()`: no documents, just the total.
    let body = app
        .query(json!({
            "Query": "from 'Users' limit $p0, $p1",
            "PageSize": 0,
            "QueryParameters": {"p0": 0, "p1": 0},
        }))
        .await;
    assert_eq!(body["Results"], json!([]));
    assert_eq!(body["TotalResults"], 4);
    let body = app.query(json!({"Query": "from Users limit 3"})).await;
    assert_eq!(result_ids(&body), ["users/1", "users/2", "users/3"]);
}

#[tokio::test]
async fn query_pages_with_start_and_page_size() {
    let app = app_with_users().await;
    let body = app
        .query(json!({"Query": "from 'Users'", "Start": 2, "PageSize": 1, "QueryParameters": {}}))
        .await;
    assert_eq!(result_ids(&body), ["users/3"]);
    assert_eq!(body["TotalResults"], 4);
    let body = app
        .query(json!({"Query": "from 'Users'", "Start": 3, "QueryParameters": {}}))
        .await;
    assert_eq!(result_ids(&body), ["users/4"]);
}

#[tokio::test]
async fn query_where_equality_ignores_string_case() {
    let app = app_with_users().await;
    let body = app
        .query(json!({"Query": "from 'Users' where Name = $p0", "QueryParameters": {"p0": "BOB"}}))
        .await;
    assert_eq!(result_ids(&body), ["users/2"]);
    assert_eq!(body["TotalResults"], 1);
    let body = app
        .query(json!({"Query": "from Users where Age = $a", "QueryParameters": {"a": 25}}))
        .await;
    assert_eq!(result_ids(&body), ["users/2", "users/4"]);
    let body = app
        .query(json!({"Query": "from Users as u where u.Age = 25 and u.Name != 'dan'"}))
        .await;
    assert_eq!(result_ids(&body), ["users/2"]);
    let body = app
        .query(json!({"Query": "from Users where Name = 'nobody'"}))
        .await;
    assert_eq!(body["Results"], json!([]));
    assert_eq!(body["TotalResults"], 0);
}

#[tokio::test]
async fn query_order_by_desc_sorts_descending() {
    let app = app_with_users().await;
    let body = app
        .query(json!({"Query": "from Users order by Age desc"}))
        .await;
    let ages: Vec<u64> = body["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["Age"].as_u64().unwrap())
        .collect();
    assert_eq!(ages, [40, 30, 25, 25]);
    let body = app
        .query(
            json!({"Query": "from Users order by Name desc limit $p0, $p1",
            "QueryParameters": {"p0": 0, "p1": 3}}),
        )
        .await;
    assert_eq!(result_ids(&body), ["users/4", "users/3", "users/2"]);
    assert_eq!(body["TotalResults"], 4);
}

#[tokio::test]
async fn query_from_all_docs_returns_every_collection() {
    let app = app_with_users().await;
    let body = app.query(json!({"Query": "from @all_docs"})).await;
    let mut ids = result_ids(&body);
    ids.sort();
    assert_eq!(
        ids,
        ["orders/1", "users/1", "users/2", "users/3", "users/4"]
    );
    assert_eq!(body["TotalResults"], 5);
}

#[tokio::test]
async fn query_answers_304_until_the_database_changes() {
    let app = app_with_users().await;
    let uri = format!("/databases/{DB}/queries?queryHash=abc");
    let query = json!({"Query": "from Users", "QueryParameters": {}}).to_string();
    let first = app.send("POST", &uri, query.clone(), &[]).await;
    let etag = first.header("ETag").unwrap().to_owned();
    let cached = app
        .send("POST", &uri, query.clone(), &[("If-None-Match", &etag)])
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    app.put_doc("users/5", user("Eve", 50)).await;
    let changed = app
        .send("POST", &uri, query, &[("If-None-Match", &etag)])
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.json()["TotalResults"], 5);
}

#[tokio::test]
async fn create_database_then_again_is_409_then_delete_removes_it() {
    let app = TestApp::new();
    let record = json!({"DatabaseName": "dst", "Disabled": false, "Encrypted": false,
        "Settings": {}, "Topology": null, "RavenConnectionStrings": {}});
    let create_uri = "/admin/databases?name=dst&replicationFactor=1&?raft-request-id=7c0ad3a5";
    let headers = [("Content-type", "application/json")];
    let reply = app
        .send("PUT", create_uri, record.to_string(), &headers)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let created = reply.json();
    assert_eq!(created["Name"], "dst");
    let first_index = created["RaftCommandIndex"].as_u64().unwrap();
    assert!(created.get("Topology").is_none());

    let listed = app.get("/databases").await.json();
    let mut names: Vec<&str> = listed["Databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["Name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["db", "dst"]);
    assert_eq!(app.get("/databases/dst/stats").await.status, StatusCode::OK);

    let reply = app
        .send("PUT", create_uri, record.to_string(), &headers)
        .await;
    assert_error(&reply, StatusCode::CONFLICT, create_uri, CONCURRENCY);
    assert_eq!(reply.json()["Type"], CONCURRENCY);
    // Database names are case-insensitive.
    let reply = app
        .send("PUT", "/admin/databases?name=DST", "", &headers)
        .await;
    assert_error(
        &reply,
        StatusCode::CONFLICT,
        "/admin/databases?name=DST",
        CONCURRENCY,
    );

    let delete_uri = "/admin/databases?raft-request-id=0b5e";
    let body = json!({"DatabaseNames": ["dst"], "HardDelete": true, "FromNodes": null,
        "TimeToWaitForConfirmation": null});
    let reply = app
        .send("DELETE", delete_uri, body.to_string(), &headers)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let deleted = reply.json();
    assert_eq!(keys(&deleted), ["PendingDeletes", "RaftCommandIndex"]);
    assert_eq!(deleted["PendingDeletes"], json!([]));
    assert!(deleted["RaftCommandIndex"].as_u64().unwrap() > first_index);

    let listed = app.get("/databases").await.json();
    assert_eq!(listed["Databases"].as_array().unwrap().len(), 1);
    let reply = app.get("/databases/dst/stats").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    // The name is free again.
    let reply = app
        .send("PUT", create_uri, record.to_string(), &headers)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(
        app.get("/databases/dst/stats").await.json()["CountOfDocuments"],
        0
    );
}

#[tokio::test]
async fn topology_builds_the_node_url_from_the_host_header() {
    // A host name is served once configured (`--allowed-hosts`), see tests/guards.rs.
    let app = TestApp::with_options(corvid_server::ServerOptions {
        guard: corvid_server::RequestGuard::from_lists(&["corvid.example".into()], &[]).unwrap(),
        ..corvid_server::ServerOptions::default()
    });
    let reply = app
        .send(
            "GET",
            "/topology?name=DB&first-topology-update&applicationIdentifier=5e1c",
            "",
            &[
                ("Host", "corvid.example:8099"),
                ("Topology-Etag", "\"None\""),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert!(body["Etag"].is_i64());
    let nodes = body["Nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["Url"], "http://corvid.example:8099");
    assert_eq!(nodes[0]["ClusterTag"], "A");
    assert_eq!(nodes[0]["Database"], "db");
    assert_eq!(nodes[0]["ServerRole"], "Member");
}

#[tokio::test]
async fn cluster_topology_is_a_single_member_that_leads() {
    let app = TestApp::new();
    let reply = app
        .send(
            "GET",
            "/cluster/topology?first-topology-update",
            "",
            &[("Host", "127.0.0.1:8099")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["Leader"], "A");
    assert_eq!(body["NodeTag"], "A");
    assert!(body["Etag"].is_i64());
    assert!(body["Status"].is_object());
    let topology = &body["Topology"];
    assert_eq!(topology["Members"], json!({"A": "http://127.0.0.1:8099"}));
    assert_eq!(topology["Promotables"], json!({}));
    assert_eq!(topology["Watchers"], json!({}));
    assert_eq!(topology["LastNodeId"], "A");
    assert!(topology["TopologyId"].is_string());
    assert!(topology["Etag"].is_i64());
}

#[tokio::test]
async fn build_version_has_the_four_keys() {
    let app = TestApp::new();
    let body = app.get("/build/version").await.json();
    assert_eq!(
        keys(&body),
        [
            "BuildVersion",
            "CommitHash",
            "FullVersion",
            "ProductVersion"
        ]
    );
}
