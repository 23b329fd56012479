//! One scrape: reads what the ETL processes, the databases and the process already keep and
//! writes it as a page. Nothing here counts anything itself: the ETL figures are the
//! processes' own [`corvid_etl::ProcessStats`] (the ones `/etl/stats` and `/etl/performance`
//! show), the lag is what `/etl/progress` computes, the database figures come from the store.

use corvid_etl::{EtlType, Histogram, LoadErrorClass, ProcessStats, ProcessStatus};
use corvid_store::Timestamp;

use crate::error::ApiError;
use crate::metrics::exposition::{Exposition, Kind};
use crate::metrics::process::read_process;
use crate::state::AppState;

/// Writes the whole page. Reads storage: run it on the blocking pool.
pub(crate) fn scrape(state: &AppState) -> Result<String, ApiError> {
    let mut databases = Vec::new();
    let mut processes = Vec::new();
    let now = Timestamp::now();
    let mut all = state.storage().databases();
    all.sort_by(|a, b| a.name().cmp(b.name()));
    for database in all {
        let snapshot = database.snapshot().map_err(ApiError::internal)?;
        databases.push(DatabaseRow {
            name: database.name().to_owned(),
            documents: snapshot.count_documents(None).map_err(ApiError::internal)?,
            tombstones: snapshot
                .count_tombstones(None)
                .map_err(ApiError::internal)?,
            writes: database.last_etag(),
        });
        drop(snapshot);
        let etl = state.etl();
        for task in etl.tasks(&database).map_err(ApiError::internal)? {
            for process in task.processes {
                let transform = task
                    .config
                    .transforms
                    .iter()
                    .find(|it| it.name.eq_ignore_ascii_case(&process.transform_name));
                let collections = transform
                    .filter(|it| !it.apply_to_all_documents)
                    .map(|it| it.collections.as_slice());
                let (docs_left, _, tombstones_left, _) = etl
                    .remaining(
                        &database,
                        &task.config.name,
                        collections,
                        &process.transform_name,
                    )
                    .map_err(ApiError::internal)?;
                let oldest = etl
                    .oldest_unprocessed(
                        &database,
                        &task.config.name,
                        collections,
                        &process.transform_name,
                    )
                    .map_err(ApiError::internal)?;
                processes.push(ProcessRow {
                    database: database.name().to_owned(),
                    task: task.config.name.clone(),
                    transformation: process.transform_name,
                    destination_type: match task.config.etl_type() {
                        EtlType::Raven => "Raven",
                        EtlType::Sql => "Sql",
                        EtlType::Queue => "Queue",
                        EtlType::Olap => "Olap",
                    },
                    disabled: process.disabled,
                    lag_items: docs_left + tombstones_left,
                    lag_seconds: oldest
                        .map(|it| (now.0 - it.0).max(0) as f64 / 1e7)
                        .unwrap_or(0.0),
                    stats: process.stats,
                });
            }
        }
    }
    let mut page = Exposition::default();
    write_build_info(&mut page);
    write_etl(&mut page, &processes);
    write_databases(&mut page, &databases);
    state.request_metrics().write(&mut page);
    write_process(&mut page, state);
    Ok(page.finish())
}

/// A family's name, help and how to read its value.
type Family<T> = (&'static str, &'static str, fn(&T) -> u64);

struct DatabaseRow {
    name: String,
    documents: u64,
    tombstones: u64,
    writes: u64,
}

struct ProcessRow {
    database: String,
    task: String,
    transformation: String,
    destination_type: &'static str,
    disabled: bool,
    lag_items: u64,
    lag_seconds: f64,
    stats: ProcessStats,
}

impl ProcessRow {
    fn labels(&self) -> [(&str, &str); 4] {
        [
            ("database", self.database.as_str()),
            ("task", self.task.as_str()),
            ("transformation", self.transformation.as_str()),
            ("destination_type", self.destination_type),
        ]
    }

    fn state(&self) -> &'static str {
        match &self.stats.status {
            _ if self.disabled => "Disabled",
            ProcessStatus::Active => "Active",
            ProcessStatus::Reconnect => "Reconnect",
            ProcessStatus::Error(_) => "Error",
        }
    }
}

