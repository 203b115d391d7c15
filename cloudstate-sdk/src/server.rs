//! The server builder: register entities, then serve the Cloudstate protocol.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tracing::info;

use crate::Error;
use crate::action::{ActionHandler, ActionService};
use crate::connections::ConnectionLimits;
use crate::crdt::runtime::{CrdtProtocol, CrdtService};
use crate::crdt::{CrdtEntity, CrdtOptions};
use crate::descriptors::Descriptors;
use crate::descriptors::ServiceInfo;
use crate::discovery::Discovery;
use crate::entity::{self, Kind, Registration, Registry, Streaming};
use crate::eventsourced::{
    EventSourcedEntity, EventSourcedOptions, EventSourcedProtocol, EventSourcedService,
};
use crate::protocol::cloudstate::action::action_protocol_server::ActionProtocolServer;
use crate::protocol::cloudstate::crdt::crdt_server::CrdtServer;
use crate::protocol::cloudstate::eventsourced::event_sourced_server::EventSourcedServer;
use crate::protocol::cloudstate::valueentity::value_entity_server::ValueEntityServer;
use crate::protocol::cloudstate::{self as pb, entity_discovery_server::EntityDiscoveryServer};
use crate::valueentity::{
    ValueEntity, ValueEntityOptions, ValueEntityProtocol, ValueEntityService,
};

/// Entity type names of the protocol, as sent in `Entity.entity_type`.
pub mod entity_type {
    /// Event-sourced entities.
    pub const EVENT_SOURCED: &str = "cloudstate.eventsourced.EventSourced";
    /// Value entities.
    pub const VALUE_ENTITY: &str = "cloudstate.valueentity.ValueEntity";
    /// CRDT entities.
    pub const CRDT: &str = "cloudstate.crdt.Crdt";
    /// Actions.
    pub const ACTION: &str = "cloudstate.action.ActionProtocol";
}

/// Name reported as `ServiceInfo.support_library_name`.
pub const SUPPORT_LIBRARY_NAME: &str = "cloudstate-rust-sdk";
/// The protocol version this library speaks; the proxy accepts only 0.2.
pub const PROTOCOL_VERSION: (i32, i32) = (0, 2);
/// Default limit on one message, each way: above the proxy's 12 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// Default limit on one message to the proxy: the official proxy's
/// `max-inbound-message-size`, 12 MiB.
pub const DEFAULT_MAX_REPLY_SIZE: usize = 12 * 1024 * 1024;

/// A Cloudstate user function: the entities it serves and how.
///
/// ```no_run
/// # async fn run() -> Result<(), cloudstate_sdk::Error> {
/// # let descriptors: &[u8] = &[];
/// cloudstate_sdk::CloudState::new()
///     .service_name("my-service")
///     .descriptor_set(descriptors)
///     // .event_sourced("com.example.MyService", MyEntity, EventSourcedOptions::new("my-entity"))
///     .serve()
///     .await
/// # }
/// ```
pub struct CloudState {
    service_name: String,
    service_version: String,
    descriptor_sets: Vec<Vec<u8>>,
    services: Vec<Pending>,
    max_message_size: usize,
    max_reply_size: usize,
    limits: ConnectionLimits,
}

/// A registered service, waiting for `serve` to check it against the
/// descriptors and install it in the registry of its kind.
struct Pending {
    kind: &'static Kind,
    service_name: String,
    persistence_id: String,
    passivation_timeout: Option<Duration>,
    /// Why the registration is refused before any descriptor check.
    refusal: Option<String>,
    install: Box<Install>,
}

