//! Checks of the entity declarations against the compiled protos, before any
//! code is written; errors name the proto file and line where there is one.

use std::collections::{HashMap, HashSet};

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_types::FileDescriptorSet;
use protox::prost_reflect::{
    DescriptorPool, MessageDescriptor, MethodDescriptor, ServiceDescriptor,
};

use crate::declared::{Declared, Streaming};
use crate::eventing::{self, MethodEventing};
use crate::{
    Action, Crdt, Error, EventSourced, InputVariant, ResolvedInput, ValueEntity, VariantEncoding,
};

/// Validates one declaration against the protos, by the rules of its kind,
/// and resolves its message types to Rust paths; with the eventing options
/// of its methods.
pub(crate) fn declaration(
    decl: &Declared,
    pool: &DescriptorPool,
    fds: &FileDescriptorSet,
    sdk: &str,
) -> Result<(Declared, Vec<MethodEventing>), Error> {
    let rules = decl.kind().rules();
    let label = rules.label;
    let name = decl.service();
    let Some(service) = pool.get_service_by_name(name) else {
        let known: Vec<String> = pool.services().map(|s| s.full_name().to_owned()).collect();
        return Err(Error::Proto(format!(
            "{label} service [{name}] is not in the compiled protos; services found: [{}]",
            known.join(", ")
        )));
    };
    let trait_name = service.name().to_upper_camel_case();
    if let Some((item, what)) = rules.generated.iter().find(|(item, _)| *item == trait_name) {
        let at = location(fds, service.parent_file().name(), service.path());
        return Err(Error::Proto(format!(
            "{at}: {label} service [{name}] would generate a trait named like the generated \
             `{item}` {what} of its module; rename the service"
        )));
    }
    let mut trait_names: HashMap<String, String> = rules
        .reserved
        .iter()
        .map(|r| ((*r).to_owned(), "the generated trait".to_owned()))
        .collect();
    for method in service.methods() {
        let at = location(fds, method.parent_file().name(), method.path());
        let streaming = method.is_client_streaming() || method.is_server_streaming();
        if streaming && rules.streaming == Streaming::None {
            return Err(Error::Proto(format!(
                "{at}: rpc [{}] of {label} service [{name}] is streaming; \
                 {} take unary calls only",
                method.name(),
                rules.plural
            )));
        }
        if method.is_client_streaming() && rules.streaming == Streaming::ServerOnly {
            return Err(Error::Proto(format!(
                "{at}: rpc [{}] of {label} service [{name}] is client-streaming; \
                 {} take unary and server-streaming calls only",
                method.name(),
                rules.plural
            )));
        }
        if rules.entity_keys && !has_entity_key(&method, pool) {
            return Err(Error::Proto(format!(
                "{at}: the input [{}] of rpc [{name}.{}] has no field marked \
                 (cloudstate.entity_key), and the proxy refuses {} with such methods; \
                 mark the field that names the entity with `[(cloudstate.entity_key) = true]`",
                method.input().full_name(),
                method.name(),
                rules.plural
            )));
        }
        claim(
            &mut trait_names,
            method.name().to_snake_case(),
            format!("rpc [{}]", method.name()),
            &at,
        )?;
    }
    let eventing = eventing::of_service(&service, pool, fds)?;
    let package = service.package_name();
    let resolved = match decl {
        Declared::EventSourced(decl) => Declared::EventSourced(event_sourced(
            decl,
            package,
            pool,
            fds,
            sdk,
            &mut trait_names,
        )?),
        Declared::ValueEntity(decl) => match &decl.json_state {
            Some(type_name) => {
                let what = format!("JSON state [{}]", decl.state);
                let (json_name, _) = json_type(&decl.state, type_name.as_deref(), &what, name)?;
                Declared::ValueEntity(ValueEntity {
                    resolved_state: decl.state.clone(),
                    resolved_json_name: Some(json_name),
                    ..decl.clone()
                })
            }
            None => {
                let state = message(pool, &decl.state, name, "state")?;
                Declared::ValueEntity(ValueEntity {
                    resolved_state: rust_path(package, &state, sdk),
                    ..decl.clone()
                })
            }
        },
        Declared::Action(decl) => Declared::Action(action(decl, &service, &eventing, pool, sdk)?),
        Declared::Crdt(decl) => Declared::Crdt(Crdt {
            resolved_state: {
                streamed_payloads(&service, fds)?;
                match &decl.state {
                    Some(state) => Some(crdt_state(state, name, package, pool, sdk)?),
                    None => None,
                }
            },
            ..decl.clone()
        }),
    };
    Ok((resolved, eventing))
}

