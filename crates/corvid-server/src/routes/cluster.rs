//! The cluster's routes: RavenDB's `GET /cluster/topology`, `GET /cluster/node-info`,
//! `PUT`/`DELETE /admin/cluster/node`, and the Raft messages between nodes
//! (`POST /cluster/raft/{group}/{kind}`, `/cluster/join`, `/cluster/leave`), all handed to corvid-cluster's [`corvid_cluster::Cluster`].

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use corvid_cluster::{Cluster, JoinRequest, LeaveRequest, ServerState, Topology};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::extract::{BodyBytes, Params};
use crate::http::json_value;
use crate::routes::server::{NODE_TAG, node_url};
use crate::state::AppState;

fn cluster(state: &AppState) -> Result<&std::sync::Arc<Cluster>, ApiError> {
    state.cluster().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "System.InvalidOperationException",
            "this server runs without a cluster",
        )
    })
}

/// `GET /cluster/topology`: the members, the leader and each node's state, in RavenDB's shape.
pub(crate) async fn topology(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.cluster() {
        Some(cluster) => json_value(StatusCode::OK, &topology_json(&cluster.topology())),
        None => {
            let url = node_url(&state, &headers);
            json_value(
                StatusCode::OK,
                &json!({
                    "Topology": {
                        "TopologyId": "corvid",
                        "AllNodes": {NODE_TAG: url},
                        "Members": {NODE_TAG: url},
                        "Promotables": {},
                        "Watchers": {},
                        "LastNodeId": NODE_TAG,
                        "Etag": 1,
                    },
                    "Etag": 1,
                    "Leader": NODE_TAG,
                    "NodeTag": NODE_TAG,
                    "CurrentState": "Leader",
                    "CurrentTerm": 1,
                    "Status": {},
                }),
            )
        }
    }
}

fn state_name(state: ServerState, in_cluster: bool) -> &'static str {
    match state {
        ServerState::Leader => "Leader",
        ServerState::Follower => "Follower",
        ServerState::Candidate => "Candidate",
        ServerState::Learner if in_cluster => "Follower",
        ServerState::Learner => "Passive",
        ServerState::Shutdown => "Passive",
    }
}

fn iso(time: std::time::SystemTime) -> Value {
    Value::String(corvid_store::Timestamp::from_system_time(time).to_iso())
}

fn topology_json(topology: &Topology) -> Value {
    let mut all = Map::new();
    let mut members = Map::new();
    let mut promotables = Map::new();
    let mut status = Map::new();
    let mut last_tag = String::new();
    for node in &topology.nodes {
        let tag = node.node.tag.clone();
        all.insert(tag.clone(), Value::String(node.node.url.clone()));
        if node.voter {
            members.insert(tag.clone(), Value::String(node.node.url.clone()));
        } else {
            promotables.insert(tag.clone(), Value::String(node.node.url.clone()));
        }
        if tag > last_tag {
            last_tag = tag.clone();
        }
        if let Some(peer) = &node.status {
            let connected = peer
                .last_reply
                .is_some_and(|(at, _)| at.elapsed() < std::time::Duration::from_secs(3));
            status.insert(
                tag.clone(),
                json!({
                    "Name": tag,
                    "Connected": connected,
                    "ErrorDetails": peer.error,
                    "LastSent": peer.last_sent.map(iso),
                    "LastReply": peer.last_reply.map(|(_, at)| iso(at)),
                    "LastSentMessage": null,
                    "LastMatchingIndex": node.matched_index.unwrap_or(0),
                }),
            );
        }
    }
    let in_cluster = topology
        .nodes
        .iter()
        .any(|it| it.node.tag == topology.me.tag);
    json!({
        "Topology": {
            "TopologyId": topology.topology_id,
            "AllNodes": all,
            "Members": members,
            "Promotables": promotables,
            "Watchers": {},
            "LastNodeId": last_tag,
            "Etag": topology.applied_index,
        },
        "Etag": topology.applied_index,
        "Leader": topology.leader.as_ref().map(|it| it.tag.clone()),
        "NodeTag": topology.me.tag,
        "NodeUrl": topology.me.url,
        "CurrentState": state_name(topology.state, in_cluster),
        "CurrentTerm": topology.term,
        "LastLogIndex": topology.last_log_index,
        "AppliedIndex": topology.applied_index,
        "Status": status,
    })
}

