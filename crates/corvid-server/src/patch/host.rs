//! What a patch script reaches outside itself: documents as the transaction sees them so far
//! (the snapshot it was planned on, plus the writes planned before), and the writes it adds.

use std::collections::{HashMap, HashSet};

use corvid_script::ScriptHost;
use corvid_store::{PutDocument, ReadError, Snapshot, WriteOp, key_of};
use serde_json::{Value, json};

/// A document as the transaction sees it at this point.
pub(super) struct Current {
    /// The document JSON, `@metadata` included.
    pub json: String,
    /// The stored change vector when the document comes from the snapshot; `None` when an
    /// earlier write of this transaction produced it (that write fixes its version).
    pub change_vector: Option<String>,
}

/// What a patch script did besides changing `this`: RavenDB's `Debug.Actions`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Actions {
    pub loads: Vec<String>,
    pub puts: Vec<(String, String)>,
    pub deletes: Vec<String>,
}

impl Actions {
    pub fn to_json(&self) -> Value {
        let puts: Vec<Value> = self
            .puts
            .iter()
            .map(|(id, data)| {
                json!({"Id": id, "Data": serde_json::from_str::<Value>(data).unwrap_or(Value::Null)})
            })
            .collect();
        json!({
            "DeleteDocument": self.deletes,
            "PutDocument": puts,
            "LoadDocument": self.loads,
        })
    }
}

/// The transaction being planned: its operations so far and what they leave behind.
pub(super) struct StoreHost<'a> {
    snapshot: &'a Snapshot,
    /// Documents written (`Some(json)`) or deleted (`None`) by earlier operations, by key.
    overlay: HashMap<String, Option<String>>,
    pub ops: Vec<WriteOp>,
    /// Keys of documents written with the change vector read from the snapshot: a concurrency
    /// failure on one of them means another writer came first, and the plan is made again.
    pub guarded: HashSet<String>,
    /// What the current patch's script did.
    pub actions: Actions,
    /// A storage failure while the script read a document: the plan fails with it.
    pub read_failure: Option<ReadError>,
}

impl<'a> StoreHost<'a> {
    pub fn new(snapshot: &'a Snapshot) -> StoreHost<'a> {
        StoreHost {
            snapshot,
            overlay: HashMap::new(),
            ops: Vec::new(),
            guarded: HashSet::new(),
            actions: Actions::default(),
            read_failure: None,
        }
    }

    pub fn current(&self, id: &str) -> Result<Option<Current>, ReadError> {
        if let Some(entry) = self.overlay.get(&key_of(id)) {
            return Ok(entry.as_ref().map(|json| Current {
                json: json.clone(),
                change_vector: None,
            }));
        }
        Ok(self.snapshot.get(id)?.map(|doc| Current {
            json: doc.to_json_string(),
            change_vector: Some(doc.change_vector),
        }))
    }

    /// Whether an operation of this transaction wrote or deleted `id`.
    pub fn in_overlay(&self, id: &str) -> bool {
        self.overlay.contains_key(&key_of(id))
    }

    /// Adds an operation; `written` is what it leaves at `id`: a document's JSON, or `None`
    /// for a delete.
    pub fn push(&mut self, op: WriteOp, effect: Option<(&str, Option<String>)>) {
        if let Some((id, written)) = effect {
            self.overlay.insert(key_of(id), written);
        }
        self.ops.push(op);
    }
}

impl ScriptHost for StoreHost<'_> {
    fn load(&mut self, id: &str) -> Option<String> {
        self.actions.loads.push(id.to_owned());
        match self.current(id) {
            Ok(found) => found.map(|it| it.json),
            Err(error) => {
                self.read_failure.get_or_insert(error);
                None
            }
        }
    }

    fn put(&mut self, id: &str, json: &str) -> Result<String, String> {
        if id.ends_with('/') || id.ends_with('|') {
            return Err(format!(
                "put: `{id}` asks for a generated id; patch scripts must give the full id"
            ));
        }
        let put = PutDocument::from_json(id, json, None).map_err(|error| error.to_string())?;
        self.actions.puts.push((id.to_owned(), json.to_owned()));
        self.push(WriteOp::Put(put), Some((id, Some(json.to_owned()))));
        Ok(id.to_owned())
    }

    fn delete(&mut self, id: &str) -> Result<bool, String> {
        corvid_store::validate_id(id).map_err(|error| error.to_string())?;
        let existed = match self.current(id) {
            Ok(found) => found.is_some(),
            Err(error) => return Err(error.to_string()),
        };
        self.actions.deletes.push(id.to_owned());
        let op = WriteOp::Delete {
            id: id.to_owned(),
            expected_change_vector: None,
        };
        self.push(op, Some((id, None)));
        Ok(existed)
    }
}
