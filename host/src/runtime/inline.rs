//! Inline steps: a turn whose only new work is one activity (and whose
//! execution has no timer pending, so none comes due unseen) runs the
//! activity itself, then the next turn with its completion, and commits the
//! steps together. A sequence of short activities then costs the store one
//! commit per [`MAX_INLINE_STEPS`] steps instead of one per step.
//!
//! An activity run inline has no work item until its step commits: if the
//! process dies first, the uncommitted turns are replayed and the activity
//! runs again, which activities (run at least once) allow. The steps are
//! bounded so that little is repeated, and so that messages that come for
//! the instance meanwhile do not wait long.

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::Instrument;

use super::Chain;
use super::Shared;
use super::activity::{Call, Ended, activity_span, call, completion, timed};
use super::execution::TurnInput;
use super::fast_path::{Step, next_step};
use super::orchestrator::{Turn, settle};

/// Most steps run inline between two commits: the most activity calls a
/// crash can make run again.
const MAX_INLINE_STEPS: usize = 32;

/// An activity call still running when the inline steps stopped: the commit
/// schedules it (locked for this runtime), and the activity dispatcher
/// finishes it in the slot it holds.
pub(crate) struct Inline {
    /// The call, ended or not.
    pub(crate) call: Call,
    pub(crate) slot: OwnedSemaphorePermit,
}

/// Runs the activity `turn` awaits and the turn after it, inline, while each
/// turn's only new work is one activity (see `fast_path`), for up to
/// [`MAX_INLINE_STEPS`] steps and until `deadline`. `turn` comes back with
/// the steps' output merged; the call that was running when time ran out (or
/// whose next turn could not run) comes back too.
pub(crate) async fn run_inline(
    shared: &Shared,
    turn: &mut Turn,
    deadline: Instant,
) -> Option<Inline> {
    for _ in 0..MAX_INLINE_STEPS {
        // Out of time before a call starts: the commit may hold the
        // instance for it instead (see `orchestrator::commit`).
        let end = turn.end(shared, Instant::now() < deadline, false);
        if next_step(&end, &shared.load()) != Step::Inline {
            return None;
        }
        let mut execution = turn.execution.take()?;
        let Ok(slot) = shared.activity_slots.clone().try_acquire_owned() else {
            turn.execution = Some(execution);
            return None;
        };
        let work = turn.output.activities[0].clone();
        // An activity this runtime lacks is scheduled by the commit and left
        // for a runtime that has it.
        let Some(mut call) = call(shared, &work, 1) else {
            turn.execution = Some(execution);
            return None;
        };
        let span = activity_span(&work, 1, "inline");
        let result = match tokio::time::timeout_at(deadline, timed(&mut call))
            .instrument(span)
            .await
        {
            Ok(Ended::Returned(result)) => result,
            // Stopped with the runtime: the commit schedules the work, and
            // the dispatcher puts it back in the queue (see `activity`).
            Ok(ended @ Ended::Cancelled(_)) => {
                turn.execution = Some(execution);
                let call = Box::pin(std::future::ready(ended));
                return Some(Inline { call, slot });
            }
            Err(_) => {
                turn.execution = Some(execution);
                return Some(Inline { call, slot });
            }
        };
        let input = TurnInput {
            now_ms: shared.now_ms(),
            messages: vec![completion(shared, &work, result.clone())],
        };
        match execution.run_turn(input).await {
            Ok(report) => {
                drop(slot);
                let (output, settled) = settle(report, execution);
                turn.absorb(output, settled);
            }
            Err(e) => {
                // The commit schedules the call, and its result reaches a
                // replayed execution through the queue.
                tracing::warn!(
                    "the execution was lost after an inline activity: {}",
                    Chain(&e)
                );
                return Some(Inline {
                    call: Box::pin(std::future::ready(Ended::Returned(result))),
                    slot,
                });
            }
        }
    }
    None
}
