//! Bad input to value entities never crashes the user function and never
//! touches other entities: each case gets a failure that names what was
//! wrong, then another entity of the same server still answers.

use cloudstate_sdk::payload::{self, Any};
use cloudstate_sdk::protocol::cloudstate::valueentity::{
    ValueEntityStreamIn, ValueEntityStreamOut, value_entity_stream_out::Message as Out,
};
use cloudstate_sdk::protocol::cloudstate::{
    Failure as PbFailure, client_action::Action as ClientAction,
};
use cloudstate_sdk::testkit::{
    DriverStream, TestServer, eventsourced::side_effect, valueentity as ve,
};
use cloudstate_sdk::{
    CloudState, Command, CommandResult, PayloadError, Reply, ValueContext, ValueEntity,
    ValueEntityOptions,
};
use tck_adapter::proto::cloudstate::tck::model::valueentity::{
    Effect, Persisted, Request, RequestAction, Response, Update, request_action::Action,
    value_entity_tck_model,
};

const SVC: &str = "cloudstate.tck.model.valueentity.ValueEntityTckModel";
const FAULTY: &str = "cloudstate.tck.model.valueentity.ValueEntityTwo";
const REQUEST_URL: &str = "type.googleapis.com/cloudstate.tck.model.valueentity.Request";

/// Applies the `update` and `effect` actions of a `Request`, then panics when
/// the request id is `panic`; its stored state panics when it is `poison`.
struct Faulty;

impl ValueEntity for Faulty {
    type State = Persisted;

    fn encode_state(&self, state: &Persisted) -> Any {
        payload::encode(state)
    }
    fn decode_state(&self, state: &Any) -> Result<Persisted, PayloadError> {
        let p: Persisted = payload::decode(state)?;
        assert!(p.value != "poison", "poisoned state");
        Ok(p)
    }
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut ValueContext<'_, Self>,
    ) -> CommandResult {
        let request: Request = command.decode()?;
        for action in request.actions.iter().filter_map(|a| a.action.as_ref()) {
            match action {
                Action::Update(u) => ctx.update(Persisted {
                    value: u.value.clone(),
                }),
                Action::Effect(e) => ctx.effect(
                    tck_adapter::proto::cloudstate::tck::model::valueentity::value_entity_two::call(
                        &request_for(&e.id, &[]),
                    ),
                    e.synchronous,
                ),
                _ => {}
            }
        }
        if request.id == "panic" {
            panic!("boom in the handler");
        }
        Ok(Reply::encode(&Response {
            message: ctx.state().map(|s| s.value.clone()).unwrap_or_default(),
        }))
    }
}

fn server() -> CloudState {
    CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .register(
            value_entity_tck_model::Entity(tck_adapter::valueentity::TckModel),
            ValueEntityOptions::new("model"),
        )
        .value_entity(FAULTY, Faulty, ValueEntityOptions::new("faulty"))
}

fn request_for(id: &str, update: &[&str]) -> Request {
    Request {
        id: id.into(),
        actions: update
            .iter()
            .map(|v| RequestAction {
                action: Some(Action::Update(Update { value: (*v).into() })),
            })
            .collect(),
    }
}

fn persisted(v: &str) -> Persisted {
    Persisted { value: v.into() }
}

fn response(m: &str) -> Response {
    Response { message: m.into() }
}

/// After a bad input elsewhere, a fresh entity of the same server works.
async fn assert_other_entity_works(server: &TestServer) {
    let mut c = server.driver().await.value_entity().await;
    c.send(ve::init(SVC, "healthy")).await;
    c.send(ve::command(
        1,
        "healthy",
        "Process",
        &request_for("healthy", &["ok"]),
    ))
    .await;
    c.expect(ve::reply(1, &response("ok")).update(&persisted("ok")))
        .await;
    c.send(ve::command(
        2,
        "healthy",
        "Process",
        &request_for("healthy", &[]),
    ))
    .await;
    c.expect(ve::reply(2, &response("ok"))).await;
    c.passivate().await;
}

