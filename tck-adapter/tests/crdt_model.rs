//! A port of the official TCK's CRDT scenarios, run against the adapter over
//! real gRPC on 127.0.0.1: the model part (the TCK plays the proxy), and the
//! protocol traces of its proxy part (what the user function sees in each).
//!
//! Where the TCK sorts the lists of a received delta before comparing
//! (`Delta.sorted`), the tests use `expect_sorted`; everywhere else they
//! compare exact messages.
//!
//! | TCK scenario ("verify …") | test |
//! |---|---|
//! | CRDT entity discovery | `crdt_entity_discovery` |
//! | CRDT configured entity | `crdt_configured_entity` |
//! | GCounter initial empty state | `gcounter_initial_empty_state` |
//! | GCounter state changes | `gcounter_state_changes` |
//! | GCounter initial delta in init | `gcounter_initial_delta_in_init` |
//! | GCounter initial empty state with replicated initial delta | `gcounter_initial_empty_state_with_replicated_initial_delta` |
//! | GCounter mix of local and replicated state changes | `gcounter_mix_of_local_and_replicated_state_changes` |
//! | GCounter rehydration after passivation | `gcounter_rehydration_after_passivation` |
//! | GCounter delete action received from entity | `gcounter_delete_action_received_from_entity` |
//! | GCounter delete action sent to entity | `gcounter_delete_action_sent_to_entity` |
//! | PNCounter … (the same eight) | `pncounter_*` |
//! | GSet … (the same eight) | `gset_*` |
//! | ORSet … (the same eight) | `orset_*` |
//! | LWWRegister initial empty state, state changes, initial delta in init, initial empty state with replicated initial delta, mix of local and replicated state changes | `lwwregister_*` |
//! | LWWRegister state changes with clock settings | `lwwregister_state_changes_with_clock_settings` |
//! | LWWRegister rehydration after passivation, delete action received from / sent to entity | `lwwregister_*` |
//! | Flag … (the same eight) | `flag_*` |
//! | ORMap … (the same eight) | `ormap_*` |
//! | Vote … (the same eight) | `vote_*` |
//! | forward to second service | `forward_to_second_service` |
//! | forward with state changes | `forward_with_state_changes` |
//! | reply with side effect to second service | `reply_with_side_effect_to_second_service` |
//! | synchronous side effect to second service | `synchronous_side_effect_to_second_service` |
//! | forward and side effect to second service | `forward_and_side_effect_to_second_service` |
//! | reply with multiple side effects | `reply_with_multiple_side_effects` |
//! | reply with multiple side effects and state changes | `reply_with_multiple_side_effects_and_state_changes` |
//! | failure action | `failure_action` |
//! | connection after failure action | `connection_after_failure_action` |
//! | streamed responses | `streamed_responses` |
//! | streamed responses with stream ending action | `streamed_responses_with_stream_ending_action` |
//! | streamed responses with cancellation | `streamed_responses_with_cancellation` |
//! | empty streamed responses with cancellation | `empty_streamed_responses_with_cancellation` |
//! | streamed responses with side effects | `streamed_responses_with_side_effects` |
//! | write consistency can be configured | `write_consistency_can_be_configured` |
//! | (proxy) state changes | `proxy_state_changes` |
//! | (proxy) forwards and side effects | `proxy_forwards_and_side_effects` |
//! | (proxy) failures | `proxy_failures` |
//! | (proxy) streamed responses for connection tracking | `proxy_streamed_responses_for_connection_tracking` |
//! | (proxy) HTTP API | `proxy_http_api` |
//! | (proxy) passivation timeout | `proxy_passivation_timeout` |
//! | (not in the TCK) persistence ids, rollback on failure, subscribers and proxy deltas | `crdt_persistence_ids_and_strategies`, `failure_after_changes_rolls_back_the_crdt`, `subscribers_see_proxy_deltas_but_not_unchanged_or_failed_commands` |
//!
//! The proxy scenarios keep the TCK's entity ids and message sequence; what
//! only a proxy can do (HTTP transcoding, closing after a delete, the
//! 100 ms passivation timer) is the driver's part here, and the timeout itself
//! is checked in discovery.

use cloudstate_sdk::prost::Message;
use cloudstate_sdk::protocol::cloudstate::crdt::{
    CrdtClock, CrdtDelta, CrdtStreamIn, CrdtWriteConsistency,
};
use cloudstate_sdk::protocol::cloudstate::{self as pb};
use cloudstate_sdk::testkit::{TestServer, crdt, proxy_info};
use tck_adapter::proto::cloudstate::tck::model::crdt::{
    Delete, Effect, Fail, FlagUpdate, FlagValue, Forward, GCounterUpdate, GCounterValue,
    GSetUpdate, GSetValue, LwwRegisterClock, LwwRegisterClockType, LwwRegisterUpdate,
    LwwRegisterValue, OrMapEntryUpdate, OrMapEntryValue, OrMapUpdate, OrMapValue, OrSetUpdate,
    OrSetValue, PnCounterUpdate, PnCounterValue, Request, RequestAction, Response, State,
    StreamedRequest, Update, UpdateWriteConsistency, VoteUpdate, VoteValue, or_map_update,
    or_set_update, request_action::Action, state::Value, update,
};

const SVC: &str = "cloudstate.tck.model.crdt.CrdtTckModel";
const TWO: &str = "cloudstate.tck.model.crdt.CrdtTwo";
const CONFIGURED: &str = "cloudstate.tck.model.crdt.CrdtConfigured";
const CRDT: &str = "cloudstate.crdt.Crdt";

// Requests and expected messages, as the TCK's helpers build them.

fn act(a: Action) -> RequestAction {
    RequestAction { action: Some(a) }
}
fn upd(u: update::Update) -> Update {
    Update {
        update: Some(u),
        write_consistency: UpdateWriteConsistency::Local.into(),
    }
}
fn request_update(u: Update) -> RequestAction {
    act(Action::Update(u))
}
fn request_delete() -> RequestAction {
    act(Action::Delete(Delete {}))
}
fn forward_to(id: &str) -> RequestAction {
    act(Action::Forward(Forward { id: id.into() }))
}
fn side_effect_to(id: &str, synchronous: bool) -> RequestAction {
    act(Action::Effect(Effect {
        id: id.into(),
        synchronous,
    }))
}
fn side_effects_to(ids: &[&str]) -> Vec<RequestAction> {
    ids.iter().map(|id| side_effect_to(id, false)).collect()
}
fn fail_with(message: &str) -> RequestAction {
    act(Action::Fail(Fail {
        message: message.into(),
    }))
}
fn req(id: &str, actions: Vec<RequestAction>) -> Request {
    Request {
        id: id.into(),
        actions,
    }
}
fn streamed_req(id: &str) -> StreamedRequest {
    StreamedRequest {
        id: id.into(),
        ..Default::default()
    }
}
fn process(n: i64, id: &str, actions: Vec<RequestAction>) -> CrdtStreamIn {
    crdt::command(n, id, "Process", &req(id, actions))
}
fn process_streamed(n: i64, id: &str, request: &StreamedRequest) -> CrdtStreamIn {
    crdt::streamed_command(n, id, "ProcessStreamed", request)
}
fn reply(n: i64, response: &Response) -> crdt::ReplyBuilder {
    crdt::reply(n, response)
}
fn streamed(n: i64, response: &Response) -> crdt::StreamedBuilder {
    crdt::streamed(n, response)
}
/// The TCK's `sideEffects(id)` / `synchronousSideEffects(id)`: to `CrdtTwo.Call`.
fn side_effect(id: &str, synchronous: bool) -> pb::SideEffect {
    crdt::side_effect(TWO, "Call", &req(id, vec![]), synchronous)
}
/// The TCK's `forwarded(n, id)`.
fn forwarded(n: i64, id: &str) -> crdt::ReplyBuilder {
    crdt::forward(n, TWO, "Call", &req(id, vec![]))
}
fn response(value: Value) -> Response {
    Response {
        state: Some(State { value: Some(value) }),
    }
}
/// The `Update` inside a request action built by one of the helpers below.
fn update_of(action: &RequestAction) -> Update {
    match &action.action {
        Some(Action::Update(u)) => u.clone(),
        _ => Update::default(),
    }
}

mod gcounter {
    use super::*;
    pub(super) fn state(value: u64) -> Response {
        response(Value::Gcounter(GCounterValue { value }))
    }
    pub(super) fn update_with(increment: u64) -> Update {
        upd(update::Update::Gcounter(GCounterUpdate { increment }))
    }
    pub(super) fn increment_by(increments: &[u64]) -> Vec<RequestAction> {
        increments
            .iter()
            .map(|i| request_update(update_with(*i)))
            .collect()
    }
}

mod pncounter {
    use super::*;
    pub(super) fn state(value: i64) -> Response {
        response(Value::Pncounter(PnCounterValue { value }))
    }
    pub(super) fn update_with(change: i64) -> Update {
        upd(update::Update::Pncounter(PnCounterUpdate { change }))
    }
    pub(super) fn change_by(changes: &[i64]) -> Vec<RequestAction> {
        changes
            .iter()
            .map(|c| request_update(update_with(*c)))
            .collect()
    }
}

fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

mod gset {
    use super::*;
    pub(super) fn state(elements: &[&str]) -> Response {
        response(Value::Gset(GSetValue {
            elements: owned(elements),
        }))
    }
    pub(super) fn add(elements: &[&str]) -> Vec<RequestAction> {
        elements
            .iter()
            .map(|e| request_update(upd(update::Update::Gset(GSetUpdate { add: (*e).into() }))))
            .collect()
    }
}

mod orset {
    use super::*;
    pub(super) fn state(elements: &[&str]) -> Response {
        response(Value::Orset(OrSetValue {
            elements: owned(elements),
        }))
    }
    fn action(a: or_set_update::Action) -> RequestAction {
        request_update(upd(update::Update::Orset(OrSetUpdate { action: Some(a) })))
    }
    pub(super) fn add(elements: &[&str]) -> Vec<RequestAction> {
        elements
            .iter()
            .map(|e| action(or_set_update::Action::Add((*e).into())))
            .collect()
    }
    pub(super) fn remove(elements: &[&str]) -> Vec<RequestAction> {
        elements
            .iter()
            .map(|e| action(or_set_update::Action::Remove((*e).into())))
            .collect()
    }
    pub(super) fn clear() -> Vec<RequestAction> {
        vec![action(or_set_update::Action::Clear(true))]
    }
}

