//! Patching: `PATCH /databases/{db}/docs?id=` (one document, RavenDB's `PatchOperation`),
//! `PATCH /databases/{db}/queries` (patch by query) and `DELETE /databases/{db}/queries`
//! (delete by query), the last two as operations polled at `/operations/state`.
//! The work is in `crate::patch`.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::extract::{Db, JsonObject, Params};
use crate::http::{blocking, if_match, json_kind, json_value};
use crate::operations::Operations;
use crate::patch::{
    ItemOutcome, PatchCommand, PatchRequest, PatchStatus, TransactionItem, apply_transaction,
    by_query,
};
use crate::routes::queries::QueryRequest;
use crate::state::AppState;

/// `PATCH /docs?id=&changeVector=&skipPatchIfChangeVectorMismatch=&test=&debug=` with
/// `{Patch: {Script, Values}, PatchIfMissing}`; the change vector may also come as `If-Match`.
pub(crate) async fn patch_doc(
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let id = params.required("id")?.to_owned();
    corvid_store::validate_id(&id).map_err(|error| ApiError::bad_request(error.to_string()))?;
    let expected_change_vector =
        if_match(&headers)?.or_else(|| params.get("changeVector").map(str::to_owned));
    let Some(patch) = patch_request(&body, "Patch")? else {
        return Err(ApiError::bad_request("`Patch` is required"));
    };
    let command = PatchCommand {
        id,
        expected_change_vector,
        skip_if_change_vector_mismatch: params.flag("skipPatchIfChangeVectorMismatch"),
        patch,
        patch_if_missing: patch_request(&body, "PatchIfMissing")?,
        create_if_missing: None,
    };
    let test = params.flag("test");
    let debug = params.flag("debug");
    let items = Arc::new(vec![TransactionItem::Patch(command)]);
    let outcomes = apply_transaction(&database, items, test).await?;
    let Some(ItemOutcome::Patch(outcome)) = outcomes.into_iter().next() else {
        return Err(ApiError::internal("a patch transaction lost its patch"));
    };
    let status = match outcome.status {
        PatchStatus::DocumentDoesNotExist => return Ok(StatusCode::NOT_FOUND.into_response()),
        PatchStatus::Skipped => return Ok(StatusCode::NOT_MODIFIED.into_response()),
        PatchStatus::Created => StatusCode::CREATED,
        PatchStatus::Patched | PatchStatus::NotModified => StatusCode::OK,
    };
    let mut answer = Map::new();
    answer.insert("Status".to_owned(), outcome.status.as_str().into());
    answer.insert(
        "ModifiedDocument".to_owned(),
        outcome.modified.unwrap_or(Value::Null),
    );
    if debug {
        answer.insert(
            "OriginalDocument".to_owned(),
            outcome.original.unwrap_or(Value::Null),
        );
        answer.insert(
            "Debug".to_owned(),
            json!({"Info": outcome.debug_output, "Actions": outcome.actions.to_json()}),
        );
    }
    insert_version(
        &mut answer,
        outcome.change_vector,
        outcome.last_modified,
        outcome.collection,
    );
    Ok(json_value(status, &Value::Object(answer)))
}

/// `PATCH /json-patch?id=` with `{Operations: [...]}` (RFC 6902, the `JsonPatchOperation` of
/// newer clients): `{Status, ModifiedDocument, ChangeVector, LastModified, Collection}`.
pub(crate) async fn json_patch_doc(
    Db(database): Db,
    Params(params): Params,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let id = params.required("id")?.to_owned();
    corvid_store::validate_id(&id).map_err(|error| ApiError::bad_request(error.to_string()))?;
    let operations = match body.get("Operations") {
        Some(Value::Array(it)) => it.clone(),
        _ => return Err(ApiError::bad_request("`Operations` must be an array")),
    };
    let items = Arc::new(vec![TransactionItem::JsonPatch { id, operations }]);
    let outcomes = apply_transaction(&database, items, false).await?;
    let Some(ItemOutcome::Patch(outcome)) = outcomes.into_iter().next() else {
        return Err(ApiError::internal("a patch transaction lost its patch"));
    };
    let mut answer = json!({
        "Status": outcome.status.as_str(),
        "ModifiedDocument": outcome.modified,
    });
    if let Value::Object(answer) = &mut answer {
        insert_version(
            answer,
            outcome.change_vector,
            outcome.last_modified,
            outcome.collection,
        );
    }
    Ok(json_value(StatusCode::OK, &answer))
}

