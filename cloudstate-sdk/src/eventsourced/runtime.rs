//! The event-sourced protocol: one task per entity stream that owns the
//! entity's state and answers its messages in order.

use std::sync::Arc;

use prost::Message as _;
use tracing::{debug, error, info_span, warn};

use super::{Command, CommandContext, EventCodec, EventSourcedEntity};
use crate::effect::{Reply, failure_action};
use crate::entity::{self, Prepared, Registry};
use crate::payload::Any;
use crate::protocol::cloudstate as pb;
use crate::protocol::cloudstate::eventsourced::{
    self as es, event_sourced_server::EventSourced, event_sourced_stream_in::Message as In,
    event_sourced_stream_out::Message as Out,
};
use crate::stream::{EntityService, Outputs, Protocol, Stop};

/// A registered event-sourced entity type; its setting is the snapshot interval.
pub(crate) type Registration = entity::Registration<dyn Factory, i64>;

/// Creates entity instances; erases the entity's types so one gRPC service
/// can host every registered entity type.
pub(crate) trait Factory: Send + Sync {
    fn create(&self, entity_id: &str, snapshot: Option<&Any>) -> Result<Box<dyn Instance>, String>;
}

/// One live entity: its state behind the entity's handlers.
pub(crate) trait Instance: Send {
    fn apply(&mut self, event: Any) -> Result<(), String>;
    fn command(&mut self, command: &Command<'_>, sequence: i64, snapshot_every: i64) -> Outcome;
    /// The instance, for the test kit to read its typed state.
    #[cfg_attr(not(feature = "testkit"), allow(dead_code))]
    fn as_any(&self) -> &dyn std::any::Any;
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
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

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
            metadata: command.metadata().unwrap_or(&crate::metadata::EMPTY),
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

crate::stream::entity_service!(
    EventSourcedService,
    EventSourced,
    es::EventSourcedStreamIn,
    es::EventSourcedStreamOut
);

impl EventSourcedProtocol {
    pub(crate) fn new(entities: Registry<dyn Factory, i64>) -> Self {
        Self { entities }
    }
}

pub(crate) struct EventSourcedProtocol {
    entities: Registry<dyn Factory, i64>,
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
        let registration = entity::lookup(&self.entities, &init.service_name, &init.entity_id)?;
        let span = info_span!("entity", service = %init.service_name, entity_id = %init.entity_id);
        let entity = Entity::init(registration, init)?;
        debug!(parent: &span, sequence = entity.sequence, "entity started");
        Ok((entity, span))
    }

    fn handle(
        entity: &mut Self::Entity,
        message: In,
        out: &mut Outputs<Self::Out>,
    ) -> Result<(), Stop> {
        match message {
            In::Init(_) => Err(Stop::Failure(
                0,
                format!(
                    "Protocol error: Entity already inited: entity [{}] of service [{}]",
                    entity.entity_id, entity.registration.service_name
                ),
            )),
            In::Event(event) => entity.replay(event),
            In::Command(command) => {
                let reply = entity.command(command)?;
                out.push_back(es::EventSourcedStreamOut {
                    message: Some(Out::Reply(reply)),
                });
                Ok(())
            }
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
    pub(crate) fn init(
        registration: Arc<Registration>,
        init: es::EventSourcedInit,
    ) -> Result<Self, Stop> {
        let (sequence, snapshot) = match init.snapshot {
            Some(es::EventSourcedSnapshot {
                snapshot_sequence,
                snapshot,
            }) => (snapshot_sequence, snapshot),
            None => (0, None),
        };
        let instance = registration.create(&init.entity_id, |factory| {
            factory.create(&init.entity_id, snapshot.as_ref())
        })?;
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
        match entity::guarded(|| instance.apply(payload)) {
            Ok(Ok(())) => {
                self.sequence = event.sequence;
                Ok(())
            }
            Ok(Err(description)) => Err(self.stop(0, &description)),
            Err(panic) => Err(self.stop(0, &format!("Unexpected failure: {panic}"))),
        }
    }

    fn stop(&self, command_id: i64, description: &str) -> Stop {
        self.registration
            .stop(&self.entity_id, command_id, description)
    }

    pub(crate) fn command(&mut self, command: pb::Command) -> Result<es::EventSourcedReply, Stop> {
        let id = command.id;
        let name = command.name.as_str();
        let _span = tracing::debug_span!("command", id, name).entered();
        let registration = &self.registration;
        let view = match registration.prepare(&self.entity_id, &command)? {
            Prepared::Run(view) => view,
            Prepared::Unknown(unknown) => {
                registration.log_failure(&self.entity_id, name, &unknown);
                return Ok(failed(id, unknown, false));
            }
        };
        if self.poisoned {
            let description = format!(
                "Entity [{}] of service [{}] is restarting after an earlier failure; \
                 command [{name}] was not handled",
                self.entity_id, registration.service_name
            );
            registration.log_failure(&self.entity_id, name, &description);
            return Ok(failed(id, description, true));
        }
        let instance = &mut self.instance;
        let (sequence, every) = (self.sequence, registration.settings);
        let outcome = match entity::guarded(|| instance.command(&view, sequence, every)) {
            Ok(outcome) => outcome,
            Err(panic) => {
                let description = registration.panicked(&self.entity_id, name, &panic);
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
                view.check_reply(&reply);
                let mut reply = es::EventSourcedReply {
                    command_id: id,
                    client_action: Some(reply.into_client_action()),
                    side_effects,
                    events,
                    snapshot,
                };
                if let Err(description) = self.fit(&mut reply, name) {
                    // Emitted events already changed the state.
                    let restart = !reply.events.is_empty();
                    self.poisoned |= restart;
                    registration.log_failure(&self.entity_id, name, &description);
                    return Ok(failed(id, description, restart));
                }
                self.sequence += reply.events.len() as i64;
                reply
            }
            Outcome::Failed {
                description,
                events_emitted,
            } => {
                // Emitted events already changed the state: have the proxy
                // rebuild it from the journal.
                let restart = events_emitted > 0;
                self.poisoned |= restart;
                registration.log_failure(&self.entity_id, name, &description);
                failed(id, description, restart)
            }
        })
    }
}

impl<I: Instance + ?Sized> Entity<I> {
    /// Makes `reply` fit the proxy's message limit: a snapshot too large to
    /// send is left out (the journal still has every event, so nothing is
    /// lost and the entity goes on); anything else too large is an error.
    fn fit(&self, reply: &mut es::EventSourcedReply, name: &str) -> Result<(), String> {
        let limit = self.registration.max_reply;
        let mut size = entity::framed_len(reply.encoded_len());
        if size <= limit {
            return Ok(());
        }
        if let Some(snapshot) = reply.snapshot.take() {
            size = entity::framed_len(reply.encoded_len());
            warn!(
                entity_id = %self.entity_id,
                service = %self.registration.service_name,
                "the snapshot after command [{name}] is {} bytes, too large for the proxy's \
                 {limit}-byte message limit: not sent, so a restart replays from the previous one",
                snapshot.encoded_len()
            );
            if size <= limit {
                return Ok(());
            }
        }
        let reply_len = reply
            .client_action
            .as_ref()
            .map_or(0, prost::Message::encoded_len);
        let parts = format!(
            "reply {reply_len} bytes, {}, {}",
            entity::part("events", &reply.events),
            entity::part("side effects", &reply.side_effects)
        );
        Err(entity::oversized(name, size, limit, &parts))
    }
}

fn failed(command_id: i64, description: String, restart: bool) -> es::EventSourcedReply {
    es::EventSourcedReply {
        command_id,
        client_action: Some(failure_action(command_id, description, restart)),
        ..Default::default()
    }
}
