//! What each route requires, who the caller is, and the one middleware that checks it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::auth::certificates::{CertificateDefinition, DatabaseAccess, SecurityClearance};
use crate::error::ApiError;
use crate::listener::PeerCertificate;
use crate::state::AppState;

/// What a route requires (RavenDB's `AuthorizationStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Anyone, with or without a certificate (RavenDB's `UnauthenticatedClients`).
    Nothing,
    /// Any registered certificate.
    ValidUser,
    /// A permission on the route's database, at least this level.
    Database(DatabaseAccess),
    /// Operator or ClusterAdmin.
    Operator,
    ClusterAdmin,
}

/// THE table: `(methods, path, need)`, first match wins; no methods means any. `{db}` matches one
/// path segment (the database), a final `*` the rest of the path. Reads of a database are its
/// GET and HEAD routes and the POSTs that only read (a `multi_get`'s inner requests are each
/// checked again on their own route).
const ROUTES: &[(&[&str], &str, Need)] = &[
    (&[], "/build/version", Need::Nothing),
    // The Studio's files hold no data; what it shows comes through the routes below.
    (&["GET", "HEAD"], "/", Need::Nothing),
    (&["GET", "HEAD"], "/studio", Need::Nothing),
    (&["GET", "HEAD"], "/studio/*", Need::Nothing),
    // Load balancers' health checks carry no certificate.
    (&["GET", "HEAD"], "/setup/alive", Need::Nothing),
    (&["GET", "HEAD"], "/health/ready", Need::Nothing),
    // A Prometheus scrape: the whole server's figures.
    (&["GET"], "/metrics", Need::Operator),
    (&["GET"], "/admin/certificates", Need::Operator),
    (&[], "/admin/certificates", Need::ClusterAdmin),
    (&["GET"], "/certificates/whoami", Need::ValidUser),
    // Reaches out to any URL, as RavenDB's (Operator there too).
    (&["POST"], "/admin/test-connection", Need::Operator),
    // Adding and removing nodes, and the nodes' own Raft messages (RavenDB: ClusterNode or
    // ClusterAdmin certificates).
    (&[], "/admin/cluster/*", Need::ClusterAdmin),
    (&[], "/cluster/raft/*", Need::ClusterAdmin),
    (&["POST"], "/cluster/join", Need::ClusterAdmin),
    (&["POST"], "/cluster/leave", Need::ClusterAdmin),
    (&["POST"], "/cluster/command", Need::ClusterAdmin),
    (&["POST"], "/cluster/databases/*", Need::ClusterAdmin),
    (&[], "/admin/*", Need::Operator),
    (
        &[],
        "/databases/{db}/admin/*",
        Need::Database(DatabaseAccess::Admin),
    ),
    // A GET that writes: it reserves a range of ids.
    (
        &[],
        "/databases/{db}/hilo/next",
        Need::Database(DatabaseAccess::ReadWrite),
    ),
    (
        &["GET", "HEAD"],
        "/databases/{db}/*",
        Need::Database(DatabaseAccess::Read),
    ),
    (
        &["POST"],
        "/databases/{db}/queries",
        Need::Database(DatabaseAccess::Read),
    ),
    (
        &["POST"],
        "/databases/{db}/streams/queries",
        Need::Database(DatabaseAccess::Read),
    ),
    (
        &["POST"],
        "/databases/{db}/multi_get",
        Need::Database(DatabaseAccess::Read),
    ),
    (
        &[],
        "/databases/{db}/*",
        Need::Database(DatabaseAccess::ReadWrite),
    ),
    (&[], "*", Need::ValidUser),
];

/// Who sent a request, resolved once per request from its connection's certificate.
#[derive(Debug)]
pub(crate) enum Identity {
    NoCertificate,
    /// A certificate that is not registered.
    Unknown {
        name: String,
        thumbprint: String,
    },
    Known(Arc<CertificateDefinition>),
}

/// The caller of a request, for handlers (`whoami`) and a `multi_get`'s inner requests.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub Arc<Identity>);

