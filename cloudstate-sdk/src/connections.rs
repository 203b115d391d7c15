//! Serving HTTP connections with limits: how long a client may take to send
//! a request's head, how long a connection may stay idle, how many are
//! served at once, and a shutdown that waits only for requests in progress.
//!
//! The user function ([`CloudState`](crate::CloudState)) serves HTTP/2 this
//! way; the dev proxy serves HTTP/1.1 and HTTP/2 on one port with the same
//! loop.
//!
//! - A **new connection** must complete its first request's head (HTTP/1.1)
//!   or its HTTP/2 connection preface within
//!   [`header_read_timeout`](ConnectionLimits::header_read_timeout), else it
//!   is closed.
//! - Once an HTTP/1.1 connection has answered its requests, a next request
//!   that has begun must have its head complete within the same timeout.
//! - A connection with no request in progress for
//!   [`idle_timeout`](ConnectionLimits::idle_timeout) is closed (HTTP/2:
//!   `GOAWAY` first). HTTP/2 connections also get keep-alive pings, so a
//!   peer that vanished with a call open is noticed.
//! - At most [`max_connections`](ConnectionLimits::max_connections) are
//!   served at once; the next ones wait in the listen backlog (they are not
//!   accepted until a slot is free, so the client sees a slow connect rather
//!   than an error).
//! - **Shutdown** stops accepting at once (the listening socket is closed),
//!   closes at once every connection with no request in progress (idle,
//!   half-sent request head, half a preface), and lets the requests in
//!   progress finish within the grace period; what is still open after it
//!   is dropped.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// How long and how many connections are served (see the
/// [module docs](self)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's head (HTTP/1.1), or
    /// the connection preface (HTTP/2, a new connection's first 24 bytes),
    /// from when the connection was accepted or went idle (default 10 s).
    pub header_read_timeout: Duration,
    /// How long a connection may go without a request in progress before it
    /// is closed (default 60 s).
    pub idle_timeout: Duration,
    /// The most connections served at once (default 1024).
    pub max_connections: usize,
    /// How often an HTTP/2 connection is pinged (default 30 s; `None`: never);
    /// one whose ping is not answered within 20 s is closed.
    pub keepalive_interval: Option<Duration>,
    /// How long shutdown waits for requests in progress (default 10 s).
    pub shutdown_grace: Duration,
    /// Whether HTTP/1.1 is served besides HTTP/2 (default: HTTP/2 only).
    pub http1: bool,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            keepalive_interval: Some(Duration::from_secs(30)),
            shutdown_grace: Duration::from_secs(10),
            http1: false,
        }
    }
}

/// After its last request ends during shutdown, a connection gets this long
/// to flush the response and close by itself (HTTP/2 waits for the client to
/// acknowledge `GOAWAY`) before it is dropped.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// The HTTP/2 connection preface a client starts with.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves `service` on `listener` within `limits` until `shutdown`
/// completes, then shuts down as the [module docs](self) say. Returns once
/// every connection is closed.
///
/// Each request carries a [`tonic::transport::server::TcpConnectInfo`]
/// extension, so `tonic::Request::remote_addr` works.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) where
    S: tower_service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(Duration::from_secs(20))
        // The proxy keeps a stream open per active entity on one connection
        // (hyper's default would stop at 200); no Date header on gRPC.
        .max_concurrent_streams(None)
        .auto_date_header(false);
    if !limits.http1 {
        builder = builder.http2_only();
    }
    // No HTTP/1 timer: heads are timed by `Connection`, which also knows
    // when a connection is idle (hyper would time the wait for the next
    // request as a head read).
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        // A slot first: beyond the cap, connections wait in the backlog.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little
                    // rather than spin.
                    warn!("accepting a connection failed: {e}");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            },
        };
        // Small request/reply messages: no Nagle delay.
        if let Err(e) = stream.set_nodelay(true) {
            debug!("TCP_NODELAY on a connection from {peer}: {e}");
        }
        let info = tonic::transport::server::TcpConnectInfo {
            local_addr: stream.local_addr().ok(),
            remote_addr: Some(peer),
        };
        let connection = Connection {
            activity: Arc::new(Activity::new()),
            limits: Arc::clone(&limits),
        };
        let builder = builder.clone();
        let service = service.clone();
        let stopped = stopped.clone();
        connections.spawn(async move {
            connection
                .serve(stream, builder, service, info, stopped)
                .await;
            drop(slot);
        });
    }
    // Stop accepting: the backlog is refused from here on.
    drop(listener);
    let _ = stop.send(true);
    let grace = limits.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            "{} connections still busy {grace:?} after shutdown began: dropped",
            connections.len()
        );
        connections.shutdown().await;
    }
}

