//! The action scenarios of the dev proxy brief (§3.4: the TCK's proxy tests
//! A1–A9) for each call shape, over gRPC and HTTP, against the TCK adapter;
//! the observer shows what the user function saw. Then request metadata,
//! failures in the middle of a stream and cancellation.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cloudstate_devproxy::{ActionShape, Observed};
use cloudstate_sdk::action::{BoxFuture, BoxStream};
use cloudstate_sdk::protocol::cloudstate::action::{ActionCommand, ActionResponse};
use cloudstate_sdk::protocol::cloudstate::metadata_entry::Value;
use cloudstate_sdk::testkit::action as a;
use cloudstate_sdk::testkit::eventsourced::side_effect;
use cloudstate_sdk::{
    ActionContext, ActionHandler, ActionMessage, ActionReply, ActionResult, CloudState, ServiceCall,
};
use futures_util::StreamExt;
use support::{http, http_with_headers, start, until};
use tck_adapter::proto::cloudstate::tck::model::action::{
    Fail, Forward, OtherRequest, ProcessGroup, ProcessStep, Reply, Request, Response, SideEffect,
    process_step::Step,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

const SVC: &str = "cloudstate.tck.model.action.ActionTckModel";
const TWO: &str = "cloudstate.tck.model.action.ActionTwo";

fn step(s: Step) -> ProcessStep {
    ProcessStep { step: Some(s) }
}
fn reply(m: &str) -> ProcessStep {
    step(Step::Reply(Reply { message: m.into() }))
}
fn forward(id: &str) -> ProcessStep {
    step(Step::Forward(Forward { id: id.into() }))
}
fn fail(m: &str) -> ProcessStep {
    step(Step::Fail(Fail { message: m.into() }))
}
fn effect(id: &str, synchronous: bool) -> ProcessStep {
    step(Step::Effect(SideEffect {
        id: id.into(),
        synchronous,
    }))
}
/// A request of one group per `groups` item.
fn request(groups: Vec<Vec<ProcessStep>>) -> Request {
    Request {
        groups: groups
            .into_iter()
            .map(|steps| ProcessGroup { steps })
            .collect(),
    }
}
fn single(steps: Vec<ProcessStep>) -> Request {
    request(vec![steps])
}
fn resp(m: &str) -> Response {
    Response { message: m.into() }
}
fn other(id: &str) -> OtherRequest {
    OtherRequest { id: id.into() }
}
fn call_two(id: &str, synchronous: bool) -> cloudstate_sdk::protocol::cloudstate::SideEffect {
    side_effect(TWO, "Call", &other(id), synchronous)
}

/// What one action call exchanged with the user function.
#[derive(Debug, Clone, PartialEq)]
enum Msg {
    /// A command, metadata stripped (compared separately, as the TCK ignores it).
    In(ActionCommand),
    Out(ActionResponse),
    InClosed,
    OutClosed(bool),
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
struct Call {
    method: String,
    shape: ActionShape,
    msgs: Vec<Msg>,
    /// The metadata of each command, in order.
    metadata: Vec<Option<cloudstate_sdk::protocol::cloudstate::Metadata>>,
}

/// The action calls observed until `ends` of them ended (completed by the
/// user function or cancelled), in the order they started.
async fn calls(observed: &mut broadcast::Receiver<Observed>, ends: usize) -> Vec<Call> {
    let mut left = ends;
    let seen = until(observed, |o| {
        if matches!(
            o,
            Observed::OutputClosed { .. } | Observed::ActionCancelled(_)
        ) {
            left -= 1;
        }
        left == 0
    })
    .await;
    let mut order = Vec::new();
    let mut by_call: HashMap<u64, Call> = HashMap::new();
    for item in seen {
        let (n, msg) = match item {
            Observed::ActionCall {
                call,
                service,
                method,
                shape,
            } => {
                order.push(call);
                by_call.insert(
                    call,
                    Call {
                        method: format!("{service}.{method}"),
                        shape,
                        msgs: Vec::new(),
                        metadata: Vec::new(),
                    },
                );
                continue;
            }
            Observed::ActionIn(n, mut command) => {
                let metadata = command.metadata.take();
                if let Some(call) = by_call.get_mut(&n) {
                    call.metadata.push(metadata);
                }
                (n, Msg::In(command))
            }
            Observed::ActionOut(n, response) => (n, Msg::Out(response)),
            Observed::InputClosed(n) => (n, Msg::InClosed),
            Observed::OutputClosed { stream, ok } => (stream, Msg::OutClosed(ok)),
            Observed::ActionCancelled(n) => (n, Msg::Cancelled),
            _ => continue,
        };
        // Calls that started before are left out.
        if let Some(call) = by_call.get_mut(&n) {
            call.msgs.push(msg);
        }
    }
    order
        .into_iter()
        .filter_map(|n| by_call.remove(&n))
        .collect()
}

fn unary_call(name: &str, command: ActionCommand, response: ActionResponse) -> Call {
    Call {
        method: name.into(),
        shape: ActionShape::Unary,
        msgs: vec![Msg::In(command), Msg::Out(response), Msg::OutClosed(true)],
        metadata: Vec::new(),
    }
}

/// `call` without its metadata, for comparisons.
fn plain(mut call: Call) -> Call {
    call.metadata.clear();
    call
}

async fn client(addr: SocketAddr) -> tonic::client::Grpc<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    client
}

fn path(method: &str) -> tonic::codegen::http::uri::PathAndQuery {
    format!("/{SVC}/{method}").parse().unwrap()
}

fn codec() -> tonic_prost::ProstCodec<Request, Response> {
    tonic_prost::ProstCodec::default()
}

async fn unary(addr: SocketAddr, request: Request) -> Result<Response, tonic::Status> {
    unary_with(addr, tonic::Request::new(request)).await
}

async fn unary_with(
    addr: SocketAddr,
    request: tonic::Request<Request>,
) -> Result<Response, tonic::Status> {
    let mut client = client(addr).await;
    client
        .unary(request, path("ProcessUnary"), codec())
        .await
        .map(tonic::Response::into_inner)
}

/// A duplex call whose requests the test sends through the returned sender.
/// The first request goes out before the response headers are awaited (they
/// wait for the first answer).
async fn duplex(
    addr: SocketAddr,
    first: Request,
) -> (
    mpsc::Sender<Request>,
    Result<tonic::Streaming<Response>, tonic::Status>,
) {
    let mut client = client(addr).await;
    let (tx, rx) = mpsc::channel(16);
    tx.send(first).await.unwrap();
    let response = client
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            path("ProcessStreamed"),
            codec(),
        )
        .await
        .map(tonic::Response::into_inner);
    (tx, response)
}