/// Expects a stream-level failure whose description contains every part, then
/// the end of the stream with OK.
async fn expect_stream_failure<I: std::fmt::Debug>(
    c: &mut DriverStream<I, ValueEntityStreamOut>,
    command_id: i64,
    parts: &[&str],
) {
    let out = c.next_message().await;
    let Some(Out::Failure(PbFailure {
        command_id: id,
        description,
        restart,
    })) = out.message
    else {
        panic!("expected a stream-level failure, got {out:?}");
    };
    assert_eq!(id, command_id, "{description}");
    assert!(!restart, "{description}");
    for part in parts {
        assert!(description.contains(part), "[{description}] lacks [{part}]");
    }
    c.expect_closed().await;
}

/// Expects a command failure (client action, no state action, no side
/// effects) and returns it.
async fn expect_command_failure<I: std::fmt::Debug>(
    c: &mut DriverStream<I, ValueEntityStreamOut>,
    command_id: i64,
    parts: &[&str],
) -> PbFailure {
    let out = c.next_message().await;
    let Some(Out::Reply(reply)) = out.message else {
        panic!("expected a reply, got {out:?}")
    };
    assert_eq!(reply.command_id, command_id);
    assert!(
        reply.state_action.is_none() && reply.side_effects.is_empty(),
        "{reply:?}"
    );
    let Some(ClientAction::Failure(failure)) = reply.client_action.and_then(|a| a.action) else {
        panic!("expected a failure action")
    };
    assert_eq!(failure.command_id, command_id);
    for part in parts {
        assert!(
            failure.description.contains(part),
            "[{}] lacks [{part}]",
            failure.description
        );
    }
    failure
}

#[tokio::test]
async fn command_before_init() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::command(1, "a", "Process", &request_for("a", &[])))
        .await;
    expect_stream_failure(
        &mut c,
        0,
        &["Protocol error: Expected init message for Value entity"],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn second_init() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(SVC, "a")).await;
    c.send(ve::init(SVC, "a")).await;
    expect_stream_failure(
        &mut c,
        0,
        &["Protocol error: Value entity already inited", SVC, "[a]"],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn init_for_unknown_service() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init("no.such.Service", "a")).await;
    expect_stream_failure(
        &mut c,
        0,
        &[
            "Protocol error: Service not found",
            "no.such.Service",
            "[a]",
        ],
    )
    .await;
    assert_other_entity_works(&s).await;
}

