//! Payloads on the wire: `google.protobuf.Any` with the three Cloudstate
//! type-URL families (protobuf messages, `p.cloudstate.io` primitives and
//! `json.cloudstate.io` JSON).

#[cfg(feature = "json")]
pub mod json;

use bytes::Buf;
#[cfg(feature = "json")]
pub use json::Json;
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
    /// The JSON text of a `json.cloudstate.io` payload is not the type.
    #[cfg(feature = "json")]
    #[error("JSON payload with type URL [{type_url}] could not be read: {source}")]
    Json {
        /// The type URL that arrived.
        type_url: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be written as JSON.
    #[cfg(feature = "json")]
    #[error("value of JSON type [{type_name}] could not be written as JSON: {source}")]
    JsonEncode {
        /// The JSON type name it was written as.
        type_name: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
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
/// For callers that matched the type URL already (the generated event
/// decoding); everything else should use [`decode`].
pub fn decode_as<M: prost::Name + Default>(any: &Any) -> Result<M, PayloadError> {
    M::decode(any.value.as_slice()).map_err(|source| PayloadError::Decode {
        expected: M::full_name(),
        type_url: any.type_url.clone(),
        source,
    })
}

/// Decodes `any` as `M` after checking that its type URL names `M` (any
/// host: the name after the last `/` is compared with `M`'s full name).
///
/// This is how commands, events, snapshots and states are read.
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
    // `PACKAGE.NAME` compared in place, from the end: this runs for every
    // command, and `full_name` allocates. A type whose full name is spelled
    // otherwise is still matched by the comparison after it.
    let (package, name) = (M::PACKAGE, M::NAME);
    let in_place = if package.is_empty() {
        has_type_name(&any.type_url, name)
    } else {
        any.type_url
            .strip_suffix(name)
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|rest| has_type_name(rest, package))
    };
    in_place || type_name(&any.type_url) == M::full_name()
}

/// Whether the type name of `type_url` (after its last `/`) is `name`,
/// which must be a protobuf full name (no `/`): [`type_name`] without
/// searching the URL for its last `/`.
pub(crate) fn has_type_name(type_url: &str, name: &str) -> bool {
    debug_assert!(!name.contains('/'), "[{name}] is not a full name");
    match type_url.strip_suffix(name) {
        Some(rest) => rest.is_empty() || rest.ends_with('/'),
        None => false,
    }
}

/// The reply payload of a method that returns `google.protobuf.Empty`.
pub fn empty() -> Any {
    Any {
        type_url: EMPTY_TYPE_URL.to_owned(),
        value: Vec::new(),
    }
}

/// A value that travels as an `Any`: command inputs of methods that take
/// `google.protobuf.Any`, replies, forwards and side effects
/// ([`Reply::of`](crate::Reply::of), [`ServiceCall::of`](crate::ServiceCall::of)),
/// events (every `Payload` is an [`EventCodec`](crate::EventCodec)),
/// snapshots and value-entity states (`to_any`/`from_any` in the
/// low-level traits), CRDT elements, keys and register values.
///
/// Implemented for the seven Cloudstate primitives (`String`, `Vec<u8>` and
/// [`bytes::Bytes`], `i32`, `i64`, `f32`, `f64`, `bool`), for JSON values
/// wrapped in [`Json`] (feature `json`), for [`Any`] itself
/// (passed through as received), for `()` (`google.protobuf.Empty`) and for
/// any protobuf message wrapped in [`Protobuf`]. `cloudstate-build` implements
/// it for the messages of your own protos.
///
/// Decoding checks the type URL and fails with
/// [`PayloadError::UnexpectedType`], naming both types, when it is another.
///
/// Two payloads are the same value when their encodings are byte-equal, so an
/// implementation must encode deterministically.
///
/// ```
/// use cloudstate_sdk::payload::Payload;
///
/// let any = 42i64.to_any();
/// assert_eq!(any.type_url, "p.cloudstate.io/int64");
/// assert_eq!(i64::from_any(&any).unwrap(), 42);
/// assert!(String::from_any(&any).is_err());
/// ```
pub trait Payload: Sized {
    /// Encodes the value.
    fn to_any(&self) -> Any;
    /// Decodes a value after checking that the type URL names this type.
    ///
    /// # Errors
    /// Another type URL, or bytes that do not decode.
    fn from_any(any: &Any) -> Result<Self, PayloadError>;
}

impl Payload for Any {
    fn to_any(&self) -> Any {
        self.clone()
    }
    fn from_any(any: &Any) -> Result<Self, PayloadError> {
        Ok(any.clone())
    }
}

/// `()` is `google.protobuf.Empty`: the empty message, with empty bytes.
impl Payload for () {
    fn to_any(&self) -> Any {
        empty()
    }
    fn from_any(any: &Any) -> Result<Self, PayloadError> {
        if type_name(&any.type_url) == type_name(EMPTY_TYPE_URL) {
            // Any bytes are unknown fields of the empty message.
            Ok(())
        } else {
            Err(PayloadError::UnexpectedType {
                expected: type_name(EMPTY_TYPE_URL).to_owned(),
                type_url: any.type_url.clone(),
            })
        }
    }
}

/// A protobuf message as a [`Payload`], for messages that have no impl of
/// their own (e.g. `prost_types` well-known types).
///
/// ```
/// use cloudstate_sdk::payload::{Payload, Protobuf};
///
/// let any = Protobuf(prost_types::Duration { seconds: 3, nanos: 0 }).to_any();
/// assert_eq!(any.type_url, "type.googleapis.com/google.protobuf.Duration");
/// let Protobuf(back) = Protobuf::<prost_types::Duration>::from_any(&any).unwrap();
/// assert_eq!(back.seconds, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Protobuf<M>(pub M);

