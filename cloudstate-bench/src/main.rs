//! Benchmark: the shopping cart served by `cloudstate-sdk` against a raw tonic
//! bidirectional-stream echo of the same protocol messages, in one process on
//! 127.0.0.1; or any user function serving the cart (`--cart-addr`); or the
//! cart behind the embedded dev proxy (`--through-proxy`).
//!
//! ```sh
//! cargo run --release -p cloudstate-bench -- [--commands N] [--concurrency 1,16,256]
//! cargo run --release -p cloudstate-bench -- --cart-addr 127.0.0.1:8080
//! cargo run --release -p cloudstate-bench -- --through-proxy
//! cargo run --release -p cloudstate-bench -- --replay 100000
//! cargo run --release -p cloudstate-bench -- --idle-streams 10000
//! ```
//!
//! For each concurrency C, C clients (one cart entity each) run about N/C
//! commands each, one in flight per client as the proxy does, alternating
//! `AddItem` and `GetCart` (the cart snapshots every 5 events). Each client
//! opens its stream or connection and gets the answer to one first command
//! before the timing starts.
//!
//! **Cart vs echo** (the default). The load plays the proxy: one
//! event-sourced protocol stream per entity. The same round trips go to the
//! echo server, which answers each command with a canned reply of the cart's
//! shape and size, so both sides encode and decode the same bytes
//! (`proto/bench.proto`). The echo server is plain tonic with `TCP_NODELAY`
//! on, as the SDK's server, which sets it on the connections it accepts;
//! `--echo-nodelay off` serves it with Nagle's algorithm on, for comparison.
//!
//! **External user function** (`--cart-addr HOST:PORT`). The same protocol
//! load drives the user function at that address (any language's, serving
//! `com.example.shoppingcart.ShoppingCart`) instead of the in-process cart;
//! the in-process echo still runs alongside as a same-run reference. Only
//! the command ids and the kind of client action of the replies are checked
//! (events and snapshots are the user function's business), and each stream's
//! first messages are queued before its call is awaited, since some servers
//! (grpc-go) send their response headers only with their first reply.
//!
//! **Dev proxy** (`--through-proxy`). The cart (or the `--cart-addr` user
//! function) behind the embedded dev proxy, in one process, measured three
//! ways in the same run: the protocol-level load straight to the user
//! function (`uf-only`), gRPC unary calls through the proxy (`grpc`: C
//! clients on `--connections` HTTP/2 connections) and HTTP/1.1 JSON through
//! the proxy (`http`: one keep-alive connection per client).
//!
//! A warm-up at each concurrency is not counted. Each target is measured
//! `--rounds` times per concurrency, rotating which goes first, and the
//! tables show medians (the machine may be shared and noisy), with the
//! process's CPU time per round trip, which background load disturbs less
//! than throughput does.
//!
//! **Entity activation** (`--replay N`). A fresh entity replays a journal of
//! N events through the protocol; events per second, cart against echo
//! (see `replay.rs`).
//!
//! **Memory** (`--idle-streams N`). Each server in a child process of its
//! own: resident memory per idle entity stream, and peak RSS under the
//! round-trip load, cart against echo (see `memory.rs`).
//!
//! In the default mode the table gives throughput and p50/p99 round-trip
//! latency of both servers, and the ratios against the targets: cart
//! throughput ≥ 0.7× echo at C = 256 and cart p99 ≤ 2× echo p99. The exit
//! status is 0 whether they are met or not.

mod child;
mod cpu;
mod echo;
mod load;
mod memory;
mod proxy;
mod replay;
mod script;

/// The echo service generated from `proto/bench.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod proto {
    tonic::include_proto!("bench");
}

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::process::ExitCode;
use std::time::Duration;

use cloudstate_devproxy::DevProxyHandle;
use cloudstate_sdk::protocol::cloudstate::entity_discovery_client::EntityDiscoveryClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};

