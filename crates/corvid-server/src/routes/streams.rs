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
use crate::query::{self, Query};
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
    stream_query(state, database, request)
}

/// `POST /streams/queries` with the body of `/queries`.
pub(crate) async fn stream_query_post(
    State(state): State<AppState>,
    Db(database): Db,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let request = QueryRequest::from_body(&body)?;
    stream_query(state, database, request)
}

fn stream_query(
    state: AppState,
    database: Arc<Database>,
    request: QueryRequest,
) -> Result<Response, ApiError> {
    let parsed = request.parse()?;
    let (skip, take) = request.page(&parsed);
    let indexes = state.query_indexes().clone();
    Ok(stream(database, move |snapshot, writer| {
        let outcome = query::run(snapshot, &parsed, Some(&indexes), skip, take, |document| {
            writer.document(&parsed, &document)
        })?;
        // RavenDB puts these before `Results`; they are known only at the end here, and the
        // clients read them by name.
        let tail = serde_json::json!({
            "IndexName": outcome.index_name,
            "TotalResults": outcome.total,
            "IsStale": false,
            "ResultEtag": snapshot.last_etag()?,
            "IndexTimestamp": corvid_store::Timestamp::now().to_iso(),
        });
        Ok(tail)
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
    Ok(stream(database, move |snapshot, writer| {
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
            writer.raw_document(&document)
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
        Ok(serde_json::Value::Object(serde_json::Map::new()))
    }))
}

/// `startsWith` plus the `matches` / `exclude` patterns (`*` and `?`, alternatives separated
/// by `|`) that apply to the rest of the id, as RavenDB reads them.
struct IdFilter {
    prefix: Option<String>,
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
        let Some(prefix) = &self.prefix else {
            return true;
        };
        let rest = id.get(prefix.len()..).unwrap_or("").to_lowercase();
        (self.matches.is_empty() || self.matches.iter().any(|it| glob(it, &rest)))
            && !self.exclude.iter().any(|it| glob(it, &rest))
    }
}

/// `*` any run, `?` one character; iterative with backtracking to the last `*`.
fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|it| *it == '*')
}

/// Writes `{"Results":[` … `]` and the fields `produce` returns, in chunks.
struct ChunkWriter {
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: String,
    first: bool,
}

impl ChunkWriter {
    fn document(&mut self, query: &Query, document: &Document) -> Result<bool, ApiError> {
        self.separator();
        if !query.write_projection(document, &mut self.buffer) {
            document.write_json(&mut self.buffer);
        }
        Ok(self.flush_if_full())
    }

    fn raw_document(&mut self, document: &Document) -> Result<bool, ApiError> {
        self.separator();
        document.write_json(&mut self.buffer);
        Ok(self.flush_if_full())
    }

    fn separator(&mut self) {
        if !self.first {
            self.buffer.push(',');
        }
        self.first = false;
    }

    /// Sends the buffer when full; false when the client went away.
    fn flush_if_full(&mut self) -> bool {
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

fn stream<F>(database: Arc<Database>, produce: F) -> Response
where
    F: FnOnce(&Snapshot, &mut ChunkWriter) -> Result<serde_json::Value, ApiError> + Send + 'static,
{
    let (sender, mut receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter {
            sender,
            buffer: String::from("{\"Results\":["),
            first: true,
        };
        let produced = database
            .snapshot()
            .map_err(ApiError::from)
            .and_then(|snapshot| produce(&snapshot, &mut writer));
        match produced {
            Ok(serde_json::Value::Object(fields)) => {
                writer.buffer.push(']');
                for (name, value) in fields {
                    writer.buffer.push(',');
                    corvid_store::push_json_string(&mut writer.buffer, &name);
                    writer.buffer.push(':');
                    writer.buffer.push_str(&value.to_string());
                }
                writer.buffer.push('}');
                writer.flush();
            }
            Ok(_) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns() {
        assert!(glob("*", "abc"));
        assert!(glob("a?c", "abc"));
        assert!(glob("*c", "abc"));
        assert!(!glob("b*", "abc"));
        assert!(glob("a*b*c", "aXbYbc"));
    }
}
