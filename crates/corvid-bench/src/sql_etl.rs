//! `corvid-bench sql-etl --engine postgres|mariadb`: SQL ETL from a `corvid serve` into
//! PostgreSQL or MariaDB, measured end to end, against two baselines measured in the same run
//! on the same tables:
//!
//! - (a) the engine's fastest bulk path driven from this process with the identical rows:
//!   PostgreSQL `COPY … FROM STDIN` (text format, one transaction); MariaDB
//!   `LOAD DATA LOCAL INFILE` when `@@local_infile` allows it, and multi-row prepared
//!   `INSERT`s of 1,000 rows (both in one transaction; the faster one is the baseline);
//! - (b) RavenDB's SQL ETL algorithm driven from this process: per batch of documents, one
//!   transaction with `DELETE … WHERE id IN (p1..pN)` (1,000 parameters a statement) for each
//!   table, then one prepared single-row `INSERT` per row, each its own round trip.
//!
//! The rows are `Orders` (one per document) and `OrderLines` (one per line); the script's
//! values are recomputed here exactly as the script computes them (the same IEEE doubles,
//! printed the way JavaScript prints them), and after every phase the tables are checked for
//! the exact row counts, for sums known in advance and for a fingerprint of every row, which
//! must be equal across phases.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::{BufMut, Bytes, BytesMut};
use corvid_client::{ClientOptions, create_database};
use futures_util::{SinkExt as _, StreamExt as _};
use mysql_async::prelude::Queryable as _;
use serde_json::{Value, json};

use crate::{
    BatchTimings, bulk_insert, busy_cpu_seconds, busy_since, memory_mib, post_json,
    spawn_corvid_with,
};

/// Corvid's default `max_batch_items`, used for baseline (b) when `/etl/performance` does
/// not tell.
const DEFAULT_ETL_BATCH: usize = 8192;
/// Rows per multi-row `INSERT` (MariaDB bulk baseline), as Corvid's MySQL writer sends.
const MULTI_ROW_INSERT: usize = 1000;
/// Parameters per `DELETE … IN (…)` in RavenDB's algorithm.
const DELETE_CHUNK: usize = 1000;
/// COPY and LOAD DATA data is sent in chunks of about this size.
const CHUNK_BYTES: usize = 64 * 1024;
/// The database created at the Corvid.
const DATABASE: &str = "orders";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Engine {
    Postgres,
    Mariadb,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SqlEtlArgs {
    /// The destination engine.
    #[arg(long, value_enum)]
    engine: Engine,
    /// Number of `Orders` documents.
    #[arg(long, default_value_t = 100_000)]
    orders: usize,
    /// Lines per order (rows in `OrderLines` per document).
    #[arg(long, default_value_t = 3)]
    lines: usize,
    /// The engine's host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The engine's port (default: 5432 for PostgreSQL, 3306 for MariaDB).
    #[arg(long)]
    port: Option<u16>,
    /// The user, without a password (default: postgres for PostgreSQL, root for MariaDB).
    #[arg(long)]
    user: Option<String>,
    /// The database to connect to; the benchmark's tables go into a schema (PostgreSQL) or
    /// database (MariaDB) of their own, dropped at the end.
    #[arg(long, default_value = "test")]
    database: String,
    /// Skip baseline (b), RavenDB's row-by-row algorithm (the slow part of a run).
    #[arg(long)]
    skip_row_by_row: bool,
    /// Print Corvid's timings of each batch, not only their sums.
    #[arg(long)]
    per_batch: bool,
    /// Rounds of Corvid's ETL and the bulk path, each on emptied tables, by a new task; the
    /// ratio reported is the median of the rounds' (one measurement on this shared machine
    /// varies by ±25%).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The `corvid` binary to start (default: next to this executable).
    #[arg(long)]
    corvid_bin: Option<PathBuf>,
    /// `key=value;…` appended to Corvid's connection string, e.g.
    /// `AllowLoadLocalInfile=false` to measure MariaDB's multi-row `INSERT` path.
    #[arg(long)]
    connection_options: Option<String>,
    /// An argument for `corvid serve`, e.g. `--server-arg=--memory-budget-mib=128`;
    /// repeatable.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
}

impl SqlEtlArgs {
    fn port(&self) -> u16 {
        self.port.unwrap_or(match self.engine {
            Engine::Postgres => 5432,
            Engine::Mariadb => 3306,
        })
    }

    fn user(&self) -> String {
        self.user.clone().unwrap_or_else(|| {
            match self.engine {
                Engine::Postgres => "postgres",
                Engine::Mariadb => "root",
            }
            .to_owned()
        })
    }

    /// The connection string Corvid gets, naming the same server this process connects to.
    fn corvid_connection_string(&self) -> Value {
        let (host, port, user, db) = (&self.host, self.port(), self.user(), &self.database);
        let (factory, mut text) = match self.engine {
            Engine::Postgres => (
                "Npgsql",
                format!("Host={host};Port={port};Database={db};Username={user}"),
            ),
            Engine::Mariadb => (
                "MySqlConnector.MySqlConnectorFactory",
                format!("Server={host};Port={port};Database={db};User ID={user}"),
            ),
        };
        if let Some(options) = &self.connection_options {
            text.push(';');
            text.push_str(options);
        }
        json!({"Type": "Sql", "Name": "sql", "FactoryName": factory, "ConnectionString": text})
    }
}

// ---------------------------------------------------------------------------------------------
// The data set

const CITIES: [(&str, &str); 12] = [
    ("Rotterdam", "Netherlands"),
    ("Lyon", "France"),
    ("Graz", "Austria"),
    ("Porto", "Portugal"),
    ("Bergen", "Norway"),
    ("Gdansk", "Poland"),
    ("Sevilla", "Spain"),
    ("Turku", "Finland"),
    ("Aarhus", "Denmark"),
    ("Bremen", "Germany"),
    ("Cork", "Ireland"),
    ("Brno", "Czechia"),
];
const DISCOUNTS: [f64; 5] = [0.0, 0.05, 0.1, 0.15, 0.25];
/// 2020-01-01 in days since 1970-01-01.
const FIRST_DAY: i64 = 18_262;

struct Line {
    product: String,
    quantity: i64,
    price_cents: i64,
    discount: f64,
}

impl Line {
    fn price(&self) -> f64 {
        self.price_cents as f64 / 100.0
    }
}

/// One order; everything derived from its index.
pub(crate) struct Order {
    id: String,
    company: String,
    /// Seconds since 2020-01-01T00:00:00, and milliseconds.
    seconds: i64,
    millis: i64,
    freight_cents: i64,
    city: &'static str,
    country: &'static str,
    idx: usize,
    lines: Vec<Line>,
}

impl Order {
    pub(crate) fn new(idx: usize, n_lines: usize) -> Order {
        let (city, country) = CITIES[idx % CITIES.len()];
        let i = idx as i64;
        Order {
            id: format!("orders/{idx}-A"),
            company: format!("companies/{}-A", idx % 91 + 1),
            seconds: i * 317 % (6 * 365 * 86_400),
            millis: i * 7 % 1000,
            freight_cents: i * 7919 % 50_000,
            city,
            country,
            idx,
            lines: (0..n_lines)
                .map(|j| {
                    let j = j as i64;
                    Line {
                        product: format!("products/{}-A", (i * 31 + j * 17) % 77 + 1),
                        quantity: (i * 7 + j * 3) % 20 + 1,
                        price_cents: (i * 13 + j * 101) % 9_000 + 100,
                        discount: DISCOUNTS[((i + j) % 5) as usize],
                    }
                })
                .collect(),
        }
    }

    fn freight(&self) -> f64 {
        self.freight_cents as f64 / 100.0
    }

    /// `2020-03-05T10:20:30.1230000`: RavenDB's date-time format.
    fn ordered_at_iso(&self) -> String {
        let (date, time) = civil(FIRST_DAY, self.seconds);
        format!("{date}T{time}.{:03}0000", self.millis)
    }

    /// `2020-03-05 10:20:30.123000`: what Corvid's MySQL writer binds for the ISO text.
    fn ordered_at_mysql(&self) -> String {
        let (date, time) = civil(FIRST_DAY, self.seconds);
        format!("{date} {time}.{:03}000", self.millis)
    }

    pub(crate) fn document(&self) -> Value {
        let idx = self.idx;
        let (required_date, required_time) = civil(FIRST_DAY + 28, self.seconds);
        json!({
            "Company": self.company,
            "Employee": format!("employees/{}-A", idx % 9 + 1),
            "OrderedAt": self.ordered_at_iso(),
            "RequireAt": format!("{required_date}T{required_time}.0000000"),
            "ShippedAt": null,
            "ShipVia": format!("shippers/{}-A", idx % 3 + 1),
            "Freight": self.freight(),
            "ShipTo": {
                "Line1": format!("{} Harbour Street", idx % 500 + 1),
                "City": self.city,
                "PostalCode": format!("{:05}", idx * 37 % 99_999),
                "Country": self.country,
            },
            "Lines": self.lines.iter().map(|line| json!({
                "Product": line.product,
                "Quantity": line.quantity,
                "PricePerUnit": line.price(),
                "Discount": line.discount,
            })).collect::<Vec<_>>(),
            "@metadata": {"@collection": "Orders"},
        })
    }

    /// The script's `total` (see [`script`]): the same doubles in the same order, rounded
    /// with `Math.round(total * 100) / 100`; returned as the integer before the division.
    fn total_cents(&self) -> i64 {
        let mut total = 0.0;
        for line in &self.lines {
            total += line.quantity as f64 * line.price() * (1.0 - line.discount);
        }
        // `Math.round` rounds halves up; for positive numbers that is `f64::round`.
        (total * 100.0).round() as i64
    }
}

/// Date and time of `seconds` after the start of day `first_day` (days since 1970-01-01).
fn civil(first_day: i64, seconds: i64) -> (String, String) {
    let days = first_day + seconds.div_euclid(86_400);
    let time = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", time / 3600, time / 60 % 60, time % 60),
    )
}

