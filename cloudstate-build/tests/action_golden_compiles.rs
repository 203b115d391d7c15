//! The action golden output compiles against the SDK, a user implementation
//! of the generated trait (with `async fn`) builds, and the generated
//! `Action<T>` routes each call shape to it.

/// The generated tree as `include_protos!()` lays it out, under lints that
/// generated code would trip without the allows it carries.
#[deny(
    dead_code,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications
)]
#[warn(clippy::pedantic, clippy::nursery)]
mod proto {
    include!("golden/greeter/cloudstate_modules.rs");
    include!("golden/greeter/cloudstate_payloads.rs");

    /// Stands in for the embedded set; this test never serves.
    const FILE_DESCRIPTOR_SET: &[u8] = &[];
}
use proto::example;

use std::sync::Arc;

use cloudstate_sdk::action::BoxStream;
use cloudstate_sdk::{
    ActionContext, ActionHandler, ActionMessage, ActionReply, ActionResult, Failure, payload,
};
use example::greeter::{Greet, Greeting, greeter};
use futures_util::{StreamExt, stream};

struct Greeter;

fn greeting(text: String) -> ActionReply<Greeting> {
    ActionReply::message(Greeting { text })
}

impl greeter::Greeter for Greeter {
    async fn hello(&self, request: Greet, ctx: ActionContext) -> ActionResult<Greeting> {
        ctx.effect(greeter::ping(&()), false);
        Ok(greeting(format!("Hello, {}!", request.name)))
    }

    async fn hello_all(
        &self,
        mut requests: BoxStream<'static, Result<Greet, Failure>>,
        _: ActionContext,
    ) -> ActionResult<Greeting> {
        let mut names = Vec::new();
        while let Some(request) = requests.next().await {
            names.push(request?.name);
        }
        Ok(greeting(format!("Hello, {}!", names.join(" and "))))
    }

    fn spell(
        &self,
        request: Greet,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult<Greeting>> {
        let letters: Vec<String> = request.name.chars().map(String::from).collect();
        stream::iter(letters).map(|l| Ok(greeting(l))).boxed()
    }

    fn chat(
        &self,
        requests: BoxStream<'static, Result<Greet, Failure>>,
        _: ActionContext,
    ) -> BoxStream<'static, ActionResult<Greeting>> {
        requests
            .map(|r| r.map(|g| greeting(format!("Hi {}", g.name))))
            .boxed()
    }

    async fn ping(&self, (): (), _: ActionContext) -> ActionResult<()> {
        Ok(ActionReply::no_reply())
    }
}

fn message(name: &str) -> ActionMessage {
    ActionMessage {
        payload: payload::encode(&Greet { name: name.into() }),
        metadata: None,
    }
}

fn elements(names: &[&str]) -> BoxStream<'static, ActionMessage> {
    stream::iter(names.iter().map(|n| message(n)).collect::<Vec<_>>()).boxed()
}

fn ctx(name: &str) -> ActionContext {
    ActionContext::new(greeter::SERVICE_NAME, name, None)
}

fn text(result: ActionResult) -> ActionReply<Greeting> {
    result
        .unwrap()
        .map(|any| payload::decode::<Greeting>(&any).unwrap())
}

#[tokio::test]
async fn every_call_shape_is_routed() {
    let action = Arc::new(greeter::Action(Greeter));
    let c = ctx("Hello");
    let reply = text(
        Arc::clone(&action)
            .handle_unary(message("Ann"), c.clone())
            .await,
    );
    assert_eq!(reply, greeting("Hello, Ann!".into()));
    assert!(ActionReply::<Greeting>::no_reply().is_no_reply());

    let reply = text(
        Arc::clone(&action)
            .handle_streamed_in(elements(&["A", "B"]), ctx("HelloAll"))
            .await,
    );
    assert_eq!(reply, greeting("Hello, A and B!".into()));

    let spelled: Vec<_> = Arc::clone(&action)
        .handle_streamed_out(message("Bo"), ctx("Spell"))
        .map(text)
        .collect()
        .await;
    assert_eq!(spelled, vec![greeting("B".into()), greeting("o".into())]);

    let chat: Vec<_> = Arc::clone(&action)
        .handle_streamed(elements(&["X"]), ctx("Chat"))
        .map(text)
        .collect()
        .await;
    assert_eq!(chat, vec![greeting("Hi X".into())]);

    let ping = Arc::clone(&action)
        .handle_unary(
            ActionMessage {
                payload: payload::empty(),
                metadata: None,
            },
            ctx("Ping"),
        )
        .await
        .unwrap();
    assert!(ping.is_no_reply());

    // A streaming rpc through the unary shape is not routed.
    let e = Arc::clone(&action)
        .handle_unary(message("x"), ctx("Spell"))
        .await
        .unwrap_err();
    assert_eq!(
        e.description(),
        "No unary handler found for command [Spell] of action [example.greeter.Greeter]"
    );
}