mod lwwregister {
    use super::*;
    pub(super) fn state(value: &str) -> Response {
        response(Value::Lwwregister(LwwRegisterValue {
            value: value.into(),
        }))
    }
    /// As the TCK's `setTo`: the clock is always present.
    pub(super) fn set_to_with(
        value: &str,
        clock: LwwRegisterClockType,
        custom_clock_value: i64,
    ) -> Vec<RequestAction> {
        vec![request_update(upd(update::Update::Lwwregister(
            LwwRegisterUpdate {
                value: value.into(),
                clock: Some(LwwRegisterClock {
                    clock_type: clock.into(),
                    custom_clock_value,
                }),
            },
        )))]
    }
    pub(super) fn set_to(value: &str) -> Vec<RequestAction> {
        set_to_with(value, LwwRegisterClockType::Default, 0)
    }
}

mod flag {
    use super::*;
    pub(super) fn state(value: bool) -> Response {
        response(Value::Flag(FlagValue { value }))
    }
    pub(super) fn enable() -> Vec<RequestAction> {
        vec![request_update(upd(update::Update::Flag(FlagUpdate {})))]
    }
}

mod ormap {
    use super::*;
    pub(super) fn state(entries: Vec<(&str, Response)>) -> Response {
        response(Value::Ormap(OrMapValue {
            entries: entries
                .into_iter()
                .map(|(key, value)| OrMapEntryValue {
                    key: key.into(),
                    value: value.state,
                })
                .collect(),
        }))
    }
    fn action(a: or_map_update::Action) -> RequestAction {
        request_update(upd(update::Update::Ormap(Box::new(OrMapUpdate {
            action: Some(a),
        }))))
    }
    pub(super) fn add(keys: &[&str]) -> Vec<RequestAction> {
        keys.iter()
            .map(|k| action(or_map_update::Action::Add((*k).into())))
            .collect()
    }
    /// As the TCK's `updateWith`: one map update per nested action.
    pub(super) fn update_with(entries: Vec<(&str, Vec<RequestAction>)>) -> Vec<RequestAction> {
        entries
            .into_iter()
            .flat_map(|(key, actions)| {
                actions.into_iter().map(move |a| {
                    action(or_map_update::Action::Update(Box::new(OrMapEntryUpdate {
                        key: key.into(),
                        update: Some(Box::new(update_of(&a))),
                    })))
                })
            })
            .collect()
    }
    pub(super) fn remove(keys: &[&str]) -> Vec<RequestAction> {
        keys.iter()
            .map(|k| action(or_map_update::Action::Remove((*k).into())))
            .collect()
    }
    pub(super) fn clear() -> Vec<RequestAction> {
        vec![action(or_map_update::Action::Clear(true))]
    }
}

mod vote {
    use super::*;
    pub(super) fn state(self_vote: bool, votes_for: i32, total_voters: i32) -> Response {
        response(Value::Vote(VoteValue {
            self_vote,
            votes_for,
            total_voters,
        }))
    }
    pub(super) fn update_with(self_vote: bool) -> Update {
        upd(update::Update::Vote(VoteUpdate { self_vote }))
    }
    pub(super) fn vote(self_vote: bool) -> Vec<RequestAction> {
        vec![request_update(update_with(self_vote))]
    }
    /// The delta of a local vote: only `self_vote`.
    pub(super) fn delta(self_vote: bool) -> CrdtDelta {
        crdt::vote(self_vote, 0, 0)
    }
}

/// The TCK's `ORSet.delta` and `ORSet.update` with named defaults.
fn orset_delta(removed: &[&str], added: &[&str]) -> CrdtDelta {
    crdt::orset(false, removed, added)
}

fn ormap_delta(
    removed: &[&str],
    updated: Vec<(&str, CrdtDelta)>,
    added: Vec<(&str, CrdtDelta)>,
) -> CrdtDelta {
    crdt::ormap(false, removed, updated, added)
}

async fn server() -> TestServer {
    TestServer::start(tck_adapter::server()).await
}

async fn discover() -> pb::EntitySpec {
    let server = server().await;
    let driver = server.driver().await;
    driver.discover(proxy_info()).await.unwrap()
}

fn entity(spec: &pb::EntitySpec, name: &str) -> pb::Entity {
    spec.entities
        .iter()
        .find(|e| e.service_name == name)
        .unwrap_or_else(|| panic!("{name} not discovered"))
        .clone()
}

fn discovered_services(spec: &pb::EntitySpec) -> Vec<String> {
    let set =
        cloudstate_sdk::prost_types::FileDescriptorSet::decode(spec.proto.as_slice()).unwrap();
    set.file
        .iter()
        .flat_map(|f| {
            f.service
                .iter()
                .map(move |s| format!("{}.{}", f.package(), s.name()))
        })
        .collect()
}

// Discovery

#[tokio::test]
async fn crdt_entity_discovery() {
    let spec = discover().await;
    let services = discovered_services(&spec);
    for name in [SVC, TWO] {
        assert!(services.iter().any(|s| s == name), "{name} not declared");
    }
    assert_eq!(entity(&spec, SVC).entity_type, CRDT);
    assert_eq!(entity(&spec, TWO).entity_type, CRDT);
}

#[tokio::test]
async fn crdt_configured_entity() {
    let spec = discover().await;
    assert!(
        discovered_services(&spec).iter().any(|s| s == CONFIGURED),
        "{CONFIGURED} not declared"
    );
    let conf = entity(&spec, CONFIGURED);
    assert_eq!(conf.entity_type, CRDT);
    assert_eq!(
        conf.passivation_strategy,
        Some(pb::EntityPassivationStrategy {
            strategy: Some(pb::entity_passivation_strategy::Strategy::Timeout(
                pb::TimeoutPassivationStrategy { timeout: 100 }
            )),
        })
    );
}

/// Not in the TCK: a CRDT persistence id prefixes the data key, so each
/// service has its own; the adapter uses the full service names. Only the
/// configured service has a passivation strategy.
#[tokio::test]
async fn crdt_persistence_ids_and_strategies() {
    let spec = discover().await;
    for name in [SVC, TWO, CONFIGURED] {
        assert_eq!(entity(&spec, name).persistence_id, name);
    }
    assert_eq!(entity(&spec, SVC).passivation_strategy, None);
    assert_eq!(entity(&spec, TWO).passivation_strategy, None);
}

// GCounter

#[tokio::test]
async fn gcounter_initial_empty_state() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-1";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &gcounter::state(0))).await;
    c.passivate().await;
}

#[tokio::test]
async fn gcounter_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-2";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gcounter::increment_by(&[42]))).await;
    c.expect(reply(1, &gcounter::state(42)).update(crdt::gcounter(42)))
        .await;
    c.send(process(2, id, gcounter::increment_by(&[1, 2, 3])))
        .await;
    c.expect(reply(2, &gcounter::state(48)).update(crdt::gcounter(6)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn gcounter_initial_delta_in_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-3";
    c.send(crdt::init_with_delta(SVC, id, crdt::gcounter(42)))
        .await;
    c.send(process(1, id, gcounter::increment_by(&[123]))).await;
    c.expect(reply(1, &gcounter::state(165)).update(crdt::gcounter(123)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn gcounter_initial_empty_state_with_replicated_initial_delta() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-4";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(crdt::gcounter(42))).await;
    c.send(process(1, id, gcounter::increment_by(&[123]))).await;
    c.expect(reply(1, &gcounter::state(165)).update(crdt::gcounter(123)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn gcounter_mix_of_local_and_replicated_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-5";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gcounter::increment_by(&[1]))).await;
    c.expect(reply(1, &gcounter::state(1)).update(crdt::gcounter(1)))
        .await;
    c.send(crdt::delta(crdt::gcounter(2))).await;
    c.send(crdt::delta(crdt::gcounter(3))).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &gcounter::state(6))).await;
    c.send(process(3, id, gcounter::increment_by(&[4]))).await;
    c.expect(reply(3, &gcounter::state(10)).update(crdt::gcounter(4)))
        .await;
    c.send(crdt::delta(crdt::gcounter(5))).await;
    c.send(process(4, id, gcounter::increment_by(&[6]))).await;
    c.expect(reply(4, &gcounter::state(21)).update(crdt::gcounter(6)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn gcounter_rehydration_after_passivation() {
    let s = server().await;
    let d = s.driver().await;
    let id = "GCounter-6";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gcounter::increment_by(&[1]))).await;
    c.expect(reply(1, &gcounter::state(1)).update(crdt::gcounter(1)))
        .await;
    c.send(crdt::delta(crdt::gcounter(2))).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &gcounter::state(3))).await;
    c.send(process(3, id, gcounter::increment_by(&[3]))).await;
    c.expect(reply(3, &gcounter::state(6)).update(crdt::gcounter(3)))
        .await;
    c.passivate().await;

    let mut c = d.crdt().await;
    c.send(crdt::init_with_delta(SVC, id, crdt::gcounter(6)))
        .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &gcounter::state(6))).await;
    c.send(crdt::delta(crdt::gcounter(4))).await;
    c.send(process(2, id, gcounter::increment_by(&[5]))).await;
    c.expect(reply(2, &gcounter::state(15)).update(crdt::gcounter(5)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn gcounter_delete_action_received_from_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-7";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gcounter::increment_by(&[42]))).await;
    c.expect(reply(1, &gcounter::state(42)).update(crdt::gcounter(42)))
        .await;
    c.send(process(2, id, vec![request_delete()])).await;
    c.expect(reply(2, &gcounter::state(42)).delete()).await;
    c.passivate().await;
}

#[tokio::test]
async fn gcounter_delete_action_sent_to_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(SVC, "GCounter-8")).await;
    c.send(crdt::delete()).await;
    c.passivate().await;
}

// PNCounter

#[tokio::test]
async fn pncounter_initial_empty_state() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-9";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &pncounter::state(0))).await;
    c.passivate().await;
}

