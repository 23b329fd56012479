//! Raven ETL's encoder: each transformed item becomes `bulk_docs` commands, and a batch is
//! the commands of its items, in order, sent as one request.

use std::collections::{BTreeSet, HashSet};

use bytes::Bytes;
use corvid_client::{Command, RawDocument};
use corvid_script::ScriptRuntime;
use corvid_store::{HILO_COLLECTION, Snapshot, TombstoneKind};

use crate::destination::{BatchEncoder, Encoded, EncodedBatch, ItemSource};
use crate::destinations::raven::commands::{delete_commands, put_commands};
use crate::extract::Item;
use crate::validate::ValidatedTransform;
use crate::worker::{SnapshotHost, TransformFailure, run_script};

/// The `bulk_docs` commands of a Raven ETL batch.
#[derive(Debug, Default)]
pub struct RavenLoad {
    pub commands: Vec<Command>,
    /// Every delete-by-prefix among `commands`, in order: the loader leaves out those that
    /// cannot delete anything.
    pub prefix_deletes: Vec<PrefixDelete>,
    /// Where each source item's commands start in `commands`, in order, with the item's id:
    /// the units the loader isolates a refused item by.
    pub items: Vec<RavenItem>,
}

/// The commands of one source item: `commands[start..]` up to the next item's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RavenItem {
    pub start: usize,
    pub source_id: String,
}

/// A delete-by-prefix command of a Raven ETL batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixDelete {
    /// Its position in [`RavenLoad::commands`].
    pub index: usize,
    /// The target collection's id prefix, lower-cased (`people` of `users/1/people/`).
    pub collection_prefix: String,
    /// No version of the source document was ever sent, so the prefix holds nothing this
    /// process wrote.
    pub new_document: bool,
}

impl EncodedBatch for RavenLoad {
    fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    fn has_new_documents(&self) -> bool {
        self.prefix_deletes.iter().any(|it| it.new_document)
    }

    /// A batch that will only write (every delete in it is of a new document in an `owned`
    /// target, which the load leaves out) may overlap; two of them with no id in common end
    /// the same whichever the destination applies first.
    fn overlap_ids(&self, owned: &BTreeSet<String>) -> Option<HashSet<String>> {
        let skipped_deletes = self
            .prefix_deletes
            .iter()
            .filter(|it| it.new_document && owned.contains(&it.collection_prefix))
            .count();
        let mut ids = HashSet::with_capacity(self.commands.len());
        let mut deletes = 0;
        for command in &self.commands {
            match command {
                Command::Put { id, .. }
                | Command::PutRaw { id, .. }
                | Command::AttachmentPut { id, .. } => {
                    ids.insert(id.to_lowercase());
                }
                Command::DeletePrefixed { .. } => deletes += 1,
                Command::Delete { .. } | Command::AttachmentDelete { .. } => return None,
            }
        }
        (deletes == skipped_deletes && deletes == self.prefix_deletes.len()).then_some(ids)
    }
}

impl RavenLoad {
    /// Adds the commands of `item_id`, noting its deletes-by-prefix.
    pub(crate) fn extend(&mut self, item_id: &str, new_document: bool, commands: Vec<Command>) {
        if commands.is_empty() {
            return;
        }
        self.items.push(RavenItem {
            start: self.commands.len(),
            source_id: item_id.to_owned(),
        });
        for command in commands {
            if let Command::DeletePrefixed { id_prefix } = &command {
                let collection_prefix = id_prefix
                    .strip_prefix(item_id)
                    .and_then(|it| it.strip_prefix('/'))
                    .and_then(|it| it.strip_suffix('/'));
                if let Some(collection_prefix) = collection_prefix {
                    self.prefix_deletes.push(PrefixDelete {
                        index: self.commands.len(),
                        collection_prefix: collection_prefix.to_lowercase(),
                        new_document,
                    });
                }
            }
            self.commands.push(command);
        }
    }

    /// Adds the commands of a later part of the batch.
    fn append(&mut self, later: RavenLoad) {
        let offset = self.commands.len();
        self.prefix_deletes
            .extend(later.prefix_deletes.into_iter().map(|it| PrefixDelete {
                index: it.index + offset,
                ..it
            }));
        self.items
            .extend(later.items.into_iter().map(|it| RavenItem {
                start: it.start + offset,
                ..it
            }));
        self.commands.extend(later.commands);
    }

