//! The SDK's payload codecs: `type_url NUL value` as an `Any`, decoded as
//! every primitive (§2.3: field 1 of a one-field message), `()`, protobuf
//! messages (type URL checked, any host), and JSON payloads. Whatever decodes
//! must encode back to a payload that decodes to the same value; what does
//! not must be refused with an error that names the expected type.
#![no_main]

use cloudstate_sdk::payload::{self, Any, Json, Payload, Protobuf};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use shopping_cart::proto::com::example::shoppingcart::{AddLineItem, Cart};

/// A JSON payload with the shapes serde meets most: strings, numbers, lists,
/// options, nesting.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: String,
    quantity: i32,
    #[serde(default)]
    tags: Vec<String>,
    price: Option<f64>,
    lines: Option<Vec<Order>>,
}

/// Decodes `any` as `P`; on success the value's own encoding must decode to
/// an equal value (by `same`), and on failure the error must name what was
/// wrong.
fn check<P: Payload + std::fmt::Debug>(any: &Any, same: impl Fn(&P, &P) -> bool) {
    match P::from_any(any) {
        Ok(value) => {
            let again = value.to_any();
            let back = P::from_any(&again)
                .unwrap_or_else(|e| panic!("{value:?} re-encoded as {again:?} fails: {e}"));
            assert!(same(&value, &back), "{value:?} came back as {back:?}");
            // Canonical: encoding the decoded value again gives the same bytes.
            assert_eq!(back.to_any(), again, "encoding of {value:?} is not stable");
        }
        Err(error) => assert!(!error.to_string().is_empty(), "an error says why"),
    }
}

fn eq<T: PartialEq>(a: &T, b: &T) -> bool {
    a == b
}

fuzz_target!(|data: &[u8]| {
    let [type_url, value] = cloudstate_fuzz::fields::<2>(data);
    let any = Any {
        type_url: String::from_utf8_lossy(type_url).into_owned(),
        value: value.to_vec(),
    };
    let _ = payload::type_name(&any.type_url);
    check::<String>(&any, eq);
    check::<Vec<u8>>(&any, eq);
    check::<bytes::Bytes>(&any, eq);
    check::<i32>(&any, eq);
    check::<i64>(&any, eq);
    check::<bool>(&any, eq);
    check::<f32>(&any, |a, b| a.to_bits() == b.to_bits());
    check::<f64>(&any, |a, b| a.to_bits() == b.to_bits());
    check::<()>(&any, eq);
    check::<Any>(&any, eq);
    check::<Protobuf<prost_types::Timestamp>>(&any, eq);
    check::<Protobuf<prost_types::Duration>>(&any, eq);
    check::<Protobuf<AddLineItem>>(&any, eq);
    check::<Protobuf<Cart>>(&any, eq);
    check::<Json<serde_json::Value>>(&any, eq);
    check::<Json<Order>>(&any, eq);
    if let Ok(cart) = payload::decode::<Cart>(&any) {
        assert!(payload::is::<Cart>(&any));
        assert_eq!(
            payload::decode::<Cart>(&payload::encode(&cart)).ok(),
            Some(cart)
        );
    }
    let _ = payload::decode_as::<AddLineItem>(&any);
    let _ = payload::json::from_any::<serde_json::Value>("Order", &any);
});
