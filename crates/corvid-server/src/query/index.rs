//! Auto indexes: an in-memory index per (database, collection, field path), created the first
//! time a query's `where` can use it, holding the field's typed values in order with the ids
//! of the documents that hold them.
//!
//! An index is never stale: before it answers, it reads the collection's change feed after
//! the last etag it indexed (`Snapshot::documents_after` / `tombstones_after`) from the same
//! snapshot the query reads, so `IsStale` is always false. An index that is already ahead of
//! the query's snapshot (a newer query updated it) does not answer and the query scans.
//! The index only narrows the candidates: every candidate is checked against the whole
//! `where` again, so answers are the same with or without it (a test compares both).
//!
//! Memory is capped (`ServerOptions::query_index_max_bytes`): when the estimated size of all
//! indexes passes the cap, the least recently used ones are dropped (a dropped index is
//! rebuilt by the next query that needs it).

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use corvid_store::{Etag, Snapshot, TombstoneKind, key_of};

use crate::error::ApiError;
use crate::query::ast::{CompareOp, Expr, Path, Scalar};
use crate::query::eval::values_of;
use crate::query::json::Found;

/// Every auto index of the server.
pub(crate) struct IndexRegistry {
    max_bytes: usize,
    inner: Mutex<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    indexes: HashMap<IndexId, Arc<Mutex<FieldIndex>>>,
    clock: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct IndexId {
    /// The database's identity (its change vector suffix), so a database deleted and created
    /// again under the same name never reads the old one's index.
    database: String,
    collection: String,
    path: Path,
}

/// One field's values, in order.
#[derive(Default)]
struct FieldIndex {
    last_etag: Etag,
    entries: BTreeSet<(IndexValue, Arc<str>)>,
    /// Per document id (as the store keys it): its etag and indexed values.
    by_id: HashMap<Arc<str>, (Etag, Vec<IndexValue>)>,
    bytes: usize,
    last_used: u64,
}

/// A value as the index orders it: strings lowercased (RavenDB compares them
/// case-insensitively), numbers in numeric order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum IndexValue {
    Null,
    Bool(bool),
    Number(OrderedNumber),
    String(String),
}

#[derive(Debug, Clone, Copy)]
struct OrderedNumber(f64);

impl PartialEq for OrderedNumber {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for OrderedNumber {}
impl PartialOrd for OrderedNumber {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedNumber {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // -0.0 and 0.0 are equal for queries.
        (self.0 + 0.0).total_cmp(&(other.0 + 0.0))
    }
}

/// What an index answered: the ids that may match, in etag order.
pub(crate) struct Candidates {
    pub ids: Vec<Arc<str>>,
    /// The ids are exactly the matches: the whole `where` is the one condition the index
    /// answered, and the index compares as `eval` does (so the page alone needs reading).
    pub exact: bool,
}

/// Estimated bytes per index entry beyond the id and value text (tree and map overhead).
const ENTRY_OVERHEAD_BYTES: usize = 96;

impl IndexRegistry {
    pub fn new(max_bytes: usize) -> IndexRegistry {
        IndexRegistry {
            max_bytes,
            inner: Mutex::new(RegistryInner::default()),
        }
    }

    /// Answers the candidates of a `where` from indexes, when one of its conjuncts can use
    /// one (or, for an `or`, when each side can); `None` means scan.
    pub fn candidates(
        &self,
        snapshot: &Snapshot,
        collection: &str,
        filter: &Expr,
    ) -> Result<Option<Candidates>, ApiError> {
        let Some(plan) = index_plan(filter) else {
            return Ok(None);
        };
        let snapshot_etag = snapshot.last_etag()?;
        let mut found: Vec<(Etag, Arc<str>)> = Vec::new();
        let mut used = Vec::new();
        for (path, predicate) in &plan {
            let id = IndexId {
                database: snapshot.change_vector(0),
                collection: key_of(collection),
                path: (*path).clone(),
            };
            let index = {
                let mut inner = lock(&self.inner);
                inner.clock += 1;
                let clock = inner.clock;
                let index = inner.indexes.entry(id.clone()).or_default().clone();
                lock(&index).last_used = clock;
                index
            };
            let mut index = lock(&index);
            if index.last_etag > snapshot_etag {
                return Ok(None);
            }
            index.catch_up(snapshot, collection, path, snapshot_etag)?;
            found.extend(
                index
                    .lookup(predicate)
                    .into_iter()
                    .filter_map(|id| index.by_id.get(&id).map(|(etag, _)| (*etag, id))),
            );
            used.push(id);
        }
        // In etag order, as a scan finds them, so ties sort the same either way.
        found.sort_unstable_by_key(|it| it.0);
        found.dedup_by_key(|it| it.0);
        let ids = found.into_iter().map(|it| it.1).collect();
        self.enforce_cap(&used);
        let exact = match plan.as_slice() {
            [(_, predicate)] => {
                std::ptr::eq(*predicate, filter) && !matches!(predicate, Expr::In { all: true, .. })
            }
            _ => false,
        };
        Ok(Some(Candidates { ids, exact }))
    }

