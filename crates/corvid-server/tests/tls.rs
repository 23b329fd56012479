//! HTTPS: the server's certificate from PEM files or a PFX, plain HTTP refused on the TLS port,
//! and a client certificate accepted without being required.

mod secure;

use corvid_server::ServerCertificate;
use secure::{Authority, SecureServer, https_request};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn serves_https_with_a_pem_certificate_and_key() {
    let server = SecureServer::start().await;
    let (status, body) = server.request(None, "GET", "/build/version", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ProductVersion"), "{body}");
    // With a client certificate too: requested, not required, any issuer.
    let stranger = Authority::new().issue("someone");
    let (status, _) = server
        .request(Some(&stranger), "GET", "/build/version", None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn plain_http_on_the_https_port_gets_no_answer() {
    let server = SecureServer::start().await;
    let mut socket = tokio::net::TcpStream::connect(&server.address)
        .await
        .expect("connect");
    socket
        .write_all(b"GET /build/version HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    let _ = socket.read_to_end(&mut response).await;
    assert!(
        !response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
}

#[tokio::test]
async fn serves_https_with_a_pfx_made_by_openssl() {
    let authority = Authority::new();
    let issued = authority.issue("127.0.0.1");
    let dir = tempfile::tempdir().expect("temp dir");
    let (certificate, key) = issued.write(dir.path(), "server");
    let pfx = dir.path().join("server.pfx");
    let made = std::process::Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:s3cret", "-in"])
        .arg(&certificate)
        .arg("-inkey")
        .arg(&key)
        .arg("-out")
        .arg(&pfx)
        .status();
    let Ok(made) = made else {
        eprintln!("SKIPPED: no openssl on this machine to make a PFX");
        return;
    };
    assert!(made.success(), "openssl pkcs12 -export failed");
    let wrong = ServerCertificate::load(&pfx, None, Some("wrong")).expect_err("wrong password");
    assert!(wrong.to_string().contains("PFX"), "{wrong}");
    let loaded = ServerCertificate::load(&pfx, None, Some("s3cret")).expect("load the PFX");
    assert_eq!(loaded.certificate(), &issued.der);
    let server = SecureServer::start_with(authority, issued, loaded, dir).await;
    let (status, _) = https_request(
        &server.address,
        &server.authority,
        None,
        "GET",
        "/build/version",
        None,
    )
    .await
    .expect("https");
    assert_eq!(status, 200);
}

#[test]
fn a_pem_without_a_key_is_refused_with_a_clear_message() {
    let issued = Authority::new().issue("127.0.0.1");
    let dir = tempfile::tempdir().expect("temp dir");
    let (certificate, _key) = issued.write(dir.path(), "server");
    let error = ServerCertificate::load(&certificate, None, None).expect_err("no key");
    assert!(error.to_string().contains("--certificate-key"), "{error}");
}
