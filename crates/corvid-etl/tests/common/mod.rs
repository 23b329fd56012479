//! Shared by the SQL destination tests: reaching the machine's PostgreSQL and MariaDB, and
//! unique names so tests never collide or leave anything behind.
//!
//! Without a service, a test prints `SKIPPED (<service> not reachable at <addr>)` and passes,
//! so plain `cargo test` works anywhere; with `CI` set in the environment a missing service
//! fails the test instead, so nothing is skipped in CI.

#![allow(dead_code)]

use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const POSTGRES_ADDR: &str = "127.0.0.1:5432";
pub const MARIADB_ADDR: &str = "127.0.0.1:3306";
/// Npgsql-style connection string of the machine's PostgreSQL.
pub const POSTGRES_CS: &str = "Host=127.0.0.1;Port=5432;Database=test;Username=postgres";
/// MySqlConnector-style connection string of the machine's MariaDB.
pub const MARIADB_CS: &str = "Server=127.0.0.1;Port=3306;Database=test;User ID=root";

/// True when the service answers; false (after saying so) when it does not and this is not
/// CI; a panic when it does not and this is CI.
pub fn service_available(service: &str, addr: &str, test: &str) -> bool {
    let reachable = addr
        .parse()
        .ok()
        .and_then(|it| TcpStream::connect_timeout(&it, Duration::from_secs(2)).ok())
        .is_some();
    if reachable {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {service} is not reachable at {addr}, and CI must not skip it");
    }
    eprintln!("SKIPPED {test}: {service} not reachable at {addr}");
    false
}

/// A name no other test run uses: `corvid_<tag>_<pid>_<n>`.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "corvid_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
