//! One database: a redb file, its writer thread (the transaction merger) and commit
//! notifications.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Durability, ReadableDatabase};

use crate::error::{OpenError, ReadError, StorageError, WriteError};
use crate::record::Etag;
use crate::snapshot::{Snapshot, decode_u64};
use crate::storage::StorageOptions;
use crate::tables::{
    ATTACHMENTS, BLOB_REFS, BLOBS, COLLECTIONS, DOCS, DOCS_BY_COLLECTION, DOCS_BY_ETAG,
    FORMAT_VERSION, IDENTITIES, META, RECORDS, REPLICATION, TOMBSTONES, TOMBSTONES_BY_COLLECTION,
};
use crate::time::Timestamp;
use crate::write::{Applier, WriteOp, WriteResult};

/// How many pending requests the writer merges into one transaction at most.
const MAX_MERGED_REQUESTS: usize = 512;
/// How many operations the writer merges into one transaction at most.
const MAX_MERGED_OPS: usize = 64 * 1024;

/// What a commit changed, published to subscribers after the commit is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitNotice {
    /// The database's last etag after the commit.
    pub last_etag: Etag,
    /// The collections (display names) whose documents or tombstones changed.
    pub collections: Vec<String>,
}

/// Called with the result of a write request once it is durable (or failed).
pub type WriteCallback = Box<dyn FnOnce(Result<Vec<WriteResult>, WriteError>) + Send>;

/// Called with the results of a request in parts, one list per part, once it is durable (or
/// failed). Kept per part so the writer never grows one long list as the parts come in.
pub type PartsCallback = Box<dyn FnOnce(Result<Vec<Vec<WriteResult>>, WriteError>) + Send>;

/// Called with the outcome of each request of a group applied by [`Database::apply_group_async`],
/// in the order of the requests, once the group's transaction is committed (or failed).
pub type GroupCallback = Box<dyn FnOnce(Vec<Result<Vec<WriteResult>, WriteError>>) + Send>;

/// Where a replicated database sends its writes instead of its own writer: its database
/// group's log (corvid-cluster, docs/design/cluster.md §3). The group commits a request on a
/// majority of its members, each member applies it through [`Database::apply_marked_async`],
/// and `reply` gets the outcome once it is applied on this member.
pub trait Replicator: Send + Sync {
    /// Takes one request (its operations in order).
    fn replicate(&self, ops: Vec<WriteOp>, reply: WriteCallback);

    /// Answers whether this member may act for the database now — it leads the group, a
    /// majority confirms it, and it has applied everything committed before — so that work done
    /// outside the database (an ETL batch sent to a destination) is never done by a member
    /// that was deposed or cut off.
    fn confirm(&self, reply: Box<dyn FnOnce(bool) + Send>);
}

/// Whether the commit of a group applied by [`Database::apply_group`] waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyDurability {
    /// The commit is on disk (fsync) before the group is answered, as with [`Database::write`].
    Durable,
    /// The commit is not flushed: it becomes durable with the next durable commit of this
    /// database, and a crash before that loses it. For a caller whose own log is the durable
    /// copy of what it applies (redb `Durability::None`). redb reuses the pages such commits
    /// free only after a durable commit, so a long run of them grows the file until one comes.
    Deferred,
}

type Subscriber = Arc<dyn Fn(&CommitNotice) + Send + Sync>;

/// One part of a write request handed to the writer in parts ([`Database::write_in_parts_async`]).
#[derive(Debug)]
pub enum RequestPart {
    /// The next operations of the request, in order.
    Ops(Vec<WriteOp>),
    /// The request is complete: it may commit.
    End,
}

/// What the writer thread receives.
enum Queued {
    /// A request of [`Database::write_async`] or [`Database::write_in_parts_async`], merged with
    /// others queued at the same time.
    Request(WriteRequest, Reply),
    /// A group of [`Database::apply_group_async`]: one transaction of its own, never merged.
    Group(AppliedGroup),
}

/// A group of requests to apply as one transaction, at a time and durability its caller chose.
struct AppliedGroup {
    requests: Vec<WriteRequest>,
    now: Timestamp,
    durability: ApplyDurability,
    /// Values written to the replication table in the same transaction (a replicated log's
    /// applied position); with any, the transaction commits even if the requests wrote nothing.
    marks: Vec<(String, Vec<u8>)>,
    reply: GroupCallback,
}

