//! `/databases/{db}/stats` and `/collections/stats`.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::extract::Db;
use crate::http::{blocking, json_value};

pub(crate) async fn collection_stats(Db(database): Db) -> Result<Response, ApiError> {
    let body = blocking(move || {
        let snapshot = database.snapshot()?;
        let mut collections = Map::new();
        for it in snapshot.collections()? {
            collections.insert(it.name, Value::from(it.count));
        }
        Ok(json!({
            "CountOfDocuments": snapshot.count_documents(None)?,
            "CountOfConflicts": 0,
            "Collections": collections,
        }))
    })
    .await?;
    Ok(json_value(StatusCode::OK, &body))
}

/// `GET /stats`: RavenDB's `DatabaseStatistics`, every field the official clients read. Counts
/// of what Corvid does not have (indexes, conflicts, revisions, counters, time series) are
/// truly zero; `SizeOnDisk` is the database's redb file.
pub(crate) async fn database_stats(Db(database): Db) -> Result<Response, ApiError> {
    let body = blocking(move || {
        let snapshot = database.snapshot()?;
        let last_etag = snapshot.last_etag()?;
        let size_on_disk = std::fs::metadata(database.path())
            .map_err(|error| {
                ApiError::internal(format!(
                    "cannot read the size of {}: {error}",
                    database.path().display()
                ))
            })?
            .len();
        Ok(json!({
            "DatabaseId": database.id(),
            "DatabaseChangeVector": if last_etag == 0 { String::new() } else { snapshot.change_vector(last_etag) },
            "CountOfDocuments": snapshot.count_documents(None)?,
            "CountOfTombstones": snapshot.count_tombstones(None)?,
            "CountOfIndexes": 0,
            "CountOfConflicts": 0,
            "CountOfDocumentsConflicts": 0,
            "CountOfRevisionDocuments": 0,
            "CountOfCounterEntries": 0,
            "CountOfTimeSeriesSegments": 0,
            "LastDocEtag": last_etag,
            "LastDatabaseEtag": last_etag,
            "LastIndexingTime": null,
            "Is64Bit": cfg!(target_pointer_width = "64"),
            "Pager": "redb",
            "SizeOnDisk": size_json(size_on_disk),
            // Corvid keeps no scratch files beside the database.
            "TempBuffersSizeOnDisk": size_json(0),
            "Indexes": [],
        }))
    })
    .await?;
    Ok(json_value(StatusCode::OK, &body))
}

/// RavenDB's `Size`: bytes and the human-readable form of its `Sizes.Humane`.
fn size_json(bytes: u64) -> Value {
    json!({"SizeInBytes": bytes, "HumaneSize": humane_size(bytes)})
}

/// `1536` → `1.5 KBytes`, as RavenDB writes sizes (two decimals at most, no trailing zeros).
pub(crate) fn humane_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["Bytes", "KBytes", "MBytes", "GBytes", "TBytes"];
    let mut unit = 0;
    // Lossy on purpose: a display value.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::humane_size;

    #[test]
    fn humane_size_is_ravendbs_format() {
        assert_eq!(humane_size(0), "0 Bytes");
        assert_eq!(humane_size(1023), "1023 Bytes");
        assert_eq!(humane_size(1024), "1 KBytes");
        assert_eq!(humane_size(1536), "1.5 KBytes");
        assert_eq!(humane_size(73_728), "72 KBytes");
        assert_eq!(humane_size(20_594_688), "19.64 MBytes");
        assert_eq!(humane_size(50_331_648), "48 MBytes");
        assert_eq!(humane_size(3 * 1024 * 1024 * 1024), "3 GBytes");
    }
}
