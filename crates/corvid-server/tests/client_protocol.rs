//! Runs `corvid-client` against a real RavenDB-protocol server: by default an in-process Corvid
//! server on a loopback port; with `CORVID_TEST_RAVENDB_URL=http://127.0.0.1:8098` the same tests
//! run against that server instead (a real RavenDB 4.1 from `shared/tools/ravendb-ref`), which is
//! how the client and these expectations were checked against RavenDB itself.
//! Each test creates its own database and deletes it at the end.

// Helpers outside `#[test]` functions are test code too; a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use corvid_client::{
    Client, ClientError, ClientOptions, Command, NodeFailureCause, create_database, delete_database,
};
use corvid_server::{AppState, ServerOptions};
use corvid_store::Storage;
use serde_json::{Value, json};

const URL_ENV: &str = "CORVID_TEST_RAVENDB_URL";
/// Nothing listens on port 1, so connecting there fails at once.
const DEAD_URL: &str = "http://127.0.0.1:1";

fn server_url(_test_name: &str) -> Option<String> {
    match std::env::var(URL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => Some(local_server().to_owned()),
    }
}

/// Starts one Corvid server for this test binary, on its own runtime thread, and returns its URL.
fn local_server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let storage = Arc::new(Storage::open(dir.path()).unwrap());
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}", listener.local_addr().unwrap());
                sender.send(url).unwrap();
                let etl = corvid_etl::EtlManager::new(corvid_etl::EtlOptions::default());
                let state = AppState::new(storage, etl, ServerOptions::default());
                corvid_server::serve(listener, state, std::future::pending())
                    .await
                    .unwrap();
                drop(dir);
            });
        });
        receiver.recv().unwrap()
    })
}

fn options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    }
}

/// A database name unique to this test run.
fn database_name(test_name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|it| it.subsec_nanos())
        .unwrap_or_default();
    format!(
        "corvid-client-{test_name}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a fresh database and returns a client for it.
async fn fresh_database(url: &str, test_name: &str) -> (String, Client) {
    let database = database_name(test_name);
    create_database(url, &database, &options()).await.unwrap();
    let client = Client::new(&[url.to_owned()], &database, options()).unwrap();
    (database, client)
}

fn user(name: &str) -> Value {
    json!({"Name": name, "@metadata": {"@collection": "Users"}})
}

fn metadata_str<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc["@metadata"][key].as_str().unwrap()
}

