//! The observed-remove map of CRDTs.

use std::collections::btree_map::{self, Entry};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::iter::FusedIterator;

use super::{CrdtKind, CrdtType, DeltaError, Key, decode, delta, sealed};
use crate::payload::Payload;
use crate::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;

/// A map from keys to CRDT values; each value merges on its own, and keys
/// are added and removed as in an [`ORSet`](super::ORSet).
///
/// Keys are equal when their encodings are; iteration follows the order of
/// the encodings. Changes to a value (through [`get_mut`](Self::get_mut),
/// [`get_or_insert_with`](Self::get_or_insert_with) or
/// [`iter_mut`](Self::iter_mut)) are part of the map's delta.
///
/// ```
/// use cloudstate_sdk::crdt::{GCounter, ORMap};
///
/// let mut visits: ORMap<String, GCounter> = ORMap::new();
/// visits.get_or_insert_with("home".to_owned(), GCounter::new).increment(2);
/// visits.get_or_insert_with("home".to_owned(), GCounter::new).increment(1);
/// assert_eq!(visits.get(&"home".to_owned()).map(GCounter::value), Some(3));
/// assert!(visits.remove(&"home".to_owned()));
/// assert!(visits.is_empty());
/// ```
#[derive(Clone)]
pub struct ORMap<K, V> {
    entries: BTreeMap<Key, (K, V)>,
    /// Whether the map was cleared since the last delta was taken; `added`
    /// then holds everything added after the clear.
    cleared: bool,
    /// Keys whose value was created since the last delta: announced with the
    /// value's full state.
    added: BTreeSet<Key>,
    /// Keys present before the last delta whose value was removed or replaced since.
    removed: BTreeSet<Key>,
}

impl<K, V> ORMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self {
            entries: BTreeMap::new(),
            cleared: false,
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys, in the order of their encodings.
    pub fn keys(&self) -> ORMapKeys<'_, K, V> {
        ORMapKeys(self.entries.values())
    }

    /// The entries, in the order of the keys' encodings.
    pub fn iter(&self) -> ORMapIter<'_, K, V> {
        ORMapIter(self.entries.values())
    }

    /// The entries with mutable values, in the order of the keys' encodings.
    pub fn iter_mut(&mut self) -> ORMapIterMut<'_, K, V> {
        ORMapIterMut(self.entries.values_mut())
    }

    /// Removes every entry.
    ///
    /// Clearing an empty map is no change: only entries this replica has
    /// seen are removed, and it has seen none.
    pub fn clear(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        self.entries.clear();
        self.added.clear();
        self.removed.clear();
        self.cleared = true;
    }

    /// Keeps only the entries for which `keep` returns `true`.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let gone: Vec<Key> = self
            .entries
            .iter_mut()
            .filter_map(|(key, (k, v))| (!keep(k, v)).then(|| key.clone()))
            .collect();
        for key in gone {
            self.remove_key(key);
        }
    }

    /// Removes a present entry and records it.
    fn remove_key(&mut self, key: Key) -> bool {
        if self.entries.remove(&key).is_none() {
            return false;
        }
        // An entry created since the last delta was never announced.
        if !self.added.remove(&key) {
            self.removed.insert(key);
        }
        true
    }
}

impl<K: Payload, V> ORMap<K, V> {
    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(&Key::of(key)).map(|(_, v)| v)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(&Key::of(key)).map(|(_, v)| v)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.entries.contains_key(&Key::of(key))
    }

    /// The value of `key`, created with `create` when there is none.
    pub fn get_or_insert_with(&mut self, key: K, create: impl FnOnce() -> V) -> &mut V {
        match self.entries.entry(Key::of(&key)) {
            Entry::Occupied(entry) => &mut entry.into_mut().1,
            Entry::Vacant(entry) => {
                self.added.insert(entry.key().clone());
                &mut entry.insert((key, create())).1
            }
        }
    }

    /// Sets the value of `key`, returning the value it replaces.
    ///
    /// A replaced value is removed and the new one added, so replicas drop
    /// the old value rather than merge the two.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let encoded = Key::of(&key);
        let old = self
            .entries
            .insert(encoded.clone(), (key, value))
            .map(|(_, v)| v);
        if old.is_some() && !self.added.contains(&encoded) {
            self.removed.insert(encoded.clone());
        }
        self.added.insert(encoded);
        old
    }

    /// Removes `key` and its value; `false` (and no change) when it is absent.
    pub fn remove(&mut self, key: &K) -> bool {
        self.remove_key(Key::of(key))
    }
}

