//! Database topology: which nodes serve the database, and which one is preferred.
//!
//! The topology comes from `GET {url}/topology?name={db}`:
//! `{"Nodes":[{"Url","ClusterTag","Database","ServerRole"}],"Etag":n}`.
//! Until it has been fetched, or when no node answers, the configured URLs stand in for it
//! (like the official clients), and no `Topology-Etag` header is sent.

use std::sync::Arc;

use serde::Deserialize;

use crate::error::ClientError;

/// One node that serves the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNode {
    /// Base URL of the server, without a trailing slash (`http://127.0.0.1:8080`).
    pub url: String,
    /// Database name to use in `/databases/{database}/...` on this node.
    pub database: String,
    /// Cluster node tag (`A`, `B`, ...), when the topology provided one.
    pub cluster_tag: Option<String>,
}

/// A parsed `/topology` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Topology {
    pub(crate) nodes: Vec<ServerNode>,
    pub(crate) etag: i64,
}

/// The client's current view of the topology.
#[derive(Debug)]
pub(crate) struct TopologyState {
    /// Nodes to try, in topology order. Never empty.
    pub(crate) nodes: Arc<[ServerNode]>,
    /// Etag of the fetched topology; `None` while the configured URLs stand in for it.
    pub(crate) etag: Option<i64>,
    /// Index into `nodes` of the node that answered last.
    pub(crate) preferred_idx: usize,
    /// Whether the topology must be fetched before the next request.
    pub(crate) needs_fetch: bool,
}

impl TopologyState {
    /// Creates the state from the configured URLs (already normalized).
    pub(crate) fn from_configured(urls: &[String], database: &str, fetch: bool) -> Self {
        let nodes: Vec<ServerNode> = urls
            .iter()
            .map(|url| ServerNode {
                url: url.clone(),
                database: database.to_owned(),
                cluster_tag: None,
            })
            .collect();
        Self {
            nodes: nodes.into(),
            etag: None,
            preferred_idx: 0,
            needs_fetch: fetch,
        }
    }

    /// Replaces the node list with a fetched topology, keeping the preferred node if it is
    /// still part of it.
    pub(crate) fn apply(&mut self, topology: Topology) {
        let preferred_url = self
            .nodes
            .get(self.preferred_idx)
            .map(|node| node.url.clone());
        self.preferred_idx = preferred_url
            .and_then(|url| topology.nodes.iter().position(|node| node.url == url))
            .unwrap_or(0);
        self.nodes = topology.nodes.into();
        self.etag = Some(topology.etag);
        self.needs_fetch = false;
    }

    /// Records that `nodes[node_idx]` answered. `nodes` is the list the request used, which may
    /// have been replaced by a newer topology in the meantime.
    pub(crate) fn set_preferred(&mut self, nodes: &Arc<[ServerNode]>, node_idx: usize) {
        if Arc::ptr_eq(&self.nodes, nodes) {
            self.preferred_idx = node_idx;
            return;
        }
        let Some(node) = nodes.get(node_idx) else {
            return;
        };
        if let Some(current_idx) = self.nodes.iter().position(|it| it.url == node.url) {
            self.preferred_idx = current_idx;
        }
    }
}

/// Parses a `/topology` response body. Nodes without a `Database` use `database`.
pub(crate) fn parse_topology(body: &[u8], database: &str) -> Result<Topology, String> {
    let wire: WireTopology =
        serde_json::from_slice(body).map_err(|error| format!("invalid topology json: {error}"))?;
    let mut nodes = Vec::with_capacity(wire.nodes.len());
    for wire_node in wire.nodes {
        let url = normalize_url(&wire_node.url).map_err(|error| error.to_string())?;
        nodes.push(ServerNode {
            url,
            database: wire_node
                .database
                .filter(|it| !it.is_empty())
                .unwrap_or_else(|| database.to_owned()),
            cluster_tag: wire_node.cluster_tag,
        });
    }
    if nodes.is_empty() {
        return Err("topology has no nodes".to_owned());
    }
    Ok(Topology {
        nodes,
        etag: wire.etag.unwrap_or(0),
    })
}

