//! The raw producer and the consumer of the brokers Corvid keeps a connection to: RabbitMQ (a
//! fanout exchange and its queue of the same name, confirm mode) and NATS JetStream (a
//! subject and its stream of the same name, `Nats-Msg-Id`, at most 4,096 PubAcks pending).

use anyhow::bail;
use async_nats::jetstream;
use futures_util::StreamExt as _;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use tokio::sync::watch;

use super::{BATCH, attributes, body};

/// The ETL's cap on PubAcks pending at once (NATS).
const MAX_ACKS_IN_FLIGHT: usize = 4096;

/// Declares exchange and queue `name` as the ETL would and counts what arrives in it.
pub(super) async fn rabbitmq_queue(
    connection: &lapin::Connection,
    name: &str,
    sender: watch::Sender<usize>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let channel = connection.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            name.into(),
            lapin::ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(name.into(), durable, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            name.into(),
            name.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            name.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(tokio::spawn(async move {
        while let Some(Ok(_)) = consumer.next().await {
            sender.send_modify(|it| *it += 1);
        }
    }))
}

/// Creates stream `name` on subject `name` and counts what arrives in it.
pub(super) async fn nats_queue(
    context: &jetstream::Context,
    name: &str,
    sender: watch::Sender<usize>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let stream = context
        .get_or_create_stream(jetstream::stream::Config {
            name: name.to_owned(),
            subjects: vec![name.to_owned()],
            ..Default::default()
        })
        .await?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?;
    Ok(tokio::spawn(async move {
        while let Some(Ok(_)) = messages.next().await {
            sender.send_modify(|it| *it += 1);
        }
    }))
}

/// Publishes the messages of documents `0..n_messages` to exchange `name` as the ETL does:
/// each batch of [`BATCH`] on a confirm-mode channel of its own.
pub(super) async fn rabbitmq_publish(
    connection: &lapin::Connection,
    name: &str,
    n_messages: usize,
) -> anyhow::Result<()> {
    let indexes: Vec<usize> = (0..n_messages).collect();
    for batch in indexes.chunks(BATCH) {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut confirms = Vec::with_capacity(batch.len());
        for idx in batch {
            let mut headers = FieldTable::default();
            for (attribute, value) in attributes(*idx) {
                headers.insert(
                    format!("cloudEvents:{attribute}").into(),
                    AMQPValue::LongString(LongString::from(value.into_bytes())),
                );
            }
            let properties = lapin::BasicProperties::default()
                .with_headers(headers)
                .with_delivery_mode(2)
                .with_content_type("application/json".into());
            let confirm = channel
                .basic_publish(
                    name.into(),
                    "".into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &body(*idx),
                    properties,
                )
                .await?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            if !confirm.await?.is_ack() {
                bail!("RabbitMQ did not take a message");
            }
        }
        let _ = channel.close(200, "bench: published".into()).await;
    }
    Ok(())
}

/// Publishes the messages of documents `0..n_messages` to subject `name` as the ETL does:
/// batch by batch, at most [`MAX_ACKS_IN_FLIGHT`] PubAcks pending.
pub(super) async fn nats_publish(
    context: &jetstream::Context,
    name: &str,
    n_messages: usize,
) -> anyhow::Result<()> {
    let indexes: Vec<usize> = (0..n_messages).collect();
    for batch in indexes.chunks(BATCH) {
        let mut acks = std::collections::VecDeque::new();
        for idx in batch {
            if acks.len() >= MAX_ACKS_IN_FLIGHT
                && let Some(ack) = acks.pop_front()
            {
                ack.await?;
            }
            let mut headers = async_nats::HeaderMap::new();
            let attributes = attributes(*idx);
            for (attribute, value) in &attributes {
                headers.insert(format!("ce-{attribute}").as_str(), value.as_str());
            }
            headers.insert("Content-Type", "application/json");
            let publish = jetstream::message::PublishMessage::build()
                .headers(headers)
                .message_id(attributes[1].1.as_str())
                .payload(body(*idx).into());
            acks.push_back(context.send_publish(name.to_owned(), publish).await?);
        }
        for ack in acks {
            ack.await?;
        }
    }
    Ok(())
}

pub(super) async fn rabbitmq_delete(connection: &lapin::Connection, name: &str) {
    if let Ok(channel) = connection.create_channel().await {
        let _ = channel.queue_delete(name.into(), Default::default()).await;
        let _ = channel
            .exchange_delete(name.into(), Default::default())
            .await;
    }
}
