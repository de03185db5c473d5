//! The management queries: listing, bulk status, counts and retention, each
//! answered from the `instances` table through the instance indexes of the schema
//! (never by reading histories). Reads run on the read pool; purges are
//! writer ops, bounded so one never holds the writer long.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};

use super::SqliteHistoryStore;
use super::codec::{READ_INSTANCE, db, instance_from_row, to_i64, to_u64};
use super::ops::{Op, Signals};
use super::reads::ReadPool;
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

/// One statement and its positional parameters.
#[derive(Debug, PartialEq)]
struct Query {
    sql: String,
    params: Vec<Value>,
}

/// The listing statement for `filter`. Only the filters given appear in it,
/// so SQLite plans each shape with the index that fits: a seek on
/// `(status | orchestration_name, created_at, instance_id)` or
/// `(created_at, instance_id)` to the cursor, then rows in index order up to
/// the limit. With several statuses, each status is read in order from its
/// own index range, limited, and the ranges are merged: `status IN (...)`
/// would sort every matching row to find the first page.
fn list_query(filter: &InstanceFilter) -> Result<Query, StoreError> {
    let mut common = String::new();
    let mut common_params = Vec::new();
    // The tenant comes first: every listing index begins with it. (Placed
    // after the status test below, it is still an equality on the index's
    // first column.)
    if let Some(tenant) = &filter.tenant {
        common.push_str(" AND tenant = ?");
        common_params.push(Value::Text(tenant.clone()));
    }
    if let Some(name) = &filter.orchestration_name {
        common.push_str(" AND orchestration_name = ?");
        common_params.push(Value::Text(name.clone()));
    }
    if let Some(after) = filter.created_after_ms {
        common.push_str(" AND created_at >= ?");
        common_params.push(Value::Integer(to_i64(after, "created_after_ms")?));
    }
    if let Some(before) = filter.created_before_ms {
        common.push_str(" AND created_at < ?");
        common_params.push(Value::Integer(to_i64(before, "created_before_ms")?));
    }
    if let Some(after) = filter.finished_after_ms {
        common.push_str(" AND finished_at >= ?");
        common_params.push(Value::Integer(to_i64(after, "finished_after_ms")?));
    }
    if let Some(parent) = &filter.parent_instance {
        common.push_str(" AND parent_instance = ?");
        common_params.push(Value::Text(parent.clone()));
    }
    let (cmp, dir) = match filter.order {
        ListOrder::NewestFirst => ("<", "DESC"),
        ListOrder::OldestFirst => (">", "ASC"),
    };
    if let Some(cursor) = &filter.after {
        common.push_str(&format!(" AND (created_at, instance_id) {cmp} (?, ?)"));
        common_params.push(Value::Integer(to_i64(cursor.created_at_ms, "cursor")?));
        common_params.push(Value::Text(cursor.instance_id.clone()));
    }
    let order = format!(" ORDER BY created_at {dir}, instance_id {dir}");
    let limit = filter.limit.map_or(-1, i64::from);
    let offset = filter.offset.map_or(0, i64::from);
    let mut statuses: Vec<InstanceStatus> = filter.status.clone().unwrap_or_default();
    statuses.sort_by_key(|s| s.as_str());
    statuses.dedup();
    let mut params = Vec::new();
    let sql = if statuses.len() <= 1 {
        let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM instances WHERE 1");
        if let Some(status) = statuses.first() {
            sql.push_str(" AND status = ?");
            params.push(Value::Text(status.as_str().to_owned()));
        }
        sql.push_str(&common);
        params.extend(common_params);
        sql.push_str(&order);
        sql
    } else {
        // Each arm reads at most what the page could take from it.
        let arm_limit = if limit < 0 { -1 } else { limit + offset };
        let arms: Vec<String> = statuses
            .iter()
            .map(|status| {
                params.push(Value::Text(status.as_str().to_owned()));
                params.extend(common_params.iter().cloned());
                params.push(Value::Integer(arm_limit));
                format!(
                    "SELECT * FROM (SELECT {SUMMARY_COLUMNS} FROM instances
                     WHERE status = ?{common}{order} LIMIT ?)"
                )
            })
            .collect();
        format!("{}{order}", arms.join(" UNION ALL "))
    };
    params.push(Value::Integer(limit));
    params.push(Value::Integer(offset));
    Ok(Query {
        sql: format!("{sql} LIMIT ? OFFSET ?"),
        params,
    })
}

