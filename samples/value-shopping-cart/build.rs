//! Generates the cart's messages, its typed value-entity trait and its descriptor set.

use cloudstate_build::ValueEntity;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cloudstate_build::configure()
        .value_entity(ValueEntity::new(
            "com.example.valueentity.shoppingcart.ShoppingCart",
            "com.example.valueentity.shoppingcart.persistence.Cart",
        ))
        .compile_protos(
            &[
                "valueentity/shoppingcart/shoppingcart.proto",
                "valueentity/shoppingcart/persistence/domain.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
