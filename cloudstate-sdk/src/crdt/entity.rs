//! The CRDT entity API: the handler trait, its registration options and the
//! contexts handlers and subscription callbacks get.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use super::{CrdtType, WriteConsistency};
use crate::effect::{Failure, Metadata, Reply, ServiceCall};
use crate::entity::Command;
use crate::payload::{Any, Payload};
use crate::protocol::cloudstate as pb;

/// The behaviour of a CRDT entity type, shared by all its instances.
///
/// Each instance (one per entity id and proxy stream) holds a local copy of
/// the entity's CRDT. Commands change it through [`CrdtContext::state_mut`];
/// the runtime sends what changed to the proxy, which merges it with the
/// other replicas and sends their changes back as deltas.
pub trait CrdtEntity: Send + Sync + 'static {
    /// The CRDT: one of the types of [`crdt`](mod@crate::crdt), or
    /// [`Crdt`](super::Crdt) when the type is chosen at run time.
    type State: CrdtType;

    /// The CRDT of an entity the proxy holds no value for yet.
    fn initial_state(&self, entity_id: &str) -> Self::State;

    /// Handles one command. `Ok(None)` sends no reply message, which a
    /// streamed command that only subscribes may do. A [`Failure`] undoes
    /// every change the command made.
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CrdtContext<'_, Self::State>,
    ) -> Result<Option<Reply>, Failure>;
}

/// Registration options of a CRDT entity.
#[derive(Debug, Clone, Default)]
pub struct CrdtOptions {
    pub(crate) persistence_id: Option<String>,
    pub(crate) passivation_timeout: Option<Duration>,
}

impl CrdtOptions {
    /// Options with the full service name as persistence id.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key namespace of the entity's CRDTs in the proxy, unique among the
    /// CRDT entities of the user function (default: the full service name).
    #[must_use]
    pub fn persistence_id(mut self, id: impl Into<String>) -> Self {
        self.persistence_id = Some(id.into());
        self
    }

    /// Ask the proxy to passivate an idle instance after `timeout`.
    #[must_use]
    pub fn passivation_timeout(mut self, timeout: Duration) -> Self {
        self.passivation_timeout = Some(timeout);
        self
    }
}

/// A subscriber's callback on every change of the CRDT.
pub(crate) type OnChange<C> =
    Box<dyn FnMut(&mut ChangeContext<'_, C>) -> Result<Option<Any>, Failure> + Send>;
/// A subscriber's callback when its client cancels the stream.
pub(crate) type OnCancel<C> = Box<dyn FnOnce(&mut CancelContext<'_, C>) + Send>;

/// Changes to the CRDT made by a command or a cancellation callback, kept
/// so that a failure can undo them.
pub(crate) struct Mutation<'a, C> {
    pub(crate) state: &'a mut C,
    /// The CRDT (pending delta included) before the first change.
    pub(crate) backup: Option<C>,
    pub(crate) deleted: bool,
    pub(crate) write_consistency: WriteConsistency,
    pub(crate) side_effects: Vec<pb::SideEffect>,
    pub(crate) entity_id: &'a str,
    pub(crate) command_id: i64,
}

impl<'a, C: Clone> Mutation<'a, C> {
    pub(crate) fn new(state: &'a mut C, entity_id: &'a str, command_id: i64) -> Self {
        Self {
            state,
            backup: None,
            deleted: false,
            write_consistency: WriteConsistency::default(),
            side_effects: Vec::new(),
            entity_id,
            command_id,
        }
    }

    fn state_mut(&mut self) -> &mut C {
        if self.backup.is_none() {
            self.backup = Some(self.state.clone());
        }
        self.state
    }

    /// Puts the CRDT back as it was before the first change.
    pub(crate) fn undo(&mut self) {
        if let Some(backup) = self.backup.take() {
            *self.state = backup;
        }
    }
}

/// What a CRDT command handler can do besides replying: read and change the
/// CRDT, delete the entity, choose the write consistency, add side effects,
/// and, for a streamed command, subscribe to changes.
pub struct CrdtContext<'a, C> {
    pub(crate) change: Mutation<'a, C>,
    pub(crate) streamed: bool,
    pub(crate) on_change: Option<OnChange<C>>,
    pub(crate) on_cancel: Option<OnCancel<C>>,
    pub(crate) metadata: &'a Metadata,
}

/// The methods a command and a cancellation callback share: read and
/// change the CRDT, delete, write consistency, side effects, ids.
macro_rules! mutation_methods {
    ($what:literal) => {
        /// The CRDT, with the changes made so far.
        pub fn state(&self) -> &C {
            self.change.state
        }

        #[doc = concat!("The CRDT, to change it. Changes are sent to the proxy with ", $what, ",")]
        /// or undone if the handler fails.
        pub fn state_mut(&mut self) -> &mut C {
            self.change.state_mut()
        }

        /// Deletes the entity once the handler succeeds: the proxy removes
        /// the CRDT on every replica and closes the entity's stream. Changes
        /// made here are not sent; the handler still sees them.
        pub fn delete(&mut self) {
            self.change.deleted = true;
        }

        /// How many replicas must have the change (or delete) before the
        /// proxy answers (default [`WriteConsistency::Local`]).
        pub fn set_write_consistency(&mut self, consistency: WriteConsistency) {
            self.change.write_consistency = consistency;
        }

        /// The write consistency asked for.
        pub fn write_consistency(&self) -> WriteConsistency {
            self.change.write_consistency
        }

        /// Adds a side effect, performed by the proxy after the change; a
        /// `synchronous` one completes before the caller is answered.
        pub fn effect(&mut self, call: impl Into<ServiceCall>, synchronous: bool) {
            self.change
                .side_effects
                .push(call.into().into_side_effect(synchronous));
        }

        /// The id of this entity.
        pub fn entity_id(&self) -> &str {
            self.change.entity_id
        }

        /// The id of the command (for a cancellation: of the streamed
        /// command whose caller cancelled).
        pub fn command_id(&self) -> i64 {
            self.change.command_id
        }
    };
}

