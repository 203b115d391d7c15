//! What the two sets and the map share: values keyed by the encoding of an
//! element or map key, with the keys added and removed since the last delta.

use std::collections::btree_map::{self, Entry};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::Key;
use crate::payload::Any;

/// Values keyed by their element's (or map key's) encoding, and the local
/// changes to which keys are present since the last delta was taken.
///
/// A [`GSet`](super::GSet) only ever adds; an [`ORSet`](super::ORSet) and an
/// [`ORMap`](super::ORMap) also remove and clear.
#[derive(Clone)]
pub(super) struct Store<T> {
    items: BTreeMap<Key, T>,
    /// Whether the store was cleared since the last delta was taken; `added`
    /// then holds everything added after the clear.
    cleared: bool,
    /// Keys added since the last delta.
    added: BTreeSet<Key>,
    /// Keys present before the last delta and removed (or replaced) since.
    removed: BTreeSet<Key>,
}

impl<T> Store<T> {
    pub(super) fn new() -> Self {
        Self {
            items: BTreeMap::new(),
            cleared: false,
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(super) fn contains(&self, key: &Key) -> bool {
        self.items.contains_key(key)
    }

    pub(super) fn get(&self, key: &Key) -> Option<&T> {
        self.items.get(key)
    }

    pub(super) fn get_mut(&mut self, key: &Key) -> Option<&mut T> {
        self.items.get_mut(key)
    }

    pub(super) fn values(&self) -> btree_map::Values<'_, Key, T> {
        self.items.values()
    }

    pub(super) fn values_mut(&mut self) -> btree_map::ValuesMut<'_, Key, T> {
        self.items.values_mut()
    }

    pub(super) fn iter(&self) -> btree_map::Iter<'_, Key, T> {
        self.items.iter()
    }

    pub(super) fn iter_mut(&mut self) -> btree_map::IterMut<'_, Key, T> {
        self.items.iter_mut()
    }

    /// Adds `value` under an absent `key`; `false` (and no change) when the
    /// key is present.
    pub(super) fn insert(&mut self, key: Key, value: T) -> bool {
        if self.items.contains_key(&key) {
            return false;
        }
        // Re-adding what was removed since the last delta cancels the removal.
        if !self.removed.remove(&key) {
            self.added.insert(key.clone());
        }
        self.items.insert(key, value);
        true
    }

    /// The value of `key`, created with `create` (and recorded as added)
    /// when there is none.
    pub(super) fn get_or_insert_with(&mut self, key: Key, create: impl FnOnce() -> T) -> &mut T {
        match self.items.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                self.added.insert(entry.key().clone());
                entry.insert(create())
            }
        }
    }

    /// Sets the value of `key`, returning the value it replaces; a replaced
    /// value present before the last delta is recorded as removed too.
    pub(super) fn replace(&mut self, key: Key, value: T) -> Option<T> {
        let old = self.items.insert(key.clone(), value);
        if old.is_some() && !self.added.contains(&key) {
            self.removed.insert(key.clone());
        }
        self.added.insert(key);
        old
    }

    /// Removes a present key and records it; `false` when it is absent.
    pub(super) fn remove(&mut self, key: Key) -> bool {
        if self.items.remove(&key).is_none() {
            return false;
        }
        // A key added since the last delta was never announced.
        if !self.added.remove(&key) {
            self.removed.insert(key);
        }
        true
    }

    /// Removes everything.
    ///
    /// Clearing an empty store is no change: only keys this replica has seen
    /// are removed, and it has seen none.
    pub(super) fn clear(&mut self) {
        if self.items.is_empty() {
            return;
        }
        self.items.clear();
        self.added.clear();
        self.removed.clear();
        self.cleared = true;
    }

    /// Keeps only the values for which `keep` returns `true`.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&mut T) -> bool) {
        let gone: Vec<Key> = self
            .items
            .iter_mut()
            .filter_map(|(key, value)| (!keep(value)).then(|| key.clone()))
            .collect();
        for key in gone {
            self.remove(key);
        }
    }

    /// Applies the `cleared` and `removed` parts of a proxy delta.
    ///
    /// Pending local changes to keys the proxy overrides are dropped, so the
    /// next delta describes what this replica holds. Removal is by encoding:
    /// nothing to decode.
    pub(super) fn apply_removals(&mut self, cleared: bool, removed: &[Any]) {
        if cleared {
            self.items.clear();
            self.added.clear();
            self.removed.clear();
        }
        for any in removed {
            let key = Key::from_any(any);
            self.items.remove(&key);
            self.added.remove(&key);
        }
    }

    /// Applies an element a proxy delta adds to a set: an equal element
    /// already present stays.
    pub(super) fn apply_added_element(&mut self, key: Key, value: T) {
        self.removed.remove(&key);
        self.items.entry(key).or_insert(value);
    }

    /// Applies an entry a proxy delta adds to a map: it replaces what was
    /// there, pending changes to its key included.
    pub(super) fn apply_added_entry(&mut self, key: Key, value: T) {
        self.added.remove(&key);
        self.removed.remove(&key);
        self.items.insert(key, value);
    }

    /// Whether anything was cleared, added or removed since the last delta.
    pub(super) fn has_changes(&self) -> bool {
        self.cleared || !self.added.is_empty() || !self.removed.is_empty()
    }

    /// Whether the store was cleared since the last delta; then reset.
    pub(super) fn take_cleared(&mut self) -> bool {
        std::mem::take(&mut self.cleared)
    }

    /// The keys added since the last delta; then reset.
    pub(super) fn take_added_keys(&mut self) -> BTreeSet<Key> {
        std::mem::take(&mut self.added)
    }

    /// The encodings added since the last delta; then reset.
    pub(super) fn take_added(&mut self) -> Vec<Any> {
        encodings(self.take_added_keys())
    }

    /// The encodings removed since the last delta; then reset.
    pub(super) fn take_removed(&mut self) -> Vec<Any> {
        encodings(std::mem::take(&mut self.removed))
    }

    /// Every present key's encoding.
    pub(super) fn encodings(&self) -> Vec<Any> {
        self.items.keys().map(|key| key.any().clone()).collect()
    }

    /// Writes `name{values}`, the `Debug` form of a set.
    pub(super) fn fmt_set(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        T: fmt::Debug,
    {
        f.write_str(name)?;
        f.debug_set().entries(self.items.values()).finish()
    }
}

