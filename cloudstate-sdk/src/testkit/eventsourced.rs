//! Builders for event-sourced protocol messages, in and out.
//!
//! Optional fields stay absent unless a builder sets them, as the official
//! TCK's messages do.

use crate::payload::{self, Any};
use crate::protocol::cloudstate as pb;
use crate::protocol::cloudstate::eventsourced::{
    EventSourcedEvent, EventSourcedInit, EventSourcedReply, EventSourcedSnapshot,
    EventSourcedStreamIn, EventSourcedStreamOut, event_sourced_stream_in::Message as In,
    event_sourced_stream_out::Message as Out,
};

/// `init` without a snapshot.
pub fn init(service: &str, entity_id: &str) -> EventSourcedStreamIn {
    input(In::Init(EventSourcedInit {
        service_name: service.to_owned(),
        entity_id: entity_id.to_owned(),
        snapshot: None,
    }))
}

/// `init` with a snapshot taken at `sequence`.
pub fn init_with_snapshot(
    service: &str,
    entity_id: &str,
    sequence: i64,
    snapshot: Any,
) -> EventSourcedStreamIn {
    input(In::Init(EventSourcedInit {
        service_name: service.to_owned(),
        entity_id: entity_id.to_owned(),
        snapshot: Some(EventSourcedSnapshot {
            snapshot_sequence: sequence,
            snapshot: Some(snapshot),
        }),
    }))
}

/// A journal event to replay.
pub fn event(sequence: i64, payload: Any) -> EventSourcedStreamIn {
    input(In::Event(EventSourcedEvent {
        sequence,
        payload: Some(payload),
    }))
}

/// A command with a protobuf payload, as the proxy sends it.
pub fn command<M: prost::Name>(
    id: i64,
    entity_id: &str,
    name: &str,
    message: &M,
) -> EventSourcedStreamIn {
    command_any(id, entity_id, name, Some(payload::encode(message)))
}

/// A command with any payload (or none).
pub fn command_any(
    id: i64,
    entity_id: &str,
    name: &str,
    payload: Option<Any>,
) -> EventSourcedStreamIn {
    input(In::Command(pb::Command {
        entity_id: entity_id.to_owned(),
        id,
        name: name.to_owned(),
        payload,
        streamed: false,
        metadata: None,
    }))
}

/// An input message with nothing set.
pub fn empty_input() -> EventSourcedStreamIn {
    EventSourcedStreamIn { message: None }
}

fn input(message: In) -> EventSourcedStreamIn {
    EventSourcedStreamIn {
        message: Some(message),
    }
}

/// A reply with a protobuf message.
pub fn reply<M: prost::Name>(command_id: i64, message: &M) -> ReplyBuilder {
    reply_any(command_id, payload::encode(message))
}

/// A reply with `google.protobuf.Empty`.
pub fn reply_empty(command_id: i64) -> ReplyBuilder {
    reply_any(command_id, payload::empty())
}

/// A reply with any payload.
pub fn reply_any(command_id: i64, payload: Any) -> ReplyBuilder {
    ReplyBuilder::new(
        command_id,
        pb::client_action::Action::Reply(pb::Reply {
            payload: Some(payload),
            metadata: None,
        }),
    )
}

/// A forward to `service`/`command` with a protobuf payload.
pub fn forward<M: prost::Name>(
    command_id: i64,
    service: &str,
    command: &str,
    message: &M,
) -> ReplyBuilder {
    ReplyBuilder::new(
        command_id,
        pb::client_action::Action::Forward(pb::Forward {
            service_name: service.to_owned(),
            command_name: command.to_owned(),
            payload: Some(payload::encode(message)),
            metadata: None,
        }),
    )
}

/// A command failure (client action).
pub fn failure(command_id: i64, description: &str, restart: bool) -> EventSourcedStreamOut {
    ReplyBuilder::new(
        command_id,
        pb::client_action::Action::Failure(pb::Failure {
            command_id,
            description: description.to_owned(),
            restart,
        }),
    )
    .build()
}

/// A stream-level failure.
pub fn stream_failure(command_id: i64, description: &str) -> EventSourcedStreamOut {
    EventSourcedStreamOut {
        message: Some(Out::Failure(pb::Failure {
            command_id,
            description: description.to_owned(),
            restart: false,
        })),
    }
}

/// A side effect with a protobuf payload.
pub fn side_effect<M: prost::Name>(
    service: &str,
    command: &str,
    message: &M,
    synchronous: bool,
) -> pb::SideEffect {
    pb::SideEffect {
        service_name: service.to_owned(),
        command_name: command.to_owned(),
        payload: Some(payload::encode(message)),
        synchronous,
        metadata: None,
    }
}

/// Builds an `EventSourcedReply` step by step; converts into the output message.
#[derive(Debug, Clone)]
pub struct ReplyBuilder(EventSourcedReply);

impl ReplyBuilder {
    fn new(command_id: i64, action: pb::client_action::Action) -> Self {
        Self(EventSourcedReply {
            command_id,
            client_action: Some(pb::ClientAction {
                action: Some(action),
            }),
            ..Default::default()
        })
    }

    /// Adds an event with a protobuf payload.
    #[must_use]
    pub fn event<M: prost::Name>(mut self, message: &M) -> Self {
        self.0.events.push(payload::encode(message));
        self
    }

    /// Sets the snapshot.
    #[must_use]
    pub fn snapshot<M: prost::Name>(mut self, message: &M) -> Self {
        self.0.snapshot = Some(payload::encode(message));
        self
    }

    /// Adds a side effect.
    #[must_use]
    pub fn side_effect(mut self, effect: pb::SideEffect) -> Self {
        self.0.side_effects.push(effect);
        self
    }

    /// The output message.
    pub fn build(self) -> EventSourcedStreamOut {
        EventSourcedStreamOut {
            message: Some(Out::Reply(self.0)),
        }
    }
}

impl From<ReplyBuilder> for EventSourcedStreamOut {
    fn from(builder: ReplyBuilder) -> Self {
        builder.build()
    }
}
