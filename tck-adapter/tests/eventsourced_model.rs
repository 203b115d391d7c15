//! A port of the official TCK's event-sourced model scenarios and discovery
//! checks, run against the adapter over real gRPC on 127.0.0.1.

use cloudstate_sdk::payload;
use cloudstate_sdk::prost::Message;
use cloudstate_sdk::protocol::cloudstate::eventsourced::event_sourced_stream_out::Message as Out;
use cloudstate_sdk::protocol::cloudstate::{self as pb, client_action::Action as ClientAction};
use cloudstate_sdk::testkit::{TestServer, eventsourced as es, proxy_info};
use tck_adapter::proto::cloudstate::tck::model::{
    Effect, Emit, Fail, Forward, Persisted, Request, RequestAction, Response,
    request_action::Action,
};

const SVC: &str = "cloudstate.tck.model.EventSourcedTckModel";
const TWO: &str = "cloudstate.tck.model.EventSourcedTwo";
const CONFIGURED: &str = "cloudstate.tck.model.EventSourcedConfigured";

fn emit(v: &str) -> RequestAction {
    act(Action::Emit(Emit { value: v.into() }))
}
fn fwd(id: &str) -> RequestAction {
    act(Action::Forward(Forward { id: id.into() }))
}
fn eff(id: &str, synchronous: bool) -> RequestAction {
    act(Action::Effect(Effect {
        id: id.into(),
        synchronous,
    }))
}
fn fail(m: &str) -> RequestAction {
    act(Action::Fail(Fail { message: m.into() }))
}
fn act(a: Action) -> RequestAction {
    RequestAction { action: Some(a) }
}
fn req(id: &str, actions: Vec<RequestAction>) -> Request {
    Request {
        id: id.into(),
        actions,
    }
}
fn p(v: &str) -> Persisted {
    Persisted { value: v.into() }
}
fn resp(m: &str) -> Response {
    Response { message: m.into() }
}
fn cmd(
    n: i64,
    id: &str,
    actions: Vec<RequestAction>,
) -> cloudstate_sdk::protocol::cloudstate::eventsourced::EventSourcedStreamIn {
    es::command(n, id, "Process", &req(id, actions))
}
fn reply(n: i64, m: &str) -> es::ReplyBuilder {
    es::reply(n, &resp(m))
}
fn forward(n: i64, id: &str) -> es::ReplyBuilder {
    es::forward(n, TWO, "Call", &req(id, vec![]))
}
fn se(id: &str, synchronous: bool) -> pb::SideEffect {
    es::side_effect(TWO, "Call", &req(id, vec![]), synchronous)
}
fn with_events(mut r: es::ReplyBuilder, values: &[&str]) -> es::ReplyBuilder {
    for v in values {
        r = r.event(&p(v));
    }
    r
}

async fn server() -> TestServer {
    TestServer::start(tck_adapter::server()).await
}

