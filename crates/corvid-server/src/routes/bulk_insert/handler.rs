//! `POST /databases/{db}/bulk_insert?id=<operation id>`: the handler. The body is forwarded
//! frame by frame to a blocking thread that decodes (gzip), parses and applies it (see
//! `apply.rs`); the answer comes once every command up to the closing `]` is durable, or with the
//! first error.

use std::io::Read;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::{Buf as _, Bytes};
use http_body_util::BodyExt as _;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::extract::{Db, Params};
use crate::http::json_text;
use crate::routes::bulk_insert::apply::run_bulk_insert;
use crate::routes::bulk_insert::commands::BulkInsertOptions;
use crate::state::AppState;

/// Body frames buffered between the connection and the parsing thread.
const FRAMES_IN_FLIGHT: usize = 64;

/// How the body is encoded (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyEncoding {
    Identity,
    Gzip,
}

pub(crate) async fn bulk_insert(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(operation_id) = params.number::<u64>("id")? else {
        return Err(ApiError::bad_request(
            "query string parameter `id` is required: take one from /operations/next-operation-id",
        ));
    };
    let encoding = body_encoding(&headers)?;
    let operations = state.operations().clone();
    operations.begin(database.name(), operation_id)?;

    let (sender, receiver) = mpsc::channel(FRAMES_IN_FLIGHT);
    let options = BulkInsertOptions {
        max_command_bytes: state.options().max_body_bytes,
        skip_overwrite_if_unchanged: params.flag("skipOverwriteIfUnchanged"),
    };
    let worker = tokio::task::spawn_blocking(move || {
        let body_reader = BodyReader {
            receiver,
            current: Bytes::new(),
            pending_error: None,
        };
        let input: Box<dyn Read> = match encoding {
            BodyEncoding::Identity => Box::new(body_reader),
            BodyEncoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body_reader)),
        };
        run_bulk_insert(database, operations, operation_id, input, &options)
    });
    // The worker stops at the closing `]`: the answer must not wait for the end of the body,
    // which the Node.js client never sends.
    let forward = forward_body(body, sender);
    tokio::pin!(forward);
    let mut worker = worker;
    let outcome = tokio::select! {
        outcome = &mut worker => outcome,
        () = &mut forward => worker.await,
    };
    match outcome {
        // RavenDB answers 201 with an empty body; both clients accept exactly that.
        Ok(Ok(_)) => Ok(json_text(StatusCode::CREATED, String::new())),
        Ok(Err(error)) => Err(error),
        Err(error) => Err(ApiError::internal(error)),
    }
}

/// Sends the body's data frames to the parsing thread until the body ends or the thread stops
/// listening (it failed, and the rest of the body does not matter).
async fn forward_body(body: Body, sender: mpsc::Sender<std::io::Result<Bytes>>) {
    let mut body = body;
    loop {
        let frame = match body.frame().await {
            None => return,
            Some(Ok(frame)) => frame,
            Some(Err(error)) => {
                let _ = sender.send(Err(std::io::Error::other(error))).await;
                return;
            }
        };
        let Ok(data) = frame.into_data() else {
            // Trailers carry no commands.
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if sender.send(Ok(data)).await.is_err() {
            return;
        }
    }
}

fn body_encoding(headers: &HeaderMap) -> Result<BodyEncoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(BodyEncoding::Identity);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
        return Ok(BodyEncoding::Gzip);
    }
    if text.is_empty() || text.eq_ignore_ascii_case("identity") {
        return Ok(BodyEncoding::Identity);
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Raven.Client.Exceptions.BadRequestException",
        format!(
            "bulk insert bodies may be sent plain or as gzip; Content-Encoding {text:?} is not supported"
        ),
    ))
}

/// The body as a blocking `Read`, fed by [`forward_body`]. Only for a blocking thread.
struct BodyReader {
    receiver: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
    /// A read error that came after data already returned; the next read returns it.
    pending_error: Option<std::io::Error>,
}

impl Read for BodyReader {
    /// Waits for data only when none has arrived; otherwise returns what has, up to `out`'s
    /// size, so a reader asking for much gets much when it is there.
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if let Some(error) = self.pending_error.take() {
            return Err(error);
        }
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(data)) => self.current = data,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let mut n_read = 0;
        loop {
            let n = (out.len() - n_read).min(self.current.len());
            out[n_read..n_read + n].copy_from_slice(&self.current[..n]);
            self.current.advance(n);
            n_read += n;
            if n_read == out.len() {
                return Ok(n_read);
            }
            match self.receiver.try_recv() {
                Ok(Ok(data)) => self.current = data,
                // An error or the end is seen by the next read.
                Ok(Err(error)) => {
                    self.pending_error = Some(error);
                    return Ok(n_read);
                }
                Err(_) => return Ok(n_read),
            }
        }
    }
}
