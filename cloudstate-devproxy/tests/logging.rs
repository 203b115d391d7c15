//! What the dev proxy logs at start-up: each service it serves, with a
//! persistence id only for the kinds that keep state.

mod support;

// A current-thread runtime: the proxy's tasks log on this thread.
#[tokio::test]
async fn services_are_listed_with_a_persistence_id_only_when_they_keep_state() {
    let (capture, _guard) = support::logs::Capture::start();
    let _setup = support::start(tck_adapter::server()).await;
    let logged = capture.lines();
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
