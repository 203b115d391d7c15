//! A value entity whose state is a JSON type of the user's crate: the golden
//! output compiles, and the state is stored as `json.cloudstate.io/Tally`,
//! as the SDK's `Json` encodes it, and read back.

#[allow(dead_code, unreachable_pub, clippy::all, clippy::pedantic)]
mod example {
    pub mod counter {
        include!("golden/json-state/example.counter.rs");
        pub mod domain {
            include!("golden/example.counter.domain.rs");
        }
    }
}

include!("golden/cloudstate_payloads.rs");

/// Stands in for the embedded set; this test never serves.
const FILE_DESCRIPTOR_SET: &[u8] = &[];

/// The state type, as a user's crate would have it.
#[allow(unreachable_pub)]
mod json {
    #[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Debug, Default)]
    pub struct Tally {
        pub total: i64,
        pub increases: u32,
    }
}

use cloudstate_sdk::ValueEntity as _;
use cloudstate_sdk::payload::{Any, Json, Payload};
use cloudstate_sdk::testkit::ValueEntityTestKit;
use cloudstate_sdk::{CommandResult, done};
use example::counter::{GetRequest, IncreaseRequest, Value, counter};

struct Counter;

impl counter::Counter for Counter {
    fn increase(
        &self,
        request: IncreaseRequest,
        ctx: &mut counter::Context<'_, Self>,
    ) -> CommandResult<()> {
        let mut tally = ctx.state().cloned().unwrap_or_default();
        tally.total += request.by;
        tally.increases += 1;
        ctx.update(tally);
        done()
    }

    fn get(&self, _: GetRequest, ctx: &mut counter::Context<'_, Self>) -> CommandResult<Value> {
        Ok(Value {
            value: ctx.state().map_or(0, |t| t.total),
        }
        .into())
    }
}

#[test]
fn the_state_is_json() {
    let mut kit = ValueEntityTestKit::without_descriptors(
        counter::SERVICE_NAME,
        counter::Entity(Counter),
        "c",
    );
    for by in [2, 5] {
        kit.call(counter::increase(&IncreaseRequest {
            counter_id: "c".into(),
            by,
        }));
    }
    let tally = json::Tally {
        total: 7,
        increases: 2,
    };
    assert_eq!(kit.state(), Some(&tally));
    let stored = counter::Entity(Counter).encode_state(&tally);
    assert_eq!(stored.type_url, "json.cloudstate.io/Tally");
    assert_eq!(stored, Json(tally.clone()).to_any());
    assert_eq!(
        counter::Entity(Counter).decode_state(&stored).unwrap(),
        tally
    );
    // Another type is refused, naming it.
    let other = Any {
        type_url: "json.cloudstate.io/Other".into(),
        value: stored.value.clone(),
    };
    let error = counter::Entity(Counter).decode_state(&other).unwrap_err();
    assert!(error.to_string().contains("Other"), "{error}");
}
