//! The direct interpreter must give exactly what QuickJS gives: every script below runs on
//! every document with the interpreter on and off, under each set of options the ETL
//! processes use, and the results (loads, values, JSON text, errors) must be equal. The
//! scripts meant for the interpreter must also really run there, or the comparison would be
//! QuickJS against itself.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{TestHost, input};
use corvid_script::{OlapScriptOptions, ScriptOptions, ScriptRuntime, TransformError};

const DOCUMENTS: [&str; 8] = [
    common::USER,
    r#"{"First":"Bo","Last":"Ek","Age":41.5,"ShipTo":{"City":"Oslo","Geo":{"Lat":59.9,"Lon":10.7}},"Lines":[{"P":"a","Q":2,"Price":19.99,"Discount":0.15},{"P":"b","Q":1,"Price":0.1,"Discount":0}],"Freight":"32.38","@metadata":{"@id":"orders/1","@collection":"Orders"}}"#,
    r#"{"First":null,"Age":"41","ShipTo":null,"Lines":"not an array","Name":{"length":7},"\u0046irst2":"escaped key","@metadata":{"@collection":"Orders"}}"#,
    r#"{"First":"dup","First":"last wins","Age":true,"Lines":[],"ShipTo":{"City":1,"City":2}}"#,
    r#"{"First":"tab\there \"quoted\" back\\slash \u0001\u001f\u007f \u2028 é 😀","Last":"\ud83d\ude00","Age":-0.0,"Lines":[{"Q":1e21,"Price":1e-7},{"Q":-1.5e-7,"Price":123456789012345680000}]}"#,
    r#"{"Age":9007199254740993,"Lines":[{"Q":0.1,"Price":0.2},{"Q":null},{},3,"x",[1,2]],"Tags":["a",null,{"b":[true,false]}]}"#,
    r#"{"1":"index key","First":"x"}"#,
    r#"{}"#,
];

/// Scripts within the interpreter's subset.
const DIRECT_SCRIPTS: &[&str] = &[
    "loadToPeople({Name: this.First + ' ' + this.Last, Age: this.Age});",
    "loadToPeople({Name: `${this.First} ${this.Last}!`, Age: this.Age * 2, Neg: -this.Age, Not: !this.Age});",
    "var total = 0;
for (var i = 0; i < this.Lines.length; i++) {
    var line = this.Lines[i];
    total += line.Q * line.Price * (1 - line.Discount);
    loadTo('dbo.OrderLines', { P: line.P, Q: line.Q, Price: line.Price, Discount: line.Discount });
}
loadTo('dbo.Orders', { First: this.First, Total: Math.round(total * 100) / 100, City: this.ShipTo.City });",
    "for (const line of this.Lines) { if (line.Q > 1) continue; loadToL({q: line.Q, p: line?.Price}); }",
    "let n = 0; while (n < 3) { n++; if (n === 2) break; } do { n += 10; } while (n < 30); loadToX({n});",
    "if (this.Age >= 18 && this.First) { loadToAdults({n: this.First}); } else if (this.Age == null) loadToUnknown({}); else return;",
    "loadToX({t: typeof this.First, u: typeof this.Missing, o: typeof this.ShipTo, v: void 0, c: this.First ?? 'none', d: this.Missing || 'dflt', e: this.Age && 5});",
    "loadToX({id: id(this), m: getMetadata(this), c: this['@metadata']['@collection'], x: this['@metadata']?.['@nope']});",
    "var o = {a: 1, b: undefined, c: null, d: [1, undefined, 'x'], e: {f: undefined, g: NaN, h: -Infinity}}; o.a = 'changed'; o.z = o.a + 1; loadToX(o);",
    "loadToX({r: Math.round(this.Age), f: Math.floor(-2.5), c: Math.ceil(-0.5), t: Math.trunc(-3.7), a: Math.abs(-0), mn: Math.min(3, 1, 2), mx: Math.max(), n: Math.round(), d: 1 / 0, m: -7 % 3});",
    "loadToX({eq: this.First === 'Bo', ne: this.Age !== 41.5, le: 1 == true, ln: null == undefined, z: 0 == null, s: 'a' + 1 + 2, p: 1 + 2 + 'a', q: 1 + null, u: 1 + undefined});",
    "var s = ''; for (var i = 0; i < 5; i++) { s += i + ','; } loadToX({s: s, len: s.length, emoji: this.Last?.length});",
    "loadToX({tags: this.Tags, lines: this.Lines, ship: this.ShipTo, geo: this.ShipTo?.Geo, first: this.Lines?.[0], last: this.Lines[this.Lines.length - 1], out: this.Lines[99], frac: this.Lines[0.5]});",
    "let x = {}; x.Count = 0; x.Count++; ++x.Count; x.Count -= 0.5; x.Count *= 3; x.Count /= 2; x.Rem = 10; x.Rem %= 4; loadToX(x);",
    "const big = this.Age; loadToX({a: big, b: big + 1, c: big * 1e300, d: 0.1 * 3, e: 1e21 + 1, f: 123e-20});",
    "loadToX({a: [this.First, this.Age], seq: (1, 2, this.First)}); return; loadToNever({});",
    "if (!this.Lines) return; for (var line of this.Lines) loadToL({n: line.Q, text: 'q=' + line.Q + ' p=' + line.Price});",
    "var a = this.ShipTo ? this.ShipTo.City : 'no ship-to'; loadToX({a: a, nested: {deeper: {list: [a, 1.25, true, null]}}});",
    "loadTo(this.First === 'Bo' ? 'Bos' : 'Others', {who: this.First});",
    "loadToX({a: this.First, b: 1, a: this.Age, c: {d: this.Missing, e: this.Lines}});",
    "let x = [1, 2]; if (this.Lines) { for (const x of x) loadToX({x}); } loadToY({x: x.length});",
];

