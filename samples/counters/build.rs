//! Generates the counters' messages, their typed CRDT entity traits and the
//! descriptor set. Each service fixes its CRDT here, so the traits' contexts
//! name it.

use cloudstate_build::Crdt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cloudstate_build::configure()
        .crdt(Crdt::new("com.example.counters.LikeCounter").state("GCounter"))
        .crdt(Crdt::new("com.example.counters.Scores").state("PNCounter"))
        .crdt(Crdt::new("com.example.counters.FeaturePoll").state("Vote"))
        .compile_protos(&["counters/counters.proto"], &["proto"])?;
    Ok(())
}
