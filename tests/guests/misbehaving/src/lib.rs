//! Test guest: orchestrations and activities that exceed the host's limits,
//! misuse the raw contract (calling the WIT imports directly, as an SDK in
//! any language could), or end the guest abruptly.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use duroxide_guest::bindings::duroxide::orchestration::context as host;
use duroxide_guest::{OrchestrationContext, Registry};

/// Parses "what:size" into the text kind and a string of `size` bytes.
fn sized(input: &str) -> Result<(&str, String), String> {
    let (what, size) = input
        .split_once(':')
        .ok_or_else(|| format!("expected what:size, got {input:?}"))?;
    let size: usize = size.parse().map_err(|e| format!("bad size: {e}"))?;
    Ok((what, "x".repeat(size)))
}

/// Hands the host one overlong text of the kind the input names, e.g.
/// "activity-name:300": the host fails the instance before it returns.
async fn long_text(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let (what, long) = sized(&input)?;
    match what {
        "activity-name" => {
            ctx.schedule_activity(&long, "").await?;
        }
        "event-name" => {
            ctx.wait_for_external_event(&long).await;
        }
        "child-name" => {
            ctx.schedule_sub_orchestration(&long, "").await?;
        }
        "child-version" => {
            ctx.schedule_sub_orchestration_with("Echo", Some(&long), None, "")
                .await?;
        }
        "child-id" => {
            ctx.schedule_sub_orchestration_with("Echo", None, Some(&long), "")
                .await?;
        }
        "detached-name" => ctx.start_orchestration(&long, "detached", ""),
        "detached-id" => ctx.start_orchestration("Echo", &long, ""),
        "detached-version" => host::start_orchestration("Echo", Some(&long), "detached", ""),
        other => return Err(format!("unknown text kind {other}")),
    }
    Ok(format!(
        "the host accepted a {what} of {} bytes",
        long.len()
    ))
}

/// Returns its input.
async fn echo(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    Ok(input)
}

/// Returns an error text of `input` bytes.
async fn big_error(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let size: usize = input.parse().map_err(|e| format!("bad size: {e}"))?;
    Err("e".repeat(size))
}

/// Logs one line of `input` bytes through the context and one to stdout,
/// then completes.
async fn big_log(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let size: usize = input.parse().map_err(|e| format!("bad size: {e}"))?;
    ctx.log_info(&"l".repeat(size));
    println!("{}", "p".repeat(size));
    Ok("logged".into())
}

/// A timer as long as a `Duration` can be.
async fn endless_timer(ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    ctx.schedule_timer(Duration::MAX).await;
    Ok("the timer fired".into())
}

/// Calls activity "name|input" and reports how it ended, without failing.
async fn call_activity(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let (name, input) = input.split_once('|').unwrap_or((&input, ""));
    match ctx.schedule_activity(name, input).await {
        Ok(output) => Ok(format!("ok: {} bytes", output.len())),
        Err(error) => Ok(format!("err: {error}")),
    }
}

/// Waits on no tasks at all.
async fn wait_empty(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let completion = host::wait(&[]);
    Ok(format!("the wait returned task {}", completion.task))
}

/// Waits on a timer it cancelled.
async fn wait_cancelled(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let timer = host::schedule_timer(60_000);
    host::cancel_task(timer);
    let completion = host::wait(&[timer]);
    Ok(format!("the wait returned task {}", completion.task))
}

/// Waits on a task id it never created.
async fn wait_unknown(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let completion = host::wait(&[999]);
    Ok(format!("the wait returned task {}", completion.task))
}

/// Waits twice on the same timer: its completion comes once.
async fn wait_consumed(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let timer = host::schedule_timer(1);
    host::wait(&[timer]);
    let completion = host::wait(&[timer]);
    Ok(format!("the second wait returned task {}", completion.task))
}

/// Waits through `wait-any` with no task watched.
async fn wait_any_nothing(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let completion = host::wait_any();
    Ok(format!("the wait returned task {}", completion.task))
}

/// Watches a timer, cancels it, and waits through `wait-any`.
async fn wait_any_cancelled(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    let timer = host::schedule_timer(60_000);
    host::watch(&[timer]);
    host::cancel_task(timer);
    let completion = host::wait_any();
    Ok(format!("the wait returned task {}", completion.task))
}

/// Watches a task id it never created.
async fn watch_unknown(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    host::watch(&[999]);
    let completion = host::wait_any();
    Ok(format!("the wait returned task {}", completion.task))
}

/// Exits the process with status 3.
async fn exits(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    std::process::exit(3)
}

