//! Active entities: one task per entity (per replica, for CRDTs) owns its
//! stream to the user function and a mailbox. The registry here starts
//! tasks, hands them mail, and lets idle ones passivate without losing a
//! command; what a task does with its stream is its [`Driver`]'s: the
//! lock-step driver of event-sourced and value entities (one command at a
//! time, see [`lockstep`]), or the duplex driver of CRDTs (see [`crdt`]).

/// Implements [`StreamShape`] for an entity protocol: every one has the
/// same stream shape (a `handle` call; commands in the input oneof).
macro_rules! stream_shape {
    (
        $kind:ty,
        client: $client:ident,
        input: $input:ident, $input_oneof:ident,
        output: $output:ident,
        observed: $observed_in:ident, $observed_out:ident $(,)?
    ) => {
        impl $crate::entity::StreamShape for $kind {
            type In = $input;
            type Out = $output;

            fn observed_in(stream: u64, message: $input) -> $crate::observe::Observed {
                $crate::observe::Observed::$observed_in(stream, message)
            }

            fn observed_out(stream: u64, message: $output) -> $crate::observe::Observed {
                $crate::observe::Observed::$observed_out(stream, message)
            }

            fn command(command: ::cloudstate_sdk::protocol::cloudstate::Command) -> $input {
                $input {
                    message: Some($input_oneof::Command(command)),
                }
            }

            async fn call(
                channel: ::tonic::transport::Channel,
                max_message_size: usize,
                input: ::tokio_stream::wrappers::UnboundedReceiverStream<$input>,
            ) -> Result<::tonic::Response<::tonic::Streaming<$output>>, ::tonic::Status> {
                $client::new(channel)
                    .max_decoding_message_size(max_message_size)
                    .max_encoding_message_size(max_message_size)
                    .handle(input)
                    .await
            }
        }
    };
}

/// The `classify` of a lock-step [`Protocol`]: replies and stream failures
/// in the output oneof.
macro_rules! classify_replies {
    ($output:ident, $output_oneof:ident) => {
        fn classify(out: $output) -> $crate::entity::Received<Self::Reply> {
            match out.message {
                Some($output_oneof::Reply(reply)) => {
                    $crate::entity::Received::Reply(reply.command_id, reply)
                }
                Some($output_oneof::Failure(failure)) => $crate::entity::Received::Failure(failure),
                None => $crate::entity::Received::Empty,
            }
        }
    };
}

mod crdt;
mod eventsourced;
mod lockstep;
mod value;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate as pb;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;
use tracing::{debug, warn};

pub(crate) use crdt::{Crdt, CrdtSlots, Gossip, Replication};
pub(crate) use eventsourced::EventSourced;
pub(crate) use lockstep::{Lockstep, Protocol, Received};
pub(crate) use value::ValueEntity;

use crate::error::ProxyError;
use crate::model::ServiceModel;
use crate::observe::{Observed, Observer};
use crate::router::Router;
use crate::store::Store;

/// What an entity answered a command with.
#[derive(Debug, Clone, Default)]
pub(crate) struct UfReply {
    pub(crate) client_action: Option<pb::ClientAction>,
    pub(crate) side_effects: Vec<pb::SideEffect>,
}

/// Where the answers to a command go.
pub(crate) enum ReplyTo {
    /// One answer.
    Unary(oneshot::Sender<Result<UfReply, ProxyError>>),
    /// A server-streaming CRDT call: every answer, until the sender is
    /// dropped; `gone` resolves when the client goes away.
    Streamed {
        answers: mpsc::UnboundedSender<Result<UfReply, ProxyError>>,
        gone: oneshot::Receiver<()>,
    },
}

impl ReplyTo {
    /// Sends the one answer of a unary call, or the first of a stream.
    pub(crate) fn send(self, answer: Result<UfReply, ProxyError>) {
        match self {
            Self::Unary(tx) => {
                let _ = tx.send(answer);
            }
            Self::Streamed { answers, .. } => {
                let _ = answers.send(answer);
            }
        }
    }
}

