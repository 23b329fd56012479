//! Amazon SQS through its JSON protocol (`X-Amz-Target: AmazonSQS.…`, signed with AWS
//! Signature V4, `sigv4.rs`) over a reqwest client made by corvid-client. Each message is
//! one CloudEvents JSON document (structured mode: SQS has no headers that could carry the
//! attributes the way AMQP's do), sent by `SendMessageBatch` in batches of at most 10
//! entries and at most the queue's `MaximumMessageSize` bytes; the publish returns once SQS
//! answered every entry as stored.
//!
//! Before anything of a batch is sent, each queue is looked up (`GetQueueUrl`, its
//! `MaximumMessageSize` by `GetQueueAttributes`) and, unless `SkipAutomaticQueueDeclaration`,
//! created when missing (`CreateQueue`; a name ending in `.fifo` makes a FIFO queue), and
//! each message is measured: one larger than its queue takes is refused on its own, before
//! the others are sent. Queue names are lower-cased, as RavenDB does.
//!
//! FIFO queues get `MessageGroupId` = the event's partition key (the document id: one
//! document's versions stay in order, different documents do not wait for each other;
//! RavenDB uses the event type, which serialises everything) and `MessageDeduplicationId` =
//! the event id (the change vector): a batch sent again after a crash is not delivered twice
//! within SQS's 5-minute de-duplication window. A standard queue may deliver it twice.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::destination::LoadError;
use crate::destinations::queue::message::QueueMessage;
use crate::destinations::queue::sigv4::{self, Credentials};
use crate::destinations::queue::sqs_settings::{
    SqsEndpoint, SqsSettings, aws_endpoint, parse_endpoint,
};
use crate::destinations::queue::xml_element;

/// What SQS took at most per message before 2025 (256 KiB), and what a queue that does not
/// say is taken to hold.
pub(crate) const DEFAULT_MAX_MESSAGE_BYTES: usize = 262_144;
/// `SendMessageBatch` takes at most 10 entries.
const MAX_BATCH_ENTRIES: usize = 10;
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// AWS asks to wait a second after creating a queue before using it (RavenDB does).
const AFTER_CREATE_WAIT: Duration = Duration::from_secs(1);
/// The longest `MessageGroupId` and `MessageDeduplicationId`.
const MAX_FIFO_ID_CHARS: usize = 128;

/// A queue as looked up.
#[derive(Debug, Clone)]
struct SqsQueue {
    url: String,
    max_message_bytes: usize,
    fifo: bool,
}

/// A failed SQS call.
#[derive(Debug)]
enum CallError {
    /// No answer: refused, reset, timed out.
    Transport(String),
    /// SQS answered with an error.
    Service {
        status: u16,
        code: String,
        message: String,
    },
}

/// Publishes to the queues of one SQS endpoint.
pub(crate) struct SqsPublisher {
    settings: SqsSettings,
    /// `Err`: why there is no endpoint (`UseEmulator` without the server's URL).
    endpoint: Result<reqwest::Url, String>,
    client: reqwest::Client,
    declare: bool,
    /// Queues looked up (and made sure of) since the last failure.
    queues: HashMap<String, SqsQueue>,
}

