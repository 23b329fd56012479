//! The seam between the generic engine and a destination.
//!
//! The engine (`process.rs`, `worker.rs`, `manager.rs`) extracts items, runs the script, and
//! moves progress; it names no destination. A destination supplies, through [`Destination`]:
//! its validated configuration (built in `destinations/<name>/config.rs`), the script options
//! it needs, an encoder that turns each transformed item into its own batch type
//! ([`BatchEncoder`], [`EncodedBatch`]), and a loader that sends such a batch
//! ([`Loader`]) and classifies why a load failed ([`LoadError`]). The batch belongs to the
//! destination from encoder to loader: the engine never looks inside it and never copies it.
//!
//! A refusal about one item never stalls a task: the loader delivers the batch without it
//! ([`BadItemSearch`]) and reports it as [`SkippedItem`]; only a failure of the
//! destination itself keeps progress where it is.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use corvid_script::{ScriptOptions, ScriptRuntime};
use corvid_store::Snapshot;

use crate::extract::Item;
use crate::options::EtlOptions;
use crate::validate::ValidatedTransform;
use crate::worker::TransformFailure;

/// What a destination supplies to the generic engine; one implementation per
/// `destinations/<name>/` folder, registered in `destinations/mod.rs`.
pub(crate) trait Destination: Send + Sync + 'static {
    /// The batch type: encoded on the script worker, sent by the loader.
    type Batch: EncodedBatch;
    type Encoder: BatchEncoder<Batch = Self::Batch>;
    type Loader: Loader<Batch = Self::Batch>;

    /// The script options of its transformations, from the server's.
    fn script_options(&self, base: &ScriptOptions) -> ScriptOptions {
        base.clone()
    }

    /// An empty encoder; one per part of a batch transformed in parallel.
    fn new_encoder(&self) -> Self::Encoder;

    /// The loader of one process, kept for the process's life; `options` are the server's
    /// (a destination takes what concerns it: Raven ETL its TLS settings).
    fn new_loader(&self, options: &EtlOptions) -> Result<Self::Loader, LoadError>;

    /// What the process's claim on destination targets is tied to (no secret).
    fn identity(&self) -> String;

    /// How many batches may be loading at once (at least 1). More than one only where the
    /// destination applies batches that share no document in either order
    /// ([`EncodedBatch::overlap_ids`]).
    fn loads_in_flight(&self, _options: &EtlOptions) -> usize {
        1
    }

    /// When the process runs: on every change (the default), or in runs on a schedule.
    fn schedule(&self) -> Schedule {
        Schedule::Continuous
    }
}

/// When a destination's process sends changes.
#[derive(Clone)]
pub(crate) enum Schedule {
    /// As soon as they are committed; each load is delivered (or not) on its own.
    Continuous,
    /// In runs: one when the process starts, then at each time `next_after` gives. A run
    /// covers every change up to the last etag when it started; its loads are buffered
    /// ([`Delivered::buffered`]) and published together at its end
    /// ([`Loader::seal_run`], [`Loader::publish_run`]); progress moves only then.
    Runs(Arc<dyn Fn(SystemTime) -> Option<SystemTime> + Send + Sync>),
}

/// Turns transformed items into one destination batch.
pub(crate) trait BatchEncoder: Send + Sized + 'static {
    type Batch;

    /// Runs the transformation on one item and adds what it produced to the batch; on a
    /// failure the batch is unchanged. `never_sent`: no version of the document was ever sent
    /// to the destination.
    fn encode(
        &mut self,
        source: &mut ItemSource<'_>,
        item: &Item,
        never_sent: bool,
    ) -> Result<Encoded, TransformFailure>;

    /// Adds what an encoder of a later part of the same batch produced.
    fn append(&mut self, later: Self);

    fn finish(self) -> Self::Batch;
}

/// What an encoder reads an item with.
pub(crate) struct ItemSource<'a> {
    /// The batch's snapshot (`load()` in scripts, attachments).
    pub snapshot: &'a Snapshot,
    pub transform: &'a ValidatedTransform,
    /// `None` for an empty script.
    pub runtime: Option<&'a mut ScriptRuntime>,
}

/// What one item added to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoded {
    /// The script loaded this many objects (zero counts as filtered).
    Loaded { n_loaded: usize },
    /// The item sends nothing.
    Filtered,
}

