//! The entity key of a request read straight from its wire form, without
//! decoding it into a dynamic message (which allocates for every field).
//! The walk checks what the full decode checks (tags, wire types, lengths,
//! varints, UTF-8, nested messages) and gives up on anything less common
//! (groups, repeated and map fields, extensions, deep nesting, a key field
//! absent or empty): the full decode then decides, so the answer, error
//! texts included, is always the full decode's.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, Value};

/// How deep nested messages are checked before the full decode takes over.
const MAX_DEPTH: u32 = 32;

/// Whether the walk can read `field` as a key: a singular scalar, string or
/// bytes field outside any oneof.
pub(super) fn readable(field: &FieldDescriptor) -> bool {
    !field.is_list()
        && !field.is_map()
        && field.containing_oneof().is_none()
        && matches!(
            field.kind(),
            Kind::String
                | Kind::Bytes
                | Kind::Bool
                | Kind::Int32
                | Kind::Int64
                | Kind::Uint32
                | Kind::Uint64
                | Kind::Sint32
                | Kind::Sint64
                | Kind::Fixed32
                | Kind::Fixed64
                | Kind::Sfixed32
                | Kind::Sfixed64
                | Kind::Float
                | Kind::Double
        )
}

/// The values of `keys` (fields of `input`, each [`readable`]) in
/// `request`, in the order of `keys`; `None` when the full decode must
/// decide: the request may not decode, or a key is absent or empty.
pub(super) fn scan(
    input: &MessageDescriptor,
    keys: &[FieldDescriptor],
    request: &[u8],
) -> Option<Vec<Value>> {
    let mut found: Vec<Option<Value>> = vec![None; keys.len()];
    walk(input, request, 0, keys, &mut found)?;
    found
        .into_iter()
        .map(|value| match value? {
            Value::String(s) if s.is_empty() => None,
            Value::Bytes(b) if b.is_empty() => None,
            value => Some(value),
        })
        .collect()
}

/// Checks one message; records the last value of each of `keys` met.
fn walk(
    desc: &MessageDescriptor,
    mut buf: &[u8],
    depth: u32,
    keys: &[FieldDescriptor],
    found: &mut [Option<Value>],
) -> Option<()> {
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        let tag = u32::try_from(tag).ok()?;
        let (number, wire) = (tag >> 3, tag & 7);
        if number == 0 {
            return None;
        }
        let Some(field) = desc.get_field(number) else {
            if desc.get_extension(number).is_some() {
                return None;
            }
            skip(wire, &mut buf)?;
            continue;
        };
        if field.is_list() || field.is_map() {
            return None;
        }
        let value = value(&field, wire, &mut buf, depth)?;
        if let Some(value) = value
            && let Some(i) = keys.iter().position(|k| k.number() == number)
        {
            found[i] = Some(value);
        }
    }
    Some(())
}

/// Reads one singular field's value: `Some(None)` for a message field
/// (checked, not kept).
fn value(field: &FieldDescriptor, wire: u32, buf: &mut &[u8], depth: u32) -> Option<Option<Value>> {
    const VARINT: u32 = 0;
    const FIXED64: u32 = 1;
    const LEN: u32 = 2;
    const FIXED32: u32 = 5;
    let kind = field.kind();
    let expected = match kind {
        Kind::Fixed64 | Kind::Sfixed64 | Kind::Double => FIXED64,
        Kind::Fixed32 | Kind::Sfixed32 | Kind::Float => FIXED32,
        Kind::String | Kind::Bytes | Kind::Message(_) => LEN,
        _ => VARINT,
    };
    if wire != expected {
        return None;
    }
    let value = match kind {
        Kind::Message(sub) => {
            if field.is_group() || depth >= MAX_DEPTH {
                return None;
            }
            walk(&sub, len_delimited(buf)?, depth + 1, &[], &mut [])?;
            return Some(None);
        }
        Kind::String => Value::String(std::str::from_utf8(len_delimited(buf)?).ok()?.to_owned()),
        Kind::Bytes => Value::Bytes(bytes::Bytes::copy_from_slice(len_delimited(buf)?)),
        Kind::Bool => Value::Bool(varint(buf)? != 0),
        // Truncations and sign handling as the protobuf wire format defines them.
        #[allow(clippy::cast_possible_truncation)]
        Kind::Int32 => Value::I32(varint(buf)? as i32),
        #[allow(clippy::cast_possible_wrap)]
        Kind::Int64 => Value::I64(varint(buf)? as i64),
        #[allow(clippy::cast_possible_truncation)]
        Kind::Uint32 => Value::U32(varint(buf)? as u32),
        Kind::Uint64 => Value::U64(varint(buf)?),
        #[allow(clippy::cast_possible_truncation)]
        Kind::Sint32 => {
            let n = varint(buf)? as u32;
            Value::I32(((n >> 1) as i32) ^ -((n & 1) as i32))
        }
        #[allow(clippy::cast_possible_wrap)]
        Kind::Sint64 => {
            let n = varint(buf)?;
            Value::I64(((n >> 1) as i64) ^ -((n & 1) as i64))
        }
        Kind::Fixed32 => Value::U32(u32::from_le_bytes(fixed(buf)?)),
        Kind::Sfixed32 => Value::I32(i32::from_le_bytes(fixed(buf)?)),
        Kind::Float => Value::F32(f32::from_le_bytes(fixed(buf)?)),
        Kind::Fixed64 => Value::U64(u64::from_le_bytes(fixed(buf)?)),
        Kind::Sfixed64 => Value::I64(i64::from_le_bytes(fixed(buf)?)),
        Kind::Double => Value::F64(f64::from_le_bytes(fixed(buf)?)),
        Kind::Enum(_) => {
            varint(buf)?;
            return Some(None);
        }
    };
    Some(Some(value))
}

