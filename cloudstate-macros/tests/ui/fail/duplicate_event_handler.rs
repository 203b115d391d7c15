//! Two handlers of one event type, however its path is written.

#[path = "../support.rs"]
mod support;

use support::*;

struct CartEntity;

#[cloudstate_sdk::event_sourced]
impl shopping_cart::ShoppingCart for CartEntity {
    type State = ();

    fn initial_state(&self, _entity_id: &str) {}

    #[event_handler]
    fn added(&self, _state: &mut (), _event: &ItemAdded) {}

    #[event_handler]
    fn removed(&self, _state: &mut (), _event: &ItemRemoved) {}

    #[event_handler]
    fn added_again(&self, _state: &mut (), _event: &persistence::ItemAdded) {}

    #[snapshot]
    fn to_snapshot(&self, _state: &()) -> Cart {
        Cart { items: Vec::new() }
    }

    #[snapshot_handler]
    fn from_snapshot(&self, _entity_id: &str, _snapshot: Cart) {}

    #[command_handler(name = "AddItem")]
    fn add(
        &self,
        _request: AddLineItem,
        _ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<()> {
        Ok(())
    }

    #[command_handler(name = "GetCart")]
    fn get(
        &self,
        _request: GetShoppingCart,
        _ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<Cart> {
        Ok(Cart { items: Vec::new() })
    }
}

fn main() {}
