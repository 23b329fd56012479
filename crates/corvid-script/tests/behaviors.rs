//! Delete behaviour functions (spec §2.5).

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHost, USER, input, render};
use corvid_script::{NoDocuments, ScriptOptions, ScriptRuntime};

const HISTORY_SCRIPT: &str = "\
loadToUsersHistory({Name: this.First});
function deleteDocumentsOfUsersBehavior(docId, deleted) {
    return deleted;
}";

fn runtime(script: &str) -> ScriptRuntime {
    ScriptRuntime::new(script, ScriptOptions::default()).unwrap()
}

#[test]
fn collection_behavior_receives_the_deleted_flag() {
    let mut runtime = runtime(HISTORY_SCRIPT);
    assert_eq!(runtime.analysis().delete_behaviors, ["Users"]);
    let on_delete = runtime.delete_behavior("Users", "users/1", true, &mut NoDocuments);
    let on_update = runtime.delete_behavior("Users", "users/1", false, &mut NoDocuments);
    assert_eq!(on_delete, Ok(Some(true)));
    assert_eq!(on_update, Ok(Some(false)));
}

#[test]
fn collection_behavior_matches_the_collection_case_insensitively() {
    let mut runtime = runtime(HISTORY_SCRIPT);
    let res = runtime.delete_behavior("users", "users/1", true, &mut NoDocuments);
    assert_eq!(res, Ok(Some(true)));
}

#[test]
fn generic_behavior_receives_the_collection() {
    let mut runtime = runtime(
        "loadToX({});\n\
         function deleteDocumentsBehavior(docId, collection, deleted) {\n\
             return collection === 'Orders' && deleted === true && docId === 'orders/1';\n\
         }",
    );
    assert!(runtime.analysis().has_generic_delete_behavior);
    let orders = runtime.delete_behavior("Orders", "orders/1", true, &mut NoDocuments);
    let users = runtime.delete_behavior("Users", "orders/1", true, &mut NoDocuments);
    let update = runtime.delete_behavior("Orders", "orders/1", false, &mut NoDocuments);
    assert_eq!(orders, Ok(Some(true)));
    assert_eq!(users, Ok(Some(false)));
    assert_eq!(update, Ok(Some(false)));
}

#[test]
fn collection_behavior_wins_over_the_generic_one() {
    let mut runtime = runtime(
        "function deleteDocumentsOfUsersBehavior(docId) { return false; }\n\
         function deleteDocumentsBehavior(docId, collection) { return true; }",
    );
    let users = runtime.delete_behavior("Users", "users/1", true, &mut NoDocuments);
    let orders = runtime.delete_behavior("Orders", "orders/1", true, &mut NoDocuments);
    assert_eq!(users, Ok(Some(false)));
    assert_eq!(orders, Ok(Some(true)));
}

#[test]
fn without_a_matching_behavior_the_answer_is_none() {
    let mut runtime = runtime(HISTORY_SCRIPT);
    let res = runtime.delete_behavior("Orders", "orders/1", true, &mut NoDocuments);
    assert_eq!(res, Ok(None));
    let mut empty = runtime_of_empty_script();
    assert_eq!(
        empty.delete_behavior("Users", "users/1", true, &mut NoDocuments),
        Ok(None)
    );
}

fn runtime_of_empty_script() -> ScriptRuntime {
    runtime("")
}

#[test]
fn only_the_boolean_true_propagates_the_delete() {
    for (returned, expected) in [
        ("true", Some(true)),
        ("false", Some(false)),
        ("1", Some(false)),
        ("'true'", Some(false)),
        ("null", Some(false)),
        ("undefined", Some(false)),
        ("{}", Some(false)),
    ] {
        let script = format!("function deleteDocumentsBehavior() {{ return {returned}; }}");
        let mut runtime = runtime(&script);
        let res = runtime.delete_behavior("Users", "users/1", true, &mut NoDocuments);
        assert_eq!(res, Ok(expected), "returned {returned}");
    }
}

#[test]
fn behavior_can_load_a_marker_document() {
    let mut runtime = runtime(
        "function deleteDocumentsOfUsersBehavior(docId, deleted) {\n\
             return load('LocalOnlyDeletions/' + docId) === null;\n\
         }",
    );
    let mut host = TestHost::with(&[("LocalOnlyDeletions/users/2", "{}")]);
    let kept = runtime.delete_behavior("Users", "users/1", true, &mut host);
    let skipped = runtime.delete_behavior("Users", "users/2", true, &mut host);
    assert_eq!(kept, Ok(Some(true)));
    assert_eq!(skipped, Ok(Some(false)));
    assert_eq!(
        host.loaded_ids,
        ["LocalOnlyDeletions/users/1", "LocalOnlyDeletions/users/2"]
    );
}

#[test]
fn behavior_can_call_other_top_level_functions_but_not_run_the_body() {
    let mut runtime = runtime(
        "var threshold = 5;\n\
         output('body ran');\n\
         function isArchive(id) { return id.indexOf('archive/') === 0; }\n\
         function deleteDocumentsBehavior(docId) {\n\
             return !isArchive(docId) && typeof threshold === 'undefined';\n\
         }",
    );
    let res = runtime.delete_behavior("Users", "users/1", true, &mut NoDocuments);
    assert_eq!(res, Ok(Some(true)));
    let archive = runtime.delete_behavior("Users", "archive/1", true, &mut NoDocuments);
    assert_eq!(archive, Ok(Some(false)));
}

#[test]
fn behavior_that_throws_is_a_script_error_with_its_position() {
    let mut runtime = runtime(
        "loadToX({});\n\
         function deleteDocumentsBehavior(docId) {\n\
           throw new Error('no deletes for ' + docId);\n\
         }",
    );
    let res = runtime.delete_behavior("Users", "users/1", true, &mut NoDocuments);
    // QuickJS positions runtime errors on the last expression it evaluated, so only the line
    // is pinned down here.
    let message = res.unwrap_err().to_string();
    assert!(
        message.starts_with("script failed: Error: no deletes for users/1 (line 3, column "),
        "{message}"
    );
    // The body still works, with the behaviour function declared in its scope too.
    let res = runtime.transform(&input(USER, &[]), &mut NoDocuments);
    assert_eq!(render(&res), "X {}");
}

#[test]
fn behaviors_nested_in_blocks_are_not_behaviors() {
    let runtime = runtime(
        "if (true) { function deleteDocumentsBehavior() { return true; } }\n\
         (function () { function deleteDocumentsOfUsersBehavior() { return true; } })();",
    );
    assert!(!runtime.analysis().has_generic_delete_behavior);
    assert!(runtime.analysis().delete_behaviors.is_empty());
}

#[test]
fn behavior_runs_without_this_and_keeps_the_strict_directive() {
    let mut strict = runtime(
        "'use strict';\nloadToX({});\nfunction deleteDocumentsBehavior() { return this === undefined; }",
    );
    let mut sloppy =
        runtime("loadToX({});\nfunction deleteDocumentsBehavior() { return this === globalThis; }");
    let strict_answer = strict.delete_behavior("Users", "users/1", true, &mut NoDocuments);
    let sloppy_answer = sloppy.delete_behavior("Users", "users/1", true, &mut NoDocuments);
    assert_eq!(strict_answer, Ok(Some(true)));
    assert_eq!(sloppy_answer, Ok(Some(true)));
}
