//! The bulk insert body, read incrementally: a JSON array of commands, `[{…},{…},…]`, where an
//! `AttachmentPUT` command is followed directly by `ContentLength` raw bytes (the attachment),
//! as both official clients write it. [`CommandReader`] holds at most one command (and one
//! attachment) in memory at a time, however long the body is.
//!
//! Each command object is deserialized by serde_json straight from the read buffer, documents
//! borrowed as raw JSON text; a command cut by the end of the buffer fails with an end-of-input
//! error, and is parsed again once the buffer holds at least twice as many bytes, so a command of
//! any size costs linear time.

use std::io::Read;

use crate::error::ApiError;
use crate::routes::bulk_docs::{CommandIn, put_operation, required_id};
use corvid_store::WriteOp;

/// How a bulk insert reads its stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BulkInsertOptions {
    /// The largest command (or attachment) accepted, in bytes.
    pub max_command_bytes: usize,
    /// `skipOverwriteIfUnchanged`: a `PUT` of a document as it is stored writes nothing.
    pub skip_overwrite_if_unchanged: bool,
}

/// How many bytes one read from the input asks for.
const READ_BYTES: usize = 64 * 1024;

/// One command of the stream, ready for the store.
pub(crate) enum BulkCommand {
    /// A `PUT`: the document, its id for progress reports and its size in the body.
    Put {
        id: String,
        op: WriteOp,
        n_bytes: usize,
    },
    /// An `AttachmentPUT` with its content of `n_bytes`.
    Attachment { op: WriteOp, n_bytes: usize },
    /// A `HeartBeat`: the client keeps the connection alive; nothing to apply.
    HeartBeat,
}

/// Where the reader is in the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    BeforeArray,
    BeforeFirstCommand,
    AfterCommand,
    AfterArray,
}

/// Reads [`BulkCommand`]s from a body as it arrives.
pub(crate) struct CommandReader<R> {
    input: R,
    buffer: Vec<u8>,
    /// The first byte of `buffer` not consumed yet.
    start: usize,
    /// Bytes of the body consumed before `buffer[0]`, for positions in messages.
    offset: u64,
    input_ended: bool,
    position: Position,
    /// The largest command (or attachment) accepted, in bytes.
    max_command_bytes: usize,
    /// `skipOverwriteIfUnchanged`: a `PUT` of a document as it is stored writes nothing.
    skip_overwrite_if_unchanged: bool,
    /// Commands read so far (heartbeats included), for messages.
    n_commands: u64,
}

/// What a command object says, before an attachment's bytes are read.
enum Parsed {
    Done(BulkCommand),
    AttachmentHeader {
        document_id: String,
        name: String,
        content_type: String,
        content_length: usize,
    },
}

impl<R: Read> CommandReader<R> {
    pub fn new(input: R, options: &BulkInsertOptions) -> CommandReader<R> {
        CommandReader {
            input,
            buffer: Vec::with_capacity(READ_BYTES * 2),
            start: 0,
            offset: 0,
            input_ended: false,
            position: Position::BeforeArray,
            max_command_bytes: options.max_command_bytes,
            skip_overwrite_if_unchanged: options.skip_overwrite_if_unchanged,
            n_commands: 0,
        }
    }

    /// Returns the next command, or `None` after the closing `]` at the end of the body.
    ///
    /// Nothing after the `]` is read: the Node.js client never ends its request body, and waits
    /// for the answer after sending the `]`, as RavenDB answers then.
    pub fn next_command(&mut self) -> Result<Option<BulkCommand>, ApiError> {
        loop {
            if self.position == Position::AfterArray {
                return Ok(None);
            }
            let Some(byte) = self.next_significant_byte()? else {
                return match self.position {
                    Position::AfterArray => Ok(None),
                    Position::BeforeArray => Err(ApiError::bad_request(
                        "the bulk insert body is empty; expected a JSON array of commands",
                    )),
                    Position::BeforeFirstCommand | Position::AfterCommand => {
                        Err(self.malformed("the body ended before the closing `]`"))
                    }
                };
            };
            match (self.position, byte) {
                (Position::BeforeArray, b'[') => {
                    self.start += 1;
                    self.position = Position::BeforeFirstCommand;
                }
                (Position::BeforeFirstCommand | Position::AfterCommand, b']') => {
                    self.start += 1;
                    self.position = Position::AfterArray;
                }
                (Position::AfterCommand, b',') => {
                    self.start += 1;
                    let Some(b'{') = self.next_significant_byte()? else {
                        return Err(self.malformed("expected a command object after `,`"));
                    };
                    return self.command().map(Some);
                }
                (Position::BeforeFirstCommand, b'{') => return self.command().map(Some),
                (Position::BeforeArray, _) => {
                    return Err(self.malformed("expected `[`: the body must be a JSON array"));
                }
                (Position::BeforeFirstCommand, _) => {
                    return Err(self.malformed("expected a command object or `]`"));
                }
                (Position::AfterCommand, _) => {
                    return Err(self.malformed("expected `,` or `]` after a command"));
                }
                (Position::AfterArray, _) => return Ok(None),
            }
        }
    }

