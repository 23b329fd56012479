//! `POST /databases/{db}/multi_get` (lazy operations): inner requests go through the same
//! routes, with their headers (so `If-None-Match` gives an inner 304), in order.

// The shared helpers in `common` unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::{DB, TestApp, assert_error};

fn multi_get_uri() -> String {
    format!("/databases/{DB}/multi_get")
}

async fn multi_get(app: &TestApp, requests: Value) -> Vec<Value> {
    let reply = app
        .send_json("POST", &multi_get_uri(), &json!({ "Requests": requests }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let mut body = reply.json();
    let Value::Array(results) = body["Results"].take() else {
        panic!("`Results` is not an array: {body}");
    };
    results
}

fn user(name: &str) -> Value {
    json!({"Name": name, "@metadata": {"@collection": "Users"}})
}

#[tokio::test]
async fn loads_and_queries_answer_in_order_with_their_etags() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann")).await;
    app.put_doc("users/2", user("Bob")).await;
    let results = multi_get(
        &app,
        json!([
            {"Url": format!("/databases/{DB}/docs"), "Query": "?&id=users%2F1", "Method": null, "Headers": {}},
            {"Url": format!("/databases/{DB}/docs"), "Query": "?&id=users%2F404", "Headers": {}},
            {"Url": format!("/databases/{DB}/queries"), "Query": "?queryHash=1", "Method": "POST",
             "Headers": {}, "Content": {"Query": "from Users"}},
            // The Node.js client's form: the body as a string of JSON.
            {"Url": format!("/databases/{DB}/queries"), "Query": "?queryHash=2", "Method": "POST",
             "Headers": {}, "Content": "{\"Query\":\"from Users where Name = 'Bob'\"}"},
        ]),
    )
    .await;
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["StatusCode"], 200);
    assert_eq!(results[0]["Result"]["Results"][0]["Name"], "Ann");
    // The same ETag as the request on its own.
    let direct = app
        .get(&format!("/databases/{DB}/docs?&id=users%2F1"))
        .await;
    assert_eq!(
        results[0]["Headers"]["ETag"],
        direct.header("ETag").expect("etag")
    );
    assert_eq!(results[1]["StatusCode"], 404);
    assert_eq!(results[1]["Result"], Value::Null);
    assert_eq!(results[2]["StatusCode"], 200);
    assert_eq!(results[2]["Result"]["TotalResults"], 2);
    assert!(results[2]["Headers"]["ETag"].is_string(), "{}", results[2]);
    assert_eq!(results[3]["StatusCode"], 200, "{}", results[3]);
    assert_eq!(results[3]["Result"]["Results"][0]["Name"], "Bob");
}

#[tokio::test]
async fn if_none_match_inside_gives_a_304_until_the_document_changes() {
    let app = TestApp::new();
    app.put_doc("users/1", user("Ann")).await;
    let load = |etag: &str| {
        json!([{"Url": format!("/databases/{DB}/docs"), "Query": "?&id=users%2F1",
                "Headers": {"If-None-Match": etag}}])
    };
    let first = multi_get(&app, load("\"none\"")).await;
    assert_eq!(first[0]["StatusCode"], 200);
    let etag = first[0]["Headers"]["ETag"]
        .as_str()
        .expect("etag")
        .to_owned();

    let again = multi_get(&app, load(&etag)).await;
    assert_eq!(again[0]["StatusCode"], 304);
    assert_eq!(again[0]["Result"], Value::Null);

    app.put_doc("users/1", user("Annie")).await;
    let changed = multi_get(&app, load(&etag)).await;
    assert_eq!(changed[0]["StatusCode"], 200);
    assert_eq!(changed[0]["Result"]["Results"][0]["Name"], "Annie");
}

#[tokio::test]
async fn inner_errors_stay_inside_and_multi_get_does_not_recurse() {
    let app = TestApp::new();
    let results = multi_get(
        &app,
        json!([
            {"Url": format!("/databases/{DB}/nothing-here"), "Headers": {}},
            {"Url": multi_get_uri(), "Method": "POST", "Content": {"Requests": []}},
            {"Url": "/databases/elsewhere/docs", "Query": "id=a"},
            {"Url": "no-slash"},
            {"Url": format!("/databases/{DB}/docs"), "Method": "NOT A METHOD"},
            {"Url": format!("/databases/{DB}/docs"), "Headers": {"bad header": "x"}},
            {"Url": format!("/databases/{DB}/docs"), "Query": 7},
            "not an object",
        ]),
    )
    .await;
    let statuses: Vec<u64> = results
        .iter()
        .map(|it| it["StatusCode"].as_u64().expect("a status"))
        .collect();
    assert_eq!(statuses, [400, 400, 503, 400, 400, 400, 400, 400]);
    for result in &results {
        assert!(result["Result"]["Message"].is_string(), "{result}");
    }
    assert!(
        results[1]["Result"]["Type"]
            .as_str()
            .expect("type")
            .ends_with("RouteNotFoundException"),
        "{}",
        results[1]
    );
}

#[tokio::test]
async fn bad_bodies_are_400() {
    let app = TestApp::new();
    let uri = multi_get_uri();
    let reply = app.send("POST", &uri, "garbage", &[]).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &uri, "BadRequestException");
    let reply = app.send_json("POST", &uri, &json!({})).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &uri, "BadRequestException");
    let reply = app
        .send_json("POST", &uri, &json!({"Requests": "all"}))
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &uri, "BadRequestException");
    let too_many: Vec<Value> = (0..1025)
        .map(|_| json!({"Url": format!("/databases/{DB}/stats")}))
        .collect();
    let reply = app
        .send_json("POST", &uri, &json!({ "Requests": too_many }))
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, &uri, "BadRequestException");
    let reply = app
        .send_json(
            "POST",
            "/databases/nowhere/multi_get",
            &json!({"Requests": []}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
}