    /// Drops least recently used indexes while the total passes the cap; the indexes just
    /// used go last, and go too if they alone pass the cap.
    fn enforce_cap(&self, just_used: &[IndexId]) {
        let mut inner = lock(&self.inner);
        let mut sizes: Vec<(u64, usize, IndexId)> = inner
            .indexes
            .iter()
            .map(|(id, index)| {
                let index = lock(index);
                let order = if just_used.contains(id) {
                    u64::MAX
                } else {
                    index.last_used
                };
                (order, index.bytes, id.clone())
            })
            .collect();
        let mut total: usize = sizes.iter().map(|it| it.1).sum();
        sizes.sort_by_key(|it| it.0);
        for (_, bytes, id) in sizes {
            if total <= self.max_bytes {
                break;
            }
            inner.indexes.remove(&id);
            total -= bytes;
        }
    }
}

impl FieldIndex {
    fn catch_up(
        &mut self,
        snapshot: &Snapshot,
        collection: &str,
        path: &Path,
        snapshot_etag: Etag,
    ) -> Result<(), ApiError> {
        let after = self.last_etag;
        for document in snapshot.documents_after(Some(collection), after)? {
            let document = document?;
            let key: Arc<str> = Arc::from(key_of(&document.id));
            self.remove(&key);
            let values: Vec<IndexValue> = values_of(&document, path)
                .into_iter()
                .filter_map(|found| match found {
                    Found::Scalar(scalar) => Some(IndexValue::from(&scalar)),
                    Found::Composite(_) => None,
                })
                .collect();
            if values.is_empty() {
                continue;
            }
            self.bytes += key.len() + ENTRY_OVERHEAD_BYTES;
            for value in &values {
                self.bytes += value.size() + ENTRY_OVERHEAD_BYTES;
                self.entries.insert((value.clone(), key.clone()));
            }
            self.by_id.insert(key, (document.etag, values));
        }
        for tombstone in snapshot.tombstones_after(Some(collection), after)? {
            let tombstone = tombstone?;
            if tombstone.kind != TombstoneKind::Document {
                continue;
            }
            let key = key_of(&tombstone.id);
            // A document deleted and then created again keeps its newer entry.
            if self
                .by_id
                .get(key.as_str())
                .is_some_and(|(etag, _)| *etag < tombstone.etag)
            {
                self.remove(key.as_str());
            }
        }
        self.last_etag = snapshot_etag;
        Ok(())
    }

    fn remove(&mut self, key: &str) {
        if let Some((key, (_, values))) = self.by_id.remove_entry(key) {
            self.bytes = self.bytes.saturating_sub(key.len() + ENTRY_OVERHEAD_BYTES);
            for value in values {
                self.bytes = self
                    .bytes
                    .saturating_sub(value.size() + ENTRY_OVERHEAD_BYTES);
                self.entries.remove(&(value, key.clone()));
            }
        }
    }

