//! Values of the direct interpreter, and JSON in and out exactly as QuickJS's `JSON.parse` and
//! `JSON.stringify` would have it for those values.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;

use super::compile::intern;
use crate::engine::plain_shortest;
use crate::projection::{Projection, skip_value};

/// A JavaScript value the interpreter supports. Functions, symbols, dates and the rest do not
/// exist here: a script that could make one does not run directly.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(Arc<str>),
    /// Arrays are never changed in place: the interpreter refuses index assignment.
    Arr(Rc<Arr>),
    Obj(Rc<RefCell<Obj>>),
    /// A `let` or `const` binding before its declaration ran (its temporal dead zone).
    Uninitialized,
}

/// An ordinary object: own properties in insertion order. Keys that are array indices, which
/// JavaScript orders before the others, are never stored (see [`is_index_like`]).
///
/// Objects and arrays only ever contain values made before them (the interpreter does not
/// assign an object into a member), so they form no cycles, and their height is known: values
/// nested deeper than [`MAX_HEIGHT`] are left to QuickJS, so dropping one never recurses deeply.
#[derive(Debug, Default)]
pub(crate) struct Obj {
    pub props: Vec<(Arc<str>, Val)>,
    pub height: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Arr {
    pub items: Vec<Val>,
    pub height: usize,
}

/// The deepest nesting of objects and arrays the interpreter builds or parses.
pub(crate) const MAX_HEIGHT: usize = 64;

impl Arr {
    pub fn new(items: Vec<Val>) -> Arr {
        let height = items.iter().map(|it| it.height() + 1).max().unwrap_or(1);
        Arr { items, height }
    }
}

/// A property name to look up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<'k> {
    /// A name the script spells out: objects store it as this very `Arc` (see
    /// [`Compiled::names`](super::compile::Compiled::names)), so pointers are compared.
    Interned(&'k Arc<str>),
    /// A name computed while running.
    Text(&'k str),
}

impl Key<'_> {
    pub fn text(&self) -> &str {
        match self {
            Key::Interned(name) => name,
            Key::Text(text) => text,
        }
    }
}

impl Obj {
    pub fn get(&self, key: Key<'_>) -> Option<&Val> {
        let found = match key {
            Key::Interned(key) => self.props.iter().find(|(name, _)| Arc::ptr_eq(name, key)),
            Key::Text(key) => self.props.iter().find(|(name, _)| &**name == key),
        };
        found.map(|(_, value)| value)
    }

    /// Sets `key`, keeping the position of an existing property (as JavaScript does).
    pub fn set(&mut self, key: Arc<str>, value: Val) {
        self.height = self.height.max(value.height() + 1);
        if let Some(slot) = self.props.iter_mut().find(|(name, _)| *name == key) {
            slot.1 = value;
        } else {
            self.props.push((key, value));
        }
    }
}

/// Names on `Object.prototype`: reading one that is not an own property finds the inherited
/// function, which the interpreter has no value for.
const OBJECT_PROTOTYPE_NAMES: &[&str] = &[
    "constructor",
    "__proto__",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toLocaleString",
    "toString",
    "valueOf",
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
];

pub(crate) fn is_inherited_name(key: &str) -> bool {
    OBJECT_PROTOTYPE_NAMES.contains(&key)
}

/// Keys JavaScript might order differently from insertion order, or treat specially. Refused
/// wherever an object gets a property, so that property order is always insertion order.
pub(crate) fn is_index_like(key: &str) -> bool {
    key.as_bytes().first().is_some_and(u8::is_ascii_digit) || key == "__proto__"
}

impl Val {
    /// How many levels of objects and arrays this value is (0 for a primitive).
    pub fn height(&self) -> usize {
        match self {
            Val::Obj(obj) => obj.borrow().height,
            Val::Arr(arr) => arr.height,
            _ => 0,
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            Val::Undefined | Val::Null | Val::Uninitialized => false,
            Val::Bool(it) => *it,
            Val::Num(it) => !(*it == 0.0 || it.is_nan()),
            Val::Str(it) => !it.is_empty(),
            Val::Arr(_) | Val::Obj(_) => true,
        }
    }

