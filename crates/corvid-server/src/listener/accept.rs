//! The accept loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::listener::PeerCertificate;
use crate::listener::connection::{self, ConnectionService, Watched};
use crate::routes::app;
use crate::state::AppState;

/// Serves the app on `listener` until `shutdown` completes; requests in flight finish first.
/// The connection limits, and the certificate for HTTPS, are the state's
/// [`ServerOptions::connections`](crate::ServerOptions).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = Arc::new(state.options().connections.clone());
    let router = app(state.clone());
    // From the shutdown on, `/health/ready` answers 503 while requests in flight finish.
    let shutdown = async move {
        shutdown.await;
        state.begin_shutdown();
    };
    let builder = Arc::new(builder());
    let tls = match &options.certificate {
        Some(certificate) => Some(tokio_rustls::TlsAcceptor::from(
            certificate
                .server_config()
                .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?,
        )),
        None => None,
    };
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let (stop_sender, stop) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let mut service = ConnectionService::new(router.clone());
        let io = Watched::new(stream, service.activity().clone(), permit);
        let builder = builder.clone();
        let options = options.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection::run(io, service, &builder, &options, stop).await,
                Some(acceptor) => {
                    // The handshake is part of the request head's time.
                    let handshake =
                        tokio::time::timeout(options.header_timeout, acceptor.accept(io));
                    let stream = match handshake.await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "TLS handshake failed");
                            return;
                        }
                        Err(_elapsed) => {
                            tracing::debug!("TLS handshake too slow");
                            return;
                        }
                    };
                    let peer = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|certificate| certificate.clone().into_owned());
                    service.insert_extension(PeerCertificate(peer));
                    connection::run(stream, service, &builder, &options, stop).await;
                }
            }
        });
    }
    drop(listener);
    drop(stop);
    // Every connection finishes its request in flight, then drops its receiver.
    let _ = stop_sender.send(true);
    stop_sender.closed().await;
    Ok(())
}

/// Raises the soft limit of open files to the hard limit (each connection is a file), and
/// returns the soft limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // Linux refuses an infinite limit for open files; nr_open's default is 2^20.
    let target = limit.maximum.unwrap_or(1 << 20);
    match limit.current {
        Some(current) if current >= target => Ok(current),
        None => Ok(u64::MAX),
        Some(_) => {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(target),
                    maximum: limit.maximum,
                },
            )?;
            Ok(target)
        }
    }
}

/// HTTP/1.1 and HTTP/2 with upgrades; hyper's own header timeout is off, the watchdog times
/// request heads (hyper's would also close idle keep-alive connections at the header timeout).
fn builder() -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// Out of file descriptors (or a connection reset before it was accepted): wait a little
/// instead of spinning, as `axum::serve` does.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(%error, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
