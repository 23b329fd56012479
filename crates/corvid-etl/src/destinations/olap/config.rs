//! OLAP ETL's configuration: the connection string's checks, the validated destination
//! (where files go, the tables' id columns, the schedule), what OLAP ETL asks of a script,
//! and what it supplies to the generic engine once bound to a process.

use std::collections::HashMap;
use std::sync::Arc;

use corvid_script::{OlapScriptOptions, ScriptOptions};

use crate::config::{OlapConnectionString, OlapEtlConfig, OlapEtlTable};
use crate::destination::{Destination, LoadError, Schedule};
use crate::destinations::olap::encoder::{
    DEFAULT_ID_COLUMN, DELETED_COLUMN, EncodeSettings, LAST_MODIFIED_COLUMN, OlapBatch, OlapEncoder,
};
use crate::destinations::olap::loader::{FileNames, OlapLoader};
use crate::destinations::olap::s3::S3Target;
use crate::destinations::olap::schedule::RunSchedule;
use crate::destinations::olap::storage::OlapStorage;
use crate::options::EtlOptions;
use crate::validate::{ConfigError, ValidatedTransform};

/// Where an OLAP task's files go. `Debug` hides the secret key (as `S3Target`'s does).
#[derive(Debug, Clone, PartialEq)]
pub enum OlapTarget {
    /// `LocalSettings.FolderPath`, as written (resolved in the server's OLAP directory when
    /// the process starts).
    Local {
        folder_path: String,
    },
    S3(Box<S3Target>),
}

impl OlapTarget {
    /// Where files go, without credentials (`/tasks`' `Url`, the claim's identity).
    pub fn address(&self) -> String {
        match self {
            OlapTarget::Local { folder_path } => folder_path.clone(),
            OlapTarget::S3(s3) => {
                let mut res = format!("s3://{}", s3.bucket);
                if !s3.remote_folder.is_empty() {
                    res.push('/');
                    res.push_str(s3.remote_folder.trim_matches('/'));
                }
                if let Some(server) = &s3.custom_server_url {
                    res.push_str(&format!(" ({server})"));
                }
                res
            }
        }
    }
}

/// A validated OLAP ETL destination.
#[derive(Debug, Clone, PartialEq)]
pub struct OlapDestination {
    pub target: OlapTarget,
    pub tables: Vec<OlapEtlTable>,
    pub custom_partition_value: Option<String>,
    pub emit_deletes: bool,
    pub run_frequency: String,
    schedule: RunSchedule,
    task_name: String,
}

/// Checks an OLAP connection string on its own; the reason is for the user.
pub(crate) fn check_connection_string(connection: &OlapConnectionString) -> Result<(), String> {
    target_of(connection).map(|_| ())
}

fn target_of(connection: &OlapConnectionString) -> Result<OlapTarget, String> {
    for (name, value) in [
        ("GlacierSettings", &connection.glacier_settings),
        ("AzureSettings", &connection.azure_settings),
        ("GoogleCloudSettings", &connection.google_cloud_settings),
        ("FtpSettings", &connection.ftp_settings),
    ] {
        if value.as_ref().is_some_and(|it| !it.is_null()) {
            return Err(format!(
                "`{name}` is not supported yet: OLAP ETL writes to `LocalSettings` or `S3Settings`"
            ));
        }
    }
    match (&connection.local_settings, &connection.s3_settings) {
        (Some(_), Some(_)) => {
            Err("give either `LocalSettings` or `S3Settings`, not both".to_owned())
        }
        (None, None) => {
            Err("give `LocalSettings` (a folder) or `S3Settings` (a bucket)".to_owned())
        }
        (Some(local), None) => {
            if local.folder_path.trim().is_empty() {
                return Err("`LocalSettings.FolderPath` is empty".to_owned());
            }
            if local.folder_path.contains('\0') {
                return Err("`LocalSettings.FolderPath` holds a NUL character".to_owned());
            }
            Ok(OlapTarget::Local {
                folder_path: local.folder_path.clone(),
            })
        }
        (None, Some(s3)) => {
            for (name, value) in [
                ("AwsAccessKey", &s3.aws_access_key),
                ("AwsSecretKey", &s3.aws_secret_key),
                ("AwsRegionName", &s3.aws_region_name),
                ("BucketName", &s3.bucket_name),
            ] {
                if value.trim().is_empty() {
                    return Err(format!("`S3Settings.{name}` is empty"));
                }
            }
            if !valid_bucket_name(&s3.bucket_name) {
                return Err(format!(
                    "`S3Settings.BucketName` `{}` is not a valid bucket name (3 to 63 lower-case letters, digits, dots and hyphens)",
                    s3.bucket_name
                ));
            }
            let custom_server_url = match s3.custom_server_url.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(url) => {
                    if !(url.starts_with("http://") || url.starts_with("https://"))
                        || url.contains(char::is_whitespace)
                    {
                        return Err(format!(
                            "`S3Settings.CustomServerUrl` `{url}` is not an http:// or https:// URL"
                        ));
                    }
                    Some(url.trim_end_matches('/').to_owned())
                }
            };
            Ok(OlapTarget::S3(Box::new(S3Target {
                access_key: s3.aws_access_key.trim().to_owned(),
                secret_key: s3.aws_secret_key.clone(),
                session_token: s3.aws_session_token.clone().filter(|it| !it.is_empty()),
                region: s3.aws_region_name.trim().to_owned(),
                bucket: s3.bucket_name.clone(),
                remote_folder: s3.remote_folder_name.trim_matches('/').to_owned(),
                custom_server_url,
                force_path_style: s3.force_path_style,
            })))
        }
    }
}

fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

impl OlapDestination {
    pub(crate) fn build(
        connection: &OlapConnectionString,
        config: &OlapEtlConfig,
        task_name: &str,
    ) -> Result<OlapDestination, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidOlapEtl {
            task: task_name.to_owned(),
            reason,
        };
        let target =
            target_of(connection).map_err(|reason| ConfigError::InvalidConnectionString {
                name: connection.name.clone(),
                reason,
            })?;
        if let Some(format) = config.format.as_deref()
            && !format.eq_ignore_ascii_case("parquet")
        {
            return Err(invalid(format!(
                "`Format` `{format}` is not supported: OLAP ETL writes Parquet"
            )));
        }
        let run_frequency = config
            .run_frequency
            .as_deref()
            .map(str::trim)
            .filter(|it| !it.is_empty())
            .ok_or_else(|| {
                invalid(
                    "`RunFrequency` is empty: give a cron expression such as `*/5 * * * *`"
                        .to_owned(),
                )
            })?;
        let schedule = RunSchedule::parse(run_frequency).map_err(invalid)?;
        let tables = config.olap_tables.clone().unwrap_or_default();
        for (idx, table) in tables.iter().enumerate() {
            if table.table_name.trim().is_empty() {
                return Err(invalid(
                    "a table of `OlapTables` has an empty `TableName`".to_owned(),
                ));
            }
            if tables[..idx]
                .iter()
                .any(|it| it.table_name == table.table_name)
            {
                return Err(invalid(format!(
                    "table `{}` is listed more than once in `OlapTables`",
                    table.table_name
                )));
            }
            let column = &table.document_id_column;
            if column == LAST_MODIFIED_COLUMN || column == DELETED_COLUMN {
                return Err(invalid(format!(
                    "table `{}`: `DocumentIdColumn` `{column}` is a column OLAP ETL writes itself",
                    table.table_name
                )));
            }
        }
        Ok(OlapDestination {
            target,
            tables,
            custom_partition_value: config.custom_partition_value.clone(),
            emit_deletes: config.emit_deletes.unwrap_or(false),
            run_frequency: run_frequency.to_owned(),
            schedule,
            task_name: task_name.to_owned(),
        })
    }

    /// What OLAP ETL asks of a script beyond what every script must be.
    pub(crate) fn check_transform(
        &self,
        transform: &ValidatedTransform,
    ) -> Result<(), ConfigError> {
        let not_supported = |feature: &'static str| ConfigError::NotSupportedByOlap {
            transform: transform.name.clone(),
            feature,
        };
        let analysis = &transform.analysis;
        if analysis.is_empty {
            return Err(not_supported(
                "an empty script (write rows with `loadTo<Table>(partitionBy(…), obj)`)",
            ));
        }
        if analysis.uses_add_attachment || analysis.uses_load_attachment {
            return Err(not_supported("attachments"));
        }
        Ok(())
    }

    /// The script options of its transformations: OLAP's `loadTo` (key first, then the
    /// object), `partitionBy`, `noPartition`, `$customPartitionValue`; members as values.
    pub(crate) fn script_options(&self, base: &ScriptOptions) -> ScriptOptions {
        ScriptOptions {
            load_as_values: true,
            olap: Some(OlapScriptOptions {
                custom_partition_value: self.custom_partition_value.clone(),
            }),
            ..base.clone()
        }
    }

    /// What the encoder needs for a transformation.
    pub(crate) fn encode_settings(&self, transform: &ValidatedTransform) -> EncodeSettings {
        let id_columns: HashMap<String, String> = self
            .tables
            .iter()
            .map(|it| {
                let column = if it.document_id_column.trim().is_empty() {
                    DEFAULT_ID_COLUMN.to_owned()
                } else {
                    it.document_id_column.clone()
                };
                (it.table_name.clone(), column)
            })
            .collect();
        let mut delete_tables: Vec<String> = transform.analysis.load_targets.clone();
        for table in &self.tables {
            if !delete_tables.contains(&table.table_name) {
                delete_tables.push(table.table_name.clone());
            }
        }
        delete_tables.retain(|it| !it.is_empty());
        EncodeSettings {
            id_columns,
            emit_deletes: self.emit_deletes,
            delete_tables,
        }
    }

    /// Binds the destination to one process: the names of its files, and where it stages them.
    pub(crate) fn for_process(
        &self,
        database: &str,
        transform: &ValidatedTransform,
    ) -> OlapProcess {
        OlapProcess {
            settings: Arc::new(self.encode_settings(transform)),
            destination: self.clone(),
            database: database.to_owned(),
            transform: transform.name.clone(),
        }
    }

    /// The storage files go to, for a process (or the test endpoint) of `database`.
    pub(crate) fn storage(
        &self,
        options: &EtlOptions,
        database: &str,
        transform: &str,
    ) -> Result<OlapStorage, LoadError> {
        match &self.target {
            OlapTarget::Local { folder_path } => {
                let folder = options
                    .olap
                    .resolve(folder_path)
                    .map_err(|message| LoadError::Configuration { message })?;
                Ok(OlapStorage::local(folder))
            }
            OlapTarget::S3(s3) => OlapStorage::s3(
                S3Target::clone(s3),
                options
                    .olap
                    .staging_for(database, &self.task_name, transform),
            ),
        }
    }

    /// The names of a process's files.
    pub(crate) fn file_names(&self, database: &str, transform: &str) -> FileNames {
        FileNames::new(database, &self.task_name, transform)
    }
}

