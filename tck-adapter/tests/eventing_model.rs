//! The event-log eventing models (protocol notes §10.6) over real gRPC on
//! 127.0.0.1, the driver playing the proxy: what the entities emit, and how
//! the subscriber answers an event delivered with its CloudEvent metadata
//! (the id is the emitting entity's, from `ce-subject`). The same models run
//! behind the dev proxy in `cloudstate-devproxy/tests/eventing.rs` (the
//! official EventingTCK's scenarios).

use cloudstate_sdk::Payload;
use cloudstate_sdk::payload::{self, Json};
use cloudstate_sdk::protocol::cloudstate::{self as pb, metadata_entry::Value};
use cloudstate_sdk::testkit::{
    ProtocolDriver, TestServer, action as a, eventsourced as es, proxy_info,
};
use tck_adapter::eventing::{EVENT_LOG_ONE, EVENT_LOG_TWO, JsonMessage};
use tck_adapter::proto::cloudstate::tck::model::eventlogeventing::{
    EffectRequest, EmitEventRequest, EventOne, EventTwo, Forward, JsonEvent, ProcessStep, Reply,
    Response, emit_event_request::Event, process_step::Step,
};

const SUB: &str = "cloudstate.tck.model.eventlogeventing.EventLogSubscriberModel";
const ONE: &str = "cloudstate.tck.model.eventlogeventing.EventSourcedEntityOne";
const TWO: &str = "cloudstate.tck.model.eventlogeventing.EventSourcedEntityTwo";

async fn driver() -> (TestServer, ProtocolDriver) {
    let server = TestServer::start(tck_adapter::server()).await;
    let driver = server.driver().await;
    (server, driver)
}

fn reply_step(message: &str) -> ProcessStep {
    ProcessStep {
        step: Some(Step::Reply(Reply {
            message: message.into(),
        })),
    }
}

fn forward_step(message: &str) -> ProcessStep {
    ProcessStep {
        step: Some(Step::Forward(Forward {
            message: message.into(),
        })),
    }
}

/// The CloudEvent metadata the proxy adds to an event of `source` emitted by `subject`.
fn cloud_event(source: &str, subject: &str, kind: &str) -> pb::Metadata {
    let entry = |key: &str, value: &str| pb::MetadataEntry {
        key: key.into(),
        value: Some(Value::StringValue(value.into())),
    };
    pb::Metadata {
        entries: vec![
            entry("ce-id", "1"),
            entry("ce-source", source),
            entry("ce-specversion", "1.0"),
            entry("ce-type", kind),
            entry("Content-Type", "application/vnd.cloudstate.protobuf.any"),
            entry("ce-subject", subject),
        ],
    }
}

fn delivered<M: cloudstate_sdk::prost::Name>(
    method: &str,
    event: &M,
    subject: &str,
) -> pb::action::ActionCommand {
    let mut command = a::command(SUB, method, event);
    command.metadata = Some(cloud_event(EVENT_LOG_ONE, subject, M::NAME));
    command
}

fn response(id: &str, message: &str) -> Response {
    Response {
        id: id.into(),
        message: message.into(),
    }
}

#[tokio::test]
async fn discovery_reports_both_event_logs_and_the_subscriber() {
    let (_server, driver) = driver().await;
    let spec = driver.discover(proxy_info()).await.unwrap();
    let find = |name: &str| {
        spec.entities
            .iter()
            .find(|e| e.service_name == name)
            .unwrap_or_else(|| panic!("{name} not discovered"))
    };
    assert_eq!(find(ONE).persistence_id, EVENT_LOG_ONE);
    assert_eq!(
        find(ONE).entity_type,
        "cloudstate.eventsourced.EventSourced"
    );
    assert_eq!(find(TWO).persistence_id, EVENT_LOG_TWO);
    assert_eq!(find(SUB).entity_type, "cloudstate.action.ActionProtocol");
}

#[tokio::test]
async fn entity_one_emits_the_requested_protobuf_event() {
    let (_server, driver) = driver().await;
    let mut stream = driver.event_sourced().await;
    stream.send(es::init(ONE, "eventlogeventing:1")).await;
    let one = EventOne {
        step: Some(reply_step("some message")),
    };
    let request = EmitEventRequest {
        id: "eventlogeventing:1".into(),
        event: Some(Event::EventOne(one.clone())),
    };
    stream
        .send(es::command(1, "eventlogeventing:1", "EmitEvent", &request))
        .await;
    stream.expect(es::reply_empty(1).event(&one)).await;
    let two = EventTwo {
        step: vec![reply_step("a"), forward_step("b")],
    };
    let request = EmitEventRequest {
        id: "eventlogeventing:1".into(),
        event: Some(Event::EventTwo(two.clone())),
    };
    stream
        .send(es::command(2, "eventlogeventing:1", "EmitEvent", &request))
        .await;
    stream.expect(es::reply_empty(2).event(&two)).await;
}

