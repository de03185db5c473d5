//! Opening the database: where it lives, connection settings and migrations.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::codec::sqlite_error;
use super::{Durability, SqliteOptions};
use crate::clock::SharedClock;
use crate::providers::StoreError;

/// How long a connection waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The writer's page cache, in KiB (a negative `cache_size` counts KiB).
const WRITER_CACHE_KIB: i64 = -65_536;

/// The schema, in order; `PRAGMA user_version` records how many are applied.
/// Nothing is released yet, so the schema is one initial migration; a change
/// after the first release is a new file appended here.
const MIGRATIONS: [&str; 1] = [include_str!("../../../migrations/sqlite/0001_initial.sql")];

/// Where a store's connections open the database.
#[derive(Debug, Clone)]
pub(super) struct Location {
    /// Path or URI given to SQLite.
    target: PathBuf,
    /// Whether `target` is a private in-memory database (a `memdb` URI), which
    /// lives as long as one of its connections does and has no WAL.
    memory: bool,
    synchronous: Durability,
    /// The store's clock: every time it writes or compares is read from it.
    pub(super) clock: SharedClock,
}

impl Location {
    /// Parses `url`: `sqlite:./file.db`, `sqlite:///abs/file.db`, a bare path,
    /// or `sqlite::memory:` for a private in-memory database. A query string
    /// (`?mode=rwc`) is accepted and ignored: files are always created.
    pub(super) fn parse(url: &str, options: &SqliteOptions) -> Result<Self, StoreError> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory") {
            return Ok(Self::memory(options.clock.clone()));
        }
        if path.is_empty() {
            return Err(StoreError::database(format!(
                "invalid SQLite url '{url}': no file name"
            )));
        }
        Ok(Self {
            target: PathBuf::from(path),
            memory: false,
            synchronous: options.synchronous,
            clock: options.clock.clone(),
        })
    }

    /// A fresh private in-memory database. Its connections share it through
    /// SQLite's `memdb` file system under a name unique in this process.
    pub(super) fn memory(clock: SharedClock) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self {
            target: PathBuf::from(format!(
                "file:/duroxide-{}-{n}?vfs=memdb",
                std::process::id()
            )),
            memory: true,
            synchronous: Durability::Full,
            clock,
        }
    }

    /// Opens the connection that writes, creating the file (or the in-memory
    /// database) if needed, switching a file to WAL and applying migrations.
    pub(super) fn open_writer(&self) -> Result<Connection, StoreError> {
        let conn = self.open(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        self.preflight(&conn)?;
        if !self.memory {
            // WAL is a property of the file: set once here, readers inherit it.
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(self.error("enabling WAL"))?;
        }
        // The writer touches queue, instance and history pages all over the
        // file in every batch: keep them in its own cache rather than
        // re-reading them through the OS.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(self.error("sizing the page cache"))?;
        // Statement journals (a statement that may fail halfway) and the
        // savepoints of a batch run again op by op would otherwise spill to
        // temporary files.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(self.error("keeping temporary data in memory"))?;
        migrate(&conn).map_err(|e| match e {
            Migration::Newer(e) => e,
            Migration::Sqlite(e) => self.error("migrating the schema")(e),
        })?;
        Ok(conn)
    }

    /// Opens a connection that only reads.
    /// Refuses, before anything is written, a file that is not an SQLite
    /// database, a database of another application (tables, and no schema
    /// version of ours), and one written by a newer duroxide.
    fn preflight(&self, conn: &Connection) -> Result<(), StoreError> {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.error("reading the schema version"))?;
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(self.error("reading the schema"))?;
        let known = MIGRATIONS.len();
        if usize::try_from(version).is_ok_and(|version| version > known) {
            return Err(StoreError::SchemaTooNew {
                found: version,
                known,
            });
        }
        if version == 0 && tables > 0 {
            return Err(StoreError::Foreign(format!(
                "SQLite database '{}'",
                self.target.display()
            )));
        }
        Ok(())
    }

    pub(super) fn open_reader(&self) -> Result<Connection, StoreError> {
        self.open(OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    fn open(&self, flags: OpenFlags) -> Result<Connection, StoreError> {
        let flags = flags | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&self.target, flags).map_err(self.error("opening"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(self.error("setting the busy timeout"))?;
        let synchronous = match self.synchronous {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(self.error("setting synchronous"))?;
        // Room for every statement the store prepares, so none is re-parsed.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    fn error(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |e| sqlite_error(format!("{what} for '{}'", self.target.display()), e)
    }
}

/// Why migrating failed.
enum Migration {
    /// The file's schema is newer than this build's.
    Newer(StoreError),
    /// SQLite failed.
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Migration {
    fn from(e: rusqlite::Error) -> Self {
        Migration::Sqlite(e)
    }
}

/// Applies the migrations not yet recorded in `user_version`. `BEGIN
/// IMMEDIATE` makes two processes opening a fresh file at once take turns:
/// the version is read under the write lock, so the second finds the schema
/// in place. (`rusqlite_migration` keeps the same `user_version` record but
/// reads it before opening a deferred transaction, so two first opens race;
/// its refusal of a newer file names no versions; and its current release
/// links an older rusqlite than ours, whose bundled SQLite cannot be linked
/// twice. These few lines do what we need.)
fn migrate(conn: &Connection) -> Result<(), Migration> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let applied = apply_missing(conn);
    conn.execute_batch(if applied.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    })?;
    applied
}

fn apply_missing(conn: &Connection) -> Result<(), Migration> {
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len();
    if usize::try_from(applied).is_ok_and(|applied| applied > known) {
        // Running on a schema this build does not know could corrupt it.
        return Err(Migration::Newer(StoreError::SchemaTooNew {
            found: applied,
            known,
        }));
    }
    for (version, sql) in (1..).zip(MIGRATIONS) {
        if version > applied {
            conn.execute_batch(sql)?;
            conn.pragma_update(None, "user_version", version)?;
        }
    }
    Ok(())
}
