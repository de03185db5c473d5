//! What an activity knows of the call it serves: the instance, execution,
//! activity name and attempt, and whether its result is still wanted.

use std::cell::OnceCell;

use crate::bindings::duroxide::orchestration::activity_context as host;

/// The context of one activity attempt. Handed to activities registered
/// with [`Registry::activity_with_context`](crate::Registry::activity_with_context).
#[derive(Default)]
pub struct ActivityContext {
    info: OnceCell<host::ActivityInfo>,
}

impl ActivityContext {
    fn info(&self) -> &host::ActivityInfo {
        self.info.get_or_init(host::info)
    }

    /// The instance whose orchestration scheduled the activity.
    pub fn instance_id(&self) -> &str {
        &self.info().instance_id
    }

    /// That orchestration's execution.
    pub fn execution_id(&self) -> u64 {
        self.info().execution_id
    }

    /// The activity's name.
    pub fn name(&self) -> &str {
        &self.info().name
    }

    /// The attempt, from 1: a later one follows an attempt that ended
    /// without a result.
    pub fn attempt(&self) -> u32 {
        self.info().attempt
    }

    /// Whether the result is no longer wanted: the orchestration stopped
    /// waiting for it (it lost a race, or the instance ended), or the host
    /// is stopping. A long activity checks it now and then to stop early;
    /// what it returns then is ignored.
    pub fn is_cancelled(&self) -> bool {
        host::cancelled()
    }
}
