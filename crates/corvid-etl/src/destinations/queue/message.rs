//! A Queue ETL message: a CloudEvent (1.0) in binary content mode — the attributes as
//! headers, the loaded object's JSON as the body — and what the script may say about it.
//!
//! Attribute defaults are RavenDB's: `id` the document's change vector, `type`
//! `ravendb.etl.put`, `source` `{server url}/{database}/{task}`, `partitionkey` the document
//! id, `datacontenttype` `application/json`. The script overrides them with
//! `loadTo<Queue>(obj, {Id, Type, Source, Subject, PartitionKey, DataSchema, Time})` (names
//! case-sensitive, as in RavenDB; any other name is an error for the document). Header
//! names follow the CloudEvents protocol bindings: AMQP application properties prefixed
//! `cloudEvents:` (the AMQP binding, §3.1.3.1), NATS headers prefixed `ce-` (the NATS
//! binding); `datacontenttype` is the AMQP `content-type` property and NATS `Content-Type`.

use serde_json::Value;

/// The CloudEvents spec version Corvid writes.
pub const SPEC_VERSION: &str = "1.0";
/// The `type` of a document's event.
pub const PUT_EVENT_TYPE: &str = "ravendb.etl.put";
/// The `type` of a deleted document's event (Corvid's; RavenDB sends no deletes).
pub const DELETE_EVENT_TYPE: &str = "ravendb.etl.delete";
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The attributes a script may set, by their name there and in CloudEvents.
const SCRIPT_ATTRIBUTES: [(&str, &str); 7] = [
    ("Id", "id"),
    ("Type", "type"),
    ("Source", "source"),
    ("Subject", "subject"),
    ("PartitionKey", "partitionkey"),
    ("DataSchema", "dataschema"),
    ("Time", "time"),
];

/// A CloudEvent's context attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEvent {
    pub id: String,
    pub event_type: String,
    pub source: String,
    pub subject: Option<String>,
    /// The partitioning extension's `partitionkey`.
    pub partition_key: String,
    pub data_schema: Option<String>,
    pub time: Option<String>,
    /// `None` for an event without data (a delete).
    pub data_content_type: Option<&'static str>,
}

impl CloudEvent {
    /// The attributes but `datacontenttype`, by their CloudEvents names, `specversion` first.
    pub fn attributes(&self) -> Vec<(&'static str, &str)> {
        let mut attributes = vec![
            ("specversion", SPEC_VERSION),
            ("id", self.id.as_str()),
            ("type", self.event_type.as_str()),
            ("source", self.source.as_str()),
            ("partitionkey", self.partition_key.as_str()),
        ];
        let optional = [
            ("subject", &self.subject),
            ("dataschema", &self.data_schema),
            ("time", &self.time),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                attributes.push((name, value.as_str()));
            }
        }
        attributes
    }

    fn set(&mut self, name: &str, value: String) {
        match name {
            "id" => self.id = value,
            "type" => self.event_type = value,
            "source" => self.source = value,
            "subject" => self.subject = Some(value),
            "partitionkey" => self.partition_key = value,
            "dataschema" => self.data_schema = Some(value),
            _ => self.time = Some(value),
        }
    }
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// The source document.
    pub document_id: String,
    /// The source document's change vector when it was read (for
    /// `DeleteProcessedDocuments`).
    pub change_vector: String,
    /// RabbitMQ: the exchange (empty: the default exchange); NATS: the subject.
    pub queue: String,
    /// RabbitMQ's routing key (empty for NATS).
    pub routing_key: String,
    pub event: CloudEvent,
    /// The data: the loaded object's JSON; empty for a delete.
    pub body: String,
    /// JetStream's `Nats-Msg-Id`: the event id, and the load's position when the document
    /// sends several messages, so that a batch sent again is not stored twice.
    pub deduplication_id: String,
    /// Delete the source document once the broker acknowledged this message.
    pub delete_processed: bool,
}

