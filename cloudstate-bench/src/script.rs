//! What each simulated entity sends: `init`, then commands alternating
//! `AddItem` (cycling over a few products, so events are emitted and a
//! snapshot is taken every few events while the cart stays small) and
//! `GetCart`, each with its own command id.

use cloudstate_sdk::protocol::cloudstate::client_action::Action;
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, EventSourcedStreamOut, event_sourced_stream_in::Message as In,
    event_sourced_stream_out::Message as Out,
};
use cloudstate_sdk::testkit::eventsourced as es;
use shopping_cart::proto::com::example::shoppingcart as api;

/// How many products the `AddItem` commands cycle over.
pub(crate) const PRODUCTS: usize = 3;
/// The cart's snapshot interval, in events.
pub(crate) const SNAPSHOT_EVERY: i64 = 5;

/// Id and name of product `k`.
pub(crate) fn product(k: usize) -> (String, String) {
    (format!("product-{k}"), format!("Product number {k}"))
}

/// The messages of one entity, built once and cloned per command.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    init: EventSourcedStreamIn,
    adds: Vec<EventSourcedStreamIn>,
    get: EventSourcedStreamIn,
}

impl Script {
    /// The script of entity `entity_id`.
    pub(crate) fn new(entity_id: &str) -> Self {
        let adds = (0..PRODUCTS)
            .map(|k| {
                let (product_id, name) = product(k);
                es::command(
                    0,
                    entity_id,
                    "AddItem",
                    &api::AddLineItem {
                        user_id: entity_id.to_owned(),
                        product_id,
                        name,
                        quantity: 1,
                    },
                )
            })
            .collect();
        let get = es::command(
            0,
            entity_id,
            "GetCart",
            &api::GetShoppingCart {
                user_id: entity_id.to_owned(),
            },
        );
        Self {
            init: es::init(shopping_cart::SERVICE, entity_id),
            adds,
            get,
        }
    }

    /// The `init` message.
    pub(crate) fn init(&self) -> EventSourcedStreamIn {
        self.init.clone()
    }

    /// The `n`-th command (0-based), with command id `n + 1`.
    pub(crate) fn command(&self, n: usize) -> (i64, EventSourcedStreamIn) {
        let template = if n.is_multiple_of(2) {
            &self.adds[(n / 2) % PRODUCTS]
        } else {
            &self.get
        };
        let mut message = template.clone();
        let id = i64::try_from(n).unwrap_or(i64::MAX - 1) + 1;
        if let Some(In::Command(command)) = &mut message.message {
            command.id = id;
        }
        (id, message)
    }
}

/// Checks that `out` is a successful reply to command `id`.
pub(crate) fn check_reply(out: &EventSourcedStreamOut, id: i64) -> Result<(), String> {
    match &out.message {
        Some(Out::Reply(reply)) if reply.command_id == id => {
            match reply.client_action.as_ref().and_then(|a| a.action.as_ref()) {
                Some(Action::Reply(_)) => Ok(()),
                other => Err(format!(
                    "command {id}: expected a reply, got the action {other:?}"
                )),
            }
        }
        other => Err(format!("command {id}: unexpected answer {other:?}")),
    }
}
