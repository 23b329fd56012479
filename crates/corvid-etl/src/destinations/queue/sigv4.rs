//! AWS Signature Version 4 with HMAC-SHA256 and SHA-256 from ring (already the workspace's
//! crypto provider), so no AWS SDK is needed. [`sign`] signs any request (method, canonical
//! URI and query, the headers to sign, the payload's hash): S3's REST calls of OLAP ETL sign
//! with it; [`sign_post`] is the SQS JSON protocol's `POST`, signed over `content-type`,
//! `host`, `x-amz-date` and `x-amz-target`. The secret key itself never leaves the process:
//! only a signature derived from it for one day, region and service. Public for
//! `corvid-bench queue --broker sqs`'s raw producer.

use std::time::SystemTime;

use corvid_store::Timestamp;
use ring::{digest, hmac};

/// What [`sign`] signs besides the credentials and the time.
#[derive(Debug, Clone, Copy)]
pub struct SigningRequest<'a> {
    /// `GET`, `PUT`, `POST`, …
    pub method: &'a str,
    /// The path as sent, each segment already URI-encoded ([`uri_encode`]); `/` when empty.
    pub canonical_uri: &'a str,
    /// The query as sent, `name=value` pairs (both URI-encoded) sorted by name, joined by
    /// `&`; empty when there is none.
    pub canonical_query: &'a str,
    /// The headers to sign as sent (`host` among them; S3 also wants `x-amz-content-sha256`),
    /// names in any case; `x-amz-date` and `x-amz-security-token` are added by [`sign`].
    pub headers: &'a [(&'a str, &'a str)],
    /// The hex SHA-256 of the body ([`payload_sha256`]), or `UNSIGNED-PAYLOAD` (S3 only).
    pub payload_hash: &'a str,
    /// The session token of temporary credentials: signed and sent as `x-amz-security-token`.
    pub session_token: Option<&'a str>,
}

/// The headers a request carries, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `YYYYMMDD'T'HHMMSS'Z'`, sent as `x-amz-date`.
    pub amz_date: String,
    pub authorization: String,
}

/// What identifies the signer.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The payload hash S3 takes in `x-amz-content-sha256` for a body it should not check.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Signs `request` at `now`. The caller sends `x-amz-date` ([`SignedHeaders::amz_date`]),
/// `authorization`, the session token as `x-amz-security-token` when there is one, and each
/// of `request.headers` exactly as signed.
pub fn sign(
    credentials: Credentials<'_>,
    request: &SigningRequest<'_>,
    now: SystemTime,
) -> SignedHeaders {
    let amz_date = amz_date(now);
    let date = &amz_date[..8];
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), canonical_header_value(value)))
        .collect();
    headers.push(("x-amz-date".to_owned(), amz_date.clone()));
    if let Some(token) = request.session_token {
        headers.push(("x-amz-security-token".to_owned(), token.trim().to_owned()));
    }
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_header_names = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_uri = match request.canonical_uri {
        "" => "/",
        uri => uri,
    };
    let canonical_request = format!(
        "{}\n{canonical_uri}\n{}\n{canonical_headers}\n{signed_header_names}\n{}",
        request.method, request.canonical_query, request.payload_hash
    );
    let scope = format!(
        "{date}/{}/{}/aws4_request",
        credentials.region, credentials.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let mut key = hmac_sha256(
        format!("AWS4{}", credentials.secret_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [credentials.region, credentials.service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    SignedHeaders {
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_header_names}, Signature={signature}",
            credentials.access_key
        ),
        amz_date,
    }
}

/// Signs a `POST` to `path` of `host` (as the `Host` header says it) with `body`, at `now`.
pub fn sign_post(
    credentials: Credentials<'_>,
    host: &str,
    path: &str,
    content_type: &str,
    target: &str,
    body: &[u8],
    now: SystemTime,
) -> SignedHeaders {
    let payload_hash = payload_sha256(body);
    let request = SigningRequest {
        method: "POST",
        canonical_uri: path,
        canonical_query: "",
        headers: &[
            ("content-type", content_type),
            ("host", host),
            ("x-amz-target", target),
        ],
        payload_hash: &payload_hash,
        session_token: None,
    };
    sign(credentials, &request, now)
}

/// The hex SHA-256 of a body, as `x-amz-content-sha256` and the canonical request carry it.
pub fn payload_sha256(body: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, body).as_ref())
}

/// `text` URI-encoded as SigV4 wants it: every byte but the unreserved `A-Z a-z 0-9 - . _ ~`
/// as `%XX` (upper-case hex), `/` included (encode each path segment on its own).
pub fn uri_encode(text: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut res = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            res.push(char::from(byte));
        } else {
            res.push('%');
            res.push(char::from(DIGITS[usize::from(byte >> 4)]));
            res.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
    }
    res
}

