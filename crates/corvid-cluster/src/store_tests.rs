//! The cluster file against openraft's own storage test suite (log, vote, purge, truncate,
//! membership, applied state, snapshot transfer), plus what the suite does not cover: records
//! applied and read back after the file is reopened, and a reset.

use std::sync::{Arc, RwLock};

use openraft::storage::RaftStateMachine as _;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{Entry, EntryPayload, LogId, StorageError};
use serde_json::json;

use crate::store::{self, LogStore, Records, StateMachine};
use crate::types::{Command, NodeId, NodeInfo, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        let db = store::open_file(&dir.path().join("cluster.redb")).unwrap();
        let machine = StateMachine::load(db.clone(), Arc::default())?;
        Ok((dir, LogStore::new(db), machine))
    }
}

#[test]
fn passes_openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

fn entry(index: u64, command: Command) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(command),
    }
}

#[tokio::test]
async fn applied_records_survive_reopening_and_a_reset_clears_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.redb");
    let records = Arc::new(RwLock::new(Records::default()));
    {
        let db = store::open_file(&path).unwrap();
        let mut machine = StateMachine::load(db, records.clone()).unwrap();
        let outcomes = machine
            .apply([
                entry(
                    1,
                    Command::Put {
                        key: "a".into(),
                        value: json!({"x": 1}),
                    },
                ),
                entry(
                    2,
                    Command::Put {
                        key: "b".into(),
                        value: json!("two"),
                    },
                ),
                entry(3, Command::Delete { key: "a".into() }),
            ])
            .await
            .unwrap();
        assert_eq!(
            outcomes.iter().map(|it| it.index).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }
    let db = store::open_file(&path).unwrap();
    let reopened = Arc::new(RwLock::new(Records::default()));
    let mut machine = StateMachine::load(db.clone(), reopened.clone()).unwrap();
    {
        let records = reopened.read().unwrap();
        assert_eq!(records.get("b"), Some(&json!("two")));
        assert!(!records.contains_key("a"));
    }
    let (last, _) = machine.applied_state().await.unwrap();
    assert_eq!(last.map(|it| it.index), Some(3));

    let node = NodeInfo {
        tag: "B".into(),
        url: "http://127.0.0.1:1".into(),
    };
    store::reset(&db, &node).unwrap();
    assert_eq!(store::stored_node(&db).unwrap(), Some(node));
    let cleared = Arc::new(RwLock::new(Records::default()));
    let mut machine = StateMachine::load(db, cleared.clone()).unwrap();
    assert!(cleared.read().unwrap().is_empty());
    assert_eq!(machine.applied_state().await.unwrap().0, None);
}

/// Entries are stored as MessagePack; a log written by an earlier version (JSON) still reads,
/// and both forms give the same entry.
#[test]
fn log_entries_read_in_both_encodings() {
    let entry: Entry<TypeConfig> = Entry {
        log_id: LogId::new(openraft::CommittedLeaderId::new(3, 1), 7),
        payload: EntryPayload::Normal(Command::Put {
            key: "k".to_owned(),
            value: json!({"Body": "with \"quotes\" and \\ and é"}),
        }),
    };
    let packed = crate::network::encode(&entry).unwrap();
    let json = serde_json::to_vec(&entry).unwrap();
    assert_ne!(packed.first(), Some(&b'{'));
    let from_packed: Entry<TypeConfig> = store::decode_entry(&packed).unwrap();
    let from_json: Entry<TypeConfig> = store::decode_entry(&json).unwrap();
    assert_eq!(from_packed, entry);
    assert_eq!(from_json, entry);
    assert!(store::decode_entry::<Entry<TypeConfig>>(b"\xc1garbage").is_err());
}
