//! Event-sourced entities: state that is rebuilt from a snapshot and a journal
//! of events, and changed only by emitting events.
//!
//! Implement [`EventSourcedEntity`] (generated code does it for you from a
//! `.proto`), then register it with [`CloudState::event_sourced`](crate::CloudState::event_sourced).

pub(crate) mod runtime;

use std::time::Duration;

pub use crate::entity::Command;
pub(crate) use runtime::{EventSourcedProtocol, EventSourcedService, Factory, Typed};

use crate::effect::{CommandResult, Metadata, ServiceCall};
use crate::payload::{Any, Payload, PayloadError};
use crate::protocol::cloudstate as pb;

/// The behaviour of an event-sourced entity type, shared by all its instances.
///
/// Each instance (one per entity id, one stream from the proxy) owns a
/// [`State`](Self::State); the runtime hands it to the handlers one message at
/// a time, so no locking is needed.
pub trait EventSourcedEntity: Send + Sync + 'static {
    /// The state of one entity instance.
    type State: Send + 'static;
    /// The events this entity emits and replays.
    type Event: EventCodec;

    /// The state of an entity that has no snapshot.
    fn initial_state(&self, entity_id: &str) -> Self::State;

    /// Applies one event to the state: during replay, and immediately when a
    /// command emits it, so the command sees its own events.
    ///
    /// # Errors
    /// An event this entity cannot apply.
    fn apply_event(&self, state: &mut Self::State, event: &Self::Event)
    -> Result<(), PayloadError>;

    /// Handles one command. Emit events and add side effects through `ctx`;
    /// return the reply or forward, or a [`Failure`](crate::Failure) that discards them all.
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult;

    /// The snapshot of a state, taken when the snapshot interval is reached.
    /// `None` (the default) never snapshots.
    fn snapshot(&self, state: &Self::State) -> Option<Any> {
        let _ = state;
        None
    }

    /// Rebuilds a state from a snapshot.
    ///
    /// # Errors
    /// A snapshot this entity cannot read. The default takes none.
    fn restore(&self, entity_id: &str, snapshot: &Any) -> Result<Self::State, PayloadError> {
        let _ = entity_id;
        Err(PayloadError::unhandled(snapshot))
    }

    /// Whether [`snapshot`](Self::snapshot) takes snapshots at all. Generated
    /// entities declared without a snapshot type answer `false`, and
    /// registration then refuses an explicit
    /// [`snapshot_every`](EventSourcedOptions::snapshot_every). The default
    /// assumes it does.
    fn takes_snapshots(&self) -> bool {
        true
    }
}

/// How an entity's events travel as `Any`.
///
/// Generated code implements it for an enum of the declared event messages.
/// Every [`Payload`] is an `EventCodec`: `Any` itself (for entities that
/// match type URLs by hand), a primitive, [`Json`](crate::payload::Json),
/// or a message; a hand-written entity whose events are, say,
/// `Json<CartEvent>` names that as its `Event` type.
pub trait EventCodec: Sized + Send + 'static {
    /// Encodes the event for the journal.
    fn into_any(self) -> Any;
    /// Decodes an event from the journal.
    ///
    /// # Errors
    /// A type URL that is not one of the entity's events, or bytes that do not decode.
    fn from_any(any: Any) -> Result<Self, PayloadError>;
}

impl<P: Payload + Send + 'static> EventCodec for P {
    fn into_any(self) -> Any {
        self.to_any()
    }
    fn from_any(any: Any) -> Result<Self, PayloadError> {
        <P as Payload>::from_any(&any)
    }
}

/// Registration options of an event-sourced entity.
#[derive(Debug, Clone)]
pub struct EventSourcedOptions {
    pub(crate) persistence_id: String,
    pub(crate) snapshot_every: i64,
    /// Whether `snapshot_every` asked for snapshots (rather than the default).
    pub(crate) snapshots_requested: bool,
    pub(crate) passivation_timeout: Option<Duration>,
}

impl EventSourcedOptions {
    /// Snapshot interval used unless [`snapshot_every`](Self::snapshot_every) says otherwise.
    pub const DEFAULT_SNAPSHOT_EVERY: i64 = 100;

    /// Options with the journal namespace `persistence_id`, which must be
    /// unique among the event-sourced entities of the user function.
    pub fn new(persistence_id: impl Into<String>) -> Self {
        Self {
            persistence_id: persistence_id.into(),
            snapshot_every: Self::DEFAULT_SNAPSHOT_EVERY,
            snapshots_requested: false,
            passivation_timeout: None,
        }
    }

    /// Take a snapshot when an emitted event's sequence number is a multiple
    /// of `n`; `0` or less never snapshots. An entity that takes no
    /// snapshots (declared without a snapshot type) is refused with `n > 0`.
    #[must_use]
    pub fn snapshot_every(mut self, n: i64) -> Self {
        self.snapshot_every = n;
        self.snapshots_requested = n > 0;
        self
    }

    /// Ask the proxy to passivate an idle instance after `timeout`; unset, the
    /// proxy's default applies.
    #[must_use]
    pub fn passivation_timeout(mut self, timeout: Duration) -> Self {
        self.passivation_timeout = Some(timeout);
        self
    }
}

/// What a command handler can do besides replying: read the state, emit
/// events and add side effects.
pub struct CommandContext<'a, E: EventSourcedEntity + ?Sized> {
    pub(crate) entity: &'a E,
    pub(crate) state: &'a mut E::State,
    pub(crate) entity_id: &'a str,
    pub(crate) sequence: i64,
    pub(crate) snapshot_every: i64,
    pub(crate) snapshot_due: bool,
    pub(crate) events: Vec<Any>,
    pub(crate) side_effects: Vec<pb::SideEffect>,
    pub(crate) emit_error: Option<PayloadError>,
    pub(crate) metadata: &'a Metadata,
}

impl<E: EventSourcedEntity + ?Sized> CommandContext<'_, E> {
    /// The current state, including the events this command emitted so far.
    pub fn state(&self) -> &E::State {
        self.state
    }

    /// The id of this entity.
    pub fn entity_id(&self) -> &str {
        self.entity_id
    }

    /// The metadata sent with the command; empty when none was sent (the
    /// official proxy sends none to entities; forwards and side effects
    /// with metadata bring theirs).
    pub fn metadata(&self) -> &Metadata {
        self.metadata
    }

    /// The sequence number of the last event applied (0 for a new entity).
    pub fn sequence_number(&self) -> i64 {
        self.sequence
    }

    /// Emits an event: it is applied to the state at once and persisted with
    /// the reply, unless the command fails.
    pub fn emit(&mut self, event: impl Into<E::Event>) {
        if self.emit_error.is_some() {
            return;
        }
        let event = event.into();
        if let Err(error) = self.entity.apply_event(self.state, &event) {
            self.emit_error = Some(error);
            return;
        }
        self.sequence += 1;
        if self.snapshot_every > 0 && self.sequence % self.snapshot_every == 0 {
            self.snapshot_due = true;
        }
        self.events.push(event.into_any());
    }

    /// Adds a side effect, performed by the proxy after the events are
    /// persisted; a `synchronous` one completes before the reply is sent.
    pub fn effect(&mut self, call: impl Into<ServiceCall>, synchronous: bool) {
        self.side_effects
            .push(call.into().into_side_effect(synchronous));
    }

    /// The number of events this command emitted so far.
    pub fn emitted(&self) -> usize {
        self.events.len()
    }
}
