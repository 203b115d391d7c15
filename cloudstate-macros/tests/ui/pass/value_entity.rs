//! `#[value_entity]`: a renamed command handler and one of the trait's own
//! name, called through the trait at run time.

#[path = "../value_support.rs"]
mod support;

use support::*;

use value_cart::ValueCart as _;

struct CartEntity;

#[cloudstate_sdk::value_entity]
impl value_cart::ValueCart for CartEntity {
    /// Implements `add_item`.
    #[command_handler(name = "AddItem")]
    fn add(
        &self,
        request: AddLineItem,
        ctx: &mut value_cart::Context<'_, Self>,
    ) -> CommandResult<()> {
        ctx.state.items.push((request.product_id, request.quantity));
        Ok(())
    }

    #[command_handler]
    fn get_cart(
        &self,
        _request: GetCart,
        ctx: &mut value_cart::Context<'_, Self>,
    ) -> CommandResult<Cart> {
        Ok(ctx.state.clone())
    }
}

fn main() {
    let mut ctx = value_cart::Context::new("cart-1");
    let request = AddLineItem {
        product_id: "apple".into(),
        quantity: 2,
    };
    CartEntity.add_item(request, &mut ctx).unwrap();
    let cart = CartEntity.get_cart(GetCart, &mut ctx).unwrap();
    assert_eq!(cart.items, [("apple".to_owned(), 2)]);
    // The handler stays callable by its own name.
    CartEntity
        .add(
            AddLineItem {
                product_id: "pear".into(),
                quantity: 1,
            },
            &mut ctx,
        )
        .unwrap();
    assert_eq!(ctx.state.items.len(), 2);
}
