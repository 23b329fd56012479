//! OLAP ETL to S3 end to end: an in-process Corvid, a task defined over HTTP with RavenDB's
//! `S3Settings`, and a real S3-compatible server — moto at 127.0.0.1:4566
//! (`scripts/services/moto.sh`). Each test uses its own bucket and deletes it at the end; the
//! objects are downloaded with boto3 (moto's venv) and read back with DuckDB.
//!
//! Without moto or DuckDB a test says `SKIPPED …` and passes; with `CI` set it fails.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../corvid-etl/tests/common/mod.rs"]
mod services;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use corvid_etl::EtlOptions;
use serde_json::{Value, json};

use common::live::{database, etl_options, eventually_within, send, start_with_options};
use common::olap::{DuckDb, olap_task, put, wait_for_configuration_error};

const MOTO_ADDR: &str = "127.0.0.1:4566";
const MOTO_URL: &str = "http://127.0.0.1:4566";

fn moto_python() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/corvid/moto-venv/bin/python")
}

/// Runs boto3 against moto: `action` is `create`, `delete` (the bucket and its objects),
/// `list` (prints the keys as JSON) or `download` (every object into `dir`).
fn s3(action: &str, bucket: &str, dir: Option<&Path>) -> String {
    let program = r#"
import boto3, json, os, sys
action, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=sys.argv[3], region_name="us-east-1",
                  aws_access_key_id="AKIDCORVIDTEST", aws_secret_access_key="secret")
if action == "create":
    s3.create_bucket(Bucket=bucket)
elif action == "list":
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    print(json.dumps(sorted(o["Key"] for p in pages for o in p.get("Contents", []))))
elif action == "download":
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for key in (o["Key"] for p in pages for o in p.get("Contents", [])):
        path = os.path.join(sys.argv[4], key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, key, path)
elif action == "delete":
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for key in [o["Key"] for p in pages for o in p.get("Contents", [])]:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
"#;
    let mut command = Command::new(moto_python());
    command.args(["-c", program, action, bucket, MOTO_URL]);
    if let Some(dir) = dir {
        command.arg(dir);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "boto3 {action}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn s3_connection(bucket: &str, secret: &str) -> Value {
    json!({"Type": "Olap", "Name": "lake", "S3Settings": {
        "AwsAccessKey": "AKIDCORVIDTEST", "AwsSecretKey": secret, "AwsRegionName": "us-east-1",
        "BucketName": bucket, "RemoteFolderName": "exports/shop", "CustomServerUrl": MOTO_URL,
        "ForcePathStyle": true}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn olap_files_reach_s3_partitioned_and_read_back_by_duckdb() {
    let test = "olap_files_reach_s3_partitioned_and_read_back_by_duckdb";
    if !services::service_available("moto (S3)", MOTO_ADDR, test) {
        return;
    }
    let Some(duckdb) = DuckDb::find(test) else {
        return;
    };
    let bucket = services::unique_name("olap").replace('_', "-");
    s3("create", &bucket, None);
    let server = start_with_options(EtlOptions { ..etl_options() }).await;
    let src = database(&server, "src").await;
    for idx in 0..50u64 {
        src.put(
            &format!("orders/{idx}"),
            &json!({"Year": 2020 + idx % 2, "Total": idx as f64 + 0.5, "Note": format!("n {idx}"),
                    "@metadata": {"@collection": "Orders"}}),
            None,
        )
        .await
        .unwrap();
    }
    put(
        &server,
        "connection-strings",
        s3_connection(&bucket, "secret"),
    )
    .await;
    // The secret is never shown.
    let (_, shown) = send(
        "GET",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        None,
    )
    .await;
    assert_eq!(
        shown["OlapConnectionStrings"]["lake"]["S3Settings"]["AwsSecretKey"], "*****",
        "{shown}"
    );
    put(
        &server,
        "etl",
        olap_task(
            "loadToOrders(partitionBy(['year', this.Year]), {Total: this.Total, Note: this.Note});",
            "0 0 1 1 *",
            json!([]),
            false,
        ),
    )
    .await;
    eventually_within(
        "two files in the bucket",
        Duration::from_secs(30),
        || async {
            let keys: Vec<String> = serde_json::from_str(&s3("list", &bucket, None)).unwrap();
            keys.len() == 2
        },
    )
    .await;
    let keys: Vec<String> = serde_json::from_str(&s3("list", &bucket, None)).unwrap();
    for key in &keys {
        assert!(key.starts_with("exports/shop/Orders/year=202"), "{keys:?}");
        assert!(key.ends_with(".parquet"), "{keys:?}");
    }
    let local = tempfile::tempdir().unwrap();
    s3("download", &bucket, Some(local.path()));
    let glob = format!(
        "{}/exports/shop/Orders/**/*.parquet",
        local.path().display()
    );
    let rows = duckdb.query(&format!(
        "SELECT year, count(*), CAST(sum(Total) AS VARCHAR) FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY year ORDER BY year"
    ));
    assert_eq!(
        rows,
        vec![
            vec![json!(2020), json!(25), json!("612.5")],
            vec![json!(2021), json!(25), json!("637.5")],
        ]
    );
    drop(server);
    s3("delete", &bucket, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_a_configuration_error_and_progress_stays() {
    let test = "a_missing_bucket_is_a_configuration_error_and_progress_stays";
    if !services::service_available("moto (S3)", MOTO_ADDR, test) {
        return;
    }
    let bucket = services::unique_name("nobucket").replace('_', "-");
    let server = start_with_options(etl_options()).await;
    let src = database(&server, "src").await;
    src.put(
        "orders/1",
        &json!({"Total": 1, "@metadata": {"@collection": "Orders"}}),
        None,
    )
    .await
    .unwrap();
    put(
        &server,
        "connection-strings",
        s3_connection(&bucket, "secret"),
    )
    .await;
    put(
        &server,
        "etl",
        olap_task(
            "loadToOrders(noPartition(), {Total: this.Total});",
            "0 0 1 1 *",
            json!([]),
            false,
        ),
    )
    .await;
    wait_for_configuration_error(&server, &bucket).await;
    // Once the bucket exists, the next attempt publishes.
    s3("create", &bucket, None);
    eventually_within(
        "the file in the bucket",
        Duration::from_secs(30),
        || async {
            let keys: Vec<String> = serde_json::from_str(&s3("list", &bucket, None)).unwrap();
            keys.len() == 1
        },
    )
    .await;
    drop(server);
    s3("delete", &bucket, None);
}
