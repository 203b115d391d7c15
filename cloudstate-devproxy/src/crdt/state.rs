//! One replica's copy of a CRDT, as Akka Distributed Data holds it on a node.
//!
//! Each replica keeps a state-based CRDT: per-replica counts for the
//! counters, dots and a version vector for the observed-remove set and the
//! map's keys, stamped writes for the register, versioned ballots for the
//! vote. Merging is a join (commutative, associative, idempotent), so the
//! replicas converge whatever order gossip arrives in.
//!
//! Next to the state, a replica remembers the value its user function is known
//! to hold (`uf_view`), kept by applying the user function's own deltas with
//! the user-function side rules of the protocol. What the user function is
//! sent is the difference between that and the replica's visible value. The
//! driver takes deltas only between commands, so a user-function delta is
//! always relative to `uf_view`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use cloudstate_sdk::crdt::CrdtKind;
use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate::crdt as pb;
use pb::crdt_delta::Delta;
use prost::Message;

/// A replica's number, `0..replicas`.
pub(crate) type ReplicaId = u32;

/// The replica restored state is attributed to: no live replica has it, so
/// restored entries are the same on every replica and never written again.
const RESTORED: ReplicaId = ReplicaId::MAX;

/// One replica of a CRDT entity: its state and what its user function holds.
#[derive(Debug, Clone)]
pub(crate) struct Replica {
    me: ReplicaId,
    replicas: u32,
    state: State,
    /// What this replica's user function holds; `None` = the empty value of
    /// the kind (it was sent nothing yet).
    uf_view: Option<View>,
}

/// A delta or a merge that does not fit the CRDT.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct StateError(pub(crate) String);

impl Replica {
    /// The UF at replica `me` created the CRDT with its first delta
    /// (`state_action.update` when the proxy had no value). Its UF holds
    /// exactly that value afterwards.
    pub(crate) fn create(
        me: ReplicaId,
        replicas: u32,
        delta: &pb::CrdtDelta,
    ) -> Result<Self, StateError> {
        let kind = kind_of(delta).ok_or_else(|| StateError("a delta with no kind".into()))?;
        let mut replica = Self {
            me,
            replicas,
            state: State::empty(kind),
            uf_view: None,
        };
        replica.apply(delta)?;
        Ok(replica)
    }

    /// Replica `me` learns the CRDT from gossip before its UF created any:
    /// the same state, and its UF holds the empty value of the kind (the next
    /// [`take_delta`](Self::take_delta) gives the whole value).
    pub(crate) fn adopt(me: ReplicaId, replicas: u32, remote: &Replica) -> Self {
        Self {
            me,
            replicas,
            state: remote.state.clone(),
            uf_view: None,
        }
    }

    /// A delta from this replica's UF (`CrdtStateAction.update`): applied to
    /// the state; the UF already holds it. Nothing changes on an error.
    pub(crate) fn apply(&mut self, delta: &pb::CrdtDelta) -> Result<(), StateError> {
        let kind = self.state.kind();
        check_kind(kind, delta)?;
        let known = self.uf_view.clone().unwrap_or_else(|| View::empty(kind));
        let uf_view = known.apply(delta)?;
        self.state.apply(delta, self.me);
        self.uf_view = Some(uf_view);
        Ok(())
    }

    /// Gossip: merges another replica's state (commutative, associative,
    /// idempotent). Errors only for a CRDT of another kind.
    pub(crate) fn merge(&mut self, remote: &Replica) -> Result<(), StateError> {
        let (mine, theirs) = (self.state.kind(), remote.state.kind());
        if mine != theirs {
            return Err(StateError(format!(
                "cannot merge {} into {}",
                with_article(theirs),
                with_article(mine)
            )));
        }
        self.state.merge(&remote.state);
        Ok(())
    }

    /// What this replica's UF lacks (the visible value minus `uf_view`), as
    /// one delta; the UF is then known to hold the visible value. `None` when
    /// nothing visible changed.
    pub(crate) fn take_delta(&mut self) -> Option<pb::CrdtDelta> {
        let visible = self.visible();
        let known = self
            .uf_view
            .take()
            .unwrap_or_else(|| View::empty(self.state.kind()));
        let delta = known.diff(&visible);
        self.uf_view = Some(visible);
        delta
    }

