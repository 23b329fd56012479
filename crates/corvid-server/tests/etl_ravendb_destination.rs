//! RavenDB 4.1 as a live Raven ETL destination: an in-process Corvid source, tasks defined over
//! HTTP, and a real RavenDB server that must end up holding exactly the expected documents.
//!
//! Runs only when `CORVID_TEST_RAVENDB_URL` is set (for example `http://127.0.0.1:8099`, a server
//! started by `/work/shared/tools/ravendb-ref/start.sh`); otherwise every test prints that it
//! skipped and passes. Each test creates its own database on RavenDB and deletes it at the end,
//! whether the test passed or not.
//!
//!     CORVID_TEST_RAVENDB_URL=http://127.0.0.1:8099 \
//!         cargo test -p corvid-server --test etl_ravendb_destination -- --nocapture
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use corvid_client::{Client, create_database, delete_database};
use serde_json::{Value, json};

use common::live::{Server, client_options as options, eventually_within, send, start, wait_for};

const URL_VARIABLE: &str = "CORVID_TEST_RAVENDB_URL";

fn ravendb_url() -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_owned()),
        _ => None,
    }
}

/// Runs `body` against a fresh database on RavenDB, then deletes that database even when
/// `body` panicked. Prints a skip notice when no RavenDB URL is configured.
async fn with_ravendb<F, Fut>(test: &str, body: F)
where
    F: FnOnce(String, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = ravendb_url() else {
        println!(
            "skipped {test}: set {URL_VARIABLE} (e.g. http://127.0.0.1:8099) to run it against a RavenDB server"
        );
        return;
    };
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let database = format!("corvid_etl_{test}_{millis}");
    create_database(&url, &database, &options())
        .await
        .unwrap_or_else(|error| panic!("creating {database} on {url}: {error}"));
    wait_until_database_answers(&url, &database).await;
    let outcome = tokio::spawn(body(url.clone(), database.clone())).await;
    let deleted = delete_database(&url, &database, &options()).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
    deleted.unwrap_or_else(|error| panic!("deleting {database} on {url}: {error}"));
}

async fn wait_until_database_answers(url: &str, database: &str) {
    eventually_within(
        &format!("{database} to load on RavenDB"),
        Duration::from_secs(30),
        || async {
            send("GET", &format!("{url}/databases/{database}/stats"), None)
                .await
                .0
                == 200
        },
    )
    .await;
}

/// Like `eventually`, and on a timeout shows the source's ETL statistics (errors included).
async fn eventually_etl<F, Fut>(server: &Server, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    if !wait_for(Duration::from_secs(30), check).await {
        let (_, stats) = send(
            "GET",
            &format!("{}/databases/src/etl/stats", server.url),
            None,
        )
        .await;
        panic!("timed out waiting for {what}; Corvid's ETL stats: {stats}");
    }
}

