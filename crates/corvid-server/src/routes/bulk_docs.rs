//! `POST /databases/{db}/bulk_docs`: a batch of commands applied in one transaction, all or
//! nothing. JSON bodies, or `multipart/form-data` when attachments travel with the batch.

use std::collections::VecDeque;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use corvid_store::{PutDocument, WriteOp, WriteResult, validate_id};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::{json_kind, json_value, parse_json_object, read_body, write};
use crate::state::AppState;

pub(crate) async fn bulk_docs(
    State(state): State<AppState>,
    Path(db): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let database = state.database(&db)?;
    let bytes = read_body(body, state.options().max_body_bytes).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|it| it.to_str().ok())
        .unwrap_or_default();
    let (main, streams) = if content_type.starts_with("multipart/") {
        split_multipart(content_type, bytes).await?
    } else {
        (bytes, VecDeque::new())
    };
    let ops = parse_commands(&main, streams)?;
    let results = write(&database, ops).await?;
    let results: Vec<Value> = results.into_iter().map(result_json).collect();
    Ok(json_value(
        StatusCode::CREATED,
        &json!({"Results": results}),
    ))
}

/// An attachment part of a multipart batch.
pub(crate) struct AttachmentStream {
    content_type: Option<String>,
    content: Bytes,
}

async fn split_multipart(
    content_type: &str,
    bytes: Bytes,
) -> Result<(Bytes, VecDeque<AttachmentStream>), ApiError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|error| ApiError::bad_request(format!("invalid multipart body: {error}")))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut main = None;
    let mut streams = VecDeque::new();
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|error| ApiError::bad_request(format!("invalid multipart body: {error}")))?;
        let Some(field) = field else {
            break;
        };
        let field_content_type = field.content_type().map(ToString::to_string);
        let content = field
            .bytes()
            .await
            .map_err(|error| ApiError::bad_request(format!("invalid multipart body: {error}")))?;
        if main.is_none() {
            main = Some(content);
        } else {
            streams.push_back(AttachmentStream {
                content_type: field_content_type,
                content,
            });
        }
    }
    let Some(main) = main else {
        return Err(ApiError::bad_request(
            "multipart batch has no commands part",
        ));
    };
    Ok((main, streams))
}

/// Parses `{"Commands": [...]}` into store operations. Any invalid command fails the whole
/// batch before anything is written.
pub(crate) fn parse_commands(
    body: &[u8],
    mut streams: VecDeque<AttachmentStream>,
) -> Result<Vec<WriteOp>, ApiError> {
    let mut body = parse_json_object(body)?;
    let commands = match body.remove("Commands") {
        Some(Value::Array(it)) => it,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`Commands` must be an array, got {}",
                json_kind(&other)
            )));
        }
        None => return Err(ApiError::bad_request("`Commands` is required")),
    };
    let mut ops = Vec::with_capacity(commands.len());
    for (idx, command) in commands.into_iter().enumerate() {
        let Value::Object(command) = command else {
            return Err(ApiError::bad_request(format!(
                "command {idx} must be an object, got {}",
                json_kind(&command)
            )));
        };
        ops.push(parse_command(idx, command, &mut streams)?);
    }
    if !streams.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} attachment streams have no AttachmentPUT command",
            streams.len()
        )));
    }
    Ok(ops)
}

