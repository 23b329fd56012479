//! Connection strings and ETL configurations in RavenDB's JSON shapes, as clients send them
//! and as `GET` answers return them. Unknown fields are accepted (the official clients send
//! fields Corvid does not use yet); `validate` turns them into runtime types.

use serde::{Deserialize, Serialize};

/// A named connection string, `Type`-tagged as RavenDB's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Type")]
pub enum ConnectionString {
    Raven(RavenConnectionString),
    Sql(SqlConnectionString),
}

impl ConnectionString {
    pub fn name(&self) -> &str {
        match self {
            ConnectionString::Raven(it) => &it.name,
            ConnectionString::Sql(it) => &it.name,
        }
    }

    pub fn kind(&self) -> EtlType {
        match self {
            ConnectionString::Raven(_) => EtlType::Raven,
            ConnectionString::Sql(_) => EtlType::Sql,
        }
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

/// Where SQL ETL writes: an ADO.NET-style provider name and connection string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlConnectionString {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "ConnectionString")]
    pub connection_string: String,
    #[serde(rename = "FactoryName", default)]
    pub factory_name: String,
}

/// RavenDB's `EtlType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EtlType {
    Raven,
    Sql,
}

impl EtlType {
    /// The `OngoingTaskType` name of tasks of this type (`RavenEtl`, `SqlEtl`).
    pub fn task_type(self) -> &'static str {
        match self {
            EtlType::Raven => "RavenEtl",
            EtlType::Sql => "SqlEtl",
        }
    }
}

/// An ETL task: one connection string, one or more transformations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtlConfiguration {
    #[serde(rename = "EtlType", default = "default_etl_type")]
    pub etl_type: EtlType,
    #[serde(rename = "TaskId", default)]
    pub task_id: u64,
    #[serde(rename = "Name", default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(
        rename = "ConnectionStringName",
        default,
        deserialize_with = "null_as_default"
    )]
    pub connection_string_name: String,
    #[serde(rename = "MentorNode", default)]
    pub mentor_node: Option<String>,
    #[serde(rename = "PinToMentorNode", default)]
    pub pin_to_mentor_node: bool,
    #[serde(rename = "AllowEtlOnNonEncryptedChannel", default)]
    pub allow_etl_on_non_encrypted_channel: bool,
    #[serde(rename = "Disabled", default)]
    pub disabled: bool,
    #[serde(rename = "Transforms", default, deserialize_with = "null_as_default")]
    pub transforms: Vec<Transformation>,
    /// Raven ETL: the timeout of one load request, seconds (default 300).
    #[serde(
        rename = "LoadRequestTimeoutInSec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub load_request_timeout_in_sec: Option<u64>,
    /// SQL ETL: the destination tables.
    #[serde(rename = "SqlTables", default, skip_serializing_if = "Option::is_none")]
    pub sql_tables: Option<Vec<SqlEtlTable>>,
    #[serde(
        rename = "ParameterizeDeletes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub parameterize_deletes: Option<bool>,
    #[serde(
        rename = "QuoteTables",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub quote_tables: Option<bool>,
    #[serde(
        rename = "CommandTimeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub command_timeout: Option<u64>,
    #[serde(
        rename = "ForceQueryRecompile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub force_query_recompile: Option<bool>,
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

fn default_etl_type() -> EtlType {
    EtlType::Raven
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
        assert_eq!(config.load_request_timeout_in_sec, None);
    }
}
