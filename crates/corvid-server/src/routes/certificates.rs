//! RavenDB 4.1's certificate routes: register, list and delete client certificates, and
//! `whoami`. Who may call them is in `crate::auth`'s table.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Caller, CertificateDefinition};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct ThumbprintQuery {
    thumbprint: Option<String>,
}

/// `PUT /admin/certificates`: registers a client certificate (RavenDB's
/// `PutClientCertificateOperation` body).
pub(crate) async fn put_certificate(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let request = serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("invalid certificate: {error}")))?;
    let definition = CertificateDefinition::new(request)?;
    state
        .certificates()
        .put(state.storage().system(), definition)?;
    Ok(StatusCode::CREATED)
}

/// `GET /admin/certificates[?thumbprint=]`: `{"Results": [definition...]}`.
pub(crate) async fn get_certificates(
    State(state): State<AppState>,
    Query(query): Query<ThumbprintQuery>,
) -> Response {
    let results: Vec<_> = state
        .certificates()
        .all()
        .into_iter()
        .filter(|it| {
            query
                .thumbprint
                .as_deref()
                .is_none_or(|wanted| it.thumbprint.eq_ignore_ascii_case(wanted))
        })
        .map(|it| (*it).clone())
        .collect();
    axum::Json(json!({ "Results": results })).into_response()
}

/// `DELETE /admin/certificates?thumbprint=`.
pub(crate) async fn delete_certificate(
    State(state): State<AppState>,
    Query(query): Query<ThumbprintQuery>,
) -> Result<StatusCode, ApiError> {
    let thumbprint = query
        .thumbprint
        .ok_or_else(|| ApiError::bad_request("the `thumbprint` query parameter is required"))?
        .to_ascii_uppercase();
    state
        .certificates()
        .delete(state.storage().system(), &thumbprint)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /certificates/whoami`: the caller's certificate definition.
pub(crate) async fn whoami(caller: Option<Extension<Caller>>) -> Response {
    match caller.as_ref().map(|it| &*it.0.0) {
        Some(crate::auth::Identity::Known(definition)) => axum::Json(&**definition).into_response(),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}
