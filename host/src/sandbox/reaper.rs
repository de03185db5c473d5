//! Frees the sandboxes of ended orchestration executions on a thread of
//! their own. Resetting a pooled sandbox (or unmapping a mapped one) takes
//! tens of microseconds, which turns waiting to start (a burst of timers,
//! say) should not queue behind. (An activity frees its own sandbox: handing
//! it across threads cost more than it saved.)

use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use wasmtime::Store;

use super::state::GuestState;

/// Spent sandboxes waiting to be freed; past this many, the caller frees its
/// own, so a reaper that falls behind slows its callers instead of holding
/// ever more sandboxes.
const BACKLOG: usize = 1024;

static REAPER: OnceLock<Option<SyncSender<Store<GuestState>>>> = OnceLock::new();

/// Frees `store` soon, on the reaper thread (or here, if it cannot).
pub(crate) fn free(store: Store<GuestState>) {
    let Some(reaper) = reaper() else {
        return drop(store);
    };
    match reaper.try_send(store) {
        Ok(()) => {}
        Err(TrySendError::Full(store) | TrySendError::Disconnected(store)) => drop(store),
    }
}

fn reaper() -> Option<&'static SyncSender<Store<GuestState>>> {
    REAPER
        .get_or_init(|| {
            let (sender, spent) = sync_channel::<Store<GuestState>>(BACKLOG);
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
