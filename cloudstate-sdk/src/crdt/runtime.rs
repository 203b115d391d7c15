//! The CRDT protocol on the shared stream driver: one stream per entity
//! instance, messages handled in arrival order, each answered with a reply
//! (or a cancellation response) followed by a streamed message for every
//! subscriber that has something to say about the change.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tracing::{debug, error, info_span};

use super::CrdtType;
use super::entity::{
    CancelContext, ChangeContext, CrdtContext, CrdtEntity, Mutation, OnCancel, OnChange,
};
use crate::effect::{Reply, failure_action};
use crate::entity::{self, Prepared, Registry};
use crate::protocol::cloudstate as pb;
use crate::protocol::cloudstate::crdt::{
    self as wire, crdt_server::Crdt as CrdtRpc, crdt_state_action::Action as StateAction,
    crdt_stream_in::Message as In, crdt_stream_out::Message as Out,
};
use crate::stream::{EntityService, Outputs, Protocol, Stop};

/// A registered CRDT entity type.
pub(crate) type Registration = entity::Registration<dyn Factory>;

/// Creates instances; erases the entity's types.
pub(crate) trait Factory: Send + Sync {
    fn create(
        &self,
        entity_id: &str,
        delta: Option<&wire::CrdtDelta>,
    ) -> Result<Box<dyn Instance>, String>;
}

/// One live CRDT entity: every message after `init` goes through it.
pub(crate) trait Instance: Send {
    fn handle(
        &mut self,
        registration: &Registration,
        message: In,
        out: &mut Outputs<wire::CrdtStreamOut>,
    ) -> Result<(), Stop>;
    /// The instance, for the test kit to read its typed state.
    #[cfg_attr(not(feature = "testkit"), allow(dead_code))]
    fn as_any(&self) -> &dyn std::any::Any;
}

pub(crate) struct Typed<E>(pub(crate) Arc<E>);

impl<E: CrdtEntity> Factory for Typed<E> {
    fn create(
        &self,
        entity_id: &str,
        delta: Option<&wire::CrdtDelta>,
    ) -> Result<Box<dyn Instance>, String> {
        Ok(Box::new(Live::new(Arc::clone(&self.0), entity_id, delta)?))
    }
}

/// A subscriber: a streamed command that registered a callback.
struct Subscriber<C> {
    on_change: Option<OnChange<C>>,
    on_cancel: Option<OnCancel<C>>,
}

pub(crate) struct Live<E: CrdtEntity> {
    entity: Arc<E>,
    entity_id: String,
    /// `None` once the entity is deleted, by a command or by the proxy.
    pub(crate) state: Option<E::State>,
    /// By command id, so every change notifies in subscription order.
    subscribers: BTreeMap<i64, Subscriber<E::State>>,
    /// Streamed commands whose client stream the proxy may still cancel:
    /// subscribers, those that ended (a cancellation may cross the end on
    /// the wire), and those that did not subscribe but changed nothing (the
    /// official proxy keeps their stream open).
    open_streams: HashSet<i64>,
}

impl<E: CrdtEntity> Live<E> {
    pub(crate) fn new(
        entity: Arc<E>,
        entity_id: &str,
        delta: Option<&wire::CrdtDelta>,
    ) -> Result<Self, String> {
        let state = match delta {
            Some(delta) => E::State::from_delta(delta).map_err(|e| {
                format!(
                    "Protocol error: the initial CRDT cannot be created from the init delta: {e}"
                )
            })?,
            None => entity.initial_state(entity_id),
        };
        Ok(Self {
            entity,
            entity_id: entity_id.to_owned(),
            state: Some(state),
            subscribers: BTreeMap::new(),
            open_streams: HashSet::new(),
        })
    }

