//! The event-sourced and discovery scenarios of the dev proxy brief (§3.1,
//! §3.2, §3.7), through gRPC and HTTP, against the TCK adapter; the observer
//! shows what the user function saw.

mod support;

use std::time::Duration;

use cloudstate_devproxy::{DevProxy, DevProxyConfig, Observed, Store};
use cloudstate_sdk::payload;
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, EventSourcedStreamOut,
};
use cloudstate_sdk::testkit::eventsourced as es;
use support::{grpc, http, next, start, start_with, until};
use tck_adapter::proto::cloudstate::tck::model::{
    Effect, Emit, Fail, Forward, Persisted, Request, RequestAction, Response,
    request_action::Action,
};

const SVC: &str = "cloudstate.tck.model.EventSourcedTckModel";
const TWO: &str = "cloudstate.tck.model.EventSourcedTwo";
const PROCESS: &str = "/cloudstate.tck.model.EventSourcedTckModel/Process";

fn req(id: &str, actions: Vec<Action>) -> Request {
    Request {
        id: id.into(),
        actions: actions
            .into_iter()
            .map(|a| RequestAction { action: Some(a) })
            .collect(),
    }
}
fn emit(v: &str) -> Action {
    Action::Emit(Emit { value: v.into() })
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

/// The next message the proxy sent to the user function, on any stream.
async fn uf_in(
    observed: &mut tokio::sync::broadcast::Receiver<Observed>,
) -> (u64, EventSourcedStreamIn) {
    loop {
        if let Observed::EventSourcedIn(stream, message) = next(observed).await {
            return (stream, message);
        }
    }
}

/// The next message the user function sent back, on any stream.
async fn uf_out(
    observed: &mut tokio::sync::broadcast::Receiver<Observed>,
) -> (u64, EventSourcedStreamOut) {
    loop {
        if let Observed::EventSourcedOut(stream, message) = next(observed).await {
            return (stream, message);
        }
    }
}

async fn process(
    addr: std::net::SocketAddr,
    id: &str,
    actions: Vec<Action>,
) -> Result<Response, tonic::Status> {
    grpc(addr, PROCESS, req(id, actions)).await
}

#[tokio::test]
async fn es1_state_changes_on_one_stream_with_snapshots() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    assert_eq!(process(addr, "es1", vec![]).await.unwrap(), resp(""));
    let (stream, init) = uf_in(&mut s.observed).await;
    assert_eq!(init, es::init(SVC, "es1"));
    assert_eq!(
        uf_in(&mut s.observed).await,
        (
            stream,
            es::command(1, "es1", "Process", &req("es1", vec![]))
        )
    );
    assert_eq!(
        uf_out(&mut s.observed).await,
        (stream, es::reply(1, &resp("")).build())
    );

    assert_eq!(
        process(addr, "es1", vec![emit("A")]).await.unwrap(),
        resp("A")
    );
    assert_eq!(
        process(addr, "es1", vec![emit("B"), emit("C"), emit("D")])
            .await
            .unwrap(),
        resp("ABCD")
    );
    assert_eq!(
        process(addr, "es1", vec![emit("E")]).await.unwrap(),
        resp("ABCDE")
    );
    assert_eq!(
        process(
            addr,
            "es1",
            vec![emit("F"), emit("G"), emit("H"), emit("I")]
        )
        .await
        .unwrap(),
        resp("ABCDEFGHI")
    );
    assert_eq!(
        process(addr, "es1", vec![emit("J"), emit("K")])
            .await
            .unwrap(),
        resp("ABCDEFGHIJK")
    );
    let mut commands = Vec::new();
    let mut snapshots = Vec::new();
    while commands.len() < 5 {
        match next(&mut s.observed).await {
            Observed::EventSourcedIn(n, m) => {
                assert_eq!(n, stream, "one stream for every command");
                commands.push(m);
            }
            Observed::EventSourcedOut(_, EventSourcedStreamOut { message: Some(es_out) }) => {
                if let cloudstate_sdk::protocol::cloudstate::eventsourced::event_sourced_stream_out::Message::Reply(r) = es_out {
                    snapshots.push(r.snapshot.is_some());
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let ids: Vec<i64> = commands
        .iter()
        .map(|m| match &m.message {
            Some(cloudstate_sdk::protocol::cloudstate::eventsourced::event_sourced_stream_in::Message::Command(c)) => c.id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![2, 3, 4, 5, 6]);
    let last = uf_out(&mut s.observed).await;
    snapshots.push(matches!(&last.1.message, Some(cloudstate_sdk::protocol::cloudstate::eventsourced::event_sourced_stream_out::Message::Reply(r)) if r.snapshot.is_some()));
    assert_eq!(snapshots, vec![false, false, true, false, true]);
}

#[tokio::test]
async fn es2_forward_and_side_effect_reach_the_second_service() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    assert_eq!(
        process(addr, "es2", vec![emit("one")]).await.unwrap(),
        resp("one")
    );
    assert_eq!(
        process(
            addr,
            "es2",
            vec![Action::Forward(Forward { id: "es2".into() })]
        )
        .await
        .unwrap(),
        resp("")
    );
    let seen = until(
        &mut s.observed,
        |o| matches!(o, Observed::EventSourcedOut(_, m) if *m == es::reply(1, &resp("")).build()),
    )
    .await;
    let two = seen
        .iter()
        .find_map(|o| match o {
            Observed::StreamOpened {
                stream,
                service,
                entity_id,
            } if service == TWO => {
                assert_eq!(entity_id, "es2");
                Some(*stream)
            }
            _ => None,
        })
        .expect("a stream for EventSourcedTwo");
    assert!(seen.contains(&Observed::EventSourcedIn(two, es::init(TWO, "es2"))));
    assert!(seen.contains(&Observed::EventSourcedIn(
        two,
        es::command(1, "es2", "Call", &req("es2", vec![]))
    )));

    let effect = Action::Effect(Effect {
        id: "es2".into(),
        synchronous: true,
    });
    assert_eq!(
        process(addr, "es2", vec![effect]).await.unwrap(),
        resp("one")
    );
    // The synchronous side effect ran on the second stream before the reply.
    let seen = until(
        &mut s.observed,
        |o| matches!(o, Observed::EventSourcedIn(n, _) if *n == two),
    )
    .await;
    assert!(
        seen.iter().any(|o| *o
            == Observed::EventSourcedIn(two, es::command(2, "es2", "Call", &req("es2", vec![]))))
    );
    assert_eq!(process(addr, "es2", vec![]).await.unwrap(), resp("one"));
}

#[tokio::test]
async fn es3_failures_and_restart_from_the_journal() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    assert_eq!(
        process(addr, "es3", vec![emit("1"), emit("2"), emit("3")])
            .await
            .unwrap(),
        resp("123")
    );
    let status = process(addr, "es3", vec![fail("expected failure")])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(status.message(), "expected failure");
    assert_eq!(process(addr, "es3", vec![]).await.unwrap(), resp("123"));
    let status = process(
        addr,
        "es3",
        vec![emit("4"), fail("another failure"), emit("5")],
    )
    .await
    .unwrap_err();
    assert_eq!(status.message(), "another failure");

    // The SDK asked for a restart: the old stream closes and a new one
    // replays the journal at once, before any further call.
    let seen = until(&mut s.observed, |o| matches!(o, Observed::EventSourcedIn(_, m) if *m == es::event(3, payload::encode(&p("3"))))).await;
    let first = seen
        .iter()
        .find_map(|o| match o {
            Observed::InputClosed(n) => Some(*n),
            _ => None,
        })
        .expect("old stream closed");
    assert!(
        seen.iter()
            .any(|o| matches!(o, Observed::OutputClosed { stream, ok: true } if *stream == first))
    );
    assert!(seen.contains(&Observed::EventSourcedIn(first + 1, es::init(SVC, "es3"))));
    assert!(seen.contains(&Observed::EventSourcedIn(
        first + 1,
        es::event(1, payload::encode(&p("1")))
    )));

    assert_eq!(
        process(addr, "es3", vec![emit("4"), emit("5")])
            .await
            .unwrap(),
        resp("12345")
    );
    let (stream, command) = uf_in(&mut s.observed).await;
    assert_eq!(stream, first + 1);
    assert_eq!(
        command,
        es::command(1, "es3", "Process", &req("es3", vec![emit("4"), emit("5")]))
    );
    let (_, reply) = uf_out(&mut s.observed).await;
    assert_eq!(
        reply,
        es::reply(1, &resp("12345"))
            .event(&p("4"))
            .event(&p("5"))
            .snapshot(&p("12345"))
            .build()
    );
}

#[tokio::test]
async fn es4_http_api() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let (status, content_type, body) =
        http(addr, "POST", "/tck/model/eventsourced/es4", Some("{}")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":""}"#));
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let (status, _, body) = http(
        addr,
        "POST",
        "/cloudstate.tck.model.EventSourcedTwo/Call",
        Some(r#"{"id":"es4"}"#),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":""}"#));
    let emit_x = r#"{"actions":[{"emit":{"value":"x"}}]}"#;
    let (status, _, body) = http(addr, "POST", "/tck/model/eventsourced/es4", Some(emit_x)).await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":"x"}"#));
    let failing = r#"{"actions":[{"fail":{"message":"expected failure"}}]}"#;
    let (status, _, body) = http(addr, "POST", "/tck/model/eventsourced/es4", Some(failing)).await;
    assert_eq!((status, body.as_str()), (500, "expected failure"));
    let emit_y = r#"{"actions":[{"emit":{"value":"y"}}]}"#;
    let (_, _, body) = http(addr, "POST", "/tck/model/eventsourced/es4", Some(emit_y)).await;
    assert_eq!(body, r#"{"message":"xy"}"#);
    let emit_fail = r#"{"actions":[{"emit":{"value":"z"}},{"fail":{"message":"emit then fail"}}]}"#;
    let (status, _, body) =
        http(addr, "POST", "/tck/model/eventsourced/es4", Some(emit_fail)).await;
    assert_eq!((status, body.as_str()), (500, "emit then fail"));
    let emit_z = r#"{"actions":[{"emit":{"value":"z"}}]}"#;
    let (_, _, body) = http(addr, "POST", "/tck/model/eventsourced/es4", Some(emit_z)).await;
    assert_eq!(body, r#"{"message":"xyz"}"#);
}

#[tokio::test]
async fn es5_passivation_closes_both_sides() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let call: Response = grpc(
        addr,
        "/cloudstate.tck.model.EventSourcedConfigured/Call",
        req("es5", vec![]),
    )
    .await
    .unwrap();
    assert_eq!(call, resp(""));
    let seen = until(&mut s.observed, |o| {
        matches!(o, Observed::OutputClosed { .. })
    })
    .await;
    let stream = seen
        .iter()
        .find_map(|o| match o {
            Observed::StreamOpened { stream, .. } => Some(*stream),
            _ => None,
        })
        .unwrap();
    assert!(seen.contains(&Observed::InputClosed(stream)));
    assert!(seen.contains(&Observed::OutputClosed { stream, ok: true }));
}

#[tokio::test]
async fn es6_rehydration_after_passivation_uses_the_snapshot() {
    // The model services passivate after the default timeout; shorten it.
    let uf = cloudstate_sdk::testkit::TestServer::start(tck_adapter::server()).await;
    let mut config = DevProxyConfig::new(uf.addr().to_string());
    config.default_passivation = Duration::from_millis(200);
    let mut observed = config.observer.subscribe();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = DevProxy::start(config, listener).await.unwrap();
    let addr = proxy.local_addr();
    let all = ["A", "B", "C", "D", "E", "F", "G"].map(emit).to_vec();
    assert_eq!(process(addr, "es6", all).await.unwrap(), resp("ABCDEFG"));
    until(&mut observed, |o| {
        matches!(o, Observed::OutputClosed { ok: true, .. })
    })
    .await;
    assert_eq!(process(addr, "es6", vec![]).await.unwrap(), resp("ABCDEFG"));
    let (_, init) = uf_in(&mut observed).await;
    assert_eq!(
        init,
        es::init_with_snapshot(SVC, "es6", 7, payload::encode(&p("ABCDEFG")))
    );
    let (_, command) = uf_in(&mut observed).await;
    assert_eq!(
        command,
        es::command(1, "es6", "Process", &req("es6", vec![]))
    );
}

#[tokio::test]
async fn sqlite_journal_survives_a_proxy_restart() {
    let path = std::env::temp_dir().join(format!("devproxy-es-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store = || Store::from_spec(&format!("sqlite:{}", path.display())).unwrap();
    let s = start_with(tck_adapter::server(), store()).await;
    assert_eq!(
        process(s.proxy.local_addr(), "db", vec![emit("A"), emit("B")])
            .await
            .unwrap(),
        resp("AB")
    );
    s.proxy.shutdown().await;
    s.user_function.shutdown().await.unwrap();

    let mut s = start_with(tck_adapter::server(), store()).await;
    assert_eq!(
        process(s.proxy.local_addr(), "db", vec![emit("C")])
            .await
            .unwrap(),
        resp("ABC")
    );
    let (_, init) = uf_in(&mut s.observed).await;
    assert_eq!(init, es::init(SVC, "db"));
    assert_eq!(
        uf_in(&mut s.observed).await.1,
        es::event(1, payload::encode(&p("A")))
    );
    assert_eq!(
        uf_in(&mut s.observed).await.1,
        es::event(2, payload::encode(&p("B")))
    );
}

#[tokio::test]
async fn discovery_reports_proxy_info_and_spec() {
    let uf = cloudstate_sdk::testkit::TestServer::start(tck_adapter::server()).await;
    let config = DevProxyConfig::new(uf.addr().to_string());
    let mut observed = config.observer.subscribe();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _proxy = DevProxy::start(config, listener).await.unwrap();
    let Observed::Discovery { proxy_info, spec } = next(&mut observed).await else {
        panic!("no discovery")
    };
    assert_eq!(
        (
            proxy_info.protocol_major_version,
            proxy_info.protocol_minor_version
        ),
        (0, 2)
    );
    let mut types = proxy_info.supported_entity_types.clone();
    types.sort();
    assert_eq!(
        types,
        [
            "cloudstate.action.ActionProtocol",
            "cloudstate.crdt.Crdt",
            "cloudstate.eventsourced.EventSourced",
            "cloudstate.valueentity.ValueEntity"
        ]
    );
    assert!(spec.entities.iter().any(|e| e.service_name == SVC));
}

#[tokio::test]
async fn unknown_grpc_method_is_unimplemented_and_unknown_path_is_404() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let status = grpc::<Request, Response>(
        addr,
        "/cloudstate.tck.model.EventSourcedTckModel/Nope",
        req("x", vec![]),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let (status, _, _) = http(addr, "GET", "/no/such/route", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_http_requests_get_400() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let (status, _, body) = http(
        addr,
        "POST",
        "/tck/model/eventsourced/x",
        Some(r#"{"nope":1}"#),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "Malformed JSON body: unrecognized field name 'nope' at line 1 column 7"
        )
    );
    let (status, _, body) =
        http(addr, "POST", "/tck/model/eventsourced/x", Some("{not json")).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Malformed JSON body: "), "{body}");
}

#[tokio::test]
async fn unreachable_user_function_is_a_clear_start_up_error() {
    let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = unused.local_addr().unwrap();
    drop(unused);
    let mut config = DevProxyConfig::new(addr.to_string());
    config.discovery_timeout = Duration::from_millis(300);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = DevProxy::start(config, listener)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!(
            "the user function at {addr} did not answer discovery"
        )),
        "{error}"
    );
}

/// An event-sourced service whose method input has no `entity_key` field.
struct Keyless;

impl cloudstate_sdk::EventSourcedEntity for Keyless {
    type State = ();
    type Event = cloudstate_sdk::Any;
    fn initial_state(&self, _: &str) {}
    fn apply_event(
        &self,
        _: &mut (),
        event: &cloudstate_sdk::Any,
    ) -> Result<(), cloudstate_sdk::PayloadError> {
        Err(cloudstate_sdk::PayloadError::unhandled(event))
    }
    fn handle_command(
        &self,
        _: &cloudstate_sdk::Command<'_>,
        _: &mut cloudstate_sdk::CommandContext<'_, Self>,
    ) -> cloudstate_sdk::CommandResult {
        Ok(cloudstate_sdk::Reply::empty())
    }
}

#[tokio::test]
async fn a_refused_spec_is_reported_to_the_user_function() {
    let user_function = cloudstate_sdk::CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .event_sourced(
            "cloudstate.tck.model.action.ActionTwo",
            Keyless,
            cloudstate_sdk::EventSourcedOptions::new("keyless"),
        );
    let uf = cloudstate_sdk::testkit::TestServer::start(user_function).await;
    let config = DevProxyConfig::new(uf.addr().to_string());
    let mut observed = config.observer.subscribe();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = DevProxy::start(config, listener)
        .await
        .unwrap_err()
        .to_string();
    let expected = "Event sourced entities do not support methods whose parameters do not have at least one field \
                    marked as entity_key, but cloudstate.tck.model.action.ActionTwo has the following methods \
                    without keys: Call";
    assert!(error.contains(expected), "{error}");
    let seen = until(&mut observed, |o| matches!(o, Observed::ReportError(_))).await;
    assert_eq!(
        seen.last(),
        Some(&Observed::ReportError(expected.to_owned()))
    );
}
