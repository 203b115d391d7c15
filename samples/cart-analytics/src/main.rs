//! Serves the shopping cart, the analytics action and its read model on
//! `HOST`:`PORT` (default 127.0.0.1:8080), with the dev proxy in front on
//! `PROXY_PORT` (default 9000), which delivers the carts' events to the
//! action; `--no-proxy` serves the user function only.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = cloudstate_sdk::CloudState::new()
        .service_name(env!("CARGO_PKG_NAME"))
        .service_version(env!("CARGO_PKG_VERSION"));
    let server = cart_analytics::register(server);
    #[cfg(feature = "devproxy")]
    return cloudstate_devproxy::local::run_blocking(server, |base| {
        let examples = cart_analytics::examples();
        let banner =
            cloudstate_devproxy::local::examples::banner("Cart analytics ready", base, &examples);
        format!(
            "{banner}\n\
             The read model follows the carts' event log: `(shortly)` answers come once the\n\
             events are delivered. Without `?limit=` it answers the top 10.\n"
        )
    });
    #[cfg(not(feature = "devproxy"))]
    return Ok(server.run()?);
}
