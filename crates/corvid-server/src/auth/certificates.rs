//! The registered client certificates: RavenDB's `CertificateDefinition` JSON, kept in the
//! server's system store by thumbprint, and read from memory on every request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use corvid_store::{SystemStore, Timestamp};
use serde::{Deserialize, Serialize};
use sha1::Digest as _;

use crate::error::ApiError;

/// What a certificate may do on the server (RavenDB's `SecurityClearance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecurityClearance {
    /// Every route, including certificates and databases.
    ClusterAdmin,
    /// Another node of the cluster; Corvid treats it as ClusterAdmin.
    ClusterNode,
    /// Every database and creating or deleting databases; not certificates.
    Operator,
    /// The databases in `Permissions`, at their level.
    ValidUser,
    /// Nothing beyond what needs no certificate.
    UnauthenticatedClients,
}

/// A `ValidUser`'s permission on one database (RavenDB's `DatabaseAccess`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DatabaseAccess {
    /// Reads (GET and HEAD routes, queries).
    Read,
    /// Reads and writes.
    ReadWrite,
    /// Reads, writes and the database's `/admin` routes (ETL, connection strings).
    Admin,
}

/// A registered certificate, in RavenDB's JSON shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CertificateDefinition {
    pub name: String,
    /// The certificate's DER, base64 (no private key).
    pub certificate: String,
    pub thumbprint: String,
    pub security_clearance: SecurityClearance,
    #[serde(default)]
    pub permissions: BTreeMap<String, DatabaseAccess>,
    /// When the certificate expires, ISO 8601 UTC.
    #[serde(default)]
    pub not_after: Option<String>,
    /// Base64 SHA-256 of the certificate's public key (SubjectPublicKeyInfo).
    #[serde(default)]
    pub public_key_pinning_hash: String,
    /// RavenDB groups renewed certificates under their first thumbprint; Corvid keeps every
    /// certificate on its own (`""` and `[]`), fields the clients expect.
    #[serde(default)]
    pub collection_primary_key: String,
    #[serde(default)]
    pub collection_secondary_keys: Vec<String>,
}

/// The body of `PUT /admin/certificates` (RavenDB's `PutClientCertificateOperation`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutCertificate {
    pub name: String,
    /// Base64 DER, or PEM.
    pub certificate: String,
    pub security_clearance: SecurityClearance,
    #[serde(default)]
    pub permissions: BTreeMap<String, DatabaseAccess>,
}

/// The SHA-1 thumbprint of a DER certificate, uppercase hex as RavenDB shows it.
pub(crate) fn thumbprint(der: &[u8]) -> String {
    sha1::Sha1::digest(der)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect()
}

impl CertificateDefinition {
    /// Builds a definition from a certificate (base64 DER or PEM), checking that it parses.
    pub(crate) fn new(request: PutCertificate) -> Result<CertificateDefinition, ApiError> {
        let der = decode_certificate(&request.certificate)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).map_err(|error| {
            ApiError::bad_request(format!(
                "`Certificate` is not an X.509 certificate: {error}"
            ))
        })?;
        let not_after = Timestamp(parsed.validity().not_after.timestamp() * 10_000_000);
        Ok(CertificateDefinition {
            name: request.name,
            certificate: base64::engine::general_purpose::STANDARD.encode(&der),
            thumbprint: thumbprint(&der),
            security_clearance: request.security_clearance,
            permissions: request.permissions,
            not_after: Some(not_after.to_iso()),
            public_key_pinning_hash: base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(parsed.public_key().raw)),
            collection_primary_key: String::new(),
            collection_secondary_keys: Vec::new(),
        })
    }

    /// Whether the certificate's `NotAfter` has passed.
    pub(crate) fn expired(&self) -> bool {
        self.not_after
            .as_deref()
            .and_then(Timestamp::parse_iso)
            .is_some_and(|not_after| not_after < Timestamp::now())
    }

    /// The certificate's level on one database, if any.
    pub(crate) fn access(&self, database: &str) -> Option<DatabaseAccess> {
        match self.security_clearance {
            SecurityClearance::ClusterAdmin
            | SecurityClearance::ClusterNode
            | SecurityClearance::Operator => Some(DatabaseAccess::Admin),
            SecurityClearance::ValidUser => self
                .permissions
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(database))
                .map(|(_, access)| *access),
            SecurityClearance::UnauthenticatedClients => None,
        }
    }
}

/// Base64 DER, or a PEM `CERTIFICATE` block.
fn decode_certificate(text: &str) -> Result<Vec<u8>, ApiError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    if text.contains("-----BEGIN") {
        return CertificateDer::from_pem_slice(text.as_bytes())
            .map(|it| it.to_vec())
            .map_err(|error| ApiError::bad_request(format!("`Certificate` is not PEM: {error}")));
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| ApiError::bad_request("`Certificate` must be base64 DER or PEM"))
}

/// The registered certificates: the system store, and a copy in memory for each request.
pub(crate) struct CertificateStore {
    by_thumbprint: RwLock<HashMap<String, Arc<CertificateDefinition>>>,
}

impl CertificateStore {
    /// Loads every registered certificate; unreadable entries are logged and skipped.
    pub(crate) fn load(system: &SystemStore) -> CertificateStore {
        let mut by_thumbprint = HashMap::new();
        match system.certificates() {
            Ok(all) => {
                for (thumbprint, json) in all {
                    match serde_json::from_slice::<CertificateDefinition>(&json) {
                        Ok(definition) => {
                            by_thumbprint.insert(thumbprint, Arc::new(definition));
                        }
                        Err(error) => {
                            tracing::error!(thumbprint, %error, "unreadable certificate entry")
                        }
                    }
                }
            }
            Err(error) => tracing::error!(%error, "cannot read the registered certificates"),
        }
        CertificateStore {
            by_thumbprint: RwLock::new(by_thumbprint),
        }
    }

    pub(crate) fn get(&self, thumbprint: &str) -> Option<Arc<CertificateDefinition>> {
        self.read().get(thumbprint).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<CertificateDefinition>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Registers a certificate durably, then in memory.
    pub(crate) fn put(
        &self,
        system: &SystemStore,
        definition: CertificateDefinition,
    ) -> Result<(), ApiError> {
        let json = serde_json::to_vec(&definition).map_err(ApiError::internal)?;
        system
            .put_certificate(&definition.thumbprint, &json)
            .map_err(ApiError::internal)?;
        self.write()
            .insert(definition.thumbprint.clone(), Arc::new(definition));
        Ok(())
    }

    /// Removes a certificate; returns whether it was registered.
    pub(crate) fn delete(&self, system: &SystemStore, thumbprint: &str) -> Result<bool, ApiError> {
        let removed = system
            .delete_certificate(thumbprint)
            .map_err(ApiError::internal)?;
        self.write().remove(thumbprint);
        Ok(removed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<CertificateDefinition>>> {
        self.by_thumbprint
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<CertificateDefinition>>> {
        self.by_thumbprint
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_are_uppercase_sha1_hex() {
        // SHA-1("abc")
        assert_eq!(
            thumbprint(b"abc"),
            "A9993E364706816ABA3E25717850C26C9CD0D89D"
        );
    }
}
