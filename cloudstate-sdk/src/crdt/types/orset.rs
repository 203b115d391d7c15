//! The observed-remove set.

use std::fmt;

use super::store::{Store, element_set};
use super::{CrdtKind, CrdtType, DeltaError, Key, decode, delta, sealed};
use crate::payload::Payload;
use crate::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;

/// A set whose elements can be added and removed.
///
/// Elements are equal when their encodings are; iteration follows the order
/// of the encodings.
///
/// ```
/// use cloudstate_sdk::crdt::ORSet;
///
/// let mut set: ORSet<i64> = [1, 2, 3, 4].into_iter().collect();
/// assert!(set.remove(&2));
/// assert!(!set.remove(&2), "already gone");
/// set.retain(|n| n % 2 == 1);
/// assert_eq!(set.iter().copied().collect::<Vec<_>>(), [1, 3]);
/// set.clear();
/// assert!(set.is_empty());
/// ```
#[derive(Clone)]
pub struct ORSet<T> {
    elements: Store<T>,
}

element_set!(ORSet);

impl<T> ORSet<T> {
    /// Removes every element.
    ///
    /// Clearing an empty set is no change: only elements this replica has
    /// seen are removed, and it has seen none.
    pub fn clear(&mut self) {
        self.elements.clear();
    }

    /// Keeps only the elements for which `keep` returns `true`.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.elements.retain(|element| keep(element));
    }
}

impl<T: Payload> ORSet<T> {
    /// Removes `element`; `false` (and no change) when it is absent.
    pub fn remove(&mut self, element: &T) -> bool {
        self.elements.remove(Key::of(element))
    }
}

impl<T> sealed::Sealed for ORSet<T> {}

