//! Document ids and collection names: validation and the case-insensitive keys they are stored
//! under. Ids and collections are case-insensitive and case-preserving, as in RavenDB.

use crate::error::WriteError;

/// The longest accepted document id, in UTF-8 bytes (RavenDB's limit).
pub const MAX_ID_BYTES: usize = 512;

/// The collection of documents whose `@metadata` names none.
pub const EMPTY_COLLECTION: &str = "@empty";

/// The collection HiLo state documents live in.
pub const HILO_COLLECTION: &str = "@hilo";

/// Checks a document id as given by a client: not empty, not over [`MAX_ID_BYTES`], no control
/// characters.
pub fn validate_id(id: &str) -> Result<(), WriteError> {
    let reason = if id.is_empty() {
        "id is empty"
    } else if id.len() > MAX_ID_BYTES {
        "id is longer than 512 bytes"
    } else if id.chars().any(char::is_control) {
        "id contains a control character"
    } else if id.chars().any(is_invisible_format_char) {
        // An id that reads differently from what it is ("users/1\u{202E}gpj.exe" shows as
        // "users/1exe.jpg") would let one document pass for another in a list or a log.
        "id contains an invisible or text-direction character (zero-width space, joiner, \
         byte order mark, or a bidirectional control such as U+202E)"
    } else if id.trim().is_empty() {
        "id is only whitespace"
    } else {
        return Ok(());
    };
    Err(WriteError::InvalidId {
        id: truncate_for_message(id),
        reason: reason.into(),
    })
}

/// Unicode format characters that change how text is shown without being seen: zero-width
/// spaces and joiners, the byte order mark, and the bidirectional marks, embeddings, overrides
/// and isolates.
pub fn is_invisible_format_char(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

/// Returns the storage key of an id or collection name (case-insensitive).
pub fn key_of(name: &str) -> String {
    if name
        .bytes()
        .all(|it| !it.is_ascii_uppercase() && it.is_ascii())
    {
        return name.to_owned();
    }
    name.to_lowercase()
}

/// What kind of id a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IdRequest {
    /// Use this id as is.
    Exact(String),
    /// `prefix/`: the server appends the new document's etag, `prefix/0000000000000000042-A`.
    ServerGenerated { prefix: String },
    /// `prefix|`: the server appends the next identity value, `prefix/7`.
    Identity { prefix: String },
}

impl IdRequest {
    /// Classifies and validates an id as sent by a client.
    pub fn parse(id: &str) -> Result<IdRequest, WriteError> {
        validate_id(id)?;
        if let Some(prefix) = id.strip_suffix('|') {
            return Ok(IdRequest::Identity {
                prefix: format!("{prefix}/"),
            });
        }
        if id.ends_with('/') {
            return Ok(IdRequest::ServerGenerated {
                prefix: id.to_owned(),
            });
        }
        Ok(IdRequest::Exact(id.to_owned()))
    }
}

/// Keeps error messages readable when a client sends a huge id.
pub(crate) fn truncate_for_message(id: &str) -> String {
    const MAX: usize = 128;
    if id.len() <= MAX {
        return id.to_owned();
    }
    let mut end = MAX;
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &id[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_long_and_control_ids() {
        assert!(validate_id("").is_err());
        assert!(validate_id("   ").is_err());
        assert!(validate_id(&"a".repeat(513)).is_err());
        assert!(validate_id("users/\u{1}").is_err());
        assert!(validate_id("users/\n1").is_err());
        assert!(validate_id(&"a".repeat(512)).is_ok());
        assert!(validate_id("users/1-A").is_ok());
        assert!(validate_id("ünïcödé/1").is_ok());
    }

    #[test]
    fn keys_are_case_insensitive() {
        assert_eq!(key_of("Users/1-A"), "users/1-a");
        assert_eq!(key_of("users/1"), "users/1");
        assert_eq!(key_of("ÜSERS"), "üsers");
    }

    #[test]
    fn classifies_generated_ids() {
        assert_eq!(
            IdRequest::parse("people/").unwrap(),
            IdRequest::ServerGenerated {
                prefix: "people/".into()
            }
        );
        assert_eq!(
            IdRequest::parse("people|").unwrap(),
            IdRequest::Identity {
                prefix: "people/".into()
            }
        );
        assert_eq!(
            IdRequest::parse("people/1").unwrap(),
            IdRequest::Exact("people/1".into())
        );
    }
}
