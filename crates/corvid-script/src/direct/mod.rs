//! The direct interpreter: runs the common subset of ETL scripts in Rust, without QuickJS.
//!
//! Most transformation scripts read some properties, compute with numbers and strings, loop
//! over an array and call `loadTo…`. For those, QuickJS spends most of its time building and
//! freeing JavaScript objects. This module compiles such a script from its oxc parse into a
//! small tree and runs it on values parsed straight from the document's JSON.
//!
//! It is exact or it does nothing: a script outside the subset is not compiled (QuickJS runs
//! it), and a run that meets anything the interpreter does not model exactly — a string
//! compared with `<`, a property inherited from `Object.prototype`, a member of `null` outside
//! an optional chain (QuickJS throws), an array index key, a value that is not an object given
//! to `loadTo` — stops with [`Outcome::Unsupported`] before producing anything, and the caller
//! runs the same document in QuickJS. Nothing a script does is visible outside until the run
//! finishes, so a stopped run leaves no trace. `tests/direct.rs` checks both give the same
//! output, document by document.

mod compile;
mod value;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use oxc_ast::ast::{BinaryOperator, LogicalOperator, Program, UnaryOperator};

use crate::engine::loaded_number;
use crate::options::ScriptOptions;
use crate::output::{LoadedObject, LoadedValue, TransformOutput};
use crate::projection::Projection;

use compile::{Compiled, Expr, LoadTarget, MathFunction, Stmt, Target};
use value::{
    Arr, Key, MAX_HEIGHT, Obj, Val, Wanted, is_index_like, is_inherited_name, push_json,
    push_json_object, push_json_string, push_number,
};

pub(crate) use compile::LoadForm;

/// A script compiled for the direct interpreter. `Send`, unlike the runner.
#[derive(Debug, Clone)]
pub(crate) struct DirectScript {
    compiled: Compiled,
}

/// Compiles `program` when every statement of it is in the subset, with `loadTo…` calls
/// taking their arguments as `load_form` says.
pub(crate) fn compile(
    program: &Program<'_>,
    load_to_functions: &[String],
    load_form: LoadForm,
) -> Option<DirectScript> {
    compile::compile(program, load_to_functions, load_form)
        .map(|compiled| DirectScript { compiled })
}

/// Why a direct run produced no output.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The document needs something the interpreter does not model: run it in QuickJS.
    Unsupported,
    /// The time budget ran out.
    Timeout,
}

/// How a run ends early, inside the interpreter.
enum Stop {
    Unsupported,
    Timeout,
    /// An optional chain met `null` or `undefined`: the chain is `undefined`.
    ShortCircuit,
}

type Eval<T> = Result<T, Stop>;

/// [`LoadedObject::json`] and [`LoadedObject::values`] of a loaded object.
type LoadedMembers = (String, Option<Vec<(Arc<str>, LoadedValue)>>);

fn unsupported<T>() -> Eval<T> {
    Err(Stop::Unsupported)
}

/// What a statement did to the control flow.
enum Flow {
    Normal,
    Break,
    Continue,
    Return,
}

/// Runs a [`DirectScript`] document after document; one per [`ScriptRuntime`](crate::ScriptRuntime).
#[derive(Debug)]
pub(crate) struct DirectRunner {
    script: DirectScript,
    wanted: Wanted,
    /// The script's property names (see [`Key::Interned`]).
    names: Vec<Arc<str>>,
    load_as_values: bool,
    undefined_as_null: bool,
    memory_limit_bytes: usize,
    /// `$customPartitionValue` of an OLAP script: the setting, or `null`.
    custom_partition_value: Val,
    /// Documents run to the end here, for tests and statistics.
    pub completed: u64,
}

/// Per-run state.
struct Run<'r> {
    slots: Vec<Val>,
    this: Val,
    loads: Vec<LoadedObject>,
    deadline: Option<Instant>,
    ticks: u32,
    /// Bytes of strings, objects and arrays made by this run, against the memory limit.
    allocated: usize,
    runner: &'r DirectRunner,
}

