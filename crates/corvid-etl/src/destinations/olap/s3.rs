//! OLAP ETL's files in Amazon S3 or an S3-compatible server, over its REST API signed with
//! AWS Signature V4 (`queue/sigv4.rs`) on a reqwest client made by corvid-client, without an
//! AWS SDK.
//!
//! A file of at most 16 MiB is one `PutObject`; a larger one is a multipart upload of 8 MiB
//! parts read from the staged file one at a time (never the whole file in memory), aborted
//! when any step fails. S3 shows an object only once its `PUT` or `CompleteMultipartUpload`
//! succeeded, so a reader never sees a partial file, and publishing the same key again replaces
//! it. Every body is signed with its real SHA-256, so S3 refuses one damaged on the way.
//!
//! Keys are `{RemoteFolderName}/{key}`, each segment URI-encoded as SigV4 wants (a partition
//! value like `year=2024` or one with spaces goes as `%3D`, `%20`). Errors are classified by
//! [`error_class`]: refused credentials, a missing bucket or a malformed request stop the task
//! (`Configuration`, with S3's `Code` and `Message`); throttling, S3's own failures and no answer
//! are retried (`Reconnect`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;

use crate::destination::LoadError;
use crate::destinations::olap::storage::{
    check_prefix, check_staged, key_segments, prepare_staging,
};
use crate::destinations::queue::sigv4::{self, Credentials, SigningRequest};
use crate::destinations::queue::xml_element;

/// The largest file sent as one `PutObject`.
const SINGLE_PUT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// The size of each part of a multipart upload but the last (S3 takes 5 MiB to 5 GiB).
const PART_BYTES: u64 = 8 * 1024 * 1024;
/// S3 takes at most 10,000 parts.
const MAX_PARTS: u64 = 10_000;
/// The key `check` writes and deletes under the remote folder.
const PROBE_KEY: &str = ".corvid-probe";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait for the next bytes of an answer (a download has no total timeout).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The timeout of a request without a large body.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The slowest upload taken before giving up: a body of n bytes gets REQUEST_TIMEOUT plus
/// n / this many seconds.
const MIN_UPLOAD_BYTES_PER_SEC: u64 = 256 * 1024;
const SERVICE: &str = "s3";

/// Where an S3 OLAP task publishes. `Debug` hides the secret key and the session token.
#[derive(Clone, PartialEq)]
pub struct S3Target {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    pub region: String,
    pub bucket: String,
    /// A prefix inside the bucket (`RemoteFolderName`), may be empty.
    pub remote_folder: String,
    /// `CustomServerUrl` (an S3-compatible server, e.g. http://127.0.0.1:4566); None = AWS
    /// (https://s3.{region}.amazonaws.com).
    pub custom_server_url: Option<String>,
    /// `ForcePathStyle`: http://host/bucket/key instead of http://bucket.host/key.
    pub force_path_style: bool,
}

/// A bucket files are published to, and the local staging folder they are written in first.
pub(crate) struct S3Bucket {
    target: S3Target,
    /// The remote folder without leading or trailing `/`.
    remote_folder: String,
    endpoint: Endpoint,
    client: reqwest::Client,
    staging: PathBuf,
    /// `max-keys` of each `ListObjectsV2` page; S3's default (1000) when `None`.
    list_page_size: Option<usize>,
}

/// How requests reach the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    /// `http` or `https`.
    scheme: String,
    /// The server's host and port, as the `Host` header says it (without the bucket).
    authority: String,
    /// A path the custom server URL has, without trailing `/`; usually empty.
    base_path: String,
    /// `/bucket/key` rather than `bucket.host/key`.
    path_style: bool,
}

/// A failed S3 call.
#[derive(Debug)]
enum CallError {
    /// No answer: refused, reset, timed out.
    Transport(String),
    /// S3 answered with an error.
    Service {
        status: u16,
        code: String,
        message: String,
    },
}

