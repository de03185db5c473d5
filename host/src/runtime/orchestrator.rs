//! The orchestrator dispatcher: locks an instance with its messages, runs one
//! turn of its execution (from the cache, or replayed from history), and
//! commits the turn atomically.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::Instrument;

use super::Chain;
use super::activity::{Handed, Origin};
use super::component::Component;
use super::deployments::{self, Pin};
use super::execution::{
    Execution, ExecutionLost, ExecutionSpec, SpentSandbox, TurnInput, TurnReport,
};
use super::fast_path::{Step, TurnEnd, next_step};
use super::history_limit;
use super::idle::Idle;
use super::inline::{Inline, run_inline};
use super::outage::Outage;
use super::plan::{Plan, StartSpec, plan, running_children};
use super::registry::{Lookup, RegistryError};
use super::replay::{Replay, TurnOutput};
use super::slots::{Slots, take_permits};
use super::unserved::{self, Unserved};
use super::{HOLD_PATIENCE, Shared};
use crate::history::{Event, OrchestratorMessage};
use crate::metrics;
use crate::providers::{
    InstanceRecord, InstanceStatus, LockedActivity, LockedTurn, OrchestrationWork, OutgoingMessage,
    StoreError, TurnCommit,
};
use crate::tenant::{child_key, split_key, tenant_of_key};

/// Most instances locked by one fetch.
const FETCH_BATCH: usize = 1024;

/// How far ahead of its time work is locked: a burst of timers due at once
/// is fetched before it is due, so its turns start on time.
const LOOKAHEAD: Duration = Duration::from_millis(100);

/// The orchestrator dispatcher: fetches instances in batches, as many as
/// there are free turn slots, and runs each turn as its own task. Turns in
/// progress at shutdown finish and commit.
pub(crate) async fn run(shared: Arc<Shared>) {
    let signal = shared.store.orchestrator_signal();
    let mut shutdown = shared.shutdown.clone();
    let mut idle = Idle::new(shared.options.max_poll_interval, LOOKAHEAD);
    let mut outage = Outage::new("fetching orchestration work");
    let mut slots = Slots::sharing(shared.turn_slots.clone());
    while !*shutdown.borrow() {
        let free = slots
            .free(FETCH_BATCH)
            .min(shared.turn_window.room(slots.running()));
        if free == 0 {
            slots.wait_for_one(&mut shutdown).await;
            continue;
        }
        match shared
            .store
            .fetch_orchestration_batch(free, shared.options.orchestration_lock, LOOKAHEAD)
            .await
        {
            Ok(works) if !works.is_empty() => {
                outage.ended();
                idle.reset();
                for work in works {
                    let shared = shared.clone();
                    let span = turn_span(&work);
                    let label = format!("turn of '{}'", work.instance.instance_id);
                    let turn = async move { process(&shared, work, None).await };
                    if !slots.spawn(label, turn.instrument(span)).await {
                        break;
                    }
                }
            }
            Ok(_) => {
                outage.ended();
                idle.wait(&*shared.store, &signal, &mut shutdown).await;
            }
            Err(e) => outage.failed(&e, &signal, &mut shutdown).await,
        }
    }
    while slots.join_next().await.is_some() {}
}

/// A turn's results and where they go.
pub(crate) struct Turn {
    pub(crate) output: TurnOutput,
    /// Execution the new events belong to.
    execution_id: u64,
    /// History length of that execution before the turn.
    history_len_before: u64,
    /// Version to record, for a new execution.
    version: Option<String>,
    /// Digest of the component a new execution runs on, to record.
    digest: Option<String>,
    /// The parked execution, to cache after the commit.
    pub(crate) execution: Option<Execution>,
    /// The sandbox of an execution that ended, to free after the commit.
    spent: Option<SpentSandbox>,
    /// Most history events the execution may hold (its component's policy).
    max_history_events: u64,
}

impl Turn {
    fn of(instance: &InstanceRecord, output: TurnOutput) -> Self {
        Turn {
            output,
            execution_id: instance.execution_id,
            history_len_before: instance.history_len,
            version: None,
            digest: None,
            execution: None,
            spent: None,
            max_history_events: u64::MAX,
        }
    }

