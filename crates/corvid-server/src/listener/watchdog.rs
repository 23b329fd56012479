//! What a connection is doing, and when it has stalled for too long.
//!
//! The connection's reads, requests and request bodies report to its [`Activity`]; [`watch`]
//! completes when [`verdict`] says the connection must close.

use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::listener::ConnectionOptions;

/// A connection's activity, shared by its I/O, its requests and its watchdog.
pub(crate) struct Activity {
    state: Mutex<State>,
    /// Wakes the watchdog when a request head begins, a request starts or ends, a body starts
    /// or stops waiting, a write starts or stops waiting.
    changed: Notify,
    /// `state.write_blocked_since.is_some()`, read on every write without the lock.
    write_blocked: std::sync::atomic::AtomicBool,
}

/// What the watchdog decides from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State {
    /// When the connection last became idle: its start, or the end of its last response.
    pub idle_since: Instant,
    /// Whether a request has started on this connection.
    pub served: bool,
    /// The first byte read since the connection became idle: the next request head began.
    pub head_started: Option<Instant>,
    /// The last read that returned bytes.
    pub last_read: Instant,
    /// Requests whose response is not completely written yet.
    pub in_flight: usize,
    /// Request bodies waiting for bytes from the client.
    pub bodies_waiting: usize,
    /// The connection switched protocols (the Changes API's WebSocket), which has its own
    /// liveness rules.
    pub upgraded: bool,
    /// The connection speaks HTTP/2: request heads are frames, not a byte stream to time.
    pub http2: bool,
    /// Since when a write has waited for the client to read (its socket buffer full).
    pub write_blocked_since: Option<Instant>,
}

/// The watchdog's decision.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Look again at this time, or when the activity changes.
    Keep(Option<Instant>),
    /// Close the connection, for this reason.
    Close(&'static str),
}

/// Decides whether a connection has stalled: a fresh connection gets `header_timeout` to
/// send a whole request head, an idle keep-alive one `idle_timeout` before the next request and
/// then `header_timeout` from that request's first byte, a request body `idle_timeout`
/// between two reads, and a response `idle_timeout` while the client takes none of it. A
/// request being handled, or a response the client is reading, is never cut.
pub(crate) fn verdict(state: &State, now: Instant, options: &ConnectionOptions) -> Verdict {
    if state.upgraded {
        return Verdict::Keep(None);
    }
    let (deadline, reason) = if let Some(since) = state.write_blocked_since {
        // A client that stopped reading its response: whatever else goes on, it gets the
        // idle timeout to take the next bytes.
        (since + options.idle_timeout, "the client stopped reading")
    } else if state.in_flight > 0 {
        if state.bodies_waiting == 0 {
            return Verdict::Keep(None);
        }
        (
            state.last_read + options.idle_timeout,
            "the request body stalled",
        )
    } else if !state.served {
        (
            state.idle_since + options.header_timeout,
            "no request head in time",
        )
    } else {
        match state.head_started {
            Some(start) if !state.http2 => {
                (start + options.header_timeout, "request head too slow")
            }
            _ => (state.idle_since + options.idle_timeout, "idle"),
        }
    };
    if now >= deadline {
        Verdict::Close(reason)
    } else {
        Verdict::Keep(Some(deadline))
    }
}

/// Completes, with the reason, when the connection must close.
pub(crate) async fn watch(activity: &Activity, options: &ConnectionOptions) -> &'static str {
    loop {
        // Created before the state is read: a change in between leaves a permit.
        let changed = activity.changed.notified();
        match verdict(&activity.state(), Instant::now(), options) {
            Verdict::Close(reason) => return reason,
            Verdict::Keep(Some(at)) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = changed => {}
                }
            }
            Verdict::Keep(None) => changed.await,
        }
    }
}