    /// The whole visible value as the `CrdtInit.delta` of a new stream; the
    /// UF is then known to hold it.
    pub(crate) fn initial_delta(&mut self) -> pb::CrdtDelta {
        let visible = self.visible();
        let delta = visible.full();
        self.uf_view = Some(visible);
        delta
    }

    /// The durable form: the visible value as an encoded full-state
    /// `CrdtDelta`. Dots are lost; a Vote keeps only how many voted for.
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.visible().full().encode_to_vec()
    }

    /// Restores [`encode`](Self::encode)d bytes as replica `me`. Every
    /// replica restored from the same bytes has the same state: restored
    /// entries belong to a replica that does not exist, and the votes for
    /// go to the lowest replica ids. The UF holds nothing yet.
    pub(crate) fn decode(me: ReplicaId, replicas: u32, bytes: &[u8]) -> Result<Self, StateError> {
        let delta = pb::CrdtDelta::decode(bytes)
            .map_err(|e| StateError(format!("stored CRDT state does not decode: {e}")))?;
        Ok(Self {
            me,
            replicas,
            state: State::restore(&delta, replicas)?,
            uf_view: None,
        })
    }

    /// "GCounter", "ORSet", ... (for logs).
    pub(crate) fn kind(&self) -> &'static str {
        self.state.kind().as_str()
    }

    fn visible(&self) -> View {
        self.state.view(self.me, self.replicas)
    }
}

// ---------------------------------------------------------------------------
// Kinds and keys

fn kind_of(delta: &pb::CrdtDelta) -> Option<CrdtKind> {
    Some(match delta.delta.as_ref()? {
        Delta::Gcounter(_) => CrdtKind::GCounter,
        Delta::Pncounter(_) => CrdtKind::PNCounter,
        Delta::Gset(_) => CrdtKind::GSet,
        Delta::Orset(_) => CrdtKind::ORSet,
        Delta::Lwwregister(_) => CrdtKind::LWWRegister,
        Delta::Flag(_) => CrdtKind::Flag,
        Delta::Ormap(_) => CrdtKind::ORMap,
        Delta::Vote(_) => CrdtKind::Vote,
    })
}

/// "a GCounter", "an ORSet".
fn with_article(kind: CrdtKind) -> String {
    match kind {
        CrdtKind::ORSet | CrdtKind::ORMap | CrdtKind::LWWRegister => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

/// A delta for `kind`, or an error naming both kinds.
fn check_kind(kind: CrdtKind, delta: &pb::CrdtDelta) -> Result<(), StateError> {
    match kind_of(delta) {
        Some(got) if got == kind => Ok(()),
        Some(got) => Err(StateError(format!(
            "{} delta for {}",
            with_article(got),
            with_article(kind)
        ))),
        None => Err(StateError(format!(
            "a delta with no kind for {}",
            with_article(kind)
        ))),
    }
}

/// An element, map key or register value: compared by its encoding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    type_url: String,
    value: Vec<u8>,
}

impl Key {
    fn of(any: &Any) -> Self {
        Self {
            type_url: any.type_url.clone(),
            value: any.value.clone(),
        }
    }

    fn any(&self) -> Any {
        Any {
            type_url: self.type_url.clone(),
            value: self.value.clone(),
        }
    }
}

fn anys<'a>(keys: impl IntoIterator<Item = &'a Key>) -> Vec<Any> {
    keys.into_iter().map(Key::any).collect()
}

fn delta(delta: Delta) -> pb::CrdtDelta {
    pb::CrdtDelta { delta: Some(delta) }
}