/// What an S3 error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorClass {
    /// The task cannot go on until its configuration changes.
    Configuration,
    /// Try again later.
    Reconnect,
}

/// One request to the bucket.
struct S3Request<'a> {
    method: reqwest::Method,
    /// The full key (remote folder included), or `None` for the bucket itself.
    key: Option<&'a str>,
    /// Query parameters, not encoded.
    query: Vec<(&'a str, String)>,
    body: Vec<u8>,
    /// `None`: no total timeout, only the read timeout (downloads).
    timeout: Option<Duration>,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("access_key", &self.access_key)
            .field("secret_key", &crate::config::REDACTED_SECRET)
            .field(
                "session_token",
                &self
                    .session_token
                    .as_ref()
                    .map(|_| crate::config::REDACTED_SECRET),
            )
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("remote_folder", &self.remote_folder)
            .field("custom_server_url", &self.custom_server_url)
            .field("force_path_style", &self.force_path_style)
            .finish()
    }
}

impl S3Bucket {
    /// Checks the target (bucket name, region, server URL, remote folder) and makes the client.
    pub fn new(target: S3Target, staging: PathBuf) -> Result<S3Bucket, LoadError> {
        S3Bucket::with_client_builder(target, staging, corvid_client::http_client_builder())
    }

    fn with_client_builder(
        target: S3Target,
        staging: PathBuf,
        builder: reqwest::ClientBuilder,
    ) -> Result<S3Bucket, LoadError> {
        let configuration = |message: String| LoadError::Configuration { message };
        check_bucket_name(&target.bucket).map_err(configuration)?;
        if target.region.trim().is_empty() {
            return Err(configuration("the S3 region must be given".to_owned()));
        }
        let remote_folder = target.remote_folder.trim_matches('/').to_owned();
        if !remote_folder.is_empty() {
            key_segments(&remote_folder).map_err(|_| {
                configuration(format!(
                    "the S3 remote folder `{}` must be a relative path without `.`, `..`, empty segments, `\\` or NUL",
                    target.remote_folder.escape_debug()
                ))
            })?;
        }
        let endpoint = endpoint(&target).map_err(configuration)?;
        let client = builder
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            // A redirect (a bucket in another region) is reported, not followed: the
            // signature is for this host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| {
                configuration(format!("failed to make an HTTP client for S3: {error}"))
            })?;
        Ok(S3Bucket {
            target,
            remote_folder,
            endpoint,
            client,
            staging,
            list_page_size: None,
        })
    }

    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    /// Where files go: `s3://bucket/prefix`, and the server when it is not AWS.
    pub fn describe(&self) -> String {
        let mut res = format!("s3://{}", self.target.bucket);
        if !self.remote_folder.is_empty() {
            res.push('/');
            res.push_str(&self.remote_folder);
        }
        if let Some(url) = &self.target.custom_server_url {
            res.push_str(&format!(" at {}", url.trim()));
        }
        res
    }

    /// Lists the remote folder (the bucket exists, the credentials work and may list) and
    /// writes and deletes a probe key in it (they may write); prepares the staging folder.
    pub async fn check(&self) -> Result<(), LoadError> {
        prepare_staging(&self.staging).await?;
        let mut query = vec![("list-type", "2".to_owned()), ("max-keys", "1".to_owned())];
        if !self.remote_folder.is_empty() {
            query.push(("prefix", format!("{}/", self.remote_folder)));
        }
        self.call_text(
            "ListObjectsV2",
            None,
            S3Request::small(reqwest::Method::GET, None, query),
        )
        .await?;
        let probe = self.full_key(PROBE_KEY);
        let put = S3Request {
            body: b"corvid".to_vec(),
            ..S3Request::small(reqwest::Method::PUT, Some(&probe), Vec::new())
        };
        self.call_text("PutObject", Some(&probe), put).await?;
        self.call_text(
            "DeleteObject",
            Some(&probe),
            S3Request::small(reqwest::Method::DELETE, Some(&probe), Vec::new()),
        )
        .await?;
        Ok(())
    }

    /// Uploads the staged `file` as `key` (one `PUT`, or a multipart upload above 16 MiB) and
    /// removes it.
    pub async fn publish(&self, file: &Path, key: &str) -> Result<(), LoadError> {
        key_segments(key)?;
        check_staged(file, &self.staging)?;
        let full_key = self.full_key(key);
        let n_bytes = tokio::fs::metadata(file)
            .await
            .map_err(|error| file_error(&error, "failed to read", file))?
            .len();
        if n_bytes <= SINGLE_PUT_MAX_BYTES {
            let body = tokio::fs::read(file)
                .await
                .map_err(|error| file_error(&error, "failed to read", file))?;
            let put = S3Request {
                timeout: Some(upload_timeout(n_bytes)),
                body,
                ..S3Request::small(reqwest::Method::PUT, Some(&full_key), Vec::new())
            };
            self.call_text("PutObject", Some(&full_key), put).await?;
        } else {
            self.multipart_upload(file, &full_key, n_bytes).await?;
        }
        if let Err(error) = tokio::fs::remove_file(file).await {
            // Published: a staged file left behind is removed by the next `check`.
            tracing::warn!(file = %file.display(), %error, "failed to remove a published OLAP file from staging");
        }
        Ok(())
    }

    /// Deletes `key`; S3 answers a missing key like a deleted one.
    pub async fn delete(&self, key: &str) -> Result<(), LoadError> {
        key_segments(key)?;
        let full_key = self.full_key(key);
        let request = S3Request::small(reqwest::Method::DELETE, Some(&full_key), Vec::new());
        match self.call(request).await {
            Ok(_) => Ok(()),
            Err(CallError::Service { code, .. }) if code == "NoSuchKey" => Ok(()),
            Err(error) => Err(self.classify("DeleteObject", Some(&full_key), error)),
        }
    }

    /// The keys under `prefix` (relative to the remote folder), sorted, page by page.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, LoadError> {
        check_prefix(prefix)?;
        let folder_prefix = match self.remote_folder.as_str() {
            "" => String::new(),
            folder => format!("{folder}/"),
        };
        let mut keys = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type", "2".to_owned()),
                ("prefix", format!("{folder_prefix}{prefix}")),
            ];
            if let Some(page_size) = self.list_page_size {
                query.push(("max-keys", page_size.to_string()));
            }
            if let Some(token) = &continuation {
                query.push(("continuation-token", token.clone()));
            }
            let text = self
                .call_text(
                    "ListObjectsV2",
                    None,
                    S3Request::small(reqwest::Method::GET, None, query),
                )
                .await?;
            for full_key in xml_elements(&text, "Key") {
                let Some(key) = full_key.strip_prefix(&folder_prefix) else {
                    continue;
                };
                if key != PROBE_KEY {
                    keys.push(key.to_owned());
                }
            }
            let truncated = xml_element(&text, "IsTruncated").is_some_and(|it| it == "true");
            continuation = xml_element(&text, "NextContinuationToken").map(|it| xml_unescape(&it));
            if !truncated {
                break;
            }
            if continuation.is_none() {
                return Err(LoadError::Reconnect {
                    message: format!(
                        "S3 ListObjectsV2 of {} answered a truncated page without a continuation token",
                        self.describe()
                    ),
                });
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Downloads `key` into the file `to` (replaced); a partial download is removed.
    #[cfg(test)]
    pub async fn download(&self, key: &str, to: &Path) -> Result<(), LoadError> {
        use tokio::io::AsyncWriteExt as _;
        key_segments(key)?;
        let full_key = self.full_key(key);
        let request = S3Request {
            timeout: None,
            ..S3Request::small(reqwest::Method::GET, Some(&full_key), Vec::new())
        };
        let mut response = self
            .call(request)
            .await
            .map_err(|error| self.classify("GetObject", Some(&full_key), error))?;
        let res = async {
            let mut out = tokio::fs::File::create(to)
                .await
                .map_err(|error| file_error(&error, "failed to create", to))?;
            loop {
                let chunk = response
                    .chunk()
                    .await
                    .map_err(|error| LoadError::Reconnect {
                        message: format!(
                            "S3 GetObject of `{full_key}` from {}: {error}",
                            self.describe()
                        ),
                    })?;
                let Some(chunk) = chunk else {
                    break;
                };
                out.write_all(&chunk)
                    .await
                    .map_err(|error| file_error(&error, "failed to write", to))?;
            }
            out.flush()
                .await
                .map_err(|error| file_error(&error, "failed to write", to))
        }
        .await;
        if res.is_err() {
            let _ = tokio::fs::remove_file(to).await;
        }
        res
    }

    /// `{remote_folder}/{key}`.
    fn full_key(&self, key: &str) -> String {
        match self.remote_folder.as_str() {
            "" => key.to_owned(),
            folder => format!("{folder}/{key}"),
        }
    }

    /// A multipart upload of `file` (`n_bytes` long) as `full_key`, aborted on failure.
    async fn multipart_upload(
        &self,
        file: &Path,
        full_key: &str,
        n_bytes: u64,
    ) -> Result<(), LoadError> {
        if n_bytes.div_ceil(PART_BYTES) > MAX_PARTS {
            return Err(LoadError::Configuration {
                message: format!(
                    "cannot upload {}: {n_bytes} bytes is more than S3 takes in {MAX_PARTS} parts of {PART_BYTES} bytes",
                    file.display()
                ),
            });
        }
        let create = S3Request::small(
            reqwest::Method::POST,
            Some(full_key),
            vec![("uploads", String::new())],
        );
        let text = self
            .call_text("CreateMultipartUpload", Some(full_key), create)
            .await?;
        let Some(upload_id) = xml_element(&text, "UploadId").map(|it| xml_unescape(&it)) else {
            return Err(LoadError::Reconnect {
                message: format!(
                    "S3 CreateMultipartUpload of `{full_key}` in {} answered without an `UploadId`",
                    self.describe()
                ),
            });
        };
        let res = self.upload_parts(file, full_key, &upload_id).await;
        if res.is_err() {
            let abort = S3Request::small(
                reqwest::Method::DELETE,
                Some(full_key),
                vec![("uploadId", upload_id.clone())],
            );
            if let Err(error) = self.call(abort).await {
                let error = self.classify("AbortMultipartUpload", Some(full_key), error);
                tracing::warn!(key = full_key, %error, "failed to abort an S3 multipart upload");
            }
        }
        res
    }

    /// Sends the parts of `file` one at a time, then completes the upload.
    async fn upload_parts(
        &self,
        file: &Path,
        full_key: &str,
        upload_id: &str,
    ) -> Result<(), LoadError> {
        let mut reader = tokio::fs::File::open(file)
            .await
            .map_err(|error| file_error(&error, "failed to open", file))?;
        let mut etags: Vec<String> = Vec::new();
        loop {
            let mut part = Vec::with_capacity(PART_BYTES as usize);
            (&mut reader)
                .take(PART_BYTES)
                .read_to_end(&mut part)
                .await
                .map_err(|error| file_error(&error, "failed to read", file))?;
            if part.is_empty() {
                break;
            }
            let part_number = etags.len() + 1;
            let request = S3Request {
                timeout: Some(upload_timeout(part.len() as u64)),
                body: part,
                ..S3Request::small(
                    reqwest::Method::PUT,
                    Some(full_key),
                    vec![
                        ("partNumber", part_number.to_string()),
                        ("uploadId", upload_id.to_owned()),
                    ],
                )
            };
            let response = self
                .call(request)
                .await
                .map_err(|error| self.classify("UploadPart", Some(full_key), error))?;
            let Some(etag) = response
                .headers()
                .get("etag")
                .and_then(|it| it.to_str().ok())
                .map(str::to_owned)
            else {
                return Err(LoadError::Reconnect {
                    message: format!(
                        "S3 UploadPart {part_number} of `{full_key}` in {} answered without an ETag",
                        self.describe()
                    ),
                });
            };
            etags.push(etag);
        }
        let mut body = String::from("<CompleteMultipartUpload>");
        for (idx, etag) in etags.iter().enumerate() {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                idx + 1,
                xml_escape(etag)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let complete = S3Request {
            body: body.into_bytes(),
            ..S3Request::small(
                reqwest::Method::POST,
                Some(full_key),
                vec![("uploadId", upload_id.to_owned())],
            )
        };
        let text = self
            .call_text("CompleteMultipartUpload", Some(full_key), complete)
            .await?;
        // S3 may answer 200 and still fail, with an `<Error>` body.
        if text.contains("<Error>") {
            let error = CallError::Service {
                status: 200,
                code: xml_element(&text, "Code").unwrap_or_else(|| "InternalError".to_owned()),
                message: xml_element(&text, "Message").unwrap_or_default(),
            };
            return Err(self.classify("CompleteMultipartUpload", Some(full_key), error));
        }
        Ok(())
    }

    /// A call whose answer body is wanted as text; errors classified.
    async fn call_text(
        &self,
        operation: &str,
        full_key: Option<&str>,
        request: S3Request<'_>,
    ) -> Result<String, LoadError> {
        let response = self
            .call(request)
            .await
            .map_err(|error| self.classify(operation, full_key, error))?;
        response.text().await.map_err(|error| LoadError::Reconnect {
            message: format!("S3 {operation} at {}: {error}", self.describe()),
        })
    }

    /// One signed request; a non-2xx answer is a [`CallError::Service`] with S3's code.
    async fn call(&self, request: S3Request<'_>) -> Result<reqwest::Response, CallError> {
        let (url, canonical_uri, canonical_query, host) = self.url(request.key, &request.query)?;
        let payload_hash = sigv4::payload_sha256(&request.body);
        let credentials = Credentials {
            access_key: &self.target.access_key,
            secret_key: &self.target.secret_key,
            region: &self.target.region,
            service: SERVICE,
        };
        let signing = SigningRequest {
            method: request.method.as_str(),
            canonical_uri: &canonical_uri,
            canonical_query: &canonical_query,
            headers: &[("host", &host), ("x-amz-content-sha256", &payload_hash)],
            payload_hash: &payload_hash,
            session_token: self.target.session_token.as_deref(),
        };
        let signed = sigv4::sign(credentials, &signing, SystemTime::now());
        let mut builder = self
            .client
            .request(request.method.clone(), url)
            .header("x-amz-content-sha256", &payload_hash)
            .header("x-amz-date", &signed.amz_date)
            .header("authorization", &signed.authorization);
        if let Some(token) = &self.target.session_token {
            builder = builder.header("x-amz-security-token", token.trim());
        }
        if let Some(timeout) = request.timeout {
            builder = builder.timeout(timeout);
        }
        if !request.body.is_empty() || request.method == reqwest::Method::PUT {
            builder = builder.body(request.body);
        }
        let response = builder
            .send()
            .await
            .map_err(|error| CallError::Transport(transport_message(&error)))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|it| it.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.unwrap_or_default();
        let code = xml_element(&text, "Code").unwrap_or_else(|| match status {
            // A `HEAD`, or a server answering without a body.
            404 => "NotFound".to_owned(),
            403 => "AccessDenied".to_owned(),
            _ => format!("HTTP {status}"),
        });
        let mut message = xml_element(&text, "Message")
            .map(|it| xml_unescape(&it))
            .unwrap_or_else(|| text.chars().take(300).collect());
        if let Some(location) = location {
            message.push_str(&format!(" (redirected to {location})"));
        }
        Err(CallError::Service {
            status,
            code,
            message,
        })
    }

    /// The URL of a request, its canonical URI and query as signed, and its `Host`.
    fn url(
        &self,
        full_key: Option<&str>,
        query: &[(&str, String)],
    ) -> Result<(reqwest::Url, String, String, String), CallError> {
        let endpoint = &self.endpoint;
        let bucket = &self.target.bucket;
        let authority = match endpoint.path_style {
            true => endpoint.authority.clone(),
            false => format!("{bucket}.{}", endpoint.authority),
        };
        let mut path = endpoint.base_path.clone();
        if endpoint.path_style {
            path.push('/');
            path.push_str(&sigv4::uri_encode(bucket));
        }
        match full_key {
            Some(key) => {
                for segment in key.split('/') {
                    path.push('/');
                    path.push_str(&sigv4::uri_encode(segment));
                }
            }
            // The bucket itself: `/` in virtual-host style; `/bucket` in path style.
            None if path.is_empty() => path.push('/'),
            None => {}
        }
        let mut pairs: Vec<(String, String)> = query
            .iter()
            .map(|(name, value)| (sigv4::uri_encode(name), sigv4::uri_encode(value)))
            .collect();
        pairs.sort();
        let canonical_query = pairs
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&");
        let mut text = format!("{}://{authority}{path}", endpoint.scheme);
        if !canonical_query.is_empty() {
            text.push('?');
            text.push_str(&canonical_query);
        }
        let url = reqwest::Url::parse(&text).map_err(|error| CallError::Service {
            status: 0,
            code: "InvalidURI".to_owned(),
            message: format!("{text}: {error}"),
        })?;
        // The host as reqwest sends it: the port only when not the scheme's default.
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => authority,
        };
        Ok((url, path, canonical_query, host))
    }

    /// A failed call as a [`LoadError`], its message naming the operation, the bucket and S3's
    /// code and message (never a secret).
    fn classify(&self, operation: &str, full_key: Option<&str>, error: CallError) -> LoadError {
        let place = match full_key {
            Some(key) => format!("`{key}` in {}", self.describe()),
            None => self.describe(),
        };
        let (status, code, message) = match error {
            CallError::Transport(reason) => {
                return LoadError::Reconnect {
                    message: format!("S3 {operation} of {place}: {reason}"),
                };
            }
            CallError::Service {
                status,
                code,
                message,
            } => (status, code, message),
        };
        let bucket = &self.target.bucket;
        let cause = match code.as_str() {
            "NoSuchBucket" => format!("S3 bucket `{bucket}` does not exist"),
            "NoSuchKey" => format!("S3 key `{}` does not exist", full_key.unwrap_or_default()),
            "InvalidAccessKeyId" => format!(
                "S3 does not know the access key `{}`",
                self.target.access_key
            ),
            "SignatureDoesNotMatch" => {
                "S3 refused the signature: the secret key does not match the access key".to_owned()
            }
            "AccessDenied" => format!("S3 denied {operation} to these credentials"),
            "InvalidToken" | "ExpiredToken" => "S3 refused the session token".to_owned(),
            "PermanentRedirect" | "AuthorizationHeaderMalformed" => format!(
                "S3 bucket `{bucket}` is not in region `{}`",
                self.target.region
            ),
            _ => format!("S3 {operation} failed"),
        };
        let message = format!("{cause} ({operation} of {place}: HTTP {status} {code}: {message})");
        match error_class(status, &code) {
            ErrorClass::Configuration => LoadError::Configuration { message },
            ErrorClass::Reconnect => LoadError::Reconnect { message },
        }
    }
}

