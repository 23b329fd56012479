//! The Parquet file of one (table, partition) of an OLAP ETL run, written batch by batch.
//!
//! A run may hold a million documents while the process stays under a few hundred MiB, so a
//! file is never held in memory: each [`ParquetFileWriter::write`] encodes its rows (Arrow
//! arrays for that batch only), writes them as one or more row groups of at most
//! `max_row_group_rows` rows, and hands them to the file before returning. What stays in
//! memory between writes is the footer's metadata (a few hundred bytes per row group).
//!
//! The first write fixes the file's columns and types (see `columns.rs` for the rules); a later
//! batch that does not fit is refused whole, before anything reaches the file, so the caller
//! can finish this file and write the batch to a new one. Files are snappy-compressed, with
//! dictionary encoding and page statistics (parquet's defaults); a test reads them with
//! DuckDB. After an `Io` or `Parquet` error the file is not to be used: start it again.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use corvid_script::LoadedValue;
use corvid_store::Timestamp;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use crate::destinations::olap::columns::{self, ColumnType};

/// The column of each row's last modification (for a delete row, the deletion time).
pub(crate) const LAST_MODIFIED_COLUMN: &str = "_lastModifiedTime";
/// The column that tells delete rows from put rows, when the task emits deletes.
pub(crate) const DELETED_COLUMN: &str = "_deleted";

/// One row of an OLAP table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OlapRow {
    pub document_id: String,
    /// The document's last modification; for a delete row, the deletion time.
    pub last_modified: Timestamp,
    /// A delete row (the task's `EmitDeletes`): `values` is empty.
    pub deleted: bool,
    /// The loaded object's members in order.
    pub values: Vec<(Arc<str>, LoadedValue)>,
}

/// How a file's rows are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileOptions {
    /// The document id column's name (`DocumentIdColumn`, `_id` by default).
    pub id_column: String,
    /// Adds a non-null BOOLEAN column `_deleted` (false on every put row).
    pub emit_deletes: bool,
    /// Rows per row group at most (a batch larger than this is several row groups).
    pub max_row_group_rows: usize,
    /// Encoded bytes a row group may hold in memory before a write closes it. Small batches
    /// of a partition then share a row group (a row group per batch made files about 4×
    /// larger than DuckDB's: dictionaries and statistics per handful of rows), while what a
    /// file keeps in memory stays under this.
    pub max_buffered_bytes: usize,
}

/// What a finished file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileSummary {
    pub n_rows: u64,
    pub n_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum OlapFileError {
    #[error("failed to write OLAP file `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The batch's values do not fit the file's columns: finish the file, start a new one.
    #[error("column `{column}` is {file_type} in the OLAP file but {batch_type} in the batch")]
    SchemaMismatch {
        column: String,
        file_type: String,
        batch_type: String,
    },
    /// A loaded object has a member named like a column Corvid writes itself.
    #[error("a loaded object's member `{column}` has the name of a column OLAP ETL writes itself")]
    ReservedColumn { column: String },
    #[error("failed to write Parquet file `{}`", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: ParquetError,
    },
}

/// Writes one Parquet file, batch by batch.
pub(crate) struct ParquetFileWriter {
    path: PathBuf,
    options: FileOptions,
    /// Kept to fsync and measure the file at the end; the Arrow writer has a clone.
    file: File,
    /// Set by the first write (or by `finish` for a file no row was written to).
    open: Option<OpenFile>,
    n_rows: u64,
}