/// The key and value delta of a map entry, or an error naming the part missing.
fn entry_parts(entry: &pb::OrMapEntryDelta) -> Result<(Key, &pb::CrdtDelta), StateError> {
    let key = entry
        .key
        .as_ref()
        .ok_or_else(|| StateError("an ORMap entry delta with no key".into()))?;
    let value = entry
        .delta
        .as_ref()
        .ok_or_else(|| StateError("an ORMap entry delta with no value delta".into()))?;
    Ok((Key::of(key), value))
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------
// The replicated state

/// A dot: the `n`th addition made at a replica.
type Dot = (ReplicaId, u64);

/// Per-replica counts of a grow-only counter.
type Counts = BTreeMap<ReplicaId, u64>;

#[derive(Debug, Clone, PartialEq)]
enum State {
    GCounter(Counts),
    PNCounter { up: Counts, down: Counts },
    GSet(BTreeSet<Key>),
    ORSet(Dots),
    LWWRegister(Register),
    Flag(bool),
    ORMap(Map),
    Vote(BTreeMap<ReplicaId, Ballot>),
}

/// An add-wins observed-remove set: the live dots of each present key, and
/// every dot seen (as a version vector: dots of a replica are contiguous).
#[derive(Debug, Clone, Default, PartialEq)]
struct Dots {
    present: BTreeMap<Key, BTreeSet<Dot>>,
    seen: BTreeMap<ReplicaId, u64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Register {
    /// `None` only before the first write.
    value: Option<Key>,
    stamp: Stamp,
}

/// Orders register writes: the timestamp, then the writing replica, then the
/// writer's sequence (so a later write of one replica with an equal custom
/// clock still wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Stamp {
    timestamp: i64,
    replica: ReplicaId,
    sequence: u64,
}

/// An observed-remove map: its keys as an add-wins set, and the value of
/// every key ever written. A removed key's value stays (a concurrent update
/// elsewhere brings the key back with it); a replacement is a new
/// incarnation, ordered by a Lamport clock, and the highest one wins.
#[derive(Debug, Clone, Default, PartialEq)]
struct Map {
    keys: Dots,
    values: BTreeMap<Key, Entry>,
    clock: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// `(Lamport time, replica)` of the write that created this value.
    incarnation: (u64, ReplicaId),
    value: State,
}

/// A replica's vote; only that replica writes it, bumping the version.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Ballot {
    version: u64,
    vote: bool,
}

impl Dots {
    fn covers(&self, (replica, n): Dot) -> bool {
        self.seen.get(&replica).is_some_and(|&seen| seen >= n)
    }

    fn contains(&self, key: &Key) -> bool {
        self.present.contains_key(key)
    }

    /// Adds (or refreshes) `key` with a new dot of `me`: the dots it had are
    /// all seen, so the new one stands for them.
    fn add(&mut self, key: Key, me: ReplicaId) {
        let n = self.seen.entry(me).or_default();
        *n += 1;
        self.present.insert(key, BTreeSet::from([(me, *n)]));
    }

    fn remove(&mut self, key: &Key) {
        self.present.remove(key);
    }

    fn clear(&mut self) {
        self.present.clear();
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.present.keys()
    }

    /// A dot survives when both have it, or when the side without it has
    /// never seen it (so it was not removed there).
    fn merge(&mut self, other: &Dots) {
        let keys: BTreeSet<Key> = self.keys().chain(other.keys()).cloned().collect();
        let empty = BTreeSet::new();
        for key in keys {
            let mine = self.present.get(&key).unwrap_or(&empty);
            let theirs = other.present.get(&key).unwrap_or(&empty);
            let kept: BTreeSet<Dot> = mine
                .iter()
                .filter(|&&dot| theirs.contains(&dot) || !other.covers(dot))
                .chain(theirs.iter().filter(|&&dot| !self.covers(dot)))
                .copied()
                .collect();
            if kept.is_empty() {
                self.present.remove(&key);
            } else {
                self.present.insert(key, kept);
            }
        }
        for (&replica, &n) in &other.seen {
            let seen = self.seen.entry(replica).or_default();
            *seen = (*seen).max(n);
        }
    }

    /// Restored keys, with dots of [`RESTORED`].
    fn restore<'a>(keys: impl IntoIterator<Item = &'a Any>) -> Self {
        let mut dots = Self::default();
        for key in keys {
            dots.add(Key::of(key), RESTORED);
        }
        dots
    }
}

fn merge_counts(mine: &mut Counts, theirs: &Counts) {
    for (&replica, &n) in theirs {
        let count = mine.entry(replica).or_default();
        *count = (*count).max(n);
    }
}

fn sum(counts: &Counts) -> u64 {
    counts.values().fold(0, |total, &n| total.wrapping_add(n))
}

