//! Test guest: orchestrations and activities that exceed the host's limits,
//! misuse the raw contract (calling the WIT imports directly, as an SDK in
//! any language could), or end the guest abruptly.

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
        .activity("FailsLong", fails_long)
        .activity("ExitsActivity", exits_activity);
}

duroxide_guest::component!(register);
