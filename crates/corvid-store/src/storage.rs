//! The data directory: every database of a server, one redb file each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine as _;

use crate::database::Database;
use crate::error::{OpenError, StorageError};
use crate::ids::key_of;
use crate::system::SystemStore;

/// The longest accepted database name.
pub const MAX_DATABASE_NAME: usize = 128;

/// The length of a database id: 16 random bytes in base64 without padding.
const DATABASE_ID_LEN: usize = 22;

/// How the databases of a data directory are opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOptions {
    /// The page cache of each database file, in bytes (redb's own default is 1 GiB, which a
    /// large ETL filled: 680 MiB resident for 1,000,000 small documents).
    pub cache_bytes_per_database: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            cache_bytes_per_database: 64 * 1024 * 1024,
        }
    }
}

/// All databases under one data directory (`<data>/databases/<name>.redb`).
pub struct Storage {
    root: PathBuf,
    options: StorageOptions,
    databases: RwLock<BTreeMap<String, Arc<Database>>>,
    system: SystemStore,
}

impl Storage {
    /// Opens (creating if needed) a data directory and every database in it, with the default
    /// [`StorageOptions`].
    pub fn open(root: &Path) -> Result<Storage, OpenError> {
        Storage::open_with(root, StorageOptions::default())
    }

    /// Opens (creating if needed) a data directory and every database in it.
    pub fn open_with(root: &Path, options: StorageOptions) -> Result<Storage, OpenError> {
        let databases_dir = root.join("databases");
        std::fs::create_dir_all(&databases_dir).map_err(StorageError::Io)?;
        let mut databases = BTreeMap::new();
        for entry in std::fs::read_dir(&databases_dir).map_err(StorageError::Io)? {
            let path = entry.map_err(StorageError::Io)?.path();
            if path.extension().and_then(|it| it.to_str()) != Some("redb") {
                continue;
            }
            let database = Database::open(&path, &options)?;
            tracing::info!(database = database.name(), path = %path.display(), last_etag = database.last_etag(), "opened database");
            databases.insert(key_of(database.name()), Arc::new(database));
        }
        Ok(Storage {
            root: root.to_owned(),
            options,
            databases: RwLock::new(databases),
            system: SystemStore::open(root)?,
        })
    }

    /// Returns the data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server-wide data (registered client certificates).
    pub fn system(&self) -> &SystemStore {
        &self.system
    }

    /// Creates a database with a new random id ([`new_database_id`]).
    pub fn create_database(&self, name: &str) -> Result<Arc<Database>, OpenError> {
        self.create_database_with_id(name, &new_database_id())
    }

    /// Creates a database whose change vectors carry `id`, which must look like one
    /// [`new_database_id`] returns ([`validate_database_id`]). The members of a database group
    /// share their id, so that the same writes give the same change vectors on each of them.
    pub fn create_database_with_id(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Arc<Database>, OpenError> {
        self.create(name, id, false)
    }

    /// Creates this node's copy of a replicated database (a member of its database group,
    /// docs/design/cluster.md §3): like [`Storage::create_database_with_id`], but the file
    /// remembers it is replicated, so its writes go only through the group's
    /// [`crate::Replicator`] ([`Database::is_replicated`]).
    pub fn create_replicated_database(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Arc<Database>, OpenError> {
        self.create(name, id, true)
    }

    fn create(&self, name: &str, id: &str, replicated: bool) -> Result<Arc<Database>, OpenError> {
        validate_database_name(name)?;
        validate_database_id(id)?;
        let key = key_of(name);
        let mut databases = self
            .databases
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if databases.contains_key(&key) {
            return Err(OpenError::AlreadyExists {
                name: name.to_owned(),
            });
        }
        let path = self.root.join("databases").join(format!("{key}.redb"));
        let database = Arc::new(Database::create(
            name,
            &path,
            &self.options,
            id.to_owned(),
            replicated,
        )?);
        databases.insert(key, database.clone());
        Ok(database)
    }

    /// Deletes a database and its file. Requests already holding it finish against the
    /// closed database and get `Closed` errors for new writes.
    pub fn delete_database(&self, name: &str) -> Result<(), OpenError> {
        let removed = self
            .databases
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key_of(name));
        let Some(database) = removed else {
            return Err(OpenError::NotFound {
                name: name.to_owned(),
            });
        };
        database.close();
        std::fs::remove_file(database.path()).map_err(StorageError::Io)?;
        Ok(())
    }

    /// Returns a database by name (case-insensitive).
    pub fn database(&self, name: &str) -> Option<Arc<Database>> {
        self.databases
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key_of(name))
            .cloned()
    }

    /// Returns every database, by name.
    pub fn databases(&self) -> Vec<Arc<Database>> {
        self.databases
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Stops every database's writer after the writes already queued.
    pub fn close(&self) {
        for database in self.databases() {
            database.close();
        }
    }
}

/// Windows device names, also with an extension (`nul.db` opens the device too).
fn is_reserved_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).to_ascii_lowercase();
    matches!(stem.as_str(), "con" | "prn" | "aux" | "nul")
        || ((stem.starts_with("com") || stem.starts_with("lpt"))
            && stem.len() == 4
            && matches!(stem.as_bytes()[3], b'1'..=b'9'))
}

/// Returns a new random database id: 22 ASCII letters and digits (16 random bytes in URL-safe
/// base64, `-` and `_` replaced by `x` so that the id reads as one word in a change vector).
pub fn new_database_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(uuid::Uuid::new_v4().as_bytes())
        .replace(['-', '_'], "x")
}

/// Checks a database id given by a caller: the length and alphabet of [`new_database_id`]'s.
pub fn validate_database_id(id: &str) -> Result<(), OpenError> {
    let reason = if id.len() != DATABASE_ID_LEN {
        "id must be 22 characters long"
    } else if !id.bytes().all(|it| it.is_ascii_alphanumeric()) {
        "id may contain only ASCII letters and digits"
    } else {
        return Ok(());
    };
    Err(OpenError::InvalidDatabaseId {
        id: crate::ids::truncate_for_message(id),
        reason,
    })
}

/// Checks a database name: RavenDB allows letters, digits, `_`, `-` and `.`.
pub fn validate_database_name(name: &str) -> Result<(), OpenError> {
    let reason = if name.is_empty() {
        "name is empty"
    } else if name.len() > MAX_DATABASE_NAME {
        "name is longer than 128 characters"
    } else if !name
        .chars()
        .all(|it| it.is_alphanumeric() || matches!(it, '_' | '-' | '.'))
    {
        "name may contain only letters, digits, `_`, `-` and `.`"
    } else if name.starts_with('.') || name.ends_with('.') {
        "name may not start or end with `.`"
    } else if is_reserved_device_name(name) {
        // RavenDB refuses them too: Windows cannot create such a file or folder.
        "name is reserved by Windows (CON, PRN, AUX, NUL, COM1-9, LPT1-9)"
    } else {
        return Ok(());
    };
    Err(OpenError::InvalidName {
        name: crate::ids::truncate_for_message(name),
        reason,
    })
}
