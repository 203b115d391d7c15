//! Metadata of commands, replies, forwards and side effects, and the
//! CloudEvent attributes it may carry.
//!
//! [`Metadata`] is the protocol's `cloudstate.Metadata`: a list of entries,
//! each a key and a string or bytes value. Keys may repeat and keep their
//! order and case; lookups compare keys case-insensitively, as HTTP headers.
//! Every command context has the metadata of its command
//! (`ctx.metadata()`); [`Reply::with_metadata`](crate::Reply::with_metadata)
//! and [`ServiceCall::with_metadata`](crate::ServiceCall::with_metadata) send
//! metadata with a reply, a forward or a side effect.
//!
//! ```
//! use cloudstate_sdk::Metadata;
//! use cloudstate_sdk::metadata::CloudEventAttributes;
//!
//! let metadata = Metadata::new()
//!     .with("x-trace", "t-1")
//!     .with_cloud_event(&CloudEventAttributes::new("42", "shop", "com.example.ItemAdded").subject("cart-7"));
//! assert_eq!(metadata.get("X-Trace"), Some("t-1"));
//! assert_eq!(metadata.get("ce-specversion"), Some("1.0"));
//! let event = metadata.cloud_event().unwrap();
//! assert_eq!((event.id(), event.subject()), ("42", Some("cart-7")));
//! ```

use crate::protocol::cloudstate::{MetadataEntry, metadata_entry::Value};

/// The metadata attached to commands, replies, forwards and side effects.
pub use crate::protocol::cloudstate::Metadata;

/// Metadata with no entries, for contexts whose command came without any.
pub(crate) static EMPTY: Metadata = Metadata {
    entries: Vec::new(),
};

/// The metadata key of the CloudEvent `datacontenttype` attribute (the
/// HTTP binary-mode name, without a `ce-` prefix).
pub const CONTENT_TYPE: &str = "Content-Type";
/// The prefix of the metadata keys of the other CloudEvent attributes.
pub const CLOUD_EVENT_PREFIX: &str = "ce-";
/// The CloudEvents version written by [`CloudEventAttributes`].
pub const SPEC_VERSION: &str = "1.0";

/// The attributes with a name of their own, not extensions.
const KNOWN: [&str; 7] = [
    "id",
    "source",
    "specversion",
    "type",
    "dataschema",
    "subject",
    "time",
];

