//! The MySQL/MariaDB writer against the machine's MariaDB (127.0.0.1:3306, root, no
//! password). Each test creates its own database and drops it at the end, even when it fails.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corvid_etl::destinations::sql::connection;
use corvid_etl::destinations::sql::mysql::{MySqlWriter, plan};
use corvid_etl::destinations::sql::{
    SqlBatch, SqlLoadError, SqlRow, SqlSettings, SqlTarget, SqlValue, Statement, TableBatch,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row};

const FACTORY: &str = "MySqlConnector.MySqlConnectorFactory";

async fn admin_connection() -> Conn {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(3306)
        .user(Some("root"))
        .db_name(Some("test"))
        .prefer_socket(false);
    Conn::new(opts).await.unwrap()
}

/// A database of one test, dropped when this goes out of scope (also when the test panics).
struct Database {
    name: String,
    admin: Conn,
}

impl Database {
    /// `None` (after printing SKIPPED) when MariaDB is not there outside CI.
    async fn create(test: &str) -> Option<Database> {
        if !common::service_available("MariaDB", common::MARIADB_ADDR, test) {
            return None;
        }
        let name = common::unique_name("my");
        let mut admin = admin_connection().await;
        admin
            .query_drop(format!(
                "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ))
            .await
            .unwrap();
        Some(Database { name, admin })
    }

    /// A writer on the `test` database (tables are named `<db>.T`), sending rows with
    /// `LOAD DATA LOCAL INFILE` (the machine's MariaDB allows it).
    fn writer(&self, settings: SqlSettings) -> MySqlWriter {
        self.writer_with(settings, true)
    }

    /// With `load_data` false, the connection string says `AllowLoadLocalInfile=false`, so
    /// rows go in with multi-row `INSERT`s.
    fn writer_with(&self, settings: SqlSettings, load_data: bool) -> MySqlWriter {
        let cs = if load_data {
            common::MARIADB_CS.to_owned()
        } else {
            format!("{};AllowLoadLocalInfile=false", common::MARIADB_CS)
        };
        MySqlWriter::new(connection::parse(FACTORY, &cs).unwrap(), settings)
    }

    /// `<db>.<table>`.
    fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.name)
    }

    async fn execute(&mut self, sql: &str) {
        let sql = sql.replace("$db", &self.name);
        self.admin.query_drop(sql).await.unwrap();
    }

    /// Every value of the result as text (`None` for NULL).
    async fn query(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        let sql = sql.replace("$db", &self.name);
        let rows: Vec<Row> = self.admin.query(sql).await.unwrap();
        rows.into_iter()
            .map(|row| {
                (0..row.len())
                    .map(|index| row.get::<Option<String>, _>(index).unwrap())
                    .collect()
            })
            .collect()
    }

    /// The first column of each row.
    async fn column(&mut self, sql: &str) -> Vec<String> {
        self.query(sql)
            .await
            .into_iter()
            .map(|row| row[0].clone().unwrap())
            .collect()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Inside the test's runtime: drop the database from a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = admin_connection().await;
                admin
                    .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop database {}", self.name);
        }
    }
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

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|it| Some((*it).to_owned())).collect()
}

/// Whether `writer` sends the rows of `batch` with `LOAD DATA` (asked after it connected).
fn loads_data(writer: &MySqlWriter, batch: &SqlBatch) -> bool {
    let statements = writer.plan(batch);
    let loads = statements
        .iter()
        .filter(|it| it.text.starts_with("LOAD DATA LOCAL INFILE"))
        .count();
    let inserts = statements
        .iter()
        .filter(|it| it.text.starts_with("INSERT"))
        .count();
    assert!(loads == 0 || inserts == 0, "{statements:?}");
    loads > 0
}

#[tokio::test]
async fn mysql_round_trips_every_value_kind_with_load_data() {
    round_trips_every_value_kind("mysql_round_trips_every_value_kind_with_load_data", true).await;
}

#[tokio::test]
async fn mysql_round_trips_every_value_kind_with_inserts() {
    round_trips_every_value_kind("mysql_round_trips_every_value_kind_with_inserts", false).await;
}

