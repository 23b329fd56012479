//! What one changes connection watches, and whether a change is for it.

use std::collections::HashSet;

use crate::changes::hub::DocumentChangeEvent;

/// How many document, collection and prefix watches one connection may hold, so a client
/// cannot grow a connection's memory without end.
pub(crate) const MAX_WATCHES_PER_CONNECTION: usize = 10_000;

/// One subject a client can watch (`watch-…`) or stop watching (`unwatch-…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watch {
    AllDocuments,
    Document(String),
    Collection(String),
    Prefix(String),
    /// Indexes and operations are confirmed: Corvid has no index changes to send, and
    /// operations are awaited through `/operations/state`.
    Indexes,
    Operations,
}

/// The document watches of one connection; ids, collections and prefixes compare
/// case-insensitively, as RavenDB's do.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    all_documents: bool,
    documents: HashSet<String>,
    collections: HashSet<String>,
    prefixes: HashSet<String>,
}

/// A watch refused because the connection already holds the most it may.
#[derive(Debug, thiserror::Error)]
#[error("a changes connection may hold at most {MAX_WATCHES_PER_CONNECTION} watches")]
pub(crate) struct TooManyWatches;

impl Watches {
    pub fn watch(&mut self, watch: Watch) -> Result<(), TooManyWatches> {
        let n_watches = self.documents.len() + self.collections.len() + self.prefixes.len();
        let (subjects, subject) = match watch {
            Watch::AllDocuments => {
                self.all_documents = true;
                return Ok(());
            }
            Watch::Indexes | Watch::Operations => return Ok(()),
            Watch::Document(id) => (&mut self.documents, id),
            Watch::Collection(name) => (&mut self.collections, name),
            Watch::Prefix(prefix) => (&mut self.prefixes, prefix),
        };
        if n_watches >= MAX_WATCHES_PER_CONNECTION {
            return Err(TooManyWatches);
        }
        subjects.insert(subject.to_lowercase());
        Ok(())
    }

    pub fn unwatch(&mut self, watch: &Watch) {
        match watch {
            Watch::AllDocuments => self.all_documents = false,
            Watch::Indexes | Watch::Operations => {}
            Watch::Document(id) => {
                self.documents.remove(&id.to_lowercase());
            }
            Watch::Collection(name) => {
                self.collections.remove(&name.to_lowercase());
            }
            Watch::Prefix(prefix) => {
                self.prefixes.remove(&prefix.to_lowercase());
            }
        }
    }

    /// Whether the connection wants this change.
    pub fn matches(&self, change: &DocumentChangeEvent) -> bool {
        self.all_documents
            || self.documents.contains(&change.id_key)
            || self.collections.contains(&change.collection_key)
            || self
                .prefixes
                .iter()
                .any(|prefix| change.id_key.starts_with(prefix.as_str()))
    }

    /// Whether any document change could match, so an idle connection skips the batches.
    pub fn is_empty(&self) -> bool {
        !self.all_documents
            && self.documents.is_empty()
            && self.collections.is_empty()
            && self.prefixes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, collection: &str) -> DocumentChangeEvent {
        DocumentChangeEvent {
            id_key: id.to_lowercase(),
            collection_key: collection.to_lowercase(),
            message_json: String::new(),
        }
    }

    #[test]
    fn matches_each_watch_kind_case_insensitively() {
        let mut watches = Watches::default();
        assert!(watches.is_empty());
        assert!(!watches.matches(&change("users/1", "Users")));
        watches
            .watch(Watch::Document("USERS/1".into()))
            .expect("room");
        assert!(watches.matches(&change("users/1", "Users")));
        assert!(!watches.matches(&change("users/2", "Users")));
        watches
            .watch(Watch::Collection("orders".into()))
            .expect("room");
        assert!(watches.matches(&change("orders/7", "Orders")));
        watches.watch(Watch::Prefix("Cats/".into())).expect("room");
        assert!(watches.matches(&change("cats/9", "Animals")));
        assert!(!watches.matches(&change("dogs/9", "Animals")));
        watches.unwatch(&Watch::Prefix("CATS/".into()));
        assert!(!watches.matches(&change("cats/9", "Animals")));
        watches.watch(Watch::AllDocuments).expect("room");
        assert!(watches.matches(&change("dogs/9", "Animals")));
        watches.unwatch(&Watch::AllDocuments);
        assert!(!watches.matches(&change("dogs/9", "Animals")));
    }

    #[test]
    fn refuses_watches_beyond_the_limit() {
        let mut watches = Watches::default();
        for idx in 0..MAX_WATCHES_PER_CONNECTION {
            watches
                .watch(Watch::Document(format!("users/{idx}")))
                .expect("under the limit");
        }
        assert!(watches.watch(Watch::Document("one/more".into())).is_err());
        // Watching everything needs no room.
        assert!(watches.watch(Watch::AllDocuments).is_ok());
    }
}
