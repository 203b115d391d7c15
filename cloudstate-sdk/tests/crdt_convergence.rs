//! Replicas of every CRDT type exchange their local deltas and converge.
//!
//! Cloudstate deltas are operation based: the proxy merges them with real
//! CRDTs (dotted sets, clocks) and sends each node what changed. Exchanged
//! directly between replicas, the SDK's deltas converge only under the
//! delivery each property states; each property says which one it assumes
//! and chooses its operations so that its claim holds there, rather than
//! weakening what it checks.
//!
//! Every delta a replica produces is also checked to round-trip through the
//! protobuf encoding unchanged and to carry no duplicate entries.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt::Debug;

use cloudstate_sdk::crdt::{
    Crdt, CrdtType, Flag, GCounter, GSet, LWWRegister, ORMap, ORSet, PNCounter, Vote,
};
use cloudstate_sdk::payload::{Any, Payload};
use cloudstate_sdk::protocol::cloudstate::crdt::{
    self as pb, CrdtDelta, OrMapEntryDelta, crdt_delta::Delta,
};
use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message;

const REPLICAS: usize = 3;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

// ---------------------------------------------------------------------------
// Checks on every delta
// ---------------------------------------------------------------------------

/// The delta survives protobuf encoding and has no duplicate entries.
fn check_wire(delta: &CrdtDelta) {
    let decoded = CrdtDelta::decode(delta.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!(&decoded, delta, "protobuf round trip");
    check_no_duplicates(delta);
}

fn unique<'a>(what: &str, items: impl IntoIterator<Item = &'a Any>) -> HashSet<&'a Any> {
    let mut seen = HashSet::new();
    for item in items {
        assert!(seen.insert(item), "duplicate {what}: {item:?}");
    }
    seen
}

fn entry_key(entry: &OrMapEntryDelta) -> &Any {
    entry.key.as_ref().expect("entry key")
}

fn check_no_duplicates(delta: &CrdtDelta) {
    match delta.delta.as_ref().expect("a delta value") {
        Delta::Gset(d) => {
            unique("GSet added", &d.added);
        }
        Delta::Orset(d) => {
            let removed = unique("ORSet removed", &d.removed);
            let added = unique("ORSet added", &d.added);
            assert!(
                removed.is_disjoint(&added),
                "ORSet element both removed and added"
            );
        }
        Delta::Ormap(d) => {
            let removed = unique("ORMap removed", &d.removed);
            let updated = unique("ORMap updated", d.updated.iter().map(entry_key));
            let added = unique("ORMap added", d.added.iter().map(entry_key));
            assert!(
                updated.is_disjoint(&added),
                "ORMap key both updated and added"
            );
            assert!(
                updated.is_disjoint(&removed),
                "ORMap key both updated and removed"
            );
            for entry in d.updated.iter().chain(&d.added) {
                check_no_duplicates(entry.delta.as_ref().expect("entry delta"));
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// The network between replicas
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Msg {
    from: usize,
    /// Position in the sender's stream.
    seq: usize,
    /// How many deltas of each replica the sender had applied when it sent this.
    deps: Vec<usize>,
    /// Position among all deltas sent, in real time.
    global: u64,
    delta: CrdtDelta,
}

#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// Any pending delta may arrive next.
    AnyOrder,
    /// Each sender's deltas arrive in the order sent; senders interleave freely.
    Fifo,
    /// A delta arrives only after every delta its sender had applied.
    Causal,
}

#[derive(Debug, Clone, Copy)]
enum Duplicates {
    Never,
    /// A delivered delta may be delivered again any time later.
    Later,
    /// A delivered delta may be applied a second time at once (at-least-once FIFO).
    AtOnce,
}

struct Net {
    delivery: Delivery,
    inbox: Vec<Vec<Msg>>,
    applied: Vec<Vec<usize>>,
    global: u64,
}

impl Net {
    fn new(delivery: Delivery) -> Self {
        Self {
            delivery,
            inbox: vec![Vec::new(); REPLICAS],
            applied: vec![vec![0; REPLICAS]; REPLICAS],
            global: 0,
        }
    }

    fn send(&mut self, from: usize, delta: CrdtDelta) {
        let seq = self.applied[from][from];
        let msg = Msg {
            from,
            seq,
            deps: self.applied[from].clone(),
            global: self.global,
            delta,
        };
        self.applied[from][from] += 1;
        self.global += 1;
        for (to, inbox) in self.inbox.iter_mut().enumerate() {
            if to != from {
                inbox.push(msg.clone());
            }
        }
    }

    fn deliverable(&self, to: usize) -> Vec<usize> {
        let inbox = &self.inbox[to];
        let applied = &self.applied[to];
        (0..inbox.len())
            .filter(|&i| {
                let m = &inbox[i];
                match self.delivery {
                    Delivery::AnyOrder => true,
                    Delivery::Fifo => !inbox.iter().any(|o| o.from == m.from && o.seq < m.seq),
                    Delivery::Causal => {
                        m.seq == applied[m.from]
                            && (0..REPLICAS).all(|p| p == m.from || m.deps[p] <= applied[p])
                    }
                }
            })
            .collect()
    }

    fn take(&mut self, to: usize, pick: Option<&Index>) -> Option<Msg> {
        let ready = self.deliverable(to);
        if ready.is_empty() {
            return None;
        }
        let i = ready[pick.map_or(0, |p| p.index(ready.len()))];
        let msg = self.inbox[to].remove(i);
        let applied = &mut self.applied[to][msg.from];
        *applied = (*applied).max(msg.seq + 1);
        Some(msg)
    }
}

// ---------------------------------------------------------------------------
// Simulation: commands, deliveries, then everything delivered
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step<Op> {
    /// One command on a replica: its operations, then its delta is taken and sent.
    Command(usize, Vec<Op>),
    /// One pending delta delivered to a replica (and maybe duplicated).
    Deliver(usize, Index, bool),
}

fn steps<Op: Debug + Clone + 'static>(op: BoxedStrategy<Op>) -> BoxedStrategy<Vec<Step<Op>>> {
    let step = prop_oneof![
        (0..REPLICAS, prop::collection::vec(op, 1..4)).prop_map(|(r, ops)| Step::Command(r, ops)),
        (0..REPLICAS, any::<Index>(), any::<bool>()).prop_map(|(r, i, d)| Step::Deliver(r, i, d)),
    ];
    prop::collection::vec(step, 1..40).boxed()
}

fn drain() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..60)
}