impl DirectRunner {
    /// A runner for `script` under `options`, which must be the options whose ETL type the
    /// script was compiled for ([`LoadForm::Olap`] exactly when `options.olap` is set).
    ///
    /// # Panics
    ///
    /// In debug builds, when the script was compiled for another ETL type.
    pub(crate) fn new(
        script: DirectScript,
        projection: Projection,
        options: &ScriptOptions,
    ) -> DirectRunner {
        debug_assert_eq!(
            script.compiled.load_form == LoadForm::Olap,
            options.olap.is_some(),
            "the script was compiled for another ETL type"
        );
        let custom_partition_value = match options
            .olap
            .as_ref()
            .and_then(|it| it.custom_partition_value.as_deref())
        {
            Some(value) => Val::Str(Arc::from(value)),
            None => Val::Null,
        };
        let mut names = script.compiled.names.clone();
        DirectRunner {
            script,
            wanted: Wanted::new(&projection, &mut names),
            names,
            load_as_values: options.load_as_values,
            undefined_as_null: options.undefined_as_null,
            memory_limit_bytes: options.memory_limit_bytes,
            custom_partition_value,
            completed: 0,
        }
    }

    /// Runs the script on `json` (the document, as [`DocumentInput::json`](crate::DocumentInput)).
    pub(crate) fn run(
        &mut self,
        json: &str,
        deadline: Option<Instant>,
    ) -> Result<TransformOutput, Outcome> {
        let res = self.run_parsed(json, deadline);
        if res.is_ok() {
            self.completed += 1;
        }
        res
    }

    fn run_parsed(
        &self,
        json: &str,
        deadline: Option<Instant>,
    ) -> Result<TransformOutput, Outcome> {
        let this =
            value::parse_document(json, &self.wanted, &self.names).ok_or(Outcome::Unsupported)?;
        if !matches!(this, Val::Obj(_)) {
            return Err(Outcome::Unsupported);
        }
        let compiled = &self.script.compiled;
        let mut slots = vec![Val::Uninitialized; compiled.slots];
        for slot in &compiled.var_slots {
            slots[*slot] = Val::Undefined;
        }
        let mut run = Run {
            slots,
            this,
            loads: Vec::new(),
            deadline,
            ticks: 0,
            allocated: json.len(),
            runner: self,
        };
        match run.statements(&compiled.body) {
            Ok(_) => Ok(TransformOutput {
                loads: run.loads,
                debug_output: Vec::new(),
            }),
            Err(Stop::Timeout) => Err(Outcome::Timeout),
            Err(Stop::Unsupported | Stop::ShortCircuit) => Err(Outcome::Unsupported),
        }
    }
}

