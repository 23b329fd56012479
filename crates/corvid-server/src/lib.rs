//! Corvid's HTTP server: RavenDB-compatible routes and JSON shapes over `corvid-store`, so
//! RavenDB's official clients work against Corvid.
//!
//! [`app`] builds the axum `Router` (tests drive it with `tower::ServiceExt::oneshot`);
//! [`serve`] runs it on a listener until a shutdown future completes, finishing the requests
//! in flight.
//!
//! Errors are [`ApiError`]s rendered as RavenDB's `{Url, Type, Message, Error}` with RavenDB's
//! status codes. Handlers never block the runtime: store reads run on the blocking pool and
//! writes go to each database's writer thread.

mod changes;
mod error;
mod extract;
mod guard;
mod http;
mod metrics;
mod operations;
mod patch;
mod query;
mod routes;
mod state;

use std::future::Future;

pub use changes::ChangesOptions;
pub use error::ApiError;
pub use guard::RequestGuard;
pub use routes::app;
pub use state::{AppState, ServerOptions};

/// Serves the app on `listener` until `shutdown` completes; requests in flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(state.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            state.begin_shutdown();
        })
        .await
}
