//! Errors a client can act on: what a bad request gets over HTTP (the reason
//! as text, or a Google API error object when JSON is asked for; 413 for an
//! over-long body) and over gRPC (`INVALID_ARGUMENT` with the same text), and
//! entity keys found by the option's number whatever the descriptors call it.

mod support;

use std::path::Path;

use cloudstate_sdk::payload::Any;
use cloudstate_sdk::{
    CloudState, Command, CommandResult, PayloadError, Reply, ValueContext, ValueEntity,
    ValueEntityOptions,
};
use serde_json::{Value as Json, json};
use support::{exchange, grpc, http, http_exact, http_with_headers, proxy_with, start};
use tck_adapter::proto::cloudstate::tck::model::{Request, Response};

const PROCESS: &str = "/cloudstate.tck.model.EventSourcedTckModel/Process";
const ROUTE: &str = "/tck/model/eventsourced/e1";
const TEXT: &str = "text/plain; charset=utf-8";

#[tokio::test]
async fn malformed_json_names_the_field_line_and_column() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let (status, content_type, body) =
        http(addr, "POST", ROUTE, Some(r#"{"actions":[], "opton":1}"#)).await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (
            400,
            TEXT,
            "Malformed JSON body: unrecognized field name 'opton' at line 1 column 22"
        )
    );
    let (status, _, body) = http(addr, "POST", ROUTE, Some("{\n  \"actions\": [\n}")).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Malformed JSON body: ") && body.ends_with("at line 3 column 1"),
        "{body}"
    );
    // A body that is fine gets through.
    let (status, _, body) = http(addr, "POST", ROUTE, Some(r#"{"actions":[]}"#)).await;
    assert_eq!((status, body.as_str()), (200, r#"{"message":""}"#));
}

#[tokio::test]
async fn a_wrong_content_type_names_the_one_expected() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let (status, content_type, body) = http_exact(
        addr,
        "POST",
        ROUTE,
        &[("Content-Type", "text/plain")],
        r#"{"actions":[]}"#,
    )
    .await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (
            400,
            TEXT,
            "Content-Type must be application/json, not text/plain"
        )
    );
    let (status, _, body) = http_exact(addr, "POST", ROUTE, &[], "{}").await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Content-Type must be application/json, not (none)")
    );
}

