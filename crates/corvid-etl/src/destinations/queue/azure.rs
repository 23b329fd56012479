//! Azure Queue Storage over its REST API (Shared Key, `azure_account.rs`), with a reqwest
//! client made by corvid-client. A message is what RavenDB sends: the event as one
//! CloudEvents JSON document (structured mode: a queue message has no headers), base64
//! encoded, as the `MessageText` of `POST /{queue}/messages`. Each message is its own
//! request, at most [`IN_FLIGHT`] at once (a document's messages one after the other, in
//! order), and a batch is delivered once every message got its `201 Created`.
//!
//! Azure has no transaction: when a batch fails part-way (or the server stops before
//! recording its progress), the whole batch is sent again, and a consumer may see messages
//! of it twice (de-duplicate by the CloudEvents `id`). A message over 64 KiB (its base64
//! text) is left out without being sent, and one Azure refuses on its own is left out
//! while the others stay delivered: neither causes a resend.
//!
//! Unless `SkipAutomaticQueueDeclaration`, a queue is created (`PUT /{queue}`) before its
//! first message, as RavenDB's `CreateIfNotExists`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt as _;

use crate::destination::LoadError;
use crate::destinations::queue::azure_account::{AzureAccount, RequestToSign, http_date};
use crate::destinations::queue::message::QueueMessage;
use crate::destinations::queue::xml_element;

/// The largest message Azure takes: 64 KiB of `MessageText` (the base64 text).
pub const MAX_MESSAGE_TEXT_BYTES: usize = 64 * 1024;
/// Messages sent at once.
const IN_FLIGHT: usize = 32;
const API_VERSION: &str = "2021-12-02";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const XML_CONTENT_TYPE: &str = "application/xml";

/// Publishes to the queues of one storage account.
pub(crate) struct AzurePublisher {
    account: Arc<AzureAccount>,
    declare: bool,
    client: Option<reqwest::Client>,
    /// Queues created (or found) on this publisher.
    declared: HashSet<String>,
}

/// What Azure answered a request, when it was not what was expected.
#[derive(Debug)]
struct Refusal {
    status: u16,
    /// `x-ms-error-code` (or the body's `<Code>`).
    code: String,
    message: String,
}

/// What a refusal is about.
#[derive(Debug, PartialEq, Eq)]
enum RefusalClass {
    Item,
    Configuration,
    Transient,
}

impl AzurePublisher {
    pub fn new(account: Arc<AzureAccount>, declare: bool) -> AzurePublisher {
        AzurePublisher {
            account,
            declare,
            client: None,
            declared: HashSet::new(),
        }
    }

    /// Publishes `messages`; answers the messages left out (by position, with the reason)
    /// once every other one was taken. Each message is its own request, so one that is
    /// refused on its own leaves the others delivered: they are not sent again.
    pub async fn publish(
        &mut self,
        messages: &[QueueMessage],
    ) -> Result<Vec<(usize, String)>, LoadError> {
        let mut refused = Vec::new();
        let mut texts = Vec::with_capacity(messages.len());
        for (idx, message) in messages.iter().enumerate() {
            let text = BASE64.encode(message.structured_json());
            if text.len() > MAX_MESSAGE_TEXT_BYTES {
                refused.push((
                    idx,
                    format!(
                        "the message to Azure queue `{}` is {} bytes once base64-encoded; Azure Queue Storage takes at most {MAX_MESSAGE_TEXT_BYTES}",
                        message.queue,
                        text.len()
                    ),
                ));
                continue;
            }
            texts.push((idx, text));
        }
        let client = self.client()?;
        if self.declare {
            for (idx, _) in &texts {
                let queue = &messages[*idx].queue;
                if self.declared.contains(queue) {
                    continue;
                }
                self.create_queue(&client, queue).await?;
                self.declared.insert(queue.clone());
            }
        }
        // A document's messages go one after the other, in order (the delete of a document,
        // then the put of the document created again); documents go concurrently.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_of: HashMap<&str, usize> = HashMap::new();
        for (position, (idx, _)) in texts.iter().enumerate() {
            let document_id = messages[*idx].document_id.as_str();
            match group_of.get(document_id) {
                Some(group) => groups[*group].push(position),
                None => {
                    group_of.insert(document_id, groups.len());
                    groups.push(vec![position]);
                }
            }
        }
        let (account, client, texts) = (&self.account, &client, &texts);
        // Made before they are streamed: a closure in the stream would not be `Send`
        // for every lifetime the loader's future needs.
        let mut sends = Vec::with_capacity(groups.len());
        for group in &groups {
            sends.push(async move {
                let mut results = Vec::with_capacity(group.len());
                for position in group {
                    let (idx, text) = &texts[*position];
                    let res = send_message(client, account, &messages[*idx].queue, text).await;
                    // The batch will be sent again: the document's later messages wait.
                    let failed = matches!(
                        res,
                        Err(LoadError::Reconnect { .. } | LoadError::Configuration { .. })
                    );
                    results.push((*idx, res));
                    if failed {
                        break;
                    }
                }
                results
            });
        }
        let sends = futures_util::stream::iter(sends)
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        let mut worst: Option<LoadError> = None;
        let mut n_refused_by_azure = 0;
        for (idx, res) in sends.into_iter().flatten() {
            match res {
                Ok(()) => {}
                Err(LoadError::BadItem { message, .. }) => {
                    refused.push((idx, message));
                    n_refused_by_azure += 1;
                }
                Err(error) => {
                    if worst
                        .as_ref()
                        .is_none_or(|it| severity(&error) > severity(it))
                    {
                        worst = Some(error);
                    }
                }
            }
        }
        if let Some(error) = worst {
            // A queue deleted meanwhile is created again on the retry.
            self.declared.clear();
            return Err(error);
        }
        // Azure refusing every message it was sent is about the account, not the messages.
        if texts.len() > 1 && n_refused_by_azure == texts.len() {
            let first = refused
                .iter()
                .find(|it| texts.iter().any(|sent| sent.0 == it.0));
            return Err(LoadError::Configuration {
                message: format!(
                    "Azure Queue Storage refused every message of the batch: {}",
                    first.map(|it| it.1.as_str()).unwrap_or_default()
                ),
            });
        }
        refused.sort_unstable_by_key(|it| it.0);
        Ok(refused)
    }

