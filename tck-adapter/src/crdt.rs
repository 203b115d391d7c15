//! The CRDT TCK models (`crdt.proto`), written against the generated traits
//! as a user would.
//!
//! `CrdtTckModel` picks its CRDT from the entity id's prefix before the first
//! `-` (`GCounter-1`, `ORMap-7`, ...); ORMap values pick theirs from their
//! key's prefix the same way. Set elements, map keys and register values are
//! strings, carried as `p.cloudstate.io/string` primitives.

use std::time::Duration;

use cloudstate_sdk::crdt::{
    Clock, Crdt, CrdtOptions, Flag, GCounter, GSet, LWWRegister, ORMap, ORSet, PNCounter, Vote,
    WriteConsistency,
};
use cloudstate_sdk::payload::Payload;
use cloudstate_sdk::{Any, CloudState, CommandResult, Failure, Reply};

use crate::proto::cloudstate::tck::model::crdt::{
    FlagValue, GCounterValue, GSetValue, LwwRegisterClockType, LwwRegisterValue, OrMapEntryValue,
    OrMapValue, OrSetValue, PnCounterValue, Request, Response, State, StreamedRequest, Update,
    UpdateWriteConsistency, VoteValue, crdt_configured, crdt_tck_model, crdt_two, or_map_update,
    or_set_update, request_action::Action, state::Value, update,
};

/// Registers the three CRDT model services, each with its full service name
/// as persistence id.
pub fn register(server: CloudState) -> CloudState {
    server
        .register(
            crdt_tck_model::Entity(TckModel),
            CrdtOptions::new().persistence_id(crdt_tck_model::SERVICE_NAME),
        )
        .register(
            crdt_two::Entity(Two),
            CrdtOptions::new().persistence_id(crdt_two::SERVICE_NAME),
        )
        .register(
            crdt_configured::Entity(Configured),
            CrdtOptions::new()
                .persistence_id(crdt_configured::SERVICE_NAME)
                .passivation_timeout(Duration::from_millis(100)),
        )
}

/// `CrdtTckModel`: applies the request's actions to a CRDT of the type the
/// entity id names, and replies with its state.
#[derive(Debug, Clone, Copy, Default)]
pub struct TckModel;

impl crdt_tck_model::CrdtTckModel for TckModel {
    type State = Crdt;

    /// # Panics
    /// When the entity id names no CRDT type: the TCK never does that, and
    /// there is no CRDT to make.
    fn initial_state(&self, entity_id: &str) -> Crdt {
        new_crdt(entity_id).unwrap_or_else(|e| panic!("{}", e.description()))
    }

    fn process(
        &self,
        request: Request,
        ctx: &mut crdt_tck_model::Context<'_, Self>,
    ) -> CommandResult<Response> {
        let mut forward = None;
        for action in request.actions.into_iter().filter_map(|a| a.action) {
            match action {
                Action::Update(update) => {
                    apply_update(ctx.state_mut(), &update)?;
                    ctx.set_write_consistency(write_consistency(&update));
                }
                Action::Delete(_) => ctx.delete(),
                Action::Forward(f) => forward = Some(crdt_two::call(&two_request(f.id))),
                Action::Effect(e) => ctx.effect(crdt_two::call(&two_request(e.id)), e.synchronous),
                Action::Fail(fail) => return Err(Failure::new(fail.message)),
            }
        }
        Ok(match forward {
            Some(call) => Reply::forward(call),
            None => Reply::message(response(ctx.state())?),
        })
    }

    fn process_streamed(
        &self,
        request: StreamedRequest,
        ctx: &mut crdt_tck_model::StreamContext<'_, '_, Self, Response>,
    ) -> Result<Option<Reply<Response>>, Failure> {
        if ctx.is_streamed() {
            let on_change = request.clone();
            ctx.on_change(move |change| {
                for effect in &on_change.effects {
                    change.effect(
                        crdt_two::call(&two_request(effect.id.clone())),
                        effect.synchronous,
                    );
                }
                let state = state_of(change.state())?;
                if on_change.end_state.as_ref() == Some(&state) {
                    change.end_stream();
                }
                Ok((!on_change.empty).then_some(Response { state: Some(state) }))
            });
            if let Some(cancel_update) = request.cancel_update.clone() {
                ctx.on_cancel(move |cancelled| {
                    if let Err(e) = apply_update(cancelled.state_mut(), &cancel_update) {
                        tracing::warn!("cancel update not applied: {}", e.description());
                    }
                });
            }
        }
        if let Some(initial_update) = &request.initial_update {
            apply_update(ctx.state_mut(), initial_update)?;
        }
        if request.empty {
            Ok(None)
        } else {
            Ok(Some(Reply::message(response(ctx.state())?)))
        }
    }
}

