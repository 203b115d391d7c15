//! In-process entry to the entity stream driver for the fuzz targets in
//! `fuzz/` and their regression tests. Not a public API: it may change or go
//! away in any release.
//!
//! A [`StreamDriver`] serves one entity kind as the server does (the same
//! registration checks, the same `handle` service), but reads the stream's
//! request body from memory instead of an HTTP/2 connection: the bytes go
//! through tonic's gRPC decoder, the stream driver and the entity's handlers
//! exactly as they would from a proxy.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body::Frame;
use tokio::sync::watch;
use tonic::codec::{Codec, Streaming};

use crate::crdt::runtime::{CrdtProtocol, CrdtService};
use crate::entity::Registry;
use crate::eventsourced::runtime::{EventSourcedProtocol, EventSourcedService};
use crate::stream::{EntityService, Protocol};
use crate::valueentity::runtime::{ValueEntityProtocol, ValueEntityService};
use crate::{CloudState, Error};

/// The request size limit of a served stream, as [`CloudState`] sets it by default.
const MAX_MESSAGE_SIZE: usize = crate::server::DEFAULT_MAX_MESSAGE_SIZE;

/// Serves entity streams of one kind from in-memory request bodies.
pub struct StreamDriver {
    runtime: tokio::runtime::Runtime,
    service: Served,
    /// Kept so that the streams never see a shutdown.
    _shutdown: watch::Sender<bool>,
}

enum Served {
    EventSourced(EventSourcedService),
    ValueEntity(ValueEntityService),
    Crdt(CrdtService),
}

impl std::fmt::Debug for StreamDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.service {
            Served::EventSourced(_) => "event sourced",
            Served::ValueEntity(_) => "value entity",
            Served::Crdt(_) => "CRDT",
        };
        f.debug_struct("StreamDriver").field("kind", &kind).finish()
    }
}

/// One registry of a kind, from servers that each register one entity of it.
fn registry<F: ?Sized, S>(
    servers: impl IntoIterator<Item = CloudState>,
    one: impl Fn(CloudState) -> Result<std::sync::Arc<crate::entity::Registration<F, S>>, Error>,
) -> Result<Registry<F, S>, Error> {
    let mut registry = Registry::new();
    for server in servers {
        let registration = one(server)?;
        registry.insert(registration.service_name.clone(), registration);
    }
    Ok(registry)
}

impl StreamDriver {
    /// Serves `cloudstate.eventsourced.EventSourced/handle` for the entities
    /// of `servers`, each of which registers one event-sourced entity.
    ///
    /// # Errors
    /// An invalid registration, as serving would refuse it.
    pub fn event_sourced(servers: impl IntoIterator<Item = CloudState>) -> Result<Self, Error> {
        let registry = registry(servers, CloudState::event_sourced_registration)?;
        Self::new(|shutdown| {
            Served::EventSourced(EntityService::new(
                EventSourcedProtocol::new(registry),
                shutdown,
            ))
        })
    }

    /// Serves `cloudstate.valueentity.ValueEntity/handle`, as
    /// [`event_sourced`](Self::event_sourced) does.
    ///
    /// # Errors
    /// An invalid registration.
    pub fn value_entity(servers: impl IntoIterator<Item = CloudState>) -> Result<Self, Error> {
        let registry = registry(servers, CloudState::value_entity_registration)?;
        Self::new(|shutdown| {
            Served::ValueEntity(EntityService::new(
                ValueEntityProtocol::new(registry),
                shutdown,
            ))
        })
    }

    /// Serves `cloudstate.crdt.Crdt/handle`, as
    /// [`event_sourced`](Self::event_sourced) does.
    ///
    /// # Errors
    /// An invalid registration.
    pub fn crdt(servers: impl IntoIterator<Item = CloudState>) -> Result<Self, Error> {
        let registry = registry(servers, CloudState::crdt_registration)?;
        Self::new(|shutdown| {
            Served::Crdt(EntityService::new(CrdtProtocol::new(registry), shutdown))
        })
    }

    fn new(service: impl FnOnce(watch::Receiver<bool>) -> Served) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, stop) = watch::channel(false);
        Ok(Self {
            runtime,
            service: service(stop),
            _shutdown: shutdown,
        })
    }

    /// Runs one entity stream whose request body (gRPC length-prefixed
    /// messages) arrives as `chunks`, until the stream ends; returns every
    /// message the entity sent, protobuf-encoded, in order.
    pub fn run(&self, chunks: Vec<Bytes>) -> Vec<Vec<u8>> {
        match &self.service {
            Served::EventSourced(service) => self.drive(service, chunks),
            Served::ValueEntity(service) => self.drive(service, chunks),
            Served::Crdt(service) => self.drive(service, chunks),
        }
    }

    fn drive<P>(&self, service: &EntityService<P>, chunks: Vec<Bytes>) -> Vec<Vec<u8>>
    where
        P: Protocol,
        P::Out: prost::Message + Default,
    {
        let decoder = tonic_prost::ProstCodec::<P::Out, P::In>::default().decoder();
        let body = Chunks(chunks.into());
        let input = Streaming::new_request(decoder, body, None, Some(MAX_MESSAGE_SIZE));
        let replies = service.handle(tonic::Request::new(input)).into_inner();
        self.runtime.block_on(async move {
            replies
                .map(|reply| match reply {
                    Ok(out) => prost::Message::encode_to_vec(&out),
                    // The stream driver answers with messages only; a status
                    // here would be a change of contract worth a finding.
                    Err(status) => panic!("entity stream yielded a status: {status:?}"),
                })
                .collect()
                .await
        })
    }
}

/// A request body made of fixed chunks.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

/// `message` as one gRPC length-prefixed message (uncompressed).
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    framed
}
