//! The recorder between a proxy and a user function, over real gRPC on
//! 127.0.0.1: the test kit's driver (or the dev proxy) plays the proxy, the
//! TCK adapter (or a stub) the user function. What the recorder logs must be
//! exactly what went through, and both sides must see the same calls as
//! without it.

use std::net::SocketAddr;
use std::time::Duration;

use cloudstate_interop::recorder::{Call, CallStatus, Event, Inbound, Outbound, Recorder, Service};
use cloudstate_sdk::protocol::cloudstate::crdt::{CrdtReply, CrdtStreamOut, crdt_stream_out};
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, EventSourcedStreamOut,
    event_sourced_client::EventSourcedClient,
    event_sourced_server::{EventSourced, EventSourcedServer},
    event_sourced_stream_in::Message as EsIn,
    event_sourced_stream_out::Message as EsOut,
};
use cloudstate_sdk::protocol::cloudstate::valueentity::value_entity_stream_out::Message as VeOut;
use cloudstate_sdk::testkit::{
    ProtocolDriver, TestServer, action as a, crdt, eventsourced as es, proxy_info,
    valueentity as ve,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Code, Request, Response, Status, Streaming};

use tck_adapter::proto::cloudstate::tck::model as tck;

const ES_MODEL: &str = "cloudstate.tck.model.EventSourcedTckModel";
const VE_MODEL: &str = "cloudstate.tck.model.valueentity.ValueEntityTckModel";
const CRDT_MODEL: &str = "cloudstate.tck.model.crdt.CrdtTckModel";
const ACTION_MODEL: &str = "cloudstate.tck.model.action.ActionTckModel";

/// The TCK adapter behind a recorder, and a driver connected to the recorder.
struct Setup {
    user_function: TestServer,
    recorder: Recorder,
    driver: ProtocolDriver,
}

async fn setup() -> Setup {
    let user_function = TestServer::start(tck_adapter::server()).await;
    let recorder = Recorder::start(user_function.addr()).await;
    let driver = ProtocolDriver::connect(recorder.addr()).await.unwrap();
    Setup {
        user_function,
        recorder,
        driver,
    }
}

fn started(service: Service, method: &'static str, call_id: usize) -> Event {
    Event::CallStarted {
        service,
        method,
        call_id,
    }
}

fn ended_ok() -> Event {
    Event::Ended {
        status: CallStatus::ok(),
    }
}

/// The log once call `id` is over.
async fn ended(recorder: &Recorder, id: usize) -> Call {
    let log = recorder
        .wait_for(|log| log.call(id).is_some_and(Call::is_ended))
        .await
        .unwrap();
    log.call(id).unwrap().clone()
}

#[tokio::test]
async fn discovery_and_report_error_are_forwarded_and_recorded() {
    let s = setup().await;
    let spec = s.driver.discover(proxy_info()).await.unwrap();
    let direct = s.user_function.driver().await;
    assert_eq!(spec, direct.discover(proxy_info()).await.unwrap());
    s.driver
        .report_error("the spec is not usable")
        .await
        .unwrap();

    let discover = ended(&s.recorder, 0).await;
    assert_eq!(
        (discover.service, discover.method),
        (Service::EntityDiscovery, "discover")
    );
    assert_eq!(
        discover.events,
        vec![
            started(Service::EntityDiscovery, "discover", 0),
            Event::In(Inbound::Discover(proxy_info())),
            Event::Out(Outbound::Discover(spec)),
            ended_ok(),
        ]
    );
    let report = ended(&s.recorder, 1).await;
    assert_eq!(
        report.events,
        vec![
            started(Service::EntityDiscovery, "reportError", 1),
            Event::In(Inbound::ReportError(
                cloudstate_sdk::protocol::cloudstate::UserFunctionError {
                    message: "the spec is not usable".into(),
                }
            )),
            Event::Out(Outbound::ReportError),
            ended_ok(),
        ]
    );
    // The direct call bypassed the recorder.
    assert_eq!(s.recorder.calls().len(), 2);
}

