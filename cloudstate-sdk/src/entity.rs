//! What every entity kind shares: finding the registered type an `init`
//! names, creating an instance, the checks each command goes through before
//! its handler, and the panic guard. What differs between kinds is data
//! ([`Kind`]), so a fix to the checks or to panic handling is made once.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::descriptors::{MethodInfo, ServiceInfo};
use crate::effect::{Failure, Metadata, Reply};
use crate::panic_message;
use crate::payload::{self, Any};
use crate::protocol::cloudstate as pb;
use crate::server::entity_type;
use crate::stream::Stop;

/// Which rpcs a kind of service may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streaming {
    /// Unary only (event-sourced and value entities).
    None,
    /// Unary and server streaming (CRDT entities).
    ServerOnly,
    /// Every call shape (actions).
    Any,
}

/// The rules of one kind of service.
#[derive(Debug)]
pub(crate) struct Kind {
    /// How messages name the kind: `event-sourced`, `value entity`, ...
    pub(crate) label: &'static str,
    /// The protocol service, as sent in `Entity.entity_type`.
    pub(crate) entity_type: &'static str,
    /// The call shapes its rpcs may have.
    pub(crate) streaming: Streaming,
    /// Whether its persistence id must be non-empty and unique per kind.
    pub(crate) persistence_id_checked: bool,
    /// How a failure text starts when a handler panics.
    pub(crate) unexpected: &'static str,
}

pub(crate) const EVENT_SOURCED: Kind = Kind {
    label: "event-sourced",
    entity_type: entity_type::EVENT_SOURCED,
    streaming: Streaming::None,
    persistence_id_checked: true,
    unexpected: "Unexpected failure",
};

pub(crate) const VALUE_ENTITY: Kind = Kind {
    label: "value entity",
    entity_type: entity_type::VALUE_ENTITY,
    streaming: Streaming::None,
    persistence_id_checked: true,
    unexpected: "Value entity unexpected failure",
};

pub(crate) const CRDT: Kind = Kind {
    label: "CRDT",
    entity_type: entity_type::CRDT,
    streaming: Streaming::ServerOnly,
    persistence_id_checked: true,
    unexpected: "CRDT unexpected failure",
};

pub(crate) const ACTION: Kind = Kind {
    label: "action",
    entity_type: entity_type::ACTION,
    streaming: Streaming::Any,
    persistence_id_checked: false,
    unexpected: "Unexpected failure",
};

impl Command<'_> {
    /// Logs a reply whose type is not the method's output type: the proxy
    /// would pass its bytes on to the client as the wrong message.
    pub(crate) fn check_reply(&self, reply: &Reply) {
        if let Reply::Message { payload, .. } = reply
            && !self.output_type.is_empty()
            && !payload::has_type_name(&payload.type_url, self.output_type)
        {
            tracing::warn!(
                "reply of command [{}] has type URL [{}] but the method returns [{}]",
                self.name,
                payload.type_url,
                self.output_type
            );
        }
    }
}

/// A registered entity type: its service, kind-specific settings `S`, and
/// the factory `F` that erases the user's types.
pub(crate) struct Registration<F: ?Sized, S = ()> {
    pub(crate) kind: &'static Kind,
    pub(crate) service_name: String,
    /// The service's methods, to refuse unknown commands before dispatch;
    /// `None` leaves that to the entity (the in-memory test kits).
    pub(crate) service: Option<ServiceInfo>,
    pub(crate) settings: S,
    pub(crate) factory: Arc<F>,
    /// The largest message the proxy takes from this user function.
    pub(crate) max_reply: usize,
}

/// The registered types of one kind, by service name.
pub(crate) type Registry<F, S = ()> = HashMap<String, Arc<Registration<F, S>>>;

/// The registration an `init` names.
pub(crate) fn lookup<F: ?Sized, S>(
    registry: &Registry<F, S>,
    service_name: &str,
    entity_id: &str,
) -> Result<Arc<Registration<F, S>>, Stop> {
    registry.get(service_name).map(Arc::clone).ok_or_else(|| {
        Stop::Failure(
            0,
            format!("Protocol error: Service not found: [{service_name}] (entity [{entity_id}])"),
        )
    })
}

/// The size on the wire of a message of `len` bytes held in a stream
/// message's oneof field: what the proxy's message limit applies to.
pub(crate) fn framed_len(len: usize) -> usize {
    1 + prost::length_delimiter_len(len) + len
}

/// Why a reply to command `name` cannot be sent: `size` bytes encoded,
/// above `limit`, with what made it so large.
pub(crate) fn oversized(name: &str, size: usize, limit: usize, parts: &str) -> String {
    format!(
        "The reply to command [{name}] is {size} bytes, over the {limit}-byte limit of a \
         message to the proxy ({parts}); it was not sent"
    )
}

/// `n things of b bytes`, for [`oversized`].
pub(crate) fn part<M: prost::Message>(what: &str, items: &[M]) -> String {
    let bytes: usize = items.iter().map(prost::Message::encoded_len).sum();
    format!("{} {what} of {bytes} bytes", items.len())
}

/// Runs `f`, turning a panic into its message.
pub(crate) fn guarded<O>(f: impl FnOnce() -> O) -> Result<O, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| panic_message(&*panic))
}

/// What the checks made of a command.
pub(crate) enum Prepared<'c> {
    /// For this entity, with a payload, and a method the service has.
    Run(Command<'c>),
    /// A method the service does not have: a command failure, the stream
    /// carries on.
    Unknown(String),
}

impl<F: ?Sized, S> Registration<F, S> {
    /// `description (entity [id] of service [name])`.
    pub(crate) fn context(&self, description: &str, entity_id: &str) -> String {
        crate::stream::context(description, &self.service_name, entity_id)
    }

