//! `/databases/{db}/streams/queries` and `/databases/{db}/streams/docs`: results written
//! chunk by chunk as they are read, in RavenDB's shape, so a stream of a million documents
//! never sits in memory. A blocking task reads the snapshot and sends chunks of about
//! [`CHUNK_BYTES`] through a small bounded channel; a client that stops reading stops it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use corvid_store::{Database, Document, Snapshot};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::extract::{Db, JsonObject, Params};
use crate::http::QueryParams;
use crate::query::{self, Query, wildcard_matches};
use crate::routes::queries::QueryRequest;
use crate::state::AppState;

/// Bytes gathered before a chunk goes to the client.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks buffered between the reader and the connection.
const CHUNKS_IN_FLIGHT: usize = 4;
/// Documents read per page of a `startsWith` stream.
const PREFIX_PAGE: usize = 1024;

/// `GET /streams/queries?query=…`.
pub(crate) async fn stream_query_get(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let request = QueryRequest::from_query_string(&params)?;
    stream_query(state, database, request, Format::of(&params))
}

/// `POST /streams/queries` with the body of `/queries`.
pub(crate) async fn stream_query_post(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let request = QueryRequest::from_body(&body)?;
    stream_query(state, database, request, Format::of(&params))
}

fn stream_query(
    state: AppState,
    database: Arc<Database>,
    request: QueryRequest,
    format: Format,
) -> Result<Response, ApiError> {
    let parsed = request.parse()?;
    let (skip, take) = request.page(&parsed);
    let indexes = state.query_indexes().clone();
    Ok(stream(database, format, move |snapshot, writer| {
        let stats = |outcome: &query::Outcome| -> Result<serde_json::Value, ApiError> {
            Ok(serde_json::json!({
                "ResultEtag": snapshot.last_etag()?,
                "IsStale": false,
                "IndexName": outcome.index_name,
                "TotalResults": outcome.total,
                "IndexTimestamp": corvid_store::Timestamp::now().to_iso(),
            }))
        };
        if format == Format::Jsonl {
            // The statistics line comes first: find the page's ids (not its documents), then
            // read and send the documents one by one.
            let mut page = Vec::new();
            let outcome = query::run(snapshot, &parsed, Some(&indexes), skip, take, |document| {
                page.push(document.id);
                Ok(true)
            })?;
            writer.stats(&stats(&outcome)?);
            for id in page {
                if let Some(document) = snapshot.get(&id)?
                    && !writer.document(&parsed, &document)
                {
                    break;
                }
            }
            return Ok(serde_json::Value::Null);
        }
        let outcome = query::run(snapshot, &parsed, Some(&indexes), skip, take, |document| {
            Ok(writer.document(&parsed, &document))
        })?;
        // RavenDB 4.1 puts these before `Results`; they are known only at the end here, and
        // clients read them by name.
        stats(&outcome)
    }))
}

/// `GET /streams/docs?startsWith=&matches=&exclude=&start=&pageSize=`.
pub(crate) async fn stream_docs(
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let filter = IdFilter::from_params(&params)?;
    let start: usize = params.number("start")?.unwrap_or(0);
    let page_size: usize = params.number("pageSize")?.unwrap_or(usize::MAX);
    Ok(stream(
        database,
        Format::of(&params),
        move |snapshot, writer| {
            let mut skipped = 0;
            let mut sent = 0;
            let mut accept = |document: Document| -> Result<bool, ApiError> {
                if !filter.accepts(&document.id) {
                    return Ok(true);
                }
                if skipped < start {
                    skipped += 1;
                    return Ok(true);
                }
                if sent >= page_size {
                    return Ok(false);
                }
                sent += 1;
                Ok(writer.raw_document(&document))
            };
            match &filter.prefix {
                None => {
                    for document in snapshot.documents_after(None, 0)? {
                        if !accept(document?)? {
                            break;
                        }
                    }
                }
                Some(prefix) => {
                    let mut offset = 0;
                    'pages: loop {
                        let page = snapshot.starting_with(prefix, offset, PREFIX_PAGE)?;
                        let done = page.len() < PREFIX_PAGE;
                        offset += page.len();
                        for document in page {
                            if !accept(document)? {
                                break 'pages;
                            }
                        }
                        if done {
                            break;
                        }
                    }
                }
            }
            Ok(serde_json::Value::Null)
        },
    ))
}

/// `startsWith` plus the `matches` / `exclude` patterns (`*` and `?`, alternatives separated
/// by `|`) that apply to the rest of the id, as RavenDB reads them, and `startAfter`.
struct IdFilter {
    prefix: Option<String>,
    /// Only ids after this one (in the store's case-insensitive order).
    start_after: Option<String>,
    matches: Vec<String>,
    exclude: Vec<String>,
}