    fn lookup(&self, predicate: &Expr) -> Vec<Arc<str>> {
        let mut ids = Vec::new();
        match predicate {
            Expr::Compare { value, op, .. } => {
                let value = IndexValue::from(value);
                let (low, high) = match op {
                    CompareOp::Equal => (Bound::Included(&value), Bound::Included(&value)),
                    CompareOp::Less => (Bound::Unbounded, Bound::Excluded(&value)),
                    CompareOp::LessOrEqual => (Bound::Unbounded, Bound::Included(&value)),
                    CompareOp::Greater => (Bound::Excluded(&value), Bound::Unbounded),
                    CompareOp::GreaterOrEqual => (Bound::Included(&value), Bound::Unbounded),
                    CompareOp::NotEqual => return ids,
                };
                self.collect_range(&value, low, high, &mut ids);
            }
            Expr::Between { low, high, .. } => {
                let low = IndexValue::from(low);
                let high = IndexValue::from(high);
                self.collect_range(
                    &low,
                    Bound::Included(&low),
                    Bound::Included(&high),
                    &mut ids,
                );
            }
            Expr::In { values, all, .. } => {
                let values: Vec<&Scalar> = if *all {
                    values.iter().take(1).collect()
                } else {
                    values.iter().collect()
                };
                for value in values {
                    let value = IndexValue::from(value);
                    self.collect_range(
                        &value,
                        Bound::Included(&value),
                        Bound::Included(&value),
                        &mut ids,
                    );
                }
            }
            Expr::StartsWith { prefix, .. } => {
                let prefix = prefix.to_lowercase();
                let start = (IndexValue::String(prefix.clone()), Arc::from(""));
                for (value, id) in self.entries.range(start..) {
                    match value {
                        IndexValue::String(text) if text.starts_with(&prefix) => {
                            ids.push(id.clone());
                        }
                        _ => break,
                    }
                }
            }
            _ => {}
        }
        ids
    }

    /// The ids of entries within bounds, staying within the variant (type) of `kind`: a
    /// number range never reaches strings.
    fn collect_range(
        &self,
        kind: &IndexValue,
        low: Bound<&IndexValue>,
        high: Bound<&IndexValue>,
        ids: &mut Vec<Arc<str>>,
    ) {
        let empty: Arc<str> = Arc::from("");
        let start = match low {
            Bound::Included(value) | Bound::Excluded(value) => (value.clone(), empty),
            Bound::Unbounded => (kind.lowest_of_kind(), empty),
        };
        for (value, id) in self.entries.range(start..) {
            if std::mem::discriminant(value) != std::mem::discriminant(kind) {
                break;
            }
            if matches!(low, Bound::Excluded(bound) if value == bound) {
                continue;
            }
            let in_range = match high {
                Bound::Included(bound) => value <= bound,
                Bound::Excluded(bound) => value < bound,
                Bound::Unbounded => true,
            };
            if !in_range {
                break;
            }
            ids.push(id.clone());
        }
    }
}

impl IndexValue {
    fn from(scalar: &Scalar) -> IndexValue {
        match scalar {
            Scalar::Null => IndexValue::Null,
            Scalar::Bool(it) => IndexValue::Bool(*it),
            Scalar::Number(it) => IndexValue::Number(OrderedNumber(*it)),
            Scalar::String(it) => IndexValue::String(it.to_lowercase()),
        }
    }

    fn lowest_of_kind(&self) -> IndexValue {
        match self {
            IndexValue::Null => IndexValue::Null,
            IndexValue::Bool(_) => IndexValue::Bool(false),
            IndexValue::Number(_) => IndexValue::Number(OrderedNumber(f64::NEG_INFINITY)),
            IndexValue::String(_) => IndexValue::String(String::new()),
        }
    }