    fn command(
        &mut self,
        registration: &Registration,
        command: &pb::Command,
        out: &mut Outputs<wire::CrdtStreamOut>,
    ) -> Result<(), Stop> {
        let id = command.id;
        let name = command.name.as_str();
        let _span = tracing::debug_span!("command", id, name).entered();
        let view = match registration.prepare(&self.entity_id, command)? {
            Prepared::Run(view) => view,
            Prepared::Unknown(unknown) => {
                registration.log_failure(&self.entity_id, name, &unknown);
                out.push_back(reply(failed(id, unknown)));
                return Ok(());
            }
        };
        let Some(state) = self.state.as_mut() else {
            return Err(registration.stop(
                &self.entity_id,
                id,
                &format!(
                    "Protocol error: command [{name}] (id {id}) arrived after the entity was deleted"
                ),
            ));
        };
        let mut ctx = CrdtContext::new(
            Mutation::new(state, &self.entity_id, id),
            view.streamed,
            view.metadata().unwrap_or(&crate::metadata::EMPTY),
        );
        let entity = &*self.entity;
        let result = entity::guarded(|| entity.handle_command(&view, &mut ctx))
            .map_err(|panic| registration.panicked(&self.entity_id, name, &panic));
        let result = match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(failure)) => {
                let description = failure.description().to_owned();
                registration.log_failure(&self.entity_id, name, &description);
                Err(description)
            }
            Err(panicked) => {
                error!("{panicked}");
                Err(panicked)
            }
        };
        let CrdtContext {
            mut change,
            on_change,
            on_cancel,
            ..
        } = ctx;
        let reply_message = match result {
            Ok(reply_message) => reply_message,
            Err(description) => {
                change.undo();
                out.push_back(reply(failed(id, description)));
                return Ok(());
            }
        };
        if let Some(reply) = &reply_message {
            view.check_reply(reply);
        }
        let subscribes = view.streamed && (on_change.is_some() || on_cancel.is_some());
        if !view.streamed && (on_change.is_some() || on_cancel.is_some()) {
            debug!("command [{name}] is not streamed: its subscription callbacks are dropped");
        }
        let (state_action, side_effects, deleted) = settle(change);
        let changed = state_action.is_some();
        if view.streamed && (subscribes || !changed) {
            self.open_streams.insert(id);
        }
        out.push_back(reply(wire::CrdtReply {
            command_id: id,
            client_action: reply_message.map(Reply::into_client_action),
            side_effects,
            state_action,
            streamed: subscribes,
        }));
        if deleted {
            self.delete();
            return Ok(());
        }
        // Existing subscribers first: a command is not told of its own change.
        if changed {
            self.notify(out);
        }
        if subscribes {
            self.subscribers.insert(
                id,
                Subscriber {
                    on_change,
                    on_cancel,
                },
            );
        }
        Ok(())
    }

    fn delta(
        &mut self,
        registration: &Registration,
        delta: &wire::CrdtDelta,
        out: &mut Outputs<wire::CrdtStreamOut>,
    ) -> Result<(), Stop> {
        let Some(state) = self.state.as_mut() else {
            return Err(registration.stop(
                &self.entity_id,
                0,
                "Protocol error: a delta arrived after the entity was deleted",
            ));
        };
        state.apply_delta(delta).map_err(|e| {
            registration.stop(
                &self.entity_id,
                0,
                &format!("Protocol error: the delta cannot be applied: {e}"),
            )
        })?;
        self.notify(out);
        Ok(())
    }

    fn cancelled(
        &mut self,
        registration: &Registration,
        cancelled: &pb::StreamCancelled,
        out: &mut Outputs<wire::CrdtStreamOut>,
    ) -> Result<(), Stop> {
        let id = cancelled.id;
        if !self.open_streams.remove(&id) {
            return Err(registration.stop(
                &self.entity_id,
                0,
                &format!(
                    "Protocol error: stream_cancelled for command id {id}, which is not an open streamed command of this entity"
                ),
            ));
        }
        let subscriber = self.subscribers.remove(&id);
        let mut response = wire::CrdtStreamCancelledResponse {
            command_id: id,
            ..Default::default()
        };
        let on_cancel = subscriber.and_then(|s| s.on_cancel);
        let (Some(on_cancel), Some(state)) = (on_cancel, self.state.as_mut()) else {
            out.push_back(cancelled_response(response));
            return Ok(());
        };
        let mut ctx = CancelContext {
            change: Mutation::new(state, &self.entity_id, id),
        };
        if let Err(panic) = entity::guarded(|| on_cancel(&mut ctx)) {
            ctx.change.undo();
            error!(
                "{}",
                registration.context(
                    &format!("the cancellation callback of command id {id} panicked: {panic}"),
                    &self.entity_id
                )
            );
            out.push_back(cancelled_response(response));
            return Ok(());
        }
        let (state_action, side_effects, deleted) = settle(ctx.change);
        let changed = state_action.is_some();
        response.side_effects = side_effects;
        response.state_action = state_action;
        out.push_back(cancelled_response(response));
        if deleted {
            self.delete();
        } else if changed {
            self.notify(out);
        }
        Ok(())
    }

    /// Runs every subscriber's change callback, queueing what each has to say.
    fn notify(&mut self, out: &mut Outputs<wire::CrdtStreamOut>) {
        let Some(state) = self.state.as_ref() else {
            return;
        };
        let mut finished = Vec::new();
        for (&id, subscriber) in &mut self.subscribers {
            let Some(on_change) = subscriber.on_change.as_mut() else {
                continue;
            };
            let mut ctx = ChangeContext {
                state,
                entity_id: &self.entity_id,
                command_id: id,
                ended: false,
                side_effects: Vec::new(),
            };
            let message = match entity::guarded(|| on_change(&mut ctx)) {
                Ok(Ok(reply)) => {
                    let ended = ctx.ended;
                    if reply.is_none() && ctx.side_effects.is_empty() && !ended {
                        continue;
                    }
                    if ended {
                        finished.push(id);
                    }
                    wire::CrdtStreamedMessage {
                        command_id: id,
                        client_action: reply.map(|r| Reply::message(r).into_client_action()),
                        side_effects: ctx.side_effects,
                        end_stream: ended,
                    }
                }
                Ok(Err(failure)) => {
                    finished.push(id);
                    streamed_failure(id, failure.description().to_owned())
                }
                Err(panic) => {
                    let description = format!(
                        "CRDT unexpected failure: the change callback of command id {id} on entity [{}] panicked: {panic}",
                        self.entity_id
                    );
                    error!("{description}");
                    finished.push(id);
                    streamed_failure(id, description)
                }
            };
            out.push_back(wire::CrdtStreamOut {
                message: Some(Out::StreamedMessage(message)),
            });
        }
        for id in finished {
            self.subscribers.remove(&id);
        }
    }

    /// The entity is gone: nothing is kept, nothing more is notified.
    fn delete(&mut self) {
        self.state = None;
        self.subscribers.clear();
        self.open_streams.clear();
    }
}

