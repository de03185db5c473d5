//! Opening the store: the URL, the pool, the schema, migrations and the
//! refusal of a schema this build does not know.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx_core::connection::Connection;
use sqlx_core::migrate::{Migration, MigrationType, Migrator};
use sqlx_core::sql_str::SqlSafeStr;
use sqlx_postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, Postgres};

use super::PostgresOptions;
use super::codec::{db, pg_error};
use crate::providers::{DatabaseError, StoreError};

/// The schema, in order; `_sqlx_migrations` records which are applied.
/// Nothing is released yet, so the schema is one initial migration; a change
/// after the first release is a new file appended here. Embedded by hand
/// rather than by `sqlx::migrate!`, whose crate cannot be linked beside
/// rusqlite (see host/Cargo.toml).
const MIGRATIONS: [(i64, &str, &str); 1] = [(
    1,
    "initial",
    include_str!("../../../migrations/postgres/0001_initial.sql"),
)];

/// The migrator of [`MIGRATIONS`]. Its advisory lock makes processes
/// opening a fresh database at once take turns.
fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// How long a pooled connection may sit idle before it is pinged on its
/// next use.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A schema name quoted as an SQL identifier.
pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What [`open`] made: the pool, and the schema its tables live in.
pub(super) struct Opened {
    pub(super) pool: PgPool,
    pub(super) schema: String,
}

/// The parameters of a store URL that are duroxide's, not the driver's:
/// `schema` and `connect_timeout` (seconds, as libpq spells it). They are
/// taken out of the URL before the driver reads it.
#[derive(Debug, Default, PartialEq)]
struct UrlSettings {
    schema: Option<String>,
    connect_timeout: Option<Duration>,
}

/// Splits duroxide's parameters off `url`: the URL the driver reads, and them.
fn split_url(url: &str) -> Result<(String, UrlSettings), StoreError> {
    let invalid = |why: String| {
        StoreError::database(format!("invalid PostgreSQL url '{}': {why}", redacted(url)))
    };
    let mut parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let mut settings = UrlSettings::default();
    let mut rest = Vec::new();
    for (key, value) in parsed.query_pairs() {
        match &*key {
            "schema" if value.is_empty() => return Err(invalid("an empty schema".into())),
            "schema" => settings.schema = Some(value.into_owned()),
            "connect_timeout" => {
                let seconds: u64 = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    invalid(format!(
                        "connect_timeout '{value}' is not a positive number of seconds"
                    ))
                })?;
                settings.connect_timeout = Some(Duration::from_secs(seconds));
            }
            _ => rest.push((key.into_owned(), value.into_owned())),
        }
    }
    if settings == UrlSettings::default() {
        return Ok((url.to_owned(), settings));
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok((parsed.into(), settings))
}

/// One connection to the server, made directly rather than through a
/// pool: a pool retries a refused connection until its timeout and then
/// reports only the timeout, while this fails at once with the cause.
async fn probe(
    connect: &PgConnectOptions,
    url: &str,
    timeout: Duration,
) -> Result<PgConnection, StoreError> {
    let context = || format!("connecting to '{}'", redacted(url));
    match tokio::time::timeout(timeout, PgConnection::connect_with(connect)).await {
        Ok(connected) => connected.map_err(|e| pg_error(context(), e)),
        Err(elapsed) => Err(StoreError::Database(DatabaseError::caused_by(
            format!("{}: no answer within {timeout:?}", context()),
            elapsed,
            true,
        ))),
    }
}