#[tokio::test]
async fn pncounter_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-10";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, pncounter::change_by(&[1, -2, 3])))
        .await;
    c.expect(reply(1, &pncounter::state(2)).update(crdt::pncounter(2)))
        .await;
    c.send(process(2, id, pncounter::change_by(&[-4, 5, -6])))
        .await;
    c.expect(reply(2, &pncounter::state(-3)).update(crdt::pncounter(-5)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn pncounter_initial_delta_in_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-11";
    c.send(crdt::init_with_delta(SVC, id, crdt::pncounter(42)))
        .await;
    c.send(process(1, id, pncounter::change_by(&[-123]))).await;
    c.expect(reply(1, &pncounter::state(-81)).update(crdt::pncounter(-123)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn pncounter_initial_empty_state_with_replicated_initial_delta() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-12";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(crdt::pncounter(-42))).await;
    c.send(process(1, id, pncounter::change_by(&[123]))).await;
    c.expect(reply(1, &pncounter::state(81)).update(crdt::pncounter(123)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn pncounter_mix_of_local_and_replicated_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-13";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, pncounter::change_by(&[1]))).await;
    c.expect(reply(1, &pncounter::state(1)).update(crdt::pncounter(1)))
        .await;
    c.send(crdt::delta(crdt::pncounter(-2))).await;
    c.send(crdt::delta(crdt::pncounter(3))).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &pncounter::state(2))).await;
    c.send(process(3, id, pncounter::change_by(&[-4]))).await;
    c.expect(reply(3, &pncounter::state(-2)).update(crdt::pncounter(-4)))
        .await;
    c.send(crdt::delta(crdt::pncounter(5))).await;
    c.send(process(4, id, pncounter::change_by(&[-6]))).await;
    c.expect(reply(4, &pncounter::state(-3)).update(crdt::pncounter(-6)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn pncounter_rehydration_after_passivation() {
    let s = server().await;
    let d = s.driver().await;
    let id = "PNCounter-14";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, pncounter::change_by(&[1]))).await;
    c.expect(reply(1, &pncounter::state(1)).update(crdt::pncounter(1)))
        .await;
    c.send(crdt::delta(crdt::pncounter(-2))).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &pncounter::state(-1))).await;
    c.send(process(3, id, pncounter::change_by(&[3]))).await;
    c.expect(reply(3, &pncounter::state(2)).update(crdt::pncounter(3)))
        .await;
    c.passivate().await;

    let mut c = d.crdt().await;
    c.send(crdt::init_with_delta(SVC, id, crdt::pncounter(2)))
        .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &pncounter::state(2))).await;
    c.send(crdt::delta(crdt::pncounter(-4))).await;
    c.send(process(2, id, pncounter::change_by(&[5]))).await;
    c.expect(reply(2, &pncounter::state(3)).update(crdt::pncounter(5)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn pncounter_delete_action_received_from_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-15";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, pncounter::change_by(&[42]))).await;
    c.expect(reply(1, &pncounter::state(42)).update(crdt::pncounter(42)))
        .await;
    c.send(process(2, id, vec![request_delete()])).await;
    c.expect(reply(2, &pncounter::state(42)).delete()).await;
    c.passivate().await;
}

#[tokio::test]
async fn pncounter_delete_action_sent_to_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(SVC, "PNCounter-16")).await;
    c.send(crdt::delete()).await;
    c.passivate().await;
}

// GSet

#[tokio::test]
async fn gset_initial_empty_state() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GSet-17";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &gset::state(&[]))).await;
    c.passivate().await;
}

#[tokio::test]
async fn gset_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GSet-18";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gset::add(&["a", "b"]))).await;
    c.expect_sorted(reply(1, &gset::state(&["a", "b"])).update(crdt::gset(&["a", "b"])))
        .await;
    c.send(process(2, id, gset::add(&["b", "c"]))).await;
    c.expect(reply(2, &gset::state(&["a", "b", "c"])).update(crdt::gset(&["c"])))
        .await;
    c.send(process(3, id, gset::add(&["c", "a"]))).await;
    c.expect(reply(3, &gset::state(&["a", "b", "c"]))).await;
    c.passivate().await;
}

#[tokio::test]
async fn gset_initial_delta_in_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GSet-19";
    c.send(crdt::init_with_delta(SVC, id, crdt::gset(&["a", "b", "c"])))
        .await;
    c.send(process(1, id, gset::add(&["c", "d", "e"]))).await;
    c.expect_sorted(
        reply(1, &gset::state(&["a", "b", "c", "d", "e"])).update(crdt::gset(&["d", "e"])),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn gset_initial_empty_state_with_replicated_initial_delta() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GSet-20";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(crdt::gset(&["x", "y"]))).await;
    c.send(process(1, id, gset::add(&["z"]))).await;
    c.expect(reply(1, &gset::state(&["x", "y", "z"])).update(crdt::gset(&["z"])))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn gset_mix_of_local_and_replicated_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GSet-21";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gset::add(&["a"]))).await;
    c.expect(reply(1, &gset::state(&["a"])).update(crdt::gset(&["a"])))
        .await;
    c.send(crdt::delta(crdt::gset(&["a"]))).await;
    c.send(crdt::delta(crdt::gset(&["b"]))).await;
    c.send(crdt::delta(crdt::gset(&["c"]))).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &gset::state(&["a", "b", "c"]))).await;
    c.send(process(3, id, gset::add(&["c", "d", "e"]))).await;
    c.expect_sorted(
        reply(3, &gset::state(&["a", "b", "c", "d", "e"])).update(crdt::gset(&["d", "e"])),
    )
    .await;
    c.send(crdt::delta(crdt::gset(&["f"]))).await;
    c.send(process(4, id, gset::add(&["g", "d", "b"]))).await;
    c.expect(
        reply(4, &gset::state(&["a", "b", "c", "d", "e", "f", "g"])).update(crdt::gset(&["g"])),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn gset_rehydration_after_passivation() {
    let s = server().await;
    let d = s.driver().await;
    let id = "GSet-22";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gset::add(&["a"]))).await;
    c.expect(reply(1, &gset::state(&["a"])).update(crdt::gset(&["a"])))
        .await;
    c.send(crdt::delta(crdt::gset(&["b"]))).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &gset::state(&["a", "b"]))).await;
    c.send(process(3, id, gset::add(&["c"]))).await;
    c.expect(reply(3, &gset::state(&["a", "b", "c"])).update(crdt::gset(&["c"])))
        .await;
    c.passivate().await;

    let mut c = d.crdt().await;
    c.send(crdt::init_with_delta(SVC, id, crdt::gset(&["a", "b", "c"])))
        .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &gset::state(&["a", "b", "c"]))).await;
    c.send(crdt::delta(crdt::gset(&["d"]))).await;
    c.send(process(2, id, gset::add(&["e"]))).await;
    c.expect(reply(2, &gset::state(&["a", "b", "c", "d", "e"])).update(crdt::gset(&["e"])))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn gset_delete_action_received_from_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GSet-23";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gset::add(&["x"]))).await;
    c.expect(reply(1, &gset::state(&["x"])).update(crdt::gset(&["x"])))
        .await;
    c.send(process(2, id, vec![request_delete()])).await;
    c.expect(reply(2, &gset::state(&["x"])).delete()).await;
    c.passivate().await;
}

#[tokio::test]
async fn gset_delete_action_sent_to_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(SVC, "GSet-24")).await;
    c.send(crdt::delete()).await;
    c.passivate().await;
}

// ORSet

#[tokio::test]
async fn orset_initial_empty_state() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORSet-25";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &orset::state(&[]))).await;
    c.passivate().await;
}

