//! The behaviour every [`HistoryStore`] provider must show, written once
//! against `dyn HistoryStore`: queue semantics, peek-locks with expiry and
//! takeover, instance exclusivity, atomic turn commits, delayed visibility,
//! attempt counts, renewal and deferral, held turns, hand-over of a
//! completion's turn, lookahead fetches, per-execution histories, and
//! tenants (filtered management queries, artifacts, fair fetches).
//!
//! Each scenario is one `pub async fn` taking a fresh, empty store.
//! [`suite!`] stamps out one `#[tokio::test]` per scenario for a provider's
//! factory, so a provider cannot skip one by forgetting it: a test file
//! declares `mod conformance;` at its root and calls
//! `conformance::suite!(module_name, factory)`.
//!
//! The fast paths of the contract (locking activities with a commit,
//! holding an instance, handing over a completion's turn, lookahead) are
//! optional for a provider: the trait's defaults decline them, and the
//! runtime then goes through the queues. [`fast_path_suite!`] stamps their
//! scenarios for a provider that implements them.
//!
//! The helpers are public so that provider-specific test files can reuse them.
//!
//! It lives among the integration tests rather than in the library behind a
//! cargo feature: every provider lives in this crate (`providers/sqlite`,
//! later `providers/postgres`), so a test file per provider is all it takes,
//! and the library ships no test code or test-only dependencies. A provider
//! in another crate would be the reason to move it behind a feature.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use duroxide::providers::HistoryStore;

pub mod fixtures;

mod activities;
mod artifacts;
mod concurrency;
mod fast_paths;
mod queues;
mod signals;
mod tenants;
mod turns;

pub use activities::*;
pub use artifacts::*;
pub use concurrency::*;
pub use fast_paths::*;
pub use queues::*;
pub use signals::*;
pub use tenants::*;
pub use turns::*;

/// What a provider's factory makes: a store and what to keep until the
/// test ends, or (`Option`) nothing when the provider's server is not
/// there, which skips the scenario. Only a factory that reports why it
/// skips, and fails instead when its server is required, returns `None`.
pub trait Provided {
    /// What the test keeps until it ends.
    type Keep;
    /// The store and what to keep, if there is a store.
    fn provided(self) -> Option<(Arc<dyn HistoryStore>, Self::Keep)>;
}

impl<G> Provided for (Arc<dyn HistoryStore>, G) {
    type Keep = G;
    fn provided(self) -> Option<(Arc<dyn HistoryStore>, G)> {
        Some(self)
    }
}

impl<G> Provided for Option<(Arc<dyn HistoryStore>, G)> {
    type Keep = G;
    fn provided(self) -> Option<(Arc<dyn HistoryStore>, G)> {
        self
    }
}

/// What every scenario returns.
pub type TestResult = Result<(), Box<dyn Error>>;

/// Long enough that a lock never expires during a test that does not want it to.
pub const LONG_LOCK: Duration = Duration::from_secs(30);
/// Short enough to watch a lock expire within a fast test.
pub const SHORT_LOCK: Duration = Duration::from_millis(100);

