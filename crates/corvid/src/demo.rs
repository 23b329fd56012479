//! `corvid demo`: Corvid's main job on embedded defaults, with nothing else installed.
//!
//! Starts the server on a demo data directory, generates a sample shop (`sample.rs`), and sets
//! up — over the same HTTP API a user would call — two ETL tasks: a Raven ETL that publishes
//! what the Shipping service needs into a second database, and a SQL ETL that keeps `Orders`
//! and `OrderLines` tables in a SQLite file. It shows a progress bar per ETL process while
//! they catch up, prints where to look, and keeps serving until Ctrl-C.

mod sample;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use corvid_client::{Client, ClientOptions, Command, create_database};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};

pub use sample::SampleSize;

/// A file in the data directory that says `corvid demo` made it (so it may be recreated).
const MARKER: &str = "corvid-demo.marker";
const SOURCE: &str = "shop";
const SHIPPING: &str = "shipping";

/// What Shipping needs to know about an order that has not shipped yet — and nothing else.
const SHIPPING_ORDERS_SCRIPT: &str = r#"// Shipping sees orders that still have to go out; once shipped, they leave its database.
if (this.ShippedAt) return;
var company = load(this.Company);
loadToShipments({
    Order: id(this),
    Customer: company ? company.Name : null,
    Phone: company ? company.Phone : null,
    ShipTo: this.ShipTo,
    ShipVia: this.ShipVia,
    RequiredBy: this.RequireAt,
    Items: this.Lines.map(function (line) {
        return { Product: line.ProductName, Quantity: line.Quantity };
    })
});"#;

/// Customers as Shipping's address book, with the company logo when there is one.
const SHIPPING_CUSTOMERS_SCRIPT: &str = r#"var customer = loadToCustomers({
    Name: this.Name,
    Contact: this.Contact.Name,
    Phone: this.Phone,
    Address: this.Address
});
if (hasAttachment('logo.svg')) {
    customer.addAttachment(loadAttachment('logo.svg'));
}"#;

/// Orders reshaped into reporting tables.
const REPORTING_SCRIPT: &str = r#"var total = 0;
for (var i = 0; i < this.Lines.length; i++) {
    var line = this.Lines[i];
    var amount = line.Quantity * line.PricePerUnit * (1 - line.Discount);
    total += amount;
    loadToOrderLines({
        Product: line.ProductName,
        Quantity: line.Quantity,
        PricePerUnit: line.PricePerUnit,
        Discount: line.Discount,
        Amount: Math.round(amount * 100) / 100
    });
}
loadToOrders({
    Company: this.Company,
    OrderedAt: this.OrderedAt,
    ShippedAt: this.ShippedAt,
    Freight: this.Freight,
    Total: Math.round(total * 100) / 100,
    City: this.ShipTo.City,
    Country: this.ShipTo.Country
});"#;

const REPORTING_TABLES: &str = r#"
CREATE TABLE Orders (
    Id TEXT NOT NULL PRIMARY KEY,
    Company TEXT, OrderedAt TEXT, ShippedAt TEXT, Freight NUMERIC, Total NUMERIC,
    City TEXT, Country TEXT
);
CREATE TABLE OrderLines (
    OrderId TEXT NOT NULL REFERENCES Orders(Id),
    Product TEXT, Quantity INTEGER, PricePerUnit NUMERIC, Discount REAL, Amount NUMERIC
);
CREATE INDEX OrderLines_OrderId ON OrderLines(OrderId);
"#;

/// Prepares the demo data directory: created when missing, recreated when an earlier demo
/// made it, refused when it holds anything else. Returns what it did, for the user.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<String> {
    let shown = dir.display();
    let note = if !dir.exists() {
        format!("Creating the demo data directory {shown}")
    } else if dir.join(MARKER).exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("failed to remove the previous demo data in {shown}"))?;
        format!("Recreating the demo data directory {shown} (the previous demo's data is replaced)")
    } else if dir.read_dir()?.next().is_none() {
        format!("Using the empty directory {shown} for the demo")
    } else {
        bail!(
            "refusing to use {shown} for the demo: it exists and was not made by `corvid demo`; pass another --data-dir"
        );
    };
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {shown}"))?;
    std::fs::write(
        dir.join(MARKER),
        "Made by `corvid demo`; the next `corvid demo` with this --data-dir replaces this directory.\n",
    )?;
    Ok(note)
}

