//! Rendering reply messages as HTTP response bodies (the official `HttpEndpoint.transformResponse`).

use prost_reflect::{DynamicMessage, Kind, ReflectMessage, SerializeOptions, Value};

use super::rule::{HTTP_BODY, Rule};

/// The JSON printer of the official proxy: protobuf-java's `JsonFormat.printer`
/// `.includingDefaultValueFields().omittingInsignificantWhitespace()`.
/// Every option is spelled out although most are prost-reflect's defaults.
const PRINTER: SerializeOptions = SerializeOptions::new()
    .stringify_64_bit_integers(true)
    .use_enum_numbers(false)
    .use_proto_field_name(false)
    .skip_default_fields(false);

/// `application/json`, the content type of every JSON response.
pub(super) const JSON: &str = "application/json";

fn decode(rule: &Rule, output: &[u8]) -> Result<DynamicMessage, String> {
    DynamicMessage::decode(rule.method.output(), output).map_err(|e| {
        format!(
            "cannot decode the reply of {} as {}: {e}",
            rule.method.full_name(),
            rule.method.output().full_name()
        )
    })
}

fn print(message: &DynamicMessage) -> Result<Vec<u8>, String> {
    let mut serializer = serde_json::Serializer::new(Vec::new());
    message
        .serialize_with_options(&mut serializer, &PRINTER)
        .map_err(|e| {
            format!(
                "cannot print {} as JSON: {e}",
                message.descriptor().full_name()
            )
        })?;
    Ok(serializer.into_inner())
}

/// The reply as JSON, restricted to `response_body` when the rule has one.
pub(super) fn json(rule: &Rule, output: &[u8]) -> Result<Vec<u8>, String> {
    let message = decode(rule, output)?;
    let Some(field) = &rule.response_body else {
        return print(&message);
    };
    let value = message.get_field(field);
    if let (Kind::Message(_), Value::Message(sub)) = (field.kind(), value.as_ref())
        && !field.is_list()
        && !field.is_map()
    {
        // An unset message field prints as its default instance, as protobuf-java's
        // `getField` gives.
        return print(sub);
    }
    // Lists, maps and scalars: print a message holding only that field (marked present, so
    // proto3 `optional` and oneof members print their default) and cut the field's value out.
    let mut only = DynamicMessage::new(message.descriptor());
    only.set_field(field, value.into_owned());
    let printed = print(&only)?;
    let text = std::str::from_utf8(&printed).map_err(|e| e.to_string())?;
    top_level_member(text, field.json_name())
        .map(|value| value.as_bytes().to_vec())
        .ok_or_else(|| {
            format!(
                "response body field [{}] missing from the printed {}",
                field.name(),
                message.descriptor().full_name()
            )
        })
}

/// The unary response: `(content type, body)`.
pub(super) fn unary(rule: &Rule, output: &[u8]) -> Result<(String, Vec<u8>), String> {
    if rule.http_body_output() {
        let (content_type, data) = http_body(rule, output)?;
        Ok((content_type, data))
    } else {
        Ok((JSON.to_owned(), json(rule, output)?))
    }
}

/// The `content_type` and `data` of a `google.api.HttpBody` reply.
pub(super) fn http_body(rule: &Rule, output: &[u8]) -> Result<(String, Vec<u8>), String> {
    let message = decode(rule, output)?;
    debug_assert_eq!(message.descriptor().full_name(), HTTP_BODY);
    let content_type = message
        .get_field_by_name("content_type")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    if !content_type.is_empty() && !valid_content_type(&content_type) {
        return Err(format!(
            "invalid content_type [{content_type}] in the {HTTP_BODY} reply of {}",
            rule.method.full_name()
        ));
    }
    let data = message
        .get_field_by_name("data")
        .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
        .unwrap_or_default();
    Ok((content_type, data))
}

/// `type/subtype` followed by optional parameters, and usable as a header value.
fn valid_content_type(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    http::HeaderValue::from_str(content_type).is_ok()
        && media
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s))
}

/// The raw text of member `key` of the JSON object `json` (compact or not).
fn top_level_member<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let wanted = serde_json::to_string(key).ok()?;
    let bytes = json.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    // End (exclusive) of the string starting at `i` (an opening quote).
    let string_end = |mut i: usize| {
        i += 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return Some(i + 1),
                _ => i += 1,
            }
        }
        None
    };
    // End (exclusive) of the value starting at `i`.
    let value_end = |mut i: usize| {
        let mut depth = 0usize;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    i = string_end(i)?;
                    if depth == 0 {
                        return Some(i);
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    if depth == 0 {
                        return Some(i);
                    }
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                b',' if depth == 0 => return Some(i),
                _ => {}
            }
            i += 1;
        }
        (depth == 0).then_some(i)
    };

    let mut i = skip_ws(0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(i);
        if bytes.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(i)?;
        let this_key = &json[i..key_end];
        i = skip_ws(key_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(i + 1);
        let end = value_end(start)?;
        if this_key == wanted {
            return Some(json[start..end].trim_end());
        }
        i = skip_ws(end);
        match bytes.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

/// How the replies of a server-streaming call are framed over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// `Accept: text/event-stream` was sent: one Server-Sent Event per reply, whose data is the
    /// reply printed as JSON (even for `google.api.HttpBody` outputs, as the official proxy does).
    EventStream,
    /// The output type is `google.api.HttpBody`: the `data` of each reply, back to back.
    /// The official proxy takes the response content type from the reply metadata's
    /// `Content-Type`, else `application/octet-stream`; the `content_type` fields are ignored.
    RawHttpBody,
    /// One compact JSON object per reply, each followed by `\n`, as `application/json`.
    JsonLines,
}

impl StreamFormat {
    /// The response content type, or `None` for [`StreamFormat::RawHttpBody`], whose content type
    /// comes from the reply metadata (see there).
    pub fn content_type(self) -> Option<&'static str> {
        match self {
            StreamFormat::EventStream => Some("text/event-stream"),
            StreamFormat::RawHttpBody => None,
            StreamFormat::JsonLines => Some(JSON),
        }
    }
}

/// Whether an `Accept` header asks for Server-Sent Events: one of its media ranges starts with
/// `text/event-stream` (so `*/*` does not count), as in the official proxy.
pub fn accepts_event_stream(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|range| {
            range
                .trim()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        })
    })
}

/// Frames one JSON document as a line of newline-delimited JSON: the document, then `\n`.
pub fn ndjson_line(json: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(json.len() + 1);
    line.extend_from_slice(json);
    line.push(b'\n');
    line
}

/// Frames one JSON document as a Server-Sent Event the way akka-http does: `data:<line>\n` for each
/// line (no space after the colon; clients strip one optional space anyway), then an empty line.
/// Compact JSON is a single line, so this is `data:<json>\n\n`.
pub fn sse_event(json: &[u8]) -> Vec<u8> {
    let mut event = Vec::with_capacity(json.len() + 8);
    for line in json.split(|&b| b == b'\n') {
        event.extend_from_slice(b"data:");
        event.extend_from_slice(line);
        event.push(b'\n');
    }
    event.push(b'\n');
    event
}