/// `GET /cluster/node-info`: who this node is, for a leader deciding whether it may join.
pub(crate) async fn node_info(State(state): State<AppState>) -> Result<Response, ApiError> {
    let cluster = cluster(&state)?;
    let report = cluster.report(state.storage().databases().len());
    Ok(json_value(
        StatusCode::OK,
        &serde_json::to_value(report).map_err(ApiError::internal)?,
    ))
}

/// `PUT /admin/cluster/node?url=&tag=`: adds a node to the cluster.
pub(crate) async fn add_node(
    State(state): State<AppState>,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let cluster = cluster(&state)?;
    let Some(url) = params.get("url").filter(|it| !it.is_empty()) else {
        return Err(ApiError::bad_request(
            "the node's URL is required: `PUT /admin/cluster/node?url=http://…&tag=B`",
        ));
    };
    let tag = params.get("tag").filter(|it| !it.is_empty());
    let answer = cluster.add_node(url, tag).await?;
    Ok(json_value(StatusCode::OK, &answer))
}

/// `DELETE /admin/cluster/node?nodeTag=`: removes a node from the cluster.
pub(crate) async fn remove_node(
    State(state): State<AppState>,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let cluster = cluster(&state)?;
    let Some(tag) = params.get("nodeTag").filter(|it| !it.is_empty()) else {
        return Err(ApiError::bad_request(
            "the node's tag is required: `DELETE /admin/cluster/node?nodeTag=B`",
        ));
    };
    let holding = crate::replication::databases_on(cluster, tag);
    if !holding.is_empty() {
        return Err(ApiError::bad_request(format!(
            "node `{tag}` is a member of replicated database(s) {}; moving a database's members to other nodes is not supported yet, so delete the database(s) first",
            holding.join(", ")
        )));
    }
    let answer = cluster.remove_node(tag).await?;
    Ok(json_value(StatusCode::OK, &answer))
}

/// `POST /cluster/join`: the leader adding this node (it drops its cluster of one).
pub(crate) async fn join(
    State(state): State<AppState>,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let cluster = cluster(&state)?;
    let request: JoinRequest = serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("not a join request: {error}")))?;
    cluster
        .join(request, state.storage().databases().len())
        .await?;
    // The key file may have been replaced by the cluster's.
    state.etl().reload_secrets_key();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /cluster/leave`: the leader has removed this node (it forms a cluster of one).
pub(crate) async fn leave(
    State(state): State<AppState>,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let cluster = cluster(&state)?;
    let request: LeaveRequest = serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("not a leave request: {error}")))?;
    cluster.leave(request).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /cluster/raft/{group}/{kind}`: a Raft message (`append`, `vote`, `snapshot`) from
/// another node of `group`.
pub(crate) async fn raft_message(
    State(state): State<AppState>,
    Path((group, kind)): Path<(String, String)>,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let answer = cluster(&state)?.handle_rpc(&group, &kind, &body).await?;
    Ok((
        [(header::CONTENT_TYPE, corvid_cluster::network::MESSAGE_TYPE)],
        answer,
    )
        .into_response())
}

/// `POST /cluster/command`: a cluster command another node proposes, applied on the leader.
pub(crate) async fn command(
    State(state): State<AppState>,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let cluster = cluster(&state)?;
    let command: corvid_cluster::Command = serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("not a cluster command: {error}")))?;
    let index = cluster.command_from_peer(command).await?;
    Ok(json_value(
        StatusCode::OK,
        &json!({"RaftCommandIndex": index}),
    ))
}

/// `POST /cluster/databases/{name}/write`: a write another member of the database's group
/// forwarded to this node, its leader.
pub(crate) async fn forwarded_write(
    State(state): State<AppState>,
    Path(name): Path<String>,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let cluster = cluster(&state)?;
    let group = cluster.groups().get(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Raven.Client.Exceptions.Cluster.NoLeaderException",
            format!("this node does not lead database `{name}`'s group: it is no member"),
        )
    })?;
    let write: corvid_cluster::ForwardedWrite = corvid_cluster::network::decode(&body)
        .map_err(|error| ApiError::bad_request(format!("not a forwarded write: {error}")))?;
    let answer = group.forwarded(write).await?;
    let bytes = corvid_cluster::network::encode(&answer).map_err(ApiError::internal)?;
    Ok((
        [(header::CONTENT_TYPE, corvid_cluster::network::MESSAGE_TYPE)],
        bytes,
    )
        .into_response())
}
