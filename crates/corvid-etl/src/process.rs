//! An ETL process: one per (task, transformation). Extract and transform on its script
//! worker, load through the destination, persist progress only after the destination
//! acknowledged, wait for a commit notification when caught up, back off when loading fails.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corvid_store::{Database, Etag, Timestamp, WriteOp};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::destination::{
    Delivered, Delivery, Destination, EncodedBatch, LoadError, LoadErrorClass, Loader, Schedule,
    SkippedItem, Targets,
};
use crate::histogram::Histogram;
use crate::options::EtlOptions;
use crate::validate::ValidatedTransform;
use crate::worker::{Batch, BatchLimits, ScriptWorker, TransformFailure};

/// What a process reports about itself.
#[derive(Debug, Clone, Default)]
pub struct ProcessStats {
    pub status: ProcessStatus,
    pub last_processed_etag: Etag,
    pub n_extracted: u64,
    /// Extracted items the script ran on without failing (filtered ones included).
    pub n_transformed: u64,
    pub n_loaded: u64,
    pub n_filtered: u64,
    pub n_transformation_errors: u64,
    pub n_load_errors: u64,
    /// [`ProcessStats::n_load_errors`] by class, in the order of [`LoadErrorClass::ALL`].
    pub n_load_errors_by_class: [u64; LoadErrorClass::ALL.len()],
    /// Items the destination refused, left out of delivered batches.
    pub n_skipped_items: u64,
    pub n_batches: u64,
    pub last_transformation_errors: VecDeque<(Timestamp, TransformFailure)>,
    pub last_load_error: Option<(Timestamp, LoadError)>,
    pub last_skipped_items: VecDeque<(Timestamp, SkippedItem)>,
    pub last_batches: VecDeque<BatchPerformance>,
    /// Documents per second over the last batch.
    pub processed_per_second: f64,
    /// How long reading each batch of changes took (batches with no changes left out).
    pub extract_seconds: Histogram,
    /// How long running the script and encoding each batch took.
    pub transform_seconds: Histogram,
    /// How long each load took, from sending to the destination's answer, failed ones
    /// included.
    pub load_seconds: Histogram,
}

impl ProcessStats {
    /// The load errors of one class.
    pub fn load_errors(&self, class: LoadErrorClass) -> u64 {
        self.n_load_errors_by_class[class.index()]
    }
}

/// The state of a process, as RavenDB reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProcessStatus {
    #[default]
    Active,
    /// Loading failed; waiting before the same items are retried.
    Reconnect,
    /// The script cannot run; the process waits for its configuration to change.
    Error(String),
}

/// Timings of one batch, for `/etl/performance`.
#[derive(Debug, Clone)]
pub struct BatchPerformance {
    pub started: Timestamp,
    pub n_items: usize,
    pub n_commands: usize,
    pub extract_and_transform: Duration,
    pub load: Duration,
    pub succeeded: bool,
}

const KEEP_ERRORS: usize = 25;
const KEEP_BATCHES: usize = 25;

/// Progress as stored in the database's records.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredProgress {
    #[serde(rename = "LastProcessedEtag")]
    pub last_processed_etag: Etag,
    /// Every batch ever sent ended at or below this etag (it may exceed the progress when a
    /// batch was sent and not acknowledged): documents created after it were never sent.
    /// Written before a load that leaves out deletes of new documents, so that after a crash
    /// the batch's documents are not taken for new again.
    #[serde(rename = "SentUpToEtag", default, skip_serializing_if = "is_zero")]
    pub sent_up_to_etag: Etag,
    #[serde(rename = "Owned", default, skip_serializing_if = "Option::is_none")]
    pub owned: Option<Ownership>,
    /// A run being published ([`Schedule::Runs`]): what publishing it writes, stored before
    /// it starts and cleared with the progress that moves past the run. Found at start-up,
    /// it is undone before the run is done again.
    #[serde(
        rename = "Publishing",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub publishing: Option<Vec<String>>,
}

fn is_zero(etag: &Etag) -> bool {
    *etag == 0
}

