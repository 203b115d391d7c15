//! The load generator: C clients, each one entity (one cart), one command in
//! flight per client (send, wait for the answer, send the next), as the
//! Cloudstate proxy drives an entity. What a client is (a protocol stream to a
//! user function, a gRPC or HTTP client of the dev proxy) is a [`Session`].
//!
//! Each client opens its session and gets the answer to one untimed first
//! command before the timed part starts, so that opening a stream or
//! connection and starting the entity are not measured, whatever the server
//! (some send their response headers only with their first reply).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, EventSourcedStreamOut, event_sourced_client::EventSourcedClient,
};
use prost::Message as _;
use tokio::sync::{Barrier, mpsc};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use crate::cpu;
use crate::proto::echo_client::EchoClient;
use crate::script::{Script, check_reply};

/// How long opening a session, or its end once its input is complete, may take.
pub(crate) const OPEN_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// One timed command: when it was sent, when its answer was in, and the
/// encoded sizes of both in bytes.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) sent: Instant,
    pub(crate) answered: Instant,
    pub(crate) bytes: (u64, u64),
}

/// One client: an open stream or connection to one entity, past its first
/// (untimed) command.
pub(crate) trait Session: Send + 'static {
    /// Sends the `n`-th timed command (0-based), waits for its answer and
    /// checks it.
    fn command(&mut self, n: usize) -> impl Future<Output = Result<Exchange, String>> + Send;

    /// Ends the session after its timed commands.
    fn close(self) -> impl Future<Output = Result<(), String>> + Send;
}

/// What one run measured.
#[derive(Debug)]
pub(crate) struct Measured {
    /// Round-trip latency of every command, in nanoseconds, sorted.
    pub(crate) latencies_ns: Vec<u64>,
    /// From the first command sent to the last answer received, over all clients.
    pub(crate) wall: Duration,
    /// Mean encoded size of a command and of its answer, in bytes.
    pub(crate) mean_sizes: (f64, f64),
    /// CPU time of this whole process (load generator and the servers it
    /// runs) over the timed part, in nanoseconds, where measurable.
    pub(crate) cpu_ns: Option<u64>,
}

impl Measured {
    /// Round trips completed per second of wall time.
    pub(crate) fn throughput(&self) -> f64 {
        self.latencies_ns.len() as f64 / self.wall.as_secs_f64()
    }

    /// CPU time per round trip in µs, whole process.
    pub(crate) fn cpu_per_round_trip_us(&self) -> Option<f64> {
        let n = self.latencies_ns.len();
        (n > 0).then_some(())?;
        Some(self.cpu_ns? as f64 / n as f64 / 1_000.0)
    }

    /// The `q` quantile (0 < q ≤ 1) of the latencies, nearest rank, in µs.
    pub(crate) fn quantile_us(&self, q: f64) -> f64 {
        let n = self.latencies_ns.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies_ns[rank - 1] as f64 / 1_000.0
    }
}

/// Marks the end of the timed part: the last client to finish its commands
/// reads the CPU time.
struct Finish {
    remaining: AtomicUsize,
    cpu_ns: OnceLock<Option<u64>>,
}

impl Finish {
    fn done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.cpu_ns.set(cpu::process_cpu_ns());
        }
    }
}

/// One client's share.
struct ClientResult {
    latencies_ns: Vec<u64>,
    first_send: Instant,
    last_answer: Instant,
    bytes: (u64, u64),
}

/// Opens `clients` sessions with `open(i)`, then runs `per_client` timed
/// commands on each. Timing starts once every session is open.
///
/// # Errors
/// A session that could not be opened, a failed or unexpected answer.
pub(crate) async fn run<S, F, Fut>(
    clients: usize,
    per_client: usize,
    open: F,
) -> Result<Measured, String>
where
    S: Session,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<S, String>> + Send + 'static,
{
    // The clients and this task: CPU accounting starts once all are open.
    let barrier = Arc::new(Barrier::new(clients + 1));
    let finish = Arc::new(Finish {
        remaining: AtomicUsize::new(clients),
        cpu_ns: OnceLock::new(),
    });
    let mut tasks = JoinSet::new();
    for i in 0..clients {
        tasks.spawn(one_client(
            open(i),
            per_client,
            Arc::clone(&barrier),
            Arc::clone(&finish),
        ));
    }
    barrier.wait().await;
    let cpu_start = cpu::process_cpu_ns();
    let mut latencies_ns = Vec::with_capacity(clients * per_client);
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    let mut bytes = (0_u64, 0_u64);
    let mut error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(|e| format!("client task failed: {e}")) {
            Ok(Ok(result)) => {
                latencies_ns.extend_from_slice(&result.latencies_ns);
                first = Some(first.map_or(result.first_send, |f| f.min(result.first_send)));
                last = Some(last.map_or(result.last_answer, |l| l.max(result.last_answer)));
                bytes.0 += result.bytes.0;
                bytes.1 += result.bytes.1;
            }
            Ok(Err(e)) | Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    if let Some(error) = error {
        return Err(error);
    }
    latencies_ns.sort_unstable();
    let cpu_ns = match (cpu_start, finish.cpu_ns.get()) {
        (Some(start), Some(Some(end))) => Some(end.saturating_sub(start)),
        _ => None,
    };
    let count = latencies_ns.len().max(1) as f64;
    let wall = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => Duration::ZERO,
    };
    Ok(Measured {
        latencies_ns,
        wall,
        mean_sizes: (bytes.0 as f64 / count, bytes.1 as f64 / count),
        cpu_ns,
    })
}

