//! Measures the host's cost of one orchestration turn, from the cache and by
//! cold replay, and of one activity call, for the benchmark suite.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::component::Component;
use super::execution::{Execution, ExecutionSpec, TurnInput, TurnReport};
use super::replay::Replay;
use crate::clock::system_now_ms;
use crate::history::{Event, OrchestratorMessage};
use crate::sandbox::ComponentPolicy;
use crate::sandbox::instance::call_activity;
use crate::sandbox::{
    ActivityCall, ActivityInfo, CancelToken, LoadedComponent, SandboxLimits, WarmActivities,
};

/// Median costs of one turn (the median, not the mean, so a stray
/// scheduling delay of the machine does not skew the figure).
#[derive(Debug, Clone, Copy)]
pub struct TurnCost {
    /// A turn of a parked (cached) execution: one completion in, one decision out.
    pub cached: Duration,
    /// Instantiating the component and replaying the whole history until it parks.
    pub cold_replay: Duration,
    /// Events in the replayed history.
    pub history_events: usize,
}

/// Run orchestration `name` of `component`, which must schedule one activity
/// at a time, for `turns` turns fed by synthetic completions, then replay the
/// resulting history cold `replays` times. Nothing touches a store.
pub async fn measure_turn_cost(
    component: &Arc<LoadedComponent>,
    name: &str,
    input: &str,
    turns: usize,
    replays: usize,
) -> Result<TurnCost, String> {
    let version = component
        .manifest
        .orchestrations
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("no orchestration {name}"))?;
    // One registration for all the executions measured, as a runtime has.
    let registered = Component::new(component.clone(), ComponentPolicy::default());
    let spec = || ExecutionSpec {
        component: registered.clone(),
        name: name.to_string(),
        version: version.clone(),
        input: input.to_string(),
        limits: SandboxLimits::default(),
    };
    let mut replay = Replay::new("turn-cost", 1, Vec::new(), usize::MAX);
    replay.append(Event::OrchestrationStarted {
        name: name.to_string(),
        version: version.clone(),
        input: input.to_string(),
        parent_instance: None,
        parent_id: None,
        started_at_ms: system_now_ms(),
    });
    let (mut execution, report) = Execution::start(spec(), replay, 1)
        .await
        .map_err(|e| e.to_string())?;
    let mut history = parked_events(report)?;
    let mut cached = Vec::with_capacity(turns);
    for _ in 0..turns {
        let Some(id) = history.iter().rev().find_map(|e| match e {
            Event::ActivityScheduled { id, .. } => Some(*id),
            _ => None,
        }) else {
            return Err("the orchestration scheduled no activity".into());
        };
        let input = TurnInput {
            now_ms: system_now_ms(),
            messages: vec![OrchestratorMessage::ActivityCompleted {
                execution_id: 1,
                id,
                output: String::new(),
            }],
        };
        let started = Instant::now();
        let report = execution.run_turn(input).await.map_err(|e| e.to_string())?;
        cached.push(started.elapsed());
        history.extend(parked_events(report)?);
    }
    let mut cold = Vec::with_capacity(replays);
    for _ in 0..replays {
        let replay = Replay::new("turn-cost", 1, history.clone(), usize::MAX);
        let started = Instant::now();
        let (_execution, report) = Execution::start(spec(), replay, 1)
            .await
            .map_err(|e| e.to_string())?;
        cold.push(started.elapsed());
        if !parked_events(report)?.is_empty() {
            return Err("the cold replay made new decisions".into());
        }
    }
    Ok(TurnCost {
        cached: median(cached),
        cold_replay: median(cold),
        history_events: history.len(),
    })
}

/// The median time of `calls` calls of activity `name` of `component`, each
/// in a fresh sandbox, as the runtime makes a call no warm sandbox serves.
/// Nothing touches a store.
pub async fn measure_activity_cost(
    component: &LoadedComponent,
    name: &str,
    input: &str,
    calls: usize,
) -> Result<Duration, String> {
    let limits = SandboxLimits::default();
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        call_activity(
            component,
            &WarmActivities::default(),
            "",
            bench_call(name),
            input,
            &limits,
            None,
            &Default::default(),
        )
        .await?;
        samples.push(started.elapsed());
    }
    Ok(median(samples))
}

/// A call as the runtime makes one, for measurements.
fn bench_call(name: &str) -> ActivityCall {
    ActivityCall {
        info: ActivityInfo {
            instance_id: "turn-cost".into(),
            execution_id: 1,
            name: name.into(),
            attempt: 1,
        },
        cancelled: CancelToken::default(),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn parked_events(report: TurnReport) -> Result<Vec<Event>, String> {
    match report {
        TurnReport::Parked(output) => Ok(output.new_events),
        TurnReport::Finished(output, _) => Err(format!(
            "the orchestration ended during the measurement: {:?}",
            output.status
        )),
    }
}
