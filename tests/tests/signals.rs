//! Signal-with-start through the real runtime: concurrent calls on one id
//! start one instance and deliver every event; a finished instance refuses.

use duroxide::{ClientError, OrchestrationStatus, SignalOutcome};
use duroxide_tests::{Harness, WAIT_MS, guests, scenario};
use serde::Serialize;

#[derive(Serialize)]
struct Collect {
    events: usize,
}

const CALLS: usize = 8;

scenario!(
    concurrent_signals_with_start_create_one_instance_and_deliver_every_event,
    |cache| async move {
        let h = Harness::start(cache, &[guests::TYPED_PAYLOADS]).await?;
        let calls: Vec<_> = (0..CALLS)
            .map(|i| {
                let client = h.client.clone();
                tokio::spawn(async move {
                    client
                        .signal_with_start_typed(
                            "collector",
                            "TypedCollect",
                            &Collect { events: CALLS },
                            None,
                            "Item",
                            &format!("item-{i} ✓"),
                        )
                        .await
                })
            })
            .collect();
        let mut started = 0;
        for call in calls {
            if call.await?? == SignalOutcome::Started {
                started += 1;
            }
        }
        assert_eq!(started, 1, "exactly one call starts the instance");
        let mut items = h
            .client
            .wait_for_completion_typed::<Vec<String>>("collector", Some(WAIT_MS))
            .await?
            .into_result()
            .map_err(anyhow::Error::msg)?;
        items.sort();
        let mut expected: Vec<String> = (0..CALLS).map(|i| format!("item-{i} ✓")).collect();
        expected.sort();
        assert_eq!(items, expected);

        // Finished: the signal is refused, naming how it ended.
        let err = h
            .client
            .signal_with_start("collector", "TypedCollect", "{}", None, "Item", "\"late\"")
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("a finished instance took a signal"))?;
        assert!(
            matches!(
                &err,
                ClientError::InstanceFinished {
                    instance,
                    status: OrchestrationStatus::Completed { .. },
                } if instance == "collector"
            ),
            "{err:?}"
        );
        Ok(())
    }
);

scenario!(
    a_signal_to_a_running_instance_does_not_start_another,
    |cache| async move {
        let h = Harness::start(cache, &[guests::TYPED_PAYLOADS]).await?;
        h.client
            .start_orchestration_typed("two", "TypedCollect", &Collect { events: 2 }, None)
            .await?;
        for i in 0..2 {
            // The input differs: it is ignored, the instance exists.
            let outcome = h
                .client
                .signal_with_start_typed(
                    "two",
                    "TypedCollect",
                    &Collect { events: 99 },
                    None,
                    "Item",
                    &format!("{i}"),
                )
                .await?;
            assert_eq!(outcome, SignalOutcome::Signalled);
        }
        let items = h
            .client
            .wait_for_completion_typed::<Vec<String>>("two", Some(WAIT_MS))
            .await?
            .into_result()
            .map_err(anyhow::Error::msg)?;
        assert_eq!(items, ["0", "1"]);
        Ok(())
    }
);
