//! The five services, each forwarding to the user function and recording.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use cloudstate_sdk::protocol::cloudstate as pb;
use cloudstate_sdk::protocol::cloudstate::action::{
    ActionCommand, ActionResponse,
    action_protocol_client::ActionProtocolClient,
    action_protocol_server::{ActionProtocol, ActionProtocolServer},
};
use cloudstate_sdk::protocol::cloudstate::crdt::{
    CrdtStreamIn, CrdtStreamOut,
    crdt_client::CrdtClient,
    crdt_server::{Crdt, CrdtServer},
};
use cloudstate_sdk::protocol::cloudstate::entity_discovery_client::EntityDiscoveryClient;
use cloudstate_sdk::protocol::cloudstate::entity_discovery_server::{
    EntityDiscovery, EntityDiscoveryServer,
};
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, EventSourcedStreamOut,
    event_sourced_client::EventSourcedClient,
    event_sourced_server::{EventSourced, EventSourcedServer},
};
use cloudstate_sdk::protocol::cloudstate::valueentity::{
    ValueEntityStreamIn, ValueEntityStreamOut,
    value_entity_client::ValueEntityClient,
    value_entity_server::{ValueEntity, ValueEntityServer},
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::codegen::{Bytes, Service as TowerService, http};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{CancellationHandle, Code, Extensions, Request, Response, Status, Streaming};

use super::{CallStatus, Event, InMessage, MAX_MESSAGE_SIZE, OutMessage, Service, Shared};

/// Messages buffered per direction and call; beyond that, back-pressure.
const BUFFER: usize = 16;

/// Metadata not passed on: the recorder decodes and re-encodes every
/// message uncompressed, so the peers' encoding headers do not apply.
const NOT_FORWARDED: [&str; 3] = ["grpc-encoding", "grpc-accept-encoding", "content-length"];

/// Serves the recorder on `listener` until the task is aborted.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    user_function: SocketAddr,
    shared: Arc<Shared>,
) {
    let endpoint = Endpoint::from_shared(format!("http://{user_function}"))
        .expect("a socket address makes a valid URI");
    let forwarder = Forwarder {
        channel: endpoint.connect_lazy(),
        shared,
    };
    let served = tonic::transport::Server::builder()
        .add_service(Watched(
            EntityDiscoveryServer::new(forwarder.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ))
        .add_service(Watched(
            EventSourcedServer::new(forwarder.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ))
        .add_service(Watched(
            ValueEntityServer::new(forwarder.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ))
        .add_service(Watched(
            CrdtServer::new(forwarder.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ))
        .add_service(Watched(
            ActionProtocolServer::new(forwarder)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ))
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await;
    if let Err(e) = served {
        tracing::error!("the recorder stopped serving: {e}");
    }
}

/// Set when the proxy's request body failed (a reset) rather than ended.
/// tonic reports a cancelled request stream as a plain end, so this is how
/// a cancellation is told from a half-close.
#[derive(Debug, Clone, Default)]
struct InputFailed(Arc<AtomicBool>);

impl InputFailed {
    fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A generated server whose requests carry an [`InputFailed`] flag.
#[derive(Debug, Clone)]
struct Watched<S>(S);

impl<S: NamedService> NamedService for Watched<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> TowerService<http::Request<tonic::body::Body>> for Watched<S>
where
    S: TowerService<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let failed = InputFailed::default();
        request.extensions_mut().insert(failed.clone());
        self.0
            .call(request.map(|inner| tonic::body::Body::new(WatchedBody { inner, failed })))
    }
}

/// A request body that sets its flag when it fails.
struct WatchedBody {
    inner: tonic::body::Body,
    failed: InputFailed,
}

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Err(_)) = &frame {
            self.failed.0.store(true, Ordering::Release);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Debug, Clone)]
struct Forwarder {
    channel: Channel,
    shared: Arc<Shared>,
}

type Out<O> = ReceiverStream<Result<O, Status>>;

/// `metadata` as it goes to the other side.
fn forwarded(mut metadata: MetadataMap) -> MetadataMap {
    for name in NOT_FORWARDED {
        metadata.remove(name);
    }
    metadata
}

/// One call in progress. Dropped before the call ended (the proxy cancelled
/// a unary call, or dropped a stream's response), it records the call
/// cancelled; dropped at all, it cancels the forwarded call (a no-op once
/// that completed) and stops reading the proxy's input.
struct CallGuard {
    shared: Arc<Shared>,
    id: usize,
    cancel: Option<CancellationHandle>,
    pump: Option<tokio::task::AbortHandle>,
}

impl CallGuard {
    fn record(&self, event: Event) {
        self.shared.push(self.id, event);
    }

    fn end(&self, status: CallStatus) {
        self.shared.end(self.id, status);
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.shared.end(
            self.id,
            CallStatus {
                code: Code::Cancelled,
                message: "the proxy cancelled the call".to_owned(),
            },
        );
        // Cancel before the pump lets go of the input sender, so the user
        // function sees a reset, not a half-close.
        if let Some(cancel) = self.cancel.take() {
            cancel.cancel();
        }
        if let Some(pump) = self.pump.take() {
            pump.abort();
        }
    }
}

/// Resolves with the status that ended the proxy's input, if it fails;
/// never otherwise.
async fn input_failure(failed: &mut Option<oneshot::Receiver<Status>>) -> Status {
    if let Some(rx) = failed.as_mut()
        && let Ok(status) = rx.await
    {
        *failed = None;
        return status;
    }
    *failed = None;
    std::future::pending().await
}

impl Forwarder {
    fn start(&self, service: Service, method: &'static str, metadata: &MetadataMap) -> CallGuard {
        CallGuard {
            shared: Arc::clone(&self.shared),
            id: self.shared.start(service, method, metadata),
            cancel: None,
            pump: None,
        }
    }

    /// A call with one request message.
    fn single<I: InMessage>(
        &self,
        service: Service,
        method: &'static str,
        request: Request<I>,
    ) -> (CallGuard, Request<I>) {
        let (metadata, _, message) = request.into_parts();
        let mut guard = self.start(service, method, &metadata);
        guard.record(Event::In(message.clone().wrap()));
        let mut outgoing = Request::from_parts(forwarded(metadata), Extensions::default(), message);
        guard.cancel = Some(outgoing.cancellation_handle());
        (guard, outgoing)
    }

    /// A call with a request stream: a task moves the proxy's messages to
    /// the user function, recording them; a failure of the input is
    /// reported on the receiver.
    fn streamed<I: InMessage>(
        &self,
        service: Service,
        method: &'static str,
        request: Request<Streaming<I>>,
    ) -> (
        CallGuard,
        Request<ReceiverStream<I>>,
        Option<oneshot::Receiver<Status>>,
    ) {
        let (metadata, extensions, inbound) = request.into_parts();
        let input_failed = extensions.get::<InputFailed>().cloned().unwrap_or_default();
        let mut guard = self.start(service, method, &metadata);
        let (tx, rx) = mpsc::channel(BUFFER);
        let (failed_tx, failed_rx) = oneshot::channel();
        let pump = tokio::spawn(pump(
            Input {
                inbound,
                failed: input_failed,
            },
            tx,
            Arc::clone(&self.shared),
            guard.id,
            failed_tx,
        ));
        guard.pump = Some(pump.abort_handle());
        let mut outgoing = Request::from_parts(
            forwarded(metadata),
            Extensions::default(),
            ReceiverStream::new(rx),
        );
        guard.cancel = Some(outgoing.cancellation_handle());
        (guard, outgoing, Some(failed_rx))
    }

    /// Forwards a call with one response message.
    async fn unary_response<O, F>(
        guard: CallGuard,
        mut failed: Option<oneshot::Receiver<Status>>,
        call: F,
    ) -> Result<Response<O>, Status>
    where
        O: OutMessage,
        F: Future<Output = Result<Response<O>, Status>>,
    {
        let result = tokio::select! {
            result = call => result,
            status = input_failure(&mut failed) => Err(status),
        };
        match result {
            Ok(response) => {
                let (metadata, message, _) = response.into_parts();
                guard.record(Event::Out(message.clone().wrap()));
                guard.end(CallStatus::ok());
                Ok(Response::from_parts(
                    forwarded(metadata),
                    message,
                    Extensions::default(),
                ))
            }
            Err(status) => {
                guard.end(CallStatus::from(&status));
                Err(status)
            }
        }
    }

    /// Forwards a call with a response stream: once the user function's
    /// response headers arrive, a task relays its messages.
    async fn streamed_response<O, F>(
        guard: CallGuard,
        mut failed: Option<oneshot::Receiver<Status>>,
        call: F,
    ) -> Result<Response<Out<O>>, Status>
    where
        O: OutMessage,
        F: Future<Output = Result<Response<Streaming<O>>, Status>>,
    {
        let result = tokio::select! {
            result = call => result,
            status = input_failure(&mut failed) => Err(status),
        };
        match result {
            Ok(response) => {
                let (metadata, streaming, _) = response.into_parts();
                let (tx, rx) = mpsc::channel(BUFFER);
                tokio::spawn(relay(streaming, tx, guard, failed));
                Ok(Response::from_parts(
                    forwarded(metadata),
                    ReceiverStream::new(rx),
                    Extensions::default(),
                ))
            }
            Err(status) => {
                guard.end(CallStatus::from(&status));
                Err(status)
            }
        }
    }
}

/// The proxy's request stream, with cancellations told from ends.
struct Input<I> {
    inbound: Streaming<I>,
    failed: InputFailed,
}

impl<I> Input<I> {
    async fn message(&mut self) -> Result<Option<I>, Status> {
        match self.inbound.message().await {
            Ok(None) if self.failed.get() => Err(Status::cancelled("the proxy cancelled the call")),
            other => other,
        }
    }
}

/// Moves the proxy's input to the user function. On a failure (a
/// cancellation, a message that does not decode) it reports the status and
/// holds the sender until aborted, so the input is reset rather than completed.
async fn pump<I: InMessage>(
    mut input: Input<I>,
    tx: mpsc::Sender<I>,
    shared: Arc<Shared>,
    id: usize,
    failed: oneshot::Sender<Status>,
) {
    loop {
        match input.message().await {
            Ok(Some(message)) => {
                shared.push(id, Event::In(message.clone().wrap()));
                if tx.send(message).await.is_err() {
                    // The user function's call is over; the relay ends it.
                    return;
                }
            }
            Ok(None) => {
                shared.push(id, Event::InClosed);
                return;
            }
            Err(status) => {
                let _ = failed.send(status);
                return std::future::pending().await;
            }
        }
    }
}

/// Relays the user function's output to the proxy until either side ends it.
async fn relay<O: OutMessage>(
    mut streaming: Streaming<O>,
    tx: mpsc::Sender<Result<O, Status>>,
    guard: CallGuard,
    mut failed: Option<oneshot::Receiver<Status>>,
) {
    loop {
        tokio::select! {
            // The proxy dropped the response: the guard records the call
            // cancelled and cancels the user function's call.
            () = tx.closed() => return,
            status = input_failure(&mut failed) => {
                guard.end(CallStatus::from(&status));
                let _ = tx.send(Err(status)).await;
                return;
            }
            next = streaming.message() => match next {
                Ok(Some(message)) => {
                    guard.record(Event::Out(message.clone().wrap()));
                    if tx.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    guard.end(CallStatus::ok());
                    return;
                }
                Err(status) => {
                    guard.end(CallStatus::from(&status));
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            },
        }
    }
}

impl Forwarder {
    fn discovery(&self) -> EntityDiscoveryClient<Channel> {
        EntityDiscoveryClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    fn action(&self) -> ActionProtocolClient<Channel> {
        ActionProtocolClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }
}

#[tonic::async_trait]
impl EntityDiscovery for Forwarder {
    async fn discover(
        &self,
        request: Request<pb::ProxyInfo>,
    ) -> Result<Response<pb::EntitySpec>, Status> {
        let (guard, outgoing) = self.single(Service::EntityDiscovery, "discover", request);
        let mut client = self.discovery();
        Self::unary_response(guard, None, client.discover(outgoing)).await
    }

    async fn report_error(
        &self,
        request: Request<pb::UserFunctionError>,
    ) -> Result<Response<()>, Status> {
        let (guard, outgoing) = self.single(Service::EntityDiscovery, "reportError", request);
        let mut client = self.discovery();
        Self::unary_response(guard, None, client.report_error(outgoing)).await
    }
}

#[tonic::async_trait]
impl EventSourced for Forwarder {
    type handleStream = Out<EventSourcedStreamOut>;

    async fn handle(
        &self,
        request: Request<Streaming<EventSourcedStreamIn>>,
    ) -> Result<Response<Self::handleStream>, Status> {
        let (guard, outgoing, failed) = self.streamed(Service::EventSourced, "handle", request);
        let mut client = EventSourcedClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Self::streamed_response(guard, failed, client.handle(outgoing)).await
    }
}

#[tonic::async_trait]
impl ValueEntity for Forwarder {
    type handleStream = Out<ValueEntityStreamOut>;

    async fn handle(
        &self,
        request: Request<Streaming<ValueEntityStreamIn>>,
    ) -> Result<Response<Self::handleStream>, Status> {
        let (guard, outgoing, failed) = self.streamed(Service::ValueEntity, "handle", request);
        let mut client = ValueEntityClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Self::streamed_response(guard, failed, client.handle(outgoing)).await
    }
}

#[tonic::async_trait]
impl Crdt for Forwarder {
    type handleStream = Out<CrdtStreamOut>;

    async fn handle(
        &self,
        request: Request<Streaming<CrdtStreamIn>>,
    ) -> Result<Response<Self::handleStream>, Status> {
        let (guard, outgoing, failed) = self.streamed(Service::Crdt, "handle", request);
        let mut client = CrdtClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Self::streamed_response(guard, failed, client.handle(outgoing)).await
    }
}

#[tonic::async_trait]
impl ActionProtocol for Forwarder {
    async fn handle_unary(
        &self,
        request: Request<ActionCommand>,
    ) -> Result<Response<ActionResponse>, Status> {
        let (guard, outgoing) = self.single(Service::Action, "handleUnary", request);
        let mut client = self.action();
        Self::unary_response(guard, None, client.handle_unary(outgoing)).await
    }

    async fn handle_streamed_in(
        &self,
        request: Request<Streaming<ActionCommand>>,
    ) -> Result<Response<ActionResponse>, Status> {
        let (guard, outgoing, failed) = self.streamed(Service::Action, "handleStreamedIn", request);
        let mut client = self.action();
        Self::unary_response(guard, failed, client.handle_streamed_in(outgoing)).await
    }

    type handleStreamedOutStream = Out<ActionResponse>;

    async fn handle_streamed_out(
        &self,
        request: Request<ActionCommand>,
    ) -> Result<Response<Self::handleStreamedOutStream>, Status> {
        let (guard, outgoing) = self.single(Service::Action, "handleStreamedOut", request);
        let mut client = self.action();
        Self::streamed_response(guard, None, client.handle_streamed_out(outgoing)).await
    }

    type handleStreamedStream = Out<ActionResponse>;

    async fn handle_streamed(
        &self,
        request: Request<Streaming<ActionCommand>>,
    ) -> Result<Response<Self::handleStreamedStream>, Status> {
        let (guard, outgoing, failed) = self.streamed(Service::Action, "handleStreamed", request);
        let mut client = self.action();
        Self::streamed_response(guard, failed, client.handle_streamed(outgoing)).await
    }
}
