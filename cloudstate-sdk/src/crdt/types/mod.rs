//! The CRDT value types and what they share: the [`CrdtType`] trait the
//! runtime drives, [`CrdtKind`], [`DeltaError`], [`WriteConsistency`] and
//! [`Clock`].
//!
//! Each value keeps the change made locally since the last time the runtime
//! took it (its *delta*), in the minimal form the proxy expects, and applies
//! the proxy's deltas without recording them as local changes.

use std::cmp::Ordering;
use std::collections::btree_map;
use std::fmt;
use std::iter::FusedIterator;

use crate::payload::{Any, Payload, PayloadError};
use crate::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;

mod dynamic;
mod flag;
mod gcounter;
mod gset;
mod lwwregister;
mod ormap;
mod orset;
mod pncounter;
mod vote;

pub use dynamic::Crdt;
pub use flag::Flag;
pub use gcounter::GCounter;
pub use gset::GSet;
pub use lwwregister::LWWRegister;
pub use ormap::{ORMap, ORMapIter, ORMapIterMut, ORMapKeys};
pub use orset::ORSet;
pub use pncounter::PNCounter;
pub use vote::Vote;

mod sealed {
    /// Only the SDK's own CRDTs can be entity state.
    pub trait Sealed {}
}

/// A CRDT the runtime can hold as entity state or as an [`ORMap`] value.
///
/// Implemented by every type of this module; sealed. The methods are the
/// runtime's: they convert to and from the protocol's `CrdtDelta`.
pub trait CrdtType: Clone + fmt::Debug + Send + Sync + 'static + sealed::Sealed {
    /// Which of the eight CRDTs this is.
    #[doc(hidden)]
    fn kind(&self) -> CrdtKind;
    /// A new CRDT from a full-state delta (`init.delta`, an ORMap `added`
    /// entry); it has no pending delta.
    #[doc(hidden)]
    fn from_delta(delta: &pb::CrdtDelta) -> Result<Self, DeltaError>;
    /// Applies a proxy delta (protocol order); never creates a local delta.
    #[doc(hidden)]
    fn apply_delta(&mut self, delta: &pb::CrdtDelta) -> Result<(), DeltaError>;
    /// Whether there is a local change since the last [`take_delta`](Self::take_delta).
    #[doc(hidden)]
    fn has_delta(&self) -> bool;
    /// The local delta since the last take, then reset; `None` when nothing changed.
    #[doc(hidden)]
    fn take_delta(&mut self) -> Option<pb::CrdtDelta>;
    /// The whole value as a delta against an empty CRDT (ORMap `added`).
    #[doc(hidden)]
    fn full_delta(&self) -> pb::CrdtDelta;
}

/// The eight kinds of CRDT of the protocol.
///
/// ```
/// use cloudstate_sdk::crdt::{Crdt, CrdtKind, ORSet};
///
/// let crdt = Crdt::from(ORSet::new());
/// assert_eq!(crdt.kind(), CrdtKind::ORSet);
/// assert_eq!(crdt.kind().to_string(), "ORSet");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CrdtKind {
    /// A grow-only counter.
    GCounter,
    /// A counter that goes up and down.
    PNCounter,
    /// A grow-only set.
    GSet,
    /// An observed-remove set.
    ORSet,
    /// A last-writer-wins register.
    LWWRegister,
    /// A flag that can only be enabled.
    Flag,
    /// An observed-remove map of CRDTs.
    ORMap,
    /// A vote of the cluster's nodes.
    Vote,
}

