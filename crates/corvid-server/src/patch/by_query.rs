//! Patch by query (`from Users where … update { … }`) and delete by query, as operations of
//! the registry: the documents the query selects are read from one snapshot, then changed in
//! chunks of [`CHUNK_DOCUMENTS`], one transaction each; every document is patched against the
//! version a fresh plan reads (see [`crate::patch::apply_transaction`]), so a concurrent write is not
//! lost. A document deleted meanwhile is left out. The result is RavenDB's
//! `BulkOperationResult`.

use std::sync::Arc;

use corvid_store::{Database, WriteOp, WriteResult};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::{blocking, write};
use crate::operations::Operations;
use crate::patch::{PatchCommand, PatchRequest, TransactionItem};
use crate::query::{self, Query};

/// Documents changed per transaction.
pub(crate) const CHUNK_DOCUMENTS: usize = 1000;

/// The update script of a patch by query, with each query parameter `$name` bound to
/// `args.name` (RavenDB lets update scripts use the query's parameters by name).
pub(crate) fn update_script(query: &Query, parameters: &Map<String, Value>) -> Option<String> {
    let script = query.update_script()?;
    let mut bound = String::new();
    for name in parameters.keys() {
        if !name.is_empty()
            && name
                .chars()
                .all(|it| it.is_ascii_alphanumeric() || it == '_')
        {
            bound.push_str(&format!("var ${name} = args[{}]; ", json!(name)));
        }
    }
    bound.push_str(script);
    Some(bound)
}

/// Runs a patch by query; returns the `BulkOperationResult`.
pub(crate) async fn patch_by_query(
    operations: Arc<Operations>,
    operation_id: u64,
    database: Arc<Database>,
    query: Query,
    script: String,
    parameters: Map<String, Value>,
) -> Result<Value, ApiError> {
    let ids = selected_ids(&database, query).await?;
    let request = PatchRequest {
        script,
        values: Some(parameters),
    };
    let mut processed = 0;
    for chunk in ids.chunks(CHUNK_DOCUMENTS) {
        let items: Vec<TransactionItem> = chunk
            .iter()
            .map(|id| {
                TransactionItem::Patch(PatchCommand {
                    id: id.clone(),
                    expected_change_vector: None,
                    skip_if_change_vector_mismatch: false,
                    patch: request.clone(),
                    patch_if_missing: None,
                    create_if_missing: None,
                })
            })
            .collect();
        crate::patch::apply_transaction(&database, Arc::new(items), false).await?;
        processed += chunk.len();
        operations.progress(operation_id, progress(processed, ids.len()));
    }
    Ok(bulk_result(processed))
}

/// Runs a delete by query; returns the `BulkOperationResult`.
pub(crate) async fn delete_by_query(
    operations: Arc<Operations>,
    operation_id: u64,
    database: Arc<Database>,
    query: Query,
) -> Result<Value, ApiError> {
    let ids = selected_ids(&database, query).await?;
    let mut deleted = 0;
    let mut processed = 0;
    for chunk in ids.chunks(CHUNK_DOCUMENTS) {
        let ops = chunk
            .iter()
            .map(|id| WriteOp::Delete {
                id: id.clone(),
                expected_change_vector: None,
            })
            .collect();
        for result in write(&database, ops).await? {
            if matches!(result, WriteResult::Delete { deleted: true, .. }) {
                deleted += 1;
            }
        }
        processed += chunk.len();
        operations.progress(operation_id, progress(processed, ids.len()));
    }
    Ok(bulk_result(deleted))
}

async fn selected_ids(database: &Arc<Database>, query: Query) -> Result<Vec<String>, ApiError> {
    let database = database.clone();
    blocking(move || {
        let snapshot = database.snapshot()?;
        let documents = query::matching_documents(&snapshot, &query)?;
        Ok(documents.into_iter().map(|it| it.id).collect())
    })
    .await
}

fn progress(processed: usize, total: usize) -> Value {
    json!({
        "$type": "Raven.Client.Documents.Operations.DeterminateProgress, Raven.Client",
        "Processed": processed,
        "Total": total,
    })
}

fn bulk_result(total: usize) -> Value {
    json!({
        "$type": "Raven.Client.Documents.Operations.BulkOperationResult, Raven.Client",
        "Total": total,
        "DocumentsProcessed": total,
        "AttachmentsProcessed": 0,
        "CountersProcessed": 0,
        "TimeSeriesProcessed": 0,
        "Message": format!("Processed {total} items."),
        "Details": [],
        "Query": null,
    })
}
