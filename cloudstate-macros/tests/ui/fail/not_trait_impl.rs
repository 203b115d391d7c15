#[path = "../support.rs"]
mod support;

use support::*;

struct CartEntity;

#[cloudstate_sdk::event_sourced]
impl CartEntity {
    #[event_handler]
    fn added(&self, _cart: &mut Vec<LineItem>, _event: &ItemAdded) {}
}

fn main() {
    let _ = CartEntity::added;
}
