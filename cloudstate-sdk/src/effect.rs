//! What a command handler answers with: a reply or a forward, side effects,
//! or a failure. Shared by every entity kind.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use crate::payload::{self, Any, Payload};
use crate::protocol::cloudstate as pb;

pub use crate::metadata::Metadata;

/// A call to a method of a service in the same user function: the target of a
/// forward or a side effect.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCall {
    service_name: String,
    command_name: String,
    payload: Any,
    metadata: Option<Metadata>,
}

impl ServiceCall {
    /// A call of `command_name` on the fully qualified `service_name`; the
    /// payload must be the target method's input type, which the proxy decodes
    /// to find the target entity.
    pub fn new(
        service_name: impl Into<String>,
        command_name: impl Into<String>,
        payload: Any,
    ) -> Self {
        Self {
            service_name: service_name.into(),
            command_name: command_name.into(),
            payload,
            metadata: None,
        }
    }

    /// A call whose payload is the protobuf message `message`.
    pub fn message<M: prost::Name>(
        service_name: impl Into<String>,
        command_name: impl Into<String>,
        message: &M,
    ) -> Self {
        Self::new(service_name, command_name, payload::encode(message))
    }

    /// A call whose payload is any [`Payload`]: a generated message, a
    /// primitive or [`Json`](crate::payload::Json). The proxy decodes it as
    /// the target method's input type, so it must be that type (or the
    /// target's input is `google.protobuf.Any`).
    ///
    /// ```
    /// use cloudstate_sdk::{Metadata, ServiceCall, payload::Json};
    ///
    /// let call = ServiceCall::of("com.example.Log", "Append", &Json(vec![1, 2]))
    ///     .with_metadata(Metadata::new().with("x-origin", "cart"));
    /// assert_eq!(call.payload().type_url, "json.cloudstate.io/Vec");
    /// assert_eq!(call.metadata().and_then(|m| m.get("x-origin")), Some("cart"));
    /// ```
    pub fn of<P: Payload>(
        service_name: impl Into<String>,
        command_name: impl Into<String>,
        payload: &P,
    ) -> Self {
        Self::new(service_name, command_name, payload.to_any())
    }

    /// Attaches metadata to the call (empty metadata is sent as none).
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata.non_empty();
        self
    }

    /// The fully qualified name of the target service.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The name of the target method.
    pub fn command_name(&self) -> &str {
        &self.command_name
    }

    /// The payload handed to the target method.
    pub fn payload(&self) -> &Any {
        &self.payload
    }

    /// The metadata attached to the call, if any.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    pub(crate) fn into_forward(self) -> pb::Forward {
        pb::Forward {
            service_name: self.service_name,
            command_name: self.command_name,
            payload: Some(self.payload),
            metadata: self.metadata,
        }
    }

    pub(crate) fn into_side_effect(self, synchronous: bool) -> pb::SideEffect {
        pb::SideEffect {
            service_name: self.service_name,
            command_name: self.command_name,
            payload: Some(self.payload),
            synchronous,
            metadata: self.metadata,
        }
    }
}

/// A [`ServiceCall`] of a method whose output type is `R`: what the call
/// builders that `cloudstate-build` generates return.
///
/// It goes wherever a `ServiceCall` does (forwards, side effects), and reads
/// like one through `Deref`; the output type lets a test kit decode the
/// reply of the call as `R`.
///
/// ```
/// use cloudstate_sdk::{Reply, ServiceCall, TypedCall, payload};
///
/// let call: TypedCall<String> =
///     TypedCall::new(ServiceCall::new("com.example.Names", "Get", payload::empty()));
/// assert_eq!(call.command_name(), "Get");
/// let reply: Reply<()> = Reply::forward(call);
/// assert!(matches!(reply, Reply::Forward(call) if call.service_name() == "com.example.Names"));
/// ```
pub struct TypedCall<R> {
    call: ServiceCall,
    /// `fn() -> R`: the call neither owns nor borrows an `R`, so it is
    /// `Send`, `Sync` and `Unpin` whatever `R` is.
    output: PhantomData<fn() -> R>,
}