async fn round_trips_every_value_kind(test: &str, load_data: bool) {
    let Some(mut db) = Database::create(test).await else {
        return;
    };
    db.execute(
        "CREATE TABLE $db.Everything (Id VARCHAR(50) PRIMARY KEY, I INT, Big BIGINT, \
         Num DECIMAL(30,10), D DOUBLE, RoundedInt INT, B BOOLEAN, T TEXT, Dt DATETIME(6), \
         Dto DATETIME(6), Local DATETIME(6), J JSON, J2 LONGTEXT, Bin BLOB, LBin LONGBLOB, \
         Missing TEXT, Ansi VARCHAR(10)) ENGINE=InnoDB",
    )
    .await;
    let mut writer = db.writer_with(SqlSettings::default(), load_data);
    let blob: Vec<u8> = (0..=255).collect();
    let tricky = "tab\there\nnewline\r\0nul \\N \\ back\\'slash 'single' \"double\" ünïcødé 🐦";
    let json = r#"{"a":[1,2.5,null],"b":"x'y"}"#;
    let batch = SqlBatch {
        tables: vec![table(
            &db.table("Everything"),
            "Id",
            &["things/1"],
            vec![row(
                "things/1",
                vec![
                    ("I", SqlValue::Int(-42)),
                    ("Big", SqlValue::Int(i64::MAX)),
                    (
                        "Num",
                        SqlValue::Number("12345678901234567890.1234567891".to_owned()),
                    ),
                    ("D", SqlValue::Number("0.1".to_owned())),
                    ("RoundedInt", SqlValue::Number("10.5".to_owned())),
                    ("B", SqlValue::Bool(true)),
                    ("T", text(tricky)),
                    (
                        "Dt",
                        SqlValue::DateTime("2024-01-02T03:04:05.1234567Z".to_owned()),
                    ),
                    (
                        "Dto",
                        SqlValue::DateTime("2024-01-02T01:04:05.1234567+02:00".to_owned()),
                    ),
                    (
                        "Local",
                        SqlValue::DateTime("2024-01-02T03:04:05".to_owned()),
                    ),
                    ("J", SqlValue::Json(json.to_owned())),
                    ("J2", SqlValue::Json(json.to_owned())),
                    ("Bin", SqlValue::Binary(Bytes::from(blob.clone()))),
                    ("LBin", SqlValue::Binary(Bytes::from(blob.clone()))),
                    ("Missing", SqlValue::Null),
                    (
                        "Ansi",
                        SqlValue::Typed {
                            type_name: "AnsiString".to_owned(),
                            value: Box::new(text("abcdefghij")),
                            size: Some(10),
                        },
                    ),
                ],
            )],
        )],
    };
    let future = writer.write(&batch, true);
    assert_send(&future);
    future.await.unwrap();
    assert_eq!(loads_data(&writer, &batch), load_data);
    // Twice: the row is replaced, not doubled.
    writer.write(&batch, true).await.unwrap();
    let rows = db
        .query(
            "SELECT Id, I, Big, CAST(Num AS CHAR), D, RoundedInt, B, T, CAST(Dt AS CHAR), \
             CAST(Dto AS CHAR), CAST(Local AS CHAR), J, J2, Missing, Ansi, \
             Bin = LBin, LENGTH(Bin) FROM $db.Everything",
        )
        .await;
    let mut expected = some(&[
        "things/1",
        "-42",
        "9223372036854775807",
        "12345678901234567890.1234567891",
        "0.1",
        "11",
        "1",
        tricky,
        "2024-01-02 03:04:05.123456",
        "2024-01-01 23:04:05.123456",
        "2024-01-02 03:04:05.000000",
        json,
        json,
    ]);
    expected.push(None);
    expected.extend(some(&["abcdefghij", "1", "256"]));
    assert_eq!(rows, vec![expected]);
    let bins: Vec<(Vec<u8>, Vec<u8>)> = db
        .admin
        .query(format!("SELECT Bin, LBin FROM `{}`.Everything", db.name))
        .await
        .unwrap();
    assert_eq!(bins, vec![(blob.clone(), blob)]);
}

#[tokio::test]
async fn mysql_deletes_then_inserts_and_insert_only_deletes_nothing() {
    let Some(mut db) =
        Database::create("mysql_deletes_then_inserts_and_insert_only_deletes_nothing").await
    else {
        return;
    };
    db.execute(
        "CREATE TABLE $db.Orders (Id VARCHAR(50) NOT NULL, Customer TEXT, Total INT NOT NULL)",
    )
    .await;
    db.execute("CREATE TABLE $db.Log (Id VARCHAR(50), Line TEXT)")
        .await;
    let mut writer = db.writer(SqlSettings::default());
    let first = SqlBatch {
        tables: vec![
            table(
                &db.table("Orders"),
                "Id",
                &[],
                vec![
                    row("orders/1", vec![("Total", SqlValue::Int(1))]),
                    // A different column list: its own statement.
                    row(
                        "orders/1",
                        vec![("Customer", text("a")), ("Total", SqlValue::Int(2))],
                    ),
                    row("orders/2", vec![("Total", SqlValue::Int(3))]),
                ],
            ),
            TableBatch {
                insert_only: true,
                ..table(
                    &db.table("Log"),
                    "Id",
                    &[],
                    vec![row("orders/1", vec![("Line", text("a"))])],
                )
            },
        ],
    };
    writer.write(&first, true).await.unwrap();
    assert_eq!(
        db.column("SELECT Total FROM $db.Orders ORDER BY Total")
            .await,
        ["1", "2", "3"]
    );
    let second = SqlBatch {
        tables: vec![
            table(
                &db.table("Orders"),
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
                    &db.table("Log"),
                    "Id",
                    &["orders/1"],
                    vec![row("orders/1", vec![("Line", text("b"))])],
                )
            },
        ],
    };
    writer.write(&second, true).await.unwrap();
    assert_eq!(
        db.query("SELECT Id, Customer, Total FROM $db.Orders ORDER BY Id")
            .await,
        vec![
            some(&["orders/1", "o'neil", "10"]),
            vec![Some("orders/2".to_owned()), None, Some("3".to_owned())],
        ]
    );
    assert_eq!(
        db.column("SELECT Line FROM $db.Log ORDER BY Line").await,
        ["a", "b"]
    );
}

