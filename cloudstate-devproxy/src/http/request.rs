//! Building the input message of a matched rule from the HTTP request
//! (the official `HttpEndpoint.transformRequest`).

use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use prost::Message as _;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    Value,
};

use super::BadRequest;
use super::rule::{Body, Rule};

/// Builds and encodes the input message; see [`super::HttpMatch::request`].
pub(super) fn build(
    rule: &Rule,
    variables: &[String],
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<u8>, BadRequest> {
    if !matches!(rule.body, Body::Empty) && !is_json(content_type) {
        return Err(BadRequest(format!(
            "Content-Type must be application/json, not {}",
            content_type.unwrap_or("(none)")
        )));
    }
    let input = rule.method.input();
    let message = match &rule.body {
        Body::Empty => {
            let mut message = DynamicMessage::new(input);
            apply_query(&mut message, query)?;
            apply_variables(rule, variables, &mut message)?;
            message
        }
        Body::All => {
            let mut message = parse_json(input, body)?;
            apply_variables(rule, variables, &mut message)?;
            message
        }
        Body::Field(field) => {
            let Kind::Message(body_type) = field.kind() else {
                unreachable!("validated when the rule was compiled")
            };
            let sub = parse_json(body_type, body)?;
            let mut message = DynamicMessage::new(input);
            apply_query(&mut message, query)?;
            apply_variables(rule, variables, &mut message)?;
            // Set last, as the official proxy does: the body wins over query parameters.
            message.set_field(field, Value::Message(sub));
            message
        }
    };
    Ok(message.encode_to_vec())
}

/// `application/json`, in any case, with any parameters (such as `charset`).
fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/json")
    })
}

fn parse_json(desc: MessageDescriptor, body: &[u8]) -> Result<DynamicMessage, BadRequest> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let message = DynamicMessage::deserialize_with_options(desc, &mut de, &options)
        .map_err(|e| BadRequest(format!("Malformed JSON body: {e}")))?;
    de.end()
        .map_err(|e| BadRequest(format!("Malformed JSON body: {e}")))?;
    Ok(message)
}

fn apply_variables(
    rule: &Rule,
    variables: &[String],
    message: &mut DynamicMessage,
) -> Result<(), BadRequest> {
    for (field, raw) in rule.variables.iter().zip(variables) {
        let text = url_decode(raw)
            .map_err(|e| BadRequest(format!("Path variable [{}]: {e}", field.name())))?;
        let value = parse_scalar(field, &text).map_err(|e| {
            BadRequest(format!(
                "Path contains value of wrong type for [{}]: {e}",
                field.name()
            ))
        })?;
        message.set_field(field, value);
    }
    Ok(())
}

/// Query parameters in order of first appearance, each with all its values (decoded).
fn parse_query(query: &str) -> Result<Vec<(String, Vec<String>)>, BadRequest> {
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let bad = |e: String| BadRequest(format!("Malformed query string: {e}"));
        let key = url_decode(key).map_err(bad)?;
        let value = url_decode(value).map_err(bad)?;
        match params.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => params.push((key, vec![value])),
        }
    }
    Ok(params)
}

fn apply_query(message: &mut DynamicMessage, query: Option<&str>) -> Result<(), BadRequest> {
    let Some(query) = query else { return Ok(()) };
    for (selector, values) in parse_query(query)? {
        let path = resolve(&message.descriptor(), &selector)?;
        let (target, parents) = path
            .split_last()
            .expect("resolve returns at least one field");
        if target.is_map() || matches!(target.kind(), Kind::Message(_)) {
            return Err(BadRequest(format!(
                "Query parameter [{selector}] refers to a message type"
            )));
        }
        if matches!(target.kind(), Kind::Enum(_)) {
            return Err(BadRequest(format!(
                "Query parameter [{selector}] refers to an enum field, which is not supported"
            )));
        }
        let values: Vec<&String> = values.iter().filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            continue;
        }
        if !target.is_list() && values.len() > 1 {
            return Err(BadRequest(format!(
                "Multiple values sent for non-repeated field by query parameter [{selector}]"
            )));
        }
        let parsed = values
            .iter()
            .map(|v| parse_scalar(target, v))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BadRequest(format!("Malformed query parameter [{selector}]: {e}")))?;

        let mut leaf = &mut *message;
        for parent in parents {
            leaf = leaf
                .get_field_mut(parent)
                .as_message_mut()
                .expect("resolve checked that parents are singular message fields");
        }
        if target.is_list() {
            leaf.get_field_mut(target)
                .as_list_mut()
                .expect("a repeated field holds a list")
                .extend(parsed);
        } else if let Some(value) = parsed.into_iter().next() {
            leaf.set_field(target, value);
        }
    }
    Ok(())
}

