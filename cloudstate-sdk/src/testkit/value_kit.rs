//! Unit-testing value entities in memory: commands go in through the typed
//! call builders and run through the registered entity as on a proxy
//! stream; the kit keeps the state the proxy would store.

use std::marker::PhantomData;
use std::sync::Arc;

use super::describe;
use super::outcome::{ValueEntityExtra, ValueEntityOutcome};
use crate::effect::TypedCall;
use crate::payload::{Any, Payload};
use crate::protocol::cloudstate::valueentity::value_entity_action::Action as StateAction;
use crate::valueentity::runtime::{Entity, Live, Registration};
use crate::valueentity::{Typed, ValueEntity, ValueEntityOptions};
use crate::{CloudState, Service};

/// Runs commands against one value-entity instance.
///
/// Commands take the generated call builders, so a misspelt method is a
/// compile error; replies and the state come back typed.
/// [`new`](Self::new) takes a generated `Entity`;
/// [`without_descriptors`](Self::without_descriptors) a hand-written entity.
pub struct ValueEntityTestKit<E: ValueEntity> {
    instance: Entity,
    next_command_id: i64,
    _entity: PhantomData<fn() -> E>,
}

impl<E: ValueEntity + Service<Options = ValueEntityOptions>> ValueEntityTestKit<E> {
    /// A new instance of a generated entity with no stored state: checked
    /// and created as for serving (descriptors, unknown commands, input
    /// types).
    ///
    /// # Panics
    /// When the registration is invalid.
    #[track_caller]
    pub fn new(entity: E, entity_id: &str) -> Self {
        Self::registered(entity, entity_id, None)
    }

    /// An instance whose stored state is `state`, as the proxy starts one
    /// after a passivation.
    ///
    /// # Panics
    /// As [`new`](Self::new), and when the entity cannot read the state it
    /// encodes.
    #[track_caller]
    pub fn with_state(entity: E, entity_id: &str, state: &E::State) -> Self {
        let stored = entity.encode_state(state);
        Self::registered(entity, entity_id, Some(stored))
    }

    #[track_caller]
    fn registered(entity: E, entity_id: &str, state: Option<Any>) -> Self {
        let registration = entity
            .register(CloudState::new(), ValueEntityOptions::new("test-kit"))
            .value_entity_registration()
            .unwrap_or_else(|e| panic!("{e}"));
        Self::start(registration, entity_id, state)
    }
}

impl<E: ValueEntity> ValueEntityTestKit<E> {
    /// A new instance of a hand-written entity serving `service_name`, with
    /// no descriptors: every command reaches its `handle_command`.
    ///
    /// ```
    /// use cloudstate_sdk::testkit::ValueEntityTestKit;
    /// use cloudstate_sdk::{Any, Command, CommandResult, PayloadError, Reply, ServiceCall};
    /// use cloudstate_sdk::{TypedCall, ValueContext, ValueEntity, payload};
    ///
    /// /// Stores the last payload it gets.
    /// struct Last;
    /// impl ValueEntity for Last {
    ///     type State = Any;
    ///     fn encode_state(&self, state: &Any) -> Any { state.clone() }
    ///     fn decode_state(&self, state: &Any) -> Result<Any, PayloadError> { Ok(state.clone()) }
    ///     fn handle_command(&self, command: &Command<'_>, ctx: &mut ValueContext<'_, Self>) -> CommandResult {
    ///         ctx.update(command.payload().clone());
    ///         Ok(Reply::empty())
    ///     }
    /// }
    /// let mut kit = ValueEntityTestKit::without_descriptors("example.Last", Last, "l-1");
    /// let set = TypedCall::<()>::new(ServiceCall::new("example.Last", "Set", payload::encode(&7_i64)));
    /// let outcome = kit.call(set);
    /// outcome.reply();
    /// assert_eq!(outcome.state_change(), Some(Some(&payload::encode(&7_i64))));
    /// assert_eq!(kit.state(), Some(&payload::encode(&7_i64)));
    /// ```
    pub fn without_descriptors(service_name: &str, entity: E, entity_id: &str) -> Self {
        let registration = Arc::new(Registration {
            kind: &crate::entity::VALUE_ENTITY,
            service_name: service_name.to_owned(),
            service: None,
            settings: (),
            factory: Arc::new(Typed(Arc::new(entity))),
            max_reply: crate::server::DEFAULT_MAX_REPLY_SIZE,
        });
        Self::start(registration, entity_id, None)
    }

    #[track_caller]
    fn start(registration: Arc<Registration>, entity_id: &str, state: Option<Any>) -> Self {
        let instance = registration
            .create(entity_id, |factory| {
                factory.create(entity_id, state.as_ref())
            })
            .unwrap_or_else(|stop| panic!("the entity did not start: {}", describe(&stop)));
        Self {
            instance: Entity {
                registration,
                entity_id: entity_id.to_owned(),
                instance,
            },
            next_command_id: 1,
            _entity: PhantomData,
        }
    }

    /// Runs a command; a successful one's state change becomes the kit's state.
    ///
    /// # Panics
    /// When the call is for another service, or the entity cannot read the
    /// state it wrote.
    #[track_caller]
    pub fn call<R: Payload>(&mut self, call: TypedCall<R>) -> ValueEntityOutcome<R, E::State> {
        let call = call.into_call();
        assert_eq!(
            call.service_name(),
            self.instance.registration.service_name,
            "the call is for another service"
        );
        let id = self.next_command_id;
        self.next_command_id += 1;
        let command = super::message::command(
            id,
            &self.instance.entity_id,
            call.command_name(),
            Some(call.payload().clone()),
            false,
            call.metadata().cloned(),
        );
        let reply = self
            .instance
            .command(command)
            .unwrap_or_else(|stop| panic!("the command ended the stream: {}", describe(&stop)));
        // Decoded as the proxy's next `init` would hand it back.
        let change = match reply.state_action.as_ref().and_then(|a| a.action.as_ref()) {
            None => None,
            Some(StateAction::Delete(_)) => Some(None),
            Some(StateAction::Update(update)) => {
                let value = update.value.clone().unwrap_or_default();
                let state = self
                    .live()
                    .entity
                    .decode_state(&value)
                    .unwrap_or_else(|e| panic!("the state written: {e}"));
                Some(Some(state))
            }
        };
        let action = reply.client_action.as_ref().and_then(|a| a.action.as_ref());
        ValueEntityOutcome::new(
            action,
            &reply.side_effects,
            ValueEntityExtra {
                change,
                reply: reply.clone(),
            },
        )
    }

    /// The current state, `None` when there is none.
    pub fn state(&self) -> Option<&E::State> {
        self.live().state.as_ref()
    }

    fn live(&self) -> &Live<E> {
        self.instance
            .instance
            .as_any()
            .downcast_ref::<Live<E>>()
            .expect("the kit's instance is a Live<E>")
    }
}
