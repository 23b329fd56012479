//! OLAP ETL's loader: a run's batches are appended to one Parquet file per (table,
//! partition) in the staging folder (a later batch whose types do not fit the file starts
//! the next part); at the run's end every file is finished and published under its final
//! name; the engine moves the progress only then. A run cut short leaves nothing readers
//! see: staged files are never under a final name, and a publish cut short is undone from
//! the names the engine stored before it (`Loader::undo_publish`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use corvid_store::Etag;

use crate::destination::{Delivered, Delivery, LoadError, Loader, Targets};
use crate::destinations::olap::encoder::{EncodeSettings, OlapBatch, Partition, table_folder};
use crate::destinations::olap::parquet::{FileOptions, OlapFileError, ParquetFileWriter};
use crate::destinations::olap::path::{NULL_PARTITION, escape_segment, partition_names};
use crate::destinations::olap::storage::OlapStorage;

/// Rows per row group at most.
const MAX_ROW_GROUP_ROWS: usize = 65_536;
/// Encoded bytes one file keeps in memory before its row group is written out.
const MAX_BUFFERED_BYTES: usize = 4 * 1024 * 1024;
/// Encoded bytes all the run's open files keep together: past it, the files holding the most
/// write their row groups out (so many partitions mean smaller row groups, not more memory).
const MAX_RUN_BUFFERED_BYTES: usize = 48 * 1024 * 1024;

/// How a process names its files: `{database}_{task}_{transformation}_{first etag}[_{part}]`,
/// the first etag being the run's lowest, so that runs never share a name.
#[derive(Debug, Clone)]
pub(crate) struct FileNames {
    prefix: String,
}

impl FileNames {
    pub fn new(database: &str, task: &str, transform: &str) -> FileNames {
        FileNames {
            prefix: format!(
                "{}_{}_{}",
                escape_segment(database),
                escape_segment(task),
                escape_segment(transform)
            ),
        }
    }

    /// The final name of part `part` of a (table, partition) file of the run starting at
    /// `first_etag`.
    pub fn key(&self, table: &str, partition: &str, first_etag: Etag, part: usize) -> String {
        let run = if part > 0 {
            format!("{first_etag:020}_{part}")
        } else {
            format!("{first_etag:020}")
        };
        self.key_of_run(table, partition, &run)
    }

    /// The name with `run` in place of the run's etag and part (the test endpoint shows
    /// `{run}`).
    pub fn key_of_run(&self, table: &str, partition: &str, run: &str) -> String {
        let mut key = table_folder(table);
        if !partition.is_empty() {
            key.push('/');
            key.push_str(partition);
        }
        format!("{key}/{}_{run}.parquet", self.prefix)
    }
}

/// A file being written.
struct OpenFile {
    writer: ParquetFileWriter,
    staged: PathBuf,
    key: String,
}

/// The files of the run under way.
#[derive(Default)]
struct RunFiles {
    open: HashMap<(String, String), (OpenFile, usize)>,
    /// Finished, waiting to be published: (staged file, final name).
    finished: Vec<(PathBuf, String)>,
    first_etag: Option<Etag>,
    n_staged: usize,
}

/// Publishes OLAP ETL's files.
pub(crate) struct OlapLoader {
    storage: Arc<OlapStorage>,
    names: FileNames,
    settings: Arc<EncodeSettings>,
    run: Arc<Mutex<RunFiles>>,
    checked: bool,
    /// Each table's partition names, from its rows (or its published files): where delete
    /// rows go.
    partition_names: HashMap<String, Vec<String>>,
    /// Sealed and not yet published.
    sealed: Vec<(PathBuf, String)>,
}

fn lock(run: &Mutex<RunFiles>) -> std::sync::MutexGuard<'_, RunFiles> {
    run.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A local file error while staging: a full disk or I/O trouble may pass; a folder the
/// server may not write is the configuration's.
fn staging_error(error: OlapFileError) -> LoadError {
    let message = format!("failed to write a Parquet file: {error}");
    match &error {
        OlapFileError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            LoadError::Configuration { message }
        }
        _ => LoadError::Reconnect { message },
    }
}

