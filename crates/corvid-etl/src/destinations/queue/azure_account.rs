//! An Azure Storage account as a connection string names it, and Shared Key authorization
//! of its requests (HMAC-SHA256 of the canonical request with the account key, on `ring`).
//!
//! Connection strings are Azure's `key=value;…` form: `DefaultEndpointsProtocol`,
//! `AccountName`, `AccountKey`, `QueueEndpoint`, `EndpointSuffix` (the `Blob`/`Table`/
//! `FileEndpoint`s of a full account string are accepted and unused), or
//! `UseDevelopmentStorage=true` for the emulator's well-known account on
//! `http://127.0.0.1:10001/devstoreaccount1`. Shared access signatures are refused: Corvid
//! signs with the account key.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use corvid_store::Timestamp;
use ring::hmac;

/// What `GET` answers show instead of an account key.
pub const REDACTED_KEY: &str = "*****";
/// The emulator's account (azurite, Azure Storage Emulator), public by design.
const DEVELOPMENT_ACCOUNT: &str = "devstoreaccount1";
const DEVELOPMENT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEVELOPMENT_QUEUE_ENDPOINT: &str = "http://127.0.0.1:10001/devstoreaccount1";
/// The keys that hold secrets, redacted when shown.
const SECRET_KEYS: [&str; 2] = ["AccountKey", "SharedAccessSignature"];
/// Keys of a full account connection string that queue publishing does not use.
const UNUSED_KEYS: [&str; 3] = ["BlobEndpoint", "TableEndpoint", "FileEndpoint"];

/// An account and where its queue service is. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct AzureAccount {
    pub name: String,
    key: Vec<u8>,
    /// `scheme://host[:port][/path]`, without a trailing `/`.
    pub queue_endpoint: String,
}

impl std::fmt::Debug for AzureAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureAccount")
            .field("name", &self.name)
            .field("key", &REDACTED_KEY)
            .field("queue_endpoint", &self.queue_endpoint)
            .finish()
    }
}

/// One request to sign: what Shared Key authorization covers of it.
pub struct RequestToSign<'a> {
    pub method: &'a str,
    /// The URL's path (the endpoint's path included), without the query.
    pub path: &'a str,
    pub content_length: usize,
    pub content_type: &'a str,
    /// The `x-ms-*` headers, names lowercase.
    pub ms_headers: &'a [(&'a str, &'a str)],
    /// The query's parameters, decoded, names lowercase.
    pub query: &'a [(&'a str, &'a str)],
}

