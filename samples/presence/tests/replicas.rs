//! Presence through a dev proxy that runs two replicas of each CRDT: users
//! connected through different replicas see each other, once the replicas
//! have exchanged the change.

use cloudstate_devproxy::REPLICA_HEADER;
use cloudstate_devproxy::local::Local;
use cloudstate_devproxy::local::examples::{Answer, Example};
use cloudstate_sdk::CloudState;
use serde_json::{Value, json};

/// Reads the stream until it shows `expected` (each line is the whole member
/// list, so earlier lines are states on the way there).
async fn until(answer: &mut Answer, expected: Value) {
    let mut seen = Vec::new();
    loop {
        let line = answer
            .line()
            .await
            .unwrap_or_else(|e| panic!("{e}; seen {seen:?}"))
            .unwrap_or_else(|| panic!("the stream ended; seen {seen:?}"));
        let value: Value = serde_json::from_str(&line).unwrap();
        if value == expected {
            return;
        }
        seen.push(value);
    }
}

#[tokio::test]
async fn users_on_different_replicas_see_each_other() {
    let proxy = Local::start_with(presence::register(CloudState::new()), |config| {
        config.crdt_replicas = 2;
    })
    .await
    .unwrap();
    let addr = proxy.addr();
    let connect = |user: &str, replica: u32| {
        Example::get(format!("/rooms/lobby/connect/{user}"))
            .header(REPLICA_HEADER, replica.to_string())
    };
    let mut ann = connect("ann", 0).send(addr).await.unwrap();
    assert_eq!(ann.status, 200);
    until(&mut ann, json!({"users": ["ann"]})).await;
    let mut bob = connect("bob", 1).send(addr).await.unwrap();
    assert_eq!(bob.status, 200);
    until(&mut bob, json!({"users": ["ann", "bob"]})).await;
    until(&mut ann, json!({"users": ["ann", "bob"]})).await;
    drop(bob);
    until(&mut ann, json!({"users": ["ann"]})).await;
}
