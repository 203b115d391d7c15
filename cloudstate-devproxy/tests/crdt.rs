//! CRDT entities through the dev proxy, against the TCK adapter's models:
//! every CRDT type over gRPC and HTTP, the TCK's proxy scenarios (§3.5:
//! C1–C6, and C7 as this proxy does it: a fresh CRDT after a delete),
//! streamed subscriptions over gRPC, NDJSON and Server-Sent Events,
//! passivation and rehydration, and SQLite. The observer shows what the
//! user function saw.

mod support;

use std::time::Duration;

use cloudstate_devproxy::{Observed, Store};
use cloudstate_sdk::protocol::cloudstate::crdt::{
    CrdtDelta, CrdtInit, CrdtStreamIn, CrdtStreamOut, crdt_state_action::Action as StateAction,
    crdt_stream_in::Message as In, crdt_stream_out::Message as Out,
};
use cloudstate_sdk::testkit::{TestServer, crdt as tk};
use serde_json::{Value as Json, json};
use support::crdt::*;
use support::{HttpStream, grpc, http, proxy_with, start, start_with, until};
use tck_adapter::proto::cloudstate::tck::model::crdt::{
    RequestAction, Response, StreamedRequest, Update,
};
use tokio::sync::broadcast;

fn process_cmd(n: i64, id: &str, actions: Vec<RequestAction>) -> Msg {
    Msg::In(tk::command(n, id, "Process", &req(id, actions)))
}

fn updates(updates: Vec<Update>) -> Vec<RequestAction> {
    updates.into_iter().map(apply).collect()
}

fn sorted(delta: CrdtDelta) -> CrdtDelta {
    let mut delta = delta;
    tk::sort_delta(&mut delta);
    delta
}

/// The `init` of a stream: its delta, sorted.
fn init_delta(message: &Msg) -> Option<CrdtDelta> {
    match message {
        Msg::In(CrdtStreamIn {
            message: Some(In::Init(CrdtInit { delta, .. })),
        }) => delta.clone().map(sorted),
        other => panic!("not an init: {other:?}"),
    }
}

/// The update delta of the user function's reply to command `id`.
fn reply_update(messages: &[Msg], id: i64) -> Option<CrdtDelta> {
    messages.iter().find_map(|m| match m {
        Msg::Out(CrdtStreamOut {
            message: Some(Out::Reply(reply)),
        }) if reply.command_id == id => Some(
            reply
                .state_action
                .as_ref()
                .and_then(|a| match &a.action {
                    Some(StateAction::Update(delta)) => Some(sorted(delta.clone())),
                    _ => None,
                })
                .unwrap_or_default(),
        ),
        _ => None,
    })
}

async fn closed(observed: &mut broadcast::Receiver<Observed>, streams: usize) -> Vec<Traffic> {
    let mut left = streams;
    let seen = until(observed, |o| {
        if matches!(o, Observed::OutputClosed { .. }) {
            left -= 1;
        }
        left == 0
    })
    .await;
    support::crdt::streams(&seen)
}

/// Every StreamCancelled the proxy sent, by command id.
fn cancellations(traffic: &[Traffic]) -> Vec<i64> {
    traffic
        .iter()
        .flat_map(|t| &t.messages)
        .filter_map(|m| match m {
            Msg::In(CrdtStreamIn {
                message: Some(In::StreamCancelled(c)),
            }) => Some(c.id),
            _ => None,
        })
        .collect()
}

// 1. Every CRDT type

/// Each step: the updates of one `Process`, and the state it answers.
type Steps = Vec<(Vec<Update>, Response)>;

