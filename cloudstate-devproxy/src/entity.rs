//! Active entities: one task per entity owning its stream to the user
//! function, a mailbox of commands handled one at a time, persistence before
//! the reply, passivation and restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedEvent, EventSourcedInit, EventSourcedReply, EventSourcedSnapshot,
    EventSourcedStreamIn, EventSourcedStreamOut, event_sourced_client::EventSourcedClient,
    event_sourced_stream_in::Message as In, event_sourced_stream_out::Message as Out,
};
use cloudstate_sdk::protocol::cloudstate::{self as pb, client_action::Action};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;
use tracing::{debug, warn};

use crate::error::ProxyError;
use crate::model::ServiceModel;
use crate::observe::{Observed, Observer};
use crate::store::Store;

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

    /// Hands a command to its entity, starting the entity if it is not active.
    pub(crate) async fn dispatch(
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
                    let task = EventSourcedTask {
                        entities: Arc::clone(self),
                        service: Arc::clone(service),
                        entity_id: key.1.clone(),
                        mailbox: rx,
                        id,
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

/// How an incarnation of the stream ended.
enum End {
    /// Idle or shutting down: the entity goes away.
    Passivate,
    /// The user function asked for a restart: reload from the journal now.
    Restart,
    /// A protocol error: fail what is queued and stop.
    Stop(String),
}

struct EventSourcedTask {
    entities: Arc<Entities>,
    service: Arc<ServiceModel>,
    entity_id: String,
    mailbox: mpsc::Receiver<Envelope>,
    /// This task's number in the registry.
    id: u64,
}

/// One open stream to the user function.
struct Stream {
    number: u64,
    input: Option<mpsc::Sender<EventSourcedStreamIn>>,
    output: Output,
}

/// The response side of a stream. Some servers (grpc-go) send response
/// headers only with their first message, which comes after the first
/// command: the call is therefore not awaited before commands are sent.
enum Output {
    Pending(JoinHandle<Result<tonic::Response<Streaming<EventSourcedStreamOut>>, tonic::Status>>),
    Open(Box<Streaming<EventSourcedStreamOut>>),
    Failed,
}

impl Stream {
    async fn message(&mut self) -> Result<Option<EventSourcedStreamOut>, tonic::Status> {
        if let Output::Pending(call) = &mut self.output {
            self.output = match call.await {
                Ok(Ok(response)) => Output::Open(Box::new(response.into_inner())),
                Ok(Err(status)) => {
                    self.output = Output::Failed;
                    return Err(status);
                }
                Err(e) => {
                    self.output = Output::Failed;
                    return Err(tonic::Status::internal(e.to_string()));
                }
            };
        }
        match &mut self.output {
            Output::Open(streaming) => streaming.message().await,
            _ => Err(tonic::Status::unavailable(
                "the stream to the user function failed",
            )),
        }
    }
}

impl EventSourcedTask {
    fn key(&self) -> Key {
        (self.service.name.clone(), self.entity_id.clone())
    }

    async fn run(mut self) {
        loop {
            let end = self.incarnation().await;
            match end {
                End::Restart => continue,
                End::Passivate => return,
                End::Stop(reason) => {
                    warn!(service = %self.service.name, entity_id = %self.entity_id, "entity stopped: {reason}");
                    self.entities
                        .retire(&self.key(), self.id, &mut self.mailbox);
                    while let Some(envelope) = self.mailbox.recv().await {
                        let _ = envelope
                            .reply
                            .send(Err(ProxyError::Failure("Entity terminated".into())));
                    }
                    return;
                }
            }
        }
    }

    async fn incarnation(&mut self) -> End {
        let shared = Arc::clone(&self.entities.shared);
        let (mut stream, sequence) = match self.open(&shared).await {
            Ok(opened) => opened,
            Err(reason) => {
                // Unreachable user function: fail the first waiting command with the reason.
                if let Ok(envelope) = self.mailbox.try_recv() {
                    let _ = envelope
                        .reply
                        .send(Err(ProxyError::Internal(reason.clone())));
                }
                return End::Stop(reason);
            }
        };
        let end = self.serve(&shared, &mut stream, sequence).await;
        self.close(&shared, stream).await;
        end
    }

    async fn open(&self, shared: &Shared) -> Result<(Stream, i64), String> {
        let recovery = shared
            .store
            .recover(&self.service.persistence_id, &self.entity_id)
            .await
            .map_err(|e| e.to_string())?;
        let sequence = recovery
            .events
            .last()
            .map(|e| e.sequence)
            .or(recovery.snapshot.as_ref().map(|s| s.sequence))
            .unwrap_or(0);
        // Room for the whole replay, so it goes out in order before any command.
        let (tx, rx) = mpsc::channel(100.max(recovery.events.len() + 1));
        let number = shared.streams.fetch_add(1, Ordering::Relaxed) + 1;
        shared.observer.emit(|| Observed::StreamOpened {
            stream: number,
            service: self.service.name.clone(),
            entity_id: self.entity_id.clone(),
        });
        let mut client = EventSourcedClient::new(shared.channel.clone())
            .max_decoding_message_size(shared.max_message_size)
            .max_encoding_message_size(shared.max_message_size);
        let mut messages = vec![In::Init(EventSourcedInit {
            service_name: self.service.name.clone(),
            entity_id: self.entity_id.clone(),
            snapshot: recovery.snapshot.map(|s| EventSourcedSnapshot {
                snapshot_sequence: s.sequence,
                snapshot: Some(s.payload),
            }),
        })];
        messages.extend(recovery.events.into_iter().map(|e| {
            In::Event(EventSourcedEvent {
                sequence: e.sequence,
                payload: Some(e.payload),
            })
        }));
        for message in messages {
            let message = EventSourcedStreamIn {
                message: Some(message),
            };
            shared
                .observer
                .emit(|| Observed::EventSourcedIn(number, message.clone()));
            tx.try_send(message)
                .map_err(|_| "the replay did not fit its channel".to_owned())?;
        }
        let call = tokio::spawn(async move { client.handle(ReceiverStream::new(rx)).await });
        Ok((
            Stream {
                number,
                input: Some(tx),
                output: Output::Pending(call),
            },
            sequence,
        ))
    }

    async fn serve(&mut self, shared: &Shared, stream: &mut Stream, mut sequence: i64) -> End {
        let mut command_id = 0;
        loop {
            let envelope = tokio::select! {
                envelope = self.mailbox.recv() => match envelope {
                    Some(envelope) => envelope,
                    None => return End::Passivate,
                },
                () = tokio::time::sleep(self.service.passivation) => {
                    if self.entities.retire_if_idle(&self.key(), self.id, &mut self.mailbox) {
                        debug!(service = %self.service.name, entity_id = %self.entity_id, "passivating");
                        return End::Passivate;
                    }
                    continue;
                }
            };
            command_id += 1;
            let command = EventSourcedStreamIn {
                message: Some(In::Command(pb::Command {
                    entity_id: self.entity_id.clone(),
                    id: command_id,
                    name: envelope.name,
                    payload: Some(envelope.payload),
                    streamed: false,
                    metadata: None,
                })),
            };
            shared
                .observer
                .emit(|| Observed::EventSourcedIn(stream.number, command.clone()));
            let sent = match &stream.input {
                Some(input) => input.send(command).await.is_ok(),
                None => false,
            };
            let out = if sent {
                stream.message().await
            } else {
                Ok(None)
            };
            let reply = match out {
                Ok(Some(out)) => {
                    shared
                        .observer
                        .emit(|| Observed::EventSourcedOut(stream.number, out.clone()));
                    match out.message {
                        Some(Out::Reply(reply)) if reply.command_id == command_id => reply,
                        Some(Out::Reply(_)) => {
                            let _ = envelope
                                .reply
                                .send(Err(ProxyError::Failure("Unexpected entity reply".into())));
                            return End::Stop(format!(
                                "reply for another command than {command_id}"
                            ));
                        }
                        Some(Out::Failure(failure)) => {
                            let _ = envelope
                                .reply
                                .send(Err(ProxyError::Failure("Unexpected entity failure".into())));
                            return End::Stop(format!("entity failure: {}", failure.description));
                        }
                        None => {
                            let _ = envelope
                                .reply
                                .send(Err(ProxyError::Failure("Unexpected entity failure".into())));
                            return End::Stop("empty message from the user function".into());
                        }
                    }
                }
                Ok(None) | Err(_) => {
                    let _ = envelope.reply.send(Err(ProxyError::Failure(
                        "Unexpected entity termination".into(),
                    )));
                    let ok = out.is_ok();
                    shared.observer.emit(|| Observed::OutputClosed {
                        stream: stream.number,
                        ok,
                    });
                    return End::Stop("the user function ended the stream".into());
                }
            };
            let EventSourcedReply {
                client_action,
                side_effects,
                events,
                snapshot,
                ..
            } = reply;
            let restart = matches!(
                client_action.as_ref().and_then(|a| a.action.as_ref()),
                Some(Action::Failure(pb::Failure { restart: true, .. }))
            );
            if restart {
                // The failed command's events are not persisted; the entity
                // is rebuilt from the journal on a new stream at once.
                let _ = envelope.reply.send(Ok(UfReply {
                    client_action,
                    side_effects: Vec::new(),
                }));
                return End::Restart;
            }
            if !events.is_empty() {
                let count = events.len() as i64;
                let stored = shared
                    .store
                    .append(
                        &self.service.persistence_id,
                        &self.entity_id,
                        sequence + 1,
                        events,
                        snapshot,
                    )
                    .await;
                if let Err(e) = stored {
                    let _ = envelope
                        .reply
                        .send(Err(ProxyError::Internal(e.to_string())));
                    return End::Stop(e.to_string());
                }
                sequence += count;
            }
            let _ = envelope.reply.send(Ok(UfReply {
                client_action,
                side_effects,
            }));
        }
    }

    /// Half-closes the stream and waits (at most 5 s) for the user function
    /// to end its side.
    async fn close(&self, shared: &Shared, mut stream: Stream) {
        stream.input = None;
        shared
            .observer
            .emit(|| Observed::InputClosed(stream.number));
        let drain = async {
            loop {
                match stream.message().await {
                    Ok(Some(out)) => shared
                        .observer
                        .emit(|| Observed::EventSourcedOut(stream.number, out)),
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            }
        };
        let ok = tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .unwrap_or(false);
        shared.observer.emit(|| Observed::OutputClosed {
            stream: stream.number,
            ok,
        });
    }
}
