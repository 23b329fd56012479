//! Queue ETL's connection strings and task settings, in RavenDB's JSON shapes.

use serde::{Deserialize, Serialize};

use super::null_as_default;

/// What a Queue ETL task adds (RavenDB's `QueueEtlConfiguration`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueEtlConfig {
    /// Must be the connection string's.
    pub broker_type: Option<QueueBrokerType>,
    /// Settings per queue (RabbitMQ: exchange; NATS: subject); a queue the script loads to
    /// need not be listed.
    pub queues: Option<Vec<EtlQueue>>,
    /// Do not declare exchanges and queues (RabbitMQ) or create streams (NATS).
    pub skip_automatic_queue_declaration: Option<bool>,
}

/// The settings of one queue of a Queue ETL task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtlQueue {
    #[serde(rename = "Name", default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Delete the source documents once the broker acknowledged their messages (an outbox).
    #[serde(rename = "DeleteProcessedDocuments", default)]
    pub delete_processed_documents: bool,
    /// Corvid's: publish a `ravendb.etl.delete` event when a source document is deleted.
    #[serde(rename = "SendDeletes", default)]
    pub send_deletes: bool,
}

/// RavenDB's `QueueBrokerType`, plus Corvid's `Nats`; any other name is kept, to be refused
/// with its name when the configuration is validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum QueueBrokerType {
    RabbitMq,
    Kafka,
    AzureQueueStorage,
    AmazonSqs,
    Nats,
    Unknown(String),
}

impl QueueBrokerType {
    /// The name in JSON.
    pub fn name(&self) -> &str {
        match self {
            QueueBrokerType::RabbitMq => "RabbitMq",
            QueueBrokerType::Kafka => "Kafka",
            QueueBrokerType::AzureQueueStorage => "AzureQueueStorage",
            QueueBrokerType::AmazonSqs => "AmazonSqs",
            QueueBrokerType::Nats => "Nats",
            QueueBrokerType::Unknown(name) => name,
        }
    }
}

impl From<String> for QueueBrokerType {
    fn from(name: String) -> Self {
        let known = [
            QueueBrokerType::RabbitMq,
            QueueBrokerType::Kafka,
            QueueBrokerType::AzureQueueStorage,
            QueueBrokerType::AmazonSqs,
            QueueBrokerType::Nats,
        ];
        known
            .into_iter()
            .find(|it| it.name().eq_ignore_ascii_case(&name))
            .unwrap_or(QueueBrokerType::Unknown(name))
    }
}

impl From<QueueBrokerType> for String {
    fn from(broker: QueueBrokerType) -> Self {
        broker.name().to_owned()
    }
}

/// Where Queue ETL publishes: a broker and its settings (RavenDB's `QueueConnectionString`;
/// `NatsConnectionSettings` is Corvid's). `Debug` redacts passwords and secret keys.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueConnectionString {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "BrokerType")]
    pub broker_type: QueueBrokerType,
    #[serde(
        rename = "RabbitMqConnectionSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rabbit_mq: Option<RabbitMqConnectionSettings>,
    #[serde(
        rename = "NatsConnectionSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub nats: Option<NatsConnectionSettings>,
    /// Not supported yet: kept as sent, refused when saved.
    #[serde(
        rename = "KafkaConnectionSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kafka: Option<Box<serde_json::Value>>,
    #[serde(
        rename = "AzureQueueStorageConnectionSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub azure_queue_storage: Option<Box<AzureQueueStorageConnectionSettings>>,
    /// Not supported yet: kept as sent, refused when saved.
    #[serde(
        rename = "AmazonSqsConnectionSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub amazon_sqs: Option<AmazonSqsConnectionSettings>,
}

