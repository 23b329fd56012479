//! Planning and committing a transaction of ordinary operations and patches (see the module
//! docs of `crate::patch`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use corvid_script::{ScriptError, ScriptOptions, ScriptRuntime, TransformError};
use corvid_store::{Database, PutDocument, WriteError, WriteOp, WriteResult, key_of};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::http::blocking;
use crate::patch::host::{Actions, StoreHost};
use crate::patch::json_patch;

/// How many times a transaction is planned again after another writer changed a document a
/// patch read, before the conflict is reported.
const MAX_ATTEMPTS: usize = 64;

/// Compiled scripts kept while a transaction is planned (a batch of session patches often
/// repeats a few scripts with other values).
const MAX_CACHED_RUNTIMES: usize = 16;

/// RavenDB's `PatchRequest`: `{Script, Values}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PatchRequest {
    #[serde(rename = "Script")]
    pub script: String,
    #[serde(rename = "Values", default)]
    pub values: Option<Map<String, Value>>,
}

impl PatchRequest {
    fn args_json(&self) -> String {
        match &self.values {
            Some(values) => Value::Object(values.clone()).to_string(),
            None => "{}".to_owned(),
        }
    }
}

/// One patch of one document.
#[derive(Debug, Clone)]
pub(crate) struct PatchCommand {
    pub id: String,
    /// The change vector the client expects the document to have.
    pub expected_change_vector: Option<String>,
    /// Answer `Skipped` instead of a conflict when `expected_change_vector` does not match.
    pub skip_if_change_vector_mismatch: bool,
    pub patch: PatchRequest,
    pub patch_if_missing: Option<PatchRequest>,
    /// A document (JSON object text) created as it is when `id` does not exist.
    pub create_if_missing: Option<String>,
}

/// RavenDB's `PatchStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchStatus {
    DocumentDoesNotExist,
    Created,
    Patched,
    Skipped,
    NotModified,
}

impl PatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchStatus::DocumentDoesNotExist => "DocumentDoesNotExist",
            PatchStatus::Created => "Created",
            PatchStatus::Patched => "Patched",
            PatchStatus::Skipped => "Skipped",
            PatchStatus::NotModified => "NotModified",
        }
    }
}

/// One item of a transaction.
#[derive(Debug, Clone)]
pub(crate) enum TransactionItem {
    /// An ordinary operation, and what it leaves at an id for later patches to read: a
    /// document's JSON, or `None` for a delete.
    Write {
        op: WriteOp,
        effect: Option<(String, Option<String>)>,
    },
    Patch(PatchCommand),
    /// An RFC 6902 JSON Patch of an existing document (the `JsonPatch` command).
    JsonPatch {
        id: String,
        operations: Vec<Value>,
    },
}

/// What became of a patch.
#[derive(Debug, Clone)]
pub(crate) struct PatchOutcome {
    pub id: String,
    pub status: PatchStatus,
    /// The document after the patch (for `Patched` and `Created`, with the metadata it was
    /// stored with), or as it is (`NotModified`).
    pub modified: Option<Value>,
    pub original: Option<Value>,
    pub debug_output: Vec<String>,
    pub actions: Actions,
    pub change_vector: Option<String>,
    pub last_modified: Option<String>,
    pub collection: Option<String>,
    /// The index of the patched document's own write among the transaction's results.
    write_idx: Option<usize>,
}

impl PatchOutcome {
    fn new(id: &str) -> PatchOutcome {
        PatchOutcome {
            id: id.to_owned(),
            status: PatchStatus::DocumentDoesNotExist,
            modified: None,
            original: None,
            debug_output: Vec::new(),
            actions: Actions::default(),
            change_vector: None,
            last_modified: None,
            collection: None,
            write_idx: None,
        }
    }
}

/// What became of each item of a transaction, in order.
#[derive(Debug, Clone)]
pub(crate) enum ItemOutcome {
    Write(WriteResult),
    Patch(Box<PatchOutcome>),
}

enum Slot {
    Write(usize),
    Patch(Box<PatchOutcome>),
}

struct Plan {
    ops: Vec<WriteOp>,
    guarded: std::collections::HashSet<String>,
    slots: Vec<Slot>,
}

/// Plans and commits `items` as one transaction; with `test`, plans only (RavenDB's
/// `test=true`: the patch runs, nothing is written).
pub(crate) async fn apply_transaction(
    database: &Arc<Database>,
    items: Arc<Vec<TransactionItem>>,
    test: bool,
) -> Result<Vec<ItemOutcome>, ApiError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let planning_database = database.clone();
        let planned_items = items.clone();
        let plan = blocking(move || plan_transaction(&planning_database, &planned_items)).await?;
        if test {
            return Ok(finish(plan.slots, &[]));
        }
        match crate::http::write_keeping_error(database, plan.ops).await? {
            Ok(results) => return Ok(finish(plan.slots, &results)),
            Err(WriteError::Concurrency { id, .. })
                if plan.guarded.contains(&key_of(&id)) && attempt < MAX_ATTEMPTS =>
            {
                tracing::debug!(%id, attempt, "patched document changed concurrently; again");
            }
            Err(error) => return Err(error.into()),
        }
    }
}

