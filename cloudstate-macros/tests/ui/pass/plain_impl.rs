//! Without handler attributes the impl passes through unchanged, and the
//! `crate` argument is accepted.

#[path = "../support.rs"]
mod support;

use support::*;

struct CartEntity;

#[cloudstate_sdk::event_sourced(crate = "::cloudstate_sdk")]
impl shopping_cart::ShoppingCart for CartEntity {
    type State = u32;

    fn initial_state(&self, _entity_id: &str) -> u32 {
        0
    }

    fn on_item_added(&self, state: &mut u32, _event: &ItemAdded) {
        *state += 1;
    }

    fn on_item_removed(&self, state: &mut u32, _event: &ItemRemoved) {
        *state -= 1;
    }

    fn snapshot(&self, _state: &u32) -> Cart {
        Cart { items: Vec::new() }
    }

    fn restore(&self, _entity_id: &str, _snapshot: Cart) -> u32 {
        0
    }

    fn add_item(
        &self,
        _request: AddLineItem,
        _ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<()> {
        Ok(())
    }

    fn get_cart(
        &self,
        _request: GetShoppingCart,
        _ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<Cart> {
        Ok(Cart { items: Vec::new() })
    }
}

fn main() {
    use shopping_cart::ShoppingCart as _;
    let mut state = CartEntity.initial_state("cart");
    CartEntity.on_item_added(
        &mut state,
        &ItemAdded {
            product_id: "apple".to_owned(),
            quantity: 1,
        },
    );
    assert_eq!(state, 1);
}
