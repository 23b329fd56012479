//! `/databases/{db}/queries`: collection queries in RQL (see `crate::query`), answered in
//! RavenDB's shape.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use corvid_store::{Document, Timestamp, push_json_string};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::extract::{Db, JsonObject, Params};
use crate::http::{QueryParams, blocking, etag_of, json_kind, json_text, not_modified, with_etag};
use crate::query::{self, Query, QueryError};
use crate::state::AppState;

/// A query as a request carries it (body of `POST`, or `?query=` of `GET`).
pub(super) struct QueryRequest {
    pub text: String,
    pub parameters: Map<String, Value>,
    pub start: Option<usize>,
    pub page_size: Option<usize>,
}

impl QueryRequest {
    /// `{"Query": "...", "QueryParameters": {...}, "Start", "PageSize"}`.
    pub fn from_body(body: &Map<String, Value>) -> Result<QueryRequest, ApiError> {
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
        let count = |name: &str| {
            body.get(name)
                .and_then(Value::as_u64)
                .map(|it| usize::try_from(it).unwrap_or(usize::MAX))
        };
        Ok(QueryRequest {
            text,
            parameters,
            start: count("Start"),
            page_size: count("PageSize"),
        })
    }

    /// `?query=...&start=&pageSize=`.
    pub fn from_query_string(params: &QueryParams) -> Result<QueryRequest, ApiError> {
        Ok(QueryRequest {
            text: params.required("query")?.to_owned(),
            parameters: Map::new(),
            start: params.number("start")?,
            page_size: params.number("pageSize")?,
        })
    }

    /// Parses the RQL; errors are RavenDB's 400 with the position and the query.
    pub fn parse(&self) -> Result<Query, ApiError> {
        QueryRequest::parse_text(&self.text, &self.parameters)
    }

    /// Parses `text` with `parameters` bound; errors as [`QueryRequest::parse`]'s.
    pub fn parse_text(text: &str, parameters: &Map<String, Value>) -> Result<Query, ApiError> {
        query::parse(text, parameters).map_err(|error| {
            let type_name = match error {
                QueryError::Syntax { .. } => "Raven.Client.Exceptions.InvalidQueryException",
                QueryError::NotSupported { .. } => "System.NotSupportedException",
            };
            ApiError::new(
                StatusCode::BAD_REQUEST,
                type_name,
                format!("{error}\nQuery: \n{text}"),
            )
        })
    }

    /// The page: the RQL `limit`/`offset` first, `Start`/`PageSize` as fallbacks.
    pub fn page(&self, query: &Query) -> (usize, usize) {
        (
            query.skip.or(self.start).unwrap_or(0),
            query.take.or(self.page_size).unwrap_or(usize::MAX),
        )
    }
}

/// `POST /queries`.
pub(crate) async fn post_query(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let request = QueryRequest::from_body(&body)?;
    answer(state, database, request, &params, &headers).await
}

/// `GET /queries?query=...`.
pub(crate) async fn get_query(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = QueryRequest::from_query_string(&params)?;
    answer(state, database, request, &params, &headers).await
}

async fn answer(
    state: AppState,
    database: std::sync::Arc<corvid_store::Database>,
    request: QueryRequest,
    params: &QueryParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let parsed = request.parse()?;
    let metadata_only = params.flag("metadataOnly");
    let started = Instant::now();
    let last_etag = database.last_etag();
    let etag = etag_of(&[
        &last_etag.to_string(),
        &request.text,
        &Value::Object(request.parameters.clone()).to_string(),
        &format!(
            "{:?}/{:?}/{metadata_only}",
            request.start, request.page_size
        ),
    ]);
    if let Some(response) = not_modified(headers, &etag) {
        return Ok(response);
    }
    let (skip, take) = request.page(&parsed);
    let included_paths: Option<Vec<String>> = (!parsed.includes.is_empty())
        .then(|| parsed.includes.iter().map(|it| it.display_name()).collect());
    let indexes = state.query_indexes().clone();
    let node_tag = state.node_tag();
    let (mut body, outcome) = blocking(move || {
        let snapshot = database.snapshot()?;
        let mut body = String::with_capacity(4096);
        body.push_str("{\"Results\":[");
        let mut included = Vec::new();
        let mut first = true;
        let mut write = |document: &Document, body: &mut String| {
            if !first {
                body.push(',');
            }
            first = false;
            if metadata_only {
                Document {
                    body: "{}".to_owned(),
                    ..document.clone()
                }
                .write_json(body);
            } else if !parsed.write_projection(document, body) {
                document.write_json(body);
            }
        };
        let outcome = if parsed.select.as_ref().is_some_and(|it| it.distinct) {
            let (projections, outcome) =
                query::run_distinct(&snapshot, &parsed, Some(&indexes), skip, take)?;
            body.push_str(&projections.join(","));
            outcome
        } else {
            query::run(&snapshot, &parsed, Some(&indexes), skip, take, |document| {
                included.extend(parsed.included_ids(&document));
                write(&document, &mut body);
                Ok(true)
            })?
        };
        body.push_str("],\"Includes\":{");
        write_includes(&snapshot, included, &mut body)?;
        body.push('}');
        Ok((body, outcome))
    })
    .await?;
    let now = Timestamp::now().to_iso();
    let tail = serde_json::json!({
        "TotalResults": outcome.total,
        "LongTotalResults": outcome.total,
        "SkippedResults": 0,
        "IsStale": false,
        "IndexName": outcome.index_name,
        "IndexTimestamp": now,
        "LastQueryTime": now,
        "ResultEtag": last_etag,
        "NodeTag": node_tag,
        "DurationInMs": started.elapsed().as_millis() as u64,
        "IncludedPaths": included_paths,
        "CappedMaxResults": null,
    })
    .to_string();
    body.push(',');
    body.push_str(&tail[1..]);
    Ok(with_etag(json_text(StatusCode::OK, body), &etag))
}

/// Writes `"id": document` for each included id that exists, once each.
fn write_includes(
    snapshot: &corvid_store::Snapshot,
    ids: Vec<String>,
    body: &mut String,
) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::new();
    let mut first = true;
    for id in ids {
        if !seen.insert(corvid_store::key_of(&id)) {
            continue;
        }
        let Some(document) = snapshot.get(&id)? else {
            continue;
        };
        if !first {
            body.push(',');
        }
        first = false;
        push_json_string(body, &document.id);
        body.push(':');
        document.write_json(body);
    }
    Ok(())
}