/// A double as JavaScript's `JSON.stringify` prints it (the shortest text that reads back
/// as the same double; Rust's `Display` agrees for every value between 1e-6 and 1e21).
fn js_number(value: f64) -> String {
    format!("{value}")
}

fn decimal_text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The transformation script.
pub(crate) fn script(schema: &str) -> String {
    format!(
        "var total = 0;
for (var i = 0; i < this.Lines.length; i++) {{
    var line = this.Lines[i];
    total += line.Quantity * line.PricePerUnit * (1 - line.Discount);
    loadTo('{schema}.OrderLines', {{ Product: line.Product, Quantity: line.Quantity,
        PricePerUnit: line.PricePerUnit, Discount: line.Discount }});
}}
loadTo('{schema}.Orders', {{ Company: this.Company, OrderedAt: this.OrderedAt,
    Freight: this.Freight, City: this.ShipTo.City, Total: Math.round(total * 100) / 100 }});"
    )
}

/// An `Orders` row as the script produces it and the engine receives it.
struct OrderRow {
    id: String,
    company: String,
    ordered_at: String,
    freight: String,
    city: &'static str,
    total: String,
}

/// An `OrderLines` row.
struct LineRow {
    order_id: String,
    product: String,
    quantity: i64,
    price: String,
    discount: String,
}

struct Rows {
    orders: Vec<OrderRow>,
    /// Grouped by order, in order: order `i`'s lines are `lines[i * n .. (i + 1) * n]`.
    lines: Vec<LineRow>,
    lines_per_order: usize,
}

impl Rows {
    fn new(orders: &[Order], engine: Engine) -> Rows {
        let mut rows = Rows {
            orders: Vec::with_capacity(orders.len()),
            lines: Vec::new(),
            lines_per_order: orders.first().map_or(0, |it| it.lines.len()),
        };
        for order in orders {
            rows.orders.push(OrderRow {
                id: order.id.clone(),
                company: order.company.clone(),
                ordered_at: match engine {
                    Engine::Postgres => order.ordered_at_iso(),
                    Engine::Mariadb => order.ordered_at_mysql(),
                },
                freight: js_number(order.freight()),
                city: order.city,
                total: js_number(order.total_cents() as f64 / 100.0),
            });
            for line in &order.lines {
                rows.lines.push(LineRow {
                    order_id: order.id.clone(),
                    product: line.product.clone(),
                    quantity: line.quantity,
                    price: js_number(line.price()),
                    discount: js_number(line.discount),
                });
            }
        }
        rows
    }

    fn n_rows(&self) -> usize {
        self.orders.len() + self.lines.len()
    }
}

/// What every phase must leave in the tables, known from the data alone.
struct Expected {
    orders: u64,
    lines: u64,
    distinct_order_ids: u64,
    sum_total: String,
    sum_freight: String,
    sum_quantity: String,
    sum_line_amount: String,
}