/// A command waiting for its entity.
pub(crate) struct Envelope {
    pub(crate) name: String,
    pub(crate) payload: Any,
    pub(crate) reply: ReplyTo,
}

/// What an entity task receives.
pub(crate) enum Mail {
    /// A client's command.
    Command(Envelope),
    /// Another replica's state (CRDTs only).
    Gossip(Gossip),
}

impl Mail {
    /// Answers a command that will not run; other mail is dropped.
    fn refuse(self, error: ProxyError) {
        if let Self::Command(envelope) = self {
            envelope.reply.send(Err(error));
        }
    }
}

/// What entity tasks share.
pub(crate) struct Shared {
    pub(crate) channel: Channel,
    pub(crate) store: Store,
    pub(crate) observer: Observer,
    pub(crate) max_message_size: usize,
    pub(crate) streams: AtomicU64,
    /// How many replicas each CRDT entity has, and how they gossip.
    pub(crate) replicas: crdt::Replication,
    /// CRDT state of replicas whose task is not running.
    pub(crate) crdts: CrdtSlots,
    /// For what entities do beyond replying: side effects without a
    /// client, `reportError` (set once the router exists).
    pub(crate) router: OnceLock<Weak<Router>>,
}

impl Shared {
    pub(crate) fn router(&self) -> Option<Arc<Router>> {
        self.router.get().and_then(Weak::upgrade)
    }
}

/// Service, entity id, replica (0 unless CRDTs run replicated).
type Key = (String, String, u32);

/// The active entities.
pub(crate) struct Entities {
    shared: Arc<Shared>,
    /// Each entry carries its task's number, so a task only ever removes its own.
    active: Mutex<HashMap<Key, (u64, mpsc::Sender<Mail>)>>,
    incarnations: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Mail queued per entity before senders wait.
const MAILBOX: usize = 1024;

/// What runs an entity task.
pub(crate) trait Driver: Send + 'static {
    /// Serves the entity until it passivates or stops.
    fn run(task: Task) -> impl Future<Output = ()> + Send + 'static;
}

/// One entity task: what its driver runs on.
pub(crate) struct Task {
    pub(crate) entities: Arc<Entities>,
    pub(crate) service: Arc<ServiceModel>,
    pub(crate) entity_id: String,
    pub(crate) replica: u32,
    pub(crate) mailbox: mpsc::Receiver<Mail>,
    /// This task's number in the registry.
    id: u64,
}