impl Register {
    /// The timestamp of a write with `clock`, after one at `current` (Akka's
    /// clocks).
    fn timestamp(current: i64, clock: i32, custom: i64) -> i64 {
        match pb::CrdtClock::try_from(clock).unwrap_or_default() {
            pb::CrdtClock::Default => now_millis().max(current.saturating_add(1)),
            pb::CrdtClock::Reverse => now_millis().saturating_neg().min(current.saturating_sub(1)),
            pb::CrdtClock::Custom => custom,
            pb::CrdtClock::CustomAutoIncrement => custom.max(current.saturating_add(1)),
        }
    }
}

impl State {
    fn empty(kind: CrdtKind) -> Self {
        match kind {
            CrdtKind::GCounter => Self::GCounter(Counts::new()),
            CrdtKind::PNCounter => Self::PNCounter {
                up: Counts::new(),
                down: Counts::new(),
            },
            CrdtKind::GSet => Self::GSet(BTreeSet::new()),
            CrdtKind::ORSet => Self::ORSet(Dots::default()),
            CrdtKind::LWWRegister => Self::LWWRegister(Register {
                value: None,
                stamp: Stamp {
                    timestamp: 0,
                    replica: 0,
                    sequence: 0,
                },
            }),
            CrdtKind::Flag => Self::Flag(false),
            CrdtKind::ORMap => Self::ORMap(Map::default()),
            CrdtKind::Vote => Self::Vote(BTreeMap::new()),
        }
    }

    fn kind(&self) -> CrdtKind {
        match self {
            Self::GCounter(_) => CrdtKind::GCounter,
            Self::PNCounter { .. } => CrdtKind::PNCounter,
            Self::GSet(_) => CrdtKind::GSet,
            Self::ORSet(_) => CrdtKind::ORSet,
            Self::LWWRegister(_) => CrdtKind::LWWRegister,
            Self::Flag(_) => CrdtKind::Flag,
            Self::ORMap(_) => CrdtKind::ORMap,
            Self::Vote(_) => CrdtKind::Vote,
        }
    }

    /// Applies a user-function delta made at `me`. The delta was checked
    /// against what the UF holds ([`View::apply`]); what does not fit this
    /// state (an entry changed by gossip meanwhile) is ignored, as Akka does.
    fn apply(&mut self, delta: &pb::CrdtDelta, me: ReplicaId) {
        match (self, delta.delta.as_ref()) {
            (Self::GCounter(counts), Some(Delta::Gcounter(d))) => {
                let count = counts.entry(me).or_default();
                *count = count.wrapping_add(d.increment);
            }
            (Self::PNCounter { up, down }, Some(Delta::Pncounter(d))) => {
                let side = if d.change >= 0 { up } else { down };
                let count = side.entry(me).or_default();
                *count = count.wrapping_add(d.change.unsigned_abs());
            }
            (Self::GSet(set), Some(Delta::Gset(d))) => set.extend(d.added.iter().map(Key::of)),
            (Self::ORSet(dots), Some(Delta::Orset(d))) => {
                if d.cleared {
                    dots.clear();
                }
                for key in &d.removed {
                    dots.remove(&Key::of(key));
                }
                for key in &d.added {
                    dots.add(Key::of(key), me);
                }
            }
            (Self::LWWRegister(register), Some(Delta::Lwwregister(d))) => {
                let value = d.value.clone().unwrap_or_default();
                register.stamp = Stamp {
                    timestamp: Register::timestamp(
                        register.stamp.timestamp,
                        d.clock,
                        d.custom_clock_value,
                    ),
                    replica: me,
                    sequence: register.stamp.sequence + 1,
                };
                register.value = Some(Key::of(&value));
            }
            (Self::Flag(enabled), Some(Delta::Flag(d))) => *enabled |= d.value,
            (Self::ORMap(map), Some(Delta::Ormap(d))) => map.apply(d, me),
            (Self::Vote(ballots), Some(Delta::Vote(d))) => {
                let ballot = ballots.entry(me).or_default();
                if ballot.vote != d.self_vote {
                    ballot.version += 1;
                    ballot.vote = d.self_vote;
                }
            }
            _ => {}
        }
    }