impl Expected {
    fn new(orders: &[Order]) -> Expected {
        let lines = orders.iter().map(|it| it.lines.len() as u64).sum();
        let quantity: i64 = orders
            .iter()
            .flat_map(|it| &it.lines)
            .map(|it| it.quantity)
            .sum();
        Expected {
            orders: orders.len() as u64,
            lines,
            distinct_order_ids: orders.iter().filter(|it| !it.lines.is_empty()).count() as u64,
            sum_total: decimal_text(orders.iter().map(Order::total_cents).sum()),
            sum_freight: decimal_text(orders.iter().map(|it| it.freight_cents).sum()),
            sum_quantity: quantity.to_string(),
            sum_line_amount: decimal_text(
                orders
                    .iter()
                    .flat_map(|it| &it.lines)
                    .map(|it| it.price_cents * it.quantity)
                    .sum(),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The engines

/// One connection to the destination engine.
enum Sql {
    Postgres(tokio_postgres::Client),
    Mariadb(mysql_async::Conn),
}

/// The two tables, quoted for the engine.
struct Tables {
    orders: String,
    lines: String,
}

impl Sql {
    async fn connect(args: &SqlEtlArgs) -> anyhow::Result<Sql> {
        match args.engine {
            Engine::Postgres => {
                let mut config = tokio_postgres::Config::new();
                config
                    .host(&args.host)
                    .port(args.port())
                    .user(args.user())
                    .dbname(&args.database)
                    .application_name("corvid-bench");
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot connect to PostgreSQL at {}:{}",
                            args.host,
                            args.port()
                        )
                    })?;
                tokio::spawn(connection);
                Ok(Sql::Postgres(client))
            }
            Engine::Mariadb => {
                let opts = mysql_async::OptsBuilder::default()
                    .ip_or_hostname(args.host.clone())
                    .tcp_port(args.port())
                    .user(Some(args.user()))
                    .db_name(Some(args.database.clone()))
                    .prefer_socket(false);
                let conn = mysql_async::Conn::new(opts).await.with_context(|| {
                    format!("cannot connect to MariaDB at {}:{}", args.host, args.port())
                })?;
                Ok(Sql::Mariadb(conn))
            }
        }
    }

    fn quote(&self, name: &str) -> String {
        match self {
            Sql::Postgres(_) => format!("\"{}\"", name.replace('"', "\"\"")),
            Sql::Mariadb(_) => format!("`{}`", name.replace('`', "``")),
        }
    }

    fn tables(&self, schema: &str) -> Tables {
        let schema = self.quote(schema);
        Tables {
            orders: format!("{schema}.{}", self.quote("Orders")),
            lines: format!("{schema}.{}", self.quote("OrderLines")),
        }
    }

    async fn execute(&mut self, sql: &str) -> anyhow::Result<()> {
        match self {
            Sql::Postgres(client) => client.batch_execute(sql).await?,
            Sql::Mariadb(conn) => conn.query_drop(sql).await?,
        }
        Ok(())
    }

    /// The first row of a query, every value as text.
    async fn row(&mut self, sql: &str) -> anyhow::Result<Vec<Option<String>>> {
        match self {
            Sql::Postgres(client) => {
                for message in client.simple_query(sql).await? {
                    if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                        return Ok((0..row.len())
                            .map(|at| row.get(at).map(str::to_owned))
                            .collect());
                    }
                }
                bail!("no row from {sql}")
            }
            Sql::Mariadb(conn) => {
                let row: Option<mysql_async::Row> = conn.query_first(sql).await?;
                let row = row.with_context(|| format!("no row from {sql}"))?;
                Ok(row.unwrap().iter().map(mysql_text).collect())
            }
        }
    }

    async fn create_tables(&mut self, schema: &str) -> anyhow::Result<()> {
        let quoted = self.quote(schema);
        let Tables { orders, lines } = self.tables(schema);
        let statements = match self {
            Sql::Postgres(_) => vec![
                format!("CREATE SCHEMA {quoted}"),
                format!(
                    "CREATE TABLE {orders} (\"Id\" varchar(50), \"Company\" text, \
                     \"OrderedAt\" timestamp, \"Freight\" numeric(10,2), \"City\" text, \
                     \"Total\" numeric(12,2))"
                ),
                format!(
                    "CREATE TABLE {lines} (\"OrderId\" varchar(50), \"Product\" text, \
                     \"Quantity\" int, \"PricePerUnit\" numeric(10,2), \
                     \"Discount\" double precision)"
                ),
                format!("CREATE INDEX ON {orders} (\"Id\")"),
                format!("CREATE INDEX ON {lines} (\"OrderId\")"),
            ],
            Sql::Mariadb(_) => vec![
                format!("CREATE DATABASE {quoted}"),
                format!(
                    "CREATE TABLE {orders} (`Id` varchar(50), `Company` text, \
                     `OrderedAt` datetime(6), `Freight` decimal(10,2), `City` text, \
                     `Total` decimal(12,2), INDEX (`Id`)) ENGINE=InnoDB"
                ),
                format!(
                    "CREATE TABLE {lines} (`OrderId` varchar(50), `Product` text, \
                     `Quantity` int, `PricePerUnit` decimal(10,2), `Discount` double, \
                     INDEX (`OrderId`)) ENGINE=InnoDB"
                ),
            ],
        };
        for statement in statements {
            self.execute(&statement).await?;
        }
        Ok(())
    }

    async fn drop_schema(&mut self, schema: &str) -> anyhow::Result<()> {
        let quoted = self.quote(schema);
        let statement = match self {
            Sql::Postgres(_) => format!("DROP SCHEMA IF EXISTS {quoted} CASCADE"),
            Sql::Mariadb(_) => format!("DROP DATABASE IF EXISTS {quoted}"),
        };
        self.execute(&statement).await
    }

    async fn truncate(&mut self, tables: &Tables) -> anyhow::Result<()> {
        let Tables { orders, lines } = tables;
        match self {
            Sql::Postgres(client) => {
                client
                    .batch_execute(&format!("TRUNCATE {orders}, {lines}"))
                    .await?
            }
            Sql::Mariadb(conn) => {
                conn.query_drop(format!("TRUNCATE TABLE {orders}")).await?;
                conn.query_drop(format!("TRUNCATE TABLE {lines}")).await?;
            }
        }
        Ok(())
    }

    async fn counts(&mut self, tables: &Tables) -> anyhow::Result<(u64, u64)> {
        let Tables { orders, lines } = tables;
        let row = self
            .row(&format!(
                "SELECT (SELECT COUNT(*) FROM {orders}), (SELECT COUNT(*) FROM {lines})"
            ))
            .await?;
        let number = |at: usize| -> anyhow::Result<u64> {
            Ok(row
                .get(at)
                .cloned()
                .flatten()
                .context("no count")?
                .parse()?)
        };
        Ok((number(0)?, number(1)?))
    }

