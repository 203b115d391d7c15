//! Payloads and metadata over real gRPC, for every kind: the seven
//! primitives and JSON as command input, reply, event, snapshot, value-entity
//! state and CRDT element, byte for byte as the protocol has them; wrong type
//! URLs refused naming both types; command metadata seen by the handler and
//! reply, forward and side-effect metadata on the wire.

use std::sync::Arc;

use cloudstate_sdk::action::{BoxFuture, BoxStream};
use cloudstate_sdk::crdt::{CrdtContext, CrdtEntity, ORSet};
use cloudstate_sdk::metadata::CloudEventAttributes;
use cloudstate_sdk::payload::{self, Any, Json, Payload, PayloadError};
use cloudstate_sdk::protocol::cloudstate::action::{
    ActionCommand, action_response::Response as ActionOut,
};
use cloudstate_sdk::protocol::cloudstate::crdt::{
    crdt_delta::Delta, crdt_state_action::Action as CrdtAction, crdt_stream_in::Message as CrdtIn,
    crdt_stream_out::Message as CrdtOut,
};
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    event_sourced_stream_in::Message as EsIn, event_sourced_stream_out::Message as EsOut,
};
use cloudstate_sdk::protocol::cloudstate::valueentity::{
    value_entity_action::Action as VeAction, value_entity_stream_in::Message as VeIn,
    value_entity_stream_out::Message as VeOut,
};
use cloudstate_sdk::protocol::cloudstate::{ClientAction, SideEffect, client_action::Action};
use cloudstate_sdk::testkit::{
    TestServer, action as a, crdt, eventsourced as es, valueentity as ve,
};
use cloudstate_sdk::{
    ActionContext, ActionHandler, ActionMessage, ActionOptions, ActionReply, ActionResult,
    CloudState, Command, CommandContext, CommandResult, CrdtOptions, EventSourcedEntity,
    EventSourcedOptions, Failure, Metadata, Reply, ServiceCall, ValueContext, ValueEntity,
    ValueEntityOptions,
};
use tck_adapter::proto::cloudstate::tck::model as tck;
use tck_adapter::proto::cloudstate::tck::model::eventlogeventing as eventing;

const ES: &str = "cloudstate.tck.model.EventSourcedTwo";
const VE: &str = "cloudstate.tck.model.valueentity.ValueEntityTwo";
const CRDT: &str = "cloudstate.tck.model.crdt.CrdtTwo";
const ACTION: &str = "cloudstate.tck.model.action.ActionTwo";
const JSON_ES: &str = "cloudstate.tck.model.eventlogeventing.EventSourcedEntityTwo";
const SUBSCRIBER: &str = "cloudstate.tck.model.eventlogeventing.EventLogSubscriberModel";
/// Where forwards and side effects go.
const TARGET: &str = "cloudstate.tck.model.action.ActionTwo";

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
struct Note {
    text: String,
}

/// The JSON event of the event-log eventing model.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
struct JsonEvent {
    message: String,
}

/// Any value the test entities take, by its type URL.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bytes(Vec<u8>),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Note(Json<Note>),
}

impl Payload for Value {
    fn to_any(&self) -> Any {
        match self {
            Self::Str(v) => v.to_any(),
            Self::Bytes(v) => v.to_any(),
            Self::I32(v) => v.to_any(),
            Self::I64(v) => v.to_any(),
            Self::F32(v) => v.to_any(),
            Self::F64(v) => v.to_any(),
            Self::Bool(v) => v.to_any(),
            Self::Note(v) => v.to_any(),
        }
    }
    fn from_any(any: &Any) -> Result<Self, PayloadError> {
        Ok(match any.type_url.as_str() {
            "p.cloudstate.io/string" => Self::Str(Payload::from_any(any)?),
            "p.cloudstate.io/bytes" => Self::Bytes(Payload::from_any(any)?),
            "p.cloudstate.io/int32" => Self::I32(Payload::from_any(any)?),
            "p.cloudstate.io/int64" => Self::I64(Payload::from_any(any)?),
            "p.cloudstate.io/float" => Self::F32(Payload::from_any(any)?),
            "p.cloudstate.io/double" => Self::F64(Payload::from_any(any)?),
            "p.cloudstate.io/bool" => Self::Bool(Payload::from_any(any)?),
            _ => Self::Note(Payload::from_any(any)?),
        })
    }
}