    /// What the turn left, for the choice of fast path (see `fast_path`):
    /// `time_left` for inline steps, and whether an `inline_call` runs on.
    pub(crate) fn end(&self, shared: &Shared, time_left: bool, inline_call: bool) -> TurnEnd {
        let output = &self.output;
        TurnEnd {
            activities: output.activities.len(),
            only_activities: !output.timer_pending
                && output.messages.is_empty()
                && output.new_instances.is_empty()
                && output.continue_as_new.is_none()
                && output.status.is_none(),
            parks: self.execution.is_some() && shared.options.execution_cache,
            running: output.status.is_none(),
            inline_call,
            time_left,
        }
    }

    /// Appends `next`, the output of the turn after this one, run before
    /// this one committed; what is left of the execution is `settled`.
    pub(crate) fn absorb(&mut self, next: TurnOutput, settled: Settled) {
        let output = &mut self.output;
        output.new_events.extend(next.new_events);
        output.activities = next.activities;
        output.messages.extend(next.messages);
        output.new_instances.extend(next.new_instances);
        output.continue_as_new = next.continue_as_new;
        output.status = next.status;
        if next.custom_status.is_some() {
            output.custom_status = next.custom_status;
        }
        output.timer_pending = next.timer_pending;
        self.execution = settled.execution;
        self.spent = settled.spent;
    }
}

/// An activity's completion carried in memory to the next turn of the
/// instance its runtime held while it ran (see
/// [`HistoryStore::commit_turn_and_lock_activities`]): it never enters the
/// queue, and the turn's commit deletes the activity's work item.
///
/// [`HistoryStore::commit_turn_and_lock_activities`]: crate::providers::HistoryStore::commit_turn_and_lock_activities
pub(crate) struct Carried {
    pub(crate) item: LockedActivity,
    pub(crate) completion: OrchestratorMessage,
    /// When the hold began: inline steps of the turn end where it would.
    pub(crate) held_since: Instant,
}

/// Runs one turn of a locked instance, with the completion `carried` to
/// it if it was held, and commits it (or releases the lock).
/// The span of one turn: a root span (a turn belongs to its instance, not
/// to whatever ran it), whose outcome and duration are recorded as the turn
/// ends, so a subscriber shows each instance's turns together.
pub(crate) fn turn_span(work: &OrchestrationWork) -> tracing::Span {
    let instance = &work.instance;
    tracing::info_span!(
        parent: None,
        "turn",
        instance = %instance.instance_id,
        execution = instance.execution_id,
        name = %instance.orchestration_name,
        outcome = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    )
}

pub(crate) async fn process(shared: &Shared, work: OrchestrationWork, carried: Option<Carried>) {
    let started = Instant::now();
    let outcome = run_turn(shared, work, carried).await;
    let elapsed = started.elapsed();
    metrics::global()
        .turn_seconds
        .observe(metrics::seconds(elapsed));
    let span = tracing::Span::current();
    span.record("outcome", outcome);
    span.record("duration_ms", elapsed.as_millis() as u64);
}

/// Runs one turn (see [`process`]); returns how it ended, for its span.
async fn run_turn(
    shared: &Shared,
    work: OrchestrationWork,
    carried: Option<Carried>,
) -> &'static str {
    // Work locked ahead of time waits for its messages to be due.
    while work.ready_at_ms > shared.now_ms() {
        let early = work.ready_at_ms.saturating_sub(shared.now_ms());
        tokio::time::sleep(Duration::from_millis(early)).await;
    }
    let instance = &work.instance;
    let now = shared.now_ms();
    let mut turn = match plan(shared, &work) {
        Plan::Discard => Turn::of(instance, TurnOutput::default()),
        Plan::End {
            status,
            reason,
            event,
        } => {
            shared.cache.take(&instance.instance_id);
            let mut output = TurnOutput {
                new_events: event.into_iter().collect(),
                status: Some((status, reason.clone())),
                ..TurnOutput::default()
            };
            if status == InstanceStatus::Cancelled {
                match cancel_children(shared, instance, &reason).await {
                    Ok(messages) => output.messages = messages,
                    Err(e) => {
                        tracing::error!("reading history to cancel children failed: {}", Chain(&e));
                        give_back(shared, &work, carried).await;
                        return "retried";
                    }
                }
            }
            Turn::of(instance, output)
        }
        Plan::Start(spec) => match start(shared, &work, now, spec).await {
            Ok(turn) => turn,
            Err(skipped) => return skip(shared, &work, carried, skipped).await,
        },
        Plan::Resume => {
            let queued = work.messages.iter().map(|m| m.message.clone());
            let messages = queued
                .chain(carried.as_ref().map(|c| c.completion.clone()))
                .collect();
            match resume(shared, &work, now, messages).await {
                Ok(turn) => turn,
                Err(skipped) => return skip(shared, &work, carried, skipped).await,
            }
        }
    };
    let since = carried.as_ref().map_or_else(Instant::now, |c| c.held_since);
    let inline = run_inline(shared, &mut turn, since + HOLD_PATIENCE).await;
    // Let turns that are due start before this one's commit is encoded and
    // sent: when a burst of timers fires, each turn starts sooner.
    tokio::task::yield_now().await;
    commit(shared, work, turn, carried, inline).await
}

