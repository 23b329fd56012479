//! Why a query text was refused.

/// Both kinds carry the line and column of the offending token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum QueryError {
    /// Malformed RQL (RavenDB's `InvalidQueryException`).
    #[error("{line}:{column} {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// RQL that RavenDB accepts and Corvid does not (RavenDB's `NotSupportedException`).
    #[error("{line}:{column} {feature} is not supported by Corvid")]
    NotSupported {
        line: usize,
        column: usize,
        feature: String,
    },
}
