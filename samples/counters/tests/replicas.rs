//! The poll through a dev proxy that runs three replicas of each CRDT: a
//! `Vote` has one voter per replica, and calls are pinned to a replica with
//! the `x-crdt-replica` header.

use cloudstate_devproxy::REPLICA_HEADER;
use cloudstate_devproxy::local::Local;
use cloudstate_devproxy::local::examples::{Example, check};
use cloudstate_sdk::CloudState;

fn on(replica: u32, example: Example) -> Example {
    example.header(REPLICA_HEADER, replica.to_string())
}

#[tokio::test]
async fn a_vote_has_one_voter_per_replica() {
    let proxy = Local::start_with(counters::register(CloudState::new()), |config| {
        config.crdt_replicas = 3;
    })
    .await
    .unwrap();
    let ballot = |in_favour: bool| {
        Example::post("/polls/dark-mode/vote")
            .json(format!(r#"{{"inFavour":{in_favour},"consistency":"ALL"}}"#))
    };
    let examples = [
        // A new entity knows of no other voter until the proxy tells it:
        // the first ballot's answer is this replica's view alone.
        on(0, ballot(true))
            .expect_json(r#"{"selfVote":true,"votesFor":1,"voters":1,"majority":true}"#),
        // Replicas that start later get the whole vote with their init.
        on(1, ballot(true))
            .expect_json(r#"{"selfVote":true,"votesFor":2,"voters":3,"majority":true}"#),
        on(2, Example::get("/polls/dark-mode"))
            .expect_json(r#"{"selfVote":false,"votesFor":2,"voters":3,"majority":true}"#),
        on(2, ballot(true))
            .expect_json(r#"{"selfVote":true,"votesFor":3,"voters":3,"majority":true}"#),
    ];
    check(proxy.addr(), &examples)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
