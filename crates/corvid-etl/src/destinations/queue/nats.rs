//! NATS JetStream through async-nats. Every message is published with `Nats-Msg-Id` = its
//! de-duplication id (the event id), and the publish returns once JetStream acknowledged
//! each (PubAck): a batch sent again after a crash is not stored twice within the stream's
//! duplicate window (2 minutes by default).
//!
//! Unless `SkipAutomaticQueueDeclaration`, a subject's stream is made sure of before its
//! first publish: the connection string's `Stream` (created for the subject, or the subject
//! added to it), or by default a stream per subject named after it (`.`, `*`, `>` replaced
//! by `_`).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use crate::destination::LoadError;
use crate::destinations::queue::config::redact_uri_password;
use crate::destinations::queue::message::QueueMessage;

/// The NATS binding's prefix of CloudEvents attributes in headers.
pub const NATS_ATTRIBUTE_PREFIX: &str = "ce-";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many publishes wait for their PubAck at once. async-nats holds a permit of
/// its context's semaphore (5,000 by default) per unawaited ack, and a publish waits for a
/// permit: a batch that sent more before awaiting any ack waited forever.
const MAX_ACKS_IN_FLIGHT: usize = 4096;

/// Publishes to one NATS server (or cluster).
pub(crate) struct NatsPublisher {
    servers: Vec<String>,
    stream: Option<String>,
    declare: bool,
    context: Option<jetstream::Context>,
    /// Subjects whose stream was made sure of on this connection.
    declared: HashSet<String>,
}

impl NatsPublisher {
    pub fn new(servers: Vec<String>, stream: Option<String>, declare: bool) -> NatsPublisher {
        NatsPublisher {
            servers,
            stream,
            declare,
            context: None,
            declared: HashSet::new(),
        }
    }

