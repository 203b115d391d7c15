//! What the recorder saw: calls in the order they started, each with its
//! events in the order they passed through.

use std::collections::BTreeMap;
use std::fmt;

use cloudstate_sdk::protocol::cloudstate as pb;
use cloudstate_sdk::protocol::cloudstate::action::{ActionCommand, ActionResponse};
use cloudstate_sdk::protocol::cloudstate::crdt::{CrdtStreamIn, CrdtStreamOut, crdt_stream_in};
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, EventSourcedStreamOut, event_sourced_stream_in,
};
use cloudstate_sdk::protocol::cloudstate::valueentity::{
    ValueEntityStreamIn, ValueEntityStreamOut, value_entity_stream_in,
};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

/// The Cloudstate services a user function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// `cloudstate.EntityDiscovery`: `discover`, `reportError`.
    EntityDiscovery,
    /// `cloudstate.eventsourced.EventSourced`: `handle`.
    EventSourced,
    /// `cloudstate.valueentity.ValueEntity`: `handle`.
    ValueEntity,
    /// `cloudstate.crdt.Crdt`: `handle`.
    Crdt,
    /// `cloudstate.action.ActionProtocol`: `handleUnary`, `handleStreamedIn`,
    /// `handleStreamedOut`, `handleStreamed`.
    Action,
}

impl Service {
    /// The full gRPC service name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::EntityDiscovery => "cloudstate.EntityDiscovery",
            Self::EventSourced => "cloudstate.eventsourced.EventSourced",
            Self::ValueEntity => "cloudstate.valueentity.ValueEntity",
            Self::Crdt => "cloudstate.crdt.Crdt",
            Self::Action => "cloudstate.action.ActionProtocol",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a call ended: its gRPC status code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatus {
    /// The status code.
    pub code: Code,
    /// The status message.
    pub message: String,
}

impl CallStatus {
    /// Status OK with no message.
    pub fn ok() -> Self {
        Self {
            code: Code::Ok,
            message: String::new(),
        }
    }

    /// Whether the call ended with OK.
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }
}

impl From<&Status> for CallStatus {
    fn from(status: &Status) -> Self {
        Self {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

/// A message the proxy sent to the user function.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// `discover`.
    Discover(pb::ProxyInfo),
    /// `reportError`.
    ReportError(pb::UserFunctionError),
    /// An event-sourced stream message.
    EventSourced(EventSourcedStreamIn),
    /// A value-entity stream message.
    ValueEntity(ValueEntityStreamIn),
    /// A CRDT stream message.
    Crdt(CrdtStreamIn),
    /// An action command (any call shape).
    Action(ActionCommand),
}

/// A message the user function sent to the proxy.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// The answer to `discover`.
    Discover(pb::EntitySpec),
    /// The (empty) answer to `reportError`.
    ReportError,
    /// An event-sourced stream message.
    EventSourced(EventSourcedStreamOut),
    /// A value-entity stream message.
    ValueEntity(ValueEntityStreamOut),
    /// A CRDT stream message.
    Crdt(CrdtStreamOut),
    /// An action response (any call shape).
    Action(ActionResponse),
}

/// One thing that happened on a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The proxy opened the call; always the first event of a call.
    CallStarted {
        /// The service called.
        service: Service,
        /// The method, as in the proto (`handle`, `handleUnary`, ...).
        method: &'static str,
        /// The call's number (its index in the [`Log`]).
        call_id: usize,
    },
    /// A message from the proxy, recorded before it goes to the user function.
    In(Inbound),
    /// A message from the user function, recorded before it goes to the proxy.
    Out(Outbound),
    /// The proxy completed its input (half-close) on a client-streaming call.
    InClosed,
    /// The call is over; always the last event. `Cancelled` when the proxy
    /// cancelled or went away, else the user function's status.
    Ended {
        /// The final status.
        status: CallStatus,
    },
}

/// A protocol message the proxy sends, as it is recorded.
pub trait InMessage: Clone + Send + 'static {
    /// Wraps the message for the log.
    fn wrap(self) -> Inbound;
    /// The message, if `inbound` is of this type.
    fn peek(inbound: &Inbound) -> Option<&Self>;
}

/// A protocol message the user function sends, as it is recorded.
pub trait OutMessage: Clone + Send + 'static {
    /// Wraps the message for the log.
    fn wrap(self) -> Outbound;
    /// The message, if `outbound` is of this type.
    fn peek(outbound: &Outbound) -> Option<&Self>;
}

macro_rules! messages {
    ($trait:ident, $enum:ident: $($variant:ident($ty:ty)),* $(,)?) => {$(
        impl $trait for $ty {
            fn wrap(self) -> $enum {
                $enum::$variant(self)
            }
            fn peek(message: &$enum) -> Option<&Self> {
                match message {
                    $enum::$variant(m) => Some(m),
                    _ => None,
                }
            }
        }
    )*};
}

