//! The requests `cargo run` prints, run through the dev proxy in front of
//! the cart: each answers as printed.

use cloudstate_devproxy::local::Local;
use cloudstate_devproxy::local::examples::{banner, check};
use cloudstate_sdk::CloudState;

#[tokio::test]
async fn the_printed_examples_answer_as_printed() {
    let proxy = Local::start(shopping_cart::register(CloudState::new(), 5))
        .await
        .expect("the dev proxy starts");
    let result = check(proxy.addr(), &shopping_cart::examples()).await;
    proxy.shutdown().await;
    if let Err(mismatch) = result {
        panic!("{mismatch}");
    }
}

#[test]
fn the_banner_keeps_the_commands_it_always_printed() {
    let text = banner(
        "Shopping cart ready",
        "http://127.0.0.1:9000",
        &shopping_cart::examples(),
    );
    let commands: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect();
    assert_eq!(
        commands,
        [
            "",
            "Shopping cart ready: gRPC and HTTP/JSON on http://127.0.0.1:9000",
            "",
            "  curl -X POST http://127.0.0.1:9000/cart/alice/items/add -H 'Content-Type: application/json' \\",
            r#"       -d '{"productId":"apple","name":"Apple","quantity":2}'"#,
            "  curl http://127.0.0.1:9000/carts/alice",
            "  curl -X POST http://127.0.0.1:9000/cart/alice/items/apple/remove",
        ]
    );
}
