//! Handing a script only the parts of its document it can reach.
//!
//! QuickJS's `JSON.parse` of the document is about half of what a typical transformation costs
//! (callgrind, `corvid-bench script`), yet most scripts read a few named properties:
//! `this.FirstName`, `this.ShipTo.City`. When the parse of the script shows that every use of
//! `this` is such a path of named properties, the runtime cuts the document's JSON down to
//! those properties (in Rust, without building anything) and QuickJS parses only that.
//!
//! The script cannot tell the difference, because the analysis gives up — keeps the whole
//! document — wherever an object could be observed as a whole rather than read property by
//! property:
//! - `this` or `this.A…` used as a value: passed to a function (`loadToX(this)`,
//!   `Object.keys(this.A)`), stored (`var d = this`), iterated, compared, spread, assigned into
//!   (`this.A.B = 1` keeps `A` whole), or read with a computed key (`this[k]`);
//! - a method called on it (`this.A.hasOwnProperty('B')` keeps `A` whole): the method gets
//!   the object as its own `this`;
//! - direct `eval`, which can reach `this` from a string.
//!
//! `id(this)` and `getMetadata(this)` read only `@metadata` (unless the script declares its own
//! `id` or `getMetadata`). `this` inside nested functions and classes is counted like `this` of
//! the script: that keeps more than needed, never less. A property kept as a path of names
//! (`this.A.B`) keeps only `B` of `A` when `A` is an object; arrays and other values are kept
//! whole, so `this.Lines.length` and `this.Name.length` see what they would have.

use oxc_ast::ast::{
    CallExpression, Expression, IdentifierReference, MemberExpression, Program,
    TaggedTemplateExpression,
};
use oxc_ast_visit::{Visit, walk};

/// The parts of a value a script reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Projection {
    /// The value is used as a whole.
    Whole,
    /// Only these properties are read, when the value is an object; any other value is kept
    /// whole. Properties in order of first use.
    Fields(Vec<(String, Projection)>),
}

impl Projection {
    /// Records a use of the value at `path` (property names from this value) as a whole.
    fn add(&mut self, path: &[&str]) {
        let Projection::Fields(fields) = self else {
            return;
        };
        let Some((first, rest)) = path.split_first() else {
            *self = Projection::Whole;
            return;
        };
        match fields.iter_mut().find(|(name, _)| name == first) {
            Some((_, child)) => child.add(rest),
            None => {
                let mut child = Projection::Fields(Vec::new());
                child.add(rest);
                fields.push(((*first).to_owned(), child));
            }
        }
    }
}

/// What of `this` the script in `program` can reach.
pub(crate) fn document_projection(program: &Program<'_>) -> Projection {
    let mut bindings = HostFunctionBindings::default();
    bindings.visit_program(program);
    let mut uses = ThisUses {
        projection: Projection::Fields(Vec::new()),
        host_functions_shadowed: bindings.found,
    };
    uses.visit_program(program);
    uses.projection
}

/// The member of a document that holds its metadata.
pub(crate) const METADATA: &str = "@metadata";

/// Host functions that read only `@metadata` of their one argument.
const METADATA_READERS: [&str; 2] = ["id", "getMetadata"];

/// Finds whether the script declares a name that hides a host function of
/// [`METADATA_READERS`].
#[derive(Default)]
struct HostFunctionBindings {
    found: bool,
}

impl<'a> Visit<'a> for HostFunctionBindings {
    fn visit_binding_identifier(&mut self, it: &oxc_ast::ast::BindingIdentifier<'a>) {
        if METADATA_READERS.contains(&it.name.as_str()) {
            self.found = true;
        }
    }
}

struct ThisUses {
    projection: Projection,
    host_functions_shadowed: bool,
}

