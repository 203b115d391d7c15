//! An `async fn` handler whose future is not `Send`: rustc's error, at the
//! handler's return type.

#[path = "../action_support.rs"]
mod support;

use support::*;

struct GreeterAction;

#[cloudstate_sdk::action]
impl greeter::Greeter for GreeterAction {
    #[command_handler(name = "Hello")]
    async fn greet(&self, _request: Greet, _ctx: ActionContext) -> ActionResult<Greeting> {
        let rc = std::rc::Rc::new(());
        std::future::ready(()).await;
        drop(rc);
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