/// `CrdtTwo`: the forward and side-effect target. It owns a GCounter so that
/// a `delete` action can delete the entity; replies with an empty `Response`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Two;

impl crdt_two::CrdtTwo for Two {
    type State = GCounter;

    fn initial_state(&self, _: &str) -> GCounter {
        GCounter::new()
    }

    fn call(
        &self,
        request: Request,
        ctx: &mut crdt_two::Context<'_, Self>,
    ) -> CommandResult<Response> {
        if request
            .actions
            .iter()
            .any(|a| matches!(a.action, Some(Action::Delete(_))))
        {
            ctx.delete();
        }
        Ok(Response::default().into())
    }
}

/// `CrdtConfigured`: passivated after 100 ms; replies with an empty `Response`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Configured;

impl crdt_configured::CrdtConfigured for Configured {
    type State = GCounter;

    fn initial_state(&self, _: &str) -> GCounter {
        GCounter::new()
    }

    fn call(
        &self,
        _: Request,
        _: &mut crdt_configured::Context<'_, Self>,
    ) -> CommandResult<Response> {
        Ok(Response::default().into())
    }
}

fn two_request(id: String) -> Request {
    Request {
        id,
        actions: Vec::new(),
    }
}

fn write_consistency(update: &Update) -> WriteConsistency {
    match update.write_consistency() {
        UpdateWriteConsistency::Local => WriteConsistency::Local,
        UpdateWriteConsistency::Majority => WriteConsistency::Majority,
        UpdateWriteConsistency::All => WriteConsistency::All,
    }
}

/// A new, empty CRDT of the type `name` starts with (`ORSet-1` → ORSet).
fn new_crdt(name: &str) -> Result<Crdt, Failure> {
    let kind = name.split('-').next().unwrap_or_default();
    Ok(match kind {
        "GCounter" => Crdt::GCounter(GCounter::new()),
        "PNCounter" => Crdt::PNCounter(PNCounter::new()),
        "GSet" => Crdt::GSet(GSet::new()),
        "ORSet" => Crdt::ORSet(ORSet::new()),
        "LWWRegister" => Crdt::LWWRegister(LWWRegister::new(string(""))),
        "Flag" => Crdt::Flag(Flag::new()),
        "ORMap" => Crdt::ORMap(ORMap::new()),
        "Vote" => Crdt::Vote(Vote::new()),
        _ => {
            return Err(Failure::new(format!(
                "unknown CRDT type [{kind}] in [{name}]"
            )));
        }
    })
}

fn string(value: &str) -> Any {
    value.to_owned().to_any()
}

fn read_string(any: &Any) -> Result<String, Failure> {
    String::from_any(any).map_err(|e| Failure::new(format!("not a string element: {e}")))
}

fn mismatch(update: &str, crdt: &Crdt) -> Failure {
    Failure::new(format!(
        "a {update} update does not apply to a {} CRDT",
        crdt.kind()
    ))
}

