//! Queue ETL's loader: publishes a batch and answers only once the broker acknowledged
//! every message (RabbitMQ publisher confirms, JetStream PubAcks, SQS's answer to
//! `SendMessageBatch`, Azure's 201 per message); a message the broker
//! refuses on its own is left out with its document id. Then the source documents of queues
//! with `DeleteProcessedDocuments` are deleted, each only if it did not change since it was
//! read (the store's expected change vector).

use std::sync::Arc;

use corvid_store::{Database, WriteError, WriteOp};

use crate::destination::{
    BadItemSearch, Delivered, Delivery, LoadError, Loader, SkippedItem, Targets,
};
use crate::destinations::queue::azure::AzurePublisher;
use crate::destinations::queue::config::{QueueBroker, QueueDestination};
use crate::destinations::queue::encoder::QueueBatch;
use crate::destinations::queue::message::QueueMessage;
use crate::destinations::queue::nats::NatsPublisher;
use crate::destinations::queue::rabbitmq::RabbitMqPublisher;
use crate::destinations::queue::sqs::SqsPublisher;

/// A broker connection, kept between batches.
pub(crate) enum Publisher {
    /// A broker that takes or refuses a part of a batch as a whole: a message it refuses on
    /// its own is searched for.
    Parts(Box<PartPublisher>),
    /// Azure Queue Storage: each message is its own request, and the refused ones are named.
    AzureQueueStorage(AzurePublisher),
}

pub(crate) enum PartPublisher {
    RabbitMq(RabbitMqPublisher),
    Nats(NatsPublisher),
    AmazonSqs(SqsPublisher),
}

impl Publisher {
    /// `sqs_emulator_url`: where SQS connection strings with `UseEmulator` send.
    pub fn new(
        destination: &QueueDestination,
        sqs_emulator_url: Option<&str>,
    ) -> Result<Publisher, LoadError> {
        let declare = !destination.skip_automatic_queue_declaration;
        Ok(match &destination.broker {
            QueueBroker::RabbitMq { uri } => Publisher::Parts(Box::new(PartPublisher::RabbitMq(
                RabbitMqPublisher::new(uri.clone(), declare),
            ))),
            QueueBroker::Nats { servers, stream } => Publisher::Parts(Box::new(
                PartPublisher::Nats(NatsPublisher::new(servers.clone(), stream.clone(), declare)),
            )),
            QueueBroker::AzureQueueStorage { account } => {
                Publisher::AzureQueueStorage(AzurePublisher::new(account.clone(), declare))
            }
            QueueBroker::AmazonSqs(settings) => {
                Publisher::Parts(Box::new(PartPublisher::AmazonSqs(SqsPublisher::new(
                    settings.clone(),
                    declare,
                    sqs_emulator_url,
                )?)))
            }
        })
    }
}

impl PartPublisher {
    /// Publishes `messages` and waits for the broker's acknowledgement of each. A
    /// [`LoadError::BadItem`] names the message by its position in `messages`.
    async fn publish(&mut self, messages: &[QueueMessage]) -> Result<(), LoadError> {
        match self {
            PartPublisher::RabbitMq(it) => it.publish(messages).await,
            PartPublisher::Nats(it) => it.publish(messages).await,
            PartPublisher::AmazonSqs(it) => it.publish(messages).await,
        }
    }
}

/// Publishes Queue ETL batches.
pub(crate) struct QueueLoader {
    publisher: Publisher,
    database: Arc<Database>,
}

impl QueueLoader {
    pub fn new(
        destination: &QueueDestination,
        database: Arc<Database>,
        sqs_emulator_url: Option<&str>,
    ) -> Result<QueueLoader, LoadError> {
        Ok(QueueLoader {
            publisher: Publisher::new(destination, sqs_emulator_url)?,
            database,
        })
    }
}

impl Loader for QueueLoader {
    type Batch = QueueBatch;

    async fn start<'a>(
        &'a mut self,
        batch: &'a mut QueueBatch,
        _targets: Targets<'a>,
    ) -> (Delivery, usize) {
        let n_messages = batch.messages.len();
        if n_messages == 0 {
            return (Delivery::Done(Ok(Delivered::default())), 0);
        }
        let res = match publish_leaving_out_refused(&mut self.publisher, &batch.messages).await {
            Ok(skipped) => {
                delete_processed(&self.database, &batch.messages, &skipped).await;
                Ok(Delivered {
                    newly_owned: Vec::new(),
                    skipped,
                    buffered: false,
                })
            }
            Err(error) => Err(error),
        };
        (Delivery::Done(res), n_messages)
    }
}

