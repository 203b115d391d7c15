//! The action test kit runs a hand-written handler as the runtime does:
//! side effects added through the context go out with the next response,
//! before the response's own; call metadata reaches the context; a panic is
//! a failure without effects.

use std::sync::Arc;

use cloudstate_sdk::action::{BoxFuture, BoxStream};
use cloudstate_sdk::protocol::cloudstate::{Metadata, MetadataEntry, metadata_entry::Value};
use cloudstate_sdk::testkit::{ActionTestKit, SideEffect, StreamedCall};
use cloudstate_sdk::{
    ActionContext, ActionHandler, ActionMessage, ActionReply, ActionResult, Payload, ServiceCall,
    TypedCall,
};
use futures_util::StreamExt;

const SERVICE: &str = "example.Ticker";

fn log(text: &str) -> ServiceCall {
    ServiceCall::new("example.Log", "Record", text.to_owned().to_any())
}

struct Ticker;

impl ActionHandler for Ticker {
    fn handle_unary(
        self: Arc<Self>,
        _: ActionMessage,
        ctx: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async move {
            match ctx.command_name() {
                "Effects" => {
                    ctx.effect(log("from the context"), true);
                    Ok(ActionReply::message("done".to_owned().to_any())
                        .with_effect(log("from the reply"), false))
                }
                "Who" => {
                    let who = ctx.metadata_value("user").unwrap_or("nobody").to_owned();
                    Ok(ActionReply::message(who.to_any()))
                }
                _ => {
                    ctx.effect(log("lost"), false);
                    panic!("boom")
                }
            }
        })
    }

    fn handle_streamed_in(
        self: Arc<Self>,
        input: BoxStream<'static, ActionMessage>,
        _: ActionContext,
    ) -> BoxFuture<'static, ActionResult> {
        Box::pin(async move {
            let n = input.count().await as i64;
            Ok(ActionReply::message(n.to_any()))
        })
    }

    fn handle_streamed_out(
        self: Arc<Self>,
        message: ActionMessage,
        ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        let n = i64::from_any(&message.payload).unwrap();
        futures_util::stream::iter(0..n)
            .map(move |i| {
                ctx.effect(log(&format!("tick {i}")), false);
                Ok(ActionReply::message(i.to_any()))
            })
            .boxed()
    }

    fn handle_streamed(
        self: Arc<Self>,
        input: BoxStream<'static, ActionMessage>,
        ctx: ActionContext,
    ) -> BoxStream<'static, ActionResult> {
        // A side effect added before any response goes out with the first.
        ctx.effect(log("opened"), false);
        input.map(|m| Ok(ActionReply::message(m.payload))).boxed()
    }
}

fn kit() -> ActionTestKit {
    ActionTestKit::without_descriptors(SERVICE, Ticker)
}

fn unary<R>(name: &str) -> TypedCall<R> {
    TypedCall::new(ServiceCall::new(SERVICE, name, ().to_any()))
}

#[tokio::test]
async fn context_effects_go_first_with_the_next_response() {
    let outcome = kit().call(unary::<String>("Effects")).await;
    assert_eq!(outcome.reply(), "done");
    assert_eq!(
        outcome.side_effects(),
        [
            SideEffect::new(log("from the context"), true),
            SideEffect::new(log("from the reply"), false),
        ]
    );

    let ticks = kit()
        .call_streamed_out(TypedCall::<i64>::new(ServiceCall::new(
            SERVICE,
            "Ticks",
            3_i64.to_any(),
        )))
        .await;
    assert_eq!(
        ticks.iter().map(|t| t.reply()).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for (i, tick) in ticks.iter().enumerate() {
        assert_eq!(
            tick.side_effects(),
            [SideEffect::new(log(&format!("tick {i}")), false)]
        );
    }

    let echoed = kit()
        .call_streamed(
            StreamedCall::<String, String>::new(SERVICE, "Echo"),
            ["a".to_owned(), "b".to_owned()],
        )
        .await;
    assert_eq!(
        echoed[0].side_effects(),
        [SideEffect::new(log("opened"), false)]
    );
    assert!(echoed[1].side_effects().is_empty());
    assert_eq!(echoed[1].reply(), "b");
}

#[tokio::test]
async fn call_metadata_reaches_the_context() {
    let metadata = Metadata {
        entries: vec![MetadataEntry {
            key: "User".into(),
            value: Some(Value::StringValue("ann".into())),
        }],
    };
    let kit = kit();
    assert_eq!(kit.call(unary::<String>("Who")).await.reply(), "nobody");
    let who = unary::<String>("Who").with_metadata(metadata.clone());
    assert_eq!(kit.call(who).await.reply(), "ann");
    let counted = kit
        .call_streamed_in(
            StreamedCall::<(), i64>::new(SERVICE, "Count").with_metadata(metadata),
            [(), (), ()],
        )
        .await;
    assert_eq!(counted.reply(), 3);
}

#[tokio::test]
async fn a_panic_is_a_failure_without_the_context_effects() {
    let outcome = kit().call(unary::<()>("Explode")).await;
    assert_eq!(
        outcome.failure(),
        Some("Unexpected error handling command [Explode] of service [example.Ticker]")
    );
    assert!(outcome.side_effects().is_empty());
}

#[tokio::test]
#[should_panic(expected = "the call is for another service")]
async fn a_call_of_another_service_is_refused() {
    let other = TypedCall::<()>::new(ServiceCall::new("example.Other", "Go", ().to_any()));
    kit().call(other).await;
}
