//! The subset of RQL that collection queries need:
//! `from <Collection>|'<Collection>'|@all_docs [as x] [where f = v [and f != v …]]
//! [order by f [asc|desc], …] [limit [skip,] take]`, values as `$param` or literals.
//! Anything else is refused with a clear error; full RQL and indexes are out of scope.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    /// `None` for `@all_docs`.
    pub collection: Option<String>,
    pub conditions: Vec<Condition>,
    pub order_by: Vec<(Vec<String>, bool)>,
    pub skip: Option<usize>,
    pub take: Option<usize>,
    /// The script of an `update { … }` clause (patch by query).
    pub update: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    pub path: Vec<String>,
    pub equal: bool,
    pub value: Value,
}

/// A query that is not in the supported subset, or malformed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct QueryError(String);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Number(Value),
    Param(String),
    Symbol(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut idx = 0;
    while idx < chars.len() {
        let ch = chars[idx];
        if ch.is_whitespace() {
            idx += 1;
        } else if ch == '\'' || ch == '"' {
            let mut value = String::new();
            idx += 1;
            loop {
                let Some(&next) = chars.get(idx) else {
                    return Err(QueryError("unterminated string literal".into()));
                };
                idx += 1;
                if next == '\\' {
                    if let Some(&escaped) = chars.get(idx) {
                        value.push(escaped);
                        idx += 1;
                    }
                } else if next == ch {
                    break;
                } else {
                    value.push(next);
                }
            }
            tokens.push(Token::Str(value));
        } else if ch == '$' {
            let start = idx + 1;
            idx = start;
            while idx < chars.len() && (chars[idx].is_alphanumeric() || chars[idx] == '_') {
                idx += 1;
            }
            tokens.push(Token::Param(chars[start..idx].iter().collect()));
        } else if ch.is_ascii_digit()
            || (ch == '-' && chars.get(idx + 1).is_some_and(char::is_ascii_digit))
        {
            let start = idx;
            idx += 1;
            while idx < chars.len() && (chars[idx].is_ascii_digit() || chars[idx] == '.') {
                idx += 1;
            }
            let text: String = chars[start..idx].iter().collect();
            let number = serde_json::from_str::<Value>(&text)
                .map_err(|_| QueryError(format!("invalid number `{text}`")))?;
            tokens.push(Token::Number(number));
        } else if ch.is_alphanumeric() || ch == '_' || ch == '@' {
            let start = idx;
            while idx < chars.len()
                && (chars[idx].is_alphanumeric() || matches!(chars[idx], '_' | '@' | '.' | '-'))
            {
                idx += 1;
            }
            tokens.push(Token::Word(chars[start..idx].iter().collect()));
        } else {
            let symbol = match (ch, chars.get(idx + 1)) {
                ('!', Some('=')) => "!=",
                ('=', Some('=')) => "==",
                ('=', _) => "=",
                (',', _) => ",",
                ('(', _) => "(",
                (')', _) => ")",
                _ => return Err(QueryError(format!("unexpected character `{ch}`"))),
            };
            idx += symbol.len();
            tokens.push(Token::Symbol(symbol));
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    parameters: &'a Map<String, Value>,
}

impl Parser<'_> {
    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(it)) if it.eq_ignore_ascii_case(keyword))
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        if self.peek_keyword(keyword) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn value(&mut self) -> Result<Value, QueryError> {
        match self.next() {
            Some(Token::Str(it)) => Ok(Value::String(it)),
            Some(Token::Number(it)) => Ok(it),
            Some(Token::Param(name)) => self
                .parameters
                .get(&name)
                .cloned()
                .ok_or_else(|| QueryError(format!("query parameter `${name}` was not given"))),
            Some(Token::Word(word)) if word == "true" => Ok(Value::Bool(true)),
            Some(Token::Word(word)) if word == "false" => Ok(Value::Bool(false)),
            Some(Token::Word(word)) if word == "null" => Ok(Value::Null),
            other => Err(QueryError(format!("expected a value, found {other:?}"))),
        }
    }

    fn path(&mut self, alias: Option<&str>) -> Result<Vec<String>, QueryError> {
        let Some(Token::Word(word)) = self.next() else {
            return Err(QueryError("expected a field name".into()));
        };
        // `id()` (or `id(alias)`) is the document id, which lives in the metadata.
        if word.eq_ignore_ascii_case("id") && self.tokens.get(self.pos) == Some(&Token::Symbol("("))
        {
            self.pos += 1;
            if matches!(self.tokens.get(self.pos), Some(Token::Word(_))) {
                self.pos += 1;
            }
            if self.next() != Some(Token::Symbol(")")) {
                return Err(QueryError("expected `)` after `id(`".into()));
            }
            return Ok(vec!["@metadata".to_owned(), "@id".to_owned()]);
        }

        let mut parts: Vec<String> = word.split('.').map(str::to_owned).collect();
        if let Some(alias) = alias
            && parts.len() > 1
            && parts[0] == alias
        {
            parts.remove(0);
        }
        Ok(parts)
    }

    fn count(&mut self) -> Result<usize, QueryError> {
        match self.value()? {
            Value::Number(it) => it
                .as_u64()
                .map(|it| it as usize)
                .ok_or_else(|| QueryError("limit values must be non-negative integers".into())),
            other => Err(QueryError(format!(
                "limit values must be numbers, got {other}"
            ))),
        }
    }
}