impl<E: CrdtEntity> Instance for Live<E> {
    fn handle(
        &mut self,
        registration: &Registration,
        message: In,
        out: &mut Outputs<wire::CrdtStreamOut>,
    ) -> Result<(), Stop> {
        match message {
            In::Init(_) => Err(registration.stop(
                &self.entity_id,
                0,
                "Protocol error: CRDT entity already inited",
            )),
            In::Command(command) => self.command(registration, &command, out),
            In::Delta(delta) => self.delta(registration, &delta, out),
            In::Delete(_) => {
                debug!("deleted by the proxy");
                self.delete();
                Ok(())
            }
            In::StreamCancelled(cancelled) => self.cancelled(registration, &cancelled, out),
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The state action of a successful change (none when nothing changed), its
/// side effects, and whether it deletes the entity.
fn settle<C: CrdtType>(
    mut change: Mutation<'_, C>,
) -> (Option<wire::CrdtStateAction>, Vec<pb::SideEffect>, bool) {
    let consistency = change.write_consistency;
    // A delete drops the pending update; the value stays as the handler saw it.
    let delta = change.state.take_delta();
    let action = if change.deleted {
        Some(StateAction::Delete(wire::CrdtDelete {}))
    } else {
        delta.map(StateAction::Update)
    };
    let state_action = action.map(|action| wire::CrdtStateAction {
        action: Some(action),
        write_consistency: consistency.to_wire(),
    });
    (
        state_action,
        std::mem::take(&mut change.side_effects),
        change.deleted,
    )
}

fn reply(reply: wire::CrdtReply) -> wire::CrdtStreamOut {
    wire::CrdtStreamOut {
        message: Some(Out::Reply(reply)),
    }
}

fn cancelled_response(response: wire::CrdtStreamCancelledResponse) -> wire::CrdtStreamOut {
    wire::CrdtStreamOut {
        message: Some(Out::StreamCancelledResponse(response)),
    }
}

fn failed(command_id: i64, description: String) -> wire::CrdtReply {
    wire::CrdtReply {
        command_id,
        client_action: Some(failure_action(command_id, description, false)),
        ..Default::default()
    }
}

fn streamed_failure(command_id: i64, description: String) -> wire::CrdtStreamedMessage {
    wire::CrdtStreamedMessage {
        command_id,
        client_action: Some(failure_action(command_id, description, false)),
        ..Default::default()
    }
}

/// The `handle` service of CRDT entities.
pub(crate) type CrdtService = EntityService<CrdtProtocol>;

crate::stream::entity_service!(
    CrdtService,
    CrdtRpc,
    wire::CrdtStreamIn,
    wire::CrdtStreamOut
);

pub(crate) struct CrdtProtocol {
    entities: Registry<dyn Factory>,
}

impl CrdtProtocol {
    pub(crate) fn new(entities: Registry<dyn Factory>) -> Self {
        Self { entities }
    }
}

/// One CRDT entity stream.
pub(crate) struct Entity {
    registration: Arc<Registration>,
    instance: Box<dyn Instance>,
}

impl Protocol for CrdtProtocol {
    type In = wire::CrdtStreamIn;
    type Out = wire::CrdtStreamOut;
    type Message = In;
    type Entity = (Entity, String);

    fn message(input: Self::In) -> Option<In> {
        input.message
    }

    fn start(&self, first: In) -> Result<(Self::Entity, tracing::Span), Stop> {
        let init = match first {
            In::Init(init) => init,
            other => {
                return Err(Stop::Failure(
                    0,
                    format!(
                        "Protocol error: Expected init message for CRDT entity, but received {}",
                        describe(&other)
                    ),
                ));
            }
        };
        let registration = entity::lookup(&self.entities, &init.service_name, &init.entity_id)?;
        let instance = registration.create(&init.entity_id, |factory| {
            factory.create(&init.entity_id, init.delta.as_ref())
        })?;
        let span = info_span!("entity", service = %init.service_name, entity_id = %init.entity_id);
        debug!(parent: &span, has_delta = init.delta.is_some(), "CRDT entity started");
        Ok((
            (
                Entity {
                    registration,
                    instance,
                },
                init.entity_id,
            ),
            span,
        ))
    }

    fn handle(
        (entity, entity_id): &mut Self::Entity,
        message: In,
        out: &mut Outputs<Self::Out>,
    ) -> Result<(), Stop> {
        let before = out.len();
        let handled = entity.instance.handle(&entity.registration, message, out);
        let limit = entity.registration.max_reply;
        let oversized = out.iter().skip(before).find_map(|message| {
            let size = prost::Message::encoded_len(message);
            (size > limit).then(|| (command_id(message), size))
        });
        let Some((command_id, size)) = oversized else {
            return handled;
        };
        // The local state may hold a change the proxy will now never see:
        // end the stream, so the proxy starts the entity afresh from its copy.
        out.truncate(before);
        let description = format!(
            "A message for command {command_id} is {size} bytes, over the {limit}-byte limit \
             of a message to the proxy; it was not sent"
        );
        Err(entity
            .registration
            .stop(entity_id, command_id, &description))
    }

    fn stop((entity, entity_id): &Self::Entity, command_id: i64, description: &str) -> Stop {
        entity.registration.stop(entity_id, command_id, description)
    }

    fn failure(command_id: i64, description: String) -> Self::Out {
        wire::CrdtStreamOut {
            message: Some(Out::Failure(pb::Failure {
                command_id,
                description,
                restart: false,
            })),
        }
    }
}

/// The command an output answers.
fn command_id(message: &wire::CrdtStreamOut) -> i64 {
    match &message.message {
        Some(Out::Reply(reply)) => reply.command_id,
        Some(Out::StreamedMessage(streamed)) => streamed.command_id,
        Some(Out::StreamCancelledResponse(response)) => response.command_id,
        Some(Out::Failure(failure)) => failure.command_id,
        None => 0,
    }
}

fn describe(message: &In) -> String {
    match message {
        In::Init(init) => format!("init for entity [{}]", init.entity_id),
        In::Delta(_) => "a delta".to_owned(),
        In::Delete(_) => "a delete".to_owned(),
        In::Command(command) => format!("command [{}] (id {})", command.name, command.id),
        In::StreamCancelled(cancelled) => {
            format!("stream_cancelled for command id {}", cancelled.id)
        }
    }
}