impl QueueConnectionString {
    /// Replaces the passwords of its URIs, and the SQS secret key, by `*****`.
    pub fn redact_passwords(&mut self) {
        use crate::destinations::queue::redact_uri_password;
        if let Some(basic) = self.amazon_sqs.as_mut().and_then(|it| it.basic.as_mut())
            && !basic.secret_key.is_empty()
        {
            basic.secret_key = REDACTED_SECRET.to_owned();
        }
        if let Some(rabbit_mq) = &mut self.rabbit_mq {
            rabbit_mq.connection_string = redact_uri_password(&rabbit_mq.connection_string);
        }
        if let Some(nats) = &mut self.nats {
            for server in &mut nats.servers {
                *server = redact_uri_password(server);
            }
        }
        if let Some(azure) = &mut self.azure_queue_storage {
            azure.redact_secrets();
        }
    }

    /// What to store when this replaces `stored` (same name): secrets sent back as `*****`
    /// (as `GET` showed them) are the stored ones, for the same account (Azure), the same
    /// access key, region and endpoint (SQS), or the same URI but for the password (RabbitMQ,
    /// NATS) only.
    pub fn restore_secrets(&mut self, stored: &QueueConnectionString) -> Result<(), String> {
        use crate::destinations::queue::azure_account::restore_account_key;
        use crate::destinations::queue::config::restore_uri_password;
        crate::destinations::queue::restore_secret(self, stored)?;
        let stored_uris: Vec<&str> = stored
            .rabbit_mq
            .iter()
            .map(|it| it.connection_string.as_str())
            .chain(
                stored
                    .nats
                    .iter()
                    .flat_map(|it| it.servers.iter().map(String::as_str)),
            )
            .collect();
        if let Some(rabbit_mq) = &mut self.rabbit_mq {
            rabbit_mq.connection_string = restore_uri_password(
                &rabbit_mq.connection_string,
                &stored_uris,
                "RabbitMqConnectionSettings.ConnectionString",
            )?;
        }
        if let Some(nats) = &mut self.nats {
            for server in &mut nats.servers {
                *server =
                    restore_uri_password(server, &stored_uris, "NatsConnectionSettings.Servers")?;
            }
        }
        if let (Some(azure), Some(stored_azure)) =
            (&mut self.azure_queue_storage, &stored.azure_queue_storage)
            && let (Some(new), Some(old)) =
                (&azure.connection_string, &stored_azure.connection_string)
        {
            azure.connection_string = Some(restore_account_key(new, old)?);
        }
        Ok(())
    }

    /// Where its broker is, without credentials (`None` when the settings are invalid).
    pub fn address(&self) -> Option<String> {
        crate::destinations::queue::config::broker_of(self)
            .ok()
            .map(|it| it.address())
    }
}

impl std::fmt::Debug for QueueConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut redacted = self.clone();
        redacted.redact_passwords();
        f.debug_struct("QueueConnectionString")
            .field("name", &redacted.name)
            .field("broker_type", &redacted.broker_type)
            .field("rabbit_mq", &redacted.rabbit_mq)
            .field("nats", &redacted.nats)
            .field("kafka", &redacted.kafka.is_some())
            .field("azure_queue_storage", &redacted.azure_queue_storage)
            .field("amazon_sqs", &redacted.amazon_sqs)
            .finish()
    }
}

/// RabbitMQ: an AMQP URI (`amqp://user:password@host:5672/vhost`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RabbitMqConnectionSettings {
    #[serde(
        rename = "ConnectionString",
        default,
        deserialize_with = "null_as_default"
    )]
    pub connection_string: String,
}

/// What `GET` shows instead of a password or secret key; a `PUT` that sends it back keeps the
/// stored one.
pub const REDACTED_SECRET: &str = "*****";

/// Amazon SQS (RavenDB's `AmazonSqsConnectionSettings`): exactly one of `Basic` credentials
/// or `Passwordless` (not supported yet: the AWS default credential chain), or `UseEmulator`.
/// `ServiceUrl` is Corvid's: an endpoint instead of `https://sqs.{region}.amazonaws.com`
/// (an emulator such as moto or LocalStack, or a VPC endpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmazonSqsConnectionSettings {
    #[serde(rename = "Basic", default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<AmazonSqsBasic>,
    #[serde(rename = "Passwordless", default, deserialize_with = "null_as_default")]
    pub passwordless: bool,
    /// RavenDB's: the endpoint is the server's `RAVEN_AMAZON_SQS_EMULATOR_URL`
    /// (`EtlOptions::sqs_emulator_url`); credentials are optional then.
    #[serde(rename = "UseEmulator", default, deserialize_with = "null_as_default")]
    pub use_emulator: bool,
    #[serde(
        rename = "ServiceUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_url: Option<String>,
}

