//! Prometheus metrics (`GET /metrics`): the ETL processes' figures, the databases', request
//! latency by route and the process's resources, in the text exposition format. See
//! `docs/metrics.md` for every metric.

mod exposition;
mod process;
mod requests;
mod scrape;

pub(crate) use exposition::CONTENT_TYPE;
pub(crate) use requests::{RequestMetrics, record_request};
pub(crate) use scrape::scrape;
