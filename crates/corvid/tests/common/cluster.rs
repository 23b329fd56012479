//! A cluster of real `corvid serve` processes on loopback addresses, for the cluster tests.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Server;

/// A node of a test cluster: a fixed port (so it comes back at the same URL), a data directory
/// and its tag.
pub struct Node {
    pub tag: &'static str,
    pub port: u16,
    pub data_dir: PathBuf,
    pub server: Option<Server>,
}

impl Node {
    pub fn new(root: &Path, tag: &'static str) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Node {
            tag,
            port,
            data_dir: root.join(tag),
            server: None,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        let args: Vec<std::ffi::OsString> = [
            "serve".into(),
            "--bind".into(),
            format!("127.0.0.1:{}", self.port).into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
            "--node-tag".into(),
            self.tag.into(),
            "--public-url".into(),
            self.url().into(),
        ]
        .to_vec();
        let server = super::spawn(&args, "warn,corvid_server::replication=info,openraft=off");
        assert_eq!(server.url, self.url(), "node {}", self.tag);
        self.server = Some(server);
    }

    /// kill -9.
    pub fn kill(&mut self) {
        self.server = None;
    }
}

pub async fn call(method: &str, url: &str) -> (u16, Value) {
    call_json(method, url, None).await
}

/// Sends a request (with a JSON body if given); the status and the JSON answer (null if none).
/// A request that gets no answer (the node is down or cut off) is status 0 with the error.
pub async fn call_json(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut request = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .timeout(Duration::from_secs(60));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = match request.send().await {
        Ok(it) => it,
        Err(error) => return (0, Value::String(error.to_string())),
    };
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn topology(node: &Node) -> Value {
    let (status, body) = call("GET", &format!("{}/cluster/topology", node.url())).await;
    assert_eq!(status, 200, "{body}");
    body
}

pub fn members(topology: &Value) -> Vec<String> {
    topology["Topology"]["Members"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

pub async fn add(to: &Node, url: &str, tag: Option<&str>) -> (u16, Value) {
    let mut target = format!("{}/admin/cluster/node?url={url}", to.url());
    if let Some(tag) = tag {
        target.push_str(&format!("&tag={tag}"));
    }
    call("PUT", &target).await
}

/// Waits until every node in `nodes` reports `expected` as members, one leader among them, the
/// same cluster id and the same applied index; returns the leader's tag.
pub async fn wait_agreed(nodes: &[&Node], expected: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let mut views = Vec::new();
        for node in nodes {
            views.push(topology(node).await);
        }
        let leader = views[0]["Leader"].as_str().map(str::to_owned);
        let agreed = leader.as_deref().is_some_and(|it| expected.contains(&it))
            && views.iter().all(|view| {
                members(view) == expected
                    && view["Leader"].as_str() == leader.as_deref()
                    && view["Topology"]["TopologyId"] == views[0]["Topology"]["TopologyId"]
                    && view["AppliedIndex"] == views[0]["AppliedIndex"]
            });
        if agreed {
            return leader.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the nodes did not agree on {expected:?} within {within:?}: {views:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn index_of(nodes: &[Node], tag: &str) -> usize {
    nodes.iter().position(|it| it.tag == tag).unwrap()
}

/// Starts nodes A, B and C under `root` and forms a cluster of the three (added through A).
pub async fn form_three(root: &Path) -> Vec<Node> {
    let mut nodes: Vec<Node> = ["A", "B", "C"]
        .into_iter()
        .map(|tag| Node::new(root, tag))
        .collect();
    for node in &mut nodes {
        node.start();
    }
    for tag in ["B", "C"] {
        let url = nodes[index_of(&nodes, tag)].url();
        let (status, body) = add(&nodes[0], &url, Some(tag)).await;
        assert_eq!(status, 200, "adding {tag}: {body}");
    }
    let all: Vec<&Node> = nodes.iter().collect();
    wait_agreed(&all, &["A", "B", "C"], Duration::from_secs(30)).await;
    nodes
}

/// The tags `GET /topology?name=` lists on `node` (the group's leader first).
pub async fn database_nodes(node: &Node, database: &str) -> Vec<String> {
    let (status, body) = call("GET", &format!("{}/topology?name={database}", node.url())).await;
    assert_eq!(status, 200, "{body}");
    body["Nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["ClusterTag"].as_str().unwrap().to_owned())
        .collect()
}

/// The documents a Raven ETL task loaded into `dst` at `destination` (`loadToPeople`), by the
/// source document's id.
pub async fn people(destination: &str) -> std::collections::BTreeMap<String, Vec<Value>> {
    let (status, body) = call(
        "GET",
        &format!("{destination}/databases/dst/docs?startsWith=users%2F&pageSize=1000000"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut found: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for doc in body["Results"].as_array().unwrap() {
        let id = doc["@metadata"]["@id"].as_str().unwrap();
        let source = id.split("/people/").next().unwrap().to_owned();
        found.entry(source).or_default().push(doc.clone());
    }
    found
}
