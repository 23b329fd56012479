//! The limits of the accept loop.

use std::time::Duration;

use crate::listener::ServerCertificate;

/// Connection limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// How long a request head may take: from the connection's start (or the first byte of the
    /// next request on a keep-alive connection) to the end of its headers, TLS handshake included.
    pub header_timeout: Duration,
    /// How long a connection may go without any progress: a keep-alive connection between
    /// requests, or a request whose body stops arriving.
    pub idle_timeout: Duration,
    /// The most connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Serve HTTPS with this certificate (and ask clients for theirs); `None`: plain HTTP.
    pub certificate: Option<ServerCertificate>,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            certificate: None,
        }
    }
}
