//! NATS JetStream through async-nats. Every message is published with `Nats-Msg-Id` = its
//! de-duplication id (the event id), and the publish returns once JetStream acknowledged
//! each (PubAck): a batch sent again after a crash is not stored twice within the stream's
//! duplicate window (2 minutes by default).
//!
//! Unless `SkipAutomaticQueueDeclaration`, a subject's stream is made sure of before its
//! first publish: the connection string's `Stream` (created for the subject, or the subject
//! added to it), or by default a stream per subject named after it (`.`, `*`, `>` replaced
//! by `_`).
//!
//! Credentials go in the server URLs (`nats://user:password@host:4222`, or a token as
//! `nats://token@host:4222`). async-nats (0.52) parses them but does not send them, so the
//! first URL's that has some are handed to it as the connection's credentials.

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
        let options = match url_credentials(&self.servers) {
            Some(Credentials::UserPassword(user, password)) => {
                options.user_and_password(user, password)
            }
            Some(Credentials::Token(token)) => options.token(token),
            None => options,
        };
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

#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    UserPassword(String, String),
    Token(String),
}

/// The credentials of the first server URL that has some, percent-decoded.
fn url_credentials(servers: &[String]) -> Option<Credentials> {
    servers
        .iter()
        .filter_map(|it| it.parse::<async_nats::ServerAddr>().ok())
        .find_map(|addr| {
            let user = percent_decode(addr.username()?);
            Some(match addr.password() {
                Some(password) => Credentials::UserPassword(user, percent_decode(password)),
                None => Credentials::Token(user),
            })
        })
}

/// `%XX` escapes decoded (a URL's user info); anything else, malformed escapes included,
/// kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let escaped = (bytes[idx] == b'%')
            .then(|| text.get(idx + 1..idx + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                idx += 3;
            }
            None => {
                out.push(bytes[idx]);
                idx += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

    #[test]
    fn credentials_are_taken_from_the_first_url_that_has_some() {
        let servers = |list: &[&str]| list.iter().map(|it| it.to_string()).collect::<Vec<_>>();
        assert_eq!(
            url_credentials(&servers(&[
                "nats://a:4222",
                "nats://corvid:p%40ss%3A1@b:4222"
            ])),
            Some(Credentials::UserPassword(
                "corvid".to_owned(),
                "p@ss:1".to_owned()
            ))
        );
        assert_eq!(
            url_credentials(&servers(&["nats://s3cr3t@a:4222"])),
            Some(Credentials::Token("s3cr3t".to_owned()))
        );
        assert_eq!(url_credentials(&servers(&["nats://a:4222"])), None);
        assert_eq!(percent_decode("100%"), "100%");
    }
}