/// A service that exists, but as another entity type, is not a value entity.
#[tokio::test]
async fn init_for_an_event_sourced_service() {
    let s = TestServer::start(tck_adapter::server()).await;
    let mut c = s.driver().await.value_entity().await;
    let es = "cloudstate.tck.model.EventSourcedTckModel";
    c.send(ve::init(es, "a")).await;
    expect_stream_failure(&mut c, 0, &["Protocol error: Service not found", es, "[a]"]).await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn empty_message() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(SVC, "a")).await;
    c.send(ValueEntityStreamIn { message: None }).await;
    expect_stream_failure(
        &mut c,
        0,
        &["Protocol error: Received empty/unknown message", SVC, "[a]"],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn empty_message_before_init() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ValueEntityStreamIn { message: None }).await;
    expect_stream_failure(
        &mut c,
        0,
        &["Protocol error: Received empty/unknown message"],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn entity_id_mismatch() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(SVC, "a")).await;
    c.send(ve::command(4, "b", "Process", &request_for("b", &[])))
        .await;
    expect_stream_failure(
        &mut c,
        4,
        &["not the intended recipient", "Process", "[a]", "[b]", SVC],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn command_without_payload() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(SVC, "a")).await;
    c.send(ve::command_any(1, "a", "Process", None)).await;
    expect_stream_failure(
        &mut c,
        1,
        &["Protocol error: No command payload", "Process", "[a]", SVC],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn unknown_command_keeps_the_stream() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(SVC, "a")).await;
    c.send(ve::command(1, "a", "Explode", &request_for("a", &["no"])))
        .await;
    let failure = expect_command_failure(
        &mut c,
        1,
        &[
            "No command handler found for command [Explode]",
            "[a]",
            SVC,
            REQUEST_URL,
        ],
    )
    .await;
    assert!(!failure.restart);
    c.send(ve::command(2, "a", "Process", &request_for("a", &["x"])))
        .await;
    c.expect(ve::reply(2, &response("x")).update(&persisted("x")))
        .await;
    c.passivate().await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn undecodable_payload_keeps_the_stream() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init_with_state(SVC, "a", &persisted("kept")))
        .await;
    let garbage = Any {
        type_url: REQUEST_URL.into(),
        value: vec![0x0a, 0xff, 0x01],
    };
    c.send(ve::command_any(1, "a", "Process", Some(garbage)))
        .await;
    let failure = expect_command_failure(
        &mut c,
        1,
        &["Protocol error", "[Process]", "[a]", SVC, REQUEST_URL],
    )
    .await;
    assert!(!failure.restart);
    c.send(ve::command(2, "a", "Process", &request_for("a", &[])))
        .await;
    c.expect(ve::reply(2, &response("kept"))).await;
    c.passivate().await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn init_state_of_the_wrong_type() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    let state = Any {
        type_url: "type.googleapis.com/other.State".into(),
        value: vec![],
    };
    c.send(ve::init_state(SVC, "a", Some(state))).await;
    expect_stream_failure(
        &mut c,
        0,
        &[
            "Protocol error",
            "cannot be read",
            "type.googleapis.com/other.State",
            "[a]",
            SVC,
        ],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn init_state_that_does_not_decode() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    let url = "type.googleapis.com/cloudstate.tck.model.valueentity.Persisted";
    let state = Any {
        type_url: url.into(),
        value: vec![0x0a, 0xff, 0x01],
    };
    c.send(ve::init_state(SVC, "a", Some(state))).await;
    expect_stream_failure(
        &mut c,
        0,
        &["Protocol error", "cannot be read", url, "[a]", SVC],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn panic_in_command_handler_keeps_the_state_and_the_stream() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(FAULTY, "f")).await;
    c.send(ve::command(1, "f", "Call", &request_for("f", &["A"])))
        .await;
    c.expect(ve::reply(1, &response("A")).update(&persisted("A")))
        .await;

    // The handler updates the state and adds a side effect, then panics.
    let mut panicking = request_for("panic", &["B"]);
    panicking.actions.push(RequestAction {
        action: Some(Action::Effect(Effect {
            id: "f".into(),
            synchronous: false,
        })),
    });
    c.send(ve::command(2, "f", "Call", &panicking)).await;
    let failure = expect_command_failure(
        &mut c,
        2,
        &[
            "Value entity unexpected failure",
            "boom in the handler",
            "[Call]",
            "[f]",
            FAULTY,
        ],
    )
    .await;
    assert!(!failure.restart, "the state was not touched");

    // Same stream: the state is still A, and updates still work.
    c.send(ve::command(3, "f", "Call", &request_for("f", &[])))
        .await;
    c.expect(ve::reply(3, &response("A"))).await;
    c.send(ve::command(4, "f", "Call", &request_for("panic", &[])))
        .await;
    expect_command_failure(&mut c, 4, &["boom in the handler"]).await;
    let mut effect = request_for("f", &["C"]);
    effect.actions.push(RequestAction {
        action: Some(Action::Effect(Effect {
            id: "f".into(),
            synchronous: true,
        })),
    });
    c.send(ve::command(5, "f", "Call", &effect)).await;
    c.expect(
        ve::reply(5, &response("C"))
            .update(&persisted("C"))
            .side_effect(side_effect(FAULTY, "Call", &request_for("f", &[]), true)),
    )
    .await;
    c.passivate().await;

    // The same service keeps serving other entities, as does the other service.
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init_with_state(FAULTY, "calm", &persisted("S")))
        .await;
    c.send(ve::command(1, "calm", "Call", &request_for("calm", &[])))
        .await;
    c.expect(ve::reply(1, &response("S"))).await;
    c.passivate().await;
    assert_other_entity_works(&s).await;
}

/// A panic while decoding the init state ends that stream with a failure.
#[tokio::test]
async fn panic_while_decoding_the_init_state() {
    let s = TestServer::start(server()).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init_with_state(FAULTY, "g", &persisted("poison")))
        .await;
    expect_stream_failure(
        &mut c,
        0,
        &[
            "Value entity unexpected failure",
            "poisoned state",
            "[g]",
            FAULTY,
        ],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn message_over_the_size_limit() {
    let s = TestServer::start(server().max_message_size(64 * 1024)).await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(SVC, "a")).await;
    let big = "x".repeat(100 * 1024);
    c.send(ve::command(1, "a", "Process", &request_for("a", &[&big])))
        .await;
    expect_stream_failure(
        &mut c,
        0,
        &["Protocol error", "could not read a message", "[a]", SVC],
    )
    .await;
    assert_other_entity_works(&s).await;
}