struct WriteRequest {
    /// The operations received so far, one list per part (a whole request is one part).
    parts: Vec<Vec<WriteOp>>,
    /// Where the rest of a request in parts comes from, until its `End`.
    more: Option<Receiver<RequestPart>>,
}

impl WriteRequest {
    fn whole(ops: Vec<WriteOp>) -> WriteRequest {
        WriteRequest {
            parts: vec![ops],
            more: None,
        }
    }

    fn n_ops(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }
}

enum Reply {
    Whole(WriteCallback),
    InParts(PartsCallback),
}

impl Reply {
    fn send(self, outcome: Result<Vec<Vec<WriteResult>>, WriteError>) {
        match self {
            Reply::InParts(reply) => reply(outcome),
            Reply::Whole(reply) => reply(outcome.map(|mut parts| {
                if parts.len() == 1 {
                    parts.pop().unwrap_or_default()
                } else {
                    parts.concat()
                }
            })),
        }
    }
}

/// An open database. Cheap to share through `Arc`; reads run on the caller's thread, writes
/// go through the database's writer thread.
pub struct Database {
    name: String,
    path: PathBuf,
    db_id: Arc<str>,
    redb: Arc<redb::Database>,
    last_etag: Arc<AtomicU64>,
    subscribers: Arc<Mutex<Vec<(u64, Subscriber)>>>,
    next_subscriber: AtomicU64,
    sender: Mutex<Option<Sender<Queued>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// A member of a database group: its writes go through [`Replicator`], never straight to
    /// the writer (stored in the file, so it holds from the moment the file is opened).
    replicated: bool,
    replicator: std::sync::RwLock<Option<Arc<dyn Replicator>>>,
}

impl Database {
    /// Creates a new database file with the given id (the part of change vectors after the
    /// etag). Fails if the file exists.
    pub(crate) fn create(
        name: &str,
        path: &Path,
        options: &StorageOptions,
        db_id: String,
        replicated: bool,
    ) -> Result<Database, OpenError> {
        if path.exists() {
            return Err(OpenError::AlreadyExists {
                name: name.to_owned(),
            });
        }
        let redb = redb::Database::builder()
            .set_cache_size(options.cache_bytes_per_database)
            .create(path)
            .map_err(StorageError::from)?;
        let txn = redb.begin_write().map_err(StorageError::from)?;
        {
            let mut meta = txn.open_table(META).map_err(StorageError::from)?;
            meta.insert("db_id", db_id.as_bytes())
                .map_err(StorageError::from)?;
            meta.insert("name", name.as_bytes())
                .map_err(StorageError::from)?;
            meta.insert("last_etag", 0u64.to_le_bytes().as_slice())
                .map_err(StorageError::from)?;
            meta.insert("format_version", FORMAT_VERSION.to_le_bytes().as_slice())
                .map_err(StorageError::from)?;
            if replicated {
                meta.insert("replicated", [1u8].as_slice())
                    .map_err(StorageError::from)?;
            }
            create_tables(&txn)?;
        }
        txn.commit().map_err(StorageError::from)?;
        Database::start(name.to_owned(), path, redb, db_id, 0, replicated)
    }

