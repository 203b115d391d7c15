//! The trait methods that `#[event_sourced]` generates call the user's
//! handlers.

#[path = "ui/support.rs"]
mod support;

use std::sync::Mutex;

use shopping_cart::{Context, ShoppingCart};
use support::*;

/// Records which of its handlers ran.
#[derive(Default)]
struct CartEntity {
    calls: Mutex<Vec<&'static str>>,
}

impl CartEntity {
    fn record(&self, handler: &'static str) {
        self.calls.lock().unwrap().push(handler);
    }

    fn calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

#[cloudstate_sdk::event_sourced]
impl ShoppingCart for CartEntity {
    type State = Vec<LineItem>;

    fn initial_state(&self, _entity_id: &str) -> Self::State {
        self.record("initial_state");
        Vec::new()
    }

    #[event_handler]
    fn added(&self, cart: &mut Self::State, event: &ItemAdded) {
        self.record("added");
        cart.push(LineItem {
            product_id: event.product_id.clone(),
            quantity: event.quantity,
        });
    }

    #[event_handler]
    fn removed(&self, cart: &mut Self::State, event: &persistence::ItemRemoved) {
        self.record("removed");
        cart.retain(|item| item.product_id != event.product_id);
    }

    #[snapshot]
    fn to_snapshot(&self, cart: &Self::State) -> Cart {
        self.record("to_snapshot");
        Cart {
            items: cart.clone(),
        }
    }

    #[snapshot_handler]
    fn from_snapshot(&self, entity_id: &str, snapshot: Cart) -> Self::State {
        self.record("from_snapshot");
        let mut cart = self.initial_state(entity_id);
        cart.extend(snapshot.items);
        cart
    }

    #[command_handler(name = "AddItem")]
    fn add(&self, request: AddLineItem, ctx: &mut Context<'_, Self>) -> CommandResult<()> {
        self.record("add");
        if request.quantity <= 0 {
            return Err(format!(
                "{}: cannot add {} of {}",
                ctx.entity_id, request.quantity, request.product_id
            ));
        }
        Ok(())
    }

    #[command_handler]
    fn get_cart(
        &self,
        _request: GetShoppingCart,
        _ctx: &mut Context<'_, Self>,
    ) -> CommandResult<Cart> {
        self.record("get_cart");
        Ok(Cart { items: Vec::new() })
    }
}

fn apple(quantity: i32) -> ItemAdded {
    ItemAdded {
        product_id: "apple".to_owned(),
        quantity,
    }
}

#[test]
fn event_handlers_are_wired_by_event_type() {
    let entity = CartEntity::default();
    let mut state = entity.initial_state("cart");
    entity.on_item_added(&mut state, &apple(2));
    assert_eq!(entity.calls(), ["initial_state", "added"]);
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].quantity, 2);

    entity.on_item_removed(
        &mut state,
        &ItemRemoved {
            product_id: "apple".to_owned(),
        },
    );
    assert_eq!(entity.calls(), ["removed"]);
    assert!(state.is_empty());
}

#[test]
fn snapshot_methods_are_wired() {
    let entity = CartEntity::default();
    let mut state = Vec::new();
    entity.on_item_added(&mut state, &apple(3));
    let snapshot = entity.snapshot(&state);
    let restored = entity.restore("cart", snapshot.clone());
    assert_eq!(
        entity.calls(),
        ["added", "to_snapshot", "from_snapshot", "initial_state"]
    );
    assert_eq!(snapshot.items, state);
    assert_eq!(restored, state);
}

#[test]
fn command_handlers_are_wired_by_rpc_name() {
    let entity = CartEntity::default();
    let mut ctx = Context::new("cart-7");
    let request = AddLineItem {
        product_id: "apple".to_owned(),
        quantity: 0,
    };
    assert_eq!(
        entity.add_item(request, &mut ctx),
        Err("cart-7: cannot add 0 of apple".to_owned())
    );
    assert_eq!(
        entity.get_cart(GetShoppingCart, &mut ctx),
        Ok(Cart { items: Vec::new() })
    );
    assert_eq!(entity.calls(), ["add", "get_cart"]);
}

#[test]
fn handlers_keep_their_own_names() {
    let entity = CartEntity::default();
    let mut state = Vec::new();
    entity.added(&mut state, &apple(1));
    assert_eq!(entity.to_snapshot(&state).items, state);
    assert_eq!(entity.calls(), ["added", "to_snapshot"]);
}
