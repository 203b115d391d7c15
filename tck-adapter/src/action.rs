//! The action TCK models (`action.proto`), written against the generated
//! traits as a user would. Each request group becomes one response, built as
//! the Java TCK model does (protocol notes §10.4).

use cloudstate_sdk::action::BoxStream;
use cloudstate_sdk::{
    ActionContext, ActionOptions, ActionReply, ActionResult, CloudState, Failure,
};
use futures_util::StreamExt;
use futures_util::stream;

use crate::proto::cloudstate::tck::model::action::{
    OtherRequest, ProcessGroup, Request, Response, action_tck_model, action_two, process_step::Step,
};

/// Registers `ActionTckModel` and `ActionTwo`.
pub fn register(server: CloudState) -> CloudState {
    server
        .register(action_tck_model::Action(TckModel), ActionOptions::new())
        .register(action_two::Action(Two), ActionOptions::new())
}

/// `ActionTckModel`: answers as its request's steps say.
#[derive(Debug, Clone, Copy, Default)]
pub struct TckModel;

/// The response for one group: the last reply, forward or failure, with
/// every side effect in step order.
fn group_response(group: ProcessGroup) -> ActionReply<Response> {
    let mut response = ActionReply::no_reply();
    let mut effects = Vec::new();
    for step in group.steps.into_iter().filter_map(|s| s.step) {
        match step {
            Step::Reply(reply) => {
                response = ActionReply::message(Response {
                    message: reply.message,
                });
            }
            Step::Forward(forward) => {
                response = ActionReply::forward(action_two::call(&OtherRequest { id: forward.id }));
            }
            Step::Fail(fail) => response = ActionReply::failure(fail.message),
            Step::Effect(effect) => effects.push((
                action_two::call(&OtherRequest { id: effect.id }),
                effect.synchronous,
            )),
        }
    }
    effects
        .into_iter()
        .fold(response, |response, (call, sync)| {
            response.with_effect(call, sync)
        })
}

/// Folds group responses into one (Java's `singleResponse`): a group with a
/// reply, forward or failure replaces the result and keeps the effects so far
/// after its own; a group without only adds its effects.
fn fold(so_far: ActionReply<Response>, mut group: ActionReply<Response>) -> ActionReply<Response> {
    if group.is_no_reply() {
        so_far.with_side_effects(group.take_side_effects())
    } else {
        let mut so_far = so_far;
        group.with_side_effects(so_far.take_side_effects())
    }
}

/// The responses of one request, one per group.
fn responses(request: Request) -> impl Iterator<Item = ActionResult<Response>> {
    request.groups.into_iter().map(|g| Ok(group_response(g)))
}

impl action_tck_model::ActionTckModel for TckModel {
    async fn process_unary(&self, request: Request, _: ActionContext) -> ActionResult<Response> {
        Ok(request
            .groups
            .into_iter()
            .map(group_response)
            .fold(ActionReply::no_reply(), fold))
    }

    async fn process_streamed_in(
        &self,
        mut requests: BoxStream<'static, Result<Request, Failure>>,
        _: ActionContext,
    ) -> ActionResult<Response> {
        let mut result = ActionReply::no_reply();
        while let Some(request) = requests.next().await {
            for group in request?.groups {
                result = fold(result, group_response(group));
            }
        }
        Ok(result)
    }

    fn process_streamed_out(
        &self,
        request: Request,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult<Response>> {
        stream::iter(responses(request)).boxed()
    }

    fn process_streamed(
        &self,
        requests: BoxStream<'static, Result<Request, Failure>>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult<Response>> {
        requests
            .flat_map(|request| match request {
                Ok(request) => stream::iter(responses(request).collect::<Vec<_>>()),
                Err(failure) => stream::iter(vec![Err(failure)]),
            })
            .boxed()
    }
}

/// `ActionTwo`: the forward and side-effect target; replies with an empty `Response`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Two;

impl action_two::ActionTwo for Two {
    async fn call(&self, _: OtherRequest, _: ActionContext) -> ActionResult<Response> {
        Ok(ActionReply::message(Response::default()))
    }
}
