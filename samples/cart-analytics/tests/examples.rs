//! The requests `cargo run` prints, run through the dev proxy in front of
//! the cart and the analytics: each answers as printed, the read model once
//! the carts' events have reached it.

use cloudstate_devproxy::local::Local;
use cloudstate_devproxy::local::examples::{banner, check};
use cloudstate_sdk::CloudState;

#[tokio::test]
async fn the_printed_examples_answer_as_printed() {
    let proxy = Local::start(cart_analytics::register(CloudState::new()))
        .await
        .expect("the dev proxy starts");
    let result = check(proxy.addr(), &cart_analytics::examples()).await;
    proxy.shutdown().await;
    if let Err(mismatch) = result {
        panic!("{mismatch}");
    }
}

#[test]
fn the_banner_says_the_read_model_answers_shortly() {
    let text = banner(
        "Cart analytics ready",
        "http://127.0.0.1:9000",
        &cart_analytics::examples(),
    );
    let answers: Vec<&str> = text
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("# → "))
        .collect();
    assert_eq!(answers.len(), 6, "{text}");
    assert!(answers[..5].iter().all(|a| *a == "{}"), "{text}");
    assert!(
        answers[5].starts_with("(shortly) {\"products\":["),
        "{text}"
    );
    assert!(
        text.contains("  curl 'http://127.0.0.1:9000/analytics/top-products?limit=2'\n"),
        "{text}"
    );
}
