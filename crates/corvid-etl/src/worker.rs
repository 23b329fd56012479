//! The script worker: a dedicated thread per ETL process that extracts a batch from one
//! snapshot and transforms it, through the destination's encoder, into the destination's
//! batch. Scripts never run on the async runtime, and `load()` in a script reads the same
//! snapshot the batch came from.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use corvid_script::{AttachmentMeta, DocumentInput, ScriptHost, ScriptOptions, ScriptRuntime};

use crate::script_budget::{ScriptMemoryBudget, ScriptMemoryGrant};
use corvid_store::{Database, Etag, Snapshot};

use crate::destination::{BatchEncoder, Destination, Encoded, ItemSource};
use crate::extract::{Item, extract};
use crate::validate::ValidatedTransform;

/// Limits of one batch, and how many threads transform it.
#[derive(Debug, Clone)]
pub struct BatchLimits {
    pub max_items: usize,
    pub max_bytes: usize,
    /// Script runtimes (threads) a large batch is split between.
    pub transform_threads: usize,
    /// Where each runtime's memory limit is granted from.
    pub script_budget: ScriptMemoryBudget,
}

/// A transformed batch, ready to load: the destination's batch and what the engine counts.
#[derive(Debug)]
pub struct Batch<B> {
    pub load: B,
    /// Progress may move here once the batch is delivered.
    pub last_etag: Etag,
    pub n_documents: usize,
    pub n_tombstones: usize,
    pub n_loaded_objects: usize,
    pub n_filtered: usize,
    pub errors: Vec<TransformFailure>,
    /// Reading the changes, a part of `extract_and_transform`.
    pub extract: Duration,
    pub extract_and_transform: Duration,
}

/// A document whose transformation failed; it is skipped and reported.
#[derive(Debug, Clone)]
pub struct TransformFailure {
    pub document_id: String,
    pub message: String,
}

/// Why the worker could not produce a batch at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WorkerError {
    #[error("failed to compile the script: {0}")]
    Script(String),
    #[error("failed to read the source database: {0}")]
    Read(String),
    #[error("the script worker stopped")]
    Stopped,
}

/// Where a batch starts: after `after`; documents created after `never_loaded_after` were
/// never sent.
#[derive(Debug, Clone, Copy)]
struct BatchStart {
    after: Etag,
    never_loaded_after: Etag,
    /// A run's end: nothing after it is extracted (`Etag::MAX` outside runs).
    until: Etag,
}

type BatchReply<B> = tokio::sync::oneshot::Sender<Result<Batch<B>, WorkerError>>;

struct Job<B> {
    start: BatchStart,
    reply: BatchReply<B>,
}

/// Handle to a worker thread; dropping it stops the thread.
pub struct ScriptWorker<B> {
    sender: Sender<Job<B>>,
}

impl<B: Send + 'static> ScriptWorker<B> {
    pub(crate) fn spawn<D: Destination<Batch = B>>(
        database: Arc<Database>,
        transform: ValidatedTransform,
        destination: Arc<D>,
        script_options: ScriptOptions,
        limits: BatchLimits,
        thread_name: String,
    ) -> std::io::Result<ScriptWorker<B>> {
        let (sender, receiver) = channel();
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                run(
                    database,
                    transform,
                    destination,
                    script_options,
                    limits,
                    receiver,
                )
            })?;
        Ok(ScriptWorker { sender })
    }

    /// Starts extracting and transforming the batch after `after` now, on the worker thread;
    /// the answer is awaited through the returned [`PendingBatch`]. No version of a document
    /// created after `never_loaded_after` (at least `after`) was ever sent to the destination.
    /// Changes after `until` are left for later.
    pub fn start_batch(
        &self,
        after: Etag,
        never_loaded_after: Etag,
        until: Etag,
    ) -> PendingBatch<B> {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        let job = Job {
            start: BatchStart {
                after,
                never_loaded_after: never_loaded_after.max(after),
                until,
            },
            reply,
        };
        if self.sender.send(job).is_err() {
            return PendingBatch { receiver: None };
        }
        PendingBatch {
            receiver: Some(receiver),
        }
    }
}

/// A batch being prepared by the worker.
pub struct PendingBatch<B> {
    receiver: Option<tokio::sync::oneshot::Receiver<Result<Batch<B>, WorkerError>>>,
}

impl<B> PendingBatch<B> {
    pub async fn wait(self) -> Result<Batch<B>, WorkerError> {
        match self.receiver {
            Some(receiver) => receiver.await.unwrap_or(Err(WorkerError::Stopped)),
            None => Err(WorkerError::Stopped),
        }
    }
}

/// Below this many items a batch is transformed on the worker thread alone: splitting costs
/// more than it saves, and single updates keep their latency.
const PARALLEL_MIN_ITEMS: usize = 256;

