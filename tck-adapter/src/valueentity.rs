//! The value-entity TCK models (`valueentity.proto`), written against the
//! generated traits as a user would.

use std::time::Duration;

use cloudstate_sdk::{CloudState, CommandResult, Failure, Reply, ValueEntityOptions};

use crate::proto::cloudstate::tck::model::valueentity::{
    Persisted, Request, Response, request_action::Action, value_entity_configured,
    value_entity_tck_model, value_entity_two,
};

/// Registers the three value-entity model services.
pub fn register(server: CloudState) -> CloudState {
    server
        .register(
            value_entity_tck_model::Entity(TckModel),
            ValueEntityOptions::new("value-entity-tck-model"),
        )
        .register(
            value_entity_two::Entity(Two),
            ValueEntityOptions::new("value-entity-tck-model-two"),
        )
        .register(
            value_entity_configured::Entity(Configured),
            ValueEntityOptions::new("value-entity-configured")
                .passivation_timeout(Duration::from_millis(100)),
        )
}

/// `ValueEntityTckModel`: the state is one string, replaced or deleted by the actions.
#[derive(Debug, Clone, Copy, Default)]
pub struct TckModel;

impl value_entity_tck_model::ValueEntityTckModel for TckModel {
    fn process(
        &self,
        request: Request,
        ctx: &mut value_entity_tck_model::Context<'_, Self>,
    ) -> CommandResult<Response> {
        let mut forward = None;
        for action in request.actions.into_iter().filter_map(|a| a.action) {
            match action {
                Action::Update(update) => ctx.update(Persisted {
                    value: update.value,
                }),
                Action::Delete(_) => ctx.delete(),
                Action::Forward(f) => {
                    forward = Some(value_entity_two::call(&Request {
                        id: f.id,
                        actions: Vec::new(),
                    }))
                }
                Action::Effect(e) => {
                    ctx.effect(
                        value_entity_two::call(&Request {
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
                message: ctx.state().map(|s| s.value.clone()).unwrap_or_default(),
            }
            .into(),
        })
    }
}

/// `ValueEntityTwo`: the forward and side-effect target; replies with an empty `Response`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Two;

impl value_entity_two::ValueEntityTwo for Two {
    fn call(
        &self,
        _: Request,
        _: &mut value_entity_two::Context<'_, Self>,
    ) -> CommandResult<Response> {
        Ok(Response::default().into())
    }
}

/// `ValueEntityConfigured`: passivated after 100 ms; replies with an empty `Response`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Configured;

impl value_entity_configured::ValueEntityConfigured for Configured {
    fn call(
        &self,
        _: Request,
        _: &mut value_entity_configured::Context<'_, Self>,
    ) -> CommandResult<Response> {
        Ok(Response::default().into())
    }
}
