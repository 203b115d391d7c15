//! The canonical Cloudstate shopping cart as an event-sourced entity.

use cloudstate_sdk::payload::{self, Any};
use cloudstate_sdk::{
    CloudState, Command, CommandContext, CommandResult, EventCodec, EventSourcedEntity,
    EventSourcedOptions, Failure, PayloadError, Reply,
};

/// The generated messages of `shoppingcart.proto` and `domain.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod proto {
    cloudstate_sdk::include_protos!();
}

use proto::com::example::shoppingcart::{self as api, persistence as domain};

/// Full name of the cart's gRPC service.
pub const SERVICE: &str = "com.example.shoppingcart.ShoppingCart";

/// Registers the cart, snapshotting every `snapshot_every` events.
pub fn register(server: CloudState, snapshot_every: i64) -> CloudState {
    server
        .descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .event_sourced(
            SERVICE,
            ShoppingCart,
            EventSourcedOptions::new("shopping-cart").snapshot_every(snapshot_every),
        )
}

/// The cart entity. Its state is the line items in the order they were added.
#[derive(Debug, Clone, Copy)]
pub struct ShoppingCart;

/// The cart's events.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An item was added (quantities of one product add up).
    ItemAdded(domain::ItemAdded),
    /// A product was removed.
    ItemRemoved(domain::ItemRemoved),
}

impl EventCodec for Event {
    fn into_any(self) -> Any {
        match self {
            Self::ItemAdded(e) => payload::encode(&e),
            Self::ItemRemoved(e) => payload::encode(&e),
        }
    }

    fn from_any(any: Any) -> Result<Self, PayloadError> {
        if payload::is::<domain::ItemAdded>(&any) {
            payload::decode(&any).map(Self::ItemAdded)
        } else if payload::is::<domain::ItemRemoved>(&any) {
            payload::decode(&any).map(Self::ItemRemoved)
        } else {
            Err(PayloadError::unhandled(&any))
        }
    }
}

impl EventSourcedEntity for ShoppingCart {
    type State = Vec<domain::LineItem>;
    type Event = Event;

    fn initial_state(&self, _user_id: &str) -> Self::State {
        Vec::new()
    }

    fn apply_event(&self, cart: &mut Self::State, event: &Event) -> Result<(), PayloadError> {
        match event {
            Event::ItemAdded(added) => {
                let item = added.item.clone().unwrap_or_default();
                match cart.iter_mut().find(|i| i.product_id == item.product_id) {
                    Some(existing) => existing.quantity += item.quantity,
                    None => cart.push(item),
                }
            }
            Event::ItemRemoved(removed) => cart.retain(|i| i.product_id != removed.product_id),
        }
        Ok(())
    }

    fn snapshot(&self, cart: &Self::State) -> Option<Any> {
        Some(payload::encode(&domain::Cart {
            items: cart.clone(),
        }))
    }

    fn restore(&self, _user_id: &str, snapshot: &Any) -> Result<Self::State, PayloadError> {
        Ok(payload::decode::<domain::Cart>(snapshot)?.items)
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        match command.name() {
            "AddItem" => {
                let add: api::AddLineItem = command.decode()?;
                if add.quantity <= 0 {
                    return Err(Failure::new(format!(
                        "Cannot add negative quantity of to item{}",
                        add.product_id
                    )));
                }
                ctx.emit(Event::ItemAdded(domain::ItemAdded {
                    item: Some(domain::LineItem {
                        product_id: add.product_id,
                        name: add.name,
                        quantity: add.quantity,
                    }),
                }));
                Ok(Reply::empty())
            }
            "RemoveItem" => {
                let remove: api::RemoveLineItem = command.decode()?;
                if !ctx
                    .state()
                    .iter()
                    .any(|i| i.product_id == remove.product_id)
                {
                    return Err(Failure::new(format!(
                        "Cannot remove item {} because it is not in the cart.",
                        remove.product_id
                    )));
                }
                ctx.emit(Event::ItemRemoved(domain::ItemRemoved {
                    product_id: remove.product_id,
                }));
                Ok(Reply::empty())
            }
            "GetCart" => {
                let items = ctx
                    .state()
                    .iter()
                    .map(|i| api::LineItem {
                        product_id: i.product_id.clone(),
                        name: i.name.clone(),
                        quantity: i.quantity,
                    })
                    .collect();
                Ok(Reply::message(&api::Cart { items }))
            }
            other => Err(Failure::new(format!("unknown command {other}"))),
        }
    }
}
