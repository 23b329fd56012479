//! The PostgreSQL writer of SQL ETL against the machine's PostgreSQL (`common::POSTGRES_CS`).
//! Each test works in its own schema, dropped at the end even when the test fails.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corvid_etl::destinations::sql::connection::{self, SqlTarget};
use corvid_etl::destinations::sql::postgres::{PgWriter, plan};
use corvid_etl::destinations::sql::{
    SqlBatch, SqlLoadError, SqlRow, SqlSettings, SqlValue, Statement, StatementFault, TableBatch,
};
use tokio_postgres::{Client, NoTls};

const VERIFY_CS: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

fn target() -> SqlTarget {
    connection::parse("Npgsql", common::POSTGRES_CS).unwrap()
}

async fn verify_client() -> Client {
    let (client, connection) = tokio_postgres::connect(VERIFY_CS, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Drops its schema (CASCADE) when dropped, even during a panic. Runs on its own thread and
/// runtime, since `Drop` cannot await.
struct Schema {
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(VERIFY_CS, NoTls).await.ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// `None` (the test is skipped) without a PostgreSQL; otherwise a client and a fresh schema
/// in which `ddl` ran (`{s}` stands for the schema name).
async fn setup(test: &str, ddl: &str) -> Option<(Client, Schema)> {
    if !common::service_available("PostgreSQL", common::POSTGRES_ADDR, test) {
        return None;
    }
    let client = verify_client().await;
    let schema = Schema {
        name: common::unique_name("pg"),
    };
    client
        .batch_execute(&format!("CREATE SCHEMA \"{}\"", schema.name))
        .await
        .unwrap();
    client
        .batch_execute(&ddl.replace("{s}", &schema.name))
        .await
        .unwrap();
    Some((client, schema))
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

/// `(document id, the rest as text)` of every row of a table, sorted.
async fn dump(client: &Client, query: &str) -> Vec<Vec<Option<String>>> {
    let rows = client.query(query, &[]).await.unwrap();
    let mut result: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|row| (0..row.len()).map(|at| row.get(at)).collect())
        .collect();
    result.sort();
    result
}

fn strings(rows: &[&[Option<&str>]]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|row| row.iter().map(|it| it.map(str::to_owned)).collect())
        .collect()
}

#[tokio::test]
async fn every_value_kind_round_trips() {
    let Some((client, schema)) = setup(
        "every_value_kind_round_trips",
        r#"CREATE TABLE "{s}"."Values" (
            "Id" text NOT NULL, "I4" int4, "I8" int8, "Num" numeric(30,10), "F8" float8,
            "B" bool, "T" text, "Ts" timestamp, "Tz" timestamptz, "Tz2" timestamptz,
            "J" jsonb, "Bin" bytea, "N" text, "Arr" float8[], "Ansi" varchar(10))"#,
    )
    .await
    else {
        return;
    };
    let tricky = "tab\there\nnew\rcr\\back 'single' \"double\" é ✓ \\N \\.";
    let json = r#"{"a": [1, 2.5], "b": "x\ty", "c": null}"#;
    let bytes: Vec<u8> = (0..=255).collect();
    let batch = SqlBatch {
        tables: vec![table(
            &format!("{}.Values", schema.name),
            "Id",
            &["values/1"],
            vec![row(
                "values/1",
                vec![
                    ("I4", SqlValue::Int(42)),
                    ("I8", SqlValue::Int(9_000_000_000)),
                    (
                        "Num",
                        SqlValue::Number("12345678901234567890.1234567891".to_owned()),
                    ),
                    ("F8", SqlValue::Number("3.25".to_owned())),
                    ("B", SqlValue::Bool(true)),
                    ("T", text(tricky)),
                    (
                        "Ts",
                        SqlValue::DateTime("2024-01-02T03:04:05.1234567Z".to_owned()),
                    ),
                    (
                        "Tz",
                        SqlValue::DateTime("2024-01-02T03:04:05.1234567Z".to_owned()),
                    ),
                    (
                        "Tz2",
                        SqlValue::DateTime("2024-01-02T03:04:05.1234567+02:00".to_owned()),
                    ),
                    ("J", SqlValue::Json(json.to_owned())),
                    ("Bin", SqlValue::Binary(Bytes::from(bytes.clone()))),
                    ("N", SqlValue::Null),
                    (
                        "Arr",
                        SqlValue::Typed {
                            type_name: "Array | Double".to_owned(),
                            value: Box::new(SqlValue::Json("[1, 2.5, -3e2, null]".to_owned())),
                            size: None,
                        },
                    ),
                    (
                        "Ansi",
                        SqlValue::Typed {
                            type_name: "AnsiString".to_owned(),
                            value: Box::new(text("hello")),
                            size: Some(10),
                        },
                    ),
                ],
            )],
        )],
    };
    let mut writer = PgWriter::new(target(), SqlSettings::default());
    writer.write(&batch, true).await.unwrap();

    client.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    let row = client
        .query_one(
            &format!(
                r#"SELECT "Id", "I4", "I8", "Num"::text, "F8", "B", "T", "Ts"::text, "Tz"::text,
                    "Tz2"::text, "J" = $1::text::jsonb, "Bin", "N", "Arr"::text, "Ansi"
                FROM "{}"."Values""#,
                schema.name
            ),
            &[&json],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "values/1");
    assert_eq!(row.get::<_, i32>(1), 42);
    assert_eq!(row.get::<_, i64>(2), 9_000_000_000);
    assert_eq!(row.get::<_, String>(3), "12345678901234567890.1234567891");
    assert_eq!(row.get::<_, f64>(4), 3.25);
    assert!(row.get::<_, bool>(5));
    assert_eq!(row.get::<_, String>(6), tricky);
    // A `timestamp` ignores the zone; both round to microseconds.
    assert_eq!(row.get::<_, String>(7), "2024-01-02 03:04:05.123457");
    assert_eq!(row.get::<_, String>(8), "2024-01-02 03:04:05.123457+00");
    assert_eq!(row.get::<_, String>(9), "2024-01-02 01:04:05.123457+00");
    assert!(row.get::<_, bool>(10), "jsonb differs");
    assert_eq!(row.get::<_, Vec<u8>>(11), bytes);
    assert_eq!(row.get::<_, Option<String>>(12), None);
    assert_eq!(row.get::<_, String>(13), "{1,2.5,-300,NULL}");
    assert_eq!(row.get::<_, String>(14), "hello");
}

const LINES_DDL: &str = r#"
    CREATE TABLE "{s}"."OrderLines" ("OrderId" text NOT NULL, "Product" text, "Qty" int);
    CREATE TABLE "{s}"."Audit" ("OrderId" text NOT NULL, "Event" text);
    INSERT INTO "{s}"."OrderLines" VALUES
        ('orders/1', 'apple', 1), ('orders/1', 'pear', 2), ('orders/2', 'plum', 3),
        ('it''s/4', 'fig', 4);
    INSERT INTO "{s}"."Audit" VALUES ('orders/1', 'created');
"#;

#[tokio::test]
async fn delete_then_insert_replaces_rows_with_bound_ids() {
    let Some((client, schema)) =
        setup("delete_then_insert_replaces_rows_with_bound_ids", LINES_DDL).await
    else {
        return;
    };
    let s = &schema.name;
    let mut audit = table(
        &format!("{s}.Audit"),
        "OrderId",
        &["orders/1"],
        vec![row("orders/1", vec![("Event", text("updated"))])],
    );
    audit.insert_only = true;
    let batch = SqlBatch {
        tables: vec![
            table(
                &format!("{s}.OrderLines"),
                "OrderId",
                &["orders/1", "orders/3", "it's/4"],
                vec![row(
                    "orders/1",
                    vec![("Product", text("kiwi")), ("Qty", SqlValue::Int(7))],
                )],
            ),
            audit,
        ],
    };
    let mut writer = PgWriter::new(target(), SqlSettings::default());
    writer.write(&batch, true).await.unwrap();
    assert_eq!(
        dump(
            &client,
            &format!(r#"SELECT "OrderId", "Product", "Qty"::text FROM "{s}"."OrderLines""#)
        )
        .await,
        strings(&[
            &[Some("orders/1"), Some("kiwi"), Some("7")],
            &[Some("orders/2"), Some("plum"), Some("3")],
        ])
    );
    assert_eq!(
        dump(
            &client,
            &format!(r#"SELECT "OrderId", "Event" FROM "{s}"."Audit""#)
        )
        .await,
        strings(&[
            &[Some("orders/1"), Some("created")],
            &[Some("orders/1"), Some("updated")],
        ])
    );
}

#[tokio::test]
async fn unquoted_lower_case_tables_with_inlined_deletes() {
    let Some((client, schema)) = setup(
        "unquoted_lower_case_tables_with_inlined_deletes",
        r#"
        CREATE TABLE {s}.order_lines (order_id text NOT NULL, product text, qty int);
        INSERT INTO {s}.order_lines VALUES
            ('orders/1', 'apple', 1), ('orders/1', 'pear', 2), ('orders/2', 'plum', 3),
            ('it''s/4', 'fig', 4);
        "#,
    )
    .await
    else {
        return;
    };
    let s = &schema.name;
    let batch = SqlBatch {
        tables: vec![table(
            &format!("{s}.order_lines"),
            "order_id",
            &["orders/1", "it's/4"],
            vec![
                row(
                    "orders/1",
                    vec![("product", text("kiwi")), ("qty", SqlValue::Int(7))],
                ),
                row(
                    "it's/4",
                    vec![("product", text("date")), ("qty", SqlValue::Null)],
                ),
            ],
        )],
    };
    let settings = SqlSettings {
        quote_tables: false,
        parameterize_deletes: false,
        command_timeout: Some(Duration::from_secs(30)),
    };
    assert!(plan(&batch, &settings)[0].text.starts_with(&format!(
        "DELETE FROM {s}.order_lines WHERE \"order_id\" IN ('orders/1', 'it''s/4')"
    )));
    let mut writer = PgWriter::new(target(), settings);
    writer.write(&batch, true).await.unwrap();
    assert_eq!(
        dump(
            &client,
            &format!("SELECT order_id, product, qty::text FROM {s}.order_lines")
        )
        .await,
        strings(&[
            &[Some("it's/4"), Some("date"), None],
            &[Some("orders/1"), Some("kiwi"), Some("7")],
            &[Some("orders/2"), Some("plum"), Some("3")],
        ])
    );
}

const PARENT_CHILD_DDL: &str = r#"
    CREATE TABLE "{s}"."Orders" ("Id" text PRIMARY KEY, "Total" numeric(12,2));
    CREATE TABLE "{s}"."OrderLines" (
        "OrderId" text NOT NULL REFERENCES "{s}"."Orders" ("Id"), "Product" text);
    INSERT INTO "{s}"."Orders" VALUES ('orders/1', 10), ('orders/2', 20);
    INSERT INTO "{s}"."OrderLines" VALUES ('orders/1', 'apple'), ('orders/1', 'pear'),
        ('orders/2', 'plum');
"#;

fn replace_order_1(s: &str) -> SqlBatch {
    SqlBatch {
        tables: vec![
            table(
                &format!("{s}.Orders"),
                "Id",
                &["orders/1"],
                vec![row(
                    "orders/1",
                    vec![("Total", SqlValue::Number("99.95".to_owned()))],
                )],
            ),
            table(
                &format!("{s}.OrderLines"),
                "OrderId",
                &["orders/1"],
                vec![
                    row("orders/1", vec![("Product", text("kiwi"))]),
                    row("orders/1", vec![("Product", text("lime"))]),
                    row("orders/1", vec![("Product", text("mango"))]),
                ],
            ),
        ],
    }
}

#[tokio::test]
async fn parent_and_children_are_replaced_despite_a_foreign_key() {
    let Some((client, schema)) = setup(
        "parent_and_children_are_replaced_despite_a_foreign_key",
        PARENT_CHILD_DDL,
    )
    .await
    else {
        return;
    };
    let s = &schema.name;
    let mut writer = PgWriter::new(target(), SqlSettings::default());
    writer.write(&replace_order_1(s), true).await.unwrap();
    assert_eq!(
        dump(
            &client,
            &format!(r#"SELECT "Id", "Total"::text FROM "{s}"."Orders""#)
        )
        .await,
        strings(&[
            &[Some("orders/1"), Some("99.95")],
            &[Some("orders/2"), Some("20.00")],
        ])
    );
    assert_eq!(
        dump(
            &client,
            &format!(r#"SELECT "OrderId", "Product" FROM "{s}"."OrderLines""#)
        )
        .await,
        strings(&[
            &[Some("orders/1"), Some("kiwi")],
            &[Some("orders/1"), Some("lime")],
            &[Some("orders/1"), Some("mango")],
            &[Some("orders/2"), Some("plum")],
        ])
    );
}

#[tokio::test]
async fn constraint_violations_name_column_and_document() {
    let Some((client, schema)) = setup(
        "constraint_violations_name_column_and_document",
        PARENT_CHILD_DDL,
    )
    .await
    else {
        return;
    };
    let s = &schema.name;
    let mut writer = PgWriter::new(target(), SqlSettings::default());
    // A child whose parent does not exist: the foreign key is checked after the last line.
    let orphan = SqlBatch {
        tables: vec![table(
            &format!("{s}.OrderLines"),
            "OrderId",
            &[],
            vec![
                row("orders/1", vec![("Product", text("kiwi"))]),
                row("orders/9", vec![("Product", text("lime"))]),
            ],
        )],
    };
    let error = writer.write(&orphan, true).await.unwrap_err();
    let SqlLoadError::Statement {
        table: failed_table,
        column,
        document_id,
        message,
        ..
    } = &error
    else {
        panic!("expected a statement error, got {error:?}");
    };
    assert_eq!(failed_table, &format!("{s}.OrderLines"));
    assert_eq!(column.as_deref(), Some("OrderId"), "{error}");
    assert_eq!(document_id.as_deref(), Some("orders/9"), "{error}");
    assert!(message.contains("is not present in table"), "{message}");
    // A duplicate key on the 2nd line of an insert-only table.
    let mut duplicate = table(
        &format!("{s}.Orders"),
        "Id",
        &[],
        vec![
            row("orders/3", vec![("Total", SqlValue::Int(3))]),
            row("orders/2", vec![("Total", SqlValue::Int(2))]),
        ],
    );
    duplicate.insert_only = true;
    let error = writer
        .write(
            &SqlBatch {
                tables: vec![duplicate],
            },
            true,
        )
        .await
        .unwrap_err();
    let SqlLoadError::Statement {
        column,
        document_id,
        message,
        ..
    } = &error
    else {
        panic!("expected a statement error, got {error:?}");
    };
    assert_eq!(column.as_deref(), Some("Id"), "{error}");
    assert_eq!(document_id.as_deref(), Some("orders/2"), "{error}");
    assert!(message.contains("already exists"), "{message}");
    let count = format!(r#"SELECT count(*) FROM "{s}"."Orders""#);
    assert_eq!(
        client
            .query_one(&count, &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        2
    );
}

#[tokio::test]
async fn without_commit_nothing_changes() {
    let Some((client, schema)) = setup("without_commit_nothing_changes", PARENT_CHILD_DDL).await
    else {
        return;
    };
    let s = &schema.name;
    let lines = format!(r#"SELECT "OrderId", "Product" FROM "{s}"."OrderLines""#);
    let orders = format!(r#"SELECT "Id", "Total"::text FROM "{s}"."Orders""#);
    let before = (dump(&client, &lines).await, dump(&client, &orders).await);
    let mut writer = PgWriter::new(target(), SqlSettings::default());
    writer.write(&replace_order_1(s), false).await.unwrap();
    assert_eq!(
        (dump(&client, &lines).await, dump(&client, &orders).await),
        before
    );
    // The same connection then commits normally.
    writer.write(&replace_order_1(s), true).await.unwrap();
    assert_eq!(dump(&client, &lines).await.len(), 4);
}

#[tokio::test]
async fn a_missing_table_names_the_table() {
    let Some((_client, schema)) = setup("a_missing_table_names_the_table", "").await else {
        return;
    };
    let name = format!("{}.Missing", schema.name);
    let batch = SqlBatch {
        tables: vec![table(
            &name,
            "Id",
            &[],
            vec![row("a/1", vec![("X", SqlValue::Int(1))])],
        )],
    };
    let mut writer = PgWriter::new(target(), SqlSettings::default());
    match writer.write(&batch, true).await {
        Err(SqlLoadError::Statement {
            table,
            column,
            document_id,
            message,
            ..
        }) => {
            assert_eq!(table, name);
            assert_eq!((column, document_id), (None, None));
            assert!(message.contains("does not exist"), "{message}");
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
    // A delete from it fails the same way.
    let batch = SqlBatch {
        tables: vec![table(&name, "Id", &["a/1"], Vec::new())],
    };
    match writer.write(&batch, true).await {
        Err(SqlLoadError::Statement { table, .. }) => assert_eq!(table, name),
        other => panic!("expected a statement error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_column_names_the_column() {
    let Some((_client, schema)) = setup(
        "a_missing_column_names_the_column",
        r#"CREATE TABLE "{s}"."Orders" ("Id" text, "Total" int)"#,
    )
    .await
    else {
        return;
    };
    let name = format!("{}.Orders", schema.name);
    let batch = SqlBatch {
        tables: vec![table(
            &name,
            "Id",
            &[],
            vec![row(
                "orders/1",
                vec![("Total", SqlValue::Int(1)), ("Nope", SqlValue::Int(2))],
            )],
        )],
    };
    let mut writer = PgWriter::new(target(), SqlSettings::default());
    let error = writer.write(&batch, true).await.unwrap_err();
    let SqlLoadError::Statement {
        table: failed_table,
        column,
        document_id,
        ..
    } = &error
    else {
        panic!("expected a statement error, got {error:?}");
    };
    assert_eq!(
        (failed_table.as_str(), column.as_deref(), document_id),
        (name.as_str(), Some("Nope"), &None),
        "{error}"
    );
    // A missing document-id column in a delete.
    let batch = SqlBatch {
        tables: vec![table(&name, "OrderId", &["orders/1"], Vec::new())],
    };
    let error = writer.write(&batch, true).await.unwrap_err();
    let SqlLoadError::Statement { column, .. } = &error else {
        panic!("expected a statement error, got {error:?}");
    };
    assert_eq!(column.as_deref(), Some("OrderId"), "{error}");
}

#[tokio::test]
async fn a_bad_value_names_column_and_document_and_the_writer_recovers() {
    let Some((client, schema)) = setup(
        "a_bad_value_names_column_and_document_and_the_writer_recovers",
        r#"CREATE TABLE "{s}"."Orders" ("Id" text, "Name" text, "Total" int)"#,
    )
    .await
    else {
        return;
    };
    let name = format!("{}.Orders", schema.name);
    let bad = SqlBatch {
        tables: vec![table(
            &name,
            "Id",
            &["orders/1", "orders/2"],
            vec![
                row(
                    "orders/1",
                    vec![("Name", text("a\tb")), ("Total", SqlValue::Int(1))],
                ),
                row(
                    "orders/2",
                    vec![("Name", text("c\nd")), ("Total", text("abc"))],
                ),
                row(
                    "orders/3",
                    vec![("Name", text("e")), ("Total", SqlValue::Int(3))],
                ),
            ],
        )],
    };
    let mut writer = PgWriter::new(target(), SqlSettings::default());
    let error = writer.write(&bad, true).await.unwrap_err();
    assert_eq!(
        error,
        SqlLoadError::Statement {
            table: name.clone(),
            column: Some("Total".to_owned()),
            document_id: Some("orders/2".to_owned()),
            message: "invalid input syntax for type integer: \"abc\"".to_owned(),
            fault: StatementFault::Item,
        }
    );
    assert!(error.to_string().contains("document `orders/2`"), "{error}");
    let count = format!(r#"SELECT count(*) FROM "{}"."Orders""#, schema.name);
    assert_eq!(
        client
            .query_one(&count, &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        0
    );

    // The same writer (and connection) goes on with a good batch.
    let good = SqlBatch {
        tables: vec![table(
            &name,
            "Id",
            &["orders/2"],
            vec![row(
                "orders/2",
                vec![("Name", text("ok")), ("Total", SqlValue::Int(2))],
            )],
        )],
    };
    writer.write(&good, true).await.unwrap();
    assert_eq!(
        client
            .query_one(&count, &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        1
    );
}

#[tokio::test]
async fn a_statement_timeout_is_a_statement_error() {
    let Some((_client, schema)) = setup(
        "a_statement_timeout_is_a_statement_error",
        r#"
        CREATE TABLE "{s}"."Slow" ("Id" text, "V" int);
        CREATE FUNCTION "{s}".slow() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$;
        CREATE TRIGGER slow BEFORE INSERT ON "{s}"."Slow" FOR EACH ROW EXECUTE FUNCTION "{s}".slow();
        "#,
    )
    .await
    else {
        return;
    };
    let name = format!("{}.Slow", schema.name);
    let batch = SqlBatch {
        tables: vec![table(
            &name,
            "Id",
            &[],
            vec![row("slow/1", vec![("V", SqlValue::Int(1))])],
        )],
    };
    let settings = SqlSettings {
        command_timeout: Some(Duration::from_millis(100)),
        ..SqlSettings::default()
    };
    let mut writer = PgWriter::new(target(), settings);
    match writer.write(&batch, true).await {
        Err(SqlLoadError::Statement {
            table,
            document_id,
            message,
            ..
        }) => {
            assert_eq!(table, name);
            assert_eq!(document_id, None);
            assert!(message.contains("statement timeout"), "{message}");
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_broken_connection_is_replaced() {
    let Some((client, schema)) = setup(
        "a_broken_connection_is_replaced",
        r#"
        CREATE TABLE "{s}"."T" ("Id" text, "Pid" int);
        CREATE FUNCTION "{s}".pid() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN NEW."Pid" := pg_backend_pid(); RETURN NEW; END $$;
        CREATE TRIGGER pid BEFORE INSERT ON "{s}"."T" FOR EACH ROW EXECUTE FUNCTION "{s}".pid();
        "#,
    )
    .await
    else {
        return;
    };
    let s = &schema.name;
    let batch = |id: &str| SqlBatch {
        tables: vec![table(
            &format!("{s}.T"),
            "Id",
            &[id],
            vec![row(id, Vec::new())],
        )],
    };
    let mut writer = PgWriter::new(target(), SqlSettings::default());
    writer
        .query_returns_rows("SELECT 1")
        .await
        .map(drop)
        .unwrap();
    writer.write(&batch("t/1"), true).await.unwrap();
    let pid: i32 = client
        .query_one(&format!(r#"SELECT "Pid" FROM "{s}"."T""#), &[])
        .await
        .unwrap()
        .get(0);
    client
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // At most one attempt may still see the dead connection, as a connection error.
    if let Err(error) = writer.write(&batch("t/2"), true).await {
        assert!(
            matches!(error, SqlLoadError::Connection { .. }),
            "{error:?}"
        );
        writer.write(&batch("t/2"), true).await.unwrap();
    }
    writer
        .query_returns_rows("SELECT 1")
        .await
        .map(drop)
        .unwrap();
    let pids = dump(
        &client,
        &format!(r#"SELECT "Id", "Pid"::text FROM "{s}"."T""#),
    )
    .await;
    assert_eq!(pids.len(), 2);
    assert_ne!(pids[0][1], pids[1][1], "a new connection was opened");
}

#[tokio::test]
async fn an_unreachable_server_is_a_connection_error_without_the_password() {
    // Needs no server: nothing listens on port 1.
    let target = connection::parse(
        "Npgsql",
        "Host=127.0.0.1;Port=1;Database=test;Username=postgres;Password=sekret",
    )
    .unwrap();
    let mut writer = PgWriter::new(target, SqlSettings::default());
    let batch = SqlBatch {
        tables: vec![table("Orders", "Id", &["orders/1"], Vec::new())],
    };
    for error in [
        writer.write(&batch, true).await.unwrap_err(),
        writer
            .query_returns_rows("SELECT 1")
            .await
            .map(drop)
            .unwrap_err(),
    ] {
        let SqlLoadError::Connection {
            destination,
            message,
        } = &error
        else {
            panic!("expected a connection error, got {error:?}");
        };
        assert_eq!(destination, "test@127.0.0.1:1");
        assert!(!message.is_empty());
        assert!(!error.to_string().contains("sekret"), "{error}");
        assert!(!format!("{error:?}").contains("sekret"), "{error:?}");
    }
}

#[test]
fn plan_shows_the_statements_write_runs() {
    let batch = SqlBatch {
        tables: vec![
            table(
                "Orders",
                "Id",
                &["orders/1-a", "orders/2-a"],
                vec![
                    row(
                        "orders/1-a",
                        vec![
                            ("Total", SqlValue::Number("10.5".to_owned())),
                            ("Name", text("x")),
                        ],
                    ),
                    row("orders/2-a", vec![("Total", SqlValue::Int(3))]),
                    row(
                        "orders/3-a",
                        vec![("Total", SqlValue::Int(4)), ("Name", SqlValue::Null)],
                    ),
                ],
            ),
            table(
                "sales.OrderLines",
                "OrderId",
                &["it's/1"],
                vec![row(
                    "it's/1",
                    vec![
                        ("Product", text("it's")),
                        ("Data", SqlValue::Binary(Bytes::from_static(b"\x01"))),
                    ],
                )],
            ),
        ],
    };
    let statement = |table: &str, text: &str, params: &[(&str, &str)]| Statement {
        table: table.to_owned(),
        text: text.to_owned(),
        params: params
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    };
    let copies = [
        statement(
            "Orders",
            r#"COPY "Orders" ("Id", "Total", "Name") FROM STDIN"#,
            &[
                ("Id", "'orders/1-a'"),
                ("Total", "10.5"),
                ("Name", "'x'"),
                ("Id", "'orders/3-a'"),
                ("Total", "4"),
                ("Name", "NULL"),
            ],
        ),
        statement(
            "Orders",
            r#"COPY "Orders" ("Id", "Total") FROM STDIN"#,
            &[("Id", "'orders/2-a'"), ("Total", "3")],
        ),
        statement(
            "sales.OrderLines",
            r#"COPY "sales"."OrderLines" ("OrderId", "Product", "Data") FROM STDIN"#,
            &[
                ("OrderId", "'it''s/1'"),
                ("Product", "'it''s'"),
                ("Data", "<binary_data>"),
            ],
        ),
    ];

    let mut expected = vec![
        statement(
            "sales.OrderLines",
            r#"DELETE FROM "sales"."OrderLines" WHERE "OrderId" = ANY($1)"#,
            &[("$1", "ARRAY['it''s/1']")],
        ),
        statement(
            "Orders",
            r#"DELETE FROM "Orders" WHERE "Id" = ANY($1)"#,
            &[("$1", "ARRAY['orders/1-a', 'orders/2-a']")],
        ),
    ];
    expected.extend(copies.iter().cloned());
    assert_eq!(plan(&batch, &SqlSettings::default()), expected);

    let settings = SqlSettings {
        quote_tables: false,
        parameterize_deletes: false,
        command_timeout: None,
    };
    let mut expected = vec![
        statement(
            "sales.OrderLines",
            r#"DELETE FROM sales.OrderLines WHERE "OrderId" IN ('it''s/1')"#,
            &[],
        ),
        statement(
            "Orders",
            r#"DELETE FROM Orders WHERE "Id" IN ('orders/1-a', 'orders/2-a')"#,
            &[],
        ),
    ];
    expected.extend(copies.iter().cloned().map(|mut it| {
        it.text = it
            .text
            .replace(r#""sales"."OrderLines""#, "sales.OrderLines");
        it.text = it.text.replace(r#"COPY "Orders""#, "COPY Orders");
        it
    }));
    assert_eq!(plan(&batch, &settings), expected);

    // Insert-only tables and tables without deletes get no DELETE.
    let mut insert_only = batch.clone();
    insert_only.tables[0].insert_only = true;
    insert_only.tables[1].deletes.clear();
    let statements = plan(&insert_only, &SqlSettings::default());
    assert_eq!(statements, copies.to_vec());
}

#[test]
fn the_write_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let mut writer = PgWriter::new(target(), SqlSettings::default());
    let batch = SqlBatch::default();
    let future = writer.write(&batch, true);
    assert_send(&future);
}

#[tokio::test]
async fn a_large_batch_lands_completely() {
    let Some((client, schema)) = setup(
        "a_large_batch_lands_completely",
        r#"
        CREATE TABLE "{s}"."Orders" ("Id" text PRIMARY KEY, "Customer" text, "Total" numeric(12,2));
        CREATE TABLE "{s}"."OrderLines" (
            "OrderId" text NOT NULL REFERENCES "{s}"."Orders" ("Id"), "Product" text,
            "Qty" int, "Discount" float8);
        "#,
    )
    .await
    else {
        return;
    };
    let s = schema.name.clone();
    let ids: Vec<String> = (0..5_000).map(|it| format!("orders/{it}-A")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let orders = ids
        .iter()
        .enumerate()
        .map(|(at, id)| {
            row(
                id,
                vec![
                    (
                        "Customer",
                        text(&format!("customer \t{at}\\ with some padding text")),
                    ),
                    ("Total", SqlValue::Number(format!("{at}.25"))),
                ],
            )
        })
        .collect();
    let lines = ids
        .iter()
        .flat_map(|id| {
            (0..3).map(move |line| {
                let mut columns = vec![
                    ("Product", text(&format!("product {line} of {id}"))),
                    ("Qty", SqlValue::Int(line + 1)),
                ];
                if line == 2 {
                    columns.push(("Discount", SqlValue::Number("0.5".to_owned())));
                }
                row(id, columns)
            })
        })
        .collect();
    let batch = SqlBatch {
        tables: vec![
            table(&format!("{s}.Orders"), "Id", &id_refs, orders),
            table(&format!("{s}.OrderLines"), "OrderId", &id_refs, lines),
        ],
    };
    assert_eq!(batch.n_rows(), 20_000);
    // Runs in a spawned task, as the ETL process does.
    let written = tokio::spawn(async move {
        let mut writer = PgWriter::new(target(), SqlSettings::default());
        writer.write(&batch, true).await?;
        // Again: the deletes make it idempotent.
        writer.write(&batch, true).await
    })
    .await
    .unwrap();
    written.unwrap();
    let row = client
        .query_one(
            &format!(
                r#"SELECT (SELECT count(*) FROM "{s}"."Orders"),
                    (SELECT sum("Total")::text FROM "{s}"."Orders"),
                    (SELECT count(*) FROM "{s}"."OrderLines"),
                    (SELECT sum("Qty") FROM "{s}"."OrderLines"),
                    (SELECT count("Discount") FROM "{s}"."OrderLines"),
                    (SELECT "Customer" FROM "{s}"."Orders" WHERE "Id" = 'orders/4999-A')"#
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 5_000);
    // Σ (at + 0.25) for at in 0..5000 = 12,497,500 + 1,250.
    assert_eq!(row.get::<_, String>(1), "12498750.00");
    assert_eq!(row.get::<_, i64>(2), 15_000);
    assert_eq!(row.get::<_, i64>(3), 30_000);
    assert_eq!(row.get::<_, i64>(4), 5_000);
    assert_eq!(
        row.get::<_, String>(5),
        "customer \t4999\\ with some padding text"
    );
}

/// Whether `sql` returns a row on a writer's connection with `connection_string`.
async fn returns_rows(connection_string: &str, sql: &str) -> Result<bool, SqlLoadError> {
    let mut writer = PgWriter::new(
        connection::parse("Npgsql", connection_string).unwrap(),
        SqlSettings::default(),
    );
    writer.query_returns_rows(sql).await
}

/// Whether a writer with `connection_string` reaches the server over TLS.
async fn encrypted(connection_string: &str) -> Result<bool, SqlLoadError> {
    let sql = "SELECT 1 FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl";
    returns_rows(connection_string, sql).await
}

#[tokio::test]
async fn tls_modes_against_the_machines_server() {
    let test = "tls_modes_against_the_machines_server";
    if !common::service_available("PostgreSQL", common::POSTGRES_ADDR, test) {
        return;
    }
    let ssl: String = verify_client()
        .await
        .query_one("SHOW ssl", &[])
        .await
        .unwrap()
        .get(0);
    if ssl != "on" {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: the machine's PostgreSQL has ssl off, and CI must not skip it"
        );
        eprintln!("SKIPPED {test}: the machine's PostgreSQL has ssl off");
        return;
    }
    let cs = common::POSTGRES_CS;
    // Prefer, Npgsql's default: encrypted where the server offers it.
    assert!(encrypted(cs).await.unwrap());
    assert!(!encrypted(&format!("{cs};SslMode=Disable")).await.unwrap());
    assert!(encrypted(&format!("{cs};SslMode=Require")).await.unwrap());
    // The machine's certificate is self-signed: no authority of the system's vouches for it.
    let error = encrypted(&format!("{cs};SslMode=VerifyFull"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SqlLoadError::Connection { message, .. } if message.contains("certificate")),
        "{error:?}"
    );
    let error = encrypted(&format!(
        "{cs};SslMode=VerifyCA;Root Certificate=/nonexistent/ca.pem"
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&error, SqlLoadError::Connection { message, .. } if message.contains("`Root Certificate` /nonexistent/ca.pem")),
        "{error:?}"
    );
}

/// A TLS end in front of the machine's PostgreSQL: it answers a client's SSLRequest, completes
/// the handshake with `certificate` and relays the session as plain text to the server.
/// Returns its port.
async fn tls_proxy(
    certificate: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certificate], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // SSLRequest: length 8, code 80877103.
                let mut request = [0; 8];
                if socket.read_exact(&mut request).await.is_err()
                    || request != [0, 0, 0, 8, 4, 210, 22, 47]
                    || socket.write_all(b"S").await.is_err()
                {
                    return;
                }
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(common::POSTGRES_ADDR).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn verifying_tls_modes_check_the_authority_and_the_name() {
    let Some((client, schema)) = setup(
        "verifying_tls_modes_check_the_authority_and_the_name",
        r#"CREATE TABLE "{s}"."Orders" ("Id" text NOT NULL, "Total" numeric)"#,
    )
    .await
    else {
        return;
    };
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut authority = CertificateParams::new(Vec::<String>::new()).unwrap();
    authority.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    authority
        .distinguished_name
        .push(DnType::CommonName, "Corvid test authority");
    let authority = CertifiedIssuer::self_signed(authority, KeyPair::generate().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let authority_file = dir.path().join("ca.pem");
    std::fs::write(&authority_file, authority.pem()).unwrap();
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let certificate = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &authority)
            .unwrap();
        (
            certificate.der().clone(),
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
    };
    let (certificate, key) = leaf("db.example");
    let named = tls_proxy(certificate, key).await;
    let (certificate, key) = leaf("127.0.0.1");
    let by_address = tls_proxy(certificate, key).await;
    let cs = |port: u16, mode: &str, trusted: bool| {
        let mut cs =
            format!("Host=127.0.0.1;Port={port};Database=test;Username=postgres;SslMode={mode}");
        if trusted {
            cs.push_str(&format!(";Root Certificate={}", authority_file.display()));
        }
        cs
    };
    let connects = |cs: String| async move { returns_rows(&cs, "SELECT 1").await };
    // The name is checked only by VerifyFull; the authority by both.
    assert!(connects(cs(named, "VerifyCA", true)).await.unwrap());
    assert!(connects(cs(named, "Require", false)).await.unwrap());
    let error = connects(cs(named, "VerifyFull", true)).await.unwrap_err();
    assert!(error.to_string().contains("not valid for name"), "{error}");
    let error = connects(cs(by_address, "VerifyFull", false))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    assert!(connects(cs(by_address, "VerifyFull", true)).await.unwrap());

    // A whole batch (deletes, COPY) over a verified connection.
    let mut writer = PgWriter::new(
        connection::parse("Npgsql", &cs(by_address, "VerifyFull", true)).unwrap(),
        SqlSettings::default(),
    );
    let orders = format!("{}.Orders", schema.name);
    let batch = SqlBatch {
        tables: vec![table(
            &orders,
            "Id",
            &["orders/1"],
            (1..=3)
                .map(|it| {
                    row(
                        &format!("orders/{it}"),
                        vec![("Total", SqlValue::Number(format!("{it}.5")))],
                    )
                })
                .collect(),
        )],
    };
    writer.write(&batch, true).await.unwrap();
    assert_eq!(
        dump(
            &client,
            &format!(
                r#"SELECT "Id", "Total"::text FROM "{}"."Orders""#,
                schema.name
            )
        )
        .await,
        strings(&[
            &[Some("orders/1"), Some("1.5")],
            &[Some("orders/2"), Some("2.5")],
            &[Some("orders/3"), Some("3.5")],
        ])
    );
}
