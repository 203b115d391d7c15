//! The eventing golden output compiles against the SDK, and over gRPC the
//! generated action hands its `Any` subscriber the declared event types
//! decoded (JSON by type name, protobuf by message name) and anything else
//! as `Other`; its reply carries the CloudEvent attributes it sets for the
//! topic it publishes to.

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
    include!("golden/eventing/cloudstate_modules.rs");
    include!("golden/eventing/cloudstate_payloads.rs");

    /// Registration adds this set, and the test adds the real one, generated
    /// from the fixture at run time.
    const FILE_DESCRIPTOR_SET: &[u8] = &[];
}
use proto::example;

use std::path::Path;

use cloudstate_sdk::metadata::CloudEventAttributes;
use cloudstate_sdk::payload::{self, Any, Json, Payload};
use cloudstate_sdk::protocol::cloudstate as pb;
use cloudstate_sdk::protocol::cloudstate::action::action_response::Response;
use cloudstate_sdk::testkit::{TestServer, action as a};
use cloudstate_sdk::{
    ActionContext, ActionOptions, ActionReply, ActionResult, CloudState, CommandResult,
    EventSourcedOptions, done,
};
use example::eventing::{AddItem, CartCleared, ItemAdded, Notice, cart, cart_listener};

/// The JSON events, as a user's crate would have them.
mod events {
    #[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Debug)]
    pub(crate) struct ItemMoved {
        pub(crate) product: String,
        pub(crate) to: String,
    }

    #[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Debug)]
    pub(crate) struct Note {
        pub(crate) text: String,
    }
}
use events::{ItemMoved, Note};

/// A cart emitting its events; only the event log matters here.
struct Cart;

impl cart::Cart for Cart {
    type State = ();

    fn initial_state(&self, _: &str) {}

    fn on_item_added(&self, (): &mut (), _: &ItemAdded) {}

    fn on_cart_cleared(&self, (): &mut (), _: &CartCleared) {}

    fn on_item_moved(&self, (): &mut (), _: &ItemMoved) {}

    fn add(&self, request: AddItem, ctx: &mut cart::Context<'_, Self>) -> CommandResult<()> {
        ctx.emit(ItemAdded {
            product: request.product,
        });
        done()
    }
}

/// Answers each event of the cart's log with a notice, published (by the
/// proxy) to `ON_OTHER_TOPIC` as a CloudEvent about the cart.
struct Listener;

impl cart_listener::CartListener for Listener {
    async fn on_item_added(&self, _: ItemAdded, _: ActionContext) -> ActionResult<()> {
        Ok(ActionReply::message(()))
    }

    async fn on_other(
        &self,
        event: cart_listener::OnOtherInput,
        ctx: ActionContext,
    ) -> ActionResult<Notice> {
        use cart_listener::OnOtherInput;
        let text = match event {
            OnOtherInput::ItemMoved(moved) => format!("{} moved to {}", moved.product, moved.to),
            OnOtherInput::Note(note) => format!("note: {}", note.text),
            OnOtherInput::CartCleared(CartCleared {}) => "cleared".to_owned(),
            OnOtherInput::Other(any) => format!("other: {}", any.type_url),
        };
        let event = ctx.metadata().cloud_event();
        let cart_id = event.and_then(|e| e.subject()).unwrap_or("?").to_owned();
        let id = event.map(|e| e.id()).unwrap_or("?").to_owned();
        let attributes = CloudEventAttributes::new(id, "cart-listener", "example.eventing.Notice")
            .subject(cart_id);
        Ok(ActionReply::message(Notice { text }).with_metadata(attributes.into()))
    }

    async fn digest(&self, notice: Notice, _: ActionContext) -> ActionResult<Notice> {
        Ok(ActionReply::message(notice))
    }
}

fn descriptor_set() -> Vec<u8> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = std::env::temp_dir().join(format!(
        "cloudstate-build-eventing-compiles-{}",
        std::process::id()
    ));
    cloudstate_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .event_sourced(
            cloudstate_build::EventSourced::new("example.eventing.Cart")
                .events(["example.eventing.ItemAdded", "example.eventing.CartCleared"])
                .json_event("crate::events::ItemMoved")
                .persistence_id("shopping-cart"),
        )
        .action(
            cloudstate_build::Action::new("example.eventing.CartListener")
                .json_events("OnOther", ["crate::events::ItemMoved"])
                .json_event_named("OnOther", "crate::events::Note", "com.example.Note")
                .events("OnOther", ["example.eventing.CartCleared"]),
        )
        .compile_protos(&["eventing/eventing.proto"], &[fixtures])
        .unwrap();
    let set = std::fs::read(out.join("cloudstate_descriptor_set.bin")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    set
}

fn entry(key: &str, value: &str) -> pb::MetadataEntry {
    pb::MetadataEntry {
        key: key.to_owned(),
        value: Some(pb::metadata_entry::Value::StringValue(value.to_owned())),
    }
}

/// An event of the cart `cart_id` at `offset` of the log, as the proxy
/// delivers it to `OnOther`.
fn delivered(event: Any, offset: &str, cart_id: &str) -> pb::action::ActionCommand {
    let type_url = event.type_url.clone();
    let mut command = a::command_any(cart_listener::SERVICE_NAME, "OnOther", Some(event));
    command.metadata = Some(pb::Metadata {
        entries: vec![
            entry("ce-id", offset),
            entry("ce-source", cart::PERSISTENCE_ID),
            entry("ce-specversion", "1.0"),
            entry("ce-type", &type_url),
            entry("Content-Type", "application/vnd.cloudstate.protobuf.any"),
            entry("ce-subject", cart_id),
        ],
    });
    command
}

