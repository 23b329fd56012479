//! RQL collection queries: `lexer` (tokens with line and column) → `parser` (recursive
//! descent into the `ast`, parameters bound) → `run` (candidates from an auto index or a
//! scan, the `where` of `eval` on each, `order by`, the page) over one snapshot.
//! Documents are read from their JSON text by `json` without building a tree, so a
//! document of any depth can be queried. `index` holds the auto indexes.
//!
//! Supported: `from <Coll>|'<Coll>'|@all_docs [as x]`, `where` with `= == != <> < <= > >=`,
//! `between`, `in`, `all in`, `and`/`or`/`not`, parentheses, `id()`, `startsWith`,
//! `endsWith`, `exists`, `search`; `order by f [as long|double|string|alphaNumeric]
//! [asc|desc]`; `select [distinct]` fields with `as`; `include`; `limit`/`offset`;
//! `update { … }` captured for patch by query. Other RavenDB features are refused by name.

mod ast;
mod error;
mod eval;
mod index;
mod json;
mod lexer;
mod parser;
mod run;

pub(crate) use ast::Query;
pub(crate) use error::QueryError;
pub(crate) use eval::wildcard_matches;
pub(crate) use index::IndexRegistry;
pub(crate) use parser::parse;
// `matching_documents` and `Query::update_script` are the contract of patch/delete by query.
#[allow(unused_imports)]
pub(crate) use run::matching_documents;
pub(crate) use run::{Outcome, run, run_distinct};