impl Metadata {
    /// Metadata with no entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first string value of `key` (compared case-insensitively).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_all(key).next()
    }

    /// Every string value of `key` (compared case-insensitively), in order.
    pub fn get_all<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> {
        self.entries.iter().filter_map(move |e| match &e.value {
            Some(Value::StringValue(s)) if e.key.eq_ignore_ascii_case(key) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The first bytes value of `key` (compared case-insensitively).
    pub fn get_bytes(&self, key: &str) -> Option<&[u8]> {
        self.entries.iter().find_map(|e| match &e.value {
            Some(Value::BytesValue(b)) if e.key.eq_ignore_ascii_case(key) => Some(b.as_slice()),
            _ => None,
        })
    }

    /// Whether some entry has the key `key` (compared case-insensitively).
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key.eq_ignore_ascii_case(key))
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Appends a string entry (keys may repeat).
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.entries.push(MetadataEntry {
            key: key.into(),
            value: Some(Value::StringValue(value.into())),
        });
        self
    }

    /// Appends a bytes entry. Proxies drop bytes values where metadata
    /// becomes HTTP headers.
    pub fn add_bytes(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.entries.push(MetadataEntry {
            key: key.into(),
            value: Some(Value::BytesValue(value.into())),
        });
        self
    }

    /// Replaces every entry of `key` (compared case-insensitively) with one
    /// string entry.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let key = key.into();
        self.remove(&key);
        self.add(key, value)
    }

    /// Removes every entry of `key` (compared case-insensitively); returns
    /// how many there were.
    pub fn remove(&mut self, key: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| !e.key.eq_ignore_ascii_case(key));
        before - self.entries.len()
    }

    /// This metadata with a string entry appended.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.add(key, value);
        self
    }

    /// The CloudEvent this metadata describes, when it has the four required
    /// attributes (`ce-id`, `ce-source`, `ce-specversion`, `ce-type`).
    pub fn cloud_event(&self) -> Option<CloudEvent<'_>> {
        let event = CloudEvent { metadata: self };
        ["id", "source", "specversion", "type"]
            .iter()
            .all(|name| event.attribute(name).is_some())
            .then_some(event)
    }

    /// Writes the attributes of `event` into this metadata, replacing
    /// entries of the same keys; other entries stay.
    pub fn set_cloud_event(&mut self, event: &CloudEventAttributes) -> &mut Self {
        let e = event;
        self.set("ce-id", &e.id)
            .set("ce-source", &e.source)
            .set("ce-specversion", &e.spec_version)
            .set("ce-type", &e.event_type);
        let optional = [
            ("ce-subject", &e.subject),
            ("ce-time", &e.time),
            ("ce-dataschema", &e.data_schema),
            (CONTENT_TYPE, &e.data_content_type),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                self.set(key, value);
            }
        }
        for (name, value) in &e.extensions {
            self.set(format!("{CLOUD_EVENT_PREFIX}{name}"), value);
        }
        self
    }

    /// This metadata with the attributes of `event` written into it; see
    /// [`set_cloud_event`](Self::set_cloud_event).
    #[must_use]
    pub fn with_cloud_event(mut self, event: &CloudEventAttributes) -> Self {
        self.set_cloud_event(event);
        self
    }

    /// `Some(self)` unless it is empty: the protocol leaves empty metadata
    /// absent.
    pub(crate) fn non_empty(self) -> Option<Self> {
        (!self.is_empty()).then_some(self)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut metadata = Self::new();
        for (key, value) in iter {
            metadata.add(key, value);
        }
        metadata
    }
}

/// A read-only view of the CloudEvent attributes of a [`Metadata`]
/// ([`Metadata::cloud_event`]), by their HTTP binary-mode keys: `ce-id`,
/// `ce-source`, `ce-specversion`, `ce-type`, `ce-subject`, `ce-time`,
/// `ce-dataschema`, `Content-Type` for `datacontenttype`, and any other
/// `ce-` key as an extension.
#[derive(Debug, Clone, Copy)]
pub struct CloudEvent<'a> {
    metadata: &'a Metadata,
}

