//! Requests to the TCK's CRDT models, their expected states, and the CRDT
//! traffic the user function saw, grouped by stream.

use std::collections::HashMap;
use std::net::SocketAddr;

use cloudstate_devproxy::{Observed, REPLICA_HEADER};
use cloudstate_sdk::protocol::cloudstate::crdt::{CrdtStreamIn, CrdtStreamOut};
use tck_adapter::proto::cloudstate::tck::model::crdt::{
    Delete, Effect, Fail, FlagUpdate, FlagValue, Forward, GCounterUpdate, GCounterValue,
    GSetUpdate, GSetValue, LwwRegisterUpdate, LwwRegisterValue, OrMapEntryUpdate, OrMapEntryValue,
    OrMapUpdate, OrMapValue, OrSetUpdate, OrSetValue, PnCounterUpdate, PnCounterValue, Request,
    RequestAction, Response, State, StreamedRequest, Update, UpdateWriteConsistency, VoteUpdate,
    VoteValue, or_map_update, or_set_update, request_action::Action, state::Value, update,
};
use tokio::sync::broadcast;

use super::{GrpcStream, grpc_stream, grpc_with, until};

pub const SVC: &str = "cloudstate.tck.model.crdt.CrdtTckModel";
pub const TWO: &str = "cloudstate.tck.model.crdt.CrdtTwo";
pub const CONFIGURED: &str = "cloudstate.tck.model.crdt.CrdtConfigured";
pub const PROCESS: &str = "/cloudstate.tck.model.crdt.CrdtTckModel/Process";
pub const PROCESS_STREAMED: &str = "/cloudstate.tck.model.crdt.CrdtTckModel/ProcessStreamed";
pub const TWO_CALL: &str = "/cloudstate.tck.model.crdt.CrdtTwo/Call";
pub const CONFIGURED_CALL: &str = "/cloudstate.tck.model.crdt.CrdtConfigured/Call";

// Requests

pub fn req(id: &str, actions: Vec<RequestAction>) -> Request {
    Request {
        id: id.into(),
        actions,
    }
}
fn act(a: Action) -> RequestAction {
    RequestAction { action: Some(a) }
}
/// An update with write consistency LOCAL.
pub fn upd(u: update::Update) -> Update {
    Update {
        update: Some(u),
        write_consistency: UpdateWriteConsistency::Local.into(),
    }
}
pub fn consistent(update: Update, consistency: UpdateWriteConsistency) -> Update {
    Update {
        write_consistency: consistency.into(),
        ..update
    }
}
pub fn apply(update: Update) -> RequestAction {
    act(Action::Update(update))
}
pub fn gcounter_inc(increment: u64) -> Update {
    upd(update::Update::Gcounter(GCounterUpdate { increment }))
}
pub fn pncounter_change(change: i64) -> Update {
    upd(update::Update::Pncounter(PnCounterUpdate { change }))
}
pub fn gset_add(element: &str) -> Update {
    upd(update::Update::Gset(GSetUpdate {
        add: element.into(),
    }))
}
fn orset(action: or_set_update::Action) -> Update {
    upd(update::Update::Orset(OrSetUpdate {
        action: Some(action),
    }))
}
pub fn orset_add(element: &str) -> Update {
    orset(or_set_update::Action::Add(element.into()))
}
pub fn orset_remove(element: &str) -> Update {
    orset(or_set_update::Action::Remove(element.into()))
}
pub fn orset_clear() -> Update {
    orset(or_set_update::Action::Clear(true))
}
pub fn lww_set(value: &str) -> Update {
    upd(update::Update::Lwwregister(LwwRegisterUpdate {
        value: value.into(),
        clock: None,
    }))
}
pub fn flag_enable() -> Update {
    upd(update::Update::Flag(FlagUpdate {}))
}
fn ormap(action: or_map_update::Action) -> Update {
    upd(update::Update::Ormap(Box::new(OrMapUpdate {
        action: Some(action),
    })))
}
pub fn ormap_add(key: &str) -> Update {
    ormap(or_map_update::Action::Add(key.into()))
}
pub fn ormap_update(key: &str, nested: Update) -> Update {
    ormap(or_map_update::Action::Update(Box::new(OrMapEntryUpdate {
        key: key.into(),
        update: Some(Box::new(nested)),
    })))
}
pub fn ormap_remove(key: &str) -> Update {
    ormap(or_map_update::Action::Remove(key.into()))
}
pub fn vote_update(self_vote: bool) -> Update {
    upd(update::Update::Vote(VoteUpdate { self_vote }))
}
pub fn delete() -> RequestAction {
    act(Action::Delete(Delete {}))
}
pub fn forward(id: &str) -> RequestAction {
    act(Action::Forward(Forward { id: id.into() }))
}
pub fn effect(id: &str, synchronous: bool) -> RequestAction {
    act(Action::Effect(Effect {
        id: id.into(),
        synchronous,
    }))
}
pub fn fail(message: &str) -> RequestAction {
    act(Action::Fail(Fail {
        message: message.into(),
    }))
}
pub fn streamed_req(id: &str) -> StreamedRequest {
    StreamedRequest {
        id: id.into(),
        ..Default::default()
    }
}

// States