#[tokio::test]
async fn mysql_unquoted_lower_case_tables_and_inline_deletes() {
    let Some(mut db) =
        Database::create("mysql_unquoted_lower_case_tables_and_inline_deletes").await
    else {
        return;
    };
    db.execute("CREATE TABLE $db.orders (id VARCHAR(50) NOT NULL, total INT)")
        .await;
    let cs = common::MARIADB_CS.replace("Database=test", &format!("Database={}", db.name));
    let mut writer = MySqlWriter::new(
        connection::parse(FACTORY, &cs).unwrap(),
        SqlSettings {
            quote_tables: false,
            parameterize_deletes: false,
            command_timeout: None,
        },
    );
    let tricky = r"it's\'; DROP TABLE orders; --\";
    let batch = |total: i64| SqlBatch {
        tables: vec![table(
            "orders",
            "id",
            &[tricky, "orders/2"],
            vec![
                row(tricky, vec![("total", SqlValue::Int(total))]),
                row("orders/2", vec![("total", SqlValue::Int(total))]),
            ],
        )],
    };
    writer.write(&batch(1), true).await.unwrap();
    writer.write(&batch(2), true).await.unwrap();
    assert_eq!(
        db.query("SELECT id, total FROM $db.orders ORDER BY id")
            .await,
        vec![some(&[tricky, "2"]), some(&["orders/2", "2"])]
    );
    writer
        .query_returns_rows("SELECT 1")
        .await
        .map(drop)
        .unwrap();
}