/// Checks that `url` is an absolute http(s) URL and returns it without a trailing slash.
pub(crate) fn normalize_url(url: &str) -> Result<String, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|error| invalid(&error.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("url has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("url must not have a query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[derive(Deserialize)]
struct WireTopology {
    #[serde(rename = "Nodes")]
    nodes: Vec<WireNode>,
    #[serde(rename = "Etag")]
    etag: Option<i64>,
}

#[derive(Deserialize)]
struct WireNode {
    #[serde(rename = "Url")]
    url: String,
    #[serde(rename = "Database")]
    database: Option<String>,
    #[serde(rename = "ClusterTag")]
    cluster_tag: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(url: &str) -> ServerNode {
        ServerNode {
            url: url.to_owned(),
            database: "db".to_owned(),
            cluster_tag: None,
        }
    }

    #[test]
    fn parses_ravendb_41_topology() {
        let body = br#"{"Nodes":[{"Url":"http://127.0.0.1:8098/","ClusterTag":"A","ServerRole":"Member","Database":"probe"}],"Etag":-1}"#;
        let topology = parse_topology(body, "fallback").unwrap();
        assert_eq!(topology.etag, -1);
        assert_eq!(
            topology.nodes,
            vec![ServerNode {
                url: "http://127.0.0.1:8098".to_owned(),
                database: "probe".to_owned(),
                cluster_tag: Some("A".to_owned()),
            }]
        );
    }

    #[test]
    fn node_without_database_uses_configured_name_and_missing_etag_is_zero() {
        let body = br#"{"Nodes":[{"Url":"http://a:1"}]}"#;
        let topology = parse_topology(body, "db").unwrap();
        assert_eq!(topology.nodes, vec![node("http://a:1")]);
        assert_eq!(topology.etag, 0);
    }

    #[test]
    fn rejects_empty_or_malformed_topology() {
        assert!(parse_topology(br#"{"Nodes":[],"Etag":1}"#, "db").is_err());
        assert!(parse_topology(br#"{"Etag":1}"#, "db").is_err());
        assert!(parse_topology(br#"{"Nodes":[{"Url":"nope"}]}"#, "db").is_err());
        assert!(parse_topology(b"<html>", "db").is_err());
    }

    #[test]
    fn normalize_url_checks_scheme_and_strips_slash() {
        assert_eq!(normalize_url("http://a:8080/").unwrap(), "http://a:8080");
        assert!(normalize_url("ftp://a").is_err());
        assert!(normalize_url("a:8080").is_err());
        assert!(normalize_url("http://a/?x=1").is_err());
    }

    #[test]
    fn apply_keeps_preferred_node_by_url() {
        let mut state = TopologyState::from_configured(
            &["http://a".to_owned(), "http://b".to_owned()],
            "db",
            true,
        );
        state.preferred_idx = 1;
        state.apply(Topology {
            nodes: vec![node("http://c"), node("http://b")],
            etag: 7,
        });
        assert_eq!(state.preferred_idx, 1);
        assert_eq!(state.etag, Some(7));
        assert!(!state.needs_fetch);

        state.apply(Topology {
            nodes: vec![node("http://d")],
            etag: 8,
        });
        assert_eq!(state.preferred_idx, 0);
    }

    #[test]
    fn set_preferred_maps_stale_node_list_by_url() {
        let mut state = TopologyState::from_configured(
            &["http://a".to_owned(), "http://b".to_owned()],
            "db",
            true,
        );
        let old_nodes = Arc::clone(&state.nodes);
        state.set_preferred(&old_nodes, 1);
        assert_eq!(state.preferred_idx, 1);

        state.apply(Topology {
            nodes: vec![node("http://b"), node("http://a")],
            etag: 1,
        });
        state.set_preferred(&old_nodes, 0);
        assert_eq!(state.preferred_idx, 1);
    }
}
