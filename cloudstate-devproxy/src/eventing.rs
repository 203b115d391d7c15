//! Eventing: event-log consumers, the dev-only topic broker and publishing
//! to topics, as the official proxy's `EventingManager` does (with Google
//! Pub/Sub for topics, which the broker stands in for).
//!
//! Each consumer (see [`Consumer`]) runs as one task. An event is delivered
//! as a call of the method its type selects, with the CloudEvent attributes
//! as metadata; it is acknowledged (for event logs: its offset saved) once
//! the call and what it led to (side effects, forward, publishing) are done.
//! A call that fails is retried with a growing delay, so a consumer never
//! moves past an event it could not deliver.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cloudstate_sdk::payload::Any;
use cloudstate_sdk::protocol::cloudstate as pb;
use futures_util::StreamExt;
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::action::{self, shape};
use crate::error::ProxyError;
use crate::model::{Consumer, EntityType, EventSource, MethodModel};
use crate::observe::ActionShape;
use crate::router::{Answer, Router};
use crate::store::{Store, TaggedEvent};

/// The content type of event-log events: the data is the bytes of an `Any`
/// whose type URL is the CloudEvent type.
const ANY_CONTENT_TYPE: &str = "application/vnd.cloudstate.protobuf.any";

/// How long a consumer waits before it retries a failed event: `min`, then
/// doubled each time up to `max` (official: 3 s to 30 s).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

/// A CloudEvent as the official proxy carries it between sources, methods
/// and destinations.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CloudEvent {
    pub(crate) id: String,
    pub(crate) source: String,
    pub(crate) specversion: String,
    pub(crate) r#type: String,
    pub(crate) datacontenttype: String,
    pub(crate) dataschema: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) time: Option<String>,
    pub(crate) data: Vec<u8>,
}

/// JSON and primitive payloads: the bytes as field 1 (protocol §2.2, §2.3).
#[derive(Clone, PartialEq, prost::Message)]
struct Wrapped {
    #[prost(bytes = "vec", tag = "1")]
    value: Vec<u8>,
}

impl CloudEvent {
    /// An event of the journal tagged `tag`.
    fn of_journal(tag: &str, event: &TaggedEvent) -> Self {
        Self {
            id: event.offset.to_string(),
            source: tag.to_owned(),
            specversion: "1.0".to_owned(),
            r#type: event.payload.type_url.clone(),
            datacontenttype: ANY_CONTENT_TYPE.to_owned(),
            dataschema: None,
            subject: Some(event.entity_id.clone()),
            time: None,
            data: event.payload.value.clone(),
        }
    }

    /// The event published for a reply `payload` of a method of `service`:
    /// attributes from the reply's metadata where given.
    pub(crate) fn of_reply(payload: &Any, service: &str, metadata: Option<&pb::Metadata>) -> Self {
        let unwrap = |value: &[u8]| Wrapped::decode(value).map(|w| w.value).unwrap_or_default();
        let (r#type, content_type, data) = match payload.type_url.as_str() {
            json if json.starts_with("json.cloudstate.io/") => (
                json["json.cloudstate.io/".len()..].to_owned(),
                "application/json",
                unwrap(&payload.value),
            ),
            "p.cloudstate.io/string" => (
                String::new(),
                "text/plain; charset=utf-8",
                unwrap(&payload.value),
            ),
            "p.cloudstate.io/bytes" => (
                String::new(),
                "application/octet-stream",
                unwrap(&payload.value),
            ),
            other => (
                other
                    .split_once('/')
                    .map_or(other, |(_, name)| name)
                    .to_owned(),
                "application/protobuf",
                payload.value.clone(),
            ),
        };
        let get = |key: &str| {
            metadata
                .into_iter()
                .flat_map(|m| &m.entries)
                .rev()
                .find_map(|e| match &e.value {
                    Some(pb::metadata_entry::Value::StringValue(v))
                        if e.key.eq_ignore_ascii_case(key) =>
                    {
                        Some(v.clone())
                    }
                    _ => None,
                })
        };
        Self {
            id: get("ce-id").unwrap_or_else(random_uuid),
            source: get("ce-source").unwrap_or_else(|| service.to_owned()),
            specversion: get("ce-specversion").unwrap_or_else(|| "1.0".to_owned()),
            r#type: get("ce-type").unwrap_or(r#type),
            datacontenttype: get("Content-Type").unwrap_or_else(|| content_type.to_owned()),
            dataschema: get("ce-dataschema"),
            subject: get("ce-subject"),
            time: Some(get("ce-time").unwrap_or_else(rfc3339_now)),
            data,
        }
    }

