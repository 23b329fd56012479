//! Connection strings encrypted at rest (issue 18): each record is sealed with
//! ChaCha20-Poly1305 (`ring::aead`) under a 32-byte key kept in a file of its own
//! (`<data-dir>/secrets.key`, created with mode 0600 on first use; `--secrets-key-file`).
//! The record key is the associated data, so a sealed value cannot be moved to another
//! record. Records written before (plain JSON) are still read.

use std::io::Write as _;
use std::path::Path;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// What a sealed record starts with.
const MAGIC: &[u8] = b"corvid-sealed-v1:";
const KEY_LEN: usize = 32;

/// The key that seals connection strings.
pub struct SecretsKey {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(***)")
    }
}

impl SecretsKey {
    /// Reads the key file, or creates it (32 random bytes, mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<SecretsKey, String> {
        let random = SystemRandom::new();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = vec![0u8; KEY_LEN];
                random
                    .fill(&mut bytes)
                    .map_err(|_| "no random bytes for the secrets key".to_owned())?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(|error| {
                    format!("cannot create the secrets key {}: {error}", path.display())
                })?;
                file.write_all(&bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|error| {
                        format!("cannot write the secrets key {}: {error}", path.display())
                    })?;
                bytes
            }
            Err(error) => {
                return Err(format!(
                    "cannot read the secrets key {}: {error}",
                    path.display()
                ));
            }
        };
        if bytes.len() != KEY_LEN {
            return Err(format!(
                "the secrets key {} must be {KEY_LEN} bytes, not {}",
                path.display(),
                bytes.len()
            ));
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| "invalid secrets key".to_owned())?;
        Ok(SecretsKey {
            key: LessSafeKey::new(key),
            random,
        })
    }

    /// `MAGIC`, a random nonce, then the ciphertext and its tag.
    pub fn seal(&self, record_key: &str, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| "no random bytes for a nonce".to_owned())?;
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(record_key.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| "cannot encrypt a connection string".to_owned())?;
        let mut stored = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        stored.extend_from_slice(MAGIC);
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&sealed);
        Ok(stored)
    }
}

/// A stored record's plaintext: opened with `key` when sealed, as it is otherwise.
pub fn open(key: Option<&SecretsKey>, record_key: &str, stored: &[u8]) -> Result<Vec<u8>, String> {
    let Some(rest) = stored.strip_prefix(MAGIC) else {
        return Ok(stored.to_vec());
    };
    let Some(key) = key else {
        return Err(format!(
            "`{record_key}` is encrypted and the server has no secrets key"
        ));
    };
    if rest.len() < NONCE_LEN {
        return Err(format!("`{record_key}` is cut short"));
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| format!("`{record_key}` has a bad nonce"))?;
    let mut buffer = sealed.to_vec();
    let plain = key
        .key
        .open_in_place(nonce, Aad::from(record_key.as_bytes()), &mut buffer)
        .map_err(|_| {
            format!("`{record_key}` cannot be decrypted with this secrets key (another key file?)")
        })?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_with_a_key_file_made_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let key = SecretsKey::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = key.seal("k", b"Password=hunter22").unwrap();
        assert!(!sealed.windows(8).any(|it| it == b"hunter22"));
        let again = SecretsKey::load_or_create(&path).unwrap();
        assert_eq!(
            open(Some(&again), "k", &sealed).unwrap(),
            b"Password=hunter22"
        );
        assert!(open(Some(&again), "other", &sealed).is_err());
        assert!(open(None, "k", &sealed).is_err());
        assert_eq!(open(None, "k", b"{}").unwrap(), b"{}");
    }
}
