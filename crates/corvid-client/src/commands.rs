//! `bulk_docs` commands and their wire encoding.
//!
//! A batch is `{"Commands":[...]}`. When it contains attachment uploads it is sent as
//! `multipart/form-data`: the JSON first (part `main`), then one part per `AttachmentPUT` in
//! command order, which the server pairs with the commands by position.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::ClientError;

/// One command of a `bulk_docs` batch. The batch is applied all-or-nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Creates or replaces a document. `change_vector` makes it conditional: `Some("")` means
    /// "must not exist".
    Put {
        id: String,
        document: Value,
        change_vector: Option<String>,
    },
    /// Deletes a document, optionally only at the given change vector.
    Delete {
        id: String,
        change_vector: Option<String>,
    },
    /// Creates or replaces a document given as JSON text, sent as it is: no parse into a
    /// [`Value`] and back. For producers that already hold the JSON (ETL, bulk loaders).
    PutRaw { id: String, document: RawDocument },
    /// Deletes every document whose id starts with `id_prefix`.
    DeletePrefixed { id_prefix: String },
    /// Stores an attachment on an existing (or same-batch) document.
    AttachmentPut {
        id: String,
        name: String,
        content_type: String,
        bytes: Bytes,
    },
    /// Deletes an attachment.
    AttachmentDelete { id: String, name: String },
}

/// A document as validated JSON text (an object).
#[derive(Debug, Clone)]
pub struct RawDocument(Box<RawValue>);

impl RawDocument {
    /// Checks that `json` is a JSON object (a validating scan, no tree is built).
    pub fn new(json: String) -> Result<RawDocument, serde_json::Error> {
        let raw = RawValue::from_string(json)?;
        if !raw.get().trim_start().starts_with('{') {
            return Err(serde::de::Error::custom("a document must be a JSON object"));
        }
        Ok(RawDocument(raw))
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawDocument {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

/// A serialized batch, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct EncodedBatch {
    pub(crate) body: Bytes,
    pub(crate) content_type: String,
}

/// Serializes `commands`, as JSON or, with attachment uploads, as multipart.
pub(crate) fn encode_batch(commands: &[Command]) -> Result<EncodedBatch, ClientError> {
    let wire_batch = WireBatch {
        commands: commands.iter().map(WireCommand::from_command).collect(),
    };
    let json =
        serde_json::to_vec(&wire_batch).map_err(|source| ClientError::Serialize { source })?;
    let attachments: Vec<AttachmentPart<'_>> = commands
        .iter()
        .filter_map(|command| match command {
            Command::AttachmentPut {
                name,
                content_type,
                bytes,
                ..
            } => Some(AttachmentPart {
                name,
                content_type,
                bytes,
            }),
            _ => None,
        })
        .collect();
    if attachments.is_empty() {
        return Ok(EncodedBatch {
            body: Bytes::from(json),
            content_type: "application/json; charset=utf-8".to_owned(),
        });
    }
    let boundary = loop {
        let candidate = random_boundary();
        let collides = contains(&json, candidate.as_bytes())
            || attachments
                .iter()
                .any(|part| contains(part.bytes, candidate.as_bytes()));
        if !collides {
            break candidate;
        }
    };
    Ok(EncodedBatch {
        body: Bytes::from(multipart_body(&json, &attachments, &boundary)),
        content_type: format!("multipart/form-data; boundary={boundary}"),
    })
}

/// One attachment stream of a multipart batch.
#[derive(Debug)]
struct AttachmentPart<'a> {
    name: &'a str,
    content_type: &'a str,
    bytes: &'a [u8],
}

#[derive(Serialize)]
struct WireBatch<'a> {
    #[serde(rename = "Commands")]
    commands: Vec<WireCommand<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "Type")]