impl ParquetFileWriter {
    /// Creates the file (truncating one left over) with no schema yet: the first `write` fixes it.
    pub fn create(path: &Path, options: FileOptions) -> Result<ParquetFileWriter, OlapFileError> {
        let file = File::create(path).map_err(|source| OlapFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(ParquetFileWriter {
            path: path.to_owned(),
            options,
            file,
            open: None,
            n_rows: 0,
        })
    }

    /// Appends rows. Their types are inferred (columns.rs) and must fit the file's schema (fixed by the
    /// first write); if they do not, returns `OlapFileError::SchemaMismatch` and the file is unchanged
    /// (the caller then finishes this file and writes the rows to a new one).
    pub fn write(&mut self, rows: &[OlapRow]) -> Result<(), OlapFileError> {
        if rows.is_empty() {
            return Ok(());
        }
        // Everything is encoded before anything is written, so a batch that does not fit
        // leaves the file as it was.
        let record_batch;
        let open = match &mut self.open {
            Some(open) => {
                record_batch =
                    encode_rows(&self.path, rows, &self.options, &open.columns, &open.schema)?;
                open
            }
            None => {
                let columns = new_file_columns(rows, &self.options)?;
                let schema = arrow_schema(&self.options, &columns);
                record_batch = encode_rows(&self.path, rows, &self.options, &columns, &schema)?;
                let open = open_writer(&self.path, &self.file, &self.options, columns, schema)?;
                self.open.insert(open)
            }
        };
        let path = &self.path;
        let parquet_error = |source| OlapFileError::Parquet {
            path: path.clone(),
            source,
        };
        open.writer.write(&record_batch).map_err(parquet_error)?;
        // Past the cap, the row group is closed: what was encoded goes to the file.
        if open.writer.memory_size() >= self.options.max_buffered_bytes {
            open.writer.flush().map_err(parquet_error)?;
        }
        self.n_rows += rows.len() as u64;
        Ok(())
    }

    /// The encoded bytes the file keeps in memory (its open row group).
    pub fn buffered_bytes(&self) -> usize {
        self.open.as_ref().map_or(0, |it| it.writer.memory_size())
    }

    /// Closes the open row group: what it holds goes to the file.
    pub fn flush(&mut self) -> Result<(), OlapFileError> {
        if let Some(open) = &mut self.open {
            let path = &self.path;
            open.writer
                .flush()
                .map_err(|source| OlapFileError::Parquet {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// The rows written so far.
    #[cfg(test)]
    pub fn n_rows(&self) -> u64 {
        self.n_rows
    }

    /// Writes the footer, fsyncs the file, and returns what was written. A file no row was
    /// written to gets Corvid's own columns only.
    pub fn finish(mut self) -> Result<FileSummary, OlapFileError> {
        let open = match self.open.take() {
            Some(open) => open,
            None => {
                let schema = arrow_schema(&self.options, &[]);
                open_writer(&self.path, &self.file, &self.options, Vec::new(), schema)?
            }
        };
        let path = &self.path;
        let file_clone = open
            .writer
            .into_inner()
            .map_err(|source| OlapFileError::Parquet {
                path: path.clone(),
                source,
            })?;
        drop(file_clone);
        let io_error = |source| OlapFileError::Io {
            path: path.clone(),
            source,
        };
        self.file.sync_all().map_err(io_error)?;
        let n_bytes = self.file.metadata().map_err(io_error)?.len();
        Ok(FileSummary {
            n_rows: self.n_rows,
            n_bytes,
        })
    }
}

/// The columns and their types rows would get in a new file, for the test endpoint: e.g. [("_id","String"),("Total","Decimal(38,2)"),...].
pub(crate) fn describe_columns(
    rows: &[OlapRow],
    options: &FileOptions,
) -> Result<Vec<(String, String)>, OlapFileError> {
    let columns = new_file_columns(rows, options)?;
    let mut res = Vec::with_capacity(columns.len() + 3);
    res.push((options.id_column.clone(), ColumnType::String.to_string()));
    res.push((
        LAST_MODIFIED_COLUMN.to_owned(),
        ColumnType::Timestamp.to_string(),
    ));
    if options.emit_deletes {
        res.push((DELETED_COLUMN.to_owned(), ColumnType::Boolean.to_string()));
    }
    for column in columns {
        res.push((column.name.to_string(), column.column_type.to_string()));
    }
    Ok(res)
}

/// A file being written: its script columns, fixed by the first batch.
struct OpenFile {
    columns: Vec<ScriptColumn>,
    schema: SchemaRef,
    writer: ArrowWriter<File>,
}

/// A column of the script's values.
#[derive(Debug, Clone)]
struct ScriptColumn {
    name: Arc<str>,
    column_type: ColumnType,
}

/// A batch's script values by column: the file's columns first (in the file's order), then
/// the batch's new ones in first-seen order. A row without a member holds null there.
struct BatchColumns<'a> {
    names: Vec<Arc<str>>,
    values: Vec<Vec<&'a LoadedValue>>,
}

static NULL: LoadedValue = LoadedValue::Null;

impl<'a> BatchColumns<'a> {
    fn gather(
        rows: &'a [OlapRow],
        options: &FileOptions,
        file_columns: &[ScriptColumn],
    ) -> Result<BatchColumns<'a>, OlapFileError> {
        let n_rows = rows.len();
        let mut names: Vec<Arc<str>> = file_columns.iter().map(|it| it.name.clone()).collect();
        let mut column_idx_by_name: HashMap<Arc<str>, usize> = names
            .iter()
            .enumerate()
            .map(|(column_idx, name)| (name.clone(), column_idx))
            .collect();
        let mut values: Vec<Vec<&LoadedValue>> = vec![vec![&NULL; n_rows]; names.len()];
        for (row_idx, row) in rows.iter().enumerate() {
            for (value_idx, (name, value)) in row.values.iter().enumerate() {
                // Rows of one script mostly list the same members in the same order, under
                // the same shared name: the column at the member's position is checked first.
                let at_position = names
                    .get(value_idx)
                    .filter(|it| Arc::ptr_eq(it, name) || **it == *name)
                    .map(|_| value_idx);
                let column_idx = match at_position.or_else(|| column_idx_by_name.get(name).copied())
                {
                    Some(it) => it,
                    None => {
                        if is_reserved(name, options) {
                            return Err(OlapFileError::ReservedColumn {
                                column: name.to_string(),
                            });
                        }
                        names.push(name.clone());
                        values.push(vec![&NULL; n_rows]);
                        column_idx_by_name.insert(name.clone(), names.len() - 1);
                        names.len() - 1
                    }
                };
                values[column_idx][row_idx] = value;
            }
        }
        Ok(BatchColumns { names, values })
    }
}

/// The script columns a new file gets from its first batch.
fn new_file_columns(
    rows: &[OlapRow],
    options: &FileOptions,
) -> Result<Vec<ScriptColumn>, OlapFileError> {
    let batch_columns = BatchColumns::gather(rows, options, &[])?;
    Ok(batch_columns
        .names
        .into_iter()
        .zip(&batch_columns.values)
        .map(|(name, values)| ScriptColumn {
            name,
            // A column null in every row of the first batch is STRING: every reader takes
            // it, and any later value fits it as text.
            column_type: ColumnType::infer(values).unwrap_or(ColumnType::String),
        })
        .collect())
}

/// Starts the Parquet file on a clone of `file`'s handle.
fn open_writer(
    path: &Path,
    file: &File,
    options: &FileOptions,
    columns: Vec<ScriptColumn>,
    schema: SchemaRef,
) -> Result<OpenFile, OlapFileError> {
    let file_clone = file.try_clone().map_err(|source| OlapFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    // The id and last-modified columns hold a different value on (nearly) every row: a
    // dictionary of them only costs memory (an interner per open file) and is dropped anyway.
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(options.max_row_group_rows.max(1)))
        .set_dictionary_page_size_limit(256 * 1024)
        .set_column_dictionary_enabled(options.id_column.as_str().into(), false)
        .set_column_dictionary_enabled(LAST_MODIFIED_COLUMN.into(), false)
        .build();
    let writer =
        ArrowWriter::try_new(file_clone, schema.clone(), Some(properties)).map_err(|source| {
            OlapFileError::Parquet {
                path: path.to_owned(),
                source,
            }
        })?;
    Ok(OpenFile {
        columns,
        schema,
        writer,
    })
}

fn is_reserved(name: &str, options: &FileOptions) -> bool {
    name == options.id_column
        || name == LAST_MODIFIED_COLUMN
        || (options.emit_deletes && name == DELETED_COLUMN)
}

fn arrow_schema(options: &FileOptions, columns: &[ScriptColumn]) -> SchemaRef {
    let mut fields = Vec::with_capacity(columns.len() + 3);
    fields.push(Field::new(
        &options.id_column,
        ColumnType::String.data_type(),
        false,
    ));
    fields.push(Field::new(
        LAST_MODIFIED_COLUMN,
        ColumnType::Timestamp.data_type(),
        false,
    ));
    if options.emit_deletes {
        fields.push(Field::new(
            DELETED_COLUMN,
            ColumnType::Boolean.data_type(),
            false,
        ));
    }
    for column in columns {
        fields.push(Field::new(
            column.name.as_ref(),
            column.column_type.data_type(),
            true,
        ));
    }
    Arc::new(Schema::new(fields))
}

/// Encodes rows in the file's columns, or says which column they do not fit.
fn encode_rows(
    path: &Path,
    rows: &[OlapRow],
    options: &FileOptions,
    file_columns: &[ScriptColumn],
    schema: &SchemaRef,
) -> Result<RecordBatch, OlapFileError> {
    let batch_columns = BatchColumns::gather(rows, options, file_columns)?;
    let n_rows = rows.len();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());

    let mut ids =
        StringBuilder::with_capacity(n_rows, rows.iter().map(|it| it.document_id.len()).sum());
    let mut last_modified = TimestampMicrosecondBuilder::with_capacity(n_rows)
        .with_data_type(ColumnType::Timestamp.data_type());
    for row in rows {
        ids.append_value(&row.document_id);
        last_modified.append_value(columns::timestamp_micros(row.last_modified));
    }
    arrays.push(Arc::new(ids.finish()));
    arrays.push(Arc::new(last_modified.finish()));
    if options.emit_deletes {
        let mut deleted = BooleanBuilder::with_capacity(n_rows);
        for row in rows {
            deleted.append_value(row.deleted);
        }
        arrays.push(Arc::new(deleted.finish()));
    }

    for (column_idx, (name, values)) in batch_columns
        .names
        .iter()
        .zip(&batch_columns.values)
        .enumerate()
    {
        let Some(file_column) = file_columns.get(column_idx) else {
            // A column the file lacks: nothing is lost when the batch has no value in it.
            match ColumnType::infer(values) {
                None => continue,
                Some(batch_type) => {
                    return Err(OlapFileError::SchemaMismatch {
                        column: name.to_string(),
                        file_type: "absent".to_owned(),
                        batch_type: batch_type.to_string(),
                    });
                }
            }
        };
        // The batch's own type is only wanted to say why it does not fit.
        let Some(array) = file_column.column_type.array(values) else {
            return Err(OlapFileError::SchemaMismatch {
                column: name.to_string(),
                file_type: file_column.column_type.to_string(),
                batch_type: ColumnType::infer(values)
                    .map_or("Null".to_owned(), |it| it.to_string()),
            });
        };
        arrays.push(array);
    }
    // Not expected to fail: the arrays are built from the schema's own types.
    RecordBatch::try_new(schema.clone(), arrays).map_err(|error| OlapFileError::Parquet {
        path: path.to_owned(),
        source: ParquetError::from(error),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::{Array, Decimal128Array};
    use arrow_schema::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;
    use crate::destinations::olap::columns::tests::{int, json, number, string};

    fn options() -> FileOptions {
        FileOptions {
            id_column: "_id".to_owned(),
            emit_deletes: false,
            max_row_group_rows: 1000,
            max_buffered_bytes: 1024 * 1024,
        }
    }

    /// A put row of document `id`, modified at `ticks`.
    fn row(id: &str, ticks: i64, values: Vec<(&str, LoadedValue)>) -> OlapRow {
        OlapRow {
            document_id: id.to_owned(),
            last_modified: Timestamp(ticks),
            deleted: false,
            values: values
                .into_iter()
                .map(|(name, value)| (Arc::from(name), value))
                .collect(),
        }
    }

    /// What a reader gets from a file: each column's name, Arrow type and values as text, and
    /// the rows of each row group.
    #[derive(Debug)]
    struct ReadBack {
        columns: Vec<(String, DataType, Vec<String>)>,
        row_group_rows: Vec<i64>,
    }

    impl ReadBack {
        fn column(&self, name: &str) -> &[String] {
            match self.columns.iter().find(|it| it.0 == name) {
                Some(it) => &it.2,
                None => panic!("no column `{name}` in {:?}", self.columns),
            }
        }

        fn types(&self) -> Vec<(String, String)> {
            self.columns
                .iter()
                .map(|(name, data_type, _)| (name.clone(), data_type.to_string()))
                .collect()
        }
    }

    fn read_back(path: &Path) -> ReadBack {
        let row_group_rows = SerializedFileReader::new(File::open(path).unwrap())
            .unwrap()
            .metadata()
            .row_groups()
            .iter()
            .map(|it| it.num_rows())
            .collect();
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let schema = builder.schema().clone();
        let mut columns: Vec<(String, DataType, Vec<String>)> = schema
            .fields()
            .iter()
            .map(|it| (it.name().clone(), it.data_type().clone(), Vec::new()))
            .collect();
        for record_batch in builder.build().unwrap() {
            let record_batch = record_batch.unwrap();
            for (column_idx, array) in record_batch.columns().iter().enumerate() {
                for row_idx in 0..array.len() {
                    columns[column_idx]
                        .2
                        .push(cell_text(array.as_ref(), row_idx));
                }
            }
        }
        ReadBack {
            columns,
            row_group_rows,
        }
    }

    fn cell_text(array: &dyn Array, row_idx: usize) -> String {
        if array.is_null(row_idx) {
            return "null".to_owned();
        }
        match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().value(row_idx).to_owned(),
            DataType::Int64 => array.as_primitive::<Int64Type>().value(row_idx).to_string(),
            DataType::Float64 => array
                .as_primitive::<Float64Type>()
                .value(row_idx)
                .to_string(),
            DataType::Boolean => array.as_boolean().value(row_idx).to_string(),
            DataType::Timestamp(..) => array
                .as_primitive::<TimestampMicrosecondType>()
                .value(row_idx)
                .to_string(),
            DataType::Decimal128(..) => array
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .unwrap()
                .value_as_string(row_idx),
            other => panic!("unexpected type {other}"),
        }
    }

    fn write_file(path: &Path, options: FileOptions, batches: &[Vec<OlapRow>]) -> FileSummary {
        let mut writer = ParquetFileWriter::create(path, options).unwrap();
        for rows in batches {
            writer.write(rows).unwrap();
        }
        writer.finish().unwrap()
    }

    /// One row of each type the module doc names, and a second that leaves members out.
    fn rows_of_every_type() -> Vec<OlapRow> {
        vec![
            row(
                "orders/1-A",
                17_041_646_451_234_567,
                vec![
                    ("Count", int(3)),
                    ("Total", number("12.25")),
                    ("Ratio", number("0.0000000000000000001")),
                    ("Active", LoadedValue::Bool(true)),
                    ("At", string("2024-01-02T03:04:05.1234567Z")),
                    ("Day", json("\"2024-01-02T00:00:00.000Z\"")),
                    ("Name", string("Ann")),
                    ("Lines", json("[{\"Qty\":2}]")),
                    ("Mixed", string("x")),
                    ("Nothing", LoadedValue::Null),
                ],
            ),
            row(
                "orders/2-A",
                0,
                vec![
                    ("Count", int(-4)),
                    ("Total", int(7)),
                    ("Ratio", int(2)),
                    ("Mixed", int(5)),
                    ("Active", LoadedValue::Bool(false)),
                ],
            ),
        ]
    }

    #[test]
    fn writes_every_type_and_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.parquet");
        let summary = write_file(&path, options(), &[rows_of_every_type()]);
        assert_eq!(summary.n_rows, 2);
        assert_eq!(summary.n_bytes, std::fs::metadata(&path).unwrap().len());

        let read = read_back(&path);
        let timestamp = "Timestamp(µs, \"UTC\")".to_owned();
        let expect_types: Vec<(String, String)> = [
            ("_id", "Utf8"),
            ("_lastModifiedTime", timestamp.as_str()),
            ("Count", "Int64"),
            ("Total", "Decimal128(38, 2)"),
            ("Ratio", "Float64"),
            ("Active", "Boolean"),
            ("At", timestamp.as_str()),
            ("Day", timestamp.as_str()),
            ("Name", "Utf8"),
            ("Lines", "Utf8"),
            ("Mixed", "Utf8"),
            ("Nothing", "Utf8"),
        ]
        .iter()
        .map(|(name, data_type)| (name.to_string(), data_type.to_string()))
        .collect();
        assert_eq!(read.types(), expect_types);
        assert_eq!(read.column("_id"), ["orders/1-A", "orders/2-A"]);
        assert_eq!(read.column("_lastModifiedTime"), ["1704164645123456", "0"]);
        assert_eq!(read.column("Count"), ["3", "-4"]);
        assert_eq!(read.column("Total"), ["12.25", "7.00"]);
        assert_eq!(read.column("Ratio"), ["0.0000000000000000001", "2"]);
        assert_eq!(read.column("Active"), ["true", "false"]);
        assert_eq!(read.column("At"), ["1704164645123456", "null"]);
        assert_eq!(read.column("Day"), ["1704153600000000", "null"]);
        assert_eq!(read.column("Name"), ["Ann", "null"]);
        assert_eq!(read.column("Lines"), ["[{\"Qty\":2}]", "null"]);
        assert_eq!(read.column("Mixed"), ["x", "5"]);
        assert_eq!(read.column("Nothing"), ["null", "null"]);

        // The writer's own columns are required, the script's optional.
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let required: Vec<bool> = (0..schema.num_columns())
            .map(|it| !schema.column(it).self_type().is_optional())
            .collect();
        assert_eq!(required[..3], [true, true, false]);
        assert!(required[3..].iter().all(|it| !it));
        let compression = reader.metadata().row_group(0).column(0).compression();
        assert_eq!(compression, Compression::SNAPPY);
    }

    #[test]
    fn describes_the_columns_a_new_file_would_get() {
        let options = FileOptions {
            emit_deletes: true,
            id_column: "OrderId".to_owned(),
            ..options()
        };
        let described = describe_columns(&rows_of_every_type(), &options).unwrap();
        let described: Vec<String> = described
            .iter()
            .map(|(name, column_type)| format!("{name}: {column_type}"))
            .collect();
        assert_eq!(
            described,
            [
                "OrderId: String",
                "_lastModifiedTime: Timestamp(Microsecond, UTC)",
                "_deleted: Boolean",
                "Count: Int64",
                "Total: Decimal(38,2)",
                "Ratio: Double",
                "Active: Boolean",
                "At: Timestamp(Microsecond, UTC)",
                "Day: Timestamp(Microsecond, UTC)",
                "Name: String",
                "Lines: String",
                "Mixed: String",
                "Nothing: String",
            ]
        );
    }

    #[test]
    fn emits_delete_rows_with_deleted_true_and_null_members() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deletes.parquet");
        let options = FileOptions {
            emit_deletes: true,
            ..options()
        };
        let mut delete = row("orders/2-A", 20, vec![]);
        delete.deleted = true;
        let rows = vec![
            row("orders/1-A", 10, vec![("Total", number("1.5"))]),
            delete,
        ];
        write_file(&path, options, &[rows]);

        let read = read_back(&path);
        assert_eq!(read.column("_deleted"), ["false", "true"]);
        assert_eq!(read.column("_lastModifiedTime"), ["1", "2"]);
        assert_eq!(read.column("Total"), ["1.5", "null"]);
    }

    #[test]
    fn later_batches_are_coerced_into_the_file_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coerced.parquet");
        let first = vec![row(
            "a",
            0,
            vec![
                ("Price", number("1.25")),
                ("Ratio", number("0.0000000000000000001")),
                ("Label", string("x")),
                ("Later", LoadedValue::Null),
                ("Gone", int(1)),
            ],
        )];
        let second = vec![
            row(
                "b",
                0,
                vec![
                    ("Price", int(3)),
                    ("Ratio", int(4)),
                    ("Label", json("{\"a\":1}")),
                    ("Later", int(8)),
                    ("NewButNull", LoadedValue::Null),
                ],
            ),
            row(
                "c",
                0,
                vec![
                    ("Price", number("0.5")),
                    ("Ratio", number("2.5")),
                    ("Label", LoadedValue::Bool(true)),
                    ("Later", number("1.5")),
                ],
            ),
        ];
        write_file(&path, options(), &[first, second]);

        let read = read_back(&path);
        assert_eq!(read.column("Price"), ["1.25", "3.00", "0.50"]);
        assert_eq!(read.column("Ratio"), ["0.0000000000000000001", "4", "2.5"]);
        assert_eq!(read.column("Label"), ["x", "{\"a\":1}", "true"]);
        assert_eq!(read.column("Later"), ["null", "8", "1.5"]);
        assert_eq!(read.column("Gone"), ["1", "null", "null"]);
        assert!(read.columns.iter().all(|it| it.0 != "NewButNull"));
    }

