//! The management queries: listing, bulk rows, counts and purges, each
//! answered from the `instances` table through its indexes (never by
//! reading histories), each one statement.

use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgRow, Postgres};

use super::PostgresHistoryStore;
use super::codec::{db, instance_from_json, to_i64, to_u64};
use crate::providers::query::{
    CountsQuery, InstanceCounts, InstanceFilter, InstancePage, InstanceSummary, ListOrder,
    PurgeFilter, PurgeOutcome,
};
use crate::providers::{InstanceRecord, InstanceStatus, StoreError};

/// The columns [`summary_from_row`] reads, in its order.
const SUMMARY_COLUMNS: &str = "instance_id, orchestration_name, orchestration_version, status,
     created_at, updated_at, finished_at, execution_id, parent_instance, parent_id";

/// The terminal states, as stored.
const TERMINAL: [InstanceStatus; 3] = [
    InstanceStatus::Completed,
    InstanceStatus::Failed,
    InstanceStatus::Cancelled,
];

/// A bound value of a statement built at run time.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(Option<i64>),
    Text(String),
    Texts(Vec<String>),
}

/// One statement and its parameters, `$1` onwards in order.
#[derive(Debug, Default, PartialEq)]
struct Query {
    sql: String,
    params: Vec<Value>,
}

impl Query {
    /// Appends `value` to the parameters and returns its placeholder.
    fn bind(&mut self, value: Value) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// Runs the statement, returning its rows.
    async fn fetch(self, store: &PostgresHistoryStore) -> Result<Vec<PgRow>, sqlx_core::Error> {
        let mut q = query::<Postgres>(AssertSqlSafe(self.sql));
        for value in self.params {
            q = match value {
                Value::Int(v) => q.bind(v),
                Value::Text(v) => q.bind(v),
                Value::Texts(v) => q.bind(v),
            };
        }
        q.fetch_all(&store.pool).await
    }
}

/// The listing statement for `filter`. Only the filters given appear in it,
/// so the planner picks the index that fits: a seek on `(status |
/// orchestration_name, created_at, instance_id)` or `(created_at,
/// instance_id)` to the cursor, then rows in index order up to the limit.
/// With several statuses, each is read in order from its own index range,
/// limited, and the ranges merged: `status IN (...)` would sort every
/// matching row to find the first page.
fn list_query(filter: &InstanceFilter) -> Result<Query, StoreError> {
    let mut statuses: Vec<InstanceStatus> = filter.status.clone().unwrap_or_default();
    statuses.sort_by_key(|s| s.as_str());
    statuses.dedup();
    let (cmp, dir) = match filter.order {
        ListOrder::NewestFirst => ("<", "DESC"),
        ListOrder::OldestFirst => (">", "ASC"),
    };
    let order = format!(" ORDER BY created_at {dir}, instance_id {dir}");
    let limit = filter.limit.map(i64::from);
    let offset = i64::from(filter.offset.unwrap_or(0));
    let mut q = Query::default();
    // The conditions every arm shares; an arm binds its own copies.
    let common = |q: &mut Query| -> Result<String, StoreError> {
        let mut sql = String::new();
        // Every listing index begins with the tenant.
        if let Some(tenant) = &filter.tenant {
            let p = q.bind(Value::Text(tenant.clone()));
            sql.push_str(&format!(" AND tenant = {p}"));
        }
        if let Some(name) = &filter.orchestration_name {
            let p = q.bind(Value::Text(name.clone()));
            sql.push_str(&format!(" AND orchestration_name = {p}"));
        }
        if let Some(after) = filter.created_after_ms {
            let p = q.bind(Value::Int(Some(to_i64(after, "created_after_ms")?)));
            sql.push_str(&format!(" AND created_at >= {p}"));
        }
        if let Some(before) = filter.created_before_ms {
            let p = q.bind(Value::Int(Some(to_i64(before, "created_before_ms")?)));
            sql.push_str(&format!(" AND created_at < {p}"));
        }
        if let Some(after) = filter.finished_after_ms {
            let p = q.bind(Value::Int(Some(to_i64(after, "finished_after_ms")?)));
            sql.push_str(&format!(" AND finished_at >= {p}"));
        }
        if let Some(parent) = &filter.parent_instance {
            let p = q.bind(Value::Text(parent.clone()));
            sql.push_str(&format!(" AND parent_instance = {p}"));
        }
        if let Some(cursor) = &filter.after {
            let at = q.bind(Value::Int(Some(to_i64(cursor.created_at_ms, "cursor")?)));
            let id = q.bind(Value::Text(cursor.instance_id.clone()));
            sql.push_str(&format!(
                " AND (created_at, instance_id) {cmp} ({at}, {id})"
            ));
        }
        Ok(sql)
    };
    let body = if statuses.len() <= 1 {
        let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM instances WHERE TRUE");
        if let Some(status) = statuses.first() {
            let p = q.bind(Value::Text(status.as_str().to_owned()));
            sql.push_str(&format!(" AND status = {p}"));
        }
        sql.push_str(&common(&mut q)?);
        sql.push_str(&order);
        sql
    } else {
        // Each arm reads at most what the page could take from it.
        let arm_limit = limit.map(|l| l + offset);
        let mut arms = Vec::new();
        for status in &statuses {
            let p = q.bind(Value::Text(status.as_str().to_owned()));
            let rest = common(&mut q)?;
            let l = q.bind(Value::Int(arm_limit));
            arms.push(format!(
                "(SELECT {SUMMARY_COLUMNS} FROM instances WHERE status = {p}{rest}{order} LIMIT {l})"
            ));
        }
        format!("{}{order}", arms.join(" UNION ALL "))
    };
    let l = q.bind(Value::Int(limit));
    let o = q.bind(Value::Int(Some(offset)));
    q.sql = format!("{body} LIMIT {l} OFFSET {o}");
    Ok(q)
}

