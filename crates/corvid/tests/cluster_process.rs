//! The cluster with real `corvid serve` processes on loopback addresses: forming a cluster of
//! three with RavenDB's `PUT /admin/cluster/node`, losing the leader (kill -9) and electing
//! another, a node returning and catching up, removing and adding a node again, a leader cut
//! off in a minority, and the bad requests that must change nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{Node, add, call, call_json, index_of, members, topology, wait_agreed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_a_cluster_lose_the_leader_and_take_a_node_back() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = vec![
        Node::new(root.path(), "A"),
        Node::new(root.path(), "B"),
        Node::new(root.path(), "C"),
    ];
    for node in &mut nodes {
        node.start();
    }
    // Each node is a cluster of one until it is added.
    let alone = topology(&nodes[1]).await;
    assert_eq!(members(&alone), ["B"]);
    assert_eq!(alone["Leader"], "B");

    let (status, body) = add(&nodes[0], &nodes[1].url(), Some("B")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Tag"], "B");
    // Sent to a follower: forwarded to the leader; the tag is the node's own.
    let (status, body) = add(&nodes[1], &nodes[2].url(), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Tag"], "C");
    let all = [&nodes[0], &nodes[1], &nodes[2]];
    let leader = wait_agreed(&all, &["A", "B", "C"], Duration::from_secs(10)).await;
    assert_eq!(leader, "A");
    let view = topology(&nodes[0]).await;
    for tag in ["B", "C"] {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut view = view.clone();
        while view["Status"][tag]["Connected"] != true {
            assert!(Instant::now() < deadline, "{tag} never connected: {view:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            view = topology(&nodes[0]).await;
        }
        assert!(view["Status"][tag]["LastMatchingIndex"].as_u64().unwrap() > 0);
    }

    // kill -9 the leader: the two others elect one of them.
    let killed_at = Instant::now();
    let old = index_of(&nodes, &leader);
    nodes[old].kill();
    let survivors: Vec<&Node> = nodes.iter().filter(|it| it.tag != leader).collect();
    let new_leader = loop {
        let first = topology(survivors[0]).await;
        let second = topology(survivors[1]).await;
        if let Some(tag) = first["Leader"].as_str()
            && tag != leader
            && second["Leader"].as_str() == Some(tag)
        {
            break tag.to_owned();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(10),
            "no new leader 10 s after the leader died: {first:#} {second:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "new leader {new_leader} elected {} ms after the leader was killed",
        killed_at.elapsed().as_millis()
    );

    // The old leader returns, at the same URL, and follows the new one.
    nodes[old].start();
    let all = [&nodes[0], &nodes[1], &nodes[2]];
    let leader = wait_agreed(&all, &["A", "B", "C"], Duration::from_secs(15)).await;
    assert_eq!(leader, new_leader);

    // Remove a follower, through another follower (forwarded).
    let followers: Vec<&'static str> = ["A", "B", "C"]
        .into_iter()
        .filter(|it| *it != leader)
        .collect();
    let (removed, via) = (followers[0], followers[1]);
    let (status, body) = call(
        "DELETE",
        &format!(
            "{}/admin/cluster/node?nodeTag={removed}",
            nodes[index_of(&nodes, via)].url()
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rest: Vec<&Node> = nodes.iter().filter(|it| it.tag != removed).collect();
    let mut expected: Vec<&str> = rest.iter().map(|it| it.tag).collect();
    expected.sort_unstable();
    wait_agreed(&rest, &expected, Duration::from_secs(10)).await;
    // The removed node was told: it is a cluster of one again, with a cluster id of its own.
    let removed_node = &nodes[index_of(&nodes, removed)];
    let alone = wait_agreed(&[removed_node], &[removed], Duration::from_secs(10)).await;
    assert_eq!(alone, removed);
    assert_ne!(
        topology(removed_node).await["Topology"]["TopologyId"],
        topology(rest[0]).await["Topology"]["TopologyId"]
    );

    // And it can be added again.
    let (status, body) = add(rest[0], &removed_node.url(), None).await;
    assert_eq!(status, 200, "{body}");
    let all = [&nodes[0], &nodes[1], &nodes[2]];
    wait_agreed(&all, &["A", "B", "C"], Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cluster_requests_are_refused_and_change_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mut a = Node::new(root.path(), "A");
    let mut b = Node::new(root.path(), "B");
    let mut c = Node::new(root.path(), "C");
    a.start();
    b.start();
    c.start();
    // B holds a database: it cannot join.
    let (status, body) = call("PUT", &format!("{}/admin/databases?name=shop", b.url())).await;
    assert_eq!(status, 201, "{body}");
    let before = topology(&a).await;

    let closed = Node::new(root.path(), "D");
    let cases = [
        (add(&a, &closed.url(), Some("D")).await, 400, "cannot reach"),
        (add(&a, &c.url(), Some("c1")).await, 400, "invalid node tag"),
        (add(&a, "not-a-url", Some("C")).await, 400, "is not a URL"),
        (
            add(&a, &format!("{}/x", c.url()), Some("C")).await,
            400,
            "base URL",
        ),
        (
            add(&a, &c.url(), Some("A")).await,
            400,
            "already has a node tagged `A`",
        ),
        (add(&a, &b.url(), None).await, 400, "holds 1 database"),
        // C was started with --node-tag C: it does not join as another tag.
        (add(&a, &c.url(), Some("D")).await, 400, "--node-tag C"),
        (
            call("PUT", &format!("{}/admin/cluster/node", a.url())).await,
            400,
            "URL is required",
        ),
        (
            call(
                "DELETE",
                &format!("{}/admin/cluster/node?nodeTag=Z", a.url()),
            )
            .await,
            404,
            "no node tagged `Z`",
        ),
        (
            call(
                "DELETE",
                &format!("{}/admin/cluster/node?nodeTag=A", a.url()),
            )
            .await,
            400,
            "last member",
        ),
    ];
    for ((status, body), expected_status, expected) in cases {
        assert_eq!(status, expected_status, "{body}");
        let message = body["Message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        assert!(body["Type"].is_string(), "{body}");
    }
    // Nothing changed, on A nor on the nodes it was asked to add.
    let after = topology(&a).await;
    assert_eq!(members(&after), ["A"]);
    assert_eq!(
        after["Topology"]["TopologyId"],
        before["Topology"]["TopologyId"]
    );
    assert_eq!(after["AppliedIndex"], before["AppliedIndex"]);
    assert_eq!(members(&topology(&c).await), ["C"]);
    assert_eq!(members(&topology(&b).await), ["B"]);

    // Added once; added again is refused.
    let (status, body) = add(&a, &c.url(), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = add(&a, &c.url(), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["Message"].as_str().unwrap().contains("already"),
        "{body}"
    );

    // The nodes' own routes refuse what is not theirs: a leave naming another cluster, a join
    // that is not one.
    let (status, body) = call_json(
        "POST",
        &format!("{}/cluster/leave", a.url()),
        Some(&serde_json::json!({"topology_id": "not-this-cluster"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("not to not-this-cluster"),
        "{body}"
    );
    let (status, body) = call_json(
        "POST",
        &format!("{}/cluster/join", a.url()),
        Some(&serde_json::json!([])),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("not a join request"),
        "{body}"
    );
    assert_eq!(members(&topology(&a).await), ["A", "C"]);

    // A node whose URL others cannot reach does not add nodes.
    let lone = Node::new(root.path(), "L");
    let unreachable_url = format!("http://0.0.0.0:{}", lone.port);
    let args: Vec<std::ffi::OsString> = [
        "serve".into(),
        "--bind".into(),
        format!("127.0.0.1:{}", lone.port).into(),
        "--data-dir".into(),
        lone.data_dir.clone().into(),
        "--public-url".into(),
        unreachable_url.clone().into(),
    ]
    .to_vec();
    let _lone = common::spawn(&args, "warn,openraft=error");
    let (status, body) = add(&lone, &b.url(), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["Message"].as_str().unwrap().contains("--public-url"),
        "{body}"
    );

    // A data directory keeps its tag: starting it as another node fails with a clear error.
    c.kill();
    let output = Command::new(env!("CARGO_BIN_EXE_corvid"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--node-tag",
            "E",
            "--data-dir",
        ])
        .arg(&c.data_dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("belongs to node `C`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_majority_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = vec![
        Node::new(root.path(), "A"),
        Node::new(root.path(), "B"),
        Node::new(root.path(), "C"),
    ];
    for node in &mut nodes {
        node.start();
    }
    for index in [1, 2] {
        let (status, body) = add(&nodes[0], &nodes[index].url(), None).await;
        assert_eq!(status, 200, "{body}");
    }
    let all = [&nodes[0], &nodes[1], &nodes[2]];
    assert_eq!(
        wait_agreed(&all, &["A", "B", "C"], Duration::from_secs(10)).await,
        "A"
    );
    let mut d = Node::new(root.path(), "D");
    d.start();
    // Both followers die: A is alone, a minority.
    nodes[1].kill();
    nodes[2].kill();
    let started = Instant::now();
    let (status, body) = add(&nodes[0], &d.url(), None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["Message"].as_str().unwrap().contains("majority"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let (status, body) = call(
        "DELETE",
        &format!("{}/admin/cluster/node?nodeTag=B", nodes[0].url()),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    // D was not touched: still a cluster of one; A's membership is unchanged.
    assert_eq!(members(&topology(&d).await), ["D"]);
    assert_eq!(members(&topology(&nodes[0]).await), ["A", "B", "C"]);
    // Once a majority is back, the same change goes through.
    nodes[1].start();
    let (status, body) = add(&nodes[0], &d.url(), None).await;
    assert_eq!(status, 200, "{body}");
}
