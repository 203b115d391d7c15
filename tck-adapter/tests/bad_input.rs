//! Bad input never crashes the user function and never touches other
//! entities: each case gets a failure that names what was wrong, then another
//! entity of the same server still answers.

use cloudstate_sdk::payload::{self, Any};
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamOut, event_sourced_stream_out::Message as Out,
};
use cloudstate_sdk::protocol::cloudstate::{
    Failure as PbFailure, client_action::Action as ClientAction,
};
use cloudstate_sdk::testkit::{DriverStream, TestServer, eventsourced as es};
use cloudstate_sdk::{
    CloudState, Command, CommandContext, CommandResult, EventSourcedEntity, EventSourcedOptions,
    PayloadError, Reply,
};
use tck_adapter::proto::cloudstate::tck::model::{
    Emit, Persisted, Request, RequestAction, Response, request_action::Action,
};

const SVC: &str = "cloudstate.tck.model.EventSourcedTckModel";
const FAULTY: &str = "cloudstate.tck.model.EventSourcedTwo";

/// Panics where told to: a command for entity id `panic`, an event or a
/// snapshot with the value `poison`.
struct Faulty;

impl EventSourcedEntity for Faulty {
    type State = String;
    type Event = Any;

    fn initial_state(&self, _: &str) -> String {
        String::new()
    }
    fn apply_event(&self, state: &mut String, event: &Any) -> Result<(), PayloadError> {
        let p: Persisted = payload::decode(event)?;
        assert!(p.value != "poison", "poisoned event");
        state.push_str(&p.value);
        Ok(())
    }
    fn restore(&self, _: &str, snapshot: &Any) -> Result<String, PayloadError> {
        let p: Persisted = payload::decode(snapshot)?;
        assert!(p.value != "poison", "poisoned snapshot");
        Ok(p.value)
    }
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        let request: Request = command.decode()?;
        ctx.emit(payload::encode(&Persisted { value: "x".into() }));
        if request.id == "panic" {
            panic!("boom in the handler");
        }
        Ok(Reply::encode(&Response {
            message: ctx.state().clone(),
        }))
    }
}

fn server(config: impl FnOnce(CloudState) -> CloudState) -> CloudState {
    config(
        CloudState::new()
            .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
            .event_sourced(
                SVC,
                tck_adapter::proto::cloudstate::tck::model::event_sourced_tck_model::Entity(
                    tck_adapter::eventsourced::TckModel,
                ),
                EventSourcedOptions::new("model"),
            )
            .event_sourced(FAULTY, Faulty, EventSourcedOptions::new("faulty")),
    )
}

fn request(id: &str, emit: &[&str]) -> Request {
    Request {
        id: id.into(),
        actions: emit
            .iter()
            .map(|v| RequestAction {
                action: Some(Action::Emit(Emit { value: (*v).into() })),
            })
            .collect(),
    }
}

fn persisted(v: &str) -> Any {
    payload::encode(&Persisted { value: v.into() })
}

/// After a bad input elsewhere, a fresh entity of the same server works.
async fn assert_other_entity_works(server: &TestServer) {
    let mut c = server.driver().await.event_sourced().await;
    c.send(es::init(SVC, "healthy")).await;
    c.send(es::command(
        1,
        "healthy",
        "Process",
        &request("healthy", &["ok"]),
    ))
    .await;
    c.expect(
        es::reply(
            1,
            &Response {
                message: "ok".into(),
            },
        )
        .event(&Persisted { value: "ok".into() }),
    )
    .await;
    c.passivate().await;
}

/// Expects a stream-level failure whose description contains every part, then
/// the end of the stream with OK.
async fn expect_stream_failure<I: std::fmt::Debug>(
    c: &mut DriverStream<I, EventSourcedStreamOut>,
    command_id: i64,
    parts: &[&str],
) {
    let out = c.next_message().await;
    let Some(Out::Failure(PbFailure {
        command_id: id,
        description,
        ..
    })) = out.message
    else {
        panic!("expected a stream-level failure, got {out:?}");
    };
    assert_eq!(id, command_id, "{description}");
    for part in parts {
        assert!(description.contains(part), "[{description}] lacks [{part}]");
    }
    c.expect_closed().await;
}

