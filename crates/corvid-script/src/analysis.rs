//! Static analysis of an ETL script from a real JavaScript parse (oxc), never from regexes.
//!
//! Strings, comments, template literals and regex literals are tokens of their own in the parse,
//! so a `loadToX(` inside any of them is never taken for a call.

use std::borrow::Cow;
use std::collections::HashSet;

use oxc_allocator::Allocator;
use oxc_ast::ast::{
    Argument, ArrowFunctionExpression, AssignmentExpression, BindingIdentifier, CallExpression,
    ComputedMemberExpression, Expression, ExpressionStatement, ForInStatement, ForOfStatement,
    IdentifierReference, NewExpression, ObjectProperty, Statement, StaticMemberExpression,
    StringLiteral, TaggedTemplateExpression, TemplateElement, UnaryExpression, UnaryOperator,
    UpdateExpression,
};
use oxc_ast_visit::{Visit, walk};
use oxc_parser::{ParseOptions, Parser};
use oxc_span::{GetSpan, SourceType, Span};

use crate::direct::{self, DirectScript, LoadForm};
use crate::engine::check_syntax;
use crate::error::ScriptError;
use crate::projection::{Projection, document_projection};
use crate::source_map::line_column_of_byte;

/// What a script does, found by parsing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptAnalysis {
    /// The script has no statements: only whitespace and comments.
    /// RavenDB ETL then copies the whole document (spec §2.2); the caller implements that.
    pub is_empty: bool,
    /// Targets named by `loadTo<Name>(…)` and `loadTo('Name'|"Name"|`Name`, …)`, in order of
    /// first appearance, de-duplicated case-sensitively.
    /// A `loadTo(expr, …)` whose name is computed at run time is not listed.
    pub load_targets: Vec<String>,
    /// The script calls `loadTo(…)` or refers to a `loadTo<Name>` function (literal or computed
    /// target): a script that never does sends nothing, which RavenDB refuses.
    pub has_load_to: bool,
    /// The script calls `loadAttachment`.
    pub uses_load_attachment: bool,
    /// The script uses `addAttachment` (on the result of a `loadTo…` call).
    pub uses_add_attachment: bool,
    /// `<Coll>` of each top-level `function deleteDocumentsOf<Coll>Behavior(…)`, in source order,
    /// de-duplicated case-sensitively.
    pub delete_behaviors: Vec<String>,
    /// The script declares a top-level `function deleteDocumentsBehavior(…)`.
    pub has_generic_delete_behavior: bool,
}

/// Parses `source` as an ETL script body and reports what it does.
///
/// The body may `return` at top level, as RavenDB scripts do. The source is checked by both
/// QuickJS (which also reports early errors such as redeclarations) and oxc.
///
/// # Errors
///
/// - [`ScriptError::Syntax`] with a 1-based line and column (in characters) when the script
///   does not parse.
/// - [`ScriptError::Invalid`] when it uses RavenDB 3.x `replicateTo…`, is longer than
///   [`MAX_SCRIPT_BYTES`], or nests too deeply to compile within a 1 MiB stack.
/// - [`ScriptError::Engine`] when the parser cannot run (no thread for it, for example).
pub fn analyze(source: &str) -> Result<ScriptAnalysis, ScriptError> {
    // What the analysis finds does not depend on the ETL type; only the direct interpreter's
    // compilation does, and it is not part of the analysis.
    parse_script(source, LoadForm::Etl).map(|parsed_script| parsed_script.analysis)
}

