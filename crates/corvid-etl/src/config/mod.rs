//! Connection strings and ETL configurations in RavenDB's JSON shapes, as clients send them
//! and as `GET` answers return them. Unknown fields are accepted (the official clients send
//! fields Corvid does not use yet); `validate` turns them into runtime types.

use serde::{Deserialize, Serialize};

mod olap;
mod queue;

pub use olap::{
    OlapConnectionString, OlapEtlConfig, OlapEtlTable, OlapLocalSettings, OlapS3Settings,
};
pub(crate) use queue::REDACTED_SECRET;
pub use queue::{
    AmazonSqsBasic, AmazonSqsConnectionSettings, AzureQueueStorageConnectionSettings, EtlQueue,
    NatsConnectionSettings, QueueBrokerType, QueueConnectionString, QueueEtlConfig,
    RabbitMqConnectionSettings,
};

/// A named connection string, `Type`-tagged as RavenDB's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Type")]
pub enum ConnectionString {
    Raven(RavenConnectionString),
    Sql(SqlConnectionString),
    Queue(QueueConnectionString),
    Olap(Box<OlapConnectionString>),
}

impl ConnectionString {
    pub fn name(&self) -> &str {
        match self {
            ConnectionString::Raven(it) => &it.name,
            ConnectionString::Sql(it) => &it.name,
            ConnectionString::Queue(it) => &it.name,
            ConnectionString::Olap(it) => &it.name,
        }
    }

    pub fn kind(&self) -> EtlType {
        match self {
            ConnectionString::Raven(_) => EtlType::Raven,
            ConnectionString::Sql(_) => EtlType::Sql,
            ConnectionString::Queue(_) => EtlType::Queue,
            ConnectionString::Olap(_) => EtlType::Olap,
        }
    }

    /// The connection string as `GET` answers show it: passwords replaced by `*****`.
    pub fn redacted(&self) -> ConnectionString {
        let mut redacted = self.clone();
        match &mut redacted {
            ConnectionString::Raven(_) => {}
            ConnectionString::Sql(sql) => {
                sql.connection_string =
                    crate::destinations::sql::connection::redact_password(&sql.connection_string);
            }
            ConnectionString::Queue(queue) => queue.redact_passwords(),
            ConnectionString::Olap(olap) => olap.redact_secrets(),
        }
        redacted
    }
}

/// Where Raven ETL writes: a database on one or more nodes of a RavenDB-protocol cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RavenConnectionString {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Database")]
    pub database: String,
    #[serde(
        rename = "TopologyDiscoveryUrls",
        default,
        deserialize_with = "null_as_default"
    )]
    pub topology_discovery_urls: Vec<String>,
}

/// Where SQL ETL writes: an ADO.NET-style provider name and connection string. `Debug`
/// shows the connection string with its password redacted, so that no log holds it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlConnectionString {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "ConnectionString")]
    pub connection_string: String,
    #[serde(rename = "FactoryName", default)]
    pub factory_name: String,
}

impl std::fmt::Debug for SqlConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlConnectionString")
            .field("name", &self.name)
            .field(
                "connection_string",
                &crate::destinations::sql::connection::redact_password(&self.connection_string),
            )
            .field("factory_name", &self.factory_name)
            .finish()
    }
}

/// RavenDB's `EtlType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EtlType {
    Raven,
    Sql,
    Queue,
    Olap,
}

impl EtlType {
    /// The `OngoingTaskType` name of tasks of this type (`RavenEtl`, `SqlEtl`, `QueueEtl`,
    /// `OlapEtl`).
    pub fn task_type(self) -> &'static str {
        match self {
            EtlType::Raven => "RavenEtl",
            EtlType::Sql => "SqlEtl",
            EtlType::Queue => "QueueEtl",
            EtlType::Olap => "OlapEtl",
        }
    }
}

/// An ETL task: one connection string, one or more transformations, and what its
/// destination type adds ([`EtlDestinationConfig`]). In JSON it is RavenDB's flat shape (a
/// base class plus one subclass per `EtlType`); in memory the per-destination part is a
/// tagged enum, so no code reads a SQL field of a Raven task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "EtlConfigurationJson", into = "EtlConfigurationJson")]
pub struct EtlConfiguration {
    pub task_id: u64,
    pub name: String,
    pub connection_string_name: String,
    pub mentor_node: Option<String>,
    pub pin_to_mentor_node: bool,
    pub allow_etl_on_non_encrypted_channel: bool,
    pub disabled: bool,
    pub transforms: Vec<Transformation>,
    /// What the destination type adds.
    pub destination: EtlDestinationConfig,
}

