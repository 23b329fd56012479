//! `/databases/{db}/stats` and `/collections/stats`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::{blocking, json_value};
use crate::state::AppState;

pub(crate) async fn collection_stats(
    State(state): State<AppState>,
    Path(db): Path<String>,
) -> Result<Response, ApiError> {
    let database = state.database(&db)?;
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

pub(crate) async fn database_stats(
    State(state): State<AppState>,
    Path(db): Path<String>,
) -> Result<Response, ApiError> {
    let database = state.database(&db)?;
    let body = blocking(move || {
        let snapshot = database.snapshot()?;
        let last_etag = snapshot.last_etag()?;
        Ok(json!({
            "DatabaseId": database.id(),
            "DatabaseChangeVector": if last_etag == 0 { String::new() } else { snapshot.change_vector(last_etag) },
            "CountOfDocuments": snapshot.count_documents(None)?,
            "CountOfTombstones": snapshot.count_tombstones(None)?,
            "CountOfIndexes": 0,
            "CountOfConflicts": 0,
            "LastDocEtag": last_etag,
            "Is64Bit": true,
            "Pager": "redb",
            "Indexes": [],
        }))
    })
    .await?;
    Ok(json_value(StatusCode::OK, &body))
}
