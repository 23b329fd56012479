//! Server-level routes: topology, version, and database management.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::{QueryParams, blocking, json_kind, json_value, parse_json, read_body};
use crate::state::AppState;

/// The cluster tag of this (single) node.
pub(crate) const NODE_TAG: &str = "A";

/// The URL clients should use for this node: built from the request's `Host`, as RavenDB does,
/// so a client reaches the node the way it reached it the first time.
pub(crate) fn node_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|it| it.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// `GET /topology?name=db`: the nodes that serve a database.
pub(crate) async fn topology(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(raw.as_deref())?;
    let url = node_url(&headers);
    let nodes = match params.get("name") {
        Some(name) if !name.is_empty() => {
            let database = state.database(name)?;
            vec![json!({
                "Url": url,
                "ClusterTag": NODE_TAG,
                "ServerRole": "Member",
                "Database": database.name(),
            })]
        }
        _ => vec![json!({"Url": url, "ClusterTag": NODE_TAG, "ServerRole": "Member"})],
    };
    Ok(json_value(
        StatusCode::OK,
        &json!({"Nodes": nodes, "Etag": 1}),
    ))
}

/// `GET /cluster/topology`: a single-node cluster.
pub(crate) async fn cluster_topology(headers: HeaderMap) -> Response {
    let url = node_url(&headers);
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
            "Status": {},
        }),
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(raw.as_deref())?;
    let bytes = read_body(body, state.options().max_body_bytes).await?;
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
    let storage = state.storage().clone();
    let created = blocking(move || Ok(storage.create_database(&name)?)).await?;
    state.etl().start_database(created.clone())?;
    tracing::info!(database = created.name(), "created database");
    Ok(json_value(
        StatusCode::CREATED,
        &json!({
            "RaftCommandIndex": state.next_command_index(),
            "Name": created.name(),
            "NodesAddedTo": [node_url(&headers)],
        }),
    ))
}

/// `DELETE /admin/databases`: deletes the databases named in `DatabaseNames` (or `name=`).
pub(crate) async fn delete_database(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(raw.as_deref())?;
    let bytes = read_body(body, state.options().max_body_bytes).await?;
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
        &json!({"RaftCommandIndex": state.next_command_index(), "PendingDeletes": []}),
    ))
}

/// `GET /databases`: the databases of this server.
pub(crate) async fn list_databases(State(state): State<AppState>) -> Result<Response, ApiError> {
    let storage = state.storage().clone();
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
                "NodesTopology": {"Members": [{"NodeTag": NODE_TAG}]},
            }));
        }
        Ok(found)
    })
    .await?;
    Ok(json_value(StatusCode::OK, &json!({"Databases": databases})))
}
