//! `GET /databases/{db}/changes`: the Changes API WebSocket, in RavenDB's framing. Commands
//! arrive as text messages; confirmations and changes leave as JSON arrays of messages; an
//! error leaves as one `{"Type":"Error","Exception":…}` object, and a message that is not a
//! command closes the connection after it, as RavenDB does.

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures_util::SinkExt as _;
use tokio::sync::broadcast::error::RecvError;

use crate::changes::{ChangeBatch, ChangesOptions, CommandAction, Watches, parse_command};
use crate::error::ApiError;
use crate::extract::Db;
use crate::state::AppState;

/// Upgrades to a changes connection of the database (an unknown one is the usual 503).
pub(crate) async fn changes(
    State(state): State<AppState>,
    Db(database): Db,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(format!(
            "the changes endpoint accepts only WebSocket connections: {rejection}"
        ))
    })?;
    let broadcaster = state
        .changes()
        .attach(&database)
        .map_err(ApiError::internal)?;
    let options = state.changes().options().clone();
    Ok(upgrade
        .max_message_size(options.max_message_bytes)
        .max_frame_size(options.max_message_bytes)
        .on_upgrade(move |socket| async move {
            let receiver = broadcaster.receiver();
            let connection = Connection {
                socket,
                options,
                watches: Watches::default(),
            };
            let span = tracing::debug_span!("changes", database = database.name());
            drop(database);
            tracing::Instrument::instrument(connection.run(receiver), span).await;
            // The broadcaster lives as long as one of its connections.
            drop(broadcaster);
        }))
}

struct Connection {
    socket: WebSocket,
    options: ChangesOptions,
    watches: Watches,
}

/// Why a connection ends.
enum End {
    /// The client closed it or went away.
    Gone,
    /// The connection ends with an error message to the client.
    Error(String),
}

impl Connection {
    async fn run(mut self, mut receiver: tokio::sync::broadcast::Receiver<ChangeBatch>) {
        let end = loop {
            let step = tokio::select! {
                message = self.socket.recv() => self.on_message(message).await,
                batch = receiver.recv() => match batch {
                    Ok(batch) => self.on_changes(&batch).await,
                    Err(RecvError::Lagged(n_missed)) => Err(End::Error(format!(
                        "the connection is too slow to receive the changes: {n_missed} batches \
                         were dropped; reconnect to go on watching"
                    ))),
                    Err(RecvError::Closed) => Err(End::Gone),
                },
            };
            if let Err(end) = step {
                break end;
            }
        };
        if let End::Error(message) = end {
            tracing::debug!(%message, "closing changes connection");
            let _ = self.send_text(error_message(&message)).await;
            let close = Message::Close(Some(CloseFrame {
                code: close_code::POLICY,
                reason: "".into(),
            }));
            let _ = tokio::time::timeout(self.options.send_timeout, self.socket.send(close)).await;
        }
        // Sends the answer to a client's close frame (or our own) before the socket is dropped.
        let _ = tokio::time::timeout(self.options.send_timeout, self.socket.close()).await;
    }

    async fn on_message(
        &mut self,
        message: Option<Result<Message, axum::Error>>,
    ) -> Result<(), End> {
        let text = match message {
            None | Some(Ok(Message::Close(_))) => return Err(End::Gone),
            // Too large a message, or a broken frame.
            Some(Err(error)) => return Err(End::Error(format!("invalid message: {error}"))),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(()),
            Some(Ok(Message::Binary(_))) => {
                return Err(End::Error(
                    "binary messages are not commands; send JSON text".to_owned(),
                ));
            }
            Some(Ok(Message::Text(text))) => text,
        };
        let command =
            parse_command(text.as_str()).map_err(|error| End::Error(error.to_string()))?;
        match command.action {
            CommandAction::Watch(watch) => {
                if let Err(error) = self.watches.watch(watch) {
                    return Err(End::Error(error.to_string()));
                }
            }
            CommandAction::Unwatch(watch) => self.watches.unwatch(&watch),
            CommandAction::Unsupported { feature } => {
                let message = format!(
                    "Raven.Client.Exceptions.NotSupportedException: Corvid does not support {feature}"
                );
                self.send_text(error_message(&message)).await?;
            }
        }
        let confirm = serde_json::json!([{"CommandId": command.command_id, "Type": "Confirm"}]);
        self.send_text(confirm.to_string()).await
    }

    async fn on_changes(&mut self, batch: &ChangeBatch) -> Result<(), End> {
        if self.watches.is_empty() {
            return Ok(());
        }
        let mut frame = String::from("[");
        for change in batch.iter().filter(|it| self.watches.matches(it)) {
            if frame.len() > 1 {
                frame.push(',');
            }
            frame.push_str(&change.message_json);
        }
        if frame.len() == 1 {
            return Ok(());
        }
        frame.push(']');
        self.send_text(frame).await
    }

    async fn send_text(&mut self, text: String) -> Result<(), End> {
        let send = self.socket.send(Message::Text(text.into()));
        match tokio::time::timeout(self.options.send_timeout, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            // A client that reads nothing for this long is gone or stuck: drop it.
            Err(_) => Err(End::Gone),
        }
    }
}

/// RavenDB's error message: one object, not an array.
fn error_message(message: &str) -> String {
    serde_json::json!({"Type": "Error", "Exception": message}).to_string()
}