/// The messages of a CRDT's server-streaming rpc go out through change
/// callbacks as `Payload`s: well-known types other than `Empty` and `Any`
/// have no such impl.
fn streamed_payloads(service: &ServiceDescriptor, fds: &FileDescriptorSet) -> Result<(), Error> {
    for method in service
        .methods()
        .filter(MethodDescriptor::is_server_streaming)
    {
        let output = method.output();
        let full = output.full_name();
        if output.package_name() == "google.protobuf"
            && !matches!(full, "google.protobuf.Empty" | "google.protobuf.Any")
        {
            let at = location(fds, method.parent_file().name(), method.path());
            return Err(Error::Proto(format!(
                "{at}: rpc [{}] of CRDT service [{}] streams [{full}], which cannot be a \
                 change callback's message; stream a message of your own that holds it",
                method.name(),
                service.full_name()
            )));
        }
    }
    Ok(())
}

/// The CRDT types, as `cloudstate_sdk::crdt` names them.
const CRDT_TYPES: &[&str] = &[
    "GCounter",
    "PNCounter",
    "GSet",
    "ORSet",
    "LWWRegister",
    "Flag",
    "ORMap",
    "Vote",
    "Crdt",
];

/// Names a CRDT state type may use as they are.
const RUST_TYPES: &[&str] = &[
    "bool", "char", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128",
    "usize", "f32", "f64", "String", "Vec",
];

/// Resolves the names of a declared CRDT state type, e.g.
/// `ORMap<String, LWWRegister<example.Status>>`, into a Rust type as seen
/// from the generated service module: CRDT names and `Any` from the SDK,
/// Rust primitives, `String` and `Vec` as they are, and dotted names as proto
/// messages.
fn crdt_state(
    state: &str,
    service: &str,
    package: &str,
    pool: &DescriptorPool,
    sdk: &str,
) -> Result<String, Error> {
    let error = |what: String| {
        Error::Proto(format!(
            "state type [{state}] declared for CRDT service [{service}]: {what}"
        ))
    };
    let mut resolved = String::new();
    let mut outermost = None;
    let mut chars = state.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if matches!(c, '<' | '>' | ',' | '(' | ')') || c.is_whitespace() {
            resolved.push(c);
            continue;
        }
        if !(c.is_alphanumeric() || c == '_' || c == '.') {
            return Err(error(format!(
                "unexpected `{c}`; write a Rust type of names, `<..>`, `,` and `()`"
            )));
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, c)) = chars.peek() {
            if !(c.is_alphanumeric() || c == '_' || c == '.') {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let name = &state[start..end];
        outermost.get_or_insert(name);
        if name.contains('.') {
            let full = name.trim_start_matches('.');
            let message = pool.get_message_by_name(full).ok_or_else(|| {
                let hint = pool
                    .all_messages()
                    .find(|m| m.name() == full.rsplit('.').next().unwrap_or(full))
                    .map(|m| format!(" (did you mean [{}]?)", m.full_name()))
                    .unwrap_or_default();
                error(format!(
                    "[{full}] is not a message in the compiled protos{hint}"
                ))
            })?;
            let path = rust_path(package, &message, sdk);
            // Paths into the user's packages start at the package module,
            // one level above the service module.
            if path == "()" || path.starts_with("::") || path.starts_with(sdk) {
                resolved.push_str(&path);
            } else {
                resolved.push_str("super::");
                resolved.push_str(&path);
            }
        } else if CRDT_TYPES.contains(&name) {
            resolved.push_str(&format!("{sdk}::crdt::{name}"));
        } else if name == "Any" {
            resolved.push_str(&format!("{sdk}::Any"));
        } else if RUST_TYPES.contains(&name) {
            resolved.push_str(name);
        } else {
            return Err(error(format!(
                "unknown name `{name}`; use the CRDT types ({}), `Any`, Rust primitives, \
                 `String`, `Vec`, or proto messages by their full name, such as [{package}.Message]",
                CRDT_TYPES.join(", ")
            )));
        }
    }
    match outermost {
        Some(name) if CRDT_TYPES.contains(&name) => {}
        _ => {
            return Err(error(format!(
                "the state of a CRDT entity is one of the CRDT types: {}",
                CRDT_TYPES.join(", ")
            )));
        }
    }
    if let Err(e) = syn::parse_str::<syn::Type>(&resolved) {
        return Err(error(format!("not a Rust type: {e}")));
    }
    Ok(resolved)
}

