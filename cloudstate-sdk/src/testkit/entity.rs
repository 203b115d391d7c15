//! Unit-testing entities in memory: no network, no proxy. Commands run
//! through the same protocol logic as on a real stream (snapshot rule,
//! failures, panics), and the kit keeps a journal like the proxy's, so a
//! failure that asks for a restart rebuilds the entity from it.

use std::sync::Arc;

use crate::eventsourced::runtime::{Entity, Live, Registration};
use crate::eventsourced::{EventCodec, EventSourcedEntity, EventSourcedOptions};
use crate::payload::{self, Any};
use crate::protocol::cloudstate::eventsourced::{EventSourcedEvent, EventSourcedReply};
use crate::protocol::cloudstate::valueentity::ValueEntityReply;
use crate::protocol::cloudstate::{self as pb, client_action::Action};
use crate::stream::Stop;
use crate::valueentity::ValueEntity;

/// Runs commands against one event-sourced entity instance.
///
/// ```
/// # use cloudstate_sdk::{Any, Command, CommandContext, CommandResult, EventSourcedEntity, PayloadError, Reply};
/// # use cloudstate_sdk::testkit::EventSourcedTestKit;
/// /// Counts the commands it gets, one event each.
/// struct Counter;
/// impl EventSourcedEntity for Counter {
///     type State = i64;
///     type Event = Any;
///     fn initial_state(&self, _: &str) -> i64 { 0 }
///     fn apply_event(&self, n: &mut i64, _: &Any) -> Result<(), PayloadError> { *n += 1; Ok(()) }
///     fn handle_command(&self, _: &Command<'_>, ctx: &mut CommandContext<'_, Self>) -> CommandResult {
///         ctx.emit(cloudstate_sdk::payload::empty());
///         Ok(Reply::empty())
///     }
/// }
/// let mut kit = EventSourcedTestKit::new(Counter, "c-1");
/// let outcome = kit.command_any("Increment", cloudstate_sdk::payload::empty());
/// assert_eq!(outcome.raw_events().len(), 1);
/// assert_eq!(*kit.state(), 1);
/// ```
pub struct EventSourcedTestKit<E: EventSourcedEntity> {
    entity: Arc<E>,
    entity_id: String,
    registration: Arc<Registration>,
    instance: Entity<Live<E>>,
    next_command_id: i64,
    journal: Vec<Any>,
    snapshot: Option<(i64, Any)>,
}

impl<E: EventSourcedEntity> EventSourcedTestKit<E> {
    /// A new entity with no history, snapshotting every
    /// [`DEFAULT_SNAPSHOT_EVERY`](EventSourcedOptions::DEFAULT_SNAPSHOT_EVERY) events.
    ///
    /// # Panics
    /// When the entity's initial state panics.
    pub fn new(entity: E, entity_id: &str) -> Self {
        Self::build(
            Arc::new(entity),
            entity_id,
            EventSourcedOptions::DEFAULT_SNAPSHOT_EVERY,
            None,
            Vec::new(),
        )
        .expect("a new entity needs no snapshot")
    }

    /// An entity rebuilt from a snapshot taken at `sequence`.
    ///
    /// # Errors
    /// When the entity cannot restore the snapshot.
    pub fn from_snapshot(
        entity: E,
        entity_id: &str,
        sequence: i64,
        snapshot: Any,
    ) -> Result<Self, String> {
        Self::build(
            Arc::new(entity),
            entity_id,
            EventSourcedOptions::DEFAULT_SNAPSHOT_EVERY,
            Some((sequence, snapshot)),
            Vec::new(),
        )
    }

    /// Sets the snapshot interval, as `EventSourcedOptions::snapshot_every`.
    #[must_use]
    pub fn snapshot_every(mut self, n: i64) -> Self {
        self.registration = registration(n);
        self.rebuild().expect("rebuilding from the same history");
        self
    }