/// Adds what a write gave the patched document: `ChangeVector`, `LastModified`, `Collection`.
fn insert_version(
    answer: &mut Map<String, Value>,
    change_vector: Option<String>,
    last_modified: Option<String>,
    collection: Option<String>,
) {
    for (name, value) in [
        ("ChangeVector", change_vector),
        ("LastModified", last_modified),
        ("Collection", collection),
    ] {
        if let Some(value) = value {
            answer.insert(name.to_owned(), value.into());
        }
    }
}

/// `PATCH /queries` with `{Query: {Query: "from … update { … }", QueryParameters}}`: starts a
/// patch by query; answers `{OperationId, OperationNodeTag}`.
pub(crate) async fn patch_by_query(
    State(state): State<AppState>,
    Db(database): Db,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let query_object = match body.get("Query") {
        Some(Value::Object(it)) => it,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`Query` must be an object {{Query, QueryParameters}}, got {}",
                json_kind(other)
            )));
        }
        None => return Err(ApiError::bad_request("`Query` is required")),
    };
    let QueryRequest {
        text, parameters, ..
    } = QueryRequest::from_body(query_object)?;
    let parsed = QueryRequest::parse_text(&text, &parameters)?;
    let Some(script) = by_query::update_script(&parsed, &parameters) else {
        return Err(invalid_query(format!(
            "a patch by query must end with an `update {{ … }}` clause; query: {text}"
        )));
    };
    let checked = script.clone();
    blocking(move || crate::patch::compile(&checked).map(drop))
        .await
        .map_err(|error| invalid_query(format!("{}; query: {text}", error.message)))?;
    let name = database.name().to_owned();
    start_operation(&state, &name, |operations, operation_id| {
        by_query::patch_by_query(
            operations,
            operation_id,
            database,
            parsed,
            script,
            parameters,
        )
    })
}

/// `DELETE /queries` with `{Query, QueryParameters}`: starts a delete by query.
pub(crate) async fn delete_by_query(
    State(state): State<AppState>,
    Db(database): Db,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    // The clients send the query itself; accept it wrapped in `Query` as PATCH has it too.
    let query_object = match body.get("Query") {
        Some(Value::Object(it)) => it,
        _ => &body,
    };
    let request = QueryRequest::from_body(query_object)?;
    let text = &request.text;
    let parsed = request.parse()?;
    if parsed.update_script().is_some() {
        return Err(invalid_query(format!(
            "a delete by query cannot have an `update` clause; query: {text}"
        )));
    }
    let name = database.name().to_owned();
    start_operation(&state, &name, |operations, operation_id| {
        by_query::delete_by_query(operations, operation_id, database, parsed)
    })
}

/// Registers a new operation of `database`, runs `work` as it, and answers
/// `{OperationId, OperationNodeTag}`.
fn start_operation<F>(
    state: &AppState,
    database: &str,
    work: impl FnOnce(Arc<Operations>, u64) -> F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Value, ApiError>> + Send + 'static,
{
    let operations = state.operations().clone();
    let operation_id = operations.next_id();
    operations.begin(database, operation_id)?;
    operations.spawn(operation_id, work(operations.clone(), operation_id));
    Ok(json_value(
        StatusCode::OK,
        &json!({"OperationId": operation_id, "OperationNodeTag": state.node_tag()}),
    ))
}

fn invalid_query(message: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "Raven.Client.Exceptions.InvalidQueryException",
        message,
    )
}

/// `PatchRequest` field `name` of the body: absent or null is `None`.
fn patch_request(body: &Map<String, Value>, name: &str) -> Result<Option<PatchRequest>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|error| ApiError::bad_request(format!("`{name}`: {error}"))),
        Some(other) => Err(ApiError::bad_request(format!(
            "`{name}` must be an object {{Script, Values}}, got {}",
            json_kind(other)
        ))),
    }
}