/// Resolves the events and snapshot of an event-sourced entity; each event
/// claims its `on_<event>` trait method.
fn event_sourced(
    decl: &EventSourced,
    package: &str,
    pool: &DescriptorPool,
    fds: &FileDescriptorSet,
    sdk: &str,
    trait_names: &mut HashMap<String, String>,
) -> Result<EventSourced, Error> {
    let name = &decl.service;
    let mut seen = HashSet::new();
    let mut resolved_events = Vec::new();
    for event in &decl.events {
        let message = message(pool, event, name, "event")?;
        if !seen.insert(event.clone()) {
            return Err(Error::Proto(format!(
                "event type [{event}] is declared twice for [{name}]"
            )));
        }
        let simple = message.name();
        let at = location(fds, message.parent_file().name(), message.path());
        claim(
            trait_names,
            format!("on_{}", simple.to_snake_case()),
            format!("event [{event}]"),
            &at,
        )?;
        resolved_events.push((event.clone(), rust_path(package, &message, sdk)));
    }
    let mut resolved_json_events = Vec::new();
    for (rust_type, type_name) in &decl.json_events {
        let what = format!("JSON event [{rust_type}]");
        let (json_name, simple) = json_type(rust_type, type_name.as_deref(), &what, name)?;
        if !seen.insert(format!("json.cloudstate.io/{json_name}")) {
            return Err(Error::Proto(format!(
                "JSON event type [{json_name}] is declared twice for [{name}]"
            )));
        }
        claim(
            trait_names,
            format!("on_{}", simple.to_snake_case()),
            what,
            &format!("build.rs ({name})"),
        )?;
        resolved_json_events.push((json_name, rust_type.clone(), simple));
    }
    let resolve = |declared: &Option<String>, role| -> Result<_, Error> {
        match declared {
            Some(full) => {
                let message = message(pool, full, name, role)?;
                Ok(Some((
                    message.full_name().to_owned(),
                    rust_path(package, &message, sdk),
                )))
            }
            None => Ok(None),
        }
    };
    Ok(EventSourced {
        resolved_events,
        resolved_json_events,
        resolved_state: resolve(&decl.state, "state")?,
        resolved_snapshot: match (&decl.json_snapshot, &decl.snapshot) {
            (Some(type_name), Some(rust_type)) => {
                let what = format!("JSON snapshot [{rust_type}]");
                let (json_name, _) = json_type(rust_type, type_name.as_deref(), &what, name)?;
                Some((json_name, rust_type.clone()))
            }
            _ => resolve(&decl.snapshot, "snapshot")?,
        },
        resolved_json_snapshot: decl.json_snapshot.is_some(),
        ..decl.clone()
    })
}