    fn servers_shown(&self) -> String {
        self.servers
            .iter()
            .map(|it| redact_uri_password(it))
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn context(&mut self) -> Result<jetstream::Context, LoadError> {
        if let Some(context) = &self.context {
            return Ok(context.clone());
        }
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .max_reconnects(Some(3));
        let client = match options.connect(self.servers.as_slice()).await {
            Ok(it) => it,
            Err(error) => {
                let message = format!("NATS at {}: {error}", self.servers_shown());
                return Err(match error.kind() {
                    async_nats::ConnectErrorKind::Authentication
                    | async_nats::ConnectErrorKind::AuthorizationViolation
                    | async_nats::ConnectErrorKind::ServerParse => {
                        LoadError::Configuration { message }
                    }
                    _ => LoadError::Reconnect { message },
                });
            }
        };
        let context = jetstream::ContextBuilder::new()
            .timeout(ACK_TIMEOUT)
            .build(client);
        self.context = Some(context.clone());
        Ok(context)
    }

    pub async fn publish(&mut self, messages: &[QueueMessage]) -> Result<(), LoadError> {
        let res = self.publish_acknowledged(messages).await;
        if matches!(res, Err(LoadError::Reconnect { .. })) {
            self.context = None;
            self.declared.clear();
        }
        res
    }

    async fn publish_acknowledged(&mut self, messages: &[QueueMessage]) -> Result<(), LoadError> {
        let context = self.context().await?;
        if self.declare {
            for message in messages {
                if self.declared.contains(&message.queue) {
                    continue;
                }
                self.ensure_stream(&context, &message.queue).await?;
                self.declared.insert(message.queue.clone());
            }
        }
        let mut acks = VecDeque::with_capacity(messages.len().min(MAX_ACKS_IN_FLIGHT));
        // The first message that failed, by position.
        let mut refused: Option<(usize, LoadError)> = None;
        for (idx, message) in messages.iter().enumerate() {
            if acks.len() >= MAX_ACKS_IN_FLIGHT
                && let Some((acked, ack)) = acks.pop_front()
                && let Err(error) = ack.await
            {
                refused = Some((acked, classify(&error, acked, &messages[acked])));
                break;
            }
            // `headers` replaces the header map: the message id goes in after it.
            let publish = PublishMessage::build()
                .headers(headers(message))
                .message_id(&message.deduplication_id)
                .payload(Bytes::copy_from_slice(message.body.as_bytes()));
            match context.send_publish(message.queue.clone(), publish).await {
                Ok(ack) => acks.push_back((idx, ack)),
                Err(error) => {
                    refused = Some((idx, classify(&error, idx, message)));
                    break;
                }
            }
        }
        // What was sent is acknowledged before a refusal is reported, so that the parts
        // sent again around the refused message find it stored (and JetStream drops the
        // duplicates).
        for (idx, ack) in acks {
            if let Err(error) = ack.await {
                if refused.as_ref().is_none_or(|it| idx < it.0) {
                    refused = Some((idx, classify(&error, idx, &messages[idx])));
                }
                // The rest may time out one after the other: not waited for.
                break;
            }
        }
        match refused {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    async fn ensure_stream(
        &self,
        context: &jetstream::Context,
        subject: &str,
    ) -> Result<(), LoadError> {
        let name = match &self.stream {
            Some(name) => name.clone(),
            None => stream_name_for(subject),
        };
        let failed = |error: &dyn std::fmt::Display| LoadError::Reconnect {
            message: format!(
                "NATS: failed to make sure stream `{name}` takes `{subject}`: {error}"
            ),
        };
        match context.get_stream(&name).await {
            Ok(mut stream) => {
                let info = stream.info().await.map_err(|error| failed(&error))?;
                if info.config.subjects.iter().any(|it| it == subject) {
                    return Ok(());
                }
                let mut config = info.config.clone();
                config.subjects.push(subject.to_owned());
                context
                    .update_stream(config)
                    .await
                    .map_err(|error| LoadError::Configuration {
                        message: format!(
                            "NATS: failed to add subject `{subject}` to stream `{name}`: {error}"
                        ),
                    })?;
                Ok(())
            }
            Err(_) => {
                let config = stream::Config {
                    name: name.clone(),
                    subjects: vec![subject.to_owned()],
                    ..stream::Config::default()
                };
                context
                    .get_or_create_stream(config)
                    .await
                    .map(drop)
                    .map_err(|error| match error.kind() {
                        async_nats::jetstream::context::CreateStreamErrorKind::TimedOut => {
                            failed(&error)
                        }
                        _ => LoadError::Configuration {
                            message: format!(
                                "NATS: failed to create stream `{name}` for `{subject}`: {error}"
                            ),
                        },
                    })
            }
        }
    }
}

/// The default stream of a subject: its name with the characters a stream name cannot
/// hold replaced by `_`.
pub(crate) fn stream_name_for(subject: &str) -> String {
    subject
        .chars()
        .map(|it| {
            if it.is_whitespace() || matches!(it, '.' | '*' | '>' | '/' | '\\') {
                '_'
            } else {
                it
            }
        })
        .collect()
}

/// CloudEvents binary mode for NATS: `ce-` headers, `Content-Type` for `datacontenttype`.
fn headers(message: &QueueMessage) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in message.event.attributes() {
        headers.insert(format!("{NATS_ATTRIBUTE_PREFIX}{name}").as_str(), value);
    }
    if let Some(content_type) = message.event.data_content_type {
        headers.insert("Content-Type", content_type);
    }
    headers
}

/// Classifies a failed JetStream publish of `messages[idx]`: too large is that message's;
/// no stream for the subject is configuration; the rest (timeouts, a broken connection)
/// transient.
fn classify(
    error: &async_nats::jetstream::context::PublishError,
    idx: usize,
    message: &QueueMessage,
) -> LoadError {
    let text = format!("NATS (subject `{}`): {error}", message.queue);
    match error.kind() {
        PublishErrorKind::MaxPayloadExceeded => LoadError::BadItem {
            document_id: Some(idx.to_string()),
            message: text,
        },
        PublishErrorKind::StreamNotFound => LoadError::Configuration {
            message: format!("{text} (no JetStream stream takes this subject)"),
        },
        _ => LoadError::Reconnect { message: text },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_streams_are_named_after_their_subject() {
        assert_eq!(stream_name_for("orders.created"), "orders_created");
        assert_eq!(stream_name_for("Orders"), "Orders");
    }
}
