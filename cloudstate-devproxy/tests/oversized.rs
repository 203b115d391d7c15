//! A cart grown past one message's limit, end to end through the dev proxy.

mod support;

use support::{http, proxy_with, start};

const LIMIT: usize = 8 * 1024;

fn add_body(product: &str) -> String {
    format!(
        r#"{{"productId":"{product}","name":"{}","quantity":1}}"#,
        "n".repeat(1000)
    )
}

async fn add(addr: std::net::SocketAddr, product: &str) -> (u16, String) {
    let (status, _, body) = http(
        addr,
        "POST",
        "/cart/big/items/add",
        Some(&add_body(product)),
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn a_cart_past_the_limit_fails_its_reads_and_takes_adds_and_removes() {
    let cart = shopping_cart::register(cloudstate_sdk::CloudState::new(), 5).max_reply_size(LIMIT);
    let s = start(cart).await;
    let addr = s.proxy.local_addr();
    // Ten 1 KB items: every fifth add is due a snapshot too large to send.
    let products: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    for product in &products {
        assert_eq!(add(addr, product).await, (200, "{}".to_owned()));
    }
    let (status, _, body) = http(addr, "GET", "/carts/big", None).await;
    assert_ne!(status, 200);
    assert!(
        body.contains("The reply to command [GetCart] is ")
            && body.contains(&format!("over the {LIMIT}-byte limit")),
        "{status} {body}"
    );
    // The entity is still usable: shrink it, and it reads again.
    for product in &products[..6] {
        let path = format!("/cart/big/items/{product}/remove");
        let (status, _, body) = http(addr, "POST", &path, None).await;
        assert_eq!((status, body.as_str()), (200, "{}"));
    }
    let (status, _, body) = http(addr, "GET", "/carts/big", None).await;
    assert_eq!(status, 200, "{body}");
    for product in &products[6..] {
        assert!(
            body.contains(&format!(r#""productId":"{product}""#)),
            "{body}"
        );
    }
    assert!(!body.contains(r#""productId":"p0""#), "{body}");
}

// A current-thread runtime: the proxy's tasks log on this thread.
#[tokio::test]
async fn a_message_over_the_proxys_limit_is_logged_as_such() {
    let (capture, _guard) = support::logs::Capture::start();
    // The user function would send up to 12 MiB; this proxy takes 32 KiB
    // (its discovery answer is some 15 KiB).
    let uf = cloudstate_sdk::testkit::TestServer::start(shopping_cart::register(
        cloudstate_sdk::CloudState::new(),
        100,
    ))
    .await;
    let (proxy, _, _) = proxy_with(uf.addr(), |config| config.max_message_size = 32 * 1024).await;
    let addr = proxy.local_addr();
    for i in 0..40 {
        assert_eq!(add(addr, &format!("p{i}")).await.0, 200);
    }
    let (status, _, body) = http(addr, "GET", "/carts/big", None).await;
    assert_ne!(status, 200, "{body}");
    let logged = capture.lines();
    assert!(
        logged
            .iter()
            .any(|line| line.contains("OutOfRange") && line.contains("too large")),
        "{logged:#?}"
    );
    assert!(
        !logged
            .iter()
            .any(|line| line.contains("the user function ended the stream")),
        "{logged:#?}"
    );
}
