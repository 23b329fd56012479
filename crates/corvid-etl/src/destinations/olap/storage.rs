//! Where OLAP ETL publishes its Parquet files: a local folder or an S3-compatible bucket
//! (`s3.rs`), behind one [`OlapStorage`].
//!
//! A file is written whole under a temporary name in a staging folder first, then published
//! under its deterministic key: a run retried after a crash replaces its own files instead of
//! adding copies, and a reader never sees a partial file. Locally the staging folder is
//! `{folder}/.corvid-staging`, on the same filesystem as the files, so publishing is a rename
//! (after an fsync of the file, and followed by one of its directory). For S3 the staging folder
//! is a local one of the server's, and publishing is one `PUT` (or a multipart upload), which
//! S3 makes visible only once complete.
//!
//! Keys are relative paths with `/` separators that the caller builds from escaped partition
//! values; this layer refuses any that could leave the folder all the same (`..`, `.`, empty
//! segments, absolute paths, `\`, NUL), and locally also a directory inside the folder that
//! is a symbolic link to somewhere outside it.

use std::io;
use std::path::{Path, PathBuf};

use crate::destination::LoadError;
use crate::destinations::olap::s3::{S3Bucket, S3Target};

/// The staging folder inside a local folder.
pub(crate) const STAGING_DIR_NAME: &str = ".corvid-staging";
/// The probe file `check` writes and removes.
const PROBE_FILE_NAME: &str = ".corvid-probe";
/// `ENOSPC` and `EDQUOT` on Linux, where std has no stable kind for a quota.
const ENOSPC: i32 = 28;
const EDQUOT: i32 = 122;

/// Where an OLAP ETL task publishes its files.
// One per task, never in a collection: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum OlapStorage {
    Local(LocalFolder),
    S3(S3Bucket),
}

/// A local folder (the task's root) and its staging folder inside it.
#[derive(Debug)]
pub(crate) struct LocalFolder {
    root: PathBuf,
    staging: PathBuf,
}

impl OlapStorage {
    /// `folder` is the task's root; staging is `{folder}/.corvid-staging` (same filesystem,
    /// so a rename publishes atomically).
    pub fn local(folder: PathBuf) -> OlapStorage {
        let staging = folder.join(STAGING_DIR_NAME);
        OlapStorage::Local(LocalFolder {
            root: folder,
            staging,
        })
    }

    /// `staging` is a local folder (under the server's data directory) where files are
    /// written before upload.
    pub fn s3(target: S3Target, staging: PathBuf) -> Result<OlapStorage, LoadError> {
        Ok(OlapStorage::S3(S3Bucket::new(target, staging)?))
    }

    /// Where the caller writes files before [`OlapStorage::publish`] (created by
    /// [`OlapStorage::check`]).
    pub fn staging_dir(&self) -> &Path {
        match self {
            OlapStorage::Local(local) => &local.staging,
            OlapStorage::S3(bucket) => bucket.staging_dir(),
        }
    }

    /// Checks that files can be published: the folder exists or can be created and is
    /// writable (a probe file written and removed); the bucket exists and the credentials
    /// work. Creates the staging folder and removes what an earlier process left in it, so
    /// call it before writing files there.
    pub async fn check(&self) -> Result<(), LoadError> {
        match self {
            OlapStorage::Local(local) => local.check().await,
            OlapStorage::S3(bucket) => bucket.check().await,
        }
    }

    /// Publishes the finished file `file` (inside [`OlapStorage::staging_dir`]) under `key`
    /// atomically and durably, then removes the staged file.
    pub async fn publish(&self, file: &Path, key: &str) -> Result<(), LoadError> {
        match self {
            OlapStorage::Local(local) => local.publish(file, key).await,
            OlapStorage::S3(bucket) => bucket.publish(file, key).await,
        }
    }

    /// Deletes a published key; a missing key is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), LoadError> {
        match self {
            OlapStorage::Local(local) => local.delete(key).await,
            OlapStorage::S3(bucket) => bucket.delete(key).await,
        }
    }

    /// The keys under a prefix (`Orders/`), relative to the root, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, LoadError> {
        match self {
            OlapStorage::Local(local) => local.list(prefix).await,
            OlapStorage::S3(bucket) => bucket.list(prefix).await,
        }
    }

    /// Downloads a key to a local file (for compaction).
    #[cfg(test)]
    pub async fn download(&self, key: &str, to: &Path) -> Result<(), LoadError> {
        match self {
            OlapStorage::Local(local) => local.download(key, to).await,
            OlapStorage::S3(bucket) => bucket.download(key, to).await,
        }
    }

    /// Where files go, for messages and the task list (no credentials).
    pub fn describe(&self) -> String {
        match self {
            OlapStorage::Local(local) => local.root.display().to_string(),
            OlapStorage::S3(bucket) => bucket.describe(),
        }
    }
}