impl OlapLoader {
    pub fn new(
        storage: OlapStorage,
        names: FileNames,
        settings: Arc<EncodeSettings>,
    ) -> OlapLoader {
        OlapLoader {
            storage: Arc::new(storage),
            names,
            settings,
            run: Arc::default(),
            checked: false,
            partition_names: HashMap::new(),
            sealed: Vec::new(),
        }
    }

    /// The partition folder of a group's delete rows in `table`: its partition names, each
    /// with Hive's null value; the table's root when it has none.
    async fn deletes_partition(&mut self, table: &str) -> Result<String, LoadError> {
        if !self.partition_names.contains_key(table) {
            let prefix = format!("{}/", table_folder(table));
            let keys = self.storage.list(&prefix).await?;
            let names = keys
                .iter()
                .find(|it| it.ends_with(".parquet"))
                .map(|key| {
                    let inner = &key[prefix.len()..];
                    let folder = inner.rsplit_once('/').map_or("", |(folder, _)| folder);
                    partition_names(folder)
                })
                .unwrap_or_default();
            self.partition_names.insert(table.to_owned(), names);
        }
        let names = &self.partition_names[table];
        Ok(names
            .iter()
            .map(|it| format!("{it}={NULL_PARTITION}"))
            .collect::<Vec<_>>()
            .join("/"))
    }

    async fn write(&mut self, mut batch: OlapBatch) -> Result<Delivered, LoadError> {
        if !self.checked {
            self.storage.check().await?;
            self.checked = true;
        }
        // Where each group goes, decided here (delete rows may need a listing).
        let mut groups = Vec::with_capacity(batch.groups.len());
        for group in std::mem::take(&mut batch.groups) {
            let partition = match &group.partition {
                Partition::Path(path) => {
                    self.partition_names
                        .entry(group.table.clone())
                        .or_insert_with(|| partition_names(path));
                    path.clone()
                }
                Partition::Deletes => self.deletes_partition(&group.table).await?,
            };
            groups.push((group, partition));
        }
        let first_etag = batch.first_etag.unwrap_or_default();
        let run = self.run.clone();
        let names = self.names.clone();
        let settings = self.settings.clone();
        let staging = self.storage.staging_dir().to_path_buf();
        // Parquet encoding and file writes are CPU and disk work: off the runtime.
        let written = tokio::task::spawn_blocking(move || {
            let mut run = lock(&run);
            let first = *run.first_etag.get_or_insert(first_etag);
            for (group, partition) in groups {
                let key = (group.table.clone(), partition.clone());
                if !run.open.contains_key(&key) {
                    let file = new_file(&mut run, &names, &settings, &staging, &key, first, 0)?;
                    run.open.insert(key.clone(), (file, 0));
                }
                let (file, part) = run.open.get_mut(&key).expect("inserted above");
                match file.writer.write(&group.rows) {
                    Ok(()) => {}
                    Err(OlapFileError::SchemaMismatch { .. }) => {
                        // The rows' types differ from the file's: the file is finished as it
                        // is, and the rows start the next part.
                        let next_part = *part + 1;
                        let (done, _) = run.open.remove(&key).expect("present");
                        let finished = finish(done)?;
                        run.finished.push(finished);
                        let mut file = new_file(
                            &mut run, &names, &settings, &staging, &key, first, next_part,
                        )?;
                        file.writer.write(&group.rows).map_err(staging_error)?;
                        run.open.insert(key, (file, next_part));
                    }
                    Err(error) => return Err(staging_error(error)),
                }
            }
            bound_buffered(&mut run)
        })
        .await
        .map_err(|error| LoadError::Reconnect {
            message: format!("writing Parquet files stopped: {error}"),
        })?;
        written.map(|()| Delivered {
            buffered: true,
            ..Delivered::default()
        })
    }
}