fn any(type_url: &str, value: &[u8]) -> Any {
    Any {
        type_url: type_url.to_owned(),
        value: value.to_vec(),
    }
}

/// Every primitive (its default and another value) and a JSON value, with
/// the exact bytes the protocol gives them (§2.2, §2.3).
fn cases() -> Vec<(Any, Value)> {
    let note = br#"{"text":"hi"}"#;
    let mut json = vec![0x0a, note.len() as u8];
    json.extend_from_slice(note);
    vec![
        (
            any("p.cloudstate.io/string", b"\x0a\x02hi"),
            Value::Str("hi".into()),
        ),
        (
            any("p.cloudstate.io/string", b""),
            Value::Str(String::new()),
        ),
        (
            any("p.cloudstate.io/bytes", b"\x0a\x02\x01\x02"),
            Value::Bytes(vec![1, 2]),
        ),
        (any("p.cloudstate.io/bytes", b""), Value::Bytes(Vec::new())),
        (
            any(
                "p.cloudstate.io/int32",
                b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            ),
            Value::I32(-1),
        ),
        (any("p.cloudstate.io/int32", b""), Value::I32(0)),
        (
            any("p.cloudstate.io/int64", b"\x08\xac\x02"),
            Value::I64(300),
        ),
        (any("p.cloudstate.io/int64", b""), Value::I64(0)),
        (
            any("p.cloudstate.io/float", b"\x0d\x00\x00\xc0\x3f"),
            Value::F32(1.5),
        ),
        (any("p.cloudstate.io/float", b""), Value::F32(0.0)),
        (
            any(
                "p.cloudstate.io/double",
                b"\x09\x00\x00\x00\x00\x00\x00\x04\x40",
            ),
            Value::F64(2.5),
        ),
        (any("p.cloudstate.io/double", b""), Value::F64(0.0)),
        (any("p.cloudstate.io/bool", b"\x08\x01"), Value::Bool(true)),
        (any("p.cloudstate.io/bool", b""), Value::Bool(false)),
        (
            any("json.cloudstate.io/Note", &json),
            Value::Note(Json(Note { text: "hi".into() })),
        ),
    ]
}

/// How every test entity answers a value with metadata `metadata`: the
/// value itself with the metadata (and `x-subject`, the CloudEvent's
/// subject, when it is one) back; a forward of it to [`TARGET`] when
/// `x-forward` is set; also a side effect when `x-effect` is set.
fn answer(value: &Value, metadata: &Metadata) -> (Reply, Option<ServiceCall>) {
    let mut back = metadata.clone();
    if let Some(event) = metadata.cloud_event() {
        back.add("x-subject", event.subject().unwrap_or("none"));
    }
    let call = || ServiceCall::of(TARGET, "Call", value).with_metadata(back.clone());
    let reply = if metadata.contains_key("x-forward") {
        Reply::forward(call())
    } else {
        Reply::of(value).with_metadata(back.clone())
    };
    (reply, metadata.contains_key("x-effect").then(call))
}

fn is_empty(command: &Command<'_>) -> bool {
    payload::is::<()>(command.payload())
}

/// Journals every value it is sent and echoes it; an `Empty` command replies
/// with the values seen so far (JSON list of their `Debug`).
struct Journal;

impl EventSourcedEntity for Journal {
    type State = Vec<Value>;
    type Event = Value;

