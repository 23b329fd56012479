/// The document a script transforms.
#[derive(Debug, Clone, Copy)]
pub struct DocumentInput<'a> {
    /// The document id.
    pub id: &'a str,
    /// The document's collection.
    pub collection: &'a str,
    /// The full document JSON, `@metadata` included: the script's `this` (`@metadata` may be
    /// left out when [`ScriptRuntime::reads_metadata`](crate::ScriptRuntime::reads_metadata)
    /// is false). It must be valid
    /// JSON (every stored document is): a script that reads only some properties gets them cut
    /// out of this text without the rest being checked.
    pub json: &'a str,
    /// The document's attachments, as `getAttachments()` reports them.
    pub attachments: &'a [AttachmentMeta],
}

/// One attachment of the current document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentMeta {
    pub name: String,
    pub hash: String,
    pub content_type: String,
    pub size: u64,
}

/// Everything a script can reach outside itself. The runtime does no I/O of its own.
pub trait ScriptHost {
    /// Returns the JSON of document `id` (with `@metadata`), or `None` when it does not exist.
    /// Backs the script's `load(id)`.
    fn load(&mut self, id: &str) -> Option<String>;

    /// Stores `json` (a JSON object, `@metadata` included when the script gave one) as
    /// document `id` and returns the id it was stored under. Backs a patch script's
    /// `put(id, doc)`; `Err` is thrown to the script as an `Error` with that message.
    /// ETL scripts have no `put`: the default refuses.
    fn put(&mut self, id: &str, json: &str) -> Result<String, String> {
        let _ = (id, json);
        Err("put() is only available in patch scripts".to_owned())
    }

    /// Deletes document `id`; returns whether it existed. Backs a patch script's `del(id)`.
    fn delete(&mut self, id: &str) -> Result<bool, String> {
        let _ = id;
        Err("del() is only available in patch scripts".to_owned())
    }
}

/// A host with no documents: `load` always returns `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDocuments;

impl ScriptHost for NoDocuments {
    fn load(&mut self, _id: &str) -> Option<String> {
        None
    }
}