/// Scripts outside the subset: QuickJS runs them all.
const QUICKJS_SCRIPTS: &[&str] = &[
    "loadToX({n: this.First.toUpperCase()});",
    "output(this.First); loadToX({});",
    "var f = function () { return 1; }; loadToX({f: f()});",
    "loadToX({k: Object.keys(this)});",
    "var r = loadToX({}); r.addAttachment(loadAttachment('a'));",
    "try { loadToX({a: 1}); } catch (e) {}",
    "loadToX({[this.First]: 1});",
    "loadToX({d: new Date(2020, 1, 1).getTime()});",
    "var x = load('users/2'); loadToX({x: x});",
    "undeclared = 1; loadToX({u: undeclared});",
];

fn option_sets() -> [ScriptOptions; 3] {
    let raven = ScriptOptions::default();
    let sql = ScriptOptions {
        load_as_values: true,
        undefined_as_null: true,
        ..ScriptOptions::default()
    };
    let undefined_dropped = ScriptOptions {
        undefined_as_null: false,
        ..ScriptOptions::default()
    };
    [raven, sql, undefined_dropped]
}

/// OLAP ETL scripts within the interpreter's subset.
const OLAP_DIRECT_SCRIPTS: &[&str] = &[
    // The shape of the OLAP benchmark's script.
    "loadToOrders(partitionBy(['year', this.Age], ['month', this.First]), { Company: this.Last, Total: this.Age, OrderedAt: this.ShipTo });",
    "loadToPeople(noPartition(), {Name: this.First + ' ' + this.Last});",
    "loadToPeople(partitionBy(this.First), {Age: this.Age}); loadToPeople(partitionBy(this.Age), {}); loadToB(partitionBy(this.Age > 40), {});",
    "loadTo(this.Age > 40 ? 'Old' : 'Young', partitionBy(['city', this.ShipTo?.City ?? 'none'], ['n', this.Lines?.length]), {who: this.First});",
    "loadToX(partitionBy(['location', $customPartitionValue], ['age', this.Age]), {c: $customPartitionValue, u: this.Missing});",
    "for (const line of this.Lines) loadToLines(partitionBy(['p', line.P], ['q', line.Q * 2]), {Price: line.Price});",
    "if (this.First) loadTo('Named', noPartition(), {f: this.First}); else return;",
    "var n = 0; loadToX(partitionBy(['a', n++], ['b', n++]), {n: n});",
];