    fn build(
        entity: Arc<E>,
        entity_id: &str,
        snapshot_every: i64,
        snapshot: Option<(i64, Any)>,
        journal: Vec<Any>,
    ) -> Result<Self, String> {
        let registration = registration(snapshot_every);
        let live = Live::new(
            Arc::clone(&entity),
            entity_id,
            snapshot.as_ref().map(|(_, s)| s),
        )?;
        let sequence = snapshot.as_ref().map_or(0, |(s, _)| *s);
        let instance = Entity::with_instance(
            Arc::clone(&registration),
            entity_id.to_owned(),
            sequence,
            Box::new(live),
        );
        let mut kit = Self {
            entity,
            entity_id: entity_id.to_owned(),
            registration,
            instance,
            next_command_id: 1,
            journal: Vec::new(),
            snapshot,
        };
        for event in journal {
            kit.replay_any(event)?;
        }
        Ok(kit)
    }

    /// Rebuilds the instance from the snapshot and journal, as the proxy does
    /// after a restart.
    fn rebuild(&mut self) -> Result<(), String> {
        let journal = std::mem::take(&mut self.journal);
        let rebuilt = Self::build(
            Arc::clone(&self.entity),
            &self.entity_id,
            self.registration.settings,
            self.snapshot.clone(),
            journal,
        )?;
        self.instance = rebuilt.instance;
        self.journal = rebuilt.journal;
        Ok(())
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
        let sequence = self.instance.sequence() + 1;
        let event = EventSourcedEvent {
            sequence,
            payload: Some(payload.clone()),
        };
        match self.instance.replay(event) {
            Ok(()) => {
                self.journal.push(payload);
                Ok(())
            }
            Err(Stop::Failure(_, description)) => Err(description),
            Err(Stop::Done) => Err("the entity stopped".to_owned()),
        }
    }

    /// Runs the command `name` with a protobuf request.
    pub fn command<M: prost::Name>(&mut self, name: &str, request: &M) -> CommandOutcome<E::Event> {
        self.command_any(name, payload::encode(request))
    }

    /// Runs the command `name` with any payload.
    ///
    /// A successful command's events and snapshot go to the kit's journal; a
    /// failure that asks for a restart rebuilds the entity from the journal.
    pub fn command_any(&mut self, name: &str, payload: Any) -> CommandOutcome<E::Event> {
        let id = self.next_command_id;
        self.next_command_id += 1;
        let command = pb::Command {
            entity_id: self.entity_id.clone(),
            id,
            name: name.to_owned(),
            payload: Some(payload),
            streamed: false,
            metadata: None,
        };
        let reply = match self.instance.command(command) {
            Ok(reply) => reply,
            Err(Stop::Failure(command_id, description)) => EventSourcedReply {
                command_id,
                client_action: Some(crate::effect::failure_action(command_id, description, true)),
                ..Default::default()
            },
            Err(Stop::Done) => EventSourcedReply::default(),
        };
        let outcome = CommandOutcome {
            reply,
            _events: std::marker::PhantomData,
        };
        if let Some(failure) = outcome.failure() {
            if failure.restart {
                self.rebuild().expect("rebuilding from the journal");
            }
        } else {
            self.journal.extend(outcome.reply.events.iter().cloned());
            if let Some(snapshot) = &outcome.reply.snapshot {
                self.snapshot = Some((self.instance.sequence(), snapshot.clone()));
            }
        }
        outcome
    }

    /// The current state.
    pub fn state(&self) -> &E::State {
        &self.instance.instance.state
    }

    /// The sequence number of the last event.
    pub fn sequence_number(&self) -> i64 {
        self.instance.sequence()
    }

    /// Every event persisted so far, in order (replayed ones included).
    pub fn journal(&self) -> &[Any] {
        &self.journal
    }
}

fn registration(snapshot_every: i64) -> Arc<Registration> {
    Arc::new(Registration {
        kind: &crate::entity::EVENT_SOURCED,
        service_name: "(test kit)".to_owned(),
        settings: snapshot_every,
        service: None,
        factory: Arc::new(NoFactory),
    })
}

