//! Conversions between the store's Rust types and SQLite columns.
//!
//! SQLite integers are signed 64-bit while the contract speaks `u64`; every
//! crossing is checked so a bad value becomes an error, never a panic or a
//! silent wrap.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Row;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::providers::{DatabaseError, InstanceRecord, InstanceStatus, StoreError};

/// An instance's row by id (`?1`), with the columns [`instance_from_row`]
/// reads, in its order.
pub(super) const READ_INSTANCE: &str = "SELECT instance_id, orchestration_name,
     orchestration_version, status, output, execution_id, history_len, created_at,
     updated_at, parent_instance, parent_id, parent_execution_id, custom_status, finished_at,
     component_digest FROM instances WHERE instance_id = ?1";

/// `e`, an SQLite error, as the store's error while doing `context`,
/// retryable when SQLite was busy or the disk failed.
pub(super) fn sqlite_error(context: impl Into<String>, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let retryable = matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::OutOfMemory
        )
    );
    StoreError::Database(DatabaseError::caused_by(context, e, retryable))
}

/// Wraps an SQLite error with what the store was doing when it failed.
pub(super) fn db(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| sqlite_error(context, e)
}

/// Whether an SQLite error is a primary-key or unique-constraint violation.
pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// A contract value (id, length, timestamp) as an SQLite integer.
pub(super) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::database(format!("{what} {value} does not fit in SQLite")))
}

/// A stored integer as a contract value; a negative one means the row is corrupt.
pub(super) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {value}")))
}

/// The current time as stored.
pub(super) fn now_i64(clock: &dyn Clock) -> Result<i64, StoreError> {
    to_i64(clock.now_ms(), "current time")
}

/// The stored time `span` after `at` (a lock's deadline, a lookahead's end).
/// Saturates: an absurdly long lock simply never expires.
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

/// A queue row (orchestrator or activity queue) as read, not yet decoded, so
/// decoding happens after the commit and off the writer.
pub(super) struct QueueRow {
    /// Row id.
    pub(super) id: i64,
    /// The serialized message or work item.
    pub(super) text: String,
    /// Times the row has been fetched, this fetch included.
    pub(super) attempts: i64,
    /// When the row became visible.
    pub(super) visible_at: i64,
}

impl QueueRow {
    /// Reads the columns `id, message, attempts, visible_at`, in that order.
    pub(super) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            text: row.get(1)?,
            attempts: row.get(2)?,
            visible_at: row.get(3)?,
        })
    }
}

/// A stored attempt counter.
pub(super) fn attempts(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("attempts out of range: {value}")))
}

/// Reads a row selected by [`READ_INSTANCE`], in its column order.
pub(super) fn instance_from_row(row: &Row<'_>) -> Result<InstanceRecord, StoreError> {
    let col = |e: rusqlite::Error| StoreError::Corrupt(format!("instance row: {e}"));
    let status: String = row.get(3).map_err(col)?;
    let parent_id: Option<i64> = row.get(10).map_err(col)?;
    let parent_execution_id: Option<i64> = row.get(11).map_err(col)?;
    let finished_at: Option<i64> = row.get(13).map_err(col)?;
    Ok(InstanceRecord {
        instance_id: row.get(0).map_err(col)?,
        orchestration_name: row.get(1).map_err(col)?,
        orchestration_version: row.get(2).map_err(col)?,
        status: InstanceStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown instance status '{status}'")))?,
        output: row.get(4).map_err(col)?,
        execution_id: to_u64(row.get(5).map_err(col)?, "execution_id")?,
        history_len: to_u64(row.get(6).map_err(col)?, "history_len")?,
        created_at_ms: to_u64(row.get(7).map_err(col)?, "created_at")?,
        updated_at_ms: to_u64(row.get(8).map_err(col)?, "updated_at")?,
        parent_instance: row.get(9).map_err(col)?,
        parent_id: parent_id.map(|p| to_u64(p, "parent_id")).transpose()?,
        parent_execution_id: parent_execution_id
            .map(|p| to_u64(p, "parent_execution_id"))
            .transpose()?,
        custom_status: row.get(12).map_err(col)?,
        finished_at_ms: finished_at.map(|t| to_u64(t, "finished_at")).transpose()?,
        component_digest: row.get(14).map_err(col)?,
    })
}

/// A lock token unique across processes: a random per-process prefix (from the
/// OS-seeded keys of std's `RandomState`) and a per-process counter.
pub(super) fn new_lock_token() -> String {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(std::time::Instant::now().elapsed().as_nanos());
        hasher.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:016x}-{n:x}")
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn a_busy_database_is_retryable_and_keeps_its_cause() {
        let error = sqlite_error("committing a batch", failure(rusqlite::ffi::SQLITE_BUSY));
        assert!(error.is_retryable());
        assert_eq!(error.to_string(), "database error: committing a batch");
        let cause = error.source().map(ToString::to_string).unwrap_or_default();
        assert!(
            cause.contains("locked") || cause.contains("busy"),
            "{cause}"
        );
    }

    #[test]
    fn a_constraint_failure_is_not_retryable() {
        let error = sqlite_error("inserting", failure(rusqlite::ffi::SQLITE_CONSTRAINT));
        assert!(!error.is_retryable());
        assert!(!StoreError::LockLost("x".into()).is_retryable());
        assert!(!StoreError::database("the store is closed").is_retryable());
    }
}
