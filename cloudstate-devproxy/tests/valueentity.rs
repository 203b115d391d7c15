//! The value-entity scenarios of the dev proxy brief (§3.3: the TCK's proxy
//! tests P1–P5, plus rehydration and SQLite), through gRPC and HTTP, against
//! the TCK adapter; the observer shows what the user function saw. Then the
//! protocol errors, with a user function that misbehaves on purpose.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cloudstate_devproxy::{Observed, Store};
use cloudstate_sdk::payload::{self, Any};
use cloudstate_sdk::protocol::cloudstate::SideEffect;
use cloudstate_sdk::protocol::cloudstate::valueentity::{
    ValueEntityStreamIn, ValueEntityStreamOut, value_entity_stream_in::Message as ValueEntityIn,
};
use cloudstate_sdk::testkit::{TestServer, valueentity as ve};
use cloudstate_sdk::{
    CloudState, Command, CommandResult, PayloadError, Reply, ValueContext, ValueEntityOptions,
};
use support::{grpc, http, proxy_with, start, start_with, until};
use tck_adapter::proto::cloudstate::tck::model::valueentity::{
    Delete, Effect, Fail, Forward, Persisted, Request, RequestAction, Response, Update,
    request_action::Action,
};
use tokio::sync::broadcast;

const SVC: &str = "cloudstate.tck.model.valueentity.ValueEntityTckModel";
const TWO: &str = "cloudstate.tck.model.valueentity.ValueEntityTwo";
const CONF: &str = "cloudstate.tck.model.valueentity.ValueEntityConfigured";
const PROCESS: &str = "/cloudstate.tck.model.valueentity.ValueEntityTckModel/Process";

fn req(id: &str, actions: Vec<Action>) -> Request {
    Request {
        id: id.into(),
        actions: actions
            .into_iter()
            .map(|a| RequestAction { action: Some(a) })
            .collect(),
    }
}
fn upd(v: &str) -> Action {
    Action::Update(Update { value: v.into() })
}
fn del() -> Action {
    Action::Delete(Delete {})
}
fn fwd(id: &str) -> Action {
    Action::Forward(Forward { id: id.into() })
}
fn eff(id: &str) -> Action {
    Action::Effect(Effect {
        id: id.into(),
        synchronous: false,
    })
}
fn fail(m: &str) -> Action {
    Action::Fail(Fail { message: m.into() })
}
fn p(v: &str) -> Persisted {
    Persisted { value: v.into() }
}
fn resp(m: &str) -> Response {
    Response { message: m.into() }
}
fn side_effect(id: &str) -> SideEffect {
    SideEffect {
        service_name: TWO.into(),
        command_name: "Call".into(),
        payload: Some(payload::encode(&req(id, vec![]))),
        synchronous: false,
        metadata: None,
    }
}
fn cmd(n: i64, id: &str, actions: Vec<Action>) -> Msg {
    Msg::In(ve::command(n, id, "Process", &req(id, actions)))
}
fn call(n: i64, id: &str) -> Msg {
    Msg::In(ve::command(n, id, "Call", &req(id, vec![])))
}

async fn process(
    addr: std::net::SocketAddr,
    id: &str,
    actions: Vec<Action>,
) -> Result<Response, tonic::Status> {
    grpc(addr, PROCESS, req(id, actions)).await
}

/// One value-entity message, either way.
#[derive(Debug, Clone, PartialEq)]
enum Msg {
    In(ValueEntityStreamIn),
    Out(ValueEntityStreamOut),
}

impl From<ve::ReplyBuilder> for Msg {
    fn from(reply: ve::ReplyBuilder) -> Self {
        Self::Out(reply.build())
    }
}

/// The value-entity traffic observed until `outs` messages came back from
/// the user function, per stream, with the service each stream is for.
async fn traffic(
    observed: &mut broadcast::Receiver<Observed>,
    outs: usize,
) -> Vec<(String, Vec<Msg>)> {
    let mut left = outs;
    let seen = until(observed, |o| {
        if matches!(o, Observed::ValueEntityOut(..)) {
            left -= 1;
        }
        left == 0
    })
    .await;
    streams(&seen)
}