/// The analysis plus what the runtime needs to compile the script.
#[derive(Debug, Clone)]
pub(crate) struct ParsedScript {
    pub analysis: ScriptAnalysis,
    /// Byte ranges of the directive prologue and the top-level function declarations, in
    /// source order: what the behaviour functions are compiled from.
    pub declarations: Vec<SourceRange>,
    /// Every identifier referenced as `loadTo<Name>` (called or not), de-duplicated: the runtime
    /// defines one global function for each.
    pub load_to_functions: Vec<String>,
    /// Where to insert `?` (before a `.`) or `?.` (before a `[`) to turn member accesses into
    /// optional chaining: RavenDB's null propagation (spec §9). Byte offsets, ascending.
    pub optional_chaining: Vec<(usize, Cow<'static, str>)>,
    /// What of `this` the script can reach: the runtime parses only that of each document.
    pub document_projection: Projection,
    /// The script may look at what a `loadTo…` call returns: some call is not a statement of
    /// its own, or a `loadTo…` function is referred to other than by calling it.
    pub load_results_used: bool,
    /// The script compiled for the direct interpreter, when it is within its subset.
    pub direct: Option<DirectScript>,
}

#[derive(Debug, Clone)]
pub(crate) struct SourceRange {
    pub start: usize,
    pub end: usize,
}

const LOAD_TO: &str = "loadTo";
const REPLICATE_TO: &str = "replicateTo";
const DELETE_BEHAVIOR_PREFIX: &str = "deleteDocumentsOf";
const DELETE_BEHAVIOR_SUFFIX: &str = "Behavior";
pub(crate) const GENERIC_DELETE_BEHAVIOR: &str = "deleteDocumentsBehavior";

/// The deepest nesting of syntax nodes a script may have. Real scripts stay under 100; a chain
/// such as `this.a.a.a…` counts one level per member.
pub const MAX_NESTING_DEPTH: usize = 1000;

/// The deepest nesting of the syntax tree.
#[derive(Default)]
struct NestingDepth {
    depth: usize,
    max: usize,
}

impl<'a> Visit<'a> for NestingDepth {
    fn enter_node(&mut self, _kind: oxc_ast::AstKind<'a>) {
        self.depth += 1;
        self.max = self.max.max(self.depth);
    }

