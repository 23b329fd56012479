//! Helpers shared by the OLAP ETL tests (`etl_olap*.rs`): tasks and connection strings of
//! database `src` over HTTP, and DuckDB (installed by `scripts/services/duckdb.sh` into
//! `~/.cache/corvid/duckdb-venv`) to read the files back.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use super::live::{Server, eventually_within, send};

/// `PUT /databases/src/admin/{what}` (`etl` or `connection-strings`), which must succeed.
pub async fn put(server: &Server, what: &str, body: Value) -> Value {
    let (status, reply) = send(
        "PUT",
        &format!("{}/databases/src/admin/{what}", server.url),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    reply
}

/// Task `orders-lake` on connection string `lake`, one transformation `Script1` of
/// `Orders`.
pub fn olap_task(script: &str, run_frequency: &str, tables: Value, emit_deletes: bool) -> Value {
    json!({
        "EtlType": "Olap", "Name": "orders-lake", "ConnectionStringName": "lake",
        "RunFrequency": run_frequency, "OlapTables": tables, "Format": "Parquet",
        "EmitDeletes": emit_deletes,
        "Transforms": [{"Name": "Script1", "Collections": ["Orders"], "Script": script}],
    })
}

/// Waits until database `src`'s ETL reports a `Configuration` load error whose message holds
/// `part`, then checks that its progress did not move past what was not published.
pub async fn wait_for_configuration_error(server: &Server, part: &str) {
    eventually_within(
        "a configuration error",
        std::time::Duration::from_secs(30),
        || async {
            let (_, stats) = send(
                "GET",
                &format!("{}/databases/src/etl/stats", server.url),
                None,
            )
            .await;
            let stats = &stats["Results"][0]["Stats"][0]["Statistics"];
            stats["LastLoadErrorClass"] == "Configuration"
                && stats["LastLoadError"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(part)
        },
    )
    .await;
    let (_, progress) = send(
        "GET",
        &format!("{}/databases/src/etl/progress", server.url),
        None,
    )
    .await;
    assert_eq!(
        progress["Results"][0]["ProcessesProgress"][0]["Completed"], false,
        "{progress}"
    );
}

/// DuckDB, through the venv's Python.
pub struct DuckDb {
    python: PathBuf,
}

impl DuckDb {
    /// `None` (the test is skipped, and says so) without the venv; a failure in CI.
    pub fn find(test: &str) -> Option<DuckDb> {
        let venv = std::env::var_os("CORVID_DUCKDB_VENV").map_or_else(
            || {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/corvid/duckdb-venv")
            },
            PathBuf::from,
        );
        let python = venv.join("bin/python");
        if !python.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {} is missing (scripts/services/duckdb.sh installs it), and CI must not skip it",
                python.display()
            );
            eprintln!(
                "SKIPPED {test}: {} missing (run scripts/services/duckdb.sh)",
                python.display()
            );
            return None;
        }
        Some(DuckDb { python })
    }

    /// The rows of a query, each a list of JSON values (other types as their text).
    pub fn query(&self, sql: &str) -> Vec<Vec<Value>> {
        let program = "import duckdb, json, sys\n\
            rows = duckdb.connect().execute(sys.argv[1]).fetchall()\n\
            print(json.dumps([list(r) for r in rows], default=str))";
        let output = Command::new(&self.python)
            .args(["-c", program, sql])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "duckdb failed on {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The rows of the files a glob matches; 0 when it matches none.
    pub fn count(&self, glob: &str) -> u64 {
        let program = "import duckdb, sys\n\
            try:\n    print(duckdb.connect().execute(\"SELECT count(*) FROM read_parquet(?, union_by_name = true)\", [sys.argv[1]]).fetchone()[0])\n\
            except duckdb.IOException:\n    print(0)";
        let output = Command::new(&self.python)
            .args(["-c", program, glob])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "duckdb failed counting {glob}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap()
    }
}
