//! Deployed components: the `artifacts` table, and the instances pinned to
//! them. Reads run on the read pool; writes are writer ops.

use rusqlite::{Connection, OptionalExtension, Row};

use super::SqliteHistoryStore;
use super::codec::{db, to_u64};
use super::ops::{Op, Signals};
use super::reads::ReadPool;
use crate::providers::StoreError;
use crate::providers::artifacts::{
    Artifact, ArtifactManifest, ArtifactPolicy, ArtifactSummary, NewArtifact, RemoveOutcome,
};

/// The columns [`summary_from_row`] reads, in its order.
const SUMMARY_COLUMNS: &str = "digest, size_bytes, manifest, label, deployed_at, policy, tenant";

/// Most pinned instances a refused removal names.
const NAMED_PINNED: u32 = 100;

/// An artifact write, run by the writer inside its batch transaction.
pub(super) enum ArtifactWrite {
    /// Insert unless the digest is stored; counts 1 if inserted.
    Put {
        artifact: Box<NewArtifact>,
        manifest: String,
    },
    /// Delete unless an unfinished instance of the tenant is pinned; counts
    /// 1 if deleted.
    Remove { tenant: String, digest: String },
    /// Repin one unfinished instance; counts 1 if it moved.
    Repin {
        instance_id: String,
        from: String,
        to: String,
    },
}

/// Op body of an [`ArtifactWrite`].
pub(super) fn write_in(
    conn: &Connection,
    write: &ArtifactWrite,
    now: i64,
) -> Result<(Signals, u64), StoreError> {
    let changed = match write {
        ArtifactWrite::Put { artifact, manifest } => conn
            .prepare_cached(
                "INSERT INTO artifacts (digest, bytes, size_bytes, manifest, label, deployed_at,
                     policy, tenant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (tenant, digest) DO NOTHING",
            )
            .and_then(|mut stmt| {
                stmt.execute(rusqlite::params![
                    &artifact.digest,
                    &artifact.bytes,
                    artifact.bytes.len() as i64,
                    manifest,
                    &artifact.label,
                    now,
                    artifact.policy.as_ref().map(ArtifactPolicy::json),
                    &artifact.tenant,
                ])
            })
            .map_err(db("storing the artifact"))?,
        ArtifactWrite::Remove { tenant, digest } => conn
            .prepare_cached(
                "DELETE FROM artifacts WHERE digest = ?1 AND tenant = ?2 AND NOT EXISTS
                 (SELECT 1 FROM instances WHERE component_digest = ?1 AND finished_at IS NULL
                  AND tenant = ?2)",
            )
            .and_then(|mut stmt| stmt.execute([digest, tenant]))
            .map_err(db("removing the artifact"))?,
        ArtifactWrite::Repin {
            instance_id,
            from,
            to,
        } => conn
            // Only onto a component of the instance's own tenant.
            .prepare_cached(
                "UPDATE instances SET component_digest = ?3
                 WHERE instance_id = ?1 AND component_digest = ?2 AND finished_at IS NULL
                 AND EXISTS (SELECT 1 FROM artifacts a
                             WHERE a.tenant = instances.tenant AND a.digest = ?3)",
            )
            .and_then(|mut stmt| stmt.execute([instance_id, from, to]))
            .map_err(db("repinning the instance"))?,
    };
    Ok((Signals::NONE, changed as u64))
}

/// Reads a row selected with [`SUMMARY_COLUMNS`].
fn summary_from_row(row: &Row<'_>) -> Result<ArtifactSummary, StoreError> {
    let col = |e: rusqlite::Error| StoreError::Corrupt(format!("artifact row: {e}"));
    let manifest: String = row.get(2).map_err(col)?;
    let manifest: ArtifactManifest = serde_json::from_str(&manifest)
        .map_err(|e| StoreError::Corrupt(format!("artifact manifest: {e}")))?;
    Ok(ArtifactSummary {
        digest: row.get(0).map_err(col)?,
        size_bytes: to_u64(row.get(1).map_err(col)?, "size_bytes")?,
        manifest,
        label: row.get(3).map_err(col)?,
        deployed_at_ms: to_u64(row.get(4).map_err(col)?, "deployed_at")?,
        policy: (row.get::<_, Option<String>>(5).map_err(col)?).map(ArtifactPolicy::from_json),
        tenant: row.get(6).map_err(col)?,
    })
}

/// [`crate::providers::HistoryStore::put_artifact`].
pub(super) async fn put(
    store: &SqliteHistoryStore,
    artifact: NewArtifact,
) -> Result<(ArtifactSummary, bool), StoreError> {
    let manifest = serde_json::to_string(&artifact.manifest)
        .map_err(|e| StoreError::database(format!("encoding the manifest: {e}")))?;
    let digest = artifact.digest.clone();
    let tenant = artifact.tenant.clone();
    let write = ArtifactWrite::Put {
        artifact: Box::new(artifact),
        manifest,
    };
    let inserted = store.write(|reply| Op::Artifact { write, reply }).await? == 1;
    let summary = summary(&store.reader, &tenant, &digest)
        .await?
        .ok_or_else(|| {
            StoreError::database(format!(
                "artifact {digest} vanished right after it was stored"
            ))
        })?;
    Ok((summary, inserted))
}

