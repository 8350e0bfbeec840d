//! The store: SeaORM entities and every query the domain needs. Nothing else
//! in the server touches SQL.
//!
//! SQLite (the embedded default) gets one writer connection, a read pool and
//! a probe connection; writes start with `BEGIN IMMEDIATE`, so a transaction
//! never has to upgrade its lock halfway and hit SQLITE_BUSY. PostgreSQL gets
//! one pool for reads and writes, plus the probe connection.

mod context;
mod deletion;
pub mod entities;
mod events;
mod images;
mod jobs;
pub mod listen;
mod orchestrations;
mod perf;
mod projects;
mod retention;
mod statement_log;
mod tenants;
mod transfer;
mod tx;

pub use self::images::ImageReady;
pub use self::tx::WriteTx;
pub use self::{events::EVENTS_CHANNEL, jobs::JOBS_CHANNEL};
pub use context::{ContextLimits, ContextRows};
pub use deletion::{DELETE_CHUNK_ROWS, DELETED_NOTICE};
pub use orchestrations::{Inserted, MemoryState, NewOrchestration, NewTurn, OrchestrationTx, StoredRequest};
pub use perf::QueueCounts;
pub use retention::{RetentionPolicy, RetentionReport};
pub use transfer::{ExportSnapshot, GlobalId, ImportRows};

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use brain_migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr,
    SqliteTransactionMode, SqlxSqliteConnector, Statement, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::{
    config::{Config, SqliteSync},
    error::Error,
};

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    write: DatabaseConnection,
    read: DatabaseConnection,
    probe: DatabaseConnection,
    backend: Backend,
    max_connections: u32,
    writes: Arc<tx::WriteHealth>,
    /// The SQLite database file; `None` on PostgreSQL.
    sqlite_file: Option<Arc<PathBuf>>,
}

/// WAL frames (pages, 4 KiB each) below which the WAL is never truncated: about 8 MB of disk.
const WAL_TRUNCATE_FRAMES: i64 = 2_000;

/// A WAL this large is truncated however much space the disk has.
const WAL_MAX_BYTES: u64 = 1 << 30;

/// Free space on the database's file system below which the WAL is kept short.
const WAL_DISK_RESERVE_BYTES: u64 = 1 << 30;

/// How often the WAL is checkpointed while the disk has room.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// How often it is checkpointed while the disk is short (below [`WAL_DISK_RESERVE_BYTES`] free):
/// six writers grew the WAL by ~15 MB a second on a 32 MB disk, so a second was enough for it to
/// refill the space that had just come back, and a full disk cannot take the checkpoint's copy.
pub const CHECKPOINT_EVERY_SHORT: Duration = Duration::from_millis(100);

/// Whether the periodic checkpoint should empty the WAL (`TRUNCATE`).
///
/// Truncating holds every write back while it waits for older readers and copies the rest:
/// 60-80 ms at 2,000 orchestrations/s on the benchmark machine. Under that load the WAL grows by
/// ~12,000 frames a second, so truncating at every 2,000 frames stalled writes every second and
/// tripled Orchestrate's p99. A WAL only has to stay short when the disk is short: with less than
/// [`WAL_DISK_RESERVE_BYTES`] free (or free space unknown) it is truncated once it holds more than
/// [`WAL_TRUNCATE_FRAMES`] or a quarter of the free space; with room, only past [`WAL_MAX_BYTES`].
fn should_truncate_wal(frames: i64, wal_bytes: u64, free_bytes: Option<u64>) -> bool {
    if wal_bytes >= WAL_MAX_BYTES && frames > WAL_TRUNCATE_FRAMES {
        return true;
    }
    if disk_has_room(free_bytes) {
        return false;
    }
    frames > WAL_TRUNCATE_FRAMES
        || free_bytes.is_some_and(|free| (frames as u64).saturating_mul(WAL_FRAME_BYTES) > free / 4)
}

/// Whether the database's file system has at least [`WAL_DISK_RESERVE_BYTES`] free (unknown
/// free space counts as short).
fn disk_has_room(free_bytes: Option<u64>) -> bool {
    free_bytes.is_some_and(|free| free >= WAL_DISK_RESERVE_BYTES)
}

/// Bytes a WAL frame takes: the default 4 KiB page and its 24-byte header.
const WAL_FRAME_BYTES: u64 = 4096 + 24;