use load::{Measured, StreamService, StreamSession};
use proxy::{GrpcSession, HttpSession};
use script::Script;

/// Throughput target: cart ≥ this × echo, at [`TARGET_CONCURRENCY`].
const THROUGHPUT_TARGET: f64 = 0.7;
/// Latency target: cart p99 ≤ this × echo p99.
const P99_TARGET: f64 = 2.0;
/// The concurrency the throughput target is set at.
const TARGET_CONCURRENCY: usize = 256;
/// Fewest commands a client runs, whatever N / C is.
const MIN_PER_CLIENT: usize = 4;
/// The service the load drives.
const CART_SERVICE: &str = "com.example.shoppingcart.ShoppingCart";

const USAGE: &str = "\
usage: cloudstate-bench [OPTIONS]

  --commands N        round trips per concurrency and target (default 20000)
  --concurrency LIST  clients (entities) in flight, comma separated (default 1,16,256)
  --warmup N          uncounted round trips before each measurement (default 500)
  --rounds R          measurements of each target per concurrency, rotating
                      which goes first; the tables show the median (default 3)
  --connections K     HTTP/2 connections the protocol streams and the proxy's
                      gRPC clients are spread over (default 1)
  --threads T         tokio worker threads, shared by servers and load generator
                      (default: one per CPU)
  --echo-nodelay on|off
                      TCP_NODELAY on the echo server's connections (default on,
                      as the SDK's server); off serves it with Nagle on
  --cart-addr HOST:PORT
                      drive the user function at HOST:PORT (any language's,
                      serving com.example.shoppingcart.ShoppingCart) instead of
                      starting the cart in this process
  --through-proxy     start the embedded dev proxy in front of the cart and
                      measure, in the same run: the protocol load straight to
                      the user function (uf-only), gRPC unary calls through the
                      proxy (grpc) and HTTP/1.1 JSON through the proxy (http)
  --only TARGET       measure one target only (for profiling): cart or echo,
                      with --through-proxy cart, grpc or http
  --replay N          entity activation instead: init, a journal of N ItemAdded
                      events and one GetCart on one stream to a fresh entity,
                      timed from the first event to the reply; events/s of the
                      cart and of the echo (which only decodes the events)
  --idle-streams N    memory instead, each server in a child process: RSS per
                      idle entity stream (N streams opened with init and one
                      command, held open) and peak RSS under the round-trip
                      load at each --concurrency (default 256 in this mode),
                      cart against echo
  --serve cart|echo   serve the cart or the echo on 127.0.0.1 (a free port,
                      printed first) until standard input closes; used by
                      --idle-streams for its child processes";

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The cart user function, over the protocol (in-process or `--cart-addr`).
    Cart,
    /// The raw tonic echo baseline.
    Echo,
    /// gRPC unary calls through the dev proxy.
    Grpc,
    /// HTTP/1.1 JSON through the dev proxy.
    Http,
}

