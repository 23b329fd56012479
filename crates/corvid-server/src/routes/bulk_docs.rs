//! `POST /databases/{db}/bulk_docs`: a batch of commands applied in one transaction, all or
//! nothing. JSON bodies, or `multipart/form-data` when attachments travel with the batch.

use std::collections::VecDeque;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use corvid_store::{PutDocument, WriteOp, WriteResult, push_json_string, validate_id};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::{json_text, read_body, write};
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
    let (main, streams) = if content_type.to_ascii_lowercase().starts_with("multipart/") {
        split_multipart(content_type, bytes).await?
    } else {
        (bytes, VecDeque::new())
    };
    if crate::patch::batch::may_hold_patches(&main) {
        return crate::patch::batch::bulk_docs_with_patches(&database, &main, streams).await;
    }
    let ops = parse_commands(&main, streams)?;
    let results = write(&database, ops).await?;
    Ok(json_text(StatusCode::CREATED, results_json(&results)))
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

/// The batch body, parsed in one pass; documents stay raw JSON text.
#[derive(Deserialize)]
struct BatchIn<'a> {
    #[serde(rename = "Commands", borrow)]
    commands: Option<Vec<CommandIn<'a>>>,
}

/// The fields of a command Corvid reads, in `bulk_docs` and in bulk insert streams; documents
/// stay raw JSON text.
#[derive(Deserialize)]
pub(crate) struct CommandIn<'a> {
    #[serde(rename = "Type", default)]
    pub kind: Option<String>,
    #[serde(rename = "Id", default)]
    pub id: Option<String>,
    #[serde(rename = "ChangeVector", default)]
    pub change_vector: Option<String>,
    #[serde(rename = "Document", borrow, default)]
    pub document: Option<&'a RawValue>,
    #[serde(rename = "IdPrefixed", default)]
    pub id_prefixed: Option<bool>,
    #[serde(rename = "Name", default)]
    pub name: Option<String>,
    #[serde(rename = "ContentType", default)]
    pub content_type: Option<String>,
    /// The length of the raw attachment bytes that follow an `AttachmentPUT` in a bulk insert.
    #[serde(rename = "ContentLength", default)]
    pub content_length: Option<u64>,
}