    fn initial_state(&self, _: &str) -> Vec<Value> {
        Vec::new()
    }
    fn apply_event(&self, state: &mut Vec<Value>, event: &Value) -> Result<(), PayloadError> {
        state.push(event.clone());
        Ok(())
    }
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        if is_empty(command) {
            return Ok(Reply::of(&debug_list(ctx.state())));
        }
        let value: Value = command.payload_as()?;
        ctx.emit(value.clone());
        let (reply, effect) = answer(&value, ctx.metadata());
        if let Some(effect) = effect {
            ctx.effect(effect, false);
        }
        Ok(reply)
    }
    fn snapshot(&self, state: &Vec<Value>) -> Option<Any> {
        state.last().map(Payload::to_any)
    }
    fn restore(&self, _: &str, snapshot: &Any) -> Result<Vec<Value>, PayloadError> {
        Ok(vec![Value::from_any(snapshot)?])
    }
}

fn debug_list(values: &[Value]) -> Json<Vec<String>> {
    Json(values.iter().map(|v| format!("{v:?}")).collect())
}

/// Stores the last value it is sent; an `Empty` command replies with it.
struct Store;

impl ValueEntity for Store {
    type State = Value;

    fn encode_state(&self, state: &Value) -> Any {
        state.to_any()
    }
    fn decode_state(&self, state: &Any) -> Result<Value, PayloadError> {
        Value::from_any(state)
    }
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut ValueContext<'_, Self>,
    ) -> CommandResult {
        if is_empty(command) {
            return Ok(ctx.state().map_or_else(Reply::empty, Reply::of));
        }
        let value: Value = command.payload_as()?;
        ctx.update(value.clone());
        let (reply, effect) = answer(&value, ctx.metadata());
        if let Some(effect) = effect {
            ctx.effect(effect, false);
        }
        Ok(reply)
    }
}

/// Adds every value it is sent to an ORSet; an `Empty` command replies with
/// the elements.
struct Bag;

impl CrdtEntity for Bag {
    type State = ORSet<Value>;

    fn initial_state(&self, _: &str) -> ORSet<Value> {
        ORSet::new()
    }
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CrdtContext<'_, ORSet<Value>>,
    ) -> Result<Option<Reply>, Failure> {
        if is_empty(command) {
            let values: Vec<Value> = ctx.state().iter().cloned().collect();
            return Ok(Some(Reply::of(&debug_list(&values))));
        }
        let value: Value = command.payload_as()?;
        ctx.state_mut().insert(value.clone());
        let (reply, effect) = answer(&value, ctx.metadata());
        if let Some(effect) = effect {
            ctx.effect(effect, false);
        }
        Ok(Some(reply))
    }
}

/// Echoes every value (unary only).
struct Echo;

impl ActionHandler for Echo {
    fn handle_unary(
        self: Arc<Self>,
        m: ActionMessage,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async move {
            let value: Value = m.payload_as()?;
            let (reply, effect) = answer(&value, ctx.metadata());
            let mut reply = ActionReply::from(reply);
            if let Some(effect) = effect {
                reply = reply.with_effect(effect, false);
            }
            Ok(reply)
        })
    }
    fn handle_streamed_in(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async { Err(Failure::new("unary only")) })
    }
    fn handle_streamed_out(
        self: Arc<Self>,
        _: ActionMessage,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        Box::pin(futures_util::stream::empty())
    }
    fn handle_streamed(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        Box::pin(futures_util::stream::empty())
    }
}

/// The event-log eventing model's JSON side: `EmitJsonEvent` emits a JSON
/// event, as the TCK's `EventSourcedEntityTwo` does.
struct JsonEmitter;

impl EventSourcedEntity for JsonEmitter {
    type State = Vec<String>;
    type Event = Json<JsonEvent>;

