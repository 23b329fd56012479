//! SQL ETL: loads rows into PostgreSQL, MySQL/MariaDB or a SQLite file (spec §3).
//!
//! The encoder (`encoder.rs`) turns each source item into [`SqlBatch`] entries (`rows.rs`):
//! the ids whose rows are replaced, and the rows the script produced, values already mapped
//! to [`SqlValue`]. A writer (`postgres.rs`, `mysql.rs`, `sqlite.rs`) applies one batch in
//! **one database transaction** with bulk statements, and can also describe the statements it
//! would run ([`Statement`]), which is what `/admin/etl/sql/test` shows. The loader
//! (`loader.rs`) leaves out a document whose rows the database refuses.
//!
//! Order inside the transaction: the deletes of every table, in reverse `SqlTables` order
//! (children before parents), then the inserts, in `SqlTables` order (parents before children).
//! The final tables equal those of RavenDB's statement-by-statement algorithm.

pub mod batch;
pub(crate) mod config;
pub mod connection;
pub(crate) mod encoder;
pub mod identifier;
pub(crate) mod loader;
pub mod mysql;
pub mod postgres;
pub mod rows;
pub mod sqlite;
mod tls;
pub mod writer;

pub use batch::{
    DEFAULT_COMMAND_TIMEOUT, SqlBatch, SqlLoadError, SqlRow, SqlSettings, SqlValue, Statement,
    StatementFault, TableBatch, quote_identifier, quote_table, render_value,
};
pub use config::SqlDestination;
pub use connection::{SqlProvider, SqlTarget, TlsMode};
pub use writer::SqlWriter;