/// The part of an ETL configuration that depends on its `EtlType`.
#[derive(Debug, Clone, PartialEq)]
pub enum EtlDestinationConfig {
    Raven(RavenEtlConfig),
    Sql(SqlEtlConfig),
    Queue(QueueEtlConfig),
    Olap(OlapEtlConfig),
}

/// What a Raven ETL task adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RavenEtlConfig {
    /// The timeout of one load request, seconds (default 300).
    pub load_request_timeout_in_sec: Option<u64>,
}

/// What a SQL ETL task adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlEtlConfig {
    /// The destination tables.
    pub sql_tables: Option<Vec<SqlEtlTable>>,
    pub parameterize_deletes: Option<bool>,
    pub quote_tables: Option<bool>,
    /// Seconds.
    pub command_timeout: Option<u64>,
    pub force_query_recompile: Option<bool>,
}

impl EtlConfiguration {
    /// RavenDB's `EtlType` of the task.
    pub fn etl_type(&self) -> EtlType {
        match self.destination {
            EtlDestinationConfig::Raven(_) => EtlType::Raven,
            EtlDestinationConfig::Sql(_) => EtlType::Sql,
            EtlDestinationConfig::Queue(_) => EtlType::Queue,
            EtlDestinationConfig::Olap(_) => EtlType::Olap,
        }
    }
}

/// RavenDB's JSON shape of an ETL configuration, as clients send it and answers return it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EtlConfigurationJson {
    /// Absent: SQL when `SqlTables` is given, Raven otherwise.
    #[serde(rename = "EtlType", default)]
    etl_type: Option<EtlType>,
    #[serde(rename = "TaskId", default)]
    task_id: u64,
    #[serde(rename = "Name", default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(
        rename = "ConnectionStringName",
        default,
        deserialize_with = "null_as_default"
    )]
    connection_string_name: String,
    #[serde(rename = "MentorNode", default)]
    mentor_node: Option<String>,
    #[serde(rename = "PinToMentorNode", default)]
    pin_to_mentor_node: bool,
    #[serde(rename = "AllowEtlOnNonEncryptedChannel", default)]
    allow_etl_on_non_encrypted_channel: bool,
    #[serde(rename = "Disabled", default)]
    disabled: bool,
    #[serde(rename = "Transforms", default, deserialize_with = "null_as_default")]
    transforms: Vec<Transformation>,
    #[serde(
        rename = "LoadRequestTimeoutInSec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    load_request_timeout_in_sec: Option<u64>,
    #[serde(rename = "SqlTables", default, skip_serializing_if = "Option::is_none")]
    sql_tables: Option<Vec<SqlEtlTable>>,
    #[serde(
        rename = "ParameterizeDeletes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    parameterize_deletes: Option<bool>,
    #[serde(
        rename = "QuoteTables",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    quote_tables: Option<bool>,
    #[serde(
        rename = "CommandTimeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    command_timeout: Option<u64>,
    #[serde(
        rename = "ForceQueryRecompile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    force_query_recompile: Option<bool>,
    #[serde(
        rename = "BrokerType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    broker_type: Option<QueueBrokerType>,
    #[serde(rename = "Queues", default, skip_serializing_if = "Option::is_none")]
    queues: Option<Vec<EtlQueue>>,
    #[serde(
        rename = "SkipAutomaticQueueDeclaration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    skip_automatic_queue_declaration: Option<bool>,
    #[serde(
        rename = "RunFrequency",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    run_frequency: Option<String>,
    #[serde(
        rename = "CustomPartitionValue",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    custom_partition_value: Option<String>,
    #[serde(
        rename = "OlapTables",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    olap_tables: Option<Vec<OlapEtlTable>>,
    #[serde(rename = "Format", default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    #[serde(
        rename = "EmitDeletes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    emit_deletes: Option<bool>,
}

