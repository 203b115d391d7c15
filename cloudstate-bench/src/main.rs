//! Benchmark: the shopping cart served by `cloudstate-sdk` against a raw tonic
//! bidirectional-stream echo of the same protocol messages, in one process on
//! 127.0.0.1.
//!
//! ```sh
//! cargo run --release -p cloudstate-bench -- [--commands N] [--concurrency 1,16,256]
//! ```
//!
//! For each concurrency C, C streams (one cart entity each) run about N/C
//! commands each, one in flight per stream as the proxy does, alternating
//! `AddItem` and `GetCart` (the cart snapshots every 5 events). Then the same
//! round trips go to the echo server, which answers each command with a
//! canned reply of the cart's shape and size, so both sides encode and decode
//! the same bytes (`proto/bench.proto`). The load generator is shared.
//!
//! The echo server is plain tonic with tonic's defaults, `TCP_NODELAY`
//! included; `--echo-nodelay off` serves it the way
//! `CloudState::serve_with_listener` accepts connections (Nagle left on), to
//! separate the SDK's runtime from its socket setup.
//!
//! A warm-up at each concurrency is not counted. Each server is measured
//! `--rounds` times per concurrency, alternating which goes first, and the
//! table shows medians (the machine may be shared and noisy). A second table
//! gives the process's CPU time per round trip, which background load
//! disturbs less than throughput does.
//!
//! The first table gives throughput and p50/p99 round-trip latency of both,
//! and the ratios against the targets: cart throughput ≥ 0.7× echo at
//! C = 256 and cart p99 ≤ 2× echo p99. The exit status is 0 whether they are
//! met or not.

mod cpu;
mod echo;
mod load;
mod script;

/// The echo service generated from `proto/bench.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod proto {
    tonic::include_proto!("bench");
}

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};

use load::{Measured, Target};

/// Throughput target: cart ≥ this × echo, at [`TARGET_CONCURRENCY`].
const THROUGHPUT_TARGET: f64 = 0.7;
/// Latency target: cart p99 ≤ this × echo p99.
const P99_TARGET: f64 = 2.0;
/// The concurrency the throughput target is set at.
const TARGET_CONCURRENCY: usize = 256;
/// Fewest commands a stream runs, whatever N / C is.
const MIN_PER_STREAM: usize = 4;

const USAGE: &str = "\
usage: cloudstate-bench [OPTIONS]

  --commands N        round trips per concurrency and server (default 20000)
  --concurrency LIST  streams (entities) in flight, comma separated (default 1,16,256)
  --warmup N          uncounted round trips before each measurement (default 500)
  --rounds R          measurements of each server per concurrency, alternating
                      which goes first; the table shows the median (default 3)
  --connections K     HTTP/2 connections the streams are spread over (default 1)
  --threads T         tokio worker threads, shared by servers and load generator
                      (default: one per CPU)
  --echo-nodelay on|off
                      TCP_NODELAY on the echo server's connections (default on,
                      as tonic's own `serve`); off matches the SDK's listener
  --only cart|echo    measure one server only (for profiling); prints its figures";

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    commands: usize,
    concurrency: Vec<usize>,
    warmup: usize,
    rounds: usize,
    connections: usize,
    threads: Option<usize>,
    echo_nodelay: bool,
    only: Option<Target>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            commands: 20_000,
            concurrency: vec![1, 16, 256],
            warmup: 500,
            rounds: 3,
            connections: 1,
            threads: None,
            echo_nodelay: true,
            only: None,
        };
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            if flag == "-h" || flag == "--help" {
                return Err(String::new());
            }
            let value = inline
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |v: &str| -> Result<usize, String> {
                v.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{flag}: [{v}] is not a positive number"))
            };
            match flag.as_str() {
                "--commands" => options.commands = number(&value)?,
                "--warmup" => options.warmup = number(&value)?,
                "--rounds" => options.rounds = number(&value)?,
                "--connections" => options.connections = number(&value)?,
                "--threads" => options.threads = Some(number(&value)?),
                "--echo-nodelay" => {
                    options.echo_nodelay = match value.as_str() {
                        "on" => true,
                        "off" => false,
                        other => {
                            return Err(format!("--echo-nodelay: [{other}] is neither on nor off"));
                        }
                    };
                }
                "--only" => {
                    options.only = Some(match value.as_str() {
                        "cart" => Target::Cart,
                        "echo" => Target::Echo,
                        other => return Err(format!("--only: [{other}] is neither cart nor echo")),
                    });
                }
                "--concurrency" => {
                    options.concurrency = value.split(',').map(number).collect::<Result<_, _>>()?;
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(options)
    }
}

