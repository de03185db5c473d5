//! Test guest: the orchestration model — children, detached starts,
//! continue-as-new, versions and cancellation.

use std::time::Duration;

use duroxide_guest::{Either, OrchestrationContext, Registry, select2};

/// Awaits two children: one with a derived id, one with an explicit id.
async fn parent(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let derived = ctx
        .schedule_sub_orchestration("Child", &format!("{input}-1"))
        .await?;
    let explicit_id = format!("{input}-explicit");
    let explicit = ctx
        .schedule_sub_orchestration_with("Child", None, Some(&explicit_id), &format!("{input}-2"))
        .await?;
    Ok(format!("{derived}|{explicit}"))
}

/// A child: one activity.
async fn child(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_activity("Shout", &input).await
}

/// A child that fails.
async fn failing_child(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    Err(format!("child broke on {input}"))
}

/// Handles its child's failure.
async fn catches_child(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    match ctx.schedule_sub_orchestration("FailingChild", &input).await {
        Ok(out) => Err(format!("expected failure, got {out}")),
        Err(error) => Ok(format!("parent saw: {error}")),
    }
}

/// Lets its child's failure fail it too.
async fn propagates_child(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_sub_orchestration("FailingChild", &input).await
}

/// Starts a child in another component.
async fn cross_component(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_sub_orchestration_with("Pinned", Some("2.0.0"), None, &input)
        .await
}

/// Starts an independent orchestration and returns at once.
async fn detacher(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.start_orchestration("Child", &format!("detached-{input}"), &input);
    Ok("started".to_string())
}

/// Counts to 3 across executions.
async fn counter(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let n: u32 = input.parse().map_err(|e| format!("bad count: {e}"))?;
    let _ = ctx.schedule_activity("Shout", &input).await?;
    if n < 3 {
        ctx.continue_as_new(&(n + 1).to_string());
    }
    Ok(format!("done at {n}"))
}

/// Takes one "tick" per execution; unconsumed ticks carry over.
async fn ticker(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let n: u32 = input.parse().map_err(|e| format!("bad count: {e}"))?;
    let tick = ctx.wait_for_external_event("tick").await;
    if n == 0 {
        ctx.continue_as_new("1");
    }
    Ok(format!("second execution got {tick}"))
}

/// Waits for an event, then reports its version: 1.0.0 here.
async fn pinned_v1(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    ctx.wait_for_external_event("go").await;
    Ok("ran 1.0.0".to_string())
}

/// Continues as new on the latest version.
async fn upgrader(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    ctx.wait_for_external_event("upgrade").await;
    ctx.continue_as_new("from 1.0.0");
}

/// Version 1.0.0 of Downgrader: where 2.0.0 continues to.
async fn downgrader_v1(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    Ok(format!("1.0.0 got {input}"))
}

/// Starts a child that waits forever, and waits for it.
async fn waits_on_child(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_sub_orchestration("Waiter", &input).await
}

/// Races a child that never finishes against a short timer.
async fn race_child(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let child = ctx.schedule_sub_orchestration("Waiter", "");
    match select2(child, ctx.schedule_timer(Duration::from_millis(50))).await {
        Either::Left(out) => Ok(format!("child won: {out:?}")),
        Either::Right(()) => Ok("timer won".to_string()),
    }
}

/// Waits for an event nobody raises.
async fn waiter(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    Ok(ctx.wait_for_external_event("never").await)
}

fn shout(input: String) -> Result<String, String> {
    Ok(input.to_uppercase())
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("Parent", parent)
        .orchestration("Child", child)
        .orchestration("FailingChild", failing_child)
        .orchestration("CatchesChild", catches_child)
        .orchestration("PropagatesChild", propagates_child)
        .orchestration("CrossComponent", cross_component)
        .orchestration("Detacher", detacher)
        .orchestration("Counter", counter)
        .orchestration("Ticker", ticker)
        .orchestration("Pinned", pinned_v1)
        .orchestration("Upgrader", upgrader)
        .orchestration("Downgrader", downgrader_v1)
        .orchestration("WaitsOnChild", waits_on_child)
        .orchestration("Waiter", waiter)
        .orchestration("RaceChild", race_child)
        .activity("Shout", shout);
}

duroxide_guest::component!(register);