async fn message(stream: &mut tonic::Streaming<Response>) -> Option<Response> {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a message within 10 s")
        .unwrap()
}

#[tokio::test]
async fn a1_unary_reply() {
    let mut s = start(tck_adapter::server()).await;
    let req = single(vec![reply("one")]);
    let got = unary(s.proxy.local_addr(), req.clone()).await.unwrap();
    assert_eq!(got, resp("one"));
    let seen = calls(&mut s.observed, 1).await;
    assert_eq!(
        seen.into_iter().map(plain).collect::<Vec<_>>(),
        vec![unary_call(
            &format!("{SVC}.ProcessUnary"),
            a::command(SVC, "ProcessUnary", &req),
            a::reply(&resp("one")).build()
        )]
    );
}

#[tokio::test]
async fn a2_streamed_in() {
    let mut s = start(tck_adapter::server()).await;
    let mut client = client(s.proxy.local_addr()).await;
    let req = single(vec![reply("two")]);
    let got = client
        .client_streaming(
            tonic::Request::new(tokio_stream::iter([req.clone()])),
            path("ProcessStreamedIn"),
            codec(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, resp("two"));
    let seen = calls(&mut s.observed, 1).await;
    assert_eq!(
        plain(seen[0].clone()),
        Call {
            method: format!("{SVC}.ProcessStreamedIn"),
            shape: ActionShape::StreamedIn,
            msgs: vec![
                Msg::In(a::start(SVC, "ProcessStreamedIn")),
                Msg::In(a::element(&req)),
                Msg::InClosed,
                Msg::Out(a::reply(&resp("two")).build()),
                Msg::OutClosed(true),
            ],
            metadata: Vec::new(),
        }
    );
    // The call's metadata is on the first command only.
    assert!(seen[0].metadata[0].is_some());
    assert_eq!(seen[0].metadata[1], None);
}

#[tokio::test]
async fn a3_streamed_out() {
    let mut s = start(tck_adapter::server()).await;
    let mut client = client(s.proxy.local_addr()).await;
    let req = request(vec![vec![reply("A")], vec![reply("B")], vec![reply("C")]]);
    let mut stream = client
        .server_streaming(
            tonic::Request::new(req.clone()),
            path("ProcessStreamedOut"),
            codec(),
        )
        .await
        .unwrap()
        .into_inner();
    for m in ["A", "B", "C"] {
        assert_eq!(message(&mut stream).await, Some(resp(m)));
    }
    assert_eq!(message(&mut stream).await, None);
    let seen = calls(&mut s.observed, 1).await;
    assert_eq!(
        plain(seen[0].clone()),
        Call {
            method: format!("{SVC}.ProcessStreamedOut"),
            shape: ActionShape::StreamedOut,
            msgs: vec![
                Msg::In(a::command(SVC, "ProcessStreamedOut", &req)),
                Msg::Out(a::reply(&resp("A")).build()),
                Msg::Out(a::reply(&resp("B")).build()),
                Msg::Out(a::reply(&resp("C")).build()),
                Msg::OutClosed(true),
            ],
            metadata: Vec::new(),
        }
    );
}

#[tokio::test]
async fn a4_duplex() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let reqs: Vec<Request> = ["X", "Y", "Z"]
        .iter()
        .map(|m| single(vec![reply(m)]))
        .collect();
    let (tx, stream) = duplex(addr, reqs[0].clone()).await;
    let mut stream = stream.unwrap();
    assert_eq!(message(&mut stream).await, Some(resp("X")));
    for req in &reqs[1..] {
        tx.send(req.clone()).await.unwrap();
    }
    drop(tx);
    assert_eq!(message(&mut stream).await, Some(resp("Y")));
    assert_eq!(message(&mut stream).await, Some(resp("Z")));
    assert_eq!(message(&mut stream).await, None);
    let seen = calls(&mut s.observed, 1).await;
    let call = plain(seen[0].clone());
    assert_eq!(call.shape, ActionShape::Streamed);
    let ins: Vec<_> = call
        .msgs
        .iter()
        .filter(|m| matches!(m, Msg::In(_)))
        .cloned()
        .collect();
    let outs: Vec<_> = call
        .msgs
        .iter()
        .filter(|m| matches!(m, Msg::Out(_)))
        .cloned()
        .collect();
    let mut expected_ins = vec![Msg::In(a::start(SVC, "ProcessStreamed"))];
    expected_ins.extend(reqs.iter().map(|r| Msg::In(a::element(r))));
    assert_eq!(ins, expected_ins);
    assert_eq!(
        outs,
        ["X", "Y", "Z"]
            .iter()
            .map(|m| Msg::Out(a::reply(&resp(m)).build()))
            .collect::<Vec<_>>()
    );
    assert_eq!(call.msgs.last(), Some(&Msg::OutClosed(true)));
    assert!(call.msgs.contains(&Msg::InClosed));
}

