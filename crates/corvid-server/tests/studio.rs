//! The Studio's serving (redirect, caching, compression) and the collection paging it uses.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{DB, TestApp, assert_error};
use serde_json::json;

/// The path `index.html` gives for one of the Studio's files.
fn asset_path(index: &str, file: &str) -> String {
    let end = index.find(file).unwrap() + file.len();
    let start = index[..end].rfind('"').unwrap() + 1;
    index[start..end].to_owned()
}

#[tokio::test]
async fn the_root_redirects_to_the_studio() {
    let app = TestApp::new();
    for path in ["/", "/studio", "/studio/"] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, StatusCode::FOUND, "{path}");
        assert_eq!(
            reply.header("location"),
            Some("/studio/index.html"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_index_is_revalidated_and_assets_are_cached_for_good() {
    let app = TestApp::new();
    let index = app.get("/studio/index.html").await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    assert!(
        index
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let etag = index.header("etag").unwrap().to_owned();
    let again = app
        .send("GET", "/studio/index.html", "", &[("If-None-Match", &etag)])
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());

    let text = index.text();
    let app_js = asset_path(&text, "js/app.js");
    let asset = app.get(&app_js).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(
        asset.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(
        asset
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(asset.text().contains("import"));

    // Compressed for a browser that takes gzip, and smaller.
    let gzip = app
        .send(
            "GET",
            &app_js,
            "",
            &[("Accept-Encoding", "gzip, deflate, br")],
        )
        .await;
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert!(gzip.body.len() < asset.body.len());
    assert_eq!(&gzip.body[..2], &[0x1f, 0x8b]);

    // A page of an older build still gets the files, but never keeps them.
    let old = app_js.replacen(&app_js[15..27], "000000000000", 1);
    let reply = app.get(&old).await;
    assert_eq!(reply.status, StatusCode::OK, "{old}");
    assert_eq!(reply.header("cache-control"), Some("no-cache"));

    let missing = app.get("/studio/assets/x/js/nothing.js").await;
    assert_error(
        &missing,
        StatusCode::NOT_FOUND,
        "/studio/assets/x/js/nothing.js",
        "RouteNotFoundException",
    );
    // No way out of the Studio's own files.
    let escape = app.get("/studio/assets/x/../../../Cargo.toml").await;
    assert_ne!(escape.status, StatusCode::OK);
}

#[tokio::test]
async fn a_collection_is_paged_newest_first_from_its_own_index() {
    let app = TestApp::new();
    for i in 1..=25 {
        app.put_doc(
            &format!("companies/{i}"),
            json!({"Name": format!("c{i}"), "@metadata": {"@collection": "Companies"}}),
        )
        .await;
        app.put_doc(
            &format!("orders/{i}"),
            json!({"N": i, "@metadata": {"@collection": "Orders"}}),
        )
        .await;
    }
    // An update moves a document to the front.
    app.put_doc(
        "companies/3",
        json!({"Name": "updated", "@metadata": {"@collection": "Companies"}}),
    )
    .await;

    let ids = |reply: &common::Reply| -> Vec<String> {
        reply.json()["Results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|it| it["@metadata"]["@id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = app
        .get(&format!(
            "/databases/{DB}/collections/docs?name=Companies&start=0&pageSize=10"
        ))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let first_ids = ids(&first);
    assert_eq!(first_ids.len(), 10);
    assert_eq!(first_ids[0], "companies/3");
    assert_eq!(first_ids[1], "companies/25");
    assert!(first_ids.iter().all(|it| it.starts_with("companies/")));

    let last = app
        .get(&format!(
            "/databases/{DB}/collections/docs?name=companies&start=20&pageSize=10"
        ))
        .await;
    let last_ids = ids(&last);
    assert_eq!(
        last_ids,
        [
            "companies/6",
            "companies/5",
            "companies/4",
            "companies/2",
            "companies/1"
        ]
    );

    let none = app
        .get(&format!("/databases/{DB}/collections/docs?name=Nothing"))
        .await;
    assert_eq!(ids(&none), Vec::<String>::new());

    let reply = app.get(&format!("/databases/{DB}/collections/docs")).await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        &format!("/databases/{DB}/collections/docs"),
        "BadRequestException",
    );
}
