//! Serves the shopping cart on `HOST`:`PORT` (default 127.0.0.1:8080) and, in
//! front of it, the embedded dev proxy on `PROXY_PORT` (default 9000) with
//! gRPC and HTTP/JSON, so it answers `curl` with nothing else running.
//!
//! `--no-proxy` (or `CLOUDSTATE_DEVPROXY=off`) serves the user function only,
//! for a real Cloudstate proxy; so does a build without the `devproxy`
//! feature (the container image). `SNAPSHOT_EVERY` sets the snapshot interval
//! (default 5 events); `PROXY_STORE=sqlite:PATH` keeps the journal on disk.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let snapshot_every = match std::env::var("SNAPSHOT_EVERY") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("SNAPSHOT_EVERY [{v}] is not a number"))?,
        Err(_) => 5,
    };
    let server = cloudstate_sdk::CloudState::new()
        .service_name(env!("CARGO_PKG_NAME"))
        .service_version(env!("CARGO_PKG_VERSION"));
    let server = shopping_cart::register(server, snapshot_every);
    #[cfg(feature = "devproxy")]
    return cloudstate_devproxy::local::run_blocking(server, |base| {
        let examples = shopping_cart::examples();
        cloudstate_devproxy::local::examples::banner("Shopping cart ready", base, &examples)
    });
    #[cfg(not(feature = "devproxy"))]
    return Ok(server.run()?);
}