#[tokio::test]
async fn a5_unary_forward_and_side_effect() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let req = single(vec![forward("other")]);
    assert_eq!(unary(addr, req.clone()).await.unwrap(), resp(""));
    let seen: Vec<Call> = calls(&mut s.observed, 2).await;
    assert_eq!(
        seen.iter().cloned().map(plain).collect::<Vec<_>>(),
        vec![
            unary_call(
                &format!("{SVC}.ProcessUnary"),
                a::command(SVC, "ProcessUnary", &req),
                a::forward(TWO, "Call", &other("other")).build()
            ),
            unary_call(
                &format!("{TWO}.Call"),
                a::command(TWO, "Call", &other("other")),
                a::reply(&Response::default()).build()
            ),
        ]
    );
    // A forward carries only its own metadata: none here.
    assert_eq!(seen[1].metadata, vec![None]);

    let req = single(vec![reply(""), effect("another", false)]);
    assert_eq!(unary(addr, req.clone()).await.unwrap(), resp(""));
    let seen: Vec<Call> = calls(&mut s.observed, 2).await;
    assert_eq!(
        seen.into_iter().map(plain).collect::<Vec<_>>(),
        vec![
            unary_call(
                &format!("{SVC}.ProcessUnary"),
                a::command(SVC, "ProcessUnary", &req),
                a::reply(&resp(""))
                    .side_effect(call_two("another", false))
                    .build()
            ),
            unary_call(
                &format!("{TWO}.Call"),
                a::command(TWO, "Call", &other("another")),
                a::reply(&Response::default()).build()
            ),
        ]
    );
}

