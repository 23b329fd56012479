//! SQL ETL end to end: an in-process Corvid source, tasks defined over HTTP as a user would,
//! and real destination databases — the machine's PostgreSQL and MariaDB, and a SQLite file.
//! Each test creates its own uniquely named schema (database, file) and drops it.
//!
//! Without PostgreSQL or MariaDB a test says `SKIPPED …` and passes; with `CI` set it fails.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../corvid-etl/tests/common/mod.rs"]
mod services;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corvid_client::Client;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use common::live::{
    Server, database, eventually, eventually_within, reset_etl, send, set_task_disabled, start,
};

/// A destination database of one engine, owned by one test.
enum Engine {
    Sqlite {
        path: PathBuf,
        _dir: tempfile::TempDir,
    },
    Postgres {
        schema: String,
        port: u16,
    },
    MariaDb {
        database: String,
    },
}

struct Destination {
    engine: Engine,
}

impl Destination {
    fn sqlite() -> Destination {
        let dir = tempfile::tempdir().unwrap();
        Destination {
            engine: Engine::Sqlite {
                path: dir.path().join("etl.db"),
                _dir: dir,
            },
        }
    }

    async fn postgres(test: &str) -> Option<Destination> {
        if !services::service_available("PostgreSQL", services::POSTGRES_ADDR, test) {
            return None;
        }
        let destination = Destination {
            engine: Engine::Postgres {
                schema: services::unique_name("e2e"),
                port: 5432,
            },
        };
        let schema = destination.schema();
        destination.exec(&format!("CREATE SCHEMA {schema}")).await;
        Some(destination)
    }

    async fn mariadb(test: &str) -> Option<Destination> {
        if !services::service_available("MariaDB", services::MARIADB_ADDR, test) {
            return None;
        }
        let destination = Destination {
            engine: Engine::MariaDb {
                database: services::unique_name("e2e"),
            },
        };
        let schema = destination.schema();
        destination.exec(&format!("CREATE DATABASE {schema}")).await;
        Some(destination)
    }

    fn schema(&self) -> String {
        match &self.engine {
            Engine::Sqlite { .. } => String::new(),
            Engine::Postgres { schema, .. } => schema.clone(),
            Engine::MariaDb { database } => database.clone(),
        }
    }

    /// The name a task's `SqlTables` and script use for a table.
    fn table(&self, name: &str) -> String {
        match &self.engine {
            Engine::Sqlite { .. } => name.to_owned(),
            _ => format!("{}.{name}", self.schema()),
        }
    }

    /// The same table as the test's own SQL writes it.
    fn quoted(&self, name: &str) -> String {
        match &self.engine {
            Engine::Sqlite { .. } => format!("\"{name}\""),
            Engine::Postgres { schema, .. } => format!("{schema}.\"{name}\""),
            Engine::MariaDb { database } => format!("`{database}`.`{name}`"),
        }
    }

    fn connection_string(&self, name: &str) -> Value {
        let (factory, text) = match &self.engine {
            Engine::Sqlite { path, .. } => (
                "Microsoft.Data.Sqlite",
                format!("Data Source={}", path.display()),
            ),
            Engine::Postgres { port, .. } => (
                "Npgsql",
                format!("Host=127.0.0.1;Port={port};Database=test;Username=postgres"),
            ),
            Engine::MariaDb { .. } => (
                "MySqlConnector.MySqlConnectorFactory",
                services::MARIADB_CS.to_owned(),
            ),
        };
        json!({"Type": "Sql", "Name": name, "FactoryName": factory, "ConnectionString": text})
    }

    async fn exec(&self, sql: &str) {
        self.query(sql).await;
    }