/// Cancel messages for every child the current execution still waits on.
async fn cancel_children(
    shared: &Shared,
    instance: &InstanceRecord,
    reason: &str,
) -> Result<Vec<OutgoingMessage>, StoreError> {
    if instance.awaits_start() {
        return Ok(Vec::new());
    }
    let history = shared
        .store
        .read_history(&instance.instance_id, instance.execution_id)
        .await?;
    // History names children as their tenant sees them; a refused id
    // started no child.
    let parent = split_key(&instance.instance_id).1;
    Ok(running_children(&history)
        .into_iter()
        .filter_map(|child| child_key(&instance.instance_id, &child).ok())
        .map(|child| OutgoingMessage {
            instance_id: child,
            message: OrchestratorMessage::CancelOrchestration {
                reason: format!("parent '{parent}' was cancelled: {reason}"),
            },
            visible_at_ms: shared.now_ms(),
        })
        .collect())
}

/// Why a turn did not run here.
enum Skipped {
    /// This runtime lacks the orchestration's code: the work is given back,
    /// fetchable again at this time, for a runtime that has it.
    Deferred(u64),
    /// The turn could not run (a store read failed, say): the work is given
    /// back and its messages are fetched again.
    Failed(TurnError),
}

/// Why a turn could not run. Each is retried: the work goes back to the
/// queue, and its messages count the attempt.
#[derive(Debug, thiserror::Error)]
enum TurnError {
    /// The instance's history could not be read.
    #[error("reading the instance's history failed")]
    History(#[source] StoreError),
    /// The execution's guest ended without reporting its turn.
    #[error(transparent)]
    Lost(#[from] ExecutionLost),
    /// The registry is unusable.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// How long a turn given back for want of memory waits before it runs
/// again: long enough for the component's activities to make progress.
const GIVEN_BACK_FOR: Duration = Duration::from_millis(100);

/// Why a turn whose execution was `lost` did not run: given back for want
/// of its component's memory, it runs again shortly (no attempt counted);
/// anything else is retried as a failure.
fn not_run(shared: &Shared, lost: ExecutionLost) -> Skipped {
    match lost {
        ExecutionLost::GaveBack(reason) => {
            tracing::debug!("the turn was given back: {reason}");
            Skipped::Deferred(shared.now_ms() + GIVEN_BACK_FOR.as_millis() as u64)
        }
        lost => Skipped::Failed(lost.into()),
    }
}

/// Gives back work whose turn did not run, with the `carried` completion.
async fn skip(
    shared: &Shared,
    work: &OrchestrationWork,
    carried: Option<Carried>,
    skipped: Skipped,
) -> &'static str {
    match skipped {
        Skipped::Deferred(until_ms) => {
            if let Some(carried) = carried {
                queue_completion(shared, carried).await;
            }
            let deferred = shared.store.defer_orchestration_work(work, until_ms).await;
            if let Err(e) = deferred {
                tracing::warn!("deferring the instance failed: {}", Chain(&e));
            }
            "deferred"
        }
        Skipped::Failed(e) => {
            let source = std::error::Error::source(&e).map(ToString::to_string);
            tracing::error!(
                cause = source.as_deref(),
                "the turn failed and will be retried: {e}"
            );
            give_back(shared, work, carried).await;
            "retried"
        }
    }
}

/// The component of orchestration `name` at `version` (the latest when
/// `None`), with the version chosen. Code this runtime lacks leaves the work
/// to another runtime (see `unserved`); a malformed version, or code nobody
/// served within the grace period, fails the execution with the reason.
fn lookup(
    shared: &Shared,
    work: &OrchestrationWork,
    now: u64,
    name: &str,
    version: Option<&str>,
) -> Result<Result<(String, Component), String>, Skipped> {
    let found = match shared.registry.read() {
        Ok(registry) => {
            registry.orchestration(tenant_of_key(&work.instance.instance_id), name, version)
        }
        Err(_) => return Err(Skipped::Failed(RegistryError::Poisoned.into())),
    };
    let missing = match found {
        Ok(found) => return Ok(Ok(found)),
        Err(Lookup::InvalidVersion(reason)) => return Ok(Err(reason)),
        Err(Lookup::NotLoaded(missing)) => missing,
    };
    Ok(Err(unserved(shared, work, now, &missing)?))
}

/// Code this runtime lacks (`missing` names it): the work is left to
/// another runtime, or, once nobody served it within the grace period, the
/// reason the execution fails.
fn unserved(
    shared: &Shared,
    work: &OrchestrationWork,
    now: u64,
    missing: &str,
) -> Result<String, Skipped> {
    let instance = &work.instance.instance_id;
    shared.unserved.warn(missing, instance, now);
    match unserved::decide(
        missing,
        waiting_since(work),
        now,
        shared.options.unserved_grace,
    ) {
        Unserved::Defer { until_ms } => Err(Skipped::Deferred(until_ms)),
        Unserved::Fail { reason } => Ok(reason),
    }
}

/// Since when `work` has waited: its oldest message's visibility, or the
/// instance's last change.
fn waiting_since(work: &OrchestrationWork) -> u64 {
    work.messages
        .iter()
        .map(|m| m.visible_at_ms)
        .min()
        .unwrap_or(work.instance.updated_at_ms)
}

/// Start a new execution: the instance's first, or the next after continue-as-new.
async fn start(
    shared: &Shared,
    work: &OrchestrationWork,
    now: u64,
    spec: StartSpec,
) -> Result<Turn, Skipped> {
    let instance = &work.instance;
    let found = lookup(shared, work, now, &spec.name, spec.version.as_deref())?;
    let digest = found
        .as_ref()
        .ok()
        .and_then(|(_, c)| deployments::pin_of(shared, c));
    let started = |version: String| Event::OrchestrationStarted {
        name: spec.name.clone(),
        version,
        input: spec.input.clone(),
        parent_instance: spec.parent_instance.clone(),
        parent_id: spec.parent_id,
        started_at_ms: now,
    };
    let max_history_events =
        (found.as_ref()).map_or(u64::MAX, |(_, c)| c.policy.max_history_events);
    let new_execution = |output: TurnOutput, version: Option<String>, settled: Settled| Turn {
        output,
        execution_id: spec.execution_id,
        history_len_before: 0,
        digest: version.as_ref().and(digest.clone()),
        version,
        execution: settled.execution,
        spent: settled.spent,
        max_history_events,
    };
    let (version, component) = match found {
        Ok(found) => {
            if let Some(digest) = &digest {
                shared.parked_on.record(&instance.instance_id, digest);
            }
            found
        }
        Err(error) => {
            let version = spec.version.clone().unwrap_or_default();
            let output = failed_output(vec![started(version)], error);
            return Ok(new_execution(output, None, Settled::default()));
        }
    };
    let mut replay = Replay::new(
        &instance.instance_id,
        spec.execution_id,
        Vec::new(),
        shared.options.limits.max_payload_bytes,
    );
    replay.append(started(version.clone()));
    replay.begin_turn(now, &spec.messages);
    let execution_spec = ExecutionSpec {
        limits: component.limits(&shared.options.limits.text_limits()),
        component,
        name: spec.name.clone(),
        version: version.clone(),
        input: spec.input.clone(),
    };
    count_turn("started");
    if instance.awaits_start() {
        let name = metrics::Orchestration {
            name: spec.name.clone(),
        };
        metrics::global().started.get_or_create(&name).inc();
    }
    Ok(
        match Execution::start(execution_spec, replay, spec.execution_id).await {
            Ok((execution, report)) => {
                let (output, settled) = settle(report, execution);
                new_execution(output, Some(version), settled)
            }
            Err(e @ ExecutionLost::GaveBack(_)) => return Err(not_run(shared, e)),
            Err(e) => new_execution(
                failed_output(Vec::new(), e.to_string()),
                None,
                Settled::default(),
            ),
        },
    )
}

/// Run a turn of a started execution: on its parked guest if cached and
/// current, else on a guest replayed from history.
async fn resume(
    shared: &Shared,
    work: &OrchestrationWork,
    now: u64,
    messages: Vec<OrchestratorMessage>,
) -> Result<Turn, Skipped> {
    let instance = &work.instance;
    let cached = shared.cache.take(&instance.instance_id).filter(|e| {
        e.execution_id == instance.execution_id
            && e.history_len == instance.history_len
            && shared.parked_on.current(instance)
    });
    if let Some(mut execution) = cached {
        count_turn("cached");
        let max_history_events = execution.max_history_events;
        let report = execution
            .run_turn(TurnInput {
                now_ms: now,
                messages,
            })
            .await
            .map_err(|e| not_run(shared, e))?;
        let (output, settled) = settle(report, execution);
        return Ok(settled.into_turn(instance, output, max_history_events));
    }
    count_turn("replayed");
    let read = (shared.store)
        .read_history(&instance.instance_id, instance.execution_id)
        .await;
    let history = match read {
        Ok(history) => history,
        // Reading it again will not help: the instance fails at once.
        Err(StoreError::Corrupt(e)) => {
            let reason = format!("corrupt history: {e}");
            return Ok(Turn::of(instance, failed_output(Vec::new(), reason)));
        }
        Err(e) => return Err(Skipped::Failed(TurnError::History(e))),
    };
    let Some(Event::OrchestrationStarted {
        name,
        version,
        input,
        ..
    }) = history.first().cloned()
    else {
        let reason = format!(
            "corrupt history: history of '{}' execution {}, event #0: it does not begin with OrchestrationStarted",
            instance.instance_id, instance.execution_id
        );
        return Ok(Turn::of(instance, failed_output(Vec::new(), reason)));
    };
    // Always the exact version the execution started on, on the component
    // it is pinned to (see `deployments::pinned`).
    let found = match deployments::pinned(shared, instance, &name, &version) {
        Pin::Loaded(component) => Ok((version.clone(), component)),
        Pin::Missing(missing) => Err(unserved(shared, work, now, &missing)?),
        Pin::Unpinned => lookup(shared, work, now, &name, Some(&version))?,
    };
    let component = match found {
        Ok((_, component)) => component,
        Err(error) => return Ok(Turn::of(instance, failed_output(Vec::new(), error))),
    };
    if instance.component_digest.is_some() {
        shared
            .parked_on
            .record(&instance.instance_id, &component.digest);
    }
    let mut replay = Replay::new(
        &instance.instance_id,
        instance.execution_id,
        history,
        shared.options.limits.max_payload_bytes,
    );
    replay.begin_turn(now, &messages);
    let max_history_events = component.policy.max_history_events;
    let spec = ExecutionSpec {
        limits: component.limits(&shared.options.limits.text_limits()),
        component,
        name,
        version,
        input,
    };
    let (execution, report) = Execution::start(spec, replay, instance.execution_id)
        .await
        .map_err(|e| not_run(shared, e))?;
    let (output, settled) = settle(report, execution);
    Ok(settled.into_turn(instance, output, max_history_events))
}

/// A turn that fails the execution with `error` after `events`.
fn failed_output(mut events: Vec<Event>, error: String) -> TurnOutput {
    events.push(Event::OrchestrationFailed {
        error: error.clone(),
    });
    TurnOutput {
        new_events: events,
        status: Some((InstanceStatus::Failed, error)),
        ..TurnOutput::default()
    }
}

/// What is left of an execution after a turn.
#[derive(Default)]
pub(crate) struct Settled {
    /// The execution, if it is parked and may be cached.
    execution: Option<Execution>,
    /// Its sandbox, if it ended.
    spent: Option<SpentSandbox>,
}

impl Settled {
    fn into_turn(
        self,
        instance: &InstanceRecord,
        output: TurnOutput,
        max_history_events: u64,
    ) -> Turn {
        Turn {
            execution: self.execution,
            spent: self.spent,
            max_history_events,
            ..Turn::of(instance, output)
        }
    }
}

/// The turn's output, and what is left of the execution.
pub(crate) fn settle(report: TurnReport, execution: Execution) -> (TurnOutput, Settled) {
    match report {
        TurnReport::Parked(output) => (
            output,
            Settled {
                execution: Some(execution),
                spent: None,
            },
        ),
        TurnReport::Finished(output, spent) => (
            output,
            Settled {
                execution: None,
                spent: Some(spent),
            },
        ),
    }
}

/// The message that tells a child's parent how the child ended.
fn parent_notice(
    now_ms: u64,
    instance: &InstanceRecord,
    status: InstanceStatus,
    text: &str,
) -> Option<OutgoingMessage> {
    let (Some(parent), Some(id), Some(execution_id)) = (
        &instance.parent_instance,
        instance.parent_id,
        instance.parent_execution_id,
    ) else {
        return None;
    };
    let message = match status {
        InstanceStatus::Completed => OrchestratorMessage::SubOrchestrationCompleted {
            execution_id,
            id,
            output: text.to_string(),
        },
        InstanceStatus::Failed => OrchestratorMessage::SubOrchestrationFailed {
            execution_id,
            id,
            error: text.to_string(),
        },
        InstanceStatus::Cancelled => OrchestratorMessage::SubOrchestrationFailed {
            execution_id,
            id,
            error: format!("the child was cancelled: {text}"),
        },
        InstanceStatus::Pending | InstanceStatus::Running => return None,
    };
    Some(OutgoingMessage {
        instance_id: parent.clone(),
        message,
        visible_at_ms: now_ms,
    })
}

/// Commits `turn`, which consumed `work`'s messages and the `carried`
/// completion, taking the fast paths `fast_path` chooses. An `inline` call
/// still running is scheduled by the commit, locked for this runtime, and
/// goes on under the activity dispatcher (so it frees its turn slot, and
/// `stop` can abandon it).
async fn commit(
    shared: &Shared,
    work: OrchestrationWork,
    turn: Turn,
    carried: Option<Carried>,
    inline: Option<Inline>,
) -> &'static str {
    let Turn {
        mut output,
        execution_id,
        history_len_before,
        version,
        digest,
        mut execution,
        spent,
        max_history_events,
    } = turn;
    let mut inline = inline;
    let appended = output.new_events.len();
    if let Err(fault) = history_limit::check(history_len_before, appended, max_history_events) {
        // The turn's events and work are dropped: the execution fails with
        // the reason instead, its guest (and any inline call) stopped.
        output = failed_output(Vec::new(), fault.to_string());
        execution = None;
        inline = None;
    }
    let instance = &work.instance;
    // Calls whose results the turn no longer wants: the tasks it cancelled,
    // or all of the execution's if it ends.
    let cancelled: Vec<u64> = (output.new_events.iter())
        .filter_map(|e| match e {
            Event::TaskCancelled { id } => Some(*id),
            _ => None,
        })
        .collect();
    let continued = output.continue_as_new.is_some();
    let (status, result) = outcome(shared.now_ms(), instance, &mut output);
    let parks = execution.is_some() && shared.options.execution_cache;
    let end = TurnEnd {
        activities: output.activities.len(),
        only_activities: false,
        parks,
        running: status == InstanceStatus::Running,
        inline_call: inline.is_some(),
        // Inline steps are over by now.
        time_left: false,
    };
    let (hand_over, hold) = match next_step(&end, &shared.load()) {
        Step::Commit { hand_over, hold } => (hand_over, hold),
        Step::Inline => (0, false),
    };
    // An inline call holds its own activity slot; the others need one each.
    let (slots, inline) = match inline {
        Some(inline) => (Vec::new(), Some(inline)),
        None => (take_permits(&shared.activity_slots, hand_over), None),
    };
    let locks = slots.len() + usize::from(inline.is_some());
    let hold = hold && locks == 1;
    let new_len = history_len_before + output.new_events.len() as u64;
    let commit = TurnCommit {
        instance_id: instance.instance_id.clone(),
        lock_token: work.lock_token.clone(),
        execution_id,
        history_len_before,
        new_events: output.new_events,
        consumed_messages: work.messages.iter().map(|m| m.id).collect(),
        activities: output.activities,
        messages: output.messages,
        new_instances: output.new_instances,
        status,
        output: result,
        orchestration_version: version,
        component_digest: digest,
        custom_status: output.custom_status,
        completed_activity: carried.as_ref().map(|c| c.item.clone()),
    };
    // Parked before the commit, not after: the commit lets the turn's
    // activities run, and the one that completes first runs the next turn
    // at once (see `activity::complete`), which may be before this task
    // resumes. A turn takes a cached execution only if the history it has
    // seen is the instance's committed history, so until the commit lands
    // nobody can use it; if the commit fails it is dropped.
    if let Some(mut execution) = execution.filter(|_| parks) {
        execution.history_len = new_len;
        shared.cache.put(instance.instance_id.clone(), execution);
    }
    let committed = write(shared, commit, locks, hold).await;
    if let Some(spent) = spent {
        spent.free();
    }
    match committed {
        Ok(locked) => {
            shared.turn_window.committed();
            if status.is_terminal() {
                shared.parked_on.forget(&instance.instance_id);
            }
            count_end(instance, status);
            let ended = continued || status.is_terminal();
            (shared.calls).no_longer_wanted(&instance.instance_id, execution_id, &cancelled, ended);
            after_commit(shared, &work, locked, slots, inline).await;
            status_name(status)
        }
        Err(e) => {
            after_failure(shared, &work, e, carried, parks).await;
            "retried"
        }
    }
}

/// Counts a turn that found its execution as `kind` says.
fn count_turn(kind: &'static str) {
    let kind = metrics::TurnKind { kind };
    metrics::global().turns.get_or_create(&kind).inc();
}

/// Counts an instance that `status`, just committed, ended.
fn count_end(instance: &InstanceRecord, status: InstanceStatus) {
    if instance.status.is_terminal() {
        return;
    }
    let m = metrics::global();
    let family = match status {
        InstanceStatus::Completed => &m.completed,
        InstanceStatus::Failed => &m.failed,
        InstanceStatus::Cancelled => &m.cancelled,
        InstanceStatus::Pending | InstanceStatus::Running => return,
    };
    let name = metrics::Orchestration {
        name: instance.orchestration_name.clone(),
    };
    family.get_or_create(&name).inc();
}

/// A status's name, as a turn span's outcome.
fn status_name(status: InstanceStatus) -> &'static str {
    match status {
        InstanceStatus::Pending => "pending",
        InstanceStatus::Running => "running",
        InstanceStatus::Completed => "completed",
        InstanceStatus::Failed => "failed",
        InstanceStatus::Cancelled => "cancelled",
    }
}

