//! An event-sourced entity with JSON events next to a protobuf one: the
//! golden output compiles, its JSON events travel as `json.cloudstate.io`
//! payloads named as declared, and replayed ones reach their handlers.

#[allow(dead_code, unreachable_pub, clippy::all, clippy::pedantic)]
mod example {
    pub mod counter {
        include!("golden/json/example.counter.rs");
        pub mod domain {
            include!("golden/example.counter.domain.rs");
        }
    }
}

include!("golden/cloudstate_payloads.rs");

/// Stands in for the embedded set; this test never serves.
const FILE_DESCRIPTOR_SET: &[u8] = &[];

/// The JSON event types, as a user's crate would have them.
mod json {
    #[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Debug)]
    pub(crate) struct Doubled {
        pub(crate) times: u32,
    }

    #[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Debug)]
    pub(crate) struct Halved<T> {
        pub(crate) note: T,
    }
}

use cloudstate_sdk::payload::{Any, Json, Payload};
use cloudstate_sdk::testkit::EventSourcedTestKit;
use cloudstate_sdk::{CommandResult, EventCodec, done};
use example::counter::{GetRequest, IncreaseRequest, Value, counter, domain};

/// `Increase` by a positive number adds it; by 0 doubles; below 0 halves.
struct Counter;

impl counter::Counter for Counter {
    fn on_increased(&self, state: &mut domain::Snapshot, event: &domain::Increased) {
        state.value += event.by;
    }

    fn on_doubled(&self, state: &mut domain::Snapshot, event: &json::Doubled) {
        state.value <<= event.times;
    }

    fn on_halved(&self, state: &mut domain::Snapshot, _: &json::Halved<u8>) {
        state.value /= 2;
    }

    fn increase(
        &self,
        request: IncreaseRequest,
        ctx: &mut counter::Context<'_, Self>,
    ) -> CommandResult<()> {
        match request.by {
            0 => ctx.emit(json::Doubled { times: 1 }),
            by if by < 0 => ctx.emit(json::Halved { note: 7u8 }),
            by => ctx.emit(domain::Increased { by }),
        }
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
fn json_events_are_emitted_with_their_type_names() {
    let mut kit = EventSourcedTestKit::new(counter::Entity(Counter), "c");
    kit.command("Increase", &increase(3));
    let doubled = kit.command("Increase", &increase(0));
    assert_eq!(
        doubled.events(),
        [counter::Event::Doubled(json::Doubled { times: 1 })]
    );
    kit.command("Increase", &increase(-1));
    assert_eq!(kit.state().value, 3);
    let journal: Vec<Any> = kit
        .journal()
        .into_iter()
        .map(EventCodec::into_any)
        .collect();
    assert_eq!(journal[1].type_url, "json.cloudstate.io/Doubled");
    assert_eq!(journal[1].value, b"\x0a\x0b{\"times\":1}");
    assert_eq!(journal[2].type_url, "json.cloudstate.io/com.example.Halved");
    // The same encoding as the SDK's `Json` for the default name.
    assert_eq!(journal[1], Json(json::Doubled { times: 1 }).to_any());
}

#[test]
fn replayed_json_events_reach_their_handlers() {
    let mut kit = EventSourcedTestKit::new(counter::Entity(Counter), "c");
    let events = [
        cloudstate_sdk::payload::encode(&domain::Increased { by: 5 }),
        Json(json::Doubled { times: 2 }).to_any(),
        cloudstate_sdk::payload::json::to_any("com.example.Halved", &json::Halved { note: 1u8 }),
    ];
    kit.replay(
        events
            .iter()
            .map(|e| counter::Event::from_any(e.clone()).unwrap()),
    )
    .unwrap();
    assert_eq!(kit.state().value, 10);
    // An unknown JSON type, or a JSON type under a protobuf name, is not an event.
    for unknown in [
        Json(json::Doubled { times: 1 })
            .to_any()
            .type_url
            .replace("Doubled", "Tripled"),
        "type.googleapis.com/Doubled".to_owned(),
    ] {
        let any = Any {
            type_url: unknown.clone(),
            value: Vec::new(),
        };
        assert!(counter::Event::from_any(any).is_err(), "{unknown}");
    }
}
