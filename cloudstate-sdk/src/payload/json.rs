//! JSON payloads: `json.cloudstate.io/<type name>`, through serde.
//!
//! The bytes of such an `Any` are the encoding of `message Json { bytes json = 1; }`:
//! tag `0x0A`, the length as a varint, then the UTF-8 JSON text (the same
//! bytes as a `p.cloudstate.io/bytes` of that text).
//!
//! [`Json<T>`] is a [`Payload`] for any serde type, named by the Rust type's
//! last path segment ([`default_type_name`]). To choose another name (the
//! one a service in another language uses, say), implement [`Payload`] for
//! your type with [`to_any`] and [`from_any`]:
//!
//! ```
//! use cloudstate_sdk::payload::{Any, Payload, PayloadError, json};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Greeting { text: String }
//!
//! impl Payload for Greeting {
//!     fn to_any(&self) -> Any { json::to_any("com.example.Greeting", self) }
//!     fn from_any(any: &Any) -> Result<Self, PayloadError> { json::from_any("com.example.Greeting", any) }
//! }
//!
//! let any = Greeting { text: "hi".into() }.to_any();
//! assert_eq!(any.type_url, "json.cloudstate.io/com.example.Greeting");
//! assert_eq!(any.value, b"\x0a\x0d{\"text\":\"hi\"}");
//! ```
//!
//! Payloads are compared by their bytes (CRDT elements, map keys), so the
//! JSON must come out the same for equal values: struct fields are written in
//! declaration order, but a `HashMap` iterates in random order; use a
//! `BTreeMap` in values that are compared.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Any, JSON_PREFIX, Payload, PayloadError, Primitive};

/// A serde value as a JSON payload of type URL
/// `json.cloudstate.io/<type name>`, the type name being
/// [`default_type_name::<T>()`](default_type_name).
///
/// Decoding checks the type URL: another type name, or another family of
/// type URL, is a [`PayloadError::UnexpectedType`] naming both.
///
/// ```
/// use cloudstate_sdk::payload::{Json, Payload};
///
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct ItemAdded { product: String, quantity: u32 }
///
/// let any = Json(ItemAdded { product: "apple".into(), quantity: 2 }).to_any();
/// assert_eq!(any.type_url, "json.cloudstate.io/ItemAdded");
/// let Json(back) = Json::<ItemAdded>::from_any(&any).unwrap();
/// assert_eq!(back.quantity, 2);
/// assert!(Json::<String>::from_any(&any).is_err()); // named `String`, not `ItemAdded`
/// ```
///
/// # Panics
/// Encoding panics when serde cannot write the value as JSON (a map whose
/// keys are not strings, a `Serialize` impl that fails); [`try_to_any`]
/// returns that error instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize + DeserializeOwned> Payload for Json<T> {
    fn to_any(&self) -> Any {
        to_any(&default_type_name::<T>(), &self.0)
    }
    fn from_any(any: &Any) -> Result<Self, PayloadError> {
        from_any(&default_type_name::<T>(), any).map(Json)
    }
}

impl<T> From<T> for Json<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// The JSON type name of `T` unless chosen otherwise: the last segment of the
/// Rust type's path, without generic arguments (`ItemAdded` for
/// `shop::domain::ItemAdded`, `Vec` for `Vec<String>`).
///
/// ```
/// assert_eq!(cloudstate_sdk::payload::json::default_type_name::<std::collections::BTreeMap<String, u8>>(), "BTreeMap");
/// ```
pub fn default_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let path = full.split_once('<').map_or(full, |(path, _)| path);
    path.rsplit_once("::")
        .map_or(path, |(_, last)| last)
        .to_owned()
}

/// The type URL of JSON payloads named `type_name`.
pub fn type_url(type_name: &str) -> String {
    format!("{JSON_PREFIX}{type_name}")
}

/// Encodes `value` as a JSON payload named `type_name`.
///
/// # Panics
/// When serde cannot write the value as JSON; see [`try_to_any`].
pub fn to_any<T: Serialize + ?Sized>(type_name: &str, value: &T) -> Any {
    try_to_any(type_name, value).unwrap_or_else(|error| panic!("{error}"))
}

