//! The script worker: a dedicated thread per ETL process that extracts a batch from one
//! snapshot and transforms it into destination commands. Scripts never run on the async
//! runtime, and `load()` in a script reads the same snapshot the batch came from.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use bytes::Bytes;
use corvid_client::{Command, RawDocument};
use corvid_script::{AttachmentMeta, DocumentInput, ScriptHost, ScriptOptions, ScriptRuntime};
use corvid_store::{Database, Etag, HILO_COLLECTION, Snapshot, TombstoneKind};

use crate::destinations::raven::commands::{delete_commands, put_commands};
use crate::destinations::sql::SqlBatch;
use crate::destinations::sql::rows::{BatchBuilder, SqlTable};
use crate::extract::{Item, extract};
use crate::validate::ValidatedTransform;

/// Limits of one batch, and how many threads transform it.
#[derive(Debug, Clone)]
pub struct BatchLimits {
    pub max_items: usize,
    pub max_bytes: usize,
    /// Script runtimes (threads) a large batch is split between.
    pub transform_threads: usize,
}

/// What a batch sends, in the destination's terms.
#[derive(Debug)]
pub enum Load {
    /// `bulk_docs` commands, one request.
    Raven(RavenLoad),
    /// Deletes and rows, one database transaction.
    Sql(SqlBatch),
}

impl Default for Load {
    fn default() -> Self {
        Load::Raven(RavenLoad::default())
    }
}

impl Load {
    /// Returns true when the batch has documents no version of which was ever sent.
    pub fn has_new_documents(&self) -> bool {
        match self {
            Load::Raven(load) => load.prefix_deletes.iter().any(|it| it.new_document),
            Load::Sql(batch) => batch.tables.iter().any(|it| !it.new_documents.is_empty()),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Load::Raven(load) => load.commands.is_empty(),
            Load::Sql(batch) => batch.is_empty(),
        }
    }

    /// When this batch may be applied in either order with other such batches: a Raven batch
    /// that will only write (every delete in it is of a new document in an `owned` target,
    /// which the load leaves out), with the ids it writes, lower case. Two of them with no id
    /// in common end the same whichever the destination applies first. `None` otherwise, and
    /// for SQL.
    pub fn overlap_ids(&self, owned: &BTreeSet<String>) -> Option<HashSet<String>> {
        let Load::Raven(load) = self else {
            return None;
        };
        let skipped_deletes = load
            .prefix_deletes
            .iter()
            .filter(|it| it.new_document && owned.contains(&it.collection_prefix))
            .count();
        let mut ids = HashSet::with_capacity(load.commands.len());
        let mut deletes = 0;
        for command in &load.commands {
            match command {
                Command::Put { id, .. }
                | Command::PutRaw { id, .. }
                | Command::AttachmentPut { id, .. } => {
                    ids.insert(id.to_lowercase());
                }
                Command::DeletePrefixed { .. } => deletes += 1,
                Command::Delete { .. } | Command::AttachmentDelete { .. } => return None,
            }
        }
        (deletes == skipped_deletes && deletes == load.prefix_deletes.len()).then_some(ids)
    }
}

/// The `bulk_docs` commands of a Raven ETL batch.
#[derive(Debug, Default)]
pub struct RavenLoad {
    pub commands: Vec<Command>,
    /// Every delete-by-prefix among `commands`, in order: the process leaves out those that
    /// cannot delete anything (see `process.rs`).
    pub prefix_deletes: Vec<PrefixDelete>,
}

/// A delete-by-prefix command of a Raven ETL batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixDelete {
    /// Its position in [`RavenLoad::commands`].
    pub index: usize,
    /// The target collection's id prefix, lower-cased (`people` of `users/1/people/`).
    pub collection_prefix: String,
    /// No version of the source document was ever sent (see [`ScriptWorker::start_batch`]),
    /// so the prefix holds nothing this process wrote.
    pub new_document: bool,
}

/// Which destination a worker prepares batches for.
#[derive(Debug, Clone)]
pub enum Shape {
    Raven,
    Sql(Vec<SqlTable>),
}

/// A transformed batch, ready to load.
#[derive(Debug, Default)]
pub struct Batch {
    pub load: Load,
    /// Progress may move here once the commands are delivered.
    pub last_etag: Etag,
    pub n_documents: usize,
    pub n_tombstones: usize,
    pub n_loaded_objects: usize,
    pub n_filtered: usize,
    pub errors: Vec<TransformFailure>,
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
}

