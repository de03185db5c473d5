//! Test guest: one orchestration per runtime feature, and the activities they call.

use std::time::{Duration, UNIX_EPOCH};

use duroxide_guest::{ActivityContext, OrchestrationContext, Registry};

/// Three activities in sequence, each fed the previous output.
async fn sequence(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let a = ctx
        .schedule_activity("Append", &format!("{input}:a"))
        .await?;
    let b = ctx.schedule_activity("Append", &format!("{a}:b")).await?;
    ctx.schedule_activity("Upper", &b).await
}

/// A durable timer of `input` milliseconds, then an activity.
async fn timer_then_activity(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let ms: u64 = input.parse().map_err(|e| format!("bad delay: {e}"))?;
    let before = ctx.utc_now();
    ctx.schedule_timer(Duration::from_millis(ms)).await;
    let after = ctx.utc_now();
    let waited = after.duration_since(before).map_err(|e| e.to_string())?;
    ctx.schedule_activity(
        "Upper",
        &format!("waited {}", waited.as_millis() >= u128::from(ms)),
    )
    .await
}

/// Two waits for the same event name: the first and second raised events.
async fn two_events(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let first = ctx.wait_for_external_event("approval").await;
    let second = ctx.wait_for_external_event("approval").await;
    Ok(format!("{first}+{second}"))
}

/// Deterministic time and ids: the guid is an activity input, so a guid that
/// changed on replay would be caught as nondeterminism.
async fn deterministic(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let guid = format!("{}/{:x}", ctx.new_guid(), ctx.random_u64());
    let now = ctx
        .utc_now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let replaying_at_start = ctx.is_replaying();
    let echoed = ctx
        .schedule_activity("Append", &format!("{guid}|{}", now.as_millis()))
        .await?;
    // WASI's clock inside an orchestration is the context's clock.
    #[allow(
        clippy::disallowed_methods,
        reason = "checks that the guest's wall clock is the context's"
    )]
    let std_now = std::time::SystemTime::now();
    let ctx_now = ctx.utc_now();
    Ok(format!(
        "{echoed}|std_now_matches={}|replaying_at_start={replaying_at_start}|replaying_now={}",
        std_now == ctx_now,
        ctx.is_replaying()
    ))
}

/// Logs at every step, through the context and through stdout.
async fn chatty(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.log_info(&format!("chatty {input} step 1"));
    ctx.schedule_activity("Append", "a").await?;
    ctx.log_info(&format!("chatty {input} step 2"));
    println!("chatty {input} stdout");
    ctx.schedule_activity("Append", "b").await?;
    ctx.log_info(&format!("chatty {input} step 3"));
    Ok("chatted".to_string())
}

/// Publishes its progress as a custom status.
async fn progress(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    ctx.set_custom_status(Some("waiting for approval"));
    let approval = ctx.wait_for_external_event("approval").await;
    ctx.set_custom_status(Some(&format!("approved by {approval}")));
    Ok("done".to_string())
}

/// An activity failure handed to the orchestration, which handles it.
async fn handle_failure(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    match ctx.schedule_activity("Fail", &input).await {
        Ok(out) => Err(format!("expected a failure, got {out}")),
        Err(error) => Ok(format!("handled: {error}")),
    }
}

/// Calls a native activity the host registers.
async fn call_native(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_activity("NativeDouble", &input).await
}

/// Calls the native activity twice, the second time on the first's output.
async fn call_native_twice(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let once = ctx.schedule_activity("NativeDouble", &input).await?;
    ctx.schedule_activity("NativeDouble", &once).await
}

/// Calls an activity that nothing registers.
async fn call_missing(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_activity("NoSuchActivity", &input).await
}

/// Returns an error: the instance fails with it.
async fn returns_error(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    Err(format!("rejected: {input}"))
}

/// Panics after one activity.
async fn panics(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_activity("Upper", &input).await?;
    panic!("orchestration gave up on {input}");
}

/// Spins forever without yielding.
async fn spins(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let mut x: u64 = input.len() as u64;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        if x == 42 {
            return Ok(x.to_string());
        }
    }
}

/// Allocates until something stops it.
async fn hoards_memory(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 8 << 20];
        block[0] = hoard.len() as u8;
        hoard.push(std::hint::black_box(block));
    }
}

/// An activity, a timer of `input` ms, another activity: for restarts mid-way.
async fn activity_timer_activity(
    ctx: OrchestrationContext,
    input: String,
) -> Result<String, String> {
    let ms: u64 = input.parse().map_err(|e| format!("bad delay: {e}"))?;
    let first = ctx.schedule_activity("Append", "first").await?;
    ctx.schedule_timer(Duration::from_millis(ms)).await;
    let second = ctx.schedule_activity("Append", "second").await?;
    Ok(format!("{first},{second}"))
}

