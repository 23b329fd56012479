//! Corvid's HTTP server: RavenDB-compatible routes and JSON shapes over `corvid-store`, so
//! RavenDB's official clients work against Corvid.
//!
//! [`app`] builds the axum `Router` (tests drive it with `tower::ServiceExt::oneshot`);
//! [`serve`] runs it on a listener until a shutdown future completes, finishing the requests
//! in flight, with the connection limits of [`ConnectionOptions`].
//!
//! Errors are [`ApiError`]s rendered as RavenDB's `{Url, Type, Message, Error}` with RavenDB's
//! status codes. Handlers never block the runtime: store reads run on the blocking pool and
//! writes go to each database's writer thread.

mod auth;
mod changes;
mod error;
mod extract;
mod guard;
mod http;
mod listener;
mod metrics;
mod operations;
mod patch;
mod query;
mod replication;
mod routes;
mod state;
pub mod studio;

pub use auth::{DatabaseAccess, SecurityClearance};
pub use changes::ChangesOptions;
pub use error::ApiError;
pub use guard::RequestGuard;
pub use listener::{
    CertificateError, ConnectionOptions, ServerCertificate, first_pem_certificate,
    raise_open_files_limit, serve,
};
pub use routes::app;
pub use state::{AppState, ServerOptions};