    /// The join; states of different kinds are left as they are (the caller
    /// checks kinds; nested values of one incarnation have one kind).
    fn merge(&mut self, other: &State) {
        match (self, other) {
            (Self::GCounter(mine), Self::GCounter(theirs)) => merge_counts(mine, theirs),
            (
                Self::PNCounter { up, down },
                Self::PNCounter {
                    up: their_up,
                    down: their_down,
                },
            ) => {
                merge_counts(up, their_up);
                merge_counts(down, their_down);
            }
            (Self::GSet(mine), Self::GSet(theirs)) => mine.extend(theirs.iter().cloned()),
            (Self::ORSet(mine), Self::ORSet(theirs)) => mine.merge(theirs),
            (Self::LWWRegister(mine), Self::LWWRegister(theirs))
                if (theirs.stamp, &theirs.value) > (mine.stamp, &mine.value) =>
            {
                *mine = theirs.clone();
            }
            (Self::Flag(mine), Self::Flag(theirs)) => *mine |= *theirs,
            (Self::ORMap(mine), Self::ORMap(theirs)) => mine.merge(theirs),
            (Self::Vote(mine), Self::Vote(theirs)) => {
                for (&replica, &ballot) in theirs {
                    let own = mine.entry(replica).or_default();
                    if (ballot.version, ballot.vote) > (own.version, own.vote) {
                        *own = ballot;
                    }
                }
            }
            _ => {}
        }
    }

    /// What a UF at replica `me` sees.
    fn view(&self, me: ReplicaId, replicas: u32) -> View {
        match self {
            Self::GCounter(counts) => View::GCounter(sum(counts)),
            Self::PNCounter { up, down } => {
                View::PNCounter(sum(up).wrapping_sub(sum(down)).cast_signed())
            }
            Self::GSet(set) => View::GSet(set.clone()),
            Self::ORSet(dots) => View::ORSet(dots.keys().cloned().collect()),
            Self::LWWRegister(register) => View::LWWRegister(register.value.clone()),
            Self::Flag(enabled) => View::Flag(*enabled),
            Self::ORMap(map) => View::ORMap(
                map.keys
                    .keys()
                    .filter_map(|key| {
                        let entry = map.values.get(key)?;
                        Some((key.clone(), entry.value.view(me, replicas)))
                    })
                    .collect(),
            ),
            Self::Vote(ballots) => View::Vote {
                self_vote: ballots.get(&me).is_some_and(|b| b.vote),
                votes_for: u32::try_from(ballots.values().filter(|b| b.vote).count())
                    .unwrap_or(u32::MAX),
                voters: replicas,
            },
        }
    }

    /// The state of a durable full-state delta, the same for every replica.
    fn restore(delta: &pb::CrdtDelta, replicas: u32) -> Result<Self, StateError> {
        Ok(match delta.delta.as_ref() {
            None => return Err(StateError("stored CRDT state has no kind".into())),
            Some(Delta::Gcounter(d)) => Self::GCounter(Counts::from([(RESTORED, d.increment)])),
            Some(Delta::Pncounter(d)) => {
                let count = Counts::from([(RESTORED, d.change.unsigned_abs())]);
                if d.change >= 0 {
                    Self::PNCounter {
                        up: count,
                        down: Counts::new(),
                    }
                } else {
                    Self::PNCounter {
                        up: Counts::new(),
                        down: count,
                    }
                }
            }
            Some(Delta::Gset(d)) => Self::GSet(d.added.iter().map(Key::of).collect()),
            Some(Delta::Orset(d)) => Self::ORSet(Dots::restore(&d.added)),
            Some(Delta::Lwwregister(d)) => Self::LWWRegister(Register {
                value: Some(Key::of(&d.value.clone().unwrap_or_default())),
                stamp: Stamp {
                    timestamp: 0,
                    replica: RESTORED,
                    sequence: 0,
                },
            }),
            Some(Delta::Flag(d)) => Self::Flag(d.value),
            Some(Delta::Ormap(d)) => {
                let mut map = Map::default();
                for entry in &d.added {
                    let (key, value) = entry_parts(entry)?;
                    let entry = Entry {
                        incarnation: (0, RESTORED),
                        value: Self::restore(value, replicas)?,
                    };
                    map.keys.add(key.clone(), RESTORED);
                    map.values.insert(key, entry);
                }
                Self::ORMap(map)
            }
            Some(Delta::Vote(d)) => {
                let votes_for = u32::try_from(d.votes_for).unwrap_or(0).min(replicas);
                Self::Vote(
                    (0..votes_for)
                        .map(|replica| {
                            let ballot = Ballot {
                                version: 1,
                                vote: true,
                            };
                            (replica, ballot)
                        })
                        .collect(),
                )
            }
        })
    }
}

