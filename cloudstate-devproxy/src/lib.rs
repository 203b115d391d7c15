//! An embedded Cloudstate proxy for local development and tests.
//!
//! It does, for one user function on one machine, what the official proxy
//! does in its in-memory dev mode: discovers the user function's services,
//! serves them over gRPC and HTTP/JSON on one port, and serves the
//! protocol's four kinds of service:
//!
//! - **event-sourced entities**: events and snapshots are persisted before
//!   the reply, replayed when an entity starts, and a failed entity restarts
//!   from its journal;
//! - **value entities**: the state is read when an entity starts (`init`
//!   always carries it, empty when nothing is stored) and each reply's update
//!   or delete is written before the reply;
//! - **CRDT entities** (see [below](#crdt-entities));
//! - **actions**: each client call is one `ActionProtocol` call in the
//!   method's shape (unary, streamed in, streamed out, both ways). The request
//!   headers become the call's metadata (on the first command), except
//!   pseudo-headers, `content-type` and `content-length`; over HTTP,
//!   `message-accept-encoding: identity` is added. Each response's side
//!   effects and forward go through the router; a failure ends the client's
//!   call (gRPC `UNKNOWN`, HTTP 500 with the text) and cancels the user
//!   function's call, as does a client that cancels. Over HTTP, a
//!   client-streaming method gets the one message of the request, and a
//!   server-streaming method answers newline-delimited JSON, or Server-Sent
//!   Events for `Accept: text/event-stream`; a failure after the first
//!   answer aborts the body. A forward or side effect to a streaming action
//!   method calls it in its shape with the one message; its responses are
//!   gathered into one (every side effect, the first reply, forward or
//!   failure).
//!
//! Methods subscribed with the `cloudstate.eventing` option get events from
//! event logs and topics (see [below](#eventing)).
//!
//! # Eventing
//!
//! The `cloudstate.eventing` option (extension 1081 of the method options,
//! read by number as the entity key options are) of every served method is
//! checked at start-up as the official proxy checks it: an `in` needs a
//! source, an `out` a topic, a method may not read and write one topic, and
//! two methods of a service may not take the same input type from the same
//! source unless their consumer groups differ. The dev proxy also refuses an
//! `event_log` that is not the persistence id of a served event-sourced
//! entity (the official proxy would consume a log nobody writes). A refusal
//! fails [`DevProxy::start`] and is sent to the user function's
//! `reportError`.
//!
//! The methods of one service that share a source and consumer group (by
//! default the service's name) form a consumer. Each event goes to the
//! method whose input type is the event's type, else to the one taking
//! `google.protobuf.Any` (JSON and primitive events always go there), as a
//! call in the method's shape whose metadata are the event's CloudEvent
//! attributes (`ce-id`, `ce-source`, `ce-specversion`, `ce-type`,
//! `Content-Type`, then `ce-dataschema`, `ce-subject`, `ce-time` when set).
//! Its side effects and forward are performed as for any call. An event is
//! delivered at least once: it counts as handled once the call and what it
//! led to are done; a subscriber that fails (an error status, a `Failure`,
//! or no method for the event's type) is retried after
//! [`DevProxyConfig::eventing_min_backoff`], doubled on each failure up to
//! [`DevProxyConfig::eventing_max_backoff`], with a warning each time, and
//! the consumer does not move past the event. (The official proxy
//! acknowledges a `Failure` reply of a subscriber without an `out` topic.)
//! At shutdown a consumer finishes the event it is delivering.
//!
//! - **Event logs** (`in { event_log: "<persistence id>" }`): every event of
//!   the journal of that persistence id, all its entities in journal order,
//!   replayed then followed. `ce-id` is the event's global journal offset,
//!   `ce-source` the persistence id, `ce-subject` the entity id, `ce-type`
//!   the event's type URL, `Content-Type`
//!   `application/vnd.cloudstate.protobuf.any`; the payload is the event as
//!   it was emitted. With the SQLite store, a consumer's offset is saved
//!   after each event (table `projection_offset`; the official proxy saves
//!   it every 20 events or second), so a restart does not deliver again what
//!   was handled. The in-memory store keeps no offsets: each start of the
//!   dev proxy delivers the whole journal again, as the official in-memory
//!   mode does.
//! - **Topics**, **for development only**: the official proxy supports
//!   topics only through Google Pub/Sub; the dev proxy has an in-memory
//!   broker instead. The replies of a method with `out { topic }`, when a
//!   client or a consumer calls it (not as a forward target or a side
//!   effect, as in the official proxy), are published as CloudEvents whose
//!   attributes come from the reply's metadata, else `ce-id` a random UUID,
//!   `ce-source` the service name, `ce-type` the message type (the JSON type
//!   name; empty for primitives), `Content-Type` `application/protobuf`
//!   (`application/json`, `text/plain; charset=utf-8`,
//!   `application/octet-stream`), `ce-time` now. Each consumer of the topic
//!   (action or entity; an entity needs the event's entity key) gets every
//!   event published while the dev proxy runs; nothing is persisted, and an
//!   event published to a topic without consumers is dropped.
//!
//! # CRDT entities
//!
//! As in the official proxy, the proxy holds the real CRDT and the user
//! function a value kept in step by deltas. Commands to one CRDT entity are
//! not serialized: each goes to the user function as it arrives, and replies
//! are matched by command id. A server-streaming method (gRPC, or HTTP with
//! newline-delimited JSON or Server-Sent Events as for actions) keeps the
//! client subscribed while the user function's reply says `streamed`: every
//! streamed message reaches it, `end_stream` ends its call, and a client that
//! goes away cancels the subscription (`StreamCancelled`, whose response's
//! state change and side effects are applied). A reply is released once its
//! update is applied to the proxy's copy of the CRDT; that copy is the
//! `init` of the entity's next stream after passivation (and, with the
//! SQLite store, after a restart of the dev proxy, where the official proxy
//! keeps CRDTs in memory only). Entity commands carry no metadata, as in the
//! official proxy.
//!
//! **Replicas.** With [`DevProxyConfig::crdt_replicas`] above 1
//! (`--crdt-replicas N`), every CRDT entity runs as N replicas, each with its
//! own stream to the user function and its own copy of the CRDT. Commands go
//! to the replicas in turn, or to the one an `x-crdt-replica: K` request
//! header names ([`REPLICA_HEADER`], 0-based; gRPC metadata or HTTP header).
//! A `LOCAL` write reaches the other replicas after
//! [`DevProxyConfig::crdt_gossip_delay`]; a `MAJORITY` or `ALL` write is sent
//! to them at once and its reply waits until that many replicas (this one
//! included) have applied it (5 s at most, then the command fails with
//! "Failed to update CRDT at requested write consistency"). Each replica
//! passes what changed elsewhere to its user function as a delta, once no
//! command waits for a reply there, so a subscriber connected through one
//! replica sees changes made through another; a `Vote` has one voter per
//! replica. This simulates on one machine what Akka Distributed Data does
//! across the nodes of a cluster (add-wins sets and maps, per-replica
//! counters, last-writer-wins registers by clock then replica); it is not a
//! cluster: there are no partitions, and every replica lives in this process.
//!
//! Deviations from the official proxy: a delete ends the entity's stream and
//! forgets the CRDT on every replica, and a later command starts a fresh one
//! (the official proxy keeps a tombstone and answers "Entity deleted"
//! forever); a stream failure that names a command fails that command with
//! the user function's text (the official proxy answers a fixed text); any
//! other protocol error fails every call in progress with "Entity
//! terminating", is reported to the user function and stops the entity,
//! whose next command starts it again from the proxy's copy.
//!
//! As in the official proxy, the response headers of a call come from the
//! first reply's metadata, so they wait for the user function's first
//! answer: a client of a bidirectional method must send before it waits for
//! the response headers.
//!
//! # Errors a client can act on
//!
//! Where the official proxy answers a bad HTTP request with `400 Bad Request`
//! alone, the dev proxy says why: `Malformed JSON body: unrecognized field
//! name 'opton' at line 1 column 24`, `Content-Type must be
//! application/json, not text/plain`. A body longer than
//! [`DevProxyConfig::max_http_body`] (12 MiB by default, the user function's
//! message limit) is `413`. Error bodies are `text/plain` (a user function
//! failure's text verbatim, with 500), unless the request's `Accept` asks for
//! `application/json` or `application/*+json`: then a Google API error object,
//! `{"error":{"code":400,"message":"...","status":"INVALID_ARGUMENT"}}`, whose
//! `status` is the gRPC code of the same error ([`http::error_body`] lists
//! them; 413 is `RESOURCE_EXHAUSTED`, as gRPC answers a message over its size
//! limit). Over gRPC, a request to an entity whose bytes do not decode as the
//! method's input, or whose string or bytes key field is empty, fails with
//! `INVALID_ARGUMENT` and the text HTTP gives (the official proxy would
//! address the entity with the empty id). Action payloads pass through
//! undecoded, as in the official proxy.
//!
//! # Slow, idle and too many clients; shutdown
//!
//! One port serves HTTP/1.1 and HTTP/2 through
//! [`cloudstate_sdk::connections`]: a request's head, or a new connection's
//! first request or HTTP/2 preface, must arrive within
//! [`DevProxyConfig::header_read_timeout`] (a client sending a byte at a time
//! is cut off); an HTTP/JSON body within
//! [`DevProxyConfig::body_read_timeout`], else `408` and the connection
//! closes (gRPC request streams are not timed); a connection without a
//! request in progress closes after [`DevProxyConfig::idle_timeout`]; at
//! most [`DevProxyConfig::max_connections`] are served at once, and the next
//! ones wait in the listen backlog until a slot frees (a slow connect rather
//! than an error). A declared `Content-Length` over
//! [`DevProxyConfig::max_http_body`] is `413` before the body is read, a
//! chunked body as soon as it passes the limit.
//!
//! [`DevProxyHandle::shutdown`] closes the listening socket, closes at once
//! the connections with no request in progress (idle, half-sent head, half a
//! preface) and answers `503` to requests whose body is still arriving; CRDT
//! subscriptions end (gRPC `UNAVAILABLE`, an HTTP stream's body is cut) and
//! client streams of action calls end, as the user function does at its own
//! shutdown. The requests being answered finish within
//! [`DevProxyConfig::shutdown_grace`]; what is left after it is dropped. A
//! server-streaming action that never ends holds the grace.
//!
//! Entity keys are the input fields whose options set field 1080
//! (`cloudstate.entity_key`) or 50002 (the legacy option) to true, read by
//! number as the official proxy does: the user function's descriptors may
//! name these extensions as they like.
//!
//! Entity state is stored in memory or in SQLite ([`Store`]). It performs side
//! effects and forwards, and passivates idle entities.
//!
//! ```no_run
//! # async fn run() -> Result<(), cloudstate_devproxy::Error> {
//! use cloudstate_devproxy::{DevProxy, DevProxyConfig};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
//! let proxy = DevProxy::start(DevProxyConfig::new("127.0.0.1:8080"), listener).await?;
//! println!("serving on {}", proxy.local_addr());
//! proxy.shutdown().await;
//! # Ok(()) }
//! ```

