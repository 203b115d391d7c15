//! The duplex driver of CRDT entities. Unlike the lock-step kinds, commands
//! are not serialized: each goes out as it arrives, with its own id, and the
//! user function's outputs are routed by command id: replies to their
//! callers, streamed messages to their subscriptions. A client that goes
//! away cancels its subscription (`StreamCancelled`, answered once).
//!
//! The proxy keeps its own copy of the CRDT (a [`Replica`]), merged from
//! every delta: it is the `init` of the next stream after passivation, and
//! survives a restart of the dev proxy with the SQLite store. With several
//! replicas ([`Replication`]) each has its own task, stream and copy; a
//! write is gossiped to the others after the gossip delay, or at once when
//! its write consistency is `MAJORITY` or `ALL`, whose reply then waits for
//! that many replicas to have applied it. A replica passes what changed
//! elsewhere to its user function as a delta, when no command is waiting
//! for a reply (as the official proxy does). A delete ends the stream and
//! forgets the CRDT on every replica: a later command starts a fresh one.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudstate_sdk::protocol::cloudstate::crdt::{
    CrdtDelete, CrdtInit, CrdtReply, CrdtStateAction, CrdtStreamCancelledResponse, CrdtStreamIn,
    CrdtStreamOut, CrdtStreamedMessage, CrdtWriteConsistency, crdt_client::CrdtClient,
    crdt_state_action::Action as StateAction, crdt_stream_in::Message as In,
    crdt_stream_out::Message as Out,
};
use cloudstate_sdk::protocol::cloudstate::{self as pb, StreamCancelled};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{OnceCell, mpsc, oneshot};
use tracing::{debug, warn};

use super::{Driver, Envelope, Mail, ReplyTo, Stream, StreamShape, Task, UfReply};
use crate::crdt::state::Replica;
use crate::error::ProxyError;

/// `cloudstate.crdt.Crdt`.
pub(crate) struct Crdt;

stream_shape!(
    Crdt,
    client: CrdtClient,
    input: CrdtStreamIn, In,
    output: CrdtStreamOut,
    observed: CrdtIn, CrdtOut,
);

/// How many replicas each CRDT entity has, and how they gossip.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replication {
    /// At least 1.
    pub(crate) count: u32,
    /// How long a `LOCAL` write takes to reach the other replicas.
    pub(crate) gossip_delay: Duration,
}

/// A replica's state, as another replica sends it.
pub(crate) struct Gossip {
    /// The sender's count of deletes: a higher one deletes here first, a
    /// lower one is stale.
    epoch: u64,
    /// `None` after a delete.
    state: Option<Replica>,
    /// Told once the state is merged (for `MAJORITY` and `ALL` writes).
    ack: Option<oneshot::Sender<()>>,
}

/// One replica's CRDT while its task does not run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot {
    epoch: u64,
    state: Option<Replica>,
}

/// Set once an entity's stored state was handed to its replicas.
type Restored = Arc<OnceCell<()>>;

/// The CRDT state of replicas whose task is not running, by persistence id,
/// entity id and replica; only read when a task starts and written when it
/// ends.
#[derive(Debug, Default)]
pub(crate) struct CrdtSlots {
    slots: Mutex<HashMap<(String, String, u32), Slot>>,
    /// Per entity, done once its stored state was given to every replica.
    restored: Mutex<HashMap<(String, String), Restored>>,
}

impl CrdtSlots {
    fn take(&self, key: &(String, String, u32)) -> Option<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
    }

    fn put(&self, key: (String, String, u32), slot: Slot) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, slot);
    }

    fn restored(&self, persistence_id: &str, entity_id: &str) -> Restored {
        let mut restored = self.restored.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            restored
                .entry((persistence_id.to_owned(), entity_id.to_owned()))
                .or_default(),
        )
    }
}

/// How long a `MAJORITY` or `ALL` write may take (the official timeout).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The official proxy's text for a write that did not reach enough replicas.
const WRITE_FAILED: &str = "Failed to update CRDT at requested write consistency";

/// What callers get when the entity stops on a protocol error.
const TERMINATING: &str = "Entity terminating";

/// What callers get when the CRDT is deleted under them.
const DELETED: &str = "Entity deleted";