#[tokio::test]
async fn event_sourced_stream_is_recorded_until_both_sides_end() {
    let s = setup().await;
    let id = "recorded-es";
    let init = es::init(ES_MODEL, id);
    let request = tck::Request {
        id: id.into(),
        actions: vec![tck::RequestAction {
            action: Some(tck::request_action::Action::Emit(tck::Emit {
                value: "A".into(),
            })),
        }],
    };
    let command = es::command(1, id, "Process", &request);
    let mut stream = s.driver.event_sourced().await;
    stream.send(init.clone()).await;
    stream.send(command.clone()).await;
    let reply = stream.next_message().await;
    assert!(
        matches!(&reply.message, Some(EsOut::Reply(r)) if r.command_id == 1 && r.events.len() == 1),
        "{reply:?}"
    );
    stream.passivate().await;

    let call = ended(&s.recorder, 0).await;
    assert_eq!(
        call.events,
        vec![
            started(Service::EventSourced, "handle", 0),
            Event::In(Inbound::EventSourced(init.clone())),
            Event::In(Inbound::EventSourced(command)),
            Event::Out(Outbound::EventSourced(reply.clone())),
            Event::InClosed,
            ended_ok(),
        ]
    );
    assert_eq!(call.entity(), Some((ES_MODEL, id)));
    assert_eq!(call.ins::<EventSourcedStreamIn>()[0], &init);
    assert_eq!(call.outs::<EventSourcedStreamOut>(), vec![&reply]);
    let log = s.recorder.log();
    assert_eq!(log.entity_streams(ES_MODEL, id).len(), 1);
    assert_eq!(
        log.by_entity().keys().collect::<Vec<_>>(),
        vec![&(ES_MODEL, id)]
    );
}

#[tokio::test]
async fn value_entity_stream_is_recorded() {
    use tck::valueentity as model;
    let s = setup().await;
    let id = "recorded-ve";
    let init = ve::init(VE_MODEL, id);
    let request = model::Request {
        id: id.into(),
        actions: vec![model::RequestAction {
            action: Some(model::request_action::Action::Update(model::Update {
                value: "one".into(),
            })),
        }],
    };
    let command = ve::command(1, id, "Process", &request);
    let mut stream = s.driver.value_entity().await;
    stream.send(init.clone()).await;
    stream.send(command.clone()).await;
    let reply = stream.next_message().await;
    assert!(
        matches!(&reply.message, Some(VeOut::Reply(r)) if r.command_id == 1 && r.state_action.is_some()),
        "{reply:?}"
    );
    stream.passivate().await;

    let call = ended(&s.recorder, 0).await;
    assert_eq!(
        call.events,
        vec![
            started(Service::ValueEntity, "handle", 0),
            Event::In(Inbound::ValueEntity(init)),
            Event::In(Inbound::ValueEntity(command)),
            Event::Out(Outbound::ValueEntity(reply)),
            Event::InClosed,
            ended_ok(),
        ]
    );
    assert_eq!(call.entity(), Some((VE_MODEL, id)));
}

#[tokio::test]
async fn crdt_stream_with_a_streamed_command_is_recorded() {
    use tck::crdt as model;
    let s = setup().await;
    let id = "GCounter-recorded";
    let init = crdt::init(CRDT_MODEL, id);
    let subscribe = crdt::streamed_command(
        1,
        id,
        "ProcessStreamed",
        &model::StreamedRequest {
            id: id.into(),
            ..Default::default()
        },
    );
    let increment = crdt::command(
        2,
        id,
        "Process",
        &model::Request {
            id: id.into(),
            actions: vec![model::RequestAction {
                action: Some(model::request_action::Action::Update(model::Update {
                    update: Some(model::update::Update::Gcounter(model::GCounterUpdate {
                        increment: 1,
                    })),
                    write_consistency: model::UpdateWriteConsistency::Local.into(),
                })),
            }],
        },
    );
    let mut stream = s.driver.crdt().await;
    stream.send(init.clone()).await;
    stream.send(subscribe.clone()).await;
    let subscribed = stream.next_message().await;
    assert!(is_reply(&subscribed, 1, true), "{subscribed:?}");
    stream.send(increment.clone()).await;
    let replied = stream.next_message().await;
    let pushed = stream.next_message().await;
    assert!(is_reply(&replied, 2, false), "{replied:?}");
    assert!(
        matches!(&pushed.message, Some(crdt_stream_out::Message::StreamedMessage(m)) if m.command_id == 1),
        "{pushed:?}"
    );
    stream.passivate().await;

    let call = ended(&s.recorder, 0).await;
    assert_eq!(
        call.events,
        vec![
            started(Service::Crdt, "handle", 0),
            Event::In(Inbound::Crdt(init)),
            Event::In(Inbound::Crdt(subscribe)),
            Event::Out(Outbound::Crdt(subscribed)),
            Event::In(Inbound::Crdt(increment)),
            Event::Out(Outbound::Crdt(replied)),
            Event::Out(Outbound::Crdt(pushed)),
            Event::InClosed,
            ended_ok(),
        ]
    );
    assert_eq!(call.entity(), Some((CRDT_MODEL, id)));
}

