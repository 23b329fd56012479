//! `/databases/{db}/operations/…`: operation ids, the state of long-running operations, and
//! cancelling one (see `crate::operations`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{Db, Params};
use crate::http::json_value;
use crate::state::AppState;

/// `GET /operations/next-operation-id`: an id for an operation the client starts itself.
pub(crate) async fn next_operation_id(State(state): State<AppState>, _db: Db) -> Response {
    let id = state.operations().next_id();
    json_value(
        StatusCode::OK,
        &json!({"Id": id, "NodeTag": state.node_tag()}),
    )
}

/// `GET /operations/state?id=`: `{Status, Result, Progress}`, or 404 for an unknown id.
pub(crate) async fn operation_state(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let id = operation_id(&params)?;
    match state.operations().state(database.name(), id) {
        Some(body) => Ok(json_value(StatusCode::OK, &body)),
        None => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

/// `POST /operations/kill?id=`: cancels a running operation.
pub(crate) async fn kill_operation(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let id = operation_id(&params)?;
    if !state.operations().kill(database.name(), id) {
        return Err(ApiError::not_found(
            "System.ArgumentException",
            format!("operation {id} was not found"),
        ));
    }
    Ok(StatusCode::OK.into_response())
}

fn operation_id(params: &crate::http::QueryParams) -> Result<u64, ApiError> {
    match params.number::<u64>("id")? {
        Some(id) => Ok(id),
        None => Err(ApiError::bad_request(
            "query string parameter `id` is required",
        )),
    }
}