/// What `method path` requires, and the database it names.
pub(crate) fn required<'p>(method: &Method, path: &'p str) -> (Need, Option<&'p str>) {
    let segments: Vec<&str> = path.split('/').filter(|it| !it.is_empty()).collect();
    for (methods, pattern, need) in ROUTES {
        if !methods.is_empty() && !methods.contains(&method.as_str()) {
            continue;
        }
        if let Some(database) = matches(pattern, &segments) {
            return (*need, database);
        }
    }
    (Need::ValidUser, None)
}

/// `Some(database)` when `segments` match `pattern`.
fn matches<'p>(pattern: &str, segments: &[&'p str]) -> Option<Option<&'p str>> {
    let mut database = None;
    let mut rest = segments.iter();
    for part in pattern.split('/').filter(|it| !it.is_empty()) {
        if part == "*" {
            return Some(database);
        }
        let segment = rest.next()?;
        if part == "{db}" {
            database = Some(*segment);
        } else if part != *segment {
            return None;
        }
    }
    rest.next().is_none().then_some(database)
}

/// Decides a request; `Err` is RavenDB's message for the 403.
pub(crate) fn decide(
    need: Need,
    database: Option<&str>,
    identity: &Identity,
) -> Result<(), String> {
    if need == Need::Nothing {
        return Ok(());
    }
    let definition = match identity {
        Identity::NoCertificate => {
            return Err("This server requires client certificate for authentication, but none was provided by the client.".to_owned());
        }
        Identity::Unknown { name, thumbprint } => {
            return Err(format!(
                "The supplied client certificate '{name}(Thumbprint: {thumbprint})' is unknown to the server. In order to register your certificate please contact your system administrator."
            ));
        }
        Identity::Known(definition) => definition,
    };
    let name = format!("{}(Thumbprint: {})", definition.name, definition.thumbprint);
    if definition.expired() {
        return Err(format!(
            "The supplied client certificate '{name}' has expired on {}. Please contact your system administrator in order to obtain a new one.",
            definition.not_after.as_deref().unwrap_or("?")
        ));
    }
    let clearance = definition.security_clearance;
    let admin = matches!(
        clearance,
        SecurityClearance::ClusterAdmin | SecurityClearance::ClusterNode
    );
    let operator = admin || clearance == SecurityClearance::Operator;
    let allowed = match need {
        Need::Nothing => true,
        Need::ValidUser => clearance != SecurityClearance::UnauthenticatedClients,
        Need::Database(level) => database
            .and_then(|database| definition.access(database))
            .is_some_and(|access| access >= level),
        Need::Operator => operator,
        Need::ClusterAdmin => admin,
    };
    if allowed {
        return Ok(());
    }
    let target = database.unwrap_or("the server");
    let mut message = if operator {
        format!(
            "Insufficient security clearance to access {target} using provided client certificate '{name}'."
        )
    } else {
        format!(
            "Could not authorize access to {target} using provided client certificate '{name}'."
        )
    };
    match need {
        Need::ClusterAdmin => {
            message.push_str(" ClusterAdmin access is required but not given to this certificate")
        }
        Need::Operator => message.push_str(
            " Operator/ClusterAdmin access is required but not given to this certificate",
        ),
        Need::Database(DatabaseAccess::Admin) => {
            message.push_str(" DatabaseAdmin access is required but not given to this certificate")
        }
        Need::Database(_) | Need::ValidUser | Need::Nothing => {}
    }
    Err(message)
}

