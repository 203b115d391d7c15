//! The CRDT golden output compiles against the SDK, user implementations of
//! the generated traits build (one with `type State` and `#[crdt]`'s freely
//! named handlers, one plain with the state fixed by the declaration), and
//! the generated `Entity<T>`s serve the CRDT protocol: unary replies with
//! deltas, a server-streaming rpc's subscription, typed side effects.

/// The generated tree as `include_protos!()` lays it out, under lints that
/// generated code would trip without the allows it carries.
#[deny(
    dead_code,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications
)]
#[warn(clippy::pedantic, clippy::nursery)]
mod proto {
    include!("golden/presence/cloudstate_modules.rs");
    include!("golden/presence/cloudstate_payloads.rs");

    /// Registration adds this set, and the test adds the real one, generated
    /// from the fixture at run time.
    const FILE_DESCRIPTOR_SET: &[u8] = &[];
}
use proto::example;

use std::path::Path;

use cloudstate_sdk::crdt::{CrdtOptions, GCounter, LWWRegister, ORMap};
use cloudstate_sdk::payload::{self, Any, Payload};
use cloudstate_sdk::protocol::cloudstate as pb;
use cloudstate_sdk::protocol::cloudstate::crdt::{
    self as crdt_pb, CrdtStreamIn, CrdtStreamOut, crdt_client::CrdtClient, crdt_stream_in,
    crdt_stream_out,
};
use cloudstate_sdk::testkit::{CrdtTestKit, TestServer};
use cloudstate_sdk::{CloudState, CommandResult, Failure, Reply, TypedCall};
use example::presence::{Connect, Online, User, online, presence, visits};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn online(connections: u64) -> Online {
    Online {
        connections,
        ..Online::default()
    }
}

/// Counts connections; watchers hear of every change until there are five.
struct Presence;

#[cloudstate_sdk::crdt]
impl presence::Presence for Presence {
    type State = GCounter;

    fn initial_state(&self, _entity_id: &str) -> GCounter {
        GCounter::new()
    }

    #[command_handler(name = "Connect")]
    fn add_devices(
        &self,
        request: Connect,
        ctx: &mut presence::Context<'_, Self>,
    ) -> CommandResult<Online> {
        let connections = ctx.state_mut().increment(request.devices);
        Ok(online(connections).into())
    }

    #[command_handler(name = "Watch")]
    fn subscribe(
        &self,
        _request: User,
        ctx: &mut presence::StreamContext<'_, '_, Self, Online>,
    ) -> Result<Option<Reply<Online>>, Failure> {
        ctx.on_change(|change| {
            let connections = change.state().value();
            if connections >= 5 {
                change.end_stream();
            }
            Ok(Some(online(connections)))
        });
        Ok(Some(online(ctx.state().value()).into()))
    }
}

/// Each visitor's last device (always the web), each visit also a
/// connection of nobody.
struct Visits;

fn web() -> online::Device {
    online::Device { id: "web".into() }
}

impl visits::Visits for Visits {
    fn initial_state(&self, _entity_id: &str) -> ORMap<String, LWWRegister<online::Device>> {
        ORMap::new()
    }

    fn visit(&self, request: User, ctx: &mut visits::Context<'_>) -> CommandResult<()> {
        ctx.state_mut()
            .get_or_insert_with(request.name, || LWWRegister::new(web()))
            .set(web());
        ctx.effect(presence::connect(&nobody()), false);
        Ok(().into())
    }
}

fn nobody() -> Connect {
    Connect {
        name: "nobody".into(),
        devices: 0,
    }
}

/// The descriptor set of the fixture, as a build script would embed it.
fn descriptor_set() -> Vec<u8> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = std::env::temp_dir().join(format!(
        "cloudstate-build-crdt-compiles-{}",
        std::process::id()
    ));
    cloudstate_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .crdt(cloudstate_build::Crdt::new("example.presence.Presence"))
        .crdt(
            cloudstate_build::Crdt::new("example.presence.Visits")
                .state("ORMap<String, LWWRegister<example.presence.Online.Device>>"),
        )
        .compile_protos(&["presence/presence.proto"], &[fixtures])
        .unwrap();
    let set = std::fs::read(out.join("cloudstate_descriptor_set.bin")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    set
}