impl LocalFolder {
    async fn check(&self) -> Result<(), LoadError> {
        let root = self.root.clone();
        let staging = self.staging.clone();
        blocking(move || {
            match std::fs::metadata(&root) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => {
                    return Err(LoadError::Configuration {
                        message: format!("OLAP folder {} is not a directory", root.display()),
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(&root).map_err(|error| {
                        io_error(
                            &error,
                            &format!("failed to create folder {}", root.display()),
                        )
                    })?;
                }
                Err(error) => {
                    return Err(io_error(
                        &error,
                        &format!("failed to read folder {}", root.display()),
                    ));
                }
            }
            let probe = root.join(PROBE_FILE_NAME);
            std::fs::write(&probe, b"corvid").map_err(|error| {
                io_error(
                    &error,
                    &format!("folder {} is not writable", root.display()),
                )
            })?;
            std::fs::remove_file(&probe).map_err(|error| {
                io_error(&error, &format!("failed to remove {}", probe.display()))
            })?;
            Ok(())
        })
        .await?;
        prepare_staging(&staging).await
    }

    async fn publish(&self, file: &Path, key: &str) -> Result<(), LoadError> {
        let segments = key_segments(key)?;
        let (file_name, parents) = segments
            .split_last()
            .map(|(last, parents)| {
                (
                    (*last).to_owned(),
                    parents
                        .iter()
                        .map(|it| (*it).to_owned())
                        .collect::<Vec<_>>(),
                )
            })
            .ok_or_else(|| invalid_key(key, "it is empty"))?;
        check_staged(file, &self.staging)?;
        let root = self.root.clone();
        let file = file.to_owned();
        let key = key.to_owned();
        blocking(move || {
            std::fs::File::open(&file)
                .and_then(|it| it.sync_all())
                .map_err(|error| io_error(&error, &format!("failed to sync {}", file.display())))?;
            let parent = make_parent_dirs(&root, &parents, &key)?;
            let target = parent.join(&file_name);
            std::fs::rename(&file, &target).map_err(|error| {
                io_error(
                    &error,
                    &format!(
                        "failed to publish {} as {}",
                        file.display(),
                        target.display()
                    ),
                )
            })?;
            sync_dir(&parent)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), LoadError> {
        let segments = key_segments(key)?;
        let root = self.root.clone();
        let relative: PathBuf = segments.iter().collect();
        let key = key.to_owned();
        blocking(move || {
            let path = root.join(&relative);
            match inside_root(&root, &path, &key) {
                Ok(()) => {}
                Err(InsideRoot::Missing) => return Ok(()),
                Err(InsideRoot::Error(error)) => return Err(error),
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(error) => {
                    return Err(io_error(
                        &error,
                        &format!("failed to delete {}", path.display()),
                    ));
                }
            }
            match path.parent() {
                Some(parent) => sync_dir(parent),
                None => Ok(()),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, LoadError> {
        check_prefix(prefix)?;
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            let mut keys = Vec::new();
            match std::fs::symlink_metadata(&root) {
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(keys),
                _ => {}
            }
            walk(&root, "", &prefix, &mut keys)?;
            keys.sort();
            Ok(keys)
        })
        .await
    }

    #[cfg(test)]
    async fn download(&self, key: &str, to: &Path) -> Result<(), LoadError> {
        let segments = key_segments(key)?;
        let root = self.root.clone();
        let relative: PathBuf = segments.iter().collect();
        let to = to.to_owned();
        let key = key.to_owned();
        blocking(move || {
            let path = root.join(&relative);
            match inside_root(&root, &path, &key) {
                Ok(()) => {}
                Err(InsideRoot::Missing) => {
                    return Err(LoadError::Configuration {
                        message: format!("OLAP file `{key}` does not exist in {}", root.display()),
                    });
                }
                Err(InsideRoot::Error(error)) => return Err(error),
            }
            std::fs::copy(&path, &to).map_err(|error| match error.kind() {
                io::ErrorKind::NotFound => LoadError::Configuration {
                    message: format!("OLAP file `{key}` does not exist in {}", root.display()),
                },
                _ => io_error(
                    &error,
                    &format!("failed to copy {} to {}", path.display(), to.display()),
                ),
            })?;
            Ok(())
        })
        .await
    }
}

/// The segments of a key, or a Configuration error when it is not a plain relative path:
/// absolute, with `\` or NUL, or with an empty, `.` or `..` segment.
pub(crate) fn key_segments(key: &str) -> Result<Vec<&str>, LoadError> {
    if key.is_empty() {
        return Err(invalid_key(key, "it is empty"));
    }
    if key.starts_with('/') {
        return Err(invalid_key(key, "it is absolute"));
    }
    if key.contains('\\') {
        return Err(invalid_key(key, "it contains `\\`"));
    }
    if key.contains('\0') {
        return Err(invalid_key(key, "it contains NUL"));
    }
    let segments: Vec<&str> = key.split('/').collect();
    for segment in &segments {
        match *segment {
            "" => return Err(invalid_key(key, "it has an empty segment")),
            "." | ".." => return Err(invalid_key(key, &format!("it has a `{segment}` segment"))),
            _ => {}
        }
    }
    Ok(segments)
}

/// Checks a listing prefix: relative, no `\`, NUL or `.`/`..` segment (an empty last
/// segment is fine: `Orders/`).
pub(crate) fn check_prefix(prefix: &str) -> Result<(), LoadError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let whole = prefix.strip_suffix('/').unwrap_or(prefix);
    key_segments(whole).map(|_| ())
}

fn invalid_key(key: &str, reason: &str) -> LoadError {
    LoadError::Configuration {
        message: format!(
            "refused to write OLAP file `{}`: {reason}",
            key.escape_debug()
        ),
    }
}

/// Classifies a local I/O error; `what` says what failed.
pub(crate) fn io_error(error: &io::Error, what: &str) -> LoadError {
    match error.kind() {
        io::ErrorKind::PermissionDenied
        | io::ErrorKind::ReadOnlyFilesystem
        | io::ErrorKind::NotADirectory
        | io::ErrorKind::IsADirectory
        | io::ErrorKind::AlreadyExists
        | io::ErrorKind::InvalidFilename => LoadError::Configuration {
            message: format!("{what}: {error}"),
        },
        io::ErrorKind::StorageFull => LoadError::Reconnect {
            message: format!("{what}: the disk is full ({error})"),
        },
        io::ErrorKind::QuotaExceeded => LoadError::Reconnect {
            message: format!("{what}: the disk quota is exhausted ({error})"),
        },
        _ => match error.raw_os_error() {
            Some(ENOSPC) => LoadError::Reconnect {
                message: format!("{what}: the disk is full ({error})"),
            },
            Some(EDQUOT) => LoadError::Reconnect {
                message: format!("{what}: the disk quota is exhausted ({error})"),
            },
            _ => LoadError::Reconnect {
                message: format!("{what}: {error}"),
            },
        },
    }
}

/// Checks that `file` is in the staging folder (a rename from elsewhere might cross
/// filesystems, and publishing removes the file).
pub(crate) fn check_staged(file: &Path, staging: &Path) -> Result<(), LoadError> {
    if file.parent() == Some(staging) {
        return Ok(());
    }
    Err(LoadError::Configuration {
        message: format!(
            "cannot publish {}: it is not in the staging folder {}",
            file.display(),
            staging.display()
        ),
    })
}

/// Creates a staging folder and removes what an earlier process left in it.
pub(crate) async fn prepare_staging(staging: &Path) -> Result<(), LoadError> {
    let staging = staging.to_owned();
    blocking(move || {
        std::fs::create_dir_all(&staging).map_err(|error| {
            io_error(
                &error,
                &format!("failed to create folder {}", staging.display()),
            )
        })?;
        empty_folder(&staging)
    })
    .await
}

/// Runs blocking filesystem work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, LoadError> + Send + 'static,
) -> Result<T, LoadError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(res) => res,
        Err(error) => Err(LoadError::Reconnect {
            message: format!("the OLAP file operation stopped: {error}"),
        }),
    }
}

/// Removes everything in `folder`.
fn empty_folder(folder: &Path) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(folder)
        .map_err(|error| io_error(&error, &format!("failed to read {}", folder.display())))?;
    for entry in entries {
        let entry = entry
            .map_err(|error| io_error(&error, &format!("failed to read {}", folder.display())))?;
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|it| it.is_dir());
        let res = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        res.map_err(|error| io_error(&error, &format!("failed to remove {}", path.display())))?;
    }
    Ok(())
}

