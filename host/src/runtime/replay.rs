//! The replay engine: matches an orchestration's decisions against its
//! history, answers its waits from recorded completions, and collects what a
//! turn adds. Pure bookkeeping; the sandbox calls it from the context imports.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::history::{ActivityWork, Event, OrchestratorMessage};
use crate::limits::{TextKind, TextLimits, check_delay};
use crate::providers::{InstanceStart, InstanceStatus, NewInstance, OutgoingMessage};
use crate::sandbox::{Completion, GuestFault, Outcome, TurnClock};

/// A map keyed by task id.
type TaskIdMap<V> = HashMap<u64, V, BuildHasherDefault<TaskIdHasher>>;

/// A completion recorded for a task.
#[derive(Debug, Clone, Copy)]
struct Recorded {
    /// Its position in history.
    pos: usize,
    /// Whether `wait` has handed it to the guest (a completion is handed
    /// over once).
    taken: bool,
}

impl Recorded {
    fn at(pos: usize) -> Self {
        Recorded { pos, taken: false }
    }
}

/// Hashes a task id with one multiplication instead of SipHash: every `wait`
/// looks up each task the guest waits on, thousands for a large fan-out. Ids
/// are handed out by the host, so nobody can pick colliding ones.
#[derive(Default)]
struct TaskIdHasher(u64);

impl Hasher for TaskIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The kind of a task, known from its scheduling decision.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Task {
    Activity,
    Timer,
    SubOrchestration,
    /// A subscription to event `name`.
    Event(String),
}

/// What a turn produced, ready to commit.
#[derive(Debug, Default)]
pub(crate) struct TurnOutput {
    /// Events appended since the last commit.
    pub(crate) new_events: Vec<Event>,
    /// Activity work to enqueue.
    pub(crate) activities: Vec<ActivityWork>,
    /// Orchestrator messages to enqueue (timers).
    pub(crate) messages: Vec<OutgoingMessage>,
    /// Children and detached orchestrations to create.
    pub(crate) new_instances: Vec<InstanceStart>,
    /// Set when the execution continued as new: the message that starts the next one.
    pub(crate) continue_as_new: Option<OrchestratorMessage>,
    /// The instance's state after the turn.
    pub(crate) status: Option<(InstanceStatus, String)>,
    /// The custom status, when the turn set it (`Some(None)` clears it).
    pub(crate) custom_status: Option<Option<String>>,
    /// Whether a timer of the execution is still to fire.
    pub(crate) timer_pending: bool,
}