/// Stamps out, in a module named `$module`, one `#[tokio::test]` per
/// scenario, each on a fresh store from `$factory`: the name of an async fn
/// beside the call, returning `Result<(Arc<dyn HistoryStore>, G), Box<dyn
/// Error>>`, where `G` (a temporary directory, a database to drop) is kept
/// until the test ends, or `Result<Option<(...)>, ...>` for a provider whose
/// server may be missing: `None` passes the test without running it (the
/// factory says why, see [`Provided`]). Scenarios that spread work over tasks run on a
/// multi-thread runtime; the others on a current-thread one, where `join!`
/// queues every write of a group before the store serves the first.
macro_rules! suite {
    ($module:ident, $factory:ident) => {
        crate::conformance::suite!(@stamp $module, $factory;
            current:
                create_then_duplicate_is_instance_exists,
                enqueue_to_unknown_instance_is_not_found,
                fetch_locks_the_instance_until_the_lock_expires,
                release_makes_the_instance_fetchable_at_once,
                commit_turn_writes_history_queues_and_instance,
                commit_with_a_wrong_or_expired_token_is_lock_lost,
                activity_round_trip_enqueues_the_completion,
                complete_after_lock_loss_is_lock_lost,
                delayed_start_is_invisible_until_due,
                next_wake_reports_a_future_timer,
                a_failing_write_fails_alone_in_its_batch,
                a_turn_that_lost_its_lock_writes_nothing_beside_one_that_commits,
                a_batch_fetch_locks_distinct_instances_oldest_first,
                a_write_failing_partway_is_undone_alone,
                a_renewed_activity_lock_outlasts_its_first_length,
                an_expired_activity_lock_cannot_be_renewed,
                deferred_activity_work_comes_back_later_without_an_attempt_counted,
                a_deferred_instance_comes_back_later_without_an_attempt_counted,
                attempts_count_every_fetch_until_the_work_is_done,
                each_execution_keeps_its_own_history,
                signal_with_start_creates_once_then_queues_and_refuses_a_finished_instance,
                a_signal_with_start_event_waits_for_a_delayed_start,
                text_limits_are_stored_once_for_everyone_and_replaced,
                the_fetch_of_a_first_turn_marks_the_instance_running,
                an_artifact_is_stored_once_and_listed_oldest_first,
                an_artifact_keeps_the_policy_it_was_first_stored_with,
                a_pinned_artifact_cannot_be_removed_until_its_instances_finish,
                management_queries_see_only_the_tenant_asked_for,
                a_fetch_takes_turns_between_tenants,
                single_slot_fetches_rotate_through_the_tenants,
                artifacts_belong_to_their_tenant;
            multi:
                concurrent_signals_with_start_create_one_instance_and_queue_every_event,
                concurrent_writes_from_many_tasks_all_land,
                concurrent_turns_of_many_instances_all_commit,
                no_instance_is_handed_to_two_fetchers_at_once
        );
    };
    (@stamp $module:ident, $factory:ident;
        current: $($current:ident),+) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $current() -> $crate::conformance::TestResult {
                    let Some((store, _keep)) = $crate::conformance::Provided::provided(
                        super::$factory().await?,
                    ) else {
                        return Ok(());
                    };
                    $crate::conformance::$current(store).await
                }
            )+
        }
    };
    (@stamp $module:ident, $factory:ident;
        current: $($current:ident),+;
        multi: $($multi:ident),+) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $current() -> $crate::conformance::TestResult {
                    let Some((store, _keep)) = $crate::conformance::Provided::provided(
                        super::$factory().await?,
                    ) else {
                        return Ok(());
                    };
                    $crate::conformance::$current(store).await
                }
            )+
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $multi() -> $crate::conformance::TestResult {
                    let Some((store, _keep)) = $crate::conformance::Provided::provided(
                        super::$factory().await?,
                    ) else {
                        return Ok(());
                    };
                    $crate::conformance::$multi(store).await
                }
            )+
        }
    };
}
pub(crate) use suite;

/// Stamps out, like [`suite!`], the scenarios of the optional fast paths,
/// for a provider that implements them.
macro_rules! fast_path_suite {
    ($module:ident, $factory:ident) => {
        crate::conformance::suite!(@stamp $module, $factory;
            current:
                a_turn_can_lock_the_first_activities_it_schedules_for_its_caller,
                a_turn_that_lost_its_lock_locks_no_activities,
                a_turn_can_hold_its_instance_and_commit_the_completion_with_the_next_turn,
                a_turn_with_a_message_queued_does_not_hold_its_instance,
                a_held_turn_whose_activity_lost_its_lock_writes_nothing,
                a_completion_locks_a_free_instance_and_hands_over_its_turn,
                a_completion_for_a_locked_instance_waits_in_its_queue,
                a_completion_and_lock_after_lock_loss_writes_nothing,
                a_fetch_with_lookahead_locks_work_due_soon_until_past_its_time,
                a_lookahead_fetch_takes_only_messages_due_by_the_turn
        );
    };
}
pub(crate) use fast_path_suite;
