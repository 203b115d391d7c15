//! The event-log eventing TCK models (`eventlogeventing.proto`, protocol
//! notes §10.6): an event-sourced entity that emits what it is asked to, and
//! an action subscribed to its event log that answers each event's steps.
//! The proxy delivers each event as an action command with CloudEvent
//! metadata; the emitting entity's id is its `ce-subject`.

use serde::{Deserialize, Serialize};

use cloudstate_sdk::action::BoxStream;
use cloudstate_sdk::{
    ActionContext, ActionOptions, ActionReply, ActionResult, CloudState, CommandResult,
    EventSourcedOptions, Failure,
};
use futures_util::StreamExt;
use futures_util::stream;

use crate::proto::cloudstate::tck::model::eventlogeventing::{
    EffectRequest, EmitEventRequest, EventOne, EventTwo, JsonEvent, ProcessStep, Response,
    emit_event_request, event_log_subscriber_model, event_sourced_entity_one,
    event_sourced_entity_two, process_step::Step,
};

/// The persistence id of `EventSourcedEntityOne`'s protobuf events, as
/// `build.rs` declares it (the subscriber's event log is checked against it).
pub const EVENT_LOG_ONE: &str = event_sourced_entity_one::PERSISTENCE_ID;

/// The persistence id of `EventSourcedEntityTwo`'s JSON events.
pub const EVENT_LOG_TWO: &str = event_sourced_entity_two::PERSISTENCE_ID;

/// Registers both entities and `EventLogSubscriberModel`.
pub fn register(server: CloudState) -> CloudState {
    server
        .register(
            event_sourced_entity_one::Entity(EntityOne),
            EventSourcedOptions::new(EVENT_LOG_ONE),
        )
        .register(
            event_sourced_entity_two::Entity(EntityTwo),
            EventSourcedOptions::new(EVENT_LOG_TWO),
        )
        .register(
            event_log_subscriber_model::Action(Subscriber),
            ActionOptions::new(),
        )
}

/// `EventSourcedEntityOne`: emits the request's event; replays nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct EntityOne;

impl event_sourced_entity_one::EventSourcedEntityOne for EntityOne {
    type State = ();

    fn initial_state(&self, _entity_id: &str) {}

    fn emit_event(
        &self,
        request: EmitEventRequest,
        ctx: &mut event_sourced_entity_one::Context<'_, Self>,
    ) -> CommandResult<()> {
        match request.event {
            Some(emit_event_request::Event::EventOne(event)) => ctx.emit(event),
            Some(emit_event_request::Event::EventTwo(event)) => ctx.emit(event),
            None => return Err(Failure::new("EmitEventRequest names no event")),
        }
        cloudstate_sdk::done()
    }

    fn on_event_one(&self, _: &mut (), _: &EventOne) {}

    fn on_event_two(&self, _: &mut (), _: &EventTwo) {}
}

/// The JSON event of `EventSourcedEntityTwo`: `json.cloudstate.io/JsonMessage`
/// carrying `{"message": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonMessage {
    /// What the subscriber answers with.
    pub message: String,
}

/// `EventSourcedEntityTwo`: emits the request's message as a JSON event.
#[derive(Debug, Clone, Copy, Default)]
pub struct EntityTwo;

impl event_sourced_entity_two::EventSourcedEntityTwo for EntityTwo {
    type State = ();

    fn initial_state(&self, _entity_id: &str) {}

    fn emit_json_event(
        &self,
        request: JsonEvent,
        ctx: &mut event_sourced_entity_two::Context<'_, Self>,
    ) -> CommandResult<()> {
        ctx.emit(JsonMessage {
            message: request.message,
        });
        cloudstate_sdk::done()
    }

    fn on_json_message(&self, _: &mut (), _: &JsonMessage) {}
}

/// `EventLogSubscriberModel`: answers each consumed event's steps for the
/// entity that emitted it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subscriber;

/// The emitting entity's id: the event's `ce-subject`.
fn subject(ctx: &ActionContext) -> String {
    ctx.metadata_value("ce-subject")
        .unwrap_or_default()
        .to_owned()
}

/// A reply step answers with its message; a forward step forwards it to `Effect`.
fn answer(id: String, step: Option<ProcessStep>) -> ActionResult<Response> {
    match step.and_then(|s| s.step) {
        Some(Step::Reply(reply)) => Ok(ActionReply::message(Response {
            id,
            message: reply.message,
        })),
        Some(Step::Forward(forward)) => Ok(ActionReply::forward(
            event_log_subscriber_model::effect(&EffectRequest {
                id,
                message: forward.message,
            }),
        )),
        None => Err(Failure::new("the event has no step")),
    }
}

impl event_log_subscriber_model::EventLogSubscriberModel for Subscriber {
    async fn process_event_one(
        &self,
        event: EventOne,
        ctx: ActionContext,
    ) -> ActionResult<Response> {
        answer(subject(&ctx), event.step)
    }

    fn process_event_two(
        &self,
        event: EventTwo,
        ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult<Response>> {
        let id = subject(&ctx);
        stream::iter(event.step)
            .map(move |step| answer(id.clone(), Some(step)))
            .boxed()
    }

    async fn effect(&self, request: EffectRequest, _: ActionContext) -> ActionResult<Response> {
        Ok(ActionReply::message(Response {
            id: request.id,
            message: request.message,
        }))
    }

    async fn process_any_event(
        &self,
        event: event_log_subscriber_model::ProcessAnyEventInput,
        ctx: ActionContext,
    ) -> ActionResult<Response> {
        use event_log_subscriber_model::ProcessAnyEventInput;
        match event {
            ProcessAnyEventInput::JsonMessage(JsonMessage { message }) => {
                Ok(ActionReply::message(Response {
                    id: subject(&ctx),
                    message,
                }))
            }
            ProcessAnyEventInput::Other(event) => Err(Failure::new(format!(
                "expected a JSON event with a message, got [{}]",
                event.type_url
            ))),
        }
    }
}