    fn initial_state(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
    fn apply_event(
        &self,
        state: &mut Vec<String>,
        event: &Json<JsonEvent>,
    ) -> Result<(), PayloadError> {
        state.push(event.0.message.clone());
        Ok(())
    }
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        let request: eventing::JsonEvent = command.decode()?;
        ctx.emit(Json(JsonEvent {
            message: request.message,
        }));
        Ok(Reply::of(&ctx.state().len().to_string()))
    }
    fn takes_snapshots(&self) -> bool {
        false
    }
}

/// `ProcessAnyEvent(google.protobuf.Any)`: the JSON event and the
/// CloudEvent subject it came with.
struct Subscriber;

impl ActionHandler for Subscriber {
    fn handle_unary(
        self: Arc<Self>,
        m: ActionMessage,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async move {
            let Json(event) = m.payload_as::<Json<JsonEvent>>()?;
            let id = ctx
                .metadata()
                .cloud_event()
                .and_then(|e| e.subject().map(str::to_owned))
                .ok_or_else(|| Failure::new("not a CloudEvent"))?;
            Ok(ActionReply::encode(&eventing::Response {
                id,
                message: event.message,
            }))
        })
    }
    fn handle_streamed_in(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async { Err(Failure::new("unary only")) })
    }
    fn handle_streamed_out(
        self: Arc<Self>,
        _: ActionMessage,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        Box::pin(futures_util::stream::empty())
    }
    fn handle_streamed(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        Box::pin(futures_util::stream::empty())
    }
}

async fn server() -> TestServer {
    use tck::{
        action::action_tck_model, crdt::crdt_tck_model, event_sourced_tck_model,
        valueentity::value_entity_tck_model,
    };
    TestServer::start(
        CloudState::new()
            .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
            .register(
                event_sourced_tck_model::Entity(tck_adapter::eventsourced::TckModel),
                EventSourcedOptions::new("model"),
            )
            .register(
                value_entity_tck_model::Entity(tck_adapter::valueentity::TckModel),
                ValueEntityOptions::new("model"),
            )
            .register(
                crdt_tck_model::Entity(tck_adapter::crdt::TckModel),
                CrdtOptions::new(),
            )
            .register(
                action_tck_model::Action(tck_adapter::action::TckModel),
                ActionOptions::new(),
            )
            .event_sourced(
                ES,
                Journal,
                EventSourcedOptions::new("journal").snapshot_every(2),
            )
            .value_entity(VE, Store, ValueEntityOptions::new("store"))
            .crdt(CRDT, Bag, CrdtOptions::new())
            .action(ACTION, Echo)
            .event_sourced(
                JSON_ES,
                JsonEmitter,
                EventSourcedOptions::new("eventlogeventing-two"),
            )
            .action(SUBSCRIBER, Subscriber),
    )
    .await
}

fn empty() -> Option<Any> {
    Some(payload::empty())
}

fn reply_payload(action: Option<ClientAction>) -> Any {
    match action.and_then(|a| a.action) {
        Some(Action::Reply(reply)) => reply.payload.expect("a reply payload"),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn debug_of(values: impl IntoIterator<Item = Value>) -> Vec<String> {
    values.into_iter().map(|v| format!("{v:?}")).collect()
}

#[tokio::test]
async fn event_sourced_events_snapshots_and_replies_keep_every_encoding() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(ES, "j")).await;
    let cases = cases();
    let mut snapshots = Vec::new();
    for (n, (wire, _)) in cases.iter().enumerate() {
        let id = n as i64 + 1;
        c.send(es::command_any(id, "j", "Call", Some(wire.clone())))
            .await;
        let Some(EsOut::Reply(reply)) = c.next_message().await.message else {
            panic!("expected a reply to {wire:?}");
        };
        assert_eq!(reply.command_id, id);
        assert_eq!(
            reply.events,
            std::slice::from_ref(wire),
            "event of {wire:?}"
        );
        assert_eq!(reply_payload(reply.client_action), *wire, "reply");
        // Every second event is a snapshot: the last value.
        assert_eq!(reply.snapshot.is_some(), id % 2 == 0, "snapshot after {id}");
        if let Some(snapshot) = reply.snapshot {
            assert_eq!(snapshot, *wire);
            snapshots.push((id, snapshot));
        }
    }
    c.passivate().await;

    // A new incarnation from the last snapshot and the events after it.
    let (at, snapshot) = snapshots.last().cloned().unwrap();
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init_with_snapshot(ES, "j", at, snapshot)).await;
    for (n, (wire, _)) in cases.iter().enumerate().skip(at as usize) {
        c.send(es::event(n as i64 + 1, wire.clone())).await;
    }
    c.send(es::command_any(1, "j", "Call", empty())).await;
    let Some(EsOut::Reply(reply)) = c.next_message().await.message else {
        panic!("expected a reply");
    };
    let Json(seen) = Json::<Vec<String>>::from_any(&reply_payload(reply.client_action)).unwrap();
    let expected = debug_of(cases[at as usize - 1..].iter().map(|(_, v)| v.clone()));
    assert_eq!(seen, expected);
    c.passivate().await;
}

