//! Testing user functions.
//!
//! In memory, for unit tests: [`EventSourcedTestKit`], [`ValueEntityTestKit`],
//! [`CrdtTestKit`] and [`ActionTestKit`] run a registered service through the
//! same runtime as a proxy's stream or call. `new` takes a generated service
//! (`Entity(handlers)`, `Action(handlers)`) and checks it as serving does, so
//! unknown commands are refused as in production; `without_descriptors`
//! takes a hand-written one. Calls go in as the generated call builders'
//! [`TypedCall`](crate::TypedCall)s and every kit answers with an
//! [`Outcome`]: the reply typed as the method's output, forward, failure,
//! side effects, and what the kind adds. A generated service built against
//! no descriptors at all (an empty stand-in set) has nothing to be checked
//! against and runs as with `without_descriptors`.
//!
//! Over gRPC: [`ProtocolDriver`] is a proxy-role driver for conformance tests: connect to a user
//! function, play the proxy's part message by message, and expect its answers
//! by protobuf equality. Actions are called with
//! [`ProtocolDriver::action_unary`], [`action_streamed_in`](ProtocolDriver::action_streamed_in),
//! [`action_streamed_out`](ProtocolDriver::action_streamed_out) and
//! [`action_streamed`](ProtocolDriver::action_streamed), with the message
//! builders of [`action`]. CRDT entities: [`ProtocolDriver::crdt`] and the
//! builders and deltas of [`crdt`](mod@crdt).
//!
//! ```no_run
//! # async fn run(addr: std::net::SocketAddr) {
//! use cloudstate_sdk::testkit::{ProtocolDriver, eventsourced as es};
//! let driver = ProtocolDriver::connect(addr).await.unwrap();
//! let mut stream = driver.event_sourced().await;
//! stream.send(es::init("com.example.Cart", "cart-1")).await;
//! stream.complete();
//! stream.expect_closed().await;
//! # }
//! ```

pub mod action;
mod action_kit;
pub mod crdt;
mod crdt_kit;
pub mod eventsourced;
mod eventsourced_kit;
mod message;
mod outcome;
mod value_kit;
pub mod valueentity;

pub use action_kit::{ActionTestKit, StreamedCall};
pub use crdt_kit::{CancelOutcome, CrdtTestKit, Notification, StateChange};
pub use eventsourced_kit::{CommandOutcome, EventSourcedTestKit};
pub use outcome::{
    ActionExtra, ActionOutcome, CrdtExtra, CrdtOutcome, EventSourcedExtra, EventSourcedOutcome,
    Outcome, SideEffect, ValueEntityExtra, ValueEntityOutcome,
};
pub use value_kit::ValueEntityTestKit;

use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Status, Streaming};

use crate::protocol::cloudstate::action::{
    ActionCommand, ActionResponse, action_protocol_client::ActionProtocolClient,
};
use crate::protocol::cloudstate::crdt::{CrdtStreamIn, CrdtStreamOut, crdt_client::CrdtClient};
use crate::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, EventSourcedStreamOut, event_sourced_client::EventSourcedClient,
};
use crate::protocol::cloudstate::valueentity::{
    ValueEntityStreamIn, ValueEntityStreamOut, value_entity_client::ValueEntityClient,
};
use crate::protocol::cloudstate::{self as pb, entity_discovery_client::EntityDiscoveryClient};
use crate::server::entity_type;
use crate::stream::Stop;

/// The text of a stream-level failure.
fn describe(stop: &Stop) -> String {
    match stop {
        Stop::Failure(_, description) => description.clone(),
        Stop::Done => "the entity stopped".to_owned(),
    }
}

/// How long an expectation waits for a message before it fails. Generous: it
/// only keeps a broken test from hanging.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to a user function, from the proxy's side.
#[derive(Debug, Clone)]
pub struct ProtocolDriver {
    channel: Channel,
    timeout: Duration,
    max_message_size: usize,
}

impl ProtocolDriver {
    /// Connects to the user function at `addr` (h2c, no TLS, as the proxy does).
    ///
    /// # Errors
    /// When nothing accepts the connection.
    pub async fn connect(addr: SocketAddr) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        Ok(Self {
            channel,
            timeout: DEFAULT_TIMEOUT,
            max_message_size: 64 * 1024 * 1024,
        })
    }

    /// Changes how long expectations wait.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Calls `discover`.
    ///
    /// # Errors
    /// The gRPC status of the call.
    pub async fn discover(&self, info: pb::ProxyInfo) -> Result<pb::EntitySpec, Status> {
        let mut client = EntityDiscoveryClient::new(self.channel.clone())
            .max_decoding_message_size(self.max_message_size);
        Ok(client.discover(info).await?.into_inner())
    }

    /// Calls `reportError`.
    ///
    /// # Errors
    /// The gRPC status of the call.
    pub async fn report_error(&self, message: impl Into<String>) -> Result<(), Status> {
        let mut client = EntityDiscoveryClient::new(self.channel.clone());
        client
            .report_error(pb::UserFunctionError {
                message: message.into(),
            })
            .await?;
        Ok(())
    }

    /// Opens an event-sourced entity stream.
    ///
    /// The call is not awaited here: some user functions send response
    /// headers only with their first reply, so messages must flow first.
    pub async fn event_sourced(&self) -> DriverStream<EventSourcedStreamIn, EventSourcedStreamOut> {
        let (tx, rx) = mpsc::channel(64);
        let mut client = EventSourcedClient::new(self.channel.clone())
            .max_decoding_message_size(self.max_message_size)
            .max_encoding_message_size(self.max_message_size);
        let call = tokio::spawn(async move { client.handle(ReceiverStream::new(rx)).await });
        DriverStream {
            input: Some(tx),
            output: Output::Pending(call),
            timeout: self.timeout,
        }
    }
}

