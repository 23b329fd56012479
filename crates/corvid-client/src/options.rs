//! Programmatic client options.

use std::time::Duration;

use crate::error::ClientError;
use crate::tls::{ClientTls, reqwest_builder, with_tls};

/// Options for a [`Client`](crate::Client) and the server-level helpers.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Total time allowed for one HTTP request to one node, body included.
    /// A request that times out is retried on the next node.
    pub request_timeout: Duration,
    /// Time allowed to open a TCP connection to a node.
    pub connect_timeout: Duration,
    /// When true, the client never asks `/topology` and uses the configured URLs as the node list.
    /// Failover then walks the configured URLs in order.
    pub disable_topology_updates: bool,
    /// How `https://` servers are verified and whether a client certificate is presented;
    /// `None`: the system's roots, no client certificate.
    pub tls: Option<ClientTls>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            disable_topology_updates: false,
            tls: None,
        }
    }
}

/// Builds the HTTP client every request of a [`Client`](crate::Client) goes through.
pub(crate) fn build_http_client(options: &ClientOptions) -> Result<reqwest::Client, ClientError> {
    let tls = match &options.tls {
        Some(tls) => tls.clone(),
        None => ClientTls::system(),
    };
    with_tls(reqwest_builder(), &tls)
        .timeout(options.request_timeout)
        .connect_timeout(options.connect_timeout)
        .build()
        .map_err(|source| ClientError::HttpClientBuild { source })
}
