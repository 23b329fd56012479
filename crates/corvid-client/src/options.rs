//! Programmatic client options.

use std::time::Duration;

use crate::error::ClientError;

/// Options for a [`Client`](crate::Client) and the server-level helpers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Total time allowed for one HTTP request to one node, body included.
    /// A request that times out is retried on the next node.
    pub request_timeout: Duration,
    /// Time allowed to open a TCP connection to a node.
    pub connect_timeout: Duration,
    /// When true, the client never asks `/topology` and uses the configured URLs as the node list.
    /// Failover then walks the configured URLs in order.
    pub disable_topology_updates: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            disable_topology_updates: false,
        }
    }
}

/// Builds the HTTP client every request of a [`Client`](crate::Client) goes through.
pub(crate) fn build_http_client(options: &ClientOptions) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .timeout(options.request_timeout)
        .connect_timeout(options.connect_timeout)
        // Proxy settings would come from env vars, and only the `corvid` binary reads those.
        .no_proxy()
        .build()
        .map_err(|source| ClientError::HttpClientBuild { source })
}
