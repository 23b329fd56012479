//! RavenDB's null propagation (spec §9): member access on null or undefined yields nothing
//! instead of throwing, so scripts written for RavenDB run unchanged. Corvid compiles member
//! accesses as optional chaining; assignments and `new` keep working, a missing method still
//! throws, and error positions are those of the script as written.
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
