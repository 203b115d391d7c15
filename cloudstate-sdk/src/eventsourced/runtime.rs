//! The event-sourced protocol: one task per entity stream that owns the
//! entity's state and answers its messages in order.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, error, info_span, warn};

use super::{Command, CommandContext, EventCodec, EventSourcedEntity};
use crate::descriptors::ServiceInfo;
use crate::effect::{Reply, failure_action};
use crate::panic_message;
use crate::payload::Any;
use crate::protocol::cloudstate as pb;
use crate::protocol::cloudstate::eventsourced::{
    self as es, event_sourced_server::EventSourced, event_sourced_stream_in::Message as In,
    event_sourced_stream_out::Message as Out,
};
use crate::stream::{self, EntityService, Protocol, Replies, Stop};

/// A registered event-sourced entity type.
pub(crate) struct Registration {
    pub(crate) service_name: String,
    pub(crate) snapshot_every: i64,
    /// The service's methods, to refuse unknown commands before dispatch;
    /// `None` leaves that to the entity (the in-memory test kit).
    pub(crate) service: Option<ServiceInfo>,
    pub(crate) factory: Arc<dyn Factory>,
}

/// Creates entity instances; erases the entity's types so one gRPC service
/// can host every registered entity type.
pub(crate) trait Factory: Send + Sync {
    fn create(&self, entity_id: &str, snapshot: Option<&Any>) -> Result<Box<dyn Instance>, String>;
}

/// One live entity: its state behind the entity's handlers.
pub(crate) trait Instance: Send {
    fn apply(&mut self, event: Any) -> Result<(), String>;
    fn command(&mut self, command: &Command<'_>, sequence: i64, snapshot_every: i64) -> Outcome;
}

/// What a command handler produced.
pub(crate) enum Outcome {
    Success {
        reply: Reply,
        events: Vec<Any>,
        side_effects: Vec<pb::SideEffect>,
        snapshot: Option<Any>,
    },
    Failed {
        description: String,
        events_emitted: usize,
    },
}

pub(crate) struct Typed<E>(pub(crate) Arc<E>);

impl<E: EventSourcedEntity> Factory for Typed<E> {
    fn create(&self, entity_id: &str, snapshot: Option<&Any>) -> Result<Box<dyn Instance>, String> {
        Ok(Box::new(Live::new(
            Arc::clone(&self.0),
            entity_id,
            snapshot,
        )?))
    }
}

pub(crate) struct Live<E: EventSourcedEntity> {
    entity: Arc<E>,
    entity_id: String,
    pub(crate) state: E::State,
}

impl<E: EventSourcedEntity> Live<E> {
    pub(crate) fn new(
        entity: Arc<E>,
        entity_id: &str,
        snapshot: Option<&Any>,
    ) -> Result<Self, String> {
        let state = match snapshot {
            None => entity.initial_state(entity_id),
            Some(snapshot) => entity.restore(entity_id, snapshot).map_err(|e| {
                format!(
                    "No snapshot handler found for snapshot [{}]: {e}",
                    snapshot.type_url
                )
            })?,
        };
        Ok(Self {
            entity,
            entity_id: entity_id.to_owned(),
            state,
        })
    }
}

impl<E: EventSourcedEntity> Instance for Live<E> {
    fn apply(&mut self, event: Any) -> Result<(), String> {
        let type_url = event.type_url.clone();
        let event = E::Event::from_any(event)
            .map_err(|e| format!("No event handler found for event [{type_url}]: {e}"))?;
        self.entity
            .apply_event(&mut self.state, &event)
            .map_err(|e| format!("No event handler found for event [{type_url}]: {e}"))
    }

    fn command(&mut self, command: &Command<'_>, sequence: i64, snapshot_every: i64) -> Outcome {
        let entity = &*self.entity;
        let mut ctx = CommandContext {
            entity,
            state: &mut self.state,
            entity_id: &self.entity_id,
            sequence,
            snapshot_every,
            snapshot_due: false,
            events: Vec::new(),
            side_effects: Vec::new(),
            emit_error: None,
        };
        let result = entity.handle_command(command, &mut ctx);
        let CommandContext {
            events,
            side_effects,
            snapshot_due,
            emit_error,
            ..
        } = ctx;
        if let Some(error) = emit_error {
            return Outcome::Failed {
                description: format!(
                    "Unexpected failure: emitted event could not be applied: {error}"
                ),
                events_emitted: events.len() + 1,
            };
        }
        match result {
            Ok(reply) => {
                let snapshot = if snapshot_due {
                    entity.snapshot(&self.state)
                } else {
                    None
                };
                Outcome::Success {
                    reply,
                    events,
                    side_effects,
                    snapshot,
                }
            }
            Err(failure) => Outcome::Failed {
                description: failure.description().to_owned(),
                events_emitted: events.len(),
            },
        }
    }
}

/// The `cloudstate.eventsourced.EventSourced` gRPC service.
/// The `handle` service of this entity kind.
pub(crate) type EventSourcedService = EntityService<EventSourcedProtocol>;

#[tonic::async_trait]
impl EventSourced for EventSourcedService {
    type handleStream = Replies<es::EventSourcedStreamOut>;

