//! A port of the official TCK's action model scenarios (unary, streamed in,
//! streamed out, streamed both ways: replies, forwards, failures, side
//! effects, no reply) and discovery checks, run against the adapter over
//! real gRPC on 127.0.0.1.

use cloudstate_sdk::prost::Message;
use cloudstate_sdk::protocol::cloudstate::{self as pb, action::ActionResponse};
use cloudstate_sdk::testkit::{
    ProtocolDriver, TestServer, action as a, eventsourced::side_effect, proxy_info,
};
use tck_adapter::proto::cloudstate::tck::model::action::{
    Fail, Forward, OtherRequest, ProcessGroup, ProcessStep, Reply, Request, Response, SideEffect,
    process_step::Step,
};

const SVC: &str = "cloudstate.tck.model.action.ActionTckModel";
const TWO: &str = "cloudstate.tck.model.action.ActionTwo";
const PROTOCOL: &str = "cloudstate.action.ActionProtocol";

fn step(s: Step) -> ProcessStep {
    ProcessStep { step: Some(s) }
}
fn reply_with(m: &str) -> ProcessStep {
    step(Step::Reply(Reply { message: m.into() }))
}
fn forward_to(id: &str) -> ProcessStep {
    step(Step::Forward(Forward { id: id.into() }))
}
fn fail_with(m: &str) -> ProcessStep {
    step(Step::Fail(Fail { message: m.into() }))
}
fn effect(id: &str) -> ProcessStep {
    effect_sync(id, false)
}
fn effect_sync(id: &str, synchronous: bool) -> ProcessStep {
    step(Step::Effect(SideEffect {
        id: id.into(),
        synchronous,
    }))
}
fn group(steps: Vec<ProcessStep>) -> ProcessGroup {
    ProcessGroup { steps }
}
fn request(groups: Vec<ProcessGroup>) -> Request {
    Request { groups }
}
fn single(steps: Vec<ProcessStep>) -> Request {
    request(vec![group(steps)])
}

fn effects(ids: &[&str]) -> Vec<pb::SideEffect> {
    ids.iter().map(|id| se(id, false)).collect()
}
fn sync_effects(ids: &[&str]) -> Vec<pb::SideEffect> {
    ids.iter().map(|id| se(id, true)).collect()
}
fn se(id: &str, synchronous: bool) -> pb::SideEffect {
    side_effect(TWO, "Call", &OtherRequest { id: id.into() }, synchronous)
}
fn reply(m: &str, e: Vec<pb::SideEffect>) -> ActionResponse {
    a::reply(&Response { message: m.into() })
        .side_effects(e)
        .build()
}
fn forwarded(id: &str, e: Vec<pb::SideEffect>) -> ActionResponse {
    a::forward(TWO, "Call", &OtherRequest { id: id.into() })
        .side_effects(e)
        .build()
}
fn failure(m: &str, e: Vec<pb::SideEffect>) -> ActionResponse {
    a::failure(m).side_effects(e).build()
}
fn no_reply(e: Vec<pb::SideEffect>) -> ActionResponse {
    a::no_reply().side_effects(e).build()
}

struct Tck {
    _server: TestServer,
    driver: ProtocolDriver,
}

async fn tck() -> Tck {
    let server = TestServer::start(tck_adapter::server()).await;
    let driver = server.driver().await;
    Tck {
        _server: server,
        driver,
    }
}

impl Tck {
    async fn unary(&self, request: Request, expected: ActionResponse) {
        let actual = self
            .driver
            .action_unary(a::command(SVC, "ProcessUnary", &request))
            .await
            .unwrap();
        assert_eq!(actual, expected, "for {request:?}");
    }

    async fn streamed_in(&self, requests: Vec<Request>, expected: ActionResponse) {
        let call = self.driver.action_streamed_in().await;
        call.send(a::start(SVC, "ProcessStreamedIn")).await;
        for r in &requests {
            call.send(a::element(r)).await;
        }
        call.expect(expected).await;
    }

    async fn streamed_out(&self, request: Request, expected: Vec<ActionResponse>) {
        let mut out = self
            .driver
            .action_streamed_out(a::command(SVC, "ProcessStreamedOut", &request))
            .await;
        for e in expected {
            out.expect(e).await;
        }
        out.expect_closed().await;
    }

    /// Each request, then the responses it must produce at once.
    async fn streamed(&self, exchanges: Vec<(Request, Vec<ActionResponse>)>) {
        let mut call = self.driver.action_streamed().await;
        call.send(a::start(SVC, "ProcessStreamed")).await;
        for (r, expected) in exchanges {
            call.send(a::element(&r)).await;
            for e in expected {
                call.expect(e).await;
            }
        }
        call.passivate().await;
    }
}

