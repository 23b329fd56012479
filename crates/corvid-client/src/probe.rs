//! "Test connection" for a Raven connection string: does a URL answer as a RavenDB-protocol
//! server, and does it hold the database?
//!
//! The test may be pointed at any host, so its errors say only what the local network stack
//! knows (refused, timed out, host not found, unreachable) or that the answer was not a
//! RavenDB server's, never what another host's service sent: a connection test must not be a
//! way to read other services (docs/security/destinations.md).

use std::error::Error as StdError;
use std::io::ErrorKind;

use reqwest::Url;
use serde::Deserialize;

use crate::encoding::query_string;
use crate::options::{ClientOptions, build_http_client};
use crate::topology::normalize_url;

/// Why [`test_connection`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionTestError {
    /// The URL cannot be used (not absolute http(s), no host, a query…).
    #[error("invalid url `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The HTTP client could not be built or refused the request before sending it.
    #[error("the request could not be made: {reason}")]
    Local { reason: String },
    /// No answer at all.
    #[error("could not connect to {address}: {reason}")]
    Unreachable {
        address: String,
        reason: UnreachableReason,
    },
    /// Something answered, but not as a RavenDB server does.
    #[error("{address} is not a RavenDB server")]
    NotRavenDb { address: String },
    /// A RavenDB server that asks for a client certificate or refuses this one.
    #[error("{address} refused access (status {status}); a client certificate may be needed")]
    AccessDenied { address: String, status: u16 },
    /// A RavenDB server without the database.
    #[error("database `{database}` does not exist on {address}")]
    DatabaseDoesNotExist { address: String, database: String },
}

/// What the local network stack said about a connection that got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableReason {
    ConnectionRefused,
    TimedOut,
    HostNotFound,
    HostUnreachable,
    /// Connected, then closed (or reset) without an HTTP answer.
    Closed,
}

impl std::fmt::Display for UnreachableReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnreachableReason::ConnectionRefused => "connection refused",
            UnreachableReason::TimedOut => "timed out",
            UnreachableReason::HostNotFound => "host not found",
            UnreachableReason::HostUnreachable => "host unreachable",
            UnreachableReason::Closed => "the connection was closed without an answer",
        })
    }
}

/// Checks that `url` answers `GET /build/version` as a RavenDB server does and, when
/// `database` is given, that `GET /topology?name={database}` finds it there. One request
/// each, to `url` only (no topology, no failover).
pub async fn test_connection(
    url: &str,
    database: Option<&str>,
    options: &ClientOptions,
) -> Result<(), ConnectionTestError> {
    let base_url = normalize_url(url).map_err(|error| match error {
        crate::ClientError::InvalidUrl { url, reason } => {
            ConnectionTestError::InvalidUrl { url, reason }
        }
        other => ConnectionTestError::Local {
            reason: other.to_string(),
        },
    })?;
    let address = address_of(&base_url);
    let http = build_http_client(options).map_err(|error| ConnectionTestError::Local {
        reason: error.to_string(),
    })?;

    let (status, body) = get(&http, &format!("{base_url}/build/version"), &address).await?;
    match status {
        200 if is_build_version(&body) => {}
        401 | 403 => return Err(ConnectionTestError::AccessDenied { address, status }),
        _ => return Err(ConnectionTestError::NotRavenDb { address }),
    }
    let Some(database) = database.filter(|it| !it.trim().is_empty()) else {
        return Ok(());
    };
    let topology_url = format!("{base_url}/topology{}", query_string(&[("name", database)]));
    let response = http
        .get(&topology_url)
        .send()
        .await
        .map_err(|error| unreachable(&error, &address))?;
    let status = response.status().as_u16();
    let database_missing = response.headers().contains_key("Database-Missing");
    let body = response
        .bytes()
        .await
        .map_err(|error| unreachable(&error, &address))?;
    match status {
        200 if is_topology(&body) => Ok(()),
        _ if database_missing => Err(ConnectionTestError::DatabaseDoesNotExist {
            address,
            database: database.to_owned(),
        }),
        401 | 403 => Err(ConnectionTestError::AccessDenied { address, status }),
        _ => Err(ConnectionTestError::NotRavenDb { address }),
    }
}

