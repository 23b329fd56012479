//! One QuickJS runtime and context holding a compiled script, its host functions and its limits.
//!
//! [`ScriptRuntime`](crate::ScriptRuntime) owns an [`Engine`] and throws it away after a timeout
//! or an out-of-memory failure; everything an engine needs to be rebuilt is in [`ScriptPlan`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::function::This;
use rquickjs::{Array, Context, Ctx, Exception, Function, Object, Persistent, Runtime, Value};

use crate::document::{AttachmentMeta, DocumentInput};
use crate::error::ScriptError;
use crate::host_scope;
use crate::options::{OlapScriptOptions, ScriptOptions};
use crate::output::{AddedAttachment, LoadedObject, LoadedValue, TransformOutput};
use crate::projection::{Projection, project_object};
use crate::source_map::{
    SCRIPT_FILE_NAME, ScriptSource, first_script_position, with_position, wrap_body,
};

mod patch;

/// What an engine is built from; kept so that a fresh engine can be built after a failure.
#[derive(Debug, Clone)]
pub(crate) struct ScriptPlan {
    /// The script as compiled and as the user wrote it, for mapping error positions.
    pub source: ScriptSource,
    /// The script body wrapped in a function expression.
    pub body_source: String,
    /// A function expression declaring only the top-level functions and returning those named
    /// in `exported_functions`; `None` when there are none to export.
    pub functions_source: Option<String>,
    /// Names of the top-level functions the runtime calls directly (behaviour functions).
    pub exported_functions: Vec<String>,
    /// `loadTo<Name>` globals to define.
    pub load_to_functions: Vec<String>,
    /// What of each document the script can reach (see [`crate::projection`]).
    pub document_projection: Projection,
    /// The script may look at what a `loadTo…` call returns.
    pub load_results_used: bool,
    /// A patch script: `put` and `del` are defined, and [`Engine::run_patch`] runs it.
    pub patch_mode: bool,
}

/// Why a call failed, before it is turned into a public error.
#[derive(Debug)]
pub(crate) enum CallFailure {
    /// The script threw (or overflowed its stack). `message` is `Name: message` for errors;
    /// `position` is the 1-based line and character column in the script, when known.
    Script {
        message: String,
        position: Option<(u32, u32)>,
    },
    Timeout,
    OutOfMemory,
    InvalidOutput {
        message: String,
    },
    InvalidInput {
        message: String,
    },
    /// rquickjs failed for a reason that is not a JavaScript exception.
    Engine {
        message: String,
    },
}

pub(crate) struct Engine {
    // Field order is drop order: JS values must go before the context and the runtime.
    body: Persistent<Function<'static>>,
    exported_functions: Vec<Persistent<Function<'static>>>,
    context: Context,
    _runtime: Runtime,
    state: Rc<RefCell<CallState>>,
    clock: Rc<Clock>,
    time_budget: Duration,
    document_projection: Projection,
    /// The document cut down to `document_projection`; reused from call to call.
    projected_json: String,
}

/// Per-call data shared with the native host functions.
#[derive(Debug, Default)]
struct CallState {
    /// [`ScriptOptions::load_as_values`], fixed for the engine's life.
    load_as_values: bool,
    attachments: Vec<AttachmentMeta>,
    loads: Vec<LoadedObject>,
    debug_output: Vec<String>,
    invalid_output: Option<String>,
}

/// The deadline the interrupt handler checks.
#[derive(Debug, Default)]
struct Clock {
    deadline: Cell<Option<Instant>>,
    expired: Cell<bool>,
}

const PRELUDE_SOURCE: &str = include_str!("prelude.js");
const PRELUDE_FILE_NAME: &str = "corvid-prelude";
const ATTACHMENT_REFERENCE_PREFIX: &str = "$attachment/";
const OUT_OF_MEMORY_MESSAGE: &str = "out of memory";
const STACK_OVERFLOW_MESSAGE: &str = "Maximum call stack size exceeded";
/// Limits of the syntax check in [`check_syntax`]: generous for any real script, and small
/// enough that the nesting it accepts parses in a few MiB of oxc stack.
const SYNTAX_CHECK_STACK_BYTES: usize = 1024 * 1024;
const SYNTAX_CHECK_MEMORY_BYTES: usize = 256 * 1024 * 1024;

