//! `--cart-addr` against a user function that, like grpc-go, sends its
//! response headers only with its first reply: the benchmark must queue
//! `init` and the first command before it waits for the call, and accept
//! replies whatever their events.

use std::pin::Pin;
use std::process::Command;
use std::time::Duration;

use cloudstate_sdk::protocol::cloudstate::entity_discovery_server::{
    EntityDiscovery, EntityDiscoveryServer,
};
use cloudstate_sdk::protocol::cloudstate::eventsourced::event_sourced_server::{
    EventSourced, EventSourcedServer,
};
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, EventSourcedStreamOut, event_sourced_stream_in::Message as In,
};
use cloudstate_sdk::protocol::cloudstate::{
    Entity, EntitySpec, ProxyInfo, ServiceInfo, UserFunctionError,
};
use cloudstate_sdk::testkit::eventsourced as es;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

/// Answers every command with an empty reply carrying an event of its own
/// type, but only returns the call (and so its headers) once the first
/// command is in.
#[derive(Debug, Clone, Copy)]
struct LateHeaders;

fn answer(
    message: Result<EventSourcedStreamIn, Status>,
) -> Option<Result<EventSourcedStreamOut, Status>> {
    match message {
        Ok(EventSourcedStreamIn {
            message: Some(In::Command(command)),
        }) => Some(Ok(es::reply_empty(command.id)
            .event(&ServiceInfo::default())
            .build())),
        Ok(_) => None,
        Err(status) => Some(Err(status)),
    }
}

type Out = Pin<Box<dyn Stream<Item = Result<EventSourcedStreamOut, Status>> + Send>>;

#[tonic::async_trait]
impl EventSourced for LateHeaders {
    type handleStream = Out;

    async fn handle(
        &self,
        request: Request<Streaming<EventSourcedStreamIn>>,
    ) -> Result<Response<Out>, Status> {
        let mut input = request.into_inner();
        let first = loop {
            match input.next().await {
                Some(message) => {
                    if let Some(out) = answer(message) {
                        break out;
                    }
                }
                None => return Err(Status::cancelled("no command")),
            }
        };
        let rest = input.filter_map(answer);
        Ok(Response::new(Box::pin(
            tokio_stream::once(first).chain(rest),
        )))
    }
}

#[tonic::async_trait]
impl EntityDiscovery for LateHeaders {
    async fn discover(&self, _: Request<ProxyInfo>) -> Result<Response<EntitySpec>, Status> {
        Ok(Response::new(EntitySpec {
            entities: vec![Entity {
                entity_type: "cloudstate.eventsourced.EventSourced".to_owned(),
                service_name: "com.example.shoppingcart.ShoppingCart".to_owned(),
                persistence_id: "late-headers".to_owned(),
                ..Default::default()
            }],
            service_info: Some(ServiceInfo {
                service_name: "late-headers".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn report_error(&self, _: Request<UserFunctionError>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }
}

#[tokio::test]
async fn drives_a_user_function_that_sends_headers_with_its_first_reply() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EventSourcedServer::new(LateHeaders))
            .add_service(EntityDiscoveryServer::new(LateHeaders))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let bench = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cloudstate-bench"))
            .args([
                "--cart-addr",
                &addr.to_string(),
                "--commands",
                "40",
                "--concurrency",
                "1,4",
                "--warmup",
                "8",
                "--rounds",
                "1",
                "--threads",
                "2",
            ])
            .output()
            .expect("run cloudstate-bench")
    });
    let output = tokio::time::timeout(Duration::from_secs(30), bench)
        .await
        .expect("the benchmark hangs")
        .unwrap();
    server.abort();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(&format!("user function at {addr} (late-headers"))
            && stdout.contains("persistence id late-headers"),
        "{stdout}"
    );
    assert!(stdout.contains("cart cmd/s"), "{stdout}");
    // No targets for a user function that is not the SDK's cart.
    assert!(!stdout.contains("target:"), "{stdout}");
}
