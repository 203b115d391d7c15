//! Builders for CRDT protocol messages, in and out, and the delta of each
//! CRDT type.
//!
//! Optional fields stay absent unless a builder sets them, as the official
//! TCK's messages do. Set elements, map keys and register values given as
//! `&str` become `p.cloudstate.io/string` primitives ([`string`]), encoded
//! here by hand so that comparisons do not rest on the SDK's own encoder.
//!
//! ```
//! use cloudstate_sdk::testkit::crdt;
//! let init = crdt::init_with_delta("com.example.Likes", "post-1", crdt::gcounter(3));
//! let expected = crdt::reply_empty(1).update(crdt::gcounter(1)).build();
//! # let _ = (init, expected);
//! ```

use std::cmp::Ordering;

use super::message::{self, output_builder};
use crate::payload::{self, Any};
use crate::protocol::cloudstate::crdt::{
    CrdtClock, CrdtDelete, CrdtDelta, CrdtInit, CrdtReply, CrdtStateAction,
    CrdtStreamCancelledResponse, CrdtStreamIn, CrdtStreamOut, CrdtStreamedMessage,
    CrdtWriteConsistency, FlagDelta, GCounterDelta, GSetDelta, LwwRegisterDelta, OrMapDelta,
    OrMapEntryDelta, OrSetDelta, PnCounterDelta, VoteDelta, crdt_delta::Delta,
    crdt_state_action::Action as StateAction, crdt_stream_in::Message as In,
    crdt_stream_out::Message as Out,
};
use crate::protocol::cloudstate::{self as pb, client_action::Action};
use crate::testkit::DriverStream;

pub use crate::testkit::eventsourced::side_effect;

/// Type URL of a primitive string.
pub const STRING_TYPE_URL: &str = "p.cloudstate.io/string";

/// A `p.cloudstate.io/string` primitive: the string as field 1, and empty
/// bytes for the empty string.
pub fn string(value: &str) -> Any {
    let mut bytes = Vec::new();
    if !value.is_empty() {
        prost::encoding::string::encode(1, &value.to_owned(), &mut bytes);
    }
    Any {
        type_url: STRING_TYPE_URL.to_owned(),
        value: bytes,
    }
}

/// The string in a `p.cloudstate.io/string` primitive; `None` for any other
/// payload or bytes that do not decode.
pub fn read_string(any: &Any) -> Option<String> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Primitive {
        #[prost(string, tag = "1")]
        value: String,
    }
    if any.type_url != STRING_TYPE_URL {
        return None;
    }
    prost::Message::decode(any.value.as_slice())
        .ok()
        .map(|p: Primitive| p.value)
}

fn strings(values: &[&str]) -> Vec<Any> {
    values.iter().map(|v| string(v)).collect()
}

fn input(message: In) -> CrdtStreamIn {
    CrdtStreamIn {
        message: Some(message),
    }
}

/// `init` for an entity the proxy holds no value for (no delta).
pub fn init(service: &str, entity_id: &str) -> CrdtStreamIn {
    input(In::Init(CrdtInit {
        service_name: service.to_owned(),
        entity_id: entity_id.to_owned(),
        delta: None,
    }))
}

/// `init` with the proxy's value, as a delta against an empty CRDT.
pub fn init_with_delta(service: &str, entity_id: &str, delta: CrdtDelta) -> CrdtStreamIn {
    input(In::Init(CrdtInit {
        service_name: service.to_owned(),
        entity_id: entity_id.to_owned(),
        delta: Some(delta),
    }))
}

/// A `delta`: a change made elsewhere, or the first value after an `init`
/// without one.
pub fn delta(delta: CrdtDelta) -> CrdtStreamIn {
    input(In::Delta(delta))
}

/// A `delete`: the entity was deleted elsewhere.
pub fn delete() -> CrdtStreamIn {
    input(In::Delete(CrdtDelete {}))
}

