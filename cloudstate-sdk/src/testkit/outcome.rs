//! What a command or call produced, read the same way in every kit: the
//! answer to the caller typed as the method's output, and the side effects.
//! What only one kind sends (events, a state change, a CRDT delta) comes
//! with it.

use std::marker::PhantomData;

use crate::effect::{Metadata, ServiceCall};
use crate::payload::{Any, Payload};
use crate::protocol::cloudstate::{self as pb, client_action::Action};

/// What one command (or one response of an action call) sent to the proxy:
/// a reply, a forward, a failure or nothing, the side effects, and `K`, what
/// the kind adds ([`EventSourcedExtra`], [`ValueEntityExtra`],
/// [`CrdtExtra`], [`ActionExtra`]). `R` is the method's output type.
///
/// The kits name it by kind: [`EventSourcedOutcome`], [`ValueEntityOutcome`],
/// [`CrdtOutcome`], [`ActionOutcome`].
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<R, K> {
    answer: Answer,
    side_effects: Vec<SideEffect>,
    extra: K,
    output: PhantomData<fn() -> R>,
}

/// What an event-sourced command produced.
pub type EventSourcedOutcome<R, Ev> = Outcome<R, EventSourcedExtra<Ev>>;
/// What a value-entity command produced.
pub type ValueEntityOutcome<R, S> = Outcome<R, ValueEntityExtra<S>>;
/// What a CRDT command produced.
pub type CrdtOutcome<R> = Outcome<R, CrdtExtra>;
/// One response of an action call.
pub type ActionOutcome<R> = Outcome<R, ActionExtra>;

/// The client action, without the wire's nesting.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Reply {
        payload: Any,
        metadata: Option<Metadata>,
    },
    Forward(ServiceCall),
    Failure(String),
    NoReply,
}

impl Answer {
    fn of(action: Option<&Action>) -> Self {
        match action {
            Some(Action::Reply(reply)) => Self::Reply {
                payload: reply.payload.clone().unwrap_or_default(),
                metadata: reply.metadata.clone(),
            },
            Some(Action::Forward(forward)) => Self::Forward(call(
                &forward.service_name,
                &forward.command_name,
                forward.payload.as_ref(),
                forward.metadata.as_ref(),
            )),
            Some(Action::Failure(failure)) => Self::Failure(failure.description.clone()),
            None => Self::NoReply,
        }
    }
}

fn call(
    service: &str,
    command: &str,
    payload: Option<&Any>,
    metadata: Option<&Metadata>,
) -> ServiceCall {
    let call = ServiceCall::new(service, command, payload.cloned().unwrap_or_default());
    match metadata {
        Some(metadata) => call.with_metadata(metadata.clone()),
        None => call,
    }
}

/// A side effect: a call the proxy makes after the command, and whether the
/// reply waits for it.
///
/// Compare with what a call builder returns:
/// `SideEffect::new(two::call(&request), true)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SideEffect {
    /// The call.
    pub call: ServiceCall,
    /// Whether it completes before the reply reaches the caller.
    pub synchronous: bool,
}

impl SideEffect {
    /// A side effect of `call`.
    pub fn new(call: impl Into<ServiceCall>, synchronous: bool) -> Self {
        Self {
            call: call.into(),
            synchronous,
        }
    }

    pub(crate) fn of(effect: &pb::SideEffect) -> Self {
        Self {
            call: call(
                &effect.service_name,
                &effect.command_name,
                effect.payload.as_ref(),
                effect.metadata.as_ref(),
            ),
            synchronous: effect.synchronous,
        }
    }

    pub(crate) fn all(effects: &[pb::SideEffect]) -> Vec<Self> {
        effects.iter().map(Self::of).collect()
    }
}

impl<R, K> Outcome<R, K> {
    pub(crate) fn new(action: Option<&Action>, side_effects: &[pb::SideEffect], extra: K) -> Self {
        Self {
            answer: Answer::of(action),
            side_effects: SideEffect::all(side_effects),
            extra,
            output: PhantomData,
        }
    }

    /// The forward, if the command handed the call on.
    pub fn forward(&self) -> Option<&ServiceCall> {
        match &self.answer {
            Answer::Forward(call) => Some(call),
            _ => None,
        }
    }

    /// The failure's description, if the command failed.
    pub fn failure(&self) -> Option<&str> {
        match &self.answer {
            Answer::Failure(description) => Some(description),
            _ => None,
        }
    }

    /// Whether nothing goes to the caller: no reply, forward or failure.
    pub fn is_no_reply(&self) -> bool {
        self.answer == Answer::NoReply
    }

    /// The metadata sent with the reply, if it replied with some.
    pub fn reply_metadata(&self) -> Option<&Metadata> {
        match &self.answer {
            Answer::Reply { metadata, .. } => metadata.as_ref(),
            _ => None,
        }
    }

