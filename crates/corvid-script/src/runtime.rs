//! The public script runtime: compile once, transform document after document.

use crate::analysis::{GENERIC_DELETE_BEHAVIOR, ScriptAnalysis, parse_script};
use crate::direct::{DirectRunner, LoadForm, Outcome};
use crate::document::{DocumentInput, ScriptHost};
use crate::engine::{CallFailure, Engine, FunctionArgs, ScriptPlan};
use crate::error::{ScriptError, TransformError};
use crate::host_scope;
use crate::options::ScriptOptions;
use crate::output::{PatchOutput, TransformOutput};
use crate::projection::{METADATA, Projection};
use crate::source_map::{ScriptSource, with_position, wrap_body, wrap_functions};
use std::time::Instant;

/// A compiled ETL script, ready to transform documents one after another.
///
/// Not `Send`: create one per worker thread.
pub struct ScriptRuntime {
    analysis: ScriptAnalysis,
    plan: ScriptPlan,
    options: ScriptOptions,
    /// `None` for an empty script, or when rebuilding after a failure failed (the next call
    /// tries again).
    engine: Option<Engine>,
    /// The direct interpreter, when the script is within its subset and the options allow it.
    direct: Option<DirectRunner>,
}

impl std::fmt::Debug for ScriptRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptRuntime")
            .field("analysis", &self.analysis)
            .field("options", &self.options)
            .field("engine_ready", &self.engine.is_some())
            .field("direct", &self.direct.is_some())
            .finish_non_exhaustive()
    }
}

impl ScriptRuntime {
    /// Parses, analyses and compiles `source`.
    ///
    /// # Errors
    ///
    /// As for [`analyze`](crate::analyze); also [`ScriptError::Invalid`] when the script does not
    /// compile within `options` (too little memory or stack), and [`ScriptError::Engine`] when
    /// QuickJS cannot be set up at all.
    pub fn new(source: &str, options: ScriptOptions) -> Result<ScriptRuntime, ScriptError> {
        ScriptRuntime::build(source, options, false)
    }

    /// Parses and compiles a patch script (RavenDB's `PatchRequest.Script`): run it with
    /// [`ScriptRuntime::patch`]. Besides the ETL host functions it has `put(id, doc)` and
    /// `del(id)` ([`ScriptHost::put`], [`ScriptHost::delete`]) and the global `args`; it sees
    /// the whole document, and always runs in QuickJS.
    ///
    /// # Errors
    ///
    /// As for [`ScriptRuntime::new`].
    pub fn new_patch(source: &str, options: ScriptOptions) -> Result<ScriptRuntime, ScriptError> {
        ScriptRuntime::build(source, options, true)
    }

    fn build(
        source: &str,
        options: ScriptOptions,
        patch_mode: bool,
    ) -> Result<ScriptRuntime, ScriptError> {
        let load_form = match options.olap {
            Some(_) if !patch_mode => LoadForm::Olap,
            _ => LoadForm::Etl,
        };
        let mut parsed_script = parse_script(source, load_form)?;
        let analysis = parsed_script.analysis.clone();
        // RavenDB's null propagation: member access on null or undefined yields nothing
        // instead of throwing. Compiled as optional chaining; positions still map to what the
        // user wrote. Should QuickJS refuse the rewrite, the script runs as written.
        let mut script_source = ScriptSource::unchanged(source);
        if !parsed_script.optional_chaining.is_empty() {
            let insertions: Vec<(usize, &str)> = parsed_script
                .optional_chaining
                .iter()
                .map(|(offset, text)| (*offset, text.as_ref()))
                .collect();
            let rewritten = ScriptSource::with_insertions(source, &insertions);
            if let Ok(reparsed) = parse_script(&rewritten.compiled, load_form) {
                parsed_script = reparsed;
                script_source = rewritten;
            }
        }
        let compiled = script_source.compiled.as_str();
        let mut exported_functions: Vec<String> = analysis
            .delete_behaviors
            .iter()
            .map(|collection| format!("deleteDocumentsOf{collection}Behavior"))
            .collect();
        if analysis.has_generic_delete_behavior {
            exported_functions.push(GENERIC_DELETE_BEHAVIOR.to_owned());
        }
        let functions_source = (!exported_functions.is_empty()).then(|| {
            let exported: Vec<&str> = exported_functions.iter().map(String::as_str).collect();
            wrap_functions(compiled, &parsed_script.declarations, &exported)
        });
        let direct = parsed_script
            .direct
            .take()
            .filter(|_| options.direct_interpreter && !analysis.is_empty && !patch_mode)
            .map(|script| {
                DirectRunner::new(script, parsed_script.document_projection.clone(), &options)
            });
        let plan = if patch_mode {
            // A patch writes the whole document back: nothing may be projected away.
            ScriptPlan {
                body_source: wrap_body(compiled),
                functions_source: None,
                exported_functions: Vec::new(),
                load_to_functions: Vec::new(),
                document_projection: Projection::Whole,
                load_results_used: false,
                source: script_source,
                patch_mode,
            }
        } else {
            ScriptPlan {
                body_source: wrap_body(compiled),
                functions_source,
                exported_functions,
                load_to_functions: parsed_script.load_to_functions,
                document_projection: parsed_script.document_projection,
                load_results_used: parsed_script.load_results_used,
                source: script_source,
                patch_mode,
            }
        };
        let engine = if analysis.is_empty {
            None
        } else {
            Some(Engine::new(&plan, &options)?)
        };
        Ok(ScriptRuntime {
            analysis,
            plan,
            options,
            engine,
            direct,
        })
    }

