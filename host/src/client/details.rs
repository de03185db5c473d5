//! What an execution's history says about it: its summary (when it started
//! and ended, how) and, while it runs, the work it waits for. Pure functions
//! over events, so every rule here is tested on hand-built histories.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::history::Event;
use crate::providers::query::InstanceSummary;

use super::OrchestrationStatus;

/// How an execution ended, or that it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionStatus {
    /// Not ended.
    Running,
    /// The orchestration returned an output.
    Completed,
    /// The orchestration failed.
    Failed,
    /// The instance was cancelled.
    Cancelled,
    /// The execution ended by continuing as new; the next one carries on.
    ContinuedAsNew,
}

/// One execution of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionSummary {
    /// Execution id, from 1.
    pub execution_id: u64,
    /// How it ended, or that it runs.
    pub status: ExecutionStatus,
    /// When it started, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// When it ended, ms since the Unix epoch; `None` while it runs.
    pub completed_at_ms: Option<u64>,
    /// How many events its history holds.
    pub event_count: u64,
    /// `completed_at_ms - started_at_ms`, once it ended.
    pub duration_ms: Option<u64>,
}

/// An activity scheduled and not yet completed, failed or cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingActivity {
    /// Task id.
    pub id: u64,
    /// Activity name.
    pub name: String,
    /// Its input.
    pub input: String,
    /// When the turn that scheduled it ran, ms since the Unix epoch.
    pub scheduled_at_ms: u64,
}

/// A timer created and not yet fired or cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTimer {
    /// Task id.
    pub id: u64,
    /// When the turn that created it ran, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// When it fires, ms since the Unix epoch.
    pub fire_at_ms: u64,
}

/// A wait for an external event that no raised event has met yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    /// Task id of the subscription.
    pub id: u64,
    /// Event name.
    pub name: String,
    /// When the turn that subscribed ran, ms since the Unix epoch.
    pub subscribed_at_ms: u64,
}

/// A child orchestration started and not yet finished (as far as this
/// history knows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSubOrchestration {
    /// Task id.
    pub id: u64,
    /// Orchestration name of the child.
    pub name: String,
    /// Instance id of the child.
    pub instance_id: String,
    /// When the turn that started it ran, ms since the Unix epoch.
    pub scheduled_at_ms: u64,
}

/// What the current execution of a running instance waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionDetails {
    /// Execution id.
    pub execution_id: u64,
    /// Activities in flight, in the order scheduled.
    pub pending_activities: Vec<PendingActivity>,
    /// Timers not yet fired, in the order created.
    pub pending_timers: Vec<PendingTimer>,
    /// Event waits not yet met, in the order subscribed.
    pub pending_events: Vec<PendingEvent>,
    /// Children not yet finished, in the order started.
    pub pending_sub_orchestrations: Vec<PendingSubOrchestration>,
    /// When its last turn ran, ms since the Unix epoch.
    pub last_event_at_ms: u64,
}

/// Everything about one instance: its row, each execution, and for a
/// running instance what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceDetails {
    /// The instance row.
    pub summary: InstanceSummary,
    /// Its status with the output, error or reason.
    pub status: OrchestrationStatus,
    /// The status text the orchestration last published.
    pub custom_status: Option<String>,
    /// Every execution, the first first.
    pub executions: Vec<ExecutionSummary>,
    /// What the current execution waits for; `None` unless it runs.
    pub current_execution: Option<ExecutionDetails>,
}

