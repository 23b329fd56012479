//! OLAP ETL (spec §4.1): on a schedule (`RunFrequency`, `schedule.rs`), each run writes the
//! rows the script loads (`loadTo<Table>(partitionBy(…) | noPartition(), obj)`,
//! `encoder.rs`) to one Parquet file per (table, partition) (`parquet.rs`, its column types
//! in `columns.rs`), staged and then published atomically under a name of the run
//! (`loader.rs`, `path.rs`) to a local folder or an S3 bucket (`storage.rs`, `s3.rs`).
//! Beyond RavenDB: `EmitDeletes` writes a row with `_deleted = true` for a deleted document,
//! and a run cut short is undone before it is done again, so no row is ever published twice.

pub(crate) mod columns;
pub(crate) mod config;
pub(crate) mod encoder;
pub(crate) mod loader;
pub(crate) mod parquet;
pub(crate) mod path;
pub(crate) mod s3;
pub(crate) mod schedule;
pub(crate) mod storage;

pub use config::{OlapDestination, OlapTarget};
pub use s3::S3Target;
