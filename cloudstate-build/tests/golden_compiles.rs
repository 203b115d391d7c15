//! The golden output compiles against the SDK, a user implementation of the
//! generated trait builds, and it behaves as an entity.

/// The generated tree as `include_protos!()` lays it out, under lints that
/// generated code would trip without the allows it carries.
#[deny(
    dead_code,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications
)]
#[warn(clippy::pedantic, clippy::nursery)]
mod proto {
    include!("golden/cloudstate_modules.rs");
    include!("golden/cloudstate_payloads.rs");

    /// Stands in for the embedded set; this test never serves.
    const FILE_DESCRIPTOR_SET: &[u8] = &[];
}
use proto::example;

use cloudstate_sdk::payload::Payload;
use cloudstate_sdk::testkit::EventSourcedTestKit;
use cloudstate_sdk::{CommandResult, TypedCall};
use example::counter::{GetRequest, IncreaseRequest, Value, counter, domain};

struct Counter;

impl counter::Counter for Counter {
    type State = i64;

    fn initial_state(&self, _entity_id: &str) -> i64 {
        0
    }

    fn on_increased(&self, state: &mut i64, event: &domain::Increased) {
        *state += event.by;
    }

    fn on_reset(&self, state: &mut i64, _event: &domain::Reset) {
        *state = 0;
    }

    fn snapshot(&self, state: &i64) -> domain::Snapshot {
        domain::Snapshot { value: *state }
    }

    fn restore(&self, _entity_id: &str, snapshot: domain::Snapshot) -> i64 {
        snapshot.value
    }

    fn increase(
        &self,
        request: IncreaseRequest,
        ctx: &mut counter::Context<'_, Self>,
    ) -> CommandResult<()> {
        if request.by == 0 {
            ctx.emit(domain::Reset {});
        } else {
            ctx.emit(domain::Increased { by: request.by });
        }
        cloudstate_sdk::done()
    }

    fn get(
        &self,
        _request: GetRequest,
        ctx: &mut counter::Context<'_, Self>,
    ) -> CommandResult<Value> {
        Ok(Value {
            value: *ctx.state(),
        }
        .into())
    }
}

#[test]
fn generated_entity_runs() {
    let mut kit = EventSourcedTestKit::new(counter::Entity(Counter), "c").snapshot_every(2);
    let id = || "c".to_owned();
    let outcome = kit.command(
        "Increase",
        &IncreaseRequest {
            counter_id: id(),
            by: 3,
        },
    );
    assert_eq!(
        outcome.events(),
        vec![counter::Event::Increased(domain::Increased { by: 3 })]
    );
    assert_eq!(
        outcome.reply_payload().unwrap().type_url,
        "type.googleapis.com/google.protobuf.Empty"
    );
    let outcome = kit.command(
        "Increase",
        &IncreaseRequest {
            counter_id: id(),
            by: 4,
        },
    );
    assert_eq!(
        outcome.snapshot(),
        Some(&cloudstate_sdk::payload::encode(&domain::Snapshot {
            value: 7
        }))
    );
    assert_eq!(
        kit.command("Get", &GetRequest { counter_id: id() })
            .reply::<Value>()
            .value,
        7
    );
    kit.command(
        "Increase",
        &IncreaseRequest {
            counter_id: id(),
            by: 0,
        },
    );
    assert_eq!(*kit.state(), 0);
    assert_eq!(counter::SERVICE_NAME, "example.counter.Counter");
    // The builders know the output type of the method they call.
    let call: TypedCall<()> = counter::increase(&IncreaseRequest {
        counter_id: id(),
        by: 1,
    });
    assert_eq!(
        (call.service_name(), call.command_name()),
        ("example.counter.Counter", "Increase")
    );
    let get: TypedCall<Value> = counter::get(&GetRequest { counter_id: id() });
    assert_eq!(
        get.payload(),
        &cloudstate_sdk::payload::encode(&GetRequest { counter_id: id() })
    );
    let forward: cloudstate_sdk::Reply<Value> = cloudstate_sdk::Reply::forward(get.clone());
    assert_eq!(forward, cloudstate_sdk::Reply::Forward(get.into_call()));
}

/// Every message of the compiled protos is a `Payload`, encoded as a
/// protobuf message whose type URL is checked on the way back.
#[test]
fn messages_are_payloads() {
    let value = Value { value: 7 };
    let any = value.to_any();
    assert_eq!(any, cloudstate_sdk::payload::encode(&value));
    assert_eq!(Value::from_any(&any).unwrap(), value);
    let e = domain::Snapshot::from_any(&any).unwrap_err();
    assert!(
        e.to_string().contains("example.counter.domain.Snapshot"),
        "{e}"
    );
    let reset = domain::Reset {}.to_any();
    assert_eq!(
        reset.type_url,
        "type.googleapis.com/example.counter.domain.Reset"
    );
    assert_eq!(domain::Reset::from_any(&reset).unwrap(), domain::Reset {});
}