/// The summary of execution `execution_id` from its history. `ended_at_ms`
/// is when the instance finished, for its last execution: the turn that
/// cancels an instance records no turn marker, so the history alone would
/// date that end to the turn before.
pub fn summarize_execution(
    execution_id: u64,
    history: &[Event],
    ended_at_ms: Option<u64>,
) -> ExecutionSummary {
    let mut started_at_ms = 0;
    let mut last_turn_ms = 0;
    let mut status = ExecutionStatus::Running;
    for event in history {
        match event {
            Event::OrchestrationStarted {
                started_at_ms: at, ..
            } => {
                started_at_ms = *at;
                last_turn_ms = *at;
            }
            Event::TurnStarted { at_ms } => last_turn_ms = *at_ms,
            Event::OrchestrationCompleted { .. } => status = ExecutionStatus::Completed,
            Event::OrchestrationFailed { .. } => status = ExecutionStatus::Failed,
            Event::OrchestrationCancelled { .. } => status = ExecutionStatus::Cancelled,
            Event::ContinuedAsNew { .. } => status = ExecutionStatus::ContinuedAsNew,
            _ => {}
        }
    }
    let completed_at_ms = match status {
        ExecutionStatus::Running => None,
        // A continue-as-new is a decision: its turn has a marker.
        ExecutionStatus::ContinuedAsNew => Some(last_turn_ms),
        _ => Some(ended_at_ms.unwrap_or(last_turn_ms).max(last_turn_ms)),
    };
    ExecutionSummary {
        execution_id,
        status,
        started_at_ms,
        completed_at_ms,
        event_count: u64::try_from(history.len()).unwrap_or(u64::MAX),
        duration_ms: completed_at_ms.map(|end| end.saturating_sub(started_at_ms)),
    }
}

/// What the execution whose history this is still waits for: activities,
/// timers and children without a completion or cancellation, and event
/// subscriptions no raised event met. Events are matched as replay matches
/// them: the k-th subscription to name N that is still waiting takes the
/// k-th event named N not yet taken, whenever it was raised; a cancelled
/// subscription gives its event back to the next one.
pub fn pending_work(execution_id: u64, history: &[Event]) -> ExecutionDetails {
    let mut turn_ms = 0;
    let mut activities: BTreeMap<u64, PendingActivity> = BTreeMap::new();
    let mut timers: BTreeMap<u64, PendingTimer> = BTreeMap::new();
    let mut children: BTreeMap<u64, PendingSubOrchestration> = BTreeMap::new();
    let mut events = EventMatcher::default();
    for (pos, event) in history.iter().enumerate() {
        match event {
            Event::OrchestrationStarted { started_at_ms, .. } => turn_ms = *started_at_ms,
            Event::TurnStarted { at_ms } => turn_ms = *at_ms,
            Event::ActivityScheduled { id, name, input } => {
                activities.insert(
                    *id,
                    PendingActivity {
                        id: *id,
                        name: name.clone(),
                        input: input.clone(),
                        scheduled_at_ms: turn_ms,
                    },
                );
            }
            Event::ActivityCompleted { id, .. } | Event::ActivityFailed { id, .. } => {
                activities.remove(id);
            }
            Event::TimerCreated { id, fire_at_ms } => {
                timers.insert(
                    *id,
                    PendingTimer {
                        id: *id,
                        created_at_ms: turn_ms,
                        fire_at_ms: *fire_at_ms,
                    },
                );
            }
            Event::TimerFired { id } => {
                timers.remove(id);
            }
            Event::SubOrchestrationScheduled {
                id,
                name,
                instance_id,
                ..
            } => {
                children.insert(
                    *id,
                    PendingSubOrchestration {
                        id: *id,
                        name: name.clone(),
                        instance_id: instance_id.clone(),
                        scheduled_at_ms: turn_ms,
                    },
                );
            }
            Event::SubOrchestrationCompleted { id, .. }
            | Event::SubOrchestrationFailed { id, .. } => {
                children.remove(id);
            }
            Event::EventSubscribed { id, name } => events.subscribe(*id, name, turn_ms),
            Event::EventRaised { name, .. } => events.raise(name, pos),
            Event::TaskCancelled { id } => {
                activities.remove(id);
                timers.remove(id);
                children.remove(id);
                events.cancel(*id);
            }
            _ => {}
        }
    }
    ExecutionDetails {
        execution_id,
        pending_activities: activities.into_values().collect(),
        pending_timers: timers.into_values().collect(),
        pending_events: events.waiting(),
        pending_sub_orchestrations: children.into_values().collect(),
        last_event_at_ms: turn_ms,
    }
}

/// Subscriptions and raised events, matched in order per name.
#[derive(Default)]
struct EventMatcher {
    /// Every subscription, by task id: name and when it was made.
    subscriptions: BTreeMap<u64, (String, u64)>,
    /// Subscriptions waiting for an event, oldest first, per name.
    waiters: HashMap<String, VecDeque<u64>>,
    /// Raised events no subscription holds, by history position, per name.
    backlog: HashMap<String, Vec<usize>>,
    /// The event each met subscription holds.
    taken: HashMap<u64, usize>,
}

