//! The replay engine: matches an orchestration's decisions against its
//! history, answers its waits from recorded completions, and collects what a
//! turn adds. Pure bookkeeping; the sandbox calls it through the runtime's
//! `OrchestrationHost`.
//!
//! Its parts: [`index`] holds the history and the guest's cursor in it,
//! [`effects`] turns new decisions into what the store must do, and
//! [`values`] gives the deterministic clock, guids and random numbers.

mod effects;
mod index;
mod retry;
#[cfg(test)]
mod retry_tests;
mod values;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::history::{Event, OrchestratorMessage};
use crate::limits::{TextKind, TextLimits, check_delay};
use crate::providers::InstanceStatus;
use crate::sandbox::{Completion, GuestFault, Outcome, RetryPolicy, SeededRandom, TurnClock};
use crate::tenant::split_key;
pub(crate) use effects::TurnOutput;
use effects::{Decider, Effects};
use index::{HistoryIndex, Task};
use retry::{AfterFailure, Phase, Retries, Retry};
use values::Values;

/// One execution's history and the guest's position in it.
pub(crate) struct Replay {
    instance_id: String,
    execution_id: u64,
    index: HistoryIndex,
    /// Decisions the guest has made so far.
    next_decision: usize,
    values: Values,
    limits: TextLimits,
    effects: Effects,
    retries: Retries,
}

impl Replay {
    /// Replay state over `committed` history (starting with OrchestrationStarted,
    /// or empty for a new execution whose start event is in `new_events`).
    pub(crate) fn new(
        instance_id: &str,
        execution_id: u64,
        committed: Vec<Event>,
        max_payload: usize,
    ) -> Self {
        let mut replay = Replay {
            instance_id: instance_id.to_string(),
            execution_id,
            index: HistoryIndex::new(committed),
            next_decision: 0,
            values: Values::new(instance_id, execution_id),
            limits: TextLimits {
                max_payload_bytes: max_payload,
                ..TextLimits::default()
            },
            effects: Effects::default(),
            retries: Retries::default(),
        };
        replay.advance(0);
        replay
    }

    /// Hold the guest to `limits` (the payload limit given to [`Replay::new`]
    /// included) from now on.
    pub(crate) fn set_limits(&mut self, limits: TextLimits) {
        self.limits = limits;
    }

    /// The limits the guest is held to.
    pub(crate) fn limits(&self) -> &TextLimits {
        &self.limits
    }

    /// The flag the guest's output streams read to drop replayed lines.
    pub(crate) fn replaying_flag(&self) -> Arc<AtomicBool> {
        self.index.replaying_flag()
    }

    /// The clock the guest's WASI clocks read.
    pub(crate) fn clock(&self) -> TurnClock {
        self.values.clock()
    }

    /// The generators behind the guest's WASI randomness.
    pub(crate) fn wasi_random(&self) -> SeededRandom {
        self.values.wasi_random()
    }

    /// The instance this execution belongs to.
    pub(crate) fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Append a new event of the current turn (the start event of a new execution).
    pub(crate) fn append(&mut self, event: Event) {
        self.index.push(event);
        if self.index.len() == 1 {
            self.advance(0);
        }
    }

    /// Begin a turn at `now_ms` with `messages`: record the ones that still
    /// matter (dropping duplicates and strays) after a turn marker. Returns how
    /// many were recorded.
    pub(crate) fn begin_turn(&mut self, now_ms: u64, messages: &[OrchestratorMessage]) -> usize {
        let admitted: Vec<Event> = messages.iter().filter_map(|m| self.admit(m)).collect();
        if admitted.is_empty() {
            return 0;
        }
        self.index.push(Event::TurnStarted { at_ms: now_ms });
        let n = admitted.len();
        for event in admitted {
            self.index.push(event);
        }
        n
    }

    /// The event `message` adds to history, if the execution expects it.
    fn admit(&self, message: &OrchestratorMessage) -> Option<Event> {
        let (execution_id, id, event, kind) = match message {
            OrchestratorMessage::ActivityCompleted {
                execution_id,
                id,
                output,
            } => (
                *execution_id,
                *id,
                Event::ActivityCompleted {
                    id: *id,
                    output: output.clone(),
                },
                Task::Activity,
            ),
            OrchestratorMessage::ActivityFailed {
                execution_id,
                id,
                error,
            } => (
                *execution_id,
                *id,
                Event::ActivityFailed {
                    id: *id,
                    error: error.clone(),
                },
                Task::Activity,
            ),
            OrchestratorMessage::TimerFired { execution_id, id } => (
                *execution_id,
                *id,
                Event::TimerFired { id: *id },
                Task::Timer,
            ),
            OrchestratorMessage::SubOrchestrationCompleted {
                execution_id,
                id,
                output,
            } => (
                *execution_id,
                *id,
                Event::SubOrchestrationCompleted {
                    id: *id,
                    output: output.clone(),
                },
                Task::SubOrchestration,
            ),
            OrchestratorMessage::SubOrchestrationFailed {
                execution_id,
                id,
                error,
            } => (
                *execution_id,
                *id,
                Event::SubOrchestrationFailed {
                    id: *id,
                    error: error.clone(),
                },
                Task::SubOrchestration,
            ),
            OrchestratorMessage::ExternalEvent { name, data } => {
                return Some(Event::EventRaised {
                    name: name.clone(),
                    data: data.clone(),
                });
            }
            OrchestratorMessage::StartOrchestration { .. }
            | OrchestratorMessage::ContinueAsNew { .. }
            | OrchestratorMessage::CancelOrchestration { .. } => return None,
        };
        let expected = execution_id == self.execution_id
            && self.index.task(id) == Some(&kind)
            && !self.index.is_completed(id)
            && !self.index.is_cancelled(id);
        if !expected {
            tracing::debug!(instance = %self.instance_id, id, "dropping a stale or duplicate completion");
            return None;
        }
        Some(event)
    }