/// Bytes available to this process on the file system holding `path`.
#[cfg(unix)]
fn free_disk_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `dir` is a NUL-terminated path and `stat` a zeroed struct statvfs fills in.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(dir.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    #[allow(clippy::useless_conversion)] // the field widths differ between platforms
    Some(u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
}

/// Elsewhere the free space is unknown, so a long WAL is always truncated.
#[cfg(not(unix))]
fn free_disk_bytes(_path: &Path) -> Option<u64> {
    None
}

/// Key of the PostgreSQL advisory lock that serialises migrations across replicas.
const MIGRATION_LOCK_KEY: i64 = 0x6272_6169_6e00; // "brain\0"

impl Store {
    /// Creates the pools without connecting; [`Store::initialize`] connects and migrates.
    ///
    /// Connecting lazily lets the server bind and report NOT_SERVING while the
    /// database is still unreachable, instead of crash-looping.
    pub async fn open(config: &Config) -> Result<Self, Error> {
        let settings = &config.store;
        let acquire = settings.acquire_timeout;
        let probe_timeout = config.health.probe_timeout;
        if settings.is_sqlite() {
            let path = sqlite_path(settings.database_url.expose())?;
            if let Some(dir) = Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::store_unavailable(format!("cannot create {}: {e}", dir.display())))?;
            }
            let busy = settings.sqlite_busy_timeout;
            let synchronous = match settings.sqlite_synchronous {
                SqliteSync::Normal => SqliteSynchronous::Normal,
                SqliteSync::Full => SqliteSynchronous::Full,
            };
            let url = format!("sqlite://{path}");
            let write = sqlite_pool(&url, 1, acquire, ReleaseCheck::Full, move |o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(synchronous)
                    .busy_timeout(busy)
                    .foreign_keys(true)
                    // Statement journals of multi-row writes stay in memory instead of temp files.
                    .pragma("temp_store", "memory")
                    // The writer never checkpoints inside a commit (which would stall every
                    // queued write for the copy and its fsync); `checkpoint` does it aside.
                    .pragma("wal_autocheckpoint", "0")
                    // When the WAL starts over (the load paused), its file shrinks back to 64 MiB.
                    .pragma("journal_size_limit", "67108864")
            })
            .await?;
            let read = sqlite_pool(&url, settings.max_connections, acquire, ReleaseCheck::ReadOnly, move |o| {
                o.busy_timeout(busy).foreign_keys(true)
            })
            .await?;
            // The probe takes the write lock briefly, so its busy timeout is the probe timeout.
            let probe =
                sqlite_pool(&url, 1, probe_timeout, ReleaseCheck::Full, move |o| o.busy_timeout(probe_timeout)).await?;
            let (write, read, probe) = statement_log::attach(settings, [write, read, probe])?;
            Ok(Self {
                write,
                read,
                probe,
                backend: Backend::Sqlite,
                max_connections: settings.max_connections + 1,
                writes: Arc::default(),
                sqlite_file: Some(Arc::new(PathBuf::from(path))),
            })
        } else {
            let mut opts = ConnectOptions::new(settings.database_url.expose());
            opts.max_connections(settings.max_connections)
                .min_connections(0)
                .acquire_timeout(acquire)
                .connect_timeout(acquire)
                .connect_lazy(true)
                .sqlx_logging(false)
                .map_sqlx_postgres_pool_opts(|pool| pool.after_release(release_outside_transaction_pg));
            let pool = connect_lazy(opts).await?;
            let mut probe_opts = ConnectOptions::new(settings.database_url.expose());
            probe_opts
                .max_connections(1)
                .min_connections(0)
                .acquire_timeout(probe_timeout)
                .connect_timeout(probe_timeout)
                .connect_lazy(true)
                .sqlx_logging(false);
            let probe = connect_lazy(probe_opts).await?;
            let (pool, probe, _) = statement_log::attach(settings, [pool, probe.clone(), probe])?;
            Ok(Self {
                write: pool.clone(),
                read: pool,
                probe,
                backend: Backend::Postgres,
                max_connections: settings.max_connections,
                writes: Arc::default(),
                sqlite_file: None,
            })
        }
    }

    /// Connects and applies pending migrations. Safe to run from several
    /// replicas at once: PostgreSQL migrations hold an advisory lock, SQLite
    /// ones the write lock.
    pub async fn initialize(&self) -> Result<(), Error> {
        let txn = self.begin_transaction().await?;
        if self.backend == Backend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))
                .await
                .map_err(Error::from)?;
        }
        Migrator::up(&txn, None).await.map_err(Error::from)?;
        txn.commit().await.map_err(Error::from)?;
        Ok(())
    }

    /// Checks that the store answers a write-capable request within the probe timeout.
    ///
    /// SQLite takes and releases the write lock (`BEGIN IMMEDIATE; ROLLBACK`),
    /// so a database another process has locked counts as down. PostgreSQL
    /// runs `SELECT 1` on a dedicated connection, so a saturated pool does
    /// not look like an outage. While the last write failed because the store
    /// could not take it (a full disk answers reads and takes the lock), the
    /// probe instead commits a write of [`PROBE_WRITE_BYTES`]; the store
    /// counts as up again only once that commits.
    pub async fn ping(&self) -> Result<(), Error> {
        if self.writes.is_failing() {
            self.probe_write().await?;
            self.writes.committed();
            return Ok(());
        }
        match self.backend {
            Backend::Sqlite => {
                let txn = self.probe.begin_with_options(immediate()).await.map_err(Error::from)?;
                txn.rollback().await.map_err(Error::from)
            }
            Backend::Postgres => self.probe.execute_unprepared("SELECT 1").await.map(|_| ()).map_err(Error::from),
        }
    }

    /// Commits one row of [`PROBE_WRITE_BYTES`] in `store_probe`, on the probe connection.
    async fn probe_write(&self) -> Result<(), Error> {
        use sea_orm::{ActiveValue::Set, EntityTrait, sea_query::OnConflict};
        let txn = self.probe.begin_with_options(immediate()).await.map_err(Error::from)?;
        let row = entities::store_probe::ActiveModel {
            id: Set(1),
            written_at: Set(crate::model::now_ms()),
            padding: Set(vec![0u8; PROBE_WRITE_BYTES]),
        };
        entities::store_probe::Entity::insert(row)
            .on_conflict(
                OnConflict::column(entities::store_probe::Column::Id)
                    .update_columns([entities::store_probe::Column::WrittenAt, entities::store_probe::Column::Padding])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(Error::from)?;
        txn.commit().await.map_err(Error::from)
    }

    /// Copies committed WAL frames into the SQLite database file without
    /// blocking the writer or readers (`wal_checkpoint(PASSIVE)`, on a read
    /// connection); the server runs it every second. Nothing to do on PostgreSQL.
    ///
    /// Under steady load a passive checkpoint never lets the WAL start over:
    /// some reader is always inside it, so the file grows by every commit
    /// (24 MB in 3 s of six writers, enough to fill a small disk again right
    /// after space came back). When [`should_truncate_wal`] says the disk needs
    /// the space, the checkpoint runs `TRUNCATE` on the write connection: it
    /// waits (busy timeout) for the readers of older snapshots, copies the
    /// rest, and empties the file, holding writes back for that copy.
    ///
    /// Returns how long to wait before the next checkpoint: [`CHECKPOINT_EVERY`], or
    /// [`CHECKPOINT_EVERY_SHORT`] while the disk is short.
    pub async fn checkpoint(&self) -> Result<Duration, Error> {
        let Some(file) = &self.sqlite_file else { return Ok(CHECKPOINT_EVERY) };
        let free = free_disk_bytes(file);
        let next = if disk_has_room(free) { CHECKPOINT_EVERY } else { CHECKPOINT_EVERY_SHORT };
        let passive = Statement::from_string(self.read.get_database_backend(), "PRAGMA wal_checkpoint(PASSIVE)");
        let row = self.read.query_one_raw(passive).await.map_err(Error::from)?;
        // The row is (busy, frames in the WAL, frames checkpointed).
        let frames = row.and_then(|row| row.try_get_by_index::<i64>(1).ok()).unwrap_or(0);
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if should_truncate_wal(frames, wal_bytes, free) {
            self.write.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await.map_err(Error::from)?;
        }
        Ok(next)
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin_write(&self) -> Result<WriteTx, Error> {
        let txn = self.begin_transaction().await?;
        Ok(WriteTx::new(txn, self.backend, self.writes.clone()))
    }

    async fn begin_transaction(&self) -> Result<DatabaseTransaction, Error> {
        let options = if self.backend == Backend::Sqlite { immediate() } else { TransactionOptions::default() };
        self.write.begin_with_options(options).await.map_err(|err| {
            if is_unavailable(&err) {
                self.writes.failed();
            }
            Error::from(err)
        })
    }

    /// The connection for reads.
    pub fn reader(&self) -> &DatabaseConnection {
        &self.read
    }

    /// The database in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Connections in use, idle, and the maximum, across the read and write pools.
    pub fn pool_stats(&self) -> PoolStats {
        let (mut in_use, mut idle) = (0u32, 0u32);
        let pools: &[&DatabaseConnection] = match self.backend {
            Backend::Sqlite => &[&self.write, &self.read],
            Backend::Postgres => &[&self.write],
        };
        for pool in pools {
            // sqlx's counts are separate atomics: while a connection is replaced (a write on a
            // full disk replaces one per failed commit) the size can read as wrapped below 0, so
            // each figure is kept within the pools' maximum.
            let (size, pool_idle) = pool_size(pool, self.backend);
            let size = size.min(self.max_connections);
            let pool_idle = pool_idle.min(size);
            in_use = in_use.saturating_add(size - pool_idle);
            idle = idle.saturating_add(pool_idle);
        }
        PoolStats {
            in_use: in_use.min(self.max_connections),
            idle: idle.min(self.max_connections),
            max: self.max_connections,
        }
    }

    /// Closes every pool.
    pub async fn close(&self) {
        for pool in [&self.write, &self.read, &self.probe] {
            let _ = pool.clone().close().await;
        }
    }
}

/// Size of the row the health probe commits while writes are failing: about
/// what a large orchestration writes, so a disk with room for only a few
/// pages does not count as recovered.
pub const PROBE_WRITE_BYTES: usize = 64 * 1024;

fn immediate() -> TransactionOptions {
    TransactionOptions { sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate), ..Default::default() }
}