/// The destination tables (SQL) or collection id prefixes (Raven) a process saw empty and
/// has been the only writer of since, for the ids it loads.
///
/// RavenDB deletes a document's old rows (or, for loads to another collection, its old
/// documents by id prefix) before every load, also for a document it never loaded before:
/// on a first load into empty tables that is one useless delete per document and table.
/// Corvid knows which documents no version of which was ever sent (their creation etag,
/// [`corvid_store::Document::created_etag`], is above [`StoredProgress::sent_up_to_etag`] and
/// the progress); where the process owns the target, no rows of such a document can exist,
/// so their deletes are left out. A target is
/// owned once the process saw it empty before a load; the claim is kept with the progress
/// and dropped with it (task deleted, transformation reset), and when the destination
/// changes. It assumes nothing else writes rows under the task's document ids — the same
/// assumption RavenDB's deletes make about rows the task should keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// The destination the claim holds for (no secret: database, host and port or URLs).
    #[serde(rename = "Destination")]
    pub destination: String,
    /// Lower-cased table names, or lower-cased collection id prefixes.
    #[serde(rename = "Targets")]
    pub targets: BTreeSet<String>,
}

/// The record key of a transformation's progress (names compare case-insensitively).
pub fn progress_key(task_name: &str, transform_name: &str) -> String {
    format!(
        "etl/progress/{}/{}",
        task_name.to_lowercase(),
        transform_name.to_lowercase()
    )
}

pub(crate) fn read_progress(database: &Database, key: &str) -> Etag {
    read_stored_progress(database, key).last_processed_etag
}

fn read_stored_progress(database: &Database, key: &str) -> StoredProgress {
    let stored = database
        .snapshot()
        .ok()
        .and_then(|it| it.record_value(key).ok().flatten());
    stored
        .and_then(|it| serde_json::from_slice::<StoredProgress>(&it).ok())
        .unwrap_or_default()
}

/// Everything one process needs but its destination.
pub(crate) struct ProcessContext {
    pub database: Arc<Database>,
    pub task_name: String,
    pub transform: ValidatedTransform,
    pub options: EtlOptions,
    pub stats: Arc<Mutex<ProcessStats>>,
    pub wake: Arc<Notify>,
    pub stop: watch::Receiver<bool>,
}

