//! Test guest: races, joins and durable retries built from the SDK's
//! combinators. Activities named `Ordered`, `Flaky` and `Sleepy` are native
//! activities the tests register on the host.

use std::time::Duration;

use duroxide_guest::{
    Either, OrchestrationContext, Registry, RetryPolicy, join_all, select_all, select2,
};

fn parse_ms(input: &str) -> Result<Duration, String> {
    input
        .parse()
        .map(Duration::from_millis)
        .map_err(|e| format!("bad milliseconds '{input}': {e}"))
}

/// The event "approve" raced against a timer of `input` ms.
async fn race_event_timeout(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let timeout = parse_ms(&input)?;
    let approval = ctx.wait_for_external_event("approve");
    let timer = ctx.schedule_timer(timeout);
    Ok(match select2(approval, timer).await {
        Either::Left(data) => format!("event:{data}"),
        Either::Right(()) => "timeout".to_string(),
    })
}

/// The activity `Echo` raced against a one-minute timer.
async fn race_activity_timer(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let activity = ctx.schedule_activity("Echo", &input);
    let timer = ctx.schedule_timer(Duration::from_secs(60));
    Ok(match select2(activity, timer).await {
        Either::Left(output) => format!("activity:{}", output?),
        Either::Right(()) => "timeout".to_string(),
    })
}

/// The event "approve" raced against a timer of `input` ms, then a second
/// wait for "approve": the abandoned subscription still owns the first event.
async fn timeout_then_wait(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let timeout = parse_ms(&input)?;
    let first = match select2(
        ctx.wait_for_external_event("approve"),
        ctx.schedule_timer(timeout),
    )
    .await
    {
        Either::Left(data) => format!("event:{data}"),
        Either::Right(()) => "timeout".to_string(),
    };
    let next = ctx.wait_for_external_event("approve").await;
    Ok(format!("{first},then:{next}"))
}

/// `input` activities `Ordered` side by side, outputs joined in input order.
async fn fan_out_join(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let n: usize = input.parse().map_err(|e| format!("bad count: {e}"))?;
    let tasks = (0..n)
        .map(|i| ctx.schedule_activity("Ordered", &format!("{i}/{n}")))
        .collect();
    let outputs: Vec<String> = join_all(tasks)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(outputs.join(","))
}

/// The first of the events "a", "b" and "c", as `<index>:<data>`. With input
/// "gated", it first waits for the event "go".
async fn select_first_of(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    if input == "gated" {
        ctx.wait_for_external_event("go").await;
    }
    let waits = ["a", "b", "c"]
        .iter()
        .map(|name| ctx.wait_for_external_event(name))
        .collect();
    let (index, data) = select_all(waits).await;
    Ok(format!("{index}:{data}"))
}

/// The native activity `Flaky` with up to 5 attempts, backoff 20 ms doubling.
async fn retry_flaky(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let policy = RetryPolicy::new(5)
        .with_initial_backoff(Duration::from_millis(20))
        .with_backoff_coefficient(2.0)
        .with_max_backoff(Duration::from_secs(1));
    ctx.schedule_activity_with_retry("Flaky", "payload", &policy)
        .await
        .map(|output| format!("{output} (input {input})"))
}

/// `AlwaysFails` with 3 attempts, backoff `input` ms doubling up to 1 s.
async fn retry_exhausted(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let policy = RetryPolicy::new(3)
        .with_initial_backoff(parse_ms(&input)?)
        .with_backoff_coefficient(2.0)
        .with_max_backoff(Duration::from_secs(1));
    ctx.schedule_activity_with_retry("AlwaysFails", "payload", &policy)
        .await
}

/// The native activity `Sleepy` with 3 attempts of 200 ms each, 50 ms apart.
async fn retry_attempt_timeout(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let policy = RetryPolicy::new(3)
        .with_initial_backoff(Duration::from_millis(50))
        .with_backoff_coefficient(1.0)
        .with_attempt_timeout(Duration::from_millis(200));
    ctx.schedule_activity_with_retry("Sleepy", &input, &policy)
        .await
}

/// `AlwaysFails` with up to 10 attempts 200 ms apart, within 300 ms in all.
async fn retry_total_timeout(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let policy = RetryPolicy::new(10)
        .with_initial_backoff(Duration::from_millis(200))
        .with_backoff_coefficient(1.0)
        .with_total_timeout(Duration::from_millis(300));
    ctx.schedule_activity_with_retry("AlwaysFails", "payload", &policy)
        .await
}

fn echo(input: String) -> Result<String, String> {
    Ok(input)
}

fn always_fails(input: String) -> Result<String, String> {
    Err(format!("cannot process {input}"))
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("RaceEventTimeout", race_event_timeout)
        .orchestration("RaceActivityTimer", race_activity_timer)
        .orchestration("TimeoutThenWait", timeout_then_wait)
        .orchestration("FanOutJoin", fan_out_join)
        .orchestration("SelectFirstOf", select_first_of)
        .orchestration("RetryFlaky", retry_flaky)
        .orchestration("RetryExhausted", retry_exhausted)
        .orchestration("RetryAttemptTimeout", retry_attempt_timeout)
        .orchestration("RetryTotalTimeout", retry_total_timeout)
        .activity("Echo", echo)
        .activity("AlwaysFails", always_fails);
}

duroxide_guest::component!(register);
