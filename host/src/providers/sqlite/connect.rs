//! Opening the database: connection options, pools and migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Durability, SqliteOptions};
use crate::providers::StoreError;

/// How long a connection waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads run concurrently under WAL; a few connections are enough for the
/// instance and history lookups the store serves.
const READ_POOL_SIZE: u32 = 4;

/// The two pools of a store. Both are the same pool for an in-memory database.
pub(super) struct Pools {
    /// One connection: in-process writers queue here instead of spinning on SQLITE_BUSY.
    pub(super) writer: SqlitePool,
    /// Reads, which never block writers under WAL.
    pub(super) reader: SqlitePool,
}

/// Whether `url` names an in-memory database, which separate pools could not share.
pub(super) fn is_memory_url(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Opens (creating if missing) and migrates a database file.
pub(super) async fn open_file(url: &str, options: &SqliteOptions) -> Result<Pools, StoreError> {
    let base = if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("invalid SQLite url '{url}': {e}")))?
    } else {
        SqliteConnectOptions::new().filename(url)
    };
    let base = base
        .busy_timeout(BUSY_TIMEOUT)
        .synchronous(match options.synchronous {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        });

    // WAL is a property of the file: the writer sets it once, readers inherit it.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(BUSY_TIMEOUT * 2)
        .connect_with(
            base.clone()
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal),
        )
        .await
        .map_err(|e| StoreError::Database(format!("cannot open '{url}': {e}")))?;
    migrate(&writer).await?;

    let reader = SqlitePoolOptions::new()
        .max_connections(READ_POOL_SIZE)
        .connect_with(base)
        .await
        .map_err(|e| StoreError::Database(format!("cannot open '{url}' for reading: {e}")))?;
    Ok(Pools { writer, reader })
}

/// Opens a private in-memory database behind a single connection, which must
/// never be closed: the database lives exactly as long as that connection.
pub(super) async fn open_memory() -> Result<Pools, StoreError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(SqliteConnectOptions::new().in_memory(true))
        .await
        .map_err(|e| StoreError::Database(format!("cannot open in-memory database: {e}")))?;
    migrate(&pool).await?;
    Ok(Pools {
        writer: pool.clone(),
        reader: pool,
    })
}

/// Applies the schema. Two processes opening a fresh file at once can race on
/// the first migration; the loser retries once and then sees it applied.
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let migrator = sqlx::migrate!("./migrations/sqlite");
    if migrator.run(pool).await.is_ok() {
        return Ok(());
    }
    migrator
        .run(pool)
        .await
        .map_err(|e| StoreError::Database(format!("migrating the schema: {e}")))
}
