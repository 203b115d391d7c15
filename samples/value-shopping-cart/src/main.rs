//! Serves the value-entity shopping cart on `HOST`:`PORT` (default
//! 127.0.0.1:8080) and the embedded dev proxy in front of it on `PROXY_PORT`
//! (default 9000); `--no-proxy` serves the user function only.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = cloudstate_sdk::CloudState::new()
        .service_name(env!("CARGO_PKG_NAME"))
        .service_version(env!("CARGO_PKG_VERSION"));
    let server = value_shopping_cart::register(server);
    #[cfg(feature = "devproxy")]
    return cloudstate_devproxy::local::run_blocking(server, |base| {
        format!(
            "\nValue-entity shopping cart ready: gRPC and HTTP/JSON on {base}\n\
             \n  curl -X POST {base}/ve/cart/alice/items/add -H 'Content-Type: application/json' \\\n\
             \x20      -d '{{\"productId\":\"apple\",\"name\":\"Apple\",\"quantity\":2}}'\n\
             \x20 curl {base}/ve/carts/alice\n\
             \x20 curl -X POST {base}/ve/carts/alice/remove\n"
        )
    });
    #[cfg(not(feature = "devproxy"))]
    return Ok(server.run()?);
}
