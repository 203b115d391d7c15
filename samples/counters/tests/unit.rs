//! The counters in memory, with the SDK's CRDT test kit: what each change
//! sends to the proxy (its delta and write consistency), changes from other
//! replicas, and the failures a client can get.

use cloudstate_sdk::crdt::WriteConsistency;
use cloudstate_sdk::testkit::{CrdtTestKit, crdt as wire};
use counters::proto::com::example::counters::{
    AddLike, Ballot, Consistency, Feature, Item, Likes, Score, ScoreVote, Tally, feature_poll,
    like_counter, scores,
};
use counters::{FeaturePoll, LikeCounter, Scores};

const CONSISTENCIES: [(Consistency, WriteConsistency); 3] = [
    (Consistency::Local, WriteConsistency::Local),
    (Consistency::Majority, WriteConsistency::Majority),
    (Consistency::All, WriteConsistency::All),
];

fn like(consistency: Consistency) -> AddLike {
    AddLike {
        item: "post-1".into(),
        consistency: consistency.into(),
    }
}

fn item() -> Item {
    Item {
        item: "post-1".into(),
    }
}

#[test]
fn each_like_adds_one_at_the_consistency_asked_for() {
    let mut kit = CrdtTestKit::new(like_counter::Entity(LikeCounter), "post-1");
    for (n, (asked, expected)) in (1..).zip(CONSISTENCIES) {
        let liked = kit.call(like_counter::like(&like(asked)));
        assert_eq!(liked.reply(), Likes { likes: n });
        let change = liked.state_action().expect("the like is sent to the proxy");
        assert_eq!(change.delta(), Some(&wire::gcounter(1)));
        assert_eq!(change.write_consistency(), expected, "for {asked:?}");
    }
    assert_eq!(kit.state().unwrap().value(), 3);
}

#[test]
fn reading_likes_sends_nothing() {
    let mut kit = CrdtTestKit::new(like_counter::Entity(LikeCounter), "post-1");
    kit.call(like_counter::like(&like(Consistency::Local)));
    let got = kit.call(like_counter::get_likes(&item()));
    assert_eq!(got.reply(), Likes { likes: 1 });
    assert_eq!(got.state_action(), None);
}

#[test]
fn likes_from_other_replicas_add_up() {
    let mut kit = CrdtTestKit::new(like_counter::Entity(LikeCounter), "post-1");
    kit.call(like_counter::like(&like(Consistency::Local)));
    kit.remote_change(|likes| {
        likes.increment(5);
    });
    let liked = kit.call(like_counter::like(&like(Consistency::Local)));
    assert_eq!(liked.reply(), Likes { likes: 7 });
    assert_eq!(
        liked.state_action().unwrap().delta(),
        Some(&wire::gcounter(1)),
        "only this replica's change goes out"
    );
}

#[test]
fn an_unknown_consistency_fails_and_changes_nothing() {
    let mut kit = CrdtTestKit::new(like_counter::Entity(LikeCounter), "post-1");
    let bad = AddLike {
        item: "post-1".into(),
        consistency: 7,
    };
    let failed = kit.call(like_counter::like(&bad));
    assert_eq!(
        failed.failure(),
        Some("unknown write consistency [7]: use LOCAL, MAJORITY or ALL")
    );
    assert_eq!(failed.state_action(), None);
    assert_eq!(kit.state().unwrap().value(), 0);
}

fn score_vote(consistency: Consistency) -> ScoreVote {
    ScoreVote {
        item: "post-1".into(),
        consistency: consistency.into(),
    }
}

