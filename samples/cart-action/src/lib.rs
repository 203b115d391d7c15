//! An action in front of the shopping cart: `AddCheckedItem` checks the
//! product against a catalog and forwards to the cart's `AddItem`; `Catalog`
//! streams the products. The user function serves both the action and the
//! cart, as forwards go to services of the same user function.

use cloudstate_sdk::action::BoxStream;
use cloudstate_sdk::{ActionContext, ActionOptions, ActionReply, ActionResult, CloudState};

/// The generated messages, action trait and descriptor set.
pub mod proto {
    cloudstate_sdk::include_protos!();
}

use proto::com::example::cartaction::{Product, cart_action};
use proto::com::example::shoppingcart::{AddLineItem, shopping_cart};

/// Registers the action and the cart it fronts.
pub fn register(server: CloudState) -> CloudState {
    ::shopping_cart::register(server, 5).register(
        cart_action::Action(CartAction::default()),
        ActionOptions::new(),
    )
}

/// The action, with its catalog.
#[derive(Debug, Clone)]
pub struct CartAction {
    catalog: Vec<Product>,
}

impl Default for CartAction {
    fn default() -> Self {
        let product = |id: &str, name: &str, max_quantity| Product {
            product_id: id.into(),
            name: name.into(),
            max_quantity,
        };
        Self {
            catalog: vec![
                product("apple", "Apple", 10),
                product("pear", "Pear", 5),
                product("fig", "Fig", 2),
            ],
        }
    }
}

impl cart_action::CartAction for CartAction {
    async fn add_checked_item(&self, item: AddLineItem, _: ActionContext) -> ActionResult<()> {
        let Some(product) = self
            .catalog
            .iter()
            .find(|p| p.product_id == item.product_id)
        else {
            return Ok(ActionReply::failure(format!(
                "Unknown product {}",
                item.product_id
            )));
        };
        if item.quantity > product.max_quantity {
            let text = format!(
                "At most {} of {} per cart",
                product.max_quantity, product.name
            );
            return Ok(ActionReply::failure(text));
        }
        Ok(ActionReply::forward(shopping_cart::add_item(&item)))
    }

    fn catalog(&self, _: (), _: ActionContext) -> BoxStream<'static, ActionResult<Product>> {
        let products = self
            .catalog
            .clone()
            .into_iter()
            .map(|p| Ok(ActionReply::message(p)));
        Box::pin(futures_util::stream::iter(products))
    }
}
