//! Server-level routes: topology, version, and database management.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{BodyBytes, Params};
use crate::http::{blocking, json_kind, json_value, parse_json};
use crate::replication::{self, DatabaseRecord};
use crate::state::AppState;

/// The cluster tag of this (single) node.
pub(crate) const NODE_TAG: &str = "A";

/// The URL clients should use for this node: built from the request's `Host`, as RavenDB does,
/// so a client reaches the node the way it reached it the first time.
pub(crate) fn node_url(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|it| it.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = if state.secured() { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// `GET /topology?name=db`: the nodes that serve a database.
pub(crate) async fn topology(
    State(state): State<AppState>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let url = node_url(&state, &headers);
    if let Some(name) = params.get("name")
        && let Some(cluster) = state.cluster()
        && let Some(record) = replication::record(cluster, name)
    {
        return Ok(replicated_topology(cluster, &record));
    }
    let nodes = match params.get("name") {
        Some(name) if !name.is_empty() => {
            let database = state.database(name)?;
            vec![json!({
                "Url": url,
                "ClusterTag": state.node_tag(),
                "ServerRole": "Member",
                "Database": database.name(),
            })]
        }
        _ => vec![json!({"Url": url, "ClusterTag": state.node_tag(), "ServerRole": "Member"})],
    };
    Ok(json_value(
        StatusCode::OK,
        &json!({"Nodes": nodes, "Etag": 1}),
    ))
}

/// The topology of a replicated database: its members, the group's leader first (the node
/// the official clients send writes to first), the others in the record's order.
fn replicated_topology(cluster: &corvid_cluster::Cluster, record: &DatabaseRecord) -> Response {
    let group = cluster.groups().get(&record.name);
    let leader = group.as_ref().and_then(|it| it.leader()).map(|it| it.tag);
    let term = group.as_ref().map_or(0, |it| it.term() % 1_000_000);
    let mut members = record.members.clone();
    if let Some(leader) = &leader
        && let Some(at) = members.iter().position(|it| it == leader)
    {
        let tag = members.remove(at);
        members.insert(0, tag);
    }
    let nodes: Vec<Value> = members
        .iter()
        .filter_map(|tag| cluster.node(tag))
        .map(|node| {
            json!({
                "Url": node.url,
                "ClusterTag": node.tag,
                "ServerRole": "Member",
                "Database": record.name,
            })
        })
        .collect();
    json_value(
        StatusCode::OK,
        // Changes with the record and with each election of the group, so a client that
        // compares it sees the new leader first.
        &json!({"Nodes": nodes, "Etag": cluster.topology().applied_index * 1_000_000 + term}),
    )
}

/// `GET /build/version`.
pub(crate) async fn build_version() -> Response {
    json_value(
        StatusCode::OK,
        &json!({
            "ProductVersion": "4.1",
            "BuildVersion": 41,
            "CommitHash": env!("CARGO_PKG_VERSION"),
            "FullVersion": format!("4.1 (Corvid {})", env!("CARGO_PKG_VERSION")),
        }),
    )
}

/// `PUT /admin/databases?name=x`: creates a database from a `DatabaseRecord`.
pub(crate) async fn create_database(
    State(state): State<AppState>,
    Params(params): Params,
    headers: HeaderMap,
    BodyBytes(bytes): BodyBytes,
) -> Result<Response, ApiError> {
    let record = if bytes.is_empty() {
        serde_json::Map::new()
    } else {
        crate::http::parse_json_object(&bytes)?
    };
    let name = match (params.get("name"), record.get("DatabaseName")) {
        (Some(name), _) if !name.is_empty() => name.to_owned(),
        (_, Some(Value::String(name))) => name.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "the database name is required: pass `name` in the query string or `DatabaseName` in the body",
            ));
        }
    };
    let factor = check_replication_factor(&state, &params)?;
    if factor > 1 {
        return create_replicated(&state, &name, factor).await;
    }
    let storage = state.storage().clone();
    let created = blocking(move || Ok(storage.create_database(&name)?)).await?;
    state.etl().start_database(created.clone())?;
    tracing::info!(database = created.name(), "created database");
    Ok(json_value(
        StatusCode::CREATED,
        &json!({
            "RaftCommandIndex": state.next_command_index(),
            "Name": created.name(),
            "NodesAddedTo": [node_url(&state, &headers)],
        }),
    ))
}

