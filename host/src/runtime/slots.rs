//! A bounded set of running tasks: the turn slots of the orchestrator
//! dispatcher and the activity slots of the activity dispatcher.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// Tasks running in at most a fixed number of slots.
pub(crate) struct Slots {
    permits: Arc<Semaphore>,
    running: JoinSet<()>,
}

impl Slots {
    /// Slots counted by `permits`, which tasks outside this set may take too.
    pub(crate) fn sharing(permits: Arc<Semaphore>) -> Self {
        Self {
            permits,
            running: JoinSet::new(),
        }
    }

    /// How many slots are free, at most `max`, once finished tasks are reaped.
    pub(crate) fn free(&mut self, max: usize) -> usize {
        while self.running.try_join_next().is_some() {}
        self.permits.available_permits().min(max)
    }

    /// Takes up to `max` free slots, once finished tasks are reaped.
    pub(crate) fn reserve(&mut self, max: usize) -> Vec<OwnedSemaphorePermit> {
        while self.running.try_join_next().is_some() {}
        take_permits(&self.permits, max)
    }

    /// Waits until a task finishes or `shutdown` changes.
    pub(crate) async fn wait_for_one(&mut self, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = self.running.join_next() => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Runs `task` in a slot, waiting for one to be free. False if the slots
    /// are closed, which never happens while `self` lives.
    pub(crate) async fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) -> bool {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return false;
        };
        self.spawn_in(permit, task);
        true
    }

    /// Runs `task` in the slot `permit` holds, taken from this set's permits
    /// by whoever handed the task over.
    pub(crate) fn spawn_in(
        &mut self,
        permit: OwnedSemaphorePermit,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        // Boxed: a turn's future is several KiB, and tokio moves a task's
        // future (and its output slot) by value as it spawns and reaps it.
        let task = Box::pin(task);
        self.running.spawn(async move {
            task.await;
            drop(permit);
        });
    }

    /// Waits for the next task to finish; `None` when none is running.
    pub(crate) async fn join_next(&mut self) -> Option<()> {
        self.running.join_next().await.map(|_| ())
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