impl Run<'_> {
    /// Counts a loop iteration; checks the clock now and then.
    fn tick(&mut self) -> Eval<()> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(256)
            && let Some(deadline) = self.deadline
            && Instant::now() >= deadline
        {
            return Err(Stop::Timeout);
        }
        Ok(())
    }

    fn allocate(&mut self, bytes: usize) -> Eval<()> {
        self.allocated = self.allocated.saturating_add(bytes);
        if self.allocated > self.runner.memory_limit_bytes {
            // QuickJS decides what running out of memory means.
            return unsupported();
        }
        Ok(())
    }

    fn statements(&mut self, statements: &[Stmt]) -> Eval<Flow> {
        for statement in statements {
            let flow = self.statement(statement)?;
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn statement(&mut self, statement: &Stmt) -> Eval<Flow> {
        match statement {
            Stmt::Expr(expr) => {
                self.expression(expr)?;
            }
            Stmt::Load {
                target,
                partition,
                object,
                literal,
            } => self.load(target, partition.as_deref(), object, *literal)?,
            Stmt::Init { slot, value } => {
                let value = self.expression(value)?;
                self.slots[*slot] = value;
            }
            Stmt::Block { lexical, body } => {
                for slot in lexical {
                    self.slots[*slot] = Val::Uninitialized;
                }
                return self.statements(body);
            }
            Stmt::If {
                test,
                then,
                otherwise,
            } => {
                if self.expression(test)?.truthy() {
                    return self.statement(then);
                }
                if let Some(otherwise) = otherwise {
                    return self.statement(otherwise);
                }
            }
            Stmt::For {
                init,
                test,
                update,
                body,
            } => {
                self.statements(init)?;
                loop {
                    self.tick()?;
                    if let Some(test) = test
                        && !self.expression(test)?.truthy()
                    {
                        break;
                    }
                    match self.statement(body)? {
                        Flow::Break => break,
                        Flow::Return => return Ok(Flow::Return),
                        Flow::Normal | Flow::Continue => {}
                    }
                    if let Some(update) = update {
                        self.expression(update)?;
                    }
                }
            }
            Stmt::ForOf {
                slot,
                iterable,
                body,
            } => {
                let Val::Arr(items) = self.expression(iterable)? else {
                    return unsupported();
                };
                for item in &items.items {
                    self.tick()?;
                    self.slots[*slot] = item.clone();
                    match self.statement(body)? {
                        Flow::Break => break,
                        Flow::Return => return Ok(Flow::Return),
                        Flow::Normal | Flow::Continue => {}
                    }
                }
            }
            Stmt::While {
                test,
                body,
                body_first,
            } => {
                let mut first = *body_first;
                loop {
                    self.tick()?;
                    if !first && !self.expression(test)?.truthy() {
                        break;
                    }
                    first = false;
                    match self.statement(body)? {
                        Flow::Break => break,
                        Flow::Return => return Ok(Flow::Return),
                        Flow::Normal | Flow::Continue => {}
                    }
                }
            }
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Continue => return Ok(Flow::Continue),
            Stmt::Return(value) => {
                if let Some(value) = value {
                    self.expression(value)?;
                }
                return Ok(Flow::Return);
            }
            Stmt::Empty => {}
        }
        Ok(Flow::Normal)
    }

    /// `loadTo…(obj)`, or OLAP's `loadTo…(key, obj)`: records the object as the engine would
    /// (see `engine::native_load_to` and `prelude.js`).
    fn load(
        &mut self,
        target: &LoadTarget,
        partition: Option<&[(Arc<str>, Expr)]>,
        object: &Expr,
        literal: bool,
    ) -> Eval<()> {
        let target = match target {
            // `String::from`, not `to_string`: an `Arc<str>`'s goes through the formatter.
            LoadTarget::Named(name) => String::from(&**name),
            LoadTarget::Computed(expr) => match self.expression(expr)? {
                Val::Str(name) => String::from(&*name),
                _ => return unsupported(),
            },
        };
        let extra_arguments = match partition {
            Some(partition) => Some(self.partition_argument(partition)?),
            None => None,
        };
        let (json, values) = match object {
            // An object literal with distinct keys, made only to be loaded: its members are
            // written out as they are evaluated, without building the object.
            Expr::Object(properties) if literal => {
                let mut members = Vec::with_capacity(properties.len());
                for (key, value) in properties {
                    members.push((key, self.expression(value)?));
                }
                self.loaded(members.iter().map(|(key, value)| (*key, value)))?
            }
            _ => {
                let Val::Obj(object) = self.expression(object)? else {
                    return unsupported();
                };
                let object = object.borrow();
                self.loaded(object.props.iter().map(|(key, value)| (key, value)))?
            }
        };
        self.loads.push(LoadedObject {
            target,
            json,
            values,
            attachments: Vec::new(),
            extra_arguments,
        });
        Ok(())
    }

    /// An OLAP load's extra arguments: `[key]`, the key being `[["name","value"],…]`, with
    /// the values' text as the prelude's `partitionText` makes it. A value that is an error
    /// there (null, NaN, an object) is left to QuickJS, which reports it.
    fn partition_argument(&mut self, partition: &[(Arc<str>, Expr)]) -> Eval<String> {
        let mut json = String::with_capacity(8 + 24 * partition.len());
        json.push_str("[[");
        for (pair_idx, (name, value)) in partition.iter().enumerate() {
            let value = self.expression(value)?;
            if pair_idx > 0 {
                json.push(',');
            }
            json.push('[');
            push_json_string(name, &mut json);
            json.push(',');
            match value {
                Val::Str(text) => push_json_string(&text, &mut json),
                Val::Num(number) if number.is_finite() => {
                    json.push('"');
                    push_number(number, &mut json);
                    json.push('"');
                }
                Val::Bool(it) => json.push_str(if it { "\"true\"" } else { "\"false\"" }),
                _ => return unsupported(),
            }
            json.push(']');
        }
        json.push_str("]]");
        self.allocate(json.len())?;
        Ok(json)
    }

    /// The JSON text or the values of a loaded object with these members.
    fn loaded<'v>(
        &self,
        members: impl ExactSizeIterator<Item = (&'v Arc<str>, &'v Val)>,
    ) -> Eval<LoadedMembers> {
        if self.runner.load_as_values {
            let mut values = Vec::with_capacity(members.len());
            for (name, value) in members {
                let loaded = match value {
                    Val::Undefined | Val::Null | Val::Uninitialized => LoadedValue::Null,
                    Val::Bool(it) => LoadedValue::Bool(*it),
                    Val::Num(it) => loaded_number(*it),
                    Val::Str(it) => LoadedValue::String(String::from(&**it)),
                    Val::Arr(_) | Val::Obj(_) => {
                        let mut json = String::new();
                        push_json(value, 1, &mut json).ok_or(Stop::Unsupported)?;
                        LoadedValue::Json(json)
                    }
                };
                values.push((Arc::clone(name), loaded));
            }
            return Ok((String::new(), Some(values)));
        }
        let mut json = String::with_capacity(64);
        let members = members.map(|(name, value)| (&**name, value));
        push_json_object(members, 0, self.runner.undefined_as_null, &mut json)
            .ok_or(Stop::Unsupported)?;
        Ok((json, None))
    }

    fn expression(&mut self, expr: &Expr) -> Eval<Val> {
        Ok(match expr {
            Expr::Undefined => Val::Undefined,
            Expr::Null => Val::Null,
            Expr::Bool(it) => Val::Bool(*it),
            Expr::Num(it) => Val::Num(*it),
            Expr::Str(it) => Val::Str(Arc::clone(it)),
            Expr::This => self.this.clone(),
            Expr::Local(slot) => match &self.slots[*slot] {
                Val::Uninitialized => return unsupported(),
                value => value.clone(),
            },
            Expr::Member {
                object,
                key,
                optional,
            } => {
                let object = self.expression(object)?;
                member(&object, Key::Interned(key), *optional)?
            }
            Expr::Index {
                object,
                index,
                optional,
            } => {
                let object = self.expression(object)?;
                if *optional && object.is_nullish() {
                    return Err(Stop::ShortCircuit);
                }
                let index = self.expression(index)?;
                element(&object, &index)?
            }
            Expr::Chain(inner) => match self.expression(inner) {
                Err(Stop::ShortCircuit) => Val::Undefined,
                other => other?,
            },
            Expr::Unary(operator, argument) => {
                let argument = self.expression(argument)?;
                match operator {
                    UnaryOperator::LogicalNot => Val::Bool(!argument.truthy()),
                    UnaryOperator::Typeof => Val::Str(Arc::from(argument.type_of())),
                    UnaryOperator::Void => Val::Undefined,
                    UnaryOperator::UnaryPlus => Val::Num(number(&argument)?),
                    UnaryOperator::UnaryNegation => Val::Num(-number(&argument)?),
                    _ => return unsupported(),
                }
            }
            Expr::Binary(operator, left, right) => {
                let left = self.expression(left)?;
                let right = self.expression(right)?;
                self.binary(*operator, &left, &right)?
            }
            Expr::Logical(operator, left, right) => {
                let left = self.expression(left)?;
                let decided = match operator {
                    LogicalOperator::And => !left.truthy(),
                    LogicalOperator::Or => left.truthy(),
                    LogicalOperator::Coalesce => !left.is_nullish(),
                };
                if decided {
                    left
                } else {
                    self.expression(right)?
                }
            }
            Expr::Conditional(test, consequent, alternate) => {
                if self.expression(test)?.truthy() {
                    self.expression(consequent)?
                } else {
                    self.expression(alternate)?
                }
            }
            Expr::Assign {
                target,
                operator,
                value,
            } => self.assign(target, *operator, value)?,
            Expr::Update {
                target,
                increment,
                prefix,
            } => {
                let old = number(&self.read_target(target)?)?;
                let new = if *increment { old + 1.0 } else { old - 1.0 };
                self.write_target(target, Val::Num(new))?;
                Val::Num(if *prefix { new } else { old })
            }
            Expr::Object(properties) => {
                let mut obj = Obj::default();
                for (key, value) in properties {
                    let value = self.expression(value)?;
                    obj.set(Arc::clone(key), value);
                }
                self.allocate(64 + 32 * obj.props.len())?;
                if obj.height > MAX_HEIGHT {
                    return unsupported();
                }
                Val::Obj(Rc::new(RefCell::new(obj)))
            }
            Expr::Array(items) => {
                let items = items
                    .iter()
                    .map(|item| self.expression(item))
                    .collect::<Eval<Vec<_>>>()?;
                self.allocate(32 + 16 * items.len())?;
                let arr = Arr::new(items);
                if arr.height > MAX_HEIGHT {
                    return unsupported();
                }
                Val::Arr(Rc::new(arr))
            }
            Expr::Template(quasis, parts) => {
                let mut text = String::new();
                for (part_idx, quasi) in quasis.iter().enumerate() {
                    text.push_str(quasi);
                    if let Some(part) = parts.get(part_idx) {
                        let part = self.expression(part)?;
                        part.push_string(&mut text).ok_or(Stop::Unsupported)?;
                    }
                }
                self.allocate(text.len())?;
                Val::Str(Arc::from(text))
            }
            Expr::Sequence(parts) => {
                let mut last = Val::Undefined;
                for part in parts {
                    last = self.expression(part)?;
                }
                last
            }
            Expr::Math(function, arguments) => {
                let mut numbers = Vec::with_capacity(arguments.len());
                for argument in arguments {
                    let argument = self.expression(argument)?;
                    numbers.push(number(&argument)?);
                }
                Val::Num(math(*function, &numbers))
            }
            Expr::Id(doc) => {
                let doc = self.expression(doc)?;
                match metadata(&doc)? {
                    Val::Obj(metadata) => match metadata.borrow().get(Key::Text("@id")) {
                        None => Val::Null,
                        Some(id) => id.clone(),
                    },
                    _ => Val::Null,
                }
            }
            Expr::GetMetadata(doc) => {
                let doc = self.expression(doc)?;
                metadata(&doc)?
            }
            Expr::CustomPartitionValue => self.runner.custom_partition_value.clone(),
        })
    }

    fn binary(&mut self, operator: BinaryOperator, left: &Val, right: &Val) -> Eval<Val> {
        Ok(match operator {
            BinaryOperator::Addition => {
                if matches!(left, Val::Str(_)) || matches!(right, Val::Str(_)) {
                    let mut text = String::new();
                    left.push_string(&mut text).ok_or(Stop::Unsupported)?;
                    right.push_string(&mut text).ok_or(Stop::Unsupported)?;
                    self.allocate(text.len())?;
                    Val::Str(Arc::from(text))
                } else {
                    Val::Num(number(left)? + number(right)?)
                }
            }
            BinaryOperator::Subtraction => Val::Num(number(left)? - number(right)?),
            BinaryOperator::Multiplication => Val::Num(number(left)? * number(right)?),
            BinaryOperator::Division => Val::Num(number(left)? / number(right)?),
            BinaryOperator::Remainder => Val::Num(number(left)? % number(right)?),
            BinaryOperator::StrictEquality => Val::Bool(value::strict_equals(left, right)),
            BinaryOperator::StrictInequality => Val::Bool(!value::strict_equals(left, right)),
            BinaryOperator::Equality => {
                Val::Bool(value::loose_equals(left, right).ok_or(Stop::Unsupported)?)
            }
            BinaryOperator::Inequality => {
                Val::Bool(!value::loose_equals(left, right).ok_or(Stop::Unsupported)?)
            }
            BinaryOperator::LessThan => Val::Bool(number(left)? < number(right)?),
            BinaryOperator::LessEqualThan => Val::Bool(number(left)? <= number(right)?),
            BinaryOperator::GreaterThan => Val::Bool(number(left)? > number(right)?),
            BinaryOperator::GreaterEqualThan => Val::Bool(number(left)? >= number(right)?),
            _ => return unsupported(),
        })
    }

    fn assign(
        &mut self,
        target: &Target,
        operator: Option<BinaryOperator>,
        value: &Expr,
    ) -> Eval<Val> {
        // JavaScript evaluates the target's object first, then the old value, then the right.
        let object = match target {
            Target::Local(_) => None,
            Target::Member(object, _) => Some(self.expression(object)?),
        };
        let new = match operator {
            None => self.expression(value)?,
            Some(operator) => {
                let old = match (target, &object) {
                    (Target::Local(slot), _) => match &self.slots[*slot] {
                        Val::Uninitialized => return unsupported(),
                        old => old.clone(),
                    },
                    (Target::Member(_, key), Some(object)) => {
                        member(object, Key::Interned(key), false)?
                    }
                    (Target::Member(..), None) => return unsupported(),
                };
                let right = self.expression(value)?;
                self.binary(operator, &old, &right)?
            }
        };
        match (target, object) {
            (Target::Local(slot), _) => {
                if matches!(self.slots[*slot], Val::Uninitialized) {
                    return unsupported();
                }
                self.slots[*slot] = new.clone();
            }
            (Target::Member(_, key), Some(object)) => set_member(&object, key, new.clone())?,
            (Target::Member(..), None) => return unsupported(),
        }
        Ok(new)
    }

    fn read_target(&mut self, target: &Target) -> Eval<Val> {
        match target {
            Target::Local(slot) => match &self.slots[*slot] {
                Val::Uninitialized => unsupported(),
                value => Ok(value.clone()),
            },
            Target::Member(object, key) => {
                let object = self.expression(object)?;
                member(&object, Key::Interned(key), false)
            }
        }
    }

    /// Writes an update's result. A member target evaluates its object a second time, so only
    /// objects that evaluate without side effects are written (locals, `this` and members of
    /// them); anything else is left to QuickJS.
    fn write_target(&mut self, target: &Target, value: Val) -> Eval<()> {
        match target {
            Target::Local(slot) => {
                self.slots[*slot] = value;
                Ok(())
            }
            Target::Member(object, key) => {
                if !is_pure(object) {
                    return unsupported();
                }
                let object = self.expression(object)?;
                set_member(&object, key, value)
            }
        }
    }
}