/// A command of a unary method with a protobuf payload.
pub fn command<M: prost::Name>(id: i64, entity_id: &str, name: &str, message: &M) -> CrdtStreamIn {
    command_any(id, entity_id, name, Some(payload::encode(message)))
}

/// A command of a server-streaming method (`streamed` set) with a protobuf payload.
pub fn streamed_command<M: prost::Name>(
    id: i64,
    entity_id: &str,
    name: &str,
    message: &M,
) -> CrdtStreamIn {
    command_with(id, entity_id, name, Some(payload::encode(message)), true)
}

/// A command of a unary method with any payload (or none).
pub fn command_any(id: i64, entity_id: &str, name: &str, payload: Option<Any>) -> CrdtStreamIn {
    command_with(id, entity_id, name, payload, false)
}

/// A command with any payload (or none) and any `streamed` flag.
pub fn command_with(
    id: i64,
    entity_id: &str,
    name: &str,
    payload: Option<Any>,
    streamed: bool,
) -> CrdtStreamIn {
    input(In::Command(message::command(
        id, entity_id, name, payload, streamed, None,
    )))
}

/// A `stream_cancelled`: the client cancelled the streamed command `id`.
pub fn stream_cancelled(id: i64, entity_id: &str) -> CrdtStreamIn {
    input(In::StreamCancelled(pb::StreamCancelled {
        entity_id: entity_id.to_owned(),
        id,
    }))
}

/// A reply with a protobuf message.
pub fn reply<M: prost::Name>(command_id: i64, message: &M) -> ReplyBuilder {
    reply_any(command_id, payload::encode(message))
}

/// A reply with `google.protobuf.Empty`.
pub fn reply_empty(command_id: i64) -> ReplyBuilder {
    reply_any(command_id, payload::empty())
}

/// A reply with any payload.
pub fn reply_any(command_id: i64, payload: Any) -> ReplyBuilder {
    ReplyBuilder::new(command_id, Some(reply_action(payload)))
}

/// A reply without a client action ("no reply"), e.g. to a streamed command
/// that only subscribes.
pub fn no_reply(command_id: i64) -> ReplyBuilder {
    ReplyBuilder::new(command_id, None)
}

/// A forward to `service`/`command` with a protobuf payload.
pub fn forward<M: prost::Name>(
    command_id: i64,
    service: &str,
    command: &str,
    message: &M,
) -> ReplyBuilder {
    ReplyBuilder::new(
        command_id,
        Some(message::client(Action::Forward(message::forward(
            service, command, message,
        )))),
    )
}

/// A command failure: no state action, no side effects, not streamed,
/// `restart` false.
pub fn failure(command_id: i64, description: &str) -> CrdtStreamOut {
    ReplyBuilder::new(command_id, Some(failure_action(command_id, description))).build()
}

/// A stream-level failure.
pub fn stream_failure(command_id: i64, description: &str) -> CrdtStreamOut {
    CrdtStreamOut {
        message: Some(Out::Failure(message::failure(
            command_id,
            description,
            false,
        ))),
    }
}

fn reply_action(payload: Any) -> pb::ClientAction {
    message::client(Action::Reply(message::reply(payload)))
}

fn failure_action(command_id: i64, description: &str) -> pb::ClientAction {
    message::client(Action::Failure(message::failure(
        command_id,
        description,
        false,
    )))
}

fn update_action(delta: CrdtDelta) -> CrdtStateAction {
    CrdtStateAction {
        action: Some(StateAction::Update(delta)),
        write_consistency: CrdtWriteConsistency::Local.into(),
    }
}

fn delete_action() -> CrdtStateAction {
    CrdtStateAction {
        action: Some(StateAction::Delete(CrdtDelete {})),
        write_consistency: CrdtWriteConsistency::Local.into(),
    }
}

/// Sets the write consistency of a state action.
///
/// # Panics
/// When there is no state action yet (set the update or delete first).
#[track_caller]
fn set_consistency(action: Option<&mut CrdtStateAction>, consistency: CrdtWriteConsistency) {
    action
        .expect("set the update or delete before the write consistency")
        .write_consistency = consistency.into();
}