#[tokio::test]
async fn discovery() {
    let server = server().await;
    let driver = server.driver().await;
    let spec = driver.discover(proxy_info()).await.unwrap();
    // Idempotent: the proxy and the TCK call it repeatedly.
    assert_eq!(driver.discover(proxy_info()).await.unwrap(), spec);

    let set =
        cloudstate_sdk::prost_types::FileDescriptorSet::decode(spec.proto.as_slice()).unwrap();
    let declared: Vec<String> = set
        .file
        .iter()
        .flat_map(|f| {
            f.service
                .iter()
                .map(move |s| format!("{}.{}", f.package(), s.name()))
        })
        .collect();
    for entity in &spec.entities {
        assert!(
            declared.contains(&entity.service_name),
            "{} not in descriptors",
            entity.service_name
        );
    }
    let entity = |name: &str| {
        spec.entities
            .iter()
            .find(|e| e.service_name == name)
            .unwrap()
            .clone()
    };
    for name in [SVC, TWO, CONFIGURED] {
        assert_eq!(
            entity(name).entity_type,
            "cloudstate.eventsourced.EventSourced"
        );
    }
    assert_eq!(entity(SVC).persistence_id, "event-sourced-tck-model");
    assert_eq!(
        entity(CONFIGURED).persistence_id,
        "event-sourced-configured"
    );
    assert_eq!(
        entity(CONFIGURED).passivation_strategy,
        Some(pb::EntityPassivationStrategy {
            strategy: Some(pb::entity_passivation_strategy::Strategy::Timeout(
                pb::TimeoutPassivationStrategy { timeout: 100 }
            )),
        })
    );
    assert_eq!(
        entity(SVC).passivation_strategy,
        None,
        "no strategy unless configured"
    );

    let info = spec.service_info.clone().unwrap();
    assert_eq!(
        (info.protocol_major_version, info.protocol_minor_version),
        (0, 2)
    );
    assert_eq!(info.support_library_name, "cloudstate-rust-sdk");
    assert_eq!(info.service_name, "tck-adapter");
    assert!(
        info.service_runtime.starts_with("rustc "),
        "{}",
        info.service_runtime
    );

    // Every import is in the set under its import path, and the entity_key
    // option (1080) survived on Request.id.
    let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    for f in &set.file {
        for dep in &f.dependency {
            assert!(
                names.contains(&dep.as_str()),
                "{} imports missing {dep}",
                f.name()
            );
        }
    }
    for needed in [
        "google/protobuf/descriptor.proto",
        "google/api/http.proto",
        "google/api/annotations.proto",
        "cloudstate/entity_key.proto",
        "cloudstate/eventing.proto",
    ] {
        assert!(names.contains(&needed), "{needed} missing");
    }
    let pool = raw_field_options(
        &spec.proto,
        "cloudstate/tck/model/eventsourced.proto",
        "Request",
        "id",
    );
    assert_eq!(pool, vec![0xc0, 0x43, 0x01], "entity_key option bytes");

    // A proxy without event-sourcing support still gets every entity, so it
    // can say why it refuses them.
    let mut limited = proxy_info();
    limited.supported_entity_types = vec!["cloudstate.action.ActionProtocol".into()];
    assert_eq!(driver.discover(limited).await.unwrap(), spec);

    driver
        .report_error("a problem the proxy found")
        .await
        .unwrap();
    // Still serving after reportError.
    assert_eq!(driver.discover(proxy_info()).await.unwrap(), spec);
}

/// The raw `FieldOptions` bytes of `message.field` in `file`, read without
/// prost's descriptor types (which drop extensions).
fn raw_field_options(set: &[u8], file: &str, message: &str, field: &str) -> Vec<u8> {
    fn fields(mut buf: &[u8]) -> Vec<(u32, Vec<u8>)> {
        use cloudstate_sdk::prost::encoding::{
            DecodeContext, WireType, decode_key, decode_varint, skip_field,
        };
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (tag, wt) = decode_key(&mut buf).unwrap();
            if wt == WireType::LengthDelimited {
                let len = decode_varint(&mut buf).unwrap() as usize;
                out.push((tag, buf[..len].to_vec()));
                buf = &buf[len..];
            } else {
                skip_field(wt, tag, &mut buf, DecodeContext::default()).unwrap();
            }
        }
        out
    }
    let named = |entries: &[(u32, Vec<u8>)], name: &str| {
        entries.iter().any(|(t, v)| *t == 1 && v == name.as_bytes())
    };
    for (_, f) in fields(set).into_iter().filter(|(t, _)| *t == 1) {
        let ff = fields(&f);
        if !named(&ff, file) {
            continue;
        }
        for (_, m) in ff.iter().filter(|(t, _)| *t == 4) {
            let mf = fields(m);
            if !named(&mf, message) {
                continue;
            }
            for (_, fd) in mf.iter().filter(|(t, _)| *t == 2) {
                let fdf = fields(fd);
                if named(&fdf, field) {
                    return fdf
                        .iter()
                        .find(|(t, _)| *t == 8)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                }
            }
        }
    }
    panic!("{file} {message}.{field} not found");
}

#[tokio::test]
async fn m01_initial_empty_state() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e1")).await;
    c.send(cmd(1, "e1", vec![])).await;
    c.expect(reply(1, "")).await;
    c.passivate().await;
}

#[tokio::test]
async fn m02_single_emitted_event() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e2")).await;
    c.send(cmd(1, "e2", vec![emit("A")])).await;
    c.expect(reply(1, "A").event(&p("A"))).await;
    c.send(cmd(2, "e2", vec![])).await;
    c.expect(reply(2, "A")).await;
    c.passivate().await;
}