/// Encodes `value` as a JSON payload named `type_name`.
///
/// # Errors
/// [`PayloadError::JsonEncode`] when serde cannot write the value as JSON.
pub fn try_to_any<T: Serialize + ?Sized>(type_name: &str, value: &T) -> Result<Any, PayloadError> {
    let text = serde_json::to_vec(value).map_err(|source| PayloadError::JsonEncode {
        type_name: type_name.to_owned(),
        source,
    })?;
    let mut value = Vec::with_capacity(text.len() + 6);
    text.encode_field(&mut value);
    Ok(Any {
        type_url: type_url(type_name),
        value,
    })
}

/// Decodes a JSON payload after checking that its type URL is exactly
/// `json.cloudstate.io/<type_name>`.
///
/// # Errors
/// [`PayloadError::UnexpectedType`] naming both types for another type URL,
/// [`PayloadError::Decode`] for bytes that are not a `Json` message and
/// [`PayloadError::Json`] for text that is not a `T`.
pub fn from_any<T: DeserializeOwned>(type_name: &str, any: &Any) -> Result<T, PayloadError> {
    let expected = type_url(type_name);
    if any.type_url != expected {
        return Err(PayloadError::UnexpectedType {
            expected,
            type_url: any.type_url.clone(),
        });
    }
    let text = Vec::<u8>::decode_field(&any.value).map_err(|source| PayloadError::Decode {
        expected: expected.clone(),
        type_url: any.type_url.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| PayloadError::Json {
        type_url: any.type_url.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    struct JsonEvent {
        message: String,
    }

    #[test]
    fn bytes_are_field_one_holding_the_text() {
        let any = Json(JsonEvent {
            message: "hi".into(),
        })
        .to_any();
        assert_eq!(any.type_url, "json.cloudstate.io/JsonEvent");
        let text = br#"{"message":"hi"}"#;
        let mut expected = vec![0x0a, text.len() as u8];
        expected.extend_from_slice(text);
        assert_eq!(any.value, expected);
        // The same bytes as the `bytes` primitive of that text.
        assert_eq!(
            any.value,
            super::super::Payload::to_any(&text.to_vec()).value
        );
        assert_eq!(
            Json::<JsonEvent>::from_any(&any).unwrap().0.message,
            "hi".to_owned()
        );
    }

    #[test]
    fn long_text_has_a_multi_byte_length() {
        let long = "x".repeat(300);
        let any = Json(long.clone()).to_any();
        assert_eq!(any.type_url, "json.cloudstate.io/String");
        // 302 bytes of JSON ("x"*300 in quotes): varint 0xae 0x02.
        assert_eq!(&any.value[..3], &[0x0a, 0xae, 0x02]);
        assert_eq!(Json::<String>::from_any(&any).unwrap().0, long);
    }

    #[test]
    fn wrong_type_url_names_both_types() {
        let any = Json(1u32).to_any();
        let err = Json::<JsonEvent>::from_any(&any).unwrap_err().to_string();
        assert!(err.contains("json.cloudstate.io/JsonEvent"), "{err}");
        assert!(err.contains("json.cloudstate.io/u32"), "{err}");
        let err = Json::<JsonEvent>::from_any(&"x".to_owned().to_any())
            .unwrap_err()
            .to_string();
        assert!(err.contains("p.cloudstate.io/string"), "{err}");
    }

    #[test]
    fn text_that_is_not_the_type_fails_naming_the_type_url() {
        let any = to_any("JsonEvent", &BTreeMap::from([("other", 1)]));
        let err = Json::<JsonEvent>::from_any(&any).unwrap_err();
        assert!(matches!(err, PayloadError::Json { .. }), "{err}");
        assert!(err.to_string().contains("json.cloudstate.io/JsonEvent"));
    }

    #[test]
    fn maps_encode_in_key_order() {
        let a = Json(BTreeMap::from([("b".to_owned(), 2), ("a".to_owned(), 1)])).to_any();
        assert_eq!(&a.value[2..], br#"{"a":1,"b":2}"#);
    }

    #[test]
    fn unserializable_values_are_an_error() {
        let map = BTreeMap::from([((1, 2), 3)]);
        let err = try_to_any("M", &map).unwrap_err();
        assert!(err.to_string().contains("[M]"), "{err}");
    }

    #[test]
    fn default_names_drop_path_and_generics() {
        assert_eq!(default_type_name::<JsonEvent>(), "JsonEvent");
        assert_eq!(default_type_name::<Vec<JsonEvent>>(), "Vec");
        assert_eq!(default_type_name::<i64>(), "i64");
    }
}