impl Driver for Crdt {
    async fn run(task: Task) {
        let mut live = Live::new(task).await;
        let end = live.serve().await;
        live.finish(end).await;
    }
}

/// Where a command's answers go.
enum Answer {
    Unary(oneshot::Sender<Result<UfReply, ProxyError>>),
    Streamed(mpsc::UnboundedSender<Result<UfReply, ProxyError>>),
}

impl Answer {
    fn fail(self, error: ProxyError) {
        match self {
            Self::Unary(tx) => {
                let _ = tx.send(Err(error));
            }
            Self::Streamed(tx) => {
                let _ = tx.send(Err(error));
            }
        }
    }
}

/// A command sent, before its reply.
struct Pending {
    name: String,
    answer: Answer,
    /// The client of a streamed call went away before the reply.
    gone: bool,
}

/// A reply held until its write reached enough replicas.
struct Held {
    pending: Pending,
    reply: UfReply,
    streamed: bool,
}

/// What a state action did.
enum Applied {
    Nothing,
    Updated,
    /// The reply waits for this many acknowledgements.
    Wait(Vec<oneshot::Receiver<()>>, usize),
    Deleted,
}

/// Why the task ends.
enum End {
    /// Idle, or the proxy shuts down.
    Passivate,
    /// A protocol error.
    Stop(String),
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One running replica of one CRDT entity.
struct Live {
    task: Task,
    replication: Replication,
    slot: Slot,
    stream: Option<Stream<Crdt>>,
    last_id: i64,
    outstanding: HashMap<i64, Pending>,
    subscriptions: HashMap<i64, (String, mpsc::UnboundedSender<Result<UfReply, ProxyError>>)>,
    /// Cancelled subscriptions whose response is due, with their method.
    cancelling: HashMap<i64, String>,
    held: HashMap<i64, Held>,
    /// Resolves with a streamed command's id when its client goes away.
    gone: FuturesUnordered<Boxed<i64>>,
    /// Resolves when a held write has enough acknowledgements (or not).
    writes: FuturesUnordered<Boxed<(i64, bool)>>,
    /// Ids of streamed calls this proxy ended (a late message is no error).
    closed: HashSet<i64>,
}

impl Live {
    async fn new(task: Task) -> Self {
        let shared = task.shared();
        let replication = shared.replicas;
        let key = slot_key(&task);
        // The stored state goes to every replica at once, the first time
        // one starts: replicas restored from the same bytes agree, where one
        // restored later would count the stored part twice.
        shared
            .crdts
            .restored(&task.service.persistence_id, &task.entity_id)
            .get_or_init(|| restore(&task, replication))
            .await;
        let slot = shared.crdts.take(&key).unwrap_or_default();
        Self {
            task,
            replication,
            slot,
            stream: None,
            last_id: 0,
            outstanding: HashMap::new(),
            subscriptions: HashMap::new(),
            cancelling: HashMap::new(),
            held: HashMap::new(),
            gone: FuturesUnordered::new(),
            writes: FuturesUnordered::new(),
            closed: HashSet::new(),
        }
    }

    fn is_idle(&self) -> bool {
        self.outstanding.is_empty()
            && self.subscriptions.is_empty()
            && self.cancelling.is_empty()
            && self.held.is_empty()
    }

    async fn serve(&mut self) -> End {
        loop {
            let idle = self.is_idle();
            let passivation = self.task.service.passivation;
            let step = tokio::select! {
                mail = self.task.mailbox.recv() => match mail {
                    None => return End::Passivate,
                    Some(Mail::Command(envelope)) => self.command(envelope),
                    Some(Mail::Gossip(gossip)) => self.gossip(gossip).await,
                },
                out = next_output(&mut self.stream) => self.output(out).await,
                Some(id) = self.gone.next(), if !self.gone.is_empty() => {
                    self.client_gone(id);
                    Ok(())
                }
                Some((id, ok)) = self.writes.next(), if !self.writes.is_empty() => {
                    self.write_done(id, ok);
                    Ok(())
                }
                () = tokio::time::sleep(passivation), if idle => {
                    // Saved before leaving the registry, so that a new task
                    // for this replica finds it.
                    self.save();
                    if self.task.retire_if_idle() {
                        debug!(service = %self.task.service.name, entity_id = %self.task.entity_id, replica = self.task.replica, "passivating");
                        return End::Passivate;
                    }
                    Ok(())
                }
            };
            if let Err(reason) = step {
                return End::Stop(reason);
            }
        }
    }

