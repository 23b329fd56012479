//! Plumbing shared by the handlers: body limits, query strings, JSON answers, error rendering,
//! and bridges from async handlers to the synchronous store.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use corvid_store::{Database, WriteError, WriteOp, WriteResult};
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorBody};

/// Renders [`ApiError`]s as RavenDB's `{Url, Type, Message, Error}` JSON, now that the request
/// URL is known.
pub(crate) async fn render_errors(request: Request, next: Next) -> Response {
    let url = request
        .uri()
        .path_and_query()
        .map(|it| it.as_str().to_owned())
        .unwrap_or_default();
    let mut response = next.run(request).await;
    let Some(error) = response.extensions_mut().remove::<ErrorBody>() else {
        return framework_error_as_json(response, &url).await;
    };

    let body = serde_json::json!({
        "Url": url,
        "Type": error.type_name,
        "Message": error.message,
        "Error": format!("{}: {}", error.type_name, error.message),
    });
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// Turns the plain-text errors axum's extractors answer with (an undecodable path segment,
/// say) into RavenDB's JSON shape, so clients can parse every error.
async fn framework_error_as_json(response: Response, url: &str) -> Response {
    let status = response.status();
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|it| it.to_str().ok())
        .is_some_and(|it| it.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !is_text {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(it) => String::from_utf8_lossy(&it).into_owned(),
        Err(_) => status.to_string(),
    };
    let type_name = "Raven.Client.Exceptions.BadRequestException";
    let body = serde_json::json!({
        "Url": url,
        "Type": type_name,
        "Message": text,
        "Error": format!("{type_name}: {text}"),
    });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// Reads a request body of at most `limit` bytes; a larger one is a 413.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match axum::body::to_bytes(body, limit).await {
        Ok(it) => Ok(it),
        Err(error) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(it) = source {
                if it.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large(limit));
                }
                source = it.source();
            }
            Err(ApiError::bad_request(format!(
                "failed to read the request body: {error}"
            )))
        }
    }
}

pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Raven.Client.Exceptions.BadRequestException",
        format!("request body is larger than the limit of {limit} bytes"),
    )
}

/// Parses a body that must be a JSON object.
pub(crate) fn parse_json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse_json(bytes)? {
        Value::Object(it) => Ok(it),
        other => Err(ApiError::bad_request(format!(
            "expected a JSON object, got {}",
            json_kind(&other)
        ))),
    }
}

pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::bad_request(format!("malformed JSON: {error}")))
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A parsed query string. Names compare case-insensitively, as in RavenDB.
#[derive(Debug, Default, Clone)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Decodes `a=1&b=x%2Fy`; a value whose percent-escapes are not UTF-8 is a 400 rather than
    /// silently replaced (two different ids must never become the same one).
    pub fn parse(raw: Option<&str>) -> Result<QueryParams, ApiError> {
        let mut pairs = Vec::new();
        for pair in raw.unwrap_or_default().split('&') {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            pairs.push((decode_component(key)?, decode_component(value)?));
        }
        Ok(QueryParams(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Returns a required parameter or a 400 naming it.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(it) if !it.is_empty() => Ok(it),
            _ => Err(ApiError::bad_request(format!(
                "query string parameter `{name}` is required"
            ))),
        }
    }

    /// Returns an optional numeric parameter or a 400 naming it.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "query string parameter `{name}` must be a number, got {text:?}"
                ))
            }),
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|it| it.eq_ignore_ascii_case("true"))
    }
}

fn decode_component(text: &str) -> Result<String, ApiError> {
    String::from_utf8(percent_decode(text)).map_err(|_| {
        ApiError::bad_request(format!(
            "query string value {text:?} is not valid UTF-8 once decoded"
        ))
    })
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let hex = |it: u8| (it as char).to_digit(16);
        match bytes[idx] {
            b'+' => out.push(b' '),
            b'%' if idx + 2 < bytes.len() => match (hex(bytes[idx + 1]), hex(bytes[idx + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    idx += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        idx += 1;
    }
    out
}

/// A JSON answer from text built by hand (documents are spliced, not re-serialized).
pub(crate) fn json_text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(crate) fn json_value(status: StatusCode, body: &Value) -> Response {
    json_text(status, body.to_string())
}

/// Runs store work off the async runtime.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(it) => it,
        Err(error) => Err(ApiError::internal(error)),
    }
}

/// Sends a write request to the database's writer and waits until it is durable.
pub(crate) async fn write(
    database: &Arc<Database>,
    ops: Vec<WriteOp>,
) -> Result<Vec<WriteResult>, ApiError> {
    Ok(write_keeping_error(database, ops).await??)
}

/// [`write`], keeping the store's own error for callers whose next step depends on its kind
/// (a patch planned again after a concurrent change).
pub(crate) async fn write_keeping_error(
    database: &Arc<Database>,
    ops: Vec<WriteOp>,
) -> Result<Result<Vec<WriteResult>, WriteError>, ApiError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    database.write_async(
        ops,
        Box::new(move |result| {
            let _ = sender.send(result);
        }),
    );
    receiver
        .await
        .map_err(|_| ApiError::database_missing(database.name()))
}

/// Returns the change vector a client sent in `If-Match`, without quotes. A header that is
/// not readable text is a 400: ignoring it would turn a conditional write into a blind one.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(it) => Ok(Some(it.trim().trim_matches('"').to_owned())),
        Err(_) => Err(ApiError::bad_request(
            "the If-Match header must be a change vector in visible ASCII",
        )),
    }
}

/// An HTTP cache validator: changes whenever any of the hashed parts change.
pub(crate) fn etag_of(parts: &[&str]) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    parts.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Answers 304 when the client's cached copy (`If-None-Match`) is current.
pub(crate) fn not_modified(headers: &HeaderMap, etag: &str) -> Option<Response> {
    let sent = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    if sent.trim().trim_matches('"') != etag {
        return None;
    }
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Some(response)
}

/// Adds a quoted `ETag` header.
pub(crate) fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}
