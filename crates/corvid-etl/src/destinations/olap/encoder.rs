//! OLAP ETL's encoder: each `loadTo<Table>(key, obj)` call of a document is one row of the
//! table, in the partition the key names; with `EmitDeletes`, a deleted document is a row
//! with `_deleted = true` in every table of the transformation. Rows are grouped by
//! (table, partition): each group goes to one file of the run.

use std::collections::HashMap;
use std::sync::Arc;

use corvid_script::ScriptRuntime;
use corvid_store::{Etag, HILO_COLLECTION, TombstoneKind};

use crate::destination::{BatchEncoder, Encoded, EncodedBatch, ItemSource};
use crate::destinations::olap::parquet::OlapRow;
use crate::destinations::olap::path::{escape_segment, partition_path};
use crate::extract::Item;
use crate::worker::{SnapshotHost, TransformFailure, run_script};

pub(crate) use crate::destinations::olap::parquet::{DELETED_COLUMN, LAST_MODIFIED_COLUMN};

/// The id column's name when a table does not name one.
pub(crate) const DEFAULT_ID_COLUMN: &str = "_id";

/// What encoding needs, shared by a process's encoders.
#[derive(Debug, Clone)]
pub(crate) struct EncodeSettings {
    /// The id column of each table named in `OlapTables` (table names compare exactly).
    pub id_columns: HashMap<String, String>,
    pub emit_deletes: bool,
    /// The tables a delete row goes to: the script's literal targets and `OlapTables`'.
    pub delete_tables: Vec<String>,
}

impl EncodeSettings {
    pub fn id_column(&self, table: &str) -> &str {
        self.id_columns
            .get(table)
            .map_or(DEFAULT_ID_COLUMN, String::as_str)
    }
}

/// Where a group's rows go inside its table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Partition {
    /// `k1=v1/k2=v2` (escaped), or empty for the table's root.
    Path(String),
    /// Delete rows: the table's partitions are not known from a tombstone; the loader puts
    /// them under the table's partition names with Hive's null value.
    Deletes,
}

/// The rows of one (table, partition) in a batch, in order.
#[derive(Debug)]
pub(crate) struct RowGroup {
    pub table: String,
    pub partition: Partition,
    pub rows: Vec<OlapRow>,
}

/// The rows of a batch, grouped.
#[derive(Debug, Default)]
pub(crate) struct OlapBatch {
    pub groups: Vec<RowGroup>,
    index: HashMap<(String, Partition), usize>,
    /// The lowest etag of an item that produced a row: names the run's files.
    pub first_etag: Option<Etag>,
    pub n_rows: usize,
}

impl OlapBatch {
    fn push(&mut self, table: String, partition: Partition, row: OlapRow, etag: Etag) {
        self.first_etag = Some(self.first_etag.map_or(etag, |it| it.min(etag)));
        self.n_rows += 1;
        let key = (table, partition);
        match self.index.get(&key) {
            Some(idx) => self.groups[*idx].rows.push(row),
            None => {
                self.index.insert(key.clone(), self.groups.len());
                self.groups.push(RowGroup {
                    table: key.0,
                    partition: key.1,
                    rows: vec![row],
                });
            }
        }
    }

    fn append(&mut self, later: OlapBatch) {
        if let Some(etag) = later.first_etag {
            self.first_etag = Some(self.first_etag.map_or(etag, |it| it.min(etag)));
        }
        for group in later.groups {
            let key = (group.table.clone(), group.partition.clone());
            self.n_rows += group.rows.len();
            match self.index.get(&key) {
                Some(idx) => self.groups[*idx].rows.extend(group.rows),
                None => {
                    self.index.insert(key, self.groups.len());
                    self.groups.push(group);
                }
            }
        }
    }
}

impl EncodedBatch for OlapBatch {
    fn is_empty(&self) -> bool {
        self.n_rows == 0
    }

    fn has_new_documents(&self) -> bool {
        false
    }
}