/// The instance's status and result after the turn `output` holds. A turn
/// that ends a child tells its parent, and one that continues as new sends
/// the instance its next start; both messages join `output`'s.
fn outcome(
    now_ms: u64,
    instance: &InstanceRecord,
    output: &mut TurnOutput,
) -> (InstanceStatus, Option<String>) {
    let (status, result) = match output.status.take() {
        Some((status, text)) => (status, Some(text)),
        None if instance.status.is_terminal() => (instance.status, instance.output.clone()),
        None => (InstanceStatus::Running, None),
    };
    if status.is_terminal()
        && !instance.status.is_terminal()
        && let Some(notice) =
            parent_notice(now_ms, instance, status, result.as_deref().unwrap_or(""))
    {
        output.messages.push(notice);
    }
    if let Some(next) = output.continue_as_new.take() {
        // Visible since the epoch, not since this turn's start: a fetch (or
        // a completion that locks the instance) takes the messages visible
        // at a time its process read before the statement ran, which may
        // precede this turn's start. Taking a later event without its
        // continue-as-new would run a turn of the execution that ended.
        output.messages.push(OutgoingMessage {
            instance_id: instance.instance_id.clone(),
            message: next,
            visible_at_ms: 0,
        });
    }
    (status, result)
}

/// Writes `commit`, locking its first `locks` activities for this runtime
/// and, with `hold`, keeping the instance locked.
async fn write(
    shared: &Shared,
    commit: TurnCommit,
    locks: usize,
    hold: bool,
) -> Result<LockedTurn, StoreError> {
    if locks == 0 {
        return shared
            .store
            .commit_turn(commit)
            .await
            .map(|()| LockedTurn::default());
    }
    let lock_for = shared.options.activity_lock;
    let hold_for = hold.then_some(shared.options.orchestration_lock);
    (shared.store)
        .commit_turn_and_lock_activities(commit, locks, lock_for, hold_for)
        .await
}

