//! The activity dispatcher: peek-locks activity work, runs each item in a
//! fresh sandbox or a native closure, and completes it atomically.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;
use tracing::Instrument;

use super::Chain;
use super::fast_path;
use super::idle::Idle;
use super::orchestrator::{self, Carried};
use super::outage::Outage;
use super::registry::{ActivityContext, ActivityHandler};
use super::slots::{Slots, panic_text};
use super::unserved::{self, Unserved};
use super::{HOLD_PATIENCE, Shared};
use crate::history::{ActivityWork, OrchestratorMessage};
use crate::limits::{TextKind, TextLimits};
use crate::metrics;
use crate::providers::{LockedActivity, OrchestrationWork, StoreError};
use crate::sandbox::SandboxLimits;
use crate::sandbox::instance::call_activity;
use crate::sandbox::{
    ActivityCall, ActivityInfo, CancelReason, CancelToken, ErrorCode, GuestFault,
};
use crate::tenant::{split_key, tenant_of_key};

/// Most items fetched in one go: a large batch takes a burst of activities
/// in one commit of the store rather than in several.
const FETCH_BATCH: usize = 512;

/// Where an activity call came from, and what it brings with it.
pub(crate) enum Origin {
    /// Fetched from the queue by the dispatcher.
    Fetched,
    /// Locked by its turn's commit and handed straight to the dispatcher.
    HandedOver,
    /// Handed over with its instance held: its next turn runs as soon as
    /// the activity ends, with the completion in hand. (Boxed: the rest
    /// are small.)
    Held(Box<OrchestrationWork>),
    /// Started by an inline step that ran out of time; it goes on here.
    Inline(Call),
}

impl Origin {
    /// A short name for logs.
    fn name(&self) -> &'static str {
        match self {
            Origin::Fetched => "fetched",
            Origin::HandedOver => "handed over",
            Origin::Held(_) => "held",
            Origin::Inline(_) => "inline",
        }
    }
}

/// Activity work to run, locked for this runtime, with the activity slot
/// it holds.
pub(crate) struct Handed {
    pub(crate) item: LockedActivity,
    pub(crate) slot: OwnedSemaphorePermit,
    pub(crate) origin: Origin,
}

/// An activity call that owns everything it needs, so it may go on in
/// another task than the one that started it.
pub(crate) type Call = Pin<Box<dyn Future<Output = Ended> + Send>>;

/// How an activity call ended.
#[derive(Debug, Clone)]
pub(crate) enum Ended {
    /// It returned: its output, or the failure handed to the orchestration.
    Returned(Result<String, String>),
    /// It was stopped because its result was no longer wanted.
    Cancelled(CancelReason),
}

/// The dispatcher loop: runs what turns hand over, and fetches the rest.
/// In-flight activities are awaited on shutdown for the grace period, then
/// abandoned and their locks released.
pub(crate) async fn run(shared: Arc<Shared>, mut handed_over: mpsc::UnboundedReceiver<Handed>) {
    let signal = shared.store.activity_signal();
    let mut shutdown = shared.shutdown.clone();
    let mut idle = Idle::new(shared.options.max_poll_interval, Duration::ZERO);
    let mut outage = Outage::new("fetching activity work");
    let mut running = Running {
        slots: Slots::sharing(shared.activity_slots.clone()),
        inflight: Arc::default(),
        shared,
    };
    let shared = running.shared.clone();
    while !*shutdown.borrow() {
        // Handed-over work holds its slot already: it goes first.
        while let Ok(handed) = handed_over.try_recv() {
            running.take(handed);
        }
        // Slots are taken before the fetch, so turns that hand work over
        // meanwhile cannot leave fetched work waiting for a slot that only
        // handed-over work, still in the channel, would free.
        let mut free = running.slots.reserve(FETCH_BATCH);
        if free.is_empty() {
            let handed = tokio::select! {
                handed = handed_over.recv() => handed,
                () = running.slots.wait_for_one(&mut shutdown) => None,
            };
            if let Some(handed) = handed {
                running.take(handed);
            }
            continue;
        }
        let fetched = shared
            .store
            .fetch_activity_work(free.len(), shared.options.activity_lock)
            .await;
        match fetched {
            Ok(items) if !items.is_empty() => {
                outage.ended();
                idle.reset();
                for (item, slot) in items.into_iter().zip(free.drain(..)) {
                    running.start(item, slot);
                }
                continue;
            }
            Ok(_) => outage.ended(),
            Err(e) => {
                // The reserved slots go back while the store is away.
                drop(free);
                let handed = tokio::select! {
                    handed = handed_over.recv() => handed,
                    () = outage.failed(&e, &signal, &mut shutdown) => None,
                };
                if let Some(handed) = handed {
                    running.take(handed);
                }
                continue;
            }
        }
        let handed = tokio::select! {
            handed = handed_over.recv() => handed,
            () = idle.wait(&*shared.store, &signal, &mut shutdown) => None,
        };
        if let Some(handed) = handed {
            idle.reset();
            running.take(handed);
        }
    }
    // The running calls hear that their results are no longer wanted, so
    // those that check can end within the grace period.
    shared.calls.cancel_all();
    // Work handed over from now on is released by the turn that locked it.
    handed_over.close();
    while let Ok(handed) = handed_over.try_recv() {
        release(&shared, Inflight::from(handed)).await;
    }
    let Running {
        mut slots,
        inflight,
        ..
    } = running;
    let grace = tokio::time::sleep(shared.options.shutdown_grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = slots.join_next() => if next.is_none() { return },
            _ = &mut grace => break,
        }
    }
    slots.abort_all();
    // Abandoned items go back to the queue at once rather than after their
    // lock, and so do the instances held for them.
    let abandoned: Vec<Inflight> = inflight
        .lock()
        .map(|mut map| map.drain().map(|(_, item)| item).collect())
        .unwrap_or_default();
    for abandoned in abandoned {
        release(&shared, abandoned).await;
    }
}