/// Makes the directories of `parents` under `root` one by one and returns the last, refusing
/// a non-directory or a symbolic link that leads outside the root. A new directory is made
/// durable by an fsync of its parent.
fn make_parent_dirs(root: &Path, parents: &[String], key: &str) -> Result<PathBuf, LoadError> {
    let canonical_root = std::fs::canonicalize(root)
        .map_err(|error| io_error(&error, &format!("failed to resolve {}", root.display())))?;
    let mut current = canonical_root.clone();
    for segment in parents {
        let next = current.join(segment);
        match std::fs::symlink_metadata(&next) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                match std::fs::create_dir(&next) {
                    Ok(()) => sync_dir(&current)?,
                    // Made by another process in between: checked below.
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(error) => {
                        return Err(io_error(
                            &error,
                            &format!("failed to create folder {}", next.display()),
                        ));
                    }
                }
            }
            Err(error) => {
                return Err(io_error(
                    &error,
                    &format!("failed to read {}", next.display()),
                ));
            }
            Ok(metadata) if metadata.is_dir() => {}
            Ok(metadata) if metadata.file_type().is_symlink() => {
                // Followed only when it stays inside the root: checked before anything is
                // made below it.
                let resolved = std::fs::canonicalize(&next).map_err(|error| {
                    io_error(&error, &format!("failed to resolve {}", next.display()))
                })?;
                if !resolved.starts_with(&canonical_root) {
                    return Err(escapes_root(key, root, &resolved));
                }
            }
            Ok(_) => {
                return Err(LoadError::Configuration {
                    message: format!(
                        "cannot publish OLAP file `{key}`: {} is not a directory",
                        next.display()
                    ),
                });
            }
        }
        current = next;
    }
    // The parent as the rename will see it, symbolic links resolved: inside the root.
    let canonical_parent = std::fs::canonicalize(&current)
        .map_err(|error| io_error(&error, &format!("failed to resolve {}", current.display())))?;
    if !canonical_parent.starts_with(&canonical_root) {
        return Err(escapes_root(key, root, &canonical_parent));
    }
    if !canonical_parent.is_dir() {
        return Err(LoadError::Configuration {
            message: format!(
                "cannot publish OLAP file `{key}`: {} is not a directory",
                current.display()
            ),
        });
    }
    Ok(canonical_parent)
}

