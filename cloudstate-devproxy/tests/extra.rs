//! Reflection (brief §3.1 D2–D4) and the scenarios from the official proxy's
//! code (§3.7 X3–X7), with a user function that misbehaves on purpose.

mod support;

use cloudstate_devproxy::{Observed, Store};
use cloudstate_sdk::payload::{self, Any};
use cloudstate_sdk::protocol::cloudstate::{Metadata, MetadataEntry, metadata_entry::Value};
use cloudstate_sdk::{
    CloudState, Command, CommandContext, CommandResult, EventSourcedEntity, EventSourcedOptions,
    PayloadError, Reply, ServiceCall,
};
use support::{grpc, http, start, start_with, until};
use tck_adapter::proto::cloudstate::tck::model::{Persisted, Request, Response};
use tonic_reflection::pb::v1alpha::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

const SVC: &str = "cloudstate.tck.model.EventSourcedTckModel";
const PROCESS: &str = "/cloudstate.tck.model.EventSourcedTckModel/Process";

async fn reflect(addr: std::net::SocketAddr, request: MessageRequest) -> MessageResponse {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    answers
        .message()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
}

#[tokio::test]
async fn reflection_lists_sorted_services_and_answers_unknown_symbols_empty() {
    let s = start(tck_adapter::server()).await;
    let addr = s.proxy.local_addr();
    let expected = vec![
        "grpc.reflection.v1alpha.ServerReflection",
        "cloudstate.tck.model.EventSourcedConfigured",
        "cloudstate.tck.model.EventSourcedTckModel",
        "cloudstate.tck.model.EventSourcedTwo",
        "cloudstate.tck.model.action.ActionTckModel",
        "cloudstate.tck.model.action.ActionTwo",
        "cloudstate.tck.model.crdt.CrdtConfigured",
        "cloudstate.tck.model.crdt.CrdtTckModel",
        "cloudstate.tck.model.crdt.CrdtTwo",
        "cloudstate.tck.model.eventlogeventing.EventLogSubscriberModel",
        "cloudstate.tck.model.eventlogeventing.EventSourcedEntityOne",
        "cloudstate.tck.model.eventlogeventing.EventSourcedEntityTwo",
        "cloudstate.tck.model.valueentity.ValueEntityConfigured",
        "cloudstate.tck.model.valueentity.ValueEntityTckModel",
        "cloudstate.tck.model.valueentity.ValueEntityTwo",
    ];
    for filter in ["", "nonsense.blabla."] {
        let MessageResponse::ListServicesResponse(list) =
            reflect(addr, MessageRequest::ListServices(filter.into())).await
        else {
            panic!("not a service list")
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, expected);
    }
    let MessageResponse::FileDescriptorResponse(files) = reflect(
        addr,
        MessageRequest::FileContainingSymbol("nonsense.blabla.Void".into()),
    )
    .await
    else {
        panic!("not a file response")
    };
    assert!(files.file_descriptor_proto.is_empty());
    let MessageResponse::FileDescriptorResponse(files) =
        reflect(addr, MessageRequest::FileContainingSymbol(SVC.into())).await
    else {
        panic!("not a file response")
    };
    let names: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|f| {
            <prost_types::FileDescriptorProto as prost::Message>::decode(f.as_slice())
                .unwrap()
                .name()
                .to_owned()
        })
        .collect();
    assert!(
        names.contains(&"cloudstate/tck/model/eventsourced.proto".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"google/api/http.proto".to_owned()),
        "imports come along: {names:?}"
    );
}

/// Misbehaves according to the request id, on the TCK model's service.
struct Misbehaving;

impl EventSourcedEntity for Misbehaving {
    type State = ();
    type Event = Any;

    fn initial_state(&self, _: &str) {}

    fn apply_event(&self, _: &mut (), event: &Any) -> Result<(), PayloadError> {
        // Only `Persisted` is known; anything else fails the stream on replay.
        payload::decode::<Persisted>(event).map(|_| ())
    }

    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        let request: Request = command.decode()?;
        Ok(match request.id.as_str() {
            "wrong-type" => Reply::encode(&Persisted {
                value: "not a Response".into(),
            }),
            "unknown-forward" => {
                Reply::forward(ServiceCall::message("no.such.Service", "Call", &request))
            }
            "with-metadata" => Reply::encode(&Response {
                message: "m".into(),
            })
            .with_metadata(Metadata {
                entries: vec![MetadataEntry {
                    key: "x-foo".into(),
                    value: Some(Value::StringValue("bar".into())),
                }],
            }),
            "sync-effect" => {
                let call = ServiceCall::message(
                    SVC,
                    "Process",
                    &Request {
                        id: "effect-target".into(),
                        actions: vec![],
                    },
                );
                ctx.effect(call, true);
                Reply::encode(&Response {
                    message: "after effect".into(),
                })
            }
            _ => Reply::encode(&Response {
                message: request.id,
            }),
        })
    }
}

