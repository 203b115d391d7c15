//! The lock-step driver of event-sourced and value entities: one command at
//! a time, exactly one reply each; the entity's state is written before the
//! reply; idle entities passivate. What differs between the two protocols
//! (opening messages, replies, storage, error texts) is a [`Protocol`].

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use cloudstate_sdk::protocol::cloudstate as pb;
use tokio::time::{Instant, Sleep};
use tracing::{debug, warn};

use super::{Driver, Envelope, Mail, ReplyTo, Stream, StreamShape, Task, UfReply};
use crate::error::ProxyError;
use crate::model::ServiceModel;
use crate::store::{Store, StoreError};

/// What distinguishes one lock-step entity protocol from another.
pub(crate) trait Protocol: StreamShape {
    /// The reply variant of an output message.
    type Reply: Send;
    /// What a stream needs to remember between replies (the journal's last
    /// sequence number).
    type Session: Send;

    /// The client-visible texts of protocol errors.
    const TEXTS: Texts;

    /// Reads what the entity starts from: the messages that open its stream
    /// (`init` first) and the session.
    fn recover(
        entity: EntityRef<'_>,
    ) -> impl Future<Output = Result<(Vec<Self::In>, Self::Session), StoreError>> + Send;

    /// What an output message is.
    fn classify(out: Self::Out) -> Received<Self::Reply>;

    /// Acts on the reply to the current command: stores what it changes,
    /// then says what the caller gets.
    fn apply(
        session: &mut Self::Session,
        entity: EntityRef<'_>,
        reply: Self::Reply,
    ) -> impl Future<Output = Handled> + Send;
}

/// The official proxy's texts for a protocol's errors.
pub(crate) struct Texts {
    /// The current command, when a reply names another command.
    pub(crate) unexpected_reply: &'static str,
    /// The current command, after a stream-level failure or an empty message.
    pub(crate) unexpected_failure: &'static str,
    /// The current command, when the user function ends the stream.
    pub(crate) unexpected_termination: &'static str,
    /// The commands queued behind it.
    pub(crate) terminated: &'static str,
}

/// One entity, as its protocol sees it.
#[derive(Clone, Copy)]
pub(crate) struct EntityRef<'a> {
    pub(crate) store: &'a Store,
    pub(crate) service: &'a ServiceModel,
    pub(crate) entity_id: &'a str,
}

/// An output message, sorted.
pub(crate) enum Received<R> {
    /// A reply to the command with this id.
    Reply(i64, R),
    /// A stream-level failure.
    Failure(pb::Failure),
    /// No message (or one this proxy does not know).
    Empty,
}

/// What becomes of a reply.
pub(crate) enum Handled {
    /// The caller gets this; the entity goes on.
    Reply(UfReply),
    /// The caller gets this; the entity is reloaded on a new stream at once.
    Restart(UfReply),
    /// The caller gets this error (the reason is logged); the entity stops.
    Stop(ProxyError, String),
}

impl Handled {
    /// A protocol error: the caller gets `text` as a failure.
    pub(crate) fn unexpected(text: &str, reason: impl Into<String>) -> Self {
        Self::Stop(ProxyError::Failure(text.to_owned()), reason.into())
    }
}

/// How an incarnation of the stream ended.
enum End {
    /// Idle or shutting down: the entity goes away.
    Passivate,
    /// The user function asked for a restart: reload now.
    Restart,
    /// A protocol error: fail what is queued and stop.
    Stop(String),
}

/// The driver of protocol `P`.
pub(crate) struct Lockstep<P>(PhantomData<P>);

impl<P: Protocol> Driver for Lockstep<P> {
    async fn run(task: Task) {
        run::<P>(task).await;
    }
}

fn entity(task: &Task) -> EntityRef<'_> {
    EntityRef {
        store: &task.shared().store,
        service: &task.service,
        entity_id: &task.entity_id,
    }
}

