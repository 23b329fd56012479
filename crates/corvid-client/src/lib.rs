//! A Rust client for the RavenDB HTTP protocol, used to talk to Corvid itself or to a real
//! RavenDB (4.1 and later): by Corvid's tests and benchmarks, and by the Raven ETL destination.
//!
//! A [`Client`] serves one database. It discovers the nodes that serve it with
//! `GET {url}/topology?name={db}` on the first request (falling back to the configured URLs when
//! no URL answers) and fetches the topology again when a response carries `Refresh-Topology`.
//! Each request starts at the preferred node and fails over to the next on connection errors,
//! timeouts and 408/410/425/502/503/504, trying every node at most once; the node that answers
//! becomes the preferred node. A 503 with `Database-Missing` is definitive
//! ([`ClientError::DatabaseDoesNotExist`]), never failed over.
//! Like the official clients, writes are failed over too: a `bulk_docs` that timed out on one
//! node may already have been applied there before another node applies it again.
//!
//! Operations:
//! - documents: [`Client::get`], [`Client::get_many`], [`Client::put`], [`Client::delete`];
//! - batches: [`Client::bulk_docs`] with [`Command`]s (multipart when attachments are uploaded)
//!   and [`Client::bulk_docs_raw`] for pre-serialized bodies;
//! - attachments: [`Client::get_attachment`], [`Client::put_attachment`],
//!   [`Client::delete_attachment`];
//! - server-level helpers: [`create_database`], [`delete_database`], and
//!   [`test_connection`] ("test connection" of a Raven connection string).
//!
//! HTTPS is rustls on the ring provider ([`ClientTls`]): servers are verified against the
//! system's roots plus any extra roots, and a client certificate ([`ClientIdentity`]) is
//! presented to servers that ask for one. A failed handshake (an untrusted certificate, say)
//! is failed over like a connection error, but reported as [`NodeFailureCause::Tls`], so a
//! caller can tell it from a node that is down ([`ClientError::is_tls_failure`]).
//!
//! Invariants:
//! - This crate is the only one in Corvid that speaks HTTP as a client; the RavenDB request and
//!   response JSON shapes it uses live here.
//! - It reads no env vars (the HTTP client ignores proxy variables) except, through
//!   `rustls-native-certs`, OpenSSL's `SSL_CERT_FILE`/`SSL_CERT_DIR` for the system's roots and never panics on a
//!   server's answer: unexpected shapes become [`ClientError::InvalidResponse`].
//! - Documents are `serde_json::Value`s with their `@metadata`; the client does not interpret
//!   them beyond `@metadata.@id` when matching multi-get results.
//!
//! ```no_run
//! # async fn demo() -> Result<(), corvid_client::ClientError> {
//! use corvid_client::{Client, ClientOptions};
//!
//! let urls = ["http://127.0.0.1:8080".to_owned()];
//! let client = Client::new(&urls, "shop", ClientOptions::default())?;
//! let doc = serde_json::json!({"Name": "Ann", "@metadata": {"@collection": "Users"}});
//! let put = client.put("users/1", &doc, None).await?;
//! let loaded = client.get("users/1").await?;
//! assert!(loaded.is_some());
//! client.delete("users/1", Some(&put.change_vector)).await?;
//! # Ok(())
//! # }
//! ```

mod admin;
mod attachments;
mod client;
mod commands;
mod documents;
mod encoding;
mod error;
mod executor;
mod failover;
mod options;
mod probe;
mod tls;
mod topology;

pub use crate::admin::{create_database, delete_database};
pub use crate::attachments::{Attachment, AttachmentDetails};
pub use crate::client::Client;
pub use crate::commands::{Command, RawDocument};
pub use crate::documents::PutResult;
pub use crate::error::{ClientError, NodeFailure, NodeFailureCause};
pub use crate::options::ClientOptions;
pub use crate::probe::{ConnectionTestError, UnreachableReason, test_connection};
pub use crate::tls::{ClientIdentity, ClientTls, TlsError, http_client_builder, pem_certificates};
pub use crate::topology::ServerNode;
