//! Unit-testing actions in memory: calls of the four shapes go to the
//! registered handler through the same runtime as a proxy's gRPC calls
//! (context, side effects added through it, panics), and every response
//! comes back typed.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::{StreamExt, stream};

use super::outcome::{ActionExtra, ActionOutcome};
use crate::action::runtime::{self, Responses};
use crate::action::{ActionContext, ActionHandler, ActionMessage, ActionOptions};
use crate::descriptors::ServiceInfo;
use crate::effect::{Metadata, TypedCall};
use crate::payload::Payload;
use crate::protocol::cloudstate::action::{ActionResponse, action_response::Response};
use crate::protocol::cloudstate::client_action::Action;
use crate::{CloudState, Service};

/// Calls one action in memory, as the proxy would: unary, streamed-in,
/// streamed-out and bidirectional calls, each response typed as the
/// method's output.
///
/// ```
/// use std::sync::Arc;
/// use cloudstate_sdk::action::{BoxFuture, BoxStream};
/// use cloudstate_sdk::testkit::{ActionTestKit, SideEffect, StreamedCall};
/// use cloudstate_sdk::{ActionContext, ActionHandler, ActionMessage, ActionReply, ActionResult};
/// use cloudstate_sdk::{Payload, ServiceCall, TypedCall};
/// use futures_util::StreamExt;
///
/// /// Echoes payloads; logs each call as a side effect added through the context.
/// struct Echo;
/// impl ActionHandler for Echo {
///     fn handle_unary(self: Arc<Self>, m: ActionMessage, ctx: ActionContext) -> BoxFuture<'static, ActionResult> {
///         ctx.effect(ServiceCall::new("example.Log", "Record", m.payload.clone()), false);
///         Box::pin(async move { Ok(ActionReply::message(m.payload)) })
///     }
///     fn handle_streamed_in(self: Arc<Self>, input: BoxStream<'static, ActionMessage>, _: ActionContext) -> BoxFuture<'static, ActionResult> {
///         Box::pin(async move {
///             let last = input.collect::<Vec<_>>().await.pop();
///             Ok(last.map_or_else(ActionReply::no_reply, |m| ActionReply::message(m.payload)))
///         })
///     }
///     fn handle_streamed_out(self: Arc<Self>, m: ActionMessage, _: ActionContext) -> BoxStream<'static, ActionResult> {
///         futures_util::stream::iter([Ok(ActionReply::message(m.payload.clone())), Ok(ActionReply::message(m.payload))]).boxed()
///     }
///     fn handle_streamed(self: Arc<Self>, input: BoxStream<'static, ActionMessage>, _: ActionContext) -> BoxStream<'static, ActionResult> {
///         input.map(|m| Ok(ActionReply::message(m.payload))).boxed()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let kit = ActionTestKit::without_descriptors("example.Echo", Echo);
/// let say = |n: i64| TypedCall::<i64>::new(ServiceCall::new("example.Echo", "Say", n.to_any()));
/// let said = kit.call(say(7)).await;
/// assert_eq!(said.reply(), 7);
/// assert_eq!(said.side_effects(), [SideEffect::new(ServiceCall::new("example.Log", "Record", 7_i64.to_any()), false)]);
///
/// let twice = kit.call_streamed_out(say(3)).await;
/// assert_eq!(twice.iter().map(|o| o.reply()).collect::<Vec<_>>(), [3, 3]);
///
/// let all = StreamedCall::<i64, i64>::new("example.Echo", "SayAll");
/// assert_eq!(kit.call_streamed_in(all.clone(), [1, 2]).await.reply(), 2);
/// assert!(kit.call_streamed_in(all.clone(), []).await.is_no_reply());
/// let echoed = kit.call_streamed(all, [4, 5]).await;
/// assert_eq!(echoed.iter().map(|o| o.reply()).collect::<Vec<_>>(), [4, 5]);
/// # }
/// ```
pub struct ActionTestKit {
    service_name: String,
    handler: Arc<dyn ActionHandler>,
    /// The methods, to refuse calls the proxy would not make; `None`
    /// without descriptors.
    service: Option<ServiceInfo>,
}

