//! Active entities of the kinds that hold one stream each to the user
//! function: event-sourced and value entities. One task per entity owns its
//! stream and a mailbox of commands handled one at a time; the entity's state
//! is written before the reply; idle entities passivate. What differs between
//! the two protocols (opening messages, replies, storage, error texts) is a
//! [`Protocol`].

/// The items of a [`Protocol`] impl that only name generated types: every
/// entity protocol has the same stream shape (a `handle` call; commands in
/// the input oneof; replies and stream failures in the output oneof).
macro_rules! stream_shape {
    (
        client: $client:ident,
        input: $input:ident, $input_oneof:ident,
        output: $output:ident, $output_oneof:ident,
        observed: $observed_in:ident, $observed_out:ident $(,)?
    ) => {
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
            input: ::tokio_stream::wrappers::ReceiverStream<$input>,
        ) -> Result<::tonic::Response<::tonic::Streaming<$output>>, ::tonic::Status> {
            $client::new(channel)
                .max_decoding_message_size(max_message_size)
                .max_encoding_message_size(max_message_size)
                .handle(input)
                .await
        }

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

mod eventsourced;
mod value;

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate as pb;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;
use tracing::{debug, warn};

pub(crate) use eventsourced::EventSourced;
pub(crate) use value::ValueEntity;

use crate::error::ProxyError;
use crate::model::ServiceModel;
use crate::observe::{Observed, Observer};
use crate::store::{Store, StoreError};

/// What an entity answered a command with.
#[derive(Debug, Clone, Default)]
pub(crate) struct UfReply {
    pub(crate) client_action: Option<pb::ClientAction>,
    pub(crate) side_effects: Vec<pb::SideEffect>,
}

/// A command waiting for its entity.
pub(crate) struct Envelope {
    pub(crate) name: String,
    pub(crate) payload: Any,
    pub(crate) reply: oneshot::Sender<Result<UfReply, ProxyError>>,
}

/// What entity tasks share.
pub(crate) struct Shared {
    pub(crate) channel: Channel,
    pub(crate) store: Store,
    pub(crate) observer: Observer,
    pub(crate) max_message_size: usize,
    pub(crate) streams: AtomicU64,
}

type Key = (String, String);

/// The active entities, by service and entity id.
pub(crate) struct Entities {
    shared: Arc<Shared>,
    /// Each entry carries its task's number, so a task only ever removes its own.
    active: Mutex<HashMap<Key, (u64, mpsc::Sender<Envelope>)>>,
    incarnations: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Commands queued per entity before callers wait.
const MAILBOX: usize = 1024;

impl Entities {
    pub(crate) fn new(shared: Shared) -> Arc<Self> {
        Arc::new(Self {
            shared: Arc::new(shared),
            active: Mutex::default(),
            incarnations: AtomicU64::new(0),
            tasks: Mutex::default(),
        })
    }

    /// A new stream number (action calls share the numbering).
    pub(crate) fn next_number(&self) -> u64 {
        self.shared.streams.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Hands a command to its entity, starting the entity (speaking `P`) if
    /// it is not active.
    pub(crate) async fn dispatch<P: Protocol>(
        self: &Arc<Self>,
        service: &Arc<ServiceModel>,
        entity_id: String,
        envelope: Envelope,
    ) {
        let key = (service.name.clone(), entity_id);
        let mut envelope = envelope;
        loop {
            let sender = {
                let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((_, tx)) = active.get(&key) {
                    match tx.try_send(envelope) {
                        Ok(()) => return,
                        Err(mpsc::error::TrySendError::Full(back)) => {
                            envelope = back;
                            Some(tx.clone())
                        }
                        Err(mpsc::error::TrySendError::Closed(back)) => {
                            envelope = back;
                            active.remove(&key);
                            None
                        }
                    }
                } else {
                    let (tx, rx) = mpsc::channel(MAILBOX);
                    if let Err(
                        mpsc::error::TrySendError::Full(back)
                        | mpsc::error::TrySendError::Closed(back),
                    ) = tx.try_send(envelope)
                    {
                        envelope = back;
                        continue;
                    }
                    let id = self.incarnations.fetch_add(1, Ordering::Relaxed);
                    active.insert(key.clone(), (id, tx));
                    let task = EntityTask::<P> {
                        entities: Arc::clone(self),
                        service: Arc::clone(service),
                        entity_id: key.1.clone(),
                        mailbox: rx,
                        id,
                        protocol: PhantomData,
                    };
                    let handle = tokio::spawn(task.run());
                    let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
                    tasks.retain(|t| !t.is_finished());
                    tasks.push(handle);
                    return;
                }
            };
            // A full mailbox: wait outside the lock, like the official stash.
            if let Some(sender) = sender {
                match sender.send(envelope).await {
                    Ok(()) => return,
                    Err(mpsc::error::SendError(back)) => envelope = back,
                }
            }
        }
    }

    /// Removes `me` from the active entities if its mailbox is empty; then no
    /// command can reach it any more.
    fn retire_if_idle(&self, key: &Key, me: u64, mailbox: &mut mpsc::Receiver<Envelope>) -> bool {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if !mailbox.is_empty() {
            return false;
        }
        if active.get(key).is_some_and(|(id, _)| *id == me) {
            active.remove(key);
        }
        mailbox.close();
        true
    }

    fn retire(&self, key: &Key, me: u64, mailbox: &mut mpsc::Receiver<Envelope>) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if active.get(key).is_some_and(|(id, _)| *id == me) {
            active.remove(key);
        }
        mailbox.close();
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

/// What distinguishes one entity protocol from another, for the proxy.
pub(crate) trait Protocol: Sized + Send + Sync + 'static {
    /// The stream's input message.
    type In: Clone + Send + Sync + 'static;
    /// The stream's output message.
    type Out: Clone + Send + Sync + 'static;
    /// The reply variant of an output message.
    type Reply: Send;
    /// What a stream needs to remember between replies (the journal's last
    /// sequence number).
    type Session: Send;

    /// The client-visible texts of protocol errors.
    const TEXTS: Texts;

    /// An input message, as observed.
    fn observed_in(stream: u64, message: Self::In) -> Observed;
    /// An output message, as observed.
    fn observed_out(stream: u64, message: Self::Out) -> Observed;

    /// Reads what the entity starts from: the messages that open its stream
    /// (`init` first) and the session.
    fn recover(
        entity: EntityRef<'_>,
    ) -> impl Future<Output = Result<(Vec<Self::In>, Self::Session), StoreError>> + Send;

    /// A command as an input message.
    fn command(command: pb::Command) -> Self::In;

    /// Opens the stream.
    fn call(
        channel: Channel,
        max_message_size: usize,
        input: ReceiverStream<Self::In>,
    ) -> impl Future<Output = Result<tonic::Response<Streaming<Self::Out>>, tonic::Status>>
    + Send
    + 'static;

    /// What an output message is.
    fn classify(out: Self::Out) -> Received<Self::Reply>;

    /// Acts on the reply to the current command: stores what it changes,
    /// then says what the caller gets.
    fn apply(
        session: &mut Self::Session,
        entity: EntityRef<'_>,
        reply: Self::Reply,
    ) -> impl Future<Output = Handled> + Send;
}

/// The official proxy's texts for a protocol's errors.
pub(crate) struct Texts {
    /// The current command, when a reply names another command.
    pub(crate) unexpected_reply: &'static str,
    /// The current command, after a stream-level failure or an empty message.
    pub(crate) unexpected_failure: &'static str,
    /// The current command, when the user function ends the stream.
    pub(crate) unexpected_termination: &'static str,
    /// The commands queued behind it.
    pub(crate) terminated: &'static str,
}

/// One entity, as its protocol sees it.
#[derive(Clone, Copy)]
pub(crate) struct EntityRef<'a> {
    pub(crate) store: &'a Store,
    pub(crate) service: &'a ServiceModel,
    pub(crate) entity_id: &'a str,
}

/// An output message, sorted.
pub(crate) enum Received<R> {
    /// A reply to the command with this id.
    Reply(i64, R),
    /// A stream-level failure.
    Failure(pb::Failure),
    /// No message (or one this proxy does not know).
    Empty,
}

/// What becomes of a reply.
pub(crate) enum Handled {
    /// The caller gets this; the entity goes on.
    Reply(UfReply),
    /// The caller gets this; the entity is reloaded on a new stream at once.
    Restart(UfReply),
    /// The caller gets this error (the reason is logged); the entity stops.
    Stop(ProxyError, String),
}

impl Handled {
    /// A protocol error: the caller gets `text` as a failure.
    pub(crate) fn unexpected(text: &str, reason: impl Into<String>) -> Self {
        Self::Stop(ProxyError::Failure(text.to_owned()), reason.into())
    }
}

/// How an incarnation of the stream ended.
enum End {
    /// Idle or shutting down: the entity goes away.
    Passivate,
    /// The user function asked for a restart: reload now.
    Restart,
    /// A protocol error: fail what is queued and stop.
    Stop(String),
}

/// Room for the messages sent ahead of replies (the official relay buffer).
const RELAY_BUFFER: usize = 100;

/// How long a closing stream may take to end its side.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

struct EntityTask<P> {
    entities: Arc<Entities>,
    service: Arc<ServiceModel>,
    entity_id: String,
    mailbox: mpsc::Receiver<Envelope>,
    /// This task's number in the registry.
    id: u64,
    protocol: PhantomData<P>,
}

/// One open stream to the user function.
struct Stream<P: Protocol> {
    number: u64,
    input: Option<mpsc::Sender<P::In>>,
    output: Output<P::Out>,
    observer: Observer,
}

/// The response side of a stream. Some servers (grpc-go) send response
/// headers only with their first message, which comes after the first
/// command: the call is therefore not awaited before commands are sent.
enum Output<O> {
    Pending(JoinHandle<Result<tonic::Response<Streaming<O>>, tonic::Status>>),
    Open(Box<Streaming<O>>),
    Ended,
}

impl<P: Protocol> Stream<P> {
    /// Sends `command`, then reads its answer; `None` when the stream is over.
    async fn exchange(&mut self, command: P::In) -> Option<P::Out> {
        self.observer
            .emit(|| P::observed_in(self.number, command.clone()));
        let input = self.input.as_ref()?;
        if input.send(command).await.is_err() {
            return None;
        }
        self.message().await
    }

    /// The next message from the user function; `None` once its side has
    /// ended (observed once, with whether it ended with OK).
    async fn message(&mut self) -> Option<P::Out> {
        if let Output::Pending(call) = &mut self.output {
            match call.await {
                Ok(Ok(response)) => self.output = Output::Open(Box::new(response.into_inner())),
                Ok(Err(status)) => {
                    debug!(
                        stream = self.number,
                        "the user function refused the stream: {status}"
                    );
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
                    .emit(|| P::observed_out(self.number, out.clone()));
                Some(out)
            }
            Ok(None) => self.ended(true),
            Err(status) => {
                debug!(
                    stream = self.number,
                    "the user function failed the stream: {status}"
                );
                self.ended(false)
            }
        }
    }

    fn ended(&mut self, ok: bool) -> Option<P::Out> {
        self.output = Output::Ended;
        self.observer.emit(|| Observed::OutputClosed {
            stream: self.number,
            ok,
        });
        None
    }

    /// Half-closes the stream and waits (at most [`CLOSE_GRACE`]) for the
    /// user function to end its side.
    async fn close(mut self) {
        self.input = None;
        self.observer.emit(|| Observed::InputClosed(self.number));
        let drain = async { while self.message().await.is_some() {} };
        if tokio::time::timeout(CLOSE_GRACE, drain).await.is_err() {
            self.ended(false);
        }
    }
}

impl<P: Protocol> EntityTask<P> {
    fn key(&self) -> Key {
        (self.service.name.clone(), self.entity_id.clone())
    }

    fn entity<'a>(&'a self, shared: &'a Shared) -> EntityRef<'a> {
        EntityRef {
            store: &shared.store,
            service: &self.service,
            entity_id: &self.entity_id,
        }
    }

    async fn run(mut self) {
        let shared = Arc::clone(&self.entities.shared);
        loop {
            let (stream, end) = match self.open(&shared).await {
                Ok((mut stream, mut session)) => {
                    let end = self.serve(&shared, &mut stream, &mut session).await;
                    (Some(stream), end)
                }
                Err(reason) => {
                    // Unreachable user function or store: the first waiting
                    // command gets the reason.
                    if let Ok(envelope) = self.mailbox.try_recv() {
                        let _ = envelope
                            .reply
                            .send(Err(ProxyError::Internal(reason.clone())));
                    }
                    (None, End::Stop(reason))
                }
            };
            if let End::Stop(reason) = &end {
                warn!(service = %self.service.name, entity_id = %self.entity_id, "entity stopped: {reason}");
                self.entities
                    .retire(&self.key(), self.id, &mut self.mailbox);
                while let Ok(envelope) = self.mailbox.try_recv() {
                    let _ = envelope
                        .reply
                        .send(Err(ProxyError::Failure(P::TEXTS.terminated.into())));
                }
            }
            if let Some(stream) = stream {
                stream.close().await;
            }
            if !matches!(end, End::Restart) {
                return;
            }
        }
    }

    async fn open(&self, shared: &Shared) -> Result<(Stream<P>, P::Session), String> {
        let (opening, session) = P::recover(self.entity(shared))
            .await
            .map_err(|e| e.to_string())?;
        // Room for all of the opening, so it goes out in order before any command.
        let (tx, rx) = mpsc::channel(RELAY_BUFFER.max(opening.len() + 1));
        let number = shared.streams.fetch_add(1, Ordering::Relaxed) + 1;
        shared.observer.emit(|| Observed::StreamOpened {
            stream: number,
            service: self.service.name.clone(),
            entity_id: self.entity_id.clone(),
        });
        for message in opening {
            shared
                .observer
                .emit(|| P::observed_in(number, message.clone()));
            tx.try_send(message)
                .map_err(|_| "the opening messages did not fit their channel".to_owned())?;
        }
        let call = tokio::spawn(P::call(
            shared.channel.clone(),
            shared.max_message_size,
            ReceiverStream::new(rx),
        ));
        let stream = Stream {
            number,
            input: Some(tx),
            output: Output::Pending(call),
            observer: shared.observer.clone(),
        };
        Ok((stream, session))
    }

    async fn serve(
        &mut self,
        shared: &Shared,
        stream: &mut Stream<P>,
        session: &mut P::Session,
    ) -> End {
        let mut command_id = 0;
        while let Some(envelope) = self.next_command().await {
            command_id += 1;
            let command = P::command(pb::Command {
                entity_id: self.entity_id.clone(),
                id: command_id,
                name: envelope.name,
                payload: Some(envelope.payload),
                streamed: false,
                metadata: None,
            });
            let handled = match stream.exchange(command).await.map(P::classify) {
                Some(Received::Reply(id, reply)) if id == command_id => {
                    P::apply(session, self.entity(shared), reply).await
                }
                Some(Received::Reply(id, _)) => Handled::unexpected(
                    P::TEXTS.unexpected_reply,
                    format!("a reply to command {id} while {command_id} was current"),
                ),
                Some(Received::Failure(failure)) => Handled::unexpected(
                    P::TEXTS.unexpected_failure,
                    format!("entity failure: {}", failure.description),
                ),
                Some(Received::Empty) => Handled::unexpected(
                    P::TEXTS.unexpected_failure,
                    "an empty message from the user function",
                ),
                None => Handled::unexpected(
                    P::TEXTS.unexpected_termination,
                    "the user function ended the stream",
                ),
            };
            match handled {
                Handled::Reply(reply) => {
                    let _ = envelope.reply.send(Ok(reply));
                }
                Handled::Restart(reply) => {
                    let _ = envelope.reply.send(Ok(reply));
                    return End::Restart;
                }
                Handled::Stop(error, reason) => {
                    let _ = envelope.reply.send(Err(error));
                    return End::Stop(reason);
                }
            }
        }
        End::Passivate
    }

    /// The next command, or `None` once the entity is to passivate: idle for
    /// the service's timeout, or no longer reachable (shutdown).
    async fn next_command(&mut self) -> Option<Envelope> {
        loop {
            tokio::select! {
                envelope = self.mailbox.recv() => return envelope,
                () = tokio::time::sleep(self.service.passivation) => {
                    if self.entities.retire_if_idle(&self.key(), self.id, &mut self.mailbox) {
                        debug!(service = %self.service.name, entity_id = %self.entity_id, "passivating");
                        return None;
                    }
                }
            }
        }
    }
}