/// Creates a database kept on `factor` nodes: this one and the first other members of the
/// cluster by tag. The record goes through the cluster; each member then creates its copy
/// and joins the database's group (`replication`). Answers once this node's copy is ready.
async fn create_replicated(
    state: &AppState,
    name: &str,
    factor: usize,
) -> Result<Response, ApiError> {
    corvid_store::validate_database_name(name)?;
    let cluster = state
        .cluster()
        .cloned()
        .ok_or_else(|| ApiError::bad_request("this server runs without a cluster"))?;
    if state.storage().database(name).is_some() || replication::record(&cluster, name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "Raven.Client.Exceptions.ConcurrencyException",
            format!("database `{name}` already exists"),
        ));
    }
    let me = cluster.me();
    let mut members = vec![me.tag.clone()];
    let topology = cluster.topology();
    let mut others: Vec<_> = topology
        .nodes
        .iter()
        .filter(|it| it.voter && it.node.tag != me.tag)
        .map(|it| it.node.tag.clone())
        .collect();
    others.sort();
    members.extend(others.into_iter().take(factor - 1));
    if members.len() < factor {
        return Err(ApiError::bad_request(format!(
            "replication factor {factor} asks for more nodes than the cluster has as members ({})",
            members.len()
        )));
    }
    // A member holding a database of its own under that name could not take its copy.
    for tag in members.iter().filter(|it| **it != me.tag) {
        if let Some(node) = cluster.node(tag)
            && holds_database(&cluster, &node, name).await
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "Raven.Client.Exceptions.ConcurrencyException",
                format!("node `{tag}` already holds a database named `{name}`"),
            ));
        }
    }
    let record = DatabaseRecord {
        name: name.to_owned(),
        id: corvid_store::new_database_id(),
        members: members.clone(),
    };
    let index = replication::put_record(&cluster, &record).await?;
    // This node is a member: wait until its copy is created and in its group.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while state.storage().database(name).is_none() || cluster.groups().get(name).is_none() {
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Raven.Client.Exceptions.Cluster.NoLeaderException",
                format!(
                    "database `{name}` was recorded in the cluster but this node has not created its copy within 10 s"
                ),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    wait_for_members(&cluster, name, &members, deadline).await;
    if let Some(group) = cluster.groups().get(name) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        group.wait_for_leader(left).await;
    }
    tracing::info!(database = %name, ?members, "created replicated database");
    let urls: Vec<String> = members
        .iter()
        .filter_map(|tag| cluster.node(tag))
        .map(|it| it.url)
        .collect();
    Ok(json_value(
        StatusCode::CREATED,
        &json!({
            "RaftCommandIndex": index,
            "Name": name,
            "NodesAddedTo": urls,
        }),
    ))
}

/// Whether another node answers for a database named `name` (its stats).
async fn holds_database(
    cluster: &corvid_cluster::Cluster,
    node: &corvid_cluster::NodeInfo,
    name: &str,
) -> bool {
    let request = corvid_cluster::RelayedRequest {
        method: "GET".to_owned(),
        path: format!("/databases/{name}/stats"),
        content_type: None,
        body: Vec::new(),
    };
    let me = cluster.me().tag;
    let answer = cluster
        .relay(node, (crate::replication::FORWARDED_HEADER, &me), request)
        .await;
    answer.is_ok_and(|it| it.status == 200)
}

/// Waits (until `deadline`) until every other member has its copy, so a client that goes on
/// with any node of the answer finds the database there; a member that is down gets it when
/// it returns, and does not hold the answer back past the deadline.
async fn wait_for_members(
    cluster: &corvid_cluster::Cluster,
    name: &str,
    members: &[String],
    deadline: tokio::time::Instant,
) {
    let me = cluster.me().tag;
    for tag in members.iter().filter(|it| **it != me) {
        let Some(node) = cluster.node(tag) else {
            continue;
        };
        loop {
            if holds_database(cluster, &node, name).await {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(database = %name, node = %tag, "a member has not created its copy yet; it will when it can");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// RavenDB's `replicationFactor` (the official clients send 1 by default): more than the
/// cluster's nodes is refused. Returns the factor (1 when not given).
fn check_replication_factor(
    state: &AppState,
    params: &crate::http::QueryParams,
) -> Result<usize, ApiError> {
    let Some(text) = params.get("replicationFactor") else {
        return Ok(1);
    };
    let factor: u64 = text.parse().ok().filter(|it| *it >= 1).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`replicationFactor` must be a whole number of nodes, at least 1; got `{text}`"
        ))
    })?;
    let nodes = state
        .cluster()
        .map_or(1, |it| it.topology().nodes.len().max(1)) as u64;
    if factor > nodes {
        return Err(ApiError::bad_request(format!(
            "replication factor {factor} asks for more nodes than the cluster has ({nodes})"
        )));
    }
    Ok(factor as usize)
}

