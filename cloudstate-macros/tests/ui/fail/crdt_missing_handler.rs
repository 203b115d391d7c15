//! An rpc without a handler: rustc's error at the impl, naming the trait
//! method and pointing at it in the trait.

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
}

fn main() {}
