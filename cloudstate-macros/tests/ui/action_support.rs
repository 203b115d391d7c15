//! A hand-written stand-in for what `cloudstate-build` generates for the
//! action `example.greeter.Greeter` (see `cloudstate-build`'s golden
//! `example.greeter.rs`): one trait method per rpc, futures for unary and
//! streamed-in rpcs, streams for streamed-out and bidirectional ones. Tests
//! include it with `#[path]`.

#![allow(dead_code, unused_imports, unreachable_pub)]

pub use ::cloudstate_sdk::__private::{BoxStream, Failure};

#[derive(Clone, Debug, PartialEq)]
pub struct Greet {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Greeting {
    pub message: String,
}

/// Stands in for `::cloudstate_sdk::ActionResult`.
pub type ActionResult<T> = Result<T, String>;

/// Stands in for `::cloudstate_sdk::ActionContext`.
#[derive(Clone, Debug, Default)]
pub struct ActionContext {
    pub command_name: String,
}

/// The service module.
pub mod greeter {
    use super::{ActionContext, ActionResult, BoxStream, Failure, Greet, Greeting};

    /// The trait, in the shape `cloudstate-build` generates.
    pub trait Greeter:
        ::core::marker::Send + ::core::marker::Sync + ::core::marker::Sized + 'static
    {
        fn hello(
            &self,
            request: Greet,
            ctx: ActionContext,
        ) -> impl ::core::future::Future<Output = ActionResult<Greeting>> + ::core::marker::Send;
        fn hello_all(
            &self,
            requests: BoxStream<'static, ::core::result::Result<Greet, Failure>>,
            ctx: ActionContext,
        ) -> impl ::core::future::Future<Output = ActionResult<Greeting>> + ::core::marker::Send;
        fn spell(
            &self,
            request: Greet,
            ctx: ActionContext,
        ) -> BoxStream<'static, ActionResult<Greeting>>;
        fn chat(
            &self,
            requests: BoxStream<'static, ::core::result::Result<Greet, Failure>>,
            ctx: ActionContext,
        ) -> BoxStream<'static, ActionResult<Greeting>>;
        fn ping(
            &self,
            request: (),
            ctx: ActionContext,
        ) -> impl ::core::future::Future<Output = ActionResult<()>> + ::core::marker::Send;
    }
}
