//! Raven ETL: loads into a database of a RavenDB-protocol server (Corvid or RavenDB) through
//! `bulk_docs`; one batch is one request and one destination transaction.

pub mod commands;
pub(crate) mod config;
pub(crate) mod encoder;
pub(crate) mod loader;

pub use config::RavenDestination;
pub use encoder::{PrefixDelete, RavenLoad};
