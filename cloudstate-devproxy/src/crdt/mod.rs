//! CRDT entities in the dev proxy: the proxy's own copy of each CRDT.

pub(crate) mod state;
