//! Eventing (dev proxy brief §3.6, E1–E4): event-log subscribers get the
//! journal's events with their CloudEvent metadata, routed by event type;
//! their forwards are routed; a failing subscriber is retried; SQLite keeps
//! consumer offsets across restarts. Then the dev-only topic broker and the
//! start-up checks of eventing options.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cloudstate_devproxy::{ActionShape, DevProxy, DevProxyConfig, Observed, Store};
use cloudstate_sdk::action::{BoxFuture, BoxStream};
use cloudstate_sdk::protocol::cloudstate::action::{
    ActionCommand, ActionResponse, action_response,
};
use cloudstate_sdk::protocol::cloudstate::metadata_entry::Value;
use cloudstate_sdk::testkit::TestServer;
use cloudstate_sdk::{
    ActionContext, ActionHandler, ActionMessage, ActionReply, ActionResult, Any, CloudState,
    Command, CommandContext, CommandResult, EventSourcedEntity, EventSourcedOptions, PayloadError,
    Reply, ServiceCall, payload,
};
use futures_util::StreamExt;
use prost::Message as _;
use support::{grpc, proxy_with, until};
use tck_adapter::proto::cloudstate::tck::model::eventlogeventing::{
    EffectRequest, EmitEventRequest, EventOne, EventTwo, Forward, JsonEvent, ProcessStep,
    Reply as StepReply, Response, emit_event_request::Event, process_step::Step,
};
use tokio::sync::broadcast;

const SUB: &str = "cloudstate.tck.model.eventlogeventing.EventLogSubscriberModel";
const ONE: &str = "cloudstate.tck.model.eventlogeventing.EventSourcedEntityOne";
const TWO: &str = "cloudstate.tck.model.eventlogeventing.EventSourcedEntityTwo";
const EMIT: &str = "/cloudstate.tck.model.eventlogeventing.EventSourcedEntityOne/EmitEvent";
const EMIT_JSON: &str =
    "/cloudstate.tck.model.eventlogeventing.EventSourcedEntityTwo/EmitJsonEvent";

/// JSON and primitive payloads: the bytes as field 1.
#[derive(Clone, PartialEq, prost::Message)]
struct Wrapped {
    #[prost(bytes = "vec", tag = "1")]
    value: Vec<u8>,
}

/// `EventSourcedEntityOne`: emits the request's event as a protobuf event.
struct EntityOne;

impl EventSourcedEntity for EntityOne {
    type State = ();
    type Event = Any;

    fn initial_state(&self, _: &str) {}

    fn apply_event(&self, _: &mut (), _: &Any) -> Result<(), PayloadError> {
        Ok(())
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        let request: EmitEventRequest = command.decode()?;
        match request.event {
            Some(Event::EventOne(event)) => ctx.emit(payload::encode(&event)),
            Some(Event::EventTwo(event)) => ctx.emit(payload::encode(&event)),
            None => {}
        }
        Ok(Reply::encode(&()))
    }

    fn takes_snapshots(&self) -> bool {
        false
    }
}

/// `EventSourcedEntityTwo`: emits `{"message": …}` as a JSON event.
struct EntityTwo;

impl EventSourcedEntity for EntityTwo {
    type State = ();
    type Event = Any;

    fn initial_state(&self, _: &str) {}

    fn apply_event(&self, _: &mut (), _: &Any) -> Result<(), PayloadError> {
        Ok(())
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        let request: JsonEvent = command.decode()?;
        let json = serde_json::json!({ "message": request.message }).to_string();
        ctx.emit(Any {
            type_url: "json.cloudstate.io/JsonEvent".into(),
            value: Wrapped {
                value: json.into_bytes(),
            }
            .encode_to_vec(),
        });
        Ok(Reply::encode(&()))
    }

    fn takes_snapshots(&self) -> bool {
        false
    }
}

/// `EventLogSubscriberModel`: the id is the CloudEvent subject; a reply
/// whose message starts with `flaky` fails while `flaky` counts down.
struct Subscriber {
    flaky: Arc<AtomicU32>,
}