    fn leave_node(&mut self, _kind: oxc_ast::AstKind<'a>) {
        self.depth -= 1;
    }
}

/// Scripts larger than this are refused: parsing needs stack in proportion to nesting depth.
pub const MAX_SCRIPT_BYTES: usize = 1024 * 1024;

pub(crate) fn parse_script(source: &str, load_form: LoadForm) -> Result<ParsedScript, ScriptError> {
    if source.len() > MAX_SCRIPT_BYTES {
        return Err(ScriptError::Invalid {
            message: format!(
                "the script is {} bytes long; the limit is {MAX_SCRIPT_BYTES}",
                source.len()
            ),
        });
    }
    // oxc parses recursively with no depth limit, so a deeply nested script could overflow the
    // caller's stack and abort the process. Parse on a thread whose stack is sized for the
    // worst nesting the source could hold; untouched stack pages cost no memory, and the
    // QuickJS check that runs first keeps the nesting (and so the stack touched) small.
    std::thread::scope(|scope| {
        let parser_thread = std::thread::Builder::new()
            .name("corvid-script-parse".to_owned())
            .stack_size(parser_stack_bytes(source))
            .spawn_scoped(scope, || parse_on_this_thread(source, load_form))
            .map_err(|error| ScriptError::Engine {
                message: format!("failed to start the script parser thread: {error}"),
            })?;
        parser_thread.join().unwrap_or_else(|_| {
            Err(ScriptError::Engine {
                message: "the script parser panicked".to_owned(),
            })
        })
    })
}

/// A stack size no parse of `source` can exceed. Measured on oxc 0.139 (debug build, the
/// worst): about 3.8 KiB per level of brackets, 1.4 KiB per `=>`/`=`/`?` level and 0.5 KiB per
/// unary operator; the factors below leave about 50% on top.
fn parser_stack_bytes(source: &str) -> usize {
    const BASE_BYTES: usize = 16 * 1024 * 1024;
    let per_byte: usize = source
        .bytes()
        .map(|it| match it {
            b'(' | b'[' | b'{' => 6 * 1024,
            b'=' | b'?' | b':' => 3 * 1024,
            _ => 1024,
        })
        .sum();
    BASE_BYTES + per_byte
}

fn parse_on_this_thread(source: &str, load_form: LoadForm) -> Result<ParsedScript, ScriptError> {
    // QuickJS first: it refuses nesting deeper than its stack limit instead of overflowing, so
    // the nesting oxc sees below is bounded too. It also catches early errors (redeclarations,
    // for example) that oxc leaves to semantic analysis.
    check_syntax(source)?;
    let allocator = Allocator::default();
    let parse_options = ParseOptions {
        allow_return_outside_function: true,
        ..ParseOptions::default()
    };
    let parser_return = Parser::new(&allocator, source, SourceType::script())
        .with_options(parse_options)
        .parse();
    if let Some(diagnostic) = parser_return.diagnostics.first() {
        let labels = diagnostic.labels.as_slice();
        let offset = labels
            .iter()
            .find(|it| it.primary())
            .or_else(|| labels.first())
            .map_or(0, |it| it.offset() as usize);
        let (line, column) = line_column_of_byte(source, offset);
        return Err(ScriptError::Syntax {
            line,
            column,
            message: diagnostic.message.to_string(),
        });
    }
    let program = parser_return.program;
    // Everything after the parse (the visitors, the direct compiler, the runtime, and dropping
    // what they build) recurses once per level of nesting, on threads with ordinary stacks: a
    // 40 KB member chain overflowed a 2 MiB stack and aborted the server. Refuse deep scripts
    // here, on the parser's large stack, before anything deep leaves it.
    let mut nesting = NestingDepth::default();
    nesting.visit_program(&program);
    if nesting.max > MAX_NESTING_DEPTH {
        return Err(ScriptError::Invalid {
            message: format!(
                "the script nests more than {MAX_NESTING_DEPTH} levels deep (a member or call chain, \
                 or an expression, of that length); split it into statements"
            ),
        });
    }

    let mut collector = Collector::default();
    collector.visit_program(&program);
    let mut bindings = Bindings::default();
    bindings.visit_program(&program);
    let mut chaining = NullPropagation {
        source,
        declared: bindings.names,
        excluded: Vec::new(),
        names_kept: Vec::new(),
        insertions: Vec::new(),
    };
    chaining.visit_program(&program);
    let mut optional_chaining = chaining.insertions;
    // At one offset, a name's closing `)` comes before what follows the name (`?.`, `?`).
    optional_chaining.sort_by_key(|(offset, text)| (*offset, text != ")"));
    optional_chaining.dedup();
    if let Some(name) = collector.replicate_to {
        return Err(ScriptError::Invalid {
            message: format!(
                "`{name}` is RavenDB 3.x syntax and is not supported: use `loadTo{}` instead",
                &name[REPLICATE_TO.len()..]
            ),
        });
    }

    let mut analysis = ScriptAnalysis {
        is_empty: program.body.is_empty() && program.directives.is_empty(),
        has_load_to: collector.calls_load_to || !collector.load_to_functions.is_empty(),
        load_targets: collector.load_targets,
        uses_load_attachment: collector.uses_load_attachment,
        uses_add_attachment: collector.uses_add_attachment,
        delete_behaviors: Vec::new(),
        has_generic_delete_behavior: false,
    };
    let mut declarations: Vec<SourceRange> = program
        .directives
        .iter()
        .map(|it| SourceRange {
            start: it.span.start as usize,
            end: it.span.end as usize,
        })
        .collect();
    for statement in &program.body {
        let Statement::FunctionDeclaration(function) = statement else {
            continue;
        };
        let Some(binding) = &function.id else {
            continue;
        };
        let name = binding.name.as_str();
        if name == GENERIC_DELETE_BEHAVIOR {
            analysis.has_generic_delete_behavior = true;
        } else if let Some(collection) = delete_behavior_collection(name) {
            push_unique(&mut analysis.delete_behaviors, collection);
        }
        let span = function.span();
        declarations.push(SourceRange {
            start: span.start as usize,
            end: span.end as usize,
        });
    }
    let direct = direct::compile(&program, &collector.load_to_functions, load_form);
    Ok(ParsedScript {
        analysis,
        declarations,
        direct,
        load_to_functions: collector.load_to_functions,
        optional_chaining,
        document_projection: document_projection(&program),
        load_results_used: {
            let mut uses = LoadResultUses::default();
            uses.visit_program(&program);
            uses.found
        },
    })
}

/// Returns `<Coll>` when `name` is `deleteDocumentsOf<Coll>Behavior` with a non-empty `<Coll>`.
pub(crate) fn delete_behavior_collection(name: &str) -> Option<&str> {
    let collection = name
        .strip_prefix(DELETE_BEHAVIOR_PREFIX)?
        .strip_suffix(DELETE_BEHAVIOR_SUFFIX)?;
    if collection.is_empty() {
        return None;
    }
    Some(collection)
}

fn push_unique(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|it| it == name) {
        names.push(name.to_owned());
    }
}

