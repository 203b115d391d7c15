//! `#[action]`: renamed `async fn` handlers of unary and streamed-in rpcs,
//! and stream-returning handlers of streamed-out and bidirectional ones,
//! called through the trait at run time.

#[path = "../action_support.rs"]
mod support;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use cloudstate_sdk::__private::{StreamExt as _, stream};
use support::*;

use greeter::Greeter as _;

struct GreeterAction {
    greeting: &'static str,
}

impl GreeterAction {
    async fn message(&self, name: &str) -> String {
        format!("{}, {name}!", self.greeting)
    }
}

#[cloudstate_sdk::action]
impl greeter::Greeter for GreeterAction {
    /// Implements `hello`.
    #[command_handler(name = "Hello")]
    async fn greet(&self, request: Greet, _ctx: ActionContext) -> ActionResult<Greeting> {
        Ok(Greeting {
            message: self.message(&request.name).await,
        })
    }

    #[command_handler(name = "HelloAll")]
    async fn greet_all(
        &self,
        requests: BoxStream<'static, Result<Greet, Failure>>,
        _ctx: ActionContext,
    ) -> ActionResult<Greeting> {
        let names: Vec<String> = requests
            .map(|request| request.map(|greet| greet.name).unwrap_or_default())
            .collect()
            .await;
        Ok(Greeting {
            message: self.message(&names.join(" and ")).await,
        })
    }

    #[command_handler(name = "Spell")]
    fn letters(
        &self,
        request: Greet,
        _ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult<Greeting>> {
        let letters: Vec<ActionResult<Greeting>> = request
            .name
            .chars()
            .map(|letter| {
                Ok(Greeting {
                    message: letter.to_string(),
                })
            })
            .collect();
        stream::iter(letters).boxed()
    }

    #[command_handler]
    fn chat(
        &self,
        requests: BoxStream<'static, Result<Greet, Failure>>,
        _ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult<Greeting>> {
        requests
            .map(|request| {
                request
                    .map(|greet| Greeting {
                        message: greet.name,
                    })
                    .map_err(|_| "failed".to_owned())
            })
            .boxed()
    }

    #[command_handler]
    async fn ping(&self, _request: (), ctx: ActionContext) -> ActionResult<()> {
        if ctx.command_name == "Ping" {
            Ok(())
        } else {
            Err(ctx.command_name)
        }
    }
}

/// Runs a future that never waits.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waits"),
    }
}

fn main() {
    let action = GreeterAction { greeting: "Hello" };
    let ctx = ActionContext::default;
    let greet = |name: &str| Greet {
        name: name.to_owned(),
    };

    let greeting = block_on(action.hello(greet("Ada"), ctx())).unwrap();
    assert_eq!(greeting.message, "Hello, Ada!");

    let requests = stream::iter([Ok(greet("Ada")), Ok(greet("Grace"))]).boxed();
    let greeting = block_on(action.hello_all(requests, ctx())).unwrap();
    assert_eq!(greeting.message, "Hello, Ada and Grace!");

    let letters: Vec<_> = block_on(action.spell(greet("Ada"), ctx()).collect());
    let letters: Vec<String> = letters
        .into_iter()
        .map(|letter| letter.unwrap().message)
        .collect();
    assert_eq!(letters, ["A", "d", "a"]);

    let replies: Vec<_> = block_on(
        action
            .chat(stream::iter([Ok(greet("Ada"))]).boxed(), ctx())
            .collect(),
    );
    assert_eq!(
        replies,
        [Ok(Greeting {
            message: "Ada".to_owned()
        })]
    );

    let ping = ActionContext {
        command_name: "Ping".to_owned(),
    };
    assert_eq!(block_on(action.ping((), ping)), Ok(()));
    assert_eq!(block_on(action.ping((), ctx())), Err(String::new()));

    // The handlers stay callable by their own names.
    assert_eq!(
        block_on(action.greet(greet("Bob"), ctx())).unwrap().message,
        "Hello, Bob!"
    );
}
