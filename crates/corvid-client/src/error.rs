//! Client errors and the mapping from RavenDB error responses to them.

use std::error::Error as StdError;
use std::fmt;

use serde::Deserialize;

/// Everything that can go wrong while talking to a RavenDB-protocol server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client was created without any server URL.
    #[error("no server urls were configured")]
    NoUrls,
    /// A configured server URL cannot be used.
    #[error("invalid server url `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The HTTP client could not be built.
    #[error("failed to build the http client")]
    HttpClientBuild {
        #[source]
        source: reqwest::Error,
    },
    /// The database does not exist on the server (definitive; not retried on other nodes).
    #[error("database `{database}` does not exist")]
    DatabaseDoesNotExist { database: String },
    /// `create_database` was asked for a database that already exists.
    #[error("database `{database}` already exists")]
    DatabaseAlreadyExists { database: String },
    /// The server rejected a write because of a change-vector mismatch (HTTP 409).
    #[error("concurrency conflict: {message}")]
    Concurrency { message: String },
    /// The server answered 404 where the operation needs the target to exist.
    #[error("`{url}` was not found")]
    NotFound { url: String },
    /// The server answered with an error status that is not retried on other nodes.
    #[error("server answered status {status} for `{url}`: {message}")]
    Server {
        url: String,
        status: u16,
        /// The .NET exception type from the error body (`Raven.Client.Exceptions...`), if any.
        type_name: Option<String>,
        message: String,
    },
    /// Every node was tried once and none gave a usable answer.
    #[error("all {} nodes failed: {}", .failures.len(), DisplayFailures(.failures))]
    AllNodesFailed { failures: Vec<NodeFailure> },
    /// A request failed in a way that trying another node would not fix.
    #[error("http request to `{url}` failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered successfully, but not in the expected shape.
    #[error("invalid response from `{url}`: {reason}")]
    InvalidResponse { url: String, reason: String },
    /// A request body could not be serialized.
    #[error("failed to serialize the request body")]
    Serialize {
        #[source]
        source: serde_json::Error,
    },
}

/// Why one node failed during a request that then moved on to the next node.
#[derive(Debug)]
pub struct NodeFailure {
    /// The full URL that was requested on that node.
    pub url: String,
    /// What went wrong there.
    pub cause: NodeFailureCause,
}

/// The cause of a [`NodeFailure`].
#[derive(Debug)]
pub enum NodeFailureCause {
    /// No usable HTTP response: connection refused or reset, timeout, and so on.
    Transport(reqwest::Error),
    /// The TLS handshake failed: the node's certificate is not trusted (or not for its host
    /// name), or it refused ours. Unlike a node that is down, this lasts until a certificate
    /// or the trusted roots change.
    Tls(reqwest::Error),
    /// The node answered with a status that asks for failover (408, 410, 425, 502, 503, 504).
    Status { status: u16, message: String },
    /// The node answered, but not in the expected shape.
    InvalidResponse { reason: String },
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            NodeFailureCause::Transport(error) => {
                write!(f, "`{}`: {}", self.url, transport_error_message(error))
            }
            NodeFailureCause::Tls(error) => {
                write!(
                    f,
                    "`{}`: tls handshake failed: {}",
                    self.url,
                    transport_error_message(error)
                )
            }
            NodeFailureCause::Status { status, message } => {
                write!(f, "`{}`: status {status}: {message}", self.url)
            }
            NodeFailureCause::InvalidResponse { reason } => {
                write!(f, "`{}`: invalid response: {reason}", self.url)
            }
        }
    }
}

impl ClientError {
    /// Whether every node failed in the TLS handshake (see [`NodeFailureCause::Tls`]): a
    /// certificate problem, not a node that is down.
    pub fn is_tls_failure(&self) -> bool {
        match self {
            ClientError::AllNodesFailed { failures } => {
                !failures.is_empty()
                    && failures
                        .iter()
                        .all(|it| matches!(it.cause, NodeFailureCause::Tls(_)))
            }
            _ => false,
        }
    }
}

/// Maps a non-successful response to the matching [`ClientError`].
///
/// `database_missing` is the value of the `Database-Missing` header, and `database` the name the
/// request was made for.
pub(crate) fn error_from_response(
    url: &str,
    status: u16,
    database_missing: Option<&str>,
    body: &[u8],
    database: &str,
) -> ClientError {
    if let Some(missing) = database_missing {
        let database = if missing.is_empty() {
            database
        } else {
            missing
        };
        return ClientError::DatabaseDoesNotExist {
            database: database.to_owned(),
        };
    }
    let error_body = serde_json::from_slice::<RavenErrorBody>(body).ok();
    let type_name = error_body.as_ref().and_then(|it| it.type_name.clone());
    // RavenDB 4.1 reports a missing database on document routes as a 500 whose `Type` is
    // `Raven.Client.Exceptions.Database.DatabaseDoesNotExistException`, without the header.
    if type_name
        .as_deref()
        .is_some_and(|it| short_type_name(it) == "DatabaseDoesNotExistException")
    {
        return ClientError::DatabaseDoesNotExist {
            database: database.to_owned(),
        };
    }
    let message = match error_body.and_then(|it| it.message) {
        Some(message) => message,
        None => body_excerpt(body),
    };
    match status {
        409 => ClientError::Concurrency { message },
        404 => ClientError::NotFound {
            url: url.to_owned(),
        },
        _ => ClientError::Server {
            url: url.to_owned(),
            status,
            type_name,
            message,
        },
    }
}

