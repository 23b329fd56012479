//! Amazon SQS connection settings: `AmazonSqsConnectionSettings` checked into
//! [`SqsSettings`] (credentials, region, endpoint) with messages naming the field, and the
//! queue names SQS takes.

use crate::config::AmazonSqsConnectionSettings;

/// The credentials used with `UseEmulator` when none are given (emulators accept any).
const EMULATOR_CREDENTIAL: &str = "test";
const EMULATOR_REGION: &str = "us-east-1";
/// The longest queue name, `.fifo` included.
const MAX_QUEUE_NAME_CHARS: usize = 80;

/// Where an SQS Queue ETL task sends, validated. `Debug` hides the secret key.
#[derive(Clone, PartialEq)]
pub struct SqsSettings {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub endpoint: SqsEndpoint,
}

/// The endpoint requests go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqsEndpoint {
    /// `https://sqs.{region}.amazonaws.com`.
    Aws,
    /// The connection string's `ServiceUrl`.
    ServiceUrl(String),
    /// `UseEmulator`: the server's `RAVEN_AMAZON_SQS_EMULATOR_URL`.
    Emulator,
}

impl std::fmt::Debug for SqsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsSettings")
            .field("access_key", &self.access_key)
            .field("secret_key", &crate::config::REDACTED_SECRET)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl SqsSettings {
    /// Checks `AmazonSqsConnectionSettings`; the reason is for the user.
    pub(crate) fn from_connection_string(
        settings: Option<&AmazonSqsConnectionSettings>,
    ) -> Result<SqsSettings, String> {
        let Some(settings) = settings else {
            return Err("`AmazonSqsConnectionSettings` must be given".to_owned());
        };
        if settings.passwordless {
            if settings.basic.is_some() {
                return Err(
                    "`AmazonSqsConnectionSettings`: give either `Basic` or `Passwordless`, not both"
                        .to_owned(),
                );
            }
            return Err("`AmazonSqsConnectionSettings.Passwordless` (the AWS default credential chain) is not supported yet; give `Basic` credentials".to_owned());
        }
        let service_url = settings
            .service_url
            .as_deref()
            .map(str::trim)
            .filter(|it| !it.is_empty());
        let endpoint = match (service_url, settings.use_emulator) {
            (Some(_), true) => {
                return Err("`AmazonSqsConnectionSettings`: give either `ServiceUrl` or `UseEmulator`, not both".to_owned());
            }
            (Some(url), false) => {
                parse_endpoint(url).map_err(|reason| {
                    format!("`AmazonSqsConnectionSettings.ServiceUrl`: {reason}")
                })?;
                SqsEndpoint::ServiceUrl(url.to_owned())
            }
            (None, true) => SqsEndpoint::Emulator,
            (None, false) => SqsEndpoint::Aws,
        };
        let Some(basic) = &settings.basic else {
            if endpoint == SqsEndpoint::Emulator {
                return Ok(SqsSettings {
                    access_key: EMULATOR_CREDENTIAL.to_owned(),
                    secret_key: EMULATOR_CREDENTIAL.to_owned(),
                    region: EMULATOR_REGION.to_owned(),
                    endpoint,
                });
            }
            return Err("`AmazonSqsConnectionSettings.Basic` must be given (`AccessKey`, `SecretKey` and `RegionName`)".to_owned());
        };
        for (field, value) in [
            ("AccessKey", &basic.access_key),
            ("SecretKey", &basic.secret_key),
            ("RegionName", &basic.region_name),
        ] {
            if value.trim().is_empty() {
                return Err(format!(
                    "`AmazonSqsConnectionSettings.Basic.{field}` must not be empty"
                ));
            }
        }
        let region = basic.region_name.trim();
        if !region
            .chars()
            .all(|it| it.is_ascii_lowercase() || it.is_ascii_digit() || it == '-')
        {
            return Err(format!(
                "`AmazonSqsConnectionSettings.Basic.RegionName`: `{region}` is not an AWS region name (such as `us-east-1`)"
            ));
        }
        Ok(SqsSettings {
            access_key: basic.access_key.trim().to_owned(),
            secret_key: basic.secret_key.clone(),
            region: region.to_owned(),
            endpoint,
        })
    }

    /// Where requests go, as the task list shows it.
    pub fn address(&self) -> String {
        match &self.endpoint {
            SqsEndpoint::Aws => aws_endpoint(&self.region),
            SqsEndpoint::ServiceUrl(url) => url.clone(),
            SqsEndpoint::Emulator => "RAVEN_AMAZON_SQS_EMULATOR_URL".to_owned(),
        }
    }
}

