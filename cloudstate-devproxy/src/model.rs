//! What the user function serves, built from its `EntitySpec`: services,
//! methods, entity keys, as the official proxy validates them.

mod key;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cloudstate_sdk::protocol::cloudstate as pb;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, MethodDescriptor, Value};

/// The kinds of entity the protocol knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityType {
    /// `cloudstate.eventsourced.EventSourced`
    EventSourced,
    /// `cloudstate.valueentity.ValueEntity`
    ValueEntity,
    /// `cloudstate.crdt.Crdt`
    Crdt,
    /// `cloudstate.action.ActionProtocol`
    Action,
}

impl EntityType {
    /// Every type, as this proxy reports them in `ProxyInfo`.
    pub const ALL: [EntityType; 4] = [
        Self::Crdt,
        Self::Action,
        Self::EventSourced,
        Self::ValueEntity,
    ];

    /// The protocol service name used as `entity_type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EventSourced => "cloudstate.eventsourced.EventSourced",
            Self::ValueEntity => "cloudstate.valueentity.ValueEntity",
            Self::Crdt => "cloudstate.crdt.Crdt",
            Self::Action => "cloudstate.action.ActionProtocol",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One served service.
#[derive(Debug)]
pub struct ServiceModel {
    /// Fully qualified name.
    pub name: String,
    /// What kind of entity serves it.
    pub entity_type: EntityType,
    /// Journal / store namespace and shard name.
    pub persistence_id: String,
    /// Idle time after which an entity is passivated.
    pub passivation: Duration,
    /// Methods by name.
    pub methods: HashMap<String, Arc<MethodModel>>,
}

/// One method of a served service.
#[derive(Debug)]
pub struct MethodModel {
    /// Full name of the service.
    pub service: String,
    /// The method's descriptor (input/output types, streaming flags, options).
    pub descriptor: MethodDescriptor,
    /// The input fields marked as entity key, in declaration order.
    pub key_fields: Vec<FieldDescriptor>,
    /// What kind of entity serves it.
    pub entity_type: EntityType,
    /// Where its `cloudstate.eventing` option subscribes it, if anywhere.
    pub eventing_in: Option<EventIn>,
    /// The topic its replies are published to (`cloudstate.eventing` `out`).
    pub eventing_out: Option<String>,
    /// Computed once: what every command and reply of the method needs.
    names: MethodNames,
}

/// The texts a call of a method needs, computed when the model is built
/// rather than per request.
#[derive(Debug)]
struct MethodNames {
    /// `type.googleapis.com/<input type>`.
    input_type_url: String,
    /// `type.googleapis.com/<output type>`.
    output_type_url: String,
    /// `<service>.<method>`.
    full_name: String,
    /// Whether every key field can be read from the wire form ([`key::scan`]).
    scan_keys: bool,
}

impl MethodNames {
    fn of(service: &str, descriptor: &MethodDescriptor, key_fields: &[FieldDescriptor]) -> Self {
        Self {
            scan_keys: !key_fields.is_empty() && key_fields.iter().all(key::readable),
            input_type_url: format!("type.googleapis.com/{}", descriptor.input().full_name()),
            output_type_url: format!("type.googleapis.com/{}", descriptor.output().full_name()),
            full_name: format!("{service}.{}", descriptor.name()),
        }
    }
}

impl MethodModel {
    /// The method name.
    pub fn name(&self) -> &str {
        self.descriptor.name()
    }

    /// `type.googleapis.com/<input type>`, the type URL of commands.
    pub fn input_type_url(&self) -> &str {
        &self.names.input_type_url
    }

    /// `type.googleapis.com/<output type>`, the type URL replies should have.
    pub fn output_type_url(&self) -> &str {
        &self.names.output_type_url
    }

    /// `<service full name>.<method>`, as logs and error traces name the method.
    pub fn full_name(&self) -> &str {
        &self.names.full_name
    }

