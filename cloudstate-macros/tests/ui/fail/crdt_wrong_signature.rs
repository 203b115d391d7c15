//! A server-streaming handler written with the unary context: rustc
//! compares it with the trait method and points at the parameter.

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
        _ctx: &mut presence::Context<'_, Self>,
    ) -> Result<Option<Reply<Online>>, Failure> {
        Ok(None)
    }
}

fn main() {}