/// Reads a row selected with [`SUMMARY_COLUMNS`].
fn summary_from_row(row: &PgRow) -> Result<InstanceSummary, StoreError> {
    let col = |e: sqlx_core::Error| StoreError::Corrupt(format!("instance row: {e}"));
    let status: String = row.try_get(3).map_err(col)?;
    let finished_at: Option<i64> = row.try_get(6).map_err(col)?;
    let parent_id: Option<i64> = row.try_get(9).map_err(col)?;
    Ok(InstanceSummary {
        instance_id: row.try_get(0).map_err(col)?,
        orchestration_name: row.try_get(1).map_err(col)?,
        orchestration_version: row.try_get(2).map_err(col)?,
        status: InstanceStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown instance status '{status}'")))?,
        created_at_ms: to_u64(row.try_get(4).map_err(col)?, "created_at")?,
        updated_at_ms: to_u64(row.try_get(5).map_err(col)?, "updated_at")?,
        finished_at_ms: finished_at.map(|t| to_u64(t, "finished_at")).transpose()?,
        execution_count: to_u64(row.try_get(7).map_err(col)?, "execution_id")?,
        parent_instance: row.try_get(8).map_err(col)?,
        parent_id: parent_id.map(|p| to_u64(p, "parent_id")).transpose()?,
    })
}