impl<'a> Visit<'a> for ThisUses {
    fn visit_expression(&mut self, it: &Expression<'a>) {
        // The outermost path is seen first; its inner parts are not visited on their own.
        match this_path(it) {
            Some(path) => self.projection.add(&path),
            None => walk::walk_expression(self, it),
        }
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        if !self.host_functions_shadowed
            && let Expression::Identifier(callee) = &it.callee
            && METADATA_READERS.contains(&callee.name.as_str())
            && let [argument] = it.arguments.as_slice()
            && let Some(mut path) = argument.as_expression().and_then(this_path)
        {
            path.push(METADATA);
            self.projection.add(&path);
            return;
        }
        if let Some(path) = method_receiver_path(&it.callee) {
            self.projection.add(&path);
            for argument in &it.arguments {
                self.visit_argument(argument);
            }
            return;
        }
        walk::walk_call_expression(self, it);
    }

    fn visit_tagged_template_expression(&mut self, it: &TaggedTemplateExpression<'a>) {
        if let Some(path) = method_receiver_path(&it.tag) {
            self.projection.add(&path);
            self.visit_template_literal(&it.quasi);
            return;
        }
        walk::walk_tagged_template_expression(self, it);
    }

    fn visit_identifier_reference(&mut self, it: &IdentifierReference<'a>) {
        if it.name.as_str() == "eval" {
            self.projection = Projection::Whole;
        }
    }

    fn visit_this_expression(&mut self, _it: &oxc_ast::ast::ThisExpression) {
        // Every `this` is meant to be seen through `visit_expression`; one reached otherwise
        // is a use this analysis does not understand.
        self.projection = Projection::Whole;
    }
}

/// The property names from `this` to the value of `expression` when it is `this` or a chain of
/// named property reads from it (`this.A`, `this?.A['B']`), parentheses allowed.
fn this_path<'e>(expression: &'e Expression<'_>) -> Option<Vec<&'e str>> {
    match expression {
        Expression::ThisExpression(_) => Some(Vec::new()),
        Expression::ParenthesizedExpression(inner) => this_path(&inner.expression),
        Expression::ChainExpression(chain) => chain
            .expression
            .as_member_expression()
            .and_then(member_path),
        _ => expression.as_member_expression().and_then(member_path),
    }
}

fn member_path<'e>(member: &'e MemberExpression<'_>) -> Option<Vec<&'e str>> {
    let name = match member {
        MemberExpression::StaticMemberExpression(it) => it.property.name.as_str(),
        MemberExpression::ComputedMemberExpression(it) => match &it.expression {
            Expression::StringLiteral(literal) => literal.value.as_str(),
            _ => return None,
        },
        MemberExpression::PrivateFieldExpression(_) => return None,
    };
    let mut path = this_path(member.object())?;
    path.push(name);
    Some(path)
}

/// When `callee` is a method read from `this` or a path from it, the path of the object the
/// method is called on: it becomes the method's `this`.
fn method_receiver_path<'e>(callee: &'e Expression<'_>) -> Option<Vec<&'e str>> {
    match callee {
        Expression::ParenthesizedExpression(inner) => method_receiver_path(&inner.expression),
        _ => this_path(callee.as_member_expression()?.object()),
    }
}

/// Writes to `out` the JSON object `json` keeping only the properties `fields` names (in their
/// order in `json`), each cut down by its own projection.
///
/// `json` must be valid JSON, as every stored document is: the scan checks only the structure
/// it walks through. Returns `None` (with `out` in an unspecified state) when `json` is not an
/// object or the structure is broken; the caller then parses `json` as it is.
pub(crate) fn project_object(
    json: &str,
    fields: &[(String, Projection)],
    out: &mut String,
) -> Option<()> {
    out.clear();
    let mut scanner = Scanner {
        json,
        bytes: json.as_bytes(),
        pos: 0,
    };
    scanner.skip_whitespace();
    scanner.project_object(fields, out)?;
    scanner.skip_whitespace();
    (scanner.pos == scanner.bytes.len()).then_some(())
}

/// The position just past the JSON value that starts at `pos` in `json` (valid JSON, as
/// every stored document is); `None` when the structure is broken.
pub(crate) fn skip_value(json: &str, pos: usize) -> Option<usize> {
    let mut scanner = Scanner {
        json,
        bytes: json.as_bytes(),
        pos,
    };
    scanner.skip_value()?;
    Some(scanner.pos)
}