    /// Move the guest's position forward to `pos`, updating its clock and
    /// whether it is replaying.
    fn advance(&mut self, pos: usize) {
        if let Some(at_ms) = self.index.advance(pos) {
            self.values.set_now(at_ms);
        }
    }

    /// Record decision `event` (whose id is the next task id), or check it
    /// against history when replaying.
    fn decide(&mut self, event: Event) -> Result<(), GuestFault> {
        let k = self.next_decision;
        self.next_decision += 1;
        if let Some(pos) = self.index.decision(k) {
            if let Some(recorded) = self.index.event(pos)
                && *recorded != event
            {
                return Err(GuestFault::nondeterminism(k, pos, recorded, &event));
            }
            self.advance(pos);
            return Ok(());
        }
        let by = Decider {
            instance_id: &self.instance_id,
            execution_id: self.execution_id,
            now_ms: self.values.now_ms(),
        };
        self.effects.decide(&event, &by, &self.index);
        let pos = self.index.len();
        self.index.push(event);
        self.advance(pos);
        Ok(())
    }

    /// The id the next decision's task gets.
    fn next_task_id(&self) -> u64 {
        self.next_decision as u64 + 1
    }

    /// Refuse `value`, described as `what`, if it exceeds the limit of `kind`.
    fn check(&self, kind: TextKind, what: &'static str, value: &str) -> Result<(), GuestFault> {
        Ok(self.limits.check(kind, what, value)?)
    }

    /// Refuse `payload`, described as `what`, if it exceeds the payload limit.
    fn check_payload(&self, what: &'static str, payload: &str) -> Result<(), GuestFault> {
        self.check(TextKind::Payload, what, payload)
    }

    /// Refuse a name or version the guest asks for if it is too long.
    fn check_target(&self, name: &str, version: Option<&str>) -> Result<(), GuestFault> {
        self.check(TextKind::Name, "orchestration name", name)?;
        match version {
            Some(version) => self.check(TextKind::Name, "orchestration version", version),
            None => Ok(()),
        }
    }

    /// The guest schedules an activity.
    pub(crate) fn schedule_activity(
        &mut self,
        name: String,
        input: String,
    ) -> Result<u64, GuestFault> {
        self.check(TextKind::Name, "activity name", &name)?;
        self.check_payload("activity input", &input)?;
        let id = self.next_task_id();
        self.decide(Event::ActivityScheduled { id, name, input })?;
        Ok(id)
    }

    /// The guest schedules an activity the host retries as `policy` says.
    /// Its task id is the first attempt's; the attempts, backoffs and
    /// timeouts behind it are decided while the guest waits on it (see
    /// [`retry`]).
    pub(crate) fn schedule_activity_with_retry(
        &mut self,
        name: String,
        input: String,
        policy: RetryPolicy,
    ) -> Result<u64, GuestFault> {
        retry::check(&policy)?;
        let activity = self.schedule_activity(name.clone(), input.clone())?;
        let timeout = match policy.attempt_timeout_ms {
            Some(ms) => Some(self.schedule_timer(ms)?),
            None => None,
        };
        let retry = Retry {
            name,
            input,
            policy,
            first_started_ms: self.now_ms(),
            attempt: 1,
            phase: Phase::Attempt { activity, timeout },
        };
        self.retries.insert(activity, retry);
        Ok(activity)
    }

    /// The guest starts a timer.
    pub(crate) fn schedule_timer(&mut self, delay_ms: u64) -> Result<u64, GuestFault> {
        check_delay("timer delay", delay_ms)?;
        let id = self.next_task_id();
        let fire_at_ms = self.now_ms().saturating_add(delay_ms);
        self.decide(Event::TimerCreated { id, fire_at_ms })?;
        Ok(id)
    }

    /// The guest subscribes to an external event.
    pub(crate) fn wait_for_event(&mut self, name: String) -> Result<u64, GuestFault> {
        self.check(TextKind::Name, "event name", &name)?;
        let id = self.next_task_id();
        self.decide(Event::EventSubscribed { id, name })?;
        Ok(id)
    }

