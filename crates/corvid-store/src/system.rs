//! Server-wide data that belongs to no database (`<data>/system.redb`): today the registered
//! client certificates, keyed by thumbprint. Values are opaque bytes (the server's JSON).

use std::path::Path;

use redb::{ReadableDatabase as _, ReadableTable as _, TableDefinition};

use crate::error::StorageError;

/// Client certificates by SHA-1 thumbprint (uppercase hex, as RavenDB writes it).
const CERTIFICATES: TableDefinition<&str, &[u8]> = TableDefinition::new("certificates");

/// The server's own redb file.
pub struct SystemStore {
    redb: redb::Database,
}

impl SystemStore {
    /// Opens (creating if needed) `system.redb` under the data directory.
    pub(crate) fn open(root: &Path) -> Result<SystemStore, StorageError> {
        let redb = redb::Database::create(root.join("system.redb"))?;
        let txn = redb.begin_write()?;
        txn.open_table(CERTIFICATES)?;
        txn.commit()?;
        Ok(SystemStore { redb })
    }

    /// Every registered certificate, by thumbprint.
    pub fn certificates(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let txn = self.redb.begin_read()?;
        let table = txn.open_table(CERTIFICATES)?;
        let mut all = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            all.push((key.value().to_owned(), value.value().to_vec()));
        }
        Ok(all)
    }

    /// Registers (or replaces) a certificate, durably.
    pub fn put_certificate(&self, thumbprint: &str, value: &[u8]) -> Result<(), StorageError> {
        let txn = self.redb.begin_write()?;
        txn.open_table(CERTIFICATES)?.insert(thumbprint, value)?;
        txn.commit()?;
        Ok(())
    }

    /// Removes a certificate; returns whether it was registered.
    pub fn delete_certificate(&self, thumbprint: &str) -> Result<bool, StorageError> {
        let txn = self.redb.begin_write()?;
        let removed = txn.open_table(CERTIFICATES)?.remove(thumbprint)?.is_some();
        txn.commit()?;
        Ok(removed)
    }
}
