//! A port of the official TCK's value-entity model scenarios (V1-V17) and
//! discovery checks, run against the adapter over real gRPC on 127.0.0.1,
//! plus the checks the TCK lacks (rollback on failure, init state decoding).

use cloudstate_sdk::payload;
use cloudstate_sdk::prost::Message;
use cloudstate_sdk::protocol::cloudstate::valueentity::{
    ValueEntityInit, ValueEntityStreamIn, value_entity_stream_in::Message as In,
    value_entity_stream_out::Message as Out,
};
use cloudstate_sdk::protocol::cloudstate::{self as pb, client_action::Action as ClientAction};
use cloudstate_sdk::testkit::{
    TestServer, eventsourced::side_effect, proxy_info, valueentity as ve,
};
use tck_adapter::proto::cloudstate::tck::model::valueentity::{
    Delete, Effect, Fail, Forward, Persisted, Request, RequestAction, Response, Update,
    request_action::Action,
};

const SVC: &str = "cloudstate.tck.model.valueentity.ValueEntityTckModel";
const TWO: &str = "cloudstate.tck.model.valueentity.ValueEntityTwo";
const CONFIGURED: &str = "cloudstate.tck.model.valueentity.ValueEntityConfigured";
const VALUE_ENTITY: &str = "cloudstate.valueentity.ValueEntity";