impl<R> TypedCall<R> {
    /// `call`, whose method replies with an `R`.
    pub fn new(call: ServiceCall) -> Self {
        Self {
            call,
            output: PhantomData,
        }
    }

    /// Attaches metadata to the call.
    #[must_use]
    pub fn with_metadata(self, metadata: Metadata) -> Self {
        Self::new(self.call.with_metadata(metadata))
    }

    /// The untyped call.
    pub fn into_call(self) -> ServiceCall {
        self.call
    }
}

impl<R> From<TypedCall<R>> for ServiceCall {
    fn from(call: TypedCall<R>) -> Self {
        call.call
    }
}

impl<R> Deref for TypedCall<R> {
    type Target = ServiceCall;

    fn deref(&self) -> &ServiceCall {
        &self.call
    }
}

// By hand: derives would require `R` to be `Debug`, `Clone` and `PartialEq`.
impl<R> fmt::Debug for TypedCall<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedCall")
            .field("output", &std::any::type_name::<R>())
            .field("call", &self.call)
            .finish()
    }
}

impl<R> Clone for TypedCall<R> {
    fn clone(&self) -> Self {
        Self::new(self.call.clone())
    }
}

impl<R> PartialEq for TypedCall<R> {
    fn eq(&self, other: &Self) -> bool {
        self.call == other.call
    }
}

/// A successful command's answer to its caller: a message of the method's
/// output type `T`, or a forward to another method.
///
/// Any `T` converts into `Reply<T>`, so a handler can end with `Ok(message.into())`.
/// The low-level API uses `Reply<Any>` (the default).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<T = Any> {
    /// Reply with a message.
    Message {
        /// The message; for `Reply<Any>` its type URL should name the
        /// method's output type.
        payload: T,
        /// Metadata for the caller.
        metadata: Option<Metadata>,
    },
    /// Hand the command on to another method, whose reply goes to the caller.
    Forward(ServiceCall),
}

impl<T> Reply<T> {
    /// Replies with `payload`.
    pub fn message(payload: T) -> Self {
        Self::Message {
            payload,
            metadata: None,
        }
    }

    /// Forwards the command to another method.
    pub fn forward(call: impl Into<ServiceCall>) -> Self {
        Self::Forward(call.into())
    }

    /// Attaches metadata to the reply (for a forward, to the forwarded call);
    /// empty metadata is sent as none.
    #[must_use]
    pub fn with_metadata(self, metadata: Metadata) -> Self {
        match self {
            Self::Message { payload, .. } => Self::Message {
                payload,
                metadata: metadata.non_empty(),
            },
            Self::Forward(call) => Self::Forward(call.with_metadata(metadata)),
        }
    }

    /// Converts the message, keeping a forward as it is.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        match self {
            Self::Message { payload, metadata } => Reply::Message {
                payload: f(payload),
                metadata,
            },
            Self::Forward(call) => Reply::Forward(call),
        }
    }
}

impl<T> From<T> for Reply<T> {
    fn from(payload: T) -> Self {
        Self::message(payload)
    }
}

impl Reply<Any> {
    /// Replies with a protobuf message, encoded.
    pub fn encode<M: prost::Name>(message: &M) -> Self {
        Self::message(payload::encode(message))
    }

    /// Replies with any [`Payload`] (a message, a primitive,
    /// [`Json`](crate::payload::Json)), encoded: for methods whose output is
    /// `google.protobuf.Any`, as the proxy hands a reply to the client as the
    /// method's output type.
    ///
    /// ```
    /// use cloudstate_sdk::{Metadata, Reply};
    ///
    /// let reply = Reply::of(&"done".to_owned()).with_metadata(Metadata::new().with("x-step", "3"));
    /// let Reply::Message { payload, metadata } = reply else { unreachable!() };
    /// assert_eq!(payload.type_url, "p.cloudstate.io/string");
    /// assert_eq!(metadata.unwrap().get("x-step"), Some("3"));
    /// ```
    pub fn of<P: Payload>(payload: &P) -> Self {
        Self::message(payload.to_any())
    }

