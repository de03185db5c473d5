//! Benchmark guest: the orchestrations the workload benchmark runs.

use std::time::Duration;

use duroxide_guest::{OrchestrationContext, Registry, join_all};

/// `input` sequential no-op activities.
async fn sequence(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let n: usize = input.parse().map_err(|e| format!("bad count: {e}"))?;
    for i in 0..n {
        ctx.schedule_activity("Noop", &i.to_string()).await?;
    }
    Ok(n.to_string())
}

/// `input` parallel no-op activities, joined.
async fn fan_out(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let n: usize = input.parse().map_err(|e| format!("bad count: {e}"))?;
    let tasks = (0..n)
        .map(|i| ctx.schedule_activity("Noop", &i.to_string()))
        .collect();
    let done = join_all(tasks)
        .await
        .into_iter()
        .filter(Result::is_ok)
        .count();
    Ok(done.to_string())
}

/// Ten timers that all fire at `input` (ms since the Unix epoch).
async fn timers_at(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let at: u64 = input.parse().map_err(|e| format!("bad time: {e}"))?;
    let now = ctx
        .utc_now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as u64;
    let delay = Duration::from_millis(at.saturating_sub(now));
    join_all((0..10).map(|_| ctx.schedule_timer(delay)).collect()).await;
    Ok("fired".to_string())
}

/// Waits for an event nobody raises: a parked execution.
async fn parked(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    Ok(ctx.wait_for_external_event("never").await)
}

fn noop(input: String) -> Result<String, String> {
    Ok(input)
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("Sequence", sequence)
        .orchestration("FanOut", fan_out)
        .orchestration("TimersAt", timers_at)
        .orchestration("Parked", parked)
        .activity("Noop", noop);
}

duroxide_guest::component!(register);
