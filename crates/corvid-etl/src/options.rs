//! The settings of every ETL process of a server, given by the binary (`corvid serve`'s
//! `--etl-*` flags); each destination reads the ones that concern it.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use corvid_client::ClientTls;
use corvid_script::ScriptOptions;

use crate::script_budget::ScriptMemoryBudget;

/// Settings of every ETL process of a server.
#[derive(Debug, Clone)]
pub struct EtlOptions {
    pub max_batch_items: usize,
    pub max_batch_bytes: usize,
    /// Threads (each with its own script runtime) that transform a large batch together.
    /// Default: half the machine's cores (at least 1, at most 4): the rest is left to loading,
    /// HTTP and the store. On the 2-core benchmark machine, where the destination shares the
    /// cores, 2 threads made no difference beyond the noise to Raven ETL and SQL ETL to
    /// PostgreSQL slower (docs/benchmarks.md, session 4).
    pub transform_threads: usize,
    /// Raven ETL batches being loaded at once (at least 1). With 2, the next batch is sent
    /// while the destination still applies the previous one; batches that delete, or write a
    /// document in common, are still loaded one after the other.
    pub raven_loads_in_flight: usize,
    /// The first wait after a failed load; it doubles up to `max_fallback`.
    pub initial_fallback: Duration,
    pub max_fallback: Duration,
    /// Each runtime's limit is `script.memory_limit_bytes`, granted from `script_budget`.
    pub script: ScriptOptions,
    /// The memory all script runtimes of the server may take together.
    pub script_budget: ScriptMemoryBudget,
    /// How often each database's tombstones that every ETL transformation has processed are
    /// removed (RavenDB's `Tombstones.CleanupIntervalInMin`, 5 minutes); zero: never.
    pub tombstone_cleanup_interval: Duration,
    /// Where SQL ETL's SQLite files may be.
    pub sqlite: SqlitePaths,
    /// Where OLAP ETL's local folders may be, and where it stages files for S3.
    pub olap: OlapPaths,
    /// The key file connection strings are encrypted with at rest (created 0600 on first
    /// use); `None`: stored in clear (the library's default; `corvid serve` uses
    /// `<data-dir>/secrets.key`, or `--secrets-key-file`).
    pub secrets_key_file: Option<PathBuf>,
    /// How Raven ETL verifies `https://` destinations (the system's roots plus `corvid serve
    /// --trusted-ca`) and the client certificate it presents (a secured server's own, as
    /// RavenDB does); `None`: the system's roots, no client certificate.
    pub raven_tls: Option<ClientTls>,
    /// The server's public URL (RavenDB's `PublicServerUrl`): Queue ETL's default CloudEvents
    /// `source` is `{url}/{database}/{task}`. `None`: `/{database}/{task}`.
    pub public_server_url: Option<String>,
    /// Where Amazon SQS connection strings with `UseEmulator` send (RavenDB's
    /// `RAVEN_AMAZON_SQS_EMULATOR_URL`, read by the binary). `None`: such a task fails with a
    /// configuration error.
    pub sqs_emulator_url: Option<String>,
}

/// Where SQL ETL's SQLite files may be (issue 18 finding 4): a connection string's
/// `Data Source` must not name any file the server can write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlitePaths {
    /// The directory relative `Data Source` paths resolve in, and outside which absolute ones
    /// are refused. `None`: paths are used as written (the library's default; `corvid serve`
    /// sets `<data-dir>/sqlite`, or `--sqlite-dir`).
    pub dir: Option<PathBuf>,
    /// Absolute paths outside `dir` are allowed (`--sqlite-allow-any-path`); relative ones
    /// still resolve in `dir`.
    pub allow_any_path: bool,
}

impl SqlitePaths {
    /// The file a `Data Source` names; `Err` (for the user) when it is outside the directory.
    /// The check is lexical: a path with `..` is refused, symbolic links inside the directory
    /// are the operator's.
    pub fn resolve(&self, data_source: &str) -> Result<PathBuf, String> {
        resolve_inside(self.dir.as_deref(), self.allow_any_path, data_source).map_err(|dir| {
            format!(
                "the SQLite file `{data_source}` is outside the SQLite directory `{}`; use a path relative to it (or start the server with --sqlite-allow-any-path)",
                dir.display()
            )
        })
    }
}

/// Where OLAP ETL's files may go: a `LocalSettings.FolderPath` resolves as a SQLite file
/// does (relative in `dir`, absolute only inside it unless allowed), so that a connection
/// string cannot make the server write anywhere it may.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OlapPaths {
    /// `None`: folders are used as written (the library's default; `corvid serve` sets
    /// `<data-dir>/olap`, or `--olap-dir`).
    pub dir: Option<PathBuf>,
    /// Absolute folders outside `dir` are allowed (`--olap-allow-any-path`).
    pub allow_any_path: bool,
    /// Where files bound for S3 are written before they are uploaded (`None`: the system's
    /// temporary directory; `corvid serve` sets `<data-dir>/olap-staging`).
    pub staging_dir: Option<PathBuf>,
}

