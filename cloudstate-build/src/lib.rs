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

mod codegen;
mod declared;
mod validate;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prost_types::{DescriptorProto, FileDescriptorSet};

use declared::Declared;

/// Name of the generated file in `OUT_DIR` that `include_protos!()` includes.
pub const GENERATED_FILE: &str = "cloudstate_protos.rs";
const DESCRIPTOR_FILE: &str = "cloudstate_descriptor_set.bin";
const PROST_INCLUDE_FILE: &str = "cloudstate_prost_modules.rs";
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
#[derive(Debug, thiserror::Error)]
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
#[derive(Debug, Clone)]
pub struct Action {
    service: String,
}

impl Action {
    /// The service `service`, e.g. `com.example.Greeter`.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }
}

/// Declares a gRPC service as a value entity with its state type (fully
/// qualified proto name).
///
/// For it, the generator writes a handler trait named after the service (one
/// method per rpc, taking the request and a context that reads, updates and
/// deletes the state) and `Entity<T>`, which serves an implementation of it.
#[derive(Debug, Clone)]
pub struct ValueEntity {
    service: String,
    state: String,
    /// Filled in by validation: the state type's Rust path from the service's package.
    resolved_state: String,
}

impl ValueEntity {
    /// The service `service` whose state is the message `state`.
    pub fn new(service: impl Into<String>, state: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            state: state.into(),
            resolved_state: String::new(),
        }
    }
}

/// Declares a gRPC service as an event-sourced entity: its events and,
/// optionally, its snapshot type, all by fully qualified proto name.
///
/// For it, the generator writes a handler trait named after the service (one
/// method per rpc, one `on_<event>` per event type, `snapshot`/`restore` when a
/// snapshot type is declared), an `Event` enum, and `Entity<T>`, which serves
/// an implementation of the trait.
#[derive(Debug, Clone)]
pub struct EventSourced {
    service: String,
    events: Vec<String>,
    snapshot: Option<String>,
    /// Filled in by validation: (full name, Rust path from the service's package).
    resolved_events: Vec<(String, String)>,
    resolved_snapshot: Option<(String, String)>,
}

impl EventSourced {
    /// The service `service`, e.g. `com.example.shoppingcart.ShoppingCart`.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            events: Vec::new(),
            snapshot: None,
            resolved_events: Vec::new(),
            resolved_snapshot: None,
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