/// An activity in flight, and its instance if held for it.
struct Inflight {
    item: LockedActivity,
    held: Option<OrchestrationWork>,
}

impl From<Handed> for Inflight {
    fn from(handed: Handed) -> Self {
        let held = match handed.origin {
            Origin::Held(held) => Some(*held),
            _ => None,
        };
        Self {
            item: handed.item,
            held,
        }
    }
}

/// Releases the locks of work that will not run (or finish) here. The
/// hold may have ended already; releasing it again changes nothing.
async fn release(shared: &Shared, abandoned: Inflight) {
    let _ = shared.store.release_activity_work(&abandoned.item).await;
    if let Some(held) = abandoned.held {
        orchestrator::release(shared, &held).await;
    }
}

/// The activities the dispatcher runs.
struct Running {
    shared: Arc<Shared>,
    slots: Slots,
    /// Items being worked on, so those abandoned at shutdown can be released.
    inflight: Arc<Mutex<HashMap<i64, Inflight>>>,
}

impl Running {
    /// Runs fetched `item` in `slot`.
    fn start(&mut self, item: LockedActivity, slot: OwnedSemaphorePermit) {
        self.take(Handed {
            item,
            slot,
            origin: Origin::Fetched,
        });
    }

    /// Runs `handed` in the slot it holds, noted as in flight until it ends.
    fn take(&mut self, handed: Handed) {
        let Handed { item, slot, origin } = handed;
        let label = format!("activity '{}' of '{}'", item.work.name, item.work.instance);
        let span = activity_span(&item.work, item.attempts, origin.name());
        let (held, call) = match origin {
            Origin::Fetched | Origin::HandedOver => (None, None),
            Origin::Held(held) => (Some(*held), None),
            Origin::Inline(call) => (None, Some(call)),
        };
        if let Ok(mut map) = self.inflight.lock() {
            let inflight = Inflight {
                item: item.clone(),
                held: held.clone(),
            };
            map.insert(item.queue_id, inflight);
        }
        let (shared, inflight) = (self.shared.clone(), self.inflight.clone());
        let task = async move {
            let queue_id = item.queue_id;
            let max_attempts = shared.options.max_activity_attempts;
            if let Some(reason) = exhausted(&item, max_attempts) {
                finish(&shared, item, failed(reason), held).await;
            } else if let Some(call) =
                call.or_else(|| self::call(&shared, &item.work, item.attempts))
            {
                finish(&shared, item, call, held).await;
            } else {
                unserved(&shared, item, held).await;
            }
            if let Ok(mut map) = inflight.lock() {
                map.remove(&queue_id);
            }
        }
        .instrument(span);
        self.slots.spawn_in(slot, label, task);
    }
}

