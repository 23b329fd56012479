//! The `corvid` binary: command line, configuration, tracing, signals.

/// QuickJS allocates and frees small blocks for every document a script reads and writes
/// (its runtimes use Rust's global allocator), and SQL ETL builds rows on the script thread
/// that the load frees on another: glibc's malloc made SQL ETL 30% slower than mimalloc
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod certificate;
mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use corvid_server::{AppState, ConnectionOptions, SecurityClearance, ServerOptions};
use corvid_store::Storage;
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "corvid",
    version,
    about = "Corvid: a document database with built-in ETL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the server.
    Serve(Box<ServeArgs>),
    /// Runs the server with a sample shop and two ETL tasks (Raven ETL into a second database,
    /// SQL ETL into a SQLite file), shows their progress, then keeps serving until Ctrl-C.
    Demo(Box<DemoArgs>),
    /// Client and server certificates.
    #[command(subcommand)]
    Certificate(CertificateCommand),
}

#[derive(Subcommand, Debug)]
enum CertificateCommand {
    /// Makes a certificate authority, a server certificate and an admin client certificate.
    Create(certificate::CreateArgs),
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Where the demo keeps its databases and the SQLite file; an earlier demo's directory is
    /// recreated.
    #[arg(long, default_value = "./corvid-demo")]
    data_dir: PathBuf,
    /// The address to listen on; when the default port is taken, a free one is used.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// How many sample orders to generate.
    #[arg(long, default_value_t = 5000)]
    orders: usize,
    #[command(flatten)]
    memory: MemoryArgs,
    #[command(flatten)]
    etl: EtlArgs,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Where databases are stored.
    #[arg(long, default_value = "./corvid-data")]
    data_dir: PathBuf,
    /// The address to listen on. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Allows binding to a non-loopback address without a certificate: anyone who reaches the
    /// port can read and write everything.
    #[arg(long)]
    unsecured: bool,
    /// Serves HTTPS with this certificate: a PEM file (chain, and the key unless
    /// --certificate-key is given) or a PFX/PKCS#12 file (.pfx or .p12).
    #[arg(long)]
    certificate: Option<PathBuf>,
    /// The PEM private key of --certificate, when it is not in the same file.
    #[arg(long, requires = "certificate")]
    certificate_key: Option<PathBuf>,
    /// The password of a PFX --certificate.
    #[arg(long, requires = "certificate")]
    certificate_password: Option<String>,
    /// Registers this client certificate (PEM) as ClusterAdmin at start, so it can register
    /// others (`PUT /admin/certificates`).
    #[arg(long, requires = "certificate")]
    admin_certificate: Option<PathBuf>,
    /// A PEM file of certificate authorities (one or a bundle; the flag may be repeated)
    /// trusted, besides the system's roots, when Raven ETL verifies an https:// destination.
    #[arg(long)]
    trusted_ca: Vec<PathBuf>,
    /// This node's tag in its cluster: one to four capital letters. Default: the tag stored in
    /// the data directory, or `A` for a new one.
    #[arg(long)]
    node_tag: Option<String>,
    /// The URL other nodes of the cluster and clients reach this node at
    /// (`http://10.0.0.2:8080`). Default: the address it listens on.
    #[arg(long)]
    public_url: Option<String>,
    /// The largest request body accepted, in MiB.
    #[arg(long, default_value_t = 256)]
    max_body_mib: usize,
    #[command(flatten)]
    memory: MemoryArgs,
    /// The memory the query auto indexes may use together, in MiB (least recently used
    /// indexes are dropped past it). Default: an eighth of --memory-budget-mib.
    #[arg(long)]
    query_index_max_mib: Option<usize>,
    /// Host names served besides IP addresses and `localhost` (comma-separated; `*`: any).
    /// Requests for other names are refused, which stops DNS-rebinding attacks from web pages.
    #[arg(long, value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// Web origins (`https://studio.example.com`) allowed to change data besides the server's
    /// own pages (comma-separated; `*`: any). Browsers' cross-origin writes are refused.
    #[arg(long, value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Seconds a client has to send a request head (from connecting, or from the first byte
    /// of the next request on a keep-alive connection); slower connections are closed.
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a keep-alive connection may wait between requests, and a request body between
    /// two reads, before the connection is closed.
    #[arg(long, default_value_t = 60)]
    idle_timeout_secs: u64,
    /// The most connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    #[command(flatten)]
    etl: EtlArgs,
}