/// `update`, `delete` and `write_consistency` for a builder whose message
/// has a state action.
macro_rules! state_action_setters {
    ($builder:ident) => {
        impl $builder {
            /// Sets the state action to an update with `delta` (write consistency LOCAL).
            #[must_use]
            pub fn update(mut self, delta: CrdtDelta) -> Self {
                self.0.state_action = Some(update_action(delta));
                self
            }

            /// Sets the state action to a delete (write consistency LOCAL).
            #[must_use]
            pub fn delete(mut self) -> Self {
                self.0.state_action = Some(delete_action());
                self
            }

            /// Sets the write consistency of the update or delete.
            ///
            /// # Panics
            /// When neither [`update`](Self::update) nor [`delete`](Self::delete) was set.
            #[must_use]
            #[track_caller]
            pub fn write_consistency(mut self, consistency: CrdtWriteConsistency) -> Self {
                set_consistency(self.0.state_action.as_mut(), consistency);
                self
            }
        }
    };
}

state_action_setters!(ReplyBuilder);
state_action_setters!(CancelledBuilder);

/// Builds a `CrdtReply`; converts into the output message.
#[derive(Debug, Clone)]
pub struct ReplyBuilder(CrdtReply);

impl ReplyBuilder {
    fn new(command_id: i64, client_action: Option<pb::ClientAction>) -> Self {
        Self(CrdtReply {
            command_id,
            client_action,
            ..Default::default()
        })
    }

    /// Marks the reply as accepting the stream of a streamed command.
    #[must_use]
    pub fn streamed(mut self) -> Self {
        self.0.streamed = true;
        self
    }
}

output_builder!(ReplyBuilder, CrdtStreamOut, Out::Reply);

/// A streamed message to the subscriber `command_id` with a protobuf message.
pub fn streamed<M: prost::Name>(command_id: i64, message: &M) -> StreamedBuilder {
    streamed_any(command_id, payload::encode(message))
}

/// A streamed message with any payload.
pub fn streamed_any(command_id: i64, payload: Any) -> StreamedBuilder {
    StreamedBuilder::new(command_id, Some(reply_action(payload)))
}

/// A streamed message without a client action (side effects or
/// `end_stream` only).
pub fn streamed_no_reply(command_id: i64) -> StreamedBuilder {
    StreamedBuilder::new(command_id, None)
}

/// A streamed message that fails the subscriber `command_id`.
pub fn streamed_failure(command_id: i64, description: &str) -> StreamedBuilder {
    StreamedBuilder::new(command_id, Some(failure_action(command_id, description)))
}

/// Builds a `CrdtStreamedMessage`; converts into the output message.
#[derive(Debug, Clone)]
pub struct StreamedBuilder(CrdtStreamedMessage);

impl StreamedBuilder {
    fn new(command_id: i64, client_action: Option<pb::ClientAction>) -> Self {
        Self(CrdtStreamedMessage {
            command_id,
            client_action,
            ..Default::default()
        })
    }

    /// Sets `end_stream`: the subscription ends with this message.
    #[must_use]
    pub fn end_stream(mut self) -> Self {
        self.0.end_stream = true;
        self
    }
}

output_builder!(StreamedBuilder, CrdtStreamOut, Out::StreamedMessage);

/// The answer to a `stream_cancelled` for `command_id`; with nothing added,
/// only the command id is set.
pub fn stream_cancelled_response(command_id: i64) -> CancelledBuilder {
    CancelledBuilder(CrdtStreamCancelledResponse {
        command_id,
        ..Default::default()
    })
}

/// Builds a `CrdtStreamCancelledResponse`; converts into the output message.
#[derive(Debug, Clone)]
pub struct CancelledBuilder(CrdtStreamCancelledResponse);

output_builder!(
    CancelledBuilder,
    CrdtStreamOut,
    Out::StreamCancelledResponse
);

fn wrap(delta: Delta) -> CrdtDelta {
    CrdtDelta { delta: Some(delta) }
}

