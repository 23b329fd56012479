//! Evaluating a parsed query against one stored document: the `where` condition, the sort
//! keys of `order by`, and the `select` projection — all read from the document's JSON text
//! (see `json.rs`), never from a parsed tree.
//!
//! Comparison semantics follow RavenDB 4.1 (checked against it): strings compare
//! case-insensitively; a number only equals or orders against numbers and a string only
//! against strings (`Age = 7` does not match `"7"`); `null` matches `= null` but a missing
//! field does not; `!=` needs the field to exist (and to be a number when the value is one);
//! an array matches when any item does.

use std::cmp::Ordering;

use corvid_store::{Document, push_json_string};

use crate::query::ast::{CompareOp, Expr, OrderKey, OrderType, Path, Query, Scalar, Step};
use crate::query::json::{Found, array_items, decode, path_values, raw_values};

/// One document's value for one `order by` key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SortValue {
    /// Missing, or not of the key's numeric type (null included): sorts first.
    Absent,
    Integer(i64),
    Float(f64),
    Text(String),
}

impl Query {
    /// Returns true when the document satisfies the `where` condition.
    pub fn matches(&self, document: &Document) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|filter| filter_matches(filter, document, false))
    }

    /// The document's sort values, one per `order by` key.
    pub fn sort_values(&self, document: &Document) -> Vec<SortValue> {
        self.order_by
            .iter()
            .map(|key| sort_value(key, document))
            .collect()
    }

    /// Orders two documents' sort values by the `order by` keys.
    pub fn compare_sort_values(&self, left: &[SortValue], right: &[SortValue]) -> Ordering {
        for ((key, left), right) in self.order_by.iter().zip(left).zip(right) {
            let ordering = compare_sort(key.order_type, left, right);
            let ordering = if key.descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    }

    /// Writes the `select` projection of a document (RavenDB's shape: the projected fields,
    /// missing ones left out, and `@metadata` with `@projection: true`). Returns false when
    /// the query has no projection.
    pub fn write_projection(&self, document: &Document, out: &mut String) -> bool {
        let Some(select) = &self.select else {
            return false;
        };
        out.push('{');
        for projection in &select.fields {
            let raw = match &projection.path {
                Path::Id => {
                    let mut text = String::new();
                    push_json_string(&mut text, &document.id);
                    text
                }
                Path::Field(steps) => {
                    let values = values_in(document, steps);
                    let fans_out = steps.contains(&Step::EachItem);
                    match values.as_slice() {
                        [] => continue,
                        [single] if !fans_out => (*single).to_owned(),
                        many => format!("[{}]", many.join(",")),
                    }
                }
            };
            push_json_string(out, &projection.name);
            out.push(':');
            out.push_str(&raw);
            out.push(',');
        }
        out.push_str("\"@metadata\":{\"@projection\":true,");
        push_json_string(out, "@change-vector");
        out.push(':');
        push_json_string(out, &document.change_vector);
        out.push_str(",\"@id\":");
        push_json_string(out, &document.id);
        out.push_str(",\"@index-score\":0,\"@last-modified\":");
        push_json_string(out, &document.last_modified.to_iso());
        out.push_str("}}");
        true
    }

    /// The ids a document's `include` paths name (strings, or arrays of strings). With a
    /// `select`, RavenDB reads an include from the projection: the path names a projected
    /// field (by its name, alias included), and a path that is not projected includes nothing.
    pub fn included_ids(&self, document: &Document) -> Vec<String> {
        let mut ids = Vec::new();
        for include in &self.includes {
            let path = match &self.select {
                None => include,
                Some(select) => {
                    let name = include.display_name();
                    match select.fields.iter().find(|it| it.name == name) {
                        Some(projection) => &projection.path,
                        None => continue,
                    }
                }
            };
            for found in values_of(document, path) {
                if let Found::Scalar(Scalar::String(id)) = found {
                    ids.push(id);
                }
            }
        }
        ids
    }
}

/// The raw values of a path, `@metadata.…` read from the document's metadata.
pub(crate) fn values_in<'a>(document: &'a Document, steps: &[Step]) -> Vec<&'a str> {
    match steps.split_first() {
        Some((Step::Field(first), rest)) if first == "@metadata" => {
            raw_values(&document.metadata, rest)
        }
        _ => raw_values(&document.body, steps),
    }
}

/// Every scalar or composite a path reaches, arrays flattened.
pub(crate) fn values_of<'a>(document: &'a Document, path: &Path) -> Vec<Found<'a>> {
    match path {
        Path::Field(steps) if matches!(steps.first(), Some(Step::Field(it)) if it == "@metadata") =>
        {
            let mut found = Vec::new();
            for raw in values_in(document, steps) {
                if raw.starts_with('[') {
                    found.extend(array_items(raw).into_iter().map(decode));
                } else {
                    found.push(decode(raw));
                }
            }
            found
        }
        _ => path_values(&document.body, &document.id, path),
    }
}

