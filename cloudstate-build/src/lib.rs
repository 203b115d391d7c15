//! Build-time code generation for Cloudstate user functions.
//!
//! Call it from `build.rs`; no `protoc` is needed (protos are parsed by
//! [`protox`]). The Cloudstate protos (`cloudstate/*.proto`, `google/api/*.proto`)
//! and the protobuf well-known types are on the include path automatically.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     cloudstate_build::compile_protos(&["shoppingcart/shoppingcart.proto"], &["proto"])?;
//!     Ok(())
//! }
//! ```
//!
//! The crate then includes the result with `cloudstate_sdk::include_protos!()`:
//! a module per proto package with [prost](https://docs.rs/prost) messages whose
//! `prost::Name::type_url()` is `type.googleapis.com/<full name>`, each a
//! `cloudstate_sdk::payload::Payload` (so it can be a CRDT element or key), and
//! `FILE_DESCRIPTOR_SET`, the serialized descriptors of the compiled files and
//! all their imports, as the proxy needs them at discovery.
//!
//! The generated code reaches prost through the SDK (so a crate depends on
//! `cloudstate-sdk` and `cloudstate-build` only), and its modules allow the
//! lints generated code trips (`missing_docs`, `unreachable_pub`,
//! `clippy::pedantic`, ...), so `include_protos!()` needs no `#[allow]`.
//!
//! Errors print as their message, also through `Debug`: a `build.rs` like the
//! one above reports `Error: counter.proto:12: ...`.

mod codegen;
mod declared;
mod eventing;
mod validate;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prost_types::{DescriptorProto, FileDescriptorSet};

use declared::Declared;

/// Name of the generated file in `OUT_DIR` that `include_protos!()` includes.
pub const GENERATED_FILE: &str = "cloudstate_protos.rs";
const DESCRIPTOR_FILE: &str = "cloudstate_descriptor_set.bin";
const MODULES_FILE: &str = "cloudstate_modules.rs";
const PAYLOAD_FILE: &str = "cloudstate_payloads.rs";

/// The Cloudstate protos bundled with this crate, by import path.
const BUNDLED: &[(&str, &str)] = &[
    (
        "cloudstate/entity.proto",
        include_str!("../proto/cloudstate/entity.proto"),
    ),
    (
        "cloudstate/event_sourced.proto",
        include_str!("../proto/cloudstate/event_sourced.proto"),
    ),
    (
        "cloudstate/value_entity.proto",
        include_str!("../proto/cloudstate/value_entity.proto"),
    ),
    (
        "cloudstate/action.proto",
        include_str!("../proto/cloudstate/action.proto"),
    ),
    (
        "cloudstate/crdt.proto",
        include_str!("../proto/cloudstate/crdt.proto"),
    ),
    (
        "cloudstate/entity_key.proto",
        include_str!("../proto/cloudstate/entity_key.proto"),
    ),
    (
        "cloudstate/legacy_entity_key.proto",
        include_str!("../proto/cloudstate/legacy_entity_key.proto"),
    ),
    (
        "cloudstate/eventing.proto",
        include_str!("../proto/cloudstate/eventing.proto"),
    ),
    (
        "google/api/annotations.proto",
        include_str!("../proto/google/api/annotations.proto"),
    ),
    (
        "google/api/http.proto",
        include_str!("../proto/google/api/http.proto"),
    ),
    (
        "google/api/httpbody.proto",
        include_str!("../proto/google/api/httpbody.proto"),
    ),
];

/// Why code generation failed.
///
/// `Debug` prints the message as `Display` does: a `build.rs` whose `main`
/// returns `Result<(), Box<dyn Error>>` shows a failure as
/// `Error: counter.proto:12: ...`, not as a struct dump.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A proto did not parse or resolve; the message names file and line.
    #[error("{0}")]
    Proto(String),
    /// Writing the output failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// `OUT_DIR` is not set (not running in a build script) and no
    /// [`Builder::out_dir`] was given.
    #[error("OUT_DIR is not set; call from build.rs or set Builder::out_dir")]
    NoOutDir,
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Compiles `protos` (paths relative to one of `includes`) with default settings.
///
/// # Errors
/// See [`Builder::compile_protos`].
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<(), Error> {
    configure().compile_protos(protos, includes)
}

/// A builder for the code generator.
pub fn configure() -> Builder {
    Builder {
        out_dir: None,
        sdk_path: "::cloudstate_sdk".to_owned(),
        emit_rerun_if_changed: true,
        declared: Vec::new(),
        external_event_logs: Vec::new(),
    }
}

/// Settings of the code generator.
#[derive(Debug, Clone)]
pub struct Builder {
    out_dir: Option<PathBuf>,
    sdk_path: String,
    emit_rerun_if_changed: bool,
    /// The declared services, in declaration order.
    declared: Vec<Declared>,
    /// Event logs of entities built by other crates of the same user function.
    external_event_logs: Vec<String>,
}

/// Declares a gRPC service as an action: a stateless function whose rpcs
/// may stream either way.
///
/// For it, the generator writes a handler trait named after the service, with
/// one method per rpc:
///
/// * unary: `fn rpc(&self, request: Req, ctx: ActionContext) -> impl Future<Output = ActionResult<Resp>> + Send`
///   (implement it with `async fn`);
/// * streamed in: the same, with `requests: BoxStream<'static, Result<Req, Failure>>`
///   (an `Err` element is a request whose payload did not decode);
/// * streamed out: `fn rpc(&self, request: Req, ctx: ActionContext) -> BoxStream<'static, ActionResult<Resp>>`;
/// * streamed both ways: the streamed-out signature with the streamed-in input;
///
/// and `Action<T>`, which serves an implementation of it: register it with
/// `CloudState::register(Action(handlers), ActionOptions::new())`.
///
/// A method taking `google.protobuf.Any`, such as one that subscribes to an
/// event log with `(cloudstate.eventing)` and receives every event no other
/// method takes, can have typed events instead: with [`Action::json_events`]
/// and [`Action::events`], its trait method takes a generated enum
/// `<Method>Input` with one variant per declared type, decoded by type URL,
/// and `Other(Any)` for any other payload.
///
/// ```no_run
/// // build.rs: `OnOther(google.protobuf.Any)` reads the cart's event log.
/// use cloudstate_build::{Action, EventSourced};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// cloudstate_build::configure()
///     .event_sourced(
///         EventSourced::new("com.example.shoppingcart.ShoppingCart")
///             .json_event("crate::domain::ItemMoved")
///             .persistence_id("shopping-cart"),
///     )
///     .action(
///         Action::new("com.example.shoppingcart.CartListener")
///             .json_events("OnOther", ["crate::domain::ItemMoved"])
///             .events("OnOther", ["com.example.shoppingcart.persistence.CartCleared"]),
///     )
///     .compile_protos(&["shoppingcart/shoppingcart.proto"], &["proto"])?;
/// # Ok(())
/// # }
/// ```
///
/// makes the trait method
/// `fn on_other(&self, request: OnOtherInput, ctx: ActionContext)` with
/// `OnOtherInput::ItemMoved(ItemMoved)`, `OnOtherInput::CartCleared(CartCleared)`
/// and `OnOtherInput::Other(Any)`.
#[derive(Debug, Clone)]
pub struct Action {
    service: String,
    /// The typed inputs of `Any` methods, one entry per method.
    typed: Vec<TypedInput>,
    /// Filled in by validation, one per entry of `typed`.
    resolved_typed: Vec<ResolvedInput>,
}

/// The event types declared for one `Any` method of an action.
#[derive(Debug, Clone)]
struct TypedInput {
    method: String,
    /// Protobuf messages by full name.
    events: Vec<String>,
    /// (Rust type, JSON type name if chosen).
    json_events: Vec<(String, Option<String>)>,
}

/// A typed input after validation: the enum and its variants.
#[derive(Debug, Clone)]
struct ResolvedInput {
    /// The rpc's proto name.
    method: String,
    /// The generated enum, `<Method>Input`.
    enum_name: String,
    variants: Vec<InputVariant>,
}

#[derive(Debug, Clone)]
struct InputVariant {
    name: String,
    /// The Rust type: a path from the package module for protobuf
    /// messages, the user's path for JSON types.
    rust_type: String,
    /// How it travels.
    encoding: VariantEncoding,
}

#[derive(Debug, Clone)]
enum VariantEncoding {
    /// A protobuf message, by full name.
    Protobuf(String),
    /// A JSON payload, by type name.
    Json(String),
}