fn every_type() -> Vec<(&'static str, Steps, CrdtDelta)> {
    vec![
        (
            "GCounter-all",
            vec![
                (vec![gcounter_inc(1), gcounter_inc(2)], gcounter(3)),
                (vec![gcounter_inc(4)], gcounter(7)),
                (vec![], gcounter(7)),
            ],
            tk::gcounter(3),
        ),
        (
            "PNCounter-all",
            vec![
                (
                    vec![pncounter_change(5), pncounter_change(-8)],
                    pncounter(-3),
                ),
                (vec![pncounter_change(1)], pncounter(-2)),
            ],
            tk::pncounter(-3),
        ),
        (
            "GSet-all",
            vec![
                (vec![gset_add("b"), gset_add("a")], gset(&["a", "b"])),
                (vec![gset_add("a")], gset(&["a", "b"])),
                (vec![gset_add("c")], gset(&["a", "b", "c"])),
            ],
            tk::gset(&["a", "b"]),
        ),
        (
            "ORSet-all",
            vec![
                (
                    vec![orset_add("a"), orset_add("b"), orset_add("c")],
                    orset_state(&["a", "b", "c"]),
                ),
                (vec![orset_remove("b")], orset_state(&["a", "c"])),
                (vec![orset_clear()], orset_state(&[])),
                (vec![orset_add("d")], orset_state(&["d"])),
            ],
            tk::orset(false, &[], &["a", "b", "c"]),
        ),
        (
            "LWWRegister-all",
            vec![
                (vec![lww_set("x")], lwwregister("x")),
                (vec![lww_set("y")], lwwregister("y")),
                (vec![], lwwregister("y")),
            ],
            tk::lwwregister("x"),
        ),
        (
            "Flag-all",
            vec![(vec![flag_enable()], flag(true)), (vec![], flag(true))],
            tk::flag(true),
        ),
        (
            "ORMap-all",
            vec![
                (
                    vec![
                        ormap_add("GCounter-1"),
                        ormap_update("ORSet-1", orset_add("x")),
                    ],
                    ormap_state(vec![
                        ("GCounter-1", gcounter(0)),
                        ("ORSet-1", orset_state(&["x"])),
                    ]),
                ),
                (
                    vec![ormap_update("GCounter-1", gcounter_inc(2))],
                    ormap_state(vec![
                        ("GCounter-1", gcounter(2)),
                        ("ORSet-1", orset_state(&["x"])),
                    ]),
                ),
                (
                    vec![ormap_remove("ORSet-1")],
                    ormap_state(vec![("GCounter-1", gcounter(2))]),
                ),
            ],
            tk::ormap(
                false,
                &[],
                vec![],
                vec![
                    ("GCounter-1", tk::gcounter(0)),
                    ("ORSet-1", tk::orset(false, &[], &["x"])),
                ],
            ),
        ),
        (
            "Vote-all",
            vec![
                (vec![vote_update(true)], vote(true, 1, 1)),
                (vec![vote_update(false)], vote(false, 0, 1)),
            ],
            tk::vote(true, 0, 0),
        ),
    ]
}

#[tokio::test]
async fn every_crdt_type_over_grpc() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let cases = every_type();
    let mut commands = 0;
    for (id, steps, _) in &cases {
        for (ups, expected) in steps {
            let got = process(addr, id, updates(ups.clone())).await;
            assert_eq!(got.as_ref().ok(), Some(expected), "{id} after {ups:?}");
            commands += 1;
        }
    }
    let traffic = traffic(&mut s.observed, commands).await;
    assert_eq!(traffic.len(), cases.len());
    for ((id, steps, first_delta), t) in cases.iter().zip(&traffic) {
        assert_eq!((t.service.as_str(), t.entity_id.as_str()), (SVC, *id));
        assert_eq!(init_delta(&t.messages[0]), None, "{id}");
        assert_eq!(
            t.messages[1],
            process_cmd(1, id, updates(steps[0].0.clone()))
        );
        assert_eq!(
            reply_update(&t.messages, 1),
            Some(sorted(first_delta.clone())),
            "{id}"
        );
        // One command and one reply per step, in order, ids from 1.
        assert_eq!(t.messages.len(), 1 + 2 * steps.len(), "{id}: {t:?}");
    }
}

#[tokio::test]
async fn every_crdt_type_over_http() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let post = |id: &'static str, body: Json| async move {
        let (status, content_type, text) = http(
            addr,
            "POST",
            &format!("/tck/model/crdt/{id}"),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(status, 200, "{id} {body}: {text}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        serde_json::from_str::<Json>(&text).unwrap()
    };
    let u = |update: Json| json!({ "update": update });
    let cases: Vec<(&str, Vec<Json>, Json)> = vec![
        (
            "GCounter-http",
            vec![
                u(json!({"gcounter": {"increment": 1}})),
                u(json!({"gcounter": {"increment": "2"}})),
            ],
            json!({"gcounter": {"value": "3"}}),
        ),
        (
            "PNCounter-http",
            vec![u(json!({"pncounter": {"change": -7}}))],
            json!({"pncounter": {"value": "-7"}}),
        ),
        (
            "GSet-http",
            vec![
                u(json!({"gset": {"add": "b"}})),
                u(json!({"gset": {"add": "a"}})),
            ],
            json!({"gset": {"elements": ["a", "b"]}}),
        ),
        (
            "ORSet-http",
            vec![
                u(json!({"orset": {"add": "a"}})),
                u(json!({"orset": {"add": "b"}})),
                u(json!({"orset": {"remove": "a"}})),
            ],
            json!({"orset": {"elements": ["b"]}}),
        ),
        (
            "LWWRegister-http",
            vec![u(
                json!({"lwwregister": {"value": "x", "clock": {"clockType": "CUSTOM", "customClockValue": "7"}}}),
            )],
            json!({"lwwregister": {"value": "x"}}),
        ),
        (
            "Flag-http",
            vec![u(json!({"flag": {}}))],
            json!({"flag": {"value": true}}),
        ),
        (
            "ORMap-http",
            vec![u(
                json!({"ormap": {"update": {"key": "PNCounter-1", "update": {"pncounter": {"change": 2}}}}}),
            )],
            json!({"ormap": {"entries": [{"key": "PNCounter-1", "value": {"pncounter": {"value": "2"}}}]}}),
        ),
        (
            "Vote-http",
            vec![u(json!({"vote": {"selfVote": true}}))],
            json!({"vote": {"selfVote": true, "votesFor": 1, "totalVoters": 1}}),
        ),
    ];
    for (id, actions, expected) in cases {
        let got = post(id, json!({ "actions": actions })).await;
        assert_eq!(got, json!({ "state": expected }), "{id}");
        // The state stays: an empty request reads it.
        assert_eq!(
            post(id, json!({})).await,
            json!({ "state": expected }),
            "{id}"
        );
    }
    // An update for another CRDT type fails the command, nothing else.
    let (status, _, text) = http(
        addr,
        "POST",
        "/tck/model/crdt/Flag-http",
        Some(r#"{"actions":[{"update":{"gcounter":{"increment":1}}}]}"#),
    )
    .await;
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("GCounter") && text.contains("Flag"), "{text}");
    assert_eq!(
        post("Flag-http", json!({})).await,
        json!({"state": {"flag": {"value": true}}})
    );
}

