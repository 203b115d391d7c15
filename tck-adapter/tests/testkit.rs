//! The in-memory test kits behave as the protocol does: the TCK models run
//! through them give the same replies, snapshots, forwards, effects and
//! failure handling as over gRPC.

use cloudstate_sdk::testkit::{EventSourcedTestKit, SideEffect};
use cloudstate_sdk::{ServiceCall, TypedCall};
use tck_adapter::eventsourced::TckModel;
use tck_adapter::proto::cloudstate::tck::model::{
    Effect, Emit, Fail, Forward, Persisted, Request, RequestAction, Response,
    event_sourced_tck_model::{self as model, Entity, Event},
    event_sourced_two as two,
    request_action::Action,
};

fn req(actions: Vec<Action>) -> Request {
    Request {
        id: "e".into(),
        actions: actions
            .into_iter()
            .map(|a| RequestAction { action: Some(a) })
            .collect(),
    }
}
fn emit(v: &str) -> Action {
    Action::Emit(Emit { value: v.into() })
}

fn kit() -> EventSourcedTestKit<Entity<TckModel>> {
    EventSourcedTestKit::new(Entity(TckModel), "e").snapshot_every(5)
}

#[test]
fn emitted_events_are_applied_before_the_reply() {
    let mut kit = kit();
    let outcome = kit.call(model::process(&req(vec![emit("A"), emit("B"), emit("C")])));
    assert_eq!(outcome.reply().message, "ABC");
    assert_eq!(
        outcome.events(),
        ["A", "B", "C"].map(|v| Event::Persisted(Persisted { value: v.into() }))
    );
    assert_eq!(kit.state(), "ABC");
    assert_eq!(kit.journal(), outcome.events());
}

#[test]
fn snapshot_rule_and_forward_and_effects() {
    let mut kit = kit();
    let other = |id: &str| Request {
        id: id.into(),
        actions: Vec::new(),
    };
    let outcome = kit.call(model::process(&req(vec![
        emit("A"),
        emit("B"),
        emit("C"),
        emit("D"),
    ])));
    assert_eq!(outcome.snapshot::<Persisted>(), None);
    let outcome = kit.call(model::process(&req(vec![
        emit("E"),
        Action::Effect(Effect {
            id: "x".into(),
            synchronous: true,
        }),
        Action::Forward(Forward { id: "y".into() }),
    ])));
    assert_eq!(
        outcome.snapshot(),
        Some(Persisted {
            value: "ABCDE".into()
        })
    );
    assert_eq!(outcome.forward(), Some(&*two::call(&other("y"))));
    assert_eq!(
        outcome.side_effects(),
        [SideEffect::new(two::call(&other("x")), true)]
    );
}

#[test]
fn a_failure_after_events_restarts_from_the_journal() {
    let mut kit = kit();
    kit.call(model::process(&req(vec![emit("A")])));
    let outcome = kit.call(model::process(&req(vec![
        emit("B"),
        Action::Fail(Fail {
            message: "no".into(),
        }),
    ])));
    assert_eq!((outcome.failure(), outcome.restarts()), (Some("no"), true));
    assert!(outcome.events().is_empty() && outcome.side_effects().is_empty());
    // Rebuilt from the journal: B is gone, the sequence is back to 1.
    assert_eq!(kit.state(), "A");
    assert_eq!(kit.sequence_number(), 1);
    let outcome = kit.call(model::process(&req(vec![])));
    assert_eq!(outcome.reply().message, "A");
}

#[test]
fn a_failure_without_events_keeps_the_instance() {
    let mut kit = kit();
    kit.call(model::process(&req(vec![emit("A")])));
    let outcome = kit.call(model::process(&req(vec![Action::Fail(Fail {
        message: "expected failure".into(),
    })])));
    assert_eq!(outcome.failure(), Some("expected failure"));
    assert!(!outcome.restarts());
    assert_eq!(kit.state(), "A");
}

#[test]
fn starts_from_a_snapshot() {
    let snapshot = Persisted {
        value: "ABCDE".into(),
    };
    let mut kit = EventSourcedTestKit::from_snapshot(Entity(TckModel), "e", 5, snapshot).unwrap();
    kit.replay([Persisted { value: "F".into() }]).unwrap();
    assert_eq!(kit.sequence_number(), 6);
    assert_eq!(
        kit.call(model::process(&req(vec![]))).reply().message,
        "ABCDEF"
    );
    let unreadable = Response {
        message: "not a snapshot".into(),
    };
    let error = EventSourcedTestKit::from_snapshot(Entity(TckModel), "e", 5, unreadable)
        .err()
        .expect("a snapshot of the wrong type");
    assert!(error.contains("No snapshot handler found"), "{error}");
}

