//! "Test script": what a transformation would send for one document, without sending it
//! (`POST /admin/etl/raven/test`). Unlike RavenDB 4.1, `IsDelete` really runs the delete path,
//! behaviour functions included, as later RavenDB versions do.

use corvid_client::Command;
use corvid_script::ScriptRuntime;
use corvid_store::{Database, Timestamp, Tombstone, TombstoneKind};

use crate::config::EtlConfiguration;
use crate::extract::Item;
use crate::manager::EtlError;
use crate::validate::{ConfigError, validate_transform};
use crate::worker::{ItemOutcome, SnapshotHost, TransformFailure, copy_item, transform_item};

/// What the transformation produced for the document.
#[derive(Debug, Clone, Default)]
pub struct ScriptTestResult {
    pub commands: Vec<Command>,
    pub transformation_errors: Vec<TransformFailure>,
    pub debug_output: Vec<String>,
}

/// Runs the configuration's only transformation on one document (or on its deletion).
pub fn test_raven_script(
    database: &Database,
    config: &EtlConfiguration,
    document_id: &str,
    is_delete: bool,
    script_options: corvid_script::ScriptOptions,
) -> Result<ScriptTestResult, EtlError> {
    let [transform] = config.transforms.as_slice() else {
        return Err(ConfigError::Unsupported {
            feature: "testing a configuration that does not have exactly one transformation",
        }
        .into());
    };
    let transform = validate_transform(transform)?;
    let snapshot = database
        .snapshot()
        .map_err(|it| EtlError::Storage(it.to_string()))?;
    let Some(document) = snapshot
        .get(document_id)
        .map_err(|it| EtlError::Storage(it.to_string()))?
    else {
        return Err(EtlError::DocumentNotFound {
            id: document_id.to_owned(),
        });
    };
    if let Some(collections) = &transform.collections
        && !collections
            .iter()
            .any(|it| it.eq_ignore_ascii_case(&document.collection))
    {
        return Err(EtlError::DocumentNotInCollections {
            id: document.id,
            collection: document.collection,
        });
    }
    let item = if is_delete {
        Item::Tombstone(Tombstone {
            etag: document.etag,
            kind: TombstoneKind::Document,
            id: document.id.clone(),
            collection: document.collection.clone(),
            change_vector: document.change_vector.clone(),
            deleted_at: Timestamp::now(),
        })
    } else {
        Item::Document(document)
    };
    let mut result = ScriptTestResult::default();
    let outcome = if transform.analysis.is_empty {
        copy_item(&snapshot, &item)
    } else {
        let mut runtime = ScriptRuntime::new(&transform.script, script_options).map_err(|it| {
            EtlError::Config(ConfigError::ScriptInvalid {
                transform: transform.name.clone(),
                message: it.to_string(),
            })
        })?;
        let mut host = SnapshotHost {
            snapshot: &snapshot,
        };
        transform_item(
            &snapshot,
            &transform,
            &mut runtime,
            &mut host,
            &item,
            &mut result.debug_output,
        )
    };
    match outcome {
        Ok(ItemOutcome::Commands(commands, _)) => result.commands = commands,
        Ok(ItemOutcome::Filtered) => {}
        Err(failure) => result.transformation_errors.push(failure),
    }
    Ok(result)
}