trait Model {
    type Crdt: CrdtType;
    type Op;
    /// Runs one command's operations on replica `r`, takes and returns its delta.
    fn command(&mut self, r: usize, crdt: &mut Self::Crdt, ops: &[Self::Op]) -> Option<CrdtDelta>;
    /// Applies a delta from another replica.
    fn deliver(&mut self, _r: usize, crdt: &mut Self::Crdt, msg: &Msg) {
        crdt.apply_delta(&msg.delta).expect("delta applies");
    }
}

fn simulate<M: Model>(
    model: &mut M,
    mut replicas: Vec<M::Crdt>,
    delivery: Delivery,
    duplicates: Duplicates,
    steps: &[Step<M::Op>],
    drain: &[Index],
) -> Vec<M::Crdt> {
    fn deliver<M: Model>(model: &mut M, replica: &mut M::Crdt, r: usize, msg: &Msg) {
        model.deliver(r, replica, msg);
        assert!(!replica.has_delta(), "applying never creates a local delta");
    }
    let mut net = Net::new(delivery);
    for step in steps {
        match step {
            Step::Command(r, ops) => {
                if let Some(delta) = model.command(*r, &mut replicas[*r], ops) {
                    check_wire(&delta);
                    net.send(*r, delta);
                }
                assert!(!replicas[*r].has_delta(), "the take reset the delta");
            }
            Step::Deliver(r, pick, dup) => {
                if let Some(msg) = net.take(*r, Some(pick)) {
                    deliver(model, &mut replicas[*r], *r, &msg);
                    match duplicates {
                        Duplicates::Later if *dup => net.inbox[*r].push(msg),
                        Duplicates::AtOnce if *dup => deliver(model, &mut replicas[*r], *r, &msg),
                        _ => {}
                    }
                }
            }
        }
    }
    let mut picks = drain.iter();
    loop {
        let mut delivered = false;
        for (r, replica) in replicas.iter_mut().enumerate() {
            while let Some(msg) = net.take(r, picks.next()) {
                deliver(model, replica, r, &msg);
                delivered = true;
            }
        }
        if !delivered {
            break;
        }
    }
    for r in &replicas {
        check_wire(&r.full_delta());
    }
    replicas
}

fn assert_converged<C: CrdtType>(replicas: &[C]) {
    let first = replicas[0].full_delta();
    for (r, replica) in replicas.iter().enumerate().skip(1) {
        assert_eq!(
            replica.full_delta(),
            first,
            "replica {r} differs from replica 0"
        );
    }
}

fn fresh<C: CrdtType>(delta: &CrdtDelta) -> Vec<C> {
    (0..REPLICAS)
        .map(|_| C::from_delta(delta).unwrap())
        .collect()
}

fn wrap(delta: Delta) -> CrdtDelta {
    CrdtDelta { delta: Some(delta) }
}

// ---------------------------------------------------------------------------
// Counters: any order, no duplicates (increments are not idempotent)
// ---------------------------------------------------------------------------

struct GCounterModel {
    total: u64,
}