/// Connects to `url`, creating the schema (named by `options.schema`, or
/// the URL's `schema` parameter) if it is missing, refuses a database this
/// build cannot use, and migrates the rest. A server that does not answer
/// fails at once, naming the URL and the cause.
pub(super) async fn open(url: &str, options: &PostgresOptions) -> Result<Opened, StoreError> {
    let (driver_url, settings) = split_url(url)?;
    let schema = settings.schema.or_else(|| options.schema.clone());
    let timeout = settings.connect_timeout.unwrap_or(options.connect_timeout);
    let mut connect = PgConnectOptions::from_str(&driver_url)
        .map_err(|e| pg_error(format!("invalid PostgreSQL url '{}'", redacted(url)), e))?;
    let mut first = probe(&connect, url, timeout).await?;
    if let Some(schema) = &schema {
        // Created before the pool connects: its connections name it on
        // their search path from the start.
        sqlx_core::query::query::<Postgres>(sqlx_core::sql_str::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(schema)
        )))
        .execute(&mut first)
        .await
        .map_err(db("creating the schema"))?;
        connect = connect.options([("search_path", schema.as_str())]);
    }
    let _ = first.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        // How long a call waits for a connection when none is free or the
        // server does not answer; the pool retries a refused connection
        // with backoff meanwhile, so a server that returns is found again.
        .acquire_timeout(timeout)
        // No ping before each use: it is a round trip of its own, doubling
        // the cost of every write. A connection found dead fails that one
        // call with a retryable error, and the pool drops it.
        .test_before_acquire(false)
        // But one that sat idle is pinged first: after the server restarted,
        // a client's calls would otherwise fail once per pooled connection.
        // Busy connections are never idle that long, so this costs nothing
        // under load.
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                Ok(meta.idle_for < PING_AFTER_IDLE || connection.ping().await.is_ok())
            })
        })
        .connect_with(connect)
        .await
        .map_err(|e| pg_error(format!("connecting to '{}'", redacted(url)), e))?;
    let schema: Option<String> = sqlx_core::query_scalar::query_scalar("SELECT current_schema()")
        .fetch_one(&pool)
        .await
        .map_err(db("reading the current schema"))?;
    let schema = schema.ok_or_else(|| {
        StoreError::database("no schema of the search path exists: name one that does")
    })?;
    preflight(&pool, &schema).await?;
    migrator().run(&pool).await.map_err(|e| match e {
        // Another process migrated further between the check and now.
        sqlx_core::migrate::MigrateError::VersionMissing(found) => StoreError::SchemaTooNew {
            found,
            known: MIGRATIONS.len(),
        },
        other => StoreError::database(format!("migrating the schema: {other}")),
    })?;
    Ok(Opened { pool, schema })
}

/// Refuses, before anything is written, a schema written by a newer
/// duroxide, and one of another application (a table named as ours, and no
/// migration record).
async fn preflight(pool: &PgPool, schema: &str) -> Result<(), StoreError> {
    let (recorded, foreign): (bool, bool) = sqlx_core::query_as::query_as(
        "SELECT to_regclass('_sqlx_migrations') IS NOT NULL,
                to_regclass('instances') IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .map_err(db("reading the schema"))?;
    if !recorded {
        if foreign {
            return Err(StoreError::Foreign(format!("PostgreSQL schema '{schema}'")));
        }
        return Ok(());
    }
    let found: i64 = sqlx_core::query_scalar::query_scalar(
        "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations",
    )
    .fetch_one(pool)
    .await
    .map_err(db("reading the schema version"))?;
    let known = MIGRATIONS.len();
    if usize::try_from(found).is_ok_and(|found| found > known) {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    Ok(())
}

/// `url` without its password, for messages.
pub(super) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redacted("postgres://me:secret@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redacted("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn duroxide_parameters_leave_the_url_before_the_driver_reads_it() {
        let (url, settings) =
            split_url("postgres://me@db/x?schema=s1&sslmode=disable&connect_timeout=3").unwrap();
        assert_eq!(url, "postgres://me@db/x?sslmode=disable");
        assert_eq!(settings.schema.as_deref(), Some("s1"));
        assert_eq!(settings.connect_timeout, Some(Duration::from_secs(3)));
        let (url, settings) = split_url("postgres://me@db/x?schema=s1").unwrap();
        assert_eq!(
            (url.as_str(), settings.connect_timeout),
            ("postgres://me@db/x", None)
        );
        let plain = "postgres://me@db/x?options[search_path]=a";
        assert_eq!(split_url(plain).unwrap().0, plain);
        for bad in ["connect_timeout=0", "connect_timeout=soon", "schema="] {
            let error = split_url(&format!("postgres://me:pw@db/x?{bad}")).unwrap_err();
            assert!(
                error.to_string().contains(bad.split('=').next().unwrap()),
                "{error}"
            );
            assert!(!error.to_string().contains("pw"), "{error}");
        }
    }
}
