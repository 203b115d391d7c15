//! The flag that can only be enabled.

use std::fmt;

use super::{CrdtKind, CrdtType, DeltaError, delta, sealed};
use crate::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;

/// A boolean that starts disabled and, once enabled, stays enabled.
///
/// ```
/// use cloudstate_sdk::crdt::Flag;
///
/// let mut flag = Flag::new();
/// assert!(!flag.is_enabled());
/// flag.enable();
/// assert!(flag.is_enabled());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Flag {
    enabled: bool,
    /// Whether it was enabled locally since the last delta was taken.
    dirty: bool,
}

impl Flag {
    /// A disabled flag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the flag is enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Enables the flag; no change when it is enabled already.
    pub fn enable(&mut self) {
        if !self.enabled {
            self.enabled = true;
            self.dirty = true;
        }
    }
}

impl fmt::Debug for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flag({})", self.enabled)
    }
}

impl sealed::Sealed for Flag {}

impl CrdtType for Flag {
    fn kind(&self) -> CrdtKind {
        CrdtKind::Flag
    }

    fn from_delta(delta: &pb::CrdtDelta) -> Result<Self, DeltaError> {
        let mut flag = Self::new();
        flag.apply_delta(delta)?;
        Ok(flag)
    }

    fn apply_delta(&mut self, delta: &pb::CrdtDelta) -> Result<(), DeltaError> {
        let Some(Delta::Flag(d)) = &delta.delta else {
            return Err(DeltaError::wrong_kind(CrdtKind::Flag, delta));
        };
        // A `false` delta is a no-op: a flag never goes back.
        self.enabled |= d.value;
        Ok(())
    }

    fn has_delta(&self) -> bool {
        self.dirty
    }

    fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        std::mem::take(&mut self.dirty).then(|| delta(Delta::Flag(pb::FlagDelta { value: true })))
    }

    fn full_delta(&self) -> pb::CrdtDelta {
        delta(Delta::Flag(pb::FlagDelta {
            value: self.enabled,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag_delta(value: bool) -> pb::CrdtDelta {
        delta(Delta::Flag(pb::FlagDelta { value }))
    }

    #[test]
    fn enabling_produces_one_true_delta() {
        let mut flag = Flag::new();
        assert!(!flag.has_delta(), "a new flag has no delta");
        flag.enable();
        flag.enable();
        assert_eq!(flag.take_delta(), Some(flag_delta(true)));
        flag.enable();
        assert_eq!(
            flag.take_delta(),
            None,
            "enabling an enabled flag is no change"
        );
    }

    #[test]
    fn proxy_deltas_enable_and_false_is_a_no_op() {
        let mut flag = Flag::from_delta(&flag_delta(false)).unwrap();
        assert!(!flag.is_enabled());
        flag.apply_delta(&flag_delta(true)).unwrap();
        assert!(flag.is_enabled());
        flag.apply_delta(&flag_delta(false)).unwrap();
        assert!(flag.is_enabled(), "a flag never goes back");
        assert_eq!(flag.take_delta(), None);
        flag.enable();
        assert_eq!(flag.take_delta(), None, "enabled by the proxy already");
    }

    #[test]
    fn full_delta_is_the_state() {
        assert_eq!(Flag::new().full_delta(), flag_delta(false));
        let mut flag = Flag::new();
        flag.enable();
        assert_eq!(flag.full_delta(), flag_delta(true));
    }

    #[test]
    fn a_delta_of_another_kind_is_refused() {
        let vote = delta(Delta::Vote(pb::VoteDelta::default()));
        let err = Flag::new().apply_delta(&vote).unwrap_err();
        assert_eq!(err.to_string(), "expected a Flag delta, got a Vote delta");
    }

    #[test]
    fn debug_shows_the_state() {
        assert_eq!(format!("{:?}", Flag::new()), "Flag(false)");
    }
}
