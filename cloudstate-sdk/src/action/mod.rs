//! Actions: stateless functions. Every gRPC call the proxy makes is one
//! invocation, in one of four shapes: unary, streamed in (many requests, one
//! response), streamed out (one request, many responses) and streamed both
//! ways. There is no entity, no id and no state.
//!
//! Implement [`ActionHandler`] (generated code does it for you from a
//! `.proto`: declare the service with `cloudstate_build::Action`), then
//! register it with [`CloudState::action`](crate::CloudState::action).
//!
//! # Responses
//! Every call (or, when the output streams, every element) is answered with an
//! [`ActionReply`]: a message, a forward, a failure or no reply at all, plus
//! side effects. Unlike entity commands, an action failure keeps its side
//! effects: the proxy performs them and then fails the caller. A handler may
//! also return `Err(Failure)` (e.g. with `?`), a failure without effects of
//! its own.
//!
//! Side effects added through [`ActionContext::effect`] go out with the next
//! response the call sends, before that response's own effects.
//!
//! # Errors, panics and cancellation
//! A panic in a handler answers the call with a failure with a generic
//! description; the panic is logged. A client that cancels a call drops the
//! handler's future or stream: it simply stops, nothing is logged as an error.
//! A graceful server shutdown ends the input of open bidirectional calls, so
//! they finish their pending responses and complete with OK.

pub(crate) mod runtime;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

pub(crate) use runtime::ActionService;

use crate::effect::{Failure, Metadata, Reply, ServiceCall};
use crate::payload::{self, Any};
use crate::protocol::cloudstate as pb;

pub use futures_util::stream::BoxStream;

/// A boxed, sendable future, as [`ActionHandler`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of an action: a response, or a failure without side effects
/// of its own.
pub type ActionResult<T = Any> = Result<ActionReply<T>, Failure>;

