//! The management queries every provider answers (list, bulk rows,
//! counts, purge, finish notices), on a store holding instances in every
//! state, written through the store's own turn commits. A provider's test
//! file implements [`Harness`] and stamps the scenarios with
//! [`management_suite!`].

#![allow(dead_code)]

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use duroxide::clock::system_now_ms as now_ms;
use duroxide::history::{ActivityWork, Event, OrchestratorMessage};
use duroxide::providers::query::{
    CountsQuery, InstanceCounts, InstanceFilter, InstanceSummary, ListOrder, PurgeFilter,
    PurgeOutcome,
};
use duroxide::providers::{
    HistoryStore, InstanceRecord, InstanceStatus, NewInstance, OrchestrationWork, OutgoingMessage,
    TurnCommit,
};

/// What a provider gives the scenarios: a fresh, empty store, and a look
/// at the rows it stored, past the contract.
pub trait Harness {
    /// The store.
    fn store(&self) -> &dyn HistoryStore;
    /// Rows stored for `id` in each table: instances, history,
    /// orchestrator queue, activity queue.
    fn stored_rows(&self, id: &str) -> impl Future<Output = Result<[i64; 4], Box<dyn Error>>>;
}

/// Stamps out, in a module named `$module`, one `#[tokio::test]` per
/// scenario, each on a fresh harness from `$factory` (an async fn beside
/// the call returning `Result<Option<impl Harness>, Box<dyn Error>>`;
/// `None` skips the scenario, its factory having said why).
macro_rules! management_suite {
    ($module:ident, $factory:ident) => {
        crate::management::management_suite!(@stamp $module, $factory;
            a_listing_carries_every_field_of_the_row,
            finished_at_is_set_by_the_commit_that_ends_the_instance,
            filters_narrow_a_listing,
            pages_by_cursor_and_offset_cover_the_listing_once,
            rows_by_id_keep_the_order_asked_and_skip_unknown_ids,
            counts_come_from_the_instance_rows,
            purging_one_instance_deletes_everything_stored_for_it,
            a_bulk_purge_takes_only_finished_instances_that_match,
            a_commit_that_ends_an_instance_wakes_its_waiters
        );
    };
    (@stamp $module:ident, $factory:ident; $($scenario:ident),+) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $scenario() -> crate::management::TestResult {
                    let Some(harness) = super::$factory().await? else {
                        return Ok(());
                    };
                    crate::management::$scenario(&harness).await
                }
            )+
        }
    };
}
pub(crate) use management_suite;

/// What every scenario returns.
pub type TestResult = Result<(), Box<dyn Error>>;

const LOCK: Duration = Duration::from_secs(30);

fn new_instance(id: &str, name: &str, parent: Option<(&str, u64)>) -> NewInstance {
    NewInstance {
        instance_id: id.to_owned(),
        orchestration_name: name.to_owned(),
        version: None,
        input: "in".to_owned(),
        parent_instance: parent.map(|(p, _)| p.to_owned()),
        parent_id: parent.map(|(_, t)| t),
        parent_execution_id: parent.map(|_| 1),
        visible_at_ms: now_ms(),
    }
}

fn started(name: &str) -> Event {
    Event::OrchestrationStarted {
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        input: "in".to_owned(),
        parent_instance: None,
        parent_id: None,
        started_at_ms: now_ms(),
    }
}

/// Fetches the one instance with visible messages: `id`.
async fn fetch(store: &dyn HistoryStore, id: &str) -> Result<OrchestrationWork, Box<dyn Error>> {
    let work = store
        .fetch_orchestration_work(LOCK)
        .await?
        .ok_or("expected work")?;
    assert_eq!(work.instance.instance_id, id);
    Ok(work)
}

/// A commit of `events` that leaves the instance in `status`.
fn commit(
    work: &OrchestrationWork,
    execution_id: u64,
    events: Vec<Event>,
    status: InstanceStatus,
) -> TurnCommit {
    let history_len_before = if execution_id == work.instance.execution_id {
        work.instance.history_len
    } else {
        0
    };
    TurnCommit {
        instance_id: work.instance.instance_id.clone(),
        lock_token: work.lock_token.clone(),
        execution_id,
        history_len_before,
        new_events: events,
        consumed_messages: work.messages.iter().map(|m| m.id).collect(),
        activities: Vec::new(),
        messages: Vec::new(),
        new_instances: Vec::new(),
        status,
        output: status.is_terminal().then(|| format!("{status:?}")),
        orchestration_version: Some("1.0.0".to_owned()),
        component_digest: None,
        custom_status: None,
        completed_activity: None,
    }
}