    /// The side effects, in order.
    pub fn side_effects(&self) -> &[SideEffect] {
        &self.side_effects
    }
}

impl<R: Payload, K> Outcome<R, K> {
    /// The reply message.
    ///
    /// # Panics
    /// When the command forwarded, failed or sent no reply, or the reply is
    /// not an `R`.
    #[track_caller]
    pub fn reply(&self) -> R {
        match self.try_reply() {
            Some(reply) => reply,
            None => panic!("expected a reply, got {:?}", self.answer),
        }
    }

    /// The reply message, if the command replied.
    ///
    /// # Panics
    /// When the reply is not an `R`.
    #[track_caller]
    pub fn try_reply(&self) -> Option<R> {
        match &self.answer {
            Answer::Reply { payload, .. } => {
                Some(R::from_any(payload).unwrap_or_else(|e| panic!("the reply: {e}")))
            }
            _ => None,
        }
    }
}

/// What an event-sourced command adds to its [`Outcome`]: events, the
/// snapshot, whether a failure restarts the entity.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSourcedExtra<Ev> {
    pub(crate) reply: crate::protocol::cloudstate::eventsourced::EventSourcedReply,
    pub(crate) events: Vec<Ev>,
}

impl<R, Ev> Outcome<R, EventSourcedExtra<Ev>> {
    /// The events emitted, in order (none when the command failed).
    pub fn events(&self) -> &[Ev] {
        &self.extra.events
    }

    /// The snapshot taken with this command's events, decoded as `S`.
    ///
    /// # Panics
    /// When the snapshot is not an `S`.
    #[track_caller]
    pub fn snapshot<S: Payload>(&self) -> Option<S> {
        let snapshot = self.extra.reply.snapshot.as_ref()?;
        Some(S::from_any(snapshot).unwrap_or_else(|e| panic!("the snapshot: {e}")))
    }

    /// Whether the failure restarts the entity (it had emitted events): the
    /// kit rebuilt it from its snapshot and journal, as the proxy does.
    pub fn restarts(&self) -> bool {
        match self.wire_action() {
            Some(Action::Failure(failure)) => failure.restart,
            _ => false,
        }
    }

    /// The reply as sent on the wire.
    pub fn wire(&self) -> &crate::protocol::cloudstate::eventsourced::EventSourcedReply {
        &self.extra.reply
    }

    fn wire_action(&self) -> Option<&Action> {
        self.extra
            .reply
            .client_action
            .as_ref()
            .and_then(|a| a.action.as_ref())
    }
}

/// What a value-entity command adds to its [`Outcome`]: the state it wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueEntityExtra<S> {
    pub(crate) reply: crate::protocol::cloudstate::valueentity::ValueEntityReply,
    pub(crate) change: Option<Option<S>>,
}

impl<R, S> Outcome<R, ValueEntityExtra<S>> {
    /// The state the command wrote: `Some(Some(state))` for an update,
    /// `Some(None)` for a delete, `None` when it left the state alone.
    pub fn state_change(&self) -> Option<Option<&S>> {
        self.extra.change.as_ref().map(Option::as_ref)
    }

    /// The reply as sent on the wire.
    pub fn wire(&self) -> &crate::protocol::cloudstate::valueentity::ValueEntityReply {
        &self.extra.reply
    }
}

/// What a CRDT command adds to its [`Outcome`]: its change of the CRDT,
/// whether the caller subscribed, what other subscribers were sent.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdtExtra {
    pub(crate) reply: crate::protocol::cloudstate::crdt::CrdtReply,
    pub(crate) notifications: Vec<super::Notification>,
}

impl<R> Outcome<R, CrdtExtra> {
    /// What the command did to the CRDT.
    pub fn state_action(&self) -> Option<super::StateChange<'_>> {
        super::StateChange::of(self.extra.reply.state_action.as_ref())
    }

    /// Whether the caller is subscribed (a streamed command that registered
    /// a callback).
    pub fn streamed(&self) -> bool {
        self.extra.reply.streamed
    }

    /// The messages the change sent to other subscribers, in order.
    pub fn notifications(&self) -> &[super::Notification] {
        &self.extra.notifications
    }

    /// The reply as sent on the wire.
    pub fn wire(&self) -> &crate::protocol::cloudstate::crdt::CrdtReply {
        &self.extra.reply
    }
}

/// What an action response adds to its [`Outcome`]: only the wire form.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionExtra {
    pub(crate) response: crate::protocol::cloudstate::action::ActionResponse,
}

impl<R> Outcome<R, ActionExtra> {
    /// The response as sent on the wire.
    pub fn wire(&self) -> &crate::protocol::cloudstate::action::ActionResponse {
        &self.extra.response
    }
}