impl SqsPublisher {
    pub fn new(
        settings: SqsSettings,
        declare: bool,
        emulator_url: Option<&str>,
    ) -> Result<SqsPublisher, LoadError> {
        let endpoint = match &settings.endpoint {
            SqsEndpoint::Aws => parse_endpoint(&aws_endpoint(&settings.region)),
            SqsEndpoint::ServiceUrl(url) => parse_endpoint(url),
            SqsEndpoint::Emulator => match emulator_url {
                Some(url) => parse_endpoint(url).map_err(|reason| {
                    format!("RAVEN_AMAZON_SQS_EMULATOR_URL: {reason}")
                }),
                None => Err("the connection string asks for the SQS emulator (`UseEmulator`) but the server has no RAVEN_AMAZON_SQS_EMULATOR_URL".to_owned()),
            },
        };
        let client = corvid_client::http_client_builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|error| LoadError::Configuration {
                message: format!("failed to make an HTTP client for SQS: {error}"),
            })?;
        Ok(SqsPublisher {
            settings,
            endpoint,
            client,
            declare,
            queues: HashMap::new(),
        })
    }

    pub async fn publish(&mut self, messages: &[QueueMessage]) -> Result<(), LoadError> {
        let res = self.publish_acknowledged(messages).await;
        if matches!(
            res,
            Err(LoadError::Reconnect { .. } | LoadError::Configuration { .. })
        ) {
            // A queue may have been deleted or changed: look each up again.
            self.queues.clear();
        }
        res
    }

    async fn publish_acknowledged(&mut self, messages: &[QueueMessage]) -> Result<(), LoadError> {
        // Every queue and every message's size first: nothing is sent before a message that
        // would be refused, so leaving that one out sends nothing twice.
        let mut bodies = Vec::with_capacity(messages.len());
        let mut queue_names: Vec<&str> = Vec::new();
        for (idx, message) in messages.iter().enumerate() {
            let queue = self.queue(&message.queue).await?;
            let body = message.structured_json();
            if body.len() > queue.max_message_bytes {
                return Err(LoadError::BadItem {
                    document_id: Some(idx.to_string()),
                    message: format!(
                        "the message is {} bytes, more than SQS queue `{}` takes ({} bytes)",
                        body.len(),
                        message.queue,
                        queue.max_message_bytes
                    ),
                });
            }
            bodies.push(body);
            if !queue_names.contains(&message.queue.as_str()) {
                queue_names.push(&message.queue);
            }
        }
        for name in queue_names {
            let Some(queue) = self.queues.get(name).cloned() else {
                continue;
            };
            let mut entries: Vec<usize> = Vec::new();
            let mut entries_bytes = 0;
            for idx in (0..messages.len()).filter(|it| messages[*it].queue == name) {
                let n_bytes = bodies[idx].len();
                if entries.len() == MAX_BATCH_ENTRIES
                    || (!entries.is_empty() && entries_bytes + n_bytes > queue.max_message_bytes)
                {
                    self.send_batch(&queue, messages, &bodies, &entries).await?;
                    entries.clear();
                    entries_bytes = 0;
                }
                entries.push(idx);
                entries_bytes += n_bytes;
            }
            if !entries.is_empty() {
                self.send_batch(&queue, messages, &bodies, &entries).await?;
            }
        }
        Ok(())
    }

    /// Sends `messages[idx]` for each of `entries` to `queue` as one `SendMessageBatch`.
    async fn send_batch(
        &self,
        queue: &SqsQueue,
        messages: &[QueueMessage],
        bodies: &[String],
        entries: &[usize],
    ) -> Result<(), LoadError> {
        let entries_json: Vec<Value> = entries
            .iter()
            .map(|&idx| {
                let message = &messages[idx];
                let mut entry = json!({"Id": idx.to_string(), "MessageBody": bodies[idx]});
                if queue.fifo {
                    entry["MessageGroupId"] = json!(fifo_id(&message.event.partition_key));
                    entry["MessageDeduplicationId"] = json!(fifo_id(&message.deduplication_id));
                }
                entry
            })
            .collect();
        let answer = self
            .call(
                "SendMessageBatch",
                &json!({"QueueUrl": queue.url, "Entries": entries_json}),
            )
            .await
            .map_err(|error| match &error {
                // The endpoint takes less per batch than the queue says per message: a
                // refusal naming no message, so the part is split in halves and sent again.
                CallError::Service { code, message, .. } if code == "BatchRequestTooLong" => {
                    LoadError::BadItem {
                        document_id: None,
                        message: format!("SQS SendMessageBatch: {code}: {message}"),
                    }
                }
                _ => classify_call("SendMessageBatch", &error),
            })?;
        let failed = answer
            .get("Failed")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(error) = classify_failed_entries(failed) {
            return Err(error);
        }
        let n_successful = answer
            .get("Successful")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if n_successful != entries.len() {
            return Err(LoadError::Reconnect {
                message: format!(
                    "SQS acknowledged {n_successful} of {} messages to `{}`",
                    entries.len(),
                    queue.url
                ),
            });
        }
        Ok(())
    }

    /// Looks a queue up (creating it unless declaration is skipped), once per connection.
    async fn queue(&mut self, name: &str) -> Result<SqsQueue, LoadError> {
        if let Some(queue) = self.queues.get(name) {
            return Ok(queue.clone());
        }
        let fifo = name.ends_with(".fifo");
        let url = match self.call("GetQueueUrl", &json!({"QueueName": name})).await {
            Ok(answer) => queue_url(&answer)?,
            Err(CallError::Service { code, .. }) if is_missing_queue(&code) => {
                if !self.declare {
                    return Err(LoadError::Configuration {
                        message: format!(
                            "SQS queue `{name}` does not exist at {}, and the task does not create queues (`SkipAutomaticQueueDeclaration`)",
                            self.settings.address()
                        ),
                    });
                }
                let mut request = json!({"QueueName": name});
                if fifo {
                    request["Attributes"] = json!({"FifoQueue": "true"});
                }
                let answer = self
                    .call("CreateQueue", &request)
                    .await
                    .map_err(|error| classify_call("CreateQueue", &error))?;
                tokio::time::sleep(AFTER_CREATE_WAIT).await;
                queue_url(&answer)?
            }
            Err(error) => return Err(classify_call("GetQueueUrl", &error)),
        };
        let attributes = self
            .call(
                "GetQueueAttributes",
                &json!({"QueueUrl": url, "AttributeNames": ["MaximumMessageSize"]}),
            )
            .await
            .map_err(|error| classify_call("GetQueueAttributes", &error))?;
        let max_message_bytes = attributes
            .pointer("/Attributes/MaximumMessageSize")
            .and_then(|it| match it {
                Value::String(text) => text.parse().ok(),
                other => other.as_u64().and_then(|it| usize::try_from(it).ok()),
            })
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        let queue = SqsQueue {
            url,
            max_message_bytes,
            fifo,
        };
        self.queues.insert(name.to_owned(), queue.clone());
        Ok(queue)
    }

    /// One signed call of the JSON protocol.
    async fn call(&self, action: &str, request: &Value) -> Result<Value, CallError> {
        let endpoint = self
            .endpoint
            .as_ref()
            .map_err(|reason| CallError::Service {
                status: 0,
                code: "NoEndpoint".to_owned(),
                message: reason.clone(),
            })?;
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => String::new(),
        };
        let body = request.to_string().into_bytes();
        let target = format!("AmazonSQS.{action}");
        let credentials = Credentials {
            access_key: &self.settings.access_key,
            secret_key: &self.settings.secret_key,
            region: &self.settings.region,
            service: "sqs",
        };
        let signed = sigv4::sign_post(
            credentials,
            &host,
            endpoint.path(),
            CONTENT_TYPE,
            &target,
            &body,
            SystemTime::now(),
        );
        let sent = self
            .client
            .post(endpoint.clone())
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", &target)
            .header("x-amz-date", &signed.amz_date)
            .header("authorization", &signed.authorization)
            .body(body)
            .send()
            .await;
        let response = sent.map_err(|error| {
            CallError::Transport(format!("SQS at {} ({action}): {error}", endpoint.as_str()))
        })?;
        let status = response.status().as_u16();
        let query_error = response
            .headers()
            .get("x-amzn-query-error")
            .and_then(|it| it.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.map_err(|error| {
            CallError::Transport(format!("SQS at {} ({action}): {error}", endpoint.as_str()))
        })?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        Err(service_error(
            status,
            query_error.as_deref(),
            &answer,
            &text,
        ))
    }
}

