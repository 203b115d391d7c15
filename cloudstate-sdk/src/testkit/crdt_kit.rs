//! Unit-testing CRDT entities in memory: commands go in through the typed
//! call builders, through the same runtime as on a proxy stream, and what
//! would go to the proxy comes back typed.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;

use super::describe;
use super::outcome::{CrdtExtra, CrdtOutcome, SideEffect};
use crate::crdt::runtime::{Instance, Live, Registration};
use crate::crdt::{CrdtEntity, CrdtOptions, CrdtType, WriteConsistency};
use crate::effect::TypedCall;
use crate::payload::{Any, Payload};
use crate::protocol::cloudstate::crdt::{
    self as wire, crdt_state_action::Action as StateAction, crdt_stream_in::Message as In,
    crdt_stream_out::Message as Out,
};
use crate::protocol::cloudstate::{self as pb, client_action::Action};
use crate::{CloudState, Service};

/// Runs one CRDT entity instance in memory, as the proxy would drive it:
/// commands and streamed commands, deltas and deletes from other replicas,
/// cancellations; every message that would go to the proxy is captured.
///
/// Commands take the generated call builders, so a misspelt method is a
/// compile error and replies come back as the method's output type.
pub struct CrdtTestKit<E: CrdtEntity> {
    registration: Arc<Registration>,
    entity_id: String,
    instance: Box<dyn Instance>,
    next_command_id: i64,
    streams: BTreeMap<i64, Vec<Notification>>,
    _entity: PhantomData<fn() -> E>,
}

impl<E: CrdtEntity + Service<Options = CrdtOptions>> CrdtTestKit<E> {
    /// A new instance of a generated entity: checked and created as for
    /// serving (descriptors, unknown commands, input types), with no value
    /// from the proxy, so its CRDT comes from `initial_state`.
    ///
    /// # Panics
    /// When the registration is invalid or creating the entity fails.
    #[track_caller]
    pub fn new(entity: E, entity_id: &str) -> Self {
        Self::start(entity, entity_id, None)
    }

    /// An instance started from the proxy's value `state`, as after a
    /// passivation: the CRDT arrives as the init delta.
    ///
    /// # Panics
    /// As [`new`](Self::new).
    #[track_caller]
    pub fn with_state(entity: E, entity_id: &str, state: &E::State) -> Self {
        Self::start(entity, entity_id, Some(state.full_delta()))
    }

    #[track_caller]
    fn start(entity: E, entity_id: &str, delta: Option<wire::CrdtDelta>) -> Self {
        let registration = entity
            .register(CloudState::new(), CrdtOptions::new())
            .crdt_registration()
            .unwrap_or_else(|e| panic!("{e}"));
        let instance = registration
            .create(entity_id, |factory| {
                factory.create(entity_id, delta.as_ref())
            })
            .unwrap_or_else(|stop| panic!("the entity did not start: {}", describe(&stop)));
        Self {
            registration,
            entity_id: entity_id.to_owned(),
            instance,
            next_command_id: 1,
            streams: BTreeMap::new(),
            _entity: PhantomData,
        }
    }
}

impl<E: CrdtEntity> CrdtTestKit<E> {
    /// A new instance of a hand-written entity serving `service_name`, with
    /// no descriptors: every command reaches its `handle_command`.
    ///
    /// ```
    /// use cloudstate_sdk::crdt::{CrdtContext, CrdtEntity, GCounter};
    /// use cloudstate_sdk::testkit::CrdtTestKit;
    /// use cloudstate_sdk::{Command, Failure, Reply, ServiceCall, TypedCall};
    ///
    /// /// Counts the commands it gets.
    /// struct Hits;
    /// impl CrdtEntity for Hits {
    ///     type State = GCounter;
    ///     fn initial_state(&self, _: &str) -> GCounter { GCounter::new() }
    ///     fn handle_command(&self, _: &Command<'_>, ctx: &mut CrdtContext<'_, GCounter>)
    ///         -> Result<Option<Reply>, Failure> {
    ///         ctx.state_mut().increment(1);
    ///         Ok(Some(Reply::empty()))
    ///     }
    /// }
    /// let mut kit = CrdtTestKit::without_descriptors("example.Hits", Hits, "page-1");
    /// let hit = || TypedCall::<()>::new(ServiceCall::new("example.Hits", "Hit", cloudstate_sdk::payload::empty()));
    /// let outcome = kit.call(hit());
    /// outcome.reply();
    /// assert!(outcome.state_action().unwrap().delta().is_some());
    /// kit.call(hit());
    /// assert_eq!(kit.state().unwrap().value(), 2);
    /// ```
    ///
    /// # Panics
    /// When creating the entity fails.
    #[track_caller]
    pub fn without_descriptors(service_name: &str, entity: E, entity_id: &str) -> Self {
        let registration = Arc::new(Registration {
            kind: &crate::entity::CRDT,
            service_name: service_name.to_owned(),
            service: None,
            settings: (),
            factory: Arc::new(crate::crdt::runtime::Typed(Arc::new(entity))),
            max_reply: crate::server::DEFAULT_MAX_REPLY_SIZE,
        });
        Self::create(registration, entity_id, None)
    }

