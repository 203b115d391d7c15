//! The observed-remove set.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{CrdtKind, CrdtType, DeltaError, Key, SetIter, decode, delta, sealed};
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
    elements: BTreeMap<Key, T>,
    /// Whether the set was cleared since the last delta was taken; `added`
    /// then holds everything added after the clear.
    cleared: bool,
    /// Added since the last delta and not present before.
    added: BTreeSet<Key>,
    /// Present before the last delta and removed since.
    removed: BTreeSet<Key>,
}

impl<T> ORSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        Self {
            elements: BTreeMap::new(),
            cleared: false,
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the set has no elements.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The elements, in the order of their encodings.
    pub fn iter(&self) -> SetIter<'_, T> {
        SetIter(self.elements.values())
    }

    /// Removes every element.
    ///
    /// Clearing an empty set is no change: only elements this replica has
    /// seen are removed, and it has seen none.
    pub fn clear(&mut self) {
        if self.elements.is_empty() {
            return;
        }
        self.elements.clear();
        self.added.clear();
        self.removed.clear();
        self.cleared = true;
    }

    /// Keeps only the elements for which `keep` returns `true`.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let gone: Vec<Key> = self
            .elements
            .iter()
            .filter(|(_, element)| !keep(element))
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            self.remove_key(key);
        }
    }

    /// Removes a present element and records it.
    fn remove_key(&mut self, key: Key) -> bool {
        if self.elements.remove(&key).is_none() {
            return false;
        }
        // An element added since the last delta was never announced.
        if !self.added.remove(&key) {
            self.removed.insert(key);
        }
        true
    }
}

impl<T: Payload> ORSet<T> {
    /// Adds `element`; `false` (and no change) when it is already present.
    pub fn insert(&mut self, element: T) -> bool {
        let key = Key::of(&element);
        if self.elements.contains_key(&key) {
            return false;
        }
        // Re-adding what was removed since the last delta cancels the removal.
        if !self.removed.remove(&key) {
            self.added.insert(key.clone());
        }
        self.elements.insert(key, element);
        true
    }

    /// Removes `element`; `false` (and no change) when it is absent.
    pub fn remove(&mut self, element: &T) -> bool {
        self.remove_key(Key::of(element))
    }

    /// Whether `element` is in the set.
    pub fn contains(&self, element: &T) -> bool {
        self.elements.contains_key(&Key::of(element))
    }
}

impl<T> Default for ORSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for ORSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ORSet")?;
        f.debug_set().entries(self.elements.values()).finish()
    }
}

impl<T: Payload> Extend<T> for ORSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, elements: I) {
        for element in elements {
            self.insert(element);
        }
    }
}

/// A new set with these elements, all of them pending as added.
impl<T: Payload> FromIterator<T> for ORSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(elements: I) -> Self {
        let mut set = Self::new();
        set.extend(elements);
        set
    }
}

impl<'a, T> IntoIterator for &'a ORSet<T> {
    type Item = &'a T;
    type IntoIter = SetIter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
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
        // Pending local changes to elements the proxy overrides are dropped,
        // so the next delta describes the value this replica holds.
        if d.cleared {
            self.elements.clear();
            self.added.clear();
            self.removed.clear();
        }
        // Removal is by encoding: nothing to decode.
        for any in &d.removed {
            let key = Key::from_any(any);
            self.elements.remove(&key);
            self.added.remove(&key);
        }
        for (key, element) in added {
            self.removed.remove(&key);
            self.elements.entry(key).or_insert(element);
        }
        Ok(())
    }

    fn has_delta(&self) -> bool {
        self.cleared || !self.added.is_empty() || !self.removed.is_empty()
    }

    fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        if !self.has_delta() {
            return None;
        }
        let keys = |set: &mut BTreeSet<Key>| -> Vec<_> {
            std::mem::take(set).into_iter().map(Key::into_any).collect()
        };
        Some(delta(Delta::Orset(pb::OrSetDelta {
            cleared: std::mem::take(&mut self.cleared),
            removed: keys(&mut self.removed),
            added: keys(&mut self.added),
        })))
    }

    fn full_delta(&self) -> pb::CrdtDelta {
        delta(Delta::Orset(pb::OrSetDelta {
            cleared: false,
            removed: Vec::new(),
            added: self.elements.keys().map(|k| k.any().clone()).collect(),
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
