//! A value entity has no events: `#[event_handler]` is an error at the
//! attribute, naming `#[event_sourced]`, and nothing else is reported.

#[path = "../value_support.rs"]
mod support;

use support::*;

struct CartEntity;

#[cloudstate_sdk::value_entity]
impl value_cart::ValueCart for CartEntity {
    #[event_handler]
    fn added(&self, _state: &mut Cart, _event: &AddLineItem) {}

    #[command_handler(name = "AddItem")]
    fn add(
        &self,
        _request: AddLineItem,
        _ctx: &mut value_cart::Context<'_, Self>,
    ) -> CommandResult<()> {
        Ok(())
    }

    #[command_handler]
    fn get_cart(
        &self,
        _request: GetCart,
        _ctx: &mut value_cart::Context<'_, Self>,
    ) -> CommandResult<Cart> {
        Ok(Cart::default())
    }
}

fn main() {}