/// Creates `id` and runs one turn that leaves it in `status`. A running
/// one keeps an activity in the queue and a timer message due in an hour.
async fn make(
    store: &dyn HistoryStore,
    id: &str,
    name: &str,
    parent: Option<(&str, u64)>,
    status: InstanceStatus,
) -> Result<InstanceRecord, Box<dyn Error>> {
    let mut new = new_instance(id, name, parent);
    if status == InstanceStatus::Pending {
        // A delayed start: its start message stays queued, invisible.
        new.visible_at_ms += 3_600_000;
        store.create_instance(new).await?;
        return Ok(store.instance(id).await?.ok_or("missing")?);
    }
    store.create_instance(new).await?;
    let work = fetch(store, id).await?;
    let mut events = vec![started(name)];
    let mut turn = commit(&work, 1, Vec::new(), status);
    match status {
        InstanceStatus::Completed => events.push(Event::OrchestrationCompleted {
            output: "ok".into(),
        }),
        InstanceStatus::Failed => events.push(Event::OrchestrationFailed {
            error: "bad".into(),
        }),
        InstanceStatus::Cancelled => events.push(Event::OrchestrationCancelled {
            reason: "stop".into(),
        }),
        _ => {
            events.push(Event::ActivityScheduled {
                id: 1,
                name: "Work".into(),
                input: "x".into(),
            });
            events.push(Event::TimerCreated {
                id: 2,
                fire_at_ms: now_ms() + 3_600_000,
            });
            turn.activities.push(ActivityWork {
                instance: id.to_owned(),
                execution_id: 1,
                id: 1,
                name: "Work".into(),
                input: "x".into(),
            });
            turn.messages.push(OutgoingMessage {
                instance_id: id.to_owned(),
                message: OrchestratorMessage::TimerFired {
                    execution_id: 1,
                    id: 2,
                },
                visible_at_ms: now_ms() + 3_600_000,
            });
        }
    }
    turn.new_events = events;
    store.commit_turn(turn).await?;
    Ok(store.instance(id).await?.ok_or("missing")?)
}

