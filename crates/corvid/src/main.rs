//! The `corvid` binary: command line, configuration, tracing, signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use corvid_server::{AppState, ServerOptions};
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
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Where databases are stored.
    #[arg(long, default_value = "./corvid-data")]
    data_dir: PathBuf,
    /// The address to listen on. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Allows binding to a non-loopback address although Corvid has no authentication yet.
    #[arg(long)]
    unsecured: bool,
    /// The largest request body accepted, in MiB.
    #[arg(long, default_value_t = 256)]
    max_body_mib: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !args.bind.ip().is_loopback() && !args.unsecured {
        bail!(
            "refusing to listen on {} without authentication; Corvid has no authentication yet, so pass --unsecured to expose it anyway",
            args.bind
        );
    }
    let storage =
        Arc::new(Storage::open(&args.data_dir).with_context(|| {
            format!("failed to open data directory {}", args.data_dir.display())
        })?);
    let options = ServerOptions {
        max_body_bytes: args.max_body_mib * 1024 * 1024,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("corvid-http")
        .build()?;
    let etl = corvid_etl::EtlManager::new(corvid_etl::EtlOptions::default());
    let etl_for_shutdown = etl.clone();
    let state_storage = storage.clone();
    runtime.block_on(async move {
        let state = AppState::new(state_storage, etl, options);
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("failed to listen on {}", args.bind))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, data_dir = %args.data_dir.display(), "corvid is listening");
        // Tests and scripts read this line to find the port.
        println!("Corvid listening on http://{address}");
        corvid_server::serve(listener, state, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    etl_for_shutdown.stop_all();
    drop(runtime);
    storage.close();
    tracing::info!("corvid stopped");
    Ok(())
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