impl ActionTestKit {
    /// A generated action (`Action(handlers)`), checked as for serving; its
    /// descriptors tell each method's call shape.
    ///
    /// # Panics
    /// When the registration is invalid.
    #[track_caller]
    pub fn new<A: ActionHandler + Service<Options = ActionOptions>>(action: A) -> Self {
        let registered = action
            .register(CloudState::new(), ActionOptions::new())
            .action_registration()
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            service_name: registered.service_name,
            handler: registered.handler,
            service: registered.service,
        }
    }

    /// A hand-written handler serving `service_name`, with no descriptors:
    /// every call reaches it, whatever its method and shape.
    pub fn without_descriptors(service_name: &str, handler: impl ActionHandler) -> Self {
        Self {
            service_name: service_name.to_owned(),
            handler: Arc::new(handler),
            service: None,
        }
    }

    /// A unary call.
    ///
    /// # Panics
    /// When the call is for another service, or (with descriptors) for a
    /// method that is not unary.
    pub async fn call<R: Payload>(&self, call: TypedCall<R>) -> ActionOutcome<R> {
        let call = call.into_call();
        let ctx = self.context(
            call.service_name(),
            call.command_name(),
            call.metadata(),
            Shape::UNARY,
        );
        let message = message(call.payload().clone());
        let handler = Arc::clone(&self.handler);
        let for_handler = ctx.clone();
        outcome(runtime::run(&ctx, move || handler.handle_unary(message, for_handler)).await)
    }

    /// A client-streaming call: `requests` in order, then the one response.
    ///
    /// # Panics
    /// When the call is for another service, or (with descriptors) for a
    /// method that is not client-streaming only.
    pub async fn call_streamed_in<I: Payload, R: Payload>(
        &self,
        call: StreamedCall<I, R>,
        requests: impl IntoIterator<Item = I>,
    ) -> ActionOutcome<R> {
        let ctx = self.context(
            &call.service_name,
            &call.command_name,
            call.metadata.as_ref(),
            Shape::STREAMED_IN,
        );
        let input = elements(requests);
        let handler = Arc::clone(&self.handler);
        let for_handler = ctx.clone();
        outcome(runtime::run(&ctx, move || handler.handle_streamed_in(input, for_handler)).await)
    }

    /// A server-streaming call: every response, in order.
    ///
    /// # Panics
    /// When the call is for another service, or (with descriptors) for a
    /// method that is not server-streaming only.
    pub async fn call_streamed_out<R: Payload>(&self, call: TypedCall<R>) -> Vec<ActionOutcome<R>> {
        let call = call.into_call();
        let ctx = self.context(
            call.service_name(),
            call.command_name(),
            call.metadata(),
            Shape::STREAMED_OUT,
        );
        let message = message(call.payload().clone());
        let handler = Arc::clone(&self.handler);
        let for_handler = ctx.clone();
        outcomes(runtime::run_stream(ctx, move || {
            handler.handle_streamed_out(message, for_handler)
        }))
        .await
    }

    /// A bidirectional call: `requests` in order, then every response, in
    /// order, once the handler ends its output.
    ///
    /// # Panics
    /// When the call is for another service, or (with descriptors) for a
    /// method that is not bidirectional.
    pub async fn call_streamed<I: Payload, R: Payload>(
        &self,
        call: StreamedCall<I, R>,
        requests: impl IntoIterator<Item = I>,
    ) -> Vec<ActionOutcome<R>> {
        let ctx = self.context(
            &call.service_name,
            &call.command_name,
            call.metadata.as_ref(),
            Shape::STREAMED,
        );
        let input = elements(requests);
        let handler = Arc::clone(&self.handler);
        let for_handler = ctx.clone();
        outcomes(runtime::run_stream(ctx, move || {
            handler.handle_streamed(input, for_handler)
        }))
        .await
    }

    /// The context of a call, as the runtime makes it from the first
    /// message, once the call passed the checks the proxy makes.
    #[track_caller]
    fn context(
        &self,
        service_name: &str,
        command_name: &str,
        metadata: Option<&Metadata>,
        shape: Shape,
    ) -> ActionContext {
        assert_eq!(
            service_name, self.service_name,
            "the call is for another service"
        );
        if let Some(service) = &self.service {
            let Some(method) = service.methods.get(command_name) else {
                panic!(
                    "service [{service_name}] has no method [{command_name}]; the proxy would not make this call"
                );
            };
            let declared = Shape {
                client_streaming: method.client_streaming,
                server_streaming: method.server_streaming,
            };
            assert!(
                declared == shape,
                "[{command_name}] is a {declared} method; call it with `{}`",
                declared.kit_method()
            );
        }
        ActionContext::new(service_name, command_name, metadata.cloned())
    }
}

