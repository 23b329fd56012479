//! OLAP ETL end to end: an in-process Corvid, tasks defined over HTTP, Parquet files in a
//! real folder (and, in `etl_olap_s3.rs`, a real S3 server), read back with DuckDB
//! (`scripts/services/duckdb.sh` installs it in `~/.cache/corvid/duckdb-venv`).
//!
//! Without DuckDB a test says `SKIPPED …` and passes; with `CI` set it fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use corvid_etl::{EtlOptions, OlapPaths};
use serde_json::{Value, json};

use common::live::{Server, database, etl_options, eventually_within, send, start_with_options};
use common::olap::{DuckDb, olap_task, put, wait_for_configuration_error};

/// A server whose OLAP directory is a fresh temporary folder, with database `src`.
async fn source(max_batch_items: usize) -> (Server, corvid_client::Client, tempfile::TempDir) {
    let lake = tempfile::tempdir().unwrap();
    let server = start_with_options(EtlOptions {
        olap: OlapPaths {
            dir: Some(lake.path().to_path_buf()),
            allow_any_path: false,
            staging_dir: None,
        },
        max_batch_items,
        ..etl_options()
    })
    .await;
    let src = database(&server, "src").await;
    (server, src, lake)
}

async fn local_connection(server: &Server, folder: &str) {
    put(
        server,
        "connection-strings",
        json!({"Type": "Olap", "Name": "lake", "LocalSettings": {"FolderPath": folder}}),
    )
    .await;
}

async fn put_doc(src: &corvid_client::Client, id: &str, document: &Value) -> Result<(), String> {
    src.put(id, document, None)
        .await
        .map(|_| ())
        .map_err(|it| it.to_string())
}

fn order(idx: u64) -> Value {
    json!({
        "Company": format!("companies/{}", idx % 7),
        "Total": (idx * 125) as f64 / 100.0 + 0.25,
        "Quantity": idx,
        "OrderedAt": format!("2024-{:02}-{:02}T10:30:00.0000000Z", idx % 3 + 1, idx % 28 + 1),
        "Shipped": idx.is_multiple_of(2),
        "Lines": [{"Product": "p", "Qty": idx}],
        "Year": 2024,
        "Month": idx % 3 + 1,
        "@metadata": {"@collection": "Orders"},
    })
}

const SCRIPT: &str = "loadToOrders(partitionBy(['year', this.Year], ['month', this.Month]), {Company: this.Company, Total: this.Total, Quantity: this.Quantity, OrderedAt: this.OrderedAt, Shipped: this.Shipped, Lines: this.Lines});";