/// An OLAP ETL destination bound to one process.
pub(crate) struct OlapProcess {
    destination: OlapDestination,
    settings: Arc<EncodeSettings>,
    database: String,
    transform: String,
}

impl Destination for OlapProcess {
    type Batch = OlapBatch;
    type Encoder = OlapEncoder;
    type Loader = OlapLoader;

    fn script_options(&self, base: &ScriptOptions) -> ScriptOptions {
        self.destination.script_options(base)
    }

    fn new_encoder(&self) -> OlapEncoder {
        OlapEncoder::new(self.settings.clone())
    }

    fn new_loader(&self, options: &EtlOptions) -> Result<OlapLoader, LoadError> {
        let storage = self
            .destination
            .storage(options, &self.database, &self.transform)?;
        Ok(OlapLoader::new(
            storage,
            self.destination.file_names(&self.database, &self.transform),
            self.settings.clone(),
        ))
    }

    fn identity(&self) -> String {
        format!("olap:{}", self.destination.target.address())
    }

    fn schedule(&self) -> Schedule {
        let schedule = self.destination.schedule.clone();
        Schedule::Runs(Arc::new(move |after| schedule.next_after(after)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(json: &str) -> OlapConnectionString {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn connection_strings_name_what_is_wrong() {
        for (json, expected) in [
            (r#"{"Name":"c"}"#, "give `LocalSettings`"),
            (
                r#"{"Name":"c","LocalSettings":{"FolderPath":" "}}"#,
                "FolderPath` is empty",
            ),
            (
                r#"{"Name":"c","LocalSettings":{"FolderPath":"x"},"AzureSettings":{"StorageContainer":"c"}}"#,
                "`AzureSettings` is not supported",
            ),
            (
                r#"{"Name":"c","S3Settings":{"AwsAccessKey":"a","AwsSecretKey":"s","AwsRegionName":"r","BucketName":"Bad_Bucket"}}"#,
                "not a valid bucket name",
            ),
            (
                r#"{"Name":"c","S3Settings":{"AwsAccessKey":"a","AwsSecretKey":"","AwsRegionName":"r","BucketName":"b-1"}}"#,
                "AwsSecretKey` is empty",
            ),
            (
                r#"{"Name":"c","S3Settings":{"AwsAccessKey":"a","AwsSecretKey":"s","AwsRegionName":"r","BucketName":"b-1","CustomServerUrl":"ftp://x"}}"#,
                "not an http",
            ),
        ] {
            let error = check_connection_string(&connection(json)).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
        check_connection_string(&connection(
            r#"{"Name":"c","LocalSettings":{"FolderPath":"lake"},"AzureSettings":null}"#,
        ))
        .unwrap();
    }

    #[test]
    fn tasks_are_checked_when_saved() {
        let local = connection(r#"{"Name":"c","LocalSettings":{"FolderPath":"lake"}}"#);
        let config = |json: &str| -> OlapEtlConfig {
            let config: crate::config::EtlConfiguration = serde_json::from_str(json).unwrap();
            match config.destination {
                crate::config::EtlDestinationConfig::Olap(it) => it,
                other => panic!("{other:?}"),
            }
        };
        for (json, expected) in [
            (
                r#"{"EtlType":"Olap","RunFrequency":""}"#,
                "`RunFrequency` is empty",
            ),
            (
                r#"{"EtlType":"Olap","RunFrequency":"61 * * * *"}"#,
                "minute `61`",
            ),
            (
                r#"{"EtlType":"Olap","RunFrequency":"* * * * *","Format":"Csv"}"#,
                "`Format` `Csv`",
            ),
            (
                r#"{"EtlType":"Olap","RunFrequency":"* * * * *","OlapTables":[{"TableName":"T","DocumentIdColumn":"_deleted"}]}"#,
                "writes itself",
            ),
        ] {
            let error = OlapDestination::build(&local, &config(json), "t").unwrap_err();
            assert!(error.to_string().contains(expected), "{json}: {error}");
        }
        let built = OlapDestination::build(
            &local,
            &config(r#"{"EtlType":"Olap","RunFrequency":"*/5 * * * *"}"#),
            "t",
        )
        .unwrap();
        assert_eq!(built.target.address(), "lake");
    }
}
