//! Bad input to CRDT entities never crashes the user function and never
//! touches other entities: a protocol error gets one stream-level failure
//! that names the service, the entity and what was wrong, then the stream
//! ends; a bad command gets a command failure on a live stream. After each
//! case a healthy entity of the same server still answers.
//!
//! The wording of the descriptions is the runtime's; the checks look for the
//! names and the culprit only (case-insensitively), and leave the failure's
//! command id free (the proxy ignores a stream-level failure either way
//! before it tears the entity down).
//!
//! The TCK model has no action that panics, so the handler panic runs on a
//! small entity of its own (`Faulty`) in the `CrdtTwo` slot.

use cloudstate_sdk::crdt::{CrdtContext, CrdtEntity, CrdtOptions, GCounter};
use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate::Failure as PbFailure;
use cloudstate_sdk::protocol::cloudstate::client_action::Action as ClientAction;
use cloudstate_sdk::protocol::cloudstate::crdt::{
    CrdtStreamIn, CrdtStreamOut, crdt_stream_out::Message as Out,
};
use cloudstate_sdk::testkit::{DriverStream, TestServer, crdt};
use cloudstate_sdk::{CloudState, Command, Failure, Reply};
use tck_adapter::proto::cloudstate::tck::model::crdt::{
    Effect, GCounterUpdate, GCounterValue, Request, RequestAction, Response, State, Update,
    crdt_tck_model, crdt_two, request_action::Action, state::Value, update,
};

const SVC: &str = "cloudstate.tck.model.crdt.CrdtTckModel";
const FAULTY: &str = "cloudstate.tck.model.crdt.CrdtTwo";
const REQUEST_URL: &str = "type.googleapis.com/cloudstate.tck.model.crdt.Request";

async fn server() -> TestServer {
    TestServer::start(tck_adapter::server()).await
}

/// Applies the GCounter increments of a `Request` and adds a side effect,
/// then panics when the request id is `panic`.
struct Faulty;

impl CrdtEntity for Faulty {
    type State = GCounter;

    fn initial_state(&self, _: &str) -> GCounter {
        GCounter::new()
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CrdtContext<'_, GCounter>,
    ) -> Result<Option<Reply>, Failure> {
        let request: Request = command.decode()?;
        for action in request.actions.iter().filter_map(|a| a.action.as_ref()) {
            if let Action::Update(Update {
                update: Some(update::Update::Gcounter(u)),
                ..
            }) = action
            {
                ctx.state_mut().increment(u.increment);
            }
        }
        ctx.effect(crdt_two::call(&increments("x", &[])), false);
        assert!(request.id != "panic", "boom in the handler");
        Ok(Some(Reply::encode(&counter(ctx.state().value()))))
    }
}

/// The TCK model and `Faulty`.
async fn faulty_server() -> TestServer {
    let server = CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .register(
            crdt_tck_model::Entity(tck_adapter::crdt::TckModel),
            CrdtOptions::new().persistence_id("model"),
        )
        .crdt(FAULTY, Faulty, CrdtOptions::new().persistence_id("faulty"));
    TestServer::start(server).await
}

fn increments(id: &str, by: &[u64]) -> Request {
    Request {
        id: id.into(),
        actions: by
            .iter()
            .map(|i| RequestAction {
                action: Some(Action::Update(Update {
                    update: Some(update::Update::Gcounter(GCounterUpdate { increment: *i })),
                    write_consistency: 0,
                })),
            })
            .collect(),
    }
}

fn process(n: i64, id: &str, by: &[u64]) -> CrdtStreamIn {
    crdt::command(n, id, "Process", &increments(id, by))
}

fn counter(value: u64) -> Response {
    Response {
        state: Some(State {
            value: Some(Value::Gcounter(GCounterValue { value })),
        }),
    }
}

/// After a bad input elsewhere, a fresh entity of the same server works.
async fn assert_other_entity_works(server: &TestServer) {
    let id = "GCounter-healthy";
    let mut c = server.driver().await.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, &[5])).await;
    c.expect(crdt::reply(1, &counter(5)).update(crdt::gcounter(5)))
        .await;
    c.send(process(2, id, &[])).await;
    c.expect(crdt::reply(2, &counter(5))).await;
    c.passivate().await;
}

fn assert_mentions(description: &str, parts: &[&str]) {
    let lower = description.to_lowercase();
    for part in parts {
        assert!(
            lower.contains(&part.to_lowercase()),
            "[{description}] does not mention [{part}]"
        );
    }
}