#[tokio::test]
async fn value_entity_state_keeps_every_encoding() {
    let s = server().await;
    for (n, (wire, _)) in cases().into_iter().enumerate() {
        let entity = format!("v{n}");
        let mut c = s.driver().await.value_entity().await;
        c.send(ve::init(VE, &entity)).await;
        c.send(ve::command_any(1, &entity, "Call", Some(wire.clone())))
            .await;
        let Some(VeOut::Reply(reply)) = c.next_message().await.message else {
            panic!("expected a reply");
        };
        let Some(VeAction::Update(update)) = reply.state_action.and_then(|a| a.action) else {
            panic!("expected an update");
        };
        assert_eq!(update.value, Some(wire.clone()));
        assert_eq!(reply_payload(reply.client_action), wire);
        c.passivate().await;

        // Read back from the stored state.
        let mut c = s.driver().await.value_entity().await;
        c.send(ve::init_state(VE, &entity, Some(wire.clone())))
            .await;
        c.send(ve::command_any(1, &entity, "Call", empty())).await;
        let Some(VeOut::Reply(reply)) = c.next_message().await.message else {
            panic!("expected a reply");
        };
        assert_eq!(reply.state_action, None);
        assert_eq!(reply_payload(reply.client_action), wire);
        c.passivate().await;
    }
}

#[tokio::test]
async fn crdt_elements_keep_every_encoding() {
    let s = server().await;
    let cases = cases();
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(CRDT, "b")).await;
    for (n, (wire, _)) in cases.iter().enumerate() {
        let id = n as i64 + 1;
        c.send(crdt::command_any(id, "b", "Call", Some(wire.clone())))
            .await;
        let Some(CrdtOut::Reply(reply)) = c.next_message().await.message else {
            panic!("expected a reply");
        };
        let Some(CrdtAction::Update(delta)) = reply.state_action.and_then(|a| a.action) else {
            panic!("expected a delta");
        };
        let Some(Delta::Orset(orset)) = delta.delta else {
            panic!("expected an ORSet delta");
        };
        assert_eq!(
            orset.added,
            std::slice::from_ref(wire),
            "element of {wire:?}"
        );
        assert_eq!(reply_payload(reply.client_action), *wire);
    }
    c.passivate().await;

    // Elements from the proxy decode to the same values.
    let mut c = s.driver().await.crdt().await;
    let all: Vec<Any> = cases.iter().map(|(wire, _)| wire.clone()).collect();
    c.send(crdt::init_with_delta(
        CRDT,
        "b2",
        crdt::orset_any(false, vec![], all),
    ))
    .await;
    c.send(crdt::command_any(1, "b2", "Call", empty())).await;
    let Some(CrdtOut::Reply(reply)) = c.next_message().await.message else {
        panic!("expected a reply");
    };
    let Json(mut seen) =
        Json::<Vec<String>>::from_any(&reply_payload(reply.client_action)).unwrap();
    let mut expected = debug_of(cases.into_iter().map(|(_, v)| v));
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
    c.passivate().await;
}