    fn client(&mut self) -> Result<reqwest::Client, LoadError> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let client = corvid_client::http_client_builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|error| LoadError::Configuration {
                message: format!("cannot make an HTTP client for Azure Queue Storage: {error}"),
            })?;
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn create_queue(&self, client: &reqwest::Client, queue: &str) -> Result<(), LoadError> {
        let context = format!(
            "Azure Queue Storage at {} (create queue `{queue}`)",
            self.account.queue_endpoint
        );
        let request = signed(
            client,
            &self.account,
            "PUT",
            &format!("/{queue}"),
            Vec::new(),
        );
        let response = request
            .send()
            .await
            .map_err(|error| transport_error(&context, &error))?;
        match response.status().as_u16() {
            // 204: it exists with the same metadata.
            201 | 204 => Ok(()),
            _ => {
                let refusal = refusal(response).await;
                // It exists, with other metadata: it takes messages all the same.
                if refusal.code == "QueueAlreadyExists" {
                    return Ok(());
                }
                Err(classified(&context, &refusal, true))
            }
        }
    }
}

/// Sends one message's text; a [`LoadError::BadItem`] names no message (the caller does).
async fn send_message(
    client: &reqwest::Client,
    account: &AzureAccount,
    queue: &str,
    text: &str,
) -> Result<(), LoadError> {
    let context = format!(
        "Azure Queue Storage at {} (queue `{queue}`)",
        account.queue_endpoint
    );
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessage><MessageText>{text}</MessageText></QueueMessage>"
    );
    let resource = format!("/{queue}/messages");
    let request = signed(client, account, "POST", &resource, body.into_bytes());
    let response = request
        .send()
        .await
        .map_err(|error| transport_error(&context, &error))?;
    if response.status().as_u16() == 201 {
        return Ok(());
    }
    let refusal = refusal(response).await;
    Err(classified(&context, &refusal, false))
}

/// A request for `resource` (`/{queue}…`, under the queue endpoint) with its `x-ms-*`
/// headers and Shared Key `Authorization`.
fn signed(
    client: &reqwest::Client,
    account: &AzureAccount,
    method: &str,
    resource: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let path = format!("{}{resource}", account.endpoint_path());
    let date = http_date(SystemTime::now());
    let content_type = if body.is_empty() {
        ""
    } else {
        XML_CONTENT_TYPE
    };
    let authorization = account.authorization(&RequestToSign {
        method,
        path: &path,
        content_length: body.len(),
        content_type,
        ms_headers: &[("x-ms-date", &date), ("x-ms-version", API_VERSION)],
        query: &[],
    });
    let url = format!("{}{resource}", account.queue_endpoint);
    let method = if method == "PUT" {
        reqwest::Method::PUT
    } else {
        reqwest::Method::POST
    };
    let mut request = client
        .request(method, url)
        .header("x-ms-date", date)
        .header("x-ms-version", API_VERSION)
        .header("Authorization", authorization)
        .header("Content-Length", body.len());
    if !content_type.is_empty() {
        request = request.header("Content-Type", content_type);
    }
    request.body(body)
}

