//! The vote of the cluster's nodes.

use std::fmt;

use super::{CrdtKind, CrdtType, DeltaError, delta, sealed};
use crate::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;

/// A vote in which every node of the cluster has one boolean voice.
///
/// This node sets its own vote; the proxy counts the others and keeps the
/// totals up to date.
///
/// ```
/// use cloudstate_sdk::crdt::Vote;
///
/// let mut vote = Vote::new();
/// assert_eq!((vote.votes_for(), vote.voters()), (0, 1));
/// vote.vote(true);
/// assert!(vote.self_vote());
/// assert!(vote.is_unanimous());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Vote {
    self_vote: bool,
    votes_for: u32,
    voters: u32,
    /// Whether this node's vote differs from the one last announced.
    dirty: bool,
}

impl Vote {
    /// A vote of a one-node cluster whose node votes `false`.
    pub fn new() -> Self {
        Self {
            self_vote: false,
            votes_for: 0,
            voters: 1,
            dirty: false,
        }
    }

    /// This node's vote.
    pub fn self_vote(&self) -> bool {
        self.self_vote
    }

    /// How many nodes vote `true`.
    pub fn votes_for(&self) -> u32 {
        self.votes_for
    }

    /// How many nodes take part.
    pub fn voters(&self) -> u32 {
        self.voters
    }

    /// Sets this node's vote; no change when it votes so already.
    ///
    /// [`votes_for`](Self::votes_for) follows at once; voting back to the
    /// vote last announced cancels the change.
    pub fn vote(&mut self, vote: bool) {
        if vote == self.self_vote {
            return;
        }
        self.self_vote = vote;
        self.votes_for = if vote {
            self.votes_for.saturating_add(1)
        } else {
            self.votes_for.saturating_sub(1)
        };
        self.dirty = !self.dirty;
    }

    /// Whether at least one node votes `true`.
    pub fn is_at_least_one(&self) -> bool {
        self.votes_for > 0
    }

    /// Whether more than half of the nodes vote `true`.
    pub fn is_majority(&self) -> bool {
        u64::from(self.votes_for) * 2 > u64::from(self.voters)
    }

    /// Whether every node votes `true`.
    pub fn is_unanimous(&self) -> bool {
        self.votes_for == self.voters
    }
}

impl Default for Vote {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vote")
            .field("self_vote", &self.self_vote)
            .field("votes_for", &self.votes_for)
            .field("voters", &self.voters)
            .finish()
    }
}

impl sealed::Sealed for Vote {}

impl CrdtType for Vote {
    fn kind(&self) -> CrdtKind {
        CrdtKind::Vote
    }

    fn from_delta(delta: &pb::CrdtDelta) -> Result<Self, DeltaError> {
        let mut vote = Self::new();
        vote.apply_delta(delta)?;
        Ok(vote)
    }

    fn apply_delta(&mut self, delta: &pb::CrdtDelta) -> Result<(), DeltaError> {
        let Some(Delta::Vote(d)) = &delta.delta else {
            return Err(DeltaError::wrong_kind(CrdtKind::Vote, delta));
        };
        let count = |name: &str, n: i32| {
            u32::try_from(n).map_err(|_| DeltaError::new(format!("Vote delta with {name} {n}")))
        };
        let votes_for = count("votes_for", d.votes_for)?;
        let voters = count("total_voters", d.total_voters)?;
        // The proxy's word on all three replaces ours, this node's vote included.
        self.self_vote = d.self_vote;
        self.votes_for = votes_for;
        self.voters = voters;
        self.dirty = false;
        Ok(())
    }

    fn has_delta(&self) -> bool {
        self.dirty
    }

    fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        // Only this node's vote travels: the proxy ignores the counts.
        std::mem::take(&mut self.dirty).then(|| {
            delta(Delta::Vote(pb::VoteDelta {
                self_vote: self.self_vote,
                votes_for: 0,
                total_voters: 0,
            }))
        })
    }

    fn full_delta(&self) -> pb::CrdtDelta {
        let clamp = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        delta(Delta::Vote(pb::VoteDelta {
            self_vote: self.self_vote,
            votes_for: clamp(self.votes_for),
            total_voters: clamp(self.voters),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote_delta(self_vote: bool, votes_for: i32, total_voters: i32) -> pb::CrdtDelta {
        delta(Delta::Vote(pb::VoteDelta {
            self_vote,
            votes_for,
            total_voters,
        }))
    }

    #[test]
    fn a_new_vote_is_false_of_one_without_a_delta() {
        let mut vote = Vote::new();
        assert_eq!(
            (vote.self_vote(), vote.votes_for(), vote.voters()),
            (false, 0, 1)
        );
        assert_eq!(vote.take_delta(), None);
    }

    #[test]
    fn voting_sends_only_the_self_vote_and_counts_locally() {
        let mut vote = Vote::from_delta(&vote_delta(false, 2, 5)).unwrap();
        vote.vote(true);
        assert_eq!(vote.votes_for(), 3);
        assert_eq!(vote.take_delta(), Some(vote_delta(true, 0, 0)));
        assert_eq!(vote.take_delta(), None);
        vote.vote(true);
        assert_eq!(
            vote.take_delta(),
            None,
            "re-voting the same vote is no change"
        );
    }

    #[test]
    fn voting_back_cancels() {
        let mut vote = Vote::from_delta(&vote_delta(true, 1, 3)).unwrap();
        vote.vote(false);
        assert_eq!(vote.votes_for(), 0);
        vote.vote(true);
        assert_eq!(vote.votes_for(), 1);
        assert!(!vote.has_delta());
        assert_eq!(vote.take_delta(), None);
    }

    #[test]
    fn proxy_deltas_overwrite_all_three() {
        let mut vote = Vote::new();
        vote.apply_delta(&vote_delta(true, 3, 4)).unwrap();
        assert_eq!(
            (vote.self_vote(), vote.votes_for(), vote.voters()),
            (true, 3, 4)
        );
        assert!(!vote.has_delta());
        assert!(vote.is_majority() && vote.is_at_least_one() && !vote.is_unanimous());
        vote.apply_delta(&vote_delta(false, 0, 2)).unwrap();
        assert_eq!(
            (vote.self_vote(), vote.votes_for(), vote.voters()),
            (false, 0, 2)
        );
        assert!(!vote.is_at_least_one());
    }

    #[test]
    fn majority_is_more_than_half() {
        let majority = |f, n| {
            Vote::from_delta(&vote_delta(false, f, n))
                .unwrap()
                .is_majority()
        };
        assert!(!majority(1, 2));
        assert!(majority(2, 3));
        assert!(!majority(2, 4));
        assert!(majority(3, 4));
    }

    #[test]
    fn negative_counts_are_refused() {
        let err = Vote::from_delta(&vote_delta(false, -1, 3)).unwrap_err();
        assert!(err.to_string().contains("votes_for -1"), "{err}");
    }

    #[test]
    fn full_delta_has_all_three() {
        let mut vote = Vote::from_delta(&vote_delta(false, 1, 3)).unwrap();
        vote.vote(true);
        assert_eq!(vote.full_delta(), vote_delta(true, 2, 3));
    }

    #[test]
    fn a_delta_of_another_kind_is_refused() {
        let ormap = delta(Delta::Ormap(pb::OrMapDelta::default()));
        let err = Vote::from_delta(&ormap).unwrap_err();
        assert_eq!(err.to_string(), "expected a Vote delta, got an ORMap delta");
    }
}