#[tokio::test]
async fn orset_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORSet-26";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, orset::add(&["a", "b"]))).await;
    c.expect_sorted(reply(1, &orset::state(&["a", "b"])).update(orset_delta(&[], &["a", "b"])))
        .await;
    c.send(process(2, id, orset::add(&["b", "c"]))).await;
    c.expect(reply(2, &orset::state(&["a", "b", "c"])).update(orset_delta(&[], &["c"])))
        .await;
    c.send(process(3, id, orset::add(&["c", "a"]))).await;
    c.expect(reply(3, &orset::state(&["a", "b", "c"]))).await;
    c.send(process(4, id, orset::remove(&["b", "d"]))).await;
    c.expect(reply(4, &orset::state(&["a", "c"])).update(orset_delta(&["b"], &[])))
        .await;
    c.send(process(
        5,
        id,
        [orset::remove(&["c", "d"]), orset::add(&["b", "c"])].concat(),
    ))
    .await;
    c.expect(reply(5, &orset::state(&["a", "b", "c"])).update(orset_delta(&[], &["b"])))
        .await;
    c.send(process(6, id, orset::clear())).await;
    c.expect(reply(6, &orset::state(&[])).update(crdt::orset(true, &[], &[])))
        .await;
    c.send(process(
        7,
        id,
        [orset::add(&["a"]), orset::clear(), orset::add(&["x"])].concat(),
    ))
    .await;
    c.expect(reply(7, &orset::state(&["x"])).update(crdt::orset(true, &[], &["x"])))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn orset_initial_delta_in_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORSet-27";
    c.send(crdt::init_with_delta(
        SVC,
        id,
        orset_delta(&[], &["a", "b", "c"]),
    ))
    .await;
    c.send(process(
        1,
        id,
        [orset::remove(&["c"]), orset::add(&["d"])].concat(),
    ))
    .await;
    c.expect(reply(1, &orset::state(&["a", "b", "d"])).update(orset_delta(&["c"], &["d"])))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn orset_initial_empty_state_with_replicated_initial_delta() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORSet-28";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(orset_delta(&[], &["x", "y"]))).await;
    c.send(process(
        1,
        id,
        [orset::remove(&["x"]), orset::add(&["z"])].concat(),
    ))
    .await;
    c.expect(reply(1, &orset::state(&["y", "z"])).update(orset_delta(&["x"], &["z"])))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn orset_mix_of_local_and_replicated_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORSet-29";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, orset::add(&["a"]))).await;
    c.expect(reply(1, &orset::state(&["a"])).update(orset_delta(&[], &["a"])))
        .await;
    c.send(crdt::delta(orset_delta(&[], &["a", "b"]))).await;
    c.send(crdt::delta(orset_delta(&[], &["c", "d"]))).await;
    c.send(crdt::delta(orset_delta(&["b", "d"], &[]))).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &orset::state(&["a", "c"]))).await;
    c.send(process(3, id, orset::add(&["c", "d", "e"]))).await;
    c.expect_sorted(
        reply(3, &orset::state(&["a", "c", "d", "e"])).update(orset_delta(&[], &["d", "e"])),
    )
    .await;
    c.send(crdt::delta(orset_delta(&["a", "c"], &["f"]))).await;
    c.send(process(
        4,
        id,
        [orset::add(&["g"]), orset::remove(&["a", "d"])].concat(),
    ))
    .await;
    c.expect(reply(4, &orset::state(&["e", "f", "g"])).update(orset_delta(&["d"], &["g"])))
        .await;
    c.send(crdt::delta(crdt::orset(true, &[], &["x", "y", "z"])))
        .await;
    c.send(process(
        5,
        id,
        [orset::add(&["q", "x"]), orset::remove(&["z"])].concat(),
    ))
    .await;
    c.expect(reply(5, &orset::state(&["q", "x", "y"])).update(orset_delta(&["z"], &["q"])))
        .await;
    c.send(crdt::delta(orset_delta(&["x", "y"], &["r", "p"])))
        .await;
    c.send(process(6, id, orset::add(&["s"]))).await;
    c.expect(reply(6, &orset::state(&["p", "q", "r", "s"])).update(orset_delta(&[], &["s"])))
        .await;
    c.send(crdt::delta(orset_delta(&[], &["a", "b", "c"])))
        .await;
    c.send(process(
        7,
        id,
        [orset::clear(), orset::add(&["abc"])].concat(),
    ))
    .await;
    c.expect(reply(7, &orset::state(&["abc"])).update(crdt::orset(true, &[], &["abc"])))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn orset_rehydration_after_passivation() {
    let s = server().await;
    let d = s.driver().await;
    let id = "ORSet-30";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, orset::add(&["a"]))).await;
    c.expect(reply(1, &orset::state(&["a"])).update(orset_delta(&[], &["a"])))
        .await;
    c.send(crdt::delta(orset_delta(&["a"], &["b"]))).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &orset::state(&["b"]))).await;
    c.send(process(3, id, orset::add(&["c"]))).await;
    c.expect(reply(3, &orset::state(&["b", "c"])).update(orset_delta(&[], &["c"])))
        .await;
    c.passivate().await;

    let mut c = d.crdt().await;
    c.send(crdt::init_with_delta(
        SVC,
        id,
        orset_delta(&[], &["b", "c"]),
    ))
    .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &orset::state(&["b", "c"]))).await;
    c.send(crdt::delta(crdt::orset(true, &[], &["p", "q"])))
        .await;
    c.send(process(
        2,
        id,
        [orset::add(&["x", "y"]), orset::remove(&["x"])].concat(),
    ))
    .await;
    c.expect(reply(2, &orset::state(&["p", "q", "y"])).update(orset_delta(&[], &["y"])))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn orset_delete_action_received_from_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORSet-31";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, orset::add(&["x"]))).await;
    c.expect(reply(1, &orset::state(&["x"])).update(orset_delta(&[], &["x"])))
        .await;
    c.send(process(2, id, vec![request_delete()])).await;
    c.expect(reply(2, &orset::state(&["x"])).delete()).await;
    c.passivate().await;
}

#[tokio::test]
async fn orset_delete_action_sent_to_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(SVC, "ORSet-32")).await;
    c.send(crdt::delete()).await;
    c.passivate().await;
}

// LWWRegister

#[tokio::test]
async fn lwwregister_initial_empty_state() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "LWWRegister-33";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &lwwregister::state("")).update(crdt::lwwregister("")))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn lwwregister_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "LWWRegister-34";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, lwwregister::set_to("one"))).await;
    c.expect(reply(1, &lwwregister::state("one")).update(crdt::lwwregister("one")))
        .await;
    c.send(process(2, id, lwwregister::set_to("two"))).await;
    c.expect(reply(2, &lwwregister::state("two")).update(crdt::lwwregister("two")))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn lwwregister_initial_delta_in_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "LWWRegister-35";
    c.send(crdt::init_with_delta(SVC, id, crdt::lwwregister("one")))
        .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &lwwregister::state("one"))).await;
    c.passivate().await;
}

#[tokio::test]
async fn lwwregister_initial_empty_state_with_replicated_initial_delta() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "LWWRegister-36";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(crdt::lwwregister("one"))).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &lwwregister::state("one"))).await;
    c.passivate().await;
}

#[tokio::test]
async fn lwwregister_mix_of_local_and_replicated_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "LWWRegister-37";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, lwwregister::set_to("A"))).await;
    c.expect(reply(1, &lwwregister::state("A")).update(crdt::lwwregister("A")))
        .await;
    c.send(crdt::delta(crdt::lwwregister("B"))).await;
    c.send(crdt::delta(crdt::lwwregister("C"))).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &lwwregister::state("C"))).await;
    c.send(process(3, id, lwwregister::set_to("D"))).await;
    c.expect(reply(3, &lwwregister::state("D")).update(crdt::lwwregister("D")))
        .await;
    c.send(crdt::delta(crdt::lwwregister("D"))).await;
    c.send(process(4, id, lwwregister::set_to("E"))).await;
    c.expect(reply(4, &lwwregister::state("E")).update(crdt::lwwregister("E")))
        .await;
    c.passivate().await;
}

/// The TCK sends command id 2 twice here; ported as it is.
#[tokio::test]
async fn lwwregister_state_changes_with_clock_settings() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "LWWRegister-38";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(
        1,
        id,
        lwwregister::set_to_with("A", LwwRegisterClockType::Reverse, 0),
    ))
    .await;
    c.expect(
        reply(1, &lwwregister::state("A")).update(crdt::lwwregister_with_clock(
            "A",
            CrdtClock::Reverse,
            0,
        )),
    )
    .await;
    c.send(process(
        2,
        id,
        lwwregister::set_to_with("A", LwwRegisterClockType::Custom, 123),
    ))
    .await;
    c.expect(
        reply(2, &lwwregister::state("A")).update(crdt::lwwregister_with_clock(
            "A",
            CrdtClock::Custom,
            123,
        )),
    )
    .await;
    c.send(process(
        2,
        id,
        lwwregister::set_to_with("A", LwwRegisterClockType::CustomAutoIncrement, 456),
    ))
    .await;
    c.expect(
        reply(2, &lwwregister::state("A")).update(crdt::lwwregister_with_clock(
            "A",
            CrdtClock::CustomAutoIncrement,
            456,
        )),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn lwwregister_rehydration_after_passivation() {
    let s = server().await;
    let d = s.driver().await;
    let id = "LWWRegister-39";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, lwwregister::set_to("A"))).await;
    c.expect(reply(1, &lwwregister::state("A")).update(crdt::lwwregister("A")))
        .await;
    c.send(crdt::delta(crdt::lwwregister("B"))).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &lwwregister::state("B"))).await;
    c.send(process(3, id, lwwregister::set_to("C"))).await;
    c.expect(reply(3, &lwwregister::state("C")).update(crdt::lwwregister("C")))
        .await;
    c.passivate().await;

    let mut c = d.crdt().await;
    c.send(crdt::init_with_delta(SVC, id, crdt::lwwregister("C")))
        .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &lwwregister::state("C"))).await;
    c.send(crdt::delta(crdt::lwwregister("D"))).await;
    c.send(process(2, id, lwwregister::set_to("E"))).await;
    c.expect(reply(2, &lwwregister::state("E")).update(crdt::lwwregister("E")))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn lwwregister_delete_action_received_from_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "LWWRegister-40";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, lwwregister::set_to("one"))).await;
    c.expect(reply(1, &lwwregister::state("one")).update(crdt::lwwregister("one")))
        .await;
    c.send(process(2, id, vec![request_delete()])).await;
    c.expect(reply(2, &lwwregister::state("one")).delete())
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn lwwregister_delete_action_sent_to_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(SVC, "LWWRegister-41")).await;
    c.send(crdt::delete()).await;
    c.passivate().await;
}

// Flag

#[tokio::test]
async fn flag_initial_empty_state() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Flag-42";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &flag::state(false))).await;
    c.passivate().await;
}

#[tokio::test]
async fn flag_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Flag-43";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, flag::enable())).await;
    c.expect(reply(1, &flag::state(true)).update(crdt::flag(true)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn flag_initial_delta_in_init() {
    let s = server().await;
    let d = s.driver().await;
    let id = "Flag-44";
    for enabled in [false, true] {
        let mut c = d.crdt().await;
        c.send(crdt::init_with_delta(SVC, id, crdt::flag(enabled)))
            .await;
        c.send(process(1, id, vec![])).await;
        c.expect(reply(1, &flag::state(enabled))).await;
        c.passivate().await;
    }
}

#[tokio::test]
async fn flag_initial_empty_state_with_replicated_initial_delta() {
    let s = server().await;
    let d = s.driver().await;
    let id = "Flag-45";
    for enabled in [false, true] {
        let mut c = d.crdt().await;
        c.send(crdt::init(SVC, id)).await;
        c.send(crdt::delta(crdt::flag(enabled))).await;
        c.send(process(1, id, vec![])).await;
        c.expect(reply(1, &flag::state(enabled))).await;
        c.passivate().await;
    }
}

#[tokio::test]
async fn flag_mix_of_local_and_replicated_state_changes() {
    let s = server().await;
    let d = s.driver().await;
    let id = "Flag-46";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(crdt::flag(false))).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &flag::state(false))).await;
    c.send(process(2, id, flag::enable())).await;
    c.expect(reply(2, &flag::state(true)).update(crdt::flag(true)))
        .await;
    c.send(crdt::delta(crdt::flag(true))).await;
    c.send(crdt::delta(crdt::flag(false))).await;
    c.send(process(3, id, vec![])).await;
    c.expect(reply(3, &flag::state(true))).await;
    c.passivate().await;

    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(crdt::flag(true))).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &flag::state(true))).await;
    c.send(process(2, id, flag::enable())).await;
    c.expect(reply(2, &flag::state(true))).await;
    c.send(crdt::delta(crdt::flag(true))).await;
    c.send(crdt::delta(crdt::flag(false))).await;
    c.send(process(3, id, vec![])).await;
    c.expect(reply(3, &flag::state(true))).await;
    c.passivate().await;
}

