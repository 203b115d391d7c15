//! Cloudstate user functions in Rust.
//!
//! A [Cloudstate](https://cloudstate.io) proxy owns state, persistence and
//! sharding; this crate is the other side of its gRPC protocol. Register your
//! entities with [`CloudState`] and serve:
//!
//! ```no_run
//! use cloudstate_sdk::{CloudState, EventSourcedOptions};
//! # fn register(c: CloudState) -> CloudState { c }
//! #[tokio::main]
//! async fn main() -> Result<(), cloudstate_sdk::Error> {
//!     let server = CloudState::new().service_name(env!("CARGO_PKG_NAME"));
//!     register(server).serve().await
//! }
//! ```
//!
//! * [`action`](mod@action): stateless functions, unary or streaming.
//! * [`crdt`](mod@crdt): replicated values (counters, sets, registers, maps, votes).
//! * [`eventsourced`]: entities rebuilt from a journal of events.
//! * [`valueentity`]: entities whose whole state the proxy stores.
//! * [`metadata`]: metadata of commands and replies, CloudEvent attributes.
//! * [`payload`]: `Any` payloads, primitives, JSON and type URLs.
//! * [`prost_types`]: the protobuf well-known types (`Timestamp`, `Duration`, ...).
//! * [`protocol`]: the generated Cloudstate protocol (messages, server and client stubs).
//!
//! Generated messages are [prost](https://docs.rs/prost) messages of the
//! `prost` version this crate re-exports as [`prost`], and name the
//! well-known types as [`prost_types`] does: a crate that uses them (to call
//! `Message::encode_to_vec`, say, or to name `prost_types::Timestamp`) needs
//! no prost dependency of its own.
//!
//! # Features
//! * `json` (default): JSON payloads through serde (`payload::Json`).
//! * `testkit`: a proxy-role protocol driver and message builders for
//!   conformance tests (the `testkit` module).

pub mod action;
mod codec;
pub mod connections;
pub mod crdt;
mod descriptors;
mod discovery;
mod effect;
mod entity;
mod error;
pub mod eventsourced;
// With `testkit`: an in-process entry to the stream driver for the fuzz
// targets in `fuzz/` and their regression tests; not a public API.
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod fuzzing;
pub mod metadata;
pub mod payload;
pub mod prost_types;
mod server;
mod stream;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod valueentity;

/// The Cloudstate protocol, generated from the protos in `proto/`: messages,
/// and server and client stubs of every protocol service.
#[allow(
    missing_docs,
    unreachable_pub,
    non_camel_case_types,
    clippy::all,
    clippy::pedantic,
    rustdoc::all
)]
pub mod protocol {
    include!(concat!(env!("OUT_DIR"), "/protocol.rs"));
}

pub use action::{
    ActionContext, ActionHandler, ActionMessage, ActionOptions, ActionReply, ActionResult,
};
pub use cloudstate_macros::event_sourced;
pub use cloudstate_macros::{action, value_entity};
// In the macro namespace, next to the `crdt` module: `#[cloudstate_sdk::crdt]`
// is the attribute, `cloudstate_sdk::crdt::GCounter` a type of the module.
pub use cloudstate_macros::crdt;
pub use crdt::{CrdtEntity, CrdtOptions};
pub use effect::{CommandResult, Failure, Metadata, Reply, ServiceCall, TypedCall, done};
pub use error::Error;
pub use eventsourced::{
    Command, CommandContext, EventCodec, EventSourcedEntity, EventSourcedOptions,
};
pub use payload::{Any, Payload, PayloadError};
/// The prost version of the generated messages.
pub use prost;
pub use server::{
    CloudState, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_REPLY_SIZE, PROTOCOL_VERSION,
    SUPPORT_LIBRARY_NAME, entity_type, listen_address, shutdown_signal,
};
pub use valueentity::{ValueContext, ValueEntity, ValueEntityOptions};

/// Logs to standard error with the filter in `RUST_LOG` (default `info`),
/// unless the program already set a log subscriber.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Includes the code `cloudstate-build` generated in `build.rs`: a module per
/// proto package and `FILE_DESCRIPTOR_SET`.
///
/// Use it as the body of a module, e.g. `mod proto { cloudstate_sdk::include_protos!(); }`.
/// The generated modules allow the lints that generated code would trip
/// (`missing_docs`, `unreachable_pub`, `clippy::pedantic`, ...), so the
/// module needs no `#[allow]` of its own.
#[macro_export]
macro_rules! include_protos {
    () => {
        include!(concat!(env!("OUT_DIR"), "/cloudstate_protos.rs"));
    };
}

/// A service that registers itself: what generated code implements, so a
/// user writes `CloudState::new().register(entity, options)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a registrable Cloudstate service",
    label = "expected a generated service wrapper",
    note = "wrap your implementation of the generated trait: `register(<service module>::Entity(handlers), options)`"
)]
pub trait Service: Sized {
    /// The registration options of this kind of service.
    type Options;
    /// Adds this service (and its descriptors) to `server`.
    fn register(self, server: CloudState, options: Self::Options) -> CloudState;
}

impl CloudState {
    /// Registers a generated service; see [`Service`].
    #[must_use]
    pub fn register<S: Service>(self, service: S, options: S::Options) -> Self {
        service.register(self, options)
    }
}

/// What generated code and macros use; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::action::{
        ActionContext, ActionHandler, ActionMessage, ActionOptions, ActionReply, ActionResult,
        BoxFuture, BoxStream,
    };
    pub use crate::crdt::{CrdtContext, CrdtEntity, CrdtOptions, CrdtType, StreamedContext};
    pub use crate::effect::{CommandResult, Failure, Reply, ServiceCall, TypedCall};
    pub use crate::eventsourced::{
        Command, CommandContext, EventCodec, EventSourcedEntity, EventSourcedOptions,
    };
    #[cfg(feature = "json")]
    pub use crate::payload::json::{from_any as json_from_any, to_any as json_to_any};
    pub use crate::payload::{
        Any, JSON_PREFIX, Payload, PayloadError, decode, decode_as, empty, encode, type_name,
    };
    pub use crate::valueentity::{ValueContext, ValueEntity, ValueEntityOptions};
    pub use crate::{CloudState, Service};
    pub use futures_util::{FutureExt, StreamExt, stream};
    // Generated messages derive through this (prost-build's `prost_path`),
    // so the user's crate needs no prost dependency; well-known types go
    // through the public `crate::prost_types`.
    pub use ::prost;

    /// The failure for an action call the generated dispatch does not know,
    /// by call shape (`unary`, `streamed-in`, ...).
    pub fn unhandled_action(ctx: &ActionContext, shape: &str) -> Failure {
        Failure::new(format!(
            "No {shape} handler found for command [{}] of action [{}]",
            ctx.command_name(),
            ctx.service_name()
        ))
    }

    /// A response stream of one failure.
    pub fn once_failure(failure: Failure) -> BoxStream<'static, ActionResult> {
        StreamExt::boxed(stream::once(async move { Err(failure) }))
    }

    /// The failure for a command the generated dispatch does not know.
    pub fn unhandled_command(command: &Command<'_>) -> Failure {
        Failure::new(format!(
            "No command handler found for command [{}] on entity [{}]",
            command.name(),
            command.entity_id()
        ))
    }
}
