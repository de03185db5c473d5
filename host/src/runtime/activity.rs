//! The activity dispatcher: peek-locks activity work, runs each item in a
//! fresh sandbox or a native closure, and completes it atomically.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::Shared;
use super::idle::Idle;
use super::orchestrator;
use super::registry::ActivityHandler;
use super::slots::Slots;
use crate::history::{ActivityWork, OrchestratorMessage};
use crate::providers::{LockedActivity, OrchestrationWork, StoreError};
use crate::sandbox::instance::call_activity;

/// Most items fetched in one go.
const FETCH_BATCH: usize = 128;

/// The dispatcher loop. In-flight activities are awaited on shutdown for the
/// grace period, then abandoned and their locks released.
pub(crate) async fn run(shared: Arc<Shared>) {
    let signal = shared.store.activity_signal();
    let mut shutdown = shared.shutdown.clone();
    let mut idle = Idle::new(shared.options.max_poll_interval, Duration::ZERO);
    let mut slots = Slots::new(shared.options.activity_concurrency);
    // Items being worked on, so those abandoned at shutdown can be released.
    let inflight: Arc<Mutex<HashMap<i64, LockedActivity>>> = Arc::default();
    while !*shutdown.borrow() {
        let free = slots.free(FETCH_BATCH);
        if free == 0 {
            slots.wait_for_one(&mut shutdown).await;
            continue;
        }
        match shared
            .store
            .fetch_activity_work(free, shared.options.activity_lock)
            .await
        {
            Ok(items) if !items.is_empty() => {
                idle.reset();
                for item in items {
                    if let Ok(mut map) = inflight.lock() {
                        map.insert(item.queue_id, item.clone());
                    }
                    let shared = shared.clone();
                    let inflight = inflight.clone();
                    let span = tracing::info_span!("activity", instance = %item.work.instance, name = %item.work.name, attempt = item.attempts);
                    let task = async move {
                        let queue_id = item.queue_id;
                        execute(&shared, item).await;
                        if let Ok(mut map) = inflight.lock() {
                            map.remove(&queue_id);
                        }
                    };
                    if !slots.spawn(task.instrument(span)).await {
                        break;
                    }
                }
            }
            Ok(_) => idle.wait(&*shared.store, &signal, &mut shutdown).await,
            Err(e) => {
                tracing::error!("fetching activity work failed: {e}");
                idle.wait(&*shared.store, &signal, &mut shutdown).await;
            }
        }
    }
    let grace = tokio::time::sleep(shared.options.shutdown_grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = slots.join_next() => if next.is_none() { return },
            _ = &mut grace => break,
        }
    }
    slots.abort_all();
    // Abandoned items go back to the queue at once rather than after their lock.
    let abandoned: Vec<LockedActivity> = inflight
        .lock()
        .map(|mut map| map.drain().map(|(_, item)| item).collect())
        .unwrap_or_default();
    for item in abandoned {
        let _ = shared.store.release_activity_work(&item).await;
    }
}

async fn execute(shared: &Shared, item: LockedActivity) {
    let result = run_activity(shared, &item.work).await;
    let work = &item.work;
    let completion = match result {
        Ok(output) if output.len() > shared.options.limits.max_payload_bytes => {
            OrchestratorMessage::ActivityFailed {
                execution_id: work.execution_id,
                id: work.id,
                error: format!(
                    "activity output is {} bytes, more than the limit of {} bytes",
                    output.len(),
                    shared.options.limits.max_payload_bytes
                ),
            }
        }
        Ok(output) => OrchestratorMessage::ActivityCompleted {
            execution_id: work.execution_id,
            id: work.id,
            output,
        },
        Err(error) => OrchestratorMessage::ActivityFailed {
            execution_id: work.execution_id,
            id: work.id,
            error,
        },
    };
    match complete(shared, &item, completion).await {
        Ok(Some((work, slot))) => {
            let span = tracing::info_span!("turn", instance = %work.instance.instance_id);
            orchestrator::process(shared, work).instrument(span).await;
            drop(slot);
        }
        Ok(None) => {}
        Err(StoreError::LockLost(_)) => {
            tracing::warn!(
                "the activity's lock expired before it completed; another attempt will run"
            );
        }
        Err(e) => tracing::error!("completing the activity failed: {e}"),
    }
}

/// Completes the item. With a turn slot free, the same commit locks the
/// instance if nobody holds it, and the instance's next turn runs here at
/// once, in that slot: no dispatcher wakes, and no fetch waits for the next
/// batch of the store.
async fn complete(
    shared: &Shared,
    item: &LockedActivity,
    completion: OrchestratorMessage,
) -> Result<Option<(OrchestrationWork, OwnedSemaphorePermit)>, StoreError> {
    let slot = match shared.turn_slots.clone().try_acquire_owned() {
        Ok(slot) if !*shared.shutdown.borrow() => slot,
        _ => {
            return shared
                .store
                .complete_activity(item, completion)
                .await
                .map(|()| None);
        }
    };
    let lock_for = shared.options.orchestration_lock;
    let work = shared
        .store
        .complete_activity_and_lock(item, completion, lock_for)
        .await?;
    Ok(work.map(|work| (work, slot)))
}

async fn run_activity(shared: &Shared, work: &ActivityWork) -> Result<String, String> {
    let handler = shared
        .registry
        .read()
        .map_err(|_| "registry lock poisoned".to_string())?
        .activity(&work.name);
    match handler {
        Some(ActivityHandler::Wasm(component)) => {
            call_activity(&component, &work.name, &work.input, &shared.options.limits).await
        }
        Some(ActivityHandler::Native(f)) => {
            // A panic in host code fails this attempt, not the runtime.
            match tokio::spawn(f(work.input.clone())).await {
                Ok(result) => result,
                Err(e) if e.is_panic() => Err(format!("the activity panicked: {}", panic_text(e))),
                Err(e) => Err(format!("the activity was cancelled: {e}")),
            }
        }
        None => Err(format!(
            "no activity named '{}' is registered in this runtime",
            work.name
        )),
    }
}

fn panic_text(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