#[tokio::test]
async fn flag_rehydration_after_passivation() {
    let s = server().await;
    let d = s.driver().await;
    let id = "Flag-47";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &flag::state(false))).await;
    c.send(process(2, id, flag::enable())).await;
    c.expect(reply(2, &flag::state(true)).update(crdt::flag(true)))
        .await;
    c.passivate().await;

    let mut c = d.crdt().await;
    c.send(crdt::init_with_delta(SVC, id, crdt::flag(true)))
        .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &flag::state(true))).await;
    c.passivate().await;
}

#[tokio::test]
async fn flag_delete_action_received_from_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Flag-48";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, flag::enable())).await;
    c.expect(reply(1, &flag::state(true)).update(crdt::flag(true)))
        .await;
    c.send(process(2, id, vec![request_delete()])).await;
    c.expect(reply(2, &flag::state(true)).delete()).await;
    c.passivate().await;
}

#[tokio::test]
async fn flag_delete_action_sent_to_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(SVC, "Flag-49")).await;
    c.send(crdt::delete()).await;
    c.passivate().await;
}

// ORMap

#[tokio::test]
async fn ormap_initial_empty_state() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORMap-50";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &ormap::state(vec![]))).await;
    c.passivate().await;
}

#[tokio::test]
async fn ormap_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORMap-51";
    c.send(crdt::init(SVC, id)).await;

    c.send(process(1, id, ormap::add(&["PNCounter-1", "ORSet-1"])))
        .await;
    c.expect_sorted(
        reply(
            1,
            &ormap::state(vec![
                ("ORSet-1", orset::state(&[])),
                ("PNCounter-1", pncounter::state(0)),
            ]),
        )
        .update(ormap_delta(
            &[],
            vec![],
            vec![
                ("ORSet-1", orset_delta(&[], &[])),
                ("PNCounter-1", crdt::pncounter(0)),
            ],
        )),
    )
    .await;

    c.send(process(
        2,
        id,
        [
            ormap::add(&["ORSet-1"]),
            ormap::update_with(vec![("LWWRegister-1", lwwregister::set_to("zero"))]),
        ]
        .concat(),
    ))
    .await;
    c.expect_sorted(
        reply(
            2,
            &ormap::state(vec![
                ("LWWRegister-1", lwwregister::state("zero")),
                ("ORSet-1", orset::state(&[])),
                ("PNCounter-1", pncounter::state(0)),
            ]),
        )
        .update(ormap_delta(
            &[],
            vec![],
            vec![("LWWRegister-1", crdt::lwwregister("zero"))],
        )),
    )
    .await;

    c.send(process(
        3,
        id,
        ormap::update_with(vec![
            ("PNCounter-1", pncounter::change_by(&[42])),
            ("LWWRegister-1", lwwregister::set_to("one")),
        ]),
    ))
    .await;
    c.expect_sorted(
        reply(
            3,
            &ormap::state(vec![
                ("LWWRegister-1", lwwregister::state("one")),
                ("ORSet-1", orset::state(&[])),
                ("PNCounter-1", pncounter::state(42)),
            ]),
        )
        .update(ormap_delta(
            &[],
            vec![
                ("LWWRegister-1", crdt::lwwregister("one")),
                ("PNCounter-1", crdt::pncounter(42)),
            ],
            vec![],
        )),
    )
    .await;

    c.send(process(
        4,
        id,
        ormap::update_with(vec![("ORSet-1", orset::add(&["a", "b", "c"]))]),
    ))
    .await;
    c.expect_sorted(
        reply(
            4,
            &ormap::state(vec![
                ("LWWRegister-1", lwwregister::state("one")),
                ("ORSet-1", orset::state(&["a", "b", "c"])),
                ("PNCounter-1", pncounter::state(42)),
            ]),
        )
        .update(ormap_delta(
            &[],
            vec![("ORSet-1", orset_delta(&[], &["a", "b", "c"]))],
            vec![],
        )),
    )
    .await;

    c.send(process(
        5,
        id,
        ormap::update_with(vec![
            (
                "ORSet-1",
                [orset::remove(&["b"]), orset::add(&["d"])].concat(),
            ),
            ("PNCounter-1", pncounter::change_by(&[-123])),
            ("LWWRegister-1", lwwregister::set_to("two")),
        ]),
    ))
    .await;
    c.expect_sorted(
        reply(
            5,
            &ormap::state(vec![
                ("LWWRegister-1", lwwregister::state("two")),
                ("ORSet-1", orset::state(&["a", "c", "d"])),
                ("PNCounter-1", pncounter::state(-81)),
            ]),
        )
        .update(ormap_delta(
            &[],
            vec![
                ("LWWRegister-1", crdt::lwwregister("two")),
                ("ORSet-1", orset_delta(&["b"], &["d"])),
                ("PNCounter-1", crdt::pncounter(-123)),
            ],
            vec![],
        )),
    )
    .await;

    c.send(process(6, id, ormap::remove(&["ORSet-1"]))).await;
    c.expect_sorted(
        reply(
            6,
            &ormap::state(vec![
                ("LWWRegister-1", lwwregister::state("two")),
                ("PNCounter-1", pncounter::state(-81)),
            ]),
        )
        .update(ormap_delta(&["ORSet-1"], vec![], vec![])),
    )
    .await;

    c.send(process(
        7,
        id,
        [
            ormap::remove(&["LWWRegister-1"]),
            ormap::update_with(vec![("Flag-1", flag::enable())]),
        ]
        .concat(),
    ))
    .await;
    c.expect_sorted(
        reply(
            7,
            &ormap::state(vec![
                ("Flag-1", flag::state(true)),
                ("PNCounter-1", pncounter::state(-81)),
            ]),
        )
        .update(ormap_delta(
            &["LWWRegister-1"],
            vec![],
            vec![("Flag-1", crdt::flag(true))],
        )),
    )
    .await;

    c.send(process(8, id, ormap::clear())).await;
    c.expect(reply(8, &ormap::state(vec![])).update(crdt::ormap(true, &[], vec![], vec![])))
        .await;

    c.send(process(
        9,
        id,
        [
            ormap::add(&["PNCounter-2"]),
            ormap::clear(),
            ormap::update_with(vec![("GCounter-1", gcounter::increment_by(&[123]))]),
        ]
        .concat(),
    ))
    .await;
    c.expect_sorted(
        reply(9, &ormap::state(vec![("GCounter-1", gcounter::state(123))])).update(crdt::ormap(
            true,
            &[],
            vec![],
            vec![("GCounter-1", crdt::gcounter(123))],
        )),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn ormap_initial_delta_in_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORMap-52";
    c.send(crdt::init_with_delta(
        SVC,
        id,
        ormap_delta(
            &[],
            vec![],
            vec![
                ("PNCounter-1", crdt::pncounter(123)),
                ("LWWRegister-1", crdt::lwwregister("one")),
                ("GSet-1", crdt::gset(&["a", "b", "c"])),
            ],
        ),
    ))
    .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(
        1,
        &ormap::state(vec![
            ("GSet-1", gset::state(&["a", "b", "c"])),
            ("LWWRegister-1", lwwregister::state("one")),
            ("PNCounter-1", pncounter::state(123)),
        ]),
    ))
    .await;
    c.send(process(
        2,
        id,
        [
            ormap::remove(&["LWWRegister-1"]),
            ormap::update_with(vec![("PNCounter-1", pncounter::change_by(&[-42]))]),
        ]
        .concat(),
    ))
    .await;
    c.expect_sorted(
        reply(
            2,
            &ormap::state(vec![
                ("GSet-1", gset::state(&["a", "b", "c"])),
                ("PNCounter-1", pncounter::state(81)),
            ]),
        )
        .update(ormap_delta(
            &["LWWRegister-1"],
            vec![("PNCounter-1", crdt::pncounter(-42))],
            vec![],
        )),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn ormap_initial_empty_state_with_replicated_initial_delta() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORMap-53";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(ormap_delta(
        &[],
        vec![],
        vec![
            ("GCounter-1", crdt::gcounter(42)),
            ("ORSet-1", orset_delta(&[], &["a", "b", "c"])),
            ("Flag-1", crdt::flag(false)),
        ],
    )))
    .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(
        1,
        &ormap::state(vec![
            ("Flag-1", flag::state(false)),
            ("GCounter-1", gcounter::state(42)),
            ("ORSet-1", orset::state(&["a", "b", "c"])),
        ]),
    ))
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn ormap_mix_of_local_and_replicated_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORMap-54";
    c.send(crdt::init(SVC, id)).await;

    c.send(process(1, id, ormap::add(&["PNCounter-1"]))).await;
    c.expect_sorted(
        reply(1, &ormap::state(vec![("PNCounter-1", pncounter::state(0))])).update(ormap_delta(
            &[],
            vec![],
            vec![("PNCounter-1", crdt::pncounter(0))],
        )),
    )
    .await;

    c.send(crdt::delta(ormap_delta(
        &[],
        vec![],
        vec![("ORSet-1", orset_delta(&[], &["x"]))],
    )))
    .await;
    c.send(crdt::delta(ormap_delta(
        &[],
        vec![("ORSet-1", orset_delta(&[], &["y", "z"]))],
        vec![("LWWRegister-1", crdt::lwwregister("one"))],
    )))
    .await;

    c.send(process(
        2,
        id,
        [
            ormap::add(&["ORSet-2"]),
            ormap::update_with(vec![("LWWRegister-2", lwwregister::set_to("two"))]),
        ]
        .concat(),
    ))
    .await;
    c.expect_sorted(
        reply(
            2,
            &ormap::state(vec![
                ("LWWRegister-1", lwwregister::state("one")),
                ("LWWRegister-2", lwwregister::state("two")),
                ("ORSet-1", orset::state(&["x", "y", "z"])),
                ("ORSet-2", orset::state(&[])),
                ("PNCounter-1", pncounter::state(0)),
            ]),
        )
        .update(ormap_delta(
            &[],
            vec![],
            vec![
                ("LWWRegister-2", crdt::lwwregister("two")),
                ("ORSet-2", orset_delta(&[], &[])),
            ],
        )),
    )
    .await;

    c.send(process(
        3,
        id,
        ormap::update_with(vec![
            ("PNCounter-1", pncounter::change_by(&[42])),
            ("LWWRegister-1", lwwregister::set_to("ONE")),
        ]),
    ))
    .await;
    c.expect_sorted(
        reply(
            3,
            &ormap::state(vec![
                ("LWWRegister-1", lwwregister::state("ONE")),
                ("LWWRegister-2", lwwregister::state("two")),
                ("ORSet-1", orset::state(&["x", "y", "z"])),
                ("ORSet-2", orset::state(&[])),
                ("PNCounter-1", pncounter::state(42)),
            ]),
        )
        .update(ormap_delta(
            &[],
            vec![
                ("LWWRegister-1", crdt::lwwregister("ONE")),
                ("PNCounter-1", crdt::pncounter(42)),
            ],
            vec![],
        )),
    )
    .await;

    c.send(crdt::delta(ormap_delta(
        &["LWWRegister-2"],
        vec![],
        vec![(
            "ORMap-1",
            ormap_delta(&[], vec![], vec![("PNCounter-1", crdt::pncounter(123))]),
        )],
    )))
    .await;
    c.send(crdt::delta(ormap_delta(
        &["ORSet-1"],
        vec![
            ("ORSet-2", orset_delta(&[], &["a", "b", "c"])),
            (
                "ORMap-1",
                ormap_delta(
                    &[],
                    vec![],
                    vec![("LWWRegister-1", crdt::lwwregister("ABC"))],
                ),
            ),
        ],
        vec![],
    )))
    .await;

    c.send(process(
        4,
        id,
        ormap::update_with(vec![(
            "ORMap-1",
            ormap::update_with(vec![("PNCounter-1", pncounter::change_by(&[-456]))]),
        )]),
    ))
    .await;
    c.expect_sorted(
        reply(
            4,
            &ormap::state(vec![
                ("LWWRegister-1", lwwregister::state("ONE")),
                (
                    "ORMap-1",
                    ormap::state(vec![
                        ("LWWRegister-1", lwwregister::state("ABC")),
                        ("PNCounter-1", pncounter::state(-333)),
                    ]),
                ),
                ("ORSet-2", orset::state(&["a", "b", "c"])),
                ("PNCounter-1", pncounter::state(42)),
            ]),
        )
        .update(ormap_delta(
            &[],
            vec![(
                "ORMap-1",
                ormap_delta(&[], vec![("PNCounter-1", crdt::pncounter(-456))], vec![]),
            )],
            vec![],
        )),
    )
    .await;

    c.send(crdt::delta(crdt::ormap(
        true,
        &[],
        vec![],
        vec![("GSet-1", crdt::gset(&["1", "2", "3"]))],
    )))
    .await;
    c.send(process(
        5,
        id,
        [
            ormap::remove(&["PNCounter-1", "LWWRegister-1"]),
            ormap::update_with(vec![("GSet-1", gset::add(&["2", "4", "6"]))]),
        ]
        .concat(),
    ))
    .await;
    c.expect_sorted(
        reply(
            5,
            &ormap::state(vec![("GSet-1", gset::state(&["1", "2", "3", "4", "6"]))]),
        )
        .update(ormap_delta(
            &[],
            vec![("GSet-1", crdt::gset(&["4", "6"]))],
            vec![],
        )),
    )
    .await;

    c.send(process(
        6,
        id,
        [ormap::clear(), ormap::add(&["GCounter-1"])].concat(),
    ))
    .await;
    c.expect(
        reply(6, &ormap::state(vec![("GCounter-1", gcounter::state(0))])).update(crdt::ormap(
            true,
            &[],
            vec![],
            vec![("GCounter-1", crdt::gcounter(0))],
        )),
    )
    .await;

    c.send(crdt::delta(ormap_delta(
        &["GSet-1"],
        vec![],
        vec![("GCounter-1", crdt::gcounter(42))],
    )))
    .await;
    c.send(process(
        7,
        id,
        ormap::update_with(vec![("GCounter-1", gcounter::increment_by(&[7]))]),
    ))
    .await;
    c.expect(
        reply(7, &ormap::state(vec![("GCounter-1", gcounter::state(49))])).update(ormap_delta(
            &[],
            vec![("GCounter-1", crdt::gcounter(7))],
            vec![],
        )),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn ormap_rehydration_after_passivation() {
    let s = server().await;
    let d = s.driver().await;
    let id = "ORMap-55";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(ormap_delta(
        &[],
        vec![],
        vec![("PNCounter-1", crdt::pncounter(123))],
    )))
    .await;
    c.send(process(
        1,
        id,
        ormap::update_with(vec![("PNCounter-1", pncounter::change_by(&[321]))]),
    ))
    .await;
    c.expect(
        reply(
            1,
            &ormap::state(vec![("PNCounter-1", pncounter::state(444))]),
        )
        .update(ormap_delta(
            &[],
            vec![("PNCounter-1", crdt::pncounter(321))],
            vec![],
        )),
    )
    .await;
    c.passivate().await;

    let mut c = d.crdt().await;
    c.send(crdt::init_with_delta(
        SVC,
        id,
        ormap_delta(&[], vec![], vec![("PNCounter-1", crdt::pncounter(444))]),
    ))
    .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(
        1,
        &ormap::state(vec![("PNCounter-1", pncounter::state(444))]),
    ))
    .await;
    c.send(crdt::delta(ormap_delta(
        &[],
        vec![("PNCounter-1", crdt::pncounter(-42))],
        vec![],
    )))
    .await;
    c.send(process(
        2,
        id,
        ormap::update_with(vec![("PNCounter-1", pncounter::change_by(&[-360]))]),
    ))
    .await;
    c.expect(
        reply(
            2,
            &ormap::state(vec![("PNCounter-1", pncounter::state(42))]),
        )
        .update(ormap_delta(
            &[],
            vec![("PNCounter-1", crdt::pncounter(-360))],
            vec![],
        )),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn ormap_delete_action_received_from_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORMap-56";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, ormap::add(&["Flag-1"]))).await;
    c.expect(
        reply(1, &ormap::state(vec![("Flag-1", flag::state(false))])).update(ormap_delta(
            &[],
            vec![],
            vec![("Flag-1", crdt::flag(false))],
        )),
    )
    .await;
    c.send(process(
        2,
        id,
        [
            ormap::update_with(vec![("Flag-1", flag::enable())]),
            vec![request_delete()],
        ]
        .concat(),
    ))
    .await;
    c.expect(reply(2, &ormap::state(vec![("Flag-1", flag::state(true))])).delete())
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn ormap_delete_action_sent_to_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(SVC, "ORMap-57")).await;
    c.send(crdt::delete()).await;
    c.passivate().await;
}