    pub fn is_nullish(&self) -> bool {
        matches!(self, Val::Undefined | Val::Null)
    }

    /// `ToNumber`, for the values where it is simple; `None` for strings and objects.
    pub fn to_number(&self) -> Option<f64> {
        match self {
            Val::Undefined => Some(f64::NAN),
            Val::Null => Some(0.0),
            Val::Bool(it) => Some(if *it { 1.0 } else { 0.0 }),
            Val::Num(it) => Some(*it),
            Val::Str(_) | Val::Arr(_) | Val::Obj(_) | Val::Uninitialized => None,
        }
    }

    /// Appends `ToString(self)`; `None` for objects and arrays (their `toString` is a function
    /// call the interpreter does not make).
    pub fn push_string(&self, out: &mut String) -> Option<()> {
        match self {
            Val::Undefined => out.push_str("undefined"),
            Val::Null => out.push_str("null"),
            Val::Bool(it) => out.push_str(if *it { "true" } else { "false" }),
            Val::Num(it) => push_number(*it, out),
            Val::Str(it) => out.push_str(it),
            Val::Arr(_) | Val::Obj(_) | Val::Uninitialized => return None,
        }
        Some(())
    }

    pub fn type_of(&self) -> &'static str {
        match self {
            Val::Undefined | Val::Uninitialized => "undefined",
            Val::Null | Val::Arr(_) | Val::Obj(_) => "object",
            Val::Bool(_) => "boolean",
            Val::Num(_) => "number",
            Val::Str(_) => "string",
        }
    }
}

/// `x === y`.
pub(crate) fn strict_equals(x: &Val, y: &Val) -> bool {
    match (x, y) {
        (Val::Undefined, Val::Undefined) | (Val::Null, Val::Null) => true,
        (Val::Bool(a), Val::Bool(b)) => a == b,
        (Val::Num(a), Val::Num(b)) => a == b,
        (Val::Str(a), Val::Str(b)) => a == b,
        (Val::Arr(a), Val::Arr(b)) => Rc::ptr_eq(a, b),
        (Val::Obj(a), Val::Obj(b)) => Rc::ptr_eq(a, b),
        _ => false,
    }
}

/// `x == y` where it needs no conversion of a string or an object; `None` otherwise.
pub(crate) fn loose_equals(x: &Val, y: &Val) -> Option<bool> {
    if std::mem::discriminant(x) == std::mem::discriminant(y) {
        return Some(strict_equals(x, y));
    }
    match (x, y) {
        (Val::Undefined | Val::Null, Val::Undefined | Val::Null) => Some(true),
        (Val::Undefined | Val::Null, _) | (_, Val::Undefined | Val::Null) => Some(false),
        (Val::Num(a), Val::Bool(_)) => Some(Some(*a) == y.to_number()),
        (Val::Bool(_), Val::Num(b)) => Some(x.to_number() == Some(*b)),
        _ => None,
    }
}

