//! The commands a changes client sends: `{"CommandId": n, "Command": "watch-doc", "Param": "users/1"}`.

use serde_json::Value;

use crate::changes::watches::Watch;

/// One command from a client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ChangesCommand {
    pub command_id: i64,
    pub action: CommandAction,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CommandAction {
    Watch(Watch),
    Unwatch(Watch),
    /// A watch of a feature Corvid does not have (counters, time series): refused with an
    /// error naming it, then confirmed so the client does not wait for a confirmation.
    Unsupported {
        feature: &'static str,
    },
}

/// Why a message is not a command; the connection answers with an error and closes, as
/// RavenDB does.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum CommandError {
    #[error("the message is not valid JSON: {reason}")]
    NotJson { reason: String },
    #[error("the message must be a JSON object, not {kind}")]
    NotAnObject { kind: &'static str },
    #[error("the message has no `{field}`, or it has the wrong type")]
    MissingField { field: &'static str },
    #[error("command `{command}` is not valid")]
    UnknownCommand { command: String },
    #[error("command `{command}` needs a non-empty string `Param`")]
    MissingParam { command: String },
}

/// Reads one text message as a command.
pub(crate) fn parse_command(text: &str) -> Result<ChangesCommand, CommandError> {
    let value: Value = serde_json::from_str(text).map_err(|error| CommandError::NotJson {
        reason: error.to_string(),
    })?;
    let Value::Object(object) = value else {
        return Err(CommandError::NotAnObject {
            kind: crate::http::json_kind(&value),
        });
    };
    let Some(command_id) = object.get("CommandId").and_then(Value::as_i64) else {
        return Err(CommandError::MissingField { field: "CommandId" });
    };
    let Some(command) = object.get("Command").and_then(Value::as_str) else {
        return Err(CommandError::MissingField { field: "Command" });
    };
    let param = object.get("Param").and_then(Value::as_str);
    let (is_watch, subject) = match command.split_once('-') {
        Some(("watch", subject)) => (true, subject),
        Some(("unwatch", subject)) => (false, subject),
        _ => return Err(unknown(command)),
    };
    let with_param = |make: fn(String) -> Watch| match param {
        Some(it) if !it.is_empty() => Ok(make(it.to_owned())),
        _ => Err(CommandError::MissingParam {
            command: command.to_owned(),
        }),
    };
    let watch = match subject {
        "docs" => Watch::AllDocuments,
        "doc" => with_param(Watch::Document)?,
        "collection" => with_param(Watch::Collection)?,
        "prefix" => with_param(Watch::Prefix)?,
        "indexes" | "index" => Watch::Indexes,
        "operations" | "operation" => Watch::Operations,
        "counters"
        | "counter"
        | "document-counters"
        | "document-counter"
        | "all-timeseries"
        | "timeseries"
        | "all-document-timeseries"
        | "document-timeseries" => {
            let feature = if subject.contains("counter") {
                "counters"
            } else {
                "time series"
            };
            return Ok(ChangesCommand {
                command_id,
                action: CommandAction::Unsupported { feature },
            });
        }
        _ => return Err(unknown(command)),
    };
    let action = if is_watch {
        CommandAction::Watch(watch)
    } else {
        CommandAction::Unwatch(watch)
    };
    Ok(ChangesCommand { command_id, action })
}

fn unknown(command: &str) -> CommandError {
    CommandError::UnknownCommand {
        command: command.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_commands_clients_send() {
        let parsed = parse_command(r#"{"CommandId":3,"Command":"watch-doc","Param":"users/1"}"#)
            .expect("valid");
        assert_eq!(
            parsed,
            ChangesCommand {
                command_id: 3,
                action: CommandAction::Watch(Watch::Document("users/1".into()))
            }
        );
        let parsed = parse_command(r#"{"CommandId":4,"Command":"unwatch-docs","Param":null}"#)
            .expect("valid");
        assert_eq!(parsed.action, CommandAction::Unwatch(Watch::AllDocuments));
        let parsed = parse_command(r#"{"CommandId":5,"Command":"watch-counters","Param":null}"#)
            .expect("valid");
        assert_eq!(
            parsed.action,
            CommandAction::Unsupported {
                feature: "counters"
            }
        );
    }

    #[test]
    fn rejects_what_is_not_a_command() {
        assert!(matches!(
            parse_command("not json"),
            Err(CommandError::NotJson { .. })
        ));
        assert_eq!(
            parse_command("[1]"),
            Err(CommandError::NotAnObject { kind: "an array" })
        );
        assert_eq!(
            parse_command(r#"{"Command":"watch-docs"}"#),
            Err(CommandError::MissingField { field: "CommandId" })
        );
        assert_eq!(
            parse_command(r#"{"CommandId":1,"Command":"drop-tables"}"#),
            Err(CommandError::UnknownCommand {
                command: "drop-tables".into()
            })
        );
        assert_eq!(
            parse_command(r#"{"CommandId":1,"Command":"watch-doc","Param":""}"#),
            Err(CommandError::MissingParam {
                command: "watch-doc".into()
            })
        );
    }
}