#[derive(Default)]
struct Collector {
    load_targets: Vec<String>,
    load_to_functions: Vec<String>,
    /// `loadTo(…)` is called.
    calls_load_to: bool,
    uses_load_attachment: bool,
    uses_add_attachment: bool,
    replicate_to: Option<String>,
}

impl<'a> Visit<'a> for Collector {
    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        if let Expression::Identifier(callee) = &it.callee {
            let name = callee.name.as_str();
            if name == LOAD_TO {
                self.calls_load_to = true;
                if let Some(target) = it.arguments.first().and_then(literal_target) {
                    push_unique(&mut self.load_targets, &target);
                }
            } else if let Some(target) = name.strip_prefix(LOAD_TO)
                && !target.is_empty()
            {
                push_unique(&mut self.load_targets, target);
            }
        }
        walk::walk_call_expression(self, it);
    }

    fn visit_identifier_reference(&mut self, it: &IdentifierReference<'a>) {
        let name = it.name.as_str();
        if name == "loadAttachment" {
            self.uses_load_attachment = true;
        } else if name.len() > LOAD_TO.len() && name.starts_with(LOAD_TO) {
            push_unique(&mut self.load_to_functions, name);
        } else if name.starts_with(REPLICATE_TO) && self.replicate_to.is_none() {
            self.replicate_to = Some(name.to_owned());
        }
    }

    fn visit_static_member_expression(&mut self, it: &StaticMemberExpression<'a>) {
        if it.property.name.as_str() == "addAttachment" {
            self.uses_add_attachment = true;
        }
        walk::walk_static_member_expression(self, it);
    }

    fn visit_computed_member_expression(&mut self, it: &ComputedMemberExpression<'a>) {
        if let Expression::StringLiteral(property) = &it.expression
            && property.value.as_str() == "addAttachment"
        {
            self.uses_add_attachment = true;
        }
        walk::walk_computed_member_expression(self, it);
    }
}

/// Finds whether the value of a `loadTo…` call can be observed. Calls that are statements of
/// their own drop it; any other mention of a `loadTo…` function (a call inside an expression,
/// the function passed around, read as a property) counts as a use.
#[derive(Default)]
struct LoadResultUses {
    found: bool,
}

fn is_load_to_name(name: &str) -> bool {
    name.starts_with(LOAD_TO)
}

impl<'a> Visit<'a> for LoadResultUses {
    fn visit_expression_statement(&mut self, it: &ExpressionStatement<'a>) {
        if let Expression::CallExpression(call) = &it.expression
            && let Expression::Identifier(callee) = &call.callee
            && is_load_to_name(callee.name.as_str())
        {
            for argument in &call.arguments {
                self.visit_argument(argument);
            }
            return;
        }
        walk::walk_expression_statement(self, it);
    }

