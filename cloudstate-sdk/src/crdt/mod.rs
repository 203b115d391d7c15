//! CRDT entities: replicated values the proxy merges across nodes.

mod types;

pub use types::*;
