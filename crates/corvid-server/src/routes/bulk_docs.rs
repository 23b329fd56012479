//! `POST /databases/{db}/bulk_docs`: a batch of commands applied in one transaction, all or
//! nothing. JSON bodies, or `multipart/form-data` when attachments travel with the batch.
//!
//! The body is received whole first (a slow client never holds the database's writer), then
//! parsed on a blocking thread and handed to the writer in parts as they are parsed: the writer
//! applies the first commands while the rest are parsed, and commits the batch once the last
//! part is in. An invalid command anywhere fails the whole batch, and nothing of it is written.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use corvid_store::{
    Database, PutDocument, RequestPart, WriteOp, WriteResult, push_json_string, validate_id,
};
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{BodyBytes, Db};
use crate::http::json_text;

/// Commands per part handed to the writer: few enough that the writer starts soon after the
/// body arrives, enough that handing a part over costs little per command.
const PART_COMMANDS: usize = 128;
/// Parts parsed ahead of the writer. The body is in memory already, so this only bounds the
/// operations built ahead of it.
const PARTS_IN_FLIGHT: usize = 4;

pub(crate) async fn bulk_docs(
    Db(database): Db,
    headers: HeaderMap,
    BodyBytes(bytes): BodyBytes,
) -> Result<Response, ApiError> {
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
    let results = write_in_parts(&database, main, streams).await?;
    Ok(json_text(StatusCode::CREATED, results_json(&results)))
}

/// Parses the batch on a blocking thread and hands its operations to the database's writer in
/// parts as they are parsed (see the module comment); returns the results, per part, once the
/// batch is durable.
async fn write_in_parts(
    database: &Arc<Database>,
    body: Bytes,
    streams: VecDeque<AttachmentStream>,
) -> Result<Vec<Vec<WriteResult>>, ApiError> {
    let (part_sender, part_receiver) = sync_channel(PARTS_IN_FLIGHT);
    let (reply_sender, reply_receiver) = tokio::sync::oneshot::channel();
    database.write_in_parts_async(
        part_receiver,
        Box::new(move |result| {
            let _ = reply_sender.send(result);
        }),
    );
    let parsed = tokio::task::spawn_blocking(move || {
        // Once the writer stops listening (a command failed there), the rest is still parsed:
        // a malformed body is reported as such whatever the writer found first.
        let mut writer_listening = true;
        let parsed = parse_commands_in_parts(&body, streams, PART_COMMANDS, |ops| {
            writer_listening = writer_listening && part_sender.send(RequestPart::Ops(ops)).is_ok();
        });
        if parsed.is_ok() {
            let _ = part_sender.send(RequestPart::End);
        }
        // Without the `End`, dropping the sender abandons the request: nothing is written.
        parsed
    })
    .await;
    match parsed {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(error),
        Err(error) => {
            return Err(ApiError::internal(format!(
                "parsing the batch failed: {error}"
            )));
        }
    }
    match reply_receiver.await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ApiError::database_missing(database.name())),
    }
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

/// Parses `{"Commands": [...]}` into store operations, handing them to `deliver` in parts of
/// at most `part_size` commands as they are parsed. Any invalid command fails the whole batch;
/// the caller must then discard the parts delivered before it.
pub(crate) fn parse_commands_in_parts(
    body: &[u8],
    streams: VecDeque<AttachmentStream>,
    part_size: usize,
    deliver: impl FnMut(Vec<WriteOp>),
) -> Result<(), ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("malformed JSON: the body is not UTF-8"))?;
    let mut sink = CommandSink {
        streams,
        part: Vec::with_capacity(part_size),
        part_size: part_size.max(1),
        deliver,
        n_commands: 0,
        commands_key_seen: false,
        commands_given: false,
        command_error: None,
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let outcome = BatchSeed(&mut sink)
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    if let Some(error) = sink.command_error.take() {
        return Err(error);
    }
    outcome.map_err(|error| ApiError::bad_request(format!("malformed batch: {error}")))?;
    if !sink.commands_given {
        return Err(ApiError::bad_request("`Commands` is required"));
    }
    if !sink.streams.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} attachment streams have no AttachmentPUT command",
            sink.streams.len()
        )));
    }
    if !sink.part.is_empty() {
        (sink.deliver)(std::mem::take(&mut sink.part));
    }
    Ok(())
}

/// Where [`parse_commands_in_parts`] collects operations while serde walks the body.
struct CommandSink<F> {
    streams: VecDeque<AttachmentStream>,
    part: Vec<WriteOp>,
    part_size: usize,
    deliver: F,
    n_commands: usize,
    commands_key_seen: bool,
    commands_given: bool,
    /// The first invalid command; serde only carries a placeholder error out.
    command_error: Option<ApiError>,
}

impl<F: FnMut(Vec<WriteOp>)> CommandSink<F> {
    fn push(&mut self, command: CommandIn<'_>) -> Result<(), ApiError> {
        let op = parse_command(self.n_commands, command, &mut self.streams)?;
        self.n_commands += 1;
        self.part.push(op);
        if self.part.len() >= self.part_size {
            let full = std::mem::replace(&mut self.part, Vec::with_capacity(self.part_size));
            (self.deliver)(full);
        }
        Ok(())
    }
}

/// The batch object: `Commands` goes to the sink, other keys are skipped.
struct BatchSeed<'s, F>(&'s mut CommandSink<F>);

impl<'de, F: FnMut(Vec<WriteOp>)> DeserializeSeed<'de> for BatchSeed<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Vec<WriteOp>)> Visitor<'de> for BatchSeed<'_, F> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a batch object with `Commands`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key != "Commands" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if self.0.commands_key_seen {
                return Err(A::Error::custom("duplicate field `Commands`"));
            }
            self.0.commands_key_seen = true;
            map.next_value_seed(CommandsSeed(&mut *self.0))?;
        }
        Ok(())
    }
}

/// The `Commands` array (or `null`, which counts as missing).
struct CommandsSeed<'s, F>(&'s mut CommandSink<F>);

impl<'de, F: FnMut(Vec<WriteOp>)> DeserializeSeed<'de> for CommandsSeed<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, F: FnMut(Vec<WriteOp>)> Visitor<'de> for CommandsSeed<'_, F> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("an array of commands")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.commands_given = true;
        while let Some(command) = seq.next_element::<CommandIn<'de>>()? {
            if let Err(error) = self.0.push(command) {
                self.0.command_error = Some(error);
                return Err(A::Error::custom("invalid command"));
            }
        }
        Ok(())
    }
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
fn results_json(parts: &[Vec<WriteResult>]) -> String {
    let n_results: usize = parts.iter().map(Vec::len).sum();
    let mut out = String::with_capacity(n_results * 160 + 16);
    out.push_str("{\"Results\":[");
    for (idx, result) in parts.iter().flatten().enumerate() {
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