    /// The entity id of a request: the key fields' values in declaration
    /// order joined with `-`, as the official proxy does.
    ///
    /// # Errors
    /// Bytes that are not an encoding of the input type, or an empty string
    /// or bytes key field (the official proxy would address the entity with
    /// an empty id; numbers and bools are never missing, as proto3 cannot
    /// tell 0 or `false` from unset).
    pub fn entity_id(&self, request: &[u8]) -> Result<String, KeyError> {
        if self.key_fields.is_empty() {
            return Ok(String::new());
        }
        let input = self.descriptor.input();
        if self.names.scan_keys
            && let Some(values) = key::scan(&input, &self.key_fields, request)
        {
            let parts: Vec<String> = values.iter().map(key_text).collect();
            return Ok(parts.join("-"));
        }
        let message =
            DynamicMessage::decode(input.clone(), request).map_err(|e| KeyError::Undecodable {
                input: input.full_name().to_owned(),
                reason: e.to_string(),
            })?;
        self.entity_id_of(&message)
    }

    /// [`entity_id`](Self::entity_id) of a request already decoded (as the
    /// HTTP transcoder builds it), without encoding and decoding it again.
    ///
    /// # Errors
    /// An empty string or bytes key field.
    pub fn entity_id_of(&self, message: &DynamicMessage) -> Result<String, KeyError> {
        let values: Vec<_> = self
            .key_fields
            .iter()
            .map(|field| (field, message.get_field(field)))
            .collect();
        let empty: Vec<&str> = values
            .iter()
            .filter(|(_, value)| match value.as_ref() {
                Value::String(s) => s.is_empty(),
                Value::Bytes(b) => b.is_empty(),
                _ => false,
            })
            .map(|(field, _)| field.name())
            .collect();
        if !empty.is_empty() {
            return Err(KeyError::Missing {
                input: self.descriptor.input().full_name().to_owned(),
                fields: empty.join(", "),
            });
        }
        let parts: Vec<String> = values.iter().map(|(_, value)| key_text(value)).collect();
        Ok(parts.join("-"))
    }
}

/// Why a request names no entity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes do not decode as the method's input type.
    #[error("the request is not a valid {input}: {reason}")]
    Undecodable {
        /// Full name of the input type.
        input: String,
        /// What the decoder said.
        reason: String,
    },
    /// A string or bytes key field is empty.
    #[error("the entity key [{fields}] of {input} is empty")]
    Missing {
        /// Full name of the input type.
        input: String,
        /// The empty key fields, comma-separated.
        fields: String,
    },
}