impl Engine {
    /// Builds a runtime with the limits of `options` and compiles `plan` in it.
    pub(crate) fn new(plan: &ScriptPlan, options: &ScriptOptions) -> Result<Engine, ScriptError> {
        let runtime =
            Runtime::new_with_alloc(rquickjs::allocator::RustAllocator).map_err(engine_error)?;
        runtime.set_memory_limit(options.memory_limit_bytes);
        runtime.set_max_stack_size(options.max_stack_bytes);
        let clock = Rc::new(Clock::default());
        let interrupt_clock = Rc::clone(&clock);
        runtime.set_interrupt_handler(Some(Box::new(move || interrupt_clock.is_past_deadline())));
        let context = Context::full(&runtime).map_err(engine_error)?;
        let state = Rc::new(RefCell::new(CallState {
            load_as_values: options.load_as_values,
            ..CallState::default()
        }));

        // With values loaded, undefined members become null on the Rust side; no copy in JS.
        let undefined_as_null = options.undefined_as_null && !options.load_as_values;
        let compiled = context.with(|ctx| {
            let olap = options.olap.as_ref().filter(|_| !plan.patch_mode);
            compile(&ctx, plan, &state, undefined_as_null, olap)
        });
        let (body, exported_functions) = match compiled {
            Ok(it) => it,
            Err(failure) => return Err(compile_error(failure, options)),
        };
        Ok(Engine {
            body,
            exported_functions,
            context,
            _runtime: runtime,
            state,
            clock,
            time_budget: options.time_budget,
            document_projection: plan.document_projection.clone(),
            projected_json: String::new(),
        })
    }

    /// Runs the script body with `this` = the document.
    /// Returns the debug output a failed call left behind (a successful call returns its own).
    pub(crate) fn take_debug_output(&mut self) -> Vec<String> {
        std::mem::take(&mut self.state.borrow_mut().debug_output)
    }

    pub(crate) fn run_body(
        &mut self,
        source: &ScriptSource,
        input: &DocumentInput<'_>,
    ) -> Result<TransformOutput, CallFailure> {
        self.begin_call(input.attachments);
        let body = self.body.clone();
        let json = match &self.document_projection {
            Projection::Fields(fields)
                if project_object(input.json, fields, &mut self.projected_json).is_some() =>
            {
                self.projected_json.as_str()
            }
            // Not an object, or broken: the full parse below reports it.
            _ => input.json,
        };
        let res = self.context.with(|ctx| {
            let doc = match ctx.json_parse(json) {
                Ok(it) => it,
                Err(error) => {
                    return Err(match classify(&ctx, source, error) {
                        CallFailure::Script { message, .. } => {
                            CallFailure::InvalidInput { message }
                        }
                        other => other,
                    });
                }
            };
            if !doc.is_object() || doc.is_array() {
                return Err(CallFailure::InvalidInput {
                    message: format!("the document is a JSON {}", js_type_name(&doc)),
                });
            }
            let body = body.restore(&ctx).map_err(engine_failure)?;
            body.call::<_, Value>((This(doc),))
                .map(drop)
                .map_err(|error| classify(&ctx, source, error))
        });
        self.end_call(res).map(|((), output)| output)
    }

    /// Calls exported top-level function number `function_idx` with `this` undefined and
    /// returns whether it returned the boolean `true`.
    pub(crate) fn call_function(
        &mut self,
        source: &ScriptSource,
        function_idx: usize,
        args: FunctionArgs<'_>,
    ) -> Result<bool, CallFailure> {
        self.begin_call(&[]);
        let Some(function) = self.exported_functions.get(function_idx).cloned() else {
            return Err(CallFailure::Engine {
                message: format!("no exported function number {function_idx}"),
            });
        };
        let res = self.context.with(|ctx| {
            let function = function.restore(&ctx).map_err(engine_failure)?;
            let returned = match args {
                FunctionArgs::DeleteOfCollection { doc_id, deleted } => {
                    function.call::<_, Value>((doc_id, deleted))
                }
                FunctionArgs::Delete {
                    doc_id,
                    collection,
                    deleted,
                } => function.call::<_, Value>((doc_id, collection, deleted)),
            };
            returned
                .map(|it| it.as_bool() == Some(true))
                .map_err(|error| classify(&ctx, source, error))
        });
        // Debug output of behaviour functions has nowhere to go: the API returns only the answer.
        self.end_call(res).map(|(propagate, _output)| propagate)
    }

