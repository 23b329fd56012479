//! OLAP ETL scripts: `loadTo…` takes a partition key (`partitionBy(…)`, `noPartition()`) before
//! the object, and the load's one extra argument is the normalized key,
//! `[[["name","value"],…]]`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHost, USER, input, render};
use corvid_script::{OlapScriptOptions, ScriptOptions, ScriptRuntime, analyze};

fn olap_options(custom_partition_value: Option<&str>) -> ScriptOptions {
    ScriptOptions {
        olap: Some(OlapScriptOptions {
            custom_partition_value: custom_partition_value.map(str::to_owned),
        }),
        ..ScriptOptions::default()
    }
}

/// The rendering of the result, without the position of an error (QuickJS's to choose).
fn run(script: &str, doc: &str, options: ScriptOptions) -> String {
    let mut runtime = ScriptRuntime::new(script, options).unwrap();
    let res = runtime.transform(&input(doc, &[]), &mut TestHost::default());
    let mut rendered = render(&res);
    if res.is_err()
        && let Some(position) = rendered.rfind(" (line ")
    {
        rendered.truncate(position);
    }
    rendered
}

/// Runs `script` as an OLAP script on [`USER`] and compares the rendering with `expected`.
fn check(script: &str, expected: &str) {
    check_with(script, None, expected);
}

fn check_with(script: &str, custom_partition_value: Option<&str>, expected: &str) {
    let actual = run(script, USER, olap_options(custom_partition_value));
    assert_eq!(actual, expected.trim(), "script: {script}");
}

#[test]
fn no_partition_loads_into_the_root_folder() {
    check(
        "loadToUsers(noPartition(), {Name: this.First});",
        r#"Users {"Name":"Ada"} +[[]]"#,
    );
}

#[test]
fn partition_by_one_value_names_the_partition_partition() {
    check(
        "loadToA(partitionBy(this.First), {}); loadToB(partitionBy(this.Age), {}); loadToC(partitionBy(true), {});",
        r#"
A {} +[[["_partition","Ada"]]]
B {} +[[["_partition","36"]]]
C {} +[[["_partition","true"]]]
"#,
    );
}

#[test]
fn partition_by_pairs_nests_partitions_in_order() {
    check(
        "loadToOrders(partitionBy(['year', 2024], ['month', this.Age / 12], ['who', this.Last]), {Total: 3.5});",
        r#"Orders {"Total":3.5} +[[["year","2024"],["month","3"],["who","Lovelace"]]]"#,
    );
    check(
        "loadToOrders(partitionBy(['only', 'one']), {});",
        r#"Orders {} +[[["only","one"]]]"#,
    );
}

#[test]
fn numbers_are_written_as_string_writes_them() {
    check(
        "loadToX(partitionBy(['a', 3.5], ['b', -0], ['c', 1e21], ['d', 0.1 + 0.2], ['e', -1e-7], ['f', false]), {});",
        r#"X {} +[[["a","3.5"],["b","0"],["c","1e+21"],["d","0.30000000000000004"],["e","-1e-7"],["f","false"]]]"#,
    );
}

#[test]
fn the_string_form_takes_the_key_after_the_name() {
    check(
        "loadTo('dbo.Orders', partitionBy(['year', 2024]), {A: 1}); loadTo('Root', noPartition(), {});",
        r#"
dbo.Orders {"A":1} +[[["year","2024"]]]
Root {} +[[]]
"#,
    );
}

#[test]
fn a_key_may_be_kept_and_used_again() {
    check(
        "var key = partitionBy(['y', this.Age]); loadToA(key, {n: 1}); loadToB(key, {n: 2});",
        r#"
A {"n":1} +[[["y","36"]]]
B {"n":2} +[[["y","36"]]]
"#,
    );
}

#[test]
fn partition_names_and_values_are_escaped_as_json() {
    check(
        r#"loadToX(partitionBy(['a "b"\\', 'line\nbreak é']), {});"#,
        r#"X {} +[[["a \"b\"\\","line\nbreak é"]]]"#,
    );
}