/// What a connection's I/O and requests tell its watchdog. Requests only
/// touch atomics: the watchdog reads them when its timer fires, and is woken
/// by a request's end only during shutdown.
#[derive(Debug)]
struct Activity {
    /// When the connection was accepted: the origin of `idle_at`.
    accepted: Instant,
    /// When the last request in progress ended, in microseconds since
    /// `accepted` (0: none has).
    idle_at: AtomicU64,
    /// Set by the watchdog when shutdown begins: the end of the last request
    /// is then told through `idle`.
    stopping: AtomicBool,
    /// Requests in the service or whose response is still being sent.
    active: AtomicUsize,
    /// Bytes read from the client so far.
    read: AtomicU64,
    /// `read` when the connection last went idle.
    read_at_idle: AtomicU64,
    /// Requests started so far.
    requests: AtomicU64,
    /// What the first bytes were: 0 (not known yet), [`HTTP1`] or [`HTTP2`].
    protocol: AtomicU8,
    /// Told when the last request in progress ends during shutdown.
    idle: Notify,
}

const HTTP1: u8 = 1;
const HTTP2: u8 = 2;

impl Activity {
    fn new() -> Self {
        Self {
            accepted: Instant::now(),
            idle_at: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            read: AtomicU64::new(0),
            read_at_idle: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            protocol: AtomicU8::new(0),
            idle: Notify::new(),
        }
    }

    /// When the connection was accepted or its last request ended.
    fn idle_since(&self) -> Instant {
        self.accepted + Duration::from_micros(self.idle_at.load(Ordering::SeqCst))
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    fn is_idle(&self) -> bool {
        self.active.load(Ordering::SeqCst) == 0
    }
}

/// A request in progress: dropped when its response is sent or abandoned.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .read_at_idle
            .store(activity.read.load(Ordering::Relaxed), Ordering::Relaxed);
        // Stamped before the count drops, so a watchdog that sees the
        // connection idle never reads an older stamp.
        let micros = u64::try_from(activity.accepted.elapsed().as_micros()).unwrap_or(u64::MAX);
        activity.idle_at.store(micros.max(1), Ordering::SeqCst);
        if activity.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Either this sees `stopping`, or the watchdog, which sets it
            // before it looks, sees the connection idle.
            if activity.stopping.load(Ordering::SeqCst) {
                activity.idle.notify_one();
            }
        }
    }
}

/// One accepted connection and its watchdog.
struct Connection {
    activity: Arc<Activity>,
    limits: Arc<ConnectionLimits>,
}