/// Puts a checked registration (kind, service name, methods) into its registry.
type Install = dyn FnOnce(&mut Registries, &'static Kind, String, ServiceInfo) + Send;

/// What is served, by kind.
#[derive(Default)]
struct Registries {
    event_sourced: Registry<dyn crate::eventsourced::Factory, i64>,
    value_entities: Registry<dyn crate::valueentity::runtime::Factory>,
    crdts: Registry<dyn crate::crdt::runtime::Factory>,
    actions: HashMap<String, Arc<dyn ActionHandler>>,
    /// The largest message to the proxy, for every registration.
    max_reply: usize,
}

impl Registries {
    fn served_protocols(&self) -> Vec<&'static str> {
        let mut names = vec!["cloudstate.EntityDiscovery"];
        if !self.event_sourced.is_empty() {
            names.push(entity_type::EVENT_SOURCED);
        }
        if !self.value_entities.is_empty() {
            names.push(entity_type::VALUE_ENTITY);
        }
        if !self.crdts.is_empty() {
            names.push(entity_type::CRDT);
        }
        if !self.actions.is_empty() {
            names.push(entity_type::ACTION);
        }
        names
    }
}

/// An entity registration with kind-specific `settings`.
fn registration<F: ?Sized, S>(
    kind: &'static Kind,
    service_name: String,
    service: ServiceInfo,
    settings: S,
    factory: Arc<F>,
    max_reply: usize,
) -> Arc<Registration<F, S>> {
    Arc::new(Registration {
        kind,
        service_name,
        service: Some(service),
        settings,
        factory,
        max_reply,
    })
}

impl Default for CloudState {
    fn default() -> Self {
        Self::new()
    }
}

impl CloudState {
    /// A user function that serves nothing yet.
    pub fn new() -> Self {
        Self {
            service_name: String::new(),
            service_version: String::new(),
            descriptor_sets: Vec::new(),
            services: Vec::new(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_reply_size: DEFAULT_MAX_REPLY_SIZE,
            limits: ConnectionLimits::default(),
        }
    }

    /// The name reported to the proxy in `ServiceInfo` (e.g. the crate name).
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// The version reported to the proxy in `ServiceInfo`.
    #[must_use]
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = version.into();
        self
    }

    /// Adds a serialized `FileDescriptorSet` describing served services and
    /// their domain types, with every import. Sets are merged by file name.
    #[must_use]
    pub fn descriptor_set(mut self, bytes: &[u8]) -> Self {
        self.descriptor_sets.push(bytes.to_vec());
        self
    }

    /// Serves `entity` as the event-sourced entity behind the gRPC service
    /// `service_name` (fully qualified, e.g. `com.example.shoppingcart.ShoppingCart`).
    #[must_use]
    pub fn event_sourced<E: EventSourcedEntity>(
        self,
        service_name: impl Into<String>,
        entity: E,
        options: EventSourcedOptions,
    ) -> Self {
        let service_name = service_name.into();
        let every = options.snapshot_every;
        // Snapshots that cannot be taken are a mistake in the setup: the
        // interval would silently do nothing.
        let refusal = (options.snapshots_requested && !entity.takes_snapshots()).then(|| {
            format!(
                "event-sourced service [{service_name}] is registered with snapshot_every({every}), \
                 but its entity takes no snapshots; declare a snapshot type \
                 (`EventSourced::snapshot` in build.rs) or drop snapshot_every"
            )
        });
        let factory: Arc<dyn crate::eventsourced::Factory> =
            Arc::new(crate::eventsourced::Typed(Arc::new(entity)));
        self.pending(
            &entity::EVENT_SOURCED,
            service_name,
            options.persistence_id,
            options.passivation_timeout,
            refusal,
            move |registries, kind, name, service| {
                let registration = registration(
                    kind,
                    name.clone(),
                    service,
                    every,
                    factory,
                    registries.max_reply,
                );
                registries.event_sourced.insert(name, registration);
            },
        )
    }

    /// Serves `entity` as the value entity behind the gRPC service
    /// `service_name` (fully qualified).
    #[must_use]
    pub fn value_entity<E: ValueEntity>(
        self,
        service_name: impl Into<String>,
        entity: E,
        options: ValueEntityOptions,
    ) -> Self {
        let factory: Arc<dyn crate::valueentity::runtime::Factory> =
            Arc::new(crate::valueentity::Typed(Arc::new(entity)));
        self.pending(
            &entity::VALUE_ENTITY,
            service_name.into(),
            options.persistence_id,
            options.passivation_timeout,
            None,
            move |registries, kind, name, service| {
                let registration = registration(
                    kind,
                    name.clone(),
                    service,
                    (),
                    factory,
                    registries.max_reply,
                );
                registries.value_entities.insert(name, registration);
            },
        )
    }