impl OlapPaths {
    /// The folder a `FolderPath` names; `Err` (for the user) when it is outside the directory.
    pub fn resolve(&self, folder_path: &str) -> Result<PathBuf, String> {
        resolve_inside(self.dir.as_deref(), self.allow_any_path, folder_path).map_err(|dir| {
            format!(
                "the OLAP folder `{folder_path}` is outside the OLAP directory `{}`; use a path relative to it (or start the server with --olap-allow-any-path)",
                dir.display()
            )
        })
    }

    /// The staging folder of one process's uploads.
    pub fn staging_for(&self, database: &str, task: &str, transform: &str) -> PathBuf {
        let root = self
            .staging_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("corvid-olap-staging"));
        let name = |it: &str| {
            it.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        };
        // Names are made safe for a path; the hash keeps two names that differ only in the
        // characters replaced apart.
        let digest = crate::destinations::queue::sigv4::sha256_hex(
            &format!("{database}\n{task}\n{transform}"),
            12,
        );
        root.join(format!(
            "{}_{}_{}_{digest}",
            name(database),
            name(task),
            name(transform)
        ))
    }
}

/// `path` resolved in `dir` (see [`SqlitePaths::resolve`]); `Err(dir)` when it is outside.
fn resolve_inside(
    dir: Option<&Path>,
    allow_any_path: bool,
    text: &str,
) -> Result<PathBuf, PathBuf> {
    let path = Path::new(text);
    let Some(dir) = dir else {
        return Ok(path.to_path_buf());
    };
    if path.is_absolute() && allow_any_path {
        return Ok(path.to_path_buf());
    }
    let outside = || dir.to_path_buf();
    if path
        .components()
        .any(|it| matches!(it, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(outside());
    }
    let candidate = if path.is_absolute() {
        if !path.starts_with(dir) {
            return Err(outside());
        }
        path.to_path_buf()
    } else {
        dir.join(path)
    };
    // The check above reads the text; a symbolic link inside the directory could still
    // lead out of it.
    if really_inside(dir, &candidate) {
        Ok(candidate)
    } else {
        Err(outside())
    }
}

/// Whether `candidate` (inside `dir` by its text) stays inside once symbolic links are
/// followed: its nearest existing ancestor (itself when it exists) must resolve inside.
fn really_inside(dir: &Path, candidate: &Path) -> bool {
    let Ok(real_dir) = dir.canonicalize() else {
        // No directory yet: nothing in it can be a link.
        return true;
    };
    let mut probe = candidate;
    loop {
        if let Ok(real) = probe.canonicalize() {
            return real.starts_with(&real_dir);
        }
        match probe.parent() {
            Some(parent) if parent.starts_with(dir) => probe = parent,
            _ => return true,
        }
    }
}

impl Default for EtlOptions {
    fn default() -> Self {
        EtlOptions {
            max_batch_items: 8192,
            max_batch_bytes: 64 * 1024 * 1024,
            transform_threads: (std::thread::available_parallelism().map_or(1, |it| it.get()) / 2)
                .clamp(1, 4),
            raven_loads_in_flight: 2,
            initial_fallback: Duration::from_secs(5),
            max_fallback: Duration::from_secs(900),
            script: ScriptOptions::default(),
            script_budget: ScriptMemoryBudget::new(256 * 1024 * 1024),
            tombstone_cleanup_interval: Duration::from_secs(300),
            sqlite: SqlitePaths::default(),
            olap: OlapPaths::default(),
            secrets_key_file: None,
            raven_tls: None,
            public_server_url: None,
            sqs_emulator_url: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_does_not_lead_a_sqlite_file_out_of_its_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sqlite");
        let outside = root.path().join("elsewhere");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("other.db"), b"").unwrap();
        std::os::unix::fs::symlink(outside.join("other.db"), dir.join("link.db")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("real")).unwrap();
        let confined = SqlitePaths {
            dir: Some(dir.clone()),
            allow_any_path: false,
        };
        for refused in ["link.db", "sub/new.db", "sub/other.db"] {
            let error = confined.resolve(refused).unwrap_err();
            assert!(
                error.contains("outside the SQLite directory"),
                "{refused}: {error}"
            );
        }
        for allowed in ["new.db", "real/new.db", "real/deeper/new.db"] {
            assert_eq!(confined.resolve(allowed).unwrap(), dir.join(allowed));
        }
    }

    #[test]
    fn sqlite_files_stay_in_their_directory() {
        let confined = SqlitePaths {
            dir: Some(PathBuf::from("/data/sqlite")),
            allow_any_path: false,
        };
        assert_eq!(
            confined.resolve("reports.db").unwrap(),
            PathBuf::from("/data/sqlite/reports.db")
        );
        assert_eq!(
            confined.resolve("/data/sqlite/a/b.db").unwrap(),
            PathBuf::from("/data/sqlite/a/b.db")
        );
        for refused in [
            "/etc/passwd",
            "../x.db",
            "/data/sqlite/../x.db",
            "a/../../x.db",
        ] {
            let error = confined.resolve(refused).unwrap_err();
            assert!(error.contains("--sqlite-allow-any-path"), "{error}");
        }
        let any = SqlitePaths {
            allow_any_path: true,
            ..confined.clone()
        };
        assert_eq!(
            any.resolve("/tmp/x.db").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(
            any.resolve("x.db").unwrap(),
            PathBuf::from("/data/sqlite/x.db")
        );
        assert_eq!(
            SqlitePaths::default().resolve("/tmp/x.db").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
    }
}
