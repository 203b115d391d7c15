//! A CRDT whose kind is known only at run time.

use std::fmt;

use super::{
    CrdtKind, CrdtType, DeltaError, Flag, GCounter, GSet, LWWRegister, ORMap, ORSet, PNCounter,
    Vote, sealed,
};
use crate::payload::Any;
use crate::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;

/// Any CRDT, with untyped (`Any`) elements, keys and values: the state of an
/// entity that takes whatever the proxy holds, or the values of a map that
/// mixes kinds.
///
/// The kind of a `Crdt` made from a delta is the delta's.
///
/// ```
/// use cloudstate_sdk::crdt::{Crdt, CrdtKind, GCounter, ORMap};
/// use cloudstate_sdk::payload::{Any, Payload};
///
/// let mut map: ORMap<Any, Crdt> = ORMap::new();
/// map.get_or_insert_with("hits".to_owned().to_any(), || GCounter::new().into());
/// let hits = map.get_mut(&"hits".to_owned().to_any()).unwrap();
/// assert_eq!(hits.kind(), CrdtKind::GCounter);
/// hits.as_gcounter_mut().unwrap().increment(3);
/// assert_eq!(hits.as_gcounter().map(GCounter::value), Some(3));
/// assert!(hits.as_flag().is_none());
/// ```
#[derive(Clone)]
pub enum Crdt {
    /// A grow-only counter.
    GCounter(GCounter),
    /// A counter that goes up and down.
    PNCounter(PNCounter),
    /// A grow-only set.
    GSet(GSet<Any>),
    /// An observed-remove set.
    ORSet(ORSet<Any>),
    /// A last-writer-wins register.
    LWWRegister(LWWRegister<Any>),
    /// A flag that can only be enabled.
    Flag(Flag),
    /// An observed-remove map of CRDTs.
    ORMap(ORMap<Any, Crdt>),
    /// A vote of the cluster's nodes.
    Vote(Vote),
}

/// Runs `$body` on the CRDT inside any variant.
macro_rules! each {
    ($crdt:expr, $inner:ident => $body:expr) => {
        match $crdt {
            Crdt::GCounter($inner) => $body,
            Crdt::PNCounter($inner) => $body,
            Crdt::GSet($inner) => $body,
            Crdt::ORSet($inner) => $body,
            Crdt::LWWRegister($inner) => $body,
            Crdt::Flag($inner) => $body,
            Crdt::ORMap($inner) => $body,
            Crdt::Vote($inner) => $body,
        }
    };
}

macro_rules! accessors {
    ($($variant:ident($ty:ty), $as:ident, $as_mut:ident;)*) => {
        impl Crdt {
            $(
                #[doc = concat!("The ", stringify!($variant), ", if this is one.")]
                pub fn $as(&self) -> Option<&$ty> {
                    match self {
                        Self::$variant(inner) => Some(inner),
                        _ => None,
                    }
                }

                #[doc = concat!("The ", stringify!($variant), " to change, if this is one.")]
                pub fn $as_mut(&mut self) -> Option<&mut $ty> {
                    match self {
                        Self::$variant(inner) => Some(inner),
                        _ => None,
                    }
                }
            )*
        }

        $(
            impl From<$ty> for Crdt {
                fn from(inner: $ty) -> Self {
                    Self::$variant(inner)
                }
            }
        )*
    };
}

accessors! {
    GCounter(GCounter), as_gcounter, as_gcounter_mut;
    PNCounter(PNCounter), as_pncounter, as_pncounter_mut;
    GSet(GSet<Any>), as_gset, as_gset_mut;
    ORSet(ORSet<Any>), as_orset, as_orset_mut;
    LWWRegister(LWWRegister<Any>), as_lwwregister, as_lwwregister_mut;
    Flag(Flag), as_flag, as_flag_mut;
    ORMap(ORMap<Any, Crdt>), as_ormap, as_ormap_mut;
    Vote(Vote), as_vote, as_vote_mut;
}

impl Crdt {
    /// Which kind of CRDT this is.
    pub fn kind(&self) -> CrdtKind {
        each!(self, inner => inner.kind())
    }
}

impl fmt::Debug for Crdt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        each!(self, inner => fmt::Debug::fmt(inner, f))
    }
}

impl sealed::Sealed for Crdt {}

impl CrdtType for Crdt {
    fn kind(&self) -> CrdtKind {
        Crdt::kind(self)
    }