impl<T> CrdtType for ORSet<T>
where
    T: Payload + Clone + fmt::Debug + Send + Sync + 'static,
{
    fn kind(&self) -> CrdtKind {
        CrdtKind::ORSet
    }

    fn from_delta(delta: &pb::CrdtDelta) -> Result<Self, DeltaError> {
        let mut set = Self::new();
        set.apply_delta(delta)?;
        Ok(set)
    }

    fn apply_delta(&mut self, delta: &pb::CrdtDelta) -> Result<(), DeltaError> {
        let Some(Delta::Orset(d)) = &delta.delta else {
            return Err(DeltaError::wrong_kind(CrdtKind::ORSet, delta));
        };
        // Decode first so a bad element leaves the set unchanged.
        let added = d
            .added
            .iter()
            .map(|any| {
                Ok((
                    Key::from_any(any),
                    decode::<T>(CrdtKind::ORSet, "element", any)?,
                ))
            })
            .collect::<Result<Vec<_>, DeltaError>>()?;
        self.elements.apply_removals(d.cleared, &d.removed);
        for (key, element) in added {
            self.elements.apply_added_element(key, element);
        }
        Ok(())
    }

    fn has_delta(&self) -> bool {
        self.elements.has_changes()
    }

    fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        if !self.has_delta() {
            return None;
        }
        Some(delta(Delta::Orset(pb::OrSetDelta {
            cleared: self.elements.take_cleared(),
            removed: self.elements.take_removed(),
            added: self.elements.take_added(),
        })))
    }

    fn full_delta(&self) -> pb::CrdtDelta {
        delta(Delta::Orset(pb::OrSetDelta {
            cleared: false,
            removed: Vec::new(),
            added: self.elements.encodings(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Any;

    fn s(value: &str) -> Any {
        value.to_owned().to_any()
    }

    fn strings(values: &[&str]) -> Vec<Any> {
        values.iter().map(|v| s(v)).collect()
    }

    fn orset_delta(cleared: bool, removed: &[&str], added: &[&str]) -> pb::CrdtDelta {
        delta(Delta::Orset(pb::OrSetDelta {
            cleared,
            removed: strings(removed),
            added: strings(added),
        }))
    }

    fn set_of(values: &[&str]) -> ORSet<String> {
        ORSet::from_delta(&orset_delta(false, &[], values)).unwrap()
    }

    fn contents(set: &ORSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    #[test]
    fn re_adding_a_present_element_is_no_change() {
        let mut set = set_of(&["a"]);
        assert!(!set.insert("a".to_owned()));
        assert!(!set.has_delta());
        assert_eq!(set.take_delta(), None);
    }

    #[test]
    fn removing_an_absent_element_is_no_change() {
        let mut set = set_of(&["a"]);
        assert!(!set.remove(&"b".to_owned()));
        assert_eq!(set.take_delta(), None);
    }

    #[test]
    fn remove_then_re_add_cancels() {
        let mut set = set_of(&["a", "b"]);
        assert!(set.remove(&"a".to_owned()));
        assert!(set.insert("a".to_owned()));
        assert_eq!(set.take_delta(), None);
        assert_eq!(contents(&set), ["a", "b"]);
    }

    #[test]
    fn add_then_remove_cancels() {
        let mut set = set_of(&["a"]);
        set.insert("n".to_owned());
        set.remove(&"n".to_owned());
        assert_eq!(set.take_delta(), None);
    }

    #[test]
    fn adds_and_removes_are_recorded_once() {
        let mut set = set_of(&["a", "b", "c"]);
        set.remove(&"c".to_owned());
        set.insert("d".to_owned());
        set.insert("d".to_owned());
        set.remove(&"c".to_owned());
        assert_eq!(set.take_delta(), Some(orset_delta(false, &["c"], &["d"])));
        assert_eq!(set.take_delta(), None, "the delta resets after a take");
    }

    #[test]
    fn clear_drops_pending_changes_and_later_adds_follow() {
        let mut set = set_of(&["a", "b"]);
        set.remove(&"a".to_owned());
        set.insert("z".to_owned());
        set.clear();
        assert_eq!(set.take_delta(), Some(orset_delta(true, &[], &[])));

        let mut set = set_of(&["a", "b"]);
        set.clear();
        set.insert("x".to_owned());
        set.insert("y".to_owned());
        set.remove(&"y".to_owned());
        assert_eq!(set.take_delta(), Some(orset_delta(true, &[], &["x"])));
        assert_eq!(contents(&set), ["x"]);
    }

    #[test]
    fn clearing_an_empty_set_is_no_change() {
        let mut set: ORSet<String> = ORSet::new();
        set.clear();
        assert_eq!(set.take_delta(), None);
    }

    #[test]
    fn retain_records_the_removed_elements() {
        let mut set = set_of(&["a", "bb", "cc"]);
        set.retain(|e| e.len() == 1);
        assert_eq!(contents(&set), ["a"]);
        assert_eq!(
            set.take_delta(),
            Some(orset_delta(false, &["bb", "cc"], &[]))
        );
    }

    #[test]
    fn proxy_deltas_apply_cleared_then_removed_then_added() {
        let mut set = set_of(&["a", "b", "c"]);
        set.apply_delta(&orset_delta(true, &["x"], &["x", "y"]))
            .unwrap();
        assert_eq!(contents(&set), ["x", "y"], "added wins over removed");
        set.apply_delta(&orset_delta(false, &["y"], &["z"]))
            .unwrap();
        assert_eq!(contents(&set), ["x", "z"]);
        assert!(!set.has_delta(), "applying never creates a local delta");
    }

    #[test]
    fn proxy_deltas_override_pending_changes_to_the_same_elements() {
        let mut set = set_of(&["a", "b"]);
        set.insert("x".to_owned());
        set.remove(&"a".to_owned());
        set.apply_delta(&orset_delta(false, &["x"], &["a"]))
            .unwrap();
        assert_eq!(contents(&set), ["a", "b"]);
        assert!(!set.has_delta());
        assert_eq!(set.take_delta(), None);

        set.insert("y".to_owned());
        set.apply_delta(&orset_delta(true, &[], &[])).unwrap();
        assert_eq!(
            set.take_delta(),
            None,
            "the pending add went with the clear"
        );
    }

    #[test]
    fn full_delta_adds_everything() {
        let mut set = set_of(&["a"]);
        set.insert("b".to_owned());
        assert_eq!(set.full_delta(), orset_delta(false, &[], &["a", "b"]));
        assert_eq!(
            ORSet::<String>::new().full_delta(),
            orset_delta(false, &[], &[])
        );
    }

    #[test]
    fn an_undecodable_element_names_its_type_url_and_changes_nothing() {
        let mut set = set_of(&["a"]);
        let bad = delta(Delta::Orset(pb::OrSetDelta {
            cleared: true,
            removed: vec![],
            added: vec![true.to_any()],
        }));
        let err = set.apply_delta(&bad).unwrap_err();
        assert!(err.to_string().contains("[p.cloudstate.io/bool]"), "{err}");
        assert_eq!(contents(&set), ["a"]);
    }

    #[test]
    fn a_delta_of_another_kind_is_refused() {
        let gset = delta(Delta::Gset(pb::GSetDelta::default()));
        let err = ORSet::<String>::from_delta(&gset).unwrap_err();
        assert_eq!(err.to_string(), "expected an ORSet delta, got a GSet delta");
    }

    #[test]
    fn debug_shows_the_elements() {
        assert_eq!(format!("{:?}", set_of(&["a", "b"])), r#"ORSet{"a", "b"}"#);
    }
}
