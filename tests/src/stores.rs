//! The stores a test runs on: a fresh SQLite file, or a fresh schema on
//! the PostgreSQL server, and which of the two the running scenario uses.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use duroxide::clock::SharedClock;
use duroxide::providers::HistoryStore;
use duroxide::providers::postgres::{PostgresHistoryStore, PostgresOptions};
use duroxide::providers::sqlite::{SqliteHistoryStore, SqliteOptions};
use tempfile::TempDir;

use crate::postgres::{self, Schema};

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A schema of its own on the PostgreSQL server.
    Postgres,
}

tokio::task_local! {
    /// The store of the scenario running on this task.
    static CURRENT: StoreKind;
}

/// The store of the scenario running on this task (see [`on_store`]);
/// SQLite outside one.
pub fn current_store() -> StoreKind {
    CURRENT.try_with(|kind| *kind).unwrap_or(StoreKind::Sqlite)
}

/// Runs `test` with `kind` as [`current_store`]; a PostgreSQL run passes
/// at once when no server answers and none is required (see
/// [`postgres::available`]).
pub async fn on_store<Fut>(kind: StoreKind, test: Fut) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    if kind == StoreKind::Postgres && !postgres::available().await? {
        return Ok(());
    }
    CURRENT.scope(kind, test).await
}

/// Connections each PostgreSQL store object of a test may open: enough
/// for a runtime's dispatchers and a client, few enough that the tests of
/// a binary running at once stay far below the server's limit.
const PG_CONNECTIONS: u32 = 8;

/// A fresh, empty database of one kind, gone when this is dropped; and a
/// temporary directory for whatever else the test writes.
#[derive(Debug)]
pub struct TestDb {
    /// Which store it is.
    pub kind: StoreKind,
    /// Its URL: `duroxide::providers::open` opens another store object on
    /// it, as another process would.
    pub url: String,
    /// Dropped before the directory: the SQLite file lives there.
    schema: Option<Schema>,
    dir: TempDir,
}

impl TestDb {
    /// A fresh database of the running scenario's store.
    pub fn current() -> anyhow::Result<Self> {
        Self::new(current_store())
    }

    /// A fresh database of `kind` (nothing is created until the first
    /// store opens it).
    pub fn new(kind: StoreKind) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (url, schema) = match kind {
            StoreKind::Sqlite => (
                format!("sqlite:{}", dir.path().join("duroxide.db").display()),
                None,
            ),
            StoreKind::Postgres => {
                let schema = Schema::new();
                (schema.url(), Some(schema))
            }
        };
        Ok(Self {
            kind,
            url,
            schema,
            dir,
        })
    }

    /// Opens a store object on the database, reading times from `clock`
    /// (the wall clock when `None`).
    pub async fn open(&self, clock: Option<SharedClock>) -> anyhow::Result<Arc<dyn HistoryStore>> {
        Ok(match &self.schema {
            None => {
                let mut options = SqliteOptions::default();
                if let Some(clock) = clock {
                    options.clock = clock;
                }
                Arc::new(SqliteHistoryStore::with_options(&self.url, options).await?)
            }
            Some(schema) => {
                let mut options = PostgresOptions {
                    schema: Some(schema.name.clone()),
                    max_connections: PG_CONNECTIONS,
                    ..PostgresOptions::default()
                };
                if let Some(clock) = clock {
                    options.clock = clock;
                }
                Arc::new(PostgresHistoryStore::with_options(&postgres::test_url(), options).await?)
            }
        })
    }

    /// Runs one SQL statement straight on the database, past the store,
    /// and returns how many rows it changed: what a test does to damage or
    /// fill the tables.
    pub async fn execute(&self, sql: &str) -> anyhow::Result<u64> {
        match &self.schema {
            Some(schema) => schema.execute(sql).await,
            None => {
                let path = self.sqlite_path();
                let sql = sql.to_owned();
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(path)?;
                    // The runtime's writer may hold the lock for a moment.
                    conn.busy_timeout(Duration::from_secs(30))?;
                    let changed = conn.execute(&sql, [])?;
                    anyhow::Ok(u64::try_from(changed)?)
                })
                .await?
            }
        }
    }

    /// The SQLite file (which a PostgreSQL database does not have).
    pub fn sqlite_path(&self) -> std::path::PathBuf {
        self.dir.path().join("duroxide.db")
    }

    /// A temporary directory of the test's own.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
