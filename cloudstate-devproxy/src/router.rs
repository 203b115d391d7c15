//! Routing a command to its entity, then its side effects and forwards, as
//! the official proxy's `UserFunctionRouter` does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate::{
    self as pb, client_action::Action, entity_discovery_client::EntityDiscoveryClient,
};
use futures_util::stream::{self, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::transport::Channel;
use tracing::{error, warn};

use crate::action::{self, Answers};
use crate::entity::{
    Crdt, Driver, Entities, Envelope, EventSourced, Lockstep, Mail, Protocol, ReplyTo, UfReply,
    ValueEntity,
};
use crate::error::ProxyError;
use crate::eventing::Broker;
use crate::model::{EntityType, MethodModel, Model, ServiceModel};
use crate::observe::{Observed, Observer};

/// A reply to the client: the message bytes of the method's output type, and
/// the reply's metadata.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    /// Encoded output message.
    pub(crate) message: Vec<u8>,
    /// Its type URL as the user function sent it.
    pub(crate) type_url: String,
    /// Metadata the user function attached.
    pub(crate) metadata: Option<pb::Metadata>,
}

/// Routes commands to entities.
pub(crate) struct Router {
    pub(crate) model: Arc<Model>,
    pub(crate) entities: Arc<Entities>,
    pub(crate) channel: Channel,
    pub(crate) observer: Observer,
    pub(crate) relay_timeout: Duration,
    pub(crate) max_message_size: usize,
    /// The replica the next unpinned CRDT command goes to.
    pub(crate) next_replica: AtomicU32,
    /// Where replies of methods with an `eventing.out` topic are published.
    pub(crate) broker: Broker,
    /// Turns true when shutdown begins: open-ended calls end then.
    pub(crate) stopping: watch::Receiver<bool>,
}

/// Ending open-ended calls when shutdown begins, so they do not hold the
/// shutdown grace.
pub(crate) trait UntilShutdown {
    /// These answers until `stopping` turns true (or its sender is gone),
    /// then `Unavailable` as the last one: a subscription ends, and the
    /// client knows to subscribe again once the proxy is back.
    fn until_shutdown(self, stopping: watch::Receiver<bool>) -> Answers;
}

impl UntilShutdown for Answers {
    fn until_shutdown(self, stopping: watch::Receiver<bool>) -> Answers {
        stream::unfold(
            (self, Some(stopping)),
            |(mut answers, stopping)| async move {
                let mut stopping = stopping?;
                let next = tokio::select! {
                    biased;
                    next = answers.next() => Some(next),
                    _ = stopping.wait_for(|stop| *stop) => None,
                };
                match next {
                    Some(next) => next.map(|answer| (answer, (answers, Some(stopping)))),
                    None => {
                        let ended = ProxyError::Unavailable(
                            "The dev proxy is shutting down: the subscription ended".to_owned(),
                        );
                        Some((Err(ended), (answers, None)))
                    }
                }
            },
        )
        .boxed()
    }
}

/// The request header that pins a CRDT call to one replica.
pub const REPLICA_HEADER: &str = "x-crdt-replica";

type Routed<'a> = Pin<Box<dyn Future<Output = Result<Option<Answer>, ProxyError>> + Send + 'a>>;

