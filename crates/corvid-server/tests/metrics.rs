//! `/metrics`, `/setup/alive` and `/health/ready` on a real server: the page's values are
//! checked to move as documents are written and a Raven ETL task (to a second database of the same
//! server) runs, fails on a document, falls behind while disabled and catches up.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use corvid_client::Command;
use serde_json::json;

use common::live::{Server, database, eventually, send, set_task_disabled, start};

/// One sample line: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A scraped page: the text and its samples. The format itself is checked by the Python
/// suite with Prometheus' own parser (`tests/python/test_metrics.py`); here the lines are read
/// strictly enough to find values: every line is a `# HELP`, a `# TYPE` or a sample.
struct Page {
    text: String,
    samples: Vec<Sample>,
}

async fn scrape(server: &Server) -> Page {
    let response = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let samples = text
        .lines()
        .filter(|line| !line.starts_with("# HELP ") && !line.starts_with("# TYPE "))
        .map(|line| parse_sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}")))
        .collect();
    Page { text, samples }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    let Some((name, mut rest)) = series.split_once('{') else {
        return Some(Sample {
            name: series.to_owned(),
            labels: Vec::new(),
            value,
        });
    };
    let mut labels = Vec::new();
    loop {
        let (label, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (idx, '"') => break idx,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, other) => value.push(other),
            }
        };
        labels.push((label.to_owned(), value));
        rest = &after[end + 1..];
        match rest.strip_prefix(',') {
            Some(more) => rest = more,
            None => break,
        }
    }
    (rest == "}").then(|| Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

impl Page {
    fn matching<'a>(
        &'a self,
        metric: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |it| {
            it.name == metric
                && labels.iter().all(|(k, v)| {
                    it.labels
                        .iter()
                        .any(|(name, value)| name == k && value == v)
                })
        })
    }

    /// The value of the one sample of `metric` with these labels (among others).
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = self.matching(metric, labels).map(|it| it.value).collect();
        assert!(found.len() <= 1, "{metric} {labels:?}: {found:?}");
        found.first().copied()
    }

    fn get(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(metric, labels)
            .unwrap_or_else(|| panic!("no {metric} {labels:?} in\n{}", self.text))
    }

    /// The count of the one histogram series of `metric` with these labels, checked against
    /// its `+Inf` bucket; the buckets are cumulative.
    fn histogram_count(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let count = self.get(&format!("{metric}_count"), labels);
        let buckets: Vec<f64> = self
            .matching(&format!("{metric}_bucket"), labels)
            .map(|it| it.value)
            .collect();
        assert!(buckets.windows(2).all(|it| it[0] <= it[1]), "{buckets:?}");
        let mut inf = labels.to_vec();
        inf.push(("le", "+Inf"));
        assert_eq!(self.get(&format!("{metric}_bucket"), &inf), count);
        count
    }
}

const TASK: [(&str, &str); 4] = [
    ("database", "src"),
    ("task", "to-dst"),
    ("transformation", "users"),
    ("destination_type", "Raven"),
];

fn with<'a>(extra: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
    let mut labels = TASK.to_vec();
    labels.push(extra);
    labels
}