impl fmt::Debug for ActionTestKit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionTestKit")
            .field("service_name", &self.service_name)
            .field("descriptors", &self.service.is_some())
            .finish_non_exhaustive()
    }
}

/// A call of a client-streaming (streamed-in or bidirectional) method whose
/// requests are `I` and responses `R`: names and call-level metadata, as the
/// first message of such a call carries them.
pub struct StreamedCall<I, R> {
    service_name: String,
    command_name: String,
    metadata: Option<Metadata>,
    types: PhantomData<fn(I) -> R>,
}

impl<I, R> StreamedCall<I, R> {
    /// A call of `command_name` on the fully qualified `service_name`.
    pub fn new(service_name: impl Into<String>, command_name: impl Into<String>) -> Self {
        Self {
            service_name: service_name.into(),
            command_name: command_name.into(),
            metadata: None,
            types: PhantomData,
        }
    }

    /// Attaches call-level metadata (the caller's request headers).
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

// By hand: derives would require `I` and `R` to be `Debug` and `Clone`.
impl<I, R> fmt::Debug for StreamedCall<I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamedCall")
            .field("service_name", &self.service_name)
            .field("command_name", &self.command_name)
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl<I, R> Clone for StreamedCall<I, R> {
    fn clone(&self) -> Self {
        Self {
            service_name: self.service_name.clone(),
            command_name: self.command_name.clone(),
            metadata: self.metadata.clone(),
            types: PhantomData,
        }
    }
}

/// The call shape of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    client_streaming: bool,
    server_streaming: bool,
}

impl Shape {
    const UNARY: Self = Self::of(false, false);
    const STREAMED_IN: Self = Self::of(true, false);
    const STREAMED_OUT: Self = Self::of(false, true);
    const STREAMED: Self = Self::of(true, true);

    const fn of(client_streaming: bool, server_streaming: bool) -> Self {
        Self {
            client_streaming,
            server_streaming,
        }
    }

    fn kit_method(self) -> &'static str {
        match (self.client_streaming, self.server_streaming) {
            (false, false) => "call",
            (true, false) => "call_streamed_in",
            (false, true) => "call_streamed_out",
            (true, true) => "call_streamed",
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.client_streaming, self.server_streaming) {
            (false, false) => "unary",
            (true, false) => "client-streaming",
            (false, true) => "server-streaming",
            (true, true) => "bidirectional",
        })
    }
}

/// A request as the runtime hands it over: the call-level metadata is on
/// the context, none on the message.
fn message(payload: crate::payload::Any) -> ActionMessage {
    ActionMessage {
        payload,
        metadata: None,
    }
}

fn elements<I: Payload>(
    requests: impl IntoIterator<Item = I>,
) -> futures_util::stream::BoxStream<'static, ActionMessage> {
    let messages: Vec<ActionMessage> = requests.into_iter().map(|r| message(r.to_any())).collect();
    stream::iter(messages).boxed()
}

fn outcome<R>(response: ActionResponse) -> ActionOutcome<R> {
    let action = response.response.clone().map(|r| match r {
        Response::Reply(reply) => Action::Reply(reply),
        Response::Forward(forward) => Action::Forward(forward),
        Response::Failure(failure) => Action::Failure(failure),
    });
    ActionOutcome::new(
        action.as_ref(),
        &response.side_effects,
        ActionExtra {
            response: response.clone(),
        },
    )
}

async fn outcomes<R>(responses: Responses) -> Vec<ActionOutcome<R>> {
    responses
        .map(|r| outcome(r.expect("the runtime answers every response, failures included")))
        .collect()
        .await
}
