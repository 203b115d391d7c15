//! The `(cloudstate.eventing)` method option: read from the compiled
//! descriptors and checked as the proxy checks it at discovery, so that a
//! mistake is a build error rather than a proxy that refuses to start.

use std::collections::HashMap;

use prost_types::FileDescriptorSet;
use protox::prost_reflect::{DescriptorPool, DynamicMessage, ServiceDescriptor, Value};

use crate::Error;
use crate::validate::location;

/// The extension number of `cloudstate.eventing` on `MethodOptions`. It is
/// looked up by number, so that a copy of `eventing.proto` imported under
/// another path or package reads the same.
const EVENTING_EXTENSION: u32 = 1081;

/// Where a subscribed method's input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Topic(String),
    /// The journal of the event-sourced entities with this persistence id.
    EventLog(String),
}

/// The eventing of one method that has the option.
#[derive(Debug, Clone)]
pub(crate) struct MethodEventing {
    /// The rpc's name as in the proto.
    pub(crate) method: String,
    /// `file:line` of the rpc.
    pub(crate) at: String,
    /// The full name of the rpc's input type.
    pub(crate) input: String,
    pub(crate) source: Option<Source>,
    /// As declared; empty means the proxy's default (the service name).
    pub(crate) consumer_group: String,
    /// The topic the replies are published to.
    pub(crate) out: Option<String>,
}

/// The eventing options of the methods of `service` that have one, each
/// checked: an `in` names a source, an `out` a topic, topic names are valid
/// Pub/Sub names, no method reads and writes one topic, and no two methods
/// share a source, consumer group and input type (the proxy could not tell
/// which one an event is for).
pub(crate) fn of_service(
    service: &ServiceDescriptor,
    pool: &DescriptorPool,
    fds: &FileDescriptorSet,
) -> Result<Vec<MethodEventing>, Error> {
    let Some(extension) = pool
        .get_message_by_name("google.protobuf.MethodOptions")
        .and_then(|options| options.get_extension(EVENTING_EXTENSION))
    else {
        return Ok(Vec::new());
    };
    let name = service.full_name();
    let mut found: Vec<MethodEventing> = Vec::new();
    for method in service.methods() {
        let options = method.options();
        if !options.has_extension(&extension) {
            continue;
        }
        let Value::Message(eventing) = options.get_extension(&extension).into_owned() else {
            continue;
        };
        let at = location(fds, method.parent_file().name(), method.path());
        let rpc = format!("rpc [{name}.{}]", method.name());
        let error = |what: String| Error::Proto(format!("{at}: {rpc} {what}"));
        let (source, consumer_group) = match message_field(&eventing, "in") {
            None => (None, String::new()),
            Some(input) => {
                let source = if input.has_field_by_name("event_log") {
                    let id = string_field(&input, "event_log");
                    if id.is_empty() {
                        return Err(error(
                            "has an eventing `in` with an empty `event_log`; name the persistence \
                             id of the event-sourced entity whose events it reads"
                                .to_owned(),
                        ));
                    }
                    Source::EventLog(id)
                } else if input.has_field_by_name("topic") {
                    let topic = string_field(&input, "topic");
                    topic_name(&topic).map_err(|why| {
                        error(format!("reads from the topic [{topic}], which {why}"))
                    })?;
                    Source::Topic(topic)
                } else {
                    return Err(error(
                        "has an eventing `in` with no source; set `event_log` (a persistence id) \
                         or `topic`"
                            .to_owned(),
                    ));
                };
                (Some(source), string_field(&input, "consumer_group"))
            }
        };
        let out = match message_field(&eventing, "out") {
            None => None,
            Some(output) => {
                if !output.has_field_by_name("topic") {
                    return Err(error(
                        "has an eventing `out` with no topic; set `out: { topic: \"..\" }` or \
                         remove `out`"
                            .to_owned(),
                    ));
                }
                let topic = string_field(&output, "topic");
                topic_name(&topic).map_err(|why| {
                    error(format!("publishes to the topic [{topic}], which {why}"))
                })?;
                Some(topic)
            }
        };
        if let (Some(Source::Topic(topic)), Some(out)) = (&source, &out)
            && topic == out
        {
            return Err(error(format!(
                "reads from and publishes to the same topic [{topic}], which the proxy refuses; \
                 publish to another topic"
            )));
        }
        let input = method.input().full_name().to_owned();
        if let Some(source) = &source
            && let Some(other) = found.iter().find(|other| {
                other.source.as_ref() == Some(source)
                    && other.consumer_group == consumer_group
                    && other.input == input
            })
        {
            return Err(error(format!(
                "and rpc [{name}.{}] both subscribe to {} with the input [{input}], which the \
                 proxy refuses: it could not tell which of them an event is for; give them \
                 different `consumer_group`s to have each receive every event",
                other.method,
                describe(source)
            )));
        }
        found.push(MethodEventing {
            method: method.name().to_owned(),
            at,
            input,
            source,
            consumer_group,
            out,
        });
    }
    Ok(found)
}