    fn from_delta(delta: &pb::CrdtDelta) -> Result<Self, DeltaError> {
        let Some(variant) = &delta.delta else {
            return Err(DeltaError::new("a CRDT delta without a value"));
        };
        Ok(match variant {
            Delta::Gcounter(_) => Self::GCounter(GCounter::from_delta(delta)?),
            Delta::Pncounter(_) => Self::PNCounter(PNCounter::from_delta(delta)?),
            Delta::Gset(_) => Self::GSet(GSet::from_delta(delta)?),
            Delta::Orset(_) => Self::ORSet(ORSet::from_delta(delta)?),
            Delta::Lwwregister(_) => Self::LWWRegister(LWWRegister::from_delta(delta)?),
            Delta::Flag(_) => Self::Flag(Flag::from_delta(delta)?),
            Delta::Ormap(_) => Self::ORMap(ORMap::from_delta(delta)?),
            Delta::Vote(_) => Self::Vote(Vote::from_delta(delta)?),
        })
    }

    fn apply_delta(&mut self, delta: &pb::CrdtDelta) -> Result<(), DeltaError> {
        each!(self, inner => inner.apply_delta(delta))
    }

    fn has_delta(&self) -> bool {
        each!(self, inner => inner.has_delta())
    }

    fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        each!(self, inner => inner.take_delta())
    }

    fn full_delta(&self) -> pb::CrdtDelta {
        each!(self, inner => inner.full_delta())
    }
}

#[cfg(test)]
mod tests {
    use super::super::delta;
    use super::*;
    use crate::payload::Payload;

    fn every_kind() -> Vec<pb::CrdtDelta> {
        let s = |v: &str| v.to_owned().to_any();
        vec![
            delta(Delta::Gcounter(pb::GCounterDelta { increment: 3 })),
            delta(Delta::Pncounter(pb::PnCounterDelta { change: -3 })),
            delta(Delta::Gset(pb::GSetDelta {
                added: vec![s("a")],
            })),
            delta(Delta::Orset(pb::OrSetDelta {
                added: vec![1i32.to_any(), s("a")],
                ..Default::default()
            })),
            delta(Delta::Lwwregister(pb::LwwRegisterDelta {
                value: Some(s("v")),
                ..Default::default()
            })),
            delta(Delta::Flag(pb::FlagDelta { value: true })),
            delta(Delta::Ormap(pb::OrMapDelta {
                added: vec![pb::OrMapEntryDelta {
                    key: Some(s("k")),
                    delta: Some(delta(Delta::Vote(pb::VoteDelta {
                        self_vote: true,
                        votes_for: 1,
                        total_voters: 2,
                    }))),
                }],
                ..Default::default()
            })),
            delta(Delta::Vote(pb::VoteDelta {
                self_vote: true,
                votes_for: 2,
                total_voters: 3,
            })),
        ]
    }

    #[test]
    fn from_delta_picks_the_kind_of_the_delta_and_keeps_the_state() {
        for d in every_kind() {
            let mut crdt = Crdt::from_delta(&d).unwrap();
            assert_eq!(Some(crdt.kind()), CrdtKind::of(&d));
            assert_eq!(crdt.full_delta(), d, "{crdt:?}");
            assert!(!crdt.has_delta());
            assert_eq!(crdt.take_delta(), None);
        }
    }

    #[test]
    fn a_delta_of_another_kind_is_refused() {
        let mut crdt = Crdt::from(Flag::new());
        let err = crdt
            .apply_delta(&delta(Delta::Gcounter(pb::GCounterDelta { increment: 1 })))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a Flag delta, got a GCounter delta"
        );
        assert!(Crdt::from_delta(&pb::CrdtDelta::default()).is_err());
    }

    #[test]
    fn a_map_of_mixed_kinds_tracks_each_value() {
        let key = |k: &str| k.to_owned().to_any();
        let mut map: ORMap<Any, Crdt> = ORMap::new();
        map.get_or_insert_with(key("f"), || Flag::new().into());
        map.get_or_insert_with(key("p"), || PNCounter::new().into());
        map.take_delta();
        map.get_mut(&key("p"))
            .and_then(Crdt::as_pncounter_mut)
            .unwrap()
            .increment(-2);
        let Some(Delta::Ormap(d)) = map.take_delta().and_then(|d| d.delta) else {
            panic!("no ORMap delta");
        };
        assert_eq!(d.updated.len(), 1);
        assert_eq!(d.updated[0].key, Some(key("p")));
        assert_eq!(
            d.updated[0].delta,
            Some(delta(Delta::Pncounter(pb::PnCounterDelta { change: -2 })))
        );
    }

    #[test]
    fn accessors_match_only_their_variant() {
        let mut crdt = Crdt::from(Vote::new());
        assert!(crdt.as_vote().is_some());
        assert!(crdt.as_vote_mut().is_some());
        assert!(crdt.as_gcounter().is_none());
        assert!(crdt.as_ormap_mut().is_none());
        assert_eq!(format!("{crdt:?}"), format!("{:?}", Vote::new()));
    }
}
