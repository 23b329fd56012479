//! The `bulk_docs` commands Raven ETL sends for one source item (spec §2.2–2.6, §2.10, §9).
//! Pure functions: what to send is decided here, how to send it in `writer.rs`.

use bytes::Bytes;
use corvid_client::{Command, RawDocument};
use corvid_script::{LoadedObject, ScriptAnalysis};
use serde_json::{Map, Value};

/// The id prefix RavenDB's client conventions give a collection: lower-cased when the name has
/// at most one capital letter (`People` → `people`), as written otherwise (`OrderLines`).
pub fn collection_id_prefix(collection: &str) -> String {
    let capitals = collection.chars().filter(|it| it.is_uppercase()).count();
    if capitals <= 1 {
        return collection.to_lowercase();
    }
    collection.to_owned()
}

/// Returns true when a script target is the source document's own collection.
pub fn is_same_collection(target: &str, source_collection: &str) -> bool {
    target.eq_ignore_ascii_case(source_collection)
}

/// The id a loaded object gets at the destination: the source id for the same collection,
/// `{sourceId}/{prefix}/` (the destination appends the rest) for another.
pub fn destination_id(source_id: &str, source_collection: &str, target: &str) -> String {
    if is_same_collection(target, source_collection) {
        return source_id.to_owned();
    }
    format!("{source_id}/{}/", collection_id_prefix(target))
}

/// The deletes that precede the new version of a document (and stand alone for a source
/// delete): delete-by-prefix for every other-collection target, a plain delete of the id for
/// the same collection when the script adds attachments (or when the document was deleted).
pub fn delete_commands(
    source_id: &str,
    source_collection: &str,
    analysis: &ScriptAnalysis,
    source_deleted: bool,
) -> Vec<Command> {
    let mut commands = Vec::new();
    for target in &analysis.load_targets {
        if is_same_collection(target, source_collection) {
            if source_deleted || analysis.uses_add_attachment {
                commands.push(Command::Delete {
                    id: source_id.to_owned(),
                    change_vector: None,
                });
            }
            continue;
        }
        commands.push(Command::DeletePrefixed {
            id_prefix: destination_id(source_id, source_collection, target),
        });
    }
    // Several targets may name the same collection in different spellings.
    commands.dedup_by(|a, b| a == b);
    commands
}

/// The PUT (and attachment) commands of the objects a script loaded.
pub fn put_commands(
    source_id: &str,
    source_collection: &str,
    loads: &[LoadedObject],
    attachment: &mut dyn FnMut(&str) -> Option<(String, Bytes)>,
) -> Result<Vec<Command>, String> {
    let mut commands = Vec::with_capacity(loads.len());
    for load in loads {
        let id = destination_id(source_id, source_collection, &load.target);
        let command = match with_collection_spliced(&load.json, &load.target) {
            Some(document) => Command::PutRaw {
                id: id.clone(),
                document,
            },
            None => Command::Put {
                id: id.clone(),
                document: prepare_document(&load.json, &load.target, source_collection)?,
                change_vector: None,
            },
        };
        commands.push(command);
        for added in &load.attachments {
            let Some((content_type, content)) = attachment(&added.source_name) else {
                continue;
            };
            commands.push(Command::AttachmentPut {
                id: id.clone(),
                name: added.name.clone(),
                content_type,
                bytes: content,
            });
        }
    }
    Ok(commands)
}

/// The common case without a parse: an object the script built has no `@metadata`, so the
/// rules of §2.10 come down to adding `@metadata: {@collection: target}` — spliced into the
/// JSON text before its closing brace. `None` when the text mentions `@metadata` anywhere
/// (the full rules then apply) or is not an object.
fn with_collection_spliced(json: &str, target: &str) -> Option<RawDocument> {
    let body = json.trim_end().strip_suffix('}')?;
    if !json.trim_start().starts_with('{') || json.contains("\"@metadata\"") {
        return None;
    }
    let collection = serde_json::to_string(target).ok()?;
    let separator = if body.trim_end().ends_with('{') {
        ""
    } else {
        ","
    };
    let spliced = format!("{body}{separator}\"@metadata\":{{\"@collection\":{collection}}}}}");
    RawDocument::new(spliced).ok()
}

