//! What the official clients need at an application's start and around it: the database record
//! (`GET /admin/databases?name=`), complete `/stats`, the shape of `GET /task`, and the clean
//! error of every unsupported feature.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::{DB, TestApp, assert_error};

const NOT_SUPPORTED: &str = "Raven.Client.Exceptions.NotSupportedException";

/// Creates `name` through the API (so its ETL runs) and returns nothing but success.
async fn create_database(app: &TestApp, name: &str) {
    let reply = app
        .send_json(
            "PUT",
            &format!("/admin/databases?name={name}"),
            &json!({"DatabaseName": name}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}

async fn put_connection_string(app: &TestApp, db: &str, connection: Value) {
    let uri = format!("/databases/{db}/admin/connection-strings");
    let reply = app.send_json("PUT", &uri, &connection).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

async fn add_task(app: &TestApp, db: &str, config: Value) -> u64 {
    let reply = app
        .send_json("PUT", &format!("/databases/{db}/admin/etl"), &config)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["TaskId"].as_u64().unwrap()
}

fn raven_task(name: &str) -> Value {
    json!({
        "EtlType": "Raven", "Name": name, "ConnectionStringName": "raven",
        "Transforms": [{"Name": "script1", "Collections": ["Users"], "Script": ""}],
    })
}

fn sql_task(name: &str) -> Value {
    json!({
        "EtlType": "Sql", "Name": name, "ConnectionStringName": "sql",
        "SqlTables": [{"TableName": "Orders", "DocumentIdColumn": "Id", "InsertOnlyMode": false}],
        "Transforms": [{"Name": "orders", "Collections": ["Orders"],
                        "Script": "loadToOrders({Total: this.Total})"}],
    })
}

/// A source database with a Raven and a SQL connection string (with a password) and a task each.
async fn database_with_etl(app: &TestApp, db: &str) -> (u64, u64) {
    create_database(app, db).await;
    put_connection_string(
        app,
        db,
        json!({"Type": "Raven", "Name": "raven", "Database": "elsewhere",
               "TopologyDiscoveryUrls": ["http://127.0.0.1:1"]}),
    )
    .await;
    put_connection_string(
        app,
        db,
        json!({"Type": "Sql", "Name": "sql", "FactoryName": "Npgsql",
               "ConnectionString": "Host=127.0.0.1;Port=1;Database=shop;Username=etl;Password=hunter2"}),
    )
    .await;
    let raven = add_task(app, db, raven_task("users-out")).await;
    let sql = add_task(app, db, sql_task("orders-out")).await;
    (raven, sql)
}

#[tokio::test]
async fn the_record_of_a_database_is_ravendbs_shape() {
    let app = TestApp::new();
    let reply = app.get(&format!("/admin/databases?name={DB}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let record = reply.json();
    assert_eq!(record["DatabaseName"], DB);
    assert_eq!(record["Disabled"], false);
    assert_eq!(record["Encrypted"], false);
    assert_eq!(record["Topology"]["Members"], json!(["A"]));
    assert_eq!(record["Topology"]["ReplicationFactor"], 1);
    assert_eq!(record["Settings"], json!({}));
    assert_eq!(record["Indexes"], json!({}));
    assert!(record["Etag"].is_u64(), "{record}");
    assert_eq!(record["RavenEtls"], json!([]));
    assert_eq!(record["SqlEtls"], json!([]));
    // The same database id the statistics give.
    let stats = app.get(&format!("/databases/{DB}/stats")).await.json();
    assert_eq!(
        record["Topology"]["DatabaseTopologyIdBase64"],
        stats["DatabaseId"]
    );
}

#[tokio::test]
async fn the_record_lists_the_etl_configuration_without_passwords() {
    let app = TestApp::new();
    let (raven_id, sql_id) = database_with_etl(&app, "shop").await;
    let record = app.get("/admin/databases?name=shop").await.json();

    assert_eq!(
        record["RavenConnectionStrings"]["raven"]["Database"],
        "elsewhere"
    );
    let sql = record["SqlConnectionStrings"]["sql"]["ConnectionString"]
        .as_str()
        .unwrap();
    assert!(
        !sql.contains("hunter2"),
        "a password left the server: {sql}"
    );
    assert!(sql.contains("Database=shop"), "{sql}");

    let raven_etls = record["RavenEtls"].as_array().unwrap();
    assert_eq!(raven_etls.len(), 1, "{record}");
    assert_eq!(raven_etls[0]["TaskId"], raven_id);
    assert_eq!(raven_etls[0]["Name"], "users-out");
    let sql_etls = record["SqlEtls"].as_array().unwrap();
    assert_eq!(sql_etls.len(), 1, "{record}");
    assert_eq!(sql_etls[0]["TaskId"], sql_id);
    assert_eq!(sql_etls[0]["SqlTables"][0]["TableName"], "Orders");
}

#[tokio::test]
async fn the_record_of_a_missing_database_is_a_404() {
    let app = TestApp::new();
    let reply = app.get("/admin/databases?name=nope").await;
    assert_error(
        &reply,
        StatusCode::NOT_FOUND,
        "/admin/databases?name=nope",
        "DatabaseDoesNotExistException",
    );
    assert!(reply.json()["Message"].as_str().unwrap().contains("nope"));

    let reply = app.get("/admin/databases").await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "/admin/databases",
        "BadRequestException",
    );
    // A deleted database has no record any more.
    create_database(&app, "gone").await;
    let reply = app
        .send_json(
            "DELETE",
            "/admin/databases",
            &json!({"DatabaseNames": ["gone"], "HardDelete": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let reply = app.get("/admin/databases?name=gone").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
}

/// Every field the Python client's `DatabaseStatistics.from_json` and the Node.js client read.
const STATS_FIELDS: [&str; 18] = [
    "CountOfConflicts",
    "CountOfCounterEntries",
    "CountOfDocuments",
    "CountOfDocumentsConflicts",
    "CountOfIndexes",
    "CountOfRevisionDocuments",
    "CountOfTimeSeriesSegments",
    "CountOfTombstones",
    "DatabaseChangeVector",
    "DatabaseId",
    "Indexes",
    "Is64Bit",
    "LastDatabaseEtag",
    "LastDocEtag",
    "LastIndexingTime",
    "Pager",
    "SizeOnDisk",
    "TempBuffersSizeOnDisk",
];

#[tokio::test]
async fn stats_are_complete_and_real() {
    let app = TestApp::new();
    let empty = app.get(&format!("/databases/{DB}/stats")).await.json();
    for field in STATS_FIELDS {
        assert!(empty.get(field).is_some(), "`{field}` missing from {empty}");
    }
    assert_eq!(empty["CountOfDocuments"], 0);
    assert_eq!(empty["LastDocEtag"], 0);
    assert_eq!(empty["DatabaseChangeVector"], "");
    assert_eq!(empty["Indexes"], json!([]));
    assert_eq!(empty["Is64Bit"], cfg!(target_pointer_width = "64"));

    // Enough data that the redb file must grow.
    for idx in 0..50 {
        let body = json!({"Text": "x".repeat(4000), "@metadata": {"@collection": "Notes"}});
        app.put_doc(&format!("notes/{idx}"), body).await;
    }
    let reply = app
        .send(
            "DELETE",
            &format!("/databases/{DB}/docs?id=notes/0"),
            "",
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());

    let stats = app.get(&format!("/databases/{DB}/stats")).await.json();
    assert_eq!(stats["CountOfDocuments"], 49);
    assert_eq!(stats["CountOfTombstones"], 1);
    let last_etag = stats["LastDocEtag"].as_u64().unwrap();
    assert_eq!(last_etag, 51);
    assert_eq!(stats["LastDatabaseEtag"], last_etag);
    let change_vector = stats["DatabaseChangeVector"].as_str().unwrap();
    assert!(
        change_vector.starts_with(&format!("A:{last_etag}-")),
        "{change_vector}"
    );

    let empty_size = empty["SizeOnDisk"]["SizeInBytes"].as_u64().unwrap();
    let size = stats["SizeOnDisk"]["SizeInBytes"].as_u64().unwrap();
    assert!(
        size > empty_size && size >= 49 * 4000,
        "SizeOnDisk {size} (empty {empty_size}) cannot hold 196 kB of documents"
    );
    assert_humane(&stats["SizeOnDisk"]);
    assert_eq!(
        stats["TempBuffersSizeOnDisk"],
        json!({"SizeInBytes": 0, "HumaneSize": "0 Bytes"})
    );
}

/// `HumaneSize` says the same as `SizeInBytes`, in RavenDB's units.
#[track_caller]
fn assert_humane(size: &Value) {
    let bytes = size["SizeInBytes"].as_u64().unwrap() as f64;
    let humane = size["HumaneSize"].as_str().unwrap();
    let (number, unit) = humane.split_once(' ').unwrap();
    let scale = match unit {
        "Bytes" => 1.0,
        "KBytes" => 1024.0,
        "MBytes" => 1024.0 * 1024.0,
        "GBytes" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unknown unit {other} in {humane}"),
    };
    let number: f64 = number.parse().unwrap();
    assert!(
        (number * scale - bytes).abs() <= scale * 0.005 + 0.5,
        "{humane} is not {bytes} bytes"
    );
    assert!(number < 1024.0, "{humane} should use a larger unit");
}

#[tokio::test]
async fn stats_of_a_missing_database_is_database_missing() {
    let app = TestApp::new();
    let reply = app.get("/databases/nope/stats").await;
    assert_error(
        &reply,
        StatusCode::SERVICE_UNAVAILABLE,
        "/databases/nope/stats",
        "DatabaseDoesNotExistException",
    );
    assert_eq!(reply.header("Database-Missing"), Some("nope"));
}

#[tokio::test]
async fn task_info_has_no_etl_type_inside_its_configuration() {
    let app = TestApp::new();
    let (raven_id, sql_id) = database_with_etl(&app, "shop").await;

    let raven = app
        .get(&format!(
            "/databases/shop/task?key={raven_id}&type=RavenEtl"
        ))
        .await;
    assert_eq!(raven.status, StatusCode::OK, "{}", raven.text());
    let raven = raven.json();
    assert_eq!(raven["TaskType"], "RavenEtl");
    assert_eq!(raven["TaskId"], raven_id);
    assert_eq!(raven["DestinationDatabase"], "elsewhere");
    let configuration = raven["Configuration"].as_object().unwrap();
    assert!(
        !configuration.contains_key("EtlType"),
        "EtlType inside Configuration: {raven}"
    );
    assert_eq!(configuration["Name"], "users-out");
    assert_eq!(configuration["TaskId"], raven_id);
    assert_eq!(configuration["ConnectionStringName"], "raven");
    assert_eq!(
        configuration["Transforms"][0]["Collections"],
        json!(["Users"])
    );

    let sql = app
        .get("/databases/shop/task?taskName=orders-out&type=SqlEtl")
        .await;
    assert_eq!(sql.status, StatusCode::OK, "{}", sql.text());
    let sql = sql.json();
    assert_eq!(sql["TaskType"], "SqlEtl");
    assert_eq!(sql["TaskId"], sql_id);
    let configuration = sql["Configuration"].as_object().unwrap();
    assert!(!configuration.contains_key("EtlType"), "{sql}");
    assert_eq!(configuration["SqlTables"][0]["TableName"], "Orders");

    // The task list has the same shape.
    let tasks = app.get("/databases/shop/tasks").await.json();
    for task in tasks["OngoingTasksList"].as_array().unwrap() {
        assert!(task["Configuration"].get("EtlType").is_none(), "{task}");
    }

    // A missing task is a 404, which clients read as "no such task".
    let reply = app.get("/databases/shop/task?key=999&type=RavenEtl").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
}

/// Each unsupported feature: a path below `/databases/{db}` and the method a client uses.
const UNSUPPORTED: [(&str, &str, &str); 11] = [
    ("PUT", "/admin/indexes", "static indexes"),
    ("GET", "/counters?docId=users/1", "counters"),
    ("POST", "/counters", "counters"),
    (
        "GET",
        "/timeseries?docId=users/1&name=HeartRate",
        "time series",
    ),
    ("GET", "/timeseries/ranges?docId=users/1", "time series"),
    ("GET", "/revisions?id=users/1", "revisions"),
    ("POST", "/admin/revisions/config", "revisions"),
    ("PUT", "/subscriptions", "subscriptions"),
    ("POST", "/subscriptions/try?pageSize=1", "subscriptions"),
    ("GET", "/cmpxchg?key=emails/alice", "compare exchange"),
    (
        "PUT",
        "/cmpxchg?key=emails/alice&index=0",
        "compare exchange",
    ),
];

#[tokio::test]
async fn unsupported_features_answer_a_clean_error_naming_them() {
    let app = TestApp::new();
    for (method, path, feature) in UNSUPPORTED {
        let uri = format!("/databases/{DB}{path}");
        let reply = app.send(method, &uri, "{}", &[]).await;
        assert_error(
            &reply,
            StatusCode::NOT_IMPLEMENTED,
            &uri,
            "NotSupportedException",
        );
        let body = reply.json();
        assert_eq!(body["Type"], NOT_SUPPORTED);
        assert_eq!(
            body["Message"],
            format!("Corvid does not support {feature}"),
            "{method} {uri}"
        );
        // The Node.js client shows `Error`; it must name the feature too.
        assert!(body["Error"].as_str().unwrap().contains(feature), "{body}");
    }
}

#[tokio::test]
async fn converted_handlers_reject_bad_input_in_ravendbs_shape() {
    let app = TestApp::new();
    // Unknown database, through the `Db` extractor.
    for path in [
        "/databases/nope/hilo/next?tag=users",
        "/databases/nope/attachments?id=a&name=b",
        "/databases/nope/task?key=1&type=RavenEtl",
        "/databases/nope/etl/stats",
    ] {
        let reply = app.get(path).await;
        assert_error(
            &reply,
            StatusCode::SERVICE_UNAVAILABLE,
            path,
            "DatabaseDoesNotExistException",
        );
    }
    // A query string that is not UTF-8 once decoded, through the `Params` extractor.
    for path in [
        format!("/databases/{DB}/hilo/next?tag=%FF"),
        format!("/databases/{DB}/attachments?id=%FF&name=b"),
        "/admin/databases?name=%FF".to_owned(),
        "/topology?name=%FF".to_owned(),
    ] {
        let reply = app.get(&path).await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            &path,
            "BadRequestException",
        );
    }
    // A body that is not a JSON object, through the `JsonObject` extractor.
    let path = format!("/databases/{DB}/admin/etl/raven/test");
    let reply = app.send("POST", &path, "[1, 2]", &[]).await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        &path,
        "BadRequestException",
    );
}