    /// The attributes as metadata, by the HTTP binary-mode names.
    pub(crate) fn metadata(&self) -> pb::Metadata {
        let entry = |key: &str, value: &str| pb::MetadataEntry {
            key: key.to_owned(),
            value: Some(pb::metadata_entry::Value::StringValue(value.to_owned())),
        };
        let mut entries = vec![
            entry("ce-id", &self.id),
            entry("ce-source", &self.source),
            entry("ce-specversion", &self.specversion),
            entry("ce-type", &self.r#type),
            entry("Content-Type", &self.datacontenttype),
        ];
        let optional = [
            ("ce-dataschema", &self.dataschema),
            ("ce-subject", &self.subject),
            ("ce-time", &self.time),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                entries.push(entry(key, value));
            }
        }
        pb::Metadata { entries }
    }

    /// The payload a subscriber gets, by the content type.
    pub(crate) fn payload(&self) -> Any {
        let wrap = |type_url: String| Any {
            type_url,
            value: Wrapped {
                value: self.data.clone(),
            }
            .encode_to_vec(),
        };
        let (media, params) = media_type(&self.datacontenttype);
        let (main, sub) = media.split_once('/').unwrap_or((media.as_str(), ""));
        match (main, sub) {
            ("application", "protobuf" | "x-protobuf" | "vnd.google.protobuf") => {
                let name = params
                    .get("proto")
                    .or_else(|| params.get("messagetype"))
                    .cloned()
                    .unwrap_or_else(|| self.r#type.clone());
                Any {
                    type_url: format!("type.googleapis.com/{name}"),
                    value: self.data.clone(),
                }
            }
            ("application", "vnd.cloudstate.protobuf.any") => Any {
                type_url: self.r#type.clone(),
                value: self.data.clone(),
            },
            ("application", json) if json == "json" || json.ends_with("+json") => {
                wrap(format!("json.cloudstate.io/{}", self.r#type))
            }
            ("text", _) => wrap("p.cloudstate.io/string".to_owned()),
            _ => wrap("p.cloudstate.io/bytes".to_owned()),
        }
    }
}

/// `type/subtype` in lower case and the parameters (names in lower case).
fn media_type(text: &str) -> (String, HashMap<String, String>) {
    let mut parts = text.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (name, value) = p.split_once('=')?;
            Some((
                name.trim().to_ascii_lowercase(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect();
    (media, params)
}

/// A random (version 4) UUID, for events whose reply names no `ce-id`.
fn random_uuid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = |salt: u64| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u64(salt);
        hasher.finish()
    };
    let (high, low) = (random(1), random(2));
    let high = (high & !0xF000) | 0x4000;
    let low = (low & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xFFFF,
        high & 0xFFFF,
        low >> 48,
        low & 0xFFFF_FFFF_FFFF
    )
}

/// Now, as RFC 3339 in UTC with milliseconds.
fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        now.subsec_millis()
    )
}

/// The dev-only topic broker: every consumer of a topic has a queue of its
/// own, so each gets every event published after it subscribed.
#[derive(Debug, Default)]
pub(crate) struct Broker {
    subscribers: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<CloudEvent>>>>,
}

impl Broker {
    fn subscribe(&self, topic: &str) -> mpsc::UnboundedReceiver<CloudEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(topic.to_owned())
            .or_default()
            .push(tx);
        rx
    }

    /// Hands `event` to every consumer of `topic`.
    pub(crate) fn publish(&self, topic: &str, event: &CloudEvent) {
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let queues = subscribers.entry(topic.to_owned()).or_default();
        queues.retain(|queue| queue.send(event.clone()).is_ok());
        if queues.is_empty() {
            debug!(
                "topic [{topic}] has no subscriber: event {} dropped",
                event.id
            );
        }
    }
}

impl Router {
    /// Publishes `answer`, a reply of `method`, when the method declares an
    /// `eventing.out` topic.
    pub(crate) fn publish(&self, method: &MethodModel, answer: &Answer) {
        let Some(topic) = &method.eventing_out else {
            return;
        };
        let payload = Any {
            type_url: answer.type_url.clone(),
            value: answer.message.clone(),
        };
        let event = CloudEvent::of_reply(&payload, &method.service, answer.metadata.as_ref());
        debug!(
            "{}.{} publishes event {} to topic [{topic}]",
            method.service,
            method.name(),
            event.id
        );
        self.broker.publish(topic, &event);
    }
}

/// Starts a task per consumer of the model; they stop once `stop` is true,
/// between events (an event in delivery is finished first).
pub(crate) fn start(
    router: &Arc<Router>,
    store: &Store,
    stop: &watch::Receiver<bool>,
    backoff: Backoff,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (index, consumer) in router.model.consumers.iter().enumerate() {
        let worker = Worker {
            router: Arc::clone(router),
            index,
            stop: stop.clone(),
            backoff,
        };
        info!(
            "eventing: {} consumes the {} (consumer group [{}])",
            consumer.service, consumer.source, consumer.group
        );
        match &consumer.source {
            EventSource::EventLog(tag) => {
                let store = store.clone();
                let tag = tag.clone();
                tasks.push(tokio::spawn(worker.event_log(store, tag)));
            }
            EventSource::Topic(topic) => {
                let queue = router.broker.subscribe(topic);
                tasks.push(tokio::spawn(worker.topic(queue)));
            }
        }
    }
    tasks
}

/// Runs one consumer.
struct Worker {
    router: Arc<Router>,
    /// The consumer's index in the model.
    index: usize,
    stop: watch::Receiver<bool>,
    backoff: Backoff,
}

/// How many events an event-log consumer reads at once.
const BATCH: usize = 64;

impl Worker {
    fn consumer(&self) -> &Consumer {
        &self.router.model.consumers[self.index]
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits `delay`; false when the dev proxy stops first.
    async fn pause(&mut self, delay: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            _ = self.stop.wait_for(|stop| *stop) => false,
        }
    }

