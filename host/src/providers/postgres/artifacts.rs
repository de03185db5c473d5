//! Deployed components: stored by digest, listed, removed unless pinned,
//! and instances repinned.

use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::row::Row;
use sqlx_postgres::{PgRow, Postgres};

use super::PostgresHistoryStore;
use super::codec::{db, to_u64};
use crate::providers::StoreError;
use crate::providers::artifacts::{
    Artifact, ArtifactManifest, ArtifactPolicy, ArtifactSummary, NewArtifact, RemoveOutcome,
};

/// How many pinned instances a refused removal names.
const NAMED_PINNED: u32 = 100;

/// Reads a row selected with [`SUMMARY`].
fn summary_from_row(row: &PgRow) -> Result<ArtifactSummary, StoreError> {
    let col = |e: sqlx_core::Error| StoreError::Corrupt(format!("artifact row: {e}"));
    let manifest: String = row.try_get(2).map_err(col)?;
    let manifest: ArtifactManifest = serde_json::from_str(&manifest)
        .map_err(|e| StoreError::Corrupt(format!("artifact manifest: {e}")))?;
    Ok(ArtifactSummary {
        digest: row.try_get(0).map_err(col)?,
        size_bytes: to_u64(row.try_get(1).map_err(col)?, "size_bytes")?,
        manifest,
        label: row.try_get(3).map_err(col)?,
        deployed_at_ms: to_u64(row.try_get(4).map_err(col)?, "deployed_at")?,
        policy: row
            .try_get::<Option<String>, _>(5)
            .map_err(col)?
            .map(ArtifactPolicy::from_json),
        tenant: row.try_get(6).map_err(col)?,
    })
}

/// [`crate::providers::HistoryStore::put_artifact`]: one statement that
/// inserts unless the digest is stored and returns the stored summary.
pub(super) async fn put(
    store: &PostgresHistoryStore,
    artifact: NewArtifact,
) -> Result<(ArtifactSummary, bool), StoreError> {
    let manifest = serde_json::to_string(&artifact.manifest)
        .map_err(|e| StoreError::database(format!("encoding the manifest: {e}")))?;
    let size = i64::try_from(artifact.bytes.len())
        .map_err(|_| StoreError::database("the artifact is too large"))?;
    let inserted = query::<Postgres>(
        "INSERT INTO artifacts
             (digest, bytes, size_bytes, manifest, label, deployed_at, policy, tenant)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, digest) DO NOTHING",
    )
    .bind(&artifact.digest)
    .bind(&artifact.bytes)
    .bind(size)
    .bind(&manifest)
    .bind(&artifact.label)
    .bind(store.now()?)
    .bind(artifact.policy.as_ref().map(ArtifactPolicy::json))
    .bind(&artifact.tenant)
    .execute(&store.pool)
    .await
    .map_err(db("storing the artifact"))?
    .rows_affected()
        == 1;
    let summary = summary(store, &artifact.tenant, &artifact.digest)
        .await?
        .ok_or_else(|| {
            StoreError::database(format!(
                "artifact {} vanished right after it was stored",
                artifact.digest
            ))
        })?;
    Ok((summary, inserted))
}

/// The summary of one of `tenant`'s artifacts.
async fn summary(
    store: &PostgresHistoryStore,
    tenant: &str,
    digest: &str,
) -> Result<Option<ArtifactSummary>, StoreError> {
    let row = query::<Postgres>(
        "SELECT digest, size_bytes, manifest, label, deployed_at, policy, tenant FROM artifacts
         WHERE digest = $1 AND tenant = $2",
    )
    .bind(digest)
    .bind(tenant)
    .fetch_optional(&store.pool)
    .await
    .map_err(db("reading the artifact"))?;
    row.as_ref().map(summary_from_row).transpose()
}

