//! Sends database requests with topology discovery and failover.
//!
//! Every request walks the nodes from the preferred one on, each at most once; the node that
//! gives a definitive answer becomes the preferred node. The decisions themselves live in
//! `failover.rs`; this file only does the I/O around them.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, IF_MATCH};
use tracing::{debug, warn};

use crate::encoding::{encode_component, query_string};
use crate::error::{
    ClientError, NodeFailure, NodeFailureCause, body_excerpt, error_from_response,
    transport_error_message,
};
use crate::failover::{
    TransportFailure, Verdict, classify_status, classify_transport, node_order,
    response_requests_topology_refresh,
};
use crate::tls::is_tls_failure;
use crate::topology::{ServerNode, TopologyState, parse_topology};

const DATABASE_MISSING: &str = "Database-Missing";
const REFRESH_TOPOLOGY: &str = "Refresh-Topology";
const TOPOLOGY_ETAG: &str = "Topology-Etag";

/// A request below `/databases/{db}` on whichever node answers.
#[derive(Debug)]
pub(crate) struct DatabaseRequest<'a> {
    pub(crate) method: Method,
    /// Path and query below `/databases/{db}`, already encoded (`/docs?id=users%2F1`).
    pub(crate) path_and_query: String,
    pub(crate) body: Option<Bytes>,
    pub(crate) content_type: Option<&'a str>,
    /// Change vector to send as `If-Match: "<cv>"`.
    pub(crate) if_match: Option<&'a str>,
}

impl DatabaseRequest<'_> {
    /// Creates a body-less request.
    pub(crate) fn new(method: Method, path_and_query: String) -> Self {
        Self {
            method,
            path_and_query,
            body: None,
            content_type: None,
            if_match: None,
        }
    }
}

/// A fully read response that the failover logic accepted.
#[derive(Debug)]
pub(crate) struct RawResponse {
    /// The URL that was requested, for error messages.
    pub(crate) url: String,
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl RawResponse {
    /// Returns a header value as a string, if present and valid UTF-8.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|it| it.to_str().ok())
    }

    /// Parses the body as JSON.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|error| ClientError::InvalidResponse {
            url: self.url.clone(),
            reason: format!("unexpected json body: {error}"),
        })
    }
}

/// Shared state behind every clone of a [`Client`](crate::Client).
#[derive(Debug)]
pub(crate) struct RequestExecutor {
    http: reqwest::Client,
    database: String,
    configured_urls: Vec<String>,
    topology_updates: bool,
    state: Mutex<TopologyState>,
    /// Serializes topology fetches so concurrent requests don't all fetch at once.
    topology_fetch: tokio::sync::Mutex<()>,
}

