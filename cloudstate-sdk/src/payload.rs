//! Payloads on the wire: `google.protobuf.Any` with the three Cloudstate
//! type-URL families (protobuf messages, `p.cloudstate.io` primitives and
//! `json.cloudstate.io` JSON).

use bytes::Buf;
pub use prost_types::Any;

/// Type-URL prefix of protobuf messages.
pub const PROTOBUF_PREFIX: &str = "type.googleapis.com/";
/// Type-URL prefix of Cloudstate primitive values.
pub const PRIMITIVE_PREFIX: &str = "p.cloudstate.io/";
/// Type-URL prefix of Cloudstate JSON values.
pub const JSON_PREFIX: &str = "json.cloudstate.io/";
/// Type URL of `google.protobuf.Empty`, the reply of methods that return nothing.
pub const EMPTY_TYPE_URL: &str = "type.googleapis.com/google.protobuf.Empty";

/// The type name a type URL carries: everything after its last `/`.
///
/// Prefixes vary between senders, so payloads are matched on this part only.
pub fn type_name(type_url: &str) -> &str {
    type_url.rsplit_once('/').map_or(type_url, |(_, name)| name)
}

/// Why a payload could not be turned into the value asked for.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The payload's type URL names another type.
    #[error("expected a payload of type {expected} but got type URL [{type_url}]")]
    UnexpectedType {
        /// The full name of the type that was expected.
        expected: String,
        /// The type URL that arrived.
        type_url: String,
    },
    /// Nothing handles payloads of this type.
    #[error("no handler for payload type URL [{type_url}]")]
    Unhandled {
        /// The type URL that arrived.
        type_url: String,
    },
    /// The bytes are not a valid encoding of the type.
    #[error("payload with type URL [{type_url}] could not be decoded as {expected}: {source}")]
    Decode {
        /// The full name of the type the bytes were decoded as.
        expected: String,
        /// The type URL that arrived.
        type_url: String,
        /// What the decoder said.
        #[source]
        source: prost::DecodeError,
    },
}

impl PayloadError {
    /// The error for a payload that no handler takes.
    pub fn unhandled(any: &Any) -> Self {
        Self::Unhandled {
            type_url: any.type_url.clone(),
        }
    }
}

/// Encodes a protobuf message as an `Any` with the `type.googleapis.com/` type URL.
pub fn encode<M: prost::Name>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

/// Decodes the bytes of `any` as `M`, whatever its type URL says.
///
/// This is how commands are read: by the method's declared input type.
pub fn decode_as<M: prost::Name + Default>(any: &Any) -> Result<M, PayloadError> {
    M::decode(any.value.as_slice()).map_err(|source| PayloadError::Decode {
        expected: M::full_name(),
        type_url: any.type_url.clone(),
        source,
    })
}

/// Decodes `any` as `M` after checking that its type URL names `M`.
///
/// This is how events and snapshots are read.
pub fn decode<M: prost::Name + Default>(any: &Any) -> Result<M, PayloadError> {
    if !is::<M>(any) {
        return Err(PayloadError::UnexpectedType {
            expected: M::full_name(),
            type_url: any.type_url.clone(),
        });
    }
    decode_as(any)
}

/// Whether `any` carries a protobuf message of type `M` (matched on the name
/// after the last `/`).
pub fn is<M: prost::Name>(any: &Any) -> bool {
    type_name(&any.type_url) == M::full_name()
}

/// The reply payload of a method that returns `google.protobuf.Empty`.
pub fn empty() -> Any {
    Any {
        type_url: EMPTY_TYPE_URL.to_owned(),
        value: Vec::new(),
    }
}

/// A value that travels as a Cloudstate primitive (`p.cloudstate.io/<type>`).
///
/// Every primitive is field 1 of a one-field message; the default value
/// encodes to empty bytes, as the TCK compares encodings byte for byte.
pub trait Primitive: Sized {
    /// The name after `p.cloudstate.io/`.
    const NAME: &'static str;
    /// Writes the value as field 1 unless it is the default.
    fn encode_field(&self, buf: &mut Vec<u8>);
    /// Reads field 1 (leniently, skipping anything else); the default when absent.
    fn decode_field(buf: &[u8]) -> Result<Self, prost::DecodeError>;

