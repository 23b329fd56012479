//! Raven ETL to `https://` destinations across real `corvid` processes: a secured source
//! presents its own certificate, which the destination lets in only once registered; a
//! destination whose certificate does not verify is a configuration error; an unsecured
//! source reaches an HTTPS destination whose authority it was told to trust (`--trusted-ca`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{Server, options, start_with};
use corvid_client::{
    Client, ClientIdentity, ClientOptions, ClientTls, Command as BatchCommand, create_database,
    pem_certificates,
};
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};

/// What `corvid certificate create` wrote: ca.pem, server.pem/.key, admin.pem/.key.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    fn create(parent: &Path, name: &str) -> Certificates {
        let dir = parent.join(name);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_corvid"))
            .args(["certificate", "create", "--name", name, "--out"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        Certificates { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(file)).unwrap()
    }

    /// `corvid serve` options serving HTTPS with this server certificate.
    fn serve_args(&self) -> Vec<String> {
        vec![
            "--certificate".to_owned(),
            self.path("server.pem"),
            "--certificate-key".to_owned(),
            self.path("server.key"),
            "--admin-certificate".to_owned(),
            self.path("admin.pem"),
        ]
    }

    /// The admin's TLS: this authority trusted, the admin certificate presented.
    fn admin_tls(&self) -> ClientTls {
        let identity = ClientIdentity::from_pem(&self.read("admin-with-key.pem")).unwrap();
        let roots = pem_certificates(&self.read("ca.pem")).unwrap();
        ClientTls::new(&roots, Some(&identity)).unwrap()
    }
}

/// An administrator of one server.
struct Admin {
    url: String,
    tls: ClientTls,
    http: reqwest::Client,
}

impl Admin {
    fn new(server: &Server, tls: Option<ClientTls>) -> Admin {
        let tls = tls.unwrap_or_else(ClientTls::system);
        Admin {
            url: server.url.clone(),
            http: tls.http_client_builder().build().unwrap(),
            tls,
        }
    }