/// `exact`: inside `exact(…)`, strings compare case-sensitively.
fn filter_matches(expr: &Expr, document: &Document, exact: bool) -> bool {
    match expr {
        Expr::True => true,
        Expr::And(left, right) => {
            filter_matches(left, document, exact) && filter_matches(right, document, exact)
        }
        Expr::Or(left, right) => {
            filter_matches(left, document, exact) || filter_matches(right, document, exact)
        }
        Expr::Not(inner) => !filter_matches(inner, document, exact),
        Expr::Exact(inner) => filter_matches(inner, document, true),
        Expr::Compare { path, op, value } => {
            let found = scalars(document, path);
            match op {
                CompareOp::Equal => found.iter().any(|it| scalar_equals(it, value, exact)),
                CompareOp::NotEqual => {
                    let comparable = match value {
                        Scalar::Number(_) => found.iter().any(|it| matches!(it, Scalar::Number(_))),
                        _ => !found.is_empty(),
                    };
                    comparable && !found.iter().any(|it| scalar_equals(it, value, exact))
                }
                _ => found.iter().any(|it| {
                    let Some(ordering) = scalar_order(it, value, exact) else {
                        return false;
                    };
                    match op {
                        CompareOp::Less => ordering == Ordering::Less,
                        CompareOp::LessOrEqual => ordering != Ordering::Greater,
                        CompareOp::Greater => ordering == Ordering::Greater,
                        _ => ordering != Ordering::Less,
                    }
                }),
            }
        }
        Expr::Between { path, low, high } => scalars(document, path).iter().any(|it| {
            scalar_order(it, low, exact).is_some_and(|it| it != Ordering::Less)
                && scalar_order(it, high, exact).is_some_and(|it| it != Ordering::Greater)
        }),
        Expr::In { path, values, all } => {
            let found = scalars(document, path);
            let contains = |value: &Scalar| found.iter().any(|it| scalar_equals(it, value, exact));
            if *all {
                values.iter().all(contains)
            } else {
                values.iter().any(contains)
            }
        }
        Expr::StartsWith { path, prefix } => {
            let prefix = fold(prefix, exact);
            strings(document, path).any(|it| fold(&it, exact).starts_with(prefix.as_ref()))
        }
        Expr::EndsWith { path, suffix } => {
            let suffix = fold(suffix, exact);
            strings(document, path).any(|it| fold(&it, exact).ends_with(suffix.as_ref()))
        }
        Expr::Exists(path) => match path {
            Path::Id => true,
            Path::Field(steps) => !values_in(document, steps).is_empty(),
        },
        Expr::Search { path, terms } => strings(document, path).any(|text| {
            let lowered = text.to_lowercase();
            lowered
                .split(|it: char| !it.is_alphanumeric())
                .filter(|word| !word.is_empty())
                .any(|word| terms.iter().any(|term| wildcard_matches(term, word)))
        }),
    }
}

fn scalars(document: &Document, path: &Path) -> Vec<Scalar> {
    values_of(document, path)
        .into_iter()
        .filter_map(|it| match it {
            Found::Scalar(scalar) => Some(scalar),
            Found::Composite(_) => None,
        })
        .collect()
}

fn strings(document: &Document, path: &Path) -> impl Iterator<Item = String> {
    scalars(document, path)
        .into_iter()
        .filter_map(|it| match it {
            Scalar::String(text) => Some(text),
            _ => None,
        })
}

/// Wildcards as RavenDB reads them in `search` terms and stream `matches`: `*` any run,
/// `?` one character; iterative with backtracking to the last `*`.
pub(crate) fn wildcard_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|it| *it == '*')
}

/// Strings as compared: lowercased unless `exact`.
fn fold(text: &str, exact: bool) -> std::borrow::Cow<'_, str> {
    if exact {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.to_lowercase())
    }
}

pub(crate) fn scalar_equals(found: &Scalar, value: &Scalar, exact: bool) -> bool {
    match (found, value) {
        (Scalar::String(left), Scalar::String(right)) => {
            left == right || (!exact && left.to_lowercase() == right.to_lowercase())
        }
        (Scalar::Number(left), Scalar::Number(right)) => left == right,
        (Scalar::Bool(left), Scalar::Bool(right)) => left == right,
        (Scalar::Null, Scalar::Null) => true,
        _ => false,
    }
}

/// Orders a found value against a query value of the same type; `None` across types.
pub(crate) fn scalar_order(found: &Scalar, value: &Scalar, exact: bool) -> Option<Ordering> {
    match (found, value) {
        (Scalar::Number(left), Scalar::Number(right)) => left.partial_cmp(right),
        (Scalar::String(left), Scalar::String(right)) => {
            Some(fold(left, exact).cmp(&fold(right, exact)))
        }
        _ => None,
    }
}

