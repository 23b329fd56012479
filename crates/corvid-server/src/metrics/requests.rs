//! Request latency by database, method, route template and status class: one histogram per
//! series, recorded by a middleware around every route.
//!
//! Labels never carry what a client chooses freely, so the number of series stays bounded:
//! the route is axum's `MatchedPath` (`/databases/{db}/docs`, never the raw path), the
//! database only one that exists, the method one of the methods the routes answer (others are
//! `OTHER`), the status its class (`2xx`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use corvid_etl::Histogram;

use crate::metrics::exposition::{Exposition, Kind};
use crate::state::AppState;

/// The request latency histograms of a server.
#[derive(Default)]
pub(crate) struct RequestMetrics {
    series: RwLock<HashMap<RequestKey, Arc<Mutex<Histogram>>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RequestKey {
    database: String,
    method: &'static str,
    /// The route template; empty when no route matched.
    route: String,
    status_class: &'static str,
}

impl RequestMetrics {
    fn observe(&self, key: RequestKey, elapsed: std::time::Duration) {
        let found = read(&self.series).get(&key).cloned();
        let histogram = match found {
            Some(it) => it,
            None => write(&self.series).entry(key).or_default().clone(),
        };
        lock(&histogram).observe(elapsed);
    }

    /// Writes the `corvid_http_request_duration_seconds` family.
    pub fn write(&self, page: &mut Exposition) {
        const NAME: &str = "corvid_http_request_duration_seconds";
        let mut series: Vec<(RequestKey, Histogram)> = read(&self.series)
            .iter()
            .map(|(key, histogram)| (key.clone(), lock(histogram).clone()))
            .collect();
        series.sort_by(|a, b| {
            (&a.0.database, &a.0.route, a.0.method, a.0.status_class).cmp(&(
                &b.0.database,
                &b.0.route,
                b.0.method,
                b.0.status_class,
            ))
        });
        page.family(
            NAME,
            Kind::Histogram,
            "Time from a request's arrival to its response's head, by database, method, route template and status class.",
        );
        for (key, histogram) in &series {
            let labels = [
                ("database", key.database.as_str()),
                ("method", key.method),
                ("route", key.route.as_str()),
                ("status", key.status_class),
            ];
            page.histogram(NAME, &labels, histogram);
        }
    }
}

/// The middleware: times the request and records it under its series.
pub(crate) async fn record_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|it| it.as_str().to_owned());
    let method = method_label(request.method());
    let (mut parts, body) = request.into_parts();
    let database = match &route {
        Some(route) if route.contains("{db}") => {
            let params = RawPathParams::from_request_parts(&mut parts, &state).await;
            params
                .ok()
                .and_then(|params| {
                    params
                        .iter()
                        .find(|(name, _)| *name == "db")
                        .and_then(|(_, name)| state.storage().database(name))
                })
                .map(|it| it.name().to_owned())
        }
        _ => None,
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    let key = RequestKey {
        database: database.unwrap_or_default(),
        method,
        route: route.unwrap_or_default(),
        status_class: status_class(response.status().as_u16()),
    };
    state.request_metrics().observe(key, started.elapsed());
    response
}

fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "RESET" => "RESET",
        _ => "OTHER",
    }
}

fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
