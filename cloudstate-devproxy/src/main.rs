//! `cloudstate-devproxy`: fronts any Cloudstate user function (Rust, Go,
//! Python, JavaScript) with gRPC and HTTP/JSON on one port.
//!
//! ```text
//! cloudstate-devproxy [--user-function HOST:PORT] [--port PORT] [--bind ADDR] [--store memory|sqlite:PATH]
//!                     [--passivation-timeout SECONDS] [--crdt-replicas N] [--crdt-gossip-delay MS]
//!                     [--header-read-timeout MS] [--body-read-timeout MS] [--idle-timeout MS]
//!                     [--max-connections N]
//! ```
//!
//! Defaults: the user function at `USER_FUNCTION_HOST:USER_FUNCTION_PORT`
//! (127.0.0.1:8080), port `HTTP_PORT` (9000) on 127.0.0.1, in-memory store;
//! the connection limits from `PROXY_HEADER_READ_TIMEOUT_MS`,
//! `PROXY_BODY_READ_TIMEOUT_MS`, `PROXY_IDLE_TIMEOUT_MS` and
//! `PROXY_MAX_CONNECTIONS`, else 10 s, 30 s, 60 s and 1024.

use std::time::Duration;

use cloudstate_devproxy::{DevProxy, DevProxyConfig, Store};

const USAGE: &str = "usage: cloudstate-devproxy [--user-function HOST:PORT] [--port PORT] [--bind ADDR] \
                     [--store memory|sqlite:PATH] [--passivation-timeout SECONDS] \
                     [--crdt-replicas N] [--crdt-gossip-delay MS] [--header-read-timeout MS] \
                     [--body-read-timeout MS] [--idle-timeout MS] [--max-connections N]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let env = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_owned());
    let mut user_function = format!(
        "{}:{}",
        env("USER_FUNCTION_HOST", "127.0.0.1"),
        env("USER_FUNCTION_PORT", "8080")
    );
    let mut port = env("HTTP_PORT", "9000");
    let mut bind = "127.0.0.1".to_owned();
    let mut store = "memory".to_owned();
    let mut passivation = None;
    let mut replicas = 1;
    let mut gossip_delay = None;
    let mut config = DevProxyConfig::new(String::new());
    config.limits_from_env()?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--user-function" => user_function = value()?,
            "--port" => port = value()?,
            "--bind" => bind = value()?,
            "--store" => store = value()?,
            "--passivation-timeout" => passivation = Some(value()?.parse::<u64>()?),
            "--crdt-replicas" => replicas = value()?.parse::<u32>()?.max(1),
            "--crdt-gossip-delay" => gossip_delay = Some(value()?.parse::<u64>()?),
            "--header-read-timeout" => {
                config.header_read_timeout = Duration::from_millis(value()?.parse()?);
            }
            "--body-read-timeout" => {
                config.body_read_timeout = Duration::from_millis(value()?.parse()?);
            }
            "--idle-timeout" => config.idle_timeout = Duration::from_millis(value()?.parse()?),
            "--max-connections" => config.max_connections = value()?.parse::<usize>()?.max(1),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    config.user_function = user_function;
    config.store = Store::from_spec(&store)?;
    if let Some(seconds) = passivation {
        config.default_passivation = Duration::from_secs(seconds);
    }
    config.crdt_replicas = replicas;
    if let Some(ms) = gossip_delay {
        config.crdt_gossip_delay = Duration::from_millis(ms);
    }
    let listener = tokio::net::TcpListener::bind(format!("{bind}:{port}")).await?;
    let proxy = DevProxy::start(config, listener).await?;
    cloudstate_sdk::shutdown_signal().await;
    proxy.shutdown().await;
    Ok(())
}
