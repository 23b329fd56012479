//! Queue ETL's encoder: each `loadTo…` call of a document is one message (all of a
//! document's or none: a bad attribute fails the document); a deleted document is a
//! `ravendb.etl.delete` event to the queues that ask for deletes.

use std::sync::Arc;

use corvid_script::ScriptRuntime;
use corvid_store::{HILO_COLLECTION, TombstoneKind};

use crate::config::EtlQueue;
use crate::destination::{BatchEncoder, Encoded, EncodedBatch, ItemSource};
use crate::destinations::queue::config::azure_queue_name;
use crate::destinations::queue::message::{
    QueueMessage, delete_event, parse_load_arguments, put_event,
};
use crate::extract::Item;
use crate::validate::ValidatedTransform;
use crate::worker::{SnapshotHost, TransformFailure, run_script};

/// What encoding needs, shared by a process's encoders.
#[derive(Debug, Clone)]
pub(crate) struct EncodeSettings {
    /// RabbitMQ takes a routing key after the object.
    pub rabbit_mq: bool,
    /// The broker's type name, for messages.
    pub broker_type: &'static str,
    /// How a `loadTo` target becomes the broker's queue name (`queues` already are).
    pub naming: QueueNaming,
    /// The default CloudEvents `source`.
    pub source: String,
    pub queues: Vec<EtlQueue>,
}

/// How a `loadTo` target names the broker's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueNaming {
    /// RabbitMQ exchanges and NATS subjects: as written.
    AsWritten,
    /// SQS: lower-cased, as RavenDB does.
    Lowercased,
    /// Azure Queue Storage: lower-cased, as RavenDB does, and then a valid queue name.
    Azure,
}

impl QueueNaming {
    pub(crate) fn queue_name(self, target: &str) -> Result<String, String> {
        match self {
            QueueNaming::AsWritten => Ok(target.to_owned()),
            QueueNaming::Lowercased => Ok(target.to_lowercase()),
            QueueNaming::Azure => azure_queue_name(target),
        }
    }
}

impl EncodeSettings {
    fn queue(&self, name: &str) -> Option<&EtlQueue> {
        self.queues.iter().find(|it| it.name == name)
    }
}

/// The messages of a batch, in order.
#[derive(Debug, Default)]
pub(crate) struct QueueBatch {
    pub messages: Vec<QueueMessage>,
}

impl EncodedBatch for QueueBatch {
    fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Every message is sent as it is: nothing is left out for new documents.
    fn has_new_documents(&self) -> bool {
        false
    }
}

/// Encodes items into a [`QueueBatch`].
pub(crate) struct QueueEncoder {
    settings: Arc<EncodeSettings>,
    batch: QueueBatch,
}

impl QueueEncoder {
    pub fn new(settings: Arc<EncodeSettings>) -> QueueEncoder {
        QueueEncoder {
            settings,
            batch: QueueBatch::default(),
        }
    }
}

impl BatchEncoder for QueueEncoder {
    type Batch = QueueBatch;

    fn encode(
        &mut self,
        source: &mut ItemSource<'_>,
        item: &Item,
        _never_sent: bool,
    ) -> Result<Encoded, TransformFailure> {
        // Validation refuses Queue ETL without a script; reported, never skipped silently.
        let Some(runtime) = source.runtime.as_deref_mut() else {
            return Err(TransformFailure {
                document_id: item.id().to_owned(),
                message: "Queue ETL needs a script that calls loadTo<Queue>".to_owned(),
            });
        };
        let mut host = SnapshotHost {
            snapshot: source.snapshot,
        };
        transform_queue_item(
            &self.settings,
            source.transform,
            runtime,
            &mut host,
            item,
            &mut self.batch.messages,
            &mut Vec::new(),
        )
    }

    fn append(&mut self, later: Self) {
        self.batch.messages.extend(later.batch.messages);
    }

    fn finish(self) -> QueueBatch {
        self.batch
    }
}