impl Action {
    /// The service `service`, e.g. `com.example.Greeter`.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            typed: Vec::new(),
            resolved_typed: Vec::new(),
        }
    }

    /// Makes the rpc `method` (its proto name, e.g. `OnOther`), whose input is
    /// `google.protobuf.Any`, take the JSON events `rust_types`: types of your
    /// crate written as Rust paths that work from anywhere
    /// (`crate::domain::ItemMoved`), each `serde::Serialize +
    /// serde::Deserialize`, `Clone`, `PartialEq` and `Debug`, named
    /// `json.cloudstate.io/<last path segment>` as `EventSourced::json_event`
    /// names them. Each is a variant of `<Method>Input` named after that
    /// segment. Needs the SDK's `json` feature (on by default).
    #[must_use]
    pub fn json_events<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        method: impl Into<String>,
        rust_types: I,
    ) -> Self {
        let typed = self.typed_input(method.into());
        typed
            .json_events
            .extend(rust_types.into_iter().map(|t| (t.into(), None)));
        self
    }

    /// Like [`Action::json_events`] for one type with the JSON type name
    /// `type_name` rather than the path's last segment.
    #[must_use]
    pub fn json_event_named(
        mut self,
        method: impl Into<String>,
        rust_type: impl Into<String>,
        type_name: impl Into<String>,
    ) -> Self {
        let typed = self.typed_input(method.into());
        typed
            .json_events
            .push((rust_type.into(), Some(type_name.into())));
        self
    }

    /// Makes the rpc `method`, whose input is `google.protobuf.Any`, take the
    /// protobuf events `messages` (full names), each a variant of
    /// `<Method>Input` named after the message. For events that only this
    /// method reads: an event type that another method subscribed to the
    /// same source takes as its input goes to that method instead, which is
    /// a build error here.
    #[must_use]
    pub fn events<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        method: impl Into<String>,
        messages: I,
    ) -> Self {
        let typed = self.typed_input(method.into());
        typed.events.extend(messages.into_iter().map(Into::into));
        self
    }

    fn typed_input(&mut self, method: String) -> &mut TypedInput {
        let index = match self.typed.iter().position(|t| t.method == method) {
            Some(index) => index,
            None => {
                self.typed.push(TypedInput {
                    method,
                    events: Vec::new(),
                    json_events: Vec::new(),
                });
                self.typed.len() - 1
            }
        };
        &mut self.typed[index]
    }
}

/// Declares a gRPC service as a value entity with its state type (fully
/// qualified proto name).
///
/// For it, the generator writes a handler trait named after the service (one
/// method per rpc, taking the request and a context that reads, updates and
/// deletes the state) and `Entity<T>`, which serves an implementation of it.
///
/// The state can also be a JSON type of your crate ([`ValueEntity::json_state`]).
#[derive(Debug, Clone)]
pub struct ValueEntity {
    service: String,
    state: String,
    /// With `json_state`: the JSON type name (`state` is then the Rust path).
    json_state: Option<Option<String>>,
    /// Filled in by validation: the state type's Rust path from the service's package.
    resolved_state: String,
    /// Filled in by validation: the JSON type name of a JSON state.
    resolved_json_name: Option<String>,
}

impl ValueEntity {
    /// The service `service` whose state is the message `state`.
    pub fn new(service: impl Into<String>, state: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            state: state.into(),
            json_state: None,
            resolved_state: String::new(),
            resolved_json_name: None,
        }
    }

    /// The service `service` whose state is the JSON type `rust_type` of your
    /// crate, a Rust path that works from anywhere (e.g. `crate::model::Board`),
    /// `serde::Serialize + serde::Deserialize`: stored as
    /// `json.cloudstate.io/<name>`, the name being the path's last segment,
    /// as `cloudstate_sdk::payload::Json` names it. Needs the SDK's `json`
    /// feature (on by default).
    pub fn json_state(service: impl Into<String>, rust_type: impl Into<String>) -> Self {
        Self {
            json_state: Some(None),
            ..Self::new(service, rust_type)
        }
    }

    /// As [`ValueEntity::json_state`], with the JSON type name `type_name`
    /// rather than the path's last segment.
    pub fn json_state_named(
        service: impl Into<String>,
        rust_type: impl Into<String>,
        type_name: impl Into<String>,
    ) -> Self {
        Self {
            json_state: Some(Some(type_name.into())),
            ..Self::new(service, rust_type)
        }
    }
}

/// Declares a gRPC service as an event-sourced entity: its events and,
/// optionally, its state and snapshot types, all by fully qualified proto name.
///
/// For it, the generator writes a handler trait named after the service (one
/// method per rpc, one `on_<event>` per event type, `snapshot`/`restore` when a
/// snapshot type is declared), an `Event` enum, and `Entity<T>`, which serves
/// an implementation of the trait.
///
/// The trait has `type State` unless [`EventSourced::state`] fixes it to a
/// message; then `initial_state` defaults to the message's default, and when
/// the snapshot type is the state type, `snapshot` and `restore` default to
/// the state itself. Each default can be overridden.
///
/// ```no_run
/// // build.rs: the cart's state is the `Cart` message, snapshotted as it is.
/// use cloudstate_build::EventSourced;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// cloudstate_build::configure()
///     .event_sourced(
///         EventSourced::new("com.example.shoppingcart.ShoppingCart")
///             .events(["com.example.shoppingcart.persistence.ItemAdded"])
///             .state("com.example.shoppingcart.persistence.Cart")
///             .snapshot("com.example.shoppingcart.persistence.Cart"),
///     )
///     .compile_protos(&["shoppingcart/shoppingcart.proto"], &["proto"])?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct EventSourced {
    service: String,
    events: Vec<String>,
    /// (Rust type, JSON type name if chosen).
    json_events: Vec<(String, Option<String>)>,
    state: Option<String>,
    snapshot: Option<String>,
    /// With `json_snapshot`: the JSON type name chosen, if any (`snapshot` is
    /// then the Rust path).
    json_snapshot: Option<Option<String>>,
    persistence_id: Option<String>,
    /// Filled in by validation: (full name, Rust path from the service's package).
    resolved_events: Vec<(String, String)>,
    /// Filled in by validation: (JSON type name, Rust type, simple name).
    resolved_json_events: Vec<(String, String, String)>,
    resolved_state: Option<(String, String)>,
    /// (full name, Rust path); for a JSON snapshot (JSON type name, Rust type).
    resolved_snapshot: Option<(String, String)>,
    /// Filled in by validation: whether the snapshot is JSON.
    resolved_json_snapshot: bool,
}

impl EventSourced {
    /// The service `service`, e.g. `com.example.shoppingcart.ShoppingCart`.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            events: Vec::new(),
            json_events: Vec::new(),
            state: None,
            snapshot: None,
            json_snapshot: None,
            persistence_id: None,
            resolved_events: Vec::new(),
            resolved_json_events: Vec::new(),
            resolved_state: None,
            resolved_snapshot: None,
            resolved_json_snapshot: false,
        }
    }

    /// Adds an event type, e.g. `com.example.shoppingcart.persistence.ItemAdded`.
    #[must_use]
    pub fn event(mut self, message: impl Into<String>) -> Self {
        self.events.push(message.into());
        self
    }

    /// Adds several event types.
    #[must_use]
    pub fn events<I: IntoIterator<Item = S>, S: Into<String>>(mut self, messages: I) -> Self {
        self.events.extend(messages.into_iter().map(Into::into));
        self
    }

    /// Adds a JSON event: a type of your crate, written as a Rust path that
    /// works from anywhere (e.g. `crate::domain::ItemMoved`), which must be
    /// `serde::Serialize + serde::Deserialize`, `Clone`, `PartialEq` and
    /// `Debug`. It travels as `json.cloudstate.io/<name>`, the name being
    /// the path's last segment (`ItemMoved`), as `cloudstate_sdk::payload::Json`
    /// names it; the trait gets `on_<item_moved>` for it, and replayed events
    /// of that type URL reach it. Needs the SDK's `json` feature (on by default).
    #[must_use]
    pub fn json_event(mut self, rust_type: impl Into<String>) -> Self {
        self.json_events.push((rust_type.into(), None));
        self
    }

    /// Adds a JSON event with the type name `type_name` rather than the
    /// path's last segment (e.g. the name another service writes it with).
    #[must_use]
    pub fn json_event_named(
        mut self,
        rust_type: impl Into<String>,
        type_name: impl Into<String>,
    ) -> Self {
        self.json_events
            .push((rust_type.into(), Some(type_name.into())));
        self
    }

    /// Sets the snapshot type. Without one, the entity takes no snapshots,
    /// and registering it with `snapshot_every(n)` for `n > 0` is refused.
    #[must_use]
    pub fn snapshot(mut self, message: impl Into<String>) -> Self {
        self.snapshot = Some(message.into());
        self.json_snapshot = None;
        self
    }

    /// Takes snapshots of the JSON type `rust_type` of your crate (a Rust
    /// path that works from anywhere, `serde::Serialize +
    /// serde::Deserialize`), stored as `json.cloudstate.io/<name>`, the name
    /// being the path's last segment; the trait gets `snapshot` and
    /// `restore` for it. Needs the SDK's `json` feature (on by default).
    #[must_use]
    pub fn json_snapshot(mut self, rust_type: impl Into<String>) -> Self {
        self.snapshot = Some(rust_type.into());
        self.json_snapshot = Some(None);
        self
    }

    /// As [`EventSourced::json_snapshot`], with the JSON type name
    /// `type_name` rather than the path's last segment.
    #[must_use]
    pub fn json_snapshot_named(
        mut self,
        rust_type: impl Into<String>,
        type_name: impl Into<String>,
    ) -> Self {
        self.snapshot = Some(rust_type.into());
        self.json_snapshot = Some(Some(type_name.into()));
        self
    }

    /// Declares the entity's persistence id, the name of its journal, e.g.
    /// `shopping-cart`. The generated module then has
    /// `pub const PERSISTENCE_ID: &str`, to register the entity with
    /// (`EventSourcedOptions::new(shopping_cart::PERSISTENCE_ID)`), and
    /// methods of the build whose `(cloudstate.eventing)` option reads
    /// `in: { event_log: "shopping-cart" }` are checked against it: an event
    /// log that no entity of the build declares is a build error. Optional
    /// otherwise; two entities may not declare the same id.
    #[must_use]
    pub fn persistence_id(mut self, id: impl Into<String>) -> Self {
        self.persistence_id = Some(id.into());
        self
    }

    /// Fixes the state type to a message, e.g.
    /// `com.example.shoppingcart.persistence.Cart`: the trait then has no
    /// `type State`, and `initial_state` (and, when the snapshot type is the
    /// same message, `snapshot` and `restore`) have default implementations.
    #[must_use]
    pub fn state(mut self, message: impl Into<String>) -> Self {
        self.state = Some(message.into());
        self
    }
}