/// Why `item` fails without another attempt, if each of its more than
/// `max_attempts` attempts ended without a result: its worker crashed or
/// stopped, or lost the lock, mid-call. (An attempt that runs past its
/// budget fails at once, with a result that says so.)
fn exhausted(item: &LockedActivity, max_attempts: u32) -> Option<String> {
    (item.attempts > max_attempts).then(|| {
        format!(
            "activity '{}' was abandoned after {} attempts, each ended without a result (its worker crashed or stopped, or lost the lock); the limit is {max_attempts} (max_activity_attempts)",
            item.work.name,
            item.attempts - 1,
        )
    })
}

/// Handles work whose activity this runtime lacks: left for a runtime that
/// has it, or failed once nobody served it within the grace period (see
/// `unserved`). A held instance is released first.
async fn unserved(shared: &Shared, item: LockedActivity, held: Option<OrchestrationWork>) {
    if let Some(held) = held {
        orchestrator::release(shared, &held).await;
    }
    let missing = format!("activity '{}'", item.work.name);
    let now = shared.now_ms();
    shared.unserved.warn(&missing, &item.work.instance, now);
    let grace = shared.options.unserved_grace;
    match unserved::decide(&missing, item.visible_at_ms, now, grace) {
        Unserved::Defer { until_ms } => {
            if let Err(e) = shared.store.defer_activity_work(&item, until_ms).await {
                tracing::warn!("deferring activity work failed: {}", Chain(&e));
            }
        }
        Unserved::Fail { reason } => finish(shared, item, failed(reason), None).await,
    }
}

/// A call that ends at once, failing for `reason`.
fn failed(reason: String) -> std::future::Ready<Ended> {
    std::future::ready(Ended::Returned(Err(reason)))
}

/// Awaits `run`, the call of `item`, and completes it: by running the next
/// turn of its instance with the completion in hand while the instance is
/// `held`, else through the queue.
pub(crate) async fn finish(
    shared: &Shared,
    item: LockedActivity,
    run: impl Future<Output = Ended>,
    held: Option<OrchestrationWork>,
) {
    let held_since = Instant::now();
    let run = timed(renewing(shared, &item, run));
    let (result, held) = match held {
        Some(held) => hold_while(shared, run, held).await,
        None => (run.await, None),
    };
    let Some(result) = result else {
        // The lock was lost, and the call dropped: another attempt runs, or
        // will, elsewhere. Nothing is completed here.
        if let Some(held) = held {
            orchestrator::release(shared, &held).await;
        }
        return;
    };
    let result = match result {
        Ended::Returned(result) => result,
        Ended::Cancelled(reason) => return cancelled(shared, item, reason, held).await,
    };
    let completion = completion(shared, &item.work, result);
    if let Some(held) = held {
        let span = orchestrator::turn_span(&held);
        // Not waited for: the instance is locked meanwhile. With no turn
        // slot free, the completion takes the queue.
        if let Ok(slot) = shared.turn_slots.clone().try_acquire_owned() {
            let carried = Carried {
                item,
                completion,
                held_since,
            };
            let turn = orchestrator::process(shared, held, Some(carried));
            turn.instrument(span).await;
            drop(slot);
            return;
        }
        orchestrator::release(shared, &held).await;
    }
    match complete(shared, &item, completion).await {
        Ok(Some((work, slot))) => {
            // A root span, as the dispatcher's turns have: the turn is the
            // instance's, not part of the activity.
            let span = orchestrator::turn_span(&work);
            orchestrator::process(shared, work, None)
                .instrument(span)
                .await;
            drop(slot);
        }
        Ok(None) => {}
        Err(StoreError::LockLost(_)) => {
            tracing::warn!(
                "the activity's lock expired before it completed; another attempt will run"
            );
        }
        Err(e) => tracing::error!("completing the activity failed: {}", Chain(&e)),
    }
}

