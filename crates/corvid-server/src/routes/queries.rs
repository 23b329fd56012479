//! `/databases/{db}/queries`: collection queries (see `crate::query` for the subset).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use corvid_store::{Document, Timestamp};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::http::{
    QueryParams, blocking, etag_of, json_kind, json_text, not_modified, parse_json_object,
    read_body, with_etag,
};
use crate::query;
use crate::state::AppState;

/// `POST /queries` with `{"Query": "...", "QueryParameters": {...}, "Start", "PageSize"}`.
pub(crate) async fn post_query(
    State(state): State<AppState>,
    Path(db): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(raw.as_deref())?;
    let bytes = read_body(body, state.options().max_body_bytes).await?;
    let body = parse_json_object(&bytes)?;
    let text = match body.get("Query") {
        Some(Value::String(it)) => it.clone(),
        _ => return Err(ApiError::bad_request("`Query` must be a string")),
    };
    let parameters = match body.get("QueryParameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(it)) => it.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`QueryParameters` must be an object, got {}",
                json_kind(other)
            )));
        }
    };
    let start = body
        .get("Start")
        .and_then(Value::as_u64)
        .map(|it| it as usize);
    let page_size = body
        .get("PageSize")
        .and_then(Value::as_u64)
        .map(|it| it as usize);
    run(
        state, &db, text, parameters, start, page_size, &params, &headers,
    )
    .await
}

/// `GET /queries?query=...`.
pub(crate) async fn get_query(
    State(state): State<AppState>,
    Path(db): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(raw.as_deref())?;
    let text = params.required("query")?.to_owned();
    let start = params.number("start")?;
    let page_size = params.number("pageSize")?;
    run(
        state,
        &db,
        text,
        Map::new(),
        start,
        page_size,
        &params,
        &headers,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn run(
    state: AppState,
    db: &str,
    text: String,
    parameters: Map<String, Value>,
    start: Option<usize>,
    page_size: Option<usize>,
    params: &QueryParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let database = state.database(db)?;
    let parsed = query::parse(&text, &parameters).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "Raven.Client.Exceptions.InvalidQueryException",
            format!("{error}; query: {text}"),
        )
    })?;
    let metadata_only = params.flag("metadataOnly");
    let started = Instant::now();
    let last_etag = database.last_etag();
    let etag = etag_of(&[
        &last_etag.to_string(),
        &text,
        &Value::Object(parameters).to_string(),
        &format!("{start:?}/{page_size:?}/{metadata_only}"),
    ]);
    if let Some(response) = not_modified(headers, &etag) {
        return Ok(response);
    }
    // The RQL `limit` is authoritative; `Start`/`PageSize` only mirror it.
    let index_name = match &parsed.collection {
        Some(collection) => format!("collection/{collection}"),
        None => "AllDocs".to_owned(),
    };
    let skip = parsed.skip.or(start).unwrap_or(0);
    let take = parsed.take.or(page_size).unwrap_or(usize::MAX);
    let (docs, total) = blocking(move || {
        let snapshot = database.snapshot()?;
        let collection = parsed.collection.as_deref();
        if !parsed.needs_documents_parsed() {
            let total = snapshot.count_documents(collection)? as usize;
            let mut docs = Vec::new();
            for doc in snapshot
                .documents_after(collection, 0)?
                .skip(skip)
                .take(take)
            {
                docs.push(doc?);
            }
            return Ok((docs, total));
        }
        let mut matching: Vec<(Value, Document)> = Vec::new();
        for doc in snapshot.documents_after(collection, 0)? {
            let doc = doc?;
            let value: Value = serde_json::from_str(&doc.to_json_string()).map_err(|error| {
                ApiError::internal(format!("stored document `{}` is not JSON: {error}", doc.id))
            })?;
            if parsed.matches(&value) {
                matching.push((value, doc));
            }
        }
        if !parsed.order_by.is_empty() {
            matching.sort_by(|left, right| parsed.compare(&left.0, &right.0));
        }
        let total = matching.len();
        let docs = matching
            .into_iter()
            .skip(skip)
            .take(take)
            .map(|it| it.1)
            .collect();
        Ok((docs, total))
    })
    .await?;
    let now = Timestamp::now().to_iso();
    let mut body = String::with_capacity(docs.len() * 256 + 512);
    body.push_str("{\"Results\":[");
    for (idx, doc) in docs.iter().enumerate() {
        if idx > 0 {
            body.push(',');
        }
        if metadata_only {
            Document {
                body: "{}".to_owned(),
                ..doc.clone()
            }
            .write_json(&mut body);
        } else {
            doc.write_json(&mut body);
        }
    }
    let tail = serde_json::json!({
        "Includes": {},
        "TotalResults": total,
        "LongTotalResults": total,
        "SkippedResults": 0,
        "IsStale": false,
        "IndexName": index_name,
        "IndexTimestamp": now,
        "LastQueryTime": now,
        "ResultEtag": last_etag,
        "NodeTag": crate::routes::server::NODE_TAG,
        "DurationInMs": started.elapsed().as_millis() as u64,
        "IncludedPaths": null,
        "CappedMaxResults": null,
    });
    body.push_str("],");
    let tail = tail.to_string();
    body.push_str(&tail[1..]);
    Ok(with_etag(json_text(StatusCode::OK, body), &etag))
}