    /// A stream-level failure naming this service and `entity_id`.
    pub(crate) fn stop(&self, entity_id: &str, command_id: i64, description: &str) -> Stop {
        Stop::Failure(command_id, self.context(description, entity_id))
    }

    /// Creates an instance with `create`; an error or a panic ends the stream
    /// with a failure naming the service and entity.
    pub(crate) fn create<T>(
        &self,
        entity_id: &str,
        create: impl FnOnce(&F) -> Result<T, String>,
    ) -> Result<T, Stop> {
        match guarded(|| create(&self.factory)) {
            Ok(Ok(instance)) => Ok(instance),
            Ok(Err(description)) => Err(self.stop(entity_id, 0, &description)),
            Err(panic) => {
                Err(self.stop(entity_id, 0, &format!("{}: {panic}", self.kind.unexpected)))
            }
        }
    }

    /// The checks every command goes through before its handler: it is for
    /// this entity, it has a payload, and the service has such a method.
    /// A protocol error ends the stream.
    pub(crate) fn prepare<'c>(
        &'c self,
        entity_id: &'c str,
        command: &'c pb::Command,
    ) -> Result<Prepared<'c>, Stop> {
        let (id, name) = (command.id, command.name.as_str());
        if command.entity_id != entity_id {
            return Err(self.stop(
                entity_id,
                id,
                &format!(
                    "Protocol error: Receiving entity is not the intended recipient of command [{name}] \
                     addressed to entity [{}]",
                    command.entity_id
                ),
            ));
        }
        let Some(payload) = command.payload.as_ref() else {
            return Err(self.stop(
                entity_id,
                id,
                &format!("Protocol error: No command payload for command [{name}]"),
            ));
        };
        let method: Option<&MethodInfo> = match &self.service {
            None => None,
            Some(service) => match service.methods.get(name) {
                Some(method) => Some(method),
                None => {
                    return Ok(Prepared::Unknown(format!(
                        "No command handler found for command [{name}] on entity [{entity_id}] of service [{}] \
                         (payload type URL [{}])",
                        self.service_name, payload.type_url
                    )));
                }
            },
        };
        Ok(Prepared::Run(Command {
            service_name: &self.service_name,
            entity_id,
            id,
            name,
            input_type: method.map_or("", |m| m.input_type.as_str()),
            output_type: method.map_or("", |m| m.output_type.as_str()),
            payload,
            metadata: command.metadata.as_ref(),
            streamed: command.streamed,
        }))
    }

    /// Logs a command failure, once and at INFO: the caller gets the text,
    /// the entity carries on.
    pub(crate) fn log_failure(&self, entity_id: &str, command: &str, description: &str) {
        tracing::info!(
            service = %self.service_name,
            entity_id,
            command,
            "command failed: {description}"
        );
    }

    /// The failure text of a command whose handler panicked.
    pub(crate) fn panicked(&self, entity_id: &str, name: &str, panic: &str) -> String {
        format!(
            "{}: command [{name}] of entity [{entity_id}] of service [{}] panicked: {panic}",
            self.kind.unexpected, self.service_name
        )
    }
}

/// A command as a handler sees it.
#[derive(Debug)]
pub struct Command<'a> {
    pub(crate) service_name: &'a str,
    pub(crate) entity_id: &'a str,
    pub(crate) id: i64,
    pub(crate) name: &'a str,
    pub(crate) input_type: &'a str,
    /// Full name of the method's output type; empty when unknown.
    pub(crate) output_type: &'a str,
    pub(crate) payload: &'a Any,
    pub(crate) metadata: Option<&'a Metadata>,
    pub(crate) streamed: bool,
}

impl Command<'_> {
    /// The method name, e.g. `AddItem`.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The command's id within its stream.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The id of the entity it is addressed to.
    pub fn entity_id(&self) -> &str {
        self.entity_id
    }

    /// The full name of the method's input type.
    pub fn input_type(&self) -> &str {
        self.input_type
    }

    /// The payload as it arrived.
    pub fn payload(&self) -> &Any {
        self.payload
    }

    /// Whether the caller takes a stream of replies (a server-streaming
    /// method of a CRDT entity).
    pub fn is_streamed(&self) -> bool {
        self.streamed
    }

    /// The metadata sent with the command, if any.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata
    }

    /// Decodes the payload as the method's input type `M`, after checking
    /// that its type URL names `M`.
    ///
    /// A method whose input is `google.protobuf.Any` gets the payload itself,
    /// whatever its type URL.
    ///
    /// # Errors
    /// A [`Failure`] naming the service, entity and command, and both `M`
    /// and the type URL, when the payload is of another type or its bytes
    /// are not an `M`.
    pub fn decode<M: prost::Name + Default + Clone + 'static>(&self) -> Result<M, Failure> {
        if let Some(any) = (self.payload as &dyn std::any::Any).downcast_ref::<M>() {
            return Ok(any.clone());
        }
        payload::decode::<M>(self.payload).map_err(|e| self.failure(&e))
    }

    /// Decodes the payload as any [`Payload`](crate::Payload): a primitive,
    /// [`Json`](crate::payload::Json), a message; for methods whose input is
    /// `google.protobuf.Any`.
    ///
    /// # Errors
    /// A [`Failure`] naming the command and both types when the payload is
    /// of another type, or its bytes do not decode.
    pub fn payload_as<P: crate::Payload>(&self) -> Result<P, Failure> {
        P::from_any(self.payload).map_err(|e| self.failure(&e))
    }

    fn failure(&self, error: &payload::PayloadError) -> Failure {
        Failure::new(format!(
            "Protocol error: command [{}] for entity [{}] of service [{}]: {error}",
            self.name, self.entity_id, self.service_name
        ))
    }
}
