//! OLAP ETL's connection strings and task settings, in RavenDB's JSON shapes
//! (`OlapConnectionString`, `OlapEtlConfiguration`), plus Corvid's `EmitDeletes`.

use serde::{Deserialize, Serialize};

use super::{REDACTED_SECRET, null_as_default};

/// What an OLAP ETL task adds (RavenDB's `OlapEtlConfiguration`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OlapEtlConfig {
    /// A cron expression (five fields, UTC): when runs start. A run also starts when the task
    /// is saved, reset or started.
    pub run_frequency: Option<String>,
    /// `$customPartitionValue` in scripts.
    pub custom_partition_value: Option<String>,
    /// Per-table settings (the id column's name); a table the script loads to need not be
    /// listed.
    pub olap_tables: Option<Vec<OlapEtlTable>>,
    /// `Parquet`, the only format (RavenDB's too).
    pub format: Option<String>,
    /// Corvid's: a deleted document writes a row with `_deleted = true` to every table of
    /// the transformation, so readers can compute the current state.
    pub emit_deletes: Option<bool>,
}

/// The settings of one table of an OLAP ETL task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OlapEtlTable {
    #[serde(rename = "TableName", default, deserialize_with = "null_as_default")]
    pub table_name: String,
    /// The name of the document id column (`_id` when empty).
    #[serde(
        rename = "DocumentIdColumn",
        default,
        deserialize_with = "null_as_default"
    )]
    pub document_id_column: String,
}

/// Where OLAP ETL writes its files: a local folder or an S3 bucket (RavenDB's
/// `OlapConnectionString`; its Glacier, Azure, Google Cloud and FTP settings are refused when
/// saved). `Debug` hides the secret key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OlapConnectionString {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(
        rename = "LocalSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub local_settings: Option<OlapLocalSettings>,
    #[serde(
        rename = "S3Settings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_settings: Option<OlapS3Settings>,
    #[serde(
        rename = "GlacierSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub glacier_settings: Option<serde_json::Value>,
    #[serde(
        rename = "AzureSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub azure_settings: Option<serde_json::Value>,
    #[serde(
        rename = "GoogleCloudSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub google_cloud_settings: Option<serde_json::Value>,
    #[serde(
        rename = "FtpSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ftp_settings: Option<serde_json::Value>,
}

/// A folder on the server's machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OlapLocalSettings {
    /// Relative paths are under the server's OLAP directory (`--olap-dir`).
    #[serde(rename = "FolderPath", default, deserialize_with = "null_as_default")]
    pub folder_path: String,
}

/// An S3 bucket, at AWS or an S3-compatible server.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OlapS3Settings {
    #[serde(rename = "AwsAccessKey", default, deserialize_with = "null_as_default")]
    pub aws_access_key: String,
    /// Shown as `*****`; sent back as `*****`, the stored key is kept.
    #[serde(rename = "AwsSecretKey", default, deserialize_with = "null_as_default")]
    pub aws_secret_key: String,
    #[serde(
        rename = "AwsSessionToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aws_session_token: Option<String>,
    #[serde(
        rename = "AwsRegionName",
        default,
        deserialize_with = "null_as_default"
    )]
    pub aws_region_name: String,
    #[serde(rename = "BucketName", default, deserialize_with = "null_as_default")]
    pub bucket_name: String,
    /// A prefix inside the bucket.
    #[serde(
        rename = "RemoteFolderName",
        default,
        deserialize_with = "null_as_default"
    )]
    pub remote_folder_name: String,
    /// An S3-compatible server instead of AWS.
    #[serde(
        rename = "CustomServerUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_server_url: Option<String>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key`.
    #[serde(rename = "ForcePathStyle", default)]
    pub force_path_style: bool,
}

impl OlapConnectionString {
    /// Replaces the secret key (and session token) by `*****`.
    pub(crate) fn redact_secrets(&mut self) {
        if let Some(s3) = &mut self.s3_settings {
            if !s3.aws_secret_key.is_empty() {
                s3.aws_secret_key = REDACTED_SECRET.to_owned();
            }
            if let Some(token) = &mut s3.aws_session_token {
                *token = REDACTED_SECRET.to_owned();
            }
        }
    }