    /// The guest starts a child orchestration; its instance id is `instance_id`
    /// or, when absent, derived from this instance and the task id.
    pub(crate) fn schedule_sub_orchestration(
        &mut self,
        name: String,
        version: Option<String>,
        instance_id: Option<String>,
        input: String,
    ) -> Result<u64, GuestFault> {
        self.check_target(&name, version.as_deref())?;
        if let Some(instance_id) = &instance_id {
            self.check(TextKind::InstanceId, "child instance id", instance_id)?;
        }
        self.check_payload("child input", &input)?;
        let id = self.next_task_id();
        // Derived ids name the execution too: after continue-as-new the same
        // task id starts a different child. History holds ids as the
        // tenant's clients see them; the child's key (its tenant's) is
        // made when the start is committed (see `effects`).
        let instance_id = instance_id.unwrap_or_else(|| {
            let parent = split_key(&self.instance_id).1;
            format!("{parent}::{}::{id}", self.execution_id)
        });
        self.decide(Event::SubOrchestrationScheduled {
            id,
            name,
            version,
            instance_id,
            input,
        })?;
        Ok(id)
    }

    /// The guest starts an independent orchestration it does not wait for.
    pub(crate) fn start_detached(
        &mut self,
        name: String,
        version: Option<String>,
        instance_id: String,
        input: String,
    ) -> Result<(), GuestFault> {
        self.check_target(&name, version.as_deref())?;
        self.check(TextKind::InstanceId, "detached instance id", &instance_id)?;
        self.check_payload("orchestration input", &input)?;
        let id = self.next_task_id();
        self.decide(Event::OrchestrationStartedDetached {
            id,
            name,
            version,
            instance_id,
            input,
        })
    }

    /// The guest ends this execution and asks for a new one with `input`.
    /// Always ends the guest: [`GuestFault::ContinuedAsNew`] once recorded.
    pub(crate) fn continue_as_new(&mut self, input: String, version: Option<String>) -> GuestFault {
        let checked = self
            .check_payload("continue-as-new input", &input)
            .and_then(|()| match &version {
                Some(v) => self.check(TextKind::Name, "continue-as-new version", v),
                None => Ok(()),
            });
        if let Err(fault) = checked {
            return fault;
        }
        match self.decide(Event::ContinuedAsNew { input, version }) {
            Ok(()) => GuestFault::ContinuedAsNew,
            Err(fault) => fault,
        }
    }

    /// The guest stops waiting for `task`. A running child is cancelled too,
    /// and so is whatever a retry is running or waiting on.
    pub(crate) fn cancel_task(&mut self, task: u64) -> Result<(), GuestFault> {
        if !self.index.created(task, self.next_decision) {
            return Err(GuestFault::UnknownTask(task));
        }
        let Some(retry) = self.retries.get(task) else {
            if self.retries.owner(task).is_some() {
                return Err(GuestFault::UnknownTask(task));
            }
            return self.cancel(task);
        };
        let (attempt, phase) = (retry.attempt, retry.phase);
        let targets: Vec<u64> = self.retries.expand(&[task])?.into_owned();
        for target in &targets {
            self.cancel(*target)?;
        }
        if !matches!(phase, Phase::Done { .. }) {
            let last = targets.first().copied().unwrap_or(task);
            self.retries.set(task, attempt, Phase::Done { last });
        }
        Ok(())
    }

    /// Record that the orchestration no longer waits for `task`.
    fn cancel(&mut self, task: u64) -> Result<(), GuestFault> {
        self.decide(Event::TaskCancelled { id: task })?;
        self.index.unwatch(task);
        Ok(())
    }

    /// The earliest completion among `tasks` not yet handed to the guest, or
    /// `None` when the guest must wait for the next turn. A wait that could
    /// never end is a fault: on no tasks, on a task the guest never created,
    /// or only on tasks it cancelled or whose completion it already received.
    pub(crate) fn poll_wait(&mut self, tasks: &[u64]) -> Result<Option<Completion>, GuestFault> {
        loop {
            let expanded = self.retries.expand(tasks)?;
            let taken = self.index.take_earliest(&expanded, self.next_decision)?;
            let Some((pos, task)) = taken else {
                return Ok(None);
            };
            if let Some(completion) = self.settle(pos, task)? {
                return Ok(Some(completion));
            }
        }
    }

    /// The guest waits on `tasks` through [`poll_wait_any`](Self::poll_wait_any)
    /// from now on, until each is received or cancelled.
    pub(crate) fn watch(&mut self, tasks: &[u64]) -> Result<(), GuestFault> {
        let expanded = self.retries.expand(tasks)?;
        self.index.watch(&expanded, self.next_decision)?;
        self.retries.watch(tasks);
        Ok(())
    }

    /// The earliest completion, in history order, of the tasks the guest
    /// watches, or `None` when the guest must wait for the next turn. Its
    /// cost does not grow with the number of tasks open or finished. With
    /// nothing watched, the wait could never end: a fault.
    pub(crate) fn poll_wait_any(&mut self) -> Result<Option<Completion>, GuestFault> {
        loop {
            let Some((pos, task)) = self.index.take_next()? else {
                return Ok(None);
            };
            if let Some(completion) = self.settle(pos, task)? {
                return Ok(Some(completion));
            }
        }
    }

