//! What operators and load balancers ask: `GET /metrics` (Prometheus), `GET /setup/alive`
//! (RavenDB's liveness answer) and `GET /health/ready` (readiness).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /metrics`: the Prometheus text page.
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let page = crate::http::blocking(move || crate::metrics::scrape(&state)).await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], page).into_response())
}

/// `GET|HEAD /setup/alive`: 204 while the process answers, as RavenDB does.
pub(crate) async fn alive() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET|HEAD /health/ready`: 200 when the storage is open and the server is not shutting
/// down, 503 otherwise (a load balancer stops sending requests).
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    if state.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