fn is_reply(out: &CrdtStreamOut, command_id: i64, streamed: bool) -> bool {
    matches!(
        &out.message,
        Some(crdt_stream_out::Message::Reply(CrdtReply { command_id: c, streamed: s, .. }))
            if *c == command_id && *s == streamed
    )
}

fn action_request(replies: &[&str]) -> tck::action::Request {
    use tck::action::{ProcessGroup, ProcessStep, Reply, process_step::Step};
    tck::action::Request {
        groups: replies
            .iter()
            .map(|m| ProcessGroup {
                steps: vec![ProcessStep {
                    step: Some(Step::Reply(Reply {
                        message: (*m).into(),
                    })),
                }],
            })
            .collect(),
    }
}

#[tokio::test]
async fn action_unary_call_is_recorded() {
    let s = setup().await;
    let command = a::command(ACTION_MODEL, "ProcessUnary", &action_request(&["hello"]));
    let response = s.driver.action_unary(command.clone()).await.unwrap();
    assert_eq!(
        response,
        a::reply(&tck::action::Response {
            message: "hello".into()
        })
        .build()
    );

    let call = ended(&s.recorder, 0).await;
    assert_eq!(
        call.events,
        vec![
            started(Service::Action, "handleUnary", 0),
            Event::In(Inbound::Action(command)),
            Event::Out(Outbound::Action(response)),
            ended_ok(),
        ]
    );
}

#[tokio::test]
async fn action_streamed_out_call_is_recorded() {
    let s = setup().await;
    let command = a::command(
        ACTION_MODEL,
        "ProcessStreamedOut",
        &action_request(&["one", "two"]),
    );
    let mut out = s.driver.action_streamed_out(command.clone()).await;
    let mut responses = Vec::new();
    while let Some(response) = out.next().await {
        responses.push(response.unwrap());
    }
    assert_eq!(responses.len(), 2, "{responses:?}");

    let call = ended(&s.recorder, 0).await;
    let mut expected = vec![
        started(Service::Action, "handleStreamedOut", 0),
        Event::In(Inbound::Action(command)),
    ];
    expected.extend(
        responses
            .into_iter()
            .map(|r| Event::Out(Outbound::Action(r))),
    );
    expected.push(ended_ok());
    assert_eq!(call.events, expected);
}

// A stub user function, to see what arrives on its side.

/// Entity ids the stub treats specially.
const FAIL: &str = "fail";
const HELD: &str = "held";
const FAILURE: &str = "the stub refuses this entity";

/// What the stub saw of one stream.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The request's `x-interop` metadata.
    Metadata(Option<String>),
    /// Its input ended (tonic reports a reset as an end too).
    InputEnded,
    /// Its response was dropped before it ended it: the call was cancelled.
    ResponseDropped,
}

/// An event-sourced "user function" that answers nothing. For entity
/// [`FAIL`] it fails the stream; for [`HELD`] it keeps its output open until
/// the call is cancelled; for any other it ends its output when its input ends.
#[derive(Clone)]
struct Stub {
    seen: mpsc::UnboundedSender<Seen>,
}

#[tonic::async_trait]
impl EventSourced for Stub {
    type handleStream = ReceiverStream<Result<EventSourcedStreamOut, Status>>;

