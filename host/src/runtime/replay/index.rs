//! The history of one execution, indexed for replay, and the guest's cursor
//! in it: which tasks history records, which completions and events answer
//! them, which decisions cancelled them, and how far the guest has come.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::history::Event;
use crate::sandbox::GuestFault;

/// A map keyed by task id.
pub(super) type TaskIdMap<V> = HashMap<u64, V, BuildHasherDefault<TaskIdHasher>>;

/// A set of task ids.
pub(super) type TaskIdSet = HashSet<u64, BuildHasherDefault<TaskIdHasher>>;

/// Hashes a task id with one multiplication instead of SipHash: every `wait`
/// looks up each task the guest waits on, thousands for a large fan-out. Ids
/// are handed out by the host, so nobody can pick colliding ones.
#[derive(Default)]
pub(super) struct TaskIdHasher(u64);

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

/// The kind of a task, known from its scheduling decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Task {
    /// An activity.
    Activity,
    /// A timer.
    Timer,
    /// A child orchestration.
    SubOrchestration,
    /// A subscription to event `name`.
    Event(String),
}

/// One execution's history, indexed, and the guest's position in it.
pub(super) struct HistoryIndex {
    history: Vec<Event>,
    /// Events already committed; the rest belong to the current turn.
    committed_len: usize,
    /// Positions of decision events, in order.
    decisions: Vec<usize>,
    tasks: TaskIdMap<Task>,
    completions: TaskIdMap<Recorded>,
    /// (position, task) of every completion not yet handed to the guest, in
    /// history order: `wait-any` takes the first whose task is watched.
    ready: BTreeSet<(usize, u64)>,
    /// Tasks the guest waits on through `wait-any`, neither received nor
    /// cancelled.
    watched: TaskIdSet,
    /// Per event name: subscriptions still waiting, oldest first.
    event_waiters: HashMap<String, VecDeque<u64>>,
    /// Per event name: positions of events no subscription took, oldest first.
    event_backlog: HashMap<String, VecDeque<usize>>,
    /// Cancelled tasks, each with the ordinal of its cancel decision: the
    /// guest has cancelled it once it has made that many decisions.
    cancelled: TaskIdMap<usize>,
    /// Timers created and neither fired nor cancelled.
    open_timers: TaskIdSet,
    /// (position, time) of every turn start, in order.
    turn_marks: Vec<(usize, u64)>,
    /// The furthest history position the guest has reached.
    cursor: usize,
    replaying: Arc<AtomicBool>,
}

impl HistoryIndex {
    /// The index of `committed` history, the cursor at its start.
    pub(super) fn new(committed: Vec<Event>) -> Self {
        let mut index = HistoryIndex {
            history: Vec::with_capacity(committed.len() + 8),
            committed_len: committed.len(),
            decisions: Vec::new(),
            tasks: TaskIdMap::default(),
            completions: TaskIdMap::default(),
            ready: BTreeSet::new(),
            watched: HashSet::default(),
            event_waiters: HashMap::new(),
            event_backlog: HashMap::new(),
            cancelled: TaskIdMap::default(),
            open_timers: HashSet::default(),
            turn_marks: Vec::new(),
            cursor: 0,
            replaying: Arc::new(AtomicBool::new(false)),
        };
        for event in committed {
            index.push(event);
        }
        index
    }

    /// How many events history holds.
    pub(super) fn len(&self) -> usize {
        self.history.len()
    }

    /// The event at `pos`.
    pub(super) fn event(&self, pos: usize) -> Option<&Event> {
        self.history.get(pos)
    }

    /// The position of the decision of ordinal `k` (from 0), if history
    /// holds that many.
    pub(super) fn decision(&self, k: usize) -> Option<usize> {
        self.decisions.get(k).copied()
    }

    /// The kind of task `id`, if history has scheduled it.
    pub(super) fn task(&self, id: u64) -> Option<&Task> {
        self.tasks.get(&id)
    }

    /// Whether history holds a completion (or an event) for task `id`.
    pub(super) fn is_completed(&self, id: u64) -> bool {
        self.completions.contains_key(&id)
    }

    /// Whether history holds a cancel of task `id`.
    pub(super) fn is_cancelled(&self, id: u64) -> bool {
        self.cancelled.contains_key(&id)
    }

    /// Whether a timer of the execution is still to fire.
    pub(super) fn timer_pending(&self) -> bool {
        !self.open_timers.is_empty()
    }

    /// The flag the guest's output streams read to drop replayed lines.
    pub(super) fn replaying_flag(&self) -> Arc<AtomicBool> {
        self.replaying.clone()
    }

    /// Whether the guest's cursor is before the committed end.
    pub(super) fn is_replaying(&self) -> bool {
        self.replaying.load(Ordering::Relaxed)
    }