mod action;
mod crdt;
mod discovery;
mod entity;
mod error;
mod eventing;
mod grpc;
pub mod http;
pub mod local;
pub mod model;
pub mod observe;
mod reflection;
mod router;
pub mod store;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate as pb;
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use discovery::{DiscoveryError, proxy_info};
pub use error::ProxyError;
pub use observe::{ActionShape, Observed, Observer};
pub use router::REPLICA_HEADER;
pub use store::Store;

use crate::entity::{CrdtSlots, Entities, Replication, Shared};
use crate::grpc::{MethodService, RawCodec};
use crate::http::HttpRules;
use crate::model::{EntityType, Model};
use crate::router::Router;

/// How the dev proxy runs.
#[derive(Debug, Clone)]
pub struct DevProxyConfig {
    /// `host:port` of the user function.
    pub user_function: String,
    /// Where journals, snapshots and value-entity state go.
    pub store: Store,
    /// Passivation of entities that configure none (the official default: 30 s).
    pub default_passivation: Duration,
    /// How long a command may wait for its entity (official: 1 min).
    pub relay_timeout: Duration,
    /// How long to keep trying discovery before giving up.
    pub discovery_timeout: Duration,
    /// The largest message each way (official: 12 MiB).
    pub max_message_size: usize,
    /// The largest HTTP request body; a longer one is answered 413
    /// (default: 12 MiB, the user function's message limit).
    pub max_http_body: usize,
    /// How long shutdown waits for calls in progress and entity streams
    /// (default 10 s). Idle and half-open connections are closed, and CRDT
    /// subscriptions ended, as shutdown begins (see the crate docs).
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request's head, or a new HTTP/2
    /// connection its preface, before the connection is closed (default
    /// 10 s). Timed from when the connection was accepted or answered its
    /// last request.
    pub header_read_timeout: Duration,
    /// How long an HTTP/JSON request's body may take to arrive, from when the
    /// request reached the proxy; a slower one is answered `408` and its
    /// connection closed (default 30 s). gRPC request streams are not timed:
    /// a client-streaming call may send when it likes.
    pub body_read_timeout: Duration,
    /// How long a connection may go without a request in progress before it
    /// is closed (default 60 s).
    pub idle_timeout: Duration,
    /// The most client connections served at once (default 1024); beyond it
    /// new connections wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Replicas of each CRDT entity (default 1): each has its own stream to
    /// the user function and its own copy of the CRDT, as the nodes of a
    /// cluster would (see the crate docs).
    pub crdt_replicas: u32,
    /// How long a `LOCAL` CRDT write takes to reach the other replicas.
    pub crdt_gossip_delay: Duration,
    /// How long an eventing consumer waits before it retries an event its
    /// subscriber failed (official: 3 s); the wait doubles on each failure
    /// up to [`eventing_max_backoff`](Self::eventing_max_backoff).
    pub eventing_min_backoff: Duration,
    /// The longest wait between retries of an event (official: 30 s).
    pub eventing_max_backoff: Duration,
    /// Where observed traffic goes (tests subscribe before starting).
    pub observer: Observer,
}