    async fn handle(
        &self,
        request: Request<Streaming<EventSourcedStreamIn>>,
    ) -> Result<Response<Self::handleStream>, Status> {
        let seen = self.seen.clone();
        let metadata = request
            .metadata()
            .get("x-interop")
            .map(|v| v.to_str().unwrap().to_owned());
        seen.send(Seen::Metadata(metadata)).unwrap();
        let mut input = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut held = false;
            loop {
                tokio::select! {
                    () = tx.closed() => {
                        let _ = seen.send(Seen::ResponseDropped);
                        return;
                    }
                    message = input.message() => match message {
                        Ok(Some(EventSourcedStreamIn {
                            message: Some(EsIn::Init(init)),
                        })) if init.entity_id == FAIL => {
                            let _ = tx.send(Err(Status::failed_precondition(FAILURE))).await;
                            return;
                        }
                        Ok(Some(EventSourcedStreamIn {
                            message: Some(EsIn::Init(init)),
                        })) => held = init.entity_id == HELD,
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => {
                            let _ = seen.send(Seen::InputEnded);
                            if !held {
                                return;
                            }
                            tx.closed().await;
                            let _ = seen.send(Seen::ResponseDropped);
                            return;
                        }
                    },
                }
            }
        });
        let mut response = Response::new(ReceiverStream::new(rx));
        response
            .metadata_mut()
            .insert("x-stub", "from the user function".parse().unwrap());
        Ok(response)
    }
}

/// The stub behind a recorder.
async fn stub() -> (Recorder, mpsc::UnboundedReceiver<Seen>) {
    let (seen, rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EventSourcedServer::new(Stub { seen }))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (Recorder::start(addr).await, rx)
}

async fn next_seen(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the stub saw nothing within 10 s")
        .expect("the stub is gone")
}

#[tokio::test]
async fn user_function_stream_failure_status_passes_through() {
    let (recorder, _seen) = stub().await;
    let driver = ProtocolDriver::connect(recorder.addr()).await.unwrap();
    let mut stream = driver.event_sourced().await;
    let init = es::init("stub.Stub", FAIL);
    stream.send(init.clone()).await;
    let status = match stream.next().await {
        Some(Err(status)) => status,
        other => panic!("expected the stub's failure, got {other:?}"),
    };
    assert_eq!(
        (status.code(), status.message()),
        (Code::FailedPrecondition, FAILURE)
    );

    let call = ended(&recorder, 0).await;
    assert_eq!(
        call.events,
        vec![
            started(Service::EventSourced, "handle", 0),
            Event::In(Inbound::EventSourced(init)),
            Event::Ended {
                status: CallStatus {
                    code: Code::FailedPrecondition,
                    message: FAILURE.into(),
                }
            },
        ]
    );
}

/// Opens a stream to the stub through the recorder with `x-interop`
/// metadata and sends an `init`; returns the input sender, the response
/// and the handle that cancels the call.
async fn open_stub_stream(
    recorder: &Recorder,
    entity_id: &str,
) -> (
    mpsc::Sender<EventSourcedStreamIn>,
    Response<Streaming<EventSourcedStreamOut>>,
    tonic::CancellationHandle,
) {
    let mut client = EventSourcedClient::connect(format!("http://{}", recorder.addr()))
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(4);
    tx.send(es::init("stub.Stub", entity_id)).await.unwrap();
    let mut request = Request::new(ReceiverStream::new(rx));
    request
        .metadata_mut()
        .insert("x-interop", "from the proxy".parse().unwrap());
    let cancel = request.cancellation_handle();
    let response = client.handle(request).await.unwrap();
    (tx, response, cancel)
}

#[tokio::test]
async fn metadata_passes_both_ways_and_a_half_close_stays_a_half_close() {
    let (recorder, mut seen) = stub().await;
    let (tx, response, _cancel) = open_stub_stream(&recorder, "passive").await;
    assert_eq!(
        response.metadata().get("x-stub").unwrap(),
        "from the user function"
    );
    assert_eq!(
        next_seen(&mut seen).await,
        Seen::Metadata(Some("from the proxy".into()))
    );
    drop(tx);
    assert_eq!(next_seen(&mut seen).await, Seen::InputEnded);
    // The stub ended its output itself: the proxy sees the end, with OK.
    let mut output = response.into_inner();
    assert!(output.message().await.unwrap().is_none());

    let call = ended(&recorder, 0).await;
    assert_eq!(call.metadata.get("x-interop").unwrap(), "from the proxy");
    assert_eq!(
        call.events,
        vec![
            started(Service::EventSourced, "handle", 0),
            Event::In(Inbound::EventSourced(es::init("stub.Stub", "passive"))),
            Event::InClosed,
            ended_ok(),
        ]
    );
}

