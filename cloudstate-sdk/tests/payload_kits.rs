//! JSON and primitive payloads, and metadata, through the in-memory test kits
//! of every kind, with hand-written entities.

use std::sync::Arc;

use cloudstate_sdk::action::{BoxFuture, BoxStream};
use cloudstate_sdk::crdt::{CrdtContext, CrdtEntity, LWWRegister};
use cloudstate_sdk::metadata::CloudEventAttributes;
use cloudstate_sdk::payload::{Any, Json, Payload, PayloadError};
use cloudstate_sdk::testkit::{
    ActionTestKit, CrdtTestKit, EventSourcedTestKit, ValueEntityTestKit,
};
use cloudstate_sdk::{
    ActionContext, ActionHandler, ActionMessage, ActionReply, ActionResult, Command,
    CommandContext, CommandResult, EventSourcedEntity, Failure, Metadata, Reply, ServiceCall,
    TypedCall, ValueContext, ValueEntity,
};

const SERVICE: &str = "example.Notes";

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
struct Note {
    text: String,
    stars: u8,
}

fn note(text: &str) -> Note {
    Note {
        text: text.into(),
        stars: 3,
    }
}

/// `Add(Json<Note>)` emits it and replies with the count (`i64`), with the
/// command's metadata and the CloudEvent id it may carry; `List(bool)`
/// replies with every note as JSON.
struct Notebook;

impl EventSourcedEntity for Notebook {
    type State = Vec<Note>;
    type Event = Json<Note>;

    fn initial_state(&self, _: &str) -> Vec<Note> {
        Vec::new()
    }
    fn apply_event(&self, state: &mut Vec<Note>, event: &Json<Note>) -> Result<(), PayloadError> {
        state.push(event.0.clone());
        Ok(())
    }
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CommandContext<'_, Self>,
    ) -> CommandResult {
        match command.name() {
            "Add" => {
                let added: Json<Note> = command.payload_as()?;
                ctx.emit(added);
                let mut metadata = ctx.metadata().clone();
                if let Some(event) = ctx.metadata().cloud_event() {
                    metadata.add("x-event-id", event.id());
                }
                Ok(Reply::of(&(ctx.state().len() as i64)).with_metadata(metadata))
            }
            "List" => {
                let _: bool = command.payload_as()?;
                Ok(Reply::of(&Json(ctx.state().clone())))
            }
            other => Err(Failure::new(format!("unknown {other}"))),
        }
    }
    fn snapshot(&self, state: &Vec<Note>) -> Option<Any> {
        Some(Json(state.clone()).to_any())
    }
    fn restore(&self, _: &str, snapshot: &Any) -> Result<Vec<Note>, PayloadError> {
        Json::<Vec<Note>>::from_any(snapshot).map(|Json(notes)| notes)
    }
}

fn add(n: &Note) -> TypedCall<i64> {
    TypedCall::new(ServiceCall::of(SERVICE, "Add", &Json(n.clone())))
}

fn list() -> TypedCall<Json<Vec<Note>>> {
    TypedCall::new(ServiceCall::of(SERVICE, "List", &true))
}

#[test]
fn event_sourced_json_events_snapshots_and_primitive_replies() {
    let mut kit =
        EventSourcedTestKit::without_descriptors(SERVICE, Notebook, "n").snapshot_every(2);
    let first = kit.call(add(&note("a")));
    assert_eq!(first.reply(), 1);
    assert_eq!(first.events(), [Json(note("a"))]);
    assert_eq!(first.snapshot::<Json<Vec<Note>>>(), None);
    let second = kit.call(add(&note("b")));
    assert_eq!(second.reply(), 2);
    assert_eq!(
        second.snapshot::<Json<Vec<Note>>>(),
        Some(Json(vec![note("a"), note("b")]))
    );
    assert_eq!(kit.call(list()).reply(), Json(vec![note("a"), note("b")]));
    assert_eq!(kit.journal(), [Json(note("a")), Json(note("b"))]);

    // A payload of another type is a failure naming both types.
    let wrong = kit.call(TypedCall::<i64>::new(ServiceCall::of(
        SERVICE, "Add", &7i64,
    )));
    let failure = wrong.failure().expect("a failure");
    assert!(failure.contains("json.cloudstate.io/Note"), "{failure}");
    assert!(failure.contains("p.cloudstate.io/int64"), "{failure}");
}

#[test]
fn event_sourced_handlers_see_call_metadata() {
    let mut kit = EventSourcedTestKit::without_descriptors(SERVICE, Notebook, "n");
    let metadata = Metadata::new()
        .with("x-user", "ann")
        .with_cloud_event(&CloudEventAttributes::new("e-1", "src", "T"));
    let outcome = kit.call(add(&note("a")).with_metadata(metadata.clone()));
    let sent = outcome.reply_metadata().expect("reply metadata");
    assert_eq!(sent.get("x-user"), Some("ann"));
    assert_eq!(sent.get("x-event-id"), Some("e-1"));
    // Without metadata the reply has none.
    assert_eq!(kit.call(add(&note("b"))).reply_metadata(), None);
}

/// The state is one string primitive; `Set(String)` replaces it and replies
/// with the old one, `Forward(String)` forwards with the command's metadata.
struct Label;