impl Model for GCounterModel {
    type Crdt = GCounter;
    type Op = u64;
    fn command(&mut self, _r: usize, c: &mut GCounter, ops: &[u64]) -> Option<CrdtDelta> {
        for by in ops {
            c.increment(*by);
        }
        let sum: u64 = ops.iter().sum();
        self.total += sum;
        let delta = c.take_delta();
        let expected =
            (sum != 0).then(|| wrap(Delta::Gcounter(pb::GCounterDelta { increment: sum })));
        assert_eq!(delta, expected, "the delta is the command's sum");
        delta
    }
}

struct PNCounterModel {
    total: i64,
}

impl Model for PNCounterModel {
    type Crdt = PNCounter;
    type Op = i64;
    fn command(&mut self, _r: usize, c: &mut PNCounter, ops: &[i64]) -> Option<CrdtDelta> {
        for by in ops {
            if *by % 2 == 0 {
                c.increment(*by);
            } else {
                c.decrement(-*by);
            }
        }
        let net: i64 = ops.iter().sum();
        self.total += net;
        let delta = c.take_delta();
        let expected =
            (net != 0).then(|| wrap(Delta::Pncounter(pb::PnCounterDelta { change: net })));
        assert_eq!(delta, expected, "the delta is the command's net change");
        delta
    }
}

// ---------------------------------------------------------------------------
// GSet and Flag: any order, with duplicates
// ---------------------------------------------------------------------------

struct GSetModel {
    all: BTreeSet<i32>,
}

impl Model for GSetModel {
    type Crdt = GSet<i32>;
    type Op = i32;
    fn command(&mut self, _r: usize, set: &mut GSet<i32>, ops: &[i32]) -> Option<CrdtDelta> {
        let before: BTreeSet<i32> = set.iter().copied().collect();
        set.extend(ops.iter().copied());
        self.all.extend(ops.iter().copied());
        let after: BTreeSet<i32> = set.iter().copied().collect();
        let delta = set.take_delta();
        let new: BTreeSet<Enc> = after
            .difference(&before)
            .map(|e| enc(&e.to_any()))
            .collect();
        let got: BTreeSet<Enc> = match &delta {
            Some(CrdtDelta {
                delta: Some(Delta::Gset(d)),
            }) => d.added.iter().map(enc).collect(),
            None => BTreeSet::new(),
            other => panic!("not a GSet delta: {other:?}"),
        };
        assert_eq!(got, new, "the delta is exactly the new elements");
        delta
    }
}

struct FlagModel {
    enabled: bool,
}

impl Model for FlagModel {
    type Crdt = Flag;
    type Op = bool;
    fn command(&mut self, _r: usize, flag: &mut Flag, ops: &[bool]) -> Option<CrdtDelta> {
        let before = flag.is_enabled();
        for enable in ops {
            if *enable {
                flag.enable();
            }
        }
        self.enabled |= flag.is_enabled();
        let delta = flag.take_delta();
        let expected = (!before && flag.is_enabled())
            .then(|| wrap(Delta::Flag(pb::FlagDelta { value: true })));
        assert_eq!(delta, expected);
        delta
    }
}

// ---------------------------------------------------------------------------
// ORSet
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum SetOp {
    Add(u8),
    Remove(u8),
    /// Keeps elements whose number is not divisible by this.
    RetainNotDivisible(u8),
    Clear,
}

fn set_op(with_clear: bool) -> BoxedStrategy<SetOp> {
    let n = 0u8..6;
    let ops = prop_oneof![
        3 => n.clone().prop_map(SetOp::Add),
        2 => n.prop_map(SetOp::Remove),
        1 => (2u8..4).prop_map(SetOp::RetainNotDivisible),
    ];
    if with_clear {
        prop_oneof![6 => ops, 1 => Just(SetOp::Clear)].boxed()
    } else {
        ops.boxed()
    }
}

/// An encoded payload, sortable.
type Enc = (String, Vec<u8>);

fn enc(any: &Any) -> Enc {
    (any.type_url.clone(), any.value.clone())
}

/// An ORSet delta as (cleared, removed, added), order aside.
type SetDiff = (bool, BTreeSet<Enc>, BTreeSet<Enc>);

fn orset_diff(delta: Option<&CrdtDelta>) -> Option<SetDiff> {
    delta.map(|d| match &d.delta {
        Some(Delta::Orset(o)) => (
            o.cleared,
            o.removed.iter().map(enc).collect(),
            o.added.iter().map(enc).collect(),
        ),
        other => panic!("not an ORSet delta: {other:?}"),
    })
}

/// The minimal delta that turns `before` into `after`.
fn expected_orset_diff(
    before: &BTreeSet<Enc>,
    after: &BTreeSet<Enc>,
    cleared: bool,
) -> Option<SetDiff> {
    let (removed, added) = if cleared {
        (BTreeSet::new(), after.clone())
    } else {
        (
            before.difference(after).cloned().collect(),
            after.difference(before).cloned().collect(),
        )
    };
    (cleared || !removed.is_empty() || !added.is_empty()).then_some((cleared, removed, added))
}

