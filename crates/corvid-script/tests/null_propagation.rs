//! RavenDB's null propagation (spec §9): member access on null or undefined yields nothing
//! instead of throwing, so scripts written for RavenDB run unchanged. Corvid compiles member
//! accesses as optional chaining; assignments and `new` keep working, a missing method still
//! throws, and error positions are those of the script as written. Names the script never
//! declares read as null, as RavenDB 4.1's test endpoint showed (`typeof` of one is still
//! `'undefined'`, and calling one yields nothing).
#![allow(clippy::unwrap_used)]

use corvid_script::{DocumentInput, NoDocuments, ScriptOptions, ScriptRuntime, TransformError};

const DOC: &str =
    r#"{"Name":"Ann","Nested":{"X":1},"Arr":[{"Y":2}],"@metadata":{"@id":"users/1"}}"#;

fn run(script: &str) -> Result<Vec<String>, TransformError> {
    let mut runtime = ScriptRuntime::new(script, ScriptOptions::default()).unwrap();
    let input = DocumentInput {
        id: "users/1",
        collection: "Users",
        json: DOC,
        attachments: &[],
    };
    runtime
        .transform(&input, &mut NoDocuments)
        .map(|output| output.loads.into_iter().map(|it| it.json).collect())
}

#[test]
fn missing_members_are_null() {
    let loads = run(
        "loadToX({A: this.Missing.Deep, B: this.Nested.X, C: this['Missing']['x'], \
                     D: this.Arr[5].Y, E: this.Arr[0].Y, F: this.Missing})",
    )
    .unwrap();
    assert_eq!(
        loads,
        [r#"{"A":null,"B":1,"C":null,"D":null,"E":2,"F":null}"#]
    );
}

#[test]
fn assignments_updates_and_new_still_work() {
    let loads = run(
        "var o = {}; o.a = 1; o.b = {}; o.b.c = 2; o['d'] = 3; o.n = 0; o.n++; o.n += 1;
                     var K = {F: function () { this.v = 7; }}; var made = new K.F();
                     for (o.key in {only: 1}) {}
                     loadToX({o: o, v: made.v, m: this.Missing.x})",
    )
    .unwrap();
    assert_eq!(
        loads,
        [r#"{"o":{"a":1,"b":{"c":2},"d":3,"n":2,"key":"only"},"v":7,"m":null}"#]
    );
}

#[test]
fn a_missing_method_still_throws() {
    let error = run("this.Name.noSuchMethod();").unwrap_err();
    assert!(error.to_string().contains("not a function"), "{error}");
}

#[test]
fn error_positions_are_those_of_the_script_as_written() {
    // Four member accesses before the throw on the same line, one on the line before;
    // QuickJS points at `Error`, column 53 as written (57 in the compiled text).
    let script = "var first = this.Nested.X;\nvar v = this.Name.length + this.Nested.X; throw new Error('boom');";
    let error = run(script).unwrap_err();
    assert_eq!(
        error.to_string(),
        "script failed: Error: boom (line 2, column 53)"
    );
}

/// What RavenDB 4.1's `/admin/etl/raven/test` answered for the same script:
/// `{"A":null,"B":"undefined","C":true,"D":false,"E":null,"F":null,"G":null}`.
#[test]
fn undeclared_names_are_null_as_in_ravendb() {
    let loads = run("var x = Undeclared.Foo;
         loadToX({A: Undeclared, B: typeof Undeclared, C: Undeclared === null,
                  D: Undeclared === undefined, E: missingFn(1), F: x, G: Undeclared['k']})")
    .unwrap();
    assert_eq!(
        loads,
        [r#"{"A":null,"B":"undefined","C":true,"D":false,"E":null,"F":null,"G":null}"#]
    );
}

#[test]
fn declared_and_global_names_are_untouched() {
    let loads = run("function twice(v) { return v * 2; }
         var declared = 2; var later;
         implicitGlobal = 5;
         var shorthand = {Math};
         loadToX({A: twice(declared), B: typeof Math, C: Math.max(1, 3), D: later,
                  E: implicitGlobal, F: typeof shorthand.Math, G: parseInt('7'),
                  H: isNaN(NaN), I: typeof declared})")
    .unwrap();
    assert_eq!(
        loads,
        [r#"{"A":4,"B":"object","C":3,"D":null,"E":5,"F":"object","G":7,"H":true,"I":"number"}"#]
    );
}

#[test]
fn an_undeclared_name_does_not_hide_an_error_after_it() {
    // The rewrite keeps error positions: the throw is reported where it was written.
    let error = run("var a = Undeclared;\nvar b = Missing; throw new Error('boom');").unwrap_err();
    assert_eq!(
        error.to_string(),
        "script failed: Error: boom (line 2, column 28)"
    );
}