/// Sets everything up against the running server at `url`, shows progress until the ETL
/// caught up, and prints the tour.
pub async fn run(url: String, data_dir: PathBuf, size: SampleSize) -> anyhow::Result<()> {
    let started = Instant::now();
    println!("Open {url}/studio to see the tasks (the Studio, in your browser)");
    let options = ClientOptions {
        request_timeout: Duration::from_secs(60),
        ..ClientOptions::default()
    };
    for database in [SOURCE, SHIPPING] {
        create_database(&url, database, &options)
            .await
            .with_context(|| format!("failed to create database {database}"))?;
    }
    let client = Client::new(std::slice::from_ref(&url), SOURCE, options)?;
    let documents = sample::documents(size);
    let n_documents = documents.len();
    // The tour ships an order that has not shipped yet.
    let unshipped = documents
        .iter()
        .find(|it| it.id.starts_with("orders/") && it.document["ShippedAt"].is_null())
        .map_or_else(|| "orders/1-A".to_owned(), |it| it.id.clone());
    for chunk in documents.chunks(1000) {
        let commands: Vec<Command> = chunk
            .iter()
            .map(|it| Command::Put {
                id: it.id.clone(),
                document: it.document.clone(),
                change_vector: None,
            })
            .collect();
        client.bulk_docs(&commands).await?;
    }
    for attachment in sample::attachments(size) {
        client
            .put_attachment(
                &attachment.id,
                &attachment.name,
                &attachment.content_type,
                Bytes::from(attachment.content),
            )
            .await?;
    }
    println!(
        "Stored {n_documents} sample documents in database `{SOURCE}` ({} orders, {} companies, {} products, {} employees) and 8 attachments",
        size.orders, size.companies, size.products, size.employees
    );

    // In the SQLite directory (`corvid serve` refuses SQLite files outside it).
    let sqlite = std::path::absolute(data_dir.join("sqlite").join("reporting.db"))?;
    create_reporting_tables(&sqlite)?;
    define_tasks(&url, &sqlite).await?;
    println!(
        "Defined two ETL tasks: `shipping` (Raven ETL into database `{SHIPPING}`) and `reporting` (SQL ETL into {})",
        sqlite.display()
    );

    let etl_started = Instant::now();
    let moved = watch_progress(&url).await?;
    let seconds = etl_started.elapsed().as_secs_f64();
    println!(
        "ETL caught up: {moved} documents processed in {seconds:.1} s ({:.0} docs/s); ready {:.1} s after start",
        moved as f64 / seconds.max(0.001),
        started.elapsed().as_secs_f64()
    );
    print_tour(&url, &sqlite, &unshipped);
    Ok(())
}

