//! Arguments that the method attributes do not take, all reported at once.

#[path = "../support.rs"]
mod support;

use support::*;

struct CartEntity;

#[cloudstate_sdk::event_sourced]
impl shopping_cart::ShoppingCart for CartEntity {
    type State = ();

    fn initial_state(&self, _entity_id: &str) {}

    #[event_handler(ItemAdded)]
    fn added(&self, _state: &mut (), _event: &ItemAdded) {}

    #[event_handler]
    fn removed(&self, _state: &mut (), _event: &ItemRemoved) {}

    #[snapshot = "cart"]
    fn to_snapshot(&self, _state: &()) -> Cart {
        Cart { items: Vec::new() }
    }

    #[snapshot_handler]
    fn from_snapshot(&self, _entity_id: &str, _snapshot: Cart) {}

    #[command_handler(name = 3)]
    fn add(
        &self,
        _request: AddLineItem,
        _ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<()> {
        Ok(())
    }

    #[command_handler(rpc = "GetCart", name = "GetCart", name = "Get")]
    fn get(
        &self,
        _request: GetShoppingCart,
        _ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<Cart> {
        Ok(Cart { items: Vec::new() })
    }
}

fn main() {}