#[test]
fn unknown_commands_and_bad_payloads_fail_clearly() {
    let mut kit = kit();
    let nope = TypedCall::<Response>::new(ServiceCall::message(
        model::SERVICE_NAME,
        "Nope",
        &req(vec![]),
    ));
    let failure = kit.call(nope).failure().unwrap().to_owned();
    assert!(
        failure.starts_with(
            "No command handler found for command [Nope] on entity [e] \
             of service [cloudstate.tck.model.EventSourcedTckModel]"
        ),
        "{failure}"
    );
    let garbage = cloudstate_sdk::Any {
        type_url: "type.googleapis.com/x.Y".into(),
        value: vec![0xff],
    };
    let outcome = kit.call(TypedCall::<Response>::new(ServiceCall::new(
        model::SERVICE_NAME,
        "Process",
        garbage,
    )));
    assert!(
        outcome
            .failure()
            .unwrap()
            .contains("type.googleapis.com/x.Y")
    );
}

mod value_entity {
    use cloudstate_sdk::testkit::ValueEntityTestKit;
    use tck_adapter::proto::cloudstate::tck::model::valueentity::{
        Delete, Fail, Persisted, Request, RequestAction, Update,
        request_action::Action,
        value_entity_tck_model::{self as model, Entity},
    };
    use tck_adapter::valueentity::TckModel;

    fn req(actions: Vec<Action>) -> Request {
        Request {
            id: "v".into(),
            actions: actions
                .into_iter()
                .map(|a| RequestAction { action: Some(a) })
                .collect(),
        }
    }
    fn update(v: &str) -> Action {
        Action::Update(Update { value: v.into() })
    }

    #[test]
    fn last_state_change_wins_and_reads_see_it() {
        let mut kit = ValueEntityTestKit::new(Entity(TckModel), "v");
        let outcome = kit.call(model::process(&req(vec![
            update("A"),
            update("B"),
            Action::Delete(Delete {}),
            update("C"),
        ])));
        assert_eq!(outcome.reply().message, "C");
        assert_eq!(
            outcome.state_change(),
            Some(Some(&Persisted { value: "C".into() }))
        );
        assert_eq!(kit.state(), Some(&Persisted { value: "C".into() }));
        let read = kit.call(model::process(&req(vec![])));
        assert_eq!(read.state_change(), None, "a read sends no state action");
        let deleted = kit.call(model::process(&req(vec![Action::Delete(Delete {})])));
        assert_eq!(deleted.state_change(), Some(None));
        assert_eq!(kit.state(), None);
    }

    #[test]
    fn a_failure_leaves_the_state_as_it_was() {
        let mut kit = ValueEntityTestKit::with_state(
            Entity(TckModel),
            "v",
            &Persisted {
                value: "old".into(),
            },
        );
        let outcome = kit.call(model::process(&req(vec![
            update("new"),
            Action::Fail(Fail {
                message: "no".into(),
            }),
        ])));
        assert_eq!(outcome.failure(), Some("no"));
        assert_eq!(outcome.state_change(), None);
        assert_eq!(
            kit.state(),
            Some(&Persisted {
                value: "old".into()
            })
        );
        assert_eq!(
            kit.call(model::process(&req(vec![]))).reply().message,
            "old"
        );
    }
}

mod action {
    use cloudstate_sdk::testkit::{ActionTestKit, SideEffect, StreamedCall};
    use cloudstate_sdk::{ServiceCall, TypedCall};
    use tck_adapter::action::TckModel;
    use tck_adapter::proto::cloudstate::tck::model::action::{
        Fail, Forward, OtherRequest, ProcessGroup, ProcessStep, Reply, Request, Response,
        SideEffect as Effect, action_tck_model as model, action_two as two, process_step::Step,
    };

    fn kit() -> ActionTestKit {
        ActionTestKit::new(model::Action(TckModel))
    }

