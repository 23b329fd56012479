//! Adding and removing nodes: RavenDB's `PUT`/`DELETE /admin/cluster/node` on the leader
//! (forwarded there from any node), and the two sides of it on the node concerned — `join`
//! (drop its cluster of one and wait for the leader's log) and `leave` (form a cluster of one
//! again once removed).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use openraft::ChangeMembers;
use serde_json::Value;

use super::{CATCH_UP_TIMEOUT, Cluster, Current, JoinRequest, LeaveRequest, NodeReport, new_raft};
use crate::error::ClusterError;
use crate::store;
use crate::types::{NodeId, NodeInfo, node_id};

impl Cluster {
    /// Answers whether `tag` may be used and the node at `url` may join, then adds it: as a
    /// learner first, as a voter once it has the log. Must run on the leader; other nodes
    /// forward it there ([`Cluster::add_node`]).
    async fn add_node_here(
        &self,
        url: &str,
        tag: Option<&str>,
    ) -> Result<(u64, NodeInfo), ClusterError> {
        let _guard = self.changes.lock().await;
        let own = self.me().url;
        if reqwest::Url::parse(&own)
            .ok()
            .and_then(|it| it.host_str().map(str::to_owned))
            .is_some_and(|host| host == "0.0.0.0" || host == "[::]")
        {
            return Err(ClusterError::BadRequest(format!(
                "other nodes cannot reach this node at {own}; start it with --public-url (the URL they reach it at)"
            )));
        }
        self.ensure_quorum().await?;
        let url = normalize_url(url)?;
        let report = self.fetch_report(&url).await?;
        let tag = tag.map_or_else(|| report.node_tag.clone(), str::to_owned);
        let id = node_id(&tag).map_err(|error| ClusterError::BadRequest(error.to_string()))?;
        let metrics = self.raft().metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        if let Some(existing) = membership.get_node(&id) {
            if same_url(&existing.url, &url) && !voters.contains(&id) {
                // A learner left by an addition that did not finish (no majority when it was
                // to be promoted): finish it.
                let index = self
                    .change(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
                    .await?;
                tracing::info!(node = %existing, "promoted a learner left by an earlier addition");
                return Ok((index, existing.clone()));
            }
            return Err(ClusterError::BadRequest(format!(
                "the cluster already has a node tagged `{tag}` ({})",
                existing.url
            )));
        }
        if let Some((_, existing)) = membership
            .nodes()
            .find(|(_, node)| same_url(&node.url, &url))
        {
            return Err(ClusterError::BadRequest(format!(
                "{url} is already node `{}` of this cluster",
                existing.tag
            )));
        }
        // A former member (removed while it was down) still holds this cluster's id; it may
        // come back. Any other node must be alone.
        let former_member =
            report.topology_id.is_some() && report.topology_id == self.topology_id();
        if !former_member && report.cluster_size > 1 {
            return Err(ClusterError::BadRequest(format!(
                "the node at {url} (`{}`) belongs to another cluster of {} nodes; remove it from that cluster first",
                report.node_tag, report.cluster_size
            )));
        }
        if report.databases > 0 {
            return Err(ClusterError::BadRequest(format!(
                "the node at {url} (`{}`) holds {} database(s); a node joins a cluster empty",
                report.node_tag, report.databases
            )));
        }
        let node = NodeInfo {
            tag: tag.clone(),
            url: url.clone(),
        };
        self.send_join(&node).await?;
        let raft = self.raft();
        let added =
            tokio::time::timeout(CATCH_UP_TIMEOUT, raft.add_learner(id, node.clone(), true)).await;
        match added {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                self.forget_learner(id).await;
                return Err(ClusterError::from_write(error));
            }
            Err(_) => {
                self.forget_learner(id).await;
                return Err(ClusterError::Unreachable(format!(
                    "node `{tag}` at {url} did not catch up with the cluster's log within {} s",
                    CATCH_UP_TIMEOUT.as_secs()
                )));
            }
        }
        let index = self
            .change(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await?;
        tracing::info!(%node, "added a node to the cluster");
        Ok((index, node))
    }

    async fn forget_learner(&self, id: NodeId) {
        let mut ids = BTreeSet::new();
        ids.insert(id);
        if let Err(error) = self.change(ChangeMembers::RemoveNodes(ids)).await {
            tracing::warn!(%error, "cannot remove a learner that did not catch up");
        }
    }

    /// `PUT /admin/cluster/node?url=&tag=`: adds a node, on the leader (forwarded there).
    pub async fn add_node(&self, url: &str, tag: Option<&str>) -> Result<Value, ClusterError> {
        if !self.is_leader() {
            let leader = self.wait_for_leader(Duration::from_secs(5)).await?;
            if leader.tag != self.me().tag {
                let mut query = vec![("url", url.to_owned())];
                if let Some(tag) = tag {
                    query.push(("tag", tag.to_owned()));
                }
                return self
                    .forward(reqwest::Method::PUT, &leader, "/admin/cluster/node", &query)
                    .await;
            }
        }
        let (index, node) = self.add_node_here(url, tag).await?;
        Ok(serde_json::json!({"RaftCommandIndex": index, "Tag": node.tag, "Url": node.url}))
    }

    /// `DELETE /admin/cluster/node?nodeTag=`: removes a node, on the leader (forwarded there).
    pub async fn remove_node(&self, tag: &str) -> Result<Value, ClusterError> {
        if !self.is_leader() {
            let leader = self.wait_for_leader(Duration::from_secs(5)).await?;
            if leader.tag != self.me().tag {
                let query = [("nodeTag", tag.to_owned())];
                return self
                    .forward(
                        reqwest::Method::DELETE,
                        &leader,
                        "/admin/cluster/node",
                        &query,
                    )
                    .await;
            }
        }
        let _guard = self.changes.lock().await;
        let id = node_id(tag).map_err(|error| ClusterError::BadRequest(error.to_string()))?;
        self.ensure_quorum().await?;
        let raft = self.raft();
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let Some(node) = membership.get_node(&id).cloned() else {
            return Err(ClusterError::NotFound(format!(
                "the cluster has no node tagged `{tag}`"
            )));
        };
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        if voters.contains(&id) && voters.len() == 1 {
            return Err(ClusterError::BadRequest(format!(
                "node `{tag}` is the cluster's last member; a cluster cannot remove its last node"
            )));
        }
        let mut ids = BTreeSet::new();
        ids.insert(id);
        let mut index = 0;
        if voters.contains(&id) {
            index = self
                .change(ChangeMembers::RemoveVoters(ids.clone()))
                .await?;
        }
        if self
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .is_some()
        {
            index = self.change(ChangeMembers::RemoveNodes(ids)).await?;
        }
        tracing::info!(%node, "removed a node from the cluster");
        self.tell_removed(&node).await;
        Ok(serde_json::json!({"RaftCommandIndex": index}))
    }

    /// Tells a removed node, if it can be reached, to form a cluster of one again. One that
    /// cannot stays passive (it is no member of its own membership) until it is added again.
    async fn tell_removed(&self, node: &NodeInfo) {
        let reply = self
            .client
            .post(format!("{}/cluster/leave", node.url))
            .timeout(Duration::from_secs(5))
            .json(&LeaveRequest {
                topology_id: self.topology_id(),
            })
            .send()
            .await;
        let outcome = match reply {
            Ok(reply) => ClusterError::from_reply(reply).await.map(|_| ()),
            Err(error) => Err(ClusterError::Unreachable(error.to_string())),
        };
        if let Err(error) = outcome {
            tracing::info!(%node, %error, "the removed node was not told; it stays passive until it is added again");
        }
    }

    async fn forward(
        &self,
        method: reqwest::Method,
        leader: &NodeInfo,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, ClusterError> {
        self.forward_json(method, leader, path, query, None).await
    }

    /// Sends a request on to the leader (with a JSON body if given) and returns its answer.
    pub(super) async fn forward_json(
        &self,
        method: reqwest::Method,
        leader: &NodeInfo,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClusterError> {
        let url = format!("{}{path}", leader.url.trim_end_matches('/'));
        let mut request = self
            .client
            .request(method, &url)
            .query(query)
            .timeout(CATCH_UP_TIMEOUT + Duration::from_secs(10));
        if let Some(body) = body {
            request = request.json(body);
        }
        let reply = request.send().await.map_err(|error| {
            ClusterError::NoLeader(format!(
                "cannot reach the cluster's leader `{}` at {}: {error}",
                leader.tag, leader.url
            ))
        })?;
        ClusterError::from_reply(reply).await
    }

    async fn fetch_report(&self, url: &str) -> Result<NodeReport, ClusterError> {
        let reply = self
            .client
            .get(format!("{url}/cluster/node-info"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|error| {
                ClusterError::Unreachable(format!("cannot reach a node at {url}: {error}"))
            })?;
        let value = ClusterError::from_reply(reply).await.map_err(|error| {
            ClusterError::Unreachable(format!("{url} did not answer as a Corvid node: {error}"))
        })?;
        serde_json::from_value(value).map_err(|error| {
            ClusterError::Unreachable(format!("{url} did not answer as a Corvid node: {error}"))
        })
    }

    async fn send_join(&self, node: &NodeInfo) -> Result<(), ClusterError> {
        let secrets_key = match &self.options.secrets_key_file {
            Some(path) => Some(std::fs::read(path).map_err(|error| {
                ClusterError::Internal(format!(
                    "cannot read the secrets key {} to share it: {error}",
                    path.display()
                ))
            })?),
            None => None,
        };
        let body = JoinRequest {
            tag: node.tag.clone(),
            url: node.url.clone(),
            topology_id: self.topology_id(),
            secrets_key: secrets_key.map(|it| base64::engine::general_purpose::STANDARD.encode(it)),
        };
        let reply = self
            .client
            .post(format!("{}/cluster/join", node.url))
            .timeout(Duration::from_secs(10))
            .json(&body)
            .send()
            .await
            .map_err(|error| {
                ClusterError::Unreachable(format!(
                    "cannot reach node `{}` at {}: {error}",
                    node.tag, node.url
                ))
            })?;
        ClusterError::from_reply(reply).await.map(|_| ())
    }

    /// `POST /cluster/join` on the node being added: drops this node's cluster of one and
    /// waits, as `tag`, for the leader's log. Refused if this node has other members or holds
    /// databases (`databases`).
    pub async fn join(&self, request: JoinRequest, databases: usize) -> Result<(), ClusterError> {
        let _guard = self.changes.lock().await;
        let report = self.report(databases);
        let former_member =
            request.topology_id.is_some() && request.topology_id == report.topology_id;
        if !former_member && report.cluster_size > 1 {
            return Err(ClusterError::BadRequest(format!(
                "node `{}` already belongs to a cluster of {} nodes",
                report.node_tag, report.cluster_size
            )));
        }
        if databases > 0 {
            return Err(ClusterError::BadRequest(format!(
                "node `{}` holds {databases} database(s); a node joins a cluster empty",
                report.node_tag
            )));
        }
        if let Some(given) = &self.options.tag
            && given != &request.tag
        {
            return Err(ClusterError::BadRequest(format!(
                "this node was started with --node-tag {given}; it cannot join as `{}`",
                request.tag
            )));
        }
        if let (Some(key), Some(path)) = (&request.secrets_key, &self.options.secrets_key_file) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key)
                .map_err(|error| ClusterError::BadRequest(format!("secrets key: {error}")))?;
            replace_file(path, &bytes).map_err(|error| {
                ClusterError::Internal(format!(
                    "cannot keep the cluster's secrets key in {}: {error}",
                    path.display()
                ))
            })?;
        }
        self.restart_empty(&request.tag, false).await?;
        tracing::info!(tag = %request.tag, "joining a cluster: waiting for the leader's log");
        Ok(())
    }

    /// `POST /cluster/leave` on a node its cluster removed: it forms a cluster of one
    /// again, under the same tag, so it can serve on its own or be added to a cluster later.
    /// The removed node may never see the entry that removed it (the leader stops sending it
    /// the log), so it takes the leader's word, given with the cluster's id; a request naming
    /// another cluster is refused.
    pub async fn leave(&self, request: LeaveRequest) -> Result<(), ClusterError> {
        let _guard = self.changes.lock().await;
        let mine = self.topology_id();
        if mine.is_none() || request.topology_id != mine {
            return Err(ClusterError::BadRequest(format!(
                "node `{}` belongs to cluster {}, not to {}",
                self.me().tag,
                mine.as_deref().unwrap_or("(none yet)"),
                request.topology_id.as_deref().unwrap_or("(none)")
            )));
        }
        let tag = self.me().tag;
        self.restart_empty(&tag, true).await?;
        tracing::info!(%tag, "removed from the cluster: formed a cluster of one");
        Ok(())
    }

    /// Replaces the Raft instance with one on an empty file, tagged `tag`; with `form`, the new
    /// instance forms a cluster of one.
    async fn restart_empty(&self, tag: &str, form: bool) -> Result<(), ClusterError> {
        let id = node_id(tag).map_err(|error| ClusterError::BadRequest(error.to_string()))?;
        let old = self.raft();
        if let Err(error) = old.shutdown().await {
            tracing::warn!(%error, "the old Raft instance did not shut down cleanly");
        }
        let me = NodeInfo {
            tag: tag.to_owned(),
            url: self.options.url.clone(),
        };
        store::reset(&self.db, &me)?;
        let raft = new_raft(&self.options, id, &self.db, &self.records, &self.network).await?;
        if form {
            let mut members = BTreeMap::new();
            members.insert(id, me.clone());
            raft.initialize(members).await.map_err(|error| {
                ClusterError::Internal(format!("cannot form a cluster of one: {error}"))
            })?;
            if let Err(error) = raft
                .wait(Some(Duration::from_secs(5)))
                .current_leader(id, "a cluster of one elects itself")
                .await
            {
                tracing::warn!(%error, "this node did not become the leader of its cluster of one");
            }
        }
        *self.current.write().unwrap_or_else(|it| it.into_inner()) = Current { raft, me, id };
        Ok(())
    }
}

/// Writes a file whole (owner-only), through a temporary file renamed over it.
fn replace_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let temporary = path.with_extension("joining");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

fn normalize_url(url: &str) -> Result<String, ClusterError> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed)
        .map_err(|error| ClusterError::BadRequest(format!("`{url}` is not a URL: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ClusterError::BadRequest(format!(
            "`{url}` is not an http:// or https:// URL of a node"
        )));
    }
    if parsed.path() != "/" || parsed.query().is_some() {
        return Err(ClusterError::BadRequest(format!(
            "`{url}` has a path or query; give the node's base URL (such as http://10.0.0.2:8080)"
        )));
    }
    Ok(trimmed.to_owned())
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}
