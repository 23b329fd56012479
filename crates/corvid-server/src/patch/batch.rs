//! `PATCH` commands of `POST /bulk_docs` (session `patch`, `increment`, `addOrPatch`,
//! `addOrIncrement`) and `JsonPatch` commands (RFC 6902; the Python client's session `patch`
//! by default): a batch holding one is planned here, all its commands in order in one
//! transaction, and answered with RavenDB's result items (`PatchStatus`, `ChangeVector`,
//! `LastModified`, …). Batches without patches never come here.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use corvid_store::{Database, validate_id};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::json_text;
use crate::patch::{ItemOutcome, PatchCommand, PatchOutcome, PatchRequest, TransactionItem};
use crate::routes::bulk_docs::{AttachmentStream, CommandIn, parse_command, result_json};

/// Whether the batch body may hold a `PATCH` or `JsonPatch` command: a cheap look before any
/// parse (a document that merely contains the text is handled here too, correctly), by SIMD
/// search: this runs on every `bulk_docs` body, the fast write path.
pub(crate) fn may_hold_patches(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"\"PATCH\"").is_some()
        || memchr::memmem::find(body, b"\"JsonPatch\"").is_some()
}

#[derive(Deserialize)]
struct BatchIn<'a> {
    #[serde(rename = "Commands", borrow)]
    commands: Option<Vec<&'a RawValue>>,
}

/// The fields of a command this module reads, besides what `bulk_docs` parses.
#[derive(Deserialize)]
struct CommandFields<'a> {
    #[serde(rename = "Type", default)]
    kind: Option<String>,
    #[serde(rename = "Id", default)]
    id: Option<String>,
    #[serde(rename = "ChangeVector", default)]
    change_vector: Option<String>,
    #[serde(rename = "Document", borrow, default)]
    document: Option<&'a RawValue>,
    #[serde(rename = "IdPrefixed", default)]
    id_prefixed: Option<bool>,
    #[serde(rename = "Patch", default)]
    patch: Option<PatchRequest>,
    #[serde(rename = "PatchIfMissing", default)]
    patch_if_missing: Option<PatchRequest>,
    #[serde(rename = "CreateIfMissing", borrow, default)]
    create_if_missing: Option<&'a RawValue>,
    #[serde(rename = "ReturnDocument", default)]
    return_document: Option<bool>,
    #[serde(rename = "JsonPatch", default)]
    json_patch: Option<JsonPatchIn>,
}

/// A `JsonPatch` command's `{Operations: [...]}`.
#[derive(Deserialize)]
struct JsonPatchIn {
    #[serde(rename = "Operations")]
    operations: Vec<Value>,
}

/// Applies a batch that holds `PATCH` commands; answers as `bulk_docs` does.
pub(crate) async fn bulk_docs_with_patches(
    database: &Arc<Database>,
    body: &[u8],
    mut streams: VecDeque<AttachmentStream>,
) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("malformed JSON: the body is not UTF-8"))?;
    let batch: BatchIn<'_> = serde_json::from_str(text)
        .map_err(|error| ApiError::bad_request(format!("malformed batch: {error}")))?;
    let Some(commands) = batch.commands else {
        return Err(ApiError::bad_request("`Commands` is required"));
    };
    let mut items = Vec::with_capacity(commands.len());
    // Per command: its `Type` when it is a patch, and whether to return the document.
    let mut patch_answers = Vec::with_capacity(commands.len());
    for (idx, raw) in commands.into_iter().enumerate() {
        let fields: CommandFields<'_> = serde_json::from_str(raw.get())
            .map_err(|error| ApiError::bad_request(format!("command {idx}: {error}")))?;
        let return_document = fields.return_document == Some(true);
        match fields.kind.as_deref() {
            Some("PATCH") => {
                patch_answers.push(("PATCH", return_document));
                items.push(TransactionItem::Patch(patch_command(idx, fields)?));
                continue;
            }
            Some("JsonPatch") => {
                patch_answers.push(("JsonPatch", return_document));
                items.push(json_patch_command(idx, fields)?);
                continue;
            }
            _ => patch_answers.push(("", false)),
        }
        let effect = effect_of(&fields);
        let command: CommandIn<'_> = serde_json::from_str(raw.get())
            .map_err(|error| ApiError::bad_request(format!("command {idx}: {error}")))?;
        let op = parse_command(idx, command, &mut streams)?;
        items.push(TransactionItem::Write { op, effect });
    }
    if !streams.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} attachment streams have no AttachmentPUT command",
            streams.len()
        )));
    }
    let outcomes = crate::patch::apply_transaction(database, Arc::new(items), false).await?;
    let results: Vec<Value> = outcomes
        .into_iter()
        .zip(patch_answers)
        .map(|(outcome, (kind, return_document))| match outcome {
            ItemOutcome::Write(result) => result_json(result),
            ItemOutcome::Patch(outcome) => patch_result_item(*outcome, kind, return_document),
        })
        .collect();
    Ok(json_text(
        StatusCode::CREATED,
        json!({ "Results": results }).to_string(),
    ))
}