fn upd(v: &str) -> RequestAction {
    act(Action::Update(Update { value: v.into() }))
}
fn del() -> RequestAction {
    act(Action::Delete(Delete {}))
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
fn cmd(n: i64, id: &str, actions: Vec<RequestAction>) -> ValueEntityStreamIn {
    ve::command(n, id, "Process", &req(id, actions))
}
fn reply(n: i64, m: &str) -> ve::ReplyBuilder {
    ve::reply(n, &resp(m))
}
fn forward(n: i64, id: &str) -> ve::ReplyBuilder {
    ve::forward(n, TWO, "Call", &req(id, vec![]))
}
fn se(id: &str, synchronous: bool) -> pb::SideEffect {
    side_effect(TWO, "Call", &req(id, vec![]), synchronous)
}

async fn server() -> TestServer {
    TestServer::start(tck_adapter::server()).await
}

async fn discover() -> pb::EntitySpec {
    let server = server().await;
    let driver = server.driver().await;
    driver.discover(proxy_info()).await.unwrap()
}

fn entity(spec: &pb::EntitySpec, name: &str) -> pb::Entity {
    spec.entities
        .iter()
        .find(|e| e.service_name == name)
        .unwrap_or_else(|| panic!("{name} not discovered"))
        .clone()
}

/// `<package>.<service>` over every file of the descriptor set.
fn discovered_services(set: &cloudstate_sdk::prost_types::FileDescriptorSet) -> Vec<String> {
    set.file
        .iter()
        .flat_map(|f| {
            f.service
                .iter()
                .map(move |s| format!("{}.{}", f.package(), s.name()))
        })
        .collect()
}

#[tokio::test]
async fn d1_entity_discovery() {
    let spec = discover().await;
    let set =
        cloudstate_sdk::prost_types::FileDescriptorSet::decode(spec.proto.as_slice()).unwrap();
    let services = discovered_services(&set);
    for name in [SVC, TWO] {
        assert!(services.iter().any(|s| s == name), "{name} not declared");
    }
    assert_eq!(entity(&spec, SVC).entity_type, VALUE_ENTITY);
    assert_eq!(entity(&spec, TWO).entity_type, VALUE_ENTITY);
    assert_eq!(entity(&spec, SVC).persistence_id, "value-entity-tck-model");
    assert_eq!(
        entity(&spec, TWO).persistence_id,
        "value-entity-tck-model-two"
    );
    assert_eq!(
        entity(&spec, SVC).passivation_strategy,
        None,
        "no strategy unless configured"
    );
}

#[tokio::test]
async fn d2_configured_entity() {
    let spec = discover().await;
    let set =
        cloudstate_sdk::prost_types::FileDescriptorSet::decode(spec.proto.as_slice()).unwrap();
    assert!(
        discovered_services(&set).iter().any(|s| s == CONFIGURED),
        "{CONFIGURED} not declared"
    );
    let conf = entity(&spec, CONFIGURED);
    assert_eq!(conf.entity_type, VALUE_ENTITY);
    assert_eq!(conf.persistence_id, "value-entity-configured");
    assert_eq!(
        conf.passivation_strategy,
        Some(pb::EntityPassivationStrategy {
            strategy: Some(pb::entity_passivation_strategy::Strategy::Timeout(
                pb::TimeoutPassivationStrategy { timeout: 100 }
            )),
        })
    );
}

/// What the proxy validates before it builds a value entity: every entity is
/// declared, no method streams, and every input type has an `entity_key`.
#[tokio::test]
async fn discovery_passes_proxy_validation() {
    let spec = discover().await;
    let set =
        cloudstate_sdk::prost_types::FileDescriptorSet::decode(spec.proto.as_slice()).unwrap();
    let services = discovered_services(&set);
    for e in spec
        .entities
        .iter()
        .filter(|e| e.entity_type == VALUE_ENTITY)
    {
        assert!(
            services.contains(&e.service_name),
            "{} not in descriptors",
            e.service_name
        );
        let (file, service) = set
            .file
            .iter()
            .find_map(|f| {
                f.service
                    .iter()
                    .find(|s| format!("{}.{}", f.package(), s.name()) == e.service_name)
                    .map(|s| (f, s))
            })
            .unwrap();
        for m in &service.method {
            assert!(
                !m.client_streaming() && !m.server_streaming(),
                "{}.{} streams",
                e.service_name,
                m.name()
            );
            assert_eq!(
                m.input_type(),
                ".cloudstate.tck.model.valueentity.Request",
                "{}.{}",
                e.service_name,
                m.name()
            );
        }
        assert_eq!(file.name(), "cloudstate/tck/model/valueentity.proto");
    }
    assert_eq!(
        raw_field_options(
            &spec.proto,
            "cloudstate/tck/model/valueentity.proto",
            "Request",
            "id",
        ),
        vec![0xc0, 0x43, 0x01],
        "entity_key option bytes"
    );
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
async fn v01_initial_empty_state() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-1";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![])).await;
    c.expect(reply(1, "")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v02_update_state() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-2";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![upd("A")])).await;
    c.expect(reply(1, "A").update(&p("A"))).await;
    c.send(cmd(2, id, vec![])).await;
    c.expect(reply(2, "A")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v03_delete_state() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-3";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![upd("A")])).await;
    c.expect(reply(1, "A").update(&p("A"))).await;
    c.send(cmd(2, id, vec![del()])).await;
    c.expect(reply(2, "").delete()).await;
    c.send(cmd(3, id, vec![])).await;
    c.expect(reply(3, "")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v04_multiple_updates_last_wins() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-4";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![upd("A"), upd("B"), upd("C")])).await;
    c.expect(reply(1, "C").update(&p("C"))).await;
    c.send(cmd(2, id, vec![])).await;
    c.expect(reply(2, "C")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v05_multiple_updates_and_delete() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-5";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![upd("A"), upd("B"), del()])).await;
    c.expect(reply(1, "").delete()).await;
    c.send(cmd(2, id, vec![])).await;
    c.expect(reply(2, "")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v06_update_delete_update() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-6";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![upd("A"), del(), upd("B")])).await;
    c.expect(reply(1, "B").update(&p("B"))).await;
    c.send(cmd(2, id, vec![])).await;
    c.expect(reply(2, "B")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v07_rehydration_after_passivation() {
    let s = server().await;
    let d = s.driver().await;
    let id = "entity-7";
    let mut c = d.value_entity().await;
    c.send(ve::init(SVC, id)).await;
    for (n, v) in [(1, "A"), (2, "B"), (3, "C"), (4, "D")] {
        c.send(cmd(n, id, vec![upd(v)])).await;
        c.expect(reply(n, v).update(&p(v))).await;
    }
    c.passivate().await;

    let mut c = d.value_entity().await;
    c.send(ve::init_with_state(SVC, id, &p("D"))).await;
    c.send(cmd(1, id, vec![upd("E")])).await;
    c.expect(reply(1, "E").update(&p("E"))).await;
    c.send(cmd(2, id, vec![])).await;
    c.expect(reply(2, "E")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v08_reply_with_multiple_side_effects() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-8";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(
        1,
        id,
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
async fn v09_reply_with_side_effect_to_second_service() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-9";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![upd("X")])).await;
    c.expect(reply(1, "X").update(&p("X"))).await;
    c.send(cmd(2, id, vec![eff(id, false)])).await;
    c.expect(reply(2, "X").side_effect(se(id, false))).await;
    c.send(cmd(3, id, vec![])).await;
    c.expect(reply(3, "X")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v10_reply_with_multiple_side_effects_and_state() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-10";
    c.send(ve::init(SVC, id)).await;
    let mut actions: Vec<_> = ["A", "B", "C", "D", "E"].iter().map(|v| upd(v)).collect();
    actions.extend([eff("1", false), eff("2", false), eff("3", false)]);
    c.send(cmd(1, id, actions)).await;
    c.expect(
        reply(1, "E")
            .update(&p("E"))
            .side_effect(se("1", false))
            .side_effect(se("2", false))
            .side_effect(se("3", false)),
    )
    .await;
    c.passivate().await;
}

#[tokio::test]
async fn v11_synchronous_side_effect_to_second_service() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-11";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![eff(id, true)])).await;
    c.expect(reply(1, "").side_effect(se(id, true))).await;
    c.passivate().await;
}

#[tokio::test]
async fn v12_forward_to_second_service() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-12";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![upd("X")])).await;
    c.expect(reply(1, "X").update(&p("X"))).await;
    c.send(cmd(2, id, vec![fwd(id)])).await;
    c.expect(forward(2, id)).await;
    c.send(cmd(3, id, vec![])).await;
    c.expect(reply(3, "X")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v13_forward_with_updated_state() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-13";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![upd("A"), fwd(id)])).await;
    c.expect(forward(1, id).update(&p("A"))).await;
    c.passivate().await;
}

#[tokio::test]
async fn v14_forward_and_side_effect_to_second_service() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-14";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![eff(id, false), fwd(id)])).await;
    c.expect(forward(1, id).side_effect(se(id, false))).await;
    c.passivate().await;
}

#[tokio::test]
async fn v15_failure_action() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-15";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![fail("expected failure")])).await;
    c.expect(ve::failure(1, "expected failure")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v16_connection_after_failure_action() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-16";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![upd("A")])).await;
    c.expect(reply(1, "A").update(&p("A"))).await;
    c.send(cmd(2, id, vec![fail("expected failure")])).await;
    c.expect(ve::failure(2, "expected failure")).await;
    c.send(cmd(3, id, vec![])).await;
    c.expect(reply(3, "A")).await;
    c.passivate().await;
}

#[tokio::test]
async fn v17_failure_does_not_allow_side_effects() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "entity-17";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![eff(id, false), fail("expected failure")]))
        .await;
    c.expect(ve::failure(1, "expected failure")).await;
    c.passivate().await;
}

/// Not in the TCK: a failure after an update (or a delete) in the same
/// command leaves the state as it was before the command.
#[tokio::test]
async fn failure_after_update_rolls_back_the_state() {
    let s = server().await;
    let d = s.driver().await;
    let id = "rollback";
    let mut c = d.value_entity().await;
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![upd("A")])).await;
    c.expect(reply(1, "A").update(&p("A"))).await;
    c.send(cmd(
        2,
        id,
        vec![upd("B"), eff(id, false), fail("failure 1"), upd("C")],
    ))
    .await;
    c.expect(ve::failure(2, "failure 1")).await;
    c.send(cmd(3, id, vec![])).await;
    c.expect(reply(3, "A")).await;
    c.send(cmd(4, id, vec![del(), fail("failure 2")])).await;
    c.expect(ve::failure(4, "failure 2")).await;
    c.send(cmd(5, id, vec![])).await;
    c.expect(reply(5, "A")).await;
    c.passivate().await;

    // From no state: a failed update leaves none.
    let mut c = d.value_entity().await;
    c.send(ve::init(SVC, "rollback-empty")).await;
    c.send(cmd(1, "rollback-empty", vec![upd("X"), fail("failure 3")]))
        .await;
    c.expect(ve::failure(1, "failure 3")).await;
    c.send(cmd(2, "rollback-empty", vec![])).await;
    c.expect(reply(2, "")).await;
    c.passivate().await;

    // From an init state: the failed delete keeps it.
    let mut c = d.value_entity().await;
    c.send(ve::init_with_state(SVC, "rollback-init", &p("S")))
        .await;
    c.send(cmd(1, "rollback-init", vec![del(), fail("failure 4")]))
        .await;
    c.expect(ve::failure(1, "failure 4")).await;
    c.send(cmd(2, "rollback-init", vec![])).await;
    c.expect(reply(2, "S")).await;
    c.passivate().await;
}

/// Not in the TCK (V7's init state is overwritten before any read): the init
/// state is decoded and read, then replaced and deleted as usual.
#[tokio::test]
async fn init_state_is_decoded() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "with-state";
    c.send(ve::init_with_state(SVC, id, &p("stored"))).await;
    c.send(cmd(1, id, vec![])).await;
    c.expect(reply(1, "stored")).await;
    c.send(cmd(2, id, vec![del()])).await;
    c.expect(reply(2, "").delete()).await;
    c.send(cmd(3, id, vec![])).await;
    c.expect(reply(3, "")).await;
    c.passivate().await;

    // An init state holding an empty `Persisted` (empty bytes) is a state.
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init_with_state(SVC, "empty-state", &p("")))
        .await;
    c.send(cmd(1, "empty-state", vec![upd("x")])).await;
    c.expect(reply(1, "x").update(&p("x"))).await;
    c.passivate().await;
}

/// An init without the `state` field at all is "no state" too.
#[tokio::test]
async fn init_without_state_field() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "no-state-field";
    c.send(ValueEntityStreamIn {
        message: Some(In::Init(ValueEntityInit {
            service_name: SVC.into(),
            entity_id: id.into(),
            state: None,
        })),
    })
    .await;
    c.send(cmd(1, id, vec![])).await;
    c.expect(reply(1, "")).await;
    c.send(cmd(2, id, vec![upd("A")])).await;
    c.expect(reply(2, "A").update(&p("A"))).await;
    c.passivate().await;
}