/// A server running in the background until [`Running::stop`].
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), String>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("server ended with an error: {e}"),
            Ok(Err(e)) => eprintln!("server task failed: {e}"),
            Err(_) => eprintln!("server did not stop within 5 s"),
        }
    }
}

async fn bind() -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, addr))
}

/// The shopping cart, snapshotting every 5 events, served by the SDK.
async fn start_cart() -> Result<Running, String> {
    let (listener, addr) = bind().await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = shopping_cart::register(cloudstate_sdk::CloudState::new(), script::SNAPSHOT_EVERY)
        .shutdown_grace(Duration::from_secs(2));
    let task = tokio::spawn(async move {
        server
            .serve_with_listener(listener, async move {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| e.to_string())
    });
    Ok(Running { addr, stop, task })
}

/// The echo baseline: plain tonic, `TCP_NODELAY` as `nodelay` says.
async fn start_echo(nodelay: bool) -> Result<Running, String> {
    let (listener, addr) = bind().await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(echo::EchoService::server())
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(nodelay)),
                async move {
                    let _ = stopped.await;
                },
            )
            .await
            .map_err(|e| e.to_string())
    });
    Ok(Running { addr, stop, task })
}

async fn connect(addr: SocketAddr, connections: usize) -> Result<Vec<Channel>, String> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|e| e.to_string())?;
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(
            endpoint
                .connect()
                .await
                .map_err(|e| format!("connect to {addr}: {e}"))?,
        );
    }
    Ok(channels)
}

/// One server's figures at one concurrency: the median over the rounds.
#[derive(Debug)]
struct Figures {
    /// Round trips per round.
    commands: usize,
    /// Round trips per second of each round.
    throughputs: Vec<f64>,
    /// Median throughput, round trips per second.
    throughput: f64,
    /// Median p50 latency, µs.
    p50: f64,
    /// Median p99 latency, µs.
    p99: f64,
    /// Mean command and reply size in bytes (first round).
    sizes: (f64, f64),
    /// Median CPU time of the whole process per round trip, µs.
    cpu_us: Option<f64>,
}