#[tokio::test]
async fn a_proxy_cancellation_cancels_the_user_function_call() {
    let (recorder, mut seen) = stub().await;
    let (tx, response, cancel) = open_stub_stream(&recorder, HELD).await;
    assert!(matches!(next_seen(&mut seen).await, Seen::Metadata(_)));
    recorder
        .wait_for(|log| {
            log.call(0)
                .is_some_and(|c| c.ins::<EventSourcedStreamIn>().len() == 1)
        })
        .await
        .unwrap();
    cancel.cancel();
    // The held stub keeps its output open until the recorder drops the call.
    loop {
        match next_seen(&mut seen).await {
            Seen::InputEnded => {}
            Seen::ResponseDropped => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let call = ended(&recorder, 0).await;
    assert_eq!(
        call.events,
        vec![
            started(Service::EventSourced, "handle", 0),
            Event::In(Inbound::EventSourced(es::init("stub.Stub", HELD))),
            Event::Ended {
                status: CallStatus {
                    code: Code::Cancelled,
                    message: "the proxy cancelled the call".into(),
                }
            },
        ]
    );
    drop((tx, response));
}

// The dev proxy in front of the recorder.

/// One plain HTTP/1.1 exchange: (status, body).
async fn http_post(addr: SocketAddr, path: &str, json: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

#[tokio::test]
async fn the_dev_proxy_through_the_recorder() {
    use cloudstate_devproxy::{DevProxy, DevProxyConfig};
    let user_function = TestServer::start(shopping_cart::register(
        cloudstate_sdk::CloudState::new(),
        5,
    ))
    .await;
    let recorder = Recorder::start(user_function.addr()).await;
    let mut config = DevProxyConfig::new(recorder.addr().to_string());
    config.discovery_timeout = Duration::from_secs(10);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = DevProxy::start(config, listener).await.unwrap();

    let add = r#"{"productId":"apple","name":"Apple","quantity":2}"#;
    let (status, body) = http_post(proxy.local_addr(), "/cart/alice/items/add", add).await;
    assert_eq!((status, body.as_str()), (200, "{}"));

    let cart = shopping_cart::SERVICE;
    let log = recorder
        .wait_for(|log| {
            log.entity_streams(cart, "alice")
                .iter()
                .any(|c| !c.outs::<EventSourcedStreamOut>().is_empty())
        })
        .await
        .unwrap();
    let discovery: Vec<&Call> = log.calls_to(Service::EntityDiscovery, "discover").collect();
    assert!(!discovery.is_empty());
    let spec = discovery[0].outs::<cloudstate_sdk::protocol::cloudstate::EntitySpec>();
    assert!(spec[0].entities.iter().any(|e| e.service_name == cart));
    assert_eq!(discovery[0].status(), Some(&CallStatus::ok()));

    let streams = log.entity_streams(cart, "alice");
    assert_eq!(streams.len(), 1);
    let stream = streams[0];
    assert_eq!(
        (stream.service, stream.method),
        (Service::EventSourced, "handle")
    );
    let commands: Vec<_> = stream
        .ins::<EventSourcedStreamIn>()
        .into_iter()
        .filter_map(|m| match &m.message {
            Some(EsIn::Command(c)) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(commands.len(), 1);
    assert_eq!(
        (commands[0].entity_id.as_str(), commands[0].name.as_str()),
        ("alice", "AddItem")
    );
    let replies = stream.outs::<EventSourcedStreamOut>();
    assert!(
        matches!(&replies[0].message, Some(EsOut::Reply(r)) if r.command_id == commands[0].id),
        "{replies:?}"
    );
    proxy.shutdown().await;
}