/// The error of a non-2xx answer: its code from `__type` (`com.amazonaws.sqs#Code`) or the
/// `x-amzn-query-error` header (`AWS.SimpleQueueService.NonExistentQueue;Sender`).
fn service_error(status: u16, query_error: Option<&str>, answer: &Value, text: &str) -> CallError {
    let from_type = answer
        .get("__type")
        .and_then(Value::as_str)
        .map(|it| it.rsplit('#').next().unwrap_or(it).to_owned());
    let from_header = query_error.and_then(|it| it.split(';').next().map(str::to_owned));
    // Some answers (moto's, and AWS's to a bad signature) are XML: `<Code>`, `<Message>`.
    let code = from_type
        .or(from_header)
        .or_else(|| xml_element(text, "Code"))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = answer
        .get("message")
        .or_else(|| answer.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| xml_element(text, "Message"))
        .unwrap_or_else(|| text.chars().take(300).collect());
    CallError::Service {
        status,
        code,
        message,
    }
}

fn queue_url(answer: &Value) -> Result<String, LoadError> {
    match answer.get("QueueUrl").and_then(Value::as_str) {
        Some(url) => Ok(url.to_owned()),
        None => Err(LoadError::Reconnect {
            message: format!("SQS answered without a `QueueUrl`: {answer}"),
        }),
    }
}

