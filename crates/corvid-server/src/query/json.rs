//! Reading values out of a stored document's JSON text without parsing it into a tree.
//!
//! A query needs a few fields of each document, and a stored document may be nested deeper
//! than a recursive parser allows (the store accepts 127 levels plus `@metadata`, which is
//! where serde_json's recursion limit of 128 breaks). So this module walks the raw text: it
//! finds a field by scanning the keys of one object and skips every other value with a loop
//! that counts brackets, never recursing. Only the scalars a query compares are decoded.
//! The text is a stored document, so it is valid JSON; on anything else the walk stops and
//! the field reads as missing instead of panicking.

use crate::query::ast::{Path, Scalar, Step};

/// What a path found in a document: a scalar, or the raw text of an object or array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found<'a> {
    Scalar(Scalar),
    Composite(&'a str),
}

/// Returns the raw text of every value a path reaches in a JSON object; `[]` steps fan out
/// over array elements, and an array at the end of the path is returned whole.
pub(crate) fn raw_values<'a>(object: &'a str, steps: &[Step]) -> Vec<&'a str> {
    let mut current = vec![object.trim()];
    for step in steps {
        let mut next = Vec::new();
        for raw in current {
            match step {
                Step::Field(name) => {
                    if let Some(value) = object_field(raw, name) {
                        next.push(value);
                    }
                }
                Step::EachItem => next.extend(array_items(raw)),
            }
        }
        current = next;
    }
    current
}

/// Every value a path reaches in a document, arrays at the end flattened into their items
/// (RavenDB matches a condition on an array field when any item matches).
pub(crate) fn path_values<'a>(body: &'a str, id: &str, path: &Path) -> Vec<Found<'a>> {
    let steps = match path {
        Path::Id => return vec![Found::Scalar(Scalar::String(id.to_owned()))],
        Path::Field(steps) => steps,
    };
    let mut found = Vec::new();
    for raw in raw_values(body, steps) {
        if raw.starts_with('[') {
            for item in array_items(raw) {
                found.push(decode(item));
            }
        } else {
            found.push(decode(raw));
        }
    }
    found
}

/// Decodes one raw value: a scalar, or an object/array kept as text.
pub(crate) fn decode(raw: &str) -> Found<'_> {
    match raw.as_bytes().first() {
        Some(b'{' | b'[') => Found::Composite(raw),
        Some(b'"') => Found::Scalar(Scalar::String(decode_string(raw))),
        Some(b't') => Found::Scalar(Scalar::Bool(true)),
        Some(b'f') => Found::Scalar(Scalar::Bool(false)),
        Some(b'n') | None => Found::Scalar(Scalar::Null),
        Some(_) => Found::Scalar(match raw.parse::<f64>() {
            Ok(number) => Scalar::Number(number),
            // Out of f64's range (`1e99999`): RavenDB keeps the text.
            Err(_) => Scalar::String(raw.to_owned()),
        }),
    }
}

/// The value of one field of a JSON object, as raw text.
pub(crate) fn object_field<'a>(object: &'a str, name: &str) -> Option<&'a str> {
    let bytes = object.as_bytes();
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let mut idx = skip_whitespace(bytes, 1);
    while bytes.get(idx) == Some(&b'"') {
        let key_end = string_end(bytes, idx)?;
        let key = &object[idx..key_end];
        idx = skip_whitespace(bytes, key_end);
        if bytes.get(idx) != Some(&b':') {
            return None;
        }
        idx = skip_whitespace(bytes, idx + 1);
        let value_end = value_end(bytes, idx)?;
        if key_matches(key, name) {
            return Some(&object[idx..value_end]);
        }
        idx = skip_whitespace(bytes, value_end);
        if bytes.get(idx) == Some(&b',') {
            idx = skip_whitespace(bytes, idx + 1);
        }
    }
    None
}

/// The raw items of a JSON array (nothing for anything else).
pub(crate) fn array_items(array: &str) -> Vec<&str> {
    let bytes = array.as_bytes();
    let mut items = Vec::new();
    if bytes.first() != Some(&b'[') {
        return items;
    }
    let mut idx = skip_whitespace(bytes, 1);
    while idx < bytes.len() && bytes[idx] != b']' {
        let Some(end) = value_end(bytes, idx) else {
            return items;
        };
        items.push(&array[idx..end]);
        idx = skip_whitespace(bytes, end);
        if bytes.get(idx) == Some(&b',') {
            idx = skip_whitespace(bytes, idx + 1);
        }
    }
    items
}