/// Hands the activities the commit `locked` to the activity dispatcher,
/// each in one of `slots`, the first with the instance if the store held
/// it; an `inline` call that is still running goes on there in its own
/// slot. (A store that locks nothing left them to a fetch.)
async fn after_commit(
    shared: &Shared,
    work: &OrchestrationWork,
    locked: LockedTurn,
    slots: Vec<OwnedSemaphorePermit>,
    inline: Option<Inline>,
) {
    let mut held = locked.held.map(|instance| OrchestrationWork {
        instance,
        lock_token: work.lock_token.clone(),
        messages: Vec::new(),
        ready_at_ms: 0,
    });
    let handed = match inline {
        Some(Inline { call, slot }) => (locked.activities.into_iter().next())
            .map(|item| Handed {
                item,
                slot,
                origin: Origin::Inline(call),
            })
            .into_iter()
            .collect(),
        None => (locked.activities.into_iter().zip(slots))
            .map(|(item, slot)| Handed {
                item,
                slot,
                origin: held
                    .take()
                    .map_or(Origin::HandedOver, |held| Origin::Held(Box::new(held))),
            })
            .collect(),
    };
    // A hold granted without an activity to run is given back.
    if let Some(held) = held {
        release(shared, &held).await;
    }
    hand_over(shared, handed).await;
}