impl<M: prost::Name + Default> Payload for Protobuf<M> {
    fn to_any(&self) -> Any {
        encode(&self.0)
    }
    fn from_any(any: &Any) -> Result<Self, PayloadError> {
        decode(any).map(Protobuf)
    }
}

/// A value that travels as a Cloudstate primitive (`p.cloudstate.io/<type>`).
///
/// Every primitive is field 1 of a one-field message; the default value
/// encodes to empty bytes, as the TCK compares encodings byte for byte.
/// Each primitive is a [`Payload`] through this encoding.
pub trait Primitive: Sized {
    /// The name after `p.cloudstate.io/`.
    const NAME: &'static str;
    /// Writes the value as field 1 unless it is the default.
    fn encode_field(&self, buf: &mut Vec<u8>);
    /// Reads field 1 (leniently, skipping anything else); the default when absent.
    ///
    /// # Errors
    /// Bytes that are not a protobuf encoding.
    fn decode_field(buf: &[u8]) -> Result<Self, prost::DecodeError>;

    /// The full type URL.
    fn type_url() -> String {
        format!("{PRIMITIVE_PREFIX}{}", Self::NAME)
    }
}

fn primitive_to_any<P: Primitive>(value: &P) -> Any {
    let mut bytes = Vec::new();
    value.encode_field(&mut bytes);
    Any {
        type_url: P::type_url(),
        value: bytes,
    }
}

fn primitive_from_any<P: Primitive>(any: &Any) -> Result<P, PayloadError> {
    if any.type_url != P::type_url() {
        return Err(PayloadError::UnexpectedType {
            expected: P::type_url(),
            type_url: any.type_url.clone(),
        });
    }
    P::decode_field(&any.value).map_err(|source| PayloadError::Decode {
        expected: P::type_url(),
        type_url: any.type_url.clone(),
        source,
    })
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

        impl Payload for $ty {
            fn to_any(&self) -> Any {
                primitive_to_any(self)
            }
            fn from_any(any: &Any) -> Result<Self, PayloadError> {
                primitive_from_any(any)
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
    bytes::Bytes,
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
    fn bytes_is_the_bytes_primitive() {
        let any = bytes::Bytes::from_static(b"ab").to_any();
        assert_eq!(any, b"ab".to_vec().to_any());
        assert_eq!(bytes::Bytes::from_any(&any).unwrap(), &b"ab"[..]);
        assert!(bytes::Bytes::new().to_any().value.is_empty());
    }

    #[test]
    fn any_passes_through_unchanged() {
        let any = Any {
            type_url: "example.com/odd".into(),
            value: vec![1, 2, 3],
        };
        assert_eq!(any.to_any(), any);
        assert_eq!(Any::from_any(&any).unwrap(), any);
    }

    #[test]
    fn unit_is_google_protobuf_empty() {
        assert_eq!(().to_any(), empty());
        assert!(<()>::from_any(&empty()).is_ok());
        let other_host = Any {
            type_url: "example.com/google.protobuf.Empty".into(),
            value: vec![],
        };
        assert!(<()>::from_any(&other_host).is_ok());
        let err = <()>::from_any(&true.to_any()).unwrap_err();
        assert!(err.to_string().contains("p.cloudstate.io/bool"), "{err}");
    }

    #[test]
    fn protobuf_wrapper_checks_the_type_url() {
        let timestamp = prost_types::Timestamp {
            seconds: 7,
            nanos: 0,
        };
        let any = Protobuf(timestamp).to_any();
        assert_eq!(
            any.type_url,
            "type.googleapis.com/google.protobuf.Timestamp"
        );
        assert_eq!(Protobuf::from_any(&any).unwrap(), Protobuf(timestamp));
        assert!(Protobuf::<prost_types::Duration>::from_any(&any).is_err());
    }

    #[test]
    fn type_name_is_after_last_slash() {
        assert_eq!(type_name("type.googleapis.com/a.B"), "a.B");
        assert_eq!(type_name("example.com/x/a.B"), "a.B");
        assert_eq!(type_name("a.B"), "a.B");
        for (url, name, expected) in [
            ("type.googleapis.com/a.B", "a.B", true),
            ("a.B", "a.B", true),
            ("example.com/x/a.B", "a.B", true),
            ("type.googleapis.com/xa.B", "a.B", false),
            ("type.googleapis.com/a.Bc", "a.B", false),
            ("B", "a.B", false),
        ] {
            assert_eq!(has_type_name(url, name), expected, "{url} {name}");
            assert_eq!(type_name(url) == name, expected, "{url} {name}");
        }
        let any = |url: &str| Any {
            type_url: url.to_owned(),
            value: Vec::new(),
        };
        type Duration = prost_types::Duration;
        assert!(is::<Duration>(&any(
            "type.googleapis.com/google.protobuf.Duration"
        )));
        assert!(is::<Duration>(&any("google.protobuf.Duration")));
        assert!(!is::<Duration>(&any(
            "type.googleapis.com/google.protobufxDuration"
        )));
        assert!(!is::<Duration>(&any(
            "type.googleapis.com/xgoogle.protobuf.Duration"
        )));
        assert!(!is::<Duration>(&any(
            "type.googleapis.com/google.protobuf.Timestamp"
        )));
    }
}
