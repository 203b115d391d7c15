//! End to end through the dev proxy (`Local`: the user function and the
//! proxy in this process): the carts' events reach the read model, each
//! counted once, also when the proxy delivers them again after a restart.

use std::net::SocketAddr;

use cloudstate_devproxy::Store;
use cloudstate_devproxy::local::Local;
use cloudstate_devproxy::local::examples::Example;
use cloudstate_sdk::CloudState;

async fn start(store: &Store) -> Local {
    let store = store.clone();
    Local::start_with(cart_analytics::register(CloudState::new()), move |config| {
        config.store = store;
    })
    .await
    .expect("the dev proxy starts")
}

async fn run(addr: SocketAddr, example: Example) {
    if let Err(mismatch) = example.check(addr).await {
        panic!("{mismatch}");
    }
}

async fn add(addr: SocketAddr, user: &str, product: &str, quantity: i32) {
    let body = format!(r#"{{"productId":"{product}","name":"{product}","quantity":{quantity}}}"#);
    run(
        addr,
        Example::post(format!("/cart/{user}/items/add")).json(body),
    )
    .await;
}

async fn remove(addr: SocketAddr, user: &str, product: &str) {
    run(
        addr,
        Example::post(format!("/cart/{user}/items/{product}/remove")),
    )
    .await;
}

/// `(product, added, removed)` as the read model answers them, in order.
fn products(counts: &[(&str, u32, u32)]) -> String {
    let entries: Vec<String> = counts
        .iter()
        .map(|(product, added, removed)| {
            format!(
                r#"{{"productId":"{product}","name":"{product}","added":"{added}","removed":"{removed}"}}"#
            )
        })
        .collect();
    format!(r#"{{"products":[{}]}}"#, entries.join(","))
}

/// Waits until `path` answers exactly `counts` (re-asking for up to 10 s:
/// the read model follows the event log after the carts have replied).
async fn until_top(addr: SocketAddr, path: &str, counts: &[(&str, u32, u32)]) {
    run(
        addr,
        Example::get(path)
            .expect_json(products(counts))
            .eventually(),
    )
    .await;
}

/// A database file of its own for `test`, in the temporary directory.
fn database(test: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "cart-analytics-{test}-{}-{nanos}.db",
        std::process::id()
    ))
}

#[tokio::test]
async fn the_events_of_several_carts_are_counted_and_removals_apart() {
    let local = start(&Store::memory()).await;
    let addr = local.addr();
    add(addr, "alice", "apple", 2).await;
    add(addr, "bob", "apple", 3).await;
    add(addr, "bob", "pear", 1).await;
    add(addr, "cid", "pear", 1).await;
    remove(addr, "bob", "pear").await;
    add(addr, "cid", "fig", 1).await;
    until_top(
        addr,
        "/analytics/top-products",
        &[("apple", 5, 0), ("pear", 2, 1), ("fig", 1, 0)],
    )
    .await;
    // The cart itself is unchanged by its subscriber.
    run(
        addr,
        Example::get("/carts/bob")
            .expect_json(r#"{"items":[{"productId":"apple","name":"apple","quantity":3}]}"#),
    )
    .await;
    // The action answers the board "all"; the entity serves it too.
    run(
        addr,
        Example::get("/analytics/boards/all/top-products?limit=1")
            .expect_json(products(&[("apple", 5, 0)])),
    )
    .await;
    run(
        addr,
        Example::get("/analytics/top-products?limit=-2")
            .expect_failure(500, "the limit must not be negative, got -2"),
    )
    .await;
    local.shutdown().await;
}

#[tokio::test]
async fn events_delivered_again_after_a_restart_are_not_counted_twice() {
    // The in-memory store keeps the journal and the board across a restart
    // of the proxy, not the subscriber's position: it replays every event.
    let store = Store::memory();
    let first = start(&store).await;
    add(first.addr(), "alice", "apple", 2).await;
    add(first.addr(), "bob", "apple", 1).await;
    remove(first.addr(), "bob", "apple").await;
    until_top(first.addr(), "/analytics/top-products", &[("apple", 3, 1)]).await;
    first.shutdown().await;

    let second = start(&store).await;
    add(second.addr(), "cid", "kiwi", 1).await;
    // Events are delivered in journal order: once the new one is counted,
    // the replayed ones were handled before it.
    until_top(
        second.addr(),
        "/analytics/top-products",
        &[("apple", 3, 1), ("kiwi", 1, 0)],
    )
    .await;
    second.shutdown().await;
}

#[tokio::test]
async fn with_sqlite_a_restarted_proxy_counts_nothing_twice() {
    let path = database("restart");
    let store = Store::sqlite(&path).expect("the database opens");
    let first = start(&store).await;
    add(first.addr(), "alice", "apple", 2).await;
    add(first.addr(), "bob", "pear", 4).await;
    until_top(
        first.addr(),
        "/analytics/top-products",
        &[("pear", 4, 0), ("apple", 2, 0)],
    )
    .await;
    first.shutdown().await;
    drop(store);

    let second = start(&Store::sqlite(&path).expect("the database opens again")).await;
    add(second.addr(), "alice", "pear", 1).await;
    remove(second.addr(), "alice", "apple").await;
    until_top(
        second.addr(),
        "/analytics/top-products",
        &[("pear", 5, 0), ("apple", 2, 1)],
    )
    .await;
    // The carts came back from the journal too.
    run(
        second.addr(),
        Example::get("/carts/alice")
            .expect_json(r#"{"items":[{"productId":"pear","name":"pear","quantity":1}]}"#),
    )
    .await;
    second.shutdown().await;
    let _ = std::fs::remove_file(&path);
}
