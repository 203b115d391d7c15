//! The event-sourced TCK models (`eventsourced.proto`), on the SDK's
//! low-level entity API.

use std::time::Duration;

use cloudstate_sdk::payload::{self, Any};
use cloudstate_sdk::{
    CloudState, Command, CommandContext, CommandResult, EventSourcedEntity, EventSourcedOptions,
    Failure, PayloadError, Reply, ServiceCall,
};

use crate::proto::cloudstate::tck::model::{Persisted, Request, Response, request_action::Action};

/// Full name of the main model service.
pub const TCK_MODEL: &str = "cloudstate.tck.model.EventSourcedTckModel";
/// Full name of the forward and side-effect target.
pub const TWO: &str = "cloudstate.tck.model.EventSourcedTwo";
/// Full name of the service with configured passivation.
pub const CONFIGURED: &str = "cloudstate.tck.model.EventSourcedConfigured";

/// Registers the three event-sourced model services.
pub fn register(server: CloudState) -> CloudState {
    server
        .event_sourced(
            TCK_MODEL,
            TckModel,
            EventSourcedOptions::new("event-sourced-tck-model").snapshot_every(5),
        )
        .event_sourced(
            TWO,
            Empty,
            EventSourcedOptions::new("event-sourced-tck-model-two"),
        )
        .event_sourced(
            CONFIGURED,
            Empty,
            EventSourcedOptions::new("event-sourced-configured")
                .passivation_timeout(Duration::from_millis(100)),
        )
}

/// `EventSourcedTckModel`: the state is the concatenation of every `Persisted` value.
#[derive(Debug, Clone, Copy)]
pub struct TckModel;

impl EventSourcedEntity for TckModel {
    type State = String;
    type Event = Any;

    fn initial_state(&self, _entity_id: &str) -> String {
        String::new()
    }

    fn apply_event(&self, state: &mut String, event: &Any) -> Result<(), PayloadError> {
        state.push_str(&payload::decode::<Persisted>(event)?.value);
        Ok(())
    }

    fn snapshot(&self, state: &String) -> Option<Any> {
        Some(payload::encode(&Persisted {
            value: state.clone(),
        }))
    }

    fn restore(&self, _entity_id: &str, snapshot: &Any) -> Result<String, PayloadError> {
        Ok(payload::decode::<Persisted>(snapshot)?.value)
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        let request: Request = command.decode()?;
        let mut forward = None;
        for action in request.actions.into_iter().filter_map(|a| a.action) {
            match action {
                Action::Emit(emit) => ctx.emit(payload::encode(&Persisted { value: emit.value })),
                Action::Forward(f) => forward = Some(call(f.id)),
                Action::Effect(effect) => ctx.effect(call(effect.id), effect.synchronous),
                Action::Fail(fail) => return Err(Failure::new(fail.message)),
            }
        }
        Ok(match forward {
            Some(call) => Reply::forward(call),
            None => Reply::encode(&Response {
                message: ctx.state().clone(),
            }),
        })
    }
}

fn call(id: String) -> ServiceCall {
    ServiceCall::message(
        TWO,
        "Call",
        &Request {
            id,
            actions: Vec::new(),
        },
    )
}

/// `EventSourcedTwo` and `EventSourcedConfigured`: reply with an empty `Response`.
#[derive(Debug, Clone, Copy)]
pub struct Empty;

impl EventSourcedEntity for Empty {
    type State = ();
    type Event = Any;

    fn initial_state(&self, _entity_id: &str) {}

    fn apply_event(&self, _state: &mut (), event: &Any) -> Result<(), PayloadError> {
        Err(PayloadError::unhandled(event))
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        _ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        let _: Request = command.decode()?;
        Ok(Reply::encode(&Response::default()))
    }
}
