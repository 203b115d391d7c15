//! Actions: every client call is one call of the user function's
//! `ActionProtocol`, in the shape of the method's streaming flags
//! (`handleUnary`, `handleStreamedIn`, `handleStreamedOut`, `handleStreamed`),
//! as the official proxy's `ActionProtocolSupportFactory` does. Each
//! `ActionResponse` goes through the router like an entity reply: side
//! effects, then forward, failure or reply.

use std::sync::Arc;

use bytes::Bytes;
use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate::action::{
    ActionCommand, ActionResponse, action_protocol_client::ActionProtocolClient, action_response,
};
use cloudstate_sdk::protocol::cloudstate::{self as pb, client_action::Action};
use futures_util::stream::{self, BoxStream};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::oneshot;
use tonic::Status;
use tonic::transport::Channel;

use crate::entity::UfReply;
use crate::error::ProxyError;
use crate::model::MethodModel;
use crate::observe::{ActionShape, Observed, Observer};
use crate::router::{Answer, Router};

/// What the client gets, one item per `ActionResponse`: `Ok(None)` for a
/// response without a message. An error is the last item.
pub(crate) type Answers = BoxStream<'static, Result<Option<Answer>, ProxyError>>;

/// The request messages of a call, as they arrive from the client.
pub(crate) type Input = BoxStream<'static, Result<Bytes, ProxyError>>;

/// The shape of `method`.
pub(crate) fn shape(method: &MethodModel) -> ActionShape {
    ActionShape::of(
        method.descriptor.is_client_streaming(),
        method.descriptor.is_server_streaming(),
    )
}

/// A call with one message, for forwards and side effects: one full
/// command, one response (streaming methods are called in their shape, see
/// [`gathered`]).
pub(crate) async fn unary(
    router: &Arc<Router>,
    method: &Arc<MethodModel>,
    payload: Any,
    metadata: Option<pb::Metadata>,
) -> Result<UfReply, ProxyError> {
    if shape(method) != ActionShape::Unary {
        return gathered(router, method, payload, metadata).await;
    }
    let mut guard = open(router, method, ActionShape::Unary);
    let command = ActionCommand {
        service_name: method.service.clone(),
        name: method.name().to_owned(),
        payload: Some(payload),
        metadata: none_if_empty(metadata),
    };
    let number = guard.number;
    router
        .observer
        .emit(|| Observed::ActionIn(number, command.clone()));
    match client(router).handle_unary(command).await {
        Ok(response) => {
            let response = response.into_inner();
            router
                .observer
                .emit(|| Observed::ActionOut(number, response.clone()));
            guard.finish(true);
            Ok(uf_reply(response))
        }
        Err(status) => {
            guard.finish(false);
            Err(uf_error(&status))
        }
    }
}

/// Calls `method` with the client's `input` and the call's `metadata` (the
/// request headers), in the method's shape. Dropping the answers cancels
/// the user function's call.
pub(crate) fn call(
    router: Arc<Router>,
    method: Arc<MethodModel>,
    metadata: Option<pb::Metadata>,
    input: Input,
) -> Answers {
    let type_url = method.input_type_url().to_owned();
    call_typed(router, method, metadata, input, type_url)
}

/// [`call`] with payloads of `type_url` (an eventing subscriber's input is
/// the event as it came, whatever its method's input type).
pub(crate) fn call_typed(
    router: Arc<Router>,
    method: Arc<MethodModel>,
    metadata: Option<pb::Metadata>,
    input: Input,
    type_url: String,
) -> Answers {
    let Raw {
        guard,
        responses,
        input_error,
    } = raw(&router, &method, metadata, input, type_url);
    let trace = method.full_name().to_owned();
    let state = State {
        router,
        method,
        trace,
        responses,
        input_error: Some(input_error),
        guard,
        done: false,
    };
    stream::unfold(state, next).boxed()
}

/// A forward or side effect to a streaming method: called in its shape with
/// the one message; the user function's responses are gathered into one
/// reply (every side effect, and the first reply, forward or failure).
async fn gathered(
    router: &Arc<Router>,
    method: &Arc<MethodModel>,
    payload: Any,
    metadata: Option<pb::Metadata>,
) -> Result<UfReply, ProxyError> {
    let input = stream::iter([Ok(Bytes::from(payload.value))]).boxed();
    let Raw {
        mut guard,
        mut responses,
        ..
    } = raw(
        router,
        method,
        metadata,
        input,
        method.input_type_url().to_owned(),
    );
    let number = guard.number;
    let mut gathered = UfReply::default();
    while let Some(response) = responses.next().await {
        match response {
            Ok(response) => {
                router
                    .observer
                    .emit(|| Observed::ActionOut(number, response.clone()));
                let reply = uf_reply(response);
                gathered.side_effects.extend(reply.side_effects);
                if gathered.client_action.is_none() {
                    gathered.client_action = reply.client_action;
                }
            }
            Err(status) => {
                guard.finish(false);
                return Err(uf_error(&status));
            }
        }
    }
    guard.finish(true);
    Ok(gathered)
}

