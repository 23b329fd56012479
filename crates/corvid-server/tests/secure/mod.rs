//! Helpers of the HTTPS tests: a certificate authority, certificates it signs, a server
//! serving HTTPS, and one request over TLS with or without a client certificate.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use corvid_server::{
    AppState, ConnectionOptions, SecurityClearance, ServerCertificate, ServerOptions,
};
use corvid_store::Storage;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A certificate and its key, as PEM and DER.
pub struct Issued {
    pub certificate_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl Issued {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone().into())
    }

    /// Writes `<name>.pem` (certificate) and `<name>.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let certificate = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&certificate, &self.certificate_pem).expect("write certificate");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (certificate, key)
    }
}

/// A test certificate authority.
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    pub fn new() -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Corvid test authority");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key"))
            .expect("authority");
        Authority { issuer }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A certificate for `name` (a DNS name or an IP address, also its common name).
    pub fn issue(&self, name: &str) -> Issued {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        let certificate = params.signed_by(&key, &self.issuer).expect("sign");
        Issued {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            der: certificate.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

/// A server serving HTTPS on a loopback port.
pub struct SecureServer {
    pub address: String,
    pub authority: Authority,
    pub server: Issued,
    /// Registered as ClusterAdmin at start (`--admin-certificate`).
    pub admin: Issued,
    task: tokio::task::JoinHandle<()>,
    pub dir: tempfile::TempDir,
}

impl Drop for SecureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SecureServer {
    /// Starts with a certificate for 127.0.0.1 loaded from PEM files, and the database `db`.
    pub async fn start() -> SecureServer {
        let authority = Authority::new();
        let server = authority.issue("127.0.0.1");
        let dir = tempfile::tempdir().expect("temp dir");
        let (certificate, key) = server.write(dir.path(), "server");
        let loaded = ServerCertificate::load(&certificate, Some(&key), None).expect("load");
        SecureServer::start_with(authority, server, loaded, dir).await
    }

    pub async fn start_with(
        authority: Authority,
        server: Issued,
        certificate: ServerCertificate,
        dir: tempfile::TempDir,
    ) -> SecureServer {
        let storage = Storage::open(&dir.path().join("data")).expect("storage");
        storage.create_database("db").expect("database");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let etl = corvid_etl::EtlManager::new(corvid_etl::EtlOptions::default());
        let options = ServerOptions {
            connections: ConnectionOptions {
                certificate: Some(certificate),
                ..ConnectionOptions::default()
            },
            ..ServerOptions::default()
        };
        let state = AppState::new(Arc::new(storage), etl, options);
        let admin = authority.issue("admin");
        state
            .register_certificate("admin", &admin.der, SecurityClearance::ClusterAdmin)
            .expect("register the admin certificate");
        let task = tokio::spawn(async move {
            let _ = corvid_server::serve(listener, state, std::future::pending()).await;
        });
        SecureServer {
            address,
            authority,
            server,
            admin,
            task,
            dir,
        }
    }

    /// One request over TLS (trusting the test authority), presenting `client` if given;
    /// returns the status and the body.
    pub async fn request(
        &self,
        client: Option<&Issued>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        https_request(&self.address, &self.authority, client, method, path, body)
            .await
            .expect("https request")
    }
}

/// One HTTP/1.1 request over TLS on a fresh connection.
pub async fn https_request(
    address: &str,
    authority: &Authority,
    client: Option<&Issued>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(authority.der()).expect("root");
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match client {
        Some(client) => builder
            .with_client_auth_cert(vec![client.der.clone()], client.key())
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let host = address.split(':').next().unwrap_or("127.0.0.1").to_owned();
    let name = ServerName::try_from(host.clone()).expect("server name");
    let mut stream = connector.connect(name, tcp).await?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // A peer that closes without close_notify is fine here: the response is complete.
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