/// The low-level interface of an action service: one method per call shape,
/// each routed by [`ActionContext::command_name`].
///
/// The methods take `self: Arc<Self>` so that the futures and streams they
/// return can own the handler (`'static`).
///
/// ```
/// use std::sync::Arc;
/// use cloudstate_sdk::action::{BoxFuture, BoxStream};
/// use cloudstate_sdk::{ActionContext, ActionHandler, ActionMessage, ActionReply, ActionResult};
/// use futures_util::StreamExt;
///
/// /// Echoes every payload back.
/// struct Echo;
///
/// impl ActionHandler for Echo {
///     fn handle_unary(self: Arc<Self>, m: ActionMessage, _: ActionContext) -> BoxFuture<'static, ActionResult> {
///         Box::pin(async move { Ok(ActionReply::message(m.payload)) })
///     }
///     fn handle_streamed_in(self: Arc<Self>, input: BoxStream<'static, ActionMessage>, _: ActionContext) -> BoxFuture<'static, ActionResult> {
///         Box::pin(async move {
///             let last = input.collect::<Vec<_>>().await.pop();
///             Ok(last.map_or_else(ActionReply::no_reply, |m| ActionReply::message(m.payload)))
///         })
///     }
///     fn handle_streamed_out(self: Arc<Self>, m: ActionMessage, _: ActionContext) -> BoxStream<'static, ActionResult> {
///         futures_util::stream::iter([Ok(ActionReply::message(m.payload))]).boxed()
///     }
///     fn handle_streamed(self: Arc<Self>, input: BoxStream<'static, ActionMessage>, _: ActionContext) -> BoxStream<'static, ActionResult> {
///         input.map(|m| Ok(ActionReply::message(m.payload))).boxed()
///     }
/// }
/// # let _ = cloudstate_sdk::CloudState::new().action("com.example.Echo", Echo);
/// ```
pub trait ActionHandler: Send + Sync + 'static {
    /// A unary call: one request, one response.
    fn handle_unary(
        self: Arc<Self>,
        message: ActionMessage,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult>;

    /// A client-streaming call: the requests, then one response. The input
    /// ends when the caller completes it; a response sent earlier ends the call.
    fn handle_streamed_in(
        self: Arc<Self>,
        input: BoxStream<'static, ActionMessage>,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult>;

    /// A server-streaming call: one request, any number of responses; the
    /// call completes when the stream ends.
    fn handle_streamed_out(
        self: Arc<Self>,
        message: ActionMessage,
        ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult>;

    /// A bidirectional call: each element of the output is an independent
    /// response (a failure does not end the stream). End the output after the
    /// input ends.
    fn handle_streamed(
        self: Arc<Self>,
        input: BoxStream<'static, ActionMessage>,
        ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult>;
}

/// One request: its payload and the metadata sent with it.
///
/// For streamed input, the call-level metadata is on the [`ActionContext`];
/// each element carries its own (usually none).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionMessage {
    /// The payload as it arrived (empty when the proxy sent none).
    pub payload: Any,
    /// The metadata of this message; `None` when absent or empty.
    pub metadata: Option<Metadata>,
}

impl ActionMessage {
    /// Decodes the payload as the method's input type `M`, after checking
    /// that its type URL names `M`; a method whose input is
    /// `google.protobuf.Any` gets the payload itself, whatever its type URL.
    ///
    /// # Errors
    /// A [`Failure`] naming both the expected type and the type URL when the
    /// payload is of another type or its bytes are not an `M`.
    pub fn decode<M: prost::Name + Default + Clone + 'static>(&self) -> Result<M, Failure> {
        if let Some(any) = (&self.payload as &dyn std::any::Any).downcast_ref::<M>() {
            return Ok(any.clone());
        }
        payload::decode::<M>(&self.payload)
            .map_err(|e| Failure::new(format!("Protocol error: {e}")))
    }

    /// Decodes the payload as any [`Payload`](crate::Payload): a primitive,
    /// [`Json`](crate::payload::Json), a message; for methods whose input is
    /// `google.protobuf.Any`.
    ///
    /// # Errors
    /// A [`Failure`] naming both types when the payload is of another type,
    /// or its bytes do not decode.
    pub fn payload_as<P: crate::Payload>(&self) -> Result<P, Failure> {
        P::from_any(&self.payload).map_err(|e| Failure::new(format!("Protocol error: {e}")))
    }

    pub(crate) fn from_command(command: &mut pb::action::ActionCommand) -> Self {
        Self {
            payload: command.payload.take().unwrap_or_default(),
            metadata: command.metadata.take().filter(|m| !m.entries.is_empty()),
        }
    }
}

/// What an action handler knows about its call, and the side effects it adds
/// outside of a response.
///
/// It is cheap to clone; clones share the pending side effects.
#[derive(Debug, Clone)]
pub struct ActionContext {
    service_name: Arc<str>,
    command_name: Arc<str>,
    metadata: Option<Arc<Metadata>>,
    effects: Arc<Mutex<Vec<pb::SideEffect>>>,
}

impl ActionContext {
    /// A context for a call of `service_name`/`command_name` with `metadata`
    /// (e.g. to test a handler directly).
    pub fn new(
        service_name: impl Into<String>,
        command_name: impl Into<String>,
        metadata: Option<Metadata>,
    ) -> Self {
        Self {
            service_name: service_name.into().into(),
            command_name: command_name.into().into(),
            metadata: metadata.filter(|m| !m.entries.is_empty()).map(Arc::new),
            effects: Arc::default(),
        }
    }

    /// The fully qualified name of the service called.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The method called, e.g. `ProcessUnary`.
    pub fn command_name(&self) -> &str {
        &self.command_name
    }

    /// The call's metadata (the caller's request headers, or the
    /// CloudEvent attributes of an event); empty when none was sent.
    pub fn metadata(&self) -> &Metadata {
        self.metadata.as_deref().unwrap_or(&crate::metadata::EMPTY)
    }

    /// The first string value of the metadata key `key` (case-insensitive);
    /// `ctx.metadata().get(key)`.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata().get(key)
    }

    /// Adds a side effect to the next response this call sends; a
    /// `synchronous` one completes before that response reaches the caller.
    pub fn effect(&self, call: impl Into<ServiceCall>, synchronous: bool) {
        self.lock().push(call.into().into_side_effect(synchronous));
    }

    pub(crate) fn take_effects(&self) -> Vec<pb::SideEffect> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<pb::SideEffect>> {
        self.effects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What one response of an action says: a message, a forward, a failure or
/// nothing, and the side effects that go with it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionReply<T = Any> {
    outcome: Outcome<T>,
    side_effects: Vec<pb::SideEffect>,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome<T> {
    Reply(Reply<T>),
    Failure(Failure),
    NoReply,
}

impl<T> ActionReply<T> {
    /// Replies with `payload`.
    pub fn message(payload: T) -> Self {
        Reply::message(payload).into()
    }

    /// Forwards the call to another method, whose reply goes to the caller.
    pub fn forward(call: impl Into<ServiceCall>) -> Self {
        Reply::forward(call).into()
    }

    /// Fails the call with `description` (gRPC status `UNKNOWN` for the
    /// caller); side effects added to it are still performed.
    pub fn failure(description: impl Into<String>) -> Self {
        Failure::new(description).into()
    }

    /// Sends nothing to the caller; side effects are still performed.
    pub fn no_reply() -> Self {
        Self {
            outcome: Outcome::NoReply,
            side_effects: Vec::new(),
        }
    }

    /// Attaches metadata to a message (response headers for the caller) or a
    /// forward; ignored for failures and no reply.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        if let Outcome::Reply(reply) = self.outcome {
            self.outcome = Outcome::Reply(reply.with_metadata(metadata));
        }
        self
    }

    /// Adds a side effect; a `synchronous` one completes before the response
    /// reaches the caller.
    #[must_use]
    pub fn with_effect(mut self, call: impl Into<ServiceCall>, synchronous: bool) -> Self {
        self.side_effects
            .push(call.into().into_side_effect(synchronous));
        self
    }

    /// Adds side effects already in protocol form.
    #[must_use]
    pub fn with_side_effects(mut self, effects: impl IntoIterator<Item = pb::SideEffect>) -> Self {
        self.side_effects.extend(effects);
        self
    }

    /// Whether this is a message or a forward.
    pub fn is_reply(&self) -> bool {
        matches!(self.outcome, Outcome::Reply(_))
    }

    /// The failure, when this is one.
    pub fn as_failure(&self) -> Option<&Failure> {
        match &self.outcome {
            Outcome::Failure(f) => Some(f),
            _ => None,
        }
    }

    /// Whether this sends nothing to the caller.
    pub fn is_no_reply(&self) -> bool {
        matches!(self.outcome, Outcome::NoReply)
    }

    /// The side effects, in order.
    pub fn side_effects(&self) -> &[pb::SideEffect] {
        &self.side_effects
    }

    /// Removes and returns the side effects.
    pub fn take_side_effects(&mut self) -> Vec<pb::SideEffect> {
        std::mem::take(&mut self.side_effects)
    }

    /// Converts the message, keeping everything else.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ActionReply<U> {
        ActionReply {
            outcome: match self.outcome {
                Outcome::Reply(reply) => Outcome::Reply(reply.map(f)),
                Outcome::Failure(failure) => Outcome::Failure(failure),
                Outcome::NoReply => Outcome::NoReply,
            },
            side_effects: self.side_effects,
        }
    }
}

