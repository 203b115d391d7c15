//! Generates the TCK model messages, entity traits and descriptor set.

use cloudstate_build::{Action, Crdt, EventSourced, ValueEntity};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cloudstate_build::configure()
        .event_sourced(
            EventSourced::new("cloudstate.tck.model.EventSourcedTckModel")
                .event("cloudstate.tck.model.Persisted")
                .snapshot("cloudstate.tck.model.Persisted"),
        )
        .event_sourced(EventSourced::new("cloudstate.tck.model.EventSourcedTwo"))
        .event_sourced(EventSourced::new(
            "cloudstate.tck.model.EventSourcedConfigured",
        ))
        .value_entity(ValueEntity::new(
            "cloudstate.tck.model.valueentity.ValueEntityTckModel",
            "cloudstate.tck.model.valueentity.Persisted",
        ))
        .value_entity(ValueEntity::new(
            "cloudstate.tck.model.valueentity.ValueEntityTwo",
            "cloudstate.tck.model.valueentity.Persisted",
        ))
        .value_entity(ValueEntity::new(
            "cloudstate.tck.model.valueentity.ValueEntityConfigured",
            "cloudstate.tck.model.valueentity.Persisted",
        ))
        .action(Action::new("cloudstate.tck.model.action.ActionTckModel"))
        .action(Action::new("cloudstate.tck.model.action.ActionTwo"))
        .crdt(Crdt::new("cloudstate.tck.model.crdt.CrdtTckModel"))
        .crdt(Crdt::new("cloudstate.tck.model.crdt.CrdtTwo"))
        .crdt(Crdt::new("cloudstate.tck.model.crdt.CrdtConfigured"))
        .event_sourced(
            EventSourced::new("cloudstate.tck.model.eventlogeventing.EventSourcedEntityOne")
                .events([
                    "cloudstate.tck.model.eventlogeventing.EventOne",
                    "cloudstate.tck.model.eventlogeventing.EventTwo",
                ])
                .persistence_id("eventlogeventing-one"),
        )
        .event_sourced(
            EventSourced::new("cloudstate.tck.model.eventlogeventing.EventSourcedEntityTwo")
                .json_event("crate::eventing::JsonMessage")
                .persistence_id("eventlogeventing-two"),
        )
        .action(
            Action::new("cloudstate.tck.model.eventlogeventing.EventLogSubscriberModel")
                .json_events("ProcessAnyEvent", ["crate::eventing::JsonMessage"]),
        )
        .compile_protos(
            &[
                "cloudstate/tck/model/eventsourced.proto",
                "cloudstate/tck/model/valueentity.proto",
                "cloudstate/tck/model/action.proto",
                "cloudstate/tck/model/crdt.proto",
                "cloudstate/tck/model/eventlogeventing.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