#[tokio::test]
async fn action_inputs_and_replies_keep_every_encoding() {
    let s = server().await;
    let driver = s.driver().await;
    for (wire, _) in cases() {
        let response = driver
            .action_unary(a::command_any(ACTION, "Call", Some(wire.clone())))
            .await
            .unwrap();
        let Some(ActionOut::Reply(reply)) = response.response else {
            panic!("expected a reply to {wire:?}");
        };
        assert_eq!(reply.payload, Some(wire));
    }
}

#[tokio::test]
async fn json_events_are_emitted_replayed_and_read_from_any_inputs() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(JSON_ES, "eventlogeventing:1")).await;
    let request = eventing::JsonEvent {
        id: "eventlogeventing:1".into(),
        message: "hello".into(),
    };
    c.send(es::command(
        1,
        "eventlogeventing:1",
        "EmitJsonEvent",
        &request,
    ))
    .await;
    let Some(EsOut::Reply(reply)) = c.next_message().await.message else {
        panic!("expected a reply");
    };
    let event = reply.events[0].clone();
    assert_eq!(event.type_url, "json.cloudstate.io/JsonEvent");
    let text = br#"{"message":"hello"}"#;
    assert_eq!(event.value[..2], [0x0a, text.len() as u8]);
    assert_eq!(&event.value[2..], text);
    c.passivate().await;

    // Replayed, the JSON event reaches the handler.
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(JSON_ES, "eventlogeventing:1")).await;
    c.send(es::event(1, event.clone())).await;
    c.send(es::command(
        1,
        "eventlogeventing:1",
        "EmitJsonEvent",
        &request,
    ))
    .await;
    let Some(EsOut::Reply(reply)) = c.next_message().await.message else {
        panic!("expected a reply");
    };
    assert_eq!(reply_payload(reply.client_action), "2".to_owned().to_any());
    c.passivate().await;

    // Delivered to an action taking `google.protobuf.Any`, with the
    // CloudEvent attributes of an event-log event.
    let metadata = CloudEventAttributes::new("1", "eventlogeventing-two", event.type_url.clone())
        .subject("eventlogeventing:1")
        .data_content_type("application/json")
        .to_metadata();
    let mut command = a::command_any(SUBSCRIBER, "ProcessAnyEvent", Some(event));
    command.metadata = Some(metadata);
    let response = s.driver().await.action_unary(command).await.unwrap();
    assert_eq!(
        response,
        a::reply(&eventing::Response {
            id: "eventlogeventing:1".into(),
            message: "hello".into(),
        })
        .build()
    );
}

