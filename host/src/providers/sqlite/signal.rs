//! Signal-with-start: queue an event for an instance, creating it first if
//! its id is free, in one write.

use rusqlite::{Connection, OptionalExtension};

use super::SqliteHistoryStore;
use super::codec::{db, encode};
use super::ops::{Op, Signals};
use super::orchestrator_queue::{enqueue_message_in, insert_instance};
use crate::history::OrchestratorMessage;
use crate::providers::{InstanceStatus, NewInstance, SignalOutcome, StoreError};

/// Creates the instance `new` names if its id is free, then queues `event`
/// for it.
pub(super) async fn signal_with_start(
    store: &SqliteHistoryStore,
    new: NewInstance,
    event: &OrchestratorMessage,
) -> Result<SignalOutcome, StoreError> {
    // Encoded by the caller, keeping the shared writer's critical section short.
    let event = encode(event, "orchestrator message")?;
    store
        .write(|reply| Op::SignalWithStart { new, event, reply })
        .await
}

/// Op body of [`signal_with_start`], inside the writer's batch transaction.
/// Refuses a finished instance before writing anything.
pub(super) fn signal_with_start_in(
    conn: &Connection,
    new: &NewInstance,
    event: &str,
    now: i64,
) -> Result<(Signals, SignalOutcome), StoreError> {
    let outcome = if insert_instance(conn, new, now)? {
        SignalOutcome::Started
    } else {
        let status: Option<String> = conn
            .prepare_cached("SELECT status FROM instances WHERE instance_id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([&new.instance_id], |row| row.get(0))
                    .optional()
            })
            .map_err(db("reading an instance's status"))?;
        let status = status.as_deref().and_then(InstanceStatus::parse);
        if let Some(status) = status.filter(|s| s.is_terminal()) {
            return Err(StoreError::InstanceFinished {
                instance: new.instance_id.clone(),
                status,
            });
        }
        SignalOutcome::Signalled
    };
    // Queued after the start message, and for a delayed start visible no
    // earlier than it.
    let signals = enqueue_message_in(conn, &new.instance_id, event, now)?;
    Ok((signals, outcome))
}
