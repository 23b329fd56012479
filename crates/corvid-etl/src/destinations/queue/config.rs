//! Queue ETL's configuration: the connection string's checks, the validated destination
//! (the broker and its settings per queue), what Queue ETL asks of a script, and what it
//! supplies to the generic engine once bound to a process (the event source and the
//! database whose processed documents it may delete).

use std::sync::Arc;

use corvid_store::Database;

use crate::config::{
    EtlQueue, QueueBrokerType, QueueConnectionString, QueueEtlConfig, REDACTED_SECRET,
};
use crate::destination::{Destination, LoadError};
use crate::destinations::queue::azure_account::AzureAccount;
use crate::destinations::queue::encoder::{EncodeSettings, QueueBatch, QueueEncoder, QueueNaming};
use crate::destinations::queue::loader::QueueLoader;
use crate::destinations::queue::sqs_settings::{SqsSettings, check_queue_name};
use crate::validate::{ConfigError, ValidatedTransform};

/// The broker a Queue ETL task publishes to. `Debug` hides passwords.
#[derive(Clone, PartialEq)]
pub enum QueueBroker {
    /// An `amqp://` URI.
    RabbitMq { uri: String },
    /// `nats://` URLs, and the stream every subject goes to (`None`: one per subject).
    Nats {
        servers: Vec<String>,
        stream: Option<String>,
    },
    /// Amazon SQS: credentials, region and endpoint.
    AmazonSqs(SqsSettings),
    /// A storage account's queue service (its `Debug` hides the key).
    AzureQueueStorage { account: Arc<AzureAccount> },
}

impl std::fmt::Debug for QueueBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueBroker::RabbitMq { uri } => f
                .debug_struct("RabbitMq")
                .field("uri", &redact_uri_password(uri))
                .finish(),
            QueueBroker::Nats { servers, stream } => f
                .debug_struct("Nats")
                .field(
                    "servers",
                    &servers
                        .iter()
                        .map(|it| redact_uri_password(it))
                        .collect::<Vec<_>>(),
                )
                .field("stream", stream)
                .finish(),
            QueueBroker::AmazonSqs(settings) => settings.fmt(f),
            QueueBroker::AzureQueueStorage { account } => f
                .debug_struct("AzureQueueStorage")
                .field("account", account)
                .finish(),
        }
    }
}

impl QueueBroker {
    /// The broker type's name, as in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueueBroker::RabbitMq { .. } => "RabbitMq",
            QueueBroker::Nats { .. } => "Nats",
            QueueBroker::AmazonSqs(_) => "AmazonSqs",
            QueueBroker::AzureQueueStorage { .. } => "AzureQueueStorage",
        }
    }

    /// How a `loadTo` target names one of its queues.
    pub(crate) fn naming(&self) -> QueueNaming {
        match self {
            QueueBroker::RabbitMq { .. } | QueueBroker::Nats { .. } => QueueNaming::AsWritten,
            QueueBroker::AmazonSqs(_) => QueueNaming::Lowercased,
            QueueBroker::AzureQueueStorage { .. } => QueueNaming::Azure,
        }
    }

    /// Where it is, without credentials (for task lists and ownership).
    pub fn address(&self) -> String {
        match self {
            QueueBroker::RabbitMq { uri } => strip_credentials(uri),
            QueueBroker::Nats { servers, .. } => servers
                .iter()
                .map(|it| strip_credentials(it))
                .collect::<Vec<_>>()
                .join(","),
            QueueBroker::AmazonSqs(settings) => settings.address(),
            QueueBroker::AzureQueueStorage { account } => account.queue_endpoint.clone(),
        }
    }
}

/// Where a Queue ETL task publishes, and the settings of its queues.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDestination {
    pub broker: QueueBroker,
    pub queues: Vec<EtlQueue>,
    pub skip_automatic_queue_declaration: bool,
}

/// A URI sent back with its password as `*****` (as `GET` showed it) gets the stored
/// password again, but only when everything else is a stored URI's: a password is never sent
/// to another user, host or virtual host than the one it was given for.
pub(crate) fn restore_uri_password(
    new: &str,
    stored: &[&str],
    field: &str,
) -> Result<String, String> {
    if !new.contains(":*****@") {
        return Ok(new.to_owned());
    }
    stored
        .iter()
        .find(|it| redact_uri_password(it) == new)
        .map(|it| (*it).to_owned())
        .ok_or_else(|| {
            format!(
                "`{field}` has the password `*****`: type the password again (the stored one is kept only for the same user, host and virtual host)"
            )
        })
}

