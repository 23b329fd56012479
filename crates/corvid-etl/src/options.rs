//! The settings of every ETL process of a server, given by the binary (`corvid serve`'s
//! `--etl-*` flags); each destination reads the ones that concern it.

use std::time::Duration;

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
        }
    }
}
