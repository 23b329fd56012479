//! The raw producer and the consumer of the HTTP brokers: Amazon SQS (its JSON protocol,
//! signed by corvid-etl's SigV4) and Azure Queue Storage (its REST API, signed by
//! corvid-etl's Shared Key). Each message is the structured CloudEvents JSON the ETL sends
//! (base64 for Azure), published the way the ETL's publisher does: SQS by `SendMessageBatch`
//! of 10 entries one after the other, Azure one `POST` per message with 32 in flight.
//!
//! The consumer polls the queue's message count (SQS `ApproximateNumberOfMessages`, Azure
//! `x-ms-approximate-messages-count`): nothing receives the messages, so every one stays
//! visible and the count is exact on the emulators (moto counts its list of messages,
//! azurite its table), and "all arrived" is the first poll that sees them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use corvid_etl::destinations::queue::AzureAccount;
use corvid_etl::destinations::queue::azure_account::{RequestToSign, http_date};
use corvid_etl::destinations::queue::sigv4::{self, Credentials};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::structured_json;

/// `SendMessageBatch` takes at most 10 entries (the ETL sends full batches).
const SQS_BATCH_ENTRIES: usize = 10;
const SQS_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// Azure messages sent at once (the ETL's `IN_FLIGHT`).
const AZURE_IN_FLIGHT: usize = 32;
const AZURE_API_VERSION: &str = "2021-12-02";

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(corvid_client::http_client_builder()
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// Polls `count` every `every` milliseconds (changed as the bench goes) into `sender`.
pub(super) fn poll_count<F, Fut>(
    sender: watch::Sender<usize>,
    every: Arc<AtomicU64>,
    count: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<usize>> + Send,
{
    tokio::spawn(async move {
        loop {
            match count().await {
                Ok(n) => {
                    sender.send_if_modified(|it| std::mem::replace(it, n) != n);
                }
                Err(error) => eprintln!("polling the queue's count: {error:#}"),
            }
            tokio::time::sleep(Duration::from_millis(every.load(Ordering::Relaxed))).await;
        }
    })
}

/// An SQS endpoint with the bench's credentials.
#[derive(Clone)]
pub(super) struct Sqs {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    host: String,
    access_key: String,
    secret_key: String,
    region: String,
}

impl Sqs {
    pub(super) fn new(
        url: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
    ) -> anyhow::Result<Sqs> {
        let endpoint = reqwest::Url::parse(url).with_context(|| format!("SQS URL {url}"))?;
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => bail!("SQS URL {url} has no host"),
        };
        Ok(Sqs {
            client: http_client()?,
            endpoint,
            host,
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
        })
    }

    /// One signed call of the JSON protocol, as the ETL makes it.
    async fn call(&self, action: &str, request: &Value) -> anyhow::Result<Value> {
        let body = request.to_string().into_bytes();
        let target = format!("AmazonSQS.{action}");
        let credentials = Credentials {
            access_key: &self.access_key,
            secret_key: &self.secret_key,
            region: &self.region,
            service: "sqs",
        };
        let signed = sigv4::sign_post(
            credentials,
            &self.host,
            self.endpoint.path(),
            SQS_CONTENT_TYPE,
            &target,
            &body,
            SystemTime::now(),
        );
        let response = self
            .client
            .post(self.endpoint.clone())
            .header("content-type", SQS_CONTENT_TYPE)
            .header("x-amz-target", &target)
            .header("x-amz-date", &signed.amz_date)
            .header("authorization", &signed.authorization)
            .body(body)
            .send()
            .await
            .with_context(|| format!("SQS {action}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("SQS {action}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn queue_url(&self, name: &str) -> anyhow::Result<String> {
        let answer = self
            .call("GetQueueUrl", &json!({"QueueName": name}))
            .await?;
        answer
            .get("QueueUrl")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context("SQS answered without a QueueUrl")
    }

    /// Creates queue `name` and counts the messages in it, every `every` ms.
    pub(super) async fn queue(
        &self,
        name: &str,
        sender: watch::Sender<usize>,
        every: Arc<AtomicU64>,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let answer = self
            .call("CreateQueue", &json!({"QueueName": name}))
            .await?;
        let url = answer
            .get("QueueUrl")
            .and_then(Value::as_str)
            .context("SQS answered CreateQueue without a QueueUrl")?
            .to_owned();
        let sqs = self.clone();
        Ok(poll_count(sender, every, move || {
            let (sqs, url) = (sqs.clone(), url.clone());
            async move {
                let answer = sqs
                    .call(
                        "GetQueueAttributes",
                        &json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]}),
                    )
                    .await?;
                let count = answer
                    .pointer("/Attributes/ApproximateNumberOfMessages")
                    .and_then(|it| match it {
                        Value::String(text) => text.parse().ok(),
                        other => other.as_u64().and_then(|it| usize::try_from(it).ok()),
                    })
                    .context("no ApproximateNumberOfMessages")?;
                Ok(count)
            }
        }))
    }

    /// Sends the messages of documents `0..n_messages` to `name` as the ETL does: batches
    /// of 10 entries, one after the other, each answered before the next.
    pub(super) async fn publish(&self, name: &str, n_messages: usize) -> anyhow::Result<()> {
        let url = self.queue_url(name).await?;
        let indexes: Vec<usize> = (0..n_messages).collect();
        for batch in indexes.chunks(SQS_BATCH_ENTRIES) {
            let entries: Vec<Value> = batch
                .iter()
                .enumerate()
                .map(|(position, idx)| json!({"Id": position.to_string(), "MessageBody": structured_json(*idx)}))
                .collect();
            let answer = self
                .call(
                    "SendMessageBatch",
                    &json!({"QueueUrl": url, "Entries": entries}),
                )
                .await?;
            let n_successful = answer
                .get("Successful")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if n_successful != batch.len() {
                bail!(
                    "SQS took {n_successful} of {} messages: {answer}",
                    batch.len()
                );
            }
        }
        Ok(())
    }

    pub(super) async fn delete(&self, name: &str) {
        if let Ok(url) = self.queue_url(name).await {
            let _ = self.call("DeleteQueue", &json!({"QueueUrl": url})).await;
        }
    }
}

/// An Azure storage account's queue service.
#[derive(Clone)]
pub(super) struct Azure {
    client: reqwest::Client,
    account: Arc<AzureAccount>,
}

impl Azure {
    pub(super) fn new(connection_string: &str) -> anyhow::Result<Azure> {
        let account = AzureAccount::parse(connection_string)
            .map_err(|reason| anyhow::anyhow!("Azure connection string: {reason}"))?;
        Ok(Azure {
            client: http_client()?,
            account: Arc::new(account),
        })
    }

    pub(super) fn endpoint(&self) -> &str {
        &self.account.queue_endpoint
    }

    /// A Shared Key signed request for `resource` (`/{queue}…`) with `query`.
    fn request(
        &self,
        method: reqwest::Method,
        resource: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let path = format!("{}{resource}", self.account.endpoint_path());
        let date = http_date(SystemTime::now());
        let content_type = if body.is_empty() {
            ""
        } else {
            "application/xml"
        };
        let authorization = self.account.authorization(&RequestToSign {
            method: method.as_str(),
            path: &path,
            content_length: body.len(),
            content_type,
            ms_headers: &[("x-ms-date", &date), ("x-ms-version", AZURE_API_VERSION)],
            query,
        });
        let mut request = self
            .client
            .request(method, format!("{}{resource}", self.account.queue_endpoint))
            .query(query)
            .header("x-ms-date", date)
            .header("x-ms-version", AZURE_API_VERSION)
            .header("Authorization", authorization)
            .header("Content-Length", body.len());
        if !content_type.is_empty() {
            request = request.header("Content-Type", content_type);
        }
        request.body(body)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        resource: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<reqwest::Response> {
        let what = format!("Azure {method} {resource}");
        let response = self
            .request(method, resource, query, body)
            .send()
            .await
            .with_context(|| what.clone())?;
        if !response.status().is_success() {
            let status = response.status();
            bail!(
                "{what}: {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(response)
    }

    /// Creates queue `name` and counts the messages in it, every `every` ms.
    pub(super) async fn queue(
        &self,
        name: &str,
        sender: watch::Sender<usize>,
        every: Arc<AtomicU64>,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let resource = format!("/{name}");
        self.send(reqwest::Method::PUT, &resource, &[], Vec::new())
            .await?;
        let azure = self.clone();
        Ok(poll_count(sender, every, move || {
            let (azure, resource) = (azure.clone(), resource.clone());
            async move {
                let response = azure
                    .send(
                        reqwest::Method::GET,
                        &resource,
                        &[("comp", "metadata")],
                        Vec::new(),
                    )
                    .await?;
                let count = response
                    .headers()
                    .get("x-ms-approximate-messages-count")
                    .and_then(|it| it.to_str().ok())
                    .and_then(|it| it.parse().ok())
                    .context("no x-ms-approximate-messages-count")?;
                Ok(count)
            }
        }))
    }

    /// Sends the messages of documents `0..n_messages` to `name` as the ETL does: one
    /// `POST` per message (base64 of the structured JSON), 32 at once.
    pub(super) async fn publish(&self, name: &str, n_messages: usize) -> anyhow::Result<()> {
        let resource = format!("/{name}/messages");
        let resource = resource.as_str();
        let mut sends = futures_util::stream::iter(0..n_messages)
            .map(|idx| async move {
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessage><MessageText>{}</MessageText></QueueMessage>",
                    BASE64.encode(structured_json(idx))
                );
                self.send(reqwest::Method::POST, resource, &[], body.into_bytes())
                    .await
                    .map(drop)
            })
            .buffer_unordered(AZURE_IN_FLIGHT);
        while let Some(res) = sends.next().await {
            res?;
        }
        Ok(())
    }

    pub(super) async fn delete(&self, name: &str) {
        let _ = self
            .send(
                reqwest::Method::DELETE,
                &format!("/{name}"),
                &[],
                Vec::new(),
            )
            .await;
    }
}