/// A batch in a destination's terms, as the engine sees it from outside.
pub(crate) trait EncodedBatch: Send + 'static {
    fn is_empty(&self) -> bool;

    /// Returns true when the batch has documents no version of which was ever sent.
    fn has_new_documents(&self) -> bool;

    /// The ids (lower case) the batch writes when it may be applied in either order with
    /// other such batches that share none of them; `None` when it must be applied in order.
    fn overlap_ids(&self, _owned: &BTreeSet<String>) -> Option<HashSet<String>> {
        None
    }
}

/// Sends batches to one destination.
pub(crate) trait Loader: Send + 'static {
    type Batch: EncodedBatch;

    /// Starts sending a batch. Deletes that cannot delete anything may be left out: those of
    /// new documents in `targets.owned`, and all of them in targets seen empty just now
    /// (owned once the batch is delivered). Targets found holding data go into
    /// `targets.not_empty`. Returns the delivery under way and how many commands (or rows)
    /// it sends.
    fn start<'a>(
        &'a mut self,
        batch: &'a mut Self::Batch,
        targets: Targets<'a>,
    ) -> impl Future<Output = (Delivery, usize)> + Send + 'a;

    /// A run's end ([`Schedule::Runs`]): finishes what the run's loads buffered and returns
    /// the names of what publishing it will write. The engine stores them with the progress
    /// before [`Loader::publish_run`], so that a publish cut short is undone
    /// ([`Loader::undo_publish`]) and never leaves a partial run behind.
    fn seal_run(&mut self) -> impl Future<Output = Result<Vec<String>, LoadError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Publishes the sealed run; progress moves past the run once this returns `Ok`.
    fn publish_run(&mut self) -> impl Future<Output = Result<(), LoadError>> + Send {
        async { Ok(()) }
    }

    /// Removes what a publish cut short (a failure, or a crash: `names` then come from the
    /// stored progress) may have written; what was not written is no error.
    fn undo_publish<'a>(
        &'a mut self,
        _names: &'a [String],
    ) -> impl Future<Output = Result<(), LoadError>> + Send + 'a {
        async { Ok(()) }
    }

    /// Forgets what the current run buffered: the run is done again from its start.
    fn discard_run(&mut self) {}
}

/// The destination targets (tables, collection id prefixes) a process owns or saw holding
/// data; see `process.rs` `Ownership`.
pub(crate) struct Targets<'a> {
    pub owned: &'a BTreeSet<String>,
    pub not_empty: &'a mut BTreeSet<String>,
}

/// A load under way: sent and awaited in a task of its own, or already finished.
pub(crate) enum Delivery {
    Done(Result<Delivered, LoadError>),
    Sending(AbortOnDrop<Result<Delivered, LoadError>>),
}

impl Delivery {
    /// The load's outcome.
    pub async fn finish(self) -> Result<Delivered, LoadError> {
        match self {
            Delivery::Done(result) => result,
            Delivery::Sending(mut task) => match (&mut task.0).await {
                Ok(result) => result,
                Err(error) => Err(LoadError::Reconnect {
                    message: format!("the load stopped: {error}"),
                }),
            },
        }
    }
}

/// What the destination acknowledged: the batch, less `skipped`. Progress may move past it.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    /// Targets seen empty before the load: the process owns them from now on.
    pub newly_owned: Vec<String>,
    /// Items the destination refused; everything else was delivered.
    pub skipped: Vec<SkippedItem>,
    /// The destination holds the batch until its run is published ([`Schedule::Runs`]):
    /// progress does not move yet.
    pub buffered: bool,
}

/// An item the destination refused, left out of a delivered batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedItem {
    pub document_id: String,
    pub message: String,
}

/// A spawned task that is cancelled when its handle is dropped (the process stopping).
pub(crate) struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a load failed, classified: what the engine does next depends only on the class.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// The destination is unreachable, busy or timed out: progress stays and the same items
    /// are retried after a pause.
    #[error("{message}")]
    Reconnect { message: String },
    /// The destination refused something in the batch that it will always refuse: the item
    /// is left out (its document id, where the destination's answer names it).
    #[error("{}", bad_item_message(document_id.as_deref(), message))]
    BadItem {
        document_id: Option<String>,
        message: String,
    },
    /// The destination refuses every batch until its configuration changes (credentials, a
    /// missing database or table): progress stays, and the task says so.
    #[error("{message}")]
    Configuration { message: String },
}

fn bad_item_message(document_id: Option<&str>, message: &str) -> String {
    match document_id {
        Some(id) => format!("document `{id}`: {message}"),
        None => message.to_owned(),
    }
}

/// The class of a [`LoadError`], as the task status reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadErrorClass {
    Reconnect,
    BadItem,
    Configuration,
}