// 2. The TCK's proxy scenarios

#[tokio::test]
async fn c1_state_changes_then_delete_closes_the_stream() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "PNCounter-c1";
    let steps: Vec<(Vec<RequestAction>, Response)> = vec![
        (vec![], pncounter(0)),
        (
            updates(vec![
                pncounter_change(1),
                pncounter_change(-2),
                pncounter_change(3),
            ]),
            pncounter(2),
        ),
        (
            updates(vec![
                pncounter_change(4),
                pncounter_change(-5),
                pncounter_change(6),
            ]),
            pncounter(7),
        ),
        (vec![delete()], pncounter(7)),
    ];
    for (actions, expected) in steps.iter().cloned() {
        assert_eq!(process(addr, id, actions).await.unwrap(), expected);
    }
    let traffic = closed(&mut s.observed, 1).await;
    let expected: Vec<Msg> = vec![
        tk::init(SVC, id).into(),
        process_cmd(1, id, steps[0].0.clone()),
        tk::reply(1, &pncounter(0)).into(),
        process_cmd(2, id, steps[1].0.clone()),
        tk::reply(2, &pncounter(2)).update(tk::pncounter(2)).into(),
        process_cmd(3, id, steps[2].0.clone()),
        tk::reply(3, &pncounter(7)).update(tk::pncounter(5)).into(),
        process_cmd(4, id, vec![delete()]),
        tk::reply(4, &pncounter(7)).delete().into(),
    ];
    assert_eq!(traffic.len(), 1, "{traffic:?}");
    assert_eq!(traffic[0].messages, expected);
    assert!(traffic[0].input_closed, "the proxy closes its side");
    assert_eq!(traffic[0].output_closed, Some(true));
}

#[tokio::test]
async fn c2_forwards_and_side_effects_reach_crdt_two() {
    let mut s = start(tck_adapter::server()).await;
    let mut watch = s.observer.subscribe();
    let addr = s.proxy.local_addr();
    let id = "GSet-c2";
    let add_one = updates(vec![gset_add("one")]);
    assert_eq!(
        process(addr, id, add_one.clone()).await.unwrap(),
        (gset(&["one"]))
    );
    // The client gets CrdtTwo's reply.
    assert_eq!(
        process(addr, id, vec![forward(id)]).await.unwrap(),
        (Response::default())
    );
    assert_eq!(
        process(addr, id, vec![effect(id, false)]).await.unwrap(),
        (gset(&["one"]))
    );
    assert_eq!(
        process(addr, id, vec![delete()]).await.unwrap(),
        (gset(&["one"]))
    );
    // The asynchronous side effect may still be on its way: CrdtTwo is
    // deleted after it arrived.
    until(&mut watch, |o| {
        matches!(o, Observed::CrdtIn(_, CrdtStreamIn { message: Some(In::Command(c)) }) if c.name == "Call" && c.id == 2)
    })
    .await;
    let got: Response = grpc(addr, TWO_CALL, req(id, vec![delete()])).await.unwrap();
    assert_eq!(got, Response::default());

    let traffic = closed(&mut s.observed, 2).await;
    let model: Vec<Msg> = vec![
        tk::init(SVC, id).into(),
        process_cmd(1, id, add_one),
        tk::reply(1, &gset(&["one"]))
            .update(tk::gset(&["one"]))
            .into(),
        process_cmd(2, id, vec![forward(id)]),
        tk::forward(2, TWO, "Call", &req(id, vec![])).into(),
        process_cmd(3, id, vec![effect(id, false)]),
        tk::reply(3, &gset(&["one"]))
            .side_effect(tk::side_effect(TWO, "Call", &req(id, vec![]), false))
            .into(),
        process_cmd(4, id, vec![delete()]),
        tk::reply(4, &gset(&["one"])).delete().into(),
    ];
    let two: Vec<Msg> = vec![
        tk::init(TWO, id).into(),
        tk::command(1, id, "Call", &req(id, vec![])).into(),
        tk::reply(1, &Response::default()).into(),
        tk::command(2, id, "Call", &req(id, vec![])).into(),
        tk::reply(2, &Response::default()).into(),
        tk::command(3, id, "Call", &req(id, vec![delete()])).into(),
        tk::reply(3, &Response::default()).delete().into(),
    ];
    assert_eq!(traffic.len(), 2, "{traffic:?}");
    assert_eq!(
        (traffic[0].service.as_str(), &traffic[0].messages),
        (SVC, &model)
    );
    assert_eq!(
        (traffic[1].service.as_str(), &traffic[1].messages),
        (TWO, &two)
    );
    for t in &traffic {
        assert!(t.input_closed, "{} closed by the proxy", t.service);
        assert_eq!(t.output_closed, Some(true));
    }
}