    async fn handle(
        &self,
        request: Request<Streaming<es::EventSourcedStreamIn>>,
    ) -> Result<Response<Self::handleStream>, Status> {
        Ok(EntityService::handle(self, request))
    }
}

impl EventSourcedProtocol {
    pub(crate) fn new(entities: HashMap<String, Arc<Registration>>) -> Self {
        Self { entities }
    }
}

pub(crate) struct EventSourcedProtocol {
    entities: HashMap<String, Arc<Registration>>,
}

impl Protocol for EventSourcedProtocol {
    type In = es::EventSourcedStreamIn;
    type Out = es::EventSourcedStreamOut;
    type Message = In;
    type Entity = Entity<dyn Instance>;

    fn message(input: Self::In) -> Option<In> {
        input.message
    }

    fn start(&self, first: In) -> Result<(Self::Entity, tracing::Span), Stop> {
        let In::Init(init) = first else {
            return Err(Stop::Failure(
                0,
                format!(
                    "Protocol error: Expected Init message, but received {}",
                    describe(&first)
                ),
            ));
        };
        let Some(registration) = self.entities.get(&init.service_name).map(Arc::clone) else {
            return Err(Stop::Failure(
                0,
                format!(
                    "Protocol error: Service not found: [{}] (entity [{}])",
                    init.service_name, init.entity_id
                ),
            ));
        };
        let span = info_span!("entity", service = %init.service_name, entity_id = %init.entity_id);
        let entity = Entity::init(registration, init)?;
        debug!(parent: &span, sequence = entity.sequence, "entity started");
        Ok((entity, span))
    }

    fn handle(entity: &mut Self::Entity, message: In) -> Result<Option<Self::Out>, Stop> {
        match message {
            In::Init(_) => Err(Stop::Failure(
                0,
                format!(
                    "Protocol error: Entity already inited: entity [{}] of service [{}]",
                    entity.entity_id, entity.registration.service_name
                ),
            )),
            In::Event(event) => entity.replay(event).map(|()| None),
            In::Command(command) => entity.command(command).map(|reply| {
                Some(es::EventSourcedStreamOut {
                    message: Some(Out::Reply(reply)),
                })
            }),
        }
    }

    fn stop(entity: &Self::Entity, command_id: i64, description: &str) -> Stop {
        entity.stop(command_id, description)
    }

    fn failure(command_id: i64, description: String) -> Self::Out {
        es::EventSourcedStreamOut {
            message: Some(Out::Failure(pb::Failure {
                command_id,
                description,
                restart: false,
            })),
        }
    }
}

fn describe(message: &In) -> String {
    match message {
        In::Init(init) => format!("init for entity [{}]", init.entity_id),
        In::Event(event) => format!("event with sequence {}", event.sequence),
        In::Command(command) => format!("command [{}] (id {})", command.name, command.id),
    }
}

/// The protocol state of one stream: which entity, its sequence number, and
/// whether its state can still be trusted.
pub(crate) struct Entity<I: Instance + ?Sized> {
    registration: Arc<Registration>,
    entity_id: String,
    sequence: i64,
    pub(crate) instance: Box<I>,
    /// Set when the state was left half-changed (a failed command that had
    /// emitted events, a panic); the proxy restarts the entity from the
    /// journal, and until then every command is refused.
    poisoned: bool,
}

impl Entity<dyn Instance> {
    fn init(registration: Arc<Registration>, init: es::EventSourcedInit) -> Result<Self, Stop> {
        let (sequence, snapshot) = match init.snapshot {
            Some(es::EventSourcedSnapshot {
                snapshot_sequence,
                snapshot,
            }) => (snapshot_sequence, snapshot),
            None => (0, None),
        };
        let factory = &registration.factory;
        let created = catch_unwind(AssertUnwindSafe(|| {
            factory.create(&init.entity_id, snapshot.as_ref())
        }));
        let instance = match created {
            Ok(Ok(instance)) => instance,
            Ok(Err(description)) => {
                return Err(Stop::Failure(
                    0,
                    context(&description, &registration, &init.entity_id),
                ));
            }
            Err(panic) => {
                let description = format!("Unexpected failure: {}", panic_message(&*panic));
                return Err(Stop::Failure(
                    0,
                    context(&description, &registration, &init.entity_id),
                ));
            }
        };
        Ok(Self {
            registration,
            entity_id: init.entity_id,
            sequence,
            instance,
            poisoned: false,
        })
    }
}

#[cfg_attr(not(feature = "testkit"), allow(dead_code))]
impl<I: Instance + ?Sized> Entity<I> {
    /// An entity whose instance is already built (the in-memory test kit).
    pub(crate) fn with_instance(
        registration: Arc<Registration>,
        entity_id: String,
        sequence: i64,
        instance: Box<I>,
    ) -> Self {
        Self {
            registration,
            entity_id,
            sequence,
            instance,
            poisoned: false,
        }
    }