    async fn finish(mut self, end: End) {
        match end {
            End::Passivate => {
                self.end_calls(&ProxyError::Failure(TERMINATING.into()));
                self.save();
                if let Some(stream) = self.stream.take() {
                    stream.close().await;
                }
            }
            End::Stop(reason) => {
                warn!(service = %self.task.service.name, entity_id = %self.task.entity_id, replica = self.task.replica, "CRDT entity stopped: {reason}");
                let error = ProxyError::Failure(TERMINATING.into());
                self.end_calls(&error);
                self.save();
                self.task.retire(&error);
                if let Some(stream) = self.stream.take() {
                    stream.close().await;
                }
                if let Some(router) = self.task.shared().router() {
                    router
                        .report_error(&format!(
                            "{} entity {}: {reason}",
                            self.task.service.name, self.task.entity_id
                        ))
                        .await;
                }
            }
        }
    }

    /// Fails every call in progress with `error`; subscriptions end.
    fn end_calls(&mut self, error: &ProxyError) {
        for (_, pending) in self.outstanding.drain() {
            pending.answer.fail(error.clone());
        }
        for (_, held) in self.held.drain() {
            held.pending.answer.fail(error.clone());
        }
        for (id, (_, answers)) in self.subscriptions.drain() {
            let _ = answers.send(Err(error.clone()));
            self.closed.insert(id);
        }
        self.cancelling.clear();
    }

    fn save(&self) {
        self.task
            .shared()
            .crdts
            .put(slot_key(&self.task), self.slot.clone());
    }

    fn me(&self) -> u32 {
        self.task.replica
    }

    /// Opens the stream: `init` carries the proxy's copy, if any.
    fn open(&mut self) -> &mut Stream<Crdt> {
        let task = &self.task;
        let slot = &mut self.slot;
        self.stream.get_or_insert_with(|| {
            let init = CrdtInit {
                service_name: task.service.name.clone(),
                entity_id: task.entity_id.clone(),
                delta: slot.state.as_mut().map(Replica::initial_delta),
            };
            let opening = vec![CrdtStreamIn {
                message: Some(In::Init(init)),
            }];
            Stream::open(task.shared(), &task.service, &task.entity_id, opening)
        })
    }

    fn send(&mut self, message: In) -> bool {
        self.open().send(CrdtStreamIn {
            message: Some(message),
        })
    }

    /// Passes what changed on other replicas to the user function, when no
    /// command or cancellation waits for its answer (the user function's
    /// change in that answer is read against what it held before).
    fn flush_remote(&mut self) {
        if !self.outstanding.is_empty() || !self.cancelling.is_empty() {
            return;
        }
        let (Some(stream), Some(state)) = (self.stream.as_mut(), self.slot.state.as_mut()) else {
            return;
        };
        if let Some(delta) = state.take_delta() {
            stream.send(CrdtStreamIn {
                message: Some(In::Delta(delta)),
            });
        }
    }

    fn command(&mut self, envelope: Envelope) -> Result<(), String> {
        self.open();
        self.flush_remote();
        self.last_id += 1;
        let id = self.last_id;
        let (answer, streamed) = match envelope.reply {
            ReplyTo::Unary(tx) => (Answer::Unary(tx), false),
            ReplyTo::Streamed { answers, gone } => {
                self.gone.push(Box::pin(async move {
                    let _ = gone.await;
                    id
                }));
                (Answer::Streamed(answers), true)
            }
        };
        let command = Crdt::command(pb::Command {
            entity_id: self.task.entity_id.clone(),
            id,
            name: envelope.name.clone(),
            payload: Some(envelope.payload),
            streamed,
            metadata: None,
        });
        if !self.open().send(command) {
            answer.fail(ProxyError::Failure(TERMINATING.into()));
            return Err("the stream to the user function is closed".into());
        }
        self.outstanding.insert(
            id,
            Pending {
                name: envelope.name,
                answer,
                gone: false,
            },
        );
        Ok(())
    }