impl ProtocolDriver {
    /// Opens a value-entity stream (not awaited, as [`event_sourced`](Self::event_sourced)).
    pub async fn value_entity(&self) -> DriverStream<ValueEntityStreamIn, ValueEntityStreamOut> {
        let (tx, rx) = mpsc::channel(64);
        let mut client = ValueEntityClient::new(self.channel.clone())
            .max_decoding_message_size(self.max_message_size)
            .max_encoding_message_size(self.max_message_size);
        let call = tokio::spawn(async move { client.handle(ReceiverStream::new(rx)).await });
        DriverStream {
            input: Some(tx),
            output: Output::Pending(call),
            timeout: self.timeout,
        }
    }
}

impl ProtocolDriver {
    /// Opens a CRDT entity stream (`cloudstate.crdt.Crdt/handle`; not
    /// awaited, as [`event_sourced`](Self::event_sourced)).
    pub async fn crdt(&self) -> DriverStream<CrdtStreamIn, CrdtStreamOut> {
        let (tx, rx) = mpsc::channel(64);
        let mut client = CrdtClient::new(self.channel.clone())
            .max_decoding_message_size(self.max_message_size)
            .max_encoding_message_size(self.max_message_size);
        let call = tokio::spawn(async move { client.handle(ReceiverStream::new(rx)).await });
        DriverStream {
            input: Some(tx),
            output: Output::Pending(call),
            timeout: self.timeout,
        }
    }
}

impl ProtocolDriver {
    fn action_client(&self) -> ActionProtocolClient<Channel> {
        ActionProtocolClient::new(self.channel.clone())
            .max_decoding_message_size(self.max_message_size)
            .max_encoding_message_size(self.max_message_size)
    }

    /// A unary action call (`handleUnary`).
    ///
    /// # Errors
    /// The gRPC status of the call.
    pub async fn action_unary(&self, command: ActionCommand) -> Result<ActionResponse, Status> {
        let mut client = self.action_client();
        let call = client.handle_unary(command);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded("no response within the timeout")),
        }
    }

    /// Opens a streamed-in action call (`handleStreamedIn`); send the
    /// [`start`](action::start) message first.
    pub async fn action_streamed_in(&self) -> action::StreamedIn {
        let (tx, rx) = mpsc::channel(64);
        let mut client = self.action_client();
        let call =
            tokio::spawn(async move { client.handle_streamed_in(ReceiverStream::new(rx)).await });
        action::StreamedIn {
            input: Some(tx),
            call,
            timeout: self.timeout,
        }
    }

    /// A streamed-out action call (`handleStreamedOut`): its responses, as a
    /// stream whose input is already complete.
    pub async fn action_streamed_out(
        &self,
        command: ActionCommand,
    ) -> DriverStream<ActionCommand, ActionResponse> {
        let mut client = self.action_client();
        let call = tokio::spawn(async move { client.handle_streamed_out(command).await });
        DriverStream {
            input: None,
            output: Output::Pending(call),
            timeout: self.timeout,
        }
    }

    /// Opens a bidirectional action call (`handleStreamed`); send the
    /// [`start`](action::start) message first.
    pub async fn action_streamed(&self) -> DriverStream<ActionCommand, ActionResponse> {
        let (tx, rx) = mpsc::channel(64);
        let mut client = self.action_client();
        let call =
            tokio::spawn(async move { client.handle_streamed(ReceiverStream::new(rx)).await });
        DriverStream {
            input: Some(tx),
            output: Output::Pending(call),
            timeout: self.timeout,
        }
    }
}

/// `ProxyInfo` as the official proxy sends it: protocol 0.2, every entity type.
pub fn proxy_info() -> pb::ProxyInfo {
    pb::ProxyInfo {
        protocol_major_version: 0,
        protocol_minor_version: 2,
        proxy_name: "cloudstate-rust-testkit".to_owned(),
        proxy_version: env!("CARGO_PKG_VERSION").to_owned(),
        supported_entity_types: vec![
            entity_type::ACTION.to_owned(),
            entity_type::VALUE_ENTITY.to_owned(),
            entity_type::EVENT_SOURCED.to_owned(),
            entity_type::CRDT.to_owned(),
        ],
    }
}

