//! The event-sourced TCK models (`eventsourced.proto`), written against the
//! generated traits as a user would.

use std::time::Duration;

use cloudstate_sdk::{CloudState, CommandResult, EventSourcedOptions, Failure, Reply};

use crate::proto::cloudstate::tck::model::{
    Persisted, Request, Response, event_sourced_configured, event_sourced_tck_model,
    event_sourced_two, request_action::Action,
};

/// Registers the three event-sourced model services.
pub fn register(server: CloudState) -> CloudState {
    server
        .register(
            event_sourced_tck_model::Entity(TckModel),
            EventSourcedOptions::new("event-sourced-tck-model").snapshot_every(5),
        )
        .register(
            event_sourced_two::Entity(Two),
            EventSourcedOptions::new("event-sourced-tck-model-two"),
        )
        .register(
            event_sourced_configured::Entity(Configured),
            EventSourcedOptions::new("event-sourced-configured")
                .passivation_timeout(Duration::from_millis(100)),
        )
}

/// `EventSourcedTckModel`: the state is the concatenation of every `Persisted` value.
#[derive(Debug, Clone, Copy, Default)]
pub struct TckModel;

impl event_sourced_tck_model::EventSourcedTckModel for TckModel {
    type State = String;

    fn initial_state(&self, _entity_id: &str) -> String {
        String::new()
    }

    fn process(
        &self,
        request: Request,
        ctx: &mut event_sourced_tck_model::Context<'_, Self>,
    ) -> CommandResult<Response> {
        let mut forward = None;
        for action in request.actions.into_iter().filter_map(|a| a.action) {
            match action {
                Action::Emit(emit) => ctx.emit(Persisted { value: emit.value }),
                Action::Forward(f) => {
                    forward = Some(event_sourced_two::call(&Request {
                        id: f.id,
                        actions: Vec::new(),
                    }))
                }
                Action::Effect(e) => {
                    ctx.effect(
                        event_sourced_two::call(&Request {
                            id: e.id,
                            actions: Vec::new(),
                        }),
                        e.synchronous,
                    );
                }
                Action::Fail(fail) => return Err(Failure::new(fail.message)),
            }
        }
        Ok(match forward {
            Some(call) => Reply::forward(call),
            None => Response {
                message: ctx.state().clone(),
            }
            .into(),
        })
    }

    fn on_persisted(&self, state: &mut String, event: &Persisted) {
        state.push_str(&event.value);
    }

    fn snapshot(&self, state: &String) -> Persisted {
        Persisted {
            value: state.clone(),
        }
    }

    fn restore(&self, _entity_id: &str, snapshot: Persisted) -> String {
        snapshot.value
    }
}

/// `EventSourcedTwo`: the forward and side-effect target; replies with an empty `Response`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Two;

impl event_sourced_two::EventSourcedTwo for Two {
    type State = ();

    fn initial_state(&self, _entity_id: &str) {}

    fn call(
        &self,
        _: Request,
        _: &mut event_sourced_two::Context<'_, Self>,
    ) -> CommandResult<Response> {
        Ok(Response::default().into())
    }
}

/// `EventSourcedConfigured`: passivated after 100 ms; replies with an empty `Response`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Configured;

impl event_sourced_configured::EventSourcedConfigured for Configured {
    type State = ();

    fn initial_state(&self, _entity_id: &str) {}

    fn call(
        &self,
        _: Request,
        _: &mut event_sourced_configured::Context<'_, Self>,
    ) -> CommandResult<Response> {
        Ok(Response::default().into())
    }
}