impl LoadErrorClass {
    /// Every class, in the order of [`LoadErrorClass::index`].
    pub const ALL: [LoadErrorClass; 3] = [
        LoadErrorClass::Reconnect,
        LoadErrorClass::BadItem,
        LoadErrorClass::Configuration,
    ];

    /// The class's position in [`LoadErrorClass::ALL`].
    pub fn index(self) -> usize {
        match self {
            LoadErrorClass::Reconnect => 0,
            LoadErrorClass::BadItem => 1,
            LoadErrorClass::Configuration => 2,
        }
    }

    /// The name the task status shows.
    pub fn name(self) -> &'static str {
        match self {
            LoadErrorClass::Reconnect => "Reconnect",
            LoadErrorClass::BadItem => "BadItem",
            LoadErrorClass::Configuration => "Configuration",
        }
    }
}

impl LoadError {
    pub fn class(&self) -> LoadErrorClass {
        match self {
            LoadError::Reconnect { .. } => LoadErrorClass::Reconnect,
            LoadError::BadItem { .. } => LoadErrorClass::BadItem,
            LoadError::Configuration { .. } => LoadErrorClass::Configuration,
        }
    }
}

/// Finds the items of a batch the destination refuses, while delivering the others, in
/// order. The loader sends `next()`'s range of items as one destination transaction and
/// hands the outcome to `record()`, until `next()` is `None`; then `finish()`.
///
/// A refusal that names an item in the range (`position` of its id) sends what precedes it,
/// the item alone, then what follows; one that names none splits the range in halves. An
/// item refused on its own is skipped and reported; any other failure ends the delivery
/// (what was sent before is sent again on the retry: loads are idempotent). With one bad
/// item among n, about 2·log2(n) transactions instead of one; without, one.
pub(crate) struct BadItemSearch {
    n_items: usize,
    ranges: VecDeque<Range<usize>>,
    skipped: Vec<SkippedItem>,
}

impl BadItemSearch {
    pub fn new(n_items: usize) -> BadItemSearch {
        let mut ranges = VecDeque::new();
        ranges.push_back(0..n_items);
        BadItemSearch {
            n_items,
            ranges,
            skipped: Vec::new(),
        }
    }

    /// The items to send next, as one transaction.
    pub fn next(&mut self) -> Option<Range<usize>> {
        while let Some(range) = self.ranges.pop_front() {
            if !range.is_empty() {
                return Some(range);
            }
        }
        None
    }