    /// Opens an existing database file and returns it with the name stored in it.
    pub(crate) fn open(path: &Path, options: &StorageOptions) -> Result<Database, OpenError> {
        let redb = redb::Database::builder()
            .set_cache_size(options.cache_bytes_per_database)
            .open(path)
            .map_err(StorageError::from)?;
        let txn = redb.begin_read().map_err(StorageError::from)?;
        let meta = txn.open_table(META).map_err(StorageError::from)?;
        let text = |key: &'static str| -> Result<String, StorageError> {
            let value = meta.get(key)?;
            let bytes = value
                .as_ref()
                .map(|it| it.value().to_vec())
                .unwrap_or_default();
            String::from_utf8(bytes).map_err(|_| StorageError::Corrupted {
                table: "meta",
                reason: format!("`{key}` is not UTF-8"),
            })
        };
        let name = text("name")?;
        let db_id = text("db_id")?;
        let version = match meta.get("format_version").map_err(StorageError::from)? {
            Some(it) => decode_u64(it.value())?,
            None => 0,
        };
        if version != FORMAT_VERSION || name.is_empty() || db_id.is_empty() {
            return Err(StorageError::Corrupted {
                table: "meta",
                reason: format!(
                    "unsupported format version {version} (this build reads {FORMAT_VERSION})"
                ),
            }
            .into());
        }
        let last_etag = match meta.get("last_etag").map_err(StorageError::from)? {
            Some(it) => decode_u64(it.value())?,
            None => 0,
        };
        let replicated = meta
            .get("replicated")
            .map_err(StorageError::from)?
            .is_some();
        drop(meta);
        drop(txn);
        // Tables added since the file was created are created empty.
        let txn = redb.begin_write().map_err(StorageError::from)?;
        create_tables(&txn)?;
        txn.commit().map_err(StorageError::from)?;
        Database::start(name, path, redb, db_id, last_etag, replicated)
    }

    fn start(
        name: String,
        path: &Path,
        redb: redb::Database,
        db_id: String,
        last_etag: Etag,
        replicated: bool,
    ) -> Result<Database, OpenError> {
        let redb = Arc::new(redb);
        let db_id: Arc<str> = db_id.into();
        let last_etag = Arc::new(AtomicU64::new(last_etag));
        let subscribers: Arc<Mutex<Vec<(u64, Subscriber)>>> = Arc::default();
        let (sender, receiver) = channel();
        let writer = Writer {
            redb: redb.clone(),
            db_id: db_id.clone(),
            last_etag: last_etag.clone(),
            subscribers: subscribers.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("corvid-writer-{name}"))
            .spawn(move || writer.run(receiver))
            .map_err(StorageError::Io)?;
        Ok(Database {
            name,
            path: path.to_owned(),
            db_id,
            redb,
            last_etag,
            subscribers,
            next_subscriber: AtomicU64::new(1),
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(handle)),
            replicated,
            replicator: std::sync::RwLock::new(None),
        })
    }

    /// Whether this database is a member of a replicated database group: its writes go
    /// through the group's [`Replicator`], and fail with [`WriteError::Unavailable`] until one
    /// is attached.
    pub fn is_replicated(&self) -> bool {
        self.replicated
    }

    /// Attaches the group's replicator (or detaches it, with `None`); writes go through it from
    /// now on. Only for a replicated database.
    pub fn set_replicator(&self, replicator: Option<Arc<dyn Replicator>>) {
        *self
            .replicator
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = replicator;
    }

    /// Where this database's writes go: `None` for the writer, `Some` for a replicator (an
    /// `Err` when the database is replicated but no replicator is attached).
    fn route(&self) -> Result<Option<Arc<dyn Replicator>>, WriteError> {
        if !self.replicated {
            return Ok(None);
        }
        match &*self
            .replicator
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some(it) => Ok(Some(it.clone())),
            None => Err(WriteError::Unavailable(format!(
                "database `{}` is not connected to its database group on this node (starting, or no longer a member)",
                self.name
            ))),
        }
    }

    /// Calls `reply` with whether this node may act for the database now: always for a
    /// database that is not replicated; for a replicated one, what its [`Replicator`] confirms
    /// (never while none is attached).
    pub fn confirm_async(&self, reply: Box<dyn FnOnce(bool) + Send>) {
        match self.route() {
            Ok(None) => reply(true),
            Ok(Some(replicator)) => replicator.confirm(reply),
            Err(_) => reply(false),
        }
    }

    /// A value the replication table holds (written by [`Database::apply_marked_async`]).
    pub fn replication_mark(&self, key: &str) -> Result<Option<Vec<u8>>, ReadError> {
        let txn = self.redb.begin_read().map_err(StorageError::from)?;
        let table = match txn.open_table(REPLICATION) {
            Ok(it) => it,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(StorageError::from(error).into()),
        };
        let value = table.get(key).map_err(StorageError::from)?;
        Ok(value.map(|it| it.value().to_vec()))
    }

    /// Returns the database name as created.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the database's id (the part of change vectors after the etag).
    pub fn id(&self) -> &str {
        &self.db_id
    }

    /// Returns the path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the etag of the last durable write.
    pub fn last_etag(&self) -> Etag {
        self.last_etag.load(Ordering::Acquire)
    }

    /// The redb file, for tests that compare every table.
    #[cfg(test)]
    pub(crate) fn redb(&self) -> &redb::Database {
        &self.redb
    }

    /// Opens a consistent read-only view.
    pub fn snapshot(&self) -> Result<Snapshot, ReadError> {
        let txn = self.redb.begin_read().map_err(StorageError::from)?;
        Ok(Snapshot::new(txn, self.db_id.clone())?)
    }

    /// Queues a write request; `reply` is called from the writer thread once the request's
    /// transaction is durable, or with the reason it failed. Requests queued at the same time
    /// are merged into one transaction; a request that fails applies none of its operations and
    /// does not affect the others.
    pub fn write_async(&self, ops: Vec<WriteOp>, reply: WriteCallback) {
        match self.route() {
            Ok(None) => {}
            Ok(Some(replicator)) => return replicator.replicate(ops, reply),
            Err(error) => return reply(Err(error)),
        }
        self.queue(Queued::Request(
            WriteRequest::whole(ops),
            Reply::Whole(reply),
        ));
    }

    /// Queues a write request whose operations arrive in parts from `parts`, so the writer
    /// applies the first parts while the sender is still preparing the next ones. The request is
    /// still one unit: it commits only after its [`RequestPart::End`], in one transaction with
    /// everything it holds, and if the sender hangs up before the `End` (or any part fails)
    /// nothing of it is written and `reply` gets [`WriteError::Abandoned`] (or the part's error).
    /// The results come one list per part.
    ///
    /// The writer waits for the parts while holding the database's write transaction, so the
    /// sender must produce them promptly from data it already has (never from a network peer)
    /// and must never wait for a write to this database.
    pub fn write_in_parts_async(&self, parts: Receiver<RequestPart>, reply: PartsCallback) {
        match self.route() {
            Ok(None) => {}
            Ok(Some(replicator)) => return replicate_in_parts(replicator, parts, reply),
            Err(error) => return reply(Err(error)),
        }
        let request = WriteRequest {
            parts: Vec::new(),
            more: Some(parts),
        };
        self.queue(Queued::Request(request, Reply::InParts(reply)));
    }

    /// Queues a group of requests (a replicated log's entry) to be applied in one transaction of
    /// its own, in order with the other writes, with `now` as the time of every timestamp it
    /// writes. The group is applied exactly as the writer applies requests merged from its
    /// queue: a request that fails on its own content gets its error and the group is applied
    /// again without it, so no request is applied in part. Applying the same groups with the
    /// same times to databases created with the same id gives the same results and contents.
    ///
    /// `reply` gets one outcome per request, in order, after subscribers were notified. With
    /// [`ApplyDurability::Deferred`] the commit is visible to readers (and subscribers) before
    /// it is durable.
    pub fn apply_group_async(
        &self,
        requests: Vec<Vec<WriteOp>>,
        now: Timestamp,
        durability: ApplyDurability,
        reply: GroupCallback,
    ) {
        self.apply_marked_async(requests, now, durability, Vec::new(), reply);
    }

    /// Applies a group like [`Database::apply_group_async`] and writes `marks` (key → value)
    /// into the replication table in the same transaction, which commits even if the requests
    /// wrote nothing: a replicated log's member records the entry it applied with what the
    /// entry did, so after a crash it resumes exactly after the last entry it kept
    /// ([`Database::replication_mark`]). Used by the database group, never through a
    /// [`Replicator`].
    pub fn apply_marked_async(
        &self,
        requests: Vec<Vec<WriteOp>>,
        now: Timestamp,
        durability: ApplyDurability,
        marks: Vec<(String, Vec<u8>)>,
        reply: GroupCallback,
    ) {
        self.queue(Queued::Group(AppliedGroup {
            requests: requests.into_iter().map(WriteRequest::whole).collect(),
            now,
            durability,
            marks,
            reply,
        }));
    }

    /// Applies a group of requests like [`Database::apply_group_async`] and waits for it.
    pub fn apply_group(
        &self,
        requests: Vec<Vec<WriteOp>>,
        now: Timestamp,
        durability: ApplyDurability,
    ) -> Vec<Result<Vec<WriteResult>, WriteError>> {
        let n_requests = requests.len();
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        self.apply_group_async(
            requests,
            now,
            durability,
            Box::new(move |outcomes| {
                let _ = sender.send(outcomes);
            }),
        );
        match receiver.recv() {
            Ok(it) => it,
            Err(_) => (0..n_requests).map(|_| Err(self.closed())).collect(),
        }
    }

    fn queue(&self, queued: Queued) {
        let sent = match &*lock(&self.sender) {
            Some(sender) => sender.send(queued).map_err(|it| it.0),
            None => Err(queued),
        };
        let Err(queued) = sent else {
            return;
        };
        match queued {
            Queued::Request(_, reply) => reply.send(Err(self.closed())),
            Queued::Group(group) => {
                (group.reply)(group.requests.iter().map(|_| Err(self.closed())).collect());
            }
        }
    }

    fn closed(&self) -> WriteError {
        WriteError::Closed {
            name: self.name.clone(),
        }
    }

    /// Writes and waits until the write is durable.
    pub fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, WriteError> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        self.write_async(
            ops,
            Box::new(move |result| {
                let _ = sender.send(result);
            }),
        );
        match receiver.recv() {
            Ok(it) => it,
            Err(_) => Err(self.closed()),
        }
    }

    /// Calls `callback` after every durable commit until the returned guard is dropped. The
    /// callback runs on the writer thread: it must be quick and must not write to this database.
    pub fn subscribe(
        &self,
        callback: impl Fn(&CommitNotice) + Send + Sync + 'static,
    ) -> Subscription {
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        lock(&self.subscribers).push((id, Arc::new(callback)));
        Subscription {
            id,
            subscribers: self.subscribers.clone(),
        }
    }

    /// Returns false once [`Database::close`] was called: writes fail with `Closed`.
    pub fn is_open(&self) -> bool {
        lock(&self.sender).is_some()
    }

    /// Stops the writer after the requests already queued; later writes fail with `Closed`.
    pub fn close(&self) {
        lock(&self.sender).take();
        if let Some(handle) = lock(&self.writer).take() {
            // The last reference may be dropped by a subscriber on the writer thread itself.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        self.close();
    }
}