    /// Replies with `google.protobuf.Empty`.
    pub fn empty() -> Self {
        Self::message(payload::empty())
    }

    pub(crate) fn into_client_action(self) -> pb::ClientAction {
        let action = match self {
            Self::Message { payload, metadata } => pb::client_action::Action::Reply(pb::Reply {
                payload: Some(payload),
                metadata,
            }),
            Self::Forward(call) => pb::client_action::Action::Forward(call.into_forward()),
        };
        pb::ClientAction {
            action: Some(action),
        }
    }
}

/// A command that failed: the caller gets this description verbatim (as gRPC
/// status `UNKNOWN`), and nothing the command did is kept.
///
/// Any error type converts into it with `?`, its `Display` text becoming the
/// description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    description: String,
}

impl Failure {
    /// A failure with this description.
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            description: description.into(),
        }
    }

    /// The description the caller sees.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::new(error.to_string())
    }
}

/// The result of a command handler: a reply of type `T`, or a failure.
pub type CommandResult<T = Any> = Result<Reply<T>, Failure>;

/// The successful end of a handler whose rpc returns `google.protobuf.Empty`:
/// `Ok(().into())`, spelled shorter. It is a `CommandResult<()>` for entities
/// and an `ActionResult<()>` for actions.
///
/// ```
/// use cloudstate_sdk::{CommandResult, Failure, done};
///
/// fn add_item(quantity: i32) -> CommandResult<()> {
///     if quantity <= 0 {
///         return Err(Failure::new("Cannot add a negative quantity"));
///     }
///     done()
/// }
/// assert_eq!(add_item(1), Ok(().into()));
/// ```
pub fn done<R: From<Reply<()>>>() -> Result<R, Failure> {
    Ok(Reply::message(()).into())
}

pub(crate) fn failure_action(
    command_id: i64,
    description: String,
    restart: bool,
) -> pb::ClientAction {
    pb::ClientAction {
        action: Some(pb::client_action::Action::Failure(pb::Failure {
            command_id,
            description,
            restart,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> TypedCall<String> {
        TypedCall::new(ServiceCall::new("s.Names", "Get", payload::empty()))
    }

    #[test]
    fn done_replies_with_the_empty_message() {
        let reply: CommandResult<()> = done();
        assert_eq!(reply, Ok(Reply::message(())));
        let reply: crate::ActionResult<()> = done();
        assert_eq!(reply, Ok(crate::ActionReply::message(())));
    }

    #[test]
    fn typed_call_is_its_service_call() {
        let metadata = Metadata::new().with("k", "v");
        let typed = call().with_metadata(metadata.clone());
        let untyped = ServiceCall::new("s.Names", "Get", payload::empty()).with_metadata(metadata);
        assert_eq!(*typed, untyped);
        assert_eq!(typed.clone().into_call(), untyped);
        assert_eq!(ServiceCall::from(typed.clone()), untyped);
        assert_ne!(typed, call());
        assert!(
            format!("{typed:?}").contains("alloc::string::String"),
            "{typed:?}"
        );
        let side_effect = ServiceCall::from(typed).into_side_effect(true);
        assert_eq!(
            side_effect.metadata,
            untyped.into_side_effect(true).metadata
        );
    }

    #[test]
    fn empty_metadata_is_sent_as_none() {
        let call = call().with_metadata(Metadata::new());
        assert_eq!(call.metadata(), None);
        let reply = Reply::empty().with_metadata(Metadata::new());
        assert!(matches!(reply, Reply::Message { metadata: None, .. }));
        let reply = Reply::<Any>::forward(call).with_metadata(Metadata::new().with("k", "v"));
        let Reply::Forward(forwarded) = reply else {
            panic!("a forward")
        };
        assert_eq!(forwarded.metadata().and_then(|m| m.get("k")), Some("v"));
    }
}