    /// Serves `entity` as the CRDT entity behind the gRPC service
    /// `service_name` (fully qualified). Its methods may be unary or server
    /// streaming (subscriptions to changes).
    #[must_use]
    pub fn crdt<E: CrdtEntity>(
        self,
        service_name: impl Into<String>,
        entity: E,
        options: CrdtOptions,
    ) -> Self {
        let service_name = service_name.into();
        let factory: Arc<dyn crate::crdt::runtime::Factory> =
            Arc::new(crate::crdt::runtime::Typed(Arc::new(entity)));
        let persistence_id = options
            .persistence_id
            .unwrap_or_else(|| service_name.clone());
        self.pending(
            &entity::CRDT,
            service_name,
            persistence_id,
            options.passivation_timeout,
            None,
            move |registries, kind, name, service| {
                let registration = registration(
                    kind,
                    name.clone(),
                    service,
                    (),
                    factory,
                    registries.max_reply,
                );
                registries.crdts.insert(name, registration);
            },
        )
    }

    /// Serves `handler` as the action (stateless service) behind the gRPC
    /// service `service_name` (fully qualified). Its methods may stream either
    /// way. Discovery reports it with the entity type
    /// `cloudstate.action.ActionProtocol`, the simple service name as
    /// persistence id (unused by the proxy) and no passivation.
    #[must_use]
    pub fn action<A: ActionHandler>(self, service_name: impl Into<String>, handler: A) -> Self {
        let service_name = service_name.into();
        let persistence_id = service_name
            .rsplit('.')
            .next()
            .unwrap_or(&service_name)
            .to_owned();
        let handler: Arc<dyn ActionHandler> = Arc::new(handler);
        self.pending(
            &entity::ACTION,
            service_name,
            persistence_id,
            None,
            None,
            move |registries, _, name, _| {
                registries.actions.insert(name, handler);
            },
        )
    }

    fn pending(
        mut self,
        kind: &'static Kind,
        service_name: String,
        persistence_id: String,
        passivation_timeout: Option<Duration>,
        refusal: Option<String>,
        install: impl FnOnce(&mut Registries, &'static Kind, String, ServiceInfo) + Send + 'static,
    ) -> Self {
        self.services.push(Pending {
            kind,
            service_name,
            persistence_id,
            passivation_timeout,
            refusal,
            install: Box::new(install),
        });
        self
    }

    /// The largest message accepted or sent, in bytes (default 16 MiB).
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The largest message sent to the proxy, in bytes (default 12 MiB, the
    /// official proxy's `max-inbound-message-size`). A reply above it, with
    /// its events, state and side effects, is not sent: the command fails
    /// with a description of what was too large, and the entity goes on
    /// without that command's changes. A snapshot that would take an
    /// event-sourced reply over the limit is left out instead (the journal
    /// has every event). For a CRDT the stream ends with that failure, and
    /// the proxy restarts the entity from its copy of the state.
    #[must_use]
    pub fn max_reply_size(mut self, bytes: usize) -> Self {
        self.max_reply_size = bytes;
        self
    }

    /// How long a graceful shutdown waits for streams to end (default 10 s).
    /// Entity streams and action inputs end as shutdown begins; the grace is
    /// for the commands in progress.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.limits.shutdown_grace = grace;
        self
    }

    /// How long a new connection may take to send the HTTP/2 connection
    /// preface (default 10 s); one that does not is closed, so a client
    /// that connects and stalls holds no connection slot.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// How long a connection may carry no stream or call before it is closed
    /// with `GOAWAY` (default 60 s; the proxy reconnects when it next needs
    /// one).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// The most connections served at once (default 1024); more wait in the
    /// listen backlog until one closes.
    #[must_use]
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.limits.max_connections = connections;
        self
    }