impl From<EtlConfigurationJson> for EtlConfiguration {
    fn from(json: EtlConfigurationJson) -> Self {
        let etl_type = json.etl_type.unwrap_or(if json.sql_tables.is_some() {
            EtlType::Sql
        } else if json.broker_type.is_some() {
            EtlType::Queue
        } else if json.run_frequency.is_some() || json.olap_tables.is_some() {
            EtlType::Olap
        } else {
            EtlType::Raven
        });
        let destination = match etl_type {
            EtlType::Raven => EtlDestinationConfig::Raven(RavenEtlConfig {
                load_request_timeout_in_sec: json.load_request_timeout_in_sec,
            }),
            EtlType::Sql => EtlDestinationConfig::Sql(SqlEtlConfig {
                sql_tables: json.sql_tables,
                parameterize_deletes: json.parameterize_deletes,
                quote_tables: json.quote_tables,
                command_timeout: json.command_timeout,
                force_query_recompile: json.force_query_recompile,
            }),
            EtlType::Queue => EtlDestinationConfig::Queue(QueueEtlConfig {
                broker_type: json.broker_type,
                queues: json.queues,
                skip_automatic_queue_declaration: json.skip_automatic_queue_declaration,
            }),
            EtlType::Olap => EtlDestinationConfig::Olap(OlapEtlConfig {
                run_frequency: json.run_frequency,
                custom_partition_value: json.custom_partition_value,
                olap_tables: json.olap_tables,
                format: json.format,
                emit_deletes: json.emit_deletes,
            }),
        };
        EtlConfiguration {
            task_id: json.task_id,
            name: json.name,
            connection_string_name: json.connection_string_name,
            mentor_node: json.mentor_node,
            pin_to_mentor_node: json.pin_to_mentor_node,
            allow_etl_on_non_encrypted_channel: json.allow_etl_on_non_encrypted_channel,
            disabled: json.disabled,
            transforms: json.transforms,
            destination,
        }
    }
}

impl From<EtlConfiguration> for EtlConfigurationJson {
    fn from(config: EtlConfiguration) -> Self {
        let mut json = EtlConfigurationJson {
            etl_type: Some(config.etl_type()),
            task_id: config.task_id,
            name: config.name,
            connection_string_name: config.connection_string_name,
            mentor_node: config.mentor_node,
            pin_to_mentor_node: config.pin_to_mentor_node,
            allow_etl_on_non_encrypted_channel: config.allow_etl_on_non_encrypted_channel,
            disabled: config.disabled,
            transforms: config.transforms,
            load_request_timeout_in_sec: None,
            sql_tables: None,
            parameterize_deletes: None,
            quote_tables: None,
            command_timeout: None,
            force_query_recompile: None,
            broker_type: None,
            queues: None,
            skip_automatic_queue_declaration: None,
            run_frequency: None,
            custom_partition_value: None,
            olap_tables: None,
            format: None,
            emit_deletes: None,
        };
        match config.destination {
            EtlDestinationConfig::Raven(raven) => {
                json.load_request_timeout_in_sec = raven.load_request_timeout_in_sec;
            }
            EtlDestinationConfig::Sql(sql) => {
                json.sql_tables = sql.sql_tables;
                json.parameterize_deletes = sql.parameterize_deletes;
                json.quote_tables = sql.quote_tables;
                json.command_timeout = sql.command_timeout;
                json.force_query_recompile = sql.force_query_recompile;
            }
            EtlDestinationConfig::Queue(queue) => {
                json.broker_type = queue.broker_type;
                json.queues = queue.queues;
                json.skip_automatic_queue_declaration = queue.skip_automatic_queue_declaration;
            }
            EtlDestinationConfig::Olap(olap) => {
                json.run_frequency = olap.run_frequency;
                json.custom_partition_value = olap.custom_partition_value;
                json.olap_tables = olap.olap_tables;
                json.format = olap.format;
                json.emit_deletes = olap.emit_deletes;
            }
        }
        json
    }
}

/// The official clients send `null` for an unset string or list (`"Script": null` is an
/// empty script); treat it as the default.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// One script of a task, run by its own ETL process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transformation {
    #[serde(rename = "Name", default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(rename = "Collections", default, deserialize_with = "null_as_default")]
    pub collections: Vec<String>,
    #[serde(rename = "ApplyToAllDocuments", default)]
    pub apply_to_all_documents: bool,
    #[serde(rename = "Script", default, deserialize_with = "null_as_default")]
    pub script: String,
    #[serde(rename = "Disabled", default)]
    pub disabled: bool,
    #[serde(
        rename = "DocumentIdPostfix",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub document_id_postfix: Option<String>,
}