/// Schedules an activity whose input is `input` long.
async fn big_input(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let n: usize = input.parse().map_err(|e| format!("bad size: {e}"))?;
    ctx.schedule_activity("Append", &"x".repeat(n)).await
}

/// Fans out `input` activities and joins them in order.
async fn fan_out(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let n: usize = input.parse().map_err(|e| format!("bad count: {e}"))?;
    let tasks: Vec<_> = (0..n)
        .map(|i| ctx.schedule_activity("Upper", &format!("item{i}")))
        .collect();
    let mut outputs = Vec::with_capacity(n);
    for task in tasks {
        outputs.push(task.await?);
    }
    Ok(outputs.join(","))
}

/// The activity `Spin`, which never ends, beside a quick one; both
/// outcomes, once both are in.
async fn spin_beside(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let spin = ctx.schedule_activity("Spin", &input);
    let quick = ctx.schedule_activity("Upper", &input);
    let quick = quick.await;
    let spin = spin.await;
    Ok(format!("spin: {spin:?}; quick: {quick:?}"))
}

/// The activity `Spin` alone, its outcome the orchestration's.
async fn spin_alone(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_activity("Spin", &input).await
}

/// Asks the activity `WhoAmI` what it serves.
async fn ask_who_am_i(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_activity("WhoAmI", &input).await
}

/// What the call serves: instance, execution, name and attempt.
fn who_am_i(ctx: &ActivityContext, _input: String) -> Result<String, String> {
    Ok(format!(
        "{}|{}|{}|{}",
        ctx.instance_id(),
        ctx.execution_id(),
        ctx.name(),
        ctx.attempt()
    ))
}

/// Races the activity `Patient` against a short timer; once the timer wins,
/// runs one more activity.
async fn race_patient(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let patient = ctx.schedule_activity("Patient", &input);
    let timer = ctx.schedule_timer(Duration::from_millis(50));
    let winner = match duroxide_guest::select2(patient, timer).await {
        duroxide_guest::Either::Left(result) => format!("patient: {result:?}"),
        duroxide_guest::Either::Right(()) => "timer".to_string(),
    };
    let after = ctx.schedule_activity("Upper", "after").await?;
    Ok(format!("{winner}, then {after}"))
}

/// Waits until its result is no longer wanted.
fn patient(ctx: &ActivityContext, _input: String) -> Result<String, String> {
    let mut x: u64 = 1;
    while !ctx.is_cancelled() {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    Ok(format!("stopped early ({})", x % 2))
}

/// Loops for ever without yielding.
fn spin(input: String) -> Result<String, String> {
    let mut x: u64 = input.len() as u64;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        if x == 42 {
            return Ok(x.to_string());
        }
    }
}

fn append(input: String) -> Result<String, String> {
    Ok(format!("{input}!"))
}

fn upper(input: String) -> Result<String, String> {
    Ok(input.to_uppercase())
}

fn fail(input: String) -> Result<String, String> {
    Err(format!("cannot process {input}"))
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("Sequence", sequence)
        .orchestration("TimerThenActivity", timer_then_activity)
        .orchestration("TwoEvents", two_events)
        .orchestration("Deterministic", deterministic)
        .orchestration("HandleFailure", handle_failure)
        .orchestration("Progress", progress)
        .orchestration("Chatty", chatty)
        .orchestration("CallNative", call_native)
        .orchestration("CallNativeTwice", call_native_twice)
        .orchestration("CallMissing", call_missing)
        .orchestration("ReturnsError", returns_error)
        .orchestration("Panics", panics)
        .orchestration("Spins", spins)
        .orchestration("HoardsMemory", hoards_memory)
        .orchestration("ActivityTimerActivity", activity_timer_activity)
        .orchestration("BigInput", big_input)
        .orchestration("FanOut", fan_out)
        .orchestration("SpinBeside", spin_beside)
        .orchestration("AskWhoAmI", ask_who_am_i)
        .orchestration("RacePatient", race_patient)
        .activity_with_context("WhoAmI", who_am_i)
        .activity_with_context("Patient", patient)
        .orchestration("SpinAlone", spin_alone)
        .activity("Append", append)
        .activity("Spin", spin)
        .activity("Upper", upper)
        .activity("Fail", fail);
}

duroxide_guest::component!(register);
