//! Handlers that disagree with the trait: rustc's errors, at the handlers' types.

#[path = "../support.rs"]
mod support;

use support::*;

struct CartEntity;

#[cloudstate_sdk::event_sourced]
impl shopping_cart::ShoppingCart for CartEntity {
    type State = ();

    fn initial_state(&self, _entity_id: &str) {}

    #[event_handler]
    fn added(&self, _state: &mut Vec<LineItem>, _event: &ItemAdded) {}

    #[event_handler]
    fn removed(&self, _state: &mut (), _event: &ItemRemoved) {}

    #[snapshot]
    fn to_snapshot(&self, _state: &()) -> Cart {
        Cart { items: Vec::new() }
    }

    #[snapshot_handler]
    fn from_snapshot(&self, _entity_id: &str, _snapshot: &Cart) {}

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
    ) -> CommandResult<Vec<LineItem>> {
        Ok(Vec::new())
    }
}

fn main() {}
