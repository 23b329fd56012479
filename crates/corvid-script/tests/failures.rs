//! Scripts that fail, and the runtime carrying on with the next document.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{input, render};
use corvid_script::{NoDocuments, ScriptError, ScriptOptions, ScriptRuntime, TransformError};

const MODES_SCRIPT: &str = "\
var mode = this.Mode;
if (mode === 'throw') throw new Error('boom');
if (mode === 'throw-string') throw 'plain string';
if (mode === 'undefined-function') notAFunction(this);
if (mode === 'null-member') this.Missing.Name;
if (mode === 'loop') while (true) {}
if (mode === 'swallowed-loop') while (true) { try { while (true) {} } catch (e) {} finally { continue; } }
if (mode === 'regex') /(a+)+b/.test('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
if (mode === 'memory') { var a = []; while (true) a.push(new Array(1e6).fill(1)); }
if (mode === 'string-memory') { var s = []; while (true) s.push('x'.repeat(1 << 20) + s.length); }
if (mode === 'caught-memory') { var b = []; try { while (true) b.push(new Array(1e6).fill(1)); } catch (e) {} while (true) b.push(new Array(1e6).fill(1)); }
if (mode === 'recurse') (function down(n) { return down(n + 1) + 1; })(0);
if (mode === 'array') loadToX([1, 2]);
if (mode === 'number') loadToX(5);
if (mode === 'undefined') loadToX();
if (mode === 'date') loadToX(new Date(0));
if (mode === 'cycle') { var c = {}; c.self = c; loadToX(c); }
if (mode === 'bigint') loadToX({Big: 1n});
if (mode === 'caught-invalid') { try { loadToX('text'); } catch (e) {} }
loadToX({Mode: mode});
";

fn doc(mode: &str) -> String {
    format!(r#"{{"Mode":"{mode}","@metadata":{{"@id":"users/1"}}}}"#)
}

fn options() -> ScriptOptions {
    ScriptOptions {
        time_budget: Duration::from_millis(100),
        memory_limit_bytes: 16 * 1024 * 1024,
        max_stack_bytes: 256 * 1024,
        ..ScriptOptions::default()
    }
}

/// Runs `mode` then `ok` on the same runtime; returns the first error.
fn fail_then_recover(runtime: &mut ScriptRuntime, mode: &str) -> TransformError {
    let bad_doc = doc(mode);
    let res = runtime.transform(&input(&bad_doc, &[]), &mut NoDocuments);
    let Err(error) = res else {
        panic!("mode {mode} succeeded: {}", render(&res));
    };
    let good_doc = doc("ok");
    let res = runtime.transform(&input(&good_doc, &[]), &mut NoDocuments);
    assert_eq!(render(&res), r#"X {"Mode":"ok"}"#, "after mode {mode}");
    error
}

fn script_error(mode: &str) -> String {
    let mut runtime = ScriptRuntime::new(MODES_SCRIPT, options()).unwrap();
    match fail_then_recover(&mut runtime, mode) {
        TransformError::Script { message } => message,
        other => panic!("mode {mode}: expected a script error, got {other:?}"),
    }
}

#[test]
fn throw_is_a_script_error_with_message_and_position() {
    assert_eq!(script_error("throw"), "Error: boom (line 2, column 33)");
    assert_eq!(
        script_error("throw-string"),
        "uncaught string: plain string"
    );
}

#[test]
fn calling_an_undeclared_function_or_a_member_of_undefined_is_not_an_error() {
    // RavenDB's null propagation: an undeclared name is null, calling it yields nothing.
    for mode in ["undefined-function", "null-member"] {
        let mut runtime = ScriptRuntime::new(MODES_SCRIPT, options()).unwrap();
        let document = doc(mode);
        let output = runtime
            .transform(&input(&document, &[]), &mut NoDocuments)
            .unwrap();
        assert_eq!(output.loads[0].json, format!(r#"{{"Mode":"{mode}"}}"#));
    }
}

#[test]
fn deep_recursion_is_a_script_error_not_a_crash() {
    let message = script_error("recurse");
    assert!(
        message.starts_with("RangeError: Maximum call stack size exceeded (line 12"),
        "{message}"
    );
}

#[test]
fn endless_loop_times_out_within_the_budget() {
    let mut runtime = ScriptRuntime::new(MODES_SCRIPT, options()).unwrap();
    for mode in ["loop", "swallowed-loop", "regex"] {
        let bad_doc = doc(mode);
        let started = Instant::now();
        let res = runtime.transform(&input(&bad_doc, &[]), &mut NoDocuments);
        let elapsed = started.elapsed();
        assert_eq!(
            res,
            Err(TransformError::Timeout {
                budget: Duration::from_millis(100)
            }),
            "mode {mode}"
        );
        // ~budget + 50 ms on an idle machine; the margin absorbs a loaded 2-core CI box.
        assert!(
            elapsed < Duration::from_millis(400),
            "mode {mode} took {elapsed:?}"
        );
        let good_doc = doc("ok");
        let res = runtime.transform(&input(&good_doc, &[]), &mut NoDocuments);
        assert_eq!(render(&res), r#"X {"Mode":"ok"}"#, "after mode {mode}");
    }
}

#[test]
fn memory_bomb_is_out_of_memory_not_an_abort() {
    let mut runtime = ScriptRuntime::new(MODES_SCRIPT, options()).unwrap();
    for mode in ["memory", "string-memory", "caught-memory"] {
        let error = fail_then_recover(&mut runtime, mode);
        assert_eq!(
            error,
            TransformError::OutOfMemory {
                limit_bytes: 16 * 1024 * 1024
            },
            "mode {mode}"
        );
    }
}

#[test]
fn loading_something_that_is_not_an_object_is_invalid_output() {
    let mut runtime = ScriptRuntime::new(MODES_SCRIPT, options()).unwrap();
    for (mode, expected) in [
        (
            "array",
            "loadToX: expected an object, got array serialized as [1,2]",
        ),
        (
            "number",
            "loadToX: expected an object, got number serialized as 5",
        ),
        ("undefined", "loadToX: expected an object, got undefined"),
        (
            "date",
            r#"loadToX: expected an object, got object serialized as "1970-01-01T00:00:00.000Z""#,
        ),
        (
            "cycle",
            "loadToX: the object cannot be serialized to JSON: circular reference",
        ),
        (
            "bigint",
            "loadToX: the object cannot be serialized to JSON: BigInt are forbidden in JSON.stringify",
        ),
        (
            "caught-invalid",
            r#"loadToX: expected an object, got string serialized as "text""#,
        ),
    ] {
        let error = fail_then_recover(&mut runtime, mode);
        assert_eq!(
            error,
            TransformError::InvalidOutput {
                message: expected.to_owned()
            },
            "mode {mode}"
        );
    }
}

#[test]
fn input_that_is_not_a_json_object_is_invalid_input() {
    let mut runtime = ScriptRuntime::new("loadToX({});", options()).unwrap();
    for (json, expected) in [
        ("[1]", "the document is a JSON array"),
        (
            "{oops",
            "SyntaxError: Expected property name or '}' in JSON at position 1 (line 1 column 2)",
        ),
    ] {
        let res = runtime.transform(&input(json, &[]), &mut NoDocuments);
        assert_eq!(
            res,
            Err(TransformError::InvalidInput {
                id: "users/1".to_owned(),
                message: expected.to_owned()
            })
        );
    }
    let res = runtime.transform(&input("{}", &[]), &mut NoDocuments);
    assert_eq!(render(&res), "X {}");
}

#[test]
fn behavior_functions_have_the_same_time_budget() {
    let mut runtime = ScriptRuntime::new(
        "loadToX({});\nfunction deleteDocumentsBehavior(id) { if (id === 'loop') while (true) {} return true; }",
        options(),
    )
    .unwrap();
    let looping = runtime.delete_behavior("Users", "loop", true, &mut NoDocuments);
    assert_eq!(
        looping,
        Err(TransformError::Timeout {
            budget: Duration::from_millis(100)
        })
    );
    let normal = runtime.delete_behavior("Users", "users/1", true, &mut NoDocuments);
    assert_eq!(normal, Ok(Some(true)));
}

#[test]
fn syntax_errors_only_quickjs_finds_are_syntax_errors_too() {
    // oxc leaves redeclaration checks to semantic analysis; QuickJS reports them at compile time.
    let res = ScriptRuntime::new("loadToX({});\nlet a; let a;", ScriptOptions::default());
    let Err(ScriptError::Syntax { line, message, .. }) = res else {
        panic!("expected a syntax error, got {res:?}");
    };
    assert_eq!(line, 2);
    assert_eq!(message, "invalid redefinition of lexical identifier");
}

#[test]
fn a_memory_limit_too_small_for_the_script_is_an_engine_error() {
    let res = ScriptRuntime::new(
        "loadToX({});",
        ScriptOptions {
            memory_limit_bytes: 64 * 1024,
            ..ScriptOptions::default()
        },
    );
    assert!(matches!(res, Err(ScriptError::Engine { .. })), "{res:?}");
}

#[test]
fn deeply_nested_scripts_are_refused_not_a_crash() {
    for (open, close) in [("(", ")"), ("[", "]"), ("!", ""), ("a => ", "")] {
        let script = format!(
            "var x = {}1{};",
            open.repeat(100_000),
            close.repeat(100_000)
        );
        let res = ScriptRuntime::new(&script, ScriptOptions::default());
        assert!(
            matches!(
                res,
                Err(ScriptError::Invalid { .. } | ScriptError::Syntax { .. })
            ),
            "nesting {open}: {res:?}"
        );
    }
    let too_large = " ".repeat(corvid_script::MAX_SCRIPT_BYTES + 1);
    assert!(matches!(
        corvid_script::analyze(&too_large),
        Err(ScriptError::Invalid { .. })
    ));
}

#[test]
fn deeply_nested_input_and_output_fail_the_document_not_the_process() {
    let mut runtime = ScriptRuntime::new(
        "if (this.Deep === 'out') { var o = {}; for (var i = 0; i < 100000; i++) o = {o: o}; loadToX(o); }\n\
         loadToX({Ok: true});",
        // Building 100,000 objects is not what is tested: a budget that a debug build on a
        // loaded machine cannot run out of, so the depth limit is what stops the script.
        ScriptOptions {
            time_budget: Duration::from_secs(30),
            ..ScriptOptions::default()
        },
    )
    .unwrap();
    let deep_input = format!(
        r#"{{"Deep":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let res = runtime.transform(&input(&deep_input, &[]), &mut NoDocuments);
    assert!(
        matches!(res, Err(TransformError::InvalidInput { .. })),
        "{res:?}"
    );
    let res = runtime.transform(&input(r#"{"Deep":"out"}"#, &[]), &mut NoDocuments);
    assert!(
        matches!(&res, Err(TransformError::Script { message }) if message.starts_with("RangeError: Maximum call stack size exceeded")),
        "{res:?}"
    );
    let res = runtime.transform(&input("{}", &[]), &mut NoDocuments);
    assert_eq!(render(&res), r#"X {"Ok":true}"#);
}
