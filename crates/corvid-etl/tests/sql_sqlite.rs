//! The SQLite writer against real files in a temporary directory.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corvid_etl::destinations::sql::connection;
use corvid_etl::destinations::sql::sqlite::{SqliteWriter, plan};
use corvid_etl::destinations::sql::{
    SqlBatch, SqlLoadError, SqlRow, SqlSettings, SqlTarget, SqlValue, Statement, StatementFault,
    TableBatch,
};
use rusqlite::Connection;
use tempfile::TempDir;

fn target(path: &Path) -> SqlTarget {
    connection::parse(
        "Microsoft.Data.Sqlite",
        &format!("Data Source={}", path.display()),
    )
    .unwrap()
}

fn row(id: &str, columns: Vec<(&str, SqlValue)>) -> SqlRow {
    SqlRow {
        document_id: Arc::from(id),
        columns: columns
            .into_iter()
            .map(|(name, value)| (Arc::from(name), value))
            .collect(),
    }
}

fn table(name: &str, id_column: &str, deletes: &[&str], rows: Vec<SqlRow>) -> TableBatch {
    TableBatch {
        table: name.to_owned(),
        document_id_column: id_column.to_owned(),
        insert_only: false,
        deletes: deletes.iter().map(|it| (*it).to_owned()).collect(),
        new_documents: Vec::new(),
        rows,
    }
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

/// A database file with the schema applied, and a writer for it.
fn setup(schema: &str) -> (TempDir, std::path::PathBuf, SqliteWriter) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("etl.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch(schema)
        .unwrap();
    let writer = SqliteWriter::new(target(&path), SqlSettings::default());
    (dir, path, writer)
}

fn query(path: &Path, sql: &str) -> Vec<Vec<rusqlite::types::Value>> {
    let connection = Connection::open(path).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    let width = statement.column_count();
    statement
        .query_map([], |row| {
            (0..width)
                .map(|index| row.get::<_, rusqlite::types::Value>(index))
                .collect()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn ids(path: &Path, sql: &str) -> Vec<String> {
    query(path, sql)
        .into_iter()
        .map(|row| match &row[0] {
            rusqlite::types::Value::Text(it) => it.clone(),
            other => panic!("not text: {other:?}"),
        })
        .collect()
}

const ORDERS: &str = "CREATE TABLE Orders (Id TEXT NOT NULL, Customer TEXT, Total REAL NOT NULL);";

#[tokio::test]
async fn sqlite_round_trips_every_value_kind() {
    use rusqlite::types::Value as V;
    let (_dir, path, mut writer) = setup(
        "CREATE TABLE Everything (Id TEXT PRIMARY KEY, I INTEGER, Big INTEGER, N REAL, \
         D REAL, B INTEGER, T TEXT, Dt TEXT, J TEXT, Bin BLOB, Missing TEXT, Ansi TEXT);",
    );
    let blob: Vec<u8> = (0..=255).collect();
    let tricky = "tab\there\nnewline \\ 'single' \"double\" ünïcødé 🐦";
    let batch = SqlBatch {
        tables: vec![table(
            "Everything",
            "Id",
            &["things/1"],
            vec![row(
                "things/1",
                vec![
                    ("I", SqlValue::Int(42)),
                    ("Big", SqlValue::Int(i64::MAX)),
                    ("N", SqlValue::Number("19.99".to_owned())),
                    ("D", SqlValue::Number("1e+21".to_owned())),
                    ("B", SqlValue::Bool(true)),
                    ("T", text(tricky)),
                    (
                        "Dt",
                        SqlValue::DateTime("2024-01-02T03:04:05.1234567Z".to_owned()),
                    ),
                    ("J", SqlValue::Json(r#"{"a":[1,2]}"#.to_owned())),
                    ("Bin", SqlValue::Binary(Bytes::from(blob.clone()))),
                    ("Missing", SqlValue::Null),
                    (
                        "Ansi",
                        SqlValue::Typed {
                            type_name: "AnsiString".to_owned(),
                            value: Box::new(text("abc")),
                            size: Some(10),
                        },
                    ),
                ],
            )],
        )],
    };
    writer.write(&batch, true).await.unwrap();
    let rows = query(
        &path,
        "SELECT Id, I, Big, N, D, B, T, Dt, J, Bin, Missing, Ansi FROM Everything",
    );
    assert_eq!(
        rows,
        vec![vec![
            V::Text("things/1".to_owned()),
            V::Integer(42),
            V::Integer(i64::MAX),
            V::Real(19.99),
            V::Real(1e21),
            V::Integer(1),
            V::Text(tricky.to_owned()),
            V::Text("2024-01-02T03:04:05.1234567Z".to_owned()),
            V::Text(r#"{"a":[1,2]}"#.to_owned()),
            V::Blob(blob),
            V::Null,
            V::Text("abc".to_owned()),
        ]]
    );
    // The same batch again replaces the row instead of duplicating it.
    writer.write(&batch, true).await.unwrap();
    assert_eq!(ids(&path, "SELECT Id FROM Everything"), ["things/1"]);
}

#[tokio::test]
async fn sqlite_deletes_then_inserts_and_insert_only_deletes_nothing() {
    let (_dir, path, mut writer) =
        setup(&format!("{ORDERS} CREATE TABLE Log (Id TEXT, Line TEXT);"));
    let first = SqlBatch {
        tables: vec![
            table(
                "Orders",
                "Id",
                &[],
                vec![
                    row("orders/1", vec![("Total", SqlValue::Int(1))]),
                    row("orders/1", vec![("Total", SqlValue::Int(2))]),
                    row("orders/2", vec![("Total", SqlValue::Int(3))]),
                ],
            ),
            TableBatch {
                insert_only: true,
                ..table(
                    "Log",
                    "Id",
                    &[],
                    vec![row("orders/1", vec![("Line", text("a"))])],
                )
            },
        ],
    };
    writer.write(&first, true).await.unwrap();
    let second = SqlBatch {
        tables: vec![
            table(
                "Orders",
                "Id",
                &["orders/1", "orders/3"],
                vec![row(
                    "orders/1",
                    vec![("Customer", text("o'neil")), ("Total", SqlValue::Int(10))],
                )],
            ),
            // Insert-only: even ids listed as deleted are not deleted.
            TableBatch {
                insert_only: true,
                ..table(
                    "Log",
                    "Id",
                    &["orders/1"],
                    vec![row("orders/1", vec![("Line", text("b"))])],
                )
            },
        ],
    };
    writer.write(&second, true).await.unwrap();
    assert_eq!(
        query(
            &path,
            "SELECT Id, Customer, Total FROM Orders ORDER BY Id, Total"
        ),
        vec![
            vec![
                rusqlite::types::Value::Text("orders/1".to_owned()),
                rusqlite::types::Value::Text("o'neil".to_owned()),
                rusqlite::types::Value::Real(10.0),
            ],
            vec![
                rusqlite::types::Value::Text("orders/2".to_owned()),
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Real(3.0),
            ],
        ]
    );
    assert_eq!(ids(&path, "SELECT Line FROM Log ORDER BY Line"), ["a", "b"]);

    // Inlined deletes (ParameterizeDeletes off) with a quote in an id.
    let mut inline = SqliteWriter::new(
        target(&path),
        SqlSettings {
            parameterize_deletes: false,
            ..SqlSettings::default()
        },
    );
    let quoted = SqlBatch {
        tables: vec![table(
            "Orders",
            "Id",
            &["orders/1", "it's/1"],
            vec![row("it's/1", vec![("Total", SqlValue::Int(5))])],
        )],
    };
    inline.write(&quoted, true).await.unwrap();
    inline.write(&quoted, true).await.unwrap();
    assert_eq!(
        ids(&path, "SELECT Id FROM Orders ORDER BY Id"),
        ["it's/1", "orders/2"]
    );
}

#[tokio::test]
async fn sqlite_replaces_parent_and_child_rows_with_foreign_keys() {
    let (_dir, path, mut writer) = setup(
        "CREATE TABLE Orders (Id TEXT PRIMARY KEY, Total REAL);
         CREATE TABLE OrderLines (OrderId TEXT NOT NULL REFERENCES Orders(Id), Product TEXT);",
    );
    let batch = |total: i64, products: &[&str]| SqlBatch {
        tables: vec![
            table(
                "Orders",
                "Id",
                &["orders/1"],
                vec![row("orders/1", vec![("Total", SqlValue::Int(total))])],
            ),
            table(
                "OrderLines",
                "OrderId",
                &["orders/1"],
                products
                    .iter()
                    .map(|it| row("orders/1", vec![("Product", text(it))]))
                    .collect(),
            ),
        ],
    };
    writer.write(&batch(1, &["a", "b"]), true).await.unwrap();
    writer.write(&batch(2, &["c"]), true).await.unwrap();
    assert_eq!(ids(&path, "SELECT Product FROM OrderLines"), ["c"]);
    assert_eq!(
        query(&path, "SELECT Total FROM Orders"),
        vec![vec![rusqlite::types::Value::Real(2.0)]]
    );
    // Foreign keys are enforced: a line without its order fails.
    let orphan = SqlBatch {
        tables: vec![table(
            "OrderLines",
            "OrderId",
            &[],
            vec![row("orders/9", vec![("Product", text("x"))])],
        )],
    };
    let error = writer.write(&orphan, true).await.unwrap_err();
    assert!(
        matches!(&error, SqlLoadError::Statement { table, document_id: Some(id), message, .. }
            if table == "OrderLines" && id == "orders/9" && message.contains("FOREIGN KEY")),
        "{error:?}"
    );
}

#[tokio::test]
async fn sqlite_without_commit_leaves_tables_unchanged() {
    let (_dir, path, mut writer) = setup(ORDERS);
    let batch = |total: i64| SqlBatch {
        tables: vec![table(
            "Orders",
            "Id",
            &["orders/1"],
            vec![row("orders/1", vec![("Total", SqlValue::Int(total))])],
        )],
    };
    writer.write(&batch(1), true).await.unwrap();
    writer.write(&batch(2), false).await.unwrap();
    assert_eq!(
        query(&path, "SELECT Total FROM Orders"),
        vec![vec![rusqlite::types::Value::Real(1.0)]]
    );
}

#[tokio::test]
async fn sqlite_reports_statement_errors_and_keeps_working() {
    let (_dir, path, mut writer) = setup(ORDERS);
    let missing_table = SqlBatch {
        tables: vec![table(
            "Nope",
            "Id",
            &[],
            vec![row("orders/1", vec![("Total", SqlValue::Int(1))])],
        )],
    };
    match writer.write(&missing_table, true).await.unwrap_err() {
        SqlLoadError::Statement { table, message, .. } => {
            assert_eq!(table, "Nope");
            assert!(message.contains("no such table"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let missing_column = SqlBatch {
        tables: vec![table(
            "Orders",
            "Id",
            &[],
            vec![row(
                "orders/1",
                vec![("Total", SqlValue::Int(1)), ("Bogus", SqlValue::Int(1))],
            )],
        )],
    };
    match writer.write(&missing_column, true).await.unwrap_err() {
        SqlLoadError::Statement {
            table,
            column,
            document_id,
            message,
            ..
        } => {
            assert_eq!(table, "Orders");
            assert_eq!(column.as_deref(), Some("Bogus"));
            assert_eq!(document_id.as_deref(), Some("orders/1"));
            assert!(message.contains("no column named Bogus"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let not_null = SqlBatch {
        tables: vec![table(
            "Orders",
            "Id",
            &["orders/1", "orders/2"],
            vec![
                row("orders/1", vec![("Total", SqlValue::Int(1))]),
                row("orders/2", vec![("Total", SqlValue::Null)]),
            ],
        )],
    };
    let error = writer.write(&not_null, true).await.unwrap_err();
    assert_eq!(
        error,
        SqlLoadError::Statement {
            table: "Orders".to_owned(),
            column: Some("Total".to_owned()),
            document_id: Some("orders/2".to_owned()),
            message: "NOT NULL constraint failed: Orders.Total".to_owned(),
            fault: StatementFault::Item,
        }
    );
    assert!(error.to_string().contains("document `orders/2`"), "{error}");
    // Rolled back: the first row is not there.
    assert!(ids(&path, "SELECT Id FROM Orders").is_empty());

    // The same writer works after the errors.
    let good = SqlBatch {
        tables: vec![table(
            "Orders",
            "Id",
            &[],
            vec![row("orders/1", vec![("Total", SqlValue::Int(1))])],
        )],
    };
    writer.write(&good, true).await.unwrap();
    writer
        .query_returns_rows("SELECT 1")
        .await
        .map(drop)
        .unwrap();
    assert_eq!(ids(&path, "SELECT Id FROM Orders"), ["orders/1"]);
}

#[tokio::test]
async fn sqlite_unopenable_file_is_a_connection_error() {
    let target = target(Path::new("/nonexistent-dir/x.db"));
    let mut writer = SqliteWriter::new(target, SqlSettings::default());
    let batch = SqlBatch {
        tables: vec![table(
            "Orders",
            "Id",
            &["orders/1"],
            vec![row("orders/1", vec![("Total", SqlValue::Int(1))])],
        )],
    };
    for _ in 0..2 {
        match writer.write(&batch, true).await.unwrap_err() {
            SqlLoadError::Connection {
                destination,
                message,
            } => {
                assert_eq!(destination, "/nonexistent-dir/x.db");
                assert!(message.contains("unable to open"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        writer.query_returns_rows("SELECT 1").await.map(drop),
        Err(SqlLoadError::Connection { .. })
    ));
}

#[tokio::test]
async fn sqlite_creates_a_missing_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("new.db");
    let mut writer = SqliteWriter::new(target(&path), SqlSettings::default());
    writer
        .query_returns_rows("SELECT 1")
        .await
        .map(drop)
        .unwrap();
    assert!(path.exists());
    assert_eq!(
        query(&path, "PRAGMA journal_mode"),
        vec![vec![rusqlite::types::Value::Text("wal".to_owned())]]
    );
}

#[tokio::test]
async fn sqlite_command_timeout_interrupts_a_long_statement() {
    let (_dir, path, _) = setup(ORDERS);
    let mut writer = SqliteWriter::new(
        target(&path),
        SqlSettings {
            command_timeout: Some(Duration::from_millis(200)),
            ..SqlSettings::default()
        },
    );
    // Deleting from `Slow` fires a trigger counting a billion-row cross join: minutes.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE Big (x INTEGER);
             INSERT INTO Big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
             WHERE x < 1000) SELECT x FROM c;
             CREATE TABLE Slow (Id TEXT, Total REAL);
             CREATE TRIGGER slow BEFORE DELETE ON Slow BEGIN
               SELECT count(*) FROM Big a, Big b, Big c;
             END;
             INSERT INTO Slow VALUES ('slow/1', 1);",
        )
        .unwrap();
    let batch = SqlBatch {
        tables: vec![table("Slow", "Id", &["slow/1"], Vec::new())],
    };
    let started = std::time::Instant::now();
    match writer.write(&batch, true).await.unwrap_err() {
        SqlLoadError::Statement {
            table,
            document_id,
            message,
            ..
        } => {
            assert_eq!(table, "Slow");
            assert_eq!(document_id.as_deref(), Some("slow/1"));
            assert!(message.contains("timed out"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // Nothing was deleted, and the writer still works.
    assert_eq!(ids(&path, "SELECT Id FROM Slow"), ["slow/1"]);
    let good = SqlBatch {
        tables: vec![table(
            "Orders",
            "Id",
            &[],
            vec![row("orders/1", vec![("Total", SqlValue::Int(1))])],
        )],
    };
    writer.write(&good, true).await.unwrap();
}

#[test]
fn sqlite_plan_shows_the_statements() {
    let batch = SqlBatch {
        tables: vec![
            table(
                "Orders",
                "Id",
                &["orders/1-a", "o'2"],
                vec![row(
                    "orders/1-a",
                    vec![
                        ("Total", SqlValue::Number("10.5".to_owned())),
                        ("Note", SqlValue::Null),
                    ],
                )],
            ),
            table(
                "sales.Lines",
                "OrderId",
                &["orders/1-a"],
                vec![
                    row(
                        "orders/1-a",
                        vec![("Bin", SqlValue::Binary(Bytes::from_static(b"x")))],
                    ),
                    row("orders/1-a", vec![("Bin", SqlValue::Bool(true))]),
                ],
            ),
        ],
    };
    let statement = |table: &str, text: &str, params: &[(&str, &str)]| Statement {
        table: table.to_owned(),
        text: text.to_owned(),
        params: params
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
    };
    assert_eq!(
        plan(&batch, &SqlSettings::default()),
        vec![
            statement(
                "sales.Lines",
                r#"DELETE FROM "sales"."Lines" WHERE "OrderId" IN (?)"#,
                &[("1", "'orders/1-a'")]
            ),
            statement(
                "Orders",
                r#"DELETE FROM "Orders" WHERE "Id" IN (?, ?)"#,
                &[("1", "'orders/1-a'"), ("2", "'o''2'")]
            ),
            statement(
                "Orders",
                r#"INSERT INTO "Orders" ("Id", "Total", "Note") VALUES (?, ?, ?)"#,
                &[("Id", "'orders/1-a'"), ("Total", "10.5"), ("Note", "NULL")]
            ),
            statement(
                "sales.Lines",
                r#"INSERT INTO "sales"."Lines" ("OrderId", "Bin") VALUES (?, ?)"#,
                &[("OrderId", "'orders/1-a'"), ("Bin", "<binary_data>")]
            ),
            statement(
                "sales.Lines",
                r#"INSERT INTO "sales"."Lines" ("OrderId", "Bin") VALUES (?, ?)"#,
                &[("OrderId", "'orders/1-a'"), ("Bin", "true")]
            ),
        ]
    );
    let inline = SqlSettings {
        quote_tables: false,
        parameterize_deletes: false,
        ..SqlSettings::default()
    };
    let planned = plan(&batch, &inline);
    assert_eq!(
        planned[1],
        statement(
            "Orders",
            r#"DELETE FROM Orders WHERE "Id" IN ('orders/1-a', 'o''2')"#,
            &[]
        )
    );
    assert_eq!(
        planned[2].text,
        r#"INSERT INTO Orders ("Id", "Total", "Note") VALUES (?, ?, ?)"#
    );
    // 2,500 deletes: three statements of at most 1000 ids.
    let many: Vec<String> = (0..2500).map(|it| format!("orders/{it}")).collect();
    let big = SqlBatch {
        tables: vec![TableBatch {
            deletes: many,
            ..table("Orders", "Id", &[], Vec::new())
        }],
    };
    let sizes: Vec<usize> = plan(&big, &SqlSettings::default())
        .iter()
        .map(|it| it.params.len())
        .collect();
    assert_eq!(sizes, [1000, 1000, 500]);
}

#[tokio::test]
async fn sqlite_loads_twenty_thousand_rows() {
    let (_dir, path, mut writer) = setup(
        "CREATE TABLE Orders (Id TEXT PRIMARY KEY, Total REAL NOT NULL, Customer TEXT);
         CREATE TABLE OrderLines (OrderId TEXT NOT NULL REFERENCES Orders(Id), Line INTEGER, \
         Product TEXT);",
    );
    let orders: Vec<SqlRow> = (0..5000)
        .map(|it| {
            row(
                &format!("orders/{it}"),
                vec![
                    ("Total", SqlValue::Number(format!("{it}.25"))),
                    ("Customer", text(&format!("customers/{}", it % 97))),
                ],
            )
        })
        .collect();
    let lines: Vec<SqlRow> = (0..15_000)
        .map(|it| {
            row(
                &format!("orders/{}", it / 3),
                vec![
                    ("Line", SqlValue::Int(it % 3)),
                    ("Product", text(&format!("products/{it}"))),
                ],
            )
        })
        .collect();
    let deletes: Vec<String> = (0..5000).map(|it| format!("orders/{it}")).collect();
    let batch = SqlBatch {
        tables: vec![
            TableBatch {
                deletes: deletes.clone(),
                ..table("Orders", "Id", &[], orders)
            },
            TableBatch {
                deletes,
                ..table("OrderLines", "OrderId", &[], lines)
            },
        ],
    };
    assert_eq!(batch.n_rows(), 20_000);
    let future = writer.write(&batch, true);
    assert_send(&future);
    future.await.unwrap();
    // Again: everything replaced, nothing doubled.
    writer.write(&batch, true).await.unwrap();
    assert_eq!(
        query(
            &path,
            "SELECT (SELECT count(*) FROM Orders), (SELECT count(*) FROM OrderLines), \
             (SELECT sum(Total) FROM Orders)"
        ),
        vec![vec![
            rusqlite::types::Value::Integer(5000),
            rusqlite::types::Value::Integer(15_000),
            rusqlite::types::Value::Real((0..5000).map(|it| f64::from(it) + 0.25).sum()),
        ]]
    );
}

fn assert_send<T: Send>(_: &T) {}
