//! Failover decisions, kept free of I/O so they can be tested directly.
//!
//! A request walks the nodes in [`node_order`], each node at most once. After every attempt the
//! outcome is classified: [`Verdict::Done`] hands the response to the operation,
//! [`Verdict::DontRetry`] turns it into an error right away, and [`Verdict::Retry`] moves on to
//! the next node.

/// What to do with the outcome of one attempt on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A usable answer (2xx, 304 or 404): the operation interprets it.
    Done,
    /// A definitive error: map it to a `ClientError` without trying other nodes.
    DontRetry,
    /// The node is unavailable: try the next node.
    Retry(RetryReason),
}

/// Why an attempt moves on to the next node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryReason {
    /// The connection could not be made or broke before a response arrived.
    Connection,
    /// The node did not answer in time.
    Timeout,
    /// The node answered with a status that means "ask someone else".
    Status(u16),
    /// The TLS handshake failed (its certificate not trusted, say): another node may differ.
    Tls,
}

/// The transport-level failure of one attempt, reduced to what the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportFailure {
    /// Connecting failed (refused, unreachable, DNS).
    Connect,
    /// The connection was made but the TLS handshake failed: a certificate not trusted or not
    /// for that host, or ours refused. Trying again will not change it.
    Tls,
    /// The request or its body timed out.
    Timeout,
    /// The request was sent or the body was read, but the connection broke.
    Broken,
    /// The request could not be built or followed (a bug or a bad URL); another node won't help.
    Other,
}

impl TransportFailure {
    /// Reduces a reqwest error to the failure kind; `tls` is whether the handshake failed.
    pub(crate) fn from_reqwest(error: &reqwest::Error, tls: bool) -> Self {
        if tls {
            return Self::Tls;
        }
        if error.is_timeout() {
            return Self::Timeout;
        }
        if error.is_connect() {
            return Self::Connect;
        }
        if error.is_request() || error.is_body() || error.is_decode() {
            return Self::Broken;
        }
        Self::Other
    }
}

/// Classifies an HTTP status. `database_missing` is whether the `Database-Missing` header was set.
pub(crate) fn classify_status(status: u16, database_missing: bool) -> Verdict {
    match status {
        200..=299 | 304 | 404 => Verdict::Done,
        // 503 with `Database-Missing` is RavenDB's definitive "no such database".
        503 if database_missing => Verdict::DontRetry,
        // 408 request timeout, 410 node left the database topology, 425 too early,
        // 502/503/504 proxy or node unavailable: the official clients fail over on all of them.
        408 | 410 | 425 | 502 | 503 | 504 => Verdict::Retry(RetryReason::Status(status)),
        _ => Verdict::DontRetry,
    }
}

/// Classifies a transport failure.
pub(crate) fn classify_transport(failure: TransportFailure) -> Verdict {
    match failure {
        TransportFailure::Connect | TransportFailure::Broken => {
            Verdict::Retry(RetryReason::Connection)
        }
        TransportFailure::Timeout => Verdict::Retry(RetryReason::Timeout),
        TransportFailure::Tls => Verdict::Retry(RetryReason::Tls),
        TransportFailure::Other => Verdict::DontRetry,
    }
}

/// Returns whether a response means the topology must be fetched again before the next
/// request: a non-empty `Refresh-Topology` header, or 410 (the node left the database group).
pub(crate) fn response_requests_topology_refresh(
    status: u16,
    refresh_topology_header: Option<&str>,
) -> bool {
    status == 410 || refresh_topology_header.is_some_and(|it| !it.is_empty())
}

/// Returns the order in which to try `n_nodes` nodes: the preferred node first, then the others
/// in topology order, wrapping around, each exactly once.
pub(crate) fn node_order(n_nodes: usize, preferred_idx: usize) -> impl Iterator<Item = usize> {
    let start_idx = if preferred_idx < n_nodes {
        preferred_idx
    } else {
        0
    };
    (0..n_nodes).map(move |offset| (start_idx + offset) % n_nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_not_found_and_not_modified_are_done() {
        for status in [200, 201, 204, 304, 404] {
            assert_eq!(classify_status(status, false), Verdict::Done, "{status}");
        }
    }

    #[test]
    fn unavailable_statuses_fail_over() {
        for status in [408, 410, 425, 502, 503, 504] {
            assert_eq!(
                classify_status(status, false),
                Verdict::Retry(RetryReason::Status(status)),
                "{status}"
            );
        }
    }

    #[test]
    fn database_missing_503_is_definitive() {
        assert_eq!(classify_status(503, true), Verdict::DontRetry);
    }

    #[test]
    fn client_errors_and_500_are_not_retried() {
        for status in [400, 401, 403, 409, 500, 501] {
            assert_eq!(
                classify_status(status, false),
                Verdict::DontRetry,
                "{status}"
            );
        }
    }

    #[test]
    fn transport_failures_fail_over_except_other() {
        assert_eq!(
            classify_transport(TransportFailure::Connect),
            Verdict::Retry(RetryReason::Connection)
        );
        assert_eq!(
            classify_transport(TransportFailure::Broken),
            Verdict::Retry(RetryReason::Connection)
        );
        assert_eq!(
            classify_transport(TransportFailure::Timeout),
            Verdict::Retry(RetryReason::Timeout)
        );
        assert_eq!(
            classify_transport(TransportFailure::Tls),
            Verdict::Retry(RetryReason::Tls)
        );
        assert_eq!(
            classify_transport(TransportFailure::Other),
            Verdict::DontRetry
        );
    }

    #[test]
    fn refresh_header_or_410_requests_topology_refresh() {
        assert!(response_requests_topology_refresh(200, Some("true")));
        assert!(response_requests_topology_refresh(503, Some("true")));
        assert!(response_requests_topology_refresh(410, None));
        assert!(!response_requests_topology_refresh(200, Some("")));
        assert!(!response_requests_topology_refresh(200, None));
        assert!(!response_requests_topology_refresh(503, None));
    }

    #[test]
    fn node_order_starts_at_preferred_and_visits_each_once() {
        assert_eq!(node_order(3, 0).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(node_order(3, 1).collect::<Vec<_>>(), vec![1, 2, 0]);
        assert_eq!(node_order(3, 2).collect::<Vec<_>>(), vec![2, 0, 1]);
    }

    #[test]
    fn node_order_ignores_stale_preferred_index() {
        assert_eq!(node_order(2, 5).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(node_order(0, 0).count(), 0);
    }
}