/// One execution's history and the guest's position in it.
pub(crate) struct Replay {
    instance_id: String,
    execution_id: u64,
    history: Vec<Event>,
    /// Events already committed; the rest belong to the current turn.
    committed_len: usize,
    /// Positions of decision events, in order.
    decisions: Vec<usize>,
    next_decision: usize,
    tasks: TaskIdMap<Task>,
    completions: TaskIdMap<Recorded>,
    /// Per event name: subscriptions still waiting, oldest first.
    event_waiters: HashMap<String, VecDeque<u64>>,
    /// Per event name: positions of events no subscription took, oldest first.
    event_backlog: HashMap<String, VecDeque<usize>>,
    /// Cancelled tasks, each with the ordinal of its cancel decision: the
    /// guest has cancelled it once it has made that many decisions.
    cancelled: TaskIdMap<usize>,
    /// Timers created and neither fired nor cancelled.
    open_timers: HashSet<u64, BuildHasherDefault<TaskIdHasher>>,
    /// (position, time) of every turn start, in order.
    turn_marks: Vec<(usize, u64)>,
    /// The furthest history position the guest has reached.
    cursor: usize,
    replaying: Arc<AtomicBool>,
    clock: TurnClock,
    guid_seed: u64,
    guids: u64,
    randoms: u64,
    custom_status: Option<Option<String>>,
    limits: TextLimits,
    activities: Vec<ActivityWork>,
    messages: Vec<OutgoingMessage>,
    new_instances: Vec<InstanceStart>,
    continue_as_new: Option<OrchestratorMessage>,
    status: Option<(InstanceStatus, String)>,
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
            history: Vec::with_capacity(committed.len() + 8),
            committed_len: committed.len(),
            decisions: Vec::new(),
            next_decision: 0,
            tasks: TaskIdMap::default(),
            completions: TaskIdMap::default(),
            event_waiters: HashMap::new(),
            event_backlog: HashMap::new(),
            cancelled: TaskIdMap::default(),
            open_timers: HashSet::default(),
            turn_marks: Vec::new(),
            cursor: 0,
            replaying: Arc::new(AtomicBool::new(false)),
            clock: TurnClock::default(),
            guid_seed: seed(instance_id, execution_id),
            guids: 0,
            randoms: 0,
            custom_status: None,
            limits: TextLimits {
                max_payload_bytes: max_payload,
                ..TextLimits::default()
            },
            activities: Vec::new(),
            messages: Vec::new(),
            new_instances: Vec::new(),
            continue_as_new: None,
            status: None,
        };
        for event in committed {
            replay.push(event);
        }
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
        self.replaying.clone()
    }

    /// The clock the guest's WASI clocks read.
    pub(crate) fn clock(&self) -> TurnClock {
        self.clock.clone()
    }

    /// Seed for the guest's WASI randomness.
    pub(crate) fn random_seed(&self) -> u64 {
        self.guid_seed.rotate_left(32)
    }

    /// The instance this execution belongs to.
    pub(crate) fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Append a new event of the current turn (the start event of a new execution).
    pub(crate) fn append(&mut self, event: Event) {
        self.push(event);
        if self.history.len() == 1 {
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
        self.push(Event::TurnStarted { at_ms: now_ms });
        let n = admitted.len();
        for event in admitted {
            self.push(event);
        }
        n
    }

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
            && self.tasks.get(&id) == Some(&kind)
            && !self.completions.contains_key(&id)
            && !self.cancelled.contains_key(&id);
        if !expected {
            tracing::debug!(instance = %self.instance_id, id, "dropping a stale or duplicate completion");
            return None;
        }
        Some(event)
    }

    fn push(&mut self, event: Event) {
        let pos = self.history.len();
        match &event {
            Event::OrchestrationStarted { started_at_ms, .. } => {
                self.turn_marks.push((pos, *started_at_ms));
            }
            Event::TurnStarted { at_ms } => self.turn_marks.push((pos, *at_ms)),
            Event::ActivityScheduled { id, .. } => {
                self.tasks.insert(*id, Task::Activity);
            }
            Event::TimerCreated { id, .. } => {
                self.tasks.insert(*id, Task::Timer);
                self.open_timers.insert(*id);
            }
            Event::SubOrchestrationScheduled { id, .. } => {
                self.tasks.insert(*id, Task::SubOrchestration);
            }
            Event::EventSubscribed { id, name } => {
                self.tasks.insert(*id, Task::Event(name.clone()));
                // Buffered: an event that arrived earlier is this subscription's.
                match self
                    .event_backlog
                    .get_mut(name)
                    .and_then(VecDeque::pop_front)
                {
                    Some(event_pos) => {
                        self.completions.insert(*id, Recorded::at(event_pos));
                    }
                    None => self
                        .event_waiters
                        .entry(name.clone())
                        .or_default()
                        .push_back(*id),
                }
            }
            Event::TaskCancelled { id } => {
                self.open_timers.remove(id);
                // Its ordinal among decisions: it is pushed below.
                self.index_cancel(*id, self.decisions.len());
            }
            Event::ActivityCompleted { id, .. }
            | Event::ActivityFailed { id, .. }
            | Event::SubOrchestrationCompleted { id, .. }
            | Event::SubOrchestrationFailed { id, .. }
            | Event::TimerFired { id } => {
                self.open_timers.remove(id);
                self.completions.insert(*id, Recorded::at(pos));
            }
            Event::EventRaised { name, .. } => self.give_event(name, pos),
            Event::OrchestrationStartedDetached { .. }
            | Event::ContinuedAsNew { .. }
            | Event::OrchestrationCompleted { .. }
            | Event::OrchestrationFailed { .. }
            | Event::OrchestrationCancelled { .. } => {}
        }
        if event.is_decision() {
            self.decisions.push(pos);
        }
        self.history.push(event);
    }

    /// Hand the event at `pos` to the oldest waiting subscription to `name`,
    /// or keep it for the next one.
    fn give_event(&mut self, name: &str, pos: usize) {
        match self
            .event_waiters
            .get_mut(name)
            .and_then(VecDeque::pop_front)
        {
            Some(waiter) => {
                self.completions.insert(waiter, Recorded::at(pos));
            }
            None => {
                let backlog = self.event_backlog.entry(name.to_string()).or_default();
                // Keep arrival order when a cancelled subscription returns an event.
                let at = backlog.partition_point(|p| *p < pos);
                backlog.insert(at, pos);
            }
        }
    }

    /// Record that task `id` was cancelled by decision ordinal `decision`. A
    /// cancelled subscription leaves the queue, and returns its event (the
    /// code never received it).
    fn index_cancel(&mut self, id: u64, decision: usize) {
        self.cancelled.entry(id).or_insert(decision);
        let Some(Task::Event(name)) = self.tasks.get(&id).cloned() else {
            return;
        };
        if let Some(waiters) = self.event_waiters.get_mut(&name) {
            waiters.retain(|w| *w != id);
        }
        if let Some(recorded) = self.completions.remove(&id) {
            self.give_event(&name, recorded.pos);
        }
    }

    /// Move the guest's position forward to `pos`, updating its clock and
    /// whether it is replaying.
    fn advance(&mut self, pos: usize) {
        self.cursor = self.cursor.max(pos);
        let idx = self.turn_marks.partition_point(|(p, _)| *p <= self.cursor);
        if let Some((_, at_ms)) = idx.checked_sub(1).and_then(|i| self.turn_marks.get(i)) {
            self.clock.set_ms(*at_ms);
        }
        self.replaying
            .store(self.cursor < self.committed_len, Ordering::Relaxed);
    }

    /// Record decision `event` (whose id is the next task id), or check it
    /// against history when replaying.
    fn decide(&mut self, event: Event) -> Result<(), GuestFault> {
        let k = self.next_decision;
        self.next_decision += 1;
        if let Some(&pos) = self.decisions.get(k) {
            let recorded = &self.history[pos];
            if *recorded != event {
                return Err(GuestFault::nondeterminism(k, pos, recorded, &event));
            }
            self.advance(pos);
            return Ok(());
        }
        match &event {
            Event::ActivityScheduled { id, name, input } => self.activities.push(ActivityWork {
                instance: self.instance_id.clone(),
                execution_id: self.execution_id,
                id: *id,
                name: name.clone(),
                input: input.clone(),
            }),
            Event::TimerCreated { id, fire_at_ms } => self.messages.push(OutgoingMessage {
                instance_id: self.instance_id.clone(),
                message: OrchestratorMessage::TimerFired {
                    execution_id: self.execution_id,
                    id: *id,
                },
                visible_at_ms: *fire_at_ms,
            }),
            Event::SubOrchestrationScheduled {
                id,
                name,
                version,
                instance_id,
                input,
            } => {
                let taken = OrchestratorMessage::SubOrchestrationFailed {
                    execution_id: self.execution_id,
                    id: *id,
                    error: format!("cannot start child: instance '{instance_id}' already exists"),
                };
                self.new_instances.push(InstanceStart {
                    instance: NewInstance {
                        instance_id: instance_id.clone(),
                        orchestration_name: name.clone(),
                        version: version.clone(),
                        input: input.clone(),
                        parent_instance: Some(self.instance_id.clone()),
                        parent_id: Some(*id),
                        parent_execution_id: Some(self.execution_id),
                        visible_at_ms: self.now_ms(),
                    },
                    if_exists: Some(OutgoingMessage {
                        instance_id: self.instance_id.clone(),
                        message: taken,
                        visible_at_ms: self.now_ms(),
                    }),
                });
            }
            Event::OrchestrationStartedDetached {
                name,
                version,
                instance_id,
                input,
                ..
            } => self.new_instances.push(InstanceStart {
                instance: NewInstance {
                    instance_id: instance_id.clone(),
                    orchestration_name: name.clone(),
                    version: version.clone(),
                    input: input.clone(),
                    parent_instance: None,
                    parent_id: None,
                    parent_execution_id: None,
                    visible_at_ms: self.now_ms(),
                },
                if_exists: None,
            }),
            Event::TaskCancelled { id } => {
                let child = self.history.iter().find_map(|e| match e {
                    Event::SubOrchestrationScheduled {
                        id: c, instance_id, ..
                    } if c == id => Some(instance_id.clone()),
                    _ => None,
                });
                if let Some(child) = child
                    && !self.completions.contains_key(id)
                {
                    self.messages.push(OutgoingMessage {
                        instance_id: child,
                        message: OrchestratorMessage::CancelOrchestration {
                            reason: format!(
                                "the parent '{}' stopped waiting for it",
                                self.instance_id
                            ),
                        },
                        visible_at_ms: self.now_ms(),
                    });
                }
            }
            Event::ContinuedAsNew { input, version } => {
                self.continue_as_new = Some(OrchestratorMessage::ContinueAsNew {
                    from_execution_id: self.execution_id,
                    input: input.clone(),
                    version: version.clone(),
                    carried_events: self.unconsumed_events(),
                });
            }
            _ => {}
        }
        let pos = self.history.len();
        self.push(event);
        self.advance(pos);
        Ok(())
    }

    fn next_task_id(&self) -> u64 {
        self.next_decision as u64 + 1
    }

    /// Refuse `value`, described as `what`, if it exceeds the limit of `kind`.
    fn check(&self, kind: TextKind, what: &'static str, value: &str) -> Result<(), GuestFault> {
        Ok(self.limits.check(kind, what, value)?)
    }

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

    /// Whether the guest has created task `task` by now (history may hold
    /// tasks it has yet to create again while it replays).
    fn created(&self, task: u64) -> bool {
        task <= self.next_decision as u64 && self.tasks.contains_key(&task)
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
        // task id starts a different child.
        let instance_id = instance_id
            .unwrap_or_else(|| format!("{}::{}::{id}", self.instance_id, self.execution_id));
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

    /// The guest stops waiting for `task`. A running child is cancelled too.
    pub(crate) fn cancel_task(&mut self, task: u64) -> Result<(), GuestFault> {
        if !self.created(task) {
            return Err(GuestFault::UnknownTask(task));
        }
        self.decide(Event::TaskCancelled { id: task })
    }

    /// External events that arrived but no subscription took, in arrival order.
    fn unconsumed_events(&self) -> Vec<(String, String)> {
        let mut carried: Vec<(usize, String, String)> = Vec::new();
        for (name, positions) in &self.event_backlog {
            for &pos in positions {
                if let Some(Event::EventRaised { data, .. }) = self.history.get(pos) {
                    carried.push((pos, name.clone(), data.clone()));
                }
            }
        }
        carried.sort_by_key(|(pos, _, _)| *pos);
        carried.into_iter().map(|(_, n, d)| (n, d)).collect()
    }

    /// The earliest completion among `tasks` not yet handed to the guest, or
    /// `None` when the guest must wait for the next turn. A wait that could
    /// never end is a fault: on no tasks, on a task the guest never created,
    /// or only on tasks it cancelled or whose completion it already received.
    pub(crate) fn poll_wait(&mut self, tasks: &[u64]) -> Result<Option<Completion>, GuestFault> {
        if tasks.is_empty() {
            return Err(GuestFault::WaitOnNothing);
        }
        let mut best: Option<(usize, u64)> = None;
        let mut open = false;
        for &task in tasks {
            if !self.created(task) {
                return Err(GuestFault::UnknownTask(task));
            }
            // Cancelled in history, perhaps by a decision the guest has yet
            // to make again: only the guest's own cancels count.
            if let Some(&decision) = self.cancelled.get(&task)
                && decision < self.next_decision
            {
                continue;
            }
            match self.completions.get(&task) {
                Some(recorded) if recorded.taken => {}
                Some(recorded) => {
                    open = true;
                    if best.is_none_or(|(b, _)| recorded.pos < b) {
                        best = Some((recorded.pos, task));
                    }
                }
                None => open = true,
            }
        }
        if !open {
            return Err(GuestFault::WaitNeverEnds {
                tasks: self.why_finished(tasks),
            });
        }
        let Some((pos, task)) = best else {
            return Ok(None);
        };
        if let Some(recorded) = self.completions.get_mut(&task) {
            recorded.taken = true;
        }
        self.advance(pos);
        let outcome = match &self.history[pos] {
            Event::ActivityCompleted { output, .. } => Outcome::Ok(output.clone()),
            Event::ActivityFailed { error, .. } => Outcome::Err(error.clone()),
            Event::SubOrchestrationCompleted { output, .. } => Outcome::Ok(output.clone()),
            Event::SubOrchestrationFailed { error, .. } => Outcome::Err(error.clone()),
            Event::EventRaised { data, .. } => Outcome::Ok(data.clone()),
            _ => Outcome::Ok(String::new()),
        };
        Ok(Some(Completion { task, outcome }))
    }

    /// Why each of `tasks` (each created, cancelled or taken) can never
    /// finish again, for a fault; the first few only.
    fn why_finished(&self, tasks: &[u64]) -> String {
        const SHOWN: usize = 8;
        let mut reasons: Vec<String> = tasks
            .iter()
            .take(SHOWN)
            .map(|task| match self.completions.get(task) {
                Some(recorded) if recorded.taken => {
                    format!("task {task} was already received")
                }
                _ => format!("task {task} was cancelled"),
            })
            .collect();
        if tasks.len() > SHOWN {
            reasons.push(format!("and {} more", tasks.len() - SHOWN));
        }
        reasons.join(", ")
    }

    /// The orchestration returned `output`.
    pub(crate) fn complete(&mut self, output: String) -> Result<(), GuestFault> {
        self.check_payload("orchestration output", &output)?;
        self.decide(Event::OrchestrationCompleted {
            output: output.clone(),
        })?;
        self.status = Some((InstanceStatus::Completed, output));
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
        if returned_by_code && let Some(&pos) = self.decisions.get(self.next_decision) {
            let actual = Event::OrchestrationFailed { error };
            return Err(GuestFault::nondeterminism(
                self.next_decision,
                pos,
                &self.history[pos],
                &actual,
            ));
        }
        let error = if returned_by_code {
            error
        } else {
            // A faulted guest's last decisions are not acted on.
            self.activities.clear();
            self.messages.clear();
            self.new_instances.clear();
            self.continue_as_new = None;
            self.limits.truncate(TextKind::Error, &error).into_owned()
        };
        self.push(Event::OrchestrationFailed {
            error: error.clone(),
        });
        self.status = Some((InstanceStatus::Failed, error));
        Ok(())
    }

    /// Deterministic time: when the turn the guest is in began.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// A deterministic UUID (version 4 layout) from the execution's seed.
    pub(crate) fn new_guid(&mut self) -> String {
        self.guids += 1;
        let hi = splitmix64(self.guid_seed ^ self.guids.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let lo = splitmix64(hi ^ self.guids);
        let bytes =
            ((u128::from(hi) << 64) | u128::from(lo)) & !(0xF000u128 << 64) & !(0xC0u128 << 56);
        let bytes = bytes | (0x4000u128 << 64) | (0x80u128 << 56);
        let h = format!("{bytes:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// A deterministic random number from the execution's seed.
    pub(crate) fn random_u64(&mut self) -> u64 {
        self.randoms += 1;
        splitmix64(
            self.guid_seed.rotate_left(13) ^ self.randoms.wrapping_mul(0xD1B5_4A32_D192_ED03),
        )
    }

    /// The guest publishes a custom status. Replayed calls set it again to the
    /// same values, so the last call of a turn is what clients see.
    pub(crate) fn set_custom_status(&mut self, status: Option<String>) -> Result<(), GuestFault> {
        if let Some(s) = &status {
            self.check_payload("custom status", s)?;
        }
        self.custom_status = Some(status);
        Ok(())
    }

    /// Whether the guest is re-executing code that ran in an earlier turn.
    pub(crate) fn is_replaying(&self) -> bool {
        self.replaying.load(Ordering::Relaxed)
    }

    /// Everything the turn produced since the last call; later events count
    /// as the next turn's.
    pub(crate) fn take_turn_output(&mut self) -> TurnOutput {
        let new_events = self.history[self.committed_len..].to_vec();
        self.committed_len = self.history.len();
        TurnOutput {
            new_events,
            activities: std::mem::take(&mut self.activities),
            messages: std::mem::take(&mut self.messages),
            new_instances: std::mem::take(&mut self.new_instances),
            continue_as_new: self.continue_as_new.take(),
            status: self.status.take(),
            custom_status: self.custom_status.take(),
            timer_pending: !self.open_timers.is_empty(),
        }
    }
}

fn seed(instance_id: &str, execution_id: u64) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(instance_id.as_bytes());
    hasher.update(execution_id.to_le_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::TooLarge;

    fn started(at_ms: u64) -> Event {
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
    fn guids_are_stable_per_execution_and_distinct() {
        let mut one = fresh();
        let mut two = fresh();
        let (a, b) = (one.new_guid(), one.new_guid());
        assert_ne!(a, b);
        assert_eq!(a, two.new_guid());
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "version 4 layout: {a}");
        let mut other = Replay::new("j", 1, Vec::new(), 1024);
        assert_ne!(a, other.new_guid());
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
                "activity name \"{}…\" is 257 bytes, more than the limit of 256 bytes (max_name_bytes)",
                "n".repeat(32)
            )
        );
        let err = replay.wait_for_event(long.clone()).unwrap_err();
        assert!(err.to_string().starts_with("event name \"nnnn"), "{err}");
        let err = replay
            .schedule_sub_orchestration("C".into(), Some(long.clone()), None, "x".into())
            .unwrap_err();
        assert!(
            err.to_string().starts_with("orchestration version \"nnnn"),
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
            err.to_string().starts_with("orchestration name \"nnnn"),
            "{err}"
        );
        let err = replay
            .start_detached("D".into(), None, long, "x".into())
            .unwrap_err();
        assert!(
            err.to_string().starts_with("detached instance id \"nnnn"),
            "{err}"
        );
        let fault = replay.continue_as_new("x".into(), Some("1".repeat(300)));
        assert!(
            fault
                .to_string()
                .starts_with("continue-as-new version \"1111"),
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
            "the orchestration waited only on tasks that can never finish again (task 1 was cancelled), so the wait could never end"
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