#[test]
fn up_and_down_votes_move_the_score_both_ways() {
    let mut kit = CrdtTestKit::new(scores::Entity(Scores), "post-1");
    let up = kit.call(scores::up(&score_vote(Consistency::All)));
    assert_eq!(up.reply(), Score { score: 1 });
    let change = up.state_action().unwrap();
    assert_eq!(change.delta(), Some(&wire::pncounter(1)));
    assert_eq!(change.write_consistency(), WriteConsistency::All);

    for (n, (asked, expected)) in (0..).map(|n: i64| -n).zip(CONSISTENCIES) {
        let down = kit.call(scores::down(&score_vote(asked)));
        assert_eq!(down.reply(), Score { score: n });
        let change = down.state_action().unwrap();
        assert_eq!(change.delta(), Some(&wire::pncounter(-1)));
        assert_eq!(change.write_consistency(), expected, "for {asked:?}");
    }
    let got = kit.call(scores::get_score(&item()));
    assert_eq!(got.reply(), Score { score: -2 });
    assert_eq!(got.state_action(), None);
}

#[test]
fn scores_from_other_replicas_count_and_bad_votes_fail() {
    let mut kit = CrdtTestKit::new(scores::Entity(Scores), "post-1");
    kit.delta(wire::pncounter(-4)).unwrap();
    let up = kit.call(scores::up(&score_vote(Consistency::Local)));
    assert_eq!(up.reply(), Score { score: -3 });
    let bad = ScoreVote {
        item: "post-1".into(),
        consistency: -1,
    };
    let failed = kit.call(scores::down(&bad));
    assert_eq!(
        failed.failure(),
        Some("unknown write consistency [-1]: use LOCAL, MAJORITY or ALL")
    );
    assert_eq!(kit.state().unwrap().value(), -3);
}

fn ballot(in_favour: bool, consistency: Consistency) -> Ballot {
    Ballot {
        feature: "dark-mode".into(),
        in_favour,
        consistency: consistency.into(),
    }
}

fn tally(self_vote: bool, votes_for: u32, voters: u32, majority: bool) -> Tally {
    Tally {
        self_vote,
        votes_for,
        voters,
        majority,
    }
}

#[test]
fn one_node_alone_is_the_whole_vote() {
    let mut kit = CrdtTestKit::new(feature_poll::Entity(FeaturePoll), "dark-mode");
    let cast = kit.call(feature_poll::cast(&ballot(true, Consistency::Majority)));
    assert_eq!(cast.reply(), tally(true, 1, 1, true));
    let change = cast.state_action().unwrap();
    assert_eq!(
        change.delta(),
        Some(&wire::vote(true, 0, 0)),
        "a node sends its own vote only"
    );
    assert_eq!(change.write_consistency(), WriteConsistency::Majority);

    let again = kit.call(feature_poll::cast(&ballot(true, Consistency::Local)));
    assert_eq!(again.reply(), tally(true, 1, 1, true));
    assert_eq!(
        again.state_action(),
        None,
        "voting as before changes nothing"
    );
}

#[test]
fn with_three_nodes_there_are_three_voters() {
    let mut kit = CrdtTestKit::new(feature_poll::Entity(FeaturePoll), "dark-mode");
    // The proxy: two other nodes, one of them in favour.
    kit.delta(wire::vote(false, 1, 3)).unwrap();
    let got = kit.call(feature_poll::get_tally(&Feature {
        feature: "dark-mode".into(),
    }));
    assert_eq!(got.reply(), tally(false, 1, 3, false));

    let cast = kit.call(feature_poll::cast(&ballot(true, Consistency::All)));
    assert_eq!(cast.reply(), tally(true, 2, 3, true), "two of three");
    assert_eq!(
        cast.state_action().unwrap().write_consistency(),
        WriteConsistency::All
    );
    let withdrawn = kit.call(feature_poll::cast(&ballot(false, Consistency::Local)));
    assert_eq!(withdrawn.reply(), tally(false, 1, 3, false));
}

#[test]
fn a_bad_ballot_fails_and_keeps_the_vote() {
    let mut kit = CrdtTestKit::new(feature_poll::Entity(FeaturePoll), "dark-mode");
    let bad = Ballot {
        feature: "dark-mode".into(),
        in_favour: true,
        consistency: 3,
    };
    let failed = kit.call(feature_poll::cast(&bad));
    assert_eq!(
        failed.failure(),
        Some("unknown write consistency [3]: use LOCAL, MAJORITY or ALL")
    );
    assert_eq!(failed.state_action(), None);
    assert!(!kit.state().unwrap().self_vote());
}
