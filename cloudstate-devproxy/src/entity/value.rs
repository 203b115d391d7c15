//! The value-entity protocol: `init` carries the stored state, and a reply's
//! state action is written before the reply is released.

use cloudstate_sdk::protocol::cloudstate::valueentity::{
    ValueEntityAction, ValueEntityInit, ValueEntityInitState, ValueEntityReply,
    ValueEntityStreamIn, ValueEntityStreamOut, ValueEntityUpdate,
    value_entity_action::Action as StateAction, value_entity_client::ValueEntityClient,
    value_entity_stream_in::Message as In, value_entity_stream_out::Message as Out,
};

use super::UfReply;
use super::lockstep::{EntityRef, Handled, Protocol, Texts};
use crate::store::StoreError;

/// `cloudstate.valueentity.ValueEntity`.
pub(crate) struct ValueEntity;

stream_shape!(
    ValueEntity,
    client: ValueEntityClient,
    input: ValueEntityStreamIn, In,
    output: ValueEntityStreamOut,
    observed: ValueEntityIn, ValueEntityOut,
);

impl Protocol for ValueEntity {
    classify_replies!(ValueEntityStreamOut, Out);

    type Reply = ValueEntityReply;
    type Session = ();

    const TEXTS: Texts = Texts {
        unexpected_reply: "Unexpected Value entity reply",
        unexpected_failure: "Unexpected Value entity failure",
        unexpected_termination: "Unexpected Value entity termination",
        terminated: "Value entity terminated",
    };

    /// `init` always carries a state, whose value is absent when nothing is
    /// stored (as the official proxy sends it).
    async fn recover(entity: EntityRef<'_>) -> Result<(Vec<Self::In>, ()), StoreError> {
        let value = entity
            .store
            .get_value(&entity.service.persistence_id, entity.entity_id)
            .await?;
        let init = ValueEntityStreamIn {
            message: Some(In::Init(ValueEntityInit {
                service_name: entity.service.name.clone(),
                entity_id: entity.entity_id.to_owned(),
                state: Some(ValueEntityInitState { value }),
            })),
        };
        Ok((vec![init], ()))
    }

    /// Writes the state action, if any, before the reply is released. As in
    /// the official proxy, the action is written whatever the client action
    /// (the SDK sends none with a failure), and `restart` is ignored.
    async fn apply(_: &mut (), entity: EntityRef<'_>, reply: Self::Reply) -> Handled {
        let ValueEntityReply {
            client_action,
            side_effects,
            state_action,
            ..
        } = reply;
        if let Some(ValueEntityAction { action }) = state_action {
            let persistence_id = &entity.service.persistence_id;
            let written = match action {
                Some(StateAction::Update(ValueEntityUpdate { value: Some(value) })) => {
                    entity
                        .store
                        .upsert_value(persistence_id, entity.entity_id, value)
                        .await
                }
                Some(StateAction::Delete(_)) => {
                    entity
                        .store
                        .delete_value(persistence_id, entity.entity_id)
                        .await
                }
                Some(StateAction::Update(_)) => {
                    return Handled::unexpected(
                        Self::TEXTS.unexpected_failure,
                        "a state update without a value",
                    );
                }
                None => {
                    return Handled::unexpected(
                        Self::TEXTS.unexpected_failure,
                        "a state action that is neither update nor delete",
                    );
                }
            };
            if let Err(e) = written {
                return Handled::unexpected(Self::TEXTS.unexpected_failure, e.to_string());
            }
        }
        Handled::Reply(UfReply {
            client_action,
            side_effects,
        })
    }
}
