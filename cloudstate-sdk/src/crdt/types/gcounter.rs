//! The grow-only counter.

use std::fmt;

use super::{CrdtKind, CrdtType, DeltaError, delta, sealed};
use crate::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;

/// A counter that only grows.
///
/// ```
/// use cloudstate_sdk::crdt::GCounter;
///
/// let mut counter = GCounter::new();
/// counter.increment(2);
/// assert_eq!(counter.increment(3), 5);
/// assert_eq!(counter.value(), 5);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GCounter {
    value: u64,
    /// The local increments since the last delta was taken.
    pending: u64,
}

impl GCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current value.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// Adds `by` and returns the new value.
    ///
    /// # Panics
    /// When the value would overflow `u64`.
    pub fn increment(&mut self, by: u64) -> u64 {
        self.value = self
            .value
            .checked_add(by)
            .expect("GCounter value overflows u64");
        self.pending += by;
        self.value
    }
}

impl fmt::Debug for GCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GCounter({})", self.value)
    }
}

impl sealed::Sealed for GCounter {}

impl CrdtType for GCounter {
    fn kind(&self) -> CrdtKind {
        CrdtKind::GCounter
    }

    fn from_delta(delta: &pb::CrdtDelta) -> Result<Self, DeltaError> {
        let mut counter = Self::new();
        counter.apply_delta(delta)?;
        Ok(counter)
    }

    fn apply_delta(&mut self, delta: &pb::CrdtDelta) -> Result<(), DeltaError> {
        let Some(Delta::Gcounter(d)) = &delta.delta else {
            return Err(DeltaError::wrong_kind(CrdtKind::GCounter, delta));
        };
        self.value = self.value.checked_add(d.increment).ok_or_else(|| {
            DeltaError::new(format!(
                "GCounter delta: {} + {} overflows u64",
                self.value, d.increment
            ))
        })?;
        Ok(())
    }

    fn has_delta(&self) -> bool {
        self.pending != 0
    }

    fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        let increment = std::mem::take(&mut self.pending);
        (increment != 0).then(|| delta(Delta::Gcounter(pb::GCounterDelta { increment })))
    }

    fn full_delta(&self) -> pb::CrdtDelta {
        delta(Delta::Gcounter(pb::GCounterDelta {
            increment: self.value,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcounter_delta(increment: u64) -> pb::CrdtDelta {
        delta(Delta::Gcounter(pb::GCounterDelta { increment }))
    }

    #[test]
    fn increments_in_one_command_are_summed() {
        let mut counter = GCounter::new();
        assert!(!counter.has_delta(), "a new counter has no delta");
        counter.increment(1);
        counter.increment(2);
        assert_eq!(counter.increment(3), 6);
        assert!(counter.has_delta());
        assert_eq!(counter.take_delta(), Some(gcounter_delta(6)));
        assert_eq!(counter.take_delta(), None, "the delta resets after a take");
        assert_eq!(counter.value(), 6);
    }

    #[test]
    fn incrementing_by_zero_is_no_change() {
        let mut counter = GCounter::new();
        assert_eq!(counter.increment(0), 0);
        assert!(!counter.has_delta());
        assert_eq!(counter.take_delta(), None);
    }

    #[test]
    fn proxy_deltas_add_without_a_local_delta() {
        let mut counter = GCounter::from_delta(&gcounter_delta(10)).unwrap();
        assert_eq!(counter.value(), 10);
        assert!(!counter.has_delta());
        counter.increment(5);
        counter.apply_delta(&gcounter_delta(7)).unwrap();
        assert_eq!(counter.value(), 22);
        assert_eq!(counter.take_delta(), Some(gcounter_delta(5)));
    }

    #[test]
    fn full_delta_is_the_value() {
        let mut counter = GCounter::from_delta(&gcounter_delta(4)).unwrap();
        counter.increment(3);
        assert_eq!(counter.full_delta(), gcounter_delta(7));
    }

    #[test]
    fn a_delta_of_another_kind_is_refused() {
        let mut counter = GCounter::new();
        let flag = delta(Delta::Flag(pb::FlagDelta { value: true }));
        let err = counter.apply_delta(&flag).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a GCounter delta, got a Flag delta"
        );
        assert!(GCounter::from_delta(&pb::CrdtDelta::default()).is_err());
    }

    #[test]
    fn an_overflowing_proxy_delta_is_an_error() {
        let mut counter = GCounter::from_delta(&gcounter_delta(u64::MAX)).unwrap();
        let err = counter.apply_delta(&gcounter_delta(1)).unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
        assert_eq!(counter.value(), u64::MAX, "a failed delta changes nothing");
    }

    #[test]
    fn debug_shows_the_value() {
        let mut counter = GCounter::new();
        counter.increment(3);
        assert_eq!(format!("{counter:?}"), "GCounter(3)");
    }
}