impl ValueEntity for Label {
    type State = String;

    fn encode_state(&self, state: &String) -> Any {
        state.to_any()
    }
    fn decode_state(&self, state: &Any) -> Result<String, PayloadError> {
        String::from_any(state)
    }
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut ValueContext<'_, Self>,
    ) -> CommandResult {
        let value: String = command.payload_as()?;
        if command.name() == "Forward" {
            let call =
                ServiceCall::of(SERVICE, "Set", &value).with_metadata(ctx.metadata().clone());
            return Ok(Reply::forward(call));
        }
        let old = ctx.state().cloned().unwrap_or_default();
        ctx.update(value);
        Ok(Reply::of(&old))
    }
}

#[test]
fn value_entity_primitive_state_and_forward_metadata() {
    let mut kit = ValueEntityTestKit::without_descriptors(SERVICE, Label, "l");
    let set = |v: &str| TypedCall::<String>::new(ServiceCall::of(SERVICE, "Set", &v.to_owned()));
    let first = kit.call(set("red"));
    assert_eq!(first.reply(), "");
    assert_eq!(first.state_change(), Some(Some(&"red".to_owned())));
    assert_eq!(kit.call(set("")).reply(), "red");
    // The empty string is stored as empty bytes.
    assert_eq!(kit.state(), Some(&String::new()));
    assert!(String::new().to_any().value.is_empty());

    let forward = TypedCall::<String>::new(ServiceCall::of(SERVICE, "Forward", &"x".to_owned()))
        .with_metadata(Metadata::new().with("x-trace", "t"));
    let outcome = kit.call(forward);
    let call = outcome.forward().expect("a forward");
    assert_eq!(call.payload(), &"x".to_owned().to_any());
    assert_eq!(call.metadata().and_then(|m| m.get("x-trace")), Some("t"));
}

/// A register of JSON notes: `Set(Json<Note>)` sets it, replying with the
/// previous note; the command's `x-stars` metadata overrides the stars.
struct Board;

impl CrdtEntity for Board {
    type State = LWWRegister<Json<Note>>;

    fn initial_state(&self, _: &str) -> LWWRegister<Json<Note>> {
        LWWRegister::new(Json(note("")))
    }
    fn handle_command(
        &self,
        command: &Command<'_>,
        ctx: &mut CrdtContext<'_, LWWRegister<Json<Note>>>,
    ) -> Result<Option<Reply>, Failure> {
        let Json(mut new) = command.payload_as::<Json<Note>>()?;
        if let Some(stars) = ctx.metadata().get("x-stars") {
            new.stars = stars.parse().map_err(Failure::from)?;
        }
        let old = ctx.state().get().clone();
        ctx.state_mut().set(Json(new));
        Ok(Some(Reply::of(&old)))
    }
}

#[test]
fn crdt_json_register_values_and_command_metadata() {
    let mut kit = CrdtTestKit::without_descriptors(SERVICE, Board, "b");
    let set =
        |n: &Note| TypedCall::<Json<Note>>::new(ServiceCall::of(SERVICE, "Set", &Json(n.clone())));
    assert_eq!(kit.call(set(&note("a"))).reply(), Json(note("")));
    let outcome = kit.call(set(&note("b")).with_metadata(Metadata::new().with("x-stars", "5")));
    assert_eq!(outcome.reply(), Json(note("a")));
    let expected = Note {
        text: "b".into(),
        stars: 5,
    };
    assert_eq!(kit.state().map(|r| r.get().clone()), Some(Json(expected)));
}

/// Replies to any JSON note with its text as a string primitive, with the
/// call's metadata.
struct Reader;

impl ActionHandler for Reader {
    fn handle_unary(
        self: Arc<Self>,
        m: ActionMessage,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async move {
            let Json(n) = m.payload_as::<Json<Note>>()?;
            Ok(ActionReply::of(&n.text).with_metadata(ctx.metadata().clone()))
        })
    }
    fn handle_streamed_in(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async { Err(Failure::new("unary only")) })
    }
    fn handle_streamed_out(
        self: Arc<Self>,
        _: ActionMessage,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        Box::pin(futures_util::stream::empty())
    }
    fn handle_streamed(
        self: Arc<Self>,
        _: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        Box::pin(futures_util::stream::empty())
    }
}

#[tokio::test]
async fn action_json_input_primitive_reply_and_metadata() {
    let kit = ActionTestKit::without_descriptors(SERVICE, Reader);
    let call = TypedCall::<String>::new(ServiceCall::of(SERVICE, "Read", &Json(note("hey"))))
        .with_metadata(Metadata::new().with("x-k", "v"));
    let outcome = kit.call(call).await;
    assert_eq!(outcome.reply(), "hey");
    assert_eq!(
        outcome.reply_metadata().and_then(|m| m.get("x-k")),
        Some("v")
    );
    let wrong = kit
        .call(TypedCall::<String>::new(ServiceCall::of(
            SERVICE, "Read", &1.5f64,
        )))
        .await;
    let failure = wrong.failure().expect("a failure");
    assert!(
        failure.contains("json.cloudstate.io/Note") && failure.contains("p.cloudstate.io/double"),
        "{failure}"
    );
}
