//! The cart action over the protocol, with the driver playing the proxy.

use cart_action::proto::com::example::cartaction::Product;
use cart_action::proto::com::example::shoppingcart::AddLineItem;
use cloudstate_sdk::CloudState;
use cloudstate_sdk::testkit::{TestServer, action};

const SVC: &str = "com.example.cartaction.CartAction";

fn add(product: &str, quantity: i32) -> AddLineItem {
    AddLineItem {
        user_id: "alice".into(),
        product_id: product.into(),
        name: product.into(),
        quantity,
    }
}

#[tokio::test]
async fn checked_additions_forward_to_the_cart_and_others_fail() {
    let server = TestServer::start(cart_action::register(CloudState::new())).await;
    let driver = server.driver().await;
    let ok = driver
        .action_unary(action::command(SVC, "AddCheckedItem", &add("fig", 2)))
        .await
        .unwrap();
    assert_eq!(
        ok,
        action::forward(
            "com.example.shoppingcart.ShoppingCart",
            "AddItem",
            &add("fig", 2)
        )
        .build()
    );
    let too_many = driver
        .action_unary(action::command(SVC, "AddCheckedItem", &add("fig", 3)))
        .await
        .unwrap();
    assert_eq!(
        too_many,
        action::failure("At most 2 of Fig per cart").build()
    );
    let unknown = driver
        .action_unary(action::command(SVC, "AddCheckedItem", &add("kiwi", 1)))
        .await
        .unwrap();
    assert_eq!(unknown, action::failure("Unknown product kiwi").build());
}

#[tokio::test]
async fn the_catalog_streams_every_product() {
    let server = TestServer::start(cart_action::register(CloudState::new())).await;
    let driver = server.driver().await;
    let mut stream = driver
        .action_streamed_out(action::command(SVC, "Catalog", &()))
        .await;
    let mut names = Vec::new();
    while let Some(response) = stream.next().await {
        let response = response.unwrap();
        let expected_product = |p: &Product| action::reply(p).build();
        let Some(cloudstate_sdk::protocol::cloudstate::action::action_response::Response::Reply(
            reply,
        )) = response.response.clone()
        else {
            panic!("{response:?}")
        };
        let product: Product = cloudstate_sdk::payload::decode(&reply.payload.unwrap()).unwrap();
        assert_eq!(response, expected_product(&product));
        names.push(product.product_id);
    }
    assert_eq!(names, ["apple", "pear", "fig"]);
}