async fn put_users(client: &corvid_client::Client, from: u32, to: u32, bad: bool) {
    let commands: Vec<Command> = (from..to)
        .map(|idx| Command::Put {
            id: format!("users/{idx}"),
            document: json!({"Name": format!("u{idx}"), "Bad": bad, "@metadata": {"@collection": "Users"}}),
            change_vector: None,
        })
        .collect();
    client.bulk_docs(&commands).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_documents_are_written_and_etl_runs() {
    let server = start().await;
    let source = database(&server, "src").await;
    database(&server, "dst").await;

    let alive = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .get(format!("{}/setup/alive", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), 204);
    let ready = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .get(format!("{}/health/ready", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let page = scrape(&server).await;
    assert_eq!(
        page.get("corvid_database_documents", &[("database", "src")]),
        0.0
    );
    assert_eq!(page.get("corvid_ready", &[]), 1.0);
    assert!(page.get("process_resident_memory_bytes", &[]) > 1e6);
    assert!(page.get("process_open_fds", &[]) >= 3.0);
    // The scrape's own connection is open while the page is written.
    assert!(page.get("corvid_open_connections", &[("direction", "inbound")]) >= 1.0);

    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        Some(json!({"Type": "Raven", "Name": "dst", "Database": "dst", "TopologyDiscoveryUrls": [server.url]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(json!({
            "EtlType": "Raven", "Name": "to-dst", "ConnectionStringName": "dst", "Disabled": false,
            "Transforms": [{"Name": "users", "Collections": ["Users"], "ApplyToAllDocuments": false,
                            "Disabled": false,
                            "Script": "if (this.Bad) throw new Error('bad'); if (this.Name === 'u1') return; loadToUsers(this);"}],
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let task_id = body["TaskId"].as_u64().unwrap();

    put_users(&source, 0, 50, false).await;
    eventually("the 50 documents are loaded", || async {
        let page = scrape(&server).await;
        page.value("corvid_etl_extracted_items_total", &TASK) == Some(50.0)
            && page.value("corvid_etl_lag_items", &TASK) == Some(0.0)
    })
    .await;
    let page = scrape(&server).await;
    assert_eq!(page.get("corvid_etl_transformed_items_total", &TASK), 50.0);
    assert_eq!(page.get("corvid_etl_loaded_items_total", &TASK), 49.0);
    assert_eq!(page.get("corvid_etl_filtered_items_total", &TASK), 1.0);
    assert_eq!(
        page.get("corvid_etl_transformation_errors_total", &TASK),
        0.0
    );
    assert_eq!(page.get("corvid_etl_lag_seconds", &TASK), 0.0);
    assert_eq!(
        page.get("corvid_etl_state", &with(("state", "Active"))),
        1.0
    );
    assert_eq!(page.get("corvid_etl_state", &with(("state", "Error"))), 0.0);
    for class in ["Reconnect", "BadItem", "Configuration"] {
        assert_eq!(
            page.get("corvid_etl_load_errors_total", &with(("class", class))),
            0.0
        );
    }
    for phase in ["extract", "transform", "load"] {
        assert!(
            page.histogram_count("corvid_etl_batch_duration_seconds", &with(("phase", phase)))
                >= 1.0,
            "{phase}"
        );
    }
    assert_eq!(
        page.get("corvid_database_documents", &[("database", "src")]),
        50.0
    );
    assert_eq!(
        page.get("corvid_database_documents", &[("database", "dst")]),
        49.0
    );
    assert!(page.get("corvid_database_writes_total", &[("database", "src")]) >= 50.0);
    let bulk_docs = [
        ("database", "src"),
        ("method", "POST"),
        ("route", "/databases/{db}/bulk_docs"),
        ("status", "2xx"),
    ];
    assert_eq!(
        page.histogram_count("corvid_http_request_duration_seconds", &bulk_docs),
        1.0
    );
    // The ETL's own bulk_docs into `dst` is a request too.
    assert!(
        page.histogram_count(
            "corvid_http_request_duration_seconds",
            &[("database", "dst"), ("route", "/databases/{db}/bulk_docs")]
        ) >= 1.0
    );

    // A document the script throws on: an error, counted, and the others still go.
    put_users(&source, 50, 51, true).await;
    put_users(&source, 51, 52, false).await;
    eventually("the failed transformation is counted", || async {
        let page = scrape(&server).await;
        page.value("corvid_etl_transformation_errors_total", &TASK) == Some(1.0)
            && page.value("corvid_etl_extracted_items_total", &TASK) == Some(52.0)
    })
    .await;
    let page = scrape(&server).await;
    assert_eq!(page.get("corvid_etl_transformed_items_total", &TASK), 51.0);
    assert_eq!(page.get("corvid_etl_loaded_items_total", &TASK), 50.0);

    // Disabled, the task falls behind: lag in items and in seconds.
    set_task_disabled(&server, "src", task_id, "RavenEtl", true).await;
    put_users(&source, 100, 110, false).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let page = scrape(&server).await;
    assert_eq!(page.get("corvid_etl_lag_items", &TASK), 10.0);
    assert!(page.get("corvid_etl_lag_seconds", &TASK) > 0.0);
    assert_eq!(
        page.get("corvid_etl_state", &with(("state", "Disabled"))),
        1.0
    );
    assert_eq!(
        page.get("corvid_etl_state", &with(("state", "Active"))),
        0.0
    );

    set_task_disabled(&server, "src", task_id, "RavenEtl", false).await;
    eventually("the task catches up", || async {
        let page = scrape(&server).await;
        page.value("corvid_etl_lag_items", &TASK) == Some(0.0)
            && page.value("corvid_database_documents", &[("database", "dst")]) == Some(60.0)
    })
    .await;
    let page = scrape(&server).await;
    assert_eq!(page.get("corvid_etl_lag_seconds", &TASK), 0.0);
    assert_eq!(
        page.get("corvid_etl_state", &with(("state", "Active"))),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_errors_are_counted_by_class() {
    let server = start().await;
    let source = database(&server, "src").await;
    // The destination database does not exist.
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        Some(json!({"Type": "Raven", "Name": "dst", "Database": "missing", "TopologyDiscoveryUrls": [server.url]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(json!({
            "EtlType": "Raven", "Name": "to-dst", "ConnectionStringName": "dst", "Disabled": false,
            "Transforms": [{"Name": "users", "Collections": ["Users"], "ApplyToAllDocuments": false,
                            "Disabled": false, "Script": "loadToUsers(this);"}],
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    put_users(&source, 0, 5, false).await;
    eventually("the failed loads are counted", || async {
        let page = scrape(&server).await;
        let failed: f64 = ["Reconnect", "BadItem", "Configuration"]
            .iter()
            .filter_map(|class| page.value("corvid_etl_load_errors_total", &with(("class", class))))
            .sum();
        failed >= 1.0 && page.value("corvid_etl_state", &with(("state", "Reconnect"))) == Some(1.0)
    })
    .await;
    let page = scrape(&server).await;
    assert_eq!(page.get("corvid_etl_lag_items", &TASK), 5.0);
    assert!(page.get("corvid_etl_lag_seconds", &TASK) > 0.0);
    assert_eq!(page.get("corvid_etl_extracted_items_total", &TASK), 0.0);
    // A failed load is timed too.
    assert!(
        page.histogram_count(
            "corvid_etl_batch_duration_seconds",
            &with(("phase", "load"))
        ) >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_labels_are_route_templates_never_raw_paths() {
    let server = start().await;
    database(&server, "src").await;
    for name in ["nosuchdb1", "nosuchdb2"] {
        let (status, _) = send(
            "GET",
            &format!("{}/databases/{name}/docs?id=users/1", server.url),
            None,
        )
        .await;
        assert_eq!(status, 503);
    }
    let (status, _) = send("GET", &format!("{}/no/such/route/42", server.url), None).await;
    assert_eq!(status, 400);
    let (status, _) = send("PURGE", &format!("{}/databases/src/docs", server.url), None).await;
    assert_eq!(status, 400);
    let (status, _) = send(
        "GET",
        &format!("{}/databases/SRC/docs?id=users/1", server.url),
        None,
    )
    .await;
    assert_eq!(status, 404);

    let page = scrape(&server).await;
    assert!(!page.text.contains("nosuchdb"), "{}", page.text);
    assert!(!page.text.contains("/no/such"), "{}", page.text);
    assert!(!page.text.contains("PURGE"), "{}", page.text);
    let missing = [
        ("database", ""),
        ("method", "GET"),
        ("route", "/databases/{db}/docs"),
        ("status", "5xx"),
    ];
    assert_eq!(
        page.histogram_count("corvid_http_request_duration_seconds", &missing),
        2.0
    );
    let unmatched = [("route", ""), ("method", "GET"), ("status", "4xx")];
    assert_eq!(
        page.histogram_count("corvid_http_request_duration_seconds", &unmatched),
        1.0
    );
    // Database names are the database's own spelling, whatever the URL's case.
    let found = [
        ("database", "src"),
        ("method", "GET"),
        ("route", "/databases/{db}/docs"),
        ("status", "4xx"),
    ];
    assert_eq!(
        page.histogram_count("corvid_http_request_duration_seconds", &found),
        1.0
    );
}

async fn ready_status(router: &axum::Router) -> u16 {
    use tower::ServiceExt as _;
    let request = axum::http::Request::get("/health/ready")
        .body(axum::body::Body::empty())
        .unwrap();
    router
        .clone()
        .oneshot(request)
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn not_ready_once_shutting_down_or_a_database_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = std::sync::Arc::new(corvid_store::Storage::open(dir.path()).unwrap());
    let database = storage.create_database("db").unwrap();
    let etl = corvid_etl::EtlManager::new(corvid_etl::EtlOptions::default());
    let state = corvid_server::AppState::new(
        storage.clone(),
        etl,
        corvid_server::ServerOptions::default(),
    );
    let router = corvid_server::app(state.clone());
    assert_eq!(ready_status(&router).await, 200);
    database.close();
    assert_eq!(ready_status(&router).await, 503);

    let other = tempfile::tempdir().unwrap();
    let state = corvid_server::AppState::new(
        std::sync::Arc::new(corvid_store::Storage::open(other.path()).unwrap()),
        corvid_etl::EtlManager::new(corvid_etl::EtlOptions::default()),
        corvid_server::ServerOptions::default(),
    );
    let router = corvid_server::app(state.clone());
    assert_eq!(ready_status(&router).await, 200);
    state.begin_shutdown();
    assert_eq!(ready_status(&router).await, 503);
}
