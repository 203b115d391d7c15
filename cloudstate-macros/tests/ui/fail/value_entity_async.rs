//! Value entity handlers are synchronous.

#[path = "../value_support.rs"]
mod support;

use support::*;

struct CartEntity;

#[cloudstate_sdk::value_entity]
impl value_cart::ValueCart for CartEntity {
    #[command_handler(name = "AddItem")]
    async fn add(
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