/// Declares a gRPC service as a CRDT entity: a replicated value (counter,
/// set, register, map, vote) that the proxy merges across nodes.
///
/// For it, the generator writes a handler trait named after the service,
/// with `initial_state` (the CRDT of an entity the proxy has no value for)
/// and one method per rpc:
///
/// * unary: `fn rpc(&self, request: Req, ctx: &mut Context<'_, Self>) -> CommandResult<Resp>`;
/// * server-streaming: `fn rpc(&self, request: Req, ctx: &mut StreamContext<'_, '_, Self, Resp>)
///   -> Result<Option<Reply<Resp>>, Failure>`, which may subscribe to changes
///   with `ctx.on_change(..)` and `ctx.on_cancel(..)`; `Ok(None)` sends no
///   reply message.
///
/// The trait has `type State` for the CRDT unless [`Crdt::state`] fixes it.
/// `Entity<T>` serves an implementation: register it with
/// `CloudState::register(Entity(handlers), CrdtOptions::new())`.
/// Client-streaming rpcs are an error: the proxy refuses them. Call builders
/// are generated for the server-streaming rpcs too, for the SDK's
/// `CrdtTestKit::call_streamed`.
#[derive(Debug, Clone)]
pub struct Crdt {
    service: String,
    state: Option<String>,
    /// Filled in by validation: the state type as seen from the service module.
    resolved_state: Option<String>,
}

impl Crdt {
    /// The service `service`, e.g. `com.example.presence.Presence`.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            state: None,
            resolved_state: None,
        }
    }

    /// Fixes the CRDT type, written as a Rust type: e.g. `"ORSet<String>"`
    /// or `"ORMap<String, LWWRegister<com.example.Status>>"`. The trait then
    /// has no `type State`, and its contexts are `Context<'_>` and
    /// `StreamContext<'_, '_, Resp>`.
    ///
    /// `GCounter`, `PNCounter`, `GSet`, `ORSet`, `LWWRegister`, `Flag`,
    /// `ORMap`, `Vote` and `Crdt` are the types of `cloudstate_sdk::crdt`,
    /// `Any` is `cloudstate_sdk::Any`; Rust primitives, `String` and `Vec`
    /// stay as they are; a dotted name is a proto message by its full name.
    /// Other names are an error.
    #[must_use]
    pub fn state(mut self, rust_type: impl Into<String>) -> Self {
        self.state = Some(rust_type.into());
        self
    }
}

impl Builder {
    /// Declares a CRDT entity service.
    #[must_use]
    pub fn crdt(mut self, crdt: Crdt) -> Self {
        self.declared.push(Declared::Crdt(crdt));
        self
    }

    /// Declares an action service.
    #[must_use]
    pub fn action(mut self, action: Action) -> Self {
        self.declared.push(Declared::Action(action));
        self
    }

    /// Declares a value entity service.
    #[must_use]
    pub fn value_entity(mut self, entity: ValueEntity) -> Self {
        self.declared.push(Declared::ValueEntity(entity));
        self
    }

    /// Declares an event-sourced entity service.
    #[must_use]
    pub fn event_sourced(mut self, entity: EventSourced) -> Self {
        self.declared.push(Declared::EventSourced(entity));
        self
    }

    /// Where to write the output (default `OUT_DIR`).
    #[must_use]
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Accepts `event_log` subscriptions to `persistence_id`, the event log of
    /// an event-sourced entity that another crate of the same user function
    /// generates and registers (e.g. a sample composing the shopping cart's
    /// crate with its own action). The build cannot check it; the proxy
    /// refuses a subscription to an event log no served entity writes.
    #[must_use]
    pub fn external_event_log(mut self, persistence_id: impl Into<String>) -> Self {
        self.external_event_logs.push(persistence_id.into());
        self
    }