enum WireCommand<'a> {
    #[serde(rename = "PUT", rename_all = "PascalCase")]
    Put {
        id: &'a str,
        change_vector: Option<&'a str>,
        document: &'a Value,
    },
    #[serde(rename = "PUT", rename_all = "PascalCase")]
    PutRaw {
        id: &'a str,
        change_vector: Option<&'a str>,
        document: &'a RawValue,
    },
    #[serde(rename = "DELETE", rename_all = "PascalCase")]
    Delete {
        id: &'a str,
        change_vector: Option<&'a str>,
    },
    #[serde(rename = "DELETE", rename_all = "PascalCase")]
    DeletePrefixed { id: &'a str, id_prefixed: bool },
    #[serde(rename = "AttachmentPUT", rename_all = "PascalCase")]
    AttachmentPut {
        id: &'a str,
        name: &'a str,
        content_type: &'a str,
        change_vector: Option<&'a str>,
    },
    #[serde(rename = "AttachmentDELETE", rename_all = "PascalCase")]
    AttachmentDelete {
        id: &'a str,
        name: &'a str,
        change_vector: Option<&'a str>,
    },
}

impl Command {
    /// Returns the command as it goes over the wire in a `bulk_docs` batch (attachment
    /// content travels separately).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(WireCommand::from_command(self)).unwrap_or(Value::Null)
    }

    /// The command's JSON text exactly as it goes over the wire: unlike [`Command::to_json`],
    /// a raw document keeps its numbers as written (a 30-digit integer stays one).
    pub fn to_json_text(&self) -> String {
        serde_json::to_string(&WireCommand::from_command(self)).unwrap_or_else(|_| "null".into())
    }
}

impl<'a> WireCommand<'a> {
    fn from_command(command: &'a Command) -> Self {
        match command {
            Command::Put {
                id,
                document,
                change_vector,
            } => Self::Put {
                id,
                change_vector: change_vector.as_deref(),
                document,
            },
            Command::PutRaw { id, document } => Self::PutRaw {
                id,
                change_vector: None,
                document: &document.0,
            },
            Command::Delete { id, change_vector } => Self::Delete {
                id,
                change_vector: change_vector.as_deref(),
            },
            Command::DeletePrefixed { id_prefix } => Self::DeletePrefixed {
                id: id_prefix,
                id_prefixed: true,
            },
            Command::AttachmentPut {
                id,
                name,
                content_type,
                ..
            } => Self::AttachmentPut {
                id,
                name,
                content_type,
                change_vector: None,
            },
            Command::AttachmentDelete { id, name } => Self::AttachmentDelete {
                id,
                name,
                change_vector: None,
            },
        }
    }
}

fn multipart_body(json: &[u8], attachments: &[AttachmentPart<'_>], boundary: &str) -> Vec<u8> {
    let attachment_len: usize = attachments.iter().map(|part| part.bytes.len() + 200).sum();
    let mut res = Vec::with_capacity(json.len() + attachment_len + 200);
    res.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    res.extend_from_slice(b"Content-Disposition: form-data; name=\"main\"\r\n\r\n");
    res.extend_from_slice(json);
    for part in attachments {
        let name = quoted_string_content(part.name);
        let content_type = header_value(part.content_type);
        res.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        res.extend_from_slice(
            format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\
                 Content-Type: {content_type}\r\n\
                 Command-Type: AttachmentStream\r\n\r\n"
            )
            .as_bytes(),
        );
        res.extend_from_slice(part.bytes);
    }
    res.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    res
}