    /// A secret sent back as `*****` keeps the stored one, for the same access key, region,
    /// bucket and server only (so that a redacted key is never sent somewhere else).
    pub fn restore_secrets(&mut self, stored: &OlapConnectionString) -> Result<(), String> {
        let Some(s3) = &mut self.s3_settings else {
            return Ok(());
        };
        let secret_redacted = s3.aws_secret_key == REDACTED_SECRET;
        let token_redacted = s3.aws_session_token.as_deref() == Some(REDACTED_SECRET);
        if !secret_redacted && !token_redacted {
            return Ok(());
        }
        let same = stored.s3_settings.as_ref().filter(|it| {
            it.aws_access_key == s3.aws_access_key
                && it.aws_region_name == s3.aws_region_name
                && it.bucket_name == s3.bucket_name
                && it.custom_server_url == s3.custom_server_url
        });
        let Some(same) = same else {
            return Err("`AwsSecretKey` is `*****`: type the secret key again (the access key, region, bucket or server changed)".to_owned());
        };
        if secret_redacted {
            s3.aws_secret_key = same.aws_secret_key.clone();
        }
        if token_redacted {
            s3.aws_session_token = same.aws_session_token.clone();
        }
        Ok(())
    }
}

impl std::fmt::Debug for OlapConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OlapConnectionString")
            .field("name", &self.name)
            .field("local_settings", &self.local_settings)
            .field("s3_settings", &self.s3_settings)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OlapS3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OlapS3Settings")
            .field("aws_access_key", &self.aws_access_key)
            .field("aws_secret_key", &REDACTED_SECRET)
            .field("aws_region_name", &self.aws_region_name)
            .field("bucket_name", &self.bucket_name)
            .field("remote_folder_name", &self.remote_folder_name)
            .field("custom_server_url", &self.custom_server_url)
            .field("force_path_style", &self.force_path_style)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConnectionString, EtlConfiguration, EtlDestinationConfig, EtlType};

    #[test]
    fn olap_etl_has_ravendbs_json_shape() {
        let text = r#"{"EtlType":"Olap","TaskId":4,"Name":"o","ConnectionStringName":"cs","MentorNode":null,"PinToMentorNode":false,"AllowEtlOnNonEncryptedChannel":false,"Disabled":false,"Transforms":[],"RunFrequency":"*/5 * * * *","CustomPartitionValue":"eu","OlapTables":[{"TableName":"Orders","DocumentIdColumn":"OrderId"}],"Format":"Parquet","EmitDeletes":true}"#;
        let config: EtlConfiguration = serde_json::from_str(text).unwrap();
        let EtlDestinationConfig::Olap(olap) = &config.destination else {
            panic!("expected OLAP: {config:?}");
        };
        assert_eq!(olap.run_frequency.as_deref(), Some("*/5 * * * *"));
        assert_eq!(config.etl_type(), EtlType::Olap);
        assert_eq!(config.etl_type().task_type(), "OlapEtl");
        assert_eq!(serde_json::to_string(&config).unwrap(), text);
        // Without `EtlType`: OLAP when it has a run frequency.
        let untyped: EtlConfiguration =
            serde_json::from_str(r#"{"Name":"t","RunFrequency":"* * * * *"}"#).unwrap();
        assert_eq!(untyped.etl_type(), EtlType::Olap);
    }

    #[test]
    fn the_secret_key_is_never_shown_and_restored_only_for_the_same_bucket() {
        let connection: ConnectionString = serde_json::from_str(
            r#"{"Type":"Olap","Name":"lake","S3Settings":{"AwsAccessKey":"AK","AwsSecretKey":"hunter22",
                "AwsRegionName":"us-east-1","BucketName":"b","RemoteFolderName":"r",
                "CustomServerUrl":"http://127.0.0.1:4566","ForcePathStyle":true},"AzureSettings":null}"#,
        )
        .unwrap();
        let shown = format!(
            "{connection:?} {}",
            serde_json::to_string(&connection.redacted()).unwrap()
        );
        assert!(!shown.contains("hunter22"), "{shown}");
        let ConnectionString::Olap(stored) = &connection else {
            panic!("expected OLAP");
        };
        let ConnectionString::Olap(mut sent) = connection.redacted() else {
            panic!("expected OLAP");
        };
        sent.restore_secrets(stored).unwrap();
        assert_eq!(sent, *stored);
        let ConnectionString::Olap(mut moved) = connection.redacted() else {
            panic!("expected OLAP");
        };
        moved.s3_settings.as_mut().unwrap().bucket_name = "other".to_owned();
        assert!(moved.restore_secrets(stored).is_err());
    }
}