/// One `handle` stream, from the proxy's side.
struct Stream {
    input: mpsc::Sender<CrdtStreamIn>,
    output: tonic::Streaming<CrdtStreamOut>,
}

impl Stream {
    /// Opens a stream and sends `init` for `service`/`entity_id`, and
    /// `first`: the user function may answer the call only with its first
    /// message.
    async fn open(
        server: &TestServer,
        service: &str,
        entity_id: &str,
        first: CrdtStreamIn,
    ) -> Self {
        let mut client = CrdtClient::connect(format!("http://{}", server.addr()))
            .await
            .unwrap();
        let (input, rx) = mpsc::channel(16);
        let init = crdt_stream_in::Message::Init(crdt_pb::CrdtInit {
            service_name: service.into(),
            entity_id: entity_id.into(),
            delta: None,
        });
        for message in [in_message(init), first] {
            input.send(message).await.unwrap();
        }
        let output = client
            .handle(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Self { input, output }
    }

    async fn send(&self, message: CrdtStreamIn) {
        self.input.send(message).await.unwrap();
    }

    async fn next(&mut self) -> crdt_stream_out::Message {
        let next = tokio::time::timeout(
            cloudstate_sdk::testkit::DEFAULT_TIMEOUT,
            self.output.message(),
        );
        next.await
            .expect("no message in time")
            .unwrap()
            .and_then(|out| out.message)
            .expect("a message")
    }
}

fn in_message(message: crdt_stream_in::Message) -> CrdtStreamIn {
    CrdtStreamIn {
        message: Some(message),
    }
}

fn command(id: i64, name: &str, payload: Any, streamed: bool) -> CrdtStreamIn {
    in_message(crdt_stream_in::Message::Command(pb::Command {
        entity_id: "ann".into(),
        id,
        name: name.into(),
        payload: Some(payload),
        streamed,
        metadata: None,
    }))
}

fn client_reply(payload: Any) -> Option<pb::ClientAction> {
    Some(pb::ClientAction {
        action: Some(pb::client_action::Action::Reply(pb::Reply {
            payload: Some(payload),
            metadata: None,
        })),
    })
}

fn increment(by: u64) -> Option<crdt_pb::CrdtStateAction> {
    Some(crdt_pb::CrdtStateAction {
        write_consistency: 0,
        action: Some(crdt_pb::crdt_state_action::Action::Update(
            crdt_pb::CrdtDelta {
                delta: Some(crdt_pb::crdt_delta::Delta::Gcounter(
                    crdt_pb::GCounterDelta { increment: by },
                )),
            },
        )),
    })
}

fn reply(
    command_id: i64,
    payload: Any,
    state_action: Option<crdt_pb::CrdtStateAction>,
    streamed: bool,
) -> crdt_stream_out::Message {
    crdt_stream_out::Message::Reply(crdt_pb::CrdtReply {
        command_id,
        client_action: client_reply(payload),
        side_effects: Vec::new(),
        state_action,
        streamed,
    })
}

fn streamed(command_id: i64, message: &Online, end_stream: bool) -> crdt_stream_out::Message {
    crdt_stream_out::Message::StreamedMessage(crdt_pb::CrdtStreamedMessage {
        command_id,
        client_action: client_reply(message.to_any()),
        side_effects: Vec::new(),
        end_stream,
    })
}

#[tokio::test]
async fn generated_entities_serve_the_crdt_protocol() {
    let server = TestServer::start(
        CloudState::new()
            .descriptor_set(&descriptor_set())
            .register(presence::Entity(Presence), CrdtOptions::new())
            .register(visits::Entity(Visits), CrdtOptions::new()),
    )
    .await;
    let ann = || User { name: "ann".into() };
    let connect = |devices| {
        payload::encode(&Connect {
            name: "ann".into(),
            devices,
        })
    };

    // The streaming rpc subscribes and answers with the state now.
    let watch = command(1, "Watch", payload::encode(&ann()), true);
    let mut stream = Stream::open(&server, presence::SERVICE_NAME, "ann", watch).await;
    assert_eq!(
        stream.next().await,
        reply(1, online(0).to_any(), None, true)
    );
    // Each change goes out as a delta with the unary reply, then to the watcher.
    stream.send(command(2, "Connect", connect(2), false)).await;
    assert_eq!(
        stream.next().await,
        reply(2, online(2).to_any(), increment(2), false)
    );
    assert_eq!(stream.next().await, streamed(1, &online(2), false));
    stream.send(command(3, "Connect", connect(3), false)).await;
    assert_eq!(
        stream.next().await,
        reply(3, online(5).to_any(), increment(3), false)
    );
    assert_eq!(stream.next().await, streamed(1, &online(5), true));

    // The fixed-state entity replies `Empty`, with a typed side effect.
    let visit = command(1, "Visit", payload::encode(&ann()), false);
    let mut stream = Stream::open(&server, visits::SERVICE_NAME, "ann", visit).await;
    let crdt_stream_out::Message::Reply(visited) = stream.next().await else {
        panic!("expected a reply");
    };
    assert_eq!(visited.client_action, client_reply(payload::empty()));
    let added = crdt_pb::OrMapEntryDelta {
        key: Some("ann".to_owned().to_any()),
        delta: Some(crdt_pb::CrdtDelta {
            delta: Some(crdt_pb::crdt_delta::Delta::Lwwregister(
                crdt_pb::LwwRegisterDelta {
                    value: Some(web().to_any()),
                    clock: 0,
                    custom_clock_value: 0,
                },
            )),
        }),
    };
    let Some(crdt_pb::crdt_state_action::Action::Update(crdt_pb::CrdtDelta {
        delta: Some(crdt_pb::crdt_delta::Delta::Ormap(map)),
    })) = visited.state_action.and_then(|a| a.action)
    else {
        panic!("expected an ORMap delta");
    };
    assert_eq!(map.added, [added]);
    assert_eq!(
        visited.side_effects,
        [pb::SideEffect {
            service_name: "example.presence.Presence".into(),
            command_name: "Connect".into(),
            payload: Some(payload::encode(&nobody())),
            synchronous: false,
            metadata: None,
        }]
    );
    server.shutdown().await.unwrap();
}

/// The test kit takes the typed call builders, server-streaming ones
/// included, and hands back replies and stream messages typed.
#[test]
fn typed_calls_drive_the_test_kit() {
    let ann = || User { name: "ann".into() };
    let mut kit =
        CrdtTestKit::without_descriptors(presence::SERVICE_NAME, presence::Entity(Presence), "ann");
    let watch: TypedCall<Online> = presence::watch(&ann());
    let watching = kit.call_streamed(watch);
    assert!(watching.streamed());
    assert_eq!(watching.reply(), online(0));
    let connected = kit.call(presence::connect(&Connect {
        name: "ann".into(),
        devices: 5,
    }));
    assert_eq!(connected.reply(), online(5));
    let [notification] = connected.notifications() else {
        panic!("one watcher: {:?}", connected.notifications());
    };
    assert_eq!(notification.message::<Online>(), Some(online(5)));
    assert!(notification.end_stream());

    let mut kit =
        CrdtTestKit::without_descriptors(visits::SERVICE_NAME, visits::Entity(Visits), "room");
    let visited = kit.call(visits::visit(&ann()));
    let () = visited.reply();
    let last = kit.state().unwrap().get(&"ann".to_owned()).unwrap();
    assert_eq!(last.get(), &web());
}

/// The call builders carry the output type of their method; `Empty` is `()`.
#[test]
fn call_builders_are_typed() {
    let call: TypedCall<Online> = presence::connect(&nobody());
    assert_eq!(
        (call.service_name(), call.command_name()),
        ("example.presence.Presence", "Connect")
    );
    let _: TypedCall<()> = visits::visit(&User { name: "x".into() });
}

/// Nested messages are payloads too; map entries get no type of their own.
#[test]
fn nested_messages_are_payloads() {
    let device = online::Device { id: "phone".into() };
    let any = device.to_any();
    assert_eq!(
        any.type_url,
        "type.googleapis.com/example.presence.Online.Device"
    );
    assert_eq!(online::Device::from_any(&any).unwrap(), device);
    assert!(Online::from_any(&any).is_err());
}
