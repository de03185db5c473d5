//! What the PostgreSQL test files share: which server to use, whether to
//! skip when there is none, and a schema of its own for every test.
//!
//! The server is `DUROXIDE_TEST_PG` (default
//! `postgres://root@127.0.0.1:5432/test`). When it cannot be reached, the
//! PostgreSQL tests pass without running and say so once, on stderr (past
//! the test harness's capture), with the reason; with `DUROXIDE_REQUIRE_PG=1`
//! (as `.ci/run` sets) they fail instead. Each test works in a fresh schema
//! with a random name, dropped when the test ends.

#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::error::Error;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use duroxide::clock::SharedClock;
use duroxide::providers::HistoryStore;
use duroxide::providers::postgres::{PostgresHistoryStore, PostgresOptions};
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgConnection, Postgres};

/// The server used when `DUROXIDE_TEST_PG` is not set.
pub const DEFAULT_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// The server's URL.
pub fn url() -> String {
    std::env::var("DUROXIDE_TEST_PG").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Whether a missing server fails the tests instead of skipping them.
fn required() -> bool {
    std::env::var("DUROXIDE_REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// Whether the server answers: `Err` with the reason when it does not.
async fn reachable() -> Result<(), String> {
    static SEEN: OnceLock<Result<(), String>> = OnceLock::new();
    if let Some(seen) = SEEN.get() {
        return seen.clone();
    }
    let url = url();
    let answer = match tokio::time::timeout(std::time::Duration::from_secs(5), connect(&url)).await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect to {url}: {e}")),
        Err(_) => Err(format!("{url} did not answer within 5 s")),
    };
    SEEN.get_or_init(|| answer).clone()
}

/// `Ok(true)` when the server is there; `Ok(false)` (said once, with the
/// reason) when it is not and not required; `Err` when it is required.
pub async fn available() -> Result<bool, Box<dyn Error>> {
    match reachable().await {
        Ok(()) => Ok(true),
        Err(reason) if required() => {
            Err(format!("PostgreSQL is required (DUROXIDE_REQUIRE_PG=1): {reason}").into())
        }
        Err(reason) => {
            static SAID: OnceLock<()> = OnceLock::new();
            SAID.get_or_init(|| {
                // Straight to stderr: the harness captures only `eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "\nSKIPPED the PostgreSQL runs of this test binary: {reason}. \
                     Set DUROXIDE_TEST_PG to a reachable server to run them \
                     (DUROXIDE_REQUIRE_PG=1 fails instead of skipping).\n"
                );
            });
            Ok(false)
        }
    }
}

/// A new connection to `url`.
pub async fn connect(url: &str) -> Result<PgConnection, sqlx_core::Error> {
    use sqlx_core::connection::Connection;
    PgConnection::connect(url).await
}

/// Runs `sql` on its own connection.
pub async fn execute(sql: String) -> Result<(), Box<dyn Error>> {
    let mut conn = connect(&url()).await?;
    // Simple-query protocol: `sql` may hold several statements.
    sqlx_core::raw_sql::raw_sql(AssertSqlSafe(sql))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// A fresh schema with a random name, dropped (with everything in it)
/// when this is dropped.
pub struct Schema {
    pub name: String,
}

impl Schema {
    /// A name no other test, run or process uses.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self {
            name: format!(
                "duroxide_test_{:012x}_{n}",
                hasher.finish() & 0xffff_ffff_ffff
            ),
        }
    }

    /// Runs `sql` with this schema first on the search path.
    pub async fn execute(&self, sql: &str) -> Result<(), Box<dyn Error>> {
        execute(format!("SET search_path TO {}; {sql}", self.name)).await
    }

    /// The first column of the first row of `sql` (an integer), read with
    /// this schema first on the search path.
    pub async fn count(&self, sql: &str) -> Result<i64, Box<dyn Error>> {
        let mut conn = connect(&url()).await?;
        sqlx_core::query::query::<Postgres>(AssertSqlSafe(format!(
            "SET search_path TO {}",
            self.name
        )))
        .execute(&mut conn)
        .await?;
        let n: i64 =
            sqlx_core::query_scalar::query_scalar::<Postgres, i64>(AssertSqlSafe(sql.to_owned()))
                .fetch_one(&mut conn)
                .await?;
        Ok(n)
    }

    /// Opens a store in this schema.
    pub async fn open(
        &self,
        clock: Option<SharedClock>,
    ) -> Result<PostgresHistoryStore, Box<dyn Error>> {
        let mut options = PostgresOptions {
            schema: Some(self.name.clone()),
            max_connections: 8,
            ..PostgresOptions::default()
        };
        if let Some(clock) = clock {
            options.clock = clock;
        }
        Ok(PostgresHistoryStore::with_options(&url(), options).await?)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // On a runtime of its own: the test's may be shutting down.
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(execute(sql)).map_err(|e| e.to_string())?;
            Ok::<_, Box<dyn Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(std::io::stderr(), "could not drop schema {}", self.name);
        }
    }
}

/// A fresh store in a schema of its own, or `None` (the runs skipped, and
/// said why) when the server is not there and not required.
pub async fn fresh_store() -> Result<Option<(Arc<dyn HistoryStore>, Schema)>, Box<dyn Error>> {
    if !available().await? {
        return Ok(None);
    }
    let schema = Schema::new();
    let store = schema.open(None).await?;
    Ok(Some((Arc::new(store), schema)))
}