impl<'a, C: CrdtType> CrdtContext<'a, C> {
    pub(crate) fn new(change: Mutation<'a, C>, streamed: bool, metadata: &'a Metadata) -> Self {
        Self {
            change,
            streamed,
            on_change: None,
            on_cancel: None,
            metadata,
        }
    }

    mutation_methods!("the reply");

    /// The metadata sent with the command; empty when none was sent.
    pub fn metadata(&self) -> &Metadata {
        self.metadata
    }

    /// Whether the caller takes a stream of replies: only then do
    /// [`on_change`](Self::on_change) and [`on_cancel`](Self::on_cancel)
    /// subscribe.
    pub fn is_streamed(&self) -> bool {
        self.streamed
    }

    /// Calls `callback` after every later change of the CRDT, from a command
    /// of another caller, another replica, or a cancellation; what it
    /// returns goes to this caller's stream. Ignored unless the command is
    /// streamed.
    pub fn on_change(
        &mut self,
        callback: impl FnMut(&mut ChangeContext<'_, C>) -> Result<Option<Any>, Failure> + Send + 'static,
    ) {
        self.on_change = Some(Box::new(callback));
    }

    /// Calls `callback` when this caller cancels its stream; it may change
    /// the CRDT. Ignored unless the command is streamed.
    pub fn on_cancel(&mut self, callback: impl FnOnce(&mut CancelContext<'_, C>) + Send + 'static) {
        self.on_cancel = Some(Box::new(callback));
    }

    /// This context as the context of a streamed method whose replies are `T`.
    pub fn streamed<T: Payload>(&mut self) -> StreamedContext<'a, '_, C, T> {
        StreamedContext {
            inner: self,
            reply: PhantomData,
        }
    }
}

/// The context of a server-streaming method whose messages are `T`: a
/// [`CrdtContext`] whose subscription callbacks return typed messages.
pub struct StreamedContext<'a, 'b, C, T> {
    inner: &'b mut CrdtContext<'a, C>,
    reply: PhantomData<fn() -> T>,
}

impl<'a, C: CrdtType, T: Payload + 'static> StreamedContext<'a, '_, C, T> {
    /// Calls `callback` after every later change of the CRDT; a message it
    /// returns goes to this caller's stream.
    pub fn on_change(
        &mut self,
        mut callback: impl FnMut(&mut ChangeContext<'_, C>) -> Result<Option<T>, Failure>
        + Send
        + 'static,
    ) {
        self.inner
            .on_change(move |ctx| Ok(callback(ctx)?.map(|message| message.to_any())));
    }

    /// Calls `callback` when this caller cancels its stream.
    pub fn on_cancel(&mut self, callback: impl FnOnce(&mut CancelContext<'_, C>) + Send + 'static) {
        self.inner.on_cancel(callback);
    }
}

impl<'a, C, T> Deref for StreamedContext<'a, '_, C, T> {
    type Target = CrdtContext<'a, C>;
    fn deref(&self) -> &Self::Target {
        self.inner
    }
}

impl<C, T> DerefMut for StreamedContext<'_, '_, C, T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.inner
    }
}

/// What a subscription's change callback can do: read the CRDT (not change
/// it), add side effects and end the caller's stream.
pub struct ChangeContext<'a, C> {
    pub(crate) state: &'a C,
    pub(crate) entity_id: &'a str,
    pub(crate) command_id: i64,
    pub(crate) ended: bool,
    pub(crate) side_effects: Vec<pb::SideEffect>,
}

impl<C> ChangeContext<'_, C> {
    /// The CRDT after the change.
    pub fn state(&self) -> &C {
        self.state
    }

    /// Ends the caller's stream after this callback's message.
    pub fn end_stream(&mut self) {
        self.ended = true;
    }

    /// Adds a side effect.
    pub fn effect(&mut self, call: impl Into<ServiceCall>, synchronous: bool) {
        self.side_effects
            .push(call.into().into_side_effect(synchronous));
    }

    /// The id of this entity.
    pub fn entity_id(&self) -> &str {
        self.entity_id
    }

    /// The id of the streamed command that subscribed.
    pub fn command_id(&self) -> i64 {
        self.command_id
    }
}

/// What a cancellation callback can do: change the CRDT, delete the entity,
/// choose the write consistency and add side effects.
pub struct CancelContext<'a, C> {
    pub(crate) change: Mutation<'a, C>,
}

impl<C: CrdtType> CancelContext<'_, C> {
    mutation_methods!("the answer to the cancellation");
}
