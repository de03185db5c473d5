//! The conformance orchestrations in Rust: the same names, inputs and
//! outputs (JSON) as the Python and JavaScript guests, which
//! `tests/tests/languages.rs` holds to one list of expectations.

use std::time::Duration;

use duroxide_guest::{
    ActivityContext, Either, OrchestrationContext, Registry, RetryPolicy, join_all, select2,
};
use serde_json::{Value, json};

async fn hello(ctx: OrchestrationContext, name: String) -> Result<String, String> {
    ctx.schedule_activity_typed::<_, String>("Greet", &name)
        .await
}

async fn sequence(ctx: OrchestrationContext, n: u64) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(ctx.schedule_activity_typed("Double", &i).await?);
    }
    Ok(out)
}

async fn fan_out(ctx: OrchestrationContext, n: u64) -> Result<u64, String> {
    let tasks = (0..n).map(|i| ctx.schedule_activity_typed::<_, u64>("Double", &i));
    let results = join_all(tasks.collect()).await;
    results.into_iter().sum()
}

async fn error_handled(ctx: OrchestrationContext, message: String) -> Result<String, String> {
    match ctx
        .schedule_activity_typed::<_, Value>("Fail", &message)
        .await
    {
        Ok(_) => Ok("not failed".into()),
        Err(e) => Ok(format!("handled: {e}")),
    }
}

/// The retries every language asks of the host: 10 ms backoff, doubling.
fn retry_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::new(max_attempts)
        .with_initial_backoff(Duration::from_millis(10))
        .with_backoff_coefficient(2.0)
        .with_max_backoff(Duration::from_secs(1))
}

async fn retry_flaky(ctx: OrchestrationContext, input: Value) -> Result<Value, String> {
    let output = ctx
        .schedule_activity_with_retry("Flaky", &input.to_string(), &retry_policy(5))
        .await?;
    serde_json::from_str(&output).map_err(|e| e.to_string())
}

async fn retry_exhausted(ctx: OrchestrationContext, message: String) -> Result<String, String> {
    let input = Value::from(message).to_string();
    match ctx
        .schedule_activity_with_retry("Fail", &input, &retry_policy(3))
        .await
    {
        Ok(_) => Ok("not failed".into()),
        Err(e) => Ok(format!("handled: {e}")),
    }
}

async fn timer_race(ctx: OrchestrationContext, seconds: f64) -> Result<String, String> {
    let event = ctx.wait_for_external_event_typed::<String>("go");
    let timer = ctx.schedule_timer(Duration::from_secs_f64(seconds));
    match select2(event, timer).await {
        Either::Left(data) => Ok(format!("event:{}", data?)),
        Either::Right(()) => Ok("timer".into()),
    }
}

async fn buffered_events(ctx: OrchestrationContext, _: Value) -> Result<Vec<Value>, String> {
    let a = ctx.wait_for_external_event_typed::<Value>("a").await?;
    let b = ctx.wait_for_external_event_typed::<Value>("b").await?;
    Ok(vec![a, b])
}

async fn child(_ctx: OrchestrationContext, n: i64) -> Result<i64, String> {
    if n < 0 {
        return Err(format!("negative input {n}"));
    }
    Ok(n * 10)
}

async fn parent(ctx: OrchestrationContext, n: i64) -> Result<Value, String> {
    let ok: i64 = ctx.schedule_sub_orchestration_typed("Child", &n).await?;
    match ctx
        .schedule_sub_orchestration_typed::<_, i64>("Child", &-n)
        .await
    {
        Ok(_) => Ok(json!([ok, "no failure"])),
        Err(e) => Ok(json!([ok, format!("failed: {e}")])),
    }
}

async fn detached(ctx: OrchestrationContext, instance_id: String) -> Result<String, String> {
    ctx.start_orchestration_typed("Hello", &instance_id, &"detached")?;
    Ok("started".into())
}

async fn generations(ctx: OrchestrationContext, generation: u64) -> Result<String, String> {
    if generation < 3 {
        ctx.continue_as_new_typed(&(generation + 1))?;
    }
    let done: String = ctx.wait_for_external_event_typed("done").await?;
    Ok(format!("{done} at {generation}"))
}

