//! Two handlers for one rpc of a CRDT: an error at the second one's name.

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

    #[command_handler(name = "Connect")]
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

    #[command_handler(name = "Connect")]
    fn join_again(
        &self,
        _request: Connect,
        _ctx: &mut presence::Context<'_, Self>,
    ) -> CommandResult<Online> {
        Ok(Online::default().into())
    }
}

fn main() {}
