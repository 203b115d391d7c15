//! Generates the TCK model messages and descriptor set.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cloudstate_build::compile_protos(
        &[
            "cloudstate/tck/model/eventsourced.proto",
            "cloudstate/tck/model/valueentity.proto",
            "cloudstate/tck/model/action.proto",
            "cloudstate/tck/model/crdt.proto",
            "cloudstate/tck/model/eventlogeventing.proto",
        ],
        &["proto"],
    )?;
    Ok(())
}
