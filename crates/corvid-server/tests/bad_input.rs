//! Bad input over HTTP: every refusal is a RavenDB error answer (`{Url, Type, Message, Error}`
//! with the right status and type), and a refused request changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use corvid_server::ServerOptions;
use serde_json::{Value, json};

use common::{BOUNDARY, DB, TestApp, assert_error, encode, multipart_batch, put_command, user};

const BAD_REQUEST: &str = "BadRequestException";
const CONCURRENCY: &str = "Raven.Client.Exceptions.ConcurrencyException";
const DOCUMENT_MISSING: &str = "DocumentDoesNotExistException";
const DATABASE_MISSING: &str = "DatabaseDoesNotExistException";
const INVALID_QUERY: &str = "InvalidQueryException";

fn docs_uri(id: &str) -> String {
    format!("/databases/{DB}/docs?id={}", encode(id))
}

fn bulk_uri() -> String {
    format!("/databases/{DB}/bulk_docs")
}

/// Returns an app holding `users/1` (Ann, 30), for tests that check nothing changed.
async fn app_with_ann() -> TestApp {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann", 30)).await;
    app
}

#[tokio::test]
async fn malformed_json_is_refused_by_put_docs_without_writing() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let doc_before = app.get_doc("users/1").await;
    for body in [
        r#"{"Name":"#,
        r#"{Name: "Bob"}"#,
        r#"{"Name":"Bob",}"#,
        r#"{"Name":"Bob"} trailing"#,
        "not json",
        "",
    ] {
        let uri = docs_uri("users/1");
        let reply = app.send("PUT", &uri, body, &[]).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/1").await, doc_before);
}

#[tokio::test]
async fn malformed_json_is_refused_by_bulk_docs_without_writing() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    for body in [
        r#"{"Commands":[{"Type":"PUT","Id":"users/2","Document":{"Name":"Bob"}}"#,
        r#"{"Commands":[{"Type":"PUT","Id":"users/2","Document":{Name:1}}]}"#,
        r#"{"Commands":[]} {"Commands":[]}"#,
        "Commands",
        "",
    ] {
        let reply = app.send("POST", &bulk_uri(), body, &[]).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/2").await, None);
}

#[tokio::test]
async fn bodies_that_are_not_objects_are_refused_by_put_docs() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let doc_before = app.get_doc("users/1").await;
    for body in [
        "[]",
        r#"[{"Name":"Bob"}]"#,
        r#""Bob""#,
        "42",
        "-1.5",
        "true",
        "null",
    ] {
        let uri = docs_uri("users/1");
        let reply = app.send("PUT", &uri, body, &[]).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/1").await, doc_before);
}

