//! The value-entity protocol on the shared stream driver.

use std::sync::Arc;

use prost::Message;
use tracing::{debug, info_span};

use super::{ValueContext, ValueEntity};
use crate::effect::{Reply, failure_action};
use crate::entity::{self, Prepared, Registry};
use crate::eventsourced::Command;
use crate::payload::Any;
use crate::protocol::cloudstate as pb;
use crate::protocol::cloudstate::valueentity::{
    self as ve, value_entity_action::Action as StateAction,
    value_entity_server::ValueEntity as ValueEntityRpc, value_entity_stream_in::Message as In,
    value_entity_stream_out::Message as Out,
};
use crate::stream::{EntityService, Outputs, Protocol, Stop};

/// A registered value entity type.
pub(crate) type Registration = entity::Registration<dyn Factory>;

/// Creates instances; erases the entity's types.
pub(crate) trait Factory: Send + Sync {
    fn create(&self, entity_id: &str, state: Option<&Any>) -> Result<Box<dyn Instance>, String>;
}

/// One live value entity.
pub(crate) trait Instance: Send {
    /// Runs a command; on success its state change is returned as the
    /// state action and held until [`commit`](Self::commit).
    fn command(&mut self, command: &Command<'_>) -> Outcome;
    /// Applies the state change of the last successful command, once its
    /// reply is on its way to the proxy.
    fn commit(&mut self);
    /// The instance, for the test kit to read its typed state.
    #[cfg_attr(not(feature = "testkit"), allow(dead_code))]
    fn as_any(&self) -> &dyn std::any::Any;
}

pub(crate) enum Outcome {
    Success {
        reply: Reply,
        side_effects: Vec<pb::SideEffect>,
        state_action: Option<StateAction>,
    },
    Failed(String),
    /// Logged as an error where it was caught.
    Panicked(String),
}

pub(crate) struct Typed<E>(pub(crate) Arc<E>);

impl<E: ValueEntity> Factory for Typed<E> {
    fn create(&self, entity_id: &str, state: Option<&Any>) -> Result<Box<dyn Instance>, String> {
        let state = state
            .map(|any| {
                self.0.decode_state(any).map_err(|e| {
                    format!(
                        "Protocol error: the stored state [{}] cannot be read: {e}",
                        any.type_url
                    )
                })
            })
            .transpose()?;
        Ok(Box::new(Live {
            entity: Arc::clone(&self.0),
            entity_id: entity_id.to_owned(),
            state,
            pending: None,
        }))
    }
}

pub(crate) struct Live<E: ValueEntity> {
    pub(crate) entity: Arc<E>,
    pub(crate) entity_id: String,
    pub(crate) state: Option<E::State>,
    /// The change of the command being answered: `Some(None)` deletes.
    pub(crate) pending: Option<Option<E::State>>,
}

impl<E: ValueEntity> Instance for Live<E> {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn commit(&mut self) {
        if let Some(change) = self.pending.take() {
            self.state = change;
        }
    }

    fn command(&mut self, command: &Command<'_>) -> Outcome {
        self.pending = None;
        let entity = &*self.entity;
        let mut ctx = ValueContext {
            current: self.state.as_ref(),
            change: None,
            side_effects: Vec::new(),
            entity_id: &self.entity_id,
            metadata: command.metadata().unwrap_or(&crate::metadata::EMPTY),
        };
        let result = entity.handle_command(command, &mut ctx);
        let ValueContext {
            change,
            side_effects,
            ..
        } = ctx;
        match result {
            Ok(reply) => {
                let state_action = match change {
                    None => None,
                    Some(Some(state)) => {
                        let value = entity.encode_state(&state);
                        self.pending = Some(Some(state));
                        Some(StateAction::Update(ve::ValueEntityUpdate {
                            value: Some(value),
                        }))
                    }
                    Some(None) => {
                        self.pending = Some(None);
                        Some(StateAction::Delete(ve::ValueEntityDelete {}))
                    }
                };
                Outcome::Success {
                    reply,
                    side_effects,
                    state_action,
                }
            }
            Err(failure) => Outcome::Failed(failure.description().to_owned()),
        }
    }
}

/// The `cloudstate.valueentity.ValueEntity` gRPC service.
/// The `handle` service of this entity kind.
pub(crate) type ValueEntityService = EntityService<ValueEntityProtocol>;

crate::stream::entity_service!(
    ValueEntityService,
    ValueEntityRpc,
    ve::ValueEntityStreamIn,
    ve::ValueEntityStreamOut
);

impl ValueEntityProtocol {
    pub(crate) fn new(entities: Registry<dyn Factory>) -> Self {
        Self { entities }
    }
}

pub(crate) struct ValueEntityProtocol {
    entities: Registry<dyn Factory>,
}

/// One value-entity stream.
pub(crate) struct Entity<I: Instance + ?Sized = dyn Instance> {
    pub(crate) registration: Arc<Registration>,
    pub(crate) entity_id: String,
    pub(crate) instance: Box<I>,
}

impl Protocol for ValueEntityProtocol {
    type In = ve::ValueEntityStreamIn;
    type Out = ve::ValueEntityStreamOut;
    type Message = In;
    type Entity = Entity;

