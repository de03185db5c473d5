//! Fair dispatch between tenants: a fetch takes the earliest ready
//! instances of each tenant with work in turn, so a tenant with thousands of
//! queued instances delays another tenant's instance by at most a few
//! fetches, not by its whole backlog.
//!
//! Everything here reads `instances_by_next_visible (tenant,
//! next_visible_at, locked_until)`, which holds only instances with queued
//! messages: the tenants with queued work are found by one seek each (a
//! loose index scan), and each tenant's earliest ready instances by one
//! range read. With one tenant that is two seeks more than a plain fetch.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension};

use super::codec::db;
use crate::providers::StoreError;

/// The first tenant after `?1` with a queued message.
const NEXT_TENANT: &str = "SELECT tenant FROM instances
     WHERE tenant > ?1 AND next_visible_at IS NOT NULL ORDER BY tenant LIMIT 1";

/// Tenant `?4`'s unlocked instances (at `?3`, now) whose earliest message is
/// visible by `?1`, the earliest first, at most `?2`, with that time.
const TENANT_CANDIDATES: &str = "SELECT instance_id, next_visible_at FROM instances
     WHERE tenant = ?4 AND next_visible_at <= ?1
       AND (locked_until IS NULL OR locked_until <= ?3)
     ORDER BY next_visible_at LIMIT ?2 + 0";

/// When the earliest message of tenant `?2`'s unlocked instances (at `?1`)
/// that becomes visible after `?3` does.
const TENANT_EARLIEST: &str = "SELECT next_visible_at FROM instances
     WHERE tenant = ?2 AND next_visible_at > ?3
       AND (locked_until IS NULL OR locked_until <= ?1)
     ORDER BY next_visible_at LIMIT 1";

/// The tenant whose work a store's last fetch took last: the next fetch
/// starts with the tenant after it. Kept per store object, so each runtime
/// rotates on its own.
#[derive(Debug, Default, Clone)]
pub(super) struct Rotation(Arc<Mutex<String>>);

impl Rotation {
    fn last(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, tenant: &str) {
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        tenant.clone_into(&mut last);
    }
}

/// The first tenant after `after` (in name order) with a queued message.
fn next_tenant(conn: &Connection, after: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached(NEXT_TENANT)
        .and_then(|mut stmt| stmt.query_row([after], |row| row.get(0)).optional())
        .map_err(db("looking for orchestration work"))
}

/// The tenants with queued messages, starting with the first after
/// `after` and wrapping around: each one once.
fn tenants_from(conn: &Connection, after: &str) -> Result<Vec<String>, StoreError> {
    let mut tenants = Vec::new();
    let mut at = after.to_owned();
    while let Some(tenant) = next_tenant(conn, &at)? {
        at.clone_from(&tenant);
        tenants.push(tenant);
    }
    // Wrap: the tenants up to and including `after`.
    at.clear();
    while let Some(tenant) = next_tenant(conn, &at)? {
        if tenant.as_str() > after {
            break;
        }
        at.clone_from(&tenant);
        tenants.push(tenant);
    }
    Ok(tenants)
}

/// Up to `max` of `tenant`'s instances unlocked at `now` whose earliest
/// message is visible by `by`, earliest first, with that time.
fn tenant_candidates(
    conn: &Connection,
    tenant: &str,
    max: i64,
    now: i64,
    by: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    conn.prepare_cached(TENANT_CANDIDATES)
        .and_then(|mut stmt| {
            stmt.query_map((by, max, now, tenant), |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(db("looking for orchestration work"))
}

/// Up to `max` instances unlocked at `now` whose earliest message is
/// visible by `by`, with that time: the tenants with such work take turns,
/// starting after the one `rotation` names, each giving its earliest first
/// (one from each, then a second from each, ...). Remembers in `rotation`
/// the tenant taken last.
pub(super) fn candidates(
    conn: &Connection,
    rotation: &Rotation,
    max: usize,
    now: i64,
    by: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let mut lists = Vec::new();
    for tenant in tenants_from(conn, &rotation.last())? {
        let found = tenant_candidates(conn, &tenant, limit, now, by)?;
        if !found.is_empty() {
            lists.push((tenant, found.into_iter()));
        }
        // A tenant past the first `max` with work would get no slot.
        if lists.len() >= max {
            break;
        }
    }
    let mut taken = Vec::with_capacity(max);
    let mut last = None;
    while taken.len() < max {
        let before = taken.len();
        for (i, (_, list)) in lists.iter_mut().enumerate() {
            if taken.len() >= max {
                break;
            }
            if let Some(candidate) = list.next() {
                taken.push(candidate);
                last = Some(i);
            }
        }
        if taken.len() == before {
            break;
        }
    }
    if let Some((tenant, _)) = last.and_then(|i| lists.get(i)) {
        rotation.set(tenant);
    }
    Ok(taken)
}

/// When the earliest message of an unlocked instance (at `now`) that
/// becomes visible after `after` does, over every tenant: one seek per
/// tenant with queued work.
pub(super) fn earliest_unlocked(
    conn: &Connection,
    now: i64,
    after: i64,
) -> Result<Option<i64>, StoreError> {
    let mut earliest: Option<i64> = None;
    let mut stmt = conn
        .prepare_cached(TENANT_EARLIEST)
        .map_err(db("looking for orchestration work"))?;
    for tenant in tenants_from(conn, "")? {
        let at: Option<i64> = stmt
            .query_row((now, &tenant, after), |row| row.get(0))
            .optional()
            .map_err(db("looking for orchestration work"))?;
        earliest = match (earliest, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(earliest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite makes for `sql`, one detail per line.
    fn plan(sql: &str) -> String {
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(include_str!("../../../migrations/sqlite/0001_initial.sql"))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let params = vec![rusqlite::types::Value::Null; stmt.parameter_count()];
        let details = stmt
            .query_map(rusqlite::params_from_iter(params), |row| {
                row.get::<_, String>(3)
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .unwrap_or_else(|e| panic!("{e}"));
        details.join("\n")
    }

    #[test]
    fn each_step_of_a_fair_fetch_is_a_seek_on_the_tenant_index() {
        for sql in [NEXT_TENANT, TENANT_CANDIDATES, TENANT_EARLIEST] {
            let plan = plan(sql);
            assert!(
                plan.starts_with("SEARCH instances USING")
                    && plan.contains("INDEX instances_by_next_visible (tenant"),
                "{sql}\n{plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "no sort: {sql}\n{plan}");
        }
    }
}
