//! Replicated databases on a cluster of three real `corvid serve` processes: a database with
//! replication factor 3 keeps every acknowledged write through the loss of any node (kill -9),
//! a node that returns catches up, every member holds the same documents with the same change
//! vectors, and a Raven ETL task moves with the database group's leader and resumes where
//! the last delivered batch ended, with nothing missing, stale or duplicated.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../corvid-etl/tests/common/mod.rs"]
mod services;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::{Node, call, database_nodes, form_three, index_of, people};
use common::{options, postgres, send, start};
use corvid_client::{Client, Command as BatchCommand, create_database};
use serde_json::{Value, json};

async fn create_replicated(node: &Node, name: &str) {
    let (status, body) = call(
        "PUT",
        &format!(
            "{}/admin/databases?name={name}&replicationFactor=3",
            node.url()
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["NodesAddedTo"].as_array().unwrap().len(), 3, "{body}");
}

/// Every document of `database` on `node`: id → (change vector, body without metadata).
async fn contents(node: &Node, database: &str) -> BTreeMap<String, (String, Value)> {
    let (status, body) = call(
        "GET",
        &format!("{}/databases/{database}/docs?pageSize=1000000", node.url()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| {
            let mut doc = doc.clone();
            let metadata = doc.as_object_mut().unwrap().remove("@metadata").unwrap();
            (
                metadata["@id"].as_str().unwrap().to_owned(),
                (metadata["@change-vector"].as_str().unwrap().to_owned(), doc),
            )
        })
        .collect()
}

/// Puts documents through a client given every node's URL; a batch refused while the group
/// elects a leader (every node tried once) is sent again, as an application would. Returns
/// the ids acknowledged.
async fn put_all(client: &Client, ids: &[String], version: u64) -> Vec<String> {
    let mut acknowledged = Vec::new();
    for chunk in ids.chunks(100) {
        let commands: Vec<BatchCommand> = chunk
            .iter()
            .map(|id| BatchCommand::Put {
                id: id.clone(),
                document: json!({"Name": id, "Version": version, "@metadata": {"@collection": "Users"}}),
                change_vector: None,
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.bulk_docs(&commands).await {
                Ok(_) => break,
                Err(error) => {
                    assert!(Instant::now() < deadline, "writes stopped: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        acknowledged.extend(chunk.iter().cloned());
    }
    acknowledged
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Waits until the members in `nodes` hold the same documents, with `expected` documents.
async fn wait_identical(nodes: &[&Node], database: &str, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut views = Vec::new();
        for node in nodes {
            views.push(contents(node, database).await);
        }
        if views[0].len() == expected && views.iter().all(|it| *it == views[0]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the members differ: {:?}",
            views.iter().map(BTreeMap::len).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn urls(nodes: &[Node]) -> Vec<String> {
    nodes.iter().map(Node::url).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_the_loss_of_any_node() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = form_three(root.path()).await;
    // Created through a node that is not the cluster's leader.
    create_replicated(&nodes[1], "shop").await;
    for node in &nodes {
        wait_for(
            "every member to list the database",
            Duration::from_secs(10),
            async || database_nodes(node, "shop").await.len() == 3,
        )
        .await;
    }
    let client = Client::new(&urls(&nodes), "shop", options()).unwrap();
    let mut written = Vec::new();
    let ids: Vec<String> = (0..300).map(|it| format!("users/{it}")).collect();
    written.extend(put_all(&client, &ids, 1).await);
    let all: Vec<&Node> = nodes.iter().collect();
    wait_identical(&all, "shop", written.len()).await;

    // Writes sent to each node (two of them followers, which forward to the leader).
    for node in &nodes {
        let (status, body) = call(
            "PUT",
            &format!("{}/databases/shop/docs?id=direct/{}", node.url(), node.tag),
        )
        .await;
        assert_eq!(status, 400, "a put without a body is refused: {body}");
        let put = send(
            "PUT",
            &format!("{}/databases/shop/docs?id=direct/{}", node.url(), node.tag),
            json!({"Node": node.tag, "@metadata": {"@collection": "Direct"}}),
        )
        .await;
        assert!(put["ChangeVector"].is_string(), "{put}");
        written.push(format!("direct/{}", node.tag));
    }

    // Kill the group's leader, then (once it is back) a follower: writes go on through the
    // others each time, and the killed node catches up when it returns.
    for round in 0..2u64 {
        let listed = database_nodes(&nodes[0], "shop").await;
        let victim_tag = if round == 0 { &listed[0] } else { &listed[1] };
        let victim = index_of(&nodes, victim_tag);
        nodes[victim].kill();
        let ids: Vec<String> = (0..200).map(|it| format!("users/{round}-{it}")).collect();
        written.extend(put_all(&client, &ids, 2 + round).await);
        let survivors: Vec<&Node> = nodes.iter().filter(|it| it.server.is_some()).collect();
        wait_identical(&survivors, "shop", written.len()).await;
        nodes[victim].start();
        let all: Vec<&Node> = nodes.iter().collect();
        wait_identical(&all, "shop", written.len()).await;
    }
    let held = contents(&nodes[2], "shop").await;
    for id in &written {
        assert!(held.contains_key(id), "{id} was acknowledged and is lost");
    }

    // Deleted through one node: gone from every member.
    let (status, body) = call(
        "DELETE",
        &format!("{}/admin/databases?name=shop", nodes[2].url()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for node in &nodes {
        wait_for(
            "the database to be gone",
            Duration::from_secs(10),
            async || {
                call("GET", &format!("{}/databases/shop/stats", node.url()))
                    .await
                    .0
                    != 200
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_replicated_database_requests_change_nothing() {
    let root = tempfile::tempdir().unwrap();
    let nodes = form_three(root.path()).await;
    let a = &nodes[0];
    for (query, status, expected) in [
        (
            "name=big&replicationFactor=4",
            400,
            "more nodes than the cluster has (3)",
        ),
        ("name=none&replicationFactor=0", 400, "at least 1"),
        ("name=word&replicationFactor=three", 400, "at least 1"),
        ("name=bad%2Fname&replicationFactor=3", 400, "name"),
    ] {
        let (got, body) = call("PUT", &format!("{}/admin/databases?{query}", a.url())).await;
        assert_eq!(got, status, "{query}: {body}");
        let message = body["Message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{query}: {message:?}");
    }
    // A database of B alone named `mine`: a replicated `mine` would have no place on B.
    let (status, body) = call(
        "PUT",
        &format!("{}/admin/databases?name=mine", nodes[1].url()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        "PUT",
        &format!("{}/admin/databases?name=mine&replicationFactor=3", a.url()),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("node `B` already holds"),
        "{body}"
    );
    let (status, body) = call(
        "DELETE",
        &format!("{}/admin/databases?name=mine", nodes[1].url()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    create_replicated(&nodes[2], "once").await;
    for node in &nodes {
        wait_for(
            "every member to have a copy",
            Duration::from_secs(10),
            async || {
                call("GET", &format!("{}/databases/once/stats", node.url()))
                    .await
                    .0
                    == 200
            },
        )
        .await;
    }
    let (status, body) = call(
        "PUT",
        &format!(
            "{}/admin/databases?name=ONCE&replicationFactor=3",
            nodes[1].url()
        ),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    for node in &nodes {
        let (status, body) = call("GET", &format!("{}/databases", node.url())).await;
        assert_eq!(status, 200);
        let names: Vec<&str> = body["Databases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|it| it["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["once"], "node {}", node.tag);
    }
    // A member of a replicated database cannot leave the cluster while it holds it.
    let (status, body) = call(
        "DELETE",
        &format!("{}/admin/cluster/node?nodeTag=C", a.url()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("member of replicated database(s) once"),
        "{body}"
    );
    assert_eq!(database_nodes(a, "once").await.len(), 3);
}

/// The node running the task: the one every node lists first for the database (its group's
/// leader) and `/tasks` names as responsible, asked through another node.
async fn running_node(nodes: &[Node]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut firsts = Vec::new();
        for node in nodes {
            firsts.push(database_nodes(node, "src").await[0].clone());
        }
        let asked = &nodes[(index_of(nodes, &firsts[0]) + 1) % nodes.len()];
        let (_, tasks) = call("GET", &format!("{}/databases/src/tasks", asked.url())).await;
        let responsible = &tasks["OngoingTasksList"][0]["ResponsibleNode"]["NodeTag"];
        if firsts.iter().all(|it| *it == firsts[0]) && *responsible == firsts[0] {
            return firsts[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the nodes do not agree on the node running the task: {firsts:?}, {tasks}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn people_count(destination: &str) -> u64 {
    let body = send(
        "GET",
        &format!("{destination}/databases/dst/collections/stats"),
        Value::Null,
    )
    .await;
    body["Collections"]["People"].as_u64().unwrap_or(0)
}

/// How many source documents the ETL tasks run over.
const TOTAL: usize = 20_000;

/// Three kill points between 1,000 and 17,000 delivered items, drawn from the clock (printed,
/// so a failing run can be told apart).
fn kill_points() -> Vec<u64> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut state = seed | 1;
    let mut points: Vec<u64> = (0..3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            1_000 + state % 16_000
        })
        .collect();
    points.sort_unstable();
    eprintln!("kill points (seed {seed}): {points:?}");
    points
}

/// Starts a cluster of three with the empty replicated database `src`; returns the nodes and
/// a client with every node's URL.
async fn cluster_with_source(root: &std::path::Path) -> (Vec<Node>, Client) {
    let nodes = form_three(root).await;
    create_replicated(&nodes[0], "src").await;
    let client = Client::new(&urls(&nodes), "src", options()).unwrap();
    (nodes, client)
}

/// Writes `TOTAL` users (version 1, in id order) while the task runs, and kills the node
/// running the task (the group's leader) at each of `points` items delivered (`delivered`
/// counts them), restarting it after; between kills, updates 300 users and deletes one that
/// exist already, so stale or lost versions would show. Waits until the task has caught up
/// (every live user delivered and progress complete). Returns each live id's final version.
async fn kill_the_running_node(
    nodes: &mut [Node],
    client: &Client,
    points: &[u64],
    mut delivered: impl AsyncFnMut() -> u64,
) -> BTreeMap<String, u64> {
    let writer = {
        let client = client.clone();
        tokio::spawn(async move {
            let ids: Vec<String> = (0..TOTAL).map(|it| format!("users/{it}")).collect();
            put_all(&client, &ids, 1).await
        })
    };
    let mut expected: BTreeMap<String, u64> =
        (0..TOTAL).map(|it| (format!("users/{it}"), 1)).collect();
    for (round, threshold) in points.iter().enumerate() {
        wait_for(
            "progress before the kill",
            Duration::from_secs(180),
            async || delivered().await >= *threshold,
        )
        .await;
        let running = running_node(nodes).await;
        let victim = index_of(nodes, &running);
        let before = delivered().await;
        let killed_at = Instant::now();
        nodes[victim].kill();
        // Users below 1,000 were written before any kill point.
        let version = 2 + round as u64;
        let updated: Vec<String> = (round * 300..round * 300 + 300)
            .map(|it| format!("users/{it}"))
            .collect();
        put_all(client, &updated, version).await;
        for id in updated {
            expected.insert(id, version);
        }
        let deleted = format!("users/{}", 950 + round);
        let mut attempts = 0;
        while let Err(error) = client.delete(&deleted, None).await {
            attempts += 1;
            assert!(attempts < 50, "delete failed: {error}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        expected.remove(&deleted);
        wait_for(
            "the successor's first batch",
            Duration::from_secs(30),
            async || delivered().await != before,
        )
        .await;
        eprintln!(
            "kill {round}: node {running} killed at {before} delivered; the successor delivered within {:?}",
            killed_at.elapsed()
        );
        nodes[victim].start();
    }
    assert_eq!(writer.await.unwrap().len(), TOTAL);
    let survivor = nodes[0].url();
    let count = expected.len() as u64;
    wait_for(
        "the task to catch up",
        Duration::from_secs(240),
        async || {
            delivered().await == count && {
                let body = send(
                    "GET",
                    &format!("{survivor}/databases/src/etl/progress"),
                    Value::Null,
                )
                .await;
                body["Results"][0]["ProcessesProgress"][0]["Completed"] == true
            }
        },
    )
    .await;
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raven_etl_task_moves_with_the_group_leader_and_loses_nothing() {
    let root = tempfile::tempdir().unwrap();
    let destination_dir = tempfile::tempdir().unwrap();
    let destination = start(destination_dir.path());
    create_database(&destination.url, "dst", &options())
        .await
        .unwrap();
    let (mut nodes, client) = cluster_with_source(root.path()).await;
    // Defined through a node that may not lead the group: sent on to the one that does.
    let definer = nodes[2].url();
    send(
        "PUT",
        &format!("{definer}/databases/src/admin/connection-strings"),
        json!({"Type": "Raven", "Name": "dst", "Database": "dst", "TopologyDiscoveryUrls": [destination.url]}),
    )
    .await;
    send(
        "PUT",
        &format!("{definer}/databases/src/admin/etl"),
        json!({"EtlType": "Raven", "Name": "people", "ConnectionStringName": "dst", "Transforms": [
            {"Name": "s", "Collections": ["Users"], "Script": "loadToPeople({Name: this.Name, Version: this.Version});"}]}),
    )
    .await;
    let expected = kill_the_running_node(&mut nodes, &client, &kill_points(), async || {
        people_count(&destination.url).await
    })
    .await;
    let people = people(&destination.url).await;
    assert_eq!(
        people.len(),
        expected.len(),
        "one entry per live source document"
    );
    for (id, version) in &expected {
        let copies = people
            .get(id)
            .unwrap_or_else(|| panic!("{id} is missing at the destination"));
        assert_eq!(copies.len(), 1, "{id} has {} copies", copies.len());
        assert_eq!(copies[0]["Version"], *version, "{id} is stale");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_etl_task_moves_with_the_group_leader_and_loses_no_row() {
    let test = "a_sql_etl_task_moves_with_the_group_leader_and_loses_no_row";
    if !services::service_available("PostgreSQL", services::POSTGRES_ADDR, test) {
        return;
    }
    let pg = postgres().await;
    let schema = services::unique_name("cluster");
    let table = format!("{schema}.\"Users\"");
    pg.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {table} (\"DocId\" varchar(50) NOT NULL, \"Name\" text, \"Version\" bigint);
         CREATE INDEX ON {table} (\"DocId\");"
    ))
    .await
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, client) = cluster_with_source(root.path()).await;
    let definer = nodes[1].url();
    send(
        "PUT",
        &format!("{definer}/databases/src/admin/connection-strings"),
        json!({"Type": "Sql", "Name": "pg", "FactoryName": "Npgsql",
               "ConnectionString": services::POSTGRES_CS}),
    )
    .await;
    send(
        "PUT",
        &format!("{definer}/databases/src/admin/etl"),
        json!({"EtlType": "Sql", "Name": "users", "ConnectionStringName": "pg",
               "SqlTables": [{"TableName": format!("{schema}.Users"), "DocumentIdColumn": "DocId"}],
               "Transforms": [{"Name": "s", "Collections": ["Users"], "Script":
                   format!("loadTo('{schema}.Users', {{Name: this.Name, Version: this.Version}});")}]}),
    )
    .await;
    let count = format!("SELECT COUNT(*) FROM {table}");
    let expected = kill_the_running_node(&mut nodes, &client, &kill_points(), async || {
        pg.query_one(&count, &[])
            .await
            .map(|row| row.get::<_, i64>(0) as u64)
            .unwrap_or(0)
    })
    .await;
    let rows = pg
        .query(&format!("SELECT \"DocId\", \"Version\" FROM {table}"), &[])
        .await
        .unwrap();
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows {
        let id: String = row.get(0);
        let version: i64 = row.get(1);
        assert!(
            found.insert(id.clone(), version as u64).is_none(),
            "{id} has more than one row"
        );
    }
    assert_eq!(found, expected, "one current row per live document");
    pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