fn lock(stats: &Mutex<ProcessStats>) -> std::sync::MutexGuard<'_, ProcessStats> {
    stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) async fn run<D: Destination>(mut ctx: ProcessContext, destination: Arc<D>) {
    let key = progress_key(&ctx.task_name, &ctx.transform.name);
    let stored = read_stored_progress(&ctx.database, &key);
    let mut last = stored.last_processed_etag;
    // In memory: the end of every batch whose load started; on disk where it matters.
    let mut sent_up_to = stored.sent_up_to_etag;
    let mut stored_sent_up_to = stored.sent_up_to_etag;
    let identity = destination.identity();
    let mut owned = stored
        .owned
        .filter(|it| it.destination == identity)
        .unwrap_or(Ownership {
            destination: identity,
            targets: Default::default(),
        });
    // Targets seen holding data: not looked at again while the process runs.
    let mut not_empty = BTreeSet::new();
    lock(&ctx.stats).last_processed_etag = last;
    let limits = BatchLimits {
        max_items: ctx.options.max_batch_items,
        max_bytes: ctx.options.max_batch_bytes,
        transform_threads: ctx.options.transform_threads,
        script_budget: ctx.options.script_budget.clone(),
    };
    let thread_name = format!("corvid-etl-{}", ctx.transform.name);
    let script_options = destination.script_options(&ctx.options.script);
    let worker = match ScriptWorker::spawn(
        ctx.database.clone(),
        ctx.transform.clone(),
        destination.clone(),
        script_options,
        limits,
        thread_name,
    ) {
        Ok(it) => it,
        Err(error) => {
            lock(&ctx.stats).status = ProcessStatus::Error(error.to_string());
            return;
        }
    };
    let mut loader = match destination.new_loader(&ctx.options) {
        Ok(it) => it,
        Err(error) => {
            lock(&ctx.stats).status = ProcessStatus::Error(error.to_string());
            return;
        }
    };
    let mut fallback = ctx.options.initial_fallback;
    let schedule = destination.schedule();
    // Outside runs every change is sent; a run sends the changes up to its start.
    let mut run_until = Etag::MAX;
    if let Schedule::Runs(_) = &schedule {
        if let Some(names) = &stored.publishing
            && !undo_publish(&mut ctx, &key, &mut loader, names, &mut fallback).await
        {
            return;
        }
        run_until = ctx.database.last_etag();
    }
    // Where the destination allows it, loads overlap: the next batch is sent while the
    // destination still applies the previous one. Batches that share a document never
    // overlap, so the destination cannot apply an older version last.
    let loads_in_flight = destination.loads_in_flight(&ctx.options).max(1);
    let mut in_flight: VecDeque<InFlight<D::Batch>> = VecDeque::new();
    // Where the pending batch starts: `last`, or the end of the newest batch in flight.
    let mut next_after = last;
    // Batch N+1 is extracted and transformed on the worker while batch N loads; progress
    // still moves in order, and only after a load succeeded.
    let mut pending = worker.start_batch(next_after, sent_up_to, run_until);
    loop {
        if *ctx.stop.borrow() {
            return;
        }
        let batch = match pending.wait().await {
            Ok(it) => it,
            Err(error) => {
                tracing::error!(task = %ctx.task_name, transform = %ctx.transform.name, %error, "etl process cannot run");
                lock(&ctx.stats).status = ProcessStatus::Error(error.to_string());
                let _ = ctx.stop.changed().await;
                return;
            }
        };
        record_transform(&ctx.stats, &batch);
        let caught_up = batch.last_etag <= next_after;
        let following =
            (!caught_up).then(|| worker.start_batch(batch.last_etag, sent_up_to, run_until));
        // Make room: deliver the oldest loads first while the window is full, when this batch
        // or one in flight deletes anything or they write a document in common, and when
        // there is nothing new to send.
        let ids = if loads_in_flight > 1 && !caught_up {
            batch.load.overlap_ids(&owned.targets)
        } else {
            None
        };
        let mut failed = None;
        loop {
            let sent: Vec<Option<&HashSet<String>>> =
                in_flight.iter().map(|it| it.ids.as_ref()).collect();
            if !must_wait(&sent, ids.as_ref(), loads_in_flight, caught_up) {
                break;
            }
            let Some(oldest) = in_flight.pop_front() else {
                break;
            };
            match deliver(&ctx, &key, oldest, &mut last, &mut owned, stored_sent_up_to).await {
                Ok(()) => fallback = ctx.options.initial_fallback,
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        // The end of a run: publish what its loads buffered, then move the progress past it.
        if failed.is_none()
            && following.is_none()
            && let Schedule::Runs(next_run) = &schedule
        {
            match finish_run(&ctx, &key, &mut loader, next_after).await {
                Ok(()) => {
                    last = next_after;
                    {
                        let mut stats = lock(&ctx.stats);
                        stats.last_processed_etag = last;
                        stats.status = ProcessStatus::Active;
                    }
                    fallback = ctx.options.initial_fallback;
                    let next = next_run(std::time::SystemTime::now());
                    wait_for_run(&mut ctx, next).await;
                    run_until = ctx.database.last_etag();
                    next_after = last;
                    pending = worker.start_batch(next_after, sent_up_to, run_until);
                    continue;
                }
                Err(error) => {
                    record_run_failure(&ctx.stats, error.clone());
                    failed = Some(error);
                }
            }
        }
        if let Some(error) = failed {
            // Everything sent after the failed batch is awaited and forgotten: progress stays
            // where it was, and the retry sends those batches again (loads are idempotent,
            // and the documents in them are no longer taken for new). A run is done again
            // from its start.
            drop(following);
            for rest in in_flight.drain(..) {
                let _ = rest.delivery.finish().await;
            }
            loader.discard_run();
            tracing::warn!(task = %ctx.task_name, transform = %ctx.transform.name, %error, wait_ms = fallback.as_millis() as u64, "etl load failed; retrying the same batch after a pause");
            tokio::select! {
                _ = tokio::time::sleep(fallback) => {}
                _ = ctx.stop.changed() => {}
            }
            fallback = (fallback * 2).min(ctx.options.max_fallback);
            next_after = last;
            if let Schedule::Runs(_) = &schedule {
                run_until = ctx.database.last_etag();
            }
            pending = worker.start_batch(next_after, sent_up_to, run_until);
            continue;
        }
        let Some(following) = following else {
            // Caught up, and everything sent was delivered. A commit since the snapshot left
            // a permit, so this returns at once.
            tokio::select! {
                _ = ctx.wake.notified() => {}
                _ = ctx.stop.changed() => {}
            }
            next_after = last;
            pending = worker.start_batch(next_after, sent_up_to, run_until);
            continue;
        };
        let started = Instant::now();
        // Deletes of new documents are left out only in owned targets. Before such a load,
        // and before a retry of a batch that may have arrived, the etag sent up to is saved:
        // after a crash, documents that may have been sent must not count as new again.
        let sending_up_to = sent_up_to.max(batch.last_etag);
        let recorded = if !owned.targets.is_empty()
            && (batch.load.has_new_documents() || sent_up_to > last)
            && stored_sent_up_to < sending_up_to
        {
            let saved = persist(
                &ctx.database,
                &key,
                StoredProgress {
                    last_processed_etag: last,
                    sent_up_to_etag: sending_up_to,
                    owned: Some(owned.clone()),
                    publishing: None,
                },
            )
            .await;
            if saved.is_ok() {
                stored_sent_up_to = sending_up_to;
            }
            saved
        } else {
            Ok(())
        };
        sent_up_to = sending_up_to;
        let mut batch = batch;
        let (delivery, n_commands) = match recorded {
            Ok(()) if batch.load.is_empty() => (Delivery::Done(Ok(Delivered::default())), 0),
            // A replicated database's member sends only while its group confirms it leads:
            // a deposed or cut-off leader must not send a batch from its stale copy.
            Ok(()) if !confirmed(&ctx.database).await => (
                Delivery::Done(Err(LoadError::Reconnect {
                    message: "this node no longer leads the database's group; its tasks run on the node that does".to_owned(),
                })),
                0,
            ),
            Ok(()) => {
                let targets = Targets {
                    owned: &owned.targets,
                    not_empty: &mut not_empty,
                };
                loader.start(&mut batch.load, targets).await
            }
            Err(error) => (
                Delivery::Done(Err(LoadError::Reconnect {
                    message: format!("failed to save progress: {error}"),
                })),
                0,
            ),
        };
        next_after = batch.last_etag;
        in_flight.push_back(InFlight {
            n_commands,
            ids,
            started,
            delivery,
            batch,
        });
        pending = following;
    }
}

/// Whether the oldest load in flight must be delivered before the next batch is sent: when
/// nothing new is to be sent (`caught_up`), the window is full, or the next batch (`ids`) or a
/// batch in flight (`in_flight`) may not overlap (`None`) or they write a document in common.
fn must_wait(
    in_flight: &[Option<&HashSet<String>>],
    ids: Option<&HashSet<String>>,
    window: usize,
    caught_up: bool,
) -> bool {
    if in_flight.is_empty() {
        return false;
    }
    caught_up
        || in_flight.len() >= window
        || in_flight.iter().any(|sent| match (sent, ids) {
            (Some(sent), Some(ids)) => !sent.is_disjoint(ids),
            _ => true,
        })
}

/// A batch handed to the destination, not yet known to be delivered.
struct InFlight<B> {
    /// The batch; the destination may have moved its load out to send it.
    batch: Batch<B>,
    n_commands: usize,
    /// The ids it writes, when it may overlap with other loads (see
    /// [`EncodedBatch::overlap_ids`]).
    ids: Option<HashSet<String>>,
    started: Instant,
    delivery: Delivery,
}

/// Waits for the oldest batch in flight and, once the destination acknowledged it, moves the
/// progress past it.
async fn deliver<B: EncodedBatch>(
    ctx: &ProcessContext,
    key: &str,
    delivered: InFlight<B>,
    last: &mut Etag,
    owned: &mut Ownership,
    stored_sent_up_to: Etag,
) -> Result<(), LoadError> {
    let InFlight {
        batch,
        n_commands,
        started,
        delivery,
        ..
    } = delivered;
    let mut buffered = false;
    let loaded = match delivery.finish().await {
        Ok(Delivered {
            skipped,
            buffered: true,
            ..
        }) => {
            buffered = true;
            Ok(skipped)
        }
        Ok(Delivered {
            newly_owned,
            skipped,
            ..
        }) => {
            owned.targets.extend(newly_owned);
            let progress = StoredProgress {
                last_processed_etag: batch.last_etag,
                sent_up_to_etag: stored_sent_up_to,
                owned: (!owned.targets.is_empty()).then(|| owned.clone()),
                publishing: None,
            };
            persist(&ctx.database, key, progress)
                .await
                .map(|()| skipped)
                .map_err(|error| LoadError::Reconnect {
                    message: format!("failed to save progress: {error}"),
                })
        }
        Err(error) => Err(error),
    };
    let load_time = started.elapsed();
    let res = match loaded {
        Ok(skipped) => {
            // A buffered batch moves the progress at its run's end.
            if !buffered {
                *last = batch.last_etag;
            }
            record_skipped(&ctx.stats, skipped);
            record_load(&ctx.stats, &batch, n_commands, load_time, None, *last);
            Ok(())
        }
        Err(error) => {
            record_load(
                &ctx.stats,
                &batch,
                n_commands,
                load_time,
                Some(error.clone()),
                *last,
            );
            Err(error)
        }
    };
    // A SQL batch holds tens of thousands of rows, each a few allocations: freeing them here
    // held up the next load by about 10 ms per batch.
    tokio::task::spawn_blocking(move || drop(batch));
    res
}

/// Publishes a finished run: what it will write is stored with the progress first, so that a
/// publish cut short is undone at the next start; then the progress moves to `run_end` and
/// the record of the publish is cleared, in one write.
async fn finish_run<L: Loader>(
    ctx: &ProcessContext,
    key: &str,
    loader: &mut L,
    run_end: Etag,
) -> Result<(), LoadError> {
    let storage_error = |error: String| LoadError::Reconnect {
        message: format!("failed to save progress: {error}"),
    };
    let names = loader.seal_run().await?;
    let stored = read_stored_progress(&ctx.database, key);
    if names.is_empty() && run_end <= stored.last_processed_etag {
        return Ok(());
    }
    if !names.is_empty() {
        let publishing = StoredProgress {
            publishing: Some(names.clone()),
            ..stored.clone()
        };
        persist(&ctx.database, key, publishing)
            .await
            .map_err(storage_error)?;
    }
    if let Err(error) = loader.publish_run().await {
        // What was published is taken back now; if that fails too, at the next start.
        if loader.undo_publish(&names).await.is_ok() {
            let _ = persist(&ctx.database, key, stored).await;
        }
        return Err(error);
    }
    let published = StoredProgress {
        last_processed_etag: run_end.max(stored.last_processed_etag),
        publishing: None,
        ..stored
    };
    persist(&ctx.database, key, published)
        .await
        .map_err(storage_error)
}

/// Undoes a publish a crash cut short (its names stored with the progress), retrying after a
/// pause while the destination fails; returns false when the process is stopped meanwhile.
async fn undo_publish<L: Loader>(
    ctx: &mut ProcessContext,
    key: &str,
    loader: &mut L,
    names: &[String],
    fallback: &mut Duration,
) -> bool {
    loop {
        let undone = match loader.undo_publish(names).await {
            Ok(()) => {
                let progress = StoredProgress {
                    publishing: None,
                    ..read_stored_progress(&ctx.database, key)
                };
                persist(&ctx.database, key, progress)
                    .await
                    .map_err(|error| LoadError::Reconnect {
                        message: format!("failed to save progress: {error}"),
                    })
            }
            Err(error) => Err(error),
        };
        let Err(error) = undone else {
            return true;
        };
        tracing::warn!(task = %ctx.task_name, transform = %ctx.transform.name, %error, "cannot undo an interrupted publish; retrying after a pause");
        record_run_failure(&ctx.stats, error);
        tokio::select! {
            _ = tokio::time::sleep(*fallback) => {}
            _ = ctx.stop.changed() => {}
        }
        if *ctx.stop.borrow() {
            return false;
        }
        *fallback = (*fallback * 2).min(ctx.options.max_fallback);
    }
}

/// Waits until the next run is due (`None`: never again) or the process stops.
async fn wait_for_run(ctx: &mut ProcessContext, next: Option<std::time::SystemTime>) {
    let Some(next) = next else {
        let _ = ctx.stop.changed().await;
        return;
    };
    let wait = next
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = ctx.stop.changed() => {}
    }
}

/// A run that could not be published: counted as a failed load.
fn record_run_failure(stats: &Mutex<ProcessStats>, error: LoadError) {
    record_load_error(&mut lock(stats), error);
}

/// A failed load (or publish): counted by class, kept as the last error, and the process
/// waits to reconnect.
fn record_load_error(stats: &mut ProcessStats, error: LoadError) {
    stats.n_load_errors += 1;
    stats.n_load_errors_by_class[error.class().index()] += 1;
    stats.last_load_error = Some((Timestamp::now(), error));
    stats.status = ProcessStatus::Reconnect;
}

/// Whether this node may act for the database now (`Database::confirm_async`).
async fn confirmed(database: &Database) -> bool {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    database.confirm_async(Box::new(move |it| {
        let _ = sender.send(it);
    }));
    receiver.await.unwrap_or(false)
}

async fn persist(
    database: &Arc<Database>,
    key: &str,
    progress: StoredProgress,
) -> Result<(), String> {
    let value = serde_json::to_vec(&progress).map_err(|it| it.to_string())?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    database.write_async(
        vec![WriteOp::PutRecord {
            key: key.to_owned(),
            value: Some(value),
        }],
        Box::new(move |result| {
            let _ = sender.send(result);
        }),
    );
    match receiver.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("the database closed".to_owned()),
    }
}