async fn run<P: Protocol>(mut task: Task) {
    loop {
        let (stream, end) = match open::<P>(&task).await {
            Ok((mut stream, mut session)) => {
                let end = serve(&mut task, &mut stream, &mut session).await;
                (Some(stream), end)
            }
            Err(reason) => {
                // Unreachable store: the first waiting command gets the reason.
                if let Ok(mail) = task.mailbox.try_recv() {
                    mail.refuse(ProxyError::Internal(reason.clone()));
                }
                (None, End::Stop(reason))
            }
        };
        if let End::Stop(reason) = &end {
            warn!(service = %task.service.name, entity_id = %task.entity_id, "entity stopped: {reason}");
            task.retire(&ProxyError::Failure(P::TEXTS.terminated.into()));
        }
        if let Some(stream) = stream {
            stream.close().await;
        }
        if !matches!(end, End::Restart) {
            return;
        }
    }
}

async fn open<P: Protocol>(task: &Task) -> Result<(Stream<P>, P::Session), String> {
    let (opening, session) = P::recover(entity(task)).await.map_err(|e| e.to_string())?;
    let stream = Stream::open(task.shared(), &task.service, &task.entity_id, opening);
    Ok((stream, session))
}

async fn serve<P: Protocol>(
    task: &mut Task,
    stream: &mut Stream<P>,
    session: &mut P::Session,
) -> End {
    let mut command_id = 0;
    let mut idle = Idle::new(task.service.passivation);
    while let Some(envelope) = next_command(task, &mut idle).await {
        command_id += 1;
        let command = P::command(pb::Command {
            entity_id: task.entity_id.clone(),
            id: command_id,
            name: envelope.name,
            payload: Some(envelope.payload),
            streamed: false,
            metadata: None,
        });
        let handled = match stream.exchange(command).await.map(P::classify) {
            Some(Received::Reply(id, reply)) if id == command_id => {
                P::apply(session, entity(task), reply).await
            }
            Some(Received::Reply(id, _)) => Handled::unexpected(
                P::TEXTS.unexpected_reply,
                format!("a reply to command {id} while {command_id} was current"),
            ),
            Some(Received::Failure(failure)) => Handled::unexpected(
                P::TEXTS.unexpected_failure,
                format!("entity failure: {}", failure.description),
            ),
            Some(Received::Empty) => Handled::unexpected(
                P::TEXTS.unexpected_failure,
                "an empty message from the user function",
            ),
            None => Handled::unexpected(P::TEXTS.unexpected_termination, stream.end_reason()),
        };
        match handled {
            Handled::Reply(reply) => envelope.reply.send(Ok(reply)),
            Handled::Restart(reply) => {
                envelope.reply.send(Ok(reply));
                return End::Restart;
            }
            Handled::Stop(error, reason) => {
                envelope.reply.send(Err(error));
                return End::Stop(reason);
            }
        }
    }
    End::Passivate
}

/// The next command, or `None` once the entity is to passivate: idle for
/// the service's timeout, or no longer reachable (shutdown).
async fn next_command(task: &mut Task, idle: &mut Idle) -> Option<Envelope> {
    idle.restart();
    loop {
        tokio::select! {
            mail = task.mailbox.recv() => match mail? {
                Mail::Command(envelope) => return Some(envelope),
                // Only CRDTs gossip.
                Mail::Gossip(_) => {}
            },
            () = idle.elapsed() => {
                if task.retire_if_idle() {
                    debug!(service = %task.service.name, entity_id = %task.entity_id, "passivating");
                    return None;
                }
                idle.restart();
            }
        }
    }
}

/// The passivation timer of an entity: one timer for the stream's life,
/// moved only when it fires early, rather than a new one per command.
struct Idle {
    timeout: Duration,
    since: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Idle {
    fn new(timeout: Duration) -> Self {
        let since = Instant::now();
        Self {
            timeout,
            since,
            timer: Box::pin(tokio::time::sleep_until(since + timeout)),
        }
    }

    /// Idle from now on.
    fn restart(&mut self) {
        self.since = Instant::now();
    }

    /// Resolves once the entity has been idle for the timeout since the
    /// last [`restart`](Self::restart). Cancel-safe.
    async fn elapsed(&mut self) {
        loop {
            // Set for an earlier idle period, it fires early (or has fired):
            // then it is moved to this period's end.
            self.timer.as_mut().await;
            let deadline = self.since + self.timeout;
            if Instant::now() >= deadline {
                return;
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl ReplyTo {
    /// A unary reply channel (lock-step entities only take those).
    pub(crate) fn unary() -> (
        Self,
        tokio::sync::oneshot::Receiver<Result<UfReply, ProxyError>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Self::Unary(tx), rx)
    }
}
