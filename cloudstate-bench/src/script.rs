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

/// What the `n`-th command (0-based) of an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `AddItem` of one unit of product `k`.
    Add(usize),
    /// `GetCart`.
    Get,
}

/// Commands alternate `AddItem` (cycling over the products) and `GetCart`.
pub(crate) fn step(n: usize) -> Step {
    if n.is_multiple_of(2) {
        Step::Add((n / 2) % PRODUCTS)
    } else {
        Step::Get
    }
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
        let template = match step(n) {
            Step::Add(k) => &self.adds[k],
            Step::Get => &self.get,
        };
        let mut message = template.clone();
        let id = i64::try_from(n).unwrap_or(i64::MAX - 1) + 1;
        if let Some(In::Command(command)) = &mut message.message {
            command.id = id;
        }
        (id, message)
    }
}

/// Checks that `out` answers command `id` with a reply or a forward. Events
/// and snapshots are not looked at: user functions of other languages name
/// and snapshot them their own way (the Go cart's events are
/// `com.example.shoppingcart.persistence.ItemAdded` too, but it snapshots on
/// its own schedule).
pub(crate) fn check_reply(out: &EventSourcedStreamOut, id: i64) -> Result<(), String> {
    match &out.message {
        Some(Out::Reply(reply)) if reply.command_id == id => {
            match reply.client_action.as_ref().and_then(|a| a.action.as_ref()) {
                Some(Action::Reply(_) | Action::Forward(_)) => Ok(()),
                other => Err(format!(
                    "command {id}: expected a reply or a forward, got the action {other:?}"
                )),
            }
        }
        other => Err(format!("command {id}: unexpected answer {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudstate_sdk::protocol::cloudstate::{
        ClientAction, Forward, eventsourced::EventSourcedReply,
    };

    fn answer(id: i64, action: Option<Action>) -> EventSourcedStreamOut {
        EventSourcedStreamOut {
            message: Some(Out::Reply(EventSourcedReply {
                command_id: id,
                client_action: action.map(|action| ClientAction {
                    action: Some(action),
                }),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn replies_and_forwards_pass_whatever_their_events() {
        let mut reply = es::reply_empty(7)
            .event(&api::AddLineItem::default())
            .build();
        assert_eq!(check_reply(&reply, 7), Ok(()));
        assert!(check_reply(&reply, 8).is_err());
        if let Some(Out::Reply(r)) = &mut reply.message {
            r.snapshot = None;
            r.events.clear();
        }
        assert_eq!(check_reply(&reply, 7), Ok(()));
        let forward = answer(3, Some(Action::Forward(Forward::default())));
        assert_eq!(check_reply(&forward, 3), Ok(()));
        assert!(check_reply(&answer(3, None), 3).is_err());
        assert!(check_reply(&es::failure(3, "no", false), 3).is_err());
    }

    #[test]
    fn commands_alternate_add_and_get() {
        let script = Script::new("cart-1");
        let steps: Vec<Step> = (0..8).map(step).collect();
        assert_eq!(
            steps,
            [
                Step::Add(0),
                Step::Get,
                Step::Add(1),
                Step::Get,
                Step::Add(2),
                Step::Get,
                Step::Add(0),
                Step::Get
            ]
        );
        let (id, command) = script.command(3);
        assert_eq!(id, 4);
        match command.message {
            Some(In::Command(c)) => assert_eq!((c.id, c.name.as_str()), (4, "GetCart")),
            other => panic!("{other:?}"),
        }
    }
}
