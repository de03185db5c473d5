//! Tests of the PostgreSQL history store (feature `postgres`): the
//! conformance suite every provider passes, each scenario in a schema of
//! its own, and what only PostgreSQL has (several store objects as
//! separate processes would hold them, notices, schema versions, a failure
//! injected inside a turn). Which server, and skipping without one: see
//! `postgres_support`.

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_runs_skipped_without_the_postgres_feature() {
    use std::io::Write;
    // Straight to stderr: the harness captures only `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED the PostgreSQL runs: this build lacks the `postgres` feature \
         (cargo test --features duroxide/postgres runs them).\n"
    );
}

/// Without the feature, a PostgreSQL URL is refused with a message that
/// says how to get one.
#[cfg(not(feature = "postgres"))]
#[tokio::test]
async fn a_postgres_url_without_the_feature_says_what_is_missing() {
    let error = match duroxide::providers::open("postgres://me:secret@db/x").await {
        Ok(_) => panic!("a PostgreSQL store opened without the feature"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("`postgres` feature"), "{error}");
    assert!(!error.contains("secret"), "{error}");
}

#[cfg(feature = "postgres")]
mod conformance;
#[cfg(feature = "postgres")]
mod postgres_support;
#[cfg(feature = "postgres")]
mod pg {
    use std::error::Error;
    use std::sync::Arc;
    use std::time::Duration;

    use duroxide::clock::system_now_ms as now_ms;
    use duroxide::providers::postgres::PostgresHistoryStore;
    use duroxide::providers::{HistoryStore, InstanceStatus, StoreError};

    use crate::conformance::fixtures::{
        LONG_LOCK, TestResult, empty_commit, expect_err, external_event, fetch, new_instance,
        started_event, work,
    };
    use crate::postgres_support::{Schema, available, fresh_store, url};

    /// A fresh store in a schema of its own.
    async fn postgres() -> Result<Option<(Arc<dyn HistoryStore>, Schema)>, Box<dyn Error>> {
        fresh_store().await
    }

    crate::conformance::suite!(conformance, postgres);
    crate::conformance::fast_path_suite!(fast_paths, postgres);

    /// A schema of its own, or `None` when the runs are skipped.
    async fn schema() -> Result<Option<Schema>, Box<dyn Error>> {
        Ok(available().await?.then(Schema::new))
    }

    #[tokio::test]
    async fn two_store_objects_never_hand_out_the_same_instance() -> TestResult {
        let Some(schema) = schema().await? else {
            return Ok(());
        };
        let first = Arc::new(schema.open(None).await?);
        let second = Arc::new(schema.open(None).await?);
        for i in 0..40 {
            first
                .create_instance(new_instance(&format!("i{i}"), now_ms()))
                .await?;
        }
        let drain = |store: Arc<PostgresHistoryStore>| {
            tokio::spawn(async move {
                let mut taken = Vec::new();
                loop {
                    let batch = store
                        .fetch_orchestration_batch(3, LONG_LOCK, Duration::ZERO)
                        .await?;
                    if batch.is_empty() {
                        return Ok::<_, StoreError>(taken);
                    }
                    taken.extend(batch.into_iter().map(|w| w.instance.instance_id));
                }
            })
        };
        let (a, b, c) = tokio::join!(drain(first.clone()), drain(second), drain(first));
        let mut taken = a??;
        taken.extend(b??);
        taken.extend(c??);
        taken.sort();
        let before = taken.len();
        taken.dedup();
        assert_eq!((before, taken.len()), (40, 40));
        Ok(())
    }

    /// The history length is a turn counter the commit checks: a turn
    /// that does not go on from the stored history's end (computed from a
    /// stale history, or for an execution that is not the current one or
    /// the next) writes nothing, though it holds the lock.
    #[tokio::test]
    async fn a_turn_from_a_stale_history_is_refused() -> TestResult {
        let Some((store, _schema)) = postgres().await? else {
            return Ok(());
        };
        store.create_instance(new_instance("a", now_ms())).await?;
        let first = fetch(store.as_ref(), LONG_LOCK).await?;
        let mut commit = empty_commit(&first);
        commit.new_events = vec![started_event()];
        store.commit_turn(commit).await?;

        store
            .enqueue_message("a", external_event("go"), now_ms())
            .await?;
        let second = fetch(store.as_ref(), LONG_LOCK).await?;
        assert_eq!(second.instance.history_len, 1);
        let mut stale = empty_commit(&second);
        stale.history_len_before = 0;
        stale.new_events = vec![started_event()];
        let mut skipping = empty_commit(&second);
        skipping.execution_id = 3;
        skipping.history_len_before = 0;
        skipping.new_events = vec![started_event()];
        for refused in [stale, skipping] {
            let e = expect_err(store.commit_turn(refused).await)?;
            assert!(
                matches!(&e, StoreError::LockLost(m) if m.contains("no longer ends")),
                "{e}"
            );
        }
        assert_eq!(store.read_history("a", 1).await?.len(), 1);
        assert!(store.read_history("a", 3).await?.is_empty());

        // The lock still holds; the turn that goes on from the end commits.
        let mut right = empty_commit(&second);
        right.new_events = vec![external_event_raised()];
        store.commit_turn(right).await?;
        assert_eq!(store.read_history("a", 1).await?.len(), 2);
        Ok(())
    }

    /// The event a raised external event leaves in history.
    fn external_event_raised() -> duroxide::history::Event {
        duroxide::history::Event::EventRaised {
            name: "go".to_owned(),
            data: "{}".to_owned(),
        }
    }

    /// A write in one store object wakes the dispatchers of another (as a
    /// runtime in another process would be) through a notice, at once.
    #[tokio::test]
    async fn a_write_wakes_the_dispatchers_of_another_store_object() -> TestResult {
        let Some(schema) = schema().await? else {
            return Ok(());
        };
        let writer = schema.open(None).await?;
        let other = schema.open(None).await?;
        let orchestrator = other.orchestrator_signal();
        let activity = other.activity_signal();
        let mut waiting = std::pin::pin!(orchestrator.notified());
        waiting.as_mut().enable();
        writer.create_instance(new_instance("a", now_ms())).await?;
        tokio::time::timeout(Duration::from_secs(2), waiting).await?;

        let mut waiting = std::pin::pin!(activity.notified());
        waiting.as_mut().enable();
        let fetched = fetch(&writer, LONG_LOCK).await?;
        let mut commit = empty_commit(&fetched);
        commit.activities = vec![work("a", 1)];
        writer.commit_turn(commit).await?;
        tokio::time::timeout(Duration::from_secs(2), waiting).await?;
        Ok(())
    }

    /// A failure injected between two statements of a turn (a trigger that
    /// raises on the activity insert, after history was appended and the
    /// messages consumed) leaves nothing of the turn, and the lock held.
    #[tokio::test]
    async fn a_failure_inside_a_turn_leaves_no_partial_turn() -> TestResult {
        let Some(schema) = schema().await? else {
            return Ok(());
        };
        let store = schema.open(None).await?;
        store.create_instance(new_instance("a", now_ms())).await?;
        let fetched = fetch(&store, LONG_LOCK).await?;
        schema
            .execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'injected failure'; END $$;
                 CREATE TRIGGER refuse BEFORE INSERT ON activity_queue
                 FOR EACH ROW EXECUTE FUNCTION refuse();",
            )
            .await?;
        let mut commit = empty_commit(&fetched);
        commit.new_events = vec![started_event()];
        commit.activities = vec![work("a", 1)];
        commit.messages = vec![duroxide::providers::OutgoingMessage {
            instance_id: "a".into(),
            message: external_event("self"),
            visible_at_ms: now_ms(),
        }];
        let err = expect_err(store.commit_turn(commit.clone()).await)?;
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert!(!err.is_retryable(), "{err:?}");
        assert!(store.read_history("a", 1).await?.is_empty());
        assert_eq!(
            schema
                .count("SELECT COUNT(*) FROM orchestrator_queue")
                .await?,
            1
        );
        let row = store.instance("a").await?.ok_or("instance missing")?;
        assert_eq!((row.history_len, row.status), (0, InstanceStatus::Running));
        assert!(
            store.fetch_orchestration_work(LONG_LOCK).await?.is_none(),
            "still locked"
        );

        schema
            .execute("DROP TRIGGER refuse ON activity_queue")
            .await?;
        store.commit_turn(commit).await?;
        assert_eq!(store.read_history("a", 1).await?, vec![started_event()]);
        Ok(())
    }

    #[tokio::test]
    async fn a_schema_from_a_newer_build_is_refused_and_left_alone() -> TestResult {
        let Some(schema) = schema().await? else {
            return Ok(());
        };
        schema.open(None).await?.close().await;
        schema
            .execute(
                "INSERT INTO _sqlx_migrations
                     (version, description, success, checksum, execution_time)
                 VALUES (999, 'future', TRUE, '\\x00', 0)",
            )
            .await?;
        let error = match schema.open(None).await {
            Ok(_) => return Err("a newer schema was opened".into()),
            Err(e) => e.to_string(),
        };
        assert!(
            error.contains("schema version 999") && error.contains("this build's 1"),
            "the refusal names both versions: {error}"
        );
        assert_eq!(
            schema
                .count("SELECT MAX(version) FROM _sqlx_migrations")
                .await?,
            999
        );
        Ok(())
    }

    #[tokio::test]
    async fn tables_of_another_application_are_refused() -> TestResult {
        let Some(schema) = schema().await? else {
            return Ok(());
        };
        schema
            .execute(&format!(
                "CREATE SCHEMA {0}; CREATE TABLE {0}.instances (id INT)",
                schema.name
            ))
            .await?;
        let error = match schema.open(None).await {
            Ok(_) => return Err("another application's schema was opened".into()),
            Err(e) => e,
        };
        let error = error
            .downcast::<StoreError>()
            .map_err(|e| format!("not a store error: {e}"))?;
        assert!(matches!(*error, StoreError::Foreign(_)), "{error:?}");
        Ok(())
    }

    /// `providers::open` picks the store a URL names: PostgreSQL for a
    /// `postgres://` URL (here with the schema on its search path), SQLite
    /// for the rest.
    #[tokio::test]
    async fn open_picks_the_store_a_url_names() -> TestResult {
        let dir = tempfile::TempDir::new()?;
        let sqlite = format!("sqlite:{}", dir.path().join("a.db").display());
        let store = duroxide::providers::open(&sqlite).await?;
        store.create_instance(new_instance("a", now_ms())).await?;
        assert!(dir.path().join("a.db").exists());

        let Some(schema) = schema().await? else {
            return Ok(());
        };
        schema
            .execute(&format!("CREATE SCHEMA {}", schema.name))
            .await?;
        let separator = if url().contains('?') { '&' } else { '?' };
        let pg = format!("{}{separator}options[search_path]={}", url(), schema.name);
        let store = duroxide::providers::open(&pg).await?;
        store.create_instance(new_instance("b", now_ms())).await?;
        assert_eq!(
            schema
                .count("SELECT COUNT(*) FROM instances WHERE instance_id = 'b'")
                .await?,
            1
        );
        Ok(())
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_retryable_error() -> TestResult {
        // A port nothing listens on.
        let result = PostgresHistoryStore::new("postgres://nobody@127.0.0.1:1/none").await;
        let err = expect_err(result)?;
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert!(err.is_retryable(), "{err:?}");
        let _ = url();
        Ok(())
    }
}