    /// The completion at `pos`, of `task`, taken from history: what the
    /// guest receives, or `None` when it was a retry's own task and the
    /// retry goes on.
    fn settle(&mut self, pos: usize, task: u64) -> Result<Option<Completion>, GuestFault> {
        let completion = self.hand_over(pos, task);
        match self.retries.owner(task) {
            None => Ok(Some(completion)),
            Some(owner) => self.step_retry(owner, completion),
        }
    }

    /// Retry `owner` learns how its task `completion.task` ended: it hands
    /// the guest its outcome, or decides its next step.
    fn step_retry(
        &mut self,
        owner: u64,
        completion: Completion,
    ) -> Result<Option<Completion>, GuestFault> {
        let Some(retry) = self.retries.get(owner).cloned() else {
            return Ok(Some(completion));
        };
        let (attempt, phase) = (retry.attempt, retry.phase);
        let ended = completion.task;
        let error = match phase {
            Phase::Attempt { activity, timeout } if ended == activity => {
                if let Some(timer) = timeout {
                    self.cancel(timer)?;
                }
                match completion.outcome {
                    Outcome::Ok(output) => {
                        return Ok(Some(self.finish(owner, ended, Outcome::Ok(output))));
                    }
                    Outcome::Err(error) => error,
                }
            }
            Phase::Attempt {
                activity,
                timeout: Some(timer),
            } if ended == timer => {
                self.cancel(activity)?;
                let timeout_ms = retry.policy.attempt_timeout_ms.unwrap_or_default();
                retry::timed_out(&retry.name, attempt, timeout_ms)
            }
            Phase::Backoff { timer } if ended == timer => {
                self.start_attempt(owner, attempt + 1)?;
                return Ok(None);
            }
            // A task of an earlier phase: nothing waits for it any more.
            _ => return Ok(None),
        };
        match retry::after_failure(
            &retry.policy,
            attempt,
            retry.first_started_ms,
            self.now_ms(),
        ) {
            AfterFailure::GiveUp(why) => {
                let error = retry::gave_up(&retry.name, attempt, why.as_deref(), &error);
                Ok(Some(self.finish(owner, ended, Outcome::Err(error))))
            }
            AfterFailure::RetryAfter(0) => {
                self.start_attempt(owner, attempt + 1)?;
                Ok(None)
            }
            AfterFailure::RetryAfter(ms) => {
                let timer = self.schedule_timer(ms)?;
                self.retries.set(owner, attempt, Phase::Backoff { timer });
                self.watch_for(owner, &[timer])?;
                Ok(None)
            }
        }
    }

    /// Start attempt `attempt` of retry `owner`: its activity, and the timer
    /// of its timeout if it has one.
    fn start_attempt(&mut self, owner: u64, attempt: u32) -> Result<(), GuestFault> {
        let Some(retry) = self.retries.get(owner) else {
            return Ok(());
        };
        let (name, input) = (retry.name.clone(), retry.input.clone());
        let timeout_ms = retry.policy.attempt_timeout_ms;
        let activity = self.schedule_activity(name, input)?;
        let timeout = match timeout_ms {
            Some(ms) => Some(self.schedule_timer(ms)?),
            None => None,
        };
        self.retries
            .set(owner, attempt, Phase::Attempt { activity, timeout });
        self.watch_for(
            owner,
            &[Some(activity), timeout]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        )
    }

    /// Watch `tasks`, which retry `owner` just made, if the guest watches it.
    fn watch_for(&mut self, owner: u64, tasks: &[u64]) -> Result<(), GuestFault> {
        if self.retries.is_watched(owner) {
            self.index.watch(tasks, self.next_decision)?;
        }
        Ok(())
    }

    /// Retry `owner` is over with `outcome`; `last` is the task that ended it.
    fn finish(&mut self, owner: u64, last: u64, outcome: Outcome) -> Completion {
        let attempt = self.retries.get(owner).map_or(1, |r| r.attempt);
        self.retries.set(owner, attempt, Phase::Done { last });
        Completion {
            task: owner,
            outcome,
        }
    }

    /// The completion at `pos`, of `task`, as the guest receives it; the
    /// guest's cursor moves there.
    fn hand_over(&mut self, pos: usize, task: u64) -> Completion {
        self.advance(pos);
        let outcome = match self.index.event(pos) {
            Some(Event::ActivityCompleted { output, .. }) => Outcome::Ok(output.clone()),
            Some(Event::ActivityFailed { error, .. }) => Outcome::Err(error.clone()),
            Some(Event::SubOrchestrationCompleted { output, .. }) => Outcome::Ok(output.clone()),
            Some(Event::SubOrchestrationFailed { error, .. }) => Outcome::Err(error.clone()),
            Some(Event::EventRaised { data, .. }) => Outcome::Ok(data.clone()),
            _ => Outcome::Ok(String::new()),
        };
        Completion { task, outcome }
    }