/// The command's `Id`, which must be a valid document id.
fn command_id(idx: usize, kind: &str, id: Option<String>) -> Result<String, ApiError> {
    let id = id.unwrap_or_default();
    validate_id(&id)
        .map_err(|error| ApiError::bad_request(format!("command {idx} ({kind}): {error}")))?;
    Ok(id)
}

fn patch_command(idx: usize, fields: CommandFields<'_>) -> Result<PatchCommand, ApiError> {
    let id = command_id(idx, "PATCH", fields.id)?;
    let Some(patch) = fields.patch else {
        return Err(ApiError::bad_request(format!(
            "command {idx} (PATCH `{id}`): `Patch` is required"
        )));
    };
    let create_if_missing = match fields.create_if_missing {
        None => None,
        Some(raw) if raw.get() == "null" => None,
        Some(raw) if raw.get().trim_start().starts_with('{') => Some(raw.get().to_owned()),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "command {idx} (PATCH `{id}`): `CreateIfMissing` must be an object"
            )));
        }
    };
    Ok(PatchCommand {
        id,
        expected_change_vector: fields.change_vector,
        skip_if_change_vector_mismatch: false,
        patch,
        patch_if_missing: fields.patch_if_missing,
        create_if_missing,
    })
}

fn json_patch_command(idx: usize, fields: CommandFields<'_>) -> Result<TransactionItem, ApiError> {
    let id = command_id(idx, "JsonPatch", fields.id)?;
    let Some(json_patch) = fields.json_patch else {
        return Err(ApiError::bad_request(format!(
            "command {idx} (JsonPatch `{id}`): `JsonPatch` {{Operations}} is required"
        )));
    };
    Ok(TransactionItem::JsonPatch {
        id,
        operations: json_patch.operations,
    })
}

/// What an ordinary command leaves at an id, for the patches after it.
fn effect_of(fields: &CommandFields<'_>) -> Option<(String, Option<String>)> {
    let id = fields.id.clone()?;
    match fields.kind.as_deref() {
        // A generated id is not known before the write.
        Some("PUT") if !id.ends_with('/') && !id.ends_with('|') => {
            Some((id, fields.document.map(|it| it.get().to_owned())))
        }
        Some("DELETE") if fields.id_prefixed != Some(true) => Some((id, None)),
        _ => None,
    }
}

/// RavenDB's batch result item of a `PATCH` command.
fn patch_result_item(outcome: PatchOutcome, kind: &str, return_document: bool) -> Value {
    let mut item = json!({
        "Id": outcome.id,
        "ChangeVector": outcome.change_vector,
        "LastModified": outcome.last_modified.unwrap_or_else(|| "0001-01-01T00:00:00.0000000".to_owned()),
        "Type": kind,
        "PatchStatus": outcome.status.as_str(),
        "Debug": null,
    });
    if return_document
        && matches!(
            outcome.status,
            crate::patch::PatchStatus::Patched | crate::patch::PatchStatus::Created
        )
        && let (Value::Object(item), Some(document)) = (&mut item, outcome.modified)
    {
        item.insert("ModifiedDocument".to_owned(), document);
    }
    item
}