    /// Reads one command object (the buffer starts at its `{`), and its attachment if any.
    fn command(&mut self) -> Result<BulkCommand, ApiError> {
        self.n_commands += 1;
        let (parsed, used) = self.parse_object()?;
        self.start += used;
        self.position = Position::AfterCommand;
        match parsed {
            Parsed::Done(command) => Ok(command),
            Parsed::AttachmentHeader {
                document_id,
                name,
                content_type,
                content_length,
            } => {
                if !self.fill(content_length)? {
                    return Err(self.malformed(format!(
                        "the body ended inside the {content_length} bytes of attachment `{name}` of `{document_id}`"
                    )));
                }
                let content = self.buffer[self.start..self.start + content_length].to_vec();
                self.start += content_length;
                Ok(BulkCommand::Attachment {
                    n_bytes: content_length,
                    op: WriteOp::AttachmentPut {
                        document_id,
                        name,
                        content_type,
                        content,
                        expected_change_vector: None,
                    },
                })
            }
        }
    }

    /// Deserializes the command object at the start of the buffer, reading more of the body
    /// while it is cut short. Returns the command and the bytes it took.
    fn parse_object(&mut self) -> Result<(Parsed, usize), ApiError> {
        loop {
            let available = &self.buffer[self.start..];
            let mut stream =
                serde_json::Deserializer::from_slice(available).into_iter::<CommandIn<'_>>();
            let error = match stream.next() {
                Some(Ok(command)) => {
                    let used = stream.byte_offset();
                    if used > self.max_command_bytes {
                        return Err(self.too_large());
                    }
                    let parsed = self.interpret(command)?;
                    return Ok((parsed, used));
                }
                Some(Err(error)) => error,
                None => return Err(self.malformed("expected a command object")),
            };
            // A buffer cut inside a number (`1.`, `1e`) is a syntax error to serde_json, not an
            // EOF: only an object whose closing brace has arrived is really malformed.
            let cut_short = error.is_eof() || !object_is_complete(available);
            if !cut_short || self.input_ended {
                return Err(self.malformed(format!("command {}: {error}", self.n_commands)));
            }
            let n_available = available.len();
            if n_available >= self.max_command_bytes {
                return Err(self.too_large());
            }
            // One read, of what has arrived (at most as much again as is buffered): waiting for
            // more than the command needs could wait for bytes the client never sends. At the
            // end of the body the parse above reports the cut command precisely.
            self.read_more(n_available.max(READ_BYTES))?;
        }
    }

