//! Bad input to actions never crashes the user function and never affects
//! other calls: an unknown service, an empty streamed input, a payload that
//! does not decode, an unknown method and a panicking handler each get a
//! clear failure, and a good call on the same server still answers. Also:
//! call metadata in and reply metadata out, and client cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cloudstate_sdk::action::{BoxFuture, BoxStream};
use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate::{
    self as pb, Metadata, MetadataEntry, action::ActionResponse, metadata_entry::Value,
};
use cloudstate_sdk::testkit::{DriverStream, ProtocolDriver, TestServer, action as a};
use cloudstate_sdk::{
    ActionContext, ActionHandler, ActionMessage, ActionOptions, ActionReply, ActionResult,
    CloudState,
};
use futures_util::{StreamExt, stream};
use tck_adapter::proto::cloudstate::tck::model::action::{
    OtherRequest, ProcessGroup, ProcessStep, Reply, Request, Response, action_tck_model,
    process_step::Step,
};

const SVC: &str = "cloudstate.tck.model.action.ActionTckModel";
/// Served by [`Faulty`] in these tests.
const FAULTY: &str = "cloudstate.tck.model.action.ActionTwo";
const REQUEST_URL: &str = "type.googleapis.com/cloudstate.tck.model.action.Request";
const EMPTY_STREAM: &str = "Cloudstate protocol failure: expected command message with service name and command name, but got empty stream";

/// Replies with the request id (streamed in: the last one, or at once on
/// `stop`); panics for the id `panic` (while running)
/// and `panic-early` (before returning its future); echoes the `x-echo`
/// call metadata as reply metadata; sets `dropped` when a bidirectional
/// call's stream is dropped.
struct Faulty {
    dropped: Arc<AtomicBool>,
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn id_of(message: &ActionMessage) -> Result<String, cloudstate_sdk::Failure> {
    Ok(message.decode::<OtherRequest>()?.id)
}

fn answer(id: &str, ctx: &ActionContext) -> ActionResult {
    assert!(id != "panic", "boom: secret internals");
    let reply = ActionReply::encode(&Response {
        message: id.to_owned(),
    });
    Ok(match ctx.metadata_value("x-echo") {
        Some(v) => reply.with_metadata(metadata("x-echo", v)),
        None => reply,
    })
}

impl ActionHandler for Faulty {
    fn handle_unary(
        self: Arc<Self>,
        message: ActionMessage,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        let id = id_of(&message);
        assert!(id.as_deref().ok() != Some("panic-early"), "early boom");
        Box::pin(async move { answer(&id?, &ctx) })
    }

    fn handle_streamed_in(
        self: Arc<Self>,
        mut input: BoxStream<'static, ActionMessage>,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async move {
            let mut last = String::new();
            while let Some(message) = input.next().await {
                last = id_of(&message)?;
                assert!(last != "panic", "boom");
                if last == "stop" {
                    break;
                }
            }
            answer(&last, &ctx)
        })
    }

    fn handle_streamed_out(
        self: Arc<Self>,
        message: ActionMessage,
        ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        let id = id_of(&message).unwrap_or_default();
        stream::iter(["first".to_owned(), id])
            .map(move |id| answer(&id, &ctx))
            .boxed()
    }

    fn handle_streamed(
        self: Arc<Self>,
        input: BoxStream<'static, ActionMessage>,
        ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        let flag = DropFlag(Arc::clone(&self.dropped));
        input
            .map(move |message| {
                let _keep = &flag;
                answer(&id_of(&message)?, &ctx)
            })
            .boxed()
    }
}

struct Setup {
    server: TestServer,
    driver: ProtocolDriver,
    dropped: Arc<AtomicBool>,
}