impl<'a> CloudEvent<'a> {
    fn attribute(&self, name: &str) -> Option<&'a str> {
        self.metadata.entries.iter().find_map(|e| match &e.value {
            Some(Value::StringValue(s))
                if e.key.len() == CLOUD_EVENT_PREFIX.len() + name.len()
                    && e.key[..CLOUD_EVENT_PREFIX.len()]
                        .eq_ignore_ascii_case(CLOUD_EVENT_PREFIX)
                    && e.key[CLOUD_EVENT_PREFIX.len()..].eq_ignore_ascii_case(name) =>
            {
                Some(s.as_str())
            }
            _ => None,
        })
    }

    fn required(&self, name: &str) -> &'a str {
        // `Metadata::cloud_event` made sure the required ones are there.
        self.attribute(name).unwrap_or_default()
    }

    /// `ce-id`: the event's id, unique per source.
    pub fn id(&self) -> &'a str {
        self.required("id")
    }

    /// `ce-source`: a URI reference naming where the event happened (for
    /// events of an event log, the emitting entity's persistence id).
    pub fn source(&self) -> &'a str {
        self.required("source")
    }

    /// `ce-specversion`: the CloudEvents version, `1.0`.
    pub fn spec_version(&self) -> &'a str {
        self.required("specversion")
    }

    /// `ce-type`: the event's type (for events of an event log, the type URL).
    pub fn event_type(&self) -> &'a str {
        self.required("type")
    }

    /// `ce-subject`: what the event is about within its source (for events of
    /// an event log, the emitting entity's id).
    pub fn subject(&self) -> Option<&'a str> {
        self.attribute("subject")
    }

    /// `ce-time`: when it happened, as an RFC 3339 timestamp (not parsed).
    pub fn time(&self) -> Option<&'a str> {
        self.attribute("time")
    }

    /// `ce-dataschema`: a URI of the schema of the data.
    pub fn data_schema(&self) -> Option<&'a str> {
        self.attribute("dataschema")
    }

    /// `Content-Type`: the `datacontenttype` of the data.
    pub fn data_content_type(&self) -> Option<&'a str> {
        self.metadata.get(CONTENT_TYPE)
    }

    /// The extension attributes: every other string entry whose key starts
    /// with `ce-`, as the name after the prefix and the value, in order.
    pub fn extensions(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.metadata.entries.iter().filter_map(|e| {
            let name = e
                .key
                .get(..CLOUD_EVENT_PREFIX.len())
                .filter(|prefix| prefix.eq_ignore_ascii_case(CLOUD_EVENT_PREFIX))
                .map(|_| &e.key[CLOUD_EVENT_PREFIX.len()..])?;
            if KNOWN.iter().any(|known| known.eq_ignore_ascii_case(name)) {
                return None;
            }
            match &e.value {
                Some(Value::StringValue(s)) => Some((name, s.as_str())),
                _ => None,
            }
        })
    }

    /// The metadata the attributes are read from.
    pub fn metadata(&self) -> &'a Metadata {
        self.metadata
    }

    /// The attributes as a builder, e.g. to send an event on with some changed.
    pub fn to_attributes(&self) -> CloudEventAttributes {
        let mut attributes = CloudEventAttributes::new(self.id(), self.source(), self.event_type());
        attributes.spec_version = self.spec_version().to_owned();
        attributes.subject = self.subject().map(str::to_owned);
        attributes.time = self.time().map(str::to_owned);
        attributes.data_schema = self.data_schema().map(str::to_owned);
        attributes.data_content_type = self.data_content_type().map(str::to_owned);
        attributes.extensions = self
            .extensions()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        attributes
    }
}

/// CloudEvent attributes to write into a [`Metadata`]
/// ([`Metadata::set_cloud_event`]), e.g. for the reply of a method whose
/// output goes to a topic.
///
/// The three required attributes are given up front; `specversion` is
/// [`SPEC_VERSION`]. Unset optional attributes are not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEventAttributes {
    id: String,
    source: String,
    spec_version: String,
    event_type: String,
    subject: Option<String>,
    time: Option<String>,
    data_schema: Option<String>,
    data_content_type: Option<String>,
    extensions: Vec<(String, String)>,
}

impl CloudEventAttributes {
    /// An event with this `id`, `source` (a URI reference) and `type`.
    pub fn new(
        id: impl Into<String>,
        source: impl Into<String>,
        event_type: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            spec_version: SPEC_VERSION.to_owned(),
            event_type: event_type.into(),
            subject: None,
            time: None,
            data_schema: None,
            data_content_type: None,
            extensions: Vec::new(),
        }
    }

    /// Sets `ce-subject`.
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets `ce-time` (an RFC 3339 timestamp, written as given).
    #[must_use]
    pub fn time(mut self, time: impl Into<String>) -> Self {
        self.time = Some(time.into());
        self
    }

    /// Sets `ce-dataschema`.
    #[must_use]
    pub fn data_schema(mut self, schema: impl Into<String>) -> Self {
        self.data_schema = Some(schema.into());
        self
    }

    /// Sets `Content-Type` (the `datacontenttype` attribute).
    #[must_use]
    pub fn data_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.data_content_type = Some(content_type.into());
        self
    }

    /// Adds the extension attribute `name` (written as `ce-<name>`).
    #[must_use]
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.push((name.into(), value.into()));
        self
    }

    /// The attributes as metadata of their own.
    pub fn to_metadata(&self) -> Metadata {
        Metadata::new().with_cloud_event(self)
    }
}

