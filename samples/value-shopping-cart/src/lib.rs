//! The Cloudstate shopping cart as a value entity: the proxy stores the whole
//! cart, and each command reads it and writes it back.

use cloudstate_sdk::{CloudState, CommandResult, Failure, ValueEntityOptions, done};

/// The generated messages, entity trait and descriptor set.
pub mod proto {
    cloudstate_sdk::include_protos!();
}

use proto::com::example::valueentity::shoppingcart::{
    self as api, persistence as domain, shopping_cart,
};
use shopping_cart::Context;

/// Full name of the cart's gRPC service.
pub const SERVICE: &str = shopping_cart::SERVICE_NAME;

/// Registers the cart.
pub fn register(server: CloudState) -> CloudState {
    server.register(
        shopping_cart::Entity(ShoppingCart),
        ValueEntityOptions::new("value-shopping-cart"),
    )
}

/// The cart's business logic. Items are kept sorted by product id.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShoppingCart;

impl shopping_cart::ShoppingCart for ShoppingCart {
    fn add_item(&self, add: api::AddLineItem, ctx: &mut Context<'_, Self>) -> CommandResult<()> {
        if add.quantity <= 0 {
            return Err(Failure::new(format!(
                "Cannot add negative quantity of to item {}",
                add.product_id
            )));
        }
        let mut items = items(ctx);
        match items.iter_mut().find(|i| i.product_id == add.product_id) {
            Some(item) => item.quantity += add.quantity,
            None => items.push(domain::LineItem {
                product_id: add.product_id,
                name: add.name,
                quantity: add.quantity,
            }),
        }
        items.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        ctx.update(domain::Cart { items });
        done()
    }

    fn remove_item(
        &self,
        remove: api::RemoveLineItem,
        ctx: &mut Context<'_, Self>,
    ) -> CommandResult<()> {
        let mut items = items(ctx);
        if !items.iter().any(|i| i.product_id == remove.product_id) {
            let text = format!(
                "Cannot remove item {} because it is not in the cart.",
                remove.product_id
            );
            return Err(Failure::new(text));
        }
        items.retain(|i| i.product_id != remove.product_id);
        ctx.update(domain::Cart { items });
        done()
    }

    fn get_cart(
        &self,
        _: api::GetShoppingCart,
        ctx: &mut Context<'_, Self>,
    ) -> CommandResult<api::Cart> {
        let items = items(ctx).into_iter().map(|i| api::LineItem {
            product_id: i.product_id,
            name: i.name,
            quantity: i.quantity,
        });
        Ok(api::Cart {
            items: items.collect(),
        }
        .into())
    }

    fn remove_cart(
        &self,
        _: api::RemoveShoppingCart,
        ctx: &mut Context<'_, Self>,
    ) -> CommandResult<()> {
        ctx.delete();
        done()
    }
}

/// The stored items, or none for a new cart.
fn items(ctx: &Context<'_, ShoppingCart>) -> Vec<domain::LineItem> {
    ctx.state()
        .map(|cart| cart.items.clone())
        .unwrap_or_default()
}
