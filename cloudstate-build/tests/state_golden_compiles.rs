//! An event-sourced entity whose state is its snapshot message: the user
//! implementation leaves out `initial_state`, `snapshot` and `restore`, and
//! the generated defaults start from the default message, snapshot the
//! state as it is and restore it as it was.

#[allow(dead_code, unreachable_pub, clippy::all, clippy::pedantic)]
mod example {
    pub mod counter {
        include!("golden/state/example.counter.rs");
        pub mod domain {
            include!("golden/example.counter.domain.rs");
        }
    }
}

include!("golden/cloudstate_payloads.rs");

/// Stands in for the embedded set; this test never serves.
const FILE_DESCRIPTOR_SET: &[u8] = &[];

use cloudstate_sdk::payload::encode;
use cloudstate_sdk::testkit::EventSourcedTestKit;
use cloudstate_sdk::{CommandResult, done};
use example::counter::{GetRequest, IncreaseRequest, Value, counter, domain};

/// Only the rpcs and the events: the state is `domain::Snapshot`.
struct Counter;

impl counter::Counter for Counter {
    fn on_increased(&self, state: &mut domain::Snapshot, event: &domain::Increased) {
        state.value += event.by;
    }

    fn on_reset(&self, state: &mut domain::Snapshot, _event: &domain::Reset) {
        state.value = 0;
    }

    fn increase(
        &self,
        request: IncreaseRequest,
        ctx: &mut counter::Context<'_, Self>,
    ) -> CommandResult<()> {
        ctx.emit(domain::Increased { by: request.by });
        done()
    }

    fn get(&self, _: GetRequest, ctx: &mut counter::Context<'_, Self>) -> CommandResult<Value> {
        Ok(Value {
            value: ctx.state().value,
        }
        .into())
    }
}

/// The same with the defaults overridden: the entity starts at 100 and
/// restores snapshots doubled.
struct Odd;

impl counter::Counter for Odd {
    fn initial_state(&self, _entity_id: &str) -> domain::Snapshot {
        domain::Snapshot { value: 100 }
    }

    fn on_increased(&self, state: &mut domain::Snapshot, event: &domain::Increased) {
        state.value += event.by;
    }

    fn on_reset(&self, state: &mut domain::Snapshot, _event: &domain::Reset) {
        state.value = 0;
    }

    fn restore(&self, _entity_id: &str, snapshot: domain::Snapshot) -> domain::Snapshot {
        domain::Snapshot {
            value: snapshot.value * 2,
        }
    }

    fn increase(
        &self,
        request: IncreaseRequest,
        ctx: &mut counter::Context<'_, Self>,
    ) -> CommandResult<()> {
        ctx.emit(domain::Increased { by: request.by });
        // The longer spelling keeps working.
        Ok(().into())
    }

    fn get(&self, _: GetRequest, ctx: &mut counter::Context<'_, Self>) -> CommandResult<Value> {
        Ok(Value {
            value: ctx.state().value,
        }
        .into())
    }
}

fn increase(by: i64) -> IncreaseRequest {
    IncreaseRequest {
        counter_id: "c".to_owned(),
        by,
    }
}

#[test]
fn defaults_start_empty_snapshot_the_state_and_restore_it() {
    let mut kit = EventSourcedTestKit::new(counter::Entity(Counter), "c").snapshot_every(2);
    assert_eq!(*kit.state(), domain::Snapshot::default());
    kit.command("Increase", &increase(3));
    let outcome = kit.command("Increase", &increase(4));
    let snapshot = outcome.snapshot().expect("a snapshot at the second event");
    assert_eq!(snapshot, &encode(&domain::Snapshot { value: 7 }));
    let restored =
        EventSourcedTestKit::from_snapshot(counter::Entity(Counter), "c", 2, snapshot.clone())
            .unwrap();
    assert_eq!(restored.state().value, 7);
}

#[test]
fn defaults_can_be_overridden() {
    let mut kit = EventSourcedTestKit::new(counter::Entity(Odd), "c").snapshot_every(1);
    assert_eq!(kit.state().value, 100);
    let outcome = kit.command("Increase", &increase(1));
    // `snapshot` is still the default: the state as it is.
    let snapshot = outcome.snapshot().unwrap().clone();
    assert_eq!(snapshot, encode(&domain::Snapshot { value: 101 }));
    let restored =
        EventSourcedTestKit::from_snapshot(counter::Entity(Odd), "c", 1, snapshot).unwrap();
    assert_eq!(restored.state().value, 202);
}