fn create_reporting_tables(path: &Path) -> anyhow::Result<()> {
    let connection = rusqlite::Connection::open(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    connection.execute_batch(REPORTING_TABLES)?;
    Ok(())
}

async fn put(url: &str, body: Value) -> anyhow::Result<Value> {
    let response = corvid_client::http_client_builder()
        .build()?
        .put(url)
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("PUT {url} failed with {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn define_tasks(url: &str, sqlite: &Path) -> anyhow::Result<()> {
    let admin = format!("{url}/databases/{SOURCE}/admin");
    put(
        &format!("{admin}/connection-strings"),
        json!({"Type": "Raven", "Name": "shipping-service", "Database": SHIPPING,
               "TopologyDiscoveryUrls": [url]}),
    )
    .await?;
    put(
        &format!("{admin}/connection-strings"),
        json!({"Type": "Sql", "Name": "reporting-db", "FactoryName": "Microsoft.Data.Sqlite",
               "ConnectionString": format!("Data Source={}", sqlite.display())}),
    )
    .await?;
    put(
        &format!("{admin}/etl"),
        json!({"EtlType": "Raven", "Name": "shipping", "ConnectionStringName": "shipping-service",
               "Transforms": [
                   {"Name": "orders", "Collections": ["Orders"], "Script": SHIPPING_ORDERS_SCRIPT},
                   {"Name": "customers", "Collections": ["Companies"], "Script": SHIPPING_CUSTOMERS_SCRIPT},
               ]}),
    )
    .await?;
    put(
        &format!("{admin}/etl"),
        json!({"EtlType": "Sql", "Name": "reporting", "ConnectionStringName": "reporting-db",
               "SqlTables": [
                   {"TableName": "Orders", "DocumentIdColumn": "Id"},
                   {"TableName": "OrderLines", "DocumentIdColumn": "OrderId"},
               ],
               "Transforms": [{"Name": "orders", "Collections": ["Orders"], "Script": REPORTING_SCRIPT}]}),
    )
    .await?;
    Ok(())
}

/// One bar per ETL process from `GET /etl/progress`, until every process completed. Returns
/// how many documents the processes went through.
async fn watch_progress(url: &str) -> anyhow::Result<u64> {
    let bars = MultiProgress::new();
    let style =
        ProgressStyle::with_template("{prefix:>20} [{bar:30}] {pos:>6}/{len:6} docs  {msg}")?
            .progress_chars("=> ");
    let mut shown: Vec<(String, ProgressBar)> = Vec::new();
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    let http = corvid_client::http_client_builder().build()?;
    loop {
        let progress: Value = http
            .get(format!("{url}/databases/{SOURCE}/etl/progress"))
            .send()
            .await?
            .json()
            .await?;
        let mut all_done = true;
        let mut processed = 0;
        for task in progress["Results"].as_array().into_iter().flatten() {
            for process in task["ProcessesProgress"].as_array().into_iter().flatten() {
                let name = format!(
                    "{}/{}",
                    task["TaskName"].as_str().unwrap_or("?"),
                    process["TransformationName"].as_str().unwrap_or("?")
                );
                let total = process["TotalNumberOfDocuments"].as_u64().unwrap_or(0);
                let left = process["NumberOfDocumentsToProcess"].as_u64().unwrap_or(0);
                let done = process["Completed"].as_bool().unwrap_or(false);
                all_done &= done;
                processed += total - left.min(total);
                let bar = match shown.iter().find(|(it, _)| *it == name) {
                    Some((_, bar)) => bar.clone(),
                    None => {
                        let bar = bars.add(ProgressBar::new(total).with_style(style.clone()));
                        bar.set_prefix(name.clone());
                        shown.push((name, bar.clone()));
                        bar
                    }
                };
                bar.set_length(total);
                let position = total - left.min(total);
                bar.set_position(position);
                if done && !bar.is_finished() {
                    bar.finish_with_message("caught up");
                } else if !done {
                    let rate = position as f64 / started.elapsed().as_secs_f64().max(0.001);
                    bar.set_message(format!("{rate:>9.0} docs/s"));
                }
            }
        }
        if all_done && !shown.is_empty() {
            // Without a terminal the bars are not drawn: say the same in plain lines.
            if bars.is_hidden() {
                for (name, bar) in &shown {
                    println!(
                        "  {name}: {}/{} documents",
                        bar.position(),
                        bar.length().unwrap_or(0)
                    );
                }
            }
            return Ok(processed);
        }
        if Instant::now() > deadline {
            bail!(
                "the ETL tasks did not catch up within 10 minutes; see {url}/databases/{SOURCE}/etl/stats"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_tour(url: &str, sqlite: &Path, order: &str) {
    let db = sqlite.display();
    println!(
        r#"
Corvid demo is ready.

Look around:
  the ETL tasks, live       {url}/studio/index.html#databases/tasks/ongoingTasks?database={SOURCE}
  the source order          {url}/databases/{SOURCE}/docs?id=orders/1-A
  what Shipping received    {url}/databases/{SHIPPING}/docs?startsWith=orders/
  Shipping's customers      {url}/databases/{SHIPPING}/collections/stats
  ETL progress and stats    {url}/databases/{SOURCE}/etl/progress
                            {url}/databases/{SOURCE}/etl/stats
  the reporting tables      sqlite3 {db} "SELECT Country, COUNT(*), ROUND(SUM(Total), 2) FROM Orders GROUP BY Country ORDER BY 3 DESC"

Change a document and watch it arrive. {order} has not shipped, so Shipping has it:
  curl -s '{url}/databases/{SHIPPING}/docs?startsWith={order}/'
Ship it: it leaves Shipping's database, and its row in the Orders table gets a ShippedAt.
  curl -s '{url}/databases/{SOURCE}/docs?id={order}' | python3 -c 'import json,sys; d=json.load(sys.stdin)["Results"][0]; d["ShippedAt"]="2026-01-01T10:00:00.0000000Z"; print(json.dumps(d))' > /tmp/order.json
  curl -s -X PUT '{url}/databases/{SOURCE}/docs?id={order}' --json @/tmp/order.json
  curl -s '{url}/databases/{SHIPPING}/docs?startsWith={order}/'
  sqlite3 {db} "SELECT Id, ShippedAt FROM Orders WHERE Id = '{order}'"

Serving on {url} until Ctrl-C."#
    );
}
