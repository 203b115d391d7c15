//! The last-writer-wins register.

use std::fmt;

use super::{Clock, CrdtKind, CrdtType, DeltaError, Key, decode, delta, sealed};
use crate::payload::Payload;
use crate::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;

/// A single value; concurrent writes are ordered by a [`Clock`].
///
/// A register made with [`new`](Self::new) announces its initial value with
/// the first reply of its entity.
///
/// ```
/// use cloudstate_sdk::crdt::{Clock, LWWRegister};
///
/// let mut register = LWWRegister::new(String::new());
/// register.set("one".to_owned());
/// register.set_with_clock("two".to_owned(), Clock::Custom(7));
/// assert_eq!(register.get(), "two");
/// ```
#[derive(Clone)]
pub struct LWWRegister<T> {
    value: T,
    /// The encoding of `value`, to compare writes with.
    key: Key,
    /// Whether the value was written since the last delta was taken.
    dirty: bool,
    /// The clock of the pending write; `Default` otherwise.
    clock: Clock,
}

impl<T: Payload> LWWRegister<T> {
    /// A register holding `value`, with that value pending as its first delta.
    pub fn new(value: T) -> Self {
        Self {
            key: Key::of(&value),
            value,
            dirty: true,
            clock: Clock::Default,
        }
    }

    /// Writes `value` with the proxy's wall clock.
    pub fn set(&mut self, value: T) {
        self.set_with_clock(value, Clock::Default);
    }

    /// Writes `value` with `clock`.
    ///
    /// Writing the value the register holds with the clock of the pending
    /// write is no change; a different clock is.
    pub fn set_with_clock(&mut self, value: T, clock: Clock) {
        let key = Key::of(&value);
        if key == self.key && clock == self.clock {
            return;
        }
        self.value = value;
        self.key = key;
        self.clock = clock;
        self.dirty = true;
    }
}

impl<T> LWWRegister<T> {
    /// The current value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The current value, consuming the register.
    pub fn into_inner(self) -> T {
        self.value
    }

    fn wire_delta(&self) -> pb::CrdtDelta {
        let (clock, custom_clock_value) = self.clock.to_wire();
        delta(Delta::Lwwregister(pb::LwwRegisterDelta {
            value: Some(self.key.any().clone()),
            clock,
            custom_clock_value,
        }))
    }
}

impl<T: fmt::Debug> fmt::Debug for LWWRegister<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LWWRegister").field(&self.value).finish()
    }
}

impl<T> sealed::Sealed for LWWRegister<T> {}

impl<T> CrdtType for LWWRegister<T>
where
    T: Payload + Clone + fmt::Debug + Send + Sync + 'static,
{
    fn kind(&self) -> CrdtKind {
        CrdtKind::LWWRegister
    }

    fn from_delta(delta: &pb::CrdtDelta) -> Result<Self, DeltaError> {
        let (key, value) = decode_value(delta)?;
        Ok(Self {
            value,
            key,
            dirty: false,
            clock: Clock::Default,
        })
    }

    fn apply_delta(&mut self, delta: &pb::CrdtDelta) -> Result<(), DeltaError> {
        let (key, value) = decode_value(delta)?;
        // The proxy's value is the winner: a pending local write is dropped.
        self.value = value;
        self.key = key;
        self.dirty = false;
        self.clock = Clock::Default;
        Ok(())
    }

    fn has_delta(&self) -> bool {
        self.dirty
    }

    fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        if !self.dirty {
            return None;
        }
        let delta = self.wire_delta();
        self.dirty = false;
        self.clock = Clock::Default;
        Some(delta)
    }

    fn full_delta(&self) -> pb::CrdtDelta {
        // The clock is the pending write's, `Default` when there is none.
        self.wire_delta()
    }
}