/// A key value as text, as the JVM's `toString` would print it.
fn key_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::I32(n) | Value::EnumNumber(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::U32(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::F32(n) => n.to_string(),
        Value::F64(n) => n.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

/// `(cloudstate.entity_key)`, an extension of `google.protobuf.FieldOptions`.
pub const ENTITY_KEY_OPTION: u32 = 1080;
/// `(cloudstate.legacy_entity_key)`, the option's number before 1080 was assigned.
pub const LEGACY_ENTITY_KEY_OPTION: u32 = 50002;

/// The two key options as the official proxy defines them, whatever the user
/// function's descriptors call them.
#[derive(Clone, PartialEq, prost::Message)]
struct KeyOptions {
    #[prost(bool, tag = "1080")]
    entity_key: bool,
    #[prost(bool, tag = "50002")]
    legacy_entity_key: bool,
}

/// Whether `field` is marked as entity key: its options set field
/// [`ENTITY_KEY_OPTION`] or [`LEGACY_ENTITY_KEY_OPTION`] to true.
///
/// The options are read by number, as the official proxy reads them with its
/// own definition of the extensions: what the user function's descriptors
/// call the extension (or whether they declare it at all, leaving it an
/// unknown field) does not matter, and an extension they name
/// `cloudstate.entity_key` at another number is not a key. A value that is
/// not a bool on the wire marks nothing.
fn is_entity_key(field: &FieldDescriptor) -> bool {
    // Re-encoding the decoded options gives their wire form: known
    // extensions and unknown fields alike.
    let options = field.options().encode_to_vec();
    KeyOptions::decode(options.as_slice())
        .is_ok_and(|keys| keys.entity_key || keys.legacy_entity_key)
}

/// `(cloudstate.eventing)`, an extension of `google.protobuf.MethodOptions`.
pub const EVENTING_OPTION: u32 = 1081;

/// The method options' eventing extension as `cloudstate/eventing.proto`
/// defines it, read by number like the entity key options.
#[derive(Clone, PartialEq, prost::Message)]
struct EventingOptions {
    #[prost(message, optional, tag = "1081")]
    eventing: Option<EventingOption>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EventingOption {
    #[prost(message, optional, tag = "1")]
    r#in: Option<EventSourceOption>,
    #[prost(message, optional, tag = "2")]
    out: Option<EventDestinationOption>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EventSourceOption {
    #[prost(string, tag = "1")]
    consumer_group: String,
    #[prost(oneof = "SourceOption", tags = "2, 3")]
    source: Option<SourceOption>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum SourceOption {
    #[prost(string, tag = "2")]
    Topic(String),
    #[prost(string, tag = "3")]
    EventLog(String),
}

#[derive(Clone, PartialEq, prost::Message)]
struct EventDestinationOption {
    #[prost(oneof = "DestinationOption", tags = "1")]
    destination: Option<DestinationOption>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum DestinationOption {
    #[prost(string, tag = "1")]
    Topic(String),
}

/// What a method's `cloudstate.eventing` `in` subscribes it to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventIn {
    /// The consumer group as declared (empty: the service's name).
    pub consumer_group: String,
    /// The source.
    pub source: EventSource,
}

/// An eventing source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventSource {
    /// The events published to a topic.
    Topic(String),
    /// The journal of the event-sourced entities with this persistence id.
    EventLog(String),
}

impl std::fmt::Display for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Topic(topic) => write!(f, "topic [{topic}]"),
            Self::EventLog(id) => write!(f, "event log [{id}]"),
        }
    }
}

/// The methods of one service that share one source (and consumer group):
/// each event goes to the one whose input type is the event's type, else
/// to the one taking `google.protobuf.Any`.
#[derive(Debug)]
pub struct Consumer {
    /// The service.
    pub service: String,
    /// The source.
    pub source: EventSource,
    /// The consumer group: as declared, else the service's name.
    pub group: String,
    /// The methods by the full name of their input type.
    pub methods: HashMap<String, Arc<MethodModel>>,
}

/// The full name of `google.protobuf.Any`, the input of catch-all subscribers.
pub const ANY_TYPE: &str = "google.protobuf.Any";

impl Consumer {
    /// The method an event of `type_url` goes to, as the official proxy
    /// chooses: JSON and primitive payloads go to the `Any` method, others to
    /// the method whose input is the type named after the first `/`, else to
    /// the `Any` method.
    pub fn method_for(&self, type_url: &str) -> Option<&Arc<MethodModel>> {
        if type_url.starts_with("p.cloudstate.io/") || type_url.starts_with("json.cloudstate.io/") {
            return self.methods.get(ANY_TYPE);
        }
        let name = type_url.split_once('/').map_or(type_url, |(_, name)| name);
        self.methods
            .get(name)
            .or_else(|| self.methods.get(ANY_TYPE))
    }
}

/// The eventing options of `method`.
fn eventing_of(method: &MethodDescriptor) -> Result<(Option<EventIn>, Option<String>), SpecError> {
    let options = method.options().encode_to_vec();
    let Ok(EventingOptions {
        eventing: Some(eventing),
    }) = EventingOptions::decode(options.as_slice())
    else {
        return Ok((None, None));
    };
    let out = match eventing.out {
        None => None,
        Some(EventDestinationOption {
            destination: Some(DestinationOption::Topic(topic)),
        }) if !topic.is_empty() => Some(topic),
        Some(_) => {
            return Err(SpecError(format!(
                "Service call [{}] has declared an event out with no topic.",
                method.full_name()
            )));
        }
    };
    let source = match eventing.r#in {
        None => return Ok((None, out)),
        Some(source) => source,
    };
    let event_source = match source.source {
        Some(SourceOption::Topic(topic)) if !topic.is_empty() => EventSource::Topic(topic),
        Some(SourceOption::EventLog(id)) if !id.is_empty() => EventSource::EventLog(id),
        _ => {
            return Err(SpecError(format!(
                "Eventing consumer [{}] has declared an input with no source.",
                method.full_name()
            )));
        }
    };
    if let (EventSource::Topic(topic), Some(out)) = (&event_source, &out)
        && topic == out
    {
        return Err(SpecError(format!(
            "Endpoint [{}] has the same input topic as output topic [{topic}], this is not allowed.",
            method.full_name()
        )));
    }
    Ok((
        Some(EventIn {
            consumer_group: source.consumer_group,
            source: event_source,
        }),
        out,
    ))
}