impl Activity {
    pub(crate) fn new(now: Instant) -> Activity {
        Activity {
            state: Mutex::new(State {
                idle_since: now,
                served: false,
                head_started: None,
                last_read: now,
                in_flight: 0,
                bodies_waiting: 0,
                upgraded: false,
                http2: false,
                write_blocked_since: None,
            }),
            write_blocked: std::sync::atomic::AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    pub(crate) fn state(&self) -> State {
        *self.lock()
    }

    /// A read returned bytes.
    pub(crate) fn read(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        state.last_read = now;
        if state.in_flight == 0 && state.head_started.is_none() {
            state.head_started = Some(now);
            drop(state);
            // The deadline moves earlier: from the idle timeout to the header timeout.
            self.changed.notify_one();
        }
    }

    /// A write could not go on: the client's side is full.
    pub(crate) fn write_waiting(&self) {
        use std::sync::atomic::Ordering;
        if self.write_blocked.swap(true, Ordering::Relaxed) {
            return;
        }
        self.lock().write_blocked_since = Some(Instant::now());
        self.changed.notify_one();
    }

    /// A write went through.
    pub(crate) fn wrote(&self) {
        use std::sync::atomic::Ordering;
        if !self.write_blocked.swap(false, Ordering::Relaxed) {
            return;
        }
        self.lock().write_blocked_since = None;
        self.changed.notify_one();
    }

    pub(crate) fn request_started(&self, http2: bool) {
        let mut state = self.lock();
        state.in_flight += 1;
        state.served = true;
        state.http2 |= http2;
        state.head_started = None;
        drop(state);
        self.changed.notify_one();
    }

    /// The response is written (or the request was dropped).
    pub(crate) fn request_finished(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            state.head_started = None;
        }
        drop(state);
        self.changed.notify_one();
    }

    /// A request body started (`true`) or stopped (`false`) waiting for bytes.
    pub(crate) fn body_waiting(&self, waiting: bool) {
        let mut state = self.lock();
        if waiting {
            state.bodies_waiting += 1;
        } else {
            state.bodies_waiting = state.bodies_waiting.saturating_sub(1);
        }
        drop(state);
        self.changed.notify_one();
    }

    pub(crate) fn upgraded(&self) {
        self.lock().upgraded = true;
        self.changed.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn options() -> ConnectionOptions {
        ConnectionOptions {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
            certificate: None,
        }
    }

    fn fresh(start: Instant) -> State {
        Activity::new(start).state()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_fresh_connection_gets_the_header_timeout() {
        let start = Instant::now();
        let state = fresh(start);
        assert_eq!(
            verdict(&state, start + secs(9), &options()),
            Verdict::Keep(Some(start + secs(10)))
        );
        assert!(matches!(
            verdict(&state, start + secs(10), &options()),
            Verdict::Close(_)
        ));
    }

    #[test]
    fn an_idle_keep_alive_connection_gets_the_idle_timeout_then_the_header_timeout() {
        let start = Instant::now();
        let idle = State {
            served: true,
            idle_since: start + secs(5),
            ..fresh(start)
        };
        assert_eq!(
            verdict(&idle, start + secs(30), &options()),
            Verdict::Keep(Some(start + secs(65)))
        );
        assert_eq!(
            verdict(&idle, start + secs(65), &options()),
            Verdict::Close("idle")
        );
        let slow_head = State {
            head_started: Some(start + secs(30)),
            ..idle
        };
        assert_eq!(
            verdict(&slow_head, start + secs(40), &options()),
            Verdict::Close("request head too slow")
        );
        // HTTP/2 reads frames (pings, settings) between requests: only the idle rule applies.
        let http2 = State {
            http2: true,
            ..slow_head
        };
        assert_eq!(
            verdict(&http2, start + secs(40), &options()),
            Verdict::Keep(Some(start + secs(65)))
        );
    }

    #[test]
    fn a_request_is_cut_only_while_its_body_stalls() {
        let start = Instant::now();
        let handling = State {
            served: true,
            in_flight: 1,
            ..fresh(start)
        };
        assert_eq!(
            verdict(&handling, start + secs(3600), &options()),
            Verdict::Keep(None)
        );
        let waiting = State {
            bodies_waiting: 1,
            last_read: start + secs(20),
            ..handling
        };
        assert_eq!(
            verdict(&waiting, start + secs(79), &options()),
            Verdict::Keep(Some(start + secs(80)))
        );
        assert_eq!(
            verdict(&waiting, start + secs(80), &options()),
            Verdict::Close("the request body stalled")
        );
    }

    #[test]
    fn a_response_the_client_stopped_reading_is_cut_at_the_idle_timeout() {
        let start = Instant::now();
        let blocked = State {
            served: true,
            in_flight: 1,
            write_blocked_since: Some(start + secs(100)),
            ..fresh(start)
        };
        assert_eq!(
            verdict(&blocked, start + secs(159), &options()),
            Verdict::Keep(Some(start + secs(160)))
        );
        assert_eq!(
            verdict(&blocked, start + secs(160), &options()),
            Verdict::Close("the client stopped reading")
        );
    }

    #[test]
    fn an_upgraded_connection_is_left_alone() {
        let start = Instant::now();
        let state = State {
            upgraded: true,
            ..fresh(start)
        };
        assert_eq!(
            verdict(&state, start + secs(3600), &options()),
            Verdict::Keep(None)
        );
    }
}