/// The notice of a reply and its metadata as (key, value) pairs.
fn reply_of(response: Option<Response>) -> (Notice, Vec<(String, String)>) {
    let Some(Response::Reply(reply)) = response else {
        panic!("expected a reply, got {response:?}");
    };
    let notice = payload::decode::<Notice>(&reply.payload.unwrap_or_default()).unwrap();
    let metadata = reply
        .metadata
        .unwrap_or_default()
        .entries
        .into_iter()
        .map(|e| match e.value {
            Some(pb::metadata_entry::Value::StringValue(v)) => (e.key, v),
            other => panic!("unexpected metadata value {other:?}"),
        })
        .collect();
    (notice, metadata)
}

#[test]
fn generated_constants_name_the_declared_journal_and_topics() {
    assert_eq!(cart::PERSISTENCE_ID, "shopping-cart");
    assert_eq!(cart_listener::ON_OTHER_TOPIC, "cart-notices");
    assert_eq!(cart_listener::DIGEST_TOPIC, "cart-digests");
}

/// The typed input is a `Payload`: each variant round-trips through its
/// type URL, and a payload of another type stays as it came.
#[test]
fn typed_input_decodes_by_type_url() {
    use cart_listener::OnOtherInput;
    let moved = ItemMoved {
        product: "apple".into(),
        to: "bag".into(),
    };
    let any = OnOtherInput::ItemMoved(moved.clone()).to_any();
    assert_eq!(any, Json(moved.clone()).to_any());
    assert_eq!(
        OnOtherInput::from_any(&any).unwrap(),
        OnOtherInput::ItemMoved(moved)
    );
    let note = OnOtherInput::Note(Note { text: "hi".into() }).to_any();
    assert_eq!(note.type_url, "json.cloudstate.io/com.example.Note");
    let cleared = payload::encode(&CartCleared {});
    assert_eq!(
        OnOtherInput::from_any(&cleared).unwrap(),
        OnOtherInput::CartCleared(CartCleared {})
    );
    // `ItemAdded` is `OnItemAdded`'s, and a JSON type of another name is no
    // declared one: both are `Other`.
    for other in [
        payload::encode(&ItemAdded::default()),
        Json(Note { text: "x".into() }).to_any(),
        "text".to_owned().to_any(),
    ] {
        assert_eq!(
            OnOtherInput::from_any(&other).unwrap(),
            OnOtherInput::Other(other.clone())
        );
    }
    // A declared JSON type whose text is not that type is an error.
    let broken = payload::json::to_any("ItemMoved", &serde_json_value());
    assert!(OnOtherInput::from_any(&broken).is_err());
}

/// `{"product": 1}`: not an `ItemMoved`.
fn serde_json_value() -> std::collections::BTreeMap<String, u8> {
    std::collections::BTreeMap::from([("product".to_owned(), 1)])
}

#[tokio::test]
async fn the_any_subscriber_gets_typed_events_over_grpc() {
    let server = TestServer::start(
        CloudState::new()
            .descriptor_set(&descriptor_set())
            .register(
                cart::Entity(Cart),
                EventSourcedOptions::new(cart::PERSISTENCE_ID),
            )
            .register(cart_listener::Action(Listener), ActionOptions::new()),
    )
    .await;
    let driver = server.driver().await;
    let spec = driver
        .discover(cloudstate_sdk::testkit::proxy_info())
        .await
        .unwrap();
    let entity = spec
        .entities
        .iter()
        .find(|e| e.service_name == cart::SERVICE_NAME)
        .unwrap();
    assert_eq!(entity.persistence_id, cart::PERSISTENCE_ID);

    let moved = Json(ItemMoved {
        product: "apple".into(),
        to: "bag".into(),
    });
    let response = driver
        .action_unary(delivered(moved.to_any(), "7", "cart-1"))
        .await
        .unwrap();
    let (notice, metadata) = reply_of(response.response);
    assert_eq!(notice.text, "apple moved to bag");
    for (key, value) in [
        ("ce-id", "7"),
        ("ce-source", "cart-listener"),
        ("ce-specversion", "1.0"),
        ("ce-type", "example.eventing.Notice"),
        ("ce-subject", "cart-1"),
    ] {
        assert!(
            metadata.iter().any(|(k, v)| k == key && v == value),
            "{key}: {value} not in {metadata:?}"
        );
    }

    let cases = [
        (
            payload::json::to_any("com.example.Note", &Note { text: "hi".into() }),
            "note: hi".to_owned(),
        ),
        (payload::encode(&CartCleared {}), "cleared".to_owned()),
        (
            "text".to_owned().to_any(),
            "other: p.cloudstate.io/string".to_owned(),
        ),
    ];
    for (event, expected) in cases {
        let response = driver
            .action_unary(delivered(event, "8", "cart-2"))
            .await
            .unwrap();
        assert_eq!(reply_of(response.response).0.text, expected);
    }

    // A declared JSON type that does not decode fails the call, naming it.
    let broken = payload::json::to_any("ItemMoved", &serde_json_value());
    let response = driver
        .action_unary(delivered(broken, "9", "cart-3"))
        .await
        .unwrap();
    let Some(Response::Failure(failure)) = response.response else {
        panic!("expected a failure, got {response:?}");
    };
    assert!(failure.description.contains("ItemMoved"), "{failure:?}");
    server.shutdown().await.unwrap();
}