fn parse_command(
    idx: usize,
    mut command: Map<String, Value>,
    streams: &mut VecDeque<AttachmentStream>,
) -> Result<WriteOp, ApiError> {
    let kind = string_field(idx, &command, "Type")?.unwrap_or_default();
    let id = string_field(idx, &command, "Id")?;
    let change_vector = string_field(idx, &command, "ChangeVector")?;
    let id_required = |id: Option<String>| -> Result<String, ApiError> {
        let id = id.unwrap_or_default();
        validate_id(&id)
            .map_err(|error| ApiError::bad_request(format!("command {idx} ({kind}): {error}")))?;
        Ok(id)
    };
    match kind.as_str() {
        "PUT" => {
            let id = id_required(id)?;
            let document = match command.remove("Document") {
                Some(Value::Object(it)) => it,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "command {idx} (PUT `{id}`): `Document` must be an object, got {}",
                        json_kind(&other)
                    )));
                }
                None => {
                    return Err(ApiError::bad_request(format!(
                        "command {idx} (PUT `{id}`): `Document` is required"
                    )));
                }
            };
            Ok(WriteOp::Put(PutDocument::new(
                &id,
                document,
                change_vector,
            )?))
        }
        "DELETE" => {
            let prefixed = matches!(command.get("IdPrefixed"), Some(Value::Bool(true)));
            let id = id_required(id)?;
            if prefixed {
                return Ok(WriteOp::DeletePrefixed { prefix: id });
            }
            Ok(WriteOp::Delete {
                id,
                expected_change_vector: change_vector,
            })
        }
        "AttachmentPUT" => {
            let document_id = id_required(id)?;
            let name = string_field(idx, &command, "Name")?.unwrap_or_default();
            let Some(stream) = streams.pop_front() else {
                return Err(ApiError::bad_request(format!(
                    "command {idx} (AttachmentPUT `{document_id}`/`{name}`): no attachment stream; send the batch as multipart/form-data with one part per AttachmentPUT"
                )));
            };
            let content_type = string_field(idx, &command, "ContentType")?
                .filter(|it| !it.is_empty())
                .or(stream.content_type)
                .unwrap_or_default();
            Ok(WriteOp::AttachmentPut {
                document_id,
                name,
                content_type,
                content: stream.content.to_vec(),
                expected_change_vector: change_vector,
            })
        }
        "AttachmentDELETE" => Ok(WriteOp::AttachmentDelete {
            document_id: id_required(id)?,
            name: string_field(idx, &command, "Name")?.unwrap_or_default(),
            expected_change_vector: change_vector,
        }),
        "PATCH"
        | "BatchPATCH"
        | "JsonPatch"
        | "AttachmentMOVE"
        | "AttachmentCOPY"
        | "Counters"
        | "TimeSeries"
        | "ForceRevisionCreation"
        | "CompareExchangePUT"
        | "CompareExchangeDELETE"
        | "BatchTrackChanges"
        | "TimeSeriesWithIncrements"
        | "TimeSeriesBulkInsert"
        | "TimeSeriesCopy" => Err(ApiError::bad_request(format!(
            "command {idx}: command type `{kind}` is not supported by Corvid yet"
        ))),
        "" => Err(ApiError::bad_request(format!(
            "command {idx}: `Type` is required"
        ))),
        other => Err(ApiError::bad_request(format!(
            "command {idx}: unknown command type `{other}`"
        ))),
    }
}

fn string_field(
    idx: usize,
    command: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    match command.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(it)) => Ok(Some(it.clone())),
        Some(other) => Err(ApiError::bad_request(format!(
            "command {idx}: `{name}` must be a string, got {}",
            json_kind(other)
        ))),
    }
}

fn result_json(result: WriteResult) -> Value {
    match result {
        WriteResult::Put {
            id,
            collection,
            change_vector,
            last_modified,
            ..
        } => json!({
            "Type": "PUT",
            "@id": id,
            "@collection": collection,
            "@change-vector": change_vector,
            "@last-modified": last_modified.to_iso(),
        }),
        WriteResult::Delete {
            id,
            deleted,
            change_vector,
        } => json!({"Type": "DELETE", "Id": id, "Deleted": deleted, "ChangeVector": change_vector}),
        WriteResult::DeletePrefixed { prefix, deleted } => {
            json!({"Type": "DELETE", "Id": prefix, "Deleted": deleted > 0, "Count": deleted})
        }
        WriteResult::AttachmentPut {
            document_id,
            name,
            hash,
            content_type,
            size,
            change_vector,
            document_change_vector,
        } => json!({
            "Type": "AttachmentPUT",
            "Id": document_id,
            "Name": name,
            "ChangeVector": change_vector,
            "Hash": hash,
            "ContentType": content_type,
            "Size": size,
            "DocumentChangeVector": document_change_vector,
        }),
        WriteResult::AttachmentDelete {
            document_id,
            name,
            document_change_vector,
        } => json!({
            "Type": "AttachmentDELETE",
            "@id": document_id,
            "Name": name,
            "DocumentChangeVector": document_change_vector,
        }),
        WriteResult::HiloNext { .. } | WriteResult::HiloReturn => Value::Null,
    }
}