/// A GCounter delta.
pub fn gcounter(increment: u64) -> CrdtDelta {
    wrap(Delta::Gcounter(GCounterDelta { increment }))
}

/// A PNCounter delta.
pub fn pncounter(change: i64) -> CrdtDelta {
    wrap(Delta::Pncounter(PnCounterDelta { change }))
}

/// A GSet delta adding primitive strings.
pub fn gset(added: &[&str]) -> CrdtDelta {
    gset_any(strings(added))
}

/// A GSet delta adding any elements.
pub fn gset_any(added: Vec<Any>) -> CrdtDelta {
    wrap(Delta::Gset(GSetDelta { added }))
}

/// An ORSet delta of primitive strings; applied `cleared`, then `removed`,
/// then `added`.
pub fn orset(cleared: bool, removed: &[&str], added: &[&str]) -> CrdtDelta {
    orset_any(cleared, strings(removed), strings(added))
}

/// An ORSet delta of any elements.
pub fn orset_any(cleared: bool, removed: Vec<Any>, added: Vec<Any>) -> CrdtDelta {
    wrap(Delta::Orset(OrSetDelta {
        cleared,
        removed,
        added,
    }))
}

/// An LWWRegister delta setting a primitive string with the default clock.
pub fn lwwregister(value: &str) -> CrdtDelta {
    lwwregister_any(Some(string(value)), CrdtClock::Default, 0)
}

/// An LWWRegister delta setting a primitive string with `clock`.
pub fn lwwregister_with_clock(value: &str, clock: CrdtClock, custom_clock_value: i64) -> CrdtDelta {
    lwwregister_any(Some(string(value)), clock, custom_clock_value)
}

/// An LWWRegister delta with any value (or none).
pub fn lwwregister_any(value: Option<Any>, clock: CrdtClock, custom_clock_value: i64) -> CrdtDelta {
    wrap(Delta::Lwwregister(LwwRegisterDelta {
        value,
        clock: clock.into(),
        custom_clock_value,
    }))
}

/// A Flag delta.
pub fn flag(value: bool) -> CrdtDelta {
    wrap(Delta::Flag(FlagDelta { value }))
}

/// An ORMap delta with primitive string keys; applied `cleared`, then
/// `removed`, then `updated` (nested deltas of existing entries), then `added`
/// (full-state deltas of new entries).
pub fn ormap(
    cleared: bool,
    removed: &[&str],
    updated: Vec<(&str, CrdtDelta)>,
    added: Vec<(&str, CrdtDelta)>,
) -> CrdtDelta {
    let entries = |entries: Vec<(&str, CrdtDelta)>| {
        entries
            .into_iter()
            .map(|(key, delta)| (string(key), delta))
            .collect()
    };
    ormap_any(cleared, strings(removed), entries(updated), entries(added))
}

/// An ORMap delta with any keys.
pub fn ormap_any(
    cleared: bool,
    removed: Vec<Any>,
    updated: Vec<(Any, CrdtDelta)>,
    added: Vec<(Any, CrdtDelta)>,
) -> CrdtDelta {
    let entries = |entries: Vec<(Any, CrdtDelta)>| {
        entries
            .into_iter()
            .map(|(key, delta)| OrMapEntryDelta {
                key: Some(key),
                delta: Some(delta),
            })
            .collect()
    };
    wrap(Delta::Ormap(OrMapDelta {
        cleared,
        removed,
        updated: entries(updated),
        added: entries(added),
    }))
}

/// A Vote delta. From the proxy all three fields count; from the user
/// function only `self_vote` (the others are 0).
pub fn vote(self_vote: bool, votes_for: i32, total_voters: i32) -> CrdtDelta {
    wrap(Delta::Vote(VoteDelta {
        self_vote,
        votes_for,
        total_voters,
    }))
}