/// Returns a short description of an error response body, for failure lists and messages.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    const MAX_CHARS: usize = 300;
    if let Ok(error_body) = serde_json::from_slice::<RavenErrorBody>(body)
        && let Some(message) = error_body.message
    {
        return message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "empty response body".to_owned();
    }
    let mut res: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        res.push('…');
    }
    res
}

/// Describes a transport failure by its sources, since reqwest's own message only repeats the
/// URL (`error sending request for url (...)`).
pub(crate) fn transport_error_message(error: &reqwest::Error) -> String {
    match error.source() {
        Some(source) => error_chain(source),
        None => error.to_string(),
    }
}

/// Joins an error and its sources with `: `, since reqwest's own message omits the cause.
fn error_chain(error: &dyn StdError) -> String {
    let mut res = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        res.push_str(": ");
        res.push_str(&cause.to_string());
        source = cause.source();
    }
    res
}

/// RavenDB's JSON error body: `{"Url","Type","Message","Error"}`.
#[derive(Deserialize)]
struct RavenErrorBody {
    #[serde(rename = "Type")]
    type_name: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

struct DisplayFailures<'a>(&'a [NodeFailure]);

impl fmt::Display for DisplayFailures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (failure_idx, failure) in self.0.iter().enumerate() {
            if failure_idx > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// Returns the last segment of a .NET type name (`A.B.ConcurrencyException` → `ConcurrencyException`).
fn short_type_name(type_name: &str) -> &str {
    type_name.rsplit('.').next().unwrap_or(type_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://n1/databases/db/docs?id=a";

    fn check(status: u16, missing: Option<&str>, body: &str) -> ClientError {
        error_from_response(URL, status, missing, body.as_bytes(), "db")
    }

    #[test]
    fn database_missing_header_wins_over_status_and_body() {
        let error = check(
            503,
            Some("other"),
            r#"{"Type":"Error","Message":"Database other wasn't found"}"#,
        );
        assert!(
            matches!(error, ClientError::DatabaseDoesNotExist { database } if database == "other")
        );
    }

    #[test]
    fn ravendb_41_does_not_exist_type_maps_to_database_does_not_exist() {
        let body = r#"{"Url":"/databases/db/docs","Type":"Raven.Client.Exceptions.Database.DatabaseDoesNotExistException","Message":"Database 'db' does not exist.","Error":"..."}"#;
        let error = check(500, None, body);
        assert!(
            matches!(error, ClientError::DatabaseDoesNotExist { database } if database == "db")
        );
    }

    #[test]
    fn conflict_maps_to_concurrency_with_message() {
        let body =
            r#"{"Type":"Raven.Client.Exceptions.ConcurrencyException","Message":"cv mismatch"}"#;
        let error = check(409, None, body);
        assert!(matches!(error, ClientError::Concurrency { message } if message == "cv mismatch"));
    }

    #[test]
    fn other_status_keeps_type_and_message() {
        let body = r#"{"Type":"System.InvalidOperationException","Message":"no such document"}"#;
        let error = check(500, None, body);
        let ClientError::Server {
            status,
            type_name,
            message,
            ..
        } = error
        else {
            panic!("expected a server error, got {error:?}");
        };
        assert_eq!(status, 500);
        assert_eq!(
            type_name.as_deref(),
            Some("System.InvalidOperationException")
        );
        assert_eq!(message, "no such document");
    }

    #[test]
    fn non_json_body_becomes_the_message() {
        let error = check(400, None, "bad things\n");
        assert!(
            matches!(error, ClientError::Server { message, type_name: None, .. } if message == "bad things")
        );
        let error = check(400, None, "");
        assert!(
            matches!(error, ClientError::Server { message, .. } if message == "empty response body")
        );
    }

    #[test]
    fn not_found_keeps_url() {
        let error = check(404, None, "");
        assert!(matches!(error, ClientError::NotFound { url } if url == URL));
    }

    #[test]
    fn error_messages_are_lowercase_without_period() {
        let error = check(409, None, r#"{"Message":"x"}"#);
        assert_eq!(error.to_string(), "concurrency conflict: x");
        let error = ClientError::AllNodesFailed {
            failures: vec![
                NodeFailure {
                    url: "http://a/x".to_owned(),
                    cause: NodeFailureCause::Status {
                        status: 503,
                        message: "busy".to_owned(),
                    },
                },
                NodeFailure {
                    url: "http://b/x".to_owned(),
                    cause: NodeFailureCause::Status {
                        status: 504,
                        message: "slow".to_owned(),
                    },
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            "all 2 nodes failed: `http://a/x`: status 503: busy; `http://b/x`: status 504: slow"
        );
    }

    #[test]
    fn long_bodies_are_truncated() {
        let body = "x".repeat(1000);
        let excerpt = body_excerpt(body.as_bytes());
        assert_eq!(excerpt.chars().count(), 301);
    }
}
