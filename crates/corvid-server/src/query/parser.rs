//! The RQL parser: a recursive descent over the lexer's tokens into [`Query`], binding
//! `$parameters` as it goes. Grammar (clauses in this order, each optional after `from`):
//!
//! ```text
//! query    := 'from' source ['as' alias] ['where' or] ['order' 'by' key (',' key)*]
//!             ['select' ['distinct'] field ['as' name] (',' …)*] ['include' path (',' path)*]
//!             ['limit' value [',' value]] ['offset' value] ['update' '{' javascript '}']
//! or       := and ('or' and)*          and := unary ('and' unary)*
//! unary    := 'not' unary | '(' or ')' | 'true' | function | path operator
//! operator := ('='|'=='|'!='|'<>'|'<'|'<='|'>'|'>=') value | 'between' value 'and' value
//!           | ['all'] 'in' '(' value (',' value)* ')'
//! ```
//! Features RavenDB has and Corvid does not are refused by name (`NotSupported`).

use serde_json::{Map, Value};

use crate::query::QueryError;
use crate::query::ast::{
    CompareOp, Expr, OrderKey, OrderType, Path, Projection, Query, Scalar, Select, Step,
};
use crate::query::lexer::{Lexer, Token, TokenKind};

/// Parses a query with its parameters.
pub(crate) fn parse(text: &str, parameters: &Map<String, Value>) -> Result<Query, QueryError> {
    let mut parser = Parser {
        lexer: Lexer::new(text),
        parameters,
        alias: None,
        nesting: 0,
        conditions: 0,
    };
    parser.query()
}

/// Features refused by name when they start a clause.
const UNSUPPORTED_CLAUSES: [(&str, &str); 6] = [
    ("group", "group by"),
    ("load", "load"),
    ("declare", "declare function"),
    ("with", "with"),
    ("match", "graph queries (match)"),
    ("filter", "filter"),
];

/// Functions of `where` that are RavenDB features Corvid refuses.
const UNSUPPORTED_FUNCTIONS: [&str; 11] = [
    "boost",
    "regex",
    "spatial.within",
    "within",
    "intersects",
    "contains",
    "disjoint",
    "morelikethis",
    "fuzzy",
    "proximity",
    "lucene",
];

/// Parentheses and `not`s one inside another, at most: the parser and the evaluation recurse
/// on them, so an attacker's `((((…` must not overflow the stack.
const MAX_NESTING: usize = 64;
/// Conditions in one `where`, at most: an `and`/`or` chain is a tree as deep as it is long.
const MAX_CONDITIONS: usize = 1024;

struct Parser<'a> {
    lexer: Lexer<'a>,
    parameters: &'a Map<String, Value>,
    alias: Option<String>,
    nesting: usize,
    conditions: usize,
}

