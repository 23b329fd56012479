//! Typed extractors shared by the handlers, so a handler's signature says what it reads and its
//! body reads as what it does: [`Db`] (the `{db}` path segment, resolved to an open database),
//! [`Params`] (the strictly decoded query string) and [`JsonObject`] / [`BodyBytes`] (the body,
//! within the configured limit). Each rejection is an [`ApiError`] in RavenDB's shape.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use corvid_store::Database;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::http::{QueryParams, parse_json_object, read_body, too_large};
use crate::state::AppState;

/// The database named by the route's `{db}` segment; an unknown one is RavenDB's 503
/// `Database-Missing` answer.
pub(crate) struct Db(pub Arc<Database>);

impl FromRequestParts<AppState> for Db {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let name = db_name(parts, state).await?;
        Ok(Db(state.database(&name)?))
    }
}

async fn db_name(parts: &mut Parts, state: &AppState) -> Result<String, ApiError> {
    let Path(segments) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|error| ApiError::bad_request(format!("invalid path: {error}")))?;
    match segments.get("db") {
        Some(name) => Ok(name.clone()),
        None => Err(ApiError::internal("route has no {db} segment")),
    }
}

/// The query string, decoded strictly (see [`QueryParams::parse`]).
pub(crate) struct Params(pub QueryParams);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Params(QueryParams::parse(parts.uri.query())?))
    }
}

/// The whole body, at most `ServerOptions::max_body_bytes` (a larger one is a 413). A body
/// whose declared `Content-Length` is over the limit is refused before any of it is read.
pub(crate) struct BodyBytes(pub Bytes);

impl FromRequest<AppState> for BodyBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.options().max_body_bytes;
        let declared = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|it| it.to_str().ok())
            .and_then(|it| it.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large(limit));
        }
        Ok(BodyBytes(read_body(request.into_body(), limit).await?))
    }
}

/// A body that must be one JSON object.
pub(crate) struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let BodyBytes(bytes) = BodyBytes::from_request(request, state).await?;
        Ok(JsonObject(parse_json_object(&bytes)?))
    }
}