    /// Runs `sql`; every value of every row as text (NULL as None).
    async fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match &self.engine {
            Engine::Sqlite { path, .. } => {
                let connection = rusqlite::Connection::open(path).unwrap();
                let mut statement = connection.prepare(sql).unwrap();
                let n = statement.column_count();
                let rows = statement
                    .query_map([], |row| {
                        Ok((0..n)
                            .map(|idx| match row.get_ref(idx).unwrap() {
                                rusqlite::types::ValueRef::Null => None,
                                rusqlite::types::ValueRef::Integer(it) => Some(it.to_string()),
                                rusqlite::types::ValueRef::Real(it) => Some(it.to_string()),
                                rusqlite::types::ValueRef::Text(it) => {
                                    Some(String::from_utf8_lossy(it).into_owned())
                                }
                                rusqlite::types::ValueRef::Blob(it) => Some(hex(it)),
                            })
                            .collect())
                    })
                    .unwrap();
                rows.map(Result::unwrap).collect()
            }
            Engine::Postgres { .. } => {
                let (client, connection) = tokio_postgres::connect(
                    "host=127.0.0.1 port=5432 user=postgres dbname=test",
                    tokio_postgres::NoTls,
                )
                .await
                .unwrap();
                tokio::spawn(connection);
                let messages = client.simple_query(sql).await.unwrap();
                messages
                    .into_iter()
                    .filter_map(|it| match it {
                        tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                            (0..row.len())
                                .map(|idx| row.get(idx).map(str::to_owned))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect()
            }
            Engine::MariaDb { .. } => {
                use mysql_async::prelude::Queryable;
                let opts = mysql_async::OptsBuilder::default()
                    .ip_or_hostname("127.0.0.1")
                    .tcp_port(3306)
                    .user(Some("root"))
                    .db_name(Some("test"));
                let mut connection = mysql_async::Conn::new(opts).await.unwrap();
                let rows: Vec<mysql_async::Row> = connection.query(sql).await.unwrap();
                let result = rows
                    .into_iter()
                    .map(|row| {
                        row.unwrap()
                            .into_iter()
                            .map(|value| match value {
                                mysql_async::Value::NULL => None,
                                mysql_async::Value::Bytes(it) => {
                                    Some(String::from_utf8(it.clone()).unwrap_or_else(|_| hex(&it)))
                                }
                                other => Some(other.as_sql(true).trim_matches('\'').to_owned()),
                            })
                            .collect()
                    })
                    .collect();
                connection.disconnect().await.unwrap();
                result
            }
        }
    }

    async fn count(&self, table: &str) -> usize {
        self.count_of(&self.quoted(table)).await
    }

    async fn drop_schema(&self) {
        match &self.engine {
            Engine::Sqlite { .. } => {}
            Engine::Postgres { schema, .. } => {
                self.exec(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await;
            }
            Engine::MariaDb { database } => {
                self.exec(&format!("DROP DATABASE IF EXISTS {database}"))
                    .await;
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|it| format!("{it:02x}")).collect()
}

/// The order tables in the engine's types: an order row, its lines (with a foreign key to the
/// order, so delete/insert order matters) and an insert-only audit table.
async fn create_order_tables(destination: &Destination) {
    let (orders, lines, audit) = (
        destination.quoted("Orders"),
        destination.quoted("OrderLines"),
        destination.quoted("Audit"),
    );
    let statements = match &destination.engine {
        Engine::Sqlite { .. } => vec![
            format!(
                "CREATE TABLE {orders} (\"Id\" TEXT PRIMARY KEY, \"Customer\" TEXT, \"Total\" NUMERIC, \"Placed\" TEXT, \"Paid\" INTEGER, \"Meta\" TEXT, \"Invoice\" BLOB)"
            ),
            format!(
                "CREATE TABLE {lines} (\"OrderId\" TEXT NOT NULL REFERENCES \"Orders\"(\"Id\"), \"Product\" TEXT, \"Qty\" INTEGER, \"Price\" NUMERIC)"
            ),
            format!("CREATE TABLE {audit} (\"DocId\" TEXT, \"Total\" NUMERIC)"),
        ],
        Engine::Postgres { .. } => vec![
            format!(
                "CREATE TABLE {orders} (\"Id\" varchar(50) PRIMARY KEY, \"Customer\" text, \"Total\" numeric(12,2), \"Placed\" timestamp, \"Paid\" boolean, \"Meta\" jsonb, \"Invoice\" bytea)"
            ),
            format!(
                "CREATE TABLE {lines} (\"OrderId\" varchar(50) NOT NULL REFERENCES {orders}(\"Id\"), \"Product\" text, \"Qty\" int, \"Price\" numeric(10,2))"
            ),
            format!("CREATE INDEX ON {lines} (\"OrderId\")"),
            format!("CREATE TABLE {audit} (\"DocId\" varchar(50), \"Total\" numeric(12,2))"),
        ],
        Engine::MariaDb { .. } => vec![
            format!(
                "CREATE TABLE {orders} (Id VARCHAR(50) PRIMARY KEY, Customer TEXT, Total DECIMAL(12,2), Placed DATETIME(6), Paid BOOLEAN, Meta LONGTEXT, Invoice LONGBLOB) ENGINE=InnoDB"
            ),
            format!(
                "CREATE TABLE {lines} (OrderId VARCHAR(50) NOT NULL, Product TEXT, Qty INT, Price DECIMAL(10,2), FOREIGN KEY (OrderId) REFERENCES {orders}(Id)) ENGINE=InnoDB"
            ),
            format!("CREATE TABLE {audit} (DocId VARCHAR(50), Total DECIMAL(12,2)) ENGINE=InnoDB"),
        ],
    };
    for statement in statements {
        destination.exec(&statement).await;
    }
}

fn order(customer: &str, lines: &[(&str, u32, f64)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(product, qty, price)| json!({"Product": product, "Qty": qty, "Price": price}))
        .collect();
    json!({
        "Customer": customer, "Lines": lines, "Placed": "2024-01-02T03:04:05.1234567Z",
        "Paid": true, "Tags": ["a", "b"], "@metadata": {"@collection": "Orders"},
    })
}

fn orders_task(destination: &Destination) -> Value {
    let (orders, lines, audit) = (
        destination.table("Orders"),
        destination.table("OrderLines"),
        destination.table("Audit"),
    );
    let script = format!(
        "var total = 0;
         for (var i = 0; i < this.Lines.length; i++) {{
             var line = this.Lines[i];
             total += line.Qty * line.Price;
             loadTo('{lines}', {{ Product: line.Product, Qty: line.Qty, Price: line.Price }});
         }}
         total = Math.round(total * 100) / 100;
         loadTo('{orders}', {{ Id: 'ignored: the source id wins', Customer: this.Customer, Total: total,
             Placed: this.Placed, Paid: this.Paid, Meta: {{ Tags: this.Tags }},
             Invoice: loadAttachment('invoice.pdf') }});
         loadTo('{audit}', {{ Total: total }});"
    );
    json!({
        "EtlType": "Sql", "Name": "orders-to-sql", "ConnectionStringName": "sql",
        "SqlTables": [
            {"TableName": orders, "DocumentIdColumn": "Id", "InsertOnlyMode": false},
            {"TableName": lines, "DocumentIdColumn": "OrderId", "InsertOnlyMode": false},
            {"TableName": audit, "DocumentIdColumn": "DocId", "InsertOnlyMode": true},
        ],
        "Transforms": [{"Name": "orders", "Collections": ["Orders"], "Script": script}],
    })
}

async fn put_connection_string(server: &Server, connection: Value) {
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        Some(connection),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn add_task(server: &Server, config: Value) -> u64 {
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(config),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["TaskId"].as_u64().unwrap()
}

async fn etl_stats(server: &Server) -> Value {
    send(
        "GET",
        &format!("{}/databases/src/etl/stats", server.url),
        None,
    )
    .await
    .1
}

/// Waits until the table holds `n` rows; on a timeout shows the ETL statistics.
async fn rows_become(server: &Server, destination: &Destination, table: &str, n: usize) {
    let arrived = common::live::wait_for(Duration::from_secs(30), || async {
        destination.count(table).await == n
    })
    .await;
    if !arrived {
        let have = destination.count(table).await;
        panic!(
            "{table} has {have} rows, expected {n}; ETL stats: {}",
            etl_stats(server).await
        );
    }
}

/// The whole life of the orders: fan-out into two tables, an insert-only table, an update
/// that replaces rows, a delete that removes them, an attachment in a binary column.
async fn orders_follow_the_documents(destination: &Destination) {
    create_order_tables(destination).await;
    let server = start().await;
    let src = database(&server, "src").await;
    put_connection_string(&server, destination.connection_string("sql")).await;
    for idx in 1..=20 {
        let lines = [("apple", idx, 0.5), ("pear", 2, 1.25), ("plum", 1, 19.99)];
        src.put(
            &format!("orders/{idx}-A"),
            &order(&format!("c{idx}"), &lines),
            None,
        )
        .await
        .unwrap();
    }
    src.put_attachment(
        "orders/3-A",
        "invoice.pdf",
        "application/pdf",
        bytes::Bytes::from_static(b"%PDF\x00\xff"),
    )
    .await
    .unwrap();
    add_task(&server, orders_task(destination)).await;
    rows_become(&server, destination, "Orders", 20).await;
    rows_become(&server, destination, "OrderLines", 60).await;
    rows_become(&server, destination, "Audit", 20).await;

    let orders = destination.quoted("Orders");
    let rows = destination
        .query(&format!(
            "SELECT {id}, {customer}, {total}, {placed}, {meta} FROM {orders} WHERE {id} = 'orders/3-A'",
            id = column(destination, "Id"),
            customer = column(destination, "Customer"),
            total = column(destination, "Total"),
            placed = column(destination, "Placed"),
            meta = column(destination, "Meta"),
        ))
        .await;
    let row = &rows[0];
    assert_eq!(row[0].as_deref(), Some("orders/3-A"), "the source id wins");
    assert_eq!(row[1].as_deref(), Some("c3"));
    // 3 × 0.5 + 2 × 1.25 + 19.99, exactly.
    assert_eq!(row[2].as_deref().unwrap().parse::<f64>().unwrap(), 23.99);
    let placed = row[3].as_deref().unwrap();
    assert!(
        placed.starts_with("2024-01-02") && placed.contains("03:04:05"),
        "{placed}"
    );
    let meta: Value = serde_json::from_str(row[4].as_deref().unwrap()).unwrap();
    assert_eq!(meta, json!({"Tags": ["a", "b"]}));
    let invoice = destination
        .query(&format!(
            "SELECT {invoice} FROM {orders} WHERE {id} = 'orders/3-A'",
            invoice = binary_column(destination, "Invoice"),
            id = column(destination, "Id"),
        ))
        .await;
    assert_eq!(
        invoice[0][0].as_deref(),
        Some(hex(b"%PDF\x00\xff").as_str())
    );
    let no_invoice = destination
        .query(&format!(
            "SELECT {invoice} FROM {orders} WHERE {id} = 'orders/4-A'",
            invoice = column(destination, "Invoice"),
            id = column(destination, "Id"),
        ))
        .await;
    assert_eq!(no_invoice[0][0], None, "a missing attachment is NULL");

    // An update replaces the order's rows; a delete removes them; the audit only grows.
    src.put("orders/1-A", &order("changed", &[("kiwi", 7, 2.0)]), None)
        .await
        .unwrap();
    src.delete("orders/2-A", None).await.unwrap();
    rows_become(&server, destination, "OrderLines", 55).await;
    rows_become(&server, destination, "Orders", 19).await;
    rows_become(&server, destination, "Audit", 21).await;
    let lines = destination
        .query(&format!(
            "SELECT {product}, {qty} FROM {table} WHERE {order_id} = 'orders/1-A'",
            product = column(destination, "Product"),
            qty = column(destination, "Qty"),
            table = destination.quoted("OrderLines"),
            order_id = column(destination, "OrderId"),
        ))
        .await;
    assert_eq!(
        lines,
        vec![vec![Some("kiwi".to_owned()), Some("7".to_owned())]]
    );
    let customer = destination
        .query(&format!(
            "SELECT {customer} FROM {orders} WHERE {id} = 'orders/1-A'",
            customer = column(destination, "Customer"),
            id = column(destination, "Id"),
        ))
        .await;
    assert_eq!(customer[0][0].as_deref(), Some("changed"));
    let stats = etl_stats(&server).await;
    let process = &stats["Results"][0]["Stats"][0]["Statistics"];
    assert_eq!(process["Status"], "Active", "{stats}");
    assert_eq!(process["Load"]["Errors"], 0, "{stats}");
    drop(server);
    destination.drop_schema().await;
}

/// A column as the engine's SQL names it (quoted where names are case-sensitive).
fn column(destination: &Destination, name: &str) -> String {
    match destination.engine {
        Engine::MariaDb { .. } => format!("`{name}`"),
        _ => format!("\"{name}\""),
    }
}

/// A binary column read back as lower-case hex.
fn binary_column(destination: &Destination, name: &str) -> String {
    match destination.engine {
        Engine::Sqlite { .. } => format!("\"{name}\""),
        Engine::Postgres { .. } => format!("encode(\"{name}\", 'hex')"),
        Engine::MariaDb { .. } => format!("LOWER(HEX(`{name}`))"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tables_follow_the_documents() {
    orders_follow_the_documents(&Destination::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tables_follow_the_documents() {
    let Some(destination) = Destination::postgres("postgres_tables_follow_the_documents").await
    else {
        return;
    };
    orders_follow_the_documents(&destination).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_tables_follow_the_documents() {
    let Some(destination) = Destination::mariadb("mariadb_tables_follow_the_documents").await
    else {
        return;
    };
    orders_follow_the_documents(&destination).await;
}

/// A TCP proxy in front of PostgreSQL that the test can cut (refusing new connections and
/// breaking open ones) and restore on the same port.
struct Proxy {
    port: u16,
    target: String,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            target: target.to_owned(),
            accept: None,
            connections: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        let connections = self.connections.clone();
        self.accept = Some(tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(connection);
            }
        }));
    }

    fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn task_connection_status(server: &Server, task_id: u64) -> Value {
    let (_, task) = send(
        "GET",
        &format!(
            "{}/databases/src/task?key={task_id}&type=SqlEtl",
            server.url
        ),
        None,
    )
    .await;
    task["TaskConnectionStatus"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_puts_the_task_in_reconnect_and_nothing_is_lost() {
    let test = "postgres_outage_puts_the_task_in_reconnect_and_nothing_is_lost";
    let Some(mut destination) = Destination::postgres(test).await else {
        return;
    };
    let mut proxy = Proxy::start(services::POSTGRES_ADDR).await;
    if let Engine::Postgres { port, .. } = &mut destination.engine {
        *port = proxy.port;
    }
    create_order_tables(&destination).await;
    let server = start().await;
    let src = database(&server, "src").await;
    put_connection_string(&server, destination.connection_string("sql")).await;
    let task_id = add_task(&server, orders_task(&destination)).await;
    put_orders(&src, 1..=10).await;
    rows_become(&server, &destination, "Orders", 10).await;

    proxy.cut();
    put_orders(&src, 11..=30).await;
    eventually("the task to report Reconnect", || async {
        task_connection_status(&server, task_id).await == "Reconnect"
    })
    .await;
    assert_eq!(destination.count("Orders").await, 10);

    proxy.restore().await;
    rows_become(&server, &destination, "Orders", 30).await;
    rows_become(&server, &destination, "OrderLines", 90).await;
    eventually("the task to report Active", || async {
        task_connection_status(&server, task_id).await == "Active"
    })
    .await;
    // Delete-then-insert: retried batches left no duplicates.
    let distinct = destination
        .query(&format!(
            "SELECT COUNT(DISTINCT \"OrderId\"), COUNT(*) FROM {}",
            destination.quoted("OrderLines")
        ))
        .await;
    assert_eq!(
        distinct[0],
        vec![Some("30".to_owned()), Some("90".to_owned())]
    );
    drop(server);
    destination.drop_schema().await;
}

async fn put_orders(src: &Client, ids: std::ops::RangeInclusive<u32>) {
    for idx in ids {
        let lines = [("apple", idx, 0.5), ("pear", 2, 1.25), ("plum", 1, 19.99)];
        src.put(
            &format!("orders/{idx}-A"),
            &order(&format!("c{idx}"), &lines),
            None,
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_error_is_reported_with_table_and_column_and_retried() {
    let test = "a_statement_error_is_reported_with_table_and_column_and_retried";
    let Some(destination) = Destination::postgres(test).await else {
        return;
    };
    create_order_tables(&destination).await;
    let orders = destination.quoted("Orders");
    destination
        .exec(&format!("ALTER TABLE {orders} DROP COLUMN \"Customer\""))
        .await;
    let server = start().await;
    let src = database(&server, "src").await;
    put_connection_string(&server, destination.connection_string("sql")).await;
    let task_id = add_task(&server, orders_task(&destination)).await;
    put_orders(&src, 1..=5).await;
    let load_error = || async {
        let stats = etl_stats(&server).await;
        let error = &stats["Results"][0]["Stats"][0]["Statistics"]["LastLoadError"];
        error.as_str().unwrap_or_default().to_owned()
    };
    eventually("the load error to be reported", || async {
        !load_error().await.is_empty()
    })
    .await;
    let last_error = load_error().await;
    assert!(last_error.contains("Orders"), "{last_error}");
    assert!(last_error.contains("Customer"), "{last_error}");
    assert_eq!(task_connection_status(&server, task_id).await, "Reconnect");
    // A missing column is the destination's schema, not a row: nothing is skipped.
    let stats = etl_stats(&server).await;
    let statistics = &stats["Results"][0]["Stats"][0]["Statistics"];
    assert_eq!(
        statistics["LastLoadErrorClass"], "Configuration",
        "{statistics:#}"
    );
    assert_eq!(statistics["Load"]["SkippedItems"], 0, "{statistics:#}");
    // Nothing was half-applied: the lines went in the same transaction as the orders.
    assert_eq!(destination.count("OrderLines").await, 0);

    destination
        .exec(&format!(
            "ALTER TABLE {orders} ADD COLUMN \"Customer\" text"
        ))
        .await;
    rows_become(&server, &destination, "Orders", 5).await;
    rows_become(&server, &destination, "OrderLines", 15).await;
    drop(server);
    destination.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sql_configurations_are_refused_and_passwords_stay_secret() {
    let server = start().await;
    database(&server, "src").await;
    let url = format!("{}/databases/src/admin/connection-strings", server.url);
    let refused = [
        (
            json!({"Type": "Sql", "Name": "mssql", "FactoryName": "System.Data.SqlClient",
                   "ConnectionString": "Server=x;Database=y"}),
            "not supported yet",
        ),
        (
            json!({"Type": "Sql", "Name": "oracle", "FactoryName": "Oracle.ManagedDataAccess.Client",
                   "ConnectionString": "Data Source=x"}),
            "not supported yet",
        ),
        (
            json!({"Type": "Sql", "Name": "bad", "FactoryName": "Npgsql",
                   "ConnectionString": "Host=x;Password=hunter2;Bogus=1"}),
            "unknown key `Bogus`",
        ),
    ];
    for (connection, expected) in refused {
        let (status, body) = send("PUT", &url, Some(connection)).await;
        assert_eq!(status, 400, "{body}");
        let message = body["Message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
        assert!(!body.to_string().contains("hunter2"), "{body}");
    }
    put_connection_string(
        &server,
        json!({"Type": "Sql", "Name": "pg", "FactoryName": "Npgsql",
               "ConnectionString": "Host=127.0.0.1;Database=test;Username=u;Password='s3cr;et'"}),
    )
    .await;
    let (_, listed) = send("GET", &url, None).await;
    let shown = listed["SqlConnectionStrings"]["pg"]["ConnectionString"]
        .as_str()
        .unwrap();
    assert_eq!(
        shown,
        "Host=127.0.0.1;Database=test;Username=u;Password=*****"
    );

    let base = json!({
        "EtlType": "Sql", "Name": "t", "ConnectionStringName": "pg",
        "SqlTables": [{"TableName": "Orders", "DocumentIdColumn": "Id"}],
        "Transforms": [{"Name": "s", "Collections": ["Orders"], "Script": "loadToOrders({A: 1});"}],
    });
    let with = |path: &str, value: Value| {
        let mut config = base.clone();
        let mut target = &mut config;
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            target = match part.parse::<usize>() {
                Ok(idx) => &mut target[idx],
                Err(_) => &mut target[*part],
            };
        }
        target[parts[parts.len() - 1]] = value;
        config
    };
    let cases = [
        (
            with(
                "Transforms/0/Script",
                json!("loadToOrders({A: 1}); loadToLines({B: 2});"),
            ),
            "loads to `Lines`, which is not one of the task's `SqlTables`",
        ),
        (
            with("SqlTables", json!([])),
            "`SqlTables` must list at least one table",
        ),
        (
            with(
                "SqlTables",
                json!([{"TableName": "Orders", "DocumentIdColumn": "Id"},
                       {"TableName": "orders", "DocumentIdColumn": "Id"}]),
            ),
            "listed more than once",
        ),
        (
            with(
                "SqlTables",
                json!([{"TableName": "Orders", "DocumentIdColumn": ""}]),
            ),
            "empty `DocumentIdColumn`",
        ),
        (
            with("Transforms/0/Script", json!("")),
            "does not support an empty script",
        ),
        (
            with(
                "Transforms/0/Script",
                json!(
                    "loadToOrders({A: 1}); function deleteDocumentsOfOrdersBehavior(id) { return false; }"
                ),
            ),
            "delete behaviour functions",
        ),
        (with("ConnectionStringName", json!("nope")), "`nope`"),
        // Issue 18 finding 1: an unquoted name reaches SQL as written.
        (
            {
                let mut config = with(
                    "SqlTables",
                    json!([{"TableName": "Orders LIMIT 1; DROP TABLE victim; --",
                            "DocumentIdColumn": "Id"}]),
                );
                config["QuoteTables"] = json!(false);
                config
            },
            "is not a plain identifier",
        ),
    ];
    for (config, expected) in cases {
        let (status, body) = send(
            "PUT",
            &format!("{}/databases/src/admin/etl", server.url),
            Some(config),
        )
        .await;
        assert_eq!(status, 400, "{expected}: {body}");
        let message = body["Message"].as_str().unwrap();
        assert!(message.contains(expected), "{expected}: {message}");
    }
    add_task(&server, base).await;
}

/// The order tables, a server whose `src` holds `orders/1-A`, the URL of its SQL test
/// endpoint, and the orders task (disabled: only the endpoint runs it).
async fn test_endpoint_setup(destination: &Destination) -> (Server, String, Value) {
    create_order_tables(destination).await;
    let server = start().await;
    let src = database(&server, "src").await;
    put_connection_string(&server, destination.connection_string("sql")).await;
    src.put("orders/1-A", &order("ann", &[("apple", 2, 0.5)]), None)
        .await
        .unwrap();
    let url = format!("{}/databases/src/admin/etl/sql/test", server.url);
    let mut config = orders_task(destination);
    config["Disabled"] = json!(true);
    (server, url, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_test_endpoint_shows_and_rolls_back_statements() {
    let test = "the_sql_test_endpoint_shows_and_rolls_back_statements";
    let Some(destination) = Destination::postgres(test).await else {
        return;
    };
    let (server, url, config) = test_endpoint_setup(&destination).await;
    let request = |rolled_back: bool, config: &Value| {
        json!({"DocumentId": "orders/1-A", "IsDelete": false,
               "PerformRolledBackTransaction": rolled_back, "Configuration": config})
    };
    let (status, simulated) = send("POST", &url, Some(request(false, &config))).await;
    assert_eq!(status, 200, "{simulated}");
    let summary = simulated["Summary"].as_array().unwrap();
    let tables: Vec<&str> = summary
        .iter()
        .map(|it| it["TableName"].as_str().unwrap())
        .collect();
    let (orders, lines) = (destination.table("Orders"), destination.table("OrderLines"));
    assert!(
        tables.contains(&orders.as_str()) && tables.contains(&lines.as_str()),
        "{simulated}"
    );
    let text = simulated.to_string();
    assert!(
        text.contains("COPY") && text.contains("= ANY($1)"),
        "{text}"
    );
    assert!(text.contains("'orders/1-A'"), "{text}");

    let (status, rolled_back) = send("POST", &url, Some(request(true, &config))).await;
    assert_eq!(status, 200, "{rolled_back}");
    assert_eq!(rolled_back["LoadErrors"], json!([]), "{rolled_back}");
    assert_eq!(destination.count("Orders").await, 0, "rolled back");

    destination
        .exec(&format!("DROP TABLE {}", destination.quoted("Audit")))
        .await;
    let (status, failed) = send("POST", &url, Some(request(true, &config))).await;
    assert_eq!(status, 200, "{failed}");
    let errors = failed["LoadErrors"].to_string();
    assert!(errors.contains("Audit"), "{errors}");

    let connection_url = format!(
        "{}/databases/src/admin/etl/sql/test-connection?factoryName=Npgsql",
        server.url
    );
    let reachable = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .post(&connection_url)
        .body(services::POSTGRES_CS)
        .send()
        .await
        .unwrap();
    let answer: Value = reachable.json().await.unwrap();
    assert_eq!(answer["Success"], true, "{answer}");
    let refused = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .post(&connection_url)
        .body("Host=127.0.0.1;Port=1;Database=test;Username=postgres;Password=hunter2")
        .send()
        .await
        .unwrap();
    let answer: Value = refused.json().await.unwrap();
    assert_eq!(answer["Success"], false, "{answer}");
    assert!(!answer.to_string().contains("hunter2"), "{answer}");
    drop(server);
    destination.drop_schema().await;
}

/// MariaDB: the rows go in with `LOAD DATA LOCAL INFILE` (the machine's server allows it),
/// and the test endpoint shows it; `AllowLoadLocalInfile=false` makes them `INSERT`s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_test_endpoint_shows_load_data_on_mariadb() {
    let test = "the_sql_test_endpoint_shows_load_data_on_mariadb";
    let Some(destination) = Destination::mariadb(test).await else {
        return;
    };
    let (server, url, config) = test_endpoint_setup(&destination).await;
    let mut without_load_data = destination.connection_string("sql");
    without_load_data["ConnectionString"] = json!(format!(
        "{};AllowLoadLocalInfile=false",
        without_load_data["ConnectionString"].as_str().unwrap()
    ));
    for (rolled_back, connection, expected) in [
        (false, None, "LOAD DATA LOCAL INFILE"),
        (true, None, "LOAD DATA LOCAL INFILE"),
        (false, Some(&without_load_data), "INSERT INTO"),
        (true, Some(&without_load_data), "INSERT INTO"),
    ] {
        let mut request = json!({"DocumentId": "orders/1-A", "IsDelete": false,
                                 "PerformRolledBackTransaction": rolled_back,
                                 "Configuration": config});
        if let Some(connection) = connection {
            request["Connection"] = connection.clone();
        }
        let (status, answer) = send("POST", &url, Some(request)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["LoadErrors"], json!([]), "{answer}");
        let commands: Vec<&str> = answer["Summary"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|table| table["Commands"].as_array().unwrap())
            .map(|command| command["CommandText"].as_str().unwrap())
            .filter(|text| !text.starts_with("DELETE"))
            .collect();
        // Orders, OrderLines and Audit.
        assert_eq!(commands.len(), 3, "{answer}");
        assert!(
            commands.iter().all(|it| it.starts_with(expected)),
            "{expected}: {answer}"
        );
        assert_eq!(destination.count("Orders").await, 0, "rolled back");
    }
    drop(server);
    destination.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_sql_tasks_write_nothing_until_enabled() {
    let destination = Destination::sqlite();
    create_order_tables(&destination).await;
    let server = start().await;
    let src = database(&server, "src").await;
    put_connection_string(&server, destination.connection_string("sql")).await;
    let mut config = orders_task(&destination);
    config["Disabled"] = json!(true);
    let task_id = add_task(&server, config).await;
    put_orders(&src, 1..=3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(destination.count("Orders").await, 0);
    set_task_disabled(&server, "src", task_id, "SqlEtl", false).await;
    eventually_within("the orders", Duration::from_secs(30), || async {
        destination.count("Orders").await == 3
    })
    .await;
}

/// PostgreSQL only: a statement-level trigger logs every DELETE statement run on the order
/// tables, also those that delete nothing. Returns how many ran so far.
async fn delete_statements(destination: &Destination) -> Option<usize> {
    let Engine::Postgres { schema, .. } = &destination.engine else {
        return None;
    };
    Some(destination.count_of(&format!("{schema}.delete_log")).await)
}

impl Destination {
    async fn count_of(&self, quoted_table: &str) -> usize {
        let rows = self
            .query(&format!("SELECT COUNT(*) FROM {quoted_table}"))
            .await;
        rows[0][0].as_deref().unwrap().parse().unwrap()
    }

    async fn log_delete_statements(&self) {
        let Engine::Postgres { schema, .. } = &self.engine else {
            return;
        };
        self.exec(&format!("CREATE TABLE {schema}.delete_log (tbl text)"))
            .await;
        self.exec(&format!(
            "CREATE FUNCTION {schema}.log_delete() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO {schema}.delete_log VALUES (TG_TABLE_NAME); RETURN NULL; END $$"
        ))
        .await;
        for table in ["Orders", "OrderLines"] {
            self.exec(&format!(
                "CREATE TRIGGER log_delete AFTER DELETE ON {} FOR EACH STATEMENT EXECUTE FUNCTION {schema}.log_delete()",
                self.quoted(table)
            ))
            .await;
        }
    }
}

/// Orders created after the task's last batch need no delete while the process owns the
/// tables (it saw them empty); updates, deletes and re-created documents still get theirs,
/// and a reset, which gives up the ownership, sends everything again without duplicates.
async fn deletes_are_left_out_only_where_nothing_can_be_deleted(destination: &Destination) {
    create_order_tables(destination).await;
    destination.log_delete_statements().await;
    let server = start().await;
    let src = database(&server, "src").await;
    put_connection_string(&server, destination.connection_string("sql")).await;
    put_orders(&src, 1..=10).await;
    let task_id = add_task(&server, orders_task(destination)).await;
    rows_become(&server, destination, "OrderLines", 30).await;
    put_orders(&src, 11..=12).await;
    rows_become(&server, destination, "OrderLines", 36).await;
    assert_eq!(delete_statements(destination).await.unwrap_or(0), 0);

    src.put("orders/1-A", &order("changed", &[("kiwi", 7, 2.0)]), None)
        .await
        .unwrap();
    rows_become(&server, destination, "OrderLines", 34).await;
    assert_ne!(
        delete_statements(destination).await,
        Some(0),
        "an update deletes"
    );

    // Deleted and created again in one batch: the tombstone's delete still runs.
    set_task_disabled(&server, "src", task_id, "SqlEtl", true).await;
    src.delete("orders/2-A", None).await.unwrap();
    src.put("orders/2-A", &order("again", &[("fig", 1, 1.0)]), None)
        .await
        .unwrap();
    set_task_disabled(&server, "src", task_id, "SqlEtl", false).await;
    rows_become(&server, destination, "OrderLines", 32).await;
    rows_become(&server, destination, "Audit", 14).await;

    // A reset sends all 12 orders again (the insert-only audit grows by 12, in the same
    // transactions); the other tables hold each order's rows once.
    reset_etl(&server, "src", "orders-to-sql", "orders").await;
    rows_become(&server, destination, "Audit", 26).await;
    assert_eq!(destination.count("Orders").await, 12);
    assert_eq!(destination.count("OrderLines").await, 32);
    drop(server);
    destination.drop_schema().await;
}

/// Rows the tables already hold for a document (left by an earlier system or task) go before
/// its first load, as with RavenDB: the process does not own tables it did not see empty.
async fn rows_already_in_the_tables_are_replaced(destination: &Destination) {
    create_order_tables(destination).await;
    let (orders, lines) = (
        destination.quoted("Orders"),
        destination.quoted("OrderLines"),
    );
    let (id, order_id) = (column(destination, "Id"), column(destination, "OrderId"));
    destination
        .exec(&format!(
            "INSERT INTO {orders} ({id}) VALUES ('orders/1-A')"
        ))
        .await;
    destination
        .exec(&format!(
            "INSERT INTO {lines} ({order_id}) VALUES ('orders/1-A'), ('orders/1-A')"
        ))
        .await;
    let server = start().await;
    let src = database(&server, "src").await;
    put_connection_string(&server, destination.connection_string("sql")).await;
    put_orders(&src, 1..=3).await;
    add_task(&server, orders_task(destination)).await;
    rows_become(&server, destination, "Audit", 3).await;
    assert_eq!(destination.count("Orders").await, 3);
    assert_eq!(destination.count("OrderLines").await, 9);
    drop(server);
    destination.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_deletes_are_left_out_only_where_nothing_can_be_deleted() {
    let destination = Destination::sqlite();
    deletes_are_left_out_only_where_nothing_can_be_deleted(&destination).await;
    let destination = Destination::sqlite();
    rows_already_in_the_tables_are_replaced(&destination).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deletes_are_left_out_only_where_nothing_can_be_deleted() {
    let test = "postgres_deletes_are_left_out_only_where_nothing_can_be_deleted";
    let Some(destination) = Destination::postgres(test).await else {
        return;
    };
    deletes_are_left_out_only_where_nothing_can_be_deleted(&destination).await;
    let Some(destination) = Destination::postgres(test).await else {
        return;
    };
    rows_already_in_the_tables_are_replaced(&destination).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_deletes_are_left_out_only_where_nothing_can_be_deleted() {
    let test = "mariadb_deletes_are_left_out_only_where_nothing_can_be_deleted";
    let Some(destination) = Destination::mariadb(test).await else {
        return;
    };
    deletes_are_left_out_only_where_nothing_can_be_deleted(&destination).await;
    let Some(destination) = Destination::mariadb(test).await else {
        return;
    };
    rows_already_in_the_tables_are_replaced(&destination).await;
}

/// Rows the database refuses: each document is left out and reported with its id, the
/// others of the same batch and every later one arrive (issue 14, "Poison items"). `bad`
/// lists the refused documents as (id, name, age): a name longer than the column, an age the
/// CHECK constraint refuses, and on PostgreSQL a name containing U+0000.
async fn refused_rows_are_skipped_and_later_documents_arrive(
    destination: &Destination,
    bad: &[(&str, &str, i64)],
) {
    let people = destination.quoted("People");
    let (id, name, age) = (
        column(destination, "Id"),
        column(destination, "Name"),
        column(destination, "Age"),
    );
    destination
        .exec(&format!(
            "CREATE TABLE {people} ({id} varchar(200) PRIMARY KEY, {name} varchar(5), {age} integer CHECK ({age} >= 0))"
        ))
        .await;
    let server = start().await;
    let src = database(&server, "src").await;
    put_connection_string(&server, destination.connection_string("sql")).await;
    let table = destination.table("People");
    let task_id = add_task(
        &server,
        json!({
            "EtlType": "Sql", "Name": "people-to-sql", "ConnectionStringName": "sql",
            "SqlTables": [{"TableName": table, "DocumentIdColumn": "Id", "InsertOnlyMode": false}],
            "Transforms": [{"Name": "people", "Collections": ["Users"],
                            "Script": format!("loadTo('{table}', {{Name: this.Name, Age: this.Age}});")}],
        }),
    )
    .await;
    set_task_disabled(&server, "src", task_id, "SqlEtl", true).await;
    let person = |name: &str, age: i64| json!({"Name": name, "Age": age, "@metadata": {"@collection": "Users"}});
    // One batch: good, bad, good, bad, ...
    src.put("users/good-1", &person("Ann", 30), None)
        .await
        .unwrap();
    for (id, name, age) in bad {
        src.put(id, &person(name, *age), None).await.unwrap();
    }
    src.put("users/good-2", &person("Bob", 40), None)
        .await
        .unwrap();
    set_task_disabled(&server, "src", task_id, "SqlEtl", false).await;
    rows_become(&server, destination, "People", 2).await;
    src.put("users/good-3", &person("Cy", 50), None)
        .await
        .unwrap();
    rows_become(&server, destination, "People", 3).await;
    let stats = etl_stats(&server).await;
    let statistics = &stats["Results"][0]["Stats"][0]["Statistics"];
    let skipped: Vec<&str> = statistics["LastSkippedItems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|it| it["DocumentId"].as_str())
        .collect();
    for (id, _, _) in bad {
        assert!(skipped.contains(id), "{id} not reported: {statistics:#}");
    }
    assert_eq!(
        statistics["Load"]["SkippedItems"],
        bad.len(),
        "{statistics:#}"
    );
    assert_eq!(task_connection_status(&server, task_id).await, "Active");
    drop(server);
    destination.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refused_rows_are_skipped_and_later_documents_arrive() {
    let test = "postgres_refused_rows_are_skipped_and_later_documents_arrive";
    let Some(destination) = Destination::postgres(test).await else {
        return;
    };
    let bad = [
        ("users/too-long", "Much too long", 1),
        ("users/negative", "Neg", -1),
        ("users/nul", "a\u{0}b", 2),
    ];
    refused_rows_are_skipped_and_later_documents_arrive(&destination, &bad).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_refused_rows_are_skipped_and_later_documents_arrive() {
    let test = "mariadb_refused_rows_are_skipped_and_later_documents_arrive";
    let Some(destination) = Destination::mariadb(test).await else {
        return;
    };
    let bad = [
        ("users/too-long", "Much too long", 1),
        ("users/negative", "Neg", -1),
    ];
    refused_rows_are_skipped_and_later_documents_arrive(&destination, &bad).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refused_rows_are_skipped_and_later_documents_arrive() {
    // SQLite does not enforce varchar lengths: only the CHECK constraint refuses a row.
    let destination = Destination::sqlite();
    refused_rows_are_skipped_and_later_documents_arrive(
        &destination,
        &[("users/negative", "Neg", -1)],
    )
    .await;
}