/// Publishes every message; a message the broker refuses on its own is found (named by
/// its position, or by halving) and left out. Azure sends each message on its own and names
/// those it refused, so nothing is sent twice to find them.
pub(crate) async fn publish_leaving_out_refused(
    publisher: &mut Publisher,
    messages: &[QueueMessage],
) -> Result<Vec<SkippedItem>, LoadError> {
    let publisher = match publisher {
        Publisher::AzureQueueStorage(azure) => {
            let refused = azure.publish(messages).await?;
            return Ok(refused
                .into_iter()
                .map(|(idx, message)| SkippedItem {
                    document_id: messages[idx].document_id.clone(),
                    message,
                })
                .collect());
        }
        Publisher::Parts(it) => it,
    };
    let mut search = BadItemSearch::new(messages.len());
    while let Some(range) = search.next() {
        let start = range.start;
        let res = publisher.publish(&messages[range.clone()]).await;
        // The publisher names a refused message by its position in the part it was given.
        let res = res.map_err(|error| match error {
            LoadError::BadItem {
                document_id,
                message,
            } => LoadError::BadItem {
                document_id: document_id
                    .and_then(|it| it.parse::<usize>().ok())
                    .map(|it| (start + it).to_string()),
                message,
            },
            other => other,
        });
        search.record(
            range,
            res,
            |position| position.parse().ok(),
            |idx| messages[idx].document_id.clone(),
        )?;
    }
    search.finish()
}

/// Deletes the source documents of delivered messages to `DeleteProcessedDocuments` queues,
/// each only when its change vector is still the one that was published.
async fn delete_processed(
    database: &Arc<Database>,
    messages: &[QueueMessage],
    skipped: &[SkippedItem],
) {
    let mut deletes: Vec<(String, String)> = Vec::new();
    for message in messages.iter().filter(|it| it.delete_processed) {
        if skipped
            .iter()
            .any(|it| it.document_id == message.document_id)
            || deletes.iter().any(|it| it.0 == message.document_id)
        {
            continue;
        }
        deletes.push((message.document_id.clone(), message.change_vector.clone()));
    }
    if deletes.is_empty() {
        return;
    }
    let ops = |deletes: &[(String, String)]| -> Vec<WriteOp> {
        deletes
            .iter()
            .map(|(id, change_vector)| WriteOp::Delete {
                id: id.clone(),
                expected_change_vector: Some(change_vector.clone()),
            })
            .collect()
    };
    match write(database, ops(&deletes)).await {
        Ok(()) => return,
        Err(WriteError::Concurrency { .. }) => {}
        Err(error) => {
            tracing::warn!(%error, "failed to delete processed documents");
            return;
        }
    }
    // A document changed since it was read: delete the others one by one.
    for delete in deletes.chunks(1) {
        match write(database, ops(delete)).await {
            Ok(()) | Err(WriteError::Concurrency { .. }) => {}
            Err(error) => {
                tracing::warn!(%error, id = %delete[0].0, "failed to delete a processed document");
            }
        }
    }
}

async fn write(database: &Arc<Database>, ops: Vec<WriteOp>) -> Result<(), WriteError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    database.write_async(
        ops,
        Box::new(move |result| {
            let _ = sender.send(result);
        }),
    );
    match receiver.await {
        Ok(res) => res.map(drop),
        Err(_) => Err(WriteError::Closed {
            name: database.name().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use corvid_store::{PutDocument, Storage};

    use super::*;
    use crate::destinations::queue::message::put_event;

    fn put(db: &Database, id: &str, total: u64) -> String {
        let doc = serde_json::json!({"Total": total, "@metadata": {"@collection": "Orders"}});
        let op =
            WriteOp::Put(PutDocument::new(id, doc.as_object().unwrap().clone(), None).unwrap());
        db.write(vec![op]).unwrap();
        db.snapshot()
            .unwrap()
            .get(id)
            .unwrap()
            .unwrap()
            .change_vector
    }

    fn message(id: &str, change_vector: &str, delete_processed: bool) -> QueueMessage {
        QueueMessage {
            document_id: id.to_owned(),
            change_vector: change_vector.to_owned(),
            queue: "Orders".to_owned(),
            routing_key: String::new(),
            event: put_event(id, change_vector, "/db/t", Vec::new()),
            body: "{}".to_owned(),
            deduplication_id: change_vector.to_owned(),
            delete_processed,
        }
    }

    #[tokio::test]
    async fn processed_documents_are_deleted_only_when_unchanged_since_they_were_read() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let db = storage.create_database("db").unwrap();
        let published_1 = put(&db, "orders/1", 1);
        let published_2 = put(&db, "orders/2", 2);
        let published_3 = put(&db, "orders/3", 3);
        let published_4 = put(&db, "orders/4", 4);
        // Changed after it was read: the new version has not been published yet.
        put(&db, "orders/2", 20);
        let messages = vec![
            message("orders/1", &published_1, true),
            message("orders/2", &published_2, true),
            message("orders/3", &published_3, false),
            message("orders/4", &published_4, true),
        ];
        let skipped = vec![SkippedItem {
            document_id: "orders/4".to_owned(),
            message: "too large".to_owned(),
        }];
        delete_processed(&db, &messages, &skipped).await;
        let snapshot = db.snapshot().unwrap();
        assert!(snapshot.get("orders/1").unwrap().is_none());
        // Changed since it was read, not asked for, refused by the broker: all kept.
        assert!(snapshot.get("orders/2").unwrap().is_some());
        assert!(snapshot.get("orders/3").unwrap().is_some());
        assert!(snapshot.get("orders/4").unwrap().is_some());
    }
}
