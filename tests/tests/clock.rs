//! Time is injected: a store, its client and its runtime read one clock,
//! which a test can drive. A one-hour timer fires when the clock says an
//! hour has passed, not after an hour of waiting.

use std::time::Duration;

use duroxide::clock::ManualClock;
use duroxide::history::Event;
use duroxide::{Client, DuroxideRuntime, OrchestrationStatus};
use duroxide_tests::{TestDb, WAIT_MS, completed, guests, history_reaches, scenario};

scenario!(
    a_one_hour_timer_fires_when_the_clock_says_an_hour_has_passed,
    |cache| async move {
        let db = TestDb::current()?;
        let clock = ManualClock::starting_now();
        let store = db.open(Some(clock.shared())).await?;
        let mut runtime =
            DuroxideRuntime::with_options(store.clone(), duroxide_tests::options(cache));
        runtime.load_component_file(guests::SCENARIOS).await?;
        runtime.start().await?;
        let client = Client::new(store);

        let hour = Duration::from_secs(3_600);
        client
            .start_orchestration(
                "hour",
                "TimerThenActivity",
                &hour.as_millis().to_string(),
                None,
            )
            .await?;
        let history = history_reaches(&client, "hour", |h| {
            h.iter().any(|e| matches!(e, Event::TimerCreated { .. }))
        })
        .await?;
        let Some(Event::TimerCreated { fire_at_ms, .. }) = history
            .iter()
            .find(|e| matches!(e, Event::TimerCreated { .. }))
        else {
            anyhow::bail!("no timer in {history:?}");
        };
        // The timer is an hour away on the injected clock.
        let started = clock.clone();
        assert_eq!(
            *fire_at_ms,
            duroxide::clock::Clock::now_ms(&started) + 3_600_000
        );
        assert_eq!(
            client.get_orchestration_status("hour").await?,
            OrchestrationStatus::Running
        );

        clock.advance(hour);
        let status = client.wait_for_completion("hour", Some(WAIT_MS)).await?;
        // The orchestration's own clock saw the hour pass.
        assert_eq!(completed(status)?, "WAITED TRUE");
        runtime.stop().await;
        Ok(())
    }
);
