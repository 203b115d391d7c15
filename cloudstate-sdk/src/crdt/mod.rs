//! CRDT entities: replicated values the proxy merges across nodes.
//!
//! Each entity instance holds a local copy of one CRDT ([`GCounter`],
//! [`PNCounter`], [`GSet`], [`ORSet`], [`LWWRegister`], [`Flag`], [`ORMap`],
//! [`Vote`], or [`Crdt`] when the type is chosen at run time). A command
//! changes it through [`CrdtContext::state_mut`]; the runtime sends the
//! change to the proxy as a delta with the reply, and applies the deltas the
//! proxy sends from other replicas. Streamed commands (server-streaming
//! methods) subscribe to changes with [`CrdtContext::on_change`] and
//! [`CrdtContext::on_cancel`].
//!
//! Implement [`CrdtEntity`] (generated code does it for you from a
//! `.proto`), then register it with [`CloudState::crdt`](crate::CloudState::crdt).

mod entity;
pub(crate) mod runtime;
mod types;

pub use entity::{
    CancelContext, ChangeContext, CrdtContext, CrdtEntity, CrdtOptions, StreamedContext,
};
pub use types::*;