/// Records an attempt stopped because its result was no longer wanted.
/// Its orchestration stopped waiting for it: the work is completed with a
/// failure naming the cancellation, which the orchestration drops as it
/// drops any completion of a task it cancelled (or of an execution that
/// ended). The runtime is stopping: the work goes back to the queue for
/// another attempt, as at any stop.
async fn cancelled(
    shared: &Shared,
    item: LockedActivity,
    reason: CancelReason,
    held: Option<OrchestrationWork>,
) {
    let work = &item.work;
    if reason == CancelReason::Stopping {
        tracing::info!(
            instance = %work.instance,
            activity = %work.name,
            "the activity was stopped with the runtime; its work goes back to the queue"
        );
        return release(shared, Inflight { item, held }).await;
    }
    tracing::info!(
        instance = %work.instance,
        activity = %work.name,
        "the activity was cancelled: its result is no longer wanted"
    );
    if let Some(held) = held {
        orchestrator::release(shared, &held).await;
    }
    let completion = OrchestratorMessage::ActivityFailed {
        execution_id: work.execution_id,
        id: work.id,
        error: GuestFault::Cancelled.to_string(),
    };
    match shared.store.complete_activity(&item, completion).await {
        Ok(()) | Err(StoreError::LockLost(_)) => {}
        Err(e) => tracing::warn!("recording the cancelled activity failed: {}", Chain(&e)),
    }
}

/// The message that reports `result`, the outcome of `work`, to its
/// orchestration. An output over the payload limit, or an error over the
/// error limit, fails the activity with a reason that names the limit.
pub(crate) fn completion(
    shared: &Shared,
    work: &ActivityWork,
    result: Result<String, String>,
) -> OrchestratorMessage {
    let limits = shared.options.limits.text_limits();
    let (execution_id, id) = (work.execution_id, work.id);
    let checked = match &result {
        Ok(output) => limits.check(TextKind::Payload, "activity output", output),
        Err(error) => limits.check(TextKind::Error, "activity error", error),
    };
    match (result, checked) {
        (_, Err(too_large)) => OrchestratorMessage::ActivityFailed {
            execution_id,
            id,
            error: format!("[{}] {too_large}", ErrorCode::TooLarge),
        },
        (Ok(output), Ok(())) => OrchestratorMessage::ActivityCompleted {
            execution_id,
            id,
            output,
        },
        (Err(error), Ok(())) => OrchestratorMessage::ActivityFailed {
            execution_id,
            id,
            error,
        },
    }
}

/// The span of one activity attempt; its outcome and duration are recorded
/// as the call ends (see [`timed`]).
pub(crate) fn activity_span(work: &ActivityWork, attempt: u32, origin: &str) -> tracing::Span {
    tracing::info_span!(
        "activity",
        instance = %work.instance,
        execution = work.execution_id,
        name = %work.name,
        attempt,
        origin,
        outcome = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    )
}

/// Awaits the activity call `run`, recording its duration in the metrics
/// and, with its outcome, in the current (activity) span.
pub(crate) async fn timed<T: Outcome>(run: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = run.await;
    let elapsed = started.elapsed();
    let m = metrics::global();
    m.activity_seconds.observe(metrics::seconds(elapsed));
    let outcome = metrics::ActivityOutcome {
        outcome: result.outcome(),
    };
    m.activity_attempts.get_or_create(&outcome).inc();
    let span = tracing::Span::current();
    span.record("outcome", outcome.outcome);
    span.record("duration_ms", elapsed.as_millis() as u64);
    result
}

/// How an activity call ended, for its span and metrics.
pub(crate) trait Outcome {
    /// `ok`, `error`, `cancelled` (its result was no longer wanted),
    /// `stopped` (the runtime stopped) or `abandoned` (its lock was lost).
    fn outcome(&self) -> &'static str;
}

impl Outcome for Ended {
    fn outcome(&self) -> &'static str {
        match self {
            Ended::Returned(Ok(_)) => "ok",
            Ended::Returned(Err(_)) => "error",
            Ended::Cancelled(CancelReason::NotWanted) => "cancelled",
            Ended::Cancelled(_) => "stopped",
        }
    }
}

impl Outcome for Option<Ended> {
    fn outcome(&self) -> &'static str {
        self.as_ref().map_or("abandoned", Outcome::outcome)
    }
}

/// Awaits `run`, the call of `item`, renewing the item's lock every third
/// of its length meanwhile, so a call that runs longer than one lock (up to
/// its budget) keeps its work. `None` if the lock was lost (the store was
/// out of reach for a whole lock, say): the call is dropped, which stops its
/// sandbox, since another attempt may be running the work by now.
async fn renewing<T>(
    shared: &Shared,
    item: &LockedActivity,
    run: impl Future<Output = T>,
) -> Option<T> {
    let lock_for = shared.options.activity_lock;
    let every = (lock_for / 3).max(RENEW_AT_MOST_EVERY);
    tokio::pin!(run);
    loop {
        tokio::select! {
            result = &mut run => return Some(result),
            () = tokio::time::sleep(every) => {
                match shared.store.renew_activity_lock(item, lock_for).await {
                    Ok(()) => {}
                    Err(StoreError::LockLost(e)) => {
                        tracing::warn!("the activity lost its lock and is stopped: {e}");
                        return None;
                    }
                    Err(e) => tracing::warn!("renewing the activity's lock failed: {}", Chain(&e)),
                }
            }
        }
    }
}