/// Connection pool occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Connections in use.
    pub in_use: u32,
    /// Idle connections.
    pub idle: u32,
    /// Maximum connections.
    pub max: u32,
}

fn pool_size(conn: &DatabaseConnection, backend: Backend) -> (u32, u32) {
    // The accessors panic on the wrong backend, so pick by the backend we opened.
    match backend {
        Backend::Sqlite => {
            let pool = conn.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle() as u32)
        }
        Backend::Postgres => {
            let pool = conn.get_postgres_connection_pool();
            (pool.size(), pool.num_idle() as u32)
        }
    }
}

async fn connect_lazy(opts: ConnectOptions) -> Result<DatabaseConnection, Error> {
    Database::connect(opts).await.map_err(Error::from)
}

/// sqlx `after_release` hook of the SQLite pools: a connection is reused only
/// when it is certainly outside any transaction, by sqlx's count and by SQLite's.
///
/// Why: when a statement or COMMIT fails with SQLITE_FULL or SQLITE_IOERR,
/// SQLite may already have rolled the transaction back. The ROLLBACK that
/// follows then fails ("no transaction is active"), sqlx's transaction depth
/// stays at 1, and SeaORM's next `begin` on that connection opens a
/// SAVEPOINT instead of `BEGIN IMMEDIATE`. After one more failure that leaves
/// SQLite inside a transaction, every later "commit" only releases a
/// savepoint: calls were answered OK and nothing reached the file
/// (docs/OPERATIONS.md, "Disk full"). A fresh connection has no such history.
fn release_outside_transaction_sqlite(
    conn: &mut sea_orm::sqlx::SqliteConnection,
    _meta: sea_orm::sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, Result<bool, sea_orm::sqlx::Error>> {
    use sea_orm::sqlx::Connection as _;
    Box::pin(async move {
        // Runs the ROLLBACK a dropped transaction queued, so the checks below see its outcome.
        conn.ping().await?;
        if conn.is_in_transaction() {
            tracing::warn!("a database connection came back inside a transaction; replacing it");
            return Ok(false);
        }
        let mut handle = conn.lock_handle().await?;
        // SAFETY: `lock_handle` gives exclusive access to the open database handle for the
        // lifetime of `handle`; sqlite3_get_autocommit only reads the connection's state.
        let autocommit = unsafe { libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) } != 0;
        if !autocommit {
            tracing::warn!("a database connection came back with SQLite inside a transaction; replacing it");
        }
        Ok(autocommit)
    })
}

