//! A tap on everything the proxy exchanges with the user function, for tests
//! (what the official TCK's interceptor sees), without a second hop.

use cloudstate_sdk::protocol::cloudstate as pb;
use cloudstate_sdk::protocol::cloudstate::action::{ActionCommand, ActionResponse};
use cloudstate_sdk::protocol::cloudstate::crdt::{CrdtStreamIn, CrdtStreamOut};
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, EventSourcedStreamOut,
};
use cloudstate_sdk::protocol::cloudstate::valueentity::{
    ValueEntityStreamIn, ValueEntityStreamOut,
};
use tokio::sync::broadcast;

/// One observed exchange.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// The discovery call and its answer.
    Discovery {
        /// What the proxy sent.
        proxy_info: pb::ProxyInfo,
        /// What the user function answered.
        spec: pb::EntitySpec,
    },
    /// A `reportError` call.
    ReportError(String),
    /// An entity stream was opened.
    StreamOpened {
        /// A number unique to the stream.
        stream: u64,
        /// The entity's service.
        service: String,
        /// The entity id.
        entity_id: String,
    },
    /// A command was handed to an entity (to its mailbox, or to the entity
    /// it starts): what a test waits for before it lets the entity go on.
    Dispatched {
        /// The entity's service.
        service: String,
        /// The entity id.
        entity_id: String,
    },
    /// An event-sourced message sent to the user function.
    EventSourcedIn(u64, EventSourcedStreamIn),
    /// An event-sourced message received from the user function.
    EventSourcedOut(u64, EventSourcedStreamOut),
    /// A value-entity message sent to the user function.
    ValueEntityIn(u64, ValueEntityStreamIn),
    /// A value-entity message received from the user function.
    ValueEntityOut(u64, ValueEntityStreamOut),
    /// A CRDT message sent to the user function.
    CrdtIn(u64, CrdtStreamIn),
    /// A CRDT message received from the user function.
    CrdtOut(u64, CrdtStreamOut),
    /// An action call was started (its number is shared with entity streams).
    ActionCall {
        /// A number unique to the call.
        call: u64,
        /// The action's service.
        service: String,
        /// The method called.
        method: String,
        /// Which `ActionProtocol` method carries it.
        shape: ActionShape,
    },
    /// An action command sent to the user function.
    ActionIn(u64, ActionCommand),
    /// An action response received from the user function.
    ActionOut(u64, ActionResponse),
    /// The proxy dropped an action call before the user function completed
    /// it (the client went away, or a failure ended the client's call).
    ActionCancelled(u64),
    /// The proxy completed its side of a stream (entity streams, and the
    /// input of streamed-in and bidirectional action calls).
    InputClosed(u64),
    /// The user function completed its side of a stream, or of an action
    /// call (`stream` is then the call's number; `ok` is false for an error status).
    OutputClosed {
        /// The stream.
        stream: u64,
        /// Whether it ended with status OK.
        ok: bool,
    },
}

/// The `ActionProtocol` method an action call goes through, from the
/// method's streaming flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionShape {
    /// `handleUnary`: one command, one response.
    Unary,
    /// `handleStreamedIn`: a header command, one command per element, one response.
    StreamedIn,
    /// `handleStreamedOut`: one command, a stream of responses.
    StreamedOut,
    /// `handleStreamed`: a header command, then streams both ways.
    Streamed,
}

impl ActionShape {
    /// The shape of a method with these streaming flags.
    pub fn of(client_streaming: bool, server_streaming: bool) -> Self {
        match (client_streaming, server_streaming) {
            (false, false) => Self::Unary,
            (true, false) => Self::StreamedIn,
            (false, true) => Self::StreamedOut,
            (true, true) => Self::Streamed,
        }
    }

    /// Whether the input streams (the first command then has no payload).
    pub fn streams_in(self) -> bool {
        matches!(self, Self::StreamedIn | Self::Streamed)
    }
}

/// Broadcasts [`Observed`] items to subscribers; costs nothing without any.
#[derive(Debug, Clone)]
pub struct Observer {
    tx: broadcast::Sender<Observed>,
}

impl Default for Observer {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer {
    /// An observer with room for 65 536 unread items per subscriber.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(1 << 16).0,
        }
    }

    /// A new subscription, seeing what happens from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Observed> {
        self.tx.subscribe()
    }

    /// Whether anyone listens (so callers can skip building items).
    pub(crate) fn active(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub(crate) fn emit(&self, item: impl FnOnce() -> Observed) {
        if self.active() {
            let _ = self.tx.send(item());
        }
    }
}
