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

    /// Whether a delta can turn `self` into `new`: same kind, and nothing a
    /// delta cannot take back (a map value replaced by a new incarnation may
    /// be a smaller counter, a smaller grow-only set, a disabled flag).
    fn reaches(&self, new: &View) -> bool {
        match (self, new) {
            (Self::GCounter(old), Self::GCounter(new)) => new >= old,
            (Self::GSet(old), Self::GSet(new)) => old.is_subset(new),
            (Self::Flag(old), Self::Flag(new)) => new >= old,
            (Self::LWWRegister(old), Self::LWWRegister(new)) => old.is_none() || new.is_some(),
            (Self::ORMap(_), Self::ORMap(_)) => true,
            (old, new) => old.kind() == new.kind(),
        }
    }

    /// The delta that turns `self` into `new` (which it [`reaches`](Self::reaches)),
    /// in the shape the proxy sends; `None` when they are equal.
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
/// value a delta cannot reach (another kind, a replaced smaller one) is
/// removed and added. `cleared` alone when the map
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
            Some(before) if before.reaches(value) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn el(name: &str) -> Any {
        Any {
            type_url: "p.cloudstate.io/string".into(),
            value: name.as_bytes().to_vec(),
        }
    }

    fn els(names: &[&str]) -> Vec<Any> {
        names.iter().map(|name| el(name)).collect()
    }

    fn gc(increment: u64) -> pb::CrdtDelta {
        delta(Delta::Gcounter(pb::GCounterDelta { increment }))
    }

    fn pn(change: i64) -> pb::CrdtDelta {
        delta(Delta::Pncounter(pb::PnCounterDelta { change }))
    }

    fn gset(added: &[&str]) -> pb::CrdtDelta {
        delta(Delta::Gset(pb::GSetDelta { added: els(added) }))
    }

    fn orset(cleared: bool, removed: &[&str], added: &[&str]) -> pb::CrdtDelta {
        delta(Delta::Orset(pb::OrSetDelta {
            cleared,
            removed: els(removed),
            added: els(added),
        }))
    }

    fn lww(value: &str, clock: pb::CrdtClock, custom: i64) -> pb::CrdtDelta {
        delta(Delta::Lwwregister(pb::LwwRegisterDelta {
            value: Some(el(value)),
            clock: clock as i32,
            custom_clock_value: custom,
        }))
    }

    fn lww_value(value: &str) -> pb::CrdtDelta {
        lww(value, pb::CrdtClock::Default, 0)
    }

    fn flag(value: bool) -> pb::CrdtDelta {
        delta(Delta::Flag(pb::FlagDelta { value }))
    }

    fn vote(self_vote: bool, votes_for: i32, total_voters: i32) -> pb::CrdtDelta {
        delta(Delta::Vote(pb::VoteDelta {
            self_vote,
            votes_for,
            total_voters,
        }))
    }

    fn map_entry(key: &str, value: pb::CrdtDelta) -> pb::OrMapEntryDelta {
        pb::OrMapEntryDelta {
            key: Some(el(key)),
            delta: Some(value),
        }
    }

    fn ormap(
        cleared: bool,
        removed: &[&str],
        updated: Vec<pb::OrMapEntryDelta>,
        added: Vec<pb::OrMapEntryDelta>,
    ) -> pb::CrdtDelta {
        delta(Delta::Ormap(pb::OrMapDelta {
            cleared,
            removed: els(removed),
            updated,
            added,
        }))
    }

    /// Merges every replica into every other until nothing changes.
    fn gossip_all(replicas: &mut [Replica]) {
        for _ in 0..2 {
            for i in 0..replicas.len() {
                for j in 0..replicas.len() {
                    let from = replicas[j].clone();
                    replicas[i].merge(&from).unwrap();
                }
            }
        }
    }

    fn error(result: Result<impl std::fmt::Debug, StateError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn gcounter_counts_per_replica_and_merges_by_max() {
        let mut a = Replica::create(0, 2, &gc(5)).unwrap();
        assert_eq!(a.kind(), "GCounter");
        assert_eq!(a.take_delta(), None, "the UF holds its own creation");
        let mut b = Replica::adopt(1, 2, &a);
        assert_eq!(b.take_delta(), Some(gc(5)));
        a.apply(&gc(1)).unwrap();
        b.apply(&gc(2)).unwrap();
        b.apply(&gc(3)).unwrap();
        a.merge(&b).unwrap();
        a.merge(&b).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(a.take_delta(), Some(gc(5)), "b's increments, once");
        assert_eq!(b.take_delta(), Some(gc(1)));
        assert_eq!(a.take_delta(), None);
        assert_eq!(a.initial_delta(), gc(11));
        assert_eq!(b.initial_delta(), gc(11));
    }

    #[test]
    fn errors_name_what_was_wrong() {
        let mut counter = Replica::create(0, 1, &gc(1)).unwrap();
        assert_eq!(
            error(counter.apply(&pn(1))),
            "a PNCounter delta for a GCounter"
        );
        assert_eq!(
            error(counter.apply(&orset(false, &[], &["a"]))),
            "an ORSet delta for a GCounter"
        );
        assert!(error(counter.apply(&pb::CrdtDelta::default())).contains("no kind"));
        assert!(error(counter.apply(&gc(u64::MAX))).contains("negative GCounter increment"));
        assert!(error(Replica::create(0, 1, &pb::CrdtDelta::default())).contains("no kind"));
        let set = Replica::create(0, 1, &gset(&["a"])).unwrap();
        assert_eq!(
            error(counter.merge(&set)),
            "cannot merge a GSet into a GCounter"
        );
        assert_eq!(counter.initial_delta(), gc(1), "nothing applied on errors");

        let mut on = Replica::create(0, 1, &flag(true)).unwrap();
        assert_eq!(error(on.apply(&flag(false))), "switching a Flag off");

        let mut map = Replica::create(
            0,
            1,
            &ormap(false, &[], vec![], vec![map_entry("k", gc(1))]),
        )
        .unwrap();
        let wrong = ormap(false, &[], vec![map_entry("k", pn(1))], vec![]);
        let message = error(map.apply(&wrong));
        assert!(
            message.contains("a PNCounter delta for a GCounter"),
            "{message}"
        );
        let no_kind = ormap(
            false,
            &[],
            vec![],
            vec![map_entry("j", pb::CrdtDelta::default())],
        );
        assert!(error(map.apply(&no_kind)).contains("no kind"));
        let off = ormap(false, &[], vec![], vec![map_entry("f", flag(true))]);
        map.apply(&off).unwrap();
        let switch_off = ormap(false, &[], vec![map_entry("f", flag(false))], vec![]);
        assert!(error(map.apply(&switch_off)).contains("switching a Flag off"));
        let no_key = delta(Delta::Ormap(pb::OrMapDelta {
            added: vec![pb::OrMapEntryDelta {
                key: None,
                delta: Some(gc(1)),
            }],
            ..Default::default()
        }));
        assert!(error(map.apply(&no_key)).contains("no key"));
    }

    #[test]
    fn pncounter_goes_both_ways() {
        let mut a = Replica::create(0, 2, &pn(-3)).unwrap();
        let mut b = Replica::adopt(1, 2, &a);
        assert_eq!(b.take_delta(), Some(pn(-3)));
        a.apply(&pn(10)).unwrap();
        b.apply(&pn(-4)).unwrap();
        a.merge(&b).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(a.take_delta(), Some(pn(-4)));
        assert_eq!(b.take_delta(), Some(pn(10)));
        assert_eq!(a.initial_delta(), pn(3));
        b.apply(&pn(4)).unwrap();
        b.apply(&pn(-4)).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.take_delta(), None, "no visible change");
    }

    #[test]
    fn gset_sends_only_new_elements() {
        let mut a = Replica::create(0, 2, &gset(&["a", "b"])).unwrap();
        let mut b = Replica::adopt(1, 2, &a);
        assert_eq!(b.initial_delta(), gset(&["a", "b"]));
        b.apply(&gset(&["c"])).unwrap();
        a.apply(&gset(&["b", "d"])).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.take_delta(), Some(gset(&["c"])));
        b.merge(&a).unwrap();
        assert_eq!(b.take_delta(), Some(gset(&["d"])));
        assert_eq!(a.initial_delta(), gset(&["a", "b", "c", "d"]));
    }

    #[test]
    fn orset_removes_what_was_observed_and_add_wins() {
        let mut a = Replica::create(0, 2, &orset(false, &[], &["x", "y"])).unwrap();
        let mut b = Replica::adopt(1, 2, &a);
        assert_eq!(b.take_delta(), Some(orset(false, &[], &["x", "y"])));
        // a removes x; b removes x and adds it again, concurrently.
        a.apply(&orset(false, &["x"], &[])).unwrap();
        b.apply(&orset(false, &["x"], &[])).unwrap();
        b.apply(&orset(false, &[], &["x"])).unwrap();
        // b removes y; nobody adds it.
        b.apply(&orset(false, &["y"], &[])).unwrap();
        a.merge(&b).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(a.initial_delta(), orset(false, &[], &["x"]));
        assert_eq!(b.initial_delta(), orset(false, &[], &["x"]));

        // A clear removes everything observed; a concurrent add survives it.
        a.apply(&orset(false, &[], &["z"])).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(b.take_delta(), Some(orset(false, &[], &["z"])));
        b.apply(&orset(true, &[], &[])).unwrap();
        a.apply(&orset(false, &[], &["w"])).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(
            a.take_delta(),
            Some(orset(true, &[], &["w"])),
            "two removals for a set of one: cleared and all again"
        );
        b.merge(&a).unwrap();
        assert_eq!(b.take_delta(), Some(orset(false, &[], &["w"])));
    }

    #[test]
    fn orset_deltas_clear_when_cheaper_or_empty() {
        let mut a = Replica::create(0, 2, &orset(false, &[], &["a", "b", "c"])).unwrap();
        let mut b = Replica::adopt(1, 2, &a);
        b.take_delta();
        b.apply(&orset(false, &["c"], &["d"])).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.take_delta(), Some(orset(false, &["c"], &["d"])));
        b.apply(&orset(false, &["a", "b", "d"], &["e"])).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.take_delta(), Some(orset(true, &[], &["e"])));
        b.apply(&orset(false, &["e"], &[])).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.take_delta(), Some(orset(true, &[], &[])));
        assert_eq!(a.take_delta(), None);
    }

    #[test]
    fn lwwregister_orders_writes_by_clock_then_replica() {
        use pb::CrdtClock::{Custom, CustomAutoIncrement, Reverse};
        let mut a = Replica::create(0, 2, &lww("x", Custom, 5)).unwrap();
        let mut b = Replica::adopt(1, 2, &a);
        assert_eq!(
            b.take_delta(),
            Some(lww_value("x")),
            "the value without a clock"
        );
        b.apply(&lww("older", Custom, 3)).unwrap();
        a.merge(&b).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(a.take_delta(), None);
        assert_eq!(b.take_delta(), Some(lww_value("x")), "the later clock wins");

        // Equal clocks: the higher replica id wins.
        a.apply(&lww("from-a", Custom, 7)).unwrap();
        b.apply(&lww("from-b", Custom, 7)).unwrap();
        a.merge(&b).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(a.take_delta(), Some(lww_value("from-b")));
        assert_eq!(b.take_delta(), None);

        // Auto-increment goes past the current clock.
        a.apply(&lww("bumped", CustomAutoIncrement, 0)).unwrap();
        b.apply(&lww("custom", Custom, 7)).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(b.take_delta(), Some(lww_value("bumped")));

        // The default clock is the wall clock: it beats small custom clocks.
        a.apply(&lww_value("now")).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(b.initial_delta(), lww_value("now"));
        // The reverse clock loses to the write before it.
        let mut first = Replica::create(0, 2, &lww("first", Reverse, 0)).unwrap();
        let mut second = Replica::adopt(1, 2, &first);
        second.take_delta();
        second.apply(&lww("second", Reverse, 0)).unwrap();
        second.merge(&first).unwrap();
        first.merge(&second).unwrap();
        assert_eq!(second.take_delta(), Some(lww_value("first")));
        assert_eq!(first.take_delta(), None);
    }

    #[test]
    fn flag_is_an_or() {
        let mut a = Replica::create(0, 2, &flag(false)).unwrap();
        let mut b = Replica::adopt(1, 2, &a);
        assert_eq!(b.take_delta(), None, "a disabled flag is the empty value");
        assert_eq!(b.initial_delta(), flag(false));
        b.apply(&flag(true)).unwrap();
        b.apply(&flag(true)).unwrap();
        a.apply(&flag(false)).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.take_delta(), Some(flag(true)));
        a.merge(&b).unwrap();
        assert_eq!(a.take_delta(), None);
    }

    #[test]
    fn ormap_merges_values_and_reports_removed_updated_added() {
        let create = ormap(false, &[], vec![], vec![map_entry("hits", gc(1))]);
        let mut a = Replica::create(0, 2, &create).unwrap();
        let mut b = Replica::adopt(1, 2, &a);
        assert_eq!(b.take_delta(), Some(create.clone()));
        assert_eq!(a.take_delta(), None);

        b.apply(&ormap(false, &[], vec![map_entry("hits", gc(2))], vec![]))
            .unwrap();
        a.apply(&ormap(
            false,
            &[],
            vec![map_entry("hits", gc(3))],
            vec![map_entry("tags", orset(false, &[], &["t"]))],
        ))
        .unwrap();
        a.merge(&b).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(
            a.take_delta(),
            Some(ormap(false, &[], vec![map_entry("hits", gc(2))], vec![]))
        );
        assert_eq!(
            b.take_delta(),
            Some(ormap(
                false,
                &[],
                vec![map_entry("hits", gc(3))],
                vec![map_entry("tags", orset(false, &[], &["t"]))]
            ))
        );

        // A value replaced by one of another kind: removed and added.
        a.apply(&ormap(
            false,
            &["hits"],
            vec![],
            vec![map_entry("hits", flag(true))],
        ))
        .unwrap();
        b.merge(&a).unwrap();
        assert_eq!(
            b.take_delta(),
            Some(ormap(
                false,
                &["hits"],
                vec![],
                vec![map_entry("hits", flag(true))]
            ))
        );

        // An update wins over a concurrent remove of its key.
        a.apply(&ormap(false, &["tags"], vec![], vec![])).unwrap();
        b.apply(&ormap(
            false,
            &[],
            vec![map_entry("tags", orset(false, &[], &["u"]))],
            vec![],
        ))
        .unwrap();
        a.merge(&b).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(
            a.take_delta(),
            Some(ormap(
                false,
                &[],
                vec![],
                vec![map_entry("tags", orset(false, &[], &["t", "u"]))]
            ))
        );
        assert_eq!(b.take_delta(), None);
        assert_eq!(
            a.initial_delta(),
            ormap(
                false,
                &[],
                vec![],
                vec![
                    map_entry("hits", flag(true)),
                    map_entry("tags", orset(false, &[], &["t", "u"]))
                ]
            )
        );

        // Cleared: `cleared` alone.
        b.apply(&ormap(true, &[], vec![], vec![])).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.take_delta(), Some(ormap(true, &[], vec![], vec![])));
        // A key added again after the clear starts afresh.
        a.apply(&ormap(
            false,
            &[],
            vec![],
            vec![map_entry("tags", orset(false, &[], &["v"]))],
        ))
        .unwrap();
        b.merge(&a).unwrap();
        assert_eq!(
            b.take_delta(),
            Some(ormap(
                false,
                &[],
                vec![],
                vec![map_entry("tags", orset(false, &[], &["v"]))]
            ))
        );
    }

    #[test]
    fn ormap_ignores_updates_of_values_gossip_replaced() {
        let create = ormap(false, &[], vec![], vec![map_entry("k", gc(1))]);
        let mut a = Replica::create(0, 2, &create).unwrap();
        let mut b = Replica::adopt(1, 2, &a);
        b.take_delta();
        b.apply(&ormap(
            false,
            &["k"],
            vec![],
            vec![map_entry("k", flag(true))],
        ))
        .unwrap();
        a.merge(&b).unwrap();
        // a's UF still holds the GCounter and updates it before hearing of the flag.
        a.apply(&ormap(false, &[], vec![map_entry("k", gc(5))], vec![]))
            .unwrap();
        assert_eq!(
            a.take_delta(),
            Some(ormap(
                false,
                &["k"],
                vec![],
                vec![map_entry("k", flag(true))]
            ))
        );
    }

    #[test]
    fn vote_counts_one_ballot_per_replica() {
        let mut a = Replica::create(0, 3, &vote(true, 0, 0)).unwrap();
        assert_eq!(
            a.take_delta(),
            Some(vote(true, 1, 3)),
            "the UF learns the voters"
        );
        let mut b = Replica::adopt(1, 3, &a);
        assert_eq!(b.take_delta(), Some(vote(false, 1, 3)));
        b.apply(&vote(true, 0, 0)).unwrap();
        assert_eq!(b.take_delta(), None, "the UF counted its own vote");
        a.merge(&b).unwrap();
        assert_eq!(a.take_delta(), Some(vote(true, 2, 3)));
        b.apply(&vote(false, 0, 0)).unwrap();
        b.apply(&vote(true, 0, 0)).unwrap();
        b.apply(&vote(false, 0, 0)).unwrap();
        a.merge(&b).unwrap();
        b.merge(&a).unwrap();
        assert_eq!(a.take_delta(), Some(vote(true, 1, 3)), "b's latest vote");
        assert_eq!(b.take_delta(), None, "the UF counted its own votes");
        let mut c = Replica::adopt(2, 3, &a);
        assert_eq!(c.initial_delta(), vote(false, 1, 3));
    }

    #[test]
    fn encode_decode_keeps_the_visible_value() {
        let values = [
            gc(7),
            pn(-7),
            gset(&["a", "b"]),
            orset(false, &[], &["a", "b"]),
            lww_value("v"),
            flag(true),
            ormap(
                false,
                &[],
                vec![],
                vec![
                    map_entry("c", pn(2)),
                    map_entry("s", orset(false, &[], &["x"])),
                ],
            ),
        ];
        for value in values {
            let original = Replica::create(0, 3, &value).unwrap();
            let bytes = original.encode();
            let mut one = Replica::decode(1, 3, &bytes).unwrap();
            let mut two = Replica::decode(2, 3, &bytes).unwrap();
            assert_eq!(one.kind(), original.kind());
            assert_eq!(one.state, two.state, "restored alike on every replica");
            assert_eq!(
                one.clone().take_delta(),
                Some(value.clone()),
                "UF holds nothing"
            );
            two.merge(&one).unwrap();
            assert_eq!(two.initial_delta(), value);
            assert_eq!(one.initial_delta(), value);
        }

        // Restored elements can still be removed; gossip from another restored
        // replica does not bring them back.
        let mut one = Replica::decode(
            0,
            2,
            &Replica::create(0, 2, &orset(false, &[], &["a"]))
                .unwrap()
                .encode(),
        )
        .unwrap();
        let two = one.clone();
        one.take_delta();
        one.apply(&orset(false, &["a"], &[])).unwrap();
        one.merge(&two).unwrap();
        assert_eq!(one.take_delta(), None);

        let mut voted = Replica::create(0, 3, &vote(true, 0, 0)).unwrap();
        let mut other = Replica::adopt(1, 3, &voted);
        other.apply(&vote(true, 0, 0)).unwrap();
        voted.merge(&other).unwrap();
        let mut restored = Replica::decode(2, 3, &voted.encode()).unwrap();
        assert_eq!(restored.initial_delta(), vote(false, 2, 3));
        assert!(error(Replica::decode(0, 1, &[0xff, 0xff])).contains("does not decode"));
        assert!(error(Replica::decode(0, 1, &[])).contains("no kind"));
    }

    #[test]
    fn gossip_of_independent_creations_converges() {
        let mut replicas = vec![
            Replica::create(0, 3, &orset(false, &[], &["a"])).unwrap(),
            Replica::create(1, 3, &orset(false, &[], &["b"])).unwrap(),
            Replica::create(2, 3, &orset(false, &[], &["a", "c"])).unwrap(),
        ];
        gossip_all(&mut replicas);
        for replica in &mut replicas {
            assert_eq!(replica.initial_delta(), orset(false, &[], &["a", "b", "c"]));
        }
    }

    /// Three replicas, each with a UF made of the SDK's own CRDTs: random UF
    /// commands, gossip and deliveries, then full gossip and delivery.
    mod convergence {
        use super::*;
        use cloudstate_sdk::crdt::{
            Clock, Crdt, CrdtType, Flag, GCounter, GSet, LWWRegister, ORMap, ORSet, PNCounter, Vote,
        };
        use proptest::prelude::*;

        const REPLICAS: usize = 3;

        #[derive(Debug, Clone)]
        enum Step {
            Command { at: usize, op: u8, arg: u8 },
            Gossip { from: usize, to: usize },
            Deliver { at: usize },
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                3 => (0..REPLICAS, any::<u8>(), 0..4u8)
                    .prop_map(|(at, op, arg)| Step::Command { at, op, arg }),
                2 => (0..REPLICAS, 0..REPLICAS).prop_map(|(from, to)| Step::Gossip { from, to }),
                2 => (0..REPLICAS).prop_map(|at| Step::Deliver { at }),
            ]
        }

        const KINDS: [CrdtKind; 8] = [
            CrdtKind::GCounter,
            CrdtKind::PNCounter,
            CrdtKind::GSet,
            CrdtKind::ORSet,
            CrdtKind::LWWRegister,
            CrdtKind::Flag,
            CrdtKind::ORMap,
            CrdtKind::Vote,
        ];

        fn element(n: u8) -> Any {
            el(&format!("e{n}"))
        }

        /// The CRDT a UF creates itself.
        fn new_crdt(kind: CrdtKind) -> Crdt {
            match kind {
                CrdtKind::GCounter => GCounter::new().into(),
                CrdtKind::PNCounter => PNCounter::new().into(),
                CrdtKind::GSet => GSet::new().into(),
                CrdtKind::ORSet => ORSet::new().into(),
                CrdtKind::LWWRegister => LWWRegister::new(element(0)).into(),
                CrdtKind::Flag => Flag::new().into(),
                CrdtKind::ORMap => ORMap::new().into(),
                CrdtKind::Vote => Vote::default().into(),
            }
        }

        /// One UF command.
        fn command(crdt: &mut Crdt, op: u8, arg: u8) {
            let e = element(arg);
            match crdt {
                Crdt::GCounter(c) => drop(c.increment(u64::from(arg))),
                Crdt::PNCounter(c) if op.is_multiple_of(2) => drop(c.increment(i64::from(arg))),
                Crdt::PNCounter(c) => drop(c.decrement(i64::from(arg))),
                Crdt::GSet(set) => drop(set.insert(e)),
                Crdt::ORSet(set) => match op % 5 {
                    0 | 1 => drop(set.insert(e)),
                    2 | 3 => drop(set.remove(&e)),
                    _ => set.clear(),
                },
                Crdt::LWWRegister(register) => match op % 4 {
                    0 => register.set(e),
                    1 => register.set_with_clock(e, Clock::Custom(i64::from(op % 3))),
                    2 => register.set_with_clock(e, Clock::CustomAutoIncrement(i64::from(op % 3))),
                    _ => register.set_with_clock(e, Clock::Reverse),
                },
                Crdt::Flag(flag) => flag.enable(),
                Crdt::ORMap(map) => match op % 7 {
                    0 | 1 => {
                        let value = map.get_or_insert_with(e, || GCounter::new().into());
                        if let Some(counter) = value.as_gcounter_mut() {
                            counter.increment(1);
                        }
                    }
                    2 | 3 => {
                        let value = map.get_or_insert_with(e, || ORSet::new().into());
                        if let Some(set) = value.as_orset_mut() {
                            if op.is_multiple_of(2) {
                                set.insert(element(op % 3));
                            } else {
                                set.remove(&element(op % 3));
                            }
                        }
                    }
                    4 => {
                        let mut flag = Flag::new();
                        if op.is_multiple_of(2) {
                            flag.enable();
                        }
                        map.insert(e, flag.into());
                    }
                    5 => drop(map.remove(&e)),
                    _ => map.clear(),
                },
                Crdt::Vote(vote) => vote.vote(op.is_multiple_of(2)),
            }
        }

        struct Node {
            replica: Option<Replica>,
            uf: Option<Crdt>,
        }

        impl Node {
            fn deliver(&mut self) -> Result<(), TestCaseError> {
                let Some(replica) = &mut self.replica else {
                    return Ok(());
                };
                if let Some(d) = replica.take_delta() {
                    match &mut self.uf {
                        Some(uf) => uf.apply_delta(&d),
                        None => Crdt::from_delta(&d).map(|uf| self.uf = Some(uf)),
                    }
                    .map_err(|e| TestCaseError::fail(format!("UF refused {d:?}: {e}")))?;
                }
                Ok(())
            }
        }

        fn run(kind: CrdtKind, steps: &[Step]) -> Result<(), TestCaseError> {
            let mut nodes: Vec<Node> = (0..REPLICAS)
                .map(|_| Node {
                    replica: None,
                    uf: None,
                })
                .collect();
            let me = |at: usize| ReplicaId::try_from(at).unwrap();
            for step in steps {
                match *step {
                    Step::Command { at, op, arg } => {
                        let node = &mut nodes[at];
                        let uf = node.uf.get_or_insert_with(|| new_crdt(kind));
                        command(uf, op, arg);
                        if let Some(d) = uf.take_delta() {
                            let applied = match &mut node.replica {
                                Some(replica) => replica.apply(&d),
                                None => Replica::create(me(at), 3, &d)
                                    .map(|replica| node.replica = Some(replica)),
                            };
                            applied.map_err(|e| {
                                TestCaseError::fail(format!("replica refused {d:?}: {e}"))
                            })?;
                        }
                    }
                    Step::Gossip { from, to } => gossip(&mut nodes, from, to)?,
                    Step::Deliver { at } => nodes[at].deliver()?,
                }
            }
            for _ in 0..2 {
                for from in 0..REPLICAS {
                    for to in 0..REPLICAS {
                        gossip(&mut nodes, from, to)?;
                    }
                }
            }
            for node in &mut nodes {
                node.deliver()?;
            }
            let Some(first) = nodes[0].replica.clone() else {
                return Ok(()); // no UF ever sent a delta
            };
            for node in &mut nodes {
                let replica = node.replica.as_mut().expect("gossip reached every replica");
                prop_assert_eq!(&replica.state, &first.state);
                let visible = replica.initial_delta();
                let uf = node.uf.get_or_insert_with(|| new_crdt(kind));
                prop_assert_eq!(uf.full_delta(), visible, "the UF holds the visible value");
            }
            Ok(())
        }

        fn gossip(nodes: &mut [Node], from: usize, to: usize) -> Result<(), TestCaseError> {
            if from == to {
                return Ok(());
            }
            let Some(remote) = nodes[from].replica.clone() else {
                return Ok(());
            };
            match &mut nodes[to].replica {
                Some(replica) => replica
                    .merge(&remote)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?,
                None => {
                    let id = ReplicaId::try_from(to).unwrap();
                    nodes[to].replica = Some(Replica::adopt(id, 3, &remote));
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]

            #[test]
            fn replicas_converge_and_ufs_hold_the_visible_value(
                kind in 0..KINDS.len(),
                steps in proptest::collection::vec(step(), 0..60),
            ) {
                run(KINDS[kind], &steps)?;
            }
        }

        /// A merge is a join: commutative, associative, idempotent.
        #[test]
        fn merge_is_a_join() {
            let mut runner = proptest::test_runner::TestRunner::default();
            runner
                .run(
                    &(0..KINDS.len(), proptest::collection::vec(step(), 0..40)),
                    |(kind, steps)| {
                        let states = states_after(KINDS[kind], &steps)?;
                        let [a, b, c] = states;
                        let merged = |x: &Replica, y: &Replica| {
                            let mut x = x.clone();
                            x.merge(y).unwrap();
                            x
                        };
                        prop_assert_eq!(&merged(&a, &b).state, &merged(&b, &a).state);
                        prop_assert_eq!(
                            &merged(&merged(&a, &b), &c).state,
                            &merged(&a, &merged(&b, &c)).state
                        );
                        prop_assert_eq!(&merged(&a, &a).state, &a.state);
                        Ok(())
                    },
                )
                .unwrap();
        }

        /// Three replica states reached by random commands and partial
        /// gossip (all of the same kind).
        fn states_after(kind: CrdtKind, steps: &[Step]) -> Result<[Replica; 3], TestCaseError> {
            let mut nodes: Vec<Node> = (0..REPLICAS)
                .map(|at| {
                    let mut uf = new_crdt(kind);
                    command(&mut uf, 0, u8::try_from(at).unwrap());
                    let d = uf.take_delta().unwrap_or_else(|| uf.full_delta());
                    Node {
                        replica: Some(
                            Replica::create(ReplicaId::try_from(at).unwrap(), 3, &d).unwrap(),
                        ),
                        uf: Some(uf),
                    }
                })
                .collect();
            for step in steps {
                match *step {
                    Step::Command { at, op, arg } => {
                        let node = &mut nodes[at];
                        let uf = node.uf.as_mut().unwrap();
                        command(uf, op, arg);
                        if let Some(d) = uf.take_delta() {
                            node.replica
                                .as_mut()
                                .unwrap()
                                .apply(&d)
                                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        }
                    }
                    Step::Gossip { from, to } => gossip(&mut nodes, from, to)?,
                    Step::Deliver { at } => nodes[at].deliver()?,
                }
            }
            let mut replicas = nodes.into_iter().map(|node| node.replica.unwrap());
            Ok([
                replicas.next().unwrap(),
                replicas.next().unwrap(),
                replicas.next().unwrap(),
            ])
        }
    }
}