impl Figures {
    fn of(rounds: &[Measured]) -> Self {
        let throughputs: Vec<f64> = rounds.iter().map(Measured::throughput).collect();
        Self {
            commands: rounds.first().map_or(0, |m| m.latencies_ns.len()),
            throughput: median(&throughputs),
            p50: median(
                &rounds
                    .iter()
                    .map(|m| m.quantile_us(0.5))
                    .collect::<Vec<_>>(),
            ),
            p99: median(
                &rounds
                    .iter()
                    .map(|m| m.quantile_us(0.99))
                    .collect::<Vec<_>>(),
            ),
            sizes: rounds.first().map_or((0.0, 0.0), |m| m.mean_sizes),
            cpu_us: rounds
                .iter()
                .map(Measured::cpu_per_round_trip_us)
                .collect::<Option<Vec<_>>>()
                .map(|v| median(&v)),
            throughputs,
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// One line of the table.
#[derive(Debug)]
struct Row {
    concurrency: usize,
    cart: Option<Figures>,
    echo: Option<Figures>,
}

impl Row {
    /// Cart over echo throughput (medians), and its range over the rounds.
    fn throughput_ratio(&self) -> Option<(f64, f64, f64)> {
        let (cart, echo) = (self.cart.as_ref()?, self.echo.as_ref()?);
        let per_round: Vec<f64> = cart
            .throughputs
            .iter()
            .zip(&echo.throughputs)
            .map(|(c, e)| c / e)
            .collect();
        let min = per_round.iter().copied().fold(f64::INFINITY, f64::min);
        let max = per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((cart.throughput / echo.throughput, min, max))
    }

    fn p99_ratio(&self) -> Option<f64> {
        Some(self.cart.as_ref()?.p99 / self.echo.as_ref()?.p99)
    }
}

fn name(target: Target) -> &'static str {
    match target {
        Target::Cart => "cart",
        Target::Echo => "echo",
    }
}

async fn bench(options: &Options) -> Result<Vec<Row>, String> {
    let cart = start_cart().await?;
    let echo = start_echo(options.echo_nodelay).await?;
    let cart_channels = connect(cart.addr, options.connections).await?;
    let echo_channels = connect(echo.addr, options.connections).await?;
    let channels = |target| match target {
        Target::Cart => &cart_channels,
        Target::Echo => &echo_channels,
    };
    let targets: Vec<Target> = match options.only {
        Some(target) => vec![target],
        None => vec![Target::Cart, Target::Echo],
    };

    let mut rows = Vec::new();
    for &c in &options.concurrency {
        let warmup_per_stream = options.warmup.div_ceil(c).max(2);
        for &target in &targets {
            let tag = format!("{}-c{c}-warmup", name(target));
            load::run(target, channels(target), c, warmup_per_stream, &tag).await?;
        }
        let per_stream = (options.commands / c).max(MIN_PER_STREAM);
        let (mut cart_rounds, mut echo_rounds) = (Vec::new(), Vec::new());
        for round in 0..options.rounds {
            // Alternate which server goes first, so drifting background load
            // weighs on both alike.
            let mut order = targets.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for target in order {
                let tag = format!("{}-c{c}-r{round}", name(target));
                let measured = load::run(target, channels(target), c, per_stream, &tag).await?;
                match target {
                    Target::Cart => cart_rounds.push(measured),
                    Target::Echo => echo_rounds.push(measured),
                }
            }
        }
        rows.push(Row {
            concurrency: c,
            cart: (!cart_rounds.is_empty()).then(|| Figures::of(&cart_rounds)),
            echo: (!echo_rounds.is_empty()).then(|| Figures::of(&echo_rounds)),
        });
    }

    drop(cart_channels);
    drop(echo_channels);
    cart.stop().await;
    echo.stop().await;
    Ok(rows)
}

fn print_report(options: &Options, rows: &[Row]) {
    println!(
        "cloudstate-bench: shopping cart (cloudstate-sdk) vs raw tonic echo, 127.0.0.1, \
         {} worker threads, {} connection(s) per server, median of {} round(s), \
         echo TCP_NODELAY {}",
        tokio_worker_threads(),
        options.connections,
        options.rounds,
        if options.echo_nodelay { "on" } else { "off" }
    );
    if let Some(row) = rows.first() {
        let sizes = |f: &Option<Figures>| {
            f.as_ref().map_or_else(
                || "-".to_owned(),
                |f| format!("command {:.0} / reply {:.0}", f.sizes.0, f.sizes.1),
            )
        };
        println!(
            "mean message sizes (bytes): cart {}; echo {}",
            sizes(&row.cart),
            sizes(&row.echo)
        );
    }
    println!();
    println!(
        "{:>5} {:>7} {:>11} {:>10} {:>10} {:>11} {:>10} {:>10} {:>9} {:>11} {:>9}",
        "C",
        "cmds",
        "cart cmd/s",
        "cart p50",
        "cart p99",
        "echo rt/s",
        "echo p50",
        "echo p99",
        "thr ratio",
        "(range)",
        "p99 ratio"
    );
    let dash = || "-".to_owned();
    let rate = |f: &Option<Figures>| {
        f.as_ref()
            .map_or_else(dash, |f| format!("{:.0}", f.throughput))
    };
    let micros = |v: Option<f64>| v.map_or_else(dash, |v| format!("{v:.1}µs"));
    for row in rows {
        let commands = row
            .cart
            .as_ref()
            .or(row.echo.as_ref())
            .map_or(0, |f| f.commands);
        let (ratio, range) = match row.throughput_ratio() {
            Some((ratio, min, max)) => (format!("{ratio:.2}x"), format!("{min:.2}-{max:.2}")),
            None => (dash(), dash()),
        };
        println!(
            "{:>5} {:>7} {:>11} {:>10} {:>10} {:>11} {:>10} {:>10} {:>9} {:>11} {:>9}",
            row.concurrency,
            commands,
            rate(&row.cart),
            micros(row.cart.as_ref().map(|f| f.p50)),
            micros(row.cart.as_ref().map(|f| f.p99)),
            rate(&row.echo),
            micros(row.echo.as_ref().map(|f| f.p50)),
            micros(row.echo.as_ref().map(|f| f.p99)),
            ratio,
            range,
            row.p99_ratio().map_or_else(dash, |r| format!("{r:.2}x")),
        );
    }
    println!();
    println!(
        "CPU per round trip, whole process (load generator + server; the generator's share \
         is the same for both):"
    );
    println!(
        "{:>5} {:>11} {:>11} {:>22}",
        "C", "cart CPU", "echo CPU", "CPU-bound thr ratio"
    );
    for row in rows {
        let cpu = |f: &Option<Figures>| f.as_ref().and_then(|f| f.cpu_us);
        let (cart, echo) = (cpu(&row.cart), cpu(&row.echo));
        println!(
            "{:>5} {:>11} {:>11} {:>22}",
            row.concurrency,
            micros(cart),
            micros(echo),
            cart.zip(echo)
                .map_or_else(dash, |(c, e)| format!("{:.2}x", e / c)),
        );
    }
    if options.only.is_some() {
        return;
    }
    println!();
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    match rows
        .iter()
        .find(|r| r.concurrency == TARGET_CONCURRENCY)
        .and_then(Row::throughput_ratio)
    {
        Some((ratio, _, _)) => println!(
            "target: cart throughput >= {THROUGHPUT_TARGET:.1}x echo at C={TARGET_CONCURRENCY}: \
             {ratio:.2}x -> {}",
            verdict(ratio >= THROUGHPUT_TARGET)
        ),
        None => println!(
            "target: cart throughput >= {THROUGHPUT_TARGET:.1}x echo at C={TARGET_CONCURRENCY}: \
             not measured (C={TARGET_CONCURRENCY} not in --concurrency)"
        ),
    }
    for row in rows {
        if let Some(ratio) = row.p99_ratio() {
            println!(
                "target: cart p99 <= {P99_TARGET:.1}x echo p99 at C={}: {ratio:.2}x -> {}",
                row.concurrency,
                verdict(ratio <= P99_TARGET)
            );
        }
    }
}

fn tokio_worker_threads() -> usize {
    tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_workers())
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = options.threads {
        builder.worker_threads(threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let rows = bench(&options).await?;
        print_report(&options, &rows);
        Ok::<_, String>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn options_default_and_parse() {
        let o = parse(&[]).unwrap();
        assert_eq!(
            (o.commands, o.concurrency.clone()),
            (20_000, vec![1, 16, 256])
        );
        assert!(o.echo_nodelay && o.only.is_none());
        let o = parse(&[
            "--commands",
            "100",
            "--concurrency=2,8",
            "--echo-nodelay",
            "off",
        ])
        .unwrap();
        assert_eq!((o.commands, o.concurrency.clone()), (100, vec![2, 8]));
        assert!(!o.echo_nodelay);
        assert_eq!(parse(&["--only", "echo"]).unwrap().only, Some(Target::Echo));
    }

    #[test]
    fn options_refuse_bad_values() {
        assert!(parse(&["--commands", "0"]).is_err());
        assert!(parse(&["--concurrency", "1,x"]).is_err());
        assert!(parse(&["--commands"]).is_err());
        assert!(parse(&["--frobnicate", "1"]).is_err());
        assert_eq!(parse(&["--help"]).unwrap_err(), "");
    }

    #[test]
    fn medians_and_quantiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let m = Measured {
            latencies_ns: (1..=100).map(|i| i * 1_000).collect(),
            wall: Duration::from_secs(2),
            mean_sizes: (0.0, 0.0),
            cpu_ns: Some(1_000_000),
        };
        assert_eq!(m.quantile_us(0.5), 50.0);
        assert_eq!(m.quantile_us(0.99), 99.0);
        assert_eq!(m.throughput(), 50.0);
        assert_eq!(m.cpu_per_round_trip_us(), Some(10.0));
    }
}
