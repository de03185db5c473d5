//! Conversions between the store's Rust types and PostgreSQL values, and
//! the mapping of sqlx errors to [`StoreError`].
//!
//! Columns are BIGINT while the contract speaks `u64`; every crossing is
//! checked so a bad value becomes an error, never a panic or a silent wrap.
//! Instance rows travel as `row_to_json(...)::text`, one decoder for the
//! rows that reads and the write functions return alike.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::providers::{DatabaseError, InstanceRecord, InstanceStatus, StoreError};

/// An instance's row by id (`$1`) as JSON text, read by [`instance_from_json`].
pub(super) const READ_INSTANCE: &str =
    "SELECT row_to_json(i.*)::text FROM instances i WHERE instance_id = $1";

/// SQLSTATE classes and codes after which the same call can succeed:
/// connection failures (08), serialization failures and deadlocks (40001,
/// 40P01), a lock not available (55P03), an operator or crash shutdown
/// (57P01-57P03), too many connections or out of resources (53).
fn retryable_state(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03"
        )
}

/// `e`, an sqlx error, as the store's error while doing `context`.
pub(super) fn pg_error(context: impl Into<String>, e: sqlx_core::Error) -> StoreError {
    use sqlx_core::Error as E;
    let retryable = match &e {
        E::Database(db) => db.code().is_some_and(|code| retryable_state(&code)),
        E::Io(_) | E::PoolTimedOut | E::WorkerCrashed | E::Protocol(_) => true,
        _ => false,
    };
    let mut context = context.into();
    if matches!(e, E::PoolTimedOut) {
        // The pool retried connecting until its timeout and kept no cause.
        context.push_str(
            ": no connection within the connect timeout (the server is down or unreachable, \
             or every connection is busy)",
        );
    }
    StoreError::Database(DatabaseError::caused_by(context, e, retryable))
}

/// Wraps an sqlx error with what the store was doing when it failed.
pub(super) fn db(context: &'static str) -> impl FnOnce(sqlx_core::Error) -> StoreError {
    move |e| pg_error(context, e)
}

/// A contract value (id, length, timestamp) as a BIGINT.
pub(super) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::database(format!("{what} {value} does not fit in a BIGINT")))
}

/// A stored BIGINT as a contract value; a negative one means the row is corrupt.
pub(super) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {value}")))
}

/// The current time of the store's clock, as stored.
pub(super) fn now_i64(clock: &dyn Clock) -> Result<i64, StoreError> {
    to_i64(clock.now_ms(), "current time")
}

/// The stored time `span` after `at`. Saturates: an absurdly long lock
/// simply never expires.
pub(super) fn plus(at: i64, span: Duration) -> i64 {
    at.saturating_add(i64::try_from(span.as_millis()).unwrap_or(i64::MAX))
}

/// Serializes an event or message for a TEXT column.
pub(super) fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

/// Parses a TEXT column written by [`encode`].
pub(super) fn decode<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A stored attempt counter.
pub(super) fn attempts(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("attempts out of range: {value}")))
}

/// The columns of an instance row that the contract shows, as
/// `row_to_json` names them (the lock and the queue summary are left out).
#[derive(serde::Deserialize)]
struct InstanceRow {
    instance_id: String,
    orchestration_name: String,
    orchestration_version: Option<String>,
    status: String,
    output: Option<String>,
    execution_id: i64,
    history_len: i64,
    created_at: i64,
    updated_at: i64,
    parent_instance: Option<String>,
    parent_id: Option<i64>,
    parent_execution_id: Option<i64>,
    custom_status: Option<String>,
    finished_at: Option<i64>,
    component_digest: Option<String>,
}

/// Parses an instance row written as JSON by `row_to_json`.
pub(super) fn instance_from_json(text: &str) -> Result<InstanceRecord, StoreError> {
    let row: InstanceRow = decode(text, "instance row")?;
    let opt = |v: Option<i64>, what: &str| v.map(|v| to_u64(v, what)).transpose();
    Ok(InstanceRecord {
        status: InstanceStatus::parse(&row.status).ok_or_else(|| {
            StoreError::Corrupt(format!("unknown instance status '{}'", row.status))
        })?,
        instance_id: row.instance_id,
        orchestration_name: row.orchestration_name,
        orchestration_version: row.orchestration_version,
        output: row.output,
        execution_id: to_u64(row.execution_id, "execution_id")?,
        history_len: to_u64(row.history_len, "history_len")?,
        created_at_ms: to_u64(row.created_at, "created_at")?,
        updated_at_ms: to_u64(row.updated_at, "updated_at")?,
        parent_instance: row.parent_instance,
        parent_id: opt(row.parent_id, "parent_id")?,
        parent_execution_id: opt(row.parent_execution_id, "parent_execution_id")?,
        custom_status: row.custom_status,
        finished_at_ms: opt(row.finished_at, "finished_at")?,
        component_digest: row.component_digest,
    })
}

/// A lock token unique across processes: a random per-process prefix (from the
/// OS-seeded keys of std's `RandomState`) and a per-process counter.
pub(super) fn new_lock_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}-{n:x}", process_tag())
}

/// A random number fixed for this process, naming it in lock tokens and
/// in the notices its stores send.
pub(super) fn process_tag() -> u64 {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    *PREFIX.get_or_init(|| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_concurrency_failures_are_retryable_constraints_are_not() {
        for code in ["08006", "40001", "40P01", "57P01", "53300"] {
            assert!(retryable_state(code), "{code}");
        }
        for code in ["23505", "42P01", "22003"] {
            assert!(!retryable_state(code), "{code}");
        }
        let timeout = pg_error("fetching", sqlx_core::Error::PoolTimedOut);
        assert!(timeout.is_retryable());
        assert!(
            timeout
                .to_string()
                .contains("fetching: no connection within"),
            "{timeout}"
        );
        let closed = pg_error("fetching", sqlx_core::Error::PoolClosed);
        assert!(!closed.is_retryable());
    }

    #[test]
    fn an_instance_row_reads_back_from_its_json() -> Result<(), StoreError> {
        let json = r#"{"instance_id":"a","orchestration_name":"o","orchestration_version":null,
            "status":"Running","output":null,"execution_id":2,"history_len":3,"created_at":1,
            "updated_at":4,"parent_instance":"p","parent_id":7,"lock_token":"t",
            "locked_until":9,"custom_status":"c","parent_execution_id":1,
            "next_visible_at":null,"finished_at":null,"component_digest":"d"}"#;
        let row = instance_from_json(json)?;
        assert_eq!(row.status, InstanceStatus::Running);
        assert_eq!(
            (row.execution_id, row.history_len, row.parent_id),
            (2, 3, Some(7))
        );
        let negative = json.replace("\"history_len\":3", "\"history_len\":-3");
        assert!(matches!(
            instance_from_json(&negative),
            Err(StoreError::Corrupt(_))
        ));
        Ok(())
    }
}