    pub(crate) fn sequence(&self) -> i64 {
        self.sequence
    }

    pub(crate) fn replay(&mut self, event: es::EventSourcedEvent) -> Result<(), Stop> {
        let Some(payload) = event.payload else {
            return Err(self.stop(
                0,
                &format!("Protocol error: event {} has no payload", event.sequence),
            ));
        };
        let instance = &mut self.instance;
        match catch_unwind(AssertUnwindSafe(|| instance.apply(payload))) {
            Ok(Ok(())) => {
                self.sequence = event.sequence;
                Ok(())
            }
            Ok(Err(description)) => Err(self.stop(0, &description)),
            Err(panic) => {
                let description = format!("Unexpected failure: {}", panic_message(&*panic));
                Err(self.stop(0, &description))
            }
        }
    }

    fn stop(&self, command_id: i64, description: &str) -> Stop {
        Stop::Failure(
            command_id,
            context(description, &self.registration, &self.entity_id),
        )
    }

    pub(crate) fn command(&mut self, command: pb::Command) -> Result<es::EventSourcedReply, Stop> {
        let id = command.id;
        let name = command.name.as_str();
        let _span = tracing::debug_span!("command", id, name).entered();
        let service = &self.registration.service_name;
        let checked = stream::check_command(
            &command,
            service,
            &self.entity_id,
            self.registration.service.as_ref(),
        );
        let (payload, method) = match checked {
            Ok(Ok(found)) => found,
            Ok(Err(unknown)) => {
                warn!("{unknown}");
                return Ok(failed(id, unknown, false));
            }
            Err((command_id, description)) => return Err(self.stop(command_id, &description)),
        };
        if self.poisoned {
            let description = format!(
                "Entity [{}] of service [{service}] is restarting after an earlier failure; \
                 command [{name}] was not handled",
                self.entity_id
            );
            warn!("{description}");
            return Ok(failed(id, description, true));
        }
        let view = Command {
            service_name: service,
            entity_id: &self.entity_id,
            id,
            name,
            input_type: method.map_or("", |m| m.input_type.as_str()),
            payload,
            metadata: command.metadata.as_ref(),
        };
        let instance = &mut self.instance;
        let (sequence, every) = (self.sequence, self.registration.snapshot_every);
        let outcome = match catch_unwind(AssertUnwindSafe(|| {
            instance.command(&view, sequence, every)
        })) {
            Ok(outcome) => outcome,
            Err(panic) => {
                let description = format!(
                    "Unexpected failure: command [{name}] of entity [{}] of service [{service}] panicked: {}",
                    self.entity_id,
                    panic_message(&*panic)
                );
                error!("{description}");
                self.poisoned = true;
                return Ok(failed(id, description, true));
            }
        };
        Ok(match outcome {
            Outcome::Success {
                reply,
                events,
                side_effects,
                snapshot,
            } => {
                if let (Reply::Message { payload, .. }, Some(method)) = (&reply, method)
                    && crate::payload::type_name(&payload.type_url) != method.output_type
                {
                    warn!(
                        "reply of command [{name}] has type URL [{}] but the method returns [{}]",
                        payload.type_url, method.output_type
                    );
                }
                self.sequence += events.len() as i64;
                es::EventSourcedReply {
                    command_id: id,
                    client_action: Some(reply.into_client_action()),
                    side_effects,
                    events,
                    snapshot,
                }
            }
            Outcome::Failed {
                description,
                events_emitted,
            } => {
                // Emitted events already changed the state: have the proxy
                // rebuild it from the journal.
                let restart = events_emitted > 0;
                self.poisoned |= restart;
                debug!(restart, "command failed: {description}");
                failed(id, description, restart)
            }
        })
    }
}

fn failed(command_id: i64, description: String, restart: bool) -> es::EventSourcedReply {
    es::EventSourcedReply {
        command_id,
        client_action: Some(failure_action(command_id, description, restart)),
        ..Default::default()
    }
}

fn context(description: &str, registration: &Registration, entity_id: &str) -> String {
    stream::context(description, &registration.service_name, entity_id)
}