impl CrdtKind {
    /// The name, e.g. `"ORSet"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GCounter => "GCounter",
            Self::PNCounter => "PNCounter",
            Self::GSet => "GSet",
            Self::ORSet => "ORSet",
            Self::LWWRegister => "LWWRegister",
            Self::Flag => "Flag",
            Self::ORMap => "ORMap",
            Self::Vote => "Vote",
        }
    }

    /// The kind of CRDT a delta is for; `None` for a delta without a value.
    pub(crate) fn of(delta: &pb::CrdtDelta) -> Option<Self> {
        Some(match delta.delta.as_ref()? {
            Delta::Gcounter(_) => Self::GCounter,
            Delta::Pncounter(_) => Self::PNCounter,
            Delta::Gset(_) => Self::GSet,
            Delta::Orset(_) => Self::ORSet,
            Delta::Lwwregister(_) => Self::LWWRegister,
            Delta::Flag(_) => Self::Flag,
            Delta::Ormap(_) => Self::ORMap,
            Delta::Vote(_) => Self::Vote,
        })
    }

    /// "a GCounter", "an ORSet": for error messages.
    fn with_article(self) -> String {
        let article = match self {
            Self::ORSet | Self::ORMap | Self::LWWRegister => "an",
            _ => "a",
        };
        format!("{article} {self}")
    }
}

impl fmt::Display for CrdtKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a delta could not be applied: a delta for another kind of CRDT, an
/// element that does not decode, a missing field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeltaError(String);

impl DeltaError {
    /// An error with this message.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// A delta of another kind than `expected` (or of none).
    pub(crate) fn wrong_kind(expected: CrdtKind, delta: &pb::CrdtDelta) -> Self {
        let got = CrdtKind::of(delta).map_or_else(|| "an empty".to_owned(), CrdtKind::with_article);
        Self(format!(
            "expected {} delta, got {got} delta",
            expected.with_article()
        ))
    }

    /// A payload inside a delta of `kind` that does not decode.
    pub(crate) fn payload(kind: CrdtKind, what: &str, any: &Any, error: &PayloadError) -> Self {
        Self(format!(
            "cannot decode the {kind} {what} with type URL [{}]: {error}",
            any.type_url
        ))
    }
}

/// How many replicas must confirm a command's change before the proxy
/// replies.
///
/// ```
/// use cloudstate_sdk::crdt::WriteConsistency;
///
/// assert_eq!(WriteConsistency::default(), WriteConsistency::Local);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WriteConsistency {
    /// This node only (the default).
    #[default]
    Local,
    /// A majority of the nodes.
    Majority,
    /// All nodes.
    All,
}

impl WriteConsistency {
    /// The protocol's `CrdtWriteConsistency` number.
    pub(crate) fn to_wire(self) -> i32 {
        pb::CrdtWriteConsistency::from(self) as i32
    }
}

impl From<WriteConsistency> for pb::CrdtWriteConsistency {
    fn from(value: WriteConsistency) -> Self {
        match value {
            WriteConsistency::Local => Self::Local,
            WriteConsistency::Majority => Self::Majority,
            WriteConsistency::All => Self::All,
        }
    }
}

/// The clock an [`LWWRegister`] write is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Clock {
    /// The proxy's wall clock: the last write wins.
    #[default]
    Default,
    /// The wall clock inverted: the first write wins.
    Reverse,
    /// This value as the clock.
    Custom(i64),
    /// This value as the clock, raised past the current value's clock when
    /// it is not newer, so the write always wins.
    CustomAutoIncrement(i64),
}

impl Clock {
    /// The protocol's `(CrdtClock, custom_clock_value)` pair.
    pub(crate) fn to_wire(self) -> (i32, i64) {
        let (clock, custom) = match self {
            Self::Default => (pb::CrdtClock::Default, 0),
            Self::Reverse => (pb::CrdtClock::Reverse, 0),
            Self::Custom(value) => (pb::CrdtClock::Custom, value),
            Self::CustomAutoIncrement(value) => (pb::CrdtClock::CustomAutoIncrement, value),
        };
        (clock as i32, custom)
    }
}

/// An element, key or value as its encoding: CRDT equality is byte
/// equality of the encoded `Any`, and the order of the bytes gives a
/// deterministic iteration order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key(Any);