/// Escapes a value for a quoted `Content-Disposition` parameter the way browsers do.
fn quoted_string_content(value: &str) -> String {
    value
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Drops line breaks, which would end the header early.
fn header_value(value: &str) -> String {
    value.replace(['\r', '\n'], "")
}

fn random_boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // `RandomState` is seeded randomly per process; hashing a counter gives distinct,
    // unpredictable values without a dependency on a random number crate.
    let random_state = RandomState::new();
    let high = random_state.hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    let low = random_state.hash_one(high);
    format!("corvid-{high:016x}{low:016x}")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wire_json(commands: &[Command]) -> Value {
        let wire_batch = WireBatch {
            commands: commands.iter().map(WireCommand::from_command).collect(),
        };
        serde_json::to_value(&wire_batch).unwrap()
    }

    #[test]
    fn encodes_put_and_delete_in_ravendb_shape() {
        let commands = vec![
            Command::Put {
                id: "users/1".to_owned(),
                document: json!({"name": "Ann", "@metadata": {"@collection": "Users"}}),
                change_vector: None,
            },
            Command::Delete {
                id: "users/2".to_owned(),
                change_vector: Some("A:1-x".to_owned()),
            },
            Command::DeletePrefixed {
                id_prefix: "orders/".to_owned(),
            },
            Command::AttachmentDelete {
                id: "users/1".to_owned(),
                name: "a.txt".to_owned(),
            },
        ];
        let batch = encode_batch(&commands).unwrap();
        assert_eq!(batch.content_type, "application/json; charset=utf-8");
        assert_eq!(
            std::str::from_utf8(&batch.body).unwrap(),
            concat!(
                r#"{"Commands":["#,
                r#"{"Type":"PUT","Id":"users/1","ChangeVector":null,"Document":{"name":"Ann","@metadata":{"@collection":"Users"}}},"#,
                r#"{"Type":"DELETE","Id":"users/2","ChangeVector":"A:1-x"},"#,
                r#"{"Type":"DELETE","Id":"orders/","IdPrefixed":true},"#,
                r#"{"Type":"AttachmentDELETE","Id":"users/1","Name":"a.txt","ChangeVector":null}"#,
                "]}"
            )
        );
    }

    #[test]
    fn attachment_put_switches_to_multipart() {
        let commands = vec![
            Command::AttachmentPut {
                id: "users/1".to_owned(),
                name: "a.bin".to_owned(),
                content_type: "application/octet-stream".to_owned(),
                bytes: Bytes::from_static(b"\x00\x01"),
            },
            Command::Put {
                id: "users/1".to_owned(),
                document: json!({}),
                change_vector: None,
            },
        ];
        let batch = encode_batch(&commands).unwrap();
        let boundary = batch
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        assert!(
            batch
                .body
                .starts_with(format!("--{boundary}\r\n").as_bytes())
        );
        assert!(
            batch
                .body
                .ends_with(format!("\r\n--{boundary}--\r\n").as_bytes())
        );
    }

    #[test]
    fn multipart_body_has_main_then_one_part_per_attachment_in_order() {
        let json = br#"{"Commands":[]}"#;
        let attachments = [
            AttachmentPart {
                name: "a.txt",
                content_type: "text/plain",
                bytes: b"hello",
            },
            AttachmentPart {
                name: "say \"hi\".bin",
                content_type: "application/x\r\nEvil: 1",
                bytes: b"\x00\xff",
            },
        ];
        let body = multipart_body(json, &attachments, "B");
        let expected: &[u8] = b"--B\r\n\
Content-Disposition: form-data; name=\"main\"\r\n\r\n\
{\"Commands\":[]}\r\n\
--B\r\n\
Content-Disposition: form-data; name=\"a.txt\"; filename=\"a.txt\"\r\n\
Content-Type: text/plain\r\n\
Command-Type: AttachmentStream\r\n\r\n\
hello\r\n\
--B\r\n\
Content-Disposition: form-data; name=\"say %22hi%22.bin\"; filename=\"say %22hi%22.bin\"\r\n\
Content-Type: application/xEvil: 1\r\n\
Command-Type: AttachmentStream\r\n\r\n\
\x00\xff\r\n\
--B--\r\n";
        assert_eq!(body, expected);
    }

    #[test]
    fn boundaries_differ_between_calls() {
        assert_ne!(random_boundary(), random_boundary());
    }

    #[test]
    fn attachment_put_command_json_has_name_and_content_type() {
        let value = wire_json(&[Command::AttachmentPut {
            id: "users/1".to_owned(),
            name: "a.bin".to_owned(),
            content_type: "image/png".to_owned(),
            bytes: Bytes::new(),
        }]);
        assert_eq!(
            value,
            json!({"Commands": [{"Type": "AttachmentPUT", "Id": "users/1", "Name": "a.bin",
                                 "ContentType": "image/png", "ChangeVector": null}]})
        );
    }
}