    fn interpret(&self, command: CommandIn<'_>) -> Result<Parsed, ApiError> {
        let idx = self.n_commands;
        let kind = command.kind.unwrap_or_default();
        let what = format!("bulk insert command {idx}");
        let id_of = |id: Option<String>| required_id(&what, &kind, id);
        match kind.as_str() {
            "PUT" => {
                let id = id_of(command.id)?;
                let n_bytes = command.document.map_or(0, |it| it.get().len());
                let op = match put_operation(&what, &id, command.document, None)? {
                    WriteOp::Put(put) if self.skip_overwrite_if_unchanged => {
                        WriteOp::Put(put.skipping_if_unchanged())
                    }
                    other => other,
                };
                Ok(Parsed::Done(BulkCommand::Put { id, op, n_bytes }))
            }
            "AttachmentPUT" => {
                let document_id = id_of(command.id)?;
                let name = command.name.unwrap_or_default();
                if name.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "bulk insert command {idx} (AttachmentPUT `{document_id}`): `Name` is required"
                    )));
                }
                let Some(content_length) = command.content_length else {
                    return Err(ApiError::bad_request(format!(
                        "bulk insert command {idx} (AttachmentPUT `{document_id}`/`{name}`): `ContentLength` is required"
                    )));
                };
                let content_length = usize::try_from(content_length)
                    .ok()
                    .filter(|it| *it <= self.max_command_bytes)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "bulk insert command {idx} (AttachmentPUT `{document_id}`/`{name}`): the attachment is larger than the limit of {} bytes",
                            self.max_command_bytes
                        ))
                    })?;
                Ok(Parsed::AttachmentHeader {
                    document_id,
                    name,
                    content_type: command.content_type.unwrap_or_default(),
                    content_length,
                })
            }
            "HeartBeat" => Ok(Parsed::Done(BulkCommand::HeartBeat)),
            "Counters" => Err(unsupported(idx, "counters")),
            "TimeSeries" | "TimeSeriesBulkInsert" | "TimeSeriesWithIncrements" => {
                Err(unsupported(idx, "time series"))
            }
            "" => Err(ApiError::bad_request(format!(
                "bulk insert command {idx}: `Type` is required"
            ))),
            other => Err(ApiError::bad_request(format!(
                "bulk insert command {idx}: command type `{other}` is not a bulk insert command (PUT, AttachmentPUT, Counters, TimeSeriesBulkInsert)"
            ))),
        }
    }

    /// Skips whitespace and returns the next byte without consuming it; `None` at the end of
    /// the body.
    fn next_significant_byte(&mut self) -> Result<Option<u8>, ApiError> {
        loop {
            while let Some(byte) = self.buffer.get(self.start) {
                if !byte.is_ascii_whitespace() {
                    return Ok(Some(*byte));
                }
                self.start += 1;
            }
            if !self.fill(1)? {
                return Ok(None);
            }
        }
    }

    /// Reads until at least `wanted` unconsumed bytes are buffered; false if the body ends first.
    fn fill(&mut self, wanted: usize) -> Result<bool, ApiError> {
        while self.buffer.len() - self.start < wanted {
            if !self.read_more(READ_BYTES.max(wanted - (self.buffer.len() - self.start)))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads once, up to `room` bytes; false at the end of the body.
    fn read_more(&mut self, room: usize) -> Result<bool, ApiError> {
        if self.input_ended {
            return Ok(false);
        }
        // Consumed bytes go first, so the buffer holds one command, not the body.
        if self.start > 0 {
            self.offset += self.start as u64;
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        let filled = self.buffer.len();
        self.buffer.resize(filled + room, 0);
        let read = loop {
            match self.input.read(&mut self.buffer[filled..]) {
                Ok(it) => break it,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.buffer.truncate(filled);
                    return Err(ApiError::bad_request(format!(
                        "failed to read the bulk insert body: {error}"
                    )));
                }
            }
        };
        self.buffer.truncate(filled + read);
        if read == 0 {
            self.input_ended = true;
        }
        Ok(read > 0)
    }

    fn too_large(&self) -> ApiError {
        self.malformed(format!(
            "command {} is larger than the limit of {} bytes",
            self.n_commands, self.max_command_bytes
        ))
    }

    fn malformed(&self, reason: impl std::fmt::Display) -> ApiError {
        let at = self.offset + self.start as u64;
        ApiError::bad_request(format!("malformed bulk insert body at byte {at}: {reason}"))
    }
}

fn unsupported(idx: u64, feature: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "Raven.Client.Exceptions.NotSupportedException",
        format!("bulk insert command {idx}: bulk insert of {feature} is not supported by Corvid"),
    )
}

