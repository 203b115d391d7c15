//! Generates the analytics action's trait, the read model's value-entity
//! trait, their messages and the descriptor set. The cart's protos come from
//! the shopping-cart sample: the action takes its domain events as input.

use cloudstate_build::{Action, ValueEntity};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cloudstate_build::configure()
        // The cart's entity is generated and registered by the shopping-cart crate.
        .external_event_log("shopping-cart")
        .action(Action::new("com.example.cartanalytics.CartAnalytics"))
        .value_entity(ValueEntity::new(
            "com.example.cartanalytics.TopProducts",
            "com.example.cartanalytics.persistence.Board",
        ))
        .compile_protos(
            &[
                "cartanalytics/analytics.proto",
                "cartanalytics/persistence/board.proto",
            ],
            &["proto", "../shopping-cart/proto"],
        )?;
    Ok(())
}
