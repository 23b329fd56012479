//! The HTTP routes, RavenDB's paths and JSON shapes. Handlers parse, call the store, and shape
//! the answer; no business logic lives here.

mod attachments;
pub(crate) mod bulk_docs;
mod bulk_insert;
mod certificates;
mod changes;
mod cluster;
mod docs;
pub(crate) mod etl;
mod etl_olap;
mod hilo;
mod monitoring;
mod multi_get;
mod operations;
mod patch;
mod queries;
pub(crate) mod server;
mod stats;
mod streams;
mod test_connection;
pub(crate) mod unsupported;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::routing::{any, get, post, put};
use axum::{Extension, Router};
use tracing::Instrument as _;

use crate::error::ApiError;
use crate::guard::guard_requests;
use crate::http::render_errors;
use crate::state::AppState;

/// Builds the application: every route, error rendering and request tracing.
pub fn app(state: AppState) -> Router {
    // `multi_get` dispatches its inner requests to every route but itself, so one inside
    // another is an unknown route, not a recursion.
    let inner_routes = multi_get::InnerRoutes(with_layers(routes(), state.clone()));
    let routes = routes()
        .route("/databases/{db}/multi_get", post(multi_get::multi_get))
        .layer(Extension(inner_routes));
    with_layers(routes, state)
}

/// The routes of the RavenDB protocol except `multi_get`.
fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(crate::studio::redirect))
        .route("/studio", get(crate::studio::redirect))
        .route("/studio/", get(crate::studio::redirect))
        .route("/studio/index.html", get(crate::studio::index))
        .route(
            "/studio/assets/{version}/{*path}",
            get(crate::studio::asset),
        )
        .route("/topology", get(server::topology))
        .route("/cluster/topology", get(cluster::topology))
        .route("/cluster/node-info", get(cluster::node_info))
        .route(
            "/admin/cluster/node",
            put(cluster::add_node).delete(cluster::remove_node),
        )
        .route("/cluster/join", post(cluster::join))
        .route("/cluster/leave", post(cluster::leave))
        .route("/cluster/raft/{group}/{kind}", post(cluster::raft_message))
        .route("/cluster/command", post(cluster::command))
        .route(
            "/cluster/databases/{name}/write",
            post(cluster::forwarded_write),
        )
        .route("/build/version", get(server::build_version))
        .route("/metrics", get(monitoring::metrics))
        .route("/setup/alive", get(monitoring::alive))
        .route("/health/ready", get(monitoring::ready))
        .route(
            "/admin/certificates",
            put(certificates::put_certificate)
                .get(certificates::get_certificates)
                .delete(certificates::delete_certificate),
        )
        .route("/certificates/whoami", get(certificates::whoami))
        .route(
            "/admin/test-connection",
            post(test_connection::test_connection),
        )
        .route(
            "/admin/databases",
            get(server::database_record)
                .put(server::create_database)
                .delete(server::delete_database),
        )
        .route("/databases", get(server::list_databases))
        .route(
            "/databases/{db}/docs",
            get(docs::get_docs)
                .head(docs::head_doc)
                .put(docs::put_doc)
                .delete(docs::delete_doc)
                .post(docs::post_docs)
                .patch(patch::patch_doc),
        )
        .route("/databases/{db}/bulk_docs", post(bulk_docs::bulk_docs))
        .route(
            "/databases/{db}/json-patch",
            axum::routing::patch(patch::json_patch_doc),
        )
        .route(
            "/databases/{db}/bulk_insert",
            post(bulk_insert::bulk_insert),
        )
        .route(
            "/databases/{db}/attachments",
            get(attachments::get_attachment)
                .head(attachments::head_attachment)
                .put(attachments::put_attachment)
                .delete(attachments::delete_attachment),
        )
        .route("/databases/{db}/changes", get(changes::changes))
        .route("/databases/{db}/hilo/next", get(hilo::next))
        .route("/databases/{db}/hilo/return", put(hilo::return_range))
        .route(
            "/databases/{db}/collections/stats",
            get(stats::collection_stats),
        )
        .route("/databases/{db}/stats", get(stats::database_stats))
        .route(
            "/databases/{db}/collections/docs",
            get(docs::get_collection_docs),
        )
        .route(
            "/databases/{db}/operations/next-operation-id",
            get(operations::next_operation_id),
        )
        .route(
            "/databases/{db}/operations/state",
            get(operations::operation_state),
        )
        .route(
            "/databases/{db}/operations/kill",
            post(operations::kill_operation),
        )
        .route(
            "/databases/{db}/queries",
            post(queries::post_query)
                .get(queries::get_query)
                .patch(patch::patch_by_query)
                .delete(patch::delete_by_query),
        )
        .route(
            "/databases/{db}/streams/queries",
            get(streams::stream_query_get).post(streams::stream_query_post),
        )
        .route("/databases/{db}/streams/docs", get(streams::stream_docs))
        .route(
            "/databases/{db}/admin/connection-strings",
            put(etl::put_connection_string)
                .get(etl::get_connection_strings)
                .delete(etl::delete_connection_string),
        )
        // `any`: RESET is not a standard method.
        .route("/databases/{db}/admin/etl", any(etl::admin_etl))
        .route(
            "/databases/{db}/admin/etl/raven/test",
            post(etl::test_raven_etl),
        )
        .route(
            "/databases/{db}/admin/etl/sql/test",
            post(etl::test_sql_etl),
        )
        .route(
            "/databases/{db}/admin/etl/queue/test",
            post(etl::test_queue_etl),
        )
        .route(
            "/databases/{db}/admin/etl/olap/test",
            post(etl_olap::test_olap_etl),
        )
        .route(
            "/databases/{db}/admin/etl/sql/test-connection",
            post(etl::test_sql_connection),
        )
        .route(
            "/databases/{db}/admin/tasks/state",
            post(etl::set_task_state),
        )
        .route(
            "/databases/{db}/admin/tasks",
            axum::routing::delete(etl::delete_task),
        )
        .route("/databases/{db}/task", get(etl::get_task))
        .route("/databases/{db}/tasks", get(etl::get_tasks))
        .route("/databases/{db}/etl/stats", get(etl::etl_stats))
        .route("/databases/{db}/etl/progress", get(etl::etl_progress))
        .route("/databases/{db}/etl/performance", get(etl::etl_performance))
        .merge(unsupported::routes())
}

/// Adds the unknown-route answer, authorization, error rendering and request tracing, and the
/// state.
fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        // After authorization: a replicated database's task requests go to the node that
        // runs its tasks.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::replication::to_leader,
        ))
        // Inside render_errors: a refusal is an ApiError like any other.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authorize,
        ))
        // Before authorization: a web page's request is refused whoever it claims to be.
        .layer(middleware::from_fn_with_state(
            std::sync::Arc::new(state.options().guard.clone()),
            guard_requests,
        ))
        .layer(middleware::from_fn(render_errors))
        .layer(middleware::from_fn(trace_request))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::record_request,
        ))
        // Handlers enforce the configured limit themselves, with a JSON 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// RavenDB answers an unknown route with 400 `RouteNotFoundException`, not 404: the official
/// clients read a 404 as "no such document" and would fail silently.
async fn no_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "Raven.Client.Exceptions.RouteNotFoundException",
        format!("there is no handler for {method} {}", uri.path()),
    )
}

async fn trace_request(request: Request, next: middleware::Next) -> axum::response::Response {
    let span =
        tracing::debug_span!("request", method = %request.method(), path = %request.uri().path());
    async move {
        let response = next.run(request).await;
        tracing::debug!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}
