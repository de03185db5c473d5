//! A bounded set of running tasks: the turn slots of the orchestrator
//! dispatcher and the activity slots of the activity dispatcher.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{Id, JoinError, JoinSet};

/// Tasks running in at most a fixed number of slots.
pub(crate) struct Slots {
    permits: Arc<Semaphore>,
    running: JoinSet<()>,
    /// What each running task works on, to name it if it panics.
    labels: HashMap<Id, String>,
}

impl Slots {
    /// Slots counted by `permits`, which tasks outside this set may take too.
    pub(crate) fn sharing(permits: Arc<Semaphore>) -> Self {
        Self {
            permits,
            running: JoinSet::new(),
            labels: HashMap::new(),
        }
    }

    /// Reaps the tasks that finished, logging any that panicked.
    fn reap(&mut self) {
        while let Some(done) = self.running.try_join_next_with_id() {
            self.finished(done);
        }
    }

    /// Forgets a finished task; a panic is logged with what the task worked
    /// on, never dropped silently.
    fn finished(&mut self, done: Result<(Id, ()), JoinError>) {
        if let Some(report) = self.report(done) {
            tracing::error!("{report}");
        }
    }

    /// What to log of a finished task: a panic, naming what it worked on.
    fn report(&mut self, done: Result<(Id, ()), JoinError>) -> Option<String> {
        let e = match done {
            Ok((id, ())) => {
                self.labels.remove(&id);
                return None;
            }
            Err(e) => e,
        };
        let label = self.labels.remove(&e.id()).unwrap_or_default();
        e.is_panic()
            .then(|| format!("the task running the {label} panicked: {}", panic_text(e)))
    }

    /// How many slots are free, at most `max`, once finished tasks are reaped.
    pub(crate) fn free(&mut self, max: usize) -> usize {
        self.reap();
        self.permits.available_permits().min(max)
    }

    /// How many of this set's tasks are running (or finished, not reaped).
    pub(crate) fn running(&self) -> usize {
        self.running.len()
    }

    /// Takes up to `max` free slots, once finished tasks are reaped.
    pub(crate) fn reserve(&mut self, max: usize) -> Vec<OwnedSemaphorePermit> {
        self.reap();
        take_permits(&self.permits, max)
    }

    /// Waits until a task finishes or `shutdown` changes.
    pub(crate) async fn wait_for_one(&mut self, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            Some(done) = self.running.join_next_with_id() => self.finished(done),
            _ = shutdown.changed() => {}
        }
    }

    /// Runs `task`, which works on `label` (an instance, say), in a slot,
    /// waiting for one to be free. False if the slots are closed, which
    /// never happens while `self` lives.
    pub(crate) async fn spawn(
        &mut self,
        label: String,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> bool {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return false;
        };
        self.spawn_in(permit, label, task);
        true
    }

    /// Runs `task`, which works on `label`, in the slot `permit` holds,
    /// taken from this set's permits by whoever handed the task over.
    pub(crate) fn spawn_in(
        &mut self,
        permit: OwnedSemaphorePermit,
        label: String,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        // Boxed: a turn's future is several KiB, and tokio moves a task's
        // future (and its output slot) by value as it spawns and reaps it.
        let task = Box::pin(task);
        let handle = self.running.spawn(async move {
            task.await;
            drop(permit);
        });
        self.labels.insert(handle.id(), label);
    }

    /// Waits for the next task to finish; `None` when none is running.
    pub(crate) async fn join_next(&mut self) -> Option<()> {
        let done = self.running.join_next_with_id().await?;
        self.finished(done);
        Some(())
    }

    /// Stops every running task at its next await.
    pub(crate) fn abort_all(&mut self) {
        self.running.abort_all();
    }
}

/// Takes up to `max` of `permits` that are free now, without waiting.
pub(crate) fn take_permits(permits: &Arc<Semaphore>, max: usize) -> Vec<OwnedSemaphorePermit> {
    std::iter::from_fn(|| permits.clone().try_acquire_owned().ok())
        .take(max)
        .collect()
}

/// The message a panicked task's payload carries.
pub(crate) fn panic_text(e: JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_reported_with_what_it_worked_on() {
        let mut slots = Slots::sharing(Arc::new(Semaphore::new(2)));
        let permit = take_permits(&slots.permits, 1).remove(0);
        slots.spawn_in(permit, "turn of 'x'".into(), async {
            panic!("the guest's host broke");
        });
        let done = slots.running.join_next_with_id().await.expect("a task ran");
        let report = slots.report(done).expect("a report");
        assert_eq!(
            report,
            "the task running the turn of 'x' panicked: the guest's host broke"
        );
        assert!(slots.labels.is_empty());
        assert_eq!(slots.permits.available_permits(), 2);
    }

    #[tokio::test]
    async fn a_task_that_ends_is_forgotten_without_a_report() {
        let mut slots = Slots::sharing(Arc::new(Semaphore::new(1)));
        assert!(slots.spawn("turn of 'y'".into(), async {}).await);
        let done = slots.running.join_next_with_id().await.expect("a task ran");
        assert_eq!(slots.report(done), None);
        assert!(slots.labels.is_empty());
    }
}
