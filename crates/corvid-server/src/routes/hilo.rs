//! `/databases/{db}/hilo/*`: id ranges clients hand out themselves (`users/1-A`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use corvid_store::{Timestamp, WriteOp, WriteResult};
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{Db, Params};
use crate::http::{json_value, write};
use crate::state::AppState;

/// `GET /hilo/next?tag=users&lastBatchSize=&lastRangeAt=&identityPartsSeparator=/&lastMax=`.
pub(crate) async fn next(
    axum::extract::State(state): axum::extract::State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let tag = params.required("tag")?.to_owned();
    let last_size = params.number::<u64>("lastBatchSize")?.unwrap_or(0);
    let last_range_at = params
        .get("lastRangeAt")
        .filter(|it| !it.is_empty())
        .and_then(Timestamp::parse_iso);
    let separator = params
        .get("identityPartsSeparator")
        .filter(|it| !it.is_empty())
        .unwrap_or("/")
        .to_owned();
    let results = write(
        &database,
        vec![WriteOp::HiloNext {
            tag,
            last_size,
            last_range_at,
            separator,
        }],
    )
    .await?;
    let Some(WriteResult::HiloNext {
        prefix,
        low,
        high,
        last_size,
        last_range_at,
    }) = results.into_iter().next()
    else {
        return Err(ApiError::internal("hilo returned no result"));
    };
    Ok(json_value(
        StatusCode::CREATED,
        &json!({
            "Prefix": prefix,

            "Low": low,
            "High": high,
            "LastSize": last_size,
            "ServerTag": state.node_tag(),
            "LastRangeAt": last_range_at.to_iso(),
        }),
    ))
}

/// `PUT /hilo/return?tag=users&end=32&last=1`.
pub(crate) async fn return_range(
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let tag = params.required("tag")?.to_owned();
    let (Some(end), Some(last)) = (params.number::<u64>("end")?, params.number::<u64>("last")?)
    else {
        return Err(ApiError::bad_request("`end` and `last` are required"));
    };
    write(&database, vec![WriteOp::HiloReturn { tag, end, last }]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