#[tokio::test]
async fn c3_a_failure_reaches_the_client_and_the_stream_goes_on() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "GCounter-c3";
    let inc = updates(vec![gcounter_inc(42)]);
    assert_eq!(
        process(addr, id, inc.clone()).await.unwrap(),
        (gcounter(42))
    );
    let status = process(addr, id, vec![fail("expected failure")])
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::Unknown, "expected failure")
    );
    assert_eq!(
        process(addr, id, vec![delete()]).await.unwrap(),
        (gcounter(42))
    );
    let traffic = closed(&mut s.observed, 1).await;
    assert_eq!(
        traffic[0].messages,
        vec![
            tk::init(SVC, id).into(),
            process_cmd(1, id, inc),
            tk::reply(1, &gcounter(42)).update(tk::gcounter(42)).into(),
            process_cmd(2, id, vec![fail("expected failure")]),
            tk::failure(2, "expected failure").into(),
            process_cmd(3, id, vec![delete()]),
            tk::reply(3, &gcounter(42)).delete().into(),
        ]
    );
    assert!(traffic[0].input_closed);
}

#[tokio::test]
async fn c4_connection_tracking_with_a_vote() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let mut watch = s.observer.subscribe();
    let id = "Vote-c4";
    let (state0, state1) = (vote(false, 0, 1), vote(true, 1, 1));
    let mut monitor = subscribe(addr, None, streamed_req(id)).await.unwrap();
    assert_eq!(monitor.message().await, state0);

    let connect = StreamedRequest {
        initial_update: Some(vote_update(true)),
        cancel_update: Some(vote_update(false)),
        empty: true,
        ..streamed_req(id)
    };
    let connection = subscribe(addr, None, connect.clone()).await.unwrap();
    assert_eq!(monitor.message().await, state1);
    // The connection goes away: its cancel update votes false again.
    drop(connection);
    assert_eq!(monitor.message().await, state0);
    drop(monitor);
    // The monitor's cancellation is answered before the delete goes out.
    until(&mut watch, |o| {
        matches!(o, Observed::CrdtOut(_, CrdtStreamOut { message: Some(Out::StreamCancelledResponse(r)) }) if r.command_id == 1)
    })
    .await;
    assert_eq!(
        process(addr, id, vec![delete()]).await.unwrap(),
        (state0.clone())
    );

    let traffic = closed(&mut s.observed, 1).await;
    let expected: Vec<Msg> = vec![
        tk::init(SVC, id).into(),
        tk::streamed_command(1, id, "ProcessStreamed", &streamed_req(id)).into(),
        tk::reply(1, &state0).streamed().into(),
        tk::streamed_command(2, id, "ProcessStreamed", &connect).into(),
        tk::no_reply(2)
            .update(tk::vote(true, 0, 0))
            .streamed()
            .into(),
        tk::streamed(1, &state1).into(),
        tk::stream_cancelled(2, id).into(),
        tk::stream_cancelled_response(2)
            .update(tk::vote(false, 0, 0))
            .into(),
        tk::streamed(1, &state0).into(),
        tk::stream_cancelled(1, id).into(),
        tk::stream_cancelled_response(1).into(),
        process_cmd(3, id, vec![delete()]),
        tk::reply(3, &state0).delete().into(),
    ];
    assert_eq!(traffic[0].messages, expected);
    assert_eq!(cancellations(&traffic), vec![2, 1], "one each");
    assert!(traffic[0].input_closed);
}