/// Reads a row selected with [`SUMMARY_COLUMNS`].
fn summary_from_row(row: &Row<'_>) -> Result<InstanceSummary, StoreError> {
    let col = |e: rusqlite::Error| StoreError::Corrupt(format!("instance row: {e}"));
    let status: String = row.get(3).map_err(col)?;
    let finished_at: Option<i64> = row.get(6).map_err(col)?;
    let parent_id: Option<i64> = row.get(9).map_err(col)?;
    Ok(InstanceSummary {
        instance_id: row.get(0).map_err(col)?,
        orchestration_name: row.get(1).map_err(col)?,
        orchestration_version: row.get(2).map_err(col)?,
        status: InstanceStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown instance status '{status}'")))?,
        created_at_ms: to_u64(row.get(4).map_err(col)?, "created_at")?,
        updated_at_ms: to_u64(row.get(5).map_err(col)?, "updated_at")?,
        finished_at_ms: finished_at.map(|t| to_u64(t, "finished_at")).transpose()?,
        execution_count: to_u64(row.get(7).map_err(col)?, "execution_id")?,
        parent_instance: row.get(8).map_err(col)?,
        parent_id: parent_id.map(|p| to_u64(p, "parent_id")).transpose()?,
    })
}

/// A page of the instances `filter` selects, in one statement.
pub(super) async fn list_instances(
    pool: &ReadPool,
    filter: &InstanceFilter,
) -> Result<InstancePage, StoreError> {
    let query = list_query(filter)?;
    let limit = filter.limit;
    pool.run(move |conn| {
        let mut stmt = conn
            .prepare_cached(&query.sql)
            .map_err(db("listing instances"))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(query.params))
            .map_err(db("listing instances"))?;
        let mut instances = Vec::new();
        while let Some(row) = rows.next().map_err(db("listing instances"))? {
            instances.push(summary_from_row(row)?);
        }
        let full = limit.is_some_and(|l| usize::try_from(l).is_ok_and(|l| instances.len() >= l));
        let next = if full {
            instances.last().map(InstanceSummary::cursor)
        } else {
            None
        };
        Ok(InstancePage { instances, next })
    })
    .await
}

/// The rows of those of `ids` that exist, in the order of `ids`.
pub(super) async fn instances_by_id(
    pool: &ReadPool,
    ids: &[String],
) -> Result<Vec<InstanceRecord>, StoreError> {
    let ids = ids.to_vec();
    pool.run(move |conn| {
        // One primary-key lookup per id, on one connection and thread.
        let mut stmt = conn
            .prepare_cached(READ_INSTANCE)
            .map_err(db("reading instances"))?;
        let mut found = Vec::with_capacity(ids.len());
        for id in &ids {
            let row = stmt
                .query_row([id], |row| Ok(instance_from_row(row)))
                .optional()
                .map_err(db("reading instances"))?;
            if let Some(row) = row {
                found.push(row?);
            }
        }
        Ok(found)
    })
    .await
}

/// The counts of every tenant's instances: `?1` long-running before, `?2`
/// recent since.
const COUNTS_OF_ALL: &str = "SELECT
     (SELECT COUNT(*) FROM instances WHERE status = 'Pending'),
     (SELECT COUNT(*) FROM instances WHERE status = 'Running'),
     (SELECT COUNT(*) FROM instances WHERE status = 'Completed'),
     (SELECT COUNT(*) FROM instances WHERE status = 'Failed'),
     (SELECT COUNT(*) FROM instances WHERE status = 'Cancelled'),
     (SELECT COUNT(*) FROM instances WHERE status = 'Running' AND created_at < ?1),
     (SELECT COUNT(*) FROM instances WHERE status = 'Failed' AND finished_at >= ?2)";

/// [`COUNTS_OF_ALL`] for tenant `?3`.
const COUNTS_OF_TENANT: &str = "SELECT
     (SELECT COUNT(*) FROM instances WHERE tenant = ?3 AND status = 'Pending'),
     (SELECT COUNT(*) FROM instances WHERE tenant = ?3 AND status = 'Running'),
     (SELECT COUNT(*) FROM instances WHERE tenant = ?3 AND status = 'Completed'),
     (SELECT COUNT(*) FROM instances WHERE tenant = ?3 AND status = 'Failed'),
     (SELECT COUNT(*) FROM instances WHERE tenant = ?3 AND status = 'Cancelled'),
     (SELECT COUNT(*) FROM instances
      WHERE tenant = ?3 AND status = 'Running' AND created_at < ?1),
     (SELECT COUNT(*) FROM instances
      WHERE tenant = ?3 AND status = 'Failed' AND finished_at >= ?2)";