impl Router {
    /// Sends `payload` to `method` and returns the client's answer (`None`
    /// when the user function replied without a message). `metadata` only
    /// reaches actions: entity commands never carry metadata, as in the
    /// official proxy.
    pub(crate) fn route<'a>(
        self: &'a Arc<Self>,
        method: &'a Arc<MethodModel>,
        payload: Any,
        metadata: Option<pb::Metadata>,
        trace: &'a str,
    ) -> Routed<'a> {
        Box::pin(async move {
            let reply = self.call_entity(method, payload, metadata).await?;
            self.resolve(method, reply, trace).await
        })
    }

    /// [`route`](Self::route) for a call from outside the user function
    /// (a client, an eventing consumer): the answer is published when
    /// `method` declares an `eventing.out` topic, as the official proxy
    /// publishes the replies of the method called (not of forward targets).
    pub(crate) async fn route_ingress(
        self: &Arc<Self>,
        method: &Arc<MethodModel>,
        payload: Any,
        metadata: Option<pb::Metadata>,
        trace: &str,
    ) -> Result<Option<Answer>, ProxyError> {
        let answer = self.route(method, payload, metadata, trace).await?;
        if let Some(answer) = &answer {
            self.publish(method, answer);
        }
        Ok(answer)
    }

    /// What the client gets for one reply of the user function to `method`:
    /// its side effects are performed first (synchronous ones awaited,
    /// asynchronous ones spawned), then a forward is routed as a new call and
    /// its answer returned, a failure becomes the error, a reply its answer.
    pub(crate) fn resolve<'a>(
        self: &'a Arc<Self>,
        method: &'a Arc<MethodModel>,
        reply: UfReply,
        trace: &'a str,
    ) -> Routed<'a> {
        Box::pin(async move {
            for effect in reply.side_effects {
                self.side_effect(method, effect).await?;
            }
            match reply.client_action.and_then(|a| a.action) {
                Some(Action::Reply(reply)) => {
                    let Some(payload) = reply.payload else {
                        return Ok(None);
                    };
                    self.check_reply_type(method, &payload).await;
                    Ok(Some(Answer {
                        type_url: payload.type_url,
                        message: payload.value,
                        metadata: reply.metadata,
                    }))
                }
                Some(Action::Forward(forward)) => {
                    let here = format!("{}.{}", method.service, method.name());
                    let target = self
                        .target(
                            &forward.service_name,
                            &forward.command_name,
                            &format!("forwarded from {here}"),
                        )
                        .await?;
                    let payload = forward.payload.unwrap_or_default();
                    let trace = format!("{trace}\n  forwarded from {here}");
                    self.route(&target, payload, forward.metadata, &trace)
                        .await
                        .map_err(|e| not_the_callers(e, &format!("forwarded from {here}")))
                }
                Some(Action::Failure(failure)) => Err(ProxyError::Failure(failure.description)),
                None => Ok(None),
            }
        })
    }

    async fn call_entity(
        self: &Arc<Self>,
        method: &Arc<MethodModel>,
        payload: Any,
        metadata: Option<pb::Metadata>,
    ) -> Result<UfReply, ProxyError> {
        let service = self.service(method)?;
        match method.entity_type {
            EntityType::EventSourced => {
                self.call_keyed::<Lockstep<EventSourced>>(
                    service,
                    method,
                    payload,
                    0,
                    EventSourced::TEXTS.terminated,
                )
                .await
            }
            EntityType::ValueEntity => {
                self.call_keyed::<Lockstep<ValueEntity>>(
                    service,
                    method,
                    payload,
                    0,
                    ValueEntity::TEXTS.terminated,
                )
                .await
            }
            EntityType::Crdt => {
                let replica = self.replica(metadata.as_ref())?;
                self.call_keyed::<Crdt>(service, method, payload, replica, "Entity terminating")
                    .await
            }
            EntityType::Action => action::unary(self, method, payload, metadata).await,
        }
    }

    fn service(&self, method: &MethodModel) -> Result<&Arc<ServiceModel>, ProxyError> {
        self.model
            .services
            .get(&method.service)
            .ok_or_else(|| ProxyError::Internal(format!("Service [{}] unknown", method.service)))
    }

    /// The replica a CRDT command goes to: the one its `x-crdt-replica`
    /// header names, else the next in turn.
    fn replica(&self, metadata: Option<&pb::Metadata>) -> Result<u32, ProxyError> {
        let count = self.entities.shared().replicas.count;
        let pinned = metadata
            .into_iter()
            .flat_map(|m| &m.entries)
            .find_map(|e| match &e.value {
                Some(pb::metadata_entry::Value::StringValue(v))
                    if e.key.eq_ignore_ascii_case(REPLICA_HEADER) =>
                {
                    Some(v.as_str())
                }
                _ => None,
            });
        match pinned {
            Some(text) => match text.trim().parse::<u32>() {
                Ok(replica) if replica < count => Ok(replica),
                _ => Err(ProxyError::BadRequest(format!(
                    "{REPLICA_HEADER} must name a replica from 0 to {}, not [{text}]",
                    count - 1
                ))),
            },
            None if count == 1 => Ok(0),
            None => Ok(self.next_replica.fetch_add(1, Ordering::Relaxed) % count),
        }
    }

    fn entity_id(method: &MethodModel, payload: &Any) -> Result<String, ProxyError> {
        method.entity_id(&payload.value).map_err(|e| {
            ProxyError::BadRequest(format!(
                "Invalid request to {}.{}: {e}",
                method.service,
                method.name()
            ))
        })
    }

    /// Sends a command to the entity its key fields name, and waits for the reply.
    async fn call_keyed<D: Driver>(
        &self,
        service: &Arc<ServiceModel>,
        method: &MethodModel,
        payload: Any,
        replica: u32,
        terminated: &str,
    ) -> Result<UfReply, ProxyError> {
        let entity_id = Self::entity_id(method, &payload)?;
        let (reply, rx) = ReplyTo::unary();
        let envelope = Envelope {
            name: method.name().to_owned(),
            payload,
            reply,
        };
        self.entities
            .dispatch::<D>(service, entity_id, replica, Mail::Command(envelope))
            .await;
        match tokio::time::timeout(self.relay_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ProxyError::Failure(terminated.into())),
            Err(_) => Err(ProxyError::Internal(format!(
                "no reply from the entity within {:?}",
                self.relay_timeout
            ))),
        }
    }

    /// A server-streaming CRDT call: the answers to the command, then to
    /// every streamed message, each resolved as a reply is (side effects,
    /// forward, failure). Dropping the answers cancels the subscription.
    pub(crate) fn crdt_stream(
        self: Arc<Self>,
        method: Arc<MethodModel>,
        payload: Any,
        metadata: Option<pb::Metadata>,
    ) -> Answers {
        struct Open {
            router: Arc<Router>,
            method: Arc<MethodModel>,
            trace: String,
            answers: mpsc::UnboundedReceiver<Result<UfReply, ProxyError>>,
            /// Dropped with the stream: tells the entity the client left.
            _gone: oneshot::Sender<()>,
        }
        let self_stopping = self.stopping.clone();
        let start = async move {
            let service = Arc::clone(self.service(&method)?);
            let entity_id = Self::entity_id(&method, &payload)?;
            let replica = self.replica(metadata.as_ref())?;
            let (tx, answers) = mpsc::unbounded_channel();
            let (gone, gone_rx) = oneshot::channel();
            let envelope = Envelope {
                name: method.name().to_owned(),
                payload,
                reply: ReplyTo::Streamed {
                    answers: tx,
                    gone: gone_rx,
                },
            };
            self.entities
                .dispatch::<Crdt>(&service, entity_id, replica, Mail::Command(envelope))
                .await;
            let trace = method.full_name().to_owned();
            Ok::<_, ProxyError>(Open {
                router: self,
                method,
                trace,
                answers,
                _gone: gone,
            })
        };
        stream::once(start)
            .flat_map(|open| match open {
                Err(e) => stream::iter([Err(e)]).boxed(),
                Ok(open) => stream::unfold(Some(open), |open| async move {
                    let mut open = open?;
                    let reply = open.answers.recv().await?;
                    let answer = match reply {
                        Ok(reply) => open.router.resolve(&open.method, reply, &open.trace).await,
                        Err(e) => Err(e),
                    };
                    if let Ok(Some(answer)) = &answer {
                        open.router.publish(&open.method, answer);
                    }
                    // An error is the last answer.
                    let next = answer.is_ok().then_some(open);
                    Some((answer, next))
                })
                .boxed(),
            })
            .boxed()
            .until_shutdown(self_stopping)
    }

    async fn side_effect(
        self: &Arc<Self>,
        origin: &MethodModel,
        effect: pb::SideEffect,
    ) -> Result<(), ProxyError> {
        let here = format!("side-effect of {}.{}", origin.service, origin.name());
        let target = self
            .target(&effect.service_name, &effect.command_name, &here)
            .await;
        let payload = effect.payload.unwrap_or_default();
        let metadata = effect.metadata;
        if effect.synchronous {
            let target = target?;
            // A side effect's own failure does not fail the caller.
            match self.route(&target, payload, metadata, &here).await {
                Ok(_) | Err(ProxyError::Failure(_)) => Ok(()),
                Err(e) => Err(not_the_callers(e, &here)),
            }
        } else {
            let Ok(target) = target else { return Ok(()) };
            let router = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(e) = router.route(&target, payload, metadata, &here).await {
                    warn!("asynchronous {here} failed: {e}");
                }
            });
            Ok(())
        }
    }

    /// Looks up a forward or side-effect target; an unknown one is reported
    /// to the user function, as the official proxy does.
    async fn target(
        &self,
        service: &str,
        command: &str,
        trace: &str,
    ) -> Result<Arc<MethodModel>, ProxyError> {
        let Some(model) = self.model.services.get(service) else {
            let text = format!("Service [{service}] unknown\n  {trace}");
            self.report_error(&text).await;
            return Err(ProxyError::Internal(text));
        };
        match model.methods.get(command) {
            Some(method) => Ok(Arc::clone(method)),
            None => {
                let text = format!(
                    "Service [{service}] does not have a command named: [{command}]\n  {trace}"
                );
                self.report_error(&text).await;
                Err(ProxyError::Internal(text))
            }
        }
    }

    async fn check_reply_type(&self, method: &MethodModel, payload: &Any) {
        let expected = method.output_type_url();
        if payload.type_url != expected {
            let text = format!(
                "Warning: {}.{}: Expected reply type_url to be [{expected}] but was [{}].",
                method.service,
                method.name(),
                payload.type_url
            );
            warn!("{text}");
            self.report_error(&text).await;
        }
    }

    pub(crate) async fn report_error(&self, text: &str) {
        self.observer
            .emit(|| Observed::ReportError(text.to_owned()));
        let mut client = EntityDiscoveryClient::new(self.channel.clone());
        let request = pb::UserFunctionError {
            message: text.to_owned(),
        };
        if let Err(status) = client.report_error(request).await {
            error!("reportError to the user function failed: {status}");
        }
    }
}

/// A forward or side effect the user function built is not the client's
/// request: its being invalid is an internal error of the call, not
/// `INVALID_ARGUMENT`.
fn not_the_callers(error: ProxyError, trace: &str) -> ProxyError {
    match error {
        ProxyError::BadRequest(text) => ProxyError::Internal(format!("{text}\n  {trace}")),
        other => other,
    }
}