#[tokio::test]
async fn c5_http_api() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "PNCounter-c5";
    let path = format!("/tck/model/crdt/{id}");
    let post = |body: &'static str| {
        let path = path.clone();
        async move { http(addr, "POST", &path, Some(body)).await }
    };
    let (status, content_type, body) = post("{}").await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"state":{"pncounter":{"value":"0"}}}"#)
    );
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let (status, _, body) = http(
        addr,
        "POST",
        TWO_CALL,
        Some(&format!(r#"{{"id": "{id}"}}"#)),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    let (status, _, body) = post(r#"{"actions":[{"update":{"pncounter":{"change":42}}}]}"#).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"state":{"pncounter":{"value":"42"}}}"#)
    );
    let (status, _, body) = post(r#"{"actions":[{"fail":{"message":"expected failure"}}]}"#).await;
    assert_eq!((status, body.as_str()), (500, "expected failure"));
    let (status, _, body) = post(r#"{"actions":[{"update":{"pncounter":{"change":-123}}}]}"#).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"state":{"pncounter":{"value":"-81"}}}"#)
    );
    let (status, _, body) = post(r#"{"actions":[{"delete":{}}]}"#).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"state":{"pncounter":{"value":"-81"}}}"#)
    );

    let traffic = closed(&mut s.observed, 1).await;
    let model = traffic.iter().find(|t| t.service == SVC).unwrap();
    assert_eq!(
        model.messages,
        vec![
            tk::init(SVC, id).into(),
            process_cmd(1, id, vec![]),
            tk::reply(1, &pncounter(0)).into(),
            process_cmd(2, id, updates(vec![pncounter_change(42)])),
            tk::reply(2, &pncounter(42))
                .update(tk::pncounter(42))
                .into(),
            process_cmd(3, id, vec![fail("expected failure")]),
            tk::failure(3, "expected failure").into(),
            process_cmd(4, id, updates(vec![pncounter_change(-123)])),
            tk::reply(4, &pncounter(-81))
                .update(tk::pncounter(-123))
                .into(),
            process_cmd(5, id, vec![delete()]),
            tk::reply(5, &pncounter(-81)).delete().into(),
        ]
    );
    assert!(model.input_closed);
    assert_eq!(model.output_closed, Some(true));
    let two = traffic.iter().find(|t| t.service == TWO).unwrap();
    assert_eq!(
        two.messages,
        vec![
            tk::init(TWO, id).into(),
            tk::command(1, id, "Call", &req(id, vec![])).into(),
            tk::reply(1, &Response::default()).into(),
        ]
    );
    // CrdtTwo's stream stays open (30 s default passivation).
    assert_eq!(two.output_closed, None);
}

#[tokio::test]
async fn c6_crdt_configured_passivates_closing_both_sides() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "Configured-c6";
    let got: Response = grpc(addr, CONFIGURED_CALL, req(id, vec![])).await.unwrap();
    assert_eq!(got, Response::default());
    // Its own 100 ms passivation, not the default 30 s, closes it within
    // the observer's 10 s.
    let seen = until(&mut s.observed, |o| {
        matches!(o, Observed::OutputClosed { .. })
    })
    .await;
    let traffic = support::crdt::streams(&seen);
    assert_eq!(traffic.len(), 1);
    assert_eq!(traffic[0].service, CONFIGURED);
    assert_eq!(
        traffic[0].messages,
        vec![
            tk::init(CONFIGURED, id).into(),
            tk::command(1, id, "Call", &req(id, vec![])).into(),
            tk::reply(1, &Response::default()).into(),
        ]
    );
    // The proxy half-closed first, then the user function completed.
    let stream = traffic[0].stream;
    let closing: Vec<&Observed> = seen
        .iter()
        .filter(|o| {
            matches!(o, Observed::InputClosed(n) if *n == stream)
                || matches!(o, Observed::OutputClosed { stream: n, .. } if *n == stream)
        })
        .collect();
    assert_eq!(
        closing,
        vec![
            &Observed::InputClosed(stream),
            &Observed::OutputClosed { stream, ok: true }
        ]
    );
}

/// C7 as this proxy does it: no "Entity deleted" tombstone; a later command
/// starts a fresh CRDT on a new stream, whose init has no delta.
#[tokio::test]
async fn c7_a_command_after_a_delete_starts_a_fresh_crdt() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "PNCounter-c7";
    assert_eq!(
        process(addr, id, updates(vec![pncounter_change(5)]))
            .await
            .unwrap(),
        (pncounter(5))
    );
    assert_eq!(
        process(addr, id, vec![delete()]).await.unwrap(),
        (pncounter(5))
    );
    let first = closed(&mut s.observed, 1).await;
    assert_eq!(first.len(), 1);
    assert_eq!(process(addr, id, vec![]).await.unwrap(), (pncounter(0)));
    assert_eq!(
        process(addr, id, updates(vec![pncounter_change(2)]))
            .await
            .unwrap(),
        (pncounter(2))
    );
    let again = traffic(&mut s.observed, 2).await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert_ne!(again[0].stream, first[0].stream);
    assert_eq!(
        again[0].messages,
        vec![
            tk::init(SVC, id).into(),
            process_cmd(1, id, vec![]),
            tk::reply(1, &pncounter(0)).into(),
            process_cmd(2, id, updates(vec![pncounter_change(2)])),
            tk::reply(2, &pncounter(2)).update(tk::pncounter(2)).into(),
        ]
    );
}

// 3. Streamed subscriptions

fn gcounter_of(response: &Response) -> u64 {
    match response.state.as_ref().and_then(|s| s.value.as_ref()) {
        Some(tck_adapter::proto::cloudstate::tck::model::crdt::state::Value::Gcounter(c)) => {
            c.value
        }
        other => panic!("not a GCounter: {other:?}"),
    }
}

