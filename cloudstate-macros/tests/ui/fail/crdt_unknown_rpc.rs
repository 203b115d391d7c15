//! A misspelt rpc name on a CRDT: rustc's error, at the name, and the
//! rpc left without a handler.

#[path = "../crdt_support.rs"]
mod support;

use support::*;

struct PresenceEntity;

#[cloudstate_sdk::crdt]
impl presence::Presence for PresenceEntity {
    type State = u64;

    fn initial_state(&self, _entity_id: &str) -> u64 {
        0
    }

    #[command_handler(name = "Conect")]
    fn join(
        &self,
        _request: Connect,
        _ctx: &mut presence::Context<'_, Self>,
    ) -> CommandResult<Online> {
        Ok(Online::default().into())
    }

    #[command_handler]
    fn watch(
        &self,
        _request: User,
        _ctx: &mut presence::StreamContext<'_, '_, Self, Online>,
    ) -> Result<Option<Reply<Online>>, Failure> {
        Ok(None)
    }
}

fn main() {}