    /// Serves as [`serve`](Self::serve) does, from a plain `fn main`: starts
    /// the async runtime and, unless the program set one, a log subscriber
    /// ([`init_logging`](crate::init_logging)). Returns when the server stops.
    ///
    /// ```no_run
    /// fn main() -> Result<(), cloudstate_sdk::Error> {
    ///     cloudstate_sdk::CloudState::new()
    ///         // .register(my_service::Entity(MyEntity), options)
    ///         .run()
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`serve`](Self::serve), or when the runtime cannot start.
    pub fn run(self) -> Result<(), Error> {
        crate::init_logging();
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(self.serve())
    }

    /// Serves on `HOST`:`PORT` (default `127.0.0.1:8080`) until SIGINT or SIGTERM.
    ///
    /// # Errors
    /// An invalid registration or address, or a failure to bind.
    pub async fn serve(self) -> Result<(), Error> {
        let addr = listen_address()?;
        let listener = TcpListener::bind(addr).await?;
        info!(
            "Cloudstate user function listening on {}",
            listener.local_addr()?
        );
        self.serve_with_listener(listener, shutdown_signal()).await
    }

    /// Serves on `listener` until `signal` completes, then shuts down
    /// gracefully: the listener closes, connections with no call in progress
    /// (idle, or half a preface sent) close at once, in-flight commands
    /// finish, every entity stream ends. Connections are served within the
    /// limits set by [`handshake_timeout`](Self::handshake_timeout),
    /// [`idle_timeout`](Self::idle_timeout) and
    /// [`max_connections`](Self::max_connections) (see
    /// [`connections`](crate::connections)).
    ///
    /// # Errors
    /// An invalid registration, or a failure of the server.
    pub async fn serve_with_listener<F>(self, listener: TcpListener, signal: F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let limits = self.limits.clone();
        let max = self.max_message_size;
        let built = self.build()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in built.registries.served_protocols() {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        health.set_service_status("", ServingStatus::Serving).await;

        let mut router = tonic::service::Routes::new(health_service).add_service(
            EntityDiscoveryServer::new(Discovery::new(built.spec))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        let served = built.registries;
        // One protocol service per kind that has something registered.
        macro_rules! serve_kind {
            ($registry:expr, $server:ident, $service:expr) => {
                if !$registry.is_empty() {
                    router = router.add_service(
                        $server::new($service)
                            .max_decoding_message_size(max)
                            .max_encoding_message_size(max),
                    );
                }
            };
        }
        serve_kind!(
            served.value_entities,
            ValueEntityServer,
            ValueEntityService::new(
                ValueEntityProtocol::new(served.value_entities),
                stop_rx.clone()
            )
        );
        serve_kind!(
            served.crdts,
            CrdtServer,
            CrdtService::new(CrdtProtocol::new(served.crdts), stop_rx.clone())
        );
        serve_kind!(
            served.actions,
            ActionProtocolServer,
            ActionService::new(served.actions, stop_rx.clone(), served.max_reply)
        );
        serve_kind!(
            served.event_sourced,
            EventSourcedServer,
            EventSourcedService::new(
                EventSourcedProtocol::new(served.event_sourced),
                stop_rx.clone()
            )
        );

        let shutdown = async move {
            signal.await;
            info!("shutting down: finishing in-flight commands");
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            // Entity streams and action inputs end now; the connections
            // follow once their calls are done.
            let _ = stop_tx.send(true);
        };
        crate::connections::serve(listener, router.prepare(), limits, shutdown).await;
        info!("stopped");
        Ok(())
    }

    /// The registries of what is registered, checked as for serving, and the
    /// merged descriptors (for the in-memory test kits).
    ///
    /// Registered with no descriptors at all (hand-written entities, or
    /// generated code built against a stand-in empty set), there is nothing
    /// to check against: the services are installed without method lists, so
    /// every command reaches its handler, as `without_descriptors` kits do.
    #[cfg(feature = "testkit")]
    fn checked_for_kit(self) -> Result<(Registries, Option<Descriptors>), Error> {
        if self.descriptor_sets.iter().all(Vec::is_empty) {
            let mut registries = Registries {
                max_reply: self.max_reply_size.min(self.max_message_size),
                ..Registries::default()
            };
            for pending in self.services {
                (pending.install)(
                    &mut registries,
                    pending.kind,
                    pending.service_name,
                    ServiceInfo::default(),
                );
            }
            fn unchecked<F: ?Sized, S>(registry: &mut Registry<F, S>) {
                for registration in registry.values_mut() {
                    if let Some(registration) = Arc::get_mut(registration) {
                        registration.service = None;
                    }
                }
            }
            unchecked(&mut registries.event_sourced);
            unchecked(&mut registries.value_entities);
            unchecked(&mut registries.crdts);
            return Ok((registries, None));
        }
        let built = self.build()?;
        let mut descriptors = Descriptors::default();
        descriptors.add_encoded(&built.spec.proto)?;
        Ok((built.registries, Some(descriptors)))
    }

    /// The registration of the one event-sourced entity registered.
    #[cfg(feature = "testkit")]
    pub(crate) fn event_sourced_registration(
        self,
    ) -> Result<Arc<crate::eventsourced::runtime::Registration>, Error> {
        only(
            self.checked_for_kit()?.0.event_sourced,
            "event-sourced entity",
        )
    }

    /// The registration of the one value entity registered.
    #[cfg(feature = "testkit")]
    pub(crate) fn value_entity_registration(
        self,
    ) -> Result<Arc<crate::valueentity::runtime::Registration>, Error> {
        only(self.checked_for_kit()?.0.value_entities, "value entity")
    }

    /// The registration of the one CRDT entity registered.
    #[cfg(feature = "testkit")]
    pub(crate) fn crdt_registration(
        self,
    ) -> Result<Arc<crate::crdt::runtime::Registration>, Error> {
        only(self.checked_for_kit()?.0.crdts, "CRDT entity")
    }

    /// The one action registered.
    #[cfg(feature = "testkit")]
    pub(crate) fn action_registration(self) -> Result<ActionRegistration, Error> {
        let (registries, descriptors) = self.checked_for_kit()?;
        let (service_name, handler) = only_entry(registries.actions, "action")?;
        let service = descriptors.and_then(|d| d.service(&service_name));
        Ok(ActionRegistration {
            service_name,
            handler,
            service,
        })
    }

    fn build(self) -> Result<Built, Error> {
        let mut descriptors = Descriptors::default();
        for set in &self.descriptor_sets {
            descriptors.add_encoded(set)?;
        }
        descriptors.check_complete()?;
        if self.services.is_empty() {
            return Err(Error::Registration(
                "no entities registered; the proxy requires at least one".into(),
            ));
        }
        let mut checks = Checks {
            descriptors: &descriptors,
            entities: Vec::new(),
            services: HashSet::new(),
            persistence_ids: HashMap::new(),
        };
        let mut registries = Registries {
            max_reply: self.max_reply_size.min(self.max_message_size),
            ..Registries::default()
        };
        let mut services = self.services;
        // Discovery lists the kinds in a fixed order, each in registration order.
        services.sort_by_key(|p| rank(p.kind));
        for pending in services {
            let service = checks.service(&pending)?;
            (pending.install)(&mut registries, pending.kind, pending.service_name, service);
        }
        let spec = pb::EntitySpec {
            proto: descriptors.encode(),
            entities: checks.entities,
            service_info: Some(pb::ServiceInfo {
                service_name: self.service_name,
                service_version: self.service_version,
                service_runtime: runtime_description(),
                support_library_name: SUPPORT_LIBRARY_NAME.to_owned(),
                support_library_version: env!("CARGO_PKG_VERSION").to_owned(),
                protocol_major_version: PROTOCOL_VERSION.0,
                protocol_minor_version: PROTOCOL_VERSION.1,
            }),
        };
        Ok(Built { spec, registries })
    }
}

/// A registered action, for the test kit.
#[cfg(feature = "testkit")]
pub(crate) struct ActionRegistration {
    pub(crate) service_name: String,
    pub(crate) handler: Arc<dyn ActionHandler>,
    /// Its methods; `None` without descriptors.
    pub(crate) service: Option<ServiceInfo>,
}

/// The one entry of a registry, for a test kit.
#[cfg(feature = "testkit")]
fn only_entry<T>(registry: HashMap<String, T>, what: &str) -> Result<(String, T), Error> {
    let mut entries = registry.into_iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Ok(entry),
        _ => Err(Error::Registration(format!(
            "expected exactly one {what} to be registered"
        ))),
    }
}