/// A part of a batch for a helper thread, transformed with the helper's own runtime against
/// the batch's snapshot.
struct ChunkJob<E> {
    snapshot: Arc<Snapshot>,
    never_loaded_after: Etag,
    items: Vec<Item>,
    reply: Sender<Result<Chunk<E>, WorkerError>>,
}

/// What a part of a batch produced.
struct Chunk<E> {
    encoder: E,
    n_documents: usize,
    n_tombstones: usize,
    n_loaded_objects: usize,
    n_filtered: usize,
    errors: Vec<TransformFailure>,
}

/// A runtime whose memory limit is `grant`'s (`None` for an empty script, which needs none).
fn new_runtime(
    transform: &ValidatedTransform,
    options: &ScriptOptions,
    grant: &ScriptMemoryGrant,
) -> Result<Option<ScriptRuntime>, WorkerError> {
    if transform.analysis.is_empty {
        return Ok(None);
    }
    let options = ScriptOptions {
        memory_limit_bytes: grant.bytes,
        ..options.clone()
    };
    ScriptRuntime::new(&transform.script, options)
        .map(Some)
        .map_err(|error| WorkerError::Script(error.to_string()))
}

fn run<D: Destination>(
    database: Arc<Database>,
    transform: ValidatedTransform,
    destination: Arc<D>,
    script_options: ScriptOptions,
    limits: BatchLimits,
    receiver: Receiver<Job<D::Batch>>,
) {
    let wanted = if transform.analysis.is_empty {
        0
    } else {
        script_options.memory_limit_bytes
    };
    let grant = limits.script_budget.grant_main(wanted);
    let mut runtime = new_runtime(&transform, &script_options, &grant);
    // Helper threads, each with its own runtime (QuickJS runtimes are single-threaded): a
    // large batch is split between them and this thread, in order, and merged back.
    let mut helpers: Vec<Sender<ChunkJob<D::Encoder>>> = Vec::new();
    if matches!(runtime, Ok(Some(_))) {
        for idx in 1..limits.transform_threads.max(1) {
            // No room left in the scripts' memory budget: fewer threads, not more memory.
            let Some(grant) = limits.script_budget.grant_helper(wanted) else {
                break;
            };
            let (sender, jobs) = channel::<ChunkJob<D::Encoder>>();
            let (transform, destination, options) = (
                transform.clone(),
                destination.clone(),
                script_options.clone(),
            );
            let name = format!(
                "{}-{idx}",
                std::thread::current().name().unwrap_or("corvid-etl")
            );
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                let mut runtime = new_runtime(&transform, &options, &grant);
                while let Ok(job) = jobs.recv() {
                    let result = match &mut runtime {
                        Ok(runtime) => Ok(transform_chunk(
                            &job.snapshot,
                            &transform,
                            destination.new_encoder(),
                            runtime.as_mut(),
                            job.never_loaded_after,
                            job.items,
                        )),
                        Err(error) => Err(error.clone()),
                    };
                    let _ = job.reply.send(result);
                }
            });
            match spawned {
                Ok(_) => helpers.push(sender),
                Err(error) => {
                    tracing::warn!(%error, "cannot start an ETL transform thread; continuing with fewer");
                    break;
                }
            }
        }
    }
    while let Ok(job) = receiver.recv() {
        let result = match &mut runtime {
            Ok(runtime) => build_batch(
                &database,
                &transform,
                &*destination,
                runtime.as_mut(),
                &helpers,
                &limits,
                job.start,
            ),
            Err(error) => Err(error.clone()),
        };
        let _ = job.reply.send(result);
    }
}

fn build_batch<D: Destination>(
    database: &Database,
    transform: &ValidatedTransform,
    destination: &D,
    runtime: Option<&mut ScriptRuntime>,
    helpers: &[Sender<ChunkJob<D::Encoder>>],
    limits: &BatchLimits,
    start: BatchStart,
) -> Result<Batch<D::Batch>, WorkerError> {
    let BatchStart {
        after,
        never_loaded_after,
        until,
    } = start;
    let started = Instant::now();
    let read_error = |error: corvid_store::ReadError| WorkerError::Read(error.to_string());
    let snapshot = Arc::new(database.snapshot().map_err(read_error)?);
    let extracted = extract(
        &snapshot,
        transform.collections.as_deref(),
        after,
        until,
        limits.max_items,
        limits.max_bytes,
    )
    .map_err(read_error)?;
    let extract_time = started.elapsed();
    let mut items = extracted.items;
    let n_parts = if items.len() >= PARALLEL_MIN_ITEMS {
        helpers.len() + 1
    } else {
        1
    };
    // Contiguous parts, in order: part 0 stays here, the others go to the helpers.
    let part_size = items.len().div_ceil(n_parts);
    let mut replies = Vec::with_capacity(n_parts - 1);
    let mut rest = items.split_off(part_size.min(items.len()));
    for helper in helpers.iter().take(n_parts - 1) {
        let tail = rest.split_off(part_size.min(rest.len()));
        let (reply, answer) = channel();
        let job = ChunkJob {
            snapshot: snapshot.clone(),
            never_loaded_after,
            items: std::mem::replace(&mut rest, tail),
            reply,
        };
        if helper.send(job).is_err() {
            return Err(WorkerError::Stopped);
        }
        replies.push(answer);
    }
    let mut merged = transform_chunk(
        &snapshot,
        transform,
        destination.new_encoder(),
        runtime,
        never_loaded_after,
        items,
    );
    for answer in replies {
        let chunk = answer.recv().map_err(|_| WorkerError::Stopped)??;
        merged.n_documents += chunk.n_documents;
        merged.n_tombstones += chunk.n_tombstones;
        merged.n_loaded_objects += chunk.n_loaded_objects;
        merged.n_filtered += chunk.n_filtered;
        merged.errors.extend(chunk.errors);
        merged.encoder.append(chunk.encoder);
    }
    Ok(Batch {
        load: merged.encoder.finish(),
        last_etag: extracted.last_etag,
        n_documents: merged.n_documents,
        n_tombstones: merged.n_tombstones,
        n_loaded_objects: merged.n_loaded_objects,
        n_filtered: merged.n_filtered,
        errors: merged.errors,
        extract: extract_time,
        extract_and_transform: started.elapsed(),
    })
}