/// How many instances are in each state: counts of index ranges, in one
/// statement.
pub(super) async fn instance_counts(
    pool: &ReadPool,
    query: CountsQuery,
) -> Result<InstanceCounts, StoreError> {
    let long_before = to_i64(query.long_running_before_ms, "long_running_before_ms")?;
    let recent = to_i64(query.recent_since_ms, "recent_since_ms")?;
    // One statement per shape, so each is planned with the index that fits:
    // `(tenant, status, created_at, ...)` for one tenant.
    let (sql, tenant) = match query.tenant {
        Some(tenant) => (COUNTS_OF_TENANT, tenant),
        None => (COUNTS_OF_ALL, String::new()),
    };
    pool.run(move |conn| {
        let counts: [i64; 7] = conn
            .prepare_cached(sql)
            .and_then(|mut stmt| {
                let params: &[&dyn rusqlite::ToSql] = if sql == COUNTS_OF_ALL {
                    &[&long_before, &recent]
                } else {
                    &[&long_before, &recent, &tenant]
                };
                stmt.query_row(params, |r| {
                    Ok([
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ])
                })
            })
            .map_err(db("counting instances"))?;
        let [
            pending,
            running,
            completed,
            failed,
            cancelled,
            long_running,
            recent_failures,
        ] = counts.map(|c| u64::try_from(c).unwrap_or(0));
        Ok(InstanceCounts {
            pending,
            running,
            completed,
            failed,
            cancelled,
            long_running,
            recent_failures,
        })
    })
    .await
}

/// Deletes a finished instance with its histories and queued work.
pub(super) async fn purge_instance(
    store: &SqliteHistoryStore,
    instance_id: &str,
) -> Result<PurgeOutcome, StoreError> {
    let instance_id = instance_id.to_owned();
    store
        .write(|reply| Op::PurgeInstance { instance_id, reply })
        .await
}

/// Op body of [`purge_instance`], inside the writer's batch transaction.
pub(super) fn purge_instance_in(
    conn: &Connection,
    instance_id: &str,
) -> Result<(Signals, PurgeOutcome), StoreError> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM instances WHERE instance_id = ?1")
        .and_then(|mut stmt| stmt.query_row([instance_id], |r| r.get(0)).optional())
        .map_err(db("reading the instance to purge"))?;
    let Some(status) = status else {
        return Ok((Signals::NONE, PurgeOutcome::NotFound));
    };
    let status = InstanceStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown instance status '{status}'")))?;
    if !status.is_terminal() {
        return Ok((Signals::NONE, PurgeOutcome::NotFinished(status)));
    }
    for sql in [
        "DELETE FROM history WHERE instance_id = ?1",
        "DELETE FROM orchestrator_queue WHERE instance_id = ?1",
        "DELETE FROM activity_queue WHERE instance_id = ?1",
        "DELETE FROM instances WHERE instance_id = ?1",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([instance_id]))
            .map_err(db("purging an instance"))?;
    }
    Ok((Signals::NONE, PurgeOutcome::Purged))
}

/// Deletes up to `limit` finished instances that `filter` selects, with
/// their histories and queued work; returns how many.
pub(super) async fn purge_finished(
    store: &SqliteHistoryStore,
    filter: &PurgeFilter,
    limit: u32,
) -> Result<u64, StoreError> {
    let query = purge_selection(filter, limit)?;
    store
        .write(|reply| Op::PurgeFinished {
            query: query.sql,
            params: query.params,
            reply,
        })
        .await
}

/// The statement selecting the instances a purge batch deletes: finished
/// ones, through the partial index `instances_finished (status,
/// finished_at)`, one range per terminal status.
fn purge_selection(filter: &PurgeFilter, limit: u32) -> Result<Query, StoreError> {
    let statuses: Vec<InstanceStatus> = match &filter.status {
        Some(wanted) => TERMINAL
            .into_iter()
            .filter(|s| wanted.contains(s))
            .collect(),
        None => TERMINAL.to_vec(),
    };
    let mut params: Vec<Value> = statuses
        .iter()
        .map(|s| Value::Text(s.as_str().to_owned()))
        .collect();
    // An empty set matches nothing: `IN ()` is valid SQLite.
    let marks = vec!["?"; statuses.len()].join(", ");
    let mut sql =
        format!("SELECT instance_id FROM instances WHERE status IN ({marks}) AND finished_at < ?");
    params.push(Value::Integer(to_i64(
        filter.finished_before_ms,
        "finished_before_ms",
    )?));
    if let Some(name) = &filter.orchestration_name {
        sql.push_str(" AND orchestration_name = ?");
        params.push(Value::Text(name.clone()));
    }
    if let Some(tenant) = &filter.tenant {
        sql.push_str(" AND tenant = ?");
        params.push(Value::Text(tenant.clone()));
    }
    sql.push_str(" LIMIT ?");
    params.push(Value::Integer(i64::from(limit)));
    Ok(Query { sql, params })
}