fn any_set<T: Payload + Clone>(set: &ORSet<T>) -> BTreeSet<Enc> {
    set.iter().map(|e| enc(&e.to_any())).collect()
}

/// Runs set operations on elements `element(n)`; returns whether a clear
/// emptied a non-empty set.
fn run_set_ops<T: Payload + Clone>(
    set: &mut ORSet<T>,
    ops: &[SetOp],
    element: impl Fn(u8) -> T,
    number: impl Fn(&T) -> Option<u8>,
) -> bool {
    let mut cleared = false;
    for op in ops {
        match op {
            SetOp::Add(n) => {
                let was = set.contains(&element(*n));
                assert_eq!(set.insert(element(*n)), !was);
            }
            SetOp::Remove(n) => {
                let was = set.contains(&element(*n));
                assert_eq!(set.remove(&element(*n)), was);
            }
            SetOp::RetainNotDivisible(d) => {
                set.retain(|e| number(e).is_none_or(|n| n % d != 0));
            }
            SetOp::Clear => {
                cleared |= !set.is_empty();
                set.clear();
                assert!(set.is_empty());
            }
        }
    }
    cleared
}

/// Each element has one owner, the only replica that adds or removes it;
/// no clears (a clear touches other owners' elements). Delivery is FIFO
/// per sender, at least once: with no concurrent operations on the same
/// element, every replica sees each element's operations in their order.
struct OwnedORSetModel {
    present: BTreeSet<String>,
}

fn owned(r: usize, n: u8) -> String {
    format!("r{r}-{n}")
}

impl Model for OwnedORSetModel {
    type Crdt = ORSet<String>;
    type Op = SetOp;
    fn command(&mut self, r: usize, set: &mut ORSet<String>, ops: &[SetOp]) -> Option<CrdtDelta> {
        let before = any_set(set);
        let prefix = format!("r{r}-");
        let cleared = run_set_ops(
            set,
            ops,
            |n| owned(r, n),
            |e| e.strip_prefix(&prefix).and_then(|n| n.parse().ok()),
        );
        assert!(!cleared, "no clears in this model");
        self.present.retain(|e| !e.starts_with(&prefix));
        self.present
            .extend(set.iter().filter(|e| e.starts_with(&prefix)).cloned());
        let after = any_set(set);
        let delta = set.take_delta();
        assert_eq!(
            orset_diff(delta.as_ref()),
            expected_orset_diff(&before, &after, false),
            "the delta is the minimal diff"
        );
        delta
    }
}

/// One writer (replica 0) does everything, clears included; the others
/// only receive, FIFO and at least once. The readers end with the writer's set.
struct SingleWriterORSetModel;

impl Model for SingleWriterORSetModel {
    type Crdt = ORSet<i64>;
    type Op = SetOp;
    fn command(&mut self, r: usize, set: &mut ORSet<i64>, ops: &[SetOp]) -> Option<CrdtDelta> {
        if r != 0 {
            return None;
        }
        let before = any_set(set);
        let cleared = run_set_ops(set, ops, i64::from, |e| u8::try_from(*e).ok());
        let after = any_set(set);
        let delta = set.take_delta();
        assert_eq!(
            orset_diff(delta.as_ref()),
            expected_orset_diff(&before, &after, cleared),
            "the delta is the minimal diff (cleared alone, plus later adds)"
        );
        delta
    }
}

// ---------------------------------------------------------------------------
// LWWRegister
// ---------------------------------------------------------------------------

/// Writes use the default (wall) clock, so the last write in real time wins.
/// The proxy merges by clock and sends a node a change only when the merged
/// value changed; the model stands in for that by skipping a delivered write
/// older than the newest write the replica holds. Any order, duplicates too.
struct LwwModel {
    /// The real-time position of the write each replica holds.
    holds: Vec<Option<u64>>,
    last: Option<(u64, String)>,
    next_global: u64,
}

impl Model for LwwModel {
    type Crdt = LWWRegister<String>;
    type Op = u8;
    fn command(
        &mut self,
        r: usize,
        reg: &mut LWWRegister<String>,
        ops: &[u8],
    ) -> Option<CrdtDelta> {
        let before = reg.get().clone();
        for v in ops {
            reg.set(format!("v{v}"));
        }
        let delta = reg.take_delta();
        let changed = ops.iter().any(|v| format!("v{v}") != before);
        assert_eq!(
            delta.is_some(),
            changed,
            "a write of the held value alone is no change"
        );
        if let Some(d) = &delta {
            let Some(Delta::Lwwregister(l)) = &d.delta else {
                panic!("not an LWWRegister delta: {d:?}");
            };
            assert_eq!(l.value, Some(reg.get().to_any()));
            assert_eq!((l.clock, l.custom_clock_value), (0, 0));
            // The harness numbers sent deltas in the order they are sent.
            self.holds[r] = Some(self.next_global);
            self.last = Some((self.next_global, reg.get().clone()));
            self.next_global += 1;
        }
        delta
    }
    fn deliver(&mut self, r: usize, reg: &mut LWWRegister<String>, msg: &Msg) {
        if self.holds[r].is_some_and(|held| held >= msg.global) {
            return;
        }
        reg.apply_delta(&msg.delta).expect("delta applies");
        self.holds[r] = Some(msg.global);
    }
}