fn record_transform<B>(stats: &Mutex<ProcessStats>, batch: &Batch<B>) {
    if batch.n_documents + batch.n_tombstones == 0 {
        return;
    }
    let mut stats = lock(stats);
    stats.extract_seconds.observe(batch.extract);
    stats
        .transform_seconds
        .observe(batch.extract_and_transform.saturating_sub(batch.extract));
    let now = Timestamp::now();
    for failure in &batch.errors {
        tracing::warn!(document = %failure.document_id, error = %failure.message, "etl transformation failed; document skipped");
        stats.n_transformation_errors += 1;
        stats
            .last_transformation_errors
            .push_back((now, failure.clone()));
        if stats.last_transformation_errors.len() > KEEP_ERRORS {
            stats.last_transformation_errors.pop_front();
        }
    }
}

/// Items the destination refused: left out for good, and reported with their ids.
fn record_skipped(stats: &Mutex<ProcessStats>, skipped: Vec<SkippedItem>) {
    if skipped.is_empty() {
        return;
    }
    let mut stats = lock(stats);
    let now = Timestamp::now();
    for item in skipped {
        tracing::warn!(document = %item.document_id, error = %item.message, "the destination refused a document; it was left out");
        stats.n_skipped_items += 1;
        stats.last_skipped_items.push_back((now, item));
        if stats.last_skipped_items.len() > KEEP_ERRORS {
            stats.last_skipped_items.pop_front();
        }
    }
}