#[tokio::test]
async fn entity_two_emits_json_and_replays_it() {
    let (_server, driver) = driver().await;
    let mut stream = driver.event_sourced().await;
    let json = Json(JsonMessage {
        message: "some json message".into(),
    })
    .to_any();
    assert_eq!(json.type_url, "json.cloudstate.io/JsonMessage");
    // A journal holding the event replays into a new entity.
    stream.send(es::init(TWO, "eventlogeventing:3")).await;
    stream.send(es::event(1, json.clone())).await;
    let request = JsonEvent {
        id: "eventlogeventing:3".into(),
        message: "some json message".into(),
    };
    stream
        .send(es::command(
            1,
            "eventlogeventing:3",
            "EmitJsonEvent",
            &request,
        ))
        .await;
    let reply = stream.next_message().await;
    let events = match reply.message {
        Some(pb::eventsourced::event_sourced_stream_out::Message::Reply(reply)) => reply.events,
        other => panic!("not a reply: {other:?}"),
    };
    assert_eq!(events, [json]);
}

#[tokio::test]
async fn the_subscriber_answers_for_the_entity_that_emitted() {
    let (_server, driver) = driver().await;
    let event = EventOne {
        step: Some(reply_step("some message")),
    };
    let answer = driver
        .action_unary(delivered("ProcessEventOne", &event, "eventlogeventing:1"))
        .await
        .unwrap();
    assert_eq!(
        answer,
        a::reply(&response("eventlogeventing:1", "some message")).build()
    );
}

#[tokio::test]
async fn a_forward_step_forwards_to_effect() {
    let (_server, driver) = driver().await;
    let event = EventOne {
        step: Some(forward_step("some message")),
    };
    let answer = driver
        .action_unary(delivered("ProcessEventOne", &event, "eventlogeventing:2"))
        .await
        .unwrap();
    let effect = EffectRequest {
        id: "eventlogeventing:2".into(),
        message: "some message".into(),
    };
    assert_eq!(answer, a::forward(SUB, "Effect", &effect).build());
    let answer = driver
        .action_unary(a::command(SUB, "Effect", &effect))
        .await
        .unwrap();
    assert_eq!(
        answer,
        a::reply(&response("eventlogeventing:2", "some message")).build()
    );
}

#[tokio::test]
async fn event_two_answers_once_per_step() {
    let (_server, driver) = driver().await;
    let event = EventTwo {
        step: vec![reply_step("first"), forward_step("second")],
    };
    let mut out = driver
        .action_streamed_out(delivered("ProcessEventTwo", &event, "e:9"))
        .await;
    out.expect(a::reply(&response("e:9", "first")).build())
        .await;
    out.expect(
        a::forward(
            SUB,
            "Effect",
            &EffectRequest {
                id: "e:9".into(),
                message: "second".into(),
            },
        )
        .build(),
    )
    .await;
    out.expect_closed().await;
}

#[tokio::test]
async fn the_any_subscriber_reads_json_events() {
    let (_server, driver) = driver().await;
    let json = Json(JsonMessage {
        message: "some json message".into(),
    })
    .to_any();
    let mut command = a::command_any(SUB, "ProcessAnyEvent", Some(json.clone()));
    command.metadata = Some(cloud_event(
        EVENT_LOG_TWO,
        "eventlogeventing:3",
        &json.type_url,
    ));
    let answer = driver.action_unary(command).await.unwrap();
    assert_eq!(
        answer,
        a::reply(&response("eventlogeventing:3", "some json message")).build()
    );
    // Anything but a JSON event with a message is refused, naming its type.
    let not_json = payload::encode(&response("x", "y"));
    let answer = driver
        .action_unary(a::command_any(SUB, "ProcessAnyEvent", Some(not_json)))
        .await
        .unwrap();
    assert_eq!(
        answer,
        a::failure(
            "expected a JSON event with a message, got [type.googleapis.com/cloudstate.tck.model.eventlogeventing.Response]"
        )
        .build()
    );
}