impl QueueMessage {
    /// The message as one CloudEvents JSON document (structured content mode, for brokers
    /// without headers: Amazon SQS, Azure Queue Storage): the attributes, then
    /// `datacontenttype` and `data` (the body's JSON as it is) when the event has data.
    pub fn structured_json(&self) -> String {
        let mut res = String::with_capacity(self.body.len() + 256);
        res.push('{');
        for (idx, (name, value)) in self.event.attributes().into_iter().enumerate() {
            if idx > 0 {
                res.push(',');
            }
            push_json_string(&mut res, name);
            res.push(':');
            push_json_string(&mut res, value);
        }
        if let Some(content_type) = self.event.data_content_type {
            res.push_str(",\"datacontenttype\":");
            push_json_string(&mut res, content_type);
            if !self.body.is_empty() {
                res.push_str(",\"data\":");
                res.push_str(&self.body);
            }
        }
        res.push('}');
        res
    }
}

fn push_json_string(out: &mut String, text: &str) {
    // Serializing a &str into a String cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// What a script passed after the object: RabbitMQ's routing key and the attributes.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct LoadArguments {
    pub routing_key: String,
    pub attributes: Vec<(&'static str, String)>,
}

/// Parses the arguments after the object (a JSON array), for RabbitMQ (`routingKey,
/// attributes` or `attributes`) or another broker (`attributes`).
pub(crate) fn parse_load_arguments(
    extra_arguments: Option<&str>,
    rabbit_mq: bool,
) -> Result<LoadArguments, String> {
    let mut res = LoadArguments::default();
    let Some(extra_arguments) = extra_arguments else {
        return Ok(res);
    };
    let values: Vec<Value> = serde_json::from_str(extra_arguments)
        .map_err(|error| format!("loadTo: unreadable arguments: {error}"))?;
    let mut values = values.into_iter().peekable();
    if rabbit_mq
        && let Some(Value::String(_)) = values.peek()
        && let Some(Value::String(key)) = values.next()
    {
        res.routing_key = key;
    }
    match values.next() {
        None | Some(Value::Null) => {}
        Some(Value::Object(attributes)) => {
            for (name, value) in attributes {
                let Some((_, event_name)) = SCRIPT_ATTRIBUTES.iter().find(|it| it.0 == name) else {
                    return Err(format!(
                        "loadTo: unknown CloudEvents attribute `{name}`; the attributes are Id, Type, Source, Subject, PartitionKey, DataSchema and Time"
                    ));
                };
                match value {
                    Value::Null => {}
                    Value::String(text) => res.attributes.push((event_name, text)),
                    other => {
                        return Err(format!(
                            "loadTo: the CloudEvents attribute `{name}` must be a string, got {other}"
                        ));
                    }
                }
            }
        }
        Some(Value::String(_)) => {
            return Err(
                "loadTo: a routing key is for RabbitMQ only; pass the attributes as an object"
                    .to_owned(),
            );
        }
        Some(other) => {
            return Err(format!(
                "loadTo: the attributes must be an object, got {other}"
            ));
        }
    }
    if values.next().is_some() {
        return Err("loadTo: too many arguments".to_owned());
    }
    Ok(res)
}

/// The event of a document's load: the defaults, then what the script set.
pub(crate) fn put_event(
    document_id: &str,
    change_vector: &str,
    source: &str,
    attributes: Vec<(&'static str, String)>,
) -> CloudEvent {
    let mut event = CloudEvent {
        id: change_vector.to_owned(),
        event_type: PUT_EVENT_TYPE.to_owned(),
        source: source.to_owned(),
        subject: None,
        partition_key: document_id.to_owned(),
        data_schema: None,
        time: None,
        data_content_type: Some(JSON_CONTENT_TYPE),
    };
    for (name, value) in attributes {
        event.set(name, value);
    }
    event
}

/// The event of a deleted document: no data.
pub(crate) fn delete_event(document_id: &str, change_vector: &str, source: &str) -> CloudEvent {
    CloudEvent {
        id: change_vector.to_owned(),
        event_type: DELETE_EVENT_TYPE.to_owned(),
        source: source.to_owned(),
        subject: None,
        partition_key: document_id.to_owned(),
        data_schema: None,
        time: None,
        data_content_type: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_give_the_routing_key_and_attributes() {
        let parsed =
            parse_load_arguments(Some(r#"["rk",{"Id":"x","Time":null,"Type":"t"}]"#), true)
                .unwrap();
        assert_eq!(parsed.routing_key, "rk");
        assert_eq!(
            parsed.attributes,
            vec![("id", "x".to_owned()), ("type", "t".to_owned())]
        );
        assert_eq!(
            parse_load_arguments(None, false).unwrap(),
            LoadArguments::default()
        );
        let unknown = parse_load_arguments(Some(r#"[{"Kind":"x"}]"#), false).unwrap_err();
        assert!(
            unknown.contains("unknown CloudEvents attribute `Kind`"),
            "{unknown}"
        );
        // Names are case-sensitive, as in RavenDB.
        assert!(parse_load_arguments(Some(r#"[{"id":"x"}]"#), false).is_err());
        assert!(parse_load_arguments(Some(r#"["rk"]"#), false).is_err());
        assert!(parse_load_arguments(Some(r#"[{"Id":1}]"#), false).is_err());
        assert!(parse_load_arguments(Some(r#"["rk",{},{}]"#), true).is_err());
    }

    #[test]
    fn script_attributes_override_the_defaults() {
        let event = put_event(
            "orders/1",
            "A:5-db",
            "http://h/Shop/t",
            vec![
                ("type", "order.created".to_owned()),
                ("subject", "s".to_owned()),
            ],
        );
        assert_eq!(
            event.attributes(),
            vec![
                ("specversion", "1.0"),
                ("id", "A:5-db"),
                ("type", "order.created"),
                ("source", "http://h/Shop/t"),
                ("partitionkey", "orders/1"),
                ("subject", "s"),
            ]
        );
        let deleted = delete_event("orders/1", "A:6-db", "/Shop/t");
        assert_eq!(deleted.event_type, DELETE_EVENT_TYPE);
        assert_eq!(deleted.data_content_type, None);
    }

    #[test]
    fn structured_mode_is_one_cloudevents_json_document() {
        let mut message = QueueMessage {
            document_id: "orders/1".to_owned(),
            change_vector: "A:5-db".to_owned(),
            queue: "orders".to_owned(),
            routing_key: String::new(),
            event: put_event("orders/1", "A:5-db", "http://h/Shop/t", vec![]),
            body: r#"{"Total":12345678901234567890123,"Name":"a\"b"}"#.to_owned(),
            deduplication_id: "A:5-db".to_owned(),
            delete_processed: false,
        };
        let text = message.structured_json();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["specversion"], "1.0");
        assert_eq!(parsed["id"], "A:5-db");
        assert_eq!(parsed["type"], PUT_EVENT_TYPE);
        assert_eq!(parsed["source"], "http://h/Shop/t");
        assert_eq!(parsed["partitionkey"], "orders/1");
        assert_eq!(parsed["datacontenttype"], JSON_CONTENT_TYPE);
        assert_eq!(parsed["data"]["Name"], "a\"b");
        // The data is the body as it is: a long integer keeps its digits.
        assert!(text.contains("12345678901234567890123"), "{text}");
        message.event = delete_event("orders/1", "A:6-db", "/Shop/t");
        message.body.clear();
        let parsed: Value = serde_json::from_str(&message.structured_json()).unwrap();
        assert_eq!(parsed["type"], DELETE_EVENT_TYPE);
        assert!(parsed.get("data").is_none() && parsed.get("datacontenttype").is_none());
    }
}