/// Encodes items into an [`OlapBatch`].
pub(crate) struct OlapEncoder {
    settings: Arc<EncodeSettings>,
    batch: OlapBatch,
    partitions: PartitionCache,
    /// Reused from item to item.
    rows: Vec<(String, Partition, OlapRow)>,
}

impl OlapEncoder {
    pub fn new(settings: Arc<EncodeSettings>) -> OlapEncoder {
        OlapEncoder {
            settings,
            batch: OlapBatch::default(),
            partitions: PartitionCache::default(),
            rows: Vec::new(),
        }
    }
}

impl BatchEncoder for OlapEncoder {
    type Batch = OlapBatch;

    fn encode(
        &mut self,
        source: &mut ItemSource<'_>,
        item: &Item,
        _never_sent: bool,
    ) -> Result<Encoded, TransformFailure> {
        let Some(runtime) = source.runtime.as_deref_mut() else {
            return Err(TransformFailure {
                document_id: item.id().to_owned(),
                message: "OLAP ETL needs a script that calls loadTo<Table>(key, obj)".to_owned(),
            });
        };
        let mut host = SnapshotHost {
            snapshot: source.snapshot,
        };
        let encoded = transform_olap_item(
            &self.settings,
            &mut self.partitions,
            runtime,
            &mut host,
            item,
            &mut self.rows,
            &mut Vec::new(),
        )?;
        for (table, partition, row) in self.rows.drain(..) {
            self.batch.push(table, partition, row, item.etag());
        }
        Ok(encoded)
    }

    fn append(&mut self, later: Self) {
        self.batch.append(later.batch);
    }

    fn finish(self) -> OlapBatch {
        self.batch
    }
}

/// Runs the script on one item and adds its rows to `rows` (all or none).
pub(crate) fn transform_olap_item(
    settings: &EncodeSettings,
    partitions: &mut PartitionCache,
    runtime: &mut ScriptRuntime,
    host: &mut SnapshotHost<'_>,
    item: &Item,
    rows: &mut Vec<(String, Partition, OlapRow)>,
    debug_output: &mut Vec<String>,
) -> Result<Encoded, TransformFailure> {
    match item {
        Item::Document(doc) => {
            if doc.collection.eq_ignore_ascii_case(HILO_COLLECTION) {
                return Ok(Encoded::Filtered);
            }
            let failure = |message: String| TransformFailure {
                document_id: doc.id.clone(),
                message,
            };
            let output = run_script(runtime, host, doc, debug_output).map_err(failure)?;
            let n_loads = output.loads.len();
            let mut produced = Vec::with_capacity(n_loads);
            for load in output.loads {
                if load.target.is_empty() {
                    return Err(failure("loadTo: the table name is empty".to_owned()));
                }
                let key = load.extra_arguments.as_deref().unwrap_or("[]");
                let partition = partitions.partition_of(key).map_err(failure)?;
                let values = load.values.unwrap_or_default();
                let id_column = settings.id_column(&load.target);
                if let Some((name, _)) = values.iter().find(|(name, _)| {
                    **name == *id_column
                        || &**name == LAST_MODIFIED_COLUMN
                        || (settings.emit_deletes && &**name == DELETED_COLUMN)
                }) {
                    return Err(failure(format!(
                        "loadTo{}: `{name}` is a column OLAP ETL writes itself; name the member otherwise",
                        load.target
                    )));
                }
                produced.push((
                    load.target,
                    Partition::Path(partition),
                    OlapRow {
                        document_id: doc.id.clone(),
                        last_modified: doc.last_modified,
                        deleted: false,
                        values,
                    },
                ));
            }
            rows.extend(produced);
            Ok(if n_loads == 0 {
                Encoded::Filtered
            } else {
                Encoded::Loaded { n_loaded: n_loads }
            })
        }
        Item::Tombstone(tombstone) => {
            if !settings.emit_deletes
                || !matches!(tombstone.kind, TombstoneKind::Document)
                || tombstone.collection.eq_ignore_ascii_case(HILO_COLLECTION)
            {
                return Ok(Encoded::Filtered);
            }
            let failure = |message: String| TransformFailure {
                document_id: tombstone.id.clone(),
                message,
            };
            // A behaviour function may keep a delete from being written.
            let behavior = runtime
                .delete_behavior(&tombstone.collection, &tombstone.id, true, host)
                .map_err(|it| failure(it.to_string()))?;
            if behavior == Some(false) || settings.delete_tables.is_empty() {
                return Ok(Encoded::Filtered);
            }
            for table in &settings.delete_tables {
                rows.push((
                    table.clone(),
                    Partition::Deletes,
                    OlapRow {
                        document_id: tombstone.id.clone(),
                        last_modified: tombstone.deleted_at,
                        deleted: true,
                        values: Vec::new(),
                    },
                ));
            }
            Ok(Encoded::Loaded {
                n_loaded: settings.delete_tables.len(),
            })
        }
    }
}