/// Checks every request of a secured server against [`ROUTES`]; RavenDB answers a refusal with
/// 403 `{"Type": "InvalidAuth", "Message": ...}`.
pub(crate) async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if !state.secured() {
        return next.run(request).await;
    }
    let caller = match request.extensions().get::<Caller>() {
        // A `multi_get`'s inner request: its caller came with it.
        Some(caller) => caller.clone(),
        None => {
            let peer = request
                .extensions()
                .get::<PeerCertificate>()
                .and_then(|it| it.0.as_ref());
            Caller(Arc::new(identify(&state, peer.map(|it| it.as_ref()))))
        }
    };
    let (need, database) = required(request.method(), request.uri().path());
    if let Err(message) = decide(need, database, &caller.0) {
        return ApiError::new(StatusCode::FORBIDDEN, "InvalidAuth", message).into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn identify(state: &AppState, der: Option<&[u8]>) -> Identity {
    let Some(der) = der else {
        return Identity::NoCertificate;
    };
    let thumbprint = crate::auth::thumbprint(der);
    match state.certificates().get(&thumbprint) {
        Some(definition) => Identity::Known(definition),
        None => Identity::Unknown {
            name: x509_parser::parse_x509_certificate(der)
                .map(|(_, parsed)| parsed.subject().to_string())
                .unwrap_or_default(),
            thumbprint,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn known(clearance: SecurityClearance, permissions: &[(&str, DatabaseAccess)]) -> Identity {
        Identity::Known(Arc::new(CertificateDefinition {
            name: "test".into(),
            certificate: String::new(),
            thumbprint: "AB".into(),
            security_clearance: clearance,
            permissions: permissions
                .iter()
                .map(|(name, access)| ((*name).to_owned(), *access))
                .collect::<BTreeMap<_, _>>(),
            not_after: None,
            public_key_pinning_hash: String::new(),
            collection_primary_key: String::new(),
            collection_secondary_keys: Vec::new(),
        }))
    }

    fn allowed(method: Method, path: &str, identity: &Identity) -> bool {
        let (need, database) = required(&method, path);
        decide(need, database, identity).is_ok()
    }

    #[test]
    fn the_table_maps_each_kind_of_route() {
        let read = Need::Database(DatabaseAccess::Read);
        let write = Need::Database(DatabaseAccess::ReadWrite);
        let admin = Need::Database(DatabaseAccess::Admin);
        let cases = [
            (Method::GET, "/build/version", Need::Nothing, None),
            (Method::PUT, "/admin/certificates", Need::ClusterAdmin, None),
            (Method::GET, "/admin/certificates", Need::Operator, None),
            (Method::PUT, "/admin/databases", Need::Operator, None),
            (Method::GET, "/databases/Shop/docs", read, Some("Shop")),
            (Method::POST, "/databases/Shop/queries", read, Some("Shop")),
            (
                Method::PATCH,
                "/databases/Shop/queries",
                write,
                Some("Shop"),
            ),
            (Method::PUT, "/databases/Shop/docs", write, Some("Shop")),
            (
                Method::GET,
                "/databases/Shop/admin/etl",
                admin,
                Some("Shop"),
            ),
            // Test routes run a script on a document: database administrators only.
            (
                Method::POST,
                "/databases/Shop/admin/etl/queue/test",
                admin,
                Some("Shop"),
            ),
            (Method::GET, "/databases", Need::ValidUser, None),
            (Method::GET, "/topology", Need::ValidUser, None),
        ];
        for (method, path, need, database) in cases {
            assert_eq!(required(&method, path), (need, database), "{method} {path}");
        }
    }

    #[test]
    fn each_clearance_and_permission_against_each_kind_of_route() {
        let reader = known(
            SecurityClearance::ValidUser,
            &[("shop", DatabaseAccess::Read)],
        );
        let writer = known(
            SecurityClearance::ValidUser,
            &[("shop", DatabaseAccess::ReadWrite)],
        );
        let db_admin = known(
            SecurityClearance::ValidUser,
            &[("shop", DatabaseAccess::Admin)],
        );
        let operator = known(SecurityClearance::Operator, &[]);
        let cluster_admin = known(SecurityClearance::ClusterAdmin, &[]);
        let routes = [
            (Method::GET, "/databases/Shop/docs"),
            (Method::PUT, "/databases/Shop/docs"),
            (Method::POST, "/databases/Shop/admin/etl"),
            (Method::GET, "/databases/Other/docs"),
            (Method::PUT, "/admin/databases"),
            (Method::PUT, "/admin/certificates"),
        ];
        let expected = [
            (&reader, [true, false, false, false, false, false]),
            (&writer, [true, true, false, false, false, false]),
            (&db_admin, [true, true, true, false, false, false]),
            (&operator, [true, true, true, true, true, false]),
            (&cluster_admin, [true, true, true, true, true, true]),
        ];
        for (identity, answers) in expected {
            for ((method, path), answer) in routes.iter().zip(answers) {
                assert_eq!(
                    allowed(method.clone(), path, identity),
                    answer,
                    "{identity:?} {method} {path}"
                );
            }
        }
        let anonymous = Identity::NoCertificate;
        assert!(allowed(Method::GET, "/build/version", &anonymous));
        assert!(!allowed(Method::GET, "/databases", &anonymous));
    }
}
