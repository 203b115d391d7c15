//! The load generator, playing the proxy: one bidirectional stream per
//! simulated entity, one command in flight per stream (send, wait for the
//! reply, send the next), as the Cloudstate proxy drives an entity.

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

/// How long the end of a stream may take once its input is complete.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which server a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The shopping cart, through the SDK's event-sourced runtime.
    Cart,
    /// The raw tonic echo baseline.
    Echo,
}

impl Target {
    async fn open(
        self,
        channel: Channel,
        input: ReceiverStream<EventSourcedStreamIn>,
    ) -> Result<Streaming<EventSourcedStreamOut>, tonic::Status> {
        Ok(match self {
            Self::Cart => EventSourcedClient::new(channel)
                .handle(input)
                .await?
                .into_inner(),
            Self::Echo => EchoClient::new(channel).echo(input).await?.into_inner(),
        })
    }
}

/// What one run measured.
#[derive(Debug)]
pub(crate) struct Measured {
    /// Round-trip latency of every command, in nanoseconds, sorted.
    pub(crate) latencies_ns: Vec<u64>,
    /// From the first command sent to the last reply received, over all streams.
    pub(crate) wall: Duration,
    /// Mean encoded size of a command and of a reply, in bytes.
    pub(crate) mean_sizes: (f64, f64),
    /// CPU time of the whole process (load generator and both servers) over
    /// the timed part, in nanoseconds, where measurable.
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

/// Marks the end of the timed part: the last stream to finish its commands
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

/// One stream's share.
struct StreamResult {
    latencies_ns: Vec<u64>,
    first_send: Instant,
    last_reply: Instant,
    bytes: (u64, u64),
}

/// Opens `streams` streams against `target` (spread over `channels`), each a
/// new entity named `{tag}-{i}`, and runs `per_stream` commands on each.
/// Timing starts once every stream is open and initialised.
///
/// # Errors
/// A stream that could not be opened, a failed or unexpected answer.
pub(crate) async fn run(
    target: Target,
    channels: &[Channel],
    streams: usize,
    per_stream: usize,
    tag: &str,
) -> Result<Measured, String> {
    // The streams and this task: CPU accounting starts once all are open.
    let barrier = Arc::new(Barrier::new(streams + 1));
    let finish = Arc::new(Finish {
        remaining: AtomicUsize::new(streams),
        cpu_ns: OnceLock::new(),
    });
    let mut tasks = JoinSet::new();
    for i in 0..streams {
        let channel = channels[i % channels.len()].clone();
        let script = Script::new(&format!("{tag}-{i}"));
        tasks.spawn(one_stream(
            target,
            channel,
            script,
            per_stream,
            Arc::clone(&barrier),
            Arc::clone(&finish),
        ));
    }
    barrier.wait().await;
    let cpu_start = cpu::process_cpu_ns();
    let mut latencies_ns = Vec::with_capacity(streams * per_stream);
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    let mut bytes = (0_u64, 0_u64);
    let mut error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(|e| format!("stream task failed: {e}")) {
            Ok(Ok(result)) => {
                latencies_ns.extend_from_slice(&result.latencies_ns);
                first = Some(first.map_or(result.first_send, |f| f.min(result.first_send)));
                last = Some(last.map_or(result.last_reply, |l| l.max(result.last_reply)));
                bytes.0 += result.bytes.0;
                bytes.1 += result.bytes.1;
            }
            Ok(Err(e)) | Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    if let Some(error) = error {
        return Err(format!("{target:?}: {error}"));
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

async fn one_stream(
    target: Target,
    channel: Channel,
    script: Script,
    per_stream: usize,
    barrier: Arc<Barrier>,
    finish: Arc<Finish>,
) -> Result<StreamResult, String> {
    let (input, rx) = mpsc::channel(4);
    let opened = match input.send(script.init()).await {
        Ok(()) => target
            .open(channel, ReceiverStream::new(rx))
            .await
            .map_err(|status| format!("could not open a stream: {status}")),
        Err(_) => Err("could not queue init".to_owned()),
    };
    // Every stream waits here, opened or not, so that none is left waiting.
    barrier.wait().await;
    let result = commands(&script, per_stream, &input, opened).await;
    finish.done();
    let (mut output, result) = result?;

    // Passivate: complete the input and expect the output to end with OK.
    drop(input);
    match tokio::time::timeout(CLOSE_TIMEOUT, output.message()).await {
        Ok(Ok(None)) => {}
        Ok(Ok(Some(extra))) => return Err(format!("unexpected message at the end: {extra:?}")),
        Ok(Err(status)) => return Err(format!("the stream ended with {status}")),
        Err(_) => return Err("the stream did not end after its input did".to_owned()),
    }
    Ok(result)
}

/// The timed part of one stream: its commands, one at a time.
async fn commands(
    script: &Script,
    per_stream: usize,
    input: &mpsc::Sender<EventSourcedStreamIn>,
    opened: Result<Streaming<EventSourcedStreamOut>, String>,
) -> Result<(Streaming<EventSourcedStreamOut>, StreamResult), String> {
    let mut output = opened?;

    let mut latencies_ns = Vec::with_capacity(per_stream);
    let mut bytes = (0_u64, 0_u64);
    let mut first_send = None;
    let mut last_reply = Instant::now();
    for n in 0..per_stream {
        let (id, command) = script.command(n);
        bytes.0 += command.encoded_len() as u64;
        let sent = Instant::now();
        first_send.get_or_insert(sent);
        input
            .send(command)
            .await
            .map_err(|_| format!("command {id}: the stream's input closed"))?;
        let reply = output
            .message()
            .await
            .map_err(|status| format!("command {id}: the stream failed: {status}"))?
            .ok_or_else(|| format!("command {id}: the stream ended"))?;
        last_reply = Instant::now();
        latencies_ns
            .push(u64::try_from(last_reply.duration_since(sent).as_nanos()).unwrap_or(u64::MAX));
        bytes.1 += reply.encoded_len() as u64;
        check_reply(&reply, id)?;
    }
    Ok((
        output,
        StreamResult {
            latencies_ns,
            first_send: first_send.unwrap_or(last_reply),
            last_reply,
            bytes,
        },
    ))
}
