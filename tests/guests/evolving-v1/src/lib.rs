//! Test guest: the first build of the Evolving orchestration.

use duroxide_guest::{OrchestrationContext, Registry};

async fn evolving(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let a = ctx.schedule_activity("StepA", &input).await?;
    let go = ctx.wait_for_external_event("go").await;
    let b = ctx.schedule_activity("StepB", &go).await?;
    Ok(format!("{a},{b}"))
}

fn step(input: String) -> Result<String, String> {
    Ok(format!("step({input})"))
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("Evolving", evolving)
        .activity("StepA", step)
        .activity("StepB", step);
}

duroxide_guest::component!(register);