/// `items` grouped by stream, in the order the streams opened.
fn streams(items: &[Observed]) -> Vec<(String, Vec<Msg>)> {
    let mut order = Vec::new();
    let mut by_stream: HashMap<u64, (String, Vec<Msg>)> = HashMap::new();
    for item in items {
        let (stream, msg) = match item {
            Observed::StreamOpened {
                stream, service, ..
            } => {
                order.push(*stream);
                by_stream.insert(*stream, (service.clone(), Vec::new()));
                continue;
            }
            Observed::ValueEntityIn(stream, m) => (stream, Msg::In(m.clone())),
            Observed::ValueEntityOut(stream, m) => (stream, Msg::Out(m.clone())),
            _ => continue,
        };
        by_stream
            .get_mut(stream)
            .expect("traffic on a stream opened before")
            .1
            .push(msg);
    }
    order
        .into_iter()
        .filter_map(|n| by_stream.remove(&n))
        .collect()
}

#[tokio::test]
async fn p1_state_changes_on_one_stream() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "p1";
    let steps: Vec<(Vec<Action>, &str)> = vec![
        (vec![], ""),
        (vec![upd("one")], "one"),
        (vec![upd("two")], "two"),
        (vec![], "two"),
        (vec![del()], ""),
        (vec![], ""),
        (vec![upd("foo")], "foo"),
        (vec![del()], ""),
    ];
    for (actions, expected) in steps.iter().cloned() {
        assert_eq!(process(addr, id, actions).await.unwrap(), resp(expected));
    }
    let expected = vec![
        Msg::In(ve::init(SVC, id)),
        cmd(1, id, vec![]),
        ve::reply(1, &resp("")).into(),
        cmd(2, id, vec![upd("one")]),
        ve::reply(2, &resp("one")).update(&p("one")).into(),
        cmd(3, id, vec![upd("two")]),
        ve::reply(3, &resp("two")).update(&p("two")).into(),
        cmd(4, id, vec![]),
        ve::reply(4, &resp("two")).into(),
        cmd(5, id, vec![del()]),
        ve::reply(5, &resp("")).delete().into(),
        cmd(6, id, vec![]),
        ve::reply(6, &resp("")).into(),
        cmd(7, id, vec![upd("foo")]),
        ve::reply(7, &resp("foo")).update(&p("foo")).into(),
        cmd(8, id, vec![del()]),
        ve::reply(8, &resp("")).delete().into(),
    ];
    assert_eq!(
        traffic(&mut s.observed, 8).await,
        vec![(SVC.to_owned(), expected)]
    );
}

#[tokio::test]
async fn p2_forwards_and_side_effects_reach_the_second_service() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "p2";
    assert_eq!(
        process(addr, id, vec![upd("one")]).await.unwrap(),
        resp("one")
    );
    // The client gets the second service's reply.
    assert_eq!(process(addr, id, vec![fwd(id)]).await.unwrap(), resp(""));
    assert_eq!(process(addr, id, vec![eff(id)]).await.unwrap(), resp("one"));
    assert_eq!(process(addr, id, vec![]).await.unwrap(), resp("one"));
    let model = vec![
        Msg::In(ve::init(SVC, id)),
        cmd(1, id, vec![upd("one")]),
        ve::reply(1, &resp("one")).update(&p("one")).into(),
        cmd(2, id, vec![fwd(id)]),
        ve::forward(2, TWO, "Call", &req(id, vec![])).into(),
        cmd(3, id, vec![eff(id)]),
        ve::reply(3, &resp("one"))
            .side_effect(side_effect(id))
            .into(),
        cmd(4, id, vec![]),
        ve::reply(4, &resp("one")).into(),
    ];
    // The asynchronous side effect's reply may come after the last call's.
    let two = vec![
        Msg::In(ve::init(TWO, id)),
        call(1, id),
        ve::reply(1, &resp("")).into(),
        call(2, id),
        ve::reply(2, &resp("")).into(),
    ];
    assert_eq!(
        traffic(&mut s.observed, 6).await,
        vec![(SVC.to_owned(), model), (TWO.to_owned(), two)]
    );
}

