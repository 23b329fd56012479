//! Queue ETL: publishes documents as CloudEvents to a message broker (spec §4.2): RabbitMQ
//! (`rabbitmq.rs`, publisher confirms), NATS JetStream (`nats.rs`, Corvid's addition,
//! de-duplicated by message id), Amazon SQS (`sqs.rs`, structured-mode CloudEvents by
//! `SendMessageBatch`, signed by `sigv4.rs`, settings checked by `sqs_settings.rs`; FIFO
//! queues de-duplicated by event id) and Azure Queue Storage (`azure.rs`, structured
//! CloudEvents over the REST API, Shared Key signed by `azure_account.rs`). Kafka is refused
//! when a task is saved ("not supported yet").
//!
//! The encoder (`encoder.rs`) turns each `loadTo<Queue>(obj, attributes)` call into a
//! [`QueueMessage`] (`message.rs`): the object's JSON as the body and the CloudEvents
//! attributes, the script's over the defaults. A deleted document sends nothing unless a
//! queue asks for deletes (`SendDeletes`) or a behaviour function lets it through; then a
//! `ravendb.etl.delete` event without data. The loader (`loader.rs`) publishes a batch and
//! returns only once the broker acknowledged every message; then it deletes the source
//! documents of queues with `DeleteProcessedDocuments` that did not change since they were
//! read.

mod azure;
pub mod azure_account;
pub(crate) mod config;
pub(crate) mod encoder;
pub(crate) mod loader;
pub mod message;
mod nats;
mod rabbitmq;
pub mod sigv4;
pub(crate) mod sqs;
mod sqs_settings;

pub use azure_account::AzureAccount;
pub(crate) use config::restore_secret;
pub use config::{QueueBroker, QueueDestination, redact_uri_password};
pub use message::{CloudEvent, QueueMessage};
pub use sqs_settings::{SqsEndpoint, SqsSettings};

/// The text of the first `<name>…</name>` of an XML answer (the error bodies of the brokers
/// spoken to over HTTP: SQS's query protocol, Azure).
pub(crate) fn xml_element(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + body[start..].find(&format!("</{name}>"))?;
    Some(body[start..end].trim().to_owned())
}
