//! Whether a finished execution's history is well formed: started once,
//! ended once, decision ids distinct and without gaps, every activity,
//! timer and child completed exactly once after it was scheduled, and as
//! many of each as the program asks for.

use std::collections::HashMap;

use duroxide::history::Event;

use crate::workload::Expected;

/// How the execution ended, what it recorded, and the children it started.
pub struct Checked {
    /// The children's instance ids, in the order they were scheduled.
    pub children: Vec<String>,
}

/// What kind of task a decision id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Activity,
    Timer,
    Event,
    Child,
}

/// Checks `history`, which must end with `OrchestrationCompleted` when
/// `last` (the instance's final execution) and with `ContinuedAsNew`
/// otherwise, against `expected`.
pub fn check(history: &[Event], expected: &Expected, last: bool) -> Result<Checked, String> {
    match history.first() {
        Some(Event::OrchestrationStarted { .. }) => {}
        other => return Err(format!("starts with {other:?}")),
    }
    let ends_right = match history.last() {
        Some(Event::OrchestrationCompleted { .. }) => last,
        Some(Event::ContinuedAsNew { .. }) => !last,
        _ => false,
    };
    if !ends_right {
        return Err(format!(
            "ends with {:?} (final execution: {last})",
            history.last()
        ));
    }
    let mut tasks: HashMap<u64, (Task, usize)> = HashMap::new();
    let mut ids = Vec::new();
    let mut children = Vec::new();
    let mut ends = 0;
    let mut starts = 0;
    for (at, event) in history.iter().enumerate() {
        let scheduled = match event {
            Event::OrchestrationStarted { .. } => {
                starts += 1;
                None
            }
            Event::ActivityScheduled { id, .. } => Some((*id, Task::Activity)),
            Event::TimerCreated { id, .. } => Some((*id, Task::Timer)),
            Event::EventSubscribed { id, .. } => Some((*id, Task::Event)),
            Event::SubOrchestrationScheduled {
                id, instance_id, ..
            } => {
                children.push(instance_id.clone());
                Some((*id, Task::Child))
            }
            Event::ActivityCompleted { id, .. } | Event::ActivityFailed { id, .. } => {
                complete(&mut tasks, *id, Task::Activity, at)?;
                None
            }
            Event::TimerFired { id } => {
                complete(&mut tasks, *id, Task::Timer, at)?;
                None
            }
            Event::SubOrchestrationCompleted { id, .. }
            | Event::SubOrchestrationFailed { id, .. } => {
                complete(&mut tasks, *id, Task::Child, at)?;
                None
            }
            Event::OrchestrationCompleted { .. }
            | Event::ContinuedAsNew { .. }
            | Event::OrchestrationFailed { .. }
            | Event::OrchestrationCancelled { .. } => {
                ends += 1;
                None
            }
            Event::TurnStarted { .. } | Event::EventRaised { .. } => None,
            other => return Err(format!("event {at} is unexpected here: {other:?}")),
        };
        if let Some((id, task)) = scheduled {
            if tasks.insert(id, (task, 0)).is_some() {
                return Err(format!("decision id {id} recorded twice (event {at})"));
            }
            ids.push(id);
        }
    }
    if starts != 1 || ends != 1 {
        return Err(format!("{starts} starts and {ends} ends"));
    }
    ids.sort_unstable();
    if let Some(first) = ids.first()
        && ids.iter().zip(*first..).any(|(id, want)| *id != want)
    {
        return Err(format!("decision ids are not contiguous: {ids:?}"));
    }
    let count = |kind: Task| tasks.values().filter(|(t, _)| *t == kind).count();
    let found = (
        count(Task::Activity),
        count(Task::Timer),
        count(Task::Event),
        count(Task::Child),
    );
    let wanted = (
        expected.activities,
        expected.timers,
        expected.events,
        expected.children.len(),
    );
    if found != wanted {
        return Err(format!(
            "(activities, timers, events, children) recorded {found:?}, the program asks for {wanted:?}"
        ));
    }
    if let Some((id, (task, _))) = tasks
        .iter()
        .find(|(_, (task, done))| *task != Task::Event && *done != 1)
    {
        return Err(format!("{task:?} {id} never completed"));
    }
    Ok(Checked { children })
}

/// Records the completion at `at` of the task `id`, which must be a `kind`
/// scheduled earlier and not completed yet.
fn complete(
    tasks: &mut HashMap<u64, (Task, usize)>,
    id: u64,
    kind: Task,
    at: usize,
) -> Result<(), String> {
    match tasks.get_mut(&id) {
        Some((task, done)) if *task == kind => {
            *done += 1;
            if *done > 1 {
                return Err(format!("{kind:?} {id} completed twice (event {at})"));
            }
            Ok(())
        }
        other => Err(format!(
            "event {at} completes {kind:?} {id}, which history has as {other:?}"
        )),
    }
}
