//! The parts every kind's protocol messages share, built in one place: the
//! command, the client actions, the failure, and the methods each output
//! builder has.

use crate::effect::Metadata;
use crate::payload::{self, Any};
use crate::protocol::cloudstate::{self as pb, client_action::Action};

/// A command as the proxy sends it to an entity.
pub(super) fn command(
    id: i64,
    entity_id: &str,
    name: &str,
    payload: Option<Any>,
    streamed: bool,
    metadata: Option<Metadata>,
) -> pb::Command {
    pb::Command {
        entity_id: entity_id.to_owned(),
        id,
        name: name.to_owned(),
        payload,
        streamed,
        metadata,
    }
}

/// A reply with `payload` and no metadata.
pub(super) fn reply(payload: Any) -> pb::Reply {
    pb::Reply {
        payload: Some(payload),
        metadata: None,
    }
}

/// A forward to `service`/`command` with a protobuf payload.
pub(super) fn forward<M: prost::Name>(service: &str, command: &str, message: &M) -> pb::Forward {
    pb::Forward {
        service_name: service.to_owned(),
        command_name: command.to_owned(),
        payload: Some(payload::encode(message)),
        metadata: None,
    }
}

/// A failure.
pub(super) fn failure(command_id: i64, description: &str, restart: bool) -> pb::Failure {
    pb::Failure {
        command_id,
        description: description.to_owned(),
        restart,
    }
}

/// A client action around `action`.
pub(super) fn client(action: Action) -> pb::ClientAction {
    pb::ClientAction {
        action: Some(action),
    }
}

/// `side_effect`, `build` and `From` for a builder of the output message
/// `$out`, whose wrapped message goes in the variant `$variant`.
macro_rules! output_builder {
    ($builder:ident, $out:ident, $variant:path) => {
        impl $builder {
            /// Adds a side effect.
            #[must_use]
            pub fn side_effect(mut self, effect: $crate::protocol::cloudstate::SideEffect) -> Self {
                self.0.side_effects.push(effect);
                self
            }

            /// The output message.
            pub fn build(self) -> $out {
                $out {
                    message: Some($variant(self.0)),
                }
            }
        }

        impl From<$builder> for $out {
            fn from(builder: $builder) -> Self {
                builder.build()
            }
        }
    };
}
pub(super) use output_builder;