    /// The path of the SDK crate in generated code (default `::cloudstate_sdk`),
    /// for crates that rename it.
    #[must_use]
    pub fn sdk_path(mut self, path: impl Into<String>) -> Self {
        self.sdk_path = path.into();
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for every input (default true).
    #[must_use]
    pub fn emit_rerun_if_changed(mut self, yes: bool) -> Self {
        self.emit_rerun_if_changed = yes;
        self
    }

    /// Parses `protos` and writes the generated Rust and the descriptor set.
    ///
    /// # Errors
    /// A proto that does not parse or resolve, a declaration the protos do
    /// not match or that the proxy would refuse at start-up (an entity rpc
    /// whose input has no `(cloudstate.entity_key)` field, a streaming rpc
    /// where the kind takes none, a name that clashes with generated code,
    /// a `(cloudstate.eventing)` option the proxy refuses or whose
    /// `event_log` no entity of the build declares as its persistence id);
    /// messages name the proto file and line where there is one. Or a
    /// failure to write the output.
    pub fn compile_protos(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => PathBuf::from(std::env::var_os("OUT_DIR").ok_or(Error::NoOutDir)?),
        };
        std::fs::create_dir_all(&out_dir)?;
        let bundled_dir = out_dir.join("cloudstate-bundled-protos");
        for (name, source) in BUNDLED {
            write_if_changed(&bundled_dir.join(name), source.as_bytes())?;
        }
        let mut include_paths: Vec<PathBuf> =
            includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
        include_paths.push(bundled_dir);

        let compile = |source_info: bool| -> Result<protox::Compiler, Error> {
            let mut compiler = protox::Compiler::new(&include_paths).map_err(proto_error)?;
            compiler
                .include_imports(true)
                .include_source_info(source_info);
            compiler.open_files(protos).map_err(proto_error)?;
            Ok(compiler)
        };
        // The embedded set keeps every option (prost's descriptor types would
        // drop extensions such as entity_key) but no source info: the proxy
        // needs no comments.
        let embedded = compile(false)?.encode_file_descriptor_set();
        let with_docs = compile(true)?;
        if self.emit_rerun_if_changed {
            for file in with_docs.files() {
                if let Some(path) = file.path()
                    && !path.starts_with(&include_paths[include_paths.len() - 1])
                {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
        let pool = with_docs.descriptor_pool();
        let fds = with_docs.file_descriptor_set();
        // Kind by kind (a stable sort), so that of several mistakes the same
        // one comes first however the builder calls were ordered.
        let mut order: Vec<&Declared> = self.declared.iter().collect();
        order.sort_by_key(|decl| decl.kind());
        let mut declared: HashMap<String, Declared> = HashMap::new();
        let mut subscriptions = Vec::new();
        let mut persistence_ids: HashMap<String, String> = HashMap::new();
        for decl in order {
            let (resolved, eventing) = validate::declaration(decl, &pool, &fds, &self.sdk_path)?;
            if let Some(first) = declared.get(decl.service()) {
                return Err(Error::Proto(declared::declared_twice(
                    first.kind(),
                    decl.kind(),
                    decl.service(),
                )));
            }
            if let Declared::EventSourced(EventSourced {
                persistence_id: Some(id),
                ..
            }) = decl
            {
                validate::persistence_id(id, decl.service(), &persistence_ids)?;
                persistence_ids.insert(id.clone(), decl.service().to_owned());
            }
            declared.insert(decl.service().to_owned(), resolved);
            subscriptions.push((decl.service().to_owned(), eventing));
        }
        for id in &self.external_event_logs {
            persistence_ids
                .entry(id.clone())
                .or_insert_with(|| "another crate".to_owned());
        }
        eventing::event_logs(&subscriptions, &persistence_ids)?;
        validate::module_names(&pool)?;
        let sdk: proc_macro2::TokenStream = self.sdk_path.parse().map_err(|_| {
            Error::Proto(format!("sdk_path [{}] is not a Rust path", self.sdk_path))
        })?;
        write_if_changed(&out_dir.join(DESCRIPTOR_FILE), &embedded)?;
        let payloads = codegen::payload_impls(&sdk, &validate::payload_messages(&pool, is_bundled));
        let eventing = subscriptions.into_iter().collect();
        self.generate_messages(fds, &out_dir, declared, eventing, sdk)?;
        write_if_changed(&out_dir.join(PAYLOAD_FILE), payloads.as_bytes())?;

        let mut code = String::from("// @generated by cloudstate-build. Do not edit.\n\n");
        let _ = writeln!(code, "include!(\"{MODULES_FILE}\");\n");
        code.push_str("// Every message of the compiled protos as a `Payload`.\n");
        let _ = writeln!(code, "include!(\"{PAYLOAD_FILE}\");\n");
        code.push_str(
            "/// Serialized `FileDescriptorSet` of the compiled protos and all their imports,\n\
             /// as handed to the proxy at discovery.\n",
        );
        let _ = writeln!(
            code,
            "#[allow(dead_code, unreachable_pub)]\n\
             pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(\"{DESCRIPTOR_FILE}\");"
        );
        write_if_changed(&out_dir.join(GENERATED_FILE), code.as_bytes())?;
        Ok(())
    }

    fn generate_messages(
        &self,
        fds: FileDescriptorSet,
        out_dir: &Path,
        declared: HashMap<String, Declared>,
        eventing: HashMap<String, Vec<eventing::MethodEventing>>,
        sdk: proc_macro2::TokenStream,
    ) -> Result<(), Error> {
        // All files go to prost, so that it sees the messages that own ones
        // use (to decide `Copy`, say); the bundled ones are extern and
        // generate nothing.
        let (bundled, own): (Vec<_>, Vec<_>) = fds.file.iter().partition(|f| is_bundled(f.name()));
        let mut config = prost_build::Config::new();
        config.out_dir(out_dir);
        config.enable_type_names();
        config.type_name_domain(["."], "type.googleapis.com");
        // Messages derive through the SDK's re-exports: the user's crate
        // depends on the SDK alone. Well-known types take the public path,
        // which users write too (and prost would mangle `__private` in it).
        config.prost_path(format!("{}::__private::prost", self.sdk_path));
        config.prost_types_path(format!("{}::prost_types", self.sdk_path));
        // Messages and enums of the bundled protos live in the SDK's
        // protocol module; the well-known types are prost's own extern.
        let mut seen = HashSet::new();
        for file in bundled
            .iter()
            .filter(|f| !f.package().starts_with("google.protobuf"))
        {
            let names = file
                .message_type
                .iter()
                .map(DescriptorProto::name)
                .chain(file.enum_type.iter().map(|e| e.name()));
            for name in names {
                extern_type(&mut config, &mut seen, &self.sdk_path, file.package(), name);
            }
        }
        let packages: Vec<String> = own.iter().map(|f| f.package().to_owned()).collect();
        let bundled_packages = bundled.iter().map(|f| f.package().to_owned()).collect();
        config.service_generator(Box::new(codegen::Generator {
            declared,
            eventing,
            sdk,
            bundled_packages,
        }));
        config.compile_fds(fds)?;
        let modules = codegen::module_tree(&packages);
        write_if_changed(&out_dir.join(MODULES_FILE), modules.as_bytes())?;
        Ok(())
    }
}

/// Maps the bundled message or enum `name` of `package` to its type in the
/// SDK's protocol module.
fn extern_type(
    config: &mut prost_build::Config,
    seen: &mut HashSet<String>,
    sdk: &str,
    package: &str,
    name: &str,
) {
    let proto = format!(".{package}.{name}");
    if seen.insert(proto.clone()) {
        let module = package.replace('.', "::");
        config.extern_path(proto, format!("{sdk}::protocol::{module}::{name}"));
    }
}

fn is_bundled(name: &str) -> bool {
    name.starts_with("google/protobuf/") || BUNDLED.iter().any(|(n, _)| *n == name)
}

fn proto_error(error: protox::Error) -> Error {
    Error::Proto(format!("{error:?}"))
}

fn write_if_changed(path: &Path, content: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

    fn out_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cloudstate-build-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn counter() -> EventSourced {
        EventSourced::new("example.counter.Counter")
            .events([
                "example.counter.domain.Increased",
                "example.counter.domain.Reset",
            ])
            .snapshot("example.counter.domain.Snapshot")
    }

    /// Compares the files generated into `dir` with the committed golden
    /// files under `tests/golden/<sub>`; `UPDATE_GOLDEN=1` rewrites them
    /// after a deliberate change.
    fn check_golden(dir: &Path, sub: &str, files: &[&str]) {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(sub);
        for file in files {
            let generated = std::fs::read_to_string(dir.join(file)).unwrap();
            let path = golden.join(file);
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::create_dir_all(&golden).unwrap();
                std::fs::write(&path, &generated).unwrap();
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                generated == expected,
                "{file} differs from {}; rerun with UPDATE_GOLDEN=1",
                path.display()
            );
        }
    }

    fn run(decl: EventSourced, proto: &str, name: &str) -> Result<(), Error> {
        configure()
            .out_dir(out_dir(name))
            .emit_rerun_if_changed(false)
            .event_sourced(decl)
            .compile_protos(&[proto], &[FIXTURES])
    }

    /// The generated code for the counter fixture is the committed golden
    /// file; `UPDATE_GOLDEN=1` rewrites it after a deliberate change.
    #[test]
    fn counter_matches_golden_file() {
        let dir = out_dir("golden");
        configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .event_sourced(counter())
            .compile_protos(&["counter/counter.proto"], &[FIXTURES])
            .unwrap();
        check_golden(
            &dir,
            "",
            &[
                "example.counter.rs",
                "example.counter.domain.rs",
                GENERATED_FILE,
                MODULES_FILE,
                PAYLOAD_FILE,
            ],
        );
        // The embedded set holds the files and all their imports.
        let set = std::fs::read(dir.join(DESCRIPTOR_FILE)).unwrap();
        let set = <FileDescriptorSet as protox::prost::Message>::decode(set.as_slice()).unwrap();
        let names: Vec<_> = set.file.iter().map(|f| f.name().to_owned()).collect();
        for name in [
            "counter/counter.proto",
            "counter/domain.proto",
            "cloudstate/entity_key.proto",
            "google/protobuf/descriptor.proto",
            "google/protobuf/empty.proto",
        ] {
            assert!(
                names.iter().any(|n| n == name),
                "{name} missing from {names:?}"
            );
        }
        assert!(
            set.file.iter().all(|f| f.source_code_info.is_none()),
            "no comments shipped"
        );
    }

    /// The generated code for the greeter action is the committed golden
    /// file; `UPDATE_GOLDEN=1` rewrites it after a deliberate change.
    #[test]
    fn greeter_action_matches_golden_file() {
        let dir = out_dir("golden-action");
        configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .action(Action::new("example.greeter.Greeter"))
            .compile_protos(&["greeter/greeter.proto"], &[FIXTURES])
            .unwrap();
        check_golden(
            &dir,
            "greeter",
            &["example.greeter.rs", MODULES_FILE, PAYLOAD_FILE],
        );
    }

    #[test]
    fn action_declarations_are_checked() {
        let run_action = |decl: Action, name: &str| {
            configure()
                .out_dir(out_dir(name))
                .emit_rerun_if_changed(false)
                .action(decl)
                .compile_protos(&["greeter/greeter.proto"], &[FIXTURES])
        };
        let e = run_action(Action::new("example.greeter.Greeterr"), "action-unknown")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("action service [example.greeter.Greeterr] is not in the compiled protos"),
            "{e}"
        );
        let e = configure()
            .out_dir(out_dir("action-twice"))
            .emit_rerun_if_changed(false)
            .action(Action::new("example.greeter.Greeter"))
            .action(Action::new("example.greeter.Greeter"))
            .compile_protos(&["greeter/greeter.proto"], &[FIXTURES])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is declared twice"), "{e}");
        // Streaming rpcs are fine for actions, and need no entity key.
        configure()
            .out_dir(out_dir("action-streaming"))
            .emit_rerun_if_changed(false)
            .action(Action::new("example.invalid.Streaming"))
            .compile_protos(&["invalid.proto"], &[FIXTURES])
            .unwrap();
    }

    /// One check for every pair of kinds; its message names what the two
    /// declarations have in common, whichever the builder saw first.
    #[test]
    fn a_service_declared_twice_is_an_error() {
        let twice = |builder: Builder, name: &str| {
            builder
                .out_dir(out_dir(name))
                .emit_rerun_if_changed(false)
                .compile_protos(&["counter/counter.proto"], &[FIXTURES])
                .unwrap_err()
                .to_string()
        };
        let service = "example.counter.Counter";
        let value = || ValueEntity::new(service, "example.counter.Value");
        let e = twice(
            configure()
                .event_sourced(counter())
                .event_sourced(counter()),
            "twice-es",
        );
        assert_eq!(
            e,
            format!("service [{service}] is declared as an event-sourced entity twice")
        );
        for (builder, name) in [
            (
                configure().event_sourced(counter()).value_entity(value()),
                "twice-es-ve",
            ),
            (
                configure().value_entity(value()).event_sourced(counter()),
                "twice-ve-es",
            ),
            (
                configure().value_entity(value()).value_entity(value()),
                "twice-ve",
            ),
        ] {
            assert_eq!(
                twice(builder, name),
                format!("service [{service}] is declared as an entity twice")
            );
        }
        let e = twice(
            configure()
                .action(Action::new(service))
                .value_entity(value()),
            "twice-action",
        );
        assert_eq!(e, format!("service [{service}] is declared twice"));
    }

    #[test]
    fn unknown_service_lists_the_services_found() {
        let e = run(
            EventSourced::new("example.counter.Counterr"),
            "counter/counter.proto",
            "unknown",
        )
        .unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("[example.counter.Counterr] is not in the compiled protos"),
            "{e}"
        );
        assert!(e.contains("example.counter.Counter"), "{e}");
    }