    /// Takes the outcome of sending `range`. `position(id)` finds the item a refusal names;
    /// `item_id(idx)` is the source id reported for a skipped item.
    pub fn record(
        &mut self,
        range: Range<usize>,
        sent: Result<(), LoadError>,
        position: impl Fn(&str) -> Option<usize>,
        item_id: impl Fn(usize) -> String,
    ) -> Result<(), LoadError> {
        let error = match sent {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        let LoadError::BadItem {
            document_id,
            message,
        } = &error
        else {
            return Err(error);
        };
        match split_after_refusal(range.clone(), document_id.as_deref().and_then(position)) {
            Some(parts) => {
                for part in parts.into_iter().rev() {
                    self.ranges.push_front(part);
                }
            }
            None => self.skipped.push(SkippedItem {
                document_id: item_id(range.start),
                message: message.clone(),
            }),
        }
        Ok(())
    }

    /// The skipped items. When every item of a batch of several was refused, the
    /// destination refuses everything: that is its configuration, not the items.
    pub fn finish(self) -> Result<Vec<SkippedItem>, LoadError> {
        if self.n_items > 1 && self.skipped.len() == self.n_items {
            let first = self.skipped.into_iter().next().map(|it| it.message);
            return Err(LoadError::Configuration {
                message: format!(
                    "the destination refused every item of the batch: {}",
                    first.unwrap_or_default()
                ),
            });
        }
        Ok(self.skipped)
    }
}

/// How a refused range is tried next: `None` when it is one item (skip it); the parts, in
/// order, otherwise: around the named item when the refusal names one inside the range,
/// halves otherwise.
fn split_after_refusal(range: Range<usize>, named: Option<usize>) -> Option<Vec<Range<usize>>> {
    if range.len() <= 1 {
        return None;
    }
    match named {
        Some(at) if range.contains(&at) => {
            Some(vec![range.start..at, at..at + 1, at + 1..range.end])
        }
        _ => {
            let middle = range.start + range.len() / 2;
            Some(vec![range.start..middle, middle..range.end])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(id: Option<&str>) -> LoadError {
        LoadError::BadItem {
            document_id: id.map(str::to_owned),
            message: "refused".to_owned(),
        }
    }

    /// A destination that refuses every transaction holding one of `poison`, naming the item
    /// when `names_it`; returns the delivered items, the skipped ones, and the sends.
    fn run(
        n_items: usize,
        poison: &[usize],
        names_it: bool,
    ) -> (Vec<usize>, Vec<String>, Vec<Range<usize>>) {
        let mut delivered = Vec::new();
        let mut sends = Vec::new();
        let mut search = BadItemSearch::new(n_items);
        while let Some(range) = search.next() {
            sends.push(range.clone());
            let found = poison.iter().copied().find(|it| range.contains(it));
            let sent = match found {
                Some(at) => Err(bad(names_it.then(|| format!("items/{at}")).as_deref())),
                None => {
                    delivered.extend(range.clone());
                    Ok(())
                }
            };
            let position = |id: &str| id.strip_prefix("items/")?.parse().ok();
            search
                .record(range, sent, position, |idx| format!("items/{idx}"))
                .expect("only bad items");
        }
        let skipped = search.finish().expect("delivered");
        let skipped = skipped.into_iter().map(|it| it.document_id).collect();
        (delivered, skipped, sends)
    }

    #[test]
    fn a_batch_without_bad_items_is_one_send() {
        let (delivered, skipped, sends) = run(8, &[], false);
        assert_eq!(delivered, (0..8).collect::<Vec<_>>());
        assert!(skipped.is_empty());
        assert_eq!(sends, vec![0..8]);
    }

    #[test]
    fn an_unnamed_bad_item_is_found_by_halving_and_the_rest_arrives_in_order() {
        let (delivered, skipped, sends) = run(8, &[5], false);
        assert_eq!(delivered, vec![0, 1, 2, 3, 4, 6, 7]);
        assert_eq!(skipped, vec!["items/5"]);
        // 0..8, 0..4 ok, 4..8, 4..6, 4..5 ok, 5..6 skipped, 6..8 ok.
        assert_eq!(sends.len(), 7);
    }

    #[test]
    fn a_named_bad_item_is_tried_alone_and_skipped() {
        let (delivered, skipped, sends) = run(100, &[40], true);
        assert_eq!(delivered.len(), 99);
        assert_eq!(skipped, vec!["items/40"]);
        assert_eq!(sends, vec![0..100, 0..40, 40..41, 41..100]);
    }

    #[test]
    fn several_bad_items_are_all_skipped() {
        let (delivered, skipped, _) = run(16, &[0, 7, 15], false);
        assert_eq!(delivered.len(), 13);
        assert_eq!(skipped, vec!["items/0", "items/7", "items/15"]);
    }

    #[test]
    fn a_failure_of_the_destination_stops_the_delivery() {
        let mut search = BadItemSearch::new(4);
        let range = search.next().expect("a first send");
        let down = Err(LoadError::Reconnect {
            message: "down".to_owned(),
        });
        let res = search.record(range, down, |_| None, |idx| idx.to_string());
        assert!(matches!(res, Err(LoadError::Reconnect { .. })));
    }

    #[test]
    fn a_destination_that_refuses_every_item_is_misconfigured() {
        let mut search = BadItemSearch::new(2);
        while let Some(range) = search.next() {
            search
                .record(range, Err(bad(None)), |_| None, |idx| idx.to_string())
                .expect("bad items");
        }
        assert!(matches!(
            search.finish(),
            Err(LoadError::Configuration { .. })
        ));
        // A batch of one refused item is that item.
        let mut search = BadItemSearch::new(1);
        let range = search.next().expect("a send");
        search
            .record(range, Err(bad(None)), |_| None, |idx| idx.to_string())
            .expect("bad item");
        assert_eq!(search.finish().expect("skipped").len(), 1);
    }

    #[test]
    fn a_named_item_outside_the_range_halves_it() {
        assert_eq!(split_after_refusal(0..4, Some(9)), Some(vec![0..2, 2..4]));
        assert_eq!(split_after_refusal(3..4, Some(3)), None);
        assert_eq!(
            split_after_refusal(0..3, Some(0)),
            Some(vec![0..0, 0..1, 1..3])
        );
    }

    #[test]
    fn bad_item_messages_name_the_document() {
        assert_eq!(
            bad(Some("users/1")).to_string(),
            "document `users/1`: refused"
        );
        assert_eq!(bad(None).to_string(), "refused");
        assert_eq!(bad(None).class().name(), "BadItem");
    }
}
