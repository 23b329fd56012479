//! Issue 18, finding 2: a web page the user visits cannot use a Corvid it can reach — no
//! cross-origin writes, no DNS rebinding, no form posts — while same-origin pages (the Studio),
//! official clients and curl keep working. And finding 5's declared oversized body is refused
//! before it is read.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use common::{DB, TestApp, assert_error};
use corvid_server::{RequestGuard, ServerOptions};
use serde_json::json;

fn docs_uri(id: &str) -> String {
    format!("/databases/{DB}/docs?id={id}")
}

const DOC: &str = r#"{"Name":"x","@metadata":{"@collection":"Users"}}"#;

#[tokio::test]
async fn a_cross_origin_text_plain_post_cannot_write_or_delete() {
    let app = TestApp::new();
    app.put_doc("users/1", json!({"Name": "kept"})).await;
    let before = app.db_state().await;
    // What `fetch(url, {method: 'POST', body})` sends from another site: no preflight.
    let batch = json!({"Commands": [
        {"Type": "PUT", "Id": "users/2", "Document": {"Name": "evil"}, "ChangeVector": null},
        {"Type": "DELETE", "Id": "users/", "IdPrefixed": true, "ChangeVector": null}
    ]})
    .to_string();
    let uri = format!("/databases/{DB}/bulk_docs");
    let reply = app
        .send(
            "POST",
            &uri,
            batch.clone(),
            &[
                ("Host", "127.0.0.1:8080"),
                ("Origin", "https://evil.example"),
                ("Content-Type", "text/plain;charset=UTF-8"),
            ],
        )
        .await;
    assert_error(
        &reply,
        StatusCode::FORBIDDEN,
        &uri,
        "CrossOriginRequestException",
    );
    // The same without Origin (an old browser, a form): still refused for its content type.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let reply = app
            .send(
                "POST",
                &uri,
                batch.clone(),
                &[("Host", "127.0.0.1:8080"), ("Content-Type", content_type)],
            )
            .await;
        assert_error(
            &reply,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &uri,
            "UnsupportedMediaTypeException",
        );
    }
    let query_uri = format!("/databases/{DB}/queries");
    let reply = app
        .send(
            "POST",
            &query_uri,
            r#"{"Query":"from Users"}"#,
            &[("Content-Type", "multipart/form-data; boundary=x")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // `Origin: null` (a sandboxed frame, a file: page) is not the server's own origin.
    let reply = app
        .send(
            "DELETE",
            &docs_uri("users/1"),
            Body::empty(),
            &[("Host", "127.0.0.1:8080"), ("Origin", "null")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert_eq!(app.db_state().await, before);
    assert_eq!(app.get_doc("users/1").await.unwrap()["Name"], "kept");
}

#[tokio::test]
async fn same_origin_pages_clients_and_cross_origin_reads_are_served() {
    let app = TestApp::new();
    // The Studio, served by the server itself: its origin is the request's host.
    let reply = app
        .send(
            "PUT",
            &docs_uri("users/1"),
            DOC,
            &[
                ("Host", "127.0.0.1:8080"),
                ("Origin", "http://127.0.0.1:8080"),
                ("Content-Type", "application/json; charset=utf-8"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    // An official client: no Origin, no Content-Type.
    let reply = app
        .send(
            "PUT",
            &docs_uri("users/2"),
            DOC,
            &[("Host", "localhost:8080")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    // A cross-origin read changes nothing (and the browser keeps its answer from the page).
    let reply = app
        .send(
            "GET",
            &docs_uri("users/1"),
            Body::empty(),
            &[
                ("Host", "127.0.0.1:8080"),
                ("Origin", "https://evil.example"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // Attachments are bytes of any type.
    let uri = format!("/databases/{DB}/attachments?id=users%2F1&name=a.txt");
    let reply = app
        .send(
            "PUT",
            &uri,
            "hello",
            &[("Host", "[::1]:8080"), ("Content-Type", "text/plain")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}

#[tokio::test]
async fn dns_rebinding_host_names_are_refused_unless_configured() {
    let app = TestApp::new();
    let uri = format!("/databases/{DB}/stats");
    // The attacker's name resolved to 127.0.0.1: the page is same-origin with itself, so only
    // the Host header tells.
    let reply = app
        .send(
            "GET",
            &uri,
            Body::empty(),
            &[("Host", "rebind.attacker.example:8080")],
        )
        .await;
    assert_error(
        &reply,
        StatusCode::MISDIRECTED_REQUEST,
        &uri,
        "HostNotAllowedException",
    );
    let reply = app
        .send(
            "PUT",
            &docs_uri("users/1"),
            DOC,
            &[
                ("Host", "rebind.attacker.example:8080"),
                ("Origin", "http://rebind.attacker.example:8080"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(app.get_doc("users/1").await, None);

    let guard = RequestGuard::from_lists(
        &["corvid.internal".into()],
        &["https://studio.internal".into()],
    )
    .unwrap();
    let app = TestApp::with_options(ServerOptions {
        guard,
        ..ServerOptions::default()
    });
    let reply = app
        .send(
            "PUT",
            &docs_uri("users/1"),
            DOC,
            &[
                ("Host", "corvid.internal:8080"),
                ("Origin", "https://studio.internal"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}

#[tokio::test]
async fn a_cross_origin_websocket_handshake_is_refused() {
    let app = TestApp::new();
    let uri = format!("/databases/{DB}/changes");
    let handshake = |origin: &'static str| {
        [
            ("Host", "127.0.0.1:8080"),
            ("Origin", origin),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]
    };
    let reply = app
        .send(
            "GET",
            &uri,
            Body::empty(),
            &handshake("https://evil.example"),
        )
        .await;
    assert_error(
        &reply,
        StatusCode::FORBIDDEN,
        &uri,
        "CrossOriginRequestException",
    );
    // The same-origin handshake gets past the guard (oneshot cannot upgrade, so the answer is
    // the WebSocket route's own, not the guard's 403).
    let reply = app
        .send(
            "GET",
            &uri,
            Body::empty(),
            &handshake("http://127.0.0.1:8080"),
        )
        .await;
    assert_ne!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_it_is_read() {
    let app = TestApp::with_options(ServerOptions {
        max_body_bytes: 1024,
        ..ServerOptions::default()
    });
    // A client that announces 1 GiB and then sends nothing: the answer must not wait for it.
    let never = Body::from_stream(futures_util::stream::pending::<
        Result<Vec<u8>, std::io::Error>,
    >());
    let uri = docs_uri("users/1");
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        app.send("PUT", &uri, never, &[("Content-Length", "1073741824")]),
    )
    .await
    .expect("the 413 waited for the body");
    assert_error(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        &uri,
        "BadRequestException",
    );
}
