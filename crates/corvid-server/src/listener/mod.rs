//! Corvid's own accept loop, in place of `axum::serve`: a server on the open internet needs
//! limits that `axum::serve` does not have.
//!
//! - a **connection cap**: past it, connections wait in the kernel's backlog;
//! - a **header timeout**: a connection that opens and sends nothing, or sends part of a request
//!   head and stalls (slowloris), is closed;
//! - an **idle timeout**: a keep-alive connection with no request, or a request whose body stops
//!   arriving, is closed;
//! - **HTTPS** with the server's certificate, asking clients for theirs ([`tls`]);
//! - **graceful shutdown**: no new connections; requests in flight finish first.
//!
//! Each connection runs on hyper-util's auto builder (HTTP/1.1 and HTTP/2, with upgrades for the
//! Changes API's WebSocket) next to a [`watchdog`] that closes it when one of the timeouts
//! passes. What counts as "stalled" is one pure function, [`watchdog::verdict`].

mod accept;
mod connection;
mod options;
mod tls;
mod watchdog;

pub use accept::{raise_open_files_limit, serve};
pub use options::ConnectionOptions;
pub(crate) use tls::PeerCertificate;
pub use tls::{CertificateError, ServerCertificate, first_pem_certificate};
