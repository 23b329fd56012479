//! Extraction: the documents and tombstones of a transformation's collections after an etag,
//! merged in etag order, within the batch limits.

use corvid_store::{Document, Etag, ReadError, Snapshot, Tombstone};

/// One change to process. Boxed: a batch's list of items stays small (16 bytes an item), so
/// building it does not make the allocator fetch fresh memory (and the kernel zero it) for
/// every batch.
#[derive(Debug, Clone)]
pub enum Item {
    Document(Box<Document>),
    Tombstone(Box<Tombstone>),
}

impl Item {
    pub fn etag(&self) -> Etag {
        match self {
            Item::Document(it) => it.etag,
            Item::Tombstone(it) => it.etag,
        }
    }

    /// The id of the document changed or deleted.
    pub fn id(&self) -> &str {
        match self {
            Item::Document(it) => &it.id,
            Item::Tombstone(it) => &it.id,
        }
    }

    fn size(&self) -> usize {
        match self {
            Item::Document(it) => it.body.len() + it.metadata.len() + it.id.len(),
            Item::Tombstone(it) => it.id.len() + 64,
        }
    }
}

/// The items of one batch and the etag progress may move to once they are delivered.
#[derive(Debug, Default)]
pub struct Extracted {
    pub items: Vec<Item>,
    /// The highest etag the batch covers: every change of the transformation's collections up
    /// to it is in `items`.
    pub last_etag: Etag,
}

/// Reads up to `max_items` changes (and about `max_bytes`) after `after` and up to `until`,
/// in etag order.
///
/// Each source (documents or tombstones of one collection) is read up to the limit; when a
/// source had more, the batch stops at that source's last etag, so no change below the batch's
/// last etag is ever left behind.
pub fn extract(
    snapshot: &Snapshot,
    collections: Option<&[String]>,
    after: Etag,
    until: Etag,
    max_items: usize,
    max_bytes: usize,
) -> Result<Extracted, ReadError> {
    let mut items: Vec<Item> = Vec::new();
    let mut cutoff = Etag::MAX;
    let sources: Vec<Option<&str>> = match collections {
        Some(names) => names.iter().map(|it| Some(it.as_str())).collect(),
        None => vec![None],
    };
    for source in sources {
        let start = items.len();
        for (taken, doc) in snapshot.documents_after(source, after)?.enumerate() {
            let doc = doc?;
            if doc.etag > until {
                break;
            }
            if taken == max_items {
                cutoff = cutoff.min(items[start..].last().map_or(after, Item::etag));
                break;
            }
            items.push(Item::Document(Box::new(doc)));
        }
        let start = items.len();
        for (taken, tombstone) in snapshot.tombstones_after(source, after)?.enumerate() {
            let tombstone = tombstone?;
            if tombstone.etag > until {
                break;
            }
            if taken == max_items {
                cutoff = cutoff.min(items[start..].last().map_or(after, Item::etag));
                break;
            }
            items.push(Item::Tombstone(Box::new(tombstone)));
        }
    }
    items.sort_by_key(Item::etag);
    items.retain(|it| it.etag() <= cutoff);
    let mut bytes = 0;
    let mut keep = 0;
    for item in &items {
        if keep == max_items || (keep > 0 && bytes >= max_bytes) {
            break;
        }
        bytes += item.size();
        keep += 1;
    }
    items.truncate(keep);
    let last_etag = items.last().map_or(after, Item::etag);
    Ok(Extracted { items, last_etag })
}

#[cfg(test)]
mod tests {
    use corvid_store::{PutDocument, Storage, WriteOp};

    use super::*;

    fn put(collection: &str, id: &str) -> WriteOp {
        let doc = serde_json::json!({"@metadata": {"@collection": collection}});
        WriteOp::Put(PutDocument::new(id, doc.as_object().unwrap().clone(), None).unwrap())
    }

    #[test]
    fn batches_never_leave_a_change_behind() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let db = storage.create_database("db").unwrap();
        let mut expected = Vec::new();
        for idx in 0..40 {
            let collection = if idx % 3 == 0 { "Orders" } else { "Users" };
            db.write(vec![put(collection, &format!("{collection}/{idx}"))])
                .unwrap();
            if idx % 7 == 0 {
                db.write(vec![WriteOp::Delete {
                    id: format!("{collection}/{idx}"),
                    expected_change_vector: None,
                }])
                .unwrap();
            }
        }
        db.write(vec![put("Other", "other/1")]).unwrap();
        let snapshot = db.snapshot().unwrap();
        for item in snapshot.documents_after(Some("Users"), 0).unwrap() {
            expected.push(item.unwrap().etag);
        }
        for item in snapshot.documents_after(Some("Orders"), 0).unwrap() {
            expected.push(item.unwrap().etag);
        }
        for source in ["Users", "Orders"] {
            for item in snapshot.tombstones_after(Some(source), 0).unwrap() {
                expected.push(item.unwrap().etag);
            }
        }
        expected.sort_unstable();
        let collections = vec!["Users".to_owned(), "Orders".to_owned()];
        for max_items in [1, 2, 3, 5, 8, 100] {
            let mut seen = Vec::new();
            let mut after = 0;
            loop {
                let batch = extract(
                    &snapshot,
                    Some(&collections),
                    after,
                    Etag::MAX,
                    max_items,
                    usize::MAX,
                )
                .unwrap();
                if batch.items.is_empty() {
                    break;
                }
                assert!(batch.items.len() <= max_items);
                assert!(batch.last_etag > after);
                seen.extend(batch.items.iter().map(Item::etag));
                after = batch.last_etag;
            }
            assert_eq!(seen, expected, "max_items {max_items}");
        }
        let all = extract(&snapshot, None, 0, Etag::MAX, 1000, usize::MAX).unwrap();
        assert_eq!(all.items.len(), expected.len() + 1, "every collection");
        // A run's bound: nothing after `until`, and everything up to it.
        let until = expected[expected.len() / 2];
        let bounded = extract(&snapshot, Some(&collections), 0, until, 1000, usize::MAX).unwrap();
        let etags: Vec<Etag> = bounded.items.iter().map(Item::etag).collect();
        let wanted: Vec<Etag> = expected.iter().copied().filter(|it| *it <= until).collect();
        assert_eq!(etags, wanted);
        assert_eq!(bounded.last_etag, until);
    }
}