// ---------------------------------------------------------------------------
// ORMap with several value kinds
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    GCounter,
    PNCounter,
    ORSet,
    Flag,
    Register,
}

const SLOT_KINDS: [ValueKind; 5] = [
    ValueKind::GCounter,
    ValueKind::ORSet,
    ValueKind::Flag,
    ValueKind::PNCounter,
    ValueKind::Register,
];

fn new_value(kind: ValueKind) -> Crdt {
    match kind {
        ValueKind::GCounter => GCounter::new().into(),
        ValueKind::PNCounter => PNCounter::new().into(),
        ValueKind::ORSet => ORSet::<Any>::new().into(),
        ValueKind::Flag => Flag::new().into(),
        ValueKind::Register => LWWRegister::new(String::new().to_any()).into(),
    }
}

/// Changes a value: counters count, flags enable, registers are written,
/// and in a set the replica toggles an element it owns.
fn update_value(r: usize, value: &mut Crdt, x: u8) {
    match value {
        Crdt::GCounter(c) => {
            c.increment(u64::from(x));
        }
        Crdt::PNCounter(c) => {
            c.increment(i64::from(x) - 2);
        }
        Crdt::ORSet(s) => {
            let element = owned(r, x % 3).to_any();
            if !s.remove(&element) {
                s.insert(element);
            }
        }
        Crdt::Flag(f) => f.enable(),
        Crdt::LWWRegister(l) => l.set(format!("v{x}").to_any()),
        other => panic!("no such value kind here: {other:?}"),
    }
}

#[derive(Debug, Clone)]
enum MapOp {
    /// Creates the owner's entry in a slot (the kind comes with the slot).
    Create(usize, u8),
    /// Removes the owner's entry in a slot.
    Remove(usize),
    /// Changes some present entry.
    Update(Index, u8),
    /// Replaces the entry in a slot by a fresh value.
    Replace(usize, u8),
    /// Removes the entries whose key is in the upper half of the slots.
    RetainLowSlots,
    Clear,
}

fn map_op(single_writer: bool) -> BoxedStrategy<MapOp> {
    let slot = 0..SLOT_KINDS.len();
    let shared = prop_oneof![
        3 => (slot.clone(), 0u8..5).prop_map(|(s, x)| MapOp::Create(s, x)),
        1 => slot.clone().prop_map(MapOp::Remove),
        4 => (any::<Index>(), 0u8..5).prop_map(|(i, x)| MapOp::Update(i, x)),
    ];
    if single_writer {
        prop_oneof![
            8 => shared,
            2 => (slot, 0u8..5).prop_map(|(s, x)| MapOp::Replace(s, x)),
            1 => Just(MapOp::RetainLowSlots),
            1 => Just(MapOp::Clear),
        ]
        .boxed()
    } else {
        shared.boxed()
    }
}

/// Many writers, causal delivery, no duplicates (an `added` entry replaces
/// a value, so a late copy would undo later updates). Key lifecycles belong
/// to the key's owner and a removed key is never reused (each removal
/// starts a new generation of the slot's key name): without the proxy's
/// dots, a concurrent update and re-creation of the same key cannot be
/// ordered. Any replica may change any present value: counters commute, a
/// flag only enables, an update racing a removal loses on every replica,
/// and in nested sets each replica toggles only elements it owns. Registers
/// are written by their key's owner only, as concurrent register writes
/// need the proxy's clocks.
struct MultiWriterORMapModel {
    generation: Vec<[u32; SLOT_KINDS.len()]>,
}

fn slot_key(owner: usize, slot: usize, generation: u32) -> String {
    format!("r{owner}-s{slot}-g{generation}")
}

fn key_owner(key: &str) -> usize {
    key[1..2].parse().unwrap()
}

fn key_slot(key: &str) -> usize {
    key.split('-').nth(1).unwrap()[1..].parse().unwrap()
}