    fn message(input: Self::In) -> Option<In> {
        input.message
    }

    fn start(&self, first: In) -> Result<(Entity, tracing::Span), Stop> {
        let init = match first {
            In::Init(init) => init,
            In::Command(command) => {
                return Err(Stop::Failure(
                    0,
                    format!(
                        "Protocol error: Expected init message for Value entity, but received command [{}] (id {})",
                        command.name, command.id
                    ),
                ));
            }
        };
        let registration = entity::lookup(&self.entities, &init.service_name, &init.entity_id)?;
        let state = init.state.and_then(|s| s.value);
        let instance = registration.create(&init.entity_id, |factory| {
            factory.create(&init.entity_id, state.as_ref())
        })?;
        let span = info_span!("entity", service = %init.service_name, entity_id = %init.entity_id);
        debug!(parent: &span, has_state = state.is_some(), "value entity started");
        Ok((
            Entity {
                registration,
                entity_id: init.entity_id,
                instance,
            },
            span,
        ))
    }

    fn handle(entity: &mut Entity, message: In, out: &mut Outputs<Self::Out>) -> Result<(), Stop> {
        let command = match message {
            In::Init(_) => {
                return Err(Self::stop(
                    entity,
                    0,
                    "Protocol error: Value entity already inited",
                ));
            }
            In::Command(command) => command,
        };
        let reply = entity.command(command)?;
        out.push_back(ve::ValueEntityStreamOut {
            message: Some(Out::Reply(reply)),
        });
        Ok(())
    }

    fn stop(entity: &Entity, command_id: i64, description: &str) -> Stop {
        entity
            .registration
            .stop(&entity.entity_id, command_id, description)
    }

    fn failure(command_id: i64, description: String) -> Self::Out {
        ve::ValueEntityStreamOut {
            message: Some(Out::Failure(pb::Failure {
                command_id,
                description,
                restart: false,
            })),
        }
    }
}

impl<I: Instance + ?Sized> Entity<I> {
    pub(crate) fn command(&mut self, command: pb::Command) -> Result<ve::ValueEntityReply, Stop> {
        let id = command.id;
        let name = command.name.as_str();
        let _span = tracing::debug_span!("command", id, name).entered();
        let registration = &self.registration;
        let view = match registration.prepare(&self.entity_id, &command)? {
            Prepared::Run(view) => view,
            Prepared::Unknown(unknown) => {
                registration.log_failure(&self.entity_id, name, &unknown);
                return Ok(failed(id, unknown));
            }
        };
        let instance = &mut self.instance;
        // A panic leaves the stored state untouched: changes apply only on success.
        let outcome = entity::guarded(|| instance.command(&view)).unwrap_or_else(|panic| {
            let description = registration.panicked(&self.entity_id, name, &panic);
            tracing::error!("{description}");
            Outcome::Panicked(description)
        });
        Ok(match outcome {
            Outcome::Success {
                reply,
                side_effects,
                state_action,
            } => {
                view.check_reply(&reply);
                let reply = ve::ValueEntityReply {
                    command_id: id,
                    client_action: Some(reply.into_client_action()),
                    side_effects,
                    state_action: state_action.map(|action| ve::ValueEntityAction {
                        action: Some(action),
                    }),
                };
                let size = entity::framed_len(reply.encoded_len());
                let limit = registration.max_reply;
                if size > limit {
                    // The change is dropped with the reply: the proxy never
                    // sees it, and neither does the next command.
                    let parts = format!(
                        "reply {} bytes, state {} bytes, {}",
                        reply.client_action.as_ref().map_or(0, Message::encoded_len),
                        reply.state_action.as_ref().map_or(0, Message::encoded_len),
                        entity::part("side effects", &reply.side_effects)
                    );
                    let description = entity::oversized(name, size, limit, &parts);
                    registration.log_failure(&self.entity_id, name, &description);
                    return Ok(failed(id, description));
                }
                instance.commit();
                reply
            }
            Outcome::Failed(description) => {
                registration.log_failure(&self.entity_id, name, &description);
                failed(id, description)
            }
            Outcome::Panicked(description) => failed(id, description),
        })
    }
}

fn failed(command_id: i64, description: String) -> ve::ValueEntityReply {
    ve::ValueEntityReply {
        command_id,
        client_action: Some(failure_action(command_id, description, false)),
        ..Default::default()
    }
}