/// Decodes a JSON string literal (quotes included).
pub(crate) fn decode_string(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw
            .get(1..raw.len().saturating_sub(1))
            .unwrap_or("")
            .to_owned();
    }
    match serde_json::from_str::<String>(raw) {
        Ok(text) => text,
        // A lone surrogate escape (`"\ud800"`), which the store accepts: keep the text.
        Err(_) => raw
            .get(1..raw.len().saturating_sub(1))
            .unwrap_or("")
            .to_owned(),
    }
}

fn key_matches(raw_key: &str, name: &str) -> bool {
    let inner = &raw_key[1..raw_key.len() - 1];
    if inner.contains('\\') {
        decode_string(raw_key) == name
    } else {
        inner == name
    }
}

fn skip_whitespace(bytes: &[u8], mut idx: usize) -> usize {
    while bytes.get(idx).is_some_and(u8::is_ascii_whitespace) {
        idx += 1;
    }
    idx
}

/// The offset just after the string literal starting at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut idx = start + 1;
    while idx < bytes.len() {
        match bytes[idx] {
            b'\\' => idx += 2,
            b'"' => return Some(idx + 1),
            _ => idx += 1,
        }
    }
    None
}

/// The offset just after the value starting at `start`; nesting is counted, not recursed.
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'"' => string_end(bytes, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut idx = start;
            while idx < bytes.len() {
                match bytes[idx] {
                    b'"' => {
                        idx = string_end(bytes, idx)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(idx + 1);
                        }
                    }
                    _ => {}
                }
                idx += 1;
            }
            None
        }
        _ => {
            let mut idx = start;
            while idx < bytes.len() && !matches!(bytes[idx], b',' | b'}' | b']') {
                if bytes[idx].is_ascii_whitespace() {
                    break;
                }
                idx += 1;
            }
            Some(idx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(names: &[&str]) -> Vec<Step> {
        names
            .iter()
            .map(|it| {
                if *it == "[]" {
                    Step::EachItem
                } else {
                    Step::Field((*it).to_owned())
                }
            })
            .collect()
    }

    #[test]
    fn finds_nested_fields_and_array_items() {
        let doc = r#"{ "a" : {"x":"}{\"", "b": [1, {"c": 2}]}, "Lines":[{"P":"p1"},{"P":"p\u0032"}], "n": -1.5e1 }"#;
        assert_eq!(raw_values(doc, &steps(&["a", "b"])), [r#"[1, {"c": 2}]"#]);
        assert_eq!(raw_values(doc, &steps(&["a", "x"])), [r#""}{\"""#]);
        assert_eq!(
            raw_values(doc, &steps(&["Lines", "[]", "P"])),
            [r#""p1""#, r#""p\u0032""#]
        );
        let path = Path::Field(steps(&["Lines", "[]", "P"]));
        assert_eq!(
            path_values(doc, "x/1", &path),
            [
                Found::Scalar(Scalar::String("p1".into())),
                Found::Scalar(Scalar::String("p2".into()))
            ]
        );
        assert_eq!(
            path_values(doc, "x", &Path::Field(steps(&["n"]))),
            [Found::Scalar(Scalar::Number(-15.0))]
        );
        assert!(raw_values(doc, &steps(&["missing"])).is_empty());
    }

    #[test]
    fn deep_documents_do_not_recurse() {
        let depth = 100_000;
        let doc = format!(
            r#"{{"deep":{}{}, "Name":"x"}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(raw_values(&doc, &steps(&["Name"])), [r#""x""#]);
    }

    #[test]
    fn truncated_text_reads_as_missing() {
        for doc in [r#"{"a":"#, r#"{"a":[1,"#, r#"{"a"#, "", "[", r#"{"a":"x"#] {
            assert!(raw_values(doc, &steps(&["a", "b"])).is_empty() || doc.is_empty());
            let _ = path_values(doc, "id", &Path::Field(steps(&["a"])));
        }
    }
}
