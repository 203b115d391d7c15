//! The in-memory test kit behaves as the protocol does: the TCK model run
//! through it gives the same replies, snapshots, forwards, effects and
//! failure handling as over gRPC.

use cloudstate_sdk::payload;
use cloudstate_sdk::testkit::EventSourcedTestKit;
use tck_adapter::eventsourced::TckModel;
use tck_adapter::proto::cloudstate::tck::model::{
    Effect, Emit, Fail, Forward, Persisted, Request, RequestAction, Response,
    event_sourced_tck_model::{Entity, Event},
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
    let outcome = kit.command("Process", &req(vec![emit("A"), emit("B"), emit("C")]));
    assert_eq!(outcome.reply::<Response>().message, "ABC");
    assert_eq!(
        outcome.events(),
        ["A", "B", "C"].map(|v| Event::Persisted(Persisted { value: v.into() }))
    );
    assert_eq!(kit.state(), "ABC");
    assert_eq!(kit.journal().len(), 3);
}

#[test]
fn snapshot_rule_and_forward_and_effects() {
    let mut kit = kit();
    kit.command(
        "Process",
        &req(vec![emit("A"), emit("B"), emit("C"), emit("D")]),
    );
    let outcome = kit.command(
        "Process",
        &req(vec![
            emit("E"),
            Action::Effect(Effect {
                id: "x".into(),
                synchronous: true,
            }),
            Action::Forward(Forward { id: "y".into() }),
        ]),
    );
    assert_eq!(
        outcome.snapshot(),
        Some(&payload::encode(&Persisted {
            value: "ABCDE".into()
        }))
    );
    let forward = outcome.forward().expect("a forward");
    assert_eq!(forward.service_name, "cloudstate.tck.model.EventSourcedTwo");
    assert_eq!(forward.command_name, "Call");
    assert_eq!(outcome.side_effects().len(), 1);
    assert!(outcome.side_effects()[0].synchronous);
}

#[test]
fn a_failure_after_events_restarts_from_the_journal() {
    let mut kit = kit();
    kit.command("Process", &req(vec![emit("A")]));
    let outcome = kit.command(
        "Process",
        &req(vec![
            emit("B"),
            Action::Fail(Fail {
                message: "no".into(),
            }),
        ]),
    );
    let failure = outcome.failure().unwrap();
    assert_eq!(
        (failure.description.as_str(), failure.restart),
        ("no", true)
    );
    assert!(outcome.raw_events().is_empty() && outcome.side_effects().is_empty());
    // Rebuilt from the journal: B is gone, the sequence is back to 1.
    assert_eq!(kit.state(), "A");
    assert_eq!(kit.sequence_number(), 1);
    let outcome = kit.command("Process", &req(vec![]));
    assert_eq!(outcome.reply::<Response>().message, "A");
}

#[test]
fn a_failure_without_events_keeps_the_instance() {
    let mut kit = kit();
    kit.command("Process", &req(vec![emit("A")]));
    let outcome = kit.command(
        "Process",
        &req(vec![Action::Fail(Fail {
            message: "expected failure".into(),
        })]),
    );
    assert!(!outcome.failure().unwrap().restart);
    assert_eq!(kit.state(), "A");
}

#[test]
fn starts_from_a_snapshot() {
    let snapshot = payload::encode(&Persisted {
        value: "ABCDE".into(),
    });
    let mut kit = EventSourcedTestKit::from_snapshot(Entity(TckModel), "e", 5, snapshot).unwrap();
    kit.replay([Persisted { value: "F".into() }]).unwrap();
    assert_eq!(kit.sequence_number(), 6);
    assert_eq!(
        kit.command("Process", &req(vec![]))
            .reply::<Response>()
            .message,
        "ABCDEF"
    );
}

#[test]
fn unknown_commands_and_bad_payloads_fail_clearly() {
    let mut kit = kit();
    let outcome = kit.command("Nope", &req(vec![]));
    assert!(
        outcome
            .failure_description()
            .unwrap()
            .contains("No command handler found for command [Nope]")
    );
    let garbage = cloudstate_sdk::Any {
        type_url: "type.googleapis.com/x.Y".into(),
        value: vec![0xff],
    };
    let outcome = kit.command_any("Process", garbage);
    assert!(
        outcome
            .failure_description()
            .unwrap()
            .contains("type.googleapis.com/x.Y")
    );
}

mod value_entity {
    use cloudstate_sdk::testkit::ValueEntityTestKit;
    use tck_adapter::proto::cloudstate::tck::model::valueentity::{
        Delete, Fail, Persisted, Request, RequestAction, Response, Update, request_action::Action,
        value_entity_tck_model::Entity,
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
        let outcome = kit.command(
            "Process",
            &req(vec![
                update("A"),
                update("B"),
                Action::Delete(Delete {}),
                update("C"),
            ]),
        );
        assert_eq!(outcome.reply::<Response>().message, "C");
        assert_eq!(
            outcome.state_change::<Persisted>(),
            Some(Some(Persisted { value: "C".into() }))
        );
        assert_eq!(kit.state(), Some(&Persisted { value: "C".into() }));
        let read = kit.command("Process", &req(vec![]));
        assert_eq!(
            read.state_change::<Persisted>(),
            None,
            "a read sends no state action"
        );
        let deleted = kit.command("Process", &req(vec![Action::Delete(Delete {})]));
        assert_eq!(deleted.state_change::<Persisted>(), Some(None));
        assert_eq!(kit.state(), None);
    }

    #[test]
    fn a_failure_leaves_the_state_as_it_was() {
        let mut kit = ValueEntityTestKit::with_state(
            Entity(TckModel),
            "v",
            Persisted {
                value: "old".into(),
            },
        );
        let outcome = kit.command(
            "Process",
            &req(vec![
                update("new"),
                Action::Fail(Fail {
                    message: "no".into(),
                }),
            ]),
        );
        assert_eq!(outcome.failure_description(), Some("no"));
        assert_eq!(outcome.state_change::<Persisted>(), None);
        assert_eq!(
            kit.state(),
            Some(&Persisted {
                value: "old".into()
            })
        );
        assert_eq!(
            kit.command("Process", &req(vec![]))
                .reply::<Response>()
                .message,
            "old"
        );
    }
}