/// Delays a start so the next instance is created in a later millisecond.
async fn next_ms() {
    let at = now_ms();
    while now_ms() == at {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// An instance to make: id, name, parent and task id, state.
type Planned = (
    &'static str,
    &'static str,
    Option<(&'static str, u64)>,
    InstanceStatus,
);

/// A store holding: p (pending), r1 r2 (running), c1 c2 (completed; c2 a
/// child of r1), f (failed), x (cancelled), and can (running, continued as
/// new once), each created a millisecond after the one before.
async fn populated(store: &dyn HistoryStore) -> Result<Vec<InstanceRecord>, Box<dyn Error>> {
    let mut records = Vec::new();
    let plan: [Planned; 7] = [
        ("r1", "Order", None, InstanceStatus::Running),
        ("c1", "Order", None, InstanceStatus::Completed),
        ("c2", "Ship", Some(("r1", 3)), InstanceStatus::Completed),
        ("f", "Order", None, InstanceStatus::Failed),
        ("x", "Ship", None, InstanceStatus::Cancelled),
        ("r2", "Ship", None, InstanceStatus::Running),
        ("p", "Order", None, InstanceStatus::Pending),
    ];
    for (id, name, parent, status) in plan {
        next_ms().await;
        records.push(make(store, id, name, parent, status).await?);
    }
    // "can": execution 1 continues as new; execution 2 runs.
    next_ms().await;
    store
        .create_instance(new_instance("can", "Loop", None))
        .await?;
    let work = fetch(store, "can").await?;
    let mut turn = commit(&work, 1, vec![started("Loop")], InstanceStatus::Running);
    turn.new_events.push(Event::ContinuedAsNew {
        input: "2".into(),
        version: None,
    });
    turn.messages.push(OutgoingMessage {
        instance_id: "can".into(),
        message: OrchestratorMessage::ExternalEvent {
            name: "next".into(),
            data: String::new(),
        },
        visible_at_ms: now_ms(),
    });
    store.commit_turn(turn).await?;
    let work = fetch(store, "can").await?;
    let turn = commit(&work, 2, vec![started("Loop")], InstanceStatus::Running);
    store.commit_turn(turn).await?;
    records.push(store.instance("can").await?.ok_or("missing")?);
    Ok(records)
}

fn ids(summaries: &[InstanceSummary]) -> Vec<&str> {
    summaries.iter().map(|s| s.instance_id.as_str()).collect()
}

/// A scenario of [`management_suite!`].
pub async fn a_listing_carries_every_field_of_the_row(h: &impl Harness) -> TestResult {
    let store = h.store();
    let records = populated(store).await?;
    let page = store.list_instances(&InstanceFilter::default()).await?;
    assert_eq!(
        ids(&page.instances),
        vec!["can", "p", "r2", "x", "f", "c2", "c1", "r1"],
        "newest first"
    );
    assert_eq!(page.next, None, "no limit, no next page");
    for summary in &page.instances {
        let record = records
            .iter()
            .find(|r| r.instance_id == summary.instance_id)
            .ok_or("unknown id")?;
        let expected = InstanceSummary {
            instance_id: record.instance_id.clone(),
            orchestration_name: record.orchestration_name.clone(),
            orchestration_version: record.orchestration_version.clone(),
            status: record.status,
            created_at_ms: record.created_at_ms,
            updated_at_ms: record.updated_at_ms,
            finished_at_ms: record.finished_at_ms,
            execution_count: record.execution_id,
            parent_instance: record.parent_instance.clone(),
            parent_id: record.parent_id,
        };
        assert_eq!(summary, &expected);
    }
    let child = &page.instances[5];
    assert_eq!(
        (child.parent_instance.as_deref(), child.parent_id),
        (Some("r1"), Some(3))
    );
    assert_eq!(
        page.instances[0].execution_count, 2,
        "continued as new once"
    );
    assert_eq!(page.instances[1].orchestration_version, None, "not started");
    Ok(())
}

/// A scenario of [`management_suite!`].
pub async fn finished_at_is_set_by_the_commit_that_ends_the_instance(
    h: &impl Harness,
) -> TestResult {
    let store = h.store();
    let records = populated(store).await?;
    for record in &records {
        if record.status.is_terminal() {
            assert_eq!(
                record.finished_at_ms,
                Some(record.updated_at_ms),
                "{}",
                record.instance_id
            );
        } else {
            assert_eq!(record.finished_at_ms, None, "{}", record.instance_id);
        }
    }
    // A later same-status turn of a finished instance keeps the end time.
    store
        .enqueue_message(
            "c1",
            OrchestratorMessage::ExternalEvent {
                name: "late".into(),
                data: String::new(),
            },
            now_ms(),
        )
        .await?;
    let before = store.instance("c1").await?.ok_or("missing")?;
    next_ms().await;
    let work = fetch(store, "c1").await?;
    store
        .commit_turn(commit(&work, 1, Vec::new(), InstanceStatus::Completed))
        .await?;
    let after = store.instance("c1").await?.ok_or("missing")?;
    assert!(after.updated_at_ms > before.updated_at_ms);
    assert_eq!(after.finished_at_ms, before.finished_at_ms);
    Ok(())
}

/// A scenario of [`management_suite!`].
pub async fn filters_narrow_a_listing(h: &impl Harness) -> TestResult {
    let store = h.store();
    let records = populated(store).await?;
    let list = |filter: InstanceFilter| async move { store.list_instances(&filter).await };
    let running = list(InstanceFilter {
        status: Some(vec![InstanceStatus::Running]),
        ..InstanceFilter::default()
    })
    .await?;
    assert_eq!(ids(&running.instances), vec!["can", "r2", "r1"]);

    let finished = list(InstanceFilter {
        status: Some(vec![
            InstanceStatus::Failed,
            InstanceStatus::Completed,
            InstanceStatus::Cancelled,
        ]),
        order: ListOrder::OldestFirst,
        ..InstanceFilter::default()
    })
    .await?;
    assert_eq!(ids(&finished.instances), vec!["c1", "c2", "f", "x"]);

    let ships = list(InstanceFilter {
        orchestration_name: Some("Ship".into()),
        ..InstanceFilter::default()
    })
    .await?;
    assert_eq!(ids(&ships.instances), vec!["r2", "x", "c2"]);

    let children = list(InstanceFilter {
        parent_instance: Some("r1".into()),
        ..InstanceFilter::default()
    })
    .await?;
    assert_eq!(ids(&children.instances), vec!["c2"]);

    // Created in [f, r2): f and x.
    let at = |id: &str| {
        records
            .iter()
            .find(|r| r.instance_id == id)
            .map(|r| r.created_at_ms)
    };
    let window = list(InstanceFilter {
        created_after_ms: at("f"),
        created_before_ms: at("r2"),
        ..InstanceFilter::default()
    })
    .await?;
    assert_eq!(ids(&window.instances), vec!["x", "f"]);

    let failed_since = list(InstanceFilter {
        finished_after_ms: records
            .iter()
            .find(|r| r.instance_id == "f")
            .and_then(|r| r.finished_at_ms),
        ..InstanceFilter::default()
    })
    .await?;
    assert_eq!(ids(&failed_since.instances), vec!["x", "f"]);

    let combined = list(InstanceFilter {
        status: Some(vec![InstanceStatus::Running, InstanceStatus::Completed]),
        orchestration_name: Some("Ship".into()),
        ..InstanceFilter::default()
    })
    .await?;
    assert_eq!(ids(&combined.instances), vec!["r2", "c2"]);
    Ok(())
}

/// A scenario of [`management_suite!`].
pub async fn pages_by_cursor_and_offset_cover_the_listing_once(h: &impl Harness) -> TestResult {
    let store = h.store();
    populated(store).await?;
    let all = store
        .list_instances(&InstanceFilter::default())
        .await?
        .instances;
    for order in [ListOrder::NewestFirst, ListOrder::OldestFirst] {
        for status in [
            None,
            Some(vec![InstanceStatus::Running, InstanceStatus::Completed]),
        ] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .list_instances(&InstanceFilter {
                        status: status.clone(),
                        order,
                        after: after.clone(),
                        limit: Some(3),
                        ..InstanceFilter::default()
                    })
                    .await?;
                assert!(page.instances.len() <= 3);
                seen.extend(page.instances);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            let mut expected: Vec<&InstanceSummary> = all
                .iter()
                .filter(|s| status.as_ref().is_none_or(|set| set.contains(&s.status)))
                .collect();
            if order == ListOrder::OldestFirst {
                expected.reverse();
            }
            assert_eq!(
                seen.iter().collect::<Vec<_>>(),
                expected,
                "{order:?} {status:?}"
            );
        }
    }
    let offset = store
        .list_instances(&InstanceFilter {
            limit: Some(2),
            offset: Some(3),
            ..InstanceFilter::default()
        })
        .await?;
    assert_eq!(ids(&offset.instances), vec!["x", "f"]);
    assert_eq!(
        offset.next.map(|c| c.instance_id),
        Some("f".to_owned()),
        "a full page hands back its last row"
    );
    Ok(())
}

/// A scenario of [`management_suite!`].
pub async fn rows_by_id_keep_the_order_asked_and_skip_unknown_ids(h: &impl Harness) -> TestResult {
    let store = h.store();
    populated(store).await?;
    let asked: Vec<String> = ["f", "nope", "r1", "c2"].map(String::from).to_vec();
    let rows = store.instances_by_id(&asked).await?;
    let got: Vec<(&str, InstanceStatus)> = rows
        .iter()
        .map(|r| (r.instance_id.as_str(), r.status))
        .collect();
    assert_eq!(
        got,
        vec![
            ("f", InstanceStatus::Failed),
            ("r1", InstanceStatus::Running),
            ("c2", InstanceStatus::Completed)
        ]
    );
    assert_eq!(rows[0].output.as_deref(), Some("Failed"));
    Ok(())
}

/// A scenario of [`management_suite!`].
pub async fn counts_come_from_the_instance_rows(h: &impl Harness) -> TestResult {
    let store = h.store();
    let records = populated(store).await?;
    let created = |id: &str| {
        records
            .iter()
            .find(|r| r.instance_id == id)
            .map_or(0, |r| r.created_at_ms)
    };
    let failed_at = records
        .iter()
        .find(|r| r.instance_id == "f")
        .and_then(|r| r.finished_at_ms)
        .ok_or("f has no end")?;
    // r1 is long-running (created before r2); f failed recently.
    let counts = store
        .instance_counts(CountsQuery {
            tenant: None,
            long_running_before_ms: created("r2"),
            recent_since_ms: failed_at,
        })
        .await?;
    assert_eq!(
        counts,
        InstanceCounts {
            pending: 1,
            running: 3,
            completed: 2,
            failed: 1,
            cancelled: 1,
            long_running: 1,
            recent_failures: 1,
        }
    );
    assert_eq!(counts.total(), 8);
    let later = store
        .instance_counts(CountsQuery {
            tenant: None,
            long_running_before_ms: 0,
            recent_since_ms: failed_at + 1,
        })
        .await?;
    assert_eq!((later.long_running, later.recent_failures), (0, 0));
    Ok(())
}

/// A scenario of [`management_suite!`].
pub async fn purging_one_instance_deletes_everything_stored_for_it(h: &impl Harness) -> TestResult {
    let store = h.store();
    populated(store).await?;
    assert_eq!(store.purge_instance("nope").await?, PurgeOutcome::NotFound);
    assert_eq!(
        store.purge_instance("r1").await?,
        PurgeOutcome::NotFinished(InstanceStatus::Running)
    );
    assert_eq!(
        store.purge_instance("p").await?,
        PurgeOutcome::NotFinished(InstanceStatus::Pending)
    );
    assert_eq!(h.stored_rows("r1").await?, [1, 1, 1, 1], "r1 untouched");

    // A finished instance with a message still queued for it.
    store
        .enqueue_message(
            "c1",
            OrchestratorMessage::ExternalEvent {
                name: "late".into(),
                data: String::new(),
            },
            now_ms() + 60_000,
        )
        .await?;
    assert_eq!(h.stored_rows("c1").await?, [1, 1, 1, 0]);
    assert_eq!(store.purge_instance("c1").await?, PurgeOutcome::Purged);
    assert_eq!(h.stored_rows("c1").await?, [0, 0, 0, 0]);
    assert_eq!(store.instance("c1").await?, None);
    assert_eq!(store.purge_instance("c1").await?, PurgeOutcome::NotFound);
    Ok(())
}

/// A scenario of [`management_suite!`].
pub async fn a_bulk_purge_takes_only_finished_instances_that_match(h: &impl Harness) -> TestResult {
    let store = h.store();
    populated(store).await?;
    let cutoff = now_ms() + 1;
    // Nothing finished before the epoch.
    let none = PurgeFilter {
        tenant: None,
        finished_before_ms: 0,
        orchestration_name: None,
        status: None,
    };
    assert_eq!(store.purge_finished(&none, 500).await?, 0);

    // Failed Orders only: f.
    let failed_orders = PurgeFilter {
        tenant: None,
        finished_before_ms: cutoff,
        orchestration_name: Some("Order".into()),
        status: Some(vec![InstanceStatus::Failed, InstanceStatus::Running]),
    };
    assert_eq!(store.purge_finished(&failed_orders, 500).await?, 1);
    assert_eq!(store.instance("f").await?, None);

    // The rest of the finished ones, one per batch.
    let all = PurgeFilter {
        tenant: None,
        finished_before_ms: cutoff,
        orchestration_name: None,
        status: None,
    };
    let mut batches = Vec::new();
    loop {
        let n = store.purge_finished(&all, 1).await?;
        batches.push(n);
        if n < 1 {
            break;
        }
    }
    assert_eq!(batches, vec![1, 1, 1, 0], "c1, c2, x, then nothing");
    let left = store.list_instances(&InstanceFilter::default()).await?;
    assert_eq!(ids(&left.instances), vec!["can", "p", "r2", "r1"]);
    for id in ["c1", "c2", "x", "f"] {
        assert_eq!(h.stored_rows(id).await?, [0, 0, 0, 0], "{id}");
    }
    assert_eq!(h.stored_rows("r2").await?, [1, 1, 1, 1]);
    Ok(())
}

/// A scenario of [`management_suite!`].
pub async fn a_commit_that_ends_an_instance_wakes_its_waiters(h: &impl Harness) -> TestResult {
    let store = h.store();
    let notices = store
        .finish_notices()
        .ok_or("the store announces finishes")?;
    store
        .create_instance(new_instance("a", "Order", None))
        .await?;
    let watch = notices.subscribe("a");
    let other = notices.subscribe("b");
    let mut waiting = std::pin::pin!(watch.notify().notified());
    waiting.as_mut().enable();
    let mut other_waiting = std::pin::pin!(other.notify().notified());
    other_waiting.as_mut().enable();

    let work = fetch(store, "a").await?;
    store
        .commit_turn(commit(
            &work,
            1,
            vec![started("Order")],
            InstanceStatus::Running,
        ))
        .await?;
    assert!(
        tokio::time::timeout(Duration::from_millis(50), waiting.as_mut())
            .await
            .is_err(),
        "a turn that leaves it running announces nothing"
    );
    store
        .enqueue_message(
            "a",
            OrchestratorMessage::ExternalEvent {
                name: "go".into(),
                data: String::new(),
            },
            now_ms(),
        )
        .await?;
    let work = fetch(store, "a").await?;
    store
        .commit_turn(commit(
            &work,
            1,
            vec![Event::OrchestrationCompleted { output: "o".into() }],
            InstanceStatus::Completed,
        ))
        .await?;
    tokio::time::timeout(Duration::from_secs(5), waiting).await?;
    assert!(
        tokio::time::timeout(Duration::from_millis(20), other_waiting)
            .await
            .is_err(),
        "another instance's waiter sleeps on"
    );
    assert_eq!(notices.watched(), 2);
    assert_eq!(
        Arc::strong_count(&notices),
        4,
        "the store, this test and two watches"
    );
    Ok(())
}
