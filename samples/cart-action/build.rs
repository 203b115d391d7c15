//! Generates the action's trait, its messages and the descriptor set.

use cloudstate_build::Action;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cloudstate_build::configure()
        .action(Action::new("com.example.cartaction.CartAction"))
        .compile_protos(
            &["cartaction/cart_action.proto"],
            &["proto", "../shopping-cart/proto"],
        )?;
    Ok(())
}