/// Across commands too, the last operation wins, and every update or delete
/// is sent even when it changes nothing (no diffing against the stored value).
#[tokio::test]
async fn update_delete_update_across_commands() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    let id = "udu";
    c.send(ve::init(SVC, id)).await;
    c.send(cmd(1, id, vec![del()])).await;
    c.expect(reply(1, "").delete()).await;
    c.send(cmd(2, id, vec![upd("A")])).await;
    c.expect(reply(2, "A").update(&p("A"))).await;
    c.send(cmd(3, id, vec![upd("A")])).await;
    c.expect(reply(3, "A").update(&p("A"))).await;
    c.send(cmd(4, id, vec![del()])).await;
    c.expect(reply(4, "").delete()).await;
    c.send(cmd(5, id, vec![del()])).await;
    c.expect(reply(5, "").delete()).await;
    c.send(cmd(6, id, vec![upd("B")])).await;
    c.expect(reply(6, "B").update(&p("B"))).await;
    c.send(cmd(7, id, vec![del(), upd("C"), del(), upd("D")]))
        .await;
    c.expect(reply(7, "D").update(&p("D"))).await;
    c.send(cmd(8, id, vec![])).await;
    c.expect(reply(8, "D")).await;
    c.passivate().await;
}

/// The forward and side-effect target, and the configured service, answer
/// with an empty `Response`: a present payload with empty bytes.
#[tokio::test]
async fn second_and_configured_services_reply_empty_response() {
    let s = server().await;
    let d = s.driver().await;
    for service in [TWO, CONFIGURED] {
        let mut c = d.value_entity().await;
        c.send(ve::init(service, "x")).await;
        c.send(ve::command(1, "x", "Call", &req("x", vec![upd("A")])))
            .await;
        let out = c.next_message().await;
        assert_eq!(out, ve::reply(1, &Response::default()).build());
        let Some(Out::Reply(r)) = out.message else {
            panic!("{out:?}")
        };
        let Some(ClientAction::Reply(reply)) = r.client_action.and_then(|a| a.action) else {
            panic!("not a reply")
        };
        let payload = reply.payload.unwrap();
        assert_eq!(
            payload.type_url,
            "type.googleapis.com/cloudstate.tck.model.valueentity.Response"
        );
        assert!(payload.value.is_empty());
        assert!(r.state_action.is_none() && r.side_effects.is_empty() && reply.metadata.is_none());
        c.passivate().await;
    }
}