impl Map {
    /// A UF's map delta in the protocol's order: cleared, removed, updated, added.
    fn apply(&mut self, d: &pb::OrMapDelta, me: ReplicaId) {
        if d.cleared {
            self.keys.clear();
        }
        for key in &d.removed {
            self.keys.remove(&Key::of(key));
        }
        for entry in &d.updated {
            let Ok((key, value_delta)) = entry_parts(entry) else {
                continue;
            };
            if !self.keys.contains(&key) {
                continue;
            }
            let Some(current) = self.values.get_mut(&key) else {
                continue;
            };
            if Some(current.value.kind()) == kind_of(value_delta) {
                current.value.apply(value_delta, me);
                // An update is also an add, so it wins over a concurrent remove.
                self.keys.add(key, me);
            }
        }
        for entry in &d.added {
            let Ok((key, value_delta)) = entry_parts(entry) else {
                continue;
            };
            let Some(kind) = kind_of(value_delta) else {
                continue;
            };
            let mut value = State::empty(kind);
            value.apply(value_delta, me);
            self.clock += 1;
            let incarnation = (self.clock, me);
            self.values
                .insert(key.clone(), Entry { incarnation, value });
            self.keys.add(key, me);
        }
    }

    fn merge(&mut self, other: &Map) {
        self.keys.merge(&other.keys);
        for (key, theirs) in &other.values {
            match self.values.get_mut(key) {
                None => {
                    self.values.insert(key.clone(), theirs.clone());
                }
                Some(mine) if mine.incarnation == theirs.incarnation => {
                    mine.value.merge(&theirs.value);
                }
                Some(mine) if mine.incarnation < theirs.incarnation => *mine = theirs.clone(),
                Some(_) => {}
            }
        }
        self.clock = self.clock.max(other.clock);
    }
}

// ---------------------------------------------------------------------------
// Values as a user function holds them

/// A CRDT's value as the user function sees it.
#[derive(Debug, Clone, PartialEq)]
enum View {
    GCounter(u64),
    PNCounter(i64),
    GSet(BTreeSet<Key>),
    ORSet(BTreeSet<Key>),
    /// `None` only for the empty value (the UF has no register yet).
    LWWRegister(Option<Key>),
    Flag(bool),
    ORMap(BTreeMap<Key, View>),
    Vote {
        self_vote: bool,
        votes_for: u32,
        voters: u32,
    },
}

impl View {
    /// The value of a CRDT the UF has not got yet; a Vote as the SDKs create it.
    fn empty(kind: CrdtKind) -> Self {
        match kind {
            CrdtKind::GCounter => Self::GCounter(0),
            CrdtKind::PNCounter => Self::PNCounter(0),
            CrdtKind::GSet => Self::GSet(BTreeSet::new()),
            CrdtKind::ORSet => Self::ORSet(BTreeSet::new()),
            CrdtKind::LWWRegister => Self::LWWRegister(None),
            CrdtKind::Flag => Self::Flag(false),
            CrdtKind::ORMap => Self::ORMap(BTreeMap::new()),
            CrdtKind::Vote => Self::Vote {
                self_vote: false,
                votes_for: 0,
                voters: 1,
            },
        }
    }

    fn kind(&self) -> CrdtKind {
        match self {
            Self::GCounter(_) => CrdtKind::GCounter,
            Self::PNCounter(_) => CrdtKind::PNCounter,
            Self::GSet(_) => CrdtKind::GSet,
            Self::ORSet(_) => CrdtKind::ORSet,
            Self::LWWRegister(_) => CrdtKind::LWWRegister,
            Self::Flag(_) => CrdtKind::Flag,
            Self::ORMap(_) => CrdtKind::ORMap,
            Self::Vote { .. } => CrdtKind::Vote,
        }
    }