impl AzureAccount {
    /// Parses a connection string; the reason is for the user (it never holds the key).
    pub fn parse(connection_string: &str) -> Result<AzureAccount, String> {
        let pairs = pairs(connection_string)?;
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .map(|(_, value)| value.as_str())
        };
        const KNOWN: [&str; 6] = [
            "DefaultEndpointsProtocol",
            "AccountName",
            "AccountKey",
            "QueueEndpoint",
            "EndpointSuffix",
            "UseDevelopmentStorage",
        ];
        for (name, _) in &pairs {
            if name.eq_ignore_ascii_case("SharedAccessSignature") {
                return Err(
                    "`SharedAccessSignature` is not supported: give `AccountName` and `AccountKey`"
                        .to_owned(),
                );
            }
            let known = KNOWN
                .iter()
                .chain(UNUSED_KEYS.iter())
                .any(|it| it.eq_ignore_ascii_case(name));
            if !known {
                return Err(format!(
                    "unknown connection string setting `{name}`; expected DefaultEndpointsProtocol, AccountName, AccountKey, QueueEndpoint, EndpointSuffix or UseDevelopmentStorage=true"
                ));
            }
        }
        if let Some(development) = get("UseDevelopmentStorage") {
            if !development.eq_ignore_ascii_case("true") {
                return Err(format!(
                    "`UseDevelopmentStorage` must be `true`, not `{development}`"
                ));
            }
            if let Some((other, _)) = pairs
                .iter()
                .find(|(name, _)| !name.eq_ignore_ascii_case("UseDevelopmentStorage"))
            {
                return Err(format!(
                    "`UseDevelopmentStorage=true` takes no other setting, got `{other}`"
                ));
            }
            return Ok(AzureAccount {
                name: DEVELOPMENT_ACCOUNT.to_owned(),
                key: BASE64.decode(DEVELOPMENT_KEY).unwrap_or_default(),
                queue_endpoint: DEVELOPMENT_QUEUE_ENDPOINT.to_owned(),
            });
        }
        let name = get("AccountName").unwrap_or_default();
        if name.is_empty() {
            return Err("`AccountName` must be given".to_owned());
        }
        let key = get("AccountKey").unwrap_or_default();
        if key.is_empty() {
            return Err("`AccountKey` must be given".to_owned());
        }
        let key = BASE64
            .decode(key)
            .map_err(|_| "`AccountKey` is not base64".to_owned())?;
        let protocol = get("DefaultEndpointsProtocol").unwrap_or("https");
        if protocol != "https" && protocol != "http" {
            return Err(format!(
                "`DefaultEndpointsProtocol` must be https or http, not `{protocol}`"
            ));
        }
        let queue_endpoint = match get("QueueEndpoint") {
            Some(endpoint) => {
                let endpoint = endpoint.trim_end_matches('/');
                let host = endpoint
                    .strip_prefix("https://")
                    .or_else(|| endpoint.strip_prefix("http://"));
                if host.is_none_or(str::is_empty) {
                    return Err(format!(
                        "`QueueEndpoint` must be an http:// or https:// URL, not `{endpoint}`"
                    ));
                }
                endpoint.to_owned()
            }
            None => {
                let suffix = get("EndpointSuffix").unwrap_or("core.windows.net");
                format!("{protocol}://{name}.queue.{suffix}")
            }
        };
        Ok(AzureAccount {
            name: name.to_owned(),
            key,
            queue_endpoint,
        })
    }

    /// The path of the endpoint's URL (`/devstoreaccount1` for the emulator, `` for Azure).
    pub fn endpoint_path(&self) -> &str {
        let after_scheme = self
            .queue_endpoint
            .split_once("://")
            .map_or(self.queue_endpoint.as_str(), |it| it.1);
        after_scheme.find('/').map_or("", |at| &after_scheme[at..])
    }

    /// The `Authorization` header of a request (Shared Key, queue service since 2009-09-19).
    pub fn authorization(&self, request: &RequestToSign<'_>) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        let tag = hmac::sign(&key, string_to_sign(&self.name, request).as_bytes());
        format!("SharedKey {}:{}", self.name, BASE64.encode(tag.as_ref()))
    }
}

/// The canonical text Shared Key signs: the verb, the standard headers Corvid sends (the
/// others empty), the `x-ms-*` headers sorted, then `/{account}{path}` and the query's
/// parameters sorted, one `\nname:value` each.
fn string_to_sign(account: &str, request: &RequestToSign<'_>) -> String {
    let content_length = match request.content_length {
        0 => String::new(),
        n => n.to_string(),
    };
    let mut res = format!(
        "{}\n\n\n{content_length}\n\n{}\n\n\n\n\n\n\n",
        request.method, request.content_type
    );
    let mut ms_headers = request.ms_headers.to_vec();
    ms_headers.sort_unstable();
    for (name, value) in ms_headers {
        res.push_str(name);
        res.push(':');
        res.push_str(value.trim());
        res.push('\n');
    }
    res.push('/');
    res.push_str(account);
    res.push_str(request.path);
    let mut query = request.query.to_vec();
    query.sort_unstable();
    for (name, value) in query {
        res.push('\n');
        res.push_str(name);
        res.push(':');
        res.push_str(value);
    }
    res
}