/// A SQL ETL destination table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlEtlTable {
    #[serde(rename = "TableName")]
    pub table_name: String,
    #[serde(rename = "DocumentIdColumn")]
    pub document_id_column: String,
    #[serde(rename = "InsertOnlyMode", default)]
    pub insert_only_mode: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_from_official_clients_mean_defaults() {
        let config: EtlConfiguration = serde_json::from_str(
            r#"{"EtlType":"Raven","Name":"t1","TaskId":0,"ConnectionStringName":"cs","MentorNode":null,
                "Transforms":[{"Name":"script1","Disabled":false,"Collections":["Users"],
                "ApplyToAllDocuments":false,"Script":null,"DocumentIdPostfix":null}],
                "Disabled":false,"LoadRequestTimeoutInSec":null}"#,
        )
        .unwrap();
        assert_eq!(config.transforms[0].script, "");
        assert_eq!(
            config.destination,
            EtlDestinationConfig::Raven(RavenEtlConfig::default())
        );
    }

    #[test]
    fn the_json_shape_is_ravendbs_flat_one_and_round_trips() {
        let text = r#"{"EtlType":"Sql","TaskId":7,"Name":"t","ConnectionStringName":"cs","MentorNode":null,"PinToMentorNode":false,"AllowEtlOnNonEncryptedChannel":false,"Disabled":false,"Transforms":[],"SqlTables":[{"TableName":"Orders","DocumentIdColumn":"Id","InsertOnlyMode":false}],"QuoteTables":false}"#;
        let config: EtlConfiguration = serde_json::from_str(text).unwrap();
        let EtlDestinationConfig::Sql(sql) = &config.destination else {
            panic!("expected SQL: {config:?}");
        };
        assert_eq!(sql.quote_tables, Some(false));
        assert_eq!(serde_json::to_string(&config).unwrap(), text);
        // Without `EtlType`: SQL when it names tables, Raven otherwise.
        let untyped: EtlConfiguration =
            serde_json::from_str(r#"{"Name":"t","SqlTables":[]}"#).unwrap();
        assert_eq!(untyped.etl_type(), EtlType::Sql);
        let untyped: EtlConfiguration = serde_json::from_str(r#"{"Name":"t"}"#).unwrap();
        assert_eq!(untyped.etl_type(), EtlType::Raven);
    }

    #[test]
    fn debug_never_shows_a_password() {
        let sql = SqlConnectionString {
            name: "pg".to_owned(),
            connection_string: "Host=h;Database=d;Password=hunter22".to_owned(),
            factory_name: "Npgsql".to_owned(),
        };
        let shown = format!("{sql:?} {:?}", ConnectionString::Sql(sql.clone()));
        assert!(!shown.contains("hunter22"), "{shown}");
        let queue: ConnectionString = serde_json::from_str(
            r#"{"Type":"Queue","Name":"q","BrokerType":"RabbitMq",
                "RabbitMqConnectionSettings":{"ConnectionString":"amqp://u:hunter22@h:5672/"},
                "NatsConnectionSettings":{"Servers":["nats://a:hunter22@n:4222"]}}"#,
        )
        .unwrap();
        let shown = format!(
            "{queue:?} {}",
            serde_json::to_string(&queue.redacted()).unwrap()
        );
        assert!(!shown.contains("hunter22"), "{shown}");
        assert!(shown.contains("amqp://u:*****@h:5672/"), "{shown}");
        let azure: ConnectionString = serde_json::from_str(
            r#"{"Type":"Queue","Name":"a","BrokerType":"AzureQueueStorage",
                "AzureQueueStorageConnectionSettings":{"ConnectionString":"AccountName=a;AccountKey=aHVudGVyMjI=",
                  "EntraId":{"StorageAccountName":"a","TenantId":"t","ClientId":"c","ClientSecret":"hunter22"},
                  "Passwordless":null}}"#,
        )
        .unwrap();
        let shown = format!(
            "{azure:?} {}",
            serde_json::to_string(&azure.redacted()).unwrap()
        );
        assert!(
            !shown.contains("aHVudGVyMjI=") && !shown.contains("hunter22"),
            "{shown}"
        );
        assert!(shown.contains("AccountName=a;AccountKey=*****"), "{shown}");
        // RavenDB's clients send the forms not taken as null: absent once stored.
        assert!(!shown.contains("Passwordless"), "{shown}");
    }

    #[test]
    fn queue_etl_has_ravendbs_json_shape() {
        let text = r#"{"EtlType":"Queue","TaskId":3,"Name":"q","ConnectionStringName":"cs","MentorNode":null,"PinToMentorNode":false,"AllowEtlOnNonEncryptedChannel":false,"Disabled":false,"Transforms":[],"BrokerType":"RabbitMq","Queues":[{"Name":"Orders","DeleteProcessedDocuments":true,"SendDeletes":false}],"SkipAutomaticQueueDeclaration":true}"#;
        let config: EtlConfiguration = serde_json::from_str(text).unwrap();
        let EtlDestinationConfig::Queue(queue) = &config.destination else {
            panic!("expected Queue: {config:?}");
        };
        assert_eq!(queue.broker_type, Some(QueueBrokerType::RabbitMq));
        assert_eq!(config.etl_type().task_type(), "QueueEtl");
        assert_eq!(serde_json::to_string(&config).unwrap(), text);
        let odd: QueueBrokerType = serde_json::from_str(r#""Zmq""#).unwrap();
        assert_eq!(odd, QueueBrokerType::Unknown("Zmq".to_owned()));
    }
}