    /// Removes the commands at `sorted_indexes` (ascending), keeping item starts right; an
    /// item left without commands is dropped. Prefix deletes are forgotten (they were decided).
    pub(crate) fn remove_commands(&mut self, sorted_indexes: &[usize]) {
        if sorted_indexes.is_empty() {
            return;
        }
        let mut skipped = sorted_indexes.iter().copied().peekable();
        let mut idx = 0;
        self.commands.retain(|_| {
            let keep = skipped.next_if_eq(&idx).is_none();
            idx += 1;
            keep
        });
        let new_starts: Vec<usize> = self
            .items
            .iter()
            .map(|it| it.start - sorted_indexes.partition_point(|removed| *removed < it.start))
            .collect();
        let n_commands = self.commands.len();
        let items = std::mem::take(&mut self.items);
        for (item_idx, mut item) in items.into_iter().enumerate() {
            let end = new_starts.get(item_idx + 1).copied().unwrap_or(n_commands);
            // An item whose commands all went is no longer a unit of the batch.
            if new_starts[item_idx] < end {
                item.start = new_starts[item_idx];
                self.items.push(item);
            }
        }
        self.prefix_deletes.clear();
    }

    /// The commands of items `range` (indexes into `items`).
    pub(crate) fn item_commands(&self, range: std::ops::Range<usize>) -> &[Command] {
        let start = self
            .items
            .get(range.start)
            .map_or(self.commands.len(), |it| it.start);
        let end = self
            .items
            .get(range.end)
            .map_or(self.commands.len(), |it| it.start);
        &self.commands[start..end]
    }
}

/// Encodes items into a [`RavenLoad`].
#[derive(Debug, Default)]
pub(crate) struct RavenEncoder {
    load: RavenLoad,
}

impl BatchEncoder for RavenEncoder {
    type Batch = RavenLoad;

    fn encode(
        &mut self,
        source: &mut ItemSource<'_>,
        item: &Item,
        never_sent: bool,
    ) -> Result<Encoded, TransformFailure> {
        let outcome = match source.runtime.as_deref_mut() {
            None => copy_item(source.snapshot, item),
            Some(runtime) => {
                let mut host = SnapshotHost {
                    snapshot: source.snapshot,
                };
                transform_item(
                    source.snapshot,
                    source.transform,
                    runtime,
                    &mut host,
                    item,
                    &mut Vec::new(),
                )
            }
        }?;
        match outcome {
            ItemOutcome::Commands(commands, n_loaded) => {
                self.load.extend(item.id(), never_sent, commands);
                Ok(Encoded::Loaded { n_loaded })
            }
            ItemOutcome::Filtered => Ok(Encoded::Filtered),
        }
    }

    fn append(&mut self, later: Self) {
        self.load.append(later.load);
    }

    fn finish(self) -> RavenLoad {
        self.load
    }
}

pub(crate) enum ItemOutcome {
    /// Commands to send and how many objects the script loaded.
    Commands(Vec<Command>, usize),
    Filtered,
}

/// An empty script: the document goes as it is, with its attachments; deletes follow.
pub(crate) fn copy_item(snapshot: &Snapshot, item: &Item) -> Result<ItemOutcome, TransformFailure> {
    match item {
        Item::Document(doc) => {
            let failure = |message: String| TransformFailure {
                document_id: doc.id.clone(),
                message,
            };
            // The stored JSON goes as it is, without the metadata the destination owns: what
            // RavenDB sends (its test endpoint shows no `@id`, `@change-vector`, ...).
            let document =
                RawDocument::new(doc.to_etl_json_string()).map_err(|it| failure(it.to_string()))?;
            let mut commands = vec![Command::PutRaw {
                id: doc.id.clone(),
                document,
            }];
            for info in &doc.attachments {
                let found = snapshot
                    .attachment(&doc.id, &info.name)
                    .map_err(|it| failure(it.to_string()))?;
                if let Some((info, content)) = found {
                    commands.push(Command::AttachmentPut {
                        id: doc.id.clone(),
                        name: info.name,
                        content_type: info.content_type,
                        bytes: Bytes::from(content),
                    });
                }
            }
            Ok(ItemOutcome::Commands(commands, 1))
        }
        Item::Tombstone(tombstone) => {
            let command = match &tombstone.kind {
                TombstoneKind::Document => Command::Delete {
                    id: tombstone.id.clone(),
                    change_vector: None,
                },
                TombstoneKind::Attachment { name } => Command::AttachmentDelete {
                    id: tombstone.id.clone(),
                    name: name.clone(),
                },
            };
            Ok(ItemOutcome::Commands(vec![command], 1))
        }
    }
}