fn new_file(
    run: &mut RunFiles,
    names: &FileNames,
    settings: &EncodeSettings,
    staging: &std::path::Path,
    (table, partition): &(String, String),
    first_etag: Etag,
    part: usize,
) -> Result<OpenFile, LoadError> {
    run.n_staged += 1;
    let staged = staging.join(format!("{:06}.parquet.tmp", run.n_staged));
    let options = FileOptions {
        id_column: settings.id_column(table).to_owned(),
        emit_deletes: settings.emit_deletes,
        max_row_group_rows: MAX_ROW_GROUP_ROWS,
        max_buffered_bytes: MAX_BUFFERED_BYTES,
    };
    let writer = ParquetFileWriter::create(&staged, options).map_err(staging_error)?;
    Ok(OpenFile {
        writer,
        staged,
        key: names.key(table, partition, first_etag, part),
    })
}

/// Writes out the row groups of the files holding the most until all of them together keep at
/// most [`MAX_RUN_BUFFERED_BYTES`].
fn bound_buffered(run: &mut RunFiles) -> Result<(), LoadError> {
    let mut sizes: Vec<(usize, (String, String))> = run
        .open
        .iter()
        .map(|(key, (file, _))| (file.writer.buffered_bytes(), key.clone()))
        .collect();
    let mut total: usize = sizes.iter().map(|it| it.0).sum();
    sizes.sort_unstable_by_key(|it| std::cmp::Reverse(it.0));
    for (size, key) in sizes {
        if total <= MAX_RUN_BUFFERED_BYTES {
            break;
        }
        if let Some((file, _)) = run.open.get_mut(&key) {
            file.writer.flush().map_err(staging_error)?;
        }
        total -= size;
    }
    Ok(())
}

fn finish(file: OpenFile) -> Result<(PathBuf, String), LoadError> {
    file.writer.finish().map_err(staging_error)?;
    Ok((file.staged, file.key))
}

impl Loader for OlapLoader {
    type Batch = OlapBatch;

    async fn start<'a>(
        &'a mut self,
        batch: &'a mut OlapBatch,
        _targets: Targets<'a>,
    ) -> (Delivery, usize) {
        let batch = std::mem::take(batch);
        let n_rows = batch.n_rows;
        (Delivery::Done(self.write(batch).await), n_rows)
    }

    async fn seal_run(&mut self) -> Result<Vec<String>, LoadError> {
        let run = self.run.clone();
        let sealed = tokio::task::spawn_blocking(move || {
            let mut run = lock(&run);
            let open: Vec<OpenFile> = run.open.drain().map(|(_, (file, _))| file).collect();
            for file in open {
                let finished = finish(file)?;
                run.finished.push(finished);
            }
            run.first_etag = None;
            Ok::<_, LoadError>(std::mem::take(&mut run.finished))
        })
        .await
        .map_err(|error| LoadError::Reconnect {
            message: format!("finishing Parquet files stopped: {error}"),
        })??;
        self.sealed.extend(sealed);
        Ok(self.sealed.iter().map(|(_, key)| key.clone()).collect())
    }

    async fn publish_run(&mut self) -> Result<(), LoadError> {
        for (staged, key) in &self.sealed {
            self.storage.publish(staged, key).await?;
        }
        if !self.sealed.is_empty() {
            tracing::info!(to = %self.storage.describe(), n_files = self.sealed.len(), "olap run published");
        }
        self.sealed.clear();
        Ok(())
    }

    async fn undo_publish<'a>(&'a mut self, names: &'a [String]) -> Result<(), LoadError> {
        for name in names {
            self.storage.delete(name).await?;
        }
        Ok(())
    }

    fn discard_run(&mut self) {
        let mut run = lock(&self.run);
        let open: Vec<OpenFile> = run.open.drain().map(|(_, (file, _))| file).collect();
        let mut staged: Vec<PathBuf> = open.into_iter().map(|it| it.staged).collect();
        staged.extend(run.finished.drain(..).map(|(path, _)| path));
        staged.extend(self.sealed.drain(..).map(|(path, _)| path));
        run.first_etag = None;
        for path in staged {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_per_run_and_part() {
        let names = FileNames::new("shop", "lake/task", "Script_1");
        assert_eq!(
            names.key("Orders", "year=2024", 17, 0),
            "Orders/year=2024/shop_lake%2Ftask_Script_1_00000000000000000017.parquet"
        );
        assert_eq!(
            names.key("Orders", "", 17, 2),
            "Orders/shop_lake%2Ftask_Script_1_00000000000000000017_2.parquet"
        );
    }
}