#[cfg(feature = "testkit")]
fn only<T>(registry: HashMap<String, T>, what: &str) -> Result<T, Error> {
    only_entry(registry, what).map(|(_, registration)| registration)
}

/// The position of a kind in discovery.
fn rank(kind: &Kind) -> usize {
    [
        entity_type::EVENT_SOURCED,
        entity_type::VALUE_ENTITY,
        entity_type::CRDT,
        entity_type::ACTION,
    ]
    .iter()
    .position(|t| *t == kind.entity_type)
    .unwrap_or(usize::MAX)
}

/// What every registration is checked for before serving.
struct Checks<'d> {
    descriptors: &'d Descriptors,
    entities: Vec<pb::Entity>,
    services: HashSet<String>,
    /// By entity type: persistence id → service.
    persistence_ids: HashMap<(&'static str, String), String>,
}

impl Checks<'_> {
    /// Checks one registration by the rules of its kind (call shapes the
    /// proxy accepts, persistence ids) and records its `Entity`.
    fn service(&mut self, pending: &Pending) -> Result<ServiceInfo, Error> {
        let (name, kind, persistence_id) = (
            pending.service_name.as_str(),
            pending.kind,
            pending.persistence_id.as_str(),
        );
        let label = kind.label;
        if let Some(refusal) = &pending.refusal {
            return Err(Error::Registration(refusal.clone()));
        }
        let service = self.descriptors.service(name).ok_or_else(|| {
            Error::Registration(format!(
                "service [{name}] is not in the descriptor sets given; add the set that declares it"
            ))
        })?;
        let refused = service.methods.iter().find(|(_, m)| match kind.streaming {
            Streaming::None => m.client_streaming || m.server_streaming,
            Streaming::ServerOnly => m.client_streaming,
            Streaming::Any => false,
        });
        if let Some((method, _)) = refused {
            let (shape, allowed) = match kind.streaming {
                Streaming::ServerOnly => ("client-streaming", "unary and server-streaming"),
                _ => ("streaming", "unary"),
            };
            return Err(Error::Registration(format!(
                "{label} service [{name}] has a {shape} method [{method}]; {label} services take {allowed} calls only"
            )));
        }
        if kind.persistence_id_checked {
            if persistence_id.is_empty() {
                return Err(Error::Registration(format!(
                    "{label} service [{name}] has an empty persistence id"
                )));
            }
            if let Some(other) = self.persistence_ids.insert(
                (kind.entity_type, persistence_id.to_owned()),
                name.to_owned(),
            ) {
                return Err(Error::Registration(format!(
                    "persistence id [{persistence_id}] is used by both [{other}] and [{name}]"
                )));
            }
        }
        if !self.services.insert(name.to_owned()) {
            return Err(Error::Registration(format!(
                "service [{name}] is registered twice"
            )));
        }
        self.entities.push(pb::Entity {
            entity_type: kind.entity_type.to_owned(),
            service_name: name.to_owned(),
            persistence_id: persistence_id.to_owned(),
            passivation_strategy: passivation(pending.passivation_timeout),
        });
        Ok(service)
    }
}