impl<'a> S3Request<'a> {
    /// A request without a body and with the default timeout.
    fn small(
        method: reqwest::Method,
        key: Option<&'a str>,
        query: Vec<(&'a str, String)>,
    ) -> S3Request<'a> {
        S3Request {
            method,
            key,
            query,
            body: Vec::new(),
            timeout: Some(REQUEST_TIMEOUT),
        }
    }
}

/// Whether an S3 error stops the task or is retried: throttling, S3's own failures, timeouts
/// and conflicts with a concurrent operation are retried; refused credentials, a missing
/// bucket, a wrong region and malformed requests wait for the configuration to change.
fn error_class(status: u16, code: &str) -> ErrorClass {
    match code {
        "SlowDown"
        | "RequestTimeout"
        | "InternalError"
        | "ServiceUnavailable"
        | "OperationAborted"
        | "RequestTimeTooSkewed"
        | "TemporaryRedirect" => {
            return ErrorClass::Reconnect;
        }
        _ => {}
    }
    match status {
        408 | 409 | 429 | 500..=599 => ErrorClass::Reconnect,
        // `status` 0: no request could be made of the URL.
        _ => ErrorClass::Configuration,
    }
}

/// The endpoint of a target: AWS's regional one or the custom server URL.
fn endpoint(target: &S3Target) -> Result<Endpoint, String> {
    let custom = target
        .custom_server_url
        .as_deref()
        .map(str::trim)
        .filter(|it| !it.is_empty());
    let Some(custom) = custom else {
        let region = target.region.trim();
        if !region
            .bytes()
            .all(|it| it.is_ascii_alphanumeric() || it == b'-')
        {
            return Err(format!("the S3 region `{region}` is not a region name"));
        }
        return Ok(Endpoint {
            scheme: "https".to_owned(),
            authority: format!("s3.{region}.amazonaws.com"),
            base_path: String::new(),
            path_style: target.force_path_style,
        });
    };
    let url = reqwest::Url::parse(custom)
        .map_err(|error| format!("the S3 server URL `{custom}` is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the S3 server URL `{custom}` must be http or https"
        ));
    }
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "the S3 server URL `{custom}` must have no query and no user information"
        ));
    }
    let Some(host) = url.host_str() else {
        return Err(format!("the S3 server URL `{custom}` has no host"));
    };
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Ok(Endpoint {
        scheme: url.scheme().to_owned(),
        authority,
        base_path: url.path().trim_end_matches('/').to_owned(),
        path_style: target.force_path_style,
    })
}