/// Parses `{"Commands": [...]}` into store operations. Any invalid command fails the whole
/// batch before anything is written.
pub(crate) fn parse_commands(
    body: &[u8],
    mut streams: VecDeque<AttachmentStream>,
) -> Result<Vec<WriteOp>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("malformed JSON: the body is not UTF-8"))?;
    let batch: BatchIn<'_> = serde_json::from_str(text)
        .map_err(|error| ApiError::bad_request(format!("malformed batch: {error}")))?;
    let Some(commands) = batch.commands else {
        return Err(ApiError::bad_request("`Commands` is required"));
    };
    let mut ops = Vec::with_capacity(commands.len());
    for (idx, command) in commands.into_iter().enumerate() {
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

pub(crate) fn parse_command(
    idx: usize,
    command: CommandIn<'_>,
    streams: &mut VecDeque<AttachmentStream>,
) -> Result<WriteOp, ApiError> {
    let kind = command.kind.unwrap_or_default();
    let what = format!("command {idx}");
    let id_required = |id: Option<String>| required_id(&what, &kind, id);
    match kind.as_str() {
        "PUT" => {
            let id = id_required(command.id)?;
            put_operation(&what, &id, command.document, command.change_vector)
        }
        "DELETE" => {
            let id = id_required(command.id)?;
            if command.id_prefixed == Some(true) {
                return Ok(WriteOp::DeletePrefixed { prefix: id });
            }
            Ok(WriteOp::Delete {
                id,
                expected_change_vector: command.change_vector,
            })
        }
        "AttachmentPUT" => {
            let document_id = id_required(command.id)?;
            let name = command.name.unwrap_or_default();
            let Some(stream) = streams.pop_front() else {
                return Err(ApiError::bad_request(format!(
                    "command {idx} (AttachmentPUT `{document_id}`/`{name}`): no attachment stream; send the batch as multipart/form-data with one part per AttachmentPUT"
                )));
            };
            let content_type = command
                .content_type
                .filter(|it| !it.is_empty())
                .or(stream.content_type)
                .unwrap_or_default();
            Ok(WriteOp::AttachmentPut {
                document_id,
                name,
                content_type,
                content: stream.content.to_vec(),
                expected_change_vector: command.change_vector,
            })
        }
        "AttachmentDELETE" => Ok(WriteOp::AttachmentDelete {
            document_id: id_required(command.id)?,
            name: command.name.unwrap_or_default(),
            expected_change_vector: command.change_vector,
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

/// Returns a command's `Id`, which must be a valid document id; `what` names the command in
/// the message.
pub(crate) fn required_id(what: &str, kind: &str, id: Option<String>) -> Result<String, ApiError> {
    let id = id.unwrap_or_default();
    match validate_id(&id) {
        Ok(()) => Ok(id),
        Err(error) => Err(ApiError::bad_request(format!("{what} ({kind}): {error}"))),
    }
}

/// Validates a `PUT` command's `Document` (required, a JSON object) into a store operation.
pub(crate) fn put_operation(
    what: &str,
    id: &str,
    document: Option<&RawValue>,
    change_vector: Option<String>,
) -> Result<WriteOp, ApiError> {
    let Some(document) = document else {
        return Err(ApiError::bad_request(format!(
            "{what} (PUT `{id}`): `Document` is required"
        )));
    };
    if !document.get().trim_start().starts_with('{') {
        return Err(ApiError::bad_request(format!(
            "{what} (PUT `{id}`): `Document` must be an object"
        )));
    }
    let put = PutDocument::from_json(id, document.get(), change_vector)?;
    Ok(WriteOp::Put(put))
}

/// Writes the `{"Results": [...]}` answer by hand: a batch of thousands of puts should not
/// build a JSON tree just to print it.
fn results_json(results: &[WriteResult]) -> String {
    let mut out = String::with_capacity(results.len() * 160 + 16);
    out.push_str("{\"Results\":[");
    for (idx, result) in results.iter().enumerate() {
        if idx > 0 {
            out.push(',');
        }
        match result {
            WriteResult::Put {
                id,
                collection,
                change_vector,
                last_modified,
                ..
            } => {
                out.push_str("{\"Type\":\"PUT\",\"@id\":");
                push_json_string(&mut out, id);
                out.push_str(",\"@collection\":");
                push_json_string(&mut out, collection);
                out.push_str(",\"@change-vector\":");
                push_json_string(&mut out, change_vector);
                out.push_str(",\"@last-modified\":");
                push_json_string(&mut out, &last_modified.to_iso());
                out.push('}');
            }
            WriteResult::Delete {
                id,
                deleted,
                change_vector,
            } => {
                out.push_str("{\"Type\":\"DELETE\",\"Id\":");
                push_json_string(&mut out, id);
                out.push_str(if *deleted {
                    ",\"Deleted\":true"
                } else {
                    ",\"Deleted\":false"
                });
                out.push_str(",\"ChangeVector\":");
                match change_vector {
                    Some(it) => push_json_string(&mut out, it),
                    None => out.push_str("null"),
                }
                out.push('}');
            }
            WriteResult::DeletePrefixed { prefix, deleted } => {
                out.push_str("{\"Type\":\"DELETE\",\"Id\":");
                push_json_string(&mut out, prefix);
                out.push_str(if *deleted > 0 {
                    ",\"Deleted\":true"
                } else {
                    ",\"Deleted\":false"
                });
                out.push_str(&format!(",\"Count\":{deleted}}}"));
            }
            other => out.push_str(&result_json(other.clone()).to_string()),
        }
    }
    out.push_str("]}");
    out
}

pub(crate) fn result_json(result: WriteResult) -> Value {
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
        WriteResult::HiloNext { .. }
        | WriteResult::HiloReturn
        | WriteResult::PutRecord
        | WriteResult::NextSequence(_)
        | WriteResult::PurgeTombstones { .. } => Value::Null,
    }
}