/// [`crate::providers::HistoryStore::list_artifacts`].
pub(super) async fn list(
    store: &PostgresHistoryStore,
    tenant: Option<&str>,
) -> Result<Vec<ArtifactSummary>, StoreError> {
    let rows = query::<Postgres>(
        "SELECT digest, size_bytes, manifest, label, deployed_at, policy, tenant FROM artifacts
         WHERE $1::text IS NULL OR tenant = $1
         ORDER BY deployed_at, tenant, digest",
    )
    .bind(tenant)
    .fetch_all(&store.pool)
    .await
    .map_err(db("listing artifacts"))?;
    rows.iter().map(summary_from_row).collect()
}

/// [`crate::providers::HistoryStore::artifact`].
pub(super) async fn get(
    store: &PostgresHistoryStore,
    tenant: &str,
    digest: &str,
) -> Result<Option<Artifact>, StoreError> {
    let row = query::<Postgres>(
        "SELECT digest, size_bytes, manifest, label, deployed_at, policy, tenant, bytes FROM artifacts
         WHERE digest = $1 AND tenant = $2",
    )
    .bind(digest)
    .bind(tenant)
    .fetch_optional(&store.pool)
    .await
    .map_err(db("reading the artifact"))?;
    row.map(|row| {
        let summary = summary_from_row(&row)?;
        let bytes: Vec<u8> = row
            .try_get(7)
            .map_err(|e| StoreError::Corrupt(format!("artifact bytes: {e}")))?;
        Ok(Artifact { summary, bytes })
    })
    .transpose()
}

/// [`crate::providers::HistoryStore::remove_artifact`]: deleted unless an
/// unfinished instance is pinned to it, checked in the same statement.
pub(super) async fn remove(
    store: &PostgresHistoryStore,
    tenant: &str,
    digest: &str,
) -> Result<RemoveOutcome, StoreError> {
    let removed = query::<Postgres>(
        "DELETE FROM artifacts WHERE digest = $1 AND tenant = $2 AND NOT EXISTS
         (SELECT 1 FROM instances WHERE component_digest = $1 AND finished_at IS NULL
          AND tenant = $2)",
    )
    .bind(digest)
    .bind(tenant)
    .execute(&store.pool)
    .await
    .map_err(db("removing the artifact"))?;
    if removed.rows_affected() == 1 {
        return Ok(RemoveOutcome::Removed);
    }
    if summary(store, tenant, digest).await?.is_none() {
        return Ok(RemoveOutcome::NotFound);
    }
    Ok(RemoveOutcome::Pinned(
        pinned(store, tenant, digest, NAMED_PINNED).await?,
    ))
}

/// [`crate::providers::HistoryStore::pinned_instances`].
pub(super) async fn pinned(
    store: &PostgresHistoryStore,
    tenant: &str,
    digest: &str,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    query_scalar::<Postgres, String>(
        "SELECT instance_id FROM instances
         WHERE component_digest = $1 AND finished_at IS NULL AND tenant = $3
         ORDER BY created_at, instance_id LIMIT $2",
    )
    .bind(digest)
    .bind(i64::from(limit))
    .bind(tenant)
    .fetch_all(&store.pool)
    .await
    .map_err(db("listing pinned instances"))
}

/// [`crate::providers::HistoryStore::repin_instance`].
pub(super) async fn repin(
    store: &PostgresHistoryStore,
    instance_id: &str,
    from: &str,
    to: &str,
) -> Result<bool, StoreError> {
    let moved = query::<Postgres>(
        // Only onto a component of the instance's own tenant.
        "UPDATE instances SET component_digest = $3
         WHERE instance_id = $1 AND component_digest = $2 AND finished_at IS NULL
           AND EXISTS (SELECT 1 FROM artifacts a
                       WHERE a.tenant = instances.tenant AND a.digest = $3)",
    )
    .bind(instance_id)
    .bind(from)
    .bind(to)
    .execute(&store.pool)
    .await
    .map_err(db("repinning the instance"))?;
    Ok(moved.rows_affected() == 1)
}
