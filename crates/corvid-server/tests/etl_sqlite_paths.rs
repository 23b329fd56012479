//! Issue 18 finding 4: SQL ETL's SQLite files live in the SQLite directory; a connection
//! string naming a file outside it is refused with 400, relative paths resolve in it, and the
//! test endpoints neither reach outside it nor create files.
#![allow(clippy::unwrap_used)]

mod common;

use corvid_etl::{EtlOptions, SqlitePaths};
use serde_json::json;

use common::live::{database, etl_options, eventually, send, start_with_options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_outside_the_sqlite_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_dir = dir.path().join("sqlite");
    std::fs::create_dir_all(&sqlite_dir).unwrap();
    let server = start_with_options(EtlOptions {
        sqlite: SqlitePaths {
            dir: Some(sqlite_dir.clone()),
            allow_any_path: false,
        },
        ..etl_options()
    })
    .await;
    let src = database(&server, "src").await;
    let url = format!("{}/databases/src/admin/connection-strings", server.url);
    let outside = dir.path().join("elsewhere.db");
    for data_source in [outside.display().to_string(), "../x.db".to_owned()] {
        let (status, body) = send(
            "PUT",
            &url,
            Some(
                json!({"Type": "Sql", "Name": "lite", "FactoryName": "Microsoft.Data.Sqlite",
                        "ConnectionString": format!("Data Source={data_source}")}),
            ),
        )
        .await;
        assert_eq!(status, 400, "{data_source}: {body}");
        let message = body["Message"].as_str().unwrap();
        assert!(
            message.contains("outside the SQLite directory"),
            "{message}"
        );
    }
    let answer: serde_json::Value = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .post(format!(
            "{}/databases/src/admin/etl/sql/test-connection?factoryName=Microsoft.Data.Sqlite",
            server.url
        ))
        .body(format!("Data Source={}", outside.display()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = answer;
    assert!(
        body["Error"]
            .as_str()
            .unwrap()
            .contains("outside the SQLite directory"),
        "{body}"
    );
    assert_eq!(body["Success"], false, "{body}");
    assert!(!outside.exists());

    // A relative path lands in the SQLite directory.
    let file = sqlite_dir.join("ok.db");
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch("CREATE TABLE t (Id TEXT, V INTEGER)")
        .unwrap();
    let (status, body) = send(
        "PUT",
        &url,
        Some(
            json!({"Type": "Sql", "Name": "lite", "FactoryName": "Microsoft.Data.Sqlite",
                    "ConnectionString": "Data Source=ok.db"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(
            json!({"EtlType": "Sql", "Name": "t", "ConnectionStringName": "lite",
                    "SqlTables": [{"TableName": "t", "DocumentIdColumn": "Id"}],
                    "Transforms": [{"Name": "s", "Collections": ["Users"],
                                    "Script": "loadTot({V: this.V});"}]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    src.put(
        "users/1",
        &json!({"V": 7, "@metadata": {"@collection": "Users"}}),
        None,
    )
    .await
    .unwrap();
    eventually("the row in <sqlite-dir>/ok.db", || async {
        rusqlite::Connection::open(&file)
            .unwrap()
            .query_row("SELECT count(*) FROM t WHERE V = 7", [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap()
            == 1
    })
    .await;
}