#[tokio::test]
async fn m03_multiple_emitted_events() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e3")).await;
    c.send(cmd(1, "e3", vec![emit("A"), emit("B"), emit("C")]))
        .await;
    c.expect(with_events(reply(1, "ABC"), &["A", "B", "C"]))
        .await;
    c.send(cmd(2, "e3", vec![])).await;
    c.expect(reply(2, "ABC")).await;
    c.passivate().await;
}

#[tokio::test]
async fn m04_multiple_emitted_events_and_snapshots() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    let id = "e4";
    c.send(es::init(SVC, id)).await;
    let mut state = String::new();
    for (n, v) in [(1, "A"), (2, "B"), (3, "C"), (4, "D")] {
        state.push_str(v);
        c.send(cmd(n, id, vec![emit(v)])).await;
        c.expect(reply(n, &state).event(&p(v))).await;
    }
    c.send(cmd(5, id, vec![emit("E")])).await;
    c.expect(reply(5, "ABCDE").event(&p("E")).snapshot(&p("ABCDE")))
        .await;
    c.send(cmd(6, id, vec![emit("F"), emit("G"), emit("H")]))
        .await;
    c.expect(with_events(reply(6, "ABCDEFGH"), &["F", "G", "H"]))
        .await;
    c.send(cmd(7, id, vec![emit("I"), emit("J")])).await;
    c.expect(with_events(reply(7, "ABCDEFGHIJ"), &["I", "J"]).snapshot(&p("ABCDEFGHIJ")))
        .await;
    c.send(cmd(8, id, vec![emit("K")])).await;
    c.expect(reply(8, "ABCDEFGHIJK").event(&p("K"))).await;
    c.send(cmd(9, id, vec![])).await;
    c.expect(reply(9, "ABCDEFGHIJK")).await;
    c.passivate().await;
}

/// The last row of the snapshot table: from sequence 5, F..I (6-9) take no
/// snapshot, then J, K (10-11) take one covering both.
#[tokio::test]
async fn snapshot_table_from_sequence_five() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init_with_snapshot(
        SVC,
        "t",
        5,
        payload::encode(&p("ABCDE")),
    ))
    .await;
    c.send(cmd(
        1,
        "t",
        vec![emit("F"), emit("G"), emit("H"), emit("I")],
    ))
    .await;
    c.expect(with_events(reply(1, "ABCDEFGHI"), &["F", "G", "H", "I"]))
        .await;
    c.send(cmd(2, "t", vec![emit("J"), emit("K")])).await;
    c.expect(with_events(reply(2, "ABCDEFGHIJK"), &["J", "K"]).snapshot(&p("ABCDEFGHIJK")))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn m05_initial_snapshot() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init_with_snapshot(
        SVC,
        "e5",
        5,
        payload::encode(&p("ABCDE")),
    ))
    .await;
    c.send(cmd(1, "e5", vec![])).await;
    c.expect(reply(1, "ABCDE")).await;
    c.passivate().await;
}