    /// The orchestration returned `output`.
    pub(crate) fn complete(&mut self, output: String) -> Result<(), GuestFault> {
        self.check_payload("orchestration output", &output)?;
        self.decide(Event::OrchestrationCompleted {
            output: output.clone(),
        })?;
        self.effects.set_status(InstanceStatus::Completed, output);
        Ok(())
    }

    /// The orchestration ended with `error`: returned by the code (checked
    /// against history like a decision) or caused by a fault.
    /// An error the code returns must be within the error limit; a fault's
    /// reason is cut to it.
    pub(crate) fn fail(&mut self, error: String, returned_by_code: bool) -> Result<(), GuestFault> {
        if returned_by_code {
            self.check(TextKind::Error, "orchestration error", &error)?;
        }
        if returned_by_code
            && let Some(pos) = self.index.decision(self.next_decision)
            && let Some(recorded) = self.index.event(pos)
        {
            let actual = Event::OrchestrationFailed { error };
            return Err(GuestFault::nondeterminism(
                self.next_decision,
                pos,
                recorded,
                &actual,
            ));
        }
        let error = if returned_by_code {
            error
        } else {
            self.effects.drop_decisions();
            self.limits.truncate(TextKind::Error, &error).into_owned()
        };
        self.index.push(Event::OrchestrationFailed {
            error: error.clone(),
        });
        self.effects.set_status(InstanceStatus::Failed, error);
        Ok(())
    }

    /// Deterministic time: when the turn the guest is in began.
    pub(crate) fn now_ms(&self) -> u64 {
        self.values.now_ms()
    }

    /// A deterministic UUID from the execution's seed.
    pub(crate) fn new_guid(&mut self) -> String {
        self.values.new_guid()
    }

    /// A deterministic random number from the execution's seed.
    pub(crate) fn random_u64(&mut self) -> u64 {
        self.values.random_u64()
    }

    /// The guest publishes a custom status. Replayed calls set it again to the
    /// same values, so the last call of a turn is what clients see.
    pub(crate) fn set_custom_status(&mut self, status: Option<String>) -> Result<(), GuestFault> {
        if let Some(s) = &status {
            self.check_payload("custom status", s)?;
        }
        self.effects.set_custom_status(status);
        Ok(())
    }

    /// Whether the guest is re-executing code that ran in an earlier turn.
    pub(crate) fn is_replaying(&self) -> bool {
        self.index.is_replaying()
    }