    #[test]
    fn a_batch_that_does_not_fit_is_refused_and_leaves_the_file_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mismatch.parquet");
        let mut writer = ParquetFileWriter::create(&path, options()).unwrap();
        let first = vec![row(
            "a",
            0,
            vec![
                ("Count", int(1)),
                ("Price", number("1.25")),
                ("At", string("2024-01-02")),
            ],
        )];
        writer.write(&first).unwrap();

        let refused = [
            (vec![("Count", string("2"))], "Count", "Int64", "String"),
            (
                vec![("Count", number("2.5"))],
                "Count",
                "Int64",
                "Decimal(38,1)",
            ),
            (
                vec![("Price", number("1.125"))],
                "Price",
                "Decimal(38,2)",
                "Decimal(38,3)",
            ),
            (
                vec![("At", string("tomorrow"))],
                "At",
                "Timestamp(Microsecond, UTC)",
                "String",
            ),
            (
                vec![("Extra", LoadedValue::Bool(true))],
                "Extra",
                "absent",
                "Boolean",
            ),
        ];
        for (values, column, file_type, batch_type) in refused {
            // The refused row comes after one that fits: nothing of the batch is written.
            let rows = vec![row("b", 0, vec![("Count", int(2))]), row("c", 0, values)];
            let error = writer.write(&rows).unwrap_err();
            match error {
                OlapFileError::SchemaMismatch {
                    column: error_column,
                    file_type: error_file_type,
                    batch_type: error_batch_type,
                } => assert_eq!(
                    (
                        error_column.as_str(),
                        error_file_type.as_str(),
                        error_batch_type.as_str()
                    ),
                    (column, file_type, batch_type)
                ),
                other => panic!("expected a schema mismatch, got {other:?}"),
            }
            assert_eq!(writer.n_rows(), 1);
        }
        let summary = writer.finish().unwrap();
        assert_eq!(summary.n_rows, 1);

