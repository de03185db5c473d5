//! Frees the sandboxes of ended and evicted orchestration executions on a
//! thread of their own. Resetting a pooled sandbox (or unmapping a mapped
//! one), and unwinding a parked guest first, takes tens of microseconds,
//! which turns waiting to start (a burst of timers, say) should not queue
//! behind. (An activity frees its own sandbox: handing it across threads
//! cost more than it saved.)

use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

/// Something that owns a sandbox, dropped on the reaper's thread.
type Spent = Box<dyn Send>;

/// Sandboxes waiting to be freed; past this many, the caller frees its own,
/// so a reaper that falls behind slows its callers instead of holding ever
/// more sandboxes.
const BACKLOG: usize = 1024;

static REAPER: OnceLock<Option<SyncSender<Spent>>> = OnceLock::new();

/// Drops `owner` (a store, or a guest call holding one) soon, on the reaper
/// thread, or here if it cannot.
pub(crate) fn free(owner: impl Send + 'static) {
    let Some(reaper) = reaper() else {
        return drop(owner);
    };
    match reaper.try_send(Box::new(owner)) {
        Ok(()) => {}
        Err(TrySendError::Full(owner) | TrySendError::Disconnected(owner)) => drop(owner),
    }
}

fn reaper() -> Option<&'static SyncSender<Spent>> {
    REAPER
        .get_or_init(|| {
            let (sender, spent) = sync_channel::<Spent>(BACKLOG);
            let started = std::thread::Builder::new()
                .name("duroxide-reaper".into())
                .spawn(move || spent.into_iter().for_each(drop));
            match started {
                Ok(_) => Some(sender),
                Err(e) => {
                    tracing::warn!(
                        "cannot start the reaper thread; sandboxes are freed in place: {e}"
                    );
                    None
                }
            }
        })
        .as_ref()
}
