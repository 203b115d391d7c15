//! Serves the cart action and the shopping cart on `HOST`:`PORT` (default
//! 127.0.0.1:8080), with the dev proxy in front on `PROXY_PORT` (default
//! 9000); `--no-proxy` serves the user function only.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = cloudstate_sdk::CloudState::new()
        .service_name(env!("CARGO_PKG_NAME"))
        .service_version(env!("CARGO_PKG_VERSION"));
    let server = cart_action::register(server);
    #[cfg(feature = "devproxy")]
    return cloudstate_devproxy::local::run_blocking(server, |base| {
        format!(
            "\nCart action ready: gRPC and HTTP/JSON on {base}\n\
             \n  curl {base}/catalog\n\
             \x20 curl -X POST {base}/checked/cart/alice/items/add -H 'Content-Type: application/json' \\\n\
             \x20      -d '{{\"productId\":\"fig\",\"name\":\"Fig\",\"quantity\":2}}'\n\
             \x20 curl {base}/carts/alice\n"
        )
    });
    #[cfg(not(feature = "devproxy"))]
    return Ok(server.run()?);
}