/// The shortest wait between two renewals of an activity's lock.
const RENEW_AT_MOST_EVERY: Duration = Duration::from_millis(10);

/// Runs an activity while its instance is `held`, for up to
/// [`HOLD_PATIENCE`]; returns its result and the instance if still held.
/// Past that, or if the runtime is stopping when it ends, the instance is
/// released: messages that came for it meanwhile are fetched, and the
/// completion takes the queue.
async fn hold_while<T>(
    shared: &Shared,
    run: impl Future<Output = T>,
    held: OrchestrationWork,
) -> (T, Option<OrchestrationWork>) {
    tokio::pin!(run);
    let result = match tokio::time::timeout(HOLD_PATIENCE, &mut run).await {
        Ok(result) if !*shared.shutdown.borrow() => return (result, Some(held)),
        Ok(result) => {
            orchestrator::release(shared, &held).await;
            result
        }
        Err(_) => {
            orchestrator::release(shared, &held).await;
            run.await
        }
    };
    (result, None)
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
    // Checked before a slot is taken, so under load a completion costs no
    // semaphore round trip.
    let slot = fast_path::short_cuts(&shared.load())
        .then(|| shared.turn_slots.clone().try_acquire_owned().ok())
        .flatten();
    let Some(slot) = slot else {
        let completed = shared.store.complete_activity(item, completion).await;
        return completed.map(|()| None);
    };
    let lock_for = shared.options.orchestration_lock;
    let work = shared
        .store
        .complete_activity_and_lock(item, completion, lock_for)
        .await?;
    Ok(work.map(|work| (work, slot)))
}

/// The call of activity `work`: its Wasm component's export or a native
/// closure, or `None` if this runtime lacks the activity. Nothing runs until
/// it is polled. A call that runs past the activity budget ends with a
/// failure that says so; a Wasm guest is interrupted by its epoch deadline
/// then, and anything else (a native closure, a guest blocked in a host
/// call) when the call is dropped.
pub(crate) fn call(shared: &Shared, work: &ActivityWork, attempt: u32) -> Option<Call> {
    let handler = match shared.registry.read() {
        Ok(registry) => registry.activity(tenant_of_key(&work.instance), &work.name)?,
        Err(_) => {
            return Some(Box::pin(failed("registry lock poisoned".into())));
        }
    };
    let store_text = shared.options.limits.text_limits();
    let limits = match &handler {
        ActivityHandler::Wasm(component) => component.limits(&store_text),
        ActivityHandler::Native(_) => shared.options.limits.clone(),
    };
    // The guest sees the id its tenant's clients use, not the store key.
    let (tenant, instance_id) = split_key(&work.instance);
    let tenant = tenant.to_owned();
    let token = CancelToken::default();
    let call = ActivityCall {
        info: ActivityInfo {
            instance_id: instance_id.to_owned(),
            execution_id: work.execution_id,
            name: work.name.clone(),
            attempt,
        },
        cancelled: token.clone(),
    };
    let registered = (shared.calls).register(
        &work.instance,
        work.execution_id,
        work.id,
        call.cancelled.clone(),
    );
    let input = work.input.clone();
    Some(Box::pin(async move {
        // Registered while the call runs, dropped or not.
        let _registered = registered;
        // Over its component's limit of activities at once, the call waits
        // for one of them to end; its budget starts once it runs.
        let budgets = match &handler {
            ActivityHandler::Wasm(component) => Some(component.budgets.clone()),
            ActivityHandler::Native(_) => None,
        };
        // A call no longer wanted stops waiting; with no slot to come (the
        // runtime is stopping) its work goes back to the queue.
        let _slot = match &budgets {
            Some(budgets) => tokio::select! {
                biased;
                reason = token.cancelled() => return Ended::Cancelled(reason),
                slot = budgets.activity() => match slot {
                    Some(slot) => Some(slot),
                    None => return Ended::Cancelled(CancelReason::Stopping),
                },
            },
            None => None,
        };
        let budget = limits.activity_budget;
        let run = tokio::time::timeout(budget, run_activity(handler, call, tenant, input, &limits));
        // A cancel drops the call: a guest blocked in a host call (a sleep,
        // an HTTP request) or a native closure stops at once. A Wasm guest
        // that is running stops at its next epoch tick (see `sandbox`) with
        // a failure, which is the cancel's too; an output that made it is
        // kept (at a stop, it is still wanted).
        tokio::select! {
            biased;
            reason = token.cancelled() => Ended::Cancelled(reason),
            result = run => match (result, token.reason()) {
                (Ok(Err(_)), Some(reason)) => Ended::Cancelled(reason),
                (Ok(result), _) => Ended::Returned(sized(result, &limits.text_limits())),
                (Err(_), _) => Ended::Returned(Err(format!(
                    "[{}] the activity ran longer than its budget of {} ms (activity_budget)",
                    ErrorCode::BudgetExceeded,
                    budget.as_millis()
                ))),
            },
        }
    }))
}