/// Applies one `Update` to `crdt`; an update for another CRDT type fails.
fn apply_update(crdt: &mut Crdt, update: &Update) -> Result<(), Failure> {
    use update::Update as U;
    let Some(change) = &update.update else {
        return Ok(());
    };
    match (change, crdt) {
        (U::Gcounter(u), Crdt::GCounter(c)) => {
            c.increment(u.increment);
        }
        (U::Pncounter(u), Crdt::PNCounter(c)) => {
            c.increment(u.change);
        }
        (U::Gset(u), Crdt::GSet(s)) => {
            s.insert(string(&u.add));
        }
        (U::Orset(u), Crdt::ORSet(s)) => match &u.action {
            Some(or_set_update::Action::Add(e)) => {
                s.insert(string(e));
            }
            Some(or_set_update::Action::Remove(e)) => {
                s.remove(&string(e));
            }
            Some(or_set_update::Action::Clear(true)) => s.clear(),
            Some(or_set_update::Action::Clear(false)) | None => {}
        },
        (U::Lwwregister(u), Crdt::LWWRegister(r)) => {
            let value = string(&u.value);
            match &u.clock {
                None => r.set(value),
                Some(clock) => {
                    let clock = match clock.clock_type() {
                        LwwRegisterClockType::Default => Clock::Default,
                        LwwRegisterClockType::Reverse => Clock::Reverse,
                        LwwRegisterClockType::Custom => Clock::Custom(clock.custom_clock_value),
                        LwwRegisterClockType::CustomAutoIncrement => {
                            Clock::CustomAutoIncrement(clock.custom_clock_value)
                        }
                    };
                    r.set_with_clock(value, clock);
                }
            }
        }
        (U::Flag(_), Crdt::Flag(f)) => f.enable(),
        (U::Ormap(u), Crdt::ORMap(m)) => match &u.action {
            Some(or_map_update::Action::Add(key)) => {
                entry(m, key)?;
            }
            Some(or_map_update::Action::Update(entry_update)) => {
                let value = entry(m, &entry_update.key)?;
                if let Some(nested) = &entry_update.update {
                    apply_update(value, nested)?;
                }
            }
            Some(or_map_update::Action::Remove(key)) => {
                m.remove(&string(key));
            }
            Some(or_map_update::Action::Clear(true)) => m.clear(),
            Some(or_map_update::Action::Clear(false)) | None => {}
        },
        (U::Vote(u), Crdt::Vote(v)) => v.vote(u.self_vote),
        (change, crdt) => {
            let name = match change {
                U::Gcounter(_) => "GCounter",
                U::Pncounter(_) => "PNCounter",
                U::Gset(_) => "GSet",
                U::Orset(_) => "ORSet",
                U::Lwwregister(_) => "LWWRegister",
                U::Flag(_) => "Flag",
                U::Ormap(_) => "ORMap",
                U::Vote(_) => "Vote",
            };
            return Err(mismatch(name, crdt));
        }
    }
    Ok(())
}

/// The map's value at `key`, created from the key's prefix when absent.
fn entry<'m>(map: &'m mut ORMap<Any, Crdt>, key: &str) -> Result<&'m mut Crdt, Failure> {
    let any = string(key);
    if !map.contains_key(&any) {
        // Checked before creating, so that an unknown type creates nothing.
        new_crdt(key)?;
    }
    Ok(map.get_or_insert_with(any, || new_crdt(key).expect("the type was checked above")))
}

fn response(crdt: &Crdt) -> Result<Response, Failure> {
    Ok(Response {
        state: Some(state_of(crdt)?),
    })
}

/// The TCK's view of a CRDT: elements and map entries sorted.
fn state_of(crdt: &Crdt) -> Result<State, Failure> {
    let sorted = |elements: &mut dyn Iterator<Item = &Any>| -> Result<Vec<String>, Failure> {
        let mut strings = elements.map(read_string).collect::<Result<Vec<_>, _>>()?;
        strings.sort();
        Ok(strings)
    };
    let value = match crdt {
        Crdt::GCounter(c) => Value::Gcounter(GCounterValue { value: c.value() }),
        Crdt::PNCounter(c) => Value::Pncounter(PnCounterValue { value: c.value() }),
        Crdt::GSet(s) => Value::Gset(GSetValue {
            elements: sorted(&mut s.iter())?,
        }),
        Crdt::ORSet(s) => Value::Orset(OrSetValue {
            elements: sorted(&mut s.iter())?,
        }),
        Crdt::LWWRegister(r) => Value::Lwwregister(LwwRegisterValue {
            value: read_string(r.get())?,
        }),
        Crdt::Flag(f) => Value::Flag(FlagValue {
            value: f.is_enabled(),
        }),
        Crdt::ORMap(m) => {
            let mut entries = m
                .iter()
                .map(|(key, value)| {
                    Ok(OrMapEntryValue {
                        key: read_string(key)?,
                        value: Some(state_of(value)?),
                    })
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            Value::Ormap(OrMapValue { entries })
        }
        Crdt::Vote(v) => Value::Vote(VoteValue {
            self_vote: v.self_vote(),
            votes_for: i32::try_from(v.votes_for()).unwrap_or(i32::MAX),
            total_voters: i32::try_from(v.voters()).unwrap_or(i32::MAX),
        }),
    };
    Ok(State { value: Some(value) })
}