/// The read pool's `after_release` hook: sqlx's transaction count is updated by the
/// connection's thread once a BEGIN, COMMIT or ROLLBACK (also one queued by a dropped
/// transaction) has run, so 0 means nothing is open or pending; otherwise the full check.
fn release_reader_sqlite(
    conn: &mut sea_orm::sqlx::SqliteConnection,
    meta: sea_orm::sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, Result<bool, sea_orm::sqlx::Error>> {
    use sea_orm::sqlx::Connection as _;
    if conn.is_in_transaction() {
        return release_outside_transaction_sqlite(conn, meta);
    }
    Box::pin(std::future::ready(Ok(true)))
}

/// The PostgreSQL pool's `after_release` hook: as for SQLite, a connection is
/// reused only when sqlx counts no open transaction on it (a COMMIT or ROLLBACK
/// that failed leaves the count above 0).
///
/// No round trip: sqlx lowers the count when a dropped transaction queues its
/// ROLLBACK, and its own ping after this hook sends that ROLLBACK (and closes
/// the connection if it fails). A ping here as well cost every read a second
/// round trip: GetProject on PostgreSQL took 0.171 ms of server CPU instead of
/// c097fdb's 0.130 (docs/PERFORMANCE.md, "Orchestrate under load").
fn release_outside_transaction_pg(
    conn: &mut sea_orm::sqlx::PgConnection,
    _meta: sea_orm::sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, Result<bool, sea_orm::sqlx::Error>> {
    use sea_orm::sqlx::Connection as _;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("a database connection came back inside a transaction; replacing it");
    }
    Box::pin(std::future::ready(Ok(clean)))
}

/// How a SQLite pool checks a connection coming back to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReleaseCheck {
    /// By sqlx's count and by SQLite's ([`release_outside_transaction_sqlite`]): for the
    /// connections that write, whose failed commits are what leaves a transaction open.
    Full,
    /// The read pool: by sqlx's count, which needs no round trip to the connection's thread
    /// when it is 0 (the full check when it is not). The full check's two round trips, and the
    /// ping before each use, were most of a read's cost: four thread hand-offs instead of one
    /// (perf, GetProject under ghz: `finish_task_switch` the top symbol).
    ReadOnly,
}