/// `DELETE /admin/databases`: deletes the databases named in `DatabaseNames` (or `name=`).
pub(crate) async fn delete_database(
    State(state): State<AppState>,
    Params(params): Params,
    BodyBytes(bytes): BodyBytes,
) -> Result<Response, ApiError> {
    let mut names: Vec<String> = params
        .get_all("name")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if !bytes.is_empty() {
        let body = parse_json(&bytes)?;
        match body.get("DatabaseNames") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let Value::String(name) = item else {
                        return Err(ApiError::bad_request(format!(
                            "`DatabaseNames` must hold strings, got {}",
                            json_kind(item)
                        )));
                    };
                    names.push(name.clone());
                }
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "`DatabaseNames` must be an array, got {}",
                    json_kind(other)
                )));
            }
        }
    }
    if names.is_empty() {
        return Err(ApiError::bad_request("no database name given"));
    }
    for name in &names {
        state.database(name)?;
    }
    // Replicated databases are deleted through the cluster: every member deletes its copy.
    let mut index = None;
    if let Some(cluster) = state.cluster().cloned() {
        let mut local = Vec::new();
        for name in names {
            if replication::record(&cluster, &name).is_some() {
                index = Some(replication::delete_record(&cluster, &name).await?);
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
                while state.storage().database(&name).is_some()
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            } else {
                local.push(name);
            }
        }
        names = local;
    }
    for name in &names {
        state.etl().stop_database(name);
    }
    let storage = state.storage().clone();
    blocking(move || {
        for name in &names {
            storage.delete_database(name)?;
            tracing::info!(database = %name, "deleted database");
        }
        Ok(())
    })
    .await?;
    Ok(json_value(
        StatusCode::OK,
        &json!({"RaftCommandIndex": index.unwrap_or_else(|| state.next_command_index()), "PendingDeletes": []}),
    ))
}

/// `GET /databases`: the databases of this server.
pub(crate) async fn list_databases(State(state): State<AppState>) -> Result<Response, ApiError> {
    let storage = state.storage().clone();
    let node_tag = state.node_tag();
    let databases = blocking(move || {
        let mut found = Vec::new();
        for database in storage.databases() {
            let snapshot = database.snapshot()?;
            found.push(json!({
                "Name": database.name(),
                "Disabled": false,
                "DatabaseId": database.id(),
                "CountOfDocuments": snapshot.count_documents(None)?,
                "LastDocEtag": database.last_etag(),
                "NodesTopology": {"Members": [{"NodeTag": node_tag}]},
            }));
        }
        Ok(found)
    })
    .await?;
    Ok(json_value(StatusCode::OK, &json!({"Databases": databases})))
}

/// `GET /admin/databases?name=x`: the database record as RavenDB 4.1 gives it, or 404 when there
/// is no such database (the official clients' `GetDatabaseRecordOperation` then returns null,
/// the usual "ensure the database exists" check). The ETL part is the real configuration.
pub(crate) async fn database_record(
    State(state): State<AppState>,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let name = params.required("name")?;
    let Some(database) = state.storage().database(name) else {
        return Err(ApiError::not_found(
            "Raven.Client.Exceptions.Database.DatabaseDoesNotExistException",
            format!("Database {name} wasn't found"),
        ));
    };
    let connections = crate::routes::etl::redacted_connection_strings(&state, &database, |_| true)?;
    let mut raven_etls = Vec::new();
    let mut sql_etls = Vec::new();
    let mut queue_etls = Vec::new();
    let mut olap_etls = Vec::new();
    for config in state.etl().configurations(&database)? {
        let etl_type = config.etl_type();
        let value = serde_json::to_value(config).map_err(ApiError::internal)?;
        match etl_type {
            corvid_etl::EtlType::Raven => raven_etls.push(value),
            corvid_etl::EtlType::Sql => sql_etls.push(value),
            corvid_etl::EtlType::Queue => queue_etls.push(value),
            corvid_etl::EtlType::Olap => olap_etls.push(value),
        }
    }
    Ok(json_value(
        StatusCode::OK,
        &json!({
            "DatabaseName": database.name(),
            "Disabled": false,
            "Encrypted": false,
            "DeletionInProgress": {},
            "Topology": {
                "Members": [state.node_tag()],
                "Promotables": [],
                "Rehabs": [],
                "PredefinedMentors": {},
                "DemotionReasons": {},
                "PromotablesStatus": {},
                "Stamp": {"Index": -1, "Term": 1, "LeadersTicks": 0},
                "DynamicNodesDistribution": false,
                "ReplicationFactor": 1,
                "DatabaseTopologyIdBase64": database.id(),
            },
            "ConflictSolverConfig": null,
            "Indexes": {},
            "AutoIndexes": {},
            "Settings": {},
            "Revisions": null,
            "Expiration": null,
            "PeriodicBackups": [],
            "ExternalReplications": [],
            "RavenConnectionStrings": connections.raven,
            "SqlConnectionStrings": connections.sql,
            "QueueConnectionStrings": connections.queue,
            "OlapConnectionStrings": connections.olap,
            "RavenEtls": raven_etls,
            "SqlEtls": sql_etls,
            "QueueEtls": queue_etls,
            "OlapEtls": olap_etls,
            "Client": null,
            "Studio": null,
            "TruncatedClusterTransactionCommandsCount": 0,
            // RavenDB versions the record for `UpdateDatabaseOperation`, which Corvid does not
            // support; Corvid keeps no record version, so the last document etag stands in.
            "Etag": database.last_etag(),
        }),
    ))
}