#[tokio::test]
async fn mysql_replaces_parent_and_child_rows_with_foreign_keys() {
    let Some(mut db) =
        Database::create("mysql_replaces_parent_and_child_rows_with_foreign_keys").await
    else {
        return;
    };
    db.execute("CREATE TABLE $db.Orders (Id VARCHAR(50) PRIMARY KEY, Total INT) ENGINE=InnoDB")
        .await;
    db.execute(
        "CREATE TABLE $db.OrderLines (OrderId VARCHAR(50) NOT NULL, Product TEXT, \
         FOREIGN KEY (OrderId) REFERENCES Orders(Id)) ENGINE=InnoDB",
    )
    .await;
    let mut writer = db.writer(SqlSettings::default());
    let (orders, lines) = (db.table("Orders"), db.table("OrderLines"));
    let batch = |total: i64, products: &[&str]| SqlBatch {
        tables: vec![
            table(
                &orders,
                "Id",
                &["orders/1"],
                vec![row("orders/1", vec![("Total", SqlValue::Int(total))])],
            ),
            table(
                &lines,
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
    assert_eq!(db.column("SELECT Product FROM $db.OrderLines").await, ["c"]);
    assert_eq!(db.column("SELECT Total FROM $db.Orders").await, ["2"]);
    // The foreign key holds: a line without its order fails, naming the document.
    let orphan = SqlBatch {
        tables: vec![table(
            &lines,
            "OrderId",
            &[],
            vec![row("orders/9", vec![("Product", text("x"))])],
        )],
    };
    let error = writer.write(&orphan, true).await.unwrap_err();
    assert!(
        matches!(&error, SqlLoadError::Statement { table, document_id: Some(id), message, .. }
            if *table == lines && id == "orders/9" && message.starts_with("1452: ")),
        "{error:?}"
    );
}

#[tokio::test]
async fn mysql_without_commit_leaves_tables_unchanged() {
    let Some(mut db) = Database::create("mysql_without_commit_leaves_tables_unchanged").await
    else {
        return;
    };
    db.execute("CREATE TABLE $db.Orders (Id VARCHAR(50), Total INT)")
        .await;
    let mut writer = db.writer(SqlSettings::default());
    let orders = db.table("Orders");
    let batch = |total: i64| SqlBatch {
        tables: vec![table(
            &orders,
            "Id",
            &["orders/1"],
            vec![row("orders/1", vec![("Total", SqlValue::Int(total))])],
        )],
    };
    writer.write(&batch(1), true).await.unwrap();
    writer.write(&batch(2), false).await.unwrap();
    writer.write(&batch(3), false).await.unwrap();
    assert_eq!(db.column("SELECT Total FROM $db.Orders").await, ["1"]);
}

#[tokio::test]
async fn mysql_reports_statement_errors_and_keeps_working_with_load_data() {
    reports_statement_errors_and_keeps_working(
        "mysql_reports_statement_errors_and_keeps_working_with_load_data",
        true,
    )
    .await;
}

#[tokio::test]
async fn mysql_reports_statement_errors_and_keeps_working_with_inserts() {
    reports_statement_errors_and_keeps_working(
        "mysql_reports_statement_errors_and_keeps_working_with_inserts",
        false,
    )
    .await;
}

/// With `LOAD DATA`, what strict mode makes an error comes back as a warning, which the writer
/// turns into the same error: some codes differ (a too long value is 1265 rather than 1406),
/// the column and the document are the same.
async fn reports_statement_errors_and_keeps_working(test: &str, load_data: bool) {
    let Some(mut db) = Database::create(test).await else {
        return;
    };
    db.execute(
        "CREATE TABLE $db.Orders (Id VARCHAR(50) NOT NULL, Qty INT, Code VARCHAR(3), \
         Total INT NOT NULL) ENGINE=InnoDB",
    )
    .await;
    db.execute("CREATE TABLE $db.Keyed (Id VARCHAR(50) PRIMARY KEY, Qty INT) ENGINE=InnoDB")
        .await;
    db.execute("CREATE TABLE $db.Plain (Id VARCHAR(50), Qty INT) ENGINE=MyISAM")
        .await;
    let mut writer = db.writer_with(SqlSettings::default(), load_data);
    let orders = db.table("Orders");
    let statement_error = |error: SqlLoadError| match error {
        SqlLoadError::Statement {
            table,
            column,
            document_id,
            message,
            ..
        } => (table, column, document_id, message),
        other => panic!("{other:?}"),
    };
    let three = |second: Vec<(&str, SqlValue)>| {
        vec![
            row(
                "orders/1",
                vec![("Qty", SqlValue::Int(1)), ("Total", SqlValue::Int(1))],
            ),
            row("orders/2", second),
            row(
                "orders/3",
                vec![("Qty", SqlValue::Int(3)), ("Total", SqlValue::Int(3))],
            ),
        ]
    };

    let missing = db.table("Nope");
    let batch = SqlBatch {
        tables: vec![table(
            &missing,
            "Id",
            &["orders/1"],
            vec![row("orders/1", vec![("Qty", SqlValue::Int(1))])],
        )],
    };
    let (table_name, column, _, message) =
        statement_error(writer.write(&batch, true).await.unwrap_err());
    assert_eq!((table_name, column), (missing, None));
    assert!(message.starts_with("1146: "), "{message}");
    assert!(message.contains("doesn't exist"), "{message}");

    let batch = SqlBatch {
        tables: vec![table(
            &orders,
            "Id",
            &[],
            three(vec![
                ("Qty", SqlValue::Int(2)),
                ("Bogus", SqlValue::Int(2)),
                ("Total", SqlValue::Int(2)),
            ]),
        )],
    };
    let (table_name, column, document_id, message) =
        statement_error(writer.write(&batch, true).await.unwrap_err());
    assert_eq!(table_name, orders);
    assert_eq!(column.as_deref(), Some("Bogus"));
    assert_eq!(document_id.as_deref(), Some("orders/2"));
    // MariaDB 10.11 says `in 'INSERT INTO'`, older servers `in 'field list'`.
    assert!(
        message.starts_with("1054: Unknown column 'Bogus' in "),
        "{message}"
    );

    // A bad value on the second row of one multi-row statement: strict mode makes it an
    // error, and the server's row number names the document.
    let batch = SqlBatch {
        tables: vec![table(
            &orders,
            "Id",
            &["orders/1", "orders/2", "orders/3"],
            three(vec![("Qty", text("abc")), ("Total", SqlValue::Int(2))]),
        )],
    };
    let error = writer.write(&batch, true).await.unwrap_err();
    let shown = error.to_string();
    let (_, column, document_id, message) = statement_error(error);
    assert_eq!(column.as_deref(), Some("Qty"));
    assert_eq!(document_id.as_deref(), Some("orders/2"));
    assert!(
        message.starts_with("1366: Incorrect integer value"),
        "{message}"
    );
    assert!(
        shown.contains("column `Qty`, document `orders/2`"),
        "{shown}"
    );

    let batch = SqlBatch {
        tables: vec![table(
            &orders,
            "Id",
            &[],
            vec![
                row(
                    "orders/1",
                    vec![("Code", text("abc")), ("Total", SqlValue::Int(1))],
                ),
                row(
                    "orders/2",
                    vec![("Code", text("ab")), ("Total", SqlValue::Int(2))],
                ),
                row(
                    "orders/3",
                    vec![("Code", text("abcd")), ("Total", SqlValue::Int(3))],
                ),
            ],
        )],
    };
    let (_, column, document_id, message) =
        statement_error(writer.write(&batch, true).await.unwrap_err());
    assert_eq!(
        (column.as_deref(), document_id.as_deref()),
        (Some("Code"), Some("orders/3"))
    );
    let expected = if load_data {
        "1265: Data truncated for column 'Code' at row 3"
    } else {
        "1406: Data too long"
    };
    assert!(message.starts_with(expected), "{message}");

    // NULL into NOT NULL: the server names no row; the first row with NULL there is it.
    let batch = SqlBatch {
        tables: vec![table(
            &orders,
            "Id",
            &[],
            three(vec![("Qty", SqlValue::Int(2)), ("Total", SqlValue::Null)]),
        )],
    };
    let (_, column, document_id, message) =
        statement_error(writer.write(&batch, true).await.unwrap_err());
    assert_eq!(
        (column.as_deref(), document_id.as_deref()),
        (Some("Total"), Some("orders/2"))
    );
    // (Also with LOAD DATA: an integer column is assigned by `SET`, which fails outright.)
    assert!(message.starts_with("1048: "), "{message}");

    let keyed = db.table("Keyed");
    let batch = SqlBatch {
        tables: vec![TableBatch {
            insert_only: true,
            ..table(
                &keyed,
                "Id",
                &[],
                vec![
                    row("keyed/1", vec![("Qty", SqlValue::Int(1))]),
                    row("keyed/1", vec![("Qty", SqlValue::Int(2))]),
                ],
            )
        }],
    };
    let (table_name, _, _, message) =
        statement_error(writer.write(&batch, true).await.unwrap_err());
    assert_eq!(table_name, keyed);
    assert!(message.starts_with("1062: Duplicate entry"), "{message}");

    // Non-transactional table: still an error (the session has STRICT_ALL_TABLES).
    let plain = db.table("Plain");
    let batch = SqlBatch {
        tables: vec![table(
            &plain,
            "Id",
            &[],
            vec![
                row("plain/1", vec![("Qty", SqlValue::Int(1))]),
                row("plain/2", vec![("Qty", text("abc"))]),
            ],
        )],
    };
    let (_, column, document_id, _) =
        statement_error(writer.write(&batch, true).await.unwrap_err());
    assert_eq!(
        (column.as_deref(), document_id.as_deref()),
        (Some("Qty"), Some("plain/2"))
    );

    // Nothing of the failed batches landed, and the same writer works again.
    assert!(db.column("SELECT Id FROM $db.Orders").await.is_empty());
    let batch = SqlBatch {
        tables: vec![table(
            &orders,
            "Id",
            &["orders/1"],
            vec![row("orders/1", vec![("Total", SqlValue::Int(7))])],
        )],
    };
    writer.write(&batch, true).await.unwrap();
    assert_eq!(db.column("SELECT Total FROM $db.Orders").await, ["7"]);
    assert_eq!(loads_data(&writer, &batch), load_data);
}

#[tokio::test]
async fn mysql_command_timeout_ends_a_statement_waiting_on_a_lock() {
    let Some(mut db) =
        Database::create("mysql_command_timeout_ends_a_statement_waiting_on_a_lock").await
    else {
        return;
    };
    db.execute("CREATE TABLE $db.Orders (Id VARCHAR(50) PRIMARY KEY, Total INT) ENGINE=InnoDB")
        .await;
    db.execute("INSERT INTO $db.Orders VALUES ('orders/1', 1)")
        .await;
    let mut writer = db.writer(SqlSettings {
        command_timeout: Some(Duration::from_secs(1)),
        ..SqlSettings::default()
    });
    let orders = db.table("Orders");
    let batch = SqlBatch {
        tables: vec![table(
            &orders,
            "Id",
            &["orders/1"],
            vec![row("orders/1", vec![("Total", SqlValue::Int(2))])],
        )],
    };
    db.execute("START TRANSACTION").await;
    db.execute("SELECT * FROM $db.Orders WHERE Id = 'orders/1' FOR UPDATE")
        .await;
    let started = Instant::now();
    let error = writer.write(&batch, true).await.unwrap_err();
    let elapsed = started.elapsed();
    db.execute("ROLLBACK").await;
    match error {
        SqlLoadError::Statement {
            table,
            document_id,
            message,
            ..
        } => {
            assert_eq!(table, orders);
            assert_eq!(document_id.as_deref(), Some("orders/1"));
            assert!(
                message.starts_with("1969: ") && message.contains("max_statement_time"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    writer.write(&batch, true).await.unwrap();
    assert_eq!(db.column("SELECT Total FROM $db.Orders").await, ["2"]);
}

#[tokio::test]
async fn mysql_unreachable_server_is_a_connection_error() {
    let target = connection::parse(
        FACTORY,
        "Server=127.0.0.1;Port=1;Database=test;User ID=root;Password=hunter2;Connect Timeout=5",
    )
    .unwrap();
    let mut writer = MySqlWriter::new(target, SqlSettings::default());
    let batch = SqlBatch {
        tables: vec![table(
            "Orders",
            "Id",
            &["orders/1"],
            vec![row("orders/1", vec![("Total", SqlValue::Int(1))])],
        )],
    };
    for result in [
        writer.write(&batch, true).await,
        writer.write(&batch, false).await,
        writer.query_returns_rows("SELECT 1").await.map(drop),
    ] {
        let error = result.unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        match error {
            SqlLoadError::Connection {
                destination,
                message,
            } => {
                assert_eq!(destination, "test@127.0.0.1:1");
                assert!(!message.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn mysql_wrong_password_is_a_connection_error_without_the_password() {
    let Some(_db) =
        Database::create("mysql_wrong_password_is_a_connection_error_without_the_password").await
    else {
        return;
    };
    let target: SqlTarget = connection::parse(
        FACTORY,
        "Server=127.0.0.1;Database=test;User ID=corvid_nobody;Password=hunter2",
    )
    .unwrap();
    let mut writer = MySqlWriter::new(target, SqlSettings::default());
    let error = writer
        .query_returns_rows("SELECT 1")
        .await
        .map(drop)
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        matches!(&error, SqlLoadError::Connection { message, .. } if message.starts_with("1045: ")),
        "{error:?}"
    );
}

#[test]
fn mysql_plan_shows_the_statements() {
    let batch = SqlBatch {
        tables: vec![
            table(
                "Orders",
                "Id",
                &["orders/1-a", "o'2"],
                vec![
                    row(
                        "orders/1-a",
                        vec![
                            ("Total", SqlValue::Number("10.5".to_owned())),
                            ("Note", SqlValue::Null),
                        ],
                    ),
                    row("o'2", vec![("Total", SqlValue::Int(3))]),
                    row(
                        "orders/3",
                        vec![("Total", SqlValue::Int(4)), ("Note", text("n"))],
                    ),
                ],
            ),
            table(
                "sales.Lines",
                "OrderId",
                &["orders/1-a"],
                vec![row(
                    "orders/1-a",
                    vec![("Bin", SqlValue::Binary(Bytes::from_static(b"x")))],
                )],
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
        plan(&batch, &SqlSettings::default(), false),
        vec![
            statement(
                "sales.Lines",
                "DELETE FROM `sales`.`Lines` WHERE `OrderId` IN (?)",
                &[("1", "'orders/1-a'")]
            ),
            statement(
                "Orders",
                "DELETE FROM `Orders` WHERE `Id` IN (?, ?)",
                &[("1", "'orders/1-a'"), ("2", "'o''2'")]
            ),
            statement(
                "Orders",
                "INSERT INTO `Orders` (`Id`, `Total`, `Note`) VALUES (?, ?, ?), (?, ?, ?)",
                &[
                    ("Id", "'orders/1-a'"),
                    ("Total", "10.5"),
                    ("Note", "NULL"),
                    ("Id", "'orders/3'"),
                    ("Total", "4"),
                    ("Note", "'n'"),
                ]
            ),
            statement(
                "Orders",
                "INSERT INTO `Orders` (`Id`, `Total`) VALUES (?, ?)",
                &[("Id", "'o''2'"), ("Total", "3")]
            ),
            statement(
                "sales.Lines",
                "INSERT INTO `sales`.`Lines` (`OrderId`, `Bin`) VALUES (?, ?)",
                &[("OrderId", "'orders/1-a'"), ("Bin", "<binary_data>")]
            ),
        ]
    );
    let inline = SqlSettings {
        quote_tables: false,
        parameterize_deletes: false,
        ..SqlSettings::default()
    };
    let mut with_backslash = batch.clone();
    with_backslash.tables[0].deletes.push(r"a\b".to_owned());
    let planned = plan(&with_backslash, &inline, false);
    assert_eq!(
        planned[1],
        statement(
            "Orders",
            r"DELETE FROM Orders WHERE `Id` IN ('orders/1-a', 'o''2', 'a\\b')",
            &[]
        )
    );
    assert!(planned[2].text.starts_with("INSERT INTO Orders (`Id`, "));

    // With LOAD DATA: one statement per column list, whatever its size; a column holding
    // a binary value goes in through a variable and UNHEX, one holding integers through
    // CAST, and a column holding integers in some rows only is split.
    let loaded = plan(&batch, &SqlSettings::default(), true);
    assert_eq!(
        loaded[2..],
        [
            statement(
                "Orders",
                "LOAD DATA LOCAL INFILE 'corvid-rows' INTO TABLE `Orders` CHARACTER SET utf8mb4 \
                 (`Id`, `Total`, `Note`)",
                &[("Id", "'orders/1-a'"), ("Total", "10.5"), ("Note", "NULL")]
            ),
            statement(
                "Orders",
                "LOAD DATA LOCAL INFILE 'corvid-rows' INTO TABLE `Orders` CHARACTER SET utf8mb4 \
                 (`Id`, @corvid_1, `Note`) SET `Total` = CAST(@corvid_1 AS SIGNED)",
                &[("Id", "'orders/3'"), ("Total", "4"), ("Note", "'n'")]
            ),
            statement(
                "Orders",
                "LOAD DATA LOCAL INFILE 'corvid-rows' INTO TABLE `Orders` CHARACTER SET utf8mb4 \
                 (`Id`, @corvid_1) SET `Total` = CAST(@corvid_1 AS SIGNED)",
                &[("Id", "'o''2'"), ("Total", "3")]
            ),
            statement(
                "sales.Lines",
                "LOAD DATA LOCAL INFILE 'corvid-rows' INTO TABLE `sales`.`Lines` CHARACTER SET \
                 utf8mb4 (`OrderId`, @corvid_1) SET `Bin` = UNHEX(@corvid_1)",
                &[("OrderId", "'orders/1-a'"), ("Bin", "<binary_data>")]
            ),
        ]
    );
    assert_eq!(
        loaded[..2],
        plan(&batch, &SqlSettings::default(), false)[..2]
    );

    // 2,500 rows with 99 columns: at most 600 rows (60,000 placeholders) per statement;
    // 2,500 deletes: at most 1000 ids per statement.
    let wide: Vec<(Arc<str>, SqlValue)> = (0..99)
        .map(|it| (Arc::from(format!("C{it}")), SqlValue::Int(it)))
        .collect();
    let big = SqlBatch {
        tables: vec![TableBatch {
            deletes: (0..2500).map(|it| format!("orders/{it}")).collect(),
            new_documents: Vec::new(),
            rows: (0..2500)
                .map(|it| SqlRow {
                    document_id: Arc::from(format!("orders/{it}")),
                    columns: wide.clone(),
                })
                .collect(),
            ..table("Orders", "Id", &[], Vec::new())
        }],
    };
    let sizes = |load_data: bool| -> Vec<usize> {
        plan(&big, &SqlSettings::default(), load_data)
            .iter()
            .map(|it| it.params.len())
            .collect()
    };
    assert_eq!(
        sizes(false),
        [1000, 1000, 500, 60_000, 60_000, 60_000, 60_000, 10_000]
    );
    assert_eq!(sizes(true), [1000, 1000, 500, 250_000]);
    // Rows of a few MB each: split so one statement sends less than half of 16 MiB.
    let huge = SqlBatch {
        tables: vec![table(
            "Files",
            "Id",
            &[],
            (0..5)
                .map(|it| {
                    row(
                        &format!("files/{it}"),
                        vec![("Data", SqlValue::Binary(Bytes::from(vec![0; 3_000_000])))],
                    )
                })
                .collect(),
        )],
    };
    let rows: Vec<usize> = plan(&huge, &SqlSettings::default(), false)
        .iter()
        .map(|it| it.params.len() / 2)
        .collect();
    assert_eq!(rows, [2, 2, 1]);
}

#[tokio::test]
async fn mysql_loads_twenty_thousand_rows() {
    let Some(mut db) = Database::create("mysql_loads_twenty_thousand_rows").await else {
        return;
    };
    db.execute(
        "CREATE TABLE $db.Orders (Id VARCHAR(50) PRIMARY KEY, Total DECIMAL(12,2) NOT NULL, \
         Customer VARCHAR(50)) ENGINE=InnoDB",
    )
    .await;
    db.execute(
        "CREATE TABLE $db.OrderLines (OrderId VARCHAR(50) NOT NULL, Line INT, \
         Product VARCHAR(50), INDEX (OrderId), FOREIGN KEY (OrderId) REFERENCES Orders(Id)) \
         ENGINE=InnoDB",
    )
    .await;
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
                ..table(&db.table("Orders"), "Id", &[], orders)
            },
            TableBatch {
                deletes,
                ..table(&db.table("OrderLines"), "OrderId", &[], lines)
            },
        ],
    };
    assert_eq!(batch.n_rows(), 20_000);
    let expected_sum: f64 = (0..5000).map(|it| f64::from(it) + 0.25).sum();
    for (load_data, statements) in [(true, 2), (false, 5 + 15)] {
        let mut writer = db.writer_with(SqlSettings::default(), load_data);
        writer.write(&batch, true).await.unwrap();
        let rows = writer
            .plan(&batch)
            .iter()
            .filter(|it| !it.text.starts_with("DELETE"))
            .count();
        assert_eq!((loads_data(&writer, &batch), rows), (load_data, statements));
        // Again: everything replaced, nothing doubled.
        writer.write(&batch, true).await.unwrap();
        assert_eq!(
            db.query(
                "SELECT (SELECT COUNT(*) FROM $db.Orders), \
                 (SELECT COUNT(*) FROM $db.OrderLines), (SELECT SUM(Total) FROM $db.Orders)"
            )
            .await,
            vec![some(&["5000", "15000", &format!("{expected_sum:.2}")])]
        );
    }
}

fn assert_send<T: Send>(_: &T) {}

/// `LOAD DATA` reads text where `INSERT` binds values; the server must end up with the same
/// value, or refuse it the same way, for each kind of value into each kind of column.
#[tokio::test]
async fn mysql_load_data_stores_what_inserts_store() {
    let Some(mut db) = Database::create("mysql_load_data_stores_what_inserts_store").await else {
        return;
    };
    let number = |it: &str| SqlValue::Number(it.to_owned());
    let date_time = |it: &str| SqlValue::DateTime(it.to_owned());
    let cases: Vec<(&str, SqlValue)> = vec![
        ("INT", SqlValue::Int(-7)),
        ("INT", number("10.5")),
        ("INT", number("1e3")),
        ("INT", text(" 12")),
        ("INT", text("12abc")),
        ("INT", text("")),
        ("INT", SqlValue::Bool(true)),
        ("INT", number("99999999999")),
        ("TINYINT UNSIGNED", SqlValue::Int(-1)),
        ("BIGINT", SqlValue::Int(i64::MIN)),
        ("DECIMAL(10,2)", number("1.005")),
        ("DECIMAL(10,2)", number("123456789.5")),
        ("DECIMAL(30,10)", number("-0.0000000001")),
        ("DOUBLE", number("1.7976931348623157e308")),
        ("DOUBLE", number("5e-324")),
        ("DOUBLE", SqlValue::Int(i64::MAX)),
        ("FLOAT", number("0.1")),
        ("BOOLEAN", SqlValue::Bool(false)),
        ("VARCHAR(5)", text("abcde")),
        ("VARCHAR(5)", text("abcdef")),
        ("VARCHAR(5)", text("abc  ")),
        ("VARCHAR(5)", text("abcde   ")),
        ("CHAR(3)", text("ab")),
        ("VARCHAR(20)", SqlValue::Bool(true)),
        ("VARCHAR(20)", number("1.50")),
        ("VARCHAR(20)", text("NULL")),
        ("VARCHAR(20)", text("\\N")),
        ("TEXT", text("a\tb\nc\rd\0e\\f\u{1a}g")),
        ("TEXT", text("")),
        ("TEXT", date_time("2024-01-02T03:04:05.5Z")),
        ("VARCHAR(10) CHARACTER SET latin1", text("naïve")),
        ("VARCHAR(10) CHARACTER SET latin1", text("🐦")),
        ("DATETIME", date_time("2024-01-02T03:04:05.7Z")),
        (
            "DATETIME(3)",
            date_time("2024-01-02T03:04:05.1234567+01:00"),
        ),
        ("DATE", date_time("2024-01-02T03:04:05")),
        ("DATE", text("2024-02-30")),
        ("TIMESTAMP(6) NULL", date_time("2024-01-02T03:04:05.25Z")),
        ("TIME", text("12:34:56")),
        ("YEAR", SqlValue::Int(2024)),
        ("JSON", SqlValue::Json(r#"{"a":[1,"x\ty"]}"#.to_owned())),
        ("JSON", text("not json")),
        ("ENUM('a','b')", text("b")),
        ("ENUM('a','b')", text("c")),
        ("SET('a','b')", text("a,b")),
        ("BIT(8)", SqlValue::Int(5)),
        ("BIT(1)", SqlValue::Bool(true)),
        ("BIT(8)", text("a")),
        ("ENUM('a','b')", SqlValue::Int(2)),
        ("SET('a','b')", SqlValue::Int(3)),
        ("VARCHAR(20)", SqlValue::Int(-12)),
        ("DATETIME", SqlValue::Int(20240102030405)),
        (
            "BLOB",
            SqlValue::Binary(Bytes::from_static(b"\0\t\n\\\xff")),
        ),
        (
            "VARBINARY(3)",
            SqlValue::Binary(Bytes::from_static(b"abcd")),
        ),
        ("BINARY(4)", SqlValue::Binary(Bytes::from_static(b"ab"))),
        ("BLOB", text("text into a blob")),
        ("TEXT", SqlValue::Binary(Bytes::from_static(b"bytes"))),
        ("TEXT", SqlValue::Binary(Bytes::from_static(b"\xff\xfe"))),
        ("INT NOT NULL", SqlValue::Null),
        ("TEXT NOT NULL", SqlValue::Null),
        (
            "VARCHAR(3)",
            SqlValue::Typed {
                type_name: "AnsiString".to_owned(),
                value: Box::new(text("abc")),
                size: Some(3),
            },
        ),
    ];
    let columns: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(at, (kind, _))| {
            let kind = if kind.contains("NOT NULL") {
                // NOT NULL with a default, so the other cases' rows can leave it out.
                format!("{kind} DEFAULT 0")
            } else {
                (*kind).to_owned()
            };
            format!("C{at} {kind}")
        })
        .collect();
    let mut outcomes = Vec::new();
    for load_data in [true, false] {
        let name = if load_data { "Loaded" } else { "Inserted" };
        db.execute(&format!(
            "CREATE TABLE $db.{name} (Id VARCHAR(20), {}) ENGINE=InnoDB",
            columns.join(", ")
        ))
        .await;
        let mut writer = db.writer_with(SqlSettings::default(), load_data);
        let mut results = Vec::new();
        for (at, (_, value)) in cases.iter().enumerate() {
            let batch = SqlBatch {
                tables: vec![table(
                    &db.table(name),
                    "Id",
                    &[],
                    vec![row(
                        &format!("c/{at}"),
                        vec![(&format!("C{at}"), value.clone())],
                    )],
                )],
            };
            let result = writer.write(&batch, true).await;
            assert_eq!(loads_data(&writer, &batch), load_data);
            results.push(match result {
                Ok(()) => Ok(()),
                Err(SqlLoadError::Statement {
                    column,
                    document_id,
                    ..
                }) => Err((column, document_id)),
                Err(other) => panic!("case {at}: {other:?}"),
            });
        }
        let stored = db
            .query(&format!(
                "SELECT Id, {} FROM $db.{name} ORDER BY Id",
                (0..cases.len())
                    .map(|at| format!("HEX(C{at})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await;
        outcomes.push((results, stored));
    }
    let (loaded, inserted) = (&outcomes[0], &outcomes[1]);
    for (at, case) in cases.iter().enumerate() {
        assert_eq!(loaded.0[at], inserted.0[at], "case {at}: {case:?}");
        if let Err((column, document_id)) = &loaded.0[at] {
            // A refused value names its document, and its column where the server does
            // (a JSON CHECK constraint names none).
            assert_eq!(document_id.as_deref(), Some(format!("c/{at}").as_str()));
            if !case.0.starts_with("JSON") {
                assert_eq!(
                    column.as_deref(),
                    Some(format!("C{at}").as_str()),
                    "case {at}"
                );
            }
        }
    }
    assert_eq!(loaded.1, inserted.1);
    // Not everything was refused, nor everything accepted.
    let refused = loaded.0.iter().filter(|it| it.is_err()).count();
    assert!(refused > 5 && refused < cases.len() - 20, "{refused}");

    // Integers and other values in one column of one batch: read apart.
    let mut stored = Vec::new();
    for load_data in [true, false] {
        let name = if load_data {
            "MixedLoaded"
        } else {
            "MixedInserted"
        };
        db.execute(&format!(
            "CREATE TABLE $db.{name} (Id VARCHAR(20), B BIT(8), V VARCHAR(10), N INT) \
             ENGINE=InnoDB"
        ))
        .await;
        let values = [
            (SqlValue::Int(5), SqlValue::Int(1)),
            (text("a"), text("x")),
            (SqlValue::Null, SqlValue::Int(2)),
            (SqlValue::Bool(true), SqlValue::Null),
            (SqlValue::Int(7), text("y")),
        ];
        let batch = SqlBatch {
            tables: vec![table(
                &db.table(name),
                "Id",
                &[],
                values
                    .iter()
                    .enumerate()
                    .map(|(at, (b, v))| {
                        row(
                            &format!("m/{at}"),
                            vec![
                                ("B", b.clone()),
                                ("V", v.clone()),
                                ("N", SqlValue::Int(at as i64)),
                            ],
                        )
                    })
                    .collect(),
            )],
        };
        let mut writer = db.writer_with(SqlSettings::default(), load_data);
        writer.write(&batch, true).await.unwrap();
        let statements = writer.plan(&batch);
        if load_data {
            // (B, V) integer or not: (yes, yes), (no, no), (no, yes), (yes, no).
            assert_eq!(statements.len(), 4, "{statements:?}");
        }
        stored.push(
            db.query(&format!(
                "SELECT Id, HEX(B), V, N FROM $db.{name} ORDER BY Id"
            ))
            .await,
        );
    }
    assert_eq!(stored[0], stored[1]);
}
