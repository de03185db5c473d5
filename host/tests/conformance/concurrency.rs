//! Many tasks at once on one store: every write lands, and no instance is
//! handed to two fetchers at once.

use super::fixtures::*;

pub async fn concurrent_writes_from_many_tasks_all_land(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    store.create_instance(new_instance("a", now_ms())).await?;

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .enqueue_message("a", external_event(&format!("e{i}")), now_ms())
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }

    let messages = queued_events(&*store, "a").await?;
    assert_eq!(messages.len(), 201, "the start message and 200 events");
    let mut names: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            OrchestratorMessage::ExternalEvent { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 200);
    Ok(())
}

pub async fn concurrent_turns_of_many_instances_all_commit(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    for i in 0..50 {
        store
            .create_instance(new_instance(&format!("i{i}"), now_ms()))
            .await?;
    }
    let mut fetched = Vec::new();
    for _ in 0..50 {
        fetched.push(fetch(&*store, LONG_LOCK).await?);
    }

    let tasks: Vec<_> = fetched
        .iter()
        .map(|work| {
            let store = store.clone();
            let mut commit = empty_commit(work);
            commit.new_events = vec![started_event()];
            commit.activities = vec![work_for(&work.instance.instance_id)];
            tokio::spawn(async move { store.commit_turn(commit).await })
        })
        .collect();
    for task in tasks {
        task.await??;
    }

    for i in 0..50 {
        let id = format!("i{i}");
        assert_eq!(store.read_history(&id, 1).await?, vec![started_event()]);
        let record = store.instance(&id).await?.ok_or("instance missing")?;
        assert_eq!(
            (record.status, record.history_len),
            (InstanceStatus::Running, 1)
        );
    }
    assert_eq!(store.fetch_activity_work(100, LONG_LOCK).await?.len(), 50);
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    Ok(())
}

/// Eight fetchers share 200 instances, each of which needs two turns (its
/// first turn queues the message of the second): no instance is ever held
/// by two of them at once, and every instance gets exactly its two turns.
pub async fn no_instance_is_handed_to_two_fetchers_at_once(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    const INSTANCES: usize = 200;
    const FETCHERS: usize = 8;
    const TURNS: usize = 2;
    for i in 0..INSTANCES {
        store
            .create_instance(new_instance(&format!("i{i}"), now_ms()))
            .await?;
    }
    let held = Arc::new(Mutex::new(HashSet::<String>::new()));
    let turns = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let fetchers: Vec<_> = (0..FETCHERS)
        .map(|_| {
            let (store, held, turns) = (store.clone(), held.clone(), turns.clone());
            tokio::spawn(async move {
                fetch_turns(&*store, &held, &turns, INSTANCES * TURNS, deadline, TURNS).await
            })
        })
        .collect();
    for fetcher in fetchers {
        fetcher.await?.map_err(|e| e.to_string())?;
    }
    let turns = turns.lock().unwrap_or_else(PoisonError::into_inner);
    assert_eq!(turns.len(), INSTANCES);
    assert!(turns.values().all(|&n| n == TURNS), "{turns:?}");
    Ok(())
}

/// One fetcher of [`no_instance_is_handed_to_two_fetchers_at_once`]: runs
/// turns until `total` have run, failing if it is handed an instance that
/// another fetcher holds.
async fn fetch_turns(
    store: &dyn HistoryStore,
    held: &Mutex<HashSet<String>>,
    turns: &Mutex<HashMap<String, usize>>,
    total: usize,
    deadline: tokio::time::Instant,
    turns_each: usize,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    loop {
        let done: usize = turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .sum();
        if done >= total {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("only {done} of {total} turns ran before the deadline").into());
        }
        let batch = store
            .fetch_orchestration_batch(4, LONG_LOCK, Duration::ZERO)
            .await?;
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        for work in batch {
            let id = work.instance.instance_id.clone();
            let fresh = held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.clone());
            if !fresh {
                return Err(format!("'{id}' was handed to two fetchers at once").into());
            }
            // Let the other fetchers run while this one holds the instance.
            tokio::task::yield_now().await;
            let turn = {
                let mut turns = turns.lock().unwrap_or_else(PoisonError::into_inner);
                let n = turns.entry(id.clone()).or_default();
                *n += 1;
                *n
            };
            if turn < turns_each {
                store
                    .enqueue_message(&id, external_event("again"), now_ms())
                    .await?;
            }
            held.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            store.commit_turn(empty_commit(&work)).await?;
        }
    }
}