async fn setup() -> Setup {
    let dropped = Arc::new(AtomicBool::new(false));
    let server = CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .register(
            action_tck_model::Action(tck_adapter::action::TckModel),
            ActionOptions::new(),
        )
        .action(
            FAULTY,
            Faulty {
                dropped: Arc::clone(&dropped),
            },
        );
    let server = TestServer::start(server).await;
    let driver = server.driver().await.with_timeout(Duration::from_secs(5));
    Setup {
        server,
        driver,
        dropped,
    }
}

fn metadata(key: &str, value: &str) -> Metadata {
    Metadata {
        entries: vec![MetadataEntry {
            key: key.to_owned(),
            value: Some(Value::StringValue(value.to_owned())),
        }],
    }
}

fn other(id: &str) -> OtherRequest {
    OtherRequest { id: id.to_owned() }
}

fn response(m: &str) -> Response {
    Response {
        message: m.to_owned(),
    }
}

fn failed(description: &str) -> ActionResponse {
    a::failure(description).build()
}

fn undecodable() -> Any {
    // Field 1, length 5, but one byte follows.
    Any {
        type_url: REQUEST_URL.to_owned(),
        value: vec![0x0a, 0x05, 0x01],
    }
}

fn panicked(command: &str) -> ActionResponse {
    failed(&format!(
        "Unexpected error handling command [{command}] of service [{FAULTY}]"
    ))
}

/// A good call still works.
async fn still_serving(driver: &ProtocolDriver) {
    let request = Request {
        groups: vec![ProcessGroup {
            steps: vec![ProcessStep {
                step: Some(Step::Reply(Reply {
                    message: "ok".into(),
                })),
            }],
        }],
    };
    let actual = driver
        .action_unary(a::command(SVC, "ProcessUnary", &request))
        .await
        .unwrap();
    assert_eq!(actual, a::reply(&response("ok")).build());
}

async fn expect_one(
    mut stream: DriverStream<pb::action::ActionCommand, ActionResponse>,
    expected: ActionResponse,
) {
    stream.expect(expected).await;
    stream.passivate().await;
}

#[tokio::test]
async fn unknown_service_in_every_call_shape() {
    let s = setup().await;
    let unknown = failed("Unknown service: no.Such");
    let actual = s
        .driver
        .action_unary(a::command("no.Such", "Call", &other("x")))
        .await
        .unwrap();
    assert_eq!(actual, unknown);

    let call = s.driver.action_streamed_in().await;
    call.send(a::start("no.Such", "Call")).await;
    call.expect(unknown.clone()).await;

    let mut out = s
        .driver
        .action_streamed_out(a::command("no.Such", "Call", &other("x")))
        .await;
    out.expect(unknown.clone()).await;
    out.expect_closed().await;

    let bidi = s.driver.action_streamed().await;
    bidi.send(a::start("no.Such", "Call")).await;
    expect_one(bidi, unknown).await;
    still_serving(&s.driver).await;
}

#[tokio::test]
async fn empty_streamed_input_is_a_protocol_failure() {
    let s = setup().await;
    let call = s.driver.action_streamed_in().await;
    call.expect(failed(EMPTY_STREAM)).await;
    let mut bidi = s.driver.action_streamed().await;
    bidi.complete();
    bidi.expect(failed(EMPTY_STREAM)).await;
    bidi.expect_closed().await;
    still_serving(&s.driver).await;
}