impl Subscriber {
    fn step(&self, id: &str, step: Option<ProcessStep>) -> ActionResult {
        match step.and_then(|s| s.step) {
            Some(Step::Reply(StepReply { message })) => {
                let fail = message.starts_with("flaky")
                    && self
                        .flaky
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                if fail {
                    return Ok(ActionReply::failure("the subscriber is not ready"));
                }
                Ok(ActionReply::encode(&Response {
                    id: id.to_owned(),
                    message,
                }))
            }
            Some(Step::Forward(Forward { message })) => {
                Ok(ActionReply::forward(ServiceCall::message(
                    SUB,
                    "Effect",
                    &EffectRequest {
                        id: id.to_owned(),
                        message,
                    },
                )))
            }
            None => Ok(ActionReply::no_reply()),
        }
    }
}

impl ActionHandler for Subscriber {
    fn handle_unary(
        self: Arc<Self>,
        message: ActionMessage,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        let id = ctx
            .metadata_value("ce-subject")
            .unwrap_or_default()
            .to_owned();
        let result = (|| match ctx.command_name() {
            "ProcessEventOne" => {
                let event: EventOne = message.decode()?;
                self.step(&id, event.step)
            }
            "Effect" => {
                let request: EffectRequest = message.decode()?;
                Ok(ActionReply::encode(&Response {
                    id: request.id,
                    message: request.message,
                }))
            }
            "ProcessAnyEvent" => {
                let json = Wrapped::decode(message.payload.value.as_slice()).unwrap_or_default();
                let json: serde_json::Value =
                    serde_json::from_slice(&json.value).unwrap_or_default();
                Ok(ActionReply::encode(&Response {
                    id,
                    message: json["message"].as_str().unwrap_or_default().to_owned(),
                }))
            }
            other => Ok(ActionReply::failure(format!("unexpected {other}"))),
        })();
        Box::pin(std::future::ready(result))
    }

    fn handle_streamed_in(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async { Ok(ActionReply::no_reply()) })
    }

    fn handle_streamed_out(
        self: Arc<Self>,
        message: ActionMessage,
        ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        let id = ctx
            .metadata_value("ce-subject")
            .unwrap_or_default()
            .to_owned();
        let results: Vec<ActionResult> = match message.decode::<EventTwo>() {
            Ok(event) => event
                .step
                .into_iter()
                .map(|s| self.step(&id, Some(s)))
                .collect(),
            Err(failure) => vec![Err(failure)],
        };
        futures_util::stream::iter(results).boxed()
    }

    fn handle_streamed(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        futures_util::stream::empty().boxed()
    }
}

/// The event-log model: both entities and the subscriber, whose `flaky`
/// replies fail `flaky` times in all.
fn event_log_model(flaky: u32) -> CloudState {
    CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .event_sourced(
            ONE,
            EntityOne,
            EventSourcedOptions::new("eventlogeventing-one"),
        )
        .event_sourced(
            TWO,
            EntityTwo,
            EventSourcedOptions::new("eventlogeventing-two"),
        )
        .action(
            SUB,
            Subscriber {
                flaky: Arc::new(AtomicU32::new(flaky)),
            },
        )
}