impl Parser<'_> {
    fn query(&mut self) -> Result<Query, QueryError> {
        let first = self.lexer.next_token()?;
        match &first.kind {
            TokenKind::Word(word) if word.eq_ignore_ascii_case("from") => {}
            TokenKind::Word(word) if is_one_of(word, &["declare", "match", "with"]) => {
                return Err(self.not_supported(&first, word));
            }
            _ => return Err(self.unexpected(&first, "`from`")),
        }
        let source = self.lexer.next_token()?;
        let collection = match &source.kind {
            TokenKind::Word(word) if word.eq_ignore_ascii_case("@all_docs") => None,
            TokenKind::Word(word) if word.eq_ignore_ascii_case("index") => {
                return Err(self.not_supported(&source, "static index queries (`from index`)"));
            }
            TokenKind::Word(word) | TokenKind::Str(word) => Some(word.clone()),
            _ => return Err(self.unexpected(&source, "a collection name")),
        };
        let mut query = Query {
            collection,
            filter: None,
            order_by: Vec::new(),
            select: None,
            includes: Vec::new(),
            skip: None,
            take: None,
            update: None,
        };
        if self.keyword("as")? {
            let alias = self.lexer.next_token()?;
            match alias.kind {
                TokenKind::Word(word) if !is_reserved(&word) => self.alias = Some(word),
                _ => return Err(self.unexpected(&alias, "an alias after `as`")),
            }
        }
        // Each clause may appear once, in RavenDB's order.
        let mut rank = 0;
        loop {
            let token = self.lexer.next_token()?;
            let TokenKind::Word(word) = &token.kind else {
                if token.kind == TokenKind::End {
                    return Ok(query);
                }
                return Err(self.unexpected(&token, "a clause or the end of the query"));
            };
            let word = word.to_ascii_lowercase();
            if let Some((_, feature)) = UNSUPPORTED_CLAUSES.iter().find(|it| it.0 == word) {
                return Err(self.not_supported(&token, feature));
            }
            let clause_rank = match word.as_str() {
                "where" => 1,
                "order" => 2,
                "select" => 3,
                "include" => 4,
                "limit" => 5,
                "offset" => 6,
                "update" => 7,
                _ => return Err(self.unexpected(&token, "a clause or the end of the query")),
            };
            if clause_rank <= rank {
                return Err(self.lexer.error_at(
                    token.offset,
                    format!("`{word}` is out of place: clauses go where, order by, select, include, limit, update"),
                ));
            }
            rank = clause_rank;
            match word.as_str() {
                "where" => query.filter = Some(self.or_expression()?),
                "order" => {
                    self.expect_keyword("by")?;
                    query.order_by = self.order_keys()?;
                }
                "select" => query.select = Some(self.select()?),
                "include" => query.includes = self.includes()?,
                "limit" => {
                    let first = self.count()?;
                    if self.symbol(",")? {
                        query.skip = first;
                        query.take = self.count()?;
                    } else {
                        query.take = first;
                    }
                }
                "offset" => query.skip = self.count()?,
                _ => {
                    let script = self.update_block()?;
                    // RavenDB binds the query's alias to the document in the update script.
                    query.update = Some(match &self.alias {
                        Some(alias) => format!("var {alias} = this; {script}"),
                        None => script,
                    });
                }
            }
        }
    }

    fn or_expression(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and_expression()?;
        while self.keyword("or")? {
            let right = self.and_expression()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expression(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        while self.keyword("and")? {
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        let token = self.lexer.peek()?;
        let nests = match &token.kind {
            TokenKind::Word(word) => word.eq_ignore_ascii_case("not"),
            kind => *kind == TokenKind::Symbol("("),
        };
        if nests {
            self.nesting += 1;
            if self.nesting > MAX_NESTING {
                return Err(self.lexer.error_at(
                    token.offset,
                    format!("conditions are nested more than {MAX_NESTING} deep"),
                ));
            }
            self.lexer.next_token()?;
            let inner = if token.kind == TokenKind::Symbol("(") {
                let inner = self.or_expression()?;
                self.expect_symbol(")")?;
                inner
            } else {
                Expr::Not(Box::new(self.unary()?))
            };
            self.nesting -= 1;
            return Ok(inner);
        }
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(self.lexer.error_at(
                token.offset,
                format!("a where clause holds at most {MAX_CONDITIONS} conditions"),
            ));
        }
        let TokenKind::Word(word) = &token.kind else {
            return Err(self.unexpected(&token, "a condition"));
        };
        if word.eq_ignore_ascii_case("true") {
            self.lexer.next_token()?;
            return Ok(Expr::True);
        }
        let mut after = self.lexer.clone();
        after.next_token()?;
        let is_call = after.peek()?.kind == TokenKind::Symbol("(");
        if is_call && !word.eq_ignore_ascii_case("id") {
            return self.function();
        }
        let path = self.path()?;
        self.comparison(path)
    }

    fn function(&mut self) -> Result<Expr, QueryError> {
        let name_token = self.lexer.next_token()?;
        let TokenKind::Word(name) = &name_token.kind else {
            return Err(self.unexpected(&name_token, "a function name"));
        };
        let lowered = name.to_ascii_lowercase();
        if UNSUPPORTED_FUNCTIONS.contains(&lowered.as_str()) {
            return Err(self.not_supported(&name_token, &format!("{name}()")));
        }
        self.expect_symbol("(")?;
        if lowered == "exact" {
            self.nesting += 1;
            if self.nesting > MAX_NESTING {
                return Err(self.lexer.error_at(
                    name_token.offset,
                    format!("conditions are nested more than {MAX_NESTING} deep"),
                ));
            }
            let inner = self.or_expression()?;
            self.nesting -= 1;
            self.expect_symbol(")")?;
            return Ok(Expr::Exact(Box::new(inner)));
        }
        let path = self.path()?;
        let expression = match lowered.as_str() {
            "exists" => Expr::Exists(path),
            "startswith" | "endswith" | "search" => {
                self.expect_symbol(",")?;
                let argument = self.lexer.next_token()?;
                let text = match self.value(&argument)? {
                    Value::String(text) => text,
                    other => {
                        return Err(self.lexer.error_at(
                            argument.offset,
                            format!("{name}() expects a string, got {other}"),
                        ));
                    }
                };
                match lowered.as_str() {
                    "startswith" => Expr::StartsWith { path, prefix: text },
                    "endswith" => Expr::EndsWith { path, suffix: text },
                    _ => {
                        if self.symbol(",")? {
                            let operator = self.lexer.next_token()?;
                            match &operator.kind {
                                TokenKind::Word(word) if word.eq_ignore_ascii_case("or") => {}
                                _ => {
                                    return Err(self.not_supported(
                                        &operator,
                                        "search() with an operator other than `or`",
                                    ));
                                }
                            }
                        }
                        Expr::Search {
                            path,
                            terms: text.split_whitespace().map(str::to_lowercase).collect(),
                        }
                    }
                }
            }
            _ => {
                return Err(self.lexer.error_at(
                    name_token.offset,
                    format!("unknown function `{name}()` in where"),
                ));
            }
        };
        self.expect_symbol(")")?;
        Ok(expression)
    }

    fn comparison(&mut self, path: Path) -> Result<Expr, QueryError> {
        let token = self.lexer.next_token()?;
        let op = match &token.kind {
            TokenKind::Symbol("=" | "==") => CompareOp::Equal,
            TokenKind::Symbol("!=" | "<>") => CompareOp::NotEqual,
            TokenKind::Symbol("<") => CompareOp::Less,
            TokenKind::Symbol("<=") => CompareOp::LessOrEqual,
            TokenKind::Symbol(">") => CompareOp::Greater,
            TokenKind::Symbol(">=") => CompareOp::GreaterOrEqual,
            TokenKind::Word(word) if word.eq_ignore_ascii_case("between") => {
                let low = self.scalar()?;
                self.expect_keyword("and")?;
                let high = self.scalar()?;
                return Ok(Expr::Between { path, low, high });
            }
            TokenKind::Word(word) if word.eq_ignore_ascii_case("in") => {
                return self.in_list(path, false);
            }
            TokenKind::Word(word) if word.eq_ignore_ascii_case("all") => {
                self.expect_keyword("in")?;
                return self.in_list(path, true);
            }
            _ => return Err(self.unexpected(&token, "an operator (=, !=, <, >, between, in)")),
        };
        let value = self.scalar()?;
        Ok(Expr::Compare { path, op, value })
    }

    fn in_list(&mut self, path: Path, all: bool) -> Result<Expr, QueryError> {
        self.expect_symbol("(")?;
        let mut values = Vec::new();
        loop {
            let token = self.lexer.next_token()?;
            match self.value(&token)? {
                // A parameter may hold the whole list.
                Value::Array(items) => {
                    for item in items {
                        values.push(to_scalar(&self.lexer, &token, item)?);
                    }
                }
                other => values.push(to_scalar(&self.lexer, &token, other)?),
            }
            if !self.symbol(",")? {
                break;
            }
        }
        self.expect_symbol(")")?;
        Ok(Expr::In { path, values, all })
    }

    /// A field path (`a.b`, `a[].b`, `alias.a`) or `id()` / `id(alias)`.
    fn path(&mut self) -> Result<Path, QueryError> {
        let token = self.lexer.next_token()?;
        let first = match &token.kind {
            TokenKind::Word(word) if !is_reserved(word) => word.clone(),
            TokenKind::Str(word) => word.clone(),
            _ => return Err(self.unexpected(&token, "a field name")),
        };
        if first.eq_ignore_ascii_case("id") && self.symbol("(")? {
            if let TokenKind::Word(_) = self.lexer.peek()?.kind {
                self.lexer.next_token()?;
            }
            self.expect_symbol(")")?;
            return Ok(Path::Id);
        }
        let lowered = first.to_ascii_lowercase();
        if matches!(
            lowered.as_str(),
            "counters" | "timeseries" | "score" | "random"
        ) && self.lexer.peek()?.kind == TokenKind::Symbol("(")
        {
            return Err(self.not_supported(&token, &format!("{first}()")));
        }
        let mut steps = Vec::new();
        if self.alias.as_deref() != Some(first.as_str())
            || self.lexer.peek()?.kind != TokenKind::Symbol(".")
        {
            steps.push(Step::Field(first));
        }
        loop {
            if self.symbol("[")? {
                self.expect_symbol("]")?;
                steps.push(Step::EachItem);
            } else if self.symbol(".")? {
                let part = self.lexer.next_token()?;
                match part.kind {
                    TokenKind::Word(word) | TokenKind::Str(word) => steps.push(Step::Field(word)),
                    _ => return Err(self.unexpected(&part, "a field name after `.`")),
                }
            } else {
                break;
            }
        }
        if steps.is_empty() {
            return Err(self.unexpected(&token, "a field name"));
        }
        Ok(Path::Field(steps))
    }

    fn order_keys(&mut self) -> Result<Vec<OrderKey>, QueryError> {
        let mut keys = Vec::new();
        loop {
            let token = self.lexer.peek()?;
            if let TokenKind::Word(word) = &token.kind
                && is_one_of(word, &["score", "random"])
            {
                return Err(self.not_supported(&token, &format!("order by {word}()")));
            }
            let path = self.path()?;
            let mut order_type = OrderType::String;
            let mut descending = false;
            if self.keyword("as")? {
                let kind = self.lexer.next_token()?;
                order_type = match &kind.kind {
                    TokenKind::Word(word) if word.eq_ignore_ascii_case("long") => OrderType::Long,
                    TokenKind::Word(word) if word.eq_ignore_ascii_case("double") => {
                        OrderType::Double
                    }
                    TokenKind::Word(word) if word.eq_ignore_ascii_case("string") => {
                        OrderType::String
                    }
                    TokenKind::Word(word) if word.eq_ignore_ascii_case("alphaNumeric") => {
                        OrderType::AlphaNumeric
                    }
                    _ => return Err(self.unexpected(&kind, "long, double, string or alphaNumeric")),
                };
            }
            if self.keyword("desc")? || self.keyword("descending")? {
                descending = true;
            } else {
                let _ = self.keyword("asc")? || self.keyword("ascending")?;
            }
            keys.push(OrderKey {
                path,
                descending,
                order_type,
            });
            if !self.symbol(",")? {
                return Ok(keys);
            }
        }
    }

    fn select(&mut self) -> Result<Select, QueryError> {
        let distinct = self.keyword("distinct")?;
        let mut fields = Vec::new();
        loop {
            let token = self.lexer.peek()?;
            if let TokenKind::Word(word) = &token.kind {
                let mut after = self.lexer.clone();
                after.next_token()?;
                if !word.eq_ignore_ascii_case("id") && after.peek()?.kind == TokenKind::Symbol("(")
                {
                    return Err(self.not_supported(&token, &format!("{word}() in select")));
                }
            }
            if token.kind == TokenKind::Symbol("{") {
                return Err(self.not_supported(&token, "JavaScript object literals in select"));
            }
            let path = self.path()?;
            let name = if self.keyword("as")? {
                let alias = self.lexer.next_token()?;
                match alias.kind {
                    TokenKind::Word(word) | TokenKind::Str(word) => word,
                    _ => return Err(self.unexpected(&alias, "a name after `as`")),
                }
            } else {
                match &path {
                    Path::Id => "Id".to_owned(),
                    Path::Field(_) => path.display_name(),
                }
            };
            fields.push(Projection { path, name });
            if !self.symbol(",")? {
                return Ok(Select { distinct, fields });
            }
        }
    }

    fn includes(&mut self) -> Result<Vec<Path>, QueryError> {
        let mut paths = Vec::new();
        loop {
            let token = self.lexer.peek()?;
            if let TokenKind::Word(word) = &token.kind
                && is_one_of(
                    word,
                    &[
                        "counters",
                        "timeseries",
                        "explanations",
                        "timings",
                        "highlight",
                        "cmpxchg",
                        "revisions",
                    ],
                )
            {
                return Err(self.not_supported(&token, &format!("include {word}()")));
            }
            paths.push(self.path()?);
            if !self.symbol(",")? {
                return Ok(paths);
            }
        }
    }

    /// Captures the JavaScript of `update { … }` as written, braces balanced outside strings
    /// and comments.
    fn update_block(&mut self) -> Result<String, QueryError> {
        let open = self.lexer.next_token()?;
        if open.kind != TokenKind::Symbol("{") {
            return Err(self.unexpected(&open, "`{` after `update`"));
        }
        let text = self.lexer.text();
        let bytes = text.as_bytes();
        let mut depth = 1usize;
        let mut idx = open.end;
        while idx < bytes.len() {
            match bytes[idx] {
                quote @ (b'\'' | b'"' | b'`') => {
                    idx += 1;
                    while idx < bytes.len() && bytes[idx] != quote {
                        idx += if bytes[idx] == b'\\' { 2 } else { 1 };
                    }
                }
                b'/' if bytes.get(idx + 1) == Some(&b'/') => {
                    while idx < bytes.len() && bytes[idx] != b'\n' {
                        idx += 1;
                    }
                }
                b'/' if bytes.get(idx + 1) == Some(&b'*') => {
                    idx += 2;
                    while idx + 1 < bytes.len() && !(bytes[idx] == b'*' && bytes[idx + 1] == b'/') {
                        idx += 1;
                    }
                    idx += 1;
                }
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        let script = text[open.end..idx].trim().to_owned();
                        self.lexer.seek(idx + 1);
                        return Ok(script);
                    }
                }
                _ => {}
            }
            idx += 1;
        }
        Err(self
            .lexer
            .error_at(open.offset, "the `update` block is not closed by `}`"))
    }

    fn count(&mut self) -> Result<Option<usize>, QueryError> {
        let token = self.lexer.next_token()?;
        match self.value(&token)? {
            // The Node client sends `limit $p0, $p1` with null for the half it does not set.
            Value::Null => Ok(None),
            Value::Number(number) => match number.as_u64() {
                Some(count) => Ok(Some(usize::try_from(count).unwrap_or(usize::MAX))),
                None => Err(self.lexer.error_at(
                    token.offset,
                    format!("limit values must be non-negative integers, got {number}"),
                )),
            },
            other => Err(self.lexer.error_at(
                token.offset,
                format!("limit values must be numbers, got {other}"),
            )),
        }
    }

    fn scalar(&mut self) -> Result<Scalar, QueryError> {
        let token = self.lexer.next_token()?;
        let value = self.value(&token)?;
        to_scalar(&self.lexer, &token, value)
    }

    /// A literal or a parameter's value.
    fn value(&self, token: &Token) -> Result<Value, QueryError> {
        match &token.kind {
            TokenKind::Str(text) => Ok(Value::String(text.clone())),
            TokenKind::Number(text) => serde_json::from_str::<serde_json::Number>(text)
                .map(Value::Number)
                .map_err(|_| {
                    self.lexer
                        .error_at(token.offset, format!("invalid number {text}"))
                }),
            TokenKind::Param(name) => self.parameters.get(name).cloned().ok_or_else(|| {
                self.lexer.error_at(
                    token.offset,
                    format!("query parameter `${name}` was not given in QueryParameters"),
                )
            }),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("null") => Ok(Value::Null),
            _ => Err(self.unexpected(
                token,
                "a value (string, number, true, false, null or $parameter)",
            )),
        }
    }

    fn unexpected(&self, token: &Token, expected: &str) -> QueryError {
        self.lexer.error_at(
            token.offset,
            format!("expected {expected} but got {}", token.kind.describe()),
        )
    }

    fn not_supported(&self, token: &Token, feature: &str) -> QueryError {
        let (line, column) = self.lexer.position(token.offset);
        QueryError::NotSupported {
            line,
            column,
            feature: feature.to_owned(),
        }
    }

    fn keyword(&mut self, keyword: &str) -> Result<bool, QueryError> {
        match self.lexer.peek()?.kind {
            TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword) => {
                self.lexer.next_token()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), QueryError> {
        let token = self.lexer.next_token()?;
        match &token.kind {
            TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword) => Ok(()),
            _ => Err(self.unexpected(&token, &format!("`{keyword}`"))),
        }
    }

    fn symbol(&mut self, symbol: &str) -> Result<bool, QueryError> {
        if matches!(self.lexer.peek()?.kind, TokenKind::Symbol(it) if it == symbol) {
            self.lexer.next_token()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), QueryError> {
        let token = self.lexer.next_token()?;
        match token.kind {
            TokenKind::Symbol(it) if it == symbol => Ok(()),
            _ => Err(self.unexpected(&token, &format!("`{symbol}`"))),
        }
    }
}

fn to_scalar(lexer: &Lexer<'_>, token: &Token, value: Value) -> Result<Scalar, QueryError> {
    match value {
        Value::Null => Ok(Scalar::Null),
        Value::Bool(it) => Ok(Scalar::Bool(it)),
        Value::Number(number) => match number.as_f64() {
            Some(it) => Ok(Scalar::Number(it)),
            None => Err(lexer.error_at(token.offset, format!("number {number} is out of range"))),
        },
        Value::String(it) => Ok(Scalar::String(it)),
        Value::Array(_) | Value::Object(_) => Err(lexer.error_at(
            token.offset,
            "a value here must be a string, number, boolean or null (arrays only inside `in (…)`)",
        )),
    }
}

fn is_one_of(word: &str, words: &[&str]) -> bool {
    words.iter().any(|it| word.eq_ignore_ascii_case(it))
}

/// Words that end a path or start a clause, so `where and = 1` is an error, not a field.
fn is_reserved(word: &str) -> bool {
    is_one_of(
        word,
        &[
            "where", "and", "or", "not", "order", "by", "select", "include", "limit", "offset",
            "update", "as", "in", "between", "all", "from", "group", "load",
        ],
    )
}