pub(crate) fn transform_item(
    snapshot: &Snapshot,
    transform: &ValidatedTransform,
    runtime: &mut ScriptRuntime,
    host: &mut SnapshotHost<'_>,
    item: &Item,
    debug_output: &mut Vec<String>,
) -> Result<ItemOutcome, TransformFailure> {
    match item {
        Item::Document(doc) => {
            // HiLo state belongs to the source's id generation; only an empty script copies it.
            if doc.collection.eq_ignore_ascii_case(HILO_COLLECTION) {
                return Ok(ItemOutcome::Filtered);
            }
            let failure = |message: String| TransformFailure {
                document_id: doc.id.clone(),
                message,
            };
            let allow_deletes = runtime
                .delete_behavior(&doc.collection, &doc.id, false, host)
                .map_err(|it| failure(it.to_string()))?
                .unwrap_or(true);
            let mut commands = if allow_deletes {
                delete_commands(&doc.id, &doc.collection, &transform.analysis, false)
            } else {
                Vec::new()
            };
            let output = run_script(runtime, host, doc, debug_output).map_err(failure)?;
            let mut attachment = |name: &str| -> Option<(String, Bytes)> {
                let (info, content) = snapshot.attachment(&doc.id, name).ok()??;
                Some((info.content_type, Bytes::from(content)))
            };
            let puts = put_commands(&doc.id, &doc.collection, &output.loads, &mut attachment)
                .map_err(failure)?;
            commands.extend(puts);
            Ok(ItemOutcome::Commands(commands, output.loads.len()))
        }
        Item::Tombstone(tombstone) => {
            if !matches!(tombstone.kind, TombstoneKind::Document) {
                return Ok(ItemOutcome::Filtered);
            }
            let failure = |message: String| TransformFailure {
                document_id: tombstone.id.clone(),
                message,
            };
            let allow = runtime
                .delete_behavior(&tombstone.collection, &tombstone.id, true, host)
                .map_err(|it| failure(it.to_string()))?
                .unwrap_or(true);
            if !allow {
                return Ok(ItemOutcome::Filtered);
            }
            let commands = delete_commands(
                &tombstone.id,
                &tombstone.collection,
                &transform.analysis,
                true,
            );
            Ok(ItemOutcome::Commands(commands, 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: &str) -> Command {
        Command::PutRaw {
            id: id.to_owned(),
            document: RawDocument::new("{}".to_owned()).unwrap(),
        }
    }

    fn raven(commands: Vec<Command>, prefix_deletes: Vec<PrefixDelete>) -> RavenLoad {
        RavenLoad {
            commands,
            prefix_deletes,
            items: Vec::new(),
        }
    }

    fn prefix_delete(index: usize, new_document: bool) -> PrefixDelete {
        PrefixDelete {
            index,
            collection_prefix: "people".to_owned(),
            new_document,
        }
    }

    #[test]
    fn only_batches_that_will_only_write_may_overlap() {
        let owned: BTreeSet<String> = ["people".to_owned()].into();
        let delete = |id: &str| Command::DeletePrefixed {
            id_prefix: id.to_owned(),
        };
        // Plain PUTs: the ids they write, lower case.
        let puts = raven(vec![put("Users/1"), put("users/2")], Vec::new());
        let expected: HashSet<String> = ["users/1".to_owned(), "users/2".to_owned()].into();
        assert_eq!(puts.overlap_ids(&owned), Some(expected));
        // Deletes of new documents in an owned target are left out by the load.
        let new_docs = raven(
            vec![delete("users/1/people/"), put("users/1/people/")],
            vec![prefix_delete(0, true)],
        );
        assert_eq!(
            new_docs.overlap_ids(&owned),
            Some(["users/1/people/".to_owned()].into())
        );
        // The same batch while the target is not owned yet, and a delete of a document sent
        // before: they stay, so the batch may not overlap.
        assert_eq!(new_docs.overlap_ids(&BTreeSet::new()), None);
        let update = raven(
            vec![delete("users/1/people/"), put("users/1/people/")],
            vec![prefix_delete(0, false)],
        );
        assert_eq!(update.overlap_ids(&owned), None);
        let deleted = raven(
            vec![Command::Delete {
                id: "users/1".to_owned(),
                change_vector: None,
            }],
            Vec::new(),
        );
        assert_eq!(deleted.overlap_ids(&owned), None);
    }

    #[test]
    fn removed_deletes_keep_each_item_to_its_own_commands() {
        let delete = |id: &str| Command::DeletePrefixed {
            id_prefix: id.to_owned(),
        };
        let mut load = RavenLoad::default();
        load.extend(
            "users/1",
            true,
            vec![delete("users/1/people/"), put("users/1/people/")],
        );
        load.extend("users/2", true, vec![delete("users/2/people/")]);
        load.extend(
            "users/3",
            true,
            vec![delete("users/3/people/"), put("users/3/people/")],
        );
        assert_eq!(load.items.len(), 3);
        load.remove_commands(&[0, 2, 3]);
        // users/2 had only its delete: it is no longer a unit of the batch.
        let ids: Vec<&str> = load.items.iter().map(|it| it.source_id.as_str()).collect();
        assert_eq!(ids, vec!["users/1", "users/3"]);
        assert_eq!(load.item_commands(0..1), &[put("users/1/people/")]);
        assert_eq!(load.item_commands(1..2), &[put("users/3/people/")]);
        assert_eq!(load.item_commands(0..2).len(), 2);
    }
}
