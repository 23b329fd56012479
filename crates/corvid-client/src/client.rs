//! The database client: construction, topology access and shared response helpers.
//!
//! The operations live next to their types: documents and `bulk_docs` in `documents.rs`,
//! attachments in `attachments.rs`.

use std::sync::Arc;

use crate::error::ClientError;
use crate::executor::{RawResponse, RequestExecutor};
use crate::options::{ClientOptions, build_http_client};
use crate::topology::{ServerNode, normalize_url};

/// A client for one database on a RavenDB-protocol server or cluster.
///
/// Cloning is cheap; clones share the connection pool and the topology.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) executor: Arc<RequestExecutor>,
}

impl Client {
    /// Creates a client for `database`, reachable through any of `urls`.
    ///
    /// No request is made here. The first request fetches the topology
    /// (`GET {url}/topology?name={database}`) from the URLs in order and then uses the nodes it
    /// lists; if no URL answers, the configured URLs are used as the nodes.
    pub fn new(
        urls: &[String],
        database: &str,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        if urls.is_empty() {
            return Err(ClientError::NoUrls);
        }
        let mut normalized_urls = Vec::with_capacity(urls.len());
        for url in urls {
            let url = normalize_url(url)?;
            if !normalized_urls.contains(&url) {
                normalized_urls.push(url);
            }
        }
        let http = build_http_client(&options)?;
        let executor = RequestExecutor::new(
            http,
            normalized_urls,
            database,
            !options.disable_topology_updates,
        );
        Ok(Self {
            executor: Arc::new(executor),
        })
    }

    /// Returns the database name this client was created for.
    pub fn database(&self) -> &str {
        self.executor.database()
    }

    /// Returns the nodes requests currently fail over between, in topology order.
    pub fn nodes(&self) -> Arc<[ServerNode]> {
        self.executor.nodes()
    }

    /// Returns the node the next request will try first (the last one that answered).
    pub fn preferred_node(&self) -> Option<ServerNode> {
        self.executor.preferred_node()
    }

    /// Fetches the topology now, from the known nodes and then the configured URLs.
    ///
    /// Fails with [`ClientError::AllNodesFailed`] when none of them answers; the current nodes
    /// are kept in that case.
    pub async fn refresh_topology(&self) -> Result<(), ClientError> {
        self.executor.fetch_topology().await
    }
}

/// Fails with [`ClientError::NotFound`] on 404; the executor already turned other errors into
/// `Err`.
pub(crate) fn expect_found(response: &RawResponse) -> Result<(), ClientError> {
    match response.status {
        404 => Err(ClientError::NotFound {
            url: response.url.clone(),
        }),
        200..=299 => Ok(()),
        status => Err(ClientError::InvalidResponse {
            url: response.url.clone(),
            reason: format!("unexpected status {status}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_empty_and_invalid_urls() {
        let options = ClientOptions::default();
        assert!(matches!(
            Client::new(&[], "db", options.clone()),
            Err(ClientError::NoUrls)
        ));
        assert!(matches!(
            Client::new(&["not a url".to_owned()], "db", options),
            Err(ClientError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn new_uses_configured_urls_until_topology_is_fetched() {
        let urls = [
            "http://a:1/".to_owned(),
            "http://b:2".to_owned(),
            "http://a:1".to_owned(),
        ];
        let client = Client::new(&urls, "db", ClientOptions::default()).unwrap();
        let nodes = client.nodes();
        let node_urls: Vec<&str> = nodes.iter().map(|it| it.url.as_str()).collect();
        assert_eq!(node_urls, ["http://a:1", "http://b:2"]);
        assert_eq!(client.preferred_node().unwrap().url, "http://a:1");
        assert_eq!(client.database(), "db");
    }
}
