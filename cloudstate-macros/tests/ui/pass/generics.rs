//! An impl with generics and a where clause; the handlers' inherent impl
//! carries them.

#[path = "../support.rs"]
mod support;

use support::*;

use shopping_cart::ShoppingCart as _;

struct Counting<T> {
    step: T,
}

#[cloudstate_sdk::event_sourced]
impl<T> shopping_cart::ShoppingCart for Counting<T>
where
    T: Copy + Into<i64> + Send + Sync + 'static,
{
    type State = i64;

    fn initial_state(&self, _entity_id: &str) -> i64 {
        0
    }

    #[event_handler]
    fn added(&self, count: &mut Self::State, _event: &ItemAdded) {
        *count += self.step.into();
    }

    #[event_handler]
    fn removed(&self, count: &mut i64, _event: &ItemRemoved) {
        *count -= self.step.into();
    }

    #[snapshot]
    fn to_snapshot(&self, _count: &i64) -> Cart {
        Cart { items: Vec::new() }
    }

    #[snapshot_handler]
    fn from_snapshot(&self, _entity_id: &str, snapshot: Cart) -> i64 {
        snapshot
            .items
            .iter()
            .map(|item| i64::from(item.quantity))
            .sum()
    }

    #[command_handler(name = "AddItem")]
    fn add<'a>(
        &self,
        _request: AddLineItem,
        _ctx: &mut shopping_cart::Context<'a, Self>,
    ) -> CommandResult<()> {
        Ok(())
    }

    #[command_handler(name = "GetCart")]
    fn get(
        &self,
        _request: GetShoppingCart,
        _ctx: &mut shopping_cart::Context<'_, Self>,
    ) -> CommandResult<Cart> {
        Ok(Cart { items: Vec::new() })
    }
}

fn main() {
    let entity = Counting { step: 3u8 };
    let mut count = entity.initial_state("counter");
    let event = ItemAdded {
        product_id: "apple".to_owned(),
        quantity: 1,
    };
    entity.on_item_added(&mut count, &event);
    entity.on_item_added(&mut count, &event);
    assert_eq!(count, 6);
}
