//! Handlers named as the trait's methods, attributed or not, and handlers
//! in the trait impl's own order with plain methods between them.

#[path = "../support.rs"]
mod support;

use support::*;

use shopping_cart::ShoppingCart;

struct CartEntity;

#[cloudstate_sdk::event_sourced]
impl ShoppingCart for CartEntity {
    type State = Vec<String>;

    #[event_handler]
    fn on_item_added(&self, state: &mut Vec<String>, event: &ItemAdded) {
        state.push(event.product_id.clone());
    }

    fn initial_state(&self, _entity_id: &str) -> Self::State {
        Vec::new()
    }

    #[event_handler]
    fn on_item_removed(&self, state: &mut Self::State, event: &ItemRemoved) {
        state.retain(|id| *id != event.product_id);
    }

    #[snapshot]
    fn snapshot(&self, _state: &Self::State) -> Cart {
        Cart { items: Vec::new() }
    }

    fn restore(&self, _entity_id: &str, _snapshot: Cart) -> Self::State {
        Vec::new()
    }

    #[command_handler(name = "add_item")]
    fn add_item(
        &self,
        _request: AddLineItem,
        _ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<()> {
        Ok(())
    }

    #[command_handler]
    fn get_cart(
        &self,
        _request: GetShoppingCart,
        _ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<Cart> {
        Ok(Cart { items: Vec::new() })
    }
}

fn main() {
    let mut state = Vec::new();
    // Through the trait, and through the inherent method of the same name.
    ShoppingCart::on_item_added(
        &CartEntity,
        &mut state,
        &ItemAdded {
            product_id: "apple".to_owned(),
            quantity: 1,
        },
    );
    CartEntity.on_item_added(
        &mut state,
        &ItemAdded {
            product_id: "pear".to_owned(),
            quantity: 1,
        },
    );
    ShoppingCart::on_item_removed(
        &CartEntity,
        &mut state,
        &ItemRemoved {
            product_id: "apple".to_owned(),
        },
    );
    assert_eq!(state, ["pear"]);
}
