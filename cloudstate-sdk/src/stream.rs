//! The life of an entity stream, shared by every entity kind: wait for
//! `init`, then handle messages one at a time, sending what each produced
//! (none, one, or several outputs) before reading the next; end with OK when
//! the proxy completes its side or the server shuts down; after a protocol
//! error send one stream-level failure and end.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use futures_util::task::{ArcWake, AtomicWaker, waker_ref};
use tokio::sync::watch;
use tonic::{Status, Streaming};
use tracing::{debug, error, warn};

/// Why a stream stops.
pub(crate) enum Stop {
    /// The proxy completed its side, the server is shutting down, or the
    /// proxy went away: end with OK.
    Done,
    /// A protocol or fatal error: send this stream-level failure, then end.
    Failure(i64, String),
}

/// What distinguishes one entity protocol from another.
pub(crate) trait Protocol: Send + Sync + 'static {
    /// The stream's input message.
    type In: prost::Message + Default + Send + 'static;
    /// The stream's output message.
    type Out: Send + 'static;
    /// The input oneof.
    type Message: Send;
    /// One live entity and its protocol state.
    type Entity: Send;

    /// The oneof of an input message, `None` when unset.
    fn message(input: Self::In) -> Option<Self::Message>;
    /// Starts an entity from its first message, which must be `init`.
    fn start(&self, first: Self::Message) -> Result<(Self::Entity, tracing::Span), Stop>;
    /// Handles one later message, queueing its outputs in order. Outputs
    /// queued before an `Err` are still sent, ahead of the failure.
    fn handle(
        entity: &mut Self::Entity,
        message: Self::Message,
        out: &mut Outputs<Self::Out>,
    ) -> Result<(), Stop>;
    /// Adds the entity's service and id to a failure's description.
    fn stop(entity: &Self::Entity, command_id: i64, description: &str) -> Stop;
    /// A stream-level failure message.
    fn failure(command_id: i64, description: String) -> Self::Out;
}

/// The gRPC `handle` service of one entity kind: each call is one entity stream.
pub(crate) struct EntityService<P> {
    protocol: Arc<P>,
    shutdown: watch::Receiver<bool>,
    errors: Arc<ErrorLog>,
}

impl<P: Protocol> EntityService<P> {
    pub(crate) fn new(protocol: P, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            protocol: Arc::new(protocol),
            shutdown,
            errors: Arc::default(),
        }
    }

    /// Serves one `handle` call.
    pub(crate) fn handle(
        &self,
        request: tonic::Request<Streaming<P::In>>,
    ) -> tonic::Response<Replies<P::Out>> {
        let peer = request.remote_addr().map(|addr| addr.ip());
        tonic::Response::new(serve(
            Arc::clone(&self.protocol),
            request.into_inner(),
            self.shutdown.clone(),
            Reporter {
                errors: Arc::clone(&self.errors),
                peer,
            },
        ))
    }
}

/// Implements a protocol's generated `handle` service trait for
/// `EntityService<protocol>`: each call is served as one entity stream.
macro_rules! entity_service {
    ($service:ty, $rpc:path, $in:ty, $out:ty) => {
        #[tonic::async_trait]
        impl $rpc for $service {
            type handleStream = $crate::stream::Replies<$out>;

            async fn handle(
                &self,
                request: ::tonic::Request<::tonic::Streaming<$in>>,
            ) -> ::core::result::Result<::tonic::Response<Self::handleStream>, ::tonic::Status>
            {
                Ok($crate::stream::EntityService::handle(self, request))
            }
        }
    };
}
pub(crate) use entity_service;

/// The outputs of one input, sent before the next input is read.
pub(crate) type Outputs<Out> = VecDeque<Out>;

/// The response stream of one entity stream.
pub(crate) type Replies<Out> = Pin<Box<dyn Stream<Item = Result<Out, Status>> + Send>>;

