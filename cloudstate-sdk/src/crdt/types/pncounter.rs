//! The counter that goes up and down.

use std::fmt;

use super::{CrdtKind, CrdtType, DeltaError, delta, sealed};
use crate::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;

/// A counter that can be incremented and decremented.
///
/// ```
/// use cloudstate_sdk::crdt::PNCounter;
///
/// let mut counter = PNCounter::new();
/// counter.increment(5);
/// assert_eq!(counter.decrement(7), -2);
/// assert_eq!(counter.value(), -2);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PNCounter {
    value: i64,
    /// The net local change since the last delta was taken.
    pending: i64,
}

impl PNCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current value.
    pub fn value(&self) -> i64 {
        self.value
    }

    /// Adds `by` (which may be negative) and returns the new value.
    ///
    /// # Panics
    /// When the value, or the change since the last delta, would overflow `i64`.
    pub fn increment(&mut self, by: i64) -> i64 {
        self.value = self
            .value
            .checked_add(by)
            .expect("PNCounter value overflows i64");
        self.pending = self
            .pending
            .checked_add(by)
            .expect("PNCounter change overflows i64");
        self.value
    }

    /// Subtracts `by` (which may be negative) and returns the new value.
    ///
    /// # Panics
    /// As [`increment`](Self::increment), and for `by == i64::MIN`.
    pub fn decrement(&mut self, by: i64) -> i64 {
        self.increment(by.checked_neg().expect("PNCounter decrement overflows i64"))
    }
}

impl fmt::Debug for PNCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PNCounter({})", self.value)
    }
}

impl sealed::Sealed for PNCounter {}

impl CrdtType for PNCounter {
    fn kind(&self) -> CrdtKind {
        CrdtKind::PNCounter
    }

    fn from_delta(delta: &pb::CrdtDelta) -> Result<Self, DeltaError> {
        let mut counter = Self::new();
        counter.apply_delta(delta)?;
        Ok(counter)
    }

    fn apply_delta(&mut self, delta: &pb::CrdtDelta) -> Result<(), DeltaError> {
        let Some(Delta::Pncounter(d)) = &delta.delta else {
            return Err(DeltaError::wrong_kind(CrdtKind::PNCounter, delta));
        };
        self.value = self.value.checked_add(d.change).ok_or_else(|| {
            DeltaError::new(format!(
                "PNCounter delta: {} + {} overflows i64",
                self.value, d.change
            ))
        })?;
        Ok(())
    }

    fn has_delta(&self) -> bool {
        self.pending != 0
    }

    fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        let change = std::mem::take(&mut self.pending);
        (change != 0).then(|| delta(Delta::Pncounter(pb::PnCounterDelta { change })))
    }

    fn full_delta(&self) -> pb::CrdtDelta {
        delta(Delta::Pncounter(pb::PnCounterDelta { change: self.value }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pncounter_delta(change: i64) -> pb::CrdtDelta {
        delta(Delta::Pncounter(pb::PnCounterDelta { change }))
    }

    #[test]
    fn changes_in_one_command_are_netted() {
        let mut counter = PNCounter::new();
        assert!(!counter.has_delta());
        counter.increment(1);
        counter.decrement(2);
        assert_eq!(counter.increment(3), 2);
        assert_eq!(counter.take_delta(), Some(pncounter_delta(2)));
        assert_eq!(counter.take_delta(), None);
    }

    #[test]
    fn a_net_change_of_zero_is_no_delta() {
        let mut counter = PNCounter::new();
        counter.increment(4);
        counter.decrement(4);
        assert!(!counter.has_delta());
        assert_eq!(counter.take_delta(), None);
        assert_eq!(counter.value(), 0);
    }

    #[test]
    fn proxy_deltas_change_the_value_only() {
        let mut counter = PNCounter::from_delta(&pncounter_delta(-7)).unwrap();
        assert_eq!(counter.value(), -7);
        assert!(!counter.has_delta());
        counter.decrement(1);
        counter.apply_delta(&pncounter_delta(10)).unwrap();
        assert_eq!(counter.value(), 2);
        assert_eq!(counter.take_delta(), Some(pncounter_delta(-1)));
    }

    #[test]
    fn full_delta_is_the_value_even_at_zero() {
        assert_eq!(PNCounter::new().full_delta(), pncounter_delta(0));
        let mut counter = PNCounter::new();
        counter.decrement(3);
        assert_eq!(counter.full_delta(), pncounter_delta(-3));
    }

    #[test]
    fn a_delta_of_another_kind_is_refused() {
        let gcounter = delta(Delta::Gcounter(pb::GCounterDelta { increment: 1 }));
        let err = PNCounter::from_delta(&gcounter).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a PNCounter delta, got a GCounter delta"
        );
    }

    #[test]
    fn debug_shows_the_value() {
        let mut counter = PNCounter::new();
        counter.decrement(3);
        assert_eq!(format!("{counter:?}"), "PNCounter(-3)");
    }
}