/// Whether evaluating `expr` twice is the same as once.
fn is_pure(expr: &Expr) -> bool {
    match expr {
        Expr::This | Expr::Local(_) => true,
        Expr::Member { object, .. } => is_pure(object),
        Expr::Chain(inner) => is_pure(inner),
        _ => false,
    }
}

/// `ToNumber`, or unsupported for strings and objects.
fn number(value: &Val) -> Eval<f64> {
    value.to_number().ok_or(Stop::Unsupported)
}

/// `object.key` (or `object?.key` when `optional`).
fn member(object: &Val, key: Key<'_>, optional: bool) -> Eval<Val> {
    match object {
        Val::Undefined | Val::Null if optional => Err(Stop::ShortCircuit),
        Val::Obj(obj) => match obj.borrow().get(key) {
            Some(value) => Ok(value.clone()),
            None if is_inherited_name(key.text()) || is_index_like(key.text()) => unsupported(),
            None => Ok(Val::Undefined),
        },
        Val::Arr(arr) if key.text() == "length" => Ok(Val::Num(arr.items.len() as f64)),
        Val::Str(text) if key.text() == "length" => {
            Ok(Val::Num(text.encode_utf16().count() as f64))
        }
        // QuickJS throws (a member of null outside an optional chain) or finds a prototype
        // member: either way, not modelled.
        _ => unsupported(),
    }
}