impl<T> From<Reply<T>> for ActionReply<T> {
    fn from(reply: Reply<T>) -> Self {
        Self {
            outcome: Outcome::Reply(reply),
            side_effects: Vec::new(),
        }
    }
}

impl<T> From<Failure> for ActionReply<T> {
    fn from(failure: Failure) -> Self {
        Self {
            outcome: Outcome::Failure(failure),
            side_effects: Vec::new(),
        }
    }
}

impl ActionReply<Any> {
    /// Replies with a protobuf message, encoded.
    pub fn encode<M: prost::Name>(message: &M) -> Self {
        Self::message(payload::encode(message))
    }

    /// Replies with any [`Payload`](crate::Payload) (a message, a primitive,
    /// [`Json`](crate::payload::Json)), encoded; for methods whose output is
    /// `google.protobuf.Any` or that publish to a topic.
    pub fn of<P: crate::Payload>(payload: &P) -> Self {
        Self::message(payload.to_any())
    }

    /// The protocol message, after the context's pending side effects.
    pub(crate) fn into_response(
        self,
        mut side_effects: Vec<pb::SideEffect>,
    ) -> pb::action::ActionResponse {
        use pb::action::action_response::Response;
        side_effects.extend(self.side_effects);
        let response = match self.outcome {
            Outcome::Reply(Reply::Message { payload, metadata }) => {
                Some(Response::Reply(pb::Reply {
                    payload: Some(payload),
                    metadata: metadata.filter(|m| !m.entries.is_empty()),
                }))
            }
            Outcome::Reply(Reply::Forward(call)) => {
                let mut forward = call.into_forward();
                forward.metadata = forward.metadata.filter(|m| !m.entries.is_empty());
                Some(Response::Forward(forward))
            }
            Outcome::Failure(failure) => Some(Response::Failure(failure_message(
                failure.description().to_owned(),
            ))),
            Outcome::NoReply => None,
        };
        for effect in &mut side_effects {
            if effect
                .metadata
                .as_ref()
                .is_some_and(|m| m.entries.is_empty())
            {
                effect.metadata = None;
            }
        }
        pb::action::ActionResponse {
            response,
            side_effects,
        }
    }
}

