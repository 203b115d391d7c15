//! Unit-testing event-sourced entities in memory: no network, no proxy.
//! Commands go in through the typed call builders and run through the
//! registered entity as on a proxy stream (unknown commands, input types,
//! snapshot rule, failures, panics). The kit keeps a journal like the
//! proxy's, so a failure that asks for a restart rebuilds the entity from it.

use std::marker::PhantomData;
use std::sync::Arc;

use super::describe;
use super::outcome::{EventSourcedExtra, EventSourcedOutcome};
use crate::effect::{ServiceCall, TypedCall};
use crate::eventsourced::runtime::{Entity, Instance, Live, Registration};
use crate::eventsourced::{EventCodec, EventSourcedEntity, EventSourcedOptions, Typed};
use crate::payload::{self, Any, Payload};
use crate::protocol::cloudstate::client_action::Action;
use crate::protocol::cloudstate::eventsourced::{
    EventSourcedEvent, EventSourcedInit, EventSourcedReply, EventSourcedSnapshot,
};
use crate::{CloudState, Service};

/// Runs commands against one event-sourced entity instance.
///
/// Commands take the generated call builders, so a misspelt method is a
/// compile error; replies come back as the method's output type and events
/// as the entity's `Event` enum. [`new`](Self::new) takes a generated
/// `Entity`; [`without_descriptors`](Self::without_descriptors) a
/// hand-written entity.
pub struct EventSourcedTestKit<E: EventSourcedEntity> {
    registration: Arc<Registration>,
    entity_id: String,
    instance: Entity<dyn Instance>,
    next_command_id: i64,
    /// Every event persisted, as the proxy's journal holds them.
    journal: Vec<Any>,
    /// The last snapshot and the sequence number it was taken at.
    snapshot: Option<(i64, Any)>,
    _entity: PhantomData<fn() -> E>,
}