    fn request(groups: Vec<Vec<Step>>) -> Request {
        Request {
            groups: groups
                .into_iter()
                .map(|steps| ProcessGroup {
                    steps: steps
                        .into_iter()
                        .map(|s| ProcessStep { step: Some(s) })
                        .collect(),
                })
                .collect(),
        }
    }
    fn reply(message: &str) -> Step {
        Step::Reply(Reply {
            message: message.into(),
        })
    }
    fn effect(id: &str, synchronous: bool) -> Step {
        Step::Effect(Effect {
            id: id.into(),
            synchronous,
        })
    }
    fn other(id: &str) -> OtherRequest {
        OtherRequest { id: id.into() }
    }
    fn response(message: &str) -> Response {
        Response {
            message: message.into(),
        }
    }

    // Only the unary rpc has a generated call builder; the streaming ones
    // are named by hand.
    fn streamed_out(request: &Request) -> TypedCall<Response> {
        TypedCall::new(ServiceCall::message(
            model::SERVICE_NAME,
            "ProcessStreamedOut",
            request,
        ))
    }
    fn streamed_in() -> StreamedCall<Request, Response> {
        StreamedCall::new(model::SERVICE_NAME, "ProcessStreamedIn")
    }
    fn streamed() -> StreamedCall<Request, Response> {
        StreamedCall::new(model::SERVICE_NAME, "ProcessStreamed")
    }

    #[tokio::test]
    async fn unary_replies_forwards_fails_or_says_nothing_with_its_effects() {
        let kit = kit();
        let replied = kit
            .call(model::process_unary(&request(vec![vec![
                reply("hi"),
                effect("e", true),
            ]])))
            .await;
        assert_eq!(replied.reply(), response("hi"));
        assert_eq!(
            replied.side_effects(),
            [SideEffect::new(two::call(&other("e")), true)]
        );
        let forwarded = kit
            .call(model::process_unary(&request(vec![vec![Step::Forward(
                Forward { id: "f".into() },
            )]])))
            .await;
        assert_eq!(forwarded.forward(), Some(&*two::call(&other("f"))));
        assert_eq!(forwarded.try_reply(), None);
        let failed = kit
            .call(model::process_unary(&request(vec![vec![
                Step::Fail(Fail {
                    message: "no".into(),
                }),
                effect("kept", false),
            ]])))
            .await;
        assert_eq!(failed.failure(), Some("no"));
        assert_eq!(
            failed.side_effects(),
            [SideEffect::new(two::call(&other("kept")), false)],
            "an action failure keeps its side effects"
        );
        let silent = kit
            .call(model::process_unary(&request(vec![vec![effect(
                "s", false,
            )]])))
            .await;
        assert!(silent.is_no_reply());
        assert_eq!(silent.side_effects().len(), 1);
    }

    #[tokio::test]
    async fn streamed_in_folds_every_request_into_one_response() {
        let kit = kit();
        let outcome = kit
            .call_streamed_in(
                streamed_in(),
                [
                    request(vec![vec![reply("a"), effect("1", false)]]),
                    request(vec![vec![effect("2", true)]]),
                    request(vec![vec![reply("b")]]),
                ],
            )
            .await;
        assert_eq!(outcome.reply(), response("b"));
        assert_eq!(
            outcome.side_effects(),
            [
                SideEffect::new(two::call(&other("1")), false),
                SideEffect::new(two::call(&other("2")), true),
            ]
        );
        assert!(kit.call_streamed_in(streamed_in(), []).await.is_no_reply());
    }

    #[tokio::test]
    async fn streamed_outputs_come_in_order_one_per_group() {
        let kit = kit();
        let groups = request(vec![
            vec![reply("one")],
            vec![Step::Fail(Fail {
                message: "two".into(),
            })],
            vec![effect("three", false)],
            vec![reply("four")],
        ]);
        let out = kit.call_streamed_out(streamed_out(&groups)).await;
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].reply(), response("one"));
        assert_eq!(out[1].failure(), Some("two"));
        assert!(out[2].is_no_reply() && out[2].side_effects().len() == 1);
        assert_eq!(out[3].reply(), response("four"));

        let both = kit
            .call_streamed(
                streamed(),
                [
                    request(vec![vec![reply("a")], vec![reply("b")]]),
                    request(vec![vec![reply("c")]]),
                ],
            )
            .await;
        let messages: Vec<String> = both.iter().map(|o| o.reply().message).collect();
        assert_eq!(messages, ["a", "b", "c"]);
    }

    #[tokio::test]
    #[should_panic(
        expected = "[ProcessStreamedOut] is a server-streaming method; call it with `call_streamed_out`"
    )]
    async fn a_call_of_the_wrong_shape_is_refused() {
        let wrong: TypedCall<Response> = streamed_out(&request(vec![]));
        kit().call(wrong).await;
    }
}