/// One bidirectional protocol stream, driven from the proxy's side.
#[derive(Debug)]
pub struct DriverStream<I, O> {
    input: Option<mpsc::Sender<I>>,
    output: Output<O>,
    timeout: Duration,
}

#[derive(Debug)]
enum Output<O> {
    Pending(tokio::task::JoinHandle<Result<tonic::Response<Streaming<O>>, Status>>),
    Open(Box<Streaming<O>>),
}

impl<O> Output<O> {
    async fn message(&mut self) -> Result<Option<O>, Status> {
        if let Self::Pending(call) = self {
            let response = call
                .await
                .map_err(|e| Status::internal(format!("the stream task failed: {e}")))??;
            *self = Self::Open(Box::new(response.into_inner()));
        }
        match self {
            Self::Open(streaming) => streaming.message().await,
            Self::Pending(_) => unreachable!("opened above"),
        }
    }
}

impl<I: Debug, O: Debug + PartialEq> DriverStream<I, O> {
    /// Sends one message to the user function.
    ///
    /// # Panics
    /// When the stream was completed, or the user function stopped reading.
    #[track_caller]
    pub fn send(&self, message: I) -> impl Future<Output = ()> + '_ {
        let input = self
            .input
            .as_ref()
            .expect("the input was already completed");
        async move {
            input
                .send(message)
                .await
                .expect("the user function stopped reading the stream");
        }
    }

    /// Completes the input, as the proxy does to passivate an entity.
    pub fn complete(&mut self) {
        self.input = None;
    }

    /// The next message or end of stream, within the timeout.
    ///
    /// # Panics
    /// When nothing arrives in time.
    pub async fn next(&mut self) -> Option<Result<O, Status>> {
        match tokio::time::timeout(self.timeout, self.output.message()).await {
            Ok(Ok(Some(message))) => Some(Ok(message)),
            Ok(Ok(None)) => None,
            Ok(Err(status)) => Some(Err(status)),
            Err(_) => panic!(
                "no message from the user function within {:?}",
                self.timeout
            ),
        }
    }

    /// The next message, which must arrive.
    ///
    /// # Panics
    /// On end of stream, an error status or a timeout.
    pub async fn next_message(&mut self) -> O {
        match self.next().await {
            Some(Ok(message)) => message,
            Some(Err(status)) => panic!("expected a message, the stream failed with {status:?}"),
            None => panic!("expected a message, the stream ended"),
        }
    }

    /// Expects exactly `expected` (protobuf equality: absent and default
    /// fields differ) as the next message.
    ///
    /// # Panics
    /// When another message, an error or the end of the stream comes instead.
    pub async fn expect(&mut self, expected: impl Into<O>) {
        let expected = expected.into();
        let actual = self.next_message().await;
        assert_eq!(
            actual, expected,
            "unexpected message from the user function"
        );
    }

    /// Expects the output to end with status OK and nothing before it.
    ///
    /// # Panics
    /// When a message or an error status comes instead.
    pub async fn expect_closed(&mut self) {
        match self.next().await {
            None => {}
            Some(Ok(message)) => panic!("expected the stream to end, got {message:?}"),
            Some(Err(status)) => panic!("expected the stream to end with OK, got {status:?}"),
        }
    }

    /// Completes the input and expects the output to end with OK.
    ///
    /// # Panics
    /// As [`expect_closed`](Self::expect_closed).
    pub async fn passivate(&mut self) {
        self.complete();
        self.expect_closed().await;
    }
}

/// A user function serving on an ephemeral port of 127.0.0.1, for tests.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), crate::Error>>,
}

impl TestServer {
    /// Binds 127.0.0.1:0 and serves `server` on it in a background task.
    ///
    /// # Panics
    /// When binding fails.
    pub async fn start(server: crate::CloudState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_with_listener(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A driver connected to it.
    ///
    /// # Panics
    /// When the connection fails.
    pub async fn driver(&self) -> ProtocolDriver {
        ProtocolDriver::connect(self.addr)
            .await
            .expect("connect to the test server")
    }

    /// Signals a graceful shutdown and waits for the server to stop.
    ///
    /// # Errors
    /// What serving returned.
    ///
    /// # Panics
    /// When the server task panicked.
    pub async fn shutdown(mut self) -> Result<(), crate::Error> {
        self.signal_shutdown();
        (&mut self.task).await.expect("server task panicked")
    }

    /// Signals a graceful shutdown without waiting; [`join`](Self::join) waits.
    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server to stop by itself (e.g. after a failed start).
    ///
    /// # Errors
    /// What serving returned.
    ///
    /// # Panics
    /// When the server task panicked.
    pub async fn join(mut self) -> Result<(), crate::Error> {
        (&mut self.task).await.expect("server task panicked")
    }
}
