//! The action and the read model in memory: the action with the SDK's
//! `ActionTestKit` (what it forwards for each event, read from the
//! CloudEvent metadata), the read model with `ValueEntityTestKit` (counting,
//! ordering, the limit, and duplicate deliveries ignored).

use ::cart_analytics::proto::com::example::cartanalytics::{
    GetTopProducts, ProductCount, RecordEvent, TopProductList, TopProductsQuery, cart_analytics,
    persistence::Board, record_event::Change, top_products,
};
use ::cart_analytics::proto::com::example::shoppingcart::persistence::{
    ItemAdded, ItemRemoved, LineItem,
};
use ::cart_analytics::{BOARD, CartAnalytics, DEFAULT_LIMIT, TopProducts};
use cloudstate_sdk::Metadata;
use cloudstate_sdk::metadata::CloudEventAttributes;
use cloudstate_sdk::testkit::{ActionTestKit, ValueEntityTestKit};

const ADDED: &str = "type.googleapis.com/com.example.shoppingcart.persistence.ItemAdded";
const REMOVED: &str = "type.googleapis.com/com.example.shoppingcart.persistence.ItemRemoved";

fn line(product: &str, name: &str, quantity: i32) -> LineItem {
    LineItem {
        product_id: product.into(),
        name: name.into(),
        quantity,
    }
}

/// Metadata as the proxy sends with the event at `offset` of cart `cart`.
fn delivered(offset: &str, cart: &str, event_type: &str) -> Metadata {
    Metadata::new().with_cloud_event(
        &CloudEventAttributes::new(offset, "shopping-cart", event_type).subject(cart),
    )
}

fn action() -> ActionTestKit {
    ActionTestKit::new(cart_analytics::Action(CartAnalytics))
}

#[tokio::test]
async fn an_added_item_is_forwarded_to_the_board_with_its_offset_and_cart() {
    let added = ItemAdded {
        item: Some(line("apple", "Apple", 2)),
    };
    let call = cart_analytics::on_item_added(&added).with_metadata(delivered("7", "alice", ADDED));
    let outcome = action().call(call).await;
    let expected = RecordEvent {
        board: BOARD.into(),
        source: "shopping-cart".into(),
        offset: 7,
        cart_id: "alice".into(),
        change: Some(Change::Added(line("apple", "Apple", 2))),
    };
    assert_eq!(
        outcome.forward(),
        Some(&*top_products::record(&expected)),
        "{:?}",
        outcome.failure()
    );
    assert!(outcome.side_effects().is_empty());
}

#[tokio::test]
async fn a_removed_item_is_forwarded_as_a_removal() {
    let removed = ItemRemoved {
        product_id: "pear".into(),
    };
    let call =
        cart_analytics::on_item_removed(&removed).with_metadata(delivered("12", "bob", REMOVED));
    let outcome = action().call(call).await;
    let expected = RecordEvent {
        board: BOARD.into(),
        source: "shopping-cart".into(),
        offset: 12,
        cart_id: "bob".into(),
        change: Some(Change::RemovedProductId("pear".into())),
    };
    assert_eq!(outcome.forward(), Some(&*top_products::record(&expected)));
}

#[tokio::test]
async fn an_event_without_cloudevent_metadata_or_offset_fails() {
    let added = ItemAdded {
        item: Some(line("apple", "Apple", 1)),
    };
    let bare = action().call(cart_analytics::on_item_added(&added)).await;
    assert_eq!(
        bare.failure(),
        Some(
            "OnItemAdded takes events of the shopping cart's event log, \
             but the call has no CloudEvent metadata"
        )
    );
    assert_eq!(bare.forward(), None);

    let call = cart_analytics::on_item_added(&added).with_metadata(delivered(
        "not-a-number",
        "alice",
        ADDED,
    ));
    let odd = action().call(call).await;
    assert_eq!(
        odd.failure(),
        Some("OnItemAdded: the event id (ce-id) [not-a-number] is not an event-log offset")
    );
}

#[tokio::test]
async fn the_top_products_are_asked_of_the_board() {
    let query = TopProductsQuery { limit: 3 };
    let outcome = action()
        .call(cart_analytics::get_top_products(&query))
        .await;
    let get = GetTopProducts {
        board: BOARD.into(),
        limit: 3,
    };
    assert_eq!(outcome.forward(), Some(&*top_products::get_top(&get)));
}

// ---- the read model ----

fn board() -> ValueEntityTestKit<top_products::Entity<TopProducts>> {
    ValueEntityTestKit::new(top_products::Entity(TopProducts), BOARD)
}

fn added(offset: i64, cart: &str, product: &str, name: &str, quantity: i32) -> RecordEvent {
    RecordEvent {
        board: BOARD.into(),
        source: "shopping-cart".into(),
        offset,
        cart_id: cart.into(),
        change: Some(Change::Added(line(product, name, quantity))),
    }
}

fn removed(offset: i64, cart: &str, product: &str) -> RecordEvent {
    RecordEvent {
        change: Some(Change::RemovedProductId(product.into())),
        ..added(offset, cart, "", "", 0)
    }
}

fn count(product: &str, name: &str, added: i64, removed: i64) -> ProductCount {
    ProductCount {
        product_id: product.into(),
        name: name.into(),
        added,
        removed,
    }
}

fn top(
    kit: &mut ValueEntityTestKit<top_products::Entity<TopProducts>>,
    limit: i32,
) -> Vec<ProductCount> {
    let get = GetTopProducts {
        board: BOARD.into(),
        limit,
    };
    let list: TopProductList = kit.call(top_products::get_top(&get)).reply();
    list.products
}