#[tokio::test]
async fn documents_put_get_get_many_and_delete() {
    let Some(url) = server_url("documents_put_get_get_many_and_delete") else {
        return;
    };
    let (database, client) = fresh_database(&url, "docs").await;

    // Ids with a slash, a space, reserved characters and non-ASCII text.
    let ids = [
        "users/1",
        "users/with space",
        "users/a&b=c?d#e+f",
        "users/日本-é",
    ];
    let mut change_vectors = Vec::new();
    for id in ids {
        let put = client.put(id, &user(id), None).await.unwrap();
        assert_eq!(put.id, id);
        assert!(!put.change_vector.is_empty());
        change_vectors.push(put.change_vector);
    }
    let nodes = client.nodes();
    assert_eq!(nodes.len(), 1, "topology was discovered: {nodes:?}");
    assert_eq!(nodes[0].database, database);

    for id in ids {
        let doc = client.get(id).await.unwrap().unwrap();
        assert_eq!(doc["Name"], id);
        assert_eq!(metadata_str(&doc, "@id"), id);
        assert_eq!(metadata_str(&doc, "@collection"), "Users");
    }
    assert_eq!(client.get("users/missing").await.unwrap(), None);

    // Ids are case-insensitive; results come back in request order, missing ones as None.
    let many = client
        .get_many(&["USERS/1", "users/missing", "users/日本-é", "users/1"])
        .await
        .unwrap();
    let names: Vec<Option<&str>> = many
        .iter()
        .map(|it| it.as_ref().and_then(|doc| doc["Name"].as_str()))
        .collect();
    assert_eq!(
        names,
        [Some("users/1"), None, Some("users/日本-é"), Some("users/1")]
    );
    assert_eq!(
        client.get_many(&["users/x", "users/y"]).await.unwrap(),
        [None, None]
    );
    assert_eq!(client.get_many(&["users/x"]).await.unwrap(), [None]);

    // A long id list goes through POST /docs.
    let long_ids: Vec<String> = (0..80).map(|it| format!("users/long-id-{it:04}")).collect();
    let mut long_id_refs: Vec<&str> = long_ids.iter().map(String::as_str).collect();
    long_id_refs.push("users/1");
    let many = client.get_many(&long_id_refs).await.unwrap();
    assert_eq!(many.len(), 81);
    assert!(many[..80].iter().all(Option::is_none));
    assert_eq!(many[80].as_ref().unwrap()["Name"], "users/1");

    // Optimistic concurrency on put and delete.
    let stale = client
        .put(
            "users/1",
            &user("again"),
            Some("A:1-AAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await;
    assert!(
        matches!(stale, Err(ClientError::Concurrency { .. })),
        "{stale:?}"
    );
    let updated = client
        .put("users/1", &user("again"), Some(&change_vectors[0]))
        .await
        .unwrap();
    let must_not_exist = client.put("users/1", &user("x"), Some("")).await;
    assert!(
        matches!(must_not_exist, Err(ClientError::Concurrency { .. })),
        "{must_not_exist:?}"
    );
    let stale_delete = client.delete("users/1", Some(&change_vectors[0])).await;
    assert!(
        matches!(stale_delete, Err(ClientError::Concurrency { .. })),
        "{stale_delete:?}"
    );
    client
        .delete("users/1", Some(&updated.change_vector))
        .await
        .unwrap();
    assert_eq!(client.get("users/1").await.unwrap(), None);
    client.delete("users/1", None).await.unwrap();

    delete_database(&url, &database, &options()).await.unwrap();
}

#[tokio::test]
async fn bulk_docs_with_multipart_attachments_and_delete_prefixed() {
    let Some(url) = server_url("bulk_docs_with_multipart_attachments_and_delete_prefixed") else {
        return;
    };
    let (database, client) = fresh_database(&url, "bulk").await;

    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let commands = vec![
        Command::Put {
            id: "orders/1".to_owned(),
            document: json!({"Total": 10, "@metadata": {"@collection": "Orders"}}),
            change_vector: None,
        },
        Command::Put {
            id: "orders/2".to_owned(),
            document: json!({"Total": 20, "@metadata": {"@collection": "Orders"}}),
            change_vector: None,
        },
        Command::Put {
            id: "temp/1".to_owned(),
            document: json!({"x": 1}),
            change_vector: None,
        },
        Command::Put {
            id: "temp/2".to_owned(),
            document: json!({"x": 2}),
            change_vector: None,
        },
        Command::AttachmentPut {
            id: "orders/1".to_owned(),
            name: "invoice.bin".to_owned(),
            content_type: "application/octet-stream".to_owned(),
            bytes: Bytes::from(binary.clone()),
        },
        Command::AttachmentPut {
            id: "orders/1".to_owned(),
            name: "note with space.txt".to_owned(),
            content_type: "text/plain".to_owned(),
            bytes: Bytes::from_static(b"hello note"),
        },
    ];
    let results = client.bulk_docs(&commands).await.unwrap();
    let types: Vec<&str> = results
        .iter()
        .map(|it| it["Type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["PUT", "PUT", "PUT", "PUT", "AttachmentPUT", "AttachmentPUT"]
    );
    assert_eq!(results[0]["@id"], "orders/1");
    assert_eq!(results[4]["Name"], "invoice.bin");
    assert_eq!(results[4]["Size"], 70_000);

    let invoice = client
        .get_attachment("orders/1", "invoice.bin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(invoice.bytes, binary);
    assert_eq!(invoice.content_type, "application/octet-stream");
    assert_eq!(invoice.hash, results[4]["Hash"].as_str().unwrap());
    assert_eq!(
        invoice.change_vector,
        results[4]["ChangeVector"].as_str().unwrap()
    );
    let note = client
        .get_attachment("orders/1", "note with space.txt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note.bytes, &b"hello note"[..]);
    assert_eq!(note.content_type, "text/plain");

    // Delete by prefix, delete one attachment, and conditional delete in one batch.
    let order_2_cv = results[1]["@change-vector"].as_str().unwrap().to_owned();
    let commands = vec![
        Command::DeletePrefixed {
            id_prefix: "temp/".to_owned(),
        },
        Command::AttachmentDelete {
            id: "orders/1".to_owned(),
            name: "note with space.txt".to_owned(),
        },
        Command::Delete {
            id: "orders/2".to_owned(),
            change_vector: Some(order_2_cv),
        },
    ];
    let results = client.bulk_docs(&commands).await.unwrap();
    let types: Vec<&str> = results
        .iter()
        .map(|it| it["Type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["DELETE", "AttachmentDELETE", "DELETE"]);
    assert_eq!(
        client
            .get_many(&["temp/1", "temp/2", "orders/2"])
            .await
            .unwrap(),
        [None, None, None]
    );
    assert!(
        client
            .get_attachment("orders/1", "note with space.txt")
            .await
            .unwrap()
            .is_none()
    );
    let order = client.get("orders/1").await.unwrap().unwrap();
    let attachment_names: Vec<&str> = order["@metadata"]["@attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["Name"].as_str().unwrap())
        .collect();
    assert_eq!(attachment_names, ["invoice.bin"]);

    // A failing command rolls back the whole batch and maps to a concurrency error.
    let commands = vec![
        Command::Put {
            id: "orders/3".to_owned(),
            document: json!({}),
            change_vector: None,
        },
        Command::Put {
            id: "orders/1".to_owned(),
            document: json!({}),
            change_vector: Some("A:1-AAAAAAAAAAAAAAAAAAAAAA".to_owned()),
        },
    ];
    let conflict = client.bulk_docs(&commands).await;
    assert!(
        matches!(conflict, Err(ClientError::Concurrency { .. })),
        "{conflict:?}"
    );
    assert_eq!(client.get("orders/3").await.unwrap(), None);

    // A pre-serialized body.
    let raw = br#"{"Commands":[{"Id":"raw/1","ChangeVector":null,"Type":"PUT","Document":{"Raw":true}}]}"#;
    let results = client.bulk_docs_raw(Bytes::from_static(raw)).await.unwrap();
    assert_eq!(results[0]["@id"], "raw/1");
    assert_eq!(client.get("raw/1").await.unwrap().unwrap()["Raw"], true);

    delete_database(&url, &database, &options()).await.unwrap();
}

#[tokio::test]
async fn attachments_put_get_and_delete() {
    let Some(url) = server_url("attachments_put_get_and_delete") else {
        return;
    };
    let (database, client) = fresh_database(&url, "attachments").await;
    client.put("users/1", &user("a"), None).await.unwrap();

    let details = client
        .put_attachment(
            "users/1",
            "photo é+1.png",
            "image/png",
            Bytes::from_static(b"\x89PNG\r\n"),
        )
        .await
        .unwrap();
    assert_eq!(details.name, "photo é+1.png");
    assert_eq!(details.document_id, "users/1");
    assert_eq!(details.content_type, "image/png");
    assert_eq!(details.size, 6);

    let attachment = client
        .get_attachment("users/1", "photo é+1.png")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attachment.bytes, &b"\x89PNG\r\n"[..]);
    assert_eq!(attachment.content_type, "image/png");
    assert_eq!(attachment.hash, details.hash);
    assert_eq!(attachment.change_vector, details.change_vector);

    assert!(
        client
            .get_attachment("users/1", "missing")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        client
            .get_attachment("users/missing", "photo é+1.png")
            .await
            .unwrap()
            .is_none()
    );
    let on_missing_doc = client
        .put_attachment("users/missing", "a", "text/plain", Bytes::from_static(b"x"))
        .await;
    // RavenDB 4.1 answers 500 InvalidOperationException; Corvid answers 404
    // DocumentDoesNotExistException. Both must surface as an error.
    assert!(
        matches!(
            on_missing_doc,
            Err(ClientError::Server { .. } | ClientError::NotFound { .. })
        ),
        "{on_missing_doc:?}"
    );

    client
        .delete_attachment("users/1", "photo é+1.png")
        .await
        .unwrap();
    assert!(
        client
            .get_attachment("users/1", "photo é+1.png")
            .await
            .unwrap()
            .is_none()
    );
    client
        .delete_attachment("users/1", "photo é+1.png")
        .await
        .unwrap();

    delete_database(&url, &database, &options()).await.unwrap();
}

#[tokio::test]
async fn fails_over_from_a_dead_node_and_prefers_the_live_one() {
    let Some(url) = server_url("fails_over_from_a_dead_node_and_prefers_the_live_one") else {
        return;
    };
    let (database, seed_client) = fresh_database(&url, "failover").await;
    seed_client.put("users/1", &user("a"), None).await.unwrap();
    let urls = [DEAD_URL.to_owned(), url.clone()];

    // With topology discovery, the dead URL fails the topology fetch and the live node's
    // topology replaces the configured list.
    let client = Client::new(&urls, &database, options()).unwrap();
    assert!(client.get("users/1").await.unwrap().is_some());
    let nodes = client.nodes();
    assert_eq!(nodes.len(), 1);
    assert_ne!(nodes[0].url, DEAD_URL);
    assert!(nodes[0].cluster_tag.is_some());

    // Without it, the request itself fails over from the dead node to the live one, which then
    // stays preferred.
    let static_options = ClientOptions {
        disable_topology_updates: true,
        ..options()
    };
    let client = Client::new(&urls, &database, static_options.clone()).unwrap();
    assert_eq!(client.preferred_node().unwrap().url, DEAD_URL);
    assert!(client.get("users/1").await.unwrap().is_some());
    assert_eq!(
        client.preferred_node().unwrap().url,
        url.trim_end_matches('/')
    );
    client.put("users/2", &user("b"), None).await.unwrap();
    assert_eq!(client.nodes().len(), 2);

    // Every node dead: the error lists each node once.
    let dead_urls = [DEAD_URL.to_owned(), "http://127.0.0.1:2".to_owned()];
    let client = Client::new(&dead_urls, &database, static_options).unwrap();
    let all_failed = client.get("users/1").await;
    let Err(ClientError::AllNodesFailed { failures }) = all_failed else {
        panic!("expected all nodes to fail, got {all_failed:?}");
    };
    assert_eq!(failures.len(), 2);
    assert!(
        failures
            .iter()
            .all(|it| matches!(it.cause, NodeFailureCause::Transport(_)))
    );

    // Same with discovery on: the topology fetch fails too, and the configured URLs are used.
    let client = Client::new(&dead_urls, &database, options()).unwrap();
    let all_failed = client.get("users/1").await;
    assert!(
        matches!(&all_failed, Err(ClientError::AllNodesFailed { failures }) if failures.len() == 2),
        "{all_failed:?}"
    );
    assert!(matches!(
        client.refresh_topology().await,
        Err(ClientError::AllNodesFailed { .. })
    ));

    // A node that does not answer in time is a node failure (timeout), not a plain error.
    let hasty_options = ClientOptions {
        request_timeout: Duration::from_millis(1),
        disable_topology_updates: true,
        ..options()
    };
    let client = Client::new(std::slice::from_ref(&url), &database, hasty_options).unwrap();
    let mut slow_body = br#"{"Commands":["#.to_vec();
    slow_body.resize(slow_body.len() + (16 << 20), b' ');
    slow_body.extend_from_slice(b"]}");
    let timed_out = client.bulk_docs_raw(Bytes::from(slow_body)).await;
    assert!(
        matches!(&timed_out, Err(ClientError::AllNodesFailed { failures })
            if matches!(&failures[..], [failure] if matches!(&failure.cause, NodeFailureCause::Transport(error) if error.is_timeout()))),
        "{timed_out:?}"
    );

    delete_database(&url, &database, &options()).await.unwrap();
}

#[tokio::test]
async fn missing_and_duplicate_databases_are_reported() {
    let Some(url) = server_url("missing_and_duplicate_databases_are_reported") else {
        return;
    };
    let missing = database_name("missing");
    let client = Client::new(std::slice::from_ref(&url), &missing, options()).unwrap();
    let res = client.get("users/1").await;
    assert!(
        matches!(&res, Err(ClientError::DatabaseDoesNotExist { database }) if *database == missing),
        "{res:?}"
    );
    let res = client.put("users/1", &user("a"), None).await;
    assert!(
        matches!(&res, Err(ClientError::DatabaseDoesNotExist { .. })),
        "{res:?}"
    );
    // The dead node is skipped, but the missing database is not retried elsewhere.
    let client = Client::new(&[DEAD_URL.to_owned(), url.clone()], &missing, options()).unwrap();
    let res = client.get("users/1").await;
    assert!(
        matches!(&res, Err(ClientError::DatabaseDoesNotExist { .. })),
        "{res:?}"
    );

    let (database, _client) = fresh_database(&url, "dup").await;
    let again = create_database(&url, &database, &options()).await;
    assert!(
        matches!(&again, Err(ClientError::DatabaseAlreadyExists { database: name }) if *name == database),
        "{again:?}"
    );
    delete_database(&url, &database, &options()).await.unwrap();
}
