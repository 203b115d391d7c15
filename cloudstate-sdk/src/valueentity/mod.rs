//! Value entities: state that is read and replaced (or deleted) as a whole;
//! the proxy stores it.
//!
//! Implement [`ValueEntity`] (generated code does it for you from a
//! `.proto`), then register it with
//! [`CloudState::value_entity`](crate::CloudState::value_entity).

pub(crate) mod runtime;

use std::time::Duration;

pub(crate) use runtime::{Typed, ValueEntityProtocol, ValueEntityService};

use crate::effect::{CommandResult, Metadata, ServiceCall};
use crate::eventsourced::Command;
use crate::payload::{Any, PayloadError};
use crate::protocol::cloudstate as pb;

/// The behaviour of a value entity type, shared by all its instances.
pub trait ValueEntity: Send + Sync + 'static {
    /// The state of one entity instance.
    type State: Send + 'static;

    /// Encodes the state for the proxy's store.
    fn encode_state(&self, state: &Self::State) -> Any;

    /// Decodes a stored state.
    ///
    /// # Errors
    /// A stored value this entity cannot read.
    fn decode_state(&self, state: &Any) -> Result<Self::State, PayloadError>;

    /// Handles one command. Read, update or delete the state through `ctx`;
    /// return the reply or forward, or a failure that leaves the state as it was.
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut ValueContext<'_, Self>,
    ) -> CommandResult;
}

/// Registration options of a value entity.
#[derive(Debug, Clone)]
pub struct ValueEntityOptions {
    pub(crate) persistence_id: String,
    pub(crate) passivation_timeout: Option<Duration>,
}

impl ValueEntityOptions {
    /// Options with the store namespace `persistence_id`, which must be unique
    /// among the value entities of the user function.
    pub fn new(persistence_id: impl Into<String>) -> Self {
        Self {
            persistence_id: persistence_id.into(),
            passivation_timeout: None,
        }
    }

    /// Ask the proxy to passivate an idle instance after `timeout`.
    #[must_use]
    pub fn passivation_timeout(mut self, timeout: Duration) -> Self {
        self.passivation_timeout = Some(timeout);
        self
    }
}

/// What a value-entity command handler can do besides replying.
///
/// Changes are kept aside until the command succeeds; the last one wins and
/// is the only state action sent. A failure discards them.
pub struct ValueContext<'a, E: ValueEntity + ?Sized> {
    pub(crate) current: Option<&'a E::State>,
    pub(crate) change: Option<Option<E::State>>,
    pub(crate) side_effects: Vec<pb::SideEffect>,
    pub(crate) entity_id: &'a str,
    pub(crate) metadata: &'a Metadata,
}

impl<E: ValueEntity + ?Sized> ValueContext<'_, E> {
    /// The state as this command sees it: after its own updates or delete;
    /// `None` when there is none.
    pub fn state(&self) -> Option<&E::State> {
        match &self.change {
            Some(changed) => changed.as_ref(),
            None => self.current,
        }
    }

    /// Replaces the state.
    pub fn update(&mut self, state: E::State) {
        self.change = Some(Some(state));
    }

    /// Deletes the state.
    pub fn delete(&mut self) {
        self.change = Some(None);
    }

    /// Adds a side effect, performed by the proxy after the state is stored;
    /// a `synchronous` one completes before the reply is sent.
    pub fn effect(&mut self, call: impl Into<ServiceCall>, synchronous: bool) {
        self.side_effects
            .push(call.into().into_side_effect(synchronous));
    }

    /// The id of this entity.
    pub fn entity_id(&self) -> &str {
        self.entity_id
    }

    /// The metadata sent with the command; empty when none was sent.
    pub fn metadata(&self) -> &Metadata {
        self.metadata
    }
}