impl AmazonSqsConnectionSettings {
    /// Where requests go, without credentials: the `ServiceUrl`, the emulator's variable, or
    /// the region's AWS endpoint.
    pub fn address(&self) -> Option<String> {
        match (&self.service_url, self.use_emulator, &self.basic) {
            (Some(url), _, _) => Some(url.clone()),
            (None, true, _) => Some("RAVEN_AMAZON_SQS_EMULATOR_URL".to_owned()),
            (None, false, Some(basic)) => {
                Some(format!("https://sqs.{}.amazonaws.com", basic.region_name))
            }
            (None, false, None) => None,
        }
    }
}

/// Azure Queue Storage (RavenDB's `AzureQueueStorageConnectionSettings`): exactly one of a
/// connection string, Entra ID or passwordless authentication. Corvid supports the
/// connection string (account key); the others are kept as sent and refused when saved.
/// `Debug` redacts secrets.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AzureQueueStorageConnectionSettings {
    /// `DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…[;QueueEndpoint=…]`, or
    /// `UseDevelopmentStorage=true`.
    #[serde(
        rename = "ConnectionString",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_string: Option<String>,
    /// `{StorageAccountName, TenantId, ClientId, ClientSecret}`: not supported.
    #[serde(rename = "EntraId", default, skip_serializing_if = "Option::is_none")]
    pub entra_id: Option<serde_json::Value>,
    /// `{StorageAccountName}`: not supported.
    #[serde(
        rename = "Passwordless",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub passwordless: Option<serde_json::Value>,
    /// Any other field: refused when saved.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl AzureQueueStorageConnectionSettings {
    /// Replaces the account key and Entra ID's client secret by `*****`.
    pub fn redact_secrets(&mut self) {
        use crate::destinations::queue::azure_account::{REDACTED_KEY, redact_account_key};
        if let Some(text) = &mut self.connection_string {
            *text = redact_account_key(text);
        }
        if let Some(serde_json::Value::Object(entra_id)) = &mut self.entra_id
            && let Some(secret) = entra_id.get_mut("ClientSecret")
            && !secret.is_null()
        {
            *secret = serde_json::Value::String(REDACTED_KEY.to_owned());
        }
    }
}

/// An AWS access key, its secret, and the region. `Debug` hides the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct AmazonSqsBasic {
    #[serde(rename = "AccessKey", default, deserialize_with = "null_as_default")]
    pub access_key: String,
    #[serde(rename = "SecretKey", default, deserialize_with = "null_as_default")]
    pub secret_key: String,
    #[serde(rename = "RegionName", default, deserialize_with = "null_as_default")]
    pub region_name: String,
}

impl std::fmt::Debug for AmazonSqsBasic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmazonSqsBasic")
            .field("access_key", &self.access_key)
            .field("secret_key", &REDACTED_SECRET)
            .field("region_name", &self.region_name)
            .finish()
    }
}

impl std::fmt::Debug for AzureQueueStorageConnectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut redacted = self.clone();
        redacted.redact_secrets();
        f.debug_struct("AzureQueueStorageConnectionSettings")
            .field("connection_string", &redacted.connection_string)
            .field("entra_id", &redacted.entra_id)
            .field("passwordless", &redacted.passwordless)
            .field("other", &redacted.other.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// NATS JetStream: the servers' URLs (`nats://host:4222`, credentials in the URL) and the
/// stream the subjects go to (by default one stream per subject, named after it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NatsConnectionSettings {
    #[serde(rename = "Servers", default, deserialize_with = "null_as_default")]
    pub servers: Vec<String>,
    #[serde(rename = "Stream", default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}