async fn refusal(response: reqwest::Response) -> Refusal {
    let status = response.status().as_u16();
    let header_code = response
        .headers()
        .get("x-ms-error-code")
        .and_then(|it| it.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    let code = header_code
        .or_else(|| xml_element(&body, "Code"))
        .unwrap_or_default();
    let message = xml_element(&body, "Message")
        .map(|it| it.lines().next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    Refusal {
        status,
        code,
        message,
    }
}

/// What a refusal is about: a message too large is the message's; authentication,
/// authorization, a missing queue or a bad request are configuration; throttling, timeouts
/// and server errors transient.
fn refusal_class(status: u16, code: &str) -> RefusalClass {
    match (status, code) {
        (400 | 413, "MessageTooLarge" | "RequestBodyTooLarge") | (413, _) => RefusalClass::Item,
        (408 | 429, _) | (500..=599, _) => RefusalClass::Transient,
        (409, "QueueBeingDeleted") => RefusalClass::Transient,
        _ => RefusalClass::Configuration,
    }
}

fn classified(context: &str, refusal: &Refusal, creating: bool) -> LoadError {
    let mut message = format!("{context}: HTTP {}", refusal.status);
    if !refusal.code.is_empty() {
        message.push_str(&format!(" {}", refusal.code));
    }
    if !refusal.message.is_empty() {
        message.push_str(&format!(": {}", refusal.message));
    }
    match refusal.code.as_str() {
        "AuthenticationFailed" => message.push_str(" (check `AccountName` and `AccountKey`)"),
        "QueueNotFound" if !creating => {
            message.push_str(" (the queue does not exist and `SkipAutomaticQueueDeclaration` is set, or it was deleted)");
        }
        _ => {}
    }
    match refusal_class(refusal.status, &refusal.code) {
        RefusalClass::Item => LoadError::BadItem {
            document_id: None,
            message,
        },
        RefusalClass::Configuration => LoadError::Configuration { message },
        RefusalClass::Transient => LoadError::Reconnect { message },
    }
}

/// A request that got no answer: unreachable, refused, timed out. Retried.
fn transport_error(context: &str, error: &reqwest::Error) -> LoadError {
    let mut message = format!("{context}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    if error.is_builder() {
        return LoadError::Configuration { message };
    }
    LoadError::Reconnect { message }
}

/// Which of several failures of one batch is reported: configuration over transient over
/// a message's own.
fn severity(error: &LoadError) -> u8 {
    match error {
        LoadError::Configuration { .. } => 2,
        LoadError::Reconnect { .. } => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified() {
        assert_eq!(refusal_class(400, "MessageTooLarge"), RefusalClass::Item);
        assert_eq!(
            refusal_class(413, "RequestBodyTooLarge"),
            RefusalClass::Item
        );
        assert_eq!(
            refusal_class(403, "AuthenticationFailed"),
            RefusalClass::Configuration
        );
        assert_eq!(
            refusal_class(404, "QueueNotFound"),
            RefusalClass::Configuration
        );
        assert_eq!(
            refusal_class(400, "InvalidResourceName"),
            RefusalClass::Configuration
        );
        assert_eq!(refusal_class(503, "ServerBusy"), RefusalClass::Transient);
        assert_eq!(refusal_class(500, ""), RefusalClass::Transient);
        assert_eq!(
            refusal_class(409, "QueueBeingDeleted"),
            RefusalClass::Transient
        );
    }

    #[test]
    fn error_bodies_give_their_code_and_message() {
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>QueueNotFound</Code><Message>The specified queue does not exist.\nRequestId:1</Message></Error>";
        assert_eq!(xml_element(body, "Code").as_deref(), Some("QueueNotFound"));
        assert_eq!(
            xml_element(body, "Message").as_deref(),
            Some("The specified queue does not exist.\nRequestId:1")
        );
        assert_eq!(xml_element("<Error/>", "Code"), None);
        let error = classified(
            "Azure Queue Storage at http://h (queue `q`)",
            &Refusal {
                status: 404,
                code: "QueueNotFound".to_owned(),
                message: "The specified queue does not exist.".to_owned(),
            },
            false,
        );
        let LoadError::Configuration { message } = error else {
            panic!("{error:?}");
        };
        assert!(
            message.contains("SkipAutomaticQueueDeclaration"),
            "{message}"
        );
    }
}