/// A declared persistence id is non-empty and taken by one entity only:
/// entities sharing one would share a journal. `taken` maps the ids seen so
/// far to their services.
pub(crate) fn persistence_id(
    id: &str,
    service: &str,
    taken: &HashMap<String, String>,
) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::Proto(format!(
            "the persistence id declared for [{service}] is empty; name its journal, e.g. \
             `persistence_id(\"shopping-cart\")`"
        )));
    }
    if let Some(other) = taken.get(id) {
        return Err(Error::Proto(format!(
            "the persistence id [{id}] is declared for both [{other}] and [{service}]; \
             entities sharing one would share a journal, so give each its own"
        )));
    }
    Ok(())
}

/// The JSON type name and the last path segment of the JSON type
/// `rust_type` (`what`, of `owner`), named `type_name` or after the segment.
fn json_type(
    rust_type: &str,
    type_name: Option<&str>,
    what: &str,
    owner: &str,
) -> Result<(String, String), Error> {
    let ty: syn::Type = syn::parse_str(rust_type)
        .map_err(|e| Error::Proto(format!("{what} of [{owner}] is not a Rust type: {e}")))?;
    let simple = match &ty {
        syn::Type::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
    .ok_or_else(|| Error::Proto(format!("{what} of [{owner}] is not a Rust type path")))?;
    let json_name = type_name.map_or_else(|| simple.clone(), str::to_owned);
    if json_name.is_empty() || json_name.contains('/') {
        return Err(Error::Proto(format!(
            "{what} of [{owner}] has the JSON type name [{json_name}], which must be non-empty and without `/`"
        )));
    }
    Ok((json_name, simple))
}

/// Resolves the typed inputs of an action's `Any` methods into the
/// variants of their `<Method>Input` enums.
fn action(
    decl: &Action,
    service: &ServiceDescriptor,
    eventing: &[MethodEventing],
    pool: &DescriptorPool,
    sdk: &str,
) -> Result<Action, Error> {
    let name = service.full_name();
    let trait_name = service.name().to_upper_camel_case();
    let mut resolved_typed = Vec::new();
    for typed in &decl.typed {
        let Some(method) = service.methods().find(|m| m.name() == typed.method) else {
            let rpcs: Vec<String> = service.methods().map(|m| m.name().to_owned()).collect();
            return Err(Error::Proto(format!(
                "typed events are declared for the rpc [{}] of action [{name}], which has no such \
                 rpc; its rpcs: [{}]",
                typed.method,
                rpcs.join(", ")
            )));
        };
        let rpc = format!("rpc [{name}.{}]", method.name());
        let input = method.input();
        if input.full_name() != "google.protobuf.Any" {
            return Err(Error::Proto(format!(
                "typed events are declared for {rpc}, whose input is [{}]: only a method taking \
                 google.protobuf.Any receives events of several types (the proxy routes each \
                 protobuf event to the method whose input is its type)",
                input.full_name()
            )));
        }
        let enum_name = format!("{}Input", method.name().to_upper_camel_case());
        if enum_name == trait_name || enum_name == "Action" {
            return Err(Error::Proto(format!(
                "the typed input of {rpc} would generate the enum `{enum_name}`, which the \
                 generated {} of its module is named too; rename the rpc or the service",
                if enum_name == "Action" {
                    "wrapper"
                } else {
                    "trait"
                }
            )));
        }
        let subscription = eventing.iter().find(|e| e.method == method.name());
        let mut variants: Vec<InputVariant> = Vec::new();
        let mut push = |variant: InputVariant, what: &str| -> Result<(), Error> {
            if variant.name == "Other" {
                return Err(Error::Proto(format!(
                    "{what} of {rpc} would be the variant `Other` of `{enum_name}`, which holds \
                     the payloads of other types; rename the type"
                )));
            }
            if let Some(other) = variants.iter().find(|v| v.name == variant.name) {
                let other = match &other.encoding {
                    VariantEncoding::Protobuf(full) => format!("event [{full}]"),
                    VariantEncoding::Json(_) => format!("JSON event [{}]", other.rust_type),
                };
                return Err(Error::Proto(format!(
                    "{what} and {other} of {rpc} would both be the variant `{}` of `{enum_name}`",
                    variant.name
                )));
            }
            let same_encoding = |v: &InputVariant| match (&v.encoding, &variant.encoding) {
                (VariantEncoding::Json(a), VariantEncoding::Json(b)) => a == b,
                (VariantEncoding::Protobuf(a), VariantEncoding::Protobuf(b)) => a == b,
                _ => false,
            };
            if variants.iter().any(same_encoding) {
                return Err(Error::Proto(format!("{what} is declared twice for {rpc}")));
            }
            variants.push(variant);
            Ok(())
        };
        for event in &typed.events {
            let message = message(pool, event, name, "event")?;
            let full = message.full_name();
            let what = format!("event [{full}]");
            if full == "google.protobuf.Any" {
                return Err(Error::Proto(format!(
                    "{what} of {rpc}: any payload that is no declared type is already `Other`"
                )));
            }
            if let Some(source) = subscription.and_then(|s| s.source.as_ref())
                && let Some(other) = eventing.iter().find(|e| {
                    e.source.as_ref() == Some(source)
                        && e.consumer_group == subscription.map_or("", |s| &s.consumer_group)
                        && e.input == full
                })
            {
                return Err(Error::Proto(format!(
                    "{what} is declared for {rpc}, but the proxy hands such events to rpc \
                     [{name}.{}], which reads the same source and takes [{full}]",
                    other.method
                )));
            }
            push(
                InputVariant {
                    name: message.name().to_upper_camel_case(),
                    rust_type: rust_path(service.package_name(), &message, sdk),
                    encoding: VariantEncoding::Protobuf(full.to_owned()),
                },
                &what,
            )?;
        }
        for (rust_type, type_name) in &typed.json_events {
            let what = format!("JSON event [{rust_type}]");
            let (json_name, simple) = json_type(rust_type, type_name.as_deref(), &what, name)?;
            push(
                InputVariant {
                    name: simple.to_upper_camel_case(),
                    rust_type: rust_type.clone(),
                    encoding: VariantEncoding::Json(json_name),
                },
                &what,
            )?;
        }
        resolved_typed.push(ResolvedInput {
            method: method.name().to_owned(),
            enum_name,
            variants,
        });
    }
    Ok(Action {
        resolved_typed,
        ..decl.clone()
    })
}

/// The generated module of a service must not clash with prost's module for a
/// message's nested types in the same package.
pub(crate) fn module_names(pool: &DescriptorPool) -> Result<(), Error> {
    for service in pool.services() {
        let module = service.name().to_snake_case();
        let clash = pool.all_messages().find(|m| {
            m.package_name() == service.package_name()
                && m.parent_message().is_none()
                && m.name().to_snake_case() == module
                && (m.child_messages().next().is_some()
                    || m.child_enums().next().is_some()
                    || m.oneofs().next().is_some())
        });
        if let Some(message) = clash {
            return Err(Error::Proto(format!(
                "service [{}] and message [{}] would both generate the Rust module `{module}`; rename one",
                service.full_name(),
                message.full_name()
            )));
        }
    }
    Ok(())
}

/// The messages of the user's own protos, as Rust paths from the module
/// that includes the generated code: each gets a `Payload` impl. Map entries
/// have no Rust type of their own.
pub(crate) fn payload_messages(pool: &DescriptorPool, is_bundled: fn(&str) -> bool) -> Vec<String> {
    pool.all_messages()
        .filter(|m| !is_bundled(m.parent_file().name()) && !m.is_map_entry())
        // Own packages never resolve into the SDK: no SDK path needed.
        .map(|m| rust_path("", &m, ""))
        .collect()
}

fn claim(
    names: &mut HashMap<String, String>,
    name: String,
    what: String,
    at: &str,
) -> Result<(), Error> {
    if matches!(name.as_str(), "self" | "super" | "crate") {
        return Err(Error::Proto(format!(
            "{at}: {what} would generate the trait method `{name}`, which Rust does not allow as a name"
        )));
    }
    if let Some(other) = names.get(&name) {
        return Err(Error::Proto(format!(
            "{at}: {what} would generate the trait method `{name}`, which {other} already uses"
        )));
    }
    names.insert(name, what);
    Ok(())
}

fn message(
    pool: &DescriptorPool,
    name: &str,
    service: &str,
    role: &str,
) -> Result<MessageDescriptor, Error> {
    pool.get_message_by_name(name).ok_or_else(|| {
        let hint = pool
            .all_messages()
            .find(|m| m.name() == name.rsplit('.').next().unwrap_or(name))
            .map(|m| format!(" (did you mean [{}]?)", m.full_name()))
            .unwrap_or_default();
        Error::Proto(format!(
            "{role} type [{name}] declared for service [{service}] is not a message \
             in the compiled protos{hint}; give its fully qualified name and compile the file that declares it"
        ))
    })
}

fn has_entity_key(method: &MethodDescriptor, pool: &DescriptorPool) -> bool {
    let keys: Vec<_> = ["cloudstate.entity_key", "cloudstate.legacy_entity_key"]
        .iter()
        .filter_map(|n| pool.get_extension_by_name(n))
        .collect();
    method.input().fields().any(|field| {
        let options = field.options();
        keys.iter().any(|key| {
            options.has_extension(key) && options.get_extension(key).as_bool() == Some(true)
        })
    })
}

/// `file:line` of the element at `path`, or just the file.
pub(crate) fn location(fds: &FileDescriptorSet, file: &str, path: &[i32]) -> String {
    let line = fds
        .file
        .iter()
        .find(|f| f.name() == file)
        .and_then(|f| f.source_code_info.as_ref())
        .and_then(|info| info.location.iter().find(|l| l.path == path))
        .and_then(|l| l.span.first())
        .map(|line| line + 1);
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    }
}