pub(crate) fn aws_endpoint(region: &str) -> String {
    format!("https://sqs.{region}.amazonaws.com")
}

pub(crate) fn parse_endpoint(url: &str) -> Result<reqwest::Url, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|error| format!("`{url}` is not a URL: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err(format!(
            "`{url}` must be a plain endpoint (no credentials, query or fragment)"
        ));
    }
    Ok(parsed)
}

/// Checks a queue name as SQS takes it (after lower-casing): letters, digits, `-` and `_`,
/// at most 80 characters with the `.fifo` of a FIFO queue.
pub(crate) fn check_queue_name(name: &str) -> Result<(), String> {
    let lower = name.to_lowercase();
    let base = lower.strip_suffix(".fifo").unwrap_or(&lower);
    let valid = !base.is_empty()
        && lower.chars().count() <= MAX_QUEUE_NAME_CHARS
        && base
            .chars()
            .all(|it| it.is_ascii_alphanumeric() || it == '-' || it == '_');
    if valid {
        return Ok(());
    }
    Err(format!(
        "`{name}` is not an SQS queue name (1 to 80 letters, digits, `-` or `_`, ending in `.fifo` for a FIFO queue)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<SqsSettings, String> {
        let parsed: AmazonSqsConnectionSettings = serde_json::from_str(json).unwrap();
        SqsSettings::from_connection_string(Some(&parsed))
    }

    #[test]
    fn connection_settings_are_checked_with_precise_messages() {
        let ok = settings(
            r#"{"Basic":{"AccessKey":"AK","SecretKey":"s3cret","RegionName":"eu-west-1"},"Passwordless":false,"UseEmulator":false}"#,
        )
        .unwrap();
        assert_eq!(ok.address(), "https://sqs.eu-west-1.amazonaws.com");
        assert!(!format!("{ok:?}").contains("s3cret"));
        let cases = [
            (r#"{}"#, "`AmazonSqsConnectionSettings.Basic` must be given"),
            (
                r#"{"Basic":{"AccessKey":"AK","SecretKey":"","RegionName":"eu-west-1"}}"#,
                "`AmazonSqsConnectionSettings.Basic.SecretKey` must not be empty",
            ),
            (
                r#"{"Basic":{"AccessKey":"AK","SecretKey":"s","RegionName":null}}"#,
                "`AmazonSqsConnectionSettings.Basic.RegionName` must not be empty",
            ),
            (
                r#"{"Basic":{"AccessKey":"AK","SecretKey":"s","RegionName":"EU West"}}"#,
                "is not an AWS region name",
            ),
            (r#"{"Passwordless":true}"#, "is not supported yet"),
            (
                r#"{"Basic":{"AccessKey":"AK","SecretKey":"s","RegionName":"r"},"Passwordless":true}"#,
                "either `Basic` or `Passwordless`",
            ),
            (
                r#"{"Basic":{"AccessKey":"AK","SecretKey":"s","RegionName":"r"},"ServiceUrl":"ftp://h"}"#,
                "is not an http:// or https:// URL",
            ),
            (
                r#"{"UseEmulator":true,"ServiceUrl":"http://h:4566"}"#,
                "either `ServiceUrl` or `UseEmulator`",
            ),
        ];
        for (json, expected) in cases {
            let error = settings(json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
        assert!(
            SqsSettings::from_connection_string(None)
                .unwrap_err()
                .contains("must be given")
        );
        let emulator = settings(r#"{"UseEmulator":true}"#).unwrap();
        assert_eq!(emulator.endpoint, SqsEndpoint::Emulator);
    }

    #[test]
    fn queue_names_are_checked_as_sqs_takes_them() {
        for good in ["orders", "Orders", "a-b_c", "orders.fifo", &"a".repeat(75)] {
            assert!(check_queue_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".fifo", "a b", "a.b", "a/b", &"a".repeat(81), "ü"] {
            assert!(check_queue_name(bad).is_err(), "{bad}");
        }
    }
}
