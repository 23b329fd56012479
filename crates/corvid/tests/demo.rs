//! `corvid demo`, the README's first command, run as a user would: it must set everything up
//! on embedded defaults, move the sample data through both ETL tasks, print a tour whose
//! commands work, keep serving, and run again on the same directory.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(data_dir: &Path, orders: usize) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corvid"))
            .args(["demo", "--bind", "127.0.0.1:0", "--orders"])
            .arg(orders.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Demo {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads stdout until a line starts with `prefix`; returns it.
    fn wait_for_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.trim_start().starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line starting with {prefix:?}; the demo printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The tour's line that contains `needle`, trimmed.
    fn tour_line(&self, needle: &str) -> String {
        self.seen
            .iter()
            .find(|it| it.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", self.seen.join("\n")))
            .trim()
            .to_owned()
    }
}

fn get(url: &str) -> Value {
    let body = std::process::Command::new("curl")
        .args(["-s", url])
        .output()
        .unwrap();
    serde_json::from_slice(&body.stdout).unwrap()
}

fn sqlite_rows(path: &Path, sql: &str) -> Vec<Vec<String>> {
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    let n = statement.column_count();
    statement
        .query_map([], |row| {
            Ok((0..n)
                .map(|idx| match row.get_ref(idx).unwrap() {
                    rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                    rusqlite::types::ValueRef::Integer(it) => it.to_string(),
                    rusqlite::types::ValueRef::Real(it) => it.to_string(),
                    rusqlite::types::ValueRef::Text(it) => String::from_utf8_lossy(it).into_owned(),
                    rusqlite::types::ValueRef::Blob(_) => "<blob>".to_owned(),
                })
                .collect())
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Runs a tour line through `sh` exactly as printed (`sqlite3` lines are answered with the
/// SQLite library instead, since the CLI need not be installed).
fn run_tour_command(line: &str) -> String {
    let output = Command::new("sh").args(["-c", line]).output().unwrap();
    assert!(output.status.success(), "{line}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_demo_moves_the_sample_data_and_its_tour_works() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("corvid-demo");
    let mut demo = Demo::start(&data_dir, 300);
    assert!(
        demo.wait_for_line("Creating the demo data directory")
            .contains("corvid-demo")
    );
    let url = demo
        .wait_for_line("Corvid listening on ")
        .trim()
        .strip_prefix("Corvid listening on ")
        .unwrap()
        .to_owned();
    // The Studio's address comes first, and it serves the Studio.
    let studio = demo.wait_for_line("Open http");
    let studio = studio
        .trim()
        .strip_prefix("Open ")
        .and_then(|it| it.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert_eq!(studio, format!("{url}/studio"));
    let page = std::process::Command::new("curl")
        .args(["-sL", &studio])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&page.stdout).contains("<title>Corvid Studio</title>"),
        "{studio} does not serve the Studio"
    );
    demo.wait_for_line("Corvid demo is ready.");
    demo.wait_for_line("Serving on");
    let tasks = demo.tour_line("the ETL tasks, live");
    assert!(
        tasks.ends_with("/studio/index.html#databases/tasks/ongoingTasks?database=shop"),
        "{tasks}"
    );

    // Both destinations hold the published data.
    let stats = get(&format!("{url}/databases/shipping/collections/stats"));
    assert!(
        stats["Collections"]["Shipments"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert_eq!(stats["Collections"]["Customers"], 6, "{stats}");
    let sqlite = data_dir.join("sqlite").join("reporting.db");
    assert_eq!(
        sqlite_rows(&sqlite, "SELECT COUNT(*) FROM Orders"),
        [["300"]]
    );
    let lines = sqlite_rows(&sqlite, "SELECT COUNT(*) FROM OrderLines");
    assert!(lines[0][0].parse::<u32>().unwrap() >= 300);

    // The tour: the unshipped order is at Shipping; shipping it moves it out of Shipping and
    // into the ShippedAt column.
    let check = demo.tour_line("startsWith=orders/");
    let check = check
        .strip_prefix("what Shipping received")
        .map_or(check.clone(), |it| it.trim().to_owned());
    assert!(check.starts_with("http://"), "{check}");
    let show = demo.tour_line("curl -s '").clone();
    let before: Value = serde_json::from_str(&run_tour_command(&show)).unwrap();
    assert_eq!(before["Results"].as_array().unwrap().len(), 1, "{before}");
    let order = show
        .split("startsWith=")
        .nth(1)
        .unwrap()
        .trim_end_matches("/'")
        .to_owned();
    let fetch_line = demo.tour_line(&format!("docs?id={order}' | python3"));
    let put_line = demo.tour_line("curl -s -X PUT");
    let scratch = dir.path().join("order.json");
    let fetch_line = fetch_line.replace("/tmp/order.json", scratch.to_str().unwrap());
    let put_line = put_line.replace("/tmp/order.json", scratch.to_str().unwrap());
    run_tour_command(&fetch_line);
    run_tour_command(&put_line);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let after: Value = serde_json::from_str(&run_tour_command(&show)).unwrap();
        let shipped = sqlite_rows(
            &sqlite,
            &format!("SELECT ShippedAt FROM Orders WHERE Id = '{order}'"),
        );
        if after["Results"].as_array().unwrap().is_empty()
            && shipped == [["2026-01-01T10:00:00.0000000Z"]]
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shipped order did not arrive: {after} {shipped:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The SQL the tour suggests runs.
    let query = demo.tour_line("GROUP BY Country");
    let sql = query.split('"').nth(1).unwrap();
    assert!(!sqlite_rows(&sqlite, sql).is_empty());

    // Ctrl-C stops it cleanly; a second run recreates the directory and works again.
    let pid = demo.child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut again = Demo::start(&data_dir, 300);
    again.wait_for_line("Recreating the demo data directory");
    again.wait_for_line("Corvid demo is ready.");
    assert_eq!(
        sqlite_rows(&sqlite, "SELECT COUNT(*) FROM Orders"),
        [["300"]]
    );
}

#[test]
fn the_demo_refuses_a_directory_it_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_corvid"))
        .args(["demo", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("was not made by `corvid demo`"), "{stderr}");
    assert!(dir.path().join("precious.txt").exists());
}