impl<K, V> Default for ORMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for ORMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ORMap")?;
        f.debug_map()
            .entries(self.entries.values().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: Payload, V> Extend<(K, V)> for ORMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, value);
        }
    }
}

/// A new map with these entries, all of them pending as added.
impl<K: Payload, V> FromIterator<(K, V)> for ORMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut map = Self::new();
        map.extend(entries);
        map
    }
}

impl<'a, K, V> IntoIterator for &'a ORMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = ORMapIter<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, K, V> IntoIterator for &'a mut ORMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = ORMapIterMut<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// The entries of an [`ORMap`]; see [`ORMap::iter`].
pub struct ORMapIter<'a, K, V>(btree_map::Values<'a, Key, (K, V)>);

impl<'a, K, V> Iterator for ORMapIter<'a, K, V> {
    type Item = (&'a K, &'a V);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for ORMapIter<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl<K, V> ExactSizeIterator for ORMapIter<'_, K, V> {}
impl<K, V> FusedIterator for ORMapIter<'_, K, V> {}

impl<K, V> Clone for ORMapIter<'_, K, V> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for ORMapIter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// The entries of an [`ORMap`] with mutable values; see [`ORMap::iter_mut`].
pub struct ORMapIterMut<'a, K, V>(btree_map::ValuesMut<'a, Key, (K, V)>);

impl<'a, K, V> Iterator for ORMapIterMut<'a, K, V> {
    type Item = (&'a K, &'a mut V);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&*k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for ORMapIterMut<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (&*k, v))
    }
}

impl<K, V> ExactSizeIterator for ORMapIterMut<'_, K, V> {}
impl<K, V> FusedIterator for ORMapIterMut<'_, K, V> {}

impl<K, V> fmt::Debug for ORMapIterMut<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ORMapIterMut")
            .field("remaining", &self.0.len())
            .finish()
    }
}

/// The keys of an [`ORMap`]; see [`ORMap::keys`].
pub struct ORMapKeys<'a, K, V>(btree_map::Values<'a, Key, (K, V)>);

impl<'a, K, V> Iterator for ORMapKeys<'a, K, V> {
    type Item = &'a K;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, _)| k)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for ORMapKeys<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, _)| k)
    }
}

impl<K, V> ExactSizeIterator for ORMapKeys<'_, K, V> {}
impl<K, V> FusedIterator for ORMapKeys<'_, K, V> {}

impl<K, V> Clone for ORMapKeys<'_, K, V> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K: fmt::Debug, V> fmt::Debug for ORMapKeys<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl<K, V> sealed::Sealed for ORMap<K, V> {}

