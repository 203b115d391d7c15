//! The event-sourced protocol: the journal is replayed after `init`, events
//! are appended before the reply, and a failure may ask for a restart.

use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedEvent, EventSourcedInit, EventSourcedReply, EventSourcedSnapshot,
    EventSourcedStreamIn, EventSourcedStreamOut, event_sourced_client::EventSourcedClient,
    event_sourced_stream_in::Message as In, event_sourced_stream_out::Message as Out,
};
use cloudstate_sdk::protocol::cloudstate::{self as pb, client_action::Action};

use super::UfReply;
use super::lockstep::{EntityRef, Handled, Protocol, Texts};
use crate::error::ProxyError;
use crate::store::StoreError;

/// `cloudstate.eventsourced.EventSourced`.
pub(crate) struct EventSourced;

stream_shape!(
    EventSourced,
    client: EventSourcedClient,
    input: EventSourcedStreamIn, In,
    output: EventSourcedStreamOut,
    observed: EventSourcedIn, EventSourcedOut,
);

impl Protocol for EventSourced {
    classify_replies!(EventSourcedStreamOut, Out);

    type Reply = EventSourcedReply;
    /// The sequence number of the last stored event.
    type Session = i64;

    const TEXTS: Texts = Texts {
        unexpected_reply: "Unexpected entity reply",
        unexpected_failure: "Unexpected entity failure",
        unexpected_termination: "Unexpected entity termination",
        terminated: "Entity terminated",
    };

    /// `init` (with the latest snapshot), then every event after the snapshot.
    async fn recover(entity: EntityRef<'_>) -> Result<(Vec<Self::In>, i64), StoreError> {
        let recovery = entity
            .store
            .recover(&entity.service.persistence_id, entity.entity_id)
            .await?;
        let sequence = recovery
            .events
            .last()
            .map(|e| e.sequence)
            .or(recovery.snapshot.as_ref().map(|s| s.sequence))
            .unwrap_or(0);
        let init = In::Init(EventSourcedInit {
            service_name: entity.service.name.clone(),
            entity_id: entity.entity_id.to_owned(),
            snapshot: recovery.snapshot.map(|s| EventSourcedSnapshot {
                snapshot_sequence: s.sequence,
                snapshot: Some(s.payload),
            }),
        });
        let events = recovery.events.into_iter().map(|e| {
            In::Event(EventSourcedEvent {
                sequence: e.sequence,
                payload: Some(e.payload),
            })
        });
        let opening = std::iter::once(init)
            .chain(events)
            .map(|message| EventSourcedStreamIn {
                message: Some(message),
            })
            .collect();
        Ok((opening, sequence))
    }

    /// Appends the events (and the snapshot) before the reply is released.
    async fn apply(sequence: &mut i64, entity: EntityRef<'_>, reply: Self::Reply) -> Handled {
        let EventSourcedReply {
            client_action,
            side_effects,
            events,
            snapshot,
            ..
        } = reply;
        let restart = matches!(
            client_action.as_ref().and_then(|a| a.action.as_ref()),
            Some(Action::Failure(pb::Failure { restart: true, .. }))
        );
        if restart {
            // The failed command's events are not persisted; the entity is
            // rebuilt from the journal on a new stream at once.
            return Handled::Restart(UfReply {
                client_action,
                side_effects: Vec::new(),
            });
        }
        if !events.is_empty() {
            let count = events.len() as i64;
            let stored = entity
                .store
                .append(
                    &entity.service.persistence_id,
                    entity.entity_id,
                    *sequence + 1,
                    events,
                    snapshot,
                )
                .await;
            if let Err(e) = stored {
                return Handled::Stop(ProxyError::Internal(e.to_string()), e.to_string());
            }
            *sequence += count;
        }
        Handled::Reply(UfReply {
            client_action,
            side_effects,
        })
    }
}