fn decode_value<T: Payload>(delta: &pb::CrdtDelta) -> Result<(Key, T), DeltaError> {
    let Some(Delta::Lwwregister(d)) = &delta.delta else {
        return Err(DeltaError::wrong_kind(CrdtKind::LWWRegister, delta));
    };
    let any = d
        .value
        .as_ref()
        .ok_or_else(|| DeltaError::new("LWWRegister delta without a value"))?;
    let value = decode(CrdtKind::LWWRegister, "value", any)?;
    Ok((Key::from_any(any), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Any;

    fn lww_delta(value: &str, clock: Clock) -> pb::CrdtDelta {
        let (clock, custom_clock_value) = clock.to_wire();
        delta(Delta::Lwwregister(pb::LwwRegisterDelta {
            value: Some(value.to_owned().to_any()),
            clock,
            custom_clock_value,
        }))
    }

    #[test]
    fn a_new_register_has_its_creation_delta() {
        let mut register = LWWRegister::new(String::new());
        assert!(register.has_delta());
        assert_eq!(register.take_delta(), Some(lww_delta("", Clock::Default)));
        assert_eq!(register.take_delta(), None);
    }

    #[test]
    fn a_register_from_a_delta_has_none() {
        let mut register =
            LWWRegister::<String>::from_delta(&lww_delta("one", Clock::Default)).unwrap();
        assert_eq!(register.get(), "one");
        assert_eq!(register.take_delta(), None);
    }

    #[test]
    fn setting_the_same_value_is_no_change() {
        let mut register =
            LWWRegister::<String>::from_delta(&lww_delta("a", Clock::Default)).unwrap();
        register.set("a".to_owned());
        assert_eq!(register.take_delta(), None);
    }

    #[test]
    fn the_same_value_with_another_clock_is_a_change() {
        let mut register =
            LWWRegister::<String>::from_delta(&lww_delta("a", Clock::Default)).unwrap();
        register.set_with_clock("a".to_owned(), Clock::Reverse);
        assert_eq!(register.take_delta(), Some(lww_delta("a", Clock::Reverse)));
        // The pending clock reset after the take, so Reverse is again a change.
        register.set_with_clock("a".to_owned(), Clock::Reverse);
        assert_eq!(register.take_delta(), Some(lww_delta("a", Clock::Reverse)));
        register.set_with_clock("a".to_owned(), Clock::Custom(123));
        register.set_with_clock("a".to_owned(), Clock::Custom(123));
        assert_eq!(
            register.take_delta(),
            Some(lww_delta("a", Clock::Custom(123)))
        );
        register.set_with_clock("a".to_owned(), Clock::CustomAutoIncrement(456));
        assert_eq!(
            register.take_delta(),
            Some(lww_delta("a", Clock::CustomAutoIncrement(456)))
        );
        register.set("a".to_owned());
        assert_eq!(register.take_delta(), None, "the clock reset to Default");
    }

    #[test]
    fn the_last_write_of_a_command_is_the_delta() {
        let mut register = LWWRegister::new("x".to_owned());
        register.take_delta();
        register.set_with_clock("y".to_owned(), Clock::Custom(1));
        register.set("z".to_owned());
        assert_eq!(register.take_delta(), Some(lww_delta("z", Clock::Default)));
    }

    #[test]
    fn a_proxy_delta_replaces_the_value_and_drops_the_pending_write() {
        let mut register = LWWRegister::new("mine".to_owned());
        register.set_with_clock("mine too".to_owned(), Clock::Custom(9));
        register
            .apply_delta(&lww_delta("theirs", Clock::Default))
            .unwrap();
        assert_eq!(register.get(), "theirs");
        assert_eq!(register.take_delta(), None);
        assert_eq!(register.full_delta(), lww_delta("theirs", Clock::Default));
    }

    #[test]
    fn full_delta_carries_the_pending_clock() {
        let mut register = LWWRegister::new(1i32);
        register.set_with_clock(2, Clock::Custom(5));
        let Some(Delta::Lwwregister(d)) = register.full_delta().delta else {
            panic!("not an LWWRegister delta");
        };
        assert_eq!(d.value, Some(2i32.to_any()));
        assert_eq!((d.clock, d.custom_clock_value), Clock::Custom(5).to_wire());
    }

    #[test]
    fn a_delta_without_a_value_or_of_another_type_is_refused() {
        let empty = delta(Delta::Lwwregister(pb::LwwRegisterDelta::default()));
        let err = LWWRegister::<String>::from_delta(&empty).unwrap_err();
        assert!(err.to_string().contains("without a value"), "{err}");
        let wrong = delta(Delta::Lwwregister(pb::LwwRegisterDelta {
            value: Some(Any {
                type_url: "p.cloudstate.io/int32".into(),
                value: vec![],
            }),
            ..Default::default()
        }));
        let err = LWWRegister::<String>::from_delta(&wrong).unwrap_err();
        assert!(err.to_string().contains("[p.cloudstate.io/int32]"), "{err}");
        let flag = delta(Delta::Flag(pb::FlagDelta::default()));
        let err = LWWRegister::<String>::from_delta(&flag).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected an LWWRegister delta, got a Flag delta"
        );
    }

    #[test]
    fn debug_shows_the_value() {
        assert_eq!(
            format!("{:?}", LWWRegister::new("v".to_owned())),
            r#"LWWRegister("v")"#
        );
    }
}
