//! Running a parsed query over a snapshot: candidates from an auto index when one fits (see
//! `index.rs`) or from a scan of the collection, the `where` checked on each, `order by`
//! applied, then the page. Only the page's documents are kept: without `order by` the
//! matches outside the page are counted and dropped as they go; with it, only each match's
//! sort values and id are kept until the page is known.

use std::collections::HashSet;
use std::sync::Arc;

use corvid_store::{Document, Snapshot};

use crate::error::ApiError;
use crate::query::ast::{Expr, Path, Query};
use crate::query::eval::SortValue;
use crate::query::index::IndexRegistry;

/// What a query answered.
pub(crate) struct Outcome {
    /// Every match, before `skip` and `take` (for `select distinct`, the distinct projections).
    pub total: usize,
    /// RavenDB's `IndexName`: `Auto/<Coll>/By<Fields>` when an index answered,
    /// `collection/<Coll>` (or `AllDocs`) for a scan.
    pub index_name: String,
}

/// Calls `emit` with each document of the page `[skip, skip + take)` of the query's matches,
/// in order, and returns the total number of matches. `emit` returning false stops the run
/// (the total is then a lower bound).
pub(crate) fn run(
    snapshot: &Snapshot,
    query: &Query,
    indexes: Option<&IndexRegistry>,
    skip: usize,
    take: usize,
    mut emit: impl FnMut(Document) -> Result<bool, ApiError>,
) -> Result<Outcome, ApiError> {
    let mut used_index = false;
    let candidates = match (indexes, &query.collection, &query.filter) {
        (Some(indexes), Some(collection), Some(filter)) => {
            indexes.candidates(snapshot, collection, filter)?
        }
        _ => None,
    };
    let mut total = 0usize;
    let mut visit = |document: Document,
                     sorted: &mut Vec<(Vec<SortValue>, Arc<str>)>|
     -> Result<bool, ApiError> {
        if !query.matches(&document) {
            return Ok(true);
        }
        total += 1;
        if !query.order_by.is_empty() {
            sorted.push((
                query.sort_values(&document),
                Arc::from(document.id.as_str()),
            ));
            return Ok(true);
        }
        let position = total - 1;
        if position < skip {
            return Ok(true);
        }
        if position - skip >= take {
            // Past the page: keep counting only.
            return Ok(true);
        }
        emit(document)
    };
    let mut sorted = Vec::new();
    match candidates {
        Some(candidates) if candidates.exact && query.order_by.is_empty() => {
            // Every candidate matches: count them and read only the page.
            used_index = true;
            total = candidates.ids.len();
            for id in candidates.ids.iter().skip(skip).take(take) {
                if let Some(document) = snapshot.get(id)?
                    && !emit(document)?
                {
                    break;
                }
            }
        }
        Some(candidates) => {
            used_index = true;
            for id in candidates.ids {
                let Some(document) = snapshot.get(&id)? else {
                    continue;
                };
                if !in_collection(&document, query.collection.as_deref()) {
                    continue;
                }
                if !visit(document, &mut sorted)? {
                    break;
                }
            }
        }
        None => {
            for document in snapshot.documents_after(query.collection.as_deref(), 0)? {
                if !visit(document?, &mut sorted)? {
                    break;
                }
            }
        }
    }
    if !query.order_by.is_empty() {
        // A stable sort: ties stay in etag order, as a scan found them.
        sorted.sort_by(|left, right| query.compare_sort_values(&left.0, &right.0));
        for (_, id) in sorted.into_iter().skip(skip).take(take) {
            if let Some(document) = snapshot.get(&id)?
                && !emit(document)?
            {
                break;
            }
        }
    }
    Ok(Outcome {
        total,
        index_name: index_name(query, used_index),
    })
}

/// Every document the query selects, `where` and `order by` applied and `limit` honoured.
/// The entry point of patch and delete by query (which scan: they run once, so building an
/// index would cost more than it saves).
// Called by patch/delete by query, which land on another branch.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn matching_documents(
    snapshot: &Snapshot,
    query: &Query,
) -> Result<Vec<Document>, ApiError> {
    let mut documents = Vec::new();
    run(
        snapshot,
        query,
        None,
        query.skip.unwrap_or(0),
        query.take.unwrap_or(usize::MAX),
        |document| {
            documents.push(document);
            Ok(true)
        },
    )?;
    Ok(documents)
}