/// `object[index]`.
fn element(object: &Val, index: &Val) -> Eval<Val> {
    match (object, index) {
        (Val::Arr(arr), Val::Num(index)) => {
            if index.fract() == 0.0 && *index >= 0.0 && *index < arr.items.len() as f64 {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                return Ok(arr.items[*index as usize].clone());
            }
            // Past the end, negative or fractional: a property arrays do not have... unless
            // it is a name on Array.prototype, which no number is.
            if index.is_finite() || index.is_nan() {
                return Ok(Val::Undefined);
            }
            unsupported()
        }
        (_, Val::Str(key)) => member(object, Key::Text(key), false),
        _ => unsupported(),
    }
}

/// `object.key = value`. An object or array as the value is left to QuickJS: it could make a
/// cycle, or a chain deeper than the height checks see.
fn set_member(object: &Val, key: &Arc<str>, value: Val) -> Eval<()> {
    if matches!(value, Val::Obj(_) | Val::Arr(_)) {
        return unsupported();
    }
    match object {
        Val::Obj(obj) => {
            obj.borrow_mut().set(Arc::clone(key), value);
            Ok(())
        }
        _ => unsupported(),
    }
}

/// `getMetadata(doc)` as the prelude defines it.
fn metadata(doc: &Val) -> Eval<Val> {
    Ok(match doc {
        Val::Obj(obj) => match obj.borrow().get(Key::Text("@metadata")) {
            None | Some(Val::Undefined) => Val::Null,
            Some(metadata) => metadata.clone(),
        },
        Val::Arr(_) => Val::Null,
        Val::Str(_) => return unsupported(),
        _ => Val::Null,
    })
}