/// Expects one stream-level failure mentioning every part, then the end of
/// the stream with OK.
async fn expect_stream_failure(c: &mut DriverStream<CrdtStreamIn, CrdtStreamOut>, parts: &[&str]) {
    let out = c.next_message().await;
    let Some(Out::Failure(PbFailure {
        description,
        restart,
        ..
    })) = out.message
    else {
        panic!("expected a stream-level failure, got {out:?}");
    };
    assert!(!restart, "{description}");
    assert_mentions(&description, parts);
    c.expect_closed().await;
}

/// Expects a command failure: a reply with only the failure action, which
/// mentions every part.
async fn expect_command_failure(
    c: &mut DriverStream<CrdtStreamIn, CrdtStreamOut>,
    command_id: i64,
    parts: &[&str],
) {
    let out = c.next_message().await;
    let Some(Out::Reply(reply)) = out.message else {
        panic!("expected a reply, got {out:?}")
    };
    assert_eq!(reply.command_id, command_id, "{reply:?}");
    assert!(
        reply.state_action.is_none() && reply.side_effects.is_empty() && !reply.streamed,
        "a failure carries nothing else: {reply:?}"
    );
    let Some(ClientAction::Failure(failure)) = reply.client_action.and_then(|a| a.action) else {
        panic!("expected a failure action")
    };
    assert_eq!(failure.command_id, command_id);
    assert!(!failure.restart, "{}", failure.description);
    assert_mentions(&failure.description, parts);
}

#[tokio::test]
async fn delta_before_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::delta(crdt::gcounter(1))).await;
    expect_stream_failure(&mut c, &["init", "delta"]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn command_before_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(process(1, "GCounter-a", &[1])).await;
    expect_stream_failure(&mut c, &["init", "command"]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn second_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-a";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::init(SVC, id)).await;
    expect_stream_failure(&mut c, &["init", SVC, id]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn init_for_unknown_service() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init("no.such.Service", "GCounter-a")).await;
    expect_stream_failure(&mut c, &["no.such.Service", "GCounter-a"]).await;
    assert_other_entity_works(&s).await;
}

/// A service that exists, but as another entity type, is not a CRDT.
#[tokio::test]
async fn init_for_a_value_entity_service() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let ve = "cloudstate.tck.model.valueentity.ValueEntityTckModel";
    c.send(crdt::init(ve, "GCounter-a")).await;
    expect_stream_failure(&mut c, &[ve, "GCounter-a"]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn empty_message() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-a";
    c.send(crdt::init(SVC, id)).await;
    c.send(CrdtStreamIn { message: None }).await;
    expect_stream_failure(&mut c, &["empty", SVC, id]).await;
    assert_other_entity_works(&s).await;
}

/// The entity's CRDT came with init; a delta of another type cannot apply.
#[tokio::test]
async fn delta_of_the_wrong_crdt_type() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-a";
    c.send(crdt::init_with_delta(SVC, id, crdt::gcounter(3)))
        .await;
    c.send(crdt::delta(crdt::orset(false, &[], &["x"]))).await;
    expect_stream_failure(&mut c, &["GCounter", "ORSet", SVC, id]).await;
    assert_other_entity_works(&s).await;
}