/// Recurses with a buffer in linear memory per frame until the stack that
/// Rust keeps there runs out.
async fn overflows_stack(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    Ok(deep_buffers(input.len() as u64 + 1).to_string())
}

#[inline(never)]
fn deep_buffers(n: u64) -> u64 {
    let mut buffer = [0u8; 4096];
    buffer[(n % 4096) as usize] = n as u8;
    let buffer = std::hint::black_box(&mut buffer);
    if n == 0 {
        return u64::from(buffer[0]);
    }
    deep_buffers(n + 1).wrapping_add(u64::from(buffer[1]))
}

/// Recurses with a buffer per frame that each frame fills with stores.
async fn overflows_stack_stores(
    _ctx: OrchestrationContext,
    input: String,
) -> Result<String, String> {
    Ok(deep_stores(input.len() as u64 + 1).to_string())
}

#[inline(never)]
fn deep_stores(n: u64) -> u64 {
    let mut buffer = [n; 32];
    buffer[1] = n.wrapping_mul(3);
    let buffer = std::hint::black_box(&mut buffer);
    if n == 0 {
        return buffer[0];
    }
    deep_stores(n + 1).wrapping_add(buffer[1])
}

/// Recurses with locals in registers only, until the engine's own call
/// stack limit stops it.
async fn overflows_call_stack(_ctx: OrchestrationContext, input: String) -> Result<String, String> {
    Ok(deep_calls(input.len() as u64 + 1).to_string())
}

#[inline(never)]
fn deep_calls(n: u64) -> u64 {
    if std::hint::black_box(n) == 0 {
        return 0;
    }
    deep_calls(n + 1).wrapping_add(std::hint::black_box(1))
}

/// Fails with an error text of `input` bytes.
fn fails_long(input: String) -> Result<String, String> {
    let size: usize = input.parse().map_err(|e| format!("bad size: {e}"))?;
    Err("a".repeat(size))
}

/// Exits with status 3.
fn exits_activity(_input: String) -> Result<String, String> {
    std::process::exit(3)
}

/// Spins forever in its second turn, after one activity: the budget is
/// per turn, not per execution.
async fn spins_after_activity(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_activity("Noop", &input).await?;
    Ok(spin(input.len() as u64).to_string())
}

/// Spins until 2^64 steps have passed: for ever, in practice.
fn spin(seed: u64) -> u64 {
    let mut x = seed;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        if x == 42 {
            return x;
        }
    }
}

/// Traps (an unreachable instruction) in its second turn, after one
/// activity.
async fn traps_after_activity(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.schedule_activity("Noop", &input).await?;
    std::process::abort()
}

/// Sets a custom status of `input` bytes, then completes.
async fn big_status(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let size: usize = input.parse().map_err(|e| format!("bad size: {e}"))?;
    ctx.set_custom_status(Some(&"s".repeat(size)));
    Ok("status set".into())
}

/// Grows its memory 1 MiB at a time, writing every page (so the host's
/// memory really holds it), until the host refuses.
async fn hoards(_ctx: OrchestrationContext, _input: String) -> Result<String, String> {
    Ok(hoard(usize::MAX).to_string())
}

/// Writes `mib` MiB of fresh memory, a page at a time; returns a byte of it.
fn hoard(mib: usize) -> u8 {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    for i in 0..mib {
        let mut block = vec![0u8; 1 << 20];
        for page in block.chunks_mut(4096) {
            page[0] = i as u8 | 1;
        }
        hoard.push(std::hint::black_box(block));
    }
    hoard.last().map_or(0, |b| b[0])
}

/// Runs `n` activities `Hog` ("n:mib") at once and reports, one line per
/// outcome, how many ended each way: "ok" or the error's code.
async fn fan_out_hogs(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let (n, mib) = input.split_once(':').ok_or("expected n:mib")?;
    let n: usize = n.parse().map_err(|e| format!("bad n: {e}"))?;
    let calls = (0..n).map(|_| ctx.schedule_activity("Hog", mib)).collect();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for result in duroxide_guest::join_all(calls).await {
        let kind = match result {
            Ok(_) => "ok".to_owned(),
            Err(error) => error.get(..7).unwrap_or(&error).to_owned(),
        };
        *outcomes.entry(kind).or_default() += 1;
    }
    Ok(format!("{outcomes:?}"))
}

/// Runs `input` sequential `Noop` activities, each adding events to its
/// history.
async fn many_events(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let n: usize = input.parse().map_err(|e| format!("bad n: {e}"))?;
    for i in 0..n {
        ctx.schedule_activity("Noop", &i.to_string()).await?;
    }
    Ok(format!("{n} activities"))
}

