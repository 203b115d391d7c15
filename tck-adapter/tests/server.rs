//! The server around the entities: start-up validation, health, graceful
//! shutdown.

use std::sync::{Mutex, OnceLock, mpsc};

use cloudstate_sdk::payload::Any;
use cloudstate_sdk::testkit::{TestServer, eventsourced as es};
use cloudstate_sdk::{
    CloudState, Command, CommandContext, CommandResult, EventSourcedEntity, EventSourcedOptions,
    PayloadError, Reply,
};
use tck_adapter::proto::cloudstate::tck::model::event_sourced_tck_model::Entity;

const TCK_MODEL: Entity<tck_adapter::eventsourced::TckModel> =
    Entity(tck_adapter::eventsourced::TckModel);
use tck_adapter::proto::FILE_DESCRIPTOR_SET;
use tck_adapter::proto::cloudstate::tck::model::{Request, Response};

const SVC: &str = "cloudstate.tck.model.EventSourcedTckModel";

async fn start_error(server: CloudState) -> String {
    TestServer::start(server)
        .await
        .join()
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn registration_errors_stop_start_up_with_a_clear_message() {
    let base = || CloudState::new().descriptor_set(FILE_DESCRIPTOR_SET);

    let e = start_error(base().event_sourced(
        "com.example.Missing",
        TCK_MODEL,
        EventSourcedOptions::new("m"),
    ))
    .await;
    assert!(
        e.contains("service [com.example.Missing] is not in the descriptor sets"),
        "{e}"
    );

    let e = start_error(base().event_sourced(SVC, TCK_MODEL, EventSourcedOptions::new(""))).await;
    assert!(e.contains("empty persistence id"), "{e}");

    let e = start_error(
        base()
            .event_sourced(SVC, TCK_MODEL, EventSourcedOptions::new("same"))
            .event_sourced(
                "cloudstate.tck.model.EventSourcedTwo",
                TCK_MODEL,
                EventSourcedOptions::new("same"),
            ),
    )
    .await;
    assert!(e.contains("persistence id [same] is used by both"), "{e}");

    let e = start_error(base().event_sourced(
        "cloudstate.tck.model.action.ActionTckModel",
        TCK_MODEL,
        EventSourcedOptions::new("a"),
    ))
    .await;
    assert!(e.contains("has a streaming method"), "{e}");

    let e = start_error(base()).await;
    assert!(e.contains("no entities registered"), "{e}");

    // A set that lacks an import is refused before serving.
    let set = cloudstate_sdk::prost_types::FileDescriptorSet {
        file: vec![cloudstate_sdk::prost_types::FileDescriptorProto {
            name: Some("a.proto".into()),
            dependency: vec!["b.proto".into()],
            ..Default::default()
        }],
    };
    let e = start_error(
        base()
            .descriptor_set(&cloudstate_sdk::prost::Message::encode_to_vec(&set))
            .event_sourced(SVC, TCK_MODEL, EventSourcedOptions::new("m")),
    )
    .await;
    assert!(e.contains("[a.proto] imports [b.proto]"), "{e}");

    let e = start_error(CloudState::new().descriptor_set(b"\xff\xff").event_sourced(
        SVC,
        TCK_MODEL,
        EventSourcedOptions::new("m"),
    ))
    .await;
    assert!(e.contains("not a serialized FileDescriptorSet"), "{e}");
}

#[tokio::test]
async fn health_reports_serving_then_stops_with_the_server() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let server = TestServer::start(tck_adapter::server()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in [
        "",
        "cloudstate.EntityDiscovery",
        "cloudstate.eventsourced.EventSourced",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }
    server.shutdown().await.unwrap();
}

/// Signals from the handler to the test: "started", and back: "go on".
static GATE: OnceLock<Mutex<(mpsc::Sender<()>, mpsc::Receiver<()>)>> = OnceLock::new();

struct Slow;

impl EventSourcedEntity for Slow {
    type State = ();
    type Event = Any;
    fn initial_state(&self, _: &str) {}
    fn apply_event(&self, _: &mut (), event: &Any) -> Result<(), PayloadError> {
        Err(PayloadError::unhandled(event))
    }
    fn handle_command(
        &self,
        command: &Command<'_>,
        _: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        let request: Request = command.decode()?;
        let gate = GATE.get().unwrap().lock().unwrap();
        gate.0.send(()).unwrap();
        gate.1.recv().unwrap();
        Ok(Reply::encode(&Response {
            message: request.id,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_the_command_in_flight_and_ends_streams() {
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    GATE.set(Mutex::new((started_tx, go_rx))).unwrap();
    let mut server = TestServer::start(
        CloudState::new()
            .descriptor_set(FILE_DESCRIPTOR_SET)
            .event_sourced(SVC, Slow, EventSourcedOptions::new("slow")),
    )
    .await;
    let driver = server.driver().await;
    let mut idle = driver.event_sourced().await;
    idle.send(es::init(SVC, "idle")).await;
    let mut busy = driver.event_sourced().await;
    busy.send(es::init(SVC, "busy")).await;
    busy.send(es::command(
        1,
        "busy",
        "Process",
        &Request {
            id: "done".into(),
            actions: vec![],
        },
    ))
    .await;
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();

    server.signal_shutdown();
    go_tx.send(()).unwrap();

    busy.expect(es::reply(
        1,
        &Response {
            message: "done".into(),
        },
    ))
    .await;
    busy.expect_closed().await;
    idle.expect_closed().await;
    server.join().await.unwrap();
}
