//! The state every handler shares.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use corvid_cluster::Cluster;
use corvid_etl::EtlManager;
use corvid_store::{Database, Storage};

use crate::auth::{CertificateDefinition, CertificateStore, SecurityClearance};
use crate::changes::{ChangesHub, ChangesOptions};
use crate::error::ApiError;
use crate::guard::RequestGuard;
use crate::metrics::RequestMetrics;
use crate::operations::Operations;
use crate::query::IndexRegistry;

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The largest request body accepted, in bytes; larger ones get a 413.
    pub max_body_bytes: usize,
    /// Limits of the Changes API WebSocket connections.
    pub changes: ChangesOptions,
    /// The memory all query auto indexes may use together, in bytes (estimated); past it the
    /// least recently used are dropped.
    pub query_index_max_bytes: usize,
    /// Which `Host` names and web origins are served (see [`crate::guard`]).
    pub guard: RequestGuard,
    /// Timeouts and the connection cap of [`crate::serve`].
    pub connections: crate::listener::ConnectionOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body_bytes: 256 * 1024 * 1024,
            changes: ChangesOptions::default(),
            query_index_max_bytes: 1024 * 1024 * 1024,
            guard: RequestGuard::default(),
            connections: crate::listener::ConnectionOptions::default(),
        }
    }
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<Storage>,
    etl: Arc<EtlManager>,
    options: ServerOptions,
    operations: Arc<Operations>,
    /// The Changes API broadcasters of the watched databases.
    changes: ChangesHub,
    query_indexes: Arc<IndexRegistry>,
    /// Stands in for RavenDB's Raft command index until the cluster exists.
    command_index: AtomicU64,
    /// Request latency histograms for `/metrics`.
    request_metrics: RequestMetrics,
    /// Set when the server starts shutting down: `/health/ready` answers 503 from then on.
    shutting_down: AtomicBool,
    /// The registered client certificates (checked only when `secured`).
    certificates: CertificateStore,
    /// Serving HTTPS: every request is authorized by its client certificate.
    secured: bool,
    /// This node's member of the cluster (`corvid serve` always has one; an app built for a
    /// test without one answers as a single node tagged `A`).
    cluster: OnceLock<Arc<Cluster>>,
}

impl AppState {
    /// Builds the state and starts the ETL processes of every database. Must run inside a
    /// tokio runtime.
    pub fn new(storage: Arc<Storage>, etl: Arc<EtlManager>, options: ServerOptions) -> AppState {
        for database in storage.databases() {
            // A replicated database's tasks run where its group is led (`replication`).
            if database.is_replicated() {
                continue;
            }
            if let Err(error) = etl.start_database(database.clone()) {
                tracing::error!(database = database.name(), %error, "failed to start etl");
            }
        }
        let query_indexes = Arc::new(IndexRegistry::new(options.query_index_max_bytes));
        let certificates = CertificateStore::load(storage.system());
        let secured = options.connections.certificate.is_some();
        let server_certificate = options
            .connections
            .certificate
            .as_ref()
            .map(|it| it.certificate().to_vec());
        let state = AppState {
            inner: Arc::new(Inner {
                storage,
                etl,
                changes: ChangesHub::new(options.changes.clone()),
                options,
                operations: Arc::new(Operations::default()),
                query_indexes,
                command_index: AtomicU64::new(1),
                request_metrics: RequestMetrics::default(),
                shutting_down: AtomicBool::new(false),
                certificates,
                secured,
                cluster: OnceLock::new(),
            }),
        };
        // The server's own certificate is a cluster node (RavenDB trusts it the same way), so
        // a server presenting it as a client (Raven ETL) is let in.
        if let Some(der) = server_certificate
            && let Err(error) = state.register_certificate(
                "Server certificate",
                &der,
                SecurityClearance::ClusterNode,
            )
        {
            tracing::error!(error = %error.message, "cannot register the server certificate");
        }
        state
    }

    /// Makes `cluster` this server's member of the cluster; set once, before serving.
    pub fn attach_cluster(&self, cluster: Arc<Cluster>) {
        if self.inner.cluster.set(cluster).is_err() {
            tracing::warn!("the cluster was attached twice; the first one stays");
            return;
        }
        crate::replication::spawn(self.clone());
    }

    /// This node's member of the cluster, if one is attached.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.inner.cluster.get()
    }

    /// This node's tag (`A` without a cluster).
    pub fn node_tag(&self) -> String {
        self.cluster().map_or_else(
            || crate::routes::server::NODE_TAG.to_owned(),
            |it| it.me().tag,
        )
    }

    /// Whether requests are authorized by client certificate (the server serves HTTPS).
    pub fn secured(&self) -> bool {
        self.inner.secured
    }

    pub(crate) fn certificates(&self) -> &CertificateStore {
        &self.inner.certificates
    }

    /// Registers a client certificate (DER) with a clearance and no database permissions, as
    /// `--admin-certificate` and the server's own certificate are; returns its thumbprint.
    pub fn register_certificate(
        &self,
        name: &str,
        der: &[u8],
        clearance: SecurityClearance,
    ) -> Result<String, ApiError> {
        use base64::Engine as _;
        let definition = CertificateDefinition::new(crate::auth::PutCertificate {
            name: name.to_owned(),
            certificate: base64::engine::general_purpose::STANDARD.encode(der),
            security_clearance: clearance,
            permissions: Default::default(),
        })?;
        let thumbprint = definition.thumbprint.clone();
        self.inner
            .certificates
            .put(self.inner.storage.system(), definition)?;
        Ok(thumbprint)
    }

    pub fn storage(&self) -> &Arc<Storage> {
        &self.inner.storage
    }

    pub fn etl(&self) -> &Arc<EtlManager> {
        &self.inner.etl
    }

    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    /// The server's long-running operations (patch and delete by query, bulk insert).
    pub(crate) fn operations(&self) -> &std::sync::Arc<Operations> {
        &self.inner.operations
    }

    /// The Changes API's per-database broadcasters.
    pub(crate) fn changes(&self) -> &ChangesHub {
        &self.inner.changes
    }

    /// Returns a database or RavenDB's 503 `Database-Missing` answer.
    /// The auto indexes of collection queries.
    pub(crate) fn query_indexes(&self) -> &Arc<IndexRegistry> {
        &self.inner.query_indexes
    }

    pub fn database(&self, name: &str) -> Result<Arc<Database>, ApiError> {
        if name.trim().is_empty() {
            return Err(ApiError::bad_request("the database name is empty"));
        }
        self.inner
            .storage
            .database(name)
            .ok_or_else(|| ApiError::database_missing(name))
    }

    /// The request latency histograms.
    pub(crate) fn request_metrics(&self) -> &RequestMetrics {
        &self.inner.request_metrics
    }

    /// Marks the server as shutting down: it is no longer ready (see [`AppState::is_ready`]).
    /// [`crate::serve`] calls it when its shutdown future completes.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
    }

    /// Whether a load balancer may send requests here: not shutting down, the data directory
    /// reachable and every database's writer running.
    /// Whether the server is stopping.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    pub fn is_ready(&self) -> bool {
        !self.inner.shutting_down.load(Ordering::Acquire)
            && self.inner.storage.root().is_dir()
            && self.inner.storage.databases().iter().all(|it| it.is_open())
    }

    /// Returns the next value RavenDB would call a Raft command index.
    pub fn next_command_index(&self) -> u64 {
        self.inner.command_index.fetch_add(1, Ordering::Relaxed) + 1
    }
}