/// A bucket name that can go into a host name and a path.
fn check_bucket_name(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("the S3 bucket name must be given".to_owned());
    }
    if !bucket
        .bytes()
        .all(|it| it.is_ascii_alphanumeric() || matches!(it, b'-' | b'.' | b'_'))
    {
        return Err(format!(
            "the S3 bucket name `{}` may hold only letters, digits, `-`, `.` and `_`",
            bucket.escape_debug()
        ));
    }
    Ok(())
}

/// How long an upload of `n_bytes` may take.
fn upload_timeout(n_bytes: u64) -> Duration {
    REQUEST_TIMEOUT + Duration::from_secs(n_bytes / MIN_UPLOAD_BYTES_PER_SEC)
}

/// A request that got no answer, with its cause (reqwest's own message names only the URL).
fn transport_message(error: &reqwest::Error) -> String {
    let mut res = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        res.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if error.is_timeout() {
        res.push_str(" (timed out)");
    }
    res
}

fn file_error(error: &std::io::Error, what: &str, path: &Path) -> LoadError {
    crate::destinations::olap::storage::io_error(error, &format!("{what} {}", path.display()))
}

/// The text of every `<name>` element of `body`, unescaped.
fn xml_elements(body: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut res = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        res.push(xml_unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    res
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Replaces XML's five named entities and numeric character references.
fn xml_unescape(text: &str) -> String {
    let mut res = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        res.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.find(';') else {
            res.push_str(&rest[amp..]);
            return res;
        };
        let entity = &after[..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(it) => {
                res.push(it);
                rest = &after[semi + 1..];
            }
            None => {
                res.push('&');
                rest = after;
            }
        }
    }
    res.push_str(rest);
    res
}

#[cfg(test)]
#[path = "s3_tests.rs"]
mod tests;