/// Runs the script on one item and adds its messages to `messages` (all or none).
pub(crate) fn transform_queue_item(
    settings: &EncodeSettings,
    transform: &ValidatedTransform,
    runtime: &mut ScriptRuntime,
    host: &mut SnapshotHost<'_>,
    item: &Item,
    messages: &mut Vec<QueueMessage>,
    debug_output: &mut Vec<String>,
) -> Result<Encoded, TransformFailure> {
    match item {
        Item::Document(doc) => {
            if doc.collection.eq_ignore_ascii_case(HILO_COLLECTION) {
                return Ok(Encoded::Filtered);
            }
            let failure = |message: String| TransformFailure {
                document_id: doc.id.clone(),
                message,
            };
            let output = run_script(runtime, host, doc, debug_output).map_err(failure)?;
            let n_loads = output.loads.len();
            let mut produced = Vec::with_capacity(n_loads);
            for (load_idx, load) in output.loads.into_iter().enumerate() {
                let arguments =
                    parse_load_arguments(load.extra_arguments.as_deref(), settings.rabbit_mq)
                        .map_err(failure)?;
                // A computed name is checked here; the script's literal ones when saved.
                let queue = settings
                    .naming
                    .queue_name(&load.target)
                    .map_err(|reason| failure(format!("loadTo: {reason}")))?;
                if !settings.rabbit_mq && queue.is_empty() {
                    return Err(failure(format!(
                        "loadTo: {} needs a queue (or subject) to publish to",
                        settings.broker_type
                    )));
                }
                let event = put_event(
                    &doc.id,
                    &doc.change_vector,
                    &settings.source,
                    arguments.attributes,
                );
                let deduplication_id = if n_loads == 1 {
                    event.id.clone()
                } else {
                    format!("{}/{load_idx}", event.id)
                };
                let delete_processed = settings
                    .queue(&queue)
                    .is_some_and(|it| it.delete_processed_documents);
                produced.push(QueueMessage {
                    document_id: doc.id.clone(),
                    change_vector: doc.change_vector.clone(),
                    queue,
                    routing_key: arguments.routing_key,
                    event,
                    body: load.json,
                    deduplication_id,
                    delete_processed,
                });
            }
            messages.extend(produced);
            Ok(Encoded::Loaded { n_loaded: n_loads })
        }
        Item::Tombstone(tombstone) => {
            if !matches!(tombstone.kind, TombstoneKind::Document) {
                return Ok(Encoded::Filtered);
            }
            let failure = |message: String| TransformFailure {
                document_id: tombstone.id.clone(),
                message,
            };
            let behavior = runtime
                .delete_behavior(&tombstone.collection, &tombstone.id, true, host)
                .map_err(|it| failure(it.to_string()))?;
            let mut targets: Vec<String> = Vec::new();
            match behavior {
                Some(false) => return Ok(Encoded::Filtered),
                // A behaviour function that lets the delete through sends it where the
                // script loads documents (named ones: the default exchange needs a routing key),
                // as well as to the queues that ask for deletes.
                Some(true) => {
                    // Literal targets were checked when the task was saved.
                    for target in transform.analysis.load_targets.iter() {
                        if let Ok(target) = settings.naming.queue_name(target)
                            && !target.is_empty()
                            && !targets.contains(&target)
                        {
                            targets.push(target);
                        }
                    }
                }
                None => {}
            }
            for queue in settings.queues.iter().filter(|it| it.send_deletes) {
                if !targets.contains(&queue.name) {
                    targets.push(queue.name.clone());
                }
            }
            if targets.is_empty() {
                return Ok(Encoded::Filtered);
            }
            for target in &targets {
                let event = delete_event(&tombstone.id, &tombstone.change_vector, &settings.source);
                let deduplication_id = if targets.len() == 1 {
                    event.id.clone()
                } else {
                    format!("{}/{target}", event.id)
                };
                messages.push(QueueMessage {
                    document_id: tombstone.id.clone(),
                    change_vector: tombstone.change_vector.clone(),
                    queue: target.clone(),
                    routing_key: String::new(),
                    event,
                    body: String::new(),
                    deduplication_id,
                    delete_processed: false,
                });
            }
            Ok(Encoded::Loaded {
                n_loaded: targets.len(),
            })
        }
    }
}