/// OLAP ETL scripts outside the subset (or keys the interpreter leaves to QuickJS).
const OLAP_QUICKJS_SCRIPTS: &[&str] = &[
    "var key = partitionBy(['year', this.Age]); loadToX(key, {});",
    "loadToX(partitionBy(['at', new Date(Date.UTC(2024, 1, 2, 3, 4))]), {});",
    "var name = 'year'; loadToX(partitionBy([name, this.Age]), {});",
    "loadToX(partitionBy(...[['a', 1]]), {});",
    "loadToX(partitionBy(['', 1]), {});",
    "loadToX(partitionBy(), {});",
    "loadToX({A: this.First});",
    "loadToX(noPartition(), {A: 1}, 'rk');",
    "loadToX(noPartition(1), {});",
    "loadToX({}, {});",
];

fn olap_option_sets() -> [ScriptOptions; 4] {
    let olap = |custom_partition_value: Option<&str>| {
        Some(OlapScriptOptions {
            custom_partition_value: custom_partition_value.map(str::to_owned),
        })
    };
    [
        ScriptOptions {
            olap: olap(None),
            ..ScriptOptions::default()
        },
        ScriptOptions {
            olap: olap(Some("eu-west")),
            load_as_values: true,
            ..ScriptOptions::default()
        },
        ScriptOptions {
            olap: olap(Some("a \"quoted\" value")),
            ..ScriptOptions::default()
        },
        ScriptOptions {
            olap: olap(None),
            load_as_values: true,
            undefined_as_null: false,
            ..ScriptOptions::default()
        },
    ]
}

fn run_all(script: &str, docs: &[&str], options: &ScriptOptions) -> (Vec<String>, Option<u64>) {
    let mut runtime = ScriptRuntime::new(script, options.clone()).unwrap();
    let results = docs
        .iter()
        .map(|doc| {
            format!(
                "{:?}",
                runtime.transform(&input(doc, &[]), &mut TestHost::default())
            )
        })
        .collect();
    (results, runtime.direct_documents())
}

fn compare(script: &str, docs: &[&str]) -> u64 {
    compare_with(script, docs, &option_sets())
}

fn compare_with(script: &str, docs: &[&str], option_sets: &[ScriptOptions]) -> u64 {
    let mut n_direct = 0;
    for options in option_sets {
        let quickjs = ScriptOptions {
            direct_interpreter: false,
            ..options.clone()
        };
        let (expected, none) = run_all(script, docs, &quickjs);
        assert_eq!(none, None);
        let (actual, direct) = run_all(script, docs, options);
        for ((expected, actual), doc) in expected.iter().zip(&actual).zip(docs) {
            assert_eq!(
                actual, expected,
                "script: {script}\ndocument: {doc}\noptions: {options:?}"
            );
        }
        n_direct += direct.unwrap_or(0);
    }
    n_direct
}

#[test]
fn scripts_in_the_subset_run_directly_with_quickjs_output() {
    for script in DIRECT_SCRIPTS {
        let n_direct = compare(script, &DOCUMENTS);
        // Every script has documents it can run on directly (not all: an index key, a string
        // where a number is needed, a member of null outside a chain go to QuickJS).
        assert!(n_direct > 0, "never ran directly: {script}");
    }
}

#[test]
fn scripts_outside_the_subset_run_in_quickjs() {
    for script in QUICKJS_SCRIPTS {
        let runtime = ScriptRuntime::new(script, ScriptOptions::default()).unwrap();
        assert_eq!(runtime.direct_documents(), None, "{script}");
        compare(script, &DOCUMENTS);
    }
}

#[test]
fn olap_scripts_in_the_subset_run_directly_with_quickjs_output() {
    for script in OLAP_DIRECT_SCRIPTS {
        let n_direct = compare_with(script, &DOCUMENTS, &olap_option_sets());
        assert!(n_direct > 0, "never ran directly: {script}");
    }
}

#[test]
fn olap_scripts_outside_the_subset_run_in_quickjs() {
    for script in OLAP_QUICKJS_SCRIPTS {
        let runtime = ScriptRuntime::new(script, olap_option_sets()[0].clone()).unwrap();
        assert_eq!(runtime.direct_documents(), None, "{script}");
        compare_with(script, &DOCUMENTS, &olap_option_sets());
    }
}

