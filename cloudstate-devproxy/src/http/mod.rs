//! HTTP/JSON transcoding from `google.api.http` rules, as the official Cloudstate proxy does it
//! (`HttpApi.scala`). Pure: no sockets and no server types; the transport hands in the method,
//! path, query, content type and body, and gets back protobuf bytes, or the response body.
//!
//! # What it does
//!
//! - [`HttpRules::new`] reads the `google.api.http` option of every method of the served services.
//!   A method without one gets the generic `POST /<service full name>/<method>` with body `*`.
//!   Additional bindings are supported one level deep.
//! - [`HttpRules::route`] finds the binding for a request. Later bindings take precedence over
//!   earlier ones, across all methods. `None` means 404.
//! - [`HttpMatch::request`] builds the input message from path variables, query parameters and
//!   the JSON body. An error means 400, with the reason as the body (the official proxy's body is
//!   `Bad Request` alone).
//! - [`error_body`] writes an error answer: plain text, or a Google API error object for a
//!   client whose `Accept` asks for JSON.
//! - [`HttpMatch::response`] prints a unary reply. For server-streaming calls use
//!   [`HttpMatch::stream_format`] and [`HttpMatch::stream_chunk`], or [`ndjson_line`] and
//!   [`sse_event`] directly.
//!
//! # Deviations from the official proxy
//!
//! - **Error answers say why.** A 400 carries the reason (`Malformed JSON body: unrecognized
//!   field name 'opton' at line 1 column 24`, `Content-Type must be application/json, not
//!   text/plain`) where the official proxy answers `Bad Request`; a body over the limit is 413
//!   rather than 400. The body is plain text unless the client's `Accept` asks for JSON, which
//!   gets a Google API error object ([`error_body`]). A 500 keeps the failure text verbatim.
//! - **`response_body` is printed with the normal JSON mapping.** The official proxy converts a
//!   repeated or scalar `response_body` field through a hand-made `google.protobuf.Value`: every
//!   number becomes a double (`"quantity": 2.0`, and int64 loses its string form), fields with
//!   default values inside messages are dropped, and bytes are printed as raw text rather than
//!   base64. Here the field is printed exactly as it would be inside the whole message:
//!   lowerCamelCase names, enums as names, 64-bit integers as strings, default values included.
//!   A singular message field prints the same in both (the official proxy prints it with its
//!   normal printer). This affects the shopping cart's `GET /carts/{user_id}/items`: the official
//!   proxy answers `[{"productId":"p","name":"n","quantity":2.0}]`, this one
//!   `[{"productId":"p","name":"n","quantity":2}]`.
//! - **Dotted query parameters really set nested fields.** The official proxy resolves the path
//!   but then sets the nested field on the top-level message, which fails. Selectors going
//!   through repeated or map fields are rejected (400).
//! - **Empty query values are skipped** one by one (`?name=` leaves `name` unset, and
//!   `?tags=&tags=a` gives `["a"]`). The official proxy sets an empty string, and rejects an
//!   empty number. Unknown and message-typed selectors are still rejected even with empty values.
//! - **Unsigned path variables and query parameters** accept `0..=u32::MAX` (`u64::MAX`);
//!   the official proxy parses them as signed Java integers. Floats follow Java's
//!   `Float.valueOf` except for hexadecimal literals.
//! - **Malformed percent-escapes** in the path or query give 400 (the official proxy may answer
//!   500 for a path variable).
//! - **A `response_body` on a `google.api.HttpBody` output** is a configuration error here
//!   (it fails every request in the official proxy).
//! - **Empty query parameter keys** (`?a=1&&b=2`) are ignored.
//!
//! # Faithful quirks kept on purpose
//!
//! - Path variables and `*` match an empty segment (`[^/:]*`), so `/carts/` matches
//!   `/carts/{user_id}` with an empty id.
//! - Path variables are decoded like Java's `URLDecoder`: `+` becomes a space. Before matching,
//!   the path is normalised as akka-http renders it: escapes of characters allowed in a segment
//!   (such as `%3A` or `%2B`) are decoded first, so an encoded `:` never matches a variable and
//!   `%2B` ends up as a space.
//! - Query parameters use proto field names only (not JSON names). Enum-typed query parameters
//!   are rejected (400). With `body: "*"`, the query string is ignored entirely.
//! - With `body: "<field>"`, the body is set last and overrides query parameters aimed inside it.
//! - A body rule on GET or DELETE is accepted.