impl Target {
    fn name(self, through_proxy: bool) -> &'static str {
        match self {
            Self::Cart if through_proxy => "uf-only",
            Self::Cart => "cart",
            Self::Echo => "echo",
            Self::Grpc => "grpc",
            Self::Http => "http",
        }
    }
}

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
    cart_addr: Option<String>,
    through_proxy: bool,
    only: Option<Target>,
    /// Whether `--concurrency` was given (the memory mode has its own default).
    concurrency_given: bool,
    replay: Option<usize>,
    idle_streams: Option<usize>,
    serve: Option<child::Served>,
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
            cart_addr: None,
            through_proxy: false,
            only: None,
            concurrency_given: false,
            replay: None,
            idle_streams: None,
            serve: None,
        };
        let mut only = None;
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            match flag.as_str() {
                "-h" | "--help" => return Err(String::new()),
                "--through-proxy" => {
                    options.through_proxy = true;
                    continue;
                }
                _ => {}
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
                "--cart-addr" => {
                    if value
                        .rsplit_once(':')
                        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
                    {
                        return Err(format!("--cart-addr: [{value}] is not HOST:PORT"));
                    }
                    options.cart_addr = Some(value);
                }
                "--only" => only = Some(value),
                "--concurrency" => {
                    options.concurrency = value.split(',').map(number).collect::<Result<_, _>>()?;
                    options.concurrency_given = true;
                }
                "--replay" => options.replay = Some(number(&value)?),
                "--idle-streams" => options.idle_streams = Some(number(&value)?),
                "--serve" => {
                    options.serve = Some(match value.as_str() {
                        "cart" => child::Served::Cart,
                        "echo" => child::Served::Echo,
                        other => {
                            return Err(format!("--serve: [{other}] is neither cart nor echo"));
                        }
                    });
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        let modes = [
            options.through_proxy,
            options.replay.is_some(),
            options.idle_streams.is_some(),
            options.serve.is_some(),
        ];
        if modes.iter().filter(|m| **m).count() > 1 {
            return Err(
                "--through-proxy, --replay, --idle-streams and --serve exclude one another"
                    .to_owned(),
            );
        }
        if options.idle_streams.is_some() && !options.concurrency_given {
            options.concurrency = vec![TARGET_CONCURRENCY];
        }
        if let Some(only) = only {
            options.only = Some(match (only.as_str(), options.through_proxy) {
                ("cart", _) => Target::Cart,
                ("echo", false) => Target::Echo,
                ("grpc", true) => Target::Grpc,
                ("http", true) => Target::Http,
                (other, false) => {
                    return Err(format!("--only: [{other}] is neither cart nor echo"));
                }
                (other, true) => {
                    return Err(format!(
                        "--only: [{other}] is none of cart, grpc, http (with --through-proxy)"
                    ));
                }
            });
        }
        Ok(options)
    }

    /// The targets measured, in the order of the first round.
    fn targets(&self) -> Vec<Target> {
        match (self.only, self.through_proxy) {
            (Some(target), _) => vec![target],
            (None, false) => vec![Target::Cart, Target::Echo],
            (None, true) => vec![Target::Cart, Target::Grpc, Target::Http],
        }
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

/// Asks the user function at `channel` what it is, as the proxy does, and
/// checks that it serves the cart as an event-sourced entity.
async fn discover(channel: Channel) -> Result<String, String> {
    let spec = EntityDiscoveryClient::new(channel)
        .discover(cloudstate_sdk::testkit::proxy_info())
        .await
        .map_err(|status| format!("discovery: {status}"))?
        .into_inner();
    let entity = spec
        .entities
        .iter()
        .find(|e| e.service_name == CART_SERVICE)
        .ok_or_else(|| format!("the user function does not serve {CART_SERVICE}"))?;
    if entity.entity_type != "cloudstate.eventsourced.EventSourced" {
        return Err(format!(
            "{CART_SERVICE} is a {} entity, not an event-sourced one",
            entity.entity_type
        ));
    }
    let info = spec.service_info.unwrap_or_default();
    Ok(format!(
        "{} {} ({} {} on {}), persistence id {}",
        info.service_name,
        info.service_version,
        info.support_library_name,
        info.support_library_version,
        info.service_runtime,
        entity.persistence_id
    ))
}

/// Everything a run needs: the servers it started and the connections to them.
struct Setup {
    /// The cart served in this process, unless `--cart-addr`.
    cart: Option<Running>,
    /// What discovery said of the external user function.
    external: Option<String>,
    echo: Option<Running>,
    proxy: Option<DevProxyHandle>,
    cart_channels: Vec<Channel>,
    echo_channels: Vec<Channel>,
    proxy_channels: Vec<Channel>,
}

impl Setup {
    async fn start(options: &Options, targets: &[Target]) -> Result<Self, String> {
        let (cart, cart_addr) = match &options.cart_addr {
            Some(addr) => {
                let resolved = addr
                    .to_socket_addrs()
                    .map_err(|e| format!("--cart-addr {addr}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("--cart-addr {addr}: no address"))?;
                (None, resolved)
            }
            None => {
                let cart = start_cart().await?;
                let addr = cart.addr;
                (Some(cart), addr)
            }
        };
        let cart_channels = connect(cart_addr, options.connections).await?;
        let external = match cart {
            Some(_) => None,
            None => Some(discover(cart_channels[0].clone()).await?),
        };
        let echo = if targets.contains(&Target::Echo) {
            Some(start_echo(options.echo_nodelay).await?)
        } else {
            None
        };
        let echo_channels = match &echo {
            Some(echo) => connect(echo.addr, options.connections).await?,
            None => Vec::new(),
        };
        let proxy = if options.through_proxy {
            Some(proxy::start(cart_addr).await?)
        } else {
            None
        };
        let proxy_channels = match &proxy {
            Some(proxy) => connect(proxy.local_addr(), options.connections).await?,
            None => Vec::new(),
        };
        Ok(Self {
            cart,
            external,
            echo,
            proxy,
            cart_channels,
            echo_channels,
            proxy_channels,
        })
    }

    /// One measurement of `target`: `clients` clients, named `{tag}-{i}`,
    /// `per_client` timed commands each.
    async fn run(
        &self,
        target: Target,
        clients: usize,
        per_client: usize,
        tag: &str,
    ) -> Result<Measured, String> {
        let pick = |channels: &[Channel], i: usize| channels[i % channels.len()].clone();
        let entity = |i: usize| format!("{tag}-{i}");
        let result = match target {
            Target::Cart | Target::Echo => {
                let (service, channels) = match target {
                    Target::Cart => (StreamService::EventSourced, &self.cart_channels),
                    _ => (StreamService::Echo, &self.echo_channels),
                };
                load::run(clients, per_client, |i| {
                    StreamSession::open(service, pick(channels, i), Script::new(&entity(i)))
                })
                .await
            }
            Target::Grpc => {
                load::run(clients, per_client, |i| {
                    GrpcSession::open(pick(&self.proxy_channels, i), entity(i))
                })
                .await
            }
            Target::Http => {
                let proxy = self
                    .proxy
                    .as_ref()
                    .map(DevProxyHandle::local_addr)
                    .ok_or("no proxy")?;
                load::run(clients, per_client, |i| HttpSession::open(proxy, entity(i))).await
            }
        };
        result.map_err(|e| format!("{tag}: {e}"))
    }

    async fn stop(self) {
        drop(self.proxy_channels);
        if let Some(proxy) = self.proxy {
            proxy.shutdown().await;
        }
        drop(self.cart_channels);
        drop(self.echo_channels);
        if let Some(cart) = self.cart {
            cart.stop().await;
        }
        if let Some(echo) = self.echo {
            echo.stop().await;
        }
    }
}

/// One target's figures at one concurrency: the median over the rounds.
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
    /// Mean command and answer size in bytes (first round).
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

/// The figures of every target at one concurrency.
#[derive(Debug)]
struct Row {
    concurrency: usize,
    figures: Vec<(Target, Figures)>,
}

impl Row {
    fn get(&self, target: Target) -> Option<&Figures> {
        self.figures
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, f)| f)
    }

    /// `a` over `b` throughput (medians), and its range over the rounds
    /// (each round measures both).
    fn throughput_ratio(&self, a: Target, b: Target) -> Option<(f64, f64, f64)> {
        let (a, b) = (self.get(a)?, self.get(b)?);
        let per_round: Vec<f64> = a
            .throughputs
            .iter()
            .zip(&b.throughputs)
            .map(|(a, b)| a / b)
            .collect();
        let min = per_round.iter().copied().fold(f64::INFINITY, f64::min);
        let max = per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((a.throughput / b.throughput, min, max))
    }

    fn p99_ratio(&self, a: Target, b: Target) -> Option<f64> {
        Some(self.get(a)?.p99 / self.get(b)?.p99)
    }

    fn p50_ratio(&self, a: Target, b: Target) -> Option<f64> {
        Some(self.get(a)?.p50 / self.get(b)?.p50)
    }
}

async fn bench(options: &Options, setup: &Setup) -> Result<Vec<Row>, String> {
    let targets = options.targets();
    let name = |target: Target| target.name(options.through_proxy);
    let mut rows = Vec::new();
    for &c in &options.concurrency {
        let warmup_per_client = options.warmup.div_ceil(c).max(2);
        for &target in &targets {
            let tag = format!("{}-c{c}-warmup", name(target));
            setup.run(target, c, warmup_per_client, &tag).await?;
        }
        let per_client = (options.commands / c).max(MIN_PER_CLIENT);
        let mut measured: Vec<Vec<Measured>> = targets.iter().map(|_| Vec::new()).collect();
        for round in 0..options.rounds {
            // Rotate which target goes first, so drifting background load
            // weighs on all alike.
            for k in 0..targets.len() {
                let index = (k + round) % targets.len();
                let target = targets[index];
                let tag = format!("{}-c{c}-r{round}", name(target));
                measured[index].push(setup.run(target, c, per_client, &tag).await?);
            }
        }
        rows.push(Row {
            concurrency: c,
            figures: targets
                .iter()
                .zip(&measured)
                .map(|(&target, rounds)| (target, Figures::of(rounds)))
                .collect(),
        });
    }
    Ok(rows)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn dash() -> String {
    "-".to_owned()
}

fn micros(v: Option<f64>) -> String {
    v.map_or_else(dash, |v| format!("{v:.1}µs"))
}

fn times(v: Option<f64>) -> String {
    v.map_or_else(dash, |v| format!("{v:.2}x"))
}

fn print_report(options: &Options, setup: &Setup, rows: &[Row]) {
    if options.through_proxy {
        print_proxy_report(options, setup, rows);
        return;
    }
    let cart = match &setup.external {
        Some(what) => format!(
            "user function at {} ({what})",
            options.cart_addr.as_deref().unwrap_or_default()
        ),
        None => "shopping cart (cloudstate-sdk, in-process)".to_owned(),
    };
    println!(
        "cloudstate-bench: {cart} vs raw tonic echo (in-process), 127.0.0.1, \
         {} worker threads, {} connection(s) per server, median of {} round(s), \
         echo TCP_NODELAY {}",
        tokio_worker_threads(),
        options.connections,
        options.rounds,
        if options.echo_nodelay { "on" } else { "off" }
    );
    if let Some(row) = rows.first() {
        let sizes = |f: Option<&Figures>| {
            f.map_or_else(dash, |f| {
                format!("command {:.0} / reply {:.0}", f.sizes.0, f.sizes.1)
            })
        };
        println!(
            "mean message sizes (bytes): cart {}; echo {}",
            sizes(row.get(Target::Cart)),
            sizes(row.get(Target::Echo))
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
    let rate = |f: Option<&Figures>| f.map_or_else(dash, |f| format!("{:.0}", f.throughput));
    for row in rows {
        let (cart, echo) = (row.get(Target::Cart), row.get(Target::Echo));
        let commands = cart.or(echo).map_or(0, |f| f.commands);
        let (ratio, range) = match row.throughput_ratio(Target::Cart, Target::Echo) {
            Some((ratio, min, max)) => (format!("{ratio:.2}x"), format!("{min:.2}-{max:.2}")),
            None => (dash(), dash()),
        };
        println!(
            "{:>5} {:>7} {:>11} {:>10} {:>10} {:>11} {:>10} {:>10} {:>9} {:>11} {:>9}",
            row.concurrency,
            commands,
            rate(cart),
            micros(cart.map(|f| f.p50)),
            micros(cart.map(|f| f.p99)),
            rate(echo),
            micros(echo.map(|f| f.p50)),
            micros(echo.map(|f| f.p99)),
            ratio,
            range,
            times(row.p99_ratio(Target::Cart, Target::Echo)),
        );
    }
    println!();
    if setup.external.is_some() {
        println!(
            "CPU per round trip, this process (load generator, and the echo server for echo; \
             the external user function's CPU is not counted):"
        );
    } else {
        println!(
            "CPU per round trip, whole process (load generator + server; the generator's share \
             is the same for both):"
        );
    }
    println!(
        "{:>5} {:>11} {:>11} {:>22}",
        "C", "cart CPU", "echo CPU", "CPU-bound thr ratio"
    );
    for row in rows {
        let cpu = |t| row.get(t).and_then(|f| f.cpu_us);
        let (cart, echo) = (cpu(Target::Cart), cpu(Target::Echo));
        let ratio = cart.zip(echo).filter(|_| setup.external.is_none());
        println!(
            "{:>5} {:>11} {:>11} {:>22}",
            row.concurrency,
            micros(cart),
            micros(echo),
            times(ratio.map(|(c, e)| e / c)),
        );
    }
    if options.only.is_some() || setup.external.is_some() {
        return;
    }
    println!();
    match rows
        .iter()
        .find(|r| r.concurrency == TARGET_CONCURRENCY)
        .and_then(|r| r.throughput_ratio(Target::Cart, Target::Echo))
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
        if let Some(ratio) = row.p99_ratio(Target::Cart, Target::Echo) {
            println!(
                "target: cart p99 <= {P99_TARGET:.1}x echo p99 at C={}: {ratio:.2}x -> {}",
                row.concurrency,
                verdict(ratio <= P99_TARGET)
            );
        }
    }
}

fn print_proxy_report(options: &Options, setup: &Setup, rows: &[Row]) {
    let cart = match &setup.external {
        Some(what) => format!(
            "the user function at {} ({what})",
            options.cart_addr.as_deref().unwrap_or_default()
        ),
        None => "the shopping cart (cloudstate-sdk)".to_owned(),
    };
    println!(
        "cloudstate-bench --through-proxy: {cart} behind the embedded dev proxy, one process, \
         127.0.0.1, {} worker threads, median of {} round(s)",
        tokio_worker_threads(),
        options.rounds,
    );
    println!(
        "  uf-only: protocol streams straight to the user function, one per cart, \
         {} HTTP/2 connection(s)",
        options.connections
    );
    println!(
        "  grpc:    unary AddItem/GetCart through the proxy, {} HTTP/2 connection(s)",
        options.connections
    );
    println!(
        "  http:    HTTP/1.1 JSON POST /cart/{{user}}/items/add, GET /carts/{{user}} through \
         the proxy, one keep-alive connection per client"
    );
    if let Some(row) = rows.first() {
        let sizes: Vec<String> = row
            .figures
            .iter()
            .map(|(t, f)| format!("{} {:.0}/{:.0}", t.name(true), f.sizes.0, f.sizes.1))
            .collect();
        println!(
            "mean payload sizes, command/answer (bytes; protobuf, or the HTTP body): {}",
            sizes.join(", ")
        );
    }
    println!();
    println!(
        "{:>5} {:>8} {:>7} {:>9} {:>11} {:>11} {:>10} {:>8} {:>11} {:>8} {:>8}",
        "C",
        "mode",
        "cmds",
        "cmd/s",
        "p50",
        "p99",
        "CPU/cmd",
        "thr/UF",
        "(range)",
        "p50/UF",
        "p99/UF"
    );
    for row in rows {
        for (target, f) in &row.figures {
            let (ratio, range) = match (*target, row.throughput_ratio(*target, Target::Cart)) {
                (Target::Cart, _) | (_, None) => (dash(), dash()),
                (_, Some((ratio, min, max))) => {
                    (format!("{ratio:.2}x"), format!("{min:.2}-{max:.2}"))
                }
            };
            let vs_uf = |r: Option<f64>| {
                if *target == Target::Cart {
                    dash()
                } else {
                    times(r)
                }
            };
            println!(
                "{:>5} {:>8} {:>7} {:>9.0} {:>11} {:>11} {:>10} {:>8} {:>11} {:>8} {:>8}",
                row.concurrency,
                target.name(true),
                f.commands,
                f.throughput,
                micros(Some(f.p50)),
                micros(Some(f.p99)),
                micros(f.cpu_us),
                ratio,
                range,
                vs_uf(row.p50_ratio(*target, Target::Cart)),
                vs_uf(row.p99_ratio(*target, Target::Cart)),
            );
        }
    }
    println!();
    println!(
        "CPU/cmd: CPU time of the whole process (load generator, proxy, user function) per \
         command; thr/UF etc.: through the proxy over uf-only, same run"
    );
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
        if let Some(served) = options.serve {
            return child::serve(served, options.echo_nodelay).await;
        }
        if let Some(n) = options.idle_streams {
            return memory::run(&options, n).await;
        }
        let setup = Setup::start(&options, &options.targets()).await?;
        if let Some(n) = options.replay {
            let replayed = replay::run(&options, &setup, n).await;
            setup.stop().await;
            return replayed;
        }
        let rows = bench(&options, &setup).await;
        if let Ok(rows) = &rows {
            print_report(&options, &setup, rows);
        }
        setup.stop().await;
        rows.map(drop)
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
        assert!(o.echo_nodelay && o.only.is_none() && o.cart_addr.is_none() && !o.through_proxy);
        assert_eq!(o.targets(), [Target::Cart, Target::Echo]);
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
        let o = parse(&["--through-proxy", "--cart-addr", "localhost:18080"]).unwrap();
        assert!(o.through_proxy);
        assert_eq!(o.cart_addr.as_deref(), Some("localhost:18080"));
        assert_eq!(o.targets(), [Target::Cart, Target::Grpc, Target::Http]);
        let o = parse(&["--only=http", "--through-proxy"]).unwrap();
        assert_eq!(o.targets(), [Target::Http]);
    }

    #[test]
    fn options_refuse_bad_values() {
        assert!(parse(&["--commands", "0"]).is_err());
        assert!(parse(&["--concurrency", "1,x"]).is_err());
        assert!(parse(&["--commands"]).is_err());
        assert!(parse(&["--frobnicate", "1"]).is_err());
        assert!(parse(&["--cart-addr", "18080"]).is_err());
        assert!(parse(&["--cart-addr", ":18080"]).is_err());
        assert!(parse(&["--cart-addr", "host:port"]).is_err());
        assert!(parse(&["--only", "grpc"]).is_err());
        assert!(parse(&["--only", "echo", "--through-proxy"]).is_err());
        assert_eq!(parse(&["--help"]).unwrap_err(), "");
        assert!(parse(&["--replay", "0"]).is_err());
        assert!(parse(&["--replay", "10", "--idle-streams", "10"]).is_err());
        assert!(parse(&["--idle-streams", "10", "--through-proxy"]).is_err());
        assert!(parse(&["--serve", "proxy"]).is_err());
    }

    #[test]
    fn options_of_the_replay_and_memory_modes() {
        let o = parse(&["--replay", "100000"]).unwrap();
        assert_eq!(o.replay, Some(100_000));
        assert_eq!(o.concurrency, [1, 16, 256]);
        // The memory mode measures at the target concurrency unless told.
        let o = parse(&["--idle-streams", "10000"]).unwrap();
        assert_eq!((o.idle_streams, o.concurrency), (Some(10_000), vec![256]));
        let o = parse(&["--idle-streams=5", "--concurrency", "4,8"]).unwrap();
        assert_eq!(o.concurrency, [4, 8]);
        assert_eq!(
            parse(&["--serve", "echo"]).unwrap().serve,
            Some(child::Served::Echo)
        );
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
