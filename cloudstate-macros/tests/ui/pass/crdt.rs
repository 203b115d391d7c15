//! `#[crdt]`: `type State` and `initial_state` as written, a renamed unary
//! handler and a server-streaming one of the trait's own name, called
//! through the trait at run time.

#[path = "../crdt_support.rs"]
mod support;

use support::*;

use presence::Presence as _;

struct PresenceEntity;

#[cloudstate_sdk::crdt]
impl presence::Presence for PresenceEntity {
    type State = u64;

    fn initial_state(&self, _entity_id: &str) -> Self::State {
        0
    }

    /// Implements `connect`.
    #[command_handler(name = "Connect")]
    fn join(
        &self,
        request: Connect,
        ctx: &mut presence::Context<'_, Self>,
    ) -> CommandResult<Online> {
        ctx.state += request.devices;
        Ok(Online {
            connections: ctx.state,
        }
        .into())
    }

    #[command_handler]
    fn watch(
        &self,
        _request: User,
        ctx: &mut presence::StreamContext<'_, '_, Self, Online>,
    ) -> Result<Option<Reply<Online>>, Failure> {
        ctx.subscribed = true;
        Ok(None)
    }
}

fn main() {
    let mut ctx = CrdtContext::new("ann", PresenceEntity.initial_state("ann"));
    let connect = Connect {
        name: "ann".into(),
        devices: 2,
    };
    let reply = PresenceEntity.connect(connect, &mut ctx).unwrap();
    assert_eq!(reply, Reply::message(Online { connections: 2 }));
    let mut streamed = StreamedContext::new(&mut ctx);
    let user = User { name: "ann".into() };
    assert_eq!(PresenceEntity.watch(user, &mut streamed), Ok(None));
    assert!(streamed.subscribed);
    // The handler stays callable by its own name.
    let connect = Connect {
        name: "ann".into(),
        devices: 1,
    };
    PresenceEntity.join(connect, &mut ctx).unwrap();
    assert_eq!(ctx.state, 3);
}