    /// Aggregates of both tables, the last one a hash of every row (order-independent).
    async fn fingerprint(&mut self, tables: &Tables) -> anyhow::Result<Fingerprint> {
        let Tables { orders, lines } = tables;
        let (orders_sql, lines_sql) = match self {
            Sql::Postgres(_) => (
                format!(
                    "SELECT COUNT(*), COUNT(DISTINCT \"Id\"), SUM(\"Total\"), SUM(\"Freight\"), \
                     MIN(\"OrderedAt\"), MAX(\"OrderedAt\"), \
                     md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))) FROM {orders} t"
                ),
                format!(
                    "SELECT COUNT(*), COUNT(DISTINCT \"OrderId\"), SUM(\"Quantity\"), \
                     SUM(\"PricePerUnit\" * \"Quantity\"), ROUND(SUM(\"Discount\")::numeric, 6), \
                     md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))) FROM {lines} t"
                ),
            ),
            Sql::Mariadb(_) => (
                format!(
                    "SELECT COUNT(*), COUNT(DISTINCT `Id`), SUM(`Total`), SUM(`Freight`), \
                     MIN(`OrderedAt`), MAX(`OrderedAt`), \
                     SUM(CRC32(CONCAT_WS('|', `Id`, `Company`, `OrderedAt`, `Freight`, `City`, \
                     `Total`))) FROM {orders}"
                ),
                format!(
                    "SELECT COUNT(*), COUNT(DISTINCT `OrderId`), SUM(`Quantity`), \
                     SUM(`PricePerUnit` * `Quantity`), ROUND(SUM(`Discount`), 6), \
                     SUM(CRC32(CONCAT_WS('|', `OrderId`, `Product`, `Quantity`, \
                     `PricePerUnit`, `Discount`))) FROM {lines}"
                ),
            ),
        };
        let text = |row: Vec<Option<String>>| {
            row.into_iter()
                .map(|it| it.unwrap_or_else(|| "NULL".to_owned()))
                .collect()
        };
        Ok(Fingerprint {
            orders: text(self.row(&orders_sql).await?),
            lines: text(self.row(&lines_sql).await?),
        })
    }
}

fn mysql_text(value: &mysql_async::Value) -> Option<String> {
    match value {
        mysql_async::Value::NULL => None,
        mysql_async::Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        mysql_async::Value::Int(it) => Some(it.to_string()),
        mysql_async::Value::UInt(it) => Some(it.to_string()),
        other => Some(other.as_sql(true)),
    }
}

/// See [`Sql::fingerprint`].
#[derive(Debug, PartialEq)]
struct Fingerprint {
    /// count, distinct ids, sum(Total), sum(Freight), min(OrderedAt), max(OrderedAt), hash
    orders: Vec<String>,
    /// count, distinct order ids, sum(Quantity), sum(PricePerUnit × Quantity),
    /// sum(Discount) to 6 places, hash
    lines: Vec<String>,
}

