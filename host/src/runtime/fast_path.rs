//! How the work a turn leaves proceeds: the one place that chooses among
//! the fast paths, as a pure function of what the turn produced and the
//! runtime's load. The runtime acts on the answer.
//!
//! In the order they apply:
//! - **inline step**: a turn whose only new work is one activity runs the
//!   activity itself, then the next turn with its completion; the steps
//!   commit together (see `inline`).
//! - **hold**: a turn that hands its one activity to the activity
//!   dispatcher asks the store to keep its instance locked; the activity's
//!   task runs the next turn with the completion in hand and commits both
//!   (see `activity::finish`).
//! - **hand-over**: the commit locks the activities it schedules for this
//!   runtime, which runs them without a fetch.
//! - **short cut** (hand-over, and an activity completion that locks its
//!   instance and runs its next turn): taken only while few turns run.
//!   Under load the dispatchers' batched fetches gather many instances'
//!   work into each commit of the store, which serves throughput better.
//! - otherwise the work goes through the queues and the dispatchers.

/// Most turns running at once for which short cuts are taken. Measured with
/// hello_seq5: short cuts at any load cost 8% of its throughput; up to this
/// many, none, while a lone sequential orchestration runs its steps in half
/// the time.
pub(crate) const SHORT_CUT_TURNS: usize = 16;

/// What a turn left, as far as the choice of path goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TurnEnd {
    /// Activities the turn scheduled.
    pub(crate) activities: usize,
    /// The turn scheduled activities and nothing else: no message sent, no
    /// instance started, no end or continue-as-new, and no timer of the
    /// execution still to fire (none could come due unseen while steps run).
    pub(crate) only_activities: bool,
    /// The execution parked and is kept in the execution cache.
    pub(crate) parks: bool,
    /// The instance is still running after the turn.
    pub(crate) running: bool,
    /// An inline step's activity call is still running; the commit
    /// schedules it and it goes on under the activity dispatcher.
    pub(crate) inline_call: bool,
    /// Inline steps still have time (they end within about a second, so
    /// messages for the instance wait no longer than that).
    pub(crate) time_left: bool,
}

/// The runtime's state when the choice is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Load {
    /// Turns running now.
    pub(crate) running_turns: usize,
    /// The runtime is stopping.
    pub(crate) stopping: bool,
}

/// How a turn's work proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Run the turn's one activity here, then the next turn (inline step).
    Inline,
    /// Commit the turn.
    Commit {
        /// How many of its activities to lock for this runtime and hand to
        /// the activity dispatcher (each needs a free activity slot; those
        /// without one go to the queue).
        hand_over: usize,
        /// Ask the store to keep the instance locked while its one handed
        /// activity runs (only if that activity got a slot).
        hold: bool,
    },
}

/// Whether short cuts past the dispatchers are taken at `load`.
pub(crate) fn short_cuts(load: &Load) -> bool {
    load.running_turns <= SHORT_CUT_TURNS && !load.stopping
}

/// How the work `end` left proceeds at `load`.
pub(crate) fn next_step(end: &TurnEnd, load: &Load) -> Step {
    if load.stopping {
        return Step::Commit {
            hand_over: usize::from(end.inline_call),
            hold: false,
        };
    }
    if end.inline_call {
        // The call holds its own slot; it outlived the steps' time, so the
        // instance is not held for it.
        return Step::Commit {
            hand_over: 1,
            hold: false,
        };
    }
    let one_activity = end.activities == 1;
    if one_activity && end.only_activities && end.parks && end.time_left {
        return Step::Inline;
    }
    let hold = one_activity && end.parks && end.running;
    let hand_over = if short_cuts(load) {
        end.activities
    } else {
        usize::from(hold)
    };
    Step::Commit { hand_over, hold }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parked turn that scheduled one activity and nothing else, with
    /// time left: the most common step of a sequence.
    fn one_activity() -> TurnEnd {
        TurnEnd {
            activities: 1,
            only_activities: true,
            parks: true,
            running: true,
            inline_call: false,
            time_left: true,
        }
    }

    const IDLE: Load = Load {
        running_turns: 1,
        stopping: false,
    };

    const BUSY: Load = Load {
        running_turns: SHORT_CUT_TURNS + 1,
        stopping: false,
    };

    #[test]
    fn a_lone_activity_runs_inline_at_any_load() {
        assert_eq!(next_step(&one_activity(), &IDLE), Step::Inline);
        assert_eq!(next_step(&one_activity(), &BUSY), Step::Inline);
    }

    #[test]
    fn out_of_time_the_instance_is_held_for_its_activity() {
        let end = TurnEnd {
            time_left: false,
            ..one_activity()
        };
        let held = Step::Commit {
            hand_over: 1,
            hold: true,
        };
        assert_eq!(next_step(&end, &IDLE), held);
        assert_eq!(next_step(&end, &BUSY), held);
    }

    #[test]
    fn a_pending_timer_or_a_message_rules_out_inline_but_not_the_hold() {
        let end = TurnEnd {
            only_activities: false,
            ..one_activity()
        };
        assert_eq!(
            next_step(&end, &IDLE),
            Step::Commit {
                hand_over: 1,
                hold: true
            }
        );
    }

    #[test]
    fn without_the_cache_nothing_is_inline_or_held() {
        let end = TurnEnd {
            parks: false,
            ..one_activity()
        };
        assert_eq!(
            next_step(&end, &IDLE),
            Step::Commit {
                hand_over: 1,
                hold: false
            }
        );
        assert_eq!(
            next_step(&end, &BUSY),
            Step::Commit {
                hand_over: 0,
                hold: false
            }
        );
    }

    #[test]
    fn a_fan_out_is_handed_over_while_idle_and_queued_under_load() {
        let end = TurnEnd {
            activities: 3,
            ..one_activity()
        };
        assert_eq!(
            next_step(&end, &IDLE),
            Step::Commit {
                hand_over: 3,
                hold: false
            }
        );
        assert_eq!(
            next_step(&end, &BUSY),
            Step::Commit {
                hand_over: 0,
                hold: false
            }
        );
    }

    #[test]
    fn an_ending_instance_is_not_held() {
        let end = TurnEnd {
            running: false,
            only_activities: false,
            ..one_activity()
        };
        assert_eq!(
            next_step(&end, &IDLE),
            Step::Commit {
                hand_over: 1,
                hold: false
            }
        );
    }

    #[test]
    fn an_inline_call_still_running_is_handed_over_without_a_hold() {
        let end = TurnEnd {
            inline_call: true,
            ..one_activity()
        };
        let handed = Step::Commit {
            hand_over: 1,
            hold: false,
        };
        assert_eq!(next_step(&end, &IDLE), handed);
        assert_eq!(next_step(&end, &BUSY), handed);
    }

    #[test]
    fn a_stopping_runtime_takes_no_fast_path() {
        let stopping = Load {
            running_turns: 0,
            stopping: true,
        };
        assert!(!short_cuts(&stopping));
        assert_eq!(
            next_step(&one_activity(), &stopping),
            Step::Commit {
                hand_over: 0,
                hold: false
            }
        );
        let end = TurnEnd {
            inline_call: true,
            ..one_activity()
        };
        assert_eq!(
            next_step(&end, &stopping),
            Step::Commit {
                hand_over: 1,
                hold: false
            }
        );
    }

    #[test]
    fn short_cuts_stop_past_the_running_turn_limit() {
        assert!(short_cuts(&Load {
            running_turns: SHORT_CUT_TURNS,
            stopping: false
        }));
        assert!(!short_cuts(&BUSY));
    }
}
