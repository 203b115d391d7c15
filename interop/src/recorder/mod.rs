//! A recording pass-through: the proxy connects to it as if it were the user
//! function; it forwards every call to the real user function and records
//! every message both ways.
//!
//! Calls keep their request and response metadata (less the encoding
//! headers, as the recorder neither compresses nor accepts compression), and
//! their final status. Streams stay open exactly as long as both sides keep
//! them open: a half-close by the proxy is passed on as a half-close, the end
//! of the user function's output (OK or not) ends the proxy's call with the
//! same status, and a cancellation by the proxy cancels the user function's
//! call. Trailing metadata of a stream that ends with OK is not passed on.
//!
//! ```no_run
//! # async fn run(user_function: std::net::SocketAddr) {
//! use cloudstate_interop::recorder::{Recorder, Service};
//! let recorder = Recorder::start(user_function).await;
//! // Point the proxy at `recorder.addr()`, then:
//! let log = recorder
//!     .wait_for(|log| log.calls_to(Service::EntityDiscovery, "discover").any(|c| c.is_ended()))
//!     .await
//!     .expect("the proxy ran discovery");
//! # let _ = log;
//! # }
//! ```

mod forward;
mod log;

pub use log::{Call, CallStatus, Event, InMessage, Inbound, Log, OutMessage, Outbound, Service};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tonic::metadata::MetadataMap;

/// The largest message accepted and sent either way: above the official
/// proxy's 12 MiB and the SDK's 16 MiB defaults.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// How long [`Recorder::wait_for`] waits unless told otherwise. Generous: it
/// only keeps a broken test from hanging.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running recorder, serving on an ephemeral port of 127.0.0.1 until dropped.
#[derive(Debug)]
pub struct Recorder {
    addr: SocketAddr,
    user_function: SocketAddr,
    shared: Arc<Shared>,
    timeout: Duration,
    server: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Binds 127.0.0.1:0 and forwards to the user function at
    /// `user_function` (connected on the first call, so it may start later).
    ///
    /// # Panics
    /// When binding fails.
    pub async fn start(user_function: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared::default());
        let server = tokio::spawn(forward::serve(listener, user_function, Arc::clone(&shared)));
        tracing::debug!(%addr, %user_function, "recorder started");
        Self {
            addr,
            user_function,
            shared,
            timeout: DEFAULT_TIMEOUT,
            server,
        }
    }

    /// Changes how long [`wait_for`](Self::wait_for) waits.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Where the recorder listens: the address to give the proxy.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where calls are forwarded.
    pub fn user_function(&self) -> SocketAddr {
        self.user_function
    }

    /// A snapshot of every call so far.
    pub fn log(&self) -> Log {
        self.shared.lock().clone()
    }

    /// A snapshot of every call so far, in start order.
    pub fn calls(&self) -> Vec<Call> {
        self.log().into_calls()
    }

    /// Waits until `done` holds for the log, and returns a snapshot of it.
    /// `done` runs under the recorder's lock each time something is
    /// recorded: keep it short.
    ///
    /// # Errors
    /// When `done` does not hold within the timeout (the error carries the log).
    pub async fn wait_for(&self, mut done: impl FnMut(&Log) -> bool) -> Result<Log, WaitTimeout> {
        let mut changed = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            changed.borrow_and_update();
            {
                let log = self.shared.lock();
                if done(&log) {
                    return Ok(log.clone());
                }
            }
            // The sender lives in `shared`, so `changed` only ever times out.
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return Err(WaitTimeout {
                    timeout: self.timeout,
                    log: Box::new(self.log()),
                });
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// [`Recorder::wait_for`] gave up.
#[derive(Debug, thiserror::Error)]
#[error("the condition did not hold within {timeout:?} ({} calls recorded)", log.calls.len())]
pub struct WaitTimeout {
    /// How long it waited.
    pub timeout: Duration,
    /// What was recorded by then.
    pub log: Box<Log>,
}

/// The log, and a counter bumped on each change for waiters.
#[derive(Debug)]
struct Shared {
    log: Mutex<Log>,
    changed: watch::Sender<u64>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            log: Mutex::default(),
            changed: watch::Sender::new(0),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panicking `wait_for` predicate must not wedge the recorder.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Records a new call and returns its number.
    fn start(&self, service: Service, method: &'static str, metadata: &MetadataMap) -> usize {
        let id = {
            let mut log = self.lock();
            let id = log.calls.len();
            log.calls.push(Call {
                id,
                service,
                method,
                metadata: metadata.clone(),
                events: vec![Event::CallStarted {
                    service,
                    method,
                    call_id: id,
                }],
            });
            id
        };
        tracing::debug!(call = id, %service, method, "call started");
        self.notify();
        id
    }

    /// Appends `event` to call `id` unless the call is over (so that
    /// [`Event::Ended`] stays last); `Ended` itself goes through
    /// [`end`](Self::end). Returns whether it was recorded.
    fn push(&self, id: usize, event: Event) -> bool {
        let recorded = {
            let mut log = self.lock();
            let call = &mut log.calls[id];
            let open = !call.is_ended();
            if open {
                call.events.push(event);
            }
            open
        };
        if recorded {
            self.notify();
        }
        recorded
    }

    /// Ends call `id` with `status`, unless it already ended.
    fn end(&self, id: usize, status: CallStatus) -> bool {
        let code = status.code;
        let ended = self.push(id, Event::Ended { status });
        if ended {
            tracing::debug!(call = id, ?code, "call ended");
        }
        ended
    }
}