messages!(InMessage, Inbound:
    Discover(pb::ProxyInfo),
    ReportError(pb::UserFunctionError),
    EventSourced(EventSourcedStreamIn),
    ValueEntity(ValueEntityStreamIn),
    Crdt(CrdtStreamIn),
    Action(ActionCommand),
);
messages!(OutMessage, Outbound:
    Discover(pb::EntitySpec),
    EventSourced(EventSourcedStreamOut),
    ValueEntity(ValueEntityStreamOut),
    Crdt(CrdtStreamOut),
    Action(ActionResponse),
);

/// `reportError` answers `google.protobuf.Empty`.
impl OutMessage for () {
    fn wrap(self) -> Outbound {
        Outbound::ReportError
    }
    fn peek(outbound: &Outbound) -> Option<&Self> {
        matches!(outbound, Outbound::ReportError).then_some(&())
    }
}

/// One call between the proxy and the user function.
#[derive(Debug, Clone)]
pub struct Call {
    /// The call's number: its index in the [`Log`].
    pub id: usize,
    /// The service called.
    pub service: Service,
    /// The method, as in the proto.
    pub method: &'static str,
    /// The request metadata the proxy sent, as received.
    pub metadata: MetadataMap,
    /// What happened, in order: [`Event::CallStarted`] first, [`Event::Ended`]
    /// last once the call is over.
    pub events: Vec<Event>,
}

impl Call {
    /// The messages of type `T` the proxy sent, in order.
    pub fn ins<T: InMessage>(&self) -> Vec<&T> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::In(m) => T::peek(m),
                _ => None,
            })
            .collect()
    }

    /// The messages of type `T` the user function sent, in order.
    pub fn outs<T: OutMessage>(&self) -> Vec<&T> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Out(m) => T::peek(m),
                _ => None,
            })
            .collect()
    }

    /// The final status, once the call is over.
    pub fn status(&self) -> Option<&CallStatus> {
        self.events.iter().rev().find_map(|e| match e {
            Event::Ended { status } => Some(status),
            _ => None,
        })
    }

    /// Whether the call is over.
    pub fn is_ended(&self) -> bool {
        self.status().is_some()
    }

    /// Whether the proxy completed its input.
    pub fn is_input_closed(&self) -> bool {
        self.events.contains(&Event::InClosed)
    }

    /// For an entity stream: the service name and entity id of its first
    /// message, when that is an `init`.
    pub fn entity(&self) -> Option<(&str, &str)> {
        let first = self.events.iter().find_map(|e| match e {
            Event::In(m) => Some(m),
            _ => None,
        })?;
        match first {
            Inbound::EventSourced(EventSourcedStreamIn {
                message: Some(event_sourced_stream_in::Message::Init(init)),
            }) => Some((&init.service_name, &init.entity_id)),
            Inbound::ValueEntity(ValueEntityStreamIn {
                message: Some(value_entity_stream_in::Message::Init(init)),
            }) => Some((&init.service_name, &init.entity_id)),
            Inbound::Crdt(CrdtStreamIn {
                message: Some(crdt_stream_in::Message::Init(init)),
            }) => Some((&init.service_name, &init.entity_id)),
            _ => None,
        }
    }
}

/// Every call recorded so far, in the order the proxy started them.
#[derive(Debug, Clone, Default)]
pub struct Log {
    pub(crate) calls: Vec<Call>,
}

impl Log {
    /// The calls, in start order.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The call numbered `id`.
    pub fn call(&self, id: usize) -> Option<&Call> {
        self.calls.get(id)
    }

    /// The calls of `service`'s `method`, in start order.
    pub fn calls_to<'a>(
        &'a self,
        service: Service,
        method: &'a str,
    ) -> impl Iterator<Item = &'a Call> + 'a {
        self.calls
            .iter()
            .filter(move |c| c.service == service && c.method == method)
    }

    /// The entity streams whose `init` names `service_name` and `entity_id`,
    /// in start order (a passivated entity that is needed again gets a new one).
    pub fn entity_streams<'a>(&'a self, service_name: &str, entity_id: &str) -> Vec<&'a Call> {
        self.calls
            .iter()
            .filter(|c| c.entity() == Some((service_name, entity_id)))
            .collect()
    }

    /// Every entity stream that got its `init`, by (service name, entity id).
    pub fn by_entity(&self) -> BTreeMap<(&str, &str), Vec<&Call>> {
        let mut streams: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for call in &self.calls {
            if let Some(key) = call.entity() {
                streams.entry(key).or_default().push(call);
            }
        }
        streams
    }

    /// The calls, by value.
    pub fn into_calls(self) -> Vec<Call> {
        self.calls
    }
}
