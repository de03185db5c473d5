//! Generated programs: many random orchestrations (sequences and nestings of
//! activities, timers, events, races, joins, children and continue-as-new)
//! run to completion; then every execution's history is replayed in a fresh
//! sandbox, which must reproduce the same decisions and result.

use std::collections::VecDeque;

use duroxide::history::Event;
use duroxide::runtime::verify_replay;
use duroxide::{ClientError, DuroxideRuntime, LoadedComponent, OrchestrationStatus};
use duroxide_tests::{Harness, WAIT_MS, completed, guests, options, scenario};
use serde_json::{Value, json};

/// How many programs each run generates.
const PROGRAMS: usize = 30;

/// A small deterministic generator (xorshift64*), so a failing seed reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random step; `events` collects the event names it waits for.
fn step(rng: &mut Rng, depth: u32, in_child: bool, events: &mut Vec<String>) -> Value {
    let nested = depth < 2;
    loop {
        match rng.below(10) {
            0..=2 => return json!({"a": format!("s{}", rng.below(100))}),
            3 => return json!({"f": format!("x{}", rng.below(100))}),
            4 => return json!({"t": rng.below(20)}),
            5 if !in_child => {
                let name = format!("ev{}", rng.below(3));
                events.push(name.clone());
                return json!({"e": name});
            }
            6 if nested => {
                let left = step(rng, depth + 1, in_child, events);
                let right = step(rng, depth + 1, in_child, events);
                return json!({"race": [left, right]});
            }
            7 if nested => {
                let n = 1 + rng.below(4);
                let steps: Vec<Value> = (0..n)
                    .map(|_| step(rng, depth + 1, in_child, events))
                    .collect();
                return json!({"join": steps});
            }
            8 | 9 if nested => {
                let n = 1 + rng.below(3);
                let steps: Vec<Value> =
                    (0..n).map(|_| step(rng, depth + 1, true, events)).collect();
                return json!({"child": steps});
            }
            _ => {}
        }
    }
}

/// A random program and the events to raise for it (enough for every
/// execution: unconsumed ones carry over on continue-as-new).
fn program(rng: &mut Rng) -> (Value, Vec<String>) {
    let mut events = Vec::new();
    let n = 1 + rng.below(5);
    let steps: Vec<Value> = (0..n).map(|_| step(rng, 0, false, &mut events)).collect();
    let continues = rng.below(3);
    let raised = (0..=continues).flat_map(|_| events.clone()).collect();
    (json!({"steps": steps, "continue": continues}), raised)
}

/// Replay every execution of `root` and of the children it started.
async fn verify_all(
    h: &Harness,
    component: &std::sync::Arc<LoadedComponent>,
    root: &str,
) -> anyhow::Result<usize> {
    let mut queue = VecDeque::from([root.to_string()]);
    let mut verified = 0;
    while let Some(instance) = queue.pop_front() {
        let info = h
            .client
            .get_instance_info(&instance)
            .await?
            .ok_or_else(|| anyhow::anyhow!("instance {instance} missing"))?;
        for execution in 1..=info.execution_id {
            let history = h
                .client
                .get_execution_history(&instance, Some(execution))
                .await?;
            if history.is_empty() {
                // A child cancelled (its parent lost a race) before it started.
                let cancelled = matches!(info.status, OrchestrationStatus::Cancelled { .. });
                anyhow::ensure!(
                    cancelled,
                    "{instance} has no history but is {:?}",
                    info.status
                );
                continue;
            }
            for event in &history {
                if let Event::SubOrchestrationScheduled { instance_id, .. } = event {
                    queue.push_back(instance_id.clone());
                }
            }
            let limits = options(false).limits;
            verify_replay(component, &instance, execution, history, limits)
                .await
                .map_err(|e| anyhow::anyhow!("{instance} execution {execution}: {e}"))?;
            verified += 1;
        }
    }
    Ok(verified)
}

scenario!(generated_programs_replay_identically, |cache| async move {
    let seed = 0x5EED_0000_0000_0001_u64 + u64::from(cache);
    let mut rng = Rng(seed);
    let mut h = Harness::start(cache, &[]).await?;
    let component = h.runtime.load_component_file(guests::PROGRAMS).await?;
    let mut programs = Vec::new();
    for i in 0..PROGRAMS {
        let (program, events) = program(&mut rng);
        let id = format!("prog-{i}");
        h.client
            .start_orchestration(&id, "Program", &program.to_string(), None)
            .await?;
        for name in &events {
            // An event for a race whose other side won is never consumed:
            // the instance may finish before the last ones are raised.
            match h
                .client
                .raise_event(&id, name, &format!("{name}-data"))
                .await
            {
                Ok(()) | Err(ClientError::InstanceFinished { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        programs.push((id, program));
    }
    let mut executions = 0;
    for (id, program) in &programs {
        let status = h.client.wait_for_completion(id, Some(WAIT_MS)).await?;
        let output = completed(status)
            .map_err(|e| anyhow::anyhow!("seed {seed:#x}, {id} {program}: {e}"))?;
        assert!(!output.is_empty());
        executions += verify_all(&h, &component, id).await?;
    }
    assert!(
        executions > PROGRAMS,
        "continue-as-new and children add executions"
    );
    // The same histories replay on a runtime that never saw them run.
    h.runtime.stop().await;
    let mut fresh = DuroxideRuntime::with_options(h.store.clone(), options(false));
    let reloaded = fresh.load_component_file(guests::PROGRAMS).await?;
    for (id, _) in programs.iter().take(5) {
        verify_all(&h, &reloaded, id).await?;
    }
    Ok(())
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_history_is_caught() -> anyhow::Result<()> {
    let mut h = Harness::start(true, &[]).await?;
    let component = h.runtime.load_component_file(guests::PROGRAMS).await?;
    let program = json!({"steps": [{"a": "one"}, {"a": "two"}], "continue": 0}).to_string();
    assert_eq!(
        completed(h.run("tamper", "Program", &program).await?)?,
        "one!;two!"
    );
    let mut history = h.history("tamper").await?;
    let limits = options(false).limits;
    verify_replay(&component, "tamper", 1, history.clone(), limits.clone()).await?;
    for event in &mut history {
        if let Event::ActivityScheduled { input, .. } = event {
            *input = "forged".into();
        }
    }
    let err = verify_replay(&component, "tamper", 1, history, limits).await;
    let text = format!("{:?}", err.err());
    assert!(
        text.contains("nondeterministic") && text.contains("forged"),
        "{text}"
    );
    Ok(())
}
