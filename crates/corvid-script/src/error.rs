use std::time::Duration;

/// Failure to compile a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The script does not parse. `line` and `column` are 1-based; the column counts characters.
    #[error("syntax error at line {line}, column {column}: {message}")]
    Syntax {
        line: u32,
        column: u32,
        message: String,
    },
    /// The script parses but cannot be used as an ETL script.
    #[error("invalid script: {message}")]
    Invalid { message: String },
    /// The JavaScript engine failed outside of the script's control.
    #[error("javascript engine failed: {message}")]
    Engine { message: String },
}

/// Failure to run a script on one document.
///
/// After any of these the runtime is still usable for the next document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The script threw, called something undefined or overflowed its stack. `message` holds the
    /// JavaScript error and, when known, its line and column in the script.
    #[error("script failed: {message}")]
    Script { message: String },
    /// The script ran past its time budget.
    #[error("script exceeded its time budget of {budget:?}")]
    Timeout { budget: Duration },
    /// The script ran out of memory.
    #[error("script exceeded its memory limit of {limit_bytes} bytes")]
    OutOfMemory { limit_bytes: usize },
    /// The script passed something to `loadTo…` that is not a JSON object.
    #[error("script produced invalid output: {message}")]
    InvalidOutput { message: String },
    /// The input document is not a JSON object.
    #[error("input document `{id}` is not a JSON object: {message}")]
    InvalidInput { id: String, message: String },
    /// The JavaScript engine failed outside of the script's control (the runtime could not be
    /// rebuilt after a timeout, for example).
    #[error("javascript engine failed: {message}")]
    Engine { message: String },
}