/// Every file under `root`, relative.
fn files(root: &Path) -> Vec<String> {
    let mut res = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                res.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    res.sort();
    res
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn olap_files_are_partitioned_typed_and_read_back_by_duckdb() {
    let Some(duckdb) = DuckDb::find("olap_files_are_partitioned_typed_and_read_back_by_duckdb")
    else {
        return;
    };
    let (server, src, lake) = source(8192).await;
    for idx in 0..90 {
        put_doc(&src, &format!("orders/{idx}"), &order(idx))
            .await
            .unwrap();
    }
    local_connection(&server, "lake").await;
    // Once a year: only the run when the task is saved.
    put(
        &server,
        "etl",
        olap_task(SCRIPT, "0 0 1 1 *", json!([]), false),
    )
    .await;
    let table = lake.path().join("lake/Orders");
    let glob = format!("{}/**/*.parquet", table.display());
    eventually_within(
        "the run published 90 rows",
        Duration::from_secs(30),
        || async { table.exists() && duckdb.count(&glob) == 90 },
    )
    .await;
    let listed = files(&lake.path().join("lake"));
    assert_eq!(listed.len(), 3, "one file per partition: {listed:?}");
    for file in &listed {
        assert!(file.starts_with("Orders/year=2024/month="), "{file}");
        assert!(file.ends_with(".parquet"), "{file}");
    }
    let rows = duckdb.query(&format!(
        "SELECT month, count(*), min(_id), typeof(any_value(Total)), typeof(any_value(Quantity)),
                typeof(any_value(OrderedAt)), typeof(any_value(Shipped)), typeof(any_value(Lines)),
                typeof(any_value(_lastModifiedTime)), typeof(any_value(year))
         FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY month ORDER BY month"
    ));
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0][0], json!(1));
    assert_eq!(rows[0][1], json!(30));
    assert_eq!(
        rows[0][3..],
        [
            json!("DECIMAL(38,2)"),
            json!("BIGINT"),
            json!("TIMESTAMP WITH TIME ZONE"),
            json!("BOOLEAN"),
            json!("VARCHAR"),
            json!("TIMESTAMP WITH TIME ZONE"),
            json!("BIGINT"),
        ],
        "{rows:?}"
    );
    let one = duckdb.query(&format!(
        "SELECT _id, Company, CAST(Total AS VARCHAR), Quantity, CAST(OrderedAt AS VARCHAR), Shipped, Lines
         FROM read_parquet('{glob}', hive_partitioning = true) WHERE _id = 'orders/4'"
    ));
    assert_eq!(
        one,
        vec![vec![
            json!("orders/4"),
            json!("companies/4"),
            json!("5.25"),
            json!(4),
            json!("2024-02-05 10:30:00+00"),
            json!(true),
            json!(r#"[{"Product":"p","Qty":4}]"#),
        ]]
    );
    // Nothing but the published files, nothing outside the folder.
    assert_eq!(files(lake.path()).len(), 3, "{:?}", files(lake.path()));
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_deletes_read_back_as_the_current_state() {
    let Some(duckdb) = DuckDb::find("updates_and_deletes_read_back_as_the_current_state") else {
        return;
    };
    let (server, src, lake) = source(8192).await;
    for idx in 0..20 {
        put_doc(&src, &format!("orders/{idx}"), &order(idx))
            .await
            .unwrap();
    }
    local_connection(&server, "lake").await;
    let config = olap_task(SCRIPT, "0 0 1 1 *", json!([]), true);
    put(&server, "etl", config.clone()).await;
    let glob = format!("{}/lake/Orders/**/*.parquet", lake.path().display());
    eventually_within("the first run", Duration::from_secs(30), || async {
        lake.path().join("lake/Orders").exists() && duckdb.count(&glob) == 20
    })
    .await;
    for idx in 0..5 {
        let mut changed = order(idx);
        changed["Company"] = json!("companies/changed");
        put_doc(&src, &format!("orders/{idx}"), &changed)
            .await
            .unwrap();
    }
    for idx in 15..20 {
        src.delete(&format!("orders/{idx}"), None).await.unwrap();
    }
    // Saving the task again starts a run.
    let (_, tasks) = send("GET", &format!("{}/databases/src/tasks", server.url), None).await;
    let task_id = tasks["OngoingTasksList"][0]["TaskId"].as_u64().unwrap();
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl?id={task_id}", server.url),
        Some(config),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // 20 + 5 updates + 5 deletes.
    eventually_within("the second run", Duration::from_secs(30), || async {
        duckdb.count(&glob) == 30
    })
    .await;
    let current = duckdb.query(&format!(
        "SELECT _id, Company FROM (
            SELECT *, row_number() OVER (PARTITION BY _id ORDER BY _lastModifiedTime DESC) AS newest
            FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true))
         WHERE newest = 1 AND NOT _deleted ORDER BY _id"
    ));
    assert_eq!(current.len(), 15, "{current:?}");
    let changed: Vec<&Vec<Value>> = current
        .iter()
        .filter(|it| it[1] == json!("companies/changed"))
        .collect();
    assert_eq!(changed.len(), 5, "{current:?}");
    assert!(!current.iter().any(|it| it[0] == json!("orders/17")));
    // The delete rows are in the table's partitions, with Hive's null value.
    let deletes = duckdb.query(&format!(
        "SELECT count(*), count(year), count(month) FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true) WHERE _deleted"
    ));
    assert_eq!(deletes, vec![vec![json!(5), json!(0), json!(0)]]);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_batch_of_other_types_gets_its_own_file_in_the_same_run() {
    let Some(duckdb) =
        DuckDb::find("a_later_batch_of_other_types_gets_its_own_file_in_the_same_run")
    else {
        return;
    };
    // Batches of 10 documents: the second batch's `Code` is text, the first's numbers.
    let (server, src, lake) = source(10).await;
    for idx in 0..20u64 {
        let code = if idx < 10 {
            json!(idx)
        } else {
            json!(format!("C-{idx}"))
        };
        put_doc(
            &src,
            &format!("items/{idx:02}"),
            &json!({"Code": code, "@metadata": {"@collection": "Items"}}),
        )
        .await
        .unwrap();
    }
    local_connection(&server, "lake").await;
    let mut config = olap_task(
        "loadToItems(noPartition(), {Code: this.Code});",
        "0 0 1 1 *",
        json!([{"TableName": "Items", "DocumentIdColumn": "ItemId"}]),
        false,
    );
    config["Transforms"][0]["Collections"] = json!(["Items"]);
    put(&server, "etl", config).await;
    let table = lake.path().join("lake/Items");
    eventually_within("the run", Duration::from_secs(30), || async {
        table.exists() && files(&table).len() == 2
    })
    .await;
    let listed = files(&table);
    let types: Vec<Value> = listed
        .iter()
        .map(|file| {
            let rows = duckdb.query(&format!(
                "SELECT count(*), typeof(any_value(Code)), min(ItemId) FROM read_parquet('{}')",
                table.join(file).display()
            ));
            json!(rows[0])
        })
        .collect();
    assert_eq!(
        types,
        vec![
            json!([10, "BIGINT", "items/00"]),
            json!([10, "VARCHAR", "items/10"])
        ],
        "{listed:?}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_are_refused_or_reported_and_paths_stay_inside_the_folder() {
    let Some(duckdb) =
        DuckDb::find("bad_configurations_are_refused_or_reported_and_paths_stay_inside_the_folder")
    else {
        return;
    };
    let (server, src, lake) = source(8192).await;
    let url = format!("{}/databases/src/admin", server.url);
    // A folder outside the OLAP directory, and one through `..`.
    for folder in ["/etc/corvid-olap", "../escape"] {
        let (status, body) = send(
            "PUT",
            &format!("{url}/connection-strings"),
            Some(json!({"Type": "Olap", "Name": "out", "LocalSettings": {"FolderPath": folder}})),
        )
        .await;
        assert_eq!(status, 400, "{folder}: {body}");
        assert!(
            body["Message"]
                .as_str()
                .unwrap()
                .contains("outside the OLAP directory"),
            "{body}"
        );
    }
    local_connection(&server, "lake").await;
    // A bad cron expression is refused when saved, naming the field.
    let (status, body) = send(
        "PUT",
        &format!("{url}/etl"),
        Some(olap_task(SCRIPT, "*/5 25 * * *", json!([]), false)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["Message"].as_str().unwrap().contains("hour `25`"),
        "{body}"
    );
    // Partition values that look like paths stay one folder each.
    for (idx, region) in ["../../outside", "/abs", "a\\b", ".."].iter().enumerate() {
        put_doc(
            &src,
            &format!("orders/{idx}"),
            &json!({"Region": region, "@metadata": {"@collection": "Orders"}}),
        )
        .await
        .unwrap();
    }
    put(
        &server,
        "etl",
        olap_task(
            "loadToOrders(partitionBy(this.Region), {Region: this.Region});",
            "0 0 1 1 *",
            json!([]),
            false,
        ),
    )
    .await;
    let table = lake.path().join("lake/Orders");
    eventually_within("the run", Duration::from_secs(30), || async {
        table.exists() && files(&table).len() == 4
    })
    .await;
    let glob = format!("{}/**/*.parquet", table.display());
    let regions = duckdb.query(&format!(
        "SELECT _partition, Region FROM read_parquet('{glob}', hive_partitioning = true) ORDER BY Region"
    ));
    assert_eq!(regions.len(), 4, "{regions:?}");
    for row in &regions {
        assert_eq!(
            row[0], row[1],
            "DuckDB reads the escaped value back: {regions:?}"
        );
    }
    assert_eq!(files(lake.path()).len(), 4, "{:?}", files(lake.path()));
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_folder_is_a_configuration_error_and_progress_stays() {
    let (server, src, lake) = source(8192).await;
    // A regular file where the folder should be: nothing can be written under it.
    std::fs::write(lake.path().join("blocked"), b"not a folder").unwrap();
    put_doc(&src, "orders/1", &order(1)).await.unwrap();
    local_connection(&server, "blocked/lake").await;
    put(
        &server,
        "etl",
        olap_task(SCRIPT, "0 0 1 1 *", json!([]), false),
    )
    .await;
    wait_for_configuration_error(&server, "blocked").await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_endpoint_shows_rows_types_and_files() {
    let (server, src, _lake) = source(8192).await;
    put_doc(&src, "orders/4", &order(4)).await.unwrap();
    local_connection(&server, "lake").await;
    let (status, body) = send(
        "POST",
        &format!("{}/databases/src/admin/etl/olap/test", server.url),
        Some(json!({
            "DocumentId": "orders/4",
            "IsDelete": false,
            "Configuration": olap_task(SCRIPT, "0 0 * * *", json!([]), false),
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let item = &body["ItemsByPartition"][0];
    assert_eq!(item["Key"], "Orders/year=2024/month=2", "{body}");
    assert!(
        item["FilePath"]
            .as_str()
            .unwrap()
            .starts_with("Orders/year=2024/month=2/src_orders-lake_Script1_"),
        "{body}"
    );
    let columns: Vec<(String, String)> = item["Columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| {
            (
                it["Name"].as_str().unwrap().to_owned(),
                it["Type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(columns[0].0, "_id");
    assert_eq!(columns[1].0, "_lastModifiedTime");
    assert!(columns.iter().any(|it| it.0 == "Total"), "{columns:?}");
    assert_eq!(item["Columns"][0]["Values"], json!(["orders/4"]));
    // A script error is reported, not thrown.
    let (status, body) = send(
        "POST",
        &format!("{}/databases/src/admin/etl/olap/test", server.url),
        Some(json!({
            "DocumentId": "orders/4",
            "Configuration": olap_task("loadToOrders('not a key', {A: 1});", "0 0 * * *", json!([]), false),
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["TransformationErrors"][0]["Error"]
            .as_str()
            .unwrap()
            .contains("partitionBy"),
        "{body}"
    );
    // A member named like a column OLAP ETL writes itself is an error for that document.
    let (status, body) = send(
        "POST",
        &format!("{}/databases/src/admin/etl/olap/test", server.url),
        Some(json!({
            "DocumentId": "orders/4",
            "Configuration": olap_task(
                "loadToOrders(noPartition(), {_id: 1, Total: this.Total});",
                "0 0 * * *",
                json!([]),
                false,
            ),
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["TransformationErrors"][0]["Error"]
            .as_str()
            .unwrap()
            .contains("`_id` is a column OLAP ETL writes itself"),
        "{body}"
    );
    assert_eq!(body["ItemsByPartition"], json!([]), "{body}");
    drop(server);
}