#[tokio::test]
async fn a_grpc_subscription_ends_at_its_end_state() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "GCounter-end";
    let request = StreamedRequest {
        end_state: gcounter(3).state,
        ..streamed_req(id)
    };
    let mut stream = subscribe(addr, None, request.clone()).await.unwrap();
    assert_eq!(stream.message().await, gcounter(0));
    assert_eq!(update(addr, id, vec![gcounter_inc(1)]).await, gcounter(1));
    assert_eq!(stream.message().await, gcounter(1));
    assert_eq!(update(addr, id, vec![gcounter_inc(2)]).await, gcounter(3));
    assert_eq!(stream.message().await, gcounter(3));
    // end_stream: the call ends with OK.
    assert!(stream.next().await.is_none(), "the stream ended");
    drop(stream);
    assert_eq!(update(addr, id, vec![gcounter_inc(3)]).await, gcounter(6));
    let traffic = traffic(&mut s.observed, 6).await;
    assert_eq!(
        traffic[0].messages,
        vec![
            tk::init(SVC, id).into(),
            tk::streamed_command(1, id, "ProcessStreamed", &request).into(),
            tk::reply(1, &gcounter(0)).streamed().into(),
            process_cmd(2, id, updates(vec![gcounter_inc(1)])),
            tk::reply(2, &gcounter(1)).update(tk::gcounter(1)).into(),
            tk::streamed(1, &gcounter(1)).into(),
            process_cmd(3, id, updates(vec![gcounter_inc(2)])),
            tk::reply(3, &gcounter(3)).update(tk::gcounter(2)).into(),
            tk::streamed(1, &gcounter(3)).end_stream().into(),
            process_cmd(4, id, updates(vec![gcounter_inc(3)])),
            tk::reply(4, &gcounter(6)).update(tk::gcounter(3)).into(),
        ]
    );
    // An ended subscription is not cancelled.
    assert_eq!(cancellations(&traffic), Vec::<i64>::new());
}

