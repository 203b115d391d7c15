//! Handler bodies work as they would in the trait impl: `Self::State` in
//! signatures, bodies and macro arguments, trait methods called on `self`
//! with the trait not imported. Handlers keep their docs, attributes and
//! visibility; `cfg` applies to the generated method too.

#[path = "../support.rs"]
mod support;

use support::*;

pub struct CartEntity;

#[cloudstate_sdk::event_sourced]
impl shopping_cart::ShoppingCart for CartEntity {
    type State = Vec<LineItem>;

    fn initial_state(&self, _entity_id: &str) -> Self::State {
        Vec::with_capacity(4)
    }

    /// Adds the line item, or to its quantity.
    #[event_handler]
    #[inline]
    pub fn added(&self, cart: &mut Self::State, event: &ItemAdded) {
        let fresh: Self::State = vec![LineItem {
            product_id: event.product_id.clone(),
            quantity: event.quantity,
        }];
        match cart
            .iter_mut()
            .find(|item| item.product_id == event.product_id)
        {
            Some(item) => item.quantity += event.quantity,
            None => cart.extend(fresh),
        }
    }

    #[cfg(not(any()))]
    #[event_handler]
    fn removed(&self, cart: &mut Self::State, event: &ItemRemoved) {
        cart.retain(|item| item.product_id != event.product_id);
    }

    #[cfg(any())]
    #[event_handler]
    fn removed_never(&self, _cart: &mut Self::State, _event: &ItemRemoved) {
        unreachable!()
    }

    #[snapshot]
    #[must_use]
    pub(crate) fn to_snapshot(&self, cart: &Self::State) -> Cart {
        let items: Vec<LineItem> = <Self::State as Clone>::clone(cart);
        Cart { items }
    }

    #[snapshot_handler]
    fn from_snapshot(&self, entity_id: &str, snapshot: Cart) -> Self::State {
        // A trait method, through `self`, with the trait not in scope here.
        let mut state = self.initial_state(entity_id);
        state.extend(snapshot.items);
        assert_eq!(state.len(), Self::State::len(&state));
        state
    }

    #[command_handler(name = "AddItem")]
    fn add(
        &self,
        AddLineItem {
            product_id,
            quantity,
        }: AddLineItem,
        _: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<()> {
        if product_id.is_empty() || quantity <= 0 {
            Err("bad line item".to_owned())
        } else {
            Ok(())
        }
    }

    #[command_handler]
    fn get_cart(
        &self,
        _request: GetShoppingCart,
        ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<Cart> {
        Ok(self.to_snapshot(&self.restore(ctx.entity_id, Cart { items: Vec::new() })))
    }
}

fn main() {
    use shopping_cart::ShoppingCart as _;

    let entity = CartEntity;
    let mut state = entity.initial_state("cart");
    let apple = ItemAdded {
        product_id: "apple".to_owned(),
        quantity: 2,
    };
    entity.on_item_added(&mut state, &apple);
    // `added` is public, and callable by its own name.
    entity.added(&mut state, &apple);
    assert_eq!(state[0].quantity, 4);
    entity.on_item_removed(
        &mut state,
        &ItemRemoved {
            product_id: "apple".to_owned(),
        },
    );
    assert!(state.is_empty());

    let mut ctx = shopping_cart::Context::new("cart");
    let request = AddLineItem {
        product_id: String::new(),
        quantity: 1,
    };
    assert!(entity.add_item(request, &mut ctx).is_err());
    assert_eq!(
        entity.get_cart(GetShoppingCart, &mut ctx),
        Ok(Cart { items: Vec::new() })
    );
}