    async fn output(&mut self, out: Option<CrdtStreamOut>) -> Result<(), String> {
        let Some(out) = out else {
            return Err(self.stream.as_ref().map_or_else(
                || "the user function ended the stream".to_owned(),
                Stream::end_reason,
            ));
        };
        match out.message {
            Some(Out::Reply(reply)) => self.reply(reply).await,
            Some(Out::StreamedMessage(message)) => self.streamed(message),
            Some(Out::StreamCancelledResponse(response)) => self.cancelled(response).await,
            Some(Out::Failure(failure)) => {
                let error = ProxyError::Failure(failure.description.clone());
                if let Some(pending) = self.outstanding.remove(&failure.command_id) {
                    // The official proxy answers a fixed text here; the
                    // user function's is more useful.
                    pending.answer.fail(error);
                    self.flush_remote();
                    Ok(())
                } else if let Some((_, answers)) = self.subscriptions.remove(&failure.command_id) {
                    let _ = answers.send(Err(error));
                    self.closed.insert(failure.command_id);
                    Ok(())
                } else {
                    Err(format!("entity failure: {}", failure.description))
                }
            }
            None => Err("an empty message from the user function".into()),
        }
    }

    async fn reply(&mut self, reply: CrdtReply) -> Result<(), String> {
        let CrdtReply {
            command_id,
            client_action,
            side_effects,
            state_action,
            streamed,
        } = reply;
        let Some(pending) = self.outstanding.remove(&command_id) else {
            return Err(format!(
                "a reply to command {command_id}, which is not waiting for one"
            ));
        };
        let reply = UfReply {
            client_action,
            side_effects,
        };
        match self.state_action(state_action).await? {
            Applied::Nothing | Applied::Updated => {
                self.deliver(command_id, pending, reply, streamed);
            }
            Applied::Wait(acks, required) => {
                self.held.insert(
                    command_id,
                    Held {
                        pending,
                        reply,
                        streamed,
                    },
                );
                self.writes.push(Box::pin(async move {
                    (command_id, acknowledged(acks, required).await)
                }));
            }
            Applied::Deleted => {
                // The reply goes out; the stream ends; other calls fail.
                self.deliver(command_id, pending, reply, false);
                self.deleted().await;
                return Ok(());
            }
        }
        self.flush_remote();
        Ok(())
    }

    /// Hands a reply to its caller; a streamed call whose reply is
    /// `streamed` stays subscribed.
    fn deliver(&mut self, id: i64, pending: Pending, reply: UfReply, streamed: bool) {
        match pending.answer {
            Answer::Unary(tx) => {
                let _ = tx.send(Ok(reply));
            }
            Answer::Streamed(answers) => {
                let _ = answers.send(Ok(reply));
                if !streamed {
                    self.closed.insert(id);
                } else if pending.gone {
                    self.cancel(id, pending.name);
                } else {
                    self.subscriptions.insert(id, (pending.name, answers));
                }
            }
        }
    }

    fn streamed(&mut self, message: CrdtStreamedMessage) -> Result<(), String> {
        let CrdtStreamedMessage {
            command_id,
            client_action,
            side_effects,
            end_stream,
        } = message;
        let reply = UfReply {
            client_action,
            side_effects,
        };
        if let Some((name, answers)) = self.subscriptions.get(&command_id) {
            if answers.send(Ok(reply)).is_err() {
                // Gone, but not noticed yet: its cancellation follows.
                debug!(command_id, method = %name, "a streamed message for a client that left");
            }
            if end_stream {
                self.subscriptions.remove(&command_id);
                self.closed.insert(command_id);
            }
            Ok(())
        } else if self.closed.contains(&command_id) || self.cancelling.contains_key(&command_id) {
            // Sent before the user function saw the cancellation.
            debug!(command_id, "a streamed message for a call already ended");
            Ok(())
        } else {
            Err(format!(
                "a streamed message for command {command_id}, which is not streamed"
            ))
        }
    }

    async fn cancelled(&mut self, response: CrdtStreamCancelledResponse) -> Result<(), String> {
        let CrdtStreamCancelledResponse {
            command_id,
            side_effects,
            state_action,
        } = response;
        let Some(name) = self.cancelling.remove(&command_id) else {
            return Err(format!(
                "a cancellation response for command {command_id}, which was not cancelled"
            ));
        };
        let applied = self.state_action(state_action).await?;
        if !side_effects.is_empty() {
            self.side_effects(&name, side_effects);
        }
        match applied {
            Applied::Deleted => self.deleted().await,
            // Nobody waits for a cancellation's write.
            Applied::Wait(..) | Applied::Nothing | Applied::Updated => self.flush_remote(),
        }
        Ok(())
    }

