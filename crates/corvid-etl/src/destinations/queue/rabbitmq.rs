//! RabbitMQ through lapin (AMQP 0-9-1). One channel in confirm mode per publish: every
//! message is published `mandatory` and the publish returns once the broker confirmed each,
//! so progress never moves past a message the broker did not take. RavenDB uses AMQP
//! transactions (`TxSelect`/`TxCommit`) per exchange; confirms give the same guarantee
//! (the broker has taken every message) without a transaction's cost, and a consumer may see
//! the first messages of a batch before the last are confirmed.
//!
//! Unless `SkipAutomaticQueueDeclaration`, an exchange is declared before its first publish
//! as RavenDB does: a durable fanout exchange and a durable queue of the same name bound to
//! it; for the default exchange (`loadTo('', obj, 'key')`), a durable queue named after the
//! routing key.

use std::collections::HashSet;
use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties, ErrorKind};

use crate::destination::LoadError;
use crate::destinations::queue::config::redact_uri_password;
use crate::destinations::queue::message::QueueMessage;

/// The AMQP binding's prefix of CloudEvents attributes in application properties.
pub const AMQP_ATTRIBUTE_PREFIX: &str = "cloudEvents:";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Publishes to one RabbitMQ broker.
pub(crate) struct RabbitMqPublisher {
    uri: String,
    declare: bool,
    connection: Option<Connection>,
    /// Exchanges (or default-exchange queues) declared on this connection.
    declared: HashSet<(String, String)>,
}

impl RabbitMqPublisher {
    pub fn new(uri: String, declare: bool) -> RabbitMqPublisher {
        RabbitMqPublisher {
            uri,
            declare,
            connection: None,
            declared: HashSet::new(),
        }
    }

    pub async fn publish(&mut self, messages: &[QueueMessage]) -> Result<(), LoadError> {
        let res =
            match tokio::time::timeout(PUBLISH_TIMEOUT, self.publish_confirmed(messages)).await {
                Ok(res) => res,
                Err(_) => Err(LoadError::Reconnect {
                    message: format!(
                        "RabbitMQ did not confirm the messages within {} s",
                        PUBLISH_TIMEOUT.as_secs()
                    ),
                }),
            };
        if matches!(
            res,
            Err(LoadError::Reconnect { .. } | LoadError::Configuration { .. })
        ) {
            // Start again from a fresh connection, declarations included.
            if let Some(connection) = self.connection.take() {
                let _ = connection.close(200, "corvid: reconnecting".into()).await;
            }
            self.declared.clear();
        }
        res
    }

    async fn connection(&mut self) -> Result<&Connection, LoadError> {
        if self
            .connection
            .as_ref()
            .is_some_and(|it| !it.status().connected())
        {
            self.connection = None;
            self.declared.clear();
        }
        if self.connection.is_none() {
            let connect = Connection::connect(&self.uri, ConnectionProperties::default());
            let connection = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(Ok(it)) => it,
                Ok(Err(error)) => return Err(self.classify(&error, "connect")),
                Err(_) => {
                    return Err(LoadError::Reconnect {
                        message: format!(
                            "connecting to RabbitMQ at {} timed out",
                            redact_uri_password(&self.uri)
                        ),
                    });
                }
            };
            self.connection = Some(connection);
        }
        self.connection
            .as_ref()
            .ok_or_else(|| LoadError::Reconnect {
                message: "no RabbitMQ connection".to_owned(),
            })
    }

    async fn publish_confirmed(&mut self, messages: &[QueueMessage]) -> Result<(), LoadError> {
        let channel = {
            let connection = self.connection().await?;
            connection.create_channel().await
        };
        let channel = channel.map_err(|error| self.classify(&error, "open a channel"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|error| self.classify(&error, "select confirms"))?;
        if self.declare {
            for message in messages {
                let key = declaration_key(message);
                if self.declared.contains(&key) {
                    continue;
                }
                declare(&channel, &key.0, &key.1)
                    .await
                    .map_err(|error| self.classify(&error, "declare"))?;
                self.declared.insert(key);
            }
        }
        let mut confirms = Vec::with_capacity(messages.len());
        for (idx, message) in messages.iter().enumerate() {
            let confirm = channel
                .basic_publish(
                    message.queue.as_str().into(),
                    message.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    message.body.as_bytes(),
                    properties(message),
                )
                .await
                .map_err(|error| self.classify_publish(&error, idx))?;
            confirms.push(confirm);
        }
        for (idx, confirm) in confirms.into_iter().enumerate() {
            let confirmation = confirm
                .await
                .map_err(|error| self.classify_publish(&error, idx))?;
            let message = &messages[idx];
            match confirmation {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(_)) => {
                    return Err(LoadError::Configuration {
                        message: format!(
                            "RabbitMQ returned the message to exchange `{}` with routing key `{}`: no queue is bound to take it",
                            message.queue, message.routing_key
                        ),
                    });
                }
                Confirmation::Nack(_) => {
                    return Err(LoadError::Reconnect {
                        message: format!(
                            "RabbitMQ did not take the message to exchange `{}` (nack)",
                            message.queue
                        ),
                    });
                }
                Confirmation::NotRequested => {
                    return Err(LoadError::Reconnect {
                        message: "RabbitMQ did not confirm the messages".to_owned(),
                    });
                }
            }
        }
        let _ = channel.close(200, "corvid: published".into()).await;
        Ok(())
    }

    fn classify(&self, error: &lapin::Error, doing: &str) -> LoadError {
        classify(
            error,
            &format!("RabbitMQ at {} ({doing})", redact_uri_password(&self.uri)),
            None,
        )
    }

    fn classify_publish(&self, error: &lapin::Error, idx: usize) -> LoadError {
        classify(error, "RabbitMQ (publish)", Some(idx))
    }
}

