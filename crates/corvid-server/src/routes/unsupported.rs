//! The RavenDB features Corvid does not have answer one clean error naming the feature, so an
//! application learns at once what is missing instead of reading a confusing "no route" error.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;

use crate::error::ApiError;
use crate::state::AppState;

/// The error type: the official Node.js client raises an error named `NotSupportedException`
/// for it (it keeps the last segment of a `Raven.Client.Exceptions.` type); the Python client,
/// which knows no such class, raises a `RavenException` carrying the message.
const NOT_SUPPORTED: &str = "Raven.Client.Exceptions.NotSupportedException";

/// The features, each with the paths (below `/databases/{db}`) that belong to it.
const UNSUPPORTED_FEATURES: &[(&str, &[&str])] = &[
    ("static indexes", &["/admin/indexes"]),
    ("counters", &["/counters"]),
    (
        "time series",
        &[
            "/timeseries",
            "/timeseries/{*rest}",
            "/admin/timeseries/config",
        ],
    ),
    (
        "revisions",
        &[
            "/revisions",
            "/revisions/{*rest}",
            "/admin/revisions/config",
        ],
    ),
    (
        "subscriptions",
        &["/subscriptions", "/subscriptions/{*rest}"],
    ),
    ("compare exchange", &["/cmpxchg", "/cmpxchg/{*rest}"]),
];

/// 501 Not Implemented: the request is well formed, the server lacks the feature.
pub(crate) fn not_supported(feature: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        NOT_SUPPORTED,
        format!("Corvid does not support {feature}"),
    )
}

/// The routes of every unsupported feature, each answering every method with [`not_supported`].
pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for (feature, paths) in UNSUPPORTED_FEATURES {
        for path in *paths {
            router = router.route(
                &format!("/databases/{{db}}{path}"),
                any(move || async move { not_supported(feature) }),
            );
        }
    }
    router
}
