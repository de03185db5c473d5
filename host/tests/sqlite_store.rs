//! Tests of the SQLite history store: the conformance suite every provider
//! passes, on a fresh file and on a private in-memory database, and what only
//! SQLite has (files, URLs, the schema, closing).

mod conformance;

use std::error::Error;
use std::sync::Arc;

use duroxide::clock::system_now_ms as now_ms;
use duroxide::providers::sqlite::{Durability, SqliteHistoryStore, SqliteOptions};
use duroxide::providers::{HistoryStore, InstanceStatus, StoreError};
use tempfile::TempDir;

use conformance::fixtures::{
    LONG_LOCK, TestResult, empty_commit, expect_err, external_event, fetch, new_instance,
    queued_events, started_event, work,
};

/// A fresh store on a new file in its own temporary directory.
async fn sqlite_file() -> Result<(Arc<dyn HistoryStore>, TempDir), Box<dyn Error>> {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    Ok((Arc::new(store), dir))
}

/// A fresh private in-memory store.
async fn sqlite_memory() -> Result<(Arc<dyn HistoryStore>, ()), Box<dyn Error>> {
    Ok((Arc::new(SqliteHistoryStore::new_in_memory().await?), ()))
}

conformance::suite!(file, sqlite_file);
conformance::suite!(memory, sqlite_memory);
conformance::fast_path_suite!(file_fast_paths, sqlite_file);
conformance::fast_path_suite!(memory_fast_paths, sqlite_memory);

async fn open(dir: &TempDir) -> Result<SqliteHistoryStore, StoreError> {
    let path = dir.path().join("store.db");
    SqliteHistoryStore::new(&format!("sqlite:{}", path.display())).await
}

#[tokio::test]
async fn data_survives_reopening_the_file() -> TestResult {
    let dir = TempDir::new()?;
    let events = vec![started_event()];
    {
        let store = open(&dir).await?;
        store.create_instance(new_instance("a", now_ms())).await?;
        let fetched = fetch(&store, LONG_LOCK).await?;
        let mut commit = empty_commit(&fetched);
        commit.new_events = events.clone();
        commit.activities = vec![work("a", 1)];
        store.commit_turn(commit).await?;
        store.close().await;
    }

    let store = open(&dir).await?;
    assert_eq!(store.read_history("a", 1).await?, events);
    let record = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!(
        (record.status, record.history_len),
        (InstanceStatus::Running, 1)
    );
    assert_eq!(
        store.fetch_activity_work(10, LONG_LOCK).await?[0].work,
        work("a", 1)
    );
    Ok(())
}

#[tokio::test]
async fn opens_bare_paths_absolute_urls_and_memory() -> TestResult {
    let dir = TempDir::new()?;
    let bare = dir.path().join("bare.db");
    let absolute = dir.path().canonicalize()?.join("absolute.db");
    let stores = [
        SqliteHistoryStore::new(&bare.display().to_string()).await?,
        SqliteHistoryStore::with_options(
            &format!("sqlite://{}", absolute.display()),
            SqliteOptions {
                synchronous: Durability::Normal,
                ..SqliteOptions::default()
            },
        )
        .await?,
        SqliteHistoryStore::new_in_memory().await?,
    ];
    for store in &stores {
        store.create_instance(new_instance("a", now_ms())).await?;
        assert_eq!(fetch(store, LONG_LOCK).await?.messages.len(), 1);
    }
    assert!(bare.exists() && absolute.exists());
    Ok(())
}

#[tokio::test]
async fn two_stores_on_one_file_never_hand_out_the_same_instance() -> TestResult {
    let dir = TempDir::new()?;
    let first = Arc::new(open(&dir).await?);
    let second = Arc::new(open(&dir).await?);
    for i in 0..20 {
        first
            .create_instance(new_instance(&format!("i{i}"), now_ms()))
            .await?;
    }

    let drain = |store: Arc<SqliteHistoryStore>| {
        tokio::spawn(async move {
            let mut taken = Vec::new();
            while let Some(work) = store.fetch_orchestration_work(LONG_LOCK).await? {
                taken.push(work.instance.instance_id);
            }
            Ok::<_, StoreError>(taken)
        })
    };
    let (a, b) = tokio::join!(drain(first), drain(second));
    let mut taken = a??;
    taken.extend(b??);
    taken.sort();
    let before = taken.len();
    taken.dedup();
    assert_eq!((before, taken.len()), (20, 20));
    Ok(())
}

