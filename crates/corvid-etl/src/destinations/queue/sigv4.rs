//! AWS Signature Version 4 for the requests of the SQS JSON protocol: a `POST` of a JSON
//! body, signed over `content-type`, `host`, `x-amz-date` and `x-amz-target`, with HMAC-SHA256
//! and SHA-256 from ring (already the workspace's crypto provider), so no AWS SDK is needed.
//! The secret key itself never leaves the process: only a signature derived from it for one
//! day, region and service. Public for `corvid-bench queue --broker sqs`'s raw producer.

use std::time::SystemTime;

use corvid_store::Timestamp;
use ring::{digest, hmac};

/// The headers a request carries, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `YYYYMMDD'T'HHMMSS'Z'`.
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
    let amz_date = amz_date(now);
    let date = &amz_date[..8];
    let signed_header_names = "content-type;host;x-amz-date;x-amz-target";
    let canonical_request = format!(
        "POST\n{path}\n\ncontent-type:{content_type}\nhost:{host}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\n{signed_header_names}\n{}",
        hex(digest::digest(&digest::SHA256, body).as_ref())
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
}
