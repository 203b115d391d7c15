//! Builders for event-sourced protocol messages, in and out.
//!
//! Optional fields stay absent unless a builder sets them, as the official
//! TCK's messages do.

use super::message::{self, output_builder};
use crate::payload::{self, Any};
use crate::protocol::cloudstate::eventsourced::{
    EventSourcedEvent, EventSourcedInit, EventSourcedReply, EventSourcedSnapshot,
    EventSourcedStreamIn, EventSourcedStreamOut, event_sourced_stream_in::Message as In,
    event_sourced_stream_out::Message as Out,
};
use crate::protocol::cloudstate::{self as pb, client_action::Action};

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
    input(In::Command(message::command(
        id, entity_id, name, payload, false, None,
    )))
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
    ReplyBuilder::new(command_id, Action::Reply(message::reply(payload)))
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
        Action::Forward(message::forward(service, command, message)),
    )
}

/// A command failure (client action).
pub fn failure(command_id: i64, description: &str, restart: bool) -> EventSourcedStreamOut {
    ReplyBuilder::new(
        command_id,
        Action::Failure(message::failure(command_id, description, restart)),
    )
    .build()
}

/// A stream-level failure.
pub fn stream_failure(command_id: i64, description: &str) -> EventSourcedStreamOut {
    EventSourcedStreamOut {
        message: Some(Out::Failure(message::failure(
            command_id,
            description,
            false,
        ))),
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
    fn new(command_id: i64, action: Action) -> Self {
        Self(EventSourcedReply {
            command_id,
            client_action: Some(message::client(action)),
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
}

output_builder!(ReplyBuilder, EventSourcedStreamOut, Out::Reply);