/// Parses a query with its parameters.
pub(crate) fn parse(text: &str, parameters: &Map<String, Value>) -> Result<Query, QueryError> {
    let (text, update) = split_update_clause(text)?;
    let mut parser = Parser {
        tokens: tokenize(text)?,
        pos: 0,
        parameters,
    };
    if !parser.keyword("from") {
        return Err(QueryError(
            "only collection queries (`from <Collection>`) are supported".into(),
        ));
    }
    let collection = match parser.next() {
        Some(Token::Word(it)) if it.eq_ignore_ascii_case("@all_docs") => None,
        Some(Token::Word(it)) if it.eq_ignore_ascii_case("index") => {
            return Err(QueryError("index queries are not supported yet".into()));
        }
        Some(Token::Word(it) | Token::Str(it)) => Some(it),
        _ => return Err(QueryError("expected a collection name after `from`".into())),
    };
    let alias = if parser.keyword("as") {
        match parser.next() {
            Some(Token::Word(it)) => Some(it),
            _ => return Err(QueryError("expected an alias after `as`".into())),
        }
    } else {
        None
    };
    let mut query = Query {
        collection,
        conditions: Vec::new(),
        order_by: Vec::new(),
        skip: None,
        take: None,
        update: None,
    };
    if parser.keyword("where") {
        loop {
            let path = parser.path(alias.as_deref())?;
            let equal = match parser.next() {
                Some(Token::Symbol("=" | "==")) => true,
                Some(Token::Symbol("!=")) => false,
                other => {
                    return Err(QueryError(format!(
                        "only `=` and `!=` comparisons are supported, found {other:?}"
                    )));
                }
            };
            let value = parser.value()?;
            query.conditions.push(Condition { path, equal, value });
            if !parser.keyword("and") {
                break;
            }
        }
    }
    if parser.keyword("order") {
        if !parser.keyword("by") {
            return Err(QueryError("expected `by` after `order`".into()));
        }
        loop {
            let path = parser.path(alias.as_deref())?;
            let descending = if parser.keyword("desc") || parser.keyword("descending") {
                true
            } else {
                let _ = parser.keyword("asc") || parser.keyword("ascending");
                false
            };
            query.order_by.push((path, descending));
            if parser.tokens.get(parser.pos) != Some(&Token::Symbol(",")) {
                break;
            }
            parser.pos += 1;
        }
    }
    if parser.keyword("limit") {
        let first = parser.count()?;
        if parser.tokens.get(parser.pos) == Some(&Token::Symbol(",")) {
            parser.pos += 1;
            query.skip = Some(first);
            query.take = Some(parser.count()?);
        } else {
            query.take = Some(first);
        }
        if parser.keyword("offset") {
            query.skip = Some(parser.count()?);
        }
    }
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(QueryError(format!(
            "unsupported query syntax near {token:?}; Corvid answers `from <Collection> [where f = v and …] [order by f] [limit skip, take]`"
        )));
    }
    query.update = update.map(|script| match &alias {
        // RavenDB binds the alias to the document in the update script.
        Some(alias) => format!("var {alias} = this; {script}"),
        None => script.to_owned(),
    });
    Ok(query)
}