async fn sqlite_pool(
    url: &str,
    max: u32,
    acquire: Duration,
    check: ReleaseCheck,
    configure: impl Fn(SqliteConnectOptions) -> SqliteConnectOptions,
) -> Result<DatabaseConnection, Error> {
    use sea_orm::sqlx::ConnectOptions as _;
    let options: SqliteConnectOptions =
        url.parse().map_err(|e| Error::store_unavailable(format!("bad SQLite URL: {e}")))?;
    // Built with sqlx directly: SeaORM's `Database::connect` queries the SQLite version even when
    // lazy, so a locked or unreadable file would stop the server from starting instead of letting
    // it report NOT_SERVING until the store answers.
    // Every SQLite pool checks returned connections: readers and the probe open transactions too.
    let pool = SqlitePoolOptions::new().max_connections(max).min_connections(0).acquire_timeout(acquire);
    let pool = match check {
        ReleaseCheck::Full => pool.after_release(release_outside_transaction_sqlite),
        // A SQLite connection has no network to lose: the ping before each use tests nothing
        // a query would not.
        ReleaseCheck::ReadOnly => pool.test_before_acquire(false).after_release(release_reader_sqlite),
    };
    let pool = pool.connect_lazy_with(configure(options.disable_statement_logging()));
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

/// The file path of a `sqlite:` URL. In-memory databases are refused: the
/// writer and the read pool would each see a different empty database.
fn sqlite_path(url: &str) -> Result<String, Error> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        return Err(Error::store_unavailable(
            "database_url must name a SQLite file (in-memory databases cannot be shared by the writer and readers)",
        ));
    }
    Ok(path.to_owned())
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) { Error::store_unavailable(&err) } else { Error::internal(&err) }
    }
}