impl<E: EventSourcedEntity + Service<Options = EventSourcedOptions>> EventSourcedTestKit<E> {
    /// A new instance of a generated entity with no history: checked and
    /// created as for serving (descriptors, unknown commands, input types),
    /// snapshotting every
    /// [`DEFAULT_SNAPSHOT_EVERY`](EventSourcedOptions::DEFAULT_SNAPSHOT_EVERY)
    /// events.
    ///
    /// # Panics
    /// When the registration is invalid or the initial state panics.
    #[track_caller]
    pub fn new(entity: E, entity_id: &str) -> Self {
        Self::registered(entity, entity_id, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// An instance rebuilt from `snapshot`, taken at `sequence`, as the
    /// proxy starts one after a passivation.
    ///
    /// # Errors
    /// When the entity cannot restore the snapshot (the text says why).
    ///
    /// # Panics
    /// When the registration is invalid.
    #[track_caller]
    pub fn from_snapshot(
        entity: E,
        entity_id: &str,
        sequence: i64,
        snapshot: impl Payload,
    ) -> Result<Self, String> {
        Self::registered(entity, entity_id, Some((sequence, snapshot.to_any())))
    }

    #[track_caller]
    fn registered(
        entity: E,
        entity_id: &str,
        snapshot: Option<(i64, Any)>,
    ) -> Result<Self, String> {
        let registration = entity
            .register(CloudState::new(), EventSourcedOptions::new("test-kit"))
            .event_sourced_registration()
            .unwrap_or_else(|e| panic!("{e}"));
        Self::start(registration, entity_id, snapshot)
    }
}

impl<E: EventSourcedEntity> EventSourcedTestKit<E> {
    /// A new instance of a hand-written entity serving `service_name`, with
    /// no descriptors: every command reaches its `handle_command`.
    ///
    /// ```
    /// use cloudstate_sdk::testkit::EventSourcedTestKit;
    /// use cloudstate_sdk::{Any, Command, CommandContext, CommandResult, EventSourcedEntity};
    /// use cloudstate_sdk::{PayloadError, Reply, ServiceCall, TypedCall, payload};
    ///
    /// /// Counts the commands it gets, one event each.
    /// struct Counter;
    /// impl EventSourcedEntity for Counter {
    ///     type State = i64;
    ///     type Event = Any;
    ///     fn initial_state(&self, _: &str) -> i64 { 0 }
    ///     fn apply_event(&self, n: &mut i64, _: &Any) -> Result<(), PayloadError> { *n += 1; Ok(()) }
    ///     fn handle_command(&self, _: &Command<'_>, ctx: &mut CommandContext<'_, Self>) -> CommandResult {
    ///         ctx.emit(payload::empty());
    ///         Ok(Reply::empty())
    ///     }
    /// }
    /// let mut kit = EventSourcedTestKit::without_descriptors("example.Counter", Counter, "c-1");
    /// let increment = TypedCall::<()>::new(ServiceCall::new("example.Counter", "Increment", payload::empty()));
    /// let outcome = kit.call(increment);
    /// outcome.reply();
    /// assert_eq!(outcome.events(), [payload::empty()]);
    /// assert_eq!(*kit.state(), 1);
    /// ```
    ///
    /// # Panics
    /// When the initial state panics.
    #[track_caller]
    pub fn without_descriptors(service_name: &str, entity: E, entity_id: &str) -> Self {
        let registration = Arc::new(Registration {
            kind: &crate::entity::EVENT_SOURCED,
            service_name: service_name.to_owned(),
            service: None,
            settings: EventSourcedOptions::DEFAULT_SNAPSHOT_EVERY,
            factory: Arc::new(Typed(Arc::new(entity))),
            max_reply: crate::server::DEFAULT_MAX_REPLY_SIZE,
        });
        Self::start(registration, entity_id, None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn start(
        registration: Arc<Registration>,
        entity_id: &str,
        snapshot: Option<(i64, Any)>,
    ) -> Result<Self, String> {
        let instance = init(&registration, entity_id, snapshot.as_ref())?;
        Ok(Self {
            registration,
            entity_id: entity_id.to_owned(),
            instance,
            next_command_id: 1,
            journal: Vec::new(),
            snapshot,
            _entity: PhantomData,
        })
    }

    /// Sets the snapshot interval, as
    /// [`EventSourcedOptions::snapshot_every`] does.
    ///
    /// # Panics
    /// When the entity cannot be rebuilt from its history.
    #[must_use]
    #[track_caller]
    pub fn snapshot_every(mut self, n: i64) -> Self {
        let r = &self.registration;
        self.registration = Arc::new(Registration {
            kind: r.kind,
            service_name: r.service_name.clone(),
            service: r.service.clone(),
            settings: n,
            factory: Arc::clone(&r.factory),
            max_reply: r.max_reply,
        });
        self.rebuild();
        self
    }

    /// Rebuilds the instance from the snapshot and the journal, as the proxy
    /// does after a restart.
    #[track_caller]
    fn rebuild(&mut self) {
        self.instance = init(&self.registration, &self.entity_id, self.snapshot.as_ref())
            .unwrap_or_else(|e| panic!("rebuilding from the journal: {e}"));
        let journal = std::mem::take(&mut self.journal);
        for event in journal {
            self.replay_any(event)
                .unwrap_or_else(|e| panic!("rebuilding from the journal: {e}"));
        }
    }

    /// Replays journal events, as the proxy does after init.
    ///
    /// # Errors
    /// When the entity cannot apply an event (the text names it).
    pub fn replay<I>(&mut self, events: I) -> Result<(), String>
    where
        I: IntoIterator,
        I::Item: Into<E::Event>,
    {
        for event in events {
            self.replay_any(event.into().into_any())?;
        }
        Ok(())
    }

    fn replay_any(&mut self, payload: Any) -> Result<(), String> {
        let event = EventSourcedEvent {
            sequence: self.instance.sequence() + 1,
            payload: Some(payload.clone()),
        };
        self.instance
            .replay(event)
            .map_err(|stop| describe(&stop))?;
        self.journal.push(payload);
        Ok(())
    }

    /// Runs a command.
    ///
    /// A successful command's events and snapshot go to the kit's journal; a
    /// failure that asks for a restart rebuilds the entity from it.
    ///
    /// # Panics
    /// When the call is for another service, or an emitted event does not
    /// decode as the entity's event type.
    #[track_caller]
    pub fn call<R: Payload>(&mut self, call: TypedCall<R>) -> EventSourcedOutcome<R, E::Event> {
        let reply = self.run(call.into_call());
        let events = reply
            .events
            .iter()
            .map(|e| {
                E::Event::from_any(e.clone())
                    .unwrap_or_else(|err| panic!("an emitted event: {err}"))
            })
            .collect();
        let action = reply.client_action.as_ref().and_then(|a| a.action.as_ref());
        EventSourcedOutcome::new(
            action,
            &reply.side_effects,
            EventSourcedExtra {
                events,
                reply: reply.clone(),
            },
        )
    }

    /// Runs the command `name` with a protobuf request, for tests written
    /// before the call builders; prefer [`call`](Self::call).
    #[track_caller]
    pub fn command<M: prost::Name>(&mut self, name: &str, request: &M) -> CommandOutcome<E::Event> {
        let call = ServiceCall::message(self.registration.service_name.clone(), name, request);
        CommandOutcome {
            reply: self.run(call),
            _events: PhantomData,
        }
    }

    #[track_caller]
    fn run(&mut self, call: ServiceCall) -> EventSourcedReply {
        assert_eq!(
            call.service_name(),
            self.registration.service_name,
            "the call is for another service"
        );
        let id = self.next_command_id;
        self.next_command_id += 1;
        let command = super::message::command(
            id,
            &self.entity_id,
            call.command_name(),
            Some(call.payload().clone()),
            false,
            call.metadata().cloned(),
        );
        let reply = self
            .instance
            .command(command)
            .unwrap_or_else(|stop| panic!("the command ended the stream: {}", describe(&stop)));
        match reply.client_action.as_ref().and_then(|a| a.action.as_ref()) {
            Some(Action::Failure(failure)) => {
                if failure.restart {
                    self.rebuild();
                }
            }
            _ => {
                self.journal.extend(reply.events.iter().cloned());
                if let Some(snapshot) = &reply.snapshot {
                    self.snapshot = Some((self.instance.sequence(), snapshot.clone()));
                }
            }
        }
        reply
    }

    /// The current state.
    pub fn state(&self) -> &E::State {
        &self
            .instance
            .instance
            .as_any()
            .downcast_ref::<Live<E>>()
            .expect("the kit's instance is a Live<E>")
            .state
    }

    /// The sequence number of the last event.
    pub fn sequence_number(&self) -> i64 {
        self.instance.sequence()
    }

    /// Every event persisted so far, in order (replayed ones included).
    ///
    /// # Panics
    /// When an event does not decode (the entity emitted or applied it, so
    /// it should).
    pub fn journal(&self) -> Vec<E::Event> {
        self.journal
            .iter()
            .map(|e| E::Event::from_any(e.clone()).unwrap_or_else(|err| panic!("{err}")))
            .collect()
    }
}

/// A new instance as the proxy's `init` creates it.
fn init(
    registration: &Arc<Registration>,
    entity_id: &str,
    snapshot: Option<&(i64, Any)>,
) -> Result<Entity<dyn Instance>, String> {
    let init = EventSourcedInit {
        service_name: registration.service_name.clone(),
        entity_id: entity_id.to_owned(),
        snapshot: snapshot.map(|(sequence, snapshot)| EventSourcedSnapshot {
            snapshot_sequence: *sequence,
            snapshot: Some(snapshot.clone()),
        }),
    };
    Entity::init(Arc::clone(registration), init).map_err(|stop| describe(&stop))
}

/// What a command run by name produced ([`EventSourcedTestKit::command`]);
/// [`EventSourcedOutcome`] is its typed form.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome<Ev> {
    reply: EventSourcedReply,
    _events: PhantomData<fn() -> Ev>,
}

impl<Ev: EventCodec> CommandOutcome<Ev> {
    /// The reply message, decoded.
    ///
    /// # Panics
    /// When the command failed or forwarded, or the payload is not an `M`.
    #[track_caller]
    pub fn reply<M: prost::Name + Default>(&self) -> M {
        match self.reply_payload() {
            Some(payload) => payload::decode(payload).unwrap_or_else(|e| panic!("{e}")),
            None => panic!("expected a reply, got {:?}", self.reply.client_action),
        }
    }

    /// The reply payload as sent, if the command replied.
    pub fn reply_payload(&self) -> Option<&Any> {
        match self.reply.client_action.as_ref()?.action.as_ref()? {
            Action::Reply(reply) => reply.payload.as_ref(),
            _ => None,
        }
    }

    /// The emitted events, decoded.
    ///
    /// # Panics
    /// When an event does not decode (it was emitted by this entity, so it should).
    pub fn events(&self) -> Vec<Ev> {
        self.reply
            .events
            .iter()
            .map(|e| Ev::from_any(e.clone()).unwrap_or_else(|err| panic!("{err}")))
            .collect()
    }

    /// The snapshot, if this reply carries one.
    pub fn snapshot(&self) -> Option<&Any> {
        self.reply.snapshot.as_ref()
    }
}
