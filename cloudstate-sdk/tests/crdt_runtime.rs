//! The CRDT runtime through the test kit: subscriptions, cancellations,
//! failures undone, deletes and remote changes, with a hand-written entity.

use cloudstate_sdk::crdt::{CrdtContext, CrdtEntity, CrdtType, GCounter, WriteConsistency};
use cloudstate_sdk::payload::Payload;
use cloudstate_sdk::testkit::CrdtTestKit;
use cloudstate_sdk::{Command, Failure, Reply, ServiceCall, TypedCall};

const SERVICE: &str = "example.Counter";

/// `Add(n)`, `Get`, `Watch` (streamed: sends the value on every change,
/// ends at `stop`, adds `on_cancel` when cancelled), `FailAfterAdd(n)`,
/// `PanicAfterAdd(n)`, `Delete`.
struct Counter;

impl CrdtEntity for Counter {
    type State = GCounter;

    fn initial_state(&self, _: &str) -> GCounter {
        GCounter::new()
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CrdtContext<'_, GCounter>,
    ) -> Result<Option<Reply>, Failure> {
        let n = || i64::from_any(command.payload()).map_err(Failure::from);
        match command.name() {
            "Add" => {
                ctx.state_mut().increment(n()?.unsigned_abs());
                ctx.set_write_consistency(WriteConsistency::Majority);
            }
            "Get" => {}
            "Watch" => {
                let stop = n()?.unsigned_abs();
                ctx.on_change(move |change| {
                    let value = change.state().value();
                    if value >= stop {
                        change.end_stream();
                    }
                    Ok(Some(i64::try_from(value).unwrap_or(i64::MAX).to_any()))
                });
                ctx.on_cancel(|cancel| {
                    cancel.state_mut().increment(100);
                });
                return Ok(None);
            }
            "FailAfterAdd" => {
                ctx.state_mut().increment(n()?.unsigned_abs());
                return Err(Failure::new("no"));
            }
            "PanicAfterAdd" => {
                ctx.state_mut().increment(n()?.unsigned_abs());
                panic!("boom");
            }
            "Delete" => ctx.delete(),
            other => return Err(Failure::new(format!("unknown {other}"))),
        }
        let value = i64::try_from(ctx.state().value()).unwrap_or(i64::MAX);
        Ok(Some(Reply::message(value.to_any())))
    }
}

fn call(name: &str, n: i64) -> TypedCall<i64> {
    TypedCall::new(ServiceCall::new(SERVICE, name, n.to_any()))
}

fn kit() -> CrdtTestKit<Counter> {
    CrdtTestKit::without_descriptors(SERVICE, Counter, "c-1")
}

fn increment(outcome_delta: Option<&cloudstate_sdk::protocol::cloudstate::crdt::CrdtDelta>) -> u64 {
    use cloudstate_sdk::protocol::cloudstate::crdt::crdt_delta::Delta;
    match outcome_delta.and_then(|d| d.delta.as_ref()) {
        Some(Delta::Gcounter(g)) => g.increment,
        other => panic!("expected a GCounter delta, got {other:?}"),
    }
}

#[test]
fn a_change_is_sent_with_its_write_consistency_and_reads_send_none() {
    let mut kit = kit();
    let outcome = kit.call(call("Add", 3));
    assert_eq!(outcome.reply(), 3);
    let change = outcome.state_action().expect("a state action");
    assert_eq!(increment(change.delta()), 3);
    assert_eq!(change.write_consistency(), WriteConsistency::Majority);
    let read = kit.call(call("Get", 0));
    assert_eq!(read.reply(), 3);
    assert_eq!(read.state_action(), None);
    assert!(!read.streamed());
}