    /// Append `event` and index it.
    pub(super) fn push(&mut self, event: Event) {
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
                    Some(event_pos) => self.record(*id, event_pos),
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
                self.record(*id, pos);
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
            Some(waiter) => self.record(waiter, pos),
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
            self.ready.remove(&(recorded.pos, id));
            self.give_event(&name, recorded.pos);
        }
    }

    /// Record that the event at `pos` completes task `id`.
    fn record(&mut self, id: u64, pos: usize) {
        self.completions.insert(id, Recorded::at(pos));
        self.ready.insert((pos, id));
    }

    /// Mark the completion of `task`, at `pos`, as handed to the guest.
    fn hand_over(&mut self, pos: usize, task: u64) {
        if let Some(recorded) = self.completions.get_mut(&task) {
            recorded.taken = true;
        }
        self.ready.remove(&(pos, task));
        self.watched.remove(&task);
    }

    /// The guest, having made `decisions_made` decisions, waits on `tasks`
    /// through `wait-any` from now on, until each is received or
    /// cancelled. A task it never created is a fault; one already received
    /// or cancelled is not watched.
    pub(super) fn watch(&mut self, tasks: &[u64], decisions_made: usize) -> Result<(), GuestFault> {
        for &task in tasks {
            if !self.created(task, decisions_made) {
                return Err(GuestFault::UnknownTask(task));
            }
            let cancelled = self
                .cancelled
                .get(&task)
                .is_some_and(|&decision| decision < decisions_made);
            let received = self.completions.get(&task).is_some_and(|r| r.taken);
            if !cancelled && !received {
                self.watched.insert(task);
            }
        }
        Ok(())
    }

    /// The guest cancelled `task`: it is no longer watched, and its
    /// completion, if any, will never be handed over.
    pub(super) fn unwatch(&mut self, task: u64) {
        self.watched.remove(&task);
        if let Some(recorded) = self.completions.get(&task) {
            self.ready.remove(&(recorded.pos, task));
        }
    }

    /// Take the earliest completion of a watched task: its position and
    /// task, or `None` when the guest must wait for the next turn. With
    /// nothing watched, the wait could never end: a fault. Completions of
    /// tasks created later in history sort after any the guest can take
    /// (a task's decision comes after every completion handed over before
    /// it), so the search stops at the first watched task: a wait costs the
    /// same however many tasks are open.
    pub(super) fn take_next(&mut self) -> Result<Option<(usize, u64)>, GuestFault> {
        if self.watched.is_empty() {
            return Err(GuestFault::WaitOnNothing);
        }
        let next = self
            .ready
            .iter()
            .find(|(_, task)| self.watched.contains(task))
            .copied();
        if let Some((pos, task)) = next {
            self.hand_over(pos, task);
        }
        Ok(next)
    }

    /// Move the guest's cursor forward to `pos` and update whether it is
    /// replaying. Returns when the turn the cursor is in began.
    pub(super) fn advance(&mut self, pos: usize) -> Option<u64> {
        self.cursor = self.cursor.max(pos);
        self.replaying
            .store(self.cursor < self.committed_len, Ordering::Relaxed);
        let idx = self.turn_marks.partition_point(|(p, _)| *p <= self.cursor);
        idx.checked_sub(1)
            .and_then(|i| self.turn_marks.get(i))
            .map(|(_, at_ms)| *at_ms)
    }

    /// Whether the guest has created task `task` by now, having made
    /// `decisions_made` decisions (history may hold tasks it has yet to
    /// create again while it replays).
    pub(super) fn created(&self, task: u64, decisions_made: usize) -> bool {
        task <= decisions_made as u64 && self.tasks.contains_key(&task)
    }

    /// Take the earliest completion among `tasks` not yet handed to the
    /// guest, which has made `decisions_made` decisions: its position and
    /// task, or `None` when the guest must wait for the next turn. A wait
    /// that could never end is a fault: on no tasks, on a task the guest
    /// never created, or only on tasks it cancelled or whose completion it
    /// already received.
    pub(super) fn take_earliest(
        &mut self,
        tasks: &[u64],
        decisions_made: usize,
    ) -> Result<Option<(usize, u64)>, GuestFault> {
        if tasks.is_empty() {
            return Err(GuestFault::WaitOnNothing);
        }
        let mut best: Option<(usize, u64)> = None;
        let mut open = false;
        for &task in tasks {
            if !self.created(task, decisions_made) {
                return Err(GuestFault::UnknownTask(task));
            }
            // Cancelled in history, perhaps by a decision the guest has yet
            // to make again: only the guest's own cancels count.
            if let Some(&decision) = self.cancelled.get(&task)
                && decision < decisions_made
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
        if let Some((pos, task)) = best {
            self.hand_over(pos, task);
        }
        Ok(best)
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

    /// The instance id of the child that task `id` started, if it is one.
    pub(super) fn child_instance(&self, id: u64) -> Option<&str> {
        self.history.iter().find_map(|e| match e {
            Event::SubOrchestrationScheduled {
                id: c, instance_id, ..
            } if *c == id => Some(instance_id.as_str()),
            _ => None,
        })
    }

    /// External events that arrived but no subscription took, in arrival order.
    pub(super) fn unconsumed_events(&self) -> Vec<(String, String)> {
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

    /// The events appended since the last call (or since the committed
    /// history), which from now on count as committed.
    pub(super) fn take_new_events(&mut self) -> Vec<Event> {
        let new_events = self.history[self.committed_len..].to_vec();
        self.committed_len = self.history.len();
        new_events
    }
}