impl Entities {
    pub(crate) fn new(shared: Shared) -> Arc<Self> {
        Arc::new(Self {
            shared: Arc::new(shared),
            active: Mutex::default(),
            incarnations: AtomicU64::new(0),
            tasks: Mutex::default(),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A new stream number (action calls share the numbering).
    pub(crate) fn next_number(&self) -> u64 {
        self.shared.streams.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Hands mail to an entity (a replica of it), starting the entity with
    /// driver `D` if it is not active.
    pub(crate) async fn dispatch<D: Driver>(
        self: &Arc<Self>,
        service: &Arc<ServiceModel>,
        entity_id: String,
        replica: u32,
        mail: Mail,
    ) {
        let command = matches!(mail, Mail::Command(_));
        let key = (service.name.clone(), entity_id, replica);
        self.hand_over::<D>(service, &key, mail).await;
        // Observed once the command is in the mailbox (or with the entity
        // it started), so a test that waits for it knows where it is.
        if command {
            self.shared.observer.emit(|| Observed::Dispatched {
                service: key.0.clone(),
                entity_id: key.1.clone(),
            });
        }
    }

    async fn hand_over<D: Driver>(
        self: &Arc<Self>,
        service: &Arc<ServiceModel>,
        key: &Key,
        mail: Mail,
    ) {
        let mut mail = mail;
        loop {
            let sender = {
                let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((_, tx)) = active.get(key) {
                    match tx.try_send(mail) {
                        Ok(()) => return,
                        Err(mpsc::error::TrySendError::Full(back)) => {
                            mail = back;
                            Some(tx.clone())
                        }
                        Err(mpsc::error::TrySendError::Closed(back)) => {
                            mail = back;
                            active.remove(key);
                            None
                        }
                    }
                } else {
                    let (tx, rx) = mpsc::channel(MAILBOX);
                    if let Err(
                        mpsc::error::TrySendError::Full(back)
                        | mpsc::error::TrySendError::Closed(back),
                    ) = tx.try_send(mail)
                    {
                        mail = back;
                        continue;
                    }
                    let id = self.incarnations.fetch_add(1, Ordering::Relaxed);
                    active.insert(key.clone(), (id, tx));
                    let task = Task {
                        entities: Arc::clone(self),
                        service: Arc::clone(service),
                        entity_id: key.1.clone(),
                        replica: key.2,
                        mailbox: rx,
                        id,
                    };
                    let handle = tokio::spawn(D::run(task));
                    let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
                    tasks.retain(|t| !t.is_finished());
                    tasks.push(handle);
                    return;
                }
            };
            // A full mailbox: wait outside the lock, like the official stash.
            if let Some(sender) = sender {
                match sender.send(mail).await {
                    Ok(()) => return,
                    Err(mpsc::error::SendError(back)) => mail = back,
                }
            }
        }
    }

    /// Passivates every entity and waits for their streams to end.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            warn!("entities still running after {grace:?}");
        }
    }
}

impl Task {
    /// Removes this task's entry (not a later incarnation's) from `active`
    /// and closes the mailbox, under the registry's lock.
    fn leave(&mut self, active: &mut HashMap<Key, (u64, mpsc::Sender<Mail>)>) {
        let key = self.key();
        if active.get(&key).is_some_and(|(id, _)| *id == self.id) {
            active.remove(&key);
        }
        self.mailbox.close();
    }

    fn key(&self) -> Key {
        (
            self.service.name.clone(),
            self.entity_id.clone(),
            self.replica,
        )
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.entities.shared
    }

    /// Leaves the registry if the mailbox is empty; then no mail can reach
    /// this task any more.
    pub(crate) fn retire_if_idle(&mut self) -> bool {
        let entities = Arc::clone(&self.entities);
        let mut active = entities.active.lock().unwrap_or_else(|e| e.into_inner());
        if !self.mailbox.is_empty() {
            return false;
        }
        self.leave(&mut active);
        true
    }

    /// Leaves the registry and answers the commands still queued with `error`.
    pub(crate) fn retire(&mut self, error: &ProxyError) {
        let entities = Arc::clone(&self.entities);
        self.leave(&mut entities.active.lock().unwrap_or_else(|e| e.into_inner()));
        while let Ok(mail) = self.mailbox.try_recv() {
            mail.refuse(error.clone());
        }
    }
}

/// The messages of an entity protocol's stream, for the proxy.
pub(crate) trait StreamShape: Sized + Send + Sync + 'static {
    /// The stream's input message.
    type In: Clone + Send + Sync + 'static;
    /// The stream's output message.
    type Out: Clone + Send + Sync + 'static;

    /// An input message, as observed.
    fn observed_in(stream: u64, message: Self::In) -> Observed;
    /// An output message, as observed.
    fn observed_out(stream: u64, message: Self::Out) -> Observed;

    /// A command as an input message.
    fn command(command: pb::Command) -> Self::In;

    /// Opens the stream.
    fn call(
        channel: Channel,
        max_message_size: usize,
        input: UnboundedReceiverStream<Self::In>,
    ) -> impl Future<Output = Result<tonic::Response<Streaming<Self::Out>>, tonic::Status>>
    + Send
    + 'static;
}

/// How long a closing stream may take to end its side.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// One open stream to the user function.
pub(crate) struct Stream<S: StreamShape> {
    pub(crate) number: u64,
    input: Option<mpsc::UnboundedSender<S::In>>,
    output: Output<S::Out>,
    observer: Observer,
    /// How the user function's side failed, when it did.
    failed: Option<String>,
}

/// The log's account of a stream the user function's side failed.
fn failed_because(status: &tonic::Status) -> String {
    let hint = if status.code() == tonic::Code::OutOfRange {
        " (a message over the size limit of one side: the user function's answer is too large)"
    } else {
        ""
    };
    format!(
        "the stream failed with status {:?}: {}{hint}",
        status.code(),
        status.message()
    )
}

/// The response side of a stream. Some servers (grpc-go) send response
/// headers only with their first message, which comes after the first
/// command: the call is therefore not awaited before commands are sent.
enum Output<O> {
    Pending(JoinHandle<Result<tonic::Response<Streaming<O>>, tonic::Status>>),
    Open(Box<Streaming<O>>),
    Ended,
}

impl<S: StreamShape> Stream<S> {
    /// Opens a stream for `service`/`entity_id` and sends `opening` first.
    pub(crate) fn open(
        shared: &Shared,
        service: &ServiceModel,
        entity_id: &str,
        opening: Vec<S::In>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let number = shared.streams.fetch_add(1, Ordering::Relaxed) + 1;
        shared.observer.emit(|| Observed::StreamOpened {
            stream: number,
            service: service.name.clone(),
            entity_id: entity_id.to_owned(),
        });
        let call = tokio::spawn(S::call(
            shared.channel.clone(),
            shared.max_message_size,
            UnboundedReceiverStream::new(rx),
        ));
        let mut stream = Stream {
            number,
            input: Some(tx),
            output: Output::Pending(call),
            observer: shared.observer.clone(),
            failed: None,
        };
        for message in opening {
            stream.send(message);
        }
        stream
    }