// Vote

#[tokio::test]
async fn vote_initial_empty_state() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Vote-58";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &vote::state(false, 0, 1))).await;
    c.passivate().await;
}

#[tokio::test]
async fn vote_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Vote-59";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vote::vote(true))).await;
    c.expect(reply(1, &vote::state(true, 1, 1)).update(vote::delta(true)))
        .await;
    c.send(process(2, id, vote::vote(true))).await;
    c.expect(reply(2, &vote::state(true, 1, 1))).await;
    c.send(process(3, id, vote::vote(false))).await;
    c.expect(reply(3, &vote::state(false, 0, 1)).update(vote::delta(false)))
        .await;
    c.send(process(4, id, vote::vote(false))).await;
    c.expect(reply(4, &vote::state(false, 0, 1))).await;
    c.passivate().await;
}

#[tokio::test]
async fn vote_initial_delta_in_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Vote-60";
    c.send(crdt::init_with_delta(SVC, id, crdt::vote(true, 2, 3)))
        .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &vote::state(true, 2, 3))).await;
    c.send(process(2, id, vote::vote(false))).await;
    c.expect(reply(2, &vote::state(false, 1, 3)).update(vote::delta(false)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn vote_initial_empty_state_with_replicated_initial_delta() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Vote-61";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(crdt::vote(false, 3, 5))).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &vote::state(false, 3, 5))).await;
    c.send(process(2, id, vote::vote(true))).await;
    c.expect(reply(2, &vote::state(true, 4, 5)).update(vote::delta(true)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn vote_mix_of_local_and_replicated_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Vote-62";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::delta(crdt::vote(false, 2, 4))).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &vote::state(false, 2, 4))).await;
    c.send(process(2, id, vote::vote(true))).await;
    c.expect(reply(2, &vote::state(true, 3, 4)).update(vote::delta(true)))
        .await;
    c.send(crdt::delta(crdt::vote(true, 5, 7))).await;
    c.send(crdt::delta(crdt::vote(true, 4, 6))).await;
    c.send(process(3, id, vote::vote(false))).await;
    c.expect(reply(3, &vote::state(false, 3, 6)).update(vote::delta(false)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn vote_rehydration_after_passivation() {
    let s = server().await;
    let d = s.driver().await;
    let id = "Vote-63";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &vote::state(false, 0, 1))).await;
    c.send(crdt::delta(crdt::vote(false, 2, 5))).await;
    c.send(process(2, id, vote::vote(true))).await;
    c.expect(reply(2, &vote::state(true, 3, 5)).update(vote::delta(true)))
        .await;
    c.passivate().await;

    let mut c = d.crdt().await;
    c.send(crdt::init_with_delta(SVC, id, crdt::vote(true, 3, 5)))
        .await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &vote::state(true, 3, 5))).await;
    c.send(process(2, id, vote::vote(false))).await;
    c.expect(reply(2, &vote::state(false, 2, 5)).update(vote::delta(false)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn vote_delete_action_received_from_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Vote-64";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vote::vote(true))).await;
    c.expect(reply(1, &vote::state(true, 1, 1)).update(vote::delta(true)))
        .await;
    c.send(process(2, id, vec![request_delete()])).await;
    c.expect(reply(2, &vote::state(true, 1, 1)).delete()).await;
    c.passivate().await;
}

#[tokio::test]
async fn vote_delete_action_sent_to_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(SVC, "Vote-65")).await;
    c.send(crdt::delete()).await;
    c.passivate().await;
}

// Forwards and side effects

#[tokio::test]
async fn forward_to_second_service() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-66";
    let target = format!("X-{id}");
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gcounter::increment_by(&[42]))).await;
    c.expect(reply(1, &gcounter::state(42)).update(crdt::gcounter(42)))
        .await;
    c.send(process(2, id, vec![forward_to(&target)])).await;
    c.expect(forwarded(2, &target)).await;
    c.send(process(3, id, vec![])).await;
    c.expect(reply(3, &gcounter::state(42))).await;
    c.passivate().await;
}