        let read = read_back(&path);
        assert_eq!(read.column("_id"), ["a"]);
        assert_eq!(read.column("Price"), ["1.25"]);
        assert_eq!(read.row_group_rows, [1]);
    }

    #[test]
    fn a_member_named_like_a_writer_column_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let with_deletes = FileOptions {
            emit_deletes: true,
            ..options()
        };
        for name in ["_id", "_lastModifiedTime", "_deleted"] {
            let path = dir.path().join("reserved.parquet");
            let mut writer = ParquetFileWriter::create(&path, with_deletes.clone()).unwrap();
            let rows = vec![row("a", 0, vec![(name, int(1))])];
            let error = writer.write(&rows).unwrap_err();
            assert!(
                matches!(&error, OlapFileError::ReservedColumn { column } if column == name),
                "{error:?}"
            );
            assert!(describe_columns(&rows, &with_deletes).is_err());
        }
        // Without `EmitDeletes`, `_deleted` is an ordinary member.
        let rows = vec![row("a", 0, vec![("_deleted", int(1))])];
        assert!(describe_columns(&rows, &options()).is_ok());
    }

    #[test]
    fn row_groups_hold_at_most_max_row_group_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("groups.parquet");
        let options = FileOptions {
            max_row_group_rows: 4,
            ..options()
        };
        let rows = |from: i64, n_rows: i64| -> Vec<OlapRow> {
            (from..from + n_rows)
                .map(|it| row(&format!("docs/{it}"), it, vec![("N", int(it))]))
                .collect()
        };
        write_file(&path, options.clone(), &[rows(0, 10), rows(10, 3)]);

        let read = read_back(&path);
        // Under the byte cap the second batch tops up the first's last row group.
        assert_eq!(read.row_group_rows, [4, 4, 4, 1]);
        // With no room in memory each write ends its last row group.
        let options = FileOptions {
            max_buffered_bytes: 0,
            ..options
        };
        write_file(&path, options, &[rows(0, 10), rows(10, 3)]);
        assert_eq!(read_back(&path).row_group_rows, [4, 4, 2, 3]);
        let expect: Vec<String> = (0..13).map(|it| it.to_string()).collect();
        assert_eq!(read.column("N"), expect);
    }

    #[test]
    fn create_truncates_a_file_left_by_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("left-over.parquet");
        // A run that died mid-file: the magic and a row group, no footer.
        let mut left_over = b"PAR1".to_vec();
        left_over.extend(std::iter::repeat_n(0xAB, 100_000));
        std::fs::write(&path, &left_over).unwrap();

        let summary = write_file(&path, options(), &[vec![row("a", 0, vec![("N", int(1))])]]);
        assert!(summary.n_bytes < 10_000, "{summary:?}");
        assert_eq!(read_back(&path).column("N"), ["1"]);
    }

    #[test]
    fn a_file_without_rows_has_the_writer_columns_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.parquet");
        let summary = write_file(&path, options(), &[vec![]]);
        assert_eq!(summary.n_rows, 0);
        let read = read_back(&path);
        let names: Vec<&str> = read.columns.iter().map(|it| it.0.as_str()).collect();
        assert_eq!(names, ["_id", "_lastModifiedTime"]);
        assert!(read.row_group_rows.is_empty());
    }

    #[test]
    fn writes_100_000_rows_batch_by_batch_without_keeping_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large.parquet");
        let options = FileOptions {
            max_row_group_rows: 8192,
            emit_deletes: true,
            ..options()
        };
        let mut writer = ParquetFileWriter::create(&path, options).unwrap();
        let n_rows = 100_000i64;
        let mut written = 0i64;
        while written < n_rows {
            let batch_rows: Vec<OlapRow> = (written..n_rows.min(written + 8192))
                .map(|it| {
                    row(
                        &format!("orders/{it}-A"),
                        it * 10,
                        vec![
                            ("Customer", string(&format!("customers/{}", it % 1000))),
                            ("Total", number(&format!("{}.{:02}", it % 500, it % 100))),
                            ("Lines", int(it % 7)),
                        ],
                    )
                })
                .collect();
            writer.write(&batch_rows).unwrap();
            written += batch_rows.len() as i64;
            // At most the cap (plus the batch that passed it) stays buffered.
            let open = writer.open.as_ref().unwrap();
            assert!(open.writer.in_progress_size() < 2 * 1024 * 1024);
        }
        let summary = writer.finish().unwrap();
        assert_eq!(summary.n_rows, 100_000);

        let read = read_back(&path);
        assert_eq!(read.row_group_rows.len(), 13);
        assert_eq!(read.row_group_rows.iter().sum::<i64>(), 100_000);
        let totals = read.column("Total");
        assert_eq!(totals.len(), 100_000);
        assert_eq!(totals[99_999], "499.99");
        assert_eq!(read.column("_id")[12_345], "orders/12345-A");
    }

    /// The Python of the DuckDB venv `scripts/services/duckdb.sh` installs, if there is one.
    fn duckdb_python() -> Option<PathBuf> {
        let venv = match std::env::var_os("CORVID_DUCKDB_VENV") {
            Some(it) => PathBuf::from(it),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/corvid/duckdb-venv"),
        };
        let python = venv.join("bin/python");
        python.exists().then_some(python)
    }

    #[test]
    fn duckdb_reads_the_intended_types() {
        let Some(python) = duckdb_python() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the DuckDB check: run scripts/services/duckdb.sh first"
            );
            println!(
                "SKIPPED duckdb_reads_the_intended_types: no DuckDB (scripts/services/duckdb.sh)"
            );
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duckdb.parquet");
        let options = FileOptions {
            emit_deletes: true,
            ..options()
        };
        write_file(&path, options, &[rows_of_every_type()]);

        let script = r#"
