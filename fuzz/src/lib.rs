//! Shared pieces of the fuzz targets: the input formats, the entities and
//! descriptors they drive, and the panic bookkeeping.
//!
//! Every target reads a plain byte format (documented on its parser) rather
//! than `arbitrary`'s: the seed corpus is written from the tests' own
//! messages by `examples/seeds.rs`, and that needs a format a program can
//! write as well as read.

use std::cell::RefCell;
use std::path::Path;
use std::sync::OnceLock;

use bytes::Bytes;
use cloudstate_sdk::CloudState;
use cloudstate_sdk::crdt::CrdtOptions;
use cloudstate_sdk::fuzzing::{StreamDriver, frame};
use cloudstate_sdk::valueentity::ValueEntityOptions;
use cloudstate_sdk::{EventSourcedOptions, prost::Message as _};
use prost_reflect::DescriptorPool;

/// The entity kind a stream input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `cloudstate.eventsourced.EventSourced`: the shopping cart and the TCK model.
    EventSourced,
    /// `cloudstate.valueentity.ValueEntity`: the value cart and the TCK model.
    ValueEntity,
    /// `cloudstate.crdt.Crdt`: the TCK model (every CRDT type) and the counters.
    Crdt,
}

/// One piece of a stream's request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A message, framed with its correct length (whether or not it decodes).
    Message(Vec<u8>),
    /// Bytes appended as they are: broken framing.
    Raw(Vec<u8>),
    /// The body's next bytes arrive in a new chunk.
    Split,
    /// A message framed with the compression flag set.
    Compressed(Vec<u8>),
}

/// A stream input: `kind byte, record*`. A record is a tag byte then, unless
/// the tag is a split, a little-endian `u16` length and that many bytes (fewer
/// at the end of the input). Tag `% 4`: 0 message, 1 raw, 2 split, 3
/// compressed. The kind byte `% 3`: 0 event sourced, 1 value entity, 2 CRDT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInput {
    /// Which protocol.
    pub kind: Kind,
    /// The request body.
    pub records: Vec<Record>,
}

impl StreamInput {
    /// Reads an input; any bytes are one.
    pub fn parse(data: &[u8]) -> Self {
        let Some((&kind, mut rest)) = data.split_first() else {
            return Self {
                kind: Kind::EventSourced,
                records: Vec::new(),
            };
        };
        let kind = match kind % 3 {
            0 => Kind::EventSourced,
            1 => Kind::ValueEntity,
            _ => Kind::Crdt,
        };
        let mut records = Vec::new();
        while let Some((&tag, after)) = rest.split_first() {
            rest = after;
            if tag % 4 == 2 {
                records.push(Record::Split);
                continue;
            }
            let len = match rest {
                [lo, hi, ..] => usize::from(u16::from_le_bytes([*lo, *hi])),
                _ => 0,
            };
            rest = rest.get(2..).unwrap_or_default();
            let (bytes, after) = rest.split_at(len.min(rest.len()));
            rest = after;
            let bytes = bytes.to_vec();
            records.push(match tag % 4 {
                0 => Record::Message(bytes),
                1 => Record::Raw(bytes),
                _ => Record::Compressed(bytes),
            });
        }
        Self { kind, records }
    }

    /// Writes the input back in the format [`parse`](Self::parse) reads.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![match self.kind {
            Kind::EventSourced => 0,
            Kind::ValueEntity => 1,
            Kind::Crdt => 2,
        }];
        for record in &self.records {
            let (tag, bytes) = match record {
                Record::Message(bytes) => (0, bytes),
                Record::Raw(bytes) => (1, bytes),
                Record::Split => {
                    out.push(2);
                    continue;
                }
                Record::Compressed(bytes) => (3, bytes),
            };
            out.push(tag);
            let len = u16::try_from(bytes.len()).expect("seed record under 64 KiB");
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    /// The request body, chunked where the input splits it.
    pub fn chunks(&self) -> Vec<Bytes> {
        let mut chunks = Vec::new();
        let mut current = Vec::new();
        for record in &self.records {
            match record {
                Record::Message(bytes) => current.extend(frame(bytes)),
                Record::Raw(bytes) => current.extend_from_slice(bytes),
                Record::Split => chunks.push(Bytes::from(std::mem::take(&mut current))),
                Record::Compressed(bytes) => {
                    let mut framed = frame(bytes);
                    framed[0] = 1;
                    current.extend(framed);
                }
            }
        }
        chunks.push(Bytes::from(current));
        chunks
    }
}

/// The stream drivers, one per kind, built once.
#[derive(Debug)]
pub struct Drivers {
    /// Shopping cart (snapshot every 5 events) and the TCK models.
    pub event_sourced: StreamDriver,
    /// Value cart and the TCK models.
    pub value_entity: StreamDriver,
    /// TCK models and the counters.
    pub crdt: StreamDriver,
}

