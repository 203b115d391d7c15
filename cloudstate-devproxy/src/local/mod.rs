//! Running a user function on one machine with the dev proxy in front of it:
//! for samples' `main` ([`run_blocking`]: `cargo run` and the service answers
//! gRPC and HTTP), and for integration tests ([`Local`]).

pub mod examples;

use std::net::SocketAddr;

use cloudstate_sdk::CloudState;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{DevProxy, DevProxyConfig, DevProxyHandle, Error, Store};

/// A user function and the dev proxy in front of it, both on ephemeral ports
/// of 127.0.0.1, in this process: what an integration test starts.
///
/// ```no_run
/// # async fn test() -> Result<(), cloudstate_devproxy::Error> {
/// use cloudstate_devproxy::local::Local;
/// let local = Local::start(cloudstate_sdk::CloudState::new() /* .register(...) */).await?;
/// let base = format!("http://{}", local.addr()); // gRPC and HTTP/JSON
/// local.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Local {
    /// Taken by `shutdown`.
    proxy: Option<DevProxyHandle>,
    addr: SocketAddr,
    user_function: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), cloudstate_sdk::Error>>,
}

impl Local {
    /// Starts `server` and a dev proxy with the default configuration.
    ///
    /// # Errors
    /// As [`Local::start_with`].
    pub async fn start(server: CloudState) -> Result<Self, Error> {
        Self::start_with(server, |_| {}).await
    }

    /// Starts `server` and a dev proxy configured by `configure` (its
    /// `user_function` is set to the server's address).
    ///
    /// # Errors
    /// Binding a port, or discovery (the user function's spec refused).
    pub async fn start_with(
        server: CloudState,
        configure: impl FnOnce(&mut DevProxyConfig),
    ) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut config = DevProxyConfig::new(String::new());
        configure(&mut config);
        Self::serve(server, listener, proxy_listener, config).await
    }

    /// Serves `server` on `listener` and the dev proxy (`config`, whose
    /// `user_function` is set to the server's address) on `proxy_listener`.
    async fn serve(
        server: CloudState,
        listener: tokio::net::TcpListener,
        proxy_listener: tokio::net::TcpListener,
        mut config: DevProxyConfig,
    ) -> Result<Self, Error> {
        let address = listener.local_addr()?;
        // A server on every interface is reached on the loopback one.
        let user_function = if address.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], address.port()))
        } else {
            address
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_with_listener(listener, async move {
            let _ = stopped.await;
        }));
        config.user_function = user_function.to_string();
        let proxy = match DevProxy::start(config, proxy_listener).await {
            Ok(proxy) => proxy,
            Err(e) => {
                task.abort();
                return Err(e);
            }
        };
        Ok(Self {
            addr: proxy.local_addr(),
            proxy: Some(proxy),
            user_function,
            stop: Some(stop),
            task,
        })
    }

    /// Where the dev proxy serves gRPC and HTTP/JSON.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the user function serves the Cloudstate protocol.
    pub fn user_function_addr(&self) -> SocketAddr {
        self.user_function
    }

    /// Stops the dev proxy (passivating every entity), then the user function.
    pub async fn shutdown(self) {
        let _ = self.stop().await;
    }

    /// As [`Local::shutdown`], with how the user function ended.
    async fn stop(mut self) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(proxy) = self.proxy.take() {
            proxy.shutdown().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await??;
        Ok(())
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// [`run`] from a plain `fn main`: starts the async runtime and, unless the
/// program set one, a log subscriber (`RUST_LOG`, default `info`).
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let server = cloudstate_sdk::CloudState::new(); // .register(...)
///     cloudstate_devproxy::local::run_blocking(server, |base| format!("serving on {base}"))
/// }
/// ```
///
/// # Errors
/// As [`run`], or when the runtime cannot start.
pub fn run_blocking(
    server: CloudState,
    banner: impl FnOnce(&str) -> String,
) -> Result<(), Box<dyn std::error::Error>> {
    cloudstate_sdk::init_logging();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(server, banner))
}

/// Serves `server` on `HOST`:`PORT` (default 127.0.0.1:8080) and, unless
/// `--no-proxy` is given or `CLOUDSTATE_DEVPROXY=off`, the dev proxy in
/// front of it on 127.0.0.1:`PROXY_PORT` (default 9000), with the journal
/// and state in `PROXY_STORE` (`memory` or `sqlite:PATH`), and
/// `PROXY_CRDT_REPLICAS` replicas of each CRDT entity gossiping after
/// `PROXY_CRDT_GOSSIP_DELAY_MS`, and the connection limits of
/// [`DevProxyConfig::limits_from_env`] (see [`DevProxyConfig`]). Prints `banner`
/// with the proxy's base URL once it serves. Stops on SIGINT or SIGTERM.
///
/// # Errors
/// Binding, discovery, or an invalid environment value.
pub async fn run(
    server: CloudState,
    banner: impl FnOnce(&str) -> String,
) -> Result<(), Box<dyn std::error::Error>> {
    let with_proxy = !std::env::args().any(|a| a == "--no-proxy")
        && std::env::var("CLOUDSTATE_DEVPROXY").map_or(true, |v| v != "off");
    let listener = tokio::net::TcpListener::bind(cloudstate_sdk::listen_address()?).await?;
    let address = listener.local_addr()?;
    tracing::info!("user function listening on {address}");
    if !with_proxy {
        return Ok(server
            .serve_with_listener(listener, cloudstate_sdk::shutdown_signal())
            .await?);
    }
    let mut config = DevProxyConfig::new(String::new());
    if let Ok(store) = std::env::var("PROXY_STORE") {
        config.store = Store::from_spec(&store)?;
    }
    if let Ok(replicas) = std::env::var("PROXY_CRDT_REPLICAS") {
        config.crdt_replicas = replicas
            .parse::<u32>()
            .map_err(|_| format!("PROXY_CRDT_REPLICAS [{replicas}] is not a number"))?
            .max(1);
    }
    if let Ok(delay) = std::env::var("PROXY_CRDT_GOSSIP_DELAY_MS") {
        config.crdt_gossip_delay = std::time::Duration::from_millis(
            delay
                .parse()
                .map_err(|_| format!("PROXY_CRDT_GOSSIP_DELAY_MS [{delay}] is not a number"))?,
        );
    }
    config.limits_from_env()?;
    let port = std::env::var("PROXY_PORT").unwrap_or_else(|_| "9000".to_owned());
    let proxy_listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let local = Local::serve(server, listener, proxy_listener, config).await?;
    println!("{}", banner(&format!("http://{}", local.addr())));
    cloudstate_sdk::shutdown_signal().await;
    local.stop().await?;
    Ok(())
}
