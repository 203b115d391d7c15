//! `--idle-streams N`: resident memory of the server, the cart against the
//! echo, each in a child process of its own so that the load generator's
//! memory is not counted.
//!
//! * **Idle streams.** A fresh child; its `VmRSS` is read, then N entity
//!   streams are opened (`init` and one command each, answered) and held
//!   open; `VmRSS` is read again. The difference over N is the memory of one
//!   idle stream, with everything it holds on the server: the HTTP/2 stream,
//!   the codec buffers, the entity and its state.
//! * **Under load.** Another fresh child runs the round-trip load at each
//!   concurrency of `--concurrency` (default 256 in this mode); the figure
//!   is its peak RSS (`VmHWM`) over the run.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::child::{ChildServer, Served};
use crate::load::{self, Session as _, StreamService, StreamSession};
use crate::script::Script;
use crate::{Options, connect, median};

/// Streams opened at the same time while filling a server.
const OPENING_AT_ONCE: usize = 256;
/// How long a server is left to settle before its memory is read.
const SETTLE: Duration = Duration::from_millis(300);

fn service(served: Served) -> StreamService {
    match served {
        Served::Cart => StreamService::EventSourced,
        Served::Echo => StreamService::Echo,
    }
}

/// What one target measured.
#[derive(Debug, Default)]
struct Memory {
    /// RSS of the fresh server, KiB (medians over the rounds).
    base_kib: f64,
    /// RSS with the idle streams open, KiB.
    idle_kib: f64,
    /// Per idle stream, KiB.
    per_stream_kib: f64,
    /// Peak RSS under load at each concurrency, KiB.
    loaded_peak_kib: Vec<(usize, f64)>,
}

/// Opens `n` streams to the child and returns them open.
async fn open_idle(
    served: Served,
    channels: &[Channel],
    n: usize,
    tag: &str,
) -> Result<Vec<StreamSession>, String> {
    let permits = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut opening = JoinSet::new();
    for i in 0..n {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let channel = channels[i % channels.len()].clone();
        let script = Script::new(&format!("{tag}-{i}"));
        opening.spawn(async move {
            let opened = tokio::time::timeout(
                load::OPEN_CLOSE_TIMEOUT,
                StreamSession::open(service(served), channel, script),
            )
            .await
            .unwrap_or_else(|_| Err("no answer to the first command".to_owned()));
            drop(permit);
            opened
        });
    }
    let mut sessions = Vec::with_capacity(n);
    while let Some(joined) = opening.join_next().await {
        sessions.push(joined.map_err(|e| e.to_string())??);
    }
    Ok(sessions)
}