/// The generated entities and actions refuse a payload of another type
/// than the method's input, naming both.
#[tokio::test]
async fn wrong_type_urls_fail_naming_both_types() {
    let s = server().await;
    let wrong = |package: &str| any(&format!("type.googleapis.com/{package}.Response"), b"");
    let names_both = |description: &str, package: &str| {
        for part in [
            format!("{package}.Request"),
            format!("type.googleapis.com/{package}.Response"),
        ] {
            assert!(
                description.contains(&part),
                "[{description}] lacks [{part}]"
            );
        }
    };
    let failure = |action: Option<ClientAction>| match action.and_then(|a| a.action) {
        Some(Action::Failure(f)) => f.description,
        other => panic!("expected a failure, got {other:?}"),
    };

    let package = "cloudstate.tck.model";
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init("cloudstate.tck.model.EventSourcedTckModel", "w"))
        .await;
    c.send(es::command_any(1, "w", "Process", Some(wrong(package))))
        .await;
    let Some(EsOut::Reply(reply)) = c.next_message().await.message else {
        panic!("expected a reply");
    };
    names_both(&failure(reply.client_action), package);
    // The entity carries on.
    c.send(es::command(
        2,
        "w",
        "Process",
        &tck::Request {
            id: "w".into(),
            actions: vec![],
        },
    ))
    .await;
    c.expect(es::reply(2, &tck::Response::default())).await;
    c.passivate().await;

    let package = "cloudstate.tck.model.valueentity";
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(
        "cloudstate.tck.model.valueentity.ValueEntityTckModel",
        "w",
    ))
    .await;
    c.send(ve::command_any(1, "w", "Process", Some(wrong(package))))
        .await;
    let Some(VeOut::Reply(reply)) = c.next_message().await.message else {
        panic!("expected a reply");
    };
    names_both(&failure(reply.client_action), package);
    c.passivate().await;

    let package = "cloudstate.tck.model.crdt";
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(
        "cloudstate.tck.model.crdt.CrdtTckModel",
        "GCounter-w",
    ))
    .await;
    c.send(crdt::command_any(
        1,
        "GCounter-w",
        "Process",
        Some(wrong(package)),
    ))
    .await;
    let Some(CrdtOut::Reply(reply)) = c.next_message().await.message else {
        panic!("expected a reply");
    };
    names_both(&failure(reply.client_action), package);
    c.passivate().await;

    let package = "cloudstate.tck.model.action";
    let response = s
        .driver()
        .await
        .action_unary(a::command_any(
            "cloudstate.tck.model.action.ActionTckModel",
            "ProcessUnary",
            Some(wrong(package)),
        ))
        .await
        .unwrap();
    let Some(ActionOut::Failure(f)) = response.response else {
        panic!("expected a failure, got {response:?}");
    };
    names_both(&f.description, package);
}

fn sent_metadata(extra: &str) -> Metadata {
    Metadata::new()
        .with("x-trace", "t-1")
        .with(extra, "yes")
        .with_cloud_event(&CloudEventAttributes::new("9", "src", "T").subject("who"))
}

/// What every handler sends back: the metadata it was sent and the
/// CloudEvent subject it read from it.
fn echoed(extra: &str) -> Metadata {
    sent_metadata(extra).with("x-subject", "who")
}

fn set_es_metadata(
    mut m: cloudstate_sdk::protocol::cloudstate::eventsourced::EventSourcedStreamIn,
    md: Metadata,
) -> cloudstate_sdk::protocol::cloudstate::eventsourced::EventSourcedStreamIn {
    if let Some(EsIn::Command(c)) = m.message.as_mut() {
        c.metadata = Some(md);
    }
    m
}

/// The three answers of one kind: reply, forward, reply with side effect.
struct Answers {
    reply: ClientAction,
    forward: ClientAction,
    effect: (ClientAction, Vec<SideEffect>),
}

fn check(answers: Answers) {
    let reply_metadata = match answers.reply.action {
        Some(Action::Reply(reply)) => reply.metadata,
        other => panic!("expected a reply, got {other:?}"),
    };
    assert_eq!(reply_metadata, Some(echoed("x-reply")));
    let forward = match answers.forward.action {
        Some(Action::Forward(forward)) => forward,
        other => panic!("expected a forward, got {other:?}"),
    };
    assert_eq!(
        (forward.service_name.as_str(), forward.command_name.as_str()),
        (TARGET, "Call")
    );
    assert_eq!(forward.payload, Some(1i64.to_any()));
    assert_eq!(forward.metadata, Some(echoed("x-forward")));
    let (action, effects) = answers.effect;
    assert!(matches!(action.action, Some(Action::Reply(_))));
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].payload, Some(1i64.to_any()));
    assert_eq!(effects[0].metadata, Some(echoed("x-effect")));
}

const KEYS: [&str; 3] = ["x-reply", "x-forward", "x-effect"];