/// The memory budget and what it is divided into (docs/operations/memory.md).
#[derive(clap::Args, Debug, Clone)]
struct MemoryArgs {
    /// The memory the server should stay within, in MiB: the storage cache of each database
    /// (a fifth), the query indexes (an eighth), all ETL script runtimes together (a
    /// quarter) and each ETL batch (a sixteenth) are derived from it unless set on their own.
    #[arg(long, default_value_t = 256)]
    memory_budget_mib: usize,
    /// The page cache of each database, in MiB. Default: a fifth of the budget.
    #[arg(long)]
    storage_cache_mib: Option<usize>,
    /// The memory all ETL script runtimes may take together, in MiB (each runtime's limit is
    /// granted from it). Default: a quarter of the budget.
    #[arg(long)]
    script_memory_total_mib: Option<usize>,
}

impl MemoryArgs {
    fn part(&self, explicit: Option<usize>, divisor: usize) -> usize {
        explicit.unwrap_or((self.memory_budget_mib / divisor).max(1)) * 1024 * 1024
    }

    fn storage_options(&self) -> corvid_store::StorageOptions {
        corvid_store::StorageOptions {
            cache_bytes_per_database: self.part(self.storage_cache_mib, 5),
        }
    }
}

/// Limits of every ETL process (RavenDB's `ETL.*` settings).
#[derive(clap::Args, Debug, Clone)]
struct EtlArgs {
    /// Most documents and tombstones in one ETL batch.
    #[arg(long, default_value_t = 8192)]
    etl_batch_items: usize,
    /// Most bytes of source documents in one ETL batch, in MiB. Default: a sixteenth of
    /// --memory-budget-mib.
    #[arg(long)]
    etl_batch_mib: Option<usize>,
    /// Threads (each with its own script runtime) that transform a large ETL batch together;
    /// 0 means half the cores (at least 1, at most 4).
    #[arg(long, default_value_t = 0)]
    etl_transform_threads: usize,
    /// Raven ETL batches loaded at once: with 2, a batch is sent while the destination still
    /// applies the previous one (never two that delete, or write the same document).
    #[arg(long, default_value_t = 2)]
    etl_raven_loads_in_flight: usize,
    /// The first wait after a failed load, in seconds; it doubles up to --etl-max-fallback-secs.
    #[arg(long, default_value_t = 5)]
    etl_fallback_secs: u64,
    /// The longest wait between retries of a failed load, in seconds.
    #[arg(long, default_value_t = 900)]
    etl_max_fallback_secs: u64,
    /// Time one script call may take per document, in milliseconds; beyond it the document
    /// is a transformation error.
    #[arg(long, default_value_t = 100)]
    script_time_budget_ms: u64,
    /// Memory one ETL script runtime may allocate, in MiB. Default: half of
    /// --script-memory-total-mib, at most 64.
    #[arg(long)]
    script_memory_mib: Option<usize>,
    /// How often tombstones (deleted documents) that every ETL task has processed are
    /// removed, in seconds (RavenDB's `Tombstones.CleanupIntervalInMin`); 0: never.
    #[arg(long, default_value_t = 300)]
    tombstone_cleanup_interval_secs: u64,
    /// Where SQL ETL's SQLite files are: relative `Data Source` paths resolve here and
    /// absolute ones outside it are refused. Default: `<data-dir>/sqlite`.
    #[arg(long)]
    sqlite_dir: Option<PathBuf>,
    /// Allows SQLite `Data Source` paths anywhere the server can write (relative ones still
    /// resolve in --sqlite-dir).
    #[arg(long)]
    sqlite_allow_any_path: bool,
    /// Where OLAP ETL's local folders are: a relative `FolderPath` resolves here and absolute
    /// ones outside it are refused. Default: `<data-dir>/olap`.
    #[arg(long)]
    olap_dir: Option<PathBuf>,
    /// Allows OLAP `FolderPath`s anywhere the server can write (relative ones still resolve
    /// in --olap-dir).
    #[arg(long)]
    olap_allow_any_path: bool,
    /// The key file connection strings are encrypted with at rest (32 bytes, created with
    /// mode 0600 on first use). Default: `<data-dir>/secrets.key`.
    #[arg(long)]
    secrets_key_file: Option<PathBuf>,
    /// The URL clients reach this server at (RavenDB's `PublicServerUrl`): Queue ETL's
    /// default CloudEvents `source` is `{url}/{database}/{task}`. Default: the scheme and
    /// --bind address.
    #[arg(long)]
    public_server_url: Option<String>,
}