/// Applies the metadata rules of §2.10 to an object a script loaded.
fn prepare_document(json: &str, target: &str, source_collection: &str) -> Result<Value, String> {
    let mut object: Map<String, Value> = match serde_json::from_str(json) {
        Ok(Value::Object(it)) => it,
        Ok(_) => return Err(format!("loadTo{target} needs an object")),
        Err(error) => return Err(format!("loadTo{target} produced invalid JSON: {error}")),
    };
    let metadata = object
        .entry("@metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    if let Value::Object(metadata) = metadata {
        for key in [
            "@attachments",
            "@counters",
            "@id",
            "@change-vector",
            "@last-modified",
            "@flags",
        ] {
            metadata.shift_remove(key);
        }
        let has_collection = metadata.get("@collection").is_some_and(Value::is_string);
        if !is_same_collection(target, source_collection) || !has_collection {
            metadata.insert("@collection".to_owned(), Value::String(target.to_owned()));
        }
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(targets: &[&str], add_attachment: bool) -> ScriptAnalysis {
        ScriptAnalysis {
            is_empty: false,
            has_load_to: true,
            load_targets: targets.iter().map(|it| (*it).to_owned()).collect(),
            uses_load_attachment: add_attachment,
            uses_add_attachment: add_attachment,
            delete_behaviors: vec![],
            has_generic_delete_behavior: false,
        }
    }

    #[test]
    fn prefixes_follow_ravendb_conventions() {
        assert_eq!(collection_id_prefix("People"), "people");
        assert_eq!(collection_id_prefix("people"), "people");
        assert_eq!(collection_id_prefix("OrderLines"), "OrderLines");
        assert_eq!(collection_id_prefix("PEOPLE"), "PEOPLE");
        assert_eq!(
            destination_id("users/1-A", "Users", "People"),
            "users/1-A/people/"
        );
        assert_eq!(destination_id("users/1-A", "Users", "users"), "users/1-A");
    }

    #[test]
    fn other_collections_are_deleted_by_prefix_before_the_puts() {
        let commands = delete_commands(
            "users/1",
            "Users",
            &analysis(&["People", "Users"], false),
            false,
        );
        assert_eq!(
            commands,
            vec![Command::DeletePrefixed {
                id_prefix: "users/1/people/".into()
            }]
        );
        let commands = delete_commands("users/1", "Users", &analysis(&["Users"], true), false);
        assert_eq!(
            commands,
            vec![Command::Delete {
                id: "users/1".into(),
                change_vector: None
            }]
        );
        let commands = delete_commands(
            "users/1",
            "Users",
            &analysis(&["Users", "People"], false),
            true,
        );
        assert_eq!(commands.len(), 2);
    }

    #[test]
    fn loaded_objects_get_their_target_collection() {
        let loads = vec![
            LoadedObject {
                target: "People".into(),
                json: r#"{"Name":"A","@metadata":{"@collection":"Users","@attachments":[],"Custom":1}}"#.into(),
                values: None,
                attachments: vec![],
                extra_arguments: None,
            },
            LoadedObject { target: "users".into(), json: r#"{"Name":"B"}"#.into(), values: None, attachments: vec![], extra_arguments: None },
        ];
        let commands = put_commands("users/1", "Users", &loads, &mut |_| None).unwrap();
        let Command::Put { id, document, .. } = &commands[0] else {
            panic!("expected a put")
        };
        assert_eq!(id, "users/1/people/");
        assert_eq!(document["@metadata"]["@collection"], "People");
        assert_eq!(document["@metadata"]["Custom"], 1);
        assert!(document["@metadata"].get("@attachments").is_none());
        let Command::PutRaw { id, document } = &commands[1] else {
            panic!("expected a raw put: the object has no @metadata")
        };
        assert_eq!(id, "users/1");
        let document: Value = serde_json::from_str(document.get()).unwrap();
        assert_eq!(
            document,
            serde_json::json!({"Name": "B", "@metadata": {"@collection": "users"}})
        );
    }

    #[test]
    fn splices_the_collection_into_objects_without_metadata() {
        let spliced =
            |json: &str| with_collection_spliced(json, "Peo\"ple").map(|it| it.get().to_owned());
        assert_eq!(
            spliced("{}").as_deref(),
            Some(r#"{"@metadata":{"@collection":"Peo\"ple"}}"#)
        );
        assert_eq!(
            spliced(r#"{"A":{"B":1}}"#).as_deref(),
            Some(r#"{"A":{"B":1},"@metadata":{"@collection":"Peo\"ple"}}"#)
        );
        assert_eq!(spliced(r#"{"@metadata":{}}"#), None);
        // A mention of `"@metadata"` anywhere falls back to the full rules: never wrong.
        assert_eq!(spliced(r#"{"A":"@metadata"}"#), None);
        assert_eq!(
            spliced(r#"{"A":"\"@metadata\""}"#).as_deref(),
            Some(r#"{"A":"\"@metadata\"","@metadata":{"@collection":"Peo\"ple"}}"#)
        );
        assert_eq!(spliced("[1]"), None);
    }
}