struct Job {
    start: BatchStart,
    reply: tokio::sync::oneshot::Sender<Result<Batch, WorkerError>>,
}

/// Handle to a worker thread; dropping it stops the thread.
pub struct ScriptWorker {
    sender: Sender<Job>,
}

impl ScriptWorker {
    pub fn spawn(
        database: Arc<Database>,
        transform: ValidatedTransform,
        shape: Shape,
        script_options: ScriptOptions,
        limits: BatchLimits,
        thread_name: String,
    ) -> std::io::Result<ScriptWorker> {
        let (sender, receiver) = channel();
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || run(database, transform, shape, script_options, limits, receiver))?;
        Ok(ScriptWorker { sender })
    }

    /// Starts extracting and transforming the batch after `after` now, on the worker thread;
    /// the answer is awaited through the returned [`PendingBatch`]. No version of a document
    /// created after `never_loaded_after` (at least `after`) was ever sent to the destination.
    pub fn start_batch(&self, after: Etag, never_loaded_after: Etag) -> PendingBatch {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        let job = Job {
            start: BatchStart {
                after,
                never_loaded_after: never_loaded_after.max(after),
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
pub struct PendingBatch {
    receiver: Option<tokio::sync::oneshot::Receiver<Result<Batch, WorkerError>>>,
}

impl PendingBatch {
    pub async fn wait(self) -> Result<Batch, WorkerError> {
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
struct ChunkJob {
    snapshot: Arc<Snapshot>,
    never_loaded_after: Etag,
    items: Vec<Item>,
    reply: Sender<Result<Chunk, WorkerError>>,
}

/// What a part of a batch produced.
struct Chunk {
    commands: RavenLoad,
    rows: Option<BatchBuilder>,
    n_documents: usize,
    n_tombstones: usize,
    n_loaded_objects: usize,
    n_filtered: usize,
    errors: Vec<TransformFailure>,
}

fn new_runtime(
    transform: &ValidatedTransform,
    options: &ScriptOptions,
) -> Result<Option<ScriptRuntime>, WorkerError> {
    if transform.analysis.is_empty {
        return Ok(None);
    }
    ScriptRuntime::new(&transform.script, options.clone())
        .map(Some)
        .map_err(|error| WorkerError::Script(error.to_string()))
}

fn run(
    database: Arc<Database>,
    transform: ValidatedTransform,
    shape: Shape,
    script_options: ScriptOptions,
    limits: BatchLimits,
    receiver: Receiver<Job>,
) {
    let mut runtime = new_runtime(&transform, &script_options);
    // Helper threads, each with its own runtime (QuickJS runtimes are single-threaded): a
    // large batch is split between them and this thread, in order, and merged back.
    let mut helpers: Vec<Sender<ChunkJob>> = Vec::new();
    if matches!(runtime, Ok(Some(_))) {
        for idx in 1..limits.transform_threads.max(1) {
            let (sender, jobs) = channel::<ChunkJob>();
            let (transform, shape, options) =
                (transform.clone(), shape.clone(), script_options.clone());
            let name = format!(
                "{}-{idx}",
                std::thread::current().name().unwrap_or("corvid-etl")
            );
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                let mut runtime = new_runtime(&transform, &options);
                while let Ok(job) = jobs.recv() {
                    let result = match &mut runtime {
                        Ok(runtime) => Ok(transform_chunk(
                            &job.snapshot,
                            &transform,
                            &shape,
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
                &shape,
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

fn build_batch(
    database: &Database,
    transform: &ValidatedTransform,
    shape: &Shape,
    runtime: Option<&mut ScriptRuntime>,
    helpers: &[Sender<ChunkJob>],
    limits: &BatchLimits,
    start: BatchStart,
) -> Result<Batch, WorkerError> {
    let BatchStart {
        after,
        never_loaded_after,
    } = start;
    let started = Instant::now();
    let read_error = |error: corvid_store::ReadError| WorkerError::Read(error.to_string());
    let snapshot = Arc::new(database.snapshot().map_err(read_error)?);
    let extracted = extract(
        &snapshot,
        transform.collections.as_deref(),
        after,
        limits.max_items,
        limits.max_bytes,
    )
    .map_err(read_error)?;
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
    let mut chunks = vec![transform_chunk(
        &snapshot,
        transform,
        shape,
        runtime,
        never_loaded_after,
        items,
    )];
    for answer in replies {
        chunks.push(answer.recv().map_err(|_| WorkerError::Stopped)??);
    }
    let mut batch = Batch {
        last_etag: extracted.last_etag,
        ..Batch::default()
    };
    let mut commands = RavenLoad::default();
    let mut rows: Option<BatchBuilder> = None;
    for chunk in chunks {
        batch.n_documents += chunk.n_documents;
        batch.n_tombstones += chunk.n_tombstones;
        batch.n_loaded_objects += chunk.n_loaded_objects;
        batch.n_filtered += chunk.n_filtered;
        batch.errors.extend(chunk.errors);
        commands.append(chunk.commands);
        rows = match (rows, chunk.rows) {
            (Some(mut rows), Some(more)) => {
                rows.append(more);
                Some(rows)
            }
            (rows, more) => rows.or(more),
        };
    }
    batch.load = match rows {
        Some(rows) => Load::Sql(rows.finish()),
        None => Load::Raven(commands),
    };
    batch.extract_and_transform = started.elapsed();
    Ok(batch)
}

impl RavenLoad {
    /// Adds the commands of `item`, noting its deletes-by-prefix.
    fn extend(&mut self, item_id: &str, new_document: bool, commands: Vec<Command>) {
        for command in commands {
            if let Command::DeletePrefixed { id_prefix } = &command {
                let collection_prefix = id_prefix
                    .strip_prefix(item_id)
                    .and_then(|it| it.strip_prefix('/'))
                    .and_then(|it| it.strip_suffix('/'));
                if let Some(collection_prefix) = collection_prefix {
                    self.prefix_deletes.push(PrefixDelete {
                        index: self.commands.len(),
                        collection_prefix: collection_prefix.to_lowercase(),
                        new_document,
                    });
                }
            }
            self.commands.push(command);
        }
    }

    /// Adds the commands of a later part of the batch.
    fn append(&mut self, later: RavenLoad) {
        let offset = self.commands.len();
        self.prefix_deletes
            .extend(later.prefix_deletes.into_iter().map(|it| PrefixDelete {
                index: it.index + offset,
                ..it
            }));
        self.commands.extend(later.commands);
    }
}

/// Returns true when `item` is a document created after `never_loaded_after`: no version of
/// it was ever sent (a document created again after a delete counts as new; the delete's
/// tombstone, below it, is in the same batch or an earlier one).
fn never_sent(item: &Item, never_loaded_after: Etag) -> bool {
    matches!(item, Item::Document(doc) if doc.created_etag > never_loaded_after)
}

/// Transforms items in order with one runtime. `never_loaded_after`: see
/// [`ScriptWorker::start_batch`].
fn transform_chunk(
    snapshot: &Snapshot,
    transform: &ValidatedTransform,
    shape: &Shape,
    mut runtime: Option<&mut ScriptRuntime>,
    never_loaded_after: Etag,
    items: Vec<Item>,
) -> Chunk {
    let mut host = SnapshotHost { snapshot };
    let mut chunk = Chunk {
        commands: RavenLoad::default(),
        rows: match shape {
            Shape::Raven => None,
            Shape::Sql(tables) => Some(BatchBuilder::new(tables)),
        },
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
        let outcome = match (runtime.as_deref_mut(), chunk.rows.as_mut()) {
            (Some(runtime), Some(rows)) => transform_sql_item(
                snapshot,
                runtime,
                &mut host,
                &item,
                never_sent(&item, never_loaded_after),
                rows,
                &mut Vec::new(),
            ),
            // Validation refuses SQL ETL without a script; reported, never skipped silently.
            (None, Some(_)) => Err(TransformFailure {
                document_id: match &item {
                    Item::Document(doc) => doc.id.clone(),
                    Item::Tombstone(tombstone) => tombstone.id.clone(),
                },
                message: "SQL ETL needs a script that loads rows".to_owned(),
            }),
            (None, None) => copy_item(snapshot, &item),
            (Some(runtime), None) => transform_item(
                snapshot,
                transform,
                runtime,
                &mut host,
                &item,
                &mut Vec::new(),
            ),
        };
        match outcome {
            Ok(ItemOutcome::Commands(more, n_loaded)) => {
                chunk.n_loaded_objects += n_loaded;
                if n_loaded == 0 {
                    chunk.n_filtered += 1;
                }
                let id = match &item {
                    Item::Document(doc) => doc.id.as_str(),
                    Item::Tombstone(tombstone) => tombstone.id.as_str(),
                };
                chunk
                    .commands
                    .extend(id, never_sent(&item, never_loaded_after), more);
            }
            Ok(ItemOutcome::Filtered) => chunk.n_filtered += 1,
            Err(failure) => chunk.errors.push(failure),
        }
    }
    chunk
}

pub(crate) enum ItemOutcome {
    /// Commands to send and how many objects the script loaded.
    Commands(Vec<Command>, usize),
    Filtered,
}

/// An empty script: the document goes as it is, with its attachments; deletes follow.
pub(crate) fn copy_item(snapshot: &Snapshot, item: &Item) -> Result<ItemOutcome, TransformFailure> {
    match item {
        Item::Document(doc) => {
            let failure = |message: String| TransformFailure {
                document_id: doc.id.clone(),
                message,
            };
            // The stored JSON goes as it is (the destination ignores server-owned metadata).
            let document =
                RawDocument::new(doc.to_json_string()).map_err(|it| failure(it.to_string()))?;
            let mut commands = vec![Command::PutRaw {
                id: doc.id.clone(),
                document,
            }];
            for info in &doc.attachments {
                let found = snapshot
                    .attachment(&doc.id, &info.name)
                    .map_err(|it| failure(it.to_string()))?;
                if let Some((info, content)) = found {
                    commands.push(Command::AttachmentPut {
                        id: doc.id.clone(),
                        name: info.name,
                        content_type: info.content_type,
                        bytes: Bytes::from(content),
                    });
                }
            }
            Ok(ItemOutcome::Commands(commands, 1))
        }
        Item::Tombstone(tombstone) => {
            let command = match &tombstone.kind {
                TombstoneKind::Document => Command::Delete {
                    id: tombstone.id.clone(),
                    change_vector: None,
                },
                TombstoneKind::Attachment { name } => Command::AttachmentDelete {
                    id: tombstone.id.clone(),
                    name: name.clone(),
                },
            };
            Ok(ItemOutcome::Commands(vec![command], 1))
        }
    }
}

pub(crate) fn transform_item(
    snapshot: &Snapshot,
    transform: &ValidatedTransform,
    runtime: &mut ScriptRuntime,
    host: &mut SnapshotHost<'_>,
    item: &Item,
    debug_output: &mut Vec<String>,
) -> Result<ItemOutcome, TransformFailure> {
    match item {
        Item::Document(doc) => {
            // HiLo state belongs to the source's id generation; only an empty script copies it.
            if doc.collection.eq_ignore_ascii_case(HILO_COLLECTION) {
                return Ok(ItemOutcome::Filtered);
            }
            let failure = |message: String| TransformFailure {
                document_id: doc.id.clone(),
                message,
            };
            let allow_deletes = runtime
                .delete_behavior(&doc.collection, &doc.id, false, host)
                .map_err(|it| failure(it.to_string()))?
                .unwrap_or(true);
            let mut commands = if allow_deletes {
                delete_commands(&doc.id, &doc.collection, &transform.analysis, false)
            } else {
                Vec::new()
            };
            let output = run_script(runtime, host, doc, debug_output).map_err(failure)?;
            let mut attachment = |name: &str| -> Option<(String, Bytes)> {
                let (info, content) = snapshot.attachment(&doc.id, name).ok()??;
                Some((info.content_type, Bytes::from(content)))
            };
            let puts = put_commands(&doc.id, &doc.collection, &output.loads, &mut attachment)
                .map_err(failure)?;
            commands.extend(puts);
            Ok(ItemOutcome::Commands(commands, output.loads.len()))
        }
        Item::Tombstone(tombstone) => {
            if !matches!(tombstone.kind, TombstoneKind::Document) {
                return Ok(ItemOutcome::Filtered);
            }
            let failure = |message: String| TransformFailure {
                document_id: tombstone.id.clone(),
                message,
            };
            let allow = runtime
                .delete_behavior(&tombstone.collection, &tombstone.id, true, host)
                .map_err(|it| failure(it.to_string()))?
                .unwrap_or(true);
            if !allow {
                return Ok(ItemOutcome::Filtered);
            }
            let commands = delete_commands(
                &tombstone.id,
                &tombstone.collection,
                &transform.analysis,
                true,
            );
            Ok(ItemOutcome::Commands(commands, 1))
        }
    }
}

/// SQL ETL: a document's rows are replaced by what the script loads (its old rows go even
/// when it loads nothing); a deleted document's rows go. Behaviour functions do not exist
/// here (refused when the task is saved). The commands in the outcome are always empty: the
/// rows go into `rows`, all of a document's or none. `never_sent`: see
/// [`BatchBuilder::replace_document`].
pub(crate) fn transform_sql_item(
    snapshot: &Snapshot,
    runtime: &mut ScriptRuntime,
    host: &mut SnapshotHost<'_>,
    item: &Item,
    never_sent: bool,
    rows: &mut BatchBuilder,
    debug_output: &mut Vec<String>,
) -> Result<ItemOutcome, TransformFailure> {
    match item {
        Item::Document(doc) => {
            if doc.collection.eq_ignore_ascii_case(HILO_COLLECTION) {
                return Ok(ItemOutcome::Filtered);
            }
            let failure = |message: String| TransformFailure {
                document_id: doc.id.clone(),
                message,
            };
            let output = run_script(runtime, host, doc, debug_output).map_err(failure)?;
            let mut attachment = |name: &str| -> Option<Bytes> {
                let (_, content) = snapshot.attachment(&doc.id, name).ok()??;
                Some(Bytes::from(content))
            };
            let n_loaded = output.loads.len();
            rows.replace_document(&doc.id, never_sent, output.loads, &mut attachment)
                .map_err(failure)?;
            Ok(ItemOutcome::Commands(Vec::new(), n_loaded))
        }
        Item::Tombstone(tombstone) => {
            if !matches!(tombstone.kind, TombstoneKind::Document) {
                // The document itself changed too, and comes in its own right.
                return Ok(ItemOutcome::Filtered);
            }
            rows.delete_document(&tombstone.id);
            Ok(ItemOutcome::Commands(Vec::new(), 1))
        }
    }
}

/// Runs the script on a document. Its debug output goes to `debug_output`, also when the
/// script fails.
fn run_script(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: &str) -> Command {
        Command::PutRaw {
            id: id.to_owned(),
            document: RawDocument::new("{}".to_owned()).unwrap(),
        }
    }

    fn raven(commands: Vec<Command>, prefix_deletes: Vec<PrefixDelete>) -> Load {
        Load::Raven(RavenLoad {
            commands,
            prefix_deletes,
        })
    }

    fn prefix_delete(index: usize, new_document: bool) -> PrefixDelete {
        PrefixDelete {
            index,
            collection_prefix: "people".to_owned(),
            new_document,
        }
    }

    #[test]
    fn only_batches_that_will_only_write_may_overlap() {
        let owned: BTreeSet<String> = ["people".to_owned()].into();
        let delete = |id: &str| Command::DeletePrefixed {
            id_prefix: id.to_owned(),
        };
        // Plain PUTs: the ids they write, lower case.
        let puts = raven(vec![put("Users/1"), put("users/2")], Vec::new());
        let expected: HashSet<String> = ["users/1".to_owned(), "users/2".to_owned()].into();
        assert_eq!(puts.overlap_ids(&owned), Some(expected));
        // Deletes of new documents in an owned target are left out by the load.
        let new_docs = raven(
            vec![delete("users/1/people/"), put("users/1/people/")],
            vec![prefix_delete(0, true)],
        );
        assert_eq!(
            new_docs.overlap_ids(&owned),
            Some(["users/1/people/".to_owned()].into())
        );
        // The same batch while the target is not owned yet, and a delete of a document sent
        // before: they stay, so the batch may not overlap.
        assert_eq!(new_docs.overlap_ids(&BTreeSet::new()), None);
        let update = raven(
            vec![delete("users/1/people/"), put("users/1/people/")],
            vec![prefix_delete(0, false)],
        );
        assert_eq!(update.overlap_ids(&owned), None);
        // A deleted document, and SQL batches.
        let deleted = raven(
            vec![Command::Delete {
                id: "users/1".to_owned(),
                change_vector: None,
            }],
            Vec::new(),
        );
        assert_eq!(deleted.overlap_ids(&owned), None);
        assert_eq!(Load::Sql(SqlBatch::default()).overlap_ids(&owned), None);
    }
}