    fn begin_call(&self, attachments: &[AttachmentMeta]) {
        let mut state = self.state.borrow_mut();
        state.attachments.clear();
        state.attachments.extend_from_slice(attachments);
        state.loads.clear();
        state.debug_output.clear();
        state.invalid_output = None;
        drop(state);
        self.clock
            .deadline
            .set(Instant::now().checked_add(self.time_budget));
        self.clock.expired.set(false);
    }

    /// Turns a call's result into the final one: the timeout flag and a rejected `loadTo`
    /// argument take precedence over what the script made of them.
    fn end_call<R>(
        &mut self,
        res: Result<R, CallFailure>,
    ) -> Result<(R, TransformOutput), CallFailure> {
        self.clock.deadline.set(None);
        let mut state = self.state.borrow_mut();
        if self.clock.expired.get() {
            return Err(CallFailure::Timeout);
        }
        let value = match res {
            Ok(value) => value,
            Err(CallFailure::Script { message, position }) => {
                return Err(match state.invalid_output.take() {
                    Some(invalid) => CallFailure::InvalidOutput { message: invalid },
                    None => CallFailure::Script { message, position },
                });
            }
            Err(other) => return Err(other),
        };
        if let Some(message) = state.invalid_output.take() {
            // The script caught the error loadTo threw; the output is still invalid.
            return Err(CallFailure::InvalidOutput { message });
        }
        let output = TransformOutput {
            loads: std::mem::take(&mut state.loads),
            debug_output: std::mem::take(&mut state.debug_output),
        };
        Ok((value, output))
    }
}

/// Arguments of a behaviour function call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FunctionArgs<'a> {
    /// `deleteDocumentsOf<Coll>Behavior(docId, deleted)`.
    DeleteOfCollection { doc_id: &'a str, deleted: bool },
    /// `deleteDocumentsBehavior(docId, collection, deleted)`.
    Delete {
        doc_id: &'a str,
        collection: &'a str,
        deleted: bool,
    },
}

impl Clock {
    fn is_past_deadline(&self) -> bool {
        let Some(deadline) = self.deadline.get() else {
            return false;
        };
        if Instant::now() < deadline {
            return false;
        }
        self.expired.set(true);
        true
    }
}

/// Compiles `source` as a script body in a throw-away QuickJS runtime, without running it.
///
/// QuickJS checks its stack while parsing, so this also bounds how deeply the source can nest
/// before the (unbounded) oxc parser sees it.
pub(crate) fn check_syntax(source: &str) -> Result<(), ScriptError> {
    let options = ScriptOptions {
        memory_limit_bytes: SYNTAX_CHECK_MEMORY_BYTES,
        max_stack_bytes: SYNTAX_CHECK_STACK_BYTES,
        ..ScriptOptions::default()
    };
    let runtime =
        Runtime::new_with_alloc(rquickjs::allocator::RustAllocator).map_err(engine_error)?;
    runtime.set_memory_limit(options.memory_limit_bytes);
    runtime.set_max_stack_size(options.max_stack_bytes);
    let context = Context::full(&runtime).map_err(engine_error)?;
    let wrapped = wrap_body(source);
    context.with(|ctx| {
        ctx.eval_with_options::<Function, _>(wrapped, eval_options(SCRIPT_FILE_NAME, false))
            .map(drop)
            .map_err(|error| {
                compile_error(
                    classify(&ctx, &ScriptSource::unchanged(source), error),
                    &options,
                )
            })
    })
}

/// Turns a failure to compile the script into the public error.
fn compile_error(failure: CallFailure, options: &ScriptOptions) -> ScriptError {
    match failure {
        CallFailure::Script { message, position } => {
            if let (Some(syntax_message), Some((line, column))) =
                (message.strip_prefix("SyntaxError: "), position)
            {
                return ScriptError::Syntax {
                    line,
                    column,
                    message: syntax_message.to_owned(),
                };
            }
            if message.contains(STACK_OVERFLOW_MESSAGE) {
                return ScriptError::Invalid {
                    message: format!(
                        "the script nests too deeply to compile within a stack of {} bytes",
                        options.max_stack_bytes
                    ),
                };
            }
            ScriptError::Engine {
                message: with_position(message, position),
            }
        }
        CallFailure::OutOfMemory => ScriptError::Invalid {
            message: format!(
                "the script does not fit in the memory limit of {} bytes",
                options.memory_limit_bytes
            ),
        },
        CallFailure::Timeout => ScriptError::Engine {
            message: "compiling the script was interrupted".to_owned(),
        },
        CallFailure::Engine { message }
        | CallFailure::InvalidInput { message }
        | CallFailure::InvalidOutput { message } => ScriptError::Engine { message },
    }
}