#[test]
fn olap_scripts_in_other_etl_types_run_in_quickjs() {
    // No partitionBy there: QuickJS throws a ReferenceError.
    for script in OLAP_DIRECT_SCRIPTS {
        let runtime = ScriptRuntime::new(script, ScriptOptions::default()).unwrap();
        assert_eq!(runtime.direct_documents(), None, "{script}");
        assert_eq!(compare(script, &DOCUMENTS), 0, "{script}");
    }
}

#[test]
fn documents_the_interpreter_cannot_model_go_to_quickjs() {
    let script = "loadToX({a: this.First + 1, b: this.Age - 1});";
    let mut runtime = ScriptRuntime::new(script, ScriptOptions::default()).unwrap();
    let mut host = TestHost::default();
    // A string minus a number needs ToNumber of a string: QuickJS's job.
    let out = runtime
        .transform(&input(r#"{"First":"a","Age":"41"}"#, &[]), &mut host)
        .unwrap();
    assert_eq!(out.loads[0].json, r#"{"a":"a1","b":40}"#);
    assert_eq!(runtime.direct_documents(), Some(0));
    let out = runtime
        .transform(&input(r#"{"First":"a","Age":41}"#, &[]), &mut host)
        .unwrap();
    assert_eq!(out.loads[0].json, r#"{"a":"a1","b":40}"#);
    assert_eq!(runtime.direct_documents(), Some(1));
}

#[test]
fn an_endless_loop_times_out_in_the_interpreter_too() {
    let options = ScriptOptions {
        time_budget: Duration::from_millis(50),
        ..ScriptOptions::default()
    };
    let mut runtime = ScriptRuntime::new("while (true) {} loadToX({});", options).unwrap();
    assert_eq!(runtime.direct_documents(), Some(0));
    let started = Instant::now();
    let res = runtime.transform(&input("{}", &[]), &mut TestHost::default());
    assert!(
        matches!(res, Err(TransformError::Timeout { .. })),
        "{res:?}"
    );
    // Not the interpreter's budget and then QuickJS's on top.
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A small deterministic generator (xorshift), so that a failure can be reproduced.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let idx = usize::try_from(self.next() % items.len() as u64).unwrap();
        items[idx]
    }
}

fn random_value(random: &mut Random, depth: u32) -> String {
    const NUMBERS: &[&str] = &[
        "0",
        "-0",
        "1",
        "-1",
        "0.1",
        "0.5",
        "2.5",
        "-2.5",
        "1e21",
        "1e-7",
        "123.456",
        "9007199254740993",
        "1.7976931348623157e308",
        "5e-324",
        "100",
        "3.14159",
        "-0.0000001",
        "4503599627370495.5",
        "0.49999999999999994",
    ];
    const STRINGS: &[&str] = &[
        r#""""#,
        r#""a""#,
        r#""Bo Ek""#,
        r#""12""#,
        r#""\n\t\"""#,
        r#""é😀""#,
        r#""\u0000""#,
        r#""\ud83d\ude00""#,
        r#""true""#,
    ];
    match random.next() % if depth > 1 { 6 } else { 8 } {
        0 => "null".to_owned(),
        1 => random.pick(&["true", "false"]).to_owned(),
        2 | 3 => random.pick(NUMBERS).to_owned(),
        4 | 5 => random.pick(STRINGS).to_owned(),
        6 => {
            let n = random.next() % 4;
            let items: Vec<String> = (0..n).map(|_| random_value(random, depth + 1)).collect();
            format!("[{}]", items.join(","))
        }
        _ => random_object(random, depth + 1),
    }
}

fn random_object(random: &mut Random, depth: u32) -> String {
    const KEYS: &[&str] = &["A", "B", "C", "Lines", "Name"];
    let n = random.next() % 5;
    let members: Vec<String> = (0..n)
        .map(|_| {
            let key = random.pick(KEYS);
            format!("\"{key}\":{}", random_value(random, depth))
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

#[test]
fn random_documents_give_quickjs_output() {
    const SCRIPTS: &[&str] = &[
        "loadToX({s: this.A + ' ' + this.B, n: this.A * this.B, d: this.A - this.C, q: this.A / this.B, m: this.A % this.B});",
        "loadToX({lt: this.A < this.B, ge: this.A >= this.C, eq: this.A == this.B, se: this.A === this.B, t: `${this.A}|${this.B}`});",
        "loadToX({r: Math.round(this.A), f: Math.floor(this.B), mx: Math.max(this.A, this.B, this.C), mn: Math.min(this.A, this.C)});",
        "if (this.Lines) for (var i = 0; i < this.Lines.length; i++) loadToL({v: this.Lines[i], a: this.Lines[i]?.A, x: this.Lines[i] + 1});",
        "loadToX({a: this.A, b: this.B, c: this.C, name: this.Name, lines: this.Lines, n: this.Name?.A?.B});",
        "loadToX({n: !this.A, neg: -this.B, plus: +this.C, or: this.A || this.B, and: this.A && this.C, c: this.B ?? this.C, t: typeof this.A});",
    ];
    let mut random = Random(0x5eed_c0ff_ee15_900d);
    let docs: Vec<String> = (0..300).map(|_| random_object(&mut random, 0)).collect();
    let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
    for script in SCRIPTS {
        let n_direct = compare(script, &docs);
        assert!(
            n_direct > 100,
            "{n_direct} documents ran directly: {script}"
        );
    }
}

#[test]
fn random_partition_values_give_quickjs_output() {
    const SCRIPTS: &[&str] = &[
        "loadToX(partitionBy(['a', this.A], ['b', this.B]), {c: this.C});",
        "loadToX(partitionBy(this.Name), {a: this.A});",
        "loadTo('Y', partitionBy(['s', this.A + ' ' + this.B], ['n', this.A * this.C]), {});",
    ];
    // Mostly primitives (null, booleans, numbers, strings), sometimes arrays and objects.
    let mut random = Random(0x01a9_5eed_f00d_cafe);
    let docs: Vec<String> = (0..300)
        .map(|doc_idx| {
            let depth = if doc_idx % 4 == 0 { 0 } else { 2 };
            let mut value = || random_value(&mut random, depth);
            format!(
                r#"{{"A":{},"B":{},"C":{},"Name":{}}}"#,
                value(),
                value(),
                value(),
                value()
            )
        })
        .collect();
    let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
    for script in SCRIPTS {
        let n_direct = compare_with(script, &docs, &olap_option_sets());
        assert!(
            n_direct > 100,
            "{n_direct} documents ran directly: {script}"
        );
    }
}

#[test]
fn deep_or_cyclic_objects_and_dead_zones_are_left_to_quickjs() {
    const SCRIPTS: &[&str] = &[
        // A loop's `let` is uninitialised again each time the loop is entered.
        "var out = 0; for (var k = 0; k < 2; k++) { for (let j = (k === 0 ? 1 : j); j < 3; j++) out += j; } loadToX({out});",
        "let x = [1, 2]; for (const x of x) loadToX({x});",
        "var o = {}; for (var i = 0; i < 1000; i++) o = {o: o}; loadToX({ok: 1});",
        "var a = []; for (var i = 0; i < 1000; i++) a = [a]; loadToX({ok: 2});",
        "var o = {n: 1}; o.self = o; loadToX({ok: 3});",
        "var o = {n: 1}; o.list = [1]; loadToX(o);",
    ];
    for script in SCRIPTS {
        assert_eq!(compare(script, &["{}"]), 0, "{script}");
    }
}

#[test]
fn numbers_are_written_as_quickjs_writes_them() {
    // Random bit patterns and short decimals, written exactly (`{:e}` round-trips) into
    // documents; the script writes each back as a string and as a number.
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let docs: Vec<String> = (0..4000)
        .map(|idx| {
            let bits = random.next();
            let value = if idx % 2 == 0 {
                f64::from_bits(bits)
            } else {
                #[allow(clippy::cast_precision_loss)]
                let mantissa = (bits % 100_000_000) as f64;
                mantissa / 10f64.powi(i32::try_from(bits % 12).unwrap())
            };
            let value = if value.is_finite() { value } else { 0.5 };
            format!(r#"{{"N":{value:e},"M":{}}}"#, -value / 3.0)
        })
        .collect();
    let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let script = "loadToX({s: '' + this.N, n: this.N, m: `${this.M}`, p: this.N * 1.1});";
    assert!(compare(script, &docs) > 3 * 3000);
    // The tie case: …858.125 is halfway between …858.12 and …858.13.
    assert!(compare(script, &[r#"{"N":165793407361858.125,"M":1}"#]) > 0);
}
