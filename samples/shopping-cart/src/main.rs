//! Serves the shopping cart on `HOST`:`PORT` (default 127.0.0.1:8080).
//!
//! `SNAPSHOT_EVERY` sets the snapshot interval (default 5 events).

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
    let server = cloudstate_sdk::CloudState::new()
        .service_name(env!("CARGO_PKG_NAME"))
        .service_version(env!("CARGO_PKG_VERSION"));
    shopping_cart::register(server, snapshot_every)
        .serve()
        .await?;
    Ok(())
}
