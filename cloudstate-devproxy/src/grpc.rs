//! gRPC ingress for every method the user function serves, built at run
//! time from its descriptors: frames pass through as bytes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};
use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate::{self as pb, metadata_entry::Value};
use futures_util::{Stream, StreamExt, stream};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::server::StreamingService;
use tonic::{Request, Response, Status, Streaming};

use crate::action;
use crate::error::ProxyError;
use crate::model::{EntityType, MethodModel};
use crate::router::{Answer, Router};

/// Passes message bytes through undecoded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Every call is handled as a stream, whatever its shape: the framing is the
/// same, and a reply without a message can then end the call with OK and
/// nothing sent, as the official proxy does.
pub(crate) struct MethodService {
    pub(crate) router: Arc<Router>,
    pub(crate) method: Arc<MethodModel>,
}

type Replies = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

impl StreamingService<Bytes> for MethodService {
    type Response = Bytes;
    type ResponseStream = Replies;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Replies>, Status>> + Send>>;

    fn call(&mut self, request: Request<Streaming<Bytes>>) -> Self::Future {
        let router = Arc::clone(&self.router);
        let method = Arc::clone(&self.method);
        Box::pin(async move {
            if method.entity_type == EntityType::Action {
                return call_action(router, method, request).await;
            }
            if method.entity_type == EntityType::Crdt && method.descriptor.is_server_streaming() {
                return call_crdt_stream(router, method, request).await;
            }
            // Only CRDT calls read a header (the replica pin); commands to
            // entities never carry metadata.
            let metadata = (method.entity_type == EntityType::Crdt)
                .then(|| action::metadata_of(&request.metadata().clone().into_headers()))
                .flatten();
            let mut inbound = request.into_inner();
            // The first reply's metadata becomes the response headers, so it
            // is awaited before the response starts.
            let first: Option<Option<Answer>> = match inbound.message().await? {
                Some(frame) => Some(route(&router, &method, frame, metadata.clone()).await?),
                None => None,
            };
            let headers = first
                .as_ref()
                .and_then(Option::as_ref)
                .and_then(|a| a.metadata.clone());
            let rest = futures_util::stream::unfold(
                (inbound, router, method, metadata),
                |(mut inbound, router, method, metadata)| async move {
                    let frame = match inbound.message().await {
                        Ok(Some(frame)) => frame,
                        Ok(None) => return None,
                        Err(status) => {
                            return Some((Err(status), (inbound, router, method, metadata)));
                        }
                    };
                    let answer = route(&router, &method, frame, metadata.clone()).await;
                    Some((answer, (inbound, router, method, metadata)))
                },
            );
            let first = futures_util::stream::iter(first.map(Ok::<_, Status>));
            let replies = futures_util::StreamExt::filter_map(
                futures_util::StreamExt::chain(first, rest),
                |r| async {
                    match r {
                        Ok(Some(answer)) => Some(Ok(Bytes::from(answer.message))),
                        Ok(None) => None,
                        Err(status) => Some(Err(status)),
                    }
                },
            );
            let mut response = Response::new(Box::pin(replies) as Replies);
            if let Some(metadata) = headers {
                add_headers(response.metadata_mut(), &metadata);
            }
            Ok(response)
        })
    }
}

/// An action call: the request headers become the call's metadata, the
/// first answer's metadata the response headers.
async fn call_action(
    router: Arc<Router>,
    method: Arc<MethodModel>,
    request: Request<Streaming<Bytes>>,
) -> Result<Response<Replies>, Status> {
    let (metadata, _, inbound) = request.into_parts();
    let metadata = action::metadata_of(&metadata.into_headers());
    let input = inbound
        .map(|frame| frame.map_err(|status| ProxyError::Internal(status.message().to_owned())))
        .boxed();
    // A client's stream ends when shutdown begins, as the user function ends
    // its side: the call finishes what it has instead of holding the
    // shutdown grace.
    let input = if method.descriptor.is_client_streaming() {
        let mut stopping = router.stopping.clone();
        input
            .take_until(async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .boxed()
    } else {
        input
    };
    answers_response(action::call(router, method, metadata, input)).await
}

/// A server-streaming CRDT call: one request message, then the answers
/// until the entity ends the stream or the client cancels.
async fn call_crdt_stream(
    router: Arc<Router>,
    method: Arc<MethodModel>,
    request: Request<Streaming<Bytes>>,
) -> Result<Response<Replies>, Status> {
    let (metadata, _, mut inbound) = request.into_parts();
    let metadata = action::metadata_of(&metadata.into_headers());
    let Some(frame) = inbound.message().await? else {
        return Err(Status::internal("Missing request message."));
    };
    let payload = Any {
        type_url: method.input_type_url().to_owned(),
        value: frame.to_vec(),
    };
    answers_response(router.crdt_stream(method, payload, metadata)).await
}

/// The response of a call answered by `answers`.
async fn answers_response(mut answers: action::Answers) -> Result<Response<Replies>, Status> {
    // The first answer's metadata becomes the response headers, so it is
    // awaited before the response starts, as the official proxy does.
    let first = match answers.next().await {
        Some(Err(e)) => return Err(e.status()),
        first => first,
    };
    let headers = match &first {
        Some(Ok(Some(answer))) => answer.metadata.clone(),
        _ => None,
    };
    let replies = stream::iter(first)
        .chain(answers)
        .filter_map(|answer| async move {
            match answer {
                Ok(Some(answer)) => Some(Ok(Bytes::from(answer.message))),
                Ok(None) => None,
                Err(e) => Some(Err(e.status())),
            }
        });
    let mut response = Response::new(Box::pin(replies) as Replies);
    if let Some(metadata) = headers {
        add_headers(response.metadata_mut(), &metadata);
    }
    Ok(response)
}

async fn route(
    router: &Arc<Router>,
    method: &Arc<MethodModel>,
    frame: Bytes,
    metadata: Option<pb::Metadata>,
) -> Result<Option<Answer>, Status> {
    let payload = Any {
        type_url: method.input_type_url().to_owned(),
        value: frame.to_vec(),
    };
    router
        .route_ingress(method, payload, metadata, method.full_name())
        .await
        .map_err(|e| e.status())
}

/// String metadata entries become headers; bytes entries are dropped, as
/// the official proxy does.
fn add_headers(headers: &mut tonic::metadata::MetadataMap, metadata: &pb::Metadata) {
    for entry in &metadata.entries {
        if let (Some(Value::StringValue(value)), Ok(key)) = (
            &entry.value,
            MetadataKey::from_bytes(entry.key.to_ascii_lowercase().as_bytes()),
        ) && let Ok(value) = MetadataValue::try_from(value.as_str())
        {
            headers.insert(key, value);
        }
    }
}