/// Runs the entity inside its response stream: each poll reads input until
/// there is something to answer, so replies take no hop between tasks.
fn serve<P: Protocol>(
    protocol: Arc<P>,
    input: Streaming<P::In>,
    shutdown: watch::Receiver<bool>,
    reporter: Reporter,
) -> Replies<P::Out> {
    let stream = EntityStream {
        protocol,
        input,
        shutdown: ShutdownSignal::new(shutdown),
        reporter,
        entity: None,
        queue: VecDeque::new(),
        finished: false,
        span: tracing::info_span!("cloudstate.entity"),
    };
    Box::pin(futures_util::stream::unfold(
        stream,
        |mut stream| async move {
            let out = stream.step().await?;
            Some((Ok(out), stream))
        },
    ))
}

struct EntityStream<P: Protocol> {
    protocol: Arc<P>,
    input: Streaming<P::In>,
    shutdown: ShutdownSignal,
    reporter: Reporter,
    entity: Option<P::Entity>,
    queue: Outputs<P::Out>,
    finished: bool,
    span: tracing::Span,
}

impl<P: Protocol> EntityStream<P> {
    /// The next message to send, or `None` when the stream ends (with OK).
    async fn step(&mut self) -> Option<P::Out> {
        loop {
            if let Some(out) = self.queue.pop_front() {
                return Some(out);
            }
            if self.finished {
                return None;
            }
            if let Err(stop) = self.advance().await {
                self.finished = true;
                if let Stop::Failure(command_id, description) = stop {
                    self.span
                        .in_scope(|| self.reporter.protocol_error(command_id, &description));
                    self.queue.push_back(P::failure(command_id, description));
                }
            }
        }
    }

    /// Reads one message and handles it in the stream's span (entered only
    /// while handling: waiting for input is not the entity's doing).
    async fn advance(&mut self) -> Result<(), Stop> {
        let message = match self.next().await {
            Ok(Some(message)) => message,
            Ok(None) => {
                debug!(parent: &self.span, "stream ended");
                return Err(Stop::Done);
            }
            Err(Stop::Failure(id, description)) => {
                return Err(match &self.entity {
                    Some(entity) => P::stop(entity, id, &description),
                    None => Stop::Failure(id, description),
                });
            }
            Err(stop) => return Err(stop),
        };
        match &mut self.entity {
            Some(entity) => self
                .span
                .in_scope(|| P::handle(entity, message, &mut self.queue)),
            None => {
                let (entity, span) = self.span.in_scope(|| self.protocol.start(message))?;
                self.span = span;
                self.entity = Some(entity);
                Ok(())
            }
        }
    }

    /// Waits for the next message; `None` at end of input or shutdown.
    async fn next(&mut self) -> Result<Option<P::Message>, Stop> {
        let message = tokio::select! {
            biased;
            message = self.input.message() => message,
            () = std::future::poll_fn(|cx| self.shutdown.poll_stopped(cx)) => return Ok(None),
        };
        match message {
            Ok(Some(input)) => match P::message(input) {
                Some(message) => Ok(Some(message)),
                None => Err(Stop::Failure(
                    0,
                    "Protocol error: Received empty/unknown message".to_owned(),
                )),
            },
            Ok(None) => Ok(None),
            Err(status) if is_disconnect(&status) => {
                debug!(parent: &self.span, "proxy went away: {status}");
                Ok(None)
            }
            Err(status) => Err(Stop::Failure(
                0,
                format!(
                    "Protocol error: could not read a message from the proxy: {} ({:?})",
                    status.message(),
                    status.code()
                ),
            )),
        }
    }
}

/// The server's shutdown as one stream waits for it, alongside its input.
///
/// Polling the watch's own future again on every wait for input would take
/// the watch's lock each time; this registers with the watch once, through a
/// waker of its own, and polls it again only when that waker fired. In
/// between, a poll costs an atomic swap and the task waker's registration.
struct ShutdownSignal {
    /// Completes when shutdown is signalled or the server is gone.
    wait: Pin<Box<dyn Future<Output = ()> + Send>>,
    wake: Arc<SignalWake>,
    stopped: bool,
}

struct SignalWake {
    /// Set when the watch woke `wait`; starts set, for the first poll.
    fired: AtomicBool,
    /// The stream's task.
    task: AtomicWaker,
}