/// Expects a command failure (client action) and returns it.
async fn expect_command_failure<I: std::fmt::Debug>(
    c: &mut DriverStream<I, EventSourcedStreamOut>,
    command_id: i64,
    parts: &[&str],
) -> PbFailure {
    let out = c.next_message().await;
    let Some(Out::Reply(reply)) = out.message else {
        panic!("expected a reply, got {out:?}")
    };
    assert_eq!(reply.command_id, command_id);
    assert!(reply.events.is_empty() && reply.snapshot.is_none() && reply.side_effects.is_empty());
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
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::command(1, "a", "Process", &request("a", &[])))
        .await;
    expect_stream_failure(
        &mut c,
        0,
        &["Protocol error: Expected Init message", "Process"],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn second_init() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "a")).await;
    c.send(es::init(SVC, "a")).await;
    expect_stream_failure(
        &mut c,
        0,
        &["Protocol error: Entity already inited", SVC, "[a]"],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn init_for_unknown_service() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init("no.such.Service", "a")).await;
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

#[tokio::test]
async fn empty_message() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "a")).await;
    c.send(es::empty_input()).await;
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
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "a")).await;
    c.send(es::command(4, "b", "Process", &request("b", &[])))
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
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "a")).await;
    c.send(es::command_any(1, "a", "Process", None)).await;
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
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "a")).await;
    c.send(es::command(1, "a", "Explode", &request("a", &[])))
        .await;
    let failure = expect_command_failure(
        &mut c,
        1,
        &[
            "No command handler found for command [Explode]",
            "[a]",
            SVC,
            "cloudstate.tck.model.Request",
        ],
    )
    .await;
    assert!(!failure.restart);
    c.send(es::command(2, "a", "Process", &request("a", &["x"])))
        .await;
    c.expect(
        es::reply(
            2,
            &Response {
                message: "x".into(),
            },
        )
        .event(&Persisted { value: "x".into() }),
    )
    .await;
    c.passivate().await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn undecodable_payload_keeps_the_stream() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "a")).await;
    let garbage = Any {
        type_url: "type.googleapis.com/cloudstate.tck.model.Request".into(),
        value: vec![0x0a, 0xff, 0x01],
    };
    c.send(es::command_any(1, "a", "Process", Some(garbage)))
        .await;
    let failure = expect_command_failure(
        &mut c,
        1,
        &[
            "Protocol error",
            "[Process]",
            "[a]",
            SVC,
            "type.googleapis.com/cloudstate.tck.model.Request",
        ],
    )
    .await;
    assert!(!failure.restart);
    c.send(es::command(2, "a", "Process", &request("a", &[])))
        .await;
    c.expect(es::reply(2, &Response::default())).await;
    c.passivate().await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn unknown_event_type_on_replay() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "a")).await;
    c.send(es::event(
        1,
        Any {
            type_url: "type.googleapis.com/other.Event".into(),
            value: vec![],
        },
    ))
    .await;
    expect_stream_failure(
        &mut c,
        0,
        &[
            "No event handler found",
            "type.googleapis.com/other.Event",
            "[a]",
            SVC,
        ],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn unknown_snapshot_type() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    let snapshot = Any {
        type_url: "type.googleapis.com/other.Snapshot".into(),
        value: vec![],
    };
    c.send(es::init_with_snapshot(SVC, "a", 3, snapshot)).await;
    expect_stream_failure(
        &mut c,
        0,
        &["No snapshot handler found", "other.Snapshot", "[a]", SVC],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn panic_in_command_handler_requests_restart() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(FAULTY, "panic")).await;
    c.send(es::command(1, "panic", "Call", &request("panic", &[])))
        .await;
    let failure = expect_command_failure(
        &mut c,
        1,
        &[
            "Unexpected failure",
            "[Call]",
            "[panic]",
            FAULTY,
            "boom in the handler",
        ],
    )
    .await;
    assert!(failure.restart, "a panic leaves the state suspect");
    // Until the proxy restarts it, the instance refuses commands.
    c.send(es::command(2, "panic", "Call", &request("panic", &[])))
        .await;
    let failure = expect_command_failure(&mut c, 2, &["restarting", "[panic]"]).await;
    assert!(failure.restart);
    c.passivate().await;

    // The same service keeps serving other entities, as does the other service.
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(FAULTY, "calm")).await;
    c.send(es::command(1, "calm", "Call", &request("calm", &[])))
        .await;
    c.expect(
        es::reply(
            1,
            &Response {
                message: "x".into(),
            },
        )
        .event(&Persisted { value: "x".into() }),
    )
    .await;
    c.passivate().await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn panic_in_event_handler_during_replay() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(FAULTY, "a")).await;
    c.send(es::event(1, persisted("poison"))).await;
    expect_stream_failure(
        &mut c,
        0,
        &["Unexpected failure", "poisoned event", "[a]", FAULTY],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn panic_in_snapshot_handler() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init_with_snapshot(FAULTY, "a", 1, persisted("poison")))
        .await;
    expect_stream_failure(
        &mut c,
        0,
        &["Unexpected failure", "poisoned snapshot", "[a]", FAULTY],
    )
    .await;
    assert_other_entity_works(&s).await;
}