/// Resolves a dotted query selector (proto field names) to its chain of fields.
fn resolve(root: &MessageDescriptor, selector: &str) -> Result<Vec<FieldDescriptor>, BadRequest> {
    let mut fields: Vec<FieldDescriptor> = Vec::new();
    let mut desc = root.clone();
    let mut names = selector.split('.').peekable();
    while let Some(name) = names.next() {
        let field = desc.get_field_by_name(name).ok_or_else(|| {
            BadRequest(format!(
                "Query parameter [{selector}] refers to a non-existent field"
            ))
        })?;
        if names.peek().is_some() {
            match field.kind() {
                Kind::Message(next) if !field.is_list() && !field.is_map() => desc = next,
                _ => {
                    return Err(BadRequest(format!(
                        "Query parameter [{selector}] goes through [{}], which is not a singular message field",
                        field.name()
                    )));
                }
            }
        }
        fields.push(field);
    }
    Ok(fields)
}

/// Parses a path variable or query parameter as the field's scalar type, close to the Java
/// parsers of the official proxy (`Integer.valueOf`, `Float.valueOf`, case-insensitive booleans,
/// RFC 2045 base64).
pub(super) fn parse_scalar(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    let number = |what: &str| format!("[{text}] is not a valid {what}");
    Ok(match field.kind() {
        Kind::Bool => match text.to_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(number("boolean (true or false)")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(text.parse().map_err(|_| number("int32"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(text.parse().map_err(|_| number("int64"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(text.parse().map_err(|_| number("uint32"))?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(text.parse().map_err(|_| number("uint64"))?),
        Kind::Float => Value::F32(
            java_float(text)
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| number("float"))?,
        ),
        Kind::Double => Value::F64(
            java_float(text)
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| number("double"))?,
        ),
        Kind::String => Value::String(text.to_owned()),
        Kind::Bytes => Value::Bytes(rfc2045(text)?.into()),
        Kind::Enum(_) => return Err("enum parameters are not supported".into()),
        Kind::Message(_) => return Err("message parameters are not supported".into()),
    })
}

/// Normalises Java's `Float.valueOf` syntax to Rust's: surrounding whitespace and control
/// characters trimmed, an `f`/`d` suffix dropped, only `NaN` and `Infinity` as words.
/// Hexadecimal floating-point literals are not supported.
fn java_float(text: &str) -> Option<Cow<'_, str>> {
    let t = text.trim_matches(|c: char| c <= ' ');
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "NaN" || unsigned == "Infinity" {
        return Some(Cow::Borrowed(t));
    }
    let t = t.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(t);
    let valid = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    valid.then_some(Cow::Borrowed(t))
}

/// Base64 as RFC 2045 decoders read it: characters outside the alphabet are ignored.
fn rfc2045(text: &str) -> Result<Vec<u8>, String> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let cleaned: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/'))
        .collect();
    LENIENT
        .decode(cleaned)
        .map_err(|e| format!("[{text}] is not valid base64: {e}"))
}

/// `application/x-www-form-urlencoded` decoding, as Java's `URLDecoder` (path variables) and
/// akka-http's query parser do it: `+` is a space, `%XX` a byte; invalid UTF-8 is replaced.
pub(super) fn url_decode(text: &str) -> Result<String, String> {
    if !text.contains(['+', '%']) {
        return Ok(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("malformed percent-escape in [{text}]"))?;
                out.push(byte);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// akka-http's view of a request path: percent-escapes of characters allowed verbatim in a path
/// segment (unreserved, sub-delims, `:` and `@`) are decoded, all others are kept.
/// The official proxy matches its templates against that rendering.
pub(super) fn normalize_path(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let decoded = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = decoded.filter(|&b| is_segment_char(b)) {
                out.push_str(&path[copied..i]);
                out.push(char::from(b));
                i += 3;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&path[copied..]);
    Cow::Owned(out)
}

fn is_segment_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}
