//! Serves the value-entity shopping cart on `HOST`:`PORT` (default 127.0.0.1:8080).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let server = cloudstate_sdk::CloudState::new()
        .service_name(env!("CARGO_PKG_NAME"))
        .service_version(env!("CARGO_PKG_VERSION"));
    value_shopping_cart::register(server).serve().await?;
    Ok(())
}
