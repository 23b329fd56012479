//! SQL ETL's loader: one database transaction per batch on the process's connection. A row
//! the database refuses is isolated by document (named by the database's answer where it
//! can be, by splitting the batch otherwise) and left out.

use std::sync::Arc;

use crate::destination::{BadItemSearch, Delivered, Delivery, LoadError, Loader, Targets};
use crate::destinations::sql::batch::{SqlBatch, SqlLoadError, StatementFault};
use crate::destinations::sql::writer::SqlWriter;

/// Writes SQL ETL batches through one connection.
pub(crate) struct SqlLoader {
    pub writer: SqlWriter,
}

impl Loader for SqlLoader {
    type Batch = SqlBatch;

    async fn start<'a>(
        &'a mut self,
        batch: &'a mut SqlBatch,
        targets: Targets<'a>,
    ) -> (Delivery, usize) {
        if batch.is_empty() {
            return (Delivery::Done(Ok(Delivered::default())), 0);
        }
        let Targets { owned, not_empty } = targets;
        let mut empty = Vec::new();
        for table in &batch.tables {
            let key = table.table.to_lowercase();
            let deletes = !table.deletes.is_empty() || !table.new_documents.is_empty();
            if table.insert_only || !deletes || owned.contains(&key) || not_empty.contains(&key) {
                continue;
            }
            // A failed probe leaves the deletes in: the write reports the problem.
            match self.writer.table_has_rows(&table.table).await {
                Ok(false) => empty.push(key),
                Ok(true) => {
                    not_empty.insert(key);
                }
                Err(_) => {}
            }
        }
        for table in &mut batch.tables {
            if empty.contains(&table.table.to_lowercase()) {
                table.deletes.clear();
            }
        }
        batch.resolve_new_documents(|table| {
            let key = table.table.to_lowercase();
            owned.contains(&key) || empty.contains(&key)
        });
        let written = write_isolating_bad_documents(&mut self.writer, batch)
            .await
            .map(|skipped| Delivered {
                newly_owned: empty,
                skipped,
                buffered: false,
            });
        (Delivery::Done(written), batch.n_rows())
    }
}

/// Writes a batch in one transaction; when the database refuses a document's rows, writes
/// the others (in transactions of their own) and reports that document.
async fn write_isolating_bad_documents(
    writer: &mut SqlWriter,
    batch: &SqlBatch,
) -> Result<Vec<crate::destination::SkippedItem>, LoadError> {
    let first = match writer.write(batch, true).await {
        Ok(()) => return Ok(Vec::new()),
        Err(error) => classify_sql_error(&error),
    };
    if !matches!(first, LoadError::BadItem { .. }) {
        return Err(first);
    }
    // The failure path only: the batch is cut into documents, and parts of it copied.
    let document_ids = document_ids(batch);
    let position = |id: &str| document_ids.binary_search_by(|it| (**it).cmp(id)).ok();
    let item_id = |idx: usize| document_ids[idx].to_string();
    let mut search = BadItemSearch::new(document_ids.len());
    let mut sent = Some(Err(first));
    while let Some(range) = search.next() {
        let res = match sent.take() {
            // The whole batch was just tried.
            Some(res) if range.len() == document_ids.len() => res,
            _ => {
                let part = batch_of(batch, &document_ids[range.clone()]);
                writer
                    .write(&part, true)
                    .await
                    .map_err(|error| classify_sql_error(&error))
            }
        };
        search.record(range, res, position, item_id)?;
    }
    search.finish()
}