impl EtlArgs {
    fn options(
        &self,
        memory: &MemoryArgs,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<corvid_etl::EtlOptions> {
        let batch_bytes = memory.part(self.etl_batch_mib, 16);
        let script_total = memory.part(memory.script_memory_total_mib, 4);
        let script_memory = match self.script_memory_mib {
            Some(it) => it * 1024 * 1024,
            None => (script_total / 2).min(64 * 1024 * 1024),
        };
        if self.etl_batch_items == 0 || self.etl_batch_mib == Some(0) {
            bail!("--etl-batch-items and --etl-batch-mib must be at least 1");
        }
        if self.script_time_budget_ms == 0 || script_memory < 4 * 1024 * 1024 {
            bail!("--script-time-budget-ms must be at least 1 and --script-memory-mib at least 4");
        }
        if self.etl_raven_loads_in_flight == 0 {
            bail!("--etl-raven-loads-in-flight must be at least 1");
        }
        if self.etl_fallback_secs == 0 || self.etl_max_fallback_secs < self.etl_fallback_secs {
            bail!("--etl-fallback-secs must be at least 1 and at most --etl-max-fallback-secs");
        }
        let defaults = corvid_etl::EtlOptions::default();
        Ok(corvid_etl::EtlOptions {
            max_batch_items: self.etl_batch_items,
            max_batch_bytes: batch_bytes,
            transform_threads: match self.etl_transform_threads {
                0 => defaults.transform_threads,
                n => n,
            },
            raven_loads_in_flight: self.etl_raven_loads_in_flight,
            initial_fallback: std::time::Duration::from_secs(self.etl_fallback_secs),
            max_fallback: std::time::Duration::from_secs(self.etl_max_fallback_secs),
            script: corvid_etl::ScriptOptions {
                time_budget: std::time::Duration::from_millis(self.script_time_budget_ms),
                memory_limit_bytes: script_memory,
                ..defaults.script
            },
            tombstone_cleanup_interval: std::time::Duration::from_secs(
                self.tombstone_cleanup_interval_secs,
            ),
            script_budget: corvid_etl::ScriptMemoryBudget::new(script_total),
            sqlite: {
                let dir = std::path::absolute(
                    self.sqlite_dir
                        .clone()
                        .unwrap_or_else(|| data_dir.join("sqlite")),
                )?;
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("failed to create {}", dir.display()))?;
                corvid_etl::SqlitePaths {
                    dir: Some(dir),
                    allow_any_path: self.sqlite_allow_any_path,
                }
            },
            olap: {
                let dir = std::path::absolute(
                    self.olap_dir
                        .clone()
                        .unwrap_or_else(|| data_dir.join("olap")),
                )?;
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("failed to create {}", dir.display()))?;
                corvid_etl::OlapPaths {
                    dir: Some(dir),
                    allow_any_path: self.olap_allow_any_path,
                    staging_dir: Some(std::path::absolute(data_dir.join("olap-staging"))?),
                }
            },
            secrets_key_file: Some(
                self.secrets_key_file
                    .clone()
                    .unwrap_or_else(|| data_dir.join("secrets.key")),
            ),
            // Set by `serve`, which has the certificate and --trusted-ca.
            raven_tls: None,
            public_server_url: self.public_server_url.clone(),
            // RavenDB's variable for the endpoint of SQS connection strings with `UseEmulator`.
            sqs_emulator_url: std::env::var("RAVEN_AMAZON_SQS_EMULATOR_URL")
                .ok()
                .filter(|it| !it.trim().is_empty()),
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // The demo draws progress bars on the terminal: only warnings interrupt them.
            EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                EnvFilter::new(match cli.command {
                    Command::Demo(_) | Command::Certificate(_) => "warn",
                    Command::Serve(_) => "info",
                })
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(args) => serve(*args, None),
        Command::Certificate(CertificateCommand::Create(args)) => certificate::create(&args),
        Command::Demo(args) => {
            let note = demo::prepare_data_dir(&args.data_dir)?;
            println!("{note}");
            let serve_args = ServeArgs {
                data_dir: args.data_dir.clone(),
                bind: args.bind,
                unsecured: false,
                certificate: None,
                certificate_key: None,
                certificate_password: None,
                admin_certificate: None,
                trusted_ca: Vec::new(),
                node_tag: None,
                public_url: None,
                max_body_mib: 256,
                query_index_max_mib: None,
                memory: args.memory.clone(),
                allowed_hosts: Vec::new(),
                allowed_origins: Vec::new(),
                header_timeout_secs: 10,
                idle_timeout_secs: 60,
                max_connections: 10_000,
                etl: args.etl.clone(),
            };
            let size = demo::SampleSize::with_orders(args.orders);
            serve(serve_args, Some((args.data_dir, size)))
        }
    }
}

/// The host names and origins served: the configured ones, and this machine's host name (a web
/// page cannot make a name the attacker does not control resolve to this machine).
fn request_guard(args: &ServeArgs) -> anyhow::Result<corvid_server::RequestGuard> {
    let mut hosts = args.allowed_hosts.clone();
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        hosts.push(name.trim().to_owned());
    }
    corvid_server::RequestGuard::from_lists(&hosts, &args.allowed_origins)
        .map_err(anyhow::Error::msg)
}