fn sort_value(key: &OrderKey, document: &Document) -> SortValue {
    let first = values_of(document, &key.path).into_iter().next();
    let Some(Found::Scalar(scalar)) = first else {
        return SortValue::Absent;
    };
    match (key.order_type, scalar) {
        // RavenDB indexes null as the term `NULL_VALUE` and compares terms ordinally with
        // the lowercased values: after digits, before letters.
        (OrderType::String | OrderType::AlphaNumeric, Scalar::Null) => {
            SortValue::Text("NULL_VALUE".to_owned())
        }
        (_, Scalar::Null) => SortValue::Absent,
        (OrderType::Long, Scalar::Number(number)) => SortValue::Integer(number as i64),
        (OrderType::Double, Scalar::Number(number)) => SortValue::Float(number),
        (OrderType::Long | OrderType::Double, _) => SortValue::Absent,
        (_, Scalar::String(text)) => SortValue::Text(text.to_lowercase()),
        (_, Scalar::Number(number)) => SortValue::Text(number_text(number)),
        (_, Scalar::Bool(it)) => SortValue::Text(it.to_string()),
    }
}

/// A number as RavenDB indexes it for string sorting: integers without a fraction.
fn number_text(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        number.to_string()
    }
}

fn compare_sort(order_type: OrderType, left: &SortValue, right: &SortValue) -> Ordering {
    match (left, right) {
        (SortValue::Absent, SortValue::Absent) => Ordering::Equal,
        (SortValue::Absent, _) => Ordering::Less,
        (_, SortValue::Absent) => Ordering::Greater,
        (SortValue::Integer(left), SortValue::Integer(right)) => left.cmp(right),
        (SortValue::Float(left), SortValue::Float(right)) => left.total_cmp(right),
        (SortValue::Text(left), SortValue::Text(right)) => {
            if order_type == OrderType::AlphaNumeric {
                alphanumeric_order(left, right)
            } else {
                left.cmp(right)
            }
        }
        // One key has one type; mixed variants cannot occur, but order them deterministically.
        _ => rank(left).cmp(&rank(right)),
    }
}

fn rank(value: &SortValue) -> u8 {
    match value {
        SortValue::Absent => 0,
        SortValue::Integer(_) => 1,
        SortValue::Float(_) => 2,
        SortValue::Text(_) => 3,
    }
}

/// Natural order: runs of digits compare as numbers (`file2` before `file10`).
fn alphanumeric_order(left: &str, right: &str) -> Ordering {
    let mut left = left.chars().peekable();
    let mut right = right.chars().peekable();
    loop {
        match (left.peek().copied(), right.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => {
                let take_digits = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
                    let mut digits = String::new();
                    while let Some(ch) = it.peek().copied().filter(char::is_ascii_digit) {
                        digits.push(ch);
                        it.next();
                    }
                    digits
                };
                let a_digits = take_digits(&mut left);
                let b_digits = take_digits(&mut right);
                let a_trimmed = a_digits.trim_start_matches('0');
                let b_trimmed = b_digits.trim_start_matches('0');
                let ordering = a_trimmed
                    .len()
                    .cmp(&b_trimmed.len())
                    .then_with(|| a_trimmed.cmp(b_trimmed));
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            (Some(a), Some(b)) => {
                if a != b {
                    return a.cmp(&b);
                }
                left.next();
                right.next();
            }
        }
    }
}

/// Whether the body of a projection is the same as another's (for `select distinct`).
pub(crate) fn projection_body(projected: &str) -> &str {
    projected
        .rfind(",\"@metadata\":")
        .or_else(|| projected.rfind("\"@metadata\":"))
        .map_or(projected, |idx| &projected[..idx])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphanumeric_order_compares_digit_runs_as_numbers() {
        assert_eq!(alphanumeric_order("file2", "file10"), Ordering::Less);
        assert_eq!(alphanumeric_order("a010", "a9"), Ordering::Greater);
        assert_eq!(alphanumeric_order("b", "a9"), Ordering::Greater);
    }

    #[test]
    fn wildcards_match_search_terms_and_id_patterns() {
        assert!(wildcard_matches("an*", "ann"));
        assert!(wildcard_matches("*nn", "ann"));
        assert!(wildcard_matches("*n*", "ann"));
        assert!(!wildcard_matches("an", "ann"));
        assert!(wildcard_matches("ann", "ann"));
        assert!(wildcard_matches("a?c", "abc"));
        assert!(!wildcard_matches("b*", "abc"));
        assert!(wildcard_matches("a*b*c", "aXbYbc"));
    }
}
