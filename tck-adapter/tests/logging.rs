//! What the user function logs: a command failure once, at INFO, inside the
//! entity's span, from the first command of a stream on.

use std::sync::{Arc, Mutex};

use cloudstate_sdk::testkit::{TestServer, eventsourced as es, valueentity as ve};
use tck_adapter::proto::cloudstate::tck::model::valueentity as vm;
use tck_adapter::proto::cloudstate::tck::model::{
    Fail, Request, RequestAction, request_action::Action,
};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One logged event: its level, message and the names of the spans it was in.
#[derive(Debug, Clone)]
struct Logged {
    level: tracing::Level,
    message: String,
    spans: Vec<String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Logged>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let spans = ctx
            .event_scope(event)
            .map(|scope| scope.map(|span| span.name().to_owned()).collect())
            .unwrap_or_default();
        self.0.lock().unwrap().push(Logged {
            level: *event.metadata().level(),
            message: message.0,
            spans,
        });
    }
}

impl Capture {
    fn failures(&self, text: &str) -> Vec<Logged> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.message.contains(text))
            .cloned()
            .collect()
    }
}

fn fail_request(id: &str, message: &str) -> Request {
    Request {
        id: id.into(),
        actions: vec![RequestAction {
            action: Some(Action::Fail(Fail {
                message: message.into(),
            })),
        }],
    }
}

// A current-thread runtime: the server's tasks run on the thread whose
// default subscriber captures.
#[tokio::test]
async fn a_command_failure_is_logged_once_at_info_in_the_entity_span() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let server = TestServer::start(tck_adapter::server()).await;
    let driver = server.driver().await;

    let mut stream = driver.event_sourced().await;
    stream
        .send(es::init(
            "cloudstate.tck.model.EventSourcedTckModel",
            "log-1",
        ))
        .await;
    stream
        .send(es::command(
            1,
            "log-1",
            "Process",
            &fail_request("log-1", "first one fails"),
        ))
        .await;
    stream
        .expect(es::failure(1, "first one fails", false))
        .await;
    stream.passivate().await;

    let mut value = driver.value_entity().await;
    value
        .send(ve::init(
            "cloudstate.tck.model.valueentity.ValueEntityTckModel",
            "log-2",
        ))
        .await;
    let request = vm::Request {
        id: "log-2".into(),
        actions: vec![vm::RequestAction {
            action: Some(vm::request_action::Action::Fail(vm::Fail {
                message: "value fails too".into(),
            })),
        }],
    };
    value
        .send(ve::command(1, "log-2", "Process", &request))
        .await;
    value.next_message().await;
    value.passivate().await;

    for text in ["first one fails", "value fails too"] {
        let logged = capture.failures(text);
        assert_eq!(logged.len(), 1, "logged once: {logged:?}");
        assert_eq!(logged[0].level, tracing::Level::INFO, "{logged:?}");
        assert!(
            logged[0].spans.iter().any(|s| s == "entity"),
            "the first command is logged in the entity's span: {logged:?}"
        );
    }
}
