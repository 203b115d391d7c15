//! Serves the TCK model services on `HOST`:`PORT`.

#[tokio::main]
async fn main() -> Result<(), cloudstate_sdk::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    tck_adapter::server().serve().await
}
