//! The `cloudstate.action.ActionProtocol` gRPC service: routes each call to
//! the registered handler and turns its results into `ActionResponse`s.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt, stream};
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, debug, error};

use super::{ActionContext, ActionHandler, ActionMessage, ActionResult, BoxStream};
use crate::panic_message;
use crate::protocol::cloudstate::action::{
    ActionCommand, ActionResponse, action_protocol_server::ActionProtocol,
    action_response::Response as Out,
};

/// The description sent for an empty streamed input (Java's text).
pub(crate) const EMPTY_STREAM: &str = "Cloudstate protocol failure: expected command message with service name and command name, but got empty stream";

type Handlers = HashMap<String, Arc<dyn ActionHandler>>;

/// The action protocol service over the registered handlers.
pub(crate) struct ActionService {
    handlers: Arc<Handlers>,
    shutdown: watch::Receiver<bool>,
    /// The largest message the proxy takes from this user function.
    max_reply: usize,
}

impl ActionService {
    pub(crate) fn new(
        handlers: Handlers,
        shutdown: watch::Receiver<bool>,
        max_reply: usize,
    ) -> Self {
        Self {
            handlers: Arc::new(handlers),
            shutdown,
            max_reply,
        }
    }

    /// The response, or a failure naming its size when it is too large to send.
    fn fit(ctx: &ActionContext, response: ActionResponse, limit: usize) -> ActionResponse {
        let size = prost::Message::encoded_len(&response);
        if size <= limit {
            return response;
        }
        let effects: usize = (response.side_effects.iter())
            .map(|effect| crate::entity::framed_len(prost::Message::encoded_len(effect)))
            .sum();
        let reply = size - effects;
        let parts = format!(
            "reply {reply} bytes, {}",
            crate::entity::part("side effects", &response.side_effects)
        );
        let description = crate::entity::oversized(ctx.command_name(), size, limit, &parts);
        log_failure(ctx, &description);
        failure(description)
    }

    /// `responses`, each made to fit the proxy's limit.
    fn fit_all(&self, ctx: &ActionContext, responses: Responses) -> Responses {
        let (ctx, limit) = (ctx.clone(), self.max_reply);
        responses
            .map(move |item| item.map(|response| Self::fit(&ctx, response, limit)))
            .boxed()
    }

    /// The handler and context of a call, or the failure text for an unknown service.
    fn route(
        &self,
        command: &mut ActionCommand,
    ) -> Result<(Arc<dyn ActionHandler>, ActionContext), String> {
        let Some(handler) = self.handlers.get(&command.service_name) else {
            debug!(service = %command.service_name, "call of an unknown action service");
            return Err(format!("Unknown service: {}", command.service_name));
        };
        let ctx = ActionContext::new(
            command.service_name.clone(),
            command.name.clone(),
            command.metadata.take(),
        );
        Ok((Arc::clone(handler), ctx))
    }
}

pub(crate) type Responses = BoxStream<'static, Result<ActionResponse, Status>>;

#[tonic::async_trait]
impl ActionProtocol for ActionService {
    async fn handle_unary(
        &self,
        request: Request<ActionCommand>,
    ) -> Result<Response<ActionResponse>, Status> {
        let mut command = request.into_inner();
        let (handler, ctx) = match self.route(&mut command) {
            Ok(found) => found,
            Err(unknown) => return Ok(Response::new(failure(unknown))),
        };
        let message = ActionMessage::from_command(&mut command);
        let span = call_span(&ctx);
        let call = ctx.clone();
        let response = run(&ctx, move || handler.handle_unary(message, call))
            .instrument(span)
            .await;
        Ok(Response::new(Self::fit(&ctx, response, self.max_reply)))
    }

    async fn handle_streamed_in(
        &self,
        request: Request<Streaming<ActionCommand>>,
    ) -> Result<Response<ActionResponse>, Status> {
        let mut input = request.into_inner();
        let Some(mut first) = input.message().await? else {
            return Ok(Response::new(failure(EMPTY_STREAM.to_owned())));
        };
        let (handler, ctx) = match self.route(&mut first) {
            Ok(found) => found,
            Err(unknown) => return Ok(Response::new(failure(unknown))),
        };
        let span = call_span(&ctx);
        let call = ctx.clone();
        let elements = elements(input, None);
        let response = run(&ctx, move || handler.handle_streamed_in(elements, call))
            .instrument(span)
            .await;
        Ok(Response::new(Self::fit(&ctx, response, self.max_reply)))
    }

    type handleStreamedOutStream = Responses;

    async fn handle_streamed_out(
        &self,
        request: Request<ActionCommand>,
    ) -> Result<Response<Responses>, Status> {
        let mut command = request.into_inner();
        let (handler, ctx) = match self.route(&mut command) {
            Ok(found) => found,
            Err(unknown) => return Ok(Response::new(once(failure(unknown)))),
        };
        let message = ActionMessage::from_command(&mut command);
        let call = ctx.clone();
        let responses = self.fit_all(
            &ctx,
            run_stream(ctx.clone(), move || {
                handler.handle_streamed_out(message, call)
            }),
        );
        Ok(Response::new(responses))
    }

    type handleStreamedStream = Responses;