/// Every event-log subscription of the build must name the persistence id
/// of one of its event-sourced entities: `persistence_ids` maps each
/// declared id to its service.
pub(crate) fn event_logs(
    subscriptions: &[(String, Vec<MethodEventing>)],
    persistence_ids: &HashMap<String, String>,
) -> Result<(), Error> {
    for (service, methods) in subscriptions {
        for method in methods {
            let Some(Source::EventLog(id)) = &method.source else {
                continue;
            };
            if persistence_ids.contains_key(id) {
                continue;
            }
            let mut declared: Vec<String> = persistence_ids
                .iter()
                .map(|(id, service)| format!("{id} ({service})"))
                .collect();
            declared.sort();
            return Err(Error::Proto(format!(
                "{}: rpc [{service}.{}] subscribes to the event log [{id}], but no event-sourced \
                 entity of this build declares that persistence id (declared: [{}]); declare it \
                 in build.rs with `EventSourced::new(\"<service>\").persistence_id(\"{id}\")` \
                 and register that entity with `EventSourcedOptions::new(<module>::PERSISTENCE_ID)`, \
                 or, for an entity another crate of the user function builds, \
                 `configure().external_event_log(\"{id}\")`",
                method.at,
                method.method,
                declared.join(", "),
            )));
        }
    }
    Ok(())
}

/// Why `topic` is not a valid Google Pub/Sub topic name, the topic support
/// of the proxy: 3 to 255 characters, starting with a letter, of letters,
/// digits and `-_.~+%`, not starting with `goog`.
pub(crate) fn topic_name(topic: &str) -> Result<(), &'static str> {
    if !(3..=255).contains(&topic.len()) {
        return Err("is not 3 to 255 characters long");
    }
    if !topic.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("does not start with a letter");
    }
    if topic.to_ascii_lowercase().starts_with("goog") {
        return Err("starts with `goog`, which Pub/Sub reserves");
    }
    if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
    {
        return Err("has characters other than letters, digits and `-_.~+%`");
    }
    Ok(())
}

fn describe(source: &Source) -> String {
    match source {
        Source::Topic(topic) => format!("the topic [{topic}]"),
        Source::EventLog(id) => format!("the event log [{id}]"),
    }
}

/// The sub-message `name` of `message` when it is set.
fn message_field(message: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    if !message.has_field_by_name(name) {
        return None;
    }
    match message.get_field_by_name(name)?.into_owned() {
        Value::Message(field) => Some(field),
        _ => None,
    }
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::topic_name;

    #[test]
    fn topic_names_follow_pub_sub_rules() {
        for valid in ["abc", "news", "a-b_c.d~e+f%20", &"t".repeat(255)] {
            assert_eq!(topic_name(valid), Ok(()), "{valid}");
        }
        for (invalid, why) in [
            ("ab", "3 to 255"),
            ("", "3 to 255"),
            ("1abc", "letter"),
            ("-abc", "letter"),
            ("google-news", "goog"),
            ("Goog1", "goog"),
            ("news/today", "characters"),
            ("news today", "characters"),
        ] {
            let error = topic_name(invalid).unwrap_err();
            assert!(error.contains(why), "{invalid}: {error}");
        }
        assert!(topic_name(&"t".repeat(256)).is_err());
    }
}
