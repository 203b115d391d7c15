//! The cart over the real protocol, with the driver playing the proxy.

use cloudstate_sdk::CloudState;
use cloudstate_sdk::payload;
use cloudstate_sdk::testkit::{TestServer, eventsourced as es};
use shopping_cart::proto::com::example::shoppingcart::{self as api, persistence as domain};

const SVC: &str = shopping_cart::SERVICE;

fn add(user: &str, product: &str, name: &str, quantity: i32) -> api::AddLineItem {
    api::AddLineItem {
        user_id: user.into(),
        product_id: product.into(),
        name: name.into(),
        quantity,
    }
}

fn added(product: &str, name: &str, quantity: i32) -> domain::ItemAdded {
    domain::ItemAdded {
        item: Some(domain::LineItem {
            product_id: product.into(),
            name: name.into(),
            quantity,
        }),
    }
}

fn cart(items: &[(&str, &str, i32)]) -> api::Cart {
    api::Cart {
        items: items
            .iter()
            .map(|(p, n, q)| api::LineItem {
                product_id: (*p).into(),
                name: (*n).into(),
                quantity: *q,
            })
            .collect(),
    }
}

fn get(user: &str) -> api::GetShoppingCart {
    api::GetShoppingCart {
        user_id: user.into(),
    }
}

async fn server() -> TestServer {
    TestServer::start(shopping_cart::register(CloudState::new(), 5)).await
}

#[tokio::test]
async fn add_remove_and_get() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "alice")).await;
    c.send(es::command(
        1,
        "alice",
        "AddItem",
        &add("alice", "apple", "Apple", 2),
    ))
    .await;
    c.expect(es::reply_empty(1).event(&added("apple", "Apple", 2)))
        .await;
    c.send(es::command(
        2,
        "alice",
        "AddItem",
        &add("alice", "pear", "Pear", 1),
    ))
    .await;
    c.expect(es::reply_empty(2).event(&added("pear", "Pear", 1)))
        .await;
    c.send(es::command(
        3,
        "alice",
        "AddItem",
        &add("alice", "apple", "Apple", 3),
    ))
    .await;
    c.expect(es::reply_empty(3).event(&added("apple", "Apple", 3)))
        .await;
    c.send(es::command(4, "alice", "GetCart", &get("alice")))
        .await;
    c.expect(es::reply(
        4,
        &cart(&[("apple", "Apple", 5), ("pear", "Pear", 1)]),
    ))
    .await;
    c.send(es::command(
        5,
        "alice",
        "RemoveItem",
        &api::RemoveLineItem {
            user_id: "alice".into(),
            product_id: "apple".into(),
        },
    ))
    .await;
    c.expect(es::reply_empty(5).event(&domain::ItemRemoved {
        product_id: "apple".into(),
    }))
    .await;
    c.send(es::command(6, "alice", "GetCart", &get("alice")))
        .await;
    c.expect(es::reply(6, &cart(&[("pear", "Pear", 1)]))).await;
    c.passivate().await;
}

#[tokio::test]
async fn validation_failures_use_the_official_texts() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "bob")).await;
    c.send(es::command(
        1,
        "bob",
        "AddItem",
        &add("bob", "kiwi", "Kiwi", 0),
    ))
    .await;
    c.expect(es::failure(
        1,
        "Cannot add negative quantity of to itemkiwi",
        false,
    ))
    .await;
    c.send(es::command(
        2,
        "bob",
        "AddItem",
        &add("bob", "kiwi", "Kiwi", -1),
    ))
    .await;
    c.expect(es::failure(
        2,
        "Cannot add negative quantity of to itemkiwi",
        false,
    ))
    .await;
    c.send(es::command(
        3,
        "bob",
        "RemoveItem",
        &api::RemoveLineItem {
            user_id: "bob".into(),
            product_id: "kiwi".into(),
        },
    ))
    .await;
    c.expect(es::failure(
        3,
        "Cannot remove item kiwi because it is not in the cart.",
        false,
    ))
    .await;
    c.send(es::command(4, "bob", "GetCart", &get("bob"))).await;
    c.expect(es::reply(4, &cart(&[]))).await;
    c.passivate().await;
}

/// Five additions snapshot the cart; replaying the events and restoring the
/// snapshot give the same cart.
#[tokio::test]
async fn replay_from_events_and_from_snapshot_agree() {
    let s = server().await;
    let d = s.driver().await;
    let items = [
        ("a", "A", 1),
        ("b", "B", 2),
        ("a", "A", 3),
        ("c", "C", 4),
        ("d", "D", 5),
    ];
    let mut c = d.event_sourced().await;
    c.send(es::init(SVC, "carol")).await;
    let mut snapshot = None;
    for (n, (p, name, q)) in items.iter().enumerate() {
        c.send(es::command(
            n as i64 + 1,
            "carol",
            "AddItem",
            &add("carol", p, name, *q),
        ))
        .await;
        let out = c.next_message().await;
        if let Some(cloudstate_sdk::protocol::cloudstate::eventsourced::event_sourced_stream_out::Message::Reply(r)) = out.message {
            assert_eq!(r.events, vec![payload::encode(&added(p, name, *q))]);
            assert_eq!(r.snapshot.is_some(), n == 4, "snapshot at the fifth event only");
            snapshot = snapshot.or(r.snapshot);
        } else {
            panic!("{out:?}");
        }
    }
    c.passivate().await;
    let expected = cart(&[("a", "A", 4), ("b", "B", 2), ("c", "C", 4), ("d", "D", 5)]);

    let mut from_events = d.event_sourced().await;
    from_events.send(es::init(SVC, "carol")).await;
    for (n, (p, name, q)) in items.iter().enumerate() {
        from_events
            .send(es::event(
                n as i64 + 1,
                payload::encode(&added(p, name, *q)),
            ))
            .await;
    }
    from_events
        .send(es::command(1, "carol", "GetCart", &get("carol")))
        .await;
    from_events.expect(es::reply(1, &expected)).await;
    from_events.passivate().await;

    let mut from_snapshot = d.event_sourced().await;
    from_snapshot
        .send(es::init_with_snapshot(SVC, "carol", 5, snapshot.unwrap()))
        .await;
    from_snapshot
        .send(es::command(1, "carol", "GetCart", &get("carol")))
        .await;
    from_snapshot.expect(es::reply(1, &expected)).await;
    from_snapshot.passivate().await;
}