#[tokio::test]
async fn bodies_that_are_not_objects_are_refused_by_bulk_docs() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let put_bob = |document: Value| json!({"Commands": [put_command("users/2", document)]});
    let bodies = [
        json!([]),
        json!([put_command("users/2", user("Bob", 1))]),
        json!("Commands"),
        json!(42),
        json!(null),
        json!({}),
        json!({"Commands": {"Type": "PUT"}}),
        json!({"Commands": "PUT"}),
        json!({"Commands": [42]}),
        json!({"Commands": [[put_command("users/2", user("Bob", 1))]]}),
        put_bob(json!([{"Name": "Bob"}])),
        put_bob(json!("Bob")),
        put_bob(json!(7)),
        put_bob(json!(null)),
        json!({"Commands": [{"Id": "users/2", "Type": "PUT"}]}),
    ];
    for body in bodies {
        let reply = app.send_json("POST", &bulk_uri(), &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/2").await, None);
}

/// Ids the server must refuse, with a label for failure messages.
fn invalid_ids() -> Vec<(&'static str, String)> {
    vec![
        ("empty", String::new()),
        ("513 bytes", "a".repeat(513)),
        ("257 two-byte characters", "é".repeat(257)),
        ("a \\u0001", "users/\u{1}".to_owned()),
        ("a newline", "users/\n1".to_owned()),
        ("a tab", "users/\t1".to_owned()),
        ("a DEL", "users/\u{7f}".to_owned()),
        ("a C1 control", "users/\u{85}".to_owned()),
        ("only spaces", "   ".to_owned()),
        (
            "a right-to-left override",
            "users/1\u{202E}gpj.exe".to_owned(),
        ),
        ("a zero-width space", "users/\u{200B}1".to_owned()),
        ("a byte order mark", "\u{FEFF}users/1".to_owned()),
    ]
}

#[tokio::test]
async fn invalid_ids_are_refused_by_put_docs() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    for (label, id) in invalid_ids() {
        let uri = docs_uri(&id);
        let reply = app.send_json("PUT", &uri, &user("Bob", 1)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "id with {label}");
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    }
    // A `+` in a query string is a space, so this id is only whitespace too.
    let uri = format!("/databases/{DB}/docs?id=+++");
    let reply = app.send_json("PUT", &uri, &user("Bob", 1)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    let uri = format!("/databases/{DB}/docs");
    let reply = app.send_json("PUT", &uri, &user("Bob", 1)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    assert_eq!(app.db_state().await, before);
}

#[tokio::test]
async fn ids_at_the_512_byte_limit_are_accepted() {
    let app = TestApp::new();
    let ascii = "a".repeat(512);
    let two_byte = "é".repeat(256);
    app.put_doc(&ascii, json!({})).await;
    app.put_doc(&two_byte, json!({})).await;
    assert_eq!(
        app.get_doc(&ascii).await.unwrap()["@metadata"]["@id"],
        ascii
    );
    assert_eq!(
        app.get_doc(&two_byte).await.unwrap()["@metadata"]["@id"],
        two_byte
    );
}

#[tokio::test]
async fn invalid_ids_are_refused_by_bulk_docs_commands() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    for (label, id) in invalid_ids() {
        let commands = [
            put_command(&id, user("Bob", 1)),
            json!({"Id": id, "ChangeVector": null, "Type": "DELETE"}),
            json!({"Id": id, "Type": "DELETE", "IdPrefixed": true}),
        ];
        for command in commands {
            let body = json!({"Commands": [command]});
            let reply = app.send_json("POST", &bulk_uri(), &body).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "id with {label} in {body}"
            );
            assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
        }
    }
    for body in [
        json!({"Commands": [{"Type": "PUT", "Document": user("Bob", 1)}]}),
        json!({"Commands": [{"Type": "PUT", "Id": null, "Document": user("Bob", 1)}]}),
        json!({"Commands": [{"Type": "PUT", "Id": 5, "Document": user("Bob", 1)}]}),
        json!({"Commands": [{"Type": "DELETE", "Id": ["users/1"]}]}),
    ] {
        let reply = app.send_json("POST", &bulk_uri(), &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
    assert!(app.get_doc("users/1").await.is_some());
}

#[tokio::test]
async fn metadata_of_the_wrong_type_is_refused_by_put_docs() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let doc_before = app.get_doc("users/1").await;
    for document in [
        json!({"Name": "Bob", "@metadata": []}),
        json!({"Name": "Bob", "@metadata": [{"@collection": "Users"}]}),
        json!({"Name": "Bob", "@metadata": "Users"}),
        json!({"Name": "Bob", "@metadata": 1}),
        json!({"Name": "Bob", "@metadata": true}),
        json!({"Name": "Bob", "@metadata": {"@collection": 5}}),
        json!({"Name": "Bob", "@metadata": {"@collection": ["Users"]}}),
        json!({"Name": "Bob", "@metadata": {"@collection": {"Name": "Users"}}}),
        json!({"Name": "Bob", "@metadata": {"@collection": true}}),
        json!({"Name": "Bob", "@metadata": {"@collection": ""}}),
        json!({"Name": "Bob", "@metadata": {"@collection": "Us\u{1}ers"}}),
    ] {
        for id in ["users/1", "users/2"] {
            let uri = docs_uri(id);
            let reply = app.send_json("PUT", &uri, &document).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{document}");
            assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
        }
    }
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/1").await, doc_before);
    assert_eq!(app.get_doc("users/2").await, None);
}

#[tokio::test]
async fn metadata_of_the_wrong_type_is_refused_by_bulk_docs() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    for metadata in [
        json!([]),
        json!("Users"),
        json!({"@collection": 5}),
        json!({"@collection": ["Users"]}),
    ] {
        // The bad document comes second so a partial apply would leave `users/3` behind.
        let body = json!({"Commands": [
            put_command("users/3", user("Cid", 3)),
            put_command("users/2", json!({"Name": "Bob", "@metadata": metadata})),
        ]});
        let reply = app.send_json("POST", &bulk_uri(), &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/2").await, None);
    assert_eq!(app.get_doc("users/3").await, None);
}

#[tokio::test]
async fn moving_a_document_to_another_collection_is_refused() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let doc_before = app.get_doc("users/1").await;
    let uri = docs_uri("users/1");
    let moved = json!({"Name": "Ann", "@metadata": {"@collection": "Orders"}});
    let reply = app.send_json("PUT", &uri, &moved).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    let body = json!({"Commands": [put_command("USERS/1", moved)]});
    let reply = app.send_json("POST", &bulk_uri(), &body).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/1").await, doc_before);
}

#[tokio::test]
async fn unknown_database_is_503_with_database_missing_on_every_route() {
    let app = app_with_ann().await;
    let query = json!({"Query": "from Users", "QueryParameters": {}});
    let batch = json!({"Commands": [put_command("users/2", user("Bob", 1))]});
    let requests: Vec<(&str, String, String)> = vec![
        (
            "GET",
            "/databases/nosuchdb/docs?id=users%2F1".into(),
            String::new(),
        ),
        (
            "GET",
            "/databases/nosuchdb/docs?id=a&id=b".into(),
            String::new(),
        ),
        ("GET", "/databases/nosuchdb/docs".into(), String::new()),
        (
            "PUT",
            "/databases/nosuchdb/docs?id=users%2F2".into(),
            user("Bob", 1).to_string(),
        ),
        (
            "DELETE",
            "/databases/nosuchdb/docs?id=users%2F1".into(),
            String::new(),
        ),
        (
            "POST",
            "/databases/nosuchdb/docs".into(),
            json!({"Ids": ["users/1"]}).to_string(),
        ),
        (
            "POST",
            "/databases/nosuchdb/bulk_docs".into(),
            batch.to_string(),
        ),
        (
            "POST",
            "/databases/nosuchdb/queries?queryHash=1".into(),
            query.to_string(),
        ),
        (
            "GET",
            "/databases/nosuchdb/queries?query=from%20Users".into(),
            String::new(),
        ),
        ("GET", "/databases/nosuchdb/stats".into(), String::new()),
        (
            "GET",
            "/databases/nosuchdb/collections/stats".into(),
            String::new(),
        ),
        (
            "GET",
            "/databases/nosuchdb/hilo/next?tag=users".into(),
            String::new(),
        ),
        (
            "GET",
            "/databases/nosuchdb/attachments?id=users%2F1&name=a".into(),
            String::new(),
        ),
        (
            "PUT",
            "/databases/nosuchdb/attachments?id=users%2F1&name=a".into(),
            "abc".into(),
        ),
        ("GET", "/topology?name=nosuchdb".into(), String::new()),
    ];
    for (method, uri, body) in requests {
        let reply = app.send(method, &uri, body, &[]).await;
        assert_eq!(
            reply.header("Database-Missing"),
            Some("nosuchdb"),
            "{method} {uri}"
        );
        assert_error(
            &reply,
            StatusCode::SERVICE_UNAVAILABLE,
            &uri,
            DATABASE_MISSING,
        );
    }
    let reply = app
        .send("HEAD", "/databases/nosuchdb/docs?id=users%2F1", "", &[])
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("Database-Missing"), Some("nosuchdb"));
    let databases = app.get("/databases").await.json();
    assert_eq!(databases["Databases"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_or_missing_command_type_is_refused() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    for command in [
        json!({"Id": "users/2", "Type": "FROB", "Document": user("Bob", 1)}),
        json!({"Id": "users/2", "Type": "put", "Document": user("Bob", 1)}),
        json!({"Id": "users/2", "Document": user("Bob", 1)}),
        json!({"Id": "users/2", "Type": null, "Document": user("Bob", 1)}),
        json!({"Id": "users/2", "Type": "", "Document": user("Bob", 1)}),
        json!({"Id": "users/2", "Type": 1, "Document": user("Bob", 1)}),
        json!({"Id": "users/1", "Type": "BatchPATCH", "Patch": {"Script": "this.Name = 'x'"}}),
    ] {
        let body = json!({"Commands": [command]});
        let reply = app.send_json("POST", &bulk_uri(), &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/2").await, None);
}

#[tokio::test]
async fn a_batch_with_a_valid_put_then_an_invalid_command_applies_nothing() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let invalid_commands = [
        json!({"Id": "users/3", "Type": "FROB"}),
        json!({"Id": "users/3"}),
        put_command("", user("Cid", 3)),
        put_command("users/3", json!([])),
        json!({"Id": "users/1", "Type": "DELETE", "ChangeVector": 5}),
        json!({"Id": "users/1", "Name": "a.txt", "Type": "AttachmentPUT"}),
    ];
    for invalid in invalid_commands {
        let body = json!({"Commands": [
            put_command("users/2", user("Bob", 1)),
            {"Id": "users/1", "ChangeVector": null, "Type": "DELETE"},
            invalid,
        ]});
        let reply = app.send_json("POST", &bulk_uri(), &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
        assert_eq!(app.get_doc("users/2").await, None, "after {body}");
    }
    assert_eq!(app.db_state().await, before);
    assert!(app.get_doc("users/1").await.is_some());
}

#[tokio::test]
async fn put_attachment_on_a_missing_document_is_404_and_writes_nothing() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let uri = format!("/databases/{DB}/attachments?id=missing&name=a");
    let reply = app
        .send("PUT", &uri, "hello", &[("Content-Type", "text/plain")])
        .await;
    assert_error(&reply, StatusCode::NOT_FOUND, &uri, DOCUMENT_MISSING);
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("missing").await, None);
    let reply = app.get(&uri).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn multipart_attachment_put_on_a_missing_document_is_404_and_writes_nothing() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let attachment = json!({"Id": "missing", "Name": "a.txt", "ContentType": "text/plain",
        "ChangeVector": null, "Type": "AttachmentPUT"});
    for commands in [
        json!({"Commands": [attachment]}),
        json!({"Commands": [put_command("users/2", user("Bob", 1)), attachment]}),
    ] {
        let (content_type, body) = multipart_batch(&commands, &[("a.txt", "text/plain", b"hello")]);
        let reply = app
            .send(
                "POST",
                &bulk_uri(),
                body,
                &[("Content-Type", &content_type)],
            )
            .await;
        assert_error(&reply, StatusCode::NOT_FOUND, &bulk_uri(), DOCUMENT_MISSING);
    }
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("missing").await, None);
    assert_eq!(app.get_doc("users/2").await, None);
}

#[tokio::test]
async fn put_with_a_stale_if_match_is_409_and_keeps_the_document() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let doc_before = app.get_doc("users/1").await;
    let uri = docs_uri("users/1");
    for if_match in ["\"A:999-x\"", "A:999-x", "\"\""] {
        let reply = app
            .send(
                "PUT",
                &uri,
                user("Mallory", 1).to_string(),
                &[("If-Match", if_match)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "If-Match: {if_match}");
        assert_error(&reply, StatusCode::CONFLICT, &uri, CONCURRENCY);
        assert_eq!(reply.json()["Type"], CONCURRENCY);
    }
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/1").await, doc_before);
}

#[tokio::test]
async fn put_with_an_if_match_on_a_missing_document_is_409() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let uri = docs_uri("users/2");
    let reply = app
        .send(
            "PUT",
            &uri,
            user("Bob", 1).to_string(),
            &[("If-Match", "\"A:1-x\"")],
        )
        .await;
    assert_error(&reply, StatusCode::CONFLICT, &uri, CONCURRENCY);
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/2").await, None);
}