async fn get(
    http: &reqwest::Client,
    url: &str,
    address: &str,
) -> Result<(u16, bytes::Bytes), ConnectionTestError> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|error| unreachable(&error, address))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|error| unreachable(&error, address))?;
    Ok((status, body))
}

/// `host:port` of a normalized URL, the port filled in from the scheme.
fn address_of(base_url: &str) -> String {
    match Url::parse(base_url) {
        Ok(url) => format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => base_url.to_owned(),
    }
}

/// Classifies a failed request by what the local side knows; anything else means something
/// answered in a way no RavenDB server does.
fn unreachable(error: &reqwest::Error, address: &str) -> ConnectionTestError {
    if error.is_builder() {
        return ConnectionTestError::Local {
            reason: crate::error::transport_error_message(error),
        };
    }
    let reason = if error.is_timeout() {
        Some(UnreachableReason::TimedOut)
    } else {
        unreachable_reason(error)
    };
    match reason {
        Some(reason) => ConnectionTestError::Unreachable {
            address: address.to_owned(),
            reason,
        },
        None => ConnectionTestError::NotRavenDb {
            address: address.to_owned(),
        },
    }
}

fn unreachable_reason(error: &reqwest::Error) -> Option<UnreachableReason> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(it) = current {
        if let Some(io) = it.downcast_ref::<std::io::Error>() {
            match io.kind() {
                ErrorKind::ConnectionRefused => return Some(UnreachableReason::ConnectionRefused),
                ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                    return Some(UnreachableReason::TimedOut);
                }
                ErrorKind::NotFound => return Some(UnreachableReason::HostNotFound),
                ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                    return Some(UnreachableReason::HostUnreachable);
                }
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
                | ErrorKind::BrokenPipe => return Some(UnreachableReason::Closed),
                _ => {}
            }
        }
        // The resolver's failure is the HTTP stack's own wording, not the remote end's.
        if it.to_string().starts_with("dns error") {
            return Some(UnreachableReason::HostNotFound);
        }
        current = it.source();
    }
    error
        .is_connect()
        .then_some(UnreachableReason::ConnectionRefused)
}

/// RavenDB's `/build/version`: `{"BuildVersion": 41001, "ProductVersion": "4.1", …}`.
fn is_build_version(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct BuildVersion {
        #[serde(rename = "BuildVersion")]
        _build_version: i64,
        #[serde(rename = "ProductVersion")]
        _product_version: String,
    }
    serde_json::from_slice::<BuildVersion>(body).is_ok()
}

/// RavenDB's `/topology?name=`: `{"Nodes": [...], "Etag": …}`.
fn is_topology(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Topology {
        #[serde(rename = "Nodes")]
        _nodes: Vec<serde_json::Value>,
    }
    serde_json::from_slice::<Topology>(body).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_carry_the_scheme_default_port() {
        assert_eq!(address_of("http://a.example"), "a.example:80");
        assert_eq!(address_of("https://a.example"), "a.example:443");
        assert_eq!(address_of("http://10.0.0.1:8080/x"), "10.0.0.1:8080");
    }

    #[test]
    fn only_ravendb_shapes_count() {
        assert!(is_build_version(
            br#"{"BuildVersion":41001,"ProductVersion":"4.1","CommitHash":"x"}"#
        ));
        assert!(!is_build_version(br#"{"version":"1.2"}"#));
        assert!(!is_build_version(b"<html>hello</html>"));
        assert!(is_topology(br#"{"Nodes":[{"Url":"http://a"}],"Etag":1}"#));
        assert!(!is_topology(br#"{"Nodes":"x"}"#));
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_bad_url_is_invalid() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let error = test_connection(
            &format!("http://127.0.0.1:{port}"),
            None,
            &ClientOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("could not connect to 127.0.0.1:{port}: connection refused")
        );
        let error = test_connection("ftp://x", None, &ClientOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, ConnectionTestError::InvalidUrl { .. }));
    }
}