/// Whether `bytes`, which start with a JSON object's `{`, hold that object's closing `}`:
/// braces are counted outside strings, escapes respected.
fn object_is_complete(bytes: &[u8]) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the body in pieces of `piece` bytes, as a slow client would send it.
    struct Pieces<'a> {
        data: &'a [u8],
        piece: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.piece.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn options(max_command_bytes: usize) -> BulkInsertOptions {
        BulkInsertOptions {
            max_command_bytes,
            skip_overwrite_if_unchanged: false,
        }
    }

    fn read_all(body: &[u8], piece: usize) -> Result<Vec<String>, ApiError> {
        let mut reader = CommandReader::new(Pieces { data: body, piece }, &options(1 << 20));
        let mut seen = Vec::new();
        while let Some(command) = reader.next_command()? {
            seen.push(match command {
                BulkCommand::Put { id, .. } => format!("put {id}"),
                BulkCommand::Attachment {
                    op: WriteOp::AttachmentPut { name, content, .. },
                    ..
                } => format!("attachment {name} {}", String::from_utf8_lossy(&content)),
                BulkCommand::Attachment { .. } => "attachment?".to_owned(),
                BulkCommand::HeartBeat => "heartbeat".to_owned(),
            });
        }
        Ok(seen)
    }

    const BODY: &str = r#" [ {"Id":"users/1","Type":"PUT","Document":{"Name":"a \"quoted\" \\ name","@metadata":{"@collection":"Users"}}},
        {"Type":"HeartBeat"} ,{"Id":"users/1","Type":"AttachmentPUT","Name":"n.txt","ContentType":"text/plain","ContentLength":5}],[x,,{"Id":"users/2","Type":"PUT","Document":{"Text":"\u00e9]"}} ] "#;

    #[test]
    fn reads_every_command_whatever_the_pieces() {
        let expected = vec![
            "put users/1",
            "heartbeat",
            "attachment n.txt ],[x,",
            "put users/2",
        ];
        for piece in [1, 2, 3, 7, 64, 1 << 16] {
            assert_eq!(
                read_all(BODY.as_bytes(), piece).expect("valid body"),
                expected,
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn numbers_cut_anywhere_read_the_same() {
        // serde_json calls `1.` or `1e` at the end of its input a syntax error, not an EOF.
        let body =
            br#"[{"Id":"n/1","Type":"PUT","Document":{"A":1.5e3,"B":-2.25E-7,"C":[10,0.5]}}]"#;
        for piece in 1..body.len() {
            assert_eq!(
                read_all(body, piece).expect("valid body"),
                vec!["put n/1"],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn an_empty_array_has_no_commands() {
        assert!(read_all(b" [ ] ", 1).expect("valid").is_empty());
    }

    /// Reads one byte at a time and fails the test if asked for more than `limit` bytes.
    struct NoReadPast<'a> {
        data: &'a [u8],
        limit: usize,
    }

    impl Read for NoReadPast<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            assert!(self.limit > 0, "read past the closing `]`");
            self.limit -= 1;
            let n = out.len().min(self.data.len()).min(1);
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn stops_reading_at_the_closing_bracket() {
        let body = br#"[{"Id":"a","Type":"PUT","Document":{}}]"#;
        let mut reader = CommandReader::new(
            NoReadPast {
                data: body,
                limit: body.len(),
            },
            &options(1 << 20),
        );
        assert!(reader.next_command().expect("put").is_some());
        assert!(reader.next_command().expect("end").is_none());
        assert!(reader.next_command().expect("still the end").is_none());
    }

    #[test]
    fn rejects_bad_bodies_with_a_position() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("{}", "expected `[`"),
            ("[", "before the closing"),
            (
                r#"[{"Id":"a","Type":"PUT","Document":{"x":1}}"#,
                "before the closing",
            ),
            (r#"[{"Id":"a","Type":"PUT","Document":{"x":1"#, "EOF"),
            (
                r#"[{"Id":"a","Type":"PUT","Document":5}]"#,
                "must be an object",
            ),
            (r#"[{"Id":"","Type":"PUT","Document":{}}]"#, "PUT"),
            (r#"[{"Id":"a","Type":"PUT"}]"#, "`Document` is required"),
            (
                r#"[{"Id":"a","Type":"PUT","Document":{}} {"#,
                "expected `,` or `]`",
            ),
            (
                r#"[{"Id":"a","Type":"Counters"}]"#,
                "counters is not supported",
            ),
            (
                r#"[{"Id":"a","Type":"TimeSeriesBulkInsert"}]"#,
                "time series is not supported",
            ),
            (
                r#"[{"Id":"a","Type":"DELETE"}]"#,
                "not a bulk insert command",
            ),
            (
                r#"[{"Id":"a","Type":"AttachmentPUT","Name":"n","ContentLength":9}abc]"#,
                "ended inside",
            ),
            (
                r#"[{"Id":"a","Type":"PUT","Document":{"x":tru}}]"#,
                "expected",
            ),
            ("[1]", "expected a command object"),
        ];
        for (body, needle) in cases {
            for piece in [1, 1 << 16] {
                let error = read_all(body.as_bytes(), piece).expect_err(body);
                assert!(
                    error.message.contains(needle),
                    "{body:?} in pieces of {piece}: {}",
                    error.message
                );
            }
        }
    }

    #[test]
    fn a_command_larger_than_the_limit_is_refused() {
        let big = format!(
            r#"[{{"Id":"a","Type":"PUT","Document":{{"x":"{}"}}}}]"#,
            "y".repeat(5000)
        );
        let mut reader = CommandReader::new(big.as_bytes(), &options(1000));
        let error = reader.next_command().err().expect("too large");
        assert!(
            error.message.contains("larger than the limit"),
            "{}",
            error.message
        );
    }
}
