//! An event-sourced entity whose snapshots are a JSON type of the user's
//! crate: the golden output compiles, snapshots travel as
//! `json.cloudstate.io/Saved` (as the SDK's `Json` encodes them), and an
//! entity restores from one.

#[allow(dead_code, unreachable_pub, clippy::all, clippy::pedantic)]
mod example {
    pub mod counter {
        include!("golden/json-snapshot/example.counter.rs");
        pub mod domain {
            include!("golden/example.counter.domain.rs");
        }
    }
}

include!("golden/cloudstate_payloads.rs");

/// Stands in for the embedded set; this test never serves.
const FILE_DESCRIPTOR_SET: &[u8] = &[];

/// The snapshot type, as a user's crate would have it.
#[allow(unreachable_pub)]
mod json {
    #[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Debug)]
    pub struct Saved {
        pub value: i64,
    }
}

use cloudstate_sdk::payload::{Json, Payload};
use cloudstate_sdk::testkit::EventSourcedTestKit;
use cloudstate_sdk::{CommandResult, done};
use example::counter::{GetRequest, IncreaseRequest, Value, counter, domain};

struct Counter;

impl counter::Counter for Counter {
    fn on_increased(&self, state: &mut domain::Snapshot, event: &domain::Increased) {
        state.value += event.by;
    }

    fn snapshot(&self, state: &domain::Snapshot) -> json::Saved {
        json::Saved { value: state.value }
    }

    fn restore(&self, _: &str, snapshot: json::Saved) -> domain::Snapshot {
        domain::Snapshot {
            value: snapshot.value,
        }
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

fn increase(by: i64) -> IncreaseRequest {
    IncreaseRequest {
        counter_id: "c".to_owned(),
        by,
    }
}

#[test]
fn snapshots_are_json() {
    let mut kit = EventSourcedTestKit::new(counter::Entity(Counter), "c").snapshot_every(2);
    kit.command("Increase", &increase(3));
    let second = kit.command("Increase", &increase(4));
    let snapshot = second
        .snapshot()
        .expect("a snapshot every 2 events")
        .clone();
    assert_eq!(snapshot.type_url, "json.cloudstate.io/Saved");
    assert_eq!(snapshot, Json(json::Saved { value: 7 }).to_any());
}

#[test]
fn an_entity_restores_from_a_json_snapshot() {
    let kit = EventSourcedTestKit::from_snapshot(
        counter::Entity(Counter),
        "c",
        9,
        Json(json::Saved { value: 41 }),
    )
    .unwrap();
    assert_eq!(kit.state().value, 41);
    // A snapshot of another type is refused, naming it.
    let other = cloudstate_sdk::payload::json::to_any("Other", &json::Saved { value: 1 });
    let error = EventSourcedTestKit::from_snapshot(counter::Entity(Counter), "c", 1, other)
        .err()
        .expect("refused");
    assert!(error.contains("Other"), "{error}");
}
