//! Replicated databases on this node (docs/design/cluster.md §3). The cluster's
//! `databases/{key}` records say which databases are replicated and on which nodes; this node
//! keeps its copies, and its members of their groups, in line with them, and runs a
//! replicated database's ETL tasks (and tombstone cleaner) only while it leads the group.

use std::sync::Arc;
use std::time::Duration;

use corvid_cluster::{Cluster, Command};
use corvid_store::key_of;
use serde::{Deserialize, Serialize};

use crate::state::AppState;

/// The cluster records of replicated databases: `databases/{key}`.
pub(crate) const RECORD_PREFIX: &str = "databases/";

/// How often this node compares its databases with the cluster's records.
const RECONCILE_EVERY: Duration = Duration::from_millis(200);

/// A replicated database as the cluster records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DatabaseRecord {
    pub name: String,
    /// The id every member's change vectors carry.
    pub id: String,
    /// The member nodes' tags; the first created the group.
    pub members: Vec<String>,
}

pub(crate) fn record_key(name: &str) -> String {
    format!("{RECORD_PREFIX}{}", key_of(name))
}

/// The record of a replicated database, if `name` is one.
pub(crate) fn record(cluster: &Cluster, name: &str) -> Option<DatabaseRecord> {
    serde_json::from_value(cluster.record(&record_key(name))?).ok()
}

fn records(cluster: &Cluster) -> Vec<DatabaseRecord> {
    cluster
        .records(RECORD_PREFIX)
        .into_iter()
        .filter_map(|(key, value)| match serde_json::from_value(value) {
            Ok(record) => Some(record),
            Err(error) => {
                tracing::error!(%key, %error, "unreadable database record");
                None
            }
        })
        .collect()
}

/// The replicated databases `tag` is a member of, by name.
pub(crate) fn databases_on(cluster: &Cluster, tag: &str) -> Vec<String> {
    records(cluster)
        .into_iter()
        .filter(|it| it.members.iter().any(|member| member == tag))
        .map(|it| it.name)
        .collect()
}

/// Proposes a record to the cluster (from any node).
pub(crate) async fn put_record(
    cluster: &Cluster,
    record: &DatabaseRecord,
) -> Result<u64, corvid_cluster::ClusterError> {
    let value = serde_json::to_value(record)
        .map_err(|error| corvid_cluster::ClusterError::Internal(error.to_string()))?;
    cluster
        .propose(Command::Put {
            key: record_key(&record.name),
            value,
        })
        .await
}

/// Removes a replicated database's record (every member then deletes its copy).
pub(crate) async fn delete_record(
    cluster: &Cluster,
    name: &str,
) -> Result<u64, corvid_cluster::ClusterError> {
    cluster
        .propose(Command::Delete {
            key: record_key(name),
        })
        .await
}

/// Keeps this node's replicated databases in line with the cluster's records, until the
/// server stops.
pub(crate) fn spawn(state: AppState) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(RECONCILE_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if state.is_shutting_down() {
                return;
            }
            let Some(cluster) = state.cluster().cloned() else {
                continue;
            };
            reconcile(&state, &cluster).await;
        }
    });
}

async fn reconcile(state: &AppState, cluster: &Arc<Cluster>) {
    let me = cluster.me().tag;
    let records = records(cluster);
    let storage = state.storage().clone();
    for record in records.iter().filter(|it| it.members.contains(&me)) {
        let database = match storage.database(&record.name) {
            Some(it) if it.is_replicated() && it.id() == record.id => it,
            // An older copy (deleted below first), or a database of this node alone with the
            // same name, which creating the replicated one refuses (`create_replicated`).
            Some(_) => continue,
            None => {
                let storage = storage.clone();
                let (name, id) = (record.name.clone(), record.id.clone());
                match tokio::task::spawn_blocking(move || {
                    storage.create_replicated_database(&name, &id)
                })
                .await
                {
                    Ok(Ok(it)) => {
                        tracing::info!(database = %record.name, members = ?record.members, "created this node's copy of a replicated database");
                        it
                    }
                    Ok(Err(error)) => {
                        tracing::error!(database = %record.name, %error, "cannot create this node's copy of a replicated database");
                        continue;
                    }
                    Err(_) => continue,
                }
            }
        };
        if cluster.groups().get(&record.name).is_none()
            && let Err(error) = cluster.start_group(database, &record.members).await
        {
            tracing::error!(database = %record.name, %error, "cannot join the database's group");
        }
    }
    // Copies whose database was deleted, moved off this node, or recreated under a new id.
    for database in storage.databases() {
        if !database.is_replicated() {
            continue;
        }
        let kept = records.iter().any(|it| {
            key_of(&it.name) == key_of(database.name())
                && it.id == database.id()
                && it.members.contains(&me)
        });
        if kept {
            continue;
        }
        let name = database.name().to_owned();
        state.etl().stop_database(&name);
        cluster.stop_group(&name, true).await;
        let storage = storage.clone();
        let deleting = name.clone();
        match tokio::task::spawn_blocking(move || storage.delete_database(&deleting)).await {
            Ok(Ok(())) => {
                tracing::info!(database = %name, "deleted this node's copy of a replicated database")
            }
            Ok(Err(error)) => {
                tracing::error!(database = %name, %error, "cannot delete this node's copy")
            }
            Err(_) => {}
        }
    }
    // A replicated database's tasks run where its group is led.
    for group in cluster.groups().all() {
        let name = group.name();
        let leading = group.is_leader();
        let running = state.etl().has_database(name);
        if leading && !running {
            // Only a leader a majority confirms, caught up with what was committed before it,
            // runs the tasks: a member restarted with its old vote believes it leads for a
            // moment, with a database that has not replayed its log yet.
            if !group.confirm_leadership(Duration::from_secs(2)).await {
                continue;
            }
            tracing::info!(database = %name, "this node leads the database's group: starting its ETL tasks");
            if let Err(error) = state.etl().start_database(group.database().clone()) {
                tracing::error!(database = %name, %error, "cannot start ETL");
            }
        } else if !leading && running {
            tracing::info!(database = %name, "this node no longer leads the database's group: stopping its ETL tasks");
            let etl = state.etl().clone();
            let name = name.to_owned();
            let _ = tokio::task::spawn_blocking(move || etl.stop_database(&name)).await;
        }
    }
}