#[tokio::test]
async fn undecodable_payloads_fail_the_call_or_the_element() {
    let s = setup().await;
    let decode_error = "Protocol error: payload with type URL [type.googleapis.com/cloudstate.tck.model.action.Request] could not be decoded as cloudstate.tck.model.action.Request";
    let check = |actual: ActionResponse| {
        let Some(pb::action::action_response::Response::Failure(f)) = &actual.response else {
            panic!("expected a failure, got {actual:?}")
        };
        assert!(f.description.starts_with(decode_error), "{f:?}");
        assert_eq!(f.command_id, 0);
        assert!(!f.restart);
    };
    check(
        s.driver
            .action_unary(a::command_any(SVC, "ProcessUnary", Some(undecodable())))
            .await
            .unwrap(),
    );

    let mut call = s.driver.action_streamed_in().await;
    call.send(a::start(SVC, "ProcessStreamedIn")).await;
    call.send(a::element_any(undecodable())).await;
    call.complete();
    check(call.response().await.unwrap());

    let mut out = s
        .driver
        .action_streamed_out(a::command_any(
            SVC,
            "ProcessStreamedOut",
            Some(undecodable()),
        ))
        .await;
    check(out.next_message().await);
    out.expect_closed().await;

    // In a bidirectional call the bad element fails alone.
    let mut bidi = s.driver.action_streamed().await;
    bidi.send(a::start(SVC, "ProcessStreamed")).await;
    bidi.send(a::element_any(undecodable())).await;
    check(bidi.next_message().await);
    bidi.send(a::element(&Request {
        groups: vec![ProcessGroup { steps: vec![] }],
    }))
    .await;
    bidi.expect(a::no_reply()).await;
    bidi.passivate().await;
    still_serving(&s.driver).await;
}

#[tokio::test]
async fn unknown_method_names_the_command_and_service() {
    let s = setup().await;
    let actual = s
        .driver
        .action_unary(a::command(SVC, "Nope", &Request::default()))
        .await
        .unwrap();
    assert_eq!(
        actual,
        failed(&format!(
            "No unary handler found for command [Nope] of action [{SVC}]"
        ))
    );
    // A streaming method called through the wrong shape.
    let mut out = s
        .driver
        .action_streamed_out(a::command(SVC, "ProcessUnary", &Request::default()))
        .await;
    out.expect(failed(&format!(
        "No streamed-out handler found for command [ProcessUnary] of action [{SVC}]"
    )))
    .await;
    out.expect_closed().await;
    still_serving(&s.driver).await;
}

#[tokio::test]
async fn panics_become_generic_failures() {
    let s = setup().await;
    for id in ["panic", "panic-early"] {
        let actual = s
            .driver
            .action_unary(a::command(FAULTY, "Call", &other(id)))
            .await
            .unwrap();
        assert_eq!(actual, panicked("Call"), "{id}");
    }

    let call = s.driver.action_streamed_in().await;
    call.send(a::start(FAULTY, "In")).await;
    call.send(a::element(&other("panic"))).await;
    call.expect(panicked("In")).await;

    // The panic is the last element of a streamed output.
    let mut out = s
        .driver
        .action_streamed_out(a::command(FAULTY, "Out", &other("panic")))
        .await;
    out.expect(a::reply(&response("first"))).await;
    out.expect(panicked("Out")).await;
    out.expect_closed().await;

    let mut bidi = s.driver.action_streamed().await;
    bidi.send(a::start(FAULTY, "Both")).await;
    bidi.send(a::element(&other("one"))).await;
    bidi.expect(a::reply(&response("one"))).await;
    bidi.send(a::element(&other("panic"))).await;
    bidi.expect(panicked("Both")).await;
    bidi.expect_closed().await;
    still_serving(&s.driver).await;
}

#[tokio::test]
async fn call_metadata_reaches_the_handler_and_reply_metadata_goes_out() {
    let s = setup().await;
    let mut command = a::command(FAULTY, "Call", &other("m"));
    command.metadata = Some(metadata("X-Echo", "v"));
    let actual = s.driver.action_unary(command).await.unwrap();
    let Some(pb::action::action_response::Response::Reply(reply)) = actual.response else {
        panic!("expected a reply, got {actual:?}")
    };
    assert_eq!(reply.metadata, Some(metadata("x-echo", "v")));
    // Without metadata the reply has none (absent, not empty).
    let actual = s
        .driver
        .action_unary(a::command(FAULTY, "Call", &other("m")))
        .await
        .unwrap();
    assert_eq!(actual, a::reply(&response("m")).build());
}