    /// Everything the turn produced since the last call; later events count
    /// as the next turn's.
    pub(crate) fn take_turn_output(&mut self) -> TurnOutput {
        let new_events = self.index.take_new_events();
        let timer_pending = self.index.timer_pending();
        self.effects.take(new_events, timer_pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::TooLarge;

    /// The start event of an execution that began at `at_ms`.
    pub(super) fn started(at_ms: u64) -> Event {
        Event::OrchestrationStarted {
            name: "O".into(),
            version: "1.0.0".into(),
            input: "in".into(),
            parent_instance: None,
            parent_id: None,
            started_at_ms: at_ms,
        }
    }

    fn scheduled(id: u64, name: &str) -> Event {
        Event::ActivityScheduled {
            id,
            name: name.into(),
            input: "x".into(),
        }
    }

    fn completed(execution_id: u64, id: u64, output: &str) -> OrchestratorMessage {
        OrchestratorMessage::ActivityCompleted {
            execution_id,
            id,
            output: output.into(),
        }
    }

    fn fresh() -> Replay {
        let mut replay = Replay::new("i", 1, Vec::new(), 1024);
        replay.append(started(1_000));
        replay
    }

    #[test]
    fn new_decisions_produce_work_and_are_not_replays() {
        let mut replay = fresh();
        assert!(!replay.is_replaying());
        let id = replay.schedule_activity("A".into(), "x".into()).unwrap();
        assert_eq!(id, 1);
        assert_eq!(replay.poll_wait(&[id]).unwrap(), None);
        let out = replay.take_turn_output();
        assert_eq!(out.new_events, vec![started(1_000), scheduled(1, "A")]);
        assert_eq!(out.activities.len(), 1);
        assert_eq!(out.activities[0].name, "A");
    }

    #[test]
    fn a_timer_is_pending_until_it_fires_or_is_cancelled() {
        let timer = Event::TimerCreated {
            id: 1,
            fire_at_ms: 5_000,
        };
        let pending = |history: Vec<Event>| Replay::new("i", 1, history, 1024).take_turn_output();
        assert!(pending(vec![started(1_000), timer.clone()]).timer_pending);
        let fired = vec![started(1_000), timer.clone(), Event::TimerFired { id: 1 }];
        assert!(!pending(fired).timer_pending);
        let cancelled = vec![started(1_000), timer, Event::TaskCancelled { id: 1 }];
        assert!(!pending(cancelled).timer_pending);
        assert!(!pending(vec![started(1_000), scheduled(2, "A")]).timer_pending);
    }

    #[test]
    fn recorded_decisions_are_matched_not_repeated() {
        let history = vec![started(1_000), scheduled(1, "A")];
        let mut replay = Replay::new("i", 1, history, 1024);
        assert!(replay.is_replaying());
        assert_eq!(replay.schedule_activity("A".into(), "x".into()).unwrap(), 1);
        let out = replay.take_turn_output();
        assert!(out.new_events.is_empty());
        assert!(
            out.activities.is_empty(),
            "a replayed decision is not scheduled again"
        );
    }

    #[test]
    fn divergence_names_position_history_and_code() {
        let history = vec![started(1_000), scheduled(1, "A")];
        let mut replay = Replay::new("i", 1, history, 1024);
        let err = replay
            .schedule_activity("B".into(), "x".into())
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("decision #1 (history event #1)"), "{text}");
        assert!(
            text.contains(r#"history holds ActivityScheduled(name: "A""#),
            "{text}"
        );
        assert!(
            text.contains(r#"asked for ActivityScheduled(name: "B""#),
            "{text}"
        );
    }

    #[test]
    fn wait_returns_the_earliest_recorded_completion() {
        let mut replay = fresh();
        let a = replay.schedule_activity("A".into(), "x".into()).unwrap();
        let b = replay.schedule_activity("B".into(), "x".into()).unwrap();
        replay.take_turn_output();
        replay.begin_turn(2_000, &[completed(1, b, "b"), completed(1, a, "a")]);
        let first = replay.poll_wait(&[a, b]).unwrap().unwrap();
        assert_eq!(first.task, b);
        assert_eq!(replay.poll_wait(&[a]).unwrap().unwrap().task, a);
        assert!(matches!(
            replay.poll_wait(&[99]),
            Err(GuestFault::UnknownTask(99))
        ));
    }

    #[test]
    fn stale_and_duplicate_completions_are_dropped() {
        let mut replay = fresh();
        let a = replay.schedule_activity("A".into(), "x".into()).unwrap();
        replay.take_turn_output();
        assert_eq!(
            replay.begin_turn(2_000, &[completed(7, a, "old execution")]),
            0
        );
        assert_eq!(
            replay.begin_turn(2_000, &[completed(1, 42, "unknown task")]),
            0
        );
        assert_eq!(replay.begin_turn(2_000, &[completed(1, a, "a")]), 1);
        assert_eq!(replay.begin_turn(3_000, &[completed(1, a, "again")]), 0);
    }

    #[test]
    fn events_are_buffered_by_name_and_order() {
        let mut replay = fresh();
        replay.take_turn_output();
        let raise = |data: &str| OrchestratorMessage::ExternalEvent {
            name: "e".into(),
            data: data.into(),
        };
        replay.begin_turn(2_000, &[raise("d1"), raise("d2")]);
        let first = replay.wait_for_event("e".into()).unwrap();
        let second = replay.wait_for_event("e".into()).unwrap();
        let third = replay.wait_for_event("e".into()).unwrap();
        assert_eq!(
            replay.poll_wait(&[second]).unwrap().unwrap().outcome,
            Outcome::Ok("d2".into())
        );
        assert_eq!(
            replay.poll_wait(&[first]).unwrap().unwrap().outcome,
            Outcome::Ok("d1".into())
        );
        assert_eq!(replay.poll_wait(&[third]).unwrap(), None);
    }

    #[test]
    fn a_cancelled_subscription_hands_its_event_on() {
        let mut replay = fresh();
        let lost = replay.wait_for_event("e".into()).unwrap();
        let mut history = replay.take_turn_output().new_events;
        let raise = OrchestratorMessage::ExternalEvent {
            name: "e".into(),
            data: "d1".into(),
        };
        replay.begin_turn(2_000, &[raise]);
        // The code stopped waiting before it received d1.
        replay.cancel_task(lost).unwrap();
        assert!(
            matches!(
                replay.poll_wait(&[lost]),
                Err(GuestFault::WaitNeverEnds { .. })
            ),
            "cancelled tasks never finish"
        );
        let next = replay.wait_for_event("e".into()).unwrap();
        let got = replay.poll_wait(&[next]).unwrap().unwrap();
        assert_eq!(got.outcome, Outcome::Ok("d1".into()));
        // The same history replays to the same assignment.
        history.extend(replay.take_turn_output().new_events);
        let mut again = Replay::new("i", 1, history, 1024);
        assert_eq!(again.wait_for_event("e".into()).unwrap(), lost);
        again.cancel_task(lost).unwrap();
        let next = again.wait_for_event("e".into()).unwrap();
        assert_eq!(
            again.poll_wait(&[next]).unwrap().unwrap().outcome,
            Outcome::Ok("d1".into())
        );
    }

    #[test]
    fn clock_and_replay_flag_follow_the_guest_through_turns() {
        // Turn 1 at t=1000 scheduled A; turn 2 at t=2000 delivered A's result.
        let history = vec![
            started(1_000),
            scheduled(1, "A"),
            Event::TurnStarted { at_ms: 2_000 },
            Event::ActivityCompleted {
                id: 1,
                output: "a".into(),
            },
            scheduled(2, "B"),
        ];
        let mut replay = Replay::new("i", 1, history, 1024);
        replay.begin_turn(3_000, &[completed(1, 2, "b")]);
        assert_eq!(replay.now_ms(), 1_000);
        assert!(replay.is_replaying());
        let a = replay.schedule_activity("A".into(), "x".into()).unwrap();
        replay.poll_wait(&[a]).unwrap().unwrap();
        assert_eq!(replay.now_ms(), 2_000);
        assert!(
            replay.is_replaying(),
            "A's result was seen in an earlier turn"
        );
        let b = replay.schedule_activity("B".into(), "x".into()).unwrap();
        replay.poll_wait(&[b]).unwrap().unwrap();
        assert_eq!(replay.now_ms(), 3_000);
        assert!(!replay.is_replaying(), "B's result is new in this turn");
    }

    #[test]
    fn oversized_payloads_are_faults() {
        let mut replay = fresh();
        let err = replay
            .schedule_activity("A".into(), "x".repeat(2048))
            .unwrap_err();
        assert!(matches!(
            err,
            GuestFault::TooLarge(TooLarge { size: 2048, .. })
        ));
    }

    #[test]
    fn long_names_and_ids_are_faults_that_name_the_limit() {
        let long = "n".repeat(257);
        let mut replay = fresh();
        let err = replay
            .schedule_activity(long.clone(), "x".into())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "[DX004] activity name \"{}…\" is 257 bytes, more than the limit of 256 bytes (max_name_bytes)",
                "n".repeat(32)
            )
        );
        let err = replay.wait_for_event(long.clone()).unwrap_err();
        assert!(
            err.to_string().starts_with("[DX004] event name \"nnnn"),
            "{err}"
        );
        let err = replay
            .schedule_sub_orchestration("C".into(), Some(long.clone()), None, "x".into())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("[DX004] orchestration version \"nnnn"),
            "{err}"
        );
        let err = replay
            .schedule_sub_orchestration("C".into(), None, Some(long.clone()), "x".into())
            .unwrap_err();
        assert!(err.to_string().contains("(max_instance_id_bytes)"), "{err}");
        let err = replay
            .start_detached(long.clone(), None, "d".into(), "x".into())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("[DX004] orchestration name \"nnnn"),
            "{err}"
        );
        let err = replay
            .start_detached("D".into(), None, long, "x".into())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("[DX004] detached instance id \"nnnn"),
            "{err}"
        );
        let fault = replay.continue_as_new("x".into(), Some("1".repeat(300)));
        assert!(
            fault
                .to_string()
                .starts_with("[DX004] continue-as-new version \"1111"),
            "{fault}"
        );
        let out = replay.take_turn_output();
        assert!(out.activities.is_empty(), "nothing refused is scheduled");
        assert!(out.continue_as_new.is_none());
    }

    #[test]
    fn set_limits_replaces_every_limit() {
        let mut replay = fresh();
        replay.set_limits(TextLimits {
            max_name_bytes: 3,
            ..TextLimits::default()
        });
        assert!(replay.schedule_activity("abc".into(), "x".into()).is_ok());
        assert!(replay.schedule_activity("abcd".into(), "x".into()).is_err());
        assert_eq!(replay.limits().max_payload_bytes, 1 << 20);
    }

    #[test]
    fn an_out_of_range_timer_is_a_fault_at_once() {
        let mut replay = fresh();
        let err = replay.schedule_timer(u64::MAX).unwrap_err();
        assert!(matches!(err, GuestFault::DelayOutOfRange(_)), "{err:?}");
        assert!(err.to_string().contains("out of range"), "{err}");
        let id = replay.schedule_timer(crate::limits::MAX_DELAY_MS).unwrap();
        assert_eq!(id, 1, "the refused timer took no task id");
    }

    #[test]
    fn an_oversized_returned_error_is_a_fault_and_a_fault_reason_is_cut() {
        let mut replay = fresh();
        replay.set_limits(TextLimits {
            max_error_bytes: 100,
            ..TextLimits::default()
        });
        let err = replay.fail("e".repeat(101), true).unwrap_err();
        assert!(
            err.to_string()
                .contains("orchestration error is 101 bytes, more than the limit of 100 bytes (max_error_bytes)"),
            "{err}"
        );
        replay.fail("r".repeat(1000), false).unwrap();
        let (_, reason) = replay.take_turn_output().status.unwrap();
        assert!(reason.len() <= 100, "{}", reason.len());
        assert!(reason.contains("cut: 1000 bytes"), "{reason}");
    }

    #[test]
    fn a_wait_that_can_never_end_is_a_fault() {
        let mut replay = fresh();
        assert!(matches!(
            replay.poll_wait(&[]),
            Err(GuestFault::WaitOnNothing)
        ));
        let a = replay.schedule_activity("A".into(), "x".into()).unwrap();
        let b = replay.schedule_activity("B".into(), "x".into()).unwrap();
        replay.cancel_task(a).unwrap();
        // One task that can still finish is enough: the guest parks.
        assert_eq!(replay.poll_wait(&[a, b]).unwrap(), None);
        let err = replay.poll_wait(&[a]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "[DX003] the orchestration waited only on tasks that can never finish again (task 1 was cancelled), so the wait could never end"
        );
        replay.take_turn_output();
        replay.begin_turn(2_000, &[completed(1, b, "b")]);
        assert_eq!(replay.poll_wait(&[b]).unwrap().unwrap().task, b);
        let err = replay.poll_wait(&[b]).unwrap_err();
        assert!(
            err.to_string().contains("task 2 was already received"),
            "{err}"
        );
        assert!(matches!(
            replay.poll_wait(&[a, b]),
            Err(GuestFault::WaitNeverEnds { .. })
        ));
    }

    #[test]
    fn wait_any_hands_back_watched_completions_in_history_order() {
        let mut replay = fresh();
        let a = replay.schedule_activity("A".into(), "x".into()).unwrap();
        let b = replay.schedule_activity("B".into(), "x".into()).unwrap();
        let c = replay.schedule_activity("C".into(), "x".into()).unwrap();
        replay.watch(&[a, b]).unwrap();
        replay.take_turn_output();
        // c finished first, but nobody waits on it; then b, then a.
        replay.begin_turn(
            2_000,
            &[
                completed(1, c, "c"),
                completed(1, b, "b"),
                completed(1, a, "a"),
            ],
        );
        assert_eq!(replay.poll_wait_any().unwrap().unwrap().task, b);
        assert_eq!(replay.poll_wait_any().unwrap().unwrap().task, a);
        // Nothing watched is left: the next wait could never end.
        assert!(matches!(
            replay.poll_wait_any(),
            Err(GuestFault::WaitOnNothing)
        ));
        // Watching c later hands its completion over.
        replay.watch(&[c]).unwrap();
        assert_eq!(replay.poll_wait_any().unwrap().unwrap().task, c);
    }

    #[test]
    fn wait_any_parks_while_a_watched_task_is_open_and_forgets_cancelled_ones() {
        let mut replay = fresh();
        let a = replay.schedule_activity("A".into(), "x".into()).unwrap();
        let t = replay.schedule_timer(60_000).unwrap();
        replay.watch(&[a, t]).unwrap();
        assert_eq!(replay.poll_wait_any().unwrap(), None);
        replay.cancel_task(t).unwrap();
        replay.take_turn_output();
        replay.begin_turn(2_000, &[completed(1, a, "a")]);
        assert_eq!(replay.poll_wait_any().unwrap().unwrap().task, a);
        assert!(replay.poll_wait_any().is_err());
        assert!(matches!(
            replay.watch(&[99]),
            Err(GuestFault::UnknownTask(99))
        ));
    }

    #[test]
    fn a_completion_is_handed_over_once() {
        let mut replay = fresh();
        let a = replay.schedule_activity("A".into(), "x".into()).unwrap();
        let b = replay.schedule_activity("B".into(), "x".into()).unwrap();
        replay.take_turn_output();
        replay.begin_turn(2_000, &[completed(1, a, "a")]);
        assert_eq!(replay.poll_wait(&[a, b]).unwrap().unwrap().task, a);
        // a's completion is earlier in history, but already received.
        assert_eq!(replay.poll_wait(&[a, b]).unwrap(), None);
    }

    #[test]
    fn a_task_in_history_is_unknown_until_the_guest_creates_it_again() {
        let history = vec![started(1_000), scheduled(1, "A"), scheduled(2, "B")];
        let mut replay = Replay::new("i", 1, history.clone(), 1024);
        assert!(matches!(
            replay.poll_wait(&[2]),
            Err(GuestFault::UnknownTask(2))
        ));
        let mut replay = Replay::new("i", 1, history, 1024);
        assert!(matches!(
            replay.cancel_task(1),
            Err(GuestFault::UnknownTask(1))
        ));
    }

    #[test]
    fn a_cancel_later_in_history_does_not_count_before_the_guest_makes_it() {
        // The guest waited on A and B, received A, then cancelled B.
        let history = vec![
            started(1_000),
            scheduled(1, "A"),
            scheduled(2, "B"),
            Event::TurnStarted { at_ms: 2_000 },
            Event::ActivityCompleted {
                id: 1,
                output: "a".into(),
            },
            Event::TaskCancelled { id: 2 },
        ];
        let mut replay = Replay::new("i", 1, history, 1024);
        let a = replay.schedule_activity("A".into(), "x".into()).unwrap();
        let b = replay.schedule_activity("B".into(), "x".into()).unwrap();
        // B is not cancelled yet where the guest is: waiting on it is fine.
        assert_eq!(replay.poll_wait(&[b]).unwrap(), None);
        assert_eq!(replay.poll_wait(&[a, b]).unwrap().unwrap().task, a);
        replay.cancel_task(b).unwrap();
        assert!(replay.poll_wait(&[b]).is_err());
    }
}
