//! Inline steps: a turn that awaits one activity and nothing else (no timer
//! of its execution pending either, so none comes due unseen) runs the
//! activity itself, then the next turn with its completion, and commits the
//! steps together. A sequence of short activities then costs the store one
//! commit per [`MAX_INLINE_STEPS`] steps instead of one per step.
//!
//! An activity run inline has no work item until its step commits: if the
//! process dies first, the uncommitted turns are replayed and the activity
//! runs again, which activities (run at least once) allow. The steps are
//! bounded so that little is repeated, and so that messages that come for
//! the instance meanwhile do not wait long.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::activity::{completion, run_activity};
use super::execution::TurnInput;
use super::orchestrator::{Turn, settle};
use super::replay::TurnOutput;
use super::{HOLD_PATIENCE, Shared};
use crate::history::ActivityWork;
use crate::providers::now_ms;

/// Most steps run inline between two commits: the most activity calls a
/// crash can make run again.
const MAX_INLINE_STEPS: usize = 32;

/// An activity call still running when the inline steps stopped: the commit
/// schedules it (locked for this runtime), and the turn's task finishes it.
pub(crate) struct Inline<'a> {
    /// The call, ended or not; it holds its activity slot until it ends.
    pub(crate) run: Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>,
}

/// Runs the activity `turn` awaits and the turn after it, inline, while each
/// turn awaits exactly one activity and nothing else, for up to
/// [`MAX_INLINE_STEPS`] steps and [`HOLD_PATIENCE`]. `turn` comes back with
/// the steps' output merged; the call that was running when time ran out (or
/// whose next turn could not run) comes back too.
pub(crate) async fn run_inline<'a>(shared: &'a Shared, turn: &mut Turn) -> Option<Inline<'a>> {
    let deadline = tokio::time::Instant::now() + HOLD_PATIENCE;
    for _ in 0..MAX_INLINE_STEPS {
        if !inlinable(shared, &turn.output) {
            return None;
        }
        let mut execution = turn.execution.take()?;
        let Ok(slot) = shared.activity_slots.clone().try_acquire_owned() else {
            turn.execution = Some(execution);
            return None;
        };
        let work = turn.output.activities[0].clone();
        let mut run = running(shared, work.clone(), slot);
        let result = match tokio::time::timeout_at(deadline, &mut run).await {
            Ok(result) => result,
            Err(_) => {
                turn.execution = Some(execution);
                return Some(Inline { run });
            }
        };
        let input = TurnInput {
            now_ms: now_ms(),
            messages: vec![completion(shared, &work, result.clone())],
        };
        match execution.run_turn(input).await {
            Ok(report) => {
                let (output, settled) = settle(report, execution);
                turn.absorb(output, settled);
            }
            Err(e) => {
                // The commit schedules the call, and its result reaches a
                // replayed execution through the queue.
                tracing::warn!("the execution was lost after an inline activity: {e}");
                return Some(Inline {
                    run: Box::pin(std::future::ready(result)),
                });
            }
        }
    }
    None
}

/// Whether the turn awaits one activity and nothing else, so the next turn
/// needs only its completion, and no timer of the execution could come due
/// while the steps run and wait for their commit. Not with the execution
/// cache off: that mode replays every turn from history.
fn inlinable(shared: &Shared, output: &TurnOutput) -> bool {
    shared.options.execution_cache
        && output.activities.len() == 1
        && !output.timer_pending
        && output.messages.is_empty()
        && output.new_instances.is_empty()
        && output.continue_as_new.is_none()
        && output.status.is_none()
        && !*shared.shutdown.borrow()
}

/// The call of `work`, holding `slot` until it ends.
fn running(
    shared: &Shared,
    work: ActivityWork,
    slot: OwnedSemaphorePermit,
) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>> {
    let span =
        tracing::info_span!("activity", instance = %work.instance, name = %work.name, attempt = 1);
    let run = async move {
        let result = run_activity(shared, &work).await;
        drop(slot);
        result
    };
    Box::pin(run.instrument(span))
}