fn write_build_info(page: &mut Exposition) {
    page.family(
        "corvid_build_info",
        Kind::Gauge,
        "Always 1; the version of the running server.",
    );
    page.sample_int(
        "corvid_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
}

/// A counter or gauge family with one sample per process.
fn per_process(
    page: &mut Exposition,
    rows: &[ProcessRow],
    name: &str,
    kind: Kind,
    help: &str,
    value: impl Fn(&ProcessRow) -> u64,
) {
    page.family(name, kind, help);
    for row in rows {
        page.sample_int(name, &row.labels(), value(row));
    }
}

fn write_etl(page: &mut Exposition, rows: &[ProcessRow]) {
    per_process(
        page,
        rows,
        "corvid_etl_lag_items",
        Kind::Gauge,
        "Documents and tombstones the transformation has still to process.",
        |it| it.lag_items,
    );
    page.family(
        "corvid_etl_lag_seconds",
        Kind::Gauge,
        "Age of the oldest change the transformation has still to process (0 when caught up).",
    );
    for row in rows {
        page.sample("corvid_etl_lag_seconds", &row.labels(), row.lag_seconds);
    }
    per_process(
        page,
        rows,
        "corvid_etl_last_processed_etag",
        Kind::Gauge,
        "The etag up to which the transformation's changes are delivered.",
        |it| it.stats.last_processed_etag,
    );
    let counters: [Family<ProcessStats>; 7] = [
        (
            "corvid_etl_extracted_items_total",
            "Documents and tombstones read in delivered batches.",
            |it| it.n_extracted,
        ),
        (
            "corvid_etl_transformed_items_total",
            "Extracted items the script ran on without error (filtered ones included).",
            |it| it.n_transformed,
        ),
        (
            "corvid_etl_loaded_items_total",
            "Documents (Raven) or rows (SQL) the script produced and the destination acknowledged.",
            |it| it.n_loaded,
        ),
        (
            "corvid_etl_filtered_items_total",
            "Extracted items that produced nothing to load.",
            |it| it.n_filtered,
        ),
        (
            "corvid_etl_transformation_errors_total",
            "Documents skipped because the script failed on them.",
            |it| it.n_transformation_errors,
        ),
        (
            "corvid_etl_skipped_items_total",
            "Documents the destination refused on their own, left out of delivered batches.",
            |it| it.n_skipped_items,
        ),
        ("corvid_etl_batches_total", "Batches delivered.", |it| {
            it.n_batches
        }),
    ];
    for (name, help, value) in counters {
        per_process(page, rows, name, Kind::Counter, help, |it| value(&it.stats));
    }
    page.family(
        "corvid_etl_load_errors_total",
        Kind::Counter,
        "Failed loads by class: Reconnect (retried after a pause), BadItem, Configuration.",
    );
    for row in rows {
        for class in LoadErrorClass::ALL {
            let [a, b, c, d] = row.labels();
            page.sample_int(
                "corvid_etl_load_errors_total",
                &[a, b, c, d, ("class", class.name())],
                row.stats.load_errors(class),
            );
        }
    }
    page.family(
        "corvid_etl_batch_duration_seconds",
        Kind::Histogram,
        "Time each batch spent in a phase: extract (read the changes), transform (script and encoding), load (until the destination answered).",
    );
    for row in rows {
        let phases: [(&str, &Histogram); 3] = [
            ("extract", &row.stats.extract_seconds),
            ("transform", &row.stats.transform_seconds),
            ("load", &row.stats.load_seconds),
        ];
        for (phase, histogram) in phases {
            let [a, b, c, d] = row.labels();
            page.histogram(
                "corvid_etl_batch_duration_seconds",
                &[a, b, c, d, ("phase", phase)],
                histogram,
            );
        }
    }
    page.family(
        "corvid_etl_state",
        Kind::Gauge,
        "1 for the state the transformation is in (Active, Reconnect, Error, Disabled), 0 for the others.",
    );
    for row in rows {
        let current = row.state();
        for state in ["Active", "Reconnect", "Error", "Disabled"] {
            let [a, b, c, d] = row.labels();
            page.sample_int(
                "corvid_etl_state",
                &[a, b, c, d, ("state", state)],
                u64::from(state == current),
            );
        }
    }
}

fn write_databases(page: &mut Exposition, rows: &[DatabaseRow]) {
    let families: [(Kind, Family<DatabaseRow>); 3] = [
        (
            Kind::Gauge,
            (
                "corvid_database_documents",
                "Documents in the database.",
                |it| it.documents,
            ),
        ),
        (
            Kind::Gauge,
            (
                "corvid_database_tombstones",
                "Tombstones of deleted documents not yet purged.",
                |it| it.tombstones,
            ),
        ),
        (
            Kind::Counter,
            (
                "corvid_database_writes_total",
                "Document puts and deletes committed since the database was created (its last etag).",
                |it| it.writes,
            ),
        ),
    ];
    for (kind, (name, help, value)) in families {
        page.family(name, kind, help);
        for row in rows {
            page.sample_int(name, &[("database", row.name.as_str())], value(row));
        }
    }
}

fn write_process(page: &mut Exposition, state: &AppState) {
    let figures = read_process();
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            figures.resident_memory_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            figures.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            figures.max_fds,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            page.family(name, Kind::Gauge, help);
            page.sample_int(name, &[], value);
        }
    }
    if let Some(connections) = figures.connections {
        page.family(
            "corvid_open_connections",
            Kind::Gauge,
            "Established TCP connections of the process: inbound to a port it listens on, outbound to destinations.",
        );
        page.sample_int(
            "corvid_open_connections",
            &[("direction", "inbound")],
            connections.inbound,
        );
        page.sample_int(
            "corvid_open_connections",
            &[("direction", "outbound")],
            connections.outbound,
        );
    }
    page.family(
        "corvid_ready",
        Kind::Gauge,
        "1 when the server is ready to serve (what /health/ready answers 200 for), 0 otherwise.",
    );
    page.sample_int("corvid_ready", &[], u64::from(state.is_ready()));
}
