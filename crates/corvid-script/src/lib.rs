//! Sandboxed JavaScript transformation runtime for Corvid's ETL, on QuickJS (rquickjs).
//!
//! A script receives one document and returns zero or more objects to load, within a time and
//! memory budget (RavenDB ETL semantics, `shared/spec/ravendb-etl.md` §2.1–2.6, §3.3, §9).
//!
//! **Architecture Invariant:** this crate does no I/O. QuickJS gets no file, network, process or
//! module access; everything outside the script comes through [`ScriptHost`].
//!
//! ```
//! use corvid_script::{DocumentInput, NoDocuments, ScriptOptions, ScriptRuntime};
//!
//! let mut runtime = ScriptRuntime::new(
//!     "loadToPeople({Name: this.First + ' ' + this.Last});",
//!     ScriptOptions::default(),
//! )?;
//! let input = DocumentInput {
//!     id: "employees/1",
//!     collection: "Employees",
//!     json: r#"{"First":"Ada","Last":"Lovelace","@metadata":{"@id":"employees/1"}}"#,
//!     attachments: &[],
//! };
//! let output = runtime.transform(&input, &mut NoDocuments)?;
//! assert_eq!(output.loads[0].target, "People");
//! assert_eq!(output.loads[0].json, r#"{"Name":"Ada Lovelace"}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The script
//!
//! The script is the body of a function called once per document with `this` = the document
//! parsed from [`DocumentInput::json`], `@metadata` included. The object is fresh for every
//! document, so changing it changes nothing outside. Only the properties the script can reach
//! are parsed, when its parse shows that it reads `this` property by property (see
//! `projection.rs`); no script can observe the difference. `var`s of the body are local to one call;
//! `return` at top level ends the call. Top-level `function` declarations are visible to the
//! body; behaviour functions are called by [`ScriptRuntime::delete_behavior`] from a separate
//! compilation of the top-level function declarations only (as RavenDB compiles them), so they
//! see the other top-level functions but not the top-level variables.
//! The script is compiled once per [`ScriptRuntime`]; globals it creates by assigning to
//! undeclared names live as long as the runtime (until a rebuild after a timeout or out of
//! memory), as in RavenDB, whose engines are also reused.
//!
//! Host functions, defined as read-only globals:
//! - `loadTo<Name>(obj)` and `loadTo('Name', obj)`: records `JSON.stringify(obj)` as a
//!   [`LoadedObject`] for target `Name`, at the time of the call. Returns an object with
//!   `addAttachment([name,] reference)`. Every `loadTo<Name>` identifier the script mentions is
//!   defined; a name computed at run time needs the string form.
//! - `id(doc)`: `doc['@metadata']['@id']`, or null.
//! - `getMetadata(doc)`: `doc['@metadata']`, or null.
//! - `load(id)`: [`ScriptHost::load`], parsed; null for a missing document.
//! - `getAttachments()`: `[{Name, Hash, ContentType, Size}]` of the current document.
//! - `hasAttachment(name)`, and `loadAttachment(name)`: `'$attachment/<name>'` when the current
//!   document has that attachment, else null. `addAttachment(null)` does nothing, so a missing
//!   attachment adds nothing; with one argument the destination name is the source name.
//! - `output(...args)`: one line of [`TransformOutput::debug_output`]; arguments are joined by
//!   a space, objects JSON-stringified, everything else converted with `String(value)`.
//! - `varchar(value, size = 50)` and `nvarchar(value, size = 50)`: `{Type: 'AnsiString' |
//!   'String', Value, Size}` for SQL ETL (spec §3.3).
//!
//! # OLAP ETL
//!
//! With [`ScriptOptions::olap`] set, `loadTo<Name>(key, obj)` and `loadTo('Name', key, obj)`
//! take a partition key before the object, and the globals below are defined (in every other
//! ETL type they do not exist, and using them throws a `ReferenceError`):
//! - `noPartition()`: the table's root folder.
//! - `partitionBy(value)`: one partition named `_partition`.
//! - `partitionBy(['year', y], ['month', m], …)`: nested partitions `year=…/month=…`.
//! - `$customPartitionValue`: [`OlapScriptOptions::custom_partition_value`], read-only; `null`
//!   when the task has none.
//!
//! A partition's value becomes text: a string as it is, a finite number or a boolean as
//! `String(value)` writes it, a `Date` as its UTC `yyyy-MM-dd-HH-mm` (RavenDB's partition
//! format). Anything else (`null`, `undefined`, `NaN`, an object, an array, an invalid date)
//! and a name that is not a non-empty string throw a `TypeError` naming the partition. A key
//! that `partitionBy` or `noPartition` did not make (a string, an object shaped like a key) and
//! arguments after the object throw a `TypeError` too. The key, normalized, is the load's
//! [`LoadedObject::extra_arguments`]: `[[["year","2024"],["month","3"]]]`.
//!
//! # Patch scripts
//!
//! [`ScriptRuntime::new_patch`] compiles a RavenDB patch script; [`ScriptRuntime::patch`] runs
//! it with `this` = the whole document and the global `args` = the request's values, and
//! returns `JSON.stringify(this)` after the run ([`PatchOutput`]). Besides `load`, `id`,
//! `getMetadata` and `output`, a patch script has `put(id, doc)` and `del(id)`, which go to
//! [`ScriptHost::put`] and [`ScriptHost::delete`] (an ETL script has neither). Patch scripts
//! always run in QuickJS, on the whole document, with the same limits as ETL scripts.
//!
//! # Output
//!
//! - Only a JSON object can be loaded. Anything else passed to `loadTo…` (a primitive, an
//!   array, a function, undefined, a `Date`, an object whose `toJSON` returns a non-object) and
//!   an object that `JSON.stringify` rejects (cycles, BigInt) fails the document with
//!   [`TransformError::InvalidOutput`], even if the script catches the `TypeError` thrown at
//!   the call.
//! - Values follow `JSON.stringify`: `NaN` and `±Infinity` become `null`; `Date`s become ISO
//!   8601 strings (`toJSON`) with millisecond precision; function properties are dropped, and
//!   so is `undefined` below the top level. The loaded object's own `undefined` properties are
//!   `null` ([`ScriptOptions::undefined_as_null`], as RavenDB writes them).
//! - Numbers are IEEE doubles: integers beyond 2^53 in the input lose precision.
//! - `@metadata` is passed through as the script left it; the ETL process applies the metadata
//!   rules of spec §2.10.
//!
//! # Null propagation
//!
//! As in RavenDB (Jint), member access on null or undefined yields nothing instead of throwing:
//! every `a.b` and `a[b]` found in the parse is compiled as `a?.b` / `a?.[b]`, except where
//! optional chaining is not allowed (assignment and update targets, `new` callees, template
//! tags, `super`). Calling a missing method still throws; an undeclared identifier still
//! throws. Error positions are mapped back to the script as written.
//!
//! # Errors and limits
//!
//! A script that throws, calls something undefined or recurses past
//! [`ScriptOptions::max_stack_bytes`] fails that document with [`TransformError::Script`]. A
//! script that runs past [`ScriptOptions::time_budget`] (checked by the QuickJS interrupt
//! handler) or allocates past [`ScriptOptions::memory_limit_bytes`] fails with
//! [`TransformError::Timeout`] or [`TransformError::OutOfMemory`], and the runtime is rebuilt
//! from scratch. In every case the next document runs normally.
//!
//! Compiling refuses scripts longer than [`MAX_SCRIPT_BYTES`] and scripts nested too deeply to
//! compile within a 1 MiB stack (hundreds of levels of brackets), so that a pathological script
//! cannot overflow a stack while it is parsed.
//!
//! # Differences from RavenDB
//!
//! - **No null propagation (yet).** RavenDB 4.1 (Jint) yields null for member access on
//!   null/undefined and for unknown identifiers (spec §9); here they throw, as JavaScript does,
//!   and fail the document with [`TransformError::Script`].
//! - An array passed to `loadTo` is rejected rather than turned into `{"0":…,"length":n}`;
//!   `NaN`/`Infinity` become null rather than strings; dates have 3 fractional digits, not 7;
//!   `output(true)` prints `true`, not `True`.
//! - Counters, time series and their behaviour functions (`loadCountersOf…Behavior`,
//!   `addCounter`, …) are not supported yet.

mod analysis;
mod direct;
mod document;
mod engine;
mod error;
mod host_scope;
mod options;
mod output;
mod projection;
mod runtime;
mod source_map;

pub use analysis::{MAX_NESTING_DEPTH, MAX_SCRIPT_BYTES, ScriptAnalysis, analyze};
pub use document::{AttachmentMeta, DocumentInput, NoDocuments, ScriptHost};
pub use error::{ScriptError, TransformError};
pub use options::{OlapScriptOptions, ScriptOptions};
pub use output::{AddedAttachment, LoadedObject, LoadedValue, PatchOutput, TransformOutput};
pub use runtime::ScriptRuntime;
