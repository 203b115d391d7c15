//! An action has no state: `#[snapshot]` and `#[snapshot_handler]` are
//! errors at the attributes, naming `#[event_sourced]`.

#[path = "../action_support.rs"]
mod support;

use support::*;

struct GreeterAction;

#[cloudstate_sdk::action]
impl greeter::Greeter for GreeterAction {
    #[snapshot]
    fn to_snapshot(&self, _state: &()) -> Greeting {
        Greeting {
            message: String::new(),
        }
    }

    #[snapshot_handler]
    fn from_snapshot(&self, _entity_id: &str, _snapshot: Greeting) {}

    #[command_handler(name = "Hello")]
    async fn greet(&self, _request: Greet, _ctx: ActionContext) -> ActionResult<Greeting> {
        Ok(Greeting {
            message: String::new(),
        })
    }

    async fn hello_all(
        &self,
        _requests: BoxStream<'static, Result<Greet, Failure>>,
        _ctx: ActionContext,
    ) -> ActionResult<Greeting> {
        Ok(Greeting {
            message: String::new(),
        })
    }

    fn spell(
        &self,
        _request: Greet,
        _ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult<Greeting>> {
        unimplemented!()
    }

    fn chat(
        &self,
        _requests: BoxStream<'static, Result<Greet, Failure>>,
        _ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult<Greeting>> {
        unimplemented!()
    }

    async fn ping(&self, _request: (), _ctx: ActionContext) -> ActionResult<()> {
        Ok(())
    }
}

fn main() {}