#[tokio::test]
async fn a6_streamed_forward_and_side_effect() {
    let mut s = start(tck_adapter::server()).await;
    let mut all = s.observer.subscribe();
    let addr = s.proxy.local_addr();
    let (tx, stream) = duplex(addr, single(vec![forward("one")])).await;
    let mut stream = stream.unwrap();
    assert_eq!(message(&mut stream).await, Some(resp("")));
    // The forward's call to ActionTwo ended.
    let seen = calls(&mut s.observed, 1).await;
    assert_eq!(
        plain(seen[1].clone()),
        unary_call(
            &format!("{TWO}.Call"),
            a::command(TWO, "Call", &other("one")),
            a::reply(&Response::default()).build()
        )
    );
    // A side effect only: the client gets nothing, ActionTwo gets a call.
    tx.send(single(vec![effect("two", true)])).await.unwrap();
    let seen = calls(&mut s.observed, 1).await;
    assert_eq!(
        plain(seen[0].clone()),
        unary_call(
            &format!("{TWO}.Call"),
            a::command(TWO, "Call", &other("two")),
            a::reply(&Response::default()).build()
        )
    );
    drop(tx);
    assert_eq!(message(&mut stream).await, None);
    let seen = calls(&mut all, 3).await;
    assert_eq!(
        plain(seen[0].clone()).msgs,
        vec![
            Msg::In(a::start(SVC, "ProcessStreamed")),
            Msg::In(a::element(&single(vec![forward("one")]))),
            Msg::Out(a::forward(TWO, "Call", &other("one")).build()),
            Msg::In(a::element(&single(vec![effect("two", true)]))),
            Msg::Out(a::no_reply().side_effect(call_two("two", true)).build()),
            Msg::InClosed,
            Msg::OutClosed(true),
        ]
    );
}

#[tokio::test]
async fn a7_unary_failure() {
    let s = start(tck_adapter::server()).await;
    let status = unary(s.proxy.local_addr(), single(vec![fail("expected failure")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(status.message(), "expected failure");

    // The side effects of an action's failure are performed.
    let mut s = s;
    let req = single(vec![fail("two"), effect("other", true)]);
    let status = unary(s.proxy.local_addr(), req.clone()).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unknown, "two"));
    let seen = until(
        &mut s.observed,
        |o| matches!(o, Observed::ActionIn(_, c) if c.name == "Call"),
    )
    .await;
    assert!(seen.iter().any(|o| matches!(
        o,
        Observed::ActionIn(_, c) if c.payload == a::command(TWO, "Call", &other("other")).payload
    )));
}

#[tokio::test]
async fn a8_streamed_failure_cancels_both_sides() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let (tx, stream) = duplex(addr, single(vec![fail("expected failure")])).await;
    // The failure is the first answer, so it comes as the call's status.
    let status = match stream {
        Err(status) => status,
        Ok(mut stream) => stream.message().await.unwrap_err(),
    };
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(status.message(), "expected failure");
    let seen = calls(&mut s.observed, 1).await;
    assert_eq!(
        plain(seen[0].clone()).msgs,
        vec![
            Msg::In(a::start(SVC, "ProcessStreamed")),
            Msg::In(a::element(&single(vec![fail("expected failure")]))),
            Msg::Out(a::failure("expected failure").build()),
            Msg::Cancelled,
        ]
    );
    // The client's request stream is cancelled too.
    tokio::time::timeout(Duration::from_secs(10), tx.closed())
        .await
        .expect("the request stream is dropped");
}

