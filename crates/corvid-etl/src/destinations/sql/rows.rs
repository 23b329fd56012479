//! From script output to a [`SqlBatch`]: which tables a document's rows go to, each loaded
//! object turned into a row, and every JSON value mapped to a [`SqlValue`] (spec §3.3).
//!
//! Columns are ordered by name (RavenDB does the same), so rows of one table that set the
//! same columns share one bulk statement whatever order the script wrote them in.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use corvid_script::{LoadedObject, LoadedValue};
use serde_json::value::RawValue;

use crate::destinations::sql::batch::{SqlBatch, SqlRow, SqlValue, TableBatch};

/// The prefix `loadAttachment(name)` returns for an attachment of the current document.
const ATTACHMENT_REFERENCE: &str = "$attachment/";

/// A configured destination table (`SqlTables` entry).
#[derive(Debug, Clone, PartialEq)]
pub struct SqlTable {
    pub table: String,
    pub document_id_column: String,
    pub insert_only: bool,
}

/// Collects the deletes and rows of one batch.
pub struct BatchBuilder {
    tables: Vec<TableBatch>,
}

impl BatchBuilder {
    pub fn new(tables: &[SqlTable]) -> BatchBuilder {
        BatchBuilder {
            tables: tables
                .iter()
                .map(|it| TableBatch {
                    table: it.table.clone(),
                    document_id_column: it.document_id_column.clone(),
                    insert_only: it.insert_only,
                    deletes: Vec::new(),
                    new_documents: Vec::new(),
                    rows: Vec::new(),
                })
                .collect(),
        }
    }

    /// A deleted document: its rows go from every table that is not insert-only.
    pub fn delete_document(&mut self, document_id: &str) {
        for table in &mut self.tables {
            if !table.insert_only {
                table.deletes.push(document_id.to_owned());
            }
        }
    }

    /// A new version of a document: its old rows go (as for a delete) and the rows the script
    /// loaded come in. All or nothing: on an error (a table not in `SqlTables`, an output
    /// that is not an object) the builder is unchanged. `never_sent`: no earlier
    /// version of the document was ever loaded, so its deletes are only needed where rows
    /// for it may have come from elsewhere ([`TableBatch::new_documents`]).
    pub fn replace_document(
        &mut self,
        document_id: &str,
        never_sent: bool,
        loads: Vec<LoadedObject>,
        attachment: &mut dyn FnMut(&str) -> Option<Bytes>,
    ) -> Result<(), String> {
        let mut rows = Vec::with_capacity(loads.len());
        // One id for all the document's rows.
        let shared_id: Arc<str> = Arc::from(document_id);
        for load in loads {
            let Some(index) = self.table_index(&load.target) else {
                return Err(format!(
                    "loadTo{0}: table `{0}` is not one of the task's SqlTables",
                    load.target
                ));
            };
            let id_column = &self.tables[index].document_id_column;
            let row = match load.values {
                Some(values) => row_of_values(&shared_id, id_column, values, attachment)?,
                None => row(&shared_id, id_column, &load.json, attachment)?,
            };
            rows.push((index, row));
        }
        if never_sent {
            for table in &mut self.tables {
                if !table.insert_only {
                    table.new_documents.push(document_id.to_owned());
                }
            }
        } else {
            self.delete_document(document_id);
        }
        for (index, row) in rows {
            self.tables[index].rows.push(row);
        }
        Ok(())
    }

    /// Adds the deletes and rows of a builder for the same tables that saw later items.
    pub fn append(&mut self, later: BatchBuilder) {
        for (table, more) in self.tables.iter_mut().zip(later.tables) {
            table.deletes.extend(more.deletes);
            table.new_documents.extend(more.new_documents);
            table.rows.extend(more.rows);
        }
    }

    pub fn finish(self) -> SqlBatch {
        SqlBatch {
            tables: self.tables,
        }
    }

    fn table_index(&self, target: &str) -> Option<usize> {
        self.tables
            .iter()
            .position(|it| it.table.eq_ignore_ascii_case(target))
    }
}