fn is_missing_queue(code: &str) -> bool {
    matches!(
        code,
        "QueueDoesNotExist" | "AWS.SimpleQueueService.NonExistentQueue" | "NonExistentQueue"
    )
}

/// What an SQS error is about.
#[derive(Debug, PartialEq, Eq)]
enum ErrorClass {
    /// The task cannot go on until its connection string or the queues change.
    Configuration,
    /// Try again later: throttling, SQS's own failures, no answer.
    Transient,
}

/// Classifies an SQS error code: credentials, permissions, a missing or misnamed queue, a
/// queue of other attributes are configuration; throttling, a queue deleted less than 60 s
/// ago, 5xx and the rest transient.
fn error_class(status: u16, code: &str) -> ErrorClass {
    match code {
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "UnrecognizedClientException"
        | "InvalidSecurity"
        | "AccessDenied"
        | "AccessDeniedException"
        | "AuthorizationError"
        | "OptInRequired"
        | "InvalidAddress"
        | "InvalidParameterValue"
        | "InvalidAttributeName"
        | "InvalidAttributeValue"
        | "QueueAlreadyExists"
        | "QueueNameExists"
        | "NoEndpoint"
        | "KmsAccessDenied"
        | "KmsDisabled"
        | "KmsNotFound"
        | "KmsInvalidState"
        | "KmsInvalidKeyUsage" => ErrorClass::Configuration,
        _ if is_missing_queue(code) => ErrorClass::Configuration,
        "RequestThrottled" | "ThrottlingException" | "QueueDeletedRecently" | "KmsThrottled" => {
            ErrorClass::Transient
        }
        _ if status == 401 || status == 403 => ErrorClass::Configuration,
        _ => ErrorClass::Transient,
    }
}

/// Classifies a failed call as a [`LoadError`].
fn classify_call(action: &str, error: &CallError) -> LoadError {
    match error {
        CallError::Transport(message) => LoadError::Reconnect {
            message: message.clone(),
        },
        CallError::Service {
            status,
            code,
            message,
        } => {
            let message = format!("SQS {action}: {code}: {message}");
            match error_class(*status, code) {
                ErrorClass::Configuration => LoadError::Configuration { message },
                ErrorClass::Transient => LoadError::Reconnect { message },
            }
        }
    }
}

/// The error of a `SendMessageBatch` whose answer lists failed entries: the first entry
/// refused for itself (`SenderFault`) is a bad item, named by its position (the entry id);
/// entries that failed on SQS's side are retried. `None` when none failed.
fn classify_failed_entries(failed: &[Value]) -> Option<LoadError> {
    let first = failed.first()?;
    let describe = |entry: &Value| {
        format!(
            "SQS refused the message: {}: {}",
            entry.get("Code").and_then(Value::as_str).unwrap_or("?"),
            entry.get("Message").and_then(Value::as_str).unwrap_or("")
        )
    };
    let sender_fault = failed
        .iter()
        .find(|it| it.get("SenderFault").and_then(Value::as_bool) == Some(true));
    Some(match sender_fault {
        Some(entry) => LoadError::BadItem {
            document_id: entry.get("Id").and_then(Value::as_str).map(str::to_owned),
            message: describe(entry),
        },
        None => LoadError::Reconnect {
            message: describe(first),
        },
    })
}

