//! The request guard: what keeps a web page the user happens to visit from using a Corvid it
//! can reach (issue 18, finding 2), in secured and unsecured mode alike.
//!
//! - **Host.** DNS rebinding points a name the attacker controls at 127.0.0.1, so the page's
//!   requests carry that name in `Host`. Only names the server is known by are served: IP
//!   literals (a rebinding attack always uses a name), `localhost`, and the configured names.
//! - **Origin.** A browser sends `Origin` with every cross-origin state-changing request and every
//!   WebSocket handshake. Those are refused unless the origin is the server's own (the origin's
//!   host and port are the request's `Host`) or configured. Requests without `Origin` (official
//!   clients, curl) are not browser cross-origin requests and pass.
//! - **Content-Type.** The three content types a page may send cross-site without a CORS
//!   preflight (`text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`) are
//!   refused with 415 on every POST route that takes JSON (POST is the one state-changing
//!   method a page can send without a preflight), so even a browser that omits `Origin`
//!   cannot post a form into the API. (`bulk_docs` takes `multipart/form-data`, which RavenDB's
//!   clients send for batches with attachments; there the `Origin` check is the protection.)

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Which `Host` and `Origin` values the server accepts besides its own.
#[derive(Debug, Clone, Default)]
pub struct RequestGuard {
    /// Host names (no port) served besides IP literals and `localhost`, lower case.
    pub allowed_hosts: Vec<String>,
    /// Every `Host` is served (`--allowed-hosts '*'`).
    pub any_host: bool,
    /// Origins (`scheme://host[:port]`) allowed to make state-changing requests besides the
    /// server's own, lower case, without a trailing slash.
    pub allowed_origins: Vec<String>,
    /// Every origin is allowed (`--allowed-origins '*'`).
    pub any_origin: bool,
}

impl RequestGuard {
    /// Builds a guard from comma-separated command-line lists; `*` allows everything.
    pub fn from_lists(hosts: &[String], origins: &[String]) -> Result<RequestGuard, String> {
        let mut guard = RequestGuard::default();
        for host in hosts.iter().flat_map(|it| it.split(',')) {
            let host = host.trim().to_ascii_lowercase();
            match host.as_str() {
                "" => {}
                "*" => guard.any_host = true,
                _ if host.contains(['/', ':', '@']) && !host.starts_with('[') => {
                    return Err(format!(
                        "--allowed-hosts takes host names without scheme or port, not '{host}'"
                    ));
                }
                _ => guard.allowed_hosts.push(host),
            }
        }
        for origin in origins.iter().flat_map(|it| it.split(',')) {
            let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
            match origin.as_str() {
                "" => {}
                "*" => guard.any_origin = true,
                _ if origin.starts_with("http://") || origin.starts_with("https://") => {
                    guard.allowed_origins.push(origin)
                }
                _ => {
                    return Err(format!(
                        "--allowed-origins takes origins such as https://studio.example.com, not '{origin}'"
                    ));
                }
            }
        }
        Ok(guard)
    }

    fn check(&self, method: &Method, headers: &HeaderMap, path: &str) -> Result<(), ApiError> {
        let host = headers
            .get(header::HOST)
            .and_then(|it| it.to_str().ok())
            .map(str::to_ascii_lowercase);
        if let Some(host) = &host
            && !self.host_allowed(host)
        {
            return Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "Corvid.Server.HostNotAllowedException",
                format!(
                    "this server does not serve the host name '{}'; start it with --allowed-hosts to serve it",
                    host_name(host)
                ),
            ));
        }
        let state_changing = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let websocket = headers
            .get(header::UPGRADE)
            .and_then(|it| it.to_str().ok())
            .is_some_and(|it| it.eq_ignore_ascii_case("websocket"));
        if (state_changing || websocket)
            && let Some(origin) = headers.get(header::ORIGIN)
        {
            let origin = origin.to_str().unwrap_or("null").to_ascii_lowercase();
            if !self.origin_allowed(&origin, host.as_deref()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "Corvid.Server.CrossOriginRequestException",
                    format!(
                        "requests from the web origin '{origin}' may not change this server; start it with --allowed-origins to allow that origin"
                    ),
                ));
            }
        }
        // POST is the one state-changing method a page can send cross-site without a preflight.
        if *method == Method::POST
            && !takes_any_content_type(path)
            && let Some(content_type) = headers.get(header::CONTENT_TYPE)
        {
            let content_type = content_type.to_str().unwrap_or("").to_ascii_lowercase();
            let essence = content_type.split(';').next().unwrap_or("").trim();
            let refused = match essence {
                "text/plain" | "application/x-www-form-urlencoded" => true,
                // RavenDB's clients send a batch with attachments as multipart/form-data.
                "multipart/form-data" => !path.ends_with("/bulk_docs"),
                _ => false,
            };
            if refused {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Corvid.Server.UnsupportedMediaTypeException",
                    format!(
                        "this endpoint takes JSON, not {essence}; send Content-Type: application/json (curl: --json)"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        if self.any_host {
            return true;
        }
        let name = host_name(host);
        name == "localhost"
            || name.parse::<std::net::IpAddr>().is_ok()
            || (name.starts_with('[')
                && name.ends_with(']')
                && name[1..name.len() - 1]
                    .parse::<std::net::Ipv6Addr>()
                    .is_ok())
            || self.allowed_hosts.iter().any(|it| it == name)
    }

    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        if self.any_origin || self.allowed_origins.iter().any(|it| it == origin) {
            return true;
        }
        let Some((scheme, authority)) = origin.split_once("://") else {
            // `null` (sandboxed frames, file: pages) and anything unparsable.
            return false;
        };
        let Some(host) = host else {
            return false;
        };
        let default_port = match scheme {
            "http" => "80",
            "https" => "443",
            _ => return false,
        };
        with_port(authority, default_port) == with_port(host, default_port)
    }
}