#[tokio::test]
async fn m06_initial_snapshot_and_events() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init_with_snapshot(
        SVC,
        "e6",
        5,
        payload::encode(&p("ABCDE")),
    ))
    .await;
    c.send(es::event(6, payload::encode(&p("F")))).await;
    c.send(es::event(7, payload::encode(&p("G")))).await;
    c.send(cmd(1, "e6", vec![])).await;
    c.expect(reply(1, "ABCDEFG")).await;
    // The next event is sequence 8: 8, 9 no snapshot; 10 snapshots.
    c.send(cmd(2, "e6", vec![emit("H"), emit("I")])).await;
    c.expect(with_events(reply(2, "ABCDEFGHI"), &["H", "I"]))
        .await;
    c.send(cmd(3, "e6", vec![emit("J")])).await;
    c.expect(
        reply(3, "ABCDEFGHIJ")
            .event(&p("J"))
            .snapshot(&p("ABCDEFGHIJ")),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn m07_rehydration_after_passivation() {
    let s = server().await;
    let d = s.driver().await;
    let mut c = d.event_sourced().await;
    c.send(es::init(SVC, "e7")).await;
    c.send(cmd(1, "e7", vec![emit("A"), emit("B"), emit("C")]))
        .await;
    c.expect(with_events(reply(1, "ABC"), &["A", "B", "C"]))
        .await;
    c.send(cmd(2, "e7", vec![emit("D"), emit("E")])).await;
    c.expect(with_events(reply(2, "ABCDE"), &["D", "E"]).snapshot(&p("ABCDE")))
        .await;
    c.send(cmd(3, "e7", vec![emit("F")])).await;
    c.expect(reply(3, "ABCDEF").event(&p("F"))).await;
    c.send(cmd(4, "e7", vec![emit("G")])).await;
    c.expect(reply(4, "ABCDEFG").event(&p("G"))).await;
    c.passivate().await;

    let mut c = d.event_sourced().await;
    c.send(es::init_with_snapshot(
        SVC,
        "e7",
        5,
        payload::encode(&p("ABCDE")),
    ))
    .await;
    c.send(es::event(6, payload::encode(&p("F")))).await;
    c.send(es::event(7, payload::encode(&p("G")))).await;
    c.send(cmd(1, "e7", vec![])).await;
    c.expect(reply(1, "ABCDEFG")).await;
    c.passivate().await;
}

#[tokio::test]
async fn m08_forward_to_second_service() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e8")).await;
    c.send(cmd(1, "e8", vec![emit("A"), emit("B"), emit("C")]))
        .await;
    c.expect(with_events(reply(1, "ABC"), &["A", "B", "C"]))
        .await;
    c.send(cmd(2, "e8", vec![fwd("e8")])).await;
    c.expect(forward(2, "e8")).await;
    c.send(cmd(3, "e8", vec![])).await;
    c.expect(reply(3, "ABC")).await;
    c.passivate().await;
}

#[tokio::test]
async fn m09_forward_with_emitted_events() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e9")).await;
    c.send(cmd(1, "e9", vec![emit("A"), fwd("e9")])).await;
    c.expect(forward(1, "e9").event(&p("A"))).await;
    c.passivate().await;
}

#[tokio::test]
async fn m10_forward_with_emitted_events_and_snapshot() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e10")).await;
    c.send(cmd(1, "e10", vec![emit("A"), emit("B"), emit("C")]))
        .await;
    c.expect(with_events(reply(1, "ABC"), &["A", "B", "C"]))
        .await;
    c.send(cmd(2, "e10", vec![emit("D"), emit("E"), fwd("e10")]))
        .await;
    c.expect(with_events(forward(2, "e10"), &["D", "E"]).snapshot(&p("ABCDE")))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn m11_reply_with_side_effect() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e11")).await;
    c.send(cmd(1, "e11", vec![emit("A"), emit("B"), emit("C")]))
        .await;
    c.expect(with_events(reply(1, "ABC"), &["A", "B", "C"]))
        .await;
    c.send(cmd(2, "e11", vec![eff("e11", false)])).await;
    c.expect(reply(2, "ABC").side_effect(se("e11", false)))
        .await;
    c.send(cmd(3, "e11", vec![])).await;
    c.expect(reply(3, "ABC")).await;
    c.passivate().await;
}

#[tokio::test]
async fn m12_synchronous_side_effect() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e12")).await;
    c.send(cmd(1, "e12", vec![eff("e12", true)])).await;
    c.expect(reply(1, "").side_effect(se("e12", true))).await;
    c.passivate().await;
}

#[tokio::test]
async fn m13_forward_and_side_effect() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e13")).await;
    c.send(cmd(1, "e13", vec![eff("e13", false), fwd("e13")]))
        .await;
    c.expect(forward(1, "e13").side_effect(se("e13", false)))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn m14_reply_with_multiple_side_effects() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e14")).await;
    c.send(cmd(
        1,
        "e14",
        vec![eff("1", false), eff("2", false), eff("3", false)],
    ))
    .await;
    c.expect(
        reply(1, "")
            .side_effect(se("1", false))
            .side_effect(se("2", false))
            .side_effect(se("3", false)),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn m15_multiple_side_effects_events_and_snapshot() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e15")).await;
    let mut actions: Vec<_> = ["A", "B", "C", "D", "E"].iter().map(|v| emit(v)).collect();
    actions.extend([eff("1", false), eff("2", false), eff("3", false)]);
    c.send(cmd(1, "e15", actions)).await;
    c.expect(
        with_events(reply(1, "ABCDE"), &["A", "B", "C", "D", "E"])
            .snapshot(&p("ABCDE"))
            .side_effect(se("1", false))
            .side_effect(se("2", false))
            .side_effect(se("3", false)),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn m16_failure_action() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e16")).await;
    c.send(cmd(1, "e16", vec![fail("expected failure")])).await;
    c.expect(es::failure(1, "expected failure", false)).await;
    c.passivate().await;
}

#[tokio::test]
async fn m17_connection_after_failure_action() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e17")).await;
    c.send(cmd(1, "e17", vec![emit("A")])).await;
    c.expect(reply(1, "A").event(&p("A"))).await;
    c.send(cmd(2, "e17", vec![fail("expected failure")])).await;
    c.expect(es::failure(2, "expected failure", false)).await;
    c.send(cmd(3, "e17", vec![])).await;
    c.expect(reply(3, "A")).await;
    c.passivate().await;
}