    /// Runs the script on one document, with `this` = the parsed `input.json`.
    ///
    /// An empty script returns no loads without running anything: the caller copies the whole
    /// document (spec §2.2).
    ///
    /// # Errors
    ///
    /// See [`TransformError`]. After any error the runtime is ready for the next document; after
    /// a timeout or running out of memory it has been rebuilt from scratch.
    pub fn transform(
        &mut self,
        input: &DocumentInput<'_>,
        host: &mut dyn ScriptHost,
    ) -> Result<TransformOutput, TransformError> {
        if self.analysis.is_empty {
            return Ok(TransformOutput::default());
        }
        if let Some(direct) = &mut self.direct {
            let deadline = Instant::now().checked_add(self.options.time_budget);
            match direct.run(input.json, deadline) {
                Ok(output) => return Ok(output),
                Err(Outcome::Timeout) => {
                    return Err(TransformError::Timeout {
                        budget: self.options.time_budget,
                    });
                }
                Err(Outcome::Unsupported) => {}
            }
        }
        let source = &self.plan.source;
        let engine = ensure_engine(&mut self.engine, &self.plan, &self.options)?;
        let res = host_scope::enter(host, || engine.run_body(source, input));
        self.finish(res, input.id)
    }

    /// Runs a patch script (see [`ScriptRuntime::new_patch`]) on one document: `this` = the
    /// parsed `document_json`, `args` = the parsed `args_json` (the request's `Values`). The
    /// result is `JSON.stringify(this)` after the run; an empty script returns the document
    /// unchanged.
    ///
    /// # Errors
    ///
    /// As for [`transform`](Self::transform); an error from the host's `put`/`del` is thrown
    /// to the script, and fails the run unless the script catches it.
    pub fn patch(
        &mut self,
        document_json: &str,
        args_json: &str,
        host: &mut dyn ScriptHost,
    ) -> Result<PatchOutput, TransformError> {
        if self.analysis.is_empty {
            return Ok(PatchOutput {
                document: document_json.to_owned(),
                debug_output: Vec::new(),
            });
        }
        let source = &self.plan.source;
        let engine = ensure_engine(&mut self.engine, &self.plan, &self.options)?;
        let res = host_scope::enter(host, || engine.run_patch(source, document_json, args_json));
        let (document, output) = self.finish(res, "")?;
        Ok(PatchOutput {
            document,
            debug_output: output.debug_output,
        })
    }

    /// Whether the script runs in the direct interpreter (see
    /// [`ScriptOptions::direct_interpreter`]), and how many documents it has transformed there
    /// so far; `None` when every document goes to QuickJS.
    pub fn direct_documents(&self) -> Option<u64> {
        self.direct.as_ref().map(|it| it.completed)
    }

    /// Returns what the script printed with `output()` before the last `transform` failed,
    /// so a failing document's debug output is still shown (RavenDB keeps it). Empty after a
    /// timeout or running out of memory, when the runtime was rebuilt.
    pub fn take_debug_output(&mut self) -> Vec<String> {
        self.engine
            .as_mut()
            .map(Engine::take_debug_output)
            .unwrap_or_default()
    }

