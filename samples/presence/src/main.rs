//! Serves the chat entities on `HOST`:`PORT` (default 127.0.0.1:8080) and,
//! in front of them, the embedded dev proxy on `PROXY_PORT` (default 9000)
//! with gRPC and HTTP/JSON, so they answer `curl` with nothing else running.
//!
//! `--no-proxy` (or `CLOUDSTATE_DEVPROXY=off`) serves the user function only,
//! for a real Cloudstate proxy; so does a build without the `devproxy`
//! feature (the container image).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = cloudstate_sdk::CloudState::new()
        .service_name(env!("CARGO_PKG_NAME"))
        .service_version(env!("CARGO_PKG_VERSION"));
    let server = presence::register(server);
    #[cfg(feature = "devproxy")]
    return cloudstate_devproxy::local::run_blocking(server, |base| {
        let examples = presence::examples();
        let banner = cloudstate_devproxy::local::examples::banner("Chat ready", base, &examples);
        format!(
            "{banner}\n\
             Keep ann's Connect open and run `curl -N {base}/rooms/lobby/connect/bob` in another\n\
             terminal: both streams show [ann, bob]; stop bob's and ann's shows [ann] again.\n"
        )
    });
    #[cfg(not(feature = "devproxy"))]
    return Ok(server.run()?);
}