impl Connection {
    async fn serve<S, B>(
        self,
        stream: TcpStream,
        builder: auto::Builder<TokioExecutor>,
        service: S,
        info: tonic::transport::server::TcpConnectInfo,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) where
        S: tower_service::Service<
                http::Request<Incoming>,
                Response = http::Response<B>,
                Error = Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let peer = info.remote_addr;
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: Arc::clone(&self.activity),
            prefix: [0; 24],
            prefix_len: 0,
        });
        let tracked = Tracked {
            inner: service,
            activity: Arc::clone(&self.activity),
            info,
        };
        let conn = builder.serve_connection(io, tracked);
        tokio::pin!(conn);
        let mut stopping = false;
        // When the connection is dropped unless it closes by itself first.
        let mut close_at: Option<Instant> = None;
        loop {
            let check = close_at.unwrap_or_else(|| self.next_check(self.activity.idle_since()));
            tokio::select! {
                biased;
                done = &mut conn => {
                    if let Err(e) = done {
                        debug!("connection from {peer:?}: {e}");
                    }
                    return;
                }
                () = tokio::time::sleep_until(check) => {
                    if close_at.is_some() {
                        return;
                    }
                    match self.verdict(self.activity.idle_since()) {
                        Verdict::Keep => {}
                        Verdict::SlowHead => {
                            info!(
                                "connection from {peer:?} closed: no complete request head \
                                 within {:?}",
                                self.limits.header_read_timeout
                            );
                            return;
                        }
                        Verdict::Idle => {
                            debug!("connection from {peer:?} idle for {:?}: closing", self.limits.idle_timeout);
                            conn.as_mut().graceful_shutdown();
                            close_at = Some(Instant::now() + CLOSE_LINGER);
                        }
                    }
                }
                () = self.activity.idle.notified(), if stopping => {
                    if self.activity.is_idle() {
                        close_at = Some(Instant::now() + CLOSE_LINGER);
                    }
                }
                _ = stopped.wait_for(|stop| *stop), if !stopping => {
                    stopping = true;
                    self.activity.stopping.store(true, Ordering::SeqCst);
                    conn.as_mut().graceful_shutdown();
                    if self.activity.is_idle() {
                        // Nothing in progress (idle, or a request or preface
                        // half sent): closed once `GOAWAY` had its chance to
                        // be written.
                        close_at = Some(Instant::now());
                    }
                }
            }
        }
    }

    /// When the watchdog looks at the connection next, counting from
    /// `idle_since` (when it was accepted or its last request ended).
    fn next_check(&self, idle_since: Instant) -> Instant {
        let head = idle_since + self.limits.header_read_timeout;
        let idle = idle_since + self.limits.idle_timeout;
        let now = Instant::now();
        if self.activity.is_idle() {
            if head > now && self.head_timed() {
                return head.min(idle);
            }
            if idle > now {
                return idle;
            }
        }
        // Busy (or a check already due): look again after a whole timeout.
        now + self
            .limits
            .idle_timeout
            .min(self.limits.header_read_timeout)
    }

    /// Whether request heads are timed from `idle_since`: HTTP/1.1 heads
    /// always, HTTP/2 only for the preface (afterwards idle connections
    /// still read pings and settings).
    fn head_timed(&self) -> bool {
        self.activity.protocol.load(Ordering::Relaxed) != HTTP2
            || self.activity.requests.load(Ordering::Relaxed) == 0
    }

    fn verdict(&self, idle_since: Instant) -> Verdict {
        let activity = &self.activity;
        if !activity.is_idle() {
            return Verdict::Keep;
        }
        let now = Instant::now();
        if now >= idle_since + self.limits.header_read_timeout && self.head_timed() {
            let protocol = activity.protocol.load(Ordering::Relaxed);
            let first = activity.requests.load(Ordering::Relaxed) == 0;
            // A new connection must have sent its preface or first request;
            // a kept-alive HTTP/1.1 one may wait, unless a head has begun.
            let slow = if first {
                protocol != HTTP2
            } else {
                activity.read.load(Ordering::Relaxed)
                    > activity.read_at_idle.load(Ordering::Relaxed)
            };
            if slow {
                return Verdict::SlowHead;
            }
        }
        if now >= idle_since + self.limits.idle_timeout {
            return Verdict::Idle;
        }
        Verdict::Keep
    }
}

enum Verdict {
    Keep,
    SlowHead,
    Idle,
}

/// The client's socket, counting what it sends and telling HTTP/2 from
/// HTTP/1.1 by the first 24 bytes.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    prefix: [u8; 24],
    prefix_len: usize,
}

impl Watched {
    fn saw(&mut self, data: &[u8]) {
        self.activity
            .read
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if self.prefix_len == H2_PREFACE.len() {
            return;
        }
        let take = data.len().min(H2_PREFACE.len() - self.prefix_len);
        self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&data[..take]);
        self.prefix_len += take;
        let seen = &self.prefix[..self.prefix_len];
        let protocol = if seen != &H2_PREFACE[..self.prefix_len] {
            HTTP1
        } else if self.prefix_len == H2_PREFACE.len() {
            HTTP2
        } else {
            return;
        };
        // Decided: stop copying.
        self.prefix_len = H2_PREFACE.len();
        self.activity.protocol.store(protocol, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            this.saw(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The service, counting the requests in progress on its connection.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    info: tonic::transport::server::TcpConnectInfo,
}

impl<S, B> hyper::service::Service<http::Request<Incoming>> for Tracked<S>
where
    S: tower_service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Guarded<B>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        let guard = self.activity.begin();
        request.extensions_mut().insert(self.info.clone());
        let mut inner = self.inner.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            let response = inner.call(request).await?;
            Ok(response.map(|body| Guarded {
                inner: body,
                _guard: guard,
            }))
        })
    }
}

/// A response body that keeps its request counted until it is sent.
struct Guarded<B> {
    inner: B,
    _guard: InFlight,
}

impl<B: Body + Unpin> Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
