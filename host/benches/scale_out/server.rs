//! The PostgreSQL side of the scale-out workloads: which server, a fresh
//! schema per run (dropped afterwards), and the server's counters around a
//! run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use duroxide::Client;
use duroxide::providers::postgres::{PostgresHistoryStore, PostgresOptions};
use sqlx_core::connection::Connection;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgConnection, Postgres};

/// The server used when `DUROXIDE_TEST_PG` is not set.
const DEFAULT_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// The server's URL.
pub fn url() -> String {
    std::env::var("DUROXIDE_TEST_PG").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| {
        let (credentials, host) = rest.split_once('@')?;
        let user = credentials.split(':').next()?;
        Some(format!("{scheme}://{user}@{host}"))
    }) {
        Some(shown) => shown,
        None => url.to_owned(),
    }
}

/// Whether the server answers: `Err` with the reason when it does not.
pub async fn reachable(url: &str) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(format!(
            "cannot connect to {} (set DUROXIDE_TEST_PG): {e}",
            redacted(url)
        )),
        Err(_) => Err(format!("{} did not answer within 5 s", redacted(url))),
    }
}

/// A fresh schema holding a migrated store, and the client's store on it.
pub struct Schema {
    /// The schema's name, unique to this process and run.
    pub name: String,
    url: String,
    store: Arc<PostgresHistoryStore>,
}

impl Schema {
    /// Creates and migrates a schema no other run uses, before any runtime
    /// process opens it; the client's pool has `pool` connections (the
    /// store's default when `None`).
    pub async fn create(url: &str, pool: Option<u32>) -> anyhow::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "duroxide_bench_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut options = PostgresOptions {
            schema: Some(name.clone()),
            ..PostgresOptions::default()
        };
        if let Some(pool) = pool {
            options.max_connections = pool;
        }
        let store = PostgresHistoryStore::with_options(url, options)
            .await
            .with_context(|| format!("creating schema {name}"))?;
        Ok(Self {
            name,
            url: url.to_owned(),
            store: Arc::new(store),
        })
    }

    /// A client on the schema.
    pub fn client(&self) -> Client {
        Client::new(self.store.clone())
    }

    /// Closes the client's connections: their server processes publish
    /// their counters as they exit (an idle one may hold them for seconds).
    pub async fn close_client(&self) {
        self.store.close().await;
    }

    /// Closes the client's connections and drops the schema with
    /// everything in it.
    pub async fn drop_now(self) -> anyhow::Result<()> {
        self.close_client().await;
        execute(&self.url, &format!("DROP SCHEMA {} CASCADE", self.name)).await
    }
}

/// Runs `sql` on a connection of its own.
async fn execute(url: &str, sql: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx_core::query::query::<Postgres>(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// The server's counters when a run began: transactions of the database
/// (every store call is one) and WAL flushes of the server (one serves all
/// the commits waiting for it: PostgreSQL's group commit).
pub struct Load {
    xacts: i64,
    wal_syncs: i64,
}

impl Load {
    /// Reads the counters now.
    pub async fn start(url: &str) -> anyhow::Result<Self> {
        let (xacts, wal_syncs) = counters(url).await?;
        Ok(Self { xacts, wal_syncs })
    }

    /// The counters' growth since [`Load::start`], per `unit` (`count` of
    /// them): `xacts_per_<unit>=… xacts_per_wal_sync=…`. Both count the
    /// whole database and server, so the figures are exact only when
    /// nothing else uses them; the client's starts and status reads are in.
    /// Call it after the runtimes stopped and the client closed.
    pub async fn finish(self, url: &str, unit: &str, count: usize) -> anyhow::Result<String> {
        // Backends publish their counters at most once a second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (xacts, wal_syncs) = counters(url).await?;
        let xacts = (xacts - self.xacts) as f64;
        let syncs = (wal_syncs - self.wal_syncs).max(1) as f64;
        Ok(format!(
            "xacts_per_{unit}={:.1} xacts_per_wal_sync={:.1}",
            xacts / count.max(1) as f64,
            xacts / syncs
        ))
    }
}

/// Committed and rolled back transactions of the current database, and
/// WAL syncs of the server.
async fn counters(url: &str) -> anyhow::Result<(i64, i64)> {
    let mut conn = PgConnection::connect(url).await?;
    let row: (i64, i64) = sqlx_core::query_as::query_as(
        "SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database
                 WHERE datname = current_database()),
                (SELECT wal_sync FROM pg_stat_wal)",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(row)
}

/// The machine's load averages (1, 5, 15 minutes), as `/proc/loadavg`
/// gives them; `unknown` elsewhere.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join("/"))
        .unwrap_or_else(|| "unknown".to_owned())
}