/// Keeps a commit subscription alive; dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    subscribers: Arc<Mutex<Vec<(u64, Subscriber)>>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.subscribers).retain(|(id, _)| *id != self.id);
    }
}

/// Locks a mutex, going on with the data if another thread panicked while holding it: every
/// mutex here guards data that stays consistent between statements.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn create_tables(txn: &redb::WriteTransaction) -> Result<(), StorageError> {
    txn.open_table(DOCS)?;
    txn.open_table(DOCS_BY_ETAG)?;
    txn.open_table(DOCS_BY_COLLECTION)?;
    txn.open_table(TOMBSTONES)?;
    txn.open_table(TOMBSTONES_BY_COLLECTION)?;
    txn.open_table(COLLECTIONS)?;
    txn.open_table(ATTACHMENTS)?;
    txn.open_table(BLOBS)?;
    txn.open_table(BLOB_REFS)?;
    txn.open_table(IDENTITIES)?;
    txn.open_table(RECORDS)?;
    Ok(())
}

/// The writer thread: merges queued requests into one durable transaction, and applies the
/// groups of [`Database::apply_group_async`] in queue order between them.
struct Writer {
    redb: Arc<redb::Database>,
    db_id: Arc<str>,
    last_etag: Arc<AtomicU64>,
    subscribers: Arc<Mutex<Vec<(u64, Subscriber)>>>,
}