/// The host name of a `Host` value: without its port, IPv6 literals keep their brackets.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, _)) => name,
        None => host,
    }
}

fn with_port(authority: &str, default_port: &str) -> String {
    let name = host_name(authority);
    if name.len() == authority.len() {
        format!("{authority}:{default_port}")
    } else {
        authority.to_owned()
    }
}

/// Attachments are raw bytes of any content type (and a browser cannot PUT cross-site without
/// a preflight, which the server never grants).
fn takes_any_content_type(path: &str) -> bool {
    path.ends_with("/attachments")
}

/// The middleware: answers a refused request itself, passes the others on.
pub(crate) async fn guard_requests(
    State(guard): State<std::sync::Arc<RequestGuard>>,
    request: Request,
    next: Next,
) -> Response {
    match guard.check(request.method(), request.headers(), request.uri().path()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn hosts() {
        let guard = RequestGuard::from_lists(&["db.example.com".into()], &[]).unwrap();
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "10.1.2.3",
            "DB.example.com:443",
            "localhost",
        ] {
            assert!(guard.host_allowed(&host.to_ascii_lowercase()), "{host}");
        }
        for host in [
            "attacker.example:8080",
            "localhost.attacker.example",
            "[evil]",
        ] {
            assert!(!guard.host_allowed(host), "{host}");
        }
    }

    #[test]
    fn origins() {
        let guard = RequestGuard::from_lists(&[], &["https://studio.example.com/".into()]).unwrap();
        let ok = |origin: &str, host: &str| guard.origin_allowed(origin, Some(host));
        assert!(ok("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(ok("http://localhost", "localhost:80"));
        assert!(ok("https://studio.example.com", "127.0.0.1:8080"));
        assert!(!ok("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!ok("null", "127.0.0.1:8080"));
        assert!(!ok("http://evil.example", "127.0.0.1:8080"));
        assert!(RequestGuard::from_lists(&[], &["studio.example.com".into()]).is_err());
        assert!(RequestGuard::from_lists(&["http://x".into()], &[]).is_err());
    }

    #[test]
    fn content_types() {
        let guard = RequestGuard::default();
        let post = |content_type: &str, path: &str| {
            guard.check(
                &Method::POST,
                &headers(&[("host", "127.0.0.1:1"), ("content-type", content_type)]),
                path,
            )
        };
        assert!(post("application/json; charset=utf-8", "/databases/x/queries").is_ok());
        assert_eq!(
            post("text/plain;charset=UTF-8", "/databases/x/queries")
                .unwrap_err()
                .status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert!(post("Multipart/Form-Data; boundary=x", "/databases/x/queries").is_err());
        assert!(post("multipart/form-data; boundary=x", "/databases/x/bulk_docs").is_ok());
        assert!(post("text/plain", "/databases/x/attachments").is_ok());
        // Reads are never refused for their content type.
        assert!(
            guard
                .check(
                    &Method::GET,
                    &headers(&[("content-type", "text/plain")]),
                    "/databases/x/docs"
                )
                .is_ok()
        );
    }
}
