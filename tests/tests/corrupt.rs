//! A history row that cannot be read fails its instance at once, saying
//! where the history broke, instead of retrying the turn until its
//! messages count as poison.

use duroxide::history::Event;
use duroxide_tests::{Harness, completed, failed, guests, history_reaches, scenario};

scenario!(
    a_corrupt_history_row_fails_its_instance_at_once,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        h.client
            .start_orchestration("broken", "TwoEvents", "", None)
            .await?;
        let history = history_reaches(&h.client, "broken", |h| {
            h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
        })
        .await?;
        // The last row written (the first turn's) no longer decodes.
        let changed =
            h.db.execute(
                "UPDATE history SET event = '{\"broken' WHERE instance_id = 'broken'
                 AND seq = (SELECT MAX(seq) FROM history WHERE instance_id = 'broken')",
            )
            .await?;
        assert_eq!(changed, 1);
        // A new runtime holds no cached execution: the next turn replays.
        h.restart(duroxide_tests::options(cache), &[guests::SCENARIOS])
            .await?;
        h.client.raise_event("broken", "approval", "one").await?;
        let status = h
            .client
            .wait_for_completion("broken", Some(duroxide_tests::WAIT_MS))
            .await?;
        let error = failed(status)?;
        assert!(error.starts_with("corrupt history"), "{error}");
        assert!(error.contains("'broken' execution 1, event #"), "{error}");
        assert!(!error.contains("poison"), "{error}");
        assert!(history.len() > 1, "{history:?}");
        // Everything else is served as before.
        assert_eq!(completed(h.run("ok", "Sequence", "ok").await?)?, "OK:A!:B!");
        Ok(())
    }
);