/// The Rust path of `message` as seen from the module of package `from`, as
/// prost lays modules out.
fn rust_path(from: &str, message: &MessageDescriptor, sdk: &str) -> String {
    let package = message.package_name();
    let local: Vec<&str> = message
        .full_name()
        .strip_prefix(package)
        .unwrap_or(message.full_name())
        .trim_start_matches('.')
        .split('.')
        .collect();
    let type_path = |prefix: Vec<String>| {
        let mut parts = prefix;
        for (i, segment) in local.iter().enumerate() {
            if i + 1 == local.len() {
                parts.push(segment.to_upper_camel_case());
            } else {
                parts.push(segment.to_snake_case());
            }
        }
        parts.join("::")
    };
    if package == "google.protobuf" {
        return match local.as_slice() {
            ["Empty"] => "()".to_owned(),
            _ => format!("{sdk}::prost_types::{}", local.join("::")),
        };
    }
    if package == "google.api"
        || package == "cloudstate"
        || package.starts_with("cloudstate.") && is_protocol(package)
    {
        let mut prefix = vec![format!("{sdk}::protocol")];
        prefix.extend(package.split('.').map(str::to_owned));
        return type_path(prefix);
    }
    let from: Vec<&str> = from.split('.').filter(|s| !s.is_empty()).collect();
    let to: Vec<&str> = package.split('.').filter(|s| !s.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut prefix: Vec<String> =
        std::iter::repeat_n("super".to_owned(), from.len() - common).collect();
    prefix.extend(to[common..].iter().map(|s| s.to_snake_case()));
    type_path(prefix)
}

fn is_protocol(package: &str) -> bool {
    matches!(
        package,
        "cloudstate.eventsourced"
            | "cloudstate.valueentity"
            | "cloudstate.crdt"
            | "cloudstate.action"
    )
}
