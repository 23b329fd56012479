//! One connection: its I/O, its requests and its watchdog.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Version};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::listener::ConnectionOptions;
use crate::listener::watchdog::{self, Activity};

/// Serves one connection until the client closes it, it stalls past a timeout, or the server
/// stops (then the request in flight finishes first).
pub(crate) async fn run<I>(
    io: I,
    service: ConnectionService,
    builder: &Builder<TokioExecutor>,
    options: &ConnectionOptions,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = service.activity.clone();
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    let watchdog = watchdog::watch(&activity, options);
    tokio::pin!(watchdog);
    let mut stopping = *stop.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            reason = &mut watchdog => {
                tracing::debug!(reason, "closing a stalled connection");
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The connection's I/O, reporting its reads to the watchdog.
pub(crate) struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
    /// The connection's place under the cap, held as long as its socket lives: through an
    /// upgrade to a WebSocket too, which hands this same I/O over.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl<I> Watched<I> {
    pub(crate) fn new(
        inner: I,
        activity: Arc<Activity>,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Watched<I> {
        Watched {
            inner,
            activity,
            _slot: slot,
        }
    }
}

impl<I> Watched<I> {
    /// Tells the watchdog whether writing waits for the client.
    fn report_write(&self, result: &Poll<std::io::Result<usize>>) {
        match result {
            Poll::Pending => self.activity.write_waiting(),
            Poll::Ready(Ok(n)) if *n > 0 => self.activity.wrote(),
            Poll::Ready(_) => {}
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if buf.filled().len() > before {
            self.activity.read();
        }
        Poll::Ready(result)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.report_write(&result);
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.report_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The app, seen from one connection: each request is counted from its head to the end of its
/// response, and its body reports when it waits for the client.
#[derive(Clone)]
pub(crate) struct ConnectionService {
    router: Router,
    activity: Arc<Activity>,
    /// Added to every request of the connection (the client certificate, for one).
    extensions: axum::http::Extensions,
}

impl ConnectionService {
    pub(crate) fn new(router: Router) -> ConnectionService {
        ConnectionService {
            router,
            activity: Arc::new(Activity::new(Instant::now())),
            extensions: axum::http::Extensions::new(),
        }
    }

    /// Adds `extension` to every request of the connection.
    pub(crate) fn insert_extension<T: Clone + Send + Sync + 'static>(&mut self, extension: T) {
        self.extensions.insert(extension);
    }

    pub(crate) fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard =
            RequestGuard::start(self.activity.clone(), request.version() == Version::HTTP_2);
        let activity = self.activity.clone();
        let mut request = request.map(|body| {
            Body::new(WatchedBody {
                inner: body,
                activity: activity.clone(),
                waiting: false,
            })
        });
        request.extensions_mut().extend(self.extensions.clone());
        let router = self.router.clone();
        Box::pin(async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                activity.upgraded();
            }
            Ok(response.map(|body| Body::new(GuardedBody { inner: body, guard })))
        })
    }
}

/// Counts a request in flight until dropped.
struct RequestGuard(Arc<Activity>);

impl RequestGuard {
    fn start(activity: Arc<Activity>, http2: bool) -> RequestGuard {
        activity.request_started(http2);
        RequestGuard(activity)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A request body that tells the watchdog while it waits for the client.
struct WatchedBody {
    inner: Incoming,
    activity: Arc<Activity>,
    waiting: bool,
}

impl WatchedBody {
    fn set_waiting(&mut self, waiting: bool) {
        if self.waiting != waiting {
            self.waiting = waiting;
            self.activity.body_waiting(waiting);
        }
    }
}

impl HttpBody for WatchedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        self.set_waiting(polled.is_pending());
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.set_waiting(false);
    }
}

/// A response body that ends its request's count when hyper has written and dropped it.
struct GuardedBody {
    inner: Body,
    #[expect(dead_code, reason = "held for its Drop")]
    guard: RequestGuard,
}

impl HttpBody for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