impl Model for MultiWriterORMapModel {
    type Crdt = ORMap<String, Crdt>;
    type Op = MapOp;
    fn command(
        &mut self,
        r: usize,
        map: &mut ORMap<String, Crdt>,
        ops: &[MapOp],
    ) -> Option<CrdtDelta> {
        for op in ops {
            match op {
                MapOp::Create(slot, x) => {
                    let key = slot_key(r, *slot, self.generation[r][*slot]);
                    let value = map.get_or_insert_with(key, || new_value(SLOT_KINDS[*slot]));
                    update_value(r, value, *x);
                }
                MapOp::Remove(slot) => {
                    let key = slot_key(r, *slot, self.generation[r][*slot]);
                    if map.remove(&key) {
                        self.generation[r][*slot] += 1;
                    }
                }
                MapOp::Update(pick, x) => {
                    let keys: Vec<String> = map
                        .keys()
                        .filter(|k| {
                            key_owner(k) == r || SLOT_KINDS[key_slot(k)] != ValueKind::Register
                        })
                        .cloned()
                        .collect();
                    if !keys.is_empty() {
                        let key = pick.get(&keys);
                        update_value(r, map.get_mut(key).unwrap(), *x);
                    }
                }
                other => unreachable!("not generated for many writers: {other:?}"),
            }
        }
        map.take_delta()
    }
}

/// One writer (replica 0) does everything: replacing values, retain and
/// clear included; the others only receive, FIFO, no duplicates (nested
/// counter updates are not idempotent). The readers end with the writer's map.
struct SingleWriterORMapModel;

impl Model for SingleWriterORMapModel {
    type Crdt = ORMap<String, Crdt>;
    type Op = MapOp;
    fn command(
        &mut self,
        r: usize,
        map: &mut ORMap<String, Crdt>,
        ops: &[MapOp],
    ) -> Option<CrdtDelta> {
        if r != 0 {
            return None;
        }
        let key = |slot: usize| slot_key(0, slot, 0);
        for op in ops {
            match op {
                MapOp::Create(slot, x) => {
                    let value = map.get_or_insert_with(key(*slot), || new_value(SLOT_KINDS[*slot]));
                    update_value(0, value, *x);
                }
                MapOp::Remove(slot) => {
                    let was = map.contains_key(&key(*slot));
                    assert_eq!(map.remove(&key(*slot)), was);
                }
                MapOp::Update(pick, x) => {
                    let keys: Vec<String> = map.keys().cloned().collect();
                    if !keys.is_empty() {
                        update_value(0, map.get_mut(pick.get(&keys)).unwrap(), *x);
                    }
                }
                MapOp::Replace(slot, x) => {
                    let mut value = new_value(SLOT_KINDS[*slot]);
                    update_value(0, &mut value, *x);
                    map.insert(key(*slot), value);
                }
                MapOp::RetainLowSlots => map.retain(|k, _| key_slot(k) < SLOT_KINDS.len() / 2),
                MapOp::Clear => map.clear(),
            }
        }
        map.take_delta()
    }
}

// ---------------------------------------------------------------------------
// Vote, through a model of the proxy
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum VoteStep {
    /// A command on a node: its votes in order.
    Command(usize, Vec<bool>),
    /// The next state the proxy sent to a node arrives.
    Deliver(usize),
}

fn vote_steps() -> impl Strategy<Value = Vec<VoteStep>> {
    let step = prop_oneof![
        (0..REPLICAS, prop::collection::vec(any::<bool>(), 1..4))
            .prop_map(|(n, v)| VoteStep::Command(n, v)),
        (0..REPLICAS).prop_map(VoteStep::Deliver),
    ];
    prop::collection::vec(step, 1..40)
}

fn vote_state(vote: &Vote) -> (bool, u32, u32) {
    (vote.self_vote(), vote.votes_for(), vote.voters())
}