    /// The full type URL.
    fn type_url() -> String {
        format!("{PRIMITIVE_PREFIX}{}", Self::NAME)
    }
    /// Encodes the value as an `Any`.
    fn to_any(&self) -> Any {
        let mut value = Vec::new();
        self.encode_field(&mut value);
        Any {
            type_url: Self::type_url(),
            value,
        }
    }
    /// Decodes an `Any` that must carry this primitive.
    fn from_any(any: &Any) -> Result<Self, PayloadError> {
        if any.type_url != Self::type_url() {
            return Err(PayloadError::UnexpectedType {
                expected: Self::type_url(),
                type_url: any.type_url.clone(),
            });
        }
        Self::decode_field(&any.value).map_err(|source| PayloadError::Decode {
            expected: Self::type_url(),
            type_url: any.type_url.clone(),
            source,
        })
    }
}

macro_rules! primitive {
    ($ty:ty, $name:literal, $wire:ident, $enc:path, $merge:path) => {
        impl Primitive for $ty {
            const NAME: &'static str = $name;
            fn encode_field(&self, buf: &mut Vec<u8>) {
                if *self != <$ty>::default() {
                    $enc(1, self, buf);
                }
            }
            fn decode_field(mut buf: &[u8]) -> Result<Self, prost::DecodeError> {
                let mut value = <$ty>::default();
                let ctx = prost::encoding::DecodeContext::default();
                while buf.has_remaining() {
                    let (tag, wire_type) = prost::encoding::decode_key(&mut buf)?;
                    if tag == 1 && wire_type == prost::encoding::WireType::$wire {
                        $merge(wire_type, &mut value, &mut buf, ctx.clone())?;
                    } else {
                        prost::encoding::skip_field(wire_type, tag, &mut buf, ctx.clone())?;
                    }
                }
                Ok(value)
            }
        }
    };
}

primitive!(
    String,
    "string",
    LengthDelimited,
    prost::encoding::string::encode,
    prost::encoding::string::merge
);
primitive!(
    Vec<u8>,
    "bytes",
    LengthDelimited,
    prost::encoding::bytes::encode,
    prost::encoding::bytes::merge
);
primitive!(
    i32,
    "int32",
    Varint,
    prost::encoding::int32::encode,
    prost::encoding::int32::merge
);
primitive!(
    i64,
    "int64",
    Varint,
    prost::encoding::int64::encode,
    prost::encoding::int64::merge
);
primitive!(
    f32,
    "float",
    ThirtyTwoBit,
    prost::encoding::float::encode,
    prost::encoding::float::merge
);
primitive!(
    f64,
    "double",
    SixtyFourBit,
    prost::encoding::double::encode,
    prost::encoding::double::merge
);
primitive!(
    bool,
    "bool",
    Varint,
    prost::encoding::bool::encode,
    prost::encoding::bool::merge
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_encode_to_empty_bytes() {
        assert!(String::new().to_any().value.is_empty());
        assert!(0i32.to_any().value.is_empty());
        assert!(0i64.to_any().value.is_empty());
        assert!(false.to_any().value.is_empty());
        assert!(0f64.to_any().value.is_empty());
        assert!(Vec::<u8>::new().to_any().value.is_empty());
    }

    #[test]
    fn primitives_round_trip_with_field_one() {
        let any = "hi".to_owned().to_any();
        assert_eq!(any.type_url, "p.cloudstate.io/string");
        assert_eq!(any.value, b"\x0a\x02hi");
        assert_eq!(String::from_any(&any).unwrap(), "hi");
        let any = (-1i32).to_any();
        assert_eq!(
            any.value.len(),
            11,
            "negative int32 is sign-extended to 10 varint bytes"
        );
        assert_eq!(i32::from_any(&any).unwrap(), -1);
        assert_eq!(true.to_any().value, b"\x08\x01");
        assert_eq!(f32::from_any(&1.5f32.to_any()).unwrap(), 1.5);
    }

    #[test]
    fn primitive_decoding_skips_unknown_fields() {
        let any = Any {
            type_url: "p.cloudstate.io/int64".into(),
            value: vec![0x10, 0x05, 0x08, 0x07],
        };
        assert_eq!(i64::from_any(&any).unwrap(), 7);
        let wrong = Any {
            type_url: "p.cloudstate.io/bool".into(),
            value: vec![],
        };
        assert!(i64::from_any(&wrong).is_err());
    }

    #[test]
    fn type_name_is_after_last_slash() {
        assert_eq!(type_name("type.googleapis.com/a.B"), "a.B");
        assert_eq!(type_name("example.com/x/a.B"), "a.B");
        assert_eq!(type_name("a.B"), "a.B");
    }
}
