//! The cart's business logic in memory, with the SDK's test kit.

use cloudstate_sdk::payload;
use cloudstate_sdk::testkit::EventSourcedTestKit;
use shopping_cart::ShoppingCart;
use shopping_cart::proto::com::example::shoppingcart::{
    self as api, persistence as domain,
    shopping_cart::{Entity, Event},
};

fn kit() -> EventSourcedTestKit<Entity<ShoppingCart>> {
    EventSourcedTestKit::new(Entity(ShoppingCart), "user-1").snapshot_every(5)
}

fn add(product: &str, quantity: i32) -> api::AddLineItem {
    api::AddLineItem {
        user_id: "user-1".into(),
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

fn get() -> api::GetShoppingCart {
    api::GetShoppingCart {
        user_id: "user-1".into(),
    }
}

#[test]
fn adding_emits_item_added_and_the_cart_shows_it() {
    let mut kit = kit();
    let outcome = kit.command("AddItem", &add("apple", 2));
    assert_eq!(
        outcome.events(),
        vec![Event::ItemAdded(domain::ItemAdded {
            item: Some(item("apple", 2))
        })]
    );
    assert_eq!(outcome.reply_payload(), Some(&payload::empty()));
    kit.command("AddItem", &add("apple", 3));
    let cart: api::Cart = kit.command("GetCart", &get()).reply();
    assert_eq!(cart.items.len(), 1);
    assert_eq!(cart.items[0].quantity, 5);
    assert_eq!(kit.sequence_number(), 2);
}

#[test]
fn invalid_commands_fail_without_events() {
    let mut kit = kit();
    let outcome = kit.command("AddItem", &add("kiwi", 0));
    assert_eq!(
        outcome.failure_description(),
        Some("Cannot add negative quantity of to itemkiwi")
    );
    assert!(outcome.raw_events().is_empty());
    let outcome = kit.command(
        "RemoveItem",
        &api::RemoveLineItem {
            user_id: "user-1".into(),
            product_id: "kiwi".into(),
        },
    );
    assert_eq!(
        outcome.failure_description(),
        Some("Cannot remove item kiwi because it is not in the cart.")
    );
    assert!(!outcome.failure().unwrap().restart);
    assert!(kit.state().items.is_empty());
}

#[test]
fn removing_drops_the_product() {
    let mut kit = kit();
    kit.command("AddItem", &add("apple", 1));
    kit.command("AddItem", &add("pear", 1));
    let outcome = kit.command(
        "RemoveItem",
        &api::RemoveLineItem {
            user_id: "user-1".into(),
            product_id: "apple".into(),
        },
    );
    assert_eq!(
        outcome.events(),
        vec![Event::ItemRemoved(domain::ItemRemoved {
            product_id: "apple".into()
        })]
    );
    assert_eq!(kit.state().items, [item("pear", 1)]);
}

#[test]
fn the_fifth_event_takes_a_snapshot_that_restores_the_same_cart() {
    let mut kit = kit();
    for (i, product) in ["a", "b", "c", "d"].iter().enumerate() {
        assert!(
            kit.command("AddItem", &add(product, i as i32 + 1))
                .snapshot()
                .is_none()
        );
    }
    let outcome = kit.command("AddItem", &add("e", 5));
    let snapshot = outcome.snapshot().expect("snapshot at sequence 5").clone();

    let restored =
        EventSourcedTestKit::from_snapshot(Entity(ShoppingCart), "user-1", 5, snapshot).unwrap();
    assert_eq!(restored.state(), kit.state());

    let mut replayed = EventSourcedTestKit::new(Entity(ShoppingCart), "user-1");
    replayed
        .replay(
            ["a", "b", "c", "d", "e"]
                .iter()
                .enumerate()
                .map(|(i, p)| domain::ItemAdded {
                    item: Some(item(p, i as i32 + 1)),
                }),
        )
        .unwrap();
    assert_eq!(replayed.state(), kit.state());
}