/// A call opened in the method's shape: the responses as they come.
struct Raw {
    guard: Guard,
    responses: BoxStream<'static, Result<ActionResponse, Status>>,
    /// Resolves with the error of a client's input that failed.
    input_error: oneshot::Receiver<ProxyError>,
}

fn raw(
    router: &Arc<Router>,
    method: &Arc<MethodModel>,
    metadata: Option<pb::Metadata>,
    mut input: Input,
    type_url: String,
) -> Raw {
    let shape = shape(method);
    let mut guard = open(router, method, shape);
    let number = guard.number;
    let observer = router.observer.clone();
    let metadata = none_if_empty(metadata);
    let mut client = client(router);
    let (input_failed, input_error) = oneshot::channel::<ProxyError>();
    let responses: BoxStream<'static, Result<ActionResponse, Status>> = if shape.streams_in() {
        let header = ActionCommand {
            service_name: method.service.clone(),
            name: method.name().to_owned(),
            payload: None,
            metadata,
        };
        observer.emit(|| Observed::ActionIn(number, header.clone()));
        let elements = stream::unfold(
            Elements {
                input,
                failed: Some(input_failed),
                observer: observer.clone(),
                type_url,
                number,
            },
            next_element,
        );
        let mut commands = tonic::Request::new(stream::iter([header]).chain(elements));
        // Dropping the response does not stop the request body on its own:
        // the proxy resets the call when it drops it unfinished.
        guard.cancel = Some(commands.cancellation_handle());
        if shape == ActionShape::StreamedIn {
            async move { client.handle_streamed_in(commands).await }
                .map(|r| r.map(tonic::Response::into_inner))
                .into_stream()
                .boxed()
        } else {
            async move { client.handle_streamed(commands).await }
                .map(|r| match r {
                    Ok(response) => response.into_inner().boxed(),
                    Err(status) => stream::iter([Err(status)]).boxed(),
                })
                .flatten_stream()
                .boxed()
        }
    } else {
        let observer = observer.clone();
        let service = method.service.clone();
        let name = method.name().to_owned();
        async move {
            let command = match input.next().await {
                Some(Ok(bytes)) => ActionCommand {
                    service_name: service,
                    name,
                    payload: Some(Any {
                        type_url,
                        value: bytes.to_vec(),
                    }),
                    metadata,
                },
                Some(Err(e)) => {
                    let _ = input_failed.send(e);
                    return stream::pending().boxed();
                }
                None => {
                    let _ = input_failed
                        .send(ProxyError::Internal("Missing request message.".to_owned()));
                    return stream::pending().boxed();
                }
            };
            observer.emit(|| Observed::ActionIn(number, command.clone()));
            if shape == ActionShape::Unary {
                stream::once(async move {
                    client
                        .handle_unary(command)
                        .await
                        .map(tonic::Response::into_inner)
                })
                .boxed()
            } else {
                match client.handle_streamed_out(command).await {
                    Ok(response) => response.into_inner().boxed(),
                    Err(status) => stream::iter([Err(status)]).boxed(),
                }
            }
        }
        .flatten_stream()
        .boxed()
    };
    Raw {
        guard,
        responses,
        input_error,
    }
}

/// The client's messages, as the commands after the header.
struct Elements {
    input: Input,
    failed: Option<oneshot::Sender<ProxyError>>,
    observer: Observer,
    type_url: String,
    number: u64,
}

async fn next_element(mut state: Elements) -> Option<(ActionCommand, Elements)> {
    match state.input.next().await {
        Some(Ok(bytes)) => {
            let command = ActionCommand {
                payload: Some(Any {
                    type_url: state.type_url.clone(),
                    value: bytes.to_vec(),
                }),
                ..ActionCommand::default()
            };
            let number = state.number;
            state
                .observer
                .emit(|| Observed::ActionIn(number, command.clone()));
            Some((command, state))
        }
        Some(Err(e)) => {
            // The call fails; the user function's input is never completed,
            // so it cannot answer a partial input.
            if let Some(failed) = state.failed.take() {
                let _ = failed.send(e);
            }
            std::future::pending::<()>().await;
            None
        }
        None => {
            let number = state.number;
            state.observer.emit(|| Observed::InputClosed(number));
            None
        }
    }
}

struct State {
    router: Arc<Router>,
    method: Arc<MethodModel>,
    trace: String,
    responses: BoxStream<'static, Result<ActionResponse, Status>>,
    input_error: Option<oneshot::Receiver<ProxyError>>,
    guard: Guard,
    done: bool,
}

