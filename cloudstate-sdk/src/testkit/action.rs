//! Builders for action protocol messages, in and out, and the proxy-role
//! calls of the four action call shapes.
//!
//! Optional fields stay absent unless a builder sets them, as the official
//! TCK's messages do.

use std::time::Duration;

use tokio::sync::mpsc;
use tonic::Status;

use super::message;
use crate::payload::{self, Any};
use crate::protocol::cloudstate as pb;
use crate::protocol::cloudstate::action::{
    ActionCommand, ActionResponse, action_response::Response,
};

/// A full command (unary or streamed-out call) with a protobuf payload.
pub fn command<M: prost::Name>(service: &str, name: &str, message: &M) -> ActionCommand {
    command_any(service, name, Some(payload::encode(message)))
}

/// A full command with any payload (or none).
pub fn command_any(service: &str, name: &str, payload: Option<Any>) -> ActionCommand {
    ActionCommand {
        service_name: service.to_owned(),
        name: name.to_owned(),
        payload,
        metadata: None,
    }
}

/// The first message of a streamed-in or bidirectional call: names only.
pub fn start(service: &str, name: &str) -> ActionCommand {
    command_any(service, name, None)
}

/// A later element of a streamed input: a payload only.
pub fn element<M: prost::Name>(message: &M) -> ActionCommand {
    element_any(payload::encode(message))
}

/// A later element with any payload.
pub fn element_any(payload: Any) -> ActionCommand {
    ActionCommand {
        payload: Some(payload),
        ..Default::default()
    }
}

/// A reply with a protobuf message.
pub fn reply<M: prost::Name>(message: &M) -> ResponseBuilder {
    ResponseBuilder(ActionResponse {
        response: Some(Response::Reply(message::reply(payload::encode(message)))),
        side_effects: Vec::new(),
    })
}

/// A forward to `service`/`command` with a protobuf payload.
pub fn forward<M: prost::Name>(service: &str, command: &str, message: &M) -> ResponseBuilder {
    ResponseBuilder(ActionResponse {
        response: Some(Response::Forward(message::forward(
            service, command, message,
        ))),
        side_effects: Vec::new(),
    })
}

/// A failure (`command_id` 0, `restart` false).
pub fn failure(description: &str) -> ResponseBuilder {
    ResponseBuilder(ActionResponse {
        response: Some(Response::Failure(message::failure(0, description, false))),
        side_effects: Vec::new(),
    })
}

/// No reply: nothing set but the side effects added.
pub fn no_reply() -> ResponseBuilder {
    ResponseBuilder(ActionResponse::default())
}

/// Builds an `ActionResponse`; converts into it.
#[derive(Debug, Clone)]
pub struct ResponseBuilder(ActionResponse);

impl ResponseBuilder {
    /// Adds a side effect.
    #[must_use]
    pub fn side_effect(mut self, effect: pb::SideEffect) -> Self {
        self.0.side_effects.push(effect);
        self
    }

    /// Adds side effects.
    #[must_use]
    pub fn side_effects(mut self, effects: impl IntoIterator<Item = pb::SideEffect>) -> Self {
        self.0.side_effects.extend(effects);
        self
    }

    /// The response.
    pub fn build(self) -> ActionResponse {
        self.0
    }
}

impl From<ResponseBuilder> for ActionResponse {
    fn from(builder: ResponseBuilder) -> Self {
        builder.build()
    }
}

/// A streamed-in call in progress: send elements, complete, then read the
/// one response.
#[derive(Debug)]
pub struct StreamedIn {
    pub(super) input: Option<mpsc::Sender<ActionCommand>>,
    pub(super) call: tokio::task::JoinHandle<Result<tonic::Response<ActionResponse>, Status>>,
    pub(super) timeout: Duration,
}

impl StreamedIn {
    /// Sends one message.
    ///
    /// # Panics
    /// When the input was completed, or the user function stopped reading.
    pub async fn send(&self, message: ActionCommand) {
        self.input
            .as_ref()
            .expect("the input was already completed")
            .send(message)
            .await
            .expect("the user function stopped reading the stream");
    }

    /// Completes the input.
    pub fn complete(&mut self) {
        self.input = None;
    }

    /// The response or the call's error status, within the timeout.
    ///
    /// # Panics
    /// When nothing arrives in time.
    pub async fn response(self) -> Result<ActionResponse, Status> {
        match tokio::time::timeout(self.timeout, self.call).await {
            Ok(Ok(result)) => result.map(tonic::Response::into_inner),
            Ok(Err(e)) => Err(Status::internal(format!("the call task failed: {e}"))),
            Err(_) => panic!(
                "no response from the user function within {:?}",
                self.timeout
            ),
        }
    }

    /// Completes the input and expects exactly `expected`.
    ///
    /// # Panics
    /// When another response or an error comes instead.
    pub async fn expect(mut self, expected: impl Into<ActionResponse>) {
        self.complete();
        let expected = expected.into();
        match self.response().await {
            Ok(actual) => assert_eq!(
                actual, expected,
                "unexpected response from the user function"
            ),
            Err(status) => panic!("expected {expected:?}, the call failed with {status:?}"),
        }
    }
}
