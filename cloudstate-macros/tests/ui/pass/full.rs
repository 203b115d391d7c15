//! Every attribute, as a user writes them, and the wired trait methods called
//! at run time.

#[path = "../support.rs"]
mod support;

use support::*;

use shopping_cart::ShoppingCart as _;

struct CartEntity;

#[cloudstate_sdk::event_sourced]
impl shopping_cart::ShoppingCart for CartEntity {
    type State = Vec<LineItem>;

    fn initial_state(&self, _entity_id: &str) -> Self::State {
        Vec::new()
    }

    #[event_handler]
    fn added(&self, cart: &mut Self::State, event: &ItemAdded) {
        cart.push(LineItem {
            product_id: event.product_id.clone(),
            quantity: event.quantity,
        });
    }

    #[event_handler]
    fn removed(&self, cart: &mut Self::State, event: &persistence::ItemRemoved) {
        cart.retain(|item| item.product_id != event.product_id);
    }

    #[snapshot]
    fn to_snapshot(&self, cart: &Self::State) -> Cart {
        Cart {
            items: cart.clone(),
        }
    }

    #[snapshot_handler]
    fn from_snapshot(&self, _entity_id: &str, snapshot: Cart) -> Self::State {
        snapshot.items
    }

    #[command_handler(name = "AddItem")]
    fn add(
        &self,
        request: AddLineItem,
        _ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<()> {
        if request.quantity <= 0 {
            return Err(format!("cannot add {} items", request.quantity));
        }
        Ok(())
    }

    #[command_handler]
    fn get_cart(
        &self,
        _request: GetShoppingCart,
        ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<Cart> {
        Ok(self.to_snapshot(&self.from_snapshot(ctx.entity_id, Cart { items: Vec::new() })))
    }
}

fn main() {
    let entity = CartEntity;
    let mut state = entity.initial_state("cart");
    entity.on_item_added(
        &mut state,
        &ItemAdded {
            product_id: "apple".to_owned(),
            quantity: 2,
        },
    );
    entity.on_item_added(
        &mut state,
        &ItemAdded {
            product_id: "pear".to_owned(),
            quantity: 1,
        },
    );
    entity.on_item_removed(
        &mut state,
        &ItemRemoved {
            product_id: "apple".to_owned(),
        },
    );
    let snapshot = entity.snapshot(&state);
    assert_eq!(snapshot.items.len(), 1);
    assert_eq!(snapshot.items[0].product_id, "pear");
    assert_eq!(entity.restore("cart", snapshot.clone()), state);

    let mut ctx = shopping_cart::Context::new("cart");
    let bad = AddLineItem {
        product_id: "apple".to_owned(),
        quantity: 0,
    };
    assert_eq!(
        entity.add_item(bad, &mut ctx),
        Err("cannot add 0 items".to_owned())
    );
    assert_eq!(
        entity.get_cart(GetShoppingCart, &mut ctx),
        Ok(Cart { items: Vec::new() })
    );
}