// ---------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Counters: any delivery order; each delta exactly once.
    #[test]
    fn gcounters_converge(steps in steps((0u64..5).boxed()), drain in drain()) {
        let mut model = GCounterModel { total: 0 };
        let start = wrap(Delta::Gcounter(pb::GCounterDelta { increment: 7 }));
        let replicas = simulate(&mut model, fresh(&start), Delivery::AnyOrder, Duplicates::Never, &steps, &drain);
        assert_converged(&replicas);
        prop_assert_eq!(replicas[0].value(), 7 + model.total);
    }

    /// Counters: any delivery order; each delta exactly once.
    #[test]
    fn pncounters_converge(steps in steps((-5i64..5).boxed()), drain in drain()) {
        let mut model = PNCounterModel { total: 0 };
        let start = wrap(Delta::Pncounter(pb::PnCounterDelta { change: -3 }));
        let replicas = simulate(&mut model, fresh(&start), Delivery::AnyOrder, Duplicates::Never, &steps, &drain);
        assert_converged(&replicas);
        prop_assert_eq!(replicas[0].value(), -3 + model.total);
    }

    /// GSet: any order, deltas possibly delivered again later (adding is idempotent).
    #[test]
    fn gsets_converge(steps in steps((0i32..10).boxed()), drain in drain()) {
        let mut model = GSetModel { all: BTreeSet::new() };
        let start = wrap(Delta::Gset(pb::GSetDelta::default()));
        let replicas = simulate(&mut model, fresh(&start), Delivery::AnyOrder, Duplicates::Later, &steps, &drain);
        assert_converged(&replicas);
        let got: BTreeSet<i32> = replicas[0].iter().copied().collect();
        prop_assert_eq!(got, model.all);
    }

    /// Flag: any order, deltas possibly delivered again later.
    #[test]
    fn flags_converge(steps in steps(prop::bool::weighted(0.2).boxed()), drain in drain()) {
        let mut model = FlagModel { enabled: false };
        let start = wrap(Delta::Flag(pb::FlagDelta { value: false }));
        let replicas = simulate(&mut model, fresh(&start), Delivery::AnyOrder, Duplicates::Later, &steps, &drain);
        assert_converged(&replicas);
        prop_assert_eq!(replicas[0].is_enabled(), model.enabled);
    }

    /// ORSet, elements owned by replicas: FIFO per sender, at least once.
    #[test]
    fn orsets_with_owned_elements_converge(steps in steps(set_op(false)), drain in drain()) {
        let mut model = OwnedORSetModel { present: BTreeSet::new() };
        let start = wrap(Delta::Orset(pb::OrSetDelta::default()));
        let replicas = simulate(&mut model, fresh(&start), Delivery::Fifo, Duplicates::AtOnce, &steps, &drain);
        assert_converged(&replicas);
        let got: BTreeSet<String> = replicas[0].iter().cloned().collect();
        prop_assert_eq!(got, model.present);
    }

    /// ORSet, one writer with clears: FIFO, at least once.
    #[test]
    fn orset_readers_follow_a_single_writer(steps in steps(set_op(true)), drain in drain()) {
        let start = wrap(Delta::Orset(pb::OrSetDelta {
            added: vec![1i64.to_any(), 4i64.to_any()],
            ..Default::default()
        }));
        let replicas = simulate(&mut SingleWriterORSetModel, fresh(&start), Delivery::Fifo, Duplicates::AtOnce, &steps, &drain);
        assert_converged(&replicas);
    }

    /// LWWRegister: the latest write wins everywhere (see `LwwModel`).
    #[test]
    fn lww_registers_converge_on_the_last_write(steps in steps((0u8..4).boxed()), drain in drain()) {
        let mut model = LwwModel { holds: vec![None; REPLICAS], last: None, next_global: 0 };
        let start = wrap(Delta::Lwwregister(pb::LwwRegisterDelta {
            value: Some("v0".to_owned().to_any()),
            ..Default::default()
        }));
        let replicas = simulate(&mut model, fresh(&start), Delivery::AnyOrder, Duplicates::Later, &steps, &drain);
        assert_converged(&replicas);
        let expected = model.last.map_or_else(|| "v0".to_owned(), |(_, v)| v);
        prop_assert_eq!(replicas[0].get(), &expected);
    }

    /// ORMap with five value kinds and many writers: causal delivery.
    #[test]
    fn ormaps_converge_under_causal_delivery(steps in steps(map_op(false)), drain in drain()) {
        let mut model = MultiWriterORMapModel { generation: vec![[0; SLOT_KINDS.len()]; REPLICAS] };
        let start = wrap(Delta::Ormap(pb::OrMapDelta::default()));
        let replicas = simulate(&mut model, fresh(&start), Delivery::Causal, Duplicates::Never, &steps, &drain);
        assert_converged(&replicas);
    }

    /// ORMap with one writer that also replaces, retains and clears: FIFO.
    #[test]
    fn ormap_readers_follow_a_single_writer(steps in steps(map_op(true)), drain in drain()) {
        let replicas = simulate(
            &mut SingleWriterORMapModel,
            fresh(&wrap(Delta::Ormap(pb::OrMapDelta::default()))),
            Delivery::Fifo,
            Duplicates::Never,
            &steps,
            &drain,
        );
        assert_converged(&replicas);
    }

    /// Vote: each node announces its own vote to a model of the proxy, which
    /// counts the votes and sends every node the new state. The proxy's
    /// states reach a node in order, and a node's command comes after the
    /// states sent before it (one stream per node); nodes interleave freely.
    #[test]
    fn votes_converge_through_the_proxy(steps in vote_steps()) {
        let start = wrap(Delta::Vote(pb::VoteDelta {
            self_vote: false,
            votes_for: 0,
            total_voters: REPLICAS as i32,
        }));
        let mut nodes: Vec<Vote> = fresh(&start);
        let mut recorded = [false; REPLICAS];
        let mut last_vote = [false; REPLICAS];
        let mut to_node: Vec<VecDeque<CrdtDelta>> = vec![VecDeque::new(); REPLICAS];

        let receive = |node: &mut Vote, queue: &mut VecDeque<CrdtDelta>| {
            while let Some(state) = queue.pop_front() {
                node.apply_delta(&state).unwrap();
                assert!(!node.has_delta());
            }
        };
        for step in &steps {
            match step {
                VoteStep::Command(n, votes) => {
                    let n = *n;
                    receive(&mut nodes[n], &mut to_node[n]);
                    let (before, for_before, _) = vote_state(&nodes[n]);
                    for vote in votes {
                        nodes[n].vote(*vote);
                    }
                    last_vote[n] = nodes[n].self_vote();
                    let (after, for_after, _) = vote_state(&nodes[n]);
                    let expected_for = match (before, after) {
                        (false, true) => for_before + 1,
                        (true, false) => for_before - 1,
                        _ => for_before,
                    };
                    prop_assert_eq!(for_after, expected_for, "votes_for follows the local vote");
                    let delta = nodes[n].take_delta();
                    let expected = (before != after).then(|| wrap(Delta::Vote(pb::VoteDelta {
                        self_vote: after,
                        votes_for: 0,
                        total_voters: 0,
                    })));
                    prop_assert_eq!(&delta, &expected, "the delta is the changed self vote only");
                    if let Some(delta) = delta {
                        check_wire(&delta);
                        // The proxy takes the vote with the reply and tells everyone.
                        let Some(Delta::Vote(v)) = delta.delta else { unreachable!() };
                        recorded[n] = v.self_vote;
                        let count = recorded.iter().filter(|v| **v).count() as i32;
                        for (i, queue) in to_node.iter_mut().enumerate() {
                            queue.push_back(wrap(Delta::Vote(pb::VoteDelta {
                                self_vote: recorded[i],
                                votes_for: count,
                                total_voters: REPLICAS as i32,
                            })));
                        }
                    }
                }
                VoteStep::Deliver(n) => {
                    if let Some(state) = to_node[*n].pop_front() {
                        nodes[*n].apply_delta(&state).unwrap();
                        prop_assert!(!nodes[*n].has_delta());
                    }
                }
            }
        }
        for (node, queue) in nodes.iter_mut().zip(&mut to_node) {
            receive(node, queue);
        }
        let count = last_vote.iter().filter(|v| **v).count() as u32;
        for (i, node) in nodes.iter().enumerate() {
            prop_assert_eq!(vote_state(node), (last_vote[i], count, REPLICAS as u32));
        }
    }

    /// LWWRegister deltas carry the clock they were written with, and
    /// survive the wire, whatever the clock.
    #[test]
    fn lww_deltas_carry_their_clock(writes in prop::collection::vec((0u8..3, 0u8..4, -3i64..3), 1..20)) {
        let mut reg = LWWRegister::<String>::from_delta(&wrap(Delta::Lwwregister(pb::LwwRegisterDelta {
            value: Some("v0".to_owned().to_any()),
            ..Default::default()
        }))).unwrap();
        for (v, clock, custom) in writes {
            let clock = match clock {
                0 => cloudstate_sdk::crdt::Clock::Default,
                1 => cloudstate_sdk::crdt::Clock::Reverse,
                2 => cloudstate_sdk::crdt::Clock::Custom(custom),
                _ => cloudstate_sdk::crdt::Clock::CustomAutoIncrement(custom),
            };
            let before = reg.get().clone();
            let value = format!("v{v}");
            reg.set_with_clock(value.clone(), clock);
            let delta = reg.take_delta();
            let default = clock == cloudstate_sdk::crdt::Clock::Default;
            prop_assert_eq!(delta.is_some(), value != before || !default,
                "after a take the pending clock is Default, so only a new value or another clock is a change");
            if let Some(delta) = delta {
                check_wire(&delta);
                let Some(Delta::Lwwregister(l)) = &delta.delta else { unreachable!() };
                let (number, custom_value) = match clock {
                    cloudstate_sdk::crdt::Clock::Default => (0, 0),
                    cloudstate_sdk::crdt::Clock::Reverse => (1, 0),
                    cloudstate_sdk::crdt::Clock::Custom(c) => (2, c),
                    cloudstate_sdk::crdt::Clock::CustomAutoIncrement(c) => (3, c),
                };
                prop_assert_eq!(l.value.clone(), Some(value.to_any()));
                prop_assert_eq!((l.clock, l.custom_clock_value), (number, custom_value));
            }
        }
    }
}

/// The maps of the ORMap properties really hold values of several kinds.
#[test]
fn ormap_models_mix_value_kinds() {
    let mut map: ORMap<String, Crdt> = ORMap::new();
    for (slot, kind) in SLOT_KINDS.iter().enumerate() {
        update_value(
            0,
            map.get_or_insert_with(slot_key(0, slot, 0), || new_value(*kind)),
            1,
        );
    }
    let kinds: BTreeSet<String> = map.iter().map(|(_, v)| v.kind().to_string()).collect();
    assert_eq!(kinds.len(), SLOT_KINDS.len());
    let keys: BTreeMap<usize, usize> = map.keys().map(|k| (key_slot(k), key_owner(k))).collect();
    assert_eq!(keys.len(), SLOT_KINDS.len());
}