#[tokio::test]
async fn bulk_put_with_a_stale_change_vector_rolls_back_the_whole_batch() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let doc_before = app.get_doc("users/1").await;
    for change_vector in ["A:999-x", ""] {
        let mut stale = put_command("users/1", user("Mallory", 1));
        stale["ChangeVector"] = json!(change_vector);
        let body = json!({"Commands": [put_command("users/2", user("Bob", 1)), stale]});
        let reply = app.send_json("POST", &bulk_uri(), &body).await;
        assert_error(&reply, StatusCode::CONFLICT, &bulk_uri(), CONCURRENCY);
        assert_eq!(reply.json()["Type"], CONCURRENCY);
    }
    let body = json!({"Commands": [
        put_command("users/2", user("Bob", 1)),
        {"Id": "users/1", "ChangeVector": "A:999-x", "Type": "DELETE"},
    ]});
    let reply = app.send_json("POST", &bulk_uri(), &body).await;
    assert_error(&reply, StatusCode::CONFLICT, &bulk_uri(), CONCURRENCY);
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/2").await, None);
    assert_eq!(app.get_doc("users/1").await, doc_before);
}

#[tokio::test]
async fn delete_with_a_stale_if_match_is_409_and_keeps_the_document() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let doc_before = app.get_doc("users/1").await;
    let uri = docs_uri("users/1");
    let reply = app
        .send("DELETE", &uri, "", &[("If-Match", "\"A:999-x\"")])
        .await;
    assert_error(&reply, StatusCode::CONFLICT, &uri, CONCURRENCY);
    assert_eq!(reply.json()["Type"], CONCURRENCY);
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/1").await, doc_before);
}