/// A page of the instances `filter` selects, in one statement.
pub(super) async fn list_instances(
    store: &PostgresHistoryStore,
    filter: &InstanceFilter,
) -> Result<InstancePage, StoreError> {
    let rows = list_query(filter)?
        .fetch(store)
        .await
        .map_err(db("listing instances"))?;
    let instances = rows
        .iter()
        .map(summary_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let full = filter
        .limit
        .is_some_and(|l| usize::try_from(l).is_ok_and(|l| instances.len() >= l));
    let next = if full {
        instances.last().map(InstanceSummary::cursor)
    } else {
        None
    };
    Ok(InstancePage { instances, next })
}

/// The rows of those of `ids` that exist, in the order of `ids`: one
/// statement, a primary-key probe per id.
pub(super) async fn instances_by_id(
    store: &PostgresHistoryStore,
    ids: &[String],
) -> Result<Vec<InstanceRecord>, StoreError> {
    let rows: Vec<String> = query_scalar::<Postgres, String>(
        "SELECT row_to_json(i.*)::text
         FROM unnest($1::text[]) WITH ORDINALITY AS asked(id, n)
         JOIN instances i ON i.instance_id = asked.id
         ORDER BY asked.n",
    )
    .bind(ids)
    .fetch_all(&store.pool)
    .await
    .map_err(db("reading instances"))?;
    rows.iter().map(|row| instance_from_json(row)).collect()
}

/// How many instances are in each state: counts of index ranges, in one
/// statement.
pub(super) async fn instance_counts(
    store: &PostgresHistoryStore,
    query: CountsQuery,
) -> Result<InstanceCounts, StoreError> {
    // `$3::text IS NULL OR tenant = $3`: one statement for one tenant or
    // all; the planner sees the bound value, and one tenant's counts read
    // `(tenant, status, ...)`.
    let row = sqlx_core::query::query::<Postgres>(
        "SELECT
             (SELECT COUNT(*) FROM instances WHERE ($3::text IS NULL OR tenant = $3)
                  AND status = 'Pending'),
             (SELECT COUNT(*) FROM instances WHERE ($3::text IS NULL OR tenant = $3)
                  AND status = 'Running'),
             (SELECT COUNT(*) FROM instances WHERE ($3::text IS NULL OR tenant = $3)
                  AND status = 'Completed'),
             (SELECT COUNT(*) FROM instances WHERE ($3::text IS NULL OR tenant = $3)
                  AND status = 'Failed'),
             (SELECT COUNT(*) FROM instances WHERE ($3::text IS NULL OR tenant = $3)
                  AND status = 'Cancelled'),
             (SELECT COUNT(*) FROM instances WHERE ($3::text IS NULL OR tenant = $3)
                  AND status = 'Running' AND created_at < $1),
             (SELECT COUNT(*) FROM instances WHERE ($3::text IS NULL OR tenant = $3)
                  AND status = 'Failed' AND finished_at >= $2)",
    )
    .bind(to_i64(
        query.long_running_before_ms,
        "long_running_before_ms",
    )?)
    .bind(to_i64(query.recent_since_ms, "recent_since_ms")?)
    .bind(query.tenant)
    .fetch_one(&store.pool)
    .await
    .map_err(db("counting instances"))?;
    let mut counts = [0u64; 7];
    for (i, count) in counts.iter_mut().enumerate() {
        let n: i64 = row.try_get(i).map_err(db("counting instances"))?;
        *count = to_u64(n, "count")?;
    }
    let [
        pending,
        running,
        completed,
        failed,
        cancelled,
        long_running,
        recent_failures,
    ] = counts;
    Ok(InstanceCounts {
        pending,
        running,
        completed,
        failed,
        cancelled,
        long_running,
        recent_failures,
    })
}

/// The common table expressions that delete the instances `batch` (a
/// SELECT of `instance_id`s, locking them) selects, with their histories
/// and queued work; `purged` returns a row per deleted instance. Every
/// data-modifying CTE of a statement runs, so the whole purge is one
/// statement (they may not nest, hence a fragment for the caller's WITH).
fn purge_ctes(batch: &str) -> String {
    format!(
        "batch AS ({batch}),
         h AS (DELETE FROM history WHERE instance_id IN (SELECT instance_id FROM batch)),
         q AS (DELETE FROM orchestrator_queue
               WHERE instance_id IN (SELECT instance_id FROM batch)),
         a AS (DELETE FROM activity_queue
               WHERE instance_id IN (SELECT instance_id FROM batch)),
         purged AS (DELETE FROM instances
                    WHERE instance_id IN (SELECT instance_id FROM batch) RETURNING 1)"
    )
}

/// Deletes a finished instance with its histories and queued work.
pub(super) async fn purge_instance(
    store: &PostgresHistoryStore,
    instance_id: &str,
) -> Result<PurgeOutcome, StoreError> {
    // The row is locked first, so no turn changes it meanwhile; the status
    // read is the locked one.
    let sql = format!(
        "WITH target AS (SELECT instance_id, status FROM instances WHERE instance_id = $1
                         FOR UPDATE),
         {}
         SELECT (SELECT status FROM target), (SELECT COUNT(*) FROM purged)",
        purge_ctes(
            "SELECT instance_id FROM target WHERE status IN ('Completed', 'Failed', 'Cancelled')"
        )
    );
    let row = query::<Postgres>(AssertSqlSafe(sql))
        .bind(instance_id)
        .fetch_one(&store.pool)
        .await
        .map_err(db("purging an instance"))?;
    let status: Option<String> = row.try_get(0).map_err(db("purging an instance"))?;
    let Some(status) = status else {
        return Ok(PurgeOutcome::NotFound);
    };
    let status = InstanceStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown instance status '{status}'")))?;
    if !status.is_terminal() {
        return Ok(PurgeOutcome::NotFinished(status));
    }
    Ok(PurgeOutcome::Purged)
}