#[tokio::test]
async fn forward_with_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-67";
    let target = format!("X-{id}");
    c.send(crdt::init(SVC, id)).await;
    c.send(process(
        1,
        id,
        [pncounter::change_by(&[-42]), vec![forward_to(&target)]].concat(),
    ))
    .await;
    c.expect(forwarded(1, &target).update(crdt::pncounter(-42)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn reply_with_side_effect_to_second_service() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GSet-68";
    let target = format!("X-{id}");
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gset::add(&["one"]))).await;
    c.expect(reply(1, &gset::state(&["one"])).update(crdt::gset(&["one"])))
        .await;
    c.send(process(2, id, vec![side_effect_to(&target, false)]))
        .await;
    c.expect(reply(2, &gset::state(&["one"])).side_effect(side_effect(&target, false)))
        .await;
    c.send(process(3, id, vec![])).await;
    c.expect(reply(3, &gset::state(&["one"]))).await;
    c.passivate().await;
}

#[tokio::test]
async fn synchronous_side_effect_to_second_service() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORSet-69";
    let target = format!("X-{id}");
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![side_effect_to(&target, true)]))
        .await;
    c.expect(reply(1, &orset::state(&[])).side_effect(side_effect(&target, true)))
        .await;
    c.passivate().await;
}

/// The register's creation delta goes out with this first reply, a forward.
#[tokio::test]
async fn forward_and_side_effect_to_second_service() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "LWWRegister-70";
    let (a, b) = (format!("A-{id}"), format!("B-{id}"));
    c.send(crdt::init(SVC, id)).await;
    c.send(process(
        1,
        id,
        vec![side_effect_to(&b, false), forward_to(&a)],
    ))
    .await;
    c.expect(
        forwarded(1, &a)
            .update(crdt::lwwregister(""))
            .side_effect(side_effect(&b, false)),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn reply_with_multiple_side_effects() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Flag-71";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, side_effects_to(&["1", "2", "3"])))
        .await;
    c.expect(
        reply(1, &flag::state(false))
            .side_effect(side_effect("1", false))
            .side_effect(side_effect("2", false))
            .side_effect(side_effect("3", false)),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn reply_with_multiple_side_effects_and_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "ORMap-72";
    let actions = [
        ormap::add(&["PNCounter-1"]),
        ormap::update_with(vec![("GSet-1", gset::add(&["a", "b", "c"]))]),
        side_effects_to(&["1", "2", "3"]),
    ]
    .concat();
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, actions)).await;
    c.expect_sorted(
        reply(
            1,
            &ormap::state(vec![
                ("GSet-1", gset::state(&["a", "b", "c"])),
                ("PNCounter-1", pncounter::state(0)),
            ]),
        )
        .update(ormap_delta(
            &[],
            vec![],
            vec![
                ("GSet-1", crdt::gset(&["a", "b", "c"])),
                ("PNCounter-1", crdt::pncounter(0)),
            ],
        ))
        .side_effect(side_effect("1", false))
        .side_effect(side_effect("2", false))
        .side_effect(side_effect("3", false)),
    )
    .await;
    c.passivate().await;
}

// Failures

#[tokio::test]
async fn failure_action() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-73";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![fail_with("expected failure")]))
        .await;
    c.expect(crdt::failure(1, "expected failure")).await;
    c.passivate().await;
}

#[tokio::test]
async fn connection_after_failure_action() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-74";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, pncounter::change_by(&[42]))).await;
    c.expect(reply(1, &pncounter::state(42)).update(crdt::pncounter(42)))
        .await;
    c.send(process(2, id, vec![fail_with("expected failure")]))
        .await;
    c.expect(crdt::failure(2, "expected failure")).await;
    c.send(process(3, id, vec![])).await;
    c.expect(reply(3, &pncounter::state(42))).await;
    c.passivate().await;
}

// Streamed responses

#[tokio::test]
async fn streamed_responses() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-75";
    c.send(crdt::init(SVC, id)).await;
    c.send(process_streamed(1, id, &streamed_req(id))).await;
    c.expect(reply(1, &gcounter::state(0)).streamed()).await;
    c.send(process(2, id, gcounter::increment_by(&[1]))).await;
    c.expect(reply(2, &gcounter::state(1)).update(crdt::gcounter(1)))
        .await;
    c.expect(streamed(1, &gcounter::state(1))).await;
    c.send(process(3, id, gcounter::increment_by(&[2]))).await;
    c.expect(reply(3, &gcounter::state(3)).update(crdt::gcounter(2)))
        .await;
    c.expect(streamed(1, &gcounter::state(3))).await;
    c.send(process(4, id, gcounter::increment_by(&[3]))).await;
    c.expect(reply(4, &gcounter::state(6)).update(crdt::gcounter(3)))
        .await;
    c.expect(streamed(1, &gcounter::state(6))).await;
    c.passivate().await;
}

#[tokio::test]
async fn streamed_responses_with_stream_ending_action() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-76";
    c.send(crdt::init(SVC, id)).await;
    let request = StreamedRequest {
        end_state: gcounter::state(3).state,
        ..streamed_req(id)
    };
    c.send(process_streamed(1, id, &request)).await;
    c.expect(reply(1, &gcounter::state(0)).streamed()).await;
    c.send(process(2, id, gcounter::increment_by(&[1]))).await;
    c.expect(reply(2, &gcounter::state(1)).update(crdt::gcounter(1)))
        .await;
    c.expect(streamed(1, &gcounter::state(1))).await;
    c.send(process(3, id, gcounter::increment_by(&[2]))).await;
    c.expect(reply(3, &gcounter::state(3)).update(crdt::gcounter(2)))
        .await;
    c.expect(streamed(1, &gcounter::state(3)).end_stream())
        .await;
    c.send(process(4, id, gcounter::increment_by(&[3]))).await;
    c.expect(reply(4, &gcounter::state(6)).update(crdt::gcounter(3)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn streamed_responses_with_cancellation() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-77";
    c.send(crdt::init(SVC, id)).await;
    let request = StreamedRequest {
        cancel_update: Some(pncounter::update_with(-42)),
        ..streamed_req(id)
    };
    c.send(process_streamed(1, id, &request)).await;
    c.expect(reply(1, &pncounter::state(0)).streamed()).await;
    c.send(process(2, id, pncounter::change_by(&[10]))).await;
    c.expect(reply(2, &pncounter::state(10)).update(crdt::pncounter(10)))
        .await;
    c.expect(streamed(1, &pncounter::state(10))).await;
    c.send(process(3, id, pncounter::change_by(&[20]))).await;
    c.expect(reply(3, &pncounter::state(30)).update(crdt::pncounter(20)))
        .await;
    c.expect(streamed(1, &pncounter::state(30))).await;
    c.send(crdt::stream_cancelled(1, id)).await;
    c.expect(crdt::stream_cancelled_response(1).update(crdt::pncounter(-42)))
        .await;
    c.send(process(4, id, vec![])).await;
    c.expect(reply(4, &pncounter::state(-12))).await;
    c.send(process(5, id, pncounter::change_by(&[30]))).await;
    c.expect(reply(5, &pncounter::state(18)).update(crdt::pncounter(30)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn empty_streamed_responses_with_cancellation() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-78";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, pncounter::change_by(&[10]))).await;
    c.expect(reply(1, &pncounter::state(10)).update(crdt::pncounter(10)))
        .await;
    let request = StreamedRequest {
        cancel_update: Some(pncounter::update_with(-42)),
        empty: true,
        ..streamed_req(id)
    };
    c.send(process_streamed(2, id, &request)).await;
    c.expect(crdt::no_reply(2).streamed()).await;
    c.send(crdt::stream_cancelled(2, id)).await;
    c.expect(crdt::stream_cancelled_response(2).update(crdt::pncounter(-42)))
        .await;
    c.send(process(3, id, vec![])).await;
    c.expect(reply(3, &pncounter::state(-32))).await;
    c.passivate().await;
}

#[tokio::test]
async fn streamed_responses_with_side_effects() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GSet-79";
    c.send(crdt::init(SVC, id)).await;
    let request = StreamedRequest {
        effects: vec![
            Effect {
                id: "one".into(),
                synchronous: false,
            },
            Effect {
                id: "two".into(),
                synchronous: true,
            },
        ],
        ..streamed_req(id)
    };
    c.send(process_streamed(1, id, &request)).await;
    c.expect(reply(1, &gset::state(&[])).streamed()).await;
    c.send(process(2, id, gset::add(&["a"]))).await;
    c.expect(reply(2, &gset::state(&["a"])).update(crdt::gset(&["a"])))
        .await;
    c.expect(
        streamed(1, &gset::state(&["a"]))
            .side_effect(side_effect("one", false))
            .side_effect(side_effect("two", true)),
    )
    .await;
    c.send(process(3, id, gset::add(&["b"]))).await;
    c.expect(reply(3, &gset::state(&["a", "b"])).update(crdt::gset(&["b"])))
        .await;
    c.expect(
        streamed(1, &gset::state(&["a", "b"]))
            .side_effect(side_effect("one", false))
            .side_effect(side_effect("two", true)),
    )
    .await;
    c.passivate().await;
}

// Write consistency

#[tokio::test]
async fn write_consistency_can_be_configured() {
    fn increment_with(increment: u64, consistency: UpdateWriteConsistency) -> Vec<RequestAction> {
        vec![request_update(Update {
            write_consistency: consistency.into(),
            ..gcounter::update_with(increment)
        })]
    }
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-80";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(
        1,
        id,
        increment_with(1, UpdateWriteConsistency::Local),
    ))
    .await;
    c.expect(
        reply(1, &gcounter::state(1))
            .update(crdt::gcounter(1))
            .write_consistency(CrdtWriteConsistency::Local),
    )
    .await;
    c.send(process(
        2,
        id,
        increment_with(2, UpdateWriteConsistency::Majority),
    ))
    .await;
    c.expect(
        reply(2, &gcounter::state(3))
            .update(crdt::gcounter(2))
            .write_consistency(CrdtWriteConsistency::Majority),
    )
    .await;
    c.send(process(
        3,
        id,
        increment_with(3, UpdateWriteConsistency::All),
    ))
    .await;
    c.expect(
        reply(3, &gcounter::state(6))
            .update(crdt::gcounter(3))
            .write_consistency(CrdtWriteConsistency::All),
    )
    .await;
    c.passivate().await;
}

