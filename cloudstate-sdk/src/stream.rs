//! The life of an entity stream, shared by every entity kind: wait for
//! `init`, then handle messages one at a time, sending what each produced
//! (none, one, or several outputs) before reading the next; end with OK when
//! the proxy completes its side or the server shuts down; after a protocol
//! error send one stream-level failure and end.

use std::collections::VecDeque;
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
    /// Handles one later message, queueing its outputs in order. Outputs
    /// queued before an `Err` are still sent, ahead of the failure.
    fn handle(
        entity: &mut Self::Entity,
        message: Self::Message,
        out: &mut Outputs<Self::Out>,
    ) -> Result<(), Stop>;
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

/// Implements a protocol's generated `handle` service trait for
/// `EntityService<protocol>`: each call is served as one entity stream.
macro_rules! entity_service {
    ($service:ty, $rpc:path, $in:ty, $out:ty) => {
        #[tonic::async_trait]
        impl $rpc for $service {
            type handleStream = $crate::stream::Replies<$out>;

            async fn handle(
                &self,
                request: ::tonic::Request<::tonic::Streaming<$in>>,
            ) -> ::core::result::Result<::tonic::Response<Self::handleStream>, ::tonic::Status>
            {
                Ok($crate::stream::EntityService::handle(self, request))
            }
        }
    };
}
pub(crate) use entity_service;

/// The outputs of one input, sent before the next input is read.
pub(crate) type Outputs<Out> = VecDeque<Out>;

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
        queue: VecDeque::new(),
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
    queue: Outputs<P::Out>,
    finished: bool,
    span: tracing::Span,
}

impl<P: Protocol> EntityStream<P> {
    /// The next message to send, or `None` when the stream ends (with OK).
    async fn step(&mut self) -> Option<P::Out> {
        loop {
            if let Some(out) = self.queue.pop_front() {
                return Some(out);
            }
            if self.finished {
                return None;
            }
            if let Err(stop) = self.advance().await {
                self.finished = true;
                if let Stop::Failure(command_id, description) = stop {
                    error!(command_id, "{description}");
                    self.queue.push_back(P::failure(command_id, description));
                }
            }
        }
    }

    async fn advance(&mut self) -> Result<(), Stop> {
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
            Some(entity) => P::handle(entity, message, &mut self.queue),
            None => {
                let (entity, span) = self.protocol.start(message)?;
                self.span = span;
                self.entity = Some(entity);
                Ok(())
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
