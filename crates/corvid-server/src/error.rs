//! `ApiError`: every failure a handler returns, mapped to RavenDB's status codes and JSON shape
//! `{Url, Type, Message, Error}` so the official clients raise the right exceptions.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use corvid_store::{OpenError, ReadError, WriteError};

/// An error answer. The body is rendered by [`crate::http::render_errors`], which knows the
/// request URL.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// RavenDB's exception type name; clients map it by its last segment.
    pub type_name: &'static str,
    pub message: String,
    /// Set for unknown databases: clients raise `DatabaseDoesNotExistException` on it.
    pub missing_database: Option<String>,
}

/// The part of an error the rendering middleware turns into the JSON body.
#[derive(Debug, Clone)]
pub(crate) struct ErrorBody {
    pub type_name: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, type_name: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            type_name,
            message: message.into(),
            missing_database: None,
        }
    }

    /// A 400 for input the client must fix.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "Raven.Client.Exceptions.BadRequestException",
            message,
        )
    }

    /// A 503 with `Database-Missing`, as RavenDB answers for an unknown database.
    pub fn database_missing(name: &str) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            type_name: "Raven.Client.Exceptions.Database.DatabaseDoesNotExistException",
            message: format!("Database '{name}' was not found"),
            missing_database: Some(name.to_owned()),
        }
    }

    pub fn not_found(type_name: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, type_name, message)
    }

    pub fn concurrency(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::CONFLICT,
            "Raven.Client.Exceptions.ConcurrencyException",
            message,
        )
    }

    /// A 500; the details go to the log, the client gets a generic message.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "System.InvalidOperationException",
            "internal server error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(name) = &self.missing_database
            && let Ok(value) = HeaderValue::from_str(name)
        {
            response.headers_mut().insert("Database-Missing", value);
        }
        response.extensions_mut().insert(ErrorBody {
            type_name: self.type_name,
            message: self.message,
        });
        response
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match &error {
            WriteError::Concurrency { .. } => ApiError::concurrency(error.to_string()),
            WriteError::DocumentMissing { .. } => ApiError::not_found(
                "Raven.Client.Exceptions.Documents.DocumentDoesNotExistException",
                error.to_string(),
            ),
            WriteError::InvalidId { .. }
            | WriteError::InvalidDocument { .. }
            | WriteError::InvalidAttachmentName { .. }
            // A request's sender abandons it on bad input (and reports that input itself).
            | WriteError::Abandoned => ApiError::bad_request(error.to_string()),
            WriteError::Closed { name } => ApiError::database_missing(name),
            WriteError::Storage(_) => ApiError::internal(error),
            WriteError::Unavailable(message) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Raven.Client.Exceptions.Cluster.NoLeaderException",
                message.clone(),
            ),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        ApiError::internal(error)
    }
}

impl From<OpenError> for ApiError {
    fn from(error: OpenError) -> Self {
        match &error {
            OpenError::AlreadyExists { .. } => ApiError::concurrency(error.to_string()),
            OpenError::NotFound { name } => ApiError {
                status: StatusCode::NOT_FOUND,
                ..ApiError::database_missing(name)
            },
            OpenError::InvalidName { .. } | OpenError::InvalidDatabaseId { .. } => {
                ApiError::bad_request(error.to_string())
            }
            OpenError::Storage(_) => ApiError::internal(error),
        }
    }
}

impl From<corvid_cluster::ClusterError> for ApiError {
    fn from(error: corvid_cluster::ClusterError) -> Self {
        use corvid_cluster::ClusterError;
        match error {
            ClusterError::BadRequest(message) | ClusterError::Unreachable(message) => {
                ApiError::bad_request(message)
            }
            ClusterError::NotFound(message) => {
                ApiError::not_found("System.InvalidOperationException", message)
            }
            ClusterError::NoLeader(message) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Raven.Client.Exceptions.Cluster.NoLeaderException",
                message,
            ),
            ClusterError::Remote { status, message } => ApiError::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                if status == 400 {
                    "Raven.Client.Exceptions.BadRequestException"
                } else {
                    "System.InvalidOperationException"
                },
                message,
            ),
            ClusterError::Internal(message) => ApiError::internal(message),
        }
    }
}