/// Replaces the password of `scheme://user:password@host…` by `*****`.
pub fn redact_uri_password(uri: &str) -> String {
    let Some((user_info, rest)) = split_user_info(uri) else {
        return uri.to_owned();
    };
    match user_info.split_once(':') {
        Some((user, _)) => {
            let scheme_end = uri.find("://").map_or(0, |it| it + 3);
            format!("{}{user}:*****@{rest}", &uri[..scheme_end])
        }
        None => uri.to_owned(),
    }
}

/// `scheme://host…` without `user:password@`.
fn strip_credentials(uri: &str) -> String {
    match split_user_info(uri) {
        Some((_, rest)) => {
            let scheme_end = uri.find("://").map_or(0, |it| it + 3);
            format!("{}{rest}", &uri[..scheme_end])
        }
        None => uri.to_owned(),
    }
}

/// The user info of a URI (before the last `@` of the authority) and what follows it.
fn split_user_info(uri: &str) -> Option<(&str, &str)> {
    let after_scheme = &uri[uri.find("://")? + 3..];
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let at = after_scheme[..authority_end].rfind('@')?;
    Some((&after_scheme[..at], &after_scheme[at + 1..]))
}

/// Checks a Queue connection string on its own; the reason is for the user.
pub(crate) fn check_connection_string(queue: &QueueConnectionString) -> Result<(), String> {
    broker_of(queue).map(drop)
}

pub(crate) fn broker_of(queue: &QueueConnectionString) -> Result<QueueBroker, String> {
    match &queue.broker_type {
        QueueBrokerType::RabbitMq => {
            let uri = queue
                .rabbit_mq
                .as_ref()
                .map(|it| it.connection_string.trim())
                .unwrap_or_default();
            if uri.is_empty() {
                return Err(
                    "`RabbitMqConnectionSettings.ConnectionString` must not be empty".to_owned(),
                );
            }
            if uri.starts_with("amqps://") {
                return Err("amqps (RabbitMQ over TLS) is not supported yet".to_owned());
            }
            if !uri.starts_with("amqp://") {
                return Err(format!(
                    "`RabbitMqConnectionSettings.ConnectionString` must be an amqp:// URI, not `{}`",
                    redact_uri_password(uri)
                ));
            }
            uri.parse::<lapin::uri::AMQPUri>().map_err(|error| {
                format!("invalid amqp URI `{}`: {error}", redact_uri_password(uri))
            })?;
            Ok(QueueBroker::RabbitMq {
                uri: uri.to_owned(),
            })
        }
        QueueBrokerType::Nats => {
            let Some(nats) = &queue.nats else {
                return Err("`NatsConnectionSettings` must be given".to_owned());
            };
            if nats.servers.is_empty() {
                return Err(
                    "`NatsConnectionSettings.Servers` must list at least one URL".to_owned(),
                );
            }
            for server in &nats.servers {
                let valid = ["nats://", "tls://"]
                    .iter()
                    .any(|it| server.starts_with(it))
                    && server.len() > "nats://".len();
                if !valid {
                    return Err(format!(
                        "`NatsConnectionSettings.Servers`: `{}` is not a nats:// URL",
                        redact_uri_password(server)
                    ));
                }
            }
            if let Some(stream) = &nats.stream
                && !valid_stream_name(stream)
            {
                return Err(format!(
                    "`NatsConnectionSettings.Stream`: `{stream}` is not a valid stream name (no spaces, `.`, `*`, `>`, `/` or `\\`)"
                ));
            }
            Ok(QueueBroker::Nats {
                servers: nats.servers.clone(),
                stream: nats.stream.clone().filter(|it| !it.is_empty()),
            })
        }
        QueueBrokerType::Kafka => Err("the Kafka broker is not supported yet".to_owned()),
        QueueBrokerType::AzureQueueStorage => azure_broker(queue),
        QueueBrokerType::AmazonSqs => {
            SqsSettings::from_connection_string(queue.amazon_sqs.as_ref())
                .map(QueueBroker::AmazonSqs)
        }
        QueueBrokerType::Unknown(name) => Err(format!(
            "unknown `BrokerType` `{name}`; expected RabbitMq, Nats, Kafka, AzureQueueStorage or AmazonSqs"
        )),
    }
}