/// Returns true when `item` is a document created after `never_loaded_after`: no version of
/// it was ever sent (a document created again after a delete counts as new; the delete's
/// tombstone, below it, is in the same batch or an earlier one).
fn never_sent(item: &Item, never_loaded_after: Etag) -> bool {
    matches!(item, Item::Document(doc) if doc.created_etag > never_loaded_after)
}

/// Transforms items in order with one runtime into `encoder`. `never_loaded_after`: see
/// [`ScriptWorker::start_batch`].
fn transform_chunk<E: BatchEncoder>(
    snapshot: &Snapshot,
    transform: &ValidatedTransform,
    encoder: E,
    mut runtime: Option<&mut ScriptRuntime>,
    never_loaded_after: Etag,
    items: Vec<Item>,
) -> Chunk<E> {
    let mut chunk = Chunk {
        encoder,
        n_documents: 0,
        n_tombstones: 0,
        n_loaded_objects: 0,
        n_filtered: 0,
        errors: Vec::new(),
    };
    for item in items {
        match &item {
            Item::Document(_) => chunk.n_documents += 1,
            Item::Tombstone(_) => chunk.n_tombstones += 1,
        }
        let mut source = ItemSource {
            snapshot,
            transform,
            runtime: runtime.as_deref_mut(),
        };
        let never_sent = never_sent(&item, never_loaded_after);
        match chunk.encoder.encode(&mut source, &item, never_sent) {
            Ok(Encoded::Loaded { n_loaded }) => {
                chunk.n_loaded_objects += n_loaded;
                if n_loaded == 0 {
                    chunk.n_filtered += 1;
                }
            }
            Ok(Encoded::Filtered) => chunk.n_filtered += 1,
            Err(failure) => chunk.errors.push(failure),
        }
    }
    chunk
}

/// Runs the script on a document. Its debug output goes to `debug_output`, also when the
/// script fails.
pub(crate) fn run_script(
    runtime: &mut ScriptRuntime,
    host: &mut SnapshotHost<'_>,
    doc: &corvid_store::Document,
    debug_output: &mut Vec<String>,
) -> Result<corvid_script::TransformOutput, String> {
    let attachments = attachment_metas(doc);
    // The body alone when the script cannot read `@metadata`: no copy, no metadata written.
    let with_metadata = runtime.reads_metadata().then(|| doc.to_json_string());
    let input = DocumentInput {
        id: &doc.id,
        collection: &doc.collection,
        json: with_metadata.as_deref().unwrap_or(&doc.body),
        attachments: &attachments,
    };
    match runtime.transform(&input, host) {
        Ok(output) => {
            debug_output.extend(output.debug_output.iter().cloned());
            Ok(output)
        }
        Err(error) => {
            debug_output.extend(runtime.take_debug_output());
            Err(error.to_string())
        }
    }
}

fn attachment_metas(doc: &corvid_store::Document) -> Vec<AttachmentMeta> {
    doc.attachments
        .iter()
        .map(|it| AttachmentMeta {
            name: it.name.clone(),
            hash: it.hash.clone(),
            content_type: it.content_type.clone(),
            size: it.size,
        })
        .collect()
}

/// `load(id)` for scripts: reads the batch's snapshot.
pub(crate) struct SnapshotHost<'a> {
    pub snapshot: &'a Snapshot,
}

impl ScriptHost for SnapshotHost<'_> {
    fn load(&mut self, id: &str) -> Option<String> {
        match self.snapshot.get(id) {
            Ok(found) => found.map(|it| it.to_json_string()),
            Err(error) => {
                tracing::warn!(%error, id, "load() in an ETL script failed to read");
                None
            }
        }
    }
}