/// `Number.prototype.toString()` of `value` (ECMAScript `Number::toString`, radix 10).
pub(crate) fn push_number(value: f64, out: &mut String) {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if value.is_nan() {
        out.push_str("NaN");
        return;
    }
    if value == 0.0 {
        out.push('0');
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if value.fract() == 0.0 && value.abs() < EXACT {
        #[allow(clippy::cast_possible_truncation)]
        let whole = value as i64;
        let _ = write!(out, "{whole}");
        return;
    }
    let mut buffer = zmij::Buffer::new();
    if (1e-6..1e21).contains(&value.abs())
        && let Some(text) = plain_shortest(&mut buffer, value)
    {
        out.push_str(text);
        return;
    }
    if value < 0.0 {
        out.push('-');
    }
    // The shortest digits that round-trip (ties to even, as ECMAScript asks; Rust's own `{:e}`
    // does not always), and where the decimal point goes.
    let (digits, n) = shortest_digits(&mut buffer, value.abs());
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if k <= n && n <= 21 {
        out.push_str(&digits);
        for _ in 0..n - k {
            out.push('0');
        }
    } else if 0 < n && n <= 21 {
        let (whole, fraction) = digits.split_at(usize::try_from(n).unwrap_or(0));
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        for _ in 0..-n {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{}", if n > 0 { '+' } else { '-' }, (n - 1).abs());
    }
}

/// The shortest round-trip digits of a finite positive `value`, without leading or trailing
/// zeros, and `n` such that the value is `0.digits × 10^n`.
fn shortest_digits(buffer: &mut zmij::Buffer, value: f64) -> (String, i32) {
    let text = buffer.format_finite(value);
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = String::with_capacity(whole.len() + fraction.len());
    digits.push_str(whole);
    digits.push_str(fraction);
    let mut n = i32::try_from(whole.len()).unwrap_or(0) + exponent;
    let leading = digits.bytes().take_while(|it| *it == b'0').count();
    digits.drain(..leading);
    n -= i32::try_from(leading).unwrap_or(0);
    let trailing = digits.bytes().rev().take_while(|it| *it == b'0').count();
    digits.truncate(digits.len() - trailing);
    (digits, n)
}

/// `JSON.stringify(value)` for a value inside an object or array; `None` when the result would
/// not be what QuickJS writes (too deep, or a cycle).
pub(crate) fn push_json(value: &Val, depth: usize, out: &mut String) -> Option<()> {
    match value {
        Val::Undefined | Val::Null | Val::Uninitialized => out.push_str("null"),
        Val::Bool(it) => out.push_str(if *it { "true" } else { "false" }),
        Val::Num(it) if it.is_finite() => push_number(*it, out),
        Val::Num(_) => out.push_str("null"),
        Val::Str(it) => push_json_string(it, out),
        Val::Arr(arr) => {
            if depth >= MAX_HEIGHT {
                return None;
            }
            out.push('[');
            for (item_idx, item) in arr.items.iter().enumerate() {
                if item_idx > 0 {
                    out.push(',');
                }
                push_json(item, depth + 1, out)?;
            }
            out.push(']');
        }
        Val::Obj(obj) => {
            let obj = obj.borrow();
            let members = obj.props.iter().map(|(name, value)| (&**name, value));
            push_json_object(members, depth, false, out)?;
        }
    }
    Some(())
}

/// `JSON.stringify` of an object with these members: `undefined` ones are left out, or
/// written as null when `undefined_as_null` (the loaded object itself, with RavenDB's rule).
pub(crate) fn push_json_object<'v>(
    members: impl Iterator<Item = (&'v str, &'v Val)>,
    depth: usize,
    undefined_as_null: bool,
    out: &mut String,
) -> Option<()> {
    if depth >= MAX_HEIGHT {
        return None;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in members {
        if matches!(value, Val::Undefined) && !undefined_as_null {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_json_string(name, out);
        out.push(':');
        push_json(value, depth + 1, out)?;
    }
    out.push('}');
    Some(())
}

/// A JSON string literal as QuickJS's `JSON.stringify` writes it.
pub(crate) fn push_json_string(text: &str, out: &mut String) {
    out.push('"');
    let mut run_start = 0;
    for (idx, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\x08' => "\\b",
            b'\x0c' => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[run_start..idx]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        run_start = idx + 1;
    }
    out.push_str(&text[run_start..]);
    out.push('"');
}

/// What of a document the script can reach ([`Projection`]), with names shared by every
/// document parsed.
#[derive(Debug, Clone)]
pub(crate) enum Wanted {
    Whole,
    Fields(Vec<(Arc<str>, Wanted)>),
}

impl Wanted {
    /// The projection, with its names taken from (or added to) the script's `names`.
    pub fn new(projection: &Projection, names: &mut Vec<Arc<str>>) -> Wanted {
        match projection {
            Projection::Whole => Wanted::Whole,
            Projection::Fields(fields) => Wanted::Fields(
                fields
                    .iter()
                    .map(|(name, inner)| (intern(names, name), Wanted::new(inner, names)))
                    .collect(),
            ),
        }
    }
}

/// Parses a stored document the way `JSON.parse` would, into values, keeping only what
/// `wanted` names (as [`project_object`](crate::projection::project_object) does for QuickJS);
/// `None` for anything the interpreter leaves to QuickJS: keys that are array indices or
/// `__proto__`, lone surrogate escapes, nesting deeper than [`MAX_HEIGHT`], or text that is
/// not JSON.
///
/// Keys that are among `names` are stored as those `Arc`s.
pub(crate) fn parse_document(json: &str, wanted: &Wanted, names: &[Arc<str>]) -> Option<Val> {
    let mut parser = JsonParser {
        text: json,
        bytes: json.as_bytes(),
        pos: 0,
        names,
    };
    let value = parser.wanted_value(wanted, 0)?;
    parser.skip_whitespace();
    (parser.pos == parser.bytes.len()).then_some(value)
}

#[cfg(test)]
fn parse_json(json: &str) -> Option<Val> {
    parse_document(json, &Wanted::Whole, &[])
}

struct JsonParser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    names: &'a [Arc<str>],
}

impl<'a> JsonParser<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn next_token(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.pos).copied()
    }

    fn wanted_value(&mut self, wanted: &Wanted, depth: usize) -> Option<Val> {
        match wanted {
            Wanted::Fields(fields) if self.next_token()? == b'{' => {
                self.object(Some(fields), depth)
            }
            _ => self.value(depth),
        }
    }

    /// An object starting at its `{`. With `fields`, only those members are kept, and the
    /// others are skipped without being decoded.
    fn object(&mut self, fields: Option<&[(Arc<str>, Wanted)]>, depth: usize) -> Option<Val> {
        if depth >= MAX_HEIGHT {
            return None;
        }
        self.pos += 1;
        let mut obj = Obj::default();
        if self.next_token()? == b'}' {
            self.pos += 1;
            return Some(Val::Obj(Rc::new(RefCell::new(obj))));
        }
        loop {
            if self.next_token()? != b'"' {
                return None;
            }
            let key = self.key_text()?;
            let member = match fields {
                Some(fields) => fields
                    .iter()
                    .find(|(name, _)| **name == *key)
                    .map(|(name, inner)| (Arc::clone(name), Some(inner))),
                None => Some((self.shared_key(&key), None)),
            };
            if self.next_token()? != b':' {
                return None;
            }
            self.pos += 1;
            match member {
                Some((name, inner)) => {
                    if is_index_like(&name) {
                        return None;
                    }
                    let value = match inner {
                        Some(inner) => self.wanted_value(inner, depth + 1)?,
                        None => self.value(depth + 1)?,
                    };
                    obj.set(name, value);
                }
                None => {
                    self.skip_whitespace();
                    self.pos = skip_value(self.text, self.pos)?;
                }
            }
            match self.next_token()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(Val::Obj(Rc::new(RefCell::new(obj))));
                }
                _ => return None,
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<Val> {
        if depth >= MAX_HEIGHT {
            return None;
        }
        match self.next_token()? {
            b'{' => self.object(None, depth),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.next_token()? == b']' {
                    self.pos += 1;
                    return Some(Val::Arr(Rc::new(Arr::new(items))));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.next_token()? {
                        b',' => self.pos += 1,
                        b']' => {
                            self.pos += 1;
                            return Some(Val::Arr(Rc::new(Arr::new(items))));
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(Val::Str),
            b't' => self.literal("true", Val::Bool(true)),
            b'f' => self.literal("false", Val::Bool(false)),
            b'n' => self.literal("null", Val::Null),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') =
                    self.bytes.get(self.pos)
                {
                    self.pos += 1;
                }
                // Correctly rounded, as QuickJS's own conversion is.
                self.text[start..self.pos].parse::<f64>().ok().map(Val::Num)
            }
            _ => None,
        }
    }

    /// An object key starting at its opening quote, borrowed from the text when it has no
    /// escape.
    fn key_text(&mut self) -> Option<Cow<'a, str>> {
        let start = self.pos + 1;
        let end = start + memchr::memchr2(b'"', b'\\', &self.bytes[start..])?;
        if self.bytes[end] == b'"' {
            self.pos = end + 1;
            return Some(Cow::Borrowed(&self.text[start..end]));
        }
        self.string().map(|decoded| Cow::Owned(decoded.to_string()))
    }

    /// The script's own `Arc` for a name it uses, a new one otherwise.
    fn shared_key(&self, key: &str) -> Arc<str> {
        match self.names.iter().find(|it| &***it == key) {
            Some(name) => Arc::clone(name),
            None => Arc::from(key),
        }
    }

    fn literal(&mut self, word: &str, value: Val) -> Option<Val> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word.as_bytes()).then(|| {
            self.pos = end;
            value
        })
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Option<Arc<str>> {
        self.pos += 1;
        let start = self.pos;
        let end = start + memchr::memchr2(b'"', b'\\', &self.bytes[start..])?;
        if self.bytes[end] == b'"' {
            self.pos = end + 1;
            return Some(Arc::from(&self.text[start..end]));
        }
        let mut out = String::with_capacity(end - start + 16);
        let mut run_start = start;
        loop {
            let idx = run_start + memchr::memchr2(b'"', b'\\', &self.bytes[run_start..])?;
            out.push_str(&self.text[run_start..idx]);
            if self.bytes[idx] == b'"' {
                self.pos = idx + 1;
                return Some(Arc::from(out));
            }
            let escape = *self.bytes.get(idx + 1)?;
            run_start = idx + 2;
            match escape {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\x08'),
                b'f' => out.push('\x0c'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let unit = self.hex4(idx + 2)?;
                    run_start = idx + 6;
                    let code = if (0xd800..0xdc00).contains(&unit) {
                        // A high surrogate must be followed by a low one.
                        if self.bytes.get(run_start..run_start + 2)? != b"\\u" {
                            return None;
                        }
                        let low = self.hex4(run_start + 2)?;
                        if !(0xdc00..0xe000).contains(&low) {
                            return None;
                        }
                        run_start += 6;
                        0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                    } else {
                        unit
                    };
                    out.push(char::from_u32(code)?);
                }
                _ => return None,
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.text.get(at..at + 4)?;
        u32::from_str_radix(digits, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(value: f64) -> String {
        let mut out = String::new();
        push_number(value, &mut out);
        out
    }

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (1.5, "1.5"),
            (-1.5, "-1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (1.5e-7, "1.5e-7"),
            (0.000_001, "0.000001"),
            (1e-7, "1e-7"),
            (2f64.powi(53), "9007199254740992"),
            (2f64.powi(60), "1152921504606847000"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            // The double is …858.125, exactly halfway between …12 and …13: ECMAScript takes
            // the even digit (Rust's `{:e}` writes …13).
            (165_793_407_361_858.13, "165793407361858.12"),
            (1.234_567_890_123_456_7e-10, "1.2345678901234568e-10"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (value, expected) in cases {
            assert_eq!(number(value), expected, "{value:e}");
        }
    }

    #[test]
    fn documents_parse_into_values_or_are_left_to_quickjs() {
        let Some(Val::Obj(obj)) = parse_json(r#"{"a":1,"b":"x\u00e9\ud83d\ude00","a":2}"#) else {
            panic!("not an object");
        };
        let obj = obj.borrow();
        assert_eq!(obj.props.len(), 2);
        assert!(matches!(obj.get(Key::Text("a")), Some(Val::Num(it)) if *it == 2.0));
        assert!(matches!(obj.get(Key::Text("b")), Some(Val::Str(it)) if &**it == "xé😀"));
        assert!(parse_json(r#"{"1":1}"#).is_none());
        assert!(parse_json(r#"{"__proto__":1}"#).is_none());
        assert!(parse_json(r#"{"a":"\ud800"}"#).is_none());
        assert!(parse_json(r#"{"a":1} x"#).is_none());
    }
}
