//! Bulk insert (`POST /databases/{db}/bulk_insert?id=`): the wire format the official clients
//! stream, bodies cut anywhere, bad input at several points, operation ids and states, and
//! durability of everything acknowledged.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;

use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use common::{DB, Reply, TestApp, assert_error};
use serde_json::{Value, json};

/// A body as the clients write it: `[`, commands separated by commas, `]`.
fn body_of(commands: &[String]) -> String {
    format!("[{}]", commands.join(","))
}

fn put(id: &str, document: &Value) -> String {
    format!(r#"{{"Id":"{id}","Type":"PUT","Document":{document}}}"#)
}

/// A body sent in pieces of `piece` bytes, as a slow client's stream arrives.
fn in_pieces(body: &[u8], piece: usize) -> Body {
    let pieces: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(piece)
        .map(|it| Ok(Bytes::copy_from_slice(it)))
        .collect();
    Body::from_stream(futures_util::stream::iter(pieces))
}

async fn next_operation_id(app: &TestApp) -> u64 {
    let reply = app
        .get(&format!("/databases/{DB}/operations/next-operation-id"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["Id"].as_u64().expect("numeric Id")
}

async fn bulk_insert(app: &TestApp, id: u64, body: impl Into<Body>) -> Reply {
    let uri = format!("/databases/{DB}/bulk_insert?id={id}&skipOverwriteIfUnchanged=false");
    app.send("POST", &uri, body, &[]).await
}

async fn operation_state(app: &TestApp, id: u64) -> Value {
    let reply = app
        .get(&format!("/databases/{DB}/operations/state?id={id}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

#[tokio::test]
async fn inserts_documents_attachments_and_skips_heartbeats() {
    let app = TestApp::new();
    let id = next_operation_id(&app).await;
    let mut body = Vec::new();
    body.extend_from_slice(
        br#"[{"Id":"users/1","Type":"PUT","Document":{"Name":"Ann","@metadata":{"@collection":"Users","Raven-Python-Type":"app.User"}}},{"Type":"HeartBeat"},"#,
    );
    body.extend_from_slice(
        br#"{"Id":"users/1","Type":"AttachmentPUT","Name":"photo.png","ContentType":"image/png","ContentLength":6}"#,
    );
    body.extend_from_slice(b"\x89PNG]["); // raw bytes, brackets included
    body.extend_from_slice(br#",{"Id":"orders/1","Type":"PUT","Document":{"Total":3.5}}]"#);
    let reply = bulk_insert(&app, id, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert!(reply.body.is_empty(), "RavenDB answers an empty body");

    let user = app.get_doc("users/1").await.expect("users/1 stored");
    assert_eq!(user["Name"], "Ann");
    assert_eq!(user["@metadata"]["@collection"], "Users");
    assert_eq!(user["@metadata"]["Raven-Python-Type"], "app.User");
    assert_eq!(user["@metadata"]["@attachments"][0]["Name"], "photo.png");
    let attachment = app
        .get(&format!(
            "/databases/{DB}/attachments?id=users%2F1&name=photo.png"
        ))
        .await;
    assert_eq!(attachment.status, StatusCode::OK);
    assert_eq!(&attachment.body[..], b"\x89PNG][");
    assert_eq!(
        app.get_doc("orders/1").await.expect("orders/1")["Total"],
        3.5
    );

    let state = operation_state(&app, id).await;
    assert_eq!(state["Status"], "Completed", "{state}");
    assert_eq!(state["Result"]["Total"], 3);
    assert_eq!(state["Result"]["DocumentsProcessed"], 2);
    assert_eq!(state["Result"]["AttachmentsProcessed"], 1);
}

#[tokio::test]
async fn a_body_cut_anywhere_reads_the_same() {
    // Strings with escapes, unicode and brackets, so pieces end inside every kind of token.
    let documents: Vec<Value> = (0..20)
        .map(|idx| {
            json!({
                "Text": format!("line \"{idx}\" \\ back\u{e9} ] [ {{ }} ,"),
                "Nested": {"List": [idx, 1.5e3, null, true, "\u{1F600}"]},
                "@metadata": {"@collection": "Pieces"},
            })
        })
        .collect();
    let commands: Vec<String> = documents
        .iter()
        .enumerate()
        .map(|(idx, doc)| put(&format!("pieces/{idx}"), doc))
        .collect();
    let body = body_of(&commands);
    for piece in [1, 2, 3, 5, 17, 4096] {
        let app = TestApp::new();
        let reply = bulk_insert(&app, 1, in_pieces(body.as_bytes(), piece)).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "pieces of {piece}: {}",
            reply.text()
        );
        for (idx, expected) in documents.iter().enumerate() {
            let stored = app
                .get_doc(&format!("pieces/{idx}"))
                .await
                .unwrap_or_else(|| panic!("pieces/{idx} missing with pieces of {piece}"));
            assert_eq!(stored["Text"], expected["Text"]);
            assert_eq!(stored["Nested"], expected["Nested"]);
        }
    }
}

#[tokio::test]
async fn a_gzip_body_is_decoded_as_it_streams() {
    let app = TestApp::new();
    let commands: Vec<String> = (0..500)
        .map(|idx| put(&format!("zipped/{idx}"), &json!({"Idx": idx})))
        .collect();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(body_of(&commands).as_bytes())
        .expect("gzip");
    let zipped = encoder.finish().expect("gzip");
    let uri = format!("/databases/{DB}/bulk_insert?id=5");
    let reply = app
        .send(
            "POST",
            &uri,
            in_pieces(&zipped, 100),
            &[("Content-Encoding", "gzip")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(app.db_state().await.n_docs, 500);
    assert_eq!(app.get_doc("zipped/499").await.expect("stored")["Idx"], 499);

    let reply = app
        .send(
            "POST",
            &format!("/databases/{DB}/bulk_insert?id=6"),
            "[]",
            &[("Content-Encoding", "br")],
        )
        .await;
    assert_error(
        &reply,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &format!("/databases/{DB}/bulk_insert?id=6"),
        "BadRequestException",
    );
}

#[tokio::test]
async fn bad_input_faults_the_operation_and_keeps_what_came_before() {
    let good = put("good/1", &json!({"A": 1}));
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("{\"Commands\":[]}".to_owned(), "expected `[`"),
        (format!("[{good},"), "expected a command object"),
        (
            format!("[{good},{{\"Id\":\"x\",\"Type\":\"PUT\",\"Docu"),
            "EOF",
        ),
        (
            format!("[{good},{}]", put("bad/1", &json!(5))),
            "must be an object",
        ),
        (
            format!("[{good},{}]", put("bad/1", &json!([1]))),
            "must be an object",
        ),
        (
            format!("[{good},{{\"Type\":\"PUT\",\"Document\":{{}}}}]"),
            "PUT",
        ),
        (format!("[{good},{}]", put("a\\u0000b", &json!({}))), "PUT"),
        (
            format!("[{good},{{\"Id\":\"x\",\"Type\":\"DELETE\"}}]"),
            "not a bulk insert command",
        ),
        (
            format!("[{good},{{\"Id\":\"x\",\"Type\":\"PUT\",\"Document\":{{\"a\":tru}}}}]"),
            "expected",
        ),
        (
            format!(
                "[{good},{{\"Id\":\"good/1\",\"Type\":\"AttachmentPUT\",\"Name\":\"n\",\"ContentLength\":100}}abc]"
            ),
            "ended inside",
        ),
        (
            format!(
                "[{good},{}]",
                put("bad/2", &json!({"@metadata": {"@collection": 5}}))
            ),
            "@collection",
        ),
    ];
    for (body, needle) in cases {
        let app = TestApp::new();
        let id = next_operation_id(&app).await;
        let reply = bulk_insert(&app, id, body.clone()).await;
        let url = format!("/databases/{DB}/bulk_insert?id={id}&skipOverwriteIfUnchanged=false");
        assert_error(&reply, StatusCode::BAD_REQUEST, &url, "Exception");
        let message = reply.json()["Message"]
            .as_str()
            .expect("message")
            .to_owned();
        assert!(message.contains(needle), "{body:?}: {message}");
        let state = operation_state(&app, id).await;
        assert_eq!(state["Status"], "Faulted", "{body:?}: {state}");
        assert_eq!(state["Result"]["Message"], message.as_str());
        assert!(app.get_doc("bad/1").await.is_none());
        if body.starts_with('[') && body.len() > good.len() {
            // Like RavenDB, the commands read before the bad one are written.
            assert!(
                app.get_doc("good/1").await.is_some(),
                "{body:?}: good/1 was read before the error"
            );
        }
    }
}

#[tokio::test]
async fn counters_and_time_series_fail_naming_the_feature() {
    let app = TestApp::new();
    let body = r#"[{"Id":"users/1","Type":"Counters","Counters":{"DocumentId":"users/1","Operations":[{"Type":"Increment","CounterName":"likes","Delta":1}]}}]"#;
    let reply = bulk_insert(&app, 1, body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["Type"]
            .as_str()
            .expect("type")
            .ends_with("NotSupportedException")
    );
    assert!(
        reply.text().contains("counters is not supported"),
        "{}",
        reply.text()
    );

    let body = r#"[{"Id":"users/1","Type":"TimeSeriesBulkInsert","TimeSeries":{"Name":"hr","TimeFormat":"UnixTimeInMs","Appends":[[1,1,5]]}}]"#;
    let reply = bulk_insert(&app, 2, body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.text().contains("time series is not supported"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn operation_ids_do_not_collide() {
    let app = TestApp::new();
    let first = next_operation_id(&app).await;
    let reply = bulk_insert(&app, first, "[]").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(operation_state(&app, first).await["Status"], "Completed");

    // The same id again is refused, and the first operation's state is untouched.
    let reply = bulk_insert(&app, first, body_of(&[put("again/1", &json!({}))])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("already exists"), "{}", reply.text());
    assert!(app.get_doc("again/1").await.is_none());
    assert_eq!(operation_state(&app, first).await["Status"], "Completed");

    // An id the client made up moves the server's counter past it.
    let reply = bulk_insert(&app, 1000, "[]").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert!(next_operation_id(&app).await > 1000);

    for uri in [
        format!("/databases/{DB}/bulk_insert"),
        format!("/databases/{DB}/bulk_insert?id=abc"),
        format!("/databases/{DB}/bulk_insert?id=-1"),
    ] {
        let reply = app.send("POST", &uri, "[]", &[]).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, &uri, "BadRequestException");
    }
    let uri = "/databases/nope/bulk_insert?id=77".to_owned();
    let reply = app.send("POST", &uri, "[]", &[]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("Database-Missing"), Some("nope"));
}

#[tokio::test]
async fn everything_acknowledged_is_readable_across_many_chunks() {
    let app = TestApp::new();
    let n_docs = 40_000;
    let commands: Vec<String> = (0..n_docs)
        .map(|idx| {
            put(
                &format!("people/{idx}"),
                &json!({"Idx": idx, "Name": format!("person {idx}"), "@metadata": {"@collection": "People"}}),
            )
        })
        .collect();
    let reply = bulk_insert(&app, 1, in_pieces(body_of(&commands).as_bytes(), 8000)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    // Answered means durable and visible: no waiting.
    let stats = app
        .get(&format!("/databases/{DB}/collections/stats"))
        .await
        .json();
    assert_eq!(stats["Collections"]["People"], n_docs);
    for idx in [0, 1, 16_383, 16_384, 32_768, 39_999] {
        let doc = app.get_doc(&format!("people/{idx}")).await.expect("stored");
        assert_eq!(doc["Idx"], idx);
    }
    let state = operation_state(&app, 1).await;
    assert_eq!(state["Status"], "Completed");
    assert_eq!(state["Result"]["Total"], n_docs);
}

#[tokio::test]
async fn answers_at_the_closing_bracket_though_the_body_never_ends() {
    // The Node.js client never ends its request body; it waits for the answer after the `]`.
    use futures_util::StreamExt as _;
    let app = TestApp::new();
    let body = body_of(&[
        put("open/1", &json!({"A": 1})),
        put("open/2", &json!({"A": 2})),
    ]);
    let pieces: Vec<Result<Bytes, std::io::Error>> = body
        .as_bytes()
        .chunks(7)
        .map(|it| Ok(Bytes::copy_from_slice(it)))
        .collect();
    let never_ending = futures_util::stream::iter(pieces).chain(futures_util::stream::pending());
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        bulk_insert(&app, 3, Body::from_stream(never_ending)),
    )
    .await
    .expect("answered without the end of the body");
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(app.get_doc("open/2").await.expect("stored")["A"], 2);
}

#[tokio::test]
async fn skip_overwrite_if_unchanged_leaves_identical_documents_alone() {
    let app = TestApp::new();
    let same = json!({"Name": "Ann", "@metadata": {"@collection": "Users"}});
    let changed = json!({"Name": "Bob", "@metadata": {"@collection": "Users"}});
    let body = body_of(&[put("users/1", &same), put("users/2", &same)]);
    assert_eq!(bulk_insert(&app, 1, body).await.status, StatusCode::CREATED);
    let change_vector = |doc: &Value| doc["@metadata"]["@change-vector"].clone();
    let first_1 = change_vector(&app.get_doc("users/1").await.expect("users/1"));
    let first_2 = change_vector(&app.get_doc("users/2").await.expect("users/2"));
    let before = app.db_state().await;

    let uri = format!("/databases/{DB}/bulk_insert?id=2&skipOverwriteIfUnchanged=true");
    let body = body_of(&[put("users/1", &same), put("users/2", &changed)]);
    let reply = app.send("POST", &uri, body, &[]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    // users/1 was the same: untouched; users/2 changed: a new version.
    assert_eq!(
        change_vector(&app.get_doc("users/1").await.expect("users/1")),
        first_1
    );
    let second_2 = app.get_doc("users/2").await.expect("users/2");
    assert_eq!(second_2["Name"], "Bob");
    assert_ne!(change_vector(&second_2), first_2);
    assert_eq!(app.db_state().await.last_etag, before.last_etag + 1);

    // Without the option, the same document is written again.
    let reply = bulk_insert(&app, 3, body_of(&[put("users/1", &same)])).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_ne!(
        change_vector(&app.get_doc("users/1").await.expect("users/1")),
        first_1
    );
}

#[tokio::test]
async fn a_killed_bulk_insert_stops_and_stays_canceled() {
    let app = TestApp::new();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let data = receiver.recv().await?;
        Some((Ok::<Bytes, std::io::Error>(data), receiver))
    });
    let insert = bulk_insert(&app, 9, Body::from_stream(stream));
    let control = async {
        let first = format!("[{}", put("killed/1", &json!({"A": 1})));
        sender.send(Bytes::from(first)).await.expect("send");
        let state_uri = format!("/databases/{DB}/operations/state?id=9");
        while app.get(&state_uri).await.status != StatusCode::OK {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let kill = app
            .send(
                "POST",
                &format!("/databases/{DB}/operations/kill?id=9"),
                "",
                &[],
            )
            .await;
        assert_eq!(kill.status, StatusCode::OK, "{}", kill.text());
        let rest = format!(",{}]", put("killed/2", &json!({"A": 2})));
        sender.send(Bytes::from(rest)).await.expect("send");
    };
    let (reply, ()) = tokio::join!(insert, control);
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert!(reply.text().contains("canceled"), "{}", reply.text());
    assert_eq!(operation_state(&app, 9).await["Status"], "Canceled");
    assert!(app.get_doc("killed/1").await.is_none());
    assert!(app.get_doc("killed/2").await.is_none());
}