/// Runs `n` activities `Hold` ("n:ms") at once; returns when all ended.
async fn fan_out_holds(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let (n, ms) = input.split_once(':').ok_or("expected n:ms")?;
    let n: usize = n.parse().map_err(|e| format!("bad n: {e}"))?;
    let calls = (0..n).map(|_| ctx.schedule_activity("Hold", ms)).collect();
    let ok = (duroxide_guest::join_all(calls).await.iter())
        .filter(|r| r.is_ok())
        .count();
    Ok(format!("{ok} of {n} held"))
}

/// Runs the activities `input` names ("A,B,..."), one after another, and
/// returns what each returned ("err" for a failure), joined by commas.
async fn in_sequence(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let mut outputs = Vec::new();
    for name in input.split(',') {
        let output = ctx.schedule_activity(name, "").await;
        outputs.push(output.unwrap_or_else(|_| "err".into()));
    }
    Ok(outputs.join(","))
}

/// Calls of `Count` and `CountThenPanic` this sandbox has served.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// How many calls this sandbox has served, this one included: 1 in a
/// fresh sandbox.
fn count(_input: String) -> Result<String, String> {
    Ok((CALLS.fetch_add(1, Ordering::Relaxed) + 1).to_string())
}

/// Counts its call, as `Count` does, then panics.
fn count_then_panic(_input: String) -> Result<String, String> {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    panic!("call {calls} of this sandbox panics");
}

/// Returns its input.
fn noop(input: String) -> Result<String, String> {
    Ok(input)
}

/// Spins for ever.
fn spin_activity(input: String) -> Result<String, String> {
    Ok(spin(input.len() as u64).to_string())
}

/// Writes `input` MiB of memory, holds it for a second, and returns.
fn hog(input: String) -> Result<String, String> {
    let mib: usize = input.parse().map_err(|e| format!("bad size: {e}"))?;
    let byte = hoard(mib);
    std::thread::sleep(Duration::from_secs(1));
    Ok(format!("held {mib} MiB ({byte})"))
}

/// Sleeps `input` milliseconds: a call that holds its slot without using
/// the CPU.
fn hold(input: String) -> Result<String, String> {
    let ms: u64 = input.parse().map_err(|e| format!("bad ms: {e}"))?;
    std::thread::sleep(Duration::from_millis(ms));
    Ok("held".into())
}

/// Returns an output of `input` bytes.
fn big_output(input: String) -> Result<String, String> {
    let size: usize = input.parse().map_err(|e| format!("bad size: {e}"))?;
    Ok("o".repeat(size))
}

/// Recurses until the stack runs out.
fn overflow_activity(input: String) -> Result<String, String> {
    Ok(deep_buffers(input.len() as u64 + 1).to_string())
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("LongText", long_text)
        .orchestration("Echo", echo)
        .orchestration("WaitAnyNothing", wait_any_nothing)
        .orchestration("WaitAnyCancelled", wait_any_cancelled)
        .orchestration("WatchUnknown", watch_unknown)
        .orchestration("BigError", big_error)
        .orchestration("BigLog", big_log)
        .orchestration("EndlessTimer", endless_timer)
        .orchestration("CallActivity", call_activity)
        .orchestration("WaitEmpty", wait_empty)
        .orchestration("WaitCancelled", wait_cancelled)
        .orchestration("WaitUnknown", wait_unknown)
        .orchestration("WaitConsumed", wait_consumed)
        .orchestration("Exits", exits)
        .orchestration("OverflowsStack", overflows_stack)
        .orchestration("OverflowsCallStack", overflows_call_stack)
        .orchestration("OverflowsStackStores", overflows_stack_stores)
        .orchestration("SpinsAfterActivity", spins_after_activity)
        .orchestration("TrapsAfterActivity", traps_after_activity)
        .orchestration("BigStatus", big_status)
        .orchestration("Hoards", hoards)
        .orchestration("FanOutHogs", fan_out_hogs)
        .orchestration("FanOutHolds", fan_out_holds)
        .orchestration("ManyEvents", many_events)
        .orchestration("InSequence", in_sequence)
        .activity("Noop", noop)
        .activity("SpinActivity", spin_activity)
        .activity("Hog", hog)
        .activity("Hold", hold)
        .activity("BigOutput", big_output)
        .activity("OverflowActivity", overflow_activity)
        .activity("FailsLong", fails_long)
        .activity("ExitsActivity", exits_activity)
        .activity("Count", count)
        .activity("CountThenPanic", count_then_panic);
}

duroxide_guest::component!(register);
