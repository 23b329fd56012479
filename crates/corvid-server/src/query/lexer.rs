//! The RQL tokenizer: turns query text into tokens that carry their offset, so every parse
//! error can point at the offending token's line and column (computed only for the error:
//! a query of a million tokens must not pay for a line count per token). It is lazy (the parser pulls tokens one at a
//! time) because an `update { … }` block is JavaScript, which the parser captures as raw text.

use crate::query::QueryError;

/// One token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// Byte offset of the token's first character.
    pub offset: usize,
    /// Byte offset just after the token.
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// A bare word: keyword, collection, field or function name (`@all_docs` included).
    Word(String),
    /// A quoted string, escapes resolved.
    Str(String),
    /// A number literal as written.
    Number(String),
    /// `$name`.
    Param(String),
    Symbol(&'static str),
    End,
}

impl TokenKind {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Word(word) => format!("`{word}`"),
            TokenKind::Str(text) => format!("the string '{text}'"),
            TokenKind::Number(number) => format!("the number {number}"),
            TokenKind::Param(name) => format!("`${name}`"),
            TokenKind::Symbol(symbol) => format!("`{symbol}`"),
            TokenKind::End => "the end of the query".to_owned(),
        }
    }
}

/// Symbols, longest first so `<=` wins over `<`.
const SYMBOLS: [&str; 17] = [
    "==", "!=", "<>", "<=", ">=", "=", "<", ">", "(", ")", ",", ".", "[", "]", "{", "}", ";",
];

#[derive(Debug, Clone)]
pub(crate) struct Lexer<'a> {
    text: &'a str,
    offset: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer { text, offset: 0 }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Moves the lexer to a byte offset (after a raw block the parser consumed itself).
    pub fn seek(&mut self, offset: usize) {
        self.offset = offset.min(self.text.len());
    }

    /// Returns the line and column (both from 1) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |it| it + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> QueryError {
        let (line, column) = self.position(offset);
        QueryError::Syntax {
            line,
            column,
            message: message.into(),
        }
    }

    /// Reads the next token.
    pub fn next_token(&mut self) -> Result<Token, QueryError> {
        let rest = &self.text[self.offset..];
        let trimmed = rest.trim_start();
        let start = self.offset + (rest.len() - trimmed.len());
        let mut chars = trimmed.chars();
        let Some(first) = chars.next() else {
            self.offset = self.text.len();
            return Ok(self.token(TokenKind::End, start, start));
        };
        let (kind, length) = if first == '\'' || first == '"' {
            self.string_literal(start, first)?
        } else if first == '$' {
            let name_length = word_length(&trimmed[1..]);
            if name_length == 0 {
                return Err(self.error_at(start, "expected a parameter name after `$`"));
            }
            (
                TokenKind::Param(trimmed[1..1 + name_length].to_owned()),
                1 + name_length,
            )
        } else if first.is_ascii_digit()
            || (first == '-' && chars.next().is_some_and(|it| it.is_ascii_digit()))
        {
            let length = number_length(trimmed);
            (TokenKind::Number(trimmed[..length].to_owned()), length)
        } else if first.is_alphanumeric() || first == '_' || first == '@' {
            // `@metadata.@nested-object-types`: metadata names may hold dashes.
            let length = if first == '@' {
                trimmed
                    .char_indices()
                    .find(|(_, ch)| !(ch.is_alphanumeric() || matches!(ch, '_' | '@' | '-')))
                    .map_or(trimmed.len(), |(idx, _)| idx)
            } else {
                word_length(trimmed)
            };
            (TokenKind::Word(trimmed[..length].to_owned()), length)
        } else if let Some(symbol) = SYMBOLS.iter().find(|it| trimmed.starts_with(**it)) {
            (TokenKind::Symbol(symbol), symbol.len())
        } else {
            return Err(self.error_at(start, format!("unexpected character `{first}`")));
        };
        self.offset = start + length;
        Ok(self.token(kind, start, start + length))
    }

    /// Reads the next token without consuming it.
    pub fn peek(&self) -> Result<Token, QueryError> {
        self.clone().next_token()
    }

    fn token(&self, kind: TokenKind, offset: usize, end: usize) -> Token {
        Token { kind, offset, end }
    }

    fn string_literal(&self, start: usize, quote: char) -> Result<(TokenKind, usize), QueryError> {
        let body = &self.text[start + 1..];
        let mut value = String::new();
        let mut chars = body.char_indices();
        while let Some((idx, ch)) = chars.next() {
            if ch == quote {
                return Ok((TokenKind::Str(value), idx + 2));
            }
            if ch == '\\' {
                match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                }
            } else {
                value.push(ch);
            }
        }
        Err(self.error_at(start, "unterminated string literal"))
    }
}

fn word_length(text: &str) -> usize {
    text.char_indices()
        .find(|(_, ch)| !(ch.is_alphanumeric() || *ch == '_' || *ch == '@'))
        .map_or(text.len(), |(idx, _)| idx)
}

fn number_length(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut idx = usize::from(bytes.first() == Some(&b'-'));
    let digits = |idx: &mut usize| {
        while bytes.get(*idx).is_some_and(u8::is_ascii_digit) {
            *idx += 1;
        }
    };
    digits(&mut idx);
    if bytes.get(idx) == Some(&b'.') && bytes.get(idx + 1).is_some_and(u8::is_ascii_digit) {
        idx += 1;
        digits(&mut idx);
    }
    if matches!(bytes.get(idx), Some(b'e' | b'E')) {
        let mut exponent = idx + 1;
        if matches!(bytes.get(exponent), Some(b'+' | b'-')) {
            exponent += 1;
        }
        if bytes.get(exponent).is_some_and(u8::is_ascii_digit) {
            idx = exponent;
            digits(&mut idx);
        }
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(text);
        let mut found = Vec::new();
        loop {
            let token = lexer.next_token().expect("token");
            if token.kind == TokenKind::End {
                return found;
            }
            found.push(token.kind);
        }
    }

    #[test]
    fn tokens_carry_their_positions() {
        let mut lexer = Lexer::new("from Users\n  where Age >= -1.5e2");
        let tokens: Vec<Token> = (0..6).map(|_| lexer.next_token().expect("token")).collect();
        assert_eq!(lexer.position(tokens[2].offset), (2, 3));
        assert_eq!(tokens[4].kind, TokenKind::Symbol(">="));
        assert_eq!(tokens[5].kind, TokenKind::Number("-1.5e2".into()));
        assert_eq!(lexer.position(tokens[5].offset), (2, 16));
    }

    #[test]
    fn strings_params_and_symbols() {
        assert_eq!(
            kinds(r#"'it''s' "a\"b" $p0 <> Lines[].X"#),
            [
                TokenKind::Str("it".into()),
                TokenKind::Str("s".into()),
                TokenKind::Str("a\"b".into()),
                TokenKind::Param("p0".into()),
                TokenKind::Symbol("<>"),
                TokenKind::Word("Lines".into()),
                TokenKind::Symbol("["),
                TokenKind::Symbol("]"),
                TokenKind::Symbol("."),
                TokenKind::Word("X".into()),
            ]
        );
        assert!(Lexer::new("'open").next_token().is_err());
        assert!(Lexer::new("#").next_token().is_err());
    }
}