impl<K, V> CrdtType for ORMap<K, V>
where
    K: Payload + Clone + fmt::Debug + Send + Sync + 'static,
    V: CrdtType,
{
    fn kind(&self) -> CrdtKind {
        CrdtKind::ORMap
    }

    fn from_delta(delta: &pb::CrdtDelta) -> Result<Self, DeltaError> {
        let mut map = Self::new();
        map.apply_delta(delta)?;
        Ok(map)
    }

    /// Applies `cleared`, `removed`, `updated` and `added` in that order.
    ///
    /// Keys and new values are decoded before anything changes; an error in
    /// a nested update leaves the updates before it applied.
    fn apply_delta(&mut self, delta: &pb::CrdtDelta) -> Result<(), DeltaError> {
        let Some(Delta::Ormap(d)) = &delta.delta else {
            return Err(DeltaError::wrong_kind(CrdtKind::ORMap, delta));
        };
        let added = d
            .added
            .iter()
            .map(|entry| {
                let (any, value_delta) = entry_parts(entry, "added")?;
                let key: K = decode(CrdtKind::ORMap, "key", any)?;
                let value = V::from_delta(value_delta).map_err(|e| nested(&key, &e))?;
                Ok((Key::from_any(any), (key, value)))
            })
            .collect::<Result<Vec<_>, DeltaError>>()?;
        let updated = d
            .updated
            .iter()
            .map(|entry| {
                let (any, value_delta) = entry_parts(entry, "updated")?;
                Ok((Key::from_any(any), value_delta))
            })
            .collect::<Result<Vec<_>, DeltaError>>()?;

        // Pending local changes to entries the proxy overrides are dropped,
        // so the next delta describes the map this replica holds.
        if d.cleared {
            self.entries.clear();
            self.added.clear();
            self.removed.clear();
        }
        for any in &d.removed {
            let key = Key::from_any(any);
            self.entries.remove(&key);
            self.added.remove(&key);
        }
        for (key, value_delta) in updated {
            match self.entries.get_mut(&key) {
                Some((k, value)) => value.apply_delta(value_delta).map_err(|e| nested(k, &e))?,
                None => tracing::warn!(
                    key_type_url = %key.any().type_url,
                    "ORMap entry to update not found in the map; update ignored"
                ),
            }
        }
        // An added entry replaces what was there.
        for (key, entry) in added {
            self.added.remove(&key);
            self.removed.remove(&key);
            self.entries.insert(key, entry);
        }
        Ok(())
    }

    fn has_delta(&self) -> bool {
        self.cleared
            || !self.added.is_empty()
            || !self.removed.is_empty()
            || self.entries.values().any(|(_, v)| v.has_delta())
    }

    fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        let cleared = std::mem::take(&mut self.cleared);
        let removed: Vec<_> = std::mem::take(&mut self.removed)
            .into_iter()
            .map(Key::into_any)
            .collect();
        let added_keys = std::mem::take(&mut self.added);
        let mut added = Vec::new();
        let mut updated = Vec::new();
        for (key, (_, value)) in &mut self.entries {
            if added_keys.contains(key) {
                added.push(entry_delta(key, value.full_delta()));
                // The full state covers the value's own pending change.
                value.take_delta();
            } else if let Some(value_delta) = value.take_delta() {
                updated.push(entry_delta(key, value_delta));
            }
        }
        if !cleared && removed.is_empty() && added.is_empty() && updated.is_empty() {
            return None;
        }
        Some(delta(Delta::Ormap(pb::OrMapDelta {
            cleared,
            removed,
            updated,
            added,
        })))
    }

    fn full_delta(&self) -> pb::CrdtDelta {
        let added = self
            .entries
            .iter()
            .map(|(key, (_, value))| entry_delta(key, value.full_delta()))
            .collect();
        delta(Delta::Ormap(pb::OrMapDelta {
            cleared: false,
            removed: Vec::new(),
            updated: Vec::new(),
            added,
        }))
    }
}

fn entry_delta(key: &Key, value_delta: pb::CrdtDelta) -> pb::OrMapEntryDelta {
    pb::OrMapEntryDelta {
        key: Some(key.any().clone()),
        delta: Some(value_delta),
    }
}

fn entry_parts<'a>(
    entry: &'a pb::OrMapEntryDelta,
    list: &str,
) -> Result<(&'a crate::payload::Any, &'a pb::CrdtDelta), DeltaError> {
    match (&entry.key, &entry.delta) {
        (Some(key), Some(delta)) => Ok((key, delta)),
        (None, _) => Err(DeltaError::new(format!(
            "ORMap delta: an {list} entry without a key"
        ))),
        (Some(key), None) => Err(DeltaError::new(format!(
            "ORMap delta: the {list} entry with key type URL [{}] has no delta",
            key.type_url
        ))),
    }
}