/// Whether a database error means "the store is not answering" (retryable)
/// rather than a bug: connection, pool, I/O and lock timeouts.
fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            Sqlx::Io(_) | Sqlx::Tls(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
            Sqlx::Database(db) => {
                let code = db.code().unwrap_or_default();
                // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6), SQLITE_READONLY (8), SQLITE_IOERR (10), SQLITE_FULL (13),
                // SQLITE_CANTOPEN (14);
                // PostgreSQL: class 08 (connection), 57P (operator intervention: shutdown, terminated), 53 (resources),
                // 25006 (read-only transaction: a replica, or a database switched read-only for maintenance).
                matches!(code.as_ref(), "5" | "6" | "8" | "10" | "13" | "14" | "517" | "261" | "25006")
                    || code.starts_with("08")
                    || code.starts_with("57P")
                    || code.starts_with("53")
            }
            _ => false,
        },
        _ => {
            let text = err.to_string();
            text.contains("database is locked") || text.contains("connection closed") || text.contains("PoolTimedOut")
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::sqlx::{Connection as _, Executor as _};

    use super::*;

    /// Whether SQLite itself has a transaction open on the connection.
    async fn sqlite_in_transaction(conn: &mut sea_orm::sqlx::SqliteConnection) -> bool {
        let mut handle = conn.lock_handle().await.expect("handle");
        // SAFETY: the locked handle gives exclusive access; sqlite3_get_autocommit only reads.
        (unsafe { libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) }) == 0
    }

    #[test]
    fn the_wal_is_truncated_only_when_long_and_the_disk_is_short_or_it_is_huge() {
        const GIB: u64 = 1 << 30;
        let long = WAL_TRUNCATE_FRAMES + 1;
        let long_bytes = long as u64 * 4096;
        // A short WAL is left alone while it is small beside the free space ...
        assert!(!should_truncate_wal(100, 8 << 20, Some(32 << 20)));
        // ... but not once it could fill a quarter of it, or past WAL_TRUNCATE_FRAMES.
        assert!(should_truncate_wal(WAL_TRUNCATE_FRAMES, 8 << 20, Some(30 << 20)));
        assert!(should_truncate_wal(long, long_bytes, Some(900 << 20)));
        assert!(should_truncate_wal(long, long_bytes, None));
        assert!(!should_truncate_wal(WAL_TRUNCATE_FRAMES, long_bytes, None));
        // Where the disk has room it may grow, up to WAL_MAX_BYTES.
        assert!(!should_truncate_wal(long, long_bytes, Some(50 * GIB)));
        assert!(!should_truncate_wal(250_000, GIB - 1, Some(50 * GIB)));
        assert!(should_truncate_wal(262_144, GIB, Some(50 * GIB)));
        // A large file the WAL started over in is not a long WAL.
        assert!(!should_truncate_wal(10, GIB, Some(50 * GIB)));
    }

    #[test]
    fn the_free_space_of_the_database_directory_is_known() {
        let dir = tempfile::tempdir().expect("temp dir");
        let free = free_disk_bytes(&dir.path().join("brain.db"));
        assert!(free.is_some_and(|free| free > 0), "free space of {}: {free:?}", dir.path().display());
        assert!(free_disk_bytes(Path::new("brain.db")).is_some(), "a bare file name is in the working directory");
    }

    #[tokio::test]
    async fn a_reader_whose_transaction_count_is_off_is_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("read.db").display());
        let db = sqlite_pool(&url, 1, Duration::from_secs(5), ReleaseCheck::ReadOnly, |o| o.create_if_missing(true))
            .await
            .expect("pool");
        let pool = db.get_sqlite_connection_pool();
        for _ in 0..5 {
            let mut conn = pool.acquire().await.expect("acquire");
            let mut tx = conn.begin().await.expect("begin");
            tx.execute("SELECT 1").await.expect("read");
            // SQLite ends the transaction behind sqlx's back (as after SQLITE_FULL), so the
            // ROLLBACK queued when `tx` drops fails and sqlx's count stays at 1.
            tx.execute("ROLLBACK").await.expect("rollback");
            drop(tx);
            drop(conn);
            let mut next = pool.acquire().await.expect("acquire");
            assert!(!next.is_in_transaction(), "sqlx counts no transaction: the connection was replaced");
            assert!(!sqlite_in_transaction(&mut next).await, "SQLite has none open");
            // An ordinary read transaction dropped open is rolled back and the connection kept.
            let mut tx = next.begin().await.expect("begin");
            tx.execute("SELECT 1").await.expect("read");
            drop(tx);
            drop(next);
            let mut again = pool.acquire().await.expect("acquire");
            assert!(!again.is_in_transaction());
            assert!(!sqlite_in_transaction(&mut again).await);
        }
    }
}