    #[track_caller]
    fn create(
        registration: Arc<Registration>,
        entity_id: &str,
        delta: Option<&wire::CrdtDelta>,
    ) -> Self {
        let instance = registration
            .create(entity_id, |factory| factory.create(entity_id, delta))
            .unwrap_or_else(|stop| panic!("the entity did not start: {}", describe(&stop)));
        Self {
            registration,
            entity_id: entity_id.to_owned(),
            instance,
            next_command_id: 1,
            streams: BTreeMap::new(),
            _entity: PhantomData,
        }
    }

    /// The entity's CRDT; `None` once it is deleted.
    pub fn state(&self) -> Option<&E::State> {
        self.live().state.as_ref()
    }

    fn live(&self) -> &Live<E> {
        self.instance
            .as_any()
            .downcast_ref::<Live<E>>()
            .expect("the kit's instance is a Live<E>")
    }

    /// Runs a command of a unary method.
    ///
    /// # Panics
    /// When the call is for another service, or the command ends the
    /// entity's stream (a protocol error; the text says why).
    #[track_caller]
    pub fn call<R: Payload>(&mut self, call: TypedCall<R>) -> CrdtOutcome<R> {
        self.command(call, false)
    }

    /// Runs a command of a server-streaming method: the caller subscribes
    /// when the handler registers a callback ([`CrdtOutcome::streamed`]);
    /// what later changes send it is in [`stream`](Self::stream).
    ///
    /// # Panics
    /// As [`call`](Self::call).
    #[track_caller]
    pub fn call_streamed<R: Payload>(&mut self, call: TypedCall<R>) -> CrdtOutcome<R> {
        self.command(call, true)
    }

    #[track_caller]
    fn command<R: Payload>(&mut self, call: TypedCall<R>, streamed: bool) -> CrdtOutcome<R> {
        let call = call.into_call();
        assert_eq!(
            call.service_name(),
            self.registration.service_name,
            "the call is for another service"
        );
        let id = self.next_command_id;
        self.next_command_id += 1;
        let command = super::message::command(
            id,
            &self.entity_id,
            call.command_name(),
            Some(call.payload().clone()),
            streamed,
            call.metadata().cloned(),
        );
        let mut out = self
            .send(In::Command(command))
            .unwrap_or_else(|e| panic!("{e}"));
        let reply = match out.pop_front().and_then(|o| o.message) {
            Some(Out::Reply(reply)) => reply,
            other => panic!("expected a reply to command {id}, got {other:?}"),
        };
        let notifications = self.record(out);
        let action = reply.client_action.as_ref().and_then(|a| a.action.as_ref());
        CrdtOutcome::new(
            action,
            &reply.side_effects,
            CrdtExtra {
                reply: reply.clone(),
                notifications,
            },
        )
    }

    /// Changes the CRDT as another replica would: `change` runs on a copy
    /// of the current value, and its delta arrives as the proxy would send
    /// it. Returns what subscribers were sent.
    ///
    /// # Panics
    /// When the entity is deleted, or the delta ends its stream.
    #[track_caller]
    pub fn remote_change(&mut self, change: impl FnOnce(&mut E::State)) -> Vec<Notification> {
        let mut replica = self.state().expect("the entity is deleted").clone();
        replica.take_delta();
        change(&mut replica);
        match replica.take_delta() {
            Some(delta) => self.delta(delta).unwrap_or_else(|e| panic!("{e}")),
            None => Vec::new(),
        }
    }

    /// Sends a delta as the proxy would. Returns what subscribers were sent,
    /// or the stream-level failure it caused.
    ///
    /// # Errors
    /// The failure text when the delta ends the entity's stream.
    pub fn delta(&mut self, delta: wire::CrdtDelta) -> Result<Vec<Notification>, String> {
        let out = self.send(In::Delta(delta))?;
        Ok(self.record(out))
    }

