#[path = "../support.rs"]
mod support;

use support::*;

struct CartEntity;

#[cloudstate_sdk::event_sourced(entity = "cart", crate = 3)]
impl shopping_cart::ShoppingCart for CartEntity {
    type State = ();

    fn initial_state(&self, _entity_id: &str) {}

    #[event_handler]
    fn added(&self, _state: &mut (), _event: &ItemAdded) {}

    #[event_handler]
    fn removed(&self, _state: &mut (), _event: &ItemRemoved) {}

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