/// Puts back the stored SQS secret key when `new` sends `*****` (what `GET` showed), as
/// long as it is for the same access key, region and endpoint: a secret is never sent on
/// to another place than the one it was given for. The reason is for the user.
pub(crate) fn restore_secret(
    new: &mut QueueConnectionString,
    stored: &QueueConnectionString,
) -> Result<(), String> {
    let Some(settings) = new.amazon_sqs.as_mut() else {
        return Ok(());
    };
    let Some(basic) = settings.basic.as_mut() else {
        return Ok(());
    };
    if basic.secret_key != REDACTED_SECRET {
        return Ok(());
    }
    let stored_settings = stored.amazon_sqs.as_ref();
    let stored_basic = stored_settings.and_then(|it| it.basic.as_ref());
    match (stored_settings, stored_basic) {
        (Some(stored_settings), Some(stored_basic))
            if stored_basic.access_key == basic.access_key
                && stored_basic.region_name == basic.region_name
                && stored_settings.service_url == settings.service_url
                && stored_settings.use_emulator == settings.use_emulator =>
        {
            basic.secret_key = stored_basic.secret_key.clone();
            Ok(())
        }
        (Some(_), Some(_)) => Err("`AmazonSqsConnectionSettings.Basic.SecretKey` is `*****`: give the secret key again when the access key, the region or the endpoint changes".to_owned()),
        _ => Err("`AmazonSqsConnectionSettings.Basic.SecretKey` is `*****`, but no secret key is stored for this connection string".to_owned()),
    }
}

/// Azure Queue Storage: the connection string form only.
fn azure_broker(queue: &QueueConnectionString) -> Result<QueueBroker, String> {
    let Some(azure) = &queue.azure_queue_storage else {
        return Err("`AzureQueueStorageConnectionSettings` must be given".to_owned());
    };
    if let Some(name) = azure.other.keys().next() {
        return Err(format!(
            "unknown setting `AzureQueueStorageConnectionSettings.{name}`; expected ConnectionString, EntraId or Passwordless"
        ));
    }
    let n_given = [
        azure.connection_string.is_some(),
        azure.entra_id.is_some(),
        azure.passwordless.is_some(),
    ]
    .into_iter()
    .filter(|it| *it)
    .count();
    if n_given > 1 {
        return Err("`AzureQueueStorageConnectionSettings` takes exactly one of ConnectionString, EntraId and Passwordless".to_owned());
    }
    for (given, name) in [
        (azure.entra_id.is_some(), "EntraId"),
        (azure.passwordless.is_some(), "Passwordless"),
    ] {
        if given {
            return Err(format!(
                "`AzureQueueStorageConnectionSettings.{name}` is not supported: Corvid connects to Azure Queue Storage with a `ConnectionString` (AccountName and AccountKey) only"
            ));
        }
    }
    let Some(connection_string) = &azure.connection_string else {
        return Err(
            "`AzureQueueStorageConnectionSettings.ConnectionString` must be given".to_owned(),
        );
    };
    let account = AzureAccount::parse(connection_string).map_err(|reason| {
        format!("`AzureQueueStorageConnectionSettings.ConnectionString`: {reason}")
    })?;
    Ok(QueueBroker::AzureQueueStorage {
        account: Arc::new(account),
    })
}

/// The Azure queue a `loadTo` target names: RavenDB lowercases it; then it must be 3–63
/// lowercase letters, digits and single hyphens, starting and ending with a letter or digit.
pub(crate) fn azure_queue_name(target: &str) -> Result<String, String> {
    let name = target.to_lowercase();
    let valid = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|it| it.is_ascii_lowercase() || it.is_ascii_digit() || it == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !valid {
        return Err(format!(
            "`{target}` is not a valid Azure queue name: 3 to 63 letters, digits and single hyphens, starting and ending with a letter or digit (names are lowercased)"
        ));
    }
    Ok(name)
}

/// A JetStream stream name: no whitespace, `.`, `*`, `>`, `/`, `\`.
pub(crate) fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|it| it.is_whitespace() || matches!(it, '.' | '*' | '>' | '/' | '\\'))
}