fn record(
    kit: &mut ValueEntityTestKit<top_products::Entity<TopProducts>>,
    events: impl IntoIterator<Item = RecordEvent>,
) {
    for event in events {
        let outcome = kit.call(top_products::record(&event));
        assert_eq!(outcome.failure(), None, "{event:?}");
    }
}

#[test]
fn additions_of_all_carts_are_summed_per_product_most_added_first() {
    let mut kit = board();
    assert_eq!(top(&mut kit, 0), [], "an empty board");
    record(
        &mut kit,
        [
            added(1, "alice", "apple", "Apple", 2),
            added(2, "alice", "fig", "Fig", 1),
            added(3, "bob", "pear", "Pear", 5),
            added(4, "bob", "apple", "Apple", 1),
            added(5, "cid", "apple", "Green apple", 1),
        ],
    );
    assert_eq!(
        top(&mut kit, 0),
        [
            count("pear", "Pear", 5, 0),
            count("apple", "Green apple", 4, 0),
            count("fig", "Fig", 1, 0)
        ],
        "the name is the last one added with"
    );
}

#[test]
fn a_removal_is_counted_apart_and_leaves_the_additions() {
    let mut kit = board();
    record(
        &mut kit,
        [
            added(1, "bob", "pear", "Pear", 5),
            removed(2, "bob", "pear"),
            added(3, "bob", "pear", "Pear", 1),
            removed(4, "bob", "pear"),
        ],
    );
    assert_eq!(top(&mut kit, 0), [count("pear", "Pear", 6, 2)]);
}

#[test]
fn equal_counts_are_ordered_by_product_id_and_the_limit_cuts_the_list() {
    let mut kit = board();
    let products = ["kiwi", "fig", "date", "apple", "cherry"];
    record(
        &mut kit,
        products
            .iter()
            .zip(1..)
            .map(|(p, offset)| added(offset, "alice", p, p, 1)),
    );
    record(&mut kit, [added(9, "bob", "kiwi", "kiwi", 1)]);
    let ids = |list: Vec<ProductCount>| -> Vec<String> {
        list.into_iter().map(|p| p.product_id).collect()
    };
    assert_eq!(
        ids(top(&mut kit, 0)),
        ["kiwi", "apple", "cherry", "date", "fig"]
    );
    assert_eq!(ids(top(&mut kit, 2)), ["kiwi", "apple"]);
    assert_eq!(ids(top(&mut kit, 100)).len(), products.len());
}

#[test]
fn without_a_limit_the_top_ten_are_answered() {
    let mut kit = board();
    record(
        &mut kit,
        (0..DEFAULT_LIMIT as i64 + 3).map(|n| {
            let product = format!("p{n:02}");
            added(n + 1, "alice", &product, &product, 1)
        }),
    );
    assert_eq!(top(&mut kit, 0).len(), DEFAULT_LIMIT);
}

#[test]
fn a_negative_limit_fails() {
    let mut kit = board();
    let get = GetTopProducts {
        board: BOARD.into(),
        limit: -1,
    };
    let outcome = kit.call(top_products::get_top(&get));
    assert_eq!(
        outcome.failure(),
        Some("the limit must not be negative, got -1")
    );
}

#[test]
fn an_event_delivered_again_is_not_counted_again() {
    let mut kit = board();
    record(
        &mut kit,
        [
            added(1, "alice", "apple", "Apple", 2),
            added(2, "bob", "apple", "Apple", 1),
        ],
    );
    let state = kit.state().cloned();
    // A redelivery from an earlier point of the log: offsets 1 and 2 again.
    for event in [
        added(1, "alice", "apple", "Apple", 2),
        added(2, "bob", "apple", "Apple", 1),
    ] {
        let again = kit.call(top_products::record(&event));
        assert_eq!(again.failure(), None);
        assert_eq!(again.state_change(), None, "nothing written for {event:?}");
    }
    assert_eq!(kit.state().cloned(), state);
    record(&mut kit, [added(3, "alice", "apple", "Apple", 4)]);
    assert_eq!(top(&mut kit, 0), [count("apple", "Apple", 7, 0)]);
}

#[test]
fn offsets_are_kept_per_event_log() {
    let mut kit = board();
    let other = |event: RecordEvent| RecordEvent {
        source: "other-carts".into(),
        ..event
    };
    record(
        &mut kit,
        [
            added(5, "alice", "apple", "Apple", 1),
            other(added(1, "zed", "apple", "Apple", 1)),
        ],
    );
    assert_eq!(top(&mut kit, 0), [count("apple", "Apple", 2, 0)]);
    let offsets = &kit.state().expect("a board").offsets;
    assert_eq!(offsets.get("shopping-cart"), Some(&5));
    assert_eq!(offsets.get("other-carts"), Some(&1));
}

#[test]
fn a_record_without_a_change_fails_and_changes_nothing() {
    let mut kit =
        ValueEntityTestKit::with_state(top_products::Entity(TopProducts), BOARD, &Board::default());
    let event = RecordEvent {
        change: None,
        ..added(3, "alice", "apple", "Apple", 1)
    };
    let outcome = kit.call(top_products::record(&event));
    assert_eq!(
        outcome.failure(),
        Some("the event at offset 3 of [shopping-cart] names no change")
    );
    assert_eq!(kit.state(), Some(&Board::default()));
}
