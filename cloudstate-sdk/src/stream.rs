//! The life of an entity stream, shared by every entity kind: wait for
//! `init`, then answer messages one at a time; end with OK when the proxy
//! completes its side or the server shuts down; after a protocol error send
//! one stream-level failure and end.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::watch;
use tonic::{Status, Streaming};
use tracing::{Instrument, debug, error};

/// Why a stream stops.
pub(crate) enum Stop {
    /// The proxy completed its side, the server is shutting down, or the
    /// proxy went away: end with OK.
    Done,
    /// A protocol or fatal error: send this stream-level failure, then end.
    Failure(i64, String),
}

/// What distinguishes one entity protocol from another.
pub(crate) trait Protocol: Send + Sync + 'static {
    /// The stream's input message.
    type In: prost::Message + Default + Send + 'static;
    /// The stream's output message.
    type Out: Send + 'static;
    /// The input oneof.
    type Message: Send;
    /// One live entity and its protocol state.
    type Entity: Send;

    /// The oneof of an input message, `None` when unset.
    fn message(input: Self::In) -> Option<Self::Message>;
    /// Starts an entity from its first message, which must be `init`.
    fn start(&self, first: Self::Message) -> Result<(Self::Entity, tracing::Span), Stop>;
    /// Handles one later message; `Some` when it has an answer.
    fn handle(entity: &mut Self::Entity, message: Self::Message)
    -> Result<Option<Self::Out>, Stop>;
    /// Adds the entity's service and id to a failure's description.
    fn stop(entity: &Self::Entity, command_id: i64, description: &str) -> Stop;
    /// A stream-level failure message.
    fn failure(command_id: i64, description: String) -> Self::Out;
}

/// The gRPC `handle` service of one entity kind: each call is one entity stream.
pub(crate) struct EntityService<P> {
    protocol: Arc<P>,
    shutdown: watch::Receiver<bool>,
}

impl<P: Protocol> EntityService<P> {
    pub(crate) fn new(protocol: P, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            protocol: Arc::new(protocol),
            shutdown,
        }
    }

    /// Serves one `handle` call.
    pub(crate) fn handle(
        &self,
        request: tonic::Request<Streaming<P::In>>,
    ) -> tonic::Response<Replies<P::Out>> {
        tonic::Response::new(serve(
            Arc::clone(&self.protocol),
            request.into_inner(),
            self.shutdown.clone(),
        ))
    }
}

/// The response stream of one entity stream.
pub(crate) type Replies<Out> = Pin<Box<dyn Stream<Item = Result<Out, Status>> + Send>>;

/// Runs the entity inside its response stream: each poll reads input until
/// there is something to answer, so replies take no hop between tasks.
pub(crate) fn serve<P: Protocol>(
    protocol: Arc<P>,
    input: Streaming<P::In>,
    shutdown: watch::Receiver<bool>,
) -> Replies<P::Out> {
    let stream = EntityStream {
        protocol,
        input,
        shutdown,
        entity: None,
        finished: false,
        span: tracing::info_span!("cloudstate.entity"),
    };
    Box::pin(futures_util::stream::unfold(
        stream,
        |mut stream| async move {
            let span = stream.span.clone();
            let out = stream.step().instrument(span).await?;
            Some((Ok(out), stream))
        },
    ))
}

struct EntityStream<P: Protocol> {
    protocol: Arc<P>,
    input: Streaming<P::In>,
    shutdown: watch::Receiver<bool>,
    entity: Option<P::Entity>,
    finished: bool,
    span: tracing::Span,
}

impl<P: Protocol> EntityStream<P> {
    /// The next message to send, or `None` when the stream ends (with OK).
    async fn step(&mut self) -> Option<P::Out> {
        if self.finished {
            return None;
        }
        let stop = loop {
            match self.advance().await {
                Ok(Some(out)) => return Some(out),
                Ok(None) => {}
                Err(stop) => break stop,
            }
        };
        self.finished = true;
        match stop {
            Stop::Done => None,
            Stop::Failure(command_id, description) => {
                error!(command_id, "{description}");
                Some(P::failure(command_id, description))
            }
        }
    }