impl EventMatcher {
    fn subscribe(&mut self, id: u64, name: &str, at_ms: u64) {
        self.subscriptions.insert(id, (name.to_owned(), at_ms));
        let backlog = self.backlog.entry(name.to_owned()).or_default();
        if backlog.is_empty() {
            self.waiters
                .entry(name.to_owned())
                .or_default()
                .push_back(id);
        } else {
            let pos = backlog.remove(0);
            self.taken.insert(id, pos);
        }
    }

    fn raise(&mut self, name: &str, pos: usize) {
        match self.waiters.get_mut(name).and_then(VecDeque::pop_front) {
            Some(waiter) => {
                self.taken.insert(waiter, pos);
            }
            None => {
                let backlog = self.backlog.entry(name.to_owned()).or_default();
                let at = backlog.partition_point(|p| *p < pos);
                backlog.insert(at, pos);
            }
        }
    }

    /// A cancelled subscription stops waiting and gives back the event it
    /// held (the code never received it).
    fn cancel(&mut self, id: u64) {
        let Some((name, _)) = self.subscriptions.remove(&id) else {
            return;
        };
        if let Some(waiters) = self.waiters.get_mut(&name) {
            waiters.retain(|w| *w != id);
        }
        if let Some(pos) = self.taken.remove(&id) {
            self.raise(&name, pos);
        }
    }

    fn waiting(&self) -> Vec<PendingEvent> {
        let mut waiting: Vec<PendingEvent> = self
            .waiters
            .values()
            .flatten()
            .filter_map(|id| {
                let (name, at) = self.subscriptions.get(id)?;
                Some(PendingEvent {
                    id: *id,
                    name: name.clone(),
                    subscribed_at_ms: *at,
                })
            })
            .collect();
        waiting.sort_by_key(|e| e.id);
        waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(at: u64) -> Event {
        Event::OrchestrationStarted {
            name: "Order".into(),
            version: "1.0.0".into(),
            input: "{}".into(),
            parent_instance: None,
            parent_id: None,
            started_at_ms: at,
        }
    }

    fn turn(at: u64) -> Event {
        Event::TurnStarted { at_ms: at }
    }

    fn activity(id: u64, name: &str) -> Event {
        Event::ActivityScheduled {
            id,
            name: name.into(),
            input: format!("in{id}"),
        }
    }

    fn subscribe(id: u64, name: &str) -> Event {
        Event::EventSubscribed {
            id,
            name: name.into(),
        }
    }

    fn raised(name: &str) -> Event {
        Event::EventRaised {
            name: name.into(),
            data: "d".into(),
        }
    }

    /// 0 started @100; 1 activity 1 (Charge); 2 activity 2 (Ship);
    /// 3 timer 3 fires @900; 4 timer 4 fires @950; 5 turn @200;
    /// 6 activity 1 completed; 7 timer 4 fired; 8 task 2 cancelled;
    /// 9 child 5; 10 turn @300; 11 activity 6 (Audit).
    #[test]
    fn open_activities_timers_and_children_are_pending() {
        let history = vec![
            started(100),
            activity(1, "Charge"),
            activity(2, "Ship"),
            Event::TimerCreated {
                id: 3,
                fire_at_ms: 900,
            },
            Event::TimerCreated {
                id: 4,
                fire_at_ms: 950,
            },
            turn(200),
            Event::ActivityCompleted {
                id: 1,
                output: "ok".into(),
            },
            Event::TimerFired { id: 4 },
            Event::TaskCancelled { id: 2 },
            Event::SubOrchestrationScheduled {
                id: 5,
                name: "Child".into(),
                version: None,
                instance_id: "a::1::5".into(),
                input: "".into(),
            },
            turn(300),
            activity(6, "Audit"),
        ];
        let details = pending_work(1, &history);
        assert_eq!(
            details.pending_activities,
            vec![PendingActivity {
                id: 6,
                name: "Audit".into(),
                input: "in6".into(),
                scheduled_at_ms: 300,
            }]
        );
        assert_eq!(
            details.pending_timers,
            vec![PendingTimer {
                id: 3,
                created_at_ms: 100,
                fire_at_ms: 900,
            }]
        );
        assert_eq!(
            details.pending_sub_orchestrations,
            vec![PendingSubOrchestration {
                id: 5,
                name: "Child".into(),
                instance_id: "a::1::5".into(),
                scheduled_at_ms: 200,
            }]
        );
        assert!(details.pending_events.is_empty());
        assert_eq!(details.last_event_at_ms, 300);
        assert_eq!(details.execution_id, 1);
    }

    /// 0 started @10; 1 "go" raised before any wait; 2 turn @20;
    /// 3 subscribe 1 "go" (takes event 1); 4 subscribe 2 "go" (waits);
    /// 5 subscribe 3 "stop" (waits); 6 turn @30; 7 subscribe 4 "go" (waits).
    #[test]
    fn the_kth_subscription_takes_the_kth_event_of_its_name() {
        let history = vec![
            started(10),
            raised("go"),
            turn(20),
            subscribe(1, "go"),
            subscribe(2, "go"),
            subscribe(3, "stop"),
            turn(30),
            subscribe(4, "go"),
        ];
        let pending = pending_work(1, &history).pending_events;
        let names: Vec<(u64, &str, u64)> = pending
            .iter()
            .map(|e| (e.id, e.name.as_str(), e.subscribed_at_ms))
            .collect();
        assert_eq!(names, vec![(2, "go", 20), (3, "stop", 20), (4, "go", 30)]);

        // One more "go" meets the oldest waiting subscription, 2.
        let mut more = history.clone();
        more.push(raised("go"));
        let ids: Vec<u64> = pending_work(1, &more)
            .pending_events
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, vec![3, 4]);
    }

