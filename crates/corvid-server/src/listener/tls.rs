//! HTTPS: the server's certificate (PEM or PFX, as RavenDB's `Security.Certificate.Path`), and
//! client certificates requested but not required at the TLS layer.
//!
//! RavenDB's model: the handshake accepts any client certificate (or none); what a certificate
//! may do is decided per request by its thumbprint in the server's certificate store
//! (`crate::auth`). So the verifier below checks only that the client holds the certificate's
//! key (the handshake signature), not who issued it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The server's certificate chain and key, loaded.
#[derive(Clone)]
pub struct ServerCertificate {
    /// The server's certificate first, then its issuers.
    pub chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why a certificate could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key (pass --certificate-key, or a PFX file)")]
    NoKey { path: PathBuf },
    #[error("cannot open the PFX file {path}: {message} (wrong --certificate-password?)")]
    Pfx { path: PathBuf, message: String },
    #[error("the certificate and key cannot serve TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The TLS configuration of an HTTPS listener.
pub(crate) type TlsConfig = Arc<rustls::ServerConfig>;

/// The client certificate a TLS connection presented, on every request of that connection;
/// `None` inside when the client sent none.
#[derive(Debug, Clone)]
pub(crate) struct PeerCertificate(pub Option<CertificateDer<'static>>);

impl ServerCertificate {
    /// Loads a PEM file (the certificate chain, and the key unless `key` names another PEM
    /// file) or a PFX/PKCS#12 file (by its `.pfx` or `.p12` extension, opened with `password`).
    pub fn load(
        certificate: &Path,
        key: Option<&Path>,
        password: Option<&str>,
    ) -> Result<ServerCertificate, CertificateError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| CertificateError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let bytes = read(certificate)?;
        let is_pfx = certificate
            .extension()
            .and_then(|it| it.to_str())
            .is_some_and(|it| it.eq_ignore_ascii_case("pfx") || it.eq_ignore_ascii_case("p12"));
        if is_pfx && key.is_none() {
            return ServerCertificate::from_pfx(&bytes, password.unwrap_or(""), certificate);
        }
        let chain = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|chain| !chain.is_empty())
            .ok_or_else(|| CertificateError::NoCertificate {
                path: certificate.to_owned(),
            })?;
        let key_path = key.unwrap_or(certificate);
        let key_bytes = match key {
            Some(path) => read(path)?,
            None => bytes,
        };
        let key =
            PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|_| CertificateError::NoKey {
                path: key_path.to_owned(),
            })?;
        Ok(ServerCertificate {
            chain,
            key: Arc::new(key),
        })
    }

    fn from_pfx(
        bytes: &[u8],
        password: &str,
        path: &Path,
    ) -> Result<ServerCertificate, CertificateError> {
        let failed = |message: String| CertificateError::Pfx {
            path: path.to_owned(),
            message,
        };
        let store = p12_keystore::KeyStore::from_pkcs12(bytes, password)
            .map_err(|error| failed(error.to_string()))?;
        let (_alias, chain) = store
            .private_key_chain()
            .ok_or_else(|| failed("no private key in it".to_owned()))?;
        Ok(ServerCertificate {
            chain: chain
                .chain()
                .iter()
                .map(|certificate| CertificateDer::from(certificate.as_der().to_vec()))
                .collect(),
            key: Arc::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                chain.key().to_vec(),
            ))),
        })
    }

    /// The server's own certificate (the first of the chain).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The private key, for presenting this certificate as a client (Raven ETL).
    pub fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// A TLS configuration serving this certificate, HTTP/2 or HTTP/1.1, asking clients for a
    /// certificate without requiring one.
    pub(crate) fn server_config(&self) -> Result<TlsConfig, CertificateError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AnyClientCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The first `CERTIFICATE` of a PEM text, as DER.
pub fn first_pem_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    CertificateDer::from_pem_slice(pem)
        .ok()
        .map(|it| it.to_vec())
}

/// Asks for a client certificate, accepts any (or none): the certificate store decides.
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