impl DevProxyConfig {
    /// Defaults of the official proxy, for the user function at `user_function`.
    pub fn new(user_function: impl Into<String>) -> Self {
        Self {
            user_function: user_function.into(),
            store: Store::memory(),
            default_passivation: Duration::from_secs(30),
            relay_timeout: Duration::from_secs(60),
            discovery_timeout: Duration::from_secs(60),
            max_message_size: 12 * 1024 * 1024,
            max_http_body: 12 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            crdt_replicas: 1,
            crdt_gossip_delay: Duration::from_millis(500),
            eventing_min_backoff: Duration::from_secs(3),
            eventing_max_backoff: Duration::from_secs(30),
            observer: Observer::new(),
        }
    }
}

impl DevProxyConfig {
    /// Sets the connection limits given in the environment:
    /// `PROXY_HEADER_READ_TIMEOUT_MS`, `PROXY_BODY_READ_TIMEOUT_MS`,
    /// `PROXY_IDLE_TIMEOUT_MS` and `PROXY_MAX_CONNECTIONS` (see the fields of
    /// the same names); unset ones keep their value.
    ///
    /// # Errors
    /// A value that is not a number, naming the variable.
    pub fn limits_from_env(&mut self) -> Result<(), String> {
        self.limits_from(|key| std::env::var(key).ok())
    }

