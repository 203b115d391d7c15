//! Replies too large for one message to the proxy, over the real protocol.

use cloudstate_sdk::CloudState;
use cloudstate_sdk::protocol::cloudstate::eventsourced::EventSourcedStreamIn;
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamOut, event_sourced_stream_out::Message as Out,
};
use cloudstate_sdk::protocol::cloudstate::{ClientAction, client_action::Action};
use cloudstate_sdk::testkit::{DriverStream, TestServer, eventsourced as es};
use shopping_cart::proto::com::example::shoppingcart::{self as api, persistence as domain};

const SVC: &str = shopping_cart::SERVICE;
const LIMIT: usize = 4096;

/// A name long enough that a few items fill a message.
fn name(product: &str) -> String {
    format!("{product} {}", "x".repeat(900))
}

fn add(product: &str) -> api::AddLineItem {
    api::AddLineItem {
        user_id: "big".into(),
        product_id: product.into(),
        name: name(product),
        quantity: 1,
    }
}

fn added(product: &str) -> domain::ItemAdded {
    domain::ItemAdded {
        item: Some(domain::LineItem {
            product_id: product.into(),
            name: name(product),
            quantity: 1,
        }),
    }
}

fn get() -> api::GetShoppingCart {
    api::GetShoppingCart {
        user_id: "big".into(),
    }
}

fn failure_of(out: &EventSourcedStreamOut) -> Option<(&str, bool)> {
    match &out.message {
        Some(Out::Reply(reply)) => match &reply.client_action {
            Some(ClientAction {
                action: Some(Action::Failure(f)),
            }) => Some((f.description.as_str(), f.restart)),
            _ => None,
        },
        _ => None,
    }
}

async fn add_expecting_event(
    c: &mut DriverStream<EventSourcedStreamIn, EventSourcedStreamOut>,
    id: i64,
    product: &str,
) {
    c.send(es::command(id, "big", "AddItem", &add(product)))
        .await;
    c.expect(es::reply_empty(id).event(&added(product))).await;
}

#[tokio::test]
async fn an_oversized_reply_fails_its_command_and_the_entity_goes_on() {
    let server = shopping_cart::register(CloudState::new(), 5).max_message_size(LIMIT);
    let s = TestServer::start(server).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "big")).await;
    for (id, product) in (1..=4).zip(["a", "b", "c", "d"]) {
        add_expecting_event(&mut c, id, product).await;
    }
    // The fifth event is due a snapshot of five items, over the limit: the
    // reply goes without it.
    add_expecting_event(&mut c, 5, "e").await;

    // The whole cart cannot be sent: the command fails, saying why.
    c.send(es::command(6, "big", "GetCart", &get())).await;
    let out = c.next_message().await;
    let (description, restart) = failure_of(&out).unwrap_or_else(|| panic!("{out:?}"));
    assert!(
        description.starts_with("The reply to command [GetCart] is ")
            && description.contains(&format!("over the {LIMIT}-byte limit"))
            && description.contains("0 events of 0 bytes"),
        "{description}"
    );
    assert!(!restart, "no event was emitted, so nothing to rebuild");

    // The stream and the entity are still there.
    for (id, product) in (7..).zip(["a", "b", "c"]) {
        c.send(es::command(
            id,
            "big",
            "RemoveItem",
            &api::RemoveLineItem {
                user_id: "big".into(),
                product_id: product.into(),
            },
        ))
        .await;
        c.expect(es::reply_empty(id).event(&domain::ItemRemoved {
            product_id: product.into(),
        }))
        .await;
    }
    c.send(es::command(10, "big", "GetCart", &get())).await;
    let items = ["d", "e"].map(|p| api::LineItem {
        product_id: p.into(),
        name: name(p),
        quantity: 1,
    });
    c.expect(es::reply(
        10,
        &api::Cart {
            items: items.to_vec(),
        },
    ))
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn an_event_too_large_to_send_fails_with_a_restart() {
    let server = shopping_cart::register(CloudState::new(), 5).max_reply_size(LIMIT);
    let s = TestServer::start(server).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "big")).await;
    let mut huge = add("huge");
    huge.name = "y".repeat(LIMIT);
    c.send(es::command(1, "big", "AddItem", &huge)).await;
    let out = c.next_message().await;
    let (description, restart) = failure_of(&out).unwrap_or_else(|| panic!("{out:?}"));
    assert!(
        description.contains("[AddItem]") && description.contains("1 events of "),
        "{description}"
    );
    // The event changed the entity's state but never reached the journal:
    // the proxy is to rebuild it, and until then commands are refused.
    assert!(restart);
    c.send(es::command(2, "big", "GetCart", &get())).await;
    let out = c.next_message().await;
    let (description, _) = failure_of(&out).unwrap_or_else(|| panic!("{out:?}"));
    assert!(description.contains("restarting"), "{description}");
}

/// The proxy keeps one stream per active entity on one connection: the
/// user function takes as many at once as the proxy opens.
#[tokio::test]
async fn hundreds_of_entity_streams_share_one_connection() {
    let s = TestServer::start(shopping_cart::register(CloudState::new(), 5)).await;
    let driver = s.driver().await;
    let mut streams = Vec::new();
    for n in 0..300 {
        let id = format!("cart-{n}");
        let c = driver.event_sourced().await;
        c.send(es::init(SVC, &id)).await;
        streams.push((id, c));
    }
    // Every stream is open before any is answered.
    for (id, c) in &mut streams {
        let get = api::GetShoppingCart {
            user_id: id.clone(),
        };
        c.send(es::command(1, id, "GetCart", &get)).await;
        c.expect(es::reply(1, &api::Cart::default())).await;
    }
}
