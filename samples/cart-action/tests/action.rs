//! The cart action in memory, with the SDK's action test kit: calls through
//! the generated call builders, replies, forwards and streamed products typed.

use ::cart_action::CartAction;
use ::cart_action::proto::com::example::cartaction::{Product, cart_action};
use ::cart_action::proto::com::example::shoppingcart::{AddLineItem, shopping_cart};
use cloudstate_sdk::testkit::ActionTestKit;
use cloudstate_sdk::{ServiceCall, TypedCall};

fn kit() -> ActionTestKit {
    ActionTestKit::new(cart_action::Action(CartAction::default()))
}

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
    let kit = kit();
    let ok = kit
        .call(cart_action::add_checked_item(&add("fig", 2)))
        .await;
    assert_eq!(
        ok.forward(),
        Some(&*shopping_cart::add_item(&add("fig", 2)))
    );
    assert!(ok.side_effects().is_empty());

    let too_many = kit
        .call(cart_action::add_checked_item(&add("fig", 3)))
        .await;
    assert_eq!(too_many.failure(), Some("At most 2 of Fig per cart"));
    let unknown = kit
        .call(cart_action::add_checked_item(&add("kiwi", 1)))
        .await;
    assert_eq!(unknown.failure(), Some("Unknown product kiwi"));
    assert_eq!(unknown.forward(), None);
}

#[tokio::test]
async fn the_catalog_streams_every_product_in_order() {
    // `Catalog` is server-streaming: the build generates no call builder for
    // it, so the call is named by hand.
    let catalog: TypedCall<Product> = TypedCall::new(ServiceCall::message(
        cart_action::SERVICE_NAME,
        "Catalog",
        &(),
    ));
    let products = kit().call_streamed_out(catalog).await;
    let names: Vec<String> = products.iter().map(|p| p.reply().product_id).collect();
    assert_eq!(names, ["apple", "pear", "fig"]);
    assert_eq!(products[2].reply().max_quantity, 2);
}