fn finish(slots: Vec<Slot>, results: &[WriteResult]) -> Vec<ItemOutcome> {
    slots
        .into_iter()
        .filter_map(|slot| match slot {
            Slot::Write(idx) => results.get(idx).cloned().map(ItemOutcome::Write),
            Slot::Patch(mut outcome) => {
                if let Some(WriteResult::Put {
                    change_vector,
                    last_modified,
                    collection,
                    ..
                }) = outcome.write_idx.and_then(|idx| results.get(idx))
                {
                    let last_modified = last_modified.to_iso();
                    if let Some(Value::Object(document)) = &mut outcome.modified {
                        refresh_metadata(
                            document,
                            &outcome.id,
                            change_vector,
                            &last_modified,
                            collection,
                        );
                    }
                    outcome.change_vector = Some(change_vector.clone());
                    outcome.last_modified = Some(last_modified);
                    outcome.collection = Some(collection.clone());
                }
                Some(ItemOutcome::Patch(outcome))
            }
        })
        .collect()
}

/// Gives the patched document the metadata it was stored with.
fn refresh_metadata(
    document: &mut Map<String, Value>,
    id: &str,
    change_vector: &str,
    last_modified: &str,
    collection: &str,
) {
    let metadata = document
        .entry("@metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    if let Value::Object(metadata) = metadata {
        metadata.insert("@collection".to_owned(), collection.into());
        metadata.insert("@id".to_owned(), id.into());
        metadata.insert("@change-vector".to_owned(), change_vector.into());
        metadata.insert("@last-modified".to_owned(), last_modified.into());
    }
}

fn plan_transaction(database: &Database, items: &[TransactionItem]) -> Result<Plan, ApiError> {
    let snapshot = database.snapshot()?;
    let mut host = StoreHost::new(&snapshot);
    let mut runtimes: HashMap<String, ScriptRuntime> = HashMap::new();
    let mut slots = Vec::with_capacity(items.len());
    for item in items {
        match item {
            TransactionItem::Write { op, effect } => {
                slots.push(Slot::Write(host.ops.len()));
                let effect = effect
                    .as_ref()
                    .map(|(id, written)| (id.as_str(), written.clone()));
                host.push(op.clone(), effect);
            }
            TransactionItem::Patch(command) => {
                let outcome = plan_patch(&mut host, &mut runtimes, command)?;
                if let Some(error) = host.read_failure.take() {
                    return Err(error.into());
                }
                slots.push(Slot::Patch(Box::new(outcome)));
            }
            TransactionItem::JsonPatch { id, operations } => {
                let outcome = plan_json_patch(&mut host, id, operations)?;
                slots.push(Slot::Patch(Box::new(outcome)));
            }
        }
    }
    Ok(Plan {
        ops: host.ops,
        guarded: host.guarded,
        slots,
    })
}

fn plan_patch(
    host: &mut StoreHost<'_>,
    runtimes: &mut HashMap<String, ScriptRuntime>,
    command: &PatchCommand,
) -> Result<PatchOutcome, ApiError> {
    host.actions = Actions::default();
    let id = command.id.as_str();
    let current = host.current(id)?;
    let mut outcome = PatchOutcome::new(id);
    let Some(current) = current else {
        // A missing document: created as given, or by the `PatchIfMissing` script.
        let created = match (&command.create_if_missing, &command.patch_if_missing) {
            (Some(document), _) => document.clone(),
            (None, Some(request)) => {
                let output = run_script(host, runtimes, request, id, "{}")?;
                outcome.debug_output = output.debug_output;
                output.document
            }
            (None, None) => return Ok(outcome),
        };
        // Expected absent: a document created meanwhile makes the plan run again.
        let expected = guard(host, id, Some(String::new()));
        let put = PutDocument::from_json(id, &created, expected)?;
        outcome.write_idx = Some(host.ops.len());
        host.push(WriteOp::Put(put), Some((id, Some(created.clone()))));
        outcome.status = PatchStatus::Created;
        outcome.modified = Some(parse_document(id, &created)?);
        outcome.actions = std::mem::take(&mut host.actions);
        return Ok(outcome);
    };
    let original = parse_document(id, &current.json)?;
    if let (Some(expected), Some(actual)) =
        (&command.expected_change_vector, &current.change_vector)
        && expected != actual
    {
        if command.skip_if_change_vector_mismatch {
            outcome.status = PatchStatus::Skipped;
            return Ok(outcome);
        }
        return Err(ApiError::concurrency(format!(
            "Could not patch document '{id}' because non current change vector was used"
        )));
    }
    let output = run_script(host, runtimes, &command.patch, id, &current.json)?;
    outcome.debug_output = output.debug_output;
    outcome.actions = std::mem::take(&mut host.actions);
    let patched = parse_document(id, &output.document)?;
    write_patched(
        host,
        outcome,
        current.change_vector,
        original,
        output.document,
        patched,
    )
}