fn record_load<B>(
    stats: &Mutex<ProcessStats>,
    batch: &Batch<B>,
    n_commands: usize,
    load_time: Duration,
    error: Option<LoadError>,
    last: Etag,
) {
    let mut stats = lock(stats);
    let n_items = batch.n_documents + batch.n_tombstones;
    stats.last_batches.push_back(BatchPerformance {
        started: Timestamp::now(),
        n_items,
        n_commands,
        extract_and_transform: batch.extract_and_transform,
        load: load_time,
        succeeded: error.is_none(),
    });
    if stats.last_batches.len() > KEEP_BATCHES {
        stats.last_batches.pop_front();
    }
    stats.load_seconds.observe(load_time);
    match error {
        Some(error) => record_load_error(&mut stats, error),
        None => {
            stats.status = ProcessStatus::Active;
            stats.n_batches += 1;
            stats.n_extracted += n_items as u64;
            stats.n_transformed += n_items.saturating_sub(batch.errors.len()) as u64;
            stats.n_loaded += batch.n_loaded_objects as u64;
            stats.n_filtered += batch.n_filtered as u64;
            stats.last_processed_etag = last;
            let seconds = (batch.extract_and_transform + load_time).as_secs_f64();
            if seconds > 0.0 {
                stats.processed_per_second = n_items as f64 / seconds;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> HashSet<String> {
        names.iter().map(|it| (*it).to_owned()).collect()
    }

    #[test]
    fn a_batch_overlaps_only_batches_it_shares_no_document_with() {
        let (a, b, ab) = (
            ids(&["users/1"]),
            ids(&["users/2"]),
            ids(&["users/1", "users/3"]),
        );
        // Nothing in flight: send at once.
        assert!(!must_wait(&[], Some(&a), 2, false));
        assert!(!must_wait(&[], None, 1, true));
        // Room, and nothing in common.
        assert!(!must_wait(&[Some(&a)], Some(&b), 2, false));
        // A document in common, in either position.
        assert!(must_wait(&[Some(&ab)], Some(&a), 2, false));
        assert!(must_wait(&[Some(&b), Some(&a)], Some(&ab), 3, false));
        // A batch that deletes, sent or to send.
        assert!(must_wait(&[None], Some(&a), 2, false));
        assert!(must_wait(&[Some(&a)], None, 2, false));
        // The window is full, or nothing new is to be sent.
        assert!(must_wait(&[Some(&a)], Some(&b), 1, false));
        assert!(must_wait(
            &[Some(&a), Some(&b)],
            Some(&ids(&["users/9"])),
            2,
            false
        ));
        assert!(must_wait(&[Some(&a)], Some(&b), 2, true));
    }
}