mod error;
mod request;
mod response;
mod rule;
mod template;
#[cfg(test)]
mod tests;

use std::fmt;

use prost_reflect::{DescriptorPool, MethodDescriptor};

pub use error::{accepts_json, code_name, error_body};
pub use response::{StreamFormat, accepts_event_stream, ndjson_line, sse_event};
use rule::Rule;

/// Compiled HTTP rules of every unary and streaming method of the served services.
#[derive(Debug, Clone)]
pub struct HttpRules {
    /// In declaration order: services as given, methods as declared, each rule before its
    /// additional bindings.
    rules: Vec<Rule>,
}

impl HttpRules {
    /// Reads `google.api.http` (extension 72295728 of `google.protobuf.MethodOptions`, looked up
    /// by name; absent when the descriptors lack `google/api/http.proto`) for every method of
    /// `services` (fully qualified names) in `pool`.
    ///
    /// A method without a rule gets `POST /<service full name>/<method>` with body `*`.
    /// Additional bindings are read one level deep.
    ///
    /// The pool must keep extension options: build it with [`DescriptorPool::decode`] from the
    /// encoded descriptor set (decoding through `prost_types` drops them).
    ///
    /// # Errors
    ///
    /// A message naming the service, method and rule for: an unknown service; a missing pattern;
    /// a `custom` kind other than `*`; a selector that is neither empty nor the method's full name;
    /// a bad path template; a nested field path, an unknown field, or a repeated, map, enum or
    /// message field as a path variable; a body field that is unknown, repeated or not a message;
    /// an unknown `response_body` field; additional bindings nested more than one level.
    pub fn new(pool: &DescriptorPool, services: &[&str]) -> Result<Self, String> {
        Ok(HttpRules {
            rules: rule::compile(pool, services)?,
        })
    }

    /// Finds the binding for a request; later bindings take precedence over earlier ones (the
    /// official proxy matches in reverse declaration order across all methods).
    ///
    /// `path` is the request path, still percent-encoded; anything from a `?` on is ignored.
    /// `None` means 404.
    pub fn route(&self, method: &http::Method, path: &str) -> Option<HttpMatch<'_>> {
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        let path = request::normalize_path(path);
        self.rules.iter().rev().find_map(|rule| {
            if rule.verb.as_ref().is_some_and(|verb| verb != method) {
                return None;
            }
            let variables = rule.template.captures(&path)?;
            Some(HttpMatch { rule, variables })
        })
    }

    /// One line per binding, in declaration order (`POST /cart/{user_id}/items/add ->
    /// com.example.shoppingcart.ShoppingCart.AddItem (body "*")`), for start-up logs.
    pub fn describe(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.description.clone()).collect()
    }
}

/// A request matched to a binding.
#[derive(Debug, Clone)]
pub struct HttpMatch<'a> {
    rule: &'a Rule,
    /// Raw (percent-encoded) path variable values, in template order.
    variables: Vec<String>,
}