impl From<CloudEventAttributes> for Metadata {
    fn from(event: CloudEventAttributes) -> Self {
        event.to_metadata()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_log_metadata() -> Metadata {
        [
            ("ce-id", "7"),
            ("CE-Source", "eventlogeventing-one"),
            ("ce-specversion", "1.0"),
            ("ce-type", "type.googleapis.com/x.EventOne"),
            ("Content-Type", "application/vnd.cloudstate.protobuf.any"),
            ("ce-subject", "eventlogeventing:1"),
            ("ce-traceparent", "00-ab"),
            ("x-other", "o"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn reads_the_attributes_of_an_event_log_event() {
        let metadata = event_log_metadata();
        let event = metadata.cloud_event().expect("a cloud event");
        assert_eq!(event.id(), "7");
        assert_eq!(event.source(), "eventlogeventing-one");
        assert_eq!(event.spec_version(), "1.0");
        assert_eq!(event.event_type(), "type.googleapis.com/x.EventOne");
        assert_eq!(event.subject(), Some("eventlogeventing:1"));
        assert_eq!(
            event.data_content_type(),
            Some("application/vnd.cloudstate.protobuf.any")
        );
        assert_eq!(event.time(), None);
        assert_eq!(
            event.extensions().collect::<Vec<_>>(),
            [("traceparent", "00-ab")]
        );
    }

    #[test]
    fn is_a_cloud_event_only_with_the_four_required_attributes() {
        for required in ["ce-id", "ce-source", "ce-specversion", "ce-type"] {
            let mut metadata = event_log_metadata();
            assert_eq!(metadata.remove(required), 1);
            assert!(metadata.cloud_event().is_none(), "without {required}");
        }
        assert!(Metadata::new().cloud_event().is_none());
    }

    #[test]
    fn writes_attributes_replacing_same_keys() {
        let mut metadata = event_log_metadata();
        metadata.set_cloud_event(
            &CloudEventAttributes::new("8", "me", "T")
                .time("2020-01-01T00:00:00Z")
                .data_content_type("application/json")
                .extension("traceparent", "00-cd"),
        );
        let event = metadata.cloud_event().unwrap();
        assert_eq!(
            (event.id(), event.source(), event.event_type()),
            ("8", "me", "T")
        );
        assert_eq!(event.subject(), Some("eventlogeventing:1"), "kept");
        assert_eq!(event.time(), Some("2020-01-01T00:00:00Z"));
        assert_eq!(event.data_content_type(), Some("application/json"));
        assert_eq!(metadata.get_all("ce-id").count(), 1);
        assert_eq!(
            metadata.get_all("ce-traceparent").collect::<Vec<_>>(),
            ["00-cd"]
        );
        assert_eq!(metadata.get("x-other"), Some("o"));
        let copy = event.to_attributes().to_metadata();
        assert_eq!(
            copy.cloud_event().unwrap().to_attributes(),
            event.to_attributes()
        );
    }

    #[test]
    fn new_events_have_spec_version_one_and_only_what_was_set() {
        let metadata: Metadata = CloudEventAttributes::new("1", "s", "t").into();
        let keys: Vec<_> = metadata.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["ce-id", "ce-source", "ce-specversion", "ce-type"]);
        assert_eq!(metadata.get("CE-SPECVERSION"), Some("1.0"));
    }

    #[test]
    fn lookups_ignore_case_and_keep_order_and_kinds() {
        let mut metadata = Metadata::new();
        metadata
            .add("X-A", "1")
            .add_bytes("x-a", b"\x01".to_vec())
            .add("x-a", "2");
        assert_eq!(metadata.get("x-a"), Some("1"));
        assert_eq!(metadata.get_all("X-a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(metadata.get_bytes("x-A"), Some(&b"\x01"[..]));
        assert!(metadata.contains_key("X-a") && !metadata.contains_key("x-b"));
        assert_eq!(metadata.len(), 3);
        metadata.set("x-a", "3");
        assert_eq!(metadata.entries.len(), 1);
        assert_eq!(metadata.entries[0].key, "x-a");
        assert_eq!(Metadata::new().non_empty(), None);
    }
}
