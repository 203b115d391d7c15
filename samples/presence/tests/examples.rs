//! The requests `cargo run` prints, run through the dev proxy in front of
//! the chat entities: each answers as printed.

mod support;

use cloudstate_devproxy::local::examples::check;

#[tokio::test]
async fn the_printed_examples_answer_as_printed() {
    let proxy = support::start().await;
    let result = check(proxy.addr(), &presence::examples()).await;
    if let Err(mismatch) = result {
        panic!("{mismatch}");
    }
}
