use std::sync::Arc;

/// What a script produced for one document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransformOutput {
    /// One entry per `loadTo…` call, in call order. Empty when the script filtered the document
    /// out (or is empty: the caller then copies the whole document).
    pub loads: Vec<LoadedObject>,
    /// Lines written by `output(…)`.
    pub debug_output: Vec<String>,
}

/// What a patch script made of one document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchOutput {
    /// `JSON.stringify(this)` after the run: the patched document, `@metadata` included as
    /// the script left it.
    pub document: String,
    /// Lines written by `output(…)`.
    pub debug_output: Vec<String>,
}

/// An object the script passed to `loadTo…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedObject {
    /// Collection or table name exactly as the script wrote it.
    pub target: String,
    /// `JSON.stringify` of the object, taken when `loadTo…` was called; always a JSON object.
    /// Empty when the runtime loads values instead ([`LoadedObject::values`]).
    pub json: String,
    /// With [`ScriptOptions::load_as_values`](crate::ScriptOptions::load_as_values): the
    /// object's own enumerable members, read straight from the JavaScript values in property
    /// order, without a round trip through JSON text.
    /// Names are shared: the direct interpreter hands over the script's own name for every
    /// row instead of a copy each.
    pub values: Option<Vec<(Arc<str>, LoadedValue)>>,
    /// Attachments added with `addAttachment`, in call order.
    pub attachments: Vec<AddedAttachment>,
    /// The arguments the script passed after the object (Queue ETL's routing key and
    /// CloudEvents attributes), as a JSON array; `None` when there were none.
    /// In OLAP ETL ([`ScriptOptions::olap`](crate::ScriptOptions::olap)) always the one-element
    /// array `[key]` of the partition key the script passed before the object, normalized:
    /// `[["name","value"],…]` with every name and value a string, outermost partition first
    /// (`[[]]` for `noPartition()`, `[[["_partition","v"]]]` for `partitionBy(v)`).
    pub extra_arguments: Option<String>,
}

/// A member of a loaded object, as [`LoadedObject::values`] holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadedValue {
    /// `null`, and `undefined` (RavenDB writes it as null).
    Null,
    Bool(bool),
    /// A number that is a whole number within ±2^53.
    Int(i64),
    /// Any other finite number, in its shortest round-trip decimal form (no exponent).
    Number(String),
    String(String),
    /// Anything else (an object, an array, a `Date`, `NaN`) as `JSON.stringify` writes it.
    Json(String),
}

/// An attachment the script added to a loaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedAttachment {
    /// The attachment's name at the destination.
    pub name: String,
    /// The name of the source document's attachment.
    pub source_name: String,
}
