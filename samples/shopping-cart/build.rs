//! Generates the cart's messages and descriptor set from its protos.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cloudstate_build::compile_protos(
        &[
            "shoppingcart/shoppingcart.proto",
            "shoppingcart/persistence/domain.proto",
        ],
        &["proto"],
    )?;
    Ok(())
}