#[test]
fn the_custom_partition_value_is_the_task_setting_or_null() {
    let script =
        "loadToX(noPartition(), {c: $customPartitionValue, t: typeof $customPartitionValue});";
    check_with(
        script,
        Some("eu-west"),
        r#"X {"c":"eu-west","t":"string"} +[[]]"#,
    );
    check_with(script, None, r#"X {"c":null,"t":"object"} +[[]]"#);
    check_with(
        "loadToX(partitionBy(['location', $customPartitionValue], ['year', 2024]), {});",
        Some("eu-west"),
        r#"X {} +[[["location","eu-west"],["year","2024"]]]"#,
    );
}

#[test]
fn the_custom_partition_value_is_read_only() {
    check_with(
        "$customPartitionValue = 'changed'; loadToX(noPartition(), {c: $customPartitionValue});",
        Some("set"),
        r#"X {"c":"set"} +[[]]"#,
    );
    check_with(
        "'use strict'; $customPartitionValue = 'changed'; loadToX(noPartition(), {});",
        Some("set"),
        "error: script failed: TypeError: '$customPartitionValue' is read-only",
    );
}

#[test]
fn dates_are_utc_minutes_as_ravendb_names_them() {
    check(
        "loadToX(partitionBy(['at', new Date(Date.UTC(2024, 2, 5, 7, 9, 59, 999))]), {});\n\
         loadToX(partitionBy(new Date('2023-12-31T23:59:00.000+02:00')), {});\n\
         loadToX(partitionBy(new Date('0005-01-01T00:00:00Z')), {});",
        r#"
X {} +[[["at","2024-03-05-07-09"]]]
X {} +[[["_partition","2023-12-31-21-59"]]]
X {} +[[["_partition","0005-01-01-00-00"]]]
"#,
    );
}

#[test]
fn values_that_name_no_partition_are_errors() {
    for (value, described) in [
        ("null", "null"),
        ("undefined", "undefined"),
        ("this.Missing", "undefined"),
        ("NaN", "NaN"),
        ("1 / 0", "Infinity"),
        ("{}", "an object"),
        ("[1]", "an array"),
        ("new Date(NaN)", "an invalid Date"),
        ("function () {}", "a function"),
    ] {
        check(
            &format!("loadToX(partitionBy(['month', {value}]), {{}});"),
            &format!(
                "error: script failed: TypeError: partitionBy: the value of 'month' is {described}"
            ),
        );
    }
    check(
        "loadToX(partitionBy(null), {});",
        "error: script failed: TypeError: partitionBy: the value of '_partition' is null",
    );
}

#[test]
fn malformed_partitions_are_errors() {
    for (arguments, message) in [
        ("", "expected a value or [name, value] arrays"),
        ("['', 1]", "a partition name must be a non-empty string"),
        ("[1, 1]", "a partition name must be a non-empty string"),
        ("['a']", "each partition must be a [name, value] array"),
        (
            "['a', 1, 2]",
            "each partition must be a [name, value] array",
        ),
        (
            "['a', 1], 'b'",
            "each partition must be a [name, value] array",
        ),
    ] {
        check(
            &format!("loadToX(partitionBy({arguments}), {{}});"),
            &format!("error: script failed: TypeError: partitionBy: {message}"),
        );
    }
}

#[test]
fn a_key_not_made_by_partition_by_or_no_partition_is_refused() {
    let refused = "error: script failed: TypeError: loadTo: the first argument must be partitionBy(…) or noPartition()";
    for script in [
        "loadToX('year=2024', {A: 1});",
        "loadToX({A: 1});",
        "loadToX();",
        "loadToX(null, {});",
        "loadToX([['year', '2024']], {});",
        // Forged: shaped like a key, or frozen like one.
        "loadToX(Object.freeze({}), {});",
        "loadToX(Object.create(partitionBy(1)), {});",
    ] {
        check(script, refused);
    }
    check(
        "loadTo('X', 'year=2024', {});",
        "error: script failed: TypeError: loadTo: the second argument must be partitionBy(…) or noPartition()",
    );
    // Changing the prototypes the prelude relies on forges nothing.
    check(
        "WeakMap.prototype.get = function () { return '[[\"x\",\"y\"]]'; }; loadToX({}, {});",
        refused,
    );
    check(
        "Array.prototype.toJSON = function () { return 'bent'; }; WeakMap.prototype.set = function () {}; \
         loadToX(partitionBy(['a', 1]), {});",
        r#"X {} +[[["a","1"]]]"#,
    );
}

#[test]
fn an_object_that_is_not_an_object_fails_as_in_other_etl_types() {
    check(
        "loadToX(noPartition(), 5);",
        "error: script produced invalid output: loadToX: expected an object, got number serialized as 5",
    );
    check(
        "loadToX(noPartition());",
        "error: script produced invalid output: loadToX: expected an object, got undefined",
    );
    check(
        "loadToX(noPartition(), {}, 'routing key');",
        "error: script failed: TypeError: loadTo: OLAP ETL takes nothing after the object",
    );
}

#[test]
fn other_etl_types_have_no_partition_functions() {
    let options = ScriptOptions::default;
    assert_eq!(
        run("loadToX(partitionBy(1), {});", USER, options()),
        "error: script failed: ReferenceError: partitionBy is not defined"
    );
    assert_eq!(
        run("loadToX({c: $customPartitionValue});", USER, options()),
        "error: script failed: ReferenceError: $customPartitionValue is not defined"
    );
    assert_eq!(
        run(
            "loadToX({p: typeof partitionBy, n: typeof noPartition, c: typeof $customPartitionValue});",
            USER,
            options()
        ),
        r#"X {"p":"undefined","n":"undefined","c":"undefined"}"#
    );
    // loadTo is unchanged: the object first, anything after it handed over.
    assert_eq!(
        run("loadToX({A: 1}, 'rk');", USER, options()),
        r#"X {"A":1} +["rk"]"#
    );
}

#[test]
fn analysis_finds_the_targets_of_olap_scripts() {
    let analysis = analyze(
        "loadToOrders(partitionBy(['year', this.Year]), {A: 1});\n\
         loadTo('dbo.Lines', noPartition(), {});\n\
         loadToOrders(noPartition(), {});",
    )
    .unwrap();
    assert_eq!(analysis.load_targets, ["Orders", "dbo.Lines"]);
    assert!(analysis.has_load_to);
}

#[test]
fn common_olap_scripts_run_in_the_direct_interpreter() {
    let script = "loadToOrders(partitionBy(['year', this.Year], ['month', this.Month]), \
                  { Company: this.Company, Total: this.Total, OrderedAt: this.OrderedAt });";
    let order = r#"{"Company":"companies/1","Total":1234.5,"OrderedAt":"2024-03-05T07:09:00.0000000Z","Year":2024,"Month":3,"@metadata":{"@id":"orders/1"}}"#;
    for load_as_values in [false, true] {
        let options = ScriptOptions {
            load_as_values,
            ..olap_options(None)
        };
        let mut runtime = ScriptRuntime::new(script, options).unwrap();
        let output = runtime
            .transform(&input(order, &[]), &mut TestHost::default())
            .unwrap();
        assert_eq!(runtime.direct_documents(), Some(1));
        assert_eq!(output.loads[0].target, "Orders");
        assert_eq!(
            output.loads[0].extra_arguments.as_deref(),
            Some(r#"[[["year","2024"],["month","3"]]]"#)
        );
        if !load_as_values {
            assert_eq!(
                output.loads[0].json,
                r#"{"Company":"companies/1","Total":1234.5,"OrderedAt":"2024-03-05T07:09:00.0000000Z"}"#
            );
        }
    }
}
