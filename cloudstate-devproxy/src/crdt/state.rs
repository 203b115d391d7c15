//! One replica's copy of a CRDT, as Akka Distributed Data holds it on a node.
#![allow(dead_code, clippy::all, missing_docs, unused_variables)]
// TEMPORARY stub with the agreed API; replaced by the real model.
use cloudstate_sdk::protocol::cloudstate::crdt as pb;

pub(crate) type ReplicaId = u32;

#[derive(Debug, Clone)]
pub(crate) struct Replica {
    value: pb::CrdtDelta,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct StateError(pub(crate) String);

impl Replica {
    pub(crate) fn create(
        me: ReplicaId,
        replicas: u32,
        delta: &pb::CrdtDelta,
    ) -> Result<Self, StateError> {
        Ok(Self {
            value: delta.clone(),
        })
    }
    pub(crate) fn adopt(me: ReplicaId, replicas: u32, remote: &Replica) -> Self {
        remote.clone()
    }
    pub(crate) fn apply(&mut self, delta: &pb::CrdtDelta) -> Result<(), StateError> {
        Ok(())
    }
    pub(crate) fn merge(&mut self, remote: &Replica) -> Result<(), StateError> {
        Ok(())
    }
    pub(crate) fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        None
    }
    pub(crate) fn initial_delta(&mut self) -> pb::CrdtDelta {
        self.value.clone()
    }
    pub(crate) fn encode(&self) -> Vec<u8> {
        Vec::new()
    }
    pub(crate) fn decode(me: ReplicaId, replicas: u32, bytes: &[u8]) -> Result<Self, StateError> {
        Err(StateError("stub".into()))
    }
    pub(crate) fn kind(&self) -> &'static str {
        "stub"
    }
}

// TEMPORARY: the store's CRDT methods.
impl crate::store::Store {
    pub async fn get_crdt(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
        Ok(None)
    }
    pub async fn put_crdt(
        &self,
        _: &str,
        _: &str,
        _: Vec<u8>,
    ) -> Result<(), crate::store::StoreError> {
        Ok(())
    }
    pub async fn delete_crdt(&self, _: &str, _: &str) -> Result<(), crate::store::StoreError> {
        Ok(())
    }
}
