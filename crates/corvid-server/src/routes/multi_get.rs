//! `POST /databases/{db}/multi_get`: lazy operations. The body lists requests
//! (`{Requests:[{Url, Query, Method, Headers, Content}]}`); each is dispatched through the same
//! routes as a request of its own (so `If-None-Match` gives a 304 inside, as RavenDB does), and
//! the answer lists `{Result, StatusCode, Headers}` in the same order.

use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt as _;
use serde_json::{Map, Value};
use tower::ServiceExt as _;

use crate::error::ApiError;
use crate::extract::{Db, JsonObject};
use crate::http::{json_kind, json_text};

/// How many inner requests one `multi_get` may carry.
pub(crate) const MAX_INNER_REQUESTS: usize = 1024;

/// The routes an inner request is dispatched to: every route except `multi_get` itself, so a
/// `multi_get` inside one is an unknown route rather than a recursion.
#[derive(Clone)]
pub(crate) struct InnerRoutes(pub Router);

pub(crate) async fn multi_get(
    Db(_database): Db,
    Extension(InnerRoutes(routes)): Extension<InnerRoutes>,
    caller: Option<Extension<crate::auth::Caller>>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let requests = match body.get("Requests") {
        Some(Value::Array(requests)) => requests,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`Requests` must be an array, not {}",
                json_kind(other)
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "Request should have a property name 'Requests' which is mandatory.",
            ));
        }
    };
    if requests.len() > MAX_INNER_REQUESTS {
        return Err(ApiError::bad_request(format!(
            "a multi_get may hold at most {MAX_INNER_REQUESTS} requests, not {}",
            requests.len()
        )));
    }
    let mut out = String::from("{\"Results\":[");
    for (request_idx, inner) in requests.iter().enumerate() {
        if request_idx > 0 {
            out.push(',');
        }
        let request = match inner_request(request_idx, inner) {
            // Each inner request is authorized as its caller, on its own route.
            Ok(mut it) => {
                if let Some(Extension(caller)) = &caller {
                    it.extensions_mut().insert(caller.clone());
                }
                it
            }
            Err(error) => {
                let body = serde_json::json!({
                    "Url": "/multi_get",
                    "Type": error.type_name,
                    "Message": error.message,
                    "Error": format!("{}: {}", error.type_name, error.message),
                });
                push_result(&mut out, error.status, None, body.to_string().as_bytes());
                continue;
            }
        };
        let response = match routes.clone().oneshot(request).await {
            Ok(it) => it,
            Err(never) => match never {},
        };
        let status = response.status();
        let etag = response.headers().get(header::ETAG).cloned();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(ApiError::internal)?
            .to_bytes();
        push_result(&mut out, status, etag.as_ref(), &bytes);
    }
    out.push_str("]}");
    Ok(json_text(StatusCode::OK, out))
}

/// Builds the HTTP request one entry of `Requests` describes.
fn inner_request(request_idx: usize, inner: &Value) -> Result<Request<Body>, ApiError> {
    let bad =
        |message: String| ApiError::bad_request(format!("Requests[{request_idx}]: {message}"));
    let Value::Object(inner) = inner else {
        return Err(bad(format!("must be an object, not {}", json_kind(inner))));
    };
    let url = match inner.get("Url") {
        Some(Value::String(url)) if url.starts_with('/') => url.as_str(),
        _ => return Err(bad("`Url` must be a path starting with `/`".to_owned())),
    };
    let query = optional_string(inner, "Query").map_err(bad)?.unwrap_or("");
    let uri = match query.strip_prefix('?') {
        _ if query.is_empty() => url.to_owned(),
        Some(rest) => format!("{url}?{rest}"),
        None => format!("{url}?{query}"),
    };
    let method = optional_string(inner, "Method")
        .map_err(bad)?
        .unwrap_or("GET");
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| bad(format!("`{method}` is not an HTTP method")))?;
    let body = match inner.get("Content") {
        None | Some(Value::Null) => Body::empty(),
        // The Node.js client sends the body already serialized, the Python client as JSON.
        Some(Value::String(text)) => Body::from(text.clone()),
        Some(content) => Body::from(content.to_string()),
    };
    let mut request = Request::builder()
        .method(method)
        .uri(uri.as_str())
        .body(body)
        .map_err(|error| bad(format!("invalid request: {error}")))?;
    match inner.get("Headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                let Value::String(value) = value else {
                    continue;
                };
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| bad(format!("`{name}` is not a header name")))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| bad(format!("the value of header `{name}` is not valid")))?;
                request.headers_mut().append(name, value);
            }
        }
        Some(other) => {
            return Err(bad(format!(
                "`Headers` must be an object, not {}",
                json_kind(other)
            )));
        }
    }
    Ok(request)
}

fn optional_string<'a>(
    object: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(it)) => Ok(Some(it.as_str())),
        Some(other) => Err(format!(
            "`{field}` must be a string, not {}",
            json_kind(other)
        )),
    }
}

/// Appends `{"Result":…,"StatusCode":…,"Headers":{…}}`; a JSON body is copied as it is, an
/// empty one (a 304, a 404) is `null`, and any other body is a JSON string.
fn push_result(out: &mut String, status: StatusCode, etag: Option<&HeaderValue>, body: &[u8]) {
    out.push_str("{\"Result\":");
    match std::str::from_utf8(body) {
        Ok(text) if text.trim().is_empty() => out.push_str("null"),
        Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
            out.push_str(text)
        }
        Ok(text) => corvid_store::push_json_string(out, text),
        Err(_) => out.push_str("null"),
    }
    out.push_str(",\"StatusCode\":");
    out.push_str(&status.as_u16().to_string());
    out.push_str(",\"Headers\":{");
    if let Some(etag) = etag.and_then(|it| it.to_str().ok()) {
        corvid_store::push_json_string(out, "ETag");
        out.push(':');
        corvid_store::push_json_string(out, etag);
    }
    out.push_str("}}");
}