impl Drivers {
    /// The drivers of this process.
    pub fn get() -> &'static Drivers {
        static DRIVERS: OnceLock<Drivers> = OnceLock::new();
        DRIVERS.get_or_init(|| {
            use tck_adapter::proto::cloudstate::tck::model::{
                self as tck_model, crdt, valueentity,
            };
            let tck = || CloudState::new().descriptor_set(tck_adapter::proto::FILE_DESCRIPTOR_SET);
            let event_sourced = StreamDriver::event_sourced([
                shopping_cart::register(CloudState::new(), 5),
                tck().register(
                    tck_model::event_sourced_tck_model::Entity(tck_adapter::eventsourced::TckModel),
                    EventSourcedOptions::new("event-sourced-tck-model").snapshot_every(5),
                ),
            ])
            .expect("event-sourced entities register");
            let value_entity = StreamDriver::value_entity([
                value_shopping_cart::register(CloudState::new()),
                tck().register(
                    valueentity::value_entity_tck_model::Entity(tck_adapter::valueentity::TckModel),
                    ValueEntityOptions::new("value-entity-tck-model"),
                ),
            ])
            .expect("value entities register");
            let crdt = StreamDriver::crdt([
                tck().register(
                    crdt::crdt_tck_model::Entity(tck_adapter::crdt::TckModel),
                    CrdtOptions::new().persistence_id("crdt-tck-model"),
                ),
                CloudState::new().register(
                    counters::proto::com::example::counters::scores::Entity(counters::Scores),
                    CrdtOptions::new().persistence_id("scores"),
                ),
            ])
            .expect("CRDT entities register");
            Drivers {
                event_sourced,
                value_entity,
                crdt,
            }
        })
    }

    /// The driver of `kind`.
    pub fn of(&self, kind: Kind) -> &StreamDriver {
        match kind {
            Kind::EventSourced => &self.event_sourced,
            Kind::ValueEntity => &self.value_entity,
            Kind::Crdt => &self.crdt,
        }
    }
}

/// Runs `input` through its driver and checks the stream's contract: every
/// reply decodes as the kind's output message, and a stream-level failure is
/// the last message.
pub fn run_stream(input: &StreamInput) -> Vec<Vec<u8>> {
    use cloudstate_sdk::protocol::cloudstate::{crdt, eventsourced, valueentity};
    let outputs = Drivers::get().of(input.kind).run(input.chunks());
    let failed_at = outputs.iter().position(|out| match input.kind {
        Kind::EventSourced => matches!(
            eventsourced::EventSourcedStreamOut::decode(out.as_slice())
                .expect("reply decodes")
                .message,
            Some(eventsourced::event_sourced_stream_out::Message::Failure(_))
        ),
        Kind::ValueEntity => matches!(
            valueentity::ValueEntityStreamOut::decode(out.as_slice())
                .expect("reply decodes")
                .message,
            Some(valueentity::value_entity_stream_out::Message::Failure(_))
        ),
        Kind::Crdt => matches!(
            crdt::CrdtStreamOut::decode(out.as_slice())
                .expect("reply decodes")
                .message,
            Some(crdt::crdt_stream_out::Message::Failure(_))
        ),
    });
    if let Some(at) = failed_at {
        assert_eq!(
            at + 1,
            outputs.len(),
            "messages followed a stream-level failure"
        );
    }
    outputs
}

thread_local! {
    static PANICS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Replaces libFuzzer's abort-on-any-panic hook with one that records where
/// each panic happened: the SDK turns a panic in an entity's own code into a
/// failure by design, so only a panic elsewhere is a finding
/// ([`check_panics`]). A panic that escapes the target still aborts.
pub fn record_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            let at = info
                .location()
                .map_or_else(|| "?".to_owned(), |l| format!("{}:{}", l.file(), l.line()));
            PANICS.with(|p| p.borrow_mut().push(format!("{at}: {info}")));
        }));
    });
}

/// Panics (with their messages) when something other than an entity's own
/// code (the samples, the TCK model) panicked since the last call.
pub fn check_panics() {
    let panics = PANICS.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let foreign: Vec<_> = panics
        .into_iter()
        .filter(|p| !(p.contains("tck-adapter/src/") || p.contains("samples/")))
        .collect();
    assert!(
        foreign.is_empty(),
        "panics outside entity code: {foreign:#?}"
    );
}

/// The crate's folder, for the fixtures next to it.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles `files` with `includes` (relative to the repository root) into an
/// encoded `FileDescriptorSet`, options intact.
pub fn compile(includes: &[&str], files: &[&str]) -> Vec<u8> {
    let repo = root().join("..");
    let includes: Vec<_> = includes.iter().map(|p| repo.join(p)).collect();
    let mut compiler = protox::Compiler::new(includes).expect("include paths");
    compiler.include_imports(true);
    compiler.open_files(files).expect("protos compile");
    compiler.encode_file_descriptor_set()
}

/// Services of [`http_pool`].
pub const HTTP_SERVICES: &[&str] = &[
    "devproxy.httptest.Things",
    "com.example.shoppingcart.ShoppingCart",
];

/// The dev proxy's HTTP fixture (every rule shape) and the shopping cart.
pub fn http_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let set = compile(
            &[
                "cloudstate-devproxy/tests/http_fixtures",
                "samples/shopping-cart/proto",
                "cloudstate-sdk/proto",
            ],
            &[
                "devproxy/httptest/things.proto",
                "shoppingcart/shoppingcart.proto",
            ],
        );
        DescriptorPool::decode(set.as_slice()).expect("fixture descriptors decode")
    })
}

/// Splits `data` at its first `n - 1` NUL bytes into `n` fields (missing ones
/// empty): the field format of the payload and HTTP targets.
pub fn fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out = [&[][..]; N];
    let mut parts = data.splitn(N, |&b| b == 0);
    for slot in &mut out {
        *slot = parts.next().unwrap_or_default();
    }
    out
}