/// The consumers of the served methods, in the order of the spec's entities
/// and their methods, checked as the official proxy checks them; and an
/// event log must be the journal of a served event-sourced entity.
fn consumers(
    spec: &pb::EntitySpec,
    services: &HashMap<String, Arc<ServiceModel>>,
) -> Result<Vec<Consumer>, SpecError> {
    let mut consumers: Vec<Consumer> = Vec::new();
    for entity in &spec.entities {
        let Some(service) = services.get(&entity.service_name) else {
            continue;
        };
        let Some(descriptor) = spec_service(service) else {
            continue;
        };
        for method in descriptor {
            let Some(eventing_in) = &method.eventing_in else {
                continue;
            };
            if let EventSource::EventLog(id) = &eventing_in.source {
                let journal = services
                    .values()
                    .any(|s| s.entity_type == EntityType::EventSourced && &s.persistence_id == id);
                if !journal {
                    return Err(SpecError(format!(
                        "Eventing consumer [{}.{}] subscribes to the event log [{id}], but no event sourced \
                         entity served has the persistence id [{id}]",
                        service.name,
                        method.name()
                    )));
                }
            }
            let group = if eventing_in.consumer_group.is_empty() {
                service.name.clone()
            } else {
                eventing_in.consumer_group.clone()
            };
            let input = method.descriptor.input().full_name().to_owned();
            let index = consumers.iter().position(|c| {
                c.service == service.name && c.source == eventing_in.source && c.group == group
            });
            let consumer = match index {
                Some(index) => &mut consumers[index],
                None => {
                    consumers.push(Consumer {
                        service: service.name.clone(),
                        source: eventing_in.source.clone(),
                        group,
                        methods: HashMap::new(),
                    });
                    consumers.last_mut().expect("just pushed")
                }
            };
            if let Some(conflict) = consumer.methods.get(&input) {
                return Err(SpecError(format!(
                    "Endpoints [{}.{}] and [{}.{}] both subscribe to the same event source with the same input type. \
                     If you wish to define two independent consumers of the same event source, use the \
                     consumer_group annotation on the source to identify them.",
                    conflict.service,
                    conflict.name(),
                    service.name,
                    method.name()
                )));
            }
            consumer.methods.insert(input, Arc::clone(method));
        }
    }
    Ok(consumers)
}

/// The methods of `service` in declaration order.
fn spec_service(service: &ServiceModel) -> Option<Vec<&Arc<MethodModel>>> {
    let first = service.methods.values().next()?;
    let descriptor = first.descriptor.parent_service();
    Some(
        descriptor
            .methods()
            .filter_map(|m| service.methods.get(m.name()))
            .collect(),
    )
}

/// Everything the proxy serves.
#[derive(Debug)]
pub struct Model {
    /// The user function's descriptors, options intact.
    pub pool: DescriptorPool,
    /// Served services by full name.
    pub services: HashMap<String, Arc<ServiceModel>>,
    /// Methods by gRPC path `/<service>/<method>`.
    pub methods_by_path: HashMap<String, Arc<MethodModel>>,
    /// The spec as the user function sent it.
    pub spec: pb::EntitySpec,
    /// The eventing consumers (`cloudstate.eventing` `in`).
    pub consumers: Vec<Consumer>,
}

/// Why a spec is refused; the text goes to the user function's `reportError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// Decodes the user function's descriptor set. The decoder panics on some
/// malformed sets (a file whose `syntax` is neither proto2 nor proto3, found
/// by fuzzing): those are refused first with the file's name, and any other
/// panic of the decoder is turned into a refusal too.
fn decode_descriptors(bytes: &[u8]) -> Result<DescriptorPool, SpecError> {
    let set = prost_types::FileDescriptorSet::decode(bytes)
        .map_err(|e| SpecError(format!("Descriptors could not be built: {e}")))?;
    for file in &set.file {
        if let Some(syntax) = file.syntax.as_deref()
            && !matches!(syntax, "proto2" | "proto3")
        {
            return Err(SpecError(format!(
                "Descriptors could not be built: file [{}] declares syntax [{syntax}]; \
                 only proto2 and proto3 are supported",
                file.name()
            )));
        }
    }
    match std::panic::catch_unwind(|| DescriptorPool::decode(bytes)) {
        Ok(pool) => pool.map_err(|e| SpecError(format!("Descriptors could not be built: {e}"))),
        Err(_) => Err(SpecError(
            "Descriptors could not be built: the descriptor set is malformed".into(),
        )),
    }
}