/// Runs a `select distinct` query: the distinct projections of every match, paged.
pub(crate) fn run_distinct(
    snapshot: &Snapshot,
    query: &Query,
    indexes: Option<&IndexRegistry>,
    skip: usize,
    take: usize,
) -> Result<(Vec<String>, Outcome), ApiError> {
    let mut seen = HashSet::new();
    let mut projections = Vec::new();
    let outcome = run(snapshot, query, indexes, 0, usize::MAX, |document| {
        let mut projected = String::new();
        query.write_projection(&document, &mut projected);
        let body = crate::query::eval::projection_body(&projected).to_owned();
        if seen.insert(body) {
            projections.push(projected);
        }
        Ok(true)
    })?;
    let total = projections.len();
    let page = projections.into_iter().skip(skip).take(take).collect();
    Ok((
        page,
        Outcome {
            total,
            index_name: outcome.index_name,
        },
    ))
}

fn in_collection(document: &Document, collection: Option<&str>) -> bool {
    collection.is_none_or(|it| document.collection.eq_ignore_ascii_case(it))
}

/// RavenDB's name for what answered: an auto index is named after every field the query
/// filters or sorts on, sorted (`Auto/Users/ByAgeAndName`, `search` as `Search(Name)`).
fn index_name(query: &Query, used_index: bool) -> String {
    let Some(collection) = &query.collection else {
        return "AllDocs".to_owned();
    };
    if !used_index {
        return format!("collection/{collection}");
    }
    let mut fields = Vec::new();
    if let Some(filter) = &query.filter {
        collect_fields(filter, &mut fields);
    }
    for key in &query.order_by {
        if key.path != Path::Id {
            fields.push(key.path.display_name());
        }
    }
    fields.sort();
    fields.dedup();
    format!("Auto/{collection}/By{}", fields.join("And"))
}

fn collect_fields(expr: &Expr, fields: &mut Vec<String>) {
    let path = match expr {
        Expr::True => return,
        Expr::And(left, right) | Expr::Or(left, right) => {
            collect_fields(left, fields);
            collect_fields(right, fields);
            return;
        }
        Expr::Not(inner) | Expr::Exact(inner) => return collect_fields(inner, fields),
        Expr::Search { path, .. } => {
            fields.push(format!("Search({})", path.display_name()));
            return;
        }
        Expr::Compare { path, .. }
        | Expr::Between { path, .. }
        | Expr::In { path, .. }
        | Expr::StartsWith { path, .. }
        | Expr::EndsWith { path, .. }
        | Expr::Exists(path) => path,
    };
    if *path != Path::Id {
        fields.push(path.display_name());
    }
}

#[cfg(test)]
mod tests {
    use corvid_store::{PutDocument, Storage, WriteOp};
    use serde_json::{Map, json};

    use super::*;
    use crate::query::parse;

    #[test]
    fn matching_documents_applies_where_order_and_limit() {
        let dir = tempfile::tempdir().expect("dir");
        let storage = Storage::open(dir.path()).expect("storage");
        let database = storage.create_database("db").expect("database");
        let mut ops = Vec::new();
        for (idx, age) in [40, 10, 30, 20].into_iter().enumerate() {
            let document = json!({"Age": age, "@metadata": {"@collection": "Users"}});
            let object = document.as_object().expect("object").clone();
            let put = PutDocument::new(&format!("users/{idx}"), object, None).expect("put");
            ops.push(WriteOp::Put(put));
        }
        database.write(ops).expect("write");
        let snapshot = database.snapshot().expect("snapshot");
        let query = parse(
            "from Users where Age > 10 order by Age as long desc limit 1, 5 update { this.Age++; }",
            &Map::new(),
        )
        .expect("query");
        assert_eq!(query.update_script(), Some("this.Age++;"));
        let found: Vec<String> = matching_documents(&snapshot, &query)
            .expect("run")
            .into_iter()
            .map(|it| it.id)
            .collect();
        assert_eq!(found, ["users/2", "users/3"]);
    }
}