fn misbehaving() -> CloudState {
    CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .event_sourced(SVC, Misbehaving, EventSourcedOptions::new("misbehaving"))
}

fn req(id: &str) -> Request {
    Request {
        id: id.into(),
        actions: vec![],
    }
}

#[tokio::test]
async fn x3_wrong_reply_type_still_answers_and_is_reported() {
    let mut s = start(misbehaving()).await;
    let got: Persisted = grpc(s.proxy.local_addr(), PROCESS, req("wrong-type"))
        .await
        .unwrap();
    assert_eq!(got.value, "not a Response", "the bytes go through");
    let seen = until(&mut s.observed, |o| matches!(o, Observed::ReportError(_))).await;
    let Some(Observed::ReportError(text)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(
        text,
        "Warning: cloudstate.tck.model.EventSourcedTckModel.Process: Expected reply type_url to be \
         [type.googleapis.com/cloudstate.tck.model.Response] but was [type.googleapis.com/cloudstate.tck.model.Persisted]."
    );
}

#[tokio::test]
async fn x4_forward_to_an_unknown_service_is_internal_and_reported() {
    let mut s = start(misbehaving()).await;
    let status = grpc::<_, Response>(s.proxy.local_addr(), PROCESS, req("unknown-forward"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);
    let seen = until(&mut s.observed, |o| matches!(o, Observed::ReportError(_))).await;
    let Some(Observed::ReportError(text)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(
        text,
        "Service [no.such.Service] unknown\n  forwarded from cloudstate.tck.model.EventSourcedTckModel.Process"
    );
}

#[tokio::test]
async fn x5_a_synchronous_side_effect_completes_before_the_reply() {
    let mut s = start(misbehaving()).await;
    let got: Response = grpc(s.proxy.local_addr(), PROCESS, req("sync-effect"))
        .await
        .unwrap();
    assert_eq!(got.message, "after effect");
    // By the time the client has its reply, the side effect's entity has answered.
    let mut effect_answered = false;
    while let Ok(item) = s.observed.try_recv() {
        if let Observed::EventSourcedOut(_, out) = &item
            && *out
                == cloudstate_sdk::testkit::eventsourced::reply(
                    1,
                    &Response {
                        message: "effect-target".into(),
                    },
                )
                .build()
        {
            effect_answered = true;
            break;
        }
    }
    assert!(
        effect_answered,
        "the synchronous side effect ran before the reply"
    );
}

#[tokio::test]
async fn x6_reply_metadata_becomes_response_headers() {
    let s = start(misbehaving()).await;
    let addr = s.proxy.local_addr();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let response = client
        .unary(
            tonic::Request::new(req("with-metadata")),
            PROCESS.parse().unwrap(),
            tonic_prost::ProstCodec::<Request, Response>::default(),
        )
        .await
        .unwrap();
    assert_eq!(response.metadata().get("x-foo").unwrap(), "bar");
    let raw = http_headers(addr, "/tck/model/eventsourced/with-metadata", "{}").await;
    assert!(raw.to_ascii_lowercase().contains("x-foo: bar"), "{raw}");
}

async fn http_headers(addr: std::net::SocketAddr, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    raw
}

#[tokio::test]
async fn x7_a_stream_failure_fails_the_call_and_the_next_call_replays_again() {
    let store = Store::memory();
    let poison = Any {
        type_url: "type.googleapis.com/unknown.Event".into(),
        value: vec![],
    };
    store
        .append("misbehaving", "poisoned", 1, vec![poison], None)
        .await
        .unwrap();
    let mut s = start_with(misbehaving(), store).await;
    let addr = s.proxy.local_addr();
    for _ in 0..2 {
        let status = grpc::<_, Response>(addr, PROCESS, req("poisoned"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unknown);
        assert_eq!(status.message(), "Unexpected entity failure");
        until(&mut s.observed, |o| {
            matches!(o, Observed::OutputClosed { .. })
        })
        .await;
    }
    // Other entities are untouched.
    let got: Response = grpc(addr, PROCESS, req("fine")).await.unwrap();
    assert_eq!(got.message, "fine");
    let (status, _, body) =
        http(addr, "POST", "/tck/model/eventsourced/poisoned", Some("{}")).await;
    assert_eq!((status, body.as_str()), (500, "Unexpected entity failure"));
}
