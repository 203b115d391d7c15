//! A Cloudstate user function implementing the TCK model services, so the
//! official TCK and our own conformance suites can drive it.
//!
//! The services and their persistence ids are fixed by the TCK
//! (`cloudstate.tck.model.*`).

pub mod action;
pub mod crdt;
pub mod eventing;
pub mod eventsourced;
pub mod valueentity;

/// The generated TCK model protos.
pub mod proto {
    cloudstate_sdk::include_protos!();
}

use cloudstate_sdk::CloudState;

/// The user function with every TCK model service implemented so far.
pub fn server() -> CloudState {
    let server = CloudState::new()
        .service_name(env!("CARGO_PKG_NAME"))
        .service_version(env!("CARGO_PKG_VERSION"))
        .descriptor_set(proto::FILE_DESCRIPTOR_SET);
    eventing::register(crdt::register(action::register(valueentity::register(
        eventsourced::register(server),
    ))))
}