impl Query {
    /// Returns true when a document (body and metadata) satisfies every condition.
    pub fn matches(&self, document: &Value) -> bool {
        self.conditions.iter().all(|condition| {
            let found = lookup(document, &condition.path);
            values_equal(found, &condition.value) == condition.equal
        })
    }

    pub fn needs_documents_parsed(&self) -> bool {
        !self.conditions.is_empty() || !self.order_by.is_empty()
    }

    /// Orders two documents by the query's `order by`.
    pub fn compare(&self, left: &Value, right: &Value) -> Ordering {
        for (path, descending) in &self.order_by {
            let ordering = compare_values(lookup(left, path), lookup(right, path));
            let ordering = if *descending {
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
}

fn lookup<'a>(document: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = document;
    for part in path {
        current = current.get(part)?;
    }
    Some(current)
}

fn values_equal(found: Option<&Value>, expected: &Value) -> bool {
    match (found, expected) {
        (None | Some(Value::Null), Value::Null) => true,
        (Some(Value::String(left)), Value::String(right)) => {
            left.to_lowercase() == right.to_lowercase()
        }
        (Some(Value::Number(left)), Value::Number(right)) => left.as_f64() == right.as_f64(),
        (Some(Value::Array(items)), expected) => {
            items.iter().any(|it| values_equal(Some(it), expected))
        }
        (Some(left), right) => left == right,
        (None, _) => false,
    }
}

fn compare_values(left: Option<&Value>, right: Option<&Value>) -> Ordering {
    fn rank(value: Option<&Value>) -> u8 {
        match value {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    match (left, right) {
        (Some(Value::Number(a)), Some(Value::Number(b))) => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(a)), Some(Value::String(b))) => a.to_lowercase().cmp(&b.to_lowercase()),
        (Some(Value::Bool(a)), Some(Value::Bool(b))) => a.cmp(b),
        _ => rank(left).cmp(&rank(right)),
    }
}

// patch contract: replaced by the rql branch

/// Splits `… update { script }` into the query and the script. The keyword counts only
/// outside string literals, as a word of its own, followed by `{`; the script runs to the
/// `}` that ends the text.
fn split_update_clause(text: &str) -> Result<(&str, Option<&str>), QueryError> {
    let bytes = text.as_bytes();
    let mut quote: Option<u8> = None;
    let mut idx = 0;
    while idx < bytes.len() {
        let byte = bytes[idx];
        match quote {
            Some(_) if byte == b'\\' => idx += 1,
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None if byte == b'\'' || byte == b'"' => quote = Some(byte),
            None if text[idx..].len() >= 6
                && text.is_char_boundary(idx + 6)
                && text[idx..idx + 6].eq_ignore_ascii_case("update")
                && (idx == 0 || bytes[idx - 1].is_ascii_whitespace())
                && text[idx + 6..].trim_start().starts_with('{') =>
            {
                let rest = text[idx + 6..].trim_start();
                let Some(script) = rest
                    .trim_end()
                    .strip_prefix('{')
                    .and_then(|it| it.strip_suffix('}'))
                else {
                    return Err(QueryError(
                        "the `update { … }` clause must end the query".into(),
                    ));
                };
                return Ok((&text[..idx], Some(script)));
            }
            None => {}
        }
        idx += 1;
    }
    Ok((text, None))
}

impl Query {
    /// The script of the query's `update { … }` clause, if any.
    pub(crate) fn update_script(&self) -> Option<&str> {
        self.update.as_deref()
    }
}

/// The documents `query` selects from `snapshot`, in its order, within its `limit`.
pub(crate) fn matching_documents(
    snapshot: &corvid_store::Snapshot,
    query: &Query,
) -> Result<Vec<corvid_store::Document>, crate::error::ApiError> {
    let mut selected = Vec::new();
    for doc in snapshot.documents_after(query.collection.as_deref(), 0)? {
        let doc = doc?;
        let value: Value = if query.needs_documents_parsed() {
            serde_json::from_str(&doc.to_json_string()).map_err(|error| {
                crate::error::ApiError::internal(format!("`{}` is not JSON: {error}", doc.id))
            })?
        } else {
            Value::Null
        };
        if query.conditions.is_empty() || query.matches(&value) {
            selected.push((value, doc));
        }
    }
    selected.sort_by(|left, right| query.compare(&left.0, &right.0));
    Ok(selected
        .into_iter()
        .skip(query.skip.unwrap_or(0))
        .take(query.take.unwrap_or(usize::MAX))
        .map(|(_, doc)| doc)
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(text: &str, params: Value) -> Query {
        parse(text, params.as_object().unwrap()).unwrap()
    }

    #[test]
    fn parses_what_the_official_clients_send() {
        let q = check("from 'Users'", json!({}));
        assert_eq!(q.collection.as_deref(), Some("Users"));
        let q = check("from 'Users' where name = $p0", json!({"p0": "Bob"}));
        assert_eq!(q.conditions[0].path, ["name"]);
        assert_eq!(q.conditions[0].value, json!("Bob"));
        let q = check(
            "from 'Users' order by name limit $p0, $p1",
            json!({"p0": 1, "p1": 2}),
        );
        assert_eq!((q.skip, q.take), (Some(1), Some(2)));
        assert_eq!(q.order_by, [(vec!["name".to_owned()], false)]);
        let q = check("from Users where id() = $p0", json!({"p0": "users/1"}));
        assert_eq!(q.conditions[0].path, ["@metadata", "@id"]);
        assert!(q.matches(&json!({"@metadata": {"@id": "Users/1"}})));
        let q = check(
            "from Users as u where u.age != 50 and u.name = 'x' order by u.age desc",
            json!({}),
        );
        assert_eq!(q.conditions.len(), 2);
        assert!(!q.conditions[0].equal);
        assert_eq!(q.order_by, [(vec!["age".to_owned()], true)]);
        assert_eq!(check("from @all_docs limit 5", json!({})).collection, None);
    }

    #[test]
    fn refuses_what_it_does_not_support() {
        let params = Map::new();
        assert!(parse("select * from Users", &params).is_err());
        assert!(parse("from index 'Orders/Totals'", &params).is_err());
        assert!(parse("from Users where age > 5", &params).is_err());
        assert!(parse("from Users where name = $missing", &params).is_err());
        assert!(parse("from Users group by name", &params).is_err());
        assert!(parse("from 'Users", &params).is_err());
    }

    #[test]
    fn splits_the_update_clause() {
        let q = check(
            "from Users where name = 'update {' update { this.A = '}'; }",
            json!({}),
        );
        assert_eq!(q.update_script(), Some(" this.A = '}'; "));
        assert_eq!(q.conditions[0].value, json!("update {"));
        let q = check("from Users as u update {u.A = 1}", json!({}));
        assert_eq!(q.update_script(), Some("var u = this; u.A = 1"));
        assert_eq!(check("from Users", json!({})).update_script(), None);
        assert!(parse("from Users update { x } limit 5", &Map::new()).is_err());
    }

    #[test]
    fn matches_and_orders_documents() {
        let q = check("from Users where name = 'ann' order by age desc", json!({}));
        assert!(q.matches(&json!({"name": "Ann", "age": 3})));
        assert!(!q.matches(&json!({"name": "Bob"})));
        assert_eq!(
            q.compare(&json!({"age": 1}), &json!({"age": 2})),
            Ordering::Greater
        );
    }
}