/// Several commands sent before any reply are answered in order.
#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(SVC, "pipe")).await;
    for n in 1..=20 {
        c.send(cmd(n, "pipe", vec![upd(&n.to_string())])).await;
    }
    for n in 1..=20 {
        let v = n.to_string();
        c.expect(reply(n, &v).update(&p(&v))).await;
    }
    c.passivate().await;
}

/// The exact bytes behind the builders, so that the comparisons above do not
/// rest on the SDK's own encoding alone.
#[tokio::test]
async fn wire_shapes() {
    use cloudstate_sdk::protocol::cloudstate::valueentity::value_entity_action::Action as StateAction;
    // A new entity's init: state present as an empty sub-message (field 3).
    let ValueEntityStreamIn {
        message: Some(In::Init(init)),
    } = ve::init(SVC, "w")
    else {
        unreachable!()
    };
    assert!(init.encode_to_vec().ends_with(&[0x1a, 0x00]));

    let s = server().await;
    let mut c = s.driver().await.value_entity().await;
    c.send(ve::init(SVC, "w")).await;
    c.send(cmd(1, "w", vec![upd("A")])).await;
    let out = c.next_message().await;
    let Some(Out::Reply(r)) = out.message else {
        panic!("{out:?}")
    };
    let Some(StateAction::Update(update)) = r.state_action.and_then(|a| a.action) else {
        panic!("no update")
    };
    let value = update.value.unwrap();
    assert_eq!(
        value.type_url,
        "type.googleapis.com/cloudstate.tck.model.valueentity.Persisted"
    );
    assert_eq!(value.value, vec![0x0a, 0x01, b'A']);
    assert_eq!(value, payload::encode(&p("A")));
    c.send(cmd(2, "w", vec![del()])).await;
    let out = c.next_message().await;
    let Some(Out::Reply(r)) = out.message else {
        panic!("{out:?}")
    };
    // The delete oneof is set, as an empty sub-message.
    assert_eq!(r.state_action.unwrap().encode_to_vec(), vec![0x12, 0x00]);
    c.passivate().await;
}