    fn limits_from(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        let number = |key: &str| -> Result<Option<u64>, String> {
            var(key)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{key} [{v}] is not a number"))
                })
                .transpose()
        };
        let millis = |key: &str| Ok::<_, String>(number(key)?.map(Duration::from_millis));
        if let Some(t) = millis("PROXY_HEADER_READ_TIMEOUT_MS")? {
            self.header_read_timeout = t;
        }
        if let Some(t) = millis("PROXY_BODY_READ_TIMEOUT_MS")? {
            self.body_read_timeout = t;
        }
        if let Some(t) = millis("PROXY_IDLE_TIMEOUT_MS")? {
            self.idle_timeout = t;
        }
        if let Some(n) = number("PROXY_MAX_CONNECTIONS")? {
            self.max_connections = usize::try_from(n).unwrap_or(usize::MAX).max(1);
        }
        Ok(())
    }
}

/// Why the dev proxy stopped or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Discovery failed: the user function is unreachable or its spec was refused.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The HTTP rules of a method are invalid.
    #[error("HTTP rules: {0}")]
    HttpRules(String),
    /// Binding or serving failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Starts dev proxies.
#[derive(Debug)]
pub struct DevProxy;

/// A running dev proxy.
#[derive(Debug)]
pub struct DevProxyHandle {
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

struct App {
    router: Arc<Router>,
    http: HttpRules,
    max_message_size: usize,
    max_http_body: usize,
    body_read_timeout: Duration,
    /// Turns true when shutdown begins.
    stopping: watch::Receiver<bool>,
}

impl DevProxy {
    /// Discovers the user function, then serves on `listener` (bound by the
    /// caller, e.g. to port 0 in tests; connections wait until discovery is done).
    ///
    /// # Errors
    /// Discovery failed, or the user function's HTTP rules are invalid.
    pub async fn start(
        config: DevProxyConfig,
        listener: TcpListener,
    ) -> Result<DevProxyHandle, Error> {
        let channel = discovery::channel(&config.user_function, config.max_message_size)?;
        let model = discovery::discover(
            &channel,
            &config.user_function,
            config.discovery_timeout,
            config.default_passivation,
            config.max_message_size,
            &config.observer,
        )
        .await?;
        let served: Vec<&str> = model.services.keys().map(String::as_str).collect();
        let http = HttpRules::new(&model.pool, &served).map_err(Error::HttpRules)?;
        let model = Arc::new(model);
        let (stop, stopped) = watch::channel(false);
        let entities = Entities::new(Shared {
            channel: channel.clone(),
            store: config.store.clone(),
            observer: config.observer.clone(),
            max_message_size: config.max_message_size,
            streams: AtomicU64::new(0),
            replicas: Replication {
                count: config.crdt_replicas.max(1),
                gossip_delay: config.crdt_gossip_delay,
            },
            crdts: CrdtSlots::default(),
            router: OnceLock::new(),
        });
        let router = Arc::new(Router {
            model,
            entities: Arc::clone(&entities),
            channel,
            observer: config.observer.clone(),
            relay_timeout: config.relay_timeout,
            max_message_size: config.max_message_size,
            next_replica: AtomicU32::new(0),
            broker: eventing::Broker::default(),
            stopping: stopped.clone(),
        });
        let _ = entities.shared().router.set(Arc::downgrade(&router));
        let app = Arc::new(App {
            router,
            http,
            max_message_size: config.max_message_size,
            max_http_body: config.max_http_body,
            body_read_timeout: config.body_read_timeout,
            stopping: stopped.clone(),
        });
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let mut routes = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route_service("/grpc.health.v1.Health/Check", health_service.clone())
            .route_service("/grpc.health.v1.Health/Watch", health_service);
        routes = with_reflection(routes, &app.router.model);
        let router = Arc::clone(&app.router);
        let routes = routes.fallback(serve).with_state(app);

        let addr = listener.local_addr()?;
        let grace = config.shutdown_grace;
        let limits = {
            let mut limits = cloudstate_sdk::connections::ConnectionLimits::default();
            limits.header_read_timeout = config.header_read_timeout;
            limits.idle_timeout = config.idle_timeout;
            limits.max_connections = config.max_connections;
            limits.shutdown_grace = grace;
            limits.http1 = true;
            limits
        };
        let consumers = eventing::start(
            &router,
            &config.store,
            &stopped,
            eventing::Backoff {
                min: config.eventing_min_backoff,
                max: config.eventing_max_backoff.max(config.eventing_min_backoff),
            },
        );
        let task = tokio::spawn(async move {
            let mut stopped = stopped;
            // Idle and half-open connections close as shutdown begins, CRDT
            // subscriptions end; calls in progress get the grace period.
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            cloudstate_sdk::connections::serve(listener, routes, limits, shutdown).await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            // Consumers stop between events: the one in delivery is
            // finished (and its offset saved) within the grace period.
            for mut consumer in consumers {
                if tokio::time::timeout(grace, &mut consumer).await.is_err() {
                    warn!(
                        "an eventing consumer still busy {grace:?} after shutdown began: stopped"
                    );
                    consumer.abort();
                }
            }
            entities.shutdown(grace).await;
        });
        info!(
            "Cloudstate dev proxy listening on {addr} for the user function at {}",
            config.user_function
        );
        Ok(DevProxyHandle {
            addr,
            stop: Some(stop),
            task,
        })
    }
}

impl DevProxyHandle {
    /// Where it serves.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes idle and half-open connections, ends CRDT
    /// subscriptions, lets the calls in progress finish (those still open
    /// after the shutdown grace are dropped), passivates every entity.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the proxy stops by itself (it does not, unless it fails).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Server reflection over the served services, so `grpcurl` works: v1alpha
/// answers as the official proxy does (see `reflection`); v1, which the
/// official proxy lacks, comes from tonic-reflection.
fn with_reflection(routes: axum::Router<Arc<App>>, model: &Model) -> axum::Router<Arc<App>> {
    let served: Vec<&str> = model.services.keys().map(String::as_str).collect();
    let routes = routes.route_service(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        reflection::Reflection::server(model.pool.clone(), &served),
    );
    let Ok(set) =
        <prost_types::FileDescriptorSet as prost::Message>::decode(model.spec.proto.as_slice())
    else {
        return routes;
    };
    let v1 = served
        .iter()
        .fold(
            tonic_reflection::server::Builder::configure().register_file_descriptor_set(set),
            |b, name| b.with_service_name(*name),
        )
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1();
    match v1 {
        Ok(v1) => routes.route_service(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            v1,
        ),
        Err(e) => {
            warn!("server reflection v1 is off: {e}");
            routes
        }
    }
}

/// Everything that is not a fixed route: the user function's methods over
/// gRPC (by content type) or HTTP/JSON.
async fn serve(State(app): State<Arc<App>>, request: Request) -> Response {
    let grpc = request
        .headers()
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        serve_grpc(&app, request).await
    } else {
        serve_http(&app, request).await
    }
}

async fn serve_grpc(app: &Arc<App>, request: Request) -> Response {
    let Some(method) = app
        .router
        .model
        .methods_by_path
        .get(request.uri().path())
        .cloned()
    else {
        let status = tonic::Status::unimplemented(format!("no method at {}", request.uri().path()));
        return status.into_http::<Body>().into_response();
    };
    let service = MethodService {
        router: Arc::clone(&app.router),
        method,
    };
    let mut grpc = tonic::server::Grpc::new(RawCodec)
        .max_decoding_message_size(app.max_message_size)
        .max_encoding_message_size(app.max_message_size);
    grpc.streaming(service, request).await.into_response()
}

async fn serve_http(app: &Arc<App>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let accept = parts
        .headers
        .get(::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let error = |status, code, message: &str| error_response(accept, status, code, message);
    let not_found = || {
        error(
            ::http::StatusCode::NOT_FOUND,
            tonic::Code::NotFound,
            &format!(
                "No HTTP rule of the user function matches {} {}",
                parts.method,
                parts.uri.path()
            ),
        )
    };
    let Some(found) = app.http.route(&parts.method, parts.uri.path()) else {
        return not_found();
    };
    let body = match read_body(
        body,
        parts.headers.get(::http::header::CONTENT_LENGTH),
        app.max_http_body,
        app.body_read_timeout,
        app.stopping.clone(),
    )
    .await
    {
        Ok(body) => body,
        Err(BodyError::Slow(text)) => {
            info!("HTTP request to {} refused: {text}", parts.uri.path());
            return closing(error(
                ::http::StatusCode::REQUEST_TIMEOUT,
                tonic::Code::DeadlineExceeded,
                &text,
            ));
        }
        Err(BodyError::ShuttingDown(text)) => {
            return closing(error(
                ::http::StatusCode::SERVICE_UNAVAILABLE,
                tonic::Code::Unavailable,
                &text,
            ));
        }
        Err(BodyError::TooLarge(text)) => {
            info!("HTTP request to {} refused: {text}", parts.uri.path());
            return closing(error(
                ::http::StatusCode::PAYLOAD_TOO_LARGE,
                tonic::Code::ResourceExhausted,
                &text,
            ));
        }
        Err(BodyError::Read(text)) => {
            return error(
                ::http::StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                &text,
            );
        }
    };
    let content_type = parts
        .headers
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let input = match found.request(parts.uri.query(), content_type, &body) {
        Ok(input) => input,
        Err(bad) => {
            info!("bad HTTP request to {}: {}", parts.uri.path(), bad.0);
            return error(
                ::http::StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                &bad.0,
            );
        }
    };
    let full_name = found.method().full_name().to_owned();
    let Some((service, _)) = full_name.rsplit_once('.') else {
        return not_found();
    };
    let Some(method) = app
        .router
        .model
        .services
        .get(service)
        .and_then(|s| s.methods.get(found.method().name()))
        .cloned()
    else {
        return not_found();
    };
    let result = if method.entity_type == EntityType::Action {
        // The headers become the call's metadata, as in the official proxy.
        let mut metadata = action::metadata_of(&parts.headers).unwrap_or_default();
        metadata.entries.push(pb::MetadataEntry {
            key: "message-accept-encoding".to_owned(),
            value: Some(pb::metadata_entry::Value::StringValue(
                "identity".to_owned(),
            )),
        });
        // Client-streaming methods get exactly one message over HTTP.
        let input = futures_util::stream::iter([Ok(bytes::Bytes::from(input))]).boxed();
        let mut answers = action::call(Arc::clone(&app.router), method, Some(metadata), input);
        if found.method().is_server_streaming() {
            return stream_response(found.stream_renderer(accept), accept, answers).await;
        }
        let first = answers.next().await.unwrap_or(Ok(None));
        // The user function completes its side after the one response.
        while answers.next().await.is_some() {}
        first
    } else {
        let payload = Any {
            type_url: method.input_type_url().to_owned(),
            value: input,
        };
        // Entity commands carry no metadata; CRDT calls read the replica pin.
        let metadata = (method.entity_type == EntityType::Crdt)
            .then(|| action::metadata_of(&parts.headers))
            .flatten();
        if method.entity_type == EntityType::Crdt && found.method().is_server_streaming() {
            let answers = Arc::clone(&app.router).crdt_stream(method, payload, metadata);
            return stream_response(found.stream_renderer(accept), accept, answers).await;
        }
        app.router
            .route_ingress(&method, payload, metadata, &full_name)
            .await
    };
    match result {
        Ok(Some(answer)) => match found.response(&answer.message) {
            Ok((content_type, body)) => {
                let mut response =
                    ([(::http::header::CONTENT_TYPE, content_type)], body).into_response();
                add_reply_headers(&mut response, answer.metadata.as_ref());
                response
            }
            Err(e) => error(
                ::http::StatusCode::INTERNAL_SERVER_ERROR,
                tonic::Code::Internal,
                &e,
            ),
        },
        Ok(None) => error(
            ::http::StatusCode::INTERNAL_SERVER_ERROR,
            tonic::Code::Internal,
            "The user function sent no reply message",
        ),
        Err(e) => proxy_error_response(accept, &e),
    }
}

/// Why a request body was not read.
enum BodyError {
    /// Over the limit (413).
    TooLarge(String),
    /// The body could not be read (400).
    Read(String),
    /// The body did not arrive within the body read timeout (408).
    Slow(String),
    /// Shutdown began while the body was arriving (503).
    ShuttingDown(String),
}

/// Reads a request body of at most `limit` bytes within `timeout`. A
/// `Content-Length` over the limit is refused before anything is read; a
/// body still arriving when shutdown begins is given up, as its connection
/// is half open.
async fn read_body(
    body: Body,
    content_length: Option<&::http::HeaderValue>,
    limit: usize,
    timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) -> Result<bytes::Bytes, BodyError> {
    let too_large = |length: Option<usize>| {
        BodyError::TooLarge(match length {
            Some(length) => {
                format!("Request body too large: {length} bytes, the limit is {limit} bytes")
            }
            None => format!("Request body too large: the limit is {limit} bytes"),
        })
    };
    let declared = content_length
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(length) = declared.filter(|&length| length > limit) {
        return Err(too_large(Some(length)));
    }
    let read = async {
        let mut data = body.into_data_stream();
        let mut read = bytes::BytesMut::new();
        while let Some(chunk) = data.next().await {
            let chunk =
                chunk.map_err(|e| BodyError::Read(format!("Cannot read the request body: {e}")))?;
            if read.len() + chunk.len() > limit {
                return Err(too_large(None));
            }
            read.extend_from_slice(&chunk);
        }
        Ok(read.freeze())
    };
    tokio::select! {
        biased;
        read = tokio::time::timeout(timeout, read) => read.unwrap_or_else(|_| {
            Err(BodyError::Slow(format!(
                "Request body not received within {} ms",
                timeout.as_millis()
            )))
        }),
        _ = stopping.wait_for(|stop| *stop) => Err(BodyError::ShuttingDown(
            "The dev proxy is shutting down: the request body was not complete".to_owned(),
        )),
    }
}

/// `response` with `Connection: close`: its request's body is left unread.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(
        ::http::header::CONNECTION,
        ::http::HeaderValue::from_static("close"),
    );
    response
}