impl Writer {
    fn run(self, receiver: Receiver<Queued>) {
        // A group met while merging requests, applied after them.
        let mut held: Option<Queued> = None;
        loop {
            let queued = match held.take() {
                Some(it) => it,
                None => match receiver.recv() {
                    Ok(it) => it,
                    Err(_) => break,
                },
            };
            let (first, first_reply) = match queued {
                Queued::Request(request, reply) => (request, reply),
                Queued::Group(group) => {
                    self.apply_group(group);
                    continue;
                }
            };
            let mut n_ops = first.n_ops();
            let mut requests = vec![first];
            let mut replies = vec![first_reply];
            while requests.len() < MAX_MERGED_REQUESTS && n_ops < MAX_MERGED_OPS {
                match receiver.try_recv() {
                    Ok(Queued::Request(request, reply)) => {
                        n_ops += request.n_ops();
                        requests.push(request);
                        replies.push(reply);
                    }
                    Ok(group) => {
                        held = Some(group);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let outcomes =
                self.commit_group(&mut requests, Timestamp::now(), Durability::Immediate, &[]);
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                reply.send(outcome);
            }
        }
    }

    fn apply_group(&self, mut group: AppliedGroup) {
        let durability = match group.durability {
            ApplyDurability::Durable => Durability::Immediate,
            ApplyDurability::Deferred => Durability::None,
        };
        let outcomes = self.commit_group(&mut group.requests, group.now, durability, &group.marks);
        // Each request of a group is one part.
        let outcomes = outcomes
            .into_iter()
            .map(|outcome| outcome.map(|parts| parts.into_iter().flatten().collect()))
            .collect();
        (group.reply)(outcomes);
    }

    /// Commits a group of requests in one transaction, with `now` as the time of everything it
    /// writes, and returns each request's outcome (its results per part). A request that fails
    /// on its own content gets its error and the group is applied again without it, so no
    /// partial request is ever committed. Subscribers are notified before this returns.
    fn commit_group(
        &self,
        group: &mut [WriteRequest],
        now: Timestamp,
        durability: Durability,
        marks: &[(String, Vec<u8>)],
    ) -> Vec<Result<Vec<Vec<WriteResult>>, WriteError>> {
        let mut failed: Vec<Option<WriteError>> = group.iter().map(|_| None).collect();
        let outcome = loop {
            match self.try_commit(group, &failed, now, durability, marks) {
                Ok(Attempt::Committed(results, notice)) => break Ok((results, notice)),
                Ok(Attempt::RequestFailed(idx, error)) => failed[idx] = Some(error),
                Err(error) => break Err(error),
            }
        };
        match outcome {
            Ok((results, notice)) => {
                // Subscribers hear of a commit before its writers are answered, so a writer that
                // got its answer knows every subscriber was woken.
                if let Some(notice) = notice {
                    self.notify(&notice);
                }
                failed
                    .into_iter()
                    .zip(results)
                    .map(|(error, result)| match error {
                        Some(error) => Err(error),
                        None => Ok(result),
                    })
                    .collect()
            }
            Err(error) => {
                tracing::error!(%error, "write transaction failed");
                let message = error.to_string();
                failed
                    .into_iter()
                    .map(|failure| {
                        Err(failure.unwrap_or_else(|| {
                            WriteError::Storage(StorageError::Io(std::io::Error::other(
                                message.clone(),
                            )))
                        }))
                    })
                    .collect()
            }
        }
    }

    fn try_commit(
        &self,
        group: &mut [WriteRequest],
        failed: &[Option<WriteError>],
        now: Timestamp,
        durability: Durability,
        marks: &[(String, Vec<u8>)],
    ) -> Result<Attempt, StorageError> {
        let mut txn = self.redb.begin_write()?;
        txn.set_durability(durability)?;
        let last_etag = self.last_etag.load(Ordering::Acquire);
        let mut results = Vec::with_capacity(group.len());
        let (new_last_etag, collections, wrote_records) = {
            let mut applier = Applier::open(&txn, &self.db_id, last_etag, now)?;
            for (idx, request) in group.iter_mut().enumerate() {
                if failed[idx].is_some() {
                    results.push(Vec::new());
                    continue;
                }
                match apply_request(&mut applier, request) {
                    Ok(it) => results.push(it),
                    Err(WriteError::Storage(error)) => return Err(error),
                    Err(error) if error.is_request_error() => {
                        drop(applier);
                        txn.abort()?;
                        return Ok(Attempt::RequestFailed(idx, error));
                    }
                    Err(error) => {
                        return Err(StorageError::Io(std::io::Error::other(error.to_string())));
                    }
                }
            }
            {
                applier.finish()?;
                (
                    applier.next_etag,
                    std::mem::take(&mut applier.touched_collections),
                    applier.wrote_records,
                )
            }
        };
        let wrote_documents = new_last_etag != last_etag;
        if !wrote_documents && !wrote_records && marks.is_empty() {
            // Nothing was written (only failed requests or no-op deletes): skip the fsync.
            txn.abort()?;
            return Ok(Attempt::Committed(results, None));
        }
        if !marks.is_empty() {
            let mut table = txn.open_table(REPLICATION)?;
            for (key, value) in marks {
                table.insert(key.as_str(), value.as_slice())?;
            }
        }
        if wrote_documents {
            let mut meta = txn.open_table(META)?;
            meta.insert("last_etag", new_last_etag.to_le_bytes().as_slice())?;
        }
        txn.commit()?;
        self.last_etag.store(new_last_etag, Ordering::Release);
        // Only document changes are news to subscribers; records are settings.
        let notice = wrote_documents.then(|| CommitNotice {
            last_etag: new_last_etag,
            collections: collections.into_iter().collect(),
        });
        Ok(Attempt::Committed(results, notice))
    }

    fn notify(&self, notice: &CommitNotice) {
        let subscribers: Vec<Subscriber> = lock(&self.subscribers)
            .iter()
            .map(|(_, it)| it.clone())
            .collect();
        for subscriber in subscribers {
            let call = std::panic::AssertUnwindSafe(|| subscriber(notice));
            if std::panic::catch_unwind(call).is_err() {
                tracing::error!(last_etag = notice.last_etag, "commit subscriber panicked");
            }
        }
    }
}

/// Applies one request: the parts it holds, then (for a request in parts) each part as it
/// arrives, kept in the request so that a retry of the group applies them again. A request that
/// fails stops listening to its sender, who learns it when its next send fails.
fn apply_request(
    applier: &mut Applier<'_>,
    request: &mut WriteRequest,
) -> Result<Vec<Vec<WriteResult>>, WriteError> {
    let outcome = apply_request_parts(applier, request);
    if outcome.is_err() {
        request.more = None;
    }
    outcome
}

fn apply_request_parts(
    applier: &mut Applier<'_>,
    request: &mut WriteRequest,
) -> Result<Vec<Vec<WriteResult>>, WriteError> {
    applier.begin_request();
    let mut results = Vec::with_capacity(request.parts.len());
    for ops in &request.parts {
        results.push(applier.apply(ops)?);
    }
    while let Some(more) = &request.more {
        match more.recv() {
            Ok(RequestPart::Ops(ops)) => {
                results.push(applier.apply(&ops)?);
                request.parts.push(ops);
            }
            Ok(RequestPart::End) => request.more = None,
            Err(_) => return Err(WriteError::Abandoned),
        }
    }
    Ok(results)
}

enum Attempt {
    /// Per request, its results per part.
    Committed(Vec<Vec<Vec<WriteResult>>>, Option<CommitNotice>),
    RequestFailed(usize, WriteError),
}

/// Hands a request that arrives in parts to a replicator: the parts are collected on a thread
/// of their own (their sender produces them from data it holds), the whole request replicated
/// as one, and its results split back into one list per part.
fn replicate_in_parts(
    replicator: Arc<dyn Replicator>,
    parts: Receiver<RequestPart>,
    reply: PartsCallback,
) {
    let collect = move || {
        let mut ops = Vec::new();
        let mut lengths = Vec::new();
        loop {
            match parts.recv() {
                Ok(RequestPart::Ops(part)) => {
                    lengths.push(part.len());
                    ops.extend(part);
                }
                Ok(RequestPart::End) => break,
                Err(_) => return reply(Err(WriteError::Abandoned)),
            }
        }
        replicator.replicate(
            ops,
            Box::new(move |outcome| {
                reply(outcome.map(|results| {
                    let mut results = results.into_iter();
                    lengths
                        .iter()
                        .map(|n| results.by_ref().take(*n).collect())
                        .collect()
                }))
            }),
        );
    };
    if let Err(error) = std::thread::Builder::new()
        .name("corvid-replicate-parts".to_owned())
        .spawn(collect)
    {
        tracing::error!(%error, "cannot start a thread to collect a request in parts");
    }
}