#[test]
fn subscribers_hear_of_later_changes_but_not_their_own_command() {
    let mut kit = kit();
    let watch = kit.call_streamed(call("Watch", 10));
    assert!(watch.streamed());
    assert_eq!(watch.try_reply(), None);
    assert!(watch.notifications().is_empty());
    let add = kit.call(call("Add", 2));
    assert_eq!(add.notifications().len(), 1);
    let note = &add.notifications()[0];
    assert_eq!(note.command_id(), 1);
    assert_eq!(note.message::<i64>(), Some(2));
    assert!(!note.end_stream());
    // A second subscriber that changes nothing is not told of itself.
    let second = kit.call_streamed(call("Watch", 3));
    assert!(second.notifications().is_empty());
    let add = kit.call(call("Add", 1));
    let ids: Vec<i64> = add.notifications().iter().map(|n| n.command_id()).collect();
    assert_eq!(ids, [1, 3]);
    assert!(add.notifications()[1].end_stream(), "3 reached its stop");
    // The ended subscriber hears nothing more.
    let add = kit.call(call("Add", 1));
    let ids: Vec<i64> = add.notifications().iter().map(|n| n.command_id()).collect();
    assert_eq!(ids, [1]);
    assert_eq!(kit.stream(3).len(), 1);
    assert_eq!(kit.stream(1).len(), 3);
}

#[test]
fn an_unstreamed_command_does_not_subscribe() {
    let mut kit = kit();
    let watch = kit.call(call("Watch", 10));
    assert!(!watch.streamed());
    let add = kit.call(call("Add", 1));
    assert!(add.notifications().is_empty());
}

#[test]
fn a_failure_or_a_panic_undoes_the_change() {
    let mut kit = kit();
    kit.call(call("Add", 1));
    let failed = kit.call(call("FailAfterAdd", 5));
    assert_eq!(failed.failure(), Some("no"));
    assert_eq!(failed.state_action(), None);
    assert_eq!(kit.state().unwrap().value(), 1);
    let panicked = kit.call(call("PanicAfterAdd", 5));
    let text = panicked.failure().expect("a failure");
    assert!(text.contains("panicked: boom"), "{text}");
    assert!(text.contains("[example.Counter]"), "{text}");
    assert_eq!(panicked.state_action(), None);
    // The next change carries only its own increment.
    let add = kit.call(call("Add", 2));
    assert_eq!(increment(add.state_action().unwrap().delta()), 2);
    assert_eq!(add.reply(), 3);
}

#[test]
fn a_cancellation_is_answered_and_its_change_notifies_the_others() {
    let mut kit = kit();
    kit.call_streamed(call("Watch", 1000)); // 1
    kit.call_streamed(call("Watch", 1000)); // 2
    let cancelled = kit.cancel(2).unwrap();
    assert_eq!(increment(cancelled.state_action().unwrap().delta()), 100);
    let ids: Vec<i64> = cancelled
        .notifications()
        .iter()
        .map(|n| n.command_id())
        .collect();
    assert_eq!(ids, [1], "the cancelled subscriber is removed first");
    assert_eq!(kit.state().unwrap().value(), 100);
    // Cancelling a command that never subscribed ends the stream.
    let error = kit.cancel(7).unwrap_err();
    assert!(error.contains("command id 7"), "{error}");
}

#[test]
fn remote_changes_notify_subscribers_and_send_nothing_back() {
    let mut kit = kit();
    kit.call_streamed(call("Watch", 5));
    let notes = kit.remote_change(|replica| {
        replica.increment(7);
    });
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].message::<i64>(), Some(7));
    assert!(notes[0].end_stream());
    // Nothing is pending locally after a remote change.
    assert_eq!(kit.call(call("Get", 0)).state_action(), None);
}

#[test]
fn a_delete_sends_only_the_delete_and_the_entity_is_gone() {
    let mut kit = kit();
    kit.call(call("Add", 1));
    let deleted = kit.call(call("Delete", 0));
    assert_eq!(deleted.reply(), 1, "the reply still shows the value");
    let change = deleted.state_action().unwrap();
    assert!(change.is_delete());
    assert_eq!(kit.state(), None);
    let error = kit.delta(GCounter::new().full_delta()).unwrap_err();
    assert!(error.contains("deleted"), "{error}");
}

#[test]
fn a_proxy_delete_gets_no_answer() {
    let mut kit = kit();
    kit.remote_delete();
    assert_eq!(kit.state(), None);
}