pub fn state(value: Value) -> Response {
    Response {
        state: Some(State { value: Some(value) }),
    }
}
pub fn gcounter(value: u64) -> Response {
    state(Value::Gcounter(GCounterValue { value }))
}
pub fn pncounter(value: i64) -> Response {
    state(Value::Pncounter(PnCounterValue { value }))
}
fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}
pub fn gset(elements: &[&str]) -> Response {
    state(Value::Gset(GSetValue {
        elements: owned(elements),
    }))
}
pub fn orset_state(elements: &[&str]) -> Response {
    state(Value::Orset(OrSetValue {
        elements: owned(elements),
    }))
}
pub fn lwwregister(value: &str) -> Response {
    state(Value::Lwwregister(LwwRegisterValue {
        value: value.into(),
    }))
}
pub fn flag(value: bool) -> Response {
    state(Value::Flag(FlagValue { value }))
}
pub fn ormap_state(entries: Vec<(&str, Response)>) -> Response {
    state(Value::Ormap(OrMapValue {
        entries: entries
            .into_iter()
            .map(|(key, value)| OrMapEntryValue {
                key: key.into(),
                value: value.state,
            })
            .collect(),
    }))
}
pub fn vote(self_vote: bool, votes_for: i32, total_voters: i32) -> Response {
    state(Value::Vote(VoteValue {
        self_vote,
        votes_for,
        total_voters,
    }))
}

// Calls

/// `CrdtTckModel.Process` over gRPC.
pub async fn process(
    addr: SocketAddr,
    id: &str,
    actions: Vec<RequestAction>,
) -> Result<Response, tonic::Status> {
    grpc_with(addr, PROCESS, &[], req(id, actions)).await
}

/// `Process` pinned to `replica`.
pub async fn process_on(
    addr: SocketAddr,
    replica: u32,
    id: &str,
    actions: Vec<RequestAction>,
) -> Result<Response, tonic::Status> {
    let replica = replica.to_string();
    grpc_with(
        addr,
        PROCESS,
        &[(REPLICA_HEADER, &replica)],
        req(id, actions),
    )
    .await
}

/// `Process` with these updates only.
pub async fn update(addr: SocketAddr, id: &str, updates: Vec<Update>) -> Response {
    process(addr, id, updates.into_iter().map(apply).collect())
        .await
        .unwrap_or_else(|e| panic!("Process on {id} failed: {e}"))
}

/// `ProcessStreamed` over gRPC, pinned to a replica when given.
pub async fn subscribe(
    addr: SocketAddr,
    replica: Option<u32>,
    request: StreamedRequest,
) -> Result<GrpcStream<Response>, tonic::Status> {
    let replica = replica.map(|r| r.to_string());
    let headers: Vec<(&str, &str)> = replica
        .iter()
        .map(|r| (REPLICA_HEADER, r.as_str()))
        .collect();
    grpc_stream(addr, PROCESS_STREAMED, &headers, request).await
}

// Observed traffic

/// One CRDT message, either way.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    In(CrdtStreamIn),
    Out(CrdtStreamOut),
}

impl From<CrdtStreamIn> for Msg {
    fn from(message: CrdtStreamIn) -> Self {
        Self::In(message)
    }
}

impl From<CrdtStreamOut> for Msg {
    fn from(message: CrdtStreamOut) -> Self {
        Self::Out(message)
    }
}

macro_rules! into_msg {
    ($($builder:ident),*) => {$(
        impl From<cloudstate_sdk::testkit::crdt::$builder> for Msg {
            fn from(builder: cloudstate_sdk::testkit::crdt::$builder) -> Self {
                Self::Out(builder.build())
            }
        }
    )*};
}
into_msg!(ReplyBuilder, StreamedBuilder, CancelledBuilder);

/// One stream's traffic: its service, entity id, messages, and whether the
/// proxy closed its side and the user function its own (with OK).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Traffic {
    pub stream: u64,
    pub service: String,
    pub entity_id: String,
    pub messages: Vec<Msg>,
    pub input_closed: bool,
    pub output_closed: Option<bool>,
}

/// `items` grouped by stream, in the order the streams opened; messages
/// of an out delta sorted (the protocol leaves the order of their lists free).
pub fn streams(items: &[Observed]) -> Vec<Traffic> {
    let mut order = Vec::new();
    let mut by_stream: HashMap<u64, Traffic> = HashMap::new();
    for item in items {
        match item {
            Observed::StreamOpened {
                stream,
                service,
                entity_id,
            } => {
                order.push(*stream);
                by_stream.insert(
                    *stream,
                    Traffic {
                        stream: *stream,
                        service: service.clone(),
                        entity_id: entity_id.clone(),
                        ..Traffic::default()
                    },
                );
            }
            Observed::CrdtIn(stream, m) => {
                if let Some(t) = by_stream.get_mut(stream) {
                    t.messages.push(Msg::In(m.clone()));
                }
            }
            Observed::CrdtOut(stream, m) => {
                if let Some(t) = by_stream.get_mut(stream) {
                    let m = cloudstate_sdk::testkit::crdt::sorted(m.clone());
                    t.messages.push(Msg::Out(m));
                }
            }
            Observed::InputClosed(stream) => {
                if let Some(t) = by_stream.get_mut(stream) {
                    t.input_closed = true;
                }
            }
            Observed::OutputClosed { stream, ok } => {
                if let Some(t) = by_stream.get_mut(stream) {
                    t.output_closed = Some(*ok);
                }
            }
            _ => {}
        }
    }
    order
        .into_iter()
        .filter_map(|n| by_stream.remove(&n))
        .collect()
}

/// The CRDT traffic observed until `outs` messages came back from the user
/// function.
pub async fn traffic(observed: &mut broadcast::Receiver<Observed>, outs: usize) -> Vec<Traffic> {
    let mut left = outs;
    let seen = until(observed, |o| {
        if matches!(o, Observed::CrdtOut(..)) {
            left -= 1;
        }
        left == 0
    })
    .await;
    streams(&seen)
}

/// The observed items until the stream `stream` was closed by the user function.
pub async fn until_closed(
    observed: &mut broadcast::Receiver<Observed>,
    stream: u64,
) -> Vec<Observed> {
    until(
        observed,
        |o| matches!(o, Observed::OutputClosed { stream: s, .. } if *s == stream),
    )
    .await
}
