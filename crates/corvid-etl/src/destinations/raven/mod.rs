//! Raven ETL: loads into a database of a RavenDB-protocol server (Corvid or RavenDB) through
//! `bulk_docs`; one batch is one request and one destination transaction.

pub mod commands;
