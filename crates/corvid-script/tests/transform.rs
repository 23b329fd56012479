//! Script semantics on single documents: host functions, fan-out, filtering, isolation.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHost, USER, attachment, check, check_with, input, render};
use corvid_script::{NoDocuments, ScriptOptions, ScriptRuntime};

#[test]
fn load_to_sends_the_object_built_from_this() {
    check(
        "loadToPeople({Name: this.First + ' ' + this.Last, Age: this.Age});",
        USER,
        r#"People {"Name":"Ada Lovelace","Age":36}"#,
    );
}

#[test]
fn load_to_string_form_takes_names_that_are_not_identifiers() {
    check(
        "loadTo('dbo.People-2024', {Name: this.First}); loadTo(\"Other\", {}); loadTo(`Tpl`, {});",
        USER,
        r#"
dbo.People-2024 {"Name":"Ada"}
Other {}
Tpl {}
"#,
    );
}

#[test]
fn load_to_with_a_computed_name_uses_the_string_form() {
    check(
        "var target = 'Archive' + this.Age; loadTo(target, {Id: id(this)});",
        USER,
        r#"Archive36 {"Id":"users/1"}"#,
    );
}

#[test]
fn arguments_after_the_object_are_handed_over_as_json() {
    // Queue ETL: RabbitMQ's routing key and the CloudEvents attributes.
    check(
        "loadToOrders({Who: this.First}, {Id: id(this), Type: 'x'});\n\
         loadTo('', {A: 1}, 'key');\n\
         loadToOrders({B: 2}, 'rk', {Subject: this.Last});\n\
         loadToOrders({C: 3});",
        USER,
        r#"
Orders {"Who":"Ada"} +[{"Id":"users/1","Type":"x"}]
 {"A":1} +["key"]
Orders {"B":2} +["rk",{"Subject":"Lovelace"}]
Orders {"C":3}
"#,
    );
    // The direct interpreter leaves such calls to QuickJS instead of dropping them.
    let mut runtime = ScriptRuntime::new(
        "loadToOrders({N: this.Age}, {Type: 't'});",
        ScriptOptions::default(),
    )
    .unwrap();
    let res = runtime.transform(&input(USER, &[]), &mut TestHost::default());
    assert_eq!(render(&res), r#"Orders {"N":36} +[{"Type":"t"}]"#);
}

#[test]
fn several_load_to_calls_fan_out_in_call_order() {
    check(
        "loadToOrders({Who: this.First});\n\
         for (var i = 0; i < this.Tags.length; i++) loadToOrderLines({Tag: this.Tags[i], Line: i});\n\
         loadToOrders({Who: this.Last});",
        USER,
        r#"
Orders {"Who":"Ada"}
OrderLines {"Tag":"math","Line":0}
OrderLines {"Tag":"code","Line":1}
Orders {"Who":"Lovelace"}
"#,
    );
}

#[test]
fn a_document_the_script_does_not_load_is_filtered_out() {
    check(
        "if (this.Age > 40) loadToOld({Name: this.First});",
        USER,
        "",
    );
}

#[test]
fn top_level_return_ends_the_script() {
    check(
        "if (this.Age < 40) return;\nloadToOld({Name: this.First});",
        USER,
        "",
    );
}

#[test]
fn this_includes_the_metadata_and_can_be_sent_whole() {
    check(
        "delete this.Tags; this.Age++; loadToUsers(this);",
        USER,
        r#"Users {"First":"Ada","Last":"Lovelace","Age":37,"@metadata":{"@id":"users/1","@collection":"Users","Custom":"x"}}"#,
    );
}

#[test]
fn id_and_get_metadata_read_the_metadata() {
    check(
        "var m = getMetadata(this); loadToX({Id: id(this), Custom: m.Custom, \
         None: id({}), NoMeta: getMetadata({a: 1}), Nothing: id(null)});",
        USER,
        r#"X {"Id":"users/1","Custom":"x","None":null,"NoMeta":null,"Nothing":null}"#,
    );
}

#[test]
fn load_returns_the_host_document_or_null() {
    let mut host = TestHost::with(&[(
        "companies/1",
        r#"{"Name":"Analytical Engines","@metadata":{"@id":"companies/1"}}"#,
    )]);
    check_with(
        "var company = load('companies/1'); var missing = load('companies/2');\n\
         loadToX({Company: company.Name, CompanyId: id(company), Missing: missing, NullId: load(null)});",
        USER,
        &[],
        &mut host,
        r#"X {"Company":"Analytical Engines","CompanyId":"companies/1","Missing":null,"NullId":null}"#,
    );
    assert_eq!(host.loaded_ids, ["companies/1", "companies/2"]);
}

#[test]
fn load_of_invalid_json_from_the_host_is_a_script_error() {
    let mut host = TestHost::with(&[("bad/1", "{not json")]);
    check_with(
        "load('bad/1');",
        USER,
        &[],
        &mut host,
        "error: script failed: Error: load: document `bad/1` is not valid JSON: Expected property name or '}' in JSON at position 1 (line 1 column 2) (line 1, column 1)",
    );
}

#[test]
fn get_attachments_lists_the_current_document_attachments() {
    let attachments = [
        attachment("photo.jpg", "image/jpeg", 1024),
        attachment("cv.pdf", "application/pdf", 7),
    ];
    check_with(
        "loadToX({All: getAttachments(), Has: hasAttachment('cv.pdf'), HasNot: hasAttachment('x')});",
        USER,
        &attachments,
        &mut TestHost::default(),
        r#"X {"All":[{"Name":"photo.jpg","Hash":"hash-of-photo.jpg","ContentType":"image/jpeg","Size":1024},{"Name":"cv.pdf","Hash":"hash-of-cv.pdf","ContentType":"application/pdf","Size":7}],"Has":true,"HasNot":false}"#,
    );
}

#[test]
fn load_attachment_returns_a_reference_or_null() {
    check_with(
        "loadToX({Present: loadAttachment('photo.jpg'), Missing: loadAttachment('nope')});",
        USER,
        &[attachment("photo.jpg", "image/jpeg", 1)],
        &mut TestHost::default(),
        r#"X {"Present":"$attachment/photo.jpg","Missing":null}"#,
    );
}

#[test]
fn add_attachment_with_one_argument_keeps_the_source_name() {
    check_with(
        "var doc = loadToPeople({Name: this.First}); doc.addAttachment(loadAttachment('photo.jpg'));",
        USER,
        &[attachment("photo.jpg", "image/jpeg", 1)],
        &mut TestHost::default(),
        r#"
People {"Name":"Ada"}
  attachment photo.jpg <- photo.jpg
"#,
    );
}

#[test]
fn add_attachment_with_two_arguments_renames_at_the_destination() {
    check_with(
        "var a = loadToA({}); var b = loadToB({});\n\
         b.addAttachment('avatar.jpg', loadAttachment('photo.jpg'));\n\
         a.addAttachment('resume', loadAttachment('cv.pdf'));\n\
         a.addAttachment(loadAttachment('photo.jpg'));",
        USER,
        &[
            attachment("photo.jpg", "image/jpeg", 1),
            attachment("cv.pdf", "application/pdf", 2),
        ],
        &mut TestHost::default(),
        r#"
A {}
  attachment resume <- cv.pdf
  attachment photo.jpg <- photo.jpg
B {}
  attachment avatar.jpg <- photo.jpg
"#,
    );
}

#[test]
fn add_attachment_of_a_missing_attachment_adds_nothing() {
    check_with(
        "var doc = loadToPeople({}); doc.addAttachment(loadAttachment('nope'));\n\
         doc.addAttachment('renamed', loadAttachment('nope')); doc.addAttachment('$attachment/nope');",
        USER,
        &[attachment("photo.jpg", "image/jpeg", 1)],
        &mut TestHost::default(),
        "People {}",
    );
}

#[test]
fn add_attachment_rejects_something_that_is_not_a_reference() {
    check(
        "loadToPeople({}).addAttachment('photo.jpg');",
        USER,
        "error: script failed: TypeError: addAttachment: expected an attachment reference returned by loadAttachment() (line 1, column 17)",
    );
}

#[test]
fn output_joins_its_arguments_with_spaces() {
    check(
        "output('age', this.Age, {a: [1]}, null, undefined, true); output(); loadToX({});",
        USER,
        r#"
X {}
output age 36 {"a":[1]} null undefined true
output 
"#,
    );
}

#[test]
fn varchar_and_nvarchar_build_typed_sql_values() {
    check(
        "loadToUsers({A: varchar(this.First), B: nvarchar(this.Last, 100), C: varchar(null, 3)});",
        USER,
        r#"Users {"A":{"Type":"AnsiString","Value":"Ada","Size":50},"B":{"Type":"String","Value":"Lovelace","Size":100},"C":{"Type":"AnsiString","Value":null,"Size":3}}"#,
    );
}

#[test]
fn helper_functions_declared_at_top_level_are_callable_from_the_body() {
    check(
        "loadToX({Full: fullName(this)});\nfunction fullName(doc) { return doc.First + ' ' + doc.Last; }",
        USER,
        r#"X {"Full":"Ada Lovelace"}"#,
    );
}

#[test]
fn a_load_to_function_passed_around_still_loads() {
    check(
        "var send = loadToPeople; send({Name: this.First});",
        USER,
        r#"People {"Name":"Ada"}"#,
    );
}

#[test]
fn load_to_takes_a_snapshot_at_the_time_of_the_call() {
    check(
        "var o = {V: 1}; loadToX(o); o.V = 2; loadToX(o);",
        USER,
        r#"
X {"V":1}
X {"V":2}
"#,
    );
}

#[test]
fn json_values_follow_json_stringify() {
    check(
        "loadToX({When: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)), Nan: NaN, Inf: -Infinity, \
         Undef: undefined, Fn: function () {}, Nested: {Arr: [1, undefined, NaN]}});",
        USER,
        // A top-level undefined is null (as RavenDB writes it); a function is dropped.
        r#"X {"When":"2024-01-02T03:04:05.006Z","Nan":null,"Inf":null,"Undef":null,"Nested":{"Arr":[1,null,null]}}"#,
    );
}

#[test]
fn an_empty_script_returns_no_loads() {
    for script in ["", "   \n\t", "// only a comment\n/* and another */"] {
        let mut runtime = ScriptRuntime::new(script, ScriptOptions::default()).unwrap();
        assert!(runtime.analysis().is_empty);
        let output = runtime
            .transform(&input(USER, &[]), &mut NoDocuments)
            .unwrap();
        assert!(output.loads.is_empty());
    }
}

#[test]
fn vars_of_the_body_do_not_leak_between_documents() {
    let mut runtime = ScriptRuntime::new(
        "var seen; var count = (count || 0) + 1; loadToX({Seen: seen === undefined, Count: count}); seen = this.First;",
        ScriptOptions::default(),
    )
    .unwrap();
    for _ in 0..3 {
        let res = runtime.transform(&input(USER, &[]), &mut NoDocuments);
        assert_eq!(render(&res), r#"X {"Seen":true,"Count":1}"#);
    }
}

#[test]
fn changes_to_this_do_not_reach_the_next_document() {
    let mut runtime = ScriptRuntime::new(
        "this.First = this.First + '!'; loadToX({First: this.First});",
        ScriptOptions::default(),
    )
    .unwrap();
    for _ in 0..2 {
        let res = runtime.transform(&input(USER, &[]), &mut NoDocuments);
        assert_eq!(render(&res), r#"X {"First":"Ada!"}"#);
    }
}

#[test]
fn host_functions_cannot_be_overwritten_by_a_script() {
    let mut runtime = ScriptRuntime::new(
        "loadToX({}); loadToX = null; loadTo = null; output = null;",
        ScriptOptions::default(),
    )
    .unwrap();
    for _ in 0..2 {
        let res = runtime.transform(&input(USER, &[]), &mut NoDocuments);
        assert_eq!(render(&res), "X {}");
    }
}

#[test]
fn the_sandbox_has_no_host_modules() {
    check(
        "loadToX({Require: typeof require, Std: typeof std, Os: typeof os, Process: typeof process, \
         Fetch: typeof fetch, Import: typeof importScripts});",
        USER,
        r#"X {"Require":"undefined","Std":"undefined","Os":"undefined","Process":"undefined","Fetch":"undefined","Import":"undefined"}"#,
    );
}

#[test]
fn what_load_to_returns_is_a_fresh_object_when_the_script_keeps_it() {
    check(
        "var r = loadToX({n: 1}); r.seen = (r.seen || 0) + 1; output(r.seen); \
         var s = loadToX({n: 2}); output(s.seen === undefined, typeof s.addAttachment);",
        USER,
        r#"
X {"n":1}
X {"n":2}
output 1
output true function
"#,
    );
}