    fn visit_arrow_function_expression(&mut self, it: &ArrowFunctionExpression<'a>) {
        if !it.expression {
            walk::walk_arrow_function_expression(self, it);
            return;
        }
        // `x => loadToX(x)`: the body is one expression statement whose value is returned.
        self.visit_formal_parameters(&it.params);
        for statement in &it.body.statements {
            match statement {
                Statement::ExpressionStatement(returned) => {
                    walk::walk_expression_statement(self, returned);
                }
                other => self.visit_statement(other),
            }
        }
    }

    fn visit_identifier_reference(&mut self, it: &IdentifierReference<'a>) {
        // Code compiled from a string can do anything with the result.
        let name = it.name.as_str();
        if is_load_to_name(name) || name == "eval" || name == "Function" {
            self.found = true;
        }
    }

    fn visit_static_member_expression(&mut self, it: &StaticMemberExpression<'a>) {
        if is_load_to_name(it.property.name.as_str()) {
            self.found = true;
        }
        walk::walk_static_member_expression(self, it);
    }

    fn visit_string_literal(&mut self, it: &StringLiteral<'a>) {
        if it.value.as_str().contains(LOAD_TO) {
            self.found = true;
        }
    }

    fn visit_template_element(&mut self, it: &TemplateElement<'a>) {
        if it.value.raw.as_str().contains(LOAD_TO) {
            self.found = true;
        }
    }
}

/// Finds the member accesses that may become optional chaining. Skipped, because optional
/// chaining is not allowed there: assignment and update targets (`a.b = 1`, `a.b++`,
/// destructuring, `for (a.b in …)`), `new` callees and template tags, `super.x`; and any
/// access whose `.` or `[` is not found next to its object (a comment in between).
///
/// Names, as RavenDB 4.1 has them (asked of its test endpoint): a name the script declares
/// nowhere and that is not one of the globals below reads as `null` — `X` becomes
/// `(typeof X === 'undefined' ? null : X)`, which is `X` itself wherever a global of that name
/// exists after all — while `typeof X` stays `'undefined'`; a call of such a name yields
/// nothing instead of throwing (`(…)?.(…)`). Left as written: assignment targets, shorthand
/// properties (`{X}`).
struct NullPropagation<'s> {
    source: &'s str,
    /// Every name the script declares, in any scope.
    declared: HashSet<String>,
    excluded: Vec<Span>,
    /// Identifiers not to rewrite: `typeof` operands, shorthand property values.
    names_kept: Vec<Span>,
    insertions: Vec<(usize, Cow<'static, str>)>,
}

/// The globals every script has: the host's (`prelude.js`) and JavaScript's. Names the list
/// misses are still right (the rewrite yields the global where it exists); listing them keeps
/// the script as written, and within the direct interpreter's reach.
const KNOWN_GLOBALS: &[&str] = &[
    "load",
    "id",
    "getMetadata",
    "getAttachments",
    "hasAttachment",
    "loadAttachment",
    "output",
    "varchar",
    "nvarchar",
    "undefined",
    "NaN",
    "Infinity",
    "arguments",
    "globalThis",
    "Math",
    "JSON",
    "Reflect",
    "Proxy",
    "parseInt",
    "parseFloat",
    "isNaN",
    "isFinite",
    "String",
    "Number",
    "Boolean",
    "Array",
    "Object",
    "Date",
    "RegExp",
    "Error",
    "TypeError",
    "RangeError",
    "SyntaxError",
    "Symbol",
    "BigInt",
    "Map",
    "Set",
    "WeakMap",
    "WeakSet",
    "Promise",
    "encodeURIComponent",
    "decodeURIComponent",
    "encodeURI",
    "decodeURI",
    "escape",
    "unescape",
    // OLAP ETL's, defined only for OLAP scripts (`ScriptOptions::olap`): elsewhere they throw a
    // ReferenceError instead of reading as null, so that an OLAP script given to another ETL
    // type fails at once rather than loading `undefined`.
    "partitionBy",
    "noPartition",
    "$customPartitionValue",
];

