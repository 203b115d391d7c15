//! A hand-written stand-in for what `cloudstate-build` generates for the
//! CRDT service `example.presence.Presence`: `type State`, `initial_state`,
//! one unary and one server-streaming rpc. Tests include it with `#[path]`.

#![allow(dead_code, unused_imports, unreachable_pub)]

pub use cloudstate_sdk::{CommandResult, Failure, Reply};

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Connect {
    pub name: String,
    pub devices: u64,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Online {
    pub connections: u64,
}

/// Stands in for the SDK's CRDT context.
pub struct CrdtContext<'a, C> {
    pub entity_id: &'a str,
    pub state: C,
}

impl<'a, C> CrdtContext<'a, C> {
    pub fn new(entity_id: &'a str, state: C) -> Self {
        CrdtContext { entity_id, state }
    }
}

/// Stands in for the SDK's context of a streamed command.
pub struct StreamedContext<'a, 'b, C, R> {
    pub inner: &'b mut CrdtContext<'a, C>,
    pub subscribed: bool,
    reply: ::core::marker::PhantomData<fn() -> R>,
}

impl<'a, 'b, C, R> StreamedContext<'a, 'b, C, R> {
    pub fn new(inner: &'b mut CrdtContext<'a, C>) -> Self {
        StreamedContext {
            inner,
            subscribed: false,
            reply: ::core::marker::PhantomData,
        }
    }
}

/// The service module.
pub mod presence {
    use super::{CommandResult, Connect, Failure, Online, Reply, User};

    /// As generated: the context of the CRDT of the handler type `T`.
    pub type Context<'a, T> = super::CrdtContext<'a, <T as Presence>::State>;
    /// As generated: the context of a server-streaming rpc replying `R`.
    pub type StreamContext<'a, 'b, T, R> =
        super::StreamedContext<'a, 'b, <T as Presence>::State, R>;

    /// The trait, in the shape `cloudstate-build` generates.
    pub trait Presence: Send + Sync + Sized + 'static {
        type State;
        fn initial_state(&self, entity_id: &str) -> Self::State;
        fn connect(&self, request: Connect, ctx: &mut Context<'_, Self>) -> CommandResult<Online>;
        fn watch(
            &self,
            request: User,
            ctx: &mut StreamContext<'_, '_, Self, Online>,
        ) -> Result<Option<Reply<Online>>, Failure>;
    }
}