/// How long a task request waits for the database's group to have a leader (an election).
const LEADER_WAIT: Duration = Duration::from_secs(8);

/// The header a proxied request carries, so the node it reaches handles it itself.
pub(crate) const FORWARDED_HEADER: &str = "corvid-forwarded-by";

/// Whether a path is about a database's tasks: its ETL settings, tasks and their state, which
/// the node leading the database's group runs (`/databases/{db}/admin/…`, `/etl/…`,
/// `/task`, `/tasks`). Returns the database's name.
fn task_route(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/databases/")?;
    let (db, tail) = rest.split_once('/')?;
    let tasks =
        tail.starts_with("admin/") || tail.starts_with("etl/") || tail == "task" || tail == "tasks";
    tasks.then_some(db)
}

/// Sends a replicated database's task requests to the node leading its group, where its ETL
/// processes run: their settings change, and their state is read, there. Other requests, and
/// databases that are not replicated, go on here.
pub(crate) async fn to_leader(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let leader = (|| {
        if request.headers().contains_key(FORWARDED_HEADER) {
            return None;
        }
        let cluster = state.cluster()?;
        let db = task_route(request.uri().path())?;
        let db = percent_decode(db);
        let group = cluster.groups().get(&db)?;
        Some((cluster.clone(), group, cluster.me()))
    })();
    let Some((cluster, group, me)) = leader else {
        return next.run(request).await;
    };
    match group.wait_for_leader(LEADER_WAIT).await {
        Some(leader) if leader.tag == me.tag => next.run(request).await,
        Some(leader) => match proxy(&cluster, &leader, &me.tag, request).await {
            Ok(response) => response,
            Err(error) => axum::response::IntoResponse::into_response(error),
        },
        None => axum::response::IntoResponse::into_response(crate::error::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Raven.Client.Exceptions.Cluster.NoLeaderException",
            format!(
                "database `{}`'s group has no leader: it is electing one, or a majority of its members cannot be reached",
                group.name()
            ),
        )),
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The largest request body sent on to the leader (task settings are small).
const PROXY_BODY_LIMIT: usize = 64 * 1024 * 1024;

async fn proxy(
    cluster: &Cluster,
    leader: &corvid_cluster::NodeInfo,
    me: &str,
    request: axum::extract::Request,
) -> Result<axum::response::Response, crate::error::ApiError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, PROXY_BODY_LIMIT)
        .await
        .map_err(|error| crate::error::ApiError::bad_request(format!("request body: {error}")))?;
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |it| it.as_str().to_owned());
    let relayed = corvid_cluster::RelayedRequest {
        method: parts.method.as_str().to_owned(),
        path,
        content_type: parts
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|it| it.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
    };
    let answer = cluster
        .relay(leader, (FORWARDED_HEADER, me), relayed)
        .await
        .map_err(|error| {
            crate::error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "Raven.Client.Exceptions.Cluster.NoLeaderException",
                format!("the node leading the database's group runs its tasks, and {error}"),
            )
        })?;
    let mut response = axum::response::Response::new(axum::body::Body::from(answer.body));
    *response.status_mut() = axum::http::StatusCode::from_u16(answer.status)
        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    if let Some(kind) = answer
        .content_type
        .and_then(|it| axum::http::HeaderValue::from_str(&it).ok())
    {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, kind);
    }
    Ok(response)
}