/// Orders primitive strings by their text and puts every other payload
/// first, by type URL and bytes.
fn by_string(a: &Any, b: &Any) -> Ordering {
    match (read_string(a), read_string(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => (&a.type_url, &a.value).cmp(&(&b.type_url, &b.value)),
    }
}

/// Sorts the element and key lists of a delta (GSet, ORSet and ORMap,
/// nested deltas included), whose order the protocol leaves free.
pub fn sort_delta(delta: &mut CrdtDelta) {
    match &mut delta.delta {
        Some(Delta::Gset(gset)) => gset.added.sort_by(by_string),
        Some(Delta::Orset(orset)) => {
            orset.removed.sort_by(by_string);
            orset.added.sort_by(by_string);
        }
        Some(Delta::Ormap(ormap)) => {
            ormap.removed.sort_by(by_string);
            for entries in [&mut ormap.updated, &mut ormap.added] {
                for entry in entries.iter_mut() {
                    if let Some(nested) = &mut entry.delta {
                        sort_delta(nested);
                    }
                }
                entries.sort_by(|a, b| match (&a.key, &b.key) {
                    (Some(a), Some(b)) => by_string(a, b),
                    (a, b) => a.is_some().cmp(&b.is_some()),
                });
            }
        }
        _ => {}
    }
}

/// `message` with the delta of its reply's update sorted by [`sort_delta`];
/// every other message unchanged.
pub fn sorted(mut message: CrdtStreamOut) -> CrdtStreamOut {
    if let Some(Out::Reply(CrdtReply {
        state_action:
            Some(CrdtStateAction {
                action: Some(StateAction::Update(delta)),
                ..
            }),
        ..
    })) = &mut message.message
    {
        sort_delta(delta);
    }
    message
}

impl DriverStream<CrdtStreamIn, CrdtStreamOut> {
    /// Expects exactly `expected` as the next message once the delta of its
    /// update is [`sorted`]; give `expected` in sorted order.
    ///
    /// # Panics
    /// When another message, an error or the end of the stream comes instead.
    pub async fn expect_sorted(&mut self, expected: impl Into<CrdtStreamOut>) {
        let expected = expected.into();
        let actual = sorted(self.next_message().await);
        assert_eq!(
            actual, expected,
            "unexpected message from the user function (delta lists sorted)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_strings() {
        assert_eq!(string("").value, Vec::<u8>::new());
        assert_eq!(string("ab").value, vec![0x0a, 0x02, b'a', b'b']);
        assert_eq!(read_string(&string("ab")).as_deref(), Some("ab"));
        assert_eq!(read_string(&string("")).as_deref(), Some(""));
        assert_eq!(read_string(&payload::empty()), None);
    }

    #[test]
    fn sorting_is_recursive_and_only_touches_updates() {
        let unsorted = ormap(
            false,
            &["b", "a"],
            vec![("y", gset(&["2", "1"])), ("x", pncounter(1))],
            vec![
                ("d", orset(false, &["q", "p"], &["n", "m"])),
                ("c", flag(true)),
            ],
        );
        let expected = ormap(
            false,
            &["a", "b"],
            vec![("x", pncounter(1)), ("y", gset(&["1", "2"]))],
            vec![
                ("c", flag(true)),
                ("d", orset(false, &["p", "q"], &["m", "n"])),
            ],
        );
        assert_eq!(
            sorted(reply_empty(1).update(unsorted.clone()).build()),
            reply_empty(1).update(expected).build()
        );
        let cancelled = stream_cancelled_response(1).update(unsorted).build();
        assert_eq!(sorted(cancelled.clone()), cancelled);
    }

    #[test]
    fn state_actions_default_to_local() {
        let Some(Out::Reply(reply)) = reply_empty(1).delete().build().message else {
            unreachable!()
        };
        let action = reply.state_action.unwrap();
        assert_eq!(action.write_consistency, 0);
        let Some(Out::Reply(reply)) = reply_empty(1)
            .update(gcounter(1))
            .write_consistency(CrdtWriteConsistency::All)
            .build()
            .message
        else {
            unreachable!()
        };
        assert_eq!(reply.state_action.unwrap().write_consistency, 2);
    }
}
