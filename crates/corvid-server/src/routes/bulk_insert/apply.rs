//! Applies a stream of bulk insert commands to the store in chunks, pipelined: a chunk goes to
//! the database's writer as soon as it is full, and the next one is parsed while the writer
//! commits it. At most [`CHUNKS_IN_FLIGHT`] chunks wait for the writer, so a slow disk slows the
//! reading of the body (and so the client) instead of filling memory.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use axum::http::StatusCode;
use corvid_store::{Database, WriteError, WriteOp, WriteResult};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::operations::{OperationStatus, Operations};
use crate::routes::bulk_insert::commands::{BulkCommand, BulkInsertOptions, CommandReader};

/// The most commands in one chunk (one writer request).
const CHUNK_MAX_OPS: usize = 16 * 1024;
/// The most document and attachment bytes in one chunk.
const CHUNK_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Chunks handed to the writer and not yet durable. Two let the writer merge or commit one
/// while the next fills; more would only hold memory.
const CHUNKS_IN_FLIGHT: usize = 2;

/// What a finished bulk insert did.
#[derive(Debug, Default, Clone)]
pub(crate) struct BulkInsertSummary {
    pub n_documents: u64,
    pub n_attachments: u64,
    pub n_batches: u64,
    pub last_id: Option<String>,
}

impl BulkInsertSummary {
    /// RavenDB's `BulkInsertProgress`, shown by `/operations/state` while the operation runs.
    fn progress_json(&self) -> Value {
        json!({
            "$type": "Raven.Client.Documents.Operations.BulkInsertProgress, Raven.Client",
            "Total": self.n_documents + self.n_attachments,
            "BatchCount": self.n_batches,
            "LastProcessedId": self.last_id,
            "DocumentsProcessed": self.n_documents,
            "AttachmentsProcessed": self.n_attachments,
        })
    }

    /// RavenDB's `BulkOperationResult`, the `Result` of a completed bulk insert.
    pub fn result_json(&self) -> Value {
        let total = self.n_documents + self.n_attachments;
        json!({
            "$type": "Raven.Client.Documents.Operations.BulkOperationResult, Raven.Client",
            "Total": total,
            "DocumentsProcessed": self.n_documents,
            "AttachmentsProcessed": self.n_attachments,
            "Message": format!("Processed {total} items."),
            "Details": [],
            "Query": null,
        })
    }
}

/// One bulk insert: reads every command of `input`, applies them, and records the outcome as
/// operation `operation_id`. Runs on a blocking thread; returns once everything it
/// acknowledges is durable.
pub(crate) fn run_bulk_insert(
    database: Arc<Database>,
    operations: Arc<Operations>,
    operation_id: u64,
    input: impl Read,
    options: &BulkInsertOptions,
) -> Result<BulkInsertSummary, ApiError> {
    let mut pipeline = Pipeline {
        database,
        operations: operations.clone(),
        operation_id,
        in_flight: VecDeque::new(),
        committed: BulkInsertSummary::default(),
    };
    let outcome = read_and_apply(&mut pipeline, CommandReader::new(input, options));
    // Whatever happened, wait for the chunks already handed over: they commit (RavenDB keeps
    // what a failed bulk insert wrote before the failure), and the summary must say so.
    let drained = pipeline.drain();
    let outcome = outcome.and(drained);
    let summary = pipeline.committed;
    match outcome {
        Ok(()) => {
            operations.complete(operation_id, summary.result_json());
            Ok(summary)
        }
        Err(error) => {
            let error = ApiError {
                message: format!(
                    "bulk insert failed after {} documents and {} attachments in {} batches{}: {}",
                    summary.n_documents,
                    summary.n_attachments,
                    summary.n_batches,
                    summary
                        .last_id
                        .as_ref()
                        .map(|it| format!(" (last document id `{it}`)"))
                        .unwrap_or_default(),
                    error.message
                ),
                ..error
            };
            operations.fail(operation_id, &error);
            Err(error)
        }
    }
}