impl QueueDestination {
    pub(crate) fn build(
        queue: &QueueConnectionString,
        config: &QueueEtlConfig,
        task_name: &str,
    ) -> Result<QueueDestination, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidQueueEtl {
            task: task_name.to_owned(),
            reason,
        };
        let broker = broker_of(queue).map_err(|reason| ConfigError::InvalidConnectionString {
            name: queue.name.clone(),
            reason,
        })?;
        match &config.broker_type {
            None => return Err(invalid("`BrokerType` must be given".to_owned())),
            Some(broker_type) if *broker_type != queue.broker_type => {
                return Err(invalid(format!(
                    "`BrokerType` is {} but connection string `{}` is for {}",
                    broker_type.name(),
                    queue.name,
                    queue.broker_type.name()
                )));
            }
            Some(_) => {}
        }
        let sqs = matches!(broker, QueueBroker::AmazonSqs(_));
        let mut queues = config.queues.clone().unwrap_or_default();
        // Named as the encoder names its targets (SQS and Azure lower-case them, as RavenDB
        // does), so `Orders` and `orders` are one queue.
        let naming = broker.naming();
        for it in &mut queues {
            it.name = naming
                .queue_name(&it.name)
                .map_err(|reason| invalid(format!("`Queues`: {reason}")))?;
        }
        for (idx, it) in queues.iter().enumerate() {
            if it.name.trim().is_empty() {
                return Err(invalid(
                    "a queue of `Queues` has an empty `Name`".to_owned(),
                ));
            }
            if sqs {
                check_queue_name(&it.name)
                    .map_err(|reason| invalid(format!("`Queues`: {reason}")))?;
            }
            if queues[..idx].iter().any(|other| other.name == it.name) {
                return Err(invalid(format!(
                    "queue `{}` is listed more than once in `Queues`",
                    it.name
                )));
            }
        }
        Ok(QueueDestination {
            broker,
            queues,
            skip_automatic_queue_declaration: config
                .skip_automatic_queue_declaration
                .unwrap_or(false),
        })
    }

    /// What Queue ETL asks of a script beyond what every script must be.
    pub(crate) fn check_transform(
        &self,
        transform: &ValidatedTransform,
    ) -> Result<(), ConfigError> {
        let not_supported = |feature: &'static str| ConfigError::NotSupportedByQueue {
            transform: transform.name.clone(),
            feature,
        };
        let analysis = &transform.analysis;
        if analysis.is_empty {
            return Err(not_supported(
                "an empty script (publish with `loadTo<Queue>(obj, attributes)`)",
            ));
        }
        if analysis.uses_add_attachment {
            return Err(not_supported("attachments (`addAttachment`)"));
        }
        if let QueueBroker::Nats { .. } = self.broker
            && let Some(target) = analysis.load_targets.iter().find(|it| it.is_empty())
        {
            return Err(ConfigError::InvalidQueueEtl {
                task: transform.name.clone(),
                reason: format!("NATS needs a subject to publish to, got `{target}`"),
            });
        }
        if let QueueBroker::AmazonSqs(_) = self.broker {
            for target in &analysis.load_targets {
                check_queue_name(target).map_err(|reason| ConfigError::InvalidQueueEtl {
                    task: transform.name.clone(),
                    reason: format!("loadTo: {reason}"),
                })?;
            }
        }
        if let QueueBroker::AzureQueueStorage { .. } = self.broker {
            for target in &analysis.load_targets {
                azure_queue_name(target).map_err(|reason| ConfigError::InvalidQueueEtl {
                    task: transform.name.clone(),
                    reason: format!("loadTo: {reason}"),
                })?;
            }
        }
        Ok(())
    }

    /// Binds the destination to a process: the CloudEvents `source` of its events
    /// (`{server url}/{database}/{task}`) and the database whose processed documents it deletes.
    pub(crate) fn for_process(
        &self,
        database: Arc<Database>,
        server_url: Option<&str>,
        task_name: &str,
    ) -> QueueProcess {
        QueueProcess {
            settings: Arc::new(self.encode_settings(&event_source(
                server_url,
                database.name(),
                task_name,
            ))),
            destination: self.clone(),
            database,
        }
    }

    /// What the encoder needs, for events whose `source` is `source`.
    pub(crate) fn encode_settings(&self, source: &str) -> EncodeSettings {
        EncodeSettings {
            rabbit_mq: matches!(self.broker, QueueBroker::RabbitMq { .. }),
            broker_type: self.broker.type_name(),
            naming: self.broker.naming(),
            source: source.to_owned(),
            queues: self.queues.clone(),
        }
    }
}