/// The names a script declares anywhere: variables, functions, parameters, classes, catch
/// parameters.
#[derive(Default)]
struct Bindings {
    names: HashSet<String>,
}

impl<'a> Visit<'a> for Bindings {
    fn visit_binding_identifier(&mut self, it: &BindingIdentifier<'a>) {
        self.names.insert(it.name.to_string());
    }
}

impl NullPropagation<'_> {
    /// A name read that would throw a ReferenceError where RavenDB reads null.
    fn is_undeclared(&self, it: &IdentifierReference<'_>) -> bool {
        let name = it.name.as_str();
        !self.declared.contains(name)
            && !name.starts_with("loadTo")
            && !KNOWN_GLOBALS.contains(&name)
            && !self.is_excluded(it.span)
            && !self.names_kept.contains(&it.span)
    }

    fn is_excluded(&self, span: Span) -> bool {
        self.excluded
            .iter()
            .any(|it| it.start <= span.start && span.end <= it.end)
    }

    /// The byte offset of the `.` before a property that starts at `property_start`.
    fn dot_before(&self, property_start: usize) -> Option<usize> {
        let before = self.source.get(..property_start)?;
        let trimmed = before.trim_end();
        trimmed.ends_with('.').then(|| trimmed.len() - 1)
    }

    /// The byte offset of the `[` after an object that ends at `object_end`.
    fn bracket_after(&self, object_end: usize) -> Option<usize> {
        let after = self.source.get(object_end..)?;
        let skipped = after.len() - after.trim_start().len();
        after
            .trim_start()
            .starts_with('[')
            .then_some(object_end + skipped)
    }
}

impl<'a> Visit<'a> for NullPropagation<'_> {
    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        walk::walk_call_expression(self, it);
        if let Expression::Identifier(callee) = &it.callee
            && !it.optional
            && self.is_undeclared(callee)
        {
            self.insertions
                .push((callee.span.end as usize, Cow::Borrowed("?.")));
        }
    }

    fn visit_identifier_reference(&mut self, it: &IdentifierReference<'a>) {
        if self.is_undeclared(it) {
            let name = it.name.as_str();
            self.insertions.push((
                it.span.start as usize,
                Cow::Owned(format!("(typeof {name} === 'undefined' ? null : ")),
            ));
            self.insertions
                .push((it.span.end as usize, Cow::Borrowed(")")));
        }
    }

    fn visit_unary_expression(&mut self, it: &UnaryExpression<'a>) {
        if it.operator == UnaryOperator::Typeof
            && let Expression::Identifier(operand) = &it.argument
        {
            self.names_kept.push(operand.span);
        }
        walk::walk_unary_expression(self, it);
    }

    fn visit_object_property(&mut self, it: &ObjectProperty<'a>) {
        if it.shorthand {
            self.names_kept.push(it.value.span());
        }
        walk::walk_object_property(self, it);
    }

    fn visit_assignment_expression(&mut self, it: &AssignmentExpression<'a>) {
        self.excluded.push(it.left.span());
        walk::walk_assignment_expression(self, it);
    }

    fn visit_update_expression(&mut self, it: &UpdateExpression<'a>) {
        self.excluded.push(it.argument.span());
        walk::walk_update_expression(self, it);
    }

    fn visit_new_expression(&mut self, it: &NewExpression<'a>) {
        self.excluded.push(it.callee.span());
        walk::walk_new_expression(self, it);
    }

    fn visit_tagged_template_expression(&mut self, it: &TaggedTemplateExpression<'a>) {
        self.excluded.push(it.tag.span());
        walk::walk_tagged_template_expression(self, it);
    }

    fn visit_for_in_statement(&mut self, it: &ForInStatement<'a>) {
        self.excluded.push(it.left.span());
        walk::walk_for_in_statement(self, it);
    }

    fn visit_for_of_statement(&mut self, it: &ForOfStatement<'a>) {
        self.excluded.push(it.left.span());
        walk::walk_for_of_statement(self, it);
    }

    fn visit_static_member_expression(&mut self, it: &StaticMemberExpression<'a>) {
        let usable = !it.optional
            && !matches!(it.object, Expression::Super(_))
            && !self.is_excluded(it.span);
        if usable && let Some(dot) = self.dot_before(it.property.span.start as usize) {
            self.insertions.push((dot, Cow::Borrowed("?")));
        }
        walk::walk_static_member_expression(self, it);
    }

    fn visit_computed_member_expression(&mut self, it: &ComputedMemberExpression<'a>) {
        let usable = !it.optional
            && !matches!(it.object, Expression::Super(_))
            && !self.is_excluded(it.span);
        if usable && let Some(bracket) = self.bracket_after(it.object.span().end as usize) {
            self.insertions.push((bracket, Cow::Borrowed("?.")));
        }
        walk::walk_computed_member_expression(self, it);
    }
}