/// A `MessageGroupId` or `MessageDeduplicationId`: the text when SQS takes it (at most 128
/// printable ASCII characters), else its printable start and a hash of the whole.
fn fifo_id(text: &str) -> String {
    let printable = |it: char| it.is_ascii_graphic();
    if !text.is_empty() && text.len() <= MAX_FIFO_ID_CHARS && text.chars().all(printable) {
        return text.to_owned();
    }
    let hash = sigv4::sha256_hex(text, 16);
    let start: String = text
        .chars()
        .filter(|it| printable(*it))
        .take(MAX_FIFO_ID_CHARS - hash.len() - 1)
        .collect();
    format!("{start}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        for code in [
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "AccessDenied",
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
        ] {
            assert_eq!(error_class(400, code), ErrorClass::Configuration, "{code}");
        }
        assert_eq!(error_class(403, "Whatever"), ErrorClass::Configuration);
        assert_eq!(error_class(400, "RequestThrottled"), ErrorClass::Transient);
        assert_eq!(error_class(500, "InternalError"), ErrorClass::Transient);
        assert_eq!(
            error_class(503, "ServiceUnavailable"),
            ErrorClass::Transient
        );
        let error = service_error(
            400,
            None,
            &json!({"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "gone"}),
            "",
        );
        assert!(matches!(
            classify_call("GetQueueUrl", &error),
            LoadError::Configuration { message } if message.contains("QueueDoesNotExist: gone")
        ));
        let error = service_error(
            400,
            Some("AWS.SimpleQueueService.NonExistentQueue;Sender"),
            &Value::Null,
            "<xml/>",
        );
        assert!(matches!(error, CallError::Service { ref code, .. } if is_missing_queue(code)));
        let error = service_error(
            403,
            None,
            &Value::Null,
            "<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error></Errors></ErrorResponse>",
        );
        assert!(matches!(
            classify_call("GetQueueUrl", &error),
            LoadError::Configuration { message } if message == "SQS GetQueueUrl: SignatureDoesNotMatch: no"
        ));
        assert!(matches!(
            classify_call(
                "SendMessageBatch",
                &CallError::Transport("refused".to_owned())
            ),
            LoadError::Reconnect { .. }
        ));
    }

    #[test]
    fn failed_entries_are_items_when_the_sender_is_at_fault() {
        assert!(classify_failed_entries(&[]).is_none());
        let item = classify_failed_entries(&[
            json!({"Id": "3", "SenderFault": false, "Code": "InternalError"}),
            json!({"Id": "4", "SenderFault": true, "Code": "InvalidMessageContents", "Message": "bad char"}),
        ]);
        assert!(matches!(
            item,
            Some(LoadError::BadItem { document_id: Some(ref id), ref message })
                if id == "4" && message.contains("InvalidMessageContents")
        ));
        let retry = classify_failed_entries(&[json!({"Id": "1", "SenderFault": false})]);
        assert!(matches!(retry, Some(LoadError::Reconnect { .. })));
    }

    #[test]
    fn fifo_ids_are_what_sqs_takes() {
        assert_eq!(fifo_id("A:5-abc"), "A:5-abc");
        assert_eq!(fifo_id("orders/1"), "orders/1");
        let long = "A:1-x,".repeat(40);
        let id = fifo_id(&long);
        assert!(
            id.len() <= MAX_FIFO_ID_CHARS && id.starts_with("A:1-x,"),
            "{id}"
        );
        assert_ne!(fifo_id(&format!("{long}1")), fifo_id(&format!("{long}2")));
        let spaced = fifo_id("users/ana maría");
        assert!(spaced.chars().all(|it| it.is_ascii_graphic()), "{spaced}");
        assert_ne!(spaced, fifo_id("users/ana maria"));
    }
}