/// The default CloudEvents `source`: `{server url}/{database}/{task}` (RavenDB's
/// `{PublicServerUrl}/{db}/{etlName}`); without a known URL, `/{database}/{task}`.
pub fn event_source(server_url: Option<&str>, database: &str, task_name: &str) -> String {
    format!(
        "{}/{database}/{task_name}",
        server_url.unwrap_or_default().trim_end_matches('/')
    )
}

/// A Queue ETL destination bound to one process.
pub(crate) struct QueueProcess {
    destination: QueueDestination,
    settings: Arc<EncodeSettings>,
    database: Arc<Database>,
}

impl Destination for QueueProcess {
    type Batch = QueueBatch;
    type Encoder = QueueEncoder;
    type Loader = QueueLoader;

    fn new_encoder(&self) -> QueueEncoder {
        QueueEncoder::new(self.settings.clone())
    }

    fn new_loader(&self, options: &crate::options::EtlOptions) -> Result<QueueLoader, LoadError> {
        QueueLoader::new(
            &self.destination,
            self.database.clone(),
            options.sqs_emulator_url.as_deref(),
        )
    }

    fn identity(&self) -> String {
        format!(
            "queue:{}:{}",
            self.destination.broker.type_name(),
            self.destination.broker.address()
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_uri_password_sent_back_hidden_is_restored_only_for_the_same_place() {
        let stored = ["amqp://etl:s3cret@rabbit:5672/%2f"];
        let field = "RabbitMqConnectionSettings.ConnectionString";
        assert_eq!(
            restore_uri_password("amqp://etl:*****@rabbit:5672/%2f", &stored, field).unwrap(),
            "amqp://etl:s3cret@rabbit:5672/%2f"
        );
        assert_eq!(
            restore_uri_password("amqp://etl:new@rabbit:5672/%2f", &stored, field).unwrap(),
            "amqp://etl:new@rabbit:5672/%2f"
        );
        let moved = restore_uri_password("amqp://etl:*****@elsewhere:5672/%2f", &stored, field);
        assert!(moved.unwrap_err().contains("type the password again"));
        assert!(restore_uri_password("amqp://etl:*****@rabbit:5672/%2f", &[], field).is_err());
    }

    use super::*;

    #[test]
    fn passwords_are_redacted_and_stripped() {
        assert_eq!(
            redact_uri_password("amqp://guest:secret@localhost:5672/%2f"),
            "amqp://guest:*****@localhost:5672/%2f"
        );
        assert_eq!(
            redact_uri_password("amqp://localhost:5672"),
            "amqp://localhost:5672"
        );
        assert_eq!(
            redact_uri_password("nats://tok@h:4222"),
            "nats://tok@h:4222"
        );
        assert_eq!(
            strip_credentials("nats://a:b@h:4222/x@y"),
            "nats://h:4222/x@y"
        );
        let broker = QueueBroker::RabbitMq {
            uri: "amqp://u:hunter22@h/".to_owned(),
        };
        assert!(!format!("{broker:?}").contains("hunter22"));
        assert_eq!(broker.address(), "amqp://h/");
    }

    #[test]
    fn the_source_names_server_database_and_task() {
        assert_eq!(
            event_source(Some("http://a:8080/"), "Shop", "orders"),
            "http://a:8080/Shop/orders"
        );
        assert_eq!(event_source(None, "Shop", "orders"), "/Shop/orders");
    }

    #[test]
    fn azure_queue_names_are_lowercased_and_checked() {
        assert_eq!(azure_queue_name("Orders").unwrap(), "orders");
        assert_eq!(azure_queue_name("eu-orders-2").unwrap(), "eu-orders-2");
        for bad in [
            "",
            "ab",
            "a_b",
            "-ab",
            "ab-",
            "a--b",
            "ordérs",
            &"a".repeat(64),
        ] {
            assert!(azure_queue_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stream_names_are_checked() {
        assert!(valid_stream_name("ORDERS_1"));
        for bad in ["", "a.b", "a b", "a*", "a>", "a/b"] {
            assert!(!valid_stream_name(bad), "{bad}");
        }
    }
}