impl HttpMatch<'_> {
    /// The gRPC method to call.
    pub fn method(&self) -> &MethodDescriptor {
        &self.rule.method
    }

    /// The binding that matched, as [`HttpRules::describe`] prints it.
    pub fn rule(&self) -> &str {
        &self.rule.description
    }

    /// Builds the input message and returns its protobuf encoding.
    ///
    /// - `body: "*"`: the JSON body is merged into the message, then the path variables are set
    ///   (they win). The query string is ignored.
    /// - `body: "<field>"`: the JSON goes into that field; query parameters, then path
    ///   variables fill the rest; the body field is set last.
    /// - `body: ""`: query parameters, then path variables; the body is discarded.
    ///
    /// With a body rule, `content_type` must be `application/json` (parameters such as
    /// `charset` allowed). Unknown JSON fields are rejected. Query parameters: dotted paths of
    /// proto field names; message, map and enum targets rejected; several values for a
    /// non-repeated field rejected; repeated fields take every value; empty values skipped.
    /// Path variable values are URL-decoded and parsed by field type (booleans as `true`/`false`
    /// in any case, bytes as base64, numbers).
    ///
    /// # Errors
    ///
    /// [`BadRequest`] with the reason; the HTTP answer is 400.
    pub fn request(
        &self,
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, BadRequest> {
        request::build(self.rule, &self.variables, query, content_type, body)
    }

    /// Renders one reply (protobuf bytes of the output type) as a unary HTTP response:
    /// `(content type, body)`.
    ///
    /// The JSON is compact, with lowerCamelCase names, enums as names, 64-bit integers as strings,
    /// and default-valued scalar, repeated and map fields printed (unset message fields and
    /// oneof members are not). With `response_body: "<field>"`, only that field's value is
    /// printed, with the same mapping (a documented deviation: see the module docs). For a
    /// `google.api.HttpBody` output, the raw `data` is returned with its `content_type`; an
    /// empty content type means the response has none.
    ///
    /// # Errors
    ///
    /// The bytes do not decode as the output type, or an `HttpBody` content type is invalid;
    /// the HTTP answer is 500.
    pub fn response(&self, output: &[u8]) -> Result<(String, Vec<u8>), String> {
        response::unary(self.rule, output)
    }

    /// How to frame the replies of a server-streaming call, given the request's `Accept` header:
    /// Server-Sent Events if it asks for `text/event-stream`, else raw data for a
    /// `google.api.HttpBody` output, else newline-delimited JSON.
    pub fn stream_format(&self, accept: Option<&str>) -> StreamFormat {
        if accepts_event_stream(accept) {
            StreamFormat::EventStream
        } else if self.rule.http_body_output() {
            StreamFormat::RawHttpBody
        } else {
            StreamFormat::JsonLines
        }
    }

    /// Renders one streamed reply as a body chunk in `format`.
    ///
    /// # Errors
    ///
    /// As [`HttpMatch::response`].
    pub fn stream_chunk(&self, format: StreamFormat, output: &[u8]) -> Result<Vec<u8>, String> {
        stream_chunk(self.rule, format, output)
    }

    /// What renders the replies of a server-streaming call in the format
    /// [`HttpMatch::stream_format`] picks for `accept`, without borrowing the
    /// rules (for a response body that outlives the request handler).
    pub fn stream_renderer(&self, accept: Option<&str>) -> StreamRenderer {
        StreamRenderer {
            rule: self.rule.clone(),
            format: self.stream_format(accept),
        }
    }
}

/// Renders the replies of one server-streaming call as body chunks, as
/// [`HttpMatch::stream_chunk`] does.
#[derive(Debug, Clone)]
pub struct StreamRenderer {
    rule: Rule,
    format: StreamFormat,
}

impl StreamRenderer {
    /// The framing chosen for the call.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// One reply (protobuf bytes of the output type) as a body chunk.
    ///
    /// # Errors
    ///
    /// As [`HttpMatch::response`].
    pub fn chunk(&self, output: &[u8]) -> Result<Vec<u8>, String> {
        stream_chunk(&self.rule, self.format, output)
    }
}

fn stream_chunk(rule: &Rule, format: StreamFormat, output: &[u8]) -> Result<Vec<u8>, String> {
    match format {
        StreamFormat::EventStream => Ok(sse_event(&response::json(rule, output)?)),
        StreamFormat::JsonLines => Ok(ndjson_line(&response::json(rule, output)?)),
        StreamFormat::RawHttpBody => {
            if rule.http_body_output() {
                Ok(response::http_body(rule, output)?.1)
            } else {
                Err(format!(
                    "{} does not return google.api.HttpBody",
                    rule.method.full_name()
                ))
            }
        }
    }
}

/// Why a request could not be transcoded, in words for the client: the HTTP answer is 400 with
/// this text (see [`error_body`]). The official proxy answers `Bad Request` alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadRequest {}

/// Entry points for the fuzz targets in `fuzz/` and their regression tests; not a public API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses `template` as a rule's path, then matches `path` against it as
    /// [`HttpRules::route`](super::HttpRules::route) does (normalised first): the raw variable
    /// values, or `None` when it does not match.
    ///
    /// # Errors
    /// The template's parse error.
    pub fn path_template(template: &str, path: &str) -> Result<Option<Vec<String>>, String> {
        let template = super::template::PathTemplate::parse(template)?;
        Ok(template.captures(&super::request::normalize_path(path)))
    }
}
