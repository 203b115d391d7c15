//! Builders for value-entity protocol messages, in and out.
//!
//! Optional fields stay absent unless a builder sets them, as the official
//! TCK's messages do.

use super::message::{self, output_builder};
use crate::payload::{self, Any};
use crate::protocol::cloudstate::client_action::Action;
use crate::protocol::cloudstate::valueentity::{
    ValueEntityAction, ValueEntityDelete, ValueEntityInit, ValueEntityInitState, ValueEntityReply,
    ValueEntityStreamIn, ValueEntityStreamOut, ValueEntityUpdate,
    value_entity_action::Action as StateAction, value_entity_stream_in::Message as In,
    value_entity_stream_out::Message as Out,
};

/// `init` with no stored state (the state is present, its value absent, as
/// the official proxy sends it).
pub fn init(service: &str, entity_id: &str) -> ValueEntityStreamIn {
    init_state(service, entity_id, None)
}

/// `init` with a stored state.
pub fn init_with_state<M: prost::Name>(
    service: &str,
    entity_id: &str,
    state: &M,
) -> ValueEntityStreamIn {
    init_state(service, entity_id, Some(payload::encode(state)))
}

/// `init` with any stored state (or none).
pub fn init_state(service: &str, entity_id: &str, state: Option<Any>) -> ValueEntityStreamIn {
    input(In::Init(ValueEntityInit {
        service_name: service.to_owned(),
        entity_id: entity_id.to_owned(),
        state: Some(ValueEntityInitState { value: state }),
    }))
}

/// A command with a protobuf payload, as the proxy sends it.
pub fn command<M: prost::Name>(
    id: i64,
    entity_id: &str,
    name: &str,
    message: &M,
) -> ValueEntityStreamIn {
    command_any(id, entity_id, name, Some(payload::encode(message)))
}

/// A command with any payload (or none).
pub fn command_any(
    id: i64,
    entity_id: &str,
    name: &str,
    payload: Option<Any>,
) -> ValueEntityStreamIn {
    input(In::Command(message::command(
        id, entity_id, name, payload, false, None,
    )))
}

fn input(message: In) -> ValueEntityStreamIn {
    ValueEntityStreamIn {
        message: Some(message),
    }
}

/// A reply with a protobuf message.
pub fn reply<M: prost::Name>(command_id: i64, message: &M) -> ReplyBuilder {
    ReplyBuilder::new(
        command_id,
        Action::Reply(message::reply(payload::encode(message))),
    )
}

/// A reply with `google.protobuf.Empty`.
pub fn reply_empty(command_id: i64) -> ReplyBuilder {
    ReplyBuilder::new(command_id, Action::Reply(message::reply(payload::empty())))
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

/// A command failure: no state action, no side effects, `restart` false.
pub fn failure(command_id: i64, description: &str) -> ValueEntityStreamOut {
    ReplyBuilder::new(
        command_id,
        Action::Failure(message::failure(command_id, description, false)),
    )
    .build()
}

/// A stream-level failure.
pub fn stream_failure(command_id: i64, description: &str) -> ValueEntityStreamOut {
    ValueEntityStreamOut {
        message: Some(Out::Failure(message::failure(
            command_id,
            description,
            false,
        ))),
    }
}

/// Builds a `ValueEntityReply`; converts into the output message.
#[derive(Debug, Clone)]
pub struct ReplyBuilder(ValueEntityReply);

impl ReplyBuilder {
    fn new(command_id: i64, action: Action) -> Self {
        Self(ValueEntityReply {
            command_id,
            client_action: Some(message::client(action)),
            ..Default::default()
        })
    }

    /// Sets the state action to an update with `state`.
    #[must_use]
    pub fn update<M: prost::Name>(mut self, state: &M) -> Self {
        self.0.state_action = Some(ValueEntityAction {
            action: Some(StateAction::Update(ValueEntityUpdate {
                value: Some(payload::encode(state)),
            })),
        });
        self
    }

    /// Sets the state action to a delete.
    #[must_use]
    pub fn delete(mut self) -> Self {
        self.0.state_action = Some(ValueEntityAction {
            action: Some(StateAction::Delete(ValueEntityDelete {})),
        });
        self
    }
}

output_builder!(ReplyBuilder, ValueEntityStreamOut, Out::Reply);
