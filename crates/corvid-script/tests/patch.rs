//! Patch scripts: `this` is the document and the result, `args`, `put`/`del`/`load` through the
//! host, and the same limits as ETL scripts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use corvid_script::{ScriptHost, ScriptOptions, ScriptRuntime, TransformError};
use serde_json::{Value, json};

/// A host over an in-memory map, recording what the script did.
#[derive(Default)]
struct MapHost {
    docs: BTreeMap<String, String>,
    deleted: Vec<String>,
}

impl ScriptHost for MapHost {
    fn load(&mut self, id: &str) -> Option<String> {
        self.docs.get(id).cloned()
    }

    fn put(&mut self, id: &str, json: &str) -> Result<String, String> {
        if id.is_empty() {
            return Err("put: the id is required".to_owned());
        }
        self.docs.insert(id.to_owned(), json.to_owned());
        Ok(id.to_owned())
    }

    fn delete(&mut self, id: &str) -> Result<bool, String> {
        self.deleted.push(id.to_owned());
        Ok(self.docs.remove(id).is_some())
    }
}

fn patch(
    script: &str,
    doc: Value,
    args: Value,
    host: &mut MapHost,
) -> Result<Value, TransformError> {
    let mut runtime =
        ScriptRuntime::new_patch(script, ScriptOptions::default()).expect("script compiles");
    let output = runtime.patch(&doc.to_string(), &args.to_string(), host)?;
    Ok(serde_json::from_str(&output.document).expect("patched document is JSON"))
}

#[test]
fn this_is_the_document_and_args_are_the_values() {
    let mut host = MapHost::default();
    let doc =
        json!({"Name": "Ann", "Age": 3, "Tags": ["a"], "@metadata": {"@collection": "Users"}});
    let patched = patch(
        "this.Age += args.val_0; this.Name = args.name; this.Tags.push('b'); delete this.Gone;",
        doc,
        json!({"val_0": 2, "name": "Bob"}),
        &mut host,
    )
    .expect("patch runs");
    assert_eq!(
        patched,
        json!({"Name": "Bob", "Age": 5, "Tags": ["a", "b"], "@metadata": {"@collection": "Users"}})
    );
}

#[test]
fn the_scripts_the_clients_generate_run() {
    let mut host = MapHost::default();
    // Python's session.increment, Node's session.increment on a missing field, array removeAt.
    let patched = patch(
        "this.Count = this.Count ? this.Count + args.val_0 : args.val_0 ;\
         this.Other += args.val_1;\
         this.List.splice(args.val_2, 1);",
        json!({"Other": 1, "List": [1, 2, 3]}),
        json!({"val_0": 4, "val_1": 10, "val_2": 0}),
        &mut host,
    )
    .expect("patch runs");
    assert_eq!(patched, json!({"Other": 11, "List": [2, 3], "Count": 4}));
}

#[test]
fn put_del_load_and_id_go_through_the_host() {
    let mut host = MapHost::default();
    host.docs
        .insert("users/2".to_owned(), json!({"Name": "Cy"}).to_string());
    host.docs.insert("temp/1".to_owned(), "{}".to_owned());
    let patched = patch(
        "var other = load('users/2'); this.Friend = other.Name; this.Self = id(this);\
         this.Missing = load('users/404');\
         this.PutId = put('logs/1', {Of: id(this)}); this.Deleted = del('temp/1');",
        json!({"@metadata": {"@id": "users/1"}}),
        json!({}),
        &mut host,
    )
    .expect("patch runs");
    assert_eq!(patched["Friend"], "Cy");
    assert_eq!(patched["Self"], "users/1");
    assert_eq!(patched["Missing"], Value::Null);
    assert_eq!(patched["PutId"], "logs/1");
    assert_eq!(patched["Deleted"], true);
    assert_eq!(host.docs["logs/1"], r#"{"Of":"users/1"}"#);
    assert_eq!(host.deleted, ["temp/1"]);
}

#[test]
fn a_host_error_is_thrown_to_the_script() {
    let mut host = MapHost::default();
    let error = patch("put('', {});", json!({}), json!({}), &mut host).expect_err("put fails");
    assert!(
        matches!(&error, TransformError::Script { message } if message.contains("the id is required")),
        "{error:?}"
    );
    let caught = patch(
        "try { put('', {}); } catch (e) { this.Caught = e.message; }",
        json!({}),
        json!({}),
        &mut host,
    )
    .expect("the script caught it");
    assert_eq!(caught["Caught"], "put: the id is required");
}

#[test]
fn etl_scripts_have_no_put() {
    let options = ScriptOptions {
        direct_interpreter: false,
        ..ScriptOptions::default()
    };
    let mut runtime = ScriptRuntime::new("loadToX({Put: typeof put, Del: typeof del});", options)
        .expect("compiles");
    let input = corvid_script::DocumentInput {
        id: "a",
        collection: "A",
        json: "{}",
        attachments: &[],
    };
    let output = runtime
        .transform(&input, &mut MapHost::default())
        .expect("transform runs");
    let loaded: Value = serde_json::from_str(&output.loads[0].json).expect("JSON");
    assert_ne!(loaded["Put"], "function");
    assert_ne!(loaded["Del"], "function");
}

#[test]
fn endless_loops_and_memory_bombs_are_stopped_and_the_runtime_carries_on() {
    let options = ScriptOptions {
        time_budget: Duration::from_millis(50),
        memory_limit_bytes: 16 * 1024 * 1024,
        ..ScriptOptions::default()
    };
    let script = "if (this.Mode === 'loop') while (true) {}\
                  if (this.Mode === 'memory') { var a = []; while (true) a.push(new Array(1e6).fill(1)); }\
                  this.Done = true;";
    let mut runtime = ScriptRuntime::new_patch(script, options).expect("compiles");
    let mut host = MapHost::default();
    let started = Instant::now();
    let error = runtime
        .patch(r#"{"Mode":"loop"}"#, "{}", &mut host)
        .expect_err("loop stopped");
    assert!(matches!(error, TransformError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let error = runtime
        .patch(r#"{"Mode":"memory"}"#, "{}", &mut host)
        .expect_err("memory bomb stopped");
    assert!(
        matches!(error, TransformError::OutOfMemory { .. }),
        "{error:?}"
    );
    let output = runtime
        .patch(r#"{"Mode":"ok"}"#, "{}", &mut host)
        .expect("next document runs");
    assert_eq!(output.document, r#"{"Mode":"ok","Done":true}"#);
}

#[test]
fn debug_output_is_returned() {
    let mut runtime = ScriptRuntime::new_patch(
        "output('age', this.Age); output(args);",
        ScriptOptions::default(),
    )
    .expect("compiles");
    let output = runtime
        .patch(r#"{"Age":3}"#, r#"{"x":1}"#, &mut MapHost::default())
        .expect("runs");
    assert_eq!(output.debug_output, ["age 3", r#"{"x":1}"#]);
}