/// The entity had no value from the proxy, so it made its own GCounter; an
/// ORSet delta does not fit it.
#[tokio::test]
async fn delta_of_the_wrong_crdt_type_after_an_empty_init() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-a";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, &[2])).await;
    c.expect(crdt::reply(1, &counter(2)).update(crdt::gcounter(2)))
        .await;
    c.send(crdt::delta(crdt::orset(false, &[], &["x"]))).await;
    expect_stream_failure(&mut c, &["GCounter", "ORSet", SVC, id]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn command_after_the_proxy_deleted_the_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-a";
    c.send(crdt::init_with_delta(SVC, id, crdt::gcounter(3)))
        .await;
    c.send(crdt::delete()).await;
    c.send(process(1, id, &[1])).await;
    expect_stream_failure(&mut c, &["delete", SVC, id]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn stream_cancelled_for_an_unknown_command() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-a";
    c.send(crdt::init(SVC, id)).await;
    c.send(process(1, id, &[1])).await;
    c.expect(crdt::reply(1, &counter(1)).update(crdt::gcounter(1)))
        .await;
    // Command 1 was not streamed, 77 never existed.
    c.send(crdt::stream_cancelled(77, id)).await;
    expect_stream_failure(&mut c, &["77", SVC, id]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn command_for_another_entity() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(SVC, "GCounter-a")).await;
    c.send(process(4, "GCounter-b", &[1])).await;
    expect_stream_failure(&mut c, &["GCounter-a", "GCounter-b", SVC]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn command_without_payload() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-a";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::command_any(1, id, "Process", None)).await;
    expect_stream_failure(&mut c, &["payload", "Process", SVC, id]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn unknown_command_keeps_the_stream() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-a";
    c.send(crdt::init_with_delta(SVC, id, crdt::gcounter(3)))
        .await;
    c.send(crdt::command(1, id, "Explode", &increments(id, &[1])))
        .await;
    expect_command_failure(&mut c, 1, &["Explode", SVC, id]).await;
    c.send(process(2, id, &[1])).await;
    c.expect(crdt::reply(2, &counter(4)).update(crdt::gcounter(1)))
        .await;
    c.passivate().await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn undecodable_payload_keeps_the_stream_and_the_state() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-a";
    c.send(crdt::init_with_delta(SVC, id, crdt::gcounter(3)))
        .await;
    let garbage = Any {
        type_url: REQUEST_URL.into(),
        value: vec![0x0a, 0xff, 0x01],
    };
    c.send(crdt::command_any(1, id, "Process", Some(garbage)))
        .await;
    expect_command_failure(&mut c, 1, &["Process", SVC, id, REQUEST_URL]).await;
    c.send(process(2, id, &[])).await;
    c.expect(crdt::reply(2, &counter(3))).await;
    c.passivate().await;
    assert_other_entity_works(&s).await;
}

/// `Command.streamed` set on a unary method: the proxy never does this; the
/// entity answers as for any unary command and does not accept a stream.
#[tokio::test]
async fn streamed_flag_on_a_unary_method() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    let id = "GCounter-a";
    c.send(crdt::init(SVC, id)).await;
    c.send(crdt::streamed_command(
        1,
        id,
        "Process",
        &increments(id, &[1]),
    ))
    .await;
    c.expect(crdt::reply(1, &counter(1)).update(crdt::gcounter(1)))
        .await;
    c.send(process(2, id, &[1])).await;
    c.expect(crdt::reply(2, &counter(2)).update(crdt::gcounter(1)))
        .await;
    c.passivate().await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn panic_in_a_handler_keeps_the_state_and_the_stream() {
    let s = faulty_server().await;
    let mut c = s.driver().await.crdt().await;
    let side_effect = crdt::side_effect(FAULTY, "Call", &increments("x", &[]), false);
    c.send(crdt::init(FAULTY, "f")).await;
    c.send(crdt::command(1, "f", "Call", &increments("f", &[1])))
        .await;
    c.expect(
        crdt::reply(1, &counter(1))
            .update(crdt::gcounter(1))
            .side_effect(side_effect.clone()),
    )
    .await;

    // The handler increments and adds a side effect, then panics.
    c.send(crdt::command(2, "f", "Call", &increments("panic", &[5])))
        .await;
    expect_command_failure(&mut c, 2, &["boom in the handler", "Call", "f", FAULTY]).await;

    // Same stream: nothing of command 2 is left, in the state or the deltas.
    c.send(crdt::command(3, "f", "Call", &increments("f", &[])))
        .await;
    c.expect(crdt::reply(3, &counter(1)).side_effect(side_effect.clone()))
        .await;
    c.send(crdt::command(4, "f", "Call", &increments("f", &[2])))
        .await;
    c.expect(
        crdt::reply(4, &counter(3))
            .update(crdt::gcounter(2))
            .side_effect(side_effect),
    )
    .await;
    c.passivate().await;
    assert_other_entity_works(&s).await;
}

/// The model cannot make a CRDT for an id without a CRDT type, and says so
/// (its `initial_state` panics).
#[tokio::test]
async fn entity_id_naming_no_crdt_type() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(SVC, "Bogus-1")).await;
    c.send(process(1, "Bogus-1", &[])).await;
    expect_stream_failure(&mut c, &["unknown CRDT type [Bogus]", SVC, "Bogus-1"]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn an_answer_too_large_to_send_ends_the_stream_naming_the_command() {
    let server = TestServer::start(tck_adapter::server().max_reply_size(1024)).await;
    let id = "GCounter-big";
    let mut c = server.driver().await.crdt().await;
    c.send(crdt::init(SVC, id)).await;
    let mut request = increments(id, &[1]);
    // A side effect whose payload alone is over the limit.
    request.actions.push(RequestAction {
        action: Some(Action::Effect(Effect {
            id: "e".repeat(2000),
            synchronous: false,
        })),
    });
    c.send(crdt::command(1, id, "Process", &request)).await;
    expect_stream_failure(&mut c, &[SVC, id, "command 1", "over the 1024-byte limit"]).await;
    assert_other_entity_works(&server).await;
}