#[tokio::test]
async fn an_http_subscription_is_newline_delimited_json() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "GSet-ndjson";
    let body = format!(r#"{{"id":"{id}","endState":{{"gset":{{"elements":["a","b"]}}}}}}"#);
    let mut stream = HttpStream::open(addr, PROCESS_STREAMED, &[], &body).await;
    assert_eq!(stream.status, 200);
    assert!(
        stream.content_type.starts_with("application/json"),
        "{}",
        stream.content_type
    );
    assert_eq!(
        stream.line().await.as_deref(),
        Some(r#"{"state":{"gset":{"elements":[]}}}"#)
    );
    update(addr, id, vec![gset_add("a")]).await;
    assert_eq!(
        stream.line().await.as_deref(),
        Some(r#"{"state":{"gset":{"elements":["a"]}}}"#)
    );
    update(addr, id, vec![gset_add("b")]).await;
    assert_eq!(
        stream.line().await.as_deref(),
        Some(r#"{"state":{"gset":{"elements":["a","b"]}}}"#)
    );
    // The end state ends the body.
    assert_eq!(stream.rest().await, "");
}

#[tokio::test]
async fn an_http_subscription_can_be_server_sent_events() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "Flag-sse";
    let body = format!(r#"{{"id":"{id}","endState":{{"flag":{{"value":true}}}}}}"#);
    let mut stream = HttpStream::open(
        addr,
        PROCESS_STREAMED,
        &[("Accept", "text/event-stream")],
        &body,
    )
    .await;
    assert_eq!(
        (stream.status, stream.content_type.as_str()),
        (200, "text/event-stream")
    );
    assert_eq!(
        stream.event().await.as_deref(),
        Some(r#"{"state":{"flag":{"value":false}}}"#)
    );
    update(addr, id, vec![flag_enable()]).await;
    assert_eq!(
        stream.event().await.as_deref(),
        Some(r#"{"state":{"flag":{"value":true}}}"#)
    );
    assert_eq!(stream.rest().await, "");
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_its_subscription_once() {
    let mut s = start(tck_adapter::server()).await;
    let mut watch = s.observer.subscribe();
    let addr = s.proxy.local_addr();
    let id = "PNCounter-gone";
    let body = format!(r#"{{"id":"{id}","cancelUpdate":{{"pncounter":{{"change":"-42"}}}}}}"#);
    let mut stream = HttpStream::open(addr, PROCESS_STREAMED, &[], &body).await;
    assert_eq!(
        stream.line().await.as_deref(),
        Some(r#"{"state":{"pncounter":{"value":"0"}}}"#)
    );
    update(addr, id, vec![pncounter_change(10)]).await;
    assert_eq!(
        stream.line().await.as_deref(),
        Some(r#"{"state":{"pncounter":{"value":"10"}}}"#)
    );
    drop(stream);
    until(&mut watch, |o| {
        matches!(o, Observed::CrdtOut(_, CrdtStreamOut { message: Some(Out::StreamCancelledResponse(r)) }) if r.command_id == 1)
    })
    .await;
    // The cancel update was applied.
    assert_eq!(process(addr, id, vec![]).await.unwrap(), pncounter(-32));
    let traffic = traffic(&mut s.observed, 5).await;
    assert_eq!(cancellations(&traffic), vec![1]);
    assert!(
        traffic[0].messages.contains(
            &tk::stream_cancelled_response(1)
                .update(tk::pncounter(-42))
                .into()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_and_unary_commands_run_concurrently_on_one_entity() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "GCounter-concurrent";
    const SUBSCRIBERS: usize = 3;
    const UNARY: u64 = 20;
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut stream = subscribe(addr, None, streamed_req(id)).await.unwrap();
        assert_eq!(gcounter_of(&stream.message().await), 0);
        subscribers.push(stream);
    }
    let calls: Vec<_> = (0..UNARY)
        .map(|_| tokio::spawn(process(addr, id, updates(vec![gcounter_inc(1)]))))
        .collect();
    let mut values = Vec::new();
    for call in calls {
        values.push(gcounter_of(&call.await.unwrap().unwrap()));
    }
    values.sort_unstable();
    // No update lost: each reply saw its own increment.
    assert_eq!(values, (1..=UNARY).collect::<Vec<_>>());
    for stream in &mut subscribers {
        let mut last = 0;
        while last < UNARY {
            let value = gcounter_of(&stream.message().await);
            assert!(value > last, "{value} after {last}");
            last = value;
        }
    }
    assert_eq!(process(addr, id, vec![]).await.unwrap(), gcounter(UNARY));
    // Every command got its own id and exactly one reply.
    let subscribed = SUBSCRIBERS as u64;
    let replies = subscribed + UNARY + 1;
    let seen = until(&mut s.observed, {
        let mut left = replies;
        move |o| {
            if matches!(
                o,
                Observed::CrdtOut(
                    _,
                    CrdtStreamOut {
                        message: Some(Out::Reply(_))
                    }
                )
            ) {
                left -= 1;
            }
            left == 0
        }
    })
    .await;
    let traffic = support::crdt::streams(&seen);
    assert_eq!(traffic.len(), 1, "one stream");
    let mut sent: Vec<i64> = Vec::new();
    let mut replied: Vec<i64> = Vec::new();
    for m in &traffic[0].messages {
        match m {
            Msg::In(CrdtStreamIn {
                message: Some(In::Command(c)),
            }) => sent.push(c.id),
            Msg::Out(CrdtStreamOut {
                message: Some(Out::Reply(r)),
            }) => replied.push(r.command_id),
            _ => {}
        }
    }
    let all: Vec<i64> = (1..=i64::try_from(replies).unwrap()).collect();
    assert_eq!(sent, all, "ids in the order sent");
    replied.sort_unstable();
    assert_eq!(replied, all);
}

#[tokio::test]
async fn a_delete_ends_the_open_subscriptions() {
    let mut s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let id = "ORSet-deleted";
    let mut stream = subscribe(addr, None, streamed_req(id)).await.unwrap();
    assert_eq!(stream.message().await, orset_state(&[]));
    assert_eq!(
        update(addr, id, vec![orset_add("a")]).await,
        orset_state(&["a"])
    );
    assert_eq!(stream.message().await, orset_state(&["a"]));
    assert_eq!(
        process(addr, id, vec![delete()]).await.unwrap(),
        orset_state(&["a"])
    );
    let status = stream
        .next()
        .await
        .expect("the subscription ends with an error")
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::Unknown, "Entity deleted")
    );
    let traffic = closed(&mut s.observed, 1).await;
    assert!(traffic[0].input_closed);
    // Nobody is left to cancel.
    assert_eq!(cancellations(&traffic), Vec::<i64>::new());
}

// 4. Passivation, rehydration, SQLite

async fn passivating_proxy(
    passivation: Duration,
) -> (
    TestServer,
    cloudstate_devproxy::DevProxyHandle,
    broadcast::Receiver<Observed>,
) {
    let uf = TestServer::start(tck_adapter::server()).await;
    let (proxy, observed, _) = proxy_with(uf.addr(), |config| {
        config.default_passivation = passivation;
    })
    .await;
    (uf, proxy, observed)
}

/// Each case: an entity, the updates it gets, its state, and the init delta
/// that carries that whole state.
fn whole_states() -> Vec<(&'static str, Vec<Update>, Response, CrdtDelta)> {
    vec![
        (
            "GCounter-r",
            vec![gcounter_inc(3), gcounter_inc(4)],
            gcounter(7),
            tk::gcounter(7),
        ),
        (
            "PNCounter-r",
            vec![pncounter_change(5), pncounter_change(-8)],
            pncounter(-3),
            tk::pncounter(-3),
        ),
        (
            "GSet-r",
            vec![gset_add("b"), gset_add("a")],
            gset(&["a", "b"]),
            tk::gset(&["a", "b"]),
        ),
        (
            "ORSet-r",
            vec![
                orset_add("a"),
                orset_add("b"),
                orset_add("c"),
                orset_remove("b"),
            ],
            orset_state(&["a", "c"]),
            tk::orset(false, &[], &["a", "c"]),
        ),
        (
            "LWWRegister-r",
            vec![lww_set("x")],
            lwwregister("x"),
            tk::lwwregister("x"),
        ),
        ("Flag-r", vec![flag_enable()], flag(true), tk::flag(true)),
        (
            "ORMap-r",
            vec![
                ormap_update("GCounter-1", gcounter_inc(2)),
                ormap_update("ORSet-1", orset_add("x")),
            ],
            ormap_state(vec![
                ("GCounter-1", gcounter(2)),
                ("ORSet-1", orset_state(&["x"])),
            ]),
            tk::ormap(
                false,
                &[],
                vec![],
                vec![
                    ("GCounter-1", tk::gcounter(2)),
                    ("ORSet-1", tk::orset(false, &[], &["x"])),
                ],
            ),
        ),
        (
            "Vote-r",
            vec![vote_update(true)],
            vote(true, 1, 1),
            tk::vote(true, 1, 1),
        ),
    ]
}

#[tokio::test]
async fn rehydration_after_passivation_carries_the_whole_state() {
    let (_uf, proxy, mut observed) = passivating_proxy(Duration::from_millis(200)).await;
    let addr = proxy.local_addr();
    let cases = whole_states();
    for (id, ups, expected, _) in &cases {
        assert_eq!(&update(addr, id, ups.clone()).await, expected, "{id}");
    }
    let first = closed(&mut observed, cases.len()).await;
    assert_eq!(first.len(), cases.len());
    assert!(
        first
            .iter()
            .all(|t| t.input_closed && t.output_closed == Some(true))
    );

    for (id, _, expected, _) in &cases {
        assert_eq!(&process(addr, id, vec![]).await.unwrap(), expected, "{id}");
    }
    let again = traffic(&mut observed, cases.len()).await;
    for ((id, _, _, delta), t) in cases.iter().zip(&again) {
        assert_eq!(t.entity_id, *id);
        assert_eq!(
            init_delta(&t.messages[0]),
            Some(sorted(delta.clone())),
            "{id}"
        );
    }
    // The rehydrated entity goes on from there.
    assert_eq!(
        update(addr, "GCounter-r", vec![gcounter_inc(1)]).await,
        gcounter(8)
    );
}

#[tokio::test]
async fn an_open_subscription_keeps_the_entity_active() {
    let (_uf, proxy, mut observed) = passivating_proxy(Duration::from_millis(100)).await;
    let addr = proxy.local_addr();
    let id = "GCounter-subscribed";
    let mut stream = subscribe(addr, None, streamed_req(id)).await.unwrap();
    assert_eq!(stream.message().await, gcounter(0));
    // Many passivation timeouts long.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(update(addr, id, vec![gcounter_inc(1)]).await, gcounter(1));
    assert_eq!(stream.message().await, gcounter(1));
    let traffic = traffic(&mut observed, 3).await;
    assert_eq!(traffic.len(), 1, "still the first stream: {traffic:?}");
    assert_eq!(traffic[0].output_closed, None);
    // Once the subscriber leaves, the entity passivates.
    drop(stream);
    let seen = until(&mut observed, |o| {
        matches!(o, Observed::OutputClosed { .. })
    })
    .await;
    assert!(seen.contains(&Observed::InputClosed(traffic[0].stream)));
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "devproxy-crdt-{name}-{}-{nanos}.db",
        std::process::id()
    ))
}

#[tokio::test]
async fn sqlite_keeps_crdt_state_across_a_restart() {
    let path = temp_db("restart");
    let cases = whole_states();
    let s = start_with(tck_adapter::server(), Store::sqlite(&path).unwrap()).await;
    let addr = s.proxy.local_addr();
    for (id, ups, expected, _) in &cases {
        assert_eq!(&update(addr, id, ups.clone()).await, expected, "{id}");
    }
    let gone = "PNCounter-deleted";
    update(addr, gone, vec![pncounter_change(3)]).await;
    process(addr, gone, vec![delete()]).await.unwrap();
    s.proxy.shutdown().await;
    s.user_function.shutdown().await.unwrap();

    let mut s = start_with(tck_adapter::server(), Store::sqlite(&path).unwrap()).await;
    let addr = s.proxy.local_addr();
    for (id, _, expected, _) in &cases {
        assert_eq!(&process(addr, id, vec![]).await.unwrap(), expected, "{id}");
    }
    assert_eq!(process(addr, gone, vec![]).await.unwrap(), pncounter(0));
    let traffic = traffic(&mut s.observed, cases.len() + 1).await;
    for ((id, _, _, delta), t) in cases.iter().zip(&traffic) {
        assert_eq!(t.entity_id, *id);
        assert_eq!(
            init_delta(&t.messages[0]),
            Some(sorted(delta.clone())),
            "{id}"
        );
    }
    assert_eq!(traffic[cases.len()].entity_id, gone);
    assert_eq!(init_delta(&traffic[cases.len()].messages[0]), None);
    s.proxy.shutdown().await;
    s.user_function.shutdown().await.unwrap();
    let _ = std::fs::remove_file(&path);
}