/// An error answer in the form the request's `Accept` asks for (see
/// [`http::error_body`]).
fn error_response(
    accept: Option<&str>,
    status: ::http::StatusCode,
    code: tonic::Code,
    message: &str,
) -> Response {
    let (content_type, body) = http::error_body(accept, status, code, message);
    (status, [(::http::header::CONTENT_TYPE, content_type)], body).into_response()
}

fn proxy_error_response(accept: Option<&str>, e: &ProxyError) -> Response {
    let (status, text) = e.http();
    error_response(accept, status, e.code(), &text)
}

/// The string entries of a reply's metadata become response headers.
fn add_reply_headers(response: &mut Response, metadata: Option<&pb::Metadata>) {
    let Some(metadata) = metadata else { return };
    for entry in &metadata.entries {
        if let (Some(pb::metadata_entry::Value::StringValue(v)), Ok(name)) = (
            &entry.value,
            ::http::HeaderName::try_from(entry.key.as_str()),
        ) && let Ok(value) = ::http::HeaderValue::try_from(v.as_str())
        {
            response.headers_mut().insert(name, value);
        }
    }
}

/// A server-streaming call over HTTP: newline-delimited JSON, or Server-Sent
/// Events when asked for. The status and headers wait for the first answer
/// (an error there is a plain error response); an error later aborts the
/// body, as the status is already sent.
async fn stream_response(
    renderer: http::StreamRenderer,
    accept: Option<&str>,
    mut answers: action::Answers,
) -> Response {
    let first = match answers.next().await {
        Some(Err(e)) => return proxy_error_response(accept, &e),
        first => first,
    };
    let metadata = match &first {
        Some(Ok(Some(answer))) => answer.metadata.clone(),
        _ => None,
    };
    let content_type = renderer.format().content_type().map_or_else(
        || {
            metadata
                .iter()
                .flat_map(|m| &m.entries)
                .find_map(|e| match &e.value {
                    Some(pb::metadata_entry::Value::StringValue(v))
                        if e.key.eq_ignore_ascii_case("content-type") =>
                    {
                        Some(v.clone())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| "application/octet-stream".to_owned())
        },
        str::to_owned,
    );
    let body = futures_util::stream::iter(first)
        .chain(answers)
        .filter_map(move |answer| {
            std::future::ready(match answer {
                Ok(Some(answer)) => Some(
                    renderer
                        .chunk(&answer.message)
                        .map(bytes::Bytes::from)
                        .map_err(std::io::Error::other),
                ),
                Ok(None) => None,
                Err(e) => Some(Err(std::io::Error::other(e.to_string()))),
            })
        });
    let mut response = Response::new(Body::from_stream(body));
    if let Ok(value) = ::http::HeaderValue::try_from(content_type) {
        response
            .headers_mut()
            .insert(::http::header::CONTENT_TYPE, value);
    }
    add_reply_headers(&mut response, metadata.as_ref());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_environment() {
        let mut config = DevProxyConfig::new("uf:8080");
        let set = |key: &str| {
            Some(
                match key {
                    "PROXY_HEADER_READ_TIMEOUT_MS" => "250",
                    "PROXY_BODY_READ_TIMEOUT_MS" => "1500",
                    "PROXY_IDLE_TIMEOUT_MS" => "90000",
                    "PROXY_MAX_CONNECTIONS" => "7",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        config.limits_from(set).unwrap();
        assert_eq!(config.header_read_timeout, Duration::from_millis(250));
        assert_eq!(config.body_read_timeout, Duration::from_millis(1500));
        assert_eq!(config.idle_timeout, Duration::from_secs(90));
        assert_eq!(config.max_connections, 7);
        let bad = |key: &str| (key == "PROXY_IDLE_TIMEOUT_MS").then(|| "soon".to_owned());
        assert_eq!(
            config.limits_from(bad),
            Err("PROXY_IDLE_TIMEOUT_MS [soon] is not a number".to_owned())
        );
    }
}
