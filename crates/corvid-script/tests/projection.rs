//! The runtime parses only the parts of a document the script can reach. No script may be able
//! to tell: each one below must produce exactly what it produces with the whole document, which
//! a trailing bare `this;` forces.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHost, input};
use corvid_script::{ScriptOptions, ScriptRuntime};

const DOCUMENTS: [&str; 5] = [
    common::USER,
    r#"{"First":"Bo","ShipTo":{"City":"Oslo","Country":"NO","Geo":{"Lat":59.9,"Lon":10.7}},"Lines":[{"P":"a","Q":2},{"P":"b","Q":1}],"Name":"x","hasOwnProperty":3,"@metadata":{"@id":"orders/1","@collection":"Orders"}}"#,
    r#"{"ShipTo":null,"Lines":"not an array","Name":{"length":7},"\u0046irst":"escaped key","@metadata":{"@collection":"Orders"}}"#,
    r#"{"ShipTo":{"City":1,"City":2},"First":"dup","First":"last wins","__proto__":{"Evil":1},"constructor":"c"}"#,
    r#"{}"#,
];

const SCRIPTS: [&str; 15] = [
    "loadToPeople({Name: this.First + ' ' + this.Last, Age: this.Age});",
    "loadToX({c: this.ShipTo.City, g: this.ShipTo.Geo, lat: this.ShipTo.Geo.Lat});",
    "for (var i = 0; i < this.Lines.length; i++) loadToL({p: this.Lines[i].P});",
    "loadToX({n: this.Name.length, k: this.Name.toString(), t: typeof this.Missing});",
    "loadToX({h: this.ShipTo.hasOwnProperty('Country'), i: 'Geo' in this.ShipTo.Geo});",
    "loadToX({keys: Object.keys(this.ShipTo), g: this.Name.valueOf()});",
    "loadToX({id: id(this), m: getMetadata(this), c: this['@metadata']['@collection']});",
    "loadToX({p: this.__proto__ === Object.prototype, c: String(this.constructor), e: this.__proto__.Evil});",
    "this.ShipTo.City = 'changed'; loadToX({s: this.ShipTo, c: this.ShipTo.Country});",
    "delete this.ShipTo.City; loadToX({s: this.ShipTo.City, c: this.ShipTo.Country});",
    "var f = () => this.First; loadToX({f: f(), g: (function () { return typeof this; })()});",
    "output(this.First, this.ShipTo); loadToX({f: this?.First, z: this.ShipTo?.Geo?.Lat});",
    "if (!this.Lines) return; loadToX({n: this.Lines.length, s: JSON.stringify(this.Lines)});",
    "loadToX({tag: this.Lines.map(function (l) { return l.Q; })});",
    "loadToX({o: this.hasOwnProperty, s: this.First.split('').length});",
];

fn run(script: &str, doc: &str, options: &ScriptOptions) -> String {
    let mut runtime = ScriptRuntime::new(script, options.clone()).unwrap();
    format!(
        "{:?}",
        runtime.transform(&input(doc, &[]), &mut TestHost::default())
    )
}

#[test]
fn scripts_see_the_same_document_whether_or_not_it_is_cut_down() {
    let sql = ScriptOptions {
        load_as_values: true,
        undefined_as_null: true,
        ..ScriptOptions::default()
    };
    for options in [ScriptOptions::default(), sql] {
        for script in SCRIPTS {
            let whole = format!("{script}\n;this;");
            for doc in DOCUMENTS {
                assert_eq!(
                    run(script, doc, &options),
                    run(&whole, doc, &options),
                    "script: {script}\ndocument: {doc}"
                );
            }
        }
    }
}

/// `doc` without its `@metadata`, as the ETL worker passes it to a script that cannot read it.
fn without_metadata(doc: &str) -> String {
    let mut value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(doc).unwrap();
    value.remove("@metadata");
    serde_json::to_string(&value).unwrap()
}

#[test]
fn scripts_that_cannot_read_metadata_see_no_difference_without_it() {
    let options = ScriptOptions::default();
    let mut n_without = 0;
    for script in SCRIPTS {
        let runtime = ScriptRuntime::new(script, options.clone()).unwrap();
        if runtime.reads_metadata() {
            continue;
        }
        n_without += 1;
        // The documents whose keys are unique: a JSON map cannot hold the duplicates.
        for doc in &DOCUMENTS[..3] {
            assert_eq!(
                run(script, &without_metadata(doc), &options),
                run(script, doc, &options),
                "script: {script}\ndocument: {doc}"
            );
        }
    }
    assert!(n_without >= 10, "{n_without}");
    for (script, reads) in [
        ("loadToX({a: this.A});", false),
        ("loadToX({a: id(this)});", true),
        ("loadToX({a: getMetadata(this)});", true),
        ("loadToX({a: this['@metadata']['@id']});", true),
        ("loadToX(this);", true),
        ("loadToX({a: this[name]});", true),
    ] {
        let runtime = ScriptRuntime::new(script, options.clone()).unwrap();
        assert_eq!(runtime.reads_metadata(), reads, "{script}");
    }
}

#[test]
fn a_document_that_is_not_an_object_is_still_refused() {
    let mut runtime =
        ScriptRuntime::new("loadToX({a: this.A});", ScriptOptions::default()).unwrap();
    for doc in ["[1]", "{\"A\": 1", "3"] {
        let res = runtime.transform(&input(doc, &[]), &mut TestHost::default());
        assert!(res.is_err(), "{doc}: {res:?}");
    }
}