/// One loaded object as a row. The document-id column is left out (writers put the source
/// id there, whatever the script set).
pub fn row(
    document_id: &Arc<str>,
    id_column: &str,
    json: &str,
    attachment: &mut dyn FnMut(&str) -> Option<Bytes>,
) -> Result<SqlRow, String> {
    let object: BTreeMap<String, Box<RawValue>> = serde_json::from_str(json)
        .map_err(|error| format!("a row must be a JSON object: {error}"))?;
    let columns = object
        .into_iter()
        // The id column is matched exactly, as RavenDB does: `id` and `Id` are different
        // columns where names are case-sensitive.
        .filter(|(name, _)| name != id_column && name != "@metadata")
        .map(|(name, raw)| {
            let value = value(raw.get(), attachment)?;
            Ok((Arc::from(name), value))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(SqlRow {
        document_id: Arc::clone(document_id),
        columns,
    })
}

/// One loaded object, handed over as values, as a row: the same columns, in the same (name)
/// order, with the same values as [`row`] gives for its JSON text.
pub fn row_of_values(
    document_id: &Arc<str>,
    id_column: &str,
    values: Vec<(Arc<str>, LoadedValue)>,
    attachment: &mut dyn FnMut(&str) -> Option<Bytes>,
) -> Result<SqlRow, String> {
    let mut columns = Vec::with_capacity(values.len());
    for (name, value) in values {
        if &*name == id_column || &*name == "@metadata" {
            continue;
        }
        let value = match value {
            LoadedValue::Null => SqlValue::Null,
            LoadedValue::Bool(it) => SqlValue::Bool(it),
            LoadedValue::Int(it) => SqlValue::Int(it),
            LoadedValue::Number(it) => SqlValue::Number(it),
            LoadedValue::String(text) => string_value(text, attachment),
            LoadedValue::Json(json) => self::value(&json, attachment)?,
        };
        columns.push((name, value));
    }
    columns.sort_by(|(a, _), (b, _)| a.cmp(b));
    Ok(SqlRow {
        document_id: Arc::clone(document_id),
        columns,
    })
}

/// Maps one JSON value (as the script's `JSON.stringify` wrote it).
pub fn value(
    raw: &str,
    attachment: &mut dyn FnMut(&str) -> Option<Bytes>,
) -> Result<SqlValue, String> {
    let raw = raw.trim();
    let parse_error = |error: serde_json::Error| format!("invalid JSON value: {error}");
    match raw.as_bytes().first() {
        None | Some(b'n') => Ok(SqlValue::Null),
        Some(b't') => Ok(SqlValue::Bool(true)),
        Some(b'f') => Ok(SqlValue::Bool(false)),
        Some(b'"') => {
            let text: String = serde_json::from_str(raw).map_err(parse_error)?;
            Ok(string_value(text, attachment))
        }
        Some(b'[') => Ok(SqlValue::Json(raw.to_owned())),
        Some(b'{') => typed(raw, attachment),
        Some(_) => Ok(number(raw)),
    }
}

/// A string: an attachment reference, a RavenDB date-time, or text.
fn string_value(text: String, attachment: &mut dyn FnMut(&str) -> Option<Bytes>) -> SqlValue {
    if let Some(name) = text.strip_prefix(ATTACHMENT_REFERENCE) {
        return attachment(name).map_or(SqlValue::Null, SqlValue::Binary);
    }
    if is_iso_date_time(&text) {
        return SqlValue::DateTime(text);
    }
    SqlValue::Text(text)
}

fn number(raw: &str) -> SqlValue {
    let integral = !raw.contains(['.', 'e', 'E']);
    match raw.parse::<i64>() {
        Ok(it) if integral => SqlValue::Int(it),
        _ => SqlValue::Number(raw.to_owned()),
    }
}

/// `{Type, Value[, Size]}` is an explicitly typed value; any other object is JSON text.
fn typed(raw: &str, attachment: &mut dyn FnMut(&str) -> Option<Bytes>) -> Result<SqlValue, String> {
    let object: BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(raw).map_err(|error| format!("invalid JSON value: {error}"))?;
    let is_typed = object.contains_key("Type")
        && object.contains_key("Value")
        && object
            .keys()
            .all(|it| matches!(it.as_str(), "Type" | "Value" | "Size"));
    if !is_typed {
        return Ok(SqlValue::Json(raw.to_owned()));
    }
    let type_name: String = serde_json::from_str(object["Type"].get())
        .map_err(|_| "`Type` of a typed value must be a string".to_owned())?;
    let size =
        match object.get("Size").map(|it| it.get()) {
            None | Some("null") => None,
            Some(text) => Some(text.parse::<u32>().map_err(|_| {
                format!("`Size` of a typed value must be a whole number, not {text}")
            })?),
        };
    let value = value(object["Value"].get(), attachment)?;
    Ok(SqlValue::Typed {
        type_name,
        value: Box::new(value),
        size,
    })
}

/// RavenDB's date-time formats: `yyyy-MM-ddTHH:mm[:ss[.f{1,7}]]` with an optional `Z` or
/// `±hh:mm` offset.
pub fn is_iso_date_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|it| it.iter().all(u8::is_ascii_digit))
    };
    let at = |index: usize, ch: u8| bytes.get(index) == Some(&ch);
    if !(digits(0..4) && at(4, b'-') && digits(5..7) && at(7, b'-') && digits(8..10)) {
        return false;
    }
    if !(at(10, b'T') && digits(11..13) && at(13, b':') && digits(14..16)) {
        return false;
    }
    let mut index = 16;
    if at(index, b':') {
        if !digits(index + 1..index + 3) {
            return false;
        }
        index += 3;
        if at(index, b'.') {
            let fraction = bytes[index + 1..]
                .iter()
                .take_while(|it| it.is_ascii_digit())
                .count();
            if !(1..=7).contains(&fraction) {
                return false;
            }
            index += 1 + fraction;
        }
    }
    match bytes.get(index) {
        None => true,
        Some(b'Z') => index + 1 == bytes.len(),
        Some(b'+' | b'-') => {
            index + 6 == bytes.len()
                && digits(index + 1..index + 3)
                && at(index + 3, b':')
                && digits(index + 4..index + 6)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_attachments(_: &str) -> Option<Bytes> {
        None
    }

    fn map(raw: &str) -> SqlValue {
        value(raw, &mut no_attachments).unwrap()
    }

    #[test]
    fn maps_json_values() {
        assert_eq!(map("null"), SqlValue::Null);
        assert_eq!(map("true"), SqlValue::Bool(true));
        assert_eq!(map("-42"), SqlValue::Int(-42));
        assert_eq!(map("19.99"), SqlValue::Number("19.99".into()));
        assert_eq!(map("1e+21"), SqlValue::Number("1e+21".into()));
        assert_eq!(
            map("12345678901234567890"),
            SqlValue::Number("12345678901234567890".into())
        );
        assert_eq!(map(r#""O'Brien\n""#), SqlValue::Text("O'Brien\n".into()));
        assert_eq!(
            map(r#""2024-01-02T03:04:05.1234567Z""#),
            SqlValue::DateTime("2024-01-02T03:04:05.1234567Z".into())
        );
        assert_eq!(
            map(r#"[1,{"a":2}]"#),
            SqlValue::Json(r#"[1,{"a":2}]"#.into())
        );
        assert_eq!(map(r#"{"a":[1]}"#), SqlValue::Json(r#"{"a":[1]}"#.into()));
        assert_eq!(
            map(r#"{"Type":"AnsiString","Value":"abc","Size":10}"#),
            SqlValue::Typed {
                type_name: "AnsiString".into(),
                value: Box::new(SqlValue::Text("abc".into())),
                size: Some(10)
            }
        );
        // An object that merely has a `Type` field is data.
        assert!(matches!(
            map(r#"{"Type":"x","Value":1,"Other":2}"#),
            SqlValue::Json(_)
        ));
    }

    #[test]
    fn recognises_ravendb_date_times_only() {
        for yes in [
            "2024-01-02T03:04",
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05.1",
            "2024-01-02T03:04:05.1234567",
            "2024-01-02T03:04:05.1234567Z",
            "2024-01-02T03:04:05+02:00",
            "2024-01-02T03:04:05.123-05:30",
        ] {
            assert!(is_iso_date_time(yes), "{yes}");
        }
        for no in [
            "2024-01-02",
            "2024-01-02 03:04:05",
            "2024-01-02T03:04:05.12345678",
            "2024-01-02T03:04:05Zx",
            "2024-01-02T03:04:05+0200",
            "orders/1",
            "",
        ] {
            assert!(!is_iso_date_time(no), "{no}");
        }
    }

    #[test]
    fn attachment_references_become_binary_or_null() {
        let mut lookup = |name: &str| (name == "photo.png").then(|| Bytes::from_static(b"\x89PNG"));
        assert_eq!(
            value(r#""$attachment/photo.png""#, &mut lookup).unwrap(),
            SqlValue::Binary(Bytes::from_static(b"\x89PNG"))
        );
        assert_eq!(
            value(r#""$attachment/missing""#, &mut lookup).unwrap(),
            SqlValue::Null
        );
    }

    #[test]
    fn builds_batches_all_or_nothing() {
        let tables = [
            SqlTable {
                table: "Orders".into(),
                document_id_column: "Id".into(),
                insert_only: false,
            },
            SqlTable {
                table: "OrderLines".into(),
                document_id_column: "OrderId".into(),
                insert_only: false,
            },
            SqlTable {
                table: "Audit".into(),
                document_id_column: "DocId".into(),
                insert_only: true,
            },
        ];
        let load = |target: &str, json: &str| LoadedObject {
            target: target.into(),
            json: json.into(),
            values: None,
            attachments: Vec::new(),
            extra_arguments: None,
        };
        let mut builder = BatchBuilder::new(&tables);
        builder
            .replace_document(
                "orders/1",
                false,
                vec![
                    load("OrderLines", r#"{"Qty":2,"OrderId":"ignored"}"#),
                    load("orders", r#"{"Total":4.5,"Id":"x"}"#),
                ],
                &mut no_attachments,
            )
            .unwrap();
        let error = builder
            .replace_document(
                "orders/2",
                true,
                vec![load("Orders", "{}"), load("Nope", "{}")],
                &mut no_attachments,
            )
            .unwrap_err();
        assert!(
            error.contains("`Nope` is not one of the task's SqlTables"),
            "{error}"
        );
        builder.delete_document("orders/3");
        builder
            .replace_document(
                "orders/4",
                true,
                vec![load("Orders", "{}")],
                &mut no_attachments,
            )
            .unwrap();
        let batch = builder.finish();
        assert_eq!(batch.tables[0].deletes, ["orders/1", "orders/3"]);
        assert_eq!(batch.tables[1].deletes, ["orders/1", "orders/3"]);
        assert_eq!(batch.tables[0].new_documents, ["orders/4"]);
        assert_eq!(batch.tables[1].new_documents, ["orders/4"]);
        assert!(batch.tables[2].deletes.is_empty());
        assert!(batch.tables[2].new_documents.is_empty(), "insert-only");
        assert_eq!(batch.tables[0].rows.len(), 2);
        let mut owned_orders = batch.clone();
        owned_orders.resolve_new_documents(|table| table.table == "Orders");
        assert_eq!(owned_orders.tables[0].deletes, ["orders/1", "orders/3"]);
        assert_eq!(
            owned_orders.tables[1].deletes,
            ["orders/1", "orders/3", "orders/4"]
        );
        assert!(
            owned_orders
                .tables
                .iter()
                .all(|it| it.new_documents.is_empty())
        );
        assert_eq!(
            batch.tables[0].rows[..1],
            [SqlRow {
                document_id: "orders/1".into(),
                columns: vec![("Total".into(), SqlValue::Number("4.5".into()))]
            }]
        );
        assert_eq!(
            batch.tables[1].rows[0].columns,
            [("Qty".into(), SqlValue::Int(2))]
        );
    }
}