fn engine_error(error: rquickjs::Error) -> ScriptError {
    ScriptError::Engine {
        message: error.to_string(),
    }
}

type Compiled = (
    Persistent<Function<'static>>,
    Vec<Persistent<Function<'static>>>,
);

fn compile<'js>(
    ctx: &Ctx<'js>,
    plan: &ScriptPlan,
    state: &Rc<RefCell<CallState>>,
    undefined_as_null: bool,
    olap: Option<&OlapScriptOptions>,
) -> Result<Compiled, CallFailure> {
    let fail = |error| classify(ctx, &plan.source, error);
    let native = native_functions(ctx, state).map_err(fail)?;
    let prelude: Function = ctx
        .eval_with_options(PRELUDE_SOURCE, eval_options(PRELUDE_FILE_NAME, true))
        .map_err(fail)?;
    let define_load_to: Function = prelude
        .call((
            native,
            undefined_as_null,
            !plan.load_results_used,
            plan.patch_mode,
            olap.is_some(),
            olap.and_then(|it| it.custom_partition_value.clone()),
        ))
        .map_err(fail)?;
    for name in &plan.load_to_functions {
        define_load_to
            .call::<_, ()>((name.as_str(),))
            .map_err(fail)?;
    }

    let body: Function = ctx
        .eval_with_options(
            plan.body_source.as_str(),
            eval_options(SCRIPT_FILE_NAME, false),
        )
        .map_err(fail)?;
    let mut exported_functions = Vec::with_capacity(plan.exported_functions.len());
    if let Some(functions_source) = &plan.functions_source {
        let declare: Function = ctx
            .eval_with_options(
                functions_source.as_str(),
                eval_options(SCRIPT_FILE_NAME, false),
            )
            .map_err(fail)?;
        let functions: Array = declare.call(()).map_err(fail)?;
        for function in functions.iter::<Function>() {
            exported_functions.push(Persistent::save(ctx, function.map_err(fail)?));
        }
    }
    Ok((Persistent::save(ctx, body), exported_functions))
}

fn eval_options(file_name: &str, strict: bool) -> EvalOptions {
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = strict;
    options.filename = Some(file_name.to_owned());
    options
}

/// Builds the object of native functions the prelude wraps.
fn native_functions<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<CallState>>,
) -> rquickjs::Result<Object<'js>> {
    let native = Object::new(ctx.clone())?;

    let load_to_state = Rc::clone(state);
    native.set(
        "loadTo",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  target: String,
                  obj: Value<'js>,
                  extra: rquickjs::function::Opt<Value<'js>>| {
                let extra = match extra.0.as_ref().and_then(Value::as_string) {
                    Some(text) => Some(text.to_string()?),
                    None => None,
                };
                native_load_to(&ctx, &load_to_state, target, obj, extra)
            },
        )?,
    )?;

    let add_attachment_state = Rc::clone(state);
    native.set(
        "addAttachment",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, load_idx: u32, name: Value<'js>, reference: Value<'js>| {
                native_add_attachment(&ctx, &add_attachment_state, load_idx, name, reference)
            },
        )?,
    )?;

    native.set(
        "load",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, id: String| {
            native_load(&ctx, &id)
        })?,
    )?;

    patch::define_patch_natives(ctx, &native)?;

    let has_attachment_state = Rc::clone(state);
    native.set(
        "hasAttachment",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, name: String| {
            let state = borrow(&ctx, &has_attachment_state)?;
            Ok::<_, rquickjs::Error>(state.attachments.iter().any(|it| it.name == name))
        })?,
    )?;

    let get_attachments_state = Rc::clone(state);
    native.set(
        "getAttachments",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
            native_get_attachments(&ctx, &get_attachments_state)
        })?,
    )?;

    let output_state = Rc::clone(state);
    native.set(
        "output",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, line: String| {
            borrow_mut(&ctx, &output_state)?.debug_output.push(line);
            Ok::<_, rquickjs::Error>(())
        })?,
    )?;

    Ok(native)
}

