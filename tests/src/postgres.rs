//! The PostgreSQL server of the test runs: which one, whether to skip when
//! none answers, and a schema of its own for each test.
//!
//! The server is `DUROXIDE_TEST_PG` (default
//! `postgres://root@127.0.0.1:5432/test`). When it cannot be reached, the
//! PostgreSQL runs pass without running and one line on stderr says so,
//! with the reason, once per test binary; with `DUROXIDE_REQUIRE_PG=1` (as
//! `.ci/run` sets) they fail instead.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx_core::connection::Connection;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgConnection, Postgres};

/// The server used when `DUROXIDE_TEST_PG` is not set.
const DEFAULT_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// The server's URL.
fn server_url() -> String {
    std::env::var("DUROXIDE_TEST_PG").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// [`server_url`] with the settings of every connection a test opens:
/// commits that do not wait for the WAL to reach the disk. A test checks
/// what the store does, never what a crash of the server keeps, and the
/// flush per commit was the larger part of a PostgreSQL run's time on a
/// shared disk (the fan-out scenario took three times as long with it).
pub fn test_url() -> String {
    with_option(&server_url(), "synchronous_commit", "off")
}

/// `url` with a server setting (`options[name]=value`) added.
fn with_option(url: &str, name: &str, value: &str) -> String {
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}options[{name}]={value}")
}

/// Whether a missing server fails the runs instead of skipping them.
fn required() -> bool {
    std::env::var("DUROXIDE_REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// `Ok(true)` when the server answers; `Ok(false)` when it does not and is
/// not required (said once per binary, with the reason, on stderr); `Err`
/// when it is required.
pub async fn available() -> anyhow::Result<bool> {
    static SEEN: OnceLock<Result<(), String>> = OnceLock::new();
    let answer = match SEEN.get() {
        Some(seen) => seen.clone(),
        None => {
            let url = server_url();
            let answer = match tokio::time::timeout(Duration::from_secs(5), connect(&url)).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Ok(())
                }
                Ok(Err(e)) => Err(format!("cannot connect to {url}: {e}")),
                Err(_) => Err(format!("{url} did not answer within 5 s")),
            };
            SEEN.get_or_init(|| answer).clone()
        }
    };
    match answer {
        Ok(()) => Ok(true),
        Err(reason) if required() => {
            anyhow::bail!("PostgreSQL is required (DUROXIDE_REQUIRE_PG=1): {reason}")
        }
        Err(reason) => {
            static SAID: OnceLock<()> = OnceLock::new();
            SAID.get_or_init(|| {
                // Straight to stderr: the harness captures only `eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "\nSKIPPED the PostgreSQL runs of this test binary: {reason}; \
                     set DUROXIDE_TEST_PG to a reachable server to run them \
                     (DUROXIDE_REQUIRE_PG=1 fails instead of skipping)."
                );
            });
            Ok(false)
        }
    }
}

/// A new connection to `url`.
async fn connect(url: &str) -> Result<PgConnection, sqlx_core::Error> {
    PgConnection::connect(url).await
}

/// A schema with a name no other test, run or process uses, created by
/// the first store opened in it and dropped, with everything in it, when
/// this is dropped.
#[derive(Debug)]
pub struct Schema {
    /// The schema's name.
    pub name: String,
}

impl Schema {
    /// A fresh name.
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

    /// The server's URL with this schema first on the search path: what
    /// `duroxide::providers::open` takes to open a store in it.
    pub fn url(&self) -> String {
        with_option(&test_url(), "search_path", &self.name)
    }

    /// Runs one statement in this schema, on a connection of its own, and
    /// returns how many rows it changed.
    pub async fn execute(&self, sql: &str) -> anyhow::Result<u64> {
        let mut conn = connect(&self.url()).await?;
        let done = sqlx_core::query::query::<Postgres>(AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(done.rows_affected())
    }
}

impl Default for Schema {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // On a runtime of its own: the test's may be shutting down.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = connect(&test_url()).await?;
                sqlx_core::query::query::<Postgres>(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(std::io::stderr(), "could not drop schema {}", self.name);
        }
    }
}
