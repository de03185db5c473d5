//! Test guest: a changed build of Evolving under the same name and version,
//! whose first decision differs from the first build's.

use duroxide_guest::{OrchestrationContext, Registry};

async fn evolving(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let c = ctx.schedule_activity("StepC", &input).await?;
    let go = ctx.wait_for_external_event("go").await;
    Ok(format!("{c},{go}"))
}

fn step(input: String) -> Result<String, String> {
    Ok(format!("step({input})"))
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("Evolving", evolving)
        .activity("StepC", step);
}

duroxide_guest::component!(register);