enum Next {
    Response(Option<Result<ActionResponse, Status>>),
    InputError(ProxyError),
    InputDone,
}

async fn next(mut state: State) -> Option<(Result<Option<Answer>, ProxyError>, State)> {
    loop {
        if state.done {
            return None;
        }
        let next = match &mut state.input_error {
            Some(input_error) => tokio::select! {
                biased;
                error = input_error => match error {
                    Ok(error) => Next::InputError(error),
                    Err(_) => Next::InputDone,
                },
                response = state.responses.next() => Next::Response(response),
            },
            None => Next::Response(state.responses.next().await),
        };
        let number = state.guard.number;
        match next {
            Next::InputDone => state.input_error = None,
            Next::InputError(error) => {
                state.done = true;
                return Some((Err(error), state));
            }
            Next::Response(None) => {
                state.guard.finish(true);
                return None;
            }
            Next::Response(Some(Err(status))) => {
                state.guard.finish(false);
                state.done = true;
                return Some((Err(uf_error(&status)), state));
            }
            Next::Response(Some(Ok(response))) => {
                state
                    .router
                    .observer
                    .emit(|| Observed::ActionOut(number, response.clone()));
                let answer = state
                    .router
                    .resolve(&state.method, uf_reply(response), &state.trace)
                    .await;
                if let Ok(Some(answer)) = &answer {
                    state.router.publish(&state.method, answer);
                }
                // A failure ends the client's call, and cancels the user
                // function's when the state is dropped.
                state.done = answer.is_err();
                return Some((answer, state));
            }
        }
    }
}

/// Numbers the call and reports it; the guard reports its end.
fn open(router: &Router, method: &MethodModel, shape: ActionShape) -> Guard {
    let number = router.entities.next_number();
    router.observer.emit(|| Observed::ActionCall {
        call: number,
        service: method.service.clone(),
        method: method.name().to_owned(),
        shape,
    });
    Guard {
        observer: router.observer.clone(),
        number,
        finished: false,
        cancel: None,
    }
}

/// Reports how an action call ended: the user function completed it, or the
/// proxy dropped it first.
struct Guard {
    observer: Observer,
    number: u64,
    finished: bool,
    /// Resets a streamed request (RST_STREAM) when the call is dropped unfinished.
    cancel: Option<tonic::CancellationHandle>,
}

impl Guard {
    fn finish(&mut self, ok: bool) {
        self.finished = true;
        let stream = self.number;
        self.observer.emit(|| Observed::OutputClosed { stream, ok });
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.finished {
            let number = self.number;
            self.observer.emit(|| Observed::ActionCancelled(number));
            if let Some(cancel) = self.cancel.take() {
                cancel.cancel();
            }
        }
    }
}

fn client(router: &Router) -> ActionProtocolClient<Channel> {
    ActionProtocolClient::new(router.channel.clone())
        .max_decoding_message_size(router.max_message_size)
        .max_encoding_message_size(router.max_message_size)
}

/// An action response as a reply the router resolves.
fn uf_reply(response: ActionResponse) -> UfReply {
    let action = response.response.map(|r| match r {
        action_response::Response::Failure(f) => Action::Failure(f),
        action_response::Response::Reply(r) => Action::Reply(r),
        action_response::Response::Forward(f) => Action::Forward(f),
    });
    UfReply {
        client_action: action.map(|action| pb::ClientAction {
            action: Some(action),
        }),
        side_effects: response.side_effects,
    }
}

/// The user function failed the call itself (not with a `Failure` response).
fn uf_error(status: &Status) -> ProxyError {
    ProxyError::Internal(format!(
        "the user function failed the action call: {:?}: {}",
        status.code(),
        status.message()
    ))
}

/// Metadata without entries is absent, as the official proxy sends it.
fn none_if_empty(metadata: Option<pb::Metadata>) -> Option<pb::Metadata> {
    metadata.filter(|m| !m.entries.is_empty())
}

/// Request headers as call metadata: string entries with the names as
/// received, except pseudo-headers, `content-type` and `content-length`
/// (which akka-http keeps on the entity); values that are not text are
/// skipped.
pub(crate) fn metadata_of(headers: &http::HeaderMap) -> Option<pb::Metadata> {
    let entries: Vec<pb::MetadataEntry> = headers
        .iter()
        .filter(|(name, _)| {
            !name.as_str().starts_with(':')
                && *name != http::header::CONTENT_TYPE
                && *name != http::header::CONTENT_LENGTH
        })
        .filter_map(|(name, value)| {
            Some(pb::MetadataEntry {
                key: name.as_str().to_owned(),
                value: Some(pb::metadata_entry::Value::StringValue(
                    value.to_str().ok()?.to_owned(),
                )),
            })
        })
        .collect();
    none_if_empty(Some(pb::Metadata { entries }))
}