fn nested(key: &impl fmt::Debug, error: &DeltaError) -> DeltaError {
    DeltaError::new(format!("ORMap entry {key:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{Flag, GCounter, LWWRegister, ORSet, PNCounter};
    use crate::payload::Any;

    fn s(value: &str) -> Any {
        value.to_owned().to_any()
    }

    fn entry(key: &str, value: pb::CrdtDelta) -> pb::OrMapEntryDelta {
        pb::OrMapEntryDelta {
            key: Some(s(key)),
            delta: Some(value),
        }
    }

    fn ormap_delta(
        cleared: bool,
        removed: &[&str],
        updated: Vec<pb::OrMapEntryDelta>,
        added: Vec<pb::OrMapEntryDelta>,
    ) -> pb::CrdtDelta {
        delta(Delta::Ormap(pb::OrMapDelta {
            cleared,
            removed: removed.iter().map(|k| s(k)).collect(),
            updated,
            added,
        }))
    }

    fn gcounter(increment: u64) -> pb::CrdtDelta {
        delta(Delta::Gcounter(pb::GCounterDelta { increment }))
    }

    fn pncounter(change: i64) -> pb::CrdtDelta {
        delta(Delta::Pncounter(pb::PnCounterDelta { change }))
    }

    fn counters(entries: &[(&str, u64)]) -> ORMap<String, GCounter> {
        let added = entries
            .iter()
            .map(|(k, v)| entry(k, gcounter(*v)))
            .collect();
        ORMap::from_delta(&ormap_delta(false, &[], vec![], added)).unwrap()
    }

    fn values(map: &ORMap<String, GCounter>) -> Vec<(&str, u64)> {
        map.iter().map(|(k, v)| (k.as_str(), v.value())).collect()
    }

    #[test]
    fn new_entries_carry_their_full_delta_even_when_empty() {
        let mut map: ORMap<String, PNCounter> = ORMap::new();
        map.get_or_insert_with("p".to_owned(), PNCounter::new);
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(
                false,
                &[],
                vec![],
                vec![entry("p", pncounter(0))]
            ))
        );
        let mut sets: ORMap<String, ORSet<String>> = ORMap::new();
        sets.get_or_insert_with("s".to_owned(), ORSet::new);
        let empty_orset = delta(Delta::Orset(pb::OrSetDelta::default()));
        assert_eq!(
            sets.take_delta(),
            Some(ormap_delta(
                false,
                &[],
                vec![],
                vec![entry("s", empty_orset)]
            ))
        );
        let mut flags: ORMap<String, Flag> = ORMap::new();
        flags.get_or_insert_with("f".to_owned(), Flag::new);
        let disabled = delta(Delta::Flag(pb::FlagDelta { value: false }));
        assert_eq!(
            flags.take_delta(),
            Some(ormap_delta(false, &[], vec![], vec![entry("f", disabled)]))
        );
    }

    #[test]
    fn a_new_entry_changed_in_the_same_command_is_added_once_with_its_state() {
        let mut map: ORMap<String, GCounter> = ORMap::new();
        map.get_or_insert_with("g".to_owned(), GCounter::new)
            .increment(123);
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(
                false,
                &[],
                vec![],
                vec![entry("g", gcounter(123))]
            ))
        );
        assert_eq!(map.take_delta(), None, "the nested delta was reset too");
    }

    #[test]
    fn a_new_register_is_added_with_its_value_and_not_updated_later() {
        let mut map: ORMap<String, LWWRegister<String>> = ORMap::new();
        map.get_or_insert_with("r".to_owned(), || LWWRegister::new(String::new()))
            .set("zero".to_owned());
        let Some(Delta::Ormap(d)) = map.take_delta().and_then(|d| d.delta) else {
            panic!("no ORMap delta");
        };
        assert!(d.updated.is_empty() && d.removed.is_empty());
        let value = d.added[0].delta.clone().unwrap();
        assert_eq!(
            LWWRegister::<String>::from_delta(&value).unwrap().get(),
            "zero"
        );
        assert_eq!(map.take_delta(), None);
    }

    #[test]
    fn changed_existing_entries_are_updated_with_their_nested_delta() {
        let mut map = counters(&[("a", 1), ("b", 2), ("c", 3)]);
        assert!(!map.has_delta(), "applying never creates a local delta");
        map.get_mut(&"a".to_owned()).unwrap().increment(5);
        map.get_mut(&"b".to_owned()).unwrap().increment(0);
        assert!(map.has_delta());
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(
                false,
                &[],
                vec![entry("a", gcounter(5))],
                vec![]
            ))
        );
        assert_eq!(map.take_delta(), None);
    }

    #[test]
    fn iter_mut_changes_are_tracked() {
        let mut map = counters(&[("a", 1), ("b", 2)]);
        for (_, counter) in &mut map {
            counter.increment(1);
        }
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(
                false,
                &[],
                vec![entry("a", gcounter(1)), entry("b", gcounter(1))],
                vec![]
            ))
        );
        assert_eq!(values(&map), [("a", 2), ("b", 3)]);
    }

    #[test]
    fn removing_records_existing_keys_only() {
        let mut map = counters(&[("a", 1)]);
        assert!(!map.remove(&"zz".to_owned()), "absent: no change");
        assert_eq!(map.take_delta(), None);
        map.get_mut(&"a".to_owned()).unwrap().increment(1);
        assert!(map.remove(&"a".to_owned()));
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(false, &["a"], vec![], vec![])),
            "a removed entry's nested delta goes with it"
        );
    }

    #[test]
    fn creating_then_removing_cancels() {
        let mut map = counters(&[("a", 1)]);
        map.get_or_insert_with("n".to_owned(), GCounter::new)
            .increment(1);
        assert!(map.remove(&"n".to_owned()));
        assert_eq!(map.take_delta(), None);
    }

    #[test]
    fn a_removed_then_recreated_key_is_removed_and_added() {
        let mut map = counters(&[("a", 10)]);
        map.remove(&"a".to_owned());
        map.get_or_insert_with("a".to_owned(), GCounter::new)
            .increment(1);
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(
                false,
                &["a"],
                vec![],
                vec![entry("a", gcounter(1))]
            ))
        );
    }

    #[test]
    fn replacing_a_value_puts_the_key_in_removed_and_added() {
        let mut map = counters(&[("a", 10)]);
        let old = map.insert("a".to_owned(), GCounter::new());
        assert_eq!(old.map(|c| c.value()), Some(10));
        map.insert("a".to_owned(), GCounter::new());
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(
                false,
                &["a"],
                vec![],
                vec![entry("a", gcounter(0))]
            ))
        );
        map.insert("new".to_owned(), GCounter::new());
        map.insert("new".to_owned(), GCounter::new());
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(
                false,
                &[],
                vec![],
                vec![entry("new", gcounter(0))]
            )),
            "a key created in this command is not removed"
        );
        map.insert("new".to_owned(), GCounter::new());
        map.remove(&"new".to_owned());
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(false, &["new"], vec![], vec![]))
        );
    }

    #[test]
    fn clear_is_cleared_alone_plus_later_adds() {
        let mut map = counters(&[("a", 1), ("b", 2)]);
        map.get_mut(&"a".to_owned()).unwrap().increment(1);
        map.remove(&"b".to_owned());
        map.clear();
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(true, &[], vec![], vec![]))
        );

        let mut map = counters(&[("a", 1)]);
        map.clear();
        map.get_or_insert_with("g".to_owned(), GCounter::new)
            .increment(123);
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(
                true,
                &[],
                vec![],
                vec![entry("g", gcounter(123))]
            ))
        );
    }

    #[test]
    fn clearing_an_empty_map_is_no_change() {
        let mut map: ORMap<String, Flag> = ORMap::new();
        map.clear();
        assert_eq!(map.take_delta(), None);
    }

    #[test]
    fn retain_removes_and_records() {
        let mut map = counters(&[("a", 1), ("b", 2), ("c", 3)]);
        map.retain(|_, v| v.value() % 2 == 1);
        assert_eq!(values(&map), [("a", 1), ("c", 3)]);
        assert_eq!(
            map.take_delta(),
            Some(ormap_delta(false, &["b"], vec![], vec![]))
        );
    }

    #[test]
    fn proxy_deltas_apply_cleared_removed_updated_added_in_order() {
        let mut map = counters(&[("a", 1), ("b", 2), ("c", 3)]);
        map.apply_delta(&ormap_delta(
            false,
            &["b"],
            vec![entry("a", gcounter(10)), entry("c", gcounter(1))],
            vec![entry("c", gcounter(7)), entry("d", gcounter(4))],
        ))
        .unwrap();
        assert_eq!(
            values(&map),
            [("a", 11), ("c", 7), ("d", 4)],
            "added replaces c after its update"
        );
        map.apply_delta(&ormap_delta(
            true,
            &[],
            vec![],
            vec![entry("z", gcounter(1))],
        ))
        .unwrap();
        assert_eq!(values(&map), [("z", 1)]);
        assert!(!map.has_delta());
    }

    #[test]
    fn proxy_deltas_override_pending_changes_to_the_same_keys() {
        let mut map = counters(&[("a", 1), ("b", 2)]);
        map.get_or_insert_with("n".to_owned(), GCounter::new);
        map.remove(&"a".to_owned());
        map.apply_delta(&ormap_delta(
            false,
            &["n"],
            vec![],
            vec![entry("a", gcounter(5))],
        ))
        .unwrap();
        assert_eq!(values(&map), [("a", 5), ("b", 2)]);
        assert!(!map.has_delta());
        assert_eq!(map.take_delta(), None);

        map.insert("c".to_owned(), GCounter::new());
        map.apply_delta(&ormap_delta(true, &[], vec![], vec![]))
            .unwrap();
        assert!(!map.has_delta(), "the pending entry went with the clear");
    }

    #[test]
    fn an_update_for_a_missing_key_is_ignored() {
        let mut map = counters(&[("a", 1)]);
        map.apply_delta(&ormap_delta(
            false,
            &[],
            vec![entry("x", gcounter(5))],
            vec![],
        ))
        .unwrap();
        assert_eq!(values(&map), [("a", 1)]);
        assert!(!map.has_delta());
    }

    #[test]
    fn a_removed_and_updated_key_is_not_resurrected() {
        let mut map = counters(&[("a", 1)]);
        map.apply_delta(&ormap_delta(
            false,
            &["a"],
            vec![entry("a", gcounter(5))],
            vec![],
        ))
        .unwrap();
        assert!(map.is_empty());
    }

    #[test]
    fn nested_errors_name_the_entry_and_both_kinds() {
        let mut map = counters(&[("a", 1)]);
        let orset = delta(Delta::Orset(pb::OrSetDelta::default()));
        let err = map
            .apply_delta(&ormap_delta(
                false,
                &[],
                vec![entry("a", orset.clone())],
                vec![],
            ))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"ORMap entry "a": expected a GCounter delta, got an ORSet delta"#
        );
        let err = map
            .apply_delta(&ormap_delta(false, &[], vec![], vec![entry("b", orset)]))
            .unwrap_err();
        assert!(
            err.to_string().contains("expected a GCounter delta"),
            "{err}"
        );
        assert_eq!(
            values(&map),
            [("a", 1)],
            "a bad added entry changes nothing"
        );
    }

    #[test]
    fn bad_keys_and_entries_are_refused() {
        let mut map = counters(&[]);
        let int_key = pb::OrMapEntryDelta {
            key: Some(1i64.to_any()),
            delta: Some(gcounter(1)),
        };
        let err = map
            .apply_delta(&ormap_delta(false, &[], vec![], vec![int_key]))
            .unwrap_err();
        assert!(err.to_string().contains("[p.cloudstate.io/int64]"), "{err}");
        let keyless = pb::OrMapEntryDelta {
            key: None,
            delta: Some(gcounter(1)),
        };
        assert!(
            map.apply_delta(&ormap_delta(false, &[], vec![keyless], vec![]))
                .is_err()
        );
        let valueless = pb::OrMapEntryDelta {
            key: Some(s("a")),
            delta: None,
        };
        assert!(
            map.apply_delta(&ormap_delta(false, &[], vec![], vec![valueless]))
                .is_err()
        );
        let flag = delta(Delta::Flag(pb::FlagDelta::default()));
        assert_eq!(
            map.apply_delta(&flag).unwrap_err().to_string(),
            "expected an ORMap delta, got a Flag delta"
        );
    }

    #[test]
    fn full_delta_adds_every_entry() {
        let mut map = counters(&[("a", 1)]);
        map.get_or_insert_with("b".to_owned(), GCounter::new)
            .increment(2);
        assert_eq!(
            map.full_delta(),
            ormap_delta(
                false,
                &[],
                vec![],
                vec![entry("a", gcounter(1)), entry("b", gcounter(2))]
            )
        );
    }

    #[test]
    fn lookups_and_iterators() {
        let map = counters(&[("a", 1), ("b", 2)]);
        assert!(map.contains_key(&"a".to_owned()));
        assert!(!map.contains_key(&"c".to_owned()));
        assert_eq!(map.len(), 2);
        assert_eq!(map.keys().cloned().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(map.keys().next_back().map(String::as_str), Some("b"));
        assert_eq!((&map).into_iter().len(), 2);
        assert_eq!(
            format!("{map:?}"),
            r#"ORMap{"a": GCounter(1), "b": GCounter(2)}"#
        );
    }

    #[test]
    fn extend_inserts() {
        let mut map: ORMap<i32, Flag> = ORMap::new();
        map.extend([(1, Flag::new()), (2, Flag::new())]);
        assert_eq!(map.len(), 2);
        let Some(Delta::Ormap(d)) = map.take_delta().and_then(|d| d.delta) else {
            panic!("no ORMap delta");
        };
        assert_eq!(d.added.len(), 2);
    }
}