#[tokio::test]
async fn a_failure_in_the_middle_of_a_stream_ends_the_call() {
    let s = start(tck_adapter::server()).await;
    let mut client = client(s.proxy.local_addr()).await;
    let req = request(vec![vec![reply("A")], vec![fail("boom")], vec![reply("C")]]);
    let mut stream = client
        .server_streaming(
            tonic::Request::new(req),
            path("ProcessStreamedOut"),
            codec(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(message(&mut stream).await, Some(resp("A")));
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(status.message(), "boom");

    // In a duplex call, after an answer.
    let (tx, stream) = duplex(s.proxy.local_addr(), single(vec![reply("ok")])).await;
    let mut stream = stream.unwrap();
    assert_eq!(message(&mut stream).await, Some(resp("ok")));
    tx.send(single(vec![fail("later")])).await.unwrap();
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(status.message(), "later");
}

#[tokio::test]
async fn request_headers_reach_the_action_as_metadata() {
    let mut s = start(tck_adapter::server()).await;
    let mut request = tonic::Request::new(single(vec![forward("f")]));
    request
        .metadata_mut()
        .insert("x-custom", "hello".parse().unwrap());
    unary_with(s.proxy.local_addr(), request).await.unwrap();
    let seen = calls(&mut s.observed, 2).await;
    let metadata = seen[0].metadata[0].clone().expect("metadata");
    let entries: Vec<(String, String)> = metadata
        .entries
        .iter()
        .map(|e| match &e.value {
            Some(Value::StringValue(v)) => (e.key.clone(), v.clone()),
            other => panic!("not a string entry: {other:?}"),
        })
        .collect();
    assert!(entries.contains(&("x-custom".into(), "hello".into())));
    assert!(entries.iter().all(|(k, _)| k != "content-type"));
    // The forwarded call carries no metadata of the original.
    assert_eq!(seen[1].metadata, vec![None]);
}

/// A client that cancels its duplex call (HTTP/2 `RST_STREAM`) cancels the
/// user function's call.
#[tokio::test]
async fn a_client_that_cancels_cancels_the_user_function_call() {
    let mut s = start(tck_adapter::server()).await;
    let mut client = client(s.proxy.local_addr()).await;
    let (tx, rx) = mpsc::channel(16);
    tx.send(single(vec![reply("one")])).await.unwrap();
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    let cancel = request.cancellation_handle();
    let mut stream = client
        .streaming(request, path("ProcessStreamed"), codec())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(message(&mut stream).await, Some(resp("one")));
    cancel.cancel();
    let seen = calls(&mut s.observed, 1).await;
    assert_eq!(seen[0].msgs.last(), Some(&Msg::Cancelled));
    assert!(!seen[0].msgs.contains(&Msg::InClosed));
    drop(tx);
}

#[tokio::test]
async fn a9_http_unary_reply_and_failure() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let (status, content_type, body) = http(
        addr,
        "POST",
        "/tck/model/action/unary",
        Some(r#"{"groups":[{"steps":[{"reply":{"message":"foo"}}]}]}"#),
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(body, r#"{"message":"foo"}"#);
    let (status, _, body) = http(
        addr,
        "POST",
        "/tck/model/action/unary",
        Some(r#"{"groups":[{"steps":[{"fail":{"message":"boom"}}]}]}"#),
    )
    .await;
    assert_eq!((status, body.as_str()), (500, "boom"));
}

#[tokio::test]
async fn http_headers_reach_the_action_as_metadata() {
    let mut s = start(tck_adapter::server()).await;
    let (status, _, _) = http_with_headers(
        s.proxy.local_addr(),
        "POST",
        "/tck/model/action/unary",
        &[("X-Custom", "hello")],
        Some(r#"{"groups":[{"steps":[{"reply":{"message":"foo"}}]}]}"#),
    )
    .await;
    assert_eq!(status, 200);
    let seen = calls(&mut s.observed, 1).await;
    let metadata = seen[0].metadata[0].clone().expect("metadata");
    let entries: Vec<(String, String)> = metadata
        .entries
        .iter()
        .filter_map(|e| match &e.value {
            Some(Value::StringValue(v)) => Some((e.key.clone(), v.clone())),
            _ => None,
        })
        .collect();
    assert!(entries.contains(&("x-custom".into(), "hello".into())));
    assert!(entries.contains(&("message-accept-encoding".into(), "identity".into())));
    assert!(entries.iter().all(|(k, _)| k != "content-type"));
}

const STREAMED_OUT: &str = "/cloudstate.tck.model.action.ActionTckModel/ProcessStreamedOut";

#[tokio::test]
async fn http_server_streaming_is_newline_delimited_json_or_server_sent_events() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let json = r#"{"groups":[{"steps":[{"reply":{"message":"A"}}]},{"steps":[{"effect":{"id":"e"}}]},{"steps":[{"reply":{"message":"B"}}]}]}"#;
    let (status, content_type, body) = http(addr, "POST", STREAMED_OUT, Some(json)).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(body, "{\"message\":\"A\"}\n{\"message\":\"B\"}\n");
    let (status, content_type, body) = http_with_headers(
        addr,
        "POST",
        STREAMED_OUT,
        &[("Accept", "text/event-stream")],
        Some(json),
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, "text/event-stream"));
    assert_eq!(
        body,
        "data:{\"message\":\"A\"}\n\ndata:{\"message\":\"B\"}\n\n"
    );
    // Bidirectional methods get the one message and stream their answers.
    let (status, _, body) = http(
        addr,
        "POST",
        "/cloudstate.tck.model.action.ActionTckModel/ProcessStreamed",
        Some(json),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, "{\"message\":\"A\"}\n{\"message\":\"B\"}\n");
    // Client-streaming methods get exactly one message.
    let (status, _, body) = http(
        addr,
        "POST",
        "/cloudstate.tck.model.action.ActionTckModel/ProcessStreamedIn",
        Some(json),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":"B"}"#));
}

#[tokio::test]
async fn http_streaming_failures() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    // A failure first is a plain error response.
    let (status, _, body) = http(
        addr,
        "POST",
        STREAMED_OUT,
        Some(r#"{"groups":[{"steps":[{"fail":{"message":"boom"}}]}]}"#),
    )
    .await;
    assert_eq!((status, body.as_str()), (500, "boom"));
    // A failure later aborts the response: the connection closes without
    // the last chunk (what was sent before may or may not have arrived).
    let json = r#"{"groups":[{"steps":[{"reply":{"message":"A"}}]},{"steps":[{"fail":{"message":"boom"}}]},{"steps":[{"reply":{"message":"C"}}]}]}"#;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {STREAMED_OUT} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the connection ends");
    let raw = String::from_utf8_lossy(&raw);
    assert!(!raw.contains("\r\n0\r\n\r\n"), "{raw}");
    assert!(!raw.contains(r#""C""#), "{raw}");
}

/// Answers with the request's `x-custom` metadata, and sets reply metadata.
struct Headers;

fn with_header(reply: ActionReply, key: &str, value: &str) -> ActionReply {
    reply.with_metadata(cloudstate_sdk::Metadata {
        entries: vec![cloudstate_sdk::protocol::cloudstate::MetadataEntry {
            key: key.into(),
            value: Some(Value::StringValue(value.into())),
        }],
    })
}

impl ActionHandler for Headers {
    fn handle_unary(
        self: Arc<Self>,
        _: ActionMessage,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        let custom = ctx
            .metadata_value("x-custom")
            .unwrap_or_default()
            .to_owned();
        if ctx.metadata_value("x-forward").is_some() {
            // To a streaming method, with metadata of the forward's own.
            let call = ServiceCall::message(SVC, "ProcessStreamedOut", &single(vec![]))
                .with_metadata(cloudstate_sdk::Metadata {
                    entries: vec![cloudstate_sdk::protocol::cloudstate::MetadataEntry {
                        key: "x-forwarded".into(),
                        value: Some(Value::StringValue("yes".into())),
                    }],
                });
            return Box::pin(async move { Ok(ActionReply::forward(call)) });
        }
        Box::pin(async move {
            Ok(with_header(
                ActionReply::encode(&resp(&custom)),
                "x-reply",
                "unary",
            ))
        })
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
        ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        let first = format!("1{}", ctx.metadata_value("x-forwarded").unwrap_or_default());
        futures_util::stream::iter([
            Ok(with_header(
                ActionReply::encode(&resp(&first)),
                "x-reply",
                "first",
            )),
            Ok(with_header(
                ActionReply::encode(&resp("2")),
                "x-reply",
                "second",
            )),
        ])
        .boxed()
    }

    fn handle_streamed(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        futures_util::stream::empty().boxed()
    }
}

#[tokio::test]
async fn metadata_in_and_the_first_replys_metadata_as_response_headers() {
    let uf = CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .action(SVC, Headers);
    let s = start(uf).await;
    let addr = s.proxy.local_addr();
    let mut client = client(addr).await;
    let mut request = tonic::Request::new(single(vec![]));
    request
        .metadata_mut()
        .insert("x-custom", "hi".parse().unwrap());
    let response = client
        .unary(request, path("ProcessUnary"), codec())
        .await
        .unwrap();
    assert_eq!(response.metadata().get("x-reply").unwrap(), "unary");
    assert_eq!(response.into_inner(), resp("hi"));

    client.ready().await.unwrap();
    let response = client
        .server_streaming(
            tonic::Request::new(single(vec![])),
            path("ProcessStreamedOut"),
            codec(),
        )
        .await
        .unwrap();
    assert_eq!(response.metadata().get("x-reply").unwrap(), "first");
    let mut stream = response.into_inner();
    assert_eq!(message(&mut stream).await, Some(resp("1")));
    assert_eq!(message(&mut stream).await, Some(resp("2")));
    assert_eq!(message(&mut stream).await, None);

    // Over HTTP, the request headers arrive too.
    let (status, _, body) = http_with_headers(
        addr,
        "POST",
        "/tck/model/action/unary",
        &[("X-Custom", "from http")],
        Some("{}"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":"from http"}"#));

    // A forward to a streaming method calls it in its shape, with the
    // forward's metadata; the first reply is the answer.
    let mut request = tonic::Request::new(single(vec![]));
    request
        .metadata_mut()
        .insert("x-forward", "1".parse().unwrap());
    client.ready().await.unwrap();
    let response = client
        .unary(request, path("ProcessUnary"), codec())
        .await
        .unwrap();
    assert_eq!(response.into_inner(), resp("1yes"));
}

#[tokio::test]
async fn shutdown_drops_calls_still_open_after_the_grace_period() {
    let uf = cloudstate_sdk::testkit::TestServer::start(tck_adapter::server()).await;
    let (proxy, _, _) = support::proxy_with(uf.addr(), |config| {
        config.shutdown_grace = Duration::from_millis(500);
    })
    .await;
    let (tx, stream) = duplex(proxy.local_addr(), single(vec![reply("open")])).await;
    let mut stream = stream.unwrap();
    assert_eq!(message(&mut stream).await, Some(resp("open")));
    tokio::time::timeout(Duration::from_secs(10), proxy.shutdown())
        .await
        .expect("shutdown ends despite the open call");
    drop(tx);
}

/// Echoes each request's first reply step; reports when the call's output
/// is dropped (the SDK drops it when the call is cancelled).
struct Hold(mpsc::UnboundedSender<&'static str>);

struct Dropped(mpsc::UnboundedSender<&'static str>);

impl Drop for Dropped {
    fn drop(&mut self) {
        let _ = self.0.send("dropped");
    }
}

impl ActionHandler for Hold {
    fn handle_unary(
        self: Arc<Self>,
        _: ActionMessage,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async { Ok(ActionReply::no_reply()) })
    }

    fn handle_streamed_in(
        self: Arc<Self>,
        input: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        let guard = Dropped(self.0.clone());
        Box::pin(async move {
            let _guard = guard;
            let n = input.count().await;
            Ok(ActionReply::encode(&resp(&n.to_string())))
        })
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
        input: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        let guard = Dropped(self.0.clone());
        input
            .map(move |_| {
                let _ = &guard;
                Ok(ActionReply::encode(&resp("echo")))
            })
            .boxed()
    }
}

async fn dropped(rx: &mut mpsc::UnboundedReceiver<&'static str>) {
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the user function's call is dropped within 10 s");
    assert_eq!(got, Some("dropped"));
}

#[tokio::test]
async fn a_cancelled_client_call_is_cancelled_in_the_user_function() {
    let (events, mut rx) = mpsc::unbounded_channel();
    let uf = CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .action(SVC, Hold(events));
    let s = start(uf).await;
    let mut client = client(s.proxy.local_addr()).await;

    // Both ways, after an answer.
    let (tx, input) = mpsc::channel(16);
    tx.send(single(vec![])).await.unwrap();
    let mut request = tonic::Request::new(ReceiverStream::new(input));
    let cancel = request.cancellation_handle();
    let mut stream = client
        .streaming(request, path("ProcessStreamed"), codec())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(message(&mut stream).await, Some(resp("echo")));
    cancel.cancel();
    dropped(&mut rx).await;
    drop(tx);

    // Streamed in, while the user function waits for more input.
    let (tx, input) = mpsc::channel(16);
    tx.send(single(vec![])).await.unwrap();
    let mut request = tonic::Request::new(ReceiverStream::new(input));
    let cancel = request.cancellation_handle();
    client.ready().await.unwrap();
    let call = tokio::spawn(async move {
        client
            .client_streaming(request, path("ProcessStreamedIn"), codec())
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    dropped(&mut rx).await;
    assert!(call.await.unwrap().is_err());
    drop(tx);
}
