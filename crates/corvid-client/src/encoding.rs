//! Percent-encoding of query values and path segments.
//!
//! Document ids contain `/`, spaces and arbitrary Unicode, so every query value is encoded as
//! UTF-8 bytes with everything outside the RFC 3986 unreserved set escaped. A space becomes `%20`
//! (never `+`), which every server decodes the same way.

use std::fmt::Write;

/// Returns `value` percent-encoded for use as a query value or a single path segment.
pub(crate) fn encode_component(value: &str) -> String {
    let mut res = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            res.push(char::from(byte));
        } else {
            // Writing into a String cannot fail.
            let _ = write!(res, "%{byte:02X}");
        }
    }
    res
}

/// Builds a query string (`?k=v&k=v`) from already-unencoded pairs.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut res = String::new();
    for (pair_idx, (key, value)) in pairs.iter().enumerate() {
        res.push(if pair_idx == 0 { '?' } else { '&' });
        res.push_str(&encode_component(key));
        res.push('=');
        res.push_str(&encode_component(value));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unreserved_characters() {
        assert_eq!(encode_component("Users-1.a_b~"), "Users-1.a_b~");
    }

    #[test]
    fn escapes_slash_space_plus_and_reserved() {
        assert_eq!(
            encode_component("users/1 a+b&c=d?#%"),
            "users%2F1%20a%2Bb%26c%3Dd%3F%23%25"
        );
    }

    #[test]
    fn escapes_unicode_as_utf8_bytes() {
        assert_eq!(encode_component("é/日"), "%C3%A9%2F%E6%97%A5");
    }

    #[test]
    fn builds_query_with_repeated_keys() {
        assert_eq!(
            query_string(&[("id", "a/1"), ("id", "b 2")]),
            "?id=a%2F1&id=b%202"
        );
        assert_eq!(query_string(&[]), "");
    }
}