fn read_and_apply(
    pipeline: &mut Pipeline,
    mut reader: CommandReader<impl Read>,
) -> Result<(), ApiError> {
    let mut chunk = Chunk::default();
    loop {
        let command = match reader.next_command() {
            Ok(Some(it)) => it,
            Ok(None) => break,
            Err(error) => {
                // As RavenDB does, the commands read before a malformed one are written.
                if !chunk.ops.is_empty() {
                    pipeline.submit(chunk)?;
                }
                return Err(error);
            }
        };
        match command {
            BulkCommand::Put { id, op, n_bytes } => {
                chunk.n_bytes += id.len() + n_bytes;
                chunk.ops.push(op);
                chunk.n_documents += 1;
                chunk.last_id = Some(id);
            }
            BulkCommand::Attachment { op, n_bytes } => {
                chunk.n_bytes += n_bytes;
                chunk.ops.push(op);
                chunk.n_attachments += 1;
            }
            BulkCommand::HeartBeat => {}
        }
        if chunk.ops.len() >= CHUNK_MAX_OPS || chunk.n_bytes >= CHUNK_MAX_BYTES {
            pipeline.submit(std::mem::take(&mut chunk))?;
        }
    }
    if !chunk.ops.is_empty() {
        pipeline.submit(chunk)?;
    }
    Ok(())
}

#[derive(Default)]
struct Chunk {
    ops: Vec<WriteOp>,
    n_bytes: usize,
    n_documents: u64,
    n_attachments: u64,
    last_id: Option<String>,
}

/// A chunk handed to the writer, waiting to be durable.
struct InFlight {
    reply: Receiver<Result<Vec<WriteResult>, WriteError>>,
    n_documents: u64,
    n_attachments: u64,
    last_id: Option<String>,
}

struct Pipeline {
    database: Arc<Database>,
    operations: Arc<Operations>,
    operation_id: u64,
    in_flight: VecDeque<InFlight>,
    committed: BulkInsertSummary,
}

impl Pipeline {
    fn submit(&mut self, chunk: Chunk) -> Result<(), ApiError> {
        if self.operations.status(self.operation_id) == Some(OperationStatus::Canceled) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "Raven.Client.Exceptions.Documents.BulkInsert.BulkInsertAbortedException",
                format!("bulk insert operation {} was canceled", self.operation_id),
            ));
        }
        while self.in_flight.len() >= CHUNKS_IN_FLIGHT {
            self.wait_for_oldest()?;
        }
        let (sender, reply) = sync_channel(1);
        self.database.write_async(
            chunk.ops,
            Box::new(move |result| {
                let _ = sender.send(result);
            }),
        );
        self.in_flight.push_back(InFlight {
            reply,
            n_documents: chunk.n_documents,
            n_attachments: chunk.n_attachments,
            last_id: chunk.last_id,
        });
        Ok(())
    }

    fn wait_for_oldest(&mut self) -> Result<(), ApiError> {
        let Some(chunk) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let result = match chunk.reply.recv() {
            Ok(it) => it,
            Err(_) => Err(WriteError::Closed {
                name: self.database.name().to_owned(),
            }),
        };
        if let Err(error) = result {
            return Err(ApiError::from(error));
        }
        self.committed.n_documents += chunk.n_documents;
        self.committed.n_attachments += chunk.n_attachments;
        self.committed.n_batches += 1;
        if chunk.last_id.is_some() {
            self.committed.last_id = chunk.last_id;
        }
        self.operations
            .progress(self.operation_id, self.committed.progress_json());
        Ok(())
    }

    /// Waits for every chunk in flight; the first failure is returned after all are done.
    fn drain(&mut self) -> Result<(), ApiError> {
        let mut outcome = Ok(());
        while !self.in_flight.is_empty() {
            let result = self.wait_for_oldest();
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }
}
