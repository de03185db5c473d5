//! Test guest: an interpreter for small orchestration programs written as
//! JSON, so tests can generate many different orchestrations at random.
//!
//! A program is `{"steps": [step...], "continue": n}`. Steps:
//! `{"a": text}` activity, `{"f": text}` failing activity (error caught),
//! `{"t": ms}` timer, `{"e": name}` external event, `{"race": [step, step]}`,
//! `{"join": [step...]}`, `{"child": [step...]}` sub-orchestration. The result
//! is every step's result joined by `;`. With `continue` > 0 the program
//! continues as new with `continue` one less, carrying its result so far.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use duroxide_guest::{Either, OrchestrationContext, Registry, join_all, select2};
use serde_json::{Value, json};

type StepFuture = Pin<Box<dyn Future<Output = Result<String, String>>>>;

fn step(ctx: &OrchestrationContext, step: &Value) -> StepFuture {
    let ctx = ctx.clone();
    let step = step.clone();
    Box::pin(async move {
        if let Some(text) = step.get("a").and_then(Value::as_str) {
            return ctx.schedule_activity("Echo", text).await;
        }
        if let Some(text) = step.get("f").and_then(Value::as_str) {
            return match ctx.schedule_activity("Refuse", text).await {
                Ok(out) => Err(format!("Refuse succeeded with {out}")),
                Err(error) => Ok(format!("caught({error})")),
            };
        }
        if let Some(ms) = step.get("t").and_then(Value::as_u64) {
            ctx.schedule_timer(Duration::from_millis(ms)).await;
            return Ok(format!("t{ms}"));
        }
        if let Some(name) = step.get("e").and_then(Value::as_str) {
            return Ok(ctx.wait_for_external_event(name).await);
        }
        if let Some([left, right]) = step
            .get("race")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            return match select2(self::step(&ctx, left), self::step(&ctx, right)).await {
                Either::Left(out) => Ok(format!("L({})", out?)),
                Either::Right(out) => Ok(format!("R({})", out?)),
            };
        }
        if let Some(steps) = step.get("join").and_then(Value::as_array) {
            let outputs = join_all(steps.iter().map(|s| self::step(&ctx, s)).collect()).await;
            let outputs: Result<Vec<String>, String> = outputs.into_iter().collect();
            return Ok(format!("[{}]", outputs?.join(",")));
        }
        if let Some(steps) = step.get("child") {
            let program = json!({"steps": steps, "continue": 0}).to_string();
            return ctx.schedule_sub_orchestration("Program", &program).await;
        }
        Err(format!("unknown step {step}"))
    })
}

async fn program(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let program: Value = serde_json::from_str(&input).map_err(|e| e.to_string())?;
    let steps = program
        .get("steps")
        .and_then(Value::as_array)
        .ok_or("a program needs steps")?;
    let mut results = Vec::new();
    if let Some(carried) = program.get("carried").and_then(Value::as_str) {
        results.push(carried.to_string());
    }
    for s in steps {
        results.push(step(&ctx, s).await?);
    }
    let result = results.join(";");
    match program.get("continue").and_then(Value::as_u64) {
        Some(n) if n > 0 => {
            let next = json!({"steps": steps, "continue": n - 1, "carried": result});
            ctx.continue_as_new(&next.to_string())
        }
        _ => Ok(result),
    }
}

fn echo(input: String) -> Result<String, String> {
    Ok(format!("{input}!"))
}

fn refuse(input: String) -> Result<String, String> {
    Err(format!("no {input}"))
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("Program", program)
        .activity("Echo", echo)
        .activity("Refuse", refuse);
}

duroxide_guest::component!(register);