impl Model {
    /// Validates `spec` as the official proxy does and builds the model.
    ///
    /// # Errors
    /// The first problem found, with the official proxy's wording where it has one.
    pub fn build(spec: pb::EntitySpec, default_passivation: Duration) -> Result<Self, SpecError> {
        let pool = decode_descriptors(&spec.proto)?;
        if spec.entities.is_empty() {
            return Err(SpecError(
                "No entities were reported by the discover call!".into(),
            ));
        }
        let mut services = HashMap::new();
        let mut methods_by_path = HashMap::new();
        for entity in &spec.entities {
            let name = &entity.service_name;
            let descriptor = pool
                .get_service_by_name(name)
                .ok_or_else(|| SpecError(format!("Service [{name}] not found in descriptors!")))?;
            let entity_type = EntityType::from_name(&entity.entity_type).ok_or_else(|| {
                SpecError(format!(
                    "Service [{name}] has declared an unsupported entity type [{}]. Supported types are {}",
                    entity.entity_type,
                    EntityType::ALL.map(EntityType::name).join(", ")
                ))
            })?;
            let mut methods = HashMap::new();
            let (mut streamed, mut keyless) = (Vec::new(), Vec::new());
            for method in descriptor.methods() {
                let key_fields: Vec<FieldDescriptor> =
                    method.input().fields().filter(is_entity_key).collect();
                let streaming = match entity_type {
                    EntityType::EventSourced | EntityType::ValueEntity => {
                        method.is_client_streaming() || method.is_server_streaming()
                    }
                    EntityType::Crdt => method.is_client_streaming(),
                    EntityType::Action => false,
                };
                if streaming {
                    streamed.push(method.name().to_owned());
                }
                if entity_type != EntityType::Action && key_fields.is_empty() {
                    keyless.push(method.name().to_owned());
                }
                let (eventing_in, eventing_out) = eventing_of(&method)?;
                let model = Arc::new(MethodModel {
                    names: MethodNames::of(name, &method, &key_fields),
                    service: name.clone(),
                    descriptor: method.clone(),
                    key_fields,
                    entity_type,
                    eventing_in,
                    eventing_out,
                });
                methods_by_path.insert(format!("/{name}/{}", method.name()), Arc::clone(&model));
                methods.insert(method.name().to_owned(), model);
            }
            let kind = match entity_type {
                EntityType::EventSourced => "Event sourced entities",
                EntityType::ValueEntity => "Value based entities",
                EntityType::Crdt => "CRDT entities",
                EntityType::Action => "Actions",
            };
            if !streamed.is_empty() {
                return Err(SpecError(format!(
                    "{kind} do not support streamed methods, but {name} has the following streamed methods: {}",
                    streamed.join(",")
                )));
            }
            if !keyless.is_empty() {
                return Err(SpecError(format!(
                    "{kind} do not support methods whose parameters do not have at least one field marked as \
                     entity_key, but {name} has the following methods without keys: {}",
                    keyless.join(",")
                )));
            }
            if entity_type != EntityType::Action && entity.persistence_id.is_empty() {
                return Err(SpecError(format!(
                    "Service [{name}] has an empty persistence id"
                )));
            }
            let passivation = match &entity.passivation_strategy {
                Some(pb::EntityPassivationStrategy {
                    strategy: Some(pb::entity_passivation_strategy::Strategy::Timeout(t)),
                }) if t.timeout > 0 => Duration::from_millis(t.timeout.unsigned_abs()),
                _ => default_passivation,
            };
            let model = ServiceModel {
                name: name.clone(),
                entity_type,
                persistence_id: entity.persistence_id.clone(),
                passivation,
                methods,
            };
            services.insert(name.clone(), Arc::new(model));
        }
        let consumers = consumers(&spec, &services)?;
        Ok(Self {
            pool,
            services,
            methods_by_path,
            spec,
            consumers,
        })
    }
}