async fn one_client<S: Session>(
    open: impl Future<Output = Result<S, String>>,
    per_client: usize,
    barrier: Arc<Barrier>,
    finish: Arc<Finish>,
) -> Result<ClientResult, String> {
    let opened = match tokio::time::timeout(OPEN_CLOSE_TIMEOUT, open).await {
        Ok(opened) => opened,
        Err(_) => Err(format!(
            "no answer to the first command within {OPEN_CLOSE_TIMEOUT:?}"
        )),
    };
    // Every client waits here, opened or not, so that none is left waiting.
    barrier.wait().await;
    let result = match opened {
        Ok(session) => timed(session, per_client).await,
        Err(e) => Err(e),
    };
    finish.done();
    let (session, result) = result?;
    session.close().await?;
    Ok(result)
}

/// The timed part of one client: its commands, one at a time.
async fn timed<S: Session>(mut session: S, per_client: usize) -> Result<(S, ClientResult), String> {
    let mut latencies_ns = Vec::with_capacity(per_client);
    let mut bytes = (0_u64, 0_u64);
    let mut first_send = None;
    let mut last_answer = None;
    for n in 0..per_client {
        let exchange = session.command(n).await?;
        first_send.get_or_insert(exchange.sent);
        last_answer = Some(exchange.answered);
        latencies_ns.push(
            u64::try_from(exchange.answered.duration_since(exchange.sent).as_nanos())
                .unwrap_or(u64::MAX),
        );
        bytes.0 += exchange.bytes.0;
        bytes.1 += exchange.bytes.1;
    }
    let now = Instant::now();
    Ok((
        session,
        ClientResult {
            latencies_ns,
            first_send: first_send.unwrap_or(now),
            last_answer: last_answer.unwrap_or(now),
            bytes,
        },
    ))
}

/// Which service a protocol stream calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamService {
    /// `cloudstate.eventsourced.EventSourced/handle`: a user function.
    EventSourced,
    /// `bench.Echo/Echo`: the raw tonic baseline.
    Echo,
}

impl StreamService {
    async fn call(
        self,
        channel: Channel,
        input: ReceiverStream<EventSourcedStreamIn>,
    ) -> Result<Streaming<EventSourcedStreamOut>, tonic::Status> {
        Ok(match self {
            Self::EventSourced => EventSourcedClient::new(channel)
                .handle(input)
                .await?
                .into_inner(),
            Self::Echo => EchoClient::new(channel).echo(input).await?.into_inner(),
        })
    }
}

/// A protocol stream to one entity, as the proxy drives it: `init`, then
/// commands alternating `AddItem` and `GetCart`.
pub(crate) struct StreamSession {
    script: Script,
    input: mpsc::Sender<EventSourcedStreamIn>,
    output: Streaming<EventSourcedStreamOut>,
}

impl StreamSession {
    /// Queues `init` and the first command, then makes the call and waits for
    /// the first reply. The call is spawned after the messages are queued:
    /// grpc-go, for one, sends its response headers only with its first reply.
    pub(crate) async fn open(
        service: StreamService,
        channel: Channel,
        script: Script,
    ) -> Result<Self, String> {
        let (input, rx) = mpsc::channel(4);
        let (id, first) = script.command(0);
        for message in [script.init(), first] {
            input
                .send(message)
                .await
                .map_err(|_| "could not queue init".to_owned())?;
        }
        let call = tokio::spawn(service.call(channel, ReceiverStream::new(rx)));
        let mut output = call
            .await
            .map_err(|e| format!("the call task failed: {e}"))?
            .map_err(|status| format!("could not open a stream: {status}"))?;
        let reply = output
            .message()
            .await
            .map_err(|status| format!("command {id}: the stream failed: {status}"))?
            .ok_or_else(|| format!("command {id}: the stream ended"))?;
        check_reply(&reply, id)?;
        Ok(Self {
            script,
            input,
            output,
        })
    }
}

impl Session for StreamSession {
    async fn command(&mut self, n: usize) -> Result<Exchange, String> {
        let (id, command) = self.script.command(n + 1);
        let sent_bytes = command.encoded_len() as u64;
        let sent = Instant::now();
        self.input
            .send(command)
            .await
            .map_err(|_| format!("command {id}: the stream's input closed"))?;
        let reply = self
            .output
            .message()
            .await
            .map_err(|status| format!("command {id}: the stream failed: {status}"))?
            .ok_or_else(|| format!("command {id}: the stream ended"))?;
        let answered = Instant::now();
        check_reply(&reply, id)?;
        Ok(Exchange {
            sent,
            answered,
            bytes: (sent_bytes, reply.encoded_len() as u64),
        })
    }

    /// Passivates: completes the input and expects the output to end with OK.
    async fn close(self) -> Result<(), String> {
        let Self {
            input, mut output, ..
        } = self;
        drop(input);
        match tokio::time::timeout(OPEN_CLOSE_TIMEOUT, output.message()).await {
            Ok(Ok(None)) => Ok(()),
            Ok(Ok(Some(extra))) => Err(format!("unexpected message at the end: {extra:?}")),
            Ok(Err(status)) => Err(format!("the stream ended with {status}")),
            Err(_) => Err("the stream did not end after its input did".to_owned()),
        }
    }
}