    /// Side effects without a client (a cancellation's), performed by the router.
    fn side_effects(&self, method: &str, side_effects: Vec<pb::SideEffect>) {
        let (Some(router), Some(method)) = (
            self.task.shared().router(),
            self.task.service.methods.get(method).cloned(),
        ) else {
            return;
        };
        tokio::spawn(async move {
            let trace = format!("{}.{} (cancelled)", method.service, method.name());
            let reply = UfReply {
                client_action: None,
                side_effects,
            };
            if let Err(e) = router.resolve(&method, reply, &trace).await {
                warn!("side effect of {trace} failed: {e}");
            }
        });
    }

    fn client_gone(&mut self, id: i64) {
        if let Some((name, _)) = self.subscriptions.remove(&id) {
            self.cancel(id, name);
        } else if let Some(pending) = self.outstanding.get_mut(&id) {
            pending.gone = true;
        } else if let Some(held) = self.held.get_mut(&id) {
            held.pending.gone = true;
        }
    }

    fn cancel(&mut self, id: i64, name: String) {
        self.closed.insert(id);
        let cancelled = In::StreamCancelled(StreamCancelled {
            entity_id: self.task.entity_id.clone(),
            id,
        });
        if self.send(cancelled) {
            self.cancelling.insert(id, name);
        }
    }

    fn write_done(&mut self, id: i64, ok: bool) {
        let Some(held) = self.held.remove(&id) else {
            return;
        };
        if ok {
            self.deliver(id, held.pending, held.reply, held.streamed);
        } else {
            held.pending
                .answer
                .fail(ProxyError::Failure(WRITE_FAILED.into()));
        }
    }

    /// Applies the user function's state action to the proxy's copy.
    async fn state_action(&mut self, action: Option<CrdtStateAction>) -> Result<Applied, String> {
        let Some(action) = action else {
            return Ok(Applied::Nothing);
        };
        let consistency = action.write_consistency();
        match action.action {
            Some(StateAction::Update(delta)) => {
                let (me, count) = (self.me(), self.replication.count);
                match &mut self.slot.state {
                    Some(state) => state
                        .apply(&delta)
                        .map_err(|e| format!("an update the CRDT cannot take: {e}"))?,
                    None => {
                        self.slot.state = Some(
                            Replica::create(me, count, &delta)
                                .map_err(|e| format!("an update that creates no CRDT: {e}"))?,
                        );
                    }
                }
                self.persist().await;
                let required = required_acks(consistency, count);
                let acks = self.gossip_out(required > 0);
                Ok(if required > 0 {
                    Applied::Wait(acks, required)
                } else {
                    Applied::Updated
                })
            }
            Some(StateAction::Delete(CrdtDelete {})) => {
                self.slot.state = None;
                self.slot.epoch += 1;
                self.persist().await;
                self.gossip_out(true);
                Ok(Applied::Deleted)
            }
            None => Err("a state action that is neither update nor delete".into()),
        }
    }

    /// The CRDT was deleted (here or on another replica): the stream ends,
    /// calls in progress fail, and the next command starts afresh.
    async fn deleted(&mut self) {
        self.end_calls(&ProxyError::Failure(DELETED.into()));
        if let Some(stream) = self.stream.take() {
            stream.close().await;
        }
        self.last_id = 0;
        self.closed.clear();
    }

    /// Writes the proxy's copy to the store (which keeps it only when durable).
    fn persist(&self) -> impl Future<Output = ()> + Send + 'static {
        let store = self.task.shared().store.clone();
        let pid = self.task.service.persistence_id.clone();
        let entity_id = self.task.entity_id.clone();
        let state = self.slot.state.as_ref().map(Replica::encode);
        async move {
            let written = match state {
                Some(state) => store.put_crdt(&pid, &entity_id, state).await,
                None => store.delete_crdt(&pid, &entity_id).await,
            };
            if let Err(e) = written {
                warn!(%entity_id, "the CRDT was not stored: {e}");
            }
        }
    }