fn native_load_to<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<CallState>>,
    target: String,
    obj: Value<'js>,
    extra_arguments: Option<String>,
) -> rquickjs::Result<u32> {
    let type_name = js_type_name(&obj);
    let load_as_values = borrow_mut(ctx, state)?.load_as_values;
    if load_as_values
        && let Some(object) = obj.as_object()
        && !obj.is_array()
        && !obj.is_function()
        && !object
            .get::<_, Value>("toJSON")
            .is_ok_and(|it| it.is_function())
    {
        let values = loaded_values(ctx, object)
            .map_err(|error| serialization_failure(ctx, state, &target, error))?;
        return push_load(
            ctx,
            state,
            LoadedObject {
                target,
                json: String::new(),
                values: Some(values),
                attachments: Vec::new(),
                extra_arguments,
            },
        );
    }
    // JSON.stringify runs user code (toJSON, getters), so no borrow of the state is held here.
    let json = match ctx.json_stringify(obj) {
        Ok(Some(json)) => json.to_string()?,
        Ok(None) => {
            return Err(invalid_output(
                ctx,
                state,
                format!("loadTo{target}: expected an object, got {type_name}"),
            ));
        }
        Err(error) => return Err(serialization_failure(ctx, state, &target, error)),
    };
    if !json.starts_with('{') {
        return Err(invalid_output(
            ctx,
            state,
            format!("loadTo{target}: expected an object, got {type_name} serialized as {json}"),
        ));
    }
    push_load(
        ctx,
        state,
        LoadedObject {
            target,
            json,
            values: None,
            attachments: Vec::new(),
            extra_arguments,
        },
    )
}

/// Records a loaded object; returns its index, for `addAttachment`.
fn push_load(
    ctx: &Ctx<'_>,
    state: &Rc<RefCell<CallState>>,
    load: LoadedObject,
) -> rquickjs::Result<u32> {
    let mut state = borrow_mut(ctx, state)?;
    state.loads.push(load);
    Ok(u32::try_from(state.loads.len() - 1).unwrap_or(u32::MAX))
}

/// A failure while reading a loaded object: a `TypeError` (a cycle, a BigInt) is invalid
/// output; any other exception is rethrown to the script as it was.
fn serialization_failure(
    ctx: &Ctx<'_>,
    state: &Rc<RefCell<CallState>>,
    target: &str,
    error: rquickjs::Error,
) -> rquickjs::Error {
    if !matches!(error, rquickjs::Error::Exception) {
        return error;
    }
    let thrown = ctx.catch();
    if is_type_error(&thrown) {
        let reason = error_message(&thrown).unwrap_or_default();
        return invalid_output(
            ctx,
            state,
            format!("loadTo{target}: the object cannot be serialized to JSON: {reason}"),
        );
    }
    ctx.throw(thrown)
}

/// The own enumerable members of a loaded object as values. Functions and symbols are left
/// out (as `JSON.stringify` leaves them out); nested objects and arrays become JSON text.
fn loaded_values<'js>(
    ctx: &Ctx<'js>,
    object: &rquickjs::Object<'js>,
) -> rquickjs::Result<Vec<(Arc<str>, LoadedValue)>> {
    let mut values = Vec::new();
    for entry in object.props::<String, Value>() {
        let (name, value) = entry?;
        let loaded = if value.is_undefined() || value.is_null() {
            LoadedValue::Null
        } else if let Some(it) = value.as_bool() {
            LoadedValue::Bool(it)
        } else if let Some(it) = value.as_int() {
            LoadedValue::Int(i64::from(it))
        } else if let Some(it) = value.as_float() {
            loaded_number(it)
        } else if let Some(it) = value.as_string() {
            LoadedValue::String(it.to_string()?)
        } else if value.is_function() || value.is_symbol() {
            continue;
        } else {
            match ctx.json_stringify(value)? {
                Some(json) => LoadedValue::Json(json.to_string()?),
                None => continue,
            }
        };
        values.push((Arc::from(name), loaded));
    }
    Ok(values)
}

