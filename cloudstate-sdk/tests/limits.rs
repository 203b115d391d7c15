//! The user function's connections over real TCP: a client that stalls in
//! its HTTP/2 preface, an idle connection, and shutdown with a half preface,
//! an idle connection or a command in progress.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cloudstate_sdk::action::{BoxFuture, BoxStream};
use cloudstate_sdk::protocol::cloudstate::action::action_protocol_client::ActionProtocolClient;
use cloudstate_sdk::protocol::cloudstate::action::{ActionCommand, action_response};
use cloudstate_sdk::{
    ActionContext, ActionHandler, ActionMessage, ActionReply, ActionResult, CloudState, Payload,
};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Long enough that a test never waits it out.
const LONG: Duration = Duration::from_secs(10);

/// The shutdown grace of the shutdown tests: they must end well before it.
const GRACE: Duration = Duration::from_secs(30);

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An empty SETTINGS frame: what completes a client's connection preface.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Answers `t.Gate/Call` once the test opens its gate, telling it when the
/// command has arrived.
struct Gate {
    arrived: mpsc::UnboundedSender<()>,
    open: Mutex<Option<oneshot::Receiver<()>>>,
}

impl ActionHandler for Gate {
    fn handle_unary(
        self: Arc<Self>,
        _: ActionMessage,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async move {
            let _ = self.arrived.send(());
            if let Some(open) = self.open.lock().await.take() {
                let _ = open.await;
            }
            Ok(ActionReply::message("answered".to_owned().to_any()))
        })
    }

    fn handle_streamed_in(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async { Ok(ActionReply::no_reply()) })
    }

    fn handle_streamed_out(
        self: Arc<Self>,
        _: ActionMessage,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        futures_util::stream::empty().boxed()
    }

    fn handle_streamed(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        futures_util::stream::empty().boxed()
    }
}

/// The descriptors of `t.Gate`, one unary method `Call(M) returns (M)`.
fn gate_descriptors() -> Vec<u8> {
    use prost_types::{
        DescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
        ServiceDescriptorProto,
    };
    let set = FileDescriptorSet {
        file: vec![FileDescriptorProto {
            name: Some("t.proto".into()),
            package: Some("t".into()),
            message_type: vec![DescriptorProto {
                name: Some("M".into()),
                ..Default::default()
            }],
            service: vec![ServiceDescriptorProto {
                name: Some("Gate".into()),
                method: vec![MethodDescriptorProto {
                    name: Some("Call".into()),
                    input_type: Some(".t.M".into()),
                    output_type: Some(".t.M".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    prost::Message::encode_to_vec(&set)
}

/// A user function serving the gate, configured by `configure`.
struct Served {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), cloudstate_sdk::Error>>,
    arrivals: mpsc::UnboundedReceiver<()>,
    open: oneshot::Sender<()>,
}

async fn serve(configure: impl FnOnce(CloudState) -> CloudState) -> Served {
    let (arrived, arrivals) = mpsc::unbounded_channel();
    let (open, gate) = oneshot::channel();
    let server = CloudState::new()
        .descriptor_set(&gate_descriptors())
        .action(
            "t.Gate",
            Gate {
                arrived,
                open: Mutex::new(Some(gate)),
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(configure(server).serve_with_listener(listener, async move {
        let _ = stopped.await;
    }));
    Served {
        addr,
        stop,
        task,
        arrivals,
        open,
    }
}

/// Everything the server sends on `stream` until it closes it, or `None`
/// when it is still open after [`LONG`].
async fn until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut sent = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(LONG, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => sent.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(sent)
}

/// The types of the HTTP/2 frames in `bytes`.
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let length =
            usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + length).min(bytes.len())..];
    }
    types
}

const GOAWAY: u8 = 7;

/// A call to `t.Gate/Call` over the protocol, as the proxy makes it.
async fn call(
    addr: SocketAddr,
) -> Result<
    tonic::Response<cloudstate_sdk::protocol::cloudstate::action::ActionResponse>,
    tonic::Status,
> {
    let mut client = ActionProtocolClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to the user function");
    client
        .handle_unary(ActionCommand {
            service_name: "t.Gate".into(),
            name: "Call".into(),
            payload: Some(prost_types::Any {
                type_url: "type.googleapis.com/t.M".into(),
                value: Vec::new(),
            }),
            metadata: None,
        })
        .await
}

/// Waits until `addr` refuses connections: shutdown has begun.
async fn refusing(addr: SocketAddr) {
    tokio::time::timeout(LONG, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the user function stops accepting");
}

#[tokio::test]
async fn a_connection_stalled_in_its_preface_is_closed() {
    let served = serve(|s| s.handshake_timeout(Duration::from_millis(200))).await;
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream.write_all(&PREFACE[..16]).await.unwrap();
    assert!(
        until_closed(&mut stream).await.is_some(),
        "a half-prefaced connection stays open"
    );
    // The next client is served.
    served.open.send(()).unwrap();
    call(served.addr)
        .await
        .expect("served after the stalled one");
}

#[tokio::test]
async fn an_idle_connection_is_sent_goaway_and_closed() {
    let served = serve(|s| s.idle_timeout(Duration::from_millis(300))).await;
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream.write_all(PREFACE).await.unwrap();
    stream.write_all(SETTINGS).await.unwrap();
    let sent = until_closed(&mut stream)
        .await
        .expect("an idle connection stays open");
    assert!(
        frame_types(&sent).contains(&GOAWAY),
        "closed without GOAWAY: frames {:?}",
        frame_types(&sent)
    );
}

#[tokio::test]
async fn shutdown_closes_half_prefaced_and_idle_connections_at_once() {
    let mut served = serve(|s| s.shutdown_grace(GRACE)).await;
    let mut half = TcpStream::connect(served.addr).await.unwrap();
    half.write_all(&PREFACE[..16]).await.unwrap();
    // Answered after the half-prefaced one was accepted; its connection
    // then stays open, idle.
    let (open, arrivals) = (served.open, &mut served.arrivals);
    let answered = tokio::spawn(call(served.addr));
    arrivals.recv().await.expect("the command arrives");
    open.send(()).unwrap();
    answered.await.unwrap().expect("answered");
    served.stop.send(()).unwrap();
    tokio::time::timeout(GRACE / 2, served.task)
        .await
        .expect("shutdown waits for no half preface or idle connection")
        .unwrap()
        .unwrap();
    assert!(
        until_closed(&mut half).await.is_some(),
        "the half-prefaced connection outlived the shutdown"
    );
}

#[tokio::test]
async fn a_command_in_progress_at_shutdown_is_answered() {
    let mut served = serve(|s| s.shutdown_grace(GRACE)).await;
    let answered = tokio::spawn(call(served.addr));
    served.arrivals.recv().await.expect("the command arrives");
    served.stop.send(()).unwrap();
    refusing(served.addr).await;
    assert!(!served.task.is_finished(), "shutdown did not wait");
    served.open.send(()).unwrap();
    let answer = tokio::time::timeout(LONG, answered)
        .await
        .expect("the command is answered")
        .unwrap()
        .expect("answered with OK");
    let Some(action_response::Response::Reply(reply)) = answer.into_inner().response else {
        panic!("not a reply");
    };
    let payload = reply.payload.expect("a payload");
    assert_eq!(String::from_any(&payload).unwrap(), "answered");
    tokio::time::timeout(GRACE / 2, served.task)
        .await
        .expect("shutdown ends once the command is answered")
        .unwrap()
        .unwrap();
}
