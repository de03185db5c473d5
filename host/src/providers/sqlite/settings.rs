//! Settings every client and runtime of the store shares: the text limits.

use rusqlite::{Connection, OptionalExtension};

use super::SqliteHistoryStore;
use super::codec::db;
use super::ops::{Op, Signals};
use super::reads::ReadPool;
use crate::limits::TextLimits;
use crate::providers::StoreError;

/// The settings row holding the text limits.
const TEXT_LIMITS: &str = "text_limits";

/// The stored text limits, if any.
pub(super) async fn text_limits(pool: &ReadPool) -> Result<Option<TextLimits>, StoreError> {
    let value = pool
        .run(|conn| {
            conn.prepare_cached("SELECT value FROM settings WHERE name = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row([TEXT_LIMITS], |row| row.get::<_, String>(0))
                        .optional()
                })
                .map_err(db("reading the text limits"))
        })
        .await?;
    value
        .map(|text| {
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("stored text limits: {e}")))
        })
        .transpose()
}

/// Stores `limits`, replacing those stored.
pub(super) async fn set_text_limits(
    store: &SqliteHistoryStore,
    limits: TextLimits,
) -> Result<(), StoreError> {
    let value = serde_json::to_string(&limits)
        .map_err(|e| StoreError::database(format!("encoding the text limits: {e}")))?;
    store
        .write(|reply| Op::SetSetting {
            name: TEXT_LIMITS,
            value,
            reply,
        })
        .await
}

/// Op body of [`set_text_limits`], inside the writer's batch transaction.
pub(super) fn set_setting_in(
    conn: &Connection,
    name: &str,
    value: &str,
) -> Result<Signals, StoreError> {
    conn.prepare_cached(
        "INSERT INTO settings (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut stmt| stmt.execute((name, value)))
    .map_err(db("storing a setting"))?;
    Ok(Signals::NONE)
}
