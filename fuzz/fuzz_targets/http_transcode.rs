//! The dev proxy's HTTP/JSON transcoding against a real descriptor (its HTTP
//! fixture, which has every rule shape, and the shopping cart):
//! `method path NUL query NUL content-type NUL body`, where the first byte
//! picks the HTTP method and an empty query or content type is absent.
//! Routing, the request message built from path variables, query and JSON
//! body, and the rendering of replies must answer or refuse with a reason; an
//! accepted request must be a valid encoding of the method's input.
#![no_main]

use std::sync::OnceLock;

use cloudstate_devproxy::http::{HttpRules, StreamFormat};
use http::Method;
use libfuzzer_sys::fuzz_target;
use prost_reflect::DynamicMessage;

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "LIST",
];

fn rules() -> &'static HttpRules {
    static RULES: OnceLock<HttpRules> = OnceLock::new();
    RULES.get_or_init(|| {
        HttpRules::new(cloudstate_fuzz::http_pool(), cloudstate_fuzz::HTTP_SERVICES)
            .expect("fixture rules compile")
    })
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}

fuzz_target!(|data: &[u8]| {
    let [head, query, content_type, body] = cloudstate_fuzz::fields::<4>(data);
    let Some((&method, path)) = head.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let method = Method::from_bytes(METHODS[usize::from(method) % METHODS.len()].as_bytes())
        .expect("a valid method");
    let Some(matched) = rules().route(&method, path) else {
        return;
    };
    let input = matched.method().input();
    match matched.request(text(query), text(content_type), body) {
        Ok(message) => {
            if let Err(e) = DynamicMessage::decode(input.clone(), message.as_slice()) {
                panic!("accepted request is no {}: {e}", input.full_name());
            }
            if matched.method().output() == input
                && let Err(e) = matched.response(&message)
            {
                panic!("a valid {} does not render: {e}", input.full_name());
            }
        }
        Err(reason) => assert!(!reason.0.is_empty(), "a 400 says why"),
    }
    // The body's bytes as a reply of the method: answered or refused.
    let _ = matched.response(body);
    for format in [
        StreamFormat::JsonLines,
        StreamFormat::EventStream,
        StreamFormat::RawHttpBody,
    ] {
        let _ = matched.stream_chunk(format, body);
    }
});
