//! Serves the shopping cart on `HOST`:`PORT` (default 127.0.0.1:8080) and, in
//! front of it, the embedded dev proxy on `PROXY_PORT` (default 9000) with
//! gRPC and HTTP/JSON, so it answers `curl` with nothing else running.
//!
//! `--no-proxy` (or `CLOUDSTATE_DEVPROXY=off`) serves the user function only,
//! for a real Cloudstate proxy. `SNAPSHOT_EVERY` sets the snapshot interval
//! (default 5 events); `PROXY_STORE=sqlite:PATH` keeps the journal on disk.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let snapshot_every = match std::env::var("SNAPSHOT_EVERY") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("SNAPSHOT_EVERY [{v}] is not a number"))?,
        Err(_) => 5,
    };
    let with_proxy = cfg!(feature = "devproxy")
        && !std::env::args().any(|a| a == "--no-proxy")
        && std::env::var("CLOUDSTATE_DEVPROXY").map_or(true, |v| v != "off");
    let server = cloudstate_sdk::CloudState::new()
        .service_name(env!("CARGO_PKG_NAME"))
        .service_version(env!("CARGO_PKG_VERSION"));
    let server = shopping_cart::register(server, snapshot_every);

    let listener = tokio::net::TcpListener::bind(cloudstate_sdk::listen_address()?).await?;
    let address = listener.local_addr()?;
    tracing::info!("shopping cart user function listening on {address}");
    if !with_proxy {
        return Ok(server
            .serve_with_listener(listener, cloudstate_sdk::shutdown_signal())
            .await?);
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let user_function = tokio::spawn(server.serve_with_listener(listener, async move {
        let _ = stopped.await;
    }));
    serve_proxy(address).await?;
    let _ = stop.send(());
    user_function.await??;
    Ok(())
}

#[cfg(feature = "devproxy")]
async fn serve_proxy(user_function: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    use cloudstate_devproxy::{DevProxy, DevProxyConfig, Store};
    let target = if user_function.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], user_function.port()))
    } else {
        user_function
    };
    let mut config = DevProxyConfig::new(target.to_string());
    if let Ok(store) = std::env::var("PROXY_STORE") {
        config.store = Store::from_spec(&store)?;
    }
    let port = std::env::var("PROXY_PORT").unwrap_or_else(|_| "9000".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let proxy = DevProxy::start(config, listener).await?;
    let base = format!("http://{}", proxy.local_addr());
    println!(
        "\nShopping cart ready: gRPC and HTTP/JSON on {base}\n\
         \n  curl -X POST {base}/cart/alice/items/add -H 'Content-Type: application/json' \\\n\
         \x20      -d '{{\"productId\":\"apple\",\"name\":\"Apple\",\"quantity\":2}}'\n\
         \x20 curl {base}/carts/alice\n\
         \x20 curl -X POST {base}/cart/alice/items/apple/remove\n"
    );
    cloudstate_sdk::shutdown_signal().await;
    proxy.shutdown().await;
    Ok(())
}

#[cfg(not(feature = "devproxy"))]
async fn serve_proxy(_: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    Err("built without the dev proxy; run with --no-proxy".into())
}