/// The kit builds instances itself.
struct NoFactory;

impl crate::eventsourced::runtime::Factory for NoFactory {
    fn create(
        &self,
        _entity_id: &str,
        _snapshot: Option<&Any>,
    ) -> Result<Box<dyn crate::eventsourced::runtime::Instance>, String> {
        Err("the test kit creates its instances".to_owned())
    }
}

/// What one command produced: exactly what would go to the proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome<Ev> {
    reply: EventSourcedReply,
    _events: std::marker::PhantomData<fn() -> Ev>,
}

impl<Ev: EventCodec> CommandOutcome<Ev> {
    /// The reply message, decoded.
    ///
    /// # Panics
    /// When the command failed or forwarded, or the payload is not an `M`.
    #[track_caller]
    pub fn reply<M: prost::Name + Default>(&self) -> M {
        match self.action() {
            Some(Action::Reply(reply)) => {
                let payload = reply
                    .payload
                    .as_ref()
                    .expect("a reply always carries a payload");
                payload::decode(payload).unwrap_or_else(|e| panic!("{e}"))
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// The reply payload as sent, if the command replied.
    pub fn reply_payload(&self) -> Option<&Any> {
        match self.action() {
            Some(Action::Reply(reply)) => reply.payload.as_ref(),
            _ => None,
        }
    }

    /// The forward, if the command forwarded.
    pub fn forward(&self) -> Option<&pb::Forward> {
        match self.action() {
            Some(Action::Forward(forward)) => Some(forward),
            _ => None,
        }
    }

    /// The failure, if the command failed.
    pub fn failure(&self) -> Option<&pb::Failure> {
        match self.action() {
            Some(Action::Failure(failure)) => Some(failure),
            _ => None,
        }
    }

    /// The failure's description, if the command failed.
    pub fn failure_description(&self) -> Option<&str> {
        self.failure().map(|f| f.description.as_str())
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

    /// The emitted events as sent.
    pub fn raw_events(&self) -> &[Any] {
        &self.reply.events
    }

    /// The snapshot, if this reply carries one.
    pub fn snapshot(&self) -> Option<&Any> {
        self.reply.snapshot.as_ref()
    }

    /// The side effects, in order.
    pub fn side_effects(&self) -> &[pb::SideEffect] {
        &self.reply.side_effects
    }

    /// The whole protocol reply.
    pub fn wire(&self) -> &EventSourcedReply {
        &self.reply
    }

    fn action(&self) -> Option<&Action> {
        self.reply
            .client_action
            .as_ref()
            .and_then(|a| a.action.as_ref())
    }
}

/// Runs commands against one value-entity instance in memory, through the
/// same protocol logic as a real stream; keeps the state the proxy would store.
pub struct ValueEntityTestKit<E: ValueEntity> {
    instance: crate::valueentity::runtime::Entity<crate::valueentity::runtime::Live<E>>,
    next_command_id: i64,
}

impl<E: ValueEntity> ValueEntityTestKit<E> {
    /// A new entity with no stored state.
    pub fn new(entity: E, entity_id: &str) -> Self {
        Self::build(entity, entity_id, None)
    }

    /// An entity whose stored state is `state`.
    pub fn with_state(entity: E, entity_id: &str, state: E::State) -> Self {
        Self::build(entity, entity_id, Some(state))
    }

    fn build(entity: E, entity_id: &str, state: Option<E::State>) -> Self {
        use crate::valueentity::runtime::{
            Entity as VeEntity, Live as VeLive, Registration as VeRegistration,
        };
        let registration = Arc::new(VeRegistration {
            kind: &crate::entity::VALUE_ENTITY,
            service_name: "(test kit)".to_owned(),
            settings: (),
            service: None,
            factory: Arc::new(NoFactory),
        });
        let live = VeLive {
            entity: Arc::new(entity),
            entity_id: entity_id.to_owned(),
            state,
        };
        Self {
            instance: VeEntity {
                registration,
                entity_id: entity_id.to_owned(),
                instance: Box::new(live),
            },
            next_command_id: 1,
        }
    }

    /// Runs the command `name` with a protobuf request.
    pub fn command<M: prost::Name>(&mut self, name: &str, request: &M) -> ValueOutcome {
        self.command_any(name, payload::encode(request))
    }

    /// Runs the command `name` with any payload.
    pub fn command_any(&mut self, name: &str, payload: Any) -> ValueOutcome {
        let id = self.next_command_id;
        self.next_command_id += 1;
        let command = pb::Command {
            entity_id: self.instance.entity_id.clone(),
            id,
            name: name.to_owned(),
            payload: Some(payload),
            streamed: false,
            metadata: None,
        };
        let reply = match self.instance.command(command) {
            Ok(reply) => reply,
            Err(Stop::Failure(command_id, description)) => ValueEntityReply {
                command_id,
                client_action: Some(crate::effect::failure_action(
                    command_id,
                    description,
                    false,
                )),
                ..Default::default()
            },
            Err(Stop::Done) => ValueEntityReply::default(),
        };
        ValueOutcome { reply }
    }

    /// The current state, `None` when there is none.
    pub fn state(&self) -> Option<&E::State> {
        self.instance.instance.state.as_ref()
    }
}

impl crate::valueentity::runtime::Factory for NoFactory {
    fn create(
        &self,
        _entity_id: &str,
        _state: Option<&Any>,
    ) -> Result<Box<dyn crate::valueentity::runtime::Instance>, String> {
        Err("the test kit creates its instances".to_owned())
    }
}

/// What one value-entity command produced: exactly what would go to the proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueOutcome {
    reply: ValueEntityReply,
}

impl ValueOutcome {
    /// The reply message, decoded.
    ///
    /// # Panics
    /// When the command failed or forwarded, or the payload is not an `M`.
    #[track_caller]
    pub fn reply<M: prost::Name + Default>(&self) -> M {
        match self.action() {
            Some(Action::Reply(reply)) => {
                let payload = reply
                    .payload
                    .as_ref()
                    .expect("a reply always carries a payload");
                payload::decode(payload).unwrap_or_else(|e| panic!("{e}"))
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// The forward, if the command forwarded.
    pub fn forward(&self) -> Option<&pb::Forward> {
        match self.action() {
            Some(Action::Forward(forward)) => Some(forward),
            _ => None,
        }
    }

    /// The failure's description, if the command failed.
    pub fn failure_description(&self) -> Option<&str> {
        match self.action() {
            Some(Action::Failure(failure)) => Some(&failure.description),
            _ => None,
        }
    }

    /// The state written by this command: `Some(Some(state))` for an update,
    /// `Some(None)` for a delete, `None` when the state was left alone.
    ///
    /// # Panics
    /// When the stored value is not an `M`.
    pub fn state_change<M: prost::Name + Default>(&self) -> Option<Option<M>> {
        use crate::protocol::cloudstate::valueentity::value_entity_action::Action as StateAction;
        match self.reply.state_action.as_ref()?.action.as_ref()? {
            StateAction::Update(update) => Some(Some(
                payload::decode(update.value.as_ref().expect("an update carries a value"))
                    .unwrap_or_else(|e| panic!("{e}")),
            )),
            StateAction::Delete(_) => Some(None),
        }
    }

    /// The side effects, in order.
    pub fn side_effects(&self) -> &[pb::SideEffect] {
        &self.reply.side_effects
    }

    /// The whole protocol reply.
    pub fn wire(&self) -> &ValueEntityReply {
        &self.reply
    }

    fn action(&self) -> Option<&Action> {
        self.reply
            .client_action
            .as_ref()
            .and_then(|a| a.action.as_ref())
    }
}