#[tokio::test]
async fn action_discovery() {
    let t = tck().await;
    let spec = t.driver.discover(proxy_info()).await.unwrap();
    let set =
        cloudstate_sdk::prost_types::FileDescriptorSet::decode(spec.proto.as_slice()).unwrap();
    let services: Vec<String> = set
        .file
        .iter()
        .flat_map(|f| {
            f.service
                .iter()
                .map(move |s| format!("{}.{}", f.package(), s.name()))
        })
        .collect();
    for name in [SVC, TWO] {
        assert!(services.iter().any(|s| s == name), "{name} not declared");
        let entity = spec
            .entities
            .iter()
            .find(|e| e.service_name == name)
            .unwrap_or_else(|| panic!("{name} not discovered"));
        assert_eq!(entity.entity_type, PROTOCOL);
        assert_eq!(entity.passivation_strategy, None);
        // The simple service name: the proxy does not use it for actions.
        assert_eq!(
            entity.persistence_id,
            name.rsplit('.').next().unwrap(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn action_protocol_reports_serving_health() {
    let t = tck().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", t._server.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: PROTOCOL.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn unary_replies() {
    let t = tck().await;
    t.unary(single(vec![reply_with("one")]), reply("one", vec![]))
        .await;
    t.unary(
        single(vec![reply_with("two"), effect("other")]),
        reply("two", effects(&["other"])),
    )
    .await;
    t.unary(
        single(vec![reply_with("three"), effect_sync("another", true)]),
        reply("three", sync_effects(&["another"])),
    )
    .await;
    t.unary(
        single(vec![
            reply_with("four"),
            effect("a"),
            effect("b"),
            effect("c"),
        ]),
        reply("four", effects(&["a", "b", "c"])),
    )
    .await;
}

#[tokio::test]
async fn unary_no_reply() {
    let t = tck().await;
    t.unary(single(vec![]), no_reply(vec![])).await;
    t.unary(single(vec![effect("other")]), no_reply(effects(&["other"])))
        .await;
    t.unary(
        single(vec![effect_sync("another", true)]),
        no_reply(sync_effects(&["another"])),
    )
    .await;
    t.unary(
        single(vec![effect("a"), effect("b"), effect("c")]),
        no_reply(effects(&["a", "b", "c"])),
    )
    .await;
}

#[tokio::test]
async fn unary_forwards() {
    let t = tck().await;
    t.unary(single(vec![forward_to("one")]), forwarded("one", vec![]))
        .await;
    t.unary(
        single(vec![forward_to("two"), effect("other")]),
        forwarded("two", effects(&["other"])),
    )
    .await;
    t.unary(
        single(vec![forward_to("three"), effect_sync("another", true)]),
        forwarded("three", sync_effects(&["another"])),
    )
    .await;
    t.unary(
        single(vec![
            forward_to("four"),
            effect("a"),
            effect("b"),
            effect("c"),
        ]),
        forwarded("four", effects(&["a", "b", "c"])),
    )
    .await;
}

#[tokio::test]
async fn unary_failures_keep_their_side_effects() {
    let t = tck().await;
    t.unary(single(vec![fail_with("one")]), failure("one", vec![]))
        .await;
    t.unary(
        single(vec![fail_with("two"), effect("other")]),
        failure("two", effects(&["other"])),
    )
    .await;
    t.unary(
        single(vec![fail_with("three"), effect_sync("another", true)]),
        failure("three", sync_effects(&["another"])),
    )
    .await;
    t.unary(
        single(vec![
            fail_with("four"),
            effect("a"),
            effect("b"),
            effect("c"),
        ]),
        failure("four", effects(&["a", "b", "c"])),
    )
    .await;
}

/// Groups fold into one response: the last reply, forward or failure wins;
/// effects of later groups come after.
#[tokio::test]
async fn unary_folds_groups() {
    let t = tck().await;
    t.unary(
        request(vec![
            group(vec![reply_with("a"), effect("x")]),
            group(vec![effect("y")]),
            group(vec![forward_to("b"), effect("z")]),
        ]),
        forwarded("b", effects(&["z", "x", "y"])),
    )
    .await;
}

fn abcd() -> Vec<pb::SideEffect> {
    let mut e = effects(&["a"]);
    e.extend(sync_effects(&["b"]));
    e.extend(effects(&["c", "d"]));
    e
}

#[tokio::test]
async fn streamed_in() {
    let t = tck().await;
    t.streamed_in(vec![single(vec![reply_with("one")])], reply("one", vec![]))
        .await;
    let tail = || {
        vec![
            single(vec![effect_sync("b", true)]),
            single(vec![effect("c"), effect("d")]),
        ]
    };
    let with_tail = |first: ProcessStep| {
        let mut r = vec![single(vec![first, effect("a")])];
        r.extend(tail());
        r
    };
    t.streamed_in(with_tail(reply_with("two")), reply("two", abcd()))
        .await;
    // No requests at all, and a request with nothing in it: no reply.
    t.streamed_in(vec![], no_reply(vec![])).await;
    t.streamed_in(vec![single(vec![])], no_reply(vec![])).await;
    let mut effects_only = vec![single(vec![effect("a")])];
    effects_only.extend(tail());
    t.streamed_in(effects_only, no_reply(abcd())).await;
    t.streamed_in(
        vec![single(vec![forward_to("one")])],
        forwarded("one", vec![]),
    )
    .await;
    t.streamed_in(with_tail(forward_to("two")), forwarded("two", abcd()))
        .await;
    t.streamed_in(vec![single(vec![fail_with("one")])], failure("one", vec![]))
        .await;
    t.streamed_in(with_tail(fail_with("two")), failure("two", abcd()))
        .await;
}

fn four_groups(first: fn(&str) -> ProcessStep) -> Request {
    request(vec![
        group(vec![first("one")]),
        group(vec![first("two"), effect("other")]),
        group(vec![first("three"), effect_sync("another", true)]),
        group(vec![first("four"), effect("a"), effect("b"), effect("c")]),
    ])
}

fn four_expected(make: fn(&str, Vec<pb::SideEffect>) -> ActionResponse) -> Vec<ActionResponse> {
    vec![
        make("one", vec![]),
        make("two", effects(&["other"])),
        make("three", sync_effects(&["another"])),
        make("four", effects(&["a", "b", "c"])),
    ]
}

#[tokio::test]
async fn streamed_out() {
    let t = tck().await;
    t.streamed_out(four_groups(reply_with), four_expected(reply))
        .await;
    t.streamed_out(four_groups(forward_to), four_expected(forwarded))
        .await;
    t.streamed_out(four_groups(fail_with), four_expected(failure))
        .await;
    t.streamed_out(
        request(vec![
            group(vec![]),
            group(vec![effect("other")]),
            group(vec![effect_sync("another", true)]),
            group(vec![effect("a"), effect("b"), effect("c")]),
        ]),
        vec![
            no_reply(vec![]),
            no_reply(effects(&["other"])),
            no_reply(sync_effects(&["another"])),
            no_reply(effects(&["a", "b", "c"])),
        ],
    )
    .await;
    // No groups: no responses, the stream completes.
    t.streamed_out(request(vec![]), vec![]).await;
}

/// One bidirectional call per kind of step; several responses per request;
/// failures do not end the stream.
async fn streamed_case(
    t: &Tck,
    first: fn(&str) -> ProcessStep,
    make: fn(&str, Vec<pb::SideEffect>) -> ActionResponse,
) {
    t.streamed(vec![
        (single(vec![first("one")]), vec![make("one", vec![])]),
        (
            single(vec![first("two"), effect("other")]),
            vec![make("two", effects(&["other"]))],
        ),
        (
            single(vec![first("three"), effect_sync("another", true)]),
            vec![make("three", sync_effects(&["another"]))],
        ),
        (
            single(vec![first("four"), effect("a"), effect("b"), effect("c")]),
            vec![make("four", effects(&["a", "b", "c"]))],
        ),
        (
            request(vec![
                group(vec![first("five")]),
                group(vec![first("six"), effect("other")]),
            ]),
            vec![make("five", vec![]), make("six", effects(&["other"]))],
        ),
    ])
    .await;
}

#[tokio::test]
async fn streamed_replies() {
    streamed_case(&tck().await, reply_with, reply).await;
}

#[tokio::test]
async fn streamed_forwards() {
    streamed_case(&tck().await, forward_to, forwarded).await;
}

#[tokio::test]
async fn streamed_failures_do_not_end_the_stream() {
    streamed_case(&tck().await, fail_with, failure).await;
}

#[tokio::test]
async fn streamed_no_replies() {
    let t = tck().await;
    t.streamed(vec![
        (single(vec![]), vec![no_reply(vec![])]),
        (
            single(vec![effect("other")]),
            vec![no_reply(effects(&["other"]))],
        ),
        (
            single(vec![effect_sync("another", true)]),
            vec![no_reply(sync_effects(&["another"]))],
        ),
        (
            single(vec![effect("a"), effect("b"), effect("c")]),
            vec![no_reply(effects(&["a", "b", "c"]))],
        ),
        (
            request(vec![group(vec![]), group(vec![effect("other")])]),
            vec![no_reply(vec![]), no_reply(effects(&["other"]))],
        ),
    ])
    .await;
}

/// A bidirectional call with no elements completes with nothing.
#[tokio::test]
async fn streamed_without_elements_completes() {
    let t = tck().await;
    t.streamed(vec![]).await;
}

/// `ActionTwo.Call`, the forward and side-effect target, replies with an
/// empty `Response`.
#[tokio::test]
async fn action_two_call() {
    let t = tck().await;
    let actual = t
        .driver
        .action_unary(a::command(TWO, "Call", &OtherRequest { id: "x".into() }))
        .await
        .unwrap();
    assert_eq!(actual, reply("", vec![]));
}
