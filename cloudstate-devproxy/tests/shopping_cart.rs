//! The shopping cart end to end through the dev proxy: the README's requests,
//! over HTTP/JSON and gRPC.

mod support;

use shopping_cart::proto::com::example::shoppingcart as api;
use support::{grpc, http, start};

fn cart() -> cloudstate_sdk::CloudState {
    shopping_cart::register(cloudstate_sdk::CloudState::new(), 5)
}

#[tokio::test]
async fn readme_curl_examples_answer_as_printed() {
    let s = start(cart()).await;
    let addr = s.proxy.local_addr();
    let add = r#"{"productId":"apple","name":"Apple","quantity":2}"#;
    let (status, _, body) = http(addr, "POST", "/cart/alice/items/add", Some(add)).await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    let (status, content_type, body) = http(addr, "GET", "/carts/alice", None).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/json"));
    assert_eq!(
        body,
        r#"{"items":[{"productId":"apple","name":"Apple","quantity":2}]}"#
    );
    let (status, _, body) = http(addr, "GET", "/carts/alice/items", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"[{"productId":"apple","name":"Apple","quantity":2}]"#
    );
    let (status, _, body) = http(addr, "POST", "/cart/alice/items/apple/remove", None).await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    let (_, _, body) = http(addr, "GET", "/carts/alice", None).await;
    assert_eq!(body, r#"{"items":[]}"#);
    let bad = r#"{"productId":"kiwi","name":"Kiwi","quantity":0}"#;
    let (status, _, body) = http(addr, "POST", "/cart/alice/items/add", Some(bad)).await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Cannot add negative quantity of to itemkiwi")
    );
    let (status, _, body) = http(addr, "POST", "/cart/alice/items/kiwi/remove", None).await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "Cannot remove item kiwi because it is not in the cart."
        )
    );
}

#[tokio::test]
async fn grpc_clients_see_the_same_cart() {
    let s = start(cart()).await;
    let addr = s.proxy.local_addr();
    let add = api::AddLineItem {
        user_id: "bob".into(),
        product_id: "pear".into(),
        name: "Pear".into(),
        quantity: 3,
    };
    let () = grpc::<_, ()>(
        addr,
        "/com.example.shoppingcart.ShoppingCart/AddItem",
        add.clone(),
    )
    .await
    .unwrap();
    let () = grpc::<_, ()>(addr, "/com.example.shoppingcart.ShoppingCart/AddItem", add)
        .await
        .unwrap();
    let got: api::Cart = grpc(
        addr,
        "/com.example.shoppingcart.ShoppingCart/GetCart",
        api::GetShoppingCart {
            user_id: "bob".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(got.items.len(), 1);
    assert_eq!(got.items[0].quantity, 6);
    let (_, _, body) = http(addr, "GET", "/carts/bob", None).await;
    assert_eq!(
        body,
        r#"{"items":[{"productId":"pear","name":"Pear","quantity":6}]}"#
    );
    let status = grpc::<_, ()>(
        addr,
        "/com.example.shoppingcart.ShoppingCart/RemoveItem",
        api::RemoveLineItem {
            user_id: "bob".into(),
            product_id: "fig".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(
        status.message(),
        "Cannot remove item fig because it is not in the cart."
    );
}

/// The value-entity cart's printed requests, through the dev proxy.
#[tokio::test]
async fn value_entity_cart_answers_as_printed() {
    let s = start(value_shopping_cart::register(
        cloudstate_sdk::CloudState::new(),
    ))
    .await;
    let addr = s.proxy.local_addr();
    let add = r#"{"productId":"apple","name":"Apple","quantity":2}"#;
    let (status, _, body) = http(addr, "POST", "/ve/cart/alice/items/add", Some(add)).await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    let (_, _, body) = http(addr, "GET", "/ve/carts/alice", None).await;
    assert_eq!(
        body,
        r#"{"items":[{"productId":"apple","name":"Apple","quantity":2}]}"#
    );
    let (status, _, body) = http(addr, "POST", "/ve/carts/alice/remove", None).await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    let (_, _, body) = http(addr, "GET", "/ve/carts/alice", None).await;
    assert_eq!(body, r#"{"items":[]}"#);
    let bad = r#"{"productId":"kiwi","name":"Kiwi","quantity":0}"#;
    let (status, _, body) = http(addr, "POST", "/ve/cart/alice/items/add", Some(bad)).await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Cannot add negative quantity of to item kiwi")
    );
}

/// The cart action's printed requests: the streamed catalog as JSON lines,
/// a checked addition forwarded to the cart, a refused one.
#[tokio::test]
async fn cart_action_answers_as_printed() {
    let s = start(cart_action::register(cloudstate_sdk::CloudState::new())).await;
    let addr = s.proxy.local_addr();
    let (status, _, body) = http(addr, "GET", "/catalog", None).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"productId":"apple","name":"Apple","maxQuantity":10}"#,
            r#"{"productId":"pear","name":"Pear","maxQuantity":5}"#,
            r#"{"productId":"fig","name":"Fig","maxQuantity":2}"#,
        ]
    );
    let figs = r#"{"productId":"fig","name":"Fig","quantity":2}"#;
    let (status, _, body) = http(addr, "POST", "/checked/cart/alice/items/add", Some(figs)).await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    let too_many = r#"{"productId":"fig","name":"Fig","quantity":3}"#;
    let (status, _, body) = http(
        addr,
        "POST",
        "/checked/cart/alice/items/add",
        Some(too_many),
    )
    .await;
    assert_eq!((status, body.as_str()), (500, "At most 2 of Fig per cart"));
    let (_, _, body) = http(addr, "GET", "/carts/alice", None).await;
    assert_eq!(
        body,
        r#"{"items":[{"productId":"fig","name":"Fig","quantity":2}]}"#
    );
}