    fn size(&self) -> usize {
        match self {
            IndexValue::String(text) => text.len() + 24,
            _ => 16,
        }
    }
}

/// The conditions indexes answer for a `where`: for an `or`, the union of its sides' plans
/// (each side must have one); otherwise the best conjunct: `=`, then `in`/`all in`, then
/// `startsWith`, then ranges and `between` on a field (not `id()`), and last an `or` conjunct
/// that has a plan. Candidates are then checked against the whole `where` (unless the plan is
/// the whole `where`, see [`Candidates::exact`]).
fn index_plan(filter: &Expr) -> Option<Vec<(&Path, &Expr)>> {
    if let Expr::Or(left, right) = filter {
        let mut plan = index_plan(left)?;
        plan.extend(index_plan(right)?);
        return Some(plan);
    }
    let mut best: Option<(Vec<(&Path, &Expr)>, u8)> = None;
    let mut pending = vec![filter];
    while let Some(expr) = pending.pop() {
        let (plan, preference) = match expr {
            Expr::And(left, right) => {
                pending.push(right);
                pending.push(left);
                continue;
            }
            Expr::Or(..) => match index_plan(expr) {
                Some(plan) => (plan, 4),
                None => continue,
            },
            _ => match indexable_condition(expr) {
                Some((path, preference)) => (vec![(path, expr)], preference),
                None => continue,
            },
        };
        if best.as_ref().is_none_or(|it| preference < it.1) {
            best = Some((plan, preference));
        }
    }
    best.map(|it| it.0)
}

/// The field of a condition an index can answer, and how much it is preferred (lower first).
fn indexable_condition(expr: &Expr) -> Option<(&Path, u8)> {
    let (path, preference) = match expr {
        Expr::Compare {
            path,
            op: CompareOp::Equal,
            value,
        } if *value != Scalar::Null => (path, 0),
        Expr::In { path, values, .. } if !values.is_empty() => (path, 1),
        Expr::StartsWith { path, .. } => (path, 2),
        Expr::Compare { path, op, value }
            if *op != CompareOp::NotEqual
                && matches!(value, Scalar::Number(_) | Scalar::String(_)) =>
        {
            (path, 3)
        }
        Expr::Between { path, low, high }
            if std::mem::discriminant(low) == std::mem::discriminant(high)
                && matches!(low, Scalar::Number(_) | Scalar::String(_)) =>
        {
            (path, 3)
        }
        _ => return None,
    };
    (*path != Path::Id).then_some((path, preference))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding an index lock leaves at worst a partly updated index; queries
    // re-check every candidate, so keep going rather than poisoning every later query.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use corvid_store::{PutDocument, Storage, WriteOp};
    use serde_json::{Map, json};

    use super::*;
    use crate::query::parse;

    fn filter(text: &str) -> Expr {
        parse(text, &Map::new())
            .expect("query")
            .filter
            .expect("where")
    }

    fn indexed_paths(registry: &IndexRegistry) -> Vec<String> {
        let inner = lock(&registry.inner);
        let mut paths: Vec<String> = inner
            .indexes
            .keys()
            .map(|it| it.path.display_name())
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn the_least_recently_used_index_goes_when_over_the_cap() {
        let dir = tempfile::tempdir().expect("dir");
        let storage = Storage::open(dir.path()).expect("storage");
        let database = storage.create_database("db").expect("database");
        let ops = (0..10)
            .map(|idx| {
                let document = json!({"A": idx, "B": idx, "@metadata": {"@collection": "Docs"}});
                let object = document.as_object().expect("object").clone();
                WriteOp::Put(PutDocument::new(&format!("docs/{idx}"), object, None).expect("put"))
            })
            .collect();
        database.write(ops).expect("write");
        let snapshot = database.snapshot().expect("snapshot");

        // Room for one index of ten documents, not two.
        let registry = IndexRegistry::new(3000);
        let found = registry
            .candidates(&snapshot, "Docs", &filter("from Docs where A >= 5"))
            .expect("run")
            .expect("an index answered");
        assert_eq!(found.ids.len(), 5);
        assert!(found.exact);
        assert_eq!(indexed_paths(&registry), ["A"]);
        registry
            .candidates(
                &snapshot,
                "docs",
                &filter("from Docs where B = 1 and A = 1"),
            )
            .expect("run")
            .expect("an index answered");
        assert_eq!(indexed_paths(&registry), ["B"]);

        // An index larger than the whole cap answers once and is dropped.
        let tiny = IndexRegistry::new(10);
        let found = tiny
            .candidates(&snapshot, "Docs", &filter("from Docs where A in (1, 2)"))
            .expect("run")
            .expect("an index answered");
        assert_eq!(found.ids.len(), 2);
        assert!(indexed_paths(&tiny).is_empty());

        // Conditions an index cannot narrow scan.
        for text in ["from Docs where A != 1", "from Docs where id() = 'docs/1'"] {
            assert!(
                tiny.candidates(&snapshot, "Docs", &filter(text))
                    .expect("run")
                    .is_none()
            );
        }
    }
}
