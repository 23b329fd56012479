//! SQL ETL's encoder: each transformed document replaces its rows (all of them or none), a
//! deleted document's rows go.

use bytes::Bytes;
use corvid_script::ScriptRuntime;
use corvid_store::{HILO_COLLECTION, Snapshot, TombstoneKind};

use crate::destination::{BatchEncoder, Encoded, EncodedBatch, ItemSource};
use crate::destinations::sql::batch::SqlBatch;
use crate::destinations::sql::rows::BatchBuilder;
use crate::extract::Item;
use crate::worker::{SnapshotHost, TransformFailure, run_script};

/// Encodes items into a [`SqlBatch`].
pub(crate) struct SqlEncoder {
    pub rows: BatchBuilder,
}

impl BatchEncoder for SqlEncoder {
    type Batch = SqlBatch;

    fn encode(
        &mut self,
        source: &mut ItemSource<'_>,
        item: &Item,
        never_sent: bool,
    ) -> Result<Encoded, TransformFailure> {
        // Validation refuses SQL ETL without a script; reported, never skipped silently.
        let Some(runtime) = source.runtime.as_deref_mut() else {
            return Err(TransformFailure {
                document_id: item.id().to_owned(),
                message: "SQL ETL needs a script that loads rows".to_owned(),
            });
        };
        let mut host = SnapshotHost {
            snapshot: source.snapshot,
        };
        transform_sql_item(
            source.snapshot,
            runtime,
            &mut host,
            item,
            never_sent,
            &mut self.rows,
            &mut Vec::new(),
        )
    }

    fn append(&mut self, later: Self) {
        self.rows.append(later.rows);
    }

    fn finish(self) -> SqlBatch {
        self.rows.finish()
    }
}

/// SQL ETL: a document's rows are replaced by what the script loads (its old rows go even
/// when it loads nothing); a deleted document's rows go. Behaviour functions do not exist
/// here (refused when the task is saved). The rows go into `rows`, all of a document's or
/// none. `never_sent`: see [`BatchBuilder::replace_document`].
pub(crate) fn transform_sql_item(
    snapshot: &Snapshot,
    runtime: &mut ScriptRuntime,
    host: &mut SnapshotHost<'_>,
    item: &Item,
    never_sent: bool,
    rows: &mut BatchBuilder,
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
            let mut attachment = |name: &str| -> Option<Bytes> {
                let (_, content) = snapshot.attachment(&doc.id, name).ok()??;
                Some(Bytes::from(content))
            };
            let n_loaded = output.loads.len();
            rows.replace_document(&doc.id, never_sent, output.loads, &mut attachment)
                .map_err(failure)?;
            Ok(Encoded::Loaded { n_loaded })
        }
        Item::Tombstone(tombstone) => {
            if !matches!(tombstone.kind, TombstoneKind::Document) {
                // The document itself changed too, and comes in its own right.
                return Ok(Encoded::Filtered);
            }
            rows.delete_document(&tombstone.id);
            Ok(Encoded::Loaded { n_loaded: 1 })
        }
    }
}

impl EncodedBatch for SqlBatch {
    fn is_empty(&self) -> bool {
        SqlBatch::is_empty(self)
    }

    fn has_new_documents(&self) -> bool {
        self.tables.iter().any(|it| !it.new_documents.is_empty())
    }
}
