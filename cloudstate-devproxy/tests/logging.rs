//! What the dev proxy logs at start-up: each service it serves, with a
//! persistence id only for the kinds that keep state.

mod support;

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.lock().unwrap().push(message.0);
    }
}

// A current-thread runtime: the proxy's tasks log on this thread.
#[tokio::test]
async fn services_are_listed_with_a_persistence_id_only_when_they_keep_state() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let _setup = support::start(tck_adapter::server()).await;
    let logged = capture.0.lock().unwrap().clone();
    let line = |service: &str| {
        logged
            .iter()
            .find(|l| l.starts_with(&format!("serving {service} ")))
            .unwrap_or_else(|| panic!("no line for {service} in {logged:?}"))
            .clone()
    };
    let action = line("cloudstate.tck.model.action.ActionTckModel");
    assert!(!action.contains("persistence id"), "{action}");
    let entity = line("cloudstate.tck.model.EventSourcedTckModel");
    assert!(
        entity.contains("persistence id [event-sourced-tck-model]"),
        "{entity}"
    );
}