impl ArcWake for SignalWake {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.fired.store(true, Ordering::Release);
        arc_self.task.wake();
    }
}

impl ShutdownSignal {
    fn new(mut shutdown: watch::Receiver<bool>) -> Self {
        Self {
            wait: Box::pin(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            }),
            wake: Arc::new(SignalWake {
                fired: AtomicBool::new(true),
                task: AtomicWaker::new(),
            }),
            stopped: false,
        }
    }

    /// Ready once shutdown is signalled (and from then on).
    fn poll_stopped(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.stopped {
            return Poll::Ready(());
        }
        // Registered before `fired` is read, so no wake-up is lost.
        self.wake.task.register(cx.waker());
        if self.wake.fired.swap(false, Ordering::AcqRel) {
            let waker = waker_ref(&self.wake);
            if self
                .wait
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                self.stopped = true;
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

/// Transport-level endings that are not the proxy's protocol errors.
fn is_disconnect(status: &Status) -> bool {
    matches!(status.code(), tonic::Code::Cancelled)
        || status.message().contains("stream no longer needed")
        || status.message().contains("connection reset")
}

/// `description (entity [id] of service [name])`.
pub(crate) fn context(description: &str, service: &str, entity_id: &str) -> String {
    format!("{description} (entity [{entity_id}] of service [{service}])")
}

/// Logs the protocol errors of each peer, at most [`ErrorLog::BURST`] per
/// [`ErrorLog::WINDOW`]: a misbehaving proxy must not flood the log.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    peers: Mutex<HashMap<Option<IpAddr>, Window>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    logged: u32,
    suppressed: u32,
}

/// What to do with one protocol error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Log it; `suppressed` errors of the peer's previous window were not.
    Log { suppressed: u32 },
    /// Count it, do not log it.
    Suppress,
}

impl ErrorLog {
    const BURST: u32 = 10;
    const WINDOW: Duration = Duration::from_secs(60);

    pub(crate) fn admit(&self, peer: Option<IpAddr>, now: Instant) -> Verdict {
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = peers.entry(peer).or_insert(Window {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        let mut suppressed = 0;
        if now.duration_since(window.started) >= Self::WINDOW {
            suppressed = std::mem::take(&mut window.suppressed);
            window.started = now;
            window.logged = 0;
        }
        if window.logged < Self::BURST {
            window.logged += 1;
            Verdict::Log { suppressed }
        } else {
            window.suppressed += 1;
            Verdict::Suppress
        }
    }
}

/// Where one stream reports its protocol errors.
struct Reporter {
    errors: Arc<ErrorLog>,
    peer: Option<IpAddr>,
}

impl Reporter {
    fn protocol_error(&self, command_id: i64, description: &str) {
        match self.errors.admit(self.peer, Instant::now()) {
            Verdict::Log { suppressed } => {
                if suppressed > 0 {
                    warn!(
                        peer = ?self.peer,
                        "{suppressed} more protocol errors from this peer were not logged"
                    );
                }
                error!(command_id, peer = ?self.peer, "{description}");
            }
            Verdict::Suppress => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_errors_are_logged_in_bursts_per_peer() {
        let log = ErrorLog::default();
        let (a, b) = (
            Some(IpAddr::from([10, 0, 0, 1])),
            Some(IpAddr::from([10, 0, 0, 2])),
        );
        let start = Instant::now();
        for _ in 0..ErrorLog::BURST {
            assert_eq!(log.admit(a, start), Verdict::Log { suppressed: 0 });
        }
        assert_eq!(log.admit(a, start), Verdict::Suppress);
        assert_eq!(log.admit(a, start), Verdict::Suppress);
        // Another peer has its own budget.
        assert_eq!(log.admit(b, start), Verdict::Log { suppressed: 0 });
        // A new window logs again and says how many were dropped.
        let later = start + ErrorLog::WINDOW;
        assert_eq!(log.admit(a, later), Verdict::Log { suppressed: 2 });
        assert_eq!(log.admit(a, later), Verdict::Log { suppressed: 0 });
    }
}