impl RequestExecutor {
    /// Creates an executor; `urls` must be normalized and non-empty.
    pub(crate) fn new(
        http: reqwest::Client,
        urls: Vec<String>,
        database: &str,
        topology_updates: bool,
    ) -> Self {
        let state = TopologyState::from_configured(&urls, database, topology_updates);
        Self {
            http,
            database: database.to_owned(),
            configured_urls: urls,
            topology_updates,
            state: Mutex::new(state),
            topology_fetch: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn database(&self) -> &str {
        &self.database
    }

    /// Returns the current node list.
    pub(crate) fn nodes(&self) -> Arc<[ServerNode]> {
        Arc::clone(&self.lock_state().nodes)
    }

    /// Returns the node the next request will try first.
    pub(crate) fn preferred_node(&self) -> Option<ServerNode> {
        let state = self.lock_state();
        state.nodes.get(state.preferred_idx).cloned()
    }

    /// Sends `request` to the preferred node, failing over to the others.
    ///
    /// Returns the response for 2xx, 304 and 404; every other status becomes an error.
    pub(crate) async fn execute(
        &self,
        request: &DatabaseRequest<'_>,
    ) -> Result<RawResponse, ClientError> {
        self.ensure_topology().await;
        let (nodes, preferred_idx, topology_etag) = {
            let state = self.lock_state();
            (Arc::clone(&state.nodes), state.preferred_idx, state.etag)
        };
        let mut failures = Vec::new();
        for node_idx in node_order(nodes.len(), preferred_idx) {
            let Some(node) = nodes.get(node_idx) else {
                continue;
            };
            let url = format!(
                "{}/databases/{}{}",
                node.url,
                encode_component(&node.database),
                request.path_and_query
            );
            let response = match self.send_once(&url, request, topology_etag).await {
                Ok(response) => response,
                Err(error) => {
                    let tls = is_tls_failure(&error);
                    let verdict = classify_transport(TransportFailure::from_reqwest(&error, tls));
                    let Verdict::Retry(reason) = verdict else {
                        return Err(ClientError::Http { url, source: error });
                    };
                    warn!(%url, ?reason, error = %transport_error_message(&error), "request to node failed");
                    let cause = if tls {
                        NodeFailureCause::Tls(error)
                    } else {
                        NodeFailureCause::Transport(error)
                    };
                    failures.push(NodeFailure { url, cause });
                    continue;
                }
            };
            if self.topology_updates
                && response_requests_topology_refresh(
                    response.status,
                    response.header(REFRESH_TOPOLOGY),
                )
            {
                debug!(%url, "node asked for a topology refresh");
                self.lock_state().needs_fetch = true;
            }
            let database_missing = response.header(DATABASE_MISSING);
            match classify_status(response.status, database_missing.is_some()) {
                Verdict::Done => {
                    self.lock_state().set_preferred(&nodes, node_idx);
                    return Ok(response);
                }
                Verdict::DontRetry => {
                    self.lock_state().set_preferred(&nodes, node_idx);
                    return Err(error_from_response(
                        &response.url,
                        response.status,
                        database_missing,
                        &response.body,
                        &self.database,
                    ));
                }
                Verdict::Retry(reason) => {
                    warn!(%url, ?reason, "node unavailable");
                    failures.push(NodeFailure {
                        url,
                        cause: NodeFailureCause::Status {
                            status: response.status,
                            message: body_excerpt(&response.body),
                        },
                    });
                }
            }
        }
        Err(ClientError::AllNodesFailed { failures })
    }

    /// Fetches the topology from the known nodes, then the configured URLs, until one answers.
    pub(crate) async fn fetch_topology(&self) -> Result<(), ClientError> {
        let mut candidate_urls: Vec<String> =
            self.nodes().iter().map(|node| node.url.clone()).collect();
        for url in &self.configured_urls {
            if !candidate_urls.contains(url) {
                candidate_urls.push(url.clone());
            }
        }
        let query = query_string(&[("name", &self.database)]);
        let mut failures = Vec::new();
        for base_url in candidate_urls {
            let url = format!("{base_url}/topology{query}");
            let response = match self.read(self.http.get(&url), &url).await {
                Ok(response) => response,
                Err(error) => {
                    debug!(%url, error = %transport_error_message(&error), "topology fetch failed");
                    let cause = if is_tls_failure(&error) {
                        NodeFailureCause::Tls(error)
                    } else {
                        NodeFailureCause::Transport(error)
                    };
                    failures.push(NodeFailure { url, cause });
                    continue;
                }
            };
            if response.status != 200 {
                debug!(%url, status = response.status, "topology fetch failed");
                failures.push(NodeFailure {
                    url,
                    cause: NodeFailureCause::Status {
                        status: response.status,
                        message: body_excerpt(&response.body),
                    },
                });
                continue;
            }
            match parse_topology(&response.body, &self.database) {
                Ok(topology) => {
                    debug!(%url, n_nodes = topology.nodes.len(), etag = topology.etag, "topology updated");
                    self.lock_state().apply(topology);
                    return Ok(());
                }
                Err(reason) => {
                    failures.push(NodeFailure {
                        url,
                        cause: NodeFailureCause::InvalidResponse { reason },
                    });
                }
            }
        }
        Err(ClientError::AllNodesFailed { failures })
    }

    /// Fetches the topology if it was never fetched or a node asked for a refresh. A failed
    /// fetch keeps the current nodes (the configured URLs at first), like the official clients.
    async fn ensure_topology(&self) {
        if !self.lock_state().needs_fetch {
            return;
        }
        let _fetch_guard = self.topology_fetch.lock().await;
        if !self.lock_state().needs_fetch {
            return;
        }
        if let Err(error) = self.fetch_topology().await {
            warn!(database = %self.database, %error, "topology fetch failed, using the known nodes");
            self.lock_state().needs_fetch = false;
        }
    }

    async fn send_once(
        &self,
        url: &str,
        request: &DatabaseRequest<'_>,
        topology_etag: Option<i64>,
    ) -> Result<RawResponse, reqwest::Error> {
        let mut builder = self.http.request(request.method.clone(), url);
        if let Some(etag) = topology_etag {
            builder = builder.header(TOPOLOGY_ETAG, format!("\"{etag}\""));
        }
        if let Some(change_vector) = request.if_match {
            builder = builder.header(IF_MATCH, format!("\"{change_vector}\""));
        }
        if let Some(content_type) = request.content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = self.read(builder, url).await?;
        debug!(method = %request.method, %url, status = response.status, "request done");
        Ok(response)
    }

    /// Sends a request and reads the whole body.
    async fn read(
        &self,
        builder: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<RawResponse, reqwest::Error> {
        let response = builder.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok(RawResponse {
            url: url.to_owned(),
            status,
            headers,
            body,
        })
    }

    fn lock_state(&self) -> MutexGuard<'_, TopologyState> {
        // The state is always left consistent (plain field writes), so a poisoned lock is usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