    /// Deletes the entity as another replica would. The entity answers
    /// nothing.
    ///
    /// # Panics
    /// When the entity answers.
    #[track_caller]
    pub fn remote_delete(&mut self) {
        let out = self
            .send(In::Delete(wire::CrdtDelete {}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.is_empty(), "a proxy delete got an answer: {out:?}");
    }

    /// Cancels the stream of the streamed command `command_id`, as its
    /// client does.
    ///
    /// # Errors
    /// The failure text when the cancellation ends the entity's stream
    /// (an id that never subscribed).
    pub fn cancel(&mut self, command_id: i64) -> Result<CancelOutcome, String> {
        let mut out = self.send(In::StreamCancelled(pb::StreamCancelled {
            entity_id: self.entity_id.clone(),
            id: command_id,
        }))?;
        let response = match out.pop_front().and_then(|o| o.message) {
            Some(Out::StreamCancelledResponse(response)) => response,
            other => panic!("expected a cancellation response, got {other:?}"),
        };
        Ok(CancelOutcome {
            side_effects: SideEffect::all(&response.side_effects),
            response,
            notifications: self.record(out),
        })
    }

    /// Everything sent so far to the stream of the streamed command
    /// `command_id`.
    pub fn stream(&self, command_id: i64) -> &[Notification] {
        self.streams.get(&command_id).map_or(&[], Vec::as_slice)
    }

    fn send(&mut self, message: In) -> Result<VecDeque<wire::CrdtStreamOut>, String> {
        let mut out = VecDeque::new();
        match self.instance.handle(&self.registration, message, &mut out) {
            Ok(()) => Ok(out),
            Err(stop) => Err(describe(&stop)),
        }
    }

    fn record(&mut self, out: VecDeque<wire::CrdtStreamOut>) -> Vec<Notification> {
        let notifications: Vec<Notification> = out
            .into_iter()
            .map(|o| match o.message {
                Some(Out::StreamedMessage(message)) => Notification {
                    side_effects: SideEffect::all(&message.side_effects),
                    message,
                },
                other => panic!("expected a streamed message, got {other:?}"),
            })
            .collect();
        for n in &notifications {
            self.streams
                .entry(n.command_id())
                .or_default()
                .push(n.clone());
        }
        notifications
    }
}

/// The answer to a cancellation, and what its change sent to the other
/// subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelOutcome {
    response: wire::CrdtStreamCancelledResponse,
    side_effects: Vec<SideEffect>,
    notifications: Vec<Notification>,
}

impl CancelOutcome {
    /// The side effects of the cancellation callback.
    pub fn side_effects(&self) -> &[SideEffect] {
        &self.side_effects
    }

    /// What the cancellation callback did to the CRDT.
    pub fn state_action(&self) -> Option<StateChange<'_>> {
        StateChange::of(self.response.state_action.as_ref())
    }

    /// The messages the change sent to the remaining subscribers.
    pub fn notifications(&self) -> &[Notification] {
        &self.notifications
    }

    /// The response as sent on the wire.
    pub fn wire(&self) -> &wire::CrdtStreamCancelledResponse {
        &self.response
    }
}

/// A change of the CRDT sent to the proxy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StateChange<'a> {
    /// The delta, and how many replicas must have it.
    Update(&'a wire::CrdtDelta, WriteConsistency),
    /// The entity is deleted everywhere.
    Delete(WriteConsistency),
}

impl<'a> StateChange<'a> {
    pub(crate) fn of(action: Option<&'a wire::CrdtStateAction>) -> Option<Self> {
        let action = action?;
        let consistency = match wire::CrdtWriteConsistency::try_from(action.write_consistency) {
            Ok(wire::CrdtWriteConsistency::Majority) => WriteConsistency::Majority,
            Ok(wire::CrdtWriteConsistency::All) => WriteConsistency::All,
            _ => WriteConsistency::Local,
        };
        match action.action.as_ref()? {
            StateAction::Update(delta) => Some(Self::Update(delta, consistency)),
            StateAction::Delete(_) => Some(Self::Delete(consistency)),
        }
    }

    /// The delta of an update.
    pub fn delta(&self) -> Option<&'a wire::CrdtDelta> {
        match self {
            Self::Update(delta, _) => Some(delta),
            Self::Delete(_) => None,
        }
    }

    /// Whether it deletes the entity.
    pub fn is_delete(&self) -> bool {
        matches!(self, Self::Delete(_))
    }

    /// The write consistency asked for.
    pub fn write_consistency(&self) -> WriteConsistency {
        match self {
            Self::Update(_, c) | Self::Delete(c) => *c,
        }
    }
}

/// A message sent to a subscriber's stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    message: wire::CrdtStreamedMessage,
    side_effects: Vec<SideEffect>,
}

impl Notification {
    /// The streamed command it is for.
    pub fn command_id(&self) -> i64 {
        self.message.command_id
    }

    /// The message to the subscriber, if there is one.
    ///
    /// # Panics
    /// When it is not a `T`.
    #[track_caller]
    pub fn message<T: Payload>(&self) -> Option<T> {
        match action(self.message.client_action.as_ref()) {
            Some(Action::Reply(reply)) => reply
                .payload
                .as_ref()
                .map(|p| T::from_any(p).unwrap_or_else(|e| panic!("{e}"))),
            _ => None,
        }
    }

    /// The payload as sent, if there is one.
    pub fn payload(&self) -> Option<&Any> {
        match action(self.message.client_action.as_ref()) {
            Some(Action::Reply(reply)) => reply.payload.as_ref(),
            _ => None,
        }
    }

    /// The failure text, when the subscription failed (and ended).
    pub fn failure(&self) -> Option<&str> {
        match action(self.message.client_action.as_ref()) {
            Some(Action::Failure(failure)) => Some(&failure.description),
            _ => None,
        }
    }

    /// Whether it ends the subscriber's stream.
    pub fn end_stream(&self) -> bool {
        self.message.end_stream
    }

    /// Side effects of the change callback.
    pub fn side_effects(&self) -> &[SideEffect] {
        &self.side_effects
    }

    /// The message as sent on the wire.
    pub fn wire(&self) -> &wire::CrdtStreamedMessage {
        &self.message
    }
}

fn action(action: Option<&pb::ClientAction>) -> Option<&Action> {
    action.and_then(|a| a.action.as_ref())
}
