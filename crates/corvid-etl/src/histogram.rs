//! A duration histogram with fixed buckets, in seconds, as Prometheus exposes one: a count
//! per upper bound (not cumulative here; the exposition adds them up), the number of
//! observations and their sum. The ETL processes keep one per batch phase in their
//! [`crate::ProcessStats`]; the server keeps one per route for request latency.

use std::time::Duration;

/// The upper bounds of the buckets, in seconds: from a millisecond (a small batch, a point
/// read) to a minute (a large SQL batch, a slow destination). Observations above the last go
/// only into the count (Prometheus' `+Inf` bucket).
pub const BUCKET_BOUNDS_SECONDS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Observations of durations, by bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations in each bucket of [`BUCKET_BOUNDS_SECONDS`] (each at most its bound and
    /// above the previous one).
    pub buckets: [u64; BUCKET_BOUNDS_SECONDS.len()],
    /// Every observation, those above the last bound included.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&mut self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        if let Some(idx) = BUCKET_BOUNDS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
        {
            self.buckets[idx] += 1;
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }

    /// The cumulative counts, bound by bound, as Prometheus' `le` buckets are.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BUCKET_BOUNDS_SECONDS
            .iter()
            .zip(self.buckets.iter())
            .scan(0u64, |total, (bound, n)| {
                *total += n;
                Some((*bound, *total))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_the_first_bucket_that_holds_them() {
        let mut histogram = Histogram::default();
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_millis(30));
        histogram.observe(Duration::from_secs(120));
        assert_eq!(histogram.count, 4);
        assert!((histogram.sum_seconds - 120.0315).abs() < 1e-9);
        let cumulative: Vec<(f64, u64)> = histogram.cumulative().collect();
        assert_eq!(cumulative[0], (0.001, 2));
        assert_eq!(cumulative[4], (0.025, 2));
        assert_eq!(cumulative[5], (0.05, 3));
        // The two-minute one is only in the count (`+Inf`).
        assert_eq!(cumulative.last(), Some(&(60.0, 3)));
    }
}