/// The `key=value` pairs of a connection string, in order (a value may hold `=`).
fn pairs(connection_string: &str) -> Result<Vec<(String, String)>, String> {
    let mut res = Vec::new();
    for part in connection_string.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, value)) = part.split_once('=') else {
            // Not echoed: it may be a misplaced secret.
            return Err("a part of the connection string is not `key=value`".to_owned());
        };
        res.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if res.is_empty() {
        return Err("`ConnectionString` must not be empty".to_owned());
    }
    Ok(res)
}

fn is_secret(name: &str) -> bool {
    SECRET_KEYS
        .iter()
        .any(|it| it.eq_ignore_ascii_case(name.trim()))
}

/// The connection string as `GET` answers show it: `AccountKey` (and a shared access
/// signature) replaced by `*****`.
pub fn redact_account_key(connection_string: &str) -> String {
    connection_string
        .split(';')
        .map(|part| match part.split_once('=') {
            Some((name, _)) if is_secret(name) => format!("{name}={REDACTED_KEY}"),
            // A part that is not `key=value` may be a misplaced secret.
            None if !part.trim().is_empty() => REDACTED_KEY.to_owned(),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The connection string to store when `new` replaces `stored`: a client that edits what
/// `GET` showed sends the key back as `*****`, and then the stored key is kept — only for
/// the same account and endpoint, so that no one who may edit connection strings can send
/// the stored key elsewhere.
pub fn restore_account_key(new: &str, stored: &str) -> Result<String, String> {
    let redacted = new.split(';').any(|part| {
        part.split_once('=')
            .is_some_and(|(name, value)| is_secret(name) && value.trim() == REDACTED_KEY)
    });
    if !redacted {
        return Ok(new.to_owned());
    }
    let stored_key = stored.split(';').find_map(|part| {
        part.split_once('=')
            .filter(|(name, _)| name.trim().eq_ignore_ascii_case("AccountKey"))
            .map(|(_, value)| value.trim().to_owned())
    });
    let Some(stored_key) = stored_key else {
        return Ok(new.to_owned());
    };
    let restored = new
        .split(';')
        .map(|part| match part.split_once('=') {
            Some((name, value))
                if name.trim().eq_ignore_ascii_case("AccountKey")
                    && value.trim() == REDACTED_KEY =>
            {
                format!("{name}={stored_key}")
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";");
    let same_account = match (AzureAccount::parse(&restored), AzureAccount::parse(stored)) {
        (Ok(new_account), Ok(stored_account)) => {
            new_account.name == stored_account.name
                && new_account
                    .queue_endpoint
                    .eq_ignore_ascii_case(&stored_account.queue_endpoint)
        }
        // Validation says what is wrong with the new string.
        (Err(_), _) => return Ok(new.to_owned()),
        (Ok(_), Err(_)) => false,
    };
    if !same_account {
        return Err(format!(
            "the account key shows as `{REDACTED_KEY}` and is kept only for the same account and endpoint; type the key again to connect to another one"
        ));
    }
    Ok(restored)
}

/// An HTTP date (RFC 1123, as `x-ms-date` wants it): `Sat, 05 Dec 2026 18:22:42 GMT`.
pub fn http_date(time: SystemTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let utc = Timestamp::from_system_time(time).utc();
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[utc.weekday as usize],
        utc.day,
        MONTHS[(utc.month - 1) as usize],
        utc.year,
        utc.hour,
        utc.minute,
        utc.second
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const KEY: &str = "a2V5a2V5a2V5a2V5";

    #[test]
    fn connection_strings_name_the_account_and_endpoint() {
        let account = AzureAccount::parse(&format!(
            "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"
        ))
        .unwrap();
        assert_eq!(account.name, "shop");
        assert_eq!(
            account.queue_endpoint,
            "https://shop.queue.core.chinacloudapi.cn"
        );
        assert_eq!(account.endpoint_path(), "");
        assert!(!format!("{account:?}").contains(KEY));
        let local = AzureAccount::parse(&format!(
            "AccountName=devstoreaccount1;AccountKey={KEY};QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1/"
        ))
        .unwrap();
        assert_eq!(
            local.queue_endpoint,
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert_eq!(local.endpoint_path(), "/devstoreaccount1");
        let development = AzureAccount::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(development.name, DEVELOPMENT_ACCOUNT);
        assert_eq!(development.queue_endpoint, DEVELOPMENT_QUEUE_ENDPOINT);
        assert_eq!(development.key.len(), 64);
    }

    #[test]
    fn bad_connection_strings_say_what_is_wrong() {
        for (text, expected) in [
            ("", "must not be empty"),
            ("AccountName=a", "`AccountKey` must be given"),
            ("AccountKey=abcd", "`AccountName` must be given"),
            ("AccountName=a;AccountKey=!!", "not base64"),
            (
                "AccountName=a;AccountKey=abcd;Colour=blue",
                "unknown connection string setting `Colour`",
            ),
            ("AccountName=a;SharedAccessSignature=sv=1", "not supported"),
            (
                "UseDevelopmentStorage=true;AccountName=a",
                "takes no other setting",
            ),
            (
                "AccountName=a;AccountKey=abcd;QueueEndpoint=ftp://h",
                "http:// or https://",
            ),
            (
                "AccountName=a;AccountKey=abcd;DefaultEndpointsProtocol=ftp",
                "https or http",
            ),
            ("nonsense", "not `key=value`"),
        ] {
            let error = AzureAccount::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn keys_are_redacted_and_restored_only_for_the_same_account() {
        let stored = format!("AccountName=a;AccountKey={KEY};QueueEndpoint=http://h:1/a");
        let shown = redact_account_key(&stored);
        assert_eq!(
            shown,
            "AccountName=a;AccountKey=*****;QueueEndpoint=http://h:1/a"
        );
        assert_eq!(restore_account_key(&shown, &stored).unwrap(), stored);
        assert_eq!(
            restore_account_key(&format!("{shown};EndpointSuffix=x"), &stored).unwrap(),
            format!("{stored};EndpointSuffix=x")
        );
        let elsewhere = "AccountName=a;AccountKey=*****;QueueEndpoint=http://evil:1/a";
        let error = restore_account_key(elsewhere, &stored).unwrap_err();
        assert!(error.contains("type the key again"), "{error}");
        let new_key = "AccountName=a;AccountKey=bmV3;QueueEndpoint=http://evil:1/a";
        assert_eq!(restore_account_key(new_key, &stored).unwrap(), new_key);
        assert_eq!(
            redact_account_key("UseDevelopmentStorage=true"),
            "UseDevelopmentStorage=true"
        );
    }

    #[test]
    fn the_string_to_sign_is_azures_canonical_request() {
        let request = RequestToSign {
            method: "POST",
            path: "/devstoreaccount1/orders/messages",
            content_length: 12,
            content_type: "application/xml",
            ms_headers: &[("x-ms-version", "2021-12-02"), ("x-ms-date", "D")],
            query: &[],
        };
        assert_eq!(
            string_to_sign("devstoreaccount1", &request),
            "POST\n\n\n12\n\napplication/xml\n\n\n\n\n\n\nx-ms-date:D\nx-ms-version:2021-12-02\n/devstoreaccount1/devstoreaccount1/orders/messages"
        );
        let empty = RequestToSign {
            method: "PUT",
            path: "/q",
            content_length: 0,
            content_type: "",
            ms_headers: &[],
            query: &[("peekonly", "true"), ("numofmessages", "32")],
        };
        assert_eq!(
            string_to_sign("a", &empty),
            "PUT\n\n\n\n\n\n\n\n\n\n\n\n/a/q\nnumofmessages:32\npeekonly:true"
        );
    }

    #[test]
    fn dates_are_rfc_1123() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let time = UNIX_EPOCH + Duration::from_secs(1_796_494_962);
        assert_eq!(http_date(time), "Sat, 05 Dec 2026 18:22:42 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