fn reply_step(message: &str) -> ProcessStep {
    ProcessStep {
        step: Some(Step::Reply(StepReply {
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

async fn emit_one(addr: std::net::SocketAddr, id: &str, step: ProcessStep) {
    let request = EmitEventRequest {
        id: id.into(),
        event: Some(Event::EventOne(EventOne { step: Some(step) })),
    };
    let () = grpc(addr, EMIT, request).await.expect("EmitEvent");
}

/// A dev proxy for `uf` with short retry delays.
async fn proxy(
    uf: &TestServer,
    store: Store,
) -> (
    cloudstate_devproxy::DevProxyHandle,
    broadcast::Receiver<Observed>,
) {
    let (proxy, observed, _) = proxy_with(uf.addr(), |config| {
        config.store = store;
        config.eventing_min_backoff = Duration::from_millis(20);
        config.eventing_max_backoff = Duration::from_millis(100);
    })
    .await;
    (proxy, observed)
}

/// The next action command to `method` of the subscriber.
async fn command_to(
    observed: &mut broadcast::Receiver<Observed>,
    method: &str,
) -> (u64, ActionCommand) {
    let seen = until(
        observed,
        |o| matches!(o, Observed::ActionIn(_, c) if c.name == method),
    )
    .await;
    match seen.last() {
        Some(Observed::ActionIn(n, command)) => (*n, command.clone()),
        _ => unreachable!(),
    }
}

/// The response of action call `call`.
async fn response_of(observed: &mut broadcast::Receiver<Observed>, call: u64) -> ActionResponse {
    let seen = until(
        observed,
        |o| matches!(o, Observed::ActionOut(n, _) if *n == call),
    )
    .await;
    match seen.last() {
        Some(Observed::ActionOut(_, response)) => response.clone(),
        _ => unreachable!(),
    }
}

/// The string metadata of `command`, in order.
fn metadata(command: &ActionCommand) -> Vec<(String, String)> {
    command
        .metadata
        .iter()
        .flat_map(|m| &m.entries)
        .filter_map(|e| match &e.value {
            Some(Value::StringValue(v)) => Some((e.key.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

fn meta<'a>(entries: &'a [(String, String)], key: &str) -> Option<&'a str> {
    entries
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn replied(response: &ActionResponse) -> Option<Response> {
    match &response.response {
        Some(action_response::Response::Reply(reply)) => {
            payload::decode_as::<Response>(reply.payload.as_ref()?).ok()
        }
        _ => None,
    }
}

#[tokio::test]
async fn e1_an_event_reaches_its_subscriber_with_cloudevent_metadata() {
    let uf = TestServer::start(event_log_model(0)).await;
    let (proxy, mut observed) = proxy(&uf, Store::memory()).await;
    let addr = proxy.local_addr();
    emit_one(addr, "eventlogeventing:1", reply_step("some message")).await;

    // The entity's stream (init, command, reply with the event) comes first.
    use cloudstate_sdk::protocol::cloudstate::eventsourced::{
        event_sourced_stream_in::Message as EsIn, event_sourced_stream_out::Message as EsOut,
    };
    let before = until(&mut observed, |o| matches!(o, Observed::ActionCall { .. })).await;
    let entity: Vec<&str> = before
        .iter()
        .filter_map(|o| match o {
            Observed::EventSourcedIn(_, m) => match &m.message {
                Some(EsIn::Init(init)) if init.entity_id == "eventlogeventing:1" => Some("init"),
                Some(EsIn::Command(_)) => Some("command"),
                _ => None,
            },
            Observed::EventSourcedOut(_, m) => match &m.message {
                Some(EsOut::Reply(reply)) if reply.events.len() == 1 => {
                    Some("reply with the event")
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(entity, ["init", "command", "reply with the event"]);
    let (call, command) = command_to(&mut observed, "ProcessEventOne").await;
    assert_eq!(command.service_name, SUB);
    let payload = command.payload.clone().unwrap();
    assert_eq!(
        payload.type_url,
        "type.googleapis.com/cloudstate.tck.model.eventlogeventing.EventOne"
    );
    assert_eq!(
        EventOne::decode(payload.value.as_slice()).unwrap(),
        EventOne {
            step: Some(reply_step("some message"))
        }
    );
    let entries = metadata(&command);
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "ce-id",
            "ce-source",
            "ce-specversion",
            "ce-type",
            "Content-Type",
            "ce-subject"
        ]
    );
    assert_eq!(
        meta(&entries, "ce-id"),
        Some("1"),
        "the first event of the journal"
    );
    assert_eq!(meta(&entries, "ce-source"), Some("eventlogeventing-one"));
    assert_eq!(meta(&entries, "ce-specversion"), Some("1.0"));
    assert_eq!(meta(&entries, "ce-type"), Some(payload.type_url.as_str()));
    assert_eq!(
        meta(&entries, "Content-Type"),
        Some("application/vnd.cloudstate.protobuf.any")
    );
    assert_eq!(meta(&entries, "ce-subject"), Some("eventlogeventing:1"));
    assert_eq!(
        replied(&response_of(&mut observed, call).await),
        Some(Response {
            id: "eventlogeventing:1".into(),
            message: "some message".into()
        })
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn e2_a_forward_of_the_subscriber_is_routed() {
    let uf = TestServer::start(event_log_model(0)).await;
    let (proxy, mut observed) = proxy(&uf, Store::memory()).await;
    emit_one(
        proxy.local_addr(),
        "eventlogeventing:2",
        forward_step("more"),
    )
    .await;
    let (call, _) = command_to(&mut observed, "ProcessEventOne").await;
    let response = response_of(&mut observed, call).await;
    assert!(
        matches!(
            response.response,
            Some(action_response::Response::Forward(_))
        ),
        "{response:?}"
    );
    let (call, effect) = command_to(&mut observed, "Effect").await;
    assert_eq!(
        EffectRequest::decode(effect.payload.unwrap().value.as_slice()).unwrap(),
        EffectRequest {
            id: "eventlogeventing:2".into(),
            message: "more".into()
        }
    );
    assert_eq!(
        replied(&response_of(&mut observed, call).await),
        Some(Response {
            id: "eventlogeventing:2".into(),
            message: "more".into()
        })
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn e3_a_json_event_reaches_the_any_subscriber() {
    let uf = TestServer::start(event_log_model(0)).await;
    let (proxy, mut observed) = proxy(&uf, Store::memory()).await;
    let request = JsonEvent {
        id: "eventlogeventing:3".into(),
        message: "some json message".into(),
    };
    let () = grpc(proxy.local_addr(), EMIT_JSON, request).await.unwrap();
    let (call, command) = command_to(&mut observed, "ProcessAnyEvent").await;
    assert_eq!(
        command.payload.as_ref().unwrap().type_url,
        "json.cloudstate.io/JsonEvent"
    );
    let entries = metadata(&command);
    assert_eq!(meta(&entries, "ce-source"), Some("eventlogeventing-two"));
    assert_eq!(
        meta(&entries, "ce-type"),
        Some("json.cloudstate.io/JsonEvent")
    );
    assert_eq!(
        replied(&response_of(&mut observed, call).await),
        Some(Response {
            id: "eventlogeventing:3".into(),
            message: "some json message".into()
        })
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn events_are_routed_by_type_in_journal_order_across_entities() {
    let uf = TestServer::start(event_log_model(0)).await;
    let (proxy, mut observed) = proxy(&uf, Store::memory()).await;
    let addr = proxy.local_addr();
    emit_one(addr, "a", reply_step("one")).await;
    let two = EmitEventRequest {
        id: "b".into(),
        event: Some(Event::EventTwo(EventTwo {
            step: vec![reply_step("x"), reply_step("y")],
        })),
    };
    let () = grpc(addr, EMIT, two).await.unwrap();
    emit_one(addr, "a", reply_step("three")).await;

    // Every call in order: which method, its shape, the subject and ce-id.
    let mut calls = Vec::new();
    let mut shapes = std::collections::HashMap::new();
    while calls.len() < 3 {
        match support::next(&mut observed).await {
            Observed::ActionCall {
                call,
                method,
                shape,
                ..
            } => {
                shapes.insert(call, (method, shape));
            }
            Observed::ActionIn(call, command) if command.payload.is_some() => {
                let entries = metadata(&command);
                calls.push((
                    shapes[&call].clone(),
                    meta(&entries, "ce-subject").unwrap().to_owned(),
                    meta(&entries, "ce-id").unwrap().parse::<i64>().unwrap(),
                ));
            }
            _ => {}
        }
    }
    let seen: Vec<_> = calls
        .iter()
        .map(|(m, s, _)| (m.0.as_str(), m.1, s.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("ProcessEventOne", ActionShape::Unary, "a"),
            ("ProcessEventTwo", ActionShape::StreamedOut, "b"),
            ("ProcessEventOne", ActionShape::Unary, "a"),
        ]
    );
    assert!(
        calls.windows(2).all(|w| w[0].2 < w[1].2),
        "ce-id follows the journal: {calls:?}"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_failing_subscriber_is_retried_and_nothing_is_skipped() {
    // The first two deliveries of `flaky` fail.
    let uf = TestServer::start(event_log_model(2)).await;
    let (proxy, mut observed) = proxy(&uf, Store::memory()).await;
    let addr = proxy.local_addr();
    emit_one(addr, "f", reply_step("flaky")).await;
    emit_one(addr, "f", reply_step("after")).await;
    let mut outcomes = Vec::new();
    loop {
        let (call, command) = command_to(&mut observed, "ProcessEventOne").await;
        let event = EventOne::decode(command.payload.unwrap().value.as_slice()).unwrap();
        let Some(Step::Reply(StepReply { message })) = event.step.and_then(|s| s.step) else {
            panic!("a reply step");
        };
        let response = response_of(&mut observed, call).await;
        let failed = matches!(
            response.response,
            Some(action_response::Response::Failure(_))
        );
        outcomes.push((message.clone(), failed));
        if message == "after" {
            break;
        }
    }
    assert_eq!(
        outcomes,
        [
            ("flaky".to_owned(), true),
            ("flaky".to_owned(), true),
            ("flaky".to_owned(), false),
            ("after".to_owned(), false),
        ]
    );
    proxy.shutdown().await;
}

/// Messages of the `ProcessEventOne` calls until one carries `until`.
async fn delivered_until(observed: &mut broadcast::Receiver<Observed>, until: &str) -> Vec<String> {
    let mut messages = Vec::new();
    loop {
        let (_, command) = command_to(observed, "ProcessEventOne").await;
        let event = EventOne::decode(command.payload.unwrap().value.as_slice()).unwrap();
        let Some(Step::Reply(StepReply { message })) = event.step.and_then(|s| s.step) else {
            panic!("a reply step");
        };
        messages.push(message.clone());
        if message == until {
            return messages;
        }
    }
}

#[tokio::test]
async fn e4_sqlite_offsets_survive_a_restart() {
    let path = std::env::temp_dir().join(format!(
        "devproxy-eventing-{}-{}.db",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let uf = TestServer::start(event_log_model(0)).await;
    let (first, mut observed) = proxy(&uf, Store::sqlite(&path).unwrap()).await;
    emit_one(first.local_addr(), "e4", reply_step("before")).await;
    let (call, _) = command_to(&mut observed, "ProcessEventOne").await;
    response_of(&mut observed, call).await;
    first.shutdown().await;

    let (second, mut observed) = proxy(&uf, Store::sqlite(&path).unwrap()).await;
    emit_one(second.local_addr(), "e4", reply_step("after")).await;
    // Events are delivered in journal order: a redelivery would come first.
    assert_eq!(delivered_until(&mut observed, "after").await, ["after"]);
    second.shutdown().await;
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn e4_the_in_memory_store_redelivers_after_a_restart() {
    let uf = TestServer::start(event_log_model(0)).await;
    let store = Store::memory();
    let (first, mut observed) = proxy(&uf, store.clone()).await;
    emit_one(first.local_addr(), "e4", reply_step("before")).await;
    assert_eq!(delivered_until(&mut observed, "before").await, ["before"]);
    first.shutdown().await;

    // The journal is the same, the consumer's position is not.
    let (second, mut observed) = proxy(&uf, store).await;
    emit_one(second.local_addr(), "e4", reply_step("after")).await;
    assert_eq!(
        delivered_until(&mut observed, "after").await,
        ["before", "after"]
    );
    second.shutdown().await;
}

// ---- topics ----

#[derive(Clone, PartialEq, prost::Message)]
struct Text {
    #[prost(string, tag = "1")]
    text: String,
}

fn text_any(type_name: &str, text: &str) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value: Text { text: text.into() }.encode_to_vec(),
    }
}

/// `tests/eventing_fixtures/topics.proto` with its imports, as a user
/// function sends it.
fn topic_descriptors() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut compiler = protox::Compiler::new([
        root.join("tests/eventing_fixtures"),
        root.join("../cloudstate-sdk/proto"),
    ])
    .unwrap();
    compiler.include_imports(true);
    compiler.open_files(["topics/topics.proto"]).unwrap();
    compiler.encode_file_descriptor_set()
}

/// Every method of `topics.proto`: `Publish` echoes; `Read` answers
/// `read <text>` as an `Other`; the rest echo their input's text.
struct Topics;

impl ActionHandler for Topics {
    fn handle_unary(
        self: Arc<Self>,
        message: ActionMessage,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        let text = Text::decode(message.payload.value.as_slice())
            .unwrap_or_default()
            .text;
        let reply = match ctx.command_name() {
            "PublishKeyed" => Any {
                type_url: "type.googleapis.com/topics.Keyed".into(),
                value: message.payload.value.clone(),
            },
            "Read" => text_any("topics.Other", &format!("read {text}")),
            "ReadAny" => text_any("topics.Other", "any"),
            _ => text_any("topics.Message", &text),
        };
        Box::pin(std::future::ready(Ok(ActionReply::message(reply))))
    }

    fn handle_streamed_in(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async { Ok(ActionReply::no_reply()) })
    }

    fn handle_streamed_out(
        self: Arc<Self>,
        _: ActionMessage,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        futures_util::stream::empty().boxed()
    }

    fn handle_streamed(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        futures_util::stream::empty().boxed()
    }
}

fn topics_model(services: &[&str]) -> CloudState {
    let descriptors = topic_descriptors();
    services.iter().fold(
        CloudState::new().descriptor_set(&descriptors),
        |uf, service| uf.action(format!("topics.{service}"), Topics),
    )
}

#[tokio::test]
async fn a_published_reply_reaches_every_consumer_of_its_topic() {
    let uf = TestServer::start(topics_model(&["Publisher", "Reader", "Groups"])).await;
    let (proxy, mut observed) = proxy(&uf, Store::memory()).await;
    let reply: Text = grpc(
        proxy.local_addr(),
        "/topics.Publisher/Publish",
        Text {
            text: "hello".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(reply.text, "hello", "the client gets the reply");

    // `Read` (by type), `First` and `Second` (one per consumer group) get
    // the event; `Read`'s reply goes on to `digest`, read by `Digest`.
    let mut got = std::collections::BTreeMap::new();
    while got.len() < 4 {
        if let Observed::ActionIn(_, command) = support::next(&mut observed).await
            && command.service_name != "topics.Publisher"
        {
            got.insert(command.name.clone(), command);
        }
    }
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(names, ["Digest", "First", "Read", "Second"]);
    for name in ["Read", "First", "Second"] {
        let command = &got[name];
        assert_eq!(
            command.payload,
            Some(text_any("topics.Message", "hello")),
            "{name}"
        );
        let entries = metadata(command);
        assert_eq!(
            meta(&entries, "ce-source"),
            Some("topics.Publisher"),
            "{name}"
        );
        assert_eq!(meta(&entries, "ce-type"), Some("topics.Message"), "{name}");
        assert_eq!(meta(&entries, "ce-specversion"), Some("1.0"), "{name}");
        assert_eq!(
            meta(&entries, "Content-Type"),
            Some("application/protobuf"),
            "{name}"
        );
        assert!(
            meta(&entries, "ce-time").is_some_and(|t| t.ends_with('Z')),
            "{name}"
        );
        assert_eq!(
            meta(&entries, "ce-id").map(str::len),
            Some(36),
            "{name}: a UUID"
        );
    }
    assert_eq!(
        meta(&metadata(&got["First"]), "ce-id"),
        meta(&metadata(&got["Read"]), "ce-id"),
        "one event"
    );
    let digest = &got["Digest"];
    assert_eq!(digest.payload, Some(text_any("topics.Other", "read hello")));
    assert_eq!(meta(&metadata(digest), "ce-source"), Some("topics.Reader"));
    proxy.shutdown().await;
}

/// `topics.Keeper`: answers the command as it came.
struct Keeper;

impl cloudstate_sdk::ValueEntity for Keeper {
    type State = Any;

    fn encode_state(&self, state: &Any) -> Any {
        state.clone()
    }

    fn decode_state(&self, state: &Any) -> Result<Any, PayloadError> {
        Ok(state.clone())
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        _: &mut cloudstate_sdk::ValueContext<'_, Self>,
    ) -> CommandResult {
        Ok(Reply::message(command.payload().clone()))
    }
}

#[tokio::test]
async fn an_entity_consumes_a_topic_by_its_entity_key() {
    let uf = topics_model(&["Publisher"]).value_entity(
        "topics.Keeper",
        Keeper,
        cloudstate_sdk::ValueEntityOptions::new("keeper"),
    );
    let uf = TestServer::start(uf).await;
    let (proxy, mut observed) = proxy(&uf, Store::memory()).await;
    #[derive(Clone, PartialEq, prost::Message)]
    struct Keyed {
        #[prost(string, tag = "1")]
        id: String,
        #[prost(string, tag = "2")]
        text: String,
    }
    let keyed = Keyed {
        id: "k1".into(),
        text: "kept".into(),
    };
    let reply: Keyed = grpc(
        proxy.local_addr(),
        "/topics.Publisher/PublishKeyed",
        keyed.clone(),
    )
    .await
    .unwrap();
    assert_eq!(reply, keyed);
    use cloudstate_sdk::protocol::cloudstate::valueentity::value_entity_stream_in::Message as In;
    let seen = until(&mut observed, |o| {
        matches!(o, Observed::ValueEntityIn(_, m) if matches!(&m.message, Some(In::Command(_))))
    })
    .await;
    let Some(Observed::ValueEntityIn(_, message)) = seen.last() else {
        unreachable!()
    };
    let Some(In::Command(command)) = &message.message else {
        unreachable!()
    };
    assert_eq!(
        (command.entity_id.as_str(), command.name.as_str()),
        ("k1", "Keep")
    );
    let payload = command.payload.as_ref().unwrap();
    assert_eq!(payload.type_url, "type.googleapis.com/topics.Keyed");
    assert_eq!(Keyed::decode(payload.value.as_slice()).unwrap(), keyed);
    proxy.shutdown().await;
}

// ---- start-up checks ----

/// Why the dev proxy refused to start for `uf`, and what it reported.
async fn refused(uf: CloudState) -> (String, Vec<String>) {
    let uf = TestServer::start(uf).await;
    let mut config = DevProxyConfig::new(uf.addr().to_string());
    config.discovery_timeout = Duration::from_secs(10);
    let mut observed = config.observer.subscribe();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = DevProxy::start(config, listener)
        .await
        .expect_err("the dev proxy refuses the spec")
        .to_string();
    let mut reported = Vec::new();
    while let Ok(item) = observed.try_recv() {
        if let Observed::ReportError(text) = item {
            reported.push(text);
        }
    }
    (error, reported)
}

#[tokio::test]
async fn eventing_options_are_checked_at_start_up() {
    let cases = [
        (
            topics_model(&["SameTopic"]),
            "Endpoint [topics.SameTopic.Loop] has the same input topic as output topic [loop], this is not allowed.",
        ),
        (
            topics_model(&["Twice"]),
            "Endpoints [topics.Twice.One] and [topics.Twice.Two] both subscribe to the same event source with \
             the same input type.",
        ),
        (
            topics_model(&["Orphan"]),
            "Eventing consumer [topics.Orphan.Listen] subscribes to the event log [nobody], but no event \
             sourced entity served has the persistence id [nobody]",
        ),
        (
            topics_model(&["NoSource"]),
            "Eventing consumer [topics.NoSource.Listen] has declared an input with no source.",
        ),
        (
            // The subscriber without the entity of `eventlogeventing-two`.
            CloudState::new()
                .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
                .event_sourced(
                    ONE,
                    EntityOne,
                    EventSourcedOptions::new("eventlogeventing-one"),
                )
                .action(
                    SUB,
                    Subscriber {
                        flaky: Arc::default(),
                    },
                ),
            "subscribes to the event log [eventlogeventing-two], but no event sourced entity served",
        ),
    ];
    for (uf, expected) in cases {
        let (error, reported) = refused(uf).await;
        assert!(error.contains(expected), "{error}\nexpected: {expected}");
        assert!(
            reported.iter().any(|r| r.contains(expected)),
            "reported to the user function: {reported:?}"
        );
    }
}

// The official EventingTCK (`verifyEventingProxy`), with the TCK adapter's
// event-log models as user function: what the proxy's interceptor checks
// there, the observer checks here.

/// The entity's stream for `id`: init for `service`, a command, and the
/// reply; returns the reply's events.
async fn entity_stream(
    observed: &mut broadcast::Receiver<Observed>,
    service: &str,
    id: &str,
) -> Vec<Any> {
    use cloudstate_sdk::protocol::cloudstate::eventsourced::{
        event_sourced_stream_in::Message as EsIn, event_sourced_stream_out::Message as EsOut,
    };
    let seen = until(observed, |o| {
        matches!(o, Observed::EventSourcedOut(_, m) if matches!(m.message, Some(EsOut::Reply(_))))
    })
    .await;
    let mut shape = Vec::new();
    let mut events = Vec::new();
    for o in &seen {
        match o {
            Observed::EventSourcedIn(_, m) => match &m.message {
                Some(EsIn::Init(init)) => {
                    assert_eq!(
                        (init.service_name.as_str(), init.entity_id.as_str()),
                        (service, id)
                    );
                    shape.push("init");
                }
                Some(EsIn::Command(_)) => shape.push("command"),
                _ => {}
            },
            Observed::EventSourcedOut(_, m) => {
                if let Some(EsOut::Reply(reply)) = &m.message {
                    shape.push("reply");
                    events.clone_from(&reply.events);
                }
            }
            _ => {}
        }
    }
    assert_eq!(shape, ["init", "command", "reply"]);
    events
}

#[tokio::test]
async fn tck_consume_an_event() {
    let uf = TestServer::start(tck_adapter::server()).await;
    let (proxy, mut observed) = proxy(&uf, Store::memory()).await;
    emit_one(
        proxy.local_addr(),
        "eventlogeventing:1",
        reply_step("some message"),
    )
    .await;
    let events = entity_stream(&mut observed, ONE, "eventlogeventing:1").await;
    assert_eq!(events.len(), 1);
    let (call, command) = command_to(&mut observed, "ProcessEventOne").await;
    assert_eq!(
        EventOne::decode(command.payload.unwrap().value.as_slice()).unwrap(),
        EventOne {
            step: Some(reply_step("some message"))
        }
    );
    assert_eq!(
        replied(&response_of(&mut observed, call).await),
        Some(Response {
            id: "eventlogeventing:1".into(),
            message: "some message".into()
        })
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn tck_forward_a_consumed_event() {
    let uf = TestServer::start(tck_adapter::server()).await;
    let (proxy, mut observed) = proxy(&uf, Store::memory()).await;
    emit_one(
        proxy.local_addr(),
        "eventlogeventing:2",
        forward_step("some message"),
    )
    .await;
    entity_stream(&mut observed, ONE, "eventlogeventing:2").await;
    let (call, _) = command_to(&mut observed, "ProcessEventOne").await;
    let response = response_of(&mut observed, call).await;
    assert!(
        matches!(
            response.response,
            Some(action_response::Response::Forward(_))
        ),
        "{response:?}"
    );
    let (call, _) = command_to(&mut observed, "Effect").await;
    assert_eq!(
        replied(&response_of(&mut observed, call).await),
        Some(Response {
            id: "eventlogeventing:2".into(),
            message: "some message".into()
        })
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn tck_process_json_events() {
    let uf = TestServer::start(tck_adapter::server()).await;
    let (proxy, mut observed) = proxy(&uf, Store::memory()).await;
    let request = JsonEvent {
        id: "eventlogeventing:3".into(),
        message: "some json message".into(),
    };
    let () = grpc(proxy.local_addr(), EMIT_JSON, request).await.unwrap();
    let events = entity_stream(&mut observed, TWO, "eventlogeventing:3").await;
    assert_eq!(events.len(), 1);
    assert!(
        events[0].type_url.starts_with("json.cloudstate.io/"),
        "{}",
        events[0].type_url
    );
    let (call, _) = command_to(&mut observed, "ProcessAnyEvent").await;
    assert_eq!(
        replied(&response_of(&mut observed, call).await),
        Some(Response {
            id: "eventlogeventing:3".into(),
            message: "some json message".into()
        })
    );
    proxy.shutdown().await;
}