    /// Sets the snapshot type.
    #[must_use]
    pub fn snapshot(mut self, message: impl Into<String>) -> Self {
        self.snapshot = Some(message.into());
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
/// Client-streaming rpcs are an error: the proxy refuses them.
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
    /// A proto that does not parse or resolve (the message names the file and
    /// line), or a failure to write the output.
    pub fn compile_protos(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        for warning in self.generate(protos, includes)? {
            println!("cargo:warning={warning}");
        }
        Ok(())
    }

    /// Generates the code; returns the warnings.
    fn generate(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Vec<String>, Error> {
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
        let mut warnings = Vec::new();
        let fds = with_docs.file_descriptor_set();
        // Kind by kind (a stable sort), so that of several mistakes the same
        // one comes first however the builder calls were ordered.
        let mut order: Vec<&Declared> = self.declared.iter().collect();
        order.sort_by_key(|decl| decl.kind());
        let mut declared: HashMap<String, Declared> = HashMap::new();
        for decl in order {
            let resolved = validate::declaration(decl, &pool, &fds, &self.sdk_path, &mut warnings)?;
            if let Some(first) = declared.get(decl.service()) {
                return Err(Error::Proto(declared::declared_twice(
                    first.kind(),
                    decl.kind(),
                    decl.service(),
                )));
            }
            declared.insert(decl.service().to_owned(), resolved);
        }
        validate::module_names(&pool)?;
        let sdk: proc_macro2::TokenStream = self.sdk_path.parse().map_err(|_| {
            Error::Proto(format!("sdk_path [{}] is not a Rust path", self.sdk_path))
        })?;
        write_if_changed(&out_dir.join(DESCRIPTOR_FILE), &embedded)?;
        let payloads = codegen::payload_impls(&sdk, &validate::payload_messages(&pool, is_bundled));
        self.generate_messages(fds, &out_dir, declared, sdk)?;
        write_if_changed(&out_dir.join(PAYLOAD_FILE), payloads.as_bytes())?;

        let mut code = String::from("// @generated by cloudstate-build. Do not edit.\n\n");
        let _ = writeln!(code, "include!(\"{PROST_INCLUDE_FILE}\");\n");
        code.push_str("// Every message of the compiled protos as a `Payload`.\n");
        let _ = writeln!(code, "include!(\"{PAYLOAD_FILE}\");\n");
        code.push_str(
            "/// Serialized `FileDescriptorSet` of the compiled protos and all their imports,\n\
             /// as handed to the proxy at discovery.\n",
        );
        let _ = writeln!(
            code,
            "pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(\"{DESCRIPTOR_FILE}\");"
        );
        write_if_changed(&out_dir.join(GENERATED_FILE), code.as_bytes())?;
        Ok(warnings)
    }

    fn generate_messages(
        &self,
        fds: FileDescriptorSet,
        out_dir: &Path,
        declared: HashMap<String, Declared>,
        sdk: proc_macro2::TokenStream,
    ) -> Result<(), Error> {
        let (bundled, own): (Vec<_>, Vec<_>) =
            fds.file.into_iter().partition(|f| is_bundled(f.name()));
        let mut config = prost_build::Config::new();
        config.out_dir(out_dir);
        config.enable_type_names();
        config.type_name_domain(["."], "type.googleapis.com");
        config.include_file(PROST_INCLUDE_FILE);
        // Messages of the bundled protos live in the SDK's protocol module.
        let mut seen = HashSet::new();
        for file in bundled
            .iter()
            .filter(|f| !f.package().starts_with("google.protobuf"))
        {
            for message in &file.message_type {
                extern_message(
                    &mut config,
                    &mut seen,
                    &self.sdk_path,
                    file.package(),
                    message,
                );
            }
        }
        config.service_generator(Box::new(codegen::Generator { declared, sdk }));
        let own = FileDescriptorSet { file: own };
        config.compile_fds(own)?;
        Ok(())
    }
}

fn extern_message(
    config: &mut prost_build::Config,
    seen: &mut HashSet<String>,
    sdk: &str,
    package: &str,
    message: &DescriptorProto,
) {
    let proto = format!(".{package}.{}", message.name());
    if seen.insert(proto.clone()) {
        let module = package.replace('.', "::");
        config.extern_path(
            proto,
            format!("{sdk}::protocol::{module}::{}", message.name()),
        );
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

    fn run(decl: EventSourced, proto: &str, name: &str) -> Result<Vec<String>, Error> {
        configure()
            .out_dir(out_dir(name))
            .emit_rerun_if_changed(false)
            .event_sourced(decl)
            .generate(&[proto], &[FIXTURES])
    }

    /// The generated code for the counter fixture is the committed golden
    /// file; `UPDATE_GOLDEN=1` rewrites it after a deliberate change.
    #[test]
    fn counter_matches_golden_file() {
        let dir = out_dir("golden");
        let warnings = configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .event_sourced(counter())
            .generate(&["counter/counter.proto"], &[FIXTURES])
            .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        for file in [
            "example.counter.rs",
            "example.counter.domain.rs",
            GENERATED_FILE,
            PROST_INCLUDE_FILE,
            PAYLOAD_FILE,
        ] {
            let generated = std::fs::read_to_string(dir.join(file)).unwrap();
            let path = golden.join(file);
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(&path, &generated).unwrap();
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                generated == expected,
                "{file} differs from {}; rerun with UPDATE_GOLDEN=1",
                path.display()
            );
        }
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
        let warnings = configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .action(Action::new("example.greeter.Greeter"))
            .generate(&["greeter/greeter.proto"], &[FIXTURES])
            .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let file = "example.greeter.rs";
        let generated = std::fs::read_to_string(dir.join(file)).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(file);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            generated == expected,
            "{file} differs from {}; rerun with UPDATE_GOLDEN=1",
            path.display()
        );
    }

    #[test]
    fn action_declarations_are_checked() {
        let run_action = |decl: Action, name: &str| {
            configure()
                .out_dir(out_dir(name))
                .emit_rerun_if_changed(false)
                .action(decl)
                .generate(&["greeter/greeter.proto"], &[FIXTURES])
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
            .generate(&["greeter/greeter.proto"], &[FIXTURES])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is declared twice"), "{e}");
        // Streaming rpcs are fine for actions, and need no entity key.
        let warnings = configure()
            .out_dir(out_dir("action-streaming"))
            .emit_rerun_if_changed(false)
            .action(Action::new("example.invalid.Streaming"))
            .generate(&["invalid.proto"], &[FIXTURES])
            .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    /// One check for every pair of kinds; its message names what the two
    /// declarations have in common, whichever the builder saw first.
    #[test]
    fn a_service_declared_twice_is_an_error() {
        let twice = |builder: Builder, name: &str| {
            builder
                .out_dir(out_dir(name))
                .emit_rerun_if_changed(false)
                .generate(&["counter/counter.proto"], &[FIXTURES])
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
        assert!(e.starts_with("invalid.proto:13: rpc [Watch]"), "{e}");
        assert!(e.contains("unary calls only"), "{e}");
    }

    #[test]
    fn input_without_entity_key_is_a_warning() {
        let warnings = run(
            EventSourced::new("example.invalid.NoKey"),
            "invalid.proto",
            "nokey",
        )
        .unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("invalid.proto:17: the input [example.invalid.Keyless]"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("(cloudstate.entity_key)"),
            "{warnings:?}"
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
                "invalid.proto:21: rpc [Snapshot] would generate the trait method `snapshot`"
            ),
            "{e}"
        );
    }

    fn presence() -> Builder {
        configure()
            .emit_rerun_if_changed(false)
            .crdt(Crdt::new("example.presence.Presence"))
            .crdt(Crdt::new("example.presence.Visits").state("GCounter"))
    }

    /// The generated code for the CRDT fixture is the committed golden file;
    /// `UPDATE_GOLDEN=1` rewrites it after a deliberate change.
    #[test]
    fn crdt_matches_golden_file() {
        let dir = out_dir("golden-crdt");
        let warnings = presence()
            .out_dir(&dir)
            .generate(&["presence/presence.proto"], &[FIXTURES])
            .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/presence");
        for file in ["example.presence.rs", PAYLOAD_FILE] {
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

    fn run_crdt(decl: Crdt, proto: &str, name: &str) -> Result<Vec<String>, Error> {
        configure()
            .out_dir(out_dir(name))
            .emit_rerun_if_changed(false)
            .crdt(decl)
            .generate(&[proto], &[FIXTURES])
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
            "invalid.proto:25: rpc [Upload] of CRDT service [example.invalid.Uploads] is \
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
        assert!(e.starts_with("invalid.proto:13: rpc [Watch]"), "{e}");
        assert!(e.contains("is client-streaming"), "{e}");
        let warnings = run_crdt(
            Crdt::new("example.invalid.NoKey"),
            "invalid.proto",
            "crdt-nokey",
        )
        .unwrap();
        assert_eq!(
            warnings,
            [
                "invalid.proto:17: the input [example.invalid.Keyless] of rpc \
              [example.invalid.NoKey.Call] has no field marked (cloudstate.entity_key): every \
              call would go to one entity, and the official proxy refuses such CRDT methods"
            ]
        );
        let e = run_crdt(
            Crdt::new("example.invalid.State"),
            "invalid.proto",
            "crdt-clash",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "invalid.proto:29: rpc [State] would generate the trait method `state`, \
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
            .generate(&["presence/presence.proto"], &[FIXTURES])
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
            .generate(&["broken.proto"], &[&dir])
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken.proto"), "{e}");
        assert!(e.contains("3:"), "{e}");
    }
}