#[tokio::test]
async fn close_commits_queued_writes_then_refuses_new_ones() -> TestResult {
    let dir = TempDir::new()?;
    {
        let store = open(&dir).await?;
        store.create_instance(new_instance("a", now_ms())).await?;
        // Queued before the close request, so committed before the writer stops.
        let (first, second, ()) = tokio::join!(
            store.enqueue_message("a", external_event("first"), now_ms()),
            store.enqueue_message("a", external_event("second"), now_ms()),
            store.close(),
        );
        first?;
        second?;
        let err = expect_err(
            store
                .enqueue_message("a", external_event("late"), now_ms())
                .await,
        )?;
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        let err = expect_err(store.create_instance(new_instance("b", now_ms())).await)?;
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    }

    let store = open(&dir).await?;
    let messages = queued_events(&store, "a").await?;
    assert_eq!(
        &messages[1..],
        &[external_event("first"), external_event("second")]
    );
    assert_eq!(store.instance("b").await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_dropping_the_store_without_close() -> TestResult {
    let dir = TempDir::new()?;
    {
        let store = Arc::new(open(&dir).await?);
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .create_instance(new_instance(&format!("i{i}"), now_ms()))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        // Dropped here: the writer's channel closes and the task ends.
    }

    let store = open(&dir).await?;
    for i in 0..100 {
        let record = store
            .instance(&format!("i{i}"))
            .await?
            .ok_or("instance missing after reopening")?;
        assert_eq!(record.status, InstanceStatus::Pending);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_store_takes_concurrent_writes_and_reads() -> TestResult {
    // One connection serves both the writer and the reads here.
    let store = Arc::new(SqliteHistoryStore::new_in_memory().await?);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("i{i}");
                store.create_instance(new_instance(&id, now_ms())).await?;
                store.instance(&id).await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await??.is_some());
    }
    let mut taken = 0;
    while store.fetch_orchestration_work(LONG_LOCK).await?.is_some() {
        taken += 1;
    }
    assert_eq!(taken, 50);
    Ok(())
}

#[tokio::test]
async fn a_file_from_a_newer_build_is_refused_and_its_schema_left_alone() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("newer.db");
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 999;")?;
    }
    let error = expect_err(SqliteHistoryStore::new(&format!("sqlite:{}", path.display())).await)?;
    let message = error.to_string();
    assert!(
        message.contains("newer duroxide")
            && message.contains("schema version 999")
            && message.contains("this build's 1"),
        "the refusal names both versions: {message}"
    );
    let conn = rusqlite::Connection::open(&path)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
    assert_eq!((version, tables), (999, 1), "the schema was changed");
    Ok(())
}

#[tokio::test]
async fn a_database_of_another_application_is_refused_and_left_alone() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("theirs.db");
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);")?;
    }
    let error = expect_err(SqliteHistoryStore::new(&format!("sqlite:{}", path.display())).await)?;
    assert!(
        matches!(error, StoreError::Foreign(_)),
        "refused as another application's: {error}"
    );
    let conn = rusqlite::Connection::open(&path)?;
    let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    assert_eq!(
        (tables, mode.as_str()),
        (1, "delete"),
        "the database was changed"
    );
    Ok(())
}

/// Every table with its columns, and every index with its table, columns
/// and whether it is partial, as `sqlite_master` and the pragmas list them.
fn schema_of(conn: &rusqlite::Connection) -> Result<Vec<String>, Box<dyn Error>> {
    let mut stmt = conn.prepare(
        "SELECT m.type, m.name, m.tbl_name, m.sql LIKE '%WHERE%',
                (SELECT group_concat(name, ' ') FROM (
                     SELECT name FROM pragma_table_info(m.name) WHERE m.type = 'table'
                     UNION ALL
                     SELECT name FROM pragma_index_info(m.name) WHERE m.type = 'index'))
         FROM sqlite_master AS m
         WHERE m.name NOT LIKE 'sqlite_%'
         ORDER BY m.type, m.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "{} {} on {}{}: {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            if r.get::<_, bool>(3)? {
                " (partial)"
            } else {
                ""
            },
            r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[tokio::test]
async fn a_new_file_gets_the_whole_schema_in_one_migration() -> TestResult {
    let dir = TempDir::new()?;
    open(&dir).await?.close().await;
    let conn = rusqlite::Connection::open(dir.path().join("store.db"))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(version, 1);
    let expected = [
        "index activity_queue_by_locked_until on activity_queue (partial): locked_until",
        "index activity_queue_by_visible on activity_queue: visible_at id",
        "index instances_by_component on instances (partial): component_digest",
        "index instances_by_created on instances: tenant created_at instance_id",
        "index instances_by_locked_until on instances (partial): locked_until",
        "index instances_by_name_created on instances: tenant orchestration_name created_at instance_id",
        "index instances_by_next_visible on instances (partial): tenant next_visible_at locked_until",
        "index instances_by_parent on instances (partial): parent_instance",
        "index instances_by_status_created on instances: tenant status created_at instance_id",
        "index instances_finished on instances (partial): status finished_at",
        "index orchestrator_queue_by_instance on orchestrator_queue: instance_id id",
        "table activity_queue on activity_queue: \
         id instance_id message visible_at lock_token locked_until attempts",
        "table artifacts on artifacts: tenant digest bytes size_bytes manifest label deployed_at \
         policy",
        "table history on history: instance_id execution_id seq event",
        "table instances on instances: instance_id tenant orchestration_name orchestration_version \
         status output execution_id history_len created_at updated_at parent_instance \
         parent_id lock_token locked_until custom_status parent_execution_id next_visible_at \
         finished_at component_digest",
        "table orchestrator_queue on orchestrator_queue: id instance_id message visible_at attempts",
        "table settings on settings: name value",
    ];
    // No trigger (writers keep `next_visible_at` current) and no index on
    // the orchestrator queue's visibility (fetches go through the instances).
    assert_eq!(schema_of(&conn)?, expected);
    Ok(())
}

#[tokio::test]
async fn a_history_row_that_is_not_a_list_of_events_is_corrupt() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    store.create_instance(new_instance("a", now_ms())).await?;
    let fetched = fetch(&store, LONG_LOCK).await?;
    let mut commit = empty_commit(&fetched);
    commit.new_events = vec![started_event()];
    store.commit_turn(commit).await?;
    {
        // One event on its own, as no build writes any more.
        let conn = rusqlite::Connection::open(dir.path().join("store.db"))?;
        conn.execute(
            "INSERT INTO history (instance_id, execution_id, seq, event) VALUES ('a', 1, 1, ?1)",
            [serde_json::to_string(&started_event())?],
        )?;
    }
    let err = expect_err(store.read_history("a", 1).await)?;
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("event #1")),
        "{err:?}"
    );
    Ok(())
}