fn encodings(keys: BTreeSet<Key>) -> Vec<Any> {
    keys.into_iter().map(Key::into_any).collect()
}

/// The surface a [`GSet`](super::GSet) and an [`ORSet`](super::ORSet) share,
/// for a set type `$set` whose only field is `elements: Store<T>`.
macro_rules! element_set {
    ($set:ident) => {
        impl<T> $set<T> {
            /// An empty set.
            pub fn new() -> Self {
                Self {
                    elements: $crate::crdt::types::store::Store::new(),
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
            pub fn iter(&self) -> $crate::crdt::types::SetIter<'_, T> {
                $crate::crdt::types::SetIter(self.elements.values())
            }
        }

        impl<T: $crate::payload::Payload> $set<T> {
            /// Adds `element`; `false` (and no change) when it is already present.
            pub fn insert(&mut self, element: T) -> bool {
                let key = $crate::crdt::types::Key::of(&element);
                self.elements.insert(key, element)
            }

            /// Whether `element` is in the set.
            pub fn contains(&self, element: &T) -> bool {
                self.elements
                    .contains(&$crate::crdt::types::Key::of(element))
            }
        }

        impl<T> ::core::default::Default for $set<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T: ::core::fmt::Debug> ::core::fmt::Debug for $set<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                self.elements.fmt_set(stringify!($set), f)
            }
        }

        impl<T: $crate::payload::Payload> ::core::iter::Extend<T> for $set<T> {
            fn extend<I: ::core::iter::IntoIterator<Item = T>>(&mut self, elements: I) {
                for element in elements {
                    self.insert(element);
                }
            }
        }

        /// A new set with these elements, all of them pending as added.
        impl<T: $crate::payload::Payload> ::core::iter::FromIterator<T> for $set<T> {
            fn from_iter<I: ::core::iter::IntoIterator<Item = T>>(elements: I) -> Self {
                let mut set = Self::new();
                set.extend(elements);
                set
            }
        }

        impl<'a, T> ::core::iter::IntoIterator for &'a $set<T> {
            type Item = &'a T;
            type IntoIter = $crate::crdt::types::SetIter<'a, T>;
            fn into_iter(self) -> Self::IntoIter {
                self.iter()
            }
        }
    };
}

pub(super) use element_set;