#[tokio::test]
async fn event_sourced_handlers_see_command_metadata_and_send_their_own() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(ES, "m")).await;
    let mut out = Vec::new();
    for (n, key) in KEYS.iter().enumerate() {
        let command = es::command_any(n as i64 + 1, "m", "Call", Some(1i64.to_any()));
        c.send(set_es_metadata(command, sent_metadata(key))).await;
        let Some(EsOut::Reply(reply)) = c.next_message().await.message else {
            panic!("expected a reply");
        };
        out.push((reply.client_action.unwrap(), reply.side_effects));
    }
    let mut out = out.into_iter();
    check(Answers {
        reply: out.next().unwrap().0,
        forward: out.next().unwrap().0,
        effect: out.next().unwrap(),
    });
    // Without metadata, none is sent back.
    c.send(es::command_any(9, "m", "Call", Some(1i64.to_any())))
        .await;
    let Some(EsOut::Reply(reply)) = c.next_message().await.message else {
        panic!("expected a reply");
    };
    assert!(matches!(
        reply.client_action.and_then(|a| a.action),
        Some(Action::Reply(r)) if r.metadata.is_none()
    ));
    c.passivate().await;
}

#[tokio::test]
async fn value_entity_handlers_see_command_metadata_and_send_their_own() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(VE, "m")).await;
    let mut out = Vec::new();
    for (n, key) in KEYS.iter().enumerate() {
        let mut command = ve::command_any(n as i64 + 1, "m", "Call", Some(1i64.to_any()));
        if let Some(VeIn::Command(cmd)) = command.message.as_mut() {
            cmd.metadata = Some(sent_metadata(key));
        }
        c.send(command).await;
        let Some(VeOut::Reply(reply)) = c.next_message().await.message else {
            panic!("expected a reply");
        };
        out.push((reply.client_action.unwrap(), reply.side_effects));
    }
    let mut out = out.into_iter();
    check(Answers {
        reply: out.next().unwrap().0,
        forward: out.next().unwrap().0,
        effect: out.next().unwrap(),
    });
    c.passivate().await;
}

#[tokio::test]
async fn crdt_handlers_see_command_metadata_and_send_their_own() {
    let s = server().await;
    let mut c = s.driver().await.crdt().await;
    c.send(crdt::init(CRDT, "m")).await;
    let mut out = Vec::new();
    for (n, key) in KEYS.iter().enumerate() {
        let mut command = crdt::command_any(n as i64 + 1, "m", "Call", Some(1i64.to_any()));
        if let Some(CrdtIn::Command(cmd)) = command.message.as_mut() {
            cmd.metadata = Some(sent_metadata(key));
        }
        c.send(command).await;
        let Some(CrdtOut::Reply(reply)) = c.next_message().await.message else {
            panic!("expected a reply");
        };
        out.push((reply.client_action.unwrap(), reply.side_effects));
    }
    let mut out = out.into_iter();
    check(Answers {
        reply: out.next().unwrap().0,
        forward: out.next().unwrap().0,
        effect: out.next().unwrap(),
    });
    c.passivate().await;
}

#[tokio::test]
async fn action_handlers_see_call_metadata_and_send_their_own() {
    let s = server().await;
    let driver = s.driver().await;
    let mut out = Vec::new();
    for key in KEYS {
        let command = ActionCommand {
            metadata: Some(sent_metadata(key)),
            ..a::command_any(ACTION, "Call", Some(1i64.to_any()))
        };
        let response = driver.action_unary(command).await.unwrap();
        let action = match response.response {
            Some(ActionOut::Reply(r)) => ClientAction {
                action: Some(Action::Reply(r)),
            },
            Some(ActionOut::Forward(f)) => ClientAction {
                action: Some(Action::Forward(f)),
            },
            other => panic!("expected a reply or forward, got {other:?}"),
        };
        out.push((action, response.side_effects));
    }
    let mut out = out.into_iter();
    check(Answers {
        reply: out.next().unwrap().0,
        forward: out.next().unwrap().0,
        effect: out.next().unwrap(),
    });
}
