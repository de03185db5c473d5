//! The `management` workload: the operator's queries on a store holding
//! `n` instances (100,000 by default), finished and running.
//!
//! The store is filled by direct SQL in one transaction (about a second)
//! rather than by running `n` orchestrations (minutes): each instance gets
//! the rows a real run leaves, in the store's own encoding (an instance row,
//! its history as turn rows of serialized events, and for a running one an
//! activity work item and a timer message due later). The store object is
//! opened first, so the schema is the migrated one, and the queries then run
//! through the `Client` as an operator's would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use duroxide::clock::system_now_ms as now_ms;
use duroxide::history::{ActivityWork, Event, OrchestratorMessage};

use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::{Client, InstanceFilter, InstanceStatus, PurgeFilter};

/// Orchestration names the instances are spread over.
const NAMES: usize = 10;

/// The state of instance `i`: 55% completed, 10% failed, 5% cancelled, 30% running.
fn status_of(i: usize) -> InstanceStatus {
    match i % 20 {
        0..=10 => InstanceStatus::Completed,
        11 | 12 => InstanceStatus::Failed,
        13 => InstanceStatus::Cancelled,
        _ => InstanceStatus::Running,
    }
}

/// Writes `n` instances, created one a second apart ending now.
fn fill(path: &std::path::Path, n: usize) -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    let tx = conn.transaction()?;
    {
        let mut instance = tx.prepare(
            "INSERT INTO instances (instance_id, orchestration_name, orchestration_version,
                 status, output, execution_id, history_len, created_at, updated_at,
                 finished_at, next_visible_at)
             VALUES (?1, ?2, '1.0.0', ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut history = tx.prepare(
            "INSERT INTO history (instance_id, execution_id, seq, event) VALUES (?1, 1, ?2, ?3)",
        )?;
        let mut activity = tx.prepare(
            "INSERT INTO activity_queue (instance_id, message, visible_at) VALUES (?1, ?2, ?3)",
        )?;
        let mut message = tx.prepare(
            "INSERT INTO orchestrator_queue (instance_id, message, visible_at) VALUES (?1, ?2, ?3)",
        )?;
        let now = i64::try_from(now_ms())?;
        let count = i64::try_from(n)?;
        for i in 0..n {
            let id = format!("mgmt-{i:06}");
            let name = format!("Orchestration{}", i % NAMES);
            let status = status_of(i);
            let created = now - (count - i64::try_from(i)?) * 1000;
            let started = Event::OrchestrationStarted {
                name: name.clone(),
                version: "1.0.0".into(),
                input: format!("{{\"n\":{i}}}"),
                parent_instance: None,
                parent_id: None,
                started_at_ms: u64::try_from(created)?,
            };
            let first = vec![
                started,
                Event::ActivityScheduled {
                    id: 1,
                    name: "Charge".into(),
                    input: "{}".into(),
                },
            ];
            let mut second = vec![
                Event::TurnStarted {
                    at_ms: u64::try_from(created + 200)?,
                },
                Event::ActivityCompleted {
                    id: 1,
                    output: "ok".into(),
                },
            ];
            let ended = created + 500;
            let (output, finished) = match status {
                InstanceStatus::Completed => {
                    second.push(Event::OrchestrationCompleted {
                        output: "done".into(),
                    });
                    (Some("done"), Some(ended))
                }
                InstanceStatus::Failed => {
                    second.push(Event::OrchestrationFailed {
                        error: "bad".into(),
                    });
                    (Some("bad"), Some(ended))
                }
                InstanceStatus::Cancelled => {
                    second.push(Event::OrchestrationCancelled {
                        reason: "stop".into(),
                    });
                    (Some("stop"), Some(ended))
                }
                _ => {
                    second.extend([
                        Event::ActivityScheduled {
                            id: 2,
                            name: "Ship".into(),
                            input: "{}".into(),
                        },
                        Event::TimerCreated {
                            id: 3,
                            fire_at_ms: u64::try_from(now + 86_400_000)?,
                        },
                        Event::EventSubscribed {
                            id: 4,
                            name: "Approval".into(),
                        },
                    ]);
                    (None, None)
                }
            };
            let running = finished.is_none();
            let due = now + 86_400_000;
            let len = i64::try_from(first.len() + second.len())?;
            instance.execute(rusqlite::params![
                id,
                name,
                status.as_str(),
                output,
                len,
                created,
                finished.unwrap_or(created + 200),
                finished,
                running.then_some(due),
            ])?;
            history.execute(rusqlite::params![id, 0, serde_json::to_string(&first)?])?;
            history.execute(rusqlite::params![
                id,
                i64::try_from(first.len())?,
                serde_json::to_string(&second)?
            ])?;
            if running {
                let work = ActivityWork {
                    instance: id.clone(),
                    execution_id: 1,
                    id: 2,
                    name: "Ship".into(),
                    input: "{}".into(),
                };
                // Not due for a day: the runtime-less store keeps it queued.
                activity.execute(rusqlite::params![id, serde_json::to_string(&work)?, due])?;
                let timer = OrchestratorMessage::TimerFired {
                    execution_id: 1,
                    id: 3,
                };
                message.execute(rusqlite::params![id, serde_json::to_string(&timer)?, due])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// The median of `runs` timings of `f`, in milliseconds.
async fn median_ms<F, Fut, T>(runs: usize, mut f: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f().await?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// `page` with its cursor `depth` rows into its listing, reached in pages
/// of 1,000.
async fn deep_page(
    client: &Client,
    page: &InstanceFilter,
    depth: usize,
) -> anyhow::Result<InstanceFilter> {
    let mut after = None;
    let mut skipped = 0;
    while skipped < depth {
        let chunk = client
            .list_instances(Some(InstanceFilter {
                after: after.clone(),
                limit: Some(1000),
                ..page.clone()
            }))
            .await?;
        skipped += chunk.instances.len();
        after = chunk.next;
        anyhow::ensure!(after.is_some(), "the listing ended after {skipped} rows");
    }
    let deep = InstanceFilter {
        after,
        ..page.clone()
    };
    let found = client.list_instances(Some(deep.clone())).await?;
    anyhow::ensure!(found.instances.len() == 100, "a full deep page");
    Ok(deep)
}

/// Fills a store with `n` instances and times list, deep list, health,
/// details and purge.
pub async fn run(n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("management.db");
    let store = Arc::new(SqliteHistoryStore::new(&format!("sqlite:{}", path.display())).await?);
    let filled = Instant::now();
    tokio::task::spawn_blocking({
        let path = path.clone();
        move || fill(&path, n)
    })
    .await??;
    let fill_ms = filled.elapsed().as_millis();
    let client = Client::new(store.clone());

    // A filtered page of 100: the completed instances of one orchestration.
    let page = InstanceFilter {
        status: Some(vec![InstanceStatus::Completed]),
        limit: Some(100),
        ..InstanceFilter::default()
    };
    let first = client.list_instances(Some(page.clone())).await?;
    anyhow::ensure!(first.instances.len() == 100, "a full first page");
    let list_ms = median_ms(21, || async {
        Ok(client.list_instances(Some(page.clone())).await?)
    })
    .await?;

    // The same filter 50,000 rows deep, reached by cursor.
    let depth = 50_000.min(n / 2);
    let deep = deep_page(&client, &page, depth).await?;
    let list_deep_ms = median_ms(21, || async {
        Ok(client.list_instances(Some(deep.clone())).await?)
    })
    .await?;
    // Two statuses (one index range each, merged), as deep.
    let two = InstanceFilter {
        status: Some(vec![InstanceStatus::Completed, InstanceStatus::Failed]),
        ..page.clone()
    };
    let two_deep = deep_page(&client, &two, depth).await?;
    let list_two_status_deep_ms = median_ms(21, || async {
        Ok(client.list_instances(Some(two_deep.clone())).await?)
    })
    .await?;
    // The same depth by offset, for contrast.
    let by_offset = InstanceFilter {
        offset: Some(u32::try_from(depth)?),
        ..page.clone()
    };
    let list_offset_ms = median_ms(5, || async {
        Ok(client.list_instances(Some(by_offset.clone())).await?)
    })
    .await?;

    let health = client.get_system_health().await?;
    anyhow::ensure!(
        health.total_instances == u64::try_from(n)?,
        "every instance counted"
    );
    let health_ms = median_ms(11, || async { Ok(client.get_system_health().await?) }).await?;

    // A running instance: its pending activity, timer and event wait.
    let running = format!("mgmt-{:06}", n / 2 - (n / 2) % 20 + 15);
    let details = client
        .get_instance_details(&running)
        .await?
        .context("the running instance exists")?;
    let current = details.current_execution.context("it runs")?;
    anyhow::ensure!(
        current.pending_activities.len() == 1
            && current.pending_timers.len() == 1
            && current.pending_events.len() == 1,
        "its pending work is found"
    );
    let details_ms = median_ms(51, || async {
        Ok(client.get_instance_details(&running).await?)
    })
    .await?;

    // Every finished instance, in batches, as retention would.
    let started = Instant::now();
    let purged = client
        .purge_finished(PurgeFilter {
            tenant: None,
            finished_before_ms: now_ms() + 1,
            orchestration_name: None,
            status: None,
        })
        .await?;
    let purge_s = started.elapsed().as_secs_f64();
    let left = client.get_system_health().await?;
    anyhow::ensure!(
        left.total_instances == left.running_instances && left.running_instances > 0,
        "only running instances are left"
    );
    println!(
        "workload=management instances={n} list_ms={list_ms:.2} list_deep_ms={list_deep_ms:.2} \
         list_offset_deep_ms={list_offset_ms:.2} \
         list_two_status_deep_ms={list_two_status_deep_ms:.2} health_ms={health_ms:.2} details_ms={details_ms:.2} \
         purge_per_s={:.0} purged={purged} fill_ms={fill_ms}",
        purged as f64 / purge_s.max(1e-9)
    );
    store.close().await;
    Ok(())
}