/// The partition folders of the `loadTo` keys seen last: a run's documents name a few
/// partitions over and over, each as the same key text.
#[derive(Debug, Default)]
pub(crate) struct PartitionCache {
    paths: HashMap<String, String>,
}

/// Keys a [`PartitionCache`] holds at most: past it, it starts over.
const MAX_CACHED_PARTITIONS: usize = 4096;

impl PartitionCache {
    /// [`partition_of`], remembered.
    pub fn partition_of(&mut self, extra_arguments: &str) -> Result<String, String> {
        if let Some(path) = self.paths.get(extra_arguments) {
            return Ok(path.clone());
        }
        let path = partition_of(extra_arguments)?;
        if self.paths.len() == MAX_CACHED_PARTITIONS {
            self.paths.clear();
        }
        self.paths.insert(extra_arguments.to_owned(), path.clone());
        Ok(path)
    }
}

/// The partition folder of a `loadTo` key: the script passes `[[[name, value], …]]` (the
/// key, normalized by the runtime: names and values already text).
pub(crate) fn partition_of(extra_arguments: &str) -> Result<String, String> {
    let not_a_key =
        || "loadTo: the first argument must be partitionBy(…) or noPartition()".to_owned();
    let arguments: Vec<serde_json::Value> =
        serde_json::from_str(extra_arguments).map_err(|_| not_a_key())?;
    let Some(serde_json::Value::Array(pairs)) = arguments.first() else {
        return Err(not_a_key());
    };
    let mut parts = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let Some(
            [
                serde_json::Value::String(name),
                serde_json::Value::String(value),
            ],
        ) = pair.as_array().map(Vec::as_slice)
        else {
            return Err(not_a_key());
        };
        if name.is_empty() {
            return Err("partitionBy: a partition name is empty".to_owned());
        }
        parts.push((name.as_str(), value.as_str()));
    }
    Ok(partition_path(&parts))
}

/// The table's folder name.
pub(crate) fn table_folder(table: &str) -> String {
    escape_segment(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_hive_folders() {
        assert_eq!(partition_of(r#"[[]]"#).unwrap(), "");
        assert_eq!(
            partition_of(r#"[[["year","2024"],["month","3"]]]"#).unwrap(),
            "year=2024/month=3"
        );
        assert_eq!(
            partition_of(r#"[[["_partition","a/b"]]]"#).unwrap(),
            "_partition=a%2Fb"
        );
        for bad in [
            r#"["x"]"#,
            "[]",
            r#"[[["year"]]]"#,
            r#"[[["year",3]]]"#,
            "nope",
        ] {
            assert!(partition_of(bad).is_err(), "{bad}");
        }
        assert!(partition_of(r#"[[["","x"]]]"#).is_err());
    }

    #[test]
    fn the_partition_cache_answers_as_partition_of() {
        let mut cache = PartitionCache::default();
        for key in [
            r#"[[["year","2024"],["month","3"]]]"#,
            r#"[[]]"#,
            r#"[[["year","2024"],["month","3"]]]"#,
            r#"[[["year"]]]"#,
            r#"[[["year"]]]"#,
        ] {
            assert_eq!(cache.partition_of(key), partition_of(key), "{key}");
        }
    }
}