import json, sys, duckdb
columns = ["_id", "_lastModifiedTime", "_deleted", "Count", "Total", "Ratio", "Active", "At",
           "Day", "Name", "Lines", "Mixed", "Nothing"]
types = duckdb.execute(
    "SELECT " + ", ".join(f'typeof("{c}")' for c in columns) + " FROM read_parquet(?) LIMIT 1",
    [sys.argv[1]]).fetchone()
values = duckdb.execute(
    'SELECT "_id", epoch_us("_lastModifiedTime"), "Total"::VARCHAR, epoch_us("At"), "Lines" '
    'FROM read_parquet(?) ORDER BY "_id"', [sys.argv[1]]).fetchall()
print(json.dumps({"types": dict(zip(columns, types)), "values": values}))
"#;
        let output = Command::new(&python)
            .arg("-c")
            .arg(script)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "duckdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let timestamp = "TIMESTAMP WITH TIME ZONE";
        assert_eq!(
            answer["types"],
            serde_json::json!({
                "_id": "VARCHAR",
                "_lastModifiedTime": timestamp,
                "_deleted": "BOOLEAN",
                "Count": "BIGINT",
                "Total": "DECIMAL(38,2)",
                "Ratio": "DOUBLE",
                "Active": "BOOLEAN",
                "At": timestamp,
                "Day": timestamp,
                "Name": "VARCHAR",
                "Lines": "VARCHAR",
                "Mixed": "VARCHAR",
                "Nothing": "VARCHAR",
            })
        );
        assert_eq!(
            answer["values"],
            serde_json::json!([
                [
                    "orders/1-A",
                    1_704_164_645_123_456i64,
                    "12.25",
                    1_704_164_645_123_456i64,
                    "[{\"Qty\":2}]"
                ],
                ["orders/2-A", 0, "7.00", null, null],
            ])
        );
    }
}