    /// Sends a message; `false` once the stream is closed.
    pub(crate) fn send(&mut self, message: S::In) -> bool {
        self.observer
            .emit(|| S::observed_in(self.number, message.clone()));
        self.input
            .as_ref()
            .is_some_and(|input| input.send(message).is_ok())
    }

    /// Sends `message`, then reads the answer; `None` when the stream is over.
    pub(crate) async fn exchange(&mut self, message: S::In) -> Option<S::Out> {
        if !self.send(message) {
            return None;
        }
        self.message().await
    }

    /// The next message from the user function; `None` once its side has
    /// ended (observed once, with whether it ended with OK). Cancel-safe.
    pub(crate) async fn message(&mut self) -> Option<S::Out> {
        if let Output::Pending(call) = &mut self.output {
            match call.await {
                Ok(Ok(response)) => self.output = Output::Open(Box::new(response.into_inner())),
                Ok(Err(status)) => {
                    debug!(
                        stream = self.number,
                        "the user function refused the stream: {status}"
                    );
                    self.failed = Some(format!("the user function refused the stream: {status}"));
                    return self.ended(false);
                }
                Err(e) => {
                    debug!(stream = self.number, "the stream's call failed: {e}");
                    return self.ended(false);
                }
            }
        }
        let Output::Open(streaming) = &mut self.output else {
            return None;
        };
        match streaming.message().await {
            Ok(Some(out)) => {
                self.observer
                    .emit(|| S::observed_out(self.number, out.clone()));
                Some(out)
            }
            Ok(None) => self.ended(true),
            Err(status) => {
                debug!(
                    stream = self.number,
                    "the user function failed the stream: {status}"
                );
                self.failed = Some(failed_because(&status));
                self.ended(false)
            }
        }
    }

    /// Why the user function's side ended, for the log.
    pub(crate) fn end_reason(&self) -> String {
        self.failed
            .clone()
            .unwrap_or_else(|| "the user function ended the stream".to_owned())
    }

    fn ended(&mut self, ok: bool) -> Option<S::Out> {
        self.output = Output::Ended;
        self.observer.emit(|| Observed::OutputClosed {
            stream: self.number,
            ok,
        });
        None
    }

    /// Half-closes the stream and waits (at most [`CLOSE_GRACE`]) for the
    /// user function to end its side.
    pub(crate) async fn close(mut self) {
        self.input = None;
        self.observer.emit(|| Observed::InputClosed(self.number));
        let drain = async { while self.message().await.is_some() {} };
        if tokio::time::timeout(CLOSE_GRACE, drain).await.is_err() {
            self.ended(false);
        }
    }
}