impl IdFilter {
    fn from_params(params: &QueryParams) -> Result<IdFilter, ApiError> {
        let patterns = |name: &str| -> Vec<String> {
            params
                .get(name)
                .map(|it| {
                    it.split('|')
                        .filter(|it| !it.is_empty())
                        .map(str::to_lowercase)
                        .collect()
                })
                .unwrap_or_default()
        };
        let prefix = params.get("startsWith").filter(|it| !it.is_empty());
        let filter = IdFilter {
            prefix: prefix.map(str::to_owned),
            start_after: params.get("startAfter").map(corvid_store::key_of),
            matches: patterns("matches"),
            exclude: patterns("exclude"),
        };
        if filter.prefix.is_none() && !(filter.matches.is_empty() && filter.exclude.is_empty()) {
            return Err(ApiError::bad_request(
                "`matches` and `exclude` need `startsWith`",
            ));
        }
        Ok(filter)
    }

    fn accepts(&self, id: &str) -> bool {
        if let Some(start_after) = &self.start_after
            && corvid_store::key_of(id) <= *start_after
        {
            return false;
        }
        let Some(prefix) = &self.prefix else {
            return true;
        };
        let rest = id.get(prefix.len()..).unwrap_or("").to_lowercase();
        (self.matches.is_empty() || self.matches.iter().any(|it| wildcard_matches(it, &rest)))
            && !self.exclude.iter().any(|it| wildcard_matches(it, &rest))
    }
}

/// The two shapes of a stream: RavenDB 4.1's one JSON object `{"Results":[…], …}`, or the
/// JSON lines the 7.x clients ask for with `format=jsonl`: `{"Stats":{…}}` first for a query,
/// then one `{"Item":{…}}` per result (a bare document per line for `/streams/docs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Jsonl,
}

impl Format {
    fn of(params: &QueryParams) -> Format {
        match params.get("format") {
            Some(format) if format.eq_ignore_ascii_case("jsonl") => Format::Jsonl,
            _ => Format::Json,
        }
    }
}

/// Writes the results in chunks.
struct ChunkWriter {
    format: Format,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: String,
    first: bool,
}

impl ChunkWriter {
    /// A query result (projected when the query selects); false when the client went away.
    fn document(&mut self, query: &Query, document: &Document) -> bool {
        self.begin_item("{\"Item\":");
        if !query.write_projection(document, &mut self.buffer) {
            document.write_json(&mut self.buffer);
        }
        self.end_item("}\n")
    }

    fn raw_document(&mut self, document: &Document) -> bool {
        self.begin_item("");
        document.write_json(&mut self.buffer);
        self.end_item("\n")
    }

    fn stats(&mut self, stats: &serde_json::Value) {
        self.buffer.push_str("{\"Stats\":");
        self.buffer.push_str(&stats.to_string());
        self.buffer.push_str("}\n");
    }

    fn begin_item(&mut self, jsonl_prefix: &str) {
        match self.format {
            Format::Json => {
                if !self.first {
                    self.buffer.push(',');
                }
                self.first = false;
            }
            Format::Jsonl => self.buffer.push_str(jsonl_prefix),
        }
    }

    /// Ends an item and sends the buffer when full; false when the client went away.
    fn end_item(&mut self, jsonl_suffix: &str) -> bool {
        if self.format == Format::Jsonl {
            self.buffer.push_str(jsonl_suffix);
        }
        if self.buffer.len() < CHUNK_BYTES {
            return true;
        }
        self.flush()
    }

    fn flush(&mut self) -> bool {
        let chunk = std::mem::take(&mut self.buffer);
        self.sender.blocking_send(Ok(Bytes::from(chunk))).is_ok()
    }
}

/// Runs `produce` on a blocking thread and streams what it writes; the fields it returns
/// close the JSON shape (`null` for none).
fn stream<F>(database: Arc<Database>, format: Format, produce: F) -> Response
where
    F: FnOnce(&Snapshot, &mut ChunkWriter) -> Result<serde_json::Value, ApiError> + Send + 'static,
{
    let (sender, mut receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter {
            format,
            sender,
            buffer: String::new(),
            first: true,
        };
        if format == Format::Json {
            writer.buffer.push_str("{\"Results\":[");
        }
        let produced = database
            .snapshot()
            .map_err(ApiError::from)
            .and_then(|snapshot| produce(&snapshot, &mut writer));
        match produced {
            Ok(tail) => {
                if format == Format::Json {
                    writer.buffer.push(']');
                    if let serde_json::Value::Object(fields) = tail {
                        for (name, value) in fields {
                            writer.buffer.push(',');
                            corvid_store::push_json_string(&mut writer.buffer, &name);
                            writer.buffer.push(':');
                            writer.buffer.push_str(&value.to_string());
                        }
                    }
                    writer.buffer.push('}');
                }
                writer.flush();
            }
            Err(error) => {
                // The status is already sent: end the body abruptly so the client sees a
                // broken stream, never a truncated answer that parses.
                tracing::warn!(?error, "stream failed");
                let _ = writer
                    .sender
                    .blocking_send(Err(std::io::Error::other(format!("{error:?}"))));
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |context| receiver.poll_recv(context));
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
