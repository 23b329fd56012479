//! HTTPS: the rustls configuration every HTTP client of Corvid is built with.
//!
//! reqwest is built without a crypto provider of its own (its default, aws-lc-rs, costs about a
//! minute of C build), so it must never build a TLS configuration itself: every client gets one
//! from here, on the ring provider, through `tls_backend_preconfigured`. A server's certificate
//! is verified against the system's roots (`rustls-native-certs`) plus any extra roots given
//! (self-signed or private CAs), with its host name checked. A client certificate, when given,
//! is presented to servers that ask for one, as RavenDB's ETL presents the server's own
//! certificate to its destination.

use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain and its private key, presented to servers that ask for a client
/// certificate.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The certificate first, then its issuers.
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ClientIdentity {
    /// An identity from a certificate chain (the certificate first) and its key; `None` when
    /// the chain is empty.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Option<ClientIdentity> {
        if chain.is_empty() {
            return None;
        }
        Some(ClientIdentity {
            chain,
            key: Arc::new(key),
        })
    }

    /// An identity from PEM text holding the certificate chain and the private key.
    pub fn from_pem(pem: &[u8]) -> Result<ClientIdentity, TlsError> {
        let chain = pem_certificates(pem)?;
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsError::NoPrivateKey)?;
        ClientIdentity::new(chain, key).ok_or(TlsError::NoCertificate)
    }

    /// The certificate presented (the first of the chain).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }
}

/// How a client verifies HTTPS servers and whether it presents a certificate: a built rustls
/// configuration, shared by every client made with it. Cloning is cheap.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    n_extra_roots: usize,
    with_identity: bool,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("extra_roots", &self.n_extra_roots)
            .field("client_certificate", &self.with_identity)
            .finish()
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no PEM certificate found")]
    NoCertificate,
    #[error("no PEM private key found")]
    NoPrivateKey,
    #[error("a trusted certificate cannot be used as a root: {source}")]
    InvalidRoot {
        #[source]
        source: rustls::Error,
    },
    #[error("the client certificate cannot be used: {source}")]
    InvalidIdentity {
        #[source]
        source: rustls::Error,
    },
}

impl ClientTls {
    /// Trusts the system's roots and `extra_roots`; presents `identity` to servers that ask for
    /// a client certificate. Reads the system's roots (use [`ClientTls::system`] when there is
    /// nothing to add).
    pub fn new(
        extra_roots: &[CertificateDer<'static>],
        identity: Option<&ClientIdentity>,
    ) -> Result<ClientTls, TlsError> {
        let mut roots = system_roots().clone();
        for root in extra_roots {
            roots
                .add(root.clone())
                .map_err(|source| TlsError::InvalidRoot { source })?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(|source| TlsError::InvalidIdentity { source })?
            .with_root_certificates(roots);
        let mut config = match identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(|source| TlsError::InvalidIdentity { source })?,
            None => builder.with_no_client_auth(),
        };
        // reqwest is built without HTTP/2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ClientTls {
            config: Arc::new(config),
            n_extra_roots: extra_roots.len(),
            with_identity: identity.is_some(),
        })
    }

    /// The system's roots only, no client certificate; built once per process.
    pub fn system() -> ClientTls {
        static SYSTEM: OnceLock<ClientTls> = OnceLock::new();
        SYSTEM
            .get_or_init(|| {
                // Invariant: with no extra root and no identity nothing can be refused (ring
                // supports TLS 1.2 and 1.3).
                ClientTls::new(&[], None).expect("a configuration with the system's roots")
            })
            .clone()
    }

    /// A reqwest builder with this TLS configuration and no proxy.
    pub fn http_client_builder(&self) -> reqwest::ClientBuilder {
        with_tls(reqwest_builder(), self)
    }

    /// Whether a client certificate is presented.
    pub fn has_identity(&self) -> bool {
        self.with_identity
    }

    pub(crate) fn rustls_config(&self) -> rustls::ClientConfig {
        (*self.config).clone()
    }
}

/// Every `CERTIFICATE` of a PEM text, as DER (a CA bundle, or a chain).
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::NoCertificate)?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certificates)
}

/// A reqwest builder with Corvid's TLS (the system's roots, on ring) and no proxy: the only
/// way to start a reqwest client in Corvid (`reqwest::Client::new()` would panic, reqwest
/// having no crypto provider of its own). [`ClientTls::http_client_builder`] for other roots
/// or a client certificate.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    ClientTls::system().http_client_builder()
}

pub(crate) fn with_tls(builder: reqwest::ClientBuilder, tls: &ClientTls) -> reqwest::ClientBuilder {
    builder.tls_backend_preconfigured(tls.rustls_config())
}

/// A reqwest builder without TLS yet; pass it through [`with_tls`] before building.
#[allow(clippy::disallowed_methods)] // The one place a reqwest builder is made.
pub(crate) fn reqwest_builder() -> reqwest::ClientBuilder {
    // Proxy settings would come from env vars, and only the `corvid` binary reads those.
    reqwest::Client::builder().no_proxy()
}

/// Whether a request failed in the TLS handshake (an untrusted or mismatched certificate, a
/// refused client certificate): the connection was made, and retrying will not change it.
pub(crate) fn is_tls_failure(error: &reqwest::Error) -> bool {
    has_rustls_error(error)
}

/// Looks for a `rustls::Error` among an error's sources. hyper-util wraps tokio-rustls's
/// `io::Error` in another `io::Error`, and an `io::Error` reports as its source the source of
/// the error it wraps, not that error: so each `io::Error` is opened too.
fn has_rustls_error(error: &(dyn StdError + 'static)) -> bool {
    if error.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
        && has_rustls_error(inner)
    {
        return true;
    }
    error.source().is_some_and(has_rustls_error)
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The system's roots, read once per process; a machine without any gets an empty store
/// (only extra roots are trusted then).
fn system_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "cannot read a system root certificate");
        }
        let mut roots = rustls::RootCertStore::empty();
        let (_, n_ignored) = roots.add_parsable_certificates(loaded.certs);
        if n_ignored > 0 {
            tracing::debug!(n_ignored, "system root certificates rustls cannot use");
        }
        roots
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_certificates_is_refused() {
        assert!(matches!(
            pem_certificates(b"nothing here"),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            ClientIdentity::from_pem(b""),
            Err(TlsError::NoCertificate)
        ));
    }

    #[test]
    fn a_root_that_is_not_a_certificate_is_refused() {
        let error = ClientTls::new(&[CertificateDer::from(vec![1, 2, 3])], None).unwrap_err();
        assert!(matches!(error, TlsError::InvalidRoot { .. }), "{error}");
    }

    #[test]
    fn a_rustls_error_is_found_inside_nested_io_errors() {
        let handshake = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let connect = std::io::Error::other(handshake);
        assert!(has_rustls_error(&connect));
        let refused =
            std::io::Error::other(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!has_rustls_error(&refused));
    }

    #[test]
    fn the_system_configuration_is_built_once() {
        let first = ClientTls::system();
        let second = ClientTls::system();
        assert!(Arc::ptr_eq(&first.config, &second.config));
        assert!(!first.has_identity());
    }
}
