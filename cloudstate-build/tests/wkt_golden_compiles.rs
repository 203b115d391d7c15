//! Generated messages with a field of every well-known type compile against
//! the SDK's `prost_types` (generated code names no prost crate itself), and
//! user code names those types, nested enums included, through the SDK.

#[allow(dead_code, unreachable_pub, clippy::all, clippy::pedantic)]
mod proto {
    include!("golden/wkt/cloudstate_modules.rs");
    include!("golden/wkt/cloudstate_payloads.rs");
}

use cloudstate_sdk::payload::Payload;
use cloudstate_sdk::prost::Message;
use cloudstate_sdk::prost_types::{Timestamp, field_descriptor_proto};
use proto::example::wkt::Everything;

#[test]
fn well_known_fields_round_trip() {
    let mut everything = Everything {
        timestamp: Some(Timestamp {
            seconds: 7,
            nanos: 1,
        }),
        empty: Some(()),
        bool_value: Some(true),
        string_value: Some("s".to_owned()),
        ..Everything::default()
    };
    everything.set_field_type(field_descriptor_proto::Type::String);
    let decoded = Everything::decode(everything.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded, everything);
    assert!(matches!(
        decoded.field_type(),
        field_descriptor_proto::Type::String
    ));
    assert_eq!(
        Everything::from_any(&everything.to_any()).unwrap(),
        everything
    );
}
