/// What a script produced for one document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransformOutput {
    /// One entry per `loadTo…` call, in call order. Empty when the script filtered the document
    /// out (or is empty: the caller then copies the whole document).
    pub loads: Vec<LoadedObject>,
    /// Lines written by `output(…)`.
    pub debug_output: Vec<String>,
}

/// An object the script passed to `loadTo…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedObject {
    /// Collection or table name exactly as the script wrote it.
    pub target: String,
    /// `JSON.stringify` of the object, taken when `loadTo…` was called; always a JSON object.
    pub json: String,
    /// Attachments added with `addAttachment`, in call order.
    pub attachments: Vec<AddedAttachment>,
}

/// An attachment the script added to a loaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedAttachment {
    /// The attachment's name at the destination.
    pub name: String,
    /// The name of the source document's attachment.
    pub source_name: String,
}
