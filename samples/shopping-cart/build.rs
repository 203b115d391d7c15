//! Generates the cart's messages, its typed entity trait and its descriptor set.

use cloudstate_build::EventSourced;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cloudstate_build::configure()
        .event_sourced(
            EventSourced::new("com.example.shoppingcart.ShoppingCart")
                .events([
                    "com.example.shoppingcart.persistence.ItemAdded",
                    "com.example.shoppingcart.persistence.ItemRemoved",
                ])
                // The state is the `Cart` message, snapshotted as it is: the
                // generated `initial_state`, `snapshot` and `restore` do.
                .state("com.example.shoppingcart.persistence.Cart")
                .snapshot("com.example.shoppingcart.persistence.Cart"),
        )
        .compile_protos(
            &[
                "shoppingcart/shoppingcart.proto",
                "shoppingcart/persistence/domain.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