/// A JavaScript number as `JSON.stringify` would mean it: whole numbers within ±2^53 as
/// integers, `NaN` and infinities as null.
pub(crate) fn loaded_number(value: f64) -> LoadedValue {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if !value.is_finite() {
        return LoadedValue::Null;
    }
    if value.fract() == 0.0 && value.abs() <= EXACT {
        // Exact: a whole number within ±2^53.
        #[allow(clippy::cast_possible_truncation)]
        return LoadedValue::Int(value as i64);
    }
    let mut buffer = zmij::Buffer::new();
    LoadedValue::Number(match plain_shortest(&mut buffer, value) {
        Some(text) => text.to_owned(),
        None => value.to_string(),
    })
}

/// The shortest round-trip decimal form of a finite `value` with a fraction, when it needs
/// no exponent (what `Display` and JavaScript's `toString` both write then); `None` for whole
/// numbers (zmij writes `1.0`) and the exponent forms.
pub(crate) fn plain_shortest(buffer: &mut zmij::Buffer, value: f64) -> Option<&str> {
    let text = buffer.format_finite(value);
    (!text.contains('e') && !text.ends_with(".0")).then_some(text)
}

fn native_add_attachment<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<CallState>>,
    load_idx: u32,
    name: Value<'js>,
    reference: Value<'js>,
) -> rquickjs::Result<()> {
    if reference.is_null() || reference.is_undefined() {
        return Ok(());
    }
    let source_name = reference
        .as_string()
        .map(rquickjs::String::to_string)
        .transpose()?
        .and_then(|it| {
            it.strip_prefix(ATTACHMENT_REFERENCE_PREFIX)
                .map(str::to_owned)
        });
    let Some(source_name) = source_name else {
        return Err(Exception::throw_type(
            ctx,
            "addAttachment: expected an attachment reference returned by loadAttachment()",
        ));
    };
    let name = if name.is_null() || name.is_undefined() {
        source_name.clone()
    } else {
        match name.as_string() {
            Some(name) => name.to_string()?,
            None => {
                return Err(Exception::throw_type(
                    ctx,
                    "addAttachment: the attachment name must be a string",
                ));
            }
        }
    };
    let mut state = borrow_mut(ctx, state)?;
    // A reference made up by hand for an attachment the document does not have adds nothing,
    // like the null that loadAttachment returns for it.
    if !state.attachments.iter().any(|it| it.name == source_name) {
        return Ok(());
    }
    let Some(loaded) = usize::try_from(load_idx)
        .ok()
        .and_then(|it| state.loads.get_mut(it))
    else {
        return Err(Exception::throw_internal(
            ctx,
            "addAttachment: unknown loaded object",
        ));
    };
    loaded
        .attachments
        .push(AddedAttachment { name, source_name });
    Ok(())
}

fn native_load<'js>(ctx: &Ctx<'js>, id: &str) -> rquickjs::Result<Value<'js>> {
    let Some(json) = host_scope::with_host(|host| host.load(id)).flatten() else {
        return Ok(Value::new_null(ctx.clone()));
    };
    match ctx.json_parse(json) {
        Ok(doc) => Ok(doc),
        Err(rquickjs::Error::Exception) => {
            let thrown = ctx.catch();
            if is_out_of_memory(&thrown) {
                return Err(ctx.throw(thrown));
            }
            let reason = error_message(&thrown).unwrap_or_default();
            Err(Exception::throw_message(
                ctx,
                &format!("load: document `{id}` is not valid JSON: {reason}"),
            ))
        }
        Err(error) => Err(error),
    }
}

fn native_get_attachments<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<CallState>>,
) -> rquickjs::Result<Array<'js>> {
    // Setting properties can run user code (setters on Object.prototype): copy, then build.
    let attachments = borrow(ctx, state)?.attachments.clone();
    let array = Array::new(ctx.clone())?;
    for (attachment_idx, attachment) in attachments.into_iter().enumerate() {
        let object = Object::new(ctx.clone())?;
        object.set("Name", attachment.name)?;
        object.set("Hash", attachment.hash)?;
        object.set("ContentType", attachment.content_type)?;
        // Sizes above 2^53 lose precision, as every JavaScript number does.
        object.set("Size", attachment.size as f64)?;
        array.set(attachment_idx, object)?;
    }
    Ok(array)
}