    /// The value after the UF made `delta` on it (the UF-side rules of the
    /// protocol), or why the UF could not have sent it.
    fn apply(&self, delta: &pb::CrdtDelta) -> Result<Self, StateError> {
        check_kind(self.kind(), delta)?;
        let mut next = self.clone();
        match (&mut next, delta.delta.as_ref()) {
            (Self::GCounter(value), Some(Delta::Gcounter(d))) => {
                if d.increment > i64::MAX.cast_unsigned() {
                    return Err(StateError(format!(
                        "a negative GCounter increment ({})",
                        d.increment.cast_signed()
                    )));
                }
                *value = value.wrapping_add(d.increment);
            }
            (Self::PNCounter(value), Some(Delta::Pncounter(d))) => {
                *value = value.wrapping_add(d.change);
            }
            (Self::GSet(set), Some(Delta::Gset(d))) => set.extend(d.added.iter().map(Key::of)),
            (Self::ORSet(set), Some(Delta::Orset(d))) => {
                if d.cleared {
                    set.clear();
                }
                for key in &d.removed {
                    set.remove(&Key::of(key));
                }
                set.extend(d.added.iter().map(Key::of));
            }
            (Self::LWWRegister(value), Some(Delta::Lwwregister(d))) => {
                *value = Some(Key::of(&d.value.clone().unwrap_or_default()));
            }
            (Self::Flag(enabled), Some(Delta::Flag(d))) => {
                if *enabled && !d.value {
                    return Err(StateError("switching a Flag off".into()));
                }
                *enabled |= d.value;
            }
            (Self::ORMap(map), Some(Delta::Ormap(d))) => apply_map(map, d)?,
            (
                Self::Vote {
                    self_vote,
                    votes_for,
                    ..
                },
                Some(Delta::Vote(d)),
            ) => {
                if *self_vote != d.self_vote {
                    *self_vote = d.self_vote;
                    *votes_for = if d.self_vote {
                        votes_for.saturating_add(1)
                    } else {
                        votes_for.saturating_sub(1)
                    };
                }
            }
            _ => unreachable!("kinds were checked"),
        }
        Ok(next)
    }

    /// The delta that turns `self` into `new` (same kind), in the shape the
    /// proxy sends; `None` when they are equal.
    fn diff(&self, new: &View) -> Option<pb::CrdtDelta> {
        let d = match (self, new) {
            (Self::GCounter(old), Self::GCounter(new)) if new != old => {
                Delta::Gcounter(pb::GCounterDelta {
                    increment: new.wrapping_sub(*old),
                })
            }
            (Self::PNCounter(old), Self::PNCounter(new)) if new != old => {
                Delta::Pncounter(pb::PnCounterDelta {
                    change: new.wrapping_sub(*old),
                })
            }
            (Self::GSet(old), Self::GSet(new)) if new != old => Delta::Gset(pb::GSetDelta {
                added: anys(new.difference(old)),
            }),
            (Self::ORSet(old), Self::ORSet(new)) if new != old => {
                let removed: Vec<&Key> = old.difference(new).collect();
                let added: Vec<&Key> = new.difference(old).collect();
                Delta::Orset(if new.is_empty() {
                    pb::OrSetDelta {
                        cleared: true,
                        ..Default::default()
                    }
                } else if removed.len() + added.len() > new.len() {
                    // Cheaper to send everything again.
                    pb::OrSetDelta {
                        cleared: true,
                        removed: Vec::new(),
                        added: anys(new),
                    }
                } else {
                    pb::OrSetDelta {
                        cleared: false,
                        removed: anys(removed),
                        added: anys(added),
                    }
                })
            }
            (Self::LWWRegister(old), Self::LWWRegister(Some(new))) if old.as_ref() != Some(new) => {
                Delta::Lwwregister(pb::LwwRegisterDelta {
                    value: Some(new.any()),
                    ..Default::default()
                })
            }
            (Self::Flag(false), Self::Flag(true)) => Delta::Flag(pb::FlagDelta { value: true }),
            (Self::ORMap(old), Self::ORMap(new)) => Delta::Ormap(diff_map(old, new)?),
            (Self::Vote { .. }, Self::Vote { .. }) if new != self => new.full().delta?,
            _ => return None,
        };
        Some(delta(d))
    }