/// Deletes up to `limit` finished instances that `filter` selects, with
/// their histories and queued work, in one statement; returns how many.
/// The batch is selected through the partial index `instances_finished
/// (status, finished_at)`; rows another purge holds are skipped.
pub(super) async fn purge_finished(
    store: &PostgresHistoryStore,
    filter: &PurgeFilter,
    limit: u32,
) -> Result<u64, StoreError> {
    let statuses: Vec<String> = TERMINAL
        .into_iter()
        .filter(|s| {
            filter
                .status
                .as_ref()
                .is_none_or(|wanted| wanted.contains(s))
        })
        .map(|s| s.as_str().to_owned())
        .collect();
    let mut q = Query::default();
    let s = q.bind(Value::Texts(statuses));
    let before = q.bind(Value::Int(Some(to_i64(
        filter.finished_before_ms,
        "finished_before_ms",
    )?)));
    let mut batch = format!(
        "SELECT instance_id FROM instances
         WHERE status = ANY ({s}::text[]) AND finished_at < {before}"
    );
    if let Some(name) = &filter.orchestration_name {
        let p = q.bind(Value::Text(name.clone()));
        batch.push_str(&format!(" AND orchestration_name = {p}"));
    }
    if let Some(tenant) = &filter.tenant {
        let p = q.bind(Value::Text(tenant.clone()));
        batch.push_str(&format!(" AND tenant = {p}"));
    }
    let l = q.bind(Value::Int(Some(i64::from(limit))));
    batch.push_str(&format!(" LIMIT {l} FOR UPDATE SKIP LOCKED"));
    q.sql = format!("WITH {} SELECT COUNT(*) FROM purged", purge_ctes(&batch));
    let rows = q.fetch(store).await.map_err(db("purging instances"))?;
    let count: i64 = rows
        .first()
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(db("purging instances"))?
        .unwrap_or(0);
    to_u64(count, "purged count")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_binds_only_the_filters_given_and_merges_status_arms() -> Result<(), StoreError> {
        let plain = list_query(&InstanceFilter::default())?;
        assert_eq!(plain.params, [Value::Int(None), Value::Int(Some(0))]);
        assert!(plain.sql.ends_with("LIMIT $1 OFFSET $2"), "{}", plain.sql);
        let two = list_query(&InstanceFilter {
            status: Some(vec![InstanceStatus::Running, InstanceStatus::Failed]),
            orchestration_name: Some("o".into()),
            limit: Some(5),
            offset: Some(2),
            ..InstanceFilter::default()
        })?;
        assert_eq!(two.sql.matches("UNION ALL").count(), 1);
        // Per arm: status, name, arm limit (limit + offset); then limit, offset.
        assert_eq!(two.params.len(), 8);
        assert_eq!(two.params[2], Value::Int(Some(7)));
        Ok(())
    }
}
