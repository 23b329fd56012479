//! Static analysis of scripts (spec §1.3): a real parse, so strings, comments, template literals
//! and regex literals never count as calls.

#![allow(clippy::unwrap_used)]

use corvid_script::{ScriptAnalysis, ScriptError, analyze};

fn targets(script: &str) -> Vec<String> {
    analyze(script).unwrap().load_targets
}

fn syntax_error(script: &str) -> (u32, u32) {
    match analyze(script) {
        Err(ScriptError::Syntax { line, column, .. }) => (line, column),
        other => panic!("expected a syntax error for {script:?}, got {other:?}"),
    }
}

#[test]
fn load_targets_are_listed_in_order_of_first_appearance() {
    assert_eq!(
        targets("loadToOrders({}); loadToLines({}); loadToOrders({}); loadToAudit({});"),
        ["Orders", "Lines", "Audit"]
    );
}

#[test]
fn both_load_to_forms_name_targets() {
    assert_eq!(
        targets(
            "loadTo('dbo.Orders', {}); loadToPeople({}); loadTo(\"order-lines\", {}); loadTo(`Tpl`, {});"
        ),
        ["dbo.Orders", "People", "order-lines", "Tpl"]
    );
}

#[test]
fn load_targets_are_deduplicated_case_sensitively() {
    assert_eq!(
        targets("loadToUsers({}); loadTousers({}); loadTo('Users', {});"),
        ["Users", "users"]
    );
}

#[test]
fn load_to_with_a_computed_name_names_no_target() {
    assert!(targets("var name = 'X'; loadTo(name, {}); loadTo(`A${name}`, {});").is_empty());
}

#[test]
fn strings_comments_templates_and_regexes_do_not_count() {
    let script = r#"
        // loadToComment({})
        /* loadToBlock({}) */
        var s = "loadToDouble({})" + 'loadToSingle({})';
        var t = `loadToTemplate({}) ${ "loadToInside({})" } loadTo('Tpl', {})`;
        var r = /loadToRegex\(/g;
        var d = 4 / 2 / 1; // division, not a regex: loadToAfterDivision({})
        var o = { loadToKey: 1 };
        o.loadToMember({});
        loadToReal({});
    "#;
    let analysis = analyze(script).unwrap();
    assert_eq!(analysis.load_targets, ["Real"]);
    assert!(!analysis.uses_load_attachment);
    assert!(!analysis.uses_add_attachment);
}

#[test]
fn calls_inside_functions_and_template_substitutions_count() {
    assert_eq!(
        targets("function send(o) { return loadToA(o); }\nvar t = `${loadToB({})}`;"),
        ["A", "B"]
    );
}

#[test]
fn attachment_functions_are_detected() {
    let analysis =
        analyze("var d = loadToPeople({}); d.addAttachment('x', loadAttachment('photo'));")
            .unwrap();
    assert!(analysis.uses_load_attachment);
    assert!(analysis.uses_add_attachment);
    let in_strings = analyze("var s = 'loadAttachment addAttachment'; loadToX({});").unwrap();
    assert!(!in_strings.uses_load_attachment);
    assert!(!in_strings.uses_add_attachment);
}

#[test]
fn behavior_functions_are_found_at_top_level_only() {
    let analysis = analyze(
        "function deleteDocumentsOfUsersBehavior(id, deleted) { return true; }\n\
         function deleteDocumentsOfOrdersBehavior(id) { return false; }\n\
         function deleteDocumentsBehavior(id, collection) { return false; }\n\
         function helper() { function deleteDocumentsOfNestedBehavior() {} }\n\
         var deleteDocumentsOfVarBehavior = function () {};",
    )
    .unwrap();
    assert_eq!(analysis.delete_behaviors, ["Users", "Orders"]);
    assert!(analysis.has_generic_delete_behavior);
}

#[test]
fn whitespace_and_comments_only_is_empty() {
    assert!(analyze("").unwrap().is_empty);
    assert!(analyze(" \n // nothing\n /* at all */ ").unwrap().is_empty);
    assert!(!analyze(";").unwrap().is_empty);
    assert!(!analyze("'use strict';").unwrap().is_empty);
}

#[test]
fn a_plain_script_has_nothing_to_report() {
    assert_eq!(
        analyze("var x = this.Name;").unwrap(),
        ScriptAnalysis {
            is_empty: false,
            has_load_to: false,
            load_targets: Vec::new(),
            uses_load_attachment: false,
            uses_add_attachment: false,
            delete_behaviors: Vec::new(),
            has_generic_delete_behavior: false,
        }
    );
}

#[test]
fn any_load_to_call_or_reference_counts_as_loading() {
    for (script, loads) in [
        ("loadToX({});", true),
        ("loadTo(this.Kind, {});", true),
        ("var f = loadToX; f({});", true),
        ("this.Total = 10;", false),
        (
            "function deleteDocumentsOfOrdersBehavior(id) { return false; }",
            false,
        ),
        ("var s = 'loadToX({})'; // loadToY({})", false),
    ] {
        assert_eq!(analyze(script).unwrap().has_load_to, loads, "{script}");
    }
}

/// Issue 18, finding 5: a 100 KB member chain, saved as an ETL script, overflowed the stack of
/// the thread that analysed it (and so aborted the server); chains of every kind are refused
/// quickly, on a thread with an ordinary 2 MiB stack.
#[test]
fn long_member_and_call_chains_are_refused_quickly_on_a_small_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            for chain in [".a", "[0]", ".f()", " + 1"] {
                let body = chain.repeat(100_000 / chain.len());
                let script = format!("loadToX({{v: this{body}}});");
                let error = analyze(&script).unwrap_err().to_string();
                assert!(error.contains("levels deep"), "{chain}: {error}");
            }
            // A long but shallow script is fine.
            let script = "loadToX({v: this.a.b.c});\n".repeat(3000);
            assert!(analyze(&script).is_ok());
        })
        .unwrap();
    handle.join().unwrap();
}

#[test]
fn top_level_return_is_allowed() {
    assert_eq!(targets("if (!this.Active) return;\nloadToX({});"), ["X"]);
}

#[test]
fn syntax_errors_carry_line_and_column() {
    assert_eq!(syntax_error("loadToX({});\nvar = 5;"), (2, 5));
    assert_eq!(syntax_error("loadToX({a: 1,, });"), (1, 15));
    assert_eq!(syntax_error("var s = 'unterminated;\nloadToX({});"), (1, 9));
    assert_eq!(syntax_error("var é = 'ü'; )"), (1, 14));
}

#[test]
fn syntax_error_message_says_what_is_wrong() {
    let error = analyze("var = 5;").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("syntax error at line 1, column 5: "),
        "{error}"
    );
}

#[test]
fn replicate_to_is_rejected_with_a_migration_hint() {
    assert_eq!(
        analyze("replicateToOrders({});"),
        Err(ScriptError::Invalid {
            message: "`replicateToOrders` is RavenDB 3.x syntax and is not supported: use `loadToOrders` instead".to_owned()
        })
    );
}
