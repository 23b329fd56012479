//! Helpers shared by the HTTP integration tests: the app over a fresh data directory with one
//! database, one request in and the whole answer out, and the checks every error answer needs.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

pub mod conformance;
pub mod live;
pub mod olap;
pub mod queue;

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use bytes::Bytes;
use corvid_server::{AppState, ServerOptions};
use corvid_store::Storage;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The database every `TestApp` starts with.
pub const DB: &str = "db";

/// The app under test, over a data directory that lives as long as it does.
pub struct TestApp {
    router: Router,
    _dir: tempfile::TempDir,
}

/// A whole answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What a failed request must leave alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbState {
    pub n_docs: u64,
    pub n_tombstones: u64,
    pub last_etag: u64,
}

impl TestApp {
    /// Returns the app with default options and the database [`DB`].
    pub fn new() -> TestApp {
        TestApp::with_options(ServerOptions::default())
    }

    pub fn with_options(options: ServerOptions) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        storage.create_database(DB).unwrap();
        let etl = corvid_etl::EtlManager::new(corvid_etl::EtlOptions::default());
        let router = corvid_server::app(AppState::new(Arc::new(storage), etl, options));
        TestApp { router, _dir: dir }
    }

    /// Sends one request; `body` may be anything axum turns into a body.
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        body: impl Into<Body>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri)
            .body(body.into())
            .unwrap();
        for (name, value) in headers {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send("GET", uri, Body::empty(), &[]).await
    }

    /// Sends a JSON value as the body, without a `Content-Type`, as the Python client does.
    pub async fn send_json(&self, method: &str, uri: &str, body: &Value) -> Reply {
        self.send(method, uri, body.to_string(), &[]).await
    }

    /// Puts a document through `PUT /docs` and returns its change vector.
    pub async fn put_doc(&self, id: &str, document: Value) -> String {
        let uri = format!("/databases/{DB}/docs?id={}", encode(id));
        let reply = self.send_json("PUT", &uri, &document).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        let body = reply.json();
        body["ChangeVector"].as_str().unwrap().to_owned()
    }

    /// Loads one document, `None` when the server answers 404.
    pub async fn get_doc(&self, id: &str) -> Option<Value> {
        let reply = self
            .get(&format!("/databases/{DB}/docs?id={}", encode(id)))
            .await;
        if reply.status == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let mut body = reply.json();
        Some(body["Results"][0].take())
    }

    /// Runs a query and returns the whole answer, which must be a 200.
    pub async fn query(&self, body: Value) -> Value {
        let reply = self
            .send_json("POST", &format!("/databases/{DB}/queries"), &body)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()
    }

    /// Returns the document count and last etag from `GET /databases/{db}/stats`.
    pub async fn db_state(&self) -> DbState {
        let reply = self.get(&format!("/databases/{DB}/stats")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let stats = reply.json();
        DbState {
            n_docs: stats["CountOfDocuments"].as_u64().unwrap(),
            n_tombstones: stats["CountOfTombstones"].as_u64().unwrap(),
            last_etag: stats["LastDocEtag"].as_u64().unwrap(),
        }
    }
}

impl Reply {
    /// Parses the body as JSON, failing the test with the body when it is not.
    pub fn json(&self) -> Value {
        match serde_json::from_slice(&self.body) {
            Ok(it) => it,
            Err(error) => panic!(
                "body of the {} answer is not JSON ({error}): {}",
                self.status,
                self.text()
            ),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|it| it.to_str().unwrap())
    }

    /// Returns the `ETag` header without its quotes.
    pub fn etag(&self) -> Option<&str> {
        self.header("ETag").map(|it| it.trim_matches('"'))
    }
}

/// Checks a RavenDB error answer: the status, and a JSON body with string `Url` (the request's
/// path and query), `Type` (ending in `type_suffix`), `Message` and `Error`.
#[track_caller]
pub fn assert_error(reply: &Reply, status: StatusCode, url: &str, type_suffix: &str) {
    assert_eq!(
        reply.status,
        status,
        "wrong status for {url}: {}",
        reply.text()
    );
    let body = reply.json();
    for key in ["Url", "Type", "Message", "Error"] {
        assert!(
            body[key].is_string(),
            "`{key}` is not a string in the answer to {url}: {body}"
        );
    }
    assert_eq!(body["Url"], url, "wrong `Url` in {body}");
    let type_name = body["Type"].as_str().unwrap();
    assert!(
        type_name.ends_with(type_suffix),
        "`Type` of the answer to {url} is {type_name}, expected it to end with {type_suffix}"
    );
    assert!(
        !body["Message"].as_str().unwrap().is_empty(),
        "empty `Message` in the answer to {url}"
    );
}

/// Percent-encodes every byte except the unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// One attachment part of a multipart batch: name, content type, content.
pub type AttachmentPart<'a> = (&'a str, &'a str, &'a [u8]);

pub const BOUNDARY: &str = "corvid-test-boundary-7d1c";

/// Builds a multipart `bulk_docs` body the way the Python client (`requests`) does: the commands
/// in a part named `main`, then one `Command-Type: AttachmentStream` part per attachment.
/// Returns the `Content-Type` header and the body.
pub fn multipart_batch(commands: &Value, parts: &[AttachmentPart<'_>]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"main\"; filename=\"main\"\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(commands.to_string().as_bytes());
    body.extend_from_slice(b"\r\n");
    for (name, content_type, content) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\nCommand-Type: AttachmentStream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// A `bulk_docs` PUT command as the session sends it.
pub fn put_command(id: &str, document: Value) -> Value {
    json!({"Id": id, "ChangeVector": null, "Type": "PUT", "Document": document})
}

/// A document of the `Users` collection.
pub fn user(name: &str, age: u64) -> Value {
    json!({"Name": name, "Age": age, "@metadata": {"@collection": "Users"}})
}