/// A header value as signed: trimmed, runs of spaces made one.
fn canonical_header_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The hex SHA-256 of `text`, cut to its first `n_chars` characters.
pub(crate) fn sha256_hex(text: &str, n_chars: usize) -> String {
    let mut res = hex(digest::digest(&digest::SHA256, text.as_bytes()).as_ref());
    res.truncate(n_chars);
    res
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut res = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        res.push(DIGITS[usize::from(byte >> 4)] as char);
        res.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    res
}

/// `now` in UTC as `YYYYMMDD'T'HHMMSS'Z'`.
fn amz_date(now: SystemTime) -> String {
    let utc = Timestamp::from_system_time(now).utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
        let at = UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
        assert_eq!(amz_date(at), "20150830T123600Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!(amz_date(leap), "20000229T000000Z");
    }

    /// The signing key derivation and HMAC of AWS's own worked example ("Examples of how to
    /// derive a signing key for Signature Version 4": secret
    /// `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, 20120215, us-east-1, iam).
    #[test]
    fn the_signing_key_is_awss_example() {
        let mut key = hmac_sha256(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        for part in ["us-east-1", "iam", "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn a_signature_names_the_key_scope_and_headers() {
        let at = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let credentials = Credentials {
            access_key: "AKIDEXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "sqs",
        };
        let signed = sign_post(
            credentials,
            "127.0.0.1:4566",
            "/",
            "application/x-amz-json-1.0",
            "AmazonSQS.GetQueueUrl",
            br#"{"QueueName":"orders"}"#,
            at,
        );
        assert_eq!(signed.amz_date, "20150830T123600Z");
        let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=";
        assert!(signed.authorization.starts_with(prefix), "{signed:?}");
        assert_eq!(signed.authorization.len(), prefix.len() + 64);
        // Pinned to a signature computed by an independent implementation (Python's hmac and
        // hashlib over the same canonical request), so the general signer did not change it.
        assert!(
            signed.authorization.ends_with(
                "Signature=e61a28c6a3ec263dcf5e745efd3bf58cfb44ee41e6933851cf0e83a802f653eb"
            ),
            "{signed:?}"
        );
        // Another body, another signature.
        let other = sign_post(
            credentials,
            "127.0.0.1:4566",
            "/",
            "application/x-amz-json-1.0",
            "AmazonSQS.GetQueueUrl",
            br#"{"QueueName":"other"}"#,
            at,
        );
        assert_ne!(other.authorization, signed.authorization);
    }

    /// The SHA-256 of an empty body, as AWS's S3 examples send it.
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// AWS's S3 examples ("Signature Calculations for the Authorization Header: Transferring
    /// Payload in a Single Chunk"): access key AKIAIOSFODNN7EXAMPLE, 2013-05-24, us-east-1.
    fn s3_example_credentials() -> Credentials<'static> {
        Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "s3",
        }
    }

    /// 2013-05-24T00:00:00Z.
    fn s3_example_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    #[test]
    fn signs_awss_s3_get_object_example() {
        let request = SigningRequest {
            method: "GET",
            canonical_uri: "/test.txt",
            canonical_query: "",
            headers: &[
                ("Host", "examplebucket.s3.amazonaws.com"),
                ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
            ],
            payload_hash: &payload_sha256(b""),
            session_token: None,
        };
        let signed = sign(s3_example_credentials(), &request, s3_example_time());
        assert_eq!(signed.amz_date, "20130524T000000Z");
        assert_eq!(
            signed.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn signs_awss_s3_list_objects_example_with_a_query() {
        let request = SigningRequest {
            method: "GET",
            canonical_uri: "/",
            canonical_query: "max-keys=2&prefix=J",
            headers: &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", EMPTY_SHA256),
            ],
            payload_hash: EMPTY_SHA256,
            session_token: None,
        };
        let signed = sign(s3_example_credentials(), &request, s3_example_time());
        assert!(
            signed.authorization.ends_with(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{signed:?}"
        );
    }

    #[test]
    fn a_session_token_is_signed() {
        let request = SigningRequest {
            method: "GET",
            canonical_uri: "/",
            canonical_query: "",
            headers: &[("host", "examplebucket.s3.amazonaws.com")],
            payload_hash: UNSIGNED_PAYLOAD,
            session_token: Some("token"),
        };
        let with_token = sign(s3_example_credentials(), &request, s3_example_time());
        assert!(
            with_token
                .authorization
                .contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"),
            "{with_token:?}"
        );
        let without = sign(
            s3_example_credentials(),
            &SigningRequest {
                session_token: None,
                ..request
            },
            s3_example_time(),
        );
        assert_ne!(
            with_token.authorization[with_token.authorization.len() - 64..],
            without.authorization[without.authorization.len() - 64..]
        );
    }

    #[test]
    fn uri_encoding_keeps_only_unreserved_characters() {
        assert_eq!(uri_encode("year=2024"), "year%3D2024");
        assert_eq!(uri_encode("a b/c~d_e-f.g"), "a%20b%2Fc~d_e-f.g");
        assert_eq!(uri_encode("é"), "%C3%A9");
    }
}