    /// Sends this replica's state to the others: at once (with
    /// acknowledgements) or after the gossip delay.
    fn gossip_out(&self, now: bool) -> Vec<oneshot::Receiver<()>> {
        let count = self.replication.count;
        let mut acks = Vec::new();
        for replica in (0..count).filter(|r| *r != self.me()) {
            let (ack, acked) = if now {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            acks.extend(acked);
            let gossip = Gossip {
                epoch: self.slot.epoch,
                state: self.slot.state.clone(),
                ack,
            };
            let entities = Arc::clone(&self.task.entities);
            let service = Arc::clone(&self.task.service);
            let entity_id = self.task.entity_id.clone();
            let delay = (!now).then_some(self.replication.gossip_delay);
            tokio::spawn(async move {
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                entities
                    .dispatch::<Crdt>(&service, entity_id, replica, Mail::Gossip(gossip))
                    .await;
            });
        }
        acks
    }

    /// Merges another replica's state.
    async fn gossip(&mut self, gossip: Gossip) -> Result<(), String> {
        let Gossip { epoch, state, ack } = gossip;
        if epoch < self.slot.epoch {
            // From before a delete this replica has seen.
            return Ok(());
        }
        let mut changed = false;
        if epoch > self.slot.epoch {
            self.slot.epoch = epoch;
            if self.slot.state.take().is_some() {
                changed = true;
            }
            if self.stream.is_some() {
                self.send(In::Delete(CrdtDelete {}));
                self.deleted().await;
            }
        }
        if let Some(remote) = state {
            let (me, count) = (self.me(), self.replication.count);
            match &mut self.slot.state {
                Some(local) => {
                    if let Err(e) = local.merge(&remote) {
                        warn!(entity_id = %self.task.entity_id, replica = me, "gossip not merged into the {}: {e}", local.kind());
                        return Ok(());
                    }
                }
                None => self.slot.state = Some(Replica::adopt(me, count, &remote)),
            }
            changed = true;
        }
        if changed {
            self.persist().await;
            self.flush_remote();
        }
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
        Ok(())
    }
}

fn slot_key(task: &Task) -> (String, String, u32) {
    (
        task.service.persistence_id.clone(),
        task.entity_id.clone(),
        task.replica,
    )
}

/// Gives the stored state, if any, to every replica of the entity.
async fn restore(task: &Task, replication: Replication) {
    let pid = &task.service.persistence_id;
    let bytes = match task.shared().store.get_crdt(pid, &task.entity_id).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return,
        Err(e) => {
            warn!(entity_id = %task.entity_id, "the stored CRDT could not be read, starting empty: {e}");
            return;
        }
    };
    for replica in 0..replication.count {
        match Replica::decode(replica, replication.count, &bytes) {
            Ok(state) => task.shared().crdts.put(
                (pid.clone(), task.entity_id.clone(), replica),
                Slot {
                    epoch: 0,
                    state: Some(state),
                },
            ),
            Err(e) => {
                warn!(entity_id = %task.entity_id, "the stored CRDT is unreadable, starting empty: {e}");
                return;
            }
        }
    }
}

/// How many other replicas must apply a write before its reply.
fn required_acks(consistency: CrdtWriteConsistency, replicas: u32) -> usize {
    let others = replicas.saturating_sub(1) as usize;
    match consistency {
        CrdtWriteConsistency::Local => 0,
        CrdtWriteConsistency::Majority => (replicas as usize / 2 + 1).saturating_sub(1),
        CrdtWriteConsistency::All => others,
    }
}

/// Whether `required` of `acks` came within the write timeout.
async fn acknowledged(acks: Vec<oneshot::Receiver<()>>, required: usize) -> bool {
    let mut acks: FuturesUnordered<_> = acks.into_iter().collect();
    let count = async {
        let mut got = 0;
        while got < required {
            match acks.next().await {
                Some(Ok(())) => got += 1,
                Some(Err(_)) => {}
                None => return false,
            }
        }
        true
    };
    tokio::time::timeout(WRITE_TIMEOUT, count)
        .await
        .unwrap_or(false)
}

/// The next message of the stream, if one is open (else never).
async fn next_output(stream: &mut Option<Stream<Crdt>>) -> Option<CrdtStreamOut> {
    match stream {
        Some(stream) => stream.message().await,
        None => std::future::pending().await,
    }
}