/// Op body of [`purge_finished`], inside the writer's batch transaction:
/// collects the batch's ids in a temporary table, then deletes set-wise
/// (index probes per id on history and the orchestrator queue, one pass over
/// the activity queue, which has no index by instance so that enqueueing
/// work stays cheap).
pub(super) fn purge_finished_in(
    conn: &Connection,
    select: &str,
    params: &[Value],
) -> Result<(Signals, u64), StoreError> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS purge_batch (instance_id TEXT PRIMARY KEY);
         DELETE FROM temp.purge_batch;",
    )
    .map_err(db("preparing a purge"))?;
    let selected = conn
        .prepare_cached(&format!(
            "INSERT INTO temp.purge_batch (instance_id) {select}"
        ))
        .and_then(|mut stmt| stmt.execute(rusqlite::params_from_iter(params)))
        .map_err(db("selecting instances to purge"))?;
    if selected == 0 {
        return Ok((Signals::NONE, 0));
    }
    for sql in [
        "DELETE FROM history WHERE instance_id IN (SELECT instance_id FROM temp.purge_batch)",
        "DELETE FROM orchestrator_queue
         WHERE instance_id IN (SELECT instance_id FROM temp.purge_batch)",
        "DELETE FROM activity_queue
         WHERE instance_id IN (SELECT instance_id FROM temp.purge_batch)",
        "DELETE FROM instances WHERE instance_id IN (SELECT instance_id FROM temp.purge_batch)",
        "DELETE FROM temp.purge_batch",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]))
            .map_err(db("purging instances"))?;
    }
    Ok((Signals::NONE, u64::try_from(selected).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::query::ListCursor;

    #[test]
    fn a_listing_names_only_the_filters_given() {
        let q = list_query(&InstanceFilter::default()).unwrap();
        assert!(!q.sql.contains("status ="), "{}", q.sql);
        assert!(q.sql.contains("ORDER BY created_at DESC, instance_id DESC"));
        assert_eq!(q.params, vec![Value::Integer(-1), Value::Integer(0)]);
    }

    #[test]
    fn a_cursor_compares_the_row_value_in_the_listing_order() {
        let filter = InstanceFilter {
            order: ListOrder::OldestFirst,
            after: Some(ListCursor {
                created_at_ms: 7,
                instance_id: "x".into(),
            }),
            limit: Some(10),
            ..InstanceFilter::default()
        };
        let q = list_query(&filter).unwrap();
        assert!(
            q.sql.contains("(created_at, instance_id) > (?, ?)"),
            "{}",
            q.sql
        );
        assert!(q.sql.contains("ASC"));
        assert_eq!(
            q.params,
            vec![
                Value::Integer(7),
                Value::Text("x".into()),
                Value::Integer(10),
                Value::Integer(0)
            ]
        );
    }

    #[test]
    fn several_statuses_merge_one_limited_range_each() {
        let filter = InstanceFilter {
            status: Some(vec![InstanceStatus::Running, InstanceStatus::Failed]),
            limit: Some(5),
            offset: Some(2),
            ..InstanceFilter::default()
        };
        let q = list_query(&filter).unwrap();
        assert_eq!(q.sql.matches("UNION ALL").count(), 1, "{}", q.sql);
        // Per arm: status and its limit (page plus offset); then the page.
        assert_eq!(
            q.params,
            vec![
                Value::Text("Failed".into()),
                Value::Integer(7),
                Value::Text("Running".into()),
                Value::Integer(7),
                Value::Integer(5),
                Value::Integer(2)
            ]
        );
    }

    #[test]
    fn a_purge_selects_only_terminal_states() {
        let filter = PurgeFilter {
            tenant: None,
            finished_before_ms: 100,
            orchestration_name: None,
            status: Some(vec![InstanceStatus::Running, InstanceStatus::Failed]),
        };
        let q = purge_selection(&filter, 500).unwrap();
        assert_eq!(
            q.params,
            vec![
                Value::Text("Failed".into()),
                Value::Integer(100),
                Value::Integer(500)
            ]
        );
    }
}