/// After a commit that failed with `e`: the parked execution is dropped,
/// the `carried` completion (only in memory) goes to the queue, and the
/// instance is released if the turn still holds it, so its messages need
/// not wait for the lock to expire.
async fn after_failure(
    shared: &Shared,
    work: &OrchestrationWork,
    e: StoreError,
    carried: Option<Carried>,
    parked: bool,
) {
    if parked {
        shared.cache.take(&work.instance.instance_id);
    }
    if let StoreError::LockLost(_) = e {
        shared.turn_window.lost_lock(std::time::Instant::now());
        tracing::warn!(
            "the turn lost a lock before it committed; it will be retried: {}",
            Chain(&e)
        );
    } else {
        tracing::error!("committing the turn failed: {}", Chain(&e));
    }
    if let Some(carried) = carried {
        queue_completion(shared, carried).await;
    }
    release(shared, work).await;
}

/// Hands the activities the commit locked to the activity dispatcher. Work
/// the dispatcher no longer takes (it is stopping) is released for a later
/// fetch, and so is a held instance.
async fn hand_over(shared: &Shared, handed: Vec<Handed>) {
    for handed in handed {
        if let Err(refused) = shared.handed_over.send(handed) {
            let Handed { item, origin, .. } = refused.0;
            if let Err(e) = shared.store.release_activity_work(&item).await {
                tracing::warn!("releasing activity work failed: {}", Chain(&e));
            }
            if let Origin::Held(held) = origin {
                release(shared, &held).await;
            }
        }
    }
}