/// Runs the server until SIGINT/SIGTERM; with `demo`, sets up the demo once it listens (a
/// failed setup stops the server with the error).
fn serve(args: ServeArgs, demo: Option<(PathBuf, demo::SampleSize)>) -> anyhow::Result<()> {
    if !args.bind.ip().is_loopback() && !args.unsecured && args.certificate.is_none() {
        bail!(
            "refusing to listen on {} without authentication; pass --certificate to serve HTTPS with client certificates, or --unsecured to expose it anyway",
            args.bind
        );
    }
    let certificate = match &args.certificate {
        Some(path) => Some(corvid_server::ServerCertificate::load(
            path,
            args.certificate_key.as_deref(),
            args.certificate_password.as_deref(),
        )?),
        None => None,
    };
    let raven_tls = raven_tls(certificate.as_ref(), &args.trusted_ca)?;
    let scheme = if certificate.is_some() {
        "https"
    } else {
        "http"
    };
    let storage = Arc::new(
        Storage::open_with(&args.data_dir, args.memory.storage_options()).with_context(|| {
            format!("failed to open data directory {}", args.data_dir.display())
        })?,
    );
    let options = ServerOptions {
        max_body_bytes: args.max_body_mib * 1024 * 1024,
        query_index_max_bytes: args.memory.part(args.query_index_max_mib, 8),
        guard: request_guard(&args)?,
        connections: ConnectionOptions {
            header_timeout: std::time::Duration::from_secs(args.header_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(args.idle_timeout_secs),
            max_connections: args.max_connections,
            certificate,
        },
        ..ServerOptions::default()
    };
    if args.header_timeout_secs == 0 || args.idle_timeout_secs == 0 || args.max_connections == 0 {
        bail!(
            "--header-timeout-secs, --idle-timeout-secs and --max-connections must be at least 1"
        );
    }
    match corvid_server::raise_open_files_limit() {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("corvid-http")
        .build()?;
    let mut etl_options = corvid_etl::EtlOptions {
        raven_tls,
        ..args.etl.options(&args.memory, &args.data_dir)?
    };
    if etl_options.public_server_url.is_none() {
        etl_options.public_server_url = args.public_url.clone();
    }
    etl_options
        .public_server_url
        .get_or_insert_with(|| format!("{scheme}://{}", args.bind));
    let cluster_tls = etl_options.raven_tls.clone();
    let etl = corvid_etl::EtlManager::new(etl_options);
    let etl_for_shutdown = etl.clone();
    let state_storage = storage.clone();
    runtime.block_on(async move {
        let state = AppState::new(state_storage, etl, options);
        if let Some(path) = &args.admin_certificate {
            let der = read_pem_certificate(path)?;
            let thumbprint = state
                .register_certificate("Admin certificate", &der, SecurityClearance::ClusterAdmin)
                .map_err(|error| anyhow::anyhow!(error.message))
                .with_context(|| format!("cannot register {}", path.display()))?;
            tracing::info!(%thumbprint, "registered the admin certificate");
        }
        let listener = match tokio::net::TcpListener::bind(args.bind).await {
            Ok(it) => it,
            // The demo must start on a fresh machine even when 8080 is taken.
            Err(error) if demo.is_some() && error.kind() == std::io::ErrorKind::AddrInUse => {
                println!("{} is taken; using a free port", args.bind);
                tokio::net::TcpListener::bind((args.bind.ip(), 0)).await?
            }
            Err(error) => {
                return Err(error).with_context(|| format!("failed to listen on {}", args.bind));
            }
        };
        let address = listener.local_addr()?;
        tracing::info!(%address, data_dir = %args.data_dir.display(), "corvid is listening");
        let url = match &args.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("{scheme}://{address}"),
        };
        let cluster_client = match &cluster_tls {
            Some(tls) => tls.http_client_builder(),
            None => corvid_client::http_client_builder(),
        }
        .build()
        .context("cannot build the cluster's HTTP client")?;
        let mut cluster_options =
            corvid_cluster::ClusterOptions::new(args.node_tag.clone(), url, &args.data_dir);
        // Connection strings are sealed with it on one node and read on the others.
        state
            .etl()
            .ensure_secrets_key()
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        cluster_options.secrets_key_file = state.etl().secrets_key_file().map(Into::into);
        let cluster = corvid_cluster::Cluster::start(cluster_options, cluster_client)
            .await
            .map_err(|error| anyhow::anyhow!("cannot start the cluster node: {error}"))?;
        state.attach_cluster(cluster.clone());
        // Tests and scripts read this line to find the port.
        println!("Corvid listening on {scheme}://{address}");
        let (failed_sender, failed) = tokio::sync::oneshot::channel::<anyhow::Error>();
        if let Some((data_dir, size)) = demo {
            let url = format!("http://{address}");
            tokio::spawn(async move {
                if let Err(error) = demo::run(url, data_dir, size).await {
                    let _ = failed_sender.send(error);
                }
            });
        }
        let demo_failed = async move {
            match failed.await {
                Ok(error) => Some(error),
                // No demo, or it succeeded: only a signal stops the server.
                Err(_) => std::future::pending().await,
            }
        };
        let (stop_sender, stop) = tokio::sync::oneshot::channel::<anyhow::Error>();
        let shutdown = async move {
            tokio::select! {
                () = shutdown_signal() => {}
                Some(error) = demo_failed => { let _ = stop_sender.send(error); }
            }
        };
        corvid_server::serve(listener, state, shutdown).await?;
        cluster.shutdown().await;
        if let Ok(error) = stop.await {
            return Err(error.context("the demo setup failed"));
        }
        anyhow::Ok(())
    })?;
    etl_for_shutdown.stop_all();
    drop(runtime);
    storage.close();
    tracing::info!("corvid stopped");
    Ok(())
}

/// Raven ETL's TLS, as RavenDB's: a secured server presents its own certificate to its
/// destinations (which must have registered it); destinations are verified against the
/// system's roots and the `--trusted-ca` files.
fn raven_tls(
    certificate: Option<&corvid_server::ServerCertificate>,
    trusted_ca: &[PathBuf],
) -> anyhow::Result<Option<corvid_client::ClientTls>> {
    if certificate.is_none() && trusted_ca.is_empty() {
        return Ok(None);
    }
    let mut roots = Vec::new();
    for path in trusted_ca {
        let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let certificates = corvid_client::pem_certificates(&pem)
            .with_context(|| format!("--trusted-ca {}", path.display()))?;
        roots.extend(certificates);
    }
    let identity =
        certificate.and_then(|it| corvid_client::ClientIdentity::new(it.chain.clone(), it.key()));
    let tls = corvid_client::ClientTls::new(&roots, identity.as_ref())
        .context("cannot set up TLS for Raven ETL")?;
    Ok(Some(tls))
}

/// The first certificate of a PEM file, as DER.
fn read_pem_certificate(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    corvid_server::first_pem_certificate(&pem)
        .with_context(|| format!("{} holds no PEM certificate", path.display()))
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: finishing requests in flight");
}