    fn options(&self) -> ClientOptions {
        ClientOptions {
            tls: Some(self.tls.clone()),
            ..options()
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create_database(&self, name: &str) -> Client {
        create_database(&self.url, name, &self.options())
            .await
            .unwrap();
        Client::new(std::slice::from_ref(&self.url), name, self.options()).unwrap()
    }

    /// A Raven ETL task from `src`'s Users into `dst`'s People at `destination_url`.
    async fn define_etl(&self, destination_url: &str) {
        let (status, body) = self
            .send(
                "PUT",
                "/databases/src/admin/connection-strings",
                Some(json!({"Type": "Raven", "Name": "dst", "Database": "dst",
                    "TopologyDiscoveryUrls": [destination_url]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = self
            .send("PUT", "/databases/src/admin/etl", Some(etl_configuration()))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The statistics of the ETL task's one process.
    async fn etl_statistics(&self) -> Value {
        let (status, body) = self.send("GET", "/databases/src/etl/stats", None).await;
        assert_eq!(status, 200, "{body}");
        body["Results"][0]["Stats"][0]["Statistics"].clone()
    }

    async fn people_count(&self) -> u64 {
        let (_, stats) = self
            .send("GET", "/databases/dst/collections/stats", None)
            .await;
        stats["Collections"]["People"].as_u64().unwrap_or(0)
    }
}

fn etl_configuration() -> Value {
    json!({"EtlType": "Raven", "Name": "people", "ConnectionStringName": "dst", "Transforms": [
        {"Name": "s", "Collections": ["Users"], "Script": "loadToPeople({Name: this.Name});"}]})
}

/// Retries quickly, so that a registration is seen within a second.
const FAST_RETRY: [&str; 4] = ["--etl-fallback-secs", "1", "--etl-max-fallback-secs", "1"];

fn start(data_dir: &Path, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).chain(FAST_RETRY).collect();
    start_with(data_dir, &args)
}

async fn insert_users(client: &Client, range: std::ops::Range<usize>) {
    let commands: Vec<BatchCommand> = range
        .map(|idx| BatchCommand::Put {
            id: format!("users/{idx}"),
            document: json!({"Name": format!("user {idx}"), "@metadata": {"@collection": "Users"}}),
            change_vector: None,
        })
        .collect();
    client.bulk_docs(&commands).await.unwrap();
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Waits for the task to report a load error of `class`, and returns its message.
async fn load_error(source: &Admin, class: &str) -> String {
    let mut message = String::new();
    wait_for(&format!("a {class} load error"), async || {
        let statistics = source.etl_statistics().await;
        message = statistics["LastLoadError"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        statistics["LastLoadErrorClass"] == class
    })
    .await;
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raven_etl_between_secured_servers_presents_the_source_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let source_certificates = Certificates::create(dir.path(), "source");
    let destination_certificates = Certificates::create(dir.path(), "destination");
    let destination_server = start(
        &dir.path().join("destination-data"),
        &destination_certificates.serve_args(),
    );
    let mut source_args = source_certificates.serve_args();
    source_args.extend([
        "--trusted-ca".to_owned(),
        destination_certificates.path("ca.pem"),
    ]);
    let source_server = start(&dir.path().join("source-data"), &source_args);
    assert!(destination_server.url.starts_with("https://"));
    let source = Admin::new(&source_server, Some(source_certificates.admin_tls()));
    let destination = Admin::new(
        &destination_server,
        Some(destination_certificates.admin_tls()),
    );
    destination.create_database("dst").await;
    let src = source.create_database("src").await;
    insert_users(&src, 0..100).await;
    source.define_etl(&destination.url).await;

    // The destination does not know the source's certificate yet: refused, nothing moves.
    let message = load_error(&source, "Configuration").await;
    assert!(
        message.contains("403") && message.contains("unknown to the server"),
        "{message}"
    );
    let statistics = source.etl_statistics().await;
    assert_eq!(statistics["LastProcessedEtag"], 0, "{statistics}");
    assert_eq!(destination.people_count().await, 0);

    // The test endpoint sends nothing, secured or not.
    let (status, body) = source
        .send(
            "POST",
            "/databases/src/admin/etl/raven/test",
            Some(json!({"DocumentId": "users/1", "IsDelete": false,
                "Configuration": etl_configuration()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Commands"][1]["Type"], "PUT", "{body}");
    assert_eq!(body["Commands"][1]["Id"], "users/1/people/", "{body}");

    // Registered with ReadWrite on the target database, the source's certificate is let in.
    let (status, body) = destination
        .send(
            "PUT",
            "/admin/certificates",
            Some(json!({
                "Name": "source server",
                "Certificate": String::from_utf8(source_certificates.read("server.pem")).unwrap(),
                "SecurityClearance": "ValidUser",
                "Permissions": {"dst": "ReadWrite"},
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    wait_for("every user delivered", async || {
        destination.people_count().await == 100
    })
    .await;

    // Deletes travel the same way.
    for idx in 0..10 {
        src.delete(&format!("users/{idx}"), None).await.unwrap();
    }
    wait_for("the deletes delivered", async || {
        destination.people_count().await == 90
    })
    .await;
    let (_, found) = destination
        .send("GET", "/databases/dst/docs?startsWith=users/0/", None)
        .await;
    assert_eq!(
        found["Results"].as_array().map(Vec::len),
        Some(0),
        "{found}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_destination_whose_certificate_does_not_verify_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let source_certificates = Certificates::create(dir.path(), "source");
    let destination_certificates = Certificates::create(dir.path(), "destination");
    let destination_server = start(
        &dir.path().join("destination-data"),
        &destination_certificates.serve_args(),
    );
    // No --trusted-ca: the destination's authority is nobody the source trusts.
    let source_server = start(
        &dir.path().join("source-data"),
        &source_certificates.serve_args(),
    );
    let source = Admin::new(&source_server, Some(source_certificates.admin_tls()));
    let destination = Admin::new(
        &destination_server,
        Some(destination_certificates.admin_tls()),
    );
    destination.create_database("dst").await;
    let (status, body) = destination
        .send(
            "PUT",
            "/admin/certificates",
            Some(json!({
                "Name": "source server",
                "Certificate": String::from_utf8(source_certificates.read("server.pem")).unwrap(),
                "SecurityClearance": "ValidUser",
                "Permissions": {"dst": "ReadWrite"},
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let src = source.create_database("src").await;
    insert_users(&src, 0..10).await;
    source.define_etl(&destination.url).await;

    let message = load_error(&source, "Configuration").await;
    assert!(
        message.contains("tls handshake failed") && message.contains("certificate"),
        "{message}"
    );
    // Still retried, never delivered, progress where it was.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let statistics = source.etl_statistics().await;
    assert_eq!(statistics["LastProcessedEtag"], 0, "{statistics}");
    assert_eq!(statistics["Status"], "Reconnect", "{statistics}");
    assert_eq!(destination.people_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsecured_source_loads_into_an_https_destination_it_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let destination_certificates = Certificates::create(dir.path(), "destination");
    // A destination that asks for no client certificate: plain Corvid behind a TLS end.
    let destination_server = start(&dir.path().join("destination-data"), &[]);
    let https_port = tls_proxy(&destination_certificates, &destination_server.url).await;
    let source_server = start(
        &dir.path().join("source-data"),
        &[
            "--trusted-ca".to_owned(),
            destination_certificates.path("ca.pem"),
        ],
    );
    let source = Admin::new(&source_server, None);
    let destination = Admin::new(&destination_server, None);
    destination.create_database("dst").await;
    let src = source.create_database("src").await;
    insert_users(&src, 0..20).await;
    source
        .define_etl(&format!("https://127.0.0.1:{https_port}"))
        .await;
    wait_for("every user delivered over https", async || {
        destination.people_count().await == 20
    })
    .await;
}

/// A TLS end with the destination's server certificate in front of a plain-HTTP server, asking
/// for no client certificate. Returns its port.
async fn tls_proxy(certificates: &Certificates, plain_url: &str) -> u16 {
    let chain = pem_certificates(&certificates.read("server.pem")).unwrap();
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(&certificates.read("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let target = plain_url.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    port
}

#[test]
fn a_trusted_ca_file_without_a_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corvid"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--trusted-ca")
        .arg(&not_pem)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--trusted-ca") && stderr.contains("no PEM certificate"),
        "{stderr}"
    );
}
