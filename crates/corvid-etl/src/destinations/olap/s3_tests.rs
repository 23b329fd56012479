//! Tests of `s3.rs`: the pure parts, and the rest against a real moto server (`scripts/services/moto.sh`
//! installs it; each test starts its own on a free port, with IAM checks on, so moto
//! verifies every signature as S3 does). Without moto's venv those tests say `SKIPPED …`
//! and pass; with `CI` set they fail.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::destinations::olap::storage::OlapStorage;

/// A moto server of the test's own; stopped when dropped.
struct OwnMoto {
    child: Child,
    port: u16,
    /// An IAM user's key allowed everything, made before moto began checking signatures.
    access_key: String,
    secret_key: String,
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OwnMoto {
    /// Starts moto on a free port and makes a user whose key it then checks every request
    /// against; `None` (skipped, or a failure in CI) without moto's venv.
    async fn start(test: &str) -> Option<OwnMoto> {
        let home = std::env::var_os("HOME").unwrap_or_default();
        let binary = PathBuf::from(home).join(".cache/corvid/moto-venv/bin/moto_server");
        if !binary.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {} is missing (scripts/services/moto.sh installs it), and CI must not skip it",
                binary.display()
            );
            eprintln!(
                "SKIPPED {test}: {} missing (run scripts/services/moto.sh)",
                binary.display()
            );
            return None;
        }
        let port = free_port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut moto = OwnMoto {
            child,
            port,
            access_key: String::new(),
            secret_key: String::new(),
        };
        let addr = format!("127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{test}: moto did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // moto checks signatures (against its IAM users) after the next 3 actions, which
        // make a user with a key allowed everything.
        let client = corvid_client::http_client_builder().build().unwrap();
        let url = moto.url();
        let reset = client
            .post(format!("{url}/moto-api/reset-auth"))
            .body("3")
            .send()
            .await
            .unwrap();
        assert!(reset.status().is_success());
        iam(&client, &url, "Action=CreateUser&UserName=corvid").await;
        let key = iam(&client, &url, "Action=CreateAccessKey&UserName=corvid").await;
        moto.access_key = xml_element(&key, "AccessKeyId").unwrap();
        moto.secret_key = xml_element(&key, "SecretAccessKey").unwrap();
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let form = format!(
            "Action=PutUserPolicy&UserName=corvid&PolicyName=all&PolicyDocument={}",
            sigv4::uri_encode(policy)
        );
        iam(&client, &url, &form).await;
        Some(moto)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A target in `bucket` with this moto's user, path style.
    fn target(&self, bucket: &str, remote_folder: &str) -> S3Target {
        S3Target {
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            session_token: None,
            region: "us-east-1".to_owned(),
            bucket: bucket.to_owned(),
            remote_folder: remote_folder.to_owned(),
            custom_server_url: Some(self.url()),
            force_path_style: true,
        }
    }
}

/// Sends an IAM action to moto as a form post (moto routes by the credential scope; these
/// run before it checks signatures).
async fn iam(client: &reqwest::Client, url: &str, form: &str) -> String {
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDCORVIDTEST/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(format!("{form}&Version=2010-05-08"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{form}: {text}");
    text
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bucket name no other test (or earlier run) uses.
fn unique_bucket(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "corvid-{test}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `n_bytes` of a pattern that repeats only every 251 bytes (so parts differ).
fn content(n_bytes: usize) -> Vec<u8> {
    (0..n_bytes).map(|it| (it % 251) as u8).collect()
}

impl S3Bucket {
    async fn create_bucket(&self) {
        let request = S3Request::small(reqwest::Method::PUT, None, Vec::new());
        self.call(request).await.unwrap();
    }

    /// Deletes every object (the remote folder ignored) and the bucket.
    async fn delete_bucket(&self) {
        let list = S3Request::small(
            reqwest::Method::GET,
            None,
            vec![("list-type", "2".to_owned())],
        );
        let text = self.call(list).await.unwrap().text().await.unwrap();
        for key in xml_elements(&text, "Key") {
            let request = S3Request::small(reqwest::Method::DELETE, Some(&key), Vec::new());
            self.call(request).await.unwrap();
        }
        let request = S3Request::small(reqwest::Method::DELETE, None, Vec::new());
        self.call(request).await.unwrap();
    }

    /// The ETag of a published key.
    async fn etag(&self, key: &str) -> String {
        let full_key = self.full_key(key);
        let request = S3Request::small(reqwest::Method::HEAD, Some(&full_key), Vec::new());
        let response = self.call(request).await.unwrap();
        response.headers()["etag"].to_str().unwrap().to_owned()
    }

    /// Writes `bytes` as a staged file and publishes it as `key`.
    async fn publish_bytes(&self, key: &str, bytes: &[u8]) {
        let staged = self
            .staging_dir()
            .join(format!("{}.tmp", sigv4::uri_encode(key)));
        std::fs::write(&staged, bytes).unwrap();
        self.publish(&staged, key).await.unwrap();
        assert!(
            !staged.exists(),
            "the staged file is removed once published"
        );
    }

    async fn read_back(&self, key: &str) -> Vec<u8> {
        let to = self.staging_dir().join("read-back");
        self.download(key, &to).await.unwrap();
        let res = std::fs::read(&to).unwrap();
        std::fs::remove_file(&to).unwrap();
        res
    }
}

fn bucket_of(target: S3Target, staging: &Path) -> S3Bucket {
    S3Bucket::new(target, staging.to_owned()).unwrap()
}

fn configuration_message(res: Result<(), LoadError>) -> String {
    match res {
        Err(LoadError::Configuration { message }) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_single_put_and_multipart_files_read_back_byte_equal() {
    let Some(moto) = OwnMoto::start("s3_publish").await else {
        return;
    };
    let staging = tempfile::tempdir().unwrap();
    let name = unique_bucket("publish");
    let bucket = bucket_of(moto.target(&name, "/exports/corvid/"), staging.path());
    bucket.create_bucket().await;
    bucket.check().await.unwrap();

    // A partition value with `=` and a file name with a space: encoded, and signed so.
    let small_key = "Orders/year=2024/month=3/shop orders-task_Script1_000000000000001234.parquet";
    let small = content(300_000);
    bucket.publish_bytes(small_key, &small).await;
    assert_eq!(bucket.read_back(small_key).await, small);
    let etag = bucket.etag(small_key).await;
    assert!(!etag.contains('-'), "one PUT: {etag}");

    // 20 MiB: three parts of 8, 8 and 4 MiB.
    let large_key = "Orders/year=2024/month=4/large.parquet";
    let large = content(20 * 1024 * 1024);
    bucket.publish_bytes(large_key, &large).await;
    assert!(
        bucket.read_back(large_key).await == large,
        "the multipart file differs"
    );
    let etag = bucket.etag(large_key).await;
    assert!(
        etag.trim_matches('"').ends_with("-3"),
        "three parts: {etag}"
    );
    // Published again (a retried run): replaced, not added.
    bucket.publish_bytes(small_key, b"again").await;
    assert_eq!(bucket.read_back(small_key).await, b"again");

    assert_eq!(
        bucket.list("Orders/").await.unwrap(),
        vec![small_key.to_owned(), large_key.to_owned()]
    );
    // Under the remote folder, without doubled or extra slashes.
    let whole = bucket_of(moto.target(&name, ""), staging.path());
    assert_eq!(
        whole.list("").await.unwrap(),
        vec![
            format!("exports/corvid/{small_key}"),
            format!("exports/corvid/{large_key}")
        ]
    );
    assert!(
        bucket
            .describe()
            .starts_with(&format!("s3://{name}/exports/corvid at http://127.0.0.1:"))
    );
    whole.delete_bucket().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_by_page_and_deleting_a_missing_key_is_ok() {
    let Some(moto) = OwnMoto::start("s3_list").await else {
        return;
    };
    let staging = tempfile::tempdir().unwrap();
    let name = unique_bucket("list");
    let mut bucket = bucket_of(moto.target(&name, "olap"), staging.path());
    bucket.list_page_size = Some(2);
    bucket.create_bucket().await;
    bucket.check().await.unwrap();
    assert!(bucket.list("Orders/").await.unwrap().is_empty());
    let keys = [
        "Orders/a.parquet",
        "Orders/b c.parquet",
        "Orders/x=1/c.parquet",
    ];
    for key in keys {
        bucket.publish_bytes(key, key.as_bytes()).await;
    }
    bucket.publish_bytes("Products/d.parquet", b"d").await;
    // Three keys in pages of two: one continuation token.
    assert_eq!(bucket.list("Orders/").await.unwrap(), keys);
    assert_eq!(bucket.list("").await.unwrap().len(), 4);
    bucket.delete("Orders/missing.parquet").await.unwrap();
    bucket.delete("Orders/a.parquet").await.unwrap();
    bucket.delete("Orders/a.parquet").await.unwrap();
    assert_eq!(bucket.list("Orders/").await.unwrap(), &keys[1..]);
    let res = bucket
        .download("Orders/a.parquet", &staging.path().join("gone"))
        .await;
    assert!(configuration_message(res).contains("NoSuchKey"));
    assert!(!staging.path().join("gone").exists());
    bucket.delete_bucket().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_in_virtual_host_style() {
    let Some(moto) = OwnMoto::start("s3_virtual_host").await else {
        return;
    };
    let staging = tempfile::tempdir().unwrap();
    let name = unique_bucket("vhost");
    let path_style = bucket_of(moto.target(&name, ""), staging.path());
    path_style.create_bucket().await;
    // `{bucket}.localhost` is resolved to moto, which takes the bucket from the host.
    let mut target = moto.target(&name, "v");
    target.custom_server_url = Some(format!("http://localhost:{}", moto.port));
    target.force_path_style = false;
    let builder = corvid_client::http_client_builder().resolve(
        &format!("{name}.localhost"),
        std::net::SocketAddr::from(([127, 0, 0, 1], moto.port)),
    );
    let bucket = S3Bucket::with_client_builder(target, staging.path().to_owned(), builder).unwrap();
    let (url, ..) = bucket.url(Some("v/a=1/b.parquet"), &[]).unwrap();
    assert_eq!(
        url.as_str(),
        format!("http://{name}.localhost:{}/v/a%3D1/b.parquet", moto.port)
    );
    bucket.check().await.unwrap();
    bucket.publish_bytes("a=1/b.parquet", b"virtual").await;
    assert_eq!(bucket.read_back("a=1/b.parquet").await, b"virtual");
    // The same object, seen in path style.
    assert_eq!(
        path_style.list("").await.unwrap(),
        vec!["v/a=1/b.parquet".to_owned()]
    );
    path_style.delete_bucket().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_and_refused_credentials_are_configuration_errors() {
    let Some(moto) = OwnMoto::start("s3_credentials").await else {
        return;
    };
    let staging = tempfile::tempdir().unwrap();
    let name = unique_bucket("missing");
    let missing = bucket_of(moto.target(&name, ""), staging.path());
    let message = configuration_message(missing.check().await);
    assert!(
        message.contains(&format!("S3 bucket `{name}` does not exist")),
        "{message}"
    );
    assert!(message.contains("NoSuchBucket"), "{message}");

    let existing = unique_bucket("creds");
    let good = bucket_of(moto.target(&existing, ""), staging.path());
    good.create_bucket().await;
    good.check().await.unwrap();
    let mut wrong_secret = moto.target(&existing, "");
    wrong_secret.secret_key = "not-the-secret".to_owned();
    let message = configuration_message(bucket_of(wrong_secret, staging.path()).check().await);
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
    let mut unknown_key = moto.target(&existing, "");
    unknown_key.access_key = "AKIAUNKNOWNCORVID000".to_owned();
    let message = configuration_message(bucket_of(unknown_key, staging.path()).check().await);
    assert!(message.contains("InvalidAccessKeyId"), "{message}");
    assert!(!message.contains(&moto.secret_key), "{message}");
    good.delete_bucket().await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_reconnect() {
    let staging = tempfile::tempdir().unwrap();
    let storage = OlapStorage::s3(
        S3Target {
            access_key: "AKIDEXAMPLE".to_owned(),
            secret_key: "secret".to_owned(),
            session_token: None,
            region: "us-east-1".to_owned(),
            bucket: "orders".to_owned(),
            remote_folder: String::new(),
            custom_server_url: Some(format!("http://127.0.0.1:{}", free_port())),
            force_path_style: true,
        },
        staging.path().join("staging"),
    )
    .unwrap();
    let res = storage.check().await;
    assert!(matches!(res, Err(LoadError::Reconnect { .. })), "{res:?}");
    // The staging folder was made all the same.
    assert!(storage.staging_dir().is_dir());
}

fn target(custom_server_url: Option<&str>, force_path_style: bool) -> S3Target {
    S3Target {
        access_key: "AKIDEXAMPLE".to_owned(),
        secret_key: "very-secret".to_owned(),
        session_token: Some("very-secret-token".to_owned()),
        region: "eu-west-3".to_owned(),
        bucket: "orders".to_owned(),
        remote_folder: "/corvid/olap/".to_owned(),
        custom_server_url: custom_server_url.map(str::to_owned),
        force_path_style,
    }
}

#[test]
fn urls_encode_each_segment_in_both_styles() {
    let key = "corvid/olap/Orders/year=2024/a b.parquet";
    let query = [
        ("prefix", "a/b c".to_owned()),
        ("list-type", "2".to_owned()),
    ];
    let aws = S3Bucket::new(target(None, false), PathBuf::new()).unwrap();
    let (url, uri, canonical_query, host) = aws.url(Some(key), &query).unwrap();
    assert_eq!(
        url.as_str(),
        "https://orders.s3.eu-west-3.amazonaws.com/corvid/olap/Orders/year%3D2024/a%20b.parquet?list-type=2&prefix=a%2Fb%20c"
    );
    assert_eq!(uri, "/corvid/olap/Orders/year%3D2024/a%20b.parquet");
    assert_eq!(canonical_query, "list-type=2&prefix=a%2Fb%20c");
    assert_eq!(host, "orders.s3.eu-west-3.amazonaws.com");
    let aws_path = S3Bucket::new(target(None, true), PathBuf::new()).unwrap();
    let (url, ..) = aws_path.url(None, &[]).unwrap();
    assert_eq!(url.as_str(), "https://s3.eu-west-3.amazonaws.com/orders");
    let custom =
        S3Bucket::new(target(Some("http://127.0.0.1:4566/"), true), PathBuf::new()).unwrap();
    let (url, _, _, host) = custom
        .url(Some(&custom.full_key("a.parquet")), &[])
        .unwrap();
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:4566/orders/corvid/olap/a.parquet"
    );
    assert_eq!(host, "127.0.0.1:4566");
    let (url, ..) = custom.url(None, &[]).unwrap();
    assert_eq!(url.as_str(), "http://127.0.0.1:4566/orders");
    let virtual_host = S3Bucket::new(
        target(Some("https://minio.example:9000"), false),
        PathBuf::new(),
    )
    .unwrap();
    let (url, ..) = virtual_host.url(None, &[]).unwrap();
    assert_eq!(url.as_str(), "https://orders.minio.example:9000/");
}

#[test]
fn bad_targets_are_refused_without_naming_secrets() {
    let check = |change: &dyn Fn(&mut S3Target)| {
        let mut it = target(None, false);
        change(&mut it);
        match S3Bucket::new(it, PathBuf::new()) {
            Err(LoadError::Configuration { message }) => {
                assert!(!message.contains("very-secret"), "{message}");
                message
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("accepted"),
        }
    };
    assert!(check(&|it| it.bucket = String::new()).contains("bucket name"));
    assert!(check(&|it| it.bucket = "a/b".to_owned()).contains("bucket name"));
    assert!(check(&|it| it.region = " ".to_owned()).contains("region"));
    assert!(check(&|it| it.remote_folder = "a/../b".to_owned()).contains("remote folder"));
    assert!(check(&|it| it.custom_server_url = Some("ftp://host".to_owned())).contains("http"));
    let debug = format!("{:?}", target(None, false));
    assert!(!debug.contains("very-secret"), "{debug}");
    let described = S3Bucket::new(target(Some("http://127.0.0.1:4566"), true), PathBuf::new())
        .unwrap()
        .describe();
    assert_eq!(
        described,
        "s3://orders/corvid/olap at http://127.0.0.1:4566"
    );
}

#[test]
fn errors_are_classified() {
    use ErrorClass::{Configuration, Reconnect};
    for (status, code, class) in [
        (403, "InvalidAccessKeyId", Configuration),
        (403, "SignatureDoesNotMatch", Configuration),
        (403, "AccessDenied", Configuration),
        (404, "NoSuchBucket", Configuration),
        (301, "PermanentRedirect", Configuration),
        (400, "AuthorizationHeaderMalformed", Configuration),
        (400, "InvalidBucketName", Configuration),
        (400, "RequestTimeout", Reconnect),
        (403, "RequestTimeTooSkewed", Reconnect),
        (409, "OperationAborted", Reconnect),
        (429, "HTTP 429", Reconnect),
        (500, "InternalError", Reconnect),
        (503, "SlowDown", Reconnect),
        (502, "HTTP 502", Reconnect),
        (200, "InternalError", Reconnect),
    ] {
        assert_eq!(error_class(status, code), class, "{status} {code}");
    }
    let bucket = S3Bucket::new(target(None, false), PathBuf::new()).unwrap();
    let error = bucket.classify(
        "PutObject",
        Some("corvid/olap/a.parquet"),
        CallError::Service {
            status: 403,
            code: "SignatureDoesNotMatch".to_owned(),
            message: "The request signature we calculated does not match".to_owned(),
        },
    );
    let LoadError::Configuration { message } = error else {
        panic!("{error:?}");
    };
    assert!(message.contains("secret key does not match"), "{message}");
    assert!(
        message.contains("`corvid/olap/a.parquet` in s3://orders/corvid/olap"),
        "{message}"
    );
    let error = bucket.classify(
        "PutObject",
        None,
        CallError::Transport("refused".to_owned()),
    );
    assert!(matches!(error, LoadError::Reconnect { .. }), "{error:?}");
}

#[test]
fn xml_lists_are_read_and_unescaped() {
    let body = "<ListBucketResult><Contents><Key>a&amp;b.parquet</Key></Contents><Contents><Key>c&#x20;d&#61;1</Key></Contents><IsTruncated>true</IsTruncated></ListBucketResult>";
    assert_eq!(xml_elements(body, "Key"), vec!["a&b.parquet", "c d=1"]);
    assert_eq!(
        xml_unescape("&lt;&gt;&quot;&apos;&unknown;&"),
        "<>\"'&unknown;&"
    );
    assert_eq!(xml_escape("\"a&b\""), "&quot;a&amp;b&quot;");
}
