//! Resident memory of the servers over a benchmark: sampled every second from /proc, reported
//! as a small table (issue 18: "RSS over time reported by corvid-bench etl and sql-etl").

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::memory_mib;

/// Samples the resident memory of some processes until dropped.
pub(crate) struct RssSampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    names: Vec<String>,
    task: tokio::task::JoinHandle<()>,
}

struct Sample {
    at: Duration,
    /// MiB per process, in the order of `names`.
    rss: Vec<f64>,
}

impl RssSampler {
    /// Starts sampling `processes` (name, pid) every `interval`.
    pub(crate) fn start(processes: &[(&str, u32)], interval: Duration) -> RssSampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let pids: Vec<u32> = processes.iter().map(|(_, pid)| *pid).collect();
        let names = processes
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect();
        let task = tokio::spawn({
            let samples = samples.clone();
            async move {
                let started = Instant::now();
                let mut ticker = tokio::time::interval(interval);
                loop {
                    ticker.tick().await;
                    let rss = pids
                        .iter()
                        .map(|pid| memory_mib(*pid).map_or(f64::NAN, |(rss, _)| rss))
                        .collect();
                    samples
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Sample {
                            at: started.elapsed(),
                            rss,
                        });
                }
            }
        });
        RssSampler {
            samples,
            names,
            task,
        }
    }

    /// Prints up to `rows` evenly spaced samples and each process's peak.
    pub(crate) fn report(&self, rows: usize) {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.is_empty() {
            return;
        }
        println!(
            "resident memory over time (MiB, sampled every second): {}",
            self.names.join(" / ")
        );
        let step = samples.len().div_ceil(rows.max(1)).max(1);
        let mut picked: Vec<&Sample> = samples.iter().step_by(step).collect();
        if let Some(last) = samples.last()
            && !std::ptr::eq(*picked.last().unwrap_or(&last), last)
        {
            picked.push(last);
        }
        for sample in picked {
            let values: Vec<String> = sample.rss.iter().map(|it| format!("{it:.0}")).collect();
            println!(
                "  {:>6.1} s: {}",
                sample.at.as_secs_f64(),
                values.join(" / ")
            );
        }
        for (idx, name) in self.names.iter().enumerate() {
            let peak = samples
                .iter()
                .map(|it| it.rss[idx])
                .filter(|it| it.is_finite())
                .fold(0.0_f64, f64::max);
            println!(
                "  {name}: peak {peak:.0} MiB over {} samples",
                samples.len()
            );
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