/// An action failure: `command_id` is always 0.
pub(crate) fn failure_message(description: String) -> pb::Failure {
    pb::Failure {
        command_id: 0,
        description,
        restart: false,
    }
}

/// Registration options of an action. Nothing is required; it exists so
/// that generated services register like entities do.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ActionOptions {}

impl ActionOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> ServiceCall {
        ServiceCall::new("s.Two", "Call", payload::empty())
    }

    #[test]
    fn empty_metadata_is_absent_and_failures_keep_effects() {
        let ctx = ActionContext::new("s.One", "Do", Some(Metadata::default()));
        assert!(ctx.metadata().is_empty());
        ctx.effect(call(), true);
        let reply = ActionReply::encode(&()).with_metadata(Metadata::default());
        let response = reply.into_response(ctx.take_effects());
        let Some(pb::action::action_response::Response::Reply(r)) = response.response else {
            panic!("not a reply: {response:?}")
        };
        assert_eq!(r.metadata, None);
        assert_eq!(response.side_effects.len(), 1);
        assert!(ctx.take_effects().is_empty(), "effects go out once");

        let failed = ActionReply::<Any>::failure("no")
            .with_effect(call(), false)
            .into_response(Vec::new());
        assert_eq!(
            failed.response,
            Some(pb::action::action_response::Response::Failure(
                failure_message("no".into())
            ))
        );
        assert_eq!(failed.side_effects.len(), 1);
        assert_eq!(
            ActionReply::<Any>::no_reply().into_response(Vec::new()),
            pb::action::ActionResponse::default()
        );
    }

    #[test]
    fn metadata_lookup_ignores_case() {
        let metadata = Metadata {
            entries: vec![pb::MetadataEntry {
                key: "X-Trace".into(),
                value: Some(pb::metadata_entry::Value::StringValue("t".into())),
            }],
        };
        let ctx = ActionContext::new("s", "c", Some(metadata));
        assert_eq!(ctx.metadata_value("x-trace"), Some("t"));
        assert_eq!(ctx.metadata_value("other"), None);
    }
}