    async fn advance(&mut self) -> Result<Option<P::Out>, Stop> {
        let message = match self.next().await {
            Ok(Some(message)) => message,
            Ok(None) => {
                debug!("stream ended");
                return Err(Stop::Done);
            }
            Err(Stop::Failure(id, description)) => {
                return Err(match &self.entity {
                    Some(entity) => P::stop(entity, id, &description),
                    None => Stop::Failure(id, description),
                });
            }
            Err(stop) => return Err(stop),
        };
        match &mut self.entity {
            Some(entity) => P::handle(entity, message),
            None => {
                let (entity, span) = self.protocol.start(message)?;
                self.span = span;
                self.entity = Some(entity);
                Ok(None)
            }
        }
    }

    /// Waits for the next message; `None` at end of input or shutdown.
    async fn next(&mut self) -> Result<Option<P::Message>, Stop> {
        let message = tokio::select! {
            biased;
            message = self.input.message() => message,
            _ = self.shutdown.wait_for(|stop| *stop) => return Ok(None),
        };
        match message {
            Ok(Some(input)) => match P::message(input) {
                Some(message) => Ok(Some(message)),
                None => Err(Stop::Failure(
                    0,
                    "Protocol error: Received empty/unknown message".to_owned(),
                )),
            },
            Ok(None) => Ok(None),
            Err(status) if is_disconnect(&status) => {
                debug!("proxy went away: {status}");
                Ok(None)
            }
            Err(status) => Err(Stop::Failure(
                0,
                format!(
                    "Protocol error: could not read a message from the proxy: {} ({:?})",
                    status.message(),
                    status.code()
                ),
            )),
        }
    }
}

/// Transport-level endings that are not the proxy's protocol errors.
fn is_disconnect(status: &Status) -> bool {
    matches!(status.code(), tonic::Code::Cancelled)
        || status.message().contains("stream no longer needed")
        || status.message().contains("connection reset")
}

/// `description (entity [id] of service [name])`.
pub(crate) fn context(description: &str, service: &str, entity_id: &str) -> String {
    format!("{description} (entity [{entity_id}] of service [{service}])")
}

/// The checks every entity command goes through before its handler: it is
/// for this entity, it has a payload, and the service has such a method.
///
/// `Err` is a protocol error (command id, description) that ends the stream;
/// `Ok(Err)` an unknown command, answered with a failure on a live stream.
#[allow(clippy::type_complexity)]
pub(crate) fn check_command<'c, 's>(
    command: &'c crate::protocol::cloudstate::Command,
    service: &str,
    entity_id: &str,
    methods: Option<&'s crate::descriptors::ServiceInfo>,
) -> Result<
    Result<
        (
            &'c crate::payload::Any,
            Option<&'s crate::descriptors::MethodInfo>,
        ),
        String,
    >,
    (i64, String),
> {
    let (id, name) = (command.id, command.name.as_str());
    if command.entity_id != entity_id {
        return Err((
            id,
            format!(
                "Protocol error: Receiving entity is not the intended recipient of command [{name}] \
                 addressed to entity [{}]",
                command.entity_id
            ),
        ));
    }
    let Some(payload) = command.payload.as_ref() else {
        return Err((
            id,
            format!("Protocol error: No command payload for command [{name}]"),
        ));
    };
    let Some(methods) = methods else {
        return Ok(Ok((payload, None)));
    };
    Ok(match methods.methods.get(name) {
        Some(method) => Ok((payload, Some(method))),
        None => Err(format!(
            "No command handler found for command [{name}] on entity [{entity_id}] of service [{service}] \
             (payload type URL [{}])",
            payload.type_url
        )),
    })
}