    async fn handle_streamed(
        &self,
        request: Request<Streaming<ActionCommand>>,
    ) -> Result<Response<Responses>, Status> {
        let mut input = request.into_inner();
        let Some(mut first) = input.message().await? else {
            return Ok(Response::new(once(failure(EMPTY_STREAM.to_owned()))));
        };
        let (handler, ctx) = match self.route(&mut first) {
            Ok(found) => found,
            Err(unknown) => return Ok(Response::new(once(failure(unknown)))),
        };
        let call = ctx.clone();
        let elements = elements(input, Some(self.shutdown.clone()));
        let responses = self.fit_all(
            &ctx,
            run_stream(ctx.clone(), move || handler.handle_streamed(elements, call)),
        );
        Ok(Response::new(responses))
    }
}

fn call_span(ctx: &ActionContext) -> tracing::Span {
    tracing::info_span!("action", service = %ctx.service_name(), command = %ctx.command_name())
}

/// The elements after the first message. An input that fails (the caller
/// went away, a broken message) just ends: the call is over either way.
///
/// With `shutdown`, the input also ends when the server shuts down, so a
/// bidirectional call finishes its pending responses and completes with OK
/// instead of holding the shutdown open.
fn elements(
    input: Streaming<ActionCommand>,
    shutdown: Option<watch::Receiver<bool>>,
) -> BoxStream<'static, ActionMessage> {
    stream::unfold((input, shutdown), |(mut input, mut shutdown)| async move {
        let next = match &mut shutdown {
            Some(stop) => {
                let stopping = async {
                    if stop.wait_for(|stopping| *stopping).await.is_err() {
                        // The server is gone; its connections end by themselves.
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    next = input.message() => next,
                    () = stopping => {
                        debug!("shutting down: ending the action's input");
                        return None;
                    }
                }
            }
            None => input.message().await,
        };
        match next {
            Ok(Some(mut command)) => {
                Some((ActionMessage::from_command(&mut command), (input, shutdown)))
            }
            Ok(None) => None,
            Err(status) => {
                debug!("the action's input ended with {status}");
                None
            }
        }
    })
    .boxed()
}

/// Runs a handler future, answering a panic (in the call or while polling)
/// with a generic failure.
pub(crate) async fn run(
    ctx: &ActionContext,
    call: impl FnOnce() -> super::BoxFuture<'static, ActionResult>,
) -> ActionResponse {
    let future = match std::panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(future) => future,
        Err(panic) => return panicked(ctx, &*panic),
    };
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(result) => response(ctx, result),
        Err(panic) => panicked(ctx, &*panic),
    }
}

/// Runs a handler stream; a panic is answered with a failure and ends it.
pub(crate) fn run_stream(
    ctx: ActionContext,
    call: impl FnOnce() -> BoxStream<'static, ActionResult>,
) -> Responses {
    let span = call_span(&ctx);
    let responses = match std::panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(responses) => responses,
        Err(panic) => return once(panicked(&ctx, &*panic)),
    };
    // A caught panic is the stream's last element.
    AssertUnwindSafe(responses)
        .catch_unwind()
        .map(move |item| {
            Ok(match item {
                Ok(result) => response(&ctx, result),
                Err(panic) => panicked(&ctx, &*panic),
            })
        })
        .instrument_stream(span)
}

fn response(ctx: &ActionContext, result: ActionResult) -> ActionResponse {
    let effects = ctx.take_effects();
    match result {
        Ok(reply) => {
            let response = reply.into_response(effects);
            if let Some(Out::Failure(f)) = &response.response {
                log_failure(ctx, &f.description);
            }
            response
        }
        Err(failure) => {
            log_failure(ctx, failure.description());
            ActionResponse {
                response: Some(Out::Failure(super::failure_message(
                    failure.description().to_owned(),
                ))),
                side_effects: effects,
            }
        }
    }
}

/// Logs a failed call once, at INFO.
fn log_failure(ctx: &ActionContext, description: &str) {
    tracing::info!(
        service = %ctx.service_name(),
        command = %ctx.command_name(),
        "action failed: {description}"
    );
}

fn panicked(ctx: &ActionContext, panic: &(dyn std::any::Any + Send)) -> ActionResponse {
    error!(
        service = %ctx.service_name(),
        command = %ctx.command_name(),
        "action handler panicked: {}",
        panic_message(panic)
    );
    let _ = ctx.take_effects();
    failure(format!(
        "Unexpected error handling command [{}] of service [{}]",
        ctx.command_name(),
        ctx.service_name()
    ))
}

fn failure(description: String) -> ActionResponse {
    ActionResponse {
        response: Some(Out::Failure(super::failure_message(description))),
        side_effects: Vec::new(),
    }
}

fn once(response: ActionResponse) -> Responses {
    stream::once(async move { Ok(response) }).boxed()
}

/// Polls a stream inside a tracing span.
trait InstrumentStream: futures_util::Stream + Sized + Send + 'static {
    fn instrument_stream(self, span: tracing::Span) -> BoxStream<'static, Self::Item> {
        let mut inner = Box::pin(self);
        stream::poll_fn(move |cx| {
            let _entered = span.enter();
            inner.as_mut().poll_next(cx)
        })
        .boxed()
    }
}

impl<S: futures_util::Stream + Sized + Send + 'static> InstrumentStream for S {}