/// The documents a batch deletes or writes rows of, sorted, once each.
fn document_ids(batch: &SqlBatch) -> Vec<Arc<str>> {
    let mut ids: Vec<Arc<str>> = Vec::new();
    for table in &batch.tables {
        ids.extend(table.deletes.iter().map(|it| Arc::from(it.as_str())));
        ids.extend(table.rows.iter().map(|it| it.document_id.clone()));
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The part of `batch` about `documents` (sorted): their deletes and rows, in batch order.
fn batch_of(batch: &SqlBatch, documents: &[Arc<str>]) -> SqlBatch {
    let wanted = |id: &str| documents.binary_search_by(|it| (**it).cmp(id)).is_ok();
    let mut part = batch.clone();
    for table in &mut part.tables {
        table.deletes.retain(|it| wanted(it));
        table.new_documents.retain(|it| wanted(it));
        table.rows.retain(|it| wanted(&it.document_id));
    }
    part
}

/// Classifies a failed SQL write: a broken or refused connection is a reconnect; a statement
/// failure by what the database's error code says it is about.
pub(crate) fn classify_sql_error(error: &SqlLoadError) -> LoadError {
    let message = error.to_string();
    match error {
        SqlLoadError::Connection { .. } => LoadError::Reconnect { message },
        SqlLoadError::Statement {
            fault, document_id, ..
        } => match fault {
            StatementFault::Item => LoadError::BadItem {
                document_id: document_id.clone(),
                message,
            },
            StatementFault::Configuration => LoadError::Configuration { message },
            StatementFault::Transient => LoadError::Reconnect { message },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::sql::batch::{SqlRow, TableBatch};

    fn statement(fault: StatementFault, document_id: Option<&str>) -> SqlLoadError {
        SqlLoadError::Statement {
            table: "People".to_owned(),
            column: Some("Name".to_owned()),
            document_id: document_id.map(str::to_owned),
            message: "value too long".to_owned(),
            fault,
        }
    }

    #[test]
    fn statement_failures_are_classified_by_their_fault() {
        let bad = classify_sql_error(&statement(StatementFault::Item, Some("people/1")));
        assert_eq!(
            bad,
            LoadError::BadItem {
                document_id: Some("people/1".to_owned()),
                message: "table `People`, column `Name`, document `people/1`: value too long"
                    .to_owned(),
            }
        );
        let class = |error: SqlLoadError| classify_sql_error(&error).class().name();
        assert_eq!(
            class(statement(StatementFault::Configuration, None)),
            "Configuration"
        );
        assert_eq!(
            class(statement(StatementFault::Transient, None)),
            "Reconnect"
        );
        let down = SqlLoadError::Connection {
            destination: "pg".to_owned(),
            message: "refused".to_owned(),
        };
        assert_eq!(class(down), "Reconnect");
    }

    #[test]
    fn database_codes_say_what_a_failure_is_about() {
        // PostgreSQL: value too long, U+0000 in text, unique and foreign keys.
        for code in ["22001", "22021", "23505", "23503"] {
            assert_eq!(
                StatementFault::of_postgres(code),
                StatementFault::Item,
                "{code}"
            );
        }
        // Undefined table or column, authentication; a timeout, a deadlock.
        assert_eq!(
            StatementFault::of_postgres("42P01"),
            StatementFault::Configuration
        );
        assert_eq!(
            StatementFault::of_postgres("42703"),
            StatementFault::Configuration
        );
        assert_eq!(
            StatementFault::of_postgres("28P01"),
            StatementFault::Configuration
        );
        assert_eq!(
            StatementFault::of_postgres("57014"),
            StatementFault::Transient
        );
        assert_eq!(
            StatementFault::of_postgres("40P01"),
            StatementFault::Transient
        );
        // MySQL: data too long, duplicate key; unknown table; lock wait timeout.
        assert_eq!(StatementFault::of_mysql(1406), StatementFault::Item);
        assert_eq!(StatementFault::of_mysql(1062), StatementFault::Item);
        assert_eq!(
            StatementFault::of_mysql(1146),
            StatementFault::Configuration
        );
        assert_eq!(StatementFault::of_mysql(1205), StatementFault::Transient);
    }

    #[test]
    fn a_part_of_a_batch_keeps_only_its_documents() {
        let row = |id: &str| SqlRow {
            document_id: Arc::from(id),
            columns: Vec::new(),
        };
        let batch = SqlBatch {
            tables: vec![TableBatch {
                table: "People".to_owned(),
                document_id_column: "Id".to_owned(),
                insert_only: false,
                deletes: vec!["p/2".to_owned(), "p/1".to_owned()],
                new_documents: Vec::new(),
                rows: vec![row("p/2"), row("p/1"), row("p/3")],
            }],
        };
        let ids = document_ids(&batch);
        assert_eq!(
            ids.iter().map(|it| &**it).collect::<Vec<_>>(),
            vec!["p/1", "p/2", "p/3"]
        );
        let part = batch_of(&batch, &ids[1..]);
        assert_eq!(part.tables[0].deletes, vec!["p/2".to_owned()]);
        assert_eq!(part.tables[0].rows, vec![row("p/2"), row("p/3")]);
    }
}
