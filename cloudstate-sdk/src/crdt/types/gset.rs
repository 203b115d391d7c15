//! The grow-only set.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{CrdtKind, CrdtType, DeltaError, Key, SetIter, decode, delta, sealed};
use crate::payload::Payload;
use crate::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;

/// A set that only grows.
///
/// Elements are equal when their encodings are; iteration follows the order
/// of the encodings.
///
/// ```
/// use cloudstate_sdk::crdt::GSet;
///
/// let mut set = GSet::new();
/// assert!(set.insert("a".to_owned()));
/// assert!(!set.insert("a".to_owned()), "already present");
/// set.extend(["b".to_owned(), "c".to_owned()]);
/// assert!(set.contains(&"b".to_owned()));
/// assert_eq!(set.iter().cloned().collect::<Vec<_>>(), ["a", "b", "c"]);
/// ```
#[derive(Clone)]
pub struct GSet<T> {
    elements: BTreeMap<Key, T>,
    /// Elements added locally since the last delta was taken.
    added: BTreeSet<Key>,
}

impl<T> GSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        Self {
            elements: BTreeMap::new(),
            added: BTreeSet::new(),
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
}

impl<T: Payload> GSet<T> {
    /// Adds `element`; `false` (and no change) when it is already present.
    pub fn insert(&mut self, element: T) -> bool {
        let key = Key::of(&element);
        if self.elements.contains_key(&key) {
            return false;
        }
        self.added.insert(key.clone());
        self.elements.insert(key, element);
        true
    }

    /// Whether `element` is in the set.
    pub fn contains(&self, element: &T) -> bool {
        self.elements.contains_key(&Key::of(element))
    }
}

impl<T> Default for GSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for GSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GSet")?;
        f.debug_set().entries(self.elements.values()).finish()
    }
}

impl<T: Payload> Extend<T> for GSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, elements: I) {
        for element in elements {
            self.insert(element);
        }
    }
}

/// A new set with these elements, all of them pending as added.
impl<T: Payload> FromIterator<T> for GSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(elements: I) -> Self {
        let mut set = Self::new();
        set.extend(elements);
        set
    }
}

impl<'a, T> IntoIterator for &'a GSet<T> {
    type Item = &'a T;
    type IntoIter = SetIter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T> sealed::Sealed for GSet<T> {}

impl<T> CrdtType for GSet<T>
where
    T: Payload + Clone + fmt::Debug + Send + Sync + 'static,
{
    fn kind(&self) -> CrdtKind {
        CrdtKind::GSet
    }

    fn from_delta(delta: &pb::CrdtDelta) -> Result<Self, DeltaError> {
        let mut set = Self::new();
        set.apply_delta(delta)?;
        Ok(set)
    }

    fn apply_delta(&mut self, delta: &pb::CrdtDelta) -> Result<(), DeltaError> {
        let Some(Delta::Gset(d)) = &delta.delta else {
            return Err(DeltaError::wrong_kind(CrdtKind::GSet, delta));
        };
        // Decode everything first so a bad element leaves the set unchanged.
        let mut new = Vec::new();
        for any in &d.added {
            let key = Key::from_any(any);
            if !self.elements.contains_key(&key) {
                new.push((key, decode::<T>(CrdtKind::GSet, "element", any)?));
            }
        }
        self.elements.extend(new);
        Ok(())
    }

    fn has_delta(&self) -> bool {
        !self.added.is_empty()
    }

    fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        if self.added.is_empty() {
            return None;
        }
        let added = std::mem::take(&mut self.added)
            .into_iter()
            .map(Key::into_any)
            .collect();
        Some(delta(Delta::Gset(pb::GSetDelta { added })))
    }

    fn full_delta(&self) -> pb::CrdtDelta {
        let added = self.elements.keys().map(|k| k.any().clone()).collect();
        delta(Delta::Gset(pb::GSetDelta { added }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Any;

    fn s(value: &str) -> Any {
        value.to_owned().to_any()
    }

    fn gset_delta(added: &[&str]) -> pb::CrdtDelta {
        delta(Delta::Gset(pb::GSetDelta {
            added: added.iter().map(|v| s(v)).collect(),
        }))
    }

    #[test]
    fn only_new_elements_are_in_the_delta() {
        let mut set = GSet::from_delta(&gset_delta(&["a"])).unwrap();
        assert!(!set.has_delta());
        assert!(!set.insert("a".to_owned()), "re-adding is no change");
        assert!(!set.has_delta());
        assert!(set.insert("b".to_owned()));
        assert!(!set.insert("b".to_owned()));
        assert_eq!(set.take_delta(), Some(gset_delta(&["b"])));
        assert_eq!(set.take_delta(), None);
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn proxy_deltas_add_without_a_local_delta() {
        let mut set: GSet<String> = GSet::new();
        set.apply_delta(&gset_delta(&["x", "y", "x"])).unwrap();
        assert_eq!(set.len(), 2, "duplicates in a delta are one element");
        assert!(set.contains(&"x".to_owned()));
        assert!(!set.has_delta());
    }

    #[test]
    fn full_delta_lists_every_element() {
        let mut set = GSet::from_delta(&gset_delta(&["b"])).unwrap();
        set.insert("a".to_owned());
        assert_eq!(set.full_delta(), gset_delta(&["a", "b"]));
        assert_eq!(GSet::<String>::new().full_delta(), gset_delta(&[]));
    }

    #[test]
    fn an_undecodable_element_names_its_type_url_and_changes_nothing() {
        let mut set: GSet<String> = GSet::new();
        let bad = delta(Delta::Gset(pb::GSetDelta {
            added: vec![s("ok"), 5i64.to_any()],
        }));
        let err = set.apply_delta(&bad).unwrap_err();
        assert!(err.to_string().contains("[p.cloudstate.io/int64]"), "{err}");
        assert!(err.to_string().contains("GSet element"), "{err}");
        assert!(set.is_empty());
    }

    #[test]
    fn a_delta_of_another_kind_is_refused() {
        let orset = delta(Delta::Orset(pb::OrSetDelta::default()));
        let err = GSet::<String>::from_delta(&orset).unwrap_err();
        assert_eq!(err.to_string(), "expected a GSet delta, got an ORSet delta");
    }

    #[test]
    fn extend_and_iterate() {
        let mut set = GSet::new();
        set.extend([3i32, 1, 3]);
        assert_eq!(set.len(), 2);
        let mut seen: Vec<i32> = (&set).into_iter().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, [1, 3]);
        assert_eq!(set.iter().len(), 2);
    }

    #[test]
    fn debug_shows_the_elements() {
        let mut set = GSet::new();
        set.insert("a".to_owned());
        assert_eq!(format!("{set:?}"), r#"GSet{"a"}"#);
    }
}