/// `result` if its output or error is within `limits` (the component's,
/// which may be stricter than the store's that [`completion`] holds every
/// result to), else a failure naming the limit.
fn sized(result: Result<String, String>, limits: &TextLimits) -> Result<String, String> {
    let checked = match &result {
        Ok(output) => limits.check(TextKind::Payload, "activity output", output),
        Err(error) => limits.check(TextKind::Error, "activity error", error),
    };
    match checked {
        Ok(()) => result,
        Err(too_large) => Err(format!("[{}] {too_large}", ErrorCode::TooLarge)),
    }
}

async fn run_activity(
    handler: ActivityHandler,
    call: ActivityCall,
    tenant: String,
    input: String,
    limits: &SandboxLimits,
) -> Result<String, String> {
    match handler {
        ActivityHandler::Wasm(component) => {
            let budget = Some(component.budgets.memory.clone());
            let grants = &component.policy.grants;
            let warm = &component.budgets.warm;
            call_activity(
                &component.loaded,
                warm,
                &tenant,
                call,
                &input,
                limits,
                budget,
                grants,
            )
            .await
        }
        ActivityHandler::Native(f) => {
            // A panic in host code fails this attempt, not the runtime; a
            // call dropped at its budget stops the closure too.
            let task = tokio::spawn(f(ActivityContext { call, tenant }, input));
            let abort = task.abort_handle();
            let _stop = AbortOnDrop(abort);
            match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => Err(format!("the activity panicked: {}", panic_text(e))),
                Err(e) => Err(format!("the activity was cancelled: {e}")),
            }
        }
    }
}

/// Aborts a spawned native activity when its call is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(attempts: u32) -> LockedActivity {
        LockedActivity {
            queue_id: 1,
            lock_token: "t".into(),
            attempts,
            visible_at_ms: 0,
            work: ActivityWork {
                instance: "i".into(),
                execution_id: 1,
                id: 2,
                name: "Spin".into(),
                input: String::new(),
            },
        }
    }

    #[test]
    fn a_result_over_the_components_limit_fails_naming_it() {
        let limits = TextLimits {
            max_payload_bytes: 4,
            max_error_bytes: 3,
            ..TextLimits::default()
        };
        assert_eq!(sized(Ok("four".into()), &limits), Ok("four".into()));
        let output = sized(Ok("fives".into()), &limits).unwrap_err();
        assert!(
            output.starts_with("[DX004] activity output is 5 bytes"),
            "{output}"
        );
        assert!(output.contains("(max_payload_bytes)"), "{output}");
        let error = sized(Err("four".into()), &limits).unwrap_err();
        assert!(
            error.starts_with("[DX004] activity error is 4 bytes"),
            "{error}"
        );
    }

    #[test]
    fn attempts_up_to_the_limit_run() {
        assert_eq!(exhausted(&item(1), 3), None);
        assert_eq!(exhausted(&item(3), 3), None);
    }

    #[test]
    fn an_attempt_past_the_limit_fails_naming_the_activity_and_the_limit() {
        let reason = exhausted(&item(4), 3).expect("past the limit");
        assert!(reason.contains("activity 'Spin'"), "{reason}");
        assert!(reason.contains("after 3 attempts"), "{reason}");
        assert!(reason.contains("max_activity_attempts"), "{reason}");
    }
}