/// The error object of a JSON error answer, parsed.
fn error_object(content_type: &str, body: &str) -> Json {
    assert_eq!(content_type, "application/json");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn a_client_asking_for_json_gets_a_google_api_error_object() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let bad = r#"{"opton":1}"#;
    for accept in [
        "application/json",
        "application/problem+json",
        "text/html, application/json;q=0.9",
    ] {
        let (status, content_type, body) =
            http_with_headers(addr, "POST", ROUTE, &[("Accept", accept)], Some(bad)).await;
        assert_eq!(status, 400, "{accept}");
        assert_eq!(
            error_object(&content_type, &body),
            json!({"error": {
                "code": 400,
                "message": "Malformed JSON body: unrecognized field name 'opton' at line 1 column 8",
                "status": "INVALID_ARGUMENT",
            }}),
            "{accept}"
        );
    }
    // Plain text stays the default, and wins when preferred.
    for accept in [
        "*/*",
        "text/plain, application/json",
        "application/json;q=0",
    ] {
        let (status, content_type, _) =
            http_with_headers(addr, "POST", ROUTE, &[("Accept", accept)], Some(bad)).await;
        assert_eq!((status, content_type.as_str()), (400, TEXT), "{accept}");
    }

    let json_accept = [("Accept", "application/json")];
    let (status, content_type, body) =
        http_with_headers(addr, "GET", "/no/such/route", &json_accept, None).await;
    assert_eq!(status, 404);
    assert_eq!(
        error_object(&content_type, &body),
        json!({"error": {
            "code": 404,
            "message": "No HTTP rule of the user function matches GET /no/such/route",
            "status": "NOT_FOUND",
        }})
    );

    // A user function failure: its text verbatim, as text by default...
    let fail = r#"{"actions":[{"fail":{"message":"expected failure"}}]}"#;
    let (status, content_type, body) = http(addr, "POST", ROUTE, Some(fail)).await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (500, TEXT, "expected failure")
    );
    // ...and in the error object when asked, with the gRPC code it gets there.
    let (status, content_type, body) =
        http_with_headers(addr, "POST", ROUTE, &json_accept, Some(fail)).await;
    assert_eq!(status, 500);
    assert_eq!(
        error_object(&content_type, &body),
        json!({"error": {"code": 500, "message": "expected failure", "status": "UNKNOWN"}})
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let s = start(tck_adapter::server()).await;
    let (proxy, _, _) = proxy_with(s.user_function.addr(), |config| {
        config.max_http_body = 64;
    })
    .await;
    let addr = proxy.local_addr();
    // Valid JSON padded with spaces to the length wanted.
    let body = |len: usize| format!("{{\"actions\":[]{}}}", " ".repeat(len - 14));
    assert_eq!(body(64).len(), 64);

    let (status, _, reply) = http(addr, "POST", ROUTE, Some(&body(64))).await;
    assert_eq!((status, reply.as_str()), (200, r#"{"message":""}"#));

    let (status, content_type, reply) = http(addr, "POST", ROUTE, Some(&body(65))).await;
    assert_eq!(
        (status, content_type.as_str(), reply.as_str()),
        (
            413,
            TEXT,
            "Request body too large: 65 bytes, the limit is 64 bytes"
        )
    );

    let (status, content_type, reply) = http_with_headers(
        addr,
        "POST",
        ROUTE,
        &[("Accept", "application/json")],
        Some(&body(65)),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(
        error_object(&content_type, &reply),
        json!({"error": {
            "code": 413,
            "message": "Request body too large: 65 bytes, the limit is 64 bytes",
            "status": "RESOURCE_EXHAUSTED",
        }})
    );

    // Without a Content-Length, the body is cut off as it arrives.
    let chunked = body(65);
    let (first, second) = chunked.split_at(40);
    let request = format!(
        "POST {ROUTE} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    let (status, _, reply) = exchange(addr, request.as_bytes()).await;
    assert_eq!(
        (status, reply.as_str()),
        (413, "Request body too large: the limit is 64 bytes")
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_malformed_grpc_request_is_invalid_argument_with_the_same_text_as_http() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();

    // Field 1 of `Request` is a string; a varint there does not decode.
    let status = grpc::<_, Response>(addr, PROCESS, 7_i64).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let prefix = "Invalid request to cloudstate.tck.model.EventSourcedTckModel.Process: \
                  the request is not a valid cloudstate.tck.model.Request: ";
    assert!(status.message().starts_with(prefix), "{status:?}");
    assert!(status.message().len() > prefix.len(), "{status:?}");

    let missing = "Invalid request to cloudstate.tck.model.EventSourcedTckModel.Process: \
                   the entity key [id] of cloudstate.tck.model.Request is empty";
    let empty = Request {
        id: String::new(),
        actions: vec![],
    };
    let status = grpc::<_, Response>(addr, PROCESS, empty).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::InvalidArgument, missing)
    );
    let (status, content_type, body) =
        http(addr, "POST", "/tck/model/eventsourced/", Some("{}")).await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (400, TEXT, missing)
    );

    // The proxy still serves well-formed requests.
    let ok = Request {
        id: "fine".into(),
        actions: vec![],
    };
    let reply: Response = grpc(addr, PROCESS, ok).await.unwrap();
    assert_eq!(reply.message, "");
}

/// Replies with the id of the entity the command reached, as `keyed.Echo`.
struct EchoId;

impl ValueEntity for EchoId {
    type State = Any;

    fn encode_state(&self, state: &Any) -> Any {
        state.clone()
    }

    fn decode_state(&self, state: &Any) -> Result<Any, PayloadError> {
        Ok(state.clone())
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        _: &mut ValueContext<'_, Self>,
    ) -> CommandResult {
        // `keyed.Echo` has the wire form of `StringValue`: field 1, a string.
        let echo = prost::Message::encode_to_vec(&command.entity_id().to_owned());
        Ok(Reply::message(Any {
            type_url: "type.googleapis.com/keyed.Echo".into(),
            value: echo,
        }))
    }
}

/// `tests/key_fixtures`, compiled with its imports, encoded as a user
/// function sends it.
fn renamed_key_descriptors() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut compiler = protox::Compiler::new([root.join("tests/key_fixtures")]).unwrap();
    compiler.include_imports(true);
    compiler.open_files(["keyed/keyed.proto"]).unwrap();
    compiler.encode_file_descriptor_set()
}

#[tokio::test]
async fn the_entity_key_is_found_by_the_option_number() {
    let descriptors = renamed_key_descriptors();
    let user_function = CloudState::new().descriptor_set(&descriptors).value_entity(
        "keyed.Keyed",
        EchoId,
        ValueEntityOptions::new("keyed"),
    );
    let s = start(user_function).await;
    let addr = s.proxy.local_addr();

    // Extension 1080, named `marks_the_key` here; `decoy` is marked with the
    // extension these descriptors call `cloudstate.entity_key` (51234).
    let (status, _, body) = http(
        addr,
        "POST",
        "/keyed.Keyed/Get",
        Some(r#"{"decoy":"d","id":"k1"}"#),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"entityId":"k1"}"#));

    // Extension 50002, named `marks_the_key_the_old_way` here.
    let (status, _, body) = http(
        addr,
        "POST",
        "/keyed.Keyed/GetLegacy",
        Some(r#"{"legacyId":"k2"}"#),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"entityId":"k2"}"#));

    // A decoy alone names no entity.
    let (status, _, body) = http(addr, "POST", "/keyed.Keyed/Get", Some(r#"{"decoy":"d"}"#)).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "Invalid request to keyed.Keyed.Get: the entity key [id] of keyed.Lookup is empty"
        )
    );
}