/// The summary of one of `tenant`'s artifacts.
async fn summary(
    pool: &ReadPool,
    tenant: &str,
    digest: &str,
) -> Result<Option<ArtifactSummary>, StoreError> {
    let (tenant, digest) = (tenant.to_owned(), digest.to_owned());
    pool.run(move |conn| {
        conn.prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM artifacts WHERE tenant = ?1 AND digest = ?2"
        ))
        .and_then(|mut stmt| {
            stmt.query_row([&tenant, &digest], |row| Ok(summary_from_row(row)))
                .optional()
        })
        .map_err(db("reading the artifact"))?
        .transpose()
    })
    .await
}

/// [`crate::providers::HistoryStore::list_artifacts`].
pub(super) async fn list(
    pool: &ReadPool,
    tenant: Option<&str>,
) -> Result<Vec<ArtifactSummary>, StoreError> {
    let tenant = tenant.map(str::to_owned);
    pool.run(move |conn| {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM artifacts WHERE ?1 IS NULL OR tenant = ?1
                 ORDER BY deployed_at, tenant, digest"
            ))
            .map_err(db("listing artifacts"))?;
        let rows = stmt
            .query_map([&tenant], |row| Ok(summary_from_row(row)))
            .map_err(db("listing artifacts"))?;
        rows.map(|row| row.map_err(db("listing artifacts"))?)
            .collect()
    })
    .await
}

/// [`crate::providers::HistoryStore::artifact`].
pub(super) async fn get(
    pool: &ReadPool,
    tenant: &str,
    digest: &str,
) -> Result<Option<Artifact>, StoreError> {
    let (tenant, digest) = (tenant.to_owned(), digest.to_owned());
    pool.run(move |conn| {
        conn.prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS}, bytes FROM artifacts WHERE tenant = ?1 AND digest = ?2"
        ))
        .and_then(|mut stmt| {
            stmt.query_row([&tenant, &digest], |row| {
                Ok(summary_from_row(row).and_then(|summary| {
                    let bytes: Vec<u8> = row
                        .get(7)
                        .map_err(|e| StoreError::Corrupt(format!("artifact bytes: {e}")))?;
                    Ok(Artifact { summary, bytes })
                }))
            })
            .optional()
        })
        .map_err(db("reading the artifact"))?
        .transpose()
    })
    .await
}

/// [`crate::providers::HistoryStore::remove_artifact`].
pub(super) async fn remove(
    store: &SqliteHistoryStore,
    tenant: &str,
    digest: &str,
) -> Result<RemoveOutcome, StoreError> {
    let write = ArtifactWrite::Remove {
        tenant: tenant.to_owned(),
        digest: digest.to_owned(),
    };
    if store.write(|reply| Op::Artifact { write, reply }).await? == 1 {
        return Ok(RemoveOutcome::Removed);
    }
    if summary(&store.reader, tenant, digest).await?.is_none() {
        return Ok(RemoveOutcome::NotFound);
    }
    Ok(RemoveOutcome::Pinned(
        pinned(&store.reader, tenant, digest, NAMED_PINNED).await?,
    ))
}

/// [`crate::providers::HistoryStore::pinned_instances`].
pub(super) async fn pinned(
    pool: &ReadPool,
    tenant: &str,
    digest: &str,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    let (tenant, digest) = (tenant.to_owned(), digest.to_owned());
    pool.run(move |conn| {
        let mut stmt = conn
            .prepare_cached(
                "SELECT instance_id FROM instances
                 WHERE component_digest = ?1 AND finished_at IS NULL AND tenant = ?3
                 ORDER BY created_at, instance_id LIMIT ?2 + 0",
            )
            .map_err(db("listing pinned instances"))?;
        let rows = stmt
            .query_map(
                rusqlite::params![&digest, i64::from(limit), &tenant],
                |row| row.get(0),
            )
            .map_err(db("listing pinned instances"))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(db("listing pinned instances"))
    })
    .await
}

/// [`crate::providers::HistoryStore::repin_instance`].
pub(super) async fn repin(
    store: &SqliteHistoryStore,
    instance_id: &str,
    from: &str,
    to: &str,
) -> Result<bool, StoreError> {
    let write = ArtifactWrite::Repin {
        instance_id: instance_id.to_owned(),
        from: from.to_owned(),
        to: to.to_owned(),
    };
    Ok(store.write(|reply| Op::Artifact { write, reply }).await? == 1)
}