/// A valid document of about `n_bytes` bytes of JSON.
fn document_of_size(n_bytes: usize) -> Value {
    json!({"Padding": "x".repeat(n_bytes), "@metadata": {"@collection": "Users"}})
}

#[tokio::test]
async fn bodies_over_the_configured_limit_are_413_json() {
    let app = TestApp::with_options(ServerOptions {
        max_body_bytes: 1024,
        ..ServerOptions::default()
    });
    app.put_doc("users/1", document_of_size(100)).await;
    let before = app.db_state().await;
    let big_doc = document_of_size(4096).to_string();
    let big_batch =
        json!({"Commands": [put_command("users/2", document_of_size(4096))]}).to_string();
    let big_query = json!({"Query": "from Users", "QueryParameters": {"p": "x".repeat(4096)}});
    let ids: Vec<String> = (0..400).map(|it| format!("users/{it}")).collect();
    let requests: Vec<(&str, String, String)> = vec![
        ("PUT", docs_uri("users/2"), big_doc.clone()),
        ("PUT", docs_uri("users/1"), big_doc),
        ("POST", bulk_uri(), big_batch),
        (
            "POST",
            format!("/databases/{DB}/queries"),
            big_query.to_string(),
        ),
        (
            "POST",
            format!("/databases/{DB}/docs"),
            json!({"Ids": ids}).to_string(),
        ),
        (
            "PUT",
            format!("/databases/{DB}/attachments?id=users%2F1&name=big"),
            "x".repeat(4096),
        ),
    ];
    for (method, uri, body) in requests {
        assert!(body.len() >= 4096);
        let reply = app.send(method, &uri, body, &[]).await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {uri}"
        );
        assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, &uri, BAD_REQUEST);
    }
    let (content_type, body) = multipart_batch(
        &json!({"Commands": [{"Id": "users/1", "Name": "big", "ContentType": "text/plain",
            "Type": "AttachmentPUT"}]}),
        &[("big", "text/plain", &[b'x'; 4096])],
    );
    let reply = app
        .send(
            "POST",
            &bulk_uri(),
            body,
            &[("Content-Type", &content_type)],
        )
        .await;
    assert_error(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        &bulk_uri(),
        BAD_REQUEST,
    );
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/2").await, None);
    // The limit is on bytes, not on a kind of request: a small write still goes through.
    app.put_doc("users/3", document_of_size(500)).await;
}

#[tokio::test]
/// RavenDB answers unknown routes with 400 `RouteNotFoundException`; a 404 would read as
/// "no such document" to the official clients.
async fn unknown_routes_are_400_route_not_found_json() {
    let app = TestApp::new();
    for (method, uri) in [
        ("GET", "/nope"),
        // (`GET /` redirects to the Studio, as in RavenDB.)
        ("POST", "/"),
        ("GET", "/databases/db/nope"),
        ("POST", "/databases/db/docs/extra"),
        ("GET", "/databases/db"),
        ("DELETE", "/databases/db/bulk_docs"),
        ("PATCH", "/databases/db/attachments?id=users%2F1&name=a"),
        ("RESET", "/databases/db/queries"),
    ] {
        let reply = app.send(method, uri, "", &[]).await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            uri,
            "RouteNotFoundException",
        );
    }
}

#[tokio::test]
async fn malformed_rql_is_400_invalid_query() {
    let app = app_with_ann().await;
    let uri = format!("/databases/{DB}/queries?queryHash=abc");
    for query in [
        // Malformed RQL; unsupported features and positions are in tests/queries.rs.
        "select * from x",
        "from Users where Age >",
        "from Users where Age >= ",
        "from Users where Name in ('Ann'",
        "from Users where search(Name)",
        "from Users select",
        "from Users where Name = $missing",
        "from 'Users",
        "from",
        "",
        "   ",
        "from Users limit -1",
        "from Users limit 'ten'",
        "from Users order Name",
        "from Users where Name = 'Ann' or",
        "delete from Users",
    ] {
        let body = json!({"Query": query, "QueryParameters": {}});
        let reply = app.send_json("POST", &uri, &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "query {query:?}");
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, INVALID_QUERY);
    }
    let get_uri = format!("/databases/{DB}/queries?query=select%20*%20from%20x");
    let reply = app.get(&get_uri).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &get_uri, INVALID_QUERY);
}

