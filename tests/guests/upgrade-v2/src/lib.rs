//! Test guest: the second build of Upgrade, same name and version. It
//! replays the first build's histories except those that took the "extra"
//! branch, whose second decision it changed; it finishes with "v2:".

use duroxide_guest::{OrchestrationContext, Registry};

async fn upgrade(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    let a = ctx.schedule_activity("Echo", "a").await?;
    if input == "extra" {
        ctx.schedule_activity("Echo", "extra-v2").await?;
    }
    let go = ctx.wait_for_external_event("go").await;
    Ok(format!("v2:{a}:{go}"))
}

fn echo(input: String) -> Result<String, String> {
    Ok(input)
}

fn register(registry: &mut Registry) {
    registry
        .orchestration("Upgrade", upgrade)
        .activity("Echo", echo);
}

duroxide_guest::component!(register);