#[tokio::test]
async fn p3_a_failure_changes_nothing_and_the_stream_goes_on() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "p3";
    assert_eq!(
        process(addr, id, vec![upd("one")]).await.unwrap(),
        resp("one")
    );
    let status = process(addr, id, vec![fail("expected failure")])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(status.message(), "expected failure");
    assert_eq!(process(addr, id, vec![]).await.unwrap(), resp("one"));
    let expected = vec![
        Msg::In(ve::init(SVC, id)),
        cmd(1, id, vec![upd("one")]),
        ve::reply(1, &resp("one")).update(&p("one")).into(),
        cmd(2, id, vec![fail("expected failure")]),
        Msg::Out(ve::failure(2, "expected failure")),
        cmd(3, id, vec![]),
        ve::reply(3, &resp("one")).into(),
    ];
    assert_eq!(
        traffic(&mut s.observed, 3).await,
        vec![(SVC.to_owned(), expected)]
    );
    // No restart: the stream stays open.
    let mut rest = Vec::new();
    while let Ok(item) = s.observed.try_recv() {
        rest.push(item);
    }
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn p4_http_api() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "p4";
    let path = format!("/tck/model/entity/{id}");
    let (status, content_type, body) = http(addr, "POST", &path, Some("{}")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":""}"#));
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let (status, _, body) = http(
        addr,
        "POST",
        "/cloudstate.tck.model.valueentity.ValueEntityTwo/Call",
        Some(&format!(r#"{{"id": "{id}"}}"#)),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":""}"#));
    let update_one = r#"{"actions": [{"update": {"value": "one"}}]}"#;
    let (status, _, body) = http(addr, "POST", &path, Some(update_one)).await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":"one"}"#));
    let failing = r#"{"actions": [{"fail": {"message": "expected failure"}}]}"#;
    let (status, _, body) = http(addr, "POST", &path, Some(failing)).await;
    assert_eq!((status, body.as_str()), (500, "expected failure"));
    let update_two = r#"{"actions": [{"update": {"value": "two"}}]}"#;
    let (status, _, body) = http(addr, "POST", &path, Some(update_two)).await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":"two"}"#));
    let (status, _, body) = http(addr, "POST", &path, Some("{}")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":"two"}"#));

    let model = vec![
        Msg::In(ve::init(SVC, id)),
        cmd(1, id, vec![]),
        ve::reply(1, &resp("")).into(),
        cmd(2, id, vec![upd("one")]),
        ve::reply(2, &resp("one")).update(&p("one")).into(),
        cmd(3, id, vec![fail("expected failure")]),
        Msg::Out(ve::failure(3, "expected failure")),
        cmd(4, id, vec![upd("two")]),
        ve::reply(4, &resp("two")).update(&p("two")).into(),
        cmd(5, id, vec![]),
        ve::reply(5, &resp("two")).into(),
    ];
    let two = vec![
        Msg::In(ve::init(TWO, id)),
        call(1, id),
        ve::reply(1, &resp("")).into(),
    ];
    assert_eq!(
        traffic(&mut s.observed, 6).await,
        vec![(SVC.to_owned(), model), (TWO.to_owned(), two)]
    );
}

#[tokio::test]
async fn p5_passivation_closes_both_sides() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "p5";
    let started = Instant::now();
    let got: Response = grpc(addr, &format!("/{CONF}/Call"), req(id, vec![]))
        .await
        .unwrap();
    assert_eq!(got, resp(""));
    let seen = until(&mut s.observed, |o| {
        matches!(o, Observed::OutputClosed { .. })
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed after {:?}",
        started.elapsed()
    );
    let stream = seen
        .iter()
        .find_map(|o| match o {
            Observed::StreamOpened { stream, .. } => Some(*stream),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        streams(&seen),
        vec![(
            CONF.to_owned(),
            vec![
                Msg::In(ve::init(CONF, id)),
                call(1, id),
                ve::reply(1, &resp("")).into()
            ]
        )]
    );
    assert!(seen.contains(&Observed::InputClosed(stream)));
    assert_eq!(
        seen.last(),
        Some(&Observed::OutputClosed { stream, ok: true })
    );
}

async fn passivated(observed: &mut broadcast::Receiver<Observed>) {
    until(observed, |o| {
        matches!(o, Observed::OutputClosed { ok: true, .. })
    })
    .await;
}

#[tokio::test]
async fn rehydration_after_passivation_sends_the_stored_state() {
    let uf = TestServer::start(tck_adapter::server()).await;
    let (proxy, mut observed, _) = proxy_with(uf.addr(), |config| {
        config.default_passivation = Duration::from_millis(200);
    })
    .await;
    let addr = proxy.local_addr();
    let id = "rehydrate";
    assert_eq!(process(addr, id, vec![upd("x")]).await.unwrap(), resp("x"));
    passivated(&mut observed).await;

    assert_eq!(process(addr, id, vec![]).await.unwrap(), resp("x"));
    let expected = vec![
        Msg::In(ve::init_with_state(SVC, id, &p("x"))),
        cmd(1, id, vec![]),
        ve::reply(1, &resp("x")).into(),
    ];
    assert_eq!(
        traffic(&mut observed, 1).await,
        vec![(SVC.to_owned(), expected)]
    );
    assert_eq!(process(addr, id, vec![del()]).await.unwrap(), resp(""));
    passivated(&mut observed).await;

    // Deleted: init carries a state without a value again.
    assert_eq!(process(addr, id, vec![]).await.unwrap(), resp(""));
    assert_eq!(
        traffic(&mut observed, 1).await,
        vec![(
            SVC.to_owned(),
            vec![
                Msg::In(ve::init(SVC, id)),
                cmd(1, id, vec![]),
                ve::reply(1, &resp("")).into()
            ]
        )]
    );
}

#[tokio::test]
async fn sqlite_state_survives_a_proxy_restart() {
    let path = std::env::temp_dir().join(format!("devproxy-ve-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store = || Store::from_spec(&format!("sqlite:{}", path.display())).unwrap();
    let s = start_with(tck_adapter::server(), store()).await;
    let addr = s.proxy.local_addr();
    assert_eq!(
        process(addr, "db", vec![upd("A")]).await.unwrap(),
        resp("A")
    );
    assert_eq!(
        process(addr, "gone", vec![upd("B"), del()]).await.unwrap(),
        resp("")
    );
    s.proxy.shutdown().await;
    s.user_function.shutdown().await.unwrap();

    let mut s = start_with(tck_adapter::server(), store()).await;
    let addr = s.proxy.local_addr();
    assert_eq!(
        process(addr, "db", vec![upd("C")]).await.unwrap(),
        resp("C")
    );
    assert_eq!(process(addr, "gone", vec![]).await.unwrap(), resp(""));
    let traffic = traffic(&mut s.observed, 2).await;
    assert_eq!(
        traffic[0],
        (
            SVC.to_owned(),
            vec![
                Msg::In(ve::init_with_state(SVC, "db", &p("A"))),
                cmd(1, "db", vec![upd("C")]),
                ve::reply(1, &resp("C")).update(&p("C")).into(),
            ]
        )
    );
    assert_eq!(traffic[1].1[0], Msg::In(ve::init(SVC, "gone")));
    s.proxy.shutdown().await;
    s.user_function.shutdown().await.unwrap();

    let store = store();
    assert_eq!(
        store
            .get_value("value-entity-tck-model", "db")
            .await
            .unwrap(),
        Some(payload::encode(&p("C")))
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_failed_write_fails_the_command_and_stops_the_entity() {
    let path = std::env::temp_dir().join(format!("devproxy-ve-fail-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store = Store::from_spec(&format!("sqlite:{}", path.display())).unwrap();
    let mut s = start_with(tck_adapter::server(), store).await;
    let addr = s.proxy.local_addr();
    assert_eq!(process(addr, "w", vec![upd("A")]).await.unwrap(), resp("A"));
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE value_entity_state")
        .unwrap();
    let status = process(addr, "w", vec![upd("B")]).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(status.message(), "Unexpected Value entity failure");
    let seen = until(&mut s.observed, |o| {
        matches!(o, Observed::OutputClosed { .. })
    })
    .await;
    assert!(seen.iter().any(|o| matches!(o, Observed::InputClosed(_))));
    // The next command starts a new entity, which cannot read its state.
    let status = process(addr, "w", vec![]).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(
        status.message().contains("value_entity_state"),
        "{}",
        status.message()
    );
    let _ = std::fs::remove_file(&path);
}

/// Holds `decode_state` until the test opens it, so commands queue up
/// behind the first one.
static GATE: (std::sync::Mutex<bool>, std::sync::Condvar) =
    (std::sync::Mutex::new(false), std::sync::Condvar::new());

fn open_gate() {
    *GATE.0.lock().unwrap() = true;
    GATE.1.notify_all();
}

/// Reads its state only once the gate is open, and never successfully, so
/// a stored state makes its stream fail at `init`; replies with the request
/// id otherwise.
struct Unreadable;

impl cloudstate_sdk::ValueEntity for Unreadable {
    type State = Any;

    fn encode_state(&self, state: &Any) -> Any {
        state.clone()
    }

    fn decode_state(&self, state: &Any) -> Result<Any, PayloadError> {
        let open = GATE.0.lock().unwrap();
        drop(GATE.1.wait_while(open, |open| !*open).unwrap());
        Err(PayloadError::unhandled(state))
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        _: &mut ValueContext<'_, Self>,
    ) -> CommandResult {
        let request: Request = command.decode()?;
        Ok(Reply::encode(&resp(&request.id)))
    }
}

fn unreadable() -> CloudState {
    CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .value_entity(SVC, Unreadable, ValueEntityOptions::new("unreadable"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_failure_fails_the_current_and_the_queued_commands() {
    let store = Store::memory();
    store
        .upsert_value(
            "unreadable",
            "poisoned",
            Any {
                type_url: "type.googleapis.com/unknown.State".into(),
                value: vec![],
            },
        )
        .await
        .unwrap();
    let mut s = start_with(unreadable(), store).await;
    let addr = s.proxy.local_addr();
    let first = tokio::spawn(process(addr, "poisoned", vec![]));
    // The first command started the entity, whose init waits at the gate.
    let mut seen = until(&mut s.observed, |o| {
        matches!(o, Observed::ValueEntityIn(_, m) if matches!(m.message, Some(ValueEntityIn::Command(_))))
    })
    .await;
    let queued: Vec<_> = (0..3)
        .map(|_| tokio::spawn(process(addr, "poisoned", vec![])))
        .collect();
    // All three are in the entity's mailbox before it may fail.
    for _ in 0..3 {
        seen.extend(
            until(
                &mut s.observed,
                |o| matches!(o, Observed::Dispatched { entity_id, .. } if entity_id == "poisoned"),
            )
            .await,
        );
    }
    open_gate();
    let status = first.await.unwrap().unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::Unknown, "Unexpected Value entity failure")
    );
    for call in queued {
        let status = call.await.unwrap().unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::Unknown, "Value entity terminated")
        );
    }
    seen.extend(
        until(&mut s.observed, |o| {
            matches!(o, Observed::OutputClosed { .. })
        })
        .await,
    );
    let traffic = streams(&seen);
    assert_eq!(traffic.len(), 1, "one stream: {traffic:?}");
    assert_eq!(traffic[0].1.len(), 3, "init, one command, the failure");
    assert!(matches!(
        &traffic[0].1[2],
        Msg::Out(ValueEntityStreamOut {
            message: Some(
                cloudstate_sdk::protocol::cloudstate::valueentity::value_entity_stream_out::Message::Failure(_)
            )
        })
    ));
    // The entity stopped; the next command starts it again, other entities are untouched.
    let (status, _, body) = http(addr, "POST", "/tck/model/entity/poisoned", Some("{}")).await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Unexpected Value entity failure")
    );
    assert_eq!(process(addr, "fine", vec![]).await.unwrap(), resp("fine"));
}

#[tokio::test]
async fn a_user_function_gone_away_ends_the_entity() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    assert_eq!(
        process(addr, "gone", vec![upd("A")]).await.unwrap(),
        resp("A")
    );
    s.user_function.shutdown().await.unwrap();
    let status = process(addr, "gone", vec![]).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(status.message(), "Unexpected Value entity termination");
}