/// The bytes that matter when skipping a nested object or array: quotes and brackets.
static STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'[' as usize] = true;
    table[b'}' as usize] = true;
    table[b']' as usize] = true;
    table
};

struct Scanner<'j> {
    json: &'j str,
    bytes: &'j [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// Skips a string starting at its opening quote; returns whether it holds an escape.
    fn skip_string(&mut self) -> Option<bool> {
        self.expect(b'"')?;
        let mut escaped = false;
        loop {
            let rest = self.bytes.get(self.pos..)?;
            let found = memchr::memchr2(b'"', b'\\', rest)?;
            self.pos += found;
            if self.bytes[self.pos] == b'"' {
                self.pos += 1;
                return Some(escaped);
            }
            escaped = true;
            self.pos += 2;
        }
    }

    /// Skips one value of any kind.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string().map(drop),
            b'{' | b'[' => {
                self.pos += 1;
                let mut depth = 1usize;
                loop {
                    while !STRUCTURAL[usize::from(*self.bytes.get(self.pos)?)] {
                        self.pos += 1;
                    }
                    match self.bytes[self.pos] {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        _ => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                return Some(());
                            }
                        }
                    }
                    self.pos += 1;
                }
            }
            _ => {
                let start = self.pos;
                while let Some(byte) = self.peek() {
                    if matches!(byte, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
        }
    }

    fn project_object(&mut self, fields: &[(String, Projection)], out: &mut String) -> Option<()> {
        self.expect(b'{')?;
        out.push('{');
        let mut empty = true;
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.pos += 1;
            out.push('}');
            return Some(());
        }
        loop {
            self.skip_whitespace();
            let key_start = self.pos;
            let escaped = self.skip_string()?;
            let raw_key = self.json.get(key_start..self.pos)?;
            self.skip_whitespace();
            self.expect(b':')?;
            self.skip_whitespace();
            let wanted = if escaped {
                let key: String = serde_json::from_str(raw_key).ok()?;
                fields.iter().find(|(name, _)| *name == key)
            } else {
                let key = &raw_key[1..raw_key.len() - 1];
                fields.iter().find(|(name, _)| name == key)
            };
            let value_start = self.pos;
            match wanted {
                None => self.skip_value()?,
                Some((_, projection)) => {
                    if !empty {
                        out.push(',');
                    }
                    empty = false;
                    out.push_str(raw_key);
                    out.push(':');
                    match projection {
                        Projection::Fields(inner) if self.peek()? == b'{' => {
                            self.project_object(inner, out)?;
                        }
                        _ => {
                            self.skip_value()?;
                            out.push_str(self.json.get(value_start..self.pos)?);
                        }
                    }
                }
            }
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    out.push('}');
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxc_allocator::Allocator;
    use oxc_parser::{ParseOptions, Parser};
    use oxc_span::SourceType;

    fn projection_of(script: &str) -> Projection {
        let allocator = Allocator::default();
        let parsed = Parser::new(&allocator, script, SourceType::script())
            .with_options(ParseOptions {
                allow_return_outside_function: true,
                ..ParseOptions::default()
            })
            .parse();
        assert!(parsed.diagnostics.is_empty(), "{script}");
        document_projection(&parsed.program)
    }

    fn fields(names: &[(&str, Projection)]) -> Projection {
        Projection::Fields(
            names
                .iter()
                .map(|(name, projection)| ((*name).to_owned(), projection.clone()))
                .collect(),
        )
    }

    use Projection::Whole;

    #[test]
    fn named_reads_keep_only_what_they_name() {
        assert_eq!(
            projection_of("loadToPeople({Name: this.First + ' ' + this.Last, Age: this.Age});"),
            fields(&[("First", Whole), ("Last", Whole), ("Age", Whole)])
        );
        assert_eq!(
            projection_of(
                "var c = this.ShipTo.City; var n = this['ShipTo'].Country; \
                 for (var i = 0; i < this.Lines.length; i++) loadToX(this.Lines[i]);"
            ),
            fields(&[
                ("ShipTo", fields(&[("City", Whole), ("Country", Whole)])),
                ("Lines", Whole),
            ])
        );
        assert_eq!(
            projection_of("loadToX({a: this?.A?.B, b: (this.A).C, n: id(this)});"),
            fields(&[
                ("A", fields(&[("B", Whole), ("C", Whole)])),
                ("@metadata", Whole)
            ])
        );
        assert_eq!(projection_of("loadToX({a: 1});"), fields(&[]));
        assert_eq!(
            projection_of("loadToX({m: getMetadata(this)['@collection'], d: this.A.B});"),
            fields(&[("@metadata", Whole), ("A", fields(&[("B", Whole)]))])
        );
    }

    #[test]
    fn whole_uses_keep_the_whole_value() {
        for script in [
            "loadToX(this);",
            "var d = this; loadToX({a: d.A});",
            "var k = 'A'; loadToX({a: this[k]});",
            "for (var k in this) output(k);",
            "loadToX({...this});",
            "var {A} = this; loadToX({A});",
            "output(Object.keys(this));",
            "if (this.hasOwnProperty('A')) loadToX({});",
            "this.A = 1; loadToX({a: this.A});",
            "loadToX({a: eval('this.A')});",
            "with (this) { loadToX({a: A}); }",
            "loadToX({a: 'A' in this});",
            "function f() { return this; } loadToX(f.call(this));",
            "var id = function (d) { return d; }; loadToX(id(this));",
            "function getMetadata(d) { return d; } loadToX(getMetadata(this));",
            "loadToX({a: id(this, 1)});",
        ] {
            assert_eq!(projection_of(script), Whole, "{script}");
        }
        assert_eq!(
            projection_of("loadToX({k: Object.keys(this.A), b: this.B.C});"),
            fields(&[("A", Whole), ("B", fields(&[("C", Whole)]))])
        );
        assert_eq!(
            projection_of("loadToX({h: this.A.hasOwnProperty('B'), u: this.N.toUpperCase()});"),
            fields(&[("A", Whole), ("N", Whole)])
        );
        assert_eq!(
            projection_of("loadToX({h: (this.A.f)(), t: this.B.tag`x`});"),
            fields(&[("A", Whole), ("B", Whole)])
        );
        assert_eq!(
            projection_of("this.A.B = 1; delete this.C.D; loadToX({a: this.A});"),
            fields(&[("A", Whole), ("C", fields(&[("D", Whole)]))])
        );
    }

    fn project(json: &str, projection: &Projection) -> Option<String> {
        let Projection::Fields(fields) = projection else {
            return Some(json.to_owned());
        };
        let mut out = String::new();
        project_object(json, fields, &mut out).map(|()| out)
    }

    #[test]
    fn documents_are_cut_down_to_the_projection() {
        let projection = fields(&[
            ("A", Whole),
            ("S", fields(&[("C", Whole), ("X", fields(&[("Y", Whole)]))])),
            ("L", fields(&[("length", Whole)])),
            ("N", fields(&[("Q", Whole)])),
            ("é\"", Whole),
        ]);
        let json = r#" { "Z" : {"A": [1, "}", {"]": "\""}]}, "A" : -1.5e3 ,
            "S": {"C": "c\"}", "D": [true, null], "X": {"Y": {"deep": [1]}, "W": 2}},
            "L": [{"a": 1}, 2], "N": null, "\u00e9\"": "k", "A": false } "#;
        assert_eq!(
            project(json, &projection).unwrap(),
            r#"{"A":-1.5e3,"S":{"C":"c\"}","X":{"Y":{"deep": [1]}}},"L":[{"a": 1}, 2],"N":null,"\u00e9\"":"k","A":false}"#
        );
        assert_eq!(project("{}", &projection).unwrap(), "{}");
        assert_eq!(project(r#"{"B": 1}"#, &projection).unwrap(), "{}");
        for broken in [
            "[1]",
            "1",
            r#"{"A": 1"#,
            r#"{"A" 1}"#,
            r#"{"A": "x}"#,
            "{} x",
            "",
        ] {
            assert_eq!(project(broken, &projection), None, "{broken}");
        }
    }
}