struct Built {
    spec: pb::EntitySpec,
    registries: Registries,
}

fn passivation(timeout: Option<Duration>) -> Option<pb::EntityPassivationStrategy> {
    timeout.map(|t| pb::EntityPassivationStrategy {
        strategy: Some(pb::entity_passivation_strategy::Strategy::Timeout(
            pb::TimeoutPassivationStrategy {
                timeout: i64::try_from(t.as_millis()).unwrap_or(i64::MAX),
            },
        )),
    })
}

fn runtime_description() -> String {
    format!(
        "{} {}/{}",
        env!("CLOUDSTATE_RUSTC_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// `HOST`:`PORT` from the environment, defaulting to `127.0.0.1:8080`.
///
/// # Errors
/// A value that is not an address or a port.
pub fn listen_address() -> Result<SocketAddr, Error> {
    address_from(|key| std::env::var(key).ok())
}

fn address_from(var: impl Fn(&str) -> Option<String>) -> Result<SocketAddr, Error> {
    let host = var("HOST").unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = var("PORT").unwrap_or_else(|| "8080".to_owned());
    let port: u16 = port
        .parse()
        .map_err(|_| Error::Address(format!("PORT [{port}] is not a port number")))?;
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| Error::Address(format!("HOST [{host}] is not an IP address")))?;
    Ok(SocketAddr::new(ip, port))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_address_follows_host_and_port() {
        let none = |_: &str| None;
        assert_eq!(
            address_from(none).unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        let set = |k: &str| Some(if k == "HOST" { "0.0.0.0" } else { "9001" }.to_owned());
        assert_eq!(address_from(set).unwrap(), "0.0.0.0:9001".parse().unwrap());
        let bad = |k: &str| (k == "PORT").then(|| "http".to_owned());
        assert!(
            address_from(bad)
                .unwrap_err()
                .to_string()
                .contains("PORT [http]")
        );
    }

    /// An event-sourced entity whose `takes_snapshots` is `snapshots`.
    struct Journal {
        snapshots: bool,
    }

    impl EventSourcedEntity for Journal {
        type State = ();
        type Event = crate::Any;
        fn initial_state(&self, _: &str) {}
        fn apply_event(&self, _: &mut (), _: &crate::Any) -> Result<(), crate::PayloadError> {
            Ok(())
        }
        fn handle_command(
            &self,
            command: &crate::Command<'_>,
            _: &mut crate::CommandContext<'_, Self>,
        ) -> crate::CommandResult {
            Err(crate::Failure::new(command.name()))
        }
        fn takes_snapshots(&self) -> bool {
            self.snapshots
        }
    }

    /// The set of one file declaring the service `t.Journal`.
    fn journal_descriptors() -> Vec<u8> {
        use prost_types::{
            DescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
            ServiceDescriptorProto,
        };
        let set = FileDescriptorSet {
            file: vec![FileDescriptorProto {
                name: Some("t.proto".into()),
                package: Some("t".into()),
                message_type: vec![DescriptorProto {
                    name: Some("M".into()),
                    ..Default::default()
                }],
                service: vec![ServiceDescriptorProto {
                    name: Some("Journal".into()),
                    method: vec![MethodDescriptorProto {
                        name: Some("Call".into()),
                        input_type: Some(".t.M".into()),
                        output_type: Some(".t.M".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        prost::Message::encode_to_vec(&set)
    }

    fn build_journal(snapshots: bool, options: EventSourcedOptions) -> Result<Built, Error> {
        CloudState::new()
            .descriptor_set(&journal_descriptors())
            .event_sourced("t.Journal", Journal { snapshots }, options)
            .build()
    }

    #[test]
    fn snapshot_every_is_refused_for_an_entity_without_snapshots() {
        let Err(e) = build_journal(false, EventSourcedOptions::new("j").snapshot_every(5)) else {
            panic!("registered an interval that can take no snapshot");
        };
        assert_eq!(
            e.to_string(),
            "invalid registration: event-sourced service [t.Journal] is registered with \
             snapshot_every(5), but its entity takes no snapshots; declare a snapshot type \
             (`EventSourced::snapshot` in build.rs) or drop snapshot_every"
        );
        // The default interval, no interval, and an entity that snapshots are fine.
        for (snapshots, options) in [
            (false, EventSourcedOptions::new("j")),
            (false, EventSourcedOptions::new("j").snapshot_every(0)),
            (true, EventSourcedOptions::new("j").snapshot_every(5)),
        ] {
            let built = build_journal(snapshots, options.clone());
            assert!(built.is_ok(), "{options:?}: {:?}", built.err());
        }
    }

    #[test]
    fn passivation_is_sent_in_milliseconds_only_when_set() {
        assert_eq!(passivation(None), None);
        let Some(pb::EntityPassivationStrategy {
            strategy: Some(pb::entity_passivation_strategy::Strategy::Timeout(t)),
        }) = passivation(Some(Duration::from_millis(100)))
        else {
            panic!("no strategy")
        };
        assert_eq!(t.timeout, 100);
    }
}