/// Why a path is not a file inside the root.
enum InsideRoot {
    /// The path's folder does not exist.
    Missing,
    Error(LoadError),
}

/// Checks that the folder of `path` (under `root`), symbolic links resolved, is inside the
/// root.
fn inside_root(root: &Path, path: &Path, key: &str) -> Result<(), InsideRoot> {
    let canonical_root = std::fs::canonicalize(root).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => InsideRoot::Missing,
        _ => InsideRoot::Error(io_error(
            &error,
            &format!("failed to resolve {}", root.display()),
        )),
    })?;
    let Some(parent) = path.parent() else {
        return Err(InsideRoot::Missing);
    };
    let canonical_parent = std::fs::canonicalize(parent).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => InsideRoot::Missing,
        _ => InsideRoot::Error(io_error(
            &error,
            &format!("failed to resolve {}", parent.display()),
        )),
    })?;
    if !canonical_parent.starts_with(&canonical_root) {
        return Err(InsideRoot::Error(escapes_root(
            key,
            root,
            &canonical_parent,
        )));
    }
    Ok(())
}

fn escapes_root(key: &str, root: &Path, resolved: &Path) -> LoadError {
    LoadError::Configuration {
        message: format!(
            "refused OLAP file `{key}`: its folder resolves to {}, outside {} (a symbolic link)",
            resolved.display(),
            root.display()
        ),
    }
}

/// Adds the files under `dir` (`relative` to the root) whose keys start with `prefix`;
/// descends only into real directories that may hold such keys, never into the staging
/// folder or through symbolic links.
fn walk(dir: &Path, relative: &str, prefix: &str, keys: &mut Vec<String>) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|error| io_error(&error, &format!("failed to read {}", dir.display())))?;
    for entry in entries {
        let entry = entry
            .map_err(|error| io_error(&error, &format!("failed to read {}", dir.display())))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            // Not UTF-8: no key of ours.
            continue;
        };
        if relative.is_empty() && (name == STAGING_DIR_NAME || name == PROBE_FILE_NAME) {
            continue;
        }
        let key = format!("{relative}{name}");
        let file_type = entry.file_type().map_err(|error| {
            io_error(
                &error,
                &format!("failed to read {}", entry.path().display()),
            )
        })?;
        if file_type.is_dir() {
            let dir_key = format!("{key}/");
            if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                walk(&entry.path(), &dir_key, prefix, keys)?;
            }
        } else if file_type.is_file() && key.starts_with(prefix) {
            keys.push(key);
        }
    }
    Ok(())
}

