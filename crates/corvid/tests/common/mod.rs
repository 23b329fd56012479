//! Starting real `corvid` processes for tests.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use corvid_client::ClientOptions;

pub mod cluster;

/// A `corvid serve` child process; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `corvid serve` on a free loopback port and waits until it listens.
pub fn start(data_dir: &Path) -> Server {
    start_with(data_dir, &[])
}

/// [`start`] with more command-line options.
pub fn start_with(data_dir: &Path, extra_args: &[&str]) -> Server {
    let mut args: Vec<std::ffi::OsString> = ["serve", "--bind", "127.0.0.1:0", "--data-dir"]
        .iter()
        .map(Into::into)
        .collect();
    args.push(data_dir.into());
    args.extend(extra_args.iter().map(Into::into));
    spawn(&args, "warn")
}

/// Runs `corvid` with `args` and waits until it listens; `RUST_LOG` is `log`.
pub fn spawn(args: &[std::ffi::OsString], log: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corvid"))
        .args(args)
        .env("RUST_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("Corvid listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, url }
}

/// Client options for tests: short timeouts, the given URLs as the node list.
pub fn options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(2),
        disable_topology_updates: true,
        tls: None,
    }
}

/// Sends `body` as JSON to `url`; the answer must be a success. Returns its JSON (null when it
/// has none).
pub async fn send(method: &str, url: &str, body: serde_json::Value) -> serde_json::Value {
    let response = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// A client of the machine's PostgreSQL (database `test`).
pub async fn postgres() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}