/// Skips an unknown field; groups and invalid wire types are left to the
/// full decode.
fn skip(wire: u32, buf: &mut &[u8]) -> Option<()> {
    match wire {
        0 => varint(buf).map(drop),
        1 => fixed::<8>(buf).map(drop),
        2 => len_delimited(buf).map(drop),
        5 => fixed::<4>(buf).map(drop),
        _ => None,
    }
}

/// A base-128 varint of at most ten bytes, the tenth at most 1.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0_u64;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

fn len_delimited<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(varint(buf)?).ok()?;
    if len > buf.len() {
        return None;
    }
    let (value, rest) = buf.split_at(len);
    *buf = rest;
    Some(value)
}

fn fixed<const N: usize>(buf: &mut &[u8]) -> Option<[u8; N]> {
    let (value, rest) = buf.split_first_chunk::<N>()?;
    *buf = rest;
    Some(*value)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;
    use prost::Message as _;
    use prost_reflect::{DescriptorPool, DynamicMessage};

    use super::*;

    fn request_type() -> MessageDescriptor {
        static TYPE: std::sync::LazyLock<MessageDescriptor> = std::sync::LazyLock::new(compile);
        TYPE.clone()
    }

    fn compile() -> MessageDescriptor {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/key_fixtures");
        let mut compiler = protox::Compiler::new([root]).unwrap();
        compiler.open_files(["kinds/kinds.proto"]).unwrap();
        let pool =
            DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap();
        pool.get_message_by_name("kinds.Request").unwrap()
    }

    /// Every field the walk can read as a key.
    fn keys(desc: &MessageDescriptor) -> Vec<FieldDescriptor> {
        desc.fields().filter(readable).collect()
    }

    /// What the full decode says the keys are, if it decodes and none is empty.
    fn decoded(
        desc: &MessageDescriptor,
        keys: &[FieldDescriptor],
        bytes: &[u8],
    ) -> Option<Vec<Value>> {
        let message = DynamicMessage::decode(desc.clone(), bytes).ok()?;
        keys.iter()
            .map(|k| match message.get_field(k).into_owned() {
                Value::String(s) if s.is_empty() => None,
                Value::Bytes(b) if b.is_empty() => None,
                v => Some(v),
            })
            .collect()
    }

    /// A request with every field set, encoded.
    fn full(desc: &MessageDescriptor, id: &str, n: i64) -> Vec<u8> {
        let json = serde_json::json!({
            "id": id, "n64": n.to_string(), "z32": -7, "flag": true, "f64": "9",
            "sf32": -3, "raw": "AQI=", "d": 1.5, "f": -2.25, "u32": 4_000_000_000_u32,
            "z64": (-n).to_string(), "i32": -1, "u64": "18446744073709551615", "fx32": 5,
            "sf64": "-6", "inner": {"s": "x", "n": 2, "next": {"s": "y"}}, "color": "GREEN",
            "list": [1, 2], "table": {"k": 1}, "b": 3, "opt": "o"
        });
        DynamicMessage::deserialize(desc.clone(), json)
            .unwrap()
            .encode_to_vec()
    }

    #[test]
    fn the_keys_of_a_full_request_are_read_as_the_decode_reads_them() {
        let desc = request_type();
        let keys = keys(&desc);
        assert_eq!(keys.len(), 15, "every singular scalar outside a oneof");
        let bytes = full(&desc, "cart-1", -42);
        let read = scan(&desc, &keys, &bytes);
        // Repeated and map fields are left to the full decode.
        assert_eq!(read, None);
        let message = DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap();
        let mut only_singular = message.clone();
        for field in ["list", "table"] {
            only_singular.clear_field_by_name(field);
        }
        let bytes = only_singular.encode_to_vec();
        let read = scan(&desc, &keys, &bytes).expect("readable");
        assert_eq!(Some(read), decoded(&desc, &keys, &bytes));
    }

    #[test]
    fn an_absent_or_empty_key_is_left_to_the_decode() {
        let desc = request_type();
        let id = desc.get_field_by_name("id").unwrap();
        let mut message = DynamicMessage::new(desc.clone());
        assert_eq!(
            scan(&desc, std::slice::from_ref(&id), &message.encode_to_vec()),
            None
        );
        // Set explicitly but empty: on the wire as an empty string.
        let empty = [0x0a, 0x00];
        assert_eq!(scan(&desc, std::slice::from_ref(&id), &empty), None);
        message.set_field(&id, Value::String("k".into()));
        assert_eq!(
            scan(&desc, std::slice::from_ref(&id), &message.encode_to_vec()),
            Some(vec![Value::String("k".into())])
        );
    }

    #[test]
    fn the_last_occurrence_of_a_key_wins_as_in_the_decode() {
        let desc = request_type();
        let keys = keys(&desc);
        let id = desc.get_field_by_name("id").unwrap();
        let twice = [0x0a, 0x01, b'a', 0x0a, 0x01, b'b'];
        let read = scan(&desc, std::slice::from_ref(&id), &twice);
        assert_eq!(read, Some(vec![Value::String("b".into())]));
        assert_eq!(
            decoded(&desc, std::slice::from_ref(&id), &twice),
            Some(vec![Value::String("b".into())])
        );
        // Invalid UTF-8 in the key, or in a nested message: the decode decides.
        assert_eq!(scan(&desc, &keys, &[0x0a, 0x01, 0xff]), None);
        assert_eq!(
            scan(
                &desc,
                std::slice::from_ref(&id),
                &[0x0a, 0x01, b'a', 0x62, 0x03, 0x0a, 0x01, 0xff]
            ),
            None
        );
        assert_eq!(
            decoded(
                &desc,
                std::slice::from_ref(&id),
                &[0x0a, 0x01, b'a', 0x62, 0x03, 0x0a, 0x01, 0xff]
            ),
            None
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the bytes, a key read from the wire form is the one the
        /// full decode finds, and only for bytes the full decode accepts.
        #[test]
        fn reading_keys_never_disagrees_with_the_decode(
            id in "[a-z0-9-]{0,12}",
            n in any::<i64>(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0_u8..3), 0..4),
            cut in any::<usize>(),
        ) {
            let desc = request_type();
            let keys = keys(&desc);
            let mut message = DynamicMessage::decode(desc.clone(), full(&desc, &id, n).as_slice()).unwrap();
            message.clear_field_by_name("list");
            message.clear_field_by_name("table");
            let mut bytes = message.encode_to_vec();
            for (at, byte, how) in edits {
                let at = at % (bytes.len() + 1);
                match how {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ if at < bytes.len() => { bytes.remove(at); }
                    _ => {}
                }
            }
            if cut % 4 == 0 {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            if let Some(read) = scan(&desc, &keys, &bytes) {
                prop_assert_eq!(texts(Some(read)), texts(decoded(&desc, &keys, &bytes)));
            }
        }

        /// Arbitrary bytes: the same.
        #[test]
        fn reading_keys_of_noise_never_disagrees_with_the_decode(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let desc = request_type();
            let keys = keys(&desc);
            if let Some(read) = scan(&desc, &keys, &bytes) {
                prop_assert_eq!(texts(Some(read)), texts(decoded(&desc, &keys, &bytes)));
            }
        }
    }

    /// Values compared by their printed form: NaN equals NaN.
    fn texts(values: Option<Vec<Value>>) -> Option<Vec<String>> {
        values.map(|v| v.iter().map(|v| format!("{v:?}")).collect())
    }
}