    /// 0 started; 1 subscribe 1 "x"; 2 "x" raised (taken by 1);
    /// 3 subscribe 2 "x"; 4 task 1 cancelled: its event goes to 2.
    #[test]
    fn a_cancelled_subscription_gives_its_event_to_the_next() {
        let history = vec![
            started(1),
            subscribe(1, "x"),
            raised("x"),
            subscribe(2, "x"),
            Event::TaskCancelled { id: 1 },
        ];
        assert!(pending_work(1, &history).pending_events.is_empty());

        // Cancelled while still waiting: nothing pending, and a later event
        // is kept for the next subscription.
        let history = vec![
            started(1),
            subscribe(1, "x"),
            Event::TaskCancelled { id: 1 },
            raised("x"),
            subscribe(2, "x"),
            subscribe(3, "x"),
        ];
        let ids: Vec<u64> = pending_work(1, &history)
            .pending_events
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, vec![3]);
    }

    #[test]
    fn a_continued_execution_ends_at_its_last_turn() {
        let history = vec![
            started(1_000),
            activity(1, "A"),
            turn(1_500),
            Event::ActivityCompleted {
                id: 1,
                output: "".into(),
            },
            Event::ContinuedAsNew {
                input: "next".into(),
                version: None,
            },
        ];
        let summary = summarize_execution(1, &history, Some(9_999));
        assert_eq!(
            summary,
            ExecutionSummary {
                execution_id: 1,
                status: ExecutionStatus::ContinuedAsNew,
                started_at_ms: 1_000,
                completed_at_ms: Some(1_500),
                event_count: 5,
                duration_ms: Some(500),
            }
        );
    }

    #[test]
    fn a_cancelled_execution_ends_when_the_instance_finished() {
        let history = vec![
            started(1_000),
            subscribe(1, "x"),
            Event::OrchestrationCancelled {
                reason: "stop".into(),
            },
        ];
        let summary = summarize_execution(2, &history, Some(4_000));
        assert_eq!(summary.status, ExecutionStatus::Cancelled);
        assert_eq!(summary.completed_at_ms, Some(4_000));
        assert_eq!(summary.duration_ms, Some(3_000));
        assert_eq!(summary.event_count, 3);
    }

    #[test]
    fn a_running_execution_has_no_end() {
        let history = vec![started(5), activity(1, "A")];
        let summary = summarize_execution(1, &history, None);
        assert_eq!(summary.status, ExecutionStatus::Running);
        assert_eq!((summary.completed_at_ms, summary.duration_ms), (None, None));
        let done = vec![
            started(5),
            turn(8),
            Event::OrchestrationCompleted { output: "o".into() },
        ];
        let summary = summarize_execution(1, &done, None);
        assert_eq!(summary.status, ExecutionStatus::Completed);
        assert_eq!(summary.completed_at_ms, Some(8), "without a finish time");
    }
}