#[tokio::test]
async fn query_bodies_of_the_wrong_shape_are_400() {
    let app = app_with_ann().await;
    let uri = format!("/databases/{DB}/queries");
    for body in [
        json!({}),
        json!({"Query": 5}),
        json!({"Query": null}),
        json!({"Query": ["from Users"]}),
        json!({"Query": "from Users", "QueryParameters": []}),
        json!({"Query": "from Users", "QueryParameters": "p0"}),
        json!(["from Users"]),
    ] {
        let reply = app.send_json("POST", &uri, &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    }
}

#[tokio::test]
async fn post_docs_without_an_ids_array_is_400() {
    let app = app_with_ann().await;
    let uri = format!("/databases/{DB}/docs");
    for body in [
        json!({}),
        json!({"Ids": "users/1"}),
        json!({"Ids": [1]}),
        json!({"Ids": [null]}),
        json!({"Ids": {"users/1": true}}),
        json!(["users/1"]),
    ] {
        let reply = app.send_json("POST", &uri, &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    }
}

#[tokio::test]
async fn bad_numbers_in_query_strings_are_400() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    for (method, uri) in [
        ("GET", format!("/databases/{DB}/docs?pageSize=ten")),
        ("GET", format!("/databases/{DB}/docs?start=-1")),
        (
            "GET",
            format!("/databases/{DB}/docs?start=99999999999999999999999"),
        ),
        (
            "GET",
            format!("/databases/{DB}/hilo/next?tag=users&lastBatchSize=x"),
        ),
        ("GET", format!("/databases/{DB}/hilo/next")),
        (
            "PUT",
            format!("/databases/{DB}/hilo/return?tag=users&end=x&last=1"),
        ),
        ("PUT", format!("/databases/{DB}/hilo/return?tag=users")),
        (
            "GET",
            format!("/databases/{DB}/queries?query=from%20Users&pageSize=-5"),
        ),
        ("GET", format!("/databases/{DB}/attachments?id=users%2F1")),
        ("PUT", format!("/databases/{DB}/attachments?name=a")),
        ("DELETE", format!("/databases/{DB}/docs")),
    ] {
        let reply = app.send(method, &uri, "", &[]).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
}

#[tokio::test]
async fn bad_database_names_are_refused_by_create_database() {
    let app = TestApp::new();
    for name in [
        "bad%20name",
        "a%2Fb",
        ".hidden",
        "trailing.",
        "%00",
        "x%0Ay",
        // Windows device names, which RavenDB refuses too.
        "con",
        "NUL",
        "aux",
        "nul.db",
        "com1",
        "LPT9",
    ] {
        let uri = format!("/admin/databases?name={name}&replicationFactor=1");
        let reply = app.send("PUT", &uri, "", &[]).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    }
    let long = "a".repeat(129);
    let uri = format!("/admin/databases?name={long}");
    let reply = app.send("PUT", &uri, "", &[]).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    for body in [json!({}), json!({"DatabaseName": 5}), json!([])] {
        let reply = app.send_json("PUT", "/admin/databases", &body).await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "/admin/databases",
            BAD_REQUEST,
        );
    }
    let databases = app.get("/databases").await.json();
    assert_eq!(databases["Databases"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_delete_database_requests_delete_nothing() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    for body in [
        "",
        "{}",
        "not json",
        r#"{"DatabaseNames": "db"}"#,
        r#"{"DatabaseNames": [5]}"#,
        r#"{"DatabaseNames": []}"#,
    ] {
        let reply = app.send("DELETE", "/admin/databases", body, &[]).await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "/admin/databases",
            BAD_REQUEST,
        );
    }
    // One unknown name fails the whole request: `db` must survive.
    let body = json!({"DatabaseNames": [DB, "nosuchdb"], "HardDelete": true});
    let reply = app.send_json("DELETE", "/admin/databases", &body).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert_eq!(reply.header("Database-Missing"), Some("nosuchdb"));
    assert_eq!(app.db_state().await, before);
}

#[tokio::test]
async fn malformed_multipart_batches_are_400_and_write_nothing() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let attachment = json!({"Id": "users/1", "Name": "a.txt", "ContentType": "text/plain",
        "Type": "AttachmentPUT"});
    let two_attachments = json!({"Commands": [attachment, attachment]});
    let one_attachment = json!({"Commands": [attachment]});
    let no_attachment = json!({"Commands": [put_command("users/2", user("Bob", 1))]});
    let with_boundary = format!("multipart/form-data; boundary={BOUNDARY}");
    let cases: Vec<(String, Vec<u8>)> = vec![
        // No boundary parameter.
        (
            "multipart/form-data".into(),
            b"--x\r\n\r\n{}\r\n--x--".to_vec(),
        ),
        // Not multipart at all under a multipart content type.
        (with_boundary.clone(), b"{\"Commands\":[]}".to_vec()),
        // No parts.
        (
            with_boundary.clone(),
            format!("--{BOUNDARY}--\r\n").into_bytes(),
        ),
        // Cut off in the middle of a part.
        (
            with_boundary.clone(),
            multipart_batch(&one_attachment, &[("a.txt", "text/plain", b"hello")]).1[..150]
                .to_vec(),
        ),
        // Fewer streams than AttachmentPUT commands.
        multipart_batch(&two_attachments, &[("a.txt", "text/plain", b"hello")]),
        // More streams than AttachmentPUT commands.
        multipart_batch(&no_attachment, &[("a.txt", "text/plain", b"hello")]),
        // A `main` part that is not JSON.
        {
            let (content_type, body) =
                multipart_batch(&json!("placeholder"), &[("a.txt", "text/plain", b"x")]);
            let body = String::from_utf8(body)
                .unwrap()
                .replace("\"placeholder\"", "{not json");
            (content_type, body.into_bytes())
        },
    ];
    for (content_type, body) in cases {
        let reply = app
            .send(
                "POST",
                &bulk_uri(),
                body,
                &[("Content-Type", &content_type)],
            )
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
    }
    // An AttachmentPUT sent as plain JSON has no stream to store.
    let reply = app.send_json("POST", &bulk_uri(), &one_attachment).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/2").await, None);
}

#[tokio::test]
async fn invalid_attachment_names_are_400() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    for name in ["%20%20", "a%01b", "a%0Ab"] {
        let uri = format!("/databases/{DB}/attachments?id=users%2F1&name={name}");
        let reply = app.send("PUT", &uri, "hello", &[]).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    }
    let long_name = "n".repeat(513);
    let uri = format!("/databases/{DB}/attachments?id=users%2F1&name={long_name}");
    let reply = app.send("PUT", &uri, "hello", &[]).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    for name in [json!(""), json!("  "), json!(null), json!(5)] {
        let commands = json!({"Commands": [{"Id": "users/1", "Name": name,
            "ContentType": "text/plain", "Type": "AttachmentPUT"}]});
        let (content_type, body) = multipart_batch(&commands, &[("a", "text/plain", b"x")]);
        let reply = app
            .send(
                "POST",
                &bulk_uri(),
                body,
                &[("Content-Type", &content_type)],
            )
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be replayed.
fn garbage_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_never_crashes_the_server() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let doc_before = app.get_doc("users/1").await;
    let docs = docs_uri("users/1");
    let bulk = bulk_uri();
    let queries = format!("/databases/{DB}/queries");
    let post_docs = format!("/databases/{DB}/docs");
    let deep_array = "[".repeat(10_000);
    let deep_object = r#"{"a":"#.repeat(10_000);
    let deep_closed = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_document = format!(r#"{{"Name":{deep_closed}}}"#);
    let deep_commands = format!(r#"{{"Commands":{deep_closed}}}"#);
    let mut cases: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for seed in 1..=12u64 {
        let bytes = garbage_bytes(seed, 64 + seed as usize * 37);
        let uri = [&docs, &bulk, &queries, &post_docs][seed as usize % 4].clone();
        let method = if uri == docs { "PUT" } else { "POST" };
        cases.push((method, uri, bytes));
    }
    for body in [
        &deep_array,
        &deep_object,
        &deep_closed,
        &deep_document,
        &deep_commands,
    ] {
        cases.push(("PUT", docs.clone(), body.clone().into_bytes()));
        cases.push(("POST", bulk.clone(), body.clone().into_bytes()));
    }
    cases.push(("POST", queries.clone(), deep_array.clone().into_bytes()));
    // Out-of-range floats in bulk_docs have their own test.
    cases.push(("PUT", docs.clone(), br#"{"n":1e400}"#.to_vec()));
    cases.push(("PUT", docs.clone(), br#"{"n":-1e400}"#.to_vec()));
    for query in [
        json!({"Query": "from Users limit 99999999999999999999999"}),
        json!({"Query": "from Users limit 1e400"}),
        json!({"Query": "from Users where Age = 1.2.3"}),
        json!({"Query": "from Users limit $p0", "QueryParameters": {"p0": -1}}),
        json!({"Query": "from Users limit $p0", "QueryParameters": {"p0": "many"}}),
        json!({"Query": "from Users where Name = $", "QueryParameters": {}}),
    ] {
        cases.push(("POST", queries.clone(), query.to_string().into_bytes()));
    }
    // Invalid UTF-8, raw and inside a JSON string. (Lone surrogate escapes have their own test:
    // RavenDB accepts them.)
    cases.push(("PUT", docs.clone(), vec![0xff, 0xfe, 0xfd]));
    cases.push(("PUT", docs.clone(), b"{\"Name\":\"\xff\xfe\"}".to_vec()));
    cases.push(("POST", bulk.clone(), b"{\"Commands\":[\xc3\x28]}".to_vec()));
    // Bad percent-encoding: reads of ids that cannot exist are 404, writes need an id.
    for uri in [
        format!("/databases/{DB}/docs?id=%ZZ"),
        format!("/databases/{DB}/docs?id=%FF%FE"),
        format!("/databases/{DB}/docs?id=%"),
        format!("/databases/{DB}/docs?id=users%2F1%E2%82"),
    ] {
        cases.push(("GET", uri.clone(), Vec::new()));
        cases.push(("HEAD", uri, Vec::new()));
    }
    cases.push(("PUT", format!("/databases/{DB}/docs?id"), b"{}".to_vec()));
    cases.push((
        "PUT",
        format!("/databases/{DB}/docs?id=&id="),
        b"{}".to_vec(),
    ));
    // Bad query strings and parameters.
    for uri in [
        format!("/databases/{DB}/docs?pageSize=%FF"),
        format!("/databases/{DB}/docs?start=1e3"),
        format!("/databases/{DB}/hilo/next"),
        format!("/databases/{DB}/hilo/next?tag=users&lastBatchSize=-1"),
        format!("/databases/{DB}/queries?query="),
        format!("/databases/{DB}/attachments?id=users%2F1&name=nope"),
    ] {
        cases.push(("GET", uri, Vec::new()));
    }
    cases.push(("DELETE", "/admin/databases".into(), garbage_bytes(99, 40)));
    cases.push(("PUT", "/admin/databases?name=%FF".into(), Vec::new()));
    cases.push(("GET", "/databases/%FF/stats".into(), Vec::new()));
    cases.push(("GET", "/%FF%FE".into(), Vec::new()));
    assert!(cases.len() >= 50, "only {} cases", cases.len());

    for (method, uri, body) in cases {
        let printable = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        let reply = app.send(method, &uri, body, &[]).await;
        assert!(
            reply.status.is_client_error(),
            "{method} {uri} with {printable:?} answered {}: {}",
            reply.status,
            reply.text()
        );
    }
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/1").await, doc_before);
    app.put_doc("users/2", user("Bob", 2)).await;
    assert_eq!(app.db_state().await.n_docs, before.n_docs + 1);
}

#[tokio::test]
async fn invalid_utf8_in_the_database_segment_is_a_json_400() {
    let app = TestApp::new();
    for uri in ["/databases/%FF/docs?id=a", "/databases/%C3%28/stats"] {
        let reply = app.get(uri).await;
        assert!(reply.status.is_client_error(), "{uri}: {}", reply.status);
        assert_error(&reply, StatusCode::BAD_REQUEST, uri, BAD_REQUEST);
    }
}

#[tokio::test]
async fn invalid_utf8_in_an_id_is_refused_rather_than_replaced() {
    let app = TestApp::new();
    // `%FF` and `%FE` are different ids to the client; decoding both to `\u{FFFD}` would make
    // them one document. RavenDB keeps such an escape as is (`users/%FF`); a 400 is fine too.
    let mut stored_ids = Vec::new();
    for uri in [
        format!("/databases/{DB}/docs?id=users%2F%FF"),
        format!("/databases/{DB}/docs?id=users%2F%FE"),
        format!("/databases/{DB}/docs?id=%C3%28"),
    ] {
        let reply = app.send_json("PUT", &uri, &user("Bob", 1)).await;
        if reply.status == StatusCode::BAD_REQUEST {
            assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
            continue;
        }
        assert_eq!(reply.status, StatusCode::CREATED, "{uri}: {}", reply.text());
        let id = reply.json()["Id"].as_str().unwrap().to_owned();
        assert!(
            !id.contains('\u{FFFD}'),
            "{uri} was stored as {id:?}: invalid UTF-8 was replaced"
        );
        stored_ids.push(id);
    }
    assert_eq!(app.db_state().await.n_docs, stored_ids.len() as u64);
}

#[tokio::test]
async fn hilo_next_with_an_absurd_last_range_at_is_answered() {
    let app = TestApp::new();
    for last_range_at in [
        "9999999999999-01-01T00:00:00.0000000Z",
        "-9999999999999-01-01T00:00:00.0000000Z",
        "2024-01-01T00:00:99999999999999999.0Z",
        "2024-01-01T-5:00:00.0Z",
    ] {
        let uri = format!(
            "/databases/{DB}/hilo/next?tag=users&lastBatchSize=32&lastRangeAt={}",
            encode(last_range_at)
        );
        let reply = app.get(&uri).await;
        assert!(
            reply.status == StatusCode::CREATED || reply.status == StatusCode::BAD_REQUEST,
            "{uri}: {} {}",
            reply.status,
            reply.text()
        );
    }
    let reply = app
        .get(&format!("/databases/{DB}/hilo/next?tag=users"))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
}

#[tokio::test]
async fn huge_integers_are_kept_exactly_or_refused() {
    let app = TestApp::new();
    let document = r#"{"Big":123456789012345678901234567890,"Max":18446744073709551616}"#;
    let batch =
        format!(r#"{{"Commands":[{{"Id":"numbers/2","Type":"PUT","Document":{document}}}]}}"#);
    let requests = [
        (
            "PUT",
            docs_uri("numbers/1"),
            document.to_owned(),
            "numbers/1",
        ),
        ("POST", bulk_uri(), batch, "numbers/2"),
    ];
    for (method, uri, body, id) in requests {
        let reply = app.send(method, &uri, body, &[]).await;
        if reply.status == StatusCode::BAD_REQUEST {
            assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
            continue;
        }
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        // RavenDB keeps the digits as sent; rounding to a double changes the user's data.
        let loaded_text = app.get(&docs_uri(id)).await.text();
        assert!(
            loaded_text.contains(r#""Big":123456789012345678901234567890"#)
                && loaded_text.contains(r#""Max":18446744073709551616"#),
            "{method} {uri} changed the numbers: {loaded_text}"
        );
    }
}

#[tokio::test]
async fn out_of_range_numbers_are_refused_by_put_docs_and_bulk_docs() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    for number in ["1e400", "-1e400", "1e99999"] {
        let document = format!(r#"{{"n":{number},"@metadata":{{"@collection":"Users"}}}}"#);
        let uri = docs_uri("users/2");
        let reply = app.send("PUT", &uri, document.clone(), &[]).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
        let batch =
            format!(r#"{{"Commands":[{{"Id":"users/2","Type":"PUT","Document":{document}}}]}}"#);
        let reply = app.send("POST", &bulk_uri(), batch, &[]).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "bulk_docs accepted {number}: {}",
            reply.text()
        );
        assert_error(&reply, StatusCode::BAD_REQUEST, &bulk_uri(), BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
}

#[tokio::test]
async fn documents_that_are_accepted_never_break_a_filtered_query() {
    let app = app_with_ann().await;
    let query_uri = format!("/databases/{DB}/queries");
    let query = json!({"Query": "from Users where Name = $p0", "QueryParameters": {"p0": "Ann"}});
    // RavenDB accepts lone surrogate escapes and refuses out-of-range numbers; either way, what
    // is stored must not make later queries over the collection fail.
    let values = [r#""\ud800""#, r#""\udc00x""#, "1e99999"];
    for (idx, value) in values.into_iter().enumerate() {
        let document = format!(r#"{{"Name":{value},"@metadata":{{"@collection":"Users"}}}}"#);
        let batch = format!(
            r#"{{"Commands":[{{"Id":"users/bulk-{idx}","Type":"PUT","Document":{document}}}]}}"#
        );
        let requests = [
            ("PUT", docs_uri(&format!("users/put-{idx}")), document),
            ("POST", bulk_uri(), batch),
        ];
        for (method, uri, body) in requests {
            let reply = app.send(method, &uri, body, &[]).await;
            if reply.status == StatusCode::BAD_REQUEST {
                continue;
            }
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
            let reply = app.send_json("POST", &query_uri, &query).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "after {method} {uri} stored `Name: {value}`, the query answered {}",
                reply.text()
            );
            assert_eq!(reply.json()["TotalResults"], 1);
        }
    }
}

#[tokio::test]
async fn an_if_match_that_is_not_ascii_never_becomes_an_unconditional_write() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let doc_before = app.get_doc("users/1").await;
    let uri = docs_uri("users/1");
    let reply = app
        .send(
            "PUT",
            &uri,
            user("Mallory", 1).to_string(),
            &[("If-Match", "\"A:1-é\"")],
        )
        .await;
    assert!(
        reply.status == StatusCode::CONFLICT || reply.status == StatusCode::BAD_REQUEST,
        "the write went through without its concurrency check: {} {}",
        reply.status,
        reply.text()
    );
    let reply = app
        .send("DELETE", &uri, "", &[("If-Match", "\"A:1-é\"")])
        .await;
    assert!(
        reply.status == StatusCode::CONFLICT || reply.status == StatusCode::BAD_REQUEST,
        "the delete went through without its concurrency check: {}",
        reply.status
    );
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/1").await, doc_before);
}

#[tokio::test]
async fn hilo_next_refuses_tags_that_make_invalid_ids() {
    let app = TestApp::new();
    let before = app.db_state().await;
    // The HiLo state lives in `Raven/Hilo/<tag>`, which must be a valid id like any other.
    for tag in ["t".repeat(600), "users%01".to_owned(), "a%0Ab".to_owned()] {
        let uri = format!("/databases/{DB}/hilo/next?tag={tag}");
        let reply = app.get(&uri).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, BAD_REQUEST);
    }
    assert_eq!(app.db_state().await, before);
}

#[tokio::test]
async fn bad_sql_etl_test_requests_are_refused_with_their_reason() {
    let app = app_with_ann().await;
    let before = app.db_state().await;
    let uri = "/databases/db/admin/etl/sql/test";
    let config = |connection: &str| {
        json!({"EtlType": "Sql", "Name": "t", "ConnectionStringName": connection,
               "SqlTables": [{"TableName": "T", "DocumentIdColumn": "Id"}],
               "Transforms": [{"Name": "s", "Collections": ["Users"], "Script": "loadToT({A: 1})"}]})
    };
    let cases = [
        ("{".to_owned(), StatusCode::BAD_REQUEST, "malformed JSON"),
        (
            json!({"DocumentId": "users/1"}).to_string(),
            StatusCode::BAD_REQUEST,
            "`Configuration` is required",
        ),
        (
            json!({"DocumentId": "users/1", "Configuration": config("nope")}).to_string(),
            StatusCode::BAD_REQUEST,
            "connection string `nope` of type Sql does not exist",
        ),
        (
            json!({"DocumentId": "users/1", "Configuration": config("c"),
                   "Connection": {"Name": "c", "FactoryName": "System.Data.SqlClient",
                                  "ConnectionString": "Server=x;Database=y;Password=zz9secret"}})
            .to_string(),
            StatusCode::BAD_REQUEST,
            "not supported yet",
        ),
        (
            json!({"DocumentId": "users/404", "Configuration": config("c"),
                   "Connection": {"Name": "c", "FactoryName": "Npgsql",
                                  "ConnectionString": "Host=h;Database=d;Password=zz9secret"}})
            .to_string(),
            StatusCode::NOT_FOUND,
            "`users/404` does not exist",
        ),
    ];
    for (body, status, message) in cases {
        let reply = app.send("POST", uri, body.clone(), &[]).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text());
        let answer = reply.json();
        let text = answer["Message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{body}: {text}");
        assert!(!reply.text().contains("zz9secret"), "{}", reply.text());
    }
    let reply = app
        .send(
            "POST",
            "/databases/db/admin/etl/sql/test-connection",
            "Host=h",
            &[],
        )
        .await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "/databases/db/admin/etl/sql/test-connection",
        BAD_REQUEST,
    );
    assert_eq!(app.db_state().await, before);
}
