//! SQL ETL across a real `corvid` process and the machine's PostgreSQL: the source killed
//! with SIGKILL at several points of a 20,000-document ETL; the table must end up with exactly
//! one current row per live document — none missing, none duplicated, none stale.
//!
//! Without PostgreSQL the test says `SKIPPED …` and passes; with `CI` set it fails.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

mod common;
#[path = "../../corvid-etl/tests/common/mod.rs"]
mod services;

use common::{options, postgres, send, start};
use corvid_client::{Client, Command as BatchCommand, create_database};
use serde_json::{Value, json};

async fn insert_users(client: &Client, range: std::ops::Range<usize>, version: i64) {
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(1000) {
        let commands: Vec<BatchCommand> = chunk
            .iter()
            .map(|idx| BatchCommand::Put {
                id: format!("users/{idx}"),
                document: json!({"Name": format!("user {idx}"), "Version": version,
                                 "@metadata": {"@collection": "Users"}}),
                change_vector: None,
            })
            .collect();
        client.bulk_docs(&commands).await.unwrap();
    }
}

async fn row_count(pg: &tokio_postgres::Client, table: &str) -> i64 {
    pg.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .await
        .map(|row| row.get(0))
        .unwrap_or(0)
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_sql_etl_loses_and_duplicates_no_row() {
    let test = "sigkill_mid_sql_etl_loses_and_duplicates_no_row";
    if !services::service_available("PostgreSQL", services::POSTGRES_ADDR, test) {
        return;
    }
    let pg = postgres().await;
    let schema = services::unique_name("kill");
    let table = format!("{schema}.\"Users\"");
    pg.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {table} (\"DocId\" varchar(50) NOT NULL, \"Name\" text, \"Version\" bigint);
         CREATE INDEX ON {table} (\"DocId\");"
    ))
    .await
    .unwrap();

    let source_dir = tempfile::tempdir().unwrap();
    let mut source = start(source_dir.path());
    create_database(&source.url, "src", &options())
        .await
        .unwrap();
    let client = Client::new(std::slice::from_ref(&source.url), "src", options()).unwrap();
    insert_users(&client, 0..20_000, 1).await;
    send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", source.url),
        json!({"Type": "Sql", "Name": "pg", "FactoryName": "Npgsql",
               "ConnectionString": services::POSTGRES_CS}),
    )
    .await;
    send(
        "PUT",
        &format!("{}/databases/src/admin/etl", source.url),
        json!({"EtlType": "Sql", "Name": "users", "ConnectionStringName": "pg",
               "SqlTables": [{"TableName": format!("{schema}.Users"), "DocumentIdColumn": "DocId"}],
               "Transforms": [{"Name": "s", "Collections": ["Users"], "Script":
                   format!("loadTo('{schema}.Users', {{Name: this.Name, Version: this.Version}});")}]}),
    )
    .await;

    // Kill at several points; between restarts update some documents and delete one, so
    // stale or leftover rows would show.
    let mut expected: HashMap<String, i64> =
        (0..20_000).map(|idx| (format!("users/{idx}"), 1)).collect();
    for (round, threshold) in [2_000i64, 7_000, 13_000].into_iter().enumerate() {
        wait_for(
            "progress before the kill",
            Duration::from_secs(120),
            async || row_count(&pg, &table).await >= threshold,
        )
        .await;
        source.child.kill().unwrap(); // SIGKILL
        source.child.wait().unwrap();
        drop(source);
        source = start(source_dir.path());
        let client = Client::new(std::slice::from_ref(&source.url), "src", options()).unwrap();
        let version = 2 + round as i64;
        let first = round * 3_000;
        insert_users(&client, first..first + 500, version).await;
        for idx in first..first + 500 {
            expected.insert(format!("users/{idx}"), version);
        }
        let victim = format!("users/{}", 19_000 + round);
        client.delete(&victim, None).await.unwrap();
        expected.remove(&victim);
    }
    wait_for(
        "the ETL to catch up",
        Duration::from_secs(180),
        async || {
            let body = send(
                "GET",
                &format!("{}/databases/src/etl/progress", source.url),
                Value::Null,
            )
            .await;
            body["Results"][0]["ProcessesProgress"][0]["Completed"] == true
                && row_count(&pg, &table).await == expected.len() as i64
        },
    )
    .await;

    let rows = pg
        .query(&format!("SELECT \"DocId\", \"Version\" FROM {table}"), &[])
        .await
        .unwrap();
    let mut found: HashMap<String, i64> = HashMap::new();
    for row in rows {
        let id: String = row.get(0);
        assert!(
            found.insert(id.clone(), row.get(1)).is_none(),
            "{id} has more than one row"
        );
    }
    assert_eq!(found.len(), expected.len(), "one row per live document");
    for (id, version) in &expected {
        assert_eq!(found.get(id), Some(version), "{id} is missing or stale");
    }
    pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