/// Plans a JSON Patch (RFC 6902) of document `id`; the document must exist.
fn plan_json_patch(
    host: &mut StoreHost<'_>,
    id: &str,
    operations: &[Value],
) -> Result<PatchOutcome, ApiError> {
    let Some(current) = host.current(id)? else {
        return Err(ApiError::not_found(
            "Raven.Client.Exceptions.Documents.DocumentDoesNotExistException",
            format!("Cannot apply a JSON patch to document '{id}': it does not exist"),
        ));
    };
    let original = parse_document(id, &current.json)?;
    let mut patched = original.clone();
    json_patch::apply(&mut patched, operations)
        .map_err(|error| ApiError::bad_request(format!("JSON patch of '{id}' failed: {error}")))?;
    if !patched.is_object() {
        return Err(ApiError::bad_request(format!(
            "JSON patch of '{id}' failed: the document must stay an object"
        )));
    }
    let patched_json = patched.to_string();
    let outcome = PatchOutcome::new(id);
    write_patched(
        host,
        outcome,
        current.change_vector,
        original,
        patched_json,
        patched,
    )
}

/// Finishes a patch of an existing document: `NotModified` when nothing changed, else the
/// write of `patched`, guarded by the version read.
fn write_patched(
    host: &mut StoreHost<'_>,
    mut outcome: PatchOutcome,
    read_change_vector: Option<String>,
    original: Value,
    patched_json: String,
    patched: Value,
) -> Result<PatchOutcome, ApiError> {
    let id = outcome.id.clone();
    if json_equal(&patched, &original) {
        outcome.status = PatchStatus::NotModified;
        outcome.modified = Some(original.clone());
        outcome.original = Some(original);
        return Ok(outcome);
    }
    let expected = guard(host, &id, read_change_vector);
    let put = PutDocument::from_json(&id, &patched_json, expected)?;
    outcome.write_idx = Some(host.ops.len());
    host.push(WriteOp::Put(put), Some((&id, Some(patched_json))));
    outcome.status = PatchStatus::Patched;
    outcome.modified = Some(patched);
    outcome.original = Some(original);
    Ok(outcome)
}

/// The change vector to expect when writing `id`: the version the patch read from the
/// snapshot (`Some("")`: absent), remembered as guarded. `None` when an operation of this
/// transaction already wrote or deleted `id` (the script's own `put`/`del` included): that
/// operation fixes the version.
fn guard(host: &mut StoreHost<'_>, id: &str, read: Option<String>) -> Option<String> {
    if host.in_overlay(id) {
        return None;
    }
    let read = read?;
    host.guarded.insert(key_of(id));
    Some(read)
}

fn run_script(
    host: &mut StoreHost<'_>,
    runtimes: &mut HashMap<String, ScriptRuntime>,
    request: &PatchRequest,
    id: &str,
    document_json: &str,
) -> Result<corvid_script::PatchOutput, ApiError> {
    // Each runtime is a QuickJS heap: keep a few, for the scripts a batch repeats.
    if !runtimes.contains_key(&request.script) && runtimes.len() >= MAX_CACHED_RUNTIMES {
        runtimes.clear();
    }
    let runtime = match runtimes.entry(request.script.clone()) {
        std::collections::hash_map::Entry::Occupied(it) => it.into_mut(),
        std::collections::hash_map::Entry::Vacant(it) => it.insert(compile(&request.script)?),
    };
    runtime
        .patch(document_json, &request.args_json(), host)
        .map_err(|error| script_failed(id, &error))
}

/// Compiles a patch script with the same limits as ETL scripts.
pub(crate) fn compile(script: &str) -> Result<ScriptRuntime, ApiError> {
    ScriptRuntime::new_patch(script, ScriptOptions::default()).map_err(|error| match error {
        ScriptError::Syntax { .. } | ScriptError::Invalid { .. } => ApiError::new(
            StatusCode::BAD_REQUEST,
            "Raven.Client.Exceptions.Documents.Patching.JavaScriptParseException",
            format!("the patch script is invalid: {error}"),
        ),
        ScriptError::Engine { .. } => ApiError::internal(error),
    })
}

fn script_failed(id: &str, error: &TransformError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "Raven.Client.Exceptions.Documents.Patching.JavaScriptException",
        format!("patching document '{id}' failed: {error}"),
    )
}

fn parse_document(id: &str, json: &str) -> Result<Value, ApiError> {
    serde_json::from_str(json).map_err(|error| {
        ApiError::bad_request(format!("document '{id}' is not valid JSON: {error}"))
    })
}

/// JSON equality as a script sees it: numbers by value (`1.0` is `1`).
fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => left.as_f64() == right.as_f64(),
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len() && left.iter().zip(right).all(|(l, r)| json_equal(l, r))
        }
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .all(|(key, value)| right.get(key).is_some_and(|it| json_equal(value, it)))
        }
        _ => left == right,
    }
}