/// Makes a directory's entries durable (a rename or a new entry in it).
fn sync_dir(dir: &Path) -> Result<(), LoadError> {
    std::fs::File::open(dir)
        .and_then(|it| it.sync_all())
        .map_err(|error| io_error(&error, &format!("failed to sync folder {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn folder() -> (tempfile::TempDir, OlapStorage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = OlapStorage::local(dir.path().join("olap"));
        (dir, storage)
    }

    /// Writes `content` as a staged file of `storage`.
    fn stage(storage: &OlapStorage, name: &str, content: &[u8]) -> PathBuf {
        let path = storage.staging_dir().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn is_configuration(res: &Result<(), LoadError>, needle: &str) -> bool {
        match res {
            Err(LoadError::Configuration { message }) => message.contains(needle),
            _ => false,
        }
    }

    #[tokio::test]
    async fn publish_moves_the_whole_file_under_its_key_and_empties_staging() {
        let (dir, storage) = folder();
        storage.check().await.unwrap();
        let content: Vec<u8> = (0..100_000u32).flat_map(u32::to_le_bytes).collect();
        let staged = stage(&storage, "tmp-1.parquet", &content);
        let key = "Orders/year=2024/month=3/shop_orders-task_Script1_000000000000001234.parquet";
        storage.publish(&staged, key).await.unwrap();
        let published = dir.path().join("olap").join(key);
        assert_eq!(std::fs::read(&published).unwrap(), content);
        assert!(!staged.exists());
        assert_eq!(std::fs::read_dir(storage.staging_dir()).unwrap().count(), 0);
        // Published again (a retried run): replaced, not duplicated.
        let staged = stage(&storage, "tmp-2.parquet", b"second");
        storage.publish(&staged, key).await.unwrap();
        assert_eq!(std::fs::read(&published).unwrap(), b"second");
        assert_eq!(storage.list("Orders/").await.unwrap(), vec![key.to_owned()]);
    }

    #[tokio::test]
    async fn check_empties_what_an_earlier_process_left_in_staging() {
        let (_dir, storage) = folder();
        storage.check().await.unwrap();
        let left = stage(&storage, "left-over.parquet", b"partial");
        std::fs::create_dir(storage.staging_dir().join("sub")).unwrap();
        storage.check().await.unwrap();
        assert!(!left.exists());
        assert_eq!(std::fs::read_dir(storage.staging_dir()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn keys_that_could_leave_the_folder_are_refused() {
        let (dir, storage) = folder();
        storage.check().await.unwrap();
        for key in [
            "../outside.parquet",
            "Orders/../../outside.parquet",
            "/tmp/outside.parquet",
            "Orders\\outside.parquet",
            "Orders/./a.parquet",
            "Orders//a.parquet",
            "Orders/",
            "",
            "Orders/a\0.parquet",
        ] {
            let staged = stage(&storage, "tmp.parquet", b"x");
            let res = storage.publish(&staged, key).await;
            assert!(is_configuration(&res, "refused"), "{key:?}: {res:?}");
            assert!(staged.exists(), "{key:?}: the staged file stays");
            assert!(storage.delete(key).await.is_err(), "{key:?}");
        }
        assert!(!dir.path().join("outside.parquet").exists());
        assert!(storage.list("../").await.is_err());
    }

    #[tokio::test]
    async fn a_symbolic_link_leading_outside_the_folder_is_refused() {
        let (dir, storage) = folder();
        storage.check().await.unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("olap/Orders")).unwrap();
        let staged = stage(&storage, "tmp.parquet", b"x");
        let res = storage.publish(&staged, "Orders/year=2024/a.parquet").await;
        assert!(is_configuration(&res, "outside"), "{res:?}");
        assert!(staged.exists());
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing made outside"
        );
        std::fs::write(outside.join("a.parquet"), b"theirs").unwrap();
        let res = storage.delete("Orders/a.parquet").await;
        assert!(is_configuration(&res, "outside"), "{res:?}");
        assert!(outside.join("a.parquet").exists());
        let res = storage
            .download("Orders/a.parquet", &dir.path().join("copy"))
            .await;
        assert!(is_configuration(&res, "outside"), "{res:?}");
        // A link that stays inside the folder is fine.
        std::fs::create_dir(dir.path().join("olap/real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("olap/real"), dir.path().join("olap/Inside"))
            .unwrap();
        storage.publish(&staged, "Inside/a.parquet").await.unwrap();
        assert!(dir.path().join("olap/real/a.parquet").exists());
    }

    #[tokio::test]
    async fn an_unwritable_folder_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        // Root writes through 0o500, so there the folder is made impossible another way:
        // below a regular file ("not a directory").
        let root_ignores_modes = std::fs::write(locked.join("probe"), b"x").is_ok();
        let storage = if root_ignores_modes {
            std::fs::write(dir.path().join("file"), b"x").unwrap();
            OlapStorage::local(dir.path().join("file/olap"))
        } else {
            OlapStorage::local(locked.join("olap"))
        };
        let res = storage.check().await;
        assert!(
            matches!(res, Err(LoadError::Configuration { .. })),
            "{res:?}"
        );
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        // The folder itself a regular file.
        let storage = OlapStorage::local(dir.path().join("plain"));
        std::fs::write(dir.path().join("plain"), b"x").unwrap();
        let res = storage.check().await;
        assert!(is_configuration(&res, "not a directory"), "{res:?}");
    }

    #[tokio::test]
    async fn list_delete_and_download() {
        let (dir, storage) = folder();
        storage.check().await.unwrap();
        // Nothing published yet.
        assert!(storage.list("").await.unwrap().is_empty());
        for (name, key) in [
            ("a", "Orders/year=2024/a.parquet"),
            ("b", "Orders/year=2025/b.parquet"),
            ("c", "Ordersx/c.parquet"),
            ("d", "Products/d.parquet"),
        ] {
            let staged = stage(&storage, name, name.as_bytes());
            storage.publish(&staged, key).await.unwrap();
        }
        // A file left in staging is not a key.
        stage(&storage, "pending", b"pending");
        assert_eq!(
            storage.list("Orders/").await.unwrap(),
            vec!["Orders/year=2024/a.parquet", "Orders/year=2025/b.parquet"]
        );
        assert_eq!(storage.list("").await.unwrap().len(), 4);
        assert_eq!(
            storage.list("Orders").await.unwrap(),
            vec![
                "Orders/year=2024/a.parquet",
                "Orders/year=2025/b.parquet",
                "Ordersx/c.parquet"
            ]
        );
        let copy = dir.path().join("copy.parquet");
        storage
            .download("Orders/year=2025/b.parquet", &copy)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), b"b");
        let res = storage.download("Orders/missing.parquet", &copy).await;
        assert!(is_configuration(&res, "does not exist"), "{res:?}");
        storage.delete("Orders/year=2024/a.parquet").await.unwrap();
        storage.delete("Orders/year=2024/a.parquet").await.unwrap();
        storage.delete("Nowhere/at/all.parquet").await.unwrap();
        assert_eq!(
            storage.list("Orders/").await.unwrap(),
            vec!["Orders/year=2025/b.parquet"]
        );
    }

    #[tokio::test]
    async fn a_file_outside_staging_is_not_published() {
        let (dir, storage) = folder();
        storage.check().await.unwrap();
        let elsewhere = dir.path().join("elsewhere.parquet");
        std::fs::write(&elsewhere, b"x").unwrap();
        let res = storage.publish(&elsewhere, "Orders/a.parquet").await;
        assert!(is_configuration(&res, "staging"), "{res:?}");
    }

    #[test]
    fn io_errors_are_classified() {
        let full = io::Error::from_raw_os_error(ENOSPC);
        match io_error(&full, "failed to write x") {
            LoadError::Reconnect { message } => {
                assert!(message.contains("disk is full"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(matches!(
            io_error(&denied, "x"),
            LoadError::Configuration { .. }
        ));
        let read_only = io::Error::from_raw_os_error(30); // EROFS
        assert!(matches!(
            io_error(&read_only, "x"),
            LoadError::Configuration { .. }
        ));
        let not_dir = io::Error::from_raw_os_error(20); // ENOTDIR
        assert!(matches!(
            io_error(&not_dir, "x"),
            LoadError::Configuration { .. }
        ));
        let other = io::Error::from_raw_os_error(5); // EIO
        assert!(matches!(io_error(&other, "x"), LoadError::Reconnect { .. }));
    }
}
