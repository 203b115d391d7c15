//! The cart's business logic in memory, with the SDK's test kit: commands
//! through the generated call builders, replies and events typed.

use ::shopping_cart::ShoppingCart;
use ::shopping_cart::proto::com::example::shoppingcart::{
    self as api, persistence as domain,
    shopping_cart::{self, Entity, Event},
};
use cloudstate_sdk::testkit::EventSourcedTestKit;

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
    let outcome = kit.call(shopping_cart::add_item(&add("apple", 2)));
    assert_eq!(
        outcome.events(),
        [Event::ItemAdded(domain::ItemAdded {
            item: Some(item("apple", 2))
        })]
    );
    let () = outcome.reply();
    kit.call(shopping_cart::add_item(&add("apple", 3)));
    let cart: api::Cart = kit.call(shopping_cart::get_cart(&get())).reply();
    assert_eq!(cart.items.len(), 1);
    assert_eq!(cart.items[0].quantity, 5);
    assert_eq!(kit.sequence_number(), 2);
}

#[test]
fn invalid_commands_fail_without_events() {
    let mut kit = kit();
    let outcome = kit.call(shopping_cart::add_item(&add("kiwi", 0)));
    assert_eq!(
        outcome.failure(),
        Some("Cannot add negative quantity of to itemkiwi")
    );
    assert!(outcome.events().is_empty());
    let outcome = kit.call(shopping_cart::remove_item(&api::RemoveLineItem {
        user_id: "user-1".into(),
        product_id: "kiwi".into(),
    }));
    assert_eq!(
        outcome.failure(),
        Some("Cannot remove item kiwi because it is not in the cart.")
    );
    assert!(!outcome.restarts());
    assert!(kit.state().items.is_empty());
}

#[test]
fn removing_drops_the_product() {
    let mut kit = kit();
    kit.call(shopping_cart::add_item(&add("apple", 1)));
    kit.call(shopping_cart::add_item(&add("pear", 1)));
    let outcome = kit.call(shopping_cart::remove_item(&api::RemoveLineItem {
        user_id: "user-1".into(),
        product_id: "apple".into(),
    }));
    assert_eq!(
        outcome.events(),
        [Event::ItemRemoved(domain::ItemRemoved {
            product_id: "apple".into()
        })]
    );
    assert_eq!(kit.state().items, [item("pear", 1)]);
}

#[test]
fn the_fifth_event_takes_a_snapshot_that_restores_the_same_cart() {
    let mut kit = kit();
    for (i, product) in ["a", "b", "c", "d"].iter().enumerate() {
        let added = kit.call(shopping_cart::add_item(&add(product, i as i32 + 1)));
        assert_eq!(added.snapshot::<domain::Cart>(), None);
    }
    let outcome = kit.call(shopping_cart::add_item(&add("e", 5)));
    let snapshot: domain::Cart = outcome.snapshot().expect("snapshot at sequence 5");
    assert_eq!(snapshot.items.len(), 5);

    let restored =
        EventSourcedTestKit::from_snapshot(Entity(ShoppingCart), "user-1", 5, snapshot).unwrap();
    assert_eq!(restored.sequence_number(), 5);
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

#[test]
fn a_misnamed_command_is_refused_as_in_production() {
    let mut kit = kit();
    let typo = cloudstate_sdk::TypedCall::<()>::new(cloudstate_sdk::ServiceCall::message(
        shopping_cart::SERVICE_NAME,
        "AddItems",
        &add("apple", 1),
    ));
    let outcome = kit.call(typo);
    let failure = outcome.failure().expect("a failure");
    // Refused by the registration's descriptors, before the entity's dispatch.
    let refused = "No command handler found for command [AddItems] on entity [user-1] \
                   of service [com.example.shoppingcart.ShoppingCart]";
    assert!(failure.starts_with(refused), "{failure}");
    assert!(kit.state().items.is_empty());
}