    #[test]
    fn unknown_event_suggests_the_full_name() {
        let decl = EventSourced::new("example.counter.Counter").event("Increased");
        let e = run(decl, "counter/counter.proto", "event")
            .unwrap_err()
            .to_string();
        assert!(e.contains("event type [Increased]"), "{e}");
        assert!(
            e.contains("did you mean [example.counter.domain.Increased]"),
            "{e}"
        );
        let decl =
            EventSourced::new("example.counter.Counter").snapshot("example.counter.domain.Nope");
        let e = run(decl, "counter/counter.proto", "snapshot")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("snapshot type [example.counter.domain.Nope]"),
            "{e}"
        );
    }

    #[test]
    fn streaming_rpc_is_an_error_with_file_and_line() {
        let e = run(
            EventSourced::new("example.invalid.Streaming"),
            "invalid.proto",
            "stream",
        )
        .unwrap_err();
        let e = e.to_string();
        assert!(e.starts_with("invalid.proto:20: rpc [Watch]"), "{e}");
        assert!(e.contains("unary calls only"), "{e}");
    }

    /// The proxy refuses an entity of any kind with a keyless method at
    /// start-up; the build refuses it first.
    #[test]
    fn input_without_entity_key_is_an_error() {
        let expected = |plural: &str| {
            format!(
                "invalid.proto:25: the input [example.invalid.Keyless] of rpc \
                 [example.invalid.NoKey.Ping] has no field marked (cloudstate.entity_key), and \
                 the proxy refuses {plural} with such methods; mark the field that names the \
                 entity with `[(cloudstate.entity_key) = true]`"
            )
        };
        let service = "example.invalid.NoKey";
        let e = run(EventSourced::new(service), "invalid.proto", "nokey-es").unwrap_err();
        assert_eq!(e.to_string(), expected("event-sourced entities"));
        let e = configure()
            .out_dir(out_dir("nokey-ve"))
            .emit_rerun_if_changed(false)
            .value_entity(ValueEntity::new(service, "example.invalid.Keyed"))
            .compile_protos(&["invalid.proto"], &[FIXTURES])
            .unwrap_err();
        assert_eq!(e.to_string(), expected("value entities"));
        let e = run_crdt(Crdt::new(service), "invalid.proto", "nokey-crdt").unwrap_err();
        assert_eq!(e.to_string(), expected("CRDT entities"));
        // Actions route no calls by key.
        configure()
            .out_dir(out_dir("nokey-action"))
            .emit_rerun_if_changed(false)
            .action(Action::new(service))
            .compile_protos(&["invalid.proto"], &[FIXTURES])
            .unwrap();
    }

    /// A service named like an item generated next to its trait is refused
    /// for the kinds that generate that item, and fine for the others.
    #[test]
    fn service_named_like_a_generated_item_is_an_error() {
        let build = |builder: Builder, name: &str| {
            builder
                .out_dir(out_dir(name))
                .emit_rerun_if_changed(false)
                .compile_protos(&["invalid.proto"], &[FIXTURES])
        };
        let refused = |builder: Builder, name: &str| build(builder, name).unwrap_err().to_string();
        let value = |service: &str| ValueEntity::new(service, "example.invalid.Keyed");
        let e = refused(
            configure().event_sourced(EventSourced::new("example.invalid.Context")),
            "named-es-context",
        );
        assert_eq!(
            e,
            "invalid.proto:48: event-sourced service [example.invalid.Context] would generate \
             a trait named like the generated `Context` context alias of its module; rename the \
             service"
        );
        let e = refused(
            configure().event_sourced(EventSourced::new("example.invalid.Entity")),
            "named-es-entity",
        );
        assert!(e.contains("like the generated `Entity` wrapper"), "{e}");
        let e = refused(
            configure().value_entity(value("example.invalid.Entity")),
            "named-ve-entity",
        );
        assert!(
            e.starts_with("invalid.proto:40: value entity service [example.invalid.Entity]"),
            "{e}"
        );
        let e = refused(
            configure().value_entity(value("example.invalid.Context")),
            "named-ve-context",
        );
        assert!(e.contains("`Context` context alias"), "{e}");
        let e = refused(
            configure().crdt(Crdt::new("example.invalid.StreamContext")),
            "named-crdt-stream",
        );
        assert!(
            e.starts_with(
                "invalid.proto:52: CRDT service [example.invalid.StreamContext] would generate \
                 a trait named like the generated `StreamContext` context alias"
            ),
            "{e}"
        );
        // `StreamContext` is a CRDT item only; actions generate `Action` alone.
        build(
            configure().event_sourced(EventSourced::new("example.invalid.StreamContext")),
            "named-es-stream",
        )
        .unwrap();
        build(
            configure()
                .action(Action::new("example.invalid.Entity"))
                .action(Action::new("example.invalid.Context")),
            "named-action",
        )
        .unwrap();
    }

    /// An event type named `Event` becomes a variant, not a clash: only a
    /// service named `Event` is refused.
    #[test]
    fn service_named_event_is_an_error() {
        let dir = out_dir("named-event");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("event.proto"),
            "syntax = \"proto3\";\npackage e;\nimport \"cloudstate/entity_key.proto\";\n\
             message K { string id = 1 [(.cloudstate.entity_key) = true]; }\n\
             service Event { rpc Call(K) returns (K); }\n",
        )
        .unwrap();
        let e = configure()
            .out_dir(dir.join("out"))
            .emit_rerun_if_changed(false)
            .event_sourced(EventSourced::new("e.Event"))
            .compile_protos(&["event.proto"], &[&dir])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "event.proto:5: event-sourced service [e.Event] would generate a trait named like \
             the generated `Event` event enum of its module; rename the service"
        );
    }

    #[test]
    fn rpc_named_like_a_generated_method_is_an_error() {
        let e = run(
            EventSourced::new("example.invalid.Clash"),
            "invalid.proto",
            "clash",
        )
        .unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains(
                "invalid.proto:29: rpc [Snapshot] would generate the trait method `snapshot`"
            ),
            "{e}"
        );
    }

    fn presence() -> Builder {
        configure()
            .emit_rerun_if_changed(false)
            .crdt(Crdt::new("example.presence.Presence"))
            .crdt(
                Crdt::new("example.presence.Visits")
                    .state("ORMap<String, LWWRegister<example.presence.Online.Device>>"),
            )
    }

    /// The generated code for the CRDT fixture is the committed golden file;
    /// `UPDATE_GOLDEN=1` rewrites it after a deliberate change.
    #[test]
    fn crdt_matches_golden_file() {
        let dir = out_dir("golden-crdt");
        presence()
            .out_dir(&dir)
            .compile_protos(&["presence/presence.proto"], &[FIXTURES])
            .unwrap();
        check_golden(
            &dir,
            "presence",
            &["example.presence.rs", MODULES_FILE, PAYLOAD_FILE],
        );
    }

    fn run_crdt(decl: Crdt, proto: &str, name: &str) -> Result<(), Error> {
        configure()
            .out_dir(out_dir(name))
            .emit_rerun_if_changed(false)
            .crdt(decl)
            .compile_protos(&[proto], &[FIXTURES])
    }

    #[test]
    fn crdt_services_are_checked() {
        let e = run_crdt(
            Crdt::new("example.presence.Presense"),
            "presence/presence.proto",
            "crdt-unknown",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "CRDT service [example.presence.Presense] is not in the compiled protos; \
                 services found: [example.presence.Presence, example.presence.Visits]"
            ),
            "{e}"
        );
        let e = run_crdt(
            Crdt::new("example.invalid.Uploads"),
            "invalid.proto",
            "crdt-client-streaming",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "invalid.proto:33: rpc [Upload] of CRDT service [example.invalid.Uploads] is \
             client-streaming; CRDT entities take unary and server-streaming calls only"
        );
        // Streaming both ways streams in too.
        let e = run_crdt(
            Crdt::new("example.invalid.Streaming"),
            "invalid.proto",
            "crdt-bidi",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("invalid.proto:20: rpc [Watch]"), "{e}");
        assert!(e.contains("is client-streaming"), "{e}");
        let e = run_crdt(
            Crdt::new("example.invalid.State"),
            "invalid.proto",
            "crdt-clash",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "invalid.proto:37: rpc [State] would generate the trait method `state`, \
                 which the generated trait already uses"
            ),
            "{e}"
        );
        let e = run_crdt(
            Crdt::new("example.invalid.Entity"),
            "invalid.proto",
            "crdt-wrapper",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("would generate a trait named like the generated `Entity` wrapper"),
            "{e}"
        );
        let e = run_crdt(
            Crdt::new("example.invalid.Clock"),
            "invalid.proto",
            "crdt-streamed-timestamp",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "invalid.proto:45: rpc [Ticks] of CRDT service [example.invalid.Clock] streams \
                 [google.protobuf.Timestamp]"
            ),
            "{e}"
        );
    }

    #[test]
    fn crdt_state_names_resolve() {
        let dir = out_dir("crdt-state");
        configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .crdt(
                Crdt::new("example.presence.Presence")
                    .state("ORMap<String, LWWRegister<example.presence.Online.Device>>"),
            )
            .crdt(Crdt::new("example.presence.Visits").state(" GSet<.example.presence.User> "))
            .compile_protos(&["presence/presence.proto"], &[FIXTURES])
            .unwrap();
        let code = std::fs::read_to_string(dir.join("example.presence.rs")).unwrap();
        let code: String = code.split_whitespace().collect();
        for expected in [
            "pubtypeContext<'a>=::cloudstate_sdk::__private::CrdtContext<'a,::cloudstate_sdk::crdt::ORMap<String,::cloudstate_sdk::crdt::LWWRegister<super::online::Device>,>,>;",
            "pubtypeContext<'a>=::cloudstate_sdk::__private::CrdtContext<'a,::cloudstate_sdk::crdt::GSet<super::User>,>;",
            "ctx:&mutStreamContext<'_,'_,super::Online>,",
        ] {
            assert!(code.contains(expected), "{expected} not in {code}");
        }
        assert!(!code.contains("typeState:"), "{code}");

        let state_error = |state: &str| {
            run_crdt(
                Crdt::new("example.presence.Visits").state(state),
                "presence/presence.proto",
                "crdt-state-error",
            )
            .unwrap_err()
            .to_string()
        };
        let prefix =
            "state type [ORSet<Strin>] declared for CRDT service [example.presence.Visits]: ";
        let e = state_error("ORSet<Strin>");
        assert!(
            e.starts_with(&format!("{prefix}unknown name `Strin`")),
            "{e}"
        );
        let e = state_error("ORSet<example.presence.Usr>");
        assert!(e.contains("[example.presence.Usr] is not a message"), "{e}");
        let e = state_error("ORSet<example.Online>");
        assert!(e.contains("did you mean [example.presence.Online]"), "{e}");
        let e = state_error("String");
        assert!(
            e.ends_with("the state of a CRDT entity is one of the CRDT types: GCounter, PNCounter, GSet, ORSet, LWWRegister, Flag, ORMap, Vote, Crdt"),
            "{e}"
        );
        let e = state_error("ORSet<String");
        assert!(e.contains("not a Rust type"), "{e}");
        let e = state_error("ORSet<std::string::String>");
        assert!(e.contains("unknown name `std`"), "{e}");
        let e = state_error("ORSet<&str>");
        assert!(e.contains("unexpected `&`"), "{e}");
    }

    #[test]
    fn proto_syntax_errors_name_file_and_line() {
        let dir = out_dir("syntax");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("broken.proto"),
            "syntax = \"proto3\";\nmessage X {\n  string a = ;\n}\n",
        )
        .unwrap();
        let e = configure()
            .out_dir(dir.join("out"))
            .emit_rerun_if_changed(false)
            .compile_protos(&["broken.proto"], &[&dir])
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken.proto"), "{e}");
        assert!(e.contains("3:"), "{e}");
    }

    /// The doc lines of method `method` of trait `name` in a generated file.
    fn trait_docs(code: &str, name: &str, method: Option<&str>) -> Vec<String> {
        fn find<'a>(items: &'a [syn::Item], name: &str) -> Option<&'a syn::ItemTrait> {
            items.iter().find_map(|item| match item {
                syn::Item::Trait(t) if t.ident == name => Some(t),
                syn::Item::Mod(m) => find(&m.content.as_ref()?.1, name),
                _ => None,
            })
        }
        let file = syn::parse_file(code).unwrap();
        let item = find(&file.items, name).unwrap_or_else(|| panic!("no trait {name}"));
        let attrs = match method {
            None => &item.attrs,
            Some(method) => item
                .items
                .iter()
                .find_map(|i| match i {
                    syn::TraitItem::Fn(f) if f.sig.ident == method => Some(&f.attrs),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no method {method} in {name}")),
        };
        attrs
            .iter()
            .filter_map(|a| match &a.meta {
                syn::Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => Some(s.value()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Every kind puts an rpc's proto comment on its trait method, and the
    /// service's comment on the trait, each line with one leading space.
    #[test]
    fn proto_comments_land_on_the_trait_and_its_methods() {
        let generated = |builder: Builder, proto: &str, file: &str, name: &str| {
            let dir = out_dir(name);
            builder
                .out_dir(&dir)
                .emit_rerun_if_changed(false)
                .compile_protos(&[proto], &[FIXTURES])
                .unwrap();
            std::fs::read_to_string(dir.join(file)).unwrap()
        };
        let counter_proto = "counter/counter.proto";
        let cases = [
            (
                generated(
                    configure().event_sourced(counter()),
                    counter_proto,
                    "example.counter.rs",
                    "docs-es",
                ),
                "Counter",
                "increase",
                " Adds `by` to the counter.",
                " Counts.",
            ),
            (
                generated(
                    configure().value_entity(ValueEntity::new(
                        "example.counter.Counter",
                        "example.counter.Value",
                    )),
                    counter_proto,
                    "example.counter.rs",
                    "docs-ve",
                ),
                "Counter",
                "increase",
                " Adds `by` to the counter.",
                " Counts.",
            ),
            (
                generated(
                    configure().action(Action::new("example.greeter.Greeter")),
                    "greeter/greeter.proto",
                    "example.greeter.rs",
                    "docs-action",
                ),
                "Greeter",
                "hello_all",
                " One greeting for everybody sent.",
                " Greets people, one way or another.",
            ),
            (
                generated(
                    presence(),
                    "presence/presence.proto",
                    "example.presence.rs",
                    "docs-crdt",
                ),
                "Presence",
                "watch",
                " The connections now and after every change.",
                " Who is online: one unary and one server-streaming rpc.",
            ),
        ];
        for (code, name, method, rpc_doc, service_doc) in cases {
            let docs = trait_docs(&code, name, Some(method));
            assert_eq!(
                docs.first().map(String::as_str),
                Some(rpc_doc),
                "{name}::{method}"
            );
            let docs = trait_docs(&code, name, None);
            // A paragraph of its own after the summary line.
            assert_eq!(
                docs.get(1..3),
                Some(&["".to_owned(), service_doc.to_owned()][..]),
                "{name}"
            );
        }
    }

    /// JSON events next to protobuf ones: enum variants holding the user's
    /// types, encoded and matched by their `json.cloudstate.io` type URL.
    /// The compile test `json_golden_compiles.rs` runs it.
    #[test]
    fn json_events_match_golden_file() {
        let dir = out_dir("golden-json");
        configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .event_sourced(
                EventSourced::new("example.counter.Counter")
                    .event("example.counter.domain.Increased")
                    .json_event("crate::json::Doubled")
                    .json_event_named("crate::json::Halved<u8>", "com.example.Halved")
                    .state("example.counter.domain.Snapshot")
                    .snapshot("example.counter.domain.Snapshot"),
            )
            .compile_protos(&["counter/counter.proto"], &[FIXTURES])
            .unwrap();
        check_golden(&dir, "json", &["example.counter.rs"]);
    }

    /// An event-sourced entity whose snapshots are a JSON type of the user's
    /// crate. The compile test `json_snapshot_golden_compiles.rs` runs it.
    #[test]
    fn json_snapshot_matches_golden_file() {
        let dir = out_dir("golden-json-snapshot");
        configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .event_sourced(
                EventSourced::new("example.counter.Counter")
                    .event("example.counter.domain.Increased")
                    .state("example.counter.domain.Snapshot")
                    .json_snapshot("crate::json::Saved"),
            )
            .compile_protos(&["counter/counter.proto"], &[FIXTURES])
            .unwrap();
        check_golden(&dir, "json-snapshot", &["example.counter.rs"]);
    }

    /// A value entity whose state is a JSON type of the user's crate. The
    /// compile test `json_state_golden_compiles.rs` runs it.
    #[test]
    fn json_state_matches_golden_file() {
        let dir = out_dir("golden-json-state");
        configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .value_entity(ValueEntity::json_state(
                "example.counter.Counter",
                "crate::json::Tally",
            ))
            .compile_protos(&["counter/counter.proto"], &[FIXTURES])
            .unwrap();
        check_golden(&dir, "json-state", &["example.counter.rs"]);
        let err = configure()
            .out_dir(out_dir("json-state-errors"))
            .emit_rerun_if_changed(false)
            .value_entity(ValueEntity::json_state_named(
                "example.counter.Counter",
                "crate::json::Tally",
                "",
            ))
            .compile_protos(&["counter/counter.proto"], &[FIXTURES])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("JSON state [crate::json::Tally]") && err.contains("non-empty"),
            "{err}"
        );
    }

    #[test]
    fn bad_json_events_are_build_errors() {
        let build = |entity: EventSourced| {
            configure()
                .out_dir(out_dir("json-errors"))
                .emit_rerun_if_changed(false)
                .event_sourced(entity)
                .compile_protos(&["counter/counter.proto"], &[FIXTURES])
                .unwrap_err()
                .to_string()
        };
        let entity = || EventSourced::new("example.counter.Counter");
        let err = build(entity().json_event("not a type"));
        assert!(
            err.contains("JSON event [not a type]") && err.contains("not a Rust type"),
            "{err}"
        );
        let err = build(entity().json_event("[u8; 2]"));
        assert!(err.contains("not a Rust type path"), "{err}");
        let err = build(entity().json_event_named("crate::A", "a/b"));
        assert!(err.contains("[a/b]"), "{err}");
        let err = build(
            entity()
                .json_event("crate::A")
                .json_event_named("crate::B", "A"),
        );
        assert!(
            err.contains("JSON event type [A] is declared twice"),
            "{err}"
        );
        // The handler `on_increased` is taken by the protobuf event.
        let err = build(
            entity()
                .event("example.counter.domain.Increased")
                .json_event("crate::other::Increased"),
        );
        assert!(err.contains("`on_increased`"), "{err}");
    }

    /// Builds `proto` (written to a directory of its own as `t.proto`, after
    /// the imports eventing needs) with `builder`, and returns the error.
    fn eventing_error(name: &str, proto: &str, builder: Builder) -> String {
        eventing_build(name, proto, builder)
            .unwrap_err()
            .to_string()
    }

    fn eventing_build(name: &str, proto: &str, builder: Builder) -> Result<(), Error> {
        let dir = out_dir(&format!("eventing-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let header = "syntax = \"proto3\";\npackage t;\n\
                      import \"cloudstate/eventing.proto\";\n\
                      import \"cloudstate/entity_key.proto\";\n\
                      import \"google/protobuf/any.proto\";\n\
                      message M { string id = 1 [(.cloudstate.entity_key) = true]; }\n\
                      message N { string id = 1 [(.cloudstate.entity_key) = true]; }\n";
        std::fs::write(dir.join("t.proto"), format!("{header}{proto}")).unwrap();
        builder
            .out_dir(dir.join("out"))
            .emit_rerun_if_changed(false)
            .compile_protos(&["t.proto"], &[&dir])
    }

    /// An action `t.S` whose one rpc `R(M)` has the eventing option `option`.
    fn subscriber(option: &str) -> String {
        format!(
            "service S {{ rpc R(M) returns (M) {{ option (.cloudstate.eventing) = {option}; }} }}"
        )
    }

    fn action_s() -> Builder {
        configure().action(Action::new("t.S"))
    }

    #[test]
    fn eventing_in_needs_a_source() {
        let e = eventing_error("no-source", &subscriber("{ in: {} }"), action_s());
        assert!(
            e.starts_with("t.proto:")
                && e.contains("rpc [t.S.R] has an eventing `in` with no source"),
            "{e}"
        );
        let e = eventing_error(
            "only-group",
            &subscriber("{ in: { consumer_group: \"g\" } }"),
            action_s(),
        );
        assert!(
            e.contains("rpc [t.S.R] has an eventing `in` with no source"),
            "{e}"
        );
        let e = eventing_error(
            "empty-log",
            &subscriber("{ in: { event_log: \"\" } }"),
            action_s(),
        );
        assert!(
            e.contains("rpc [t.S.R] has an eventing `in` with an empty `event_log`"),
            "{e}"
        );
    }

    #[test]
    fn eventing_out_needs_a_topic() {
        let e = eventing_error("no-topic", &subscriber("{ out: {} }"), action_s());
        assert!(
            e.contains("rpc [t.S.R] has an eventing `out` with no topic"),
            "{e}"
        );
    }

    #[test]
    fn a_method_may_not_read_and_write_one_topic() {
        let e = eventing_error(
            "loop",
            &subscriber("{ in: { topic: \"news\" }, out: { topic: \"news\" } }"),
            action_s(),
        );
        assert!(
            e.contains("rpc [t.S.R] reads from and publishes to the same topic [news]"),
            "{e}"
        );
        eventing_build(
            "no-loop",
            &subscriber("{ in: { topic: \"news\" }, out: { topic: \"digest\" } }"),
            action_s(),
        )
        .unwrap();
    }

    #[test]
    fn topic_names_are_pub_sub_names() {
        let e = eventing_error(
            "bad-in",
            &subscriber("{ in: { topic: \"1st\" } }"),
            action_s(),
        );
        assert!(
            e.contains(
                "rpc [t.S.R] reads from the topic [1st], which does not start with a letter"
            ),
            "{e}"
        );
        let e = eventing_error(
            "bad-out",
            &subscriber("{ out: { topic: \"goog-news\" } }"),
            action_s(),
        );
        assert!(
            e.contains("rpc [t.S.R] publishes to the topic [goog-news], which starts with `goog`"),
            "{e}"
        );
        let e = eventing_error(
            "empty-out",
            &subscriber("{ out: { topic: \"\" } }"),
            action_s(),
        );
        assert!(
            e.contains("[], which is not 3 to 255 characters long"),
            "{e}"
        );
    }

    #[test]
    fn two_methods_may_not_take_one_input_from_one_source() {
        let service = |first: &str, second: &str| {
            format!(
                "service S {{\n\
                 rpc A(M) returns (M) {{ option (.cloudstate.eventing) = {{ in: {{ topic: \"news\"{first} }} }}; }}\n\
                 rpc B(M) returns (M) {{ option (.cloudstate.eventing) = {{ in: {{ topic: \"news\"{second} }} }}; }}\n\
                 rpc C(N) returns (M) {{ option (.cloudstate.eventing) = {{ in: {{ topic: \"news\" }} }}; }}\n}}"
            )
        };
        let e = eventing_error("same-input", &service("", ""), action_s());
        assert!(
            e.contains(
                "rpc [t.S.B] and rpc [t.S.A] both subscribe to the topic [news] with the input [t.M]"
            ) && e.contains("consumer_group"),
            "{e}"
        );
        let e = eventing_error(
            "same-group",
            &service(", consumer_group: \"g\"", ", consumer_group: \"g\""),
            action_s(),
        );
        assert!(e.contains("both subscribe to the topic [news]"), "{e}");
        eventing_build(
            "other-groups",
            &service(", consumer_group: \"one\"", ", consumer_group: \"two\""),
            action_s(),
        )
        .unwrap();
    }

    const LOG_SUBSCRIBER: &str = "service Log { rpc Entity(M) returns (M); }\n\
        service S { rpc R(M) returns (M) { option (.cloudstate.eventing) = { in: { event_log: \"carts\" } }; } }";

    #[test]
    fn an_event_log_is_the_persistence_id_of_an_entity_of_the_build() {
        let e = eventing_error("log-none", LOG_SUBSCRIBER, action_s());
        assert!(
            e.starts_with("t.proto:")
                && e.contains("rpc [t.S.R] subscribes to the event log [carts], but no event-sourced entity of this build declares that persistence id (declared: [])")
                && e.contains(".persistence_id(\"carts\")"),
            "{e}"
        );
        let e = eventing_error(
            "log-other",
            LOG_SUBSCRIBER,
            action_s().event_sourced(EventSourced::new("t.Log").persistence_id("cart")),
        );
        assert!(e.contains("(declared: [cart (t.Log)])"), "{e}");
        eventing_build(
            "log-declared",
            LOG_SUBSCRIBER,
            action_s().event_sourced(EventSourced::new("t.Log").persistence_id("carts")),
        )
        .unwrap();
        // An entity another crate of the user function builds.
        eventing_build(
            "log-external",
            LOG_SUBSCRIBER,
            action_s().external_event_log("carts"),
        )
        .unwrap();
        let e = eventing_error(
            "log-external-other",
            LOG_SUBSCRIBER,
            action_s().external_event_log("orders"),
        );
        assert!(
            e.contains("(declared: [orders (another crate)])")
                && e.contains("external_event_log(\"carts\")"),
            "{e}"
        );
    }

    #[test]
    fn persistence_ids_are_one_per_entity() {
        let e = eventing_error(
            "log-twice",
            &format!("{LOG_SUBSCRIBER}\nservice Log2 {{ rpc Entity(M) returns (M); }}"),
            action_s()
                .event_sourced(EventSourced::new("t.Log").persistence_id("carts"))
                .event_sourced(EventSourced::new("t.Log2").persistence_id("carts")),
        );
        assert!(
            e.contains("the persistence id [carts] is declared for both [t.Log] and [t.Log2]"),
            "{e}"
        );
        let e = eventing_error(
            "log-empty",
            LOG_SUBSCRIBER,
            action_s().event_sourced(EventSourced::new("t.Log").persistence_id("")),
        );
        assert!(
            e.contains("the persistence id declared for [t.Log] is empty"),
            "{e}"
        );
    }

    /// Entities may subscribe too (the proxy refuses no kind); as for any
    /// entity rpc, the event needs an entity key, which `M` has.
    #[test]
    fn entities_may_subscribe() {
        eventing_build(
            "entity-subscriber",
            &subscriber("{ in: { topic: \"news\" }, out: { topic: \"digest\" } }"),
            configure().value_entity(ValueEntity::new("t.S", "t.M")),
        )
        .unwrap();
    }

    /// The option is found by its extension number: a copy of
    /// `eventing.proto` in another package reads the same.
    #[test]
    fn eventing_is_read_by_extension_number() {
        let dir = out_dir("eventing-copy");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("mine.proto"),
            "syntax = \"proto3\";\npackage mine;\nimport \"google/protobuf/descriptor.proto\";\n\
             message Ev { Src in = 1; Dst out = 2; }\n\
             message Src { string consumer_group = 1; oneof source { string topic = 2; string event_log = 3; } }\n\
             message Dst { oneof destination { string topic = 1; } }\n\
             extend google.protobuf.MethodOptions { Ev ev = 1081; }\n\
             message M { string id = 1; }\n\
             service S { rpc R(M) returns (M) { option (mine.ev) = { out: {} }; } }\n",
        )
        .unwrap();
        let e = action_s_at("mine.S")
            .out_dir(dir.join("out"))
            .emit_rerun_if_changed(false)
            .compile_protos(&["mine.proto"], &[&dir])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rpc [mine.S.R] has an eventing `out` with no topic"),
            "{e}"
        );
    }

    fn action_s_at(service: &str) -> Builder {
        configure().action(Action::new(service))
    }

    /// An entity with a persistence id and an action reading its journal and
    /// publishing to topics: `PERSISTENCE_ID`, the `_TOPIC` constants and
    /// the eventing docs. `eventing_golden_compiles.rs` runs it.
    #[test]
    fn eventing_matches_golden_file() {
        let dir = out_dir("golden-eventing");
        eventing_golden(configure())
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .compile_protos(&["eventing/eventing.proto"], &[FIXTURES])
            .unwrap();
        check_golden(
            &dir,
            "eventing",
            &["example.eventing.rs", MODULES_FILE, PAYLOAD_FILE],
        );
    }

    fn eventing_golden(builder: Builder) -> Builder {
        builder
            .event_sourced(
                EventSourced::new("example.eventing.Cart")
                    .events(["example.eventing.ItemAdded", "example.eventing.CartCleared"])
                    .json_event("crate::events::ItemMoved")
                    .persistence_id("shopping-cart"),
            )
            .action(
                Action::new("example.eventing.CartListener")
                    .json_events("OnOther", ["crate::events::ItemMoved"])
                    .json_event_named("OnOther", "crate::events::Note", "com.example.Note")
                    .events("OnOther", ["example.eventing.CartCleared"]),
            )
    }

    #[test]
    fn typed_inputs_are_checked() {
        let build = |action: Action| {
            configure()
                .out_dir(out_dir("typed-errors"))
                .emit_rerun_if_changed(false)
                .event_sourced(
                    EventSourced::new("example.eventing.Cart")
                        .events(["example.eventing.ItemAdded"])
                        .persistence_id("shopping-cart"),
                )
                .action(action)
                .compile_protos(&["eventing/eventing.proto"], &[FIXTURES])
                .unwrap_err()
                .to_string()
        };
        let listener = || Action::new("example.eventing.CartListener");
        let e = build(listener().json_events("OnOthers", ["crate::A"]));
        assert!(
            e.contains("the rpc [OnOthers] of action [example.eventing.CartListener], which has no such rpc; its rpcs: [OnItemAdded, OnOther, Digest]"),
            "{e}"
        );
        let e = build(listener().json_events("Digest", ["crate::A"]));
        assert!(
            e.contains(
                "typed events are declared for rpc [example.eventing.CartListener.Digest], whose input is [example.eventing.Notice]"
            ),
            "{e}"
        );
        // `ItemAdded` of the same event log goes to `OnItemAdded`.
        let e = build(listener().events("OnOther", ["example.eventing.ItemAdded"]));
        assert!(
            e.contains(
                "event [example.eventing.ItemAdded] is declared for rpc [example.eventing.CartListener.OnOther], \
                 but the proxy hands such events to rpc [example.eventing.CartListener.OnItemAdded]"
            ),
            "{e}"
        );
        let e = build(listener().events("OnOther", ["example.eventing.Nope"]));
        assert!(e.contains("event type [example.eventing.Nope]"), "{e}");
        let e = build(listener().json_events("OnOther", ["crate::Other"]));
        assert!(
            e.contains("would be the variant `Other` of `OnOtherInput`"),
            "{e}"
        );
        let e = build(
            listener()
                .json_events("OnOther", ["crate::a::Notice"])
                .events("OnOther", ["example.eventing.Notice"]),
        );
        assert!(
            e.contains("JSON event [crate::a::Notice] and event [example.eventing.Notice] of rpc [example.eventing.CartListener.OnOther] would both be the variant `Notice`"),
            "{e}"
        );
        let e = build(
            listener()
                .json_event_named("OnOther", "crate::A", "N")
                .json_event_named("OnOther", "crate::B", "N"),
        );
        assert!(e.contains("JSON event [crate::B] is declared twice"), "{e}");
        let e = build(listener().json_events("OnOther", ["not a type"]));
        assert!(e.contains("not a Rust type"), "{e}");
    }

    #[test]
    fn a_typed_input_enum_may_not_clash_with_the_trait() {
        let e = eventing_error(
            "typed-clash",
            "service ReadInput { rpc Read(google.protobuf.Any) returns (M); }",
            configure().action(Action::new("t.ReadInput").json_events("Read", ["crate::A"])),
        );
        assert!(
            e.contains("would generate the enum `ReadInput`, which the generated trait"),
            "{e}"
        );
    }

    /// A state fixed to the snapshot message: no `type State`, and
    /// `initial_state`, `snapshot` and `restore` have defaults. The compile
    /// test `state_golden_compiles.rs` implements it without them.
    #[test]
    fn state_that_is_the_snapshot_matches_golden_file() {
        let snapshot = "example.counter.domain.Snapshot";
        let dir = out_dir("golden-state");
        configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .event_sourced(
                EventSourced::new("example.counter.Counter")
                    .events([
                        "example.counter.domain.Increased",
                        "example.counter.domain.Reset",
                    ])
                    .state(snapshot)
                    .snapshot(snapshot),
            )
            .compile_protos(&["counter/counter.proto"], &[FIXTURES])
            .unwrap();
        check_golden(&dir, "state", &["example.counter.rs"]);
        let code = std::fs::read_to_string(dir.join("example.counter.rs")).unwrap();
        let code = code
            .split_whitespace()
            .collect::<String>()
            .replace(",)", ")");
        assert!(!code.contains("typeState:"), "{code}");
        for expected in [
            "fninitial_state(&self,entity_id:&str)->super::domain::Snapshot{",
            "fnsnapshot(&self,state:&super::domain::Snapshot)->super::domain::Snapshot{",
            "fnrestore(&self,entity_id:&str,snapshot:super::domain::Snapshot)->super::domain::Snapshot{",
            "typeState=super::domain::Snapshot;",
        ] {
            assert!(code.contains(expected), "{expected} not in {code}");
        }
    }

    /// A fixed state that is not the snapshot type keeps `snapshot` and
    /// `restore` required; an unknown state message is an error.
    #[test]
    fn state_declarations_are_checked() {
        let dir = out_dir("state-other");
        configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .event_sourced(counter().state("example.counter.Value"))
            .compile_protos(&["counter/counter.proto"], &[FIXTURES])
            .unwrap();
        let code = std::fs::read_to_string(dir.join("example.counter.rs")).unwrap();
        let code = code
            .split_whitespace()
            .collect::<String>()
            .replace(",)", ")");
        assert!(
            code.contains("fnsnapshot(&self,state:&super::Value)->super::domain::Snapshot;"),
            "{code}"
        );
        assert!(
            code.contains(
                "fnrestore(&self,entity_id:&str,snapshot:super::domain::Snapshot)->super::Value;"
            ),
            "{code}"
        );
        let e = run(
            counter().state("example.counter.Valu"),
            "counter/counter.proto",
            "state-unknown",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "state type [example.counter.Valu] declared for service [example.counter.Counter] \
                 is not a message"
            ),
            "{e}"
        );
    }

    /// Without a snapshot type the entity tells the SDK it takes none, so
    /// that registration refuses `snapshot_every`.
    #[test]
    fn entity_without_snapshot_type_says_so() {
        let generated = |decl: EventSourced, name: &str| {
            let dir = out_dir(name);
            configure()
                .out_dir(&dir)
                .emit_rerun_if_changed(false)
                .event_sourced(decl)
                .compile_protos(&["counter/counter.proto"], &[FIXTURES])
                .unwrap();
            let code = std::fs::read_to_string(dir.join("example.counter.rs")).unwrap();
            code.split_whitespace()
                .collect::<String>()
                .replace(",)", ")")
        };
        let takes_none = "fntakes_snapshots(&self)->bool{false}";
        let code = generated(
            EventSourced::new("example.counter.Counter").event("example.counter.domain.Reset"),
            "no-snapshot",
        );
        assert!(code.contains(takes_none), "{code}");
        assert!(!code.contains("fnsnapshot("), "{code}");
        assert!(!generated(counter(), "with-snapshot").contains(takes_none));
    }

    /// Generated code reaches prost through the SDK only, so that a user
    /// crate needs no prost dependency (the samples have none).
    #[test]
    fn generated_code_names_prost_through_the_sdk() {
        let dir = out_dir("prost-path");
        configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .event_sourced(counter())
            .action(Action::new("example.invalid.Clock"))
            .compile_protos(&["counter/counter.proto", "invalid.proto"], &[FIXTURES])
            .unwrap();
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let code = std::fs::read_to_string(&path).unwrap();
                let rest = code
                    .replace("::cloudstate_sdk::__private::prost", "")
                    .replace("::cloudstate_sdk::prost_types", "")
                    .replace("#[prost(prost_path = ", "")
                    .replace("#[prost(", "")
                    .replace("@generated by prost-build", "");
                assert!(
                    !rest.contains("prost"),
                    "{} names prost directly: {code}",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 4, "{checked} files");
        let invalid = std::fs::read_to_string(dir.join("example.invalid.rs")).unwrap();
        assert!(
            invalid.contains("::cloudstate_sdk::prost_types::Timestamp"),
            "{invalid}"
        );
    }

    /// A build script's `main` returning `Result<(), Box<dyn Error>>` prints
    /// the error with `Debug`: it reads as the message.
    #[test]
    fn errors_debug_print_as_their_message() {
        let e = run(
            EventSourced::new("example.invalid.Clash"),
            "invalid.proto",
            "debug",
        )
        .unwrap_err();
        let message = e.to_string();
        assert!(message.starts_with("invalid.proto:29: "), "{message}");
        assert_eq!(format!("{e:?}"), message);
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert_eq!(format!("Error: {boxed:?}"), format!("Error: {message}"));
        let e = Error::from(std::io::Error::other("disk full"));
        assert_eq!(format!("{e:?}"), "i/o: disk full");
    }

    /// Every well-known type, top-level and nested, resolves to the SDK's
    /// `prost_types`: the compile test `wkt_golden_compiles.rs` builds the
    /// golden output.
    #[test]
    fn well_known_types_match_golden_file() {
        let dir = out_dir("golden-wkt");
        configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .compile_protos(&["wkt/wkt.proto"], &[FIXTURES])
            .unwrap();
        check_golden(&dir, "wkt", &["example.wkt.rs", MODULES_FILE, PAYLOAD_FILE]);
    }
}
