//! Counters as CRDT entities: likes, up and down votes, and a poll of the
//! proxy's nodes, each change with the write consistency its caller asks for.
//!
//! `build.rs` declares three CRDT entities and fixes each one's CRDT:
//!
//! - **`LikeCounter`**, a [`GCounter`] per item: likes only ever grow.
//! - **`Scores`**, a [`PNCounter`] per item: up votes minus down votes.
//! - **`FeaturePoll`**, a [`Vote`] per feature: one voice per proxy node
//!   (not per user), so a cluster of N nodes has N voters.
//!
//! Every change request carries a `Consistency` (`LOCAL`, `MAJORITY` or
//! `ALL`): how many replicas must have the change before the proxy answers.

use cloudstate_sdk::crdt::{CrdtOptions, GCounter, PNCounter, Vote, WriteConsistency};
use cloudstate_sdk::{CloudState, CommandResult, Failure};

/// The generated messages, entity traits and descriptor set.
pub mod proto {
    cloudstate_sdk::include_protos!();
}

use proto::com::example::counters::{
    AddLike, Ballot, Consistency, Feature, Item, Likes, Score, ScoreVote, Tally, feature_poll,
    like_counter, scores,
};

/// Registers the three entities, with persistence ids `likes`, `scores` and
/// `polls`.
pub fn register(server: CloudState) -> CloudState {
    server
        .register(
            like_counter::Entity(LikeCounter),
            CrdtOptions::new().persistence_id("likes"),
        )
        .register(
            scores::Entity(Scores),
            CrdtOptions::new().persistence_id("scores"),
        )
        .register(
            feature_poll::Entity(FeaturePoll),
            CrdtOptions::new().persistence_id("polls"),
        )
}

/// The write consistency a request asks for. prost keeps an enum number it
/// does not know (a gRPC client's, or JSON's `"consistency": 7`) as it is.
fn write_consistency(requested: i32) -> Result<WriteConsistency, Failure> {
    match Consistency::try_from(requested) {
        Ok(Consistency::Local) => Ok(WriteConsistency::Local),
        Ok(Consistency::Majority) => Ok(WriteConsistency::Majority),
        Ok(Consistency::All) => Ok(WriteConsistency::All),
        Err(_) => Err(Failure::new(format!(
            "unknown write consistency [{requested}]: use LOCAL, MAJORITY or ALL"
        ))),
    }
}

/// Likes per item.
#[derive(Debug, Clone, Copy, Default)]
pub struct LikeCounter;

impl like_counter::LikeCounter for LikeCounter {
    fn initial_state(&self, _item: &str) -> GCounter {
        GCounter::new()
    }

    fn like(&self, like: AddLike, ctx: &mut like_counter::Context<'_>) -> CommandResult<Likes> {
        ctx.set_write_consistency(write_consistency(like.consistency)?);
        let likes = ctx.state_mut().increment(1);
        Ok(Likes { likes }.into())
    }

    fn get_likes(&self, _: Item, ctx: &mut like_counter::Context<'_>) -> CommandResult<Likes> {
        Ok(Likes {
            likes: ctx.state().value(),
        }
        .into())
    }
}

/// Up votes minus down votes, per item.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scores;

impl Scores {
    fn vote(vote: &ScoreVote, by: i64, ctx: &mut scores::Context<'_>) -> CommandResult<Score> {
        ctx.set_write_consistency(write_consistency(vote.consistency)?);
        let score = ctx.state_mut().increment(by);
        Ok(Score { score }.into())
    }
}

impl scores::Scores for Scores {
    fn initial_state(&self, _item: &str) -> PNCounter {
        PNCounter::new()
    }

    fn up(&self, vote: ScoreVote, ctx: &mut scores::Context<'_>) -> CommandResult<Score> {
        Self::vote(&vote, 1, ctx)
    }

    fn down(&self, vote: ScoreVote, ctx: &mut scores::Context<'_>) -> CommandResult<Score> {
        Self::vote(&vote, -1, ctx)
    }

    fn get_score(&self, _: Item, ctx: &mut scores::Context<'_>) -> CommandResult<Score> {
        Ok(Score {
            score: ctx.state().value(),
        }
        .into())
    }
}

/// Whether the proxy's nodes want a feature. Each node has one vote: the
/// last ballot a node served sets it.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeaturePoll;

impl feature_poll::FeaturePoll for FeaturePoll {
    fn initial_state(&self, _feature: &str) -> Vote {
        Vote::new()
    }

    fn cast(&self, ballot: Ballot, ctx: &mut feature_poll::Context<'_>) -> CommandResult<Tally> {
        ctx.set_write_consistency(write_consistency(ballot.consistency)?);
        ctx.state_mut().vote(ballot.in_favour);
        Ok(tally(ctx.state()).into())
    }

    fn get_tally(&self, _: Feature, ctx: &mut feature_poll::Context<'_>) -> CommandResult<Tally> {
        Ok(tally(ctx.state()).into())
    }
}

fn tally(vote: &Vote) -> Tally {
    Tally {
        self_vote: vote.self_vote(),
        votes_for: vote.votes_for(),
        voters: vote.voters(),
        majority: vote.is_majority(),
    }
}

/// The requests the sample prints when it starts, with their answers, as
/// the dev proxy serves them with one replica; its tests run them through
/// the dev proxy.
#[cfg(feature = "devproxy")]
pub fn examples() -> Vec<cloudstate_devproxy::local::examples::Example> {
    use cloudstate_devproxy::local::examples::Example;
    vec![
        Example::post("/likes/post-1")
            .json(r#"{"consistency":"MAJORITY"}"#)
            .expect_json(r#"{"likes":"1"}"#),
        Example::post("/likes/post-1")
            .json("{}")
            .expect_json(r#"{"likes":"2"}"#),
        Example::get("/likes/post-1").expect_json(r#"{"likes":"2"}"#),
        Example::post("/scores/post-1/up")
            .json(r#"{"consistency":"ALL"}"#)
            .expect_json(r#"{"score":"1"}"#),
        Example::post("/scores/post-1/down")
            .json(r#"{"consistency":"LOCAL"}"#)
            .expect_json(r#"{"score":"0"}"#),
        Example::post("/scores/post-1/down")
            .json("{}")
            .expect_json(r#"{"score":"-1"}"#),
        Example::post("/polls/dark-mode/vote")
            .json(r#"{"inFavour":true,"consistency":"MAJORITY"}"#)
            .expect_json(r#"{"selfVote":true,"votesFor":1,"voters":1,"majority":true}"#),
        Example::get("/polls/dark-mode")
            .expect_json(r#"{"selfVote":true,"votesFor":1,"voters":1,"majority":true}"#),
        Example::post("/likes/post-1")
            .json(r#"{"consistency":7}"#)
            .expect_failure(
                500,
                "unknown write consistency [7]: use LOCAL, MAJORITY or ALL",
            ),
    ]
}
