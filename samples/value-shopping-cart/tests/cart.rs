//! The value-entity cart in memory (test kit) and over the protocol (driver).

use cloudstate_sdk::CloudState;
use cloudstate_sdk::protocol::cloudstate::{
    self as pb, valueentity::value_entity_stream_out as ve_out,
};
use cloudstate_sdk::testkit::{TestServer, ValueEntityTestKit, valueentity as ve};
use value_shopping_cart::ShoppingCart;
use value_shopping_cart::proto::com::example::valueentity::shoppingcart::{
    self as api, persistence as domain,
    shopping_cart::{self, Entity},
};

fn add(product: &str, quantity: i32) -> api::AddLineItem {
    api::AddLineItem {
        user_id: "u".into(),
        product_id: product.into(),
        name: product.to_uppercase(),
        quantity,
    }
}

fn item(product: &str, quantity: i32) -> domain::LineItem {
    domain::LineItem {
        product_id: product.into(),
        name: product.to_uppercase(),
        quantity,
    }
}

#[test]
fn items_are_merged_sorted_and_removed() {
    let mut kit = ValueEntityTestKit::new(Entity(ShoppingCart), "u");
    kit.call(shopping_cart::add_item(&add("pear", 1)));
    kit.call(shopping_cart::add_item(&add("apple", 2)));
    let outcome = kit.call(shopping_cart::add_item(&add("pear", 2)));
    assert_eq!(
        outcome.state_change(),
        Some(Some(&domain::Cart {
            items: vec![item("apple", 2), item("pear", 3)]
        }))
    );
    let cart: api::Cart = kit
        .call(shopping_cart::get_cart(&api::GetShoppingCart {
            user_id: "u".into(),
        }))
        .reply();
    assert_eq!(cart.items.len(), 2);
    assert_eq!(cart.items[1].quantity, 3);
    kit.call(shopping_cart::remove_item(&api::RemoveLineItem {
        user_id: "u".into(),
        product_id: "apple".into(),
    }));
    assert_eq!(
        kit.state(),
        Some(&domain::Cart {
            items: vec![item("pear", 3)]
        })
    );
    let outcome = kit.call(shopping_cart::remove_cart(&api::RemoveShoppingCart {
        user_id: "u".into(),
    }));
    assert_eq!(outcome.state_change(), Some(None));
    assert_eq!(kit.state(), None);
}

#[test]
fn invalid_commands_fail_and_leave_the_cart() {
    let mut kit = ValueEntityTestKit::with_state(
        Entity(ShoppingCart),
        "u",
        &domain::Cart {
            items: vec![item("fig", 1)],
        },
    );
    let outcome = kit.call(shopping_cart::add_item(&add("kiwi", 0)));
    assert_eq!(
        outcome.failure(),
        Some("Cannot add negative quantity of to item kiwi")
    );
    assert_eq!(outcome.state_change(), None);
    let outcome = kit.call(shopping_cart::remove_item(&api::RemoveLineItem {
        user_id: "u".into(),
        product_id: "kiwi".into(),
    }));
    assert_eq!(
        outcome.failure(),
        Some("Cannot remove item kiwi because it is not in the cart.")
    );
    assert_eq!(
        kit.state(),
        Some(&domain::Cart {
            items: vec![item("fig", 1)]
        })
    );
}

#[tokio::test]
async fn over_the_protocol_the_stored_cart_comes_back_at_init() {
    let server = TestServer::start(value_shopping_cart::register(CloudState::new())).await;
    let driver = server.driver().await;
    let svc = value_shopping_cart::SERVICE;
    let mut c = driver.value_entity().await;
    c.send(ve::init(svc, "u")).await;
    c.send(ve::command(1, "u", "AddItem", &add("apple", 2)))
        .await;
    let stored = domain::Cart {
        items: vec![item("apple", 2)],
    };
    c.expect(ve::reply_empty(1).update(&stored)).await;
    c.passivate().await;

    let mut c = driver.value_entity().await;
    c.send(ve::init_with_state(svc, "u", &stored)).await;
    c.send(ve::command(
        1,
        "u",
        "GetCart",
        &api::GetShoppingCart {
            user_id: "u".into(),
        },
    ))
    .await;
    let cart = api::Cart {
        items: vec![api::LineItem {
            product_id: "apple".into(),
            name: "APPLE".into(),
            quantity: 2,
        }],
    };
    c.expect(ve::reply(1, &cart)).await;
    c.passivate().await;
}

#[tokio::test]
async fn a_state_too_large_to_send_fails_the_command_and_is_not_kept() {
    let limit = 4096;
    let server = value_shopping_cart::register(CloudState::new()).max_message_size(limit);
    let server = TestServer::start(server).await;
    let driver = server.driver().await;
    let svc = value_shopping_cart::SERVICE;
    let big = |product: &str| api::AddLineItem {
        name: format!("{product} {}", "n".repeat(1500)),
        ..add(product, 1)
    };
    let mut c = driver.value_entity().await;
    c.send(ve::init(svc, "u")).await;
    for (id, product) in (1..=2).zip(["a", "b"]) {
        c.send(ve::command(id, "u", "AddItem", &big(product))).await;
        assert!(matches!(
            c.next_message().await.message,
            Some(ve_out::Message::Reply(_))
        ));
    }
    // A third item would make the stored cart too large for one message.
    c.send(ve::command(3, "u", "AddItem", &big("c"))).await;
    let out = c.next_message().await;
    let Some(ve_out::Message::Reply(reply)) = &out.message else {
        panic!("{out:?}");
    };
    let Some(pb::ClientAction {
        action: Some(pb::client_action::Action::Failure(failure)),
    }) = &reply.client_action
    else {
        panic!("{out:?}");
    };
    assert!(
        failure
            .description
            .starts_with("The reply to command [AddItem] is ")
            && failure
                .description
                .contains(&format!("over the {limit}-byte limit"))
            && failure.description.contains("state "),
        "{}",
        failure.description
    );
    assert!(reply.state_action.is_none());
    // The entity goes on with the state the proxy has: two items.
    c.send(ve::command(
        4,
        "u",
        "GetCart",
        &api::GetShoppingCart {
            user_id: "u".into(),
        },
    ))
    .await;
    let out = c.next_message().await;
    let Some(ve_out::Message::Reply(reply)) = &out.message else {
        panic!("{out:?}");
    };
    let Some(pb::ClientAction {
        action: Some(pb::client_action::Action::Reply(reply)),
    }) = &reply.client_action
    else {
        panic!("{out:?}");
    };
    let cart: api::Cart = cloudstate_sdk::payload::decode(reply.payload.as_ref().unwrap()).unwrap();
    let products: Vec<&str> = cart.items.iter().map(|i| i.product_id.as_str()).collect();
    assert_eq!(products, ["a", "b"]);
    c.passivate().await;
}