// The protocol traces of the TCK's proxy scenarios

#[tokio::test]
async fn proxy_state_changes() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "PNCounter-81";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &pncounter::state(0))).await;
    c.send(process(2, id, pncounter::change_by(&[1, -2, 3])))
        .await;
    c.expect(reply(2, &pncounter::state(2)).update(crdt::pncounter(2)))
        .await;
    c.send(process(3, id, pncounter::change_by(&[4, -5, 6])))
        .await;
    c.expect(reply(3, &pncounter::state(7)).update(crdt::pncounter(5)))
        .await;
    c.send(process(4, id, vec![request_delete()])).await;
    c.expect(reply(4, &pncounter::state(7)).delete()).await;
    c.passivate().await;
}

#[tokio::test]
async fn proxy_forwards_and_side_effects() {
    let s = server().await;
    let d = s.driver().await;
    let id = "GSet-82";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gset::add(&["one"]))).await;
    c.expect(reply(1, &gset::state(&["one"])).update(crdt::gset(&["one"])))
        .await;
    c.send(process(2, id, vec![forward_to(id)])).await;
    c.expect(forwarded(2, id)).await;

    let mut two = d.crdt().await;
    two.send(crdt::init(TWO, id)).await;
    two.send(crdt::command(1, id, "Call", &req(id, vec![])))
        .await;
    two.expect(reply(1, &Response::default())).await;

    c.send(process(3, id, vec![side_effect_to(id, false)]))
        .await;
    c.expect(reply(3, &gset::state(&["one"])).side_effect(side_effect(id, false)))
        .await;
    two.send(crdt::command(2, id, "Call", &req(id, vec![])))
        .await;
    two.expect(reply(2, &Response::default())).await;

    c.send(process(4, id, vec![request_delete()])).await;
    c.expect(reply(4, &gset::state(&["one"])).delete()).await;
    c.passivate().await;

    two.send(crdt::command(
        3,
        id,
        "Call",
        &req(id, vec![request_delete()]),
    ))
    .await;
    two.expect(reply(3, &Response::default()).delete()).await;
    two.passivate().await;
}

#[tokio::test]
async fn proxy_failures() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-83";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gcounter::increment_by(&[42]))).await;
    c.expect(reply(1, &gcounter::state(42)).update(crdt::gcounter(42)))
        .await;
    c.send(process(2, id, vec![fail_with("expected failure")]))
        .await;
    c.expect(crdt::failure(2, "expected failure")).await;
    c.send(process(3, id, vec![request_delete()])).await;
    c.expect(reply(3, &gcounter::state(42)).delete()).await;
    c.passivate().await;
}

#[tokio::test]
async fn proxy_streamed_responses_for_connection_tracking() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Vote-84";
    let state0 = vote::state(false, 0, 1);
    let state1 = vote::state(true, 1, 1);
    c.send(crdt::init(SVC, id)).await;

    c.send(process_streamed(1, id, &streamed_req(id))).await;
    c.expect(reply(1, &state0).streamed()).await;

    let connect = StreamedRequest {
        initial_update: Some(vote::update_with(true)),
        cancel_update: Some(vote::update_with(false)),
        empty: true,
        ..streamed_req(id)
    };
    c.send(process_streamed(2, id, &connect)).await;
    c.expect(crdt::no_reply(2).update(vote::delta(true)).streamed())
        .await;
    c.expect(streamed(1, &state1)).await;

    c.send(crdt::stream_cancelled(2, id)).await;
    c.expect(crdt::stream_cancelled_response(2).update(vote::delta(false)))
        .await;
    c.expect(streamed(1, &state0)).await;

    c.send(crdt::stream_cancelled(1, id)).await;
    c.expect(crdt::stream_cancelled_response(1)).await;

    c.send(process(3, id, vec![request_delete()])).await;
    c.expect(reply(3, &state0).delete()).await;
    c.passivate().await;
}

/// The proxy transcodes the HTTP bodies into these commands.
#[tokio::test]
async fn proxy_http_api() {
    let s = server().await;
    let d = s.driver().await;
    let id = "PNCounter-85";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, vec![])).await;
    c.expect(reply(1, &pncounter::state(0))).await;

    let mut two = d.crdt().await;
    two.send(crdt::init(TWO, id)).await;
    two.send(crdt::command(1, id, "Call", &req(id, vec![])))
        .await;
    two.expect(reply(1, &Response::default())).await;

    c.send(process(2, id, pncounter::change_by(&[42]))).await;
    c.expect(reply(2, &pncounter::state(42)).update(crdt::pncounter(42)))
        .await;
    c.send(process(3, id, vec![fail_with("expected failure")]))
        .await;
    c.expect(crdt::failure(3, "expected failure")).await;
    c.send(process(4, id, pncounter::change_by(&[-123]))).await;
    c.expect(reply(4, &pncounter::state(-81)).update(crdt::pncounter(-123)))
        .await;
    c.send(process(5, id, vec![request_delete()])).await;
    c.expect(reply(5, &pncounter::state(-81)).delete()).await;
    c.passivate().await;
    two.passivate().await;
}

/// The proxy closes the stream 100 ms after the reply (the timeout is
/// checked in `crdt_configured_entity`); the entity completes cleanly.
#[tokio::test]
async fn proxy_passivation_timeout() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "Configured-86";
    c.send(crdt::init(CONFIGURED, id)).await;
    c.send(crdt::command(1, id, "Call", &req(id, vec![]))).await;
    c.expect(reply(1, &Response::default())).await;
    c.passivate().await;
}

// Not in the TCK

/// A failure after changes in the same command leaves the CRDT as it was:
/// nothing of the failed command shows in the state or in a later delta.
#[tokio::test]
async fn failure_after_changes_rolls_back_the_crdt() {
    let s = server().await;
    let d = s.driver().await;

    let id = "GCounter-rollback";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, gcounter::increment_by(&[5]))).await;
    c.expect(reply(1, &gcounter::state(5)).update(crdt::gcounter(5)))
        .await;
    c.send(process(
        2,
        id,
        [
            gcounter::increment_by(&[7]),
            vec![side_effect_to("x", false), fail_with("failure 1")],
        ]
        .concat(),
    ))
    .await;
    c.expect(crdt::failure(2, "failure 1")).await;
    c.send(process(3, id, vec![])).await;
    c.expect(reply(3, &gcounter::state(5))).await;
    c.send(process(4, id, gcounter::increment_by(&[1]))).await;
    c.expect(reply(4, &gcounter::state(6)).update(crdt::gcounter(1)))
        .await;
    c.passivate().await;

    let id = "ORMap-rollback";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, ormap::add(&["ORSet-1"]))).await;
    c.expect(
        reply(1, &ormap::state(vec![("ORSet-1", orset::state(&[]))])).update(ormap_delta(
            &[],
            vec![],
            vec![("ORSet-1", orset_delta(&[], &[]))],
        )),
    )
    .await;
    c.send(process(
        2,
        id,
        [
            ormap::update_with(vec![("ORSet-1", orset::add(&["a"]))]),
            ormap::add(&["PNCounter-1"]),
            vec![fail_with("failure 2")],
        ]
        .concat(),
    ))
    .await;
    c.expect(crdt::failure(2, "failure 2")).await;
    c.send(process(
        3,
        id,
        ormap::update_with(vec![("ORSet-1", orset::add(&["b"]))]),
    ))
    .await;
    c.expect(
        reply(3, &ormap::state(vec![("ORSet-1", orset::state(&["b"]))])).update(ormap_delta(
            &[],
            vec![("ORSet-1", orset_delta(&[], &["b"]))],
            vec![],
        )),
    )
    .await;
    c.send(process(
        4,
        id,
        vec![request_delete(), fail_with("failure 3")],
    ))
    .await;
    c.expect(crdt::failure(4, "failure 3")).await;
    c.send(process(5, id, vec![])).await;
    c.expect(reply(
        5,
        &ormap::state(vec![("ORSet-1", orset::state(&["b"]))]),
    ))
    .await;
    c.passivate().await;

    // The register's creation delta waits for the first successful reply.
    let id = "LWWRegister-rollback";
    let mut c = d.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(
        1,
        id,
        [lwwregister::set_to("x"), vec![fail_with("failure 4")]].concat(),
    ))
    .await;
    c.expect(crdt::failure(1, "failure 4")).await;
    c.send(process(2, id, vec![])).await;
    c.expect(reply(2, &lwwregister::state("")).update(crdt::lwwregister("")))
        .await;
    c.send(process(3, id, vec![])).await;
    c.expect(reply(3, &lwwregister::state(""))).await;
    c.passivate().await;
}

/// Subscribers hear of every change, the proxy's deltas included, and of
/// nothing else: not of commands that change nothing or fail.
#[tokio::test]
async fn subscribers_see_proxy_deltas_but_not_unchanged_or_failed_commands() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GSet-subscribers";
    c.send(crdt::init(SVC, id)).await;
    c.send(process_streamed(1, id, &streamed_req(id))).await;
    c.expect(reply(1, &gset::state(&[])).streamed()).await;

    c.send(crdt::delta(crdt::gset(&["a"]))).await;
    c.expect(streamed(1, &gset::state(&["a"]))).await;

    c.send(process(2, id, gset::add(&["a"]))).await;
    c.expect(reply(2, &gset::state(&["a"]))).await;
    c.send(process(
        3,
        id,
        [gset::add(&["b"]), vec![fail_with("no")]].concat(),
    ))
    .await;
    c.expect(crdt::failure(3, "no")).await;

    c.send(process(4, id, gset::add(&["c"]))).await;
    c.expect(reply(4, &gset::state(&["a", "c"])).update(crdt::gset(&["c"])))
        .await;
    c.expect(streamed(1, &gset::state(&["a", "c"]))).await;
    c.passivate().await;
}