/// The target of `loadTo(target, …)` when it is a string literal or a template literal without
/// substitutions.
fn literal_target(argument: &Argument<'_>) -> Option<String> {
    match argument {
        Argument::StringLiteral(literal) => Some(literal.value.as_str().to_owned()),
        Argument::TemplateLiteral(literal) => literal
            .single_quasi()
            .map(|cooked| cooked.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_and_top_level_functions_are_recorded_with_their_byte_ranges() {
        let source = "'use strict';\nvar a = 1;\nfunction helper() { return 2; }\nloadToX({});";
        let parsed_script = parse_script(source, LoadForm::Etl).unwrap();
        let ranges: Vec<&str> = parsed_script
            .declarations
            .iter()
            .map(|it| &source[it.start..it.end])
            .collect();
        assert_eq!(ranges, ["'use strict';", "function helper() { return 2; }"]);
    }

    #[test]
    fn load_to_references_that_are_not_calls_still_get_a_global() {
        let parsed_script = parse_script("var f = loadToUsers; f({});", LoadForm::Etl).unwrap();
        assert_eq!(parsed_script.load_to_functions, ["loadToUsers"]);
        assert!(parsed_script.analysis.load_targets.is_empty());
    }

    #[test]
    fn load_results_are_used_unless_every_call_is_a_statement() {
        for (script, used) in [
            (
                "loadToX({a: 1}); if (this.A) loadTo('Y', {}); else { loadToZ({}); }",
                false,
            ),
            ("for (var l of this.Lines) loadToL({p: l.P});", false),
            ("loadToX({n: loadToY({})});", true),
            (
                "var r = loadToX({}); r.addAttachment(loadAttachment('a'));",
                true,
            ),
            ("loadToX({}).addAttachment('a', loadAttachment('a'));", true),
            ("var f = loadToX; f({});", true),
            ("this.Lines.forEach(l => loadToL(l));", true),
            ("globalThis.loadToX({});", true),
            ("globalThis['loadTo']('X', {});", true),
            ("(loadToX({}));", true),
            ("eval('var r = loadToX({})');", true),
            ("var g = this.A ? 'x' : `${'y'}loadTo`; loadToX({});", true),
            ("loadToX({s: 'Load to X'});", false),
        ] {
            let parsed_script = parse_script(script, LoadForm::Etl).unwrap();
            assert_eq!(parsed_script.load_results_used, used, "{script}");
        }
    }

    #[test]
    fn behavior_names_need_a_collection() {
        assert_eq!(
            delete_behavior_collection("deleteDocumentsOfUsersBehavior"),
            Some("Users")
        );
        assert_eq!(
            delete_behavior_collection("deleteDocumentsOfBehavior"),
            None
        );
        assert_eq!(delete_behavior_collection("deleteDocumentsBehavior"), None);
    }
}
