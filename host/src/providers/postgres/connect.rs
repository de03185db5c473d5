//! Opening the store: the URL, the pool, the schema, migrations and the
//! refusal of a schema this build does not know.

use std::borrow::Cow;
use std::str::FromStr;

use sqlx_core::migrate::{Migration, MigrationType, Migrator};
use sqlx_core::sql_str::SqlSafeStr;
use sqlx_postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};

use super::PostgresOptions;
use super::codec::{db, pg_error};
use crate::providers::StoreError;

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

/// A schema name quoted as an SQL identifier.
pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What [`open`] made: the pool, and the schema its tables live in.
pub(super) struct Opened {
    pub(super) pool: PgPool,
    pub(super) schema: String,
}

/// Connects to `url`, creating `options.schema` if it is given and missing,
/// refuses a database this build cannot use, and migrates the rest.
pub(super) async fn open(url: &str, options: &PostgresOptions) -> Result<Opened, StoreError> {
    let mut connect = PgConnectOptions::from_str(url)
        .map_err(|e| pg_error(format!("invalid PostgreSQL url '{}'", redacted(url)), e))?;
    if let Some(schema) = &options.schema {
        // Created through a connection of its own: the pool's connections
        // name it on their search path from the start.
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await
            .map_err(|e| pg_error(format!("connecting to '{}'", redacted(url)), e))?;
        let created = sqlx_core::query::query::<Postgres>(sqlx_core::sql_str::AssertSqlSafe(
            format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema)),
        ))
        .execute(&admin)
        .await;
        admin.close().await;
        created.map_err(db("creating the schema"))?;
        connect = connect.options([("search_path", schema.as_str())]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        // No ping before each use: it is a round trip of its own, doubling
        // the cost of every write. A connection found dead fails that one
        // call with a retryable error, and the pool drops it.
        .test_before_acquire(false)
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
}
