//! The services a build declares, one kind each, and the rules of each kind
//! as data: validation and code generation dispatch on [`Kind`] rather than
//! keeping a path per kind.

use crate::{Action, Crdt, EventSourced, ValueEntity};

/// One declared service with its kind-specific settings; after validation,
/// with its message types resolved to Rust paths.
// A build holds a handful of these: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Declared {
    EventSourced(EventSourced),
    ValueEntity(ValueEntity),
    Action(Action),
    Crdt(Crdt),
}

impl Declared {
    /// The fully qualified service name.
    pub(crate) fn service(&self) -> &str {
        match self {
            Declared::EventSourced(decl) => &decl.service,
            Declared::ValueEntity(decl) => &decl.service,
            Declared::Action(decl) => &decl.service,
            Declared::Crdt(decl) => &decl.service,
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Declared::EventSourced(_) => Kind::EventSourced,
            Declared::ValueEntity(_) => Kind::ValueEntity,
            Declared::Action(_) => Kind::Action,
            Declared::Crdt(_) => Kind::Crdt,
        }
    }
}

/// The kinds of service. The order is the order of validation, so that
/// among several mistakes the same one is reported first whatever order
/// the declarations were made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    EventSourced,
    ValueEntity,
    Action,
    Crdt,
}

/// Which streaming rpcs a kind of service takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streaming {
    /// Unary rpcs only.
    None,
    /// Unary and server-streaming rpcs.
    ServerOnly,
    /// Any of the four call shapes.
    All,
}

/// What tells the kinds apart during validation.
#[derive(Debug)]
pub(crate) struct Rules {
    /// The kind in messages: `event-sourced service [..]`.
    pub(crate) label: &'static str,
    /// Its services in messages: `event-sourced entities take ..`.
    pub(crate) plural: &'static str,
    pub(crate) streaming: Streaming,
    /// Whether the service is an entity, whose rpc inputs must name the
    /// entity key: the proxy refuses an entity with a method whose input
    /// has no key field.
    pub(crate) entity_keys: bool,
    /// Trait method names the generated trait takes for itself.
    pub(crate) reserved: &'static [&'static str],
    /// The items generated next to the trait, which a trait of the same
    /// name would clash with: (name, what it is).
    pub(crate) generated: &'static [(&'static str, &'static str)],
}

impl Kind {
    pub(crate) fn rules(self) -> &'static Rules {
        match self {
            Kind::EventSourced => &Rules {
                label: "event-sourced",
                plural: "event-sourced entities",
                streaming: Streaming::None,
                entity_keys: true,
                reserved: &["initial_state", "snapshot", "restore"],
                generated: &[
                    ("Entity", "wrapper"),
                    ("Event", "event enum"),
                    ("Context", "context alias"),
                ],
            },
            Kind::ValueEntity => &Rules {
                label: "value entity",
                plural: "value entities",
                streaming: Streaming::None,
                entity_keys: true,
                reserved: &[],
                generated: &[("Entity", "wrapper"), ("Context", "context alias")],
            },
            Kind::Action => &Rules {
                label: "action",
                plural: "actions",
                streaming: Streaming::All,
                entity_keys: false,
                reserved: &[],
                generated: &[("Action", "wrapper")],
            },
            Kind::Crdt => &Rules {
                label: "CRDT",
                plural: "CRDT entities",
                streaming: Streaming::ServerOnly,
                entity_keys: true,
                reserved: &["initial_state", "state"],
                generated: &[
                    ("Entity", "wrapper"),
                    ("Context", "context alias"),
                    ("StreamContext", "context alias"),
                ],
            },
        }
    }
}

/// The error for a service declared again, naming what both declarations
/// have in common.
pub(crate) fn declared_twice(first: Kind, second: Kind, service: &str) -> String {
    let what = match (first, second) {
        (Kind::EventSourced, Kind::EventSourced) => " as an event-sourced entity",
        _ if first.rules().entity_keys && second.rules().entity_keys => " as an entity",
        _ => "",
    };
    format!("service [{service}] is declared{what} twice")
}