/// Our SDK takes the restart branch: a failed command that emitted events asks
/// the proxy to rebuild the entity from the journal.
#[tokio::test]
async fn m18_failure_does_not_retain_emitted_events() {
    let s = server().await;
    let d = s.driver().await;
    let mut c = d.event_sourced().await;
    c.send(es::init(SVC, "e18")).await;
    c.send(cmd(1, "e18", vec![emit("A"), emit("B"), emit("C")]))
        .await;
    c.expect(with_events(reply(1, "ABC"), &["A", "B", "C"]))
        .await;
    c.send(cmd(2, "e18", vec![emit("4"), emit("5"), fail("failure 1")]))
        .await;
    c.expect(es::failure(2, "failure 1", true)).await;
    c.passivate().await;

    let mut c = d.event_sourced().await;
    c.send(es::init(SVC, "e18")).await;
    for (n, v) in [(1, "A"), (2, "B"), (3, "C")] {
        c.send(es::event(n, payload::encode(&p(v)))).await;
    }
    c.send(cmd(1, "e18", vec![emit("D")])).await;
    c.expect(reply(1, "ABCD").event(&p("D"))).await;
    c.send(cmd(2, "e18", vec![emit("6"), fail("failure 2"), emit("7")]))
        .await;
    c.expect(es::failure(2, "failure 2", true)).await;
    c.passivate().await;

    let mut c = d.event_sourced().await;
    c.send(es::init(SVC, "e18")).await;
    for (n, v) in [(1, "A"), (2, "B"), (3, "C"), (4, "D")] {
        c.send(es::event(n, payload::encode(&p(v)))).await;
    }
    c.send(cmd(1, "e18", vec![emit("E")])).await;
    c.expect(reply(1, "ABCDE").event(&p("E")).snapshot(&p("ABCDE")))
        .await;
    c.passivate().await;
}

#[tokio::test]
async fn m19_failure_does_not_allow_side_effects() {
    let s = server().await;
    let mut c = s.driver().await.event_sourced().await;
    c.send(es::init(SVC, "e19")).await;
    c.send(cmd(
        1,
        "e19",
        vec![eff("e19", false), fail("expected failure")],
    ))
    .await;
    c.expect(es::failure(1, "expected failure", false)).await;
    c.passivate().await;
}

/// The forward and side-effect target answers with an empty `Response`,
/// whose payload is present with empty bytes.
#[tokio::test]
async fn second_and_configured_services_reply_empty_response() {
    let s = server().await;
    let d = s.driver().await;
    for service in [TWO, CONFIGURED] {
        let mut c = d.event_sourced().await;
        c.send(es::init(service, "x")).await;
        c.send(es::command(1, "x", "Call", &req("x", vec![]))).await;
        let out = c.next_message().await;
        let Some(Out::Reply(r)) = out.message else {
            panic!("{out:?}")
        };
        let Some(ClientAction::Reply(reply)) = r.client_action.and_then(|a| a.action) else {
            panic!("not a reply")
        };
        let payload = reply.payload.unwrap();
        assert_eq!(
            payload.type_url,
            "type.googleapis.com/cloudstate.tck.model.Response"
        );
        assert!(payload.value.is_empty());
        assert!(r.events.is_empty() && r.snapshot.is_none() && reply.metadata.is_none());
        c.passivate().await;
    }
}