#[tokio::test]
async fn cancelled_bidirectional_call_drops_the_handler() {
    let s = setup().await;
    let mut bidi = s.driver.action_streamed().await;
    bidi.send(a::start(FAULTY, "Both")).await;
    bidi.send(a::element(&other("one"))).await;
    bidi.expect(a::reply(&response("one"))).await;
    assert!(!s.dropped.load(Ordering::SeqCst));
    drop(bidi);
    tokio::time::timeout(Duration::from_secs(5), async {
        while !s.dropped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the handler's stream was not dropped after cancellation");
    still_serving(&s.driver).await;
    s.server.shutdown().await.unwrap();
}

/// A graceful shutdown ends the input of an open bidirectional call: it
/// completes with OK and the server stops without waiting out its grace.
#[tokio::test]
async fn shutdown_completes_open_bidirectional_calls() {
    let mut s = setup().await;
    let mut bidi = s.driver.action_streamed().await;
    bidi.send(a::start(FAULTY, "Both")).await;
    bidi.send(a::element(&other("one"))).await;
    bidi.expect(a::reply(&response("one"))).await;
    s.server.signal_shutdown();
    bidi.expect_closed().await;
    tokio::time::timeout(Duration::from_secs(5), s.server.join())
        .await
        .expect("the server did not stop")
        .unwrap();
}

/// Registration refuses an action whose service is not described, and one
/// registered twice.
#[tokio::test]
async fn invalid_action_registrations_are_refused() {
    let faulty = || Faulty {
        dropped: Arc::default(),
    };
    let unknown = CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .action("no.Such", faulty());
    let e = TestServer::start(unknown).await.join().await.unwrap_err();
    assert!(
        e.to_string()
            .contains("service [no.Such] is not in the descriptor sets"),
        "{e}"
    );
    let twice = CloudState::new()
        .descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET)
        .action(FAULTY, faulty())
        .action(FAULTY, faulty());
    let e = TestServer::start(twice).await.join().await.unwrap_err();
    assert!(e.to_string().contains("registered twice"), "{e}");
}

/// A streamed-in handler may answer before the input completes; the call is
/// then over.
#[tokio::test]
async fn streamed_in_may_answer_before_the_input_completes() {
    let s = setup().await;
    let call = s.driver.action_streamed_in().await;
    call.send(a::start(FAULTY, "In")).await;
    call.send(a::element(&other("a"))).await;
    call.send(a::element(&other("stop"))).await;
    // The input is still open.
    assert_eq!(
        call.response().await.unwrap(),
        a::reply(&response("stop")).build()
    );
    still_serving(&s.driver).await;
}

#[tokio::test]
async fn a_reply_too_large_to_send_becomes_a_failure_naming_its_size() {
    let s = TestServer::start(tck_adapter::server().max_reply_size(1024)).await;
    let driver = s.driver().await;
    let big = |message: String| Request {
        groups: vec![ProcessGroup {
            steps: vec![ProcessStep {
                step: Some(Step::Reply(Reply { message })),
            }],
        }],
    };
    let check = |actual: &ActionResponse| {
        let Some(pb::action::action_response::Response::Failure(f)) = &actual.response else {
            panic!("expected a failure, got {actual:?}")
        };
        assert!(
            f.description.starts_with("The reply to command [")
                && f.description.contains("over the 1024-byte limit"),
            "{f:?}"
        );
    };
    let actual = driver
        .action_unary(a::command(SVC, "ProcessUnary", &big("m".repeat(2000))))
        .await
        .unwrap();
    check(&actual);
    // Each element of a streamed reply is checked too.
    let mut out = driver
        .action_streamed_out(a::command(
            SVC,
            "ProcessStreamedOut",
            &big("m".repeat(2000)),
        ))
        .await;
    check(&out.next_message().await);
    still_serving(&driver).await;
}
