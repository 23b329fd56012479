use std::time::Duration;

/// Limits for one [`ScriptRuntime`](crate::ScriptRuntime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOptions {
    /// Wall-clock time one [`transform`](crate::ScriptRuntime::transform) or
    /// [`delete_behavior`](crate::ScriptRuntime::delete_behavior) call may take, host calls
    /// included. Default 100 ms.
    pub time_budget: Duration,
    /// Memory the QuickJS runtime may allocate, compiled script and document included.
    /// Default 64 MiB.
    pub memory_limit_bytes: usize,
    /// Native stack the script may use below the calling frame; deep recursion beyond it is a
    /// script error. The calling thread needs this much stack plus some margin. Default 1 MiB.
    pub max_stack_bytes: usize,
    /// Load a loaded object's own `undefined` properties as `null` instead of dropping them
    /// (what `JSON.stringify` does), as RavenDB writes them: `{A: this.Missing}` loads
    /// `{"A": null}`, and in SQL ETL a column the script names is NULL. Default true.
    pub undefined_as_null: bool,
    /// Hand over a loaded object's members as values ([`LoadedObject::values`]) instead of its
    /// JSON text: SQL ETL turns them into column values, and skipping `JSON.stringify` and a
    /// parse back is cheaper. Top-level `undefined` is then always null. Default false.
    ///
    /// [`LoadedObject::values`]: crate::LoadedObject::values
    pub load_as_values: bool,
    /// Run scripts within the direct interpreter's subset (property reads, arithmetic and
    /// string concatenation, loops and conditions, `loadTo…`, `Math.round` and the like) in
    /// Rust instead of QuickJS, with the same output; a document the interpreter cannot run
    /// exactly still goes to QuickJS. Default true; false is for comparing the two.
    pub direct_interpreter: bool,
    /// Run the script as an OLAP ETL transformation: `loadTo<Name>(key, obj)` and
    /// `loadTo('Name', key, obj)` take a partition key before the object, made by the globals
    /// `partitionBy(…)` and `noPartition()`, and `$customPartitionValue` is defined (see the
    /// crate documentation, *OLAP ETL*). `None` (the default) for every other ETL type, whose
    /// scripts see none of these.
    pub olap: Option<OlapScriptOptions>,
}

/// What an OLAP ETL script gets besides the partition functions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OlapScriptOptions {
    /// The task's `CustomPartitionValue` setting, which the script reads as the read-only
    /// global `$customPartitionValue`; `None` (the default) when the task has none, and the
    /// global is then `null`.
    pub custom_partition_value: Option<String>,
}

impl Default for ScriptOptions {
    fn default() -> Self {
        ScriptOptions {
            time_budget: Duration::from_millis(100),
            memory_limit_bytes: 64 * 1024 * 1024,
            max_stack_bytes: 1024 * 1024,
            undefined_as_null: true,
            load_as_values: false,
            direct_interpreter: true,
            olap: None,
        }
    }
}