/// Puts a carried completion in the instance's queue, as an activity
/// dispatcher that never held the instance would.
pub(crate) async fn queue_completion(shared: &Shared, carried: Carried) {
    let completed = (shared.store)
        .complete_activity(&carried.item, carried.completion)
        .await;
    if let Err(e) = completed {
        tracing::warn!(
            "completing the activity failed; another attempt will run: {}",
            Chain(&e)
        );
    }
}

/// Gives up a turn: the carried completion goes to the queue, and the
/// instance lock is released so its messages are fetched again.
async fn give_back(shared: &Shared, work: &OrchestrationWork, carried: Option<Carried>) {
    if let Some(carried) = carried {
        queue_completion(shared, carried).await;
    }
    release(shared, work).await;
}

/// Releases the instance lock without committing.
pub(crate) async fn release(shared: &Shared, work: &OrchestrationWork) {
    release_lock(shared, &work.instance.instance_id, &work.lock_token).await;
}

/// Releases instance `instance_id`'s lock if `lock_token` still holds it.
async fn release_lock(shared: &Shared, instance_id: &str, lock_token: &str) {
    let released = (shared.store)
        .release_orchestration_work(instance_id, lock_token)
        .await;
    if let Err(e) = released {
        tracing::warn!("releasing the instance lock failed: {}", Chain(&e));
    }
}