async fn status(ctx: OrchestrationContext, _: Value) -> Result<String, String> {
    ctx.set_custom_status(Some("step1"));
    ctx.wait_for_external_event("next").await;
    ctx.set_custom_status(Some(&json!({"step": 2}).to_string()));
    Ok("ok".into())
}

async fn deterministic(ctx: OrchestrationContext, _: Value) -> Result<Value, String> {
    let now_ms = ctx
        .utc_now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis();
    let values = json!([now_ms as u64, ctx.new_guid(), ctx.random_u64().to_string()]);
    ctx.set_custom_status(Some(&values.to_string()));
    ctx.wait_for_external_event("again").await;
    Ok(values)
}

async fn echo_payload(ctx: OrchestrationContext, payload: Value) -> Result<Value, String> {
    ctx.schedule_activity_typed("Echo", &payload).await
}

async fn changing(ctx: OrchestrationContext, name: String) -> Result<Value, String> {
    let greeting: String = ctx.schedule_activity_typed("Greet", &name).await?;
    let go: Value = ctx.wait_for_external_event_typed("go").await?;
    Ok(json!([greeting, go]))
}

async fn ask_who_am_i(ctx: OrchestrationContext, _: Value) -> Result<Value, String> {
    ctx.schedule_activity_typed("WhoAmI", &Value::Null).await
}

/// The call the activity serves, as it sees it.
fn who_am_i(ctx: &ActivityContext, _input: String) -> Result<String, String> {
    let call = json!([
        ctx.instance_id(),
        ctx.execution_id(),
        ctx.name(),
        ctx.attempt(),
        ctx.is_cancelled()
    ]);
    Ok(call.to_string())
}

/// An activity that never returns, raced against a short timer; then
/// another activity, which runs only once the loser was stopped and freed
/// its slot.
async fn race_spin(ctx: OrchestrationContext, _: Value) -> Result<Value, String> {
    let spin = ctx.schedule_activity_typed::<_, Value>("Spin", &Value::Null);
    let timer = ctx.schedule_timer(Duration::from_millis(50));
    let winner = match select2(spin, timer).await {
        Either::Left(_) => "spin",
        Either::Right(()) => "timer",
    };
    let after: String = ctx.schedule_activity_typed("Greet", &"after").await?;
    Ok(json!([winner, after]))
}

/// Spins for ever (42 never comes), asking nothing of the host.
fn spin(_input: String) -> Result<String, String> {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        if x == 42 {
            return Ok(x.to_string());
        }
    }
}

async fn wait_forever(ctx: OrchestrationContext, _: Value) -> Result<Value, String> {
    ctx.wait_for_external_event_typed("never").await
}

fn register(registry: &mut Registry) {
    registry
        .orchestration_typed("Hello", hello)
        .orchestration_typed("Sequence", sequence)
        .orchestration_typed("FanOut", fan_out)
        .orchestration_typed("ErrorHandled", error_handled)
        .orchestration_typed("RetryFlaky", retry_flaky)
        .orchestration_typed("RetryExhausted", retry_exhausted)
        .orchestration_typed("TimerRace", timer_race)
        .orchestration_typed("BufferedEvents", buffered_events)
        .orchestration_typed("Child", child)
        .orchestration_typed("Parent", parent)
        .orchestration_typed("Detached", detached)
        .orchestration_typed("Generations", generations)
        .orchestration_typed("Status", status)
        .orchestration_typed("Deterministic", deterministic)
        .orchestration_typed("EchoPayload", echo_payload)
        .orchestration_typed("WaitForever", wait_forever)
        .orchestration_typed("Changing", changing)
        .orchestration_typed("AskWhoAmI", ask_who_am_i)
        .orchestration_typed("RaceSpin", race_spin)
        .activity_with_context("WhoAmI", who_am_i)
        .activity("Spin", spin)
        .activity_typed("Greet", |name: String| {
            Ok::<_, String>(format!("Hello, {name}!"))
        })
        .activity_typed("Double", |x: u64| Ok::<_, String>(x * 2))
        .activity_typed("Fail", |message: String| Err::<Value, _>(message))
        .activity_typed("Echo", |payload: Value| Ok::<_, String>(payload));
}

duroxide_guest::component!(register);