/// Records why a `loadTo` argument was rejected and returns the exception to throw.
fn invalid_output(
    ctx: &Ctx<'_>,
    state: &Rc<RefCell<CallState>>,
    message: String,
) -> rquickjs::Error {
    let error = Exception::throw_type(ctx, &message);
    if let Ok(mut state) = state.try_borrow_mut() {
        state.invalid_output.get_or_insert(message);
    }
    error
}

fn borrow<'a>(
    ctx: &Ctx<'_>,
    state: &'a RefCell<CallState>,
) -> rquickjs::Result<std::cell::Ref<'a, CallState>> {
    state
        .try_borrow()
        .map_err(|_| Exception::throw_internal(ctx, "host function re-entered"))
}

fn borrow_mut<'a>(
    ctx: &Ctx<'_>,
    state: &'a RefCell<CallState>,
) -> rquickjs::Result<std::cell::RefMut<'a, CallState>> {
    state
        .try_borrow_mut()
        .map_err(|_| Exception::throw_internal(ctx, "host function re-entered"))
}

/// `typeof value`, except that arrays are `array` and null is `null`.
fn js_type_name(value: &Value<'_>) -> &'static str {
    if value.is_null() {
        "null"
    } else if value.is_array() {
        "array"
    } else if value.is_function() {
        "function"
    } else if value.is_object() {
        "object"
    } else if value.is_number() {
        "number"
    } else if value.is_string() {
        "string"
    } else if value.is_bool() {
        "boolean"
    } else if value.is_undefined() {
        "undefined"
    } else {
        value.type_name()
    }
}

fn engine_failure(error: rquickjs::Error) -> CallFailure {
    CallFailure::Engine {
        message: error.to_string(),
    }
}

/// Turns a failed rquickjs call into a [`CallFailure`], taking the pending exception if any.
fn classify(ctx: &Ctx<'_>, source: &ScriptSource, error: rquickjs::Error) -> CallFailure {
    match error {
        rquickjs::Error::Exception => {
            let thrown = ctx.catch();
            if is_out_of_memory(&thrown) {
                return CallFailure::OutOfMemory;
            }
            let (message, position) = describe_thrown(ctx, source, &thrown);
            CallFailure::Script { message, position }
        }
        rquickjs::Error::Allocation => CallFailure::OutOfMemory,
        other => engine_failure(other),
    }
}

fn is_out_of_memory(thrown: &Value<'_>) -> bool {
    error_name(thrown).as_deref() == Some("InternalError")
        && error_message(thrown).as_deref() == Some(OUT_OF_MEMORY_MESSAGE)
}

fn is_type_error(thrown: &Value<'_>) -> bool {
    error_name(thrown).as_deref() == Some("TypeError")
}

fn error_name(thrown: &Value<'_>) -> Option<String> {
    thrown.as_object()?.get::<_, Option<String>>("name").ok()?
}

fn error_message(thrown: &Value<'_>) -> Option<String> {
    thrown
        .as_object()?
        .get::<_, Option<String>>("message")
        .ok()?
}

/// Describes a thrown value for the user: `Name: message` and the position in the script for
/// errors, the value itself otherwise.
fn describe_thrown<'js>(
    ctx: &Ctx<'js>,
    source: &ScriptSource,
    thrown: &Value<'js>,
) -> (String, Option<(u32, u32)>) {
    if thrown.is_error() {
        let name = error_name(thrown).unwrap_or_else(|| "Error".to_owned());
        let message = error_message(thrown).unwrap_or_default();
        let stack = thrown
            .as_object()
            .and_then(|it| it.get::<_, Option<String>>("stack").ok().flatten())
            .unwrap_or_default();
        let position = first_script_position(&stack)
            .map(|(line, byte_column)| source.position(line, byte_column));
        let description = if message.is_empty() {
            name
        } else {
            format!("{name}: {message}")
        };
        return (description, position);
    }
    let text = match thrown.as_string() {
        Some(text) => text.to_string().ok(),
        None => ctx
            .json_stringify(thrown.clone())
            .ok()
            .flatten()
            .and_then(|it| it.to_string().ok()),
    };
    let description = format!(
        "uncaught {}: {}",
        js_type_name(thrown),
        text.unwrap_or_else(|| js_type_name(thrown).to_owned())
    );
    (description, None)
}