fn math(function: MathFunction, arguments: &[f64]) -> f64 {
    let first = arguments.first().copied().unwrap_or(f64::NAN);
    match function {
        MathFunction::Round => js_round(first),
        MathFunction::Floor => first.floor(),
        MathFunction::Ceil => first.ceil(),
        MathFunction::Trunc => first.trunc(),
        MathFunction::Abs => first.abs(),
        MathFunction::Min => arguments.iter().fold(f64::INFINITY, |min, it| {
            if min.is_nan() || it.is_nan() {
                f64::NAN
            } else if *it < min || (*it == 0.0 && min == 0.0 && it.is_sign_negative()) {
                *it
            } else {
                min
            }
        }),
        MathFunction::Max => arguments.iter().fold(f64::NEG_INFINITY, |max, it| {
            if max.is_nan() || it.is_nan() {
                f64::NAN
            } else if *it > max || (*it == 0.0 && max == 0.0 && it.is_sign_positive()) {
                *it
            } else {
                max
            }
        }),
    }
}

/// `Math.round`: halves round towards +∞, and the sign of zero is kept.
fn js_round(value: f64) -> f64 {
    if !value.is_finite() || value == 0.0 {
        return value;
    }
    if (-0.5..0.0).contains(&value) {
        return -0.0;
    }
    let floor = value.floor();
    if value - floor >= 0.5 {
        floor + 1.0
    } else {
        floor
    }
}

#[cfg(test)]
mod tests {
    use super::js_round;

    #[test]
    fn math_round_rounds_halves_up_and_keeps_the_sign_of_zero() {
        assert_eq!(js_round(2.5), 3.0);
        assert_eq!(js_round(-2.5), -2.0);
        assert_eq!(js_round(0.499_999_999_999_999_94), 0.0);
        assert!(js_round(-0.4).is_sign_negative());
        assert_eq!(js_round(4_503_599_627_370_495.5), 4_503_599_627_370_496.0);
    }
}