/// Ends every stream, checking each ends with OK.
async fn close_all(sessions: Vec<StreamSession>) -> Result<(), String> {
    let mut closing = JoinSet::new();
    for session in sessions {
        closing.spawn(session.close());
    }
    while let Some(joined) = closing.join_next().await {
        joined.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// One round of the idle-stream measurement: (base, with streams), KiB.
async fn idle_round(
    options: &Options,
    served: Served,
    n: usize,
    round: usize,
) -> Result<(u64, u64), String> {
    let child = ChildServer::spawn(served, options.threads).await?;
    let result = async {
        let channels = connect(child.addr, options.connections).await?;
        // One stream opened and closed first, so that what every server
        // allocates once (the connection, the first call) is in the base.
        let tag = format!("idle-{}-r{round}", served.name());
        close_all(open_idle(served, &channels, 1, &format!("{tag}-first")).await?).await?;
        tokio::time::sleep(SETTLE).await;
        let base = child.rss()?.now_kib;
        let sessions = open_idle(served, &channels, n, &tag).await?;
        tokio::time::sleep(SETTLE).await;
        let idle = child.rss()?.now_kib;
        close_all(sessions).await?;
        Ok((base, idle))
    }
    .await;
    child.stop().await;
    result
}

/// One round of the loaded measurement: peak RSS in KiB at concurrency `c`.
async fn loaded_round(
    options: &Options,
    served: Served,
    c: usize,
    round: usize,
) -> Result<u64, String> {
    let child = ChildServer::spawn(served, options.threads).await?;
    let result = async {
        let channels = connect(child.addr, options.connections).await?;
        let per_client = (options.commands / c).max(crate::MIN_PER_CLIENT);
        let tag = format!("loaded-{}-c{c}-r{round}", served.name());
        load::run(c, per_client, |i| {
            StreamSession::open(
                service(served),
                channels[i % channels.len()].clone(),
                Script::new(&format!("{tag}-{i}")),
            )
        })
        .await?;
        Ok(child.rss()?.peak_kib)
    }
    .await;
    child.stop().await;
    result
}

async fn measure(options: &Options, served: Served, n: usize) -> Result<Memory, String> {
    let mut bases = Vec::new();
    let mut idles = Vec::new();
    let mut per_stream = Vec::new();
    for round in 0..options.rounds {
        let (base, idle) = idle_round(options, served, n, round).await?;
        bases.push(base as f64);
        idles.push(idle as f64);
        per_stream.push(idle.saturating_sub(base) as f64 / n as f64);
    }
    let mut loaded_peak_kib = Vec::new();
    for &c in &options.concurrency {
        let mut peaks = Vec::new();
        for round in 0..options.rounds {
            peaks.push(loaded_round(options, served, c, round).await? as f64);
        }
        loaded_peak_kib.push((c, median(&peaks)));
    }
    Ok(Memory {
        base_kib: median(&bases),
        idle_kib: median(&idles),
        per_stream_kib: median(&per_stream),
        loaded_peak_kib,
    })
}

/// Runs the memory measurement and prints its report.
pub(crate) async fn run(options: &Options, n: usize) -> Result<(), String> {
    let targets: Vec<Served> = match options.only {
        Some(crate::Target::Cart) => vec![Served::Cart],
        Some(_) => vec![Served::Echo],
        None => vec![Served::Cart, Served::Echo],
    };
    let mut measured = Vec::new();
    for &served in &targets {
        measured.push((served, measure(options, served, n).await?));
    }
    println!(
        "cloudstate-bench --idle-streams {n}: server resident memory, each server in a child \
         process of its own ({}), {} connection(s), median of {} round(s)",
        options.threads.map_or_else(
            || "one worker thread per CPU".to_owned(),
            |t| format!("{t} worker threads")
        ),
        options.connections,
        options.rounds
    );
    println!();
    println!(
        "{:>6} {:>12} {:>14} {:>16}",
        "server", "fresh RSS", "with streams", "KiB per stream"
    );
    for (served, m) in &measured {
        println!(
            "{:>6} {:>9.0} KiB {:>10.0} KiB {:>16.2}",
            served.name(),
            m.base_kib,
            m.idle_kib,
            m.per_stream_kib
        );
    }
    println!();
    println!(
        "peak RSS under the round-trip load ({} commands):",
        options.commands
    );
    println!(
        "{:>5} {:>12} {:>12} {:>12}",
        "C", "cart", "echo", "cart/echo"
    );
    let peak = |served: Served, c: usize| {
        measured
            .iter()
            .find(|(s, _)| *s == served)
            .and_then(|(_, m)| m.loaded_peak_kib.iter().find(|(k, _)| *k == c))
            .map(|(_, kib)| *kib)
    };
    let kib = |v: Option<f64>| v.map_or_else(crate::dash, |v| format!("{v:.0} KiB"));
    for &c in &options.concurrency {
        let (cart, echo) = (peak(Served::Cart, c), peak(Served::Echo, c));
        println!(
            "{:>5} {:>12} {:>12} {:>12}",
            c,
            kib(cart),
            kib(echo),
            crate::times(cart.zip(echo).map(|(a, b)| a / b))
        );
    }
    if let Some((_, cart)) = measured.iter().find(|(s, _)| *s == Served::Cart) {
        println!();
        println!(
            "target: cart memory per idle stream <= {PER_STREAM_TARGET_KIB:.0} KiB: {:.2} KiB -> {}",
            cart.per_stream_kib,
            crate::verdict(cart.per_stream_kib <= PER_STREAM_TARGET_KIB)
        );
        if let Some(echo_peak) = peak(Served::Echo, crate::TARGET_CONCURRENCY) {
            let cart_peak = peak(Served::Cart, crate::TARGET_CONCURRENCY).unwrap_or(f64::NAN);
            let ratio = cart_peak / echo_peak;
            println!(
                "target: cart peak RSS <= {RSS_RATIO_TARGET:.1}x echo at C={}: {ratio:.2}x -> {}",
                crate::TARGET_CONCURRENCY,
                crate::verdict(ratio <= RSS_RATIO_TARGET)
            );
        }
    }
    Ok(())
}

/// Memory target per idle entity stream, KiB.
const PER_STREAM_TARGET_KIB: f64 = 8.0;
/// Peak RSS target under load: cart ≤ this × echo.
const RSS_RATIO_TARGET: f64 = 1.3;