/// Every document of a RavenDB database (`GET /docs` without ids pages through all of them).
async fn all_documents(url: &str, database: &str) -> Vec<Value> {
    let (status, body) = send(
        "GET",
        &format!("{url}/databases/{database}/docs?start=0&pageSize=1024"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["Results"].as_array().cloned().unwrap_or_default()
}

async fn documents_starting_with(url: &str, database: &str, prefix: &str) -> Vec<Value> {
    let (status, body) = send(
        "GET",
        &format!(
            "{url}/databases/{database}/docs?startsWith={}",
            prefix.replace('/', "%2F")
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["Results"].as_array().cloned().unwrap_or_default()
}

fn id_of(document: &Value) -> String {
    document["@metadata"]["@id"].as_str().unwrap().to_owned()
}

fn sorted_ids(documents: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = documents.iter().map(id_of).collect();
    ids.sort();
    ids
}

/// A Corvid source database `src` with a Raven connection string `raven` to `database` on
/// the RavenDB server at `url`.
async fn source(url: &str, database: &str) -> (Server, Client) {
    let server = start().await;
    create_database(&server.url, "src", &options())
        .await
        .unwrap();
    let client = Client::new(std::slice::from_ref(&server.url), "src", options()).unwrap();
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/connection-strings", server.url),
        Some(
            json!({"Type": "Raven", "Name": "raven", "Database": database,
                    "TopologyDiscoveryUrls": [url]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (server, client)
}

async fn add_task(server: &Server, name: &str, collections: &[&str], script: &str) {
    let (status, body) = send(
        "PUT",
        &format!("{}/databases/src/admin/etl", server.url),
        Some(json!({
            "EtlType": "Raven", "Name": name, "ConnectionStringName": "raven", "Disabled": false,
            "Transforms": [{"Name": "script1", "Collections": collections,
                            "ApplyToAllDocuments": false, "Disabled": false, "Script": script}],
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn user(first: &str, age: u32) -> Value {
    json!({"First": first, "Last": "Smith", "Age": age, "@metadata": {"@collection": "Users"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_script_copies_documents_attachments_and_deletes_to_ravendb() {
    with_ravendb("copy", |url, database| async move {
        let (server, src) = source(&url, &database).await;
        let dst = Client::new(std::slice::from_ref(&url), &database, options()).unwrap();
        src.put("users/1", &user("Ann", 30), None).await.unwrap();
        src.put("users/2", &user("Bob", 40), None).await.unwrap();
        src.put(
            "orders/1",
            &json!({"Total": 3, "@metadata": {"@collection": "Orders"}}),
            None,
        )
        .await
        .unwrap();
        src.put_attachment(
            "users/1",
            "photo.png",
            "image/png",
            bytes::Bytes::from_static(b"\x89PNG not really"),
        )
        .await
        .unwrap();
        add_task(&server, "copy-users", &["Users"], "").await;

        eventually_etl(&server, "users/1 and users/2 on RavenDB", || async {
            let found = dst.get_many(&["users/1", "users/2"]).await.unwrap();
            found.iter().all(Option::is_some)
        })
        .await;
        eventually_etl(&server, "users/1's attachment on RavenDB", || async {
            dst.get_attachment("users/1", "photo.png")
                .await
                .unwrap()
                .is_some()
        })
        .await;
        let attachment = dst
            .get_attachment("users/1", "photo.png")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&attachment.bytes[..], b"\x89PNG not really");
        assert_eq!(attachment.content_type, "image/png");
        let ann = dst.get("users/1").await.unwrap().unwrap();
        assert_eq!(ann["First"], "Ann");
        assert_eq!(ann["Age"], 30);
        assert_eq!(ann["@metadata"]["@collection"], "Users");

        // Update, a second attachment, a delete, an attachment delete.
        src.put("users/1", &user("Ann", 31), None).await.unwrap();
        src.put_attachment(
            "users/2",
            "cv.txt",
            "text/plain",
            bytes::Bytes::from_static(b"curriculum"),
        )
        .await
        .unwrap();
        eventually_etl(
            &server,
            "the update of users/1 and users/2's attachment",
            || async {
                dst.get("users/1")
                    .await
                    .unwrap()
                    .is_some_and(|it| it["Age"] == 31)
                    && dst
                        .get_attachment("users/2", "cv.txt")
                        .await
                        .unwrap()
                        .is_some()
            },
        )
        .await;
        src.delete_attachment("users/1", "photo.png").await.unwrap();
        src.delete("users/2", None).await.unwrap();
        eventually_etl(&server, "the deletes", || async {
            dst.get("users/2").await.unwrap().is_none()
                && dst
                    .get_attachment("users/1", "photo.png")
                    .await
                    .unwrap()
                    .is_none()
        })
        .await;

        // Exactly users/1, as it is at the source, with no attachment left; orders/1 never sent.
        let documents = all_documents(&url, &database).await;
        assert_eq!(sorted_ids(&documents), ["users/1"], "{documents:?}");
        let ann = &documents[0];
        assert_eq!(ann["First"], "Ann");
        assert_eq!(ann["Last"], "Smith");
        assert_eq!(ann["Age"], 31);
        assert_eq!(ann["@metadata"]["@collection"], "Users");
        let attachments = ann["@metadata"]["@attachments"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(attachments.is_empty(), "{ann}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_to_people_replaces_and_deletes_prefixed_documents_on_ravendb() {
    with_ravendb("people", |url, database| async move {
        let (server, src) = source(&url, &database).await;
        src.put("users/1", &user("Ann", 30), None).await.unwrap();
        src.put("users/2", &user("Bob", 40), None).await.unwrap();
        src.put("users/3", &user("Kid", 10), None).await.unwrap();
        add_task(
            &server,
            "users-to-people",
            &["Users"],
            "if (this.Age >= 18) {\n\
               loadToPeople({Name: this.First + ' ' + this.Last, Age: this.Age, '@metadata': {'Source': id(this)}});\n\
             }",
        )
        .await;

        let people = |prefix: &'static str| {
            let url = url.clone();
            let database = database.clone();
            async move { documents_starting_with(&url, &database, prefix).await }
        };
        eventually_etl(&server, "one People document per adult user", || async {
            people("users/1/people/").await.len() == 1 && people("users/2/people/").await.len() == 1
        })
        .await;
        let ann = people("users/1/people/").await.remove(0);
        let first_id = id_of(&ann);
        assert_eq!(ann["Name"], "Ann Smith");
        assert_eq!(ann["Age"], 30);
        assert_eq!(ann["@metadata"]["@collection"], "People");
        assert_eq!(ann["@metadata"]["Source"], "users/1");
        assert!(
            first_id.len() > "users/1/people/".len(),
            "RavenDB generates the rest of the id: {first_id}"
        );

        // An update replaces the old version (delete by prefix, then a new identity).
        src.put("users/1", &user("Ann", 31), None).await.unwrap();
        eventually_etl(&server, "the new version of users/1's People document", || async {
            let found = people("users/1/people/").await;
            found.len() == 1 && found[0]["Age"] == 31
        })
        .await;
        let replaced = people("users/1/people/").await.remove(0);
        assert_ne!(id_of(&replaced), first_id, "an update gets a new identity");

        // A source delete removes the People document; a filtered-out user never had one.
        src.delete("users/2", None).await.unwrap();
        eventually_etl(&server, "users/2's People document to go", || async {
            people("users/2/people/").await.is_empty()
        })
        .await;
        let documents = all_documents(&url, &database).await;
        assert_eq!(documents.len(), 1, "{documents:?}");
        assert!(id_of(&documents[0]).starts_with("users/1/people/"));
        assert_eq!(documents[0]["Name"], "Ann Smith");
        assert_eq!(documents[0]["Age"], 31);
        assert_eq!(documents[0]["@metadata"]["@collection"], "People");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_attachments_reach_ravendb() {
    with_ravendb("attachments", |url, database| async move {
        let (server, src) = source(&url, &database).await;
        let dst = Client::new(std::slice::from_ref(&url), &database, options()).unwrap();
        src.put("users/1", &user("Ann", 30), None).await.unwrap();
        src.put_attachment(
            "users/1",
            "photo.png",
            "image/png",
            bytes::Bytes::from_static(b"\x89PNG ann"),
        )
        .await
        .unwrap();
        add_task(
            &server,
            "attachments",
            &["Users"],
            "var u = loadToUsers({Name: this.First});\n\
             u.addAttachment('avatar.png', loadAttachment('photo.png'));\n\
             var p = loadToPeople({Name: this.First});\n\
             p.addAttachment(loadAttachment('photo.png'));",
        )
        .await;

        let people = || {
            let url = url.clone();
            let database = database.clone();
            async move { documents_starting_with(&url, &database, "users/1/people/").await }
        };
        eventually_etl(
            &server,
            "users/1 and its People document on RavenDB",
            || async { dst.get("users/1").await.unwrap().is_some() && people().await.len() == 1 },
        )
        .await;
        let avatar = dst
            .get_attachment("users/1", "avatar.png")
            .await
            .unwrap()
            .expect("the renamed attachment on users/1");
        assert_eq!(&avatar.bytes[..], b"\x89PNG ann");
        assert_eq!(avatar.content_type, "image/png");
        let person_id = id_of(&people().await[0]);
        let photo = dst
            .get_attachment(&person_id, "photo.png")
            .await
            .unwrap()
            .expect("the attachment on the generated People document");
        assert_eq!(&photo.bytes[..], b"\x89PNG ann");

        // Without the source attachment, both destination documents lose theirs.
        src.delete_attachment("users/1", "photo.png").await.unwrap();
        src.put("users/1", &user("Ann", 31), None).await.unwrap();
        eventually_etl(&server, "the attachment-less versions", || async {
            let found = people().await;
            dst.get_attachment("users/1", "avatar.png")
                .await
                .unwrap()
                .is_none()
                && found.len() == 1
                && id_of(&found[0]) != person_id
        })
        .await;
        let documents = all_documents(&url, &database).await;
        assert_eq!(documents.len(), 2, "{documents:?}");
        for document in &documents {
            let attachments = document["@metadata"]["@attachments"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(attachments.is_empty(), "{document}");
        }
    })
    .await;
}