impl Key {
    pub(crate) fn of<T: Payload>(value: &T) -> Self {
        Self(value.to_any())
    }

    pub(crate) fn from_any(any: &Any) -> Self {
        Self(any.clone())
    }

    pub(crate) fn any(&self) -> &Any {
        &self.0
    }

    pub(crate) fn into_any(self) -> Any {
        self.0
    }
}

/// The elements of a [`GSet`] or an [`ORSet`], in the order of their
/// encodings; see [`GSet::iter`].
pub struct SetIter<'a, T>(btree_map::Values<'a, Key, T>);

impl<'a, T> Iterator for SetIter<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<T> DoubleEndedIterator for SetIter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

impl<T> ExactSizeIterator for SetIter<'_, T> {}
impl<T> FusedIterator for SetIter<'_, T> {}

impl<T> Clone for SetIter<'_, T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: fmt::Debug> fmt::Debug for SetIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.0.type_url, &self.0.value).cmp(&(&other.0.type_url, &other.0.value))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Decodes a payload of a `kind` delta, naming it on failure.
pub(crate) fn decode<T: Payload>(kind: CrdtKind, what: &str, any: &Any) -> Result<T, DeltaError> {
    T::from_any(any).map_err(|error| DeltaError::payload(kind, what, any, &error))
}

/// Wraps one delta variant.
pub(crate) fn delta(delta: Delta) -> pb::CrdtDelta {
    pb::CrdtDelta { delta: Some(delta) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_kind_names_both_kinds() {
        let orset = delta(Delta::Orset(pb::OrSetDelta::default()));
        assert_eq!(
            DeltaError::wrong_kind(CrdtKind::GCounter, &orset).to_string(),
            "expected a GCounter delta, got an ORSet delta"
        );
        let empty = pb::CrdtDelta::default();
        assert_eq!(
            DeltaError::wrong_kind(CrdtKind::LWWRegister, &empty).to_string(),
            "expected an LWWRegister delta, got an empty delta"
        );
    }

    #[test]
    fn kind_of_delta_matches_display() {
        let deltas = [
            (Delta::Gcounter(Default::default()), "GCounter"),
            (Delta::Pncounter(Default::default()), "PNCounter"),
            (Delta::Gset(Default::default()), "GSet"),
            (Delta::Orset(Default::default()), "ORSet"),
            (Delta::Lwwregister(Default::default()), "LWWRegister"),
            (Delta::Flag(Default::default()), "Flag"),
            (Delta::Ormap(Default::default()), "ORMap"),
            (Delta::Vote(Default::default()), "Vote"),
        ];
        for (d, name) in deltas {
            assert_eq!(CrdtKind::of(&delta(d)).unwrap().to_string(), name);
        }
        assert_eq!(CrdtKind::of(&pb::CrdtDelta::default()), None);
    }

    #[test]
    fn write_consistency_maps_to_wire_numbers() {
        assert_eq!(WriteConsistency::default().to_wire(), 0);
        assert_eq!(WriteConsistency::Majority.to_wire(), 1);
        assert_eq!(WriteConsistency::All.to_wire(), 2);
    }

    #[test]
    fn clock_maps_to_wire_pairs() {
        assert_eq!(Clock::default().to_wire(), (0, 0));
        assert_eq!(Clock::Reverse.to_wire(), (1, 0));
        assert_eq!(Clock::Custom(-5).to_wire(), (2, -5));
        assert_eq!(Clock::CustomAutoIncrement(9).to_wire(), (3, 9));
    }

    #[test]
    fn keys_are_ordered_by_encoding() {
        let a = Key::of(&"a".to_owned());
        let b = Key::of(&"b".to_owned());
        let one = Key::of(&1i64);
        assert!(a < b);
        assert!(
            one < a,
            "p.cloudstate.io/int64 sorts before p.cloudstate.io/string"
        );
        assert_eq!(a, Key::from_any(&"a".to_owned().to_any()));
    }
}