impl Fingerprint {
    /// The mismatches against what the data must give.
    fn check(&self, expected: &Expected) -> Vec<String> {
        let checks = [
            ("Orders rows", &self.orders, 0, expected.orders.to_string()),
            (
                "distinct Orders.Id",
                &self.orders,
                1,
                expected.orders.to_string(),
            ),
            ("SUM(Total)", &self.orders, 2, expected.sum_total.clone()),
            (
                "SUM(Freight)",
                &self.orders,
                3,
                expected.sum_freight.clone(),
            ),
            (
                "OrderLines rows",
                &self.lines,
                0,
                expected.lines.to_string(),
            ),
            (
                "distinct OrderLines.OrderId",
                &self.lines,
                1,
                expected.distinct_order_ids.to_string(),
            ),
            (
                "SUM(Quantity)",
                &self.lines,
                2,
                expected.sum_quantity.clone(),
            ),
            (
                "SUM(PricePerUnit * Quantity)",
                &self.lines,
                3,
                expected.sum_line_amount.clone(),
            ),
        ];
        checks
            .into_iter()
            .filter_map(|(name, row, at, want)| {
                let got = row.get(at).map_or("missing", String::as_str);
                // An empty table sums to NULL.
                let matches = got == want || (got == "NULL" && want == "0.00");
                (!matches).then(|| format!("{name}: {got}, expected {want}"))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Baseline (a): the engine's bulk path

/// Appends `text` escaped for PostgreSQL's COPY text format and MariaDB's LOAD DATA default
/// format (both use `\` escapes for backslash, tab, newline and carriage return).
fn push_field(buffer: &mut BytesMut, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (at, byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        buffer.put_slice(&bytes[start..at]);
        buffer.put_slice(escape);
        start = at + 1;
    }
    buffer.put_slice(&bytes[start..]);
}

fn push_line(buffer: &mut BytesMut, fields: &[&str]) {
    for (at, field) in fields.iter().enumerate() {
        if at > 0 {
            buffer.put_u8(b'\t');
        }
        push_field(buffer, field);
    }
    buffer.put_u8(b'\n');
}

/// Tab-separated lines of every row of one table, in chunks of about [`CHUNK_BYTES`].
fn encode_orders(rows: &[OrderRow]) -> Vec<Bytes> {
    encode(rows, |buffer, row| {
        push_line(
            buffer,
            &[
                &row.id,
                &row.company,
                &row.ordered_at,
                &row.freight,
                row.city,
                &row.total,
            ],
        );
    })
}

fn encode_lines(rows: &[LineRow]) -> Vec<Bytes> {
    encode(rows, |buffer, row| {
        push_line(
            buffer,
            &[
                &row.order_id,
                &row.product,
                &row.quantity.to_string(),
                &row.price,
                &row.discount,
            ],
        );
    })
}

fn encode<T>(rows: &[T], mut line: impl FnMut(&mut BytesMut, &T)) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut buffer = BytesMut::with_capacity(CHUNK_BYTES + 1024);
    for row in rows {
        line(&mut buffer, row);
        if buffer.len() >= CHUNK_BYTES {
            chunks.push(buffer.split().freeze());
        }
    }
    if !buffer.is_empty() {
        chunks.push(buffer.split().freeze());
    }
    chunks
}

const ORDER_COLUMNS: [&str; 6] = ["Id", "Company", "OrderedAt", "Freight", "City", "Total"];
const LINE_COLUMNS: [&str; 5] = ["OrderId", "Product", "Quantity", "PricePerUnit", "Discount"];

impl Sql {
    fn column_list(&self, columns: &[&str]) -> String {
        columns
            .iter()
            .map(|it| self.quote(it))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// PostgreSQL: both tables with text-format `COPY … FROM STDIN` in one transaction.
    async fn copy_in(&mut self, tables: &Tables, rows: &Rows) -> anyhow::Result<()> {
        let orders_copy = format!(
            "COPY {} ({}) FROM STDIN",
            tables.orders,
            self.column_list(&ORDER_COLUMNS)
        );
        let lines_copy = format!(
            "COPY {} ({}) FROM STDIN",
            tables.lines,
            self.column_list(&LINE_COLUMNS)
        );
        let Sql::Postgres(client) = self else {
            bail!("COPY is PostgreSQL's");
        };
        let transaction = client.transaction().await?;
        for (statement, chunks) in [
            (orders_copy, encode_orders(&rows.orders)),
            (lines_copy, encode_lines(&rows.lines)),
        ] {
            let sink = transaction.copy_in::<_, Bytes>(&statement).await?;
            let mut sink = std::pin::pin!(sink);
            for chunk in chunks {
                sink.send(chunk).await?;
            }
            sink.as_mut().finish().await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// MariaDB: both tables with `LOAD DATA LOCAL INFILE` in one transaction. Fails when
    /// the server refuses it.
    async fn load_data(&mut self, tables: &Tables, rows: &Rows) -> anyhow::Result<()> {
        let statements = [
            (
                format!(
                    "LOAD DATA LOCAL INFILE 'orders.tsv' INTO TABLE {} CHARACTER SET utf8mb4 ({})",
                    tables.orders,
                    self.column_list(&ORDER_COLUMNS)
                ),
                encode_orders(&rows.orders),
            ),
            (
                format!(
                    "LOAD DATA LOCAL INFILE 'lines.tsv' INTO TABLE {} CHARACTER SET utf8mb4 ({})",
                    tables.lines,
                    self.column_list(&LINE_COLUMNS)
                ),
                encode_lines(&rows.lines),
            ),
        ];
        let Sql::Mariadb(conn) = self else {
            bail!("LOAD DATA is MariaDB's");
        };
        conn.query_drop("START TRANSACTION").await?;
        for (statement, chunks) in statements {
            conn.set_infile_handler(async move {
                Ok(futures_util::stream::iter(chunks.into_iter().map(Ok)).boxed())
            });
            conn.query_drop(&statement).await?;
            // LOCAL turns conversion errors into warnings; there must be none.
            let warnings: Option<u64> = conn.query_first("SELECT @@warning_count").await?;
            if warnings.unwrap_or(0) > 0 {
                let shown: Vec<mysql_async::Row> = conn.query("SHOW WARNINGS LIMIT 3").await?;
                let shown: Vec<String> = shown
                    .into_iter()
                    .map(|row| {
                        row.unwrap()
                            .iter()
                            .filter_map(mysql_text)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                bail!(
                    "LOAD DATA gave {} warnings: {}",
                    warnings.unwrap_or(0),
                    shown.join("; ")
                );
            }
        }
        conn.query_drop("COMMIT").await?;
        Ok(())
    }

    /// MariaDB: prepared multi-row `INSERT`s of [`MULTI_ROW_INSERT`] rows, one transaction
    /// (what Corvid's MySQL writer sends where the server refuses `LOAD DATA LOCAL`, without
    /// its deletes).
    async fn multi_row_insert(&mut self, tables: &Tables, rows: &Rows) -> anyhow::Result<()> {
        let orders_head = format!(
            "INSERT INTO {} ({}) VALUES ",
            tables.orders,
            self.column_list(&ORDER_COLUMNS)
        );
        let lines_head = format!(
            "INSERT INTO {} ({}) VALUES ",
            tables.lines,
            self.column_list(&LINE_COLUMNS)
        );
        let Sql::Mariadb(conn) = self else {
            bail!("multi-row INSERT is measured on MariaDB");
        };
        conn.query_drop("START TRANSACTION").await?;
        for chunk in rows.orders.chunks(MULTI_ROW_INSERT) {
            let statement = multi_row(&orders_head, ORDER_COLUMNS.len(), chunk.len());
            let params = chunk.iter().flat_map(order_values).collect();
            conn.exec_drop(statement, mysql_async::Params::Positional(params))
                .await?;
        }
        for chunk in rows.lines.chunks(MULTI_ROW_INSERT) {
            let statement = multi_row(&lines_head, LINE_COLUMNS.len(), chunk.len());
            let params = chunk.iter().flat_map(line_values).collect();
            conn.exec_drop(statement, mysql_async::Params::Positional(params))
                .await?;
        }
        conn.query_drop("COMMIT").await?;
        Ok(())
    }
}

fn multi_row(head: &str, width: usize, n_rows: usize) -> String {
    let tuple = format!("({})", vec!["?"; width].join(", "));
    let mut statement = String::with_capacity(head.len() + n_rows * (tuple.len() + 2));
    statement.push_str(head);
    for at in 0..n_rows {
        if at > 0 {
            statement.push_str(", ");
        }
        statement.push_str(&tuple);
    }
    statement
}

fn text(value: &str) -> mysql_async::Value {
    mysql_async::Value::Bytes(value.as_bytes().to_vec())
}

/// MariaDB parameters of a row: as Corvid's MySQL writer binds them (numbers that are not
/// integers as their text, integers as integers).
fn order_values(row: &OrderRow) -> [mysql_async::Value; 6] {
    [
        text(&row.id),
        text(&row.company),
        text(&row.ordered_at),
        text(&row.freight),
        text(row.city),
        text(&row.total),
    ]
}

fn line_values(row: &LineRow) -> [mysql_async::Value; 5] {
    [
        text(&row.order_id),
        text(&row.product),
        mysql_async::Value::Int(row.quantity),
        text(&row.price),
        text(&row.discount),
    ]
}

// ---------------------------------------------------------------------------------------------
// Baseline (b): RavenDB's algorithm

impl Sql {
    /// Per batch of `batch` orders, one transaction: the deletes of the batch's ids from
    /// both tables (children first) in `IN (…)` lists of [`DELETE_CHUNK`] parameters, then
    /// one prepared single-row `INSERT` per row, each awaited before the next.
    async fn row_by_row(
        &mut self,
        tables: &Tables,
        rows: &Rows,
        batch: usize,
    ) -> anyhow::Result<()> {
        let batch = batch.max(1);
        // Every `IN` list length that occurs, so each delete is prepared once.
        let mut sizes: Vec<usize> = rows
            .orders
            .chunks(batch)
            .flat_map(|orders| orders.chunks(DELETE_CHUNK).map(<[OrderRow]>::len))
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        let postgres = matches!(self, Sql::Postgres(_));
        let placeholder = |at: usize| {
            if postgres {
                format!("${at}")
            } else {
                "?".to_owned()
            }
        };
        // Children first, as RavenDB deletes.
        let delete_tables = [
            (tables.lines.clone(), self.quote("OrderId")),
            (tables.orders.clone(), self.quote("Id")),
        ];
        let mut deletes = Vec::new();
        for (table, column) in &delete_tables {
            for &n in &sizes {
                let list = (1..=n).map(placeholder).collect::<Vec<_>>().join(", ");
                deletes.push((
                    (table.clone(), n),
                    format!("DELETE FROM {table} WHERE {column} IN ({list})"),
                ));
            }
        }
        let (order_values_sql, line_values_sql) = if postgres {
            // tokio-postgres binds strings only to text columns: the server converts them.
            (
                "($1, $2, $3::text::timestamp, $4::text::numeric, $5, $6::text::numeric)",
                "($1, $2, $3, $4::text::numeric, $5::text::float8)",
            )
        } else {
            ("(?, ?, ?, ?, ?, ?)", "(?, ?, ?, ?, ?)")
        };
        let insert_order = format!(
            "INSERT INTO {} ({}) VALUES {order_values_sql}",
            tables.orders,
            self.column_list(&ORDER_COLUMNS)
        );
        let insert_line = format!(
            "INSERT INTO {} ({}) VALUES {line_values_sql}",
            tables.lines,
            self.column_list(&LINE_COLUMNS)
        );
        let per_order = rows.lines_per_order;
        match self {
            Sql::Postgres(client) => {
                type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
                let mut prepared = HashMap::new();
                for (key, statement) in deletes {
                    prepared.insert(key, client.prepare(&statement).await?);
                }
                let insert_order = client.prepare(&insert_order).await?;
                let insert_line = client.prepare(&insert_line).await?;
                for (at, orders) in rows.orders.chunks(batch).enumerate() {
                    let first = at * batch;
                    let lines = &rows.lines[first * per_order..(first + orders.len()) * per_order];
                    client.batch_execute("BEGIN").await?;
                    for (table, _) in &delete_tables {
                        for ids in orders.chunks(DELETE_CHUNK) {
                            let statement = prepared
                                .get(&(table.clone(), ids.len()))
                                .context("no prepared delete")?;
                            let params: Vec<Param<'_>> =
                                ids.iter().map(|it| &it.id as Param<'_>).collect();
                            client.execute(statement, &params).await?;
                        }
                    }
                    for row in orders {
                        let params: [Param<'_>; 6] = [
                            &row.id,
                            &row.company,
                            &row.ordered_at,
                            &row.freight,
                            &row.city,
                            &row.total,
                        ];
                        client.execute(&insert_order, &params).await?;
                    }
                    for row in lines {
                        let quantity = i32::try_from(row.quantity)?;
                        let params: [Param<'_>; 5] = [
                            &row.order_id,
                            &row.product,
                            &quantity,
                            &row.price,
                            &row.discount,
                        ];
                        client.execute(&insert_line, &params).await?;
                    }
                    client.batch_execute("COMMIT").await?;
                }
            }
            Sql::Mariadb(conn) => {
                let mut prepared = HashMap::new();
                for (key, statement) in deletes {
                    prepared.insert(key, conn.prep(statement).await?);
                }
                let insert_order = conn.prep(insert_order).await?;
                let insert_line = conn.prep(insert_line).await?;
                for (at, orders) in rows.orders.chunks(batch).enumerate() {
                    let first = at * batch;
                    let lines = &rows.lines[first * per_order..(first + orders.len()) * per_order];
                    conn.query_drop("START TRANSACTION").await?;
                    for (table, _) in &delete_tables {
                        for ids in orders.chunks(DELETE_CHUNK) {
                            let statement = prepared
                                .get(&(table.clone(), ids.len()))
                                .context("no prepared delete")?;
                            let params = ids.iter().map(|it| text(&it.id)).collect();
                            conn.exec_drop(statement, mysql_async::Params::Positional(params))
                                .await?;
                        }
                    }
                    for row in orders {
                        let params = order_values(row).to_vec();
                        conn.exec_drop(&insert_order, mysql_async::Params::Positional(params))
                            .await?;
                    }
                    for row in lines {
                        let params = line_values(row).to_vec();
                        conn.exec_drop(&insert_line, mysql_async::Params::Positional(params))
                            .await?;
                    }
                    conn.query_drop("COMMIT").await?;
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The run

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|it| it.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn unique_schema() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |it| it.subsec_nanos());
    format!("corvid_bench_{}_{nanos}", std::process::id())
}

#[allow(clippy::print_stdout)]
pub(crate) async fn sql_etl(args: SqlEtlArgs) -> anyhow::Result<()> {
    let started_load = load_average();
    let schema = unique_schema();
    let mut sql = Sql::connect(&args).await?;
    // Ctrl-C ends the run (and the spawned Corvid with it) but still drops the schema.
    let result = tokio::select! {
        result = async {
            sql.create_tables(&schema).await?;
            run(&args, &mut sql, &schema, &started_load).await
        } => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    // Drop the schema whatever happened, on a new connection in case this one broke.
    let dropped = match Sql::connect(&args).await {
        Ok(mut fresh) => fresh.drop_schema(&schema).await,
        Err(error) => Err(error),
    };
    if let Err(error) = &dropped {
        println!("could not drop {schema}: {error:#}");
    }
    result?;
    dropped
}

/// One round: Corvid's ETL by a new task, then each bulk baseline, on emptied tables.
struct Round {
    corvid: Phase,
    timings: BatchTimings,
    bulk: Vec<Phase>,
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Creates SQL ETL task `name` and waits until it has loaded every order; returns the phase
/// and its batch timings.
#[allow(clippy::print_stdout)]
async fn corvid_round(
    args: &SqlEtlArgs,
    http: &reqwest::Client,
    url: &str,
    schema: &str,
    name: &str,
    n_rows: usize,
) -> anyhow::Result<(Phase, BatchTimings)> {
    let task = json!({"EtlType": "Sql", "Name": name, "ConnectionStringName": "sql",
        "SqlTables": [
            {"TableName": format!("{schema}.Orders"), "DocumentIdColumn": "Id"},
            {"TableName": format!("{schema}.OrderLines"), "DocumentIdColumn": "OrderId"},
        ],
        "Transforms": [{"Name": "s", "Collections": ["Orders"], "Script": script(schema)}]});
    let started = Instant::now();
    let busy_at_start = busy_cpu_seconds();
    post_json(
        http,
        reqwest::Method::PUT,
        &format!("{url}/databases/{DATABASE}/admin/etl"),
        &task,
    )
    .await?;
    // `/etl/stats` is read from memory; `/etl/progress` counts the remaining documents by
    // reading them, so it is asked only once the stats say everything was loaded.
    loop {
        let stats: Value = http
            .get(format!("{url}/databases/{DATABASE}/etl/stats?name={name}"))
            .send()
            .await?
            .json()
            .await?;
        let statistics = &stats["Results"][0]["Stats"][0]["Statistics"];
        if statistics["Extracted"].as_u64().unwrap_or(0) >= args.orders as u64 {
            break;
        }
        if statistics["Status"] == "Error"
            || statistics["Transformation"]["Errors"].as_u64().unwrap_or(0) > 0
        {
            bail!("the ETL failed: {statistics}");
        }
        if let Some(error) = statistics["LastLoadError"].as_str() {
            bail!("loading failed: {error}");
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the ETL did not finish within 30 minutes: {statistics}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let corvid_seconds = started.elapsed().as_secs_f64();
    let corvid_busy = busy_since(busy_at_start);
    loop {
        let progress: Value = http
            .get(format!(
                "{url}/databases/{DATABASE}/etl/progress?name={name}"
            ))
            .send()
            .await?
            .json()
            .await?;
        if progress["Results"][0]["ProcessesProgress"][0]["Completed"] == true {
            break;
        }
        if started.elapsed().as_secs_f64() > corvid_seconds + 60.0 {
            bail!("the stats say done but the progress does not: {progress}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let phase = Phase {
        name: "Corvid SQL ETL, end to end".to_owned(),
        seconds: corvid_seconds,
        n_rows,
        busy_cpu_seconds: corvid_busy,
    };
    let performance_url = format!("{url}/databases/{DATABASE}/etl/performance?name={name}");
    let (timings, performance) = BatchTimings::fetch(http, &performance_url).await?;
    if args.per_batch
        && let Some(batches) = performance["Results"][0]["Stats"][0]["Performance"].as_array()
    {
        for batch in batches {
            let operations = &batch["Details"]["Operations"];
            println!(
                "{name} batch at {}: {} docs, extract+transform {:.0} ms, load {:.0} ms",
                batch["Started"].as_str().unwrap_or("?"),
                batch["NumberOfExtractedItems"],
                operations[0]["DurationInMs"].as_f64().unwrap_or(0.0),
                operations[1]["DurationInMs"].as_f64().unwrap_or(0.0),
            );
        }
    }
    Ok((phase, timings))
}

/// One measured phase.
struct Phase {
    name: String,
    seconds: f64,
    n_rows: usize,
    /// CPU-seconds the whole machine was busy during the phase (every process).
    busy_cpu_seconds: Option<f64>,
}

impl Phase {
    fn rows_per_second(&self) -> f64 {
        self.n_rows as f64 / self.seconds
    }
}

#[allow(clippy::print_stdout)]
async fn run(
    args: &SqlEtlArgs,
    sql: &mut Sql,
    schema: &str,
    started_load: &str,
) -> anyhow::Result<()> {
    let tables = sql.tables(schema);
    let orders: Vec<Order> = (0..args.orders)
        .map(|idx| Order::new(idx, args.lines))
        .collect();
    let expected = Expected::new(&orders);
    let rows = Rows::new(&orders, args.engine);
    let n_rows = rows.n_rows();

    let mut bodies = Vec::new();
    let mut doc_bytes = 0;
    for chunk in orders.chunks(1000) {
        let mut commands = Vec::with_capacity(chunk.len());
        for order in chunk {
            let document = order.document();
            doc_bytes += serde_json::to_vec(&document)?.len();
            commands.push(json!({"Id": order.id, "ChangeVector": null, "Type": "PUT",
                "Document": document}));
        }
        bodies.push(Bytes::from(serde_json::to_vec(
            &json!({"Commands": commands}),
        )?));
    }
    let engine = match args.engine {
        Engine::Postgres => "PostgreSQL",
        Engine::Mariadb => "MariaDB",
    };
    println!(
        "sql-etl {engine}: {} Orders documents of ~{} bytes, {} lines each -> {n_rows} rows \
         ({} Orders + {} OrderLines) in {schema}",
        args.orders,
        doc_bytes / args.orders.max(1),
        args.lines,
        rows.orders.len(),
        rows.lines.len(),
    );
    println!("load average at start: {started_load}");

    // Corvid, end to end.
    let server = spawn_corvid_with(args.corvid_bin.clone(), &args.server_args)?;
    let rss =
        crate::rss::RssSampler::start(&[("corvid", server.child.id())], Duration::from_secs(1));
    let http = corvid_client::http_client_builder().build()?;
    create_database(&server.url, DATABASE, &ClientOptions::default()).await?;
    bulk_insert(&http, &server.url, DATABASE, &bodies).await?;
    drop(bodies);
    post_json(
        &http,
        reqwest::Method::PUT,
        &format!(
            "{}/databases/{DATABASE}/admin/connection-strings",
            server.url
        ),
        &args.corvid_connection_string(),
    )
    .await?;
    let methods: Vec<&str> = match args.engine {
        Engine::Postgres => vec!["COPY FROM STDIN (text)"],
        Engine::Mariadb => {
            let local_infile = sql.row("SELECT @@local_infile").await?;
            if local_infile.first().cloned().flatten().as_deref() == Some("1") {
                vec!["LOAD DATA LOCAL INFILE", "multi-row INSERT x1000"]
            } else {
                println!("@@local_infile is off: LOAD DATA LOCAL INFILE not measured");
                vec!["multi-row INSERT x1000"]
            }
        }
    };
    let mut rounds: Vec<Round> = Vec::with_capacity(args.rounds.max(1));
    let mut corvid_fingerprint = None;
    for round_idx in 0..args.rounds.max(1) {
        // Corvid, end to end: a new task on emptied tables.
        sql.truncate(&tables).await?;
        let name = format!("orders-{round_idx}");
        let (corvid, timings) =
            corvid_round(args, &http, &server.url, schema, &name, n_rows).await?;
        let fingerprint = sql.fingerprint(&tables).await?;
        let problems = fingerprint.check(&expected);
        if !problems.is_empty() {
            bail!("after Corvid's load: {}", problems.join("; "));
        }
        // (a) the bulk path.
        let mut bulk = Vec::new();
        for method in &methods {
            sql.truncate(&tables).await?;
            let started = Instant::now();
            let busy_at_start = busy_cpu_seconds();
            match *method {
                "COPY FROM STDIN (text)" => sql.copy_in(&tables, &rows).await?,
                "LOAD DATA LOCAL INFILE" => sql.load_data(&tables, &rows).await?,
                _ => sql.multi_row_insert(&tables, &rows).await?,
            }
            let phase = Phase {
                name: format!("(a) {method}, one transaction"),
                seconds: started.elapsed().as_secs_f64(),
                n_rows,
                busy_cpu_seconds: busy_since(busy_at_start),
            };
            verify(sql, &tables, &expected, &fingerprint, &phase.name).await?;
            bulk.push(phase);
        }
        corvid_fingerprint = Some(fingerprint);
        rounds.push(Round {
            corvid,
            timings,
            bulk,
        });
    }
    let corvid_fingerprint = corvid_fingerprint.context("no round")?;
    let memory = memory_mib(server.child.id());
    rss.report(12);
    drop(rss);
    drop(server);

    // (b) RavenDB's algorithm.
    let batch_items = rounds.last().map_or(0, |it| it.timings.most_items);
    let batch = if batch_items > 0 {
        usize::try_from(batch_items)?
    } else {
        DEFAULT_ETL_BATCH
    };
    let row_by_row = if args.skip_row_by_row {
        None
    } else {
        sql.truncate(&tables).await?;
        let started = Instant::now();
        let busy_at_start = busy_cpu_seconds();
        sql.row_by_row(&tables, &rows, batch).await?;
        let phase = Phase {
            name: format!("(b) RavenDB's algorithm, batches of {batch}"),
            seconds: started.elapsed().as_secs_f64(),
            n_rows,
            busy_cpu_seconds: busy_since(busy_at_start),
        };
        verify(sql, &tables, &expected, &corvid_fingerprint, &phase.name).await?;
        Some(phase)
    };

    // The report: every round, then the median of the rounds' ratios.
    println!(
        "{:<54} {:>10} {:>9} {:>13} {:>12}",
        "phase", "rows/s", "seconds", "Corvid ratio", "busy CPU-s"
    );
    let busy = |phase: &Phase| {
        phase
            .busy_cpu_seconds
            .map_or_else(|| "?".to_owned(), |it| format!("{it:.2}"))
    };
    let mut bulk_ratios = Vec::with_capacity(rounds.len());
    for (round_idx, round) in rounds.iter().enumerate() {
        let corvid = &round.corvid;
        println!(
            "{:<54} {:>10.0} {:>9.2} {:>13} {:>12}",
            format!("round {}: {}", round_idx + 1, corvid.name),
            corvid.rows_per_second(),
            corvid.seconds,
            "-",
            busy(corvid)
        );
        for phase in &round.bulk {
            println!(
                "{:<54} {:>10.0} {:>9.2} {:>12.2}x {:>12}",
                format!("round {}: {}", round_idx + 1, phase.name),
                phase.rows_per_second(),
                phase.seconds,
                corvid.rows_per_second() / phase.rows_per_second(),
                busy(phase)
            );
        }
        let fastest_bulk = round
            .bulk
            .iter()
            .map(Phase::rows_per_second)
            .max_by(f64::total_cmp)
            .context("no bulk baseline")?;
        bulk_ratios.push(corvid.rows_per_second() / fastest_bulk);
        let timings = &round.timings;
        println!(
            "round {}: corvid {:.0} docs/s; last {} batches (up to {} docs): \
             extract+transform {:.0} ms, load {:.0} ms",
            round_idx + 1,
            args.orders as f64 / corvid.seconds,
            timings.n_batches,
            timings.most_items,
            timings.transform_ms,
            timings.load_ms
        );
    }
    let last_corvid = &rounds.last().context("no round")?.corvid;
    if let Some(phase) = &row_by_row {
        let ratio = last_corvid.rows_per_second() / phase.rows_per_second();
        println!(
            "{:<54} {:>10.0} {:>9.2} {:>12.2}x {:>12}",
            phase.name,
            phase.rows_per_second(),
            phase.seconds,
            ratio,
            busy(phase)
        );
    }
    if let Some((rss, hwm)) = memory {
        println!("corvid memory: {rss:.0} MiB resident, {hwm:.0} MiB peak");
    }
    let rounds_text: Vec<String> = bulk_ratios.iter().map(|it| format!("{it:.2}")).collect();
    println!(
        "ratio Corvid / bulk (a), the fastest in each round, median of {} rounds: {:.2} \
         (rounds: {}) (target >= 0.7)",
        bulk_ratios.len(),
        median(&mut bulk_ratios),
        rounds_text.join(", ")
    );
    if let Some(phase) = &row_by_row {
        println!(
            "ratio Corvid (last round) / row by row (b): {:.1}x (target >= 10x)",
            last_corvid.rows_per_second() / phase.rows_per_second()
        );
    }
    println!(
        "verified after every phase: {} + {} rows, sums as computed here, every row's \
         fingerprint equal to Corvid's load",
        expected.orders, expected.lines
    );
    println!("load average at end: {}", load_average());
    Ok(())
}

/// Checks a baseline's tables against the data and against Corvid's load.
async fn verify(
    sql: &mut Sql,
    tables: &Tables,
    expected: &Expected,
    corvid: &Fingerprint,
    phase: &str,
) -> anyhow::Result<()> {
    let (orders, lines) = sql.counts(tables).await?;
    if (orders, lines) != (expected.orders, expected.lines) {
        bail!(
            "{phase}: {orders} Orders and {lines} OrderLines rows, expected {} and {}",
            expected.orders,
            expected.lines
        );
    }
    let fingerprint = sql.fingerprint(tables).await?;
    let problems = fingerprint.check(expected);
    if !problems.is_empty() {
        bail!("{phase}: {}", problems.join("; "));
    }
    if fingerprint != *corvid {
        bail!("{phase}: the rows differ from Corvid's load:\n  {fingerprint:?}\n  {corvid:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(
            civil(FIRST_DAY, 0),
            ("2020-01-01".to_owned(), "00:00:00".to_owned())
        );
        assert_eq!(
            civil(FIRST_DAY, 59 * 86_400 + 3_723),
            ("2020-02-29".to_owned(), "01:02:03".to_owned())
        );
        assert_eq!(civil(FIRST_DAY + 366, 0).0, "2021-01-01");
    }

    #[test]
    fn numbers_print_as_javascript_does() {
        assert_eq!(js_number(0.0), "0");
        assert_eq!(js_number(12.0), "12");
        assert_eq!(js_number(0.05), "0.05");
        assert_eq!(js_number(1234.5), "1234.5");
        assert_eq!(js_number(12_345_f64 / 100.0), "123.45");
        assert_eq!(decimal_text(12_305), "123.05");
    }

    #[test]
    fn documents_are_about_half_a_kilobyte() {
        let order = Order::new(12_345, 3);
        let size = serde_json::to_vec(&order.document()).map_or(0, |it| it.len());
        assert!((400..=600).contains(&size), "{size}");
        assert_eq!(order.ordered_at_iso().len(), 27);
        assert!(order.ordered_at_mysql().ends_with("000"));
    }
}