    /// Asks the script whether a delete of `doc_id` in `collection` should reach the
    /// destination (spec §2.5).
    ///
    /// Calls `deleteDocumentsOf<Coll>Behavior(docId, deleted)` when declared for `collection`
    /// (names compared case-insensitively), else `deleteDocumentsBehavior(docId, collection,
    /// deleted)` when declared, with no meaningful `this`. Returns `Ok(None)` when neither
    /// exists, and `Ok(Some(true))` only when the function returned the boolean `true`.
    /// Top-level variables of the script are not initialised when a behaviour function runs:
    /// like RavenDB, only the top-level function declarations are compiled for it.
    /// Debug output of behaviour functions is discarded.
    ///
    /// # Errors
    ///
    /// As for [`transform`](Self::transform).
    pub fn delete_behavior(
        &mut self,
        collection: &str,
        doc_id: &str,
        deleted: bool,
        host: &mut dyn ScriptHost,
    ) -> Result<Option<bool>, TransformError> {
        let wanted = collection.to_lowercase();
        let specific_idx = self
            .analysis
            .delete_behaviors
            .iter()
            .position(|it| it.to_lowercase() == wanted);
        let (function_idx, args) = match specific_idx {
            Some(function_idx) => (
                function_idx,
                FunctionArgs::DeleteOfCollection { doc_id, deleted },
            ),
            None if self.analysis.has_generic_delete_behavior => (
                self.analysis.delete_behaviors.len(),
                FunctionArgs::Delete {
                    doc_id,
                    collection,
                    deleted,
                },
            ),
            None => return Ok(None),
        };
        let source = &self.plan.source;
        let engine = ensure_engine(&mut self.engine, &self.plan, &self.options)?;
        let res = host_scope::enter(host, || engine.call_function(source, function_idx, args));
        self.finish(res, doc_id).map(Some)
    }

    /// What the script does, from its parse.
    pub fn analysis(&self) -> &ScriptAnalysis {
        &self.analysis
    }

    /// Whether the script can read the document's `@metadata` (`id(this)`, `getMetadata(this)`,
    /// `this['@metadata']`, or `this` used as a whole). When it cannot,
    /// [`DocumentInput::json`] may be the document without `@metadata`: the script sees no
    /// difference, and the caller saves writing the metadata out.
    pub fn reads_metadata(&self) -> bool {
        match &self.plan.document_projection {
            Projection::Whole => true,
            Projection::Fields(fields) => fields.iter().any(|(name, _)| name == METADATA),
        }
    }

    /// Maps an engine failure to the public error and rebuilds the engine when the failure may
    /// have left it in a bad state.
    fn finish<R>(
        &mut self,
        res: Result<R, CallFailure>,
        doc_id: &str,
    ) -> Result<R, TransformError> {
        let failure = match res {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        let error = match failure {
            CallFailure::Script { message, position } => TransformError::Script {
                message: with_position(message, position),
            },
            CallFailure::Timeout => TransformError::Timeout {
                budget: self.options.time_budget,
            },
            CallFailure::OutOfMemory => TransformError::OutOfMemory {
                limit_bytes: self.options.memory_limit_bytes,
            },
            CallFailure::InvalidOutput { message } => TransformError::InvalidOutput { message },
            CallFailure::InvalidInput { message } => TransformError::InvalidInput {
                id: doc_id.to_owned(),
                message,
            },
            CallFailure::Engine { message } => TransformError::Engine { message },
        };
        if matches!(
            error,
            TransformError::Timeout { .. }
                | TransformError::OutOfMemory { .. }
                | TransformError::Engine { .. }
        ) {
            // Drop the old runtime first so that its memory is free for the new one.
            self.engine = None;
            self.engine = Engine::new(&self.plan, &self.options).ok();
        }
        Err(error)
    }
}

fn ensure_engine<'a>(
    engine: &'a mut Option<Engine>,
    plan: &ScriptPlan,
    options: &ScriptOptions,
) -> Result<&'a mut Engine, TransformError> {
    if engine.is_none() {
        let built = Engine::new(plan, options).map_err(|error| TransformError::Engine {
            message: error.to_string(),
        })?;
        *engine = Some(built);
    }
    engine.as_mut().ok_or_else(|| TransformError::Engine {
        message: "the javascript engine is not available".to_owned(),
    })
}
