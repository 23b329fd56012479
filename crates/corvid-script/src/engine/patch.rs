//! The patch-mode parts of the engine: running a patch script and its `put` / `del` host
//! functions.

use rquickjs::function::This;
use rquickjs::{Ctx, Exception, Function, Object, Value};

use super::{CallFailure, Engine, classify, engine_failure, js_type_name};
use crate::host_scope;
use crate::output::TransformOutput;
use crate::source_map::ScriptSource;

impl Engine {
    /// Runs a patch script with `this` = the parsed `document_json` and the global `args` =
    /// the parsed `args_json`; returns `JSON.stringify(this)` after the run, and the debug
    /// output.
    pub(crate) fn run_patch(
        &mut self,
        source: &ScriptSource,
        document_json: &str,
        args_json: &str,
    ) -> Result<(String, TransformOutput), CallFailure> {
        self.begin_call(&[]);
        let body = self.body.clone();
        let res = self.context.with(|ctx| {
            let as_input = |error| match classify(&ctx, source, error) {
                CallFailure::Script { message, .. } => CallFailure::InvalidInput { message },
                other => other,
            };
            let doc: Value = ctx.json_parse(document_json).map_err(as_input)?;
            if !doc.is_object() || doc.is_array() {
                return Err(CallFailure::InvalidInput {
                    message: format!("the document is a JSON {}", js_type_name(&doc)),
                });
            }
            let args: Value = ctx.json_parse(args_json).map_err(as_input)?;
            ctx.globals().set("args", args).map_err(engine_failure)?;
            let body = body.restore(&ctx).map_err(engine_failure)?;
            body.call::<_, Value>((This(doc.clone()),))
                .map_err(|error| classify(&ctx, source, error))?;
            match ctx.json_stringify(doc) {
                Ok(Some(json)) => json.to_string().map_err(engine_failure),
                Ok(None) => Err(CallFailure::InvalidOutput {
                    message: "the patched document cannot be serialized to JSON".to_owned(),
                }),
                Err(error) => Err(match classify(&ctx, source, error) {
                    CallFailure::Script { message, .. } => CallFailure::InvalidOutput {
                        message: format!(
                            "the patched document cannot be serialized to JSON: {message}"
                        ),
                    },
                    other => other,
                }),
            }
        });
        self.end_call(res)
    }
}

/// Adds the natives behind a patch script's `put(id, json)` and `del(id)`, which call the
/// host of the current call; the prelude defines the globals only in patch mode.
pub(super) fn define_patch_natives<'js>(
    ctx: &Ctx<'js>,
    native: &Object<'js>,
) -> rquickjs::Result<()> {
    native.set(
        "put",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, id: String, json: String| {
            match host_scope::with_host(|host| host.put(&id, &json)) {
                Some(Ok(stored_id)) => Ok(stored_id),
                Some(Err(message)) => Err(Exception::throw_message(&ctx, &message)),
                None => Err(Exception::throw_message(&ctx, "put: no document store")),
            }
        })?,
    )?;

    native.set(
        "del",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, id: String| match host_scope::with_host(|host| host.delete(&id)) {
                Some(Ok(existed)) => Ok(existed),
                Some(Err(message)) => Err(Exception::throw_message(&ctx, &message)),
                None => Err(Exception::throw_message(&ctx, "del: no document store")),
            },
        )?,
    )?;
    Ok(())
}