    /// The whole value as a delta against the empty value.
    fn full(&self) -> pb::CrdtDelta {
        delta(match self {
            Self::GCounter(value) => Delta::Gcounter(pb::GCounterDelta { increment: *value }),
            Self::PNCounter(value) => Delta::Pncounter(pb::PnCounterDelta { change: *value }),
            Self::GSet(set) => Delta::Gset(pb::GSetDelta { added: anys(set) }),
            Self::ORSet(set) => Delta::Orset(pb::OrSetDelta {
                added: anys(set),
                ..Default::default()
            }),
            Self::LWWRegister(value) => Delta::Lwwregister(pb::LwwRegisterDelta {
                value: Some(value.as_ref().map(Key::any).unwrap_or_default()),
                ..Default::default()
            }),
            Self::Flag(enabled) => Delta::Flag(pb::FlagDelta { value: *enabled }),
            Self::ORMap(map) => Delta::Ormap(pb::OrMapDelta {
                added: map
                    .iter()
                    .map(|(key, value)| entry(key, value.full()))
                    .collect(),
                ..Default::default()
            }),
            Self::Vote {
                self_vote,
                votes_for,
                voters,
            } => Delta::Vote(pb::VoteDelta {
                self_vote: *self_vote,
                votes_for: i32::try_from(*votes_for).unwrap_or(i32::MAX),
                total_voters: i32::try_from(*voters).unwrap_or(i32::MAX),
            }),
        })
    }
}

fn entry(key: &Key, delta: pb::CrdtDelta) -> pb::OrMapEntryDelta {
    pb::OrMapEntryDelta {
        key: Some(key.any()),
        delta: Some(delta),
    }
}

/// A UF's map delta on the map it holds: cleared, removed, updated (missing
/// keys ignored, as the SDKs do), added (replacing).
fn apply_map(map: &mut BTreeMap<Key, View>, d: &pb::OrMapDelta) -> Result<(), StateError> {
    let nested = |key: &Key, error: StateError| {
        StateError(format!(
            "ORMap entry with a key of type [{}]: {error}",
            key.type_url
        ))
    };
    if d.cleared {
        map.clear();
    }
    for key in &d.removed {
        map.remove(&Key::of(key));
    }
    for update in &d.updated {
        let (key, value_delta) = entry_parts(update)?;
        match map.get_mut(&key) {
            Some(value) => *value = value.apply(value_delta).map_err(|e| nested(&key, e))?,
            None => {
                // Still a delta the UF must not send.
                let kind = kind_of(value_delta).ok_or_else(|| {
                    nested(
                        &key,
                        StateError("an updated value delta with no kind".into()),
                    )
                })?;
                View::empty(kind)
                    .apply(value_delta)
                    .map_err(|e| nested(&key, e))?;
            }
        }
    }
    for added in &d.added {
        let (key, value_delta) = entry_parts(added)?;
        let kind = kind_of(value_delta)
            .ok_or_else(|| nested(&key, StateError("an added value delta with no kind".into())))?;
        let value = View::empty(kind)
            .apply(value_delta)
            .map_err(|e| nested(&key, e))?;
        map.insert(key, value);
    }
    Ok(())
}

/// Removed keys, updated values (nested deltas), added keys (full deltas); a
/// value of another kind is removed and added. `cleared` alone when the map
/// became empty; `None` when nothing changed.
fn diff_map(old: &BTreeMap<Key, View>, new: &BTreeMap<Key, View>) -> Option<pb::OrMapDelta> {
    if new.is_empty() {
        return (!old.is_empty()).then(|| pb::OrMapDelta {
            cleared: true,
            ..Default::default()
        });
    }
    let mut d = pb::OrMapDelta {
        removed: anys(old.keys().filter(|key| !new.contains_key(*key))),
        ..Default::default()
    };
    for (key, value) in new {
        match old.get(key) {
            None => d.added.push(entry(key, value.full())),
            Some(before) if before.kind() == value.kind() => {
                if let Some(change) = before.diff(value) {
                    d.updated.push(entry(key, change));
                }
            }
            Some(_) => {
                d.removed.push(key.any());
                d.added.push(entry(key, value.full()));
            }
        }
    }
    let changed = !(d.removed.is_empty() && d.updated.is_empty() && d.added.is_empty());
    changed.then_some(d)
}
