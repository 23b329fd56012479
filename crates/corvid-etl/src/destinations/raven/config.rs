//! Raven ETL's configuration: the connection string's checks and the validated destination,
//! and what Raven ETL supplies to the generic engine.

use std::time::Duration;

use corvid_client::{Client, ClientOptions};

use crate::config::{RavenConnectionString, RavenEtlConfig};
use crate::destination::{Destination, LoadError};
use crate::destinations::raven::encoder::{RavenEncoder, RavenLoad};
use crate::destinations::raven::loader::RavenLoader;
use crate::options::EtlOptions;

/// Where a Raven ETL task writes.
#[derive(Debug, Clone, PartialEq)]
pub struct RavenDestination {
    pub database: String,
    pub urls: Vec<String>,
    pub load_timeout: Duration,
}

/// Checks a Raven connection string on its own; the reason is for the user.
pub(crate) fn check_connection_string(raven: &RavenConnectionString) -> Result<(), String> {
    if raven.database.trim().is_empty() {
        return Err("`Database` must not be empty".to_owned());
    }
    if raven.topology_discovery_urls.is_empty() {
        return Err("`TopologyDiscoveryUrls` must list at least one URL".to_owned());
    }
    for url in &raven.topology_discovery_urls {
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        if !scheme_ok || url.len() <= "http://".len() {
            return Err(format!("`{url}` is not an http:// or https:// URL"));
        }
    }
    Ok(())
}

impl RavenDestination {
    pub(crate) fn build(raven: &RavenConnectionString, config: &RavenEtlConfig) -> Self {
        RavenDestination {
            database: raven.database.clone(),
            urls: raven
                .topology_discovery_urls
                .iter()
                .map(|it| it.trim_end_matches('/').to_owned())
                .collect(),
            load_timeout: Duration::from_secs(config.load_request_timeout_in_sec.unwrap_or(300)),
        }
    }
}

impl Destination for RavenDestination {
    type Batch = RavenLoad;
    type Encoder = RavenEncoder;
    type Loader = RavenLoader;

    fn new_encoder(&self) -> RavenEncoder {
        RavenEncoder::default()
    }

    fn new_loader(&self, options: &EtlOptions) -> Result<RavenLoader, LoadError> {
        // The connection string's URLs are the node list: a Corvid destination is not a
        // cluster yet, so its topology names only itself and would hide the other URLs from
        // failover. On https://, the server's certificate (when it has one) is presented as
        // the client certificate, which the destination must have registered.
        let options = ClientOptions {
            request_timeout: self.load_timeout,
            disable_topology_updates: true,
            tls: options.raven_tls.clone(),
            ..ClientOptions::default()
        };
        Client::new(&self.urls, &self.database, options)
            .map(|client| RavenLoader { client })
            .map_err(|error| LoadError::Configuration {
                message: error.to_string(),
            })
    }

    fn identity(&self) -> String {
        let mut urls: Vec<String> = self
            .urls
            .iter()
            .map(|it| it.trim_end_matches('/').to_lowercase())
            .collect();
        urls.sort();
        format!("raven:{}@{}", self.database.to_lowercase(), urls.join(","))
    }

    /// The next batch is sent while the destination still applies the previous one (its
    /// parse and its write then run side by side); batches that share a document never
    /// overlap, so the destination cannot apply an older version last.
    fn loads_in_flight(&self, options: &EtlOptions) -> usize {
        options.raven_loads_in_flight.max(1)
    }
}