    /// Replays the journal of `tag` after the saved offset, then follows it.
    async fn event_log(mut self, store: Store, tag: String) {
        let group = self.consumer().group.clone();
        let mut written = match store.journal_written() {
            Ok(written) => written,
            Err(e) => {
                warn!("eventing: consumer [{group}] of event log [{tag}] cannot start: {e}");
                return;
            }
        };
        let mut delay = self.backoff.min;
        let mut offset = loop {
            match store.load_offset(&group, &tag).await {
                Ok(offset) => break offset.unwrap_or(0),
                Err(e) => {
                    warn!(
                        "eventing: consumer [{group}] cannot read its offset of [{tag}]: {e}; retrying in {delay:?}"
                    );
                    if !self.pause(delay).await {
                        return;
                    }
                    delay = (delay * 2).min(self.backoff.max);
                }
            }
        };
        loop {
            written.borrow_and_update();
            let batch = match store.events_by_tag(&tag, offset, BATCH).await {
                Ok(batch) => batch,
                Err(e) => {
                    warn!("eventing: consumer [{group}] cannot read event log [{tag}]: {e}");
                    if !self.pause(self.backoff.min).await {
                        return;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    changed = written.changed() => if changed.is_err() { return },
                    _ = self.stop.wait_for(|stop| *stop) => return,
                }
                continue;
            }
            for event in batch {
                if !self.deliver(&CloudEvent::of_journal(&tag, &event)).await {
                    return;
                }
                if let Err(e) = store.save_offset(&group, &tag, event.offset).await {
                    // Delivered anyway: at worst it is delivered again after a restart.
                    warn!("eventing: consumer [{group}] cannot save its offset of [{tag}]: {e}");
                }
                offset = event.offset;
                if self.stopping() {
                    return;
                }
            }
        }
    }

    /// Delivers what is published to the topic.
    async fn topic(mut self, mut queue: mpsc::UnboundedReceiver<CloudEvent>) {
        loop {
            let event = tokio::select! {
                event = queue.recv() => match event {
                    Some(event) => event,
                    None => return,
                },
                _ = self.stop.wait_for(|stop| *stop) => return,
            };
            if !self.deliver(&event).await || self.stopping() {
                return;
            }
        }
    }

    /// Delivers `event` until it succeeds; false when the dev proxy stopped first.
    async fn deliver(&mut self, event: &CloudEvent) -> bool {
        let mut delay = self.backoff.min;
        let mut attempt = 1u32;
        loop {
            match self.call(event).await {
                Ok(()) => return true,
                Err(e) => {
                    let consumer = self.consumer();
                    warn!(
                        "eventing: {} could not handle event {} of type [{}] from the {} (attempt {attempt}): {e}; \
                         retrying in {delay:?}",
                        consumer.service, event.id, event.r#type, consumer.source
                    );
                }
            }
            if !self.pause(delay).await {
                return false;
            }
            delay = (delay * 2).min(self.backoff.max);
            attempt += 1;
        }
    }

    /// One call of the method `event` goes to; its replies are published
    /// when the method declares a topic.
    async fn call(&self, event: &CloudEvent) -> Result<(), ProxyError> {
        let consumer = self.consumer();
        let payload = event.payload();
        let method = consumer.method_for(&payload.type_url).ok_or_else(|| {
            ProxyError::Internal(format!(
                "No method can be found to handle protobuf type of [{}] on input {}. Either declare a method \
                 for this type, or declare a method that accepts google.protobuf.Any.",
                payload.type_url, consumer.source
            ))
        })?;
        let router = &self.router;
        let metadata = event.metadata();
        if method.entity_type == EntityType::Action && shape(method) != ActionShape::Unary {
            let input = futures_util::stream::iter([Ok(Bytes::from(payload.value))]).boxed();
            let mut answers = action::call_typed(
                Arc::clone(router),
                Arc::clone(method),
                Some(metadata),
                input,
                payload.type_url,
            );
            while let Some(answer) = answers.next().await {
                answer?;
            }
            Ok(())
        } else {
            let trace = method.full_name().to_owned();
            router
                .route_ingress(method, payload, Some(metadata), &trace)
                .await
                .map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(type_url: &str, value: &[u8]) -> Any {
        Any {
            type_url: type_url.to_owned(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn replies_become_events_and_events_payloads() {
        let json = any(
            "json.cloudstate.io/Thing",
            &Wrapped {
                value: br#"{"a":1}"#.to_vec(),
            }
            .encode_to_vec(),
        );
        let event = CloudEvent::of_reply(&json, "x.S", None);
        assert_eq!(
            (
                event.r#type.as_str(),
                event.datacontenttype.as_str(),
                event.data.as_slice()
            ),
            ("Thing", "application/json", br#"{"a":1}"#.as_slice())
        );
        assert_eq!(event.source, "x.S");
        assert_eq!(event.payload(), json, "JSON comes back as it went");
        let proto = any("type.googleapis.com/x.M", &[8, 1]);
        let event = CloudEvent::of_reply(&proto, "x.S", None);
        assert_eq!(
            (event.r#type.as_str(), event.datacontenttype.as_str()),
            ("x.M", "application/protobuf")
        );
        assert_eq!(event.payload(), proto);
        let text = any(
            "p.cloudstate.io/string",
            &Wrapped {
                value: b"hi".to_vec(),
            }
            .encode_to_vec(),
        );
        let event = CloudEvent::of_reply(&text, "x.S", None);
        assert_eq!(event.data, b"hi");
        assert_eq!(event.payload(), text);
        let metadata = pb::Metadata {
            entries: vec![pb::MetadataEntry {
                key: "ce-id".into(),
                value: Some(pb::metadata_entry::Value::StringValue("mine".into())),
            }],
        };
        let event = CloudEvent::of_reply(&proto, "x.S", Some(&metadata));
        assert_eq!(event.id, "mine");
        assert_ne!(random_uuid(), random_uuid());
        assert_eq!(random_uuid().len(), 36);
    }

    #[test]
    fn times_are_rfc3339() {
        let now = rfc3339_now();
        assert_eq!(now.len(), 24, "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
        let year: i32 = now[..4].parse().unwrap();
        assert!(year >= 2024, "{now}");
    }
}