#[tokio::test]
async fn message_over_the_size_limit() {
    let s = TestServer::start(server(|c| c.max_message_size(64 * 1024))).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "a")).await;
    let big = "x".repeat(100 * 1024);
    c.send(es::command(1, "a", "Process", &request("a", &[&big])))
        .await;
    expect_stream_failure(
        &mut c,
        0,
        &["Protocol error", "could not read a message", "[a]", SVC],
    )
    .await;
    assert_other_entity_works(&s).await;
}

/// The default limit takes the proxy's largest message (12 MiB), both ways.
#[tokio::test]
async fn twelve_mebibyte_messages_pass_by_default() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    // Just under the proxy's 12 MiB, with room for the reply's framing.
    let big = "y".repeat(12 * 1024 * 1024 - 1024);
    c.send(es::init_with_snapshot(SVC, "a", 5, persisted(&big)))
        .await;
    c.send(es::command(1, "a", "Process", &request("a", &[])))
        .await;
    c.expect(es::reply(1, &Response { message: big })).await;
    c.passivate().await;
}

/// Metadata on a command is accepted (the official proxy sends none).
#[tokio::test]
async fn command_with_metadata() {
    use cloudstate_sdk::protocol::cloudstate::{Metadata, MetadataEntry, metadata_entry::Value};
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "a")).await;
    let mut command = es::command(1, "a", "Process", &request("a", &[]));
    if let Some(cloudstate_sdk::protocol::cloudstate::eventsourced::event_sourced_stream_in::Message::Command(cmd)) =
        command.message.as_mut()
    {
        cmd.metadata = Some(Metadata {
            entries: vec![MetadataEntry { key: "k".into(), value: Some(Value::StringValue("v".into())) }],
        });
    }
    c.send(command).await;
    c.expect(es::reply(1, &Response::default())).await;
    c.passivate().await;
}

/// Several commands sent before any reply are answered in order.
#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let s = TestServer::start(server(|c| c)).await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "a")).await;
    for n in 1..=20 {
        c.send(es::command(n, "a", "Process", &request("a", &["z"])))
            .await;
    }
    for n in 1..=20 {
        let state = "z".repeat(n as usize);
        let mut r = es::reply(
            n,
            &Response {
                message: state.clone(),
            },
        )
        .event(&Persisted { value: "z".into() });
        if n % 100 == 0 {
            r = r.snapshot(&Persisted { value: state });
        }
        c.expect(r).await;
    }
    c.passivate().await;
}
