//! The canonical Cloudstate shopping cart as an event-sourced entity.
//!
//! `build.rs` declares `ShoppingCart` an event-sourced entity; the generated
//! trait `shopping_cart::ShoppingCart` lists what to implement.

use cloudstate_sdk::{CloudState, CommandResult, EventSourcedOptions, Failure, done};

/// The generated messages, entity trait and descriptor set.
pub mod proto {
    cloudstate_sdk::include_protos!();
}

use proto::com::example::shoppingcart::{self as api, persistence as domain, shopping_cart};
use shopping_cart::Context;

/// Full name of the cart's gRPC service.
pub const SERVICE: &str = shopping_cart::SERVICE_NAME;

/// Registers the cart, snapshotting every `snapshot_every` events.
pub fn register(server: CloudState, snapshot_every: i64) -> CloudState {
    server.register(
        shopping_cart::Entity(ShoppingCart),
        EventSourcedOptions::new("shopping-cart").snapshot_every(snapshot_every),
    )
}

/// The requests the cart prints when it starts, with their answers; its
/// tests run them through the dev proxy.
#[cfg(feature = "devproxy")]
pub fn examples() -> Vec<cloudstate_devproxy::local::examples::Example> {
    use cloudstate_devproxy::local::examples::Example;
    vec![
        Example::post("/cart/alice/items/add")
            .json(r#"{"productId":"apple","name":"Apple","quantity":2}"#)
            .expect_json("{}"),
        Example::get("/carts/alice")
            .expect_json(r#"{"items":[{"productId":"apple","name":"Apple","quantity":2}]}"#),
        Example::post("/cart/alice/items/apple/remove").expect_json("{}"),
    ]
}

/// The cart's business logic. The state is the `Cart` message of the
/// persistence protos (declared in `build.rs`), its line items in the order
/// they were first added; it starts empty and is its own snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShoppingCart;

impl shopping_cart::ShoppingCart for ShoppingCart {
    fn add_item(&self, add: api::AddLineItem, ctx: &mut Context<'_, Self>) -> CommandResult<()> {
        if add.quantity <= 0 {
            let text = format!("Cannot add negative quantity of to item{}", add.product_id);
            return Err(Failure::new(text));
        }
        let item = domain::LineItem {
            product_id: add.product_id,
            name: add.name,
            quantity: add.quantity,
        };
        ctx.emit(domain::ItemAdded { item: Some(item) });
        done()
    }

    fn remove_item(
        &self,
        remove: api::RemoveLineItem,
        ctx: &mut Context<'_, Self>,
    ) -> CommandResult<()> {
        if !ctx
            .state()
            .items
            .iter()
            .any(|item| item.product_id == remove.product_id)
        {
            let text = format!(
                "Cannot remove item {} because it is not in the cart.",
                remove.product_id
            );
            return Err(Failure::new(text));
        }
        ctx.emit(domain::ItemRemoved {
            product_id: remove.product_id,
        });
        done()
    }

    fn get_cart(
        &self,
        _: api::GetShoppingCart,
        ctx: &mut Context<'_, Self>,
    ) -> CommandResult<api::Cart> {
        let items = ctx.state().items.iter().map(|i| api::LineItem {
            product_id: i.product_id.clone(),
            name: i.name.clone(),
            quantity: i.quantity,
        });
        Ok(api::Cart {
            items: items.collect(),
        }
        .into())
    }

    fn on_item_added(&self, cart: &mut domain::Cart, added: &domain::ItemAdded) {
        let absent = domain::LineItem::default();
        let item = added.item.as_ref().unwrap_or(&absent);
        // A copy only for a new line: replaying a journal mostly adds to one.
        match cart
            .items
            .iter_mut()
            .find(|i| i.product_id == item.product_id)
        {
            Some(existing) => existing.quantity += item.quantity,
            None => cart.items.push(item.clone()),
        }
    }

    fn on_item_removed(&self, cart: &mut domain::Cart, removed: &domain::ItemRemoved) {
        cart.items
            .retain(|item| item.product_id != removed.product_id);
    }
}