/// What is declared for a message: the exchange and the queue.
fn declaration_key(message: &QueueMessage) -> (String, String) {
    if message.queue.is_empty() {
        (String::new(), message.routing_key.clone())
    } else {
        (message.queue.clone(), message.queue.clone())
    }
}

async fn declare(channel: &lapin::Channel, exchange: &str, queue: &str) -> lapin::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    if !exchange.is_empty() {
        channel
            .exchange_declare(
                exchange.into(),
                lapin::ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
    }
    if queue.is_empty() {
        return Ok(());
    }
    channel
        .queue_declare(queue.into(), durable, FieldTable::default())
        .await?;
    if !exchange.is_empty() {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// The message's properties: CloudEvents binary mode (attributes in the headers table,
/// `datacontenttype` as `content-type`), persistent delivery, the event id as message id.
fn properties(message: &QueueMessage) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (name, value) in message.event.attributes() {
        headers.insert(
            format!("{AMQP_ATTRIBUTE_PREFIX}{name}").into(),
            AMQPValue::LongString(LongString::from(value.as_bytes().to_vec())),
        );
    }
    let mut properties = BasicProperties::default()
        .with_headers(headers)
        .with_delivery_mode(2)
        .with_message_id(message.event.id.as_str().into());
    if let Some(content_type) = message.event.data_content_type {
        properties = properties.with_content_type(content_type.into());
    }
    properties
}

/// Classifies a lapin failure: the broker's reply code says what it is about; an I/O
/// failure is a reconnect. `message_idx`: the message being published, if any.
fn classify(error: &lapin::Error, context: &str, message_idx: Option<usize>) -> LoadError {
    let message = format!("{context}: {error}");
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => {
            let text = amqp.get_message().as_str();
            match reply_class(amqp.get_id(), text) {
                ReplyClass::Item => LoadError::BadItem {
                    document_id: message_idx.map(|it| it.to_string()),
                    message,
                },
                ReplyClass::Configuration => LoadError::Configuration { message },
                ReplyClass::Transient => LoadError::Reconnect { message },
            }
        }
        ErrorKind::AuthProviderError(_) => LoadError::Configuration { message },
        _ => LoadError::Reconnect { message },
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ReplyClass {
    Item,
    Configuration,
    Transient,
}

/// What an AMQP reply code is about: 311 content too large and RabbitMQ's 406 "message size
/// … larger than configured max size" are the message's; 403 access refused, 404 a missing
/// exchange or queue, 312 no route, 406 otherwise (an exchange declared with other
/// settings), 530 (no access to the vhost) are configuration; the rest (320 connection
/// forced, 541 internal error…) transient.
fn reply_class(code: u16, text: &str) -> ReplyClass {
    match code {
        311 => ReplyClass::Item,
        406 if text.contains("max size") || text.contains("message size") => ReplyClass::Item,
        312 | 403 | 404 | 406 | 530 => ReplyClass::Configuration,
        _ => ReplyClass::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes_are_classified() {
        assert_eq!(
            reply_class(
                406,
                "PRECONDITION_FAILED - message size 200 is larger than configured max size 100"
            ),
            ReplyClass::Item
        );
        assert_eq!(reply_class(311, ""), ReplyClass::Item);
        assert_eq!(
            reply_class(404, "NOT_FOUND - no exchange 'x' in vhost '/'"),
            ReplyClass::Configuration
        );
        assert_eq!(
            reply_class(406, "PRECONDITION_FAILED - inequivalent arg 'type'"),
            ReplyClass::Configuration
        );
        assert_eq!(
            reply_class(403, "ACCESS_REFUSED"),
            ReplyClass::Configuration
        );
        assert_eq!(reply_class(320, "CONNECTION_FORCED"), ReplyClass::Transient);
    }
}
